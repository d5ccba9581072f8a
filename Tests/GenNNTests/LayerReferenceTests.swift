import Foundation
import XCTest
@testable import GenNN
import GenTensor

/// Pooling, upsampling, batch normalisation and loss layers against PyTorch and Keras 3 reference
/// values (fixtures `Fixtures/layers_*.json` from `Tools/make_layer_fixtures.py`), plus layer
/// construction checks (shapes, parameter names, initialiser bounds, Sequential).
final class LayerReferenceTests: XCTestCase {
    static let forward = (rtol: Float(1e-5), atol: Float(1e-5))
    static let gradient = (rtol: Float(1e-4), atol: Float(1e-5))

    struct Fixture {
        let name: String
        let entries: [String: (shape: [Int], data: [Float])]

        init(_ name: String) throws {
            guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
                throw NSError(domain: "LayerReferenceTests", code: 1,
                              userInfo: [NSLocalizedDescriptionKey: "fixture \(name).json missing; run Tools/make_layer_fixtures.py"])
            }
            guard let dict = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] else {
                throw NSError(domain: "LayerReferenceTests", code: 2)
            }
            var entries: [String: (shape: [Int], data: [Float])] = [:]
            for (key, value) in dict {
                guard let e = value as? [String: Any], let shape = e["shape"] as? [Int], let data = e["data"] as? [Any] else {
                    throw NSError(domain: "LayerReferenceTests", code: 3, userInfo: [NSLocalizedDescriptionKey: "\(name): bad entry \(key)"])
                }
                entries[key] = (shape, data.map { Float(($0 as? NSNumber)?.doubleValue ?? .nan) })
            }
            self.name = name
            self.entries = entries
        }

        func data(_ key: String) -> [Float] {
            guard let e = entries[key] else { XCTFail("\(name): no entry \(key)"); return [] }
            return e.data
        }
        func shape(_ key: String) -> [Int] { entries[key]?.shape ?? [] }
        func tensor(_ key: String, requiresGrad: Bool = false) -> Tensor {
            Tensor(shape: shape(key), scalars: data(key), requiresGrad: requiresGrad)
        }
    }

    /// `|actual − expected| ≤ atol + rtol·|expected|` element-wise, and equal shapes when given.
    func check(_ actual: Tensor?, _ f: Fixture, _ key: String, _ tol: (rtol: Float, atol: Float),
               shape: Bool = true, file: StaticString = #filePath, line: UInt = #line) {
        guard let actual else { XCTFail("\(f.name)/\(key): nil (missing gradient?)", file: file, line: line); return }
        if shape { XCTAssertEqual(actual.shape, f.shape(key), "\(f.name)/\(key): shape", file: file, line: line) }
        let a = actual.scalars, e = f.data(key)
        guard a.count == e.count else {
            XCTFail("\(f.name)/\(key): \(a.count) values vs \(e.count)", file: file, line: line); return
        }
        var worst: Float = 0, at = 0
        for i in 0..<e.count {
            let ratio = a[i].isFinite ? abs(a[i] - e[i]) / (tol.atol + tol.rtol * abs(e[i])) : .infinity
            if ratio > worst { worst = ratio; at = i }
        }
        XCTAssertLessThanOrEqual(worst, 1, "\(f.name)/\(key): element \(at) is \(a[at]), expected \(e[at])", file: file, line: line)
    }

    // MARK: pooling and upsampling

    func testPoolingMatchesTorchCeilModeAndKerasSame() throws {
        let f = try Fixture("layers_pool")
        let pad1 = Padding.explicit(top: 1, bottom: 1, left: 1, right: 1)
        let cases: [(String, Module)] = [
            ("max_ceil", MaxPooling2D(poolSize: (3, 3), strides: (2, 2), ceilMode: true)),
            ("max_pad_ceil", MaxPooling2D(poolSize: (3, 3), strides: (2, 2), padding: pad1, ceilMode: true)),
            ("avg_ceil", AveragePooling2D(poolSize: (3, 3), strides: (2, 2), ceilMode: true)),
            ("avg_pad_ceil_include", AveragePooling2D(poolSize: (3, 3), strides: (2, 2), padding: pad1, ceilMode: true)),
            ("avg_pad_ceil_exclude", AveragePooling2D(poolSize: (3, 3), strides: (2, 2), padding: pad1, ceilMode: true,
                                                      countIncludePad: false)),
            ("avg_pad_floor", AveragePooling2D(poolSize: (2, 3), strides: (2, 1), padding: pad1)),
            ("max_k2_pad1_ceil", MaxPooling2D(poolSize: (2, 2), padding: pad1, ceilMode: true)),
            ("avg_k2_pad1_ceil", AveragePooling2D(poolSize: (2, 2), padding: pad1, ceilMode: true)),
        ]
        for (name, layer) in cases {
            let x = f.tensor("x", requiresGrad: true)
            let y = layer(x, training: true)
            check(y, f, "\(name)_y", Self.forward)
            y.backward(seed: f.tensor("\(name)_seed"))
            check(x.grad, f, "\(name)_dx", Self.gradient)
        }
        let x = f.tensor("x")
        check(MaxPooling2D(poolSize: (3, 3), strides: (2, 2), padding: .same)(x), f, "keras_max_same_y", Self.forward)
        check(AveragePooling2D(poolSize: (2, 2), padding: .same)(x), f, "keras_avg_same_y", Self.forward)
        check(UpSampling2D(size: (2, 3))(x), f, "keras_upsample_y", Self.forward)
        check(GlobalAveragePooling2D()(x), f, "keras_gap_y", Self.forward)
    }

    // MARK: batch normalisation

    func testBatchNormalizationMatchesTorchTraining() throws {
        let f = try Fixture("layers_bn")
        let c = f.shape("gamma")[0]
        let bn = BatchNormalization(channels: c, pytorchDefaults: true, name: "bn")
        XCTAssertEqual(bn.momentum, 0.1)
        XCTAssertEqual(bn.epsilon, 1e-5)
        bn.gamma.assign(f.tensor("gamma"))
        bn.beta.assign(f.tensor("beta"))
        let x = f.tensor("x", requiresGrad: true)
        let y = bn(x, training: true)
        check(y, f, "torch_y", Self.forward)
        y.backward(seed: f.tensor("seed"))
        check(x.grad, f, "torch_dx", Self.gradient)
        check(bn.gamma.grad, f, "torch_dgamma", Self.gradient)
        check(bn.beta.grad, f, "torch_dbeta", Self.gradient)
        check(bn.movingMean, f, "torch_running_mean", Self.forward)
        check(bn.movingVariance, f, "torch_running_var", Self.forward)
        check(bn(f.tensor("x2"), training: false), f, "torch_eval_y", Self.forward)

        // BatchNorm1d on dense features [N, C].
        let bn1 = BatchNormalization(channels: 3, pytorchDefaults: true, name: "bn1")
        bn1.gamma.assign(f.tensor("dense_gamma"))
        bn1.beta.assign(f.tensor("dense_beta"))
        let x1 = f.tensor("dense_x", requiresGrad: true)
        let y1 = bn1(x1, training: true)
        check(y1, f, "dense_y", Self.forward)
        y1.backward(seed: f.tensor("dense_seed"))
        check(x1.grad, f, "dense_dx", Self.gradient)
        check(bn1.gamma.grad, f, "dense_dgamma", Self.gradient)
        check(bn1.beta.grad, f, "dense_dbeta", Self.gradient)
        check(bn1.movingMean, f, "dense_running_mean", Self.forward)
        check(bn1.movingVariance, f, "dense_running_var", Self.forward)
    }

    func testBatchNormalizationMatchesKerasTrainingAndInference() throws {
        let f = try Fixture("layers_bn")
        let c = f.shape("gamma")[0]
        let bn = BatchNormalization(channels: c, name: "bn")
        XCTAssertEqual(bn.momentum, 0.99)
        XCTAssertEqual(bn.epsilon, 1e-3)
        XCTAssertEqual(bn.parameters.map(\.name), ["bn/gamma", "bn/beta"])
        XCTAssertEqual(bn.stateTensors.map(\.name), ["bn/moving_mean", "bn/moving_variance"])
        XCTAssertEqual(bn.movingMean.scalars, [Float](repeating: 0, count: c))
        XCTAssertEqual(bn.movingVariance.scalars, [Float](repeating: 1, count: c))
        XCTAssertFalse(bn.movingMean.requiresGrad || bn.movingVariance.requiresGrad)
        bn.gamma.assign(f.tensor("gamma"))
        bn.beta.assign(f.tensor("beta"))
        check(bn(f.tensor("x"), training: true), f, "keras_y", Self.forward)
        check(bn.movingMean, f, "keras_moving_mean", Self.forward)
        check(bn.movingVariance, f, "keras_moving_var", Self.forward)
        let before = bn.movingMean.scalars
        check(bn(f.tensor("x2"), training: false), f, "keras_eval_y", Self.forward)
        XCTAssertEqual(bn.movingMean.scalars, before, "inference leaves the moving statistics alone")
    }

    // MARK: losses

    func testLossesMatchTorchAndKeras() throws {
        let f = try Fixture("layers_losses")
        for red in ["mean", "sum"] {
            let logits = f.tensor("logits", requiresGrad: true)
            let loss = Tensor.binaryCrossEntropy(logits: logits, targets: f.tensor("targets"),
                                                 reduction: red == "mean" ? .mean : .sum)
            check(loss, f, "bce_\(red)", Self.forward)
            loss.backward()
            check(logits.grad, f, "bce_\(red)_grad", Self.gradient)
        }
        check(Tensor.binaryCrossEntropy(logits: f.tensor("logits"), targets: f.tensor("targets")), f, "keras_bce_mean", Self.forward)

        let mu = f.tensor("kl_mean", requiresGrad: true), lv = f.tensor("kl_logvar", requiresGrad: true)
        let kl = Tensor.klDivergenceDiagonalGaussian(mean: mu, logVariance: lv)
        check(kl, f, "kl", Self.forward)
        kl.backward(seed: f.tensor("kl_seed"))
        check(mu.grad, f, "kl_dmean", Self.gradient)
        check(lv.grad, f, "kl_dlogvar", Self.gradient)

        let p = f.tensor("mse_pred", requiresGrad: true)
        let mse = Tensor.meanSquaredError(p, f.tensor("mse_target"))
        check(mse, f, "mse", Self.forward)
        mse.backward()
        check(p.grad, f, "mse_grad", Self.gradient)
    }

    func testGANLossHelpers() {
        let real = Tensor(shape: [2, 1], scalars: [2, -1], requiresGrad: true)
        let fake = Tensor(shape: [2, 1], scalars: [0.5, -3])
        let d = Losses.discriminator(realLogits: real, fakeLogits: fake)
        func sp(_ x: Double) -> Double { log1p(exp(x)) }    // softplus
        let expected = (sp(-2) + sp(1)) / 2 + (sp(0.5) + sp(-3)) / 2
        XCTAssertEqual(Double(d.scalar), expected, accuracy: 1e-6)
        XCTAssertEqual(Double(Losses.generator(fakeLogits: fake).scalar), (sp(-0.5) + sp(3)) / 2, accuracy: 1e-6)
    }

    // MARK: layer construction

    func testConvolutionLayersShapesNamesAndGlorotBounds() {
        var rng = RandomGenerator(seed: 3)
        let conv = Conv2D(inputChannels: 3, filters: 8, kernelSize: (3, 3), strides: (2, 2), padding: .same, name: "c1", using: &rng)
        XCTAssertEqual(conv.kernel.shape, [3, 3, 3, 8])
        XCTAssertEqual(conv.bias?.shape, [8])
        XCTAssertEqual(conv.parameters.map(\.name), ["c1/kernel", "c1/bias"])
        XCTAssertTrue(conv.parameters.allSatisfy(\.requiresGrad))
        XCTAssertEqual(conv.bias!.scalars, [Float](repeating: 0, count: 8))
        let limit = (6 / Float(9 * 3 + 9 * 8)).squareRoot()
        let k = conv.kernel.scalars
        XCTAssertTrue(k.allSatisfy { abs($0) <= limit })
        XCTAssertGreaterThan(k.map(abs).max()!, 0.8 * limit, "uses most of the Glorot range")
        XCTAssertEqual(conv(Tensor(zeros: [2, 9, 7, 3])).shape, [2, 5, 4, 8])
        XCTAssertEqual(Conv2D(inputChannels: 4, filters: 2, kernelSize: (3, 3), dilation: (2, 2), useBias: false,
                              using: &rng)(Tensor(zeros: [1, 8, 8, 4])).shape, [1, 4, 4, 2])

        let tconv = Conv2DTranspose(inputChannels: 16, filters: 4, kernelSize: (4, 4), strides: (2, 2), padding: .same,
                                    name: "t1", using: &rng)
        XCTAssertEqual(tconv.kernel.shape, [4, 4, 4, 16], "Keras layout [KH, KW, filters, inputChannels]")
        XCTAssertEqual(tconv.parameters.map(\.name), ["t1/kernel", "t1/bias"])
        let tlimit = (6 / Float(16 * 4 + 16 * 16)).squareRoot()
        let tk = tconv.kernel.scalars
        XCTAssertTrue(tk.allSatisfy { abs($0) <= tlimit })
        XCTAssertGreaterThan(tk.map(abs).max()!, 0.8 * tlimit)
        XCTAssertEqual(tconv(Tensor(zeros: [2, 5, 6, 16])).shape, [2, 10, 12, 4])
        XCTAssertEqual(Conv2DTranspose(inputChannels: 2, filters: 3, kernelSize: (3, 3), strides: (2, 2),
                                       using: &rng)(Tensor(zeros: [1, 4, 4, 2])).shape, [1, 9, 9, 3])
    }

    func testSequentialCombinesParametersAndState() {
        var rng = RandomGenerator(seed: 5)
        let model = Sequential([
            Conv2D(inputChannels: 1, filters: 4, kernelSize: (3, 3), padding: .same, name: "conv", using: &rng),
            BatchNormalization(channels: 4, name: "bn"),
            LeakyReLU(alpha: 0.2),
            MaxPooling2D(),
            Dropout(rate: 0.25, using: &rng),
            Flatten(),
            Dense(inputSize: 4 * 4 * 4, units: 6, name: "dense", using: &rng),
            Reshape([2, 3]),
            Lambda { x, _ in x.tanh() },
        ])
        XCTAssertEqual(model.parameters.map(\.name), ["conv/kernel", "conv/bias", "bn/gamma", "bn/beta", "dense/kernel", "dense/bias"])
        XCTAssertEqual(model.stateTensors.map(\.name), ["bn/moving_mean", "bn/moving_variance"])
        XCTAssertEqual(model.parameterCount, 9 * 4 + 4 + 4 + 4 + 64 * 6 + 6)
        var data = RandomGenerator(seed: 6)
        let x = Tensor.uniform([3, 8, 8, 1], low: -1, high: 1, using: &data)
        let y = model(x, training: true)
        XCTAssertEqual(y.shape, [3, 2, 3])
        y.sum().backward()
        XCTAssertTrue(model.parameters.allSatisfy { $0.grad != nil }, "every parameter receives a gradient")
        XCTAssertNotEqual(model.stateTensors[0].scalars, [0, 0, 0, 0], "training updates the moving mean")
        // Inference is deterministic (no dropout, moving statistics).
        let a = withNoGrad { model(x, training: false).scalars }, b = withNoGrad { model(x, training: false).scalars }
        XCTAssertEqual(a, b)
    }

    func testUpSamplingAndReshapeLayers() {
        let x = Tensor(shape: [1, 1, 2, 1], scalars: [1, 2])
        XCTAssertEqual(UpSampling2D(size: (2, 2))(x).scalars, [1, 1, 2, 2, 1, 1, 2, 2])
        XCTAssertEqual(Reshape([-1, 2])(Tensor(zeros: [3, 8])).shape, [3, 4, 2])
        XCTAssertEqual(Flatten()(Tensor(zeros: [2, 3, 4, 5])).shape, [2, 60])
        XCTAssertEqual(LeakyReLU()(Tensor(shape: [2], scalars: [-1, 2])).scalars, [-0.3, 2])
    }
}
