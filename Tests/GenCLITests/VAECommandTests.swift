import Foundation
import XCTest
@testable import GenCLI
import GenStudio
import GenData

/// `gen vae` through the built binary: train on tiny data, sample grids / interpolations /
/// manifolds, and clean failures with gen's exit codes.
final class VAECommandTests: XCTestCase {
    var binary: URL!
    var dir: URL!      // working directory of every run

    override func setUpWithError() throws {
        guard let b = genBinary() else {
            throw XCTSkip("the gen executable was not found next to the test bundle (build it with 'swift build', or set GEN_BINARY)")
        }
        binary = b
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gen-vae-cli-tests-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let d = dir!
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
    }

    /// Runs gen in `dir` (120 s limit).
    @discardableResult
    func gen(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> RunResult {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.currentDirectoryURL = dir
        p.standardInput = FileHandle.nullDevice
        let outPipe = Pipe(), errPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = errPipe
        try p.run()
        var outData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outData = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let errData = errPipe.fileHandleForReading.readDataToEndOfFile()
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

    /// A failed run: the exit code, an error naming `mentions`, no stdout, nothing new in `dir`.
    func assertCleanFailure(_ args: [String], code: Int32, mentions: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let before = listing()
        let r = try gen(args, file: file, line: line)
        XCTAssertEqual(r.status, code, "gen \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains("rror"), "no error message: \(r.stderr)", file: file, line: line)
        for m in mentions { XCTAssertTrue(r.stderr.contains(m), "stderr does not mention '\(m)': \(r.stderr)", file: file, line: line) }
        XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Stack dump"), r.stderr, file: file, line: line)
        XCTAssertTrue(r.stdout.isEmpty, "stdout: \(r.out)", file: file, line: line)
        XCTAssertEqual(listing(), before, "files were created", file: file, line: line)
    }

    /// An IDX folder of 12 tiny 8×8 bar images.
    func writeTinyIDX() throws -> URL {
        func be(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        let n = 12, s = 8
        var images: [UInt8] = [0, 0, 8, 3] + be(n) + be(s) + be(s)
        var labels: [UInt8] = [0, 0, 8, 1] + be(n)
        for i in 0..<n {
            for y in 0..<s { for x in 0..<s { images.append((i % 2 == 0 ? y : x) == 1 + i % 5 ? 255 : 0) } }
            labels.append(UInt8(i % 2))
        }
        let d = dir.appendingPathComponent("idx")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        try Data(images).write(to: d.appendingPathComponent("train-images-idx3-ubyte"))
        try Data(labels).write(to: d.appendingPathComponent("train-labels-idx1-ubyte"))
        return d
    }

    func trainTinyVAE(_ name: String = "vrun") throws -> URL {
        let data = try writeTinyIDX()
        let out = dir.appendingPathComponent(name)
        let r = try gen(["vae", "train", "--data", data.path, "--image-size", "8", "--steps", "4", "--batch-size", "4",
                         "--manifold-size", "3", "--threads", "1", "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.out.contains("test negative ELBO"), r.out)
        return out.appendingPathComponent("checkpoint.safetensors")
    }

    func testVAETrainThenSample() throws {
        let ckpt = try trainTinyVAE()
        let run = ckpt.deletingLastPathComponent()
        for f in ["metrics.csv", "run.json", "pictures/epoch-001-manifold.png", "pictures/epoch-001-latent.png",
                  "pictures/epoch-001-samples.png", "pictures/epoch-001-reconstructions.png", "pictures/final-step-4-manifold.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent(f).path), f)
        }
        // Two images for the interpolation (any size and mode).
        let a = dir.appendingPathComponent("a.png"), b = dir.appendingPathComponent("b.jpg")
        try Image(width: 10, height: 14, channels: 3, pixels: (0..<420).map { Float($0 % 9) / 9 }).write(to: a.path)
        try Image(width: 8, height: 8, channels: 1, pixels: (0..<64).map { Float($0 % 2) }).write(to: b.path)
        let out = dir.appendingPathComponent("samples")
        let r = try gen(["vae", "sample", "--checkpoint", ckpt.path, "--grid", "3", "--interpolate", a.path, b.path,
                         "--steps", "5", "--manifold", "--manifold-size", "4", "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        for f in ["samples.png", "interpolation.png", "manifold.png"] {
            let p = out.appendingPathComponent(f).path
            XCTAssertTrue(r.out.contains(p), r.out)
            let im = try Image(contentsOf: p)
            if f == "samples.png" { XCTAssertEqual(im.width, 3 * 8 + 4 * 2) }
            if f == "interpolation.png" { XCTAssertEqual(im.width, 5 * 8 + 6 * 2) }
            if f == "manifold.png" { XCTAssertEqual(im.width, 4 * 8) }
        }
        // Frames instead of a strip; same seed, same samples.
        let frames = dir.appendingPathComponent("frames")
        let r2 = try gen(["vae", "sample", "--checkpoint", ckpt.path, "--interpolate", a.path, b.path, "--steps", "3",
                          "--frames", "--output", frames.path])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: frames.path).sorted(),
                       ["interpolation-000.png", "interpolation-001.png", "interpolation-002.png"])
        // A shorter interpolation into the same folder says which older frames remain.
        let r5 = try gen(["vae", "sample", "--checkpoint", ckpt.path, "--interpolate", a.path, b.path, "--steps", "2",
                          "--frames", "--output", frames.path])
        XCTAssertEqual(r5.status, 0, r5.stderr)
        XCTAssertTrue(r5.stderr.contains("also holds 1 older interpolation frame (interpolation-002.png)"), r5.stderr)
        let s1 = try gen(["vae", "sample", "--checkpoint", ckpt.path, "--count", "5", "--seed", "3", "--output", dir.appendingPathComponent("s1").path])
        // --threads and --quiet, as every other command has; the thread count does not change the samples.
        let s2 = try gen(["vae", "sample", "--checkpoint", ckpt.path, "--count", "5", "--seed", "3", "--threads", "1", "-q",
                          "--output", dir.appendingPathComponent("s2").path])
        XCTAssertEqual(s1.status, 0, s1.stderr); XCTAssertEqual(s2.status, 0, s2.stderr)
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("s1/samples.png")),
                       try Data(contentsOf: dir.appendingPathComponent("s2/samples.png")))
        // Resume through the binary continues the step count.
        // Model and training options given with --resume are not applied, and the user is told so.
        let r3 = try gen(["vae", "train", "--resume", ckpt.path, "--steps", "6", "--threads", "1", "--latent-dim", "8", "--learning-rate=0.5"])
        XCTAssertEqual(r3.status, 0, r3.stderr)
        XCTAssertTrue(r3.out.contains("stopped: reached 6 steps\n"), r3.out)
        XCTAssertTrue(r3.stderr.contains("--latent-dim (the checkpoint's 2), --learning-rate (the checkpoint's 0.001) ignored"), r3.stderr)
        // A total already reached: nothing to do (exit 2).
        let again = try gen(["vae", "train", "--resume", ckpt.path, "--steps", "6", "--threads", "1"])
        XCTAssertEqual(again.status, 2, again.stderr)
        XCTAssertTrue(again.stderr.contains("nothing to do: \(ckpt.path) is already at step 6"), again.stderr)
        // Options equal to the checkpoint's values are not warned about.
        let r4 = try gen(["vae", "train", "--resume", ckpt.path, "--steps", "7", "--threads", "1", "--latent-dim", "2", "--image-size", "8"])
        XCTAssertEqual(r4.status, 0, r4.stderr)
        XCTAssertFalse(r4.stderr.contains("ignored"), r4.stderr)
        XCTAssertTrue(r3.stderr.contains("latent dimension 2"), r3.stderr)
    }

    func testVAEBadInputs() throws {
        let data = try writeTinyIDX()
        try assertCleanFailure(["vae", "train", "--data", data.path, "--latent-dim", "0", "--output", "o"], code: 2, mentions: ["--latent-dim"])
        try assertCleanFailure(["vae", "train", "--data", data.path, "--image-size", "10", "--output", "o"], code: 2, mentions: ["--image-size"])
        try assertCleanFailure(["vae", "train", "--data", data.path, "--channels", "4", "--output", "o"], code: 2, mentions: ["--channels"])
        try assertCleanFailure(["vae", "train", "--data", dir.appendingPathComponent("missing").path, "--output", "o"], code: 2, mentions: ["missing"])
        // Bad checkpoints: empty, random bytes, a text checkpoint; the file is left untouched.
        let empty = dir.appendingPathComponent("empty.safetensors")
        try Data().write(to: empty)
        let random = dir.appendingPathComponent("random.bin")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }).write(to: random)
        let before = try Data(contentsOf: random)
        for bad in [empty, random] {
            try assertCleanFailure(["vae", "sample", "--checkpoint", bad.path, "--output", "o"], code: 2, mentions: [bad.lastPathComponent])
            try assertCleanFailure(["vae", "train", "--data", data.path, "--resume", bad.path, "--output", "o"], code: 2, mentions: [bad.lastPathComponent])
        }
        XCTAssertEqual(try Data(contentsOf: random), before)
        try assertCleanFailure(["vae", "sample", "--checkpoint", dir.appendingPathComponent("nope.safetensors").path, "--output", "o"],
                               code: 2, mentions: ["nope.safetensors"])
        try assertCleanFailure(["vae", "sample", "--checkpoint", empty.path, "--interpolate", "onlyone.png"], code: 2, mentions: ["--interpolate"])
    }

    func testVAECasesThroughTheBinary() throws {
        guard let cases = cliCasesDirectory() else { throw XCTSkip("shared cases not found") }
        for channels in ["3", "1"] {
            let out = dir.appendingPathComponent("c17-\(channels)")
            let r = try gen(["vae", "train", "--data", cases + "/inputs/case17_mixed_dataset", "--image-size", "16", "--channels", channels,
                             "--steps", "1", "--batch-size", "6", "--manifold-size", "2", "--threads", "1", "--output", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.out.contains("stopped: reached 1 step\n"), r.out)
        }
        let out = dir.appendingPathComponent("c19")
        let r = try gen(["vae", "train", "--data", cases + "/inputs/case19_mnist_gzipped", "--steps", "1", "--batch-size", "5",
                         "--manifold-size", "2", "--threads", "1", "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("10 training"), r.stderr)
    }

    /// `--max-pixels` is on every command that reads images: a folder image over the limit is
    /// named (with the option to raise), and a raised limit lets it through.
    func testMaxPixels() throws {
        let folder = dir.appendingPathComponent("pics")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for i in 0..<4 {
            try Image(width: 12, height: 10, channels: 3, pixels: (0..<360).map { Float(($0 + i) % 7) / 7 })
                .write(to: folder.appendingPathComponent("p\(i).png").path)
        }
        try assertCleanFailure(["vae", "train", "--data", folder.path, "--image-size", "8", "--steps", "1", "--max-pixels", "100",
                                "--output", "o"], code: 2, mentions: ["p0.png", "--max-pixels"])
        let out = dir.appendingPathComponent("mp")
        let r = try gen(["vae", "train", "--data", folder.path, "--image-size", "8", "--steps", "1", "--batch-size", "4",
                         "--manifold-size", "2", "--threads", "1", "--max-pixels", "120", "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        try assertCleanFailure(["vae", "train", "--max-pixels", "0", "--output", "o"], code: 2, mentions: ["--max-pixels"])
        let ckpt = out.appendingPathComponent("checkpoint.safetensors")
        let end = folder.appendingPathComponent("p1.png").path
        try assertCleanFailure(["vae", "sample", "--checkpoint", ckpt.path, "--interpolate", end, end, "--max-pixels", "50",
                                "--output", "o"], code: 2, mentions: ["p1.png", "--max-pixels"])
        XCTAssertEqual(try gen(["vae", "sample", "--checkpoint", ckpt.path, "--interpolate", end, end, "--max-pixels", "120",
                                "--output", dir.appendingPathComponent("s").path]).status, 0)
        try assertCleanFailure(["gan", "train", "--data", folder.path, "--image-size", "8", "--steps", "1", "--max-pixels", "100",
                                "--output", "o"], code: 2, mentions: ["p0.png", "--max-pixels"])
    }
}

/// The settings a resumed run warns about are real options of its command, and every option of the
/// command is either such a setting or one a resumed run applies.
final class ResumeOptionListTests: XCTestCase {
    func flags(in help: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: "--[a-z0-9][a-z0-9-]*")
        return Set(regex.matches(in: help, range: NSRange(help.startIndex..., in: help)).compactMap { Range($0.range, in: help).map { String(help[$0]) } })
    }

    func check(help: String, kept: [String], applied: Set<String>, file: StaticString = #filePath, line: UInt = #line) {
        let options = flags(in: help)
        for f in kept { XCTAssertTrue(options.contains(f), "\(f) is not an option", file: file, line: line) }
        XCTAssertEqual(options.subtracting(kept).subtracting(applied), [], "options neither kept nor applied on resume", file: file, line: line)
    }

    func testKeptSettingsAreTheCommandsOptions() {
        let common: Set<String> = ["--help", "--epochs", "--steps", "--time-limit", "--checkpoint-every", "--resume", "--threads",
                                   "--output", "--quiet"]
        check(help: VAETrain.helpMessage(), kept: VAETrainingConfig().settingsKeptOnResume(stored: VAETrainingConfig()).map(\.flag),
              applied: common.union(["--data", "--skip-invalid", "--max-pixels"]))
        check(help: TextTrain.helpMessage(), kept: TextTrainingConfig().settingsKeptOnResume(stored: TextTrainingConfig()).map(\.flag),
              applied: common.union(["--corpus", "--evaluate-every"]))
        check(help: GANTrain.helpMessage(), kept: GANTrainingConfig().settingsKeptOnResume(stored: GANTrainingConfig()).map(\.flag),
              applied: common.union(["--data", "--skip-invalid", "--max-pixels", "--sample-every", "--log-every"]))
    }
}
