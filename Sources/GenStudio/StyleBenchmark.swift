import Foundation
import GenTensor
import GenNN

/// Timing of one style-transfer loss-and-gradient evaluation with cached targets, the same workload
/// as the reference scripts' `style_cached` (../shared/bench): a 400×533 image, content and style
/// targets precomputed, one forward pass to the deepest layer used and one backward pass to the
/// image (no weight gradients). VGG19 uses the book's layers (content block5_conv2, style
/// block1_conv1…block5_conv1), SqueezeNet gen's defaults. Random weights: timing only.
public enum StyleBenchmark {
    /// Median seconds per evaluation for `network` at `height`×`width` (after one warm-up call,
    /// at least 3 timed calls or `budget` seconds).
    /// - Throws: `PretrainedError` for an unknown network name.
    public static func evaluation(network name: String, height: Int = 400, width: Int = 533,
                                  budget: Double = 20) throws -> TextBenchmark.Result {
        let net = try makeRandomNetwork(named: name, seed: 0)
        var rng = RandomGenerator(seed: 0)
        let content = Tensor.uniform([1, height, width, 3], using: &rng)
        let style = Tensor.uniform([1, height, width, 3], using: &rng)
        let d = StyleNetworkDefaults.forNetwork(net.name)
        let loss = try StyleLoss(network: net, content: content, styles: [style], contentLayers: d.contentLayers,
                                 styleLayers: d.styleLayers, weights: d.weights)
        var x = Tensor.uniform([1, height, width, 3], using: &rng).scalars
        let (median, n) = TextBenchmark.time(warmup: 1, reps: 50, budget: budget) {
            let (_, g) = loss.evaluate(x)
            x[0] += g[0] * 1e-9     // depend on the result
        }
        return TextBenchmark.Result(name: "style_cached_\(net.name)_\(height)x\(width)", medianSeconds: median,
                                    rate: median, unit: "s/evaluation", calls: n)
    }
}
