import ArgumentParser
import Foundation
import GenTensor
import GenStudio
import GenData

/// Most threads `--threads` accepts: far above any machine gen runs on, low enough that a typo
/// (1000 for 10) is caught rather than starting a thousand partitions.
let maximumThreads = 256

/// Checks a `--threads` value: nil (all cores) or 1...``maximumThreads``.
/// - Throws: `ValidationError` naming the option and the value.
func validateThreads(_ threads: Int?) throws {
    if let t = threads, !(1...maximumThreads).contains(t) {
        throw ValidationError("--threads must be in 1...\(maximumThreads) (got \(t); this machine has \(ProcessInfo.processInfo.activeProcessorCount) cores)")
    }
}

/// Options every generator shares: seed, threads, output location, verbosity.
/// The long option names (`--top-k`, ...) that `command` declares directly (not those of its
/// option groups), from its property names as ArgumentParser derives them (camelCase to
/// kebab-case), plus `--help`.
func longOptionNames(of command: Any) -> Set<String> {
    var names: Set<String> = ["--help"]
    for child in Mirror(reflecting: command).children {
        guard let label = child.label, label.hasPrefix("_"),
              !String(describing: type(of: child.value)).hasPrefix("OptionGroup") else { continue }
        var kebab = "--"
        for c in label.dropFirst() {
            if c.isUppercase { kebab += "-" + c.lowercased() } else { kebab.append(c) }
        }
        names.insert(kebab)
    }
    return names
}

struct CommonOptions: ParsableArguments {
    @Option(help: "Random seed: the same seed, machine and thread count give the same result.")
    var seed: UInt64 = 1

    @Option(help: "Threads for gen's kernels and OpenBLAS (default: all cores).")
    var threads: Int?

    @Option(name: .shortAndLong, help: "Output folder (default: outputs/<generator>/<timestamp>/).")
    var output: String?

    @Flag(name: .shortAndLong, help: "Print only results and errors, no progress.")
    var quiet = false

    init() {}

    func validate() throws {
        try validateThreads(threads)
        // An empty path (an unset shell variable) would mean the current folder.
        if output?.isEmpty == true { throw ValidationError("--output must not be empty") }
    }

    /// Applies `--threads` to the engine and OpenBLAS.
    func applyThreads() { Threads.configure(threads) }
}

/// How the training commands that read image sets (`gan train`, `vae train`) treat the files of
/// an image folder.
struct ImageFolderOptions: ParsableArguments {
    @Flag(help: "Skip image files that cannot be decoded (with a warning) instead of stopping.")
    var skipInvalid = false

    @Option(help: "Largest accepted width×height of an image file's header (a guard against decompression bombs; raise it for trusted large images).")
    var maxPixels: Int = ImageDecodeOptions.defaultMaxPixels

    init() {}

    func validate() throws {
        if maxPixels < 1 { throw ValidationError("--max-pixels must be at least 1 (got \(maxPixels))") }
    }
}

/// Options of every training command.
struct TrainingOptions: ParsableArguments {
    @Option(help: "Stop after this many epochs in total.")
    var epochs: Int?

    @Option(help: "Stop after this many optimizer steps in total.")
    var steps: Int?

    @Option(name: .customLong("time-limit"), help: "Stop after this many minutes of training in this session (fractions allowed; a resume starts a new count).")
    var timeLimit: Double?

    @Option(help: "Examples per optimizer step.")
    var batchSize: Int?

    @Option(help: "Learning rate (step size).")
    var learningRate: Float?

    @Option(help: "Also write a checkpoint every N steps (always at epoch ends and at the end; with --resume, the checkpoint's unless given).")
    var checkpointEvery: Int?

    @Option(help: "Continue a run from its checkpoint file (weights, optimizer, step, random state, data position).")
    var resume: String?

    init() {}

    func validate() throws {
        if resume?.isEmpty == true { throw ValidationError("--resume must name a checkpoint file (got an empty path)") }
        if let e = epochs, e < 1 { throw ValidationError("--epochs must be at least 1 (got \(e))") }
        if let s = steps, s < 1 { throw ValidationError("--steps must be at least 1 (got \(s))") }
        if let t = timeLimit, !(t > 0 && t.isFinite) { throw ValidationError("--time-limit must be a finite positive number of minutes (got \(t))") }
        if let b = batchSize, b < 1 { throw ValidationError("--batch-size must be at least 1 (got \(b))") }
        if let l = learningRate, !(l > 0 && l.isFinite) { throw ValidationError("--learning-rate must be positive (got \(l))") }
        if let c = checkpointEvery, c < 1 { throw ValidationError("--checkpoint-every must be at least 1 (got \(c))") }
    }
}

extension TrainingOptions {
    /// Copies the seed, batch size and stopping criteria into a trainer's settings; when none of
    /// `--epochs`, `--steps`, `--time-limit` is given, `unbounded` sets the generator's default
    /// length (the book's).
    func applySchedule<C: TrainingSchedule>(to c: inout C, seed: UInt64, unbounded: (inout C) -> Void) {
        c.seed = seed
        c.epochs = epochs
        c.steps = steps
        c.timeLimitMinutes = timeLimit
        c.checkpointEvery = checkpointEvery
        if let b = batchSize { c.batchSize = b }
        if c.epochs == nil && c.steps == nil && c.timeLimitMinutes == nil { unbounded(&c) }
    }
}

/// Refuses an output file that is one of the command's input files (the same device and inode,
/// so other spellings, symbolic links and hard links are caught): writing the result would
/// replace an input image the user most likely wants to keep.
/// - Throws: ``StudioError/invalidOption(_:)`` naming both paths (exit status 2).
func refuseOutputOverwritingInput(_ output: String?, inputs: [(path: String, role: String)]) throws {
    guard let output else { return }
    var o = stat()
    guard stat(output, &o) == 0 else { return }      // a new file: nothing to overwrite
    for input in inputs {
        var i = stat()
        if stat(input.path, &i) == 0 && i.st_dev == o.st_dev && i.st_ino == o.st_ino {
            throw StudioError.invalidOption(
                "--output \(output) is the \(input.role) \(input.path): writing the result would replace it; choose another --output")
        }
    }
}
