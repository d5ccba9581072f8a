import Foundation
import XCTest
@testable import GenNN
import GenTensor

/// Layers, losses and optimizers against reference values from PyTorch and Keras 3.
///
/// The fixtures in `Fixtures/` are written by `Tools/make_fixtures.py` (see `Tools/README.md`):
/// inputs rounded to float32, references computed in float64 and stored as float32. Each
/// comparison passes when `|actual − expected| ≤ atol + rtol·|expected|` element-wise, and prints
/// its largest absolute and relative errors.
final class ReferenceTests: XCTestCase {
    // Tolerances: forward values ~1e-5 relative, gradients ~1e-4 (fastExp has ~2e-7 relative error).
    static let forward = (rtol: Float(1e-5), atol: Float(1e-6))
    static let gradient = (rtol: Float(1e-4), atol: Float(1e-5))

    // MARK: fixtures

    struct Fixture {
        let name: String
        let entries: [String: (shape: [Int], data: [Float])]

        init(_ name: String) throws {
            guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
                throw NSError(domain: "ReferenceTests", code: 1,
                              userInfo: [NSLocalizedDescriptionKey: "fixture \(name).json not in the test bundle; run Tools/make_fixtures.py"])
            }
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
            guard let dict = object as? [String: Any] else { throw NSError(domain: "ReferenceTests", code: 2) }
            var entries: [String: (shape: [Int], data: [Float])] = [:]
            for (key, value) in dict {
                guard let e = value as? [String: Any], let shape = e["shape"] as? [Int], let data = e["data"] as? [Any]
                else { throw NSError(domain: "ReferenceTests", code: 3, userInfo: [NSLocalizedDescriptionKey: "\(name): bad entry \(key)"]) }
                let floats = data.map { Float(($0 as? NSNumber)?.doubleValue ?? .nan) }
                XCTAssertEqual(shape.reduce(1, *), floats.count, "\(name)/\(key): shape vs data count")
                entries[key] = (shape, floats)
            }
            self.name = name
            self.entries = entries
        }

        func data(_ key: String) -> [Float] {
            guard let e = entries[key] else { XCTFail("\(name): no entry \(key)"); return [] }
            return e.data
        }

        func shape(_ key: String) -> [Int] { entries[key]?.shape ?? [] }

        func tensor(_ key: String, requiresGrad: Bool = false) -> Tensor {
            Tensor(shape: shape(key), scalars: data(key), requiresGrad: requiresGrad)
        }

        func ints(_ key: String) -> [Int32] { data(key).map { Int32($0) } }
    }

    /// Element-wise closeness with a summary line; fails with the worst element's index.
    func assertClose(_ actual: [Float], _ expected: [Float], _ tol: (rtol: Float, atol: Float), _ label: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        guard actual.count == expected.count, !expected.isEmpty else {
            XCTFail("\(label): \(actual.count) values vs \(expected.count) expected", file: file, line: line)
            return
        }
        var maxAbs: Float = 0, maxRel: Float = 0, worst = 0, worstRatio: Float = 0
        for i in 0..<expected.count {
            let a = actual[i], e = expected[i]
            guard a.isFinite else { worst = i; worstRatio = .infinity; maxAbs = .infinity; break }
            let diff = abs(a - e)
            maxAbs = max(maxAbs, diff)
            if abs(e) > 1e-3 { maxRel = max(maxRel, diff / abs(e)) }
            let ratio = diff / (tol.atol + tol.rtol * abs(e))
            if ratio > worstRatio { worstRatio = ratio; worst = i }
        }
        print(String(format: "ReferenceTests %@: max abs err %.3g, max rel err %.3g (|e|>1e-3), worst/tol %.3g",
                     label, maxAbs, maxRel, worstRatio))
        XCTAssertLessThanOrEqual(worstRatio, 1,
                                 "\(label): element \(worst) is \(actual[worst]), expected \(expected[worst]) (rtol \(tol.rtol), atol \(tol.atol))",
                                 file: file, line: line)
    }

    func assertClose(_ actual: Tensor?, _ fixture: Fixture, _ key: String, _ tol: (rtol: Float, atol: Float), _ label: String? = nil,
                     file: StaticString = #filePath, line: UInt = #line) {
        guard let actual else { XCTFail("\(label ?? key): missing (nil gradient?)", file: file, line: line); return }
        XCTAssertEqual(actual.count, fixture.data(key).count, "\(label ?? key): element count", file: file, line: line)
        assertClose(actual.scalars, fixture.data(key), tol, "\(fixture.name)/\(label ?? key)", file: file, line: line)
    }

    // MARK: 1. Dense vs torch.nn.Linear

    func testDenseForwardAndGradientsMatchTorchLinear() throws {
        let f = try Fixture("dense")
        let (n, fin) = (f.shape("x")[0], f.shape("x")[1])
        let units = f.shape("kernel")[1]
        var rng = RandomGenerator(seed: 7)
        let dense = Dense(inputSize: fin, units: units, using: &rng)
        dense.kernel.assign(f.tensor("kernel"))
        dense.bias!.assign(f.tensor("bias"))
        let x = f.tensor("x", requiresGrad: true)
        let y = dense(x)
        XCTAssertEqual(y.shape, [n, units])
        assertClose(y, f, "y", Self.forward)
        y.backward(seed: f.tensor("seed"))
        assertClose(x.grad, f, "dx", Self.gradient)
        assertClose(dense.kernel.grad, f, "dkernel", Self.gradient)
        assertClose(dense.bias!.grad, f, "dbias", Self.gradient)

        // Rank-3 input [2, n/2, in] goes through the same rows.
        dense.kernel.zeroGrad(); dense.bias!.zeroGrad()
        let x3 = Tensor(shape: [2, n / 2, fin], scalars: f.data("x"), requiresGrad: true)
        let y3 = dense(x3)
        XCTAssertEqual(y3.shape, [2, n / 2, units])
        assertClose(y3.scalars, f.data("y"), Self.forward, "dense/y rank3")
        y3.backward(seed: Tensor(shape: [2, n / 2, units], scalars: f.data("seed")))
        assertClose(x3.grad?.scalars ?? [], f.data("dx"), Self.gradient, "dense/dx rank3")
        assertClose(dense.kernel.grad, f, "dkernel", Self.gradient, "dkernel rank3")
    }

    // MARK: 2. LSTM vs torch.nn.LSTM and keras.layers.LSTM

    func runLSTMCase(_ name: String) throws {
        let f = try Fixture(name)
        let xs = f.shape("x")
        let (batch, steps, fin) = (xs[0], xs[1], xs[2])
        let units = f.shape("recurrent_kernel")[0]
        var rng = RandomGenerator(seed: 11)
        let lstm = LSTM(inputSize: fin, units: units, using: &rng)
        lstm.kernel.assign(f.tensor("kernel"))
        lstm.recurrentKernel.assign(f.tensor("recurrent_kernel"))
        lstm.bias.assign(f.tensor("bias"))
        let x = f.tensor("x", requiresGrad: true)
        let withState = f.entries["h0"] != nil
        let h0 = withState ? f.tensor("h0", requiresGrad: true) : nil
        let c0 = withState ? f.tensor("c0", requiresGrad: true) : nil
        let r = withState ? lstm(x, initialState: (h0!, c0!)) : lstm(x)
        XCTAssertEqual(r.outputs.shape, [batch, steps, units])
        XCTAssertEqual(r.finalHidden.shape, [batch, units])
        XCTAssertEqual(r.finalCell.shape, [batch, units])
        let loss = (r.outputs * f.tensor("seed_out")).sum() + (r.finalHidden * f.tensor("seed_h")).sum()
        loss.backward()
        for framework in ["torch", "keras"] {
            assertClose(r.outputs, f, "\(framework)_outputs", Self.forward)
            assertClose(r.finalHidden, f, "\(framework)_final_h", Self.forward)
            assertClose(r.finalCell, f, "\(framework)_final_c", Self.forward)
            assertClose(x.grad, f, "\(framework)_dx", Self.gradient)
            assertClose(lstm.kernel.grad, f, "\(framework)_dkernel", Self.gradient)
            assertClose(lstm.recurrentKernel.grad, f, "\(framework)_drecurrent", Self.gradient)
            assertClose(lstm.bias.grad, f, "\(framework)_dbias", Self.gradient)
            if withState {
                assertClose(h0!.grad, f, "\(framework)_dh0", Self.gradient)
                assertClose(c0!.grad, f, "\(framework)_dc0", Self.gradient)
            }
        }
    }

    func testLSTMZeroStateMatchesTorchAndKeras() throws { try runLSTMCase("lstm_a") }

    func testLSTMInitialStateMatchesTorchAndKeras() throws { try runLSTMCase("lstm_b") }

    func testLSTMTokenPathMatchesTorchOneHot() throws {
        let f = try Fixture("lstm_tokens")
        let ts = f.shape("tokens")
        let (batch, steps) = (ts[0], ts[1])
        let vocab = f.shape("kernel")[0], units = f.shape("recurrent_kernel")[0]
        var rng = RandomGenerator(seed: 13)
        let lstm = LSTM(inputSize: vocab, units: units, using: &rng)
        lstm.kernel.assign(f.tensor("kernel"))
        lstm.recurrentKernel.assign(f.tensor("recurrent_kernel"))
        lstm.bias.assign(f.tensor("bias"))
        let tokens = f.ints("tokens")
        let r = lstm(tokens: tokens, batch: batch, steps: steps)
        assertClose(r.outputs, f, "outputs", Self.forward)
        assertClose(r.finalHidden, f, "final_h", Self.forward)
        assertClose(r.finalCell, f, "final_c", Self.forward)
        let loss = (r.outputs * f.tensor("seed_out")).sum() + (r.finalHidden * f.tensor("seed_h")).sum()
        loss.backward()
        assertClose(lstm.kernel.grad, f, "dkernel", Self.gradient)
        assertClose(lstm.recurrentKernel.grad, f, "drecurrent", Self.gradient)
        assertClose(lstm.bias.grad, f, "dbias", Self.gradient)

        // The dense path on the same one-hot input gives the same values.
        var onehot = [Float](repeating: 0, count: batch * steps * vocab)
        for (i, t) in tokens.enumerated() { onehot[i * vocab + Int(t)] = 1 }
        let dense = withNoGrad { lstm(Tensor(shape: [batch, steps, vocab], scalars: onehot)) }
        assertClose(dense.outputs.scalars, r.outputs.scalars, Self.forward, "lstm_tokens/dense-vs-gather")
    }

    // MARK: 3. softmax, logSoftmax, cross-entropy

    func testSoftmaxCrossEntropyMatchesTorch() throws {
        let f = try Fixture("softmax")
        let logits = f.tensor("logits", requiresGrad: true)
        let loss = Tensor.softmaxCrossEntropy(logits: logits, labels: f.ints("labels"))
        XCTAssertEqual(loss.shape, [])
        assertClose(loss, f, "ce_loss", Self.forward)
        loss.backward()
        assertClose(logits.grad, f, "ce_grad", Self.gradient)
    }

    func testSoftmaxAndLogSoftmaxMatchTorch() throws {
        let f = try Fixture("softmax")
        let a = f.tensor("logits", requiresGrad: true)
        let s = a.softmax()
        assertClose(s, f, "softmax", Self.forward)
        s.backward(seed: f.tensor("seed"))
        assertClose(a.grad, f, "softmax_grad", Self.gradient)

        let b = f.tensor("logits", requiresGrad: true)
        let ls = b.logSoftmax()
        assertClose(ls, f, "log_softmax", Self.forward)
        ls.backward(seed: f.tensor("seed"))
        assertClose(b.grad, f, "log_softmax_grad", Self.gradient)
    }

    /// Logits with a large common offset (~1000, −500, 300): log-probabilities and the loss are
    /// O(1) and must keep forward precision. Computing `x − (max + log Σ)` rounds the sum at the
    /// offset's magnitude (ulp(1000) ≈ 6e-5); `(x − max) − log Σ` does not.
    func testLogSoftmaxAndCrossEntropyKeepPrecisionForLargeLogits() throws {
        let f = try Fixture("softmax")
        let logits = f.tensor("offset_logits", requiresGrad: true)
        assertClose(logits.logSoftmax(), f, "offset_log_softmax", Self.forward)
        let loss = Tensor.softmaxCrossEntropy(logits: logits, labels: f.ints("offset_labels"))
        assertClose(loss, f, "offset_ce_loss", Self.forward)
        loss.backward()
        assertClose(logits.grad, f, "offset_ce_grad", Self.gradient)
    }

    // MARK: 4. optimizers

    static let optimizerTolerance = (rtol: Float(1e-5), atol: Float(1e-6))

    func runOptimizer(_ f: Fixture, _ opt: Optimizer, _ prefix: String) {
        let w = f.tensor("w0", requiresGrad: true), b = f.tensor("b0", requiresGrad: true)
        for s in 1...3 {
            w.grad = f.tensor("gw\(s)")
            b.grad = f.tensor("gb\(s)")
            opt.update([w, b])
            assertClose(w, f, "\(prefix)_w\(s)", Self.optimizerTolerance)
            assertClose(b, f, "\(prefix)_b\(s)", Self.optimizerTolerance)
        }
        XCTAssertEqual(opt.step, 3)
    }

    func testSGDMatchesTorch() throws {
        let f = try Fixture("optimizers")
        runOptimizer(f, SGD(learningRate: 0.1), "sgd_plain")
        runOptimizer(f, SGD(learningRate: 0.1, momentum: 0.9), "sgd_momentum")
        runOptimizer(f, SGD(learningRate: 0.1, momentum: 0.9, nesterov: true), "sgd_nesterov")
    }

    func testAdamMatchesTorch() throws {
        let f = try Fixture("optimizers")
        runOptimizer(f, Adam(learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7), "adam_b09")
        runOptimizer(f, Adam(learningRate: 0.0002, beta1: 0.5, beta2: 0.999, epsilon: 1e-7), "adam_b05")
    }

    func testRMSpropMatchesKeras() throws {
        let f = try Fixture("optimizers")
        runOptimizer(f, RMSprop(learningRate: 0.01, rho: 0.9, epsilon: 1e-7), "rmsprop")
    }

    func testClipByGlobalNormMatchesTorch() throws {
        let f = try Fixture("clipping")
        for (name, maxNorm) in [("clip_small", Float(1)), ("clip_large", Float(100))] {
            let w = Tensor(zeros: f.shape("gw"), requiresGrad: true), b = Tensor(zeros: f.shape("gb"), requiresGrad: true)
            w.grad = f.tensor("gw"); b.grad = f.tensor("gb")
            let norm = clipGradients([w, b], byGlobalNorm: maxNorm)
            assertClose([norm], f.data("\(name)_norm"), Self.forward, "clipping/\(name)_norm")
            assertClose(w.grad, f, "\(name)_gw", Self.forward)
            assertClose(b.grad, f, "\(name)_gb", Self.forward)
        }
        let w = Tensor(zeros: f.shape("gw"), requiresGrad: true), b = Tensor(zeros: f.shape("gb"), requiresGrad: true)
        w.grad = f.tensor("gw"); b.grad = f.tensor("gb")
        clipGradients([w, b], byValue: 0.5)
        assertClose(w.grad, f, "clipvalue_gw", Self.forward)
        assertClose(b.grad, f, "clipvalue_gb", Self.forward)
    }

    // MARK: 5. initializer statistics (no fixtures)

    func testGlorotUniformBoundsAndVariance() {
        var rng = RandomGenerator(seed: 42)
        let fanIn = 200, fanOut = 300
        let w = Initializer.glorotUniform([fanIn, fanOut], fanIn: fanIn, fanOut: fanOut, using: &rng)
        XCTAssertEqual(w.shape, [fanIn, fanOut])
        let limit = (6.0 / Double(fanIn + fanOut)).squareRoot()
        let v = w.scalars.map(Double.init)
        let mean = v.reduce(0, +) / Double(v.count)
        let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)
        XCTAssertLessThanOrEqual(v.map(abs).max()!, limit)
        XCTAssertGreaterThan(v.max()!, 0.99 * limit)
        XCTAssertLessThan(v.min()!, -0.99 * limit)
        XCTAssertEqual(mean, 0, accuracy: 5 * (limit * limit / 3 / Double(v.count)).squareRoot())
        // Var U(−l, l) = l²/3 = 2/(fanIn + fanOut); 60 000 samples give ~0.4 % standard error.
        XCTAssertEqual(variance, 2 / Double(fanIn + fanOut), accuracy: 0.02 * 2 / Double(fanIn + fanOut))
    }

    /// Max |A·Aᵀ − I| (rows) or |Aᵀ·A − I| (columns) of a row-major [rows, cols] matrix, in Double.
    func orthonormalityError(_ a: [Float], rows: Int, cols: Int, byRows: Bool) -> Double {
        let n = byRows ? rows : cols, k = byRows ? cols : rows
        func at(_ i: Int, _ j: Int) -> Double { Double(byRows ? a[i * cols + j] : a[j * cols + i]) }
        var worst = 0.0
        for i in 0..<n {
            for j in 0..<n {
                var dot = 0.0
                for p in 0..<k { dot += at(i, p) * at(j, p) }
                worst = max(worst, abs(dot - (i == j ? 1 : 0)))
            }
        }
        return worst
    }

    func testOrthogonalInitializer() {
        var rng = RandomGenerator(seed: 5)
        let h = 16
        let wide = Initializer.orthogonal(rows: h, cols: 4 * h, using: &rng)   // LSTM recurrent kernel shape
        XCTAssertEqual(wide.shape, [h, 4 * h])
        XCTAssertLessThan(orthonormalityError(wide.scalars, rows: h, cols: 4 * h, byRows: true), 1e-5)
        let tall = Initializer.orthogonal(rows: 40, cols: 12, using: &rng)
        XCTAssertLessThan(orthonormalityError(tall.scalars, rows: 40, cols: 12, byRows: false), 1e-5)
        let square = Initializer.orthogonal(rows: 10, cols: 10, using: &rng)
        XCTAssertLessThan(orthonormalityError(square.scalars, rows: 10, cols: 10, byRows: true), 1e-5)
        XCTAssertLessThan(orthonormalityError(square.scalars, rows: 10, cols: 10, byRows: false), 1e-5)
        let scaled = Initializer.orthogonal(rows: 4, cols: 8, gain: 2, using: &rng)
        XCTAssertLessThan(orthonormalityError(scaled.scalars.map { $0 / 2 }, rows: 4, cols: 8, byRows: true), 1e-5)
        // Not degenerate: two draws differ.
        let again = Initializer.orthogonal(rows: h, cols: 4 * h, using: &rng)
        XCTAssertNotEqual(wide.scalars, again.scalars)
    }

    func testLSTMInitialization() {
        var rng = RandomGenerator(seed: 9)
        let inputSize = 6, h = 8
        let lstm = LSTM(inputSize: inputSize, units: h, using: &rng)
        XCTAssertEqual(lstm.kernel.shape, [inputSize, 4 * h])
        XCTAssertEqual(lstm.recurrentKernel.shape, [h, 4 * h])
        XCTAssertEqual(lstm.bias.shape, [4 * h])
        let b = lstm.bias.scalars
        for j in 0..<(4 * h) {
            XCTAssertEqual(b[j], (h..<(2 * h)).contains(j) ? 1 : 0, "bias[\(j)] (forget block is h..<2h)")
        }
        let limit = Float((6.0 / Double(inputSize + 4 * h)).squareRoot())
        XCTAssertLessThanOrEqual(lstm.kernel.scalars.map(abs).max()!, limit)
        XCTAssertLessThan(orthonormalityError(lstm.recurrentKernel.scalars, rows: h, cols: 4 * h, byRows: true), 1e-5)
        XCTAssertEqual(lstm.parameters.map(\.shape), [[inputSize, 4 * h], [h, 4 * h], [4 * h]])
        XCTAssertTrue(lstm.parameters.allSatisfy(\.requiresGrad))
    }
}
