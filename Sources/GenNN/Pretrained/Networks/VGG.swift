import Foundation
import GenTensor

/// VGG16 and VGG19 (Simonyan & Zisserman, 2014) without batch normalisation, exactly as
/// torchvision's `vgg16` / `vgg19`: 3×3 convolutions (padding 1) + ReLU in five blocks, each
/// followed by 2×2/2 max pooling; `AdaptiveAvgPool2d((7, 7))`; classifier Linear(25088, 4096),
/// ReLU, dropout (off), Linear(4096, 4096), ReLU, dropout (off), Linear(4096, 1000).
///
/// Layers (NHWC) use the Keras names: `block1_conv1` … `block5_conv4` (post-ReLU; VGG16 stops at
/// `block5_conv3`) and `block1_pool` … `block5_pool`. Aliases: the neural-style names `relu1_1` …
/// `relu5_4` and `pool1` … `pool5`, and torchvision's `features.N` (a convolution's index and the
/// index of its ReLU both name the post-ReLU activation, torchvision's ReLU being in place).
///
/// The first classifier layer's weight is reordered at load time so that it reads gen's NHWC
/// flattening of the pooled `[N, 7, 7, 512]` map exactly as torchvision's reads its NCHW one.
final class VGG: PretrainedConvNetwork {
    /// classifier.0, classifier.3, classifier.6.
    private var classifier: [FrozenLinear] = []

    init(depth: Int) {
        precondition(depth == 16 || depth == 19, "VGG: depth must be 16 or 19, got \(depth)")
        let perBlock = depth == 16 ? [2, 2, 3, 3, 3] : [2, 2, 4, 4, 4]
        let widths = [64, 128, 256, 512, 512]
        super.init(name: "vgg\(depth)", minimumInputSize: 32)
        var index = 0
        var cin = 3
        for (b, (count, width)) in zip(perBlock, widths).enumerated() {
            for k in 0..<count {
                let conv = ConvReLU(self, "features.\(index)", cin, width, kernel: 3, padding: 1)
                addStage("block\(b + 1)_conv\(k + 1)", aliases: ["relu\(b + 1)_\(k + 1)", "features.\(index)", "features.\(index + 1)"]) {
                    conv($0)
                }
                cin = width
                index += 2
            }
            addStage("block\(b + 1)_pool", aliases: ["pool\(b + 1)", "features.\(index)"]) {
                $0.maxPool2d(poolSize: (2, 2), strides: (2, 2))
            }
            index += 1
        }
        classifier = [
            FrozenLinear(self, "classifier.0", 512 * 7 * 7, 4096, kind: .linearWeightFromNCHW(channels: 512, height: 7, width: 7)),
            FrozenLinear(self, "classifier.3", 4096, 4096),
            FrozenLinear(self, "classifier.6", 4096, 1000),
        ]
    }

    /// `avgpool` (adaptive average to 7×7), flatten, classifier: `[N, H, W, 512]` → `[N, 1000]`.
    override func head(_ x: Tensor) -> Tensor {
        let pooled = adaptiveAveragePool2d(x, outputSize: (7, 7)).flattened()
        let h1 = classifier[0](pooled).relu()
        let h2 = classifier[1](h1).relu()
        return classifier[2](h2)
    }
}
