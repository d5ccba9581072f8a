import XCTest
import GenTensor

/// The checker itself: it must pass correct gradients and catch wrong ones. Wrong gradients are
/// built from public ops with `detached()`, which keeps the forward value but cuts the gradient.
final class GradientCheckSelfTests: XCTestCase {
    func testCorrectGradientPasses() {
        var r = TestRandom(seed: 1)
        let x = r.awayFromZero([3, 4])
        XCTAssertTrue(gradientReport(inputs: [x]) { $0[0] * $0[0] }.isEmpty)
        gradientCheck(inputs: [x]) { ($0[0] * $0[0]).sum() }
    }

    func testCatchesFactorOfTwo() {
        var r = TestRandom(seed: 2)
        let x = r.awayFromZero([3, 4])
        // Forward x², analytic gradient x (should be 2x).
        let m = gradientReport(inputs: [x]) { $0[0] * $0[0].detached() }
        XCTAssertFalse(m.isEmpty)
        XCTAssertTrue(m.contains { $0.element == nil }, "the norm check must fire too")
    }

    func testCatchesWrongSign() {
        var r = TestRandom(seed: 3)
        let x = r.uniform([2, 5])
        // Forward x, analytic gradient −1.
        let m = gradientReport(inputs: [x]) { $0[0].detached() * 2 - $0[0] }
        XCTAssertEqual(m.filter { $0.element != nil }.count, x.count, "every element must be flagged")
    }

    func testCatchesMissingBroadcastReduction() {
        var r = TestRandom(seed: 4)
        let a = r.uniform([4, 3], grad: false)
        let b = r.uniform([3])
        // Forward a + b, but only row 0 sends its gradient to b (as if the reduction over rows were missing).
        let m = gradientReport(inputs: [a, b]) { t in
            Tensor.concatenate([t[0].slice(axis: 0, range: 0..<1) + t[1],
                                t[0].slice(axis: 0, range: 1..<4) + t[1].detached()], axis: 0)
        }
        XCTAssertFalse(m.isEmpty)
        XCTAssertTrue(m.allSatisfy { $0.input == 1 })
    }

    func testCatchesMisroutedGradient() {
        var r = TestRandom(seed: 5)
        let x = r.uniform([3, 3])
        // Forward x, analytic gradient Rᵀ (gradient routed to the transposed position).
        let m = gradientReport(inputs: [x]) { t in
            t[0].detached() + (t[0].transposed() - t[0].transposed().detached())
        }
        XCTAssertFalse(m.isEmpty)
    }

    func testCatchesFivePercentScaleError() {
        var r = TestRandom(seed: 6)
        let x = r.uniform([2, 3])
        let m = gradientReport(inputs: [x]) { $0[0] * 1.05 - $0[0].detached() * 0.05 }
        XCTAssertFalse(m.isEmpty, "a 5% gradient error must not pass")
    }

    func testCatchesGradientThatIsMissingEntirely() {
        var r = TestRandom(seed: 7)
        let x = r.uniform([2, 3]), y = r.uniform([2, 3])
        let m = gradientReport(inputs: [x, y]) { $0[0] * $0[1].detached() + $0[1].detached() }
        XCTAssertTrue(m.contains { $0.input == 1 })
        XCTAssertFalse(m.contains { $0.input == 0 })
    }

    func testSeededBackwardMatchesComposedLoss() {
        // backward(seed: R) on f(x) is the same as backward() on sum(f(x) * R).
        var r = TestRandom(seed: 8)
        let x = r.uniform([3, 4])
        let w = r.uniform([3, 4], grad: false)
        (x.exp() * w).sum().backward()
        let composed = x.grad!.scalars
        x.grad = nil
        x.exp().backward(seed: w)
        XCTAssertEqual(composed, x.grad!.scalars)
    }
}
