import Foundation
import GenTensor

/// A pretrained convolutional network used as a fixed feature extractor (style transfer, DeepDream, classification).
///
/// Implementations: SqueezeNet 1.0 / 1.1, VGG16 / VGG19 and Inception v3, exactly as torchvision
/// builds them (see ``loadPretrainedNetwork(named:weights:)``). Activations are NHWC.
public protocol FeatureExtractor: AnyObject {
    /// torchvision name, e.g. "squeezenet1_0", "vgg19", "inception_v3".
    var name: String { get }
    /// Names of the activations it exposes, in forward order (for VGG: Keras names block1_conv1 … block5_conv4 (post-ReLU) and neural-style names relu1_1 … relu5_4 as aliases; for SqueezeNet: conv1, pool1, fire2 … fire9 (torchvision `features` indices also accepted as "features.N"); for Inception: Conv2d_1a_3x3 … Mixed_7c as torchvision names, plus Keras names mixed0 … mixed10 as aliases).
    ///
    /// The list holds the canonical names only; aliases are accepted wherever a layer name is
    /// (``resolveLayer(_:)`` maps them to the canonical name).
    var layerNames: [String] { get }
    /// Smallest input height/width the network accepts.
    var minimumInputSize: Int { get }
    /// RGB in [0, 1], NHWC [N, H, W, 3] → the network's input (torchvision normalisation: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225); inception_v3 with transform_input as torchvision's `inception_v3(weights=...)` does). Differentiable.
    func preprocess(_ rgb: Tensor) -> Tensor
    /// Runs the network only as deep as the deepest requested layer and returns those activations (NHWC). Weights are frozen (requiresGrad false): only the input gets gradients when it requires grad. Unknown names: precondition (callers validate with `layerNames`/`resolveLayer`).
    ///
    /// The result is keyed by the names exactly as requested (an alias stays an alias).
    func activations(_ input: Tensor, layers: [String]) -> [String: Tensor]
    /// Canonical layer name for a name or alias, or nil.
    func resolveLayer(_ name: String) -> String?
}

/// A feature extractor that also classifies ImageNet (1000 logits).
public protocol ImageNetClassifier: FeatureExtractor {
    /// The network's input (``FeatureExtractor/preprocess(_:)``), `[N, H, W, 3]` → logits `[N, 1000]`
    /// (dropout off, as torchvision's `eval()`).
    func logits(_ input: Tensor) -> Tensor
}

/// The networks ``loadPretrainedNetwork(named:weights:)`` builds, by canonical (torchvision) name.
public let pretrainedNetworkNames = ["squeezenet1_0", "squeezenet1_1", "vgg16", "vgg19", "inception_v3"]

/// The canonical name of a network name or alias (case-insensitive): squeezenet → squeezenet1_0,
/// vgg → vgg19, inception → inception_v3.
/// - Throws: ``PretrainedError/Kind/unknownNetwork(_:known:)``.
public func canonicalNetworkName(_ name: String) throws -> String {
    if let n = WeightsRegistry.network(named: name), pretrainedNetworkNames.contains(n.name) { return n.name }
    let key = name.lowercased()
    if pretrainedNetworkNames.contains(key) { return key }
    throw PretrainedError(file: name, kind: .unknownNetwork(name, known: pretrainedNetworkNames))
}

/// Builds a network by torchvision name or alias (squeezenet1_0, squeezenet1_1, vgg16, vgg19, inception_v3; squeezenet, vgg, inception) and loads its weights (a .pth or .safetensors state_dict with torchvision's parameter names; strict: missing/extra/mis-shaped tensors are errors naming each).
///
/// Convolution kernels are converted from OIHW to HWIO and Linear weights from `[out, in]` to
/// `[in, out]` at load time (VGG's first classifier layer also has its rows reordered from
/// torchvision's NCHW flattening to gen's NHWC flattening); Inception's BatchNorm layers use
/// `running_mean`/`running_var` (folded into the convolutions). BatchNorm's `num_batches_tracked`
/// and Inception's auxiliary classifier (`AuxLogits.*`) are ignored.
/// - Throws: ``PretrainedError`` (unknown network, unreadable file, ``PretrainedError/Kind/stateDictMismatch(_:)``
///   listing every missing, unexpected and mis-shaped tensor), or ``CheckpointError`` for a damaged safetensors file.
public func loadPretrainedNetwork(named name: String, weights: URL) throws -> ImageNetClassifier {
    let network = try makeNetwork(canonical: canonicalNetworkName(name))
    let stateDict = try loadStateDict(from: weights)
    try network.load(stateDict: stateDict, source: weights.path)
    return network
}

/// Same architecture with deterministic random weights (He-normal), for timing and tests.
///
/// Convolution and Linear weights are He-normal (`N(0, 2/fanIn)`), biases zero, BatchNorm the
/// identity (γ 1, β 0, mean 0, variance 1); drawn from ``GenTensor/RandomGenerator`` seeded with
/// `seed`, parameter by parameter in the order of their torchvision names.
/// - Throws: ``PretrainedError/Kind/unknownNetwork(_:known:)``.
public func makeRandomNetwork(named name: String, seed: UInt64) throws -> ImageNetClassifier {
    let network = try makeNetwork(canonical: canonicalNetworkName(name))
    network.randomize(seed: seed)
    return network
}

/// The architecture for a canonical name, with zero weights (load or randomize them next).
func makeNetwork(canonical name: String) throws -> PretrainedConvNetwork {
    switch name {
    case "squeezenet1_0": return SqueezeNet(version: .v1_0)
    case "squeezenet1_1": return SqueezeNet(version: .v1_1)
    case "vgg16": return VGG(depth: 16)
    case "vgg19": return VGG(depth: 19)
    case "inception_v3": return InceptionV3()
    default: throw PretrainedError(file: name, kind: .unknownNetwork(name, known: pretrainedNetworkNames))
    }
}
