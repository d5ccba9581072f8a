import Foundation
import GenTensor
import GenNN
import GenData

/// Training settings for `gen gan train`. Defaults are the book's DCGAN (Chollet, *Deep Learning
/// with Python*, 1st ed., §8.5): 32×32 RGB, latent 32, batch 20, RMSprop with learning rate 8e-4
/// for the discriminator and 4e-4 for the adversarial step, gradients clipped to ±1, decay 1e-8,
/// label noise 0.05, 10,000 steps.
public struct GANTrainingConfig: Codable, Equatable {
    /// The networks' shape.
    public var model = GANModelConfig()
    /// Real images per step (the discriminator sees as many generated ones) (≥ 1; book: 20).
    public var batchSize = 20
    /// `rmsprop` (book) or `adam` (β₁ = ``adamBeta1``, the DCGAN paper's setting).
    public var optimizer = "rmsprop"
    /// Discriminator learning rate (> 0; book 8e-4; default for adam 2e-4).
    public var dLearningRate: Float = 8e-4
    /// Generator (adversarial step) learning rate (> 0; book 4e-4; default for adam 2e-4).
    public var gLearningRate: Float = 4e-4
    /// Adam's β₁ in [0, 1) (DCGAN paper: 0.5).
    public var adamBeta1: Float = 0.5
    /// Clip each gradient element to ±this (nil = off; book: 1.0).
    public var clipValue: Float? = 1.0
    /// Keras learning-rate decay: `lr / (1 + decay·iterations)` (≥ 0; book: 1e-8).
    public var learningRateDecay: Float = 1e-8
    /// Label noise amplitude in [0, 0.5] (book: 0.05): each target moves `noise·U(0,1)` towards 0.5.
    public var labelNoise: Float = 0.05
    /// One-sided label smoothing in [0, 0.5): real images' target becomes this instead of 0 (book: 0).
    public var labelSmoothing: Float = 0
    /// Seed of initialisation, noise, label noise, dropout, shuffling and the fixed sample noise.
    public var seed: UInt64 = 1
    /// Stop after this many epochs in total (nil = no limit).
    public var epochs: Int?
    /// Stop after this many steps in total (nil = no limit).
    public var steps: Int?
    /// Stop after this many minutes of this session's wall time (nil = no limit).
    public var timeLimitMinutes: Double?
    /// Also checkpoint every this many steps (nil = only at epoch ends and at the end).
    public var checkpointEvery: Int?
    /// Write a grid from the fixed noise every this many steps (≥ 1; nil: ``defaultSampleEvery``
    /// for a new run, the checkpoint's value for a resumed one).
    public var sampleEvery: Int?
    /// Images in the fixed-noise grid (1...1024; default 64, an 8×8 grid).
    public var sampleCount = 64
    /// Average the losses over this many steps per `metrics.csv` row (≥ 1; nil: ``defaultLogEvery``
    /// for a new run, the checkpoint's value for a resumed one).
    public var logEvery: Int?
    /// Drop undecodable files of an image folder with a warning instead of failing.
    public var skipInvalid = false
    /// Largest accepted width×height of an image file's header (nil: ``GenData/ImageDecodeOptions/defaultMaxPixels``);
    /// a run-time setting, taken from the command line on resume.
    public var maxPixels: Int?
    /// No collapse warnings before this step (the first steps of any GAN look collapsed).
    public var collapseWarmupSteps = 200

    /// `sampleEvery` when none is given for a new run.
    public static let defaultSampleEvery = 100
    /// `logEvery` when none is given for a new run.
    public static let defaultLogEvery = 10

    /// The grid interval in force: ``sampleEvery``, else ``defaultSampleEvery``.
    public var sampleInterval: Int { sampleEvery ?? GANTrainingConfig.defaultSampleEvery }
    /// The `metrics.csv` row interval in force: ``logEvery``, else ``defaultLogEvery``.
    public var logInterval: Int { logEvery ?? GANTrainingConfig.defaultLogEvery }

    /// The cadence settings a resumed run takes from these when they are given (else from its
    /// checkpoint `stored`), with the command-line option of each (for the warning about the
    /// options given with `--resume` that change the checkpoint's value).
    public func settingsAppliedOnResume(stored: GANTrainingConfig) -> [KeptSetting] {
        let storedSampleEvery: Int? = stored.sampleInterval, storedLogEvery: Int? = stored.logInterval
        return [KeptSetting("--checkpoint-every", checkpointEvery, stored.checkpointEvery),
                KeptSetting("--sample-every", sampleEvery, storedSampleEvery),
                KeptSetting("--log-every", logEvery, storedLogEvery)]
    }

    /// The settings a resumed run takes from its checkpoint `stored` rather than from these, with the
    /// command-line option of each (for the warning about options given with `--resume`).
    public func settingsKeptOnResume(stored: GANTrainingConfig) -> [KeptSetting] {
        let m = model, sm = stored.model
        return [KeptSetting("--image-size", m.imageSize, sm.imageSize), KeptSetting("--channels", m.channels, sm.channels),
                KeptSetting("--latent-dim", m.latentDim, sm.latentDim),
                KeptSetting("--generator-filters", m.generatorFilters, sm.generatorFilters),
                KeptSetting("--discriminator-filters", m.discriminatorFilters, sm.discriminatorFilters),
                KeptSetting("--optimizer", optimizer, stored.optimizer),
                KeptSetting("--d-learning-rate", dLearningRate, stored.dLearningRate),
                KeptSetting("--g-learning-rate", gLearningRate, stored.gLearningRate),
                KeptSetting("--learning-rate", "\(dLearningRate)/\(gLearningRate)", "\(stored.dLearningRate)/\(stored.gLearningRate)"),
                KeptSetting("--beta1", adamBeta1, stored.adamBeta1), KeptSetting("--clip-value", clipValue, stored.clipValue),
                KeptSetting("--label-noise", labelNoise, stored.labelNoise), KeptSetting("--label-smoothing", labelSmoothing, stored.labelSmoothing),
                KeptSetting("--batch-size", batchSize, stored.batchSize), KeptSetting("--seed", seed, stored.seed)]
    }

    /// The defaults: the book's model and training.
    public init() {}

    /// Checks ranges; the messages name the options as the command line spells them.
    /// - Throws: ``StudioError/invalidOption(_:)``.
    public func validate() throws {
        try model.validate()
        func bad(_ m: String) -> StudioError { .invalidOption(m) }
        if batchSize < 1 || batchSize > 4096 { throw bad("--batch-size must be in 1...4096 (got \(batchSize))") }
        if !["rmsprop", "adam"].contains(optimizer) { throw bad("--optimizer must be rmsprop or adam (got \(optimizer))") }
        if !(dLearningRate > 0 && dLearningRate.isFinite) { throw bad("--d-learning-rate must be positive (got \(dLearningRate))") }
        if !(gLearningRate > 0 && gLearningRate.isFinite) { throw bad("--g-learning-rate must be positive (got \(gLearningRate))") }
        if !(adamBeta1 >= 0 && adamBeta1 < 1) { throw bad("--beta1 must be in [0, 1) (got \(adamBeta1))") }
        if let c = clipValue, !(c > 0 && c.isFinite) { throw bad("--clip-value must be positive, or 0 for off (got \(c))") }
        if !(learningRateDecay >= 0 && learningRateDecay.isFinite) { throw bad("--decay must be ≥ 0 (got \(learningRateDecay))") }
        if !(labelNoise >= 0 && labelNoise <= 0.5) { throw bad("--label-noise must be in [0, 0.5] (got \(labelNoise))") }
        if !(labelSmoothing >= 0 && labelSmoothing < 0.5) { throw bad("--label-smoothing must be in [0, 0.5) (got \(labelSmoothing))") }
        if let e = epochs, e < 1 { throw bad("--epochs must be at least 1 (got \(e))") }
        if let s = steps, s < 1 { throw bad("--steps must be at least 1 (got \(s))") }
        if let t = timeLimitMinutes, !(t > 0 && t.isFinite) { throw bad("--time-limit must be a finite positive number of minutes (got \(t))") }
        if let c = checkpointEvery, c < 1 { throw bad("--checkpoint-every must be at least 1 (got \(c))") }
        if let n = sampleEvery, n < 1 { throw bad("--sample-every must be at least 1 (got \(n))") }
        if !(1...1024).contains(sampleCount) { throw bad("--sample-count must be in 1...1024 (got \(sampleCount))") }
        if let n = logEvery, n < 1 { throw bad("--log-every must be at least 1 (got \(n))") }
        if collapseWarmupSteps < 0 { throw bad("collapse warm-up must be ≥ 0") }
    }

    var stepSettings: GANStepSettings {
        GANStepSettings(labelNoise: labelNoise, labelSmoothing: labelSmoothing, clipValue: clipValue,
                        dLearningRate: dLearningRate, gLearningRate: gLearningRate, learningRateDecay: learningRateDecay)
    }
}

/// Where a GAN run stands; saved in checkpoints so a run resumes exactly.
public struct GANTrainingState: Codable, Equatable {
    /// Steps done.
    public var step = 0
    /// The generator of noise, label noise and dropout.
    public var rng: RandomGenerator
    /// The data stream's position (epoch, images consumed, shuffle seed).
    public var data: DataPosition
    /// Number of training images the run uses (a resume must see the same data).
    public var dataCount: Int
    /// Seconds of training in earlier sessions.
    public var elapsed: Double = 0
    /// Losses of the steps since the last multiple of `logEvery` (where `metrics.csv` rows fall),
    /// so that the row after a resume averages the same steps as without the interruption.
    public var logWindow: [GANStepLosses] = []
    /// The images the run trains on (nil in checkpoints written before it was kept; only
    /// ``dataCount`` is checked then): a resume on other images is refused.
    public var dataFingerprint: DataFingerprint?

    /// A fresh state at step 0.
    public init(rng: RandomGenerator, data: DataPosition, dataCount: Int) {
        self.rng = rng
        self.data = data
        self.dataCount = dataCount
    }

    private enum CodingKeys: String, CodingKey { case step, rng, data, dataCount, elapsed, logWindow, dataFingerprint }

    /// Decodes a state; `logWindow` and `dataFingerprint` are absent from checkpoints written before
    /// they were kept, and are then empty and nil.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        step = try c.decode(Int.self, forKey: .step)
        rng = try c.decode(RandomGenerator.self, forKey: .rng)
        data = try c.decode(DataPosition.self, forKey: .data)
        dataCount = try c.decode(Int.self, forKey: .dataCount)
        elapsed = try c.decodeIfPresent(Double.self, forKey: .elapsed) ?? 0
        logWindow = try c.decodeIfPresent([GANStepLosses].self, forKey: .logWindow) ?? []
        dataFingerprint = try c.decodeIfPresent(DataFingerprint.self, forKey: .dataFingerprint)
    }
}

/// What a finished GAN run reports.
public struct GANTrainingSummary {
    /// The run folder.
    public var folder: URL
    /// The last checkpoint.
    public var checkpoint: URL
    /// Steps done in total.
    public var steps: Int
    /// The epoch reached (0-based: the epoch in progress, or the one just finished).
    public var epoch: Int
    /// Mean losses over the last logged window (nil when no step ran in this session).
    public var lastLosses: GANStepLosses?
    /// The last fixed-noise grid written.
    public var lastGrid: URL?
    /// Why training stopped.
    public var stopReason: String
}

/// Checkpoint keys of GAN runs.
enum GANKeys {
    static let generator = "gan"
    static let training = "training"
    static let state = "state"
    static let dOptimizer = "optimizer_d/"
    static let gOptimizer = "optimizer_g/"
}

/// Trains the book's DCGAN with fixed-noise sample grids, metrics, a loss curve, collapse
/// warnings, atomic checkpoints and exact resume.
///
/// Run folder (`outputs/gan/<timestamp>/` by default): `checkpoint.safetensors`,
/// `samples/real.png` (real training images, written at the start), `samples/step-NNNNNN.png`
/// (the fixed noise batch every `sampleEvery` steps and at the end), `metrics.csv`, `loss.png`
/// (blue: discriminator loss on real, red: on generated, green: generator loss), `run.json`.
public final class GANTrainer {
    /// The effective settings (the checkpoint's, with the new stopping criteria, when resuming).
    public let config: GANTrainingConfig
    let data: GANImageData
    let generator: GANGenerator
    let discriminator: GANDiscriminator
    let dOptimizer: Optimizer
    let gOptimizer: Optimizer
    let stepper: GANStepper
    var state: GANTrainingState
    var sampler: BatchSampler
    let batch: Int
    let folder: RunFolder
    let progress: ProgressReporter
    var record: RunRecord
    var lastCheckpoint: URL?
    let fixedNoise: Tensor
    var history: [[String]] = []
    /// Called with the step number before each step (tests inject faults through it).
    var beforeStepHook: ((Int) -> Void)?
    /// The files written (and folders made) before the first checkpoint of a fresh run: a run that
    /// fails before that checkpoint removes them, leaving nothing, as the other trainers do.
    var writtenBeforeCheckpoint = RunFiles()

    /// Notes a file about to be written while no checkpoint exists (see ``writtenBeforeCheckpoint``).
    func willWrite(_ url: URL) {
        if lastCheckpoint == nil { writtenBeforeCheckpoint.willWrite(url, in: folder) }
    }

    static let metricsHeader = ["step", "epoch", "d_loss_real", "d_loss_fake", "d_loss", "g_loss", "d_excess",
                                "sample_diversity", "elapsed_s", "steps_per_s"]

    /// Prepares a run: checks options, loads and checks all data, builds or restores the networks,
    /// then creates the run folder. Nothing is written before every check passes.
    /// - Parameters:
    ///   - data: folder, IDX file or `mnist` / `fashion-mnist`.
    ///   - config: settings; when resuming only the stopping criteria, `skipInvalid`, `maxPixels`
    ///     and, when set, `checkpointEvery`, `sampleEvery` and `logEvery` are taken from it (the
    ///     checkpoint's settings continue; options given in `arguments` that differ from them get a warning).
    ///   - resume: a checkpoint of `gen gan train` (never modified).
    ///   - output: run folder (default `outputs/gan/<timestamp>`, or the checkpoint's folder when resuming).
    ///   - arguments: the command line, recorded in `run.json` and checked for options a resume ignores.
    /// - Throws: ``StudioError`` (options, folder, incompatible checkpoint including bad optimizer
    ///   state, a resume already at or past the requested step total), `DatasetError`, `ImageError`,
    ///   `CheckpointError`.
    public init(data path: String, config requested: GANTrainingConfig, resume: URL?, output: URL?,
                arguments: [String], progress: ProgressReporter) throws {
        try requested.validate()
        self.progress = progress
        var config = requested
        var restored: (checkpoint: Checkpoint, state: GANTrainingState)?
        if let resume {
            let ckpt = try Checkpoint.load(from: resume, expectingGenerator: GANKeys.generator)
            guard let stored = try ckpt.metadataIfPresent(GANTrainingConfig.self, forKey: GANKeys.training),
                  let st = try ckpt.metadataIfPresent(GANTrainingState.self, forKey: GANKeys.state) else {
                throw StudioError.incompatibleCheckpoint(path: resume.path, reason: "checkpoint lacks the training settings or state of a gan run")
            }
            do { try stored.validate() } catch {
                throw StudioError.incompatibleCheckpoint(path: resume.path, reason: "stored settings are invalid: \(error)")
            }
            var merged = stored
            merged.epochs = requested.epochs
            merged.steps = requested.steps
            merged.timeLimitMinutes = requested.timeLimitMinutes
            merged.checkpointEvery = requested.checkpointEvery ?? stored.checkpointEvery
            merged.sampleEvery = requested.sampleEvery ?? stored.sampleInterval
            merged.logEvery = requested.logEvery ?? stored.logInterval
            merged.maxPixels = requested.maxPixels
            merged.skipInvalid = requested.skipInvalid || stored.skipInvalid
            let ignored = ignoredOnResume(requested.settingsKeptOnResume(stored: stored), arguments: arguments)
            let changed = changedOnResume(requested.settingsAppliedOnResume(stored: stored), arguments: arguments)
            if let w = ignoredOnResumeWarning(ignored, changed: changed, resume: resume) { progress.report(.warning(w)) }
            config = merged
            restored = (ckpt, st)
        }
        // The intervals in force, stored in the checkpoint for a resume that does not give them.
        config.sampleEvery = config.sampleInterval
        config.logEvery = config.logInterval
        self.config = config

        data = try GANImageData.load(path, size: config.model.imageSize, channels: config.model.channels,
                                     skipInvalid: config.skipInvalid, maxPixels: config.maxPixels ?? ImageDecodeOptions.defaultMaxPixels,
                                     warn: { progress.report(.warning($0)) })
        batch = min(config.batchSize, data.count)

        var rng = RandomGenerator(seed: config.seed)
        generator = GANGenerator(config: config.model, using: &rng)
        discriminator = GANDiscriminator(config: config.model, using: &rng)
        dOptimizer = try makeGANOptimizer(config.optimizer, learningRate: config.dLearningRate, beta1: config.adamBeta1)
        gOptimizer = try makeGANOptimizer(config.optimizer, learningRate: config.gLearningRate, beta1: config.adamBeta1)
        state = GANTrainingState(rng: rng, data: DataPosition(seed: config.seed ^ 0xDA7A), dataCount: data.count)
        state.dataFingerprint = data.fingerprint
        if let restored, let resume {
            let st = restored.state
            try data.fingerprint.requireSame(as: st.dataFingerprint, data: path, checkpoint: resume.path)
            guard st.dataCount == data.count else {
                throw StudioError.incompatibleCheckpoint(path: resume.path, reason:
                    "the run was trained on \(st.dataCount) images, \(path) has \(data.count); exact resume needs the same data")
            }
            try GANTrainer.restore(generator: generator, discriminator: discriminator, dOptimizer: dOptimizer,
                                   gOptimizer: gOptimizer, from: restored.checkpoint, step: st.step, path: resume.path)
            state = st
            // (A checkpoint written before fingerprints were kept gets these images' from now on.)
            state.dataFingerprint = data.fingerprint
            // Rows fall at multiples of --log-every, which a resume may change: keep only the steps
            // since the last multiple of the current value.
            state.logWindow = Array(state.logWindow.suffix(state.step % config.logInterval))
        }
        do {
            sampler = try BatchSampler(count: data.count, batchSize: batch, seed: state.data.seed, shuffle: true,
                                       dropLast: true, position: state.data)
        } catch {
            throw StudioError.incompatibleCheckpoint(path: resume?.path ?? path, reason: "\(error)")
        }
        // A total already reached is refused before the folder is touched (no record rewritten).
        if let resume, restored != nil {
            try refuseResumeWithNothingToDo(resume: resume, step: state.step,
                                            total: stepTotal(steps: config.steps, epochs: config.epochs, perEpoch: sampler.batchesPerEpoch))
        }
        stepper = GANStepper(generator: generator, discriminator: discriminator, dOptimizer: dOptimizer,
                             gOptimizer: gOptimizer, settings: config.stepSettings)
        var noiseRNG = RandomGenerator(seed: config.seed &+ 0xF1_7ED0_0015E)
        fixedNoise = Tensor.normal([config.sampleCount, config.model.latentDim], using: &noiseRNG)

        folder = try trainingFolder(output: output, resume: resume, generator: "gan", rewrites: ["loss.png"])
        record = RunRecord(generator: "gan", arguments: arguments, settings: GANTrainer.describe(config), seed: config.seed)
        record.settings["data"] = data.summary
        lastCheckpoint = restored != nil ? resume : nil
        if restored != nil { history = GANTrainer.readHistory(folder.file("metrics.csv"), upTo: state.step) }
        resumedInFolderAt = restored != nil ? stepResumedInOwnFolder(resume, step: state.step, folder: folder) : nil
    }

    /// The step this run resumed from in the checkpoint's own folder (its metrics are this run's);
    /// nil otherwise.
    var resumedInFolderAt: Int?

    /// Loads both networks and both optimizers by name, strictly (names, shapes, finite values).
    static func restore(generator: GANGenerator, discriminator: GANDiscriminator, dOptimizer: Optimizer,
                        gOptimizer: Optimizer, from ckpt: Checkpoint, step: Int, path: String) throws {
        try restoreParameters(generator.parameters + discriminator.parameters, from: ckpt, path: path)
        for (prefix, opt, params) in [(GANKeys.dOptimizer, dOptimizer, discriminator.parameters),
                                      (GANKeys.gOptimizer, gOptimizer, generator.parameters)] {
            try restoreOptimizer(opt, prefix: prefix, step: step, parameters: params, from: ckpt, path: path)
        }
    }

    static func describe(_ c: GANTrainingConfig) -> [String: String] {
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        guard let d = try? enc.encode(c), let obj = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any] else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in obj {
            if let m = v as? [String: Any] { for (k2, v2) in m { out["model.\(k2)"] = "\(v2)" } } else { out[k] = "\(v)" }
        }
        return out
    }

    /// Rows of an earlier session's `metrics.csv` up to `step` (for the loss curve after a resume).
    static func readHistory(_ url: URL, upTo step: Int) -> [[String]] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            .filter { $0.count == metricsHeader.count && (Int($0[0]) ?? Int.max) <= step }
    }

    /// The run folder.
    public var runFolder: URL { folder.url }
    /// The generator being trained.
    public var currentGenerator: GANGenerator { generator }
    /// The discriminator being trained.
    public var currentDiscriminator: GANDiscriminator { discriminator }

    /// Writes `checkpoint.safetensors` atomically, then `run.json` as unfinished at this step.
    @discardableResult
    func saveCheckpoint() throws -> URL {
        var ckpt = Checkpoint(generator: GANKeys.generator)
        for p in generator.parameters + discriminator.parameters { ckpt.tensors[p.name ?? ""] = p }
        for (k, v) in dOptimizer.stateTensors() { ckpt.tensors[GANKeys.dOptimizer + k] = v }
        for (k, v) in gOptimizer.stateTensors() { ckpt.tensors[GANKeys.gOptimizer + k] = v }
        state.data = sampler.position
        try ckpt.setMetadata(config.model, forKey: Checkpoint.Key.config)
        try ckpt.setMetadata(config, forKey: GANKeys.training)
        try ckpt.setMetadata(state, forKey: GANKeys.state)
        try ckpt.setMetadata(state.data, forKey: Checkpoint.Key.dataPosition)
        ckpt.setRandomGenerator(state.rng)
        ckpt.metadata[Checkpoint.Key.step] = String(state.step)
        ckpt.metadata[Checkpoint.Key.epoch] = String(state.data.epoch)
        ckpt.metadata[Checkpoint.Key.optimizer] = "discriminator: \(dOptimizer.name), generator: \(gOptimizer.name)"
        let url = folder.file("checkpoint.safetensors")
        try ckpt.save(to: url)
        lastCheckpoint = url
        try folder.writeCheckpointRecord(record, step: state.step)
        progress.report(.wrote(url, what: "checkpoint"))
        return url
    }

    /// The fixed-noise batch through the current generator, `[sampleCount, S, S, C]` in [-1, 1].
    public func fixedSamples() -> Tensor { withNoGrad { generator(fixedNoise) } }

    /// Runs until a stopping criterion (steps, epochs, time limit, `shouldStop`) is met.
    /// - Throws: ``GANError/nonFinite(step:what:lastCheckpoint:)`` (the last good checkpoint is kept,
    ///   no grid is written from bad weights);
    ///   ``StudioError/interruptedBeforeFirstStep(resumed:)`` when `shouldStop` is already true before
    ///   the first step (nothing is written; a folder this run made is removed);
    ///   and file errors. Failures other than the interruption are recorded in `run.json`, except
    ///   those of a fresh run before its first checkpoint: they remove what the run wrote (real
    ///   images, grids, `metrics.csv`, `loss.png`) and a run folder it made.
    public func run(shouldStop: () -> Bool = { false }) throws -> GANTrainingSummary {
        try runRecordingFailure(in: folder, failure: { failedRunRecord(record, step: state.step, lastCheckpoint: lastCheckpoint) },
                                discarding: { lastCheckpoint == nil ? writtenBeforeCheckpoint : nil }) {
            do {
                return try runTraining(shouldStop: shouldStop)
            } catch GANError.nonFinite(let step, let what, _) {
                // Names the last good checkpoint, known here rather than where the loss went bad.
                throw GANError.nonFinite(step: step, what: what, lastCheckpoint: lastCheckpoint?.path)
            }
        }
    }

    func runTraining(shouldStop: () -> Bool) throws -> GANTrainingSummary {
        // Stopped while the data was loading: write nothing (no step-0 pictures or checkpoint).
        var session = try TrainingSession(step: state.step, resumed: lastCheckpoint, shouldStop: shouldStop)
        let startTime = Date()
        let sessionStartElapsed = state.elapsed
        func elapsedTotal() -> Double { sessionStartElapsed + Date().timeIntervalSince(startTime) }
        if batch < config.batchSize {
            progress.report(.warning("only \(counted(data.count, "training image")): using batch size \(batch) instead of \(config.batchSize)"))
        }
        let perEpoch = sampler.batchesPerEpoch
        let totalSteps = stepTotal(steps: config.steps, epochs: config.epochs, perEpoch: perEpoch)
        let m = config.model
        progress.report(.info("data \(data.summary); \(m.imageSize)x\(m.imageSize)x\(m.channels), batch \(batch), \(perEpoch) steps per epoch"))
        progress.report(.info("generator \(generator.parameterCount) parameters (\(m.upsamplingStages) up-sampling stage\(m.upsamplingStages == 1 ? "" : "s") from \(m.startSize)x\(m.startSize)), discriminator \(discriminator.parameterCount); \(config.optimizer) lr D \(config.dLearningRate) G \(config.gLearningRate)"))
        if state.step > 0 { progress.report(.info("resuming at step \(state.step), epoch \(sampler.position.epoch + 1)")) }

        // Real images at the start, and their spread for the collapse warning.
        var realPick = RandomGenerator(seed: config.seed ^ 0x5EA1)
        let realIndices = Array(realPick.permutation(data.count).prefix(min(64, data.count)))
        let realBatch = try data.batch(realIndices)
        let realDiversity = GANPictures.diversity(realBatch)
        // This session's first writes, right before its first step (or at its end when it takes
        // none): a fresh run's real-image grid.
        let freshRun = session.firstStep == 0
        func beginSession() throws {
            try session.begin(folder: folder, droppingMetricsRowsAfter: resumedInFolderAt) {
                guard freshRun else { return }
                let url = folder.file("samples").appendingPathComponent("real.png")
                willWrite(url)
                try GANPictures.writeGrid(realBatch, to: url)
                progress.report(.wrote(url, what: "real images"))
            }
        }

        var dMonitor = DiscriminatorCollapseMonitor()
        var modeCollapseWarned = false
        var lastLosses: GANStepLosses?
        var lastGrid: URL?
        var stopReason = "completed"
        var meter = ThroughputMeter()
        var lastDiversity: Double?

        func writeGrid() throws {
            let samples = fixedSamples()
            guard GANPictures.isFinite(samples) else {
                throw GANError.nonFinite(step: state.step, what: "generated sample", lastCheckpoint: nil)
            }
            let url = folder.file("samples").appendingPathComponent(String(format: "step-%06d.png", state.step))
            willWrite(url)
            try GANPictures.writeGrid(samples, to: url)
            lastGrid = url
            progress.report(.wrote(url, what: "samples"))
            let d = GANPictures.diversity(samples)
            lastDiversity = d
            if state.step >= config.collapseWarmupSteps && realDiversity > 0 {
                if d < 0.2 * realDiversity {
                    if !modeCollapseWarned {
                        progress.report(.warning(String(format: "possible mode collapse at step %d: the fixed-noise samples vary %.3f across the batch, real images %.3f (the generator may be producing one image); consider lower learning rates, --label-smoothing, or resuming from an earlier checkpoint", state.step, d, realDiversity)))
                        modeCollapseWarned = true
                    }
                } else { modeCollapseWarned = false }
            }
        }
        func writeLossCurve() throws {
            func col(_ i: Int) -> [Double] { history.map { Double($0[i]) ?? .nan } }
            let steps = col(0)
            let im = GANPictures.lossCurve([
                .init(steps: steps, values: col(2), color: (0.1, 0.3, 0.9), name: "D real"),
                .init(steps: steps, values: col(3), color: (0.9, 0.15, 0.1), name: "D fake"),
                .init(steps: steps, values: col(5), color: (0.1, 0.65, 0.2), name: "G"),
            ])
            willWrite(folder.file("loss.png"))
            try im.write(to: folder.file("loss.png").path, format: .png)
        }
        // `final`: the row at a stop; the window is kept (and checkpointed) so that the row at the
        // next multiple of logEvery after a resume covers the whole window.
        func logWindow(final: Bool = false) throws {
            let window = state.logWindow
            guard !window.isEmpty else { return }
            let n = Double(window.count)
            var mean = GANStepLosses(discriminatorReal: 0, discriminatorFake: 0, generator: 0, discriminatorExcess: 0)
            for l in window {
                mean.discriminatorReal += l.discriminatorReal / n; mean.discriminatorFake += l.discriminatorFake / n
                mean.generator += l.generator / n; mean.discriminatorExcess += l.discriminatorExcess / n
            }
            lastLosses = mean
            let row = [String(state.step), String(sampler.position.epoch + 1),
                       String(format: "%.5f", mean.discriminatorReal), String(format: "%.5f", mean.discriminatorFake),
                       String(format: "%.5f", mean.discriminator), String(format: "%.5f", mean.generator),
                       String(format: "%.5f", mean.discriminatorExcess),
                       lastDiversity.map { String(format: "%.4f", $0) } ?? "",
                       String(format: "%.1f", elapsedTotal()), String(format: "%.4f", meter.rate)]
            history.append(row)
            willWrite(folder.file("metrics.csv"))
            try folder.appendMetrics(header: GANTrainer.metricsHeader, row: row)
            lastDiversity = nil
            progress.report(.metrics(step: state.step, epoch: sampler.position.epoch + 1, values: [
                ("D loss real", mean.discriminatorReal), ("D loss fake", mean.discriminatorFake), ("G loss", mean.generator)]))
            if !final { state.logWindow.removeAll(keepingCapacity: true) }
        }

        training: while true {
            if let total = totalSteps, state.step >= total { stopReason = stepLimitReason(total: total, steps: config.steps, epochs: config.epochs); break }
            if let limit = config.timeLimitMinutes, Date().timeIntervalSince(startTime) >= limit * 60 {
                stopReason = "time limit of \(limit) minutes"; break
            }
            if try session.stopRequested(shouldStop, step: state.step) { stopReason = "interrupted"; break }
            try beginSession()

            beforeStepHook?(state.step + 1)
            let stepStart = Date()
            let indices = sampler.next()
            let real = try data.batch(indices)
            let losses = try stepper.step(real: real, step: state.step + 1, rng: &state.rng)
            state.step += 1
            state.logWindow.append(losses)

            meter.record(units: 1, seconds: Date().timeIntervalSince(stepStart))
            let eta = totalSteps.flatMap { t in meter.eta(remaining: Double(t - state.step)) }
            progress.report(.step(step: state.step, totalSteps: totalSteps, epoch: sampler.position.epoch + 1,
                                  loss: losses.discriminator, unit: String(format: "(D), G loss %.4f", losses.generator),
                                  rate: meter.rate, rateUnit: "steps/s", elapsed: elapsedTotal(), eta: eta))

            // The discriminator winning outright: its loss at the floor its noisy targets allow.
            if state.step >= config.collapseWarmupSteps, let m = dMonitor.observe(losses) { progress.report(.warning(m)) }

            let sampleNow = state.step % config.sampleInterval == 0
            if sampleNow { try writeGrid() }
            if state.step % config.logInterval == 0 { try logWindow() }
            if sampleNow { try writeLossCurve() }
            let epochLimitReached = config.epochs.map { sampler.epochFinished && sampler.position.epoch + 1 >= $0 } ?? false
            // The last step's checkpoint is the final one, written after the final row, grid and
            // loss curve (below): a run killed before those is then not taken for finished.
            let lastStep = state.step == totalSteps || epochLimitReached
            if !lastStep && (sampler.epochFinished || (config.checkpointEvery.map { state.step % $0 == 0 } ?? false)) {
                state.elapsed = elapsedTotal()
                try saveCheckpoint()
            }
            if let e = config.epochs, epochLimitReached { stopReason = epochLimitReason(e); break }
        }

        try beginSession()
        state.elapsed = elapsedTotal()
        // A resumed session that took no step (a tiny --time-limit) repeats nothing: its checkpoint,
        // row and grid are already written.
        if !session.isIdleResume(step: state.step) {
            try logWindow(final: true)
            if lastGrid?.lastPathComponent != String(format: "step-%06d.png", state.step) { try writeGrid() }
            if !history.isEmpty { try writeLossCurve() }
            // The time the checkpoint is written, after the row and pictures: a resumed session's
            // rows then never show less than this one's.
            state.elapsed = elapsedTotal()
            try saveCheckpoint()
        }
        record.finished = ISO8601DateFormatter().string(from: Date())
        record.timings["training_session_s"] = Date().timeIntervalSince(startTime)
        record.timings["training_total_s"] = state.elapsed
        record.outcome = stopReason
        record.settings["steps_done"] = String(state.step)
        try folder.writeRecord(record)
        return GANTrainingSummary(folder: folder.url, checkpoint: lastCheckpoint ?? folder.file("checkpoint.safetensors"),
                                  steps: state.step, epoch: sampler.position.epoch, lastLosses: lastLosses,
                                  lastGrid: lastGrid, stopReason: stopReason)
    }
}

/// Watches the discriminator's excess loss (``GANStepLosses/discriminatorExcess``) over the last
/// `window` steps and says once when its mean falls below `threshold` nats (the discriminator has
/// won: its loss sits at the floor its noisy targets allow), again only after it rose above `rearm`.
struct DiscriminatorCollapseMonitor {
    var window = 100, minimumSteps = 50
    var threshold = 0.01, rearm = 0.05
    private(set) var recent: [Double] = []
    private(set) var warned = false

    /// Records one step; returns a warning message when the collapse starts.
    mutating func observe(_ l: GANStepLosses) -> String? {
        recent.append(l.discriminatorExcess)
        if recent.count > window { recent.removeFirst() }
        guard recent.count >= minimumSteps else { return nil }
        let mean = recent.reduce(0, +) / Double(recent.count)
        if mean < threshold {
            if warned { return nil }
            warned = true
            return String(format: "the discriminator's loss has collapsed to its floor (%.4f nats above it over the last %d steps, D loss %.4f, G loss %.4f): it tells every generated image apart and the generator gets no useful gradient; consider a new run (a resumed run keeps its settings) with a lower --d-learning-rate, more --label-noise or --label-smoothing", mean, recent.count, l.discriminator, l.generator)
        }
        if mean > rearm { warned = false }
        return nil
    }
}
