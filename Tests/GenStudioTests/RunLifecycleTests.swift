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
