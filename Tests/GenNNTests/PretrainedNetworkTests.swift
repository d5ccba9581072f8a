import Foundation
import XCTest
@testable import GenNN
import GenTensor

/// SqueezeNet, VGG and Inception v3 (``loadPretrainedNetwork(named:weights:)``).
///
/// - SqueezeNet 1.0 against torchvision's exact activations and logits for the real weights in
///   `../shared/data/weights` (skipped, with a message, when the folder is absent).
/// - Every architecture against torchvision with deterministic formula weights on both sides:
///   `Tools/make_network_fixtures.py` wrote the summaries in `Fixtures/net_*.json`; this file
///   computes the same weights and input (``FormulaWeights``) and compares.
final class PretrainedNetworkTests: XCTestCase {

    // MARK: Helpers

    /// `$GEN_DATA`, else `../shared/data` next to the package root; skips when absent.
    static func dataDirectory() throws -> URL {
        let dir: URL
        if let env = ProcessInfo.processInfo.environment["GEN_DATA"], !env.isEmpty {
            dir = URL(fileURLWithPath: env, isDirectory: true)
        } else {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            dir = root.deletingLastPathComponent().appendingPathComponent("shared/data", isDirectory: true)
        }
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("weights/squeezenet1_0.pth").path) else {
            throw XCTSkip("shared data not found at \(dir.path) (set GEN_DATA): skipping the real-weights check")
        }
        return dir
    }

    /// `[N, C, H, W]` → `[N, H, W, C]`.
    static func nchwToNHWC(_ t: Tensor) -> Tensor { t.transposed([0, 2, 3, 1]) }

    /// max |a − b| / max |b|.
    static func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
        precondition(a.shape == b.shape, "\(a.shape) vs \(b.shape)")
        let x = a.scalars, y = b.scalars
        var diff = 0.0, scale = 0.0
        for i in 0..<x.count {
            diff = max(diff, Double(Swift.abs(x[i] - y[i])))
            scale = max(scale, Double(Swift.abs(y[i])))
        }
        return diff / max(scale, 1e-30)
    }

    static func top(_ logits: Tensor, _ k: Int) -> [Int] {
        let v = logits.scalars
        return Array(v.indices.sorted { v[$0] > v[$1] }.prefix(k))
    }

    func fixture(_ name: String) throws -> [String: Any] {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
            XCTFail("missing fixture Fixtures/\(name).json (run Tools/make_network_fixtures.py)")
            throw XCTSkip("missing fixture")
        }
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    /// A network with the formula weights, loaded through the strict state_dict path.
    func formulaNetwork(_ name: String) throws -> PretrainedConvNetwork {
        let net = try makeNetwork(canonical: name)
        try net.load(stateDict: FormulaWeights.stateDict(shapes: net.stateDictShapes), source: "formula")
        return net
    }

    /// Runs `name` on the fixture's input and compares every recorded activation and the logits.
    func checkArchitecture(_ name: String, tolerance: Double = 2e-5, file: StaticString = #filePath, line: UInt = #line) throws {
        let fx = try fixture("net_\(name)")
        let net = try formulaNetwork(name)
        let inputShape = (fx["input_shape"] as! [NSNumber]).map(\.intValue)
        let input = Self.nchwToNHWC(FormulaWeights.input(shape: inputShape))
        let layers = fx["layers"] as! [String: [String: Any]]
        let names = layers.keys.filter { $0 != "logits" }
        let acts = withNoGrad { net.activations(input, layers: Array(names)) }
        var outputs = acts
        outputs["logits"] = withNoGrad { net.logits(input) }
        for (layer, summary) in layers.sorted(by: { $0.key < $1.key }) {
            let got = try XCTUnwrap(outputs[layer], "\(name): no activation \(layer)", file: file, line: line)
            let shape = (summary["shape"] as! [NSNumber]).map(\.intValue)
            let expectedShape = shape.count == 4 ? [shape[0], shape[2], shape[3], shape[1]] : shape
            XCTAssertEqual(got.shape, expectedShape, "\(name) \(layer) shape", file: file, line: line)
            guard got.shape == expectedShape else { continue }
            let values = got.scalars
            let scale = max(Swift.abs((summary["min"] as! NSNumber).doubleValue), Swift.abs((summary["max"] as! NSNumber).doubleValue))
            let indices = (summary["indices"] as! [NSNumber]).map(\.intValue)
            let expected = (summary["values"] as! [NSNumber]).map(\.doubleValue)
            var worst = 0.0
            for (i, flat) in indices.enumerated() {
                // NCHW flat index → NHWC flat index.
                var j = flat
                let nhwc: Int
                if shape.count == 4 {
                    let w = j % shape[3]; j /= shape[3]
                    let h = j % shape[2]; j /= shape[2]
                    let c = j % shape[1]; let n = j / shape[1]
                    nhwc = ((n * shape[2] + h) * shape[3] + w) * shape[1] + c
                } else {
                    nhwc = flat
                }
                worst = max(worst, Swift.abs(Double(values[nhwc]) - expected[i]))
            }
            let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
            let std = (values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(values.count)).squareRoot()
            let meanError = Swift.abs(mean - (summary["mean"] as! NSNumber).doubleValue) / scale
            let stdError = Swift.abs(std - (summary["std"] as! NSNumber).doubleValue) / scale
            let maxGot = Double(values.map { Swift.abs($0) }.max() ?? 0)
            print("\(name) \(layer) \(got.shape): " + String(format: "samples max|Δ|/max|x| = %.2e, mean %.2e, std %.2e",
                                                                    worst / scale, meanError, stdError))
            XCTAssertLessThan(worst / scale, tolerance, "\(name) \(layer): samples differ", file: file, line: line)
            XCTAssertLessThan(meanError, tolerance, "\(name) \(layer): mean differs", file: file, line: line)
            XCTAssertLessThan(stdError, tolerance, "\(name) \(layer): std differs", file: file, line: line)
            XCTAssertEqual(maxGot, scale, accuracy: tolerance * scale * 10, "\(name) \(layer): max |x| differs", file: file, line: line)
        }
    }

    // MARK: Real SqueezeNet 1.0 weights

    func testSqueezeNet10ReproducesTorchvisionReference() throws {
        let weights = try Self.dataDirectory().appendingPathComponent("weights")
        let net = try loadPretrainedNetwork(named: "squeezenet1_0", weights: weights.appendingPathComponent("squeezenet1_0.pth"))
        XCTAssertEqual(net.name, "squeezenet1_0")
        let ref = try SafetensorsFile(contentsOf: weights.appendingPathComponent("squeezenet1_0_reference.safetensors"))
        let top5 = try JSONSerialization.jsonObject(with: Data(contentsOf: weights.appendingPathComponent("squeezenet1_0_reference_top5.json"))) as! [String: [[Any]]]
        for image in ["parrot", "hot_dog"] {
            let input = Self.nchwToNHWC(try ref.tensor(named: "\(image).input"))
            let acts = withNoGrad { net.activations(input, layers: ["pool1", "features.5", "fire9"]) }
            for (ours, theirs) in [("pool1", "pool1"), ("features.5", "fire4"), ("fire9", "fire9")] {
                let expected = Self.nchwToNHWC(try ref.tensor(named: "\(image).\(theirs)"))
                let err = Self.relativeError(acts[ours]!, expected)
                print("squeezenet1_0 \(image) \(theirs): " + String(format: "max|Δ|/max|ref| = %.2e", err))
                XCTAssertLessThan(err, 1e-4, "\(image) \(theirs)")
            }
            let logits = withNoGrad { net.logits(input) }
            let expected = try ref.tensor(named: "\(image).logits")
            let err = Self.relativeError(logits, expected)
            print("squeezenet1_0 \(image) logits: " + String(format: "max|Δ|/max|ref| = %.2e", err))
            XCTAssertLessThan(err, 1e-4, "\(image) logits")
            let want = top5["\(image).jpg"]!.map { ($0[0] as! NSNumber).intValue }
            XCTAssertEqual(Self.top(logits, 5), want, "\(image) top-5")
        }
    }

    func testSqueezeNet10SafetensorsLoadsTheSame() throws {
        let weights = try Self.dataDirectory().appendingPathComponent("weights")
        let a = try loadPretrainedNetwork(named: "squeezenet", weights: weights.appendingPathComponent("squeezenet1_0.pth"))
        let b = try loadPretrainedNetwork(named: "SqueezeNet1_0", weights: weights.appendingPathComponent("squeezenet1_0.safetensors"))
        let x = FormulaWeights.input(shape: [1, 40, 40, 3])
        XCTAssertEqual(withNoGrad { a.logits(x) }.scalars, withNoGrad { b.logits(x) }.scalars)
        // The real SqueezeNet 1.0 file is not a SqueezeNet 1.1 one: every problem is named.
        XCTAssertThrowsError(try loadPretrainedNetwork(named: "squeezenet1_1", weights: weights.appendingPathComponent("squeezenet1_0.pth"))) { error in
            guard let e = error as? PretrainedError, case .stateDictMismatch(let problems) = e.kind else {
                return XCTFail("expected stateDictMismatch, got \(error)")
            }
            XCTAssertTrue(problems.contains { $0.contains("'features.0.weight' is [96, 3, 7, 7] in the file, squeezenet1_1 expects [64, 3, 3, 3]") }, "\(problems)")
        }
        // Weights of an entirely different network: one summary line.
        XCTAssertThrowsError(try loadPretrainedNetwork(named: "inception", weights: weights.appendingPathComponent("squeezenet1_0.pth"))) { error in
            guard let e = error as? PretrainedError, case .stateDictMismatch(let problems) = e.kind else {
                return XCTFail("expected stateDictMismatch, got \(error)")
            }
            XCTAssertEqual(problems.count, 1, "\(problems)")
            XCTAssertTrue(problems[0].contains("none of the") && problems[0].contains("'classifier.1.bias'"), problems[0])
        }
    }

    // MARK: Architectures against torchvision (formula weights)

    func testSqueezeNet11MatchesTorchvision() throws { try checkArchitecture("squeezenet1_1") }
    func testVGG19MatchesTorchvision() throws { try checkArchitecture("vgg19") }
    func testVGG16MatchesTorchvision() throws { try checkArchitecture("vgg16") }
    func testInceptionV3MatchesTorchvision() throws { try checkArchitecture("inception_v3", tolerance: 5e-5) }

    // MARK: API

    func testLayerNamesAndAliases() throws {
        let s10 = try makeNetwork(canonical: "squeezenet1_0")
        XCTAssertEqual(s10.layerNames, ["conv1", "pool1", "fire2", "fire3", "fire4", "pool4", "fire5", "fire6", "fire7",
                                        "fire8", "pool8", "fire9", "conv10"])
        XCTAssertEqual(s10.resolveLayer("features.5"), "fire4")
        XCTAssertEqual(s10.resolveLayer("features.12"), "fire9")
        XCTAssertEqual(s10.resolveLayer("features.0"), "conv1")
        XCTAssertEqual(s10.resolveLayer("FIRE9"), "fire9")
        XCTAssertNil(s10.resolveLayer("fire10"))
        XCTAssertEqual(s10.minimumInputSize, 21)
        let s11 = try makeNetwork(canonical: "squeezenet1_1")
        XCTAssertEqual(s11.layerNames, ["conv1", "pool1", "fire2", "fire3", "pool3", "fire4", "fire5", "pool5", "fire6",
                                        "fire7", "fire8", "fire9", "conv10"])
        XCTAssertEqual(s11.resolveLayer("features.8"), "pool5")
        XCTAssertEqual(s11.minimumInputSize, 17)

        let vgg = try makeNetwork(canonical: "vgg19")
        XCTAssertEqual(vgg.layerNames.count, 16 + 5)
        XCTAssertEqual(vgg.layerNames.first, "block1_conv1")
        XCTAssertEqual(vgg.layerNames.last, "block5_pool")
        XCTAssertEqual(vgg.resolveLayer("relu4_2"), "block4_conv2")
        XCTAssertEqual(vgg.resolveLayer("relu5_4"), "block5_conv4")
        XCTAssertEqual(vgg.resolveLayer("pool3"), "block3_pool")
        XCTAssertEqual(vgg.resolveLayer("features.35"), "block5_conv4")
        XCTAssertEqual(vgg.resolveLayer("features.36"), "block5_pool")
        XCTAssertEqual(vgg.minimumInputSize, 32)
        let vgg16 = try makeNetwork(canonical: "vgg16")
        XCTAssertNil(vgg16.resolveLayer("block5_conv4"))
        XCTAssertEqual(vgg16.resolveLayer("features.29"), "block5_conv3")

        let inc = try makeNetwork(canonical: "inception_v3")
        XCTAssertEqual(inc.layerNames, ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                                        "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
                                        "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"])
        XCTAssertEqual(inc.resolveLayer("mixed0"), "Mixed_5b")
        XCTAssertEqual(inc.resolveLayer("mixed4"), "Mixed_6b")
        XCTAssertEqual(inc.resolveLayer("mixed10"), "Mixed_7c")
        XCTAssertEqual(inc.minimumInputSize, 75)

        for (alias, canonical) in [("squeezenet", "squeezenet1_0"), ("vgg", "vgg19"), ("inception", "inception_v3"),
                                   ("VGG16", "vgg16"), ("squeezenet1_1", "squeezenet1_1")] {
            XCTAssertEqual(try canonicalNetworkName(alias), canonical)
        }
        XCTAssertThrowsError(try makeRandomNetwork(named: "resnet50", seed: 1)) { error in
            guard let e = error as? PretrainedError, case .unknownNetwork = e.kind else { return XCTFail("\(error)") }
            XCTAssertTrue(e.description.contains("vgg19"), e.description)
        }
    }

    func testActivationsKeyedByRequestedNamesAndStopEarly() throws {
        let net = try formulaNetwork("squeezenet1_1")
        let x = FormulaWeights.input(shape: [2, 40, 48, 3])
        let acts = withNoGrad { net.activations(x, layers: ["fire3", "features.4", "pool1"]) }
        XCTAssertEqual(Set(acts.keys), ["fire3", "features.4", "pool1"])
        XCTAssertEqual(acts["fire3"]!.scalars, acts["features.4"]!.scalars)
        XCTAssertEqual(acts["pool1"]!.shape, [2, 9, 11, 64])
        XCTAssertEqual(acts["fire3"]!.shape, [2, 9, 11, 128])
        XCTAssertTrue(withNoGrad { net.activations(x, layers: []) }.isEmpty)
        // Batch items are independent.
        let one = withNoGrad { net.logits(x.slice(axis: 0, range: 1..<2)) }
        let both = withNoGrad { net.logits(x) }
        XCTAssertLessThan(Self.relativeError(one, both.slice(axis: 0, range: 1..<2)), 1e-6)
    }

    func testPreprocessMatchesTorchvision() throws {
        let rgb = Tensor(shape: [1, 1, 2, 3], scalars: [0, 0.5, 1, 0.25, 0.75, 0.1])
        let sq = try makeRandomNetwork(named: "squeezenet1_1", seed: 3)
        let p = sq.preprocess(rgb).scalars
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        for i in 0..<6 { XCTAssertEqual(p[i], (rgb.scalars[i] - mean[i % 3]) / std[i % 3], accuracy: 1e-6) }
        // Inception: transform_input on top of the normalisation, i.e. 2·x − 1.
        let inc = try makeNetwork(canonical: "inception_v3")
        let q = inc.preprocess(rgb).scalars
        for i in 0..<6 { XCTAssertEqual(q[i], 2 * rgb.scalars[i] - 1, accuracy: 1e-6) }
        // Differentiable.
        let x = rgb.copy()
        x.requiresGrad = true
        inc.preprocess(x).sum().backward()
        XCTAssertEqual(x.grad?.scalars ?? [], [Float](repeating: 2, count: 6), accuracy: 1e-5)
    }

    func testOnlyTheInputGetsGradients() throws {
        let net = try formulaNetwork("squeezenet1_1")
        let x = FormulaWeights.input(shape: [1, 33, 33, 3]).copy()
        x.requiresGrad = true
        let y = net.activations(x, layers: ["fire4"])["fire4"]!
        y.squared().mean().backward()
        let g = try XCTUnwrap(x.grad)
        XCTAssertEqual(g.shape, x.shape)
        XCTAssertGreaterThan(g.scalars.map { Swift.abs($0) }.max() ?? 0, 0)
        for (_, p) in net.parameters {
            XCTAssertFalse(p.tensor.requiresGrad)
            XCTAssertNil(p.tensor.grad)
        }
        // Directional derivative along a fixed direction d: ⟨∇L, d⟩ against a central difference.
        let d = FormulaWeights.input(shape: x.shape)
        let h: Float = 1e-3
        func loss(_ t: Float) -> Double {
            let z = x.detached() + d * t
            return Double(withNoGrad { net.activations(z, layers: ["fire4"])["fire4"]!.squared().mean().scalar })
        }
        let numeric = (loss(h) - loss(-h)) / Double(2 * h)
        let analytic = zip(g.scalars, d.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        XCTAssertEqual(analytic, numeric, accuracy: 2e-2 * Swift.abs(numeric))
    }

    func testStrictLoadingNamesEveryProblem() throws {
        let net = try makeNetwork(canonical: "squeezenet1_1")
        var sd = FormulaWeights.stateDict(shapes: net.stateDictShapes)
        sd["features.3.squeeze.bias"] = nil
        sd["features.99.weight"] = Tensor(zeros: [2])
        sd["classifier.1.weight"] = Tensor(zeros: [1000, 512, 3, 3])
        sd["features.0.num_batches_tracked"] = Tensor(0)
        XCTAssertThrowsError(try net.load(stateDict: sd, source: "bad.pth")) { error in
            guard let e = error as? PretrainedError, case .stateDictMismatch(let problems) = e.kind else {
                return XCTFail("expected stateDictMismatch, got \(error)")
            }
            XCTAssertEqual(e.file, "bad.pth")
            XCTAssertEqual(problems.count, 3, "\(problems)")
            let text = problems.joined(separator: "\n")
            XCTAssertTrue(text.contains("missing: 'features.3.squeeze.bias'"), text)
            XCTAssertTrue(text.contains("unexpected: 'features.99.weight'"), text)
            XCTAssertTrue(text.contains("shape mismatch: 'classifier.1.weight' is [1000, 512, 3, 3] in the file, squeezenet1_1 expects [1000, 512, 1, 1]"), text)
            XCTAssertTrue(text.contains("missing: 'features.3.squeeze.bias' (squeezenet1_1 expects shape [16])"), text)
        }
    }

    func testInceptionIgnoresAuxLogitsAndLoadsSafetensors() throws {
        let net = try makeNetwork(canonical: "inception_v3")
        var sd = FormulaWeights.stateDict(shapes: net.stateDictShapes)
        sd["AuxLogits.conv0.conv.weight"] = Tensor(zeros: [128, 768, 1, 1])
        sd["AuxLogits.fc.weight"] = Tensor(zeros: [1000, 768])
        sd["Mixed_5b.branch1x1.bn.num_batches_tracked"] = Tensor(0)
        XCTAssertNoThrow(try net.load(stateDict: sd, source: "inception.pth"))
        // Through a safetensors file and the public loader (the smaller SqueezeNet 1.1).
        let small = try makeNetwork(canonical: "squeezenet1_1")
        let smallDict = FormulaWeights.stateDict(shapes: small.stateDictShapes)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gen-net-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafetensorsFile.write(tensors: smallDict, to: url)
        let loaded = try loadPretrainedNetwork(named: "squeezenet1_1", weights: url)
        try small.load(stateDict: smallDict, source: "memory")
        let x = FormulaWeights.input(shape: [1, 17, 17, 3])
        XCTAssertEqual(withNoGrad { loaded.logits(x) }.scalars, withNoGrad { small.logits(x) }.scalars)
    }

    func testRandomNetworksAreDeterministicAndRunAtTheMinimumSize() throws {
        for name in ["squeezenet1_0", "squeezenet1_1"] {
            let a = try makeRandomNetwork(named: name, seed: 7), b = try makeRandomNetwork(named: name, seed: 7)
            let c = try makeRandomNetwork(named: name, seed: 8)
            let x = FormulaWeights.input(shape: [1, a.minimumInputSize, a.minimumInputSize, 3])
            let la = withNoGrad { a.logits(x) }
            XCTAssertEqual(la.shape, [1, 1000])
            XCTAssertEqual(la.scalars, withNoGrad { b.logits(x) }.scalars)
            XCTAssertNotEqual(la.scalars, withNoGrad { c.logits(x) }.scalars)
            // At the minimum size the last ceil-mode pool sees 2×2 (PyTorch gives one window).
            let last = a.layerNames[a.layerNames.count - 2]
            XCTAssertEqual(withNoGrad { a.activations(x, layers: [last]) }[last]!.shape[1...2], [1, 1])
        }
    }

    func testAdaptiveAveragePoolMatchesDefinition() throws {
        for (h, w, oh, ow) in [(5, 3, 7, 7), (10, 9, 7, 7), (2, 2, 7, 7), (7, 7, 7, 7), (13, 4, 3, 2)] {
            let x = FormulaWeights.input(shape: [2, h, w, 3])
            let y = adaptiveAveragePool2d(x, outputSize: (oh, ow))
            XCTAssertEqual(y.shape, [2, oh, ow, 3])
            let xs = x.scalars, ys = y.scalars
            for n in 0..<2 {
                for i in 0..<oh {
                    for j in 0..<ow {
                        let h0 = i * h / oh, h1 = ((i + 1) * h + oh - 1) / oh
                        let w0 = j * w / ow, w1 = ((j + 1) * w + ow - 1) / ow
                        for c in 0..<3 {
                            var s: Float = 0
                            for a in h0..<h1 { for b in w0..<w1 { s += xs[((n * h + a) * w + b) * 3 + c] } }
                            let want = s / Float((h1 - h0) * (w1 - w0))
                            XCTAssertEqual(ys[((n * oh + i) * ow + j) * 3 + c], want, accuracy: 1e-5)
                        }
                    }
                }
            }
        }
    }
}

/// The deterministic weights and input of `Tools/make_network_fixtures.py` (see its docstring).
enum FormulaWeights {
    static func fnv1a64(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h ^= UInt64(b); h = h &* 0x100_0000_01B3 }
        return h
    }

    /// `body(i, u(i))` for i in 0..<n, u in [0, 1) (24 bits).
    @inline(__always)
    static func uniforms(_ name: String, _ n: Int, into dst: UnsafeMutablePointer<Float>, _ map: (Double) -> Double) {
        let seed = fnv1a64(name)
        var z0 = seed
        for i in 0..<n {
            z0 = z0 &+ 0x9E37_79B9_7F4A_7C15
            var z = z0
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            dst[i] = Float(map(Double(z >> 40) / 16_777_216.0))
        }
    }

    static func tensor(_ name: String, shape: [Int]) -> Tensor {
        let t = Tensor(zeros: shape)
        let n = t.count
        t.withUnsafeMutableBufferPointer { buf in
            let p = buf.baseAddress!
            if name.hasSuffix("running_var") {
                uniforms(name, n, into: p) { 0.75 + 0.5 * $0 }
            } else if name.hasSuffix("running_mean") || name.hasSuffix(".bias") {
                uniforms(name, n, into: p) { 0.1 * (2 * $0 - 1) }
            } else if name.hasSuffix(".weight") && shape.count == 1 {
                uniforms(name, n, into: p) { 1 + 0.2 * (2 * $0 - 1) }
            } else {
                let a = (6.0 / Double(n / shape[0])).squareRoot()
                uniforms(name, n, into: p) { a * (2 * $0 - 1) }
            }
        }
        t.name = name
        return t
    }

    /// A torchvision-layout state_dict for the given shapes.
    static func stateDict(shapes: [String: [Int]]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, shape) in shapes { out[name] = tensor(name, shape: shape) }
        return out
    }

    /// `2·(2u − 1)` with the seed of "input", in row-major order of `shape`.
    static func input(shape: [Int]) -> Tensor {
        let t = Tensor(zeros: shape)
        t.withUnsafeMutableBufferPointer { buf in
            uniforms("input", buf.count, into: buf.baseAddress!) { 2 * (2 * $0 - 1) }
        }
        return t
    }
}

private func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
