import Foundation
import XCTest
import GenTensor

// Numeric gradient checking for the engine's ops.
//
// Method: for a function f of some input tensors, take a fixed random weight tensor R of f's output
// shape and the scalar objective L = Σ f(x) ⊙ R, so every output element matters with a distinct
// weight. The analytic gradient comes from `backward(seed: R)` on f's output (the same thing as
// backward on L, without routing the check through `*` and `sum`). The numeric gradient of each
// input scalar is the central difference (L(x+ε) − L(x−ε)) / 2ε, where L is accumulated in Double
// from float32 forward passes run under `withNoGrad`.

/// Tolerances and step for ``gradientCheck(inputs:epsilon:tolerance:file:line:_:)``.
struct GradientTolerance {
    /// Finite-difference step.
    var epsilon: Float = 1e-2
    /// Elementwise: |analytic − numeric| ≤ absolute + relative · |numeric|.
    var absolute: Double = 3e-3
    var relative: Double = 1e-2
    /// Aggregate: ‖analytic − numeric‖₂ ≤ normRelative · ‖numeric‖₂ (+ absolute). Catches errors
    /// that are small per element but systematic (a scale factor, a missing reduction).
    var normRelative: Double = 1e-2

    static let standard = GradientTolerance()
}

/// Deterministic random numbers for tests.
struct TestRandom {
    var rng: RandomGenerator
    init(seed: UInt64) { rng = RandomGenerator(seed: seed) }

    /// Uniform in [low, high).
    mutating func uniform(_ shape: [Int], _ low: Float = -1, _ high: Float = 1, grad: Bool = true) -> Tensor {
        let t = Tensor.uniform(shape, low: low, high: high, using: &rng)
        t.requiresGrad = grad
        return t
    }

    /// Uniform magnitudes in [low, high) with random signs: keeps values away from kinks at 0.
    mutating func awayFromZero(_ shape: [Int], _ low: Float = 0.2, _ high: Float = 1.5, grad: Bool = true) -> Tensor {
        let t = Tensor.uniform(shape, low: low, high: high, using: &rng)
        t.withUnsafeMutableBufferPointer { p in
            for i in p.indices where rng.nextUniform() < 0.5 { p[i] = -p[i] }
        }
        t.requiresGrad = grad
        return t
    }

    mutating func normal(_ shape: [Int], grad: Bool = true) -> Tensor {
        let t = Tensor.normal(shape, using: &rng)
        t.requiresGrad = grad
        return t
    }

    mutating func indices(_ n: Int, below bound: Int) -> [Int32] {
        (0..<n).map { _ in Int32(rng.nextInt(below: bound)) }
    }
}

/// One mismatch found by ``gradientReport(inputs:tolerance:_:)``.
struct GradientMismatch: CustomStringConvertible {
    var input: Int
    var element: Int?   // nil for the aggregate (norm) check
    var analytic: Double
    var numeric: Double
    var description: String {
        if let element {
            return "input \(input) element \(element): analytic \(analytic), numeric \(numeric)"
        }
        return "input \(input) norm check: ‖a−n‖ = \(analytic), ‖n‖ = \(numeric)"
    }
}

/// Σ out ⊙ R in Double.
private func weightedSum(_ out: Tensor, _ r: [Float]) -> Double {
    precondition(out.count == r.count)
    return out.withUnsafeBufferPointer { p in
        var s = 0.0
        for i in 0..<r.count { s += Double(p[i]) * Double(r[i]) }
        return s
    }
}

/// Runs the check and returns the mismatches (empty when analytic and numeric gradients agree).
/// Inputs whose `requiresGrad` is false are held constant and not checked.
func gradientReport(inputs: [Tensor], tolerance tol: GradientTolerance = .standard, seed: UInt64 = 0xC0FFEE,
                    _ f: ([Tensor]) -> Tensor) -> [GradientMismatch] {
    for x in inputs { x.grad = nil }
    // Analytic.
    let out = f(inputs)
    var rng = RandomGenerator(seed: seed ^ UInt64(out.count))
    // Weights in ±[0.5, 1.5): random, never near zero.
    let weights: [Float] = (0..<out.count).map { _ in
        let m = 0.5 + rng.nextUniform()
        return rng.nextUniform() < 0.5 ? -m : m
    }
    out.backward(seed: Tensor(shape: out.shape, scalars: weights))
    let analytic: [[Float]?] = inputs.map { x in
        x.requiresGrad ? (x.grad?.scalars ?? [Float](repeating: 0, count: x.count)) : nil
    }
    for x in inputs { x.grad = nil }

    // Numeric.
    var mismatches: [GradientMismatch] = []
    for (k, x) in inputs.enumerated() {
        guard let a = analytic[k] else { continue }
        XCTAssertEqual(a.count, x.count, "gradient of input \(k) has the wrong number of scalars")
        var numeric = [Double](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let orig = x.withUnsafeBufferPointer { $0[i] }
            x.withUnsafeMutableBufferPointer { $0[i] = orig + tol.epsilon }
            let plusStep = Double(x.withUnsafeBufferPointer { $0[i] }) - Double(orig)
            let lPlus = withNoGrad { weightedSum(f(inputs), weights) }
            x.withUnsafeMutableBufferPointer { $0[i] = orig - tol.epsilon }
            let minusStep = Double(orig) - Double(x.withUnsafeBufferPointer { $0[i] })
            let lMinus = withNoGrad { weightedSum(f(inputs), weights) }
            x.withUnsafeMutableBufferPointer { $0[i] = orig }
            numeric[i] = (lPlus - lMinus) / (plusStep + minusStep)
        }
        var diff2 = 0.0, num2 = 0.0
        for i in 0..<x.count {
            let ai = Double(a[i]), ni = numeric[i]
            diff2 += (ai - ni) * (ai - ni)
            num2 += ni * ni
            if !(Swift.abs(ai - ni) <= tol.absolute + tol.relative * Swift.abs(ni)) {
                mismatches.append(GradientMismatch(input: k, element: i, analytic: ai, numeric: ni))
            }
        }
        let dn = diff2.squareRoot(), nn = num2.squareRoot()
        if ProcessInfo.processInfo.environment["GRADCHECK_VERBOSE"] != nil {
            var worst = 0.0
            for i in 0..<x.count {
                worst = max(worst, Swift.abs(Double(a[i]) - numeric[i]) / (tol.absolute + tol.relative * Swift.abs(numeric[i])))
            }
            print(String(format: "gradcheck input %d %@: worst element ratio %.3f, norm ratio %.3f", k, "\(x.shape)",
                         worst, dn / (tol.normRelative * nn + tol.absolute)))
        }
        if !(dn <= tol.normRelative * nn + tol.absolute) {
            mismatches.append(GradientMismatch(input: k, element: nil, analytic: dn, numeric: nn))
        }
    }
    return mismatches
}

/// Checks every input's analytic gradient (from `backward`) against central finite differences of
/// L = Σ f(inputs) ⊙ R for a fixed random R. Fails the current test on the first few mismatches.
///
/// - Parameters:
///   - inputs: leaf tensors; those with `requiresGrad` are checked, the others held constant.
///   - f: the op under test. It is called many times and must be deterministic.
func gradientCheck(inputs: [Tensor], tolerance: GradientTolerance = .standard,
                   _ message: @autoclosure () -> String = "",
                   file: StaticString = #filePath, line: UInt = #line,
                   _ f: ([Tensor]) -> Tensor) {
    let mismatches = gradientReport(inputs: inputs, tolerance: tolerance, f)
    if !mismatches.isEmpty {
        let shapes = inputs.map { "\($0.shape)" }.joined(separator: ", ")
        let shown = mismatches.prefix(6).map(\.description).joined(separator: "; ")
        XCTFail("gradient check failed \(message()) for inputs \(shapes): \(mismatches.count) mismatches: \(shown)",
                file: file, line: line)
    }
}

/// Forward-value comparison helper.
func assertClose(_ actual: [Float], _ expected: [Double], atol: Double = 1e-5, rtol: Double = 1e-5,
                 _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "count differs \(message())", file: file, line: line)
    guard actual.count == expected.count else { return }
    for i in 0..<actual.count {
        let a = Double(actual[i]), e = expected[i]
        if !(Swift.abs(a - e) <= atol + rtol * Swift.abs(e)) {
            XCTFail("element \(i): \(a) vs expected \(e) \(message())", file: file, line: line)
            return
        }
    }
}

/// Row-major multi-index of linear index `i` in `shape`.
func multiIndex(_ i: Int, _ shape: [Int]) -> [Int] {
    var rem = i
    var idx = [Int](repeating: 0, count: shape.count)
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
        idx[d] = rem % shape[d]
        rem /= shape[d]
    }
    return idx
}

/// Linear index of a multi-index in `shape`.
func linearIndex(_ idx: [Int], _ shape: [Int]) -> Int {
    var l = 0
    for d in 0..<shape.count { l = l * shape[d] + idx[d] }
    return l
}

/// Naive NumPy broadcasting of `op` in Double, independent of the engine's broadcast patterns.
func naiveBroadcast(_ a: Tensor, _ b: Tensor, _ op: (Double, Double) -> Double) -> (shape: [Int], values: [Double]) {
    let n = max(a.rank, b.rank)
    let pa = [Int](repeating: 1, count: n - a.rank) + a.shape
    let pb = [Int](repeating: 1, count: n - b.rank) + b.shape
    let outShape = (0..<n).map { max(pa[$0], pb[$0]) }
    let av = a.scalars, bv = b.scalars
    let total = outShape.reduce(1, *)
    var values = [Double](repeating: 0, count: total)
    for i in 0..<total {
        let idx = multiIndex(i, outShape)
        let ia = linearIndex((0..<n).map { pa[$0] == 1 ? 0 : idx[$0] }, pa)
        let ib = linearIndex((0..<n).map { pb[$0] == 1 ? 0 : idx[$0] }, pb)
        values[i] = op(Double(av[ia]), Double(bv[ib]))
    }
    return (outShape, values)
}
