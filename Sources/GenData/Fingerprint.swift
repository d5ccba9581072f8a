import Foundation

/// The 64-bit FNV-1a hash (Fowler–Noll–Vo), fed incrementally: a cheap, stable fingerprint of
/// training data, stored in checkpoints so that a resume with other data is refused. Not a
/// cryptographic hash: it tells accidental differences apart, nothing more.
///
/// Feeding bytes in pieces gives the same value as feeding them at once; the value depends only
/// on the bytes (multi-byte values are fed little-endian).
public struct FNV1a64: Equatable {
    /// The hash of the bytes fed so far (the FNV offset basis before any).
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let prime: UInt64 = 0x100_0000_01b3

    /// An empty hash.
    public init() {}

    /// Feeds `bytes`.
    public mutating func combine(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        let p = base.assumingMemoryBound(to: UInt8.self)
        var h = value
        for i in 0..<bytes.count { h = (h ^ UInt64(p[i])) &* Self.prime }
        value = h
    }

    /// Feeds the elements of `array` as they lie in memory (e.g. 4 little-endian bytes a `Float`).
    public mutating func combine<Element: BitwiseCopyable>(_ array: [Element]) {
        array.withUnsafeBytes { combine($0) }
    }

    /// Feeds the bytes of `data`.
    public mutating func combine(_ data: Data) {
        data.withUnsafeBytes { combine($0) }
    }

    /// Feeds the 8 bytes of `word`, little-endian.
    public mutating func combine(_ word: UInt64) {
        withUnsafeBytes(of: word.littleEndian) { combine($0) }
    }

    /// The value as 16 lowercase hexadecimal digits, for checkpoints and messages.
    public var hex: String { Self.hex(value) }

    /// `value` as 16 lowercase hexadecimal digits.
    public static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}
