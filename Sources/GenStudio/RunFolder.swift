import Foundation
import GenTensor

/// The folder a run writes into (`outputs/<generator>/<run>/` by default) and the records kept
/// there: `metrics.csv` (appended atomically) and `run.json` (arguments, seed, versions, timings).
public struct RunFolder {
    /// The run's folder.
    public let url: URL
    /// Whether this run created the folder (it is removed again if the run fails before writing anything).
    public let created: Bool
    /// The outermost folder this run created on the way to ``url`` (``url`` itself, or an ancestor
    /// made for it by `--output a/b/c`, or `outputs` / `outputs/<generator>` when this run made them);
    /// nil when the folder existed.
    let createdRoot: URL?
    /// The run record's file name inside the folder: `run.json`, or `<result>-run.json` for a
    /// command whose `--output` names its result file (several results may share one folder).
    public var recordFileName = "run.json"

    /// Uses `explicit` when given, else a new folder `outputs/<generator>/<YYYYMMDD-HHMMSS>` under the
    /// current directory (UTC), with `-2`, `-3`, ... appended when a run started in the same second
    /// already has that name: the default folder is made atomically (`mkdir`), so two runs never
    /// share one. Creates the folder.
    /// - Parameter root: the folder default run folders go under (`outputs`, relative to the current directory).
    /// - Throws: ``StudioError/cannotCreateFolder(path:reason:)`` when it cannot be created or is a file.
    public init(explicit: URL?, generator: String, now: Date = Date(), root: URL = URL(fileURLWithPath: "outputs")) throws {
        var created = false
        var createdRoot: URL?
        if let explicit {
            url = explicit
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) {
                guard isDir.boolValue else {
                    throw StudioError.cannotCreateFolder(path: url.path, reason: "a file with that name exists")
                }
            } else {
                // The outermost missing folder, so that an unused run removes all it made.
                let top = RunFolder.outermostMissing(url)
                do {
                    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
                    created = true
                    createdRoot = top
                } catch {
                    throw StudioError.cannotCreateFolder(path: url.path, reason: RunFolder.whyNoFolder(at: url)
                                                         ?? (error as NSError).localizedDescription)
                }
            }
        } else {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = "yyyyMMdd-HHmmss"
            let parent = root.appendingPathComponent(generator)
            // The outermost of `outputs` and `outputs/<generator>` that this run makes, so that a run
            // that writes nothing leaves neither behind.
            let madeAbove = RunFolder.outermostMissing(parent)
            do { try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
                throw StudioError.cannotCreateFolder(path: parent.path, reason: RunFolder.whyNoFolder(at: parent)
                                                     ?? (error as NSError).localizedDescription)
            }
            let stamp = f.string(from: now)
            var attempt = 1, candidate = parent.appendingPathComponent(stamp)
            while mkdir(candidate.path, 0o777) != 0 {
                let code = errno
                guard code == EEXIST, attempt < 10_000 else {
                    throw StudioError.cannotCreateFolder(path: candidate.path, reason: String(cString: strerror(code)))
                }
                attempt += 1
                candidate = parent.appendingPathComponent("\(stamp)-\(attempt)")
            }
            url = candidate
            created = true
            createdRoot = madeAbove ?? candidate
        }
        self.created = created
        self.createdRoot = createdRoot
        if created, let root = createdRoot {
            // A second Ctrl-C ends the process at once: it removes this folder then if still empty.
            PendingCreatedFolder.set(url.standardizedFileURL.path, createdRoot: root.standardizedFileURL.path)
        }
        guard FileManager.default.isWritableFile(atPath: url.path) else {
            throw StudioError.cannotCreateFolder(path: url.path, reason: "folder is not writable")
        }
    }

    /// Why a folder cannot be made at `url`, in plain words, when the path itself is the reason:
    /// the path or one of the folders above it is a file, a broken symbolic link or a loop of them. Nil otherwise
    /// (the system's reason is then the best one).
    public static func whyNoFolder(at url: URL) -> String? {
        var path = url.standardizedFileURL.path
        while !path.isEmpty && path != "/" {
            var st = stat()
            if lstat(path, &st) == 0 {
                let kind = st.st_mode & S_IFMT
                if kind == S_IFLNK {
                    var target = stat()
                    if stat(path, &target) != 0 {
                        return errno == ELOOP ? "\(path) is a loop of symbolic links" : "\(path) is a broken symbolic link"
                    }
                    if target.st_mode & S_IFMT != S_IFDIR { return "\(path) is a link to a file, not a folder" }
                    return nil
                }
                if kind != S_IFDIR { return "\(path) is a file, not a folder" }
                return nil
            }
            path = (path as NSString).deletingLastPathComponent
        }
        return nil
    }

    /// After a failed run: removes the folder if this run created it and nothing was written in it;
    /// otherwise records the failure in `run.json` (best effort: the original error matters more).
    public func recordFailure(_ error: Error, record: RunRecord) {
        if removeIfUnused() { return }
        var r = record
        r.finished = ISO8601DateFormatter().string(from: Date())
        r.outcome = "failed: \(error)"
        try? writeRecord(r)
    }

    /// After a run that wrote nothing (interrupted before its first step): removes the folder if this
    /// run created it and it is still empty (best effort).
    public func discardIfUnused() { _ = removeIfUnused() }

    /// After a run that failed before writing anything worth keeping (its first checkpoint): removes
    /// the files it wrote (`written`), then those of the folders it made for them that are empty,
    /// deepest first (best effort). ``recordFailure(_:record:)`` can then take away a run folder
    /// the run made, as after a run that failed before writing anything.
    func remove(_ written: RunFiles) {
        for f in written.files { try? FileManager.default.removeItem(at: f) }
        for d in written.folders.sorted(by: { $0.path.count > $1.path.count }) { _ = rmdir(d.path) }
    }

    /// Removes the folder if this run created it and it is empty, and the empty folders above it
    /// that this run created too (`--output a/b/c` made `a` and `b`). Returns whether it did.
    private func removeIfUnused() -> Bool {
        guard created, let root = createdRoot else { return false }
        // The walk a second Ctrl-C does too: rmdir fails on a folder written into meanwhile.
        return PendingCreatedFolder.removeEmptyFolders(at: url.standardizedFileURL.path, upTo: root.standardizedFileURL.path)
    }

    /// The outermost folder among `url` and its ancestors that does not exist yet (the first one a
    /// `createDirectory(withIntermediateDirectories:)` of `url` would make), or nil when `url` exists.
    static func outermostMissing(_ url: URL) -> URL? {
        var top = url.standardizedFileURL
        guard !FileManager.default.fileExists(atPath: top.path) else { return nil }
        while top.path != "/" && !FileManager.default.fileExists(atPath: top.deletingLastPathComponent().path) {
            top = top.deletingLastPathComponent()
        }
        return top
    }

    /// A file inside the run folder.
    public func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// The training run's hold on its folder (see ``lockForTraining()``); released with the last copy.
    private(set) var lock: FolderLock?

    /// Takes an exclusive lock on the folder for a training run (`flock` on the folder itself, so
    /// nothing is added to it; the kernel releases it when the process ends, even by `kill -9`),
    /// then removes the temporary files that runs killed while writing left behind
    /// (``removeStaleTemporaries()``). Two runs given the same `--output`, or two resumes of one
    /// checkpoint, would otherwise mix their metrics rows, samples and checkpoints.
    /// - Throws: ``StudioError/invalidOption(_:)`` when another gen run holds the folder.
    ///
    /// Within one process the lock is shared: a trainer made while another of this process holds
    /// the folder (a test that resumes a run it keeps) gets the same lock instead of a refusal.
    public mutating func lockForTraining() throws {
        switch RunFolder.attemptLock(url) {
        case .unavailable:
            return     // unreadable, or a file system without flock: run unlocked (the writes report problems)
        case .busy:
            throw RunFolder.inUse(url)
        case .heldHere(let held):
            lock = held
        case .locked(let fd):
            // The folder locked must still be the one at the path (not removed or replaced meanwhile).
            var held = stat(), now = stat()
            guard fstat(fd, &held) == 0, stat(url.path, &now) == 0, held.st_dev == now.st_dev, held.st_ino == now.st_ino else {
                close(fd)
                throw StudioError.cannotCreateFolder(path: url.path, reason: "the folder was removed or replaced while this run started")
            }
            lock = FolderLock(descriptor: fd)
        }
        removeStaleTemporaries()
    }

    /// What trying the training lock of the folder at `url` found.
    private enum LockAttempt {
        /// The folder cannot be opened, or its file system has no `flock`.
        case unavailable
        /// Another process holds it.
        case busy
        /// This process holds it already: that lock.
        case heldHere(FolderLock)
        /// Locked now, through this open descriptor (closing it releases the lock).
        case locked(Int32)
    }

    /// Tries the folder's exclusive `flock` without waiting.
    private static func attemptLock(_ url: URL) -> LockAttempt {
        let fd = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return .unavailable }
        if let held = FolderLock.held(sameFolderAs: fd) {
            close(fd)
            return .heldHere(held)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            close(fd)
            return busy ? .busy : .unavailable
        }
        return .locked(fd)
    }

    /// The refusal of a folder another gen run holds.
    static func inUse(_ url: URL) -> StudioError {
        .invalidOption("\(url.path) is in use by another gen run that is still writing to it; "
                       + "wait for that run to end, or choose another --output")
    }

    /// Whether another process holds the training lock of the folder at `url` (false when it does
    /// not exist, cannot be opened, or this process holds it).
    static func isHeldByAnotherProcess(_ url: URL) -> Bool {
        switch attemptLock(url) {
        case .busy: return true
        case .locked(let fd): close(fd); return false     // closing releases the probe's lock
        case .unavailable, .heldHere: return false
        }
    }

    /// Removes gen's temporaries left by a writer that died (a `kill -9` or a power cut during a
    /// write) in the folder and its `samples/` and `pictures/` folders: files named
    /// `.<name>.<ext>.tmp-<pid>-<hex>` (``GenTensor/AtomicFile``'s pattern, for the extensions gen
    /// writes) whose process no longer runs and that were last modified over `minimumAge` seconds
    /// ago (a writer in another PID namespace, e.g. a container sharing the folder, shows as dead
    /// but keeps its file fresh). Best effort; returns the names removed.
    @discardableResult
    public func removeStaleTemporaries(minimumAge: TimeInterval = 60) -> [String] {
        var removed: [String] = []
        let now = Date().timeIntervalSince1970
        for sub in ["", "samples", "pictures"] {
            let dir = sub.isEmpty ? url : url.appendingPathComponent(sub)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] {
                guard let pid = RunFolder.temporaryFileOwner(name), pid != getpid(),
                      kill(pid, 0) != 0 && errno == ESRCH else { continue }
                let path = dir.appendingPathComponent(name).path
                var st = stat()
                guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG,
                      now - Double(st.st_mtim.tv_sec) > minimumAge else { continue }
                if unlink(path) == 0 { removed.append(sub.isEmpty ? name : sub + "/" + name) }
            }
        }
        return removed
    }

    /// Extensions of the files gen writes through temporaries in a run folder.
    static let temporaryExtensions: Set<String> = ["safetensors", "csv", "json", "png", "jpg", "jpeg", "txt"]

    /// The process id in an ``GenTensor/AtomicFile`` temporary's name `.<name>.<ext>.tmp-<pid>-<hex>`
    /// (`<ext>` one of ``temporaryExtensions``, `<hex>` 1 to 8 lowercase hexadecimal digits), or nil
    /// for any other name.
    static func temporaryFileOwner(_ name: String) -> pid_t? {
        guard name.hasPrefix("."), let r = name.range(of: ".tmp-", options: .backwards) else { return nil }
        let target = name[name.index(after: name.startIndex)..<r.lowerBound]
        guard let dot = target.lastIndex(of: "."), dot > target.startIndex,
              temporaryExtensions.contains(String(target[target.index(after: dot)...]).lowercased()) else { return nil }
        let rest = name[r.upperBound...].split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard rest.count == 2, (1...8).contains(rest[1].count),
              rest[1].allSatisfy({ ("0"..."9").contains($0) || ("a"..."f").contains($0) }),
              rest[0].allSatisfy(\.isASCII), let pid = pid_t(rest[0]), pid > 0 else { return nil }
        return pid
    }

    /// Appends one row to `metrics.csv`, writing the header first if the file is new. The whole file
    /// is rewritten atomically so an interruption never leaves half a row.
    public func appendMetrics(header: [String], row: [String]) throws {
        let target = file("metrics.csv")
        var text = (try? String(contentsOf: target, encoding: .utf8)) ?? ""
        if text.isEmpty { text = header.joined(separator: ",") + "\n" }
        text += row.joined(separator: ",") + "\n"
        try writeFileAtomically(Data(text.utf8), to: target)
    }

    /// Removes the rows of `metrics.csv` whose step (first column) is after `step`, atomically: a run
    /// resumed from a checkpoint of step `step` redoes those steps, and would otherwise list them twice.
    /// Rows whose first column is not a step, and the header, are kept. Nothing happens without a file.
    public func dropMetricsRows(afterStep step: Int) throws {
        let target = file("metrics.csv")
        guard let text = try? String(contentsOf: target, encoding: .utf8), !text.isEmpty else { return }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var kept: [Substring] = []
        var dropped = false
        for (i, line) in lines.enumerated() {
            if i > 0, let s = line.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).first.flatMap({ Int($0) }),
               s > step {
                dropped = true
                continue
            }
            kept.append(line)
        }
        if dropped { try writeFileAtomically(Data(kept.joined(separator: "\n").utf8), to: target) }
    }

    /// Writes `run.json` beside a new checkpoint, before the run has ended: outcome
    /// `unfinished: last checkpoint at step N`, so a run killed outright (`kill -9`, power loss)
    /// still leaves its record. The run's end (or failure) writes the final record over it.
    /// - Throws: file errors.
    public func writeCheckpointRecord(_ record: RunRecord, step: Int) throws {
        var r = record
        r.outcome = "unfinished: last checkpoint at step \(step)"
        r.settings["steps_done"] = String(step)
        try writeRecord(r)
    }

    /// Writes the run record (``recordFileName``, normally `run.json`) atomically.
    public func writeRecord(_ record: RunRecord) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeFileAtomically(try enc.encode(record), to: file(recordFileName))
    }
}

/// The files a run wrote into its run folder and the folders it made below that folder for them,
/// noted before each write, so that a run failing before its first checkpoint can take them away
/// again (``RunFolder/remove(_:)``) and leave nothing behind.
struct RunFiles {
    /// The files written, each once, in the order of their first write.
    private(set) var files: [URL] = []
    /// The folders made for them (below the run folder), each once.
    private(set) var folders: [URL] = []

    /// Notes that `url`, a file inside `folder`, is about to be written, and the folders between it
    /// and `folder` that do not exist yet (the write will make them). Call it before writing.
    mutating func willWrite(_ url: URL, in folder: RunFolder) {
        let file = url.standardizedFileURL
        if !files.contains(file) { files.append(file) }
        let root = folder.url.standardizedFileURL.path
        var dir = file.deletingLastPathComponent()
        while dir.path.hasPrefix(root + "/") && !FileManager.default.fileExists(atPath: dir.path) {
            if !folders.contains(dir) { folders.append(dir) }
            dir = dir.deletingLastPathComponent()
        }
    }
}

/// Contents of `run.json`: enough to know how a run was made and to repeat it.
public struct RunRecord: Codable {
    /// `text`, `style`, `dream`, `vae` or `gan`.
    public var generator: String
    /// The command line as given (program name first).
    public var arguments: [String]
    /// Effective settings after defaults and any resumed checkpoint, as strings.
    public var settings: [String: String]
    /// Random seed.
    public var seed: UInt64
    /// gen's version, the Swift compiler and the OpenBLAS build.
    public var versions: [String: String]
    /// ISO 8601 start time (UTC).
    public var started: String
    /// ISO 8601 end time (UTC); nil while the run is going.
    public var finished: String?
    /// Named durations in seconds (e.g. `training`, `validation`, `sampling`).
    public var timings: [String: Double]
    /// How the run ended: `completed`, `time limit`, `interrupted`, or an error message; while it
    /// runs (after its first checkpoint), `unfinished: last checkpoint at step N`.
    public var outcome: String?

    /// A record started now, with this build's versions and no timings or outcome yet.
    public init(generator: String, arguments: [String], settings: [String: String], seed: UInt64) {
        self.generator = generator
        self.arguments = arguments
        self.settings = settings
        self.seed = seed
        self.versions = RunRecord.currentVersions()
        self.started = ISO8601DateFormatter().string(from: Date())
        self.finished = nil
        self.timings = [:]
        self.outcome = nil
    }

    /// Versions of gen, the compiler and BLAS.
    public static func currentVersions() -> [String: String] {
        var v = ["gen": genVersion, "threads": String(Threads.count)]
        #if compiler(>=6.3)
        v["swift"] = "6.3+"
        #elseif compiler(>=6.0)
        v["swift"] = "6.x"
        #else
        v["swift"] = "5.x"
        #endif
        v["blas"] = blasDescription()
        return v
    }
}

/// gen's version string.
public let genVersion = "0.1.0"

/// Errors from the generators that are about the user's inputs or environment.
public enum StudioError: Error, CustomStringConvertible {
    /// The output folder cannot be created or written.
    case cannotCreateFolder(path: String, reason: String)
    /// An option value out of range; the message names the option.
    case invalidOption(String)
    /// Training produced a non-finite (or diverged, above 10⁶ bits/char) loss; nothing was saved for that step.
    case nonFiniteLoss(step: Int, lastCheckpoint: String?)
    /// A checkpoint that does not fit the data or request.
    case incompatibleCheckpoint(path: String, reason: String)
    /// Stopped (Ctrl-C or SIGTERM) before this session's first training step: nothing was written,
    /// and the resumed checkpoint, when there is one (its path), is as it was.
    case interruptedBeforeFirstStep(resumed: String?)

    /// The message gen prints: what happened, the file or option concerned, and what to do.
    public var description: String {
        switch self {
        case .cannotCreateFolder(let p, let r): return "cannot use output folder \(p): \(r)"
        case .invalidOption(let m): return m
        case .nonFiniteLoss(let s, let c):
            return "the loss became non-finite (NaN, infinity or above 10^6 bits/char: diverged) at step \(s); training stopped"
                + (c.map { ", the last good checkpoint is \($0)" } ?? ", no checkpoint had been written yet")
                + " (start a new run with a lower --learning-rate or with --clip-norm: a resumed run keeps its checkpoint's settings)"
        case .incompatibleCheckpoint(let p, let r): return "\(p): \(r)"
        case .interruptedBeforeFirstStep(let r):
            return "interrupted before the first training step: nothing was written"
                + (r.map { " (\($0) is unchanged)" } ?? "")
        }
    }
}

/// An open descriptor of a run folder holding its `flock`; closing it (when the last ``RunFolder``
/// copy goes) releases the lock.
final class FolderLock {
    let descriptor: Int32
    private let key: Key

    /// A folder's identity: device and inode.
    private struct Key: Hashable { var device: UInt64; var inode: UInt64 }
    private final class Weak { weak var lock: FolderLock?; init(_ l: FolderLock) { lock = l } }
    private static let registryLock = NSLock()
    nonisolated(unsafe) private static var registry: [Key: Weak] = [:]

    private static func key(of fd: Int32) -> Key? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return Key(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// The lock this process already holds on the folder open at `fd`, if any.
    static func held(sameFolderAs fd: Int32) -> FolderLock? {
        guard let k = key(of: fd) else { return nil }
        registryLock.lock(); defer { registryLock.unlock() }
        return registry[k]?.lock
    }

    /// Takes ownership of `descriptor`, which holds the folder's `flock`.
    init(descriptor: Int32) {
        self.descriptor = descriptor
        key = FolderLock.key(of: descriptor) ?? Key(device: 0, inode: 0)
        FolderLock.registryLock.lock(); defer { FolderLock.registryLock.unlock() }
        FolderLock.registry[key] = Weak(self)
    }

    deinit {
        FolderLock.registryLock.lock()
        if FolderLock.registry[key]?.lock == nil { FolderLock.registry[key] = nil }
        FolderLock.registryLock.unlock()
        close(descriptor)
    }
}
