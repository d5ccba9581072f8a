import Foundation

// Pooling, nearest-neighbour upsampling, dropout and flattening on NHWC feature maps.
// Each op's pullback sits beside its forward kernel.
//
// Window geometry follows PyTorch (`torch.nn.MaxPool2d` / `AvgPool2d`, including `ceil_mode`) for
// `.valid` and `.explicit` padding, and Keras/TensorFlow for `.same` (output ⌈H/s⌉, the extra
// padding going to the bottom/right).

/// Where the pooling windows of one spatial axis lie.
public struct PoolAxisGeometry: Equatable {
    /// Number of windows (output extent).
    public var outputSize: Int
    /// Zero/−∞ padding before the first input element.
    public var padBefore: Int
    /// Padding after the last input element (for `countIncludePad`; windows may reach past it in ceil mode).
    public var padAfter: Int
}

extension Tensor {
    /// Output extent and padding of one axis of a pooling window.
    ///
    /// - `.valid`: `⌊(n − k)/s⌋ + 1` windows (`⌈(n − k)/s⌉ + 1` with `ceilMode`).
    /// - `.explicit(before, after)`: the same on `n + before + after`.
    /// - `.same`: `⌈n/s⌉` windows with `max((out − 1)s + k − n, 0)` padding, half (rounded down) before.
    ///
    /// With `ceilMode` the last window must start inside the input or the leading padding
    /// (PyTorch's rule: drop it when `(out − 1)·s ≥ n + before`). `ceilMode` has no effect on `.same`.
    public static func poolAxisGeometry(inputSize n: Int, kernel k: Int, stride s: Int,
                                        padBefore: Int, padAfter: Int, same: Bool, ceilMode: Bool) -> PoolAxisGeometry {
        if same {
            let out = (n + s - 1) / s
            let total = max((out - 1) * s + k - n, 0)
            return PoolAxisGeometry(outputSize: out, padBefore: total / 2, padAfter: total - total / 2)
        }
        let span = n + padBefore + padAfter - k
        guard span >= 0 else { return PoolAxisGeometry(outputSize: 0, padBefore: padBefore, padAfter: padAfter) }
        var out = (ceilMode ? (span + s - 1) / s : span / s) + 1
        if ceilMode && (out - 1) * s >= n + padBefore { out -= 1 }
        return PoolAxisGeometry(outputSize: out, padBefore: padBefore, padAfter: padAfter)
    }

    /// Both axes' geometry for a pooling op; checks the arguments (precondition naming `op`).
    static func poolGeometry(_ op: String, input shape: [Int], poolSize: (Int, Int), strides: (Int, Int),
                             padding: Padding, ceilMode: Bool) -> (h: PoolAxisGeometry, w: PoolAxisGeometry) {
        precondition(shape.count == 4, "\(op): input must be NHWC [N, H, W, C], got \(shape)")
        precondition(poolSize.0 > 0 && poolSize.1 > 0 && strides.0 > 0 && strides.1 > 0,
                     "\(op): pool size \(poolSize) and strides \(strides) must be positive")
        let (ph0, ph1, pw0, pw1): (Int, Int, Int, Int)
        var same = false
        switch padding {
        case .valid: (ph0, ph1, pw0, pw1) = (0, 0, 0, 0)
        case .same: (ph0, ph1, pw0, pw1) = (0, 0, 0, 0); same = true
        case let .explicit(top, bottom, left, right):
            precondition(top >= 0 && bottom >= 0 && left >= 0 && right >= 0
                         && top < poolSize.0 && bottom < poolSize.0 && left < poolSize.1 && right < poolSize.1,
                         "\(op): padding \(padding) must be non-negative and smaller than the pool size \(poolSize)")
            (ph0, ph1, pw0, pw1) = (top, bottom, left, right)
        }
        let gh = poolAxisGeometry(inputSize: shape[1], kernel: poolSize.0, stride: strides.0,
                                  padBefore: ph0, padAfter: ph1, same: same, ceilMode: ceilMode)
        let gw = poolAxisGeometry(inputSize: shape[2], kernel: poolSize.1, stride: strides.1,
                                  padBefore: pw0, padAfter: pw1, same: same, ceilMode: ceilMode)
        precondition(gh.outputSize > 0 && gw.outputSize > 0,
                     "\(op): pool \(poolSize) strides \(strides) padding \(padding) leave no output for input \(shape)")
        return (gh, gw)
    }

    /// 2-D max pooling over NHWC windows (Keras `MaxPooling2D`, PyTorch `MaxPool2d`).
    ///
    /// `y[n, i, j, c] = max over the window (i·sh − padTop + a, j·sw − padLeft + b), 0 ≤ a < kh, 0 ≤ b < kw,
    /// of the input positions inside the image` (padding never wins; PyTorch pads with −∞).
    ///
    /// - Parameters:
    ///   - poolSize: window `(kh, kw)`.
    ///   - strides: `(sh, sw)`; defaults to `poolSize` (Keras and PyTorch).
    ///   - padding: `.valid`, `.same` (TensorFlow) or `.explicit` (PyTorch `padding`, each below the pool size).
    ///   - ceilMode: PyTorch `ceil_mode` (torchvision SqueezeNet and GoogLeNet/Inception use 3×3, stride 2, ceil mode).
    /// - Returns: `[N, OH, OW, C]`, see ``poolAxisGeometry(inputSize:kernel:stride:padBefore:padAfter:same:ceilMode:)``.
    ///   The gradient goes to the first maximum of each window (row-major order), as in PyTorch.
    public func maxPool2d(poolSize: (Int, Int), strides: (Int, Int)? = nil, padding: Padding = .valid,
                          ceilMode: Bool = false) -> Tensor {
        let st = strides ?? poolSize
        let (gh, gw) = Tensor.poolGeometry("maxPool2d", input: shape, poolSize: poolSize, strides: st,
                                           padding: padding, ceilMode: ceilMode)
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        let (oh, ow) = (gh.outputSize, gw.outputSize)
        let outCount = n * oh * ow * c
        let out = TensorStorage(count: outCount)
        let argmax = UnsafeMutablePointer<Int32>.allocate(capacity: max(outCount, 1))
        precondition(count < Int(Int32.max), "maxPool2d: input \(shape) too large for 32-bit indices")
        let x = storage.base, o = out.base
        let (kh, kw) = poolSize
        parallelFor(n * oh, cost: ow * c * kh * kw) { r in
            for row in r {
                let b = row / oh, i = row % oh
                let h0 = i * st.0 - gh.padBefore
                let hLo = max(h0, 0), hHi = min(h0 + kh, h)
                for j in 0..<ow {
                    let w0 = j * st.1 - gw.padBefore
                    let wLo = max(w0, 0), wHi = min(w0 + kw, w)
                    let ob = o + ((row * ow) + j) * c, ab = argmax + ((row * ow) + j) * c
                    if hLo >= hHi || wLo >= wHi {
                        for ch in 0..<c { ob[ch] = 0; ab[ch] = -1 }
                        continue
                    }
                    // Eight channels at a time: start from the window's first position, replace
                    // where a later value is larger (or NaN), so the first maximum keeps its index.
                    var ch = 0
                    let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
                    while ch + 8 <= c {
                        let first = ((b * h + hLo) * w + wLo) * c + ch
                        var best = load8(x + first), index = SIMD8<Int32>(repeating: Int32(first)) &+ lanes
                        for hh in hLo..<hHi {
                            for ww in wLo..<wHi where hh != hLo || ww != wLo {
                                let at = ((b * h + hh) * w + ww) * c + ch
                                let v = load8(x + at)
                                let wins = (v .> best) .| (v .!= v)
                                best.replace(with: v, where: wins)
                                index.replace(with: SIMD8<Int32>(repeating: Int32(at)) &+ lanes, where: wins)
                            }
                        }
                        store8(best, ob + ch)
                        UnsafeMutableRawPointer(ab + ch).storeBytes(of: index, as: SIMD8<Int32>.self)
                        ch += 8
                    }
                    for ch in ch..<c { ob[ch] = -.infinity; ab[ch] = -1 }
                    if ch < c {
                        for hh in hLo..<hHi {
                            for ww in wLo..<wHi {
                                let base = ((b * h + hh) * w + ww) * c
                                let xb = x + base
                                for ch in ch..<c {
                                    let v = xb[ch]
                                    if v > ob[ch] || (ab[ch] < 0) || v.isNaN { ob[ch] = v; ab[ch] = Int32(base + ch) }
                                }
                            }
                        }
                    }
                }
            }
        }
        let owner = IndexOwner(argmax)
        return Tensor.result(shape: [n, oh, ow, c], storage: out, inputs: [self]) { [self] g in
            let idx = owner.pointer
            let perImage = oh * ow * c
            self.accumulateGrad { d in
                // Windows of one image may overlap; images are disjoint, so split by image.
                parallelFor(n, cost: perImage) { r in
                    for b in r {
                        for e in (b * perImage)..<((b + 1) * perImage) where idx[e] >= 0 {
                            d[Int(idx[e])] += g[e]
                        }
                    }
                }
            }
        }
    }

    /// 2-D average pooling over NHWC windows (Keras `AveragePooling2D`, PyTorch `AvgPool2d`).
    ///
    /// `y[n, i, j, c] = Σ_window x / divisor`, where the window is clipped to the input. The divisor is
    /// the number of input positions in the window, or with `countIncludePad` the window clipped to the
    /// padded input (PyTorch's default `count_include_pad=True`; padding counts as zeros).
    /// Keras `padding="same"` corresponds to `countIncludePad: false`.
    ///
    /// - Parameters: as ``maxPool2d(poolSize:strides:padding:ceilMode:)``.
    /// - Returns: `[N, OH, OW, C]`.
    public func averagePool2d(poolSize: (Int, Int), strides: (Int, Int)? = nil, padding: Padding = .valid,
                              ceilMode: Bool = false, countIncludePad: Bool = true) -> Tensor {
        let st = strides ?? poolSize
        let (gh, gw) = Tensor.poolGeometry("averagePool2d", input: shape, poolSize: poolSize, strides: st,
                                           padding: padding, ceilMode: ceilMode)
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        let (oh, ow) = (gh.outputSize, gw.outputSize)
        let (kh, kw) = poolSize
        // Per output position (i, j): clipped window and 1/divisor (shared by every image and channel).
        struct Window { var hLo, hHi, wLo, wHi: Int; var scale: Float }
        var windows = [Window]()
        windows.reserveCapacity(oh * ow)
        for i in 0..<oh {
            let h0 = i * st.0 - gh.padBefore
            let hLo = max(h0, 0), hHi = min(h0 + kh, h)
            let hPadded = min(h0 + kh, h + gh.padAfter) - h0
            for j in 0..<ow {
                let w0 = j * st.1 - gw.padBefore
                let wLo = max(w0, 0), wHi = min(w0 + kw, w)
                let wPadded = min(w0 + kw, w + gw.padAfter) - w0
                let inside = max(hHi - hLo, 0) * max(wHi - wLo, 0)
                let divisor = countIncludePad ? hPadded * wPadded : inside
                windows.append(Window(hLo: hLo, hHi: hHi, wLo: wLo, wHi: wHi,
                                      scale: divisor > 0 ? 1 / Float(divisor) : 0))
            }
        }
        let out = TensorStorage(count: n * oh * ow * c)
        let x = storage.base, o = out.base
        windows.withUnsafeBufferPointer { win in
            parallelFor(n * oh, cost: ow * c * kh * kw) { r in
                for row in r {
                    let b = row / oh, i = row % oh
                    for j in 0..<ow {
                        let wd = win[i * ow + j]
                        let ob = o + ((row * ow) + j) * c
                        for ch in 0..<c { ob[ch] = 0 }
                        for hh in wd.hLo..<max(wd.hHi, wd.hLo) {
                            for ww in wd.wLo..<max(wd.wHi, wd.wLo) {
                                let xb = x + ((b * h + hh) * w + ww) * c
                                for ch in 0..<c { ob[ch] += xb[ch] }
                            }
                        }
                        for ch in 0..<c { ob[ch] *= wd.scale }
                    }
                }
            }
        }
        return Tensor.result(shape: [n, oh, ow, c], storage: out, inputs: [self]) { [self] g in
            self.accumulateGrad { d in
                windows.withUnsafeBufferPointer { win in
                    parallelFor(n, cost: oh * ow * c * kh * kw) { r in
                        for b in r {
                            for i in 0..<oh {
                                for j in 0..<ow {
                                    let wd = win[i * ow + j]
                                    let gb = g + (((b * oh + i) * ow) + j) * c
                                    for hh in wd.hLo..<max(wd.hHi, wd.hLo) {
                                        for ww in wd.wLo..<max(wd.wHi, wd.wLo) {
                                            let db = d + ((b * h + hh) * w + ww) * c
                                            for ch in 0..<c { db[ch] += gb[ch] * wd.scale }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Mean over the spatial axes of an NHWC map (Keras `GlobalAveragePooling2D`,
    /// PyTorch `AdaptiveAvgPool2d(1)` + flatten): `[N, H, W, C] → [N, C]`, `y[n, c] = (1/HW) Σ_{h,w} x[n, h, w, c]`.
    public func globalAveragePool2d() -> Tensor {
        precondition(rank == 4, "globalAveragePool2d: input must be NHWC [N, H, W, C], got \(shape)")
        let (n, hw, c) = (shape[0], shape[1] * shape[2], shape[3])
        precondition(hw > 0, "globalAveragePool2d: empty spatial extent in \(shape)")
        let scale = 1 / Float(hw)
        let out = TensorStorage(count: n * c)
        let x = storage.base, o = out.base
        parallelFor(n, cost: hw * c) { r in
            for b in r {
                let ob = o + b * c
                var acc = [Double](repeating: 0, count: c)
                for p in 0..<hw {
                    let xb = x + (b * hw + p) * c
                    for ch in 0..<c { acc[ch] += Double(xb[ch]) }
                }
                for ch in 0..<c { ob[ch] = Float(acc[ch]) * scale }
            }
        }
        return Tensor.result(shape: [n, c], storage: out, inputs: [self]) { [self] g in
            self.accumulateGrad { d in
                parallelFor(n, cost: hw * c) { r in
                    for b in r {
                        let gb = g + b * c
                        for p in 0..<hw {
                            let db = d + (b * hw + p) * c
                            for ch in 0..<c { db[ch] += gb[ch] * scale }
                        }
                    }
                }
            }
        }
    }

    /// Nearest-neighbour upsampling of an NHWC map (Keras `UpSampling2D`, interpolation `"nearest"`):
    /// `[N, H, W, C] → [N, H·sh, W·sw, C]`, `y[n, i, j, c] = x[n, ⌊i/sh⌋, ⌊j/sw⌋, c]`.
    /// The gradient sums each `sh × sw` block.
    public func upSampling2d(size: (Int, Int) = (2, 2)) -> Tensor {
        precondition(rank == 4, "upSampling2d: input must be NHWC [N, H, W, C], got \(shape)")
        precondition(size.0 > 0 && size.1 > 0, "upSampling2d: size \(size) must be positive")
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        let (sh, sw) = size
        let (oh, ow) = (h * sh, w * sw)
        let out = TensorStorage(count: n * oh * ow * c)
        let x = storage.base, o = out.base
        parallelFor(n * oh, cost: ow * c) { r in
            for row in r {
                let b = row / oh, i = row % oh
                let src = x + (b * h + i / sh) * w * c
                let dst = o + row * ow * c
                for j in 0..<ow { (dst + j * c).update(from: src + (j / sw) * c, count: c) }
            }
        }
        return Tensor.result(shape: [n, oh, ow, c], storage: out, inputs: [self]) { [self] g in
            self.accumulateGrad { d in
                parallelFor(n * h, cost: sh * sw * w * c) { r in
                    for row in r {
                        let b = row / h, i = row % h
                        let db = d + row * w * c
                        for a in 0..<sh {
                            let gr = g + ((b * oh) + i * sh + a) * ow * c
                            for j in 0..<ow {
                                let gp = gr + j * c, dp = db + (j / sw) * c
                                for ch in 0..<c { dp[ch] += gp[ch] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Inverted dropout (Srivastava et al., 2014; Keras `Dropout`, PyTorch `nn.Dropout`): in training,
    /// each element is zeroed with probability `rate` and the survivors are scaled by `1/(1 − rate)`,
    /// so the expected value is unchanged; outside training (or with `rate == 0`) it returns `self`.
    ///
    /// Draws one `rng.nextUniform()` per element, in row-major order (element kept when it is ≥ `rate`).
    /// - Precondition: `0 ≤ rate < 1`.
    public func dropout(rate: Float, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        precondition(rate >= 0 && rate < 1, "dropout: rate \(rate) must be in [0, 1)")
        guard training && rate > 0 else { return self }
        let n = count
        let mask = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        let scale = 1 / (1 - rate)
        for i in 0..<n { mask[i] = rng.nextUniform() >= rate ? scale : 0 }
        let out = TensorStorage(count: n)
        let x = storage.base, o = out.base
        parallelFor(n) { r in for i in r { o[i] = x[i] * mask[i] } }
        let owner = PointerOwner(mask)
        return Tensor.result(shape: shape, storage: out, inputs: [self]) { [self] g in
            let m = owner.pointer
            self.accumulateGrad { d in parallelFor(n) { r in for i in r { d[i] += g[i] * m[i] } } }
        }
    }

    /// Flattens every axis after the first: `[N, d1, d2, ...] → [N, d1·d2·...]` (Keras `Flatten`;
    /// row-major, so NHWC maps flatten in (h, w, c) order). Shares storage, as ``reshaped(_:)``.
    public func flattened() -> Tensor {
        precondition(rank >= 1, "flattened: needs a batch axis, got shape \(shape)")
        return reshaped([shape[0], shape.dropFirst().reduce(1, *)])
    }
}

/// Owns an index buffer kept alive by a pullback closure; frees it when the graph is released.
final class IndexOwner {
    let pointer: UnsafeMutablePointer<Int32>
    init(_ p: UnsafeMutablePointer<Int32>) { pointer = p }
    deinit { pointer.deallocate() }
}
