import Foundation
import XCTest
@testable import GenStudio
import GenNN
import GenData
import GenTensor

/// Writes an IDX uint8 images file `[n, s, s]` (and a labels file) of simple bars: image i has a
/// horizontal (even label) or vertical (odd label) bar of 2 pixels at a position given by `i`.
func writeBarsIDX(in dir: URL, count n: Int = 16, size s: Int = 8, gzip: Bool = false) throws -> URL {
    func be(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
    var images: [UInt8] = [0, 0, 8, 3] + be(n) + be(s) + be(s)
    var labels: [UInt8] = [0, 0, 8, 1] + be(n)
    for i in 0..<n {
        let label = i % 4
        let pos = 1 + (i / 4) % (s - 3)
        for y in 0..<s {
            for x in 0..<s {
                let on = label % 2 == 0 ? (y == pos || y == pos + 1) : (x == pos || x == pos + 1)
                images.append(on ? (label < 2 ? 255 : 200) : 0)
            }
        }
        labels.append(UInt8(label))
    }
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try Data(images).write(to: dir.appendingPathComponent("train-images-idx3-ubyte"))
    try Data(labels).write(to: dir.appendingPathComponent("train-labels-idx1-ubyte"))
    return dir
}

/// A tiny VAE configuration on 8×8 images: batch 6, latent 2, Adam 1e-2, small pictures.
func tinyVAEConfig(data: URL, steps: Int?, seed: UInt64 = 1) -> VAETrainingConfig {
    var c = VAETrainingConfig()
    c.data = data.path
    c.imageSize = 8
    c.channels = 1
    c.batchSize = 6
    c.learningRate = 1e-2
    c.steps = steps
    c.seed = seed
    c.manifoldSize = 4
    c.sampleCount = 4
    c.reconstructionCount = 4
    return c
}

/// Every tensor of a checkpoint as raw bits, by name.
func vaeCheckpointBits(_ url: URL) throws -> [String: [UInt32]] {
    let ckpt = try Checkpoint.load(from: url, expectingGenerator: "vae")
    return ckpt.tensors.mapValues { $0.scalars.map(\.bitPattern) }
}

final class VAETrainingTests: XCTestCase {
    func train(_ config: VAETrainingConfig, resume: URL? = nil, output: URL?) throws -> VAETrainingSummary {
        let t = try VAETrainer(config: config, resume: resume, output: output, arguments: [], progress: SilentProgress())
        return try t.run()
    }

    func testLossFalls() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))
        let t = try VAETrainer(config: tinyVAEConfig(data: data, steps: 90), resume: nil, output: dir.appendingPathComponent("run"),
                               arguments: [], progress: SilentProgress())
        XCTAssertTrue(t.data.evaluatesOnTrainingSet)
        let before = t.evaluate(round: 0)
        let s = try t.run()
        let after = try XCTUnwrap(s.evaluation)
        XCTAssertTrue(after.negativeELBO.isFinite)
        XCTAssertLessThan(after.negativeELBO, before.negativeELBO * 0.8, "negative ELBO \(before.negativeELBO) -> \(after.negativeELBO)")
        XCTAssertEqual(after.negativeELBO, after.reconstruction + after.kl, accuracy: 1e-6 * after.negativeELBO)
        // Records and pictures.
        let run = dir.appendingPathComponent("run")
        let metrics = try String(contentsOf: run.appendingPathComponent("metrics.csv"), encoding: .utf8)
        XCTAssertTrue(metrics.hasPrefix("step,epoch,train_loss,test_neg_elbo,test_reconstruction,test_kl"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("run.json").path))
        for name in ["reconstructions", "samples", "manifold", "latent"] {
            let p = run.appendingPathComponent("pictures/epoch-001-\(name).png").path
            XCTAssertTrue(FileManager.default.fileExists(atPath: p), p)
            XCTAssertNoThrow(try Image(contentsOf: p))
        }
        let manifold = try Image(contentsOf: run.appendingPathComponent("pictures/epoch-001-manifold.png").path)
        XCTAssertEqual(manifold.width, 4 * 8)
    }

    func testDeterminism() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))
        let a = try train(tinyVAEConfig(data: data, steps: 5), output: dir.appendingPathComponent("a"))
        let b = try train(tinyVAEConfig(data: data, steps: 5), output: dir.appendingPathComponent("b"))
        XCTAssertEqual(try vaeCheckpointBits(a.checkpoint), try vaeCheckpointBits(b.checkpoint))
        let c = try train(tinyVAEConfig(data: data, steps: 5, seed: 2), output: dir.appendingPathComponent("c"))
        XCTAssertNotEqual(try vaeCheckpointBits(a.checkpoint), try vaeCheckpointBits(c.checkpoint))
    }

    /// N steps in one go equal N/2 steps, then a resume for the other N/2 (mid-epoch, across epochs),
    /// bit for bit: weights, Adam moments, random state and data position.
    func testExactResume() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))   // 16 images, batch 6: 3 steps per epoch
        let full = try train(tinyVAEConfig(data: data, steps: 14), output: dir.appendingPathComponent("full"))
        let half = try train(tinyVAEConfig(data: data, steps: 7), output: dir.appendingPathComponent("half"))
        var cont = tinyVAEConfig(data: data, steps: 14)
        cont.data = nil   // the stored data source is used
        let resumed = try train(cont, resume: half.checkpoint, output: nil)
        XCTAssertEqual(resumed.steps, 14)
        let a = try vaeCheckpointBits(full.checkpoint), b = try vaeCheckpointBits(resumed.checkpoint)
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        XCTAssertTrue(a.keys.contains { $0.hasPrefix("optimizer/") })
        for k in a.keys { XCTAssertEqual(a[k], b[k], "tensor \(k) differs after resume") }
        let ca = try Checkpoint.load(from: full.checkpoint), cb = try Checkpoint.load(from: resumed.checkpoint)
        XCTAssertEqual(try ca.randomGenerator(), try cb.randomGenerator())
        XCTAssertEqual(ca.metadata[Checkpoint.Key.dataPosition], cb.metadata[Checkpoint.Key.dataPosition])
        XCTAssertEqual(full.evaluation, resumed.evaluation)
        // The epoch interrupted at step 7 (steps 7–9) reports the same train loss as without the
        // interruption: the epoch's loss sums travel in the checkpoint.
        func trainLoss(_ folder: URL, step: String) throws -> String? {
            let rows = try String(contentsOf: folder.appendingPathComponent("metrics.csv"), encoding: .utf8)
                .split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            return rows.last { $0.first == step }?[2]
        }
        let epochEnd = try XCTUnwrap(try trainLoss(full.folder, step: "9"))
        XCTAssertEqual(try trainLoss(resumed.folder, step: "9"), epochEnd)
    }

    /// `--data` given as a relative path is stored absolute, so a resume without `--data` works from
    /// another working folder.
    func testRelativeDataPathResumesFromAnotherFolder() throws {
        let dir = try makeStudioTempDir(self)
        _ = try writeBarsIDX(in: dir.appendingPathComponent("data"))
        let fm = FileManager.default
        let previous = fm.currentDirectoryPath
        defer { fm.changeCurrentDirectoryPath(previous) }
        XCTAssertTrue(fm.changeCurrentDirectoryPath(dir.path))
        var relative = tinyVAEConfig(data: dir, steps: 4)
        relative.data = "data"
        let first = try train(relative, output: dir.appendingPathComponent("run"))
        var c = tinyVAEConfig(data: dir, steps: 6)
        c.data = nil
        let elsewhere = dir.appendingPathComponent("elsewhere")
        try fm.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        XCTAssertTrue(fm.changeCurrentDirectoryPath(elsewhere.path))
        let resumed = try train(c, resume: first.checkpoint, output: nil)
        XCTAssertEqual(resumed.steps, 6)
    }

    /// A resumed session that takes no step (its time limit is already up) reports the same
    /// test ELBO as the run that wrote the checkpoint: the evaluation noise depends on the step,
    /// not on which session evaluates. (A resume whose step total is already reached is refused.)
    func testIdleResumeReportsTheRecordedEvaluation() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))
        let first = try train(tinyVAEConfig(data: data, steps: 7), output: dir.appendingPathComponent("run"))
        var again = tinyVAEConfig(data: data, steps: 9)
        again.timeLimitMinutes = 1e-9
        again.data = nil
        let idle = try train(again, resume: first.checkpoint, output: nil)
        XCTAssertEqual(idle.steps, 7)
        XCTAssertNotNil(first.evaluation)
        XCTAssertEqual(idle.evaluation, first.evaluation)
    }

    /// A NaN loss stops at that step: the last good checkpoint stays byte for byte, no picture is written.
    func testNonFiniteLossStopsAndKeepsCheckpoint() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))
        let run = dir.appendingPathComponent("run")
        let good = try train(tinyVAEConfig(data: data, steps: 4), output: run)
        let before = try Data(contentsOf: good.checkpoint)
        let picturesBefore = try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("pictures").path).sorted()
        var next = tinyVAEConfig(data: data, steps: 20)
        next.checkpointEvery = 1
        let t = try VAETrainer(config: next, resume: good.checkpoint, output: nil, arguments: [], progress: SilentProgress())
        t.poisonStep = 6   // step 5 is checkpointed, step 6 fails before its epoch ends (epochs end at 3, 6, 9)
        XCTAssertThrowsError(try t.run()) { e in
            guard case VAEError.nonFiniteLoss(let step, let last) = e else { return XCTFail("expected nonFiniteLoss, got \(e)") }
            XCTAssertEqual(step, 6)
            XCTAssertEqual(last, good.checkpoint.path)
        }
        let ckpt = try Checkpoint.load(from: good.checkpoint, expectingGenerator: "vae")
        XCTAssertEqual(ckpt.metadata[Checkpoint.Key.step], "5")
        XCTAssertNotEqual(try Data(contentsOf: good.checkpoint), before)   // step 5 was checkpointed
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("pictures").path).sorted(),
                       picturesBefore, "pictures were written by the failed run")
        let record = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: run.appendingPathComponent("run.json")))
        XCTAssertTrue(record.outcome?.hasPrefix("failed") == true, "\(record)")
        // The failure record keeps how far the run got, and where to continue from.
        XCTAssertEqual(record.settings["steps_done"], "5")
        XCTAssertEqual(record.settings["last_checkpoint"], "\(good.checkpoint.path) (step 5)")

        // Fails at the first step: the previous checkpoint must stay identical.
        let saved = try Data(contentsOf: good.checkpoint)
        let t2 = try VAETrainer(config: next, resume: good.checkpoint, output: nil, arguments: [], progress: SilentProgress())
        t2.poisonStep = 6
        XCTAssertThrowsError(try t2.run())
        XCTAssertEqual(try Data(contentsOf: good.checkpoint), saved)
    }

    /// An absurd learning rate overflows the weights: a clean nonFiniteLoss, never a NaN checkpoint or picture.
    func testDivergingLearningRate() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))
        var c = tinyVAEConfig(data: data, steps: 30)
        c.learningRate = 1e30
        let run = dir.appendingPathComponent("run")
        XCTAssertThrowsError(try train(c, output: run)) { e in
            guard case VAEError.nonFiniteLoss(_, let last) = e else { return XCTFail("expected nonFiniteLoss, got \(e)") }
            XCTAssertTrue("\(e)".contains("--learning-rate"))
            if let last { XCTAssertTrue(try! vaeCheckpointBits(URL(fileURLWithPath: last)).values.allSatisfy { $0.allSatisfy { Float(bitPattern: $0).isFinite } }) }
        }
    }

    func testLatentDimZeroAndBadSizesAreInvalid() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))
        for mutate in [{ (c: inout VAETrainingConfig) in c.latentDim = 0 }, { $0.imageSize = 10 }, { $0.channels = 2 },
                       { $0.beta = -1 }, { $0.batchSize = 0 }, { $0.learningRate = .nan }] {
            var c = tinyVAEConfig(data: data, steps: 1)
            mutate(&c)
            let out = dir.appendingPathComponent("never")
            XCTAssertThrowsError(try VAETrainer(config: c, resume: nil, output: out, arguments: [], progress: SilentProgress())) { e in
                guard case StudioError.invalidOption = e else { return XCTFail("expected invalidOption, got \(e)") }
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        }
    }

    func testCase17MixedFolderTrainsAStep() throws {
        let folder = try studioCasePath("case17_mixed_dataset")
        let dir = try makeStudioTempDir(self)
        for channels in [3, 1] {
            var c = VAETrainingConfig()
            c.data = folder.path
            c.imageSize = 16
            c.channels = channels
            c.batchSize = 6
            c.steps = 1
            c.manifoldSize = 3
            c.sampleCount = 4
            let t = try VAETrainer(config: c, resume: nil, output: dir.appendingPathComponent("c\(channels)"), arguments: [], progress: SilentProgress())
            XCTAssertEqual(t.data.trainCount, 6)
            XCTAssertEqual(t.data.train.count, 6 * 16 * 16 * channels)
            XCTAssertTrue(t.data.train.allSatisfy { $0 >= 0 && $0 <= 1 })
            let s = try t.run()
            XCTAssertEqual(s.steps, 1)
            XCTAssertTrue(s.evaluation?.negativeELBO.isFinite ?? false)
        }
    }

    func testCase19GzippedIDXLoadsLikePlain() throws {
        let gz = try studioCasePath("case19_mnist_gzipped")
        let plain = try studioCasePath("case19_mnist_reference")
        let a = try VAEData.load(data: gz.path, size: 28, channels: 1)
        let b = try VAEData.load(data: plain.path, size: 28, channels: 1)
        XCTAssertEqual(a.trainCount, 10)
        XCTAssertEqual(a.train, b.train)
        XCTAssertEqual(a.testLabels, b.testLabels)
        // A single gzipped IDX file also loads (no .gz name).
        let single = try VAEData.load(data: gz.appendingPathComponent("train-images-idx3-ubyte").path, size: 16, channels: 3)
        XCTAssertEqual(single.trainCount, 10)
        XCTAssertEqual(single.sampleSize, 16 * 16 * 3)
    }

    /// A folder of images of mixed modes and sizes plus junk: non-image files are ignored, a bad
    /// "image" is reported with its name (or skipped on request).
    func testFolderWithJunkFiles() throws {
        let dir = try makeStudioTempDir(self)
        let folder = dir.appendingPathComponent("imgs")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try Image(width: 20, height: 12, channels: 3, pixels: (0..<720).map { Float($0 % 7) / 7 }).write(to: folder.appendingPathComponent("a.png").path)
        try Image(width: 9, height: 9, channels: 4, pixels: (0..<324).map { Float($0 % 5) / 5 }).write(to: folder.appendingPathComponent("sub/b.png").path)
        try Image(width: 30, height: 30, channels: 1, pixels: (0..<900).map { Float($0 % 3) / 3 }).write(to: folder.appendingPathComponent("c.jpg").path)
        try Data("notes".utf8).write(to: folder.appendingPathComponent("readme.txt"))
        try Data("hidden".utf8).write(to: folder.appendingPathComponent(".DS_Store"))
        try Data("<html>not a png</html>".utf8).write(to: folder.appendingPathComponent("fake.png"))
        XCTAssertThrowsError(try VAEData.load(data: folder.path, size: 8, channels: 3)) { e in
            XCTAssertTrue("\(e)".contains("fake.png"), "\(e)")
        }
        let d = try VAEData.load(data: folder.path, size: 8, channels: 3, skipInvalid: true)
        XCTAssertEqual(d.trainCount, 3)
        XCTAssertEqual(d.testLabels?.count, 3)   // top level vs "sub"
        var c = VAETrainingConfig()
        c.data = folder.path
        c.skipInvalid = true
        c.imageSize = 8
        c.channels = 3
        c.steps = 2
        c.manifoldSize = 2
        c.sampleCount = 1
        let s = try train(c, output: dir.appendingPathComponent("run"))
        XCTAssertEqual(s.steps, 2)
        // An empty folder and a missing path are clean errors.
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try VAEData.load(data: empty.path, size: 8, channels: 1)) { XCTAssertTrue($0 is DatasetError) }
        XCTAssertThrowsError(try VAEData.load(data: dir.appendingPathComponent("nope").path, size: 8, channels: 1)) { XCTAssertTrue($0 is DatasetError) }
    }

    func testResumeRejectsBadCheckpoints() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))
        let junk = dir.appendingPathComponent("junk.safetensors")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: junk)
        let hash = try Data(contentsOf: junk)
        XCTAssertThrowsError(try VAETrainer(config: tinyVAEConfig(data: data, steps: 2), resume: junk, output: nil, arguments: [], progress: SilentProgress()))
        XCTAssertEqual(try Data(contentsOf: junk), hash)
        XCTAssertThrowsError(try VAEModel.load(from: junk))

        // Finite weights but a NaN Adam moment: refused on resume, naming the file and the tensor
        // (not accepted and then blamed on the learning rate at the first step).
        let good = try train(tinyVAEConfig(data: data, steps: 2), output: dir.appendingPathComponent("good"))
        var ckpt = try Checkpoint.load(from: good.checkpoint)
        let key = try XCTUnwrap(ckpt.tensors.keys.sorted().first { $0.hasPrefix("optimizer/") && $0.contains("/v/") })
        let moment = try XCTUnwrap(ckpt.tensors[key])
        var values = moment.scalars
        values[0] = .nan
        ckpt.tensors[key] = Tensor(shape: moment.shape, scalars: values)
        let poisoned = dir.appendingPathComponent("poisoned.safetensors")
        try ckpt.save(to: poisoned)
        XCTAssertThrowsError(try VAETrainer(config: tinyVAEConfig(data: data, steps: 4), resume: poisoned, output: nil,
                                            arguments: [], progress: SilentProgress())) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("poisoned.safetensors") && text.contains("optimizer state \(key)") && text.contains("non-finite"), text)
        }
    }

    /// The data-parallel step (2 partitions) gives the gradients of the whole batch (summation order aside).
    func testPartitionedGradientsMatchWholeBatch() {
        var rng = RandomGenerator(seed: 3)
        let model = VAEModel(config: VAEModelConfig(imageSize: 8, channels: 1, latentDim: 3), using: &rng)
        let x = Tensor.uniform([20, 8, 8, 1], using: &rng)
        let noise = Tensor.normal([20, 3], using: &rng)
        let one = model.trainingGradients(x, noise: noise, beta: 0.5, scale: 1 / 20, parts: 1)
        let g1 = model.parameters.map { $0.grad?.scalars ?? [] }
        for p in model.parameters { p.zeroGrad() }
        let two = model.trainingGradients(x, noise: noise, beta: 0.5, scale: 1 / 20, parts: 2)
        let g2 = model.parameters.map { $0.grad?.scalars ?? [] }
        XCTAssertEqual(one.reconstruction, two.reconstruction, accuracy: 1e-3)
        XCTAssertEqual(one.kl, two.kl, accuracy: 1e-4)
        for (a, b) in zip(g1, g2) {
            XCTAssertEqual(a.count, b.count)
            XCTAssertFalse(a.isEmpty)
            for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-4 + 1e-3 * Swift.abs(u)) }
        }
        // Evaluation terms equal the training terms for the same noise.
        let ev = model.evaluationTerms(x, noise: noise, parts: 2)
        XCTAssertEqual(ev.reconstruction, one.reconstruction, accuracy: 1e-3)
        XCTAssertEqual(ev.kl, one.kl, accuracy: 1e-4)
    }

    func testNormalQuantileAndSlerp() {
        XCTAssertEqual(VAEPictures.normalQuantile(0.975), 1.959963984540054, accuracy: 1e-9)
        XCTAssertEqual(VAEPictures.normalQuantile(0.05), -1.6448536269514729, accuracy: 1e-9)
        XCTAssertEqual(VAEPictures.normalQuantile(0.5), 0, accuracy: 1e-12)
        XCTAssertEqual(VAEPictures.normalQuantile(1e-10), -6.361340902404056, accuracy: 1e-7)
        let q = VAEPictures.manifoldCoordinates(15)
        XCTAssertEqual(q.count, 15)
        XCTAssertEqual(q[7], 0, accuracy: 1e-6)
        XCTAssertEqual(q[0], -q[14], accuracy: 1e-6)
        let a: [Float] = [1, 0], b: [Float] = [0, 2]
        XCTAssertEqual(VAEPictures.slerp(a, b, 0), a)
        let end = VAEPictures.slerp(a, b, 1)
        XCTAssertEqual(end[0], 0, accuracy: 1e-6); XCTAssertEqual(end[1], 2, accuracy: 1e-6)
        let mid = VAEPictures.slerp([1, 0], [0, 1], 0.5)
        XCTAssertEqual(mid[0], Float(0.5).squareRoot(), accuracy: 1e-6)   // on the unit circle, not the chord
        XCTAssertEqual(VAEPictures.slerp([0, 0], [2, 2], 0.5), [1, 1])
        let (codes, rows) = VAEPictures.manifoldCodes(n: 3, latentDim: 2)
        XCTAssertEqual(rows, 3)
        XCTAssertEqual(codes.shape, [9, 2])
    }
}
