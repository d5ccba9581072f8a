import Foundation
import GenTensor
import XCTest
@testable import GenData

/// The image cases of /work/shared/cases/CASES.md (case01, 02, 05, 07, 09, 10, 11, 13, 17, 19).
final class ImageCaseTests: XCTestCase {
    // case01: 1-component JPEG must come out as 3 equal channels.
    func testCase01GrayJPEGBecomesRGB() throws {
        let im = try Image(contentsOf: try casePath("case01_gray.jpg"), options: ImageDecodeOptions(channels: 3))
        XCTAssertEqual(im.width, 64)
        XCTAssertEqual(im.height, 48)
        XCTAssertEqual(im.channels, 3)
        for y in 0..<48 { for x in 0..<64 {
            XCTAssertEqual(im[x, y, 0], im[x, y, 1]); XCTAssertEqual(im[x, y, 0], im[x, y, 2])
        } }
        for y in 2..<46 { XCTAssertEqual(im[63, y, 0], 252 / 255, accuracy: 3.5 / 255) }
        XCTAssertEqual(im[32, 24, 0], 20 / 255, accuracy: 3.5 / 255)
        // Default channels for a gray source: 1; the tensor for a VGG asks for 3.
        let gray = try Image(contentsOf: try casePath("case01_gray.jpg"))
        XCTAssertEqual(gray.channels, 1)
        XCTAssertEqual(im.tensor().shape, [1, 48, 64, 3])
    }

    // case02: RGBA style PNG loads as 3 channels; opaque pixels exact; alpha composited onto white.
    func testCase02RGBAComposited() throws {
        let path = try casePath("case02_rgba_style.png")
        let raw = try Image.decodeRaw(try readImageFile(path), path: path, maxPixels: 1 << 20)
        XCTAssertEqual(raw.channels, 4)
        let im = try Image(contentsOf: path)
        XCTAssertEqual(im.channels, 3)
        XCTAssertEqual(im.width, 64)
        XCTAssertEqual(im.height, 64)
        for y in 0..<64 {
            for x in 0..<64 {
                let o = (y * 64 + x) * 4
                let a = Float(raw.data[o + 3]) / 255
                for c in 0..<3 {
                    let expected = Float(raw.data[o + c]) / 255 * a + 1 * (1 - a)
                    XCTAssertEqual(im[x, y, c], expected, accuracy: 1e-6)
                }
                if a == 1 && x < 32 && !(24...39).contains(y) {
                    XCTAssertEqual(im.pixel(x: x, y: y), [1, 0, 0])  // exactly red
                }
                if a == 0 { XCTAssertEqual(im.pixel(x: x, y: y), [1, 1, 1]) }  // transparent -> white
            }
        }
        XCTAssertEqual(im.pixel(x: 5, y: 5), [1, 0, 0])
        XCTAssertEqual(im.pixel(x: 60, y: 5), [1, 1, 1])
        let t = im.tensor()
        XCTAssertEqual(t.shape, [1, 64, 64, 3])
    }

    // case05: progressive JPEG identical to its baseline twin.
    func testCase05ProgressiveIdenticalToBaseline() throws {
        let p = try Image(contentsOf: try casePath("case05_progressive.jpg"))
        let b = try Image(contentsOf: try casePath("case05_baseline.jpg"))
        XCTAssertEqual(p.width, 64); XCTAssertEqual(p.height, 64); XCTAssertEqual(p.channels, 3)
        XCTAssertEqual(p, b)
        XCTAssertTrue(try ImageInfo.read(path: try casePath("case05_progressive.jpg")).progressive)
        XCTAssertFalse(try ImageInfo.read(path: try casePath("case05_baseline.jpg")).progressive)
    }

    // case07: 16-bit PNGs scaled by 1/65535, no stripes, no clipping.
    func testCase07SixteenBit() throws {
        let g = try Image(contentsOf: try casePath("case07_gray16.png"))
        XCTAssertEqual(g.width, 256); XCTAssertEqual(g.height, 16); XCTAssertEqual(g.channels, 1)
        for y in 0..<16 {
            for x in 0..<256 {
                XCTAssertEqual(g[x, y, 0], Float(256 * x + 15 * y) / 65535, accuracy: 1e-6)
                if x > 0 { XCTAssertGreaterThan(g[x, y, 0], g[x - 1, y, 0]) }
            }
        }
        XCTAssertEqual(g[255, 0, 0], 0.9961, accuracy: 1e-4)
        let info = try ImageInfo.read(path: try casePath("case07_gray16.png"))
        XCTAssertEqual(info.bitDepth, 16)
        let rgb = try Image(contentsOf: try casePath("case07_rgb16.png"))
        XCTAssertEqual(rgb.width, 64); XCTAssertEqual(rgb.channels, 3)
        XCTAssertEqual(rgb[63, 0, 0], 0.99977, accuracy: 2e-5)
        XCTAssertLessThan(rgb[63, 0, 0], 1.0)
        XCTAssertLessThan(rgb.pixels.reduce(0, +) / Float(rgb.pixels.count), 0.9)
    }

    // case09: Adam7 interlaced decode identical to the non-interlaced twin.
    func testCase09Interlaced() throws {
        let i = try Image(contentsOf: try casePath("case09_interlaced.png"))
        let n = try Image(contentsOf: try casePath("case09_noninterlaced.png"))
        XCTAssertEqual(i.width, 61); XCTAssertEqual(i.height, 37)
        XCTAssertEqual(i, n)
        XCTAssertTrue(try ImageInfo.read(path: try casePath("case09_interlaced.png")).interlaced)
    }

    // case10: a header declaring 50000x50000 is refused before allocation; the limit is adjustable.
    func testCase10HugeDimensionsRefusedBeforeAllocation() throws {
        let path = try casePath("case10_huge_dims.png")
        let before = peakRSS()
        assertImageError(["case10_huge_dims.png", "50000x50000", "\(ImageDecodeOptions.defaultMaxPixels)", "limit"]) {
            _ = try Image(contentsOf: path)
        }
        XCTAssertLessThan(peakRSS() - before, 100 << 20)
        let info = try ImageInfo.read(path: path)
        XCTAssertEqual(info.width, 50000)
        XCTAssertEqual(info.height, 50000)
        // The limit is a parameter: a small image is refused under a tiny limit, accepted above.
        let small = try casePath("case09_noninterlaced.png")
        assertImageError(["61x37", "limit of 100"]) { _ = try Image(contentsOf: small, options: ImageDecodeOptions(maxPixels: 100)) }
        XCTAssertNoThrow(try Image(contentsOf: small, options: ImageDecodeOptions(maxPixels: 61 * 37)))
    }

    // case11: truncated PNG is a clean error naming the file, alone and inside a dataset.
    func testCase11TruncatedPNG() throws {
        let path = try casePath("case11_truncated.png")
        assertImageError(["case11_truncated.png", "truncated/corrupt PNG"]) { _ = try Image(contentsOf: path) }
        let dir = try makeTempDir(self)
        try FileManager.default.copyItem(atPath: path, toPath: dir + "/case11_truncated.png")
        try FileManager.default.copyItem(atPath: try casePath("case09_noninterlaced.png"), toPath: dir + "/good.png")
        XCTAssertThrowsError(try ImageFolderDataset(directory: dir, size: 8)) { error in
            guard case DatasetError.invalidFiles(let problems) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(problems.count, 1)
            XCTAssertEqual(problems[0].path, dir + "/case11_truncated.png")
            XCTAssertTrue(problems[0].reason.contains("truncated/corrupt PNG"))
            XCTAssertTrue("\(error)".contains("case11_truncated.png"))
        }
        var warnings: [String] = []
        let ds = try ImageFolderDataset(directory: dir, size: 8, skipInvalid: true, warn: { warnings.append($0) })
        XCTAssertEqual(ds.count, 1)
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("case11_truncated.png"))
    }

    // case13: the format comes from magic bytes, never the extension.
    func testCase13MagicBytesNotExtension() throws {
        let png = try Image(contentsOf: try casePath("case13_png_named.jpg"))
        XCTAssertEqual(png.width, 32); XCTAssertEqual(png.height, 32)
        for (x, y) in [(4, 4), (16, 8), (28, 12)] {
            XCTAssertEqual(png.pixel(x: x, y: y)[0], 1, accuracy: 1.0 / 255)
            XCTAssertEqual(png.pixel(x: x, y: y)[1], 0.5, accuracy: 1.0 / 255)
            XCTAssertEqual(png.pixel(x: x, y: y)[2], 0, accuracy: 1.0 / 255)
        }
        for (x, y) in [(4, 28), (16, 22), (28, 30)] {
            XCTAssertEqual(png.pixel(x: x, y: y)[0], 0, accuracy: 1.0 / 255)
            XCTAssertEqual(png.pixel(x: x, y: y)[1], 0.25, accuracy: 1.0 / 255)
            XCTAssertEqual(png.pixel(x: x, y: y)[2], 1, accuracy: 1.0 / 255)
        }
        assertImageError(["case13_gif_named.jpg", "unsupported format GIF"]) { _ = try Image(contentsOf: try casePath("case13_gif_named.jpg")) }
        assertImageError(["case13_html_named.jpg", "not an image (starts with '<!'"]) { _ = try Image(contentsOf: try casePath("case13_html_named.jpg")) }
        XCTAssertEqual(try ImageInfo.read(path: try casePath("case13_png_named.jpg")).format, .png)
    }

    /// The output format comes from the extension; a folder given as the output is named as one.
    func testOutputFormatFromPath() throws {
        XCTAssertEqual(try ImageFileFormat(path: "a.PNG"), .png)
        XCTAssertEqual(try ImageFileFormat(path: "b.jpeg"), .jpeg)
        assertImageError(["c.gif", "extension '.gif'"]) { _ = try ImageFileFormat(path: "c.gif") }
        let folder = NSTemporaryDirectory()
        assertImageError(["is a folder"]) { _ = try ImageFileFormat(path: folder) }
    }

    /// A file cut off inside the PNG or JPEG signature is a truncated image, not "not an image".
    func testCutInsideTheSignatureIsTruncated() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gen-sig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, bytes, expected) in [("a.jpg", [UInt8]([0xFF, 0xD8]), "truncated/corrupt JPEG: the file ends after 2 bytes"),
                                        ("b.png", [0x89, 0x50, 0x4E], "truncated/corrupt PNG: the file ends after 3 bytes"),
                                        ("c.png", [0xFF], "truncated/corrupt JPEG: the file ends after 1 byte,")] {
            let url = dir.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            assertImageError([name, expected]) { _ = try Image(contentsOf: url.path) }
        }
        let other = dir.appendingPathComponent("d.png")
        try Data([0x89, 0x51]).write(to: other)
        assertImageError(["not an image"]) { _ = try Image(contentsOf: other.path) }
    }

    // case17: a folder mixing gray, RGBA, palette, 16-bit, CMYK and sizes loads at one shape.
    func testCase17MixedFolder() throws {
        guard casesDirectory() != nil else { throw XCTSkip("shared cases not found") }
        let dir = try casePath("case17_mixed_dataset")
        for channels in [3, 1] {
            let ds = try ImageFolderDataset(directory: dir, size: 16, channels: channels)
            XCTAssertEqual(ds.count, 6)
            let batch = try ds.batch(Array(0..<6), range: .signed)
            XCTAssertEqual(batch.shape, [6, 16, 16, channels])
            XCTAssertTrue(batch.scalars.allSatisfy { $0 >= -1 && $0 <= 1 })
        }
        // Each kind decodes with the expected source description.
        let kinds: [(String, ImageColorModel, Int)] = [
            ("a_rgb_32x32.png", .rgb, 8), ("b_gray_40x24.jpg", .gray, 8), ("c_rgba_32x32.png", .rgba, 8),
            ("d_palette_17x31.png", .palette, 4), ("e_gray16_28x28.png", .gray, 16), ("f_cmyk_30x30.jpg", .cmyk, 8),
        ]
        for (name, model, depth) in kinds {
            let info = try ImageInfo.read(path: dir + "/" + name)
            XCTAssertEqual(info.colorModel, model, name)
            XCTAssertEqual(info.bitDepth, depth, name)
            let im = try Image(contentsOf: dir + "/" + name, options: ImageDecodeOptions(channels: 3))
            XCTAssertEqual(im.channels, 3)
            XCTAssertTrue(im.pixels.allSatisfy { $0 >= 0 && $0 <= 1 }, name)
        }
        XCTAssertTrue(try ImageInfo.read(path: dir + "/f_cmyk_30x30.jpg").adobeInverted)
    }

    // case19: gzip-compressed IDX files without .gz decompress to the reference.
    func testCase19GzippedIDX() throws {
        let gz = try casePath("case19_mnist_gzipped")
        let ref = try casePath("case19_mnist_reference")
        for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"] {
            let a = try IDXFile(path: gz + "/" + name)
            let b = try IDXFile(path: ref + "/" + name)
            XCTAssertEqual(a.shape, b.shape)
            XCTAssertEqual(a.payload, b.payload)
        }
        let ds = try MNISTDataset(imagesPath: gz + "/train-images-idx3-ubyte", labelsPath: gz + "/train-labels-idx1-ubyte")
        let r = try MNISTDataset(imagesPath: ref + "/train-images-idx3-ubyte", labelsPath: ref + "/train-labels-idx1-ubyte")
        XCTAssertEqual(ds.count, 10); XCTAssertEqual(ds.height, 28); XCTAssertEqual(ds.width, 28)
        XCTAssertEqual(ds.pixels, r.pixels)
        XCTAssertEqual(ds.labels, r.labels)
        XCTAssertEqual(ds.batch(Array(0..<10)).shape, [10, 28, 28, 1])
        let named = try MNISTDataset.load(name: "mnist", split: .train, searchPaths: [gz])
        XCTAssertEqual(named.labels, r.labels)
    }
}
