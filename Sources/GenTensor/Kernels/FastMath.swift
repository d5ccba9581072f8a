import Foundation

// Branch-free float32 transcendental kernels that LLVM vectorises. The exponential follows the
// Cephes `expf` range reduction and minimax polynomial (S. Moshier, Cephes Math Library):
// relative error about 2e-7; inputs are clamped to [-86.6, 88.72] so the result is always a finite
// normal float; NaN in gives NaN out (no
// float-to-integer conversion that could trap).

/// e^x for float32 (Cephes expf polynomial; clamped so the result is finite and normal).
@inlinable @inline(__always)
public func fastExp(_ x: Float) -> Float {
    let xc = min(max(x, -86.6), 88.72283)
    let k = (xc * 1.442_695_04).rounded(.toNearestOrEven)
    let r = xc - k * 0.693_359_375 + k * 2.121_944_40e-4
    var p: Float = 1.987_569_150_0e-4
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let y = p * r * r + r + 1
    // 2^k as 2·2^(k−1), so k = 128 (x just below ln FLT_MAX) stays finite. The exponent bits come
    // from adding 1.5·2²³ (whose ulp is 1): the integer k + 126 lands in the low mantissa bits,
    // with no float-to-integer conversion instruction.
    let biased = (k + 12_582_912) + 126
    let scale = Float(bitPattern: (biased.bitPattern &- 0x4B40_0000) << 23)
    return (y * scale) * 2
}

/// Logistic sigmoid 1 / (1 + e^-x), in (0, 1).
@inlinable @inline(__always)
public func fastSigmoid(_ x: Float) -> Float {
    1 / (1 + fastExp(-x))
}

/// Hyperbolic tangent, in [-1, 1]. Uses tanh(x) = sign(x)·(1 − e^{−2|x|}) / (1 + e^{−2|x|}),
/// which keeps full relative precision for large |x| and absolute error below 1e-7 near 0.
@inlinable @inline(__always)
public func fastTanh(_ x: Float) -> Float {
    let a = min(abs(x), 9.0)
    let e = fastExp(-2 * a)
    let t = (1 - e) / (1 + e)
    return x < 0 ? -t : t
}
