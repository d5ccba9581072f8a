import Foundation
import XCTest
@testable import GenStudio
import GenNN
import GenTensor

/// gen's VAE against the PyTorch reference of `Tools/vae_reference.py`, through the fixture
/// `Fixtures/vae_step.safetensors` written by `Tools/make_vae_fixture.py`: the same weights, images
/// and ε give the same encoder outputs, logits, loss terms, gradients of every parameter and weights
/// after one Adam step; and gen's default initialisation draws from Keras's Glorot-uniform ranges.
final class VAEReferenceTests: XCTestCase {
    /// The fixture file, its model configuration and settings.
    struct Fixture {
        let file: SafetensorsFile
        let config: VAEModelConfig
        /// Images in the batch.
        let batch: Int
        let learningRate: Float, beta1: Float, beta2: Float, epsilon: Float

        func tensor(_ name: String) throws -> Tensor { try file.tensor(named: name) }
    }

    /// The committed fixture (small filters, batch 4), or the book-size one named by
    /// `GEN_VAE_FULL_FIXTURE` (`Tools/make_vae_fixture.py --full PATH`).
    func loadFixture(full: Bool = false) throws -> Fixture {
        let url: URL
        if full {
            guard let path = ProcessInfo.processInfo.environment["GEN_VAE_FULL_FIXTURE"], !path.isEmpty else {
                throw XCTSkip("set GEN_VAE_FULL_FIXTURE to a file written by Tools/make_vae_fixture.py --full PATH")
            }
            url = URL(fileURLWithPath: path)
        } else {
            guard let u = Bundle.module.url(forResource: "vae_step", withExtension: "safetensors", subdirectory: "Fixtures") else {
                XCTFail("fixture vae_step.safetensors missing (run Tools/make_vae_fixture.py)")
                throw XCTSkip("fixture missing")
            }
            url = u
        }
        let file = try SafetensorsFile(contentsOf: url)
        let config = try JSONDecoder().decode(VAEModelConfig.self, from: Data(file.metadata["config", default: ""].utf8))
        let adam = try JSONDecoder().decode([String: Double].self, from: Data(file.metadata["adam", default: ""].utf8))
        return Fixture(file: file, config: config, batch: try file.tensor(named: "x").shape[0], learningRate: Float(adam["learningRate"]!), beta1: Float(adam["beta1"]!),
                       beta2: Float(adam["beta2"]!), epsilon: Float(adam["epsilon"]!))
    }

    /// gen's model with the fixture's weights (`prefix` "weights/": before the step).
    func makeModel(_ fx: Fixture, prefix: String = "weights/") throws -> VAEModel {
        var rng = RandomGenerator(seed: 99)
        let model = VAEModel(config: fx.config, using: &rng)
        XCTAssertEqual(model.parameters.count, 18)
        for p in model.parameters {
            let name = try XCTUnwrap(p.name)
            let ref = try fx.tensor(prefix + name)
            XCTAssertEqual(p.shape, ref.shape, "layout of \(name)")
            precondition(p.shape == ref.shape, "fixture tensor \(prefix + name) has shape \(ref.shape), gen's parameter \(p.shape)")
            p.storage.base.update(from: ref.storage.base, count: p.count)
        }
        return model
    }

    /// Every element within `rtol` of the tensor's largest reference magnitude (the scale float32
    /// rounding works at), and the relative L2 error within `rtol` too.
    func assertClose(_ actual: [Float], _ expected: [Float], rtol: Float = 1e-4, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, what, file: file, line: line)
        guard actual.count == expected.count, !expected.isEmpty else { return }
        let scale = max(expected.map { abs($0) }.max()!, 1e-30)
        var worst: Float = 0, worstIndex = 0, diff2: Double = 0, ref2: Double = 0
        for i in 0..<expected.count {
            let d = abs(actual[i] - expected[i])
            if !(d <= worst) { worst = d; worstIndex = i }
            diff2 += Double(d) * Double(d)
            ref2 += Double(expected[i]) * Double(expected[i])
        }
        let rel = (diff2 / max(ref2, 1e-60)).squareRoot()
        XCTAssert(worst <= rtol * scale && rel <= Double(rtol),
                  "\(what): max |diff| \(worst) at \(worstIndex) (gen \(actual[worstIndex]), reference \(expected[worstIndex])), scale \(scale), relative L2 error \(rel)",
                  file: file, line: line)
    }

    func testForwardAndLossTermsMatchReference() throws { try checkForwardAndLossTerms(try loadFixture()) }

    func testGradientsMatchReference() throws { try checkGradients(try loadFixture()) }

    func testAdamStepFromReferenceGradientsMatchesReference() throws { try checkAdamStep(try loadFixture()) }

    func testTrainingStepMatchesReference() throws { try checkTrainingStep(try loadFixture()) }

    /// All the checks on the book's full-size model (filters 32/64, batch 16), when
    /// `GEN_VAE_FULL_FIXTURE` names a fixture written by `Tools/make_vae_fixture.py --full PATH`.
    func testBookSizeModelMatchesReference() throws {
        let fx = try loadFixture(full: true)
        XCTAssertEqual(fx.config, VAETrainingConfig().modelConfig)
        try checkForwardAndLossTerms(fx)
        try checkGradients(fx)
        try checkAdamStep(fx)
        try checkTrainingStep(fx)
    }

    /// Encoder outputs, decoder logits (through the reparameterisation with the fixture's ε) and the
    /// loss terms per image and summed over the batch (what `trainingGradients` reports).
    func checkForwardAndLossTerms(_ fx: Fixture) throws {
        let n = fx.batch
        let model = try makeModel(fx)
        let x = try fx.tensor("x"), eps = try fx.tensor("eps")
        try withNoGrad {
            let (mean, logVariance) = model.encode(x)
            assertClose(mean.scalars, try fx.tensor("mean").scalars, "z mean")
            assertClose(logVariance.scalars, try fx.tensor("log_var").scalars, "z log-variance")
            let z = VAEModel.reparameterize(mean: mean, logVariance: logVariance, noise: eps)
            let logits = model.decodeLogits(z)
            XCTAssertEqual(logits.shape, [n, 28, 28, 1])
            assertClose(logits.scalars, try fx.tensor("logits").scalars, "decoder logits")
            // Per image, and summed over the batch as trainingGradients reports them.
            let recRef = try fx.tensor("reconstruction").scalars, klRef = try fx.tensor("kl").scalars
            var rec: [Float] = [], kl: [Float] = []
            for i in 0..<n {
                let t = model.lossTerms(x.slice(axis: 0, range: i..<i + 1), noise: eps.slice(axis: 0, range: i..<i + 1), with: model.parameters)
                rec.append(t.reconstruction.scalar); kl.append(t.kl.scalar)
            }
            assertClose(rec, recRef, rtol: 1e-5, "reconstruction per image")
            assertClose(kl, klRef, rtol: 1e-5, "KL per image")
            let all = model.evaluationTerms(x, noise: eps, parts: 2)
            let recSum = Double(recRef.reduce(0, +)), klSum = Double(klRef.reduce(0, +))
            XCTAssertEqual(all.reconstruction, recSum, accuracy: 1e-5 * recSum)
            XCTAssertEqual(all.kl, klSum, accuracy: 1e-5 * klSum)
            let loss = (all.reconstruction + all.kl) / Double(n)
            XCTAssertEqual(loss, Double(try fx.tensor("loss").scalars[0]), accuracy: 1e-5 * Double(try fx.tensor("loss").scalars[0]))
        }
    }

    /// The gradients of `scale · (reconstruction + beta · KL)` with scale 1/N (the trainer's mean over
    /// the batch), for one partition and for the data-parallel split, with β = 1 and β = 0.
    func checkGradients(_ fx: Fixture) throws {
        let x = try fx.tensor("x"), eps = try fx.tensor("eps")
        let recSum = Double(try fx.tensor("reconstruction").scalars.reduce(0, +)), klSum = Double(try fx.tensor("kl").scalars.reduce(0, +))
        for parts in [1, 2, 4] {
            for (beta, prefix) in [(Float(1), "grads/"), (Float(0), "grads_beta0/")] {
                let model = try makeModel(fx)
                let (rec, kl) = model.trainingGradients(x, noise: eps, beta: beta, scale: 1 / Float(fx.batch), parts: parts)
                XCTAssertEqual(rec, recSum, accuracy: 1e-5 * recSum, "reconstruction, parts \(parts)")
                XCTAssertEqual(kl, klSum, accuracy: 1e-5 * klSum, "KL, parts \(parts)")
                for p in model.parameters {
                    let g = try XCTUnwrap(p.grad, "no gradient for \(p.name!)")
                    XCTAssertEqual(g.shape, p.shape)
                    assertClose(g.scalars, try fx.tensor(prefix + p.name!).scalars, "\(prefix)\(p.name!) (parts \(parts))")
                }
            }
        }
    }

    /// gen's Adam as the trainer builds it, fed the reference gradients: the same first step as
    /// `torch.optim.Adam` (compared on the weight change, lr·m̂/(√v̂ + ε), not on the weights).
    func checkAdamStep(_ fx: Fixture) throws {
        let model = try makeModel(fx)
        let optimizer = Adam(learningRate: VAETrainingConfig().learningRate)
        XCTAssertEqual(optimizer.learningRate, fx.learningRate)
        XCTAssertEqual(optimizer.beta1, fx.beta1)
        XCTAssertEqual(optimizer.beta2, fx.beta2)
        XCTAssertEqual(optimizer.epsilon, fx.epsilon)
        for p in model.parameters { p.grad = try fx.tensor("grads/" + p.name!) }
        optimizer.update(model.parameters)
        for p in model.parameters {
            let before = try fx.tensor("weights/" + p.name!).scalars, after = try fx.tensor("adam/" + p.name!).scalars
            let w = p.scalars
            assertClose(w, after, rtol: 1e-6, "weights after Adam, \(p.name!)")
            let delta = (0..<w.count).map { w[$0] - before[$0] }, deltaRef = (0..<w.count).map { after[$0] - before[$0] }
            assertClose(delta, deltaRef, rtol: 1e-4, "Adam update of \(p.name!)")
        }
    }

    /// One whole training step as `VAETrainer` does it (gradients of the batch mean, then Adam) from
    /// the fixture's weights, images and ε: the weights after it match the reference's. Where a
    /// gradient element is so close to 0 that float32 rounding may flip its sign (|g| below 10⁻⁵ of
    /// the tensor's largest, but not 0), Adam's first step, ±lr·g/(|g| + ε), may legitimately
    /// differ; such elements are only required to move by at most lr. (Exact zeros, behind ReLUs that
    /// are off, must stay exactly in place.)
    func checkTrainingStep(_ fx: Fixture) throws {
        for parts in [1, VAEModel.partitions(batch: fx.batch), 2] {
            let model = try makeModel(fx)
            let optimizer = Adam(learningRate: VAETrainingConfig().learningRate)
            _ = model.trainingGradients(try fx.tensor("x"), noise: try fx.tensor("eps"), beta: 1, scale: 1 / Float(fx.batch), parts: parts)
            optimizer.update(model.parameters)
            var ambiguous = 0, total = 0
            for p in model.parameters {
                let before = try fx.tensor("weights/" + p.name!).scalars, after = try fx.tensor("adam/" + p.name!).scalars
                let g = try fx.tensor("grads/" + p.name!).scalars
                let gmax = g.map { abs($0) }.max()!
                let w = p.scalars
                var delta: [Float] = [], deltaRef: [Float] = []
                for j in 0..<w.count {
                    total += 1
                    if g[j] != 0 && abs(g[j]) < 1e-5 * gmax {
                        ambiguous += 1
                        XCTAssertLessThanOrEqual(abs(w[j] - before[j]), fx.learningRate * 1.0001, "\(p.name!)[\(j)]")
                        continue
                    }
                    delta.append(w[j] - before[j]); deltaRef.append(after[j] - before[j])
                }
                assertClose(delta, deltaRef, rtol: 1e-4, "training step update of \(p.name!) (parts \(parts))")
            }
            XCTAssertLessThan(ambiguous, total / 100, "too many near-zero gradients to tell")
        }
    }

    /// gen's default VAE (the book's model) initialises every kernel as Keras does: Glorot-uniform
    /// with the limit √(6 / (fanIn + fanOut)) from Keras's `compute_fans` on Keras's kernel shape
    /// (recorded in the fixture from Keras 3 layers; Conv2DTranspose kernels `[KH, KW, Cout, Cin]`
    /// give fanIn = KH·KW·Cout), and zero biases. Checked exactly (gen's draws equal U(−l, l) drawn
    /// with the fixture's limits from the same generator) and statistically (range and second moment).
    func testDefaultInitialisationMatchesKerasGlorotLimits() throws {
        let fx = try loadFixture()
        struct Limit: Decodable { let shape: [Int]; let fan_in: Int; let fan_out: Int; let keras: Double; let reference: Double }
        let limits = try JSONDecoder().decode([String: Limit].self, from: Data(fx.file.metadata["glorot_limits", default: ""].utf8))
        XCTAssertEqual(limits.count, 9)
        for seed: UInt64 in [1, 2] {
            var rng = RandomGenerator(seed: seed)
            let model = VAEModel(config: VAETrainingConfig().modelConfig, using: &rng)
            var replay = RandomGenerator(seed: seed)
            for p in model.parameters {
                let name = p.name!
                if name.hasSuffix("/bias") {
                    XCTAssert(p.scalars.allSatisfy { $0 == 0 }, "\(name) is not zero")
                    continue
                }
                let lim = try XCTUnwrap(limits[name], "no Keras limit for \(name)")
                XCTAssertEqual(p.shape, lim.shape, "\(name): gen's kernel layout is not Keras's")
                XCTAssertEqual(lim.keras, lim.reference, accuracy: 1e-12, "\(name): the PyTorch reference's limit")
                let l = Float(lim.keras)
                // Exact: the same draws as U(−l, l) with Keras's limit.
                let expected = Tensor.uniform(lim.shape, low: -l, high: l, using: &replay)
                XCTAssertEqual(p.scalars, expected.scalars, "\(name) (seed \(seed)) is not U(−\(l), \(l))")
                // Statistical: within [−l, l], reaching near l, second moment l²/3.
                let w = p.scalars, n = Float(w.count)
                let top = w.map { abs($0) }.max()!
                XCTAssertLessThanOrEqual(top, l, name)
                XCTAssertGreaterThanOrEqual(top, l * (1 - min(0.5, 12 / n)), name)
                let m2 = w.reduce(0) { $0 + Double($1) * Double($1) } / Double(n)
                XCTAssertEqual(m2, Double(l * l) / 3, accuracy: Double(l * l) / 3 * Double(4.5 / n.squareRoot()), "\(name) second moment")
            }
        }
    }
}
