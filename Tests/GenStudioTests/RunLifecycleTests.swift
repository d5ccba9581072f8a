import Foundation
import XCTest
@testable import GenStudio
import GenNN
import GenData
import GenTensor

/// Every file below `dir` with its bytes (folders as nil): compared before and after to prove a
/// command changed nothing.
func folderContents(_ dir: URL) -> [String: Data?] {
    var out: [String: Data?] = [:]
    for p in listing(dir) { out[p] = fileBytes(dir.appendingPathComponent(p)) }
    return out
}

/// A resume whose total is already reached is refused before anything is written, as the text
/// trainer refuses it.
final class NothingToDoResumeTests: XCTestCase {
    func assertNothingToDo(_ make: () throws -> Void, checkpoint: URL, step: Int, total: Int,
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try make(), file: file, line: line) { e in
            guard case StudioError.invalidOption(let m) = e else { return XCTFail("expected invalidOption, got \(e)", file: file, line: line) }
            for part in ["nothing to do", checkpoint.path, "already at step \(step)", "requested total of \(counted(total, "step"))"] {
                XCTAssertTrue(m.contains(part), "'\(part)' missing from: \(m)", file: file, line: line)
            }
        }
    }

    func testVAEResumeAtOrPastItsTotalIsRefused() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))   // 3 steps per epoch
        let run = dir.appendingPathComponent("run")
        let first = try VAETrainer(config: tinyVAEConfig(data: data, steps: 4), resume: nil, output: run, arguments: [],
                                   progress: SilentProgress()).run()
        let before = folderContents(run)
        for (steps, epochs, total) in [(4, nil, 4), (2, nil, 2), (nil, 1, 3)] as [(Int?, Int?, Int)] {
            var again = tinyVAEConfig(data: data, steps: steps)
            again.epochs = epochs
            let progress = RecordingProgress()
            assertNothingToDo({ _ = try VAETrainer(config: again, resume: first.checkpoint, output: nil, arguments: [], progress: progress) },
                              checkpoint: first.checkpoint, step: 4, total: total)
            XCTAssertFalse(progress.events.contains { if case .metrics = $0 { return true } else { return false } }, "evaluated for nothing")
        }
        XCTAssertEqual(folderContents(run), before, "the run folder changed")
        // Into another folder: refused before that folder is made.
        let other = dir.appendingPathComponent("other")
        assertNothingToDo({ _ = try VAETrainer(config: tinyVAEConfig(data: data, steps: 3), resume: first.checkpoint, output: other,
                                               arguments: [], progress: SilentProgress()) },
                          checkpoint: first.checkpoint, step: 4, total: 3)
        XCTAssertFalse(FileManager.default.fileExists(atPath: other.path))
        // A larger total still resumes.
        XCTAssertEqual(try VAETrainer(config: tinyVAEConfig(data: data, steps: 5), resume: first.checkpoint, output: nil, arguments: [],
                                      progress: SilentProgress()).run().steps, 5)
    }

    func testGANResumeAtOrPastItsTotalIsRefused() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(10, in: dir).path                     // 2 steps per epoch
        let run = dir.appendingPathComponent("run")
        let first = try ganRun(data: data, config: tinyGANConfig(steps: 4), output: run)
        let before = folderContents(run)
        for (steps, epochs, total) in [(4, nil, 4), (3, nil, 3), (nil, 1, 2), (nil, 2, 4)] as [(Int?, Int?, Int)] {
            var again = tinyGANConfig(steps: steps)
            again.epochs = epochs
            assertNothingToDo({ try ganRun(data: data, config: again, resume: first.checkpoint, output: nil) },
                              checkpoint: first.checkpoint, step: 4, total: total)
        }
        XCTAssertEqual(folderContents(run), before, "the run folder changed")
        XCTAssertEqual(try ganRun(data: data, config: tinyGANConfig(steps: 5), resume: first.checkpoint, output: nil).steps, 5)
    }

    func testTextResumeAtOrPastItsTotalIsRefused() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 600), in: dir)
        let run = dir.appendingPathComponent("run")
        let first = try trainRun(corpus: corpus, config: tinyConfig(steps: 5), output: run)
        let before = folderContents(run)
        assertNothingToDo({ try trainRun(corpus: corpus, config: tinyConfig(steps: 3), resume: first.checkpoint, output: nil) },
                          checkpoint: first.checkpoint, step: 5, total: 3)
        XCTAssertEqual(folderContents(run), before, "the run folder changed")
    }
}

/// An --epochs so large that epochs × steps per epoch overflows is no limit, not a crash.
final class HugeEpochCountTests: XCTestCase {
    func testEpochTotalsDoNotOverflow() throws {
        let dir = try makeStudioTempDir(self)
        var vae = tinyVAEConfig(data: try writeBarsIDX(in: dir.appendingPathComponent("data")), steps: nil)
        vae.epochs = Int.max
        vae.timeLimitMinutes = 1e-9
        let v = try VAETrainer(config: vae, resume: nil, output: dir.appendingPathComponent("vae"), arguments: [], progress: SilentProgress()).run()
        XCTAssertTrue(v.stopReason.hasPrefix("time limit"), v.stopReason)
        var gan = tinyGANConfig(steps: nil)
        gan.epochs = Int.max
        gan.timeLimitMinutes = 1e-9
        let g = try ganRun(data: try writeImageFolder(10, in: dir).path, config: gan, output: dir.appendingPathComponent("gan"))
        XCTAssertTrue(g.stopReason.hasPrefix("time limit"), g.stopReason)
    }
}

/// Watches a run's progress: copies the run folder as it stands when the first checkpoint after
/// step `finalStep` lands (what a `kill -9` right then would leave), and counts those checkpoints.
final class KillAtFinalCheckpoint: ProgressReporter {
    let finalStep: Int
    let folder: URL
    let snapshot: URL
    private var finalStepDone = false
    /// Checkpoints written after the final step's progress event.
    private(set) var checkpointsAfterFinalStep = 0

    init(finalStep: Int, folder: URL, snapshot: URL) {
        self.finalStep = finalStep
        self.folder = folder
        self.snapshot = snapshot
    }

    func report(_ event: ProgressEvent) {
        switch event {
        case .step(let step, _, _, _, _, _, _, _, _, _):
            if step == finalStep { finalStepDone = true }
        case .wrote(_, let what) where what == "checkpoint" && finalStepDone:
            checkpointsAfterFinalStep += 1
            if checkpointsAfterFinalStep == 1 { try? FileManager.default.copyItem(at: folder, to: snapshot) }
        default:
            break
        }
    }
}

/// The steps of a run's `metrics.csv` rows (first column).
func metricsSteps(_ folder: URL) -> [String] {
    guard let text = try? String(contentsOf: folder.appendingPathComponent("metrics.csv"), encoding: .utf8) else { return [] }
    return text.split(separator: "\n").dropFirst().compactMap { $0.split(separator: ",").first.map(String.init) }
}

/// A VAE or GAN run killed right after its final checkpoint has its final outputs: the final
/// checkpoint is written once, after the final metrics row and pictures (as the text trainer does).
final class FinalCheckpointOrderTests: XCTestCase {
    func testVAEFinalCheckpointComesAfterTheFinalOutputs() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))   // 16 images, batch 6: 3 steps per epoch
        let run = dir.appendingPathComponent("run"), snapshot = dir.appendingPathComponent("killed")
        var config = tinyVAEConfig(data: data, steps: 4)
        config.checkpointEvery = 2                                            // divides the final step, mid-epoch
        let watch = KillAtFinalCheckpoint(finalStep: 4, folder: run, snapshot: snapshot)
        let s = try VAETrainer(config: config, resume: nil, output: run, arguments: [], progress: watch).run()
        XCTAssertEqual(s.steps, 4)
        XCTAssertEqual(watch.checkpointsAfterFinalStep, 1, "the final checkpoint is written once")
        let killed = listing(snapshot)
        for name in ["reconstructions", "samples", "manifold", "latent"] {
            XCTAssertTrue(killed.contains("pictures/final-step-4-\(name).png"), "final \(name) missing when the final checkpoint landed: \(killed)")
        }
        XCTAssertEqual(metricsSteps(snapshot).last, "4", "the final metrics row was missing when the final checkpoint landed")
    }

    func testGANFinalCheckpointComesAfterTheFinalOutputs() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(10, in: dir).path                     // batch 4, drop-last: 2 steps per epoch
        // The final step ends an epoch (--epochs), or is a multiple of --checkpoint-every mid-epoch.
        for (name, epochs, steps, every, last) in [("epochs", 2, nil, nil, 4), ("every", nil, 3, 3, 3)] as [(String, Int?, Int?, Int?, Int)] {
            let run = dir.appendingPathComponent(name), snapshot = dir.appendingPathComponent(name + "-killed")
            var config = tinyGANConfig(steps: steps)
            config.epochs = epochs
            config.checkpointEvery = every
            config.sampleEvery = 5                                            // the last grid and row are the final ones
            config.logEvery = 5
            let watch = KillAtFinalCheckpoint(finalStep: last, folder: run, snapshot: snapshot)
            let s = try ganRun(data: data, config: config, output: run, progress: watch)
            XCTAssertEqual(s.steps, last, name)
            XCTAssertEqual(watch.checkpointsAfterFinalStep, 1, "\(name): the final checkpoint is written once")
            let killed = listing(snapshot)
            let grid = String(format: "samples/step-%06d.png", last)
            XCTAssertTrue(killed.contains(grid), "\(name): \(grid) missing when the final checkpoint landed: \(killed)")
            XCTAssertTrue(killed.contains("loss.png"), "\(name): \(killed)")
            XCTAssertEqual(metricsSteps(snapshot).last, String(last), "\(name): the final metrics row was missing when the final checkpoint landed")
        }
    }
}

/// A GAN resume keeps the checkpoint's --sample-every and --log-every unless they are given; a
/// given value that differs is used and named in the resume warning.
final class GANResumeCadenceTests: XCTestCase {
    func testOmittedIntervalsKeepTheCheckpointsAndGivenOnesAreNamed() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(10, in: dir).path
        var fresh = tinyGANConfig(steps: 2)
        fresh.sampleEvery = nil
        fresh.logEvery = nil
        let defaults = try GANTrainer(data: data, config: fresh, resume: nil, output: dir.appendingPathComponent("defaults"),
                                      arguments: [], progress: SilentProgress())
        XCTAssertEqual(defaults.config.sampleEvery, GANTrainingConfig.defaultSampleEvery)
        XCTAssertEqual(defaults.config.logEvery, GANTrainingConfig.defaultLogEvery)

        var first = tinyGANConfig(steps: 2)
        first.sampleEvery = 3
        first.logEvery = 2
        let part = try ganRun(data: data, config: first, output: dir.appendingPathComponent("run"))
        let stored = try Checkpoint.load(from: part.checkpoint).metadata(GANTrainingConfig.self, forKey: "training")
        XCTAssertEqual(stored.sampleEvery, 3)
        XCTAssertEqual(stored.logEvery, 2)

        var omitted = tinyGANConfig(steps: 6)
        omitted.sampleEvery = nil
        omitted.logEvery = nil
        let progress = RecordingProgress()
        let kept = try GANTrainer(data: data, config: omitted, resume: part.checkpoint, output: nil,
                                  arguments: ["gen", "gan", "train", "--resume", part.checkpoint.path, "--steps", "6"], progress: progress)
        XCTAssertEqual(kept.config.sampleEvery, 3)
        XCTAssertEqual(kept.config.logEvery, 2)
        XCTAssertFalse(progress.events.contains { if case .warning = $0 { return true } else { return false } })
        _ = try kept.run()
        XCTAssertEqual(metricsSteps(part.folder), ["2", "4", "6"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: part.folder.appendingPathComponent("samples/step-000003.png").path))

        var given = tinyGANConfig(steps: 8)
        given.sampleEvery = 5
        given.logEvery = 2
        given.checkpointEvery = 4
        let warned = RecordingProgress()
        let resumed = try GANTrainer(data: data, config: given, resume: part.checkpoint, output: nil,
                                     arguments: ["gen", "gan", "train", "--resume", part.checkpoint.path, "--steps", "8",
                                                 "--sample-every", "5", "--log-every=2", "--checkpoint-every", "4"], progress: warned)
        XCTAssertEqual(resumed.config.sampleEvery, 5)
        XCTAssertEqual(resumed.config.checkpointEvery, 4)
        let warnings = warned.events.compactMap { if case .warning(let w) = $0 { return w } else { return nil } }
        XCTAssertEqual(warnings.count, 1, "\(warnings)")
        let w = warnings.first ?? ""
        XCTAssertTrue(w.contains("--sample-every 5 (the checkpoint's 3)"), w)
        XCTAssertTrue(w.contains("--checkpoint-every 4 (none in the checkpoint)"), w)
        XCTAssertTrue(w.contains("used from here on"), w)
        XCTAssertFalse(w.contains("--log-every"), "the checkpoint's own value is not a change: \(w)")
        XCTAssertFalse(w.contains("ignored"), w)
    }
}

/// A GAN run that fails before its first checkpoint leaves nothing behind (no real-image grid, no
/// samples, metrics, loss curve or run.json, no folder it made), as text and VAE runs do, so the
/// same --output can be used again.
final class GANFailureCleanupTests: XCTestCase {
    func testFailureBeforeTheFirstCheckpointLeavesNothing() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(40, in: dir)                          // batch 4: 10 steps per epoch
        let top = dir.appendingPathComponent("a"), out = top.appendingPathComponent("b/run")
        var config = tinyGANConfig(steps: 8)
        config.sampleEvery = 1
        config.logEvery = 1
        let trainer = try GANTrainer(data: data.path, config: config, resume: nil, output: out, arguments: [], progress: SilentProgress())
        var writtenBeforeFailure: [String] = []
        trainer.beforeStepHook = { step in
            if step == 4 {
                writtenBeforeFailure = listing(out)
                trainer.currentGenerator.parameters[0].storage.base[0] = .nan   // the losses become NaN
            }
        }
        XCTAssertThrowsError(try trainer.run()) { e in
            guard case GANError.nonFinite(let step, _, let last) = e else { return XCTFail("expected GANError.nonFinite, got \(e)") }
            XCTAssertEqual(step, 4)
            XCTAssertNil(last)
        }
        for f in ["samples/real.png", "samples/step-000003.png", "metrics.csv", "loss.png"] {
            XCTAssertTrue(writtenBeforeFailure.contains(f), "the test expects \(f) before the failure: \(writtenBeforeFailure)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: top.path), "left behind: \(listing(top))")
        // The same --output is accepted again.
        config.steps = 2
        XCTAssertEqual(try ganRun(data: data.path, config: config, output: out).steps, 2)

        // A resumed run that fails keeps the folder and records the failure.
        var more = tinyGANConfig(steps: 6)
        more.sampleEvery = 1
        let resumed = try GANTrainer(data: data.path, config: more, resume: out.appendingPathComponent("checkpoint.safetensors"),
                                     output: nil, arguments: [], progress: SilentProgress())
        resumed.beforeStepHook = { step in if step == 4 { resumed.currentGenerator.parameters[0].storage.base[0] = .nan } }
        XCTAssertThrowsError(try resumed.run())
        XCTAssertTrue(listing(out).contains("samples/step-000003.png"))
        let record = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: out.appendingPathComponent("run.json")))
        XCTAssertTrue(record.outcome?.hasPrefix("failed") == true, "\(record)")
    }
}
