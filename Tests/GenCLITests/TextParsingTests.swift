import ArgumentParser
import Foundation
import XCTest
@testable import GenCLI
import GenStudio
import GenData
import GenNN

final class TextParsingTests: XCTestCase {
    func parse(_ args: [String]) throws -> ParsableCommand { try GenCommand.parseAsRoot(args) }

    func testParseTrainWithOptions() throws {
        let cmd = try parse(["text", "train", "--corpus", "in.txt", "--steps", "5", "--units", "8", "--seq-length", "8",
                             "--batch-size", "4", "--output", "out", "--layers", "2", "--dropout", "0.25", "--targets", "all",
                             "--optimizer", "Adam", "--learning-rate", "0.002", "--clip-norm", "5", "--validation-split", "0.2",
                             "--seed", "7", "--threads", "1", "--checkpoint-every", "3", "--evaluate-every", "2",
                             "--sample-length", "33", "--quiet", "--time-limit", "1.5", "--epochs", "4"])
        let train = try XCTUnwrap(cmd as? TextTrain)
        XCTAssertEqual(train.corpus, "in.txt")
        XCTAssertEqual(train.common.output, "out")
        XCTAssertTrue(train.common.quiet)
        XCTAssertEqual(train.common.threads, 1)
        let c = train.makeConfig()
        XCTAssertEqual(c.steps, 5)
        XCTAssertEqual(c.epochs, 4)
        XCTAssertEqual(c.timeLimitMinutes, 1.5)
        XCTAssertEqual(c.units, 8)
        XCTAssertEqual(c.layers, 2)
        XCTAssertEqual(c.dropout, 0.25)
        XCTAssertEqual(c.sequenceLength, 8)
        XCTAssertEqual(c.targets, .all)
        XCTAssertEqual(c.windowStride, 8, "--targets all defaults the window step to the sequence length")
        XCTAssertEqual(c.batchSize, 4)
        XCTAssertEqual(c.optimizer, "adam")
        XCTAssertEqual(c.learningRate, 0.002)
        XCTAssertEqual(c.clipNorm, 5)
        XCTAssertEqual(c.validationSplit, 0.2)
        XCTAssertEqual(c.seed, 7)
        XCTAssertEqual(c.checkpointEvery, 3)
        XCTAssertEqual(c.evaluateEvery, 2)
        XCTAssertEqual(c.sampleLength, 33)
        XCTAssertNoThrow(try c.validate())
    }

    func testTrainDefaultsAreTheBooks() throws {
        let train = try XCTUnwrap(try parse(["text", "train", "--corpus", "in.txt"]) as? TextTrain)
        let c = train.makeConfig()
        XCTAssertEqual(c.epochs, 60, "no stopping criterion: the book's 60 epochs")
        XCTAssertEqual(c.units, 128)
        XCTAssertEqual(c.layers, 1)
        XCTAssertEqual(c.sequenceLength, 60)
        XCTAssertEqual(c.windowStride, 3)
        XCTAssertEqual(c.targets, .last)
        XCTAssertEqual(c.batchSize, 128)
        XCTAssertEqual(c.learningRate, 0.01)
        XCTAssertEqual(c.optimizer, "rmsprop")
        XCTAssertEqual(c.seed, 1)
        XCTAssertNil(train.training.resume)
        let resumed = try XCTUnwrap(try parse(["text", "train", "--corpus", "in.txt", "--resume", "ck.safetensors", "--steps", "9"]) as? TextTrain)
        XCTAssertEqual(resumed.training.resume, "ck.safetensors")
        XCTAssertNil(resumed.makeConfig().epochs)
    }

    func testParseSample() throws {
        let cmd = try parse(["text", "sample", "--checkpoint", "ck.safetensors", "--length", "50", "--temperature", "0.2,0.5",
                             "--temperature", "1", "--top-k", "3", "--top-p", "0.9", "--prime", "ROMEO:", "--count", "2",
                             "--seed", "5", "--raw", "--skip-unknown"])
        let s = try XCTUnwrap(cmd as? TextSample)
        XCTAssertEqual(s.checkpoint, "ck.safetensors")
        XCTAssertEqual(s.length, 50)
        XCTAssertEqual(try s.temperatures(), [0.2, 0.5, 1])
        XCTAssertEqual(s.topK, 3)
        XCTAssertEqual(s.topP, 0.9)
        XCTAssertEqual(s.prime, "ROMEO:")
        XCTAssertEqual(s.count, 2)
        XCTAssertEqual(s.seed, 5)
        XCTAssertTrue(s.raw)
        XCTAssertTrue(s.skipUnknown)
        let d = try XCTUnwrap(try parse(["text", "sample", "--checkpoint", "c"]) as? TextSample)
        XCTAssertEqual(try d.temperatures(), [0.5])
        XCTAssertEqual(d.length, 500)
        XCTAssertEqual(d.topK, 0)
        XCTAssertEqual(d.topP, 1)
        XCTAssertFalse(d.raw)
        // Greedy is allowed.
        XCTAssertEqual(try XCTUnwrap(try parse(["text", "sample", "--checkpoint", "c", "--temperature", "0"]) as? TextSample).temperatures(), [0])
        // An empty entry in a list is a mistake, not something to skip.
        XCTAssertThrowsError(try parse(["text", "sample", "--checkpoint", "c", "--temperature", "0.5,,1"]))
    }

    /// Every out-of-range option throws at parse time and maps to exit code 2 with a message that
    /// names the option.
    func testValidationErrorsExitWithTwo() {
        let cases: [([String], String)] = [
            (["text", "sample", "--checkpoint", "c", "--temperature", "-1"], "--temperature"),
            (["text", "sample", "--checkpoint", "c", "--temperature=-0.5"], "--temperature"),
            (["text", "sample", "--checkpoint", "c", "--temperature", "0.5,-2"], "--temperature"),
            (["text", "sample", "--checkpoint", "c", "--temperature", "hot"], "--temperature"),
            (["text", "sample", "--checkpoint", "c", "--temperature", "nan"], "--temperature"),
            (["text", "sample", "--checkpoint", "c", "--top-p", "0"], "--top-p"),
            (["text", "sample", "--checkpoint", "c", "--top-p", "1.5"], "--top-p"),
            (["text", "sample", "--checkpoint", "c", "--top-k", "-1"], "--top-k"),
            (["text", "sample", "--checkpoint", "c", "--length", "-5"], "--length"),
            (["text", "sample", "--checkpoint", "c", "--count", "0"], "--count"),
            (["text", "sample", "--checkpoint", "c", "--prime", "a", "--prime-file", "p.txt"], "--prime"),
            (["text", "sample"], "--checkpoint"),
            (["text", "train", "--corpus", "x", "--batch-size", "0"], "--batch-size"),
            (["text", "train", "--corpus", "x", "--dropout", "1"], "--dropout"),
            (["text", "train", "--corpus", "x", "--lr-decay", "0"], "--lr-decay"),
            (["text", "train", "--corpus", "x", "--lr-decay", "1.5"], "--lr-decay"),
            (["text", "train", "--corpus", "x", "--dropout", "-0.1"], "--dropout"),
            (["text", "train", "--corpus", "x", "--optimizer", "adagrad"], "--optimizer"),
            (["text", "train", "--corpus", "x", "--targets", "some"], "--targets"),
            (["text", "train", "--corpus", "x", "--units", "0"], "--units"),
            (["text", "train", "--corpus", "x", "--layers", "0"], "--layers"),
            (["text", "train", "--corpus", "x", "--seq-length", "0"], "--seq-length"),
            (["text", "train", "--corpus", "x", "--learning-rate", "0"], "--learning-rate"),
            (["text", "train", "--corpus", "x", "--learning-rate", "inf"], "--learning-rate"),
            (["text", "train", "--corpus", "x", "--validation-split", "0.6"], "--validation-split"),
            (["text", "train", "--corpus", "x", "--steps", "0"], "--steps"),
            (["text", "train", "--corpus", "x", "--epochs", "0"], "--epochs"),
            (["text", "train", "--corpus", "x", "--time-limit", "0"], "--time-limit"),
            (["text", "train", "--corpus", "x", "--time-limit", "inf"], "--time-limit"),
            (["vae", "train", "--time-limit", "inf"], "--time-limit"),
            (["gan", "train", "--data", "x", "--time-limit", "inf"], "--time-limit"),
            (["text", "train", "--corpus", "x", "--threads", "0"], "--threads"),
            (["text", "train", "--corpus", "x", "--threads", "1000"], "--threads must be in 1...256 (got 1000"),
            (["bench", "vae", "--threads", "1000"], "--threads must be in 1...256"),
            (["dream", "in.png", "--threads", "257"], "--threads must be in 1...256"),
            (["classify", "in.png", "--threads", "0"], "--threads must be in 1...256"),
            (["image", "bench", "d", "--threads", "300"], "--threads must be in 1...256"),
            (["image", "bench", "d", "--channels", "2"], "--channels must be 1 or 3"),
            (["text", "train", "--corpus", "x", "--clip-norm", "-1"], "--clip-norm"),
            (["text", "train", "--corpus", "x", "--window-step", "0"], "--window-step"),
            (["text", "train", "--corpus", "x", "--units", "many"], "--units"),
            (["text", "train", "--corpus", "x", "--no-such-option"], "--no-such-option"),
            (["text", "train"], "--corpus"),
            (["text", "dance"], "dance"),
            (["bench", "vae", "--budget", "nan"], "--budget"),
            (["text", "train", "--corpus", "x", "--output", ""], "--output"),
            (["vae", "train", "--resume", ""], "--resume"),
            (["vae", "sample", "--checkpoint", "c", "-o", ""], "--output"),
            (["bench", "vae", "--budget", "0"], "--budget"),
            (["bench", "vae", "--budget", "inf"], "--budget"),
        ]
        for (args, option) in cases {
            XCTAssertThrowsError(try GenCommand.parseAsRoot(args), "\(args) parsed") { e in
                XCTAssertEqual(GenCommand.exitCode(for: e), ExitCode(2), "\(args): exit code")
                let message = GenCommand.message(for: e)
                XCTAssertTrue(message.contains(option), "\(args): message '\(message)' does not name \(option)")
            }
        }
    }

    func testHelpIsSuccessAndErrorsKeepTheirCodes() {
        XCTAssertEqual(GenCommand.exitCode(for: CleanExit.helpRequest(TextTrain.self)), .success)
        XCTAssertTrue(GenCommand.fullMessage(for: CleanExit.helpRequest(TextTrain.self)).contains("--corpus"))
        XCTAssertEqual(GenCommand.exitCode(for: ExitCode(1)), ExitCode(1))
        XCTAssertEqual(GenCommand.exitCode(for: ExitCode(2)), ExitCode(2))
    }

    /// `--length -1` reaches the range check ("must be non-negative (got -1)") instead of
    /// ArgumentParser's "Missing value for '--length'".
    func testNegativeNumbersAreOptionValues() throws {
        XCTAssertEqual(joiningNegativeValues(["text", "sample", "--length", "-1", "--top-p", "-.5", "--temperature", "-inf"]),
                       ["text", "sample", "--length=-1", "--top-p=-.5", "--temperature=-inf"])
        // Options that are not followed by a negative number, `--x=-1`, short options and
        // everything after `--` are left as they are.
        let kept = ["gen", "--quiet", "-q", "-1", "--seed=-3", "--out", "--", "--n", "-1"]
        XCTAssertEqual(joiningNegativeValues(kept), kept)
        XCTAssertEqual(joiningNegativeValues(["--n", "-x"]), ["--n", "-x"])
        // A prime that starts with a dash is the prime, not an option.
        let dash = try XCTUnwrap(try GenCommand.parseAsRoot(["text", "sample", "--checkpoint", "c", "--prime", "-e said"]) as? TextSample)
        XCTAssertEqual(dash.prime, "-e said")
        // A forgotten prime text: `--prime --length 5` took "--length" as the prime; that is named.
        XCTAssertEqual(longOptionNames(of: dash), ["--help", "--checkpoint", "--length", "--temperature", "--top-k", "--top-p",
                                                   "--prime", "--prime-file", "--skip-unknown", "--count", "--seed", "--raw"])
        for forgotten in [["--prime", "--length", "5"], ["--prime", "--top-k=3"], ["--prime", "--help"]] {
            XCTAssertThrowsError(try GenCommand.parseAsRoot(["text", "sample", "--checkpoint", "c"] + forgotten)) { e in
                let message = GenCommand.fullMessage(for: e)
                XCTAssertTrue(message.contains("--prime has no text: it took the option '\(forgotten[1])'"), message)
            }
        }
        let option = try XCTUnwrap(try GenCommand.parseAsRoot(["text", "sample", "--checkpoint", "c", "--prime", "--not-an-option"]) as? TextSample)
        XCTAssertEqual(option.prime, "--not-an-option")
        let args = ["text", "sample", "--checkpoint", "c.safetensors", "--length", "-1"]
        XCTAssertThrowsError(try GenCommand.parseAsRoot(joiningNegativeValues(args))) { e in
            let message = GenCommand.fullMessage(for: e)
            XCTAssertTrue(message.contains("--length must be non-negative (got -1)"), message)
        }
    }

    /// Sample options that shape a picture not asked for are refused instead of silently ignored.
    func testSampleOptionsNeedThePictureTheyShape() throws {
        for (args, message) in [(["vae", "sample", "--checkpoint", "c", "--steps", "5"], "--steps shapes the interpolation"),
                                (["vae", "sample", "--checkpoint", "c", "--frames"], "--frames shapes the interpolation"),
                                (["vae", "sample", "--checkpoint", "c", "--manifold-size", "5"], "--manifold-size shapes the manifold"),
                                (["gan", "sample", "--checkpoint", "c", "--waypoints", "3"], "--waypoints shapes the interpolation"),
                                (["gan", "sample", "--checkpoint", "c", "--frames"], "--frames shapes the interpolation")] {
            XCTAssertThrowsError(try GenCommand.parseAsRoot(args), args.joined(separator: " ")) { e in
                let m = GenCommand.fullMessage(for: e)
                XCTAssertTrue(m.contains(message), m)
            }
        }
        for args in [["vae", "sample", "--checkpoint", "c", "--interpolate", "a.png", "b.png", "--steps", "5", "--frames"],
                     ["vae", "sample", "--checkpoint", "c", "--manifold", "--manifold-size", "5"],
                     ["gan", "sample", "--checkpoint", "c", "--interpolate", "8", "--waypoints", "3", "--frames"]] {
            XCTAssertNoThrow(try GenCommand.parseAsRoot(args), args.joined(separator: " "))
        }
    }

    /// gen's mapping of its own errors: input errors 2, run failures 1.
    func testErrorExitCodes() {
        XCTAssertEqual(GenCLI.exitCode(for: TextError.empty(file: "x")), 2)
        XCTAssertEqual(GenCLI.exitCode(for: TextError.invalidUTF8(file: "x", byteOffset: 3)), 2)
        XCTAssertEqual(GenCLI.exitCode(for: CheckpointError(file: "c", kind: .empty)), 2)
        XCTAssertEqual(GenCLI.exitCode(for: StudioError.invalidOption("--x")), 2)
        XCTAssertEqual(GenCLI.exitCode(for: StudioError.incompatibleCheckpoint(path: "c", reason: "r")), 2)
        XCTAssertEqual(GenCLI.exitCode(for: StudioError.nonFiniteLoss(step: 3, lastCheckpoint: nil)), 1)
        XCTAssertEqual(GenCLI.exitCode(for: StudioError.cannotCreateFolder(path: "p", reason: "r")), 1)
        // A full disk while writing is a run failure (1), as the README says, not bad input.
        XCTAssertEqual(GenCLI.exitCode(for: CheckpointError(file: "c", kind: .writeFailed("write failed: No space left on device"))), 1)
        XCTAssertEqual(GenCLI.exitCode(for: ImageError.writeFailed(path: "p.png", reason: "No space left on device")), 1)
        // Ctrl-C before the first step: the interrupted status (128 + SIGINT), as a stop later on gives.
        XCTAssertEqual(GenCLI.exitCode(for: StudioError.interruptedBeforeFirstStep(resumed: nil)), 130)
    }
}
