import Foundation
import GenTensor
import GenNN

/// The weights of the three loss terms of ``StyleLoss``.
public struct StyleLossWeights: Codable, Equatable, Sendable {
    /// α: weight of the content term (≥ 0).
    public var content: Double
    /// β: weight of the style term, divided evenly among the style layers as in the book (≥ 0).
    public var style: Double
    /// Weight of the total-variation term (≥ 0).
    public var totalVariation: Double

    /// Creates weights.
    public init(content: Double, style: Double, totalVariation: Double) {
        self.content = content
        self.style = style
        self.totalVariation = totalVariation
    }
}

/// The value of each loss term at one image (already multiplied by its weight).
public struct StyleLossTerms: Equatable, Sendable {
    /// α · content loss.
    public var content: Double
    /// β/L · Σ style losses.
    public var style: Double
    /// TV weight · total variation.
    public var totalVariation: Double
    /// The sum of the three.
    public var total: Double { content + style + totalVariation }
}

/// Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks" (CVPR 2016),
/// as written in F. Chollet, *Deep Learning with Python* §8.3, with Johnson's neural-style
/// normalisations so that the weights do not depend on the image size:
///
/// - **content** (one or more deep layers): `mean((F − P)²)` over the layer's `H·W·C` elements,
///   where `F` are the generated image's activations and `P` the content image's;
/// - **style** (several layers): `mean((G − A)²)` over the `C×C` entries, with the Gram matrix
///   `G = FᵀF / (H·W·C)` of the activations viewed as `F: [H·W, C]` (one `matmul` with
///   `transposeA`, no copies) and `A` the style target (the blend of the style images' Grams).
///   Gatys' `1/(4N²M²)·Σ(FᵀF − …)²` is `¼·C²·mean(...)` of the same normalised Gram; the book's
///   Keras code divides by `4·3²·(H·W)²` with the *image* size instead;
/// - **total variation** (on the image `x ∈ [0,1]`, NHWC): the book's
///   `mean over (i,j,c) of ((x[i,j]−x[i+1,j])² + (x[i,j]−x[i,j+1])²)^1.25` (the book sums; the mean
///   keeps the weight independent of the size). Its gradient is computed in closed form, outside
///   the graph.
///
/// `loss = α·content + (β/L)·Σ_l style_l + γ·TV`, L = number of style layers (book).
///
/// Targets (content activations, blended style Grams) are computed once, in ``init(network:content:styles:blendWeights:contentLayers:styleLayers:weights:)``,
/// without recording a graph; each evaluation runs the network once, on the generated image only,
/// up to the deepest layer used. The network's weights are frozen: no weight gradients are computed.
public final class StyleLoss {
    /// The feature extractor.
    public let network: FeatureExtractor
    /// Canonical content layer names.
    public let contentLayers: [String]
    /// Canonical style layer names.
    public let styleLayers: [String]
    /// Term weights.
    public let weights: StyleLossWeights
    /// Content targets by layer: `[1, H, W, C]` activations of the content image.
    let contentTargets: [String: Tensor]
    /// Style targets by layer: `[C, C]` blended normalised Gram matrices.
    let styleTargets: [String: Tensor]
    /// Image height and width the content targets were computed at (every evaluated image must match).
    public let height: Int, width: Int
    /// Number of network forward passes made to compute the targets (1 + number of style images).
    public private(set) var targetPasses = 0
    /// Number of loss evaluations (each one forward and one backward pass).
    public private(set) var evaluations = 0

    /// Computes the targets.
    /// - Parameters:
    ///   - network: a feature extractor; its weights are never changed.
    ///   - content: `[1, H, W, 3]` RGB in [0, 1].
    ///   - styles: one or more `[1, h, w, 3]` RGB images in [0, 1], any sizes at least the network minimum.
    ///   - blendWeights: one weight ≥ 0 per style image (normalised to sum 1); equal when nil.
    ///   - contentLayers, styleLayers: layer names the network resolves (aliases allowed).
    /// - Throws: ``StudioError/invalidOption(_:)`` for an unknown layer, empty layer lists or bad blend weights.
    public init(network: FeatureExtractor, content: Tensor, styles: [Tensor], blendWeights: [Double]? = nil,
                contentLayers: [String], styleLayers: [String], weights: StyleLossWeights) throws {
        precondition(content.rank == 4 && content.shape[0] == 1 && content.shape[3] == 3,
                     "StyleLoss: content must be [1, H, W, 3], got \(content.shape)")
        func resolve(_ names: [String], option: String) throws -> [String] {
            var out: [String] = []
            for n in names {
                guard let r = network.resolveLayer(n) else {
                    throw StudioError.invalidOption("\(option): network \(network.name) has no layer '\(n)' (layers: \(network.layerNames.joined(separator: ", ")))")
                }
                if !out.contains(r) { out.append(r) }
            }
            return out
        }
        let cl = try resolve(contentLayers, option: "--content-layers")
        let sl = try resolve(styleLayers, option: "--style-layers")
        if cl.isEmpty && weights.content > 0 { throw StudioError.invalidOption("--content-layers: no layer given") }
        if sl.isEmpty && weights.style > 0 { throw StudioError.invalidOption("--style-layers: no layer given") }
        if styles.isEmpty { throw StudioError.invalidOption("at least one style image is needed") }
        var blend = blendWeights ?? [Double](repeating: 1, count: styles.count)
        guard blend.count == styles.count else {
            throw StudioError.invalidOption("--style-blend-weights: \(blend.count) weights for \(styles.count) style images")
        }
        guard blend.allSatisfy({ $0 >= 0 && $0.isFinite }), blend.reduce(0, +) > 0 else {
            throw StudioError.invalidOption("--style-blend-weights must be non-negative with a positive sum (got \(blend))")
        }
        let sum = blend.reduce(0, +)
        blend = blend.map { $0 / sum }
        self.network = network
        self.contentLayers = cl
        self.styleLayers = sl
        self.weights = weights
        height = content.shape[1]
        width = content.shape[2]
        var passes = 0
        let (ct, st): ([String: Tensor], [String: Tensor]) = withNoGrad {
            var ct: [String: Tensor] = [:]
            if !cl.isEmpty {
                let acts = network.activations(network.preprocess(content), layers: cl)
                passes += 1
                for l in cl { ct[l] = acts[l]?.detached() }
            }
            var st: [String: Tensor] = [:]
            if !sl.isEmpty {
                for (k, s) in styles.enumerated() where blend[k] > 0 {
                    let acts = network.activations(network.preprocess(s), layers: sl)
                    passes += 1
                    for l in sl {
                        guard let a = acts[l] else { continue }
                        let g = StyleLoss.gram(a) * Float(blend[k])
                        st[l] = st[l].map { $0 + g } ?? g
                    }
                }
            }
            return (ct, st.mapValues { $0.detached() })
        }
        for l in cl where ct[l] == nil { throw StudioError.invalidOption("network \(network.name) returned no activation for layer \(l)") }
        for l in sl where st[l] == nil { throw StudioError.invalidOption("network \(network.name) returned no activation for layer \(l)") }
        contentTargets = ct
        styleTargets = st
        targetPasses = passes
    }

    /// The normalised Gram matrix `FᵀF / (H·W·C)` of `[1, H, W, C]` activations: `[C, C]`.
    /// One GEMM on the activations viewed as `[H·W, C]` (a reshape shares storage; `transposeA`
    /// avoids a transposed copy). Differentiable.
    public static func gram(_ activations: Tensor) -> Tensor {
        precondition(activations.rank == 4 && activations.shape[0] == 1,
                     "StyleLoss.gram: expected [1, H, W, C], got \(activations.shape)")
        let c = activations.shape[3]
        let m = activations.count / max(c, 1)
        let f = activations.reshaped([m, c])
        return Tensor.matmul(f, f, transposeA: true) * (1 / Float(max(activations.count, 1)))
    }

    /// Total variation of `[1, H, W, C]` pixels `x` (row-major NHWC) and its gradient:
    /// `mean over i<H−1, j<W−1, c of (a + b)^1.25`, `a = (x[i,j]−x[i+1,j])²`, `b = (x[i,j]−x[i,j+1])²`.
    /// - Returns: the value and `∂TV/∂x` (same count as `x`); 0 and zeros for images narrower or
    ///   shorter than 2 pixels.
    public static func totalVariation(_ x: UnsafePointer<Float>, height h: Int, width w: Int, channels c: Int)
        -> (value: Double, gradient: [Float]) {
        var grad = [Float](repeating: 0, count: h * w * c)
        guard h > 1 && w > 1 else { return (0, grad) }
        let terms = (h - 1) * (w - 1) * c
        let scale = 1 / Float(terms)
        var total = 0.0
        grad.withUnsafeMutableBufferPointer { g in
            for i in 0..<(h - 1) {
                var rowSum: Float = 0
                for j in 0..<(w - 1) {
                    let p = (i * w + j) * c, down = p + w * c, right = p + c
                    for k in 0..<c {
                        let dv = x[p + k] - x[down + k], dh = x[p + k] - x[right + k]
                        let s = dv * dv + dh * dh
                        if s > 0 {
                            let r = s.squareRoot().squareRoot()        // s^0.25
                            rowSum += s * r                            // s^1.25
                            let q = 1.25 * r * 2 * scale               // d(s^1.25)/ds · ds/d(diff) / 2
                            g[p + k] += q * (dv + dh)
                            g[down + k] -= q * dv
                            g[right + k] -= q * dh
                        }
                    }
                }
                total += Double(rowSum)
            }
        }
        return (total / Double(terms), grad)
    }

    /// Loss terms and the gradient with respect to the image at `pixels` (`[1, H, W, 3]` RGB in
    /// [0, 1], row-major, `height·width·3` values).
    ///
    /// One forward pass of the network to the deepest layer used and one backward pass to the
    /// image; the network's weights receive no gradient.
    public func evaluate(_ pixels: [Float]) -> (terms: StyleLossTerms, gradient: [Float]) {
        precondition(pixels.count == height * width * 3, "StyleLoss.evaluate: \(pixels.count) values for \(height)x\(width)x3")
        evaluations += 1
        let image = Tensor(shape: [1, height, width, 3], scalars: pixels, requiresGrad: true)
        let layers = contentLayers + styleLayers.filter { !contentLayers.contains($0) }
        var contentValue = 0.0, styleValue = 0.0
        var gradient = [Float](repeating: 0, count: pixels.count)
        if !layers.isEmpty && (weights.content > 0 || weights.style > 0) {
            let acts = network.activations(network.preprocess(image), layers: layers)
            var loss: Tensor?
            func add(_ t: Tensor) { loss = loss.map { $0 + t } ?? t }
            if weights.content > 0 {
                var c: Tensor?
                for l in contentLayers {
                    guard let a = acts[l], let p = contentTargets[l] else { continue }
                    let term = (a - p).squared().mean()
                    c = c.map { $0 + term } ?? term
                }
                if let c {
                    let w = c * Float(weights.content)
                    contentValue = Double(w.scalar)
                    add(w)
                }
            }
            if weights.style > 0 && !styleLayers.isEmpty {
                let per = Float(weights.style / Double(styleLayers.count))
                var s: Tensor?
                for l in styleLayers {
                    guard let a = acts[l], let target = styleTargets[l] else { continue }
                    let term = (StyleLoss.gram(a) - target).squared().mean()
                    s = s.map { $0 + term } ?? term
                }
                if let s {
                    let w = s * per
                    styleValue = Double(w.scalar)
                    add(w)
                }
            }
            if let loss, loss.requiresGrad {
                loss.backward()
                if let g = image.grad {
                    g.withUnsafeBufferPointer { src in
                        for i in 0..<gradient.count { gradient[i] = src[i] }
                    }
                }
            }
        }
        var tvValue = 0.0
        if weights.totalVariation > 0 {
            let (tv, tvGrad) = pixels.withUnsafeBufferPointer {
                StyleLoss.totalVariation($0.baseAddress!, height: height, width: width, channels: 3)
            }
            let tw = Float(weights.totalVariation)
            tvValue = weights.totalVariation * tv
            for i in 0..<gradient.count { gradient[i] += tw * tvGrad[i] }
        }
        return (StyleLossTerms(content: contentValue, style: styleValue, totalVariation: tvValue), gradient)
    }
}
