import XCTest
import GenTensor

/// The fused LSTM (Ops/Recurrent.swift): gradients with respect to every input against finite
/// differences, and the forward pass against a naive per-step Double implementation of the Keras
/// LSTM equations.
final class LSTMTests: XCTestCase {
    let batch = 3, steps = 4, units = 5

    private func makeInputs(_ r: inout TestRandom, withState: Bool = true) -> [Tensor] {
        let g4 = 4 * units
        var t = [r.uniform([batch, steps, g4], -1, 1),
                 r.uniform([units, g4], -0.6, 0.6),
                 r.uniform([g4], -0.5, 0.5)]
        if withState {
            t.append(r.uniform([batch, units], -1, 1))
            t.append(r.uniform([batch, units], -1, 1))
        }
        return t
    }

    /// outputs and finalHidden side by side, `[batch, (steps + 1) · units]`: the objective
    /// Σ R ⊙ (outputs, finalHidden) weighs every output step and the final hidden state separately.
    private func objective(_ t: [Tensor]) -> Tensor {
        let res = Tensor.lstm(inputProjection: t[0], recurrentKernel: t[1], bias: t[2],
                              initialHidden: t.count > 3 ? t[3] : nil,
                              initialCell: t.count > 4 ? t[4] : nil)
        return Tensor.concatenate([res.outputs.reshaped([batch, steps * units]), res.finalHidden], axis: 1)
    }

    func testGradientsWithInitialState() {
        var r = TestRandom(seed: 50)
        let inputs = makeInputs(&r)
        gradientCheck(inputs: inputs, "lstm with h0, c0") { objective($0) }
    }

    func testGradientsWithoutInitialState() {
        var r = TestRandom(seed: 51)
        let inputs = makeInputs(&r, withState: false)
        gradientCheck(inputs: inputs, "lstm, zero state") { objective($0) }
    }

    func testGradientsWithInitialHiddenOnlyAndConstantKernel() {
        var r = TestRandom(seed: 52)
        var inputs = makeInputs(&r)
        inputs.removeLast()
        inputs[1].requiresGrad = false   // recurrent kernel held constant
        gradientCheck(inputs: inputs, "lstm, h0 only") { objective($0) }
    }

    func testGradientsThroughFinalHiddenOnly() {
        var r = TestRandom(seed: 53)
        let inputs = makeInputs(&r)
        gradientCheck(inputs: inputs, "finalHidden only") { t in
            Tensor.lstm(inputProjection: t[0], recurrentKernel: t[1], bias: t[2],
                        initialHidden: t[3], initialCell: t[4]).finalHidden
        }
    }

    func testGradientsWithInputProjectionFromUpstreamOps() {
        // The usual use: xp = x · W through matmul, reshaped to [B, T, 4H].
        var r = TestRandom(seed: 54)
        let x = r.uniform([batch * steps, 2]), w = r.uniform([2, 4 * units])
        let u = r.uniform([units, 4 * units], -0.6, 0.6), b = r.uniform([4 * units], -0.5, 0.5)
        gradientCheck(inputs: [x, w, u, b]) { t in
            let xp = Tensor.matmul(t[0], t[1]).reshaped([self.batch, self.steps, 4 * self.units])
            return Tensor.lstm(inputProjection: xp, recurrentKernel: t[2], bias: t[3]).outputs.tanh()
        }
    }

    /// Keras LSTM equations in Double, one step at a time.
    private func naiveLSTM(xp: [Float], u: [Float], bias: [Float], h0: [Float]?, c0: [Float]?)
        -> (outputs: [Double], h: [Double], c: [Double]) {
        let g4 = 4 * units
        func sigmoid(_ v: Double) -> Double { 1 / (1 + Foundation.exp(-v)) }
        var h = h0.map { $0.map(Double.init) } ?? [Double](repeating: 0, count: batch * units)
        var c = c0.map { $0.map(Double.init) } ?? [Double](repeating: 0, count: batch * units)
        var outputs = [Double](repeating: 0, count: batch * steps * units)
        for t in 0..<steps {
            var hNew = h, cNew = c
            for b in 0..<batch {
                var z = [Double](repeating: 0, count: g4)
                for j in 0..<g4 {
                    var s = Double(xp[(b * steps + t) * g4 + j]) + Double(bias[j])
                    for k in 0..<units { s += h[b * units + k] * Double(u[k * g4 + j]) }
                    z[j] = s
                }
                for j in 0..<units {
                    let i = sigmoid(z[j]), f = sigmoid(z[units + j])
                    let g = Foundation.tanh(z[2 * units + j]), o = sigmoid(z[3 * units + j])
                    let cj = f * c[b * units + j] + i * g
                    cNew[b * units + j] = cj
                    hNew[b * units + j] = o * Foundation.tanh(cj)
                    outputs[(b * steps + t) * units + j] = hNew[b * units + j]
                }
            }
            h = hNew; c = cNew
        }
        return (outputs, h, c)
    }

    func testForwardMatchesNaiveKerasEquations() {
        var r = TestRandom(seed: 55)
        for withState in [true, false] {
            let t = makeInputs(&r, withState: withState)
            // Larger pre-activations too, so saturation is exercised.
            let xp = t[0] * 3
            let res = withNoGrad {
                Tensor.lstm(inputProjection: xp, recurrentKernel: t[1], bias: t[2],
                            initialHidden: withState ? t[3] : nil, initialCell: withState ? t[4] : nil)
            }
            let ref = naiveLSTM(xp: xp.scalars, u: t[1].scalars, bias: t[2].scalars,
                                h0: withState ? t[3].scalars : nil, c0: withState ? t[4].scalars : nil)
            XCTAssertEqual(res.outputs.shape, [batch, steps, units])
            XCTAssertEqual(res.finalHidden.shape, [batch, units])
            XCTAssertEqual(res.finalCell.shape, [batch, units])
            assertClose(res.outputs.scalars, ref.outputs, atol: 2e-6, rtol: 1e-5, "outputs, state \(withState)")
            assertClose(res.finalHidden.scalars, ref.h, atol: 2e-6, rtol: 1e-5, "finalHidden, state \(withState)")
            assertClose(res.finalCell.scalars, ref.c, atol: 2e-6, rtol: 1e-5, "finalCell, state \(withState)")
        }
    }

    func testFinalCellIsDetachedAndFinalHiddenIsLastOutput() {
        var r = TestRandom(seed: 56)
        let t = makeInputs(&r)
        let res = Tensor.lstm(inputProjection: t[0], recurrentKernel: t[1], bias: t[2],
                              initialHidden: t[3], initialCell: t[4])
        XCTAssertTrue(res.outputs.requiresGrad)
        XCTAssertTrue(res.finalHidden.requiresGrad)
        XCTAssertFalse(res.finalCell.requiresGrad, "finalCell is documented as detached")
        let last = res.outputs.slice(axis: 1, range: (steps - 1)..<steps).scalars
        XCTAssertEqual(res.finalHidden.scalars, last)
    }

    func testSingleStepMatchesHandComputation() {
        // B=1, T=1, H=1: h = σ(zo)·tanh(σ(zf)·c0 + σ(zi)·tanh(zc)).
        let xp = Tensor(shape: [1, 1, 4], scalars: [0.3, -0.2, 0.5, 0.1])
        let u = Tensor(shape: [1, 4], scalars: [0.7, -0.4, 0.2, 0.9])
        let b = Tensor(shape: [4], scalars: [0.1, 1.0, 0, -0.1])
        let h0 = Tensor(shape: [1, 1], scalars: [0.6]), c0 = Tensor(shape: [1, 1], scalars: [-0.8])
        let res = Tensor.lstm(inputProjection: xp, recurrentKernel: u, bias: b, initialHidden: h0, initialCell: c0)
        func s(_ v: Double) -> Double { 1 / (1 + Foundation.exp(-v)) }
        let z = [0.3 + 0.1 + 0.6 * 0.7, -0.2 + 1.0 + 0.6 * -0.4, 0.5 + 0 + 0.6 * 0.2, 0.1 - 0.1 + 0.6 * 0.9]
        let c = s(z[1]) * -0.8 + s(z[0]) * Foundation.tanh(z[2])
        let h = s(z[3]) * Foundation.tanh(c)
        assertClose(res.finalCell.scalars, [c], atol: 1e-6)
        assertClose(res.finalHidden.scalars, [h], atol: 1e-6)
    }
}
