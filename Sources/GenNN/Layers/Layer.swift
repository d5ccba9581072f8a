import GenTensor

/// Something with trainable parameters. Parameters are leaf tensors with `requiresGrad` set and a
/// stable `name` (used as the key in checkpoints), e.g. `"lstm_0/kernel"`.
public protocol Layer: AnyObject {
    /// Trainable parameters in a fixed order.
    var parameters: [Tensor] { get }
}

extension Layer {
    /// Total number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
}

/// Makes a named trainable parameter from an initial value.
func makeParameter(_ value: Tensor, name: String) -> Tensor {
    value.requiresGrad = true
    value.name = name
    return value
}
