import Foundation

/// The engine's one seeded random number generator: xoshiro256** (Blackman & Vigna, 2018),
/// seeded through SplitMix64. Every run is reproducible from its seed; the full state can be
/// saved into a checkpoint (``state``) and restored exactly.
public struct RandomGenerator: RandomNumberGenerator, Codable, Equatable {
    /// The 256-bit generator state, four words.
    public var state: [UInt64]
    /// A spare standard normal from the last Box–Muller pair, if any (part of the state).
    public var spareNormal: Float?

    /// Seeds the generator. Equal seeds give equal streams.
    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = [splitMix(), splitMix(), splitMix(), splitMix()]
        spareNormal = nil
    }

    /// Restores a saved state: the four words and, for an exact continuation of ``nextNormal()``,
    /// the spare normal held at the time.
    /// - Throws: ``TensorError/invalidValue(_:)`` when `state` does not have four words or is all zero.
    public init(state: [UInt64], spareNormal: Float? = nil) throws {
        guard state.count == 4, state.contains(where: { $0 != 0 }) else {
            throw TensorError.invalidValue("random generator state must be four words, not all zero")
        }
        self.state = state
        self.spareNormal = spareNormal
    }

    /// Decodes a saved generator, validating the state words.
    /// - Throws: `DecodingError.dataCorrupted` for a state that is not four words or is all zero.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let words = try c.decode([UInt64].self, forKey: .state)
        let spare = try c.decodeIfPresent(Float.self, forKey: .spareNormal)
        do {
            try self.init(state: words, spareNormal: spare)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.state], debugDescription: "\(error)"))
        }
    }

    /// Next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    @inlinable func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform integer in `0..<bound` (unbiased). - Precondition: `bound > 0`.
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "nextInt(below:): bound must be positive")
        return Int(next(upperBound: UInt64(bound)))
    }

    /// Uniform float in [0, 1) with 24 random bits.
    @inlinable
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform double in [0, 1) with 53 random bits.
    @inlinable
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal sample (Box–Muller, both values used).
    public mutating func nextNormal() -> Float {
        if let s = spareNormal { spareNormal = nil; return s }
        var u1 = nextDouble()
        while u1 <= .leastNormalMagnitude { u1 = nextDouble() }
        let u2 = nextDouble()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        spareNormal = Float(r * Foundation.sin(2 * .pi * u2))
        return Float(r * Foundation.cos(2 * .pi * u2))
    }

    /// A uniformly random permutation of `0..<n` (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                let j = nextInt(below: i + 1)
                p.swapAt(i, j)
            }
        }
        return p
    }
}

/// Errors from the engine for values that may come from a user (files, options).
public enum TensorError: Error, CustomStringConvertible, Equatable {
    /// A value out of its valid range; the message says which and why.
    case invalidValue(String)
    /// A human-readable message.
    public var description: String {
        switch self { case .invalidValue(let m): return m }
    }
}

extension Tensor {
    /// Uniform random tensor in `[low, high)`.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                               using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(zeros: shape)
        let p = t.storage.base
        for i in 0..<t.count { p[i] = low + (high - low) * rng.nextUniform() }
        return t
    }

    /// Normal random tensor with the given mean and standard deviation.
    public static func normal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
                              using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(zeros: shape)
        let p = t.storage.base
        for i in 0..<t.count { p[i] = mean + standardDeviation * rng.nextNormal() }
        return t
    }
}
