import Foundation
import GenTensor
import XCTest
@testable import GenData

/// Image folders, IDX files (plain/gzip, errors), Fashion-MNIST by name, seeded batching.
final class DatasetTests: XCTestCase {
    func testFolderListingAndConversion() throws {
        let dir = try makeTempDir(self)
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/sub/deeper", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/.hiddendir", withIntermediateDirectories: true)
        try Image(width: 20, height: 10, channels: 3, repeating: 0.2).write(to: dir + "/b.png")
        try Image(width: 7, height: 30, channels: 1, repeating: 0.6).write(to: dir + "/sub/a.jpg")
        try Image(width: 5, height: 5, channels: 4, repeating: 0.9).write(to: dir + "/sub/deeper/c.PNG")
        try Image(width: 5, height: 5, channels: 3, repeating: 0).write(to: dir + "/.hidden.png")
        try Image(width: 5, height: 5, channels: 3, repeating: 0).write(to: dir + "/.hiddendir/x.png")
        try Data("notes".utf8).write(to: URL(fileURLWithPath: dir + "/readme.txt"))
        try Data("junk".utf8).write(to: URL(fileURLWithPath: dir + "/.DS_Store"))
        let ds = try ImageFolderDataset(directory: dir, size: 12, channels: 3)
        XCTAssertEqual(ds.files.map { ($0 as NSString).lastPathComponent }, ["b.png", "a.jpg", "c.PNG"])
        let batch = try ds.batch([0, 1, 2])
        XCTAssertEqual(batch.shape, [3, 12, 12, 3])
        let s = batch.scalars
        XCTAssertEqual(s[0], 0.2, accuracy: 1 / 255)
        XCTAssertEqual(s[12 * 12 * 3 + 5], 0.6, accuracy: 3 / 255)
        // RGBA alpha 0.9 over white: 0.9 * 0.9 + 0.1 = 0.91 (8-bit quantised).
        XCTAssertEqual(s[2 * 12 * 12 * 3], 0.91, accuracy: 2 / 255)
        // Uncached path gives the same samples.
        let lazy = try ImageFolderDataset(directory: dir, size: 12, channels: 3, cacheLimit: 0)
        XCTAssertEqual(try lazy.batch([0, 1, 2]).scalars, s)
        XCTAssertEqual(try lazy.image(at: 1), try ds.image(at: 1))
        XCTAssertEqual(try ds.batch([1], range: .signed).scalars[0], 2 * s[12 * 12 * 3] - 1, accuracy: 1e-6)
    }

    func testAllBadFilesReportedAtOnce() throws {
        let dir = try makeTempDir(self)
        try Image(width: 8, height: 8, channels: 3, repeating: 0.5).write(to: dir + "/good.png")
        try Data("<!DOCTYPE html>".utf8).write(to: URL(fileURLWithPath: dir + "/page.jpg"))
        try Data("GIF89a....".utf8).write(to: URL(fileURLWithPath: dir + "/anim.gif"))
        let png = try Image(width: 8, height: 8, channels: 3, repeating: 0.5).encoded(as: .png)
        try Data(png[0..<png.count / 2]).write(to: URL(fileURLWithPath: dir + "/cut.png"))
        try Data().write(to: URL(fileURLWithPath: dir + "/zero.png"))
        XCTAssertThrowsError(try ImageFolderDataset(directory: dir, size: 8)) { error in
            guard case DatasetError.invalidFiles(let problems) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(problems.map { ($0.path as NSString).lastPathComponent }, ["anim.gif", "cut.png", "page.jpg", "zero.png"])
            let text = "\(error)"
            for part in ["unsupported format GIF", "truncated/corrupt PNG", "not an image", "empty file", "4 invalid image files"] {
                XCTAssertTrue(text.contains(part), "\(part) missing in \(text)")
            }
        }
        var warnings: [String] = []
        let ds = try ImageFolderDataset(directory: dir, size: 8, skipInvalid: true, warn: { warnings.append($0) })
        XCTAssertEqual(ds.count, 1)
        XCTAssertEqual(ds.skipped.count, 4)
        XCTAssertEqual(warnings.count, 4)
        XCTAssertThrowsError(try ImageFolderDataset(directory: dir + "/nope", size: 8))
        let empty = try makeTempDir(self)
        XCTAssertThrowsError(try ImageFolderDataset(directory: empty, size: 8)) { XCTAssertTrue("\($0)".contains("no image files")) }
        XCTAssertThrowsError(try ImageFolderDataset(directory: dir, size: 8, channels: 4))
    }

    /// Link loops end, broken links and named pipes are named as bad files (no silent skip, no
    /// blocking open), and a folder of IDX files gets a hint instead of a bare "no image files".
    func testLinkLoopsBrokenLinksPipesAndIDXFolders() throws {
        let dir = try makeTempDir(self)
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        try Image(width: 8, height: 8, channels: 3, repeating: 0.5).write(to: dir + "/a.png")
        try Image(width: 8, height: 8, channels: 3, repeating: 0.5).write(to: dir + "/sub/b.png")
        try fm.createSymbolicLink(atPath: dir + "/self", withDestinationPath: ".")
        try fm.createSymbolicLink(atPath: dir + "/sub/up", withDestinationPath: "..")
        try fm.createSymbolicLink(atPath: dir + "/sub/again", withDestinationPath: dir + "/sub")
        let listed = ImageFolderDataset.listImageFiles(dir)
        XCTAssertEqual(listed.map { String($0.dropFirst(dir.count)) }, ["/a.png", "/sub/b.png"])
        XCTAssertEqual(try ImageFolderDataset(directory: dir, size: 8).count, 2)
        // A link to a folder outside is followed, once.
        let other = try makeTempDir(self)
        try Image(width: 8, height: 8, channels: 1, repeating: 0.1).write(to: other + "/c.png")
        try fm.createSymbolicLink(atPath: dir + "/linked", withDestinationPath: other)
        XCTAssertEqual(ImageFolderDataset.listImageFiles(dir).map { ($0 as NSString).lastPathComponent }.sorted(), ["a.png", "b.png", "c.png"])
        // A folder reached by a real path and by a link is listed once, under the first name in
        // name order, whatever order the file system returns entries in.
        for (real, alias) in [("a_real", "b_link"), ("b_real", "a_link")] {
            let tree = try makeTempDir(self)
            try fm.createDirectory(atPath: tree + "/" + real, withIntermediateDirectories: true)
            try Image(width: 8, height: 8, channels: 3, repeating: 0.5).write(to: tree + "/" + real + "/x.png")
            try fm.createSymbolicLink(atPath: tree + "/" + alias, withDestinationPath: tree + "/" + real)
            XCTAssertEqual(ImageFolderDataset.listImageFiles(tree).map { String($0.dropFirst(tree.count)) }, ["/" + min(real, alias) + "/x.png"])
        }
        // A link to an ancestor of the root is not followed: nothing from beside the root is pulled in.
        let parent = try makeTempDir(self)
        try fm.createDirectory(atPath: parent + "/data", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: parent + "/elsewhere", withIntermediateDirectories: true)
        try Image(width: 8, height: 8, channels: 3, repeating: 0.5).write(to: parent + "/data/in.png")
        try Image(width: 8, height: 8, channels: 3, repeating: 0.5).write(to: parent + "/elsewhere/out.png")
        try fm.createSymbolicLink(atPath: parent + "/data/up", withDestinationPath: "..")
        try fm.createSymbolicLink(atPath: parent + "/data/top", withDestinationPath: "/")
        XCTAssertEqual(ImageFolderDataset.listImageFiles(parent + "/data").map { ($0 as NSString).lastPathComponent }, ["in.png"])

        try fm.createSymbolicLink(atPath: dir + "/dangling.png", withDestinationPath: dir + "/missing.png")
        XCTAssertEqual(mkfifo(dir + "/pipe.png", 0o644), 0)
        XCTAssertThrowsError(try ImageFolderDataset(directory: dir, size: 8)) { error in
            guard case DatasetError.invalidFiles(let problems) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(problems.map { ($0.path as NSString).lastPathComponent }, ["dangling.png", "pipe.png"])
            XCTAssertTrue(problems[0].reason.contains("broken symbolic link"), problems[0].reason)
            XCTAssertTrue(problems[1].reason.contains("not a regular file"), problems[1].reason)
        }
        XCTAssertThrowsError(try Image(contentsOf: dir + "/pipe.png")) { XCTAssertTrue("\($0)".contains("pipe.png")) }
        XCTAssertEqual(try ImageFolderDataset(directory: dir, size: 8, skipInvalid: true, warn: { _ in }).count, 3)

        let idxDir = try makeTempDir(self)
        for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"] {
            try Data([0, 0, 8, 1, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: idxDir + "/" + name))
        }
        XCTAssertThrowsError(try ImageFolderDataset(directory: idxDir, size: 8)) { error in
            XCTAssertTrue("\(error)".contains("IDX files: pass one of them, e.g. \(idxDir)/t10k-images-idx3-ubyte.gz"), "\(error)")
        }
        // With the training images there, those are suggested.
        try Data([0, 0, 8, 1, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: idxDir + "/train-images-idx3-ubyte.gz"))
        XCTAssertThrowsError(try ImageFolderDataset(directory: idxDir, size: 8)) { error in
            XCTAssertTrue("\(error)".contains("e.g. \(idxDir)/train-images-idx3-ubyte.gz"), "\(error)")
        }
    }

    func idx(_ type: UInt8, _ shape: [Int], payload: [UInt8]) -> [UInt8] {
        var b: [UInt8] = [0, 0, type, UInt8(shape.count)]
        for d in shape { b += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        return b + payload
    }

    func assertIDXError(_ bytes: [UInt8], _ parts: [String], line: UInt = #line) {
        XCTAssertThrowsError(try IDXFile(bytes: bytes, path: "f.idx"), line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("f.idx"), text, line: line)
            for p in parts { XCTAssertTrue(text.contains(p), "'\(p)' not in '\(text)'", line: line) }
        }
    }

    func testIDXParsingAndErrors() throws {
        let f = try IDXFile(bytes: idx(0x08, [2, 3], payload: [1, 2, 3, 4, 5, 6]))
        XCTAssertEqual(f.shape, [2, 3])
        XCTAssertEqual(f.floats(), [1, 2, 3, 4, 5, 6])
        let i16 = try IDXFile(bytes: idx(0x0B, [2], payload: [0xFF, 0xFE, 0x01, 0x00]))
        XCTAssertEqual(i16.integers(), [-2, 256])
        let f32 = try IDXFile(bytes: idx(0x0D, [1], payload: [0x3F, 0xC0, 0, 0]))
        XCTAssertEqual(f32.floats(), [1.5])
        // Wrong magic: says what was expected and what was found.
        assertIDXError([0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0], ["wrong magic number", "0x12345678", "expected", "2049"])
        // Shorter than the header declares: expected and found sizes.
        assertIDXError(idx(0x08, [10, 28, 28], payload: [UInt8](repeating: 0, count: 100)), ["shorter than its header declares", "7856", "found 116"])
        assertIDXError([0, 0, 8, 3, 0, 0], ["shorter than its header", "found 6"])
        assertIDXError([0, 0], ["shorter than its header", "found 2"])
        assertIDXError([], ["empty file (0 bytes)"])
        // A PNG given as IDX names what it looks like.
        let png = try Image(width: 2, height: 2, channels: 1, repeating: 0).encoded(as: .png)
        assertIDXError(png, ["wrong magic", "PNG"])
    }

    func testGzipIDXAndErrors() throws {
        guard let dir = casesDirectory() else { throw XCTSkip("shared cases not found") }
        let gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/inputs/case19_mnist_gzipped/train-images-idx3-ubyte")))
        let ok = try IDXFile(bytes: gz)
        XCTAssertEqual(ok.shape, [10, 28, 28])
        assertIDXError(Array(gz[0..<gz.count / 2]), ["gzip", "truncated"])
        var corrupt = gz
        for i in 20..<40 { corrupt[i] ^= 0xA5 }
        assertIDXError(corrupt, ["gzip"])
    }

    func testFashionMNISTByName() throws {
        let dir = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: dir + "/t10k-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist not installed (\(dir))")
        }
        let test = try MNISTDataset.load(name: "fashion-mnist", split: .test)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(test.height, 28); XCTAssertEqual(test.width, 28)
        XCTAssertEqual(Set(test.labels), Set(0...9))
        let train = try MNISTDataset.load(name: "Fashion_MNIST", split: .train)
        XCTAssertEqual(train.count, 60_000)
        let b = train.batch([0, 59_999], range: .signed)
        XCTAssertEqual(b.shape, [2, 28, 28, 1])
        XCTAssertTrue(b.scalars.allSatisfy { $0 >= -1 && $0 <= 1 })
        XCTAssertThrowsError(try MNISTDataset.load(name: "cifar-100")) { XCTAssertTrue("\($0)".contains("unknown dataset")) }
        XCTAssertThrowsError(try MNISTDataset.load(name: "mnist", searchPaths: ["/nonexistent"])) {
            XCTAssertTrue("\($0)".contains("/nonexistent"))
        }
    }

    func testRealFolderOfJPEGs() throws {
        guard let data = dataDirectory(), FileManager.default.fileExists(atPath: data + "/images/cifar10-frogs") else {
            throw XCTSkip("shared data not found (set GEN_DATA or provide ../shared/data)")
        }
        let ds = try ImageFolderDataset(directory: data + "/images/cifar10-frogs", size: 32, channels: 3)
        XCTAssertEqual(ds.count, 5000)
        let b = try ds.batch([0, 4999], range: .signed)
        XCTAssertEqual(b.shape, [2, 32, 32, 3])
        XCTAssertTrue(b.scalars.allSatisfy { $0 >= -1 && $0 <= 1 })
    }

    func testBatchSamplerDeterministicAndResumable() throws {
        var a = try BatchSampler(count: 10, batchSize: 3, seed: 42)
        var b = try BatchSampler(count: 10, batchSize: 3, seed: 42)
        var c = try BatchSampler(count: 10, batchSize: 3, seed: 43)
        var seenA: [[Int]] = [], seenC: [[Int]] = []
        for _ in 0..<8 { let x = a.next(); XCTAssertEqual(x, b.next()); seenA.append(x); seenC.append(c.next()) }
        XCTAssertNotEqual(seenA, seenC)
        // Each epoch is a permutation; batches 3,3,3,1.
        XCTAssertEqual(seenA[0..<4].map(\.count), [3, 3, 3, 1])
        XCTAssertEqual(seenA[0..<4].flatMap { $0 }.sorted(), Array(0..<10))
        XCTAssertEqual(seenA[4..<8].flatMap { $0 }.sorted(), Array(0..<10))
        XCTAssertNotEqual(seenA[0..<4].flatMap { $0 }, seenA[4..<8].flatMap { $0 })
        // Resume from a saved (JSON) position reproduces the uninterrupted run.
        var run = try BatchSampler(count: 10, batchSize: 3, seed: 7)
        var reference: [[Int]] = []
        for _ in 0..<9 { reference.append(run.next()) }
        var first = try BatchSampler(count: 10, batchSize: 3, seed: 7)
        for _ in 0..<5 { _ = first.next() }
        let saved = try JSONEncoder().encode(first.position)
        let pos = try JSONDecoder().decode(DataPosition.self, from: saved)
        XCTAssertEqual(pos, DataPosition(epoch: 1, indexInEpoch: 3, seed: 7))
        var resumed = try BatchSampler(count: 10, batchSize: 3, seed: 999, position: pos)
        for k in 5..<9 { XCTAssertEqual(resumed.next(), reference[k]) }
        // dropLast and no shuffling.
        var d = try BatchSampler(count: 10, batchSize: 4, seed: 1, shuffle: false, dropLast: true)
        XCTAssertEqual(d.batchesPerEpoch, 2)
        XCTAssertEqual([d.next(), d.next(), d.next()], [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3]])
        XCTAssertThrowsError(try BatchSampler(count: 0, batchSize: 1, seed: 0))
        XCTAssertThrowsError(try BatchSampler(count: 3, batchSize: 0, seed: 0))
        XCTAssertThrowsError(try BatchSampler(count: 3, batchSize: 2, seed: 0, position: DataPosition(epoch: 0, indexInEpoch: 9, seed: 0)))
    }
}
