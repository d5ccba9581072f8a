import Foundation
import XCTest
@testable import GenStudio
import GenNN
import GenData
import GenTensor

final class TextSamplerTests: XCTestCase {
    /// A model trained a little (so the distribution is not flat) on a 10-word text.
    static let trained: (model: TextModel, vocabulary: Vocabulary) = {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gen-studio-sampler-" + UUID().uuidString)
        defer { try? FileManager.default.removeItem(at: dir) }
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let corpus = try! writeCorpus(syntheticText(count: 600), in: dir)
        var c = tinyConfig(steps: 25)
        c.layers = 2
        c.units = 16
        c.sampleLength = 5
        let t = try! TextTrainer(corpus: corpus, config: c, resume: nil, output: dir.appendingPathComponent("run"),
                                 arguments: [], progress: SilentProgress())
        _ = try! t.run()
        return (t.currentModel, t.vocabulary)
    }()

    func argmax(_ xs: [Float]) -> Int32 {
        var best = 0
        for j in 1..<xs.count where xs[j] > xs[best] { best = j }
        return Int32(best)
    }

    func prime() -> [Int32] { try! Self.trained.vocabulary.encode("the cat ") }

    /// Streaming in pieces gives the tokens and random draws of one whole generation.
    func testStreamedPiecesMatchOneGeneration() {
        let sampler = TextSampler(model: Self.trained.model)
        let options = SamplingOptions(temperature: 0.8, topK: 5)
        for (n, chunk) in [(0, 4), (1, 1), (37, 1), (37, 7), (37, 37), (37, 100)] {
            var a = RandomGenerator(seed: 11), b = RandomGenerator(seed: 11)
            let whole = sampler.generate(prime: prime(), length: n, options: options, using: &a)
            var pieces: [[Int32]] = []
            sampler.generate(prime: prime(), length: n, options: options, using: &b, chunk: chunk) { pieces.append($0) }
            XCTAssertEqual(pieces.flatMap { $0 }, whole, "length \(n), chunk \(chunk)")
            XCTAssertEqual(pieces.count, (n + chunk - 1) / chunk)
            XCTAssertTrue(pieces.allSatisfy { !$0.isEmpty && $0.count <= chunk })
            XCTAssertEqual(a.next(), b.next(), "the streamed form drew differently")
        }
    }

    func testExactLength() {
        let sampler = TextSampler(model: Self.trained.model)
        var rng = RandomGenerator(seed: 3)
        for n in [0, 1, 17, 200] {
            for t: Float in [0, 0.01, 0.5, 1, 2] {
                let out = sampler.generate(prime: prime(), length: n, options: SamplingOptions(temperature: t), using: &rng)
                XCTAssertEqual(out.count, n)
                XCTAssertTrue(out.allSatisfy { $0 >= 0 && Int($0) < Self.trained.vocabulary.count })
                XCTAssertEqual(Self.trained.vocabulary.decode(out).unicodeScalars.count, n)
            }
        }
    }

    /// Temperature 0 is greedy: the argmax of the logits at every step, whatever the random state.
    func testTemperatureZeroIsGreedy() {
        let sampler = TextSampler(model: Self.trained.model)
        var r1 = RandomGenerator(seed: 1), r2 = RandomGenerator(seed: 2)
        let a = sampler.generate(prime: prime(), length: 60, options: SamplingOptions(temperature: 0), using: &r1)
        let b = sampler.generate(prime: prime(), length: 60, options: SamplingOptions(temperature: 0), using: &r2)
        XCTAssertEqual(a, b)
        // By hand: feed, take the argmax, feed it back.
        sampler.reset()
        for t in prime() { sampler.feed(t) }
        var manual: [Int32] = []
        for _ in 0..<60 {
            let next = argmax(sampler.logits)
            manual.append(next)
            sampler.feed(next)
        }
        XCTAssertEqual(a, manual)
    }

    func testTinyTemperatureTopKOneAndTinyTopPAreGreedy() {
        let sampler = TextSampler(model: Self.trained.model)
        var r = RandomGenerator(seed: 9)
        let greedy = sampler.generate(prime: prime(), length: 80, options: SamplingOptions(temperature: 0), using: &r)
        for seed: UInt64 in [1, 2, 3] {
            var rk = RandomGenerator(seed: seed)
            let k1 = sampler.generate(prime: prime(), length: 80, options: SamplingOptions(temperature: 1.0, topK: 1), using: &rk)
            XCTAssertEqual(k1, greedy, "top-k 1 is not greedy")
            var rp = RandomGenerator(seed: seed)
            let p0 = sampler.generate(prime: prime(), length: 80, options: SamplingOptions(temperature: 1.5, topP: 1e-6), using: &rp)
            XCTAssertEqual(p0, greedy, "tiny top-p is not greedy")
        }
        // T = 0.01: exp((l - max)/T) underflows to 0 for all but the largest: no NaN, valid tokens,
        // and (unless two logits tie within ~0.01·ln) the greedy choice.
        var rt = RandomGenerator(seed: 5)
        let cold = sampler.generate(prime: prime(), length: 80, options: SamplingOptions(temperature: 0.01), using: &rt)
        XCTAssertEqual(cold.count, 80)
        XCTAssertTrue(cold.allSatisfy { $0 >= 0 && Int($0) < Self.trained.vocabulary.count })
        XCTAssertTrue(sampler.probs.allSatisfy { $0.isFinite && $0 >= 0 })
        XCTAssertTrue(sampler.logits.allSatisfy(\.isFinite))
        XCTAssertEqual(cold, greedy, "T=0.01 should be practically greedy")
        // Extreme temperatures stay finite too.
        // Temperatures whose reciprocal overflows (denormal T) must still be (practically) greedy.
        for t: Float in [1e-38, 1e-40, 1e-45, .leastNonzeroMagnitude] {
            var rr = RandomGenerator(seed: 5)
            let out = sampler.generate(prime: prime(), length: 80, options: SamplingOptions(temperature: t), using: &rr)
            XCTAssertEqual(out, greedy, "T=\(t) is not greedy")
        }
        for t: Float in [1e-30, 1e-6, 100, 1e30, .greatestFiniteMagnitude] {
            var rr = RandomGenerator(seed: 5)
            let out = sampler.generate(prime: prime(), length: 30, options: SamplingOptions(temperature: t), using: &rr)
            XCTAssertEqual(out.count, 30)
            XCTAssertTrue(out.allSatisfy { $0 >= 0 && Int($0) < Self.trained.vocabulary.count }, "T=\(t)")
            XCTAssertTrue(sampler.probs.allSatisfy { $0.isFinite && $0 >= 0 }, "T=\(t)")
        }
    }

    /// Top-k restricts the support: with k = 2 every drawn token is one of the two most likely.
    func testTopKRestrictsSupport() {
        let sampler = TextSampler(model: Self.trained.model)
        var rng = RandomGenerator(seed: 4)
        sampler.reset()
        for t in prime() { sampler.feed(t) }
        for _ in 0..<100 {
            let sorted = sampler.logits.enumerated().sorted { $0.element > $1.element }.map { Int32($0.offset) }
            let next = sampler.draw(SamplingOptions(temperature: 2, topK: 2), using: &rng)
            XCTAssertTrue(sorted.prefix(2).contains(next))
            sampler.feed(next)
        }
    }

    func testSameSeedSameSample() {
        let sampler = TextSampler(model: Self.trained.model)
        var r1 = RandomGenerator(seed: 77), r2 = RandomGenerator(seed: 77), r3 = RandomGenerator(seed: 78)
        let o = SamplingOptions(temperature: 1.0, topK: 5, topP: 0.95)
        let a = sampler.generate(prime: prime(), length: 100, options: o, using: &r1)
        let b = sampler.generate(prime: prime(), length: 100, options: o, using: &r2)
        let c = sampler.generate(prime: prime(), length: 100, options: o, using: &r3)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
    }

    /// Stateful generation equals re-running the model over the whole prefix: the sampler's
    /// logits after feeding a prefix match ``TextModel/logits`` on that prefix.
    func testStatefulLogitsMatchFullRerun() {
        for layers in [1, 2] {
            var rng = RandomGenerator(seed: UInt64(10 + layers))
            let config = TextModelConfig(vocabularySize: 11, layers: layers, units: 9, dropout: 0.3, sequenceLength: 8, targets: .last)
            let model = TextModel(config: config, using: &rng)
            // Larger weights than the initialiser's, so that gates saturate and differences show.
            for p in model.parameters {
                p.withUnsafeMutableBufferPointer { b in for j in b.indices { b[j] *= 2 } }
            }
            let sampler = TextSampler(model: model)
            var data = RandomGenerator(seed: 99)
            let tokens = (0..<25).map { _ in Int32(data.nextInt(below: 11)) }
            sampler.reset()
            for n in 1...tokens.count {
                sampler.feed(tokens[n - 1])
                var r = RandomGenerator(seed: 0)
                let full = withNoGrad { model.logits(tokens: Array(tokens[..<n]), batch: 1, training: false, rng: &r) }
                XCTAssertEqual(full.shape, [1, 11])
                let expected = full.scalars
                for j in 0..<11 {
                    XCTAssertEqual(sampler.logits[j], expected[j], accuracy: 1e-4,
                                   "layers \(layers), prefix \(n), logit \(j)")
                }
            }
            // targets .all gives every position's logits at once; the last row is the same.
            let allModel = TextModel(config: TextModelConfig(vocabularySize: 11, layers: layers, units: 9, targets: .all), using: &rng)
            for (p, q) in zip(allModel.parameters, model.parameters) { p.assign(q) }
            var r = RandomGenerator(seed: 0)
            let rows = withNoGrad { allModel.logits(tokens: tokens, batch: 1, training: false, rng: &r) }
            XCTAssertEqual(rows.shape, [tokens.count, 11])
            let last = Array(rows.scalars[((tokens.count - 1) * 11)...])
            for j in 0..<11 { XCTAssertEqual(sampler.logits[j], last[j], accuracy: 1e-4) }
        }
    }

    /// Generation after a prime continues the prime's state: sampling the prime then the output is
    /// the same as feeding them through one by one.
    func testGenerateResetsState() {
        let sampler = TextSampler(model: Self.trained.model)
        var r1 = RandomGenerator(seed: 1), r2 = RandomGenerator(seed: 1)
        let a = sampler.generate(prime: prime(), length: 30, options: SamplingOptions(temperature: 0.7), using: &r1)
        _ = sampler.generate(prime: [0, 1, 2, 3], length: 17, options: SamplingOptions(temperature: 0.7), using: &r2)
        var r3 = RandomGenerator(seed: 1)
        let b = sampler.generate(prime: prime(), length: 30, options: SamplingOptions(temperature: 0.7), using: &r3)
        XCTAssertEqual(a, b, "generate must start from a zero state")
    }
}
