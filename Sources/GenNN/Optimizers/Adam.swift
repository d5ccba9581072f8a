import Foundation
import GenTensor

/// Adam (Kingma & Ba, 2015, Algorithm 1), PyTorch `torch.optim.Adam` semantics:
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `w ← w − lr · m̂ / (√v̂ + ε)` with bias-corrected
/// `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`. Defaults β₁ = 0.9, β₂ = 0.999, ε = 1e-7 (Keras's ε).
public final class Adam: Optimizer {
    /// `"adam"`.
    public let name = "adam"
    /// Step size, > 0; may be changed between updates (learning-rate schedules).
    public var learningRate: Float
    /// Exponential decay of the first moment, in [0, 1) (the DCGAN paper uses 0.5).
    public let beta1: Float
    /// Exponential decay of the second moment, in [0, 1).
    public let beta2: Float
    /// ε > 0.
    public let epsilon: Float
    /// Updates applied so far (restored with the state).
    public private(set) var step = 0
    private let firstMoment = SlotStore(prefix: "adam/m")
    private let secondMoment = SlotStore(prefix: "adam/v")

    /// Defaults: PyTorch's β₁, β₂ and learning rate, Keras's ε (1e-7).
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    /// One update of every parameter that has a gradient, in place (parameters without one are skipped).
    public func update(_ parameters: [Tensor]) {
        step += 1
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon
        let c1 = Float(1 - Foundation.pow(Double(b1), Double(step)))
        let c2 = Float(1 - Foundation.pow(Double(b2), Double(step)))
        for (i, p) in parameters.enumerated() where p.grad != nil {
            _ = firstMoment.slot(i, like: p); _ = secondMoment.slot(i, like: p)
        }
        forEachParameter(parameters) { i, w, g, r in
            let m = firstMoment.slots[i]!.storage.base, v = secondMoment.slots[i]!.storage.base
            for j in r {
                let gj = g[j]
                m[j] = b1 * m[j] + (1 - b1) * gj
                v[j] = b2 * v[j] + (1 - b2) * gj * gj
                w[j] -= lr * (m[j] / c1) / ((v[j] / c2).squareRoot() + eps)
            }
        }
    }

    /// `adam/m/i` and `adam/v/i` (first and second moments of parameter i), each shaped like its parameter.
    public func stateTensors() -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        firstMoment.export(into: &d)
        secondMoment.export(into: &d)
        return d
    }

    /// Restores ``stateTensors()`` and the step count; absent slots (parameters never updated) start at zero.
    /// - Throws: ``OptimizerError/shapeMismatch(name:expected:found:)`` for a slot shaped unlike its parameter.
    public func loadState(_ tensors: [String: Tensor], step: Int, parameters: [Tensor]) throws {
        try firstMoment.restore(tensors, parameters: parameters, required: false)
        try secondMoment.restore(tensors, parameters: parameters, required: false)
        self.step = step
    }
}

/// Builds an optimizer by name (`sgd`, `rmsprop`, `adam`).
/// - Throws: ``OptimizerError/unknown(_:)`` for any other name.
public func makeOptimizer(named name: String, learningRate: Float) throws -> Optimizer {
    switch name.lowercased() {
    case "sgd": return SGD(learningRate: learningRate, momentum: 0.9)
    case "rmsprop": return RMSprop(learningRate: learningRate)
    case "adam": return Adam(learningRate: learningRate)
    default: throw OptimizerError.unknown(name)
    }
}
