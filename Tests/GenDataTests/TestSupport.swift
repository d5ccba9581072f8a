import CImageCodecs
import Foundation
import XCTest
@testable import GenData

/// Folder of the shared bad-input cases: $GEN_DATA_CASES, else ../shared/cases next to the
/// package root (found from this file's path). nil when absent.
func casesDirectory() -> String? {
    if let env = ProcessInfo.processInfo.environment["GEN_DATA_CASES"], !env.isEmpty {
        return FileManager.default.fileExists(atPath: env) ? env : nil
    }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let dir = root.deletingLastPathComponent().appendingPathComponent("shared/cases").path
    return FileManager.default.fileExists(atPath: dir) ? dir : nil
}

/// Path of a case input, or XCTSkip when the shared cases are absent.
func casePath(_ name: String) throws -> String {
    guard let dir = casesDirectory() else {
        throw XCTSkip("shared cases not found (set GEN_DATA_CASES or provide ../shared/cases)")
    }
    let p = dir + "/inputs/" + name
    guard FileManager.default.fileExists(atPath: p) else { throw XCTSkip("case input \(p) missing") }
    return p
}

/// Shared data folder ($GEN_DATA or ../shared/data), or nil.
func dataDirectory() -> String? {
    if let env = ProcessInfo.processInfo.environment["GEN_DATA"], !env.isEmpty {
        return FileManager.default.fileExists(atPath: env) ? env : nil
    }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let dir = root.deletingLastPathComponent().appendingPathComponent("shared/data").path
    return FileManager.default.fileExists(atPath: dir) ? dir : nil
}

/// A fresh temporary folder, removed at the end of the test.
func makeTempDir(_ test: XCTestCase) throws -> String {
    let dir = NSTemporaryDirectory() + "gen-data-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}

enum TestCodecError: Error { case failed(String) }

/// Encodes raw PNG rows through libpng (any colour type / depth). `rows` as the PNG stores
/// them, 16-bit samples as native UInt16 in `words`.
func encodePNG(width: Int, height: Int, color: Int32, depth: Int32, bytes: [UInt8] = [], words: [UInt16] = [],
               interlace: Bool = false, palette: [UInt8] = [], trnsBytes: [UInt8] = [], trnsKey: [UInt16] = []) throws -> [UInt8] {
    var out = cimg_buffer()
    var msg = [CChar](repeating: 0, count: 256)
    defer { cimg_buffer_free(&out) }
    let rc: Int32 = palette.withUnsafeBufferPointer { pal in
        let palPtr = palette.isEmpty ? nil : pal.baseAddress
        let run: (UnsafeRawPointer?) -> Int32 = { px in
            if !trnsBytes.isEmpty {
                return trnsBytes.withUnsafeBytes { t in
                    cimg_png_encode(px, UInt32(width), UInt32(height), color, depth, interlace ? 1 : 0, palPtr,
                                    Int32(palette.count / 3), t.baseAddress, Int32(trnsBytes.count), &out, &msg, msg.count)
                }
            } else if !trnsKey.isEmpty {
                return trnsKey.withUnsafeBytes { t in
                    cimg_png_encode(px, UInt32(width), UInt32(height), color, depth, interlace ? 1 : 0, palPtr,
                                    Int32(palette.count / 3), t.baseAddress, Int32(trnsKey.count), &out, &msg, msg.count)
                }
            }
            return cimg_png_encode(px, UInt32(width), UInt32(height), color, depth, interlace ? 1 : 0, palPtr,
                                   Int32(palette.count / 3), nil, 0, &out, &msg, msg.count)
        }
        return depth == 16 ? words.withUnsafeBytes { run($0.baseAddress) } : bytes.withUnsafeBytes { run($0.baseAddress) }
    }
    if rc != 0 { throw TestCodecError.failed(String(cString: msg)) }
    return Array(UnsafeBufferPointer(start: out.data, count: out.size))
}

/// Encodes 8-bit samples as JPEG through libjpeg (1, 3 or 4 = CMYK components).
func encodeJPEG(width: Int, height: Int, components: Int, samples: [UInt8], quality: Int = 95,
                progressive: Bool = false, ycck: Bool = false) throws -> [UInt8] {
    var out = cimg_buffer()
    var msg = [CChar](repeating: 0, count: 256)
    defer { cimg_buffer_free(&out) }
    let rc = samples.withUnsafeBufferPointer {
        cimg_jpeg_encode($0.baseAddress, UInt32(width), UInt32(height), Int32(components), Int32(quality),
                         progressive ? 1 : 0, ycck ? 1 : 0, &out, &msg, msg.count)
    }
    if rc != 0 { throw TestCodecError.failed(String(cString: msg)) }
    return Array(UnsafeBufferPointer(start: out.data, count: out.size))
}

/// Inserts an APP1 Exif segment carrying `orientation` right after SOI.
func insertExifOrientation(_ jpeg: [UInt8], orientation: UInt16, bigEndian: Bool = false) -> [UInt8] {
    var tiff: [UInt8] = []
    func u16(_ v: UInt16) { tiff += bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
    func u32(_ v: UInt32) {
        let b = [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
        tiff += bigEndian ? b : b.reversed()
    }
    tiff += bigEndian ? Array("MM".utf8) : Array("II".utf8)
    u16(42); u32(8)
    u16(2)                                      // two entries
    u16(0x010F); u16(2); u32(4); tiff += Array("gen\0".utf8)  // Make (ASCII, inline)
    u16(0x0112); u16(3); u32(1); u16(orientation); u16(0)
    u32(0)                                      // no next IFD
    let payload = Array("Exif\0\0".utf8) + tiff
    let len = payload.count + 2
    let segment: [UInt8] = [0xFF, 0xE1, UInt8(len >> 8), UInt8(len & 0xFF)] + payload
    return Array(jpeg[0..<2]) + segment + Array(jpeg[2...])
}

/// Asserts that `body` throws an ImageError whose description contains every string in `parts`.
func assertImageError(_ parts: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected an ImageError containing \(parts)", file: file, line: line)
    } catch let e as ImageError {
        for p in parts {
            XCTAssertTrue(e.description.contains(p), "'\(e.description)' does not contain '\(p)'", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error type: \(error)", file: file, line: line)
    }
}

/// Largest absolute difference between two images of one shape.
func maxDiff(_ a: Image, _ b: Image) -> Float {
    precondition(a.pixels.count == b.pixels.count)
    var m: Float = 0
    for i in 0..<a.pixels.count { m = max(m, abs(a.pixels[i] - b.pixels[i])) }
    return m
}

/// Peak resident set size of this process in bytes (Linux: ru_maxrss is in KiB).
func peakRSS() -> Int {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return u.ru_maxrss * 1024
}
