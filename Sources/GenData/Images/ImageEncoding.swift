import CImageCodecs
import Foundation
import GenTensor

/// Output formats `gen` writes.
public enum ImageFileFormat: String, Sendable, CaseIterable {
    /// PNG, 8-bit (or 16-bit on request), gray / gray+alpha / RGB / RGBA.
    case png
    /// Baseline JPEG, gray or RGB (alpha composited onto white), quality 1...100.
    case jpeg

    /// The format for a path's extension (`.png`; `.jpg`, `.jpeg`, `.jpe`), case-insensitive.
    /// - Throws: ``ImageError/invalidArgument(_:)`` for any other extension (naming an existing
    ///   folder as such).
    public init(path: String) throws {
        switch (path as NSString).pathExtension.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg", "jpe", "jfif": self = .jpeg
        case let ext:
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
                throw ImageError.invalidArgument("\(path) is a folder; give an image file name ending in .png, .jpg or .jpeg")
            }
            throw ImageError.invalidArgument(
                "\(path): cannot choose an output format from extension '\(ext.isEmpty ? "(none)" : "." + ext)'; use .png, .jpg or .jpeg")
        }
    }
}

/// Encoder settings.
public struct ImageEncodeOptions: Sendable, Equatable {
    /// PNG bits per sample: 8 (default) or 16. Ignored for JPEG (always 8).
    public var bitDepth: Int
    /// JPEG quality 1...100 (default 92). Ignored for PNG.
    public var quality: Int
    /// Creates options. Values are validated when encoding.
    public init(bitDepth: Int = 8, quality: Int = 92) {
        self.bitDepth = bitDepth
        self.quality = quality
    }
}

extension Image {
    /// Encodes to PNG or JPEG bytes. Samples are clamped to [0, 1] and rounded; NaN becomes 0.
    /// Output is upright and carries no orientation tag. JPEG cannot hold alpha: 2/4-channel
    /// images are composited onto white first.
    /// - Throws: ``ImageError/invalidArgument(_:)`` (bit depth, quality),
    ///   ``ImageError/encodingFailed(path:reason:)``.
    public func encoded(as format: ImageFileFormat, options: ImageEncodeOptions = ImageEncodeOptions(),
                        path: String = "<memory>") throws -> [UInt8] {
        var msg = [CChar](repeating: 0, count: 512)
        var buffer = cimg_buffer()
        defer { cimg_buffer_free(&buffer) }
        let rc: Int32
        switch format {
        case .png:
            guard options.bitDepth == 8 || options.bitDepth == 16 else {
                throw ImageError.invalidArgument("PNG bit depth must be 8 or 16, got \(options.bitDepth)")
            }
            let colorType: Int32 = [1: 0, 2: 4, 3: 2, 4: 6][channels] ?? 2
            let samples = quantized(bits: options.bitDepth)
            rc = samples.withUnsafeBytes { s in
                cimg_png_encode(s.baseAddress, UInt32(width), UInt32(height), colorType, Int32(options.bitDepth),
                                0, nil, 0, nil, 0, &buffer, &msg, msg.count)
            }
        case .jpeg:
            guard (1...100).contains(options.quality) else {
                throw ImageError.invalidArgument("JPEG quality must be in 1...100, got \(options.quality)")
            }
            guard width <= 65500 && height <= 65500 else {
                throw ImageError.encodingFailed(path: path, reason: "JPEG cannot hold \(width)x\(height) (max 65500)")
            }
            let opaque = hasAlpha ? try converted(channels: channels == 2 ? 1 : 3) : self
            let samples = opaque.quantized(bits: 8)
            rc = samples.withUnsafeBytes { s in
                cimg_jpeg_encode(s.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt32(width), UInt32(height),
                                 Int32(opaque.channels), Int32(options.quality), 0, 0, &buffer, &msg, msg.count)
            }
        }
        if rc != Int32(CIMG_OK.rawValue) {
            throw ImageError.encodingFailed(path: path, reason: msg.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        return Array(UnsafeBufferPointer(start: buffer.data, count: buffer.size))
    }

    /// Samples as 8-bit bytes or native-endian 16-bit words (clamped, rounded).
    func quantized(bits: Int) -> [UInt8] {
        let count = pixels.count
        let bytes = count * (bits / 8)
        return [UInt8](unsafeUninitializedCapacity: bytes) { buf, done in
            pixels.withUnsafeBufferPointer { p in
                _ = cimg_from_float(p.baseAddress, count, 1, 0, Int32(bits), buf.baseAddress)
            }
            done = bytes
        }
    }

    /// Encodes and writes atomically to `path` (format from `format`, else from the extension)
    /// through GenTensor's `writeFileAtomically`: a temporary file in the same folder, fsync,
    /// then rename; on any failure nothing is left at `path` or beside it. Encoding happens
    /// before the file is created, so a failed encode creates nothing.
    /// - Throws: ``ImageError`` (invalidArgument for an unknown extension, encodingFailed,
    ///   writeFailed).
    public func write(to path: String, format: ImageFileFormat? = nil,
                      options: ImageEncodeOptions = ImageEncodeOptions()) throws {
        let fmt = try format ?? ImageFileFormat(path: path)
        let bytes = try encoded(as: fmt, options: options, path: path)
        do {
            try writeFileAtomically(to: URL(fileURLWithPath: path)) { w in try w.write(contentsOf: bytes) }
        } catch let e as FileWriteError {
            throw ImageError.writeFailed(path: path, reason: "\(e.operation) failed: \(e.reason)")
        }
    }
}
