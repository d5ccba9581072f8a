import Foundation

/// Padding of a convolution or pooling window, with the Keras names.
///
/// - `valid`: no padding; the window stays inside the image.
/// - `same`: output size `ceil(in / stride)`; the total padding
///   `max((out − 1)·stride + effectiveKernel − in, 0)` is split with the extra scalar on the
///   bottom/right (TensorFlow's rule). For a transposed convolution, `same` means output size
///   `in · stride` (see ``Tensor/conv2dTranspose(_:kernel:bias:strides:padding:outputPadding:)``).
/// - `explicit`: zero padding per side; PyTorch's symmetric `padding=p` is `explicit(p, p, p, p)`.
public enum Padding: Equatable {
    /// No padding: windows stay inside the image.
    case valid
    /// Output `ceil(in / stride)` (TensorFlow's split, extra on the bottom/right).
    case same
    /// Zero rows and columns on each side, each ≥ 0.
    case explicit(top: Int, bottom: Int, left: Int, right: Int)
}

extension Tensor {
    /// Output spatial size of a convolution or pooling window, and the padding before the first row
    /// and column (the padding after is implied: taps past the image read zero).
    ///
    /// With effective kernel `k' = (k − 1)·dilation + 1` (Dumoulin & Visin, "A guide to convolution
    /// arithmetic for deep learning", 2016, relationship 15):
    /// - `valid`: `out = ⌊(in − k') / s⌋ + 1`, no padding;
    /// - `same`: `out = ⌈in / s⌉`, total padding `max((out − 1)·s + k' − in, 0)`, top/left gets
    ///   half of it rounded down (TensorFlow);
    /// - `explicit(t, b, l, r)`: `out = ⌊(in + t + b − k') / s⌋ + 1`.
    ///
    /// - Precondition: positive sizes, strides and dilations; non-negative explicit padding; the
    ///   padded image at least as large as the effective kernel.
    /// - Returns: `(height, width, padTop, padLeft)`.
    public static func convolutionOutputSize(inputHeight: Int, inputWidth: Int, kernel: (Int, Int), strides: (Int, Int),
                                             padding: Padding, dilation: (Int, Int) = (1, 1))
        -> (height: Int, width: Int, padTop: Int, padLeft: Int) {
        precondition(inputHeight > 0 && inputWidth > 0 && kernel.0 > 0 && kernel.1 > 0,
                     "convolutionOutputSize: input \(inputHeight)×\(inputWidth), kernel \(kernel.0)×\(kernel.1) must be positive")
        precondition(strides.0 > 0 && strides.1 > 0 && dilation.0 > 0 && dilation.1 > 0,
                     "convolutionOutputSize: strides \(strides) and dilation \(dilation) must be positive")
        let (h, pt) = outputExtent(inputHeight, kernel.0, strides.0, dilation.0, padding, vertical: true)
        let (w, pl) = outputExtent(inputWidth, kernel.1, strides.1, dilation.1, padding, vertical: false)
        return (h, w, pt, pl)
    }

    /// One axis of ``convolutionOutputSize(inputHeight:inputWidth:kernel:strides:padding:dilation:)``.
    private static func outputExtent(_ size: Int, _ k: Int, _ s: Int, _ d: Int, _ padding: Padding,
                                     vertical: Bool) -> (Int, Int) {
        let eff = (k - 1) * d + 1
        let axis = vertical ? "height" : "width"
        switch padding {
        case .valid:
            precondition(size >= eff, "convolution: input \(axis) \(size) is smaller than the effective kernel \(eff) with padding valid")
            return ((size - eff) / s + 1, 0)
        case .same:
            let out = (size + s - 1) / s
            let total = max((out - 1) * s + eff - size, 0)
            return (out, total / 2)
        case let .explicit(top, bottom, left, right):
            let (a, b) = vertical ? (top, bottom) : (left, right)
            precondition(a >= 0 && b >= 0, "convolution: negative padding \(padding)")
            precondition(size + a + b >= eff,
                         "convolution: padded input \(axis) \(size)+\(a)+\(b) is smaller than the effective kernel \(eff)")
            return ((size + a + b - eff) / s + 1, a)
        }
    }

    /// 2-D convolution (cross-correlation, as in every framework) of NHWC images:
    ///
    ///     out[n, oh, ow, o] = bias[o] + Σ_{i,j,c} x[n, oh·sH − padTop + i·dH, ow·sW − padLeft + j·dW, c] · kernel[i, j, c, o]
    ///
    /// with taps outside the image reading zero. Output sizes and padding follow
    /// ``convolutionOutputSize(inputHeight:inputWidth:kernel:strides:padding:dilation:)``.
    ///
    /// Computed as im2col + one GEMM with the kernel viewed as `[KH·KW·Cin, Cout]` (a direct GEMM for
    /// 1×1 stride-1 unpadded kernels; Winograd F(4×4, 3×3) and F(4×4, 5×5), Lavin & Gray 2016, for
    /// 3×3 and 5×5 stride-1 undilated kernels with at least 16 channels in and out, for the output,
    /// ∂x and ∂kernel), in chunks of whole output rows whose patch buffer stays near
    /// ``ConvolutionScratch/cacheBytes`` (cache-sized) and within ``ConvolutionScratch/maxBytes``. Gradients: `∂kernel = patchesᵀ · ∂out`,
    /// `∂x = col2im(∂out · kernelᵀ)` (for stride 1 with few output channels: ∂out convolved with the
    /// rotated kernel), `∂bias` = column sums of `∂out`; each only when that input
    /// requires a gradient (patches are recomputed in the backward pass, not kept).
    ///
    /// - Parameters:
    ///   - x: `[N, H, W, Cin]`.
    ///   - kernel: `[KH, KW, Cin, Cout]` (HWIO, the Keras layout).
    ///   - bias: `[Cout]`, or nil.
    ///   - strides: (vertical, horizontal), positive.
    ///   - padding: see ``Padding``.
    ///   - dilation: (vertical, horizontal) spacing of kernel taps, positive.
    ///   - fusedReLU: apply `max(·, 0)` to the output in place, as `.relu()` would, without a second
    ///     graph node and buffer; the backward pass masks the incoming gradient where the output is
    ///     not positive (ReLU's derivative, 0 at 0).
    /// - Returns: `[N, OH, OW, Cout]`.
    public static func conv2d(_ x: Tensor, kernel: Tensor, bias: Tensor? = nil, strides: (Int, Int) = (1, 1),
                              padding: Padding = .valid, dilation: (Int, Int) = (1, 1), fusedReLU: Bool = false) -> Tensor {
        precondition(x.rank == 4 && kernel.rank == 4 && kernel.shape[2] == x.shape[3],
                     "conv2d: input \(x.shape) [N,H,W,Cin] and kernel \(kernel.shape) [KH,KW,Cin,Cout] do not fit")
        let cout = kernel.shape[3]
        if let bias { precondition(bias.shape == [cout], "conv2d: bias \(bias.shape) is not [\(cout)] for kernel \(kernel.shape)") }
        precondition(strides.0 > 0 && strides.1 > 0 && dilation.0 > 0 && dilation.1 > 0,
                     "conv2d: strides \(strides) and dilation \(dilation) must be positive")
        let n = x.shape[0], h = x.shape[1], w = x.shape[2], cin = x.shape[3]
        precondition(h > 0 && w > 0 && kernel.shape[0] > 0 && kernel.shape[1] > 0,
                     "conv2d: empty image or kernel: input \(x.shape), kernel \(kernel.shape)")
        let size = convolutionOutputSize(inputHeight: h, inputWidth: w, kernel: (kernel.shape[0], kernel.shape[1]),
                                         strides: strides, padding: padding, dilation: dilation)
        let g = ConvGeometry(batch: n, inH: h, inW: w, channels: cin, outH: size.height, outW: size.width,
                             kH: kernel.shape[0], kW: kernel.shape[1], strideH: strides.0, strideW: strides.1,
                             padTop: size.padTop, padLeft: size.padLeft, dilationH: dilation.0, dilationW: dilation.1)
        let oh = g.outH, ow = g.outW, kk = g.patchWidth, outRows = g.batch * oh     // image rows of the output
        let pixels = outRows * ow
        // Every path below writes every output scalar (bias fill or GEMM with beta 0, whole tiles).
        let out = TensorStorage(uninitializedCount: pixels * cout)
        let xp = UnsafePointer(x.storage.base), kp = UnsafePointer(kernel.storage.base)
        var beta: Float = 0
        if let bias, pixels > 0 {
            fillRows(out.base, rows: pixels, bias: bias.storage.base, n: cout)
            beta = 1
        }
        if g.isPointwise {
            gemm(m: pixels, n: cout, k: cin, a: xp, b: kp, beta: beta, c: out.base)
        } else if pixels > 0 && winogradApplies(g, outputChannels: cout), let wt = WinogradTransform.forKernel(g.kH) {
            let u = UnsafeMutablePointer<Float>.allocate(capacity: wt.alpha * wt.alpha * cin * cout)
            defer { u.deallocate() }
            winogradTransformKernel(wt, kp, cin: cin, cout: cout, into: u)
            winogradConvolution(wt, g, image: xp, u: u, cout: cout, out: out.base, accumulate: beta != 0)
        } else if pixels > 0 {
            let chunk = g.rowsPerChunk()
            let cols = UnsafeMutablePointer<Float>.allocate(capacity: max(1, min(chunk, outRows) * ow * kk))
            defer { cols.deallocate() }
            for start in stride(from: 0, to: outRows, by: chunk) {
                let rows = start..<min(outRows, start + chunk)
                im2col(g, image: xp, rows: rows, cols: cols)
                gemm(m: rows.count * ow, n: cout, k: kk, a: cols, b: kp, beta: beta, c: out.base + start * ow * cout)
            }
        }
        let outCount = pixels * cout
        if fusedReLU { reluInPlace(out.base, count: outCount) }
        // Stride 1: ∂x is itself a convolution of ∂out with the kernel rotated 180° and its channel
        // axes swapped (padding (K−1)·d − pad). Preferred when the ∂out·kernelᵀ product of the
        // col2im path would be thin (few output channels) and its KH·KW·Cin-wide result would
        // dominate memory traffic.
        let ptFlip = (g.kH - 1) * g.dilationH - g.padTop, plFlip = (g.kW - 1) * g.dilationW - g.padLeft
        let gf = ConvGeometry(batch: n, inH: oh, inW: ow, channels: cout, outH: h, outW: w, kH: g.kH, kW: g.kW,
                              strideH: 1, strideW: 1, padTop: ptFlip, padLeft: plFlip,
                              dilationH: g.dilationH, dilationW: g.dilationW)
        let flipApplies = g.strideH == 1 && g.strideW == 1 && ptFlip >= 0 && plFlip >= 0
        let backwardDataWinograd = flipApplies && winogradApplies(gf, outputChannels: cin) ? WinogradTransform.forKernel(g.kH) : nil
        var inputs = [x, kernel]
        if let bias { inputs.append(bias) }
        return result(shape: [n, oh, ow, cout], storage: out, inputs: inputs) { gIncoming in
            // With the fused ReLU, the gradient reaching the convolution is masked by output > 0,
            // in place: backward() drops an intermediate tensor's gradient right after its pullback
            // (see Tensor.backward), so nothing reads the unmasked values again.
            // When only ∂x is needed and it goes through Winograd, the mask is applied while the
            // input transform reads ∂out instead (one pass over ∂out fewer).
            let onlyDX = x.requiresGrad && !kernel.requiresGrad && !(bias?.requiresGrad ?? false)
            let maskWhileReading = fusedReLU && onlyDX && pixels > 0 && backwardDataWinograd != nil   // never 1×1
            if fusedReLU && !maskWhileReading {
                maskReLUGradient(UnsafeMutablePointer(mutating: gIncoming), output: out.base, count: outCount)
            }
            let gOut = gIncoming
            if let bias, bias.requiresGrad {
                bias.accumulateGrad { d in addColumnSums(gOut, rows: pixels, n: cout, into: d) }
            }
            var dK: UnsafeMutablePointer<Float>?, dX: UnsafeMutablePointer<Float>?
            if kernel.requiresGrad { kernel.accumulateGrad { dK = $0 } }
            if x.requiresGrad { x.accumulateGrad { dX = $0 } }
            if dK == nil && dX == nil || pixels == 0 { return }
            if g.isPointwise {
                if let dK { gemm(transposeA: true, m: cin, n: cout, k: pixels, a: xp, b: gOut, beta: 1, c: dK) }
                if let dX { gemm(transposeB: true, m: pixels, n: cin, k: cout, a: gOut, b: kp, beta: 1, c: dX) }
                return
            }
            if let dK, winogradApplies(g, outputChannels: cout), let wt = WinogradTransform.forKernel(g.kH) {
                winogradKernelGradient(wt, g, image: xp, gradOut: gOut, cout: cout, into: dK)
            } else if let dK {
                let chunk = g.rowsPerChunk()
                let cols = UnsafeMutablePointer<Float>.allocate(capacity: max(1, min(chunk, outRows) * ow * kk))
                defer { cols.deallocate() }
                for start in stride(from: 0, to: outRows, by: chunk) {
                    let rows = start..<min(outRows, start + chunk)
                    im2col(g, image: xp, rows: rows, cols: cols)
                    gemm(transposeA: true, m: kk, n: cout, k: rows.count * ow, a: cols, b: gOut + start * ow * cout, beta: 1, c: dK)
                }
            }
            guard let dX else { return }
            let winograd = backwardDataWinograd
            if winograd != nil || flipApplies && cin >= 16 && cout <= 128 {
                let taps = g.kH * g.kW
                // flipped[(t', o), c] = kernel[(taps − 1 − t', c), o]: [KH·KW·Cout, Cin].
                let flipped = UnsafeMutablePointer<Float>.allocate(capacity: taps * cout * cin)
                defer { flipped.deallocate() }
                for t in 0..<taps {
                    let src = kp + (taps - 1 - t) * cin * cout, dst = flipped + t * cout * cin
                    for c in 0..<cin { for o in 0..<cout { dst[o * cin + c] = src[c * cout + o] } }
                }
                if let wt = winograd {
                    let u = UnsafeMutablePointer<Float>.allocate(capacity: wt.alpha * wt.alpha * cin * cout)
                    defer { u.deallocate() }
                    winogradTransformKernel(wt, flipped, cin: cout, cout: cin, into: u)
                    winogradConvolution(wt, gf, image: gOut, u: u, cout: cin, out: dX, accumulate: true,
                                        imageMask: maskWhileReading ? UnsafePointer(out.base) : nil)
                    return
                }
                let chunk = gf.rowsPerChunk(), xRows = n * h
                let cols = UnsafeMutablePointer<Float>.allocate(capacity: max(1, min(chunk, xRows) * w * gf.patchWidth))
                defer { cols.deallocate() }
                for start in stride(from: 0, to: xRows, by: chunk) {
                    let rows = start..<min(xRows, start + chunk)
                    im2col(gf, image: gOut, rows: rows, cols: cols)
                    gemm(m: rows.count * w, n: cin, k: gf.patchWidth, a: cols, b: flipped, beta: 1, c: dX + start * w * cin)
                }
                return
            }
            let chunk = g.rowsPerChunk()
            let dCols = UnsafeMutablePointer<Float>.allocate(capacity: max(1, min(chunk, outRows) * ow * kk))
            defer { dCols.deallocate() }
            for start in stride(from: 0, to: outRows, by: chunk) {
                let rows = start..<min(outRows, start + chunk)
                gemm(transposeB: true, m: rows.count * ow, n: kk, k: cout, a: gOut + start * ow * cout, b: kp, c: dCols)
                col2im(g, cols: dCols, rows: rows, image: dX)
            }
        }
    }

    /// Transposed 2-D convolution of NHWC images (the gradient of ``conv2d(_:kernel:bias:strides:padding:dilation:)``
    /// with respect to its input; Keras `Conv2DTranspose`, PyTorch `ConvTranspose2d`):
    ///
    ///     out[n, ih·sH − padTop + i, iw·sW − padLeft + j, o] += x[n, ih, iw, c] · kernel[i, j, o, c]   (+ bias[o])
    ///
    /// with contributions that land outside the output dropped. Output size (Dumoulin & Visin 2016,
    /// relationships 9–14), per axis with input `H`, stride `s`, kernel `K`, output padding `a`:
    /// - `valid`: `OH = (H − 1)·s + K + a`, `padTop = 0`;
    /// - `same`: `OH = H·s + a`, `padTop = ⌊max(K − s, 0) / 2⌋` (TensorFlow's `SAME` for the
    ///   output `H·s`; the output padding extends the bottom/right);
    /// - `explicit(t, b, l, r)`: `OH = (H − 1)·s − t − b + K + a`, `padTop = t` (PyTorch
    ///   `ConvTranspose2d(padding: p, output_padding: a)` is `explicit(p, p, p, p)`).
    ///
    /// Computed as one GEMM `x · kernelᵀ` into a patch matrix, then col2im, chunked like `conv2d`;
    /// the backward pass is the im2col path (`∂x = im2col(∂out) · kernel`, `∂kernel = im2col(∂out)ᵀ · x`).
    ///
    /// - Parameters:
    ///   - x: `[N, H, W, Cin]`.
    ///   - kernel: `[KH, KW, Cout, Cin]` (Keras layout: output channels third).
    ///   - bias: `[Cout]`, or nil.
    ///   - strides: (vertical, horizontal), positive.
    ///   - outputPadding: extra output rows/columns at the bottom/right, each `< stride`.
    ///   - fusedReLU: apply `max(·, 0)` to the output in place, as `.relu()` would; the backward pass
    ///     masks the incoming gradient where the output is not positive.
    /// - Returns: `[N, OH, OW, Cout]`.
    public static func conv2dTranspose(_ x: Tensor, kernel: Tensor, bias: Tensor? = nil, strides: (Int, Int) = (1, 1),
                                       padding: Padding = .valid, outputPadding: (Int, Int) = (0, 0),
                                       fusedReLU: Bool = false) -> Tensor {
        precondition(x.rank == 4 && kernel.rank == 4 && kernel.shape[3] == x.shape[3],
                     "conv2dTranspose: input \(x.shape) [N,H,W,Cin] and kernel \(kernel.shape) [KH,KW,Cout,Cin] do not fit")
        let cout = kernel.shape[2], cin = x.shape[3]
        if let bias { precondition(bias.shape == [cout], "conv2dTranspose: bias \(bias.shape) is not [\(cout)] for kernel \(kernel.shape)") }
        precondition(strides.0 > 0 && strides.1 > 0, "conv2dTranspose: strides \(strides) must be positive")
        precondition(outputPadding.0 >= 0 && outputPadding.1 >= 0 && outputPadding.0 < strides.0 && outputPadding.1 < strides.1,
                     "conv2dTranspose: outputPadding \(outputPadding) must be in 0..<stride \(strides)")
        let n = x.shape[0], h = x.shape[1], w = x.shape[2], kh = kernel.shape[0], kw = kernel.shape[1]
        precondition(h > 0 && w > 0 && kh > 0 && kw > 0, "conv2dTranspose: empty image or kernel: input \(x.shape), kernel \(kernel.shape)")
        func axis(_ size: Int, _ k: Int, _ s: Int, _ a: Int, _ before: Int, _ after: Int) -> (Int, Int) {
            switch padding {
            case .valid: return ((size - 1) * s + k + a, 0)
            case .same: return (size * s + a, max(k - s, 0) / 2)
            case .explicit:
                precondition(before >= 0 && after >= 0, "conv2dTranspose: negative padding \(padding)")
                return ((size - 1) * s - before - after + k + a, before)
            }
        }
        var pads = (0, 0, 0, 0)
        if case let .explicit(t, b, l, r) = padding { pads = (t, b, l, r) }
        let (oh, pt) = axis(h, kh, strides.0, outputPadding.0, pads.0, pads.1)
        let (ow, pl) = axis(w, kw, strides.1, outputPadding.1, pads.2, pads.3)
        precondition(oh > 0 && ow > 0, "conv2dTranspose: input \(x.shape), kernel \(kernel.shape), strides \(strides), padding \(padding) give an empty output \(oh)×\(ow)")
        // The adjoint convolution maps the output [N, OH, OW, Cout] to x [N, H, W, Cin].
        let g = ConvGeometry(batch: n, inH: oh, inW: ow, channels: cout, outH: h, outW: w, kH: kh, kW: kw,
                             strideH: strides.0, strideW: strides.1, padTop: pt, padLeft: pl, dilationH: 1, dilationW: 1)
        let kk = g.patchWidth, xRows = n * h, xPixels = xRows * w, outPixels = n * oh * ow
        // col2im adds into the output: zeros unless a bias fill or a beta-0 GEMM writes every scalar first.
        let out = bias != nil || g.isPointwise ? TensorStorage(uninitializedCount: outPixels * cout)
                                               : TensorStorage(count: outPixels * cout)
        let xp = UnsafePointer(x.storage.base), kp = UnsafePointer(kernel.storage.base)
        if g.isPointwise {
            gemm(transposeB: true, m: xPixels, n: cout, k: cin, a: xp, b: kp, c: out.base)
            if let bias { addRows(out.base, rows: outPixels, bias: bias.storage.base, n: cout) }
        } else {
            if let bias { fillRows(out.base, rows: outPixels, bias: bias.storage.base, n: cout) }
            if xPixels > 0 {
                let chunk = g.rowsPerChunk()
                let cols = UnsafeMutablePointer<Float>.allocate(capacity: max(1, min(chunk, xRows) * w * kk))
                defer { cols.deallocate() }
                for start in stride(from: 0, to: xRows, by: chunk) {
                    let rows = start..<min(xRows, start + chunk)
                    gemm(transposeB: true, m: rows.count * w, n: kk, k: cin, a: xp + start * w * cin, b: kp, c: cols)
                    col2im(g, cols: cols, rows: rows, image: out.base)
                }
            }
        }
        if fusedReLU { reluInPlace(out.base, count: outPixels * cout) }
        var inputs = [x, kernel]
        if let bias { inputs.append(bias) }
        return result(shape: [n, oh, ow, cout], storage: out, inputs: inputs) { gOut in
            // Masked in place, as in conv2d (backward drops this gradient after the pullback).
            if fusedReLU { maskReLUGradient(UnsafeMutablePointer(mutating: gOut), output: out.base, count: outPixels * cout) }
            if let bias, bias.requiresGrad {
                bias.accumulateGrad { d in addColumnSums(gOut, rows: outPixels, n: cout, into: d) }
            }
            var dK: UnsafeMutablePointer<Float>?, dX: UnsafeMutablePointer<Float>?
            if kernel.requiresGrad { kernel.accumulateGrad { dK = $0 } }
            if x.requiresGrad { x.accumulateGrad { dX = $0 } }
            if dK == nil && dX == nil || xPixels == 0 { return }
            if g.isPointwise {
                if let dX { gemm(m: xPixels, n: cin, k: cout, a: gOut, b: kp, beta: 1, c: dX) }
                if let dK { gemm(transposeA: true, m: cout, n: cin, k: xPixels, a: gOut, b: xp, beta: 1, c: dK) }
                return
            }
            let chunk = g.rowsPerChunk()
            let cols = UnsafeMutablePointer<Float>.allocate(capacity: max(1, min(chunk, xRows) * w * kk))
            defer { cols.deallocate() }
            for start in stride(from: 0, to: xRows, by: chunk) {
                let rows = start..<min(xRows, start + chunk)
                let m = rows.count * w
                im2col(g, image: gOut, rows: rows, cols: cols)
                if let dX { gemm(m: m, n: cin, k: kk, a: cols, b: kp, beta: 1, c: dX + start * w * cin) }
                if let dK { gemm(transposeA: true, m: kk, n: cin, k: m, a: cols, b: xp + start * w * cin, beta: 1, c: dK) }
            }
        }
    }
}

/// `x = max(x, 0)` in place over `count` floats, eight lanes at a time, in parallel; NaN stays NaN
/// (as `max(NaN, 0)` does). Not the standard library's `pointwiseMax`, which runs lane by lane.
func reluInPlace(_ o: UnsafeMutablePointer<Float>, count: Int) {
    parallelFor(count, cost: 1) { r in
        var i = r.lowerBound
        while i + 8 <= r.upperBound {
            let v = load8(o + i)
            store8(v.replacing(with: 0, where: v .<= 0), o + i)     // −0 becomes +0, as max(−0, 0)
            i += 8
        }
        while i < r.upperBound { o[i] = max(o[i], 0); i += 1 }
    }
}

/// The ReLU's backward in place: `g[i] = 0` where `output[i]` is not > 0 (the gradient of
/// `max(z, 0)` taken as 0 at 0, as PyTorch and TensorFlow do), over `count` floats.
func maskReLUGradient(_ m: UnsafeMutablePointer<Float>, output o: UnsafePointer<Float>, count: Int) {
    parallelFor(count, cost: 1) { r in
        var i = r.lowerBound
        while i + 8 <= r.upperBound {
            var v = load8(m + i)
            v.replace(with: 0, where: .!(load8(o + i) .> 0))
            store8(v, m + i)
            i += 8
        }
        while i < r.upperBound { if !(o[i] > 0) { m[i] = 0 }; i += 1 }
    }
}
