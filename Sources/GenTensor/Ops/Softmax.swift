import Foundation

/// Numerically stable softmax of one row of `n` logits into `out` (max subtracted first).
@inlinable
public func softmaxRow(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    var mx = -Float.infinity
    for j in 0..<n { mx = max(mx, x[j]) }
    var s: Float = 0
    for j in 0..<n { let e = fastExp(x[j] - mx); out[j] = e; s += e }
    let inv = 1 / s
    for j in 0..<n { out[j] *= inv }
}

extension Tensor {
    /// Softmax over the last axis: `exp(x - max) / Σ exp(x - max)`, each row in (0, 1) summing to 1.
    public func softmax() -> Tensor {
        precondition(rank >= 1, "softmax: needs rank ≥ 1, got \(shape)")
        let c = shape[rank - 1], rows = count / max(c, 1)
        let out = TensorStorage(count: count)
        let x = storage.base, o = out.base
        parallelFor(rows, cost: c * 8) { r in for i in r { softmaxRow(x + i * c, o + i * c, c) } }
        return Tensor.result(shape: shape, storage: out, inputs: [self]) { [self] g in
            // dx = y ⊙ (g − Σ g⊙y)
            self.accumulateGrad { d in
                parallelFor(rows, cost: c * 3) { r in
                    for i in r {
                        let y = o + i * c, gr = g + i * c, dr = d + i * c
                        var dot: Float = 0
                        for j in 0..<c { dot += gr[j] * y[j] }
                        for j in 0..<c { dr[j] += y[j] * (gr[j] - dot) }
                    }
                }
            }
        }
    }

    /// Log-softmax over the last axis: `x - max - log Σ exp(x - max)`, values ≤ 0.
    public func logSoftmax() -> Tensor {
        precondition(rank >= 1, "logSoftmax: needs rank ≥ 1, got \(shape)")
        let c = shape[rank - 1], rows = count / max(c, 1)
        let out = TensorStorage(count: count)
        let x = storage.base, o = out.base
        parallelFor(rows, cost: c * 8) { r in
            for i in r {
                let xr = x + i * c, or = o + i * c
                var mx = -Float.infinity
                for j in 0..<c { mx = max(mx, xr[j]) }
                var s: Float = 0
                for j in 0..<c { s += fastExp(xr[j] - mx) }
                // (x − max) − log Σ: subtracting the large max first keeps full precision.
                let ls = Foundation.log(s)
                for j in 0..<c { or[j] = (xr[j] - mx) - ls }
            }
        }
        return Tensor.result(shape: shape, storage: out, inputs: [self]) { [self] g in
            // dx = g − softmax ⊙ Σ g
            self.accumulateGrad { d in
                parallelFor(rows, cost: c * 3) { r in
                    for i in r {
                        let y = o + i * c, gr = g + i * c, dr = d + i * c
                        var s: Float = 0
                        for j in 0..<c { s += gr[j] }
                        for j in 0..<c { dr[j] += gr[j] - fastExp(y[j]) * s }
                    }
                }
            }
        }
    }

    /// Fused softmax + categorical cross-entropy, averaged over rows:
    /// `L = −(1/N) Σᵢ log softmax(logitsᵢ)[labelᵢ]` in nats.
    ///
    /// - Parameters:
    ///   - logits: `[N, C]` unnormalised scores.
    ///   - labels: `N` class indices in `0..<C`.
    /// - Returns: a rank-0 tensor. The gradient is `(softmax − onehot) / N`, computed in one pass.
    public static func softmaxCrossEntropy(logits: Tensor, labels: [Int32]) -> Tensor {
        precondition(logits.rank == 2 && logits.shape[0] == labels.count,
                     "softmaxCrossEntropy: logits \(logits.shape) vs \(labels.count) labels")
        let n = logits.shape[0], c = logits.shape[1]
        let probs = UnsafeMutablePointer<Float>.allocate(capacity: n * c)
        let x = logits.storage.base
        var total: Double = 0
        for i in 0..<n {
            let label = Int(labels[i])
            precondition(label >= 0 && label < c, "softmaxCrossEntropy: label \(label) out of 0..<\(c)")
            let xr = x + i * c, pr = probs + i * c
            var mx = -Float.infinity
            for j in 0..<c { mx = max(mx, xr[j]) }
            var s: Float = 0
            for j in 0..<c { let e = fastExp(xr[j] - mx); pr[j] = e; s += e }
            let inv = 1 / s
            for j in 0..<c { pr[j] *= inv }
            total += Double((mx - xr[label]) + Foundation.log(s))
        }
        let out = TensorStorage(count: 1)
        out.base[0] = Float(total / Double(max(n, 1)))
        let holder = PointerOwner(probs)
        return result(shape: [], storage: out, inputs: [logits]) { g in
            let scale = g[0] / Float(max(n, 1))
            logits.accumulateGrad { d in
                for i in 0..<n {
                    let pr = holder.pointer + i * c, dr = d + i * c
                    for j in 0..<c { dr[j] += scale * pr[j] }
                    dr[Int(labels[i])] -= scale
                }
            }
        }
    }
}

/// Owns a heap buffer kept alive by a pullback closure; frees it when the graph is released.
final class PointerOwner {
    let pointer: UnsafeMutablePointer<Float>
    init(_ p: UnsafeMutablePointer<Float>) { pointer = p }
    deinit { pointer.deallocate() }
}
