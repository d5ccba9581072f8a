import ArgumentParser
import Foundation
import GenStudio
import GenNN
import GenData
import GenTensor

/// `gen text`: a character-level LSTM language model.
struct TextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text",
        abstract: "Character-level LSTM language model: train on a text file, sample with temperature.",
        subcommands: [TextTrain.self, TextSample.self]
    )
    init() {}
}

/// `gen text train --corpus FILE`.
struct TextTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train on a UTF-8 text file (the book's model by default: windows of 60, LSTM 128, RMSprop 0.01, batch 128).",
        discussion: """
        Writes to the run folder: checkpoint.safetensors, samples/*.txt (temperatures 0.2, 0.5, 1.0, 1.2 after \
        every epoch and at the end), metrics.csv (train and validation bits per character) and run.json. \
        Validation scores held-out characters (all, or 4,096 evenly spaced ones) each from the \
        --seq-length characters before it (the last --validation-split of the corpus), whatever --targets is. \
        Trains 60 epochs unless --epochs, --steps or --time-limit says otherwise. \
        Ctrl-C stops cleanly after the current step and writes a checkpoint; --resume continues exactly.
        """
    )

    @Option(help: "UTF-8 text file to learn (line endings are normalised to \\n).")
    var corpus: String

    @Option(help: "Stacked LSTM layers.") var layers: Int = 1
    @Option(help: "Units (hidden size) per LSTM layer.") var units: Int = 128
    @Option(help: "Dropout between stacked LSTM layers, in [0, 1) (no effect with --layers 1).") var dropout: Float = 0
    @Option(help: "Training window length in characters.") var seqLength: Int = 60
    @Option(help: "Characters between the starts of consecutive training windows (default 3 for --targets last, seq-length for all).")
    var windowStep: Int?
    @Option(help: "Loss positions: 'last' (the character after each window, as the book) or 'all' (every position, as char-rnn).")
    var targets: String = "last"
    @Option(help: "Optimizer: rmsprop, adam or sgd (momentum 0.9).") var optimizer: String = "rmsprop"
    @Option(name: .customLong("lr-decay"), help: "Multiply the learning rate by this after every epoch, in (0, 1] (char-rnn's learning_rate_decay; 1 = constant).")
    var lrDecay: Float = 1
    @Option(help: "Clip gradients to this global L2 norm.") var clipNorm: Float?
    @Option(help: "Clip each gradient element to ±this value.") var clipValue: Float?
    @Option(help: "Fraction of the corpus held out from its end for validation, in [0, 0.5].")
    var validationSplit: Double = 0.1
    @Option(help: "Also evaluate on the validation text every N steps.") var evaluateEvery: Int?
    @Option(help: "Characters per sample written after each epoch.") var sampleLength: Int = 400

    @OptionGroup var training: TrainingOptions
    @OptionGroup var common: CommonOptions

    init() {}

    func validate() throws {
        guard TextTargets(rawValue: targets) != nil else { throw ValidationError("--targets must be 'last' or 'all' (got '\(targets)')") }
        if layers < 1 { throw ValidationError("--layers must be at least 1 (got \(layers))") }
        if units < 1 { throw ValidationError("--units must be at least 1 (got \(units))") }
        if !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must be in [0, 1) (got \(dropout))") }
        if seqLength < 1 { throw ValidationError("--seq-length must be at least 1 (got \(seqLength))") }
        if let w = windowStep, w < 1 { throw ValidationError("--window-step must be at least 1 (got \(w))") }
        if !["rmsprop", "adam", "sgd"].contains(optimizer.lowercased()) {
            throw ValidationError("--optimizer must be rmsprop, adam or sgd (got '\(optimizer)')")
        }
        if !(lrDecay > 0 && lrDecay <= 1) { throw ValidationError("--lr-decay must be in (0, 1] (got \(lrDecay))") }
        if let c = clipNorm, !(c > 0) { throw ValidationError("--clip-norm must be positive (got \(c))") }
        if let c = clipValue, !(c > 0) { throw ValidationError("--clip-value must be positive (got \(c))") }
        if !(validationSplit >= 0 && validationSplit <= 0.5) { throw ValidationError("--validation-split must be in [0, 0.5] (got \(validationSplit))") }
        if let e = evaluateEvery, e < 1 { throw ValidationError("--evaluate-every must be at least 1 (got \(e))") }
        if sampleLength < 0 { throw ValidationError("--sample-length must be non-negative (got \(sampleLength))") }
    }

    /// The trainer configuration these options describe.
    func makeConfig() -> TextTrainingConfig {
        var c = TextTrainingConfig()
        c.layers = layers
        c.units = units
        c.dropout = dropout
        c.sequenceLength = seqLength
        c.targets = TextTargets(rawValue: targets) ?? .last
        c.windowStride = windowStep ?? (c.targets == .all ? seqLength : 3)
        c.optimizer = optimizer.lowercased()
        c.learningRateDecay = lrDecay
        c.clipNorm = clipNorm
        c.clipValue = clipValue
        c.validationSplit = validationSplit
        c.evaluateEvery = evaluateEvery
        c.sampleLength = sampleLength
        if let l = training.learningRate { c.learningRate = l }
        // Without any stopping criterion, train for the book's 60 epochs.
        training.applySchedule(to: &c, seed: common.seed) { $0.epochs = 60 }
        return c
    }

    func run() throws {
        try reportingErrors {
            common.applyThreads()
            Interrupt.install()
            let progress = ConsoleProgress(quiet: common.quiet)
            let trainer = try TextTrainer(
                corpus: URL(fileURLWithPath: corpus), config: makeConfig(),
                resume: training.resume.map { URL(fileURLWithPath: $0) },
                output: common.output.map { URL(fileURLWithPath: $0) },
                arguments: CommandLine.arguments, progress: progress)
            if trainer.config.layers == 1 && trainer.config.dropout > 0 {
                // As in char-rnn and PyTorch's nn.LSTM, dropout sits between stacked LSTM layers.
                progress.report(.warning("--dropout \(trainer.config.dropout) has no effect with one LSTM layer: it applies between stacked layers (use --layers 2 or more)"))
            }
            let summary = try trainer.run(shouldStop: { Interrupt.requested })
            var out = "run folder: \(summary.folder.path)\ncheckpoint: \(summary.checkpoint.path)\n"
            out += stoppedLine(reason: summary.stopReason, steps: summary.steps) + "\n"
            if let t = summary.trainBitsPerCharacter { out += String(format: "train loss: %.4f bits/char\n", t) }
            if let v = summary.validationBitsPerCharacter { out += String(format: "validation loss: %.4f bits/char\n", v) }
            if let b = summary.best {
                out += String(format: "best validation loss: %.4f bits/char at step %d", b.bitsPerCharacter, b.step) + " (\(b.checkpoint.path))\n"
            }
            for s in summary.samples {
                out += "\n----- temperature \(s.temperature) -----\n\(s.text)\n"
            }
            print(out, terminator: "")
        }
    }
}

/// `gen text sample --checkpoint FILE`.
struct TextSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate text from a trained checkpoint (stateful: O(1) work per character).",
        discussion: """
        Temperature T rescales the model's distribution, p ∝ exp(log p / T): T < 1 is more conservative, \
        T > 1 more surprising; T = 0 is greedy (always the most likely character). --top-k and --top-p \
        restrict sampling to the most likely characters. Output is exactly --length characters \
        (Unicode scalars) after the prime, always valid UTF-8.
        """
    )

    @Option(help: "Checkpoint written by 'gen text train'.") var checkpoint: String
    @Option(help: "Characters to generate after the prime.") var length: Int = 500
    @Option(parsing: .unconditionalSingleValue, help: "Softmax temperature ≥ 0 (repeat or comma-separate for several; 0 = greedy).")
    var temperature: [String] = ["0.5"]
    @Option(help: "Sample only among the k most likely characters (0 = off).") var topK: Int = 0
    @Option(help: "Nucleus sampling: smallest set of characters with total probability ≥ p, in (0, 1].") var topP: Float = 1
    // Unconditional: a prime may start with a dash ("-- said he"), which would otherwise read as an option.
    @Option(parsing: .unconditional, help: "Text to start from (default: a newline, or a symbol of the vocabulary when it has none).") var prime: String?
    @Option(help: "Read the prime text from a UTF-8 file.") var primeFile: String?
    @Flag(help: "Drop prime characters missing from the vocabulary instead of failing.") var skipUnknown = false
    @Option(help: "Samples per temperature.") var count: Int = 1
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Flag(help: "Print only the generated text (no headers, no prime).") var raw = false

    init() {}

    /// Parsed temperatures.
    func temperatures() throws -> [Float] {
        var out: [Float] = []
        for part in temperature.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            guard let t = Float(part.trimmingCharacters(in: .whitespaces)), t.isFinite else {
                throw ValidationError("--temperature: '\(part)' is not a number")
            }
            guard t >= 0 else { throw ValidationError("--temperature must be ≥ 0 (got \(t)); 0 means greedy") }
            out.append(t)
        }
        if out.isEmpty { throw ValidationError("--temperature needs a value") }
        return out
    }

    func validate() throws {
        _ = try temperatures()
        if length < 0 { throw ValidationError("--length must be non-negative (got \(length))") }
        if topK < 0 { throw ValidationError("--top-k must be ≥ 0 (got \(topK))") }
        if !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1] (got \(topP))") }
        if count < 1 { throw ValidationError("--count must be at least 1 (got \(count))") }
        if prime != nil && primeFile != nil { throw ValidationError("give --prime or --prime-file, not both") }
        // `--prime --length 5` reads "--length" as the prime (a prime may start with a dash) and then
        // fails on "5"; a prime that is exactly one of this command's options is that mistake.
        if let prime, let name = prime.split(separator: "=", maxSplits: 1).first.map(String.init),
           longOptionNames(of: self).contains(name) {
            throw ValidationError("--prime has no text: it took the option '\(prime)' that follows it as the text "
                                  + "(to start from exactly that text, put it in a file and give --prime-file)")
        }
    }

    func run() throws {
        try reportingErrors {
            let (model, vocabulary) = try loadTextModel(from: URL(fileURLWithPath: checkpoint))
            // Without a prime, start from a newline, or (for a corpus without one, e.g. case26's
            // single-symbol text) a space or the vocabulary's first symbol.
            let defaultScalar: Unicode.Scalar = (["\n", " "] as [Unicode.Scalar]).first { vocabulary.contains($0) }
                ?? vocabulary.scalars.first ?? "\n"
            let defaultPrime = String(Character(defaultScalar))
            var normalised = try TextCorpus.decodeText(Data((prime ?? defaultPrime).utf8), file: "--prime")
            if let primeFile {
                let url = URL(fileURLWithPath: primeFile)
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { throw TextError.fileNotFound(file: url.path) }
                guard !isDir.boolValue else { throw TextError.notAFile(file: url.path) }
                let data: Data
                do { data = try Data(contentsOf: url) } catch { throw TextError.unreadable(file: url.path, reason: describe(error)) }
                normalised = try TextCorpus.decodeText(data, file: url.path)
                if normalised.isEmpty { throw StudioError.invalidOption("\(url.path): the prime file is empty") }
            } else if prime?.isEmpty == true {
                throw StudioError.invalidOption("--prime is empty (leave it out to start from a newline)")
            }
            let primeTokens: [Int32] = skipUnknown ? vocabulary.encodeSkippingUnknown(normalised)
                                                   : try vocabulary.encode(normalised)
            if primeTokens.isEmpty {
                throw StudioError.invalidOption("the prime text has no characters from the model's vocabulary")
            }
            let sampler = TextSampler(model: model)
            var rng = RandomGenerator(seed: seed)
            // Streamed as it is drawn (a few hundred characters at a time), so a long --length shows
            // progress and an interrupt keeps what was printed.
            for t in try temperatures() {
                for k in 0..<count {
                    if !raw {
                        try writeStandardOutput("----- temperature \(t)\(count > 1 ? " sample \(k + 1)" : "") -----\n"
                                                + vocabulary.decode(primeTokens))
                    }
                    try sampler.generate(prime: primeTokens, length: length, options: SamplingOptions(temperature: t, topK: topK, topP: topP),
                                         using: &rng, chunk: 256) { try writeStandardOutput(vocabulary.decode($0)) }
                    try writeStandardOutput("\n")
                }
            }
        }
    }
}

/// Loads a text model and its vocabulary from a checkpoint.
/// - Throws: `CheckpointError` or ``StudioError/incompatibleCheckpoint(path:reason:)``.
func loadTextModel(from url: URL) throws -> (TextModel, Vocabulary) {
    let ckpt = try Checkpoint.load(from: url, expectingGenerator: "text")
    guard let config = try ckpt.metadataIfPresent(TextModelConfig.self, forKey: Checkpoint.Key.config),
          let vocabulary = try ckpt.metadataIfPresent(Vocabulary.self, forKey: Checkpoint.Key.vocabulary) else {
        throw StudioError.incompatibleCheckpoint(path: url.path, reason: "checkpoint lacks the model configuration or vocabulary")
    }
    guard config.vocabularySize == vocabulary.count, config.layers >= 1, config.units >= 1, config.vocabularySize >= 1,
          config.layers <= 64, config.units <= 1 << 16 else {
        throw StudioError.incompatibleCheckpoint(path: url.path, reason: "model configuration is inconsistent")
    }
    var rng = RandomGenerator(seed: 0)
    let model = TextModel(config: config, using: &rng)
    for p in model.parameters {
        let name = p.name ?? ""
        guard let t = ckpt.tensors[name] else {
            throw StudioError.incompatibleCheckpoint(path: url.path, reason: "tensor \(name) is missing")
        }
        guard t.shape == p.shape else {
            throw StudioError.incompatibleCheckpoint(path: url.path, reason: "tensor \(name) has shape \(t.shape), expected \(p.shape)")
        }
        guard t.scalars.allSatisfy({ $0.isFinite }) else {
            throw StudioError.incompatibleCheckpoint(path: url.path, reason: "tensor \(name) holds non-finite values")
        }
        p.assign(t)
    }
    return (model, vocabulary)
}
