import Foundation

// Winograd minimal filtering F(m×m, r×r) for r×r, stride-1, undilated convolutions of NHWC images
// (A. Lavin & S. Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016; the
// transforms built by the Cook–Toom construction from interpolation points, as in Lavin's wincnn).
//
// Each m×m block of output pixels ("tile") is computed from the α×α block of input pixels under it
// (α = m + r − 1):
//
//     Y = Aᵀ [ Σ_c (G g_{c,o} Gᵀ) ⊙ (Bᵀ d_c B) ] A
//
// The channel sum at each of the α² transformed positions ξ is a matrix product, so a layer becomes
// α² GEMMs `M[ξ] = V[ξ] · U[ξ]` of shapes [tiles, Cin] · [Cin, Cout]: α²/m² multiply-adds per output
// pixel and channel pair instead of im2col's r². gen uses F(4×4, 3×3) (36/16 = 2.25 against 9: 4×
// fewer) and F(4×4, 5×5) (64/16 = 4 against 25: 6.25× fewer). The transforms only scale and add,
// but with larger coefficients than a direct sum: at 256 input channels the largest error is about
// 3e-5 of the output's RMS (2⁻¹⁵; im2col's is 1.3e-6), tested against Double direct loops.
//
// The same transforms give the kernel gradient (the map is linear in g):
//
//     ∂g = Gᵀ [ Σ_tiles (Bᵀ d B) ⊙ (A ∂Y Aᵀ) ] G,
//
// again α² GEMMs `∂U[ξ] = V[ξ]ᵀ · ∂M[ξ]`. The input gradient is itself a stride-1 convolution of ∂Y
// with the rotated kernel (see `conv2d`), so it takes the forward path.

/// Settings of the Winograd convolution path.
public enum Winograd {
    /// Whether eligible convolutions (3×3 or 5×5, stride 1, dilation 1, ≥ 16 channels in and out)
    /// use Winograd instead of im2col + GEMM. Default true; tests and `gen bench --no-winograd` turn
    /// it off to compare the two paths.
    nonisolated(unsafe) public static var enabled = true

    /// Scratch bytes per chunk of tiles (transformed input and output together) in the forward
    /// pass, per thread (the kernel gradient uses 8× this, shared); chunks are at least 8 tiles
    /// whatever the limit. Must be positive.
    nonisolated(unsafe) public static var chunkBytes = 3 << 20
}

/// Transform matrices of Winograd F(m, r) in one dimension, built in Double from the interpolation
/// points 0, 1, −1, 2, −2, ½, −½ (the first α − 1 of them) and ∞:
///
/// - `Aᵀ[i][j] = p_jⁱ` (`m × α`; the ∞ column is 1 in the last row only);
/// - `G[j][k] = p_jᵏ / Π_{l≠j}(p_j − p_l)` (`α × r`; the ∞ row is 1 in the last column only);
/// - `Bᵀ[j]` = the coefficients of `Π_{l≠j}(x − p_l)` (`α × α`; the ∞ row holds `Π_l(x − p_l)`).
///
/// Then `y = Aᵀ[(G g) ⊙ (Bᵀ d)]` is the correlation `y_i = Σ_k d_{i+k} g_k` (Winograd 1980; the
/// transposed form of Toom–Cook polynomial multiplication).
struct WinogradTransform {
    let m: Int, r: Int, alpha: Int
    /// Row-major `Bᵀ` (α×α), `G` (α×r), `Aᵀ` (m×α).
    let bt: [Float], g: [Float], at: [Float]

    init(m: Int, r: Int) {
        precondition(m >= 1 && r >= 1 && m + r - 1 <= 8, "Winograd F(\(m), \(r)) is not supported")
        self.m = m; self.r = r
        let alpha = m + r - 1
        self.alpha = alpha
        let points: [Double] = Array([0, 1, -1, 2, -2, 0.5, -0.5].prefix(alpha - 1))
        let n = points.count
        // Coefficients (index = power) of Π over `roots` of (x − root).
        func product(_ roots: [Double]) -> [Double] {
            var c = [1.0]
            for root in roots {
                var next = [Double](repeating: 0, count: c.count + 1)
                for (k, v) in c.enumerated() { next[k + 1] += v; next[k] -= root * v }
                c = next
            }
            return c
        }
        var bt = [Float](repeating: 0, count: alpha * alpha)
        var g = [Float](repeating: 0, count: alpha * r)
        var at = [Float](repeating: 0, count: m * alpha)
        for j in 0..<n {
            let others = points.enumerated().filter { $0.offset != j }.map(\.element)
            let coeffs = product(others)
            for k in 0..<coeffs.count { bt[j * alpha + k] = Float(coeffs[k]) }
            let f = others.reduce(1.0) { $0 * (points[j] - $1) }
            for k in 0..<r { g[j * r + k] = Float(pow(points[j], Double(k)) / f) }
            for i in 0..<m { at[i * alpha + j] = Float(pow(points[j], Double(i))) }
        }
        let all = product(points)
        for k in 0..<all.count { bt[(alpha - 1) * alpha + k] = Float(all[k]) }
        g[(alpha - 1) * r + r - 1] = 1
        at[(m - 1) * alpha + alpha - 1] = 1
        self.bt = bt; self.g = g; self.at = at
    }

    /// The transform gen uses for an r×r kernel: F(4×4, 3×3) or F(4×4, 5×5); nil for other sizes.
    static func forKernel(_ r: Int) -> WinogradTransform? {
        switch r {
        case 3: return f4x3
        case 5: return f4x5
        default: return nil
        }
    }
    static let f4x3 = WinogradTransform(m: 4, r: 3)
    static let f4x5 = WinogradTransform(m: 4, r: 5)
}

/// Whether the Winograd path computes a convolution of this geometry: a 3×3 or 5×5 kernel, stride
/// 1, dilation 1, and at least 16 input and output channels (so its GEMMs are efficient). Padding
/// and output size are free (taps outside the image read zero).
func winogradApplies(_ g: ConvGeometry, outputChannels: Int) -> Bool {
    Winograd.enabled && g.kH == g.kW && WinogradTransform.forKernel(g.kH) != nil
        && g.strideH == 1 && g.strideW == 1 && g.dilationH == 1 && g.dilationW == 1
        && g.channels >= 16 && outputChannels >= 16 && g.outH > 0 && g.outW > 0
}

/// Tile bookkeeping of one convolution: tile `t` (linear over (n, tileRow, tileColumn)) covers
/// output rows `m·tileRow ..< m·tileRow + m` and reads input rows from `m·tileRow − padTop`.
private struct TileGrid {
    let g: ConvGeometry
    let m: Int, alpha: Int
    let tilesH: Int, tilesW: Int
    var count: Int { g.batch * tilesH * tilesW }

    init(_ g: ConvGeometry, _ w: WinogradTransform) {
        self.g = g; m = w.m; alpha = w.alpha
        tilesH = (g.outH + m - 1) / m; tilesW = (g.outW + m - 1) / m
    }

    /// (image, first output row, first output column) of tile `t`.
    @inline(__always) func origin(_ t: Int) -> (n: Int, oh: Int, ow: Int) {
        let per = tilesH * tilesW, rem = t % per
        return (t / per, (rem / tilesW) * m, (rem % tilesW) * m)
    }
}

/// `U[ξ][c][o] = (G k_{c,o} Gᵀ)[ξ]` for an r×r HWIO kernel.
///
/// - Parameters:
///   - kernel: `[r, r, cin, cout]`.
///   - u: `α² · cin · cout` scalars, written as `[α², cin, cout]`.
func winogradTransformKernel(_ w: WinogradTransform, _ kernel: UnsafePointer<Float>, cin: Int, cout: Int,
                             into u: UnsafeMutablePointer<Float>) {
    // L = G (α×r): L[i][k] = g[i·r + k].
    sandwichPlanes(kernel, size: w.r, into: u, resultSize: w.alpha, w.g, rowStride: w.r, columnStride: 1,
                   cin: cin, cout: cout, add: false)
}

/// Adds `Gᵀ ∂U G` to an r×r HWIO kernel gradient: `∂k[i][j][c][o] += Σ_{ξ=(p,q)} G[p][i] ∂U[ξ][c][o] G[q][j]`.
func winogradAccumulateKernelGradient(_ w: WinogradTransform, _ du: UnsafePointer<Float>, cin: Int, cout: Int,
                                      into dk: UnsafeMutablePointer<Float>) {
    // L = Gᵀ (r×α): L[i][p] = g[p·r + i].
    sandwichPlanes(du, size: w.alpha, into: dk, resultSize: w.r, w.g, rowStride: 1, columnStride: w.r,
                   cin: cin, cout: cout, add: true)
}

/// `Y = L X Lᵀ` for every (c, o) of a stack of `[size, size, cin, cout]` planes, eight output channels
/// at a time: `Y[i][j] (+)= Σ_{k,l} L[i][k] X[k][l] L[j][l]`, with `L[i][k] = l[i·rowStride + k·columnStride]`
/// (`resultSize × size`). Written as `[resultSize, resultSize, cin, cout]`, or added to when `add`.
private func sandwichPlanes(_ x: UnsafePointer<Float>, size n: Int, into y: UnsafeMutablePointer<Float>, resultSize m: Int,
                            _ l: [Float], rowStride: Int, columnStride: Int, cin: Int, cout: Int, add: Bool) {
    let plane = cin * cout
    parallelFor(cin, cost: cout * m * n * (m + n)) { range in
        let x8 = UnsafeMutablePointer<F8>.allocate(capacity: n * n), t = UnsafeMutablePointer<F8>.allocate(capacity: m * n)
        defer { x8.deallocate(); t.deallocate() }
        l.withUnsafeBufferPointer { l in
            for c in range {
                var o = 0
                while o < cout {
                    let lanes = min(8, cout - o)
                    for q in 0..<(n * n) { x8[q] = loadLanes(x + q * plane + c * cout + o, lanes) }
                    // T = L X (m×n), then Y = T Lᵀ (m×m).
                    for i in 0..<m {
                        for j in 0..<n {
                            var s = F8()
                            for k in 0..<n { s += l[i * rowStride + k * columnStride] * x8[k * n + j] }
                            t[i * n + j] = s
                        }
                    }
                    for i in 0..<m {
                        for j in 0..<m {
                            var s = F8()
                            for k in 0..<n { s += l[j * rowStride + k * columnStride] * t[i * n + k] }
                            storeLanes(s, y + (i * m + j) * plane + c * cout + o, lanes, add: add)
                        }
                    }
                    o += 8
                }
            }
        }
    }
}

/// Winograd convolution: `out[n, oh, ow, o] (+)= Σ_{i,j,c} x[n, oh − padTop + i, ow − padLeft + j, c] · k[i, j, c, o]`
/// for the geometry `g` (which must satisfy ``winogradApplies(_:outputChannels:)``), with the kernel
/// already transformed by ``winogradTransformKernel(_:_:cin:cout:into:)``.
///
/// Each thread takes a contiguous run of chunks of tiles and does the input transform, the α²
/// single-threaded GEMMs and the output transform for each chunk; tiles write disjoint output
/// pixels, so the result does not depend on the thread count.
///
/// - Parameters:
///   - image: `[N, inH, inW, Cin]`.
///   - u: `[α², Cin, Cout]`.
///   - out: `[N, outH, outW, Cout]`; overwritten, or added to when `accumulate` is true.
///   - imageMask: optional, same layout as `image`: image values where the mask is not > 0 are read
///     as 0 (a ReLU's gradient mask applied while reading, instead of a separate pass).
func winogradConvolution(_ w: WinogradTransform, _ g: ConvGeometry, image: UnsafePointer<Float>, u: UnsafePointer<Float>,
                         cout: Int, out: UnsafeMutablePointer<Float>, accumulate: Bool,
                         imageMask: UnsafePointer<Float>? = nil) {
    let cin = g.channels, a2 = w.alpha * w.alpha
    let grid = TileGrid(g, w)
    let tiles = grid.count
    guard tiles > 0 else { return }
    let perTile = a2 * (cin + cout) * MemoryLayout<Float>.stride
    let threads = ParallelRegion.active ? 1 : Threads.count
    // At most the memory cap, and small enough that every thread gets work (at least 8 tiles).
    let cap = max(8, min(Winograd.chunkBytes, 1 << 40) / perTile)
    let chunk = min(tiles, max(8, min(cap, (tiles + threads - 1) / threads)))
    let chunks = (tiles + chunk - 1) / chunk
    parallelPartitions(chunks, parts: threads) { _, range in
        let v = UnsafeMutablePointer<Float>.allocate(capacity: a2 * chunk * cin)
        let mm = UnsafeMutablePointer<Float>.allocate(capacity: a2 * chunk * cout)
        let scratch = WinogradScratch(alpha: w.alpha)
        defer { v.deallocate(); mm.deallocate(); scratch.deallocate() }
        for c in range {
            let first = c * chunk, count = min(chunk, tiles - first)
            for t in 0..<count {
                inputTransform(w, grid, image: image, mask: imageMask, tile: first + t, v: v + t * cin, plane: chunk * cin,
                               scratch: scratch)
            }
            for xi in 0..<a2 {
                gemm(m: count, n: cout, k: cin, a: v + xi * chunk * cin, b: u + xi * cin * cout, c: mm + xi * chunk * cout)
            }
            for t in 0..<count {
                outputTransform(w, grid, m: mm + t * cout, plane: chunk * cout, cout: cout, tile: first + t, out: out,
                                accumulate: accumulate, scratch: scratch)
            }
        }
    }
}

/// Kernel gradient by Winograd: `∂k[i, j, c, o] += Σ_{n,oh,ow} x[n, oh − padTop + i, ow − padLeft + j, c] · ∂out[n, oh, ow, o]`.
///
/// Tiles are processed in chunks; within a chunk the transforms run in parallel over tiles and the
/// α² GEMMs `∂U[ξ] += V[ξ]ᵀ · ∂M[ξ]` in parallel over ξ, each ξ owned by one thread for the whole
/// run, so the sums are taken in a fixed order whatever the thread count.
///
/// - Parameters:
///   - image: `[N, inH, inW, Cin]`.
///   - gradOut: `[N, outH, outW, Cout]`.
///   - dk: `[r, r, Cin, Cout]`, added to.
func winogradKernelGradient(_ w: WinogradTransform, _ g: ConvGeometry, image: UnsafePointer<Float>,
                            gradOut: UnsafePointer<Float>, cout: Int, into dk: UnsafeMutablePointer<Float>) {
    let cin = g.channels, a2 = w.alpha * w.alpha
    let grid = TileGrid(g, w)
    let tiles = grid.count
    guard tiles > 0 else { return }
    let perTile = a2 * (cin + cout) * MemoryLayout<Float>.stride
    let chunk = min(tiles, max(64, 8 * min(Winograd.chunkBytes, 1 << 40) / perTile))
    let v = UnsafeMutablePointer<Float>.allocate(capacity: a2 * chunk * cin)
    let dm = UnsafeMutablePointer<Float>.allocate(capacity: a2 * chunk * cout)
    let du = UnsafeMutablePointer<Float>.allocate(capacity: a2 * cin * cout)
    defer { v.deallocate(); dm.deallocate(); du.deallocate() }
    du.update(repeating: 0, count: a2 * cin * cout)
    let threads = ParallelRegion.active ? 1 : Threads.count
    for first in stride(from: 0, to: tiles, by: chunk) {
        let count = min(chunk, tiles - first)
        parallelPartitions(count, parts: threads) { _, range in
            let scratch = WinogradScratch(alpha: w.alpha)
            defer { scratch.deallocate() }
            for t in range {
                inputTransform(w, grid, image: image, mask: nil, tile: first + t, v: v + t * cin, plane: chunk * cin,
                               scratch: scratch)
                outputTransformAdjoint(w, grid, gradOut: gradOut, cout: cout, tile: first + t, dm: dm + t * cout,
                                       plane: chunk * cout, scratch: scratch)
            }
        }
        parallelPartitions(a2, parts: threads) { _, range in
            for xi in range {
                gemm(transposeA: true, m: cin, n: cout, k: count, a: v + xi * chunk * cin, b: dm + xi * chunk * cout,
                     beta: 1, c: du + xi * cin * cout)
            }
        }
    }
    winogradAccumulateKernelGradient(w, du, cin: cin, cout: cout, into: dk)
}

/// Per-thread scratch of the tile transforms: α² SIMD lanes twice, and a zero row.
private final class WinogradScratch {
    let d: UnsafeMutablePointer<F8>, t: UnsafeMutablePointer<F8>
    let pointers: UnsafeMutablePointer<UnsafePointer<Float>?>
    init(alpha: Int) {
        d = .allocate(capacity: alpha * alpha)
        t = .allocate(capacity: alpha * alpha)
        pointers = .allocate(capacity: alpha * alpha)
    }
    func deallocate() { d.deallocate(); t.deallocate(); pointers.deallocate() }
}

/// Loads up to 8 scalars (`count` < 8 pads with zeros).
@inline(__always)
private func loadLanes(_ p: UnsafePointer<Float>, _ count: Int) -> F8 {
    if count >= 8 { return load8(p) }
    var v = F8()
    for l in 0..<count { v[l] = p[l] }
    return v
}

/// Stores (or adds) the first `count` lanes.
@inline(__always)
private func storeLanes(_ v: F8, _ p: UnsafeMutablePointer<Float>, _ count: Int, add: Bool) {
    if count >= 8 {
        store8(add ? load8(p) + v : v, p)
    } else {
        for l in 0..<count { p[l] = add ? p[l] + v[l] : v[l] }
    }
}

/// `Bᵀ d` of F(4, 3) (α = 6, points 0, ±1, ±2, ∞; the rows of ``WinogradTransform``'s `bt`:
/// [4 0 −5 0 1 0], [0 −4 −4 1 1 0], [0 4 −4 −1 1 0], [0 −2 −1 2 1 0], [0 2 −1 −2 1 0], [0 4 0 −5 0 1]).
@inline(__always)
private func bt6(_ d0: F8, _ d1: F8, _ d2: F8, _ d3: F8, _ d4: F8, _ d5: F8) -> (F8, F8, F8, F8, F8, F8) {
    let t1 = d4 - 4 * d2, t2 = d3 - 4 * d1, t3 = d4 - d2, t4 = 2 * (d3 - d1)
    return (4 * d0 - 5 * d2 + d4, t1 + t2, t1 - t2, t3 + t4, t3 - t4, 4 * d1 - 5 * d3 + d5)
}

/// `Aᵀ m` of F(4, 3) (α = 6, points 0, ±1, ±2, ∞; rows [1 1 1 1 1 0], [0 1 −1 2 −2 0],
/// [0 1 1 4 4 0], [0 1 −1 8 −8 1]).
@inline(__always)
private func at6(_ m0: F8, _ m1: F8, _ m2: F8, _ m3: F8, _ m4: F8, _ m5: F8) -> (F8, F8, F8, F8) {
    let a = m1 + m2, b = m1 - m2, c = m3 + m4, e = m3 - m4
    return (m0 + a + c, b + 2 * e, a + 4 * c, b + 8 * e + m5)
}

/// `V[ξ][t][c] = (Bᵀ d B)[ξ]` for one tile, d the α×α input block (zero outside the image); writes
/// `v[ξ · plane + c]`.
@inline(__always)
private func inputTransform(_ w: WinogradTransform, _ grid: TileGrid, image: UnsafePointer<Float>,
                            mask: UnsafePointer<Float>?, tile: Int,
                            v: UnsafeMutablePointer<Float>, plane: Int, scratch: WinogradScratch) {
    let g = grid.g, a = w.alpha, cin = g.channels
    let (n, oh, ow) = grid.origin(tile)
    let ih0 = oh - g.padTop, iw0 = ow - g.padLeft
    let ptr = scratch.pointers, d = scratch.d, t = scratch.t
    for i in 0..<a {
        let ih = ih0 + i
        for j in 0..<a {
            let iw = iw0 + j
            ptr[i * a + j] = ih >= 0 && ih < g.inH && iw >= 0 && iw < g.inW ? image + ((n * g.inH + ih) * g.inW + iw) * cin : nil
        }
    }
    /// Lanes `c..<c+lanes` of tap `k`: zero outside the image, and zero where the mask is not > 0.
    @inline(__always) func tap(_ k: Int, _ c: Int, _ lanes: Int) -> F8 {
        guard let p = ptr[k] else { return F8() }
        var x = loadLanes(p + c, lanes)
        if let mask { x.replace(with: 0, where: .!(loadLanes(mask + (p - image) + c, lanes) .> 0)) }
        return x
    }
    if a == 6 {
        // Specialised F(4, 3) input transform (points 0, ±1, ±2, ∞).
        var c = 0
        while c < cin {
            let lanes = min(8, cin - c)
            for k in 0..<36 { d[k] = tap(k, c, lanes) }
            for j in 0..<6 {
                let r = bt6(d[j], d[6 + j], d[12 + j], d[18 + j], d[24 + j], d[30 + j])
                t[j] = r.0; t[6 + j] = r.1; t[12 + j] = r.2; t[18 + j] = r.3; t[24 + j] = r.4; t[30 + j] = r.5
            }
            for i in 0..<6 {
                let q = t + 6 * i
                let r = bt6(q[0], q[1], q[2], q[3], q[4], q[5])
                let dst = v + 6 * i * plane + c
                storeLanes(r.0, dst, lanes, add: false)
                storeLanes(r.1, dst + plane, lanes, add: false)
                storeLanes(r.2, dst + 2 * plane, lanes, add: false)
                storeLanes(r.3, dst + 3 * plane, lanes, add: false)
                storeLanes(r.4, dst + 4 * plane, lanes, add: false)
                storeLanes(r.5, dst + 5 * plane, lanes, add: false)
            }
            c += 8
        }
        return
    }
    w.bt.withUnsafeBufferPointer { bt in
        var c = 0
        while c < cin {
            let lanes = min(8, cin - c)
            for k in 0..<(a * a) { d[k] = tap(k, c, lanes) }
            // t = Bᵀ d (rows), then V = t B (columns).
            for i in 0..<a {
                for j in 0..<a {
                    var s = F8()
                    for k in 0..<a { let b = bt[i * a + k]; if b != 0 { s += b * d[k * a + j] } }
                    t[i * a + j] = s
                }
            }
            for i in 0..<a {
                for j in 0..<a {
                    var s = F8()
                    for k in 0..<a { let b = bt[j * a + k]; if b != 0 { s += b * t[i * a + k] } }
                    storeLanes(s, v + (i * a + j) * plane + c, lanes, add: false)
                }
            }
            c += 8
        }
    }
}

/// `Y = Aᵀ M A` for one tile, written (or added) to the output pixels of the tile that fall inside
/// the output; reads `m[ξ · plane + o]`.
@inline(__always)
private func outputTransform(_ w: WinogradTransform, _ grid: TileGrid, m: UnsafePointer<Float>, plane: Int, cout: Int,
                             tile: Int, out: UnsafeMutablePointer<Float>, accumulate: Bool, scratch: WinogradScratch) {
    let g = grid.g, a = w.alpha, mt = w.m
    let (n, oh, ow) = grid.origin(tile)
    let rows = min(mt, g.outH - oh), cols = min(mt, g.outW - ow)
    let d = scratch.d, t = scratch.t
    if a == 6 && mt == 4 {
        // Specialised F(4, 3) output transform.
        var o = 0
        while o < cout {
            let lanes = min(8, cout - o)
            for k in 0..<36 { d[k] = loadLanes(m + k * plane + o, lanes) }
            for j in 0..<6 {
                let y = at6(d[j], d[6 + j], d[12 + j], d[18 + j], d[24 + j], d[30 + j])
                t[j] = y.0; t[6 + j] = y.1; t[12 + j] = y.2; t[18 + j] = y.3
            }
            for i in 0..<rows {
                let q = t + 6 * i
                let y = at6(q[0], q[1], q[2], q[3], q[4], q[5])
                let dst = out + ((n * g.outH + oh + i) * g.outW + ow) * cout + o
                storeLanes(y.0, dst, lanes, add: accumulate)
                if cols > 1 { storeLanes(y.1, dst + cout, lanes, add: accumulate) }
                if cols > 2 { storeLanes(y.2, dst + 2 * cout, lanes, add: accumulate) }
                if cols > 3 { storeLanes(y.3, dst + 3 * cout, lanes, add: accumulate) }
            }
            o += 8
        }
        return
    }
    w.at.withUnsafeBufferPointer { at in
        var o = 0
        while o < cout {
            let lanes = min(8, cout - o)
            for k in 0..<(a * a) { d[k] = loadLanes(m + k * plane + o, lanes) }
            // t = Aᵀ M (m×α), then Y = t A (m×m).
            for i in 0..<mt {
                for j in 0..<a {
                    var s = F8()
                    for k in 0..<a { let c = at[i * a + k]; if c != 0 { s += c * d[k * a + j] } }
                    t[i * a + j] = s
                }
            }
            for i in 0..<rows {
                for j in 0..<cols {
                    var s = F8()
                    for k in 0..<a { let c = at[j * a + k]; if c != 0 { s += c * t[i * a + k] } }
                    storeLanes(s, out + ((n * g.outH + oh + i) * g.outW + ow + j) * cout + o, lanes, add: accumulate)
                }
            }
            o += 8
        }
    }
}

/// `∂M = A ∂Y Aᵀ` for one tile (the adjoint of ``outputTransform``), ∂Y the m×m block of the output
/// gradient (zero past the output's edge); writes `dm[ξ · plane + o]`.
@inline(__always)
private func outputTransformAdjoint(_ w: WinogradTransform, _ grid: TileGrid, gradOut: UnsafePointer<Float>, cout: Int,
                                    tile: Int, dm: UnsafeMutablePointer<Float>, plane: Int, scratch: WinogradScratch) {
    let g = grid.g, a = w.alpha, mt = w.m
    let (n, oh, ow) = grid.origin(tile)
    let rows = min(mt, g.outH - oh), cols = min(mt, g.outW - ow)
    let d = scratch.d, t = scratch.t
    w.at.withUnsafeBufferPointer { at in
        var o = 0
        while o < cout {
            let lanes = min(8, cout - o)
            for i in 0..<mt {
                for j in 0..<mt {
                    d[i * mt + j] = i < rows && j < cols
                        ? loadLanes(gradOut + ((n * g.outH + oh + i) * g.outW + ow + j) * cout + o, lanes) : F8()
                }
            }
            // t = A ∂Y (α×m): t[k][j] = Σ_i Aᵀ[i][k] ∂Y[i][j]; then ∂M = t Aᵀ: ∂M[k][l] = Σ_j t[k][j] Aᵀ[j][l].
            for k in 0..<a {
                for j in 0..<mt {
                    var s = F8()
                    for i in 0..<mt { let c = at[i * a + k]; if c != 0 { s += c * d[i * mt + j] } }
                    t[k * mt + j] = s
                }
            }
            for k in 0..<a {
                for l in 0..<a {
                    var s = F8()
                    for j in 0..<mt { let c = at[j * a + l]; if c != 0 { s += c * t[k * mt + j] } }
                    storeLanes(s, dm + (k * a + l) * plane + o, lanes, add: false)
                }
            }
            o += 8
        }
    }
}
