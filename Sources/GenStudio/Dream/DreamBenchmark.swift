import Foundation
import GenTensor
import GenNN
import GenData

/// Timing of one DeepDream gradient step (objective forward and backward to the image, normalised
/// update) at the reference sizes of ../shared/bench `deepdream`: 350×467, 490×653 and 686×915
/// (height × width), random weights, no tiling.
public enum DreamBenchmark {
    /// One measurement: network, size and median seconds per step.
    public struct Result {
        /// Network name (`inception_v3`, `squeezenet`, ...).
        public var network: String
        /// Image height in pixels.
        public var height: Int
        /// Image width in pixels.
        public var width: Int
        /// Median wall-clock seconds of one gradient step.
        public var medianSeconds: Double
        /// Steps timed.
        public var steps: Int
    }

    /// Times `repetitions` steps (after one warm-up) at each size.
    /// - Throws: errors building the network.
    public static func run(network name: String, sizes: [(Int, Int)] = [(350, 467), (490, 653), (686, 915)],
                           repetitions: Int = 7) throws -> [Result] {
        let net = try makeRandomNetwork(named: name, seed: 0)
        let dream = try DeepDream(network: net, config: {
            var c = DreamConfig(layers: DreamConfig.defaultLayers(network: net.name))
            c.jitter = 0
            c.tileSize = 4096
            return c
        }(), progress: SilentProgress())
        var out: [Result] = []
        for (h, w) in sizes {
            var rng = RandomGenerator(seed: 1)
            var px = (0..<(h * w * 3)).map { _ in rng.nextUniform() }
            var grad = [Float](repeating: 0, count: px.count)
            var times: [Double] = []
            for r in 0...repetitions {
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = dream.gradient(of: px, width: w, height: h, into: &grad, rng: &rng)
                var meanAbs: Float = 0
                for g in grad { meanAbs += abs(g) }
                let scale = 0.01 / max(meanAbs / Float(grad.count), 1e-7)
                for i in 0..<px.count { px[i] += scale * grad[i] }
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if r > 0 { times.append(dt) }
            }
            times.sort()
            out.append(Result(network: net.name, height: h, width: w, medianSeconds: times[times.count / 2], steps: times.count))
        }
        return out
    }
}
