import Foundation
import XCTest
@testable import GenData

/// Every PNG colour type and bit depth, palettes with and without tRNS, colour keys, Adam7,
/// and damaged files, generated here through libpng.
final class PNGDecodeTests: XCTestCase {
    /// Packs `samples` (each < 2^depth) into PNG rows of `perRow` samples, MSB first.
    func pack(_ samples: [Int], perRow: Int, depth: Int) -> [UInt8] {
        var out: [UInt8] = []
        let rows = samples.count / perRow
        for r in 0..<rows {
            var acc = 0, bits = 0
            for s in samples[r * perRow..<(r + 1) * perRow] {
                acc = (acc << depth) | s
                bits += depth
                if bits == 8 { out.append(UInt8(acc)); acc = 0; bits = 0 }
            }
            if bits > 0 { out.append(UInt8((acc << (8 - bits)) & 0xFF)) }
        }
        return out
    }

    func decodeRaw(_ bytes: [UInt8]) throws -> RawImage {
        try Image.decodeRaw(bytes, path: "test.png", maxPixels: 1 << 24)
    }

    func testGrayAllDepths() throws {
        let w = 13, h = 7
        for depth in [1, 2, 4, 8, 16] {
            let maxV = (1 << depth) - 1
            let samples = (0..<(w * h)).map { ($0 * 7 + $0 / w) % (maxV + 1) }
            for interlace in [false, true] {
                let png = depth == 16
                    ? try encodePNG(width: w, height: h, color: 0, depth: 16, words: samples.map { UInt16($0 * 257 % 65536) }, interlace: interlace)
                    : try encodePNG(width: w, height: h, color: 0, depth: Int32(depth), bytes: pack(samples, perRow: w, depth: depth), interlace: interlace)
                let im = try Image.decode(png)
                XCTAssertEqual(im.channels, 1)
                XCTAssertEqual(im.width, w); XCTAssertEqual(im.height, h)
                for i in 0..<(w * h) {
                    let expected = depth == 16 ? Float(samples[i] * 257 % 65536) / 65535 : Float(samples[i]) / Float(maxV)
                    XCTAssertEqual(im.pixels[i], expected, accuracy: 1e-6, "gray depth \(depth) interlace \(interlace) index \(i)")
                }
                let info = try ImageInfo.read(bytes: png)
                XCTAssertEqual(info.bitDepth, depth)
                XCTAssertEqual(info.colorModel, .gray)
                XCTAssertEqual(info.interlaced, interlace)
            }
        }
    }

    func testGrayAlphaRGBRGBA8And16() throws {
        let w = 9, h = 5
        for (color, ch) in [(Int32(4), 2), (Int32(2), 3), (Int32(6), 4)] {
            for depth in [8, 16] {
                let n = w * h * ch
                let words = (0..<n).map { UInt16(($0 * 2749 + 13) % 65536) }
                let bytes = (0..<n).map { UInt8(($0 * 37 + 5) % 256) }
                for interlace in [false, true] {
                    let png = depth == 16
                        ? try encodePNG(width: w, height: h, color: color, depth: 16, words: words, interlace: interlace)
                        : try encodePNG(width: w, height: h, color: color, depth: 8, bytes: bytes, interlace: interlace)
                    let raw = try decodeRaw(png)
                    XCTAssertEqual(raw.channels, ch)
                    XCTAssertEqual(raw.bits, depth)
                    // Samples kept exactly (16-bit as native UInt16).
                    if depth == 16 {
                        let got = raw.data.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
                        XCTAssertEqual(got, words, "color \(color) depth 16 interlace \(interlace)")
                    } else {
                        XCTAssertEqual(raw.data, bytes, "color \(color) depth 8 interlace \(interlace)")
                    }
                    // Float conversion: exact scaling and the alpha rule (composite onto white).
                    let im = try Image.decode(png)
                    XCTAssertEqual(im.channels, ch <= 2 ? 1 : 3)
                    let norm: (Int) -> Float = { depth == 16 ? Float(words[$0]) / 65535 : Float(bytes[$0]) / 255 }
                    for p in 0..<(w * h) {
                        let a: Float = (ch == 2 || ch == 4) ? norm(p * ch + ch - 1) : 1
                        for c in 0..<im.channels {
                            let v = norm(p * ch + c)
                            XCTAssertEqual(im.pixels[p * im.channels + c], v * a + (1 - a), accuracy: 1e-5)
                        }
                    }
                }
            }
        }
    }

    func testPaletteWithAndWithoutTRNS() throws {
        let w = 11, h = 6
        for depth in [1, 2, 4, 8] {
            let entries = min(1 << depth, 20)
            var palette: [UInt8] = []
            for e in 0..<entries {
                let r = UInt8(e * 10), g = UInt8(255 - e * 9), b = UInt8((e * 77) % 256)
                palette += [r, g, b]
            }
            let idx = (0..<(w * h)).map { ($0 * 3 + $0 / w) % entries }
            let rows = pack(idx, perRow: w, depth: depth)
            // Without tRNS: RGB.
            let plain = try encodePNG(width: w, height: h, color: 3, depth: Int32(depth), bytes: rows, palette: palette)
            let im = try Image.decode(plain)
            XCTAssertEqual(im.channels, 3)
            for p in 0..<(w * h) {
                for c in 0..<3 { XCTAssertEqual(im.pixels[p * 3 + c], Float(palette[idx[p] * 3 + c]) / 255, accuracy: 1e-6) }
            }
            XCTAssertEqual(try ImageInfo.read(bytes: plain).colorModel, .palette)
            // With tRNS: entry 0 transparent, entry 1 half, others opaque -> RGBA, composited onto white.
            let trns: [UInt8] = [0, 128]
            let withAlpha = try encodePNG(width: w, height: h, color: 3, depth: Int32(depth), bytes: rows, interlace: depth == 4,
                                          palette: palette, trnsBytes: trns)
            let raw = try decodeRaw(withAlpha)
            XCTAssertEqual(raw.channels, 4)
            let im2 = try Image.decode(withAlpha)
            for p in 0..<(w * h) {
                let a: Float = idx[p] < trns.count ? Float(trns[idx[p]]) / 255 : 1
                XCTAssertEqual(raw.data[p * 4 + 3], idx[p] < trns.count ? trns[idx[p]] : 255)
                for c in 0..<3 {
                    let v: Float = Float(palette[idx[p] * 3 + c]) / 255
                    let expected: Float = v * a + (1 - a)
                    XCTAssertEqual(im2.pixels[p * 3 + c], expected, accuracy: 1e-5)
                }
            }
        }
    }

    func testColourKeyTRNSAddsAlpha() throws {
        // Gray 8-bit with key 200 and RGB 16-bit with a key colour.
        let gray: [UInt8] = [0, 200, 100, 200]
        let g = try encodePNG(width: 2, height: 2, color: 0, depth: 8, bytes: gray, trnsKey: [200])
        XCTAssertEqual(try decodeRaw(g).channels, 2)
        let gi = try Image.decode(g)
        XCTAssertEqual(gi.pixels, [0, 1, 100 / 255, 1])
        let rgb: [UInt16] = [1000, 2000, 3000, 5, 6, 7]
        let r = try encodePNG(width: 2, height: 1, color: 2, depth: 16, words: rgb, trnsKey: [1000, 2000, 3000])
        let raw = try decodeRaw(r)
        XCTAssertEqual(raw.channels, 4)
        let ri = try Image.decode(r)
        XCTAssertEqual(Array(ri.pixels[0..<3]), [1, 1, 1])
        XCTAssertEqual(ri.pixels[3], 5 / 65535, accuracy: 1e-7)
    }

    func testChannelRequests() throws {
        let rgb: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
        let png = try encodePNG(width: 2, height: 2, color: 2, depth: 8, bytes: rgb)
        let g = try Image.decode(png, options: ImageDecodeOptions(channels: 1))
        XCTAssertEqual(g.channels, 1)
        XCTAssertEqual(g.pixels[0], 0.299, accuracy: 1e-5)
        XCTAssertEqual(g.pixels[1], 0.587, accuracy: 1e-5)
        XCTAssertEqual(g.pixels[2], 0.114, accuracy: 1e-5)
        assertImageError(["channels must be 1 or 3"]) { _ = try Image.decode(png, options: ImageDecodeOptions(channels: 4)) }
    }

    // MARK: damaged files

    func validPNG() throws -> [UInt8] {
        let px = (0..<(32 * 32 * 3)).map { UInt8(($0 * 31) % 251) }
        return try encodePNG(width: 32, height: 32, color: 2, depth: 8, bytes: px)
    }

    func testTruncatedAtEveryStage() throws {
        let png = try validPNG()
        XCTAssertNoThrow(try Image.decode(png))
        for cut in [8, 20, 33, 40, png.count / 2, png.count - 13, png.count - 1] {
            assertImageError(["t.png", "truncated/corrupt PNG"]) { _ = try Image.decode(Array(png[0..<cut]), path: "t.png") }
        }
    }

    func testBadCRCIsAnError() throws {
        var png = try validPNG()
        png[29] ^= 0x01  // the IHDR CRC (bytes 29...32)
        assertImageError(["bad.png", "truncated/corrupt PNG", "CRC"]) { _ = try Image.decode(png, path: "bad.png") }
        // A bad CRC in an ancillary chunk (tEXt) is an error too.
        var good = try validPNG()
        let text: [UInt8] = [0, 0, 0, 4] + Array("tEXtab\0c".utf8) + [0xDE, 0xAD, 0xBE, 0xEF]
        good.insert(contentsOf: text, at: 33)
        assertImageError(["anc.png", "CRC"]) { _ = try Image.decode(good, path: "anc.png") }
        // Corrupt compressed data inside IDAT (with a fixed-up CRC) is an error, not a picture.
        var z = try validPNG()
        let idat = try XCTUnwrap(findChunk(z, "IDAT"))
        for i in 0..<min(20, idat.length - 4) { z[idat.data + 2 + i] ^= 0x5A }
        fixCRC(&z, chunkStart: idat.data - 8, length: idat.length)
        assertImageError(["z.png", "truncated/corrupt PNG"]) { _ = try Image.decode(z, path: "z.png") }
    }

    func testHugeHeaderRefusedBeforeAllocation() throws {
        var png = try validPNG()
        // IHDR width/height at bytes 16...23; set 100000 x 80000 and fix the CRC.
        for (o, v) in [(16, UInt32(100_000)), (20, UInt32(80_000))] {
            png[o] = UInt8(v >> 24); png[o + 1] = UInt8((v >> 16) & 0xFF); png[o + 2] = UInt8((v >> 8) & 0xFF); png[o + 3] = UInt8(v & 0xFF)
        }
        fixCRC(&png, chunkStart: 8, length: 13)
        let before = peakRSS()
        assertImageError(["huge.png", "100000x80000", "limit"]) { _ = try Image.decode(png, path: "huge.png") }
        XCTAssertLessThan(peakRSS() - before, 50 << 20)
        XCTAssertEqual(try ImageInfo.read(bytes: png).width, 100_000)
    }

    func testOtherFormatsAndGarbage() throws {
        assertImageError(["e.jpg", "empty file"]) { _ = try Image.decode([], path: "e.jpg") }
        assertImageError(["g.png", "unsupported format GIF"]) { _ = try Image.decode(Array("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8), path: "g.png") }
        var bmp: [UInt8] = Array("BM".utf8) + [UInt8](repeating: 0, count: 12) + [40, 0, 0, 0] + [UInt8](repeating: 0, count: 40)
        bmp[10] = 54
        assertImageError(["b.jpg", "unsupported format BMP"]) { _ = try Image.decode(bmp, path: "b.jpg") }
        let webp: [UInt8] = Array("RIFF".utf8) + [0, 0, 0, 0] + Array("WEBPVP8 ".utf8)
        assertImageError(["w.jpg", "unsupported format WebP"]) { _ = try Image.decode(webp, path: "w.jpg") }
        assertImageError(["r.png", "not an image", "00 01 02"]) { _ = try Image.decode([0, 1, 2, 3, 4], path: "r.png") }
        assertImageError(["nope.png", "No such file"]) { _ = try Image(contentsOf: "/nonexistent/nope.png") }
        assertImageError(["is a directory"]) { _ = try Image(contentsOf: NSTemporaryDirectory()) }
        // Only the PNG signature, and a JPEG SOI with nothing after it.
        assertImageError(["s.png", "truncated/corrupt PNG"]) { _ = try Image.decode([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], path: "s.png") }
        assertImageError(["s.jpg", "truncated/corrupt JPEG"]) { _ = try Image.decode([0xFF, 0xD8, 0xFF], path: "s.jpg") }
    }

    // MARK: helpers

    func findChunk(_ png: [UInt8], _ type: String) -> (data: Int, length: Int)? {
        var p = 8
        let t = Array(type.utf8)
        while p + 8 <= png.count {
            let len = Int(png[p]) << 24 | Int(png[p + 1]) << 16 | Int(png[p + 2]) << 8 | Int(png[p + 3])
            if Array(png[p + 4..<p + 8]) == t { return (p + 8, len) }
            p += 12 + len
        }
        return nil
    }

    /// Recomputes the CRC of the chunk starting at `chunkStart` (its length field).
    func fixCRC(_ png: inout [UInt8], chunkStart: Int, length: Int) {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in png[chunkStart + 4..<chunkStart + 8 + length] {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        crc ^= 0xFFFF_FFFF
        let o = chunkStart + 8 + length
        png[o] = UInt8(crc >> 24); png[o + 1] = UInt8((crc >> 16) & 0xFF); png[o + 2] = UInt8((crc >> 8) & 0xFF); png[o + 3] = UInt8(crc & 0xFF)
    }
}
