import Foundation

/// Results of ``Tensor/lstm(inputProjection:recurrentKernel:bias:initialHidden:initialCell:)``.
public struct LSTMResult {
    /// Hidden states at every step, `[batch, time, units]`; differentiable.
    public let outputs: Tensor
    /// Hidden state after the last step, `[batch, units]`; differentiable (a slice of `outputs`).
    public let finalHidden: Tensor
    /// Cell state after the last step, `[batch, units]`; detached (for carrying state forward only).
    public let finalCell: Tensor
}

extension Tensor {
    /// A fused long short-term memory layer over a whole sequence (Hochreiter & Schmidhuber, 1997,
    /// with forget gate; Keras gate order and activations):
    ///
    ///     z_t = xp_t + b + h_{t−1} · U            (one GEMM for all four gates, whole batch)
    ///     i = σ(z_i), f = σ(z_f), g = tanh(z_c), o = σ(z_o)
    ///     c_t = f ⊙ c_{t−1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)
    ///
    /// The input projection `xp = x · W` is computed by the caller for all steps at once (a GEMM,
    /// or a row gather for one-hot or embedded inputs). The backward pass runs one GEMM per step for
    /// `∂h_{t−1}` and a single GEMM over all steps for `∂U`.
    ///
    /// - Parameters:
    ///   - inputProjection: `[batch, time, 4·units]`, gate blocks in the order i, f, c, o.
    ///   - recurrentKernel: `U`, `[units, 4·units]`.
    ///   - bias: `[4·units]`.
    ///   - initialHidden: `[batch, units]`, zeros when `nil`.
    ///   - initialCell: `[batch, units]`, zeros when `nil`.
    public static func lstm(inputProjection xp: Tensor, recurrentKernel u: Tensor, bias: Tensor,
                            initialHidden: Tensor? = nil, initialCell: Tensor? = nil) -> LSTMResult {
        precondition(xp.rank == 3 && u.rank == 2 && u.shape[1] == 4 * u.shape[0] && xp.shape[2] == u.shape[1]
                     && bias.shape == [u.shape[1]],
                     "lstm: inputProjection \(xp.shape), recurrentKernel \(u.shape), bias \(bias.shape) do not fit [B,T,4H], [H,4H], [4H]")
        let batch = xp.shape[0], steps = xp.shape[1], h = u.shape[0], g4 = 4 * h
        if let h0 = initialHidden { precondition(h0.shape == [batch, h], "lstm: initialHidden \(h0.shape) vs [\(batch), \(h)]") }
        if let c0 = initialCell { precondition(c0.shape == [batch, h], "lstm: initialCell \(c0.shape) vs [\(batch), \(h)]") }
        let bh = batch * h
        // Time-major scratch kept for the backward pass.
        let acts = PointerOwner(.allocate(capacity: max(steps * batch * g4, 1)))   // post-activation gates
        let cells = PointerOwner(.allocate(capacity: max((steps + 1) * bh, 1)))    // c_{-1} ... c_{T-1}
        let hiddens = PointerOwner(.allocate(capacity: max((steps + 1) * bh, 1)))  // h_{-1} ... h_{T-1}
        if let h0 = initialHidden { hiddens.pointer.update(from: h0.storage.base, count: bh) }
        else { hiddens.pointer.update(repeating: 0, count: bh) }
        if let c0 = initialCell { cells.pointer.update(from: c0.storage.base, count: bh) }
        else { cells.pointer.update(repeating: 0, count: bh) }
        let hasInitialHidden = initialHidden != nil
        let x = xp.storage.base, w = u.storage.base, bp = bias.storage.base
        let rowStride = steps * g4
        for t in 0..<steps {
            let z = acts.pointer + t * batch * g4
            for b in 0..<batch {
                let src = x + b * rowStride + t * g4, dst = z + b * g4
                for j in 0..<g4 { dst[j] = src[j] + bp[j] }
            }
            if t > 0 || hasInitialHidden {
                gemm(m: batch, n: g4, k: h, a: hiddens.pointer + t * bh, b: w, beta: 1, c: z)
            }
            let cPrev = cells.pointer + t * bh, cNext = cells.pointer + (t + 1) * bh
            let hNext = hiddens.pointer + (t + 1) * bh
            parallelFor(batch, cost: h * 60) { r in
                for b in r {
                    let zr = z + b * g4
                    let cp = cPrev + b * h, cn = cNext + b * h, hn = hNext + b * h
                    for j in 0..<h {
                        let i = fastSigmoid(zr[j]), f = fastSigmoid(zr[h + j])
                        let g = fastTanh(zr[2 * h + j]), o = fastSigmoid(zr[3 * h + j])
                        zr[j] = i; zr[h + j] = f; zr[2 * h + j] = g; zr[3 * h + j] = o
                        let c = f * cp[j] + i * g
                        cn[j] = c
                        hn[j] = o * fastTanh(c)
                    }
                }
            }
        }
        // Outputs in [batch, time, units] layout.
        let out = TensorStorage(count: batch * steps * h)
        for t in 0..<steps {
            let src = hiddens.pointer + (t + 1) * bh
            for b in 0..<batch { (out.base + (b * steps + t) * h).update(from: src + b * h, count: h) }
        }
        let finalCell = Tensor(zeros: [batch, h])
        finalCell.storage.base.update(from: cells.pointer + steps * bh, count: bh)
        var inputs = [xp, u, bias]
        if let h0 = initialHidden { inputs.append(h0) }
        if let c0 = initialCell { inputs.append(c0) }
        let outputs = result(shape: [batch, steps, h], storage: out, inputs: inputs) { gOut in
            let dGates = UnsafeMutablePointer<Float>.allocate(capacity: max(steps * batch * g4, 1))
            defer { dGates.deallocate() }
            let dh = UnsafeMutablePointer<Float>.allocate(capacity: bh)
            let dc = UnsafeMutablePointer<Float>.allocate(capacity: bh)
            defer { dh.deallocate(); dc.deallocate() }
            dh.update(repeating: 0, count: bh)
            dc.update(repeating: 0, count: bh)
            for t in stride(from: steps - 1, through: 0, by: -1) {
                let a = acts.pointer + t * batch * g4, dz = dGates + t * batch * g4
                let cPrev = cells.pointer + t * bh, cCur = cells.pointer + (t + 1) * bh
                parallelFor(batch, cost: h * 30) { r in
                    for b in r {
                        let ar = a + b * g4, dzr = dz + b * g4, go = gOut + (b * steps + t) * h
                        let dhr = dh + b * h, dcr = dc + b * h, cp = cPrev + b * h, cc = cCur + b * h
                        for j in 0..<h {
                            let i = ar[j], f = ar[h + j], g = ar[2 * h + j], o = ar[3 * h + j]
                            let dhj = dhr[j] + go[j]
                            let tc = fastTanh(cc[j])
                            let dcj = dcr[j] + dhj * o * (1 - tc * tc)
                            dzr[j] = dcj * g * i * (1 - i)
                            dzr[h + j] = dcj * cp[j] * f * (1 - f)
                            dzr[2 * h + j] = dcj * i * (1 - g * g)
                            dzr[3 * h + j] = dhj * tc * o * (1 - o)
                            dcr[j] = dcj * f
                        }
                    }
                }
                // ∂h_{t−1} = ∂z_t · Uᵀ
                gemm(transposeB: true, m: batch, n: h, k: g4, a: dz, b: w, c: dh)
            }
            if xp.requiresGrad {
                xp.accumulateGrad { d in
                    for t in 0..<steps {
                        let src = dGates + t * batch * g4
                        for b in 0..<batch {
                            let dst = d + b * rowStride + t * g4, s = src + b * g4
                            for j in 0..<g4 { dst[j] += s[j] }
                        }
                    }
                }
            }
            if u.requiresGrad {
                // ∂U = Σ_t h_{t−1}ᵀ · ∂z_t as one GEMM over all steps.
                u.accumulateGrad { d in
                    gemm(transposeA: true, m: h, n: g4, k: steps * batch, a: hiddens.pointer, b: dGates, beta: 1, c: d)
                }
            }
            if bias.requiresGrad {
                bias.accumulateGrad { d in
                    for r in 0..<(steps * batch) {
                        let s = dGates + r * g4
                        for j in 0..<g4 { d[j] += s[j] }
                    }
                }
            }
            if let h0 = initialHidden, h0.requiresGrad {
                h0.accumulateGrad { d in for i in 0..<bh { d[i] += dh[i] } }
            }
            if let c0 = initialCell, c0.requiresGrad {
                c0.accumulateGrad { d in for i in 0..<bh { d[i] += dc[i] } }
            }
        }
        let finalHidden = steps > 0 ? outputs.slice(axis: 1, range: (steps - 1)..<steps).reshaped([batch, h])
                                    : (initialHidden ?? Tensor(zeros: [batch, h]))
        return LSTMResult(outputs: outputs, finalHidden: finalHidden, finalCell: finalCell)
    }
}
