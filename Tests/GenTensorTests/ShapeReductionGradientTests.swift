import XCTest
import GenTensor

/// Gradients of reductions (Ops/Reduction.swift) and shape ops (Ops/Shape.swift).
final class ShapeReductionGradientTests: XCTestCase {
    static let axisCases: [[Int]] = [[], [0], [1], [2], [-1], [0, 2], [1, 2], [0, 1], [0, 1, 2], [2, 0]]

    func testSumOverAxes() {
        var r = TestRandom(seed: 30)
        let x = r.uniform([2, 3, 4])
        for axes in Self.axisCases {
            for keep in [false, true] {
                gradientCheck(inputs: [x], "sum axes \(axes) keepDims \(keep)") { $0[0].sum(axes: axes, keepDims: keep) }
            }
        }
    }

    func testMeanOverAxes() {
        var r = TestRandom(seed: 31)
        let x = r.uniform([3, 2, 5])
        for axes in Self.axisCases {
            for keep in [false, true] {
                gradientCheck(inputs: [x], "mean axes \(axes) keepDims \(keep)") { $0[0].mean(axes: axes, keepDims: keep) }
            }
        }
    }

    func testSumRank2AndRank4AndUnitAxes() {
        var r = TestRandom(seed: 32)
        let m = r.uniform([4, 3])
        for axes in [[0], [1], [], [-2]] {
            gradientCheck(inputs: [m], "rank2 sum \(axes)") { $0[0].sum(axes: axes) }
        }
        let q = r.uniform([2, 3, 1, 2])
        for axes in [[1, 3], [0, 2], [2], [0, 3], [1]] {
            for keep in [false, true] {
                gradientCheck(inputs: [q], "rank4 sum \(axes) \(keep)") { $0[0].sum(axes: axes, keepDims: keep) }
            }
        }
    }

    func testReshaped() {
        var r = TestRandom(seed: 33)
        let x = r.uniform([2, 6])
        gradientCheck(inputs: [x]) { $0[0].reshaped([3, 4]) }
        gradientCheck(inputs: [x]) { $0[0].reshaped([-1]) }
        gradientCheck(inputs: [x]) { $0[0].reshaped([2, -1, 2]).exp() }
        // Reshape feeding a broadcast op and back.
        gradientCheck(inputs: [x]) { ($0[0].reshaped([4, 3]) * $0[0].reshaped([4, 3])).reshaped([12]) }
    }

    func testTransposed() {
        var r = TestRandom(seed: 34)
        let m = r.uniform([3, 5])
        gradientCheck(inputs: [m], "rank-2") { $0[0].transposed() }
        gradientCheck(inputs: [m], "rank-2 explicit") { $0[0].transposed([1, 0]) }
        gradientCheck(inputs: [m], "identity") { $0[0].transposed([0, 1]) }
        let t = r.uniform([2, 3, 4])
        for perm in [[2, 0, 1], [1, 2, 0], [0, 2, 1], [2, 1, 0]] {
            gradientCheck(inputs: [t], "rank-3 \(perm)") { $0[0].transposed(perm) }
        }
        let q = r.uniform([2, 3, 2, 4])
        for perm in [[0, 3, 1, 2], [3, 2, 1, 0], [1, 0, 3, 2]] {
            gradientCheck(inputs: [q], "rank-4 \(perm)") { $0[0].transposed(perm) }
        }
    }

    func testSlice() {
        var r = TestRandom(seed: 35)
        let x = r.uniform([3, 4, 5])
        gradientCheck(inputs: [x]) { $0[0].slice(axis: 0, range: 1..<3) }
        gradientCheck(inputs: [x]) { $0[0].slice(axis: 1, range: 0..<2) }
        gradientCheck(inputs: [x]) { $0[0].slice(axis: 2, range: 2..<5) }
        gradientCheck(inputs: [x]) { $0[0].slice(axis: -1, range: 1..<2) }
        // Overlapping slices accumulate.
        gradientCheck(inputs: [x]) { $0[0].slice(axis: 1, range: 0..<3) * $0[0].slice(axis: 1, range: 1..<4) }
    }

    func testConcatenate() {
        var r = TestRandom(seed: 36)
        let a = r.uniform([2, 3, 4]), b = r.uniform([2, 1, 4]), c = r.uniform([2, 2, 4])
        gradientCheck(inputs: [a, b, c], "axis 1") { Tensor.concatenate($0, axis: 1) }
        let d = r.uniform([1, 3, 4]), e = r.uniform([3, 3, 4])
        gradientCheck(inputs: [a, d, e], "axis 0") { Tensor.concatenate($0, axis: 0) }
        let f = r.uniform([2, 3, 2]), g = r.uniform([2, 3, 1])
        gradientCheck(inputs: [a, f, g], "axis 2") { Tensor.concatenate($0, axis: 2) }
        gradientCheck(inputs: [a, f, g], "axis -1") { Tensor.concatenate($0, axis: -1) }
        // Same tensor twice, and a constant operand.
        let k = r.uniform([2, 3, 4], grad: false)
        gradientCheck(inputs: [a, k], "repeated + constant") { Tensor.concatenate([$0[0], $0[1], $0[0]], axis: 0) }
    }

    func testGatherWithRepeatedIndices() {
        var r = TestRandom(seed: 37)
        let table = r.uniform([5, 3])
        let idx: [Int32] = [1, 4, 1, 0, 1, 4]
        gradientCheck(inputs: [table], "flat") { Tensor.gather($0[0], indices: idx) }
        gradientCheck(inputs: [table], "shaped") { Tensor.gather($0[0], indices: idx, indexShape: [2, 3]).tanh() }
        // Row 2 and 3 never gathered: their gradient must be exactly zero.
        let out = Tensor.gather(table, indices: idx)
        out.backward(seed: Tensor(repeating: 1, shape: out.shape))
        let g = table.grad!.scalars
        XCTAssertEqual(Array(g[6..<12]), [Float](repeating: 0, count: 6))
        XCTAssertEqual(Array(g[3..<6]), [3, 3, 3], "row 1 gathered three times")
        XCTAssertEqual(Array(g[12..<15]), [2, 2, 2], "row 4 gathered twice")
    }
}
