import Foundation
import GenTensor
import GenNN

/// Losses of one GAN step, in nats (natural-log binary cross-entropy, as Keras and PyTorch report).
public struct GANStepLosses: Equatable, Codable {
    /// The discriminator's mean loss on the real half of its batch.
    public var discriminatorReal: Double
    /// The discriminator's mean loss on the generated half.
    public var discriminatorFake: Double
    /// The discriminator's loss, the mean over both halves (what the book's `d_loss` prints).
    public var discriminator: Double { (discriminatorReal + discriminatorFake) / 2 }
    /// The adversarial (generator) loss: the discriminator's loss on fresh generated images labelled real.
    public var generator: Double
    /// The discriminator's loss above the smallest value its noisy targets allow (the targets'
    /// mean binary entropy): the KL divergence from targets to predictions, ≥ 0. Near 0 the
    /// discriminator separates real from generated perfectly and the generator learns nothing.
    public var discriminatorExcess: Double
}

/// Why a step was refused: something became non-finite. Nothing was applied to the weights after
/// the check that failed.
public enum GANError: Error, CustomStringConvertible, LocalizedError {
    /// A loss, a gradient or updated weights became NaN or infinite, or a loss exceeded 10⁶ nats
    /// (diverged) (`what` says which) at `step`.
    case nonFinite(step: Int, what: String, lastCheckpoint: String?)

    /// The message, naming the step, what failed and the last good checkpoint.
    public var description: String {
        switch self {
        case let .nonFinite(step, what, c):
            return "the \(what) became non-finite (NaN, infinity, or a loss above 10^6: diverged) at step \(step); training stopped, no grid was written for it"
                + (c.map { ", the last good checkpoint is \($0)" } ?? ", no checkpoint had been written yet")
                + " (try lower learning rates, or --clip-value)"
        }
    }

    /// Same as ``description``.
    public var errorDescription: String? { description }
}

/// The settings one step needs (a subset of ``GANTrainingConfig``).
struct GANStepSettings {
    var labelNoise: Float
    var labelSmoothing: Float
    var clipValue: Float?
    var dLearningRate: Float
    var gLearningRate: Float
    var learningRateDecay: Float
}

/// One training step of the book's DCGAN (Chollet §8.5), shared by the trainer and the benchmark:
///
/// 1. Discriminator: generate a batch from fresh noise (no graph), concatenate it with the real
///    batch, targets 1 for generated and 0 for real (the book's labelling) with label noise, one
///    optimizer step on the mean binary cross-entropy.
/// 2. Adversarial step: generate from fresh noise, run the (frozen) discriminator with the
///    misleading target 0 ("real") for every image, one optimizer step on the generator.
///
/// Label noise moves each target towards the middle by `labelNoise·U(0,1)` (the book adds it to
/// both labels; with logits a target above 1 would make the loss unbounded below, so generated
/// targets move down instead of up). One-sided label smoothing (Salimans et al., 2016) moves the
/// real targets to `labelSmoothing`. Gradients are clipped elementwise to ±`clipValue` (Keras
/// `clipvalue`, the book uses 1.0) and the learning rates decay as Keras's
/// `lr / (1 + decay·iterations)` (book: 1e-8).
final class GANStepper {
    let generator: GANGenerator
    let discriminator: GANDiscriminator
    let dOptimizer: Optimizer
    let gOptimizer: Optimizer
    let settings: GANStepSettings
    let dParams: [Tensor]
    let gParams: [Tensor]
    /// Losses above this many nats count as diverged (non-finite).
    static let divergedLoss = 1e6

    init(generator: GANGenerator, discriminator: GANDiscriminator, dOptimizer: Optimizer, gOptimizer: Optimizer,
         settings: GANStepSettings) {
        self.generator = generator
        self.discriminator = discriminator
        self.dOptimizer = dOptimizer
        self.gOptimizer = gOptimizer
        self.settings = settings
        dParams = discriminator.parameters
        gParams = generator.parameters
    }

    /// One step on `real` (`[B, S, S, C]` in [-1, 1]); `step` is the step's number (1-based) for messages.
    /// - Throws: ``GANError/nonFinite(step:what:lastCheckpoint:)`` (with `lastCheckpoint` nil: the caller fills it in).
    func step(real: Tensor, step: Int, rng: inout RandomGenerator) throws -> GANStepLosses {
        let b = real.shape[0], latent = generator.config.latentDim

        // 1. Discriminator on generated (label 1) + real (label 0) images.
        let z1 = Tensor.normal([b, latent], using: &rng)
        let fake = withNoGrad { generator(z1) }
        let combined = Tensor.concatenate([fake, real], axis: 0)
        var targets = [Float](repeating: 0, count: 2 * b)
        var floor = 0.0
        for i in 0..<(2 * b) {
            let u = settings.labelNoise > 0 ? settings.labelNoise * rng.nextUniform() : 0
            let t = i < b ? 1 - u : settings.labelSmoothing + u
            targets[i] = min(max(t, 0), 1)
            floor += binaryEntropy(Double(targets[i]))
        }
        floor /= Double(2 * b)
        let logits = discriminator(combined, training: true, rng: &rng)
        let perImage = Tensor.binaryCrossEntropy(logits: logits, targets: Tensor(shape: [2 * b, 1], scalars: targets),
                                                 reduction: .none)
        let dLoss = perImage.mean()
        let terms = perImage.scalars
        var fakeLoss = 0.0, realLoss = 0.0
        for i in 0..<b { fakeLoss += Double(terms[i]); realLoss += Double(terms[b + i]) }
        fakeLoss /= Double(b); realLoss /= Double(b)
        // A diverged run can keep finite but astronomical losses (weights ~1e30): treat them as non-finite.
        guard fakeLoss.isFinite && realLoss.isFinite && fakeLoss < GANStepper.divergedLoss && realLoss < GANStepper.divergedLoss else {
            throw GANError.nonFinite(step: step, what: "discriminator loss", lastCheckpoint: nil)
        }
        dLoss.backward()
        try apply(dOptimizer, to: dParams, learningRate: settings.dLearningRate, step: step, who: "discriminator")

        // 2. Adversarial step: the generator through the frozen discriminator, targets "real" (0).
        for p in dParams { p.requiresGrad = false }
        defer { for p in dParams { p.requiresGrad = true } }
        let z2 = Tensor.normal([b, latent], using: &rng)
        let generated = generator(z2)
        let advLogits = discriminator(generated, training: true, rng: &rng)
        let gLoss = Tensor.binaryCrossEntropy(logits: advLogits, targets: Tensor(zeros: [b, 1]))
        let gValue = Double(gLoss.scalar)
        guard gValue.isFinite && gValue < GANStepper.divergedLoss else { throw GANError.nonFinite(step: step, what: "generator loss", lastCheckpoint: nil) }
        gLoss.backward()
        try apply(gOptimizer, to: gParams, learningRate: settings.gLearningRate, step: step, who: "generator")

        return GANStepLosses(discriminatorReal: realLoss, discriminatorFake: fakeLoss, generator: gValue,
                             discriminatorExcess: max(0, (fakeLoss + realLoss) / 2 - floor))
    }

    /// Clips, checks and applies the gradients of `params`, then checks the updated weights.
    private func apply(_ optimizer: Optimizer, to params: [Tensor], learningRate: Float, step: Int, who: String) throws {
        defer { for p in params { p.zeroGrad() } }
        if let c = settings.clipValue { clipGradients(params, byValue: c) }
        guard globalGradientNorm(params).isFinite else {
            throw GANError.nonFinite(step: step, what: "\(who) gradient", lastCheckpoint: nil)
        }
        optimizer.learningRate = learningRate / (1 + settings.learningRateDecay * Float(optimizer.step))
        optimizer.update(params)
        guard allFinite(params) else {
            throw GANError.nonFinite(step: step, what: "\(who) weights (after the update)", lastCheckpoint: nil)
        }
    }
}

/// `−t·ln t − (1−t)·ln(1−t)` for t in [0, 1] (0 at the ends).
func binaryEntropy(_ t: Double) -> Double {
    var h = 0.0
    if t > 0 { h -= t * Foundation.log(t) }
    if t < 1 { h -= (1 - t) * Foundation.log(1 - t) }
    return h
}

/// Builds a GAN optimizer: `rmsprop` (Keras: ρ 0.9, ε 1e-7 inside the root) or `adam` with
/// β₁ = `beta1` (the DCGAN paper's 0.5), β₂ 0.999.
/// - Throws: ``OptimizerError/unknown(_:)``.
func makeGANOptimizer(_ name: String, learningRate: Float, beta1: Float) throws -> Optimizer {
    switch name {
    case "adam": return Adam(learningRate: learningRate, beta1: beta1)
    case "rmsprop": return RMSprop(learningRate: learningRate)
    default: throw OptimizerError.unknown(name)
    }
}
