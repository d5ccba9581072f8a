import Foundation
import GenTensor

/// SqueezeNet 1.0 and 1.1 (Iandola et al., 2016), exactly as torchvision's `squeezenet1_0` /
/// `squeezenet1_1`: `features` (convolution, ceil-mode 3×3/2 max pooling, Fire modules),
/// `classifier` (dropout, off at inference; 1×1 convolution to 1000 channels; ReLU; global
/// average).
///
/// Layers (NHWC, post-ReLU): 1.0: conv1, pool1, fire2, fire3, fire4, pool4, fire5, fire6, fire7,
/// fire8, pool8, fire9, conv10; 1.1: conv1, pool1, fire2, fire3, pool3, fire4, fire5, pool5,
/// fire6, fire7, fire8, fire9, conv10. torchvision's module paths are aliases: `features.N` for
/// the output of `features[N]` (`features.0`, the convolution, names conv1 too: torchvision's
/// ReLU is in place, so a stored `features.0` output is post-ReLU) and `classifier.1`/`classifier.2`
/// for conv10.
final class SqueezeNet: PretrainedConvNetwork {
    enum Version { case v1_0, v1_1 }

    /// A Fire module: squeeze 1×1 + ReLU, then expand 1×1 + ReLU and expand 3×3 (padding 1) + ReLU
    /// concatenated on channels, expand1x1 first.
    final class Fire {
        let squeeze, expand1x1, expand3x3: ConvReLU
        init(_ net: PretrainedConvNetwork, _ prefix: String, _ cin: Int, _ s: Int, _ e1: Int, _ e3: Int) {
            squeeze = ConvReLU(net, "\(prefix).squeeze", cin, s, kernel: 1)
            expand1x1 = ConvReLU(net, "\(prefix).expand1x1", s, e1, kernel: 1)
            expand3x3 = ConvReLU(net, "\(prefix).expand3x3", s, e3, kernel: 3, padding: 1)
        }
        func callAsFunction(_ x: Tensor) -> Tensor {
            let s = squeeze(x)
            return Tensor.concatenate([expand1x1(s), expand3x3(s)], axis: 3)
        }
    }

    init(version: Version) {
        switch version {
        case .v1_0: super.init(name: "squeezenet1_0", minimumInputSize: 21)
        case .v1_1: super.init(name: "squeezenet1_1", minimumInputSize: 17)
        }
        let pool: (Tensor) -> Tensor = { torchMaxPool($0, kernel: 3, stride: 2, ceilMode: true) }
        // (layer name, features index, body)
        var layers: [(String, Int, (Tensor) -> Tensor)] = []
        func fire(_ index: Int, _ number: Int, _ cin: Int, _ s: Int, _ e: Int) {
            let f = Fire(self, "features.\(index)", cin, s, e, e)
            layers.append(("fire\(number)", index, { f($0) }))
        }
        switch version {
        case .v1_0:
            let conv1 = ConvReLU(self, "features.0", 3, 96, kernel: 7, stride: 2)
            layers.append(("conv1", 1, { conv1($0) }))
            layers.append(("pool1", 2, pool))
            fire(3, 2, 96, 16, 64)
            fire(4, 3, 128, 16, 64)
            fire(5, 4, 128, 32, 128)
            layers.append(("pool4", 6, pool))
            fire(7, 5, 256, 32, 128)
            fire(8, 6, 256, 48, 192)
            fire(9, 7, 384, 48, 192)
            fire(10, 8, 384, 64, 256)
            layers.append(("pool8", 11, pool))
            fire(12, 9, 512, 64, 256)
        case .v1_1:
            let conv1 = ConvReLU(self, "features.0", 3, 64, kernel: 3, stride: 2)
            layers.append(("conv1", 1, { conv1($0) }))
            layers.append(("pool1", 2, pool))
            fire(3, 2, 64, 16, 64)
            fire(4, 3, 128, 16, 64)
            layers.append(("pool3", 5, pool))
            fire(6, 4, 128, 32, 128)
            fire(7, 5, 256, 32, 128)
            layers.append(("pool5", 8, pool))
            fire(9, 6, 256, 48, 192)
            fire(10, 7, 384, 48, 192)
            fire(11, 8, 384, 64, 256)
            fire(12, 9, 512, 64, 256)
        }
        for (layer, index, body) in layers {
            addStage(layer, aliases: ["features.\(index)"], body)
        }
        addAlias("features.0", for: "conv1")
        let conv10 = ConvReLU(self, "classifier.1", 512, 1000, kernel: 1)
        addStage("conv10", aliases: ["classifier.1", "classifier.2"]) { conv10($0) }
    }

    /// `classifier.3` (adaptive average to 1×1) and the flatten: `[N, H, W, 1000]` → `[N, 1000]`.
    override func head(_ x: Tensor) -> Tensor { x.globalAveragePool2d() }
}
