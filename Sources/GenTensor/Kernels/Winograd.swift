import Foundation

// Winograd minimal filtering F(2×2, 3×3) for 3×3, stride-1, undilated convolutions of NHWC images
// (A. Lavin & S. Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016, section 4).
//
// Each 2×2 block of output pixels ("tile") is computed from the 4×4 block of input pixels under it:
//
//     Y = Aᵀ [ Σ_c (G g_{c,o} Gᵀ) ⊙ (Bᵀ d_c B) ] A
//
// with
//
//     Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//     Aᵀ = [1 1 1 0; 0 1 −1 −1].
//
// The channel sum at each of the 16 transformed positions ξ is a matrix product, so a layer becomes
// 16 GEMMs `M[ξ] = V[ξ] · U[ξ]` of shapes [tiles, Cin] · [Cin, Cout]: 16 multiply-adds per tile and
// channel pair instead of im2col's 36, a 2.25× cut in arithmetic. The transforms only add and
// halve, so the result differs from the direct sum by float32 rounding (relative error ~1e-6,
// tested against the im2col path).
//
// Work is split into chunks of tiles small enough that a chunk's transformed input and output stay
// in the core's cache; each thread takes a contiguous run of chunks and does the input transform,
// the 16 single-threaded GEMMs and the output transform for each, so no two threads write the same
// output pixel and the result does not depend on the thread count.

/// Whether the Winograd F(2×2, 3×3) path computes a convolution of this geometry: a 3×3 kernel,
/// stride 1, dilation 1, and enough input and output channels (at least 16 each) for its GEMMs to
/// be efficient. Padding and output size are free (taps outside the image read zero).
func winogradApplies(_ g: ConvGeometry, outputChannels: Int) -> Bool {
    Winograd.enabled && g.kH == 3 && g.kW == 3 && g.strideH == 1 && g.strideW == 1
        && g.dilationH == 1 && g.dilationW == 1 && g.channels >= 16 && outputChannels >= 16
        && g.outH > 0 && g.outW > 0
}

/// Settings of the Winograd convolution path.
public enum Winograd {
    /// Whether eligible convolutions (3×3, stride 1, dilation 1, ≥ 16 channels in and out) use
    /// Winograd F(2×2, 3×3) instead of im2col + GEMM. Default true; tests and benchmarks turn it off
    /// to compare the two paths.
    nonisolated(unsafe) public static var enabled = true

    /// Scratch bytes per thread for one chunk of tiles (transformed input and output together);
    /// chunks are at least 32 tiles whatever the limit.
    nonisolated(unsafe) public static var chunkBytes = Int(ProcessInfo.processInfo.environment["GEN_WINOGRAD_CHUNK_BYTES"] ?? "") ?? (3 << 20)
}

/// Transforms a 3×3 kernel to the Winograd domain: `U[ξ][c][o] = (G g_{c,o} Gᵀ)[ξ]`.
///
/// - Parameters:
///   - kernel: `[3, 3, cin, cout]` (HWIO).
///   - u: `16 · cin · cout` scalars, written as `[16, cin, cout]`.
func winogradTransformKernel(_ kernel: UnsafePointer<Float>, cin: Int, cout: Int, into u: UnsafeMutablePointer<Float>) {
    let plane = cin * cout
    parallelFor(cin, cost: cout * 64) { range in
        for c in range {
            for o in 0..<cout {
                @inline(__always) func k(_ t: Int) -> Float { kernel[t * plane + c * cout + o] }
                // T = G g (4×3), row by row; then U = T Gᵀ (4×4).
                let t0 = (k(0), k(1), k(2))
                let t1 = (0.5 * (k(0) + k(3) + k(6)), 0.5 * (k(1) + k(4) + k(7)), 0.5 * (k(2) + k(5) + k(8)))
                let t2 = (0.5 * (k(0) - k(3) + k(6)), 0.5 * (k(1) - k(4) + k(7)), 0.5 * (k(2) - k(5) + k(8)))
                let t3 = (k(6), k(7), k(8))
                func put(_ i: Int, _ r: (Float, Float, Float)) {
                    let base = u + (i * 4) * plane + c * cout + o
                    base[0] = r.0
                    base[plane] = 0.5 * (r.0 + r.1 + r.2)
                    base[2 * plane] = 0.5 * (r.0 - r.1 + r.2)
                    base[3 * plane] = r.2
                }
                put(0, t0); put(1, t1); put(2, t2); put(3, t3)
            }
        }
    }
}

/// Winograd F(2×2, 3×3) convolution: `out[n, oh, ow, o] (+)= Σ_{i,j,c} x[n, oh − padTop + i, ow − padLeft + j, c] · k[i, j, c, o]`
/// for the geometry `g` (which must satisfy ``winogradApplies(_:outputChannels:)``), with the
/// kernel already transformed by ``winogradTransformKernel(_:cin:cout:into:)``.
///
/// - Parameters:
///   - image: `[N, inH, inW, Cin]`.
///   - u: `[16, Cin, Cout]`.
///   - out: `[N, outH, outW, Cout]`; overwritten, or added to when `accumulate` is true.
func winogradConvolution(_ g: ConvGeometry, image: UnsafePointer<Float>, u: UnsafePointer<Float>, cout: Int,
                         out: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let cin = g.channels
    let tilesH = (g.outH + 1) / 2, tilesW = (g.outW + 1) / 2
    let tiles = g.batch * tilesH * tilesW
    guard tiles > 0 else { return }
    let perTile = 16 * (cin + cout) * MemoryLayout<Float>.stride
    let chunk = min(tiles, max(32, Winograd.chunkBytes / perTile))
    let chunks = (tiles + chunk - 1) / chunk
    let threads = ParallelRegion.active ? 1 : Threads.count
    parallelPartitions(chunks, parts: threads) { _, range in
        let v = UnsafeMutablePointer<Float>.allocate(capacity: 16 * chunk * cin)
        let m = UnsafeMutablePointer<Float>.allocate(capacity: 16 * chunk * cout)
        defer { v.deallocate(); m.deallocate() }
        for c in range {
            let first = c * chunk, count = min(chunk, tiles - first)
            winogradInputTransform(g, image: image, tilesH: tilesH, tilesW: tilesW, first: first, count: count,
                                   stride: chunk, v: v)
            for xi in 0..<16 {
                gemm(m: count, n: cout, k: cin, a: v + xi * chunk * cin, b: u + xi * cin * cout,
                     c: m + xi * chunk * cout)
            }
            winogradOutputTransform(g, m: m, cout: cout, tilesH: tilesH, tilesW: tilesW, first: first, count: count,
                                    stride: chunk, out: out, accumulate: accumulate)
        }
    }
}

/// `V[ξ][t][c] = (Bᵀ d B)[ξ]` for tiles `first ..< first + count` (linear over (n, tileRow, tileColumn)),
/// where d is the 4×4 input block at (2·tileRow − padTop, 2·tileColumn − padLeft), zero outside the
/// image. `V` is `[16, stride, Cin]`.
private func winogradInputTransform(_ g: ConvGeometry, image: UnsafePointer<Float>, tilesH: Int, tilesW: Int,
                                    first: Int, count: Int, stride: Int, v: UnsafeMutablePointer<Float>) {
    let cin = g.channels, inH = g.inH, inW = g.inW
    let zeros = UnsafeMutablePointer<Float>.allocate(capacity: cin + 8)
    zeros.update(repeating: 0, count: cin + 8)
    let pad = UnsafeMutablePointer<Float>.allocate(capacity: 16 * 8)
    defer { zeros.deallocate(); pad.deallocate() }
    var src = [UnsafePointer<Float>](repeating: UnsafePointer(zeros), count: 16)
    let plane = stride * cin
    for t in 0..<count {
        let tile = first + t
        let n = tile / (tilesH * tilesW), rem = tile % (tilesH * tilesW)
        let ih0 = (rem / tilesW) * 2 - g.padTop, iw0 = (rem % tilesW) * 2 - g.padLeft
        for i in 0..<4 {
            let ih = ih0 + i
            for j in 0..<4 {
                let iw = iw0 + j
                src[i * 4 + j] = ih >= 0 && ih < inH && iw >= 0 && iw < inW
                    ? image + ((n * inH + ih) * inW + iw) * cin : UnsafePointer(zeros)
            }
        }
        let dst = v + t * cin
        src.withUnsafeBufferPointer { s in
            var c = 0
            while c + 8 <= cin {
                inputTile8(s, c, dst + c, plane)
                c += 8
            }
            if c < cin {
                // Tail: gather the last channels into zero-padded lanes.
                let rest = cin - c
                for k in 0..<16 {
                    for l in 0..<8 { pad[k * 8 + l] = l < rest ? s[k][c + l] : 0 }
                }
                var lanes = [F8](repeating: F8(), count: 16)
                for k in 0..<16 { lanes[k] = load8(pad + k * 8) }
                let r = inputTransform(lanes)
                for k in 0..<16 { for l in 0..<rest { dst[k * plane + c + l] = r[k][l] } }
            }
        }
    }
}

/// Input transform of 8 channels starting at `c`: reads `s[k] + c` for the 16 block pixels and
/// writes `dst[ξ · plane]`.
@inline(__always)
private func inputTile8(_ s: UnsafeBufferPointer<UnsafePointer<Float>>, _ c: Int, _ dst: UnsafeMutablePointer<Float>,
                        _ plane: Int) {
    // Bᵀ d: combine rows.
    var r = (F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8())
    for j in 0..<4 {
        let d0 = load8(s[j] + c), d1 = load8(s[4 + j] + c), d2 = load8(s[8 + j] + c), d3 = load8(s[12 + j] + c)
        let a0 = d0 - d2, a1 = d1 + d2, a2 = d2 - d1, a3 = d1 - d3
        switch j {
        case 0: r.0 = a0; r.4 = a1; r.8 = a2; r.12 = a3
        case 1: r.1 = a0; r.5 = a1; r.9 = a2; r.13 = a3
        case 2: r.2 = a0; r.6 = a1; r.10 = a2; r.14 = a3
        default: r.3 = a0; r.7 = a1; r.11 = a2; r.15 = a3
        }
    }
    // (Bᵀ d) B: combine columns of each row.
    @inline(__always) func row(_ a: F8, _ b: F8, _ d: F8, _ e: F8, _ base: Int) {
        store8(a - d, dst + base * plane)
        store8(b + d, dst + (base + 1) * plane)
        store8(d - b, dst + (base + 2) * plane)
        store8(b - e, dst + (base + 3) * plane)
    }
    row(r.0, r.1, r.2, r.3, 0)
    row(r.4, r.5, r.6, r.7, 4)
    row(r.8, r.9, r.10, r.11, 8)
    row(r.12, r.13, r.14, r.15, 12)
}

/// Input transform of 16 lanes (the scalar-tail path): `Bᵀ d B` in the order ξ = 4·row + column.
private func inputTransform(_ d: [F8]) -> [F8] {
    var r = [F8](repeating: F8(), count: 16)
    for j in 0..<4 {
        r[j] = d[j] - d[8 + j]
        r[4 + j] = d[4 + j] + d[8 + j]
        r[8 + j] = d[8 + j] - d[4 + j]
        r[12 + j] = d[4 + j] - d[12 + j]
    }
    var out = [F8](repeating: F8(), count: 16)
    for i in 0..<4 {
        out[i * 4] = r[i * 4] - r[i * 4 + 2]
        out[i * 4 + 1] = r[i * 4 + 1] + r[i * 4 + 2]
        out[i * 4 + 2] = r[i * 4 + 2] - r[i * 4 + 1]
        out[i * 4 + 3] = r[i * 4 + 1] - r[i * 4 + 3]
    }
    return out
}

/// `Y = Aᵀ M A` for tiles `first ..< first + count`, written (or added) to the output pixels of each
/// tile that fall inside the output. `M` is `[16, stride, Cout]`.
private func winogradOutputTransform(_ g: ConvGeometry, m: UnsafePointer<Float>, cout: Int, tilesH: Int, tilesW: Int,
                                     first: Int, count: Int, stride: Int, out: UnsafeMutablePointer<Float>,
                                     accumulate: Bool) {
    let outH = g.outH, outW = g.outW, plane = stride * cout
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 4 * cout)
    defer { scratch.deallocate() }
    for t in 0..<count {
        let tile = first + t
        let n = tile / (tilesH * tilesW), rem = tile % (tilesH * tilesW)
        let oh0 = (rem / tilesW) * 2, ow0 = (rem % tilesW) * 2
        let src = m + t * cout
        // Y computed into scratch [4, cout] (y00, y01, y10, y11), then copied to the pixels inside.
        var o = 0
        while o + 8 <= cout {
            outputTile8(src + o, plane, scratch + o, cout)
            o += 8
        }
        while o < cout {
            var mm = [Float](repeating: 0, count: 16)
            for k in 0..<16 { mm[k] = src[k * plane + o] }
            var tr = [Float](repeating: 0, count: 8)
            for j in 0..<4 {
                tr[j] = mm[j] + mm[4 + j] + mm[8 + j]
                tr[4 + j] = mm[4 + j] - mm[8 + j] - mm[12 + j]
            }
            for i in 0..<2 {
                scratch[(i * 2) * cout + o] = tr[i * 4] + tr[i * 4 + 1] + tr[i * 4 + 2]
                scratch[(i * 2 + 1) * cout + o] = tr[i * 4 + 1] - tr[i * 4 + 2] - tr[i * 4 + 3]
            }
            o += 1
        }
        for i in 0..<2 where oh0 + i < outH {
            for j in 0..<2 where ow0 + j < outW {
                let dst = out + ((n * outH + oh0 + i) * outW + ow0 + j) * cout
                let y = scratch + (i * 2 + j) * cout
                if accumulate { addRun(dst, y, cout) } else { dst.update(from: y, count: cout) }
            }
        }
    }
}

/// Output transform of 8 channels: reads `src[ξ · plane]`, writes the four outputs to
/// `dst[k · rowStride]` for k = (0,0), (0,1), (1,0), (1,1).
@inline(__always)
private func outputTile8(_ src: UnsafePointer<Float>, _ plane: Int, _ dst: UnsafeMutablePointer<Float>, _ rowStride: Int) {
    // Aᵀ M: two rows of four.
    var t0 = (F8(), F8(), F8(), F8()), t1 = (F8(), F8(), F8(), F8())
    for j in 0..<4 {
        let m0 = load8(src + j * plane), m1 = load8(src + (4 + j) * plane)
        let m2 = load8(src + (8 + j) * plane), m3 = load8(src + (12 + j) * plane)
        let a = m0 + m1 + m2, b = m1 - m2 - m3
        switch j {
        case 0: t0.0 = a; t1.0 = b
        case 1: t0.1 = a; t1.1 = b
        case 2: t0.2 = a; t1.2 = b
        default: t0.3 = a; t1.3 = b
        }
    }
    store8(t0.0 + t0.1 + t0.2, dst)
    store8(t0.1 - t0.2 - t0.3, dst + rowStride)
    store8(t1.0 + t1.1 + t1.2, dst + 2 * rowStride)
    store8(t1.1 - t1.2 - t1.3, dst + 3 * rowStride)
}
