import GenTensor

/// Batch normalisation over the last (channel) axis (Ioffe & Szegedy, 2015): Keras
/// `BatchNormalization(axis=-1)`, or PyTorch `BatchNorm2d`/`BatchNorm1d` with `pytorchDefaults`.
///
/// Training (`training: true`) normalises with the batch mean and biased variance and then updates
/// the moving statistics; inference uses the moving statistics. The update follows the convention
/// chosen at construction:
/// - Keras (default): `moving = momentum·moving + (1 − momentum)·batch`, momentum 0.99, ε 1e-3,
///   moving variance from the **biased** batch variance;
/// - PyTorch (`pytorchDefaults: true`): `running = (1 − momentum)·running + momentum·batch`,
///   momentum 0.1, ε 1e-5, running variance from the **unbiased** batch variance.
///
/// Parameters `name/gamma` (ones) and `name/beta` (zeros); state `name/moving_mean` (zeros) and
/// `name/moving_variance` (ones), exposed through ``stateTensors`` for checkpoints.
public final class BatchNormalization: Module {
    /// `[C]` scale, trainable.
    public let gamma: Tensor
    /// `[C]` shift, trainable.
    public let beta: Tensor
    /// `[C]` moving mean (not trainable; updated in place by training calls).
    public let movingMean: Tensor
    /// `[C]` moving variance (not trainable).
    public let movingVariance: Tensor
    /// Momentum in the convention of ``pytorchConvention``.
    public let momentum: Float
    /// Added to the variance before the square root, positive (Keras 0.001, PyTorch 1e-5).
    public let epsilon: Float
    /// Whether `momentum` weights the new batch (PyTorch) and the running variance is unbiased.
    public let pytorchConvention: Bool

    /// - Parameters:
    ///   - channels: size of the last axis.
    ///   - momentum: defaults to 0.99 (Keras) or 0.1 (PyTorch, `pytorchDefaults`).
    ///   - epsilon: defaults to 1e-3 (Keras) or 1e-5 (PyTorch).
    ///   - pytorchDefaults: use PyTorch's defaults and update convention.
    public init(channels: Int, momentum: Float? = nil, epsilon: Float? = nil, pytorchDefaults: Bool = false,
                name: String = "batch_normalization") {
        precondition(channels > 0, "BatchNormalization: channels \(channels) must be positive")
        self.momentum = momentum ?? (pytorchDefaults ? 0.1 : 0.99)
        self.epsilon = epsilon ?? (pytorchDefaults ? 1e-5 : 1e-3)
        precondition(self.momentum >= 0 && self.momentum <= 1 && self.epsilon > 0,
                     "BatchNormalization: momentum \(self.momentum) must be in [0, 1] and epsilon \(self.epsilon) positive")
        pytorchConvention = pytorchDefaults
        gamma = makeParameter(Tensor(repeating: 1, shape: [channels]), name: "\(name)/gamma")
        beta = makeParameter(Tensor(zeros: [channels]), name: "\(name)/beta")
        movingMean = Tensor(zeros: [channels])
        movingMean.name = "\(name)/moving_mean"
        movingVariance = Tensor(repeating: 1, shape: [channels])
        movingVariance.name = "\(name)/moving_variance"
    }

    /// Gamma, then beta.
    public var parameters: [Tensor] { [gamma, beta] }
    /// Moving mean, then moving variance.
    public var stateTensors: [Tensor] { [movingMean, movingVariance] }

    /// Normalises `x` `[..., C]`. With `training`, uses batch statistics and updates the moving ones.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor {
        guard training else {
            return Tensor.batchNormalization(x, gamma: gamma, beta: beta, mean: movingMean, variance: movingVariance,
                                             epsilon: epsilon)
        }
        let r = Tensor.batchNormalization(x, gamma: gamma, beta: beta, epsilon: epsilon)
        let newWeight = pytorchConvention ? momentum : 1 - momentum
        let batchVariance = pytorchConvention ? r.unbiasedVariance : r.variance
        for (state, batch) in [(movingMean, r.mean), (movingVariance, batchVariance)] {
            let b = batch.scalars
            state.withUnsafeMutableBufferPointer { s in
                for j in s.indices { s[j] = (1 - newWeight) * s[j] + newWeight * b[j] }
            }
        }
        return r.output
    }
}
