import GenTensor

// Parameterless layers: pooling, upsampling, dropout, flatten, reshape, leaky ReLU.

/// Max pooling over NHWC windows (Keras `MaxPooling2D`; PyTorch `MaxPool2d` with `ceilMode` and
/// `.explicit` padding). Strides default to the pool size.
public final class MaxPooling2D: Module {
    /// Window (height, width) in pixels, positive.
    public let poolSize: (Int, Int)
    /// Window step (vertical, horizontal) in pixels, positive.
    public let strides: (Int, Int)
    /// Padding rule (padded positions never win the maximum).
    public let padding: Padding
    /// PyTorch `ceil_mode`: the output size rounds up, so a last partial window is kept.
    public let ceilMode: Bool

    /// - Parameters:
    ///   - poolSize: window (height, width), positive.
    ///   - strides: window step; nil means `poolSize` (the Keras and PyTorch default).
    ///   - padding: see ``GenTensor/Padding``.
    ///   - ceilMode: keep a last partial window (PyTorch `ceil_mode=True`).
    public init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid, ceilMode: Bool = false) {
        self.poolSize = poolSize
        self.strides = strides ?? poolSize
        self.padding = padding
        self.ceilMode = ceilMode
    }

    /// None: pooling has no weights.
    public var parameters: [Tensor] { [] }

    /// `[N, H, W, C] → [N, OH, OW, C]`, the maximum of each window (``GenTensor/Tensor/maxPool2d(poolSize:strides:padding:ceilMode:)``).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.maxPool2d(poolSize: poolSize, strides: strides, padding: padding, ceilMode: ceilMode)
    }

    /// The same in training and inference.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Average pooling over NHWC windows (Keras `AveragePooling2D`; PyTorch `AvgPool2d`).
///
/// `countIncludePad` defaults to Keras behaviour for `.same` (padding not counted) and to PyTorch's
/// `count_include_pad=True` for `.explicit` padding; it does not matter for `.valid` without `ceilMode`.
public final class AveragePooling2D: Module {
    /// Window (height, width) in pixels, positive.
    public let poolSize: (Int, Int)
    /// Window step (vertical, horizontal) in pixels, positive.
    public let strides: (Int, Int)
    /// Padding rule.
    public let padding: Padding
    /// PyTorch `ceil_mode`: the output size rounds up, so a last partial window is kept.
    public let ceilMode: Bool
    /// Whether padded positions count in each window's divisor (PyTorch `count_include_pad`).
    public let countIncludePad: Bool

    /// - Parameters:
    ///   - poolSize: window (height, width), positive.
    ///   - strides: window step; nil means `poolSize`.
    ///   - padding: see ``GenTensor/Padding``.
    ///   - ceilMode: keep a last partial window (PyTorch `ceil_mode=True`).
    ///   - countIncludePad: nil picks Keras's rule for `.same` (false) and PyTorch's default otherwise (true).
    public init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid,
                ceilMode: Bool = false, countIncludePad: Bool? = nil) {
        self.poolSize = poolSize
        self.strides = strides ?? poolSize
        self.padding = padding
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad ?? (padding != .same)
    }

    /// None: pooling has no weights.
    public var parameters: [Tensor] { [] }

    /// `[N, H, W, C] → [N, OH, OW, C]`, the mean of each window (``GenTensor/Tensor/averagePool2d(poolSize:strides:padding:ceilMode:countIncludePad:)``).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.averagePool2d(poolSize: poolSize, strides: strides, padding: padding, ceilMode: ceilMode,
                        countIncludePad: countIncludePad)
    }

    /// The same in training and inference.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Mean over height and width: `[N, H, W, C] → [N, C]` (Keras `GlobalAveragePooling2D`).
public final class GlobalAveragePooling2D: Module {
    /// The layer has no settings.
    public init() {}
    /// None: pooling has no weights.
    public var parameters: [Tensor] { [] }
    /// `[N, H, W, C] → [N, C]`.
    public func callAsFunction(_ x: Tensor) -> Tensor { x.globalAveragePool2d() }
    /// The same in training and inference.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Nearest-neighbour upsampling `[N, H, W, C] → [N, H·sh, W·sw, C]` (Keras `UpSampling2D`).
public final class UpSampling2D: Module {
    /// Repeat factors (vertical, horizontal), positive.
    public let size: (Int, Int)
    /// - Parameter size: repeat factors (vertical, horizontal), positive (precondition).
    public init(size: (Int, Int) = (2, 2)) {
        precondition(size.0 > 0 && size.1 > 0, "UpSampling2D: size \(size) must be positive")
        self.size = size
    }
    /// None: upsampling has no weights.
    public var parameters: [Tensor] { [] }
    /// `[N, H, W, C] → [N, H·sh, W·sw, C]`, each pixel repeated.
    public func callAsFunction(_ x: Tensor) -> Tensor { x.upSampling2d(size: size) }
    /// The same in training and inference.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Inverted dropout (Keras `Dropout`): active only when `training` is true.
///
/// The layer owns its random generator (seeded from the one given at construction), so it fits the
/// ``Module`` signature; ``generator`` can be saved and restored for exact resumption, and
/// ``callAsFunction(_:training:using:)`` takes an external generator instead.
public final class Dropout: Module {
    /// Fraction of elements zeroed in training, in [0, 1); survivors are scaled by `1 / (1 − rate)`.
    public let rate: Float
    /// The layer's own generator, advanced by every training call.
    public var generator: RandomGenerator

    /// - Parameters:
    ///   - rate: fraction of elements zeroed, in [0, 1).
    ///   - rng: one 64-bit draw seeds the layer's own generator.
    public init(rate: Float, using rng: inout RandomGenerator) {
        precondition(rate >= 0 && rate < 1, "Dropout: rate \(rate) must be in [0, 1)")
        self.rate = rate
        generator = RandomGenerator(seed: rng.next())
    }

    /// None: dropout has no weights.
    public var parameters: [Tensor] { [] }

    /// Any shape to the same shape: in training, elements zeroed with probability ``rate`` and the
    /// rest scaled by `1 / (1 − rate)`, drawing from ``generator``; the identity in inference.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor {
        x.dropout(rate: rate, training: training, using: &generator)
    }

    /// Dropout with an external generator.
    public func callAsFunction(_ x: Tensor, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        x.dropout(rate: rate, training: training, using: &rng)
    }
}

/// `[N, d1, d2, ...] → [N, d1·d2·...]` (Keras `Flatten`; NHWC maps flatten in (h, w, c) order).
public final class Flatten: Module {
    /// The layer has no settings.
    public init() {}
    /// None: flattening has no weights.
    public var parameters: [Tensor] { [] }
    /// `[N, d1, d2, ...] → [N, d1·d2·...]` (a view of the same row-major scalars).
    public func callAsFunction(_ x: Tensor) -> Tensor { x.flattened() }
    /// The same in training and inference.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Reshapes every sample to `targetShape`, keeping the batch axis (Keras `Reshape`):
/// `[N, ...] → [N] + targetShape`. One extent may be −1.
public final class Reshape: Module {
    /// The shape of one sample; at most one extent is −1 (inferred).
    public let targetShape: [Int]
    /// - Parameter targetShape: positive extents, at most one −1 (precondition).
    public init(_ targetShape: [Int]) {
        precondition(targetShape.filter { $0 == -1 }.count <= 1 && targetShape.allSatisfy { $0 > 0 || $0 == -1 },
                     "Reshape: target shape \(targetShape) must be positive extents with at most one -1")
        self.targetShape = targetShape
    }
    /// None: reshaping has no weights.
    public var parameters: [Tensor] { [] }
    /// `[N, ...] → [N] + targetShape`; the element count per sample must match (precondition).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1, "Reshape: input needs a batch axis, got \(x.shape)")
        return x.reshaped([x.shape[0]] + targetShape)
    }
    /// The same in training and inference.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Leaky ReLU `x` for `x > 0`, `alpha·x` otherwise (Keras `LeakyReLU`, default slope 0.3; DCGAN uses 0.2).
public final class LeakyReLU: Module {
    /// Slope for negative inputs (usually in [0, 1)).
    public let alpha: Float
    /// - Parameter alpha: slope for negative inputs (Keras default 0.3).
    public init(alpha: Float = 0.3) { self.alpha = alpha }
    /// None: the activation has no weights.
    public var parameters: [Tensor] { [] }
    /// Any shape to the same shape, elementwise.
    public func callAsFunction(_ x: Tensor) -> Tensor { x.leakyRelu(alpha: alpha) }
    /// The same in training and inference.
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}
