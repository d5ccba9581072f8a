import XCTest
import GenTensor

/// Forward values of each op against simple Double computations.
final class ForwardValueTests: XCTestCase {
    func testBinaryOpsMatchNaiveBroadcasting() {
        var r = TestRandom(seed: 60)
        let ops: [(String, (Tensor, Tensor) -> Tensor, (Double, Double) -> Double)] = [
            ("+", { $0 + $1 }, { $0 + $1 }), ("-", { $0 - $1 }, { $0 - $1 }),
            ("*", { $0 * $1 }, { $0 * $1 }), ("/", { $0 / $1 }, { $0 / $1 }),
        ]
        for (sa, sb) in ElementwiseGradientTests.shapePairs {
            let a = r.uniform(sa, grad: false), b = r.uniform(sb, 0.5, 2, grad: false)
            for (name, op, ref) in ops {
                let out = op(a, b)
                let expected = naiveBroadcast(a, b, ref)
                XCTAssertEqual(out.shape, expected.shape, "\(sa) \(name) \(sb)")
                assertClose(out.scalars, expected.values, atol: 1e-6, rtol: 1e-6, "\(sa) \(name) \(sb)")
            }
        }
    }

    func testLargeTrailingBroadcastForwardFastPath() {
        // [N, C] + [C] above the parallel threshold takes the (same, trailing) fast path.
        var r = TestRandom(seed: 61)
        let a = r.uniform([300, 130], grad: false), b = r.uniform([130], grad: false)
        let out = a + b
        assertClose(out.scalars, naiveBroadcast(a, b, { $0 + $1 }).values, atol: 0, rtol: 0)
        let s = a - r.uniform([1], grad: false)
        XCTAssertEqual(s.shape, [300, 130])
    }

    func testUnaryOps() {
        let xs: [Float] = [-2.5, -1, -0.3, 0, 0.2, 1, 3.5]
        let x = Tensor(shape: [7], scalars: xs)
        let pos = Tensor(shape: [4], scalars: [0.25, 1, 2, 9])
        func check(_ t: Tensor, _ f: (Double) -> Double, input: [Float] = xs, atol: Double = 1e-6,
                   _ name: String, line: UInt = #line) {
            assertClose(t.scalars, input.map { f(Double($0)) }, atol: atol, rtol: 1e-6, name, line: line)
        }
        check(x.exp(), Foundation.exp, "exp")
        check(pos.log(), Foundation.log, input: [0.25, 1, 2, 9], "log")
        check(x.tanh(), Foundation.tanh, "tanh")
        check(x.sigmoid(), { 1 / (1 + Foundation.exp(-$0)) }, "sigmoid")
        check(x.relu(), { max($0, 0) }, "relu")
        check(x.leakyRelu(), { $0 > 0 ? $0 : 0.2 * $0 }, "leakyRelu")
        check(x.leakyRelu(alpha: 0.3), { $0 > 0 ? $0 : 0.3 * $0 }, "leakyRelu 0.3")
        check(x.squared(), { $0 * $0 }, "squared")
        check(pos.sqrt(), { $0.squareRoot() }, input: [0.25, 1, 2, 9], "sqrt")
        check(x.abs(), { Swift.abs($0) }, "abs")
        check(-x, { -$0 }, "neg")
        check(x + 2, { $0 + 2 }, "+s")
        check(x - 2, { $0 - 2 }, "-s")
        check(2 - x, { 2 - $0 }, "s-")
        check(x * 3, { $0 * 3 }, "*s")
        check(3 * x, { 3 * $0 }, "s*")
        check(x / 4, { $0 / 4 }, "/s")
    }

    func testKinkDerivativesAreZeroAtZero() {
        let x = Tensor(shape: [3], scalars: [0, 0, 0], requiresGrad: true)
        (x.relu() + x.abs()).backward(seed: Tensor(repeating: 1, shape: [3]))
        XCTAssertEqual(x.grad!.scalars, [0, 0, 0])
        x.grad = nil
        x.leakyRelu(alpha: 0.25).backward(seed: Tensor(repeating: 1, shape: [3]))
        XCTAssertEqual(x.grad!.scalars, [0.25, 0.25, 0.25])
    }

    func testSumAndMeanMatchNaive() {
        var r = TestRandom(seed: 62)
        let shape = [2, 3, 4]
        let x = r.uniform(shape, grad: false)
        let v = x.scalars
        for axes in ShapeReductionGradientTests.axisCases {
            let norm = Set((axes.isEmpty ? [0, 1, 2] : axes).map { $0 < 0 ? $0 + 3 : $0 })
            let kept = shape.enumerated().map { norm.contains($0.offset) ? 1 : $0.element }
            var expected = [Double](repeating: 0, count: kept.reduce(1, *))
            for i in 0..<v.count {
                let idx = multiIndex(i, shape).enumerated().map { norm.contains($0.offset) ? 0 : $0.element }
                expected[linearIndex(idx, kept)] += Double(v[i])
            }
            let dropped = shape.enumerated().filter { !norm.contains($0.offset) }.map(\.element)
            let s = x.sum(axes: axes), sk = x.sum(axes: axes, keepDims: true)
            XCTAssertEqual(s.shape, dropped, "sum \(axes)")
            XCTAssertEqual(sk.shape, kept, "sum keepDims \(axes)")
            assertClose(s.scalars, expected, atol: 1e-5, "sum \(axes)")
            assertClose(sk.scalars, expected, atol: 1e-5, "sum keepDims \(axes)")
            let n = Double(norm.reduce(1) { $0 * shape[$1] })
            let m = x.mean(axes: axes, keepDims: true)
            assertClose(m.scalars, expected.map { $0 / n }, atol: 1e-6, "mean \(axes)")
        }
        XCTAssertEqual(x.sum().shape, [])
        XCTAssertEqual(x.mean().shape, [])
    }

    func testShapeOps() {
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(x.reshaped([3, -1]).shape, [3, 2])
        XCTAssertEqual(x.reshaped([3, -1]).scalars, x.scalars)
        XCTAssertEqual(x.transposed().shape, [3, 2])
        XCTAssertEqual(x.transposed().scalars, [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(x.slice(axis: 1, range: 1..<3).scalars, [2, 3, 5, 6])
        XCTAssertEqual(x.slice(axis: 0, range: 1..<2).scalars, [4, 5, 6])
        XCTAssertEqual(Tensor.concatenate([x, x.slice(axis: 1, range: 0..<1)], axis: 1).scalars,
                       [1, 2, 3, 1, 4, 5, 6, 4])
        XCTAssertEqual(Tensor.concatenate([x, x], axis: 0).shape, [4, 3])
        let g = Tensor.gather(x.reshaped([3, 2]), indices: [2, 0, 2], indexShape: [3, 1])
        XCTAssertEqual(g.shape, [3, 1, 2])
        XCTAssertEqual(g.scalars, [5, 6, 1, 2, 5, 6])
    }

    func testTransposeRank4MatchesNaive() {
        var r = TestRandom(seed: 63)
        let shape = [2, 3, 4, 5], perm = [0, 3, 1, 2]
        let x = r.uniform(shape, grad: false)
        let t = x.transposed(perm)
        let outShape = perm.map { shape[$0] }
        XCTAssertEqual(t.shape, outShape)
        let v = x.scalars, tv = t.scalars
        for i in 0..<tv.count {
            let oi = multiIndex(i, outShape)
            var ii = [Int](repeating: 0, count: 4)
            for d in 0..<4 { ii[perm[d]] = oi[d] }
            XCTAssertEqual(tv[i], v[linearIndex(ii, shape)])
        }
    }

    func testMatmulMatchesNaive() {
        var r = TestRandom(seed: 64)
        let m = 3, k = 4, n = 2
        for ta in [false, true] {
            for tb in [false, true] {
                let a = r.uniform(ta ? [k, m] : [m, k], grad: false), b = r.uniform(tb ? [n, k] : [k, n], grad: false)
                let av = a.scalars, bv = b.scalars
                var expected = [Double](repeating: 0, count: m * n)
                for i in 0..<m {
                    for j in 0..<n {
                        for p in 0..<k {
                            let aip = av[ta ? p * m + i : i * k + p], bpj = bv[tb ? j * k + p : p * n + j]
                            expected[i * n + j] += Double(aip) * Double(bpj)
                        }
                    }
                }
                let c = Tensor.matmul(a, b, transposeA: ta, transposeB: tb)
                XCTAssertEqual(c.shape, [m, n])
                assertClose(c.scalars, expected, atol: 1e-6, "\(ta) \(tb)")
            }
        }
    }

    func testSoftmaxFamily() {
        var r = TestRandom(seed: 65)
        let x = r.uniform([4, 6], -5, 5, grad: false)
        let s = x.softmax().scalars, ls = x.logSoftmax().scalars, v = x.scalars
        for row in 0..<4 {
            let xr = v[(row * 6)..<(row * 6 + 6)].map(Double.init)
            let mx = xr.max()!
            let lse = mx + Foundation.log(xr.reduce(0) { $0 + Foundation.exp($1 - mx) })
            let sumRow = s[(row * 6)..<(row * 6 + 6)].reduce(0, +)
            XCTAssertEqual(sumRow, 1, accuracy: 1e-6, "softmax row \(row) sums to 1")
            for j in 0..<6 {
                XCTAssertEqual(Double(s[row * 6 + j]), Foundation.exp(xr[j] - lse), accuracy: 1e-6)
                XCTAssertEqual(Double(ls[row * 6 + j]), xr[j] - lse, accuracy: 2e-6)
                XCTAssertGreaterThan(s[row * 6 + j], 0)
                XCTAssertLessThanOrEqual(ls[row * 6 + j], 0)
            }
        }
        // Shift invariance and stability with huge logits.
        let big = Tensor(shape: [1, 3], scalars: [1000, 1001, 999]).softmax().scalars
        let small = Tensor(shape: [1, 3], scalars: [1, 2, 0]).softmax().scalars
        assertClose(big, small.map(Double.init), atol: 1e-6)
        XCTAssertTrue(Tensor(shape: [1, 2], scalars: [-1000, 1000]).logSoftmax().scalars.allSatisfy(\.isFinite))
    }

    func testSoftmaxCrossEntropyValue() {
        let logits = Tensor(shape: [2, 3], scalars: [1, 2, 3, 0, 0, 0])
        let loss = Tensor.softmaxCrossEntropy(logits: logits, labels: [2, 1])
        let l0 = -Foundation.log(Foundation.exp(3.0) / (Foundation.exp(1.0) + Foundation.exp(2.0) + Foundation.exp(3.0)))
        let l1 = Foundation.log(3.0)
        XCTAssertEqual(loss.shape, [])
        XCTAssertEqual(Double(loss.scalar), (l0 + l1) / 2, accuracy: 1e-6)
        // Gradient is (softmax − onehot) / N.
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 0, 0, 0], requiresGrad: true)
        Tensor.softmaxCrossEntropy(logits: x, labels: [2, 1]).backward()
        let p = x.softmax().scalars
        let expected = [p[0], p[1], p[2] - 1, p[3], p[4] - 1, p[5]].map { Double($0) / 2 }
        assertClose(x.grad!.scalars, expected, atol: 1e-6)
    }
}
