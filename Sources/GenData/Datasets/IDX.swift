import CImageCodecs
import Foundation
import GenTensor

/// Element types of the IDX format (the byte after the two zero bytes of the magic number).
public enum IDXType: UInt8, Sendable {
    /// The six IDX element types (codes 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E).
    case uint8 = 0x08, int8 = 0x09, int16 = 0x0B, int32 = 0x0C, float32 = 0x0D, float64 = 0x0E

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16: return 2
        case .int32, .float32: return 4
        case .float64: return 8
        }
    }
}

/// An IDX file (the MNIST / Fashion-MNIST container): big-endian magic `00 00 TT DD` (type,
/// number of dimensions), DD big-endian UInt32 dimension sizes, then the elements row-major,
/// big-endian.
///
/// Files may be plain or gzip-compressed; gzip is recognised by its magic bytes `1F 8B` (not by
/// a `.gz` name) and decompressed with zlib on the fly.
public struct IDXFile: Sendable {
    /// The file path (for messages).
    public let path: String
    /// Element type.
    public let type: IDXType
    /// Dimension sizes, outermost first (e.g. `[60000, 28, 28]`).
    public let shape: [Int]
    /// The raw element bytes (big-endian for multi-byte types), `shape.product * type.size` bytes.
    public let payload: [UInt8]

    /// Largest decompressed size accepted (4 GiB).
    public static let maxDecompressedSize = 4 << 30

    /// Reads and validates an IDX file.
    /// - Throws: ``DatasetError/invalidIDX(path:reason:)`` when the file is unreadable, corrupt
    ///   gzip, has a wrong magic number (the message shows the expected form and the found
    ///   value), or is shorter than its header declares (expected and found byte counts).
    public init(path: String) throws {
        let bytes: [UInt8]
        do { bytes = try readImageFile(path) } catch let e as ImageError {
            throw DatasetError.invalidIDX(path: path, reason: e.reason)
        }
        try self.init(bytes: bytes, path: path)
    }

    /// Parses IDX `bytes` (plain or gzip); `path` labels errors. - Throws: as ``init(path:)``.
    public init(bytes input: [UInt8], path: String = "<memory>") throws {
        self.path = path
        if input.isEmpty {
            throw DatasetError.invalidIDX(path: path, reason: "empty file (0 bytes): not an IDX file or image folder")
        }
        var bytes = input
        var compressed = ""
        if bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B {
            var out = cimg_buffer()
            var msg = [CChar](repeating: 0, count: 256)
            let rc = input.withUnsafeBufferPointer {
                cimg_gunzip($0.baseAddress, $0.count, IDXFile.maxDecompressedSize, &out, &msg, msg.count)
            }
            defer { cimg_buffer_free(&out) }
            if rc != Int32(CIMG_OK.rawValue) {
                let m = msg.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                throw DatasetError.invalidIDX(path: path, reason: "gzip-compressed IDX file cannot be decompressed: \(m)")
            }
            bytes = Array(UnsafeBufferPointer(start: out.data, count: out.size))
            compressed = " (after gzip decompression)"
        }
        guard bytes.count >= 4 else {
            throw DatasetError.invalidIDX(path: path, reason:
                "file is shorter than its header\(compressed): expected at least 4 bytes of magic number, found \(bytes.count)")
        }
        let magic = UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
        guard bytes[0] == 0, bytes[1] == 0, let type = IDXType(rawValue: bytes[2]), bytes[3] >= 1, bytes[3] <= 8 else {
            let hex = String(format: "0x%08X", magic)
            var hint = ""
            if ImageFormat.detect(bytes) != .unknown && ImageFormat.detect(bytes) != .empty {
                hint = "; the file looks like \(ImageFormat.detect(bytes).rawValue)"
            }
            throw DatasetError.invalidIDX(path: path, reason:
                "not an IDX file\(compressed): wrong magic number \(hex) (\(magic)); expected 0x00000TDD with type T in 08/09/0B/0C/0D/0E and 1-8 dimensions DD, e.g. 0x00000801 (2049) for labels or 0x00000803 (2051) for images\(hint)")
        }
        let ndim = Int(bytes[3])
        let headerSize = 4 + 4 * ndim
        guard bytes.count >= headerSize else {
            throw DatasetError.invalidIDX(path: path, reason:
                "file is shorter than its header declares\(compressed): expected \(headerSize) header bytes for \(ndim) dimensions, found \(bytes.count)")
        }
        var shape: [Int] = []
        var total = 1
        for d in 0..<ndim {
            let o = 4 + 4 * d
            let v = Int(UInt32(bytes[o]) << 24 | UInt32(bytes[o + 1]) << 16 | UInt32(bytes[o + 2]) << 8 | UInt32(bytes[o + 3]))
            shape.append(v)
            let (t, of) = total.multipliedReportingOverflow(by: v)
            guard !of, t <= IDXFile.maxDecompressedSize else {
                throw DatasetError.invalidIDX(path: path, reason: "header declares an impossible shape \(shape)...")
            }
            total = t
        }
        let expected = headerSize + total * type.size
        guard bytes.count >= expected else {
            throw DatasetError.invalidIDX(path: path, reason:
                "file is shorter than its header declares\(compressed): shape \(shape) of \(type) needs \(expected) bytes, found \(bytes.count)")
        }
        self.type = type
        self.shape = shape
        self.payload = Array(bytes[headerSize..<expected])
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// Every element as Float (raw values, not normalised).
    public func floats() -> [Float] {
        let n = count
        return payload.withUnsafeBufferPointer { p -> [Float] in
            [Float](unsafeUninitializedCapacity: n) { buf, done in
                let b = p.baseAddress!
                for i in 0..<n {
                    switch type {
                    case .uint8: buf[i] = Float(b[i])
                    case .int8: buf[i] = Float(Int8(bitPattern: b[i]))
                    case .int16: buf[i] = Float(Int16(bitPattern: UInt16(b[2 * i]) << 8 | UInt16(b[2 * i + 1])))
                    case .int32:
                        buf[i] = Float(Int32(bitPattern: UInt32(b[4 * i]) << 24 | UInt32(b[4 * i + 1]) << 16 | UInt32(b[4 * i + 2]) << 8 | UInt32(b[4 * i + 3])))
                    case .float32:
                        buf[i] = Float(bitPattern: UInt32(b[4 * i]) << 24 | UInt32(b[4 * i + 1]) << 16 | UInt32(b[4 * i + 2]) << 8 | UInt32(b[4 * i + 3]))
                    case .float64:
                        var u: UInt64 = 0
                        for k in 0..<8 { u = u << 8 | UInt64(b[8 * i + k]) }
                        buf[i] = Float(Double(bitPattern: u))
                    }
                }
                done = n
            }
        }
    }

    /// Every element as Int (floats truncated, NaN/infinite become 0).
    public func integers() -> [Int] {
        if type == .uint8 { return payload.map { Int($0) } }
        return floats().map { $0.isFinite ? Int(max(min($0, 9.0e18), -9.0e18)) : 0 }
    }
}
