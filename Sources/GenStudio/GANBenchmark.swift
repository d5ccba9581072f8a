import Foundation
import GenTensor
import GenNN

/// Timing of one full step of the book's DCGAN (Chollet §8.5), the workload `dcgan` of the
/// reference scripts (../shared/bench): 32×32×3, latent 32, batch 20; the discriminator trained on
/// 20 generated + 20 real images, then the adversarial step through the frozen discriminator,
/// RMSprop 8e-4 / 4e-4 with gradients clipped to ±1. Random data, random weights. The step is the
/// trainer's own (``GANStepper``), so this measures exactly what `gen gan train` runs.
public enum GANBenchmark {
    /// Floating-point operations of one step as PyTorch's flop counter reports them for the
    /// reference model (multiply-adds count 2): about 635 GFLOP.
    public static func flopsPerStep(batch: Int = 20) -> Double {
        let c = GANModelConfig()
        let f = Double(c.generatorFilters), s0 = Double(c.startSize), s = Double(c.imageSize), b = Double(batch)
        // Generator forward, per image.
        var g = 2 * Double(c.latentDim) * s0 * s0 * f / 2                      // dense
        g += 2 * s0 * s0 * 25 * (f / 2) * f                                     // conv_in 5x5
        g += 2 * s0 * s0 * 16 * f * f                                           // transposed 4x4 stride 2
        g += 2 * 2 * s * s * 25 * f * f                                         // two 5x5 convs
        g += 2 * s * s * 49 * f * Double(c.channels)                            // 7x7 to RGB
        // Discriminator forward, per image.
        let sizes = c.discriminatorSizes.map(Double.init), df = Double(c.discriminatorFilters)
        var d = 2 * sizes[0] * sizes[0] * 9 * Double(c.channels) * df
        for x in sizes.dropFirst() { d += 2 * x * x * 16 * df * df }
        d += 2 * sizes.last! * sizes.last! * df
        // D step: G forward (b), D forward + weight gradients (2b, no input gradient for the first conv, ~2x).
        // G step: G forward + backward (3x), D forward + input gradients (2x).
        return b * (g + 3 * 2 * d + 3 * g + 2 * d)
    }

    /// Median seconds per step after one warm-up step, at least 3 timed steps, stopping after
    /// `budget` seconds.
    /// - Returns: the timing (`dcgan_step`, steps/s) and the effective GFLOP/s (``flopsPerStep(batch:)`` per step).
    public static func step(batch: Int = 20, budget: Double = 60) -> (result: TextBenchmark.Result, gflops: Double) {
        var rng = RandomGenerator(seed: 0)
        let config = GANTrainingConfig()
        let g = GANGenerator(config: config.model, using: &rng)
        let d = GANDiscriminator(config: config.model, using: &rng)
        let stepper = GANStepper(generator: g, discriminator: d, dOptimizer: RMSprop(learningRate: config.dLearningRate),
                                 gOptimizer: RMSprop(learningRate: config.gLearningRate), settings: config.stepSettings)
        let real = Tensor.uniform([batch, 32, 32, 3], low: -1, high: 1, using: &rng)
        var n = 0
        let (median, calls) = TextBenchmark.time(warmup: 1, reps: 50, budget: budget) {
            n += 1
            _ = try? stepper.step(real: real, step: n, rng: &rng)
        }
        return (TextBenchmark.Result(name: "dcgan_step", medianSeconds: median, rate: 1 / median, unit: "steps/s", calls: calls),
                flopsPerStep(batch: batch) / median / 1e9)
    }
}
