import GenTensor

/// A long short-term memory layer (Keras `LSTM` semantics: gate order i, f, c, o; sigmoid
/// recurrent activation; tanh activation; Glorot-uniform kernel, orthogonal recurrent kernel,
/// zero bias with the forget-gate block set to 1 (`unit_forget_bias=True`, Jozefowicz et al. 2015)).
///
/// Runs the whole sequence through the fused op ``Tensor/lstm(inputProjection:recurrentKernel:bias:initialHidden:initialCell:)``.
public final class LSTM: Layer {
    /// Input kernel `W`, `[inputSize, 4·units]`.
    public let kernel: Tensor
    /// Recurrent kernel `U`, `[units, 4·units]`.
    public let recurrentKernel: Tensor
    /// Bias `[4·units]`.
    public let bias: Tensor
    /// Number of hidden units H.
    public let units: Int
    /// Input feature size (or vocabulary size for token input).
    public let inputSize: Int

    /// Keras initialisation: Glorot-uniform `W`, orthogonal `U`, bias zeros except 1 for the forget
    /// gate (`unit_forget_bias`).
    /// - Parameters:
    ///   - inputSize: features per time step (or vocabulary size for token input), positive.
    ///   - units: hidden units, positive.
    ///   - name: prefix of the parameter names.
    ///   - rng: draws the weights.
    public init(inputSize: Int, units: Int, name: String = "lstm", using rng: inout RandomGenerator) {
        precondition(inputSize > 0 && units > 0, "LSTM: sizes must be positive (\(inputSize), \(units))")
        self.inputSize = inputSize
        self.units = units
        kernel = makeParameter(Initializer.glorotUniform([inputSize, 4 * units], fanIn: inputSize, fanOut: 4 * units, using: &rng),
                               name: "\(name)/kernel")
        // Keras builds the 4 gate blocks of the recurrent kernel as one orthogonal [units, 4·units] matrix.
        recurrentKernel = makeParameter(Initializer.orthogonal(rows: units, cols: 4 * units, using: &rng),
                                        name: "\(name)/recurrent_kernel")
        var b = [Float](repeating: 0, count: 4 * units)
        for j in units..<(2 * units) { b[j] = 1 }
        bias = makeParameter(Tensor(shape: [4 * units], scalars: b), name: "\(name)/bias")
    }

    /// Kernel, recurrent kernel, bias.
    public var parameters: [Tensor] { [kernel, recurrentKernel, bias] }

    /// Runs on dense input `[batch, time, inputSize]`.
    /// - Parameter initialState: `(hidden, cell)`, each `[batch, units]`; zeros when `nil`.
    public func callAsFunction(_ x: Tensor, initialState: (hidden: Tensor, cell: Tensor)? = nil) -> LSTMResult {
        precondition(x.rank == 3 && x.shape[2] == inputSize, "LSTM: input \(x.shape) is not [B, T, \(inputSize)]")
        let b = x.shape[0], t = x.shape[1]
        let xp = Tensor.matmul(x.reshaped([b * t, inputSize]), kernel).reshaped([b, t, 4 * units])
        return Tensor.lstm(inputProjection: xp, recurrentKernel: recurrentKernel, bias: bias,
                           initialHidden: initialState?.hidden, initialCell: initialState?.cell)
    }

    /// Runs on one-hot token input given as ids: `tokens` is `[batch, time]` row-major with values
    /// in `0..<inputSize`. A one-hot vector times `W` is a row of `W`, so the input projection is a
    /// row gather, not a matrix product.
    public func callAsFunction(tokens: [Int32], batch: Int, steps: Int,
                               initialState: (hidden: Tensor, cell: Tensor)? = nil) -> LSTMResult {
        precondition(tokens.count == batch * steps, "LSTM: \(tokens.count) tokens for [\(batch), \(steps)]")
        return Tensor.lstm(tokens: tokens, batch: batch, steps: steps, inputKernel: kernel, recurrentKernel: recurrentKernel,
                           bias: bias, initialHidden: initialState?.hidden, initialCell: initialState?.cell)
    }
}
