import GenTensor

/// A layer that maps one tensor to one tensor and may behave differently in training
/// (dropout, batch normalisation): the building block of ``Sequential``.
public protocol Module: Layer {
    /// Applies the module. `training` selects batch statistics and active dropout.
    func callAsFunction(_ x: Tensor, training: Bool) -> Tensor
    /// Non-trainable state saved with checkpoints (batch-normalisation moving statistics), in a fixed
    /// order, each with a stable `name`. Empty by default.
    var stateTensors: [Tensor] { get }
}

extension Module {
    /// None: most modules keep no state besides their parameters.
    public var stateTensors: [Tensor] { [] }
}

/// A stack of modules applied in order (Keras `Sequential`, PyTorch `nn.Sequential`).
///
/// `parameters` and `stateTensors` are the concatenation of the modules' own, in order; parameter
/// names come from the modules (give each a distinct `name`).
public final class Sequential: Module {
    /// The modules, first applied first.
    public private(set) var modules: [Module]

    /// - Parameter modules: applied first to last.
    public init(_ modules: [Module]) { self.modules = modules }

    /// Appends a module at the end.
    public func append(_ module: Module) { modules.append(module) }

    /// Every module's parameters, in module order.
    public var parameters: [Tensor] { modules.flatMap(\.parameters) }
    /// Every module's state tensors, in module order.
    public var stateTensors: [Tensor] { modules.flatMap(\.stateTensors) }

    /// Applies the modules in order; the shapes are whatever they map.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor {
        modules.reduce(x) { $1($0, training: training) }
    }
}

/// A parameterless module from a closure, for activations and small reshapes:
/// `Lambda { x, _ in x.relu() }`.
public final class Lambda: Module {
    let body: (Tensor, Bool) -> Tensor
    /// - Parameter body: maps the input and the training flag to the output.
    public init(_ body: @escaping (Tensor, Bool) -> Tensor) { self.body = body }
    /// None.
    public var parameters: [Tensor] { [] }
    /// `body(x, training)`.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { body(x, training) }
}

extension Dense: Module {
    /// Same as ``callAsFunction(_:)``; `training` is ignored.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}
