import Foundation

/// A reference-counted, 64-byte-aligned buffer of `Float` scalars: the memory behind a ``Tensor``.
///
/// Storage is owned by exactly one tensor unless a view op (``Tensor/reshaped(_:)``) shares it;
/// shared storage is never mutated in place by the engine (optimizers only update parameters,
/// which own their storage). Buffers are zero-filled on allocation unless a kernel asks otherwise
/// (``init(uninitializedCount:)``).
public final class TensorStorage {
    /// Pointer to the first scalar. Valid for `count` scalars while the storage is alive.
    public let base: UnsafeMutablePointer<Float>
    /// Number of scalars.
    public let count: Int

    /// Allocates `count` scalars, zero-filled.
    /// - Precondition: `count >= 0`.
    public convenience init(count: Int) {
        self.init(uninitializedCount: count)
        base.initialize(repeating: 0, count: max(count, 1))
    }

    /// Allocates `count` scalars without filling them, for kernels that write every scalar before
    /// anything reads it (a convolution's output). Reading a scalar before writing it is a bug.
    /// - Precondition: `count >= 0`.
    public init(uninitializedCount count: Int) {
        precondition(count >= 0, "TensorStorage: negative count \(count)")
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        var raw: UnsafeMutableRawPointer?
        let status = posix_memalign(&raw, 64, bytes)
        precondition(status == 0 && raw != nil, "TensorStorage: out of memory allocating \(bytes) bytes")
        base = raw!.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Allocates storage holding a copy of `scalars`.
    public convenience init<C: Collection>(copying scalars: C) where C.Element == Float {
        self.init(count: scalars.count)
        var i = 0
        for s in scalars { base[i] = s; i += 1 }
    }

    deinit { free(base) }
}
