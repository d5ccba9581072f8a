import Foundation
import GenTensor
import GenNN
import GenData

/// Training settings for `gen text train`. Defaults are the book's model (F. Chollet, *Deep
/// Learning with Python*, §8.1: windows of 60 characters taken every 3, LSTM 128, Dense softmax,
/// RMSprop with learning rate 0.01, batch 128).
public struct TextTrainingConfig: Codable, Equatable {
    /// Stacked LSTM layers (≥ 1).
    public var layers = 1
    /// Units per LSTM layer (≥ 1).
    public var units = 128
    /// Dropout between LSTM layers, in [0, 1).
    public var dropout: Float = 0
    /// Window length in characters (≥ 1).
    public var sequenceLength = 60
    /// Distance between the starts of consecutive training windows (≥ 1; book: 3).
    public var windowStride = 3
    /// Which positions carry a loss.
    public var targets: TextTargets = .last
    /// Windows per optimizer step (≥ 1).
    public var batchSize = 128
    /// Step size (> 0).
    public var learningRate: Float = 0.01
    /// Multiplies the learning rate by this factor after every epoch (char-rnn's
    /// `learning_rate_decay`), in (0, 1]; 1 = constant. The rate at epoch e is
    /// `learningRate · decay^e`, so it follows from the epoch alone and resumes exactly.
    public var learningRateDecay: Float = 1
    /// `rmsprop`, `adam` or `sgd` (momentum 0.9).
    public var optimizer = "rmsprop"
    /// Clip gradients to this global L2 norm (nil = off).
    public var clipNorm: Float?
    /// Clip each gradient element to ±this (nil = off).
    public var clipValue: Float?
    /// Fraction of the corpus held out from its end for validation, in [0, 0.5].
    public var validationSplit: Double = 0.1
    /// Seed of every random choice (initialisation, shuffling, dropout, samples).
    public var seed: UInt64 = 1
    /// Stop after this many epochs in total (nil = no limit).
    public var epochs: Int?
    /// Stop after this many optimizer steps in total (nil = no limit).
    public var steps: Int?
    /// Stop after this many minutes of this session's wall time (nil = no limit).
    public var timeLimitMinutes: Double?
    /// Also write a checkpoint every this many steps (nil = only at epoch ends and at the end).
    public var checkpointEvery: Int?
    /// Evaluate on the validation set every this many steps as well as at epoch ends (nil = off).
    public var evaluateEvery: Int?
    /// Sample temperatures written after each epoch.
    public var sampleTemperatures: [Float] = [0.2, 0.5, 1.0, 1.2]
    /// Characters per written sample.
    public var sampleLength = 400
    /// Most validation windows evaluated (evenly spaced over the held-out text).
    public var maxValidationWindows = 4096

    /// The settings a resumed run takes from its checkpoint `stored` rather than from these, with the
    /// command-line option of each (for the warning about options given with `--resume`).
    public func settingsKeptOnResume(stored: TextTrainingConfig) -> [KeptSetting] {
        [KeptSetting("--layers", layers, stored.layers), KeptSetting("--units", units, stored.units),
         KeptSetting("--dropout", dropout, stored.dropout), KeptSetting("--seq-length", sequenceLength, stored.sequenceLength),
         KeptSetting("--window-step", windowStride, stored.windowStride), KeptSetting("--targets", targets, stored.targets),
         KeptSetting("--optimizer", optimizer, stored.optimizer), KeptSetting("--lr-decay", learningRateDecay, stored.learningRateDecay),
         KeptSetting("--clip-norm", clipNorm, stored.clipNorm), KeptSetting("--clip-value", clipValue, stored.clipValue),
         KeptSetting("--validation-split", validationSplit, stored.validationSplit),
         KeptSetting("--sample-length", sampleLength, stored.sampleLength), KeptSetting("--batch-size", batchSize, stored.batchSize),
         KeptSetting("--learning-rate", learningRate, stored.learningRate), KeptSetting("--seed", seed, stored.seed)]
    }

    /// The cadence settings a resumed run takes from these when they are given (else from its
    /// checkpoint `stored`), with the command-line option of each (for the warning about the
    /// options given with `--resume` that change the checkpoint's value).
    public func settingsAppliedOnResume(stored: TextTrainingConfig) -> [KeptSetting] {
        [KeptSetting("--checkpoint-every", checkpointEvery, stored.checkpointEvery),
         KeptSetting("--evaluate-every", evaluateEvery, stored.evaluateEvery)]
    }

    /// The book's settings (see each property).
    public init() {}

    /// Decodes settings; keys added after a checkpoint was written take their defaults.
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ current: T) throws -> T { try c.decodeIfPresent(T.self, forKey: key) ?? current }
        layers = try value(.layers, layers); units = try value(.units, units); dropout = try value(.dropout, dropout)
        sequenceLength = try value(.sequenceLength, sequenceLength); windowStride = try value(.windowStride, windowStride)
        targets = try value(.targets, targets); batchSize = try value(.batchSize, batchSize)
        learningRate = try value(.learningRate, learningRate); learningRateDecay = try value(.learningRateDecay, learningRateDecay)
        optimizer = try value(.optimizer, optimizer)
        clipNorm = try c.decodeIfPresent(Float.self, forKey: .clipNorm); clipValue = try c.decodeIfPresent(Float.self, forKey: .clipValue)
        validationSplit = try value(.validationSplit, validationSplit); seed = try value(.seed, seed)
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs); steps = try c.decodeIfPresent(Int.self, forKey: .steps)
        timeLimitMinutes = try c.decodeIfPresent(Double.self, forKey: .timeLimitMinutes)
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery)
        evaluateEvery = try c.decodeIfPresent(Int.self, forKey: .evaluateEvery)
        sampleTemperatures = try value(.sampleTemperatures, sampleTemperatures); sampleLength = try value(.sampleLength, sampleLength)
        maxValidationWindows = try value(.maxValidationWindows, maxValidationWindows)
    }

    /// The learning rate in effect during `epoch` (0-based).
    public func learningRate(atEpoch epoch: Int) -> Float {
        learningRateDecay == 1 ? learningRate : learningRate * Float(Foundation.pow(Double(learningRateDecay), Double(epoch)))
    }

    /// Checks ranges; the message names the option as the command line spells it.
    /// - Throws: ``StudioError/invalidOption(_:)``.
    public func validate() throws {
        func bad(_ m: String) -> StudioError { .invalidOption(m) }
        if layers < 1 { throw bad("--layers must be at least 1 (got \(layers))") }
        if units < 1 { throw bad("--units must be at least 1 (got \(units))") }
        if !(dropout >= 0 && dropout < 1) { throw bad("--dropout must be in [0, 1) (got \(dropout))") }
        if sequenceLength < 1 { throw bad("--seq-length must be at least 1 (got \(sequenceLength))") }
        if windowStride < 1 { throw bad("--window-step must be at least 1 (got \(windowStride))") }
        if batchSize < 1 { throw bad("--batch-size must be at least 1 (got \(batchSize))") }
        if !(learningRate > 0 && learningRate.isFinite) { throw bad("--learning-rate must be positive (got \(learningRate))") }
        if !(learningRateDecay > 0 && learningRateDecay <= 1) { throw bad("--lr-decay must be in (0, 1] (got \(learningRateDecay))") }
        if !["rmsprop", "adam", "sgd"].contains(optimizer) { throw bad("--optimizer must be rmsprop, adam or sgd (got \(optimizer))") }
        if units > 8192 { throw bad("--units must be at most 8192 (got \(units))") }
        if layers > 64 { throw bad("--layers must be at most 64 (got \(layers))") }
        if sequenceLength > 100_000 { throw bad("--seq-length must be at most 100000 (got \(sequenceLength))") }
        // Training memory is dominated by the LSTM's saved activations: about 10 floats per unit,
        // step and window and layer, plus the output layer's logits. Refuse what cannot fit.
        let estimate = Double(batchSize) * Double(sequenceLength) * Double(units) * Double(layers) * 10 * 4
        if estimate > 16 * 1_073_741_824 {
            throw bad(String(format: "--batch-size %d × --seq-length %d × --units %d × --layers %d needs about %.0f GB of memory for training; reduce them",
                             batchSize, sequenceLength, units, layers, estimate / 1e9))
        }
        if let c = clipNorm, !(c > 0 && c.isFinite) { throw bad("--clip-norm must be positive (got \(c))") }
        if let c = clipValue, !(c > 0 && c.isFinite) { throw bad("--clip-value must be positive (got \(c))") }
        if !(validationSplit >= 0 && validationSplit <= 0.5) { throw bad("--validation-split must be in [0, 0.5] (got \(validationSplit))") }
        if let e = epochs, e < 1 { throw bad("--epochs must be at least 1 (got \(e))") }
        if let s = steps, s < 1 { throw bad("--steps must be at least 1 (got \(s))") }
        if let t = timeLimitMinutes, !(t > 0 && t.isFinite) { throw bad("--time-limit must be a finite positive number of minutes (got \(t))") }
        if let c = checkpointEvery, c < 1 { throw bad("--checkpoint-every must be at least 1 (got \(c))") }
        if sampleLength < 0 { throw bad("sample length must be non-negative") }
        if sampleTemperatures.contains(where: { !($0 >= 0 && $0.isFinite) }) { throw bad("temperatures must be ≥ 0") }
    }

    var modelConfigFields: (Int, Int, Float, Int, TextTargets) { (layers, units, dropout, sequenceLength, targets) }
}

/// Where training stands; saved in checkpoints so a run resumes exactly.
public struct TextTrainingState: Codable, Equatable {
    /// Optimizer steps done.
    public var step = 0
    /// Current epoch (0-based: the epoch being trained).
    public var epoch = 0
    /// Batches of the current epoch already consumed.
    public var batchInEpoch = 0
    /// The dropout/initialisation generator.
    public var rng: RandomGenerator
    /// Seconds of training done in earlier sessions.
    public var elapsed: Double = 0
    /// Lowest validation loss seen so far, in bits per character, and the step it was measured at
    /// (nil before the first evaluation, or without a validation set). `best.safetensors` holds the
    /// weights of that step.
    public var bestValidationBitsPerCharacter: Double?
    /// The step ``bestValidationBitsPerCharacter`` was measured at.
    public var bestValidationStep: Int?
    /// Sum of the current epoch's training losses (nats per character) and the number of steps
    /// summed, so that an epoch's train loss in `metrics.csv` covers all of it across a resume.
    public var epochLossSum = 0.0
    /// Steps summed in ``epochLossSum``.
    public var epochLossCount = 0
    /// The corpus the run trains on (nil in checkpoints written before it was kept): a resume on
    /// another text is refused.
    public var dataFingerprint: DataFingerprint?

    /// A fresh state at step 0.
    public init(rng: RandomGenerator) { self.rng = rng }

    private enum CodingKeys: String, CodingKey {
        case step, epoch, batchInEpoch, rng, elapsed, bestValidationBitsPerCharacter, bestValidationStep, epochLossSum, epochLossCount
        case dataFingerprint
    }

    /// Decodes a state; the epoch loss sums and the data fingerprint are absent from checkpoints
    /// written before they were kept, and are then 0 and nil.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        step = try c.decode(Int.self, forKey: .step)
        epoch = try c.decode(Int.self, forKey: .epoch)
        batchInEpoch = try c.decode(Int.self, forKey: .batchInEpoch)
        rng = try c.decode(RandomGenerator.self, forKey: .rng)
        elapsed = try c.decodeIfPresent(Double.self, forKey: .elapsed) ?? 0
        bestValidationBitsPerCharacter = try c.decodeIfPresent(Double.self, forKey: .bestValidationBitsPerCharacter)
        bestValidationStep = try c.decodeIfPresent(Int.self, forKey: .bestValidationStep)
        epochLossSum = try c.decodeIfPresent(Double.self, forKey: .epochLossSum) ?? 0
        epochLossCount = try c.decodeIfPresent(Int.self, forKey: .epochLossCount) ?? 0
        dataFingerprint = try c.decodeIfPresent(DataFingerprint.self, forKey: .dataFingerprint)
    }
}

/// What a finished training run reports.
public struct TextTrainingSummary {
    /// The run folder.
    public var folder: URL
    /// The last checkpoint written.
    public var checkpoint: URL
    /// Steps done in total, over every session.
    public var steps: Int
    /// Epochs completed in total.
    public var epochs: Int
    /// Last validation loss in bits per character (nil when no validation set).
    public var validationBitsPerCharacter: Double?
    /// Lowest validation loss of the run (bits per character), its step, and `best.safetensors`
    /// holding the weights of that step (nil when no validation set).
    public var best: (bitsPerCharacter: Double, step: Int, checkpoint: URL)?
    /// Last training loss (mean over the last epoch's steps) in bits per character.
    public var trainBitsPerCharacter: Double?
    /// Samples written at the end, by temperature.
    public var samples: [(temperature: Float, text: String)]
    /// Why training stopped.
    public var stopReason: String
}

/// The training windows over a token sequence.
struct WindowSet {
    let tokens: [Int32]
    let starts: [Int]
    let length: Int
    let targets: TextTargets

    init(tokens: [Int32], length: Int, stride: Int, targets: TextTargets) {
        self.tokens = tokens
        self.length = length
        self.targets = targets
        let last = tokens.count - length - 1   // a window needs length + 1 tokens (inputs and next)
        starts = last >= 0 ? Array(Swift.stride(from: 0, through: last, by: stride)) : []
    }

    /// Fills inputs `[n, length]` and labels (`n` or `n·length`) for the given windows.
    func batch(_ indices: ArraySlice<Int>) -> (inputs: [Int32], labels: [Int32]) {
        var inputs = [Int32](); inputs.reserveCapacity(indices.count * length)
        var labels = [Int32](); labels.reserveCapacity(indices.count * (targets == .all ? length : 1))
        for w in indices {
            let s = starts[w]
            inputs.append(contentsOf: tokens[s..<(s + length)])
            switch targets {
            case .last: labels.append(tokens[s + length])
            case .all: labels.append(contentsOf: tokens[(s + 1)...(s + length)])
            }
        }
        return (inputs, labels)
    }
}

/// `log₂ e`: converts nats to bits.
let bitsPerNat = 1 / Foundation.log(2.0)

/// A training loss above this many bits per character means the run has diverged (a sane model
/// starts near log₂ V ≤ 21 bits; 10⁶ bits needs logit gaps near 7·10⁵): training stops as for a
/// non-finite loss.
let maximumBitsPerCharacter = 1e6


/// Checkpoint metadata keys for text runs.
enum TextKeys {
    static let generator = "text"
    static let training = "training"
    static let state = "state"
}

/// Trains a character-level LSTM on a text file, with validation in bits per character, periodic
/// samples, atomic checkpoints and exact resume.
public final class TextTrainer {
    /// The settings in force: the command line's, or the resumed checkpoint's for the kept ones.
    public let config: TextTrainingConfig
    let corpus: TextCorpus
    let model: TextModel
    let optimizer: Optimizer
    var state: TextTrainingState
    let folder: RunFolder
    let corpusURL: URL
    let progress: ProgressReporter
    var record: RunRecord
    var lastCheckpoint: URL?
    /// `best.safetensors` once this run has written it.
    var bestWritten: URL?
    /// The newest checkpoint a stopped run can be resumed from: `checkpoint.safetensors` once
    /// written (or the resumed one), else `best.safetensors` when this run wrote one (it holds the
    /// whole training state too).
    var lastGoodCheckpoint: URL? { lastCheckpoint ?? bestWritten }
    /// The step this run resumed from in the checkpoint's own folder (its metrics and best
    /// checkpoint are this run's); nil otherwise.
    var resumedInFolderAt: Int?
    let train: WindowSet
    let validation: WindowSet

    /// Prepares a run: reads the corpus, builds or restores the model, creates the run folder.
    ///
    /// - Parameters:
    ///   - corpusURL: UTF-8 text file.
    ///   - config: settings; ignored except for stopping criteria and checkpoint frequency when resuming
    ///     (the checkpoint's own settings are used so the run continues exactly).
    ///   - resume: a checkpoint written by an earlier `gen text train` (left untouched if invalid).
    ///   - output: run folder (default `outputs/text/<timestamp>`, or the checkpoint's folder when resuming).
    /// - Throws: `TextError` for a bad corpus, `CheckpointError` for a bad checkpoint,
    ///   ``StudioError`` for bad options or an unusable folder. Nothing is written before all checks pass.
    public init(corpus corpusURL: URL, config requested: TextTrainingConfig, resume: URL?, output: URL?,
                arguments: [String], progress: ProgressReporter) throws {
        try requested.validate()
        self.progress = progress
        self.corpusURL = corpusURL
        var config = requested
        var restored: (checkpoint: Checkpoint, state: TextTrainingState)?
        if let resume {
            let ckpt = try Checkpoint.load(from: resume, expectingGenerator: TextKeys.generator)
            guard let stored = try ckpt.metadataIfPresent(TextTrainingConfig.self, forKey: TextKeys.training),
                  let st = try ckpt.metadataIfPresent(TextTrainingState.self, forKey: TextKeys.state) else {
                throw StudioError.incompatibleCheckpoint(path: resume.path, reason: "checkpoint lacks the training settings or state of a text run")
            }
            // Keep the stored model and optimisation settings; take the new stopping criteria.
            var merged = stored
            merged.epochs = requested.epochs
            merged.steps = requested.steps
            merged.timeLimitMinutes = requested.timeLimitMinutes
            merged.checkpointEvery = requested.checkpointEvery ?? stored.checkpointEvery
            merged.evaluateEvery = requested.evaluateEvery ?? stored.evaluateEvery
            let ignored = ignoredOnResume(requested.settingsKeptOnResume(stored: stored), arguments: arguments)
            let changed = changedOnResume(requested.settingsAppliedOnResume(stored: stored), arguments: arguments)
            if let w = ignoredOnResumeWarning(ignored, changed: changed, resume: resume) { progress.report(.warning(w)) }
            do { try merged.validate() } catch {
                throw StudioError.incompatibleCheckpoint(path: resume.path, reason: "its stored training settings are invalid: \(error)")
            }
            guard st.step >= 0, st.epoch >= 0, st.batchInEpoch >= 0, st.elapsed >= 0, st.elapsed.isFinite else {
                throw StudioError.incompatibleCheckpoint(path: resume.path, reason: "its stored training state is invalid (negative step, epoch or position)")
            }
            config = merged
            restored = (ckpt, st)
        }
        self.config = config

        // Corpus and vocabulary (the checkpoint's vocabulary when resuming).
        var storedVocabulary: Vocabulary?
        if let restored {
            guard let v = try restored.checkpoint.metadataIfPresent(Vocabulary.self, forKey: Checkpoint.Key.vocabulary) else {
                throw StudioError.incompatibleCheckpoint(path: resume?.path ?? "", reason: "checkpoint has no vocabulary")
            }
            storedVocabulary = v
        }
        do {
            self.corpus = try TextCorpus.load(from: corpusURL, vocabulary: storedVocabulary)
        } catch TextError.unknownCharacters(let missing) where storedVocabulary != nil {
            throw StudioError.incompatibleCheckpoint(path: resume?.path ?? "",
                reason: "the corpus \(corpusURL.path) does not fit this checkpoint: \(TextError.unknownCharacters(missing))")
        }
        // Exact resume needs the text the run was trained on, not just one with the same symbols.
        let fingerprint = DataFingerprint(characters: corpus.count, hash: corpus.fingerprint)
        if let restored, let resume {
            try fingerprint.requireSame(as: restored.state.dataFingerprint, data: corpusURL.path, checkpoint: resume.path)
        }
        let (trainTokens, valTokens) = corpus.split(validationFraction: config.validationSplit)
        let needed = config.sequenceLength + 1
        guard trainTokens.count >= needed else {
            throw valTokens.isEmpty ? TextError.tooShort(file: corpusURL.path, length: trainTokens.count, needed: needed)
                : TextError.trainingPartTooShort(file: corpusURL.path, training: trainTokens.count,
                                                 total: trainTokens.count + valTokens.count, needed: needed)
        }
        train = WindowSet(tokens: trainTokens, length: config.sequenceLength, stride: config.windowStride, targets: config.targets)
        validation = WindowSet(tokens: valTokens, length: config.sequenceLength, stride: 1, targets: .last)

        // Model and optimizer.
        var rng = RandomGenerator(seed: config.seed)
        let modelConfig = TextModelConfig(vocabularySize: corpus.vocabulary.count, layers: config.layers, units: config.units,
                                          dropout: config.dropout, sequenceLength: config.sequenceLength, targets: config.targets)
        model = TextModel(config: modelConfig, using: &rng)
        optimizer = try makeOptimizer(named: config.optimizer, learningRate: config.learningRate)
        state = TextTrainingState(rng: rng)
        if let restored {
            try TextTrainer.restore(model: model, optimizer: optimizer, from: restored.checkpoint, path: resume!.path)
            state = restored.state
        }
        // (A checkpoint written before fingerprints were kept gets this corpus's from now on.)
        state.dataFingerprint = fingerprint

        if restored != nil, let resume {
            // The saved data position must fit this corpus, and there must be steps left to train.
            let windows = train.starts.count
            let batchesPerEpoch = max(windows / max(min(config.batchSize, windows), 1), 1)
            guard state.batchInEpoch < batchesPerEpoch else {
                throw StudioError.incompatibleCheckpoint(path: resume.path,
                    reason: "it stopped at batch \(state.batchInEpoch) of an epoch, but this corpus gives only \(batchesPerEpoch) batches per epoch: exact resume needs the corpus the run was trained on")
            }
            try refuseResumeWithNothingToDo(resume: resume, step: state.step,
                                            total: stepTotal(steps: config.steps, epochs: config.epochs, perEpoch: batchesPerEpoch))
        }
        folder = try trainingFolder(output: output, resume: resume, generator: "text", rewrites: ["best.safetensors"])
        record = RunRecord(generator: "text", arguments: arguments, settings: settingsDescription(config), seed: config.seed)
        lastCheckpoint = restored != nil ? resume : nil
        // Only a run continuing in the resumed checkpoint's own folder inherits that folder's best
        // and metrics.
        resumedInFolderAt = restored != nil ? stepResumedInOwnFolder(resume, step: state.step, folder: folder) : nil
        if resumedInFolderAt != nil { adoptFolderBest() }
    }

    /// When a run resumes in its folder, the folder's `best.safetensors` may record a lower
    /// validation loss than the resumed checkpoint knows (the process was killed after a later
    /// improvement but before the next checkpoint): keep that best, so a worse model never replaces it.
    func adoptFolderBest() {
        let url = folder.file("best.safetensors")
        guard FileManager.default.fileExists(atPath: url.path),
              let ckpt = try? Checkpoint.load(from: url, expectingGenerator: TextKeys.generator),
              let st = try? ckpt.metadataIfPresent(TextTrainingState.self, forKey: TextKeys.state),
              let v = st.bestValidationBitsPerCharacter, v.isFinite else { return }
        if state.bestValidationBitsPerCharacter.map({ v < $0 }) ?? true {
            state.bestValidationBitsPerCharacter = v
            state.bestValidationStep = st.bestValidationStep
        }
    }

    /// Loads parameters and optimizer state by name, strictly.
    static func restore(model: TextModel, optimizer: Optimizer, from ckpt: Checkpoint, path: String) throws {
        try restoreParameters(model.parameters, from: ckpt, path: path)
        let st = try ckpt.metadataIfPresent(TextTrainingState.self, forKey: TextKeys.state)
        try restoreOptimizer(optimizer, step: st?.step ?? 0, parameters: model.parameters, from: ckpt, path: path)
    }

    /// The model being trained.
    public var currentModel: TextModel { model }
    /// The vocabulary in use.
    public var vocabulary: Vocabulary { corpus.vocabulary }
    /// The run folder.
    public var runFolder: URL { folder.url }

    /// Writes a checkpoint atomically (`checkpoint.safetensors` in the run folder, or `name`); after
    /// `checkpoint.safetensors`, also `run.json` as unfinished at this step.
    @discardableResult
    func saveCheckpoint(named name: String = "checkpoint.safetensors") throws -> URL {
        var ckpt = Checkpoint(generator: TextKeys.generator)
        storeParameters(model.parameters, optimizer: optimizer, into: &ckpt)
        try ckpt.setMetadata(model.config, forKey: Checkpoint.Key.config)
        try ckpt.setMetadata(config, forKey: TextKeys.training)
        try ckpt.setMetadata(state, forKey: TextKeys.state)
        try ckpt.setMetadata(corpus.vocabulary, forKey: Checkpoint.Key.vocabulary)
        ckpt.metadata[Checkpoint.Key.step] = String(state.step)
        ckpt.metadata[Checkpoint.Key.epoch] = String(state.epoch)
        ckpt.metadata[Checkpoint.Key.optimizer] = optimizer.name
        let url = folder.file(name)
        try ckpt.save(to: url)
        if name == "checkpoint.safetensors" {
            lastCheckpoint = url
            try folder.writeCheckpointRecord(record, step: state.step)
        } else {
            bestWritten = url
        }
        progress.report(.wrote(url, what: name == "checkpoint.safetensors" ? "checkpoint" : "best checkpoint"))
        return url
    }

    /// Records a validation loss; when it is the lowest so far, writes the current weights to
    /// `best.safetensors` (atomically; the previous best stays intact until the new one is
    /// complete), as char-rnn keeps its best checkpoint by validation loss.
    /// - Throws: ``StudioError/nonFiniteLoss(step:lastCheckpoint:)`` for a non-finite or diverged
    ///   (above 10⁶ bits/char) validation loss, and file-writing errors.
    func noteValidation(_ bpc: Double?, elapsed: Double) throws {
        guard let bpc else { return }
        try refuseDiverged(bpc)
        // A run resumed into another folder starts that folder's best afresh.
        if let best = state.bestValidationBitsPerCharacter, best <= bpc,
           FileManager.default.fileExists(atPath: folder.file("best.safetensors").path) { return }
        state.bestValidationBitsPerCharacter = bpc
        state.bestValidationStep = state.step
        state.elapsed = elapsed
        try saveCheckpoint(named: "best.safetensors")
    }

    /// Weights that diverged in the step just taken show in the validation loss before the next
    /// step's loss does: stop there, before they reach `metrics.csv` or any checkpoint.
    /// - Throws: ``StudioError/nonFiniteLoss(step:lastCheckpoint:)`` unless `bpc` is finite and at
    ///   most 10⁶ bits/char.
    func refuseDiverged(_ bpc: Double?) throws {
        if let bpc, !(bpc.isFinite && bpc <= maximumBitsPerCharacter) {
            throw StudioError.nonFiniteLoss(step: state.step, lastCheckpoint: lastGoodCheckpoint?.path)
        }
    }

    /// Mean loss in bits per character over the validation windows (evenly spaced, at most
    /// `maxValidationWindows`), or nil when the held-out text is shorter than one window.
    ///
    /// Validation windows may start at every held-out position (the picks are spread evenly over
    /// all of them, whatever the training window step), and each scores the character after it
    /// given the `sequenceLength` characters before it, whatever `--targets` is: with `all`, training also scores positions with little or no context,
    /// which would make the held-out number depend on the training objective rather than on how
    /// well the model predicts text.
    public func validationBitsPerCharacter() -> Double? {
        let n = validation.starts.count
        guard n > 0 else { return nil }
        let use = min(n, config.maxValidationWindows)
        let picks = (0..<use).map { $0 * n / use }
        var total = 0.0, count = 0
        var rng = RandomGenerator(seed: 0)
        withNoGrad {
            var i = 0
            while i < picks.count {
                let chunk = picks[i..<min(i + config.batchSize, picks.count)]
                let (inputs, labels) = validation.batch(chunk)
                let logits = model.logits(tokens: inputs, batch: chunk.count, training: false, rng: &rng, positions: .last)
                let loss = Tensor.softmaxCrossEntropy(logits: logits, labels: labels).scalar
                total += Double(loss) * Double(labels.count)
                count += labels.count
                i += config.batchSize
            }
        }
        return count > 0 ? total / Double(count) * bitsPerNat : nil
    }

    /// Samples `sampleLength` characters at each configured temperature, primed with a random
    /// training window (as the book does), from a generator seeded by the run seed and epoch.
    public func makeSamples(epoch: Int) -> [(temperature: Float, text: String)] {
        let sampler = TextSampler(model: model)
        var rng = RandomGenerator(seed: config.seed &+ 0x5EED &+ UInt64(epoch) &* 7919)
        let start = train.starts.isEmpty ? 0 : train.starts[rng.nextInt(below: train.starts.count)]
        let prime = Array(train.tokens[start..<min(start + config.sequenceLength, train.tokens.count)])
        return config.sampleTemperatures.map { t in
            var r = rng
            let out = sampler.generate(prime: prime, length: config.sampleLength, options: SamplingOptions(temperature: t), using: &r)
            rng = r
            _ = rng.next()
            return (t, corpus.vocabulary.decode(prime) + "|" + corpus.vocabulary.decode(out))
        }
    }

    func writeSamples(_ samples: [(temperature: Float, text: String)], name: String) throws {
        var text = ""
        for (t, s) in samples {
            text += "----- temperature \(t) (the prime ends at the first '|') -----\n\(s)\n\n"
        }
        let url = folder.file("samples").appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try writeFileAtomically(Data(text.utf8), to: url)
        progress.report(.wrote(url, what: "samples"))
    }

    /// Runs training until a stopping criterion (epochs, steps, time limit) is met, writing
    /// checkpoints, samples, `metrics.csv` and `run.json`.
    /// - Parameter shouldStop: polled between steps (e.g. set by SIGINT); training then ends cleanly
    ///   with a checkpoint.
    /// - Throws: ``StudioError/nonFiniteLoss(step:lastCheckpoint:)`` (no checkpoint is written for that
    ///   step);
    ///   ``StudioError/interruptedBeforeFirstStep(resumed:)`` when `shouldStop` is already true before
    ///   the first step (nothing is written; a folder this run made is removed),
    ///   and file-writing errors.
    public func run(shouldStop: () -> Bool = { false }) throws -> TextTrainingSummary {
        try runRecordingFailure(in: folder, failure: { failedRunRecord(record, step: state.step, lastCheckpoint: lastGoodCheckpoint) }) {
            try runTraining(shouldStop: shouldStop)
        }
    }

    /// The best validation loss, its step and `best.safetensors`, when one was written.
    func bestSummary() -> (bitsPerCharacter: Double, step: Int, checkpoint: URL)? {
        guard let v = state.bestValidationBitsPerCharacter, let s = state.bestValidationStep else { return nil }
        let url = folder.file("best.safetensors")
        return FileManager.default.fileExists(atPath: url.path) ? (v, s, url) : nil
    }

    func runTraining(shouldStop: () -> Bool) throws -> TextTrainingSummary {
        // Stopped while the data was loading: write nothing (no step-0 pictures or checkpoint).
        var session = try TrainingSession(step: state.step, resumed: lastCheckpoint, shouldStop: shouldStop)
        // This session's first writes, right before its first step (or at its end when it takes none).
        func beginSession() throws { try session.begin(folder: folder, droppingMetricsRowsAfter: resumedInFolderAt) }
        let startTime = Date()
        let sessionStartElapsed = state.elapsed
        let windows = train.starts.count
        let batch = min(config.batchSize, windows)
        if batch < config.batchSize {
            progress.report(.warning("only \(windows) training windows: using batch size \(batch) instead of \(config.batchSize)"))
        }
        let batchesPerEpoch = max(windows / batch, 1)
        let totalSteps = stepTotal(steps: config.steps, epochs: config.epochs, perEpoch: batchesPerEpoch)
        progress.report(.info("corpus \(corpusURL.path): \(corpus.tokens.count) characters, vocabulary \(corpus.vocabulary.count); \(windows) training windows, \(min(validation.starts.count, config.maxValidationWindows)) validation windows; \(batchesPerEpoch) steps per epoch"))
        progress.report(.info("model: \(config.layers) × LSTM \(config.units), \(model.parameters.reduce(0) { $0 + $1.count }) parameters; \(config.optimizer) lr \(config.learningRate), batch \(batch), targets \(config.targets.rawValue)"))
        if state.step > 0 { progress.report(.info("resuming at step \(state.step), epoch \(state.epoch + 1), batch \(state.batchInEpoch)")) }

        let params = model.parameters
        var lastTrainBPC: Double?
        var lastValBPC: Double?
        var lastValStep = -1     // the step lastValBPC was measured at
        var stopReason = "completed"
        var meter = ThroughputMeter()
        var order: [Int] = [], orderEpoch = -1
        let metricsHeader = ["step", "epoch", "train_bpc", "val_bpc", "elapsed_s", "samples_per_s"]

        func elapsedTotal() -> Double { sessionStartElapsed + Date().timeIntervalSince(startTime) }
        func endOfEpochWork(epochDone: Int) throws {
            lastValBPC = validationBitsPerCharacter()
            lastValStep = state.step
            try refuseDiverged(lastValBPC)
            let trainBPC = state.epochLossCount > 0 ? state.epochLossSum / Double(state.epochLossCount) * bitsPerNat : nil
            if let trainBPC { lastTrainBPC = trainBPC }
            // The epoch's sums are done: every checkpoint of this step (best.safetensors below, the
            // regular one after) starts the next epoch afresh, as an uninterrupted run does.
            state.epochLossSum = 0; state.epochLossCount = 0
            var values: [(String, Double)] = []
            if let trainBPC { values.append(("train bits/char", trainBPC)) }
            if let v = lastValBPC { values.append(("validation bits/char", v)) }
            progress.report(.metrics(step: state.step, epoch: epochDone, values: values))
            try folder.appendMetrics(header: metricsHeader, row: [
                String(state.step), String(epochDone),
                trainBPC.map { String(format: "%.4f", $0) } ?? "",
                lastValBPC.map { String(format: "%.4f", $0) } ?? "",
                String(format: "%.1f", elapsedTotal()), String(format: "%.1f", meter.rate)])
            let samples = makeSamples(epoch: epochDone)
            try writeSamples(samples, name: String(format: "epoch-%03d-step-%d.txt", epochDone, state.step))
            // Last, so that the best checkpoint's elapsed time is not below this epoch's row.
            try noteValidation(lastValBPC, elapsed: elapsedTotal())
        }

        training: while true {
            if let e = config.epochs, state.epoch >= e { stopReason = epochLimitReason(e); break }
            if let total = totalSteps, state.step >= total { stopReason = stepLimitReason(total: total, steps: config.steps, epochs: config.epochs); break }
            if let limit = config.timeLimitMinutes, Date().timeIntervalSince(startTime) >= limit * 60 {
                stopReason = "time limit of \(limit) minutes"; break
            }
            if try session.stopRequested(shouldStop, step: state.step) { stopReason = "interrupted"; break }
            try beginSession()

            let stepStart = Date()
            // The epoch's order depends only on the seed and the epoch number: exact resume.
            if orderEpoch != state.epoch {
                var shuffle = RandomGenerator(seed: config.seed ^ (0x9E37_79B9_7F4A_7C15 &* UInt64(state.epoch + 1)))
                order = shuffle.permutation(windows)
                orderEpoch = state.epoch
            }
            let lo = state.batchInEpoch * batch
            let chunk = order[lo..<min(lo + batch, order.count)]
            let (inputs, labels) = train.batch(chunk)

            let logits = model.logits(tokens: inputs, batch: chunk.count, training: true, rng: &state.rng)
            let loss = Tensor.softmaxCrossEntropy(logits: logits, labels: labels)
            let lossValue = Double(loss.scalar)
            // A diverged run (e.g. an absurd learning rate) can keep a finite but astronomical loss
            // (weights ~1e30, loss ~1e31 bits/char) forever: treat it as non-finite too.
            guard lossValue.isFinite, lossValue * bitsPerNat <= maximumBitsPerCharacter else {
                throw StudioError.nonFiniteLoss(step: state.step + 1, lastCheckpoint: lastGoodCheckpoint?.path)
            }
            loss.backward()
            if let c = config.clipValue { clipGradients(params, byValue: c) }
            // A non-finite gradient would poison the weights (and the next checkpoint): stop first.
            let norm = config.clipNorm.map { clipGradients(params, byGlobalNorm: $0) } ?? globalGradientNorm(params)
            guard norm.isFinite else {
                throw StudioError.nonFiniteLoss(step: state.step + 1, lastCheckpoint: lastGoodCheckpoint?.path)
            }
            optimizer.learningRate = config.learningRate(atEpoch: state.epoch)
            optimizer.update(params)
            for p in params { p.zeroGrad() }
            // An update can overflow the weights to ±∞ although its own loss was finite: never
            // checkpoint or sample from such weights.
            guard allFinite(params) else {
                throw StudioError.nonFiniteLoss(step: state.step + 1, lastCheckpoint: lastGoodCheckpoint?.path)
            }

            state.step += 1
            state.batchInEpoch += 1
            state.epochLossSum += lossValue; state.epochLossCount += 1
            meter.record(units: Double(chunk.count), seconds: Date().timeIntervalSince(stepStart))
            let eta = totalSteps.flatMap { total in meter.eta(remaining: Double(total - state.step) * Double(batch)) }
            progress.report(.step(step: state.step, totalSteps: totalSteps, epoch: state.epoch + 1,
                                  loss: lossValue * bitsPerNat, unit: "bits/char", rate: meter.rate, rateUnit: "samples/s",
                                  elapsed: elapsedTotal(), eta: eta))

            if state.batchInEpoch >= batchesPerEpoch {
                state.epoch += 1
                state.batchInEpoch = 0
                try endOfEpochWork(epochDone: state.epoch)
                // The time the checkpoint is written, after the epoch's evaluation, row and samples:
                // a resumed session's rows then never show less than this one's.
                state.elapsed = elapsedTotal()
                try saveCheckpoint()
            } else if state.step != totalSteps {
                // (The last step's evaluation and checkpoint are the final ones, below.)
                // Evaluate before a checkpoint of the same step, so the checkpoint records the best
                // validation loss including this one.
                if let every = config.evaluateEvery, state.step % every == 0 {
                    lastValBPC = validationBitsPerCharacter()
                    lastValStep = state.step
                    try refuseDiverged(lastValBPC)
                    if let v = lastValBPC {
                        progress.report(.metrics(step: state.step, epoch: state.epoch + 1, values: [("validation bits/char", v)]))
                        try folder.appendMetrics(header: metricsHeader, row: [
                            String(state.step), String(state.epoch + 1), "", String(format: "%.4f", v),
                            String(format: "%.1f", elapsedTotal()), String(format: "%.1f", meter.rate)])
                    }
                    try noteValidation(lastValBPC, elapsed: elapsedTotal())
                }
                if let every = config.checkpointEvery, state.step % every == 0 {
                    state.elapsed = elapsedTotal()
                    try saveCheckpoint()
                }
            }
            continue training
        }

        try beginSession()
        // Final evaluation, samples and checkpoint (unless an epoch just ended and did all that).
        state.elapsed = elapsedTotal()
        var finalSamples: [(temperature: Float, text: String)]
        // A resumed session that took no step (a tiny --time-limit) repeats nothing: its checkpoint
        // and rows are already written.
        let idleResume = session.isIdleResume(step: state.step)
        if !idleResume && (state.batchInEpoch != 0 || lastCheckpoint == nil || state.epochLossCount > 0) {
            if state.epochLossCount > 0 { lastTrainBPC = state.epochLossSum / Double(state.epochLossCount) * bitsPerNat }
            if lastValStep != state.step {
                lastValBPC = validationBitsPerCharacter()
                try noteValidation(lastValBPC, elapsed: state.elapsed)
            }
            var values: [(String, Double)] = []
            if let t = lastTrainBPC { values.append(("train bits/char", t)) }
            if let v = lastValBPC { values.append(("validation bits/char", v)) }
            progress.report(.metrics(step: state.step, epoch: state.epoch + 1, values: values))
            try folder.appendMetrics(header: metricsHeader, row: [
                String(state.step), String(state.epoch + 1),
                lastTrainBPC.map { String(format: "%.4f", $0) } ?? "",
                lastValBPC.map { String(format: "%.4f", $0) } ?? "",
                String(format: "%.1f", state.elapsed), String(format: "%.1f", meter.rate)])
            finalSamples = makeSamples(epoch: state.epoch + 1)
            try writeSamples(finalSamples, name: String(format: "final-step-%d.txt", state.step))
            state.elapsed = elapsedTotal()   // (after the row: see the epoch end)
            try saveCheckpoint()
        } else {
            if idleResume && lastValBPC == nil { lastValBPC = validationBitsPerCharacter() }
            finalSamples = makeSamples(epoch: state.epoch)
        }
        record.finished = ISO8601DateFormatter().string(from: Date())
        record.timings["training_session_s"] = Date().timeIntervalSince(startTime)
        record.timings["training_total_s"] = state.elapsed
        record.outcome = stopReason
        record.settings["steps_done"] = String(state.step)
        try folder.writeRecord(record)
        return TextTrainingSummary(folder: folder.url, checkpoint: lastCheckpoint ?? folder.file("checkpoint.safetensors"),
                                   steps: state.step, epochs: state.epoch, validationBitsPerCharacter: lastValBPC,
                                   best: bestSummary(),
                                   trainBitsPerCharacter: lastTrainBPC, samples: finalSamples, stopReason: stopReason)
    }
}
