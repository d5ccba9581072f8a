import XCTest
@testable import GenNN

/// L-BFGS against PyTorch's `torch.optim.LBFGS(line_search_fn="strong_wolfe")` (float32) and SciPy;
/// the reference numbers come from Tools/lbfgs_reference.py.
final class LBFGSTests: XCTestCase {
    /// Rosenbrock f(x, y) = (1 − x)² + 100(y − x²)² and its gradient.
    func rosenbrock(_ p: [Float]) -> (loss: Double, gradient: [Float]) {
        let x = Double(p[0]), y = Double(p[1])
        let f = (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x)
        let gx = -2 * (1 - x) - 400 * x * (y - x * x)
        let gy = 200 * (y - x * x)
        return (f, [Float(gx), Float(gy)])
    }

    static let a: [[Double]] = [[4, 1, 0, 0, 0, 0], [1, 3, 1, 0, 0, 0], [0, 1, 5, 1, 0, 0],
                                [0, 0, 1, 2, 0.5, 0], [0, 0, 0, 0.5, 6, 1], [0, 0, 0, 0, 1, 1.5]]
    static let b: [Double] = [1, -2, 3, 0.5, -1, 2]

    /// ½xᵀAx − bᵀx.
    func quadratic(_ p: [Float]) -> (loss: Double, gradient: [Float]) {
        let x = p.map(Double.init)
        var f = 0.0
        var g = [Float](repeating: 0, count: 6)
        for i in 0..<6 {
            var ax = 0.0
            for j in 0..<6 { ax += Self.a[i][j] * x[j] }
            f += 0.5 * x[i] * ax - Self.b[i] * x[i]
            g[i] = Float(ax - Self.b[i])
        }
        return (f, g)
    }

    func testRosenbrockConvergesLikePyTorch() {
        var o = LBFGSOptions()
        o.maxIterations = 200
        o.maxEvaluations = 400
        var x: [Float] = [-1.5, 2.0]
        let r = LBFGS(options: o).minimize(&x, objective: rosenbrock)
        XCTAssertEqual(x[0], 1, accuracy: 1e-4)
        XCTAssertEqual(x[1], 1, accuracy: 1e-4)
        XCTAssertLessThan(r.loss, 1e-8)
        // PyTorch: 48 evaluations, 40 iterations (SciPy L-BFGS-B m=10: 53 evaluations).
        XCTAssertLessThanOrEqual(abs(r.evaluations - 48), 6, "evaluations \(r.evaluations)")
        XCTAssertEqual(r.evaluationLosses.count, r.evaluations)
    }

    func testFirstEvaluationsMatchPyTorchExactly() {
        // The first ten losses of torch's run from (−1.5, 2): the same trial points, so the same
        // line-search decisions (float32 vectors, so compare to 5 significant digits).
        let torch: [Double] = [12.5, 288.824, 5.87581, 5.86357, 5.86185, 5.8519, 5.83117, 5.77417, 5.66074, 5.49498]
        var o = LBFGSOptions()
        o.maxIterations = 1000
        o.maxEvaluations = 10
        var x: [Float] = [-1.5, 2.0]
        let r = LBFGS(options: o).minimize(&x, objective: rosenbrock)
        XCTAssertEqual(r.evaluations, 10)
        XCTAssertEqual(r.iterations, 8)
        XCTAssertEqual(r.reason, .maxEvaluations)
        for (ours, ref) in zip(r.evaluationLosses, torch) {
            XCTAssertEqual(ours, ref, accuracy: 1e-4 * max(1, abs(ref)))
        }
        XCTAssertEqual(x[0], -1.2871923, accuracy: 1e-4)
        XCTAssertEqual(x[1], 1.6055093, accuracy: 1e-4)
    }

    func testQuadraticReachesTheSolution() {
        var o = LBFGSOptions()
        o.maxIterations = 100
        o.maxEvaluations = 200
        var x = [Float](repeating: 0, count: 6)
        let r = LBFGS(options: o).minimize(&x, objective: quadratic)
        let solution: [Float] = [0.5305942, -1.1223770, 0.8365368, -0.0603069, -0.4318463, 1.6212308]
        for (u, v) in zip(x, solution) { XCTAssertEqual(u, v, accuracy: 1e-4) }
        XCTAssertEqual(r.loss, -4.4645567, accuracy: 1e-5)
        // PyTorch: 11 evaluations, 10 iterations; losses [0, −1.71607, −4.31544, −4.44527, ...].
        XCTAssertLessThanOrEqual(r.evaluations, 14)
        XCTAssertEqual(r.evaluationLosses[1], -1.71607, accuracy: 1e-4)
        XCTAssertEqual(r.evaluationLosses[2], -4.31544, accuracy: 1e-4)
    }

    func testFixedStepAndHistorySizeOne() {
        var o = LBFGSOptions()
        o.lineSearch = .fixed
        o.learningRate = 0.5
        o.historySize = 1
        o.maxIterations = 300
        o.maxEvaluations = 1000
        var x = [Float](repeating: 0, count: 6)
        let r = LBFGS(options: o).minimize(&x, objective: quadratic)
        XCTAssertEqual(r.loss, -4.4645567, accuracy: 1e-3)
    }

    func testCallbackStopsAndNonFiniteLossStopsCleanly() {
        var x: [Float] = [-1.5, 2.0]
        var calls = 0
        let r = LBFGS().minimize(&x, objective: rosenbrock) { it, _ in
            calls += 1
            return it.iteration < 3
        }
        XCTAssertEqual(r.reason, .callback)
        XCTAssertEqual(calls, 3)

        // A loss that turns NaN after a few evaluations: stop, keep the last finite iterate.
        var y: [Float] = [-1.5, 2.0]
        var n = 0
        let r2 = LBFGS().minimize(&y) { p in
            n += 1
            return n > 4 ? (.nan, [.nan, .nan]) : self.rosenbrock(p)
        }
        XCTAssertEqual(r2.reason, .nonFinite)
        XCTAssertTrue(y.allSatisfy { $0.isFinite })
        XCTAssertTrue(r2.loss.isFinite || r2.iterations == 0)
    }

    func testAlreadyOptimalReturnsImmediately() {
        var x: [Float] = [1, 1]
        let r = LBFGS().minimize(&x, objective: rosenbrock)
        XCTAssertEqual(r.reason, .gradientTolerance)
        XCTAssertEqual(r.evaluations, 1)
    }

    func testCubicInterpolationMinimisesACubic() {
        // f(t) = (t − 2)² on [0, 5]: f(0)=4, f'(0)=−4, f(5)=9, f'(5)=6 → minimum at 2.
        XCTAssertEqual(LBFGS.cubicInterpolate(0, 4, -4, 5, 9, 6, bounds: nil), 2, accuracy: 1e-12)
        // No real minimiser → midpoint of the bounds.
        XCTAssertEqual(LBFGS.cubicInterpolate(0, 0, 1, 1, 2.0 / 3, 1, bounds: (0, 1)), 0.5, accuracy: 1e-12)
    }
}
