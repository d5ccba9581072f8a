import Foundation
import COpenBLAS

/// The engine's thread settings: one number governs both gen's own parallel loops and OpenBLAS.
public enum Threads {
    nonisolated(unsafe) private static var _count: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Number of threads used by elementwise kernels and by OpenBLAS (1 or more).
    /// Setting it also calls `openblas_set_num_threads`.
    public static var count: Int {
        get { _count }
        set {
            _count = max(1, newValue)
            openblas_set_num_threads(Int32(_count))
        }
    }

    /// Applies the default (all active processors) to OpenBLAS too. Call once at start-up.
    public static func configure(_ requested: Int?) {
        count = requested ?? max(1, ProcessInfo.processInfo.activeProcessorCount)
    }
}

/// Work below this many scalar operations runs on the calling thread (thread start-up costs more).
public let parallelThreshold = 1 << 15

/// Runs `body` over `0..<n` split into at most `Threads.count` contiguous chunks.
///
/// - Parameters:
///   - n: number of items.
///   - cost: approximate scalar operations per item; the loop stays serial when `n * cost`
///     is below ``parallelThreshold``.
///   - body: called with disjoint half-open ranges that together cover `0..<n`.
@inline(__always)
public func parallelFor(_ n: Int, cost: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = Threads.count
    if threads <= 1 || n * cost < parallelThreshold || n < 2 {
        if n > 0 { body(0..<n) }
        return
    }
    let chunks = min(threads, n)
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = n * c / chunks, hi = n * (c + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }
}
