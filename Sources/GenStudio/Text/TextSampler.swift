import Foundation
import GenTensor
import GenNN

/// How the next character is drawn from the model's distribution.
public struct SamplingOptions: Equatable {
    /// Softmax temperature T ≥ 0: `p ∝ exp(logit / T)`. T = 0 means greedy (always the most likely
    /// character); T < 1 sharpens, T > 1 flattens (book §8.1.2).
    public var temperature: Float
    /// Keep only the k most likely characters (0 = off). (Fan et al., 2018)
    public var topK: Int
    /// Nucleus sampling: keep the smallest set of most likely characters whose probability
    /// reaches p, in (0, 1]; 1 = off. (Holtzman et al., 2020)
    public var topP: Float

    /// Plain softmax sampling at temperature 1 by default; values as the properties.
    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
    }
}

/// Stateful, allocation-free generation with a trained ``TextModel``: the LSTM state is carried
/// from character to character, so each new character costs one LSTM step per layer (a
/// matrix–vector product for the recurrent kernel and a row gather for the one-hot input) and
/// one Dense projection: O(1) work per character, no re-run of the window.
public final class TextSampler {
    let config: TextModelConfig
    let layers: [(kernel: [Float], recurrent: [Float], bias: [Float], inputSize: Int)]
    let outKernel: [Float]   // [units, vocab]
    let outBias: [Float]     // [vocab]
    var hidden: [[Float]]
    var cell: [[Float]]
    var gates: [Float]
    var input: [Float]
    var logits: [Float]
    var probs: [Float]
    var order: [Int]

    /// Copies the model's weights (later training does not affect the sampler).
    public init(model: TextModel) {
        config = model.config
        layers = model.lstms.map { ($0.kernel.scalars, $0.recurrentKernel.scalars, $0.bias.scalars, $0.inputSize) }
        outKernel = model.output.kernel.scalars
        outBias = model.output.bias?.scalars ?? [Float](repeating: 0, count: model.config.vocabularySize)
        let h = model.config.units
        hidden = Array(repeating: [Float](repeating: 0, count: h), count: model.config.layers)
        cell = hidden
        gates = [Float](repeating: 0, count: 4 * h)
        input = [Float](repeating: 0, count: h)
        logits = [Float](repeating: 0, count: model.config.vocabularySize)
        probs = logits
        order = Array(0..<model.config.vocabularySize)
    }

    /// Zeroes the LSTM state (start of a new text).
    public func reset() {
        for l in 0..<hidden.count {
            for j in 0..<hidden[l].count { hidden[l][j] = 0; cell[l][j] = 0 }
        }
    }

    /// Feeds one token and updates the state; the logits for the next token are then in `logits`.
    /// - Precondition: `token` in `0..<vocabularySize` (callers encode through the vocabulary).
    public func feed(_ token: Int32) {
        let h = config.units, g4 = 4 * h
        for (l, layer) in layers.enumerated() {
            gates.withUnsafeMutableBufferPointer { z in
                layer.bias.withUnsafeBufferPointer { b in
                    layer.kernel.withUnsafeBufferPointer { w in
                        if l == 0 {
                            let row = w.baseAddress! + Int(token) * g4
                            for j in 0..<g4 { z[j] = row[j] + b[j] }
                        } else {
                            for j in 0..<g4 { z[j] = b[j] }
                            input.withUnsafeBufferPointer { x in
                                gemm(m: 1, n: g4, k: h, a: x.baseAddress!, b: w.baseAddress!, beta: 1, c: z.baseAddress!)
                            }
                        }
                    }
                }
                layer.recurrent.withUnsafeBufferPointer { u in
                    hidden[l].withUnsafeBufferPointer { hp in
                        vecMatAdd(hp.baseAddress!, u.baseAddress!, z.baseAddress!, rows: h, cols: g4)
                    }
                }
                hidden[l].withUnsafeMutableBufferPointer { hp in
                    cell[l].withUnsafeMutableBufferPointer { cp in
                        for j in 0..<h {
                            let i = fastSigmoid(z[j]), f = fastSigmoid(z[h + j])
                            let g = fastTanh(z[2 * h + j]), o = fastSigmoid(z[3 * h + j])
                            let c = f * cp[j] + i * g
                            cp[j] = c
                            hp[j] = o * fastTanh(c)
                        }
                    }
                }
            }
            if l + 1 < layers.count { input = hidden[l] }
        }
        let v = config.vocabularySize
        for j in 0..<v { logits[j] = outBias[j] }
        hidden[layers.count - 1].withUnsafeBufferPointer { hp in
            outKernel.withUnsafeBufferPointer { w in
                logits.withUnsafeMutableBufferPointer { o in
                    vecMatAdd(hp.baseAddress!, w.baseAddress!, o.baseAddress!, rows: h, cols: v)
                }
            }
        }
    }

    /// Draws the next token from the current logits.
    public func draw(_ options: SamplingOptions, using rng: inout RandomGenerator) -> Int32 {
        let v = config.vocabularySize
        // T = 0, or a T so small that 1/T overflows (0·∞ would be NaN below): greedy.
        if options.temperature == 0 || v == 1 || !(1 / options.temperature).isFinite {
            var best = 0
            for j in 1..<max(v, 1) where logits[j] > logits[best] { best = j }
            return Int32(best)
        }
        // Tempered softmax with the maximum subtracted: never overflows, never divides by zero.
        var mx = -Float.infinity
        for j in 0..<v { mx = max(mx, logits[j]) }
        let invT = 1 / options.temperature
        var total: Double = 0
        for j in 0..<v {
            let e = Double(fastExp((logits[j] - mx) * invT))
            probs[j] = Float(e)
            total += e
        }
        if options.topK > 0 || options.topP < 1 {
            for j in 0..<v { order[j] = j }
            order.sort { probs[$0] > probs[$1] }
            var keep = options.topK > 0 ? min(options.topK, v) : v
            if options.topP < 1 {
                var acc: Double = 0
                for (rank, j) in order.prefix(keep).enumerated() {
                    acc += Double(probs[j]) / total
                    if acc >= Double(options.topP) { keep = rank + 1; break }
                }
            }
            for j in order[keep...] { probs[j] = 0 }
            total = 0
            for j in order.prefix(keep) { total += Double(probs[j]) }
        }
        let u = rng.nextDouble() * total
        var acc: Double = 0
        var last = 0
        for j in 0..<v where probs[j] > 0 {
            acc += Double(probs[j])
            last = j
            if u < acc { return Int32(j) }
        }
        return Int32(last)
    }

    /// Generates `length` tokens after feeding `prime` (which must be non-empty; callers prime with
    /// a newline or a corpus window when the user gives none).
    public func generate(prime: [Int32], length: Int, options: SamplingOptions,
                         using rng: inout RandomGenerator) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(length)
        generate(prime: prime, length: length, options: options, using: &rng, chunk: max(length, 1)) { out += $0 }
        return out
    }

    /// ``generate(prime:length:options:using:)`` handing the tokens to `emit` as they are drawn, in
    /// pieces of at most `chunk` (≥ 1), so that a long sample can be shown while it is written; the
    /// tokens and the draws from `rng` are those of the other form.
    /// - Throws: what `emit` throws (generation stops there).
    public func generate(prime: [Int32], length: Int, options: SamplingOptions, using rng: inout RandomGenerator,
                         chunk: Int, emit: ([Int32]) throws -> Void) rethrows {
        reset()
        for t in prime { feed(t) }
        var piece: [Int32] = []
        piece.reserveCapacity(min(max(chunk, 1), max(length, 1)))
        for _ in 0..<length {
            let next = draw(options, using: &rng)
            piece.append(next)
            feed(next)
            if piece.count >= chunk { try emit(piece); piece.removeAll(keepingCapacity: true) }
        }
        if !piece.isEmpty { try emit(piece) }
    }
}

/// `y[cols] += x[rows] · W[rows, cols]` (row-major W): a vector–matrix product in a form LLVM
/// vectorises; for the small matrices of single-step sampling it beats a BLAS call's overhead.
@inline(__always)
func vecMatAdd(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let xr = x[r]
        if xr == 0 { continue }
        let wr = w + r * cols
        for c in 0..<cols { y[c] += xr * wr[c] }
    }
}
