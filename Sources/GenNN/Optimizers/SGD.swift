import GenTensor

/// Stochastic gradient descent with optional (Nesterov) momentum, PyTorch `torch.optim.SGD` semantics:
/// `v ← μ·v + g`, `w ← w − lr·v` (Nesterov: `w ← w − lr·(g + μ·v)`).
public final class SGD: Optimizer {
    /// `"sgd"`.
    public let name = "sgd"
    /// Step size, > 0; may be changed between updates (learning-rate schedules).
    public var learningRate: Float
    /// Momentum μ in [0, 1); 0 disables it.
    public let momentum: Float
    /// Nesterov momentum (Sutskever et al., 2013).
    public let nesterov: Bool
    /// Updates applied so far (restored with the state).
    public private(set) var step = 0
    private let velocity = SlotStore(prefix: "sgd/velocity")

    /// Defaults: lr 0.01, no momentum.
    public init(learningRate: Float = 0.01, momentum: Float = 0, nesterov: Bool = false) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
    }

    /// One update of every parameter that has a gradient, in place (parameters without one are skipped).
    public func update(_ parameters: [Tensor]) {
        step += 1
        let lr = learningRate, mu = momentum, nesterov = self.nesterov
        for (i, p) in parameters.enumerated() where p.grad != nil && mu != 0 { _ = velocity.slot(i, like: p) }
        forEachParameter(parameters) { i, w, g, r in
            if mu == 0 {
                for j in r { w[j] -= lr * g[j] }
            } else {
                let v = velocity.slots[i]!.storage.base
                for j in r {
                    v[j] = mu * v[j] + g[j]
                    w[j] -= lr * (nesterov ? g[j] + mu * v[j] : v[j])
                }
            }
        }
    }

    /// `sgd/velocity/i` (momentum buffer of parameter i; none without momentum), each shaped like its parameter.
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
