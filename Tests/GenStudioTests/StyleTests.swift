import Foundation
import XCTest
@testable import GenStudio
import GenNN
import GenData
import GenTensor

/// A tiny feature extractor for fast tests: conv3x3(3→4)+ReLU "c1", maxpool 2 "p1",
/// conv3x3(4→6)+ReLU "c2". Counts forward passes. `poison` makes every activation NaN.
final class TinyExtractor: FeatureExtractor {
    let name = "tiny"
    let layerNames = ["c1", "p1", "c2"]
    let minimumInputSize = 8
    let k1: Tensor, b1: Tensor, k2: Tensor, b2: Tensor
    var forwardPasses = 0
    var poison = false

    init(seed: UInt64 = 3) {
        var rng = RandomGenerator(seed: seed)
        k1 = Tensor.normal([3, 3, 3, 4], standardDeviation: 0.5, using: &rng)
        b1 = Tensor.normal([4], standardDeviation: 0.1, using: &rng)
        k2 = Tensor.normal([3, 3, 4, 6], standardDeviation: 0.4, using: &rng)
        b2 = Tensor.normal([6], standardDeviation: 0.1, using: &rng)
    }
    func preprocess(_ rgb: Tensor) -> Tensor { (rgb - 0.5) * 2 }
    func resolveLayer(_ name: String) -> String? { layerNames.contains(name) ? name : (name == "relu1" ? "c1" : nil) }
    func activations(_ input: Tensor, layers: [String]) -> [String: Tensor] {
        forwardPasses += 1
        var out: [String: Tensor] = [:]
        let deepest = layers.compactMap { layerNames.firstIndex(of: $0) }.max() ?? -1
        var h = Tensor.conv2d(input, kernel: k1, bias: b1, padding: .same).relu()
        if poison { h = h * Float.nan }
        if layers.contains("c1") { out["c1"] = h }
        if deepest < 1 { return out }
        h = h.maxPool2d(poolSize: (2, 2))
        if layers.contains("p1") { out["p1"] = h }
        if deepest < 2 { return out }
        h = Tensor.conv2d(h, kernel: k2, bias: b2, padding: .same).relu()
        if layers.contains("c2") { out["c2"] = h }
        return out
    }
}

/// A smooth 3-channel test picture.
func testPicture(width: Int, height: Int, phase: Float) -> Image {
    var px = [Float](repeating: 0, count: width * height * 3)
    for y in 0..<height { for x in 0..<width { for c in 0..<3 {
        px[(y * width + x) * 3 + c] = 0.5 + 0.4 * sin(Float(x) * (0.3 + 0.2 * Float(c)) + Float(y) * 0.25 + phase * Float(c + 1))
    } } }
    return Image(width: width, height: height, channels: 3, pixels: px)
}

func tinyStyleConfig(iterations: Int = 8) -> StyleConfig {
    var c = StyleConfig()
    c.network = "tiny"
    c.contentLayers = ["c2"]
    c.styleLayers = ["c1", "c2"]
    c.contentWeight = 1
    c.styleWeight = 100
    c.tvWeight = 0.01
    c.iterations = iterations
    c.historySize = 10
    return c
}

final class StyleTests: XCTestCase {
    func writeImages(_ dir: URL, contentSize: (Int, Int) = (20, 16), styleSize: (Int, Int) = (18, 18)) throws -> (URL, URL) {
        let c = dir.appendingPathComponent("content.png"), s = dir.appendingPathComponent("style.png")
        try testPicture(width: contentSize.0, height: contentSize.1, phase: 0).write(to: c.path)
        try testPicture(width: styleSize.0, height: styleSize.1, phase: 2).write(to: s.path)
        return (c, s)
    }

    func testGramIsNormalisedFTransposeF() {
        var rng = RandomGenerator(seed: 1)
        let a = Tensor.normal([1, 3, 5, 4], using: &rng)
        let g = StyleLoss.gram(a).scalars
        let x = a.scalars
        for i in 0..<4 { for j in 0..<4 {
            var s: Float = 0
            for p in 0..<15 { s += x[p * 4 + i] * x[p * 4 + j] }
            XCTAssertEqual(g[i * 4 + j], s / 60, accuracy: 1e-5)
        } }
    }

    func testTotalVariationGradientMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 2)
        var x = Tensor.uniform([1, 5, 6, 3], using: &rng).scalars
        let (_, g) = x.withUnsafeBufferPointer { StyleLoss.totalVariation($0.baseAddress!, height: 5, width: 6, channels: 3) }
        for i in [0, 7, 20, 44, 89] {
            let e: Float = 1e-3
            let old = x[i]
            x[i] = old + e
            let fp = x.withUnsafeBufferPointer { StyleLoss.totalVariation($0.baseAddress!, height: 5, width: 6, channels: 3).value }
            x[i] = old - e
            let fm = x.withUnsafeBufferPointer { StyleLoss.totalVariation($0.baseAddress!, height: 5, width: 6, channels: 3).value }
            x[i] = old
            XCTAssertEqual(Double(g[i]), (fp - fm) / Double(2 * e), accuracy: 2e-3 * max(1, abs(Double(g[i]))), "pixel \(i)")
        }
    }

    func testLossGradientMatchesFiniteDifferences() throws {
        let net = TinyExtractor()
        let content = testPicture(width: 12, height: 10, phase: 0).tensor()
        let style = testPicture(width: 10, height: 10, phase: 1.5).tensor()
        let loss = try StyleLoss(network: net, content: content, styles: [style], contentLayers: ["c2"], styleLayers: ["c1", "c2"],
                                 weights: StyleLossWeights(content: 1, style: 10, totalVariation: 0.1))
        var x = testPicture(width: 12, height: 10, phase: 0.7).pixels
        let (_, g) = loss.evaluate(x)
        for i in [3, 50, 151, 300] {
            let e: Float = 2e-3
            let old = x[i]
            x[i] = old + e; let fp = loss.evaluate(x).terms.total
            x[i] = old - e; let fm = loss.evaluate(x).terms.total
            x[i] = old
            let fd = (fp - fm) / Double(2 * e)
            XCTAssertEqual(Double(g[i]), fd, accuracy: 0.03 * max(abs(fd), 1e-2), "pixel \(i)")
        }
    }

    func testRunLowersTheLossComputesTargetsOnceAndWritesRecords() throws {
        let dir = try makeStudioTempDir(self)
        let (c, s) = try writeImages(dir)
        let net = TinyExtractor()
        var config = tinyStyleConfig(iterations: 10)
        config.saveEvery = 5
        let out = dir.appendingPathComponent("run")
        let t = try StyleTransfer(content: c, styles: [s, s], config: config, output: out, arguments: ["gen", "style"],
                                  progress: SilentProgress(), network: net)
        let passesBefore = net.forwardPasses
        XCTAssertEqual(passesBefore, 0, "nothing runs before run()")
        let summary = try t.run()
        let loss = try XCTUnwrap(t.losses.first)
        // Targets: one pass for the content, one per style image; then one pass per evaluation.
        XCTAssertEqual(loss.targetPasses, 3)
        XCTAssertEqual(net.forwardPasses, 3 + loss.evaluations)
        XCTAssertEqual(summary.evaluations, loss.evaluations)
        XCTAssertGreaterThan(summary.evaluations, 10)
        // The loss fell.
        let csv = try String(contentsOf: out.appendingPathComponent("metrics.csv"), encoding: .utf8)
        let totals = csv.split(separator: "\n").dropFirst().compactMap { Double($0.split(separator: ",")[3]) }
        XCTAssertEqual(totals.count, summary.iterations)
        let first = try XCTUnwrap(totals.first), last = try XCTUnwrap(totals.last)
        XCTAssertLessThan(last, first * 0.5)
        for f in ["result.png", "run.json", "iter-00005.png", "iter-00010.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), f)
        }
        let result = try Image(contentsOf: out.appendingPathComponent("result.png").path)
        XCTAssertEqual(result.width, 20); XCTAssertEqual(result.height, 16)
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("run.json"))) as? [String: Any]
        XCTAssertEqual(record?["generator"] as? String, "style")
    }

    func testAdamMultiscaleRandomInitAndDeterminism() throws {
        let dir = try makeStudioTempDir(self)
        let (c, s) = try writeImages(dir, contentSize: (80, 72))
        var config = tinyStyleConfig(iterations: 6)
        config.optimizer = "adam"
        config.initialImage = "random"
        config.multiscale = true
        config.preserveColors = true
        config.seed = 9
        func run(_ name: String) throws -> (StyleSummary, Image) {
            let out = dir.appendingPathComponent(name + ".png")
            let t = try StyleTransfer(content: c, styles: [s], config: config, output: out, arguments: [],
                                      progress: SilentProgress(), network: TinyExtractor())
            let sum = try t.run()
            XCTAssertEqual(t.losses.count, 2, "80 px: scales 40 and 80 (20 px is below the 32 px floor of a coarse scale)")
            return (sum, try Image(contentsOf: out.path))
        }
        let (a, ia) = try run("a"), (_, ib) = try run("b")
        XCTAssertEqual(a.evaluations, 12)
        XCTAssertEqual(ia.pixels, ib.pixels, "same seed, same result")
        // Progress counts the scales as levels.
        let progress = RecordingProgress()
        _ = try StyleTransfer(content: c, styles: [s], config: config, output: dir.appendingPathComponent("p.png"), arguments: [],
                              progress: progress, network: TinyExtractor()).run()
        let levels = Set(progress.events.compactMap { e -> String? in
            if case .step(_, _, let level, let phase, _, _, _, _, _, _) = e { return "\(phase) \(level)" } else { return nil }
        })
        XCTAssertEqual(levels, ["level 1", "level 2"])
    }

    func testPreserveColorsKeepsContentChrominance() {
        let content = testPicture(width: 6, height: 5, phase: 0)
        let same = StyleColor.preservingColors(stylised: content, content: content)
        for (u, v) in zip(same.pixels, content.pixels) { XCTAssertEqual(u, v, accuracy: 2e-3) }
        let gray = Image(width: 6, height: 5, channels: 3, repeating: 0.5)
        let out = StyleColor.preservingColors(stylised: gray, content: content)
        // Luminance of the stylised image is kept.
        for p in 0..<30 {
            let y = 0.299 * out.pixels[3 * p] + 0.587 * out.pixels[3 * p + 1] + 0.114 * out.pixels[3 * p + 2]
            XCTAssertEqual(y, 0.5, accuracy: 0.03)
        }
    }

    // MARK: bad inputs: clean errors, nothing written

    func assertCleanFailure(content: URL, styles: [URL], config: StyleConfig, network: FeatureExtractor? = TinyExtractor(),
                            file: StaticString = #filePath, line: UInt = #line, check: (Error) -> Void) throws {
        let dir = try makeStudioTempDir(self)
        let out = dir.appendingPathComponent("out")
        XCTAssertThrowsError(try StyleTransfer(content: content, styles: styles, config: config, output: out, arguments: [],
                                               progress: SilentProgress(), network: network).run(),
                             file: file, line: line) { check($0) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "no output folder after a failed start", file: file, line: line)
    }

    func testMissingGifHtmlAndTruncatedImagesAreImageErrors() throws {
        let dir = try makeStudioTempDir(self)
        let (c, s) = try writeImages(dir)
        var bad = [dir.appendingPathComponent("missing.png")]
        for name in ["case13_gif_named.jpg", "case13_html_named.jpg", "case11_truncated.png"] {
            if let u = try? studioCasePath(name) { bad.append(u) }
        }
        let empty = dir.appendingPathComponent("empty.jpg"); try Data().write(to: empty); bad.append(empty)
        for b in bad {
            try assertCleanFailure(content: b, styles: [s], config: tinyStyleConfig()) { e in
                XCTAssertTrue(e is ImageError, "\(b.lastPathComponent): \(e)")
                XCTAssertTrue("\(e)".contains(b.lastPathComponent), "\(e)")
            }
            try assertCleanFailure(content: c, styles: [s, b], config: tinyStyleConfig()) { e in XCTAssertTrue(e is ImageError, "\(e)") }
        }
    }

    func testGrayAndAlphaStyleImagesAreAccepted() throws {
        let dir = try makeStudioTempDir(self)
        let (c, _) = try writeImages(dir)
        for name in ["case01_gray.jpg", "case02_rgba_style.png", "case07_rgb16.png", "case09_interlaced.png"] {
            guard let s = try? studioCasePath(name) else { continue }
            let t = try StyleTransfer(content: c, styles: [s], config: tinyStyleConfig(iterations: 2),
                                      output: dir.appendingPathComponent(name + ".out"), arguments: [],
                                      progress: SilentProgress(), network: TinyExtractor())
            XCTAssertNoThrow(try t.run(), name)
        }
    }

    func testTooSmallImagesGiveTheMinimum() throws {
        let dir = try makeStudioTempDir(self)
        let (c, s) = try writeImages(dir, styleSize: (6, 6))
        // A 6x6 style image is scaled to the output size (documented upscale) and works...
        var config = tinyStyleConfig(iterations: 1)
        XCTAssertNoThrow(try StyleTransfer(content: c, styles: [s], config: config, output: dir.appendingPathComponent("ok"),
                                           arguments: [], progress: SilentProgress(), network: TinyExtractor()))
        // ...but not below the network's minimum input.
        config.styleScale = 0.3
        try assertCleanFailure(content: c, styles: [s], config: config) { e in
            XCTAssertTrue("\(e)".contains("minimum input of 8"), "\(e)")
            guard case StudioError.invalidOption = e else { return XCTFail("\(e)") }
        }
        config.styleScale = 1
        config.size = 6
        try assertCleanFailure(content: c, styles: [s], config: config) { e in
            XCTAssertTrue("\(e)".contains("minimum input of 8"), "\(e)")
            XCTAssertTrue("\(e)".contains(c.lastPathComponent), "the error does not name the content file: \(e)")
        }
    }

    func testHugeContentIsScaledToMaxSize() throws {
        let dir = try makeStudioTempDir(self)
        let (_, s) = try writeImages(dir)
        let big = dir.appendingPathComponent("big.png")
        try testPicture(width: 300, height: 200, phase: 0).write(to: big.path)
        var config = tinyStyleConfig(iterations: 1)
        config.maxSize = 30
        let t = try StyleTransfer(content: big, styles: [s], config: config, output: dir.appendingPathComponent("o"),
                                  arguments: [], progress: SilentProgress(), network: TinyExtractor())
        XCTAssertEqual(t.width, 30); XCTAssertEqual(t.height, 20)
        if let huge = try? studioCasePath("case10_huge_dims.png") {
            try assertCleanFailure(content: huge, styles: [s], config: config) { e in
                guard case ImageError.tooLarge = e else { return XCTFail("\(e)") }
            }
        }
    }

    func testBadOptionsAndLayers() throws {
        let dir = try makeStudioTempDir(self)
        let (c, s) = try writeImages(dir)
        var config = tinyStyleConfig()
        config.styleLayers = ["nope"]
        try assertCleanFailure(content: c, styles: [s], config: config) { e in XCTAssertTrue("\(e)".contains("no layer 'nope'"), "\(e)") }
        config = tinyStyleConfig()
        config.styleBlendWeights = [1, 2]
        try assertCleanFailure(content: c, styles: [s], config: config) { e in XCTAssertTrue(e is StudioError, "\(e)") }
        config = tinyStyleConfig()
        config.tvWeight = -1
        try assertCleanFailure(content: c, styles: [s], config: config) { e in XCTAssertTrue(e is StudioError, "\(e)") }
    }

    func testNonFiniteLossStopsWithoutAResult() throws {
        let dir = try makeStudioTempDir(self)
        let (c, s) = try writeImages(dir)
        let net = TinyExtractor()
        let out = dir.appendingPathComponent("nan")
        let t = try StyleTransfer(content: c, styles: [s], config: tinyStyleConfig(), output: out, arguments: [],
                                  progress: SilentProgress(), network: net)
        net.poison = true
        XCTAssertThrowsError(try t.run()) { e in
            guard case StyleError.nonFiniteLoss = e else { return XCTFail("\(e)") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("result.png").path))
    }

    func testMissingAndBadWeightsFiles() throws {
        let dir = try makeStudioTempDir(self)
        var config = StyleConfig()
        config.weightsPath = dir.appendingPathComponent("absent.pth").path
        XCTAssertThrowsError(try StyleTransfer.loadNetwork(config)) { e in XCTAssertTrue(e is PretrainedError, "\(e)") }
        let junk = dir.appendingPathComponent("junk.pth")
        var rng = RandomGenerator(seed: 5)
        try Data((0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) }).write(to: junk)
        config.weightsPath = junk.path
        XCTAssertThrowsError(try StyleTransfer.loadNetwork(config)) { e in
            XCTAssertTrue(e is PretrainedError || e is StudioError || e is CheckpointError, "\(type(of: e)): \(e)")
        }
        let empty = dir.appendingPathComponent("empty.pth"); try Data().write(to: empty)
        config.weightsPath = empty.path
        XCTAssertThrowsError(try StyleTransfer.loadNetwork(config))
    }
}

/// `gen style` through the built executable: bad inputs exit with 2 and leave no output.
final class StyleCommandLineTests: XCTestCase {
    func binary() throws -> URL {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["GEN_BINARY"], fm.isExecutableFile(atPath: env) { return URL(fileURLWithPath: env) }
        // The `gen` of this build first: beside the test bundle in the build products folder (a
        // stale binary in another scratch folder would test old code).
        var candidates: [URL] = []
        var dir = Bundle(for: StyleCommandLineTests.self).bundleURL.deletingLastPathComponent()
        for _ in 0..<3 {
            candidates.append(dir.appendingPathComponent("gen"))
            dir = dir.deletingLastPathComponent()
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/gen"))
        if let u = candidates.first(where: { fm.isExecutableFile(atPath: $0.path) && !$0.hasDirectoryPath }) { return u }
        throw XCTSkip("gen executable not found (build it, or set GEN_BINARY)")
    }

    func gen(_ args: [String], in dir: URL) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = try binary()
        p.arguments = args
        p.currentDirectoryURL = dir
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testBadInputsExitWithTwoAndWriteNothing() throws {
        let dir = try makeStudioTempDir(self)
        let content = dir.appendingPathComponent("c.png"), style = dir.appendingPathComponent("s.png")
        try testPicture(width: 40, height: 32, phase: 0).write(to: content.path)
        try testPicture(width: 40, height: 40, phase: 1).write(to: style.path)
        var cases: [[String]] = [
            [content.path, dir.appendingPathComponent("missing.jpg").path, "--random-weights"],
            [content.path],                                                                   // no style image
            [content.path, style.path, "--random-weights", "--size", "8"],                     // below SqueezeNet's minimum
            [content.path, style.path, "--random-weights", "--style-scale", "0.05"],          // style too small
            [content.path, style.path, "--weights", dir.appendingPathComponent("none.pth").path],
            [content.path, style.path, "--random-weights", "--style-layers", "fire99"],
            [content.path, style.path, "--random-weights", "--tv-weight", "-1"],
        ]
        let junk = dir.appendingPathComponent("junk.pth")
        try Data(repeating: 7, count: 1000).write(to: junk)
        cases.append([content.path, style.path, "--weights", junk.path])
        for name in ["case13_gif_named.jpg", "case11_truncated.png", "case13_html_named.jpg"] {
            if let u = try? studioCasePath(name) { cases.append([content.path, u.path, "--random-weights"]) }
        }
        for (i, c) in cases.enumerated() {
            let out = dir.appendingPathComponent("out\(i)")
            let (status, stderr) = try gen(["style"] + c + ["--output", out.path, "--iterations", "1"], in: dir)
            XCTAssertEqual(status, 2, "\(c): \(stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(c) left \(out.path)")
            XCTAssertFalse(stderr.isEmpty)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("outputs").path))
    }

    func testTinyRunWritesTheResultFile() throws {
        let dir = try makeStudioTempDir(self)
        let content = dir.appendingPathComponent("c.png"), style = dir.appendingPathComponent("s.png")
        try testPicture(width: 48, height: 40, phase: 0).write(to: content.path)
        try testPicture(width: 40, height: 40, phase: 1).write(to: style.path)
        let out = dir.appendingPathComponent("result.jpg")
        let (status, stderr) = try gen(["style", content.path, style.path, "--random-weights", "--iterations", "2",
                                        "--output", out.path, "--threads", "1"], in: dir)
        XCTAssertEqual(status, 0, stderr)
        XCTAssertEqual(try Image(contentsOf: out.path).width, 48)
        // Records are named after the result, so a second result in the same folder keeps its own.
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("result-run.json").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("result-metrics.csv").path))
        let first = try Data(contentsOf: dir.appendingPathComponent("result-run.json"))
        let (s2, e2) = try gen(["style", content.path, style.path, "--random-weights", "--iterations", "2", "--save-every", "1",
                                "--output", dir.appendingPathComponent("other.png").path, "--threads", "1"], in: dir)
        XCTAssertEqual(s2, 0, e2)
        // Snapshots are named after the result too.
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("other-iter-00001.png").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("iter-00001.png").path))
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("result-run.json")), first)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("other-run.json").path))
        // other.jpg would share other.png's records: refused.
        let otherRecord = try Data(contentsOf: dir.appendingPathComponent("other-run.json"))
        let (s6, e6) = try gen(["style", content.path, style.path, "--random-weights", "--iterations", "2",
                                "--output", dir.appendingPathComponent("other.jpg").path, "--threads", "1"], in: dir)
        XCTAssertEqual(s6, 2, e6)
        XCTAssertTrue(e6.contains("is the record of another result"), e6)
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("other-run.json")), otherRecord)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("other.jpg").path))
        // A folder holding another run's records is refused, and nothing in it changes.
        let before = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        try Data("{}".utf8).write(to: dir.appendingPathComponent("run.json"))
        let (s3, e3) = try gen(["style", content.path, style.path, "--random-weights", "--iterations", "2",
                                "--output", dir.path, "--threads", "1"], in: dir)
        XCTAssertEqual(s3, 2, e3)
        XCTAssertTrue(e3.contains("already holds another run's run.json"), e3)
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("run.json")), Data("{}".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), (before + ["run.json"]).sorted())
        // A folder where the result would go is refused before the work.
        let blocked = dir.appendingPathComponent("blocked.png")
        try FileManager.default.createDirectory(at: blocked, withIntermediateDirectories: false)
        let (s5, e5) = try gen(["style", content.path, style.path, "--random-weights", "--iterations", "2",
                                "--output", blocked.path, "--threads", "1"], in: dir)
        XCTAssertEqual(s5, 2, e5)
        XCTAssertTrue(e5.contains("a folder is there"), e5)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("blocked-run.json").path))
        // The result may not be an input image.
        let original = try Data(contentsOf: content)
        let (s4, e4) = try gen(["style", content.path, style.path, "--random-weights", "--iterations", "2",
                                "--output", content.path, "--threads", "1"], in: dir)
        XCTAssertEqual(s4, 2, e4)
        XCTAssertTrue(e4.contains("is the content image"), e4)
        XCTAssertEqual(try Data(contentsOf: content), original)
    }

    /// `--output DIR` wrote DIR/result.png beside its run.json: a later `--output DIR/result.png`
    /// would replace that run's result, so it is refused; an image format gen does not write is
    /// refused instead of becoming a folder named like an image.
    func testAnotherRunsResultIsNotReplaced() throws {
        let dir = try makeStudioTempDir(self)
        let content = dir.appendingPathComponent("c.png"), style = dir.appendingPathComponent("s.png")
        try testPicture(width: 48, height: 40, phase: 0).write(to: content.path)
        try testPicture(width: 40, height: 40, phase: 1).write(to: style.path)
        let base = ["style", content.path, style.path, "--random-weights", "--iterations", "1", "--threads", "1"]
        let folder = dir.appendingPathComponent("sd1")
        let (s1, e1) = try gen(base + ["--output", folder.path], in: dir)
        XCTAssertEqual(s1, 0, e1)
        let result = folder.appendingPathComponent("result.png")
        let before = try Data(contentsOf: result)
        let listing = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        let (s2, e2) = try gen(base + ["--output", result.path], in: dir)
        XCTAssertEqual(s2, 2, e2)
        XCTAssertTrue(e2.contains("is the result of another run"), e2)
        XCTAssertEqual(try Data(contentsOf: result), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted(), listing)
        // Another name in the same folder is fine.
        let (s3, e3) = try gen(base + ["--output", folder.appendingPathComponent("second.png").path], in: dir)
        XCTAssertEqual(s3, 0, e3)
        // A rerun of a named result replaces its own result.
        let (s4, e4) = try gen(base + ["--output", folder.appendingPathComponent("second.png").path], in: dir)
        XCTAssertEqual(s4, 0, e4)
        // .gif is not written: refused, no folder named o32.gif.
        let gif = dir.appendingPathComponent("o32.gif")
        let (s5, e5) = try gen(base + ["--output", gif.path], in: dir)
        XCTAssertEqual(s5, 2, e5)
        XCTAssertTrue(e5.contains(".png or .jpg"), e5)
        XCTAssertFalse(FileManager.default.fileExists(atPath: gif.path))
    }
}
