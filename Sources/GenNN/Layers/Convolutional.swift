import GenTensor

/// 2-D convolution layer on NHWC images (Keras `Conv2D`, no activation: apply one to the result).
///
/// Kernel `[KH, KW, Cin, filters]` (HWIO), Glorot-uniform with Keras fans
/// `fanIn = KH·KW·Cin`, `fanOut = KH·KW·filters`; bias `[filters]`, zeros.
/// Parameters are named `name/kernel` and `name/bias`.
public final class Conv2D: Module {
    /// `[KH, KW, inputChannels, filters]`.
    public let kernel: Tensor
    /// `[filters]`, or `nil` without bias.
    public let bias: Tensor?
    public let strides: (Int, Int)
    public let padding: Padding
    public let dilation: (Int, Int)

    public init(inputChannels: Int, filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1),
                padding: Padding = .valid, dilation: (Int, Int) = (1, 1), useBias: Bool = true,
                name: String = "conv2d", using rng: inout RandomGenerator) {
        precondition(inputChannels > 0 && filters > 0 && kernelSize.0 > 0 && kernelSize.1 > 0,
                     "Conv2D: inputChannels \(inputChannels), filters \(filters), kernelSize \(kernelSize) must be positive")
        precondition(strides.0 > 0 && strides.1 > 0 && dilation.0 > 0 && dilation.1 > 0,
                     "Conv2D: strides \(strides) and dilation \(dilation) must be positive")
        let receptive = kernelSize.0 * kernelSize.1
        kernel = makeParameter(Initializer.glorotUniform([kernelSize.0, kernelSize.1, inputChannels, filters],
                                                         fanIn: receptive * inputChannels, fanOut: receptive * filters,
                                                         using: &rng),
                               name: "\(name)/kernel")
        bias = useBias ? makeParameter(Tensor(zeros: [filters]), name: "\(name)/bias") : nil
        self.strides = strides
        self.padding = padding
        self.dilation = dilation
    }

    /// Kernel, then bias.
    public var parameters: [Tensor] { [kernel] + (bias.map { [$0] } ?? []) }

    /// `[N, H, W, inputChannels] → [N, OH, OW, filters]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.conv2d(x, kernel: kernel, bias: bias, strides: strides, padding: padding, dilation: dilation)
    }

    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Transposed 2-D convolution layer on NHWC images (Keras `Conv2DTranspose`), the upsampling
/// convolution of DCGAN generators and VAE decoders.
///
/// Kernel `[KH, KW, filters, Cin]` (the Keras layout, output channels third), Glorot-uniform with
/// Keras fans computed from that shape: `fanIn = KH·KW·filters`, `fanOut = KH·KW·Cin`; bias
/// `[filters]`, zeros. Output size with `.same` padding is `input · stride` (plus `outputPadding`).
public final class Conv2DTranspose: Module {
    /// `[KH, KW, filters, inputChannels]`.
    public let kernel: Tensor
    /// `[filters]`, or `nil` without bias.
    public let bias: Tensor?
    public let strides: (Int, Int)
    public let padding: Padding
    public let outputPadding: (Int, Int)

    public init(inputChannels: Int, filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1),
                padding: Padding = .valid, outputPadding: (Int, Int) = (0, 0), useBias: Bool = true,
                name: String = "conv2d_transpose", using rng: inout RandomGenerator) {
        precondition(inputChannels > 0 && filters > 0 && kernelSize.0 > 0 && kernelSize.1 > 0,
                     "Conv2DTranspose: inputChannels \(inputChannels), filters \(filters), kernelSize \(kernelSize) must be positive")
        precondition(strides.0 > 0 && strides.1 > 0, "Conv2DTranspose: strides \(strides) must be positive")
        let receptive = kernelSize.0 * kernelSize.1
        kernel = makeParameter(Initializer.glorotUniform([kernelSize.0, kernelSize.1, filters, inputChannels],
                                                         fanIn: receptive * filters, fanOut: receptive * inputChannels,
                                                         using: &rng),
                               name: "\(name)/kernel")
        bias = useBias ? makeParameter(Tensor(zeros: [filters]), name: "\(name)/bias") : nil
        self.strides = strides
        self.padding = padding
        self.outputPadding = outputPadding
    }

    /// Kernel, then bias.
    public var parameters: [Tensor] { [kernel] + (bias.map { [$0] } ?? []) }

    /// `[N, H, W, inputChannels] → [N, OH, OW, filters]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.conv2dTranspose(x, kernel: kernel, bias: bias, strides: strides, padding: padding,
                               outputPadding: outputPadding)
    }

    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}
