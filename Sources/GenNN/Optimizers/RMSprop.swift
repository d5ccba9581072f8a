import GenTensor

/// RMSprop (Tieleman & Hinton, 2012, lecture 6.5) with Keras 3 semantics, the optimizer of the
/// book's text model: `v ← ρ·v + (1−ρ)·g²`, `w ← w − lr · g / √(v + ε)`.
/// (Keras puts ε inside the square root; PyTorch adds it outside. Defaults: ρ = 0.9, ε = 1e-7.)
public final class RMSprop: Optimizer {
    public let name = "rmsprop"
    public var learningRate: Float
    /// Decay ρ of the moving average of squared gradients, in [0, 1).
    public let rho: Float
    /// ε > 0 for numerical stability.
    public let epsilon: Float
    public private(set) var step = 0
    private let velocity = SlotStore(prefix: "rmsprop/velocity")

    public init(learningRate: Float = 0.001, rho: Float = 0.9, epsilon: Float = 1e-7) {
        self.learningRate = learningRate
        self.rho = rho
        self.epsilon = epsilon
    }

    public func update(_ parameters: [Tensor]) {
        step += 1
        let lr = learningRate, rho = self.rho, eps = epsilon
        for (i, p) in parameters.enumerated() where p.grad != nil { _ = velocity.slot(i, like: p) }
        forEachParameter(parameters) { i, w, g, r in
            let v = velocity.slots[i]!.storage.base
            for j in r {
                let gj = g[j]
                let vj = rho * v[j] + (1 - rho) * gj * gj
                v[j] = vj
                w[j] -= lr * gj / (vj + eps).squareRoot()
            }
        }
    }

    public func stateTensors() -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        velocity.export(into: &d)
        return d
    }

    public func loadState(_ tensors: [String: Tensor], step: Int, parameters: [Tensor]) throws {
        try velocity.restore(tensors, parameters: parameters, required: false)
        self.step = step
    }
}
