import Foundation

// im2col / col2im for NHWC images: the data movement that turns a 2-D convolution into one matrix
// product (Chellapilla, Puri & Simard, 2006). A patch matrix has one row per output pixel
// (n, oh, ow), row-major over [N, OH, OW], and KH·KW·C columns ordered (kh, kw, c), which is the
// row order of an HWIO kernel viewed as a [KH·KW·C, Cout] matrix. With NHWC input each (kh, kw)
// block of a row is a contiguous run of C scalars in the image, and with dilation 1 the KW blocks
// of one kh are one contiguous run of KW·C scalars: both are copied as whole runs.

/// Scratch memory limits of the convolution ops.
public enum ConvolutionScratch {
    /// Largest patch (im2col) buffer, in bytes, that a convolution allocates at once; bigger
    /// products are processed in chunks of whole output rows. Default 64 MiB. At least one output
    /// row is always processed, whatever the limit.
    nonisolated(unsafe) public static var maxBytes: Int = 64 << 20
    /// Preferred patch-buffer size of one chunk, in bytes: about a core's L2 cache (1 MiB), so that
    /// the GEMM reads im2col's output, and col2im the GEMM's, while it is still in cache.
    nonisolated(unsafe) public static var cacheBytes: Int = 1 << 20
    /// Fewest patch-matrix rows (output pixels) in a chunk, whatever ``cacheBytes`` says, so that
    /// each GEMM stays tall enough to run at full speed (wide patches, e.g. 3×3×512, need more
    /// than the cache holds).
    nonisolated(unsafe) public static var minimumChunkPixels: Int = 512
}

/// Geometry of one window sweep of a 2-D convolution over an NHWC image: output pixel (oh, ow),
/// window tap (kh, kw) reads input pixel (oh·strideH − padTop + kh·dilationH, ow·strideW − padLeft +
/// kw·dilationW); taps outside the image read zero. Output sizes are given, not derived, so the same
/// geometry serves a convolution and its transpose (whose output size may include output padding).
struct ConvGeometry {
    let batch: Int
    let inH: Int, inW: Int, channels: Int
    let outH: Int, outW: Int
    let kH: Int, kW: Int
    let strideH: Int, strideW: Int
    let padTop: Int, padLeft: Int
    let dilationH: Int, dilationW: Int

    /// Columns of the patch matrix: KH·KW·C.
    var patchWidth: Int { kH * kW * channels }
    /// Rows of the patch matrix: N·OH·OW.
    var patchRows: Int { batch * outH * outW }
    /// A 1×1, stride-1, unpadded window over an image of the output's size: the patch matrix is the
    /// image itself viewed as [N·H·W, C].
    var isPointwise: Bool {
        kH == 1 && kW == 1 && strideH == 1 && strideW == 1 && padTop == 0 && padLeft == 0
            && outH == inH && outW == inW
    }

    /// Output image rows (each `outW` patch rows) per chunk: a patch buffer of about
    /// ``ConvolutionScratch/cacheBytes``, but at least ``ConvolutionScratch/minimumChunkPixels``
    /// patch rows, and never over ``ConvolutionScratch/maxBytes``; at least 1.
    func rowsPerChunk() -> Int {
        let perRow = max(1, outW * patchWidth * MemoryLayout<Float>.stride)
        let minimumRows = (ConvolutionScratch.minimumChunkPixels + max(outW, 1) - 1) / max(outW, 1)
        let preferred = max(ConvolutionScratch.cacheBytes / perRow, minimumRows)
        return max(1, min(batch * outH, preferred, ConvolutionScratch.maxBytes / perRow))
    }
}

/// Fills `count` scalars at `p` with zero.
@inline(__always)
private func zeroRun(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count > 0 { p.update(repeating: 0, count: count) }
}

/// `d[0..<count] += s[0..<count]`, eight lanes at a time.
@inline(__always)
func addRun(_ d: UnsafeMutablePointer<Float>, _ s: UnsafePointer<Float>, _ count: Int) {
    var i = 0
    while i + 8 <= count {
        store8(load8(d + i) + load8(s + i), d + i)
        i += 8
    }
    while i < count { d[i] += s[i]; i += 1 }
}

/// im2col: writes the patch rows of output image rows `rows` (indices into N·OH, i.e. `n·OH + oh`)
/// into `cols`, `rows.count · OW` rows of `patchWidth` scalars, every scalar written (padding taps
/// as zeros). Parallel over output image rows; deterministic.
///
/// - Parameters:
///   - image: `[N, inH, inW, C]`.
///   - cols: at least `rows.count · OW · KH·KW·C` scalars.
func im2col(_ g: ConvGeometry, image: UnsafePointer<Float>, rows: Range<Int>, cols: UnsafeMutablePointer<Float>) {
    let c = g.channels, kw = g.kW, runW = kw * c, pw = g.patchWidth
    let inH = g.inH, inW = g.inW, outH = g.outH, outW = g.outW
    let sh = g.strideH, sw = g.strideW, dh = g.dilationH, dw = g.dilationW, pt = g.padTop, pl = g.padLeft, kh = g.kH
    let g0 = rows.lowerBound
    parallelFor(rows.count, cost: outW * pw) { range in
        for r in range {
            let gRow = g0 + r
            let n = gRow / outH, oh = gRow % outH
            var dst = cols + r * outW * pw
            for ow in 0..<outW {
                let iw0 = ow * sw - pl
                // Taps kw in lo..<hi fall inside the image (dilation 1).
                let lo = dw == 1 ? min(kw, max(0, -iw0)) : 0
                let hi = dw == 1 ? max(lo, min(kw, inW - iw0)) : 0
                for i in 0..<kh {
                    let ih = oh * sh - pt + i * dh
                    if ih < 0 || ih >= inH {
                        zeroRun(dst, runW)
                    } else {
                        let src = image + ((n * inH + ih) * inW) * c
                        if dw == 1 {
                            zeroRun(dst, lo * c)
                            if hi > lo { (dst + lo * c).update(from: src + (iw0 + lo) * c, count: (hi - lo) * c) }
                            zeroRun(dst + hi * c, (kw - hi) * c)
                        } else {
                            for j in 0..<kw {
                                let iw = iw0 + j * dw
                                if iw < 0 || iw >= inW { zeroRun(dst + j * c, c) }
                                else { (dst + j * c).update(from: src + iw * c, count: c) }
                            }
                        }
                    }
                    dst += runW
                }
            }
        }
    }
}

/// col2im (adjoint of ``im2col(_:image:rows:cols:)``): adds every patch-matrix entry of output image
/// rows `rows` into the image pixel it was read from, `image[tap] += cols[row, tap]`; padding taps
/// are dropped.
///
/// Written as a gather over image rows: each image row (n, ih) is owned by one thread, which adds
/// the contributions of every patch row in the chunk, in a fixed order (kh, ow, kw). No two threads
/// write the same scalar and the result does not depend on the thread count.
func col2im(_ g: ConvGeometry, cols: UnsafePointer<Float>, rows: Range<Int>, image: UnsafeMutablePointer<Float>) {
    guard !rows.isEmpty else { return }
    let c = g.channels, kw = g.kW, pw = g.patchWidth
    let inH = g.inH, inW = g.inW, outH = g.outH, outW = g.outW
    let sh = g.strideH, sw = g.strideW, dh = g.dilationH, dw = g.dilationW, pt = g.padTop, pl = g.padLeft, kh = g.kH
    let g0 = rows.lowerBound, g1 = rows.upperBound
    let nLo = g0 / outH, nHi = (g1 - 1) / outH
    let items = (nHi - nLo + 1) * inH
    parallelFor(items, cost: max(1, rows.count * outW * pw / max(items, 1))) { range in
        for item in range {
            let n = nLo + item / inH, ih = item % inH
            let dstRow = image + ((n * inH + ih) * inW) * c
            for i in 0..<kh {
                let num = ih + pt - i * dh
                if num < 0 || num % sh != 0 { continue }
                let oh = num / sh
                if oh >= outH { continue }
                let gRow = n * outH + oh
                if gRow < g0 || gRow >= g1 { continue }
                let base = cols + (gRow - g0) * outW * pw + i * kw * c
                for ow in 0..<outW {
                    let src = base + ow * pw
                    let iw0 = ow * sw - pl
                    if dw == 1 {
                        let lo = max(0, -iw0), hi = min(kw, inW - iw0)
                        if hi > lo { addRun(dstRow + (iw0 + lo) * c, src + lo * c, (hi - lo) * c) }
                    } else {
                        for j in 0..<kw {
                            let iw = iw0 + j * dw
                            if iw >= 0 && iw < inW { addRun(dstRow + iw * c, src + j * c, c) }
                        }
                    }
                }
            }
        }
    }
}

/// Writes `bias` (`n` scalars) into each of `rows` rows of `c` (row stride `n`).
func fillRows(_ c: UnsafeMutablePointer<Float>, rows: Int, bias: UnsafePointer<Float>, n: Int) {
    parallelFor(rows, cost: n) { range in
        for r in range { (c + r * n).update(from: bias, count: n) }
    }
}

/// Adds `bias` (`n` scalars) to each of `rows` rows of `c` (row stride `n`).
func addRows(_ c: UnsafeMutablePointer<Float>, rows: Int, bias: UnsafePointer<Float>, n: Int) {
    parallelFor(rows, cost: n) { range in
        for r in range { addRun(c + r * n, bias, n) }
    }
}

/// `d[j] += Σ_r s[r·n + j]` for `j < n`: column sums of a `[rows, n]` matrix (the bias gradient).
/// Partial sums over a fixed number of row blocks (independent of the thread count), added in order.
func addColumnSums(_ s: UnsafePointer<Float>, rows: Int, n: Int, into d: UnsafeMutablePointer<Float>) {
    guard rows > 0 && n > 0 else { return }
    let blocks = max(1, min(64, rows, rows * n / 16_384))
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: blocks * n)
    defer { partial.deallocate() }
    partial.update(repeating: 0, count: blocks * n)
    parallelFor(blocks, cost: rows * n / blocks) { range in
        for b in range {
            let p = partial + b * n
            for r in (rows * b / blocks)..<(rows * (b + 1) / blocks) { addRun(p, s + r * n, n) }
        }
    }
    for b in 0..<blocks { addRun(d, partial + b * n, n) }
}
