import Foundation
import GenTensor
import GenNN
import GenData

/// Settings of a DeepDream run (A. Mordvintsev, C. Olah, M. Tyka, "Inceptionism", 2015;
/// google/deepdream; F. Chollet, *Deep Learning with Python*, §8.2).
public struct DreamConfig: Codable, Equatable {
    /// Layers whose activations are maximised, with weights: the objective is
    /// `Σ weight · mean(activation²)` over each layer's interior (a 2-pixel border is left out, as the book does).
    public var layers: [String: Float]
    /// Gradient-ascent steps per octave (≥ 1).
    public var iterations = 20
    /// Step size: each step moves pixels (RGB in [0, 1]) by `step` on average, since the gradient is
    /// divided by its mean absolute value (book, 1st edition).
    public var step: Float = 0.01
    /// Number of scales (≥ 1); the smallest is the image shrunk `octaveScale^(octaves−1)` times.
    public var octaves = 3
    /// Ratio between successive octaves (> 1; book: 1.4).
    public var octaveScale: Float = 1.4
    /// Stop an octave early once the objective exceeds this (nil = never); positive unless some
    /// layer weight is negative.
    public var maxLoss: Float?
    /// Largest random shift in pixels applied before each step and undone after (0 = off), to avoid
    /// grid artefacts (google/deepdream's jitter).
    public var jitter = 32
    /// Gradients are computed on tiles of at most this many pixels per side, at random offsets, so
    /// memory stays bounded for large images and no seams show.
    public var tileSize = 512
    /// Seed of the jitter and tile offsets.
    public var seed: UInt64 = 1
    /// Write the current image every this many steps (nil = off).
    public var saveEvery: Int?

    /// The book's other settings (see each property) with these layers and weights.
    /// - Parameter layers: layer name → weight of its activation term; see ``defaultLayers(network:)``.
    public init(layers: [String: Float]) { self.layers = layers }

    /// Checks ranges; the message names the option.
    /// - Throws: ``StudioError/invalidOption(_:)``.
    public func validate() throws {
        func bad(_ m: String) -> StudioError { .invalidOption(m) }
        if layers.isEmpty { throw bad("--layers needs at least one layer") }
        if layers.values.contains(where: { !$0.isFinite }) { throw bad("--layers weights must be finite numbers") }
        if iterations < 1 { throw bad("--iterations must be at least 1 (got \(iterations))") }
        if !(step > 0 && step.isFinite) { throw bad("--step must be positive (got \(step))") }
        if octaves < 1 { throw bad("--octaves must be at least 1 (got \(octaves))") }
        if !(octaveScale > 1 && octaveScale.isFinite) { throw bad("--octave-scale must be greater than 1 (got \(octaveScale))") }
        if let m = maxLoss, !m.isFinite { throw bad("--max-loss must be finite (got \(m))") }
        if let m = maxLoss, m <= 0, layers.values.allSatisfy({ $0 >= 0 }) {
            throw bad("--max-loss must be a positive number with these layer weights (got \(m)): the objective Σ weight·mean(activation²) is then never negative, so it would stop every octave before its first step")
        }
        if jitter < 0 { throw bad("--jitter must be ≥ 0 (got \(jitter))") }
        if tileSize < 32 { throw bad("--tile-size must be at least 32 (got \(tileSize))") }
        if let s = saveEvery, s < 1 { throw bad("--save-every must be at least 1 (got \(s))") }
    }

    /// The book's layer weights per network (Chollet, 2nd ed. §12.2 for InceptionV3).
    public static func defaultLayers(network: String) -> [String: Float] {
        switch network {
        case "inception_v3": return ["mixed4": 1.0, "mixed5": 1.5, "mixed6": 2.0, "mixed7": 2.5]
        case "vgg16", "vgg19": return ["block4_conv3": 1.0, "block5_conv2": 1.5]
        default: return ["fire5": 1.0, "fire7": 1.5]   // SqueezeNet: mid-level textures and parts
        }
    }
}

/// Objective values of one octave, for reports.
public struct OctaveReport: Equatable {
    /// Width of the image dreamt at, in pixels.
    public var width: Int
    /// Height of the image dreamt at, in pixels.
    public var height: Int
    /// Objective before the first step (mean over tiles).
    public var initialLoss: Float
    /// Objective after the last step (mean over tiles).
    public var finalLoss: Float
    /// Steps taken (fewer than configured when `maxLoss` stopped the octave).
    public var steps: Int
}

/// DeepDream over octaves with detail re-injection, jitter and tiling.
public final class DeepDream {
    let network: FeatureExtractor
    let config: DreamConfig
    let layerNames: [String]
    let guideFeatures: [String: Tensor]?
    let progress: ProgressReporter

    /// - Parameters:
    ///   - network: the feature extractor (weights frozen).
    ///   - config: validated settings; layer names are checked against the network.
    ///   - guide: optional guide image (RGB [0,1]); the objective then becomes the dot product of each
    ///     position's features with the best-matching guide feature (google/deepdream's guided dreaming).
    /// - Throws: ``StudioError/invalidOption(_:)`` for unknown layers (the message lists the valid names)
    ///   or an invalid config.
    public init(network: FeatureExtractor, config: DreamConfig, guide: Image? = nil, progress: ProgressReporter) throws {
        try config.validate()
        var names: [String] = []
        for name in config.layers.keys.sorted() {
            guard let resolved = network.resolveLayer(name) else {
                throw StudioError.invalidOption("unknown layer '\(name)' for \(network.name); its layers are: \(network.layerNames.joined(separator: ", "))")
            }
            names.append(resolved)
        }
        self.network = network
        self.config = config
        self.layerNames = names
        self.progress = progress
        if let guide {
            let g = try guide.converted(channels: 3)
            try DeepDream.checkSize(g, network: network, role: "guide image")
            guideFeatures = withNoGrad { network.activations(network.preprocess(g.tensor()), layers: names) }
        } else {
            guideFeatures = nil
        }
    }

    /// Layer weight by canonical layer name.
    func weight(of canonical: String) -> Float {
        for (k, v) in config.layers where network.resolveLayer(k) == canonical { return v }
        return 0
    }

    /// The objective on one RGB tile `[1, h, w, 3]` (requires grad), as a scalar tensor.
    func objective(_ tile: Tensor) -> Tensor {
        let acts = network.activations(network.preprocess(tile), layers: layerNames)
        var total: Tensor?
        for name in layerNames {
            guard let a = acts[name] else { continue }
            var term: Tensor
            if let guide = guideFeatures?[name] {
                term = guidedObjective(a, guide: guide)
            } else {
                let h = a.shape[1], w = a.shape[2]
                let inner = (h > 4 && w > 4) ? a.slice(axis: 1, range: 2..<(h - 2)).slice(axis: 2, range: 2..<(w - 2)) : a
                term = inner.squared().mean()
            }
            term = term * weight(of: name)
            total = total.map { $0 + term } ?? term
        }
        return total ?? Tensor(0)
    }

    /// Guided objective: for every position of `a` ([1, h, w, C]), the dot product with the guide
    /// feature vector it matches best; its gradient is that guide vector (google/deepdream).
    func guidedObjective(_ a: Tensor, guide: Tensor) -> Tensor {
        let c = a.shape[3]
        let x = a.reshaped([-1, c])
        let g = guide.reshaped([-1, c])
        let scores = withNoGrad { Tensor.matmul(x.detached(), g, transposeB: true) }
        let q = g.shape[0], p = x.shape[0]
        var best = [Int32](repeating: 0, count: p)
        scores.withUnsafeBufferPointer { s in
            for i in 0..<p {
                var bj = 0
                for j in 1..<max(q, 1) where s[i * q + j] > s[i * q + bj] { bj = j }
                best[i] = Int32(bj)
            }
        }
        let matched = withNoGrad { Tensor.gather(g, indices: best) }
        return (x * matched).sum() * (1 / Float(max(p, 1)))
    }

    /// Gradient of the objective with respect to `image` (RGB [0,1], `h·w·3`), computed tile by tile
    /// on a randomly shifted, border-mirrored view (so tile borders and the network's stride grid move
    /// every step). Returns the objective averaged over
    /// tiles, weighted by the pixels each tile owns.
    ///
    /// The tiles partition the (rolled) image: every pixel takes its gradient from exactly one tile.
    /// A tile narrower than the network's minimum input (at the image's edge) is widened into its
    /// neighbour for context, but only its own pixels take its gradient. Each tile's gradient is
    /// scaled by its area over a full tile's, so that the per-tile mean in the objective does not
    /// give small edge tiles larger steps (which would show as seams).
    func gradient(of image: [Float], width: Int, height: Int, into grad: inout [Float], rng: inout RandomGenerator) -> Float {
        let jx = config.jitter > 0 ? rng.nextInt(below: 2 * config.jitter + 1) - config.jitter : 0
        let jy = config.jitter > 0 ? rng.nextInt(below: 2 * config.jitter + 1) - config.jitter : 0
        let tile = config.tileSize
        // Random tile origin offset, like google/deepdream's tiled gradient.
        let ox = width > tile ? rng.nextInt(below: tile) : 0
        let oy = height > tile ? rng.nextInt(below: tile) : 0
        let minSide = network.minimumInputSize
        var xs: [Int] = []; var ys: [Int] = []
        var x0 = width > tile ? ox - tile : 0
        while x0 < width { xs.append(x0); x0 += tile }
        var y0 = height > tile ? oy - tile : 0
        while y0 < height { ys.append(y0); y0 += tile }
        let fullArea = Float(min(tile, width) * min(tile, height))
        for i in 0..<grad.count { grad[i] = 0 }
        var lossSum: Double = 0, ownedSum: Double = 0
        for ty in ys {
            for tx in xs {
                // The pixels this tile owns: the tile clipped to the image.
                let ownX0 = max(tx, 0), ownY0 = max(ty, 0)
                let ownX1 = min(tx + tile, width), ownY1 = min(ty + tile, height)
                if ownX1 <= ownX0 || ownY1 <= ownY0 { continue }
                // The pixels the network sees: widened to its minimum where needed.
                var x = ownX0, y = ownY0, w = ownX1 - ownX0, h = ownY1 - ownY0
                if w < minSide { x = max(0, min(x, width - minSide)); w = min(minSide, width) }
                if h < minSide { y = max(0, min(y, height - minSide)); h = min(minSide, height) }
                // Extract the shifted tile: pixel (x+i, y+j) of the shifted view is image pixel
                // (x+i−jx, y+j−jy), mirrored at the borders (a wrap-around roll would put a hard seam
                // inside the view, which the network answers with a frame of strong patterns).
                let t = Tensor(zeros: [1, h, w, 3])
                t.withUnsafeMutableBufferPointer { dst in
                    image.withUnsafeBufferPointer { src in
                        for j in 0..<h {
                            let sy = mirror(y + j - jy, height)
                            for i in 0..<w {
                                let sx = mirror(x + i - jx, width)
                                let s = (sy * width + sx) * 3, d = (j * w + i) * 3
                                dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                            }
                        }
                    }
                }
                t.requiresGrad = true
                let loss = objective(t)
                loss.backward()
                let owned = Double((ownX1 - ownX0) * (ownY1 - ownY0))
                lossSum += Double(loss.scalar) * owned
                ownedSum += owned
                guard let g = t.grad else { continue }
                let scale = Float(w * h) / fullArea
                g.withUnsafeBufferPointer { gp in
                    for j in (ownY0 - y)..<(ownY1 - y) {
                        let sy = mirror(y + j - jy, height)
                        for i in (ownX0 - x)..<(ownX1 - x) {
                            let sx = mirror(x + i - jx, width)
                            let s = (sy * width + sx) * 3, d = (j * w + i) * 3
                            grad[s] += scale * gp[d]; grad[s + 1] += scale * gp[d + 1]; grad[s + 2] += scale * gp[d + 2]
                        }
                    }
                }
            }
        }
        return ownedSum > 0 ? Float(lossSum / ownedSum) : 0
    }

    /// Index `v` mirrored into `0..<n` (…, 1, 0 | 0, 1, …, n−1 | n−1, …): period 2n, any `v`.
    @inline(__always)
    func mirror(_ v: Int, _ n: Int) -> Int {
        let period = 2 * n
        var m = v % period
        if m < 0 { m += period }
        return m < n ? m : period - 1 - m
    }

    /// Gradient ascent at one scale, in place on `px` (RGB [0,1], `width·height·3`).
    func ascend(_ px: inout [Float], width: Int, height: Int, octave: Int, rng: inout RandomGenerator,
                save: ([Float], Int) throws -> Void) throws -> OctaveReport {
        var grad = [Float](repeating: 0, count: px.count)
        var first: Float?
        var last: Float = 0
        var steps = 0
        for it in 0..<config.iterations {
            let loss = gradient(of: px, width: width, height: height, into: &grad, rng: &rng)
            guard loss.isFinite else {
                throw StudioError.invalidOption("the DeepDream objective became non-finite at octave \(octave + 1), step \(it + 1)")
            }
            if first == nil { first = loss }
            last = loss
            if let m = config.maxLoss, loss > m { break }
            var meanAbs: Double = 0
            for g in grad { meanAbs += Double(abs(g)) }
            meanAbs /= Double(max(grad.count, 1))
            let scale = config.step / Float(max(meanAbs, 1e-7))
            px.withUnsafeMutableBufferPointer { p in
                grad.withUnsafeBufferPointer { g in
                    for i in 0..<p.count { p[i] = min(max(p[i] + scale * g[i], 0), 1) }
                }
            }
            steps += 1
            progress.report(.step(step: it + 1, totalSteps: config.iterations, epoch: octave + 1, phase: "octave", loss: Double(loss),
                                  unit: "objective", rate: 0, rateUnit: "", elapsed: 0, eta: nil))
            if let every = config.saveEvery, (it + 1) % every == 0 { try save(px, it + 1) }
        }
        // The objective after the last step (same jitter stream position, not advancing `rng`).
        if steps > 0 {
            var r = rng
            last = gradient(of: px, width: width, height: height, into: &grad, rng: &r)
        }
        return OctaveReport(width: width, height: height, initialLoss: first ?? 0, finalLoss: last, steps: steps)
    }

    /// Checks that `image` is at least the network's minimum input on its shorter side.
    /// - Parameters:
    ///   - file: the image's path, named first in the message when given.
    ///   - role: what the image is, for the message ("image", "guide image").
    /// - Throws: ``StudioError/invalidOption(_:)`` naming the file, the size and the minimum.
    public static func checkSize(_ image: Image, network: FeatureExtractor, file: String? = nil, role: String = "image") throws {
        let minSide = network.minimumInputSize
        guard min(image.width, image.height) < minSide else { return }
        throw StudioError.invalidOption("\(file.map { "\($0): " } ?? "")the \(role) is \(image.width)x\(image.height); \(network.name) needs at least \(minSide) pixels on the shorter side")
    }

    /// Dreams on `original` (any channels: converted to RGB) over octaves and returns an RGB image of
    /// the same size, with one report per octave actually run (octaves below the network's minimum
    /// input are skipped and reported through `progress`).
    /// - Parameter save: called for intermediate images (`--save-every`), with the octave and step.
    /// - Throws: ``StudioError/invalidOption(_:)`` when the image is smaller than the network's
    ///   minimum input; image errors from resizing.
    public func run(_ original: Image, save: (Image, Int, Int) throws -> Void = { _, _, _ in }) throws -> (Image, [OctaveReport]) {
        let rgb = try original.converted(channels: 3)
        try DeepDream.checkSize(rgb, network: network)
        let minSide = network.minimumInputSize
        // Octave shapes from the smallest up, as the book computes them.
        var shapes: [(Int, Int)] = []
        for i in stride(from: config.octaves - 1, through: 0, by: -1) {
            let f = Foundation.pow(Double(config.octaveScale), Double(i))
            let w = Int((Double(rgb.width) / f).rounded()), h = Int((Double(rgb.height) / f).rounded())
            if min(w, h) < minSide {
                progress.report(.info("the \(w)x\(h) octave is below \(network.name)'s minimum of \(minSide) pixels: skipped"))
                continue
            }
            shapes.append((w, h))
        }
        var rng = RandomGenerator(seed: config.seed)
        var shrunkOriginal = try rgb.resized(width: shapes[0].0, height: shapes[0].1)
        var img = shrunkOriginal
        var reports: [OctaveReport] = []
        for (k, shape) in shapes.enumerated() {
            // Keep one copy of the working pixels alive at a time (large photos: memory stays bounded).
            var px = try img.resized(width: shape.0, height: shape.1).pixels
            img = Image(width: 1, height: 1, channels: 3, repeating: 0)
            let report = try ascend(&px, width: shape.0, height: shape.1, octave: k, rng: &rng) { p, step in
                try save(Image(width: shape.0, height: shape.1, channels: 3, pixels: p), k + 1, step)
            }
            reports.append(report)
            progress.report(.info(String(format: "octave %d/%d at %dx%d: objective %.4f → %.4f in %d steps",
                                         k + 1, shapes.count, shape.0, shape.1, report.initialLoss, report.finalLoss, report.steps)))
            // Re-inject the detail lost by shrinking: original at this size minus the upscaled shrunk original.
            let sameSize = try rgb.resized(width: shape.0, height: shape.1)
            do {
                let upscaled = try shrunkOriginal.resized(width: shape.0, height: shape.1)
                px.withUnsafeMutableBufferPointer { p in
                    sameSize.pixels.withUnsafeBufferPointer { a in
                        upscaled.pixels.withUnsafeBufferPointer { b in
                            for i in 0..<p.count { p[i] = min(max(p[i] + a[i] - b[i], 0), 1) }
                        }
                    }
                }
            }
            shrunkOriginal = sameSize
            img = Image(width: shape.0, height: shape.1, channels: 3, pixels: px)
        }
        if img.width != rgb.width || img.height != rgb.height {
            img = try img.resized(width: rgb.width, height: rgb.height)
        }
        return (img, reports)
    }
}
