import XCTest
import GenTensor

/// Gradients of the elementwise ops (Ops/Elementwise.swift, Ops/Broadcasting.swift) against
/// central finite differences.
final class ElementwiseGradientTests: XCTestCase {
    /// Broadcasting shape pairs covering every `BroadcastPattern` case on each side.
    static let shapePairs: [([Int], [Int])] = [
        ([2, 3], [2, 3]),          // same
        ([3, 4], [1]),             // scalar [1]
        ([3, 4], []),              // scalar []
        ([], [2, 3]),              // scalar on the left
        ([4, 3], [3]),             // trailing [C] vs [N,C]
        ([3], [4, 3]),             // trailing on the left
        ([2, 4, 3], [1, 3]),       // trailing with a leading one
        ([4, 3], [4, 1]),          // leading [N,1] vs [N,C]
        ([4, 1], [4, 3]),          // leading on the left
        ([2, 3, 4], [2, 3, 1]),    // leading, rank 3
        ([2, 1, 3], [4, 1]),       // general: both operands broadcast
        ([3, 1], [1, 4]),          // outer product
        ([2, 3, 4], [3, 1]),       // general: middle block
        ([2, 3, 4], [1, 3, 1]),    // general
        ([1, 3, 1], [2, 1, 4]),    // general, both
    ]

    /// Positive values for divisors (keeps 1/y smooth).
    private func divisor(_ r: inout TestRandom, _ shape: [Int]) -> Tensor {
        r.uniform(shape, 0.6, 1.8)
    }

    func testAddBroadcasting() {
        var r = TestRandom(seed: 10)
        for (sa, sb) in Self.shapePairs {
            let a = r.uniform(sa), b = r.uniform(sb)
            gradientCheck(inputs: [a, b], "add \(sa) + \(sb)") { $0[0] + $0[1] }
        }
    }

    func testSubtractBroadcasting() {
        var r = TestRandom(seed: 11)
        for (sa, sb) in Self.shapePairs {
            let a = r.uniform(sa), b = r.uniform(sb)
            gradientCheck(inputs: [a, b], "subtract \(sa) - \(sb)") { $0[0] - $0[1] }
        }
    }

    func testMultiplyBroadcasting() {
        var r = TestRandom(seed: 12)
        for (sa, sb) in Self.shapePairs {
            let a = r.uniform(sa), b = r.uniform(sb)
            gradientCheck(inputs: [a, b], "multiply \(sa) * \(sb)") { $0[0] * $0[1] }
        }
    }

    func testDivideBroadcasting() {
        var r = TestRandom(seed: 13)
        for (sa, sb) in Self.shapePairs {
            let a = r.uniform(sa), b = divisor(&r, sb)
            gradientCheck(inputs: [a, b], "divide \(sa) / \(sb)") { $0[0] / $0[1] }
        }
    }

    func testBinaryOpsWithOnlyOneOperandRequiringGrad() {
        var r = TestRandom(seed: 14)
        for (sa, sb) in [([4, 3], [3]), ([2, 1, 3], [4, 1]), ([3, 4], [3, 1])] {
            let a = r.uniform(sa), b = divisor(&r, sb)
            let ac = r.uniform(sa, grad: false), bc = divisor(&r, sb); bc.requiresGrad = false
            gradientCheck(inputs: [a, bc], "a only \(sa) \(sb)") { ($0[0] * $0[1]) / $0[1] + $0[0] / $0[1] - $0[1] }
            gradientCheck(inputs: [ac, b], "b only \(sa) \(sb)") { ($0[0] * $0[1]) / $0[1] + $0[0] / $0[1] - $0[1] }
        }
    }

    func testSameTensorOnBothSides() {
        var r = TestRandom(seed: 15)
        let x = r.uniform([3, 4], 0.5, 1.5)
        gradientCheck(inputs: [x]) { $0[0] * $0[0] }
        gradientCheck(inputs: [x]) { $0[0] / $0[0] + $0[0] - $0[0] * 3 }
        gradientCheck(inputs: [x]) { $0[0] + $0[0] }
    }

    func testScalarOps() {
        var r = TestRandom(seed: 16)
        let x = r.uniform([3, 5])
        gradientCheck(inputs: [x], "x + s") { $0[0] + 1.7 }
        gradientCheck(inputs: [x], "x - s") { $0[0] - 0.3 }
        gradientCheck(inputs: [x], "s - x") { 2.5 - $0[0] }
        gradientCheck(inputs: [x], "x * s") { $0[0] * -1.9 }
        gradientCheck(inputs: [x], "s * x") { 3.1 * $0[0] }
        gradientCheck(inputs: [x], "x / s") { $0[0] / 0.7 }
        gradientCheck(inputs: [x], "neg") { -$0[0] }
    }

    func testExpLog() {
        var r = TestRandom(seed: 17)
        gradientCheck(inputs: [r.uniform([3, 4], -2, 2)], "exp") { $0[0].exp() }
        gradientCheck(inputs: [r.uniform([3, 4], 0.3, 3)], "log") { $0[0].log() }
    }

    func testTanhSigmoid() {
        var r = TestRandom(seed: 18)
        gradientCheck(inputs: [r.uniform([4, 5], -3, 3)], "tanh") { $0[0].tanh() }
        gradientCheck(inputs: [r.uniform([4, 5], -5, 5)], "sigmoid") { $0[0].sigmoid() }
    }

    func testReluLeakyReluAbsAwayFromKinks() {
        var r = TestRandom(seed: 19)
        let x = r.awayFromZero([4, 5], 0.1, 2)
        gradientCheck(inputs: [x], "relu") { $0[0].relu() }
        gradientCheck(inputs: [x], "leakyRelu default") { $0[0].leakyRelu() }
        gradientCheck(inputs: [x], "leakyRelu 0.3") { $0[0].leakyRelu(alpha: 0.3) }
        gradientCheck(inputs: [x], "abs") { $0[0].abs() }
    }

    func testSquaredSqrt() {
        var r = TestRandom(seed: 20)
        gradientCheck(inputs: [r.uniform([3, 4], -2, 2)], "squared") { $0[0].squared() }
        gradientCheck(inputs: [r.uniform([3, 4], 0.3, 3)], "sqrt") { $0[0].sqrt() }
    }

    func testUnaryOnRank0AndRank3() {
        var r = TestRandom(seed: 21)
        let s = Tensor(shape: [], scalars: [0.4], requiresGrad: true)
        gradientCheck(inputs: [s], "rank-0 chain") { ($0[0].exp() * $0[0].tanh()).sigmoid() }
        let x = r.uniform([2, 3, 2], 0.2, 1.5)
        gradientCheck(inputs: [x], "rank-3 chain") { ($0[0].log() + $0[0].sqrt()).squared() }
    }

    func testCompositeExpression() {
        // A chain through shared intermediates: exercises the topological order of backward().
        var r = TestRandom(seed: 22)
        let x = r.uniform([3, 4]), w = r.uniform([4]), c = r.uniform([3, 1])
        gradientCheck(inputs: [x, w, c]) { t in
            let h = (t[0] * t[1] + t[2]).tanh()
            let g = h.sigmoid()
            return h * g + (h - t[2]).squared() * 0.5
        }
    }

    /// Broadcast ops large enough to take the multi-threaded paths (above `parallelThreshold`).
    func testLargeBroadcastGradientsMatchSmallReference() {
        let rows = 160, cols = 256   // 40960 elements
        var r = TestRandom(seed: 23)
        let a = r.uniform([rows, cols]), b = r.uniform([cols]), c = r.uniform([rows, 1], 0.5, 1.5)
        let out = (a * b) / c
        let w = r.uniform([rows, cols], grad: false)
        out.backward(seed: w)
        let av = a.scalars, bv = b.scalars, cv = c.scalars, wv = w.scalars
        var da = [Double](repeating: 0, count: rows * cols)
        var db = [Double](repeating: 0, count: cols), dc = [Double](repeating: 0, count: rows)
        for i in 0..<rows {
            for j in 0..<cols {
                let k = i * cols + j
                let ci = Double(cv[i]), g = Double(wv[k])
                da[k] = g * Double(bv[j]) / ci
                db[j] += g * Double(av[k]) / ci
                dc[i] -= g * Double(av[k]) * Double(bv[j]) / (ci * ci)
            }
        }
        assertClose(a.grad!.scalars, da, atol: 1e-5, rtol: 1e-5, "da")
        assertClose(b.grad!.scalars, db, atol: 1e-3, rtol: 1e-4, "db")
        assertClose(c.grad!.scalars, dc, atol: 1e-3, rtol: 1e-4, "dc")
        let tn = (a.tanh() + 0).scalars
        assertClose(tn, av.map { Foundation.tanh(Double($0)) }, atol: 1e-6, rtol: 0, "large tanh")
    }
}
