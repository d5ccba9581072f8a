import Foundation
import XCTest
@testable import GenData

/// The FNV-1a hash and the data fingerprints built on it (what checkpoints record of their data).
final class FingerprintTests: XCTestCase {
    func fnv(_ s: String) -> String {
        var h = FNV1a64()
        h.combine(Array(s.utf8))
        return h.hex
    }

    /// Published FNV-1a 64 test vectors; pieces hash as the whole.
    func testKnownValuesAndPieces() {
        XCTAssertEqual(FNV1a64().hex, "cbf29ce484222325")
        XCTAssertEqual(fnv("a"), "af63dc4c8601ec8c")
        XCTAssertEqual(fnv("foobar"), "85944171f73967e8")
        var pieces = FNV1a64()
        pieces.combine(Array("foo".utf8))
        pieces.combine(Data("bar".utf8))
        XCTAssertEqual(pieces.hex, "85944171f73967e8")
        var word = FNV1a64(), bytes = FNV1a64()
        word.combine(UInt64(0x0102_0304_0506_0708))
        bytes.combine([UInt8]([8, 7, 6, 5, 4, 3, 2, 1]))
        XCTAssertEqual(word, bytes)
        XCTAssertEqual(FNV1a64.hex(0xab), "00000000000000ab")
    }

    /// A corpus's fingerprint is the hash of its normalised UTF-8 text: the same for CRLF and LF
    /// line endings, with or without a byte-order mark, and whatever vocabulary encodes it.
    func testCorpusFingerprintIsTheNormalisedText() throws {
        let text = "héllo\nwörld 日本\n"
        let plain = try TextCorpus(data: Data(text.utf8), file: "a")
        XCTAssertEqual(FNV1a64.hex(plain.fingerprint), fnv(text))
        let crlf = try TextCorpus(data: Data(([0xEF, 0xBB, 0xBF] as [UInt8]) + Array("héllo\r\nwörld 日本\r".utf8)), file: "b")
        XCTAssertEqual(crlf.fingerprint, plain.fingerprint)
        let wider = Vocabulary(text: text + "xyz")
        XCTAssertEqual(try TextCorpus(text: text, vocabulary: wider).fingerprint, plain.fingerprint)
        XCTAssertNotEqual(try TextCorpus(text: "héllo\nwörld 日本 ").fingerprint, plain.fingerprint)
        // Longer than the hashing buffer.
        let long = String(repeating: "abc日\n", count: 40_000)
        XCTAssertEqual(FNV1a64.hex(try TextCorpus(text: long).fingerprint), fnv(long))
    }

    /// An image folder's fingerprint follows the converted images: the same with and without the
    /// cache, another when one pixel changes.
    func testImageFolderFingerprint() throws {
        let dir = try makeTempDir(self)
        try Image(width: 9, height: 7, channels: 3, repeating: 0.2).write(to: dir + "/a.png")
        try Image(width: 5, height: 5, channels: 1, repeating: 0.7).write(to: dir + "/b.png")
        let cached = try ImageFolderDataset(directory: dir, size: 6, channels: 3)
        let lazy = try ImageFolderDataset(directory: dir, size: 6, channels: 3, cacheLimit: 0)
        XCTAssertEqual(cached.fingerprint, lazy.fingerprint)
        XCTAssertNotEqual(try ImageFolderDataset(directory: dir, size: 6, channels: 1).fingerprint, cached.fingerprint)
        var changed = Image(width: 9, height: 7, channels: 3, repeating: 0.2)
        changed[4, 3, 1] = 0.9
        try changed.write(to: dir + "/a.png")
        XCTAssertNotEqual(try ImageFolderDataset(directory: dir, size: 6, channels: 3).fingerprint, cached.fingerprint)
    }
}
