import COpenBLAS

/// C = alpha · op(A) · op(B) + beta · C for row-major float32 matrices, through OpenBLAS `cblas_sgemm`.
///
/// - Parameters:
///   - transposeA: use Aᵀ; A is stored `[k, m]` when true, `[m, k]` otherwise.
///   - transposeB: use Bᵀ; B is stored `[n, k]` when true, `[k, n]` otherwise.
///   - m, n, k: op(A) is m×k, op(B) is k×n, C is m×n.
///   - lda, ldb, ldc: leading dimensions (row strides) in elements; default to the packed width.
@inlinable
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
    cblas_sgemm(CblasRowMajor,
                transposeA ? CblasTrans : CblasNoTrans,
                transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(lda ?? (transposeA ? m : k)),
                b, Int32(ldb ?? (transposeB ? k : n)),
                beta, c, Int32(ldc ?? n))
}
