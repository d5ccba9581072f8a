import Foundation
import GenData

/// Settings of `gen style` (neural style transfer: Gatys, Ecker & Bethge 2016; F. Chollet,
/// *Deep Learning with Python* §8.3; J. Johnson's neural-style for the options it adds).
/// `nil` fields take the network's defaults (``StyleNetworkDefaults``).
public struct StyleConfig: Codable, Equatable, Sendable {
    /// Network name: `squeezenet1_0` (default; its ImageNet weights are small), `vgg19` (the book's), ...
    public var network = "squeezenet1_0"
    /// Weights file (`--weights`); nil: the cache folder (see `WeightsRegistry`).
    public var weightsPath: String?
    /// Use randomly initialised weights (timing and tests only; the result is not a stylisation).
    public var randomWeights = false
    /// Content layers (nil: the network's default).
    public var contentLayers: [String]?
    /// Style layers (nil: the network's default).
    public var styleLayers: [String]?
    /// Content weight α ≥ 0 (nil: the network's default).
    public var contentWeight: Double?
    /// Style weight β ≥ 0, split evenly over the style layers (nil: the network's default).
    public var styleWeight: Double?
    /// Total-variation weight ≥ 0 (nil: the network's default).
    public var tvWeight: Double?
    /// `lbfgs` (default; the book uses SciPy's L-BFGS-B) or `adam`.
    public var optimizer = "lbfgs"
    /// Step size: L-BFGS's initial trial step multiplier (default 1) or Adam's learning rate
    /// (default 0.02 for pixels in [0, 1]).
    public var learningRate: Double?
    /// Optimiser iterations per scale (≥ 1). An L-BFGS iteration takes one or more evaluations.
    public var iterations = 300
    /// Most loss evaluations per scale for L-BFGS (default: 1.25 · iterations, as PyTorch).
    public var maxEvaluations: Int?
    /// L-BFGS history (correction pairs kept, ≥ 1). 100 as PyTorch; SciPy uses 10.
    public var historySize = 100
    /// Starting image: `content`, `random` (uniform noise from the seed) or an image file path.
    public var initialImage = "content"
    /// Longest side of the output in pixels (nil: the content image's, capped at ``maxSize``).
    public var size: Int?
    /// Height of the output in pixels, as the book does (`img_height = 400`); exclusive with ``size``.
    public var height: Int?
    /// Cap on the output's longest side; larger requests and images are scaled down to it.
    public var maxSize = 512
    /// Relative weights of the style images (one per image, ≥ 0; nil: equal).
    public var styleBlendWeights: [Double]?
    /// Each style image is scaled so its longest side is `styleScale ×` the output's (Johnson), > 0.
    public var styleScale = 1.0
    /// Keep the content's colours: transfer in luminance only (YIQ).
    public var preserveColors = false
    /// Coarse to fine: optimise at ¼ and ½ of the size first (levels below the network's
    /// minimum are skipped), each level starting from the previous one upscaled.
    public var multiscale = false
    /// Also write the image every N iterations (nil: only the result).
    public var saveEvery: Int?
    /// Largest accepted width×height of an input image file's header (decompression-bomb guard).
    public var maxPixels = ImageDecodeOptions.defaultMaxPixels
    /// Seed of the random initial image.
    public var seed: UInt64 = 1

    /// Default settings (SqueezeNet 1.0, L-BFGS, 300 iterations).
    public init() {}

    /// Checks ranges; messages name the options as the command line spells them.
    /// - Throws: ``StudioError/invalidOption(_:)``.
    public func validate() throws {
        func bad(_ m: String) -> StudioError { .invalidOption(m) }
        for (name, v) in [("--content-weight", contentWeight), ("--style-weight", styleWeight), ("--tv-weight", tvWeight)] {
            if let v, !(v >= 0 && v.isFinite) { throw bad("\(name) must be a finite number ≥ 0 (got \(v))") }
        }
        if !["lbfgs", "adam"].contains(optimizer) { throw bad("--optimizer must be lbfgs or adam (got '\(optimizer)')") }
        if let l = learningRate, !(l > 0 && l.isFinite) { throw bad("--learning-rate must be positive (got \(l))") }
        if iterations < 1 { throw bad("--iterations must be at least 1 (got \(iterations))") }
        if maxPixels < 1 { throw bad("--max-pixels must be at least 1 (got \(maxPixels))") }
        if let m = maxEvaluations, m < 1 { throw bad("--max-evaluations must be at least 1 (got \(m))") }
        if historySize < 1 || historySize > 10_000 { throw bad("--history must be in 1...10000 (got \(historySize))") }
        if initialImage.isEmpty { throw bad("--init must be content, random or an image file") }
        if size != nil && height != nil { throw bad("give --size or --height, not both") }
        if let s = size, s < 1 { throw bad("--size must be at least 1 (got \(s))") }
        if let h = height, h < 1 { throw bad("--height must be at least 1 (got \(h))") }
        if maxSize < 1 || maxSize > 16384 { throw bad("--max-size must be in 1...16384 (got \(maxSize))") }
        if let b = styleBlendWeights, !b.allSatisfy({ $0 >= 0 && $0.isFinite }) || !(b.reduce(0, +) > 0) {
            throw bad("--style-blend-weights must be non-negative numbers with a positive sum (got \(b))")
        }
        if !(styleScale > 0 && styleScale <= 16) { throw bad("--style-scale must be in (0, 16] (got \(styleScale))") }
        if let s = saveEvery, s < 1 { throw bad("--save-every must be at least 1 (got \(s))") }
    }
}

/// Default layers and loss weights per network.
///
/// Weights are for the loss of ``StyleLoss`` (mean-normalised terms, images in [0, 1], ImageNet
/// normalisation inside the network). VGG19 uses the book's layers (content `block5_conv2`, style
/// `block1_conv1 … block5_conv1`, post-ReLU as in Keras); its weights follow the PyTorch
/// neural-style tutorial's scale (content 1, style 10⁶ per layer) and were not tuned here on the
/// real VGG19 weights. SqueezeNet's were chosen by looking at results on tubingen × starry night.
public struct StyleNetworkDefaults: Equatable, Sendable {
    /// Content layers.
    public var contentLayers: [String]
    /// Style layers.
    public var styleLayers: [String]
    /// Loss weights.
    public var weights: StyleLossWeights
    /// Activation floats kept per output pixel for the backward pass (memory estimate only).
    public var floatsPerPixel: Double

    /// The defaults for `network` (matched by prefix: `vgg…`, `squeezenet…`); SqueezeNet's for others.
    public static func forNetwork(_ network: String) -> StyleNetworkDefaults {
        let n = network.lowercased()
        if n.hasPrefix("vgg") {
            return StyleNetworkDefaults(
                contentLayers: ["block5_conv2"],
                styleLayers: ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"],
                weights: StyleLossWeights(content: 1, style: 5e6, totalVariation: 1e-2),
                floatsPerPixel: 900)
        }
        return StyleNetworkDefaults(
            contentLayers: ["fire7"],
            styleLayers: ["conv1", "fire2", "fire3", "fire5", "fire7"],
            weights: StyleLossWeights(content: 1, style: 100, totalVariation: 1000),
            floatsPerPixel: 220)
    }
}
