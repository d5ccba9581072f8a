import GenTensor

/// A fully connected layer `y = x · W + b` (Keras `Dense`, no activation: apply one to the result).
///
/// Input `[batch, inputSize]` or `[batch, time, inputSize]`; output the same with `units` last.
/// Kernel `W` is `[inputSize, units]` (Glorot-uniform), bias `b` is `[units]` (zeros).
public final class Dense: Layer {
    /// `[inputSize, units]`.
    public let kernel: Tensor
    /// `[units]`, or `nil` without bias.
    public let bias: Tensor?

    /// - Parameters:
    ///   - name: prefix for parameter names (`name/kernel`, `name/bias`).
    public init(inputSize: Int, units: Int, useBias: Bool = true, name: String = "dense",
                using rng: inout RandomGenerator) {
        precondition(inputSize > 0 && units > 0, "Dense: sizes must be positive (\(inputSize), \(units))")
        kernel = makeParameter(Initializer.glorotUniform([inputSize, units], fanIn: inputSize, fanOut: units, using: &rng),
                               name: "\(name)/kernel")
        bias = useBias ? makeParameter(Tensor(zeros: [units]), name: "\(name)/bias") : nil
    }

    /// Trainable parameters: kernel, then bias.
    public var parameters: [Tensor] { [kernel] + (bias.map { [$0] } ?? []) }

    /// Applies the layer to `[..., inputSize]` (rank 2 or more), returning `[..., units]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let inSize = kernel.shape[0], units = kernel.shape[1]
        precondition(x.shape.last == inSize, "Dense: input \(x.shape) does not end in \(inSize)")
        let flat = x.rank == 2 ? x : x.reshaped([-1, inSize])
        var y = Tensor.matmul(flat, kernel)
        if let bias { y = y + bias }
        return x.rank == 2 ? y : y.reshaped(Array(x.shape.dropLast()) + [units])
    }
}

/// A lookup table `[vocabularySize, dimension]` mapping token ids to vectors (Keras `Embedding`,
/// uniform(−0.05, 0.05) initialisation). The gradient is a scatter-add into the rows used.
public final class Embedding: Layer {
    /// `[vocabularySize, dimension]`.
    public let table: Tensor

    /// - Parameters:
    ///   - vocabularySize: number of token ids, positive.
    ///   - dimension: length of each vector, positive.
    ///   - name: prefix of the parameter name (`name/embeddings`).
    ///   - rng: draws the uniform(−0.05, 0.05) table.
    public init(vocabularySize: Int, dimension: Int, name: String = "embedding", using rng: inout RandomGenerator) {
        precondition(vocabularySize > 0 && dimension > 0, "Embedding: sizes must be positive")
        table = makeParameter(Tensor.uniform([vocabularySize, dimension], low: -0.05, high: 0.05, using: &rng),
                              name: "\(name)/embeddings")
    }

    /// The table.
    public var parameters: [Tensor] { [table] }

    /// Looks up `tokens` (values in `0..<vocabularySize`) arranged as `shape`; returns `shape + [dimension]`.
    public func callAsFunction(_ tokens: [Int32], shape: [Int]) -> Tensor {
        Tensor.gather(table, indices: tokens, indexShape: shape)
    }
}
