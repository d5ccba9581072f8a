import Foundation
import GenTensor

/// Global L2 norm of all gradients, √(Σ g²) over every parameter that has one.
public func globalGradientNorm(_ parameters: [Tensor]) -> Float {
    var total = 0.0
    for p in parameters {
        guard let g = p.grad else { continue }
        let gp = g.storage.base
        var s: Float = 0
        for j in 0..<g.count { s += gp[j] * gp[j] }
        total += Double(s)
    }
    return Float(total.squareRoot())
}

/// Scales all gradients by `maxNorm / norm` when their global L2 norm exceeds `maxNorm`
/// (Pascanu et al., 2013; `torch.nn.utils.clip_grad_norm_`, Keras `global_clipnorm`).
/// - Returns: the global norm before clipping (may be non-finite: callers should check).
@discardableResult
public func clipGradients(_ parameters: [Tensor], byGlobalNorm maxNorm: Float) -> Float {
    let norm = globalGradientNorm(parameters)
    if norm.isFinite && norm > maxNorm && norm > 0 {
        let scale = maxNorm / norm
        for p in parameters {
            guard let g = p.grad else { continue }
            let gp = g.storage.base
            for j in 0..<g.count { gp[j] *= scale }
        }
    }
    return norm
}

/// Clamps every gradient element to `[-limit, limit]` (Keras `clipvalue`).
public func clipGradients(_ parameters: [Tensor], byValue limit: Float) {
    for p in parameters {
        guard let g = p.grad else { continue }
        let gp = g.storage.base
        for j in 0..<g.count { gp[j] = min(max(gp[j], -limit), limit) }
    }
}
