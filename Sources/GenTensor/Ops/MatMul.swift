import Foundation

extension Tensor {
    /// Matrix product op(a) · op(b) of rank-2 tensors through BLAS; transposes are flags passed
    /// to `sgemm`, never copies.
    /// - Parameters:
    ///   - a: `[m, k]`, or `[k, m]` with `transposeA`.
    ///   - b: `[k, n]`, or `[n, k]` with `transposeB`.
    /// - Returns: `[m, n]`.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition(a.rank == 2 && b.rank == 2, "matmul: needs rank-2 operands, got \(a.shape) and \(b.shape)")
        let m = transposeA ? a.shape[1] : a.shape[0]
        let k = transposeA ? a.shape[0] : a.shape[1]
        let kb = transposeB ? b.shape[1] : b.shape[0]
        let n = transposeB ? b.shape[0] : b.shape[1]
        precondition(k == kb, "matmul: inner extents differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        let out = TensorStorage(count: m * n)
        gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
             a: a.storage.base, b: b.storage.base, c: out.base)
        return result(shape: [m, n], storage: out, inputs: [a, b]) { g in
            if a.requiresGrad {
                // dA = g · op(B)ᵀ (or its transpose when A was used transposed).
                a.accumulateGrad { d in
                    if transposeA {
                        gemm(transposeA: transposeB, transposeB: true, m: k, n: m, k: n,
                             a: b.storage.base, b: g, beta: 1, c: d)
                    } else {
                        gemm(transposeA: false, transposeB: !transposeB, m: m, n: k, k: n,
                             a: g, b: b.storage.base, beta: 1, c: d)
                    }
                }
            }
            if b.requiresGrad {
                // dB = op(A)ᵀ · g (or its transpose when B was used transposed).
                b.accumulateGrad { d in
                    if transposeB {
                        gemm(transposeA: true, transposeB: transposeA, m: n, n: k, k: m,
                             a: g, b: a.storage.base, beta: 1, c: d)
                    } else {
                        gemm(transposeA: !transposeA, transposeB: false, m: k, n: n, k: m,
                             a: a.storage.base, b: g, beta: 1, c: d)
                    }
                }
            }
        }
    }
}
