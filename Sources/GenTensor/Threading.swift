import Foundation
import COpenBLAS

/// The engine's thread settings: one number governs both gen's own parallel loops and OpenBLAS.
public enum Threads {
    nonisolated(unsafe) private static var _count: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Number of threads gen uses (1 or more): for elementwise kernels, for the batch partitions of
    /// fused ops, and for matrix products, which ``gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``
    /// splits into blocks that each run single-threaded OpenBLAS. OpenBLAS's own thread pool stays
    /// at one thread: its workers busy-wait between calls and would compete with ours for the cores.
    public static var count: Int {
        get { _count }
        set {
            _count = max(1, newValue)
            openblas_set_num_threads(1)
        }
    }

    /// Applies the default (all active processors) to OpenBLAS too. Call once at start-up.
    public static func configure(_ requested: Int?) {
        configureAllocator()
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
    if threads <= 1 || n * cost < parallelThreshold || n < 2 || ParallelRegion.active {
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

/// Whether gen's threads are already split across the cores (inside ``parallelPartitions(_:parts:_:)``):
/// nested kernels then run serially on their thread.
enum ParallelRegion {
    nonisolated(unsafe) static var active = false
}

/// Runs `body(part, range)` for `parts` contiguous, disjoint ranges covering `0..<n`, each on its own
/// thread; kernels called inside (GEMM, elementwise) stay on that thread. Deterministic: the split depends only on `n` and `parts`.
public func parallelPartitions(_ n: Int, parts: Int, _ body: (Int, Range<Int>) -> Void) {
    let p = max(1, min(parts, n))
    if p == 1 { if n > 0 { body(0, 0..<n) }; return }
    let outer = ParallelRegion.active
    ParallelRegion.active = true
    defer { ParallelRegion.active = outer }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: p) { k in
            body(k, (n * k / p)..<(n * (k + 1) / p))
        }
    }
}

/// Keeps large freed buffers in the heap for reuse instead of returning them to the system
/// (glibc otherwise maps and unmaps every buffer over 128 KiB, paying page faults each step).
public func configureAllocator() {
    #if os(Linux)
    _ = glibcMallopt(-3, 1 << 30)   // M_MMAP_THRESHOLD
    _ = glibcMallopt(-1, 1 << 30)   // M_TRIM_THRESHOLD
    #endif
}

#if os(Linux)
/// glibc's `mallopt(3)` (declared in <malloc.h>, which the Glibc module does not export).
@_silgen_name("mallopt")
func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif
