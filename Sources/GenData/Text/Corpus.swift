import Foundation

/// A text input that cannot be used, or text the vocabulary cannot encode. Messages name the
/// file and the reason.
public enum TextError: Error, CustomStringConvertible, Equatable {
    /// The file does not exist.
    case fileNotFound(file: String)
    /// The path is a directory (or another non-regular file).
    case notAFile(file: String)
    /// The file exists but could not be read; the system's reason.
    case unreadable(file: String, reason: String)
    /// The file has no text (0 bytes, or only a UTF-8 byte-order mark).
    case empty(file: String)
    /// The bytes are not UTF-8. `byteOffset` is the 0-based offset, in the file as stored (BOM
    /// included), of the first byte of the first ill-formed sequence: a stray continuation
    /// byte, a byte that never occurs in UTF-8 (C0, C1, F5–FF), an overlong form, an encoded
    /// surrogate (ED A0–BF ..), a value above U+10FFFF, or a multi-byte sequence cut short
    /// (including at the end of the file).
    case invalidUTF8(file: String, byteOffset: Int)
    /// The corpus has `length` symbols, fewer than the `needed` ones (e.g. one training window).
    case tooShort(file: String, length: Int, needed: Int)
    /// The corpus's training part (`training` of its `total` symbols, the rest held out for
    /// validation) is shorter than one training window of `needed` symbols.
    case trainingPartTooShort(file: String, training: Int, total: Int, needed: Int)
    /// Symbols that are not in the vocabulary, each once, in order of first appearance.
    case unknownCharacters([Character])

    /// A message naming the file and the reason.
    public var description: String {
        switch self {
        case .fileNotFound(let f): return "\(f): file not found"
        case .notAFile(let f): return "\(f): is not a regular file (a directory, device or pipe); give a text file"
        case .unreadable(let f, let r): return "\(f): cannot read: \(r)"
        case .empty(let f): return "\(f): corpus is empty"
        case .invalidUTF8(let f, let o):
            return "\(f): invalid UTF-8 at byte offset \(o) (text must be UTF-8; convert it, e.g. with iconv)"
        case .tooShort(let f, let l, let n):
            return "\(f): corpus is too short: \(l) characters, at least \(n) needed"
        case .trainingPartTooShort(let f, let t, let all, let n):
            return "\(f): corpus is too short: its training part has \(t) characters (the last \(all - t) of its \(all) are held out for validation, --validation-split), and one window needs \(n) (--seq-length + 1)"
        case .unknownCharacters(let cs):
            let shown = cs.prefix(20).map { c in
                "'" + c.unicodeScalars.map { $0.escaped(asASCII: false) }.joined() + "'"
                    + " (" + c.unicodeScalars.map { "U+" + String($0.value, radix: 16, uppercase: true) }.joined(separator: " ") + ")"
            }.joined(separator: ", ")
            return "characters not in the model's vocabulary: \(shown)\(cs.count > 20 ? ", and \(cs.count - 20) more" : "")"
        }
    }
}

/// A training corpus for a character-level model: the text of one UTF-8 file as tokens of a
/// ``Vocabulary``.
///
/// Loading rules (see ``TextCorpus/decodeText(_:file:)``): strict UTF-8 (an invalid byte is a
/// ``TextError/invalidUTF8(file:byteOffset:)`` with its offset), a leading byte-order mark is
/// dropped, `"\r\n"` and lone `"\r"` become `"\n"`. The vocabulary unit is the Unicode scalar
/// (see ``Vocabulary``). Only the tokens are kept (4 bytes a symbol); ``text`` rebuilds the
/// string on demand.
public struct TextCorpus {
    /// The file's path (or the name given to an in-memory corpus), for messages.
    public let file: String
    /// The symbols of the corpus (or the vocabulary it was encoded with).
    public let vocabulary: Vocabulary
    /// The corpus as tokens of ``vocabulary``, in order.
    public let tokens: [Int32]

    /// Number of symbols in the corpus.
    public var count: Int { tokens.count }

    /// The normalised text (rebuilt from the tokens; not stored).
    public var text: String { vocabulary.decode(tokens) }

    /// The 64-bit FNV-1a hash (``FNV1a64``) of the normalised text as UTF-8 (the file's bytes after
    /// the byte-order mark is dropped and line endings are normalised): with ``count``, what a
    /// checkpoint records of its corpus, so that a resume on another text is refused. It does not
    /// depend on the vocabulary the text is encoded with.
    public var fingerprint: UInt64 {
        let encoded: [[UInt8]] = vocabulary.scalars.map { Array(String($0).utf8) }
        var hash = FNV1a64()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 16)
        for t in tokens {
            buffer.append(contentsOf: encoded[Int(t)])
            if buffer.count >= (1 << 16) - 4 {
                hash.combine(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        hash.combine(buffer)
        return hash.value
    }

    /// Reads a UTF-8 text file and builds its vocabulary, or encodes it with `vocabulary` (when
    /// resuming or fine-tuning a model, whose symbols are fixed).
    /// - Throws: ``TextError/fileNotFound(file:)``, ``TextError/notAFile(file:)``,
    ///   ``TextError/unreadable(file:reason:)``, ``TextError/empty(file:)`` ("corpus is empty"),
    ///   ``TextError/invalidUTF8(file:byteOffset:)``, and with a given `vocabulary`
    ///   ``TextError/unknownCharacters(_:)``.
    public static func load(from url: URL, vocabulary: Vocabulary? = nil) throws -> TextCorpus {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TextError.fileNotFound(file: path)
        }
        if isDirectory.boolValue { throw TextError.notAFile(file: path) }
        if let attributes = try? FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path),
           let type = attributes[.type] as? FileAttributeType, type != .typeRegular {
            throw TextError.notAFile(file: path)
        }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            let reason: String
            if let e = error as? CocoaError, let u = e.userInfo[NSUnderlyingErrorKey] as? NSError {
                reason = u.localizedDescription
            } else {
                reason = (error as NSError).localizedDescription
            }
            throw TextError.unreadable(file: path, reason: reason)
        }
        return try TextCorpus(data: data, file: path, vocabulary: vocabulary)
    }

    /// A corpus from UTF-8 bytes already in memory; `file` names them in messages.
    /// - Throws: as ``load(from:vocabulary:)`` (except the file-system errors).
    public init(data: Data, file: String, vocabulary: Vocabulary? = nil) throws {
        let values = try Self.decodeScalarValues(data, file: file)
        if values.isEmpty { throw TextError.empty(file: file) }
        try self.init(values: values, file: file, vocabulary: vocabulary)
    }

    /// A corpus from a string (line endings normalised as for a file); `file` names it in messages.
    /// - Throws: ``TextError/empty(file:)``, or ``TextError/unknownCharacters(_:)`` with a given `vocabulary`.
    public init(text: String, file: String = "<text>", vocabulary: Vocabulary? = nil) throws {
        var values: [UInt32] = []
        values.reserveCapacity(text.utf8.count)
        var previousWasCR = false
        for s in text.unicodeScalars {
            if s == "\r" { values.append(0x0A); previousWasCR = true; continue }
            if s == "\n" && previousWasCR { previousWasCR = false; continue }
            previousWasCR = false
            values.append(s.value)
        }
        if values.isEmpty { throw TextError.empty(file: file) }
        try self.init(values: values, file: file, vocabulary: vocabulary)
    }

    private init(values: [UInt32], file: String, vocabulary given: Vocabulary?) throws {
        // A dense scalar → token table (4.4 MB, temporary) makes encoding one pass.
        var table = [Int32](repeating: -1, count: 0x110000)
        let vocabulary: Vocabulary
        if let v = given {
            vocabulary = v
        } else {
            var present = [Bool](repeating: false, count: 0x110000)
            for v in values { present[Int(v)] = true }
            var unique: [UInt32] = []
            for (v, p) in present.enumerated() where p { unique.append(UInt32(v)) }
            vocabulary = Vocabulary(sortedUniqueValues: unique)
        }
        for (i, s) in vocabulary.scalars.enumerated() { table[Int(s.value)] = Int32(i) }
        var tokens = [Int32](repeating: 0, count: values.count)
        var unknown: [Character] = []
        var reported = Set<UInt32>()
        for (i, v) in values.enumerated() {
            let t = table[Int(v)]
            if t < 0 {
                if reported.insert(v).inserted, let s = Unicode.Scalar(v) { unknown.append(Character(s)) }
            } else {
                tokens[i] = t
            }
        }
        if !unknown.isEmpty { throw TextError.unknownCharacters(unknown) }
        self.file = file
        self.vocabulary = vocabulary
        self.tokens = tokens
    }

    /// Checks that the corpus has at least `needed` symbols (e.g. sequence length + 1).
    /// - Throws: ``TextError/tooShort(file:length:needed:)``.
    public func requireLength(_ needed: Int) throws {
        if tokens.count < needed { throw TextError.tooShort(file: file, length: tokens.count, needed: needed) }
    }

    /// Splits the tokens into a training part and a validation part held out from the **end**
    /// of the corpus: the last `floor(count × validationFraction)` tokens validate, the rest
    /// train (no shuffling, so validation text is never seen in training).
    /// - Precondition: `0 <= validationFraction < 1` (the command line validates the option).
    public func split(validationFraction: Double) -> (train: [Int32], validation: [Int32]) {
        precondition(validationFraction >= 0 && validationFraction < 1,
                     "TextCorpus.split: validationFraction \(validationFraction) not in [0, 1)")
        let n = tokens.count
        let v = min(n, Int((Double(n) * validationFraction).rounded(.down)))
        return (Array(tokens[..<(n - v)]), Array(tokens[(n - v)...]))
    }

    /// Decodes UTF-8 bytes as gen reads every text input: strict UTF-8, a leading byte-order
    /// mark (EF BB BF) dropped, `"\r\n"` and lone `"\r"` turned into `"\n"`. Useful for prime
    /// texts and any other text file; empty input gives an empty string.
    /// - Throws: ``TextError/invalidUTF8(file:byteOffset:)`` with the offset of the first byte
    ///   of the first ill-formed sequence (offsets count the BOM).
    public static func decodeText(_ data: Data, file: String) throws -> String {
        let values = try decodeScalarValues(data, file: file)
        var view = String.UnicodeScalarView()
        for v in values { if let s = Unicode.Scalar(v) { view.append(s) } }
        return String(view)
    }

    /// The offset of the first byte of the first ill-formed UTF-8 sequence in `bytes`, or `nil`
    /// when all of it is well-formed UTF-8 (Unicode 15, table 3-7: no overlongs, no surrogates,
    /// nothing above U+10FFFF, no truncated sequences).
    public static func firstInvalidUTF8Offset(_ bytes: Data) -> Int? {
        bytes.withUnsafeBytes { raw in
            var i = 0
            while i < raw.count {
                switch sequenceLength(raw, at: i) {
                case .some(let n): i += n
                case .none: return i
                }
            }
            return nil
        }
    }

    /// Length of the well-formed UTF-8 sequence starting at `i`, or `nil` when ill-formed.
    @inline(__always)
    private static func sequenceLength(_ raw: UnsafeRawBufferPointer, at i: Int) -> Int? {
        let b0 = raw[i]
        if b0 < 0x80 { return 1 }
        let n = raw.count
        @inline(__always) func cont(_ j: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> Bool {
            j < n && raw[j] >= lo && raw[j] <= hi
        }
        switch b0 {
        case 0xC2...0xDF: return cont(i + 1) ? 2 : nil
        case 0xE0: return cont(i + 1, 0xA0) && cont(i + 2) ? 3 : nil
        case 0xE1...0xEC, 0xEE...0xEF: return cont(i + 1) && cont(i + 2) ? 3 : nil
        case 0xED: return cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : nil
        case 0xF0: return cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : nil
        case 0xF1...0xF3: return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : nil
        case 0xF4: return cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : nil
        default: return nil
        }
    }

    /// Strict decode to scalar values with BOM removal and line-ending normalisation.
    private static func decodeScalarValues(_ data: Data, file: String) throws -> [UInt32] {
        try data.withUnsafeBytes { raw -> [UInt32] in
            var out: [UInt32] = []
            out.reserveCapacity(raw.count)
            var i = 0
            if raw.count >= 3 && raw[0] == 0xEF && raw[1] == 0xBB && raw[2] == 0xBF { i = 3 }
            while i < raw.count {
                let b0 = raw[i]
                if b0 < 0x80 {
                    if b0 == 0x0D {
                        out.append(0x0A)
                        i += (i + 1 < raw.count && raw[i + 1] == 0x0A) ? 2 : 1
                    } else {
                        out.append(UInt32(b0))
                        i += 1
                    }
                    continue
                }
                guard let n = sequenceLength(raw, at: i) else {
                    throw TextError.invalidUTF8(file: file, byteOffset: i)
                }
                var v: UInt32
                switch n {
                case 2: v = UInt32(b0 & 0x1F)
                case 3: v = UInt32(b0 & 0x0F)
                default: v = UInt32(b0 & 0x07)
                }
                for k in 1..<n { v = v << 6 | UInt32(raw[i + k] & 0x3F) }
                out.append(v)
                i += n
            }
            return out
        }
    }
}
