import Foundation
import XCTest
@testable import GenTensor

/// Gradient checks and forward values for pooling, upsampling, dropout, flatten, batch
/// normalisation and the loss ops (Ops/Pooling.swift, Ops/Normalization.swift, Ops/Losses.swift).
/// Reference values against PyTorch and Keras are in GenNNTests/LayerReferenceTests.swift.
final class PoolingNormalizationTests: XCTestCase {
    /// Distinct values spaced 0.05 apart in random order (far more than the 2ε finite-difference
    /// step), so no max-pool window has a near tie and the argmax is stable under the check.
    func distinctInput(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let n = shape.reduce(1, *)
        let perm = rng.permutation(n)
        return Tensor(shape: shape, scalars: perm.map { Float($0) * 0.05 - Float(n) * 0.025 }, requiresGrad: true)
    }

    /// Straightforward NHWC pooling in Double, for forward values (PyTorch semantics).
    func naivePool(_ x: Tensor, k: (Int, Int), s: (Int, Int), pad: (Int, Int, Int, Int), out: (Int, Int),
                   max isMax: Bool, countIncludePad: Bool) -> [Double] {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let v = x.scalars
        var res: [Double] = []
        for b in 0..<n { for i in 0..<out.0 { for j in 0..<out.1 { for ch in 0..<c {
            var best = -Double.infinity, sum = 0.0, inside = 0
            let h0 = i * s.0 - pad.0, w0 = j * s.1 - pad.2
            for a in 0..<k.0 { for bb in 0..<k.1 {
                let hh = h0 + a, ww = w0 + bb
                guard hh >= 0, hh < h, ww >= 0, ww < w else { continue }
                let e = Double(v[((b * h + hh) * w + ww) * c + ch])
                best = max(best, e); sum += e; inside += 1
            } }
            let hp = min(h0 + k.0, h + pad.1) - h0, wp = min(w0 + k.1, w + pad.3) - w0
            res.append(isMax ? best : sum / Double(countIncludePad ? hp * wp : inside))
        } } } }
        return res
    }

    // MARK: geometry

    func testPoolGeometryFollowsPyTorchCeilModeAndKerasSame() {
        func out(_ n: Int, _ k: Int, _ s: Int, _ p: Int = 0, same: Bool = false, ceil: Bool) -> Int {
            Tensor.poolAxisGeometry(inputSize: n, kernel: k, stride: s, padBefore: p, padAfter: p,
                                    same: same, ceilMode: ceil).outputSize
        }
        XCTAssertEqual(out(6, 3, 2, ceil: false), 2)
        XCTAssertEqual(out(6, 3, 2, ceil: true), 3)
        XCTAssertEqual(out(111, 3, 2, ceil: true), 55)    // SqueezeNet 1.1 after conv1
        XCTAssertEqual(out(112, 3, 2, ceil: true), 56)    // GoogLeNet maxpool1
        XCTAssertEqual(out(7, 3, 2, ceil: true), 3)
        // The last window would start in the right padding: PyTorch drops it.
        XCTAssertEqual(out(5, 2, 2, 1, ceil: true), 3)
        XCTAssertEqual(out(5, 2, 2, 1, ceil: false), 3)
        // TensorFlow "same": ⌈n/s⌉ with the extra padding after.
        let g = Tensor.poolAxisGeometry(inputSize: 6, kernel: 3, stride: 2, padBefore: 0, padAfter: 0,
                                        same: true, ceilMode: false)
        XCTAssertEqual(g, PoolAxisGeometry(outputSize: 3, padBefore: 0, padAfter: 1))
        XCTAssertEqual(Tensor(zeros: [1, 7, 7, 1]).maxPool2d(poolSize: (2, 2), padding: .same).shape, [1, 4, 4, 1])
    }

    // MARK: max pooling

    func testMaxPoolForwardMatchesNaive() {
        let cases: [((Int, Int), (Int, Int), Padding, Bool, [Int])] = [
            ((2, 2), (2, 2), .valid, false, [2, 5, 5, 3]),
            ((3, 3), (2, 2), .valid, true, [2, 6, 7, 2]),
            ((3, 3), (2, 2), .explicit(top: 1, bottom: 1, left: 1, right: 1), true, [1, 5, 6, 2]),
            ((3, 3), (2, 2), .same, false, [1, 5, 5, 2]),
            ((2, 3), (1, 2), .valid, false, [2, 4, 7, 3]),
            // Eight-channel SIMD blocks plus a scalar tail.
            ((3, 3), (2, 2), .explicit(top: 1, bottom: 1, left: 1, right: 1), true, [1, 5, 6, 11]),
            ((2, 2), (2, 2), .valid, false, [1, 4, 4, 16]),
        ]
        for (k, s, padding, ceil, shape) in cases {
            let x = distinctInput(shape, seed: 3)
            let y = x.maxPool2d(poolSize: k, strides: s, padding: padding, ceilMode: ceil)
            let pad: (Int, Int, Int, Int)
            switch padding {
            case let .explicit(t, b, l, r): pad = (t, b, l, r)
            case .same:
                let gh = Tensor.poolAxisGeometry(inputSize: shape[1], kernel: k.0, stride: s.0, padBefore: 0, padAfter: 0, same: true, ceilMode: false)
                let gw = Tensor.poolAxisGeometry(inputSize: shape[2], kernel: k.1, stride: s.1, padBefore: 0, padAfter: 0, same: true, ceilMode: false)
                pad = (gh.padBefore, gh.padAfter, gw.padBefore, gw.padAfter)
            default: pad = (0, 0, 0, 0)
            }
            let expected = naivePool(x, k: k, s: s, pad: pad, out: (y.shape[1], y.shape[2]), max: true, countIncludePad: false)
            assertClose(y.scalars, expected, "maxPool \(k) \(s) \(padding) ceil \(ceil)")
        }
    }

    func testMaxPoolGradients() {
        gradientCheck(inputs: [distinctInput([2, 5, 5, 3], seed: 1)], "valid 2x2") {
            $0[0].maxPool2d(poolSize: (2, 2))
        }
        gradientCheck(inputs: [distinctInput([2, 6, 7, 2], seed: 2)], "ceil 3x3/2") {
            $0[0].maxPool2d(poolSize: (3, 3), strides: (2, 2), ceilMode: true)
        }
        gradientCheck(inputs: [distinctInput([1, 5, 6, 2], seed: 3)], "explicit pad, ceil") {
            $0[0].maxPool2d(poolSize: (3, 3), strides: (2, 2), padding: .explicit(top: 1, bottom: 0, left: 1, right: 1), ceilMode: true)
        }
        gradientCheck(inputs: [distinctInput([1, 5, 5, 2], seed: 4)], "same") {
            $0[0].maxPool2d(poolSize: (3, 3), strides: (2, 2), padding: .same)
        }
        gradientCheck(inputs: [distinctInput([2, 4, 7, 3], seed: 5)], "overlapping 2x3/(1,2)") {
            $0[0].maxPool2d(poolSize: (2, 3), strides: (1, 2))
        }
        gradientCheck(inputs: [distinctInput([1, 5, 6, 11], seed: 6)], "SIMD channels, explicit pad, ceil") {
            $0[0].maxPool2d(poolSize: (3, 3), strides: (2, 2), padding: .explicit(top: 1, bottom: 1, left: 1, right: 1), ceilMode: true)
        }
    }

    /// Ties go to the first maximum in row-major window order (PyTorch), in the SIMD and the scalar
    /// channels alike; a NaN in a window wins.
    func testMaxPoolTiesAndNaN() {
        let x = Tensor(shape: [1, 2, 2, 9], scalars: [Float](repeating: 1, count: 36), requiresGrad: true)
        let y = x.maxPool2d(poolSize: (2, 2))
        y.backward(seed: Tensor(shape: y.shape, scalars: [Float](repeating: 1, count: 9)))
        XCTAssertEqual(x.grad!.scalars, [Float](repeating: 1, count: 9) + [Float](repeating: 0, count: 27))
        var v = [Float](repeating: 0, count: 36)
        v[2 * 9 + 3] = .nan; v[2 * 9 + 8] = .nan
        let z = Tensor(shape: [1, 2, 2, 9], scalars: v).maxPool2d(poolSize: (2, 2))
        XCTAssertTrue(z.scalars[3].isNaN && z.scalars[8].isNaN)
        XCTAssertEqual(z.scalars[0], 0)
    }

    // MARK: average pooling

    func testAveragePoolForwardMatchesNaive() {
        var r = TestRandom(seed: 21)
        let x = r.uniform([2, 5, 6, 3])
        for include in [true, false] {
            let pad = Padding.explicit(top: 1, bottom: 1, left: 1, right: 0)
            let y = x.averagePool2d(poolSize: (3, 3), strides: (2, 2), padding: pad, ceilMode: true, countIncludePad: include)
            let e = naivePool(x, k: (3, 3), s: (2, 2), pad: (1, 1, 1, 0), out: (y.shape[1], y.shape[2]), max: false, countIncludePad: include)
            assertClose(y.scalars, e, "avgPool explicit ceil include \(include)")
        }
        let y = x.averagePool2d(poolSize: (2, 2), strides: (2, 2), padding: .same, countIncludePad: false)
        XCTAssertEqual(y.shape, [2, 3, 3, 3])
        let e = naivePool(x, k: (2, 2), s: (2, 2), pad: (0, 1, 0, 0), out: (3, 3), max: false, countIncludePad: false)
        assertClose(y.scalars, e, "avgPool same")
    }

    func testAveragePoolGradients() {
        var r = TestRandom(seed: 22)
        gradientCheck(inputs: [r.uniform([2, 5, 5, 3])], "valid 2x2") { $0[0].averagePool2d(poolSize: (2, 2)) }
        gradientCheck(inputs: [r.uniform([2, 6, 7, 2])], "ceil 3x3/2") {
            $0[0].averagePool2d(poolSize: (3, 3), strides: (2, 2), ceilMode: true)
        }
        for include in [true, false] {
            gradientCheck(inputs: [r.uniform([1, 5, 6, 2])], "explicit pad ceil include \(include)") {
                $0[0].averagePool2d(poolSize: (3, 3), strides: (2, 2), padding: .explicit(top: 1, bottom: 1, left: 1, right: 0),
                                    ceilMode: true, countIncludePad: include)
            }
        }
        gradientCheck(inputs: [r.uniform([1, 5, 5, 2])], "same") {
            $0[0].averagePool2d(poolSize: (3, 3), strides: (2, 2), padding: .same, countIncludePad: false)
        }
    }

    // MARK: global average, upsampling, dropout, flatten

    func testGlobalAveragePool() {
        var r = TestRandom(seed: 31)
        let x = r.uniform([2, 3, 4, 5])
        let y = x.globalAveragePool2d()
        XCTAssertEqual(y.shape, [2, 5])
        let e = withNoGrad { x.mean(axes: [1, 2]) }
        assertClose(y.scalars, e.scalars.map(Double.init), "global average")
        gradientCheck(inputs: [x]) { $0[0].globalAveragePool2d() }
    }

    func testUpSamplingNearest() {
        let x = Tensor(shape: [1, 2, 2, 1], scalars: [1, 2, 3, 4], requiresGrad: true)
        let y = x.upSampling2d(size: (2, 3))
        XCTAssertEqual(y.shape, [1, 4, 6, 1])
        XCTAssertEqual(y.scalars, [1, 1, 1, 2, 2, 2,  1, 1, 1, 2, 2, 2,  3, 3, 3, 4, 4, 4,  3, 3, 3, 4, 4, 4])
        var r = TestRandom(seed: 32)
        gradientCheck(inputs: [r.uniform([2, 3, 2, 3])]) { $0[0].upSampling2d(size: (2, 3)) }
        gradientCheck(inputs: [r.uniform([1, 2, 3, 2])]) { $0[0].upSampling2d() }
    }

    func testDropout() {
        var r = TestRandom(seed: 33)
        let x = r.uniform([4, 50])
        var rng = RandomGenerator(seed: 5)
        XCTAssertTrue(x.dropout(rate: 0.5, training: false, using: &rng) === x)
        XCTAssertEqual(rng, RandomGenerator(seed: 5), "inference draws no random numbers")
        let y = x.dropout(rate: 0.25, training: true, using: &rng)
        let xs = x.scalars, ys = y.scalars
        var zeros = 0
        for i in 0..<xs.count {
            if ys[i] == 0 { zeros += 1 } else { XCTAssertEqual(ys[i], xs[i] / 0.75, accuracy: 1e-6) }
        }
        XCTAssertTrue((20...80).contains(zeros), "about a quarter of 200 dropped, got \(zeros)")
        // Same seed, same mask.
        var a = RandomGenerator(seed: 9), b = RandomGenerator(seed: 9)
        XCTAssertEqual(x.dropout(rate: 0.3, training: true, using: &a).scalars,
                       x.dropout(rate: 0.3, training: true, using: &b).scalars)
        gradientCheck(inputs: [r.uniform([3, 7])]) { inputs in
            var g = RandomGenerator(seed: 77)
            return inputs[0].dropout(rate: 0.4, training: true, using: &g)
        }
    }

    func testFlattened() {
        var r = TestRandom(seed: 34)
        let x = r.uniform([2, 3, 4, 5])
        let y = x.flattened()
        XCTAssertEqual(y.shape, [2, 60])
        XCTAssertEqual(y.scalars, x.scalars)
        gradientCheck(inputs: [x]) { $0[0].flattened() }
    }

    // MARK: batch normalisation

    func testBatchNormalizationTrainingStatisticsAndOutput() {
        var r = TestRandom(seed: 41)
        let x = r.uniform([3, 2, 2, 2], -2, 3)
        let gamma = r.uniform([2]), beta = r.uniform([2])
        let bn = Tensor.batchNormalization(x, gamma: gamma, beta: beta, epsilon: 1e-3)
        let xs = x.scalars, m = 12
        for c in 0..<2 {
            let v = (0..<m).map { Double(xs[$0 * 2 + c]) }
            let mu = v.reduce(0, +) / Double(m)
            let ss = v.reduce(0) { $0 + ($1 - mu) * ($1 - mu) }
            XCTAssertEqual(Double(bn.mean.scalars[c]), mu, accuracy: 1e-6)
            XCTAssertEqual(Double(bn.variance.scalars[c]), ss / Double(m), accuracy: 1e-5)
            XCTAssertEqual(Double(bn.unbiasedVariance.scalars[c]), ss / Double(m - 1), accuracy: 1e-5)
            let y = bn.output.scalars
            for i in 0..<m {
                let e = Double(gamma.scalars[c]) * (v[i] - mu) / (ss / Double(m) + 1e-3).squareRoot() + Double(beta.scalars[c])
                XCTAssertEqual(Double(y[i * 2 + c]), e, accuracy: 1e-5)
            }
        }
    }

    func testBatchNormalizationGradients() {
        var r = TestRandom(seed: 42)
        gradientCheck(inputs: [r.uniform([2, 3, 3, 4], -2, 2), r.uniform([4], 0.5, 1.5), r.uniform([4])], "NHWC training") {
            Tensor.batchNormalization($0[0], gamma: $0[1], beta: $0[2], epsilon: 1e-3).output
        }
        gradientCheck(inputs: [r.uniform([6, 3], -2, 2), r.uniform([3], 0.5, 1.5), r.uniform([3])], "[N, C] training") {
            Tensor.batchNormalization($0[0], gamma: $0[1], beta: $0[2], epsilon: 1e-5).output
        }
        let mean = r.uniform([3], grad: false), variance = r.uniform([3], 0.5, 2, grad: false)
        gradientCheck(inputs: [r.uniform([2, 2, 2, 3]), r.uniform([3]), r.uniform([3])], "inference") {
            Tensor.batchNormalization($0[0], gamma: $0[1], beta: $0[2], mean: mean, variance: variance, epsilon: 1e-3)
        }
    }

    // MARK: losses

    func testBinaryCrossEntropyStableAtExtremeLogits() {
        let logits = Tensor(shape: [6], scalars: [100, -100, 100, -100, 0, 3], requiresGrad: true)
        let targets = Tensor(shape: [6], scalars: [1, 0, 0, 1, 0.5, 0.2])
        let l = Tensor.binaryCrossEntropy(logits: logits, targets: targets, reduction: .none)
        let expected: [Double] = [0, 0, 100, 100, log(2), 3 - 0.6 + log1p(exp(-3))]
        assertClose(l.scalars, expected, atol: 1e-5)
        l.backward(seed: Tensor(repeating: 1, shape: [6]))
        let sig3 = 1 / (1 + exp(-3.0))
        assertClose(logits.grad!.scalars, [0, 0, 1, -1, 0, sig3 - 0.2], atol: 1e-6)
        XCTAssertTrue(logits.grad!.scalars.allSatisfy(\.isFinite))
    }

    func testLossGradients() {
        var r = TestRandom(seed: 51)
        for reduction in [LossReduction.mean, .sum, .none] {
            gradientCheck(inputs: [r.uniform([3, 4], -3, 3), r.uniform([3, 4], 0, 1)], "BCE \(reduction)") {
                Tensor.binaryCrossEntropy(logits: $0[0], targets: $0[1], reduction: reduction)
            }
            gradientCheck(inputs: [r.uniform([2, 5]), r.uniform([2, 5])], "MSE \(reduction)") {
                Tensor.meanSquaredError($0[0], $0[1], reduction: reduction)
            }
        }
        gradientCheck(inputs: [r.uniform([3, 4]), r.uniform([3, 4], -2, 1)], "KL") {
            Tensor.klDivergenceDiagonalGaussian(mean: $0[0], logVariance: $0[1])
        }
    }

    func testLossValues() {
        let mu = Tensor(shape: [2, 2], scalars: [0, 0, 1, -2])
        let lv = Tensor(shape: [2, 2], scalars: [0, 0, 0.5, -1])
        let kl = Tensor.klDivergenceDiagonalGaussian(mean: mu, logVariance: lv)
        XCTAssertEqual(kl.shape, [2])
        let e1 = -0.5 * ((1 + 0.5 - 1 - exp(0.5)) + (1 - 1 - 4 - exp(-1.0)))
        assertClose(kl.scalars, [0, e1])
        let mse = Tensor.meanSquaredError(Tensor(shape: [2], scalars: [1, 2]), Tensor(shape: [2], scalars: [0, 4]))
        XCTAssertEqual(mse.shape, [])
        XCTAssertEqual(mse.scalar, 2.5, accuracy: 1e-6)
    }
}
