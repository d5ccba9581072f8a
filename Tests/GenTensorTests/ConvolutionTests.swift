import Foundation
import XCTest
@testable import GenTensor

/// conv2d and conv2dTranspose: output sizes, forward values against direct loops in Double,
/// gradients against central finite differences, chunked (small scratch) against unchunked, and
/// the skipping of gradients for inputs that do not require them. PyTorch/Keras reference values
/// are in GenNNTests/ConvolutionReferenceTests.swift.
final class ConvolutionTests: XCTestCase {
    // MARK: direct reference loops

    /// Direct convolution in Double: out[n,oh,ow,o] = b[o] + Σ x[n, oh·s−pt+i·d, ow·s−pl+j·d, c]·k[i,j,c,o].
    static func directConv(_ x: Tensor, _ k: Tensor, _ b: Tensor?, strides s: (Int, Int), padTop pt: Int, padLeft pl: Int,
                           outH: Int, outW: Int, dilation d: (Int, Int) = (1, 1)) -> [Double] {
        let (n, h, w, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw, cout) = (k.shape[0], k.shape[1], k.shape[3])
        let xv = x.scalars, kv = k.scalars, bv = b?.scalars
        var out = [Double](repeating: 0, count: n * outH * outW * cout)
        for b in 0..<n { for oy in 0..<outH { for ox in 0..<outW { for o in 0..<cout {
            var acc = bv.map { Double($0[o]) } ?? 0
            for i in 0..<kh { for j in 0..<kw {
                let iy = oy * s.0 - pt + i * d.0, ix = ox * s.1 - pl + j * d.1
                guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                for c in 0..<cin {
                    acc += Double(xv[((b * h + iy) * w + ix) * cin + c]) * Double(kv[((i * kw + j) * cin + c) * cout + o])
                }
            } }
            out[((b * outH + oy) * outW + ox) * cout + o] = acc
        } } } }
        return out
    }

    /// Direct transposed convolution in Double: out[n, iy·s−pt+i, ix·s−pl+j, o] += x[n,iy,ix,c]·k[i,j,o,c].
    static func directTranspose(_ x: Tensor, _ k: Tensor, _ b: Tensor?, strides s: (Int, Int), padTop pt: Int, padLeft pl: Int,
                                outH: Int, outW: Int) -> [Double] {
        let (n, h, w, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw, cout) = (k.shape[0], k.shape[1], k.shape[2])
        let xv = x.scalars, kv = k.scalars
        var out = [Double](repeating: 0, count: n * outH * outW * cout)
        if let bv = b?.scalars {
            for p in 0..<(n * outH * outW) { for o in 0..<cout { out[p * cout + o] = Double(bv[o]) } }
        }
        for b in 0..<n { for iy in 0..<h { for ix in 0..<w { for i in 0..<kh { for j in 0..<kw {
            let oy = iy * s.0 - pt + i, ox = ix * s.1 - pl + j
            guard oy >= 0 && oy < outH && ox >= 0 && ox < outW else { continue }
            for o in 0..<cout {
                var acc = 0.0
                for c in 0..<cin {
                    acc += Double(xv[((b * h + iy) * w + ix) * cin + c]) * Double(kv[((i * kw + j) * cout + o) * cin + c])
                }
                out[((b * outH + oy) * outW + ox) * cout + o] += acc
            }
        } } } } }
        return out
    }

    // MARK: output sizes

    func testOutputSizes() {
        func size(_ h: Int, _ w: Int, _ k: (Int, Int), _ s: (Int, Int), _ p: Padding, _ d: (Int, Int) = (1, 1)) -> [Int] {
            let r = Tensor.convolutionOutputSize(inputHeight: h, inputWidth: w, kernel: k, strides: s, padding: p, dilation: d)
            return [r.height, r.width, r.padTop, r.padLeft]
        }
        XCTAssertEqual(size(28, 28, (3, 3), (1, 1), .valid), [26, 26, 0, 0])
        XCTAssertEqual(size(28, 28, (3, 3), (2, 2), .valid), [13, 13, 0, 0])
        XCTAssertEqual(size(28, 28, (3, 3), (2, 2), .same), [14, 14, 0, 0])      // total pad 1: bottom/right
        XCTAssertEqual(size(32, 32, (5, 5), (2, 2), .same), [16, 16, 1, 1])      // total pad 3: 1 top, 2 bottom
        XCTAssertEqual(size(7, 8, (4, 2), (1, 1), .same), [7, 8, 1, 0])          // even kernels: extra at bottom/right
        XCTAssertEqual(size(400, 533, (3, 3), (1, 1), .same), [400, 533, 1, 1])
        XCTAssertEqual(size(7, 7, (3, 3), (1, 1), .same, (2, 2)), [7, 7, 2, 2])  // effective kernel 5
        XCTAssertEqual(size(9, 9, (3, 3), (1, 1), .valid, (3, 3)), [3, 3, 0, 0]) // effective kernel 7
        XCTAssertEqual(size(5, 6, (3, 3), (2, 2), .explicit(top: 1, bottom: 1, left: 2, right: 0)), [3, 3, 1, 2])
        XCTAssertEqual(size(1, 1, (1, 1), (3, 3), .same), [1, 1, 0, 0])
    }

    // MARK: configurations

    struct ConvCase {
        var x: [Int]          // [N, H, W, Cin]
        var k: [Int]          // [KH, KW, Cin, Cout]
        var strides = (1, 1)
        var padding = Padding.valid
        var dilation = (1, 1)
        var bias = true
        var label: String
    }

    static let convCases: [ConvCase] = [
        ConvCase(x: [2, 5, 6, 3], k: [3, 2, 3, 4], label: "3x2 valid stride 1"),
        ConvCase(x: [2, 7, 6, 3], k: [3, 3, 3, 2], strides: (2, 2), padding: .same, label: "3x3 same stride 2"),
        ConvCase(x: [1, 6, 7, 2], k: [2, 4, 2, 3], strides: (2, 1), padding: .same, label: "2x4 same stride (2,1), even kernel"),
        ConvCase(x: [2, 6, 5, 2], k: [3, 3, 2, 3], padding: .explicit(top: 1, bottom: 2, left: 0, right: 1),
                 bias: false, label: "explicit (1,2,0,1)"),
        ConvCase(x: [1, 7, 8, 2], k: [3, 2, 2, 3], padding: .same, dilation: (2, 2), label: "dilation 2 same"),
        ConvCase(x: [2, 8, 7, 2], k: [2, 3, 2, 2], strides: (2, 2), padding: .valid, dilation: (2, 3), label: "dilation (2,3) stride 2"),
        ConvCase(x: [2, 4, 3, 5], k: [1, 1, 5, 3], label: "1x1 pointwise"),
        ConvCase(x: [2, 5, 5, 3], k: [1, 1, 3, 2], strides: (2, 2), bias: false, label: "1x1 stride 2"),
        ConvCase(x: [1, 4, 4, 2], k: [1, 1, 2, 3], padding: .explicit(top: 1, bottom: 0, left: 0, right: 1), label: "1x1 padded"),
        ConvCase(x: [2, 5, 5, 1], k: [5, 5, 1, 2], padding: .same, label: "5x5 same, one input channel"),
        // Cin ≥ 16, Cout ≤ 128, stride 1: ∂x through the rotated-kernel convolution.
        ConvCase(x: [2, 5, 4, 16], k: [3, 2, 16, 3], padding: .same, label: "Cin 16 same (rotated-kernel ∂x)"),
        ConvCase(x: [1, 6, 5, 16], k: [3, 3, 16, 2], padding: .valid, dilation: (2, 1), bias: false,
                 label: "Cin 16 dilation (2,1) valid (rotated-kernel ∂x)"),
        // Padding beyond the kernel reach: the rotated kernel would need negative padding; col2im path.
        ConvCase(x: [1, 4, 4, 16], k: [2, 2, 16, 2], padding: .explicit(top: 2, bottom: 0, left: 0, right: 1),
                 label: "Cin 16 over-padded (col2im ∂x)"),
    ]

    struct TransposeCase {
        var x: [Int]          // [N, H, W, Cin]
        var k: [Int]          // [KH, KW, Cout, Cin]
        var strides = (1, 1)
        var padding = Padding.valid
        var outputPadding = (0, 0)
        var bias = true
        var label: String
        /// Expected (OH, OW, padTop, padLeft).
        var expected: (Int, Int, Int, Int)
    }

    static let transposeCases: [TransposeCase] = [
        TransposeCase(x: [2, 3, 4, 3], k: [3, 3, 2, 3], strides: (2, 2), label: "3x3 valid stride 2", expected: (7, 9, 0, 0)),
        TransposeCase(x: [2, 3, 3, 2], k: [4, 4, 3, 2], strides: (2, 2), padding: .same, label: "4x4 same stride 2",
                      expected: (6, 6, 1, 1)),
        TransposeCase(x: [1, 3, 2, 3], k: [5, 5, 2, 3], strides: (2, 2), padding: .same, bias: false,
                      label: "5x5 same stride 2", expected: (6, 4, 1, 1)),
        TransposeCase(x: [2, 3, 3, 2], k: [3, 3, 2, 2], strides: (2, 2), padding: .explicit(top: 1, bottom: 1, left: 1, right: 1),
                      outputPadding: (1, 1), label: "explicit 1, output padding 1", expected: (6, 6, 1, 1)),
        TransposeCase(x: [1, 3, 4, 2], k: [2, 3, 3, 2], strides: (1, 2), outputPadding: (0, 1),
                      label: "2x3 valid stride (1,2), output padding (0,1)", expected: (4, 10, 0, 0)),
        TransposeCase(x: [2, 4, 3, 3], k: [3, 3, 2, 3], padding: .same, label: "3x3 same stride 1", expected: (4, 3, 1, 1)),
        TransposeCase(x: [2, 3, 4, 3], k: [1, 1, 2, 3], label: "1x1 pointwise", expected: (3, 4, 0, 0)),
        TransposeCase(x: [1, 3, 3, 2], k: [1, 1, 2, 2], strides: (2, 2), bias: false, label: "1x1 stride 2", expected: (5, 5, 0, 0)),
        TransposeCase(x: [1, 2, 3, 2], k: [2, 2, 3, 2], strides: (3, 3), label: "kernel smaller than stride", expected: (5, 8, 0, 0)),
    ]

    static func run(_ c: ConvCase, _ t: [Tensor]) -> Tensor {
        Tensor.conv2d(t[0], kernel: t[1], bias: c.bias ? t[2] : nil, strides: c.strides, padding: c.padding, dilation: c.dilation)
    }

    static func run(_ c: TransposeCase, _ t: [Tensor]) -> Tensor {
        Tensor.conv2dTranspose(t[0], kernel: t[1], bias: c.bias ? t[2] : nil, strides: c.strides, padding: c.padding,
                               outputPadding: c.outputPadding)
    }

    func inputs(_ x: [Int], _ k: [Int], biasCount: Int, seed: UInt64) -> [Tensor] {
        var r = TestRandom(seed: seed)
        return [r.uniform(x), r.uniform(k), r.uniform([biasCount])]
    }

    // MARK: forward values

    func testConvForwardMatchesDirectLoops() {
        for (ci, c) in Self.convCases.enumerated() {
            let t = inputs(c.x, c.k, biasCount: c.k[3], seed: UInt64(100 + ci))
            let size = Tensor.convolutionOutputSize(inputHeight: c.x[1], inputWidth: c.x[2], kernel: (c.k[0], c.k[1]),
                                                    strides: c.strides, padding: c.padding, dilation: c.dilation)
            let out = Self.run(c, t)
            XCTAssertEqual(out.shape, [c.x[0], size.height, size.width, c.k[3]], c.label)
            let expected = Self.directConv(t[0], t[1], c.bias ? t[2] : nil, strides: c.strides, padTop: size.padTop,
                                           padLeft: size.padLeft, outH: size.height, outW: size.width, dilation: c.dilation)
            assertClose(out.scalars, expected, atol: 1e-5, rtol: 1e-5, c.label)
        }
    }

    func testTransposeForwardMatchesDirectLoops() {
        for (ci, c) in Self.transposeCases.enumerated() {
            let t = inputs(c.x, c.k, biasCount: c.k[2], seed: UInt64(200 + ci))
            let out = Self.run(c, t)
            XCTAssertEqual(out.shape, [c.x[0], c.expected.0, c.expected.1, c.k[2]], c.label)
            let expected = Self.directTranspose(t[0], t[1], c.bias ? t[2] : nil, strides: c.strides, padTop: c.expected.2,
                                                padLeft: c.expected.3, outH: c.expected.0, outW: c.expected.1)
            assertClose(out.scalars, expected, atol: 1e-5, rtol: 1e-5, c.label)
        }
    }

    /// ⟨conv(x), y⟩ = ⟨x, convᵀ(y)⟩ with the same kernel: conv2dTranspose is the adjoint of conv2d.
    func testTransposeIsAdjointOfConv() {
        var r = TestRandom(seed: 7)
        let x = r.uniform([2, 9, 8, 3], grad: false), k = r.uniform([3, 3, 3, 4], grad: false)
        let y = Tensor.conv2d(x, kernel: k, strides: (2, 2), padding: .same)
        let v = r.uniform(y.shape, grad: false)
        let back = Tensor.conv2dTranspose(v, kernel: k, strides: (2, 2), padding: .same, outputPadding: (0, 0))
        // same with stride 2 on 9 rows: the transpose gives 10 rows; the adjoint is its top-left 9×8 crop
        // only when the crop drops nothing the conv read, so compare with explicit padding instead.
        let size = Tensor.convolutionOutputSize(inputHeight: 9, inputWidth: 8, kernel: (3, 3), strides: (2, 2), padding: .same)
        let explicitBack = Tensor.conv2dTranspose(v, kernel: k, strides: (2, 2),
                                                  padding: .explicit(top: size.padTop, bottom: 1, left: size.padLeft, right: 1))
        XCTAssertEqual(explicitBack.shape, x.shape)
        XCTAssertEqual(back.shape, [2, 10, 8, 3])
        let lhs = zip(y.scalars, v.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(x.scalars, explicitBack.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        XCTAssertEqual(lhs, rhs, accuracy: 1e-4 * max(1, abs(lhs)))
    }

    // MARK: gradients

    func testConvGradients() {
        for (ci, c) in Self.convCases.enumerated() {
            let t = inputs(c.x, c.k, biasCount: c.k[3], seed: UInt64(300 + ci))
            if !c.bias { t[2].requiresGrad = false }
            gradientCheck(inputs: t, c.label) { Self.run(c, $0) }
        }
    }

    func testTransposeGradients() {
        for (ci, c) in Self.transposeCases.enumerated() {
            let t = inputs(c.x, c.k, biasCount: c.k[2], seed: UInt64(400 + ci))
            if !c.bias { t[2].requiresGrad = false }
            gradientCheck(inputs: t, c.label) { Self.run(c, $0) }
        }
    }

    /// Gradients only for inputs that require them: frozen weights (style transfer) give only ∂x,
    /// an input image that is data gives only the weight gradients; both equal the full computation.
    func testGradientsOnlyWhereRequired() {
        for transpose in [false, true] {
            var r = TestRandom(seed: 11)
            let x = r.uniform([2, 6, 5, 3]), k = r.uniform(transpose ? [3, 3, 4, 3] : [3, 3, 3, 4]), b = r.uniform([4])
            func f() -> Tensor {
                transpose ? Tensor.conv2dTranspose(x, kernel: k, bias: b, strides: (2, 2), padding: .same)
                          : Tensor.conv2d(x, kernel: k, bias: b, strides: (2, 2), padding: .same)
            }
            let out = f()
            let seed = r.uniform(out.shape, grad: false)
            out.backward(seed: seed)
            let full = (x.grad!.scalars, k.grad!.scalars, b.grad!.scalars)
            for t in [x, k, b] { t.grad = nil }

            k.requiresGrad = false; b.requiresGrad = false
            f().backward(seed: seed)
            XCTAssertNil(k.grad); XCTAssertNil(b.grad)
            XCTAssertEqual(x.grad?.scalars ?? [], full.0, "frozen weights: ∂x (transpose \(transpose))")
            x.grad = nil

            x.requiresGrad = false; k.requiresGrad = true; b.requiresGrad = true
            f().backward(seed: seed)
            XCTAssertNil(x.grad)
            XCTAssertEqual(k.grad?.scalars ?? [], full.1, "data input: ∂kernel (transpose \(transpose))")
            XCTAssertEqual(b.grad?.scalars ?? [], full.2, "data input: ∂bias (transpose \(transpose))")

            x.requiresGrad = false; k.requiresGrad = false; b.requiresGrad = false
            let plain = f()
            XCTAssertFalse(plain.requiresGrad)
        }
    }

    /// A scratch limit below one output row forces one row per chunk; results must match the
    /// single-chunk computation (forward and all gradients), for both ops.
    func testChunkedMatchesUnchunked() {
        let saved = ConvolutionScratch.maxBytes
        defer { ConvolutionScratch.maxBytes = saved }
        for transpose in [false, true] {
            for pad in [Padding.same, .valid] {
                var r = TestRandom(seed: 21)
                let x = r.uniform([3, 7, 6, 3]), k = r.uniform([3, 2, 3, 4]), b = r.uniform([transpose ? 3 : 4])
                let kk = transpose ? r.uniform([3, 2, 3, 3]) : k
                func f() -> Tensor {
                    transpose ? Tensor.conv2dTranspose(x, kernel: kk, bias: b, strides: (2, 1), padding: pad)
                              : Tensor.conv2d(x, kernel: k, bias: b, strides: (2, 1), padding: pad)
                }
                var results: [[[Float]]] = []
                for limit in [saved, 1, 2000] {
                    ConvolutionScratch.maxBytes = limit
                    for t in [x, kk, b] { t.grad = nil }
                    let out = f()
                    var sr = TestRandom(seed: 5)
                    out.backward(seed: sr.uniform(out.shape, grad: false))
                    results.append([out.scalars, x.grad!.scalars, kk.grad!.scalars, b.grad!.scalars])
                }
                for limit in 1..<results.count {
                    for (i, name) in ["out", "dx", "dkernel", "dbias"].enumerated() {
                        assertClose(results[limit][i], results[0][i].map(Double.init), atol: 1e-5, rtol: 1e-5,
                                    "\(name) chunked (transpose \(transpose), \(pad))")
                    }
                }
            }
        }
    }

    /// Chunks are about a cache's size, but at least the minimum pixel count, and within maxBytes.
    func testChunkRowsRule() {
        let saved = (ConvolutionScratch.maxBytes, ConvolutionScratch.cacheBytes, ConvolutionScratch.minimumChunkPixels)
        defer { (ConvolutionScratch.maxBytes, ConvolutionScratch.cacheBytes, ConvolutionScratch.minimumChunkPixels) = saved }
        (ConvolutionScratch.maxBytes, ConvolutionScratch.cacheBytes, ConvolutionScratch.minimumChunkPixels) = (64 << 20, 1 << 20, 512)
        func geometry(batch: Int, out: Int, channels: Int) -> ConvGeometry {
            ConvGeometry(batch: batch, inH: 2 * out, inW: 2 * out, channels: channels, outH: out, outW: out, kH: 3, kW: 3,
                         strideH: 2, strideW: 2, padTop: 0, padLeft: 0, dilationH: 1, dilationW: 1)
        }
        // The VAE's stride-2 conv: 7-pixel rows of 3·3·32 floats (8,064 bytes): 1 MiB holds 130 rows.
        XCTAssertEqual(geometry(batch: 64, out: 7, channels: 32).rowsPerChunk(), (1 << 20) / (7 * 288 * 4))
        // Wide patches (3·3·512 floats per pixel): the 512-pixel floor, 16 rows of 32 pixels.
        XCTAssertEqual(geometry(batch: 4, out: 32, channels: 512).rowsPerChunk(), 16)
        // Never more rows than there are, never fewer than 1, never over maxBytes.
        XCTAssertEqual(geometry(batch: 1, out: 4, channels: 1).rowsPerChunk(), 4)
        ConvolutionScratch.maxBytes = 1
        XCTAssertEqual(geometry(batch: 64, out: 7, channels: 32).rowsPerChunk(), 1)
        ConvolutionScratch.maxBytes = 3 * 7 * 288 * 4
        XCTAssertEqual(geometry(batch: 64, out: 7, channels: 32).rowsPerChunk(), 3)
    }

    /// The rotated-kernel ∂x path (stride 1, Cin ≥ 16) in chunks matches the unchunked computation.
    func testChunkedRotatedKernelPath() {
        let saved = ConvolutionScratch.maxBytes
        defer { ConvolutionScratch.maxBytes = saved }
        var r = TestRandom(seed: 41)
        let x = r.uniform([3, 6, 5, 16]), k = r.uniform([3, 3, 16, 4])
        var results: [[[Float]]] = []
        for limit in [saved, 1, 4000] {
            ConvolutionScratch.maxBytes = limit
            x.grad = nil; k.grad = nil
            let out = Tensor.conv2d(x, kernel: k, padding: .same, dilation: (1, 2))
            var sr = TestRandom(seed: 6)
            out.backward(seed: sr.uniform(out.shape, grad: false))
            results.append([out.scalars, x.grad!.scalars, k.grad!.scalars])
        }
        for limit in 1..<results.count {
            for (i, name) in ["out", "dx", "dkernel"].enumerated() {
                assertClose(results[limit][i], results[0][i].map(Double.init), atol: 1e-5, rtol: 1e-5, "\(name) chunked")
            }
        }
    }

    /// Gradients accumulate onto existing ones (two uses of the same kernel in one graph).
    func testGradientAccumulatesAcrossUses() {
        var r = TestRandom(seed: 31)
        let x = r.uniform([1, 5, 5, 2]), k = r.uniform([3, 3, 2, 2])
        gradientCheck(inputs: [x, k], "conv applied twice") { t in
            Tensor.conv2d(Tensor.conv2d(t[0], kernel: t[1], padding: .same), kernel: t[1], strides: (2, 2), padding: .same)
        }
    }

    /// `conv2d(fusedReLU: true)` equals `conv2d(...).relu()`: output and every gradient, on the
    /// im2col path (with finite differences) and on the Winograd path.
    func testFusedReLUMatchesSeparateReLU() {
        var r = TestRandom(seed: 81)
        for (xs, ks, padding) in [([2, 5, 6, 3], [3, 3, 3, 4], Padding.same), ([1, 6, 7, 16], [3, 3, 16, 16], .same),
                                  ([1, 5, 5, 8], [1, 1, 8, 5], .valid)] {
            let x = r.uniform(xs), k = r.uniform(ks), b = r.uniform([ks[3]])
            var results: [[Float]] = []
            for fused in [true, false] {
                for t in [x, k, b] { t.grad = nil }
                let out = fused ? Tensor.conv2d(x, kernel: k, bias: b, padding: padding, fusedReLU: true)
                                : Tensor.conv2d(x, kernel: k, bias: b, padding: padding).relu()
                var sr = TestRandom(seed: 9)
                out.backward(seed: sr.uniform(out.shape, grad: false))
                results.append(out.scalars + x.grad!.scalars + k.grad!.scalars + b.grad!.scalars)
            }
            XCTAssertGreaterThan(results[0].prefix(xs[0] * xs[1] * xs[2]).filter { $0 == 0 }.count, 0, "some outputs are clipped")
            assertClose(results[0], results[1].map(Double.init), atol: 1e-6, rtol: 1e-6, "fused ReLU \(xs) \(ks)")
        }
        let x = r.uniform([1, 4, 5, 2]), k = r.uniform([3, 3, 2, 3]), b = r.uniform([3])
        gradientCheck(inputs: [x, k, b], "conv2d fused ReLU") { t in
            Tensor.conv2d(t[0], kernel: t[1], bias: t[2], padding: .same, fusedReLU: true)
        }
    }

    /// `conv2dTranspose(fusedReLU: true)` equals `conv2dTranspose(...).relu()`: output and every
    /// gradient (stride 2 same as in the VAE decoder, stride 1 valid, 1×1, without bias), and
    /// finite differences.
    func testFusedReLUConvTransposeMatchesSeparateReLU() {
        var r = TestRandom(seed: 82)
        let cases: [(x: [Int], k: [Int], s: Int, padding: Padding, bias: Bool)] = [
            ([2, 4, 5, 6], [3, 3, 5, 6], 2, .same, true), ([1, 5, 4, 9], [3, 3, 11, 9], 1, .valid, true),
            ([1, 3, 3, 4], [1, 1, 7, 4], 1, .valid, true), ([2, 3, 4, 5], [3, 3, 4, 5], 2, .same, false),
        ]
        for c in cases {
            let x = r.uniform(c.x), k = r.uniform(c.k), b: Tensor? = c.bias ? r.uniform([c.k[2]]) : nil
            var results: [[Float]] = []
            for fused in [true, false] {
                for t in [x, k] + (b.map { [$0] } ?? []) { t.grad = nil }
                let out = fused ? Tensor.conv2dTranspose(x, kernel: k, bias: b, strides: (c.s, c.s), padding: c.padding, fusedReLU: true)
                                : Tensor.conv2dTranspose(x, kernel: k, bias: b, strides: (c.s, c.s), padding: c.padding).relu()
                XCTAssertGreaterThan(out.scalars.filter { $0 == 0 }.count, out.count / 10, "some outputs are clipped")
                var sr = TestRandom(seed: 11)
                out.backward(seed: sr.uniform(out.shape, grad: false))
                results.append(out.scalars + x.grad!.scalars + k.grad!.scalars + (b?.grad!.scalars ?? []))
            }
            assertClose(results[0], results[1].map(Double.init), atol: 1e-6, rtol: 1e-6, "fused ReLU transpose \(c.x) \(c.k)")
        }
        // Finite differences need every pre-activation away from the kink at 0: draw until so.
        var x = r.uniform([1, 3, 3, 2]), k = r.uniform([3, 3, 3, 2]), b = r.uniform([3])
        while withNoGrad({ Tensor.conv2dTranspose(x, kernel: k, bias: b, strides: (2, 2), padding: .same) })
                .scalars.contains(where: { abs($0) < 0.05 }) {
            x = r.uniform([1, 3, 3, 2]); k = r.uniform([3, 3, 3, 2]); b = r.uniform([3])
        }
        gradientCheck(inputs: [x, k, b], "conv2dTranspose fused ReLU") { t in
            Tensor.conv2dTranspose(t[0], kernel: t[1], bias: t[2], strides: (2, 2), padding: .same, fusedReLU: true)
        }
    }

    /// A frozen network (kernel and bias without gradients, as in DeepDream and style transfer):
    /// on the Winograd ∂x path the fused ReLU's mask is applied while ∂out is read, not as a
    /// separate pass. ∂x still equals that of `conv2d(...).relu()`, for 3×3 and 5×5 kernels, channel
    /// counts off the 8-lane blocks, same and valid padding; and a batch of 2.
    func testFusedReLUFrozenKernelMasksWhileReading() {
        var r = TestRandom(seed: 83)
        let cases: [(x: [Int], k: [Int], padding: Padding)] = [
            ([1, 9, 11, 16], [3, 3, 16, 16], .same), ([2, 7, 6, 19], [3, 3, 19, 21], .valid),
            ([1, 10, 9, 17], [5, 5, 17, 16], .same), ([1, 12, 8, 16], [1, 1, 16, 16], .valid),
        ]
        for (xs, ks, padding) in cases {
            let x = r.uniform(xs), k = r.uniform(ks, grad: false), b = r.uniform([ks[3]], grad: false)
            var grads: [[Float]] = []
            for fused in [true, false] {
                x.grad = nil
                let out = fused ? Tensor.conv2d(x, kernel: k, bias: b, padding: padding, fusedReLU: true)
                                : Tensor.conv2d(x, kernel: k, bias: b, padding: padding).relu()
                XCTAssertGreaterThan(out.scalars.filter { $0 == 0 }.count, out.count / 10, "some outputs are clipped")
                var sr = TestRandom(seed: 10)
                out.backward(seed: sr.uniform(out.shape, grad: false))
                grads.append(x.grad!.scalars)
            }
            XCTAssertNil(k.grad); XCTAssertNil(b.grad)
            assertClose(grads[0], grads[1].map(Double.init), atol: 1e-5, rtol: 1e-5, "frozen fused ReLU ∂x \(xs) \(ks)")
        }
    }

    /// A NaN in the input: the fused ReLU keeps NaN outputs NaN (as `relu()` does) and stops the
    /// gradient there, on both the in-place mask (kernel trainable) and the read-time mask (kernel
    /// frozen); ∂x is identical, bit for bit, to that of `conv2d(...).relu()`.
    func testFusedReLUWithNaNMatchesSeparateReLU() {
        var r = TestRandom(seed: 84)
        let xs = [1, 8, 8, 16]
        var xv = r.uniform(xs, grad: false).scalars
        xv[5 * 16 + 3] = .nan
        let kv = r.uniform([3, 3, 16, 16], grad: false).scalars
        var outs: [[Float]] = [], grads: [[Float]] = []
        for mode in ["separate", "fused trainable kernel", "fused frozen kernel"] {
            let x = Tensor(shape: xs, scalars: xv, requiresGrad: true)
            let k = Tensor(shape: [3, 3, 16, 16], scalars: kv, requiresGrad: mode != "fused frozen kernel")
            let out = mode == "separate" ? Tensor.conv2d(x, kernel: k, padding: .same).relu()
                                         : Tensor.conv2d(x, kernel: k, padding: .same, fusedReLU: true)
            var sr = TestRandom(seed: 12)
            out.backward(seed: sr.uniform(out.shape, grad: false))
            outs.append(out.scalars)
            grads.append(x.grad!.scalars)
        }
        XCTAssertGreaterThan(outs[0].filter(\.isNaN).count, 0)
        for i in 1..<3 {
            XCTAssertEqual(outs[i].map(\.bitPattern), outs[0].map(\.bitPattern), "outputs, mode \(i)")
            XCTAssertTrue(grads[i].allSatisfy(\.isFinite))
            XCTAssertEqual(grads[i], grads[0], "∂x, mode \(i)")
        }
        // The transposed convolution's fused ReLU, the same way.
        let tv = r.uniform([3, 3, 16, 16], grad: false).scalars
        var touts: [[Float]] = [], tgrads: [[Float]] = []
        for fused in [false, true] {
            let x = Tensor(shape: xs, scalars: xv, requiresGrad: true)
            let k = Tensor(shape: [3, 3, 16, 16], scalars: tv, requiresGrad: true)
            let out = fused ? Tensor.conv2dTranspose(x, kernel: k, strides: (2, 2), padding: .same, fusedReLU: true)
                            : Tensor.conv2dTranspose(x, kernel: k, strides: (2, 2), padding: .same).relu()
            var sr = TestRandom(seed: 13)
            out.backward(seed: sr.uniform(out.shape, grad: false))
            touts.append(out.scalars)
            tgrads.append(x.grad!.scalars)
        }
        XCTAssertGreaterThan(touts[0].filter(\.isNaN).count, 0)
        XCTAssertEqual(touts[1].map(\.bitPattern), touts[0].map(\.bitPattern), "transposed outputs")
        XCTAssertEqual(tgrads[1], tgrads[0], "transposed ∂x")
    }

    /// The in-place ReLU helpers on SIMD blocks and the scalar tail alike: −0 and negatives become
    /// +0, NaN stays NaN; the gradient passes only where the output is > 0 (not at 0, −0 or NaN).
    func testReLUHelpersOnSignedZeroAndNaN() {
        let values: [Float] = [-0.0, .nan, -1, 2, 0, 3, -.infinity, .infinity, -0.0, .nan, 5]   // 8 SIMD lanes + 3 tail
        var x = values
        x.withUnsafeMutableBufferPointer { reluInPlace($0.baseAddress!, count: $0.count) }
        let expected: [Float] = [0, .nan, 0, 2, 0, 3, 0, .infinity, 0, .nan, 5]
        XCTAssertEqual(x.map(\.bitPattern), expected.map(\.bitPattern))
        var g = [Float](repeating: 1, count: values.count)
        g.withUnsafeMutableBufferPointer { gp in
            values.withUnsafeBufferPointer { maskReLUGradient(gp.baseAddress!, output: $0.baseAddress!, count: $0.count) }
        }
        XCTAssertEqual(g, [0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1])
    }

    // MARK: Winograd

    /// 3×3 and 5×5 stride-1 convolutions with ≥ 16 channels take the Winograd path (F(4×4, 3×3),
    /// F(4×4, 5×5)); its values match direct loops in Double for same, valid and asymmetric explicit
    /// padding, output sizes that are not multiples of the tile (partial edge tiles), channel counts
    /// that are not multiples of 8, and a batch of 2.
    func testWinogradForwardMatchesDirectLoops() {
        let cases: [(x: [Int], k: Int, cout: Int, padding: Padding, bias: Bool)] = [
            ([1, 6, 8, 16], 3, 16, .same, true),
            ([2, 7, 5, 17], 3, 19, .same, false),
            ([1, 9, 6, 24], 3, 32, .valid, true),
            ([1, 5, 7, 16], 3, 16, .explicit(top: 2, bottom: 0, left: 0, right: 1), true),
            ([1, 3, 3, 16], 3, 24, .same, false),
            ([2, 8, 7, 16], 5, 16, .same, true),
            ([1, 9, 10, 20], 5, 17, .valid, false),
            ([1, 5, 6, 16], 5, 16, .explicit(top: 1, bottom: 3, left: 2, right: 0), true),
        ]
        for (ci, c) in cases.enumerated() {
            let label = "winograd \(c.x) k\(c.k) → \(c.cout) \(c.padding)"
            let t = inputs(c.x, [c.k, c.k, c.x[3], c.cout], biasCount: c.cout, seed: UInt64(500 + ci))
            let size = Tensor.convolutionOutputSize(inputHeight: c.x[1], inputWidth: c.x[2], kernel: (c.k, c.k),
                                                    strides: (1, 1), padding: c.padding)
            let out = Tensor.conv2d(t[0], kernel: t[1], bias: c.bias ? t[2] : nil, padding: c.padding)
            let expected = Self.directConv(t[0], t[1], c.bias ? t[2] : nil, strides: (1, 1), padTop: size.padTop,
                                           padLeft: size.padLeft, outH: size.height, outW: size.width)
            assertClose(out.scalars, expected, atol: 1e-4, rtol: 1e-4, label)
        }
    }

    /// Accuracy at the channel depth of the book's models (256 channels in, so 2,304 or 6,400 terms
    /// per output): the largest error against Double direct loops, relative to the output's RMS,
    /// stays below 1e-4 (about 25× the im2col path's own error; half-precision rounding is 5e-4).
    func testWinogradAccuracyAtDepth() {
        var r = TestRandom(seed: 71)
        for k in [3, 5] {
            let x = r.uniform([1, 12, 11, 256], grad: false), kernel = r.uniform([k, k, 256, 16], grad: false)
            let expected = Self.directConv(x, kernel, nil, strides: (1, 1), padTop: k / 2, padLeft: k / 2, outH: 12, outW: 11)
            let rms = (expected.reduce(0) { $0 + $1 * $1 } / Double(expected.count)).squareRoot()
            var errors: [Double] = []
            for enabled in [true, false] {
                Winograd.enabled = enabled
                defer { Winograd.enabled = true }
                let out = Tensor.conv2d(x, kernel: kernel, padding: .same).scalars
                errors.append(zip(out, expected).map { abs(Double($0) - $1) }.max()! / rms)
            }
            // Measured: 3×3 3.1e-5, 5×5 3.7e-5 (im2col 1.4e-6, 1.2e-6): about 2⁻¹⁵ of the RMS.
            XCTAssertLessThan(errors[0], 1e-4, "Winograd \(k)×\(k) error relative to the output RMS (im2col: \(errors[1]))")
        }
    }

    /// Which convolutions take the Winograd path, and proof that the tests above exercise it: with
    /// it on, eligible outputs differ (by rounding) from the im2col path's.
    func testWinogradEligibilityAndPathTaken() {
        func geometry(k: (Int, Int), stride: Int = 1, dilation: Int = 1, cin: Int = 16) -> ConvGeometry {
            ConvGeometry(batch: 1, inH: 9, inW: 9, channels: cin, outH: 9, outW: 9, kH: k.0, kW: k.1, strideH: stride,
                         strideW: stride, padTop: 1, padLeft: 1, dilationH: dilation, dilationW: dilation)
        }
        XCTAssertTrue(winogradApplies(geometry(k: (3, 3)), outputChannels: 16))
        XCTAssertTrue(winogradApplies(geometry(k: (5, 5)), outputChannels: 16))
        XCTAssertFalse(winogradApplies(geometry(k: (3, 3), stride: 2), outputChannels: 16))
        XCTAssertFalse(winogradApplies(geometry(k: (3, 3), dilation: 2), outputChannels: 16))
        XCTAssertFalse(winogradApplies(geometry(k: (3, 3), cin: 15), outputChannels: 16))
        XCTAssertFalse(winogradApplies(geometry(k: (3, 3)), outputChannels: 15))
        XCTAssertFalse(winogradApplies(geometry(k: (3, 5)), outputChannels: 16))
        XCTAssertFalse(winogradApplies(geometry(k: (7, 7)), outputChannels: 16))
        XCTAssertFalse(winogradApplies(geometry(k: (1, 1)), outputChannels: 16))
        var r = TestRandom(seed: 91)
        for k in [3, 5] {
            let x = r.uniform([1, 9, 8, 32], grad: false), kernel = r.uniform([k, k, 32, 16], grad: false)
            let on = Tensor.conv2d(x, kernel: kernel, padding: .same).scalars
            Winograd.enabled = false
            let off = Tensor.conv2d(x, kernel: kernel, padding: .same).scalars
            Winograd.enabled = true
            XCTAssertNotEqual(on, off, "\(k)×\(k): the Winograd path was not taken")
            // Outputs have RMS ≈ 9 here: 1e-3 is about 1e-4 of it.
            assertClose(on, off.map(Double.init), atol: 1e-3, rtol: 1e-4, "\(k)×\(k) Winograd vs im2col")
        }
    }

    /// Different thread counts give bit-identical output, ∂x and ∂kernel (the thread split never
    /// changes a sum's order); many chunks of tiles (a tiny scratch limit) agree to rounding.
    func testWinogradChunksAndThreadsAreBitIdentical() {
        let savedBytes = Winograd.chunkBytes, savedThreads = Threads.count
        defer { Winograd.chunkBytes = savedBytes; Threads.count = savedThreads }
        var r = TestRandom(seed: 93)
        for k in [3, 5] {
            let x = r.uniform([2, 23, 19, 16]), kernel = r.uniform([k, k, 16, 16])
            let seed = r.uniform([2, 23, 19, 16], grad: false)
            var results: [[Float]] = []
            for (bytes, threads) in [(savedBytes, 1), (savedBytes, 2), (savedBytes, 3), (savedBytes, 7), (1, 1), (1, 3)] {
                Winograd.chunkBytes = bytes
                Threads.count = threads
                x.grad = nil; kernel.grad = nil
                let out = Tensor.conv2d(x, kernel: kernel, padding: .same)
                out.backward(seed: seed)
                results.append(out.scalars + x.grad!.scalars + kernel.grad!.scalars)
            }
            // Thread counts: bit-identical. Smaller chunks regroup the kernel gradient's tile sums:
            // equal to rounding.
            for i in 1...3 { XCTAssertEqual(results[i], results[0], "\(k)×\(k) threads variant \(i)") }
            XCTAssertEqual(results[5], results[4], "\(k)×\(k) small chunks, 1 vs 3 threads")
            assertClose(results[4], results[0].map(Double.init), atol: 1e-4, rtol: 1e-4, "\(k)×\(k) small chunks")
        }
    }

    /// The 1-D transforms compute a correlation exactly (in Double-size tolerance): y = Aᵀ[(G g) ⊙ (Bᵀ d)].
    func testWinogradTransformsAreCorrelations() {
        for (m, r) in [(2, 3), (4, 3), (2, 5), (4, 5)] {
            let w = WinogradTransform(m: m, r: r)
            var rng = TestRandom(seed: UInt64(m * 10 + r))
            let d = rng.uniform([w.alpha], grad: false).scalars, g = rng.uniform([r], grad: false).scalars
            var gg = [Float](repeating: 0, count: w.alpha), bd = [Float](repeating: 0, count: w.alpha)
            for j in 0..<w.alpha {
                for k in 0..<r { gg[j] += w.g[j * r + k] * g[k] }
                for k in 0..<w.alpha { bd[j] += w.bt[j * w.alpha + k] * d[k] }
            }
            for i in 0..<m {
                var y: Float = 0
                for j in 0..<w.alpha { y += w.at[i * w.alpha + j] * gg[j] * bd[j] }
                var direct: Float = 0
                for k in 0..<r { direct += d[i + k] * g[k] }
                XCTAssertEqual(y, direct, accuracy: 1e-5, "F(\(m), \(r)) output \(i)")
            }
        }
    }

    /// The generic (any α) tile transforms, used for tiles other than 6×6, through F(2×2, 3×3):
    /// output and kernel gradient equal the im2col path's.
    func testGenericWinogradTransforms() {
        var r = TestRandom(seed: 61)
        let x = r.uniform([2, 7, 5, 16], grad: false), kernel = r.uniform([3, 3, 16, 20], grad: false)
        let gOut = r.uniform([2, 7, 5, 20], grad: false)
        let geometry = ConvGeometry(batch: 2, inH: 7, inW: 5, channels: 16, outH: 7, outW: 5, kH: 3, kW: 3,
                                    strideH: 1, strideW: 1, padTop: 1, padLeft: 1, dilationH: 1, dilationW: 1)
        let w = WinogradTransform(m: 2, r: 3)
        var u = [Float](repeating: 0, count: 16 * 16 * 20), out = [Float](repeating: 0, count: 2 * 7 * 5 * 20)
        var dk = [Float](repeating: 0, count: 3 * 3 * 16 * 20)
        x.withUnsafeBufferPointer { xp in kernel.withUnsafeBufferPointer { kp in gOut.withUnsafeBufferPointer { gp in
            winogradTransformKernel(w, kp.baseAddress!, cin: 16, cout: 20, into: &u)
            winogradConvolution(w, geometry, image: xp.baseAddress!, u: u, cout: 20, out: &out, accumulate: false)
            winogradKernelGradient(w, geometry, image: xp.baseAddress!, gradOut: gp.baseAddress!, cout: 20, into: &dk)
        } } }
        Winograd.enabled = false
        defer { Winograd.enabled = true }
        let xr = Tensor(shape: x.shape, scalars: x.scalars), kr = Tensor(shape: kernel.shape, scalars: kernel.scalars, requiresGrad: true)
        let reference = Tensor.conv2d(xr, kernel: kr, padding: .same)
        reference.backward(seed: gOut)
        assertClose(out, reference.scalars.map(Double.init), atol: 1e-4, rtol: 1e-4, "F(2×2, 3×3) output")
        assertClose(dk, kr.grad!.scalars.map(Double.init), atol: 1e-4, rtol: 1e-4, "F(2×2, 3×3) kernel gradient")
    }

    /// Winograd ∂x (the forward path on ∂out with the rotated kernel) and ∂kernel (Gᵀ[Σ V ⊙ A∂YAᵀ]G)
    /// equal the im2col path's, for 3×3 and 5×5 and both paddings, and pass the finite-difference check.
    func testWinogradGradients() {
        var r = TestRandom(seed: 51)
        for k in [3, 5] {
            let x = r.uniform([2, 7, 6, 16]), kernel = r.uniform([k, k, 16, 20]), b = r.uniform([20])
            for padding in [Padding.same, .valid] {
                var results: [[Float]] = []
                for enabled in [true, false] {
                    Winograd.enabled = enabled
                    defer { Winograd.enabled = true }
                    for t in [x, kernel, b] { t.grad = nil }
                    let out = Tensor.conv2d(x, kernel: kernel, bias: b, padding: padding)
                    var sr = TestRandom(seed: 8)
                    out.backward(seed: sr.uniform(out.shape, grad: false))
                    results.append(out.scalars + x.grad!.scalars + kernel.grad!.scalars)
                }
                assertClose(results[0], results[1].map(Double.init), atol: 1e-4, rtol: 1e-4, "winograd vs im2col k\(k) \(padding)")
            }
        }
        // Central differences of the exact (im2col) forward along random directions, against the
        // Winograd ∂x and ∂kernel (the loss is linear in each, so the differences are exact up to
        // rounding; Winograd's own forward rounding, ~3e-5 of the RMS, would swamp a small step).
        for k in [3, 5] {
            let x = r.uniform([1, 5, 6, 16]), kernel = r.uniform([k, k, 16, 16])
            let out = Tensor.conv2d(x, kernel: kernel, padding: .same)
            let weights = r.uniform(out.shape, grad: false)
            x.grad = nil; kernel.grad = nil
            out.backward(seed: weights)
            let dx = x.grad!.scalars, dk = kernel.grad!.scalars
            func loss(_ xv: [Float], _ kv: [Float]) -> Double {
                Winograd.enabled = false
                defer { Winograd.enabled = true }
                let o = withNoGrad { Tensor.conv2d(Tensor(shape: x.shape, scalars: xv), kernel: Tensor(shape: kernel.shape, scalars: kv), padding: .same) }
                return zip(o.scalars, weights.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            for trial in 0..<6 {
                let alongX = trial % 2 == 0
                let dir = r.uniform(alongX ? x.shape : kernel.shape, grad: false).scalars
                let eps: Float = 1e-2
                func step(_ v: [Float], _ sign: Float) -> [Float] { zip(v, dir).map { $0 + sign * eps * $1 } }
                let numeric = alongX
                    ? (loss(step(x.scalars, 1), kernel.scalars) - loss(step(x.scalars, -1), kernel.scalars)) / (2 * Double(eps))
                    : (loss(x.scalars, step(kernel.scalars, 1)) - loss(x.scalars, step(kernel.scalars, -1))) / (2 * Double(eps))
                let exact = zip(alongX ? dx : dk, dir).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                XCTAssertEqual(exact, numeric, accuracy: 1e-3 * max(1, abs(numeric)),
                               "winograd \(alongX ? "∂x" : "∂kernel") \(k)×\(k) along a random direction")
            }
        }
    }
}
