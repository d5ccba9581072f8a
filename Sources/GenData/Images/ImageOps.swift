import CImageCodecs
import Foundation
import GenTensor

/// Resampling filter for ``Image/resized(width:height:filter:)``.
///
/// Every filter antialiases when shrinking (its support widens by the reduction factor, as in
/// Pillow), so thin lines and noise do not alias.
public enum ResizeFilter: String, Sendable, CaseIterable {
    /// Per axis: `area` when shrinking, `bicubic` when enlarging (the default).
    case automatic
    /// Area averaging (box filter): exact pixel averages for integer reductions.
    case area
    /// Lanczos, 3 lobes: sharpest antialiased shrink.
    case lanczos
    /// Bilinear (triangle).
    case bilinear
    /// Bicubic (Keys, a = -0.5).
    case bicubic

    func code(from src: Int, to dst: Int) -> Int32 {
        switch self {
        case .automatic: return Int32(dst < src ? CIMG_FILTER_BOX.rawValue : CIMG_FILTER_BICUBIC.rawValue)
        case .area: return Int32(CIMG_FILTER_BOX.rawValue)
        case .lanczos: return Int32(CIMG_FILTER_LANCZOS3.rawValue)
        case .bilinear: return Int32(CIMG_FILTER_BILINEAR.rawValue)
        case .bicubic: return Int32(CIMG_FILTER_BICUBIC.rawValue)
        }
    }
}

extension Image {
    /// Resamples to `width` x `height` (separable, in C). Results of bicubic/Lanczos are
    /// clamped to [0, 1]. Returns `self` for the same size.
    /// - Throws: ``ImageError/invalidArgument(_:)`` for a non-positive size.
    public func resized(width dw: Int, height dh: Int, filter: ResizeFilter = .automatic) throws -> Image {
        guard dw > 0, dh > 0, dw <= 1 << 20, dh <= 1 << 20 else {
            throw ImageError.invalidArgument("resize target must be positive (and at most 1048576), got \(dw)x\(dh)")
        }
        if dw == width && dh == height { return self }
        let n = dw * dh * channels
        let fx = filter.code(from: width, to: dw), fy = filter.code(from: height, to: dh)
        var rc: Int32 = 0
        var px = [Float](unsafeUninitializedCapacity: n) { buf, done in
            pixels.withUnsafeBufferPointer { src in
                rc = cimg_resize(src.baseAddress, Int32(width), Int32(height), Int32(channels),
                                 buf.baseAddress, Int32(dw), Int32(dh), fx, fy)
            }
            done = n
        }
        if rc != 0 { throw ImageError.invalidArgument("resize \(width)x\(height) -> \(dw)x\(dh) failed (out of memory)") }
        if fx > Int32(CIMG_FILTER_BILINEAR.rawValue) || fy > Int32(CIMG_FILTER_BILINEAR.rawValue) {
            px.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count { p[i] = min(max(p[i], 0), 1) }
            }
        }
        return Image(width: dw, height: dh, channels: channels, pixels: px)
    }

    /// Scales so that the longer side becomes `size` (aspect kept; the shorter side rounds and
    /// is at least 1).
    /// - Throws: ``ImageError/invalidArgument(_:)`` for a non-positive size.
    public func resized(longerSide size: Int, filter: ResizeFilter = .automatic) throws -> Image {
        guard size > 0 else { throw ImageError.invalidArgument("size must be positive, got \(size)") }
        let s = Double(size) / Double(max(width, height))
        return try resized(width: max(1, Int((Double(width) * s).rounded())),
                           height: max(1, Int((Double(height) * s).rounded())), filter: filter)
    }

    /// The `w` x `h` region whose top-left corner is (`x`, `y`).
    /// - Throws: ``ImageError/invalidArgument(_:)`` when the region is empty or leaves the image.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) throws -> Image {
        guard w > 0, h > 0, x >= 0, y >= 0, x + w <= width, y + h <= height else {
            throw ImageError.invalidArgument("crop \(w)x\(h) at (\(x),\(y)) does not fit in \(width)x\(height)")
        }
        if x == 0 && y == 0 && w == width && h == height { return self }
        let rowLen = w * channels
        let px = [Float](unsafeUninitializedCapacity: h * rowLen) { buf, done in
            pixels.withUnsafeBufferPointer { src in
                for r in 0..<h {
                    (buf.baseAddress! + r * rowLen).update(from: src.baseAddress! + ((y + r) * width + x) * channels,
                                                           count: rowLen)
                }
            }
            done = h * rowLen
        }
        return Image(width: w, height: h, channels: channels, pixels: px)
    }

    /// The centred `w` x `h` region (offsets rounded down).
    /// - Throws: ``ImageError/invalidArgument(_:)`` when larger than the image.
    public func centerCropped(width w: Int, height h: Int) throws -> Image {
        try cropped(x: (width - w) / 2, y: (height - h) / 2, width: w, height: h)
    }

    /// The dataset rule: scale (aspect kept) so the image covers `w` x `h` — its shorter side
    /// relative to the target fits exactly — then center-crop to `w` x `h`. Shrinking uses
    /// area averaging, enlarging bicubic (``ResizeFilter/automatic``).
    /// - Throws: ``ImageError/invalidArgument(_:)`` for a non-positive size.
    public func resizedToFill(width w: Int, height h: Int, filter: ResizeFilter = .automatic) throws -> Image {
        guard w > 0, h > 0 else { throw ImageError.invalidArgument("size must be positive, got \(w)x\(h)") }
        if w == width && h == height { return self }
        let s = max(Double(w) / Double(width), Double(h) / Double(height))
        let sw = max(w, Int((Double(width) * s).rounded()))
        let sh = max(h, Int((Double(height) * s).rounded()))
        return try resized(width: sw, height: sh, filter: filter).centerCropped(width: w, height: h)
    }

    /// Tiles `images` into one picture: `columns` per row (default: ceil(sqrt(N))), `padding`
    /// pixels between tiles and around the border, filled with `background` (all channels).
    /// Used for sample grids and latent manifolds.
    /// - Throws: ``ImageError/invalidArgument(_:)`` when `images` is empty, sizes or channel
    ///   counts differ, or `columns`/`padding` are out of range.
    public static func grid(_ images: [Image], columns: Int? = nil, padding: Int = 2,
                            background: Float = 1.0) throws -> Image {
        guard let first = images.first else { throw ImageError.invalidArgument("grid: no images") }
        guard padding >= 0 else { throw ImageError.invalidArgument("grid: padding must be >= 0, got \(padding)") }
        for (i, im) in images.enumerated() where im.width != first.width || im.height != first.height || im.channels != first.channels {
            throw ImageError.invalidArgument(
                "grid: image \(i) is \(im.width)x\(im.height)x\(im.channels), expected \(first.width)x\(first.height)x\(first.channels)")
        }
        let cols = columns ?? Int(Double(images.count).squareRoot().rounded(.up))
        guard cols > 0 else { throw ImageError.invalidArgument("grid: columns must be positive, got \(cols)") }
        let rows = (images.count + cols - 1) / cols
        let tw = first.width, th = first.height, c = first.channels
        let W = cols * tw + (cols + 1) * padding
        let H = rows * th + (rows + 1) * padding
        var out = Image(width: W, height: H, channels: c, repeating: background)
        out.pixels.withUnsafeMutableBufferPointer { dst in
            for (i, im) in images.enumerated() {
                let ox = padding + (i % cols) * (tw + padding)
                let oy = padding + (i / cols) * (th + padding)
                im.pixels.withUnsafeBufferPointer { src in
                    for r in 0..<th {
                        (dst.baseAddress! + ((oy + r) * W + ox) * c).update(from: src.baseAddress! + r * tw * c, count: tw * c)
                    }
                }
            }
        }
        return out
    }

    /// A grid of the N images in an `[N, H, W, C]` tensor whose values are in `range`.
    /// - Throws: as ``grid(_:columns:padding:background:)``.
    public static func grid(tensor: Tensor, range: PixelRange = .unit, columns: Int? = nil,
                            padding: Int = 2, background: Float = 1.0) throws -> Image {
        try grid(images(from: tensor, range: range), columns: columns, padding: padding, background: background)
    }
}
