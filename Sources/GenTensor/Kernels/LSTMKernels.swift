import Foundation

// Pointwise parts of the fused LSTM (forward gate activations and their backward), one batch row
// at a time, eight lanes at a time with SIMD8 and a scalar tail. Gate blocks in Keras order
// i, f, c, o; the exponential is the Cephes polynomial of `fastExp`.

@usableFromInline typealias F8 = SIMD8<Float>

/// e^x on eight lanes (same polynomial and clamping as ``fastExp(_:)``).
@inlinable @inline(__always)
func fastExp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let lo = F8(repeating: -86.6), hi = F8(repeating: 88.72283)
    var xc = x.replacing(with: lo, where: x .< lo)
    xc = xc.replacing(with: hi, where: xc .> hi)
    let k = (xc * 1.442_695_04).rounded(.toNearestOrEven)
    let r = xc - k * 0.693_359_375 + k * 2.121_944_40e-4
    var p = F8(repeating: 1.987_569_150_0e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let y = p * r * r + r + 1
    let biased = (k + 12_582_912) + 126
    let bits = (unsafeBitCast(biased, to: SIMD8<Int32>.self) &- 0x4B40_0000) &<< 23
    return (y * unsafeBitCast(bits, to: F8.self)) * 2
}

@inlinable @inline(__always)
func fastSigmoid8(_ x: F8) -> F8 { 1 / (1 + fastExp8(-x)) }

@inlinable @inline(__always)
func fastTanh8(_ x: F8) -> F8 {
    let nine = F8(repeating: 9)
    var a = x.replacing(with: -x, where: x .< 0)
    a = a.replacing(with: nine, where: a .> nine)
    let e = fastExp8(-2 * a)
    let t = (1 - e) / (1 + e)
    return t.replacing(with: -t, where: x .< 0)
}

@usableFromInline @inline(__always)
func load8(_ p: UnsafePointer<Float>) -> F8 { UnsafeRawPointer(p).loadUnaligned(as: F8.self) }
@usableFromInline @inline(__always)
func store8(_ v: F8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self) }

/// Forward pointwise step of one row. On entry `z[0..<4h]` holds gate pre-activations; on exit it
/// holds the activations i, f, g, o. Writes `c = f⊙cPrev + i⊙g`, `tc = tanh(c)`, `h = o⊙tc`.
@inlinable
public func lstmForwardRow(z: UnsafeMutablePointer<Float>, cPrev: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                           tanhC: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>, units n: Int) {
    var j = 0
    while j + 8 <= n {
        let i = fastSigmoid8(load8(z + j)), f = fastSigmoid8(load8(z + n + j))
        let g = fastTanh8(load8(z + 2 * n + j)), o = fastSigmoid8(load8(z + 3 * n + j))
        store8(i, z + j); store8(f, z + n + j); store8(g, z + 2 * n + j); store8(o, z + 3 * n + j)
        let cj = f * load8(cPrev + j) + i * g
        let t = fastTanh8(cj)
        store8(cj, c + j); store8(t, tanhC + j); store8(o * t, h + j)
        j += 8
    }
    while j < n {
        let i = fastSigmoid(z[j]), f = fastSigmoid(z[n + j]), g = fastTanh(z[2 * n + j]), o = fastSigmoid(z[3 * n + j])
        z[j] = i; z[n + j] = f; z[2 * n + j] = g; z[3 * n + j] = o
        let cj = f * cPrev[j] + i * g
        let t = fastTanh(cj)
        c[j] = cj; tanhC[j] = t; h[j] = o * t
        j += 1
    }
}

/// Backward pointwise step of one row. `a` holds the activations i, f, g, o of the step; `dh` is
/// ∂L/∂h_t (from the output and the next step), `dc` is ∂L/∂c_t from the next step and is replaced
/// by ∂L/∂c_{t−1}. Writes the pre-activation gradients into `dz[0..<4h]`.
@inlinable
public func lstmBackwardRow(a: UnsafePointer<Float>, tanhC: UnsafePointer<Float>, cPrev: UnsafePointer<Float>,
                            dh: UnsafePointer<Float>, dc: UnsafeMutablePointer<Float>, dz: UnsafeMutablePointer<Float>,
                            units n: Int) {
    var j = 0
    while j + 8 <= n {
        let i = load8(a + j), f = load8(a + n + j), g = load8(a + 2 * n + j), o = load8(a + 3 * n + j)
        let tc = load8(tanhC + j), dhj = load8(dh + j)
        let dcj = load8(dc + j) + dhj * o * (1 - tc * tc)
        store8(dcj * g * i * (1 - i), dz + j)
        store8(dcj * load8(cPrev + j) * f * (1 - f), dz + n + j)
        store8(dcj * i * (1 - g * g), dz + 2 * n + j)
        store8(dhj * tc * o * (1 - o), dz + 3 * n + j)
        store8(dcj * f, dc + j)
        j += 8
    }
    while j < n {
        let i = a[j], f = a[n + j], g = a[2 * n + j], o = a[3 * n + j]
        let tc = tanhC[j], dhj = dh[j]
        let dcj = dc[j] + dhj * o * (1 - tc * tc)
        dz[j] = dcj * g * i * (1 - i)
        dz[n + j] = dcj * cPrev[j] * f * (1 - f)
        dz[2 * n + j] = dcj * i * (1 - g * g)
        dz[3 * n + j] = dhj * tc * o * (1 - o)
        dc[j] = dcj * f
        j += 1
    }
}

/// `y[cols] += x[rows] · W[rows, cols]` for a single row vector (row-major W), vectorised; for the
/// small matrices of one-character sampling this beats a BLAS call's fixed cost.
@inlinable
public func vectorMatrixAccumulate(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                   rows: Int, cols: Int) {
    for r in 0..<rows {
        let xr = x[r]
        let wr = w + r * cols
        var c = 0
        let xv = F8(repeating: xr)
        while c + 8 <= cols { store8(load8(y + c) + xv * load8(wr + c), y + c); c += 8 }
        while c < cols { y[c] += xr * wr[c]; c += 1 }
    }
}
