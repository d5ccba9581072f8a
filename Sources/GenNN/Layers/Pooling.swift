import GenTensor

// Parameterless layers: pooling, upsampling, dropout, flatten, reshape, leaky ReLU.

/// Max pooling over NHWC windows (Keras `MaxPooling2D`; PyTorch `MaxPool2d` with `ceilMode` and
/// `.explicit` padding). Strides default to the pool size.
public final class MaxPooling2D: Module {
    public let poolSize: (Int, Int)
    public let strides: (Int, Int)
    public let padding: Padding
    public let ceilMode: Bool

    public init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid, ceilMode: Bool = false) {
        self.poolSize = poolSize
        self.strides = strides ?? poolSize
        self.padding = padding
        self.ceilMode = ceilMode
    }

    public var parameters: [Tensor] { [] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.maxPool2d(poolSize: poolSize, strides: strides, padding: padding, ceilMode: ceilMode)
    }

    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Average pooling over NHWC windows (Keras `AveragePooling2D`; PyTorch `AvgPool2d`).
///
/// `countIncludePad` defaults to Keras behaviour for `.same` (padding not counted) and to PyTorch's
/// `count_include_pad=True` for `.explicit` padding; it does not matter for `.valid` without `ceilMode`.
public final class AveragePooling2D: Module {
    public let poolSize: (Int, Int)
    public let strides: (Int, Int)
    public let padding: Padding
    public let ceilMode: Bool
    public let countIncludePad: Bool

    public init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid,
                ceilMode: Bool = false, countIncludePad: Bool? = nil) {
        self.poolSize = poolSize
        self.strides = strides ?? poolSize
        self.padding = padding
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad ?? (padding != .same)
    }

    public var parameters: [Tensor] { [] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.averagePool2d(poolSize: poolSize, strides: strides, padding: padding, ceilMode: ceilMode,
                        countIncludePad: countIncludePad)
    }

    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Mean over height and width: `[N, H, W, C] → [N, C]` (Keras `GlobalAveragePooling2D`).
public final class GlobalAveragePooling2D: Module {
    public init() {}
    public var parameters: [Tensor] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.globalAveragePool2d() }
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Nearest-neighbour upsampling `[N, H, W, C] → [N, H·sh, W·sw, C]` (Keras `UpSampling2D`).
public final class UpSampling2D: Module {
    public let size: (Int, Int)
    public init(size: (Int, Int) = (2, 2)) {
        precondition(size.0 > 0 && size.1 > 0, "UpSampling2D: size \(size) must be positive")
        self.size = size
    }
    public var parameters: [Tensor] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.upSampling2d(size: size) }
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Inverted dropout (Keras `Dropout`): active only when `training` is true.
///
/// The layer owns its random generator (seeded from the one given at construction), so it fits the
/// ``Module`` signature; ``generator`` can be saved and restored for exact resumption, and
/// ``callAsFunction(_:training:using:)`` takes an external generator instead.
public final class Dropout: Module {
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

    public var parameters: [Tensor] { [] }

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
    public init() {}
    public var parameters: [Tensor] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.flattened() }
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Reshapes every sample to `targetShape`, keeping the batch axis (Keras `Reshape`):
/// `[N, ...] → [N] + targetShape`. One extent may be −1.
public final class Reshape: Module {
    public let targetShape: [Int]
    public init(_ targetShape: [Int]) {
        precondition(targetShape.filter { $0 == -1 }.count <= 1 && targetShape.allSatisfy { $0 > 0 || $0 == -1 },
                     "Reshape: target shape \(targetShape) must be positive extents with at most one -1")
        self.targetShape = targetShape
    }
    public var parameters: [Tensor] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1, "Reshape: input needs a batch axis, got \(x.shape)")
        return x.reshaped([x.shape[0]] + targetShape)
    }
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}

/// Leaky ReLU `x` for `x > 0`, `alpha·x` otherwise (Keras `LeakyReLU`, default slope 0.3; DCGAN uses 0.2).
public final class LeakyReLU: Module {
    public let alpha: Float
    public init(alpha: Float = 0.3) { self.alpha = alpha }
    public var parameters: [Tensor] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.leakyRelu(alpha: alpha) }
    public func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { self(x) }
}
