import Foundation
import GenTensor
import GenNN

/// Hyperparameters of the convolutional VAE. Stored as JSON in checkpoints.
///
/// The default is the Keras/book model (F. Chollet, *Deep Learning with Python*, 2nd ed. §12.4,
/// 1st ed. §8.4; D. Kingma & M. Welling, "Auto-Encoding Variational Bayes", 2014) on 28×28×1.
public struct VAEModelConfig: Codable, Equatable {
    /// Side length S of the square images, a positive multiple of 4 (two stride-2 convolutions).
    public var imageSize: Int
    /// Image channels: 1 (gray) or 3 (RGB).
    public var channels: Int
    /// Dimension of the latent space, ≥ 1 (book: 2).
    public var latentDim: Int
    /// Filters of the two stride-2 encoder convolutions (book: 32, 64); the decoder mirrors them.
    public var filters: [Int]
    /// Units of the encoder's hidden Dense layer (book: 16).
    public var denseUnits: Int

    /// The book's model at the given size, channels and latent dimension.
    public init(imageSize: Int = 28, channels: Int = 1, latentDim: Int = 2, filters: [Int] = [32, 64], denseUnits: Int = 16) {
        self.imageSize = imageSize
        self.channels = channels
        self.latentDim = latentDim
        self.filters = filters
        self.denseUnits = denseUnits
    }

    /// Side of the encoder's last feature map (`S / 4`).
    public var featureSize: Int { imageSize / 4 }

    /// Memory a training step keeps per input image, in bytes: about 300 floats of activations,
    /// gradients and im2col scratch per pixel (both convolution stacks), an upper bound for a
    /// forward pass too.
    public var bytesPerImage: Double { Double(imageSize * imageSize) * 300 * 4 }

    /// Images per forward pass outside training (decoding pictures, evaluation, latent means), at
    /// most `limit`: as many as keep one pass near 512 MB (``bytesPerImage`` each), so that a 15×15
    /// manifold at `--image-size 1024` is decoded an image at a time instead of in one 30 GB pass.
    public func inferenceChunk(limit: Int) -> Int {
        max(1, min(limit, Int(512 * 1_048_576 / bytesPerImage)))
    }

    /// Checks ranges; messages name the command-line options.
    /// - Throws: ``StudioError/invalidOption(_:)``.
    public func validate() throws {
        if latentDim < 1 || latentDim > 4096 { throw StudioError.invalidOption("--latent-dim must be in 1...4096 (got \(latentDim))") }
        if imageSize < 4 || imageSize > 1024 || imageSize % 4 != 0 {
            throw StudioError.invalidOption("--image-size must be a multiple of 4 in 4...1024 (two stride-2 convolutions; got \(imageSize))")
        }
        if channels != 1 && channels != 3 { throw StudioError.invalidOption("--channels must be 1 or 3 (got \(channels))") }
        if filters.count != 2 || filters.contains(where: { $0 < 1 || $0 > 4096 }) {
            throw StudioError.invalidOption("the model needs two encoder filter counts in 1...4096 (got \(filters))")
        }
        if denseUnits < 1 || denseUnits > 1 << 16 { throw StudioError.invalidOption("dense units must be in 1...65536 (got \(denseUnits))") }
    }
}

/// The convolutional variational autoencoder of the book, NHWC throughout.
///
/// - Encoder: `Conv2D(f₀, 3×3, stride 2, same) → ReLU → Conv2D(f₁, 3×3, stride 2, same) → ReLU →
///   Flatten → Dense(16) → ReLU`, then two heads `Dense(latent)`: the posterior mean μ and log-variance.
/// - Decoder: `Dense((S/4)²·f₁) → ReLU → Reshape(S/4, S/4, f₁) → Conv2DTranspose(f₁, 3×3, stride 2, same)
///   → ReLU → Conv2DTranspose(f₀, 3×3, stride 2, same) → ReLU → Conv2DTranspose(C, 3×3, same)`, giving
///   logits; pixel probabilities are their sigmoid.
///
/// Initialisation is Keras's (Glorot-uniform kernels, zero biases); parameter names are stable
/// checkpoint keys (`encoder/conv_0/kernel`, ...).
public final class VAEModel {
    /// The configuration the model was built from.
    public let config: VAEModelConfig
    let conv0: Conv2D, conv1: Conv2D, hidden: Dense, meanHead: Dense, logVarianceHead: Dense
    let decoderDense: Dense, deconv0: Conv2DTranspose, deconv1: Conv2DTranspose, output: Conv2DTranspose

    /// Builds a freshly initialised model from `rng`.
    /// - Precondition: `config.validate()` passes (callers validate user input first).
    public init(config: VAEModelConfig, using rng: inout RandomGenerator) {
        self.config = config
        let f0 = config.filters[0], f1 = config.filters[1], c = config.channels, d = config.featureSize
        conv0 = Conv2D(inputChannels: c, filters: f0, kernelSize: (3, 3), strides: (2, 2), padding: .same,
                       name: "encoder/conv_0", using: &rng)
        conv1 = Conv2D(inputChannels: f0, filters: f1, kernelSize: (3, 3), strides: (2, 2), padding: .same,
                       name: "encoder/conv_1", using: &rng)
        hidden = Dense(inputSize: d * d * f1, units: config.denseUnits, name: "encoder/dense", using: &rng)
        meanHead = Dense(inputSize: config.denseUnits, units: config.latentDim, name: "encoder/z_mean", using: &rng)
        logVarianceHead = Dense(inputSize: config.denseUnits, units: config.latentDim, name: "encoder/z_log_var", using: &rng)
        decoderDense = Dense(inputSize: config.latentDim, units: d * d * f1, name: "decoder/dense", using: &rng)
        deconv0 = Conv2DTranspose(inputChannels: f1, filters: f1, kernelSize: (3, 3), strides: (2, 2), padding: .same,
                                  name: "decoder/deconv_0", using: &rng)
        deconv1 = Conv2DTranspose(inputChannels: f1, filters: f0, kernelSize: (3, 3), strides: (2, 2), padding: .same,
                                  name: "decoder/deconv_1", using: &rng)
        output = Conv2DTranspose(inputChannels: f0, filters: c, kernelSize: (3, 3), strides: (1, 1), padding: .same,
                                 name: "decoder/output", using: &rng)
    }

    /// Encoder parameters, in a fixed order.
    public var encoderParameters: [Tensor] {
        conv0.parameters + conv1.parameters + hidden.parameters + meanHead.parameters + logVarianceHead.parameters
    }
    /// Decoder parameters, in a fixed order.
    public var decoderParameters: [Tensor] {
        decoderDense.parameters + deconv0.parameters + deconv1.parameters + output.parameters
    }
    /// All trainable parameters (encoder, then decoder).
    public var parameters: [Tensor] { encoderParameters + decoderParameters }

    /// The posterior q(z|x): mean and log-variance.
    /// - Parameter x: `[N, S, S, C]` images in [0, 1].
    /// - Returns: two `[N, latentDim]` tensors.
    public func encode(_ x: Tensor) -> (mean: Tensor, logVariance: Tensor) { encode(x, with: parameters) }

    /// ``encode(_:)`` with explicit parameter tensors in the order of ``parameters`` (the batch
    /// partitions of a training step use views that share the weights' storage).
    func encode(_ x: Tensor, with p: [Tensor]) -> (mean: Tensor, logVariance: Tensor) {
        precondition(x.rank == 4 && x.shape[1] == config.imageSize && x.shape[2] == config.imageSize && x.shape[3] == config.channels,
                     "VAEModel.encode: input \(x.shape) is not [N, \(config.imageSize), \(config.imageSize), \(config.channels)]")
        let n = x.shape[0]
        var h = Tensor.conv2d(x, kernel: p[0], bias: p[1], strides: (2, 2), padding: .same, fusedReLU: true)
        h = Tensor.conv2d(h, kernel: p[2], bias: p[3], strides: (2, 2), padding: .same, fusedReLU: true).reshaped([n, -1])
        let e = (Tensor.matmul(h, p[4]) + p[5]).relu()
        return (Tensor.matmul(e, p[6]) + p[7], Tensor.matmul(e, p[8]) + p[9])
    }

    /// Decoder logits.
    /// - Parameter z: `[N, latentDim]`.
    /// - Returns: `[N, S, S, C]` logits (pixel probabilities are their sigmoid).
    public func decodeLogits(_ z: Tensor) -> Tensor { decodeLogits(z, with: parameters) }

    /// ``decodeLogits(_:)`` with explicit parameter tensors in the order of ``parameters``.
    func decodeLogits(_ z: Tensor, with p: [Tensor]) -> Tensor {
        precondition(z.rank == 2 && z.shape[1] == config.latentDim, "VAEModel.decodeLogits: z \(z.shape) is not [N, \(config.latentDim)]")
        let d = config.featureSize
        var h = (Tensor.matmul(z, p[10]) + p[11]).relu().reshaped([z.shape[0], d, d, config.filters[1]])
        h = Tensor.conv2dTranspose(h, kernel: p[12], bias: p[13], strides: (2, 2), padding: .same, fusedReLU: true)
        h = Tensor.conv2dTranspose(h, kernel: p[14], bias: p[15], strides: (2, 2), padding: .same, fusedReLU: true)
        return Tensor.conv2dTranspose(h, kernel: p[16], bias: p[17], strides: (1, 1), padding: .same)
    }

    /// Decoded images: the sigmoid of ``decodeLogits(_:)``, `[N, S, S, C]` in [0, 1].
    public func decode(_ z: Tensor) -> Tensor { decodeLogits(z).sigmoid() }

    /// The reparameterisation trick (Kingma & Welling 2014, §2.4): `z = μ + exp(½·logvar)·ε`,
    /// ε ~ N(0, I) (the book's first edition wrote `exp(logvar)`, the variance, by mistake).
    public static func reparameterize(mean: Tensor, logVariance: Tensor, noise eps: Tensor) -> Tensor {
        mean + (logVariance * 0.5).exp() * eps
    }

    /// Per-batch loss terms for `x`, drawing one z per image from `rng` (ε for all images is drawn
    /// first, row by row, so the stream does not depend on how the batch is partitioned).
    /// - Returns: `reconstruction`: binary cross-entropy summed over pixels and over the batch (scalar);
    ///   `kl`: KL(q(z|x) ‖ N(0, I)) summed over latent dimensions and the batch (scalar).
    public func lossTerms(_ x: Tensor, using rng: inout RandomGenerator) -> (reconstruction: Tensor, kl: Tensor) {
        lossTerms(x, noise: Tensor.normal([x.shape[0], config.latentDim], using: &rng), with: parameters)
    }

    /// ``lossTerms(_:using:)`` with given noise `[N, latentDim]` and parameter tensors.
    func lossTerms(_ x: Tensor, noise: Tensor, with p: [Tensor]) -> (reconstruction: Tensor, kl: Tensor) {
        let (mean, logVariance) = encode(x, with: p)
        let z = VAEModel.reparameterize(mean: mean, logVariance: logVariance, noise: noise)
        let logits = decodeLogits(z, with: p)
        let rec = Tensor.binaryCrossEntropy(logits: logits, targets: x, reduction: .sum)
        let kl = Tensor.klDivergenceDiagonalGaussian(mean: mean, logVariance: logVariance).sum()
        return (rec, kl)
    }

    /// Number of batch partitions a step of `batch` images uses: one per thread (``GenTensor/Threads``),
    /// each of at least 8 images.
    public static func partitions(batch: Int) -> Int { max(1, min(Threads.count, batch / 8)) }

    /// Forward and backward pass of one training step, data-parallel: the batch is split into
    /// `parts` contiguous partitions, each run on its own thread with single-threaded kernels on
    /// views of the weights, and their gradients are summed in partition order into the weights'
    /// `.grad` (deterministic for a given `parts`). The loss is `scale · (reconstruction + beta · KL)`.
    ///
    /// - Parameters:
    ///   - x: `[N, S, S, C]` images; noise: `[N, latentDim]` ε.
    /// - Returns: the summed reconstruction and KL terms over the batch (nats), before `scale`.
    public func trainingGradients(_ x: Tensor, noise: Tensor, beta: Float, scale: Float, parts requested: Int) -> (reconstruction: Double, kl: Double) {
        let n = x.shape[0]
        let parts = max(1, min(requested, n))
        let params = parameters
        if parts == 1 {
            let (rec, kl) = lossTerms(x, noise: noise, with: params)
            ((rec + kl * beta) * scale).backward()
            return (Double(rec.scalar), Double(kl.scalar))
        }
        let results = (0..<parts).map { _ in PartitionResult() }
        parallelPartitions(n, parts: parts) { k, range in
            let views = params.map { Tensor(shape: $0.shape, storage: $0.storage, requiresGrad: true) }
            let (rec, kl) = lossTerms(x.slice(axis: 0, range: range), noise: noise.slice(axis: 0, range: range), with: views)
            ((rec + kl * beta) * scale).backward()
            results[k].reconstruction = Double(rec.scalar)
            results[k].kl = Double(kl.scalar)
            results[k].grads = views.map(\.grad)
        }
        for (i, p) in params.enumerated() {
            p.accumulateGrad { g in
                for k in 0..<parts {
                    guard let gk = results[k].grads[i] else { continue }
                    let src = gk.storage.base
                    for j in 0..<p.count { g[j] += src[j] }
                }
            }
        }
        return (results.reduce(0) { $0 + $1.reconstruction }, results.reduce(0) { $0 + $1.kl })
    }

    /// Negative-ELBO terms of `x` without a graph, data-parallel like ``trainingGradients(_:noise:beta:scale:parts:)``.
    /// - Returns: summed reconstruction and KL terms over the images (nats).
    public func evaluationTerms(_ x: Tensor, noise: Tensor, parts requested: Int) -> (reconstruction: Double, kl: Double) {
        let n = x.shape[0]
        let parts = max(1, min(requested, n))
        let results = (0..<parts).map { _ in PartitionResult() }
        withNoGrad {
            parallelPartitions(n, parts: parts) { k, range in
                let (rec, kl) = lossTerms(x.slice(axis: 0, range: range), noise: noise.slice(axis: 0, range: range), with: parameters)
                results[k].reconstruction = Double(rec.scalar)
                results[k].kl = Double(kl.scalar)
            }
        }
        return (results.reduce(0) { $0 + $1.reconstruction }, results.reduce(0) { $0 + $1.kl })
    }
}

/// What one batch partition of a step computed (each thread writes only its own).
final class PartitionResult {
    var reconstruction = 0.0
    var kl = 0.0
    var grads: [Tensor?] = []
}
