import Foundation
import XCTest
import GenTensor

/// `Tensor.conv2d` and `Tensor.conv2dTranspose` against PyTorch (`F.conv2d`, `F.conv_transpose2d`)
/// and TensorFlow/Keras 3 (`padding="same"` for convolutions and `Conv2DTranspose`): outputs and
/// the gradients of Σ out ⊙ seed with respect to input, kernel and bias.
///
/// Fixtures `Fixtures/conv_*.json` are written by `Tools/make_conv_fixtures.py` (NCHW/OIHW converted
/// to gen's NHWC/HWIO); each case stores `<case>/x`, `kernel`, `bias`, `seed`, `out`, `dx`,
/// `dkernel`, `dbias`.
final class ConvolutionReferenceTests: XCTestCase {
    static let forward = (rtol: Float(1e-5), atol: Float(1e-5))
    static let gradient = (rtol: Float(1e-4), atol: Float(1e-5))

    typealias Entries = [String: (shape: [Int], data: [Float])]

    func load(_ name: String) throws -> Entries {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
            throw XCTSkip("fixture \(name).json not in the test bundle; run Tools/make_conv_fixtures.py")
        }
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        guard let dict = object as? [String: Any] else { throw NSError(domain: "ConvolutionReferenceTests", code: 1) }
        var entries: Entries = [:]
        for (key, value) in dict {
            guard let e = value as? [String: Any], let shape = e["shape"] as? [Int], let data = e["data"] as? [Any] else {
                throw NSError(domain: "ConvolutionReferenceTests", code: 2, userInfo: [NSLocalizedDescriptionKey: "\(name): bad entry \(key)"])
            }
            entries[key] = (shape, data.map { Float(($0 as? NSNumber)?.doubleValue ?? .nan) })
        }
        return entries
    }

    func tensor(_ e: Entries, _ key: String, grad: Bool = false) -> Tensor {
        guard let v = e[key] else { XCTFail("no fixture entry \(key)"); return Tensor(zeros: [0]) }
        return Tensor(shape: v.shape, scalars: v.data, requiresGrad: grad)
    }

    func assertClose(_ actual: Tensor?, _ e: Entries, _ key: String, _ tol: (rtol: Float, atol: Float),
                     file: StaticString = #filePath, line: UInt = #line) {
        guard let actual, let expected = e[key] else { XCTFail("\(key): missing", file: file, line: line); return }
        XCTAssertEqual(actual.shape, expected.shape, "\(key): shape", file: file, line: line)
        guard actual.count == expected.data.count else { return }
        let a = actual.scalars
        var worst: Float = 0, worstIndex = 0, maxAbs: Float = 0
        for i in 0..<a.count {
            let diff = abs(a[i] - expected.data[i])
            maxAbs = max(maxAbs, diff)
            let ratio = a[i].isFinite ? diff / (tol.atol + tol.rtol * abs(expected.data[i])) : .infinity
            if ratio > worst { worst = ratio; worstIndex = i }
        }
        print(String(format: "ConvolutionReferenceTests %@: max abs err %.3g, worst/tol %.3g", key, maxAbs, worst))
        XCTAssertLessThanOrEqual(worst, 1, "\(key): element \(worstIndex) is \(a[worstIndex]), expected \(expected.data[worstIndex])",
                                 file: file, line: line)
    }

    /// Runs `op` on the case's inputs, backpropagates its seed and compares all four results.
    func check(_ e: Entries, _ name: String, file: StaticString = #filePath, line: UInt = #line,
               _ op: (Tensor, Tensor, Tensor) -> Tensor) {
        let x = tensor(e, "\(name)/x", grad: true), k = tensor(e, "\(name)/kernel", grad: true), b = tensor(e, "\(name)/bias", grad: true)
        let out = op(x, k, b)
        assertClose(out, e, "\(name)/out", Self.forward, file: file, line: line)
        guard out.shape == e["\(name)/out"]?.shape else { return }
        out.backward(seed: tensor(e, "\(name)/seed"))
        assertClose(x.grad, e, "\(name)/dx", Self.gradient, file: file, line: line)
        assertClose(k.grad, e, "\(name)/dkernel", Self.gradient, file: file, line: line)
        assertClose(b.grad, e, "\(name)/dbias", Self.gradient, file: file, line: line)
    }

    func testConv2dAgainstPyTorch() throws {
        let e = try load("conv_torch")
        let one = Padding.explicit(top: 1, bottom: 1, left: 1, right: 1)
        let cases: [(String, (Int, Int), Padding, (Int, Int))] = [
            ("pad1", (1, 1), one, (1, 1)),
            ("stride2", (2, 2), one, (1, 1)),
            ("dilation2", (1, 2), .valid, (2, 2)),
            ("asym", (2, 1), .explicit(top: 0, bottom: 2, left: 1, right: 0), (1, 1)),
            ("pointwise", (1, 1), .valid, (1, 1)),
            ("vae", (2, 2), one, (1, 1)),
        ]
        for (name, strides, padding, dilation) in cases {
            check(e, name) { Tensor.conv2d($0, kernel: $1, bias: $2, strides: strides, padding: padding, dilation: dilation) }
        }
    }

    func testConv2dSameAgainstTensorFlow() throws {
        let e = try load("conv_keras")
        let cases: [(String, (Int, Int), (Int, Int))] = [
            ("k4s2", (2, 2), (1, 1)), ("k3s2", (2, 2), (1, 1)), ("k2s1", (1, 1), (1, 1)),
            ("k5s2", (2, 2), (1, 1)), ("k3d2", (1, 1), (2, 2)),
        ]
        for (name, strides, dilation) in cases {
            check(e, name) { Tensor.conv2d($0, kernel: $1, bias: $2, strides: strides, padding: .same, dilation: dilation) }
        }
    }

    func testConv2dTransposeAgainstPyTorch() throws {
        let e = try load("conv_transpose_torch")
        let cases: [(String, (Int, Int), Padding, (Int, Int))] = [
            ("p1op1", (2, 2), .explicit(top: 1, bottom: 1, left: 1, right: 1), (1, 1)),
            ("p0", (1, 2), .valid, (0, 1)),
            ("p2s3", (3, 3), .explicit(top: 2, bottom: 2, left: 1, right: 1), (2, 0)),
            ("pointwise", (1, 1), .valid, (0, 0)),
        ]
        for (name, strides, padding, outputPadding) in cases {
            check(e, name) {
                Tensor.conv2dTranspose($0, kernel: $1, bias: $2, strides: strides, padding: padding, outputPadding: outputPadding)
            }
        }
    }

    func testConv2dTransposeAgainstKeras() throws {
        let e = try load("conv_transpose_keras")
        let cases: [(String, (Int, Int), Padding)] = [
            ("k5s2same", (2, 2), .same), ("k4s2same", (2, 2), .same), ("k3s1same", (1, 1), .same),
            ("k3s2same", (2, 2), .same), ("k3s2valid", (2, 2), .valid), ("k2x3s1valid", (1, 1), .valid),
        ]
        for (name, strides, padding) in cases {
            check(e, name) { Tensor.conv2dTranspose($0, kernel: $1, bias: $2, strides: strides, padding: padding) }
        }
    }
}
