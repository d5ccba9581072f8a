import Foundation

/// Everything that can go wrong reading, decoding, encoding or writing an image.
///
/// Every case that concerns a file carries its path, and ``description`` (also
/// ``errorDescription``) reads `"<path>: <reason>"`, so a message from a folder of 10,000
/// images says which one failed and why. Nothing in the image layer crashes on user data:
/// every problem with a file or an argument arrives as one of these cases.
public enum ImageError: Error, Equatable, Sendable, LocalizedError, CustomStringConvertible {
    /// The file could not be read (missing, a directory, permission denied, I/O error).
    case unreadable(path: String, reason: String)
    /// The file has zero bytes.
    case empty(path: String)
    /// The bytes are not a known image format. `startsWith` shows the first bytes, quoted when
    /// printable (e.g. `'<!'` for an HTML page) and in hex.
    case notAnImage(path: String, startsWith: String)
    /// A recognised format that `gen` does not decode (GIF, BMP, WebP, TIFF, ...).
    case unsupportedFormat(path: String, format: String)
    /// A PNG or JPEG whose data is truncated or corrupt (bad CRC, premature end, libjpeg
    /// corrupt-data warnings). `reason` starts with "truncated/corrupt PNG" or "... JPEG".
    case corrupt(path: String, format: String, reason: String)
    /// A supported format using a feature `gen` does not decode (e.g. 12-bit JPEG).
    case unsupportedFeature(path: String, reason: String)
    /// The header declares more pixels than the limit; refused before any pixel buffer exists.
    case tooLarge(path: String, width: Int, height: Int, limit: Int)
    /// Encoding failed (bad parameters or an encoder error).
    case encodingFailed(path: String, reason: String)
    /// Writing the output file failed; no partial file is left behind.
    case writeFailed(path: String, reason: String)
    /// An argument was out of range (channel count, size, quality, output extension, ...).
    case invalidArgument(String)

    /// The file the error concerns, if any.
    public var path: String? {
        switch self {
        case .unreadable(let p, _), .empty(let p), .notAnImage(let p, _), .unsupportedFormat(let p, _),
             .corrupt(let p, _, _), .unsupportedFeature(let p, _), .tooLarge(let p, _, _, _),
             .encodingFailed(let p, _), .writeFailed(let p, _):
            return p
        case .invalidArgument:
            return nil
        }
    }

    /// The reason without the path.
    public var reason: String {
        switch self {
        case .unreadable(_, let r): return r
        case .empty: return "empty file (0 bytes), not an image"
        case .notAnImage(_, let s): return "not an image (starts with \(s))"
        case .unsupportedFormat(_, let f): return "unsupported format \(f) (supported: PNG, JPEG)"
        case .corrupt(_, _, let r): return r
        case .unsupportedFeature(_, let r): return r
        case .tooLarge(_, let w, let h, let limit):
            return "image declares \(w)x\(h) pixels (\(w * h)), more than the limit of \(limit) pixels;"
                + " raise the limit with --max-pixels if the file is trusted"
        case .encodingFailed(_, let r): return "cannot encode image: \(r)"
        case .writeFailed(_, let r): return "cannot write image: \(r)"
        case .invalidArgument(let r): return r
        }
    }

    /// `"<path>: <reason>"`, or the reason alone for argument errors.
    public var description: String {
        if let p = path { return "\(p): \(reason)" }
        return reason
    }

    /// Same as ``description``.
    public var errorDescription: String? { description }
}

/// Describes the first bytes of a file for error messages: `'<!'; first bytes 3C 21 44 ...`.
func describeLeadingBytes(_ bytes: UnsafeRawBufferPointer) -> String {
    let head = Array(bytes.prefix(8))
    func printable(_ b: UInt8) -> Bool { b >= 0x20 && b < 0x7F }
    let hex = head.map { String(format: "%02X", $0) }.joined(separator: " ")
    if head.count >= 2, printable(head[0]), printable(head[1]) {
        let two = String(decoding: head[0..<2], as: UTF8.self)
        let text = String(decoding: head.prefix(while: printable), as: UTF8.self)
        return "'\(two)'; first bytes \(hex) \"\(text)\""
    }
    return "bytes \(hex)"
}
