import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure while writing a file atomically: which path, which step, and the system's reason.
///
/// Thrown by ``writeFileAtomically(_:to:)`` and ``writeFileAtomically(to:_:)``. When it is thrown
/// the destination is untouched (an existing file keeps its old contents) and the temporary file
/// has been removed.
public struct FileWriteError: Error, CustomStringConvertible, Equatable {
    /// The destination path the caller asked for.
    public let path: String
    /// The step that failed, e.g. "create temporary file", "write", "fsync", "rename".
    public let operation: String
    /// The `errno` value reported by the system, or 0 when the failure was not a system call.
    public let code: Int32
    /// The system's reason (`strerror(errno)`) or a plain explanation.
    public let reason: String

    /// Creates an error; `reason` defaults to `strerror(code)`.
    public init(path: String, operation: String, code: Int32, reason: String? = nil) {
        self.path = path
        self.operation = operation
        self.code = code
        self.reason = reason ?? String(cString: strerror(code))
    }

    /// "cannot write PATH: OPERATION failed: REASON".
    public var description: String {
        "cannot write \(path): \(operation) failed: \(reason)"
    }
}

/// An open temporary file that ``writeFileAtomically(to:_:)`` hands to its body closure.
/// Everything written here becomes visible at the destination only once the body returns
/// without throwing and the file has been fsynced and renamed.
public final class AtomicFileWriter {
    fileprivate let fd: Int32
    fileprivate let destination: String
    /// Number of bytes written so far.
    public private(set) var bytesWritten: Int = 0

    fileprivate init(fd: Int32, destination: String) {
        self.fd = fd
        self.destination = destination
    }

    /// Appends raw bytes, retrying on `EINTR` and short writes.
    /// - Throws: ``FileWriteError`` naming the destination and `errno` (e.g. `ENOSPC`).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = systemWrite(fd, p, min(left, 1 << 30))
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw FileWriteError(path: destination, operation: "write", code: e)
            }
            if n == 0 {
                throw FileWriteError(path: destination, operation: "write", code: 0,
                                     reason: "the system accepted no bytes")
            }
            p += n
            left -= n
            bytesWritten += n
        }
    }

    /// Appends the bytes of `data`.
    /// - Throws: ``FileWriteError`` as ``write(_:)-(UnsafeRawBufferPointer)``.
    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    /// Appends the bytes of an array (e.g. `[UInt8]`, or `[Float]` as raw native-endian bytes).
    /// - Throws: ``FileWriteError`` as ``write(_:)-(UnsafeRawBufferPointer)``.
    public func write<T>(contentsOf array: [T]) throws {
        try array.withUnsafeBytes { try write($0) }
    }
}

@inline(__always)
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Darwin)
    return Darwin.write(fd, p, n)
    #elseif canImport(Musl)
    return Musl.write(fd, p, n)
    #else
    return Glibc.write(fd, p, n)
    #endif
}

/// Writes `data` to `url` atomically: readers see either the old file or the complete new one,
/// never a partial write, even if the process is killed or the machine loses power.
///
/// Protocol: create `.<name>.tmp-<pid>-<random>` in the destination's folder (`O_EXCL`, mode
/// 0644 before umask), write everything, `fsync` it, `rename` it over the destination, then
/// `fsync` the folder so the rename itself is durable. On any error the temporary file is
/// removed and an existing destination is left untouched.
///
/// - Parameters:
///   - data: the complete new contents.
///   - url: a file URL; its folder must exist.
/// - Throws: ``FileWriteError`` naming the path, the failed step and the `errno` reason
///   (missing folder, permission denied, disk full, destination is a directory, ...).
public func writeFileAtomically(_ data: Data, to url: URL) throws {
    try writeFileAtomically(to: url) { try $0.write(data) }
}

/// Why a file cannot be written at a path, found before the work that produces it.
public enum ReplacementRefusal: Equatable, CustomStringConvertible {
    /// A folder is there.
    case folder
    /// A symbolic link to a folder is there.
    case linkToFolder
    /// An existing regular file is write-protected (not writable by this user, or by nobody at
    /// all); ``writeFileAtomically(_:to:)`` refuses to replace it.
    case writeProtected

    /// The reason in plain words, for messages that name the file.
    public var description: String {
        switch self {
        case .folder: return "a folder is there, not a file"
        case .linkToFolder: return "a link to a folder is there, not a file"
        case .writeProtected: return "the file is write-protected (remove it or write elsewhere)"
        }
    }
}

/// Why `path` cannot be written, or nil when it is free or holds a file that may be replaced.
/// Commands that write their result after long work check this first.
public func replacementRefusal(of path: String) -> ReplacementRefusal? {
    var st = stat()
    guard lstat(path, &st) == 0 else { return nil }
    if (st.st_mode & S_IFMT) == S_IFDIR { return .folder }
    if (st.st_mode & S_IFMT) == S_IFLNK {
        var target = stat()
        if stat(path, &target) == 0 && (target.st_mode & S_IFMT) == S_IFDIR { return .linkToFolder }
        return nil
    }
    guard (st.st_mode & S_IFMT) == S_IFREG, access(path, W_OK) != 0 || st.st_mode & 0o222 == 0 else { return nil }
    return .writeProtected
}

/// Streaming variant of ``writeFileAtomically(_:to:)``: `body` writes the contents piece by
/// piece into the temporary file (large checkpoints need no second copy in memory). If `body`
/// throws, the temporary file is removed, the destination is untouched and the error is rethrown
/// unchanged.
///
/// - Throws: ``FileWriteError`` for system failures, or whatever `body` throws.
public func writeFileAtomically(to url: URL, _ body: (AtomicFileWriter) throws -> Void) throws {
    guard url.isFileURL else {
        throw FileWriteError(path: url.absoluteString, operation: "open", code: 0,
                             reason: "not a file URL")
    }
    let destination = url.path
    let name = url.lastPathComponent
    guard !name.isEmpty, name != "/", name != ".", name != ".." else {
        throw FileWriteError(path: destination, operation: "open", code: 0,
                             reason: "the path does not name a file")
    }
    let folderURL = url.deletingLastPathComponent()
    let folder = folderURL.path.isEmpty ? "." : folderURL.path

    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: destination, isDirectory: &isDirectory), isDirectory.boolValue {
        throw FileWriteError(path: destination, operation: "open", code: EISDIR)
    }
    // The rename would replace a write-protected file that a plain write may not touch (and, for
    // root, one nobody may write): refuse, as `cp` and shell redirection do.
    if replacementRefusal(of: destination) == .writeProtected {
        throw FileWriteError(path: destination, operation: "open", code: EACCES, reason: ReplacementRefusal.writeProtected.description)
    }

    // Create a fresh temporary file next to the destination (same file system, so rename is atomic).
    var fd: Int32 = -1
    var tempPath = ""
    for _ in 0..<16 {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        tempPath = folder + "/." + name + ".tmp-\(getpid())-" + suffix
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd >= 0 { break }
        let e = errno
        if e == EEXIST || e == EINTR { continue }
        throw FileWriteError(path: destination, operation: "create temporary file in \(folder)", code: e)
    }
    guard fd >= 0 else {
        throw FileWriteError(path: destination, operation: "create temporary file in \(folder)", code: EEXIST)
    }

    var closed = false
    var renamed = false
    PendingTemporaryFile.set(tempPath)
    defer {
        PendingTemporaryFile.clear()
        if !closed { _ = close(fd) }
        if !renamed { _ = unlink(tempPath) }
    }

    let writer = AtomicFileWriter(fd: fd, destination: destination)
    try body(writer)

    while fsync(fd) != 0 {
        let e = errno
        if e == EINTR { continue }
        throw FileWriteError(path: destination, operation: "fsync", code: e)
    }
    closed = true
    if close(fd) != 0 {
        let e = errno
        if e != EINTR { throw FileWriteError(path: destination, operation: "close", code: e) }
    }
    if rename(tempPath, destination) != 0 {
        throw FileWriteError(path: destination, operation: "rename", code: errno)
    }
    renamed = true

    // Make the rename durable. Some file systems refuse fsync on a folder (EINVAL); the data is
    // already safe then, so only real I/O errors are reported.
    let dfd = open(folder, O_RDONLY | O_CLOEXEC)
    if dfd >= 0 {
        var result: Int32 = 0
        repeat { result = fsync(dfd) } while result != 0 && errno == EINTR
        let e = errno
        _ = close(dfd)
        if result != 0 && e == EIO {
            throw FileWriteError(path: destination, operation: "fsync folder \(folder)", code: e)
        }
    }
}

/// A path held in a buffer allocated once, for a signal handler to read: a NUL-terminated copy of
/// at most 4,096 bytes whose byte 0 is written last on ``store(_:)`` and first on ``clear()``, so
/// a handler never reads a half-written path as complete. Shared by ``PendingTemporaryFile`` and
/// ``PendingCreatedFolder``.
final class SignalSafePathSlot: @unchecked Sendable {
    /// Longest path kept, in bytes.
    static let capacity = 4096
    /// The path bytes, NUL-terminated; `pointer[0] == 0` when empty.
    let pointer: UnsafeMutablePointer<CChar>

    init() {
        pointer = .allocate(capacity: Self.capacity + 1)
        pointer.initialize(repeating: 0, count: Self.capacity + 1)
    }

    /// Whether a path is held.
    var isSet: Bool { pointer[0] != 0 }

    /// Holds `bytes` (a path's UTF-8) instead of the current path; nothing when empty or too long.
    func store(_ bytes: [UInt8]) {
        pointer[0] = 0
        guard !bytes.isEmpty, bytes.count <= Self.capacity else { return }
        for (i, b) in bytes.enumerated().dropFirst() { pointer[i] = CChar(bitPattern: b) }
        pointer[bytes.count] = 0
        pointer[0] = CChar(bitPattern: bytes[0])
    }

    /// Holds nothing.
    func clear() { pointer[0] = 0 }
}

/// The temporary file of the atomic write in progress, for a signal handler that ends the process
/// at once (a second Ctrl-C): ``removeOnAbort()`` unlinks it, so no `.name.tmp-…` file is left
/// behind. One slot: gen writes its files one at a time.
public enum PendingTemporaryFile {
    /// The path, allocated on first use (see ``prepare()``).
    nonisolated(unsafe) static let slot = SignalSafePathSlot()

    /// Records `path` as the temporary file being written (paths over 4,096 bytes are not recorded).
    public static func set(_ path: String) { slot.store(Array(path.utf8)) }

    /// Forgets the recorded file (it was renamed into place or removed).
    public static func clear() { slot.clear() }

    /// Allocates the path buffer now (it is made on first use): call it before installing a signal
    /// handler that calls ``removeOnAbort()``, which must not allocate.
    public static func prepare() { _ = slot }

    /// Unlinks the pending temporary file, if any. Async-signal-safe (only `unlink`): call it
    /// from a signal handler right before `_exit`.
    public static func removeOnAbort() {
        if slot.isSet { _ = unlink(slot.pointer) }
    }
}

/// The output folder this process made for its run (and the outermost folder it made on the way,
/// for `-o a/b/c`), for a signal handler that ends the process at once (a second Ctrl-C before
/// the first training step): ``removeOnAbort()`` removes those folders when they are still empty,
/// so an aborted run leaves no empty run folder behind. One slot: a process makes one run folder.
public enum PendingCreatedFolder {
    /// The deepest folder's path, allocated on first use (see ``prepare()``).
    nonisolated(unsafe) static let slot = SignalSafePathSlot()
    /// Length of the outermost created folder's path, a prefix of the slot's path.
    nonisolated(unsafe) static var rootLength = 0

    /// Records `path` (absolute), made by this process together with the folders above it up to
    /// `createdRoot` (absolute, `path` itself or one of its ancestors). Paths over 4,096 bytes, or
    /// a root that is not a prefix of `path`, are not recorded.
    public static func set(_ path: String, createdRoot: String) {
        slot.clear()
        let bytes = Array(path.utf8)
        guard let rootLength = validRootLength(bytes, Array(createdRoot.utf8)) else { return }
        self.rootLength = rootLength
        slot.store(bytes)
    }

    /// Forgets the recorded folder.
    public static func clear() { slot.clear() }

    /// Allocates the path buffer now (it is made on first use): call it before installing a signal
    /// handler that calls ``removeOnAbort()``, which must not allocate.
    public static func prepare() { _ = slot }

    /// Removes the recorded folder if it is empty, then each empty folder above it up to the
    /// outermost one this process made. Async-signal-safe (only `rmdir`): call it from a signal
    /// handler right before `_exit`. A folder that holds anything stays, and so do those above it.
    public static func removeOnAbort() {
        guard slot.isSet else { return }
        _ = removeEmptyFolders(slot.pointer, rootLength: rootLength)
    }

    /// The same removal outside a signal handler (a run that ends without writing anything):
    /// `path` if empty, then each empty folder above it up to `createdRoot` (absolute, `path` or
    /// one of its ancestors). Returns whether `path` itself was removed; false, removing nothing,
    /// when the paths do not fit that description.
    public static func removeEmptyFolders(at path: String, upTo createdRoot: String) -> Bool {
        let bytes = Array(path.utf8)
        guard let rootLength = validRootLength(bytes, Array(createdRoot.utf8)), bytes.count <= SignalSafePathSlot.capacity else {
            return false
        }
        var cString = bytes.map { CChar(bitPattern: $0) } + [0]
        return cString.withUnsafeMutableBufferPointer { removeEmptyFolders($0.baseAddress!, rootLength: rootLength) }
    }

    /// The length of `root` when `path` is absolute and `root` is `path` or one of its ancestors
    /// (a whole-name prefix: `/x/a` is not an ancestor of `/x/ab`); nil otherwise.
    private static func validRootLength(_ path: [UInt8], _ root: [UInt8]) -> Int? {
        guard !path.isEmpty, path.first == UInt8(ascii: "/"), !root.isEmpty, path.starts(with: root),
              path.count == root.count || path[root.count] == UInt8(ascii: "/") else { return nil }
        return root.count
    }

    /// `rmdir` of the NUL-terminated path in `buffer`, then of its parents while they are at least
    /// `rootLength` bytes long, cutting the path at each last "/" in place. Stops at the first
    /// folder that cannot be removed (not empty, or gone). Only `rmdir`: async-signal-safe.
    /// Returns whether the first `rmdir` succeeded.
    private static func removeEmptyFolders(_ buffer: UnsafeMutablePointer<CChar>, rootLength: Int) -> Bool {
        var n = 0
        while n < SignalSafePathSlot.capacity && buffer[n] != 0 { n += 1 }
        var removedAny = false
        while true {
            if rmdir(buffer) != 0 { return removedAny }     // not empty, or gone: stop
            removedAny = true
            if n <= rootLength { return true }              // the outermost folder made is removed
            var i = n - 1
            while i > 0 && buffer[i] != 47 { i -= 1 }      // the last "/"
            if i < rootLength { return true }
            buffer[i] = 0
            n = i
        }
    }
}
