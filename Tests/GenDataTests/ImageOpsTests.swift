import Foundation
import GenTensor
import XCTest
@testable import GenData

/// Encoding (PNG 8/16, JPEG quality, atomic writes), tensor conversion, resize, crop, grids.
final class ImageOpsTests: XCTestCase {
    func ramp(width: Int, height: Int, channels: Int, levels: Int = 255) -> Image {
        var im = Image(width: width, height: height, channels: channels, repeating: 0)
        for i in 0..<im.pixels.count { im.pixels[i] = Float((i * 7) % (levels + 1)) / Float(levels) }
        return im
    }

    func testPNGRoundTrip8And16() throws {
        for ch in 1...4 {
            let im8 = ramp(width: 17, height: 9, channels: ch)
            let d8 = try Image.decodeRaw(try im8.encoded(as: .png), path: "x", maxPixels: 1 << 20)
            XCTAssertEqual(d8.channels, ch)
            XCTAssertEqual(d8.bits, 8)
            XCTAssertEqual(d8.toImage(channels: ch, range: .unit), im8)
            let im16 = ramp(width: 17, height: 9, channels: ch, levels: 65535)
            let bytes16 = try im16.encoded(as: .png, options: ImageEncodeOptions(bitDepth: 16))
            XCTAssertEqual(try ImageInfo.read(bytes: bytes16).bitDepth, 16)
            let d16 = try Image.decodeRaw(bytes16, path: "x", maxPixels: 1 << 20)
            XCTAssertEqual(d16.toImage(channels: ch, range: .unit).pixels.count, im16.pixels.count)
            XCTAssertLessThan(maxDiff(d16.toImage(channels: ch, range: .unit), im16), 1e-6)
        }
        // Values outside [0, 1] and NaN are clamped (NaN -> 0), not wrapped.
        let wild = Image(width: 3, height: 1, channels: 1, pixels: [-0.5, 1.7, .nan])
        XCTAssertEqual(try Image.decode(try wild.encoded(as: .png)).pixels, [0, 1, 0])
        assertImageError(["bit depth"]) { _ = try wild.encoded(as: .png, options: ImageEncodeOptions(bitDepth: 12)) }
    }

    func testJPEGQualityAndAlpha() throws {
        var im = ramp(width: 64, height: 48, channels: 3)
        for y in 0..<48 { for x in 0..<64 { for c in 0..<3 { im[x, y, c] = Float(x) / 63 * 0.5 + Float(y) / 47 * 0.15 * Float(c + 1) } } }
        let hi = try im.encoded(as: .jpeg, options: ImageEncodeOptions(quality: 95))
        let lo = try im.encoded(as: .jpeg, options: ImageEncodeOptions(quality: 20))
        XCTAssertGreaterThan(hi.count, lo.count)
        XCTAssertLessThan(maxDiff(try Image.decode(hi), im), 0.1)
        let rgba = Image(width: 8, height: 8, channels: 4, pixels: [Float](repeating: 0, count: 256))  // transparent black
        let back = try Image.decode(try rgba.encoded(as: .jpeg))
        XCTAssertEqual(back.channels, 3)
        XCTAssertEqual(back[4, 4, 0], 1, accuracy: 2 / 255)  // composited onto white
        assertImageError(["quality"]) { _ = try im.encoded(as: .jpeg, options: ImageEncodeOptions(quality: 0)) }
    }

    func testAtomicWriteAndFormatByExtension() throws {
        let dir = try makeTempDir(self)
        let im = ramp(width: 8, height: 8, channels: 3)
        try im.write(to: dir + "/a.png")
        try im.write(to: dir + "/b.JPG")
        XCTAssertEqual(try ImageInfo.read(path: dir + "/a.png").format, .png)
        XCTAssertEqual(try ImageInfo.read(path: dir + "/b.JPG").format, .jpeg)
        XCTAssertEqual(try Image(contentsOf: dir + "/a.png"), im)
        assertImageError(["c.gif", "extension"]) { try im.write(to: dir + "/c.gif") }
        assertImageError(["missing/d.png"]) { try im.write(to: dir + "/missing/d.png") }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertEqual(names, ["a.png", "b.JPG"])  // no temporary or partial files
        // Overwriting keeps a valid file.
        try Image(width: 2, height: 2, channels: 1, repeating: 0.5).write(to: dir + "/a.png")
        XCTAssertEqual(try ImageInfo.read(path: dir + "/a.png").width, 2)
    }

    func testOrientedInputIsWrittenUpright() throws {
        let stored = ramp(width: 16, height: 8, channels: 3)
        let jpg = insertExifOrientation(try encodeJPEG(width: 16, height: 8, components: 3, samples: stored.quantized(bits: 8)), orientation: 6)
        let im = try Image.decode(jpg)
        XCTAssertEqual(im.width, 8); XCTAssertEqual(im.height, 16)
        let out = try im.encoded(as: .jpeg)
        let info = try ImageInfo.read(bytes: out)
        XCTAssertEqual(info.orientation, 1)
        XCTAssertEqual(info.width, 8); XCTAssertEqual(info.height, 16)
    }

    func testTensorConversion() throws {
        let im = ramp(width: 5, height: 3, channels: 3)
        let t = im.tensor()
        XCTAssertEqual(t.shape, [1, 3, 5, 3])
        XCTAssertEqual(t.scalars, im.pixels)
        let s = im.tensor(range: .signed)
        XCTAssertEqual(s.scalars.min()!, 2 * im.pixels.min()! - 1, accuracy: 1e-6)
        XCTAssertLessThan(maxDiff(Image(tensor: s, range: .signed), im), 1e-6)
        let batch = Image.batchTensor([im, im, im])
        XCTAssertEqual(batch.shape, [3, 3, 5, 3])
        XCTAssertEqual(Image.images(from: batch).count, 3)
        XCTAssertEqual(Image(tensor: batch, index: 2), im)
    }

    func testResizeAreaIsExactAverage() throws {
        let im = Image(width: 4, height: 2, channels: 1, pixels: [0, 1, 0.5, 0.5, 1, 0, 0.25, 0.75])
        let r = try im.resized(width: 2, height: 1, filter: .area)
        XCTAssertEqual(r.pixels[0], 0.5, accuracy: 1e-6)
        XCTAssertEqual(r.pixels[1], 0.5, accuracy: 1e-6)
    }

    func testShrinkingAntialiases() throws {
        var checker = Image(width: 64, height: 64, channels: 1, repeating: 0)
        for y in 0..<64 { for x in 0..<64 where (x + y) % 2 == 0 { checker[x, y, 0] = 1 } }
        for f in ResizeFilter.allCases {
            let r = try checker.resized(width: 16, height: 16, filter: f)
            for y in 2..<14 { for x in 2..<14 {
                XCTAssertEqual(r[x, y, 0], 0.5, accuracy: 0.02, "\(f) at \(x),\(y)")
            } }
        }
    }

    func testEnlargingIsSmoothAndKeepsConstants() throws {
        let flat = Image(width: 3, height: 3, channels: 3, repeating: 0.3)
        for f in ResizeFilter.allCases {
            let r = try flat.resized(width: 10, height: 7, filter: f)
            XCTAssertTrue(r.pixels.allSatisfy { abs($0 - 0.3) < 1e-5 }, "\(f)")
        }
        let grad = Image(width: 4, height: 1, channels: 1, pixels: [0, 0.25, 0.5, 0.75])
        for f in [ResizeFilter.bilinear, .bicubic, .automatic] {
            let r = try grad.resized(width: 16, height: 1, filter: f)
            for x in 1..<16 { XCTAssertGreaterThanOrEqual(r.pixels[x] + 1e-6, r.pixels[x - 1], "\(f)") }
        }
        assertImageError(["positive"]) { _ = try grad.resized(width: 0, height: 3) }
    }

    func testCropsAndFill() throws {
        let im = ramp(width: 10, height: 6, channels: 3)
        let c = try im.cropped(x: 2, y: 1, width: 3, height: 2)
        XCTAssertEqual(c.pixel(x: 0, y: 0), im.pixel(x: 2, y: 1))
        XCTAssertEqual(c.pixel(x: 2, y: 1), im.pixel(x: 4, y: 2))
        let cc = try im.centerCropped(width: 4, height: 4)
        XCTAssertEqual(cc.pixel(x: 0, y: 0), im.pixel(x: 3, y: 1))
        assertImageError(["does not fit"]) { _ = try im.cropped(x: 8, y: 0, width: 3, height: 1) }
        let filled = try im.resizedToFill(width: 5, height: 5)
        XCTAssertEqual(filled.width, 5); XCTAssertEqual(filled.height, 5)
        let tall = try Image(width: 3, height: 40, channels: 1, repeating: 0.2).resizedToFill(width: 16, height: 16)
        XCTAssertEqual(tall.width, 16); XCTAssertEqual(tall.height, 16)
        let longer = try im.resized(longerSide: 5)
        XCTAssertEqual(longer.width, 5); XCTAssertEqual(longer.height, 3)
    }

    func testGrid() throws {
        let a = Image(width: 2, height: 3, channels: 1, repeating: 0)
        let b = Image(width: 2, height: 3, channels: 1, repeating: 0.5)
        let g = try Image.grid([a, b, a], columns: 2, padding: 1, background: 1)
        XCTAssertEqual(g.width, 2 * 2 + 3)
        XCTAssertEqual(g.height, 2 * 3 + 3)
        XCTAssertEqual(g[0, 0, 0], 1)
        XCTAssertEqual(g[1, 1, 0], 0)     // tile 0
        XCTAssertEqual(g[4, 1, 0], 0.5)   // tile 1
        XCTAssertEqual(g[1, 5, 0], 0)     // tile 2 (second row)
        XCTAssertEqual(g[4, 5, 0], 1)     // empty cell
        let t = Image.batchTensor([a, b, a, b], range: .unit)
        let gt = try Image.grid(tensor: t, padding: 0)
        XCTAssertEqual(gt.width, 4); XCTAssertEqual(gt.height, 6)
        assertImageError(["grid"]) { _ = try Image.grid([]) }
        assertImageError(["grid", "image 1"]) { _ = try Image.grid([a, Image(width: 3, height: 3, channels: 1, repeating: 0)]) }
    }
}
