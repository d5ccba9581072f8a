import Foundation

// Loss functions as single ops with fused, numerically stable gradients.

/// How a loss combines its per-element (or per-row) terms.
public enum LossReduction: Equatable {
    /// Mean over all terms (Keras and PyTorch default): a rank-0 tensor.
    case mean
    /// Sum over all terms: a rank-0 tensor.
    case sum
    /// No reduction: one term per element, the input's shape.
    case none
}

extension Tensor {
    /// Applies `reduction` to `n` per-element terms computed in Double; returns the storage,
    /// the shape, and the factor the output gradient is multiplied by for every element.
    static func reduceLoss(_ terms: [Double], shape: [Int], _ reduction: LossReduction) -> (TensorStorage, [Int], Float) {
        switch reduction {
        case .none:
            let s = TensorStorage(count: terms.count)
            for i in 0..<terms.count { s.base[i] = Float(terms[i]) }
            return (s, shape, 1)
        case .sum, .mean:
            let s = TensorStorage(count: 1)
            let total = terms.reduce(0, +)
            let scale = reduction == .mean ? 1 / Double(max(terms.count, 1)) : 1
            s.base[0] = Float(total * scale)
            return (s, [], Float(scale))
        }
    }

    /// Binary cross-entropy from logits (Keras `BinaryCrossentropy(from_logits=True)`,
    /// PyTorch `BCEWithLogitsLoss`), per element
    /// `ℓ = max(x, 0) − x·t + log(1 + e^{−|x|})`, which equals `−t·log σ(x) − (1 − t)·log(1 − σ(x))`
    /// without overflow or `log 0` for any finite logit.
    ///
    /// Gradients: `∂ℓ/∂x = σ(x) − t`, `∂ℓ/∂t = −x` (times the reduction's 1/count for `.mean`).
    ///
    /// - Parameters:
    ///   - logits: any shape.
    ///   - targets: same shape, values in [0, 1] (soft or smoothed labels allowed).
    ///   - reduction: `.mean` (default), `.sum`, or `.none`.
    public static func binaryCrossEntropy(logits: Tensor, targets: Tensor, reduction: LossReduction = .mean) -> Tensor {
        precondition(logits.shape == targets.shape,
                     "binaryCrossEntropy: logits \(logits.shape) and targets \(targets.shape) differ")
        let n = logits.count
        let x = logits.storage.base, t = targets.storage.base
        var terms = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let xi = Double(x[i]), ti = Double(t[i])
            terms[i] = Swift.max(xi, 0) - xi * ti + Foundation.log1p(Foundation.exp(-Swift.abs(xi)))
        }
        let (out, shape, scale) = reduceLoss(terms, shape: logits.shape, reduction)
        let perElement = reduction == .none
        return result(shape: shape, storage: out, inputs: [logits, targets]) { g in
            if logits.requiresGrad {
                logits.accumulateGrad { d in
                    for i in 0..<n {
                        let gi = (perElement ? g[i] : g[0]) * scale
                        let xi = x[i]
                        // σ(x) without overflow: e^{−|x|} ≤ 1.
                        let e = Foundation.exp(-Swift.abs(xi))
                        let sig = xi >= 0 ? 1 / (1 + e) : e / (1 + e)
                        d[i] += gi * (sig - t[i])
                    }
                }
            }
            if targets.requiresGrad {
                targets.accumulateGrad { d in
                    for i in 0..<n { d[i] -= (perElement ? g[i] : g[0]) * scale * x[i] }
                }
            }
        }
    }

    /// KL divergence of a diagonal Gaussian `N(μ, diag(e^{logvar}))` from the standard normal, per row
    /// (Kingma & Welling 2014, appendix B; the VAE latent loss in Chollet ch. 8):
    /// `KLᵢ = −½ Σⱼ (1 + logvarᵢⱼ − μᵢⱼ² − e^{logvarᵢⱼ})`.
    ///
    /// Gradients: `∂KL/∂μ = μ`, `∂KL/∂logvar = ½(e^{logvar} − 1)`.
    /// - Parameters: `mean` and `logVariance` of the same shape `[N, ...]` (rank ≥ 1; every axis after
    ///   the first is summed).
    /// - Returns: `[N]`.
    public static func klDivergenceDiagonalGaussian(mean: Tensor, logVariance: Tensor) -> Tensor {
        precondition(mean.shape == logVariance.shape && mean.rank >= 1,
                     "klDivergenceDiagonalGaussian: mean \(mean.shape) and logVariance \(logVariance.shape) must match, rank ≥ 1")
        let rows = mean.shape[0], d = mean.count / max(rows, 1)
        let mu = mean.storage.base, lv = logVariance.storage.base
        let out = TensorStorage(count: rows)
        for r in 0..<rows {
            var s = 0.0
            for j in 0..<d {
                let m = Double(mu[r * d + j]), l = Double(lv[r * d + j])
                s += 1 + l - m * m - Foundation.exp(l)
            }
            out.base[r] = Float(-0.5 * s)
        }
        return result(shape: [rows], storage: out, inputs: [mean, logVariance]) { g in
            if mean.requiresGrad {
                mean.accumulateGrad { dm in
                    for r in 0..<rows { for j in 0..<d { dm[r * d + j] += g[r] * mu[r * d + j] } }
                }
            }
            if logVariance.requiresGrad {
                logVariance.accumulateGrad { dl in
                    for r in 0..<rows {
                        for j in 0..<d { dl[r * d + j] += g[r] * 0.5 * (Foundation.exp(lv[r * d + j]) - 1) }
                    }
                }
            }
        }
    }

    /// Mean squared error `(1/n) Σ (prediction − target)²` over all elements (Keras `MeanSquaredError`
    /// for equal-sized rows, PyTorch `MSELoss`), or its sum / elementwise terms per `reduction`.
    ///
    /// Gradients: `∂/∂prediction = 2(p − t)`, `∂/∂target = −2(p − t)` (times 1/n for `.mean`).
    /// - Precondition: equal shapes.
    public static func meanSquaredError(_ prediction: Tensor, _ target: Tensor, reduction: LossReduction = .mean) -> Tensor {
        precondition(prediction.shape == target.shape,
                     "meanSquaredError: prediction \(prediction.shape) and target \(target.shape) differ")
        let n = prediction.count
        let p = prediction.storage.base, t = target.storage.base
        var terms = [Double](repeating: 0, count: n)
        for i in 0..<n { let e = Double(p[i]) - Double(t[i]); terms[i] = e * e }
        let (out, shape, scale) = reduceLoss(terms, shape: prediction.shape, reduction)
        let perElement = reduction == .none
        return result(shape: shape, storage: out, inputs: [prediction, target]) { g in
            for (tensor, sign) in [(prediction, Float(2)), (target, Float(-2))] where tensor.requiresGrad {
                tensor.accumulateGrad { d in
                    for i in 0..<n { d[i] += (perElement ? g[i] : g[0]) * scale * sign * (p[i] - t[i]) }
                }
            }
        }
    }
}
