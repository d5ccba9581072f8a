import Foundation
import XCTest
@testable import GenData

/// Text corpora and vocabularies: strict UTF-8, line endings, the scalar unit, and cases 21, 22, 24, 26.
final class TextCorpusTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("gen-text-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    /// `$GEN_DATA_CASES/inputs/<name>` or `../shared/cases/inputs/<name>` from the package root.
    static func caseFile(_ name: String) throws -> URL {
        var cases: URL?
        if let env = ProcessInfo.processInfo.environment["GEN_DATA_CASES"], !env.isEmpty {
            cases = URL(fileURLWithPath: env)
        } else {
            var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            while dir.path != "/" {
                if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                    cases = dir.deletingLastPathComponent().appendingPathComponent("shared/cases")
                    break
                }
                dir = dir.deletingLastPathComponent()
            }
        }
        guard let c = cases else { throw XCTSkip("bad-input cases not found: set GEN_DATA_CASES or provide ../shared/cases") }
        let url = c.appendingPathComponent("inputs").appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("\(url.path) not found: set GEN_DATA_CASES or provide ../shared/cases")
        }
        return url
    }

    func corpus(_ bytes: [UInt8]) throws -> TextCorpus {
        try TextCorpus(data: Data(bytes), file: "mem.txt")
    }

    func invalidOffset(_ bytes: [UInt8], line: UInt = #line) -> Int? {
        do {
            _ = try corpus(bytes)
            return nil
        } catch TextError.invalidUTF8(let file, let offset) {
            XCTAssertEqual(file, "mem.txt", line: line)
            return offset
        } catch {
            XCTFail("unexpected \(error)", line: line)
            return nil
        }
    }

    // MARK: Basics

    func testVocabularyIsSortedByScalarAndRoundTrips() throws {
        let c = try TextCorpus(text: "hello\nworld")
        XCTAssertEqual(c.vocabulary.scalars.map { String($0) }, ["\n", "d", "e", "h", "l", "o", "r", "w"])
        XCTAssertEqual(c.count, 11)
        XCTAssertEqual(Array(c.tokens.prefix(3)), [3, 2, 4])
        XCTAssertEqual(c.text, "hello\nworld")
        XCTAssertEqual(c.vocabulary.decode(c.tokens), "hello\nworld")
        XCTAssertEqual(try c.vocabulary.encode("world"), Array(c.tokens.suffix(5)))
        XCTAssertEqual(c.vocabulary.index(of: "h"), 3)
        XCTAssertEqual(c.vocabulary.scalar(for: 0), "\n")
        XCTAssertTrue(c.vocabulary.contains("w"))
        XCTAssertFalse(c.vocabulary.contains("z"))
        // Deterministic: the same symbols in another order give the same vocabulary.
        XCTAssertEqual(try TextCorpus(text: "dlrow\nolleh").vocabulary, c.vocabulary)
    }

    func testEncodeReportsUnknownCharactersAndCanSkipThem() throws {
        let v = Vocabulary(text: "abc\n")
        XCTAssertThrowsError(try v.encode("abxyxé")) { e in
            XCTAssertEqual(e as? TextError, .unknownCharacters(["x", "y", "é"]))
            XCTAssertTrue("\(e)".contains("'x'") && "\(e)".contains("U+E9"), "\(e)")
        }
        XCTAssertEqual(v.encodeSkippingUnknown("abxyc"), [1, 2, 3])
        XCTAssertEqual(try v.encode("a\r\nb\rc"), [1, 0, 2, 0, 3], "prime text line endings are normalised")
        XCTAssertThrowsError(try TextCorpus(text: "abz", vocabulary: v)) { e in
            XCTAssertEqual(e as? TextError, .unknownCharacters(["z"]))
        }
        let c = try TextCorpus(text: "cab", vocabulary: v)
        XCTAssertEqual(c.vocabulary, v)
        XCTAssertEqual(c.tokens, [3, 1, 2])
    }

    func testVocabularyCodableAsScalarValues() throws {
        let v = Vocabulary(text: "b\na😀é")
        let json = String(decoding: try JSONEncoder().encode(v), as: UTF8.self)
        XCTAssertEqual(json, "[10,97,98,233,128512]")
        XCTAssertEqual(try JSONDecoder().decode(Vocabulary.self, from: Data(json.utf8)), v)
        for bad in ["[]", "[98,97]", "[97,97]", "[55296]", "[1114112]", "[-1]", "\"ab\"", "{}"] {
            XCTAssertThrowsError(try JSONDecoder().decode(Vocabulary.self, from: Data(bad.utf8)), bad)
        }
    }

    func testSplitHoldsOutTheEnd() throws {
        let c = try TextCorpus(text: String(repeating: "abcdefghij", count: 10))
        let (train, validation) = c.split(validationFraction: 0.1)
        XCTAssertEqual(train.count, 90)
        XCTAssertEqual(validation.count, 10)
        XCTAssertEqual(train + validation, c.tokens)
        XCTAssertEqual(validation, Array(c.tokens.suffix(10)))
        let (all, none) = c.split(validationFraction: 0)
        XCTAssertEqual(all, c.tokens)
        XCTAssertTrue(none.isEmpty)
    }

    func testRequireLength() throws {
        let c = try TextCorpus(text: "abc", file: "short.txt")
        XCTAssertNoThrow(try c.requireLength(3))
        XCTAssertThrowsError(try c.requireLength(65)) { e in
            XCTAssertEqual(e as? TextError, .tooShort(file: "short.txt", length: 3, needed: 65))
            XCTAssertTrue("\(e)".hasPrefix("short.txt: "), "\(e)")
        }
    }

    // MARK: Files

    func testFileErrors() throws {
        let missing = folder.appendingPathComponent("missing.txt")
        XCTAssertThrowsError(try TextCorpus.load(from: missing)) { e in
            XCTAssertEqual(e as? TextError, .fileNotFound(file: missing.path))
            XCTAssertTrue("\(e)".contains(missing.path))
        }
        XCTAssertThrowsError(try TextCorpus.load(from: folder)) { e in
            XCTAssertEqual(e as? TextError, .notAFile(file: folder.path))
        }
        let empty = folder.appendingPathComponent("empty.txt")
        try Data().write(to: empty)
        XCTAssertThrowsError(try TextCorpus.load(from: empty)) { e in
            XCTAssertEqual(e as? TextError, .empty(file: empty.path))
        }
        let bomOnly = folder.appendingPathComponent("bom.txt")
        try Data([0xEF, 0xBB, 0xBF]).write(to: bomOnly)
        XCTAssertThrowsError(try TextCorpus.load(from: bomOnly)) { e in
            XCTAssertEqual(e as? TextError, .empty(file: bomOnly.path))
        }
        if getuid() != 0 {
            let locked = folder.appendingPathComponent("locked.txt")
            try Data("abc".utf8).write(to: locked)
            chmod(locked.path, 0)
            defer { chmod(locked.path, 0o644) }
            XCTAssertThrowsError(try TextCorpus.load(from: locked)) { e in
                guard case .unreadable(let f, _)? = e as? TextError else { return XCTFail("\(e)") }
                XCTAssertEqual(f, locked.path)
            }
        }
        let ok = folder.appendingPathComponent("ok.txt")
        try Data([0xEF, 0xBB, 0xBF] + Array("hi\r\n".utf8)).write(to: ok)
        let c = try TextCorpus.load(from: ok)
        XCTAssertEqual(c.text, "hi\n", "BOM stripped, CRLF normalised")
        XCTAssertEqual(c.file, ok.path)
    }

    func testInvalidUTF8Offsets() {
        XCTAssertEqual(invalidOffset(Array("ab".utf8) + [0xFF] + Array("cd".utf8)), 2)
        XCTAssertEqual(invalidOffset([0x61, 0x80]), 1, "stray continuation byte")
        XCTAssertEqual(invalidOffset([0x61, 0x62, 0xE6, 0x97]), 2, "truncated 3-byte sequence at end")
        XCTAssertEqual(invalidOffset([0x61, 0xF0, 0x9F, 0x98]), 1, "truncated 4-byte sequence at end")
        XCTAssertEqual(invalidOffset([0xC3]), 0, "lone lead byte")
        XCTAssertEqual(invalidOffset([0x61, 0xE6, 0x97, 0x62]), 1, "truncated sequence mid-text")
        XCTAssertEqual(invalidOffset([0x61, 0xC0, 0xAF]), 1, "overlong 2-byte '/'")
        XCTAssertEqual(invalidOffset([0xC1, 0xBF]), 0, "overlong 2-byte")
        XCTAssertEqual(invalidOffset([0x61, 0x62, 0xE0, 0x80, 0xAF]), 2, "overlong 3-byte")
        XCTAssertEqual(invalidOffset([0xF0, 0x80, 0x80, 0xAF]), 0, "overlong 4-byte")
        XCTAssertEqual(invalidOffset([0x61, 0xED, 0xA0, 0x80]), 1, "UTF-8-encoded high surrogate U+D800")
        XCTAssertEqual(invalidOffset([0xED, 0xBF, 0xBF]), 0, "UTF-8-encoded low surrogate U+DFFF")
        XCTAssertEqual(invalidOffset([0xF4, 0x90, 0x80, 0x80]), 0, "above U+10FFFF")
        XCTAssertEqual(invalidOffset([0x61, 0xF8, 0x88, 0x80, 0x80, 0x80]), 1, "5-byte form")
        XCTAssertEqual(invalidOffset([0xEF, 0xBB, 0xBF, 0x61, 0xFE]), 4, "offsets count the BOM")
        XCTAssertEqual(invalidOffset([0xEF, 0xBB]), 0, "a cut BOM is invalid")
        XCTAssertNil(invalidOffset([0xED, 0x9F, 0xBF, 0xEE, 0x80, 0x80, 0xF4, 0x8F, 0xBF, 0xBF]), "U+D7FF, U+E000, U+10FFFF are valid")
        let message = TextError.invalidUTF8(file: "x.txt", byteOffset: 2).description
        XCTAssertTrue(message.contains("x.txt") && message.contains("byte offset 2"), message)
    }

    /// The validator agrees with the standard library's repairing decoder on random bytes.
    func testValidatorAgreesWithStandardLibrary() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        let interesting: [UInt8] = [0x00, 0x0A, 0x0D, 0x61, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
                                    0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        for _ in 0..<20000 {
            let n = Int(next() % 8)
            let bytes = (0..<n).map { _ in interesting[Int(next() % UInt64(interesting.count))] }
            let repaired = Array(String(decoding: bytes, as: UTF8.self).utf8)
            let valid = repaired == bytes
            let offset = TextCorpus.firstInvalidUTF8Offset(Data(bytes))
            XCTAssertEqual(offset == nil, valid, "\(bytes)")
            if let o = offset {
                // Everything before the reported offset is well-formed.
                XCTAssertEqual(Array(String(decoding: bytes[..<o], as: UTF8.self).utf8), Array(bytes[..<o]), "\(bytes)")
            }
        }
    }

    func testDecodeTextNormalises() throws {
        XCTAssertEqual(try TextCorpus.decodeText(Data([0xEF, 0xBB, 0xBF] + Array("a\r\nb\rc\n\r\r\nd".utf8)), file: "p"), "a\nb\nc\n\n\nd")
        XCTAssertEqual(try TextCorpus.decodeText(Data(), file: "p"), "")
        XCTAssertThrowsError(try TextCorpus.decodeText(Data([0x61, 0xFF]), file: "p")) { e in
            XCTAssertEqual(e as? TextError, .invalidUTF8(file: "p", byteOffset: 1))
        }
        XCTAssertEqual(try TextCorpus(text: "a\r\n\r").text, "a\n\n")
    }

    // MARK: Cases

    /// case21: multilingual UTF-8; the unit is the scalar, so é, λ, 日, 😀 are one symbol each.
    func testCase21MultilingualScalars() throws {
        let url = try Self.caseFile("case21_utf8_multilang.txt")
        let c = try TextCorpus.load(from: url)
        XCTAssertEqual(try Data(contentsOf: url).count, 6620)
        XCTAssertEqual(c.count, 4260)
        for s in ["é", "λ", "日", "😀"] {
            let scalars = Array(s.unicodeScalars)
            XCTAssertEqual(scalars.count, 1, s)
            XCTAssertTrue(c.vocabulary.contains(scalars[0]), "\(s) is a symbol")
            XCTAssertEqual(try c.vocabulary.encode(s).count, 1, s)
        }
        XCTAssertFalse(c.vocabulary.contains("\u{FFFD}"))
        let text = c.text
        XCTAssertEqual(text, try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: "\r\n", with: "\n"))
        XCTAssertEqual(Array(text.utf8), Array(String(decoding: Array(text.utf8), as: UTF8.self).utf8))
        // Any token sequence decodes to valid UTF-8.
        var state: UInt64 = 1
        let random = (0..<2000).map { _ -> Int32 in
            state = state &* 6364136223846793005 &+ 1
            return Int32((state >> 33) % UInt64(c.vocabulary.count))
        }
        let sample = Array(c.vocabulary.decode(random).utf8)
        XCTAssertNil(TextCorpus.firstInvalidUTF8Offset(Data(sample)))
    }

    /// case22: CRLF and CR-only files give the same vocabulary and tokens as the LF version.
    func testCase22LineEndingsNormalised() throws {
        let crlfURL = try Self.caseFile("case22_crlf.txt")
        let crURL = try Self.caseFile("case22_cr_only.txt")
        let crlfBytes = [UInt8](try Data(contentsOf: crlfURL))
        XCTAssertTrue(crlfBytes.contains(0x0D))
        var lf: [UInt8] = []
        var i = 0
        while i < crlfBytes.count {
            if crlfBytes[i] == 0x0D {
                lf.append(0x0A)
                if i + 1 < crlfBytes.count && crlfBytes[i + 1] == 0x0A { i += 1 }
            } else {
                lf.append(crlfBytes[i])
            }
            i += 1
        }
        let reference = try corpus(lf)
        let crlf = try TextCorpus.load(from: crlfURL)
        let cr = try TextCorpus.load(from: crURL)
        for c in [crlf, cr] {
            XCTAssertEqual(c.vocabulary, reference.vocabulary)
            XCTAssertEqual(c.tokens, reference.tokens)
            XCTAssertFalse(c.vocabulary.contains("\r"))
            XCTAssertTrue(c.vocabulary.contains("\n"))
            XCTAssertFalse(c.text.contains("\r"))
            XCTAssertFalse(c.text.contains("\r\n"))
        }
        XCTAssertEqual(crlf.text.filter { $0 == "\n" }.count, 360)
    }

    /// case24: an empty file is a clean "corpus is empty" error naming the file.
    func testCase24EmptyCorpus() throws {
        let url = try Self.caseFile("case24_empty.txt")
        XCTAssertThrowsError(try TextCorpus.load(from: url)) { e in
            XCTAssertEqual(e as? TextError, .empty(file: url.path))
            XCTAssertEqual("\(e)", "\(url.path): corpus is empty")
        }
    }

    /// case26: a single repeated character gives a vocabulary of size 1.
    func testCase26SingleCharacter() throws {
        let url = try Self.caseFile("case26_single_char.txt")
        let c = try TextCorpus.load(from: url)
        XCTAssertEqual(c.vocabulary.count, 1)
        XCTAssertEqual(c.vocabulary.scalars, ["a"])
        XCTAssertEqual(c.count, 4096)
        XCTAssertTrue(c.tokens.allSatisfy { $0 == 0 })
        XCTAssertEqual(c.vocabulary.decode([Int32](repeating: 0, count: 5)), "aaaaa")
    }
}
