import GenTensor

/// Stochastic gradient descent with optional (Nesterov) momentum, PyTorch `torch.optim.SGD` semantics:
/// `v ← μ·v + g`, `w ← w − lr·v` (Nesterov: `w ← w − lr·(g + μ·v)`).
public final class SGD: Optimizer {
    public let name = "sgd"
    public var learningRate: Float
    /// Momentum μ in [0, 1); 0 disables it.
    public let momentum: Float
    /// Nesterov momentum (Sutskever et al., 2013).
    public let nesterov: Bool
    public private(set) var step = 0
    private let velocity = SlotStore(prefix: "sgd/velocity")

    public init(learningRate: Float = 0.01, momentum: Float = 0, nesterov: Bool = false) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
    }

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
