import XCTest
import GenTensor

/// Gradients of matmul (Ops/MatMul.swift) and the softmax family (Ops/Softmax.swift).
final class MatMulSoftmaxGradientTests: XCTestCase {
    func testMatmulAllTransposeCombinations() {
        var r = TestRandom(seed: 40)
        let m = 3, k = 4, n = 5
        for ta in [false, true] {
            for tb in [false, true] {
                let a = r.uniform(ta ? [k, m] : [m, k])
                let b = r.uniform(tb ? [n, k] : [k, n])
                gradientCheck(inputs: [a, b], "transposeA \(ta) transposeB \(tb)") {
                    Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb)
                }
            }
        }
    }

    func testMatmulVectorShapesAndSharedOperand() {
        var r = TestRandom(seed: 41)
        let row = r.uniform([1, 4]), mat = r.uniform([4, 2]), col = r.uniform([2, 1])
        gradientCheck(inputs: [row, mat, col], "row·mat·col") { Tensor.matmul(Tensor.matmul($0[0], $0[1]), $0[2]) }
        let x = r.uniform([3, 2])
        gradientCheck(inputs: [x], "xᵀx") { Tensor.matmul($0[0], $0[0], transposeA: true) }
        gradientCheck(inputs: [x], "xxᵀ") { Tensor.matmul($0[0], $0[0], transposeB: true) }
    }

    func testSoftmax() {
        var r = TestRandom(seed: 42)
        gradientCheck(inputs: [r.uniform([3, 5], -2, 2)], "rank 2") { $0[0].softmax() }
        gradientCheck(inputs: [r.uniform([2, 2, 4], -2, 2)], "rank 3") { $0[0].softmax() }
        gradientCheck(inputs: [r.uniform([6], -2, 2)], "rank 1") { $0[0].softmax() }
    }

    func testLogSoftmax() {
        var r = TestRandom(seed: 43)
        gradientCheck(inputs: [r.uniform([3, 5], -2, 2)], "rank 2") { $0[0].logSoftmax() }
        gradientCheck(inputs: [r.uniform([2, 2, 4], -2, 2)], "rank 3") { $0[0].logSoftmax() }
        gradientCheck(inputs: [r.uniform([1, 7], -2, 2)], "one row") { $0[0].logSoftmax() }
    }

    func testSoftmaxCrossEntropy() {
        var r = TestRandom(seed: 44)
        let logits = r.uniform([4, 6], -2, 2)
        let labels: [Int32] = [0, 5, 2, 2]
        gradientCheck(inputs: [logits]) { Tensor.softmaxCrossEntropy(logits: $0[0], labels: labels) }
        // Composed with upstream ops, as a network uses it.
        let w = r.uniform([3, 6]), x = r.uniform([4, 3], grad: false)
        gradientCheck(inputs: [w, x]) { t in
            Tensor.softmaxCrossEntropy(logits: Tensor.matmul(t[1], t[0]), labels: labels) * 2.5
        }
    }

    func testSoftmaxCrossEntropyMatchesLogSoftmaxComposition() {
        var r = TestRandom(seed: 45)
        let logits = r.uniform([5, 4], -3, 3)
        let labels: [Int32] = [3, 0, 1, 3, 2]
        let fused = Tensor.softmaxCrossEntropy(logits: logits, labels: labels)
        fused.backward()
        let gFused = logits.grad!.scalars
        logits.grad = nil
        var onehot = [Float](repeating: 0, count: 20)
        for (i, l) in labels.enumerated() { onehot[i * 4 + Int(l)] = 1 }
        let composed = -(logits.logSoftmax() * Tensor(shape: [5, 4], scalars: onehot)).sum() / 5
        composed.backward()
        XCTAssertEqual(fused.scalar, composed.scalar, accuracy: 1e-5)
        assertClose(gFused, logits.grad!.scalars.map(Double.init), atol: 1e-6, rtol: 1e-5)
    }
    /// Softmax, logSoftmax and sum on tensors large enough to run their multi-threaded paths.
    func testLargeTensorsMatchRowwiseReference() {
        var r = TestRandom(seed: 46)
        let rows = 600, c = 64
        let x = r.uniform([rows, c], -3, 3)
        let w = r.uniform([rows, c], grad: false)
        let sm = x.softmax()
        sm.backward(seed: w)
        let gSoftmax = x.grad!.scalars
        x.grad = nil
        let lsm = x.logSoftmax()
        lsm.backward(seed: w)
        let gLog = x.grad!.scalars
        x.grad = nil
        let colSum = x.sum(axes: [0])
        colSum.backward(seed: Tensor(repeating: 2, shape: [c]))
        XCTAssertEqual(x.grad!.scalars, [Float](repeating: 2, count: rows * c))
        let xv = x.scalars, wv = w.scalars, sv = sm.scalars, lv = lsm.scalars, cs = colSum.scalars
        var colRef = [Double](repeating: 0, count: c)
        for i in 0..<rows {
            let xr = xv[(i * c)..<((i + 1) * c)].map(Double.init), wr = wv[(i * c)..<((i + 1) * c)].map(Double.init)
            let mx = xr.max()!
            let lse = mx + Foundation.log(xr.reduce(0) { $0 + Foundation.exp($1 - mx) })
            let p = xr.map { Foundation.exp($0 - lse) }
            let dot = zip(p, wr).reduce(0) { $0 + $1.0 * $1.1 }
            let wsum = wr.reduce(0, +)
            for j in 0..<c {
                let k = i * c + j
                XCTAssertEqual(Double(sv[k]), p[j], accuracy: 1e-6)
                XCTAssertEqual(Double(lv[k]), xr[j] - lse, accuracy: 3e-6)
                XCTAssertEqual(Double(gSoftmax[k]), p[j] * (wr[j] - dot), accuracy: 1e-6)
                XCTAssertEqual(Double(gLog[k]), wr[j] - p[j] * wsum, accuracy: 1e-5)
                colRef[j] += xr[j]
            }
        }
        assertClose(cs, colRef, atol: 1e-3, rtol: 1e-5, "column sums")
    }
}
