import Foundation
import GenTensor
import GenNN
import GenData

// Pieces every trainer shares: checkpoint I/O of parameters and optimizer state, finiteness
// checks, and the settings record of run.json.

/// Checkpoint name prefix of optimizer state tensors (`optimizer/rmsprop/velocity/3`, ...).
let optimizerStatePrefix = "optimizer/"

/// Whether every element of `tensors` is finite (no NaN, no ±∞); an integer max over the exponent
/// bits, so it vectorises.
func allFinite(_ tensors: [Tensor]) -> Bool {
    for t in tensors {
        let n = t.count
        var exponent: UInt32 = 0
        t.storage.base.withMemoryRebound(to: UInt32.self, capacity: n) { u in
            for j in 0..<n { exponent = max(exponent, u[j] & 0x7F80_0000) }
        }
        if exponent == 0x7F80_0000 { return false }
    }
    return true
}

/// Loads named parameters from a checkpoint, strictly: every parameter must be present with its
/// shape and finite values; nothing is assigned unless all of them are.
/// - Throws: ``StudioError/incompatibleCheckpoint(path:reason:)`` naming the first bad tensor.
func restoreParameters(_ parameters: [Tensor], from ckpt: Checkpoint, path: String) throws {
    var pairs: [(Tensor, Tensor)] = []
    for p in parameters {
        let name = p.name ?? ""
        guard let t = ckpt.tensors[name] else {
            throw StudioError.incompatibleCheckpoint(path: path, reason: "tensor \(name) is missing")
        }
        guard t.shape == p.shape else {
            throw StudioError.incompatibleCheckpoint(path: path, reason: "tensor \(name) has shape \(t.shape), expected \(p.shape)")
        }
        guard allFinite([t]) else {
            throw StudioError.incompatibleCheckpoint(path: path, reason: "tensor \(name) holds non-finite values")
        }
        pairs.append((p, t))
    }
    for (p, t) in pairs { p.assign(t) }
}

/// Restores an optimizer's moments (stored under `prefix`) and step count, strictly: a moment
/// holding NaN or ±∞ would turn the first resumed update non-finite, so it is refused here.
/// - Throws: ``StudioError/incompatibleCheckpoint(path:reason:)`` naming `path` for missing,
///   mis-shaped or non-finite state.
func restoreOptimizer(_ optimizer: Optimizer, prefix: String = optimizerStatePrefix, step: Int,
                      parameters: [Tensor], from ckpt: Checkpoint, path: String) throws {
    var state: [String: Tensor] = [:]
    for (k, v) in ckpt.tensors where k.hasPrefix(prefix) {
        guard allFinite([v]) else {
            throw StudioError.incompatibleCheckpoint(path: path, reason: "optimizer state \(k) holds non-finite values")
        }
        state[String(k.dropFirst(prefix.count))] = v
    }
    do { try optimizer.loadState(state, step: step, parameters: parameters) } catch {
        throw StudioError.incompatibleCheckpoint(path: path, reason: "\(error)")
    }
}

/// Puts parameters (by name) and optimizer state (under `prefix`) into a checkpoint.
func storeParameters(_ parameters: [Tensor], optimizer: Optimizer, prefix: String = optimizerStatePrefix,
                     into ckpt: inout Checkpoint) {
    for p in parameters { ckpt.tensors[p.name ?? ""] = p }
    for (k, v) in optimizer.stateTensors() { ckpt.tensors[prefix + k] = v }
}

/// A Codable settings struct as flat strings, for `run.json`.
func settingsDescription<T: Encodable>(_ settings: T) -> [String: String] {
    let enc = JSONEncoder()
    enc.outputFormatting = .sortedKeys
    guard let data = try? enc.encode(settings),
          let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return [:] }
    return obj.mapValues { "\($0)" }
}

/// File name of a training run's checkpoint inside its run folder.
let checkpointFileName = "checkpoint.safetensors"

/// The folder a training run writes to, after checking that it would not overwrite another run:
/// `output`, else the resumed checkpoint's folder. A folder that already holds a
/// `checkpoint.safetensors` is accepted only when that very file is the one being resumed (another
/// checkpoint of that folder, such as a text run's `best.safetensors`, needs a new `--output`); one
/// that holds a `metrics.csv` or `run.json` only when it is the resumed checkpoint's own folder.
/// `rewrites`: the generator's other files that a run rewrites in place (`best.safetensors`,
/// `loss.png`); they, the checkpoint and the records must be replaceable (not write-protected, not
/// folders), checked before any training. The folder is locked for the run (``RunFolder/lockForTraining()``).
/// - Throws: ``StudioError/invalidOption(_:)`` naming the folder and how to proceed, or when
///   another gen run is writing to it.
func trainingFolder(output: URL?, resume: URL?, generator: String, rewrites: [String]) throws -> RunFolder {
    let explicit = output ?? resume?.deletingLastPathComponent()
    // A folder another run is writing to is named as such first: the checks below would call its
    // files another run's and suggest removing the folder or resuming into it.
    if let explicit, RunFolder.isHeldByAnotherProcess(explicit) { throw RunFolder.inUse(explicit) }
    if let explicit {
        let slot = explicit.appendingPathComponent(checkpointFileName)
        if FileManager.default.fileExists(atPath: slot.path) {
            let same = resume.map { samePath($0, slot) } ?? false
            if !same, let resume, samePath(resume.deletingLastPathComponent(), explicit) {
                throw StudioError.invalidOption(
                    "continuing from \(resume.path) in its own folder would overwrite \(slot.path) (the run's latest "
                    + "checkpoint); give --output NEW_FOLDER to continue from \(resume.lastPathComponent) there")
            }
            if !same {
                throw StudioError.invalidOption(
                    "\(explicit.path) already holds another run's \(checkpointFileName); choose another --output, "
                    + "or continue that run with --resume \(slot.path)")
            }
        }
        // Another run's records (one stopped before its first checkpoint, or another generator's):
        // this run would append its rows to that metrics.csv and replace that run.json.
        let ownFolder = resume.map { samePath($0.deletingLastPathComponent(), explicit) } ?? false
        for name in ["metrics.csv", "run.json"]
        where !ownFolder && FileManager.default.fileExists(atPath: explicit.appendingPathComponent(name).path) {
            throw StudioError.invalidOption(
                "\(explicit.path) already holds another run's \(name) (a run that wrote no \(checkpointFileName)); "
                + "choose another --output, or remove that folder first")
        }
    }
    if let explicit {
        // Files a run in this folder replaces as it goes: found now, not at the first checkpoint.
        for name in [checkpointFileName, "metrics.csv", "run.json"] + rewrites {
            let url = explicit.appendingPathComponent(name)
            if let problem = replacementRefusal(of: url.path) {
                let reason = problem == .writeProtected
                    ? "the file is write-protected: make it writable (chmod u+w), or continue into another folder with --output NEW_FOLDER"
                    : problem.description
                throw StudioError.invalidOption("\(url.path): \(reason)")
            }
        }
    }
    var folder = try RunFolder(explicit: explicit, generator: generator)
    // Refused by the lock: the folder is left alone, even when this run thinks it made it (two runs
    // started together on one new --output both see it missing; the one holding it keeps it).
    try folder.lockForTraining()
    return folder
}

/// Whether two file URLs name the same path once `.`/`..` and symbolic links are resolved.
func samePath(_ a: URL, _ b: URL) -> Bool {
    a.standardizedFileURL.resolvingSymlinksInPath().path == b.standardizedFileURL.resolvingSymlinksInPath().path
}

/// The step of the resumed checkpoint when a run continues in that checkpoint's own folder (so the
/// folder's `metrics.csv` and best checkpoint belong to this run); nil for a fresh run or a resume
/// into another folder.
func stepResumedInOwnFolder(_ resume: URL?, step: Int, folder: RunFolder) -> Int? {
    guard let resume, samePath(resume.deletingLastPathComponent(), folder.url) else { return nil }
    return step
}

/// The settings every trainer shares: seed, batch size and stopping criteria. Lets the command
/// line fill them in one place.
public protocol TrainingSchedule {
    /// Seed of every random choice of the run.
    var seed: UInt64 { get set }
    /// Examples per optimizer step (≥ 1).
    var batchSize: Int { get set }
    /// Stop after this many epochs in total (nil = no limit).
    var epochs: Int? { get set }
    /// Stop after this many optimizer steps in total (nil = no limit).
    var steps: Int? { get set }
    /// Stop after this many minutes of wall time (nil = no limit).
    var timeLimitMinutes: Double? { get set }
    /// Also checkpoint every this many steps (nil = only at epoch ends and at the end).
    var checkpointEvery: Int? { get set }
}

extension TextTrainingConfig: TrainingSchedule {}
extension VAETrainingConfig: TrainingSchedule {}
extension GANTrainingConfig: TrainingSchedule {}

/// Training throughput for the progress lines and `metrics.csv`: units (samples or steps) per
/// second of time spent inside training steps, over windows of at least 2 seconds or 50 steps.
///
/// Only the steps themselves are timed, so the evaluations, pictures and checkpoints between
/// steps do not count: the rate (and the ETA derived from it) does not fall to a few samples per
/// second, with an ETA of hours, after every epoch end. The ETA therefore leaves out the time of
/// the evaluations still to come.
struct ThroughputMeter {
    /// Units per second over the last closed window; before the first window closes, over the steps
    /// so far (so a run shorter than a window still reports a rate); 0 before any timed step.
    var rate: Double { closedRate > 0 ? closedRate : (seconds > 0 ? units / seconds : 0) }
    private var closedRate = 0.0
    private var units = 0.0, seconds = 0.0, steps = 0

    /// Adds one training step of `units` (e.g. its batch size) that took `seconds`.
    mutating func record(units u: Double, seconds s: TimeInterval) {
        units += u
        seconds += max(s, 0)
        steps += 1
        if seconds >= 2 || steps >= 50 {
            if seconds > 0 { closedRate = units / seconds }
            units = 0; seconds = 0; steps = 0
        }
    }

    /// Seconds that `remaining` more units should take at ``rate``; nil before any timed step.
    func eta(remaining: Double) -> TimeInterval? { rate > 0 ? max(remaining, 0) / rate : nil }
}

/// The long options among `flags` that `arguments` (the command line) gives explicitly, as
/// `--flag value` or `--flag=value`; arguments after a bare `--` are not options.
func optionsGiven(_ flags: [String], in arguments: [String]) -> [String] {
    let options = arguments.prefix { $0 != "--" }
    return flags.filter { f in options.contains { $0 == f || $0.hasPrefix(f + "=") } }
}

/// One model or training setting that a resumed run takes from its checkpoint: the command-line
/// option that sets it, and its value as this command line asks for it and as the checkpoint has it.
public struct KeptSetting: Equatable {
    /// The option, e.g. `--units`.
    public let flag: String
    /// Its value on this command line, as text.
    public let requested: String
    /// Its value in the checkpoint, as text.
    public let stored: String
    init(_ flag: String, _ requested: Any, _ stored: Any) {
        self.flag = flag
        self.requested = "\(requested)"
        self.stored = "\(stored)"
    }
    /// An optional setting; nil (the option not set) reads "none".
    init<T>(_ flag: String, _ requested: T?, _ stored: T?) {
        self.init(flag, requested.map { "\($0)" } ?? "none", stored.map { "\($0)" } ?? "none")
    }
}

/// The settings of `settings` whose option `arguments` gives explicitly with a value other than the checkpoint's.
private func givenAndDiffering(_ settings: [KeptSetting], arguments: [String]) -> [KeptSetting] {
    let differing = settings.filter { $0.requested != $0.stored }
    let given = Set(optionsGiven(differing.map(\.flag), in: arguments))
    return differing.filter { given.contains($0.flag) }
}

/// The options of `kept` that `arguments` gives explicitly with a value other than the checkpoint's,
/// as `--flag (the checkpoint's VALUE)`.
func ignoredOnResume(_ kept: [KeptSetting], arguments: [String]) -> [String] {
    givenAndDiffering(kept, arguments: arguments).map { "\($0.flag) (the checkpoint's \($0.stored))" }
}

/// The options of `applied` (settings a resumed run takes from its command line when given, such
/// as `--checkpoint-every`) that `arguments` gives explicitly with a value other than the
/// checkpoint's, as `--flag VALUE (the checkpoint's VALUE)`.
func changedOnResume(_ applied: [KeptSetting], arguments: [String]) -> [String] {
    givenAndDiffering(applied, arguments: arguments).map {
        "\($0.flag) \($0.requested) (" + ($0.stored == "none" ? "none in the checkpoint" : "the checkpoint's \($0.stored)") + ")"
    }
}

/// The warning a resumed run gives when the command line sets options it does not apply (`given`:
/// the model and training settings come from the checkpoint, so that the run continues exactly),
/// or changes a setting it does apply (`changed`: from ``changedOnResume(_:arguments:)``); nil
/// when there are none.
func ignoredOnResumeWarning(_ given: [String], changed: [String] = [], resume: URL) -> String? {
    var parts: [String] = []
    if !given.isEmpty {
        parts.append("\(given.joined(separator: ", ")) ignored; a resumed run keeps the model and "
            + "training settings stored in its checkpoint (start a new run, without --resume, to change them)")
    }
    if !changed.isEmpty { parts.append("\(changed.joined(separator: ", ")) used from here on") }
    return parts.isEmpty ? nil : "resuming from \(resume.path): " + parts.joined(separator: "; ")
}

/// A run's step total: `steps`, or `epochs` × `perEpoch`, whichever is smaller (a product too
/// large for an `Int` counts as no limit); nil when neither is set.
func stepTotal(steps: Int?, epochs: Int?, perEpoch: Int) -> Int? {
    guard let e = epochs else { return steps }
    let (product, overflow) = e.multipliedReportingOverflow(by: perEpoch)
    return min(steps ?? Int.max, overflow ? Int.max : product)
}

/// Refuses a resume that would train nothing: the checkpoint `resume` is already at `step`, at or
/// past the requested step total `total` (nil: no limit). Called before the run folder is touched,
/// so that such a command rewrites no record and evaluates nothing.
/// - Throws: ``StudioError/invalidOption(_:)`` (exit status 2) naming the checkpoint, its step and the total.
func refuseResumeWithNothingToDo(resume: URL, step: Int, total: Int?) throws {
    guard let total, step >= total else { return }
    throw StudioError.invalidOption("nothing to do: \(resume.path) is already at step \(step), at or past the requested total of "
        + "\(counted(total, "step")); give a larger --steps or --epochs (totals count the resumed steps)")
}

/// The stop reason when a run reaches its step total `total`, which is `--steps` or
/// `--epochs` × steps per epoch, whichever is smaller: it names the option that set it.
func stepLimitReason(total: Int, steps: Int?, epochs: Int?) -> String {
    if let s = steps, s <= total { return "reached \(counted(s, "step"))" }
    if let e = epochs { return epochLimitReason(e) }
    return "reached \(counted(total, "step"))"
}

/// `n` and `noun`, in the plural (an added "s") unless `n` is 1: "1 step", "8 steps"; for
/// messages. `noun` is the singular of a regular English noun.
public func counted(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

/// The summary line of a finished training run: `stopped: <reason> after N steps`, without the
/// step count when the reason already gives it ("reached 8 steps").
public func stoppedLine(reason: String, steps: Int) -> String {
    reason == stepLimitReason(total: steps, steps: steps, epochs: nil) ? "stopped: \(reason)"
        : "stopped: \(reason) after \(counted(steps, "step"))"
}

/// The stop reason when a run has done its `--epochs`.
func epochLimitReason(_ epochs: Int) -> String { "reached \(counted(epochs, "epoch"))" }

/// One training session: a fresh run, or one resume of it. Nothing of the session is written
/// before its first step, so a stop requested earlier (Ctrl-C while the data loads) leaves every
/// file as it was (``StudioError/interruptedBeforeFirstStep(resumed:)``).
struct TrainingSession {
    /// The step the session started at: the resumed checkpoint's, or 0.
    let firstStep: Int
    /// The resumed checkpoint, or nil for a fresh run.
    let resumed: URL?
    private var begun = false

    /// Starts a session at `step`.
    /// - Throws: ``StudioError/interruptedBeforeFirstStep(resumed:)`` when `shouldStop` is already true.
    init(step: Int, resumed: URL?, shouldStop: () -> Bool) throws {
        firstStep = step
        self.resumed = resumed
        if shouldStop() { throw StudioError.interruptedBeforeFirstStep(resumed: resumed?.path) }
    }

    /// Polls `shouldStop` before the step after `step`: whether to stop now.
    /// - Throws: ``StudioError/interruptedBeforeFirstStep(resumed:)`` when the stop comes before
    ///   this session's first step (after the check at the start).
    func stopRequested(_ shouldStop: () -> Bool, step: Int) throws -> Bool {
        guard shouldStop() else { return false }
        if step == firstStep { throw StudioError.interruptedBeforeFirstStep(resumed: resumed?.path) }
        return true
    }

    /// Whether this is a resumed session that took no step (a tiny `--time-limit`): its checkpoint,
    /// rows and pictures are already written, and repeating them would duplicate them.
    func isIdleResume(step: Int) -> Bool { resumed != nil && step == firstStep }

    /// The session's first writes, once: right before its first step (or at its end when it takes
    /// none). Drops the rows of `folder`'s `metrics.csv` after `step` (a resume in the run's own
    /// folder redoes them), then runs `more`.
    /// - Throws: file errors.
    mutating func begin(folder: RunFolder, droppingMetricsRowsAfter step: Int?, _ more: () throws -> Void = {}) throws {
        guard !begun else { return }
        begun = true
        if let step { try folder.dropMetricsRows(afterStep: step) }
        try more()
    }
}

/// Runs a trainer's `body` in its run `folder`: a stop before the first step removes a folder the
/// run made and left empty; any other error first removes the files `discarding()` returns (those a
/// run wrote before its first checkpoint, when it has none; nil otherwise), then removes a folder the
/// run made if that left it empty, else is recorded in `run.json` (`failure()`). Errors are
/// rethrown unchanged.
func runRecordingFailure<T>(in folder: RunFolder, failure: () -> RunRecord, discarding: () -> RunFiles? = { nil },
                            _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch {
        if case StudioError.interruptedBeforeFirstStep = error {
            folder.discardIfUnused()
        } else {
            if let written = discarding() { folder.remove(written) }
            folder.recordFailure(error, record: failure())
        }
        throw error
    }
}

/// `record` for a failed run: the steps done, and the last checkpoint with its step (read from its
/// header; no tensor is loaded).
func failedRunRecord(_ record: RunRecord, step: Int, lastCheckpoint: URL?) -> RunRecord {
    var r = record
    r.settings["steps_done"] = String(step)
    if let c = lastCheckpoint, let saved = (try? SafetensorsFile(contentsOf: c))?.metadata[Checkpoint.Key.step] {
        r.settings["last_checkpoint"] = "\(c.path) (step \(saved))"
    }
    return r
}

/// What a run trains on, as its checkpoints record it (in the training state) so that a resume
/// with other data is refused instead of silently training on it: the number of characters or
/// training images, the image size and channels, and a 64-bit FNV-1a hash of the data
/// (``GenData/FNV1a64``: of the normalised text; of the image bytes as read, for IDX sources, or
/// the converted images, for image folders). Checkpoints written before it was kept have none,
/// and resume unchecked.
public struct DataFingerprint: Codable, Equatable, CustomStringConvertible {
    /// Characters of a corpus, or training images.
    public var count: Int
    /// Side length of the images (nil for text).
    public var imageSize: Int?
    /// Channels of the images (nil for text).
    public var channels: Int?
    /// The hash, as 16 hexadecimal digits.
    public var hash: String

    /// A corpus of `characters` characters (Unicode scalars) whose text hashes to `hash`.
    public init(characters: Int, hash: UInt64) {
        count = characters
        self.hash = FNV1a64.hex(hash)
    }

    /// `images` training images of `size`×`size`×`channels` whose data hashes to `hash`.
    public init(images: Int, size: Int, channels: Int, hash: UInt64) {
        count = images
        imageSize = size
        self.channels = channels
        self.hash = FNV1a64.hex(hash)
    }

    /// "1,234,567 characters, fingerprint 0123456789abcdef", or "60,000 images of 28x28x1, fingerprint …".
    public var description: String {
        let what: String
        if let s = imageSize, let c = channels {
            what = "\(groupedThousands(count)) image\(count == 1 ? "" : "s") of \(s)x\(s)x\(c)"
        } else {
            what = "\(groupedThousands(count)) character\(count == 1 ? "" : "s")"
        }
        return "\(what), fingerprint \(hash)"
    }

    /// Refuses a resume whose data is not the data the checkpoint recorded (`stored`; nil, in a
    /// checkpoint written before fingerprints were kept, accepts any).
    /// - Parameters:
    ///   - data: the data source as the user named it, for the message.
    ///   - checkpoint: the resumed checkpoint's path.
    /// - Throws: ``StudioError/incompatibleCheckpoint(path:reason:)`` naming both and both fingerprints.
    func requireSame(as stored: DataFingerprint?, data: String, checkpoint: String) throws {
        guard let stored, stored != self else { return }
        throw StudioError.incompatibleCheckpoint(path: checkpoint, reason:
            "\(data) is not the data this run was trained on (\(checkpoint): \(stored); \(data): \(self)); "
            + "exact resume needs the same data")
    }
}

/// `n` with commas between groups of three digits: 1234567 → "1,234,567".
func groupedThousands(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, d) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(d)
    }
    return (n < 0 ? "-" : "") + out
}
