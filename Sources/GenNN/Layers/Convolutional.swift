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
    /// Step (vertical, horizontal) between output pixels' windows, positive.
    public let strides: (Int, Int)
    /// Padding rule (``GenTensor/Padding``).
    public let padding: Padding
    /// Spacing (vertical, horizontal) of kernel taps, positive; (1, 1) is an ordinary convolution.
    public let dilation: (Int, Int)

    /// - Parameters:
    ///   - inputChannels: channels of the input (`Cin`), positive.
    ///   - filters: output channels, positive.
    ///   - kernelSize: (height, width), positive.
    ///   - strides, padding, dilation: as the properties; positive strides and dilation (precondition).
    ///   - useBias: whether the layer has a bias.
    ///   - name: prefix of the parameter names.
    ///   - rng: draws the Glorot-uniform kernel.
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

    /// The same in training and inference.
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
    /// Upsampling factors (vertical, horizontal), positive.
    public let strides: (Int, Int)
    /// Padding rule; `.same` gives an output of `input · stride` (see ``GenTensor/Tensor/conv2dTranspose(_:kernel:bias:strides:padding:outputPadding:fusedReLU:)``).
    public let padding: Padding
    /// Extra output rows and columns at the bottom and right, each less than the stride.
    public let outputPadding: (Int, Int)

    /// - Parameters:
    ///   - inputChannels: channels of the input (`Cin`), positive.
    ///   - filters: output channels, positive.
    ///   - kernelSize: (height, width), positive.
    ///   - strides, padding, outputPadding: as the properties; positive strides (precondition).
    ///   - useBias: whether the layer has a bias.
    ///   - name: prefix of the parameter names.
    ///   - rng: draws the Glorot-uniform kernel.
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

    /// The same in training and inference.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}
