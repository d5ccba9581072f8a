import Foundation
import GenTensor
import GenNN
import GenData

/// Training settings for `gen vae train`. Defaults are the book's model and recipe (F. Chollet,
/// *Deep Learning with Python*, 2nd ed. §12.4: latent dimension 2, Adam with Keras's learning rate
/// 1e-3, batch 128) on Fashion-MNIST; the loss is the negative ELBO of Kingma & Welling (2014):
/// binary cross-entropy summed over pixels plus `beta`·KL (β-VAE, Higgins et al. 2017, for β ≠ 1).
public struct VAETrainingConfig: Codable, Equatable {
    /// Data source: nil for Fashion-MNIST, a dataset name, an IDX file or folder, or an image folder
    /// (see ``VAEData``).
    public var data: String?
    /// Drop undecodable files of an image folder with a warning instead of failing.
    public var skipInvalid = false
    /// Largest accepted width×height of an image file's header (nil: ``GenData/ImageDecodeOptions/defaultMaxPixels``);
    /// a run-time setting, taken from the command line on resume.
    public var maxPixels: Int?
    /// Side length the images are converted to (a multiple of 4; book: 28).
    public var imageSize = 28
    /// Channels the images are converted to (1 or 3).
    public var channels = 1
    /// Latent dimension (≥ 1; book: 2).
    public var latentDim = 2
    /// Weight of the KL term (≥ 0; 1 is the ELBO).
    public var beta: Float = 1
    /// Images per optimizer step (≥ 1; book: 128).
    public var batchSize = 128
    /// Adam step size (> 0; Keras default 1e-3).
    public var learningRate: Float = 1e-3
    /// Seed of initialisation, shuffling and the reparameterisation noise.
    public var seed: UInt64 = 1
    /// Stop after this many epochs in total (nil = no limit).
    public var epochs: Int?
    /// Stop after this many optimizer steps in total (nil = no limit).
    public var steps: Int?
    /// Stop after this many minutes of this session's wall time (nil = no limit).
    public var timeLimitMinutes: Double?
    /// Also write a checkpoint every this many steps (nil = at epoch ends and at the end only).
    public var checkpointEvery: Int?
    /// Side of the latent manifold grid (≥ 2; book: 15).
    public var manifoldSize = 15
    /// Prior samples in the per-epoch sample grid (≥ 1).
    public var sampleCount = 64
    /// Test images shown with their reconstructions (≥ 1).
    public var reconstructionCount = 20
    /// Most evaluation images used for the test negative ELBO and the scatter plot (all by default).
    public var maxEvaluationImages = Int.max

    /// The book's settings (see each property).
    public init() {}

    /// The settings a resumed run takes from its checkpoint `stored` rather than from these, with the
    /// command-line option of each (for the warning about options given with `--resume`).
    public func settingsKeptOnResume(stored: VAETrainingConfig) -> [KeptSetting] {
        [KeptSetting("--latent-dim", latentDim, stored.latentDim), KeptSetting("--beta", beta, stored.beta),
         KeptSetting("--image-size", imageSize, stored.imageSize), KeptSetting("--channels", channels, stored.channels),
         KeptSetting("--manifold-size", manifoldSize, stored.manifoldSize), KeptSetting("--batch-size", batchSize, stored.batchSize),
         KeptSetting("--learning-rate", learningRate, stored.learningRate), KeptSetting("--seed", seed, stored.seed)]
    }

    /// The cadence settings a resumed run takes from these when they are given (else from its
    /// checkpoint `stored`), with the command-line option of each (for the warning about the
    /// options given with `--resume` that change the checkpoint's value).
    public func settingsAppliedOnResume(stored: VAETrainingConfig) -> [KeptSetting] {
        [KeptSetting("--checkpoint-every", checkpointEvery, stored.checkpointEvery)]
    }

    /// The model these settings describe.
    public var modelConfig: VAEModelConfig { VAEModelConfig(imageSize: imageSize, channels: channels, latentDim: latentDim) }

    /// Checks ranges; messages name the options as the command line spells them.
    /// - Throws: ``StudioError/invalidOption(_:)``.
    public func validate() throws {
        func bad(_ m: String) -> StudioError { .invalidOption(m) }
        try modelConfig.validate()
        if !(beta >= 0 && beta.isFinite) { throw bad("--beta must be a finite number ≥ 0 (got \(beta))") }
        if batchSize < 1 { throw bad("--batch-size must be at least 1 (got \(batchSize))") }
        if let m = maxPixels, m < 1 { throw bad("--max-pixels must be at least 1 (got \(m))") }
        // Refuse a batch that cannot fit rather than being killed for memory.
        let estimate = Double(batchSize) * modelConfig.bytesPerImage
        if estimate > 16 * 1_073_741_824 {
            throw bad(String(format: "--batch-size %d at --image-size %d needs about %.0f GB of memory for training; reduce them",
                             batchSize, imageSize, estimate / 1e9))
        }
        if !(learningRate > 0 && learningRate.isFinite) { throw bad("--learning-rate must be positive (got \(learningRate))") }
        if let e = epochs, e < 1 { throw bad("--epochs must be at least 1 (got \(e))") }
        if let s = steps, s < 1 { throw bad("--steps must be at least 1 (got \(s))") }
        if let t = timeLimitMinutes, !(t > 0 && t.isFinite) { throw bad("--time-limit must be a finite positive number of minutes (got \(t))") }
        if let c = checkpointEvery, c < 1 { throw bad("--checkpoint-every must be at least 1 (got \(c))") }
        if manifoldSize < 2 || manifoldSize > 100 { throw bad("--manifold-size must be in 2...100 (got \(manifoldSize))") }
        if sampleCount < 1 || sampleCount > 4096 { throw bad("sample count must be in 1...4096 (got \(sampleCount))") }
        if reconstructionCount < 1 || reconstructionCount > 1000 { throw bad("reconstruction count must be in 1...1000") }
        if maxEvaluationImages < 1 { throw bad("evaluation images must be at least 1") }
    }
}

/// Where VAE training stands; saved in checkpoints so a run resumes exactly.
public struct VAETrainingState: Codable, Equatable {
    /// Optimizer steps done.
    public var step = 0
    /// Epochs completed.
    public var epoch = 0
    /// The data stream's position (epoch permutation seed and images consumed).
    public var position: DataPosition
    /// The generator of initialisation and reparameterisation noise.
    public var rng: RandomGenerator
    /// Seconds of training done in earlier sessions.
    public var elapsed: Double = 0
    /// Sum of the current epoch's training losses weighted by batch size (nats) and the images
    /// summed, so that an epoch's train loss in `metrics.csv` covers all of it across a resume.
    public var epochLossSum = 0.0
    /// Images summed in ``epochLossSum``.
    public var epochImages = 0
    /// The images the run trains on (nil in checkpoints written before it was kept): a resume on
    /// other images is refused.
    public var dataFingerprint: DataFingerprint?

    /// A fresh state at step 0.
    public init(position: DataPosition, rng: RandomGenerator) {
        self.position = position
        self.rng = rng
    }

    private enum CodingKeys: String, CodingKey { case step, epoch, position, rng, elapsed, epochLossSum, epochImages, dataFingerprint }

    /// Decodes a state; the epoch loss sums and the data fingerprint are absent from checkpoints
    /// written before they were kept, and are then 0 and nil.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        step = try c.decode(Int.self, forKey: .step)
        epoch = try c.decode(Int.self, forKey: .epoch)
        position = try c.decode(DataPosition.self, forKey: .position)
        rng = try c.decode(RandomGenerator.self, forKey: .rng)
        elapsed = try c.decodeIfPresent(Double.self, forKey: .elapsed) ?? 0
        epochLossSum = try c.decodeIfPresent(Double.self, forKey: .epochLossSum) ?? 0
        epochImages = try c.decodeIfPresent(Int.self, forKey: .epochImages) ?? 0
        dataFingerprint = try c.decodeIfPresent(DataFingerprint.self, forKey: .dataFingerprint)
    }
}

/// The test negative ELBO and its terms, in nats per image.
public struct VAEEvaluation: Equatable {
    /// Mean over evaluation images of (summed BCE + KL); β is not applied (the true bound).
    public var negativeELBO: Double
    /// Mean summed binary cross-entropy per image.
    public var reconstruction: Double
    /// Mean KL(q(z|x) ‖ N(0, I)) per image.
    public var kl: Double
    /// Images evaluated.
    public var images: Int
}

/// What a finished VAE training run reports.
public struct VAETrainingSummary {
    /// The run folder.
    public var folder: URL
    /// The last checkpoint written.
    public var checkpoint: URL
    /// Steps done in total, over every session.
    public var steps: Int
    /// Epochs completed in total.
    public var epochs: Int
    /// Mean training loss (nats per image, with β) over the last epoch's steps.
    public var trainLoss: Double?
    /// The last evaluation.
    public var evaluation: VAEEvaluation?
    /// Pictures written at the end.
    public var pictures: [URL]
    /// Why training stopped.
    public var stopReason: String
}

/// Errors of a VAE run that are failures during the run (exit code 1), not bad input.
public enum VAEError: Error, CustomStringConvertible, LocalizedError {
    /// The loss, a gradient or the weights became non-finite (or the loss diverged past 10⁸ nats per
    /// image) at `step`; nothing was saved for that step.
    case nonFiniteLoss(step: Int, lastCheckpoint: String?)

    /// The message gen prints: the step, the last good checkpoint and what to change.
    public var description: String {
        switch self {
        case .nonFiniteLoss(let s, let c):
            return "the loss became non-finite (NaN, infinity or above 10^8 nats per image: diverged) at step \(s); training stopped"
                + (c.map { ", the last good checkpoint is \($0)" } ?? ", no checkpoint had been written yet")
                + " (start a new run with a lower --learning-rate: a resumed run keeps its checkpoint's settings)"
        }
    }
    /// Same as ``description``.
    public var errorDescription: String? { description }
}

/// Checkpoint metadata keys of VAE runs.
enum VAEKeys {
    static let generator = "vae"
    static let training = "training"
    static let state = "state"
}

/// A loss above this many nats per image means the run has diverged (a fresh model starts near
/// S²·C·ln 2 ≈ 543 for 28×28): training stops as for a non-finite loss.
let maximumNatsPerImage = 1e8

/// Trains the convolutional VAE with exact resume, per-epoch evaluation and pictures, atomic
/// checkpoints, `metrics.csv` and `run.json`.
public final class VAETrainer {
    /// The effective settings (the checkpoint's when resuming, with the new stopping criteria).
    public let config: VAETrainingConfig
    /// The images.
    public let data: VAEData
    let model: VAEModel
    let optimizer: Adam
    var state: VAETrainingState
    let folder: RunFolder
    let progress: ProgressReporter
    var record: RunRecord
    var lastCheckpoint: URL?
    /// Test hook: the loss of this step (1-based) is replaced by NaN.
    var poisonStep: Int?

    /// Prepares a run: loads the data, builds or restores the model, creates the run folder.
    ///
    /// - Parameters:
    ///   - config: settings; when resuming only the stopping criteria, the checkpoint frequency, an
    ///     explicit `data`, `skipInvalid` and `maxPixels` are taken from it (the checkpoint's model
    ///     and optimisation settings win; options given in `arguments` that differ from them get a warning).
    ///   - resume: a checkpoint written by `gen vae train` (never modified if invalid).
    ///   - output: run folder (default `outputs/vae/<timestamp>`, or the checkpoint's folder when resuming).
    ///   - arguments: the command line, recorded in `run.json` and checked for options a resume ignores.
    /// - Throws: ``StudioError`` for bad options, an incompatible checkpoint (including missing,
    ///   mis-shaped or non-finite optimizer state) or an unusable folder; `CheckpointError` for
    ///   unreadable checkpoints; ``GenData/DatasetError`` and
    ///   ``GenData/ImageError`` for bad data; ``StudioError/invalidOption(_:)`` for a resume already
    ///   at or past the requested step total. Nothing is written before all checks pass.
    public init(config requested: VAETrainingConfig, resume: URL?, output: URL?, arguments: [String],
                progress: ProgressReporter) throws {
        try requested.validate()
        self.progress = progress
        var config = requested
        var restored: (checkpoint: Checkpoint, state: VAETrainingState)?
        if let resume {
            let ckpt = try Checkpoint.load(from: resume, expectingGenerator: VAEKeys.generator)
            guard let stored = try ckpt.metadataIfPresent(VAETrainingConfig.self, forKey: VAEKeys.training),
                  let st = try ckpt.metadataIfPresent(VAETrainingState.self, forKey: VAEKeys.state) else {
                throw StudioError.incompatibleCheckpoint(path: resume.path, reason: "checkpoint lacks the training settings or state of a VAE run")
            }
            do { try stored.validate() } catch {
                throw StudioError.incompatibleCheckpoint(path: resume.path, reason: "stored settings are invalid: \(error)")
            }
            var merged = stored
            merged.epochs = requested.epochs
            merged.steps = requested.steps
            merged.timeLimitMinutes = requested.timeLimitMinutes
            merged.checkpointEvery = requested.checkpointEvery ?? stored.checkpointEvery
            merged.data = requested.data ?? stored.data
            merged.skipInvalid = requested.skipInvalid || stored.skipInvalid
            merged.maxPixels = requested.maxPixels
            let ignored = ignoredOnResume(requested.settingsKeptOnResume(stored: stored), arguments: arguments)
            let changed = changedOnResume(requested.settingsAppliedOnResume(stored: stored), arguments: arguments)
            if let w = ignoredOnResumeWarning(ignored, changed: changed, resume: resume) { progress.report(.warning(w)) }
            config = merged
            restored = (ckpt, st)
        }
        // A data path is kept absolute in checkpoints, so that a resume without --data finds it
        // from any working folder (a dataset name stays a name).
        if let d = config.data, !d.isEmpty, FileManager.default.fileExists(atPath: d) {
            config.data = URL(fileURLWithPath: d).standardizedFileURL.path
        }
        self.config = config
        data = try VAEData.load(data: config.data, size: config.imageSize, channels: config.channels,
                                skipInvalid: config.skipInvalid, maxPixels: config.maxPixels ?? ImageDecodeOptions.defaultMaxPixels,
                                warn: { [progress] in progress.report(.warning($0)) })

        var rng = RandomGenerator(seed: config.seed)
        model = VAEModel(config: config.modelConfig, using: &rng)
        optimizer = Adam(learningRate: config.learningRate)
        state = VAETrainingState(position: DataPosition(seed: config.seed), rng: rng)
        if let restored, let resume {
            let path = resume.path
            // Exact resume needs the images the run was trained on (--data, or the checkpoint's source).
            try data.fingerprint.requireSame(as: restored.state.dataFingerprint, data: config.data ?? "fashion-mnist", checkpoint: path)
            try restoreParameters(model.parameters, from: restored.checkpoint, path: path)
            try restoreOptimizer(optimizer, step: restored.state.step, parameters: model.parameters, from: restored.checkpoint, path: path)
            guard restored.state.position.indexInEpoch <= data.trainCount, restored.state.step >= 0, restored.state.epoch >= 0 else {
                throw StudioError.incompatibleCheckpoint(path: path, reason: "its data position does not fit \(data.trainCount) training images (different --data?)")
            }
            state = restored.state
            // A total already reached is refused before the folder is touched (no record rewritten,
            // no evaluation repeated).
            let perEpoch = try BatchSampler(count: data.trainCount, batchSize: min(config.batchSize, data.trainCount),
                                            seed: config.seed, dropLast: false).batchesPerEpoch
            try refuseResumeWithNothingToDo(resume: resume, step: state.step,
                                            total: stepTotal(steps: config.steps, epochs: config.epochs, perEpoch: perEpoch))
        }
        // (A checkpoint written before fingerprints were kept gets these images' from now on.)
        state.dataFingerprint = data.fingerprint
        folder = try trainingFolder(output: output, resume: resume, generator: "vae", rewrites: [])
        record = RunRecord(generator: "vae", arguments: arguments, settings: settingsDescription(config), seed: config.seed)
        record.settings["data_description"] = data.description
        lastCheckpoint = restored != nil ? resume : nil
        resumedInFolderAt = restored != nil ? stepResumedInOwnFolder(resume, step: state.step, folder: folder) : nil
    }

    /// The step this run resumed from in the checkpoint's own folder (its metrics are this run's);
    /// nil otherwise.
    var resumedInFolderAt: Int?

    /// The model being trained.
    public var currentModel: VAEModel { model }
    /// The run folder.
    public var runFolder: URL { folder.url }

    /// Writes `checkpoint.safetensors` atomically: weights, Adam moments, settings and state; then
    /// `run.json` as unfinished at this step (see ``RunFolder/writeCheckpointRecord(_:step:)``).
    @discardableResult
    func saveCheckpoint() throws -> URL {
        var ckpt = Checkpoint(generator: VAEKeys.generator)
        storeParameters(model.parameters, optimizer: optimizer, into: &ckpt)
        try ckpt.setMetadata(model.config, forKey: Checkpoint.Key.config)
        try ckpt.setMetadata(config, forKey: VAEKeys.training)
        try ckpt.setMetadata(state, forKey: VAEKeys.state)
        try ckpt.setMetadata(state.position, forKey: Checkpoint.Key.dataPosition)
        ckpt.setRandomGenerator(state.rng)
        ckpt.metadata[Checkpoint.Key.step] = String(state.step)
        ckpt.metadata[Checkpoint.Key.epoch] = String(state.epoch)
        ckpt.metadata[Checkpoint.Key.optimizer] = optimizer.name
        let url = folder.file("checkpoint.safetensors")
        try ckpt.save(to: url)
        lastCheckpoint = url
        try folder.writeCheckpointRecord(record, step: state.step)
        progress.report(.wrote(url, what: "checkpoint"))
        return url
    }

    /// The negative ELBO on the evaluation images (at most `maxEvaluationImages`), one z per image
    /// drawn from a generator seeded by the run seed and `round` (the training noise is untouched).
    /// Training passes the step count, so the same weights always get the same estimate (a resumed
    /// session that takes no step reports the number its folder's `metrics.csv` already holds).
    public func evaluate(round: Int) -> VAEEvaluation {
        let n = min(data.testCount, config.maxEvaluationImages)
        var rng = RandomGenerator(seed: config.seed &+ 0xE7A1 &+ UInt64(truncatingIfNeeded: round) &* 104_729)
        var rec = 0.0, kl = 0.0
        var s = 0
        while s < n {
            let e = min(s + model.inferenceChunk(limit: 500), n)
            let noise = Tensor.normal([e - s, config.latentDim], using: &rng)
            let (r, k) = model.evaluationTerms(data.batch(Array(s..<e), test: true), noise: noise,
                                               parts: VAEModel.partitions(batch: e - s))
            rec += r; kl += k
            s = e
        }
        return VAEEvaluation(negativeELBO: (rec + kl) / Double(n), reconstruction: rec / Double(n), kl: kl / Double(n), images: n)
    }

    /// Writes the per-epoch pictures under `pictures/` with names starting `prefix`: reconstructions,
    /// prior samples, and for a 2-D latent space the manifold and the scatter plot of test means.
    /// A picture holding a non-finite value is not written (a warning says so).
    func writePictures(prefix: String) throws -> [URL] {
        let dir = folder.file("pictures")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var written: [URL] = []
        func write(_ image: Image, _ name: String, _ what: String) throws {
            guard VAEPictures.isFinite(image) else {
                progress.report(.warning("\(what) holds non-finite values: not written"))
                return
            }
            let url = dir.appendingPathComponent("\(prefix)-\(name).png")
            try image.write(to: url.path)
            written.append(url)
            progress.report(.wrote(url, what: what))
        }
        let k = min(config.reconstructionCount, data.testCount)
        let originals = (0..<k).map { data.testImage($0) }
        let recon = model.decodeImages(model.latentMeans(data.batch(Array(0..<k), test: true)))
        try write(try VAEPictures.reconstructionGrid(originals: originals, reconstructions: recon), "reconstructions", "reconstructions")
        var rng = RandomGenerator(seed: config.seed &+ 0x5A3D)   // the same prior draws every epoch
        let cols = Int(Double(config.sampleCount).squareRoot().rounded(.up))
        try write(try model.priorSampleGrid(count: config.sampleCount, columns: cols, using: &rng), "samples", "prior samples")
        if config.latentDim == 2 {
            try write(try model.manifold(n: config.manifoldSize), "manifold", "latent manifold")
            let n = min(data.testCount, config.maxEvaluationImages)
            var points: [(Float, Float)] = []
            var s = 0
            while s < n {
                let e = min(s + model.inferenceChunk(limit: 500), n)
                let m = model.latentMeans(data.batch(Array(s..<e), test: true)).scalars
                for i in 0..<(e - s) { points.append((m[2 * i], m[2 * i + 1])) }
                s = e
            }
            let labels = data.testLabels.map { Array($0.prefix(n)) }
            try write(VAEPictures.scatterPlot(points: points, labels: labels), "latent", "latent scatter plot")
        }
        return written
    }

    /// Runs training until a stopping criterion (epochs, steps, time limit, `shouldStop`) is met.
    /// - Throws: ``VAEError/nonFiniteLoss(step:lastCheckpoint:)`` (no checkpoint or picture is written
    ///   for that step; the last good checkpoint stays as it was);
    ///   ``StudioError/interruptedBeforeFirstStep(resumed:)`` when `shouldStop` is already true before
    ///   the first step (nothing is written; a folder this run made is removed),
    ///   and file-writing errors.
    public func run(shouldStop: () -> Bool = { false }) throws -> VAETrainingSummary {
        try runRecordingFailure(in: folder, failure: { failedRunRecord(record, step: state.step, lastCheckpoint: lastCheckpoint) }) {
            try runTraining(shouldStop: shouldStop)
        }
    }

    func runTraining(shouldStop: () -> Bool) throws -> VAETrainingSummary {
        // Stopped while the data was loading: write nothing (no step-0 pictures or checkpoint).
        var session = try TrainingSession(step: state.step, resumed: lastCheckpoint, shouldStop: shouldStop)
        // This session's first writes, right before its first step (or at its end when it takes none).
        func beginSession() throws { try session.begin(folder: folder, droppingMetricsRowsAfter: resumedInFolderAt) }
        let startTime = Date()
        let sessionStartElapsed = state.elapsed
        let batch = min(config.batchSize, data.trainCount)
        if batch < config.batchSize {
            progress.report(.warning("only \(counted(data.trainCount, "training image")): using batch size \(batch) instead of \(config.batchSize)"))
        }
        var sampler = try BatchSampler(count: data.trainCount, batchSize: batch, seed: config.seed, shuffle: true,
                                       dropLast: false, position: state.position)
        let perEpoch = sampler.batchesPerEpoch
        let totalSteps = stepTotal(steps: config.steps, epochs: config.epochs, perEpoch: perEpoch)
        progress.report(.info("data: \(data.description); \(data.trainCount) training and \(data.testCount) evaluation images of \(config.imageSize)x\(config.imageSize)x\(config.channels); \(perEpoch) steps per epoch"))
        progress.report(.info("model: convolutional VAE, latent dimension \(config.latentDim), \(model.parameters.reduce(0) { $0 + $1.count }) parameters; Adam lr \(config.learningRate), batch \(batch), beta \(config.beta)"))
        if state.step > 0 { progress.report(.info("resuming at step \(state.step), epoch \(state.epoch + 1)")) }

        let params = model.parameters
        let metricsHeader = ["step", "epoch", "train_loss", "test_neg_elbo", "test_reconstruction", "test_kl", "elapsed_s", "samples_per_s"]
        var lastTrain: Double?
        var lastEval: VAEEvaluation?
        var pictures: [URL] = []
        var stopReason = "completed"
        var meter = ThroughputMeter()
        var stepsSinceRound = 0     // steps of this session since the last evaluation round
        func elapsedTotal() -> Double { sessionStartElapsed + Date().timeIntervalSince(startTime) }
        // `endOfEpoch`: the epoch's sums start again; at a stop mid-epoch they are kept (and
        // checkpointed), so the epoch's row after a resume covers the whole epoch.
        func endOfRound(epochLabel: Int, prefix: String, endOfEpoch: Bool) throws {
            let trainLoss = state.epochImages > 0 ? state.epochLossSum / Double(state.epochImages) : nil
            if let trainLoss { lastTrain = trainLoss }
            let ev = evaluate(round: state.step)
            lastEval = ev
            var values: [(String, Double)] = []
            if let trainLoss { values.append(("train loss", trainLoss)) }
            values += [("test -ELBO nats/image", ev.negativeELBO), ("reconstruction", ev.reconstruction), ("KL", ev.kl)]
            progress.report(.metrics(step: state.step, epoch: epochLabel, values: values))
            try folder.appendMetrics(header: metricsHeader, row: [
                String(state.step), String(epochLabel), trainLoss.map { String(format: "%.4f", $0) } ?? "",
                String(format: "%.4f", ev.negativeELBO), String(format: "%.4f", ev.reconstruction), String(format: "%.4f", ev.kl),
                String(format: "%.1f", elapsedTotal()), String(format: "%.1f", meter.rate)])
            pictures = try writePictures(prefix: prefix)
            if endOfEpoch { state.epochLossSum = 0; state.epochImages = 0 }
            stepsSinceRound = 0
        }

        while true {
            if let e = config.epochs, state.epoch >= e { stopReason = epochLimitReason(e); break }
            if let total = totalSteps, state.step >= total {
                stopReason = stepLimitReason(total: total, steps: config.steps, epochs: config.epochs)
                break
            }
            if let limit = config.timeLimitMinutes, Date().timeIntervalSince(startTime) >= limit * 60 {
                stopReason = "time limit of \(limit) minutes"; break
            }
            if try session.stopRequested(shouldStop, step: state.step) { stopReason = "interrupted"; break }
            try beginSession()

            let stepStart = Date()
            let indices = sampler.next()
            let x = data.batch(indices)
            let noise = Tensor.normal([indices.count, config.latentDim], using: &state.rng)
            let (rec, kl) = model.trainingGradients(x, noise: noise, beta: config.beta, scale: 1 / Float(indices.count),
                                                    parts: VAEModel.partitions(batch: indices.count))
            var lossValue = (rec + Double(config.beta) * kl) / Double(indices.count)
            if poisonStep == state.step + 1 { lossValue = .nan }
            guard lossValue.isFinite, lossValue <= maximumNatsPerImage else {
                throw VAEError.nonFiniteLoss(step: state.step + 1, lastCheckpoint: lastCheckpoint?.path)
            }
            guard globalGradientNorm(params).isFinite else {
                throw VAEError.nonFiniteLoss(step: state.step + 1, lastCheckpoint: lastCheckpoint?.path)
            }
            optimizer.update(params)
            for p in params { p.zeroGrad() }
            guard allFinite(params) else {
                throw VAEError.nonFiniteLoss(step: state.step + 1, lastCheckpoint: lastCheckpoint?.path)
            }
            state.step += 1
            state.position = sampler.position
            state.epochLossSum += lossValue * Double(indices.count); state.epochImages += indices.count
            stepsSinceRound += 1
            meter.record(units: Double(indices.count), seconds: Date().timeIntervalSince(stepStart))
            let eta = totalSteps.flatMap { total in meter.eta(remaining: Double(total - state.step) * Double(batch)) }
            progress.report(.step(step: state.step, totalSteps: totalSteps, epoch: state.epoch + 1, loss: lossValue,
                                  unit: "nats/image", rate: meter.rate, rateUnit: "samples/s", elapsed: elapsedTotal(), eta: eta))
            if sampler.epochFinished {
                state.epoch += 1
                try endOfRound(epochLabel: state.epoch, prefix: String(format: "epoch-%03d", state.epoch), endOfEpoch: true)
                // The time the checkpoint is written, after the round's evaluation, row and pictures:
                // a resumed session's rows then never show less than this one's.
                state.elapsed = elapsedTotal()
                try saveCheckpoint()
            } else if state.step != totalSteps, let every = config.checkpointEvery, state.step % every == 0 {
                // (Not at the last step: its checkpoint is the final one, written after the final
                // row and pictures, so that a run killed before them is not taken for finished.)
                state.elapsed = elapsedTotal()
                try saveCheckpoint()
            }
        }

        try beginSession()
        state.elapsed = elapsedTotal()
        if stepsSinceRound > 0 || lastCheckpoint == nil {
            try endOfRound(epochLabel: state.epoch + 1, prefix: String(format: "final-step-%d", state.step), endOfEpoch: false)
            state.elapsed = elapsedTotal()   // (after the row: see the epoch end)
            try saveCheckpoint()
        } else if lastEval == nil {
            lastEval = evaluate(round: state.step)
        }
        record.finished = ISO8601DateFormatter().string(from: Date())
        record.timings["training_session_s"] = Date().timeIntervalSince(startTime)
        record.timings["training_total_s"] = state.elapsed
        record.outcome = stopReason
        record.settings["steps_done"] = String(state.step)
        if let ev = lastEval {
            record.settings["test_neg_elbo"] = String(format: "%.4f", ev.negativeELBO)
            record.settings["test_reconstruction"] = String(format: "%.4f", ev.reconstruction)
            record.settings["test_kl"] = String(format: "%.4f", ev.kl)
        }
        try folder.writeRecord(record)
        return VAETrainingSummary(folder: folder.url, checkpoint: lastCheckpoint ?? folder.file("checkpoint.safetensors"),
                                  steps: state.step, epochs: state.epoch, trainLoss: lastTrain, evaluation: lastEval,
                                  pictures: pictures, stopReason: stopReason)
    }
}

extension VAEModel {
    /// Loads a model from a `gen vae train` checkpoint (weights only).
    /// - Throws: `CheckpointError` (unreadable, not a gen checkpoint, another generator's) or
    ///   ``StudioError/incompatibleCheckpoint(path:reason:)`` (bad configuration, missing, misshapen
    ///   or non-finite tensors).
    public static func load(from url: URL) throws -> VAEModel {
        let ckpt = try Checkpoint.load(from: url, expectingGenerator: VAEKeys.generator)
        guard let config = try ckpt.metadataIfPresent(VAEModelConfig.self, forKey: Checkpoint.Key.config) else {
            throw StudioError.incompatibleCheckpoint(path: url.path, reason: "checkpoint lacks the model configuration")
        }
        do { try config.validate() } catch {
            throw StudioError.incompatibleCheckpoint(path: url.path, reason: "model configuration is invalid: \(error)")
        }
        var rng = RandomGenerator(seed: 0)
        let model = VAEModel(config: config, using: &rng)
        try restoreParameters(model.parameters, from: ckpt, path: url.path)
        return model
    }
}
