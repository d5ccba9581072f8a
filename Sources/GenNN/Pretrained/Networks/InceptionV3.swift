import Foundation
import GenTensor

/// Inception v3 (Szegedy et al., 2015) exactly as torchvision's `inception_v3(weights=...)` in
/// `eval()`: `transform_input=True` (done by ``preprocess(_:)``), `BasicConv2d` = convolution
/// without bias + BatchNorm (ε 0.001, running statistics) + ReLU, Inception blocks A–E, 3×3/2
/// max pooling without ceil mode, 3×3/1 average pooling with padding 1 counting the padding
/// (PyTorch's default), global average, dropout (off), Linear(2048, 1000). The auxiliary
/// classifier is not built; its `AuxLogits.*` tensors in a state_dict are ignored.
///
/// Layers (NHWC) have torchvision's module names: Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3,
/// maxpool1, Conv2d_3b_1x1, Conv2d_4a_3x3, maxpool2, Mixed_5b, Mixed_5c, Mixed_5d, Mixed_6a,
/// Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e, Mixed_7a, Mixed_7b, Mixed_7c; the Keras names
/// mixed0 … mixed10 are aliases of Mixed_5b … Mixed_7c. Smallest input: 75×75.
final class InceptionV3: PretrainedConvNetwork {
    private var fc: FrozenLinear?

    init() {
        super.init(name: "inception_v3", minimumInputSize: 75, transformInput: true)
        let c1a = BasicConv2d(self, "Conv2d_1a_3x3", 3, 32, kernel: 3, stride: 2)
        addStage("Conv2d_1a_3x3") { c1a($0) }
        let c2a = BasicConv2d(self, "Conv2d_2a_3x3", 32, 32, kernel: 3)
        addStage("Conv2d_2a_3x3") { c2a($0) }
        let c2b = BasicConv2d(self, "Conv2d_2b_3x3", 32, 64, kernel: 3, padding: 1)
        addStage("Conv2d_2b_3x3") { c2b($0) }
        addStage("maxpool1") { $0.maxPool2d(poolSize: (3, 3), strides: (2, 2)) }
        let c3b = BasicConv2d(self, "Conv2d_3b_1x1", 64, 80, kernel: 1)
        addStage("Conv2d_3b_1x1") { c3b($0) }
        let c4a = BasicConv2d(self, "Conv2d_4a_3x3", 80, 192, kernel: 3)
        addStage("Conv2d_4a_3x3") { c4a($0) }
        addStage("maxpool2") { $0.maxPool2d(poolSize: (3, 3), strides: (2, 2)) }

        let blocks: [(String, (Tensor) -> Tensor)] = [
            ("Mixed_5b", inceptionA("Mixed_5b", 192, poolFeatures: 32)),
            ("Mixed_5c", inceptionA("Mixed_5c", 256, poolFeatures: 64)),
            ("Mixed_5d", inceptionA("Mixed_5d", 288, poolFeatures: 64)),
            ("Mixed_6a", inceptionB("Mixed_6a", 288)),
            ("Mixed_6b", inceptionC("Mixed_6b", 768, channels7x7: 128)),
            ("Mixed_6c", inceptionC("Mixed_6c", 768, channels7x7: 160)),
            ("Mixed_6d", inceptionC("Mixed_6d", 768, channels7x7: 160)),
            ("Mixed_6e", inceptionC("Mixed_6e", 768, channels7x7: 192)),
            ("Mixed_7a", inceptionD("Mixed_7a", 768)),
            ("Mixed_7b", inceptionE("Mixed_7b", 1280)),
            ("Mixed_7c", inceptionE("Mixed_7c", 2048)),
        ]
        for (k, (name, body)) in blocks.enumerated() {
            addStage(name, aliases: ["mixed\(k)"], body)
        }
        fc = FrozenLinear(self, "fc", 2048, 1000)
    }

    /// The auxiliary classifier (`AuxLogits.*`) is not part of this network.
    override func isIgnoredKey(_ key: String) -> Bool { key.hasPrefix("AuxLogits.") }

    /// `avgpool` (global average), dropout (off), `fc`: `[N, H, W, 2048]` → `[N, 1000]`.
    override func head(_ x: Tensor) -> Tensor { fc!(x.globalAveragePool2d()) }

    // MARK: Blocks

    private static func averagePool3x3(_ x: Tensor) -> Tensor {
        x.averagePool2d(poolSize: (3, 3), strides: (1, 1), padding: .explicit(top: 1, bottom: 1, left: 1, right: 1),
                        countIncludePad: true)
    }

    private static func maxPool3x3s2(_ x: Tensor) -> Tensor {
        x.maxPool2d(poolSize: (3, 3), strides: (2, 2))
    }

    /// InceptionA: 1×1 (64) | 1×1 (48) → 5×5 (64) | 1×1 (64) → 3×3 (96) → 3×3 (96) | avg 3×3 → 1×1 (poolFeatures).
    private func inceptionA(_ p: String, _ cin: Int, poolFeatures: Int) -> (Tensor) -> Tensor {
        let b1 = BasicConv2d(self, "\(p).branch1x1", cin, 64, kernel: 1)
        let b5a = BasicConv2d(self, "\(p).branch5x5_1", cin, 48, kernel: 1)
        let b5b = BasicConv2d(self, "\(p).branch5x5_2", 48, 64, kernel: 5, padding: 2)
        let d1 = BasicConv2d(self, "\(p).branch3x3dbl_1", cin, 64, kernel: 1)
        let d2 = BasicConv2d(self, "\(p).branch3x3dbl_2", 64, 96, kernel: 3, padding: 1)
        let d3 = BasicConv2d(self, "\(p).branch3x3dbl_3", 96, 96, kernel: 3, padding: 1)
        let bp = BasicConv2d(self, "\(p).branch_pool", cin, poolFeatures, kernel: 1)
        return { x in
            Tensor.concatenate([b1(x), b5b(b5a(x)), d3(d2(d1(x))), bp(InceptionV3.averagePool3x3(x))], axis: 3)
        }
    }

    /// InceptionB: 3×3/2 (384) | 1×1 (64) → 3×3 (96) → 3×3/2 (96) | max 3×3/2.
    private func inceptionB(_ p: String, _ cin: Int) -> (Tensor) -> Tensor {
        let b3 = BasicConv2d(self, "\(p).branch3x3", cin, 384, kernel: 3, stride: 2)
        let d1 = BasicConv2d(self, "\(p).branch3x3dbl_1", cin, 64, kernel: 1)
        let d2 = BasicConv2d(self, "\(p).branch3x3dbl_2", 64, 96, kernel: 3, padding: 1)
        let d3 = BasicConv2d(self, "\(p).branch3x3dbl_3", 96, 96, kernel: 3, stride: 2)
        return { x in
            Tensor.concatenate([b3(x), d3(d2(d1(x))), InceptionV3.maxPool3x3s2(x)], axis: 3)
        }
    }

    /// InceptionC: 1×1 (192) | 1×1 (c7) → 1×7 (c7) → 7×1 (192) |
    /// 1×1 (c7) → 7×1 (c7) → 1×7 (c7) → 7×1 (c7) → 1×7 (192) | avg 3×3 → 1×1 (192).
    private func inceptionC(_ p: String, _ cin: Int, channels7x7 c7: Int) -> (Tensor) -> Tensor {
        let b1 = BasicConv2d(self, "\(p).branch1x1", cin, 192, kernel: 1)
        let s1 = BasicConv2d(self, "\(p).branch7x7_1", cin, c7, kernel: 1)
        let s2 = BasicConv2d(self, "\(p).branch7x7_2", c7, c7, kernel: (1, 7), padding: (0, 3))
        let s3 = BasicConv2d(self, "\(p).branch7x7_3", c7, 192, kernel: (7, 1), padding: (3, 0))
        let d1 = BasicConv2d(self, "\(p).branch7x7dbl_1", cin, c7, kernel: 1)
        let d2 = BasicConv2d(self, "\(p).branch7x7dbl_2", c7, c7, kernel: (7, 1), padding: (3, 0))
        let d3 = BasicConv2d(self, "\(p).branch7x7dbl_3", c7, c7, kernel: (1, 7), padding: (0, 3))
        let d4 = BasicConv2d(self, "\(p).branch7x7dbl_4", c7, c7, kernel: (7, 1), padding: (3, 0))
        let d5 = BasicConv2d(self, "\(p).branch7x7dbl_5", c7, 192, kernel: (1, 7), padding: (0, 3))
        let bp = BasicConv2d(self, "\(p).branch_pool", cin, 192, kernel: 1)
        return { x in
            Tensor.concatenate([b1(x), s3(s2(s1(x))), d5(d4(d3(d2(d1(x))))), bp(InceptionV3.averagePool3x3(x))], axis: 3)
        }
    }

    /// InceptionD: 1×1 (192) → 3×3/2 (320) | 1×1 (192) → 1×7 (192) → 7×1 (192) → 3×3/2 (192) | max 3×3/2.
    private func inceptionD(_ p: String, _ cin: Int) -> (Tensor) -> Tensor {
        let a1 = BasicConv2d(self, "\(p).branch3x3_1", cin, 192, kernel: 1)
        let a2 = BasicConv2d(self, "\(p).branch3x3_2", 192, 320, kernel: 3, stride: 2)
        let s1 = BasicConv2d(self, "\(p).branch7x7x3_1", cin, 192, kernel: 1)
        let s2 = BasicConv2d(self, "\(p).branch7x7x3_2", 192, 192, kernel: (1, 7), padding: (0, 3))
        let s3 = BasicConv2d(self, "\(p).branch7x7x3_3", 192, 192, kernel: (7, 1), padding: (3, 0))
        let s4 = BasicConv2d(self, "\(p).branch7x7x3_4", 192, 192, kernel: 3, stride: 2)
        return { x in
            Tensor.concatenate([a2(a1(x)), s4(s3(s2(s1(x)))), InceptionV3.maxPool3x3s2(x)], axis: 3)
        }
    }

    /// InceptionE: 1×1 (320) | 1×1 (384) → [1×3 (384), 3×1 (384)] |
    /// 1×1 (448) → 3×3 (384) → [1×3 (384), 3×1 (384)] | avg 3×3 → 1×1 (192).
    private func inceptionE(_ p: String, _ cin: Int) -> (Tensor) -> Tensor {
        let b1 = BasicConv2d(self, "\(p).branch1x1", cin, 320, kernel: 1)
        let t1 = BasicConv2d(self, "\(p).branch3x3_1", cin, 384, kernel: 1)
        let t2a = BasicConv2d(self, "\(p).branch3x3_2a", 384, 384, kernel: (1, 3), padding: (0, 1))
        let t2b = BasicConv2d(self, "\(p).branch3x3_2b", 384, 384, kernel: (3, 1), padding: (1, 0))
        let d1 = BasicConv2d(self, "\(p).branch3x3dbl_1", cin, 448, kernel: 1)
        let d2 = BasicConv2d(self, "\(p).branch3x3dbl_2", 448, 384, kernel: 3, padding: 1)
        let d3a = BasicConv2d(self, "\(p).branch3x3dbl_3a", 384, 384, kernel: (1, 3), padding: (0, 1))
        let d3b = BasicConv2d(self, "\(p).branch3x3dbl_3b", 384, 384, kernel: (3, 1), padding: (1, 0))
        let bp = BasicConv2d(self, "\(p).branch_pool", cin, 192, kernel: 1)
        return { x in
            let t = t1(x)
            let d = d2(d1(x))
            return Tensor.concatenate([b1(x), t2a(t), t2b(t), d3a(d), d3b(d), bp(InceptionV3.averagePool3x3(x))], axis: 3)
        }
    }
}
