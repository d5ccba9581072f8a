import GenTensor

/// RMSprop (Tieleman & Hinton, 2012, lecture 6.5) with Keras 3 semantics, the optimizer of the
/// book's text model: `v ← ρ·v + (1−ρ)·g²`, `w ← w − lr · g / √(v + ε)`.
/// (Keras puts ε inside the square root; PyTorch adds it outside. Defaults: ρ = 0.9, ε = 1e-7.)
public final class RMSprop: Optimizer {
    /// `"rmsprop"`.
    public let name = "rmsprop"
    /// Step size, > 0; may be changed between updates (learning-rate schedules).
    public var learningRate: Float
    /// Decay ρ of the moving average of squared gradients, in [0, 1).
    public let rho: Float
    /// ε > 0 for numerical stability.
    public let epsilon: Float
    /// Updates applied so far (restored with the state).
    public private(set) var step = 0
    private let velocity = SlotStore(prefix: "rmsprop/velocity")

    /// Defaults: Keras's (lr 0.001, ρ 0.9, ε 1e-7); the book's text model uses lr 0.01.
    public init(learningRate: Float = 0.001, rho: Float = 0.9, epsilon: Float = 1e-7) {
        self.learningRate = learningRate
        self.rho = rho
        self.epsilon = epsilon
    }

    /// One update of every parameter that has a gradient, in place (parameters without one are skipped).
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

    /// `rmsprop/velocity/i` (moving average of squared gradients of parameter i), each shaped like its parameter.
    public func stateTensors() -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        velocity.export(into: &d)
        return d
    }

    /// Restores ``stateTensors()`` and the step count; absent slots (parameters never updated) start at zero.
    /// - Throws: ``OptimizerError/shapeMismatch(name:expected:found:)`` for a slot shaped unlike its parameter.
    public func loadState(_ tensors: [String: Tensor], step: Int, parameters: [Tensor]) throws {
        try velocity.restore(tensors, parameters: parameters, required: false)
        self.step = step
    }
}
