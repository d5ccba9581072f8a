import Foundation
import XCTest
import ArgumentParser
@testable import GenCLI
import GenStudio
import GenData
import GenNN

/// ../shared/data (or $GEN_DATA), or nil.
func dreamDataDirectory() -> URL? {
    if let env = ProcessInfo.processInfo.environment["GEN_DATA"], !env.isEmpty {
        return FileManager.default.fileExists(atPath: env) ? URL(fileURLWithPath: env) : nil
    }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let dir = root.deletingLastPathComponent().appendingPathComponent("shared/data")
    return FileManager.default.fileExists(atPath: dir.path) ? dir : nil
}

/// Inserts an APP1 Exif segment carrying `orientation` right after a JPEG's SOI (little-endian TIFF).
private func withExifOrientation(_ jpeg: [UInt8], _ orientation: UInt16) -> [UInt8] {
    var tiff: [UInt8] = Array("II".utf8)
    func u16(_ v: UInt16) { tiff += [UInt8(v & 0xFF), UInt8(v >> 8)] }
    func u32(_ v: UInt32) { tiff += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)] }
    u16(42); u32(8); u16(1)
    u16(0x0112); u16(3); u32(1); u16(orientation); u16(0)
    u32(0)
    let payload = Array("Exif\0\0".utf8) + tiff
    let len = payload.count + 2
    return Array(jpeg[0..<2]) + [0xFF, 0xE1, UInt8(len >> 8), UInt8(len & 0xFF)] + payload + Array(jpeg[2...])
}

/// `gen dream` through the built binary, with the real SqueezeNet 1.0 weights of ../shared/data.
final class DreamCommandTests: XCTestCase {
    var binary: URL!
    var dir: URL!
    var weights: URL!

    override func setUpWithError() throws {
        guard let b = genBinary() else {
            throw XCTSkip("the gen executable was not found next to the test bundle (build it with 'swift build', or set GEN_BINARY)")
        }
        guard let data = dreamDataDirectory() else { throw XCTSkip("shared data not found (set GEN_DATA or provide ../shared/data)") }
        let w = data.appendingPathComponent("weights/squeezenet1_0.pth")
        guard FileManager.default.fileExists(atPath: w.path) else { throw XCTSkip("\(w.path) missing") }
        binary = b
        weights = w
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gen-dream-tests-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let d = dir!
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
    }

    @discardableResult
    func gen(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> RunResult {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.currentDirectoryURL = dir
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = "1"
        p.environment = env
        let outPipe = Pipe(), errPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = errPipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        var outData = Data(), errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outData = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        errData = errPipe.fileHandleForReading.readDataToEndOfFile()
        if group.wait(timeout: .now() + 120) == .timedOut {
            p.terminate()
            XCTFail("gen \(args) timed out", file: file, line: line)
        }
        p.waitUntilExit()
        return RunResult(status: p.terminationStatus, stdout: outData, stderr: String(decoding: errData, as: UTF8.self))
    }

    func listing() -> [String] {
        (FileManager.default.enumerator(atPath: dir.path)?.allObjects as? [String] ?? []).sorted()
    }

    /// A small RGB PNG of odd size in `dir`.
    func writeInput(_ name: String = "in.png", width: Int = 45, height: Int = 37) throws -> URL {
        var px = [Float](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let o = (y * width + x) * 3
                px[o] = Float(x) / Float(width)
                px[o + 1] = Float(y) / Float(height)
                px[o + 2] = Float((x / 5 + y / 5) % 2)
            }
        }
        let url = dir.appendingPathComponent(name)
        try Image(width: width, height: height, channels: 3, pixels: px).write(to: url.path)
        return url
    }

    var fast: [String] { ["--network", "squeezenet", "--weights", weights.path, "--iterations", "1", "--octaves", "2", "--quiet"] }

    func assertCleanFailure(_ args: [String], code: Int32 = 2, mentions: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let before = listing()
        let r = try gen(args, file: file, line: line)
        XCTAssertEqual(r.status, code, "gen \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains("rror"), "no error message: \(r.stderr)", file: file, line: line)
        for m in mentions {
            XCTAssertTrue(r.stderr.contains(m), "stderr does not mention '\(m)': \(r.stderr)", file: file, line: line)
        }
        XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Stack dump"), r.stderr, file: file, line: line)
        XCTAssertTrue(r.stdout.isEmpty, "stdout: \(r.out)", file: file, line: line)
        XCTAssertEqual(listing(), before, "files were created", file: file, line: line)
    }

    // MARK: Success

    func testDreamWritesTheOutputAtomicallyAtTheInputSize() throws {
        let input = try writeInput()
        let out = dir.appendingPathComponent("out.png")
        let r = try gen(["dream", input.path, "--output", out.path] + fast)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), out.path)
        let im = try Image(contentsOf: out.path)
        XCTAssertEqual([im.width, im.height], [45, 37])
        XCTAssertNotEqual(im.pixels, try Image(contentsOf: input.path).pixels)
        // Only the input and the output: no temporary file left beside it.
        XCTAssertEqual(listing(), ["in.png", "out.png"])

        // JPEG output; the same seed gives the same bytes.
        let jpg = dir.appendingPathComponent("out.jpg")
        XCTAssertEqual(try gen(["dream", input.path, "-o", jpg.path] + fast).status, 0)
        let first = try Data(contentsOf: jpg)
        XCTAssertEqual(try gen(["dream", input.path, "-o", jpg.path] + fast).status, 0)
        XCTAssertEqual(try Data(contentsOf: jpg), first)

        // The output may not be the input (another spelling of it included): refused, input kept.
        let original = try Data(contentsOf: input)
        try assertCleanFailure(["dream", input.path, "--output", dir.appendingPathComponent("./in.png").path] + fast,
                               mentions: ["is the input image", "in.png"])
        XCTAssertEqual(try Data(contentsOf: input), original)
        // A write-protected output is refused before any octave is computed.
        chmod(jpg.path, 0o444)
        defer { chmod(jpg.path, 0o644) }
        try assertCleanFailure(["dream", input.path, "-o", jpg.path] + fast, mentions: ["write-protected", "out.jpg"])
        XCTAssertEqual(try Data(contentsOf: jpg), first)
    }

    func testMissingOutputFolderIsMadeAsStyleDoes() throws {
        let input = try writeInput()
        let out = dir.appendingPathComponent("new/sub/out.png")
        let r = try gen(["dream", input.path, "--output", out.path] + fast)
        XCTAssertEqual(r.status, 0, r.stderr)
        let im = try Image(contentsOf: out.path)
        XCTAssertEqual([im.width, im.height], [45, 37])
        XCTAssertEqual(listing().filter { $0.hasPrefix("new") }, ["new", "new/sub", "new/sub/out.png"])
    }

    /// Ctrl-C or SIGTERM ends a dream at once (it has no clean stop): killed by that signal, a message, and the
    /// folder it made for --output is removed again, since nothing was written into it. (SIGTERM:
    /// a test runner started with SIGINT ignored passes that on, and gen keeps it ignored.)
    func testCtrlCEndsADreamAndRemovesItsEmptyFolder() throws {
        let input = try writeInput(width: 160, height: 120)
        let folder = dir.appendingPathComponent("made/here")
        let p = Process()
        p.executableURL = binary
        p.arguments = ["dream", input.path, "--output", folder.appendingPathComponent("out.png").path, "--network", "squeezenet",
                       "--weights", weights.path, "--iterations", "400", "--octaves", "3", "--quiet", "--threads", "1"]
        let errPipe = Pipe()
        p.standardError = errPipe
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: folder.path) && p.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertTrue(p.isRunning, "the dream ended before it could be interrupted")
        p.terminate()
        let err = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        // Ended by the signal itself (a shell reports 143), so that a script's loop stops too.
        XCTAssertEqual(p.terminationReason, .uncaughtSignal, err)
        XCTAssertEqual(p.terminationStatus, SIGTERM, err)
        XCTAssertTrue(err.contains("gen: interrupted"), err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("made").path), "\(listing())")
    }

    func testProgressReportsTheObjectivePerOctave() throws {
        let input = try writeInput()
        let out = dir.appendingPathComponent("out.png")
        let r = try gen(["dream", input.path, "--output", out.path, "--network", "squeezenet", "--weights", weights.path,
                         "--iterations", "2", "--octaves", "3", "--jitter", "4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        // 45x37 over 3 octaves of 1.4: 23x19 (skipped: 19 < 21), 32x26, 45x37.
        XCTAssertTrue(r.stderr.contains("skipped"), r.stderr)
        XCTAssertTrue(r.stderr.contains("octave 1/2 at 32x26: objective"), r.stderr)
        XCTAssertTrue(r.stderr.contains("octave 2/2 at 45x37: objective"), r.stderr)
    }

    func testExifOrientedJPEGKeepsItsUprightSize() throws {
        var px = [Float](repeating: 0.5, count: 60 * 40 * 3)
        for i in stride(from: 0, to: px.count, by: 7) { px[i] = 0.1 }
        let jpeg = try Image(width: 60, height: 40, channels: 3, pixels: px).encoded(as: .jpeg)
        let input = dir.appendingPathComponent("rotated.jpg")
        try Data(withExifOrientation(jpeg, 6)).write(to: input)   // 6: rotate 90° clockwise → 40x60 upright
        let out = dir.appendingPathComponent("out.png")
        let r = try gen(["dream", input.path, "--output", out.path] + fast)
        XCTAssertEqual(r.status, 0, r.stderr)
        let im = try Image(contentsOf: out.path)
        XCTAssertEqual([im.width, im.height], [40, 60])
    }

    func testGrayRGBAAnd16BitCasesDream() throws {
        guard let cases = cliCasesDirectory() else { throw XCTSkip("shared cases not found") }
        for (name, size) in [("case01_gray.jpg", [64, 48]), ("case02_rgba_style.png", [64, 64]), ("case07_rgb16.png", [64, 64])] {
            let out = dir.appendingPathComponent("\(name).out.png")
            let r = try gen(["dream", cases + "/inputs/" + name, "--output", out.path] + fast)
            XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
            let im = try Image(contentsOf: out.path)
            XCTAssertEqual([im.width, im.height, im.channels], size + [3], name)
        }
    }

    func testSaveEveryWritesIntermediates() throws {
        let input = try writeInput()
        let out = dir.appendingPathComponent("dream.png")
        let r = try gen(["dream", input.path, "--output", out.path, "--network", "squeezenet", "--weights", weights.path,
                         "--iterations", "2", "--octaves", "2", "--save-every", "1", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(listing(), ["dream-octave1-step1.png", "dream-octave1-step2.png", "dream-octave2-step1.png",
                                   "dream-octave2-step2.png", "dream.png", "in.png"])
        let last = try Image(contentsOf: dir.appendingPathComponent("dream-octave2-step2.png").path)
        XCTAssertEqual([last.width, last.height], [45, 37])
    }

    func testListLayers() throws {
        let r = try gen(["dream", "--list-layers", "--network", "squeezenet", "--weights", weights.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let names = r.out.split(separator: "\n").map(String.init)
        XCTAssertEqual(names.first, "conv1")
        for l in ["fire2", "fire5", "fire7", "fire9", "conv10"] { XCTAssertTrue(names.contains(l), "\(names)") }
        XCTAssertEqual(listing(), [])
    }

    func testCustomLayersAndDefaultOutputFolder() throws {
        let input = try writeInput()
        let r = try gen(["dream", input.path, "--layers", "fire3:1,features.7:0.5"] + fast)
        XCTAssertEqual(r.status, 0, r.stderr)
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("outputs/dream").path)
        XCTAssertEqual(runs.count, 1)
        let run = dir.appendingPathComponent("outputs/dream/\(runs[0])")
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("dream.png").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("run.json").path))
    }

    func testGuidedDream() throws {
        let input = try writeInput()
        let guide = try writeInput("guide.png", width: 40, height: 40)
        let out = dir.appendingPathComponent("out.png")
        let r = try gen(["dream", input.path, "--output", out.path, "--guide", guide.path] + fast)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.path))
    }

    func testMaxSizeDreamsSmallerAndRestoresTheSize() throws {
        let input = try writeInput(width: 91, height: 71)
        let out = dir.appendingPathComponent("out.png")
        let r = try gen(["dream", input.path, "--output", out.path, "--network", "squeezenet", "--weights", weights.path,
                         "--iterations", "1", "--octaves", "1", "--max-size", "50"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("50x39"), r.stderr)
        let im = try Image(contentsOf: out.path)
        XCTAssertEqual([im.width, im.height], [91, 71])
    }

    // MARK: Clean failures: exit 2, no output

    func testBadImagesAreCleanErrors() throws {
        guard let cases = cliCasesDirectory() else { throw XCTSkip("shared cases not found") }
        let out = dir.appendingPathComponent("out.png").path
        try assertCleanFailure(["dream", cases + "/inputs/case13_gif_named.jpg", "--output", out] + fast, mentions: ["case13_gif_named.jpg", "GIF"])
        try assertCleanFailure(["dream", cases + "/inputs/case13_html_named.jpg", "--output", out] + fast, mentions: ["case13_html_named.jpg"])
        try assertCleanFailure(["dream", cases + "/inputs/case11_truncated.png", "--output", out] + fast, mentions: ["case11_truncated.png"])
        try assertCleanFailure(["dream", cases + "/inputs/case10_huge_dims.png", "--output", out] + fast, mentions: ["50000"])
        // 256x16: below SqueezeNet's minimum of 21 pixels.
        try assertCleanFailure(["dream", cases + "/inputs/case07_gray16.png", "--output", out] + fast, mentions: ["case07_gray16.png", "256x16", "21"])
        try assertCleanFailure(["dream", dir.appendingPathComponent("missing.png").path, "--output", out] + fast, mentions: ["missing.png"])
        // Big enough, but --max-size shrinks it below the minimum: named, and no output folder is made.
        let wide = try writeInput("wide.png", width: 400, height: 25)
        try assertCleanFailure(["dream", wide.path, "--max-size", "100"] + fast, mentions: ["wide.png", "--max-size", "100x6", "21"])
        // A bad guide is as clean.
        let input = try writeInput()
        try assertCleanFailure(["dream", input.path, "--output", out, "--guide", cases + "/inputs/case13_gif_named.jpg"] + fast,
                               mentions: ["case13_gif_named.jpg"])
        try assertCleanFailure(["dream", input.path, "--output", out, "--guide", cases + "/inputs/case07_gray16.png"] + fast,
                               mentions: ["case07_gray16.png", "guide", "256x16"])
    }

    func testMissingOrGarbageWeightsAreCleanErrors() throws {
        let input = try writeInput()
        let out = dir.appendingPathComponent("out.png").path
        let base = ["--iterations", "1", "--octaves", "1", "--network", "squeezenet"]
        try assertCleanFailure(["dream", input.path, "--output", out, "--weights", dir.appendingPathComponent("nope.pth").path] + base,
                               mentions: ["nope.pth"])
        var rng = SystemRandomNumberGenerator()
        let garbage = dir.appendingPathComponent("garbage.pth")
        try Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }).write(to: garbage)
        try assertCleanFailure(["dream", input.path, "--output", out, "--weights", garbage.path] + base, mentions: ["garbage.pth"])
        let empty = dir.appendingPathComponent("empty.safetensors")
        try Data().write(to: empty)
        try assertCleanFailure(["dream", input.path, "--output", out, "--weights", empty.path] + base, mentions: ["empty.safetensors"])
        // The right file for the wrong network: a state-dict mismatch.
        try assertCleanFailure(["dream", input.path, "--output", out, "--weights", weights.path, "--network", "vgg19",
                                "--iterations", "1"], mentions: [])
    }

    func testBadArgumentsAreCleanErrors() throws {
        let input = try writeInput()
        let out = dir.appendingPathComponent("out.png").path
        try assertCleanFailure(["dream", input.path, "--output", out, "--layers", "fire5:1,nosuchlayer:2"] + fast,
                               mentions: ["nosuchlayer", "fire9"])
        try assertCleanFailure(["dream", input.path, "--output", out, "--layers", "fire5:abc"] + fast, mentions: ["abc"])
        try assertCleanFailure(["dream", input.path, "--output", out, "--octave-scale", "1"] + fast, mentions: ["--octave-scale"])
        // A --max-loss of 0 or below would stop every octave before its first step.
        try assertCleanFailure(["dream", input.path, "--output", out, "--max-loss", "-5"] + fast, mentions: ["--max-loss must be a positive number with these layer weights (got -5.0)"])
        try assertCleanFailure(["dream", input.path, "--output", out, "--max-loss", "0"] + fast, mentions: ["--max-loss"])
        try assertCleanFailure(["dream", input.path, "--output", out, "--tile-size", "8"] + fast, mentions: ["--tile-size"])
        try assertCleanFailure(["dream", input.path, "--output", dir.appendingPathComponent("out.gif").path] + fast, mentions: ["--output"])
        // A path through a file cannot be made: refused before any work, nothing written.
        try Data("x".utf8).write(to: dir.appendingPathComponent("afile"))
        try assertCleanFailure(["dream", input.path, "--output", dir.appendingPathComponent("afile/sub/out.png").path] + fast,
                               code: 1, mentions: ["afile", "is a file, not a folder"])
        try assertCleanFailure(["dream", "--network", "squeezenet", "--weights", weights.path], mentions: ["IMAGE"])
        try assertCleanFailure(["dream", input.path, "--output", out, "--network", "alexnet", "--weights", weights.path], mentions: ["alexnet"])
    }

    // MARK: Parsing (in process)

    func testParseLayers() throws {
        XCTAssertEqual(try DreamCommand.parseLayers("mixed4:1,mixed5:1.5"), ["mixed4": 1, "mixed5": 1.5])
        XCTAssertEqual(try DreamCommand.parseLayers("fire5"), ["fire5": 1])
        XCTAssertThrowsError(try DreamCommand.parseLayers(",,"))
        XCTAssertThrowsError(try DreamCommand.parseLayers("fire5:nan"))
        XCTAssertThrowsError(try DreamCommand.parseLayers(":1"))      // no name (was read as a layer named "1")
        XCTAssertThrowsError(try DreamCommand.parseLayers("fire5:"))  // no weight (was silently 1)
        XCTAssertEqual(try DreamCommand.parseLayers(" fire5 : 2 ,fire7"), ["fire5": 2, "fire7": 1])
    }
}
