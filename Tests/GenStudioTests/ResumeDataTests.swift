import Foundation
import XCTest
@testable import GenStudio
import GenNN
import GenData
import GenTensor

/// Every file below `dir` with its bytes, by relative path: compared before and after a refused
/// resume to prove that nothing in the run folder changed.
func folderSnapshot(_ dir: URL) -> [String: Data] {
    var out: [String: Data] = [:]
    for path in listing(dir) {
        let url = dir.appendingPathComponent(path)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue {
            out[path] = fileBytes(url) ?? Data()
        }
    }
    return out
}

/// Rewrites the checkpoint at `url` as a version without data fingerprints wrote it: the
/// `dataFingerprint` key is removed from its stored training state (the rest is left byte for byte).
func stripDataFingerprint(_ url: URL) throws {
    var ckpt = try Checkpoint.load(from: url)
    let state = try XCTUnwrap(ckpt.metadata["state"])
    let stripped = state.replacingOccurrences(of: #""dataFingerprint":\{[^}]*\},?"#, with: "", options: .regularExpression)
    XCTAssertNotEqual(stripped, state, "the checkpoint's state holds no data fingerprint")
    XCTAssertFalse(stripped.contains("dataFingerprint"))
    ckpt.metadata["state"] = stripped
    try ckpt.save(to: url)
}

/// The `elapsed_s` column of a run's `metrics.csv`, in row order.
func elapsedColumn(_ folder: URL) throws -> [Double] {
    let lines = try String(contentsOf: folder.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n")
    let header = try XCTUnwrap(lines.first).split(separator: ",").map(String.init)
    let column = try XCTUnwrap(header.firstIndex(of: "elapsed_s"))
    return try lines.dropFirst().map { line in
        let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return try XCTUnwrap(Double(fields[column]), "row \(line)")
    }
}

/// Sleeps at every metrics event, so that the time a round spends between its evaluation and its
/// `metrics.csv` row shows in the row's `elapsed_s`.
final class SlowMetricsProgress: ProgressReporter {
    func report(_ event: ProgressEvent) {
        if case .metrics = event { Thread.sleep(forTimeInterval: 0.3) }
    }
}

/// A resume must see the data its run was trained on (bug: another corpus or image set was
/// accepted and trained on silently), and the elapsed time a checkpoint stores is the time it was
/// written, so `elapsed_s` never goes backwards across a resume.
final class ResumeDataTests: XCTestCase {
    // MARK: text

    func testTextResumeWithAnotherCorpusIsRefused() throws {
        let dir = try makeStudioTempDir(self)
        // The same alphabet and length: only the fingerprint tells the two apart.
        let a = try writeCorpus(syntheticText(count: 600, seed: 7), named: "a.txt", in: dir)
        let b = try writeCorpus(syntheticText(count: 600, seed: 8), named: "b.txt", in: dir)
        let run = dir.appendingPathComponent("run")
        let first = try trainRun(corpus: a, config: tinyConfig(steps: 5), output: run)
        let before = folderSnapshot(run)
        XCTAssertThrowsError(try trainRun(corpus: b, config: tinyConfig(steps: 10), resume: first.checkpoint, output: nil)) { error in
            guard case StudioError.incompatibleCheckpoint = error else { return XCTFail("\(error)") }
            let text = "\(error)"
            XCTAssertTrue(text.contains(b.path) && text.contains(first.checkpoint.path), text)
            XCTAssertTrue(text.contains("is not the data this run was trained on") && text.contains("600 characters"), text)
        }
        XCTAssertEqual(folderSnapshot(run), before, "a refused resume changed the run folder")

        // The same text (here a copy under another name) still resumes.
        let copy = try writeCorpus(syntheticText(count: 600, seed: 7), named: "copy.txt", in: dir)
        let resumed = try trainRun(corpus: copy, config: tinyConfig(steps: 10), resume: first.checkpoint, output: nil)
        XCTAssertEqual(resumed.steps, 10)
    }

    func testTextCheckpointWithoutFingerprintStillResumes() throws {
        let dir = try makeStudioTempDir(self)
        let a = try writeCorpus(syntheticText(count: 600, seed: 7), named: "a.txt", in: dir)
        let first = try trainRun(corpus: a, config: tinyConfig(steps: 5), output: dir.appendingPathComponent("run"))
        try stripDataFingerprint(first.checkpoint)
        let resumed = try trainRun(corpus: a, config: tinyConfig(steps: 10), resume: first.checkpoint, output: nil)
        XCTAssertEqual(resumed.steps, 10)
        // The run's next checkpoint records the data it continued with.
        let state = try Checkpoint.load(from: resumed.checkpoint).metadata(TextTrainingState.self, forKey: "state")
        XCTAssertEqual(state.dataFingerprint?.count, 600)
    }

    func testTextElapsedNeverGoesBackAcrossAResume() throws {
        let dir = try makeStudioTempDir(self)
        let a = try writeCorpus(syntheticText(count: 600, seed: 7), named: "a.txt", in: dir)
        // 22 steps per epoch: the first session ends at an epoch end (its row, then its checkpoint).
        let first = try TextTrainer(corpus: a, config: tinyConfig(steps: 22), resume: nil, output: dir.appendingPathComponent("run"),
                                    arguments: [], progress: SlowMetricsProgress()).run()
        XCTAssertEqual(first.epochs, 1)
        let stored = try Checkpoint.load(from: first.checkpoint).metadata(TextTrainingState.self, forKey: "state").elapsed
        let rows = try elapsedColumn(first.folder)
        XCTAssertGreaterThanOrEqual(stored + 0.05, try XCTUnwrap(rows.last), "the checkpoint's elapsed is older than its row's")
        _ = try trainRun(corpus: a, config: tinyConfig(steps: 25), resume: first.checkpoint, output: nil)
        let all = try elapsedColumn(first.folder)
        XCTAssertGreaterThan(all.count, rows.count)
        XCTAssertEqual(all, all.sorted(), "elapsed_s goes backwards: \(all)")
    }

    // MARK: VAE

    /// A copy of the bars data set with one pixel changed: the same number and size of images.
    func writeOtherBars(in dir: URL) throws -> URL {
        let other = try writeBarsIDX(in: dir)
        let file = other.appendingPathComponent("train-images-idx3-ubyte")
        var bytes = try Data(contentsOf: file)
        bytes[16 + 5] = bytes[16 + 5] == 0 ? 77 : 0
        try bytes.write(to: file)
        return other
    }

    func testVAEResumeWithOtherImagesIsRefused() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))
        let other = try writeOtherBars(in: dir.appendingPathComponent("other"))
        let run = dir.appendingPathComponent("run")
        let first = try VAETrainer(config: tinyVAEConfig(data: data, steps: 4), resume: nil, output: run,
                                   arguments: [], progress: SilentProgress()).run()
        let before = folderSnapshot(run)
        XCTAssertThrowsError(try VAETrainer(config: tinyVAEConfig(data: other, steps: 8), resume: first.checkpoint, output: nil,
                                            arguments: [], progress: SilentProgress()).run()) { error in
            guard case StudioError.incompatibleCheckpoint = error else { return XCTFail("\(error)") }
            let text = "\(error)"
            XCTAssertTrue(text.contains(other.path) && text.contains(first.checkpoint.path), text)
            XCTAssertTrue(text.contains("is not the data this run was trained on") && text.contains("16 images"), text)
        }
        XCTAssertEqual(folderSnapshot(run), before, "a refused resume changed the run folder")

        // The same images: from the checkpoint's own data source (no --data), or a copy elsewhere.
        var same = tinyVAEConfig(data: data, steps: 6)
        same.data = nil
        XCTAssertEqual(try VAETrainer(config: same, resume: first.checkpoint, output: nil, arguments: [],
                                      progress: SilentProgress()).run().steps, 6)
        let copy = try writeBarsIDX(in: dir.appendingPathComponent("copy"))
        XCTAssertEqual(try VAETrainer(config: tinyVAEConfig(data: copy, steps: 8), resume: first.checkpoint, output: nil,
                                      arguments: [], progress: SilentProgress()).run().steps, 8)
    }

    func testVAECheckpointWithoutFingerprintStillResumes() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))
        let first = try VAETrainer(config: tinyVAEConfig(data: data, steps: 4), resume: nil, output: dir.appendingPathComponent("run"),
                                   arguments: [], progress: SilentProgress()).run()
        try stripDataFingerprint(first.checkpoint)
        var cont = tinyVAEConfig(data: data, steps: 6)
        cont.data = nil
        let resumed = try VAETrainer(config: cont, resume: first.checkpoint, output: nil, arguments: [], progress: SilentProgress()).run()
        XCTAssertEqual(resumed.steps, 6)
        let state = try Checkpoint.load(from: resumed.checkpoint).metadata(VAETrainingState.self, forKey: "state")
        XCTAssertEqual(state.dataFingerprint?.count, 16)
    }

    /// Bug: the checkpoint stored the elapsed time taken before the round's evaluation and pictures,
    /// while the round's row (written after the evaluation) showed a later one, so the next
    /// session's rows started below it.
    func testVAEElapsedNeverGoesBackAcrossAResume() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeBarsIDX(in: dir.appendingPathComponent("data"))   // 3 steps per epoch
        let first = try VAETrainer(config: tinyVAEConfig(data: data, steps: 4), resume: nil, output: dir.appendingPathComponent("run"),
                                   arguments: [], progress: SlowMetricsProgress()).run()
        let stored = try Checkpoint.load(from: first.checkpoint).metadata(VAETrainingState.self, forKey: "state").elapsed
        let rows = try elapsedColumn(first.folder)
        XCTAssertGreaterThanOrEqual(stored + 0.05, try XCTUnwrap(rows.last), "the checkpoint's elapsed is older than its row's")
        var cont = tinyVAEConfig(data: data, steps: 7)
        cont.data = nil
        _ = try VAETrainer(config: cont, resume: first.checkpoint, output: nil, arguments: [], progress: SilentProgress()).run()
        let all = try elapsedColumn(first.folder)
        XCTAssertGreaterThan(all.count, rows.count)
        XCTAssertEqual(all, all.sorted(), "elapsed_s goes backwards: \(all)")
    }

    // MARK: GAN

    func testGANResumeWithOtherImagesIsRefused() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(10, in: dir, name: "a", seed: 3)
        let other = try writeImageFolder(10, in: dir, name: "b", seed: 4)   // as many images, other pixels
        let run = dir.appendingPathComponent("run")
        let first = try ganRun(data: data.path, config: tinyGANConfig(steps: 3), output: run)
        let before = folderSnapshot(run)
        XCTAssertThrowsError(try ganRun(data: other.path, config: tinyGANConfig(steps: 6), resume: first.checkpoint, output: nil)) { error in
            guard case StudioError.incompatibleCheckpoint = error else { return XCTFail("\(error)") }
            let text = "\(error)"
            XCTAssertTrue(text.contains(other.path) && text.contains(first.checkpoint.path), text)
            XCTAssertTrue(text.contains("is not the data this run was trained on") && text.contains("10 images"), text)
        }
        XCTAssertEqual(folderSnapshot(run), before, "a refused resume changed the run folder")

        let copy = try writeImageFolder(10, in: dir, name: "copy", seed: 3)
        XCTAssertEqual(try ganRun(data: copy.path, config: tinyGANConfig(steps: 6), resume: first.checkpoint, output: nil).steps, 6)
    }

    func testGANCheckpointWithoutFingerprintStillResumes() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(10, in: dir, name: "a", seed: 3)
        let first = try ganRun(data: data.path, config: tinyGANConfig(steps: 3), output: dir.appendingPathComponent("run"))
        try stripDataFingerprint(first.checkpoint)
        let resumed = try ganRun(data: data.path, config: tinyGANConfig(steps: 6), resume: first.checkpoint, output: nil)
        XCTAssertEqual(resumed.steps, 6)
        let state = try Checkpoint.load(from: resumed.checkpoint).metadata(GANTrainingState.self, forKey: "state")
        XCTAssertEqual(state.dataFingerprint?.count, 10)
    }

    func testGANElapsedNeverGoesBackAcrossAResume() throws {
        let dir = try makeStudioTempDir(self)
        let data = try writeImageFolder(10, in: dir, name: "a", seed: 3)
        var config = tinyGANConfig(steps: 3)
        config.logEvery = 2
        let first = try ganRun(data: data.path, config: config, output: dir.appendingPathComponent("run"), progress: SlowMetricsProgress())
        let stored = try Checkpoint.load(from: first.checkpoint).metadata(GANTrainingState.self, forKey: "state").elapsed
        let rows = try elapsedColumn(first.folder)
        XCTAssertGreaterThanOrEqual(stored + 0.05, try XCTUnwrap(rows.last), "the checkpoint's elapsed is older than its row's")
        config.steps = 6
        _ = try ganRun(data: data.path, config: config, resume: first.checkpoint, output: nil)
        let all = try elapsedColumn(first.folder)
        XCTAssertGreaterThan(all.count, rows.count)
        XCTAssertEqual(all, all.sorted(), "elapsed_s goes backwards: \(all)")
    }
}
