import XCTest
import GenTensor

/// Elementwise central-difference checks of the backward paths that the small cases of the other
/// gradient tests never reach: Winograd ∂x and ∂kernel (at least 16 channels in and out) with
/// symmetric, asymmetric and over-wide padding; the LSTM on token input; and the multi-threaded
/// partitions of the LSTM and batch normalisation, which only start at larger sizes.
final class FastPathGradientTests: XCTestCase {
    override func tearDown() {
        Winograd.enabled = true
        Threads.count = ProcessInfo.processInfo.activeProcessorCount
    }

    /// Analytic gradients through Winograd, numeric ones from the exact im2col forward: the
    /// numeric passes run under `withNoGrad`, where `f` turns Winograd off. (Winograd's own forward
    /// rounding, about 3e-5 of the output's RMS, would swamp a central difference of step 1e-2.)
    func testWinogradGradientsElementwise() {
        struct Case { var x: [Int]; var k: [Int]; var padding: Padding; var label: String }
        let cases = [
            Case(x: [1, 5, 6, 16], k: [3, 3, 16, 16], padding: .same, label: "3x3 same"),
            Case(x: [1, 5, 6, 16], k: [3, 3, 16, 17], padding: .explicit(top: 1, bottom: 0, left: 2, right: 1),
                 label: "3x3 asymmetric explicit (1,0,2,1)"),
            // Wider than the kernel reaches: the forward and ∂kernel take Winograd, ∂x takes col2im.
            Case(x: [1, 4, 4, 16], k: [3, 3, 16, 16], padding: .explicit(top: 3, bottom: 3, left: 3, right: 3),
                 label: "3x3 over-padded (3,3,3,3)"),
            Case(x: [1, 7, 6, 16], k: [5, 5, 16, 16], padding: .valid, label: "5x5 valid"),
        ]
        for (ci, c) in cases.enumerated() {
            var r = TestRandom(seed: UInt64(900 + ci))
            let inputs = [r.uniform(c.x), r.uniform(c.k, -0.5, 0.5), r.uniform([c.k[3]])]
            gradientCheck(inputs: inputs, c.label) { t in
                Winograd.enabled = GradMode.isEnabled
                defer { Winograd.enabled = true }
                return Tensor.conv2d(t[0], kernel: t[1], bias: t[2], padding: c.padding)
            }
        }
    }

    /// The token-input LSTM (one-hot rows read from the input kernel, scatter-add backward),
    /// with and without an initial state, repeated tokens included.
    func testLSTMOnTokensGradients() {
        let batch = 3, steps = 4, units = 5, vocabulary = 6
        var r = TestRandom(seed: 77)
        let tokens: [Int32] = [0, 3, 3, 5, 1, 1, 2, 0, 5, 4, 3, 3]
        XCTAssertEqual(tokens.count, batch * steps)
        for withState in [false, true] {
            var inputs = [r.uniform([vocabulary, 4 * units], -1, 1), r.uniform([units, 4 * units], -0.6, 0.6),
                          r.uniform([4 * units], -0.5, 0.5)]
            if withState { inputs += [r.uniform([batch, units]), r.uniform([batch, units])] }
            gradientCheck(inputs: inputs, "lstm tokens, state \(withState)") { t in
                let res = Tensor.lstm(tokens: tokens, batch: batch, steps: steps, inputKernel: t[0], recurrentKernel: t[1],
                                      bias: t[2], initialHidden: t.count > 3 ? t[3] : nil, initialCell: t.count > 4 ? t[4] : nil)
                return Tensor.concatenate([res.outputs.reshaped([batch, steps * units]), res.finalHidden], axis: 1)
            }
        }
    }

    /// B·T·4H·H = 16·16·32·8 = 2¹⁶: the size where the LSTM splits the batch over threads (the
    /// book's text model is far above it), checked with two threads. The weights' gradients are
    /// the sums over the partitions; the input projection is held constant to keep the test fast
    /// (its rows are computed as in one partition).
    func testThreadedLSTMGradients() {
        Threads.count = 2
        let batch = 16, steps = 16, units = 8
        var r = TestRandom(seed: 78)
        let inputs = [r.uniform([batch, steps, 4 * units], -1, 1, grad: false), r.uniform([units, 4 * units], -0.4, 0.4),
                      r.uniform([4 * units], -0.5, 0.5), r.uniform([batch, units]), r.uniform([batch, units])]
        gradientCheck(inputs: inputs, "lstm, two partitions") { t in
            let res = Tensor.lstm(inputProjection: t[0], recurrentKernel: t[1], bias: t[2], initialHidden: t[3], initialCell: t[4])
            return Tensor.concatenate([res.outputs.reshaped([batch, steps * units]), res.finalHidden], axis: 1)
        }
    }

    /// 128 values per channel: batch normalisation sums its statistics in two partitions.
    func testThreadedBatchNormalizationGradients() {
        Threads.count = 2
        var r = TestRandom(seed: 79)
        let inputs = [r.uniform([2, 8, 8, 3], -2, 2), r.uniform([3], 0.5, 1.5), r.uniform([3])]
        gradientCheck(inputs: inputs, "batch norm, two partitions") {
            Tensor.batchNormalization($0[0], gamma: $0[1], beta: $0[2], epsilon: 1e-3).output
        }
    }
}
