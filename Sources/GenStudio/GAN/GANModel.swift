import Foundation
import GenTensor
import GenNN

/// The shape of a DCGAN: image size and channels, latent size, widths. Stored in checkpoints
/// (``Checkpoint/Key/config``) so `gen gan sample` rebuilds the same networks.
///
/// The defaults are the book's model (F. Chollet, *Deep Learning with Python*, 1st ed., §8.5,
/// itself after Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
/// Convolutional Generative Adversarial Networks", 2016) for 32×32 RGB images with a 32-dimensional
/// latent space.
public struct GANModelConfig: Codable, Equatable {
    /// Side length S of the square images, even, in 8...256 (book: 32).
    public var imageSize = 32
    /// 1 (gray) or 3 (RGB) (book: 3).
    public var channels = 3
    /// Dimension of the latent space (book: 32).
    public var latentDim = 32
    /// Filters of the generator's convolutions (book: 256); its Dense layer feeds `generatorFilters / 2` maps.
    public var generatorFilters = 256
    /// Filters of the discriminator's convolutions (book: 128).
    public var discriminatorFilters = 128
    /// Dropout rate before the discriminator's Dense layer, in [0, 1) (book: 0.4).
    public var dropout: Float = 0.4
    /// Slope of every LeakyReLU for negative inputs (the DCGAN paper's 0.2; Keras's default, which
    /// the book relies on, is 0.3).
    public var leakySlope: Float = 0.2

    /// The defaults: the book's model and training.
    public init() {}

    /// Checks ranges (the messages name the command-line options).
    /// - Throws: ``StudioError/invalidOption(_:)``.
    public func validate() throws {
        func bad(_ m: String) -> StudioError { .invalidOption(m) }
        if !(8...256).contains(imageSize) || imageSize % 2 != 0 {
            throw bad("--image-size must be an even number in 8...256 (got \(imageSize))")
        }
        if channels != 1 && channels != 3 { throw bad("--channels must be 1 or 3 (got \(channels))") }
        if !(1...4096).contains(latentDim) { throw bad("--latent-dim must be in 1...4096 (got \(latentDim))") }
        if !(2...4096).contains(generatorFilters) || generatorFilters % 2 != 0 {
            throw bad("--generator-filters must be an even number in 2...4096 (got \(generatorFilters))")
        }
        if !(1...4096).contains(discriminatorFilters) {
            throw bad("--discriminator-filters must be in 1...4096 (got \(discriminatorFilters))")
        }
        if !(dropout >= 0 && dropout < 1) { throw bad("dropout must be in [0, 1) (got \(dropout))") }
        if !(leakySlope >= 0 && leakySlope < 1) { throw bad("LeakyReLU slope must be in [0, 1) (got \(leakySlope))") }
    }

    /// Up-sampling stages of the generator (each a stride-2 transposed convolution): 1 up to 32 pixels
    /// (the book's single stage from 16×16), then one more per doubling while the starting grid
    /// stays at least 16×16 (64 → 2 stages from 16×16, 128 → 3).
    public var upsamplingStages: Int {
        var u = 1
        while imageSize % (1 << (u + 1)) == 0 && imageSize / (1 << (u + 1)) >= 16 { u += 1 }
        return u
    }

    /// Side of the generator's first feature map: `imageSize / 2^upsamplingStages` (book: 16).
    public var startSize: Int { imageSize / (1 << upsamplingStages) }

    /// Stride-2 convolutions of the discriminator after its first 3×3 convolution: the book's 3,
    /// fewer for images too small to take them (a 4×4 stride-2 valid convolution needs 4 pixels).
    public var discriminatorStages: Int { discriminatorSizes.count - 1 }

    /// Feature-map sides through the discriminator: after the 3×3 convolution, then after each
    /// stride-2 stage (book, 32: 30, 14, 6, 2).
    public var discriminatorSizes: [Int] {
        var s = imageSize - 2
        var sizes = [s]
        while sizes.count < 4 && s >= 4 {
            s = (s - 4) / 2 + 1
            sizes.append(s)
        }
        return sizes
    }
}

/// The DCGAN generator: `z [N, latent] → images [N, S, S, C]` in [-1, 1].
///
/// Dense `latent → s0·s0·(F/2)`, LeakyReLU, reshape to `[s0, s0, F/2]`; Conv2D F 5×5 same,
/// LeakyReLU; per up-sampling stage Conv2DTranspose F 4×4 stride 2 same, LeakyReLU; two Conv2D F
/// 5×5 same, LeakyReLU; Conv2D C 7×7 same, tanh (Chollet §8.5 with F = 256, s0 = 16, one stage).
public final class GANGenerator: Layer {
    /// The model's shape.
    public let config: GANModelConfig
    let dense: Dense
    let convIn: Conv2D
    let ups: [Conv2DTranspose]
    let convs: [Conv2D]
    let convOut: Conv2D

    /// Glorot-uniform kernels, zero biases (Keras defaults), drawn from `rng` in layer order.
    public init(config: GANModelConfig, using rng: inout RandomGenerator) {
        self.config = config
        let f = config.generatorFilters, s0 = config.startSize
        dense = Dense(inputSize: config.latentDim, units: s0 * s0 * (f / 2), name: "generator/dense", using: &rng)
        convIn = Conv2D(inputChannels: f / 2, filters: f, kernelSize: (5, 5), padding: .same, name: "generator/conv_in", using: &rng)
        ups = (0..<config.upsamplingStages).map { i in
            Conv2DTranspose(inputChannels: f, filters: f, kernelSize: (4, 4), strides: (2, 2), padding: .same,
                            name: "generator/up_\(i)", using: &rng)
        }
        convs = (0..<2).map { i in
            Conv2D(inputChannels: f, filters: f, kernelSize: (5, 5), padding: .same, name: "generator/conv_\(i)", using: &rng)
        }
        convOut = Conv2D(inputChannels: f, filters: config.channels, kernelSize: (7, 7), padding: .same,
                         name: "generator/conv_out", using: &rng)
    }

    /// Every weight, in a fixed order (names start with `generator/`).
    public var parameters: [Tensor] {
        dense.parameters + convIn.parameters + ups.flatMap(\.parameters) + convs.flatMap(\.parameters) + convOut.parameters
    }

    /// Images `[N, S, S, C]` in [-1, 1] for latent points `z` `[N, latentDim]`.
    public func callAsFunction(_ z: Tensor) -> Tensor {
        precondition(z.rank == 2 && z.shape[1] == config.latentDim, "GANGenerator: z \(z.shape) is not [N, \(config.latentDim)]")
        let a = config.leakySlope, s0 = config.startSize
        var x = dense(z).leakyRelu(alpha: a).reshaped([z.shape[0], s0, s0, config.generatorFilters / 2])
        x = convIn(x).leakyRelu(alpha: a)
        for u in ups { x = u(x).leakyRelu(alpha: a) }
        for c in convs { x = c(x).leakyRelu(alpha: a) }
        return convOut(x).tanh()
    }
}

/// The DCGAN discriminator: `images [N, S, S, C] → logits [N, 1]` (the sigmoid is folded into the
/// loss, ``Tensor/binaryCrossEntropy(logits:targets:reduction:)``).
///
/// Conv2D F 3×3 valid, LeakyReLU; up to three Conv2D F 4×4 stride 2 valid, LeakyReLU; Flatten;
/// Dropout; Dense 1 (Chollet §8.5 with F = 128).
public final class GANDiscriminator: Layer {
    /// The model's shape.
    public let config: GANModelConfig
    let convIn: Conv2D
    let convs: [Conv2D]
    let dense: Dense

    /// Glorot-uniform kernels, zero biases, drawn from `rng` in layer order.
    public init(config: GANModelConfig, using rng: inout RandomGenerator) {
        self.config = config
        let f = config.discriminatorFilters
        convIn = Conv2D(inputChannels: config.channels, filters: f, kernelSize: (3, 3), name: "discriminator/conv_in", using: &rng)
        convs = (0..<config.discriminatorStages).map { i in
            Conv2D(inputChannels: f, filters: f, kernelSize: (4, 4), strides: (2, 2), name: "discriminator/conv_\(i)", using: &rng)
        }
        let last = config.discriminatorSizes.last ?? 1
        dense = Dense(inputSize: last * last * f, units: 1, name: "discriminator/dense", using: &rng)
    }

    /// Every weight, in a fixed order (names start with `discriminator/`).
    public var parameters: [Tensor] { convIn.parameters + convs.flatMap(\.parameters) + dense.parameters }

    /// Logits `[N, 1]` (positive: "generated" in the book's labelling) for images `[N, S, S, C]` in [-1, 1].
    /// Dropout is active when `training`, drawing from `rng`.
    public func callAsFunction(_ x: Tensor, training: Bool, rng: inout RandomGenerator) -> Tensor {
        precondition(x.rank == 4 && Array(x.shape.dropFirst()) == [config.imageSize, config.imageSize, config.channels],
                     "GANDiscriminator: input \(x.shape) is not [N, \(config.imageSize), \(config.imageSize), \(config.channels)]")
        let a = config.leakySlope
        var h = convIn(x).leakyRelu(alpha: a)
        for c in convs { h = c(h).leakyRelu(alpha: a) }
        h = h.flattened().dropout(rate: config.dropout, training: training, using: &rng)
        return dense(h)
    }
}
