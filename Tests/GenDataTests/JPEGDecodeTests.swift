import Foundation
import XCTest
@testable import GenData

/// JPEG: gray, YCbCr, CMYK/YCCK (Adobe inverted), progressive, all eight EXIF orientations,
/// damaged files; generated through libjpeg.
final class JPEGDecodeTests: XCTestCase {
    /// A 48x32 upright test picture of six 16x16 blocks, each its own colour.
    static let colours: [[UInt8]] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [40, 40, 40]]

    func blocks(width: Int = 48, height: Int = 32) -> Image {
        var im = Image(width: width, height: height, channels: 3, repeating: 0)
        for y in 0..<height { for x in 0..<width {
            let b = (y / 16) * (width / 16) + x / 16
            for c in 0..<3 { im[x, y, c] = Float(Self.colours[b % 6][c]) / 255 }
        } }
        return im
    }

    func assertClose(_ a: Image, _ b: Image, tolerance: Float, margin: Int = 3, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.width, b.width, file: file, line: line)
        XCTAssertEqual(a.height, b.height, file: file, line: line)
        XCTAssertEqual(a.channels, b.channels, file: file, line: line)
        guard a.width == b.width, a.height == b.height, a.channels == b.channels else { return }
        var worst: Float = 0
        for y in 0..<a.height where y % 16 >= margin && y % 16 < 16 - margin {
            for x in 0..<a.width where x % 16 >= margin && x % 16 < 16 - margin {
                for c in 0..<a.channels { worst = max(worst, abs(a[x, y, c] - b[x, y, c])) }
            }
        }
        XCTAssertLessThanOrEqual(worst, tolerance, file: file, line: line)
    }

    func testGrayAndRGB() throws {
        let up = blocks()
        let rgb = try encodeJPEG(width: 48, height: 32, components: 3, samples: up.quantized(bits: 8), quality: 100)
        let im = try Image.decode(rgb)
        XCTAssertEqual(im.channels, 3)
        assertClose(im, up, tolerance: 4 / 255)
        XCTAssertEqual(try ImageInfo.read(bytes: rgb).colorModel, .ycbcr)
        let g = try up.converted(channels: 1)
        let gray = try encodeJPEG(width: 48, height: 32, components: 1, samples: g.quantized(bits: 8), quality: 100)
        let gi = try Image.decode(gray)
        XCTAssertEqual(gi.channels, 1)
        assertClose(gi, g, tolerance: 3 / 255)
        let g3 = try Image.decode(gray, options: ImageDecodeOptions(channels: 3))
        XCTAssertEqual(g3.channels, 3)
    }

    func testCMYKAndYCCKAdobeInverted() throws {
        // Inks per block: C, M, Y, K in [0, 255]; expected RGB = (255 - ink) * (255 - K) / 255.
        let inks: [[Int]] = [[255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 255, 0], [0, 0, 0, 128], [0, 128, 255, 64], [30, 60, 90, 20]]
        let w = 48, h = 32
        var stored = [UInt8](repeating: 0, count: w * h * 4)
        var expected = Image(width: w, height: h, channels: 3, repeating: 0)
        for y in 0..<h { for x in 0..<w {
            let ink = inks[(y / 16) * 3 + x / 16]
            for c in 0..<4 { stored[(y * w + x) * 4 + c] = UInt8(255 - ink[c]) }  // Adobe: inverted samples
            for c in 0..<3 { expected[x, y, c] = Float((255 - ink[c]) * (255 - ink[3])) / 255 / 255 }
        } }
        for ycck in [false, true] {
            let jpg = try encodeJPEG(width: w, height: h, components: 4, samples: stored, quality: 100, ycck: ycck)
            let info = try ImageInfo.read(bytes: jpg)
            XCTAssertEqual(info.colorModel, ycck ? .ycck : .cmyk)
            XCTAssertTrue(info.adobeInverted)
            let im = try Image.decode(jpg)
            XCTAssertEqual(im.channels, 3)
            assertClose(im, expected, tolerance: 5 / 255)
            XCTAssertEqual(im[8, 8, 0], 0, accuracy: 3 / 255)  // cyan: no red
            XCTAssertEqual(im[8, 8, 1], 1, accuracy: 3 / 255)
        }
    }

    func testProgressiveMatchesBaseline() throws {
        let up = blocks()
        let px = up.quantized(bits: 8)
        let base = try Image.decode(try encodeJPEG(width: 48, height: 32, components: 3, samples: px, quality: 90))
        let progBytes = try encodeJPEG(width: 48, height: 32, components: 3, samples: px, quality: 90, progressive: true)
        XCTAssertTrue(try ImageInfo.read(bytes: progBytes).progressive)
        XCTAssertEqual(try Image.decode(progBytes), base)
    }

    func testAllEightExifOrientations() throws {
        let up = blocks()  // 48x32, not symmetric under any flip or rotation
        func transpose(_ i: Image) -> Image {
            var o = Image(width: i.height, height: i.width, channels: i.channels, repeating: 0)
            for y in 0..<i.height { for x in 0..<i.width { for c in 0..<i.channels { o[y, x, c] = i[x, y, c] } } }
            return o
        }
        func flipH(_ i: Image) -> Image {
            var o = i
            for y in 0..<i.height { for x in 0..<i.width { for c in 0..<i.channels { o[x, y, c] = i[i.width - 1 - x, y, c] } } }
            return o
        }
        func flipV(_ i: Image) -> Image {
            var o = i
            for y in 0..<i.height { for x in 0..<i.width { for c in 0..<i.channels { o[x, y, c] = i[x, i.height - 1 - y, c] } } }
            return o
        }
        let rotCW: (Image) -> Image = { flipH(transpose($0)) }
        let rotCCW: (Image) -> Image = { flipV(transpose($0)) }
        // How a camera stores the upright picture for each tag; decoding must undo it.
        let stored: [Int: Image] = [
            1: up, 2: flipH(up), 3: flipV(flipH(up)), 4: flipV(up),
            5: transpose(up), 6: rotCCW(up), 7: flipV(flipH(transpose(up))), 8: rotCW(up),
        ]
        for o in 1...8 {
            let s = try XCTUnwrap(stored[o])
            let jpg = try encodeJPEG(width: s.width, height: s.height, components: 3, samples: s.quantized(bits: 8), quality: 100)
            for bigEndian in [false, true] {
                let tagged = insertExifOrientation(jpg, orientation: UInt16(o), bigEndian: bigEndian)
                let info = try ImageInfo.read(bytes: tagged)
                XCTAssertEqual(info.orientation, o)
                XCTAssertEqual(info.width, 48); XCTAssertEqual(info.height, 32)
                let im = try Image.decode(tagged)
                assertClose(im, up, tolerance: 4 / 255)
            }
        }
        // Invalid tag values are ignored (treated as 1).
        let jpg = try encodeJPEG(width: 48, height: 32, components: 3, samples: up.quantized(bits: 8), quality: 100)
        XCTAssertEqual(try ImageInfo.read(bytes: insertExifOrientation(jpg, orientation: 9)).orientation, 1)
        XCTAssertEqual(try ImageInfo.read(bytes: insertExifOrientation(jpg, orientation: 0)).orientation, 1)
    }

    func testDamagedJPEGsAreErrors() throws {
        let up = blocks(width: 64, height: 64)
        let jpg = try encodeJPEG(width: 64, height: 64, components: 3, samples: up.quantized(bits: 8), quality: 90)
        XCTAssertNoThrow(try Image.decode(jpg))
        // Truncated anywhere after the header: premature end is an error.
        for cut in [jpg.count / 3, jpg.count / 2, jpg.count - 40, jpg.count - 2] {
            assertImageError(["cut.jpg", "truncated/corrupt JPEG"]) { _ = try Image.decode(Array(jpg[0..<cut]), path: "cut.jpg") }
        }
        // Truncated inside the header.
        assertImageError(["h.jpg", "truncated/corrupt JPEG"]) { _ = try Image.decode(Array(jpg[0..<100]), path: "h.jpg") }
        // A stray marker in the entropy-coded data: libjpeg's corrupt-data warning is an error.
        var bad = jpg
        let sos = try XCTUnwrap((0..<bad.count - 1).first { bad[$0] == 0xFF && bad[$0 + 1] == 0xDA })
        let mid = sos + (bad.count - sos) / 2
        bad[mid] = 0xFF; bad[mid + 1] = 0xD5
        assertImageError(["m.jpg", "truncated/corrupt JPEG"]) { _ = try Image.decode(bad, path: "m.jpg") }
        // Progressive file cut short.
        let prog = try encodeJPEG(width: 64, height: 64, components: 3, samples: up.quantized(bits: 8), quality: 90, progressive: true)
        assertImageError(["p.jpg", "truncated/corrupt JPEG"]) { _ = try Image.decode(Array(prog[0..<prog.count * 2 / 3]), path: "p.jpg") }
    }

    func testHugeJPEGHeaderRefused() throws {
        var jpg = try encodeJPEG(width: 16, height: 16, components: 3, samples: [UInt8](repeating: 128, count: 16 * 16 * 3))
        let sof = try XCTUnwrap((0..<jpg.count - 1).first { jpg[$0] == 0xFF && jpg[$0 + 1] == 0xC0 })
        // SOF0: FF C0, length(2), precision(1), height(2), width(2)
        jpg[sof + 5] = 0xEA; jpg[sof + 6] = 0x60   // 60000
        jpg[sof + 7] = 0xEA; jpg[sof + 8] = 0x60
        let before = peakRSS()
        assertImageError(["big.jpg", "60000x60000", "limit"]) { _ = try Image.decode(jpg, path: "big.jpg") }
        XCTAssertLessThan(peakRSS() - before, 50 << 20)
    }
}
