import Foundation
import XCTest
@testable import GenStudio
import GenNN
import GenData
import GenTensor

final class TextTrainingTests: XCTestCase {
    // MARK: Loss falls

    /// With `--targets all` the validation loss still scores only the character after each window,
    /// from the whole window before it: the same measure as `--targets last`, computed here by hand
    /// from the model's every-position logits (last row of each window).
    func testValidationScoresNextCharacterWhateverTargets() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(String(repeating: "the cat sat on the mat; ", count: 30), in: dir)
        var c = tinyConfig(steps: 5)
        c.targets = .all
        let trainer = try TextTrainer(corpus: corpus, config: c, resume: nil, output: dir.appendingPathComponent("run"),
                                      arguments: [], progress: SilentProgress())
        _ = try trainer.run()
        let got = try XCTUnwrap(trainer.validationBitsPerCharacter())
        let v = trainer.validation
        let use = min(v.starts.count, c.maxValidationWindows)
        XCTAssertGreaterThan(use, 3)
        var total = 0.0
        for i in 0..<use {
            let s = v.starts[i * v.starts.count / use]
            var r = RandomGenerator(seed: 0)
            let rows = withNoGrad {
                trainer.model.logits(tokens: Array(v.tokens[s..<(s + c.sequenceLength)]), batch: 1, training: false, rng: &r)
            }
            XCTAssertEqual(rows.shape[0], c.sequenceLength, "an all-targets model gives every position's logits")
            let vocab = rows.shape[1]
            let last = rows.scalars[((c.sequenceLength - 1) * vocab)...].map(Double.init)
            let top = last.max()!
            let logSum = top + Foundation.log(last.reduce(0) { $0 + Foundation.exp($1 - top) })
            total += logSum - last[Int(v.tokens[s + c.sequenceLength])]
        }
        XCTAssertEqual(got, total / Double(use) / Foundation.log(2.0), accuracy: 1e-4)
        // Validation windows start at every held-out position, whatever the training window step.
        XCTAssertEqual(v.starts, Array(0..<v.starts.count))
    }

    /// A repetitive text over 8 symbols: the untrained model is near log2(8) = 3 bits/char; after
    /// a few dozen steps it must be clearly below.
    func testLossFallsOnRepetitiveText() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(String(repeating: "abcdefgh", count: 120), in: dir)
        var c = tinyConfig(steps: 60)
        c.units = 16
        c.targets = .all
        c.windowStride = 3      // not a multiple of the period: windows start at every phase, as validation's do
        c.batchSize = 16
        c.learningRate = 0.02
        let trainer = try TextTrainer(corpus: corpus, config: c, resume: nil, output: dir.appendingPathComponent("run"),
                                      arguments: [], progress: SilentProgress())
        XCTAssertEqual(trainer.vocabulary.count, 8)
        let initial = try XCTUnwrap(trainer.validationBitsPerCharacter())
        XCTAssertEqual(initial, 3, accuracy: 0.5, "an untrained model should be near log2(V) bits/char")
        let summary = try trainer.run()
        let final = try XCTUnwrap(summary.validationBitsPerCharacter)
        XCTAssertTrue(final.isFinite)
        XCTAssertLessThan(final, 1.0, "validation loss did not fall: \(initial) → \(final) bits/char")
        XCTAssertEqual(summary.steps, 60)
        // The run folder has what the README promises.
        let files = listing(dir.appendingPathComponent("run"))
        XCTAssertTrue(files.contains("checkpoint.safetensors"), "\(files)")
        XCTAssertTrue(files.contains("metrics.csv"), "\(files)")
        XCTAssertTrue(files.contains("run.json"), "\(files)")
        // 60 steps end an epoch exactly, so the last samples are the epoch's.
        XCTAssertTrue(files.contains { $0.hasPrefix("samples/") && $0.hasSuffix("-step-60.txt") }, "\(files)")
        XCTAssertFalse(files.contains { $0.contains(".tmp") || $0.hasPrefix(".") }, "leftover temporary files: \(files)")
    }

    /// `best.safetensors` holds the weights of the lowest validation loss seen (epoch ends,
    /// `--evaluate-every` and the end of the run): resuming from it evaluates to exactly that loss,
    /// and its loss is the minimum of every validation reported.
    func testBestCheckpointHoldsTheLowestValidationLoss() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 600), in: dir)
        var c = tinyConfig(steps: 40)
        c.learningRate = 0.05
        c.evaluateEvery = 3
        let progress = RecordingProgress()
        let trainer = try TextTrainer(corpus: corpus, config: c, resume: nil, output: dir.appendingPathComponent("run"),
                                      arguments: [], progress: progress)
        let summary = try trainer.run()
        var seen: [(step: Int, bpc: Double)] = []
        for case .metrics(let step, _, _, let values) in progress.events {
            for (name, v) in values where name == "validation bits/char" { seen.append((step, v)) }
        }
        XCTAssertGreaterThan(seen.count, 10)
        let lowest = try XCTUnwrap(seen.min { $0.bpc < $1.bpc })
        let best = try XCTUnwrap(summary.best)
        XCTAssertEqual(best.bitsPerCharacter, lowest.bpc)
        XCTAssertEqual(best.step, seen.first { $0.bpc == lowest.bpc }?.step)
        XCTAssertEqual(best.checkpoint.lastPathComponent, "best.safetensors")
        XCTAssertEqual(summary.checkpoint.lastPathComponent, "checkpoint.safetensors")
        // The best checkpoint is a complete checkpoint of that step: it resumes and scores the same.
        let reopened = try TextTrainer(corpus: corpus, config: c, resume: best.checkpoint,
                                       output: dir.appendingPathComponent("again"), arguments: [], progress: SilentProgress())
        XCTAssertEqual(reopened.state.step, best.step)
        XCTAssertEqual(try XCTUnwrap(reopened.validationBitsPerCharacter()), best.bitsPerCharacter, accuracy: 1e-9)
        // Written only on improvement: the file's own record agrees with the summary.
        XCTAssertEqual(reopened.state.bestValidationBitsPerCharacter, best.bitsPerCharacter)
        // --evaluate-every evaluations are rows of metrics.csv too (train column empty).
        let rows = try String(contentsOf: summary.folder.appendingPathComponent("metrics.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        XCTAssertTrue(rows.contains { $0[0] == "\(best.step)" && Double($0[3]) == (best.bitsPerCharacter * 1e4).rounded() / 1e4 },
                      "no metrics row for the best step \(best.step)")
        XCTAssertTrue(rows.contains { $0[0] == "3" && $0[2].isEmpty && !$0[3].isEmpty }, "no evaluate-every row at step 3")
        // Resuming in the run's own folder from best.safetensors would overwrite the later checkpoint: refused.
        XCTAssertThrowsError(try TextTrainer(corpus: corpus, config: c, resume: best.checkpoint, output: nil, arguments: [],
                                             progress: SilentProgress())) { error in
            XCTAssertTrue("\(error)".contains("--output"), "\(error)")
        }
    }

    /// A `--checkpoint-every` checkpoint written at an `--evaluate-every` step already records that
    /// step's validation in its best (the evaluation runs first), seen mid-run between steps.
    func testMidRunCheckpointRecordsTheSameStepValidation() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 600), in: dir)
        var c = tinyConfig(steps: 12)
        c.evaluateEvery = 4
        c.checkpointEvery = 4
        let run = dir.appendingPathComponent("run")
        let progress = RecordingProgress()
        let trainer = try TextTrainer(corpus: corpus, config: c, resume: nil, output: run, arguments: [], progress: progress)
        var recorded: [Int: Double] = [:]   // checkpoint step → its recorded best
        _ = try trainer.run(shouldStop: {
            if let ckpt = try? Checkpoint.load(from: run.appendingPathComponent("checkpoint.safetensors"), expectingGenerator: "text"),
               let st = try? ckpt.metadataIfPresent(TextTrainingState.self, forKey: "state"), recorded[st.step] == nil {
                recorded[st.step] = st.bestValidationBitsPerCharacter ?? .nan
            }
            return false
        })
        var validation: [Int: Double] = [:]
        for case .metrics(let step, _, _, let values) in progress.events {
            for (name, v) in values where name == "validation bits/char" { validation[step] = v }
        }
        let v4 = try XCTUnwrap(validation[4]), v8 = try XCTUnwrap(validation[8])
        XCTAssertLessThan(v8, v4, "the test needs step 8 to improve on step 4")
        XCTAssertEqual(recorded[4], v4)
        XCTAssertEqual(recorded[8], v8, "the step-8 checkpoint does not know step 8's validation")
        // The last step is evaluated once: one metrics row for it.
        let rows = try String(contentsOf: run.appendingPathComponent("metrics.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().filter { $0.hasPrefix("12,") }
        XCTAssertEqual(rows.count, 1, "\(rows)")
    }

    /// A run resumed into another folder does not adopt a `best.safetensors` that folder holds from
    /// elsewhere; a run resumed in its own folder drops the metrics rows after its checkpoint (the
    /// steps it redoes) instead of listing them twice.
    func testResumeFolderBestAndMetricsBelongToTheRun() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 600), in: dir)
        var c = tinyConfig(steps: 8)
        c.evaluateEvery = 2
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
        let first = try TextTrainer(corpus: corpus, config: c, resume: nil, output: a, arguments: [], progress: SilentProgress())
        let summary = try first.run()
        let bestA = try XCTUnwrap(summary.best)
        // A stray best in b with an unbeatable record.
        try FileManager.default.createDirectory(at: b, withIntermediateDirectories: true)
        var stray = try Checkpoint.load(from: bestA.checkpoint, expectingGenerator: "text")
        var st = try XCTUnwrap(try stray.metadataIfPresent(TextTrainingState.self, forKey: "state"))
        st.bestValidationBitsPerCharacter = 0.001
        try stray.setMetadata(st, forKey: "state")
        try stray.save(to: b.appendingPathComponent("best.safetensors"))
        var more = c
        more.steps = 12
        let other = try TextTrainer(corpus: corpus, config: more, resume: summary.checkpoint, output: b, arguments: [],
                                    progress: SilentProgress())
        XCTAssertNotEqual(other.state.bestValidationBitsPerCharacter, 0.001)
        let otherBest = try XCTUnwrap(try other.run().best)
        XCTAssertGreaterThan(otherBest.bitsPerCharacter, 0.001, "the stray best was adopted")
        // Own folder: rows after the checkpoint's step are dropped before the steps are redone.
        let metrics = a.appendingPathComponent("metrics.csv")
        let original = try String(contentsOf: metrics, encoding: .utf8)
        try (original + "10,1,,9.9999,1.0,1.0\n").write(to: metrics, atomically: true, encoding: .utf8)
        let again = try TextTrainer(corpus: corpus, config: more, resume: summary.checkpoint, output: nil, arguments: [],
                                    progress: SilentProgress())
        _ = try again.run()
        let steps = try String(contentsOf: metrics, encoding: .utf8).split(separator: "\n").dropFirst()
            .compactMap { $0.split(separator: ",", omittingEmptySubsequences: false).first.flatMap { Int($0) } }
        XCTAssertFalse(try String(contentsOf: metrics, encoding: .utf8).contains("9.9999"))
        XCTAssertEqual(steps, steps.sorted(), "\(steps)")
        XCTAssertEqual(Set(steps).count, steps.count, "duplicate steps: \(steps)")
    }

    /// A checkpoint written at an evaluation step records that evaluation in its best; and a run
    /// resumed from a checkpoint whose recorded best is stale (killed after a later improvement)
    /// keeps the folder's better `best.safetensors`.
    func testResumeKeepsTheFolderBest() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 600), in: dir)
        var c = tinyConfig(steps: 12)
        c.learningRate = 0.05
        c.evaluateEvery = 4
        c.checkpointEvery = 4
        let run = dir.appendingPathComponent("run")
        let first = try TextTrainer(corpus: corpus, config: c, resume: nil, output: run, arguments: [], progress: SilentProgress())
        let summary = try first.run()
        let best = try XCTUnwrap(summary.best)
        let ckptURL = run.appendingPathComponent("checkpoint.safetensors")
        var ckpt = try Checkpoint.load(from: ckptURL, expectingGenerator: "text")
        var st = try XCTUnwrap(try ckpt.metadataIfPresent(TextTrainingState.self, forKey: "state"))
        XCTAssertEqual(st.bestValidationBitsPerCharacter, best.bitsPerCharacter, "the last checkpoint knows the best")
        // Make the checkpoint's record stale, as after a kill between an improvement and the next checkpoint.
        st.bestValidationBitsPerCharacter = best.bitsPerCharacter + 1
        st.bestValidationStep = 1
        try ckpt.setMetadata(st, forKey: "state")
        try ckpt.save(to: ckptURL)
        var more = c
        more.steps = 16
        let resumed = try TextTrainer(corpus: corpus, config: more, resume: ckptURL, output: nil, arguments: [],
                                      progress: SilentProgress())
        XCTAssertEqual(resumed.state.bestValidationBitsPerCharacter, best.bitsPerCharacter)
        XCTAssertEqual(resumed.state.bestValidationStep, best.step)
        let after = try XCTUnwrap(try resumed.run().best)
        XCTAssertLessThanOrEqual(after.bitsPerCharacter, best.bitsPerCharacter)
    }

    // MARK: Determinism

    func testSameSeedSameWeightsAndSamplesDifferentSeedDiffers() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 500), in: dir)
        var c = tinyConfig(steps: 12)
        c.layers = 2
        c.dropout = 0.2
        let a = try trainRun(corpus: corpus, config: c, output: dir.appendingPathComponent("a"))
        let b = try trainRun(corpus: corpus, config: c, output: dir.appendingPathComponent("b"))
        c.seed = 2
        let d = try trainRun(corpus: corpus, config: c, output: dir.appendingPathComponent("d"))
        let wa = try checkpointBits(a.checkpoint), wb = try checkpointBits(b.checkpoint), wd = try checkpointBits(d.checkpoint)
        XCTAssertEqual(Set(wa.keys), Set(wb.keys))
        for (name, bits) in wa { XCTAssertEqual(bits, wb[name], "tensor \(name) differs between two runs with the same seed") }
        XCTAssertNotEqual(wa["dense/kernel"], wd["dense/kernel"], "a different seed gave the same weights")
        XCTAssertEqual(a.samples.map(\.text), b.samples.map(\.text), "same seed, different samples")
        XCTAssertNotEqual(a.samples.map(\.text), d.samples.map(\.text), "different seeds, same samples")
        let sa = try String(contentsOf: a.folder.appendingPathComponent("samples/final-step-12.txt"), encoding: .utf8)
        let sb = try String(contentsOf: b.folder.appendingPathComponent("samples/final-step-12.txt"), encoding: .utf8)
        XCTAssertEqual(sa, sb)
    }

    // MARK: Exact resume

    struct ResumeVariant {
        var name: String
        var targets: TextTargets
        var layers: Int
        var dropout: Float
        var optimizer: String
        var stride: Int
        var batch: Int
        var total: Int
        var firstLeg: Int
        var learningRateDecay: Float = 1
    }

    /// Trains `total` steps in one session and `firstLeg` + resume + the rest in two; every tensor
    /// (weights and optimizer moments) of the final checkpoints must be bit-identical.
    func checkExactResume(_ v: ResumeVariant) throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 420, seed: 11), in: dir)
        var c = tinyConfig(steps: v.total)
        c.targets = v.targets
        c.layers = v.layers
        c.dropout = v.dropout
        c.optimizer = v.optimizer
        c.windowStride = v.stride
        c.batchSize = v.batch
        c.sampleLength = 10
        c.seed = 42
        c.learningRateDecay = v.learningRateDecay

        let whole = try trainRun(corpus: corpus, config: c, output: dir.appendingPathComponent("whole"))
        XCTAssertEqual(whole.steps, v.total)

        var first = c
        first.steps = v.firstLeg
        let part = dir.appendingPathComponent("parts")
        let leg1 = try trainRun(corpus: corpus, config: first, output: part)
        // The resume point must be inside an epoch, so that the data position matters.
        let ckpt1 = try Checkpoint.load(from: leg1.checkpoint, expectingGenerator: "text")
        let st1 = try XCTUnwrap(ckpt1.metadataIfPresent(TextTrainingState.self, forKey: "state"))
        XCTAssertEqual(st1.step, v.firstLeg)
        XCTAssertGreaterThan(st1.batchInEpoch, 0, "\(v.name): the resume point is at an epoch boundary; pick another split")

        // Resume with a different seed and options on the command line: the checkpoint's win.
        var second = tinyConfig(steps: v.total, seed: 999)
        second.sampleLength = 10
        let leg2 = try trainRun(corpus: corpus, config: second, resume: leg1.checkpoint, output: nil)
        XCTAssertEqual(leg2.steps, v.total)
        XCTAssertEqual(leg2.folder.standardizedFileURL.path, part.standardizedFileURL.path)

        let a = try checkpointBits(whole.checkpoint), b = try checkpointBits(leg2.checkpoint)
        XCTAssertEqual(Set(a.keys), Set(b.keys), "\(v.name): tensor names differ")
        XCTAssertTrue(a.keys.contains { $0.hasPrefix("optimizer/") }, "\(v.name): no optimizer state saved")
        for name in a.keys.sorted() {
            XCTAssertEqual(a[name], b[name], "\(v.name): tensor \(name) differs after resume")
        }
        let sa = try Checkpoint.load(from: whole.checkpoint).metadataIfPresent(TextTrainingState.self, forKey: "state")
        let sb = try Checkpoint.load(from: leg2.checkpoint).metadataIfPresent(TextTrainingState.self, forKey: "state")
        XCTAssertEqual(sa?.step, sb?.step)
        XCTAssertEqual(sa?.epoch, sb?.epoch)
        XCTAssertEqual(sa?.batchInEpoch, sb?.batchInEpoch)
        XCTAssertEqual(sa?.rng, sb?.rng, "\(v.name): random state differs after resume")
        // The running epoch's train-loss sums travel in the checkpoint: after the resume they are
        // those of the uninterrupted run (so the epoch's metrics.csv row covers the whole epoch).
        XCTAssertEqual(sa?.epochLossCount, sb?.epochLossCount, "\(v.name): epoch loss count differs after resume")
        XCTAssertEqual(sa?.epochLossSum, sb?.epochLossSum, "\(v.name): epoch loss sum differs after resume")
        XCTAssertEqual(whole.samples.map(\.text), leg2.samples.map(\.text), "\(v.name): final samples differ")
    }

    func testExactResumeTargetsLastOneLayer() throws {
        // 420 chars, 10% validation → 378 training tokens, (378-9)/3+1 = 124 windows, batch 8 → 15 steps/epoch.
        try checkExactResume(ResumeVariant(name: "last/1 layer", targets: .last, layers: 1, dropout: 0, optimizer: "rmsprop",
                                           stride: 3, batch: 8, total: 22, firstLeg: 11))
    }

    func testExactResumeTargetsLastTwoLayersDropoutAdam() throws {
        try checkExactResume(ResumeVariant(name: "last/2 layers/dropout/adam", targets: .last, layers: 2, dropout: 0.3,
                                           optimizer: "adam", stride: 3, batch: 8, total: 22, firstLeg: 9))
    }

    func testExactResumeTargetsAllTwoLayersDropout() throws {
        // stride 8: (378-9)/8+1 = 47 windows, batch 4 → 11 steps/epoch; 7 is mid-epoch, 16 crosses an epoch end.
        try checkExactResume(ResumeVariant(name: "all/2 layers/dropout", targets: .all, layers: 2, dropout: 0.25,
                                           optimizer: "rmsprop", stride: 8, batch: 4, total: 16, firstLeg: 7))
    }

    /// best.safetensors written at an epoch's end resumes exactly too: the next epoch's train loss
    /// (a sum carried in the checkpoint) equals the uninterrupted run's. (It was written before the
    /// epoch's sums were reset, so the next epoch's loss included the previous one's.)
    func testResumeFromBestWrittenAtAnEpochEnd() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 420, seed: 11), in: dir)
        var c = tinyConfig(steps: nil)
        c.epochs = 2
        c.sampleLength = 10
        let whole = try trainRun(corpus: corpus, config: c, output: dir.appendingPathComponent("whole"))
        var one = c
        one.epochs = 1
        let first = try trainRun(corpus: corpus, config: one, output: dir.appendingPathComponent("first"))
        let best = try XCTUnwrap(first.best?.checkpoint)
        XCTAssertEqual(best.lastPathComponent, "best.safetensors")
        let resumed = try trainRun(corpus: corpus, config: c, resume: best, output: dir.appendingPathComponent("resumed"))
        func epochRow(_ folder: URL, epoch: String) throws -> [String]? {
            try String(contentsOf: folder.appendingPathComponent("metrics.csv"), encoding: .utf8)
                .split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
                .last { $0.count > 2 && $0[1] == epoch && !$0[2].isEmpty }
        }
        let a = try XCTUnwrap(try epochRow(whole.folder, epoch: "2")), b = try XCTUnwrap(try epochRow(resumed.folder, epoch: "2"))
        XCTAssertEqual(a[0], b[0], "step")
        XCTAssertEqual(a[2], b[2], "epoch 2's train loss after resuming from best.safetensors")
        XCTAssertEqual(a[3], b[3], "validation")
    }

    func testExactResumeWithSGDAfterAnEpochEnd() throws {
        // Resume point in the second epoch (11 steps/epoch, resume at 14).
        try checkExactResume(ResumeVariant(name: "all/sgd/second epoch", targets: .all, layers: 2, dropout: 0.1,
                                           optimizer: "sgd", stride: 8, batch: 4, total: 20, firstLeg: 14))
    }

    func testExactResumeWithLearningRateDecay() throws {
        // The decayed rate follows from the epoch: resuming in the second epoch must match exactly.
        try checkExactResume(ResumeVariant(name: "all/lr decay", targets: .all, layers: 1, dropout: 0,
                                           optimizer: "rmsprop", stride: 8, batch: 4, total: 20, firstLeg: 14,
                                           learningRateDecay: 0.5))
    }

    func testLearningRateDecaySchedule() {
        var c = TextTrainingConfig()
        c.learningRate = 0.01
        c.learningRateDecay = 0.5
        XCTAssertEqual(c.learningRate(atEpoch: 0), 0.01)
        XCTAssertEqual(c.learningRate(atEpoch: 2), 0.0025, accuracy: 1e-9)
        c.learningRateDecay = 1
        XCTAssertEqual(c.learningRate(atEpoch: 7), 0.01)
    }

    // MARK: Non-finite loss

    /// An absurd learning rate must stop training with `nonFiniteLoss`, keep the last good
    /// checkpoint byte for byte, and never write a sample with NaN in it.
    func checkNonFinite(optimizer: String, learningRate: Float) throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 400), in: dir)
        let out = dir.appendingPathComponent("run")
        // A good checkpoint first.
        var good = tinyConfig(steps: 3)
        good.optimizer = optimizer
        let first = try trainRun(corpus: corpus, config: good, output: out)
        let before = try XCTUnwrap(fileBytes(first.checkpoint))
        let samplesBefore = listing(out.appendingPathComponent("samples"))

        // Continue from it with the absurd rate: a fresh run into the same folder (the resumed one
        // keeps the checkpoint's learning rate), checkpointing every step.
        var bad = tinyConfig(steps: 50)
        bad.optimizer = optimizer
        bad.learningRate = learningRate
        bad.checkpointEvery = 1
        let trainer = try TextTrainer(corpus: corpus, config: bad, resume: nil, output: dir.appendingPathComponent("bad"),
                                      arguments: [], progress: SilentProgress())
        var thrown: Error?
        XCTAssertThrowsError(try trainer.run()) { thrown = $0 }
        guard case .some(StudioError.nonFiniteLoss(let step, _)) = thrown else {
            return XCTFail("\(optimizer) lr \(learningRate): expected StudioError.nonFiniteLoss, got \(String(describing: thrown))")
        }
        XCTAssertGreaterThanOrEqual(step, 1)
        // Whatever checkpoints the bad run wrote hold only finite values (written before the failing step).
        let badCkpt = dir.appendingPathComponent("bad/checkpoint.safetensors")
        if FileManager.default.fileExists(atPath: badCkpt.path) {
            for (name, bits) in try checkpointBits(badCkpt) {
                XCTAssertTrue(bits.allSatisfy { Float(bitPattern: $0).isFinite }, "checkpoint tensor \(name) holds non-finite values")
            }
        }
        for f in listing(dir.appendingPathComponent("bad")) where f.hasPrefix("samples/") && f.hasSuffix(".txt") {
            let s = try String(contentsOf: dir.appendingPathComponent("bad/" + f), encoding: .utf8)
            XCTAssertFalse(s.contains("nan") || s.contains("NaN"), "sample \(f) mentions NaN")
        }
        XCTAssertEqual(fileBytes(first.checkpoint), before, "the good checkpoint changed")
        XCTAssertEqual(listing(out.appendingPathComponent("samples")), samplesBefore)

        // Resuming the good checkpoint with an absurd rate is impossible (the stored rate wins), so
        // also drive the failure inside the same folder: the good checkpoint must stay as it was.
        var sameFolder = bad
        sameFolder.checkpointEvery = nil
        // A new run into a folder holding another run's checkpoint is refused before anything is written.
        XCTAssertThrowsError(try TextTrainer(corpus: corpus, config: sameFolder, resume: nil, output: out, arguments: [],
                                             progress: SilentProgress())) { e in
            guard case StudioError.invalidOption(let m) = e, m.contains("already holds") else { return XCTFail("expected a refusal, got \(e)") }
        }
        XCTAssertEqual(fnv1a(fileBytes(first.checkpoint) ?? Data()), fnv1a(before), "the last good checkpoint was overwritten")
        XCTAssertEqual(listing(out.appendingPathComponent("samples")), samplesBefore, "samples were written for a failed run")
    }

    /// lr 1e30 does not overflow float32: weights become ~1e30 and the loss ~1e31 bits/char, finite
    /// but diverged; the trainer treats a loss above 10^6 bits/char as non-finite.
    func testDivergedLossRMSprop() throws { try checkNonFinite(optimizer: "rmsprop", learningRate: 1e30) }
    func testDivergedLossSGD() throws { try checkNonFinite(optimizer: "sgd", learningRate: 1e30) }
    func testDivergedLossAdam() throws { try checkNonFinite(optimizer: "adam", learningRate: 1e30) }
    /// lr 3e38 overflows the weights to infinity: a genuinely NaN/infinite loss, reported, not a crash.
    func testNonFiniteLossRMSprop() throws { try checkNonFinite(optimizer: "rmsprop", learningRate: 3e38) }
    func testNonFiniteLossSGD() throws { try checkNonFinite(optimizer: "sgd", learningRate: 3e38) }
    func testNonFiniteLossWithClipNorm() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 400), in: dir)
        var c = tinyConfig(steps: 20)
        c.learningRate = 3e38
        c.clipNorm = 1
        let out = dir.appendingPathComponent("run")
        let t = try TextTrainer(corpus: corpus, config: c, resume: nil, output: out, arguments: [], progress: SilentProgress())
        XCTAssertThrowsError(try t.run()) { e in
            guard case StudioError.nonFiniteLoss(_, let last) = e else { return XCTFail("expected nonFiniteLoss, got \(e)") }
            XCTAssertNil(last)
            XCTAssertTrue("\(e)".contains("--learning-rate"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint.safetensors").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("samples").path))
    }

    /// lr 1e30 takes the weights to ~1e30 in the first step; the validation right after it sees the
    /// divergence (about 1e31 bits/char) before the next step's loss does. The run must stop there:
    /// no best.safetensors holding those weights, and no metrics row with the diverged value.
    func testDivergedWeightsNeverBecomeTheBestCheckpoint() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 400), in: dir)
        var c = tinyConfig(steps: 50)
        c.optimizer = "rmsprop"
        c.learningRate = 1e30
        c.evaluateEvery = 1
        let out = dir.appendingPathComponent("run")
        let t = try TextTrainer(corpus: corpus, config: c, resume: nil, output: out, arguments: [], progress: SilentProgress())
        XCTAssertThrowsError(try t.run()) { e in
            guard case StudioError.nonFiniteLoss(let step, let last) = e else { return XCTFail("expected nonFiniteLoss, got \(e)") }
            XCTAssertEqual(step, 1)
            XCTAssertNil(last)
            XCTAssertTrue("\(e)".contains("no checkpoint had been written yet"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("best.safetensors").path))
        let metrics = (try? String(contentsOf: out.appendingPathComponent("metrics.csv"), encoding: .utf8)) ?? ""
        XCTAssertLessThanOrEqual(metrics.split(separator: "\n").count, 1, "a metrics row was written: \(metrics)")
    }

    /// When only best.safetensors has been written, a stopped run names it as the checkpoint to
    /// resume from, instead of saying that no checkpoint was written.
    func testBestCheckpointIsTheLastGoodOneBeforeTheFirstRegularCheckpoint() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 400), in: dir)
        let out = dir.appendingPathComponent("run")
        let t = try TextTrainer(corpus: corpus, config: tinyConfig(steps: 5), resume: nil, output: out, arguments: [],
                                progress: SilentProgress())
        XCTAssertNil(t.lastGoodCheckpoint)
        try t.noteValidation(3.5, elapsed: 0)
        let best = out.appendingPathComponent("best.safetensors")
        XCTAssertEqual(t.lastGoodCheckpoint?.standardizedFileURL.path, best.standardizedFileURL.path)
        XCTAssertThrowsError(try t.noteValidation(.nan, elapsed: 0)) { e in
            XCTAssertTrue("\(e)".contains("the last good checkpoint is \(t.lastGoodCheckpoint?.path ?? "?")"), "\(e)")
        }
        try t.saveCheckpoint()
        XCTAssertEqual(t.lastGoodCheckpoint?.lastPathComponent, "checkpoint.safetensors")
    }

    // MARK: Options

    func testInvalidConfigurationsThrowBeforeWriting() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 300), in: dir)
        let out = dir.appendingPathComponent("out")
        var bad: [TextTrainingConfig] = []
        var c = tinyConfig(); c.dropout = 1; bad.append(c)
        c = tinyConfig(); c.batchSize = 0; bad.append(c)
        c = tinyConfig(); c.optimizer = "adagrad"; bad.append(c)
        c = tinyConfig(); c.learningRate = -1; bad.append(c)
        c = tinyConfig(); c.validationSplit = 0.9; bad.append(c)
        c = tinyConfig(); c.sampleTemperatures = [-1]; bad.append(c)
        for config in bad {
            XCTAssertThrowsError(try TextTrainer(corpus: corpus, config: config, resume: nil, output: out,
                                                 arguments: [], progress: SilentProgress())) { e in
                guard case StudioError.invalidOption = e else { return XCTFail("expected invalidOption, got \(e)") }
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    func testTooShortCorpusIsACleanError() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus("abcde", in: dir)
        let out = dir.appendingPathComponent("out")
        XCTAssertThrowsError(try TextTrainer(corpus: corpus, config: tinyConfig(), resume: nil, output: out,
                                             arguments: [], progress: SilentProgress())) { e in
            guard case TextError.tooShort = e else { return XCTFail("expected tooShort, got \(e)") }
            XCTAssertTrue("\(e)".contains(corpus.path))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        // Long enough as a whole, but not its training part once half is held out: the message
        // says which part is short and why (the newcomer review read "3687 characters" as the corpus).
        let twelve = try writeCorpus("abcdefghijkl", named: "twelve.txt", in: dir)
        var c = tinyConfig()
        c.validationSplit = 0.5
        XCTAssertThrowsError(try TextTrainer(corpus: twelve, config: c, resume: nil, output: out,
                                             arguments: [], progress: SilentProgress())) { e in
            guard case TextError.trainingPartTooShort(_, let training, let total, let needed) = e else {
                return XCTFail("expected trainingPartTooShort, got \(e)")
            }
            XCTAssertEqual([training, total, needed], [6, 12, c.sequenceLength + 1])
            XCTAssertTrue("\(e)".contains("its training part has 6 characters (the last 6 of its 12 are held out"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    func testOutputThatIsAFileIsACleanError() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 300), in: dir)
        let file = dir.appendingPathComponent("taken")
        try Data("x".utf8).write(to: file)
        XCTAssertThrowsError(try TextTrainer(corpus: corpus, config: tinyConfig(), resume: nil, output: file,
                                             arguments: [], progress: SilentProgress())) { e in
            guard case StudioError.cannotCreateFolder = e else { return XCTFail("expected cannotCreateFolder, got \(e)") }
        }
        XCTAssertEqual(fileBytes(file), Data("x".utf8))
    }
}
