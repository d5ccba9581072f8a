import COpenBLAS
import Foundation

/// C = alpha · op(A) · op(B) + beta · C for row-major float32 matrices, through OpenBLAS `cblas_sgemm`.
///
/// - Parameters:
///   - transposeA: use Aᵀ; A is stored `[k, m]` when true, `[m, k]` otherwise.
///   - transposeB: use Bᵀ; B is stored `[n, k]` when true, `[k, n]` otherwise.
///   - m, n, k: op(A) is m×k, op(B) is k×n, C is m×n.
///   - lda, ldb, ldc: leading dimensions (row strides) in elements; default to the packed width.
public func gemm(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                 alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
                 b: UnsafePointer<Float>, ldb: Int? = nil,
                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        // sgemm with k = 0 still scales C by beta.
        for i in 0..<m { for j in 0..<n { let p = c + i * (ldc ?? n) + j; p.pointee = beta == 0 ? 0 : beta * p.pointee } }
        return
    }
    let lda = lda ?? (transposeA ? m : k), ldb = ldb ?? (transposeB ? k : n), ldc = ldc ?? n
    let threads = Threads.count
    // Split large products into one block per thread (rows of C when it is tall, columns otherwise),
    // each a single-threaded sgemm on disjoint parts of C: no OpenBLAS worker threads spinning.
    if threads > 1 && !ParallelRegion.active && m * n * k >= gemmParallelThreshold {
        let splitRows = m >= n
        let extent = splitRows ? m : n
        let parts = min(threads, max(1, extent / 16))
        if parts > 1 {
            ParallelRegion.active = true
            defer { ParallelRegion.active = false }
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                // Block boundaries on multiples of 16 keep the kernels' tiles whole.
                let lo = (extent * p / parts) & ~15, hi = p == parts - 1 ? extent : (extent * (p + 1) / parts) & ~15
                guard hi > lo else { return }
                if splitRows {
                    sgemmBlock(transposeA, transposeB, hi - lo, n, k, alpha,
                               transposeA ? a + lo : a + lo * lda, lda, b, ldb, beta, c + lo * ldc, ldc)
                } else {
                    sgemmBlock(transposeA, transposeB, m, hi - lo, k, alpha, a, lda,
                               transposeB ? b + lo * ldb : b + lo, ldb, beta, c + lo, ldc)
                }
            }
            return
        }
    }
    sgemmBlock(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// Products smaller than this many multiply-adds run on one thread.
public let gemmParallelThreshold = 1 << 20

@inline(__always)
func sgemmBlock(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
                _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    cblas_sgemm(CblasRowMajor,
                transposeA ? CblasTrans : CblasNoTrans,
                transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
