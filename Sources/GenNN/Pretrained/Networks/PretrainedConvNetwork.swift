import Foundation
import GenTensor

/// How a state_dict tensor maps onto a model parameter: its layout conversion and its random init.
enum ParameterKind {
    /// Convolution kernel: OIHW in the file, HWIO in the model.
    case convWeight
    /// `nn.Linear` weight: `[out, in]` in the file, `[in, out]` in the model.
    case linearWeight
    /// VGG's first classifier layer: `[4096, C·7·7]` flattened NCHW in the file, `[7·7·C, 4096]`
    /// flattened NHWC in the model (rows reordered).
    case linearWeightFromNCHW(channels: Int, height: Int, width: Int)
    /// A convolution or Linear bias.
    case bias
    /// BatchNorm γ, β, running mean, running variance.
    case batchNormWeight, batchNormBias, runningMean, runningVariance
}

/// One registered parameter: the tensor in the model's layout, its kind and its shape in the file.
struct NetworkParameter {
    let tensor: Tensor
    let kind: ParameterKind
    let torchShape: [Int]
}

/// One step of the forward pass whose output is a named activation.
struct NetworkStage {
    let name: String
    let body: (Tensor) -> Tensor
}

/// Shared machinery of the pretrained networks: parameters keyed by torchvision's state_dict
/// names, a forward pass as a list of named stages, layer aliases, strict loading and
/// deterministic random initialisation. Subclasses build their stages and ``head(_:)``.
class PretrainedConvNetwork: ImageNetClassifier {
    let name: String
    let minimumInputSize: Int
    /// Whether ``preprocess(_:)`` applies torchvision's Inception `transform_input`.
    let transformInput: Bool
    private(set) var layerNames: [String] = []
    private var aliasTable: [String: String] = [:]
    private var lowercasedTable: [String: String] = [:]
    private(set) var stages: [NetworkStage] = []
    /// Parameters by torchvision state_dict name.
    private(set) var parameters: [String: NetworkParameter] = [:]
    /// Modules whose derived tensors must be recomputed after the weights change.
    private var finalizers: [() -> Void] = []

    init(name: String, minimumInputSize: Int, transformInput: Bool = false) {
        self.name = name
        self.minimumInputSize = minimumInputSize
        self.transformInput = transformInput
    }

    // MARK: Building

    /// Registers a parameter (zero-filled, frozen) and returns it in the model's layout.
    func parameter(_ torchName: String, shape: [Int], kind: ParameterKind) -> Tensor {
        precondition(parameters[torchName] == nil, "\(name): parameter \(torchName) registered twice")
        let torchShape: [Int]
        switch kind {
        case .convWeight: torchShape = [shape[3], shape[2], shape[0], shape[1]]
        case .linearWeight, .linearWeightFromNCHW: torchShape = [shape[1], shape[0]]
        default: torchShape = shape
        }
        let t = Tensor(zeros: shape)
        t.name = torchName
        parameters[torchName] = NetworkParameter(tensor: t, kind: kind, torchShape: torchShape)
        return t
    }

    /// Appends a stage whose output is the activation `name` (also reachable by `aliases`).
    func addStage(_ name: String, aliases: [String] = [], _ body: @escaping (Tensor) -> Tensor) {
        precondition(aliasTable[name] == nil, "\(self.name): layer \(name) defined twice")
        stages.append(NetworkStage(name: name, body: body))
        layerNames.append(name)
        for key in [name] + aliases {
            aliasTable[key] = name
            lowercasedTable[key.lowercased()] = name
        }
    }

    /// Adds an alias for an existing layer.
    func addAlias(_ alias: String, for layer: String) {
        precondition(aliasTable[layer] == layer, "\(name): alias \(alias) for unknown layer \(layer)")
        aliasTable[alias] = layer
        lowercasedTable[alias.lowercased()] = layer
    }

    /// Registers work to redo after the weights change (e.g. folding BatchNorm into a convolution).
    func onWeightsChanged(_ body: @escaping () -> Void) { finalizers.append(body) }

    /// The classifier after the last stage: `[N, H, W, C]` → `[N, 1000]`. Subclasses override.
    func head(_ x: Tensor) -> Tensor { preconditionFailure("\(name): subclasses must override head(_:)") }

    /// State_dict names (besides `num_batches_tracked`) that loading skips. Subclasses override.
    func isIgnoredKey(_ key: String) -> Bool { false }

    // MARK: Weights

    /// Torchvision's state_dict shapes by name (for tests and tools).
    var stateDictShapes: [String: [Int]] { parameters.mapValues(\.torchShape) }

    /// Copies a torchvision state_dict into the network, strictly (see ``assign(_:to:source:ignoring:transform:)``).
    ///
    /// Problems are reported with torchvision's shapes (OIHW, `[out, in]`), all at once, sorted by
    /// name; a file that holds none of the network's tensors gets a one-line summary instead.
    func load(stateDict: [String: Tensor], source: String) throws {
        let ignored: (String) -> Bool = { isBookkeepingTensor($0) || self.isIgnoredKey($0) }
        if !parameters.keys.contains(where: { stateDict[$0] != nil }) {
            let sample = stateDict.keys.filter { !ignored($0) }.sorted().prefix(3).map { "'\($0)'" }
            throw PretrainedError(file: source, kind: .stateDictMismatch([
                "the file holds none of the \(parameters.count) tensors of \(name) (it has \(stateDict.count) tensors"
                    + (sample.isEmpty ? "" : ", e.g. \(sample.joined(separator: ", "))")
                    + "): are these the weights of another network?",
            ]))
        }
        var problems: [String] = []
        for key in parameters.keys.sorted() {
            let expected = parameters[key]!.torchShape
            if let t = stateDict[key] {
                if t.shape != expected {
                    problems.append("shape mismatch: '\(key)' is \(t.shape) in the file, \(name) expects \(expected)")
                }
            } else {
                problems.append("missing: '\(key)' (\(name) expects shape \(expected))")
            }
        }
        for key in stateDict.keys.sorted() where parameters[key] == nil && !ignored(key) {
            problems.append("unexpected: '\(key)' (shape \(stateDict[key]!.shape)) is not a tensor of \(name)")
        }
        if !problems.isEmpty { throw PretrainedError(file: source, kind: .stateDictMismatch(problems)) }
        let kinds = parameters.mapValues(\.kind)
        try assign(stateDict, to: parameters.mapValues(\.tensor), source: source,
                   ignoring: ignored,
                   transform: { key, t in
                       guard let kind = kinds[key] else { return t }
                       return PretrainedConvNetwork.convert(t, kind: kind)
                   })
        weightsChanged()
    }

    /// A file tensor in the model's layout.
    static func convert(_ t: Tensor, kind: ParameterKind) -> Tensor {
        switch kind {
        case .convWeight: return convertOIHWToHWIO(t)
        case .linearWeight: return convertLinearToInOut(t)
        case let .linearWeightFromNCHW(c, h, w):
            guard t.rank == 2, t.shape[1] == c * h * w else { return convertLinearToInOut(t) }
            let outputs = t.shape[0], inputs = c * h * w
            let out = TensorStorage(count: t.count)
            let dst = out.base
            t.withUnsafeBufferPointer { src in
                // File column c·h·w-order index → model row (y·w + x)·c + ch.
                for ch in 0..<c {
                    for y in 0..<h {
                        for x in 0..<w {
                            let column = (ch * h + y) * w + x
                            let row = (y * w + x) * c + ch
                            let d = dst + row * outputs
                            for o in 0..<outputs { d[o] = src[o * inputs + column] }
                        }
                    }
                }
            }
            return Tensor(shape: [inputs, outputs], storage: out)
        default: return t
        }
    }

    /// Fills every parameter from a seeded generator: He-normal weights, zero biases, identity BatchNorm.
    func randomize(seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        for key in parameters.keys.sorted() {
            let p = parameters[key]!
            let shape = p.tensor.shape
            p.tensor.withUnsafeMutableBufferPointer { buf in
                switch p.kind {
                case .convWeight, .linearWeight, .linearWeightFromNCHW:
                    // Model layouts HWIO and [in, out]: fan-in is everything but the last axis.
                    let fanIn = max(p.tensor.count / max(shape.last ?? 1, 1), 1)
                    let std = (2 / Float(fanIn)).squareRoot()
                    for i in 0..<buf.count { buf[i] = rng.nextNormal() * std }
                case .bias, .batchNormBias, .runningMean:
                    for i in 0..<buf.count { buf[i] = 0 }
                case .batchNormWeight, .runningVariance:
                    for i in 0..<buf.count { buf[i] = 1 }
                }
            }
        }
        weightsChanged()
    }

    func weightsChanged() { for f in finalizers { f() } }

    // MARK: FeatureExtractor

    func resolveLayer(_ name: String) -> String? {
        aliasTable[name] ?? lowercasedTable[name.lowercased()]
    }

    func preprocess(_ rgb: Tensor) -> Tensor {
        precondition(rgb.rank == 4 && rgb.shape[3] == 3, "\(name).preprocess: expected RGB NHWC [N, H, W, 3], got \(rgb.shape)")
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        var x = (rgb - Tensor(shape: [3], scalars: mean)) / Tensor(shape: [3], scalars: std)
        if transformInput {
            // torchvision Inception3._transform_input: x_c · (std_c / 0.5) + (mean_c − 0.5) / 0.5.
            let mean64: [Double] = [0.485, 0.456, 0.406], std64: [Double] = [0.229, 0.224, 0.225]
            let scale: [Float] = std64.map { Float($0 / 0.5) }
            let shift: [Float] = mean64.map { Float(($0 - 0.5) / 0.5) }
            x = x * Tensor(shape: [3], scalars: scale) + Tensor(shape: [3], scalars: shift)
        }
        return x
    }

    func checkInput(_ input: Tensor, _ op: String) {
        precondition(input.rank == 4 && input.shape[3] == 3,
                     "\(name).\(op): expected NHWC [N, H, W, 3], got \(input.shape)")
        precondition(input.shape[1] >= minimumInputSize && input.shape[2] >= minimumInputSize,
                     "\(name).\(op): input \(input.shape[1])×\(input.shape[2]) is smaller than the minimum \(minimumInputSize)×\(minimumInputSize)")
    }

    func activations(_ input: Tensor, layers: [String]) -> [String: Tensor] {
        checkInput(input, "activations")
        let resolved = layers.map { requested -> (String, String) in
            guard let canonical = resolveLayer(requested) else {
                preconditionFailure("\(name).activations: unknown layer '\(requested)' (known: \(layerNames.joined(separator: ", ")))")
            }
            return (requested, canonical)
        }
        let needed = Set(resolved.map(\.1))
        guard let deepest = stages.lastIndex(where: { needed.contains($0.name) }) else { return [:] }
        var found: [String: Tensor] = [:]
        var x = input
        for stage in stages[...deepest] {
            x = stage.body(x)
            if needed.contains(stage.name) { found[stage.name] = x }
        }
        var out: [String: Tensor] = [:]
        for (requested, canonical) in resolved { out[requested] = found[canonical] }
        return out
    }

    func logits(_ input: Tensor) -> Tensor {
        checkInput(input, "logits")
        return head(stages.reduce(input) { $1.body($0) })
    }
}

// MARK: - Building blocks

/// A frozen convolution with bias, followed by ReLU (SqueezeNet, VGG).
final class ConvReLU {
    let kernel: Tensor
    let bias: Tensor
    let strides: (Int, Int)
    let padding: Padding

    /// Registers `<prefix>.weight` and `<prefix>.bias` on `network`.
    init(_ network: PretrainedConvNetwork, _ prefix: String, _ cin: Int, _ cout: Int, kernel k: Int,
         stride: Int = 1, padding p: Int = 0) {
        kernel = network.parameter("\(prefix).weight", shape: [k, k, cin, cout], kind: .convWeight)
        bias = network.parameter("\(prefix).bias", shape: [cout], kind: .bias)
        strides = (stride, stride)
        padding = p == 0 ? .valid : .explicit(top: p, bottom: p, left: p, right: p)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.conv2d(x, kernel: kernel, bias: bias, strides: strides, padding: padding, fusedReLU: true)
    }
}

/// torchvision's Inception `BasicConv2d`: convolution without bias, BatchNorm (ε = 0.001, running
/// statistics), ReLU. The BatchNorm is folded into the convolution whenever the weights change:
/// `kernel' = kernel · γ/√(var + ε)`, `bias' = β − mean · γ/√(var + ε)`.
final class BasicConv2d {
    let weight, gamma, beta, runningMean, runningVariance: Tensor
    let strides: (Int, Int)
    let padding: Padding
    let epsilon: Float = 0.001
    private(set) var fusedKernel: Tensor
    private(set) var fusedBias: Tensor

    /// Registers `<prefix>.conv.weight` and `<prefix>.bn.{weight,bias,running_mean,running_var}`.
    init(_ network: PretrainedConvNetwork, _ prefix: String, _ cin: Int, _ cout: Int,
         kernel: (Int, Int), stride: Int = 1, padding: (Int, Int) = (0, 0)) {
        weight = network.parameter("\(prefix).conv.weight", shape: [kernel.0, kernel.1, cin, cout], kind: .convWeight)
        gamma = network.parameter("\(prefix).bn.weight", shape: [cout], kind: .batchNormWeight)
        beta = network.parameter("\(prefix).bn.bias", shape: [cout], kind: .batchNormBias)
        runningMean = network.parameter("\(prefix).bn.running_mean", shape: [cout], kind: .runningMean)
        runningVariance = network.parameter("\(prefix).bn.running_var", shape: [cout], kind: .runningVariance)
        strides = (stride, stride)
        self.padding = padding == (0, 0) ? .valid
            : .explicit(top: padding.0, bottom: padding.0, left: padding.1, right: padding.1)
        fusedKernel = Tensor(zeros: weight.shape)
        fusedBias = Tensor(zeros: [cout])
        network.onWeightsChanged { [unowned self] in self.fuse() }
    }

    convenience init(_ network: PretrainedConvNetwork, _ prefix: String, _ cin: Int, _ cout: Int,
                     kernel k: Int, stride: Int = 1, padding p: Int = 0) {
        self.init(network, prefix, cin, cout, kernel: (k, k), stride: stride, padding: (p, p))
    }

    func fuse() {
        let cout = weight.shape[3]
        let g = gamma.scalars, b = beta.scalars, m = runningMean.scalars, v = runningVariance.scalars
        let scale = (0..<cout).map { g[$0] / (v[$0] + epsilon).squareRoot() }
        let kernel = Tensor(zeros: weight.shape)
        weight.withUnsafeBufferPointer { src in
            kernel.withUnsafeMutableBufferPointer { dst in
                for i in 0..<src.count { dst[i] = src[i] * scale[i % cout] }
            }
        }
        fusedKernel = kernel
        fusedBias = Tensor(shape: [cout], scalars: (0..<cout).map { b[$0] - m[$0] * scale[$0] })
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.conv2d(x, kernel: fusedKernel, bias: fusedBias, strides: strides, padding: padding, fusedReLU: true)
    }
}

/// A frozen `nn.Linear`: `x · W + b`, `W` `[in, out]`.
final class FrozenLinear {
    let weight: Tensor
    let bias: Tensor

    init(_ network: PretrainedConvNetwork, _ prefix: String, _ inputs: Int, _ outputs: Int,
         kind: ParameterKind = .linearWeight) {
        weight = network.parameter("\(prefix).weight", shape: [inputs, outputs], kind: kind)
        bias = network.parameter("\(prefix).bias", shape: [outputs], kind: .bias)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { Tensor.matmul(x, weight) + bias }
}

/// PyTorch `MaxPool2d(k, s, ceil_mode:)` on NHWC.
///
/// With `ceil_mode` PyTorch also gives one window when the input is smaller than the kernel but
/// at least `k − s + 1` (`⌊(n − k + s − 1)/s⌋ + 1 = 1`, the window clipped to the image); the
/// engine needs `n ≥ k`, so such an axis is padded after by `k − n` (padding never wins a max).
func torchMaxPool(_ x: Tensor, kernel k: Int, stride s: Int, ceilMode: Bool) -> Tensor {
    guard ceilMode else { return x.maxPool2d(poolSize: (k, k), strides: (s, s)) }
    let padH = x.shape[1] < k ? k - x.shape[1] : 0
    let padW = x.shape[2] < k ? k - x.shape[2] : 0
    if padH == 0 && padW == 0 { return x.maxPool2d(poolSize: (k, k), strides: (s, s), ceilMode: true) }
    return x.maxPool2d(poolSize: (k, k), strides: (s, s),
                       padding: .explicit(top: 0, bottom: padH, left: 0, right: padW), ceilMode: true)
}

/// PyTorch `AdaptiveAvgPool2d((oh, ow))` on NHWC: output cell `(i, j)` averages input rows
/// `⌊i·H/oh⌋ ..< ⌈(i+1)·H/oh⌉` and columns `⌊j·W/ow⌋ ..< ⌈(j+1)·W/ow⌉`. The average is separable,
/// so it is computed as two matrix products (differentiable through `matmul` and `transposed`);
/// the identity when the input already has the output size.
func adaptiveAveragePool2d(_ x: Tensor, outputSize: (Int, Int)) -> Tensor {
    precondition(x.rank == 4, "adaptiveAveragePool2d: input must be NHWC, got \(x.shape)")
    let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (oh, ow) = outputSize
    if h == oh && w == ow { return x }
    func matrix(_ size: Int, _ out: Int) -> Tensor {
        var m = [Float](repeating: 0, count: out * size)
        for i in 0..<out {
            let start = (i * size) / out, end = ((i + 1) * size + out - 1) / out
            for k in start..<end { m[i * size + k] = 1 / Float(end - start) }
        }
        return Tensor(shape: [out, size], scalars: m)
    }
    // Rows: [N, H, W, C] → [H, N·W·C] → Ph · → [oh, N, W, C].
    var y = x.transposed([1, 0, 2, 3]).reshaped([h, n * w * c])
    y = Tensor.matmul(matrix(h, oh), y).reshaped([oh, n, w, c])
    // Columns: → [W, N·oh·C] → Pw · → [ow, N, oh, C] → [N, oh, ow, C].
    y = y.transposed([2, 1, 0, 3]).reshaped([w, n * oh * c])
    y = Tensor.matmul(matrix(w, ow), y).reshaped([ow, n, oh, c])
    return y.transposed([1, 2, 0, 3])
}
