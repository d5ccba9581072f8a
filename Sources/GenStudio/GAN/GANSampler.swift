import Foundation
import GenTensor
import GenNN

/// Draws images from a trained generator: random samples, optionally truncated, and spherical
/// interpolations between latent points.
public final class GANSampler {
    /// The generator (weights from a `gen gan train` checkpoint).
    public let generator: GANGenerator

    /// Wraps a generator.
    public init(generator: GANGenerator) { self.generator = generator }

    /// Loads the generator of a `gen gan train` checkpoint (the discriminator is not needed).
    /// - Throws: `CheckpointError` (empty, corrupt, not a gan checkpoint) or
    ///   ``StudioError/incompatibleCheckpoint(path:reason:)`` (missing or malformed tensors,
    ///   non-finite weights, an invalid configuration). The file is never modified.
    public static func load(checkpoint url: URL) throws -> GANSampler {
        let ckpt = try Checkpoint.load(from: url, expectingGenerator: GANKeys.generator)
        guard let config = try ckpt.metadataIfPresent(GANModelConfig.self, forKey: Checkpoint.Key.config) else {
            throw StudioError.incompatibleCheckpoint(path: url.path, reason: "checkpoint lacks the model configuration")
        }
        do { try config.validate() } catch {
            throw StudioError.incompatibleCheckpoint(path: url.path, reason: "model configuration is invalid: \(error)")
        }
        var rng = RandomGenerator(seed: 0)
        let g = GANGenerator(config: config, using: &rng)
        try restoreParameters(g.parameters, from: ckpt, path: url.path)
        return GANSampler(generator: g)
    }

    /// `count` latent points `[count, latentDim]` from N(0, I). With `truncation` t > 0 (the
    /// truncation trick, Brock et al., 2019) every component with |z| > t is redrawn until it
    /// falls inside: smaller t trades variety for typicality.
    public func latents(count: Int, truncation: Float? = nil, using rng: inout RandomGenerator) -> Tensor {
        let d = generator.config.latentDim
        let t = Tensor(zeros: [count, d])
        let p = t.storage.base
        for i in 0..<(count * d) {
            var v = rng.nextNormal()
            if let tr = truncation, tr > 0 {
                var tries = 0
                while Swift.abs(v) > tr && tries < 1000 { v = rng.nextNormal(); tries += 1 }
                if Swift.abs(v) > tr { v = 0 }
            }
            p[i] = v
        }
        return t
    }

    /// Images `[N, S, S, C]` in [-1, 1] for latent points `[N, latentDim]`, in batches of 64.
    public func generate(_ z: Tensor) -> Tensor {
        let n = z.shape[0]
        var parts: [Tensor] = []
        var i = 0
        withNoGrad {
            while i < n {
                let k = min(64, n - i)
                parts.append(generator(z.slice(axis: 0, range: i..<(i + k))))
                i += k
            }
        }
        return parts.count == 1 ? parts[0] : Tensor.concatenate(parts, axis: 0)
    }

    /// Spherical linear interpolation (Shoemake 1985; White, "Sampling Generative Networks", 2016)
    /// through `waypoints` (`[K, latentDim]`, K ≥ 2), `steps` points per segment including both
    /// ends (shared ends counted once): `[(K−1)·(steps−1) + 1, latentDim]`. Falls back to linear
    /// interpolation for (anti)parallel vectors.
    public static func slerp(_ waypoints: Tensor, steps: Int) -> Tensor {
        precondition(waypoints.rank == 2 && waypoints.shape[0] >= 2 && steps >= 2, "slerp: needs [K>=2, D] and steps >= 2")
        let k = waypoints.shape[0], d = waypoints.shape[1]
        let w = waypoints.scalars
        var out: [Float] = []
        for s in 0..<(k - 1) {
            let a = Array(w[(s * d)..<((s + 1) * d)]).map(Double.init), b = Array(w[((s + 1) * d)..<((s + 2) * d)]).map(Double.init)
            let na = a.reduce(0) { $0 + $1 * $1 }.squareRoot(), nb = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
            var cosine = 0.0
            if na > 0 && nb > 0 { for j in 0..<d { cosine += a[j] * b[j] }; cosine /= na * nb }
            let omega = Foundation.acos(min(max(cosine, -1), 1)), so = Foundation.sin(omega)
            for i in (s == 0 ? 0 : 1)..<steps {
                let t = Double(i) / Double(steps - 1)
                let (ca, cb) = so < 1e-6 ? (1 - t, t) : (Foundation.sin((1 - t) * omega) / so, Foundation.sin(t * omega) / so)
                for j in 0..<d { out.append(Float(ca * a[j] + cb * b[j])) }
            }
        }
        return Tensor(shape: [out.count / d, d], scalars: out)
    }
}
