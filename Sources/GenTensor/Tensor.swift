import Foundation

/// A float32, row-major, n-dimensional array that records the ops applied to it for
/// reverse-mode automatic differentiation (define-by-run, as in PyTorch).
///
/// Layout conventions: images and feature maps are NHWC (`[batch, height, width, channels]`),
/// dense data is `[batch, features]`, sequences are `[batch, time, features]`.
///
/// Tensors are values from the user's point of view: every op returns a new tensor and never
/// changes its inputs. The only in-place mutation is explicit: optimizers update parameters
/// through ``withUnsafeMutableBufferPointer(_:)``, outside any recorded graph.
///
/// Shape mismatches are programmer errors and stop the process with a `precondition` that
/// names the op and the shapes; nothing a user supplies reaches an op unchecked.
public final class Tensor {
    /// Extent of each dimension, outermost first. `[]` is a scalar.
    public let shape: [Int]
    /// The scalars, `shape.reduce(1, *)` of them, row-major.
    public let storage: TensorStorage
    /// Whether gradients flow to this tensor. Parameters and input images under optimisation set it.
    public var requiresGrad: Bool
    /// The accumulated gradient of the last ``backward()``, same shape as `self`; `nil` before.
    public var grad: Tensor?
    /// Recorded producer of this tensor: its inputs and its pullback. `nil` for leaves.
    var node: GraphNode?
    /// Set once `backward()` has consumed and released this (non-leaf) tensor's graph.
    var graphReleased = false
    /// Optional human-readable name (parameters use it for checkpoints and error messages).
    public var name: String?

    /// Number of scalars.
    @inlinable public var count: Int { storage.count }
    /// Number of dimensions.
    @inlinable public var rank: Int { shape.count }

    /// Wraps existing storage. `storage.count` must equal the product of `shape`.
    public init(shape: [Int], storage: TensorStorage, requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        precondition(shape.reduce(1, *) == storage.count,
                     "Tensor: shape \(shape) needs \(shape.reduce(1, *)) scalars, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.requiresGrad = requiresGrad
    }

    /// A tensor of zeros of the given shape.
    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) {
        self.init(shape: shape, storage: TensorStorage(count: shape.reduce(1, *)), requiresGrad: requiresGrad)
    }

    /// A tensor filled with `value`.
    public convenience init(repeating value: Float, shape: [Int], requiresGrad: Bool = false) {
        let s = TensorStorage(count: shape.reduce(1, *))
        s.base.update(repeating: value, count: s.count)
        self.init(shape: shape, storage: s, requiresGrad: requiresGrad)
    }

    /// A tensor holding `scalars` (row-major) with the given shape.
    /// - Precondition: `scalars.count == shape.reduce(1, *)`.
    public convenience init(shape: [Int], scalars: [Float], requiresGrad: Bool = false) {
        precondition(scalars.count == shape.reduce(1, *),
                     "Tensor: \(scalars.count) scalars do not fill shape \(shape)")
        let s = TensorStorage(count: scalars.count)
        scalars.withUnsafeBufferPointer { src in
            if let b = src.baseAddress { s.base.update(from: b, count: scalars.count) }
        }
        self.init(shape: shape, storage: s, requiresGrad: requiresGrad)
    }

    /// A rank-0 tensor holding one value.
    public convenience init(_ value: Float) {
        self.init(shape: [], scalars: [value])
    }

    /// A copy of the scalars, row-major.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.base, count: count)) }

    /// The only scalar of a one-element tensor.
    public var scalar: Float {
        precondition(count == 1, "Tensor.scalar: tensor of shape \(shape) has \(count) scalars")
        return storage.base[0]
    }

    /// Read access to the scalars.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: count))
    }

    /// In-place write access, for optimizers and initializers. Not recorded by autodiff.
    @inlinable
    public func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: storage.base, count: count))
    }

    /// A new leaf tensor with a copy of this tensor's scalars, detached from any graph.
    public func copy() -> Tensor {
        let s = TensorStorage(count: count)
        s.base.update(from: storage.base, count: count)
        return Tensor(shape: shape, storage: s)
    }

    /// This tensor's values as a leaf that records nothing (shares storage; never mutate it).
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// Overwrites this tensor's scalars with `other`'s (same count). Not recorded by autodiff.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "Tensor.assign: \(other.shape) into \(shape)")
        storage.base.update(from: other.storage.base, count: count)
    }
}

extension Tensor: CustomStringConvertible {
    /// Shape and the first few scalars.
    public var description: String {
        let head = scalars.prefix(8).map { String(format: "%.5g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(count > 8 ? ", ..." : "")])"
    }
}

/// Strides of a row-major shape (elements, not bytes).
@inlinable
public func rowMajorStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = acc
        acc *= shape[i]
    }
    return strides
}
