import Foundation
import GenTensor
import GenNN

/// Timing of the book's convolutional VAE, the same workload as the reference scripts' `vae`
/// (../shared/bench): 28×28×1 random images, latent dimension 2, batch 128, Adam 1e-3, one
/// training step (forward, summed-BCE + KL loss, backward, update) per batch.
public enum VAEBenchmark {
    /// Training throughput in samples per second: median time of a step over `budget` seconds
    /// (after 5 warm-up steps, at least 3 timed steps).
    public static func training(batch: Int = 128, budget: Double = 20) -> TextBenchmark.Result {
        var rng = RandomGenerator(seed: 0)
        let model = VAEModel(config: VAEModelConfig(), using: &rng)
        let optimizer = Adam(learningRate: 1e-3)
        let batches = (0..<20).map { _ in Tensor.uniform([batch, 28, 28, 1], using: &rng) }
        var i = 0
        let params = model.parameters
        let (median, n) = TextBenchmark.time(warmup: 5, reps: 2000, budget: budget) {
            let x = batches[i % batches.count]; i += 1
            let noise = Tensor.normal([batch, 2], using: &rng)
            _ = model.trainingGradients(x, noise: noise, beta: 1, scale: 1 / Float(batch), parts: VAEModel.partitions(batch: batch))
            optimizer.update(params)
            for p in params { p.zeroGrad() }
        }
        return TextBenchmark.Result(name: "vae_train", medianSeconds: median, rate: Double(batch) / median,
                                    unit: "samples/s", calls: n)
    }
}
