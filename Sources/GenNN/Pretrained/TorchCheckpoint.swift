import Foundation
import GenTensor
import ZIPFoundation

// MARK: - Errors

/// A pretrained-weights file that cannot be read, a state_dict that does not fit a model, or
/// weights that cannot be found or downloaded.
///
/// Every message names the file (or URL, or network) and the reason:
/// `"<path>: refused: the pickle names the global 'posix.system' (data.pkl byte 2), which a state_dict never needs; nothing was executed"`.
public struct PretrainedError: Error, CustomStringConvertible, Equatable {
    /// What went wrong.
    public enum Kind: Equatable {
        /// The file does not exist.
        case fileNotFound
        /// The path is a directory or another non-regular file.
        case notARegularFile
        /// The file exists but could not be read; the system's reason.
        case unreadable(String)
        /// The file has zero bytes.
        case empty
        /// The file is neither a `torch.save` zip archive, a legacy `torch.save` file, nor
        /// safetensors; the detail describes what was found.
        case unknownFormat(String)
        /// The zip archive is truncated or damaged (no end-of-central-directory record, a CRC
        /// mismatch, an entry that runs past the end of the file).
        case corruptArchive(String)
        /// The file ends before a structure it announces (legacy format, or a short zip entry).
        case truncated(String)
        /// The archive lacks an entry it needs (e.g. `data.pkl`).
        case missingEntry(String)
        /// The pickle names a global outside the allow-list; it was not executed.
        case forbiddenGlobal(name: String, location: String)
        /// The pickle holds an opcode this reader does not know.
        case unknownOpcode(UInt8, location: String)
        /// The pickle is malformed or uses a construct a state_dict does not need.
        case invalidPickle(location: String, reason: String)
        /// The pickle is valid but its object is not a `{name: tensor}` mapping.
        case notAStateDict(String)
        /// A tensor refers to a storage the file does not hold.
        case storageMissing(key: String, tensor: String)
        /// A storage is shorter than a tensor's declared size, offset and strides need.
        case storageTooShort(key: String, detail: String)
        /// A tensor description is inconsistent (negative size or stride, overflow, too large).
        case invalidTensor(name: String, reason: String)
        /// The state_dict does not match the model: every problem (missing, unexpected and
        /// mis-shaped tensors), one per line.
        case stateDictMismatch([String])
        /// The network is not in ``WeightsRegistry``.
        case unknownNetwork(String, known: [String])
        /// No weights file was given and none is in the cache; the text says how to get one.
        case weightsNotFound(String)
        /// A download failed (network, HTTP status, file system); the reason.
        case downloadFailed(String)
        /// The downloaded file's SHA-256 differs from the expected value (the file was deleted).
        case checksumMismatch(expected: String, found: String)
    }

    /// The file's path (or the URL or network name the error is about).
    public let file: String
    /// The reason.
    public let kind: Kind

    /// Creates an error for `file` and `kind`.
    public init(file: String, kind: Kind) {
        self.file = file
        self.kind = kind
    }

    /// `"<file>: <reason>"`.
    public var description: String {
        let reason: String
        switch kind {
        case .fileNotFound: reason = "weights file not found"
        case .notARegularFile: reason = "not a regular file (a directory?)"
        case .unreadable(let r): reason = "cannot read weights file: \(r)"
        case .empty: reason = "weights file is empty (0 bytes)"
        case .unknownFormat(let d):
            reason = "not a weights file: neither a PyTorch .pth (torch.save zip or legacy format) nor safetensors (\(d))"
        case .corruptArchive(let d): reason = "damaged .pth archive: \(d)"
        case .truncated(let d): reason = "not a valid .pth file: file is truncated (\(d))"
        case .missingEntry(let e): reason = "not a valid .pth file: the archive has no '\(e)' entry"
        case .forbiddenGlobal(let name, let location):
            reason = "refused: the pickle names the global '\(name)' (\(location)), which a state_dict never needs; nothing was executed"
        case .unknownOpcode(let op, let location):
            reason = "not a valid .pth file: unknown pickle opcode 0x\(String(op, radix: 16)) (\(location))"
        case .invalidPickle(let location, let r): reason = "not a valid .pth file: \(r) (\(location))"
        case .notAStateDict(let d): reason = "not a state_dict: \(d)"
        case .storageMissing(let key, let tensor):
            reason = "not a valid .pth file: tensor '\(tensor)' uses storage '\(key)', which the file does not hold"
        case .storageTooShort(let key, let d): reason = "not a valid .pth file: storage '\(key)' is too short: \(d)"
        case .invalidTensor(let name, let r): reason = "not a valid .pth file: tensor '\(name)': \(r)"
        case .stateDictMismatch(let problems):
            reason = "the weights do not match the model (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n  "
                + problems.joined(separator: "\n  ")
        case .unknownNetwork(let n, let known):
            reason = "unknown network '\(n)' (known: \(known.joined(separator: ", ")))"
        case .weightsNotFound(let how): reason = how
        case .downloadFailed(let r): reason = "download failed: \(r)"
        case .checksumMismatch(let e, let f):
            reason = "checksum mismatch: expected SHA-256 \(e), the download has \(f); the file was not kept"
        }
        return "\(file): \(reason)"
    }
}

// MARK: - Loading

/// Loads the tensors of a weights file, choosing the reader by the file's first bytes (never by
/// its extension):
/// - `PK\u{3}\u{4}`: a `torch.save` zip archive (PyTorch ≥ 1.6, what torchvision publishes now),
///   read by ``TorchCheckpoint``;
/// - a pickled LONG1 magic number: the legacy `torch.save` format (PyTorch < 1.6, e.g.
///   torchvision's vgg16-397923af.pth), read by ``TorchCheckpoint``;
/// - an 8-byte length followed by `{`: safetensors, read by ``SafetensorsFile``.
///
/// Tensors come back as float32 in PyTorch's layout (convert with ``convertOIHWToHWIO(_:)`` and
/// ``convertLinearToInOut(_:)``), each named after its key.
/// - Throws: ``PretrainedError``; for a safetensors file, ``CheckpointError``.
public func loadStateDict(from url: URL) throws -> [String: Tensor] {
    let path = url.path
    let head = try TorchCheckpoint.readHead(url)
    switch TorchCheckpoint.Format(head: head) {
    case .zip, .legacy:
        return try TorchCheckpoint.load(contentsOf: url)
    case .safetensors:
        return try SafetensorsFile(contentsOf: url).tensors()
    case .unknown(let what):
        throw PretrainedError(file: path, kind: .unknownFormat(what))
    }
}

/// Reader for PyTorch `.pth` state_dict files.
///
/// Two container formats:
/// - **zip** (`torch.save` since PyTorch 1.6): `<prefix>/data.pkl` (the pickled state_dict),
///   `<prefix>/data/<key>` (one raw storage per key), `<prefix>/version`, optionally
///   `<prefix>/byteorder` (`little` when absent). Entries may be stored or deflated; each
///   storage is extracted once (CRC-checked), all the tensors that share it are built from it,
///   and it is released before the next one, so peak memory is the result plus one storage.
/// - **legacy** (before 1.6): five pickles in a row (magic number, protocol version 1001,
///   system info, the state_dict, the list of storage keys) followed by each storage as an
///   8-byte element count and the raw elements. The file is memory-mapped.
///
/// The pickle is read by a restricted unpickler that knows only the opcodes a state_dict uses
/// and only these globals: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
/// `torch._utils._rebuild_tensor`, `torch._utils._rebuild_parameter(_with_state)` and the
/// `torch.<Type>Storage` classes. Any other global (`os.system`, `builtins.eval`, ...) stops
/// the load with ``PretrainedError/Kind/forbiddenGlobal(name:location:)``; nothing is ever
/// imported or executed.
///
/// Tensors are materialised by their sizes, strides and storage offsets (non-contiguous views,
/// shared storages, 0-d tensors and empty tensors all work) and converted to float32:
/// float64 is rounded, float16 and bfloat16 are exact, integer and bool tensors (e.g.
/// BatchNorm's `num_batches_tracked`) are converted to the nearest Float and returned too
/// (``assign(_:to:source:ignoring:transform:)`` ignores `num_batches_tracked` by default).
/// Big-endian files are byte-swapped.
///
/// A tensor may not have more elements than its storage unless it has at most 2^26 of them (a
/// broadcast view saved with stride 0), so a file cannot make the reader allocate much more
/// than its own size.
public enum TorchCheckpoint {
    /// The container formats, told apart by the first bytes.
    enum Format: Equatable {
        case zip, legacy, safetensors
        case unknown(String)

        init(head: [UInt8]) {
            if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.starts(with: [0x50, 0x4B, 0x05, 0x06]) {
                self = .zip
            } else if head.starts(with: [0x80, 0x02, 0x8A, 0x0A]) {
                self = .legacy
            } else if head.count >= 9, head[8] == UInt8(ascii: "{"), head[4..<8].allSatisfy({ $0 == 0 }) {
                self = .safetensors
            } else if head.count >= 262, Array(head[257..<262]) == Array("ustar".utf8) {
                self = .unknown("a tar archive: the pre-0.1.10 torch.save format, which is not supported")
            } else {
                let hex = head.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
                self = .unknown("first bytes: \(hex)")
            }
        }
    }

    /// The little-endian bytes of the legacy format's magic number 0x1950a86a20f9469cfc6c.
    static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    /// Checks that `url` is a non-empty regular file and returns its first 512 bytes.
    static func readHead(_ url: URL) throws -> [UInt8] {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw PretrainedError(file: path, kind: .fileNotFound)
        }
        if isDirectory.boolValue { throw PretrainedError(file: path, kind: .notARegularFile) }
        do {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            let data = try handle.read(upToCount: 512) ?? Data()
            if data.isEmpty { throw PretrainedError(file: path, kind: .empty) }
            return [UInt8](data)
        } catch let e as PretrainedError {
            throw e
        } catch {
            throw PretrainedError(file: path, kind: .unreadable(describeSystemError(error)))
        }
    }

    /// Loads a `.pth` file (zip or legacy format) as float32 tensors keyed by state_dict name.
    /// - Throws: ``PretrainedError`` naming the file: ``PretrainedError/Kind/fileNotFound``,
    ///   ``PretrainedError/Kind/empty``, ``PretrainedError/Kind/unknownFormat(_:)`` (including
    ///   safetensors: use ``loadStateDict(from:)``), ``PretrainedError/Kind/corruptArchive(_:)``,
    ///   ``PretrainedError/Kind/missingEntry(_:)``, the pickle kinds (with the byte offset),
    ///   ``PretrainedError/Kind/notAStateDict(_:)`` and the storage and tensor kinds.
    public static func load(contentsOf url: URL) throws -> [String: Tensor] {
        let head = try readHead(url)
        switch Format(head: head) {
        case .zip: return try loadZip(url)
        case .legacy: return try loadLegacy(url)
        case .safetensors:
            throw PretrainedError(file: url.path, kind: .unknownFormat("a safetensors file: use loadStateDict(from:)"))
        case .unknown(let what):
            throw PretrainedError(file: url.path, kind: .unknownFormat(what))
        }
    }

    // MARK: Zip format

    private static func loadZip(_ url: URL) throws -> [String: Tensor] {
        let path = url.path
        func fail(_ kind: PretrainedError.Kind) -> PretrainedError { PretrainedError(file: path, kind: kind) }
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let fileSize = (attributes?[.size] as? NSNumber)?.uint64Value ?? UInt64.max

        let archive: Archive
        do {
            archive = try Archive(url: url, accessMode: .read)
        } catch {
            throw fail(.corruptArchive("no zip end-of-central-directory record: the file is truncated or is not a zip archive"))
        }
        var entries: [String: Entry] = [:]
        for entry in archive where entries[entry.path] == nil { entries[entry.path] = entry }

        // torch.save names every entry "<prefix>/...", the prefix being the archive's name.
        let pickles = entries.keys.filter { $0.hasSuffix("/data.pkl") && $0.split(separator: "/").count == 2 }.sorted()
        guard let pklPath = pickles.first ?? (entries["data.pkl"] != nil ? "data.pkl" : nil) else {
            if entries.isEmpty {
                throw fail(.corruptArchive("the archive's central directory lists no readable entry"))
            }
            throw fail(.missingEntry("<prefix>/data.pkl"))
        }
        let prefix = String(pklPath.dropLast("data.pkl".count))

        func extract(_ entry: Entry, name: String, limit: UInt64) throws -> Data {
            guard entry.type == .file else { throw fail(.corruptArchive("entry '\(name)' is not a file")) }
            let size = entry.uncompressedSize
            if !entry.isCompressed && (entry.compressedSize != size || size > fileSize) {
                throw fail(.corruptArchive("entry '\(name)' declares \(size) bytes, more than the archive holds"))
            }
            if entry.isCompressed && size / 1032 > entry.compressedSize {
                throw fail(.corruptArchive("entry '\(name)' declares \(size) bytes from \(entry.compressedSize) compressed bytes, more than deflate can produce"))
            }
            guard size <= limit else {
                throw fail(.corruptArchive("entry '\(name)' declares \(size) bytes, more than the \(limit) allowed"))
            }
            var data = Data()
            data.reserveCapacity(Int(size))
            var crc: CRC32 = 0
            do {
                crc = try archive.extract(entry, bufferSize: 1 << 20, skipCRC32: false) { chunk in
                    guard UInt64(data.count + chunk.count) <= size else {
                        throw PretrainedError(file: path, kind: .corruptArchive("entry '\(name)' holds more than its declared \(size) bytes"))
                    }
                    data.append(chunk)
                }
            } catch let e as PretrainedError {
                throw e
            } catch Archive.ArchiveError.invalidCRC32 {
                throw fail(.corruptArchive("entry '\(name)' fails its CRC-32 check"))
            } catch {
                throw fail(.truncated("entry '\(name)' cannot be read: \(error)"))
            }
            guard UInt64(data.count) == size else {
                throw fail(.truncated("entry '\(name)' holds \(data.count) of its \(size) bytes"))
            }
            // The consumer form of extract computes the CRC-32 but leaves the comparison to us.
            guard crc == entry.checksum else {
                throw fail(.corruptArchive("entry '\(name)' fails its CRC-32 check"))
            }
            return data
        }

        var bigEndian = false
        if let e = entries[prefix + "byteorder"] {
            let text = String(decoding: try extract(e, name: prefix + "byteorder", limit: 64), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            switch text {
            case "little": bigEndian = false
            case "big": bigEndian = true
            default: throw fail(.invalidPickle(location: prefix + "byteorder", reason: "byte order '\(text)' is neither 'little' nor 'big'"))
            }
        }

        guard let pklEntry = entries[pklPath] else { throw fail(.missingEntry(pklPath)) }
        let pickle = try extract(pklEntry, name: pklPath, limit: 1 << 30)
        let refs = try pickle.withUnsafeBytes { raw -> [(String, TorchTensorRef)] in
            try unpickleStateDict(raw, position: 0, file: path, streamName: pklPath, legacy: false).tensors
        }

        // One storage at a time: extract it once, build every tensor that uses it, release it.
        var result: [String: Tensor] = [:]
        result.reserveCapacity(refs.count)
        for (key, group) in groupByStorage(refs) {
            let name = prefix + "data/" + key
            guard let entry = entries[name] else {
                throw fail(.storageMissing(key: key, tensor: group[0].0))
            }
            let (needed, overflow) = try neededBytes(group, file: path)
            if overflow || UInt64(needed) > entry.uncompressedSize {
                throw fail(.storageTooShort(key: key, detail:
                    "it holds \(entry.uncompressedSize) bytes, tensor '\(group[0].0)' declares a storage of \(overflow ? "too many" : String(needed)) bytes"))
            }
            let bytes = try extract(entry, name: name, limit: entry.uncompressedSize)
            try bytes.withUnsafeBytes { raw in
                for (tensorName, ref) in group {
                    result[tensorName] = try materialise(ref, name: tensorName, storage: raw, bigEndian: bigEndian, file: path)
                }
            }
        }
        return result
    }

    // MARK: Legacy format

    private static func loadLegacy(_ url: URL) throws -> [String: Tensor] {
        let path = url.path
        func fail(_ kind: PretrainedError.Kind) -> PretrainedError { PretrainedError(file: path, kind: kind) }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw fail(.unreadable(describeSystemError(error)))
        }
        return try data.withUnsafeBytes { raw -> [String: Tensor] in
            var position = 0
            /// Reads one pickle without persistent ids and passes its value to `body`.
            func plain<T>(_ what: String, _ body: (PickleValue) throws -> T) throws -> T {
                var u = RestrictedUnpickler(bytes: raw, position: position) { _, offset in
                    throw PickleFailure(offset: offset, reason: .invalid("persistent id in the \(what)"))
                }
                let v = try mapPickleError(file: path, streamName: "file") { try u.load() }
                defer { u.release(v) }
                position = u.position
                return try body(v)
            }
            try plain("magic number") { v in
                guard case .bigInt(let magic) = v, magic == legacyMagic else {
                    throw fail(.unknownFormat("a pickle, but not the legacy torch.save magic number"))
                }
            }
            try plain("protocol version") { v in
                guard case .int(1001) = v else {
                    throw fail(.unknownFormat("legacy torch.save file with an unsupported protocol version"))
                }
            }
            let bigEndian = try plain("system info") { v -> Bool in
                guard case .dict(let info) = v else { return false }
                for (k, v) in info.pairs {
                    if case .string("little_endian") = k, case .bool(let little) = v { return !little }
                }
                return false
            }
            let stateDict = try unpickleStateDict(raw, position: position, file: path, streamName: "file", legacy: true)
            position = stateDict.end

            let keys: [String] = try plain("storage key list") { v in
                guard case .list(let keyList) = v else {
                    throw fail(.invalidPickle(location: "file byte \(position)", reason: "the storage key list is a \(v.kindName)"))
                }
                return try keyList.items.map {
                    guard case .string(let s) = $0 else {
                        throw fail(.invalidPickle(location: "file byte \(position)", reason: "a storage key is a \($0.kindName)"))
                    }
                    return s
                }
            }

            let groups = Dictionary(grouping: stateDict.tensors, by: { $0.1.storage.key })
            var result: [String: Tensor] = [:]
            for key in keys {
                guard let type = stateDict.storageTypes[key] else {
                    throw fail(.invalidPickle(location: "storage key list", reason: "storage '\(key)' is listed but no tensor declares its type"))
                }
                guard raw.count - position >= 8 else {
                    throw fail(.truncated("storage '\(key)' starts at byte \(position), past the end of the file"))
                }
                var n: UInt64 = 0
                for i in 0..<8 { n |= UInt64(raw[position + i]) << (8 * UInt64(i)) }
                if bigEndian { n = n.byteSwapped }
                position += 8
                let (bytes, overflow) = Int(clamping: n).multipliedReportingOverflow(by: type.elementSize)
                guard n <= UInt64(Int.max), !overflow, bytes <= raw.count - position else {
                    throw fail(.truncated("storage '\(key)' declares \(n) elements of \(type.elementSize) bytes at byte \(position), the file has \(raw.count - position) bytes left"))
                }
                let storage = UnsafeRawBufferPointer(rebasing: raw[position..<(position + bytes)])
                position += bytes
                for (tensorName, ref) in groups[key] ?? [] {
                    let (needed, overflow) = try neededBytes([(tensorName, ref)], file: path)
                    if overflow || needed > bytes {
                        throw fail(.storageTooShort(key: key, detail:
                            "it holds \(bytes) bytes, tensor '\(tensorName)' declares a storage of \(overflow ? "too many" : String(needed)) bytes"))
                    }
                    result[tensorName] = try materialise(ref, name: tensorName, storage: storage, bigEndian: bigEndian, file: path)
                }
            }
            for (tensorName, ref) in stateDict.tensors where result[tensorName] == nil {
                throw fail(.storageMissing(key: ref.storage.key, tensor: tensorName))
            }
            return result
        }
    }

    // MARK: The state_dict pickle

    struct UnpickledStateDict {
        var tensors: [(String, TorchTensorRef)]
        var storageTypes: [String: TorchStorageType]
        var end: Int
    }

    /// Unpickles a state_dict: a dict (usually an OrderedDict) from string keys to tensors.
    static func unpickleStateDict(_ raw: UnsafeRawBufferPointer, position: Int, file: String,
                                  streamName: String, legacy: Bool) throws -> UnpickledStateDict {
        var storageTypes: [String: TorchStorageType] = [:]
        var u = RestrictedUnpickler(bytes: raw, position: position) { pid, offset in
            func bad(_ r: String) -> PickleFailure { PickleFailure(offset: offset, reason: .invalid("persistent id: \(r)")) }
            guard case .tuple(let box) = pid else { throw bad("a \(pid.kindName), not a tuple") }
            let t = box.items
            guard t.count == (legacy ? 6 : 5) else { throw bad("a tuple of \(t.count) items, expected \(legacy ? 6 : 5)") }
            guard case .string("storage") = t[0] else { throw bad("the first item is not 'storage'") }
            guard case .global(.storageType(let type)) = t[1] else { throw bad("the storage type is a \(t[1].kindName)") }
            guard case .string(let key) = t[2] else { throw bad("the storage key is a \(t[2].kindName)") }
            guard case .string(let location) = t[3] else { throw bad("the location is a \(t[3].kindName)") }
            guard case .int(let numel) = t[4], numel >= 0 else { throw bad("the element count is not a non-negative int") }
            if let known = storageTypes[key], known != type, !legacy {
                throw bad("storage '\(key)' is declared as both \(known.rawValue) and \(type.rawValue)")
            }
            storageTypes[key] = type
            var ref = TorchStorageRef(key: key, type: type, location: location, numel: numel)
            if legacy, case .tuple(let viewBox) = t[5] {
                let view = viewBox.items
                guard view.count == 3, case .int(let offset) = view[1], case .int(let size) = view[2],
                      offset >= 0, size >= 0 else { throw bad("malformed storage view") }
                ref.viewOffset = offset
                ref.numel = size
            }
            return .storage(ref)
        }
        let root = try mapPickleError(file: file, streamName: streamName) { try u.load() }
        defer { u.release(root) }
        guard case .dict(let dict) = root else {
            throw PretrainedError(file: file, kind: .notAStateDict("the pickle holds a \(root.kindName), not a dict of tensors"))
        }
        var tensors: [(String, TorchTensorRef)] = []
        for (k, v) in dict.pairs {
            guard case .string(let name) = k else {
                throw PretrainedError(file: file, kind: .notAStateDict("a key is a \(k.kindName), not a string"))
            }
            guard case .tensor(let ref) = v else {
                throw PretrainedError(file: file, kind: .notAStateDict("'\(name)' holds a \(v.kindName), not a tensor"))
            }
            tensors.append((name, ref))
        }
        return UnpickledStateDict(tensors: tensors, storageTypes: storageTypes, end: u.position)
    }

    static func mapPickleError<T>(file: String, streamName: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let f as PickleFailure {
            let location = "\(streamName) byte \(f.offset)"
            switch f.reason {
            case .forbiddenGlobal(let name):
                throw PretrainedError(file: file, kind: .forbiddenGlobal(name: name, location: location))
            case .unknownOpcode(let op):
                throw PretrainedError(file: file, kind: .unknownOpcode(op, location: location))
            case .truncated(let r):
                throw PretrainedError(file: file, kind: .invalidPickle(location: location, reason: "the pickle is truncated: \(r)"))
            case .invalid(let r):
                throw PretrainedError(file: file, kind: .invalidPickle(location: location, reason: r))
            }
        }
    }

    // MARK: Tensors

    /// The tensors grouped by storage key, in order of first use.
    private static func groupByStorage(_ refs: [(String, TorchTensorRef)]) -> [(String, [(String, TorchTensorRef)])] {
        var order: [String] = []
        var groups: [String: [(String, TorchTensorRef)]] = [:]
        for r in refs {
            if groups[r.1.storage.key] == nil { order.append(r.1.storage.key) }
            groups[r.1.storage.key, default: []].append(r)
        }
        return order.map { ($0, groups[$0]!) }
    }

    /// The bytes the storages of `group` declare (view offset + element count), or overflow.
    private static func neededBytes(_ group: [(String, TorchTensorRef)], file: String) throws -> (Int, Bool) {
        var needed = 0
        for (_, ref) in group {
            let s = ref.storage
            let (elements, o1) = s.viewOffset.addingReportingOverflow(s.numel)
            let (bytes, o2) = elements.multipliedReportingOverflow(by: s.type.elementSize)
            if o1 || o2 { return (0, true) }
            needed = max(needed, bytes)
        }
        return (needed, false)
    }

    /// The largest tensor that may have more elements than its storage (a broadcast view).
    static let maximumExpandedElements = 1 << 26

    /// Builds the float32 tensor `ref` describes from its storage's bytes (already checked to
    /// hold the storage's declared elements).
    static func materialise(_ ref: TorchTensorRef, name: String, storage: UnsafeRawBufferPointer,
                            bigEndian: Bool, file: String) throws -> Tensor {
        func fail(_ r: String) -> PretrainedError { PretrainedError(file: file, kind: .invalidTensor(name: name, reason: r)) }
        let shape = ref.shape, stride = ref.stride
        guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("negative size \(shape)") }
        guard stride.allSatisfy({ $0 >= 0 }) else { throw fail("negative stride \(stride)") }
        guard ref.offset >= 0 else { throw fail("negative storage offset \(ref.offset)") }
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            if o { throw fail("size \(shape) overflows") }
            count = p
        }
        let numel = ref.storage.numel
        if count > 0 {
            var last = ref.offset
            for (d, s) in zip(shape, stride) {
                let (p, o1) = (d - 1).multipliedReportingOverflow(by: s)
                let (q, o2) = last.addingReportingOverflow(p)
                if o1 || o2 { throw fail("size \(shape) and stride \(stride) overflow") }
                last = q
            }
            if last >= numel {
                throw PretrainedError(file: file, kind: .storageTooShort(key: ref.storage.key, detail:
                    "tensor '\(name)' (size \(shape), stride \(stride), offset \(ref.offset)) reaches element \(last), the storage has \(numel)"))
            }
            if count > numel && count > maximumExpandedElements {
                throw fail("size \(shape) has \(count) elements, more than its storage's \(numel) (a broadcast view larger than \(maximumExpandedElements) elements is refused)")
            }
        }

        let out = TensorStorage(count: count)
        let dst = out.base
        let type = ref.storage.type
        let es = type.elementSize
        let baseOffset = (ref.storage.viewOffset + ref.offset) * es
        if count > 0, let base = storage.baseAddress {
            let src = base + baseOffset
            let contiguous = stride == rowMajorStrides(shape) || count == 1
            #if _endian(little)
            let nativeFloat = type == .float && !bigEndian
            #else
            let nativeFloat = type == .float && bigEndian
            #endif
            if contiguous && nativeFloat {
                UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: 4 * count)
            } else {
                let read = elementReader(type, bigEndian: bigEndian)
                if contiguous {
                    for i in 0..<count { dst[i] = read(src + i * es) }
                } else {
                    // Row-major walk over the index space, moving the source by the strides.
                    let rank = shape.count
                    var index = [Int](repeating: 0, count: rank)
                    var at = 0
                    let innerSize = shape[rank - 1], innerStride = stride[rank - 1] * es
                    var i = 0
                    while i < count {
                        var p = src + at * es
                        for j in 0..<innerSize { dst[i + j] = read(p); p += innerStride }
                        i += innerSize
                        var d = rank - 2
                        while d >= 0 {
                            index[d] += 1
                            at += stride[d]
                            if index[d] < shape[d] { break }
                            at -= stride[d] * shape[d]
                            index[d] = 0
                            d -= 1
                        }
                    }
                }
            }
        }
        let t = Tensor(shape: shape, storage: out)
        t.name = name
        return t
    }

    /// A function reading one element of `type` at a pointer and converting it to Float.
    private static func elementReader(_ type: TorchStorageType, bigEndian: Bool) -> (UnsafeRawPointer) -> Float {
        #if _endian(little)
        let swap = bigEndian
        #else
        let swap = !bigEndian
        #endif
        func u16(_ p: UnsafeRawPointer) -> UInt16 { let v = p.loadUnaligned(as: UInt16.self); return swap ? v.byteSwapped : v }
        func u32(_ p: UnsafeRawPointer) -> UInt32 { let v = p.loadUnaligned(as: UInt32.self); return swap ? v.byteSwapped : v }
        func u64(_ p: UnsafeRawPointer) -> UInt64 { let v = p.loadUnaligned(as: UInt64.self); return swap ? v.byteSwapped : v }
        switch type {
        case .float: return { Float(bitPattern: u32($0)) }
        case .double: return { Float(Double(bitPattern: u64($0))) }
        case .half: return { SafetensorsFile.halfToFloat(u16($0)) }
        case .bfloat16: return { Float(bitPattern: UInt32(u16($0)) << 16) }
        case .long: return { Float(Int64(bitPattern: u64($0))) }
        case .int: return { Float(Int32(bitPattern: u32($0))) }
        case .short: return { Float(Int16(bitPattern: u16($0))) }
        case .char: return { Float(Int8(bitPattern: $0.load(as: UInt8.self))) }
        case .byte: return { Float($0.load(as: UInt8.self)) }
        case .bool: return { $0.load(as: UInt8.self) == 0 ? 0 : 1 }
        }
    }
}

/// The system's reason for a file error.
func describeSystemError(_ error: Error) -> String {
    if let e = error as? CocoaError, let u = e.userInfo[NSUnderlyingErrorKey] as? NSError {
        return u.localizedDescription
    }
    return (error as NSError).localizedDescription
}

// MARK: - Mapping onto a model

/// Whether a state_dict entry is bookkeeping rather than a weight: BatchNorm's
/// `num_batches_tracked` (ignored by ``assign(_:to:source:ignoring:transform:)`` by default).
public func isBookkeepingTensor(_ name: String) -> Bool {
    name == "num_batches_tracked" || name.hasSuffix(".num_batches_tracked")
}

/// Copies a loaded state_dict into a model's parameters, strictly.
///
/// Every parameter must have a tensor of the same name in `stateDict`, every tensor in
/// `stateDict` must be a parameter (unless `ignoring` says to skip it), and each tensor, after
/// `transform(name, tensor)` (e.g. ``convertOIHWToHWIO(_:)`` for convolution kernels), must
/// have the parameter's shape. All problems are collected and reported at once, sorted by
/// name; nothing is assigned unless everything matches. On success each parameter's scalars
/// are overwritten in place (``GenTensor/Tensor/assign(_:)``).
///
/// - Parameters:
///   - stateDict: the loaded tensors (``loadStateDict(from:)``).
///   - parameters: the model's parameters by state_dict name.
///   - source: the file name used in the error message.
///   - ignoring: state_dict names that are neither assigned nor reported as unexpected
///     (default: ``isBookkeepingTensor(_:)``).
///   - transform: converts a tensor from PyTorch's layout to the model's (default: none).
/// - Throws: ``PretrainedError/Kind/stateDictMismatch(_:)`` listing every missing,
///   unexpected and mis-shaped tensor.
public func assign(_ stateDict: [String: Tensor], to parameters: [String: Tensor],
                   source: String = "state_dict",
                   ignoring: (String) -> Bool = isBookkeepingTensor,
                   transform: (String, Tensor) -> Tensor = { $1 }) throws {
    var problems: [String] = []
    var ready: [(Tensor, Tensor)] = []
    for name in parameters.keys.sorted() {
        let parameter = parameters[name]!
        guard let loaded = stateDict[name] else {
            problems.append("missing: '\(name)' (the model expects shape \(parameter.shape))")
            continue
        }
        let converted = transform(name, loaded)
        if converted.shape != parameter.shape {
            let conversion = converted.shape == loaded.shape ? "" : " (\(converted.shape) after conversion)"
            problems.append("shape mismatch: '\(name)' is \(loaded.shape) in the file\(conversion), the model expects \(parameter.shape)")
            continue
        }
        ready.append((parameter, converted))
    }
    for name in stateDict.keys.sorted() where parameters[name] == nil && !ignoring(name) {
        problems.append("unexpected: '\(name)' (shape \(stateDict[name]!.shape)) is not a parameter of the model")
    }
    if !problems.isEmpty {
        throw PretrainedError(file: source, kind: .stateDictMismatch(problems))
    }
    for (parameter, value) in ready { parameter.assign(value) }
}

/// A PyTorch convolution kernel `[O, I, H, W]` as gen's `[H, W, I, O]` (a new tensor).
/// A tensor of another rank is returned unchanged, so that ``assign(_:to:source:ignoring:transform:)``
/// reports the shape mismatch instead of this function stopping the process.
public func convertOIHWToHWIO(_ t: Tensor) -> Tensor {
    guard t.rank == 4 else { return t }
    let o = t.shape[0], i = t.shape[1], h = t.shape[2], w = t.shape[3]
    let out = TensorStorage(count: t.count)
    let dst = out.base
    t.withUnsafeBufferPointer { src in
        for oo in 0..<o {
            for ii in 0..<i {
                for hh in 0..<h {
                    for ww in 0..<w {
                        dst[((hh * w + ww) * i + ii) * o + oo] = src[((oo * i + ii) * h + hh) * w + ww]
                    }
                }
            }
        }
    }
    let r = Tensor(shape: [h, w, i, o], storage: out)
    r.name = t.name
    return r
}

/// A PyTorch `nn.Linear` weight `[out, in]` as gen's Dense kernel `[in, out]` (a new tensor).
/// A tensor of another rank is returned unchanged (see ``convertOIHWToHWIO(_:)``).
public func convertLinearToInOut(_ t: Tensor) -> Tensor {
    guard t.rank == 2 else { return t }
    let rows = t.shape[0], cols = t.shape[1]
    let out = TensorStorage(count: t.count)
    let dst = out.base
    t.withUnsafeBufferPointer { src in
        for r in 0..<rows {
            for c in 0..<cols { dst[c * rows + r] = src[r * cols + c] }
        }
    }
    let r = Tensor(shape: [cols, rows], storage: out)
    r.name = t.name
    return r
}
