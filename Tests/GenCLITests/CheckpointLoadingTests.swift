import Foundation
import XCTest
@testable import GenCLI
import GenStudio
import GenData
import GenNN
import GenTensor

/// `gen text sample`'s checkpoint loading, in process (case28 and kinds like it).
final class CheckpointLoadingTests: XCTestCase {
    func testCase28FilesAreCleanErrorsAndUnchanged() throws {
        guard let cases = cliCasesDirectory() else { throw XCTSkip("shared cases not found") }
        for (name, reason) in [("ckpt_empty.bin", "empty"), ("ckpt_random.bin", "not a valid checkpoint")] {
            let url = URL(fileURLWithPath: cases + "/inputs/case28_bad_checkpoints/" + name)
            let before = try Data(contentsOf: url)
            XCTAssertThrowsError(try loadTextModel(from: url)) { e in
                XCTAssertTrue(e is CheckpointError, "\(e)")
                XCTAssertEqual(GenCLI.exitCode(for: e), 2)
                XCTAssertTrue(describe(e).contains(url.path), describe(e))
                XCTAssertTrue(describe(e).contains(reason), describe(e))
            }
            XCTAssertEqual(try Data(contentsOf: url), before)
        }
    }

    func testInconsistentCheckpointsAreRejected() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gen-cli-ckpt-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = RandomGenerator(seed: 1)
        let config = TextModelConfig(vocabularySize: 3, layers: 1, units: 4, sequenceLength: 5)
        let model = TextModel(config: config, using: &rng)
        func checkpoint(_ edit: (inout Checkpoint) throws -> Void) throws -> URL {
            var ck = Checkpoint(generator: "text")
            for p in model.parameters { ck.tensors[p.name ?? ""] = p }
            try ck.setMetadata(config, forKey: Checkpoint.Key.config)
            try ck.setMetadata(Vocabulary(text: "abc"), forKey: Checkpoint.Key.vocabulary)
            try edit(&ck)
            let url = dir.appendingPathComponent(UUID().uuidString + ".safetensors")
            try ck.save(to: url)
            return url
        }
        XCTAssertNoThrow(try loadTextModel(from: try checkpoint { _ in }))
        let broken: [(String, (inout Checkpoint) throws -> Void)] = [
            ("vocabulary", { $0.metadata[Checkpoint.Key.vocabulary] = nil }),
            ("inconsistent", { try $0.setMetadata(Vocabulary(text: "abcd"), forKey: Checkpoint.Key.vocabulary) }),
            ("missing", { $0.tensors["dense/kernel"] = nil }),
            ("shape", { $0.tensors["dense/kernel"] = Tensor(zeros: [2, 2]) }),
            ("non-finite", { $0.tensors["dense/bias"] = Tensor(shape: [3], scalars: [0, .nan, 0]) }),
            ("generator", { $0.metadata[Checkpoint.Key.generator] = "gan" }),
            ("config", { $0.metadata[Checkpoint.Key.config] = "{not json" }),
            ("huge", { try $0.setMetadata(TextModelConfig(vocabularySize: 3, layers: 1, units: 1 << 20), forKey: Checkpoint.Key.config) }),
        ]
        for (what, edit) in broken {
            let url = try checkpoint(edit)
            let before = try Data(contentsOf: url)
            XCTAssertThrowsError(try loadTextModel(from: url), what) { e in
                XCTAssertEqual(GenCLI.exitCode(for: e), 2, "\(what): \(e)")
                XCTAssertTrue(describe(e).contains(url.path), "\(what): \(describe(e))")
            }
            XCTAssertEqual(try Data(contentsOf: url), before)
        }
    }
}
