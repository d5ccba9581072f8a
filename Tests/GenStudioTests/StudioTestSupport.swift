import Foundation
import XCTest
@testable import GenStudio
import GenNN
import GenData
import GenTensor

/// Folder of the shared bad-input cases: $GEN_DATA_CASES, else ../shared/cases next to the
/// package root (found from this file's path). nil when absent.
func studioCasesDirectory() -> String? {
    if let env = ProcessInfo.processInfo.environment["GEN_DATA_CASES"], !env.isEmpty {
        return FileManager.default.fileExists(atPath: env) ? env : nil
    }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let dir = root.deletingLastPathComponent().appendingPathComponent("shared/cases").path
    return FileManager.default.fileExists(atPath: dir) ? dir : nil
}

/// Path of a case input, or XCTSkip when the shared cases are absent.
func studioCasePath(_ name: String) throws -> URL {
    guard let dir = studioCasesDirectory() else {
        throw XCTSkip("shared cases not found (set GEN_DATA_CASES or provide ../shared/cases)")
    }
    let p = dir + "/inputs/" + name
    guard FileManager.default.fileExists(atPath: p) else { throw XCTSkip("case input \(p) missing") }
    return URL(fileURLWithPath: p)
}

/// A fresh temporary folder, removed at the end of the test.
func makeStudioTempDir(_ test: XCTestCase) throws -> URL {
    let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gen-studio-tests-" + UUID().uuidString)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

/// Writes `text` (UTF-8) to `name` in `dir`.
@discardableResult
func writeCorpus(_ text: String, named name: String = "corpus.txt", in dir: URL) throws -> URL {
    let url = dir.appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url
}

/// A reproducible pseudo-random text over a small alphabet with some structure (words and lines),
/// so that windows differ from each other and a model has something to learn.
func syntheticText(count: Int, seed: UInt64 = 7) -> String {
    var rng = RandomGenerator(seed: seed)
    let words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    var out = ""
    while out.unicodeScalars.count < count {
        out += words[rng.nextInt(below: words.count)]
        out += rng.nextInt(below: 6) == 0 ? "\n" : " "
    }
    return String(String.UnicodeScalarView(out.unicodeScalars.prefix(count)))
}

/// A tiny configuration: 12 units, windows of 8, batch 8, RMSprop 0.01, short samples.
func tinyConfig(steps: Int? = 20, seed: UInt64 = 1) -> TextTrainingConfig {
    var c = TextTrainingConfig()
    c.units = 12
    c.sequenceLength = 8
    c.windowStride = 3
    c.batchSize = 8
    c.learningRate = 0.01
    c.steps = steps
    c.seed = seed
    c.sampleTemperatures = [0.5, 1.0]
    c.sampleLength = 40
    c.maxValidationWindows = 64
    return c
}

/// Every tensor of a checkpoint as bit patterns, by name.
func checkpointBits(_ url: URL) throws -> [String: [UInt32]] {
    let ckpt = try Checkpoint.load(from: url, expectingGenerator: "text")
    return ckpt.tensors.mapValues { $0.scalars.map(\.bitPattern) }
}

/// The file's bytes (nil when absent): compared before and after to prove a file is unchanged.
func fileBytes(_ url: URL) -> Data? { try? Data(contentsOf: url) }

/// FNV-1a 64 of some bytes, for messages.
func fnv1a(_ data: Data) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in data { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

/// Every path below `dir` (relative), sorted.
func listing(_ dir: URL) -> [String] {
    guard let e = FileManager.default.enumerator(atPath: dir.path) else { return [] }
    return (e.allObjects as? [String] ?? []).sorted()
}

/// Strict UTF-8 check of a Swift string's bytes and absence of U+FFFD.
func assertCleanUTF8(_ s: String, file: StaticString = #filePath, line: UInt = #line) {
    let bytes = Data(s.utf8)
    XCTAssertNil(TextCorpus.firstInvalidUTF8Offset(bytes), "invalid UTF-8 in sample", file: file, line: line)
    XCTAssertFalse(s.unicodeScalars.contains("\u{FFFD}"), "sample contains U+FFFD", file: file, line: line)
}

/// Collects progress events (for tests that look at warnings).
final class RecordingProgress: ProgressReporter {
    var events: [ProgressEvent] = []
    func report(_ event: ProgressEvent) { events.append(event) }
}

/// Runs a training session and returns its summary.
@discardableResult
func trainRun(corpus: URL, config: TextTrainingConfig, resume: URL? = nil, output: URL?) throws -> TextTrainingSummary {
    let trainer = try TextTrainer(corpus: corpus, config: config, resume: resume, output: output,
                                  arguments: ["gen", "text", "train"], progress: SilentProgress())
    return try trainer.run()
}
