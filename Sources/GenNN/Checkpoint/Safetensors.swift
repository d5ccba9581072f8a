import Foundation
import GenTensor

// MARK: - Errors

/// A checkpoint or safetensors file that cannot be read, validated or written.
///
/// Every message names the file and the reason (`"<path>: checkpoint is empty"`,
/// `"<path>: not a valid checkpoint: header length 8031 exceeds the file size 4096"`). Thrown by
/// ``SafetensorsFile`` and ``Checkpoint``; nothing a file contains can crash the reader or make
/// it allocate more than the file's size.
public struct CheckpointError: Error, CustomStringConvertible, Equatable {
    /// What went wrong.
    public enum Kind: Equatable {
        /// The file does not exist.
        case fileNotFound
        /// The path is a directory or another non-regular file.
        case notARegularFile
        /// The file exists but could not be read (permission, I/O error); the system's reason.
        case unreadable(String)
        /// The file has zero bytes.
        case empty
        /// The file ends before the structure it announces: fewer than 8 bytes, a header longer
        /// than the file, or tensor data that runs past the end. The detail says which.
        case truncated(String)
        /// The 8-byte header length is larger than the 100 MB the safetensors spec allows.
        case headerTooLarge(UInt64)
        /// The JSON header is malformed: not UTF-8, not JSON, not an object, or a field has the
        /// wrong type. The detail says where.
        case invalidHeader(String)
        /// A tensor's `dtype` is not one of the safetensors dtypes.
        case unknownDType(tensor: String, dtype: String)
        /// A tensor entry is inconsistent (negative or overflowing shape, offsets reversed,
        /// byte size not equal to elements × dtype size).
        case invalidTensor(tensor: String, reason: String)
        /// The data section is not exactly covered by the tensors: a gap, an overlap, or
        /// trailing bytes after the last tensor.
        case invalidLayout(String)
        /// The same tensor name appears twice in the header.
        case duplicateName(String)
        /// The file is a valid safetensors file but has no gen `format` metadata (e.g.
        /// pretrained weights), or a different format.
        case notAGenCheckpoint(String)
        /// The checkpoint was written by another generator.
        case wrongGenerator(expected: String, found: String)
        /// The checkpoint's `format_version` is not one this build reads.
        case unsupportedFormatVersion(String)
        /// A tensor the caller needs is absent.
        case missingTensor(String)
        /// A tensor has another shape than the model expects.
        case shapeMismatch(tensor: String, expected: [Int], found: [Int])
        /// A metadata key the caller needs is absent.
        case missingMetadata(String)
        /// A metadata value could not be decoded; the key and the decoder's reason.
        case invalidMetadata(key: String, reason: String)
        /// The caller asked to write something safetensors cannot hold (e.g. a tensor named
        /// `__metadata__`), or the write failed; the reason.
        case writeFailed(String)
    }

    /// The file's path.
    public let file: String
    /// The reason.
    public let kind: Kind

    /// Creates an error for `file` (a path) and `kind`.
    public init(file: String, kind: Kind) {
        self.file = file
        self.kind = kind
    }

    /// `"<file>: <reason>"`; structural problems read "not a valid checkpoint: ...".
    public var description: String {
        let reason: String
        switch kind {
        case .fileNotFound: reason = "checkpoint not found"
        case .notARegularFile: reason = "not a regular file (a directory?)"
        case .unreadable(let r): reason = "cannot read checkpoint: \(r)"
        case .empty: reason = "checkpoint is empty (0 bytes)"
        case .truncated(let d): reason = "not a valid checkpoint: file is truncated (\(d))"
        case .headerTooLarge(let n):
            reason = "not a valid checkpoint: header length \(n) is larger than the 100 MB limit (not a safetensors file?)"
        case .invalidHeader(let d): reason = "not a valid checkpoint: invalid header: \(d)"
        case .unknownDType(let t, let d): reason = "not a valid checkpoint: tensor '\(t)' has unknown dtype '\(d)'"
        case .invalidTensor(let t, let r): reason = "not a valid checkpoint: tensor '\(t)': \(r)"
        case .invalidLayout(let d): reason = "not a valid checkpoint: \(d)"
        case .duplicateName(let n): reason = "not a valid checkpoint: tensor name '\(n)' appears twice"
        case .notAGenCheckpoint(let d): reason = "not a gen checkpoint: \(d)"
        case .wrongGenerator(let e, let f):
            reason = "checkpoint was written by the '\(f)' generator, not '\(e)'"
        case .unsupportedFormatVersion(let v):
            reason = "checkpoint format version '\(v)' is not supported (this build reads version \(Checkpoint.currentFormatVersion))"
        case .missingTensor(let n): reason = "checkpoint has no tensor '\(n)'"
        case .shapeMismatch(let n, let e, let f): reason = "tensor '\(n)' has shape \(f), the model expects \(e)"
        case .missingMetadata(let k): reason = "checkpoint metadata has no '\(k)' entry"
        case .invalidMetadata(let k, let r): reason = "checkpoint metadata '\(k)' is invalid: \(r)"
        case .writeFailed(let r): reason = "cannot write checkpoint: \(r)"
        }
        return "\(file): \(reason)"
    }
}

// MARK: - Data types

/// The element types of the safetensors format (spec: huggingface/safetensors `Dtype`).
/// All of them can be read and converted to `Float`; gen writes only ``f32``.
public enum SafetensorsDType: String, CaseIterable, Sendable {
    /// Boolean, one byte (0 → 0.0, anything else → 1.0).
    case bool = "BOOL"
    /// Unsigned 8-bit integer.
    case u8 = "U8"
    /// Signed 8-bit integer.
    case i8 = "I8"
    /// 8-bit float, 5 exponent bits, 2 mantissa bits (IEEE-like, with infinities).
    case f8e5m2 = "F8_E5M2"
    /// 8-bit float, 4 exponent bits, 3 mantissa bits (the "fn" variant: no infinities, S.1111.111 is NaN).
    case f8e4m3 = "F8_E4M3"
    /// Signed 16-bit integer.
    case i16 = "I16"
    /// Unsigned 16-bit integer.
    case u16 = "U16"
    /// IEEE 754 half precision.
    case f16 = "F16"
    /// bfloat16 (the upper half of a float32).
    case bf16 = "BF16"
    /// Signed 32-bit integer (converted to the nearest Float).
    case i32 = "I32"
    /// Unsigned 32-bit integer (converted to the nearest Float).
    case u32 = "U32"
    /// IEEE 754 single precision: the native type, copied without conversion.
    case f32 = "F32"
    /// IEEE 754 double precision (rounded to Float).
    case f64 = "F64"
    /// Signed 64-bit integer (converted to the nearest Float).
    case i64 = "I64"
    /// Unsigned 64-bit integer (converted to the nearest Float).
    case u64 = "U64"

    /// Size of one element in bytes.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }
}

// MARK: - File

/// A safetensors file: an 8-byte little-endian `UInt64` header length N, N bytes of UTF-8 JSON
/// header, then the raw little-endian tensor data.
///
/// Header layout (spec: https://github.com/huggingface/safetensors, "Format"):
/// ```
/// {"__metadata__": {"key": "value", ...},            // optional, string values only
///  "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
/// ```
/// Offsets are relative to the first byte after the header. The header must start with `{` and
/// may be padded with trailing spaces.
///
/// Reading validates strictly, as the reference implementation does, and throws
/// ``CheckpointError`` for: an empty file, a file shorter than 8 bytes, a header length above
/// 100 MB or beyond the end of the file, a header that is not UTF-8 JSON or not an object, a
/// duplicate name, an unknown dtype, a bad shape, offsets whose size is not elements × dtype
/// size, and a data section that is not covered exactly (gaps, overlaps, trailing bytes, or a
/// truncated file). Extra fields inside a tensor entry are ignored, as in the reference.
///
/// The file is memory-mapped; tensors are converted to float32 on demand with
/// ``tensor(named:)`` or all at once with ``tensors()``.
public struct SafetensorsFile {
    /// Description of one stored tensor.
    public struct Entry: Equatable, Sendable {
        /// The tensor's name (the header key).
        public let name: String
        /// The stored element type.
        public let dtype: SafetensorsDType
        /// The shape, outermost first (`[]` is a scalar).
        public let shape: [Int]
        /// Byte range inside the data section (after the header).
        public let dataOffsets: Range<Int>
    }

    /// The largest header the reader accepts (the spec's limit): 100,000,000 bytes.
    public static let maximumHeaderSize: UInt64 = 100_000_000

    /// Path of the file that was read (used in error messages).
    public let path: String
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// The tensors in header order.
    public let entries: [Entry]
    private let index: [String: Int]
    private let bytes: Data
    private let dataStart: Int

    /// The tensor names, in header order.
    public var names: [String] { entries.map(\.name) }

    /// The entry named `name`, or `nil`.
    public func entry(named name: String) -> Entry? {
        index[name].map { entries[$0] }
    }

    /// Opens and validates the file at `url` (memory-mapped; no tensor is converted yet).
    /// - Throws: ``CheckpointError`` naming the file: ``CheckpointError/Kind/fileNotFound``,
    ///   ``CheckpointError/Kind/notARegularFile``, ``CheckpointError/Kind/unreadable(_:)``,
    ///   ``CheckpointError/Kind/empty``, and every structural kind listed on the type.
    public init(contentsOf url: URL) throws {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError(file: path, kind: .fileNotFound)
        }
        if isDirectory.boolValue { throw CheckpointError(file: path, kind: .notARegularFile) }
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path)
        } catch {
            throw CheckpointError(file: path, kind: .unreadable(Self.reason(error)))
        }
        if let type = attributes[.type] as? FileAttributeType, type != .typeRegular {
            throw CheckpointError(file: path, kind: .notARegularFile)
        }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? -1
        if size == 0 { throw CheckpointError(file: path, kind: .empty) }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw CheckpointError(file: path, kind: .unreadable(Self.reason(error)))
        }
        try self.init(data: data, path: path)
    }

    /// Parses and validates safetensors bytes already in memory; `path` is used in messages.
    /// - Throws: ``CheckpointError`` as ``init(contentsOf:)``.
    public init(data: Data, path: String) throws {
        func fail(_ kind: CheckpointError.Kind) -> CheckpointError {
            CheckpointError(file: path, kind: kind)
        }
        let fileSize = data.count
        if fileSize == 0 { throw fail(.empty) }
        if fileSize < 8 {
            throw fail(.truncated("\(fileSize) bytes, shorter than the 8-byte header length"))
        }
        var n: UInt64 = 0
        data.withUnsafeBytes { raw in
            for i in 0..<8 { n |= UInt64(raw[i]) << (8 * UInt64(i)) }
        }
        if n > Self.maximumHeaderSize { throw fail(.headerTooLarge(n)) }
        if n < 2 { throw fail(.invalidHeader("header length \(n) is too short for a JSON object")) }
        if UInt64(fileSize - 8) < n {
            throw fail(.truncated("header length \(n) exceeds the \(fileSize - 8) bytes after the length field"))
        }
        let headerLength = Int(n)
        let dataStart = 8 + headerLength
        let dataSize = fileSize - dataStart

        // Parse the header.
        let root: JSONValue
        do {
            root = try data.withUnsafeBytes { raw -> JSONValue in
                let header = UnsafeRawBufferPointer(rebasing: raw[8..<dataStart])
                guard header.first == UInt8(ascii: "{") else {
                    throw JSONParser.Failure(message: "header does not start with '{'", offset: 0)
                }
                var parser = JSONParser(header)
                return try parser.parseDocument()
            }
        } catch let e as JSONParser.Failure {
            throw fail(.invalidHeader("\(e.message) at header byte \(e.offset)"))
        }
        guard case .object(let members) = root else {
            throw fail(.invalidHeader("the header is not a JSON object"))
        }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        var index: [String: Int] = [:]
        var seenMetadata = false
        for (key, value) in members {
            if key == "__metadata__" {
                if seenMetadata { throw fail(.duplicateName(key)) }
                seenMetadata = true
                switch value {
                case .null: break
                case .object(let pairs):
                    for (k, v) in pairs {
                        guard case .string(let s) = v else {
                            throw fail(.invalidHeader("__metadata__ value for '\(k)' is not a string"))
                        }
                        if metadata[k] != nil {
                            throw fail(.invalidHeader("__metadata__ key '\(k)' appears twice"))
                        }
                        metadata[k] = s
                    }
                default:
                    throw fail(.invalidHeader("__metadata__ is not an object"))
                }
                continue
            }
            if index[key] != nil { throw fail(.duplicateName(key)) }
            guard case .object(let fields) = value else {
                throw fail(.invalidTensor(tensor: key, reason: "entry is not a JSON object"))
            }
            func field(_ name: String) throws -> JSONValue {
                var found: JSONValue?
                for (k, v) in fields where k == name {
                    if found != nil {
                        throw fail(.invalidTensor(tensor: key, reason: "field '\(name)' appears twice"))
                    }
                    found = v
                }
                guard let f = found else {
                    throw fail(.invalidTensor(tensor: key, reason: "missing field '\(name)'"))
                }
                return f
            }
            guard case .string(let dtypeName) = try field("dtype") else {
                throw fail(.invalidTensor(tensor: key, reason: "'dtype' is not a string"))
            }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw fail(.unknownDType(tensor: key, dtype: dtypeName))
            }
            guard case .array(let shapeValues) = try field("shape") else {
                throw fail(.invalidTensor(tensor: key, reason: "'shape' is not an array"))
            }
            var shape: [Int] = []
            var elements = 1
            for v in shapeValues {
                guard case .integer(let d) = v, d >= 0, d <= Int64(Int.max) else {
                    throw fail(.invalidTensor(tensor: key, reason: "'shape' must hold non-negative integers"))
                }
                shape.append(Int(d))
                let (p, o) = elements.multipliedReportingOverflow(by: Int(d))
                if o { throw fail(.invalidTensor(tensor: key, reason: "shape \(shape) overflows")) }
                elements = p
            }
            guard case .array(let offsetValues) = try field("data_offsets"), offsetValues.count == 2,
                  case .integer(let b) = offsetValues[0], case .integer(let e) = offsetValues[1],
                  b >= 0, e >= 0 else {
                throw fail(.invalidTensor(tensor: key, reason: "'data_offsets' must be two non-negative integers"))
            }
            guard b <= e else {
                throw fail(.invalidTensor(tensor: key, reason: "data_offsets [\(b), \(e)] are reversed"))
            }
            let (nbytes, o) = elements.multipliedReportingOverflow(by: dtype.byteSize)
            if o || Int64(nbytes) != e - b {
                throw fail(.invalidTensor(tensor: key, reason:
                    "data_offsets [\(b), \(e)] hold \(e - b) bytes, but shape \(shape) of \(dtype.rawValue) needs \(o ? "too many" : String(nbytes))"))
            }
            guard e <= Int64(Int.max) else {
                throw fail(.invalidTensor(tensor: key, reason: "data_offsets out of range"))
            }
            index[key] = entries.count
            entries.append(Entry(name: key, dtype: dtype, shape: shape, dataOffsets: Int(b)..<Int(e)))
        }

        // The data section must be covered exactly: sorted by offsets, each tensor starts where
        // the previous one ended, and the last one ends at the end of the file (reference: safetensors
        // `Metadata::validate`).
        let ordered = entries.sorted {
            ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound)
        }
        var end = 0
        for entry in ordered {
            let r = entry.dataOffsets
            if r.lowerBound > end {
                if r.lowerBound > dataSize {
                    throw fail(.truncated("tensor '\(entry.name)' starts at data byte \(r.lowerBound), but the data section has only \(dataSize) bytes"))
                }
                throw fail(.invalidLayout("gap in the data section before tensor '\(entry.name)' (bytes \(end)..<\(r.lowerBound) belong to no tensor)"))
            }
            if r.lowerBound < end {
                throw fail(.invalidLayout("tensor '\(entry.name)' overlaps the previous tensor (starts at data byte \(r.lowerBound), previous ends at \(end))"))
            }
            end = r.upperBound
        }
        if end > dataSize {
            throw fail(.truncated("the tensors need \(end) data bytes, the file holds only \(dataSize)"))
        }
        if end < dataSize {
            throw fail(.invalidLayout("\(dataSize - end) trailing bytes after the last tensor"))
        }

        self.path = path
        self.metadata = metadata
        self.entries = entries
        self.index = index
        self.bytes = data
        self.dataStart = dataStart
    }

    /// Converts the tensor named `name` to a float32 ``Tensor`` (named `name`).
    /// - Throws: ``CheckpointError/Kind/missingTensor(_:)`` when absent.
    public func tensor(named name: String) throws -> Tensor {
        guard let i = index[name] else {
            throw CheckpointError(file: path, kind: .missingTensor(name))
        }
        return makeTensor(entries[i])
    }

    /// Converts every tensor to float32, keyed by name.
    public func tensors() -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        result.reserveCapacity(entries.count)
        for e in entries { result[e.name] = makeTensor(e) }
        return result
    }

    private func makeTensor(_ entry: Entry) -> Tensor {
        let count = entry.shape.reduce(1, *)
        let storage = TensorStorage(count: count)
        let dst = storage.base
        bytes.withUnsafeBytes { raw in
            let start = dataStart + entry.dataOffsets.lowerBound
            let src = UnsafeRawBufferPointer(rebasing: raw[start..<(dataStart + entry.dataOffsets.upperBound)])
            Self.convert(src, dtype: entry.dtype, count: count, into: dst)
        }
        let t = Tensor(shape: entry.shape, storage: storage)
        t.name = entry.name
        return t
    }

    private static func convert(_ src: UnsafeRawBufferPointer, dtype: SafetensorsDType, count: Int,
                                into dst: UnsafeMutablePointer<Float>) {
        guard count > 0, let base = src.baseAddress else { return }
        @inline(__always) func u16(_ i: Int) -> UInt16 { UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        @inline(__always) func u32(_ i: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        @inline(__always) func u64(_ i: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
        switch dtype {
        case .f32:
            #if _endian(little)
            UnsafeMutableRawPointer(dst).copyMemory(from: base, byteCount: 4 * count)
            #else
            for i in 0..<count { dst[i] = Float(bitPattern: u32(i)) }
            #endif
        case .f64: for i in 0..<count { dst[i] = Float(Double(bitPattern: u64(i))) }
        case .f16: for i in 0..<count { dst[i] = halfToFloat(u16(i)) }
        case .bf16: for i in 0..<count { dst[i] = Float(bitPattern: UInt32(u16(i)) << 16) }
        case .f8e5m2: for i in 0..<count { dst[i] = halfToFloat(UInt16(src[i]) << 8) }
        case .f8e4m3: for i in 0..<count { dst[i] = e4m3ToFloat(src[i]) }
        case .bool: for i in 0..<count { dst[i] = src[i] == 0 ? 0 : 1 }
        case .u8: for i in 0..<count { dst[i] = Float(src[i]) }
        case .i8: for i in 0..<count { dst[i] = Float(Int8(bitPattern: src[i])) }
        case .i16: for i in 0..<count { dst[i] = Float(Int16(bitPattern: u16(i))) }
        case .u16: for i in 0..<count { dst[i] = Float(u16(i)) }
        case .i32: for i in 0..<count { dst[i] = Float(Int32(bitPattern: u32(i))) }
        case .u32: for i in 0..<count { dst[i] = Float(u32(i)) }
        case .i64: for i in 0..<count { dst[i] = Float(Int64(bitPattern: u64(i))) }
        case .u64: for i in 0..<count { dst[i] = Float(u64(i)) }
        }
    }

    /// IEEE half → float, exact for every value including subnormals, infinities and NaN.
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign: UInt32 = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa × 2^-24.
            let magnitude = Float(mantissa) * Float(bitPattern: 0x3380_0000)  // 2^-24
            return Float(bitPattern: sign | magnitude.bitPattern)
        }
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
    }

    /// float8 E4M3 ("fn": bias 7, no infinities, S.1111.111 is NaN) → float.
    static func e4m3ToFloat(_ b: UInt8) -> Float {
        let negative = b & 0x80 != 0
        let exponent = Int((b >> 3) & 0xF)
        let mantissa = Float(b & 0x7)
        let value: Float
        if exponent == 0xF && b & 0x7 == 0x7 {
            return .nan
        } else if exponent == 0 {
            value = mantissa / 8 * Float(sign: .plus, exponent: -6, significand: 1)
        } else {
            value = (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
        }
        return negative ? -value : value
    }

    private static func reason(_ error: Error) -> String {
        if let e = error as? CocoaError, let u = e.userInfo[NSUnderlyingErrorKey] as? NSError {
            return u.localizedDescription
        }
        return (error as NSError).localizedDescription
    }

    // MARK: Writing

    /// Writes float32 tensors and string metadata as a safetensors file, atomically (temporary
    /// file in the same folder, fsync, rename, fsync of the folder; see
    /// ``GenTensor/writeFileAtomically(to:_:)``).
    ///
    /// Layout: tensors sorted by name (deterministic bytes for equal inputs), stored back to back
    /// as little-endian `F32` from data offset 0; `__metadata__` first in the header with keys
    /// sorted; the header is padded with spaces to a multiple of 8 bytes so the data starts
    /// 8-byte aligned. The result loads with Python's `safetensors.numpy.load_file`.
    ///
    /// - Throws: ``CheckpointError`` with ``CheckpointError/Kind/writeFailed(_:)`` for a tensor
    ///   named `__metadata__` or an empty name, and when the file cannot be written (the
    ///   message carries the `errno` reason). An existing file at `url` is untouched on error.
    public static func write(tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        let path = url.path
        let names = tensors.keys.sorted()
        for name in names where name == "__metadata__" || name.isEmpty {
            throw CheckpointError(file: path, kind: .writeFailed("invalid tensor name '\(name)'"))
        }
        let header = headerBytes(names: names, tensors: tensors, metadata: metadata)
        do {
            try writeFileAtomically(to: url) { out in
                var length = UInt64(header.count).littleEndian
                try withUnsafeBytes(of: &length) { try out.write($0) }
                try out.write(contentsOf: header)
                for name in names {
                    guard let t = tensors[name] else { continue }
                    #if _endian(little)
                    try out.write(UnsafeRawBufferPointer(start: t.storage.base, count: 4 * t.count))
                    #else
                    let le = t.scalars.map { $0.bitPattern.littleEndian }
                    try out.write(contentsOf: le)
                    #endif
                }
            }
        } catch let e as FileWriteError {
            throw CheckpointError(file: path, kind: .writeFailed("\(e.operation) failed: \(e.reason)"))
        }
    }

    /// The header JSON for `write`, padded with spaces to a multiple of 8 bytes.
    static func headerBytes(names: [String], tensors: [String: Tensor], metadata: [String: String]) -> [UInt8] {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            json += metadata.keys.sorted().map { k in
                jsonQuote(k) + ":" + jsonQuote(metadata[k] ?? "")
            }.joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        for name in names {
            guard let t = tensors[name] else { continue }
            if !first { json += "," }
            first = false
            let size = 4 * t.count
            json += jsonQuote(name)
            json += ":{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],"
            json += "\"data_offsets\":[\(offset),\(offset + size)]}"
            offset += size
        }
        json += "}"
        var bytes = Array(json.utf8)
        while (8 + bytes.count) % 8 != 0 { bytes.append(0x20) }
        return bytes
    }

    /// A JSON string literal for `s` (RFC 8259 escaping; non-ASCII kept as UTF-8).
    static func jsonQuote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F:
                out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

// MARK: - A strict, bounded JSON parser

/// A JSON value with object members kept in order (so duplicate keys can be detected) and
/// integers kept exact.
enum JSONValue: Equatable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case integer(Int64)
    case number(Double)
    case bool(Bool)
    case null

    static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.array(let x), .array(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }
}

/// RFC 8259 parser over raw bytes: nesting limited to 64 levels, strings validated as UTF-8,
/// trailing whitespace allowed, anything else after the value rejected.
struct JSONParser {
    struct Failure: Error {
        let message: String
        let offset: Int
    }

    private let bytes: UnsafeRawBufferPointer
    private var i = 0
    private var depth = 0
    private static let maxDepth = 64

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func parseDocument() throws -> JSONValue {
        skipSpace()
        let v = try parseValue()
        skipSpace()
        if i != bytes.count { throw Failure(message: "unexpected data after the JSON value", offset: i) }
        return v
    }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }

    private mutating func expect(_ c: UInt8) throws {
        guard peek() == c else {
            throw Failure(message: "expected '\(Character(Unicode.Scalar(c)))'", offset: i)
        }
        i += 1
    }

    private mutating func parseValue() throws -> JSONValue {
        guard let c = peek() else { throw Failure(message: "unexpected end of JSON", offset: i) }
        switch c {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw Failure(message: "unexpected character (byte 0x\(String(c, radix: 16)))", offset: i)
        }
    }

    private mutating func literal(_ word: String) throws {
        for b in word.utf8 {
            guard peek() == b else { throw Failure(message: "invalid literal", offset: i) }
            i += 1
        }
    }

    private mutating func enter() throws {
        depth += 1
        if depth > Self.maxDepth { throw Failure(message: "nesting deeper than \(Self.maxDepth) levels", offset: i) }
    }

    private mutating func parseObject() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        var members: [(String, JSONValue)] = []
        skipSpace()
        if peek() == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            skipSpace()
            guard peek() == UInt8(ascii: "\"") else { throw Failure(message: "expected a string key", offset: i) }
            let key = try parseString()
            skipSpace()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            let value = try parseValue()
            members.append((key, value))
            skipSpace()
            if peek() == UInt8(ascii: ",") { i += 1; continue }
            try expect(UInt8(ascii: "}"))
            return .object(members)
        }
    }

    private mutating func parseArray() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if peek() == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try parseValue())
            skipSpace()
            if peek() == UInt8(ascii: ",") { i += 1; continue }
            try expect(UInt8(ascii: "]"))
            return .array(items)
        }
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw Failure(message: "truncated \\u escape", offset: i) }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw Failure(message: "invalid \\u escape", offset: i)
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private mutating func parseString() throws -> String {
        let start = i
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek() else { throw Failure(message: "unterminated string", offset: start) }
            i += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { throw Failure(message: "control character in string", offset: i - 1) }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard let e = peek() else { throw Failure(message: "unterminated escape", offset: i) }
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var v = try hex4()
                if (0xD800...0xDBFF).contains(v) {
                    guard i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw Failure(message: "unpaired surrogate escape", offset: i)
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw Failure(message: "unpaired surrogate escape", offset: i)
                    }
                    v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(v) {
                    throw Failure(message: "unpaired surrogate escape", offset: i)
                }
                guard let scalar = Unicode.Scalar(v) else {
                    throw Failure(message: "invalid \\u escape", offset: i)
                }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw Failure(message: "invalid escape", offset: i - 1)
            }
        }
        // Strict UTF-8: decoding repairs ill-formed input with U+FFFD, which changes the bytes.
        let s = String(decoding: out, as: UTF8.self)
        guard s.utf8.elementsEqual(out) else {
            throw Failure(message: "string is not valid UTF-8", offset: start)
        }
        return s
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = i
        if peek() == UInt8(ascii: "-") { i += 1 }
        func digits() -> Int {
            let s = i
            while let c = peek(), c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { i += 1 }
            return i - s
        }
        let intStart = i
        let n = digits()
        if n == 0 { throw Failure(message: "invalid number", offset: start) }
        if n > 1 && bytes[intStart] == UInt8(ascii: "0") { throw Failure(message: "leading zero in number", offset: start) }
        var isInteger = true
        if peek() == UInt8(ascii: ".") {
            i += 1
            isInteger = false
            if digits() == 0 { throw Failure(message: "invalid number", offset: start) }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            i += 1
            isInteger = false
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { i += 1 }
            if digits() == 0 { throw Failure(message: "invalid number", offset: start) }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        if isInteger, let v = Int64(text) { return .integer(v) }
        guard let d = Double(text) else { throw Failure(message: "invalid number", offset: start) }
        return .number(d)
    }
}
