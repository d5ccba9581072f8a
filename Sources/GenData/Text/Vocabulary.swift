import Foundation

/// The symbol set of a character-level text model: the distinct Unicode scalars of a corpus,
/// sorted by scalar value, each mapped to its index (`Int32` token).
///
/// **The unit is the Unicode scalar, not the grapheme cluster (`Character`)**: é (U+00E9), λ,
/// 日 and 😀 are one symbol each; a decomposed "e + U+0301", a flag (two regional indicators)
/// or an emoji ZWJ family are several symbols, which the model learns to emit in sequence.
/// Because line endings are normalised to `"\n"` before symbols are counted, `"\r"` and the
/// one-`Character` `"\r\n"` never become symbols. Every token sequence decodes to valid
/// Unicode (no lone surrogates exist as scalars), so samples are always valid UTF-8.
///
/// Ordering by scalar value makes the vocabulary, and so the token ids, a deterministic
/// function of the set of symbols. `Codable` as a JSON array of scalar values (`[10,32,97]`),
/// the form stored in a checkpoint's `"vocabulary"` metadata.
public struct Vocabulary: Codable, Equatable, CustomStringConvertible {
    /// The symbols, sorted by scalar value, without duplicates. Token `i` is `scalars[i]`.
    public let scalars: [Unicode.Scalar]
    private let indices: [UInt32: Int32]

    /// A vocabulary of the distinct scalars of `symbols` (sorted, duplicates removed).
    public init<S: Sequence>(scalars symbols: S) where S.Element == Unicode.Scalar {
        let unique = Set(symbols.map(\.value)).sorted()
        self.init(sortedUniqueValues: unique)
    }

    /// A vocabulary of the distinct scalars of `text` (line endings are *not* normalised here;
    /// ``TextCorpus`` does that on load).
    public init(text: String) {
        self.init(scalars: text.unicodeScalars)
    }

    /// `values` must be strictly increasing valid scalar values (checked by the callers).
    init(sortedUniqueValues values: [UInt32]) {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(values.count)
        var indices: [UInt32: Int32] = [:]
        indices.reserveCapacity(values.count)
        for v in values {
            guard let s = Unicode.Scalar(v) else { continue }
            indices[v] = Int32(scalars.count)
            scalars.append(s)
        }
        self.scalars = scalars
        self.indices = indices
    }

    /// Number of symbols (the model's input and output size).
    public var count: Int { scalars.count }

    /// The token of `scalar`, or `nil` when it is not in the vocabulary.
    public func index(of scalar: Unicode.Scalar) -> Int32? { indices[scalar.value] }

    /// Whether `scalar` is a symbol of this vocabulary.
    public func contains(_ scalar: Unicode.Scalar) -> Bool { indices[scalar.value] != nil }

    /// The symbol of token `token`.
    /// - Precondition: `0 <= token < count` (tokens come from this vocabulary or a model of its size).
    public func scalar(for token: Int32) -> Unicode.Scalar {
        precondition(token >= 0 && Int(token) < scalars.count,
                     "Vocabulary: token \(token) out of range 0..<\(scalars.count)")
        return scalars[Int(token)]
    }

    /// Tokens of `text`. Line endings are normalised first (`"\r\n"` and a lone `"\r"` become
    /// `"\n"`), as for a corpus, so a prime text typed on Windows encodes like the training text.
    /// - Throws: ``TextError/unknownCharacters(_:)`` listing every distinct symbol that is not in
    ///   the vocabulary, in order of first appearance (each as a one-scalar `Character`).
    public func encode(_ text: String) throws -> [Int32] {
        var tokens: [Int32] = []
        var unknown: [Character] = []
        var seen = Set<UInt32>()
        forEachNormalizedScalar(text) { s in
            if let t = indices[s.value] {
                tokens.append(t)
            } else if seen.insert(s.value).inserted {
                unknown.append(Character(s))
            }
        }
        if !unknown.isEmpty { throw TextError.unknownCharacters(unknown) }
        return tokens
    }

    /// Tokens of `text`, silently dropping symbols that are not in the vocabulary (line endings
    /// normalised as in ``encode(_:)``).
    public func encodeSkippingUnknown(_ text: String) -> [Int32] {
        var tokens: [Int32] = []
        forEachNormalizedScalar(text) { s in
            if let t = indices[s.value] { tokens.append(t) }
        }
        return tokens
    }

    /// The text of `tokens`.
    /// - Precondition: every token is in `0..<count`.
    public func decode<C: Collection>(_ tokens: C) -> String where C.Element == Int32 {
        var view = String.UnicodeScalarView()
        for t in tokens { view.append(scalar(for: t)) }
        return String(view)
    }

    private func forEachNormalizedScalar(_ text: String, _ body: (Unicode.Scalar) -> Void) {
        var previousWasCR = false
        for s in text.unicodeScalars {
            if s == "\r" {
                body("\n")
                previousWasCR = true
                continue
            }
            if s == "\n" && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = false
            body(s)
        }
    }

    /// Equal when the symbol lists are equal.
    public static func == (a: Vocabulary, b: Vocabulary) -> Bool { a.scalars == b.scalars }

    /// The symbols, escaped (`Vocabulary(3: "\n", " ", "a")`).
    public var description: String {
        let shown = scalars.prefix(64).map { "\"\($0.escaped(asASCII: false))\"" }.joined(separator: ", ")
        return "Vocabulary(\(count): \(shown)\(count > 64 ? ", ..." : ""))"
    }

    /// Decodes a JSON array of scalar values.
    /// - Throws: `DecodingError.dataCorrupted` when the array is empty, holds a value that is not
    ///   a Unicode scalar (a surrogate or above U+10FFFF), or is not strictly increasing.
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let values = try container.decode([UInt32].self)
        guard !values.isEmpty else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "vocabulary is empty")
        }
        for (i, v) in values.enumerated() {
            guard Unicode.Scalar(v) != nil else {
                throw DecodingError.dataCorruptedError(in: container,
                    debugDescription: "vocabulary entry \(i) (\(v)) is not a Unicode scalar value")
            }
            if i > 0 && values[i - 1] >= v {
                throw DecodingError.dataCorruptedError(in: container,
                    debugDescription: "vocabulary is not sorted by scalar value without duplicates (entry \(i))")
            }
        }
        self.init(sortedUniqueValues: values)
    }

    /// Encodes as a JSON array of scalar values, in token order.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(scalars.map(\.value))
    }
}
