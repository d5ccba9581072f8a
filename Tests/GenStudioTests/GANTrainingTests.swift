import Foundation
import XCTest
@testable import GenStudio
import GenNN
import GenData
import GenTensor

/// A tiny GAN configuration: 8x8 images, latent 4, 8 generator and 4 discriminator filters, batch 4.
func tinyGANConfig(steps: Int? = 4, seed: UInt64 = 1, size: Int = 8, channels: Int = 3) -> GANTrainingConfig {
    var c = GANTrainingConfig()
    c.model.imageSize = size
    c.model.channels = channels
    c.model.latentDim = 4
    c.model.generatorFilters = 8
    c.model.discriminatorFilters = 4
    c.batchSize = 4
    c.steps = steps
    c.seed = seed
    c.sampleEvery = 2
    c.sampleCount = 9
    c.logEvery = 1
    c.collapseWarmupSteps = 0
    return c
}

/// Writes `count` small PNGs of varied colour and size into a new folder `name` under `dir`.
@discardableResult
func writeImageFolder(_ count: Int, in dir: URL, name: String = "images", seed: UInt64 = 3) throws -> URL {
    let folder = dir.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    var rng = RandomGenerator(seed: seed)
    for i in 0..<count {
        let w = 8 + rng.nextInt(below: 8), h = 8 + rng.nextInt(below: 8)
        var im = Image(width: w, height: h, channels: 3, repeating: 0)
        let base = (rng.nextUniform(), rng.nextUniform(), rng.nextUniform())
        for y in 0..<h { for x in 0..<w {
            im[x, y, 0] = base.0 * Float(x) / Float(w); im[x, y, 1] = base.1; im[x, y, 2] = base.2 * Float(y) / Float(h)
        } }
        try im.write(to: folder.appendingPathComponent(String(format: "img%03d.png", i)).path)
    }
    return folder
}

/// Tensors of a gan checkpoint as bit patterns, by name.
func ganCheckpointBits(_ url: URL) throws -> [String: [UInt32]] {
    let ckpt = try Checkpoint.load(from: url, expectingGenerator: "gan")
    return ckpt.tensors.mapValues { $0.scalars.map(\.bitPattern) }
}

@discardableResult
func ganRun(data: String, config: GANTrainingConfig, resume: URL? = nil, output: URL?,
            progress: ProgressReporter = SilentProgress()) throws -> GANTrainingSummary {
    let t = try GANTrainer(data: data, config: config, resume: resume, output: output, arguments: ["gen", "gan", "train"],
                           progress: progress)
    return try t.run()
}

final class GANTrainingTests: XCTestCase {
    func testArchitectureAdaptsToImageSize() throws {
        for (size, stages, start, dSizes) in [(32, 1, 16, [30, 14, 6, 2]), (28, 1, 14, [26, 12, 5, 1]),
                                              (64, 2, 16, [62, 30, 14, 6]), (16, 1, 8, [14, 6, 2]), (8, 1, 4, [6, 2])] {
            var c = GANModelConfig()
            c.imageSize = size
            c.generatorFilters = 8
            c.discriminatorFilters = 4
            XCTAssertEqual(c.upsamplingStages, stages, "size \(size)")
            XCTAssertEqual(c.startSize, start, "size \(size)")
            XCTAssertEqual(c.discriminatorSizes, dSizes, "size \(size)")
            var rng = RandomGenerator(seed: 1)
            let g = GANGenerator(config: c, using: &rng), d = GANDiscriminator(config: c, using: &rng)
            let x = withNoGrad { g(Tensor.normal([2, c.latentDim], using: &rng)) }
            XCTAssertEqual(x.shape, [2, size, size, 3])
            XCTAssertTrue(x.scalars.allSatisfy { $0 >= -1 && $0 <= 1 })
            XCTAssertEqual(withNoGrad { d(x, training: false, rng: &rng) }.shape, [2, 1])
        }
        // The book's model: parameter counts of the Keras summary (generator 6,264,579; discriminator 790,913).
        var rng = RandomGenerator(seed: 1)
        XCTAssertEqual(GANGenerator(config: GANModelConfig(), using: &rng).parameterCount, 6_264_579)
        XCTAssertEqual(GANDiscriminator(config: GANModelConfig(), using: &rng).parameterCount, 790_913)
        XCTAssertEqual(GANBenchmark.flopsPerStep() / 1e9, 635, accuracy: 10)
    }

    func testTrainingWritesOutputsAndLossesMove() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(12, in: dir)
        let out = dir.appendingPathComponent("run")
        let s = try ganRun(data: data.path, config: tinyGANConfig(steps: 6), output: out)
        XCTAssertEqual(s.steps, 6)
        let files = listing(out)
        for f in ["checkpoint.safetensors", "metrics.csv", "run.json", "loss.png", "samples/real.png",
                  "samples/step-000002.png", "samples/step-000004.png", "samples/step-000006.png"] {
            XCTAssertTrue(files.contains(f), "\(f) missing from \(files)")
        }
        let csv = try String(contentsOf: out.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.first, "step,epoch,d_loss_real,d_loss_fake,d_loss,g_loss,d_excess,sample_diversity,elapsed_s,steps_per_s")
        XCTAssertEqual(csv.count, 7)
        let grid = try Image(contentsOf: out.appendingPathComponent("samples/step-000006.png").path)
        XCTAssertEqual(grid.width, 3 * 8 + 4 * 2)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("run.json"))) as? [String: Any]
        XCTAssertEqual(json?["outcome"] as? String, "reached 6 steps")
    }

    func testSameSeedSameResultDifferentSeedDiffers() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(10, in: dir).path
        let a = try ganRun(data: data, config: tinyGANConfig(steps: 3), output: dir.appendingPathComponent("a"))
        let b = try ganRun(data: data, config: tinyGANConfig(steps: 3), output: dir.appendingPathComponent("b"))
        let c = try ganRun(data: data, config: tinyGANConfig(steps: 3, seed: 2), output: dir.appendingPathComponent("c"))
        XCTAssertEqual(try ganCheckpointBits(a.checkpoint), try ganCheckpointBits(b.checkpoint))
        XCTAssertNotEqual(try ganCheckpointBits(a.checkpoint), try ganCheckpointBits(c.checkpoint))
        XCTAssertEqual(fileBytes(a.folder.appendingPathComponent("samples/step-000002.png")),
                       fileBytes(b.folder.appendingPathComponent("samples/step-000002.png")))
    }

    func checkExactResume(optimizer: String, smoothing: Float) throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(10, in: dir).path   // batch 4, drop-last: 2 steps per epoch
        var config = tinyGANConfig(steps: 7)
        config.optimizer = optimizer
        config.labelSmoothing = smoothing
        config.logEvery = 5
        let straight = try ganRun(data: data, config: config, output: dir.appendingPathComponent("straight"))

        var first = config
        first.steps = 3
        let part = try ganRun(data: data, config: first, output: dir.appendingPathComponent("resumed"))
        let resumed = try ganRun(data: data, config: config, resume: part.checkpoint, output: nil)
        XCTAssertEqual(resumed.folder.standardizedFileURL.path, part.folder.standardizedFileURL.path)
        XCTAssertEqual(resumed.steps, 7)
        let x = try ganCheckpointBits(straight.checkpoint), y = try ganCheckpointBits(resumed.checkpoint)
        XCTAssertEqual(Set(x.keys), Set(y.keys))
        XCTAssertTrue(x.keys.contains { $0.hasPrefix("optimizer_d/") } && x.keys.contains { $0.hasPrefix("optimizer_g/") })
        for k in x.keys { XCTAssertEqual(x[k], y[k], "\(optimizer): tensor \(k) differs after resume") }
        let s1 = try Checkpoint.load(from: straight.checkpoint).metadata(GANTrainingState.self, forKey: "state")
        let s2 = try Checkpoint.load(from: resumed.checkpoint).metadata(GANTrainingState.self, forKey: "state")
        XCTAssertEqual(s1.rng, s2.rng)
        XCTAssertEqual(s1.data, s2.data)
        XCTAssertEqual(s1.step, 7)
        // The same fixed-noise grid at the end.
        XCTAssertEqual(fileBytes(straight.folder.appendingPathComponent("samples/step-000007.png")),
                       fileBytes(resumed.folder.appendingPathComponent("samples/step-000007.png")))
        // The metrics row of step 5 averages steps 1–5 in both runs (the window travels in the checkpoint).
        func lossesAt(_ folder: URL, step: String) throws -> [String]? {
            let rows = try String(contentsOf: folder.appendingPathComponent("metrics.csv"), encoding: .utf8)
                .split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            return rows.last { $0.first == step }.map { Array($0[2...6]) }
        }
        let expected = try XCTUnwrap(try lossesAt(straight.folder, step: "5"))
        XCTAssertEqual(try lossesAt(resumed.folder, step: "5"), expected, "\(optimizer): the step-5 row differs after resume")
    }

    /// A resume with another --log-every keeps only the steps since the last multiple of the new value.
    func testResumeWithAnotherLogEvery() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(10, in: dir).path
        func rows(_ folder: URL) throws -> [String: [Double]] {
            let lines = try String(contentsOf: folder.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
            var out: [String: [Double]] = [:]
            for l in lines { let f = l.split(separator: ",", omittingEmptySubsequences: false).map(String.init); out[f[0]] = f[2...5].compactMap(Double.init) }
            return out
        }
        var every = tinyGANConfig(steps: 4)
        every.logEvery = 1                                   // one row per step: each step's own losses
        let perStep = try rows(try ganRun(data: data, config: every, output: dir.appendingPathComponent("each")).folder)
        var first = tinyGANConfig(steps: 3)
        first.logEvery = 5
        let part = try ganRun(data: data, config: first, output: dir.appendingPathComponent("part"))
        var second = tinyGANConfig(steps: 4)
        second.logEvery = 2
        let resumed = try rows(try ganRun(data: data, config: second, resume: part.checkpoint, output: nil).folder)
        // The step-4 row averages steps 3 and 4 (not 1–4).
        let three = try XCTUnwrap(perStep["3"]), four = try XCTUnwrap(perStep["4"]), got = try XCTUnwrap(resumed["4"])
        for i in 0..<4 { XCTAssertEqual(got[i], (three[i] + four[i]) / 2, accuracy: 2e-5, "column \(i)") }
    }

    func testExactResumeRMSprop() throws { try checkExactResume(optimizer: "rmsprop", smoothing: 0) }
    func testExactResumeAdamWithSmoothing() throws { try checkExactResume(optimizer: "adam", smoothing: 0.1) }

    func testNonFiniteStopsKeepsLastCheckpointAndWritesNoGrid() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(10, in: dir).path
        let out = dir.appendingPathComponent("run")
        var config = tinyGANConfig(steps: 10)
        config.checkpointEvery = 1
        config.sampleEvery = 1
        let trainer = try GANTrainer(data: data, config: config, resume: nil, output: out, arguments: [], progress: SilentProgress())
        var good: Data?
        trainer.beforeStepHook = { step in
            if step == 4 {
                good = fileBytes(out.appendingPathComponent("checkpoint.safetensors"))
                // Poison one generator weight: the losses become NaN.
                trainer.currentGenerator.parameters[0].storage.base[0] = .nan
            }
        }
        XCTAssertThrowsError(try trainer.run()) { e in
            guard case GANError.nonFinite(let step, _, let last) = e else { return XCTFail("expected GANError.nonFinite, got \(e)") }
            XCTAssertEqual(step, 4)
            XCTAssertEqual(last, out.appendingPathComponent("checkpoint.safetensors").path)
            XCTAssertTrue("\(e)".contains("last good checkpoint"), "\(e)")
        }
        XCTAssertNotNil(good)
        XCTAssertEqual(fileBytes(out.appendingPathComponent("checkpoint.safetensors")), good, "the last good checkpoint changed")
        let files = listing(out)
        XCTAssertFalse(files.contains("samples/step-000004.png"), "a grid was written for the failed step")
        XCTAssertTrue(files.contains("samples/step-000003.png"))
        for (name, bits) in try ganCheckpointBits(out.appendingPathComponent("checkpoint.safetensors")) {
            XCTAssertTrue(bits.allSatisfy { Float(bitPattern: $0).isFinite }, "\(name) holds non-finite values")
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("run.json"))) as? [String: Any]
        XCTAssertTrue((json?["outcome"] as? String ?? "").hasPrefix("failed"), "\(String(describing: json))")
    }

    func testAbsurdLearningRateIsACleanFailure() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(10, in: dir).path
        let out = dir.appendingPathComponent("run")
        var config = tinyGANConfig(steps: 20)
        config.dLearningRate = 3e38
        config.gLearningRate = 3e38
        config.clipValue = nil
        config.checkpointEvery = 1
        XCTAssertThrowsError(try ganRun(data: data, config: config, output: out)) { e in
            guard case GANError.nonFinite = e else { return XCTFail("expected GANError.nonFinite, got \(e)") }
        }
        if FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint.safetensors").path) {
            for (name, bits) in try ganCheckpointBits(out.appendingPathComponent("checkpoint.safetensors")) {
                XCTAssertTrue(bits.allSatisfy { Float(bitPattern: $0).isFinite }, "\(name) holds non-finite values")
            }
        }
        for f in listing(out) where f.hasPrefix("samples/step-") {
            let im = try Image(contentsOf: out.appendingPathComponent(f).path)
            XCTAssertTrue(im.pixels.allSatisfy { $0.isFinite })
        }
    }

    func testCase17MixedFolderTrains() throws {
        let folder = try studioCasePath("case17_mixed_dataset")
        let dir = try makeStudioTempDir(self)
        for channels in [3, 1] {
            var config = tinyGANConfig(steps: 2, size: 16, channels: channels)
            config.batchSize = 4
            let s = try ganRun(data: folder.path, config: config, output: dir.appendingPathComponent("c\(channels)"))
            XCTAssertEqual(s.steps, 2)
            let real = try Image(contentsOf: s.folder.appendingPathComponent("samples/real.png").path)
            XCTAssertEqual(real.width, 3 * 16 + 4 * 2)   // 6 images: a 3x2 grid
            XCTAssertEqual(real.channels, channels)
        }
        let data = try GANImageData.load(folder.path, size: 32, channels: 3, warn: { _ in })
        XCTAssertEqual(data.count, 6)
        XCTAssertEqual(try data.batch(Array(0..<6)).shape, [6, 32, 32, 3])
    }

    func testBadInputsAreCleanErrorsWithNothingWritten() throws {
        let dir = try makeStudioTempDir(self)
        let out = dir.appendingPathComponent("out")
        func expectNothing(_ data: String, _ config: GANTrainingConfig = tinyGANConfig(), output: URL? = nil,
                           check: (Error) -> Void, line: UInt = #line) {
            XCTAssertThrowsError(try ganRun(data: data, config: config, output: output ?? out), line: line) { check($0) }
            XCTAssertFalse(FileManager.default.fileExists(atPath: (output ?? out).path), "output created", line: line)
        }
        // Empty folder (hidden files and non-image files only).
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: empty.appendingPathComponent(".hidden.png"))
        try Data("notes".utf8).write(to: empty.appendingPathComponent("readme.txt"))
        expectNothing(empty.path) { e in
            guard case DatasetError.noImages = e else { return XCTFail("\(e)") }
        }
        // Missing path.
        expectNothing(dir.appendingPathComponent("nope").path) { e in
            guard case DatasetError.datasetNotFound = e else { return XCTFail("\(e)") }
        }
        // Junk files listed together; with skipInvalid they are skipped.
        let junk = try writeImageFolder(6, in: dir, name: "junk")
        try Data("<!DOCTYPE html>".utf8).write(to: junk.appendingPathComponent("page.jpg"))
        try Data().write(to: junk.appendingPathComponent("empty.png"))
        expectNothing(junk.path) { e in
            guard case DatasetError.invalidFiles(let problems) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(problems.count, 2)
        }
        var skip = tinyGANConfig(steps: 1)
        skip.skipInvalid = true
        let progress = RecordingProgress()
        XCTAssertNoThrow(try ganRun(data: junk.path, config: skip, output: dir.appendingPathComponent("skip"), progress: progress))
        XCTAssertEqual(progress.events.filter { if case .warning(let m) = $0 { return m.contains("skipping") }; return false }.count, 2)
        // IDX with a wrong magic number.
        let idx = dir.appendingPathComponent("bad-idx3-ubyte")
        try Data([0x00, 0x00, 0x07, 0x03, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4]).write(to: idx)
        expectNothing(idx.path) { e in
            guard case DatasetError.invalidIDX(_, let reason) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(reason.contains("magic"), reason)
        }
        // Labels IDX (1-D) instead of images.
        let labels = dir.appendingPathComponent("labels-idx1-ubyte")
        try Data([0x00, 0x00, 0x08, 0x01, 0, 0, 0, 3, 1, 2, 3]).write(to: labels)
        expectNothing(labels.path) { e in
            guard case DatasetError.inconsistent = e else { return XCTFail("\(e)") }
        }
        // An output folder that cannot be created (its parent is a file).
        let good = try writeImageFolder(6, in: dir, name: "good")
        let file = dir.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        expectNothing(good.path, output: file.appendingPathComponent("run")) { e in
            guard case StudioError.cannotCreateFolder = e else { return XCTFail("\(e)") }
        }
        // Bad options.
        var bad = tinyGANConfig()
        bad.model.imageSize = 7
        expectNothing(good.path, bad) { e in
            guard case StudioError.invalidOption(let m) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("--image-size"), m)
        }
        // A checkpoint of the wrong kind (case28) as --resume: clean error, file unchanged.
        if let cases = studioCasesDirectory() {
            let ck = URL(fileURLWithPath: cases + "/inputs/case28_bad_checkpoints/ckpt_random.bin")
            let before = fileBytes(ck)
            XCTAssertThrowsError(try ganRun(data: good.path, config: tinyGANConfig(), resume: ck, output: out)) { e in
                XCTAssertTrue(e is CheckpointError, "\(e)")
            }
            XCTAssertEqual(fileBytes(ck), before)
        }
    }

    func testFewerImagesThanABatchTrainsWithSmallerBatch() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(3, in: dir)
        let progress = RecordingProgress()
        var config = tinyGANConfig(steps: 2)
        config.batchSize = 20
        let s = try ganRun(data: data.path, config: config, output: dir.appendingPathComponent("run"), progress: progress)
        XCTAssertEqual(s.steps, 2)
        XCTAssertTrue(progress.events.contains { if case .warning(let m) = $0 { return m.contains("batch size 3") }; return false })
    }

    func testIDXFileTrainsGray() throws {
        let dir = try makeStudioTempDir(self)
        var bytes: [UInt8] = [0, 0, 0x08, 0x03, 0, 0, 0, 10, 0, 0, 0, 12, 0, 0, 0, 12]
        for i in 0..<(10 * 144) { bytes.append(UInt8((i * 37) % 256)) }
        let url = dir.appendingPathComponent("train-images-idx3-ubyte")
        try Data(bytes).write(to: url)
        let s = try ganRun(data: url.path, config: tinyGANConfig(steps: 2, channels: 1), output: dir.appendingPathComponent("run"))
        XCTAssertEqual(s.steps, 2)
        let d = try GANImageData.load(url.path, size: 8, channels: 3, warn: { _ in })
        let b = try d.batch([0, 9])
        XCTAssertEqual(b.shape, [2, 8, 8, 3])
        XCTAssertTrue(b.scalars.allSatisfy { $0 >= -1 && $0 <= 1 })
    }

    /// A folder of MNIST-layout IDX files (case 19: gzip-compressed without a .gz name) trains on
    /// its training split, as `gen vae train` accepts it, with the same pixels as the plain copy.
    func testCase19IDXFolderLoadsItsTrainingSplit() throws {
        let gz = try GANImageData.load(try studioCasePath("case19_mnist_gzipped").path, size: 28, channels: 1, warn: { _ in })
        let plain = try GANImageData.load(try studioCasePath("case19_mnist_reference").path, size: 28, channels: 1, warn: { _ in })
        XCTAssertEqual(gz.count, plain.count)
        XCTAssertGreaterThan(gz.count, 0)
        XCTAssertTrue(gz.summary.contains("IDX files in"), gz.summary)
        XCTAssertEqual(try gz.batch(Array(0..<gz.count)).scalars, try plain.batch(Array(0..<plain.count)).scalars)
    }

    /// A GAN needs no labels: a folder holding only the training images IDX file loads; a folder
    /// holding both IDX files and images is refused, for GAN and VAE alike, instead of silently
    /// training on one of them.
    func testIDXFolderWithoutLabelsAndAmbiguousFolders() throws {
        let dir = try makeStudioTempDir(self)
        let only = dir.appendingPathComponent("only")
        try FileManager.default.createDirectory(at: only, withIntermediateDirectories: true)
        var bytes: [UInt8] = [0, 0, 0x08, 0x03, 0, 0, 0, 4, 0, 0, 0, 6, 0, 0, 0, 6]
        for i in 0..<(4 * 36) { bytes.append(UInt8((i * 53) % 256)) }
        try Data(bytes).write(to: only.appendingPathComponent("train-images-idx3-ubyte"))
        // Hidden files (macOS's ._junk.png) are not images to the image loader either.
        try Data().write(to: only.appendingPathComponent("._junk.png"))
        let d = try GANImageData.load(only.path, size: 6, channels: 1, warn: { _ in })
        XCTAssertEqual(d.count, 4)
        // A picture in a subfolder would be trained on as an image folder: ambiguous.
        let sub = only.appendingPathComponent("sub")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        try Image(width: 6, height: 6, channels: 3, repeating: 0.5).write(to: sub.appendingPathComponent("a.png").path)
        XCTAssertThrowsError(try GANImageData.load(only.path, size: 6, channels: 1, warn: { _ in })) { e in
            XCTAssertTrue("\(e)".contains("and images (sub/a.png)"), "\(e)")
        }
        try FileManager.default.removeItem(at: sub)
        // Add a picture: now the folder is ambiguous.
        try Image(width: 6, height: 6, channels: 3, repeating: 0.5).write(to: only.appendingPathComponent("frog.png").path)
        for load in [{ _ = try GANImageData.load(only.path, size: 6, channels: 1, warn: { _ in }) },
                     { _ = try VAEData.load(data: only.path, size: 6, channels: 1, skipInvalid: false,
                                            maxPixels: ImageDecodeOptions.defaultMaxPixels, warn: { _ in }) }] {
            XCTAssertThrowsError(try load()) { e in
                XCTAssertTrue("\(e)".contains("holds both IDX files (train-images-idx3-ubyte) and images (frog.png)"), "\(e)")
            }
        }
    }

    func testCollapseWarnings() throws {
        // Mode collapse: an untrained generator's samples barely vary compared with real images.
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(10, in: dir).path
        let progress = RecordingProgress()
        var config = tinyGANConfig(steps: 10)
        config.sampleEvery = 10
        config.gLearningRate = 1e-7
        _ = try ganRun(data: data, config: config, output: dir.appendingPathComponent("run"), progress: progress)
        let warnings = progress.events.compactMap { e -> String? in if case .warning(let m) = e { return m }; return nil }
        XCTAssertTrue(warnings.contains { $0.contains("mode collapse") }, "\(warnings)")
        // Discriminator collapse: warned once when the excess loss stays near 0, again only after recovering.
        var m = DiscriminatorCollapseMonitor()
        func losses(_ excess: Double) -> GANStepLosses {
            GANStepLosses(discriminatorReal: 0.1, discriminatorFake: 0.1, generator: 5, discriminatorExcess: excess)
        }
        var messages: [String] = []
        for _ in 0..<100 { if let w = m.observe(losses(0.5)) { messages.append(w) } }
        XCTAssertTrue(messages.isEmpty)
        for _ in 0..<300 { if let w = m.observe(losses(0.001)) { messages.append(w) } }
        XCTAssertEqual(messages.count, 1)
        XCTAssertTrue(messages[0].contains("discriminator's loss has collapsed"), messages[0])
        for _ in 0..<100 { if let w = m.observe(losses(0.5)) { messages.append(w) } }
        for _ in 0..<100 { if let w = m.observe(losses(0.0)) { messages.append(w) } }
        XCTAssertEqual(messages.count, 2)
    }

    func testSamplerLoadsSlerpsAndRejectsBadCheckpoints() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(8, in: dir).path
        let s = try ganRun(data: data, config: tinyGANConfig(steps: 2), output: dir.appendingPathComponent("run"))
        let sampler = try GANSampler.load(checkpoint: s.checkpoint)
        var rng = RandomGenerator(seed: 5)
        let z = sampler.latents(count: 3, truncation: 0.5, using: &rng)
        XCTAssertTrue(z.scalars.allSatisfy { abs($0) <= 0.5 })
        let path = GANSampler.slerp(z, steps: 5)
        XCTAssertEqual(path.shape, [9, 4])
        for (row, point) in [(0, 0), (4, 1), (8, 2)] {
            for j in 0..<4 { XCTAssertEqual(path.scalars[row * 4 + j], z.scalars[point * 4 + j], accuracy: 1e-5) }
        }
        XCTAssertEqual(sampler.generate(path).shape, [9, 8, 8, 3])
        // The text generator's checkpoint, a truncated file, a missing tensor.
        let bytes = try XCTUnwrap(fileBytes(s.checkpoint))
        let cut = dir.appendingPathComponent("cut.safetensors")
        try bytes.prefix(bytes.count / 2).write(to: cut)
        XCTAssertThrowsError(try GANSampler.load(checkpoint: cut)) { XCTAssertTrue($0 is CheckpointError, "\($0)") }
        var ck = try Checkpoint.load(from: s.checkpoint)
        ck.tensors["generator/dense/kernel"] = nil
        let missing = dir.appendingPathComponent("missing.safetensors")
        try ck.save(to: missing)
        XCTAssertThrowsError(try GANSampler.load(checkpoint: missing)) { e in
            guard case StudioError.incompatibleCheckpoint = e else { return XCTFail("\(e)") }
        }
        ck = try Checkpoint.load(from: s.checkpoint)
        ck.metadata[Checkpoint.Key.generator] = "text"
        let wrong = dir.appendingPathComponent("wrong.safetensors")
        try ck.save(to: wrong)
        XCTAssertThrowsError(try GANSampler.load(checkpoint: wrong)) { XCTAssertTrue($0 is CheckpointError, "\($0)") }
    }

    /// The loss chart has its axes labelled and a legend: the glyphs are the font's, the y labels
    /// sit left of the frame at their grid lines, the step labels under it, and every named series
    /// has a line of its colour in the legend box at the top right.
    func testLossCurveHasLabelsAndLegend() throws {
        // One glyph at scale 1 is exactly its bitmap.
        var canvas = [[Bool]](repeating: [Bool](repeating: false, count: 6), count: 7)
        ChartFont.draw("1", left: 0, top: 0, scale: 1, color: (0, 0, 0)) { x, y, _ in canvas[y][x] = true }
        let rows = canvas.map { $0.prefix(5).reduce(0) { $0 << 1 | ($1 ? 1 : 0) } }
        XCTAssertEqual(rows, ChartFont.glyphs["1"]!.map(Int.init))
        XCTAssertEqual(ChartFont.width(of: "10", scale: 2), 22)
        XCTAssertEqual(ChartFont.format(2), "2"); XCTAssertEqual(ChartFont.format(1.5), "1.5")
        XCTAssertEqual(ChartFont.format(120_000), "1.2E5"); XCTAssertEqual(ChartFont.format(4e6), "4E6")
        XCTAssertEqual(ChartFont.format(9999), "9999"); XCTAssertEqual(ChartFont.format(2e12), "2E12")
        for v in [0.5, 7.5, 9999, 12_345, 99_999, 4e6, 1.5e12, 1e300] {
            XCTAssertLessThanOrEqual(ChartFont.format(v).count, 5, "\(v) → \(ChartFont.format(v))")
        }

        let steps = (0...100).map(Double.init)
        let blue: (Float, Float, Float) = (0.1, 0.3, 0.9), green: (Float, Float, Float) = (0.1, 0.65, 0.2)
        let im = GANPictures.lossCurve([
            .init(steps: steps, values: steps.map { 0.7 + 0.1 * sin($0 / 9) }, color: blue, name: "D real"),
            .init(steps: steps, values: steps.map { 3 * exp(-$0 / 30) + 0.7 }, color: green, name: "G"),
        ])
        func pixel(_ x: Int, _ y: Int) -> (Float, Float, Float) {
            let o = (y * im.width + x) * 3
            return (im.pixels[o], im.pixels[o + 1], im.pixels[o + 2])
        }
        func count(_ xs: Range<Int>, _ ys: Range<Int>, _ match: ((Float, Float, Float)) -> Bool) -> Int {
            var n = 0
            for y in ys { for x in xs where match(pixel(x, y)) { n += 1 } }
            return n
        }
        let isBlack = { (p: (Float, Float, Float)) in p.0 == 0 && p.1 == 0 && p.2 == 0 }
        // Left margin (y labels and the LOSS title) and bottom margin (step labels, STEP) hold text.
        XCTAssertGreaterThan(count(0..<56, 20..<360, isBlack), 100, "no y-axis labels")
        XCTAssertGreaterThan(count(70..<790, 367..<400, isBlack), 200, "no step labels")
        XCTAssertEqual(count(0..<56, 20..<360) { $0 == blue || $0 == green }, 0, "curves drawn outside the frame")
        // LOSS reads upwards along the y axis, left of its labels; nothing is left in the corner
        // under the frame where it used to be.
        XCTAssertGreaterThan(count(4..<11, 160..<220, isBlack), 30, "no LOSS title along the y axis")
        XCTAssertEqual(count(0..<40, 370..<400, isBlack), 0, "text in the bottom-left corner")
        // Step ticks at whole steps, each labelled exactly: 0, 20, ..., 100 for steps 0...100; 10 to
        // 16 one by one; 10 to 115 by 20.
        XCTAssertEqual(GANPictures.tickStep(from: 0, to: 100, atMost: 8), 20)
        XCTAssertEqual(GANPictures.tickStep(from: 10, to: 16, atMost: 8), 1)
        XCTAssertEqual(GANPictures.tickStep(from: 10, to: 115, atMost: 6), 20)
        XCTAssertEqual(GANPictures.tickStep(from: 0, to: 1_000_000, atMost: 6), 200_000)
        XCTAssertEqual(GANPictures.tickStep(from: 5, to: 5, atMost: 8), 1)
        // The legend (top right) has a line of each colour.
        XCTAssertGreaterThan(count(600..<790, 10..<80) { $0 == blue }, 20)
        XCTAssertGreaterThan(count(600..<790, 10..<80) { $0 == green }, 20)
        // No curve runs under the legend: a loss just below the largest one stays visible
        // in every column of the frame (the y axis leaves headroom above the data for the box).
        let red: (Float, Float, Float) = (0.9, 0.1, 0.1)
        let top = GANPictures.lossCurve([
            .init(steps: steps, values: steps.map { 1 + exp(-$0 / 20) }, color: green, name: "G"),
            .init(steps: steps, values: steps.map { _ in 1.85 }, color: red, name: "D fake"),   // 92.5% of the largest loss, drawn last
        ])
        for x in 82..<788 {
            var seen = false
            for y in 11..<360 where top.pixels[(y * 800 + x) * 3 ..< (y * 800 + x) * 3 + 3].elementsEqual([red.0, red.1, red.2]) {
                seen = true; break
            }
            XCTAssertTrue(seen, "the D FAKE curve is hidden in column \(x)")
            if !seen { break }
        }
        // A diverged run's huge losses draw a few coarse grid lines, quickly, and labels that fit
        // left of the frame (nothing drawn in the first 4 columns but the axis title's rows).
        let huge = GANPictures.lossCurve([.init(steps: [0, 1, 2], values: [0.7, 4e6, 1], color: green, name: "G")])
        XCTAssertEqual(huge.width, 800)
        var clipped = 0
        for y in 0..<360 { for x in 0..<4 where huge.pixels[(y * 800 + x) * 3] == 0 { clipped += 1 } }
        XCTAssertEqual(clipped, 0, "y labels run off the left edge")
        // Odd inputs a run can produce: nothing, one point, NaN and ±∞, equal steps; small sizes.
        for points in [[(Double, Double)](), [(50, 0.7)], [(1, .nan), (2, .infinity)], [(3, 1), (3, 2)], [(.nan, 1), (5, -1)]] {
            let im = GANPictures.lossCurve([.init(steps: points.map(\.0), values: points.map(\.1), color: green, name: "G")],
                                           width: 10, height: 10)
            XCTAssertEqual([im.width, im.height], [240, 160])
        }
    }
}
