import Foundation

/// Results of the fused LSTM op.
public struct LSTMResult {
    /// Hidden states at every step, `[batch, time, units]`; differentiable.
    public let outputs: Tensor
    /// Hidden state after the last step, `[batch, units]`; differentiable (a slice of `outputs`).
    public let finalHidden: Tensor
    /// Cell state after the last step, `[batch, units]`; detached (for carrying state forward only).
    public let finalCell: Tensor
}

/// Where the LSTM's input projection `x_t · W` comes from.
enum LSTMInput {
    /// Precomputed for all steps, `[batch, time, 4·units]`.
    case projected(Tensor)
    /// One-hot input given as token ids `[batch, time]` (row-major): the projection of token `v` is
    /// row `v` of `kernel` `[vocabulary, 4·units]`, read in place (no `[B, T, 4H]` buffer).
    case tokens([Int32], kernel: Tensor)
}

extension Tensor {
    /// A fused long short-term memory layer over a whole sequence (Hochreiter & Schmidhuber, 1997,
    /// with forget gate; Keras gate order and activations):
    ///
    ///     z_t = xp_t + b + h_{t−1} · U            (one GEMM for all four gates, whole batch)
    ///     i = σ(z_i), f = σ(z_f), g = tanh(z_c), o = σ(z_o)
    ///     c_t = f ⊙ c_{t−1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)
    ///
    /// The input projection `xp = x · W` is computed by the caller for all steps at once.
    ///
    /// - Parameters:
    ///   - inputProjection: `[batch, time, 4·units]`, gate blocks in the order i, f, c, o.
    ///   - recurrentKernel: `U`, `[units, 4·units]`.
    ///   - bias: `[4·units]`.
    ///   - initialHidden: `[batch, units]`, zeros when `nil`.
    ///   - initialCell: `[batch, units]`, zeros when `nil`.
    public static func lstm(inputProjection xp: Tensor, recurrentKernel u: Tensor, bias: Tensor,
                            initialHidden: Tensor? = nil, initialCell: Tensor? = nil) -> LSTMResult {
        precondition(xp.rank == 3, "lstm: inputProjection \(xp.shape) is not [B, T, 4H]")
        return lstm(input: .projected(xp), batch: xp.shape[0], steps: xp.shape[1], recurrentKernel: u, bias: bias,
                    initialHidden: initialHidden, initialCell: initialCell)
    }

    /// The fused LSTM on one-hot input given as token ids: a one-hot vector times the input kernel
    /// `W` is one row of `W`, so the input projection is a row read (and its gradient a scatter-add
    /// into those rows), never a matrix product or a `[B, T, 4H]` buffer.
    ///
    /// - Parameters:
    ///   - tokens: `[batch, steps]` row-major, values in `0..<V`.
    ///   - inputKernel: `W`, `[V, 4·units]`.
    ///   - Others as in ``lstm(inputProjection:recurrentKernel:bias:initialHidden:initialCell:)``.
    public static func lstm(tokens: [Int32], batch: Int, steps: Int, inputKernel: Tensor, recurrentKernel u: Tensor,
                            bias: Tensor, initialHidden: Tensor? = nil, initialCell: Tensor? = nil) -> LSTMResult {
        precondition(tokens.count == batch * steps, "lstm: \(tokens.count) tokens for [\(batch), \(steps)]")
        precondition(inputKernel.rank == 2 && inputKernel.shape[1] == u.shape[1],
                     "lstm: input kernel \(inputKernel.shape) does not fit recurrent kernel \(u.shape)")
        let v = inputKernel.shape[0]
        precondition(tokens.allSatisfy { $0 >= 0 && Int($0) < v }, "lstm: token out of range 0..<\(v)")
        return lstm(input: .tokens(tokens, kernel: inputKernel), batch: batch, steps: steps, recurrentKernel: u, bias: bias,
                    initialHidden: initialHidden, initialCell: initialCell)
    }

    static func lstm(input: LSTMInput, batch: Int, steps: Int, recurrentKernel u: Tensor, bias: Tensor,
                     initialHidden: Tensor?, initialCell: Tensor?) -> LSTMResult {
        precondition(u.rank == 2 && u.shape[1] == 4 * u.shape[0] && bias.shape == [u.shape[1]],
                     "lstm: recurrentKernel \(u.shape), bias \(bias.shape) do not fit [H,4H], [4H]")
        let h = u.shape[0], g4 = 4 * h
        if case .projected(let xp) = input {
            precondition(xp.shape == [batch, steps, g4], "lstm: inputProjection \(xp.shape) is not [\(batch), \(steps), \(g4)]")
        }
        if let h0 = initialHidden { precondition(h0.shape == [batch, h], "lstm: initialHidden \(h0.shape) vs [\(batch), \(h)]") }
        if let c0 = initialCell { precondition(c0.shape == [batch, h], "lstm: initialCell \(c0.shape) vs [\(batch), \(h)]") }
        let bh = batch * h
        // Time-major scratch kept for the backward pass.
        let acts = PointerOwner(.allocate(capacity: max(steps * batch * g4, 1)))   // gate activations
        let cells = PointerOwner(.allocate(capacity: max((steps + 1) * bh, 1)))    // c_{-1} ... c_{T-1}
        let tanhCells = PointerOwner(.allocate(capacity: max(steps * bh, 1)))      // tanh(c_t)
        let hiddens = PointerOwner(.allocate(capacity: max((steps + 1) * bh, 1)))  // h_{-1} ... h_{T-1}
        if let h0 = initialHidden { hiddens.pointer.update(from: h0.storage.base, count: bh) }
        else { hiddens.pointer.update(repeating: 0, count: bh) }
        if let c0 = initialCell { cells.pointer.update(from: c0.storage.base, count: bh) }
        else { cells.pointer.update(repeating: 0, count: bh) }
        let hasInitialHidden = initialHidden != nil
        let w = u.storage.base, bp = bias.storage.base
        let parts = batch * steps * g4 * h >= 1 << 16 ? Threads.count : 1

        // Each thread runs every step for its own rows of the batch: no synchronisation per step.
        parallelPartitions(batch, parts: parts) { _, rows in
            let m = rows.count
            for t in 0..<steps {
                let z = acts.pointer + (t * batch + rows.lowerBound) * g4
                for (k, b) in rows.enumerated() {
                    let dst = z + k * g4
                    let src: UnsafePointer<Float>
                    switch input {
                    case .projected(let xp): src = UnsafePointer(xp.storage.base + (b * steps + t) * g4)
                    case .tokens(let tok, let kernel): src = UnsafePointer(kernel.storage.base + Int(tok[b * steps + t]) * g4)
                    }
                    for j in 0..<g4 { dst[j] = src[j] + bp[j] }
                }
                if t > 0 || hasInitialHidden {
                    gemm(m: m, n: g4, k: h, a: hiddens.pointer + t * bh + rows.lowerBound * h, b: w, beta: 1, c: z)
                }
                for (k, b) in rows.enumerated() {
                    lstmForwardRow(z: z + k * g4, cPrev: cells.pointer + t * bh + b * h, c: cells.pointer + (t + 1) * bh + b * h,
                                   tanhC: tanhCells.pointer + t * bh + b * h, h: hiddens.pointer + (t + 1) * bh + b * h, units: h)
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
        var inputs = [u, bias]
        switch input {
        case .projected(let xp): inputs.append(xp)
        case .tokens(_, let kernel): inputs.append(kernel)
        }
        if let h0 = initialHidden { inputs.append(h0) }
        if let c0 = initialCell { inputs.append(c0) }
        let outputs = result(shape: [batch, steps, h], storage: out, inputs: inputs) { gOut in
            let dGates = UnsafeMutablePointer<Float>.allocate(capacity: max(steps * batch * g4, 1))
            defer { dGates.deallocate() }
            let dh = UnsafeMutablePointer<Float>.allocate(capacity: max(bh, 1))
            let dc = UnsafeMutablePointer<Float>.allocate(capacity: max(bh, 1))
            defer { dh.deallocate(); dc.deallocate() }
            dh.update(repeating: 0, count: bh)
            dc.update(repeating: 0, count: bh)
            parallelPartitions(batch, parts: parts) { _, rows in
                let m = rows.count
                for t in stride(from: steps - 1, through: 0, by: -1) {
                    let dz = dGates + (t * batch + rows.lowerBound) * g4
                    for (k, b) in rows.enumerated() {
                        let dhr = dh + b * h, go = gOut + (b * steps + t) * h
                        for j in 0..<h { dhr[j] += go[j] }
                        lstmBackwardRow(a: acts.pointer + (t * batch + b) * g4, tanhC: tanhCells.pointer + t * bh + b * h,
                                        cPrev: cells.pointer + t * bh + b * h, dh: dhr, dc: dc + b * h, dz: dz + k * g4, units: h)
                    }
                    // ∂h_{t−1} = ∂z_t · Uᵀ for these rows.
                    gemm(transposeB: true, m: m, n: h, k: g4, a: dz, b: w, c: dh + rows.lowerBound * h)
                }
            }
            if u.requiresGrad {
                // ∂U = Σ_t h_{t−1}ᵀ · ∂z_t as one GEMM over all steps and rows.
                u.accumulateGrad { d in
                    gemm(transposeA: true, m: h, n: g4, k: steps * batch, a: hiddens.pointer, b: dGates, beta: 1, c: d)
                }
            }
            let rowsTotal = steps * batch
            if bias.requiresGrad {
                bias.accumulateGrad { d in
                    parallelFor(g4, cost: rowsTotal) { cols in
                        for r in 0..<rowsTotal {
                            let s = dGates + r * g4
                            for j in cols { d[j] += s[j] }
                        }
                    }
                }
            }
            switch input {
            case .projected(let xp) where xp.requiresGrad:
                xp.accumulateGrad { d in
                    for t in 0..<steps {
                        for b in 0..<batch {
                            let dst = d + (b * steps + t) * g4, s = dGates + (t * batch + b) * g4
                            for j in 0..<g4 { dst[j] += s[j] }
                        }
                    }
                }
            case .tokens(let tok, let kernel) where kernel.requiresGrad:
                // Scatter-add each step's gate gradient into the row of its token; columns split
                // across threads so no two threads touch the same element.
                kernel.accumulateGrad { d in
                    parallelFor(g4, cost: rowsTotal) { cols in
                        for t in 0..<steps {
                            for b in 0..<batch {
                                let dst = d + Int(tok[b * steps + t]) * g4, s = dGates + (t * batch + b) * g4
                                for j in cols { dst[j] += s[j] }
                            }
                        }
                    }
                }
            default: break
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
