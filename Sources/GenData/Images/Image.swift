import CImageCodecs
import Foundation
import GenTensor

/// A decoded picture: float samples in [0, 1], interleaved, row-major, top row first
/// (HWC layout: `pixels[(y * width + x) * channels + c]`).
///
/// Images the networks see have 1 (gray) or 3 (RGB) channels; decoding always produces one of
/// those (see ``ImageDecodeOptions/channels``). 2 and 4 channels (with alpha last) are allowed
/// for images built in code and encoded to PNG.
///
/// **Alpha rule (one rule, applied everywhere):** when an image with alpha is decoded or
/// converted to 1 or 3 channels it is composited onto a white background
/// (``Image/alphaBackground``): `out = colour * a + 1 * (1 - a)`. Opaque pixels keep their exact
/// colour; fully transparent pixels become white whatever colour they store.
public struct Image: Equatable, Sendable {
    /// Width in pixels (> 0).
    public let width: Int
    /// Height in pixels (> 0).
    public let height: Int
    /// Channels per pixel: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    public let channels: Int
    /// `height * width * channels` samples, HWC, nominally in [0, 1].
    public var pixels: [Float]

    /// The background alpha is composited onto: white (1.0 in every channel).
    public static let alphaBackground: Float = 1.0

    /// Wraps samples. - Precondition: sizes positive, `channels` in 1...4 and
    /// `pixels.count == width * height * channels` (programmer errors).
    public init(width: Int, height: Int, channels: Int, pixels: [Float]) {
        precondition(width > 0 && height > 0, "Image: non-positive size \(width)x\(height)")
        precondition((1...4).contains(channels), "Image: channels must be 1...4, got \(channels)")
        precondition(pixels.count == width * height * channels,
                     "Image: \(pixels.count) samples do not fill \(width)x\(height)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image filled with `value` in every sample.
    public init(width: Int, height: Int, channels: Int, repeating value: Float) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [Float](repeating: value, count: max(0, width * height * channels)))
    }

    /// Sample at column `x`, row `y`, channel `c`. - Precondition: indices in range.
    @inlinable
    public subscript(x: Int, y: Int, c: Int) -> Float {
        get { pixels[(y * width + x) * channels + c] }
        set { pixels[(y * width + x) * channels + c] = newValue }
    }

    /// All channels of the pixel at (`x`, `y`).
    public func pixel(x: Int, y: Int) -> [Float] {
        let o = (y * width + x) * channels
        return Array(pixels[o..<o + channels])
    }

    /// Whether the last channel is alpha (2 or 4 channels).
    public var hasAlpha: Bool { channels == 2 || channels == 4 }
}

// MARK: - Tensor conversion

/// The value range of image tensors: `[0, 1]` (`unit`) or `[-1, 1]` (`signed`, for tanh
/// generators): `signed = 2 * unit - 1`.
public enum PixelRange: String, Sendable, CaseIterable, Codable {
    /// Values in [0, 1].
    case unit
    /// Values in [-1, 1].
    case signed

    /// `(scale, offset)` mapping a [0, 1] value `v` to `v * scale + offset`.
    var affine: (Float, Float) { self == .unit ? (1, 0) : (2, -1) }
}

extension Image {
    /// The image as a `[1, height, width, channels]` NHWC tensor in `range`.
    public func tensor(range: PixelRange = .unit) -> Tensor {
        Image.batchTensor([self], range: range)
    }

    /// Stacks images of one size and channel count into an `[N, H, W, C]` tensor in `range`.
    /// - Precondition: `images` is non-empty and all share width, height and channels.
    public static func batchTensor(_ images: [Image], range: PixelRange = .unit) -> Tensor {
        precondition(!images.isEmpty, "Image.batchTensor: no images")
        let first = images[0]
        let per = first.width * first.height * first.channels
        for im in images {
            precondition(im.width == first.width && im.height == first.height && im.channels == first.channels,
                         "Image.batchTensor: \(im.width)x\(im.height)x\(im.channels) differs from \(first.width)x\(first.height)x\(first.channels)")
        }
        let (scale, offset) = range.affine
        let t = Tensor(zeros: [images.count, first.height, first.width, first.channels])
        t.withUnsafeMutableBufferPointer { dst in
            guard let base = dst.baseAddress else { return }
            for (i, im) in images.enumerated() {
                im.pixels.withUnsafeBufferPointer { src in
                    let d = base + i * per
                    if scale == 1 && offset == 0 {
                        d.update(from: src.baseAddress!, count: per)
                    } else {
                        for j in 0..<per { d[j] = src[j] * scale + offset }
                    }
                }
            }
        }
        return t
    }

    /// Builds an image from an NHWC tensor (`[N, H, W, C]`, picking batch item `index`) or an
    /// HWC tensor (`[H, W, C]`) whose values are in `range`; values are mapped to [0, 1]
    /// (not clamped; encoders clamp). - Precondition: rank 3 or 4, C in 1...4, index in range.
    public init(tensor: Tensor, index: Int = 0, range: PixelRange = .unit) {
        let s = tensor.shape
        precondition(s.count == 3 || s.count == 4, "Image(tensor:): expected [N,H,W,C] or [H,W,C], got \(s)")
        let (h, w, c) = s.count == 4 ? (s[1], s[2], s[3]) : (s[0], s[1], s[2])
        let n = s.count == 4 ? s[0] : 1
        precondition(index >= 0 && index < n, "Image(tensor:): index \(index) out of 0..<\(n)")
        let per = h * w * c
        let (scale, offset) = range.affine
        let px: [Float] = tensor.withUnsafeBufferPointer { src in
            [Float](unsafeUninitializedCapacity: per) { buf, done in
                let p = src.baseAddress! + index * per
                if scale == 1 && offset == 0 {
                    buf.baseAddress!.update(from: p, count: per)
                } else {
                    for j in 0..<per { buf[j] = (p[j] - offset) / scale }
                }
                done = per
            }
        }
        self.init(width: w, height: h, channels: c, pixels: px)
    }

    /// Splits an `[N, H, W, C]` tensor in `range` into N images.
    public static func images(from tensor: Tensor, range: PixelRange = .unit) -> [Image] {
        precondition(tensor.shape.count == 4, "Image.images(from:): expected [N,H,W,C], got \(tensor.shape)")
        return (0..<tensor.shape[0]).map { Image(tensor: tensor, index: $0, range: range) }
    }
}
