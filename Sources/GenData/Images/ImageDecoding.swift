import CImageCodecs
import Foundation

/// Container formats recognised by their magic bytes (never by the file extension).
/// Only `png` and `jpeg` decode; the others are recognised to give a precise error.
public enum ImageFormat: String, Sendable, Equatable, CaseIterable {
    /// Decoded formats.
    case png = "PNG", jpeg = "JPEG"
    /// Recognised but unsupported image formats.
    case gif = "GIF", bmp = "BMP", webp = "WebP", tiff = "TIFF", jpeg2000 = "JPEG 2000", heif = "HEIF", avif = "AVIF"
    /// Recognised but unsupported image formats (continued).
    case ico = "ICO", psd = "PSD", qoi = "QOI", pnm = "PNM"
    /// A gzip stream (not an image; IDX loaders decompress it).
    case gzip = "gzip"
    /// Zero bytes.
    case empty = "empty"
    /// None of the above.
    case unknown = "unknown"

    init(code: Int32) {
        switch code {
        case Int32(CIMG_FORMAT_PNG.rawValue): self = .png
        case Int32(CIMG_FORMAT_JPEG.rawValue): self = .jpeg
        case Int32(CIMG_FORMAT_GIF.rawValue): self = .gif
        case Int32(CIMG_FORMAT_BMP.rawValue): self = .bmp
        case Int32(CIMG_FORMAT_WEBP.rawValue): self = .webp
        case Int32(CIMG_FORMAT_TIFF.rawValue): self = .tiff
        case Int32(CIMG_FORMAT_GZIP.rawValue): self = .gzip
        case Int32(CIMG_FORMAT_JPEG2000.rawValue): self = .jpeg2000
        case Int32(CIMG_FORMAT_HEIF.rawValue): self = .heif
        case Int32(CIMG_FORMAT_AVIF.rawValue): self = .avif
        case Int32(CIMG_FORMAT_ICO.rawValue): self = .ico
        case Int32(CIMG_FORMAT_PSD.rawValue): self = .psd
        case Int32(CIMG_FORMAT_QOI.rawValue): self = .qoi
        case Int32(CIMG_FORMAT_PNM.rawValue): self = .pnm
        case Int32(CIMG_FORMAT_EMPTY.rawValue): self = .empty
        default: self = .unknown
        }
    }

    /// Detects the format from the first bytes of `bytes`.
    public static func detect<B: ContiguousBytes>(_ bytes: B) -> ImageFormat {
        bytes.withUnsafeBytes { raw in
            ImageFormat(code: cimg_detect_format(raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count))
        }
    }
}

/// Colour model of the stored data.
public enum ImageColorModel: String, Sendable, Equatable {
    /// PNG colour types 0, 4, 2, 6 (gray, gray+alpha, RGB, RGBA); JPEG gray or RGB.
    case gray, grayAlpha = "gray+alpha", rgb = "RGB", rgba = "RGBA"
    /// PNG colour type 3 (indexed).
    case palette
    /// JPEG YCbCr (decoded to RGB).
    case ycbcr = "YCbCr"
    /// JPEG CMYK or YCCK (decoded to RGB; Adobe-inverted when an APP14 marker is present).
    case cmyk = "CMYK", ycck = "YCCK"

    init(code: Int32) {
        switch UInt32(bitPattern: code) {
        case CIMG_COLOR_GRAY.rawValue: self = .gray
        case CIMG_COLOR_GRAY_ALPHA.rawValue: self = .grayAlpha
        case CIMG_COLOR_RGB.rawValue: self = .rgb
        case CIMG_COLOR_RGBA.rawValue: self = .rgba
        case CIMG_COLOR_PALETTE.rawValue: self = .palette
        case CIMG_COLOR_YCBCR.rawValue: self = .ycbcr
        case CIMG_COLOR_CMYK.rawValue: self = .cmyk
        default: self = .ycck
        }
    }
}

/// What a file's header says, read without decoding pixels (``ImageInfo/read(path:)``).
public struct ImageInfo: Equatable, Sendable {
    /// Container format.
    public var format: ImageFormat
    /// Upright width (after EXIF orientation).
    public var width: Int
    /// Upright height (after EXIF orientation).
    public var height: Int
    /// Width as stored in the file.
    public var storedWidth: Int
    /// Height as stored in the file.
    public var storedHeight: Int
    /// Colour model of the stored data.
    public var colorModel: ImageColorModel
    /// Stored components per pixel (palette: 1, CMYK: 4).
    public var storedChannels: Int
    /// Channels of the raw decoded data before conversion: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    /// (palettes expand to RGB/RGBA, CMYK converts to RGB, tRNS colour keys add alpha).
    public var decodedChannels: Int
    /// Stored bits per sample (1, 2, 4, 8 or 16).
    public var bitDepth: Int
    /// Whether the decoded data carries alpha.
    public var hasAlpha: Bool
    /// PNG Adam7 interlacing.
    public var interlaced: Bool
    /// Progressive (multi-scan) JPEG.
    public var progressive: Bool
    /// EXIF orientation 1...8 (1 when absent); decoding applies it.
    public var orientation: Int
    /// JPEG CMYK/YCCK with an Adobe APP14 marker (inverted samples).
    public var adobeInverted: Bool

    init(_ c: cimg_info) {
        format = ImageFormat(code: c.format)
        width = Int(c.out_width)
        height = Int(c.out_height)
        storedWidth = Int(c.width)
        storedHeight = Int(c.height)
        colorModel = ImageColorModel(code: c.color)
        storedChannels = Int(c.stored_channels)
        decodedChannels = Int(c.channels)
        bitDepth = Int(c.bit_depth)
        hasAlpha = c.has_alpha != 0
        interlaced = c.interlaced != 0
        progressive = c.progressive != 0
        orientation = Int(c.orientation)
        adobeInverted = c.adobe_inverted != 0
    }

    /// Reads the header of the file at `path` (no pixel decoding, no pixel-limit check).
    /// - Throws: ``ImageError`` (unreadable, empty, not an image, unsupported, corrupt header).
    public static func read(path: String) throws -> ImageInfo {
        let bytes = try readImageFile(path)
        return try read(bytes: bytes, path: path)
    }

    /// Reads the header from encoded `bytes`; `path` only labels errors.
    /// - Throws: ``ImageError``.
    public static func read(bytes: [UInt8], path: String = "<memory>") throws -> ImageInfo {
        var info = cimg_info()
        var msg = [CChar](repeating: 0, count: 512)
        let rc = bytes.withUnsafeBufferPointer { b in
            cimg_read_info(b.baseAddress, b.count, &info, &msg, msg.count)
        }
        if rc != Int32(CIMG_OK.rawValue) { throw decodeError(rc, msg: msg, bytes: bytes, path: path) }
        return ImageInfo(info)
    }
}

/// How to decode: channels the caller wants and the decompression-bomb limit.
public struct ImageDecodeOptions: Sendable, Equatable {
    /// Default pixel limit: 100 megapixels (e.g. 10000x10000). A float RGB image of that size
    /// takes 1.2 GB; headers declaring more are refused before any pixel buffer is allocated.
    public static let defaultMaxPixels = 100_000_000

    /// Output channels: 1 (gray; RGB converted with luma 0.299 R + 0.587 G + 0.114 B),
    /// 3 (RGB; gray copied to R=G=B), or `nil` for the source's own: 1 for gray and gray+alpha
    /// sources, 3 for everything else. Alpha is always composited onto white (see ``Image``).
    public var channels: Int?
    /// Largest accepted `width * height` as declared by the header.
    public var maxPixels: Int

    /// Creates options. `channels` must be nil, 1 or 3 (checked when decoding).
    public init(channels: Int? = nil, maxPixels: Int = ImageDecodeOptions.defaultMaxPixels) {
        self.channels = channels
        self.maxPixels = maxPixels
    }
}

/// Turns a C status and message into a typed error.
func decodeError(_ rc: Int32, msg: [CChar], bytes: [UInt8], path: String) -> ImageError {
    let text = msg.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    let format = ImageFormat.detect(bytes)
    switch UInt32(bitPattern: rc) {
    case CIMG_ERR_UNKNOWN_FORMAT.rawValue:
        if bytes.isEmpty { return .empty(path: path) }
        // Shorter than a signature but its start: a file cut off in its first bytes.
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], jpeg: [UInt8] = [0xFF, 0xD8, 0xFF]
        for (signature, name) in [(png, "PNG"), (jpeg, "JPEG")] where bytes.count < signature.count && signature.starts(with: bytes) {
            return .corrupt(path: path, format: name, reason: "truncated/corrupt \(name): the file ends after \(bytes.count) byte\(bytes.count == 1 ? "" : "s"), inside the \(name) signature")
        }
        return .notAnImage(path: path, startsWith: bytes.withUnsafeBytes { describeLeadingBytes($0) })
    case CIMG_ERR_UNSUPPORTED.rawValue:
        if format == .png || format == .jpeg { return .unsupportedFeature(path: path, reason: text) }
        if format == .gzip { return .unsupportedFormat(path: path, format: "gzip (a compressed file, not an image; gunzip it)") }
        return .unsupportedFormat(path: path, format: format.rawValue)
    case CIMG_ERR_CORRUPT.rawValue:
        return .corrupt(path: path, format: format.rawValue,
                        reason: text.isEmpty ? "truncated/corrupt \(format.rawValue)" : text)
    case CIMG_ERR_NOMEM.rawValue:
        return .unreadable(path: path, reason: "out of memory while decoding")
    default:
        return .corrupt(path: path, format: format.rawValue, reason: text.isEmpty ? "decoding failed" : text)
    }
}

/// Reads a whole file into memory with clear errors (missing, broken symbolic link, directory,
/// not a regular file, permission). Opened non-blocking, so a named pipe or device given as an
/// image is refused at once instead of waiting for a writer.
func readImageFile(_ path: String) throws -> [UInt8] {
    let notRegular = ImageError.unreadable(path: path, reason: "not a regular file (a named pipe, socket or device)")
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    if fd < 0 {
        let code = errno
        var link = stat()
        if code == ENOENT, lstat(path, &link) == 0, (link.st_mode & S_IFMT) == S_IFLNK {
            throw ImageError.unreadable(path: path, reason: "broken symbolic link (its target does not exist)")
        }
        var target = stat()     // a socket cannot be opened at all (ENXIO): say what it is
        if stat(path, &target) == 0, (target.st_mode & S_IFMT) != S_IFREG, (target.st_mode & S_IFMT) != S_IFDIR {
            throw notRegular
        }
        throw ImageError.unreadable(path: path, reason: String(cString: strerror(code)))
    }
    defer { close(fd) }
    var st = stat()
    if fstat(fd, &st) != 0 { throw ImageError.unreadable(path: path, reason: String(cString: strerror(errno))) }
    if (st.st_mode & S_IFMT) == S_IFDIR { throw ImageError.unreadable(path: path, reason: "is a directory") }
    if (st.st_mode & S_IFMT) != S_IFREG { throw notRegular }
    let size = Int(st.st_size)
    if size > 1 << 34 { throw ImageError.unreadable(path: path, reason: "file too large (\(size) bytes)") }
    var bytes = [UInt8](repeating: 0, count: size)
    var got = 0
    try bytes.withUnsafeMutableBytes { buf in
        while got < size {
            let n = read(fd, buf.baseAddress! + got, size - got)
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageError.unreadable(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            got += n
        }
    }
    if got < size { bytes.removeSubrange(got...) }
    return bytes
}

/// Raw decoded samples before float conversion (8- or 16-bit, 1...4 channels, upright).
struct RawImage {
    var info: ImageInfo
    var width: Int
    var height: Int
    var channels: Int
    var bits: Int
    var data: [UInt8]  // 16-bit: native-endian UInt16 pairs
}

extension Image {
    /// Decodes the image file at `path` (format by magic bytes), upright, as floats in [0, 1]
    /// with the channels `options` asks for.
    /// - Throws: ``ImageError``: unreadable, empty, notAnImage, unsupportedFormat, corrupt
    ///   (truncated data, bad CRC, libjpeg warnings), tooLarge (before allocation),
    ///   invalidArgument (channels not 1/3/nil).
    public init(contentsOf path: String, options: ImageDecodeOptions = ImageDecodeOptions()) throws {
        let bytes = try readImageFile(path)
        self = try Image.decode(bytes, path: path, options: options)
    }

    /// Decodes encoded PNG/JPEG `bytes`; `path` only labels errors. See ``init(contentsOf:options:)``.
    public static func decode(_ bytes: [UInt8], path: String = "<memory>",
                              options: ImageDecodeOptions = ImageDecodeOptions()) throws -> Image {
        if let c = options.channels, c != 1 && c != 3 {
            throw ImageError.invalidArgument("channels must be 1 or 3, got \(c)")
        }
        let raw = try decodeRaw(bytes, path: path, maxPixels: options.maxPixels)
        let dstChannels = options.channels ?? (raw.channels <= 2 ? 1 : 3)
        return raw.toImage(channels: dstChannels, range: .unit)
    }

    /// Header-check then decode into a buffer sized from the header (16-bit kept as UInt16).
    static func decodeRaw(_ bytes: [UInt8], path: String, maxPixels: Int) throws -> RawImage {
        var cinfo = cimg_info()
        var msg = [CChar](repeating: 0, count: 512)
        var rc = bytes.withUnsafeBufferPointer { cimg_read_info($0.baseAddress, $0.count, &cinfo, &msg, msg.count) }
        if rc != Int32(CIMG_OK.rawValue) { throw decodeError(rc, msg: msg, bytes: bytes, path: path) }
        let w = Int(cinfo.out_width), h = Int(cinfo.out_height)
        let (npix, overflow) = w.multipliedReportingOverflow(by: h)
        if overflow || npix > maxPixels || npix <= 0 {
            if npix <= 0 && !overflow {
                throw ImageError.corrupt(path: path, format: ImageFormat(code: cinfo.format).rawValue,
                                         reason: "truncated/corrupt \(ImageFormat(code: cinfo.format).rawValue) (zero width or height)")
            }
            throw ImageError.tooLarge(path: path, width: Int(cinfo.width), height: Int(cinfo.height), limit: maxPixels)
        }
        let bps = Int(cimg_bytes_per_sample(&cinfo, 1))
        let channels = Int(cinfo.channels)
        let size = npix * channels * bps
        var data = [UInt8](unsafeUninitializedCapacity: size) { _, n in n = size }
        var out = cimg_info()
        rc = bytes.withUnsafeBufferPointer { src in
            data.withUnsafeMutableBytes { dst in
                cimg_decode(src.baseAddress, src.count, 1, UInt64(maxPixels), dst.baseAddress, dst.count, &out, &msg, msg.count)
            }
        }
        if rc == Int32(CIMG_ERR_TOO_LARGE.rawValue) {
            throw ImageError.tooLarge(path: path, width: Int(out.width), height: Int(out.height), limit: maxPixels)
        }
        if rc != Int32(CIMG_OK.rawValue) { throw decodeError(rc, msg: msg, bytes: bytes, path: path) }
        return RawImage(info: ImageInfo(out), width: w, height: h, channels: channels, bits: bps * 8, data: data)
    }
}

extension RawImage {
    /// Converts to float with `channels` (1...4) in `range` via the C loop (alpha composited
    /// onto white when dropped).
    func toImage(channels dst: Int, range: PixelRange) -> Image {
        let n = width * height
        let (scale, offset) = range.affine
        let px = [Float](unsafeUninitializedCapacity: n * dst) { buf, done in
            data.withUnsafeBytes { src in
                _ = cimg_to_float(src.baseAddress, Int32(bits), n, Int32(channels), Int32(dst),
                                  Image.alphaBackground, scale, offset, buf.baseAddress)
            }
            done = n * dst
        }
        return Image(width: width, height: height, channels: dst, pixels: px)
    }
}

extension Image {
    /// Converts to 1 (luma) or 3 (gray copied) channels, compositing alpha onto white;
    /// returns `self` when already there. - Throws: ``ImageError/invalidArgument(_:)`` for
    /// other counts.
    public func converted(channels dst: Int) throws -> Image {
        guard dst == 1 || dst == 3 || dst == channels else {
            throw ImageError.invalidArgument("channels must be 1 or 3, got \(dst)")
        }
        if dst == channels { return self }
        let n = width * height
        let src = channels
        let px = [Float](unsafeUninitializedCapacity: n * dst) { buf, done in
            pixels.withUnsafeBufferPointer { p in
                let bg = Image.alphaBackground
                for i in 0..<n {
                    var r: Float, g: Float, b: Float
                    let a: Float
                    switch src {
                    case 1: r = p[i]; g = r; b = r; a = 1
                    case 2: r = p[2 * i]; g = r; b = r; a = p[2 * i + 1]
                    case 3: r = p[3 * i]; g = p[3 * i + 1]; b = p[3 * i + 2]; a = 1
                    default: r = p[4 * i]; g = p[4 * i + 1]; b = p[4 * i + 2]; a = p[4 * i + 3]
                    }
                    if a < 1 {
                        r = r * a + bg * (1 - a); g = g * a + bg * (1 - a); b = b * a + bg * (1 - a)
                    }
                    if dst == 1 {
                        buf[i] = (src <= 2) ? r : 0.299 * r + 0.587 * g + 0.114 * b
                    } else {
                        buf[3 * i] = r; buf[3 * i + 1] = g; buf[3 * i + 2] = b
                    }
                }
            }
            done = n * dst
        }
        return Image(width: width, height: height, channels: dst, pixels: px)
    }
}
