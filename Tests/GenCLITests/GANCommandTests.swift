import Foundation
import XCTest
@testable import GenCLI
import GenStudio
import GenData
import GenNN
import GenTensor

/// `gen gan train` / `gen gan sample`: parsing in process, and end to end through the built binary.
final class GANCommandTests: XCTestCase {
    func testParsingDefaultsAreTheBook() throws {
        let c = try GANTrain.parse(["--data", "x"]).makeConfig()
        XCTAssertEqual(c.model, GANModelConfig())
        XCTAssertEqual(c.batchSize, 20)
        XCTAssertEqual(c.dLearningRate, 8e-4)
        XCTAssertEqual(c.gLearningRate, 4e-4)
        XCTAssertEqual(c.clipValue, 1)
        XCTAssertEqual(c.labelNoise, 0.05)
        XCTAssertEqual(c.steps, 10_000)
        let a = try GANTrain.parse(["--data", "x", "--optimizer", "adam", "--time-limit", "1", "--clip-value", "0",
                                    "--image-size", "64", "--channels", "1", "--g-learning-rate", "1e-3"]).makeConfig()
        XCTAssertEqual(a.optimizer, "adam")
        XCTAssertEqual(a.dLearningRate, 2e-4)
        XCTAssertEqual(a.gLearningRate, 1e-3)
        XCTAssertNil(a.clipValue)
        XCTAssertNil(a.steps)
        XCTAssertEqual(a.model.upsamplingStages, 2)
    }

    /// --sample-every and --log-every left out are nil, so that a resume keeps the checkpoint's.
    func testOmittedIntervalsKeepTheCheckpointsOnResume() throws {
        let c = try GANTrain.parse(["--data", "x"]).makeConfig()
        XCTAssertNil(c.sampleEvery)
        XCTAssertNil(c.logEvery)
        XCTAssertEqual(c.sampleInterval, 100)
        XCTAssertEqual(c.logInterval, 10)
        let given = try GANTrain.parse(["--data", "x", "--sample-every", "7", "--log-every", "3"]).makeConfig()
        XCTAssertEqual(given.sampleEvery, 7)
        XCTAssertEqual(given.logEvery, 3)

        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gen-gan-cadence-" + UUID().uuidString)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let images = dir.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        for i in 0..<6 {
            let im = Image(width: 10, height: 9, channels: 3, pixels: (0..<270).map { Float(($0 * (i + 3)) % 17) / 16 })
            try im.write(to: images.appendingPathComponent("f\(i).png").path)
        }
        let tiny = ["--data", images.path, "--image-size", "8", "--latent-dim", "4", "--generator-filters", "8",
                    "--discriminator-filters", "4", "--batch-size", "4", "--threads", "1"]
        let run = dir.appendingPathComponent("run")
        let first = try GANTrain.parse(tiny + ["--steps", "2", "--sample-every", "3", "--log-every", "2", "--output", run.path]).makeConfig()
        let s = try GANTrainer(data: images.path, config: first, resume: nil, output: run, arguments: [], progress: SilentProgress()).run()
        let resumed = try GANTrain.parse(["--data", images.path, "--steps", "4", "--resume", s.checkpoint.path]).makeConfig()
        let t = try GANTrainer(data: images.path, config: resumed, resume: s.checkpoint, output: nil, arguments: [], progress: SilentProgress())
        XCTAssertEqual(t.config.sampleEvery, 3)
        XCTAssertEqual(t.config.logEvery, 2)
    }

    func testValidationErrors() {
        for args in [["--data", "x", "--image-size", "7"], ["--data", "x", "--channels", "2"], ["--data", "x", "--optimizer", "sgd"],
                     ["--data", "x", "--label-noise", "0.9"], ["--data", "x", "--batch-size", "0"], ["--data", "x", "--latent-dim", "0"],
                     ["--data", "x", "--d-learning-rate", "-1"], ["--data", "x", "--sample-every", "0"], []] {
            XCTAssertThrowsError(try GANTrain.parse(args), "\(args)") { e in
                XCTAssertEqual(GenCommand.exitCode(for: e).rawValue, 2, "\(args): \(e)")
            }
        }
        for args in [["--checkpoint", "c", "--count", "0"], ["--checkpoint", "c", "--interpolate", "1"],
                     ["--checkpoint", "c", "--truncation", "0"], ["--count", "3"]] {
            XCTAssertThrowsError(try GANSample.parse(args), "\(args)") { e in
                XCTAssertEqual(GenCommand.exitCode(for: e).rawValue, 2, "\(args): \(e)")
            }
        }
    }

    func testExitCodes() {
        XCTAssertEqual(GenCLI.exitCode(for: GANError.nonFinite(step: 1, what: "x", lastCheckpoint: nil)), 1)
        XCTAssertEqual(GenCLI.exitCode(for: DatasetError.noImages(path: "x")), 2)
        XCTAssertEqual(GenCLI.exitCode(for: DatasetError.invalidIDX(path: "x", reason: "magic")), 2)
    }

    // MARK: End to end

    var binary: URL!
    var dir: URL!

    func setUpBinary() throws {
        guard let b = genBinary() else { throw XCTSkip("the gen executable was not found (build it, or set GEN_BINARY)") }
        binary = b
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gen-gan-cli-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let d = dir!
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
    }

    func gen(_ args: [String]) throws -> RunResult {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.currentDirectoryURL = dir
        let outPipe = Pipe(), errPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = errPipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        var outData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outData = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let errData = errPipe.fileHandleForReading.readDataToEndOfFile()
        if group.wait(timeout: .now() + 120) == .timedOut { p.terminate(); XCTFail("gen \(args) timed out") }
        p.waitUntilExit()
        return RunResult(status: p.terminationStatus, stdout: outData, stderr: String(decoding: errData, as: UTF8.self))
    }

    func tree() -> [String] { (FileManager.default.enumerator(atPath: dir.path)?.allObjects as? [String] ?? []).sorted() }

    func testTrainAndSampleEndToEnd() throws {
        try setUpBinary()
        let images = dir.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        for i in 0..<6 {
            let im = Image(width: 10, height: 9, channels: 3, pixels: (0..<270).map { Float(($0 * (i + 3)) % 17) / 16 })
            try im.write(to: images.appendingPathComponent("f\(i).png").path)
        }
        let tiny = ["--image-size", "8", "--latent-dim", "4", "--generator-filters", "8", "--discriminator-filters", "4",
                    "--batch-size", "4", "--sample-every", "2", "--threads", "1", "--quiet"]
        let run = dir.appendingPathComponent("run")
        var r = try gen(["gan", "train", "--data", images.path, "--steps", "3", "--output", run.path] + tiny)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.out.contains("stopped: reached 3 steps"), r.out)
        let ckpt = run.appendingPathComponent("checkpoint.safetensors")
        for f in ["samples/real.png", "samples/step-000002.png", "samples/step-000003.png", "metrics.csv", "loss.png", "run.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent(f).path), f)
        }
        // Resume to 5 steps.
        r = try gen(["gan", "train", "--data", images.path, "--steps", "5", "--resume", ckpt.path, "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.out.contains("stopped: reached 5 steps (epoch"), r.out)
        // A total already reached: nothing to do (exit 2), the run's record as it was.
        let record = try Data(contentsOf: run.appendingPathComponent("run.json"))
        r = try gen(["gan", "train", "--data", images.path, "--steps", "3", "--resume", ckpt.path, "--quiet"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("nothing to do: \(ckpt.path) is already at step 5, at or past the requested total of 3 steps"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("run.json")), record)

        let out = dir.appendingPathComponent("samples")
        r = try gen(["gan", "sample", "--checkpoint", ckpt.path, "--count", "9", "--grid", "--interpolate", "5",
                     "--waypoints", "3", "--frames", "--truncation", "1.5", "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let grid = try Image(contentsOf: out.appendingPathComponent("grid.png").path)
        XCTAssertEqual(grid.width, 3 * 8 + 4 * 2)
        let strip = try Image(contentsOf: out.appendingPathComponent("interpolation.png").path)
        XCTAssertEqual(strip.width, 9 * 8 + 10 * 2)
        XCTAssertEqual(strip.height, 8 + 2 * 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("frame-009.png").path))
        XCTAssertTrue(r.out.contains("grid.png"), r.out)

        let single = dir.appendingPathComponent("single")
        r = try gen(["gan", "sample", "--checkpoint", ckpt.path, "--count", "2", "--output", single.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Image(contentsOf: single.appendingPathComponent("sample-002.png").path).width, 8)
        XCTAssertFalse(r.stderr.contains("older"), r.stderr)
        // Fewer samples into the same folder: the older sample-003 … are named, and kept.
        r = try gen(["gan", "sample", "--checkpoint", ckpt.path, "--count", "4", "--output", single.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try gen(["gan", "sample", "--checkpoint", ckpt.path, "--count", "2", "--output", single.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("also holds 2 older samples or frames (sample-003.png … sample-004.png)"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: single.appendingPathComponent("sample-004.png").path))
    }

    func testBadInputsThroughTheBinary() throws {
        try setUpBinary()
        // Bad checkpoints for sample: clean error, exit 2, nothing written, the file unchanged.
        let bad = dir.appendingPathComponent("bad.safetensors")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }).write(to: bad)
        let before = tree()
        let bytes = try Data(contentsOf: bad)
        var r = try gen(["gan", "sample", "--checkpoint", bad.path])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains(bad.path), r.stderr)
        XCTAssertEqual(try Data(contentsOf: bad), bytes)
        XCTAssertEqual(tree(), before)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("outputs").path))
        if let cases = cliCasesDirectory() {
            for name in ["ckpt_empty.bin", "ckpt_random.bin"] {
                r = try gen(["gan", "sample", "--checkpoint", cases + "/inputs/case28_bad_checkpoints/" + name])
                XCTAssertEqual(r.status, 2, r.stderr)
            }
            // case17: the mixed folder trains.
            r = try gen(["gan", "train", "--data", cases + "/inputs/case17_mixed_dataset", "--steps", "1", "--image-size", "16",
                         "--generator-filters", "8", "--discriminator-filters", "4", "--batch-size", "4", "--latent-dim", "4",
                         "--output", dir.appendingPathComponent("c17").path, "--quiet"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        // Empty folder, wrong-magic IDX, missing data: exit 2, no run folder.
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let idx = dir.appendingPathComponent("train-images-idx3-ubyte")
        try Data([0x08, 0x03, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9]).write(to: idx)
        for (data, mention) in [(empty.path, "no image files"), (idx.path, "magic"), (dir.appendingPathComponent("none").path, "no such")] {
            r = try gen(["gan", "train", "--data", data, "--steps", "1"])
            XCTAssertEqual(r.status, 2, "\(data): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(mention), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("outputs").path), data)
        }
        // Unwritable output (a file in the way): exit 1, a clean message.
        let file = dir.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        let images = dir.appendingPathComponent("imgs")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        try Image(width: 8, height: 8, channels: 3, repeating: 0.5).write(to: images.appendingPathComponent("a.png").path)
        r = try gen(["gan", "train", "--data", images.path, "--steps", "1", "--image-size", "8", "--output", file.appendingPathComponent("x").path])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("cannot use output folder"), r.stderr)
    }
}
