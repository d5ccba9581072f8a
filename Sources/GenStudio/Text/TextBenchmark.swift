import Foundation
import GenTensor
import GenNN

/// Timing of the book's text model on random data, the same workload as the reference scripts'
/// `charlstm_train` and `charlstm_gen` (../shared/bench): maxlen 60, vocabulary 60, LSTM 128,
/// Dense softmax, RMSprop 0.01, batch 128.
public enum TextBenchmark {
    /// Result of one benchmark: median seconds per call and the derived rate.
    public struct Result {
        /// Workload name (`charlstm_train`, `charlstm_gen`, ...).
        public var name: String
        /// Median wall-clock seconds of one call.
        public var medianSeconds: Double
        /// Work per second: samples or characters, see ``unit``.
        public var rate: Double
        /// Unit of ``rate`` (`samples/s`, `chars/s`).
        public var unit: String
        /// Calls timed.
        public var calls: Int
    }

    /// Median of repeated timings after warm-up, stopping after `budget` seconds (at least 3 calls).
    static func time(warmup: Int, reps: Int, budget: Double, _ body: () -> Void) -> (median: Double, n: Int) {
        for _ in 0..<warmup { body() }
        var ts: [Double] = []
        var total = 0.0
        for _ in 0..<reps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            ts.append(dt); total += dt
            if total > budget && ts.count >= 3 { break }
        }
        ts.sort()
        return (ts[ts.count / 2], ts.count)
    }

    /// Training throughput in samples per second (one RMSprop step per batch of 128 windows).
    public static func training(vocabulary: Int = 60, sequenceLength: Int = 60, units: Int = 128,
                                batch: Int = 128, budget: Double = 20) -> Result {
        var rng = RandomGenerator(seed: 0)
        let model = TextModel(config: TextModelConfig(vocabularySize: vocabulary, units: units, sequenceLength: sequenceLength),
                              using: &rng)
        let optimizer = RMSprop(learningRate: 0.01)
        let batches = (0..<20).map { _ in
            ((0..<(batch * sequenceLength)).map { _ in Int32(rng.nextInt(below: vocabulary)) },
             (0..<batch).map { _ in Int32(rng.nextInt(below: vocabulary)) })
        }
        var i = 0
        let params = model.parameters
        let (median, n) = time(warmup: 5, reps: 200, budget: budget) {
            let (x, y) = batches[i % batches.count]; i += 1
            let loss = Tensor.softmaxCrossEntropy(logits: model.logits(tokens: x, batch: batch, training: true, rng: &rng), labels: y)
            loss.backward()
            optimizer.update(params)
            for p in params { p.zeroGrad() }
        }
        return Result(name: "charlstm_train", medianSeconds: median, rate: Double(batch) / median, unit: "samples/s", calls: n)
    }

    /// Stateful sampling throughput in characters per second (temperature 0.5, batch 1).
    public static func sampling(vocabulary: Int = 60, units: Int = 128, characters: Int = 20_000, budget: Double = 10) -> Result {
        var rng = RandomGenerator(seed: 0)
        let model = TextModel(config: TextModelConfig(vocabularySize: vocabulary, units: units), using: &rng)
        let sampler = TextSampler(model: model)
        let prime: [Int32] = (0..<60).map { _ in Int32(rng.nextInt(below: vocabulary)) }
        let (median, n) = time(warmup: 1, reps: 20, budget: budget) {
            _ = sampler.generate(prime: prime, length: characters, options: SamplingOptions(temperature: 0.5), using: &rng)
        }
        return Result(name: "charlstm_gen_stateful_step", medianSeconds: median,
                      rate: Double(characters + prime.count) / median, unit: "chars/s", calls: n)
    }
}
