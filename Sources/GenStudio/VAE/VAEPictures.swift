import Foundation
import GenTensor
import GenData

/// The pictures a VAE writes: reconstructions, prior samples, the latent manifold, the latent
/// scatter plot and interpolation strips. Every function returns an ``GenData/Image``; writing is
/// the caller's (atomic, through ``GenData/Image/write(to:format:options:)``), and the callers
/// refuse to write any picture holding a non-finite value.
public enum VAEPictures {
    /// The standard normal quantile function Φ⁻¹(p) for p in (0, 1) (P. J. Acklam's rational
    /// approximation refined by one Halley step, relative error below 1e-12). Returns ±∞ at 0 and 1
    /// and NaN outside [0, 1].
    public static func normalQuantile(_ p: Double) -> Double {
        if p.isNaN || p < 0 || p > 1 { return .nan }
        if p == 0 { return -.infinity }
        if p == 1 { return .infinity }
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
                 -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                 -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
                 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425, high = 1 - low
        var x: Double
        if p < low {
            let q = (-2 * Foundation.log(p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= high {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * Foundation.log(1 - p)).squareRoot()
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        // One Halley step on Φ(x) − p.
        let e = 0.5 * erfc(-x / 2.0.squareRoot()) - p
        let u = e * (2 * Double.pi).squareRoot() * Foundation.exp(x * x / 2)
        x -= u / (1 + x * u / 2)
        return x
    }

    /// The book's manifold grid coordinates: Φ⁻¹ of `n` evenly spaced probabilities from 0.05 to 0.95
    /// (F. Chollet, *Deep Learning with Python*, §8.4), increasing.
    public static func manifoldCoordinates(_ n: Int) -> [Float] {
        guard n > 1 else { return [0] }
        return (0..<n).map { Float(normalQuantile(0.05 + 0.9 * Double($0) / Double(n - 1))) }
    }

    /// Latent codes of the manifold: an `n`×`n` grid over the Gaussian's quantiles in the first two
    /// latent dimensions (others 0), row-major from the top row; z₀ grows to the right, z₁ upwards.
    /// With a 1-D latent space: one row of `n`. - Returns: `[rows·n, latentDim]` and the row count.
    public static func manifoldCodes(n: Int, latentDim: Int) -> (codes: Tensor, rows: Int) {
        let q = manifoldCoordinates(n)
        let rows = latentDim >= 2 ? n : 1
        var v = [Float](repeating: 0, count: rows * n * latentDim)
        for r in 0..<rows {
            for c in 0..<n {
                let o = (r * n + c) * latentDim
                v[o] = q[c]
                if latentDim >= 2 { v[o + 1] = q[n - 1 - r] }
            }
        }
        return (Tensor(shape: [rows * n, latentDim], scalars: v), rows)
    }

    /// Spherical linear interpolation (K. Shoemake 1985; T. White, "Sampling Generative Networks", 2016)
    /// between two latent codes at `t` in [0, 1]; falls back to linear interpolation when the codes
    /// are (anti)parallel or one is zero.
    public static func slerp(_ a: [Float], _ b: [Float], _ t: Float) -> [Float] {
        precondition(a.count == b.count, "slerp: lengths \(a.count) and \(b.count) differ")
        let na = a.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        let nb = b.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        let lerp = zip(a, b).map { $0 + t * ($1 - $0) }
        guard na > 1e-12, nb > 1e-12 else { return lerp }
        var dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } / (na * nb)
        dot = min(max(dot, -1), 1)
        let omega = Foundation.acos(dot), s = Foundation.sin(omega)
        guard s > 1e-6 else { return lerp }
        let wa = Float(Foundation.sin((1 - Double(t)) * omega) / s), wb = Float(Foundation.sin(Double(t) * omega) / s)
        return zip(a, b).map { wa * $0 + wb * $1 }
    }

    /// Whether every sample of `image` is finite.
    public static func isFinite(_ image: Image) -> Bool { image.pixels.allSatisfy { $0.isFinite } }

    /// The tab10 palette (matplotlib's default), RGB in [0, 1]; colour of label `i` is `palette[i % 10]`.
    public static let palette: [(Float, Float, Float)] = [
        (0.122, 0.467, 0.706), (1.000, 0.498, 0.055), (0.173, 0.627, 0.173), (0.839, 0.153, 0.157),
        (0.580, 0.404, 0.741), (0.549, 0.337, 0.294), (0.890, 0.467, 0.761), (0.498, 0.498, 0.498),
        (0.737, 0.741, 0.133), (0.090, 0.745, 0.812),
    ]

    /// A scatter plot of 2-D points coloured by label, as an RGB image of `size`×`size` (+ a legend strip
    /// on the right: one colour swatch per label with the label's number): white background, gray axes
    /// through the origin, light grid lines at every integer with their values along the bottom and
    /// left edges, each point a 3×3 dot. Both axes share one
    /// scale; the plotted window is centred on the points and covers their 0.5th to 99.5th percentiles
    /// (linearly interpolated, as numpy's default) on each axis with a 10% margin (outliers beyond it
    /// are clamped to the border); points that all coincide get a window of ±1 around them.
    /// - Parameters:
    ///   - points: `[(x, y)]` latent means (non-finite points are skipped).
    ///   - labels: one label ≥ 0 per point, or nil (one colour).
    public static func scatterPlot(points: [(Float, Float)], labels: [Int]?, size: Int = 512) -> Image {
        let legend = labels == nil ? 0 : 40
        let w = size + legend, h = size
        var img = Image(width: w, height: h, channels: 3, repeating: 1)
        let finite = points.enumerated().filter { $0.element.0.isFinite && $0.element.1.isFinite }
        // Robust bounds per axis (0.5th to 99.5th percentile), one scale for both axes.
        func bounds(_ v: [Float]) -> (Float, Float) {
            guard !v.isEmpty else { return (-1, 1) }
            let s = v.sorted()
            func quantile(_ q: Double) -> Float {
                let r = Double(s.count - 1) * q, i = Int(r), f = Float(r - Double(i))
                return i + 1 < s.count ? s[i] + (s[i + 1] - s[i]) * f : s[i]
            }
            return (quantile(0.005), quantile(0.995))
        }
        let (x0, x1) = bounds(finite.map { $0.element.0 }), (y0, y1) = bounds(finite.map { $0.element.1 })
        let span = max(x1 - x0, y1 - y0)
        let extent = span > 1e-6 ? span * 0.55 : 1      // half the plotted span
        let cx = (x0 + x1) / 2, cy = (y0 + y1) / 2
        let margin = 6
        func px(_ v: Float, _ c: Float) -> Int { Int((((v - c) / extent + 1) / 2 * Float(size - 2 * margin)).rounded()) + margin }
        func set(_ x: Int, _ y: Int, _ c: (Float, Float, Float)) {
            guard x >= 0, x < w, y >= 0, y < h else { return }
            img[x, y, 0] = c.0; img[x, y, 1] = c.1; img[x, y, 2] = c.2
        }
        // Grid lines at integers, axes through 0; the lines' values along the bottom and left edges
        // (every line, or every n-th so labels stay at least 24 pixels apart).
        if extent < 50 {
            let perUnit = Float(size - 2 * margin) / (2 * extent)
            let labelEvery = max(1, Int((24 / perUnit).rounded(.up)))
            let ink: (Float, Float, Float) = (0.35, 0.35, 0.35)
            for (c, vertical) in [(cx, true), (cy, false)] {
                var k = Int((c - extent).rounded(.up))
                while Float(k) <= c + extent {
                    let p = px(Float(k), c), colour: (Float, Float, Float) = k == 0 ? (0.55, 0.55, 0.55) : (0.9, 0.9, 0.9)
                    for t in 0..<size { if vertical { set(p, t, colour) } else { set(t, size - 1 - p, colour) } }
                    if k % labelEvery == 0 {
                        let text = String(k)
                        if vertical {
                            ChartFont.draw(text, left: p + 3, top: size - 10, scale: 1, color: ink, plot: set)
                        } else {
                            ChartFont.draw(text, left: 3, top: size - 1 - p - 9, scale: 1, color: ink, plot: set)
                        }
                    }
                    k += 1
                }
            }
        }
        for (i, pt) in finite {
            let colour = labels.map { palette[max($0[i], 0) % palette.count] } ?? palette[0]
            let x = min(max(px(pt.0, cx), 1), size - 2), y = size - 1 - min(max(px(pt.1, cy), 1), size - 2)
            for dy in -1...1 { for dx in -1...1 { set(x + dx, y + dy, colour) } }
        }
        if let labels {
            let classes = min((labels.max() ?? 0) + 1, palette.count)
            for k in 0..<classes {
                for y in (8 + k * 20)..<(8 + k * 20 + 14) { for x in (size + 5)..<(size + 19) { set(x, y, palette[k]) } }
                ChartFont.draw(String(k), left: size + 23, top: 8 + k * 20 + 3, scale: 1, color: (0, 0, 0), plot: set)
            }
        }
        return img
    }

    /// Test images beside their reconstructions: `pairs` originals in a row, their reconstructions in
    /// the row below, `columns` per row (rows alternate original / reconstruction).
    /// - Throws: ``GenData/ImageError`` from the grid (never for consistent inputs).
    public static func reconstructionGrid(originals: [Image], reconstructions: [Image], columns: Int = 10) throws -> Image {
        var tiles: [Image] = []
        var i = 0
        while i < originals.count {
            let chunk = i..<min(i + columns, originals.count)
            for j in chunk { tiles.append(originals[j]) }
            for _ in chunk.count..<columns { tiles.append(Image(width: originals[0].width, height: originals[0].height, channels: originals[0].channels, repeating: 1)) }
            for j in chunk { tiles.append(reconstructions[j]) }
            for _ in chunk.count..<columns { tiles.append(Image(width: originals[0].width, height: originals[0].height, channels: originals[0].channels, repeating: 1)) }
            i += columns
        }
        return try Image.grid(tiles, columns: columns, padding: 2, background: 1)
    }
}

extension VAEModel {
    /// Images per forward pass outside training: ``VAEModelConfig/inferenceChunk(limit:)``.
    public func inferenceChunk(limit: Int) -> Int { config.inferenceChunk(limit: limit) }

    /// Decodes `codes` (`[N, latentDim]`) to images without recording a graph, in chunks of at
    /// most 256 (fewer for large images, see ``inferenceChunk(limit:)``).
    public func decodeImages(_ codes: Tensor) -> [Image] {
        withNoGrad {
            var out: [Image] = []
            let n = codes.shape[0]
            let chunk = inferenceChunk(limit: 256)
            var s = 0
            while s < n {
                let e = min(s + chunk, n)
                out += Image.images(from: decode(codes.slice(axis: 0, range: s..<e)))
                s = e
            }
            return out
        }
    }

    /// A grid of `count` decoded samples from the prior N(0, I), drawn from `rng`.
    /// - Throws: ``GenData/ImageError`` when `count` < 1.
    public func priorSampleGrid(count: Int, columns: Int? = nil, using rng: inout RandomGenerator) throws -> Image {
        guard count >= 1 else { throw ImageError.invalidArgument("sample count must be at least 1") }
        let z = Tensor.normal([count, config.latentDim], using: &rng)
        return try Image.grid(decodeImages(z), columns: columns, padding: 2, background: 1)
    }

    /// The latent manifold: decoded images over an `n`×`n` grid of Gaussian quantiles (see
    /// ``VAEPictures/manifoldCodes(n:latentDim:)``), tiled without padding as in the book.
    /// - Throws: ``GenData/ImageError`` when `n` < 1.
    public func manifold(n: Int) throws -> Image {
        guard n >= 1 else { throw ImageError.invalidArgument("manifold size must be at least 1") }
        let (codes, _) = VAEPictures.manifoldCodes(n: n, latentDim: config.latentDim)
        return try Image.grid(decodeImages(codes), columns: n, padding: 0, background: 1)
    }

    /// Posterior means of `images` (`[N, S, S, C]`), without recording a graph, in chunks of
    /// ``inferenceChunk(limit:)`` images.
    /// - Returns: `[N, latentDim]`.
    public func latentMeans(_ images: Tensor) -> Tensor {
        withNoGrad {
            let n = images.shape[0], chunk = inferenceChunk(limit: 500)
            if n <= chunk { return encode(images).mean }
            var scalars: [Float] = []
            scalars.reserveCapacity(n * config.latentDim)
            var s = 0
            while s < n {
                let e = min(s + chunk, n)
                scalars += encode(images.slice(axis: 0, range: s..<e)).mean.scalars
                s = e
            }
            return Tensor(shape: [n, config.latentDim], scalars: scalars)
        }
    }
}
