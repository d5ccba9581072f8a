import Foundation
import XCTest
@testable import GenStudio
import GenNN
import GenData
import GenTensor

/// The shared bad-input cases for `gen text` (../shared/cases/CASES.md: case21, 22, 24, 26, 28).
final class TextCaseTests: XCTestCase {
    // MARK: case21: multilingual text and emoji

    func testCase21MultilingualTrainsAndSamplesValidUTF8() throws {
        let input = try studioCasePath("case21_utf8_multilang.txt")
        let dir = try makeStudioTempDir(self)
        var c = tinyConfig(steps: 8)
        c.sampleLength = 300
        c.sampleTemperatures = [0.2, 1.0, 1.5]
        let trainer = try TextTrainer(corpus: input, config: c, resume: nil, output: dir.appendingPathComponent("run"),
                                      arguments: [], progress: SilentProgress())
        let v = trainer.vocabulary
        // Scalars, not bytes: each of these is one symbol.
        for s: Unicode.Scalar in ["é", "λ", "日", "😀"] {
            XCTAssertTrue(v.contains(s), "vocabulary lacks \(s)")
        }
        XCTAssertTrue(v.scalars.allSatisfy { $0 != "\u{FFFD}" && $0 != "\r" })
        let summary = try trainer.run()
        XCTAssertEqual(summary.samples.count, 3)
        for s in summary.samples { assertCleanUTF8(s.text) }
        // Samples written to disk are strict UTF-8 too.
        for f in listing(summary.folder.appendingPathComponent("samples")) where f.hasSuffix(".txt") {
            let data = try Data(contentsOf: summary.folder.appendingPathComponent("samples/" + f))
            XCTAssertNil(TextCorpus.firstInvalidUTF8Offset(data), f)
        }
        // Direct sampling at many temperatures: every output decodes strictly.
        let sampler = TextSampler(model: trainer.currentModel)
        var rng = RandomGenerator(seed: 21)
        for t: Float in [0, 0.5, 1, 3] {
            let out = sampler.generate(prime: try v.encode("日本"), length: 500, options: SamplingOptions(temperature: t), using: &rng)
            let text = v.decode(out)
            XCTAssertEqual(text.unicodeScalars.count, 500)
            assertCleanUTF8(text)
        }
    }

    // MARK: case22: CRLF and CR line endings

    func testCase22LineEndingsNormalised() throws {
        let crlf = try studioCasePath("case22_crlf.txt"), cr = try studioCasePath("case22_cr_only.txt")
        let a = try TextCorpus.load(from: crlf), b = try TextCorpus.load(from: cr)
        let lfText = String(decoding: try Data(contentsOf: crlf), as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
        let lf = try TextCorpus(text: lfText)
        XCTAssertFalse(a.vocabulary.contains("\r"))
        XCTAssertFalse(b.vocabulary.contains("\r"))
        XCTAssertEqual(a.vocabulary, lf.vocabulary)
        XCTAssertEqual(b.vocabulary, lf.vocabulary)
        XCTAssertEqual(a.tokens, lf.tokens)
        XCTAssertEqual(b.tokens, lf.tokens)

        for input in [crlf, cr] {
            let dir = try makeStudioTempDir(self)
            var c = tinyConfig(steps: 30)
            c.units = 16
            c.targets = .all
            c.windowStride = 8
            c.batchSize = 16
            c.learningRate = 0.02
            c.sampleLength = 300
            c.sampleTemperatures = [1.0]
            let trainer = try TextTrainer(corpus: input, config: c, resume: nil, output: dir.appendingPathComponent("run"),
                                          arguments: [], progress: SilentProgress())
            XCTAssertFalse(trainer.vocabulary.contains("\r"))
            XCTAssertTrue(trainer.vocabulary.contains("\n"))
            let summary = try trainer.run()
            let sample = try XCTUnwrap(summary.samples.first?.text)
            XCTAssertFalse(sample.unicodeScalars.contains("\r"))
            // The generated part (after the '|' that ends the prime) has line breaks.
            let generated = sample.split(separator: "|", maxSplits: 1).last.map(String.init) ?? ""
            let sampler = TextSampler(model: trainer.currentModel)
            var rng = RandomGenerator(seed: 1)
            let more = trainer.vocabulary.decode(sampler.generate(prime: try trainer.vocabulary.encode("All:\n"), length: 600,
                                                                  options: SamplingOptions(temperature: 1), using: &rng))
            XCTAssertTrue(generated.contains("\n") || more.contains("\n"), "no line breaks in samples from \(input.lastPathComponent)")
            XCTAssertFalse(more.unicodeScalars.contains("\r"))
        }
    }

    // MARK: case24: empty corpus

    func testCase24EmptyCorpusCleanErrorNoFiles() throws {
        let input = try studioCasePath("case24_empty.txt")
        let dir = try makeStudioTempDir(self)
        let out = dir.appendingPathComponent("run")
        XCTAssertThrowsError(try TextTrainer(corpus: input, config: tinyConfig(), resume: nil, output: out,
                                             arguments: [], progress: SilentProgress())) { e in
            XCTAssertEqual(e as? TextError, .empty(file: input.path))
            XCTAssertTrue("\(e)".contains("corpus is empty"), "\(e)")
            XCTAssertTrue("\(e)".contains("case24_empty.txt"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "a run folder was created for an empty corpus")
        XCTAssertEqual(listing(dir), [])
        // A byte-order mark alone is empty too.
        let bom = dir.appendingPathComponent("bom.txt")
        try Data([0xEF, 0xBB, 0xBF]).write(to: bom)
        XCTAssertThrowsError(try TextTrainer(corpus: bom, config: tinyConfig(), resume: nil, output: out,
                                             arguments: [], progress: SilentProgress())) { e in
            XCTAssertEqual(e as? TextError, .empty(file: bom.path))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    // MARK: case26: a single character

    func testCase26SingleCharacterCorpus() throws {
        let input = try studioCasePath("case26_single_char.txt")
        let dir = try makeStudioTempDir(self)
        for targets in TextTargets.allCases {
            var c = tinyConfig(steps: 10)
            c.targets = targets
            c.sampleTemperatures = [0, 0.01, 1.0]
            c.sampleLength = 50
            let trainer = try TextTrainer(corpus: input, config: c, resume: nil,
                                          output: dir.appendingPathComponent("run-\(targets.rawValue)"),
                                          arguments: [], progress: SilentProgress())
            XCTAssertEqual(trainer.vocabulary.count, 1)
            let summary = try trainer.run()
            let train = try XCTUnwrap(summary.trainBitsPerCharacter)
            XCTAssertTrue(train.isFinite, "train loss \(train)")
            let val = try XCTUnwrap(summary.validationBitsPerCharacter)
            XCTAssertTrue(val.isFinite, "validation loss \(val)")
            XCTAssertEqual(val, 0, accuracy: 1e-6, "with one symbol the loss is exactly 0")
            for s in summary.samples {
                XCTAssertTrue(s.text.allSatisfy { $0 == "a" || $0 == "|" }, "temperature \(s.temperature): \(s.text)")
            }
            for (name, bits) in try checkpointBits(summary.checkpoint) {
                XCTAssertTrue(bits.allSatisfy { Float(bitPattern: $0).isFinite }, "tensor \(name) not finite")
            }
            let sampler = TextSampler(model: trainer.currentModel)
            var rng = RandomGenerator(seed: 26)
            for t: Float in [1.0, 0.01, 0] {
                for n in [1, 100, 1000] {
                    let out = sampler.generate(prime: [0], length: n, options: SamplingOptions(temperature: t), using: &rng)
                    XCTAssertEqual(trainer.vocabulary.decode(out), String(repeating: "a", count: n), "T=\(t)")
                }
            }
            var rng2 = RandomGenerator(seed: 1)
            let kp = sampler.generate(prime: [0], length: 20, options: SamplingOptions(temperature: 0.5, topK: 3, topP: 0.1), using: &rng2)
            XCTAssertEqual(kp, [Int32](repeating: 0, count: 20))
        }
    }

    // MARK: case28: bad checkpoints

    /// `--resume` with an empty, random or half checkpoint: a clean CheckpointError naming the
    /// file, the file unchanged, and no run folder, checkpoint or sample written anywhere.
    func testCase28BadCheckpointsOnResume() throws {
        let empty = try studioCasePath("case28_bad_checkpoints/ckpt_empty.bin")
        let random = try studioCasePath("case28_bad_checkpoints/ckpt_random.bin")
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 300), in: dir)

        // A real checkpoint, cut to half its size.
        let real = try trainRun(corpus: corpus, config: tinyConfig(steps: 2), output: dir.appendingPathComponent("real"))
        let realBytes = try XCTUnwrap(fileBytes(real.checkpoint))
        let badDir = dir.appendingPathComponent("bad")
        try FileManager.default.createDirectory(at: badDir, withIntermediateDirectories: true)
        let half = badDir.appendingPathComponent("half.safetensors")
        try realBytes.prefix(realBytes.count / 2).write(to: half)
        // Copies of the shared cases (the default output folder is the checkpoint's folder).
        let emptyCopy = badDir.appendingPathComponent("ckpt_empty.bin"), randomCopy = badDir.appendingPathComponent("ckpt_random.bin")
        try FileManager.default.copyItem(at: empty, to: emptyCopy)
        try FileManager.default.copyItem(at: random, to: randomCopy)
        // Header intact, data cut off by a few bytes.
        let short = badDir.appendingPathComponent("short.safetensors")
        try realBytes.prefix(realBytes.count - 3).write(to: short)
        // Valid safetensors, but a dense tensor of another shape.
        let wrongShape = badDir.appendingPathComponent("wrong-shape.safetensors")
        var ck = try Checkpoint.load(from: real.checkpoint, expectingGenerator: "text")
        ck.tensors["dense/kernel"] = Tensor(zeros: [3, 3])
        try ck.save(to: wrongShape)
        // Valid safetensors without gen metadata.
        let foreign = badDir.appendingPathComponent("foreign.safetensors")
        try SafetensorsFile.write(tensors: ["x": Tensor(zeros: [2])], metadata: [:], to: foreign)

        let before = listing(badDir)
        let originals = [empty: fileBytes(empty), random: fileBytes(random)]
        for file in [emptyCopy, randomCopy, half, short, wrongShape, foreign] {
            let bytes = fileBytes(file)
            for output in [nil, dir.appendingPathComponent("out")] {
                var c = tinyConfig(steps: 5)
                c.checkpointEvery = 1
                XCTAssertThrowsError(try trainRun(corpus: corpus, config: c, resume: file, output: output)) { e in
                    switch e {
                    case let ce as CheckpointError:
                        XCTAssertEqual(ce.file, file.path)
                        if file == emptyCopy { XCTAssertTrue("\(ce)".contains("empty"), "\(ce)") }
                        if file == randomCopy || file == half || file == short {
                            XCTAssertTrue("\(ce)".contains("not a valid checkpoint"), "\(ce)")
                        }
                    case StudioError.incompatibleCheckpoint(let path, _):
                        XCTAssertEqual(path, file.path)
                    default:
                        XCTFail("\(file.lastPathComponent): unexpected error \(e)")
                    }
                }
                XCTAssertEqual(fileBytes(file), bytes, "\(file.lastPathComponent) changed")
                XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path),
                               "\(file.lastPathComponent): an output folder was created")
                XCTAssertEqual(listing(badDir), before, "\(file.lastPathComponent): files appeared next to the checkpoint")
            }
        }
        XCTAssertEqual(fileBytes(empty), originals[empty] ?? nil)
        XCTAssertEqual(fileBytes(random), originals[random] ?? nil)
        XCTAssertEqual(fileBytes(real.checkpoint), realBytes)
    }

    /// The checkpoint is written atomically: after a run no temporary files are left beside it, and
    /// a resumed run that fails early leaves the old checkpoint as it was.
    func testCheckpointSavesLeaveNoTemporaryFiles() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 300), in: dir)
        var c = tinyConfig(steps: 6)
        c.checkpointEvery = 1
        let run = try trainRun(corpus: corpus, config: c, output: dir.appendingPathComponent("run"))
        let files = listing(run.folder).filter { !$0.hasPrefix("samples") }
        XCTAssertEqual(files, ["best.safetensors", "checkpoint.safetensors", "metrics.csv", "run.json"])
    }
}
