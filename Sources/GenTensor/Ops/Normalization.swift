import Foundation

// Batch normalisation (Ioffe & Szegedy, 2015) over the channels-last axis, with fused pullbacks.

/// What training-mode ``Tensor/batchNormalization(_:gamma:beta:epsilon:)`` returns.
public struct BatchNormalizationOutput {
    /// The normalised, scaled and shifted input, same shape as the input.
    public let output: Tensor
    /// Per-channel batch mean `[C]` (no graph).
    public let mean: Tensor
    /// Per-channel biased batch variance `[C]` (divides by M; used for normalising and by Keras for its moving variance).
    public let variance: Tensor
    /// Per-channel unbiased batch variance `[C]` (divides by M − 1; PyTorch's running-variance update).
    /// Equals `variance` when M = 1.
    public let unbiasedVariance: Tensor
}

extension Tensor {
    static func checkBatchNormShapes(_ op: String, _ x: Tensor, _ params: [(String, Tensor)]) -> Int {
        precondition(x.rank >= 2, "\(op): input must be [..., C] with a batch axis (NHWC or [N, C]), got \(x.shape)")
        let c = x.shape[x.rank - 1]
        for (label, t) in params {
            precondition(t.shape == [c], "\(op): \(label) must be [\(c)] for input \(x.shape), got \(t.shape)")
        }
        return c
    }

    /// Training-mode batch normalisation per channel (last axis) over all other axes — `(N, H, W)` for NHWC,
    /// `N` for `[N, C]` (Keras `BatchNormalization(axis=-1)`, PyTorch `BatchNorm2d`/`BatchNorm1d` in `train()`).
    ///
    /// With M = count / C elements per channel: `μ = (1/M) Σ x`, `σ² = (1/M) Σ (x − μ)²` (biased),
    /// `x̂ = (x − μ) / √(σ² + ε)`, `y = γ·x̂ + β`.
    ///
    /// Gradients (fused, Ioffe & Szegedy 2015 §3): `∂β = Σ g`, `∂γ = Σ g·x̂`,
    /// `∂x = γ / (M √(σ² + ε)) · (M·g − Σ g − x̂·Σ g·x̂)`.
    ///
    /// - Parameters:
    ///   - x: `[..., C]`, at least rank 2.
    ///   - gamma, beta: `[C]` scale and shift.
    ///   - epsilon: added to the variance (Keras 1e-3, PyTorch 1e-5).
    /// - Returns: the output with its graph, and the batch statistics (for running-statistics updates).
    public static func batchNormalization(_ x: Tensor, gamma: Tensor, beta: Tensor,
                                          epsilon: Float) -> BatchNormalizationOutput {
        let c = checkBatchNormShapes("batchNormalization", x, [("gamma", gamma), ("beta", beta)])
        let n = x.count
        let m = n / max(c, 1)
        precondition(m > 0, "batchNormalization: no elements per channel in \(x.shape)")
        let xp = x.storage.base
        // Per-channel sums in Double, partitioned over rows (deterministic for a given thread count).
        let parts = max(1, min(Threads.count, m / 64))
        var partial = [Double](repeating: 0, count: parts * c)
        partial.withUnsafeMutableBufferPointer { ps in
            let p = ps.baseAddress!
            parallelPartitions(m, parts: parts) { k, r in
                let acc = p + k * c
                for row in r { let xr = xp + row * c; for j in 0..<c { acc[j] += Double(xr[j]) } }
            }
        }
        var meanD = [Double](repeating: 0, count: c)
        for k in 0..<parts { for j in 0..<c { meanD[j] += partial[k * c + j] } }
        for j in 0..<c { meanD[j] /= Double(m) }
        for i in 0..<partial.count { partial[i] = 0 }
        partial.withUnsafeMutableBufferPointer { ps in
            let p = ps.baseAddress!
            meanD.withUnsafeBufferPointer { mu in
                parallelPartitions(m, parts: parts) { k, r in
                    let acc = p + k * c
                    for row in r {
                        let xr = xp + row * c
                        for j in 0..<c { let d = Double(xr[j]) - mu[j]; acc[j] += d * d }
                    }
                }
            }
        }
        var ss = [Double](repeating: 0, count: c)
        for k in 0..<parts { for j in 0..<c { ss[j] += partial[k * c + j] } }
        let mean = Tensor(shape: [c], scalars: meanD.map { Float($0) })
        let variance = Tensor(shape: [c], scalars: ss.map { Float($0 / Double(m)) })
        let unbiased = Tensor(shape: [c], scalars: ss.map { Float($0 / Double(max(m - 1, 1))) })
        let invStd = ss.map { Float(1 / ($0 / Double(m) + Double(epsilon)).squareRoot()) }
        let meanF = mean.scalars

        // x̂ is kept for the pullback.
        let xhat = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        let out = TensorStorage(count: n)
        let o = out.base, gp = gamma.storage.base, bp = beta.storage.base
        meanF.withUnsafeBufferPointer { mu in
            invStd.withUnsafeBufferPointer { inv in
                parallelFor(m, cost: c * 3) { r in
                    for row in r {
                        let xr = xp + row * c, hr = xhat + row * c, or = o + row * c
                        for j in 0..<c {
                            let h = (xr[j] - mu[j]) * inv[j]
                            hr[j] = h
                            or[j] = gp[j] * h + bp[j]
                        }
                    }
                }
            }
        }
        let owner = PointerOwner(xhat)
        let y = result(shape: x.shape, storage: out, inputs: [x, gamma, beta]) { g in
            let hp = owner.pointer
            // Σ g and Σ g·x̂ per channel.
            var sumG = [Double](repeating: 0, count: c), sumGH = [Double](repeating: 0, count: c)
            for row in 0..<m {
                let gr = g + row * c, hr = hp + row * c
                for j in 0..<c { sumG[j] += Double(gr[j]); sumGH[j] += Double(gr[j] * hr[j]) }
            }
            if beta.requiresGrad {
                beta.accumulateGrad { d in for j in 0..<c { d[j] += Float(sumG[j]) } }
            }
            if gamma.requiresGrad {
                gamma.accumulateGrad { d in for j in 0..<c { d[j] += Float(sumGH[j]) } }
            }
            if x.requiresGrad {
                let invM = 1 / Float(m)
                let meanG = sumG.map { Float($0) * invM }, meanGH = sumGH.map { Float($0) * invM }
                let scale = (0..<c).map { gp[$0] * invStd[$0] }
                x.accumulateGrad { d in
                    meanG.withUnsafeBufferPointer { mg in
                        meanGH.withUnsafeBufferPointer { mgh in
                            scale.withUnsafeBufferPointer { sc in
                                parallelFor(m, cost: c * 4) { r in
                                    for row in r {
                                        let gr = g + row * c, hr = hp + row * c, dr = d + row * c
                                        for j in 0..<c { dr[j] += sc[j] * (gr[j] - mg[j] - hr[j] * mgh[j]) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return BatchNormalizationOutput(output: y, mean: mean, variance: variance, unbiasedVariance: unbiased)
    }

    /// Inference-mode batch normalisation with given statistics (Keras `training=False`, PyTorch `eval()`):
    /// `y = γ·(x − mean)/√(variance + ε) + β` per channel (last axis).
    ///
    /// Gradients: `∂x = g·γ/√(variance + ε)`, `∂γ = Σ g·x̂`, `∂β = Σ g`; none for the statistics.
    /// - Parameters: `x` `[..., C]`; `gamma`, `beta`, `mean`, `variance` `[C]`.
    public static func batchNormalization(_ x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor,
                                          epsilon: Float) -> Tensor {
        let c = checkBatchNormShapes("batchNormalization(inference)", x,
                                     [("gamma", gamma), ("beta", beta), ("mean", mean), ("variance", variance)])
        let n = x.count, m = n / max(c, 1)
        let muS = mean.scalars
        let invStd = variance.scalars.map { 1 / ($0 + epsilon).squareRoot() }
        let xp = x.storage.base, gp = gamma.storage.base, bp = beta.storage.base
        let out = TensorStorage(count: n)
        let o = out.base
        muS.withUnsafeBufferPointer { mu in
            invStd.withUnsafeBufferPointer { inv in
                parallelFor(m, cost: c * 3) { r in
                    for row in r {
                        let xr = xp + row * c, or = o + row * c
                        for j in 0..<c { or[j] = gp[j] * ((xr[j] - mu[j]) * inv[j]) + bp[j] }
                    }
                }
            }
        }
        return result(shape: x.shape, storage: out, inputs: [x, gamma, beta]) { g in
            if gamma.requiresGrad || beta.requiresGrad {
                var sumG = [Double](repeating: 0, count: c), sumGH = [Double](repeating: 0, count: c)
                for row in 0..<m {
                    let gr = g + row * c, xr = xp + row * c
                    for j in 0..<c {
                        sumG[j] += Double(gr[j])
                        sumGH[j] += Double(gr[j] * ((xr[j] - muS[j]) * invStd[j]))
                    }
                }
                if beta.requiresGrad { beta.accumulateGrad { d in for j in 0..<c { d[j] += Float(sumG[j]) } } }
                if gamma.requiresGrad { gamma.accumulateGrad { d in for j in 0..<c { d[j] += Float(sumGH[j]) } } }
            }
            if x.requiresGrad {
                let scale = (0..<c).map { gp[$0] * invStd[$0] }
                x.accumulateGrad { d in
                    scale.withUnsafeBufferPointer { sc in
                        parallelFor(m, cost: c) { r in
                            for row in r {
                                let gr = g + row * c, dr = d + row * c
                                for j in 0..<c { dr[j] += sc[j] * gr[j] }
                            }
                        }
                    }
                }
            }
        }
    }
}
