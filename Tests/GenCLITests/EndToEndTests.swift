import Foundation
import XCTest
@testable import GenCLI
import GenStudio
import GenData
import GenNN

/// The `gen` executable of this build: $GEN_BINARY, else `gen` in the same build products folder
/// as the test bundle, else `.build/debug/gen` (and other scratch folders) under the package root.
func genBinary() -> URL? {
    let fm = FileManager.default
    if let env = ProcessInfo.processInfo.environment["GEN_BINARY"], !env.isEmpty {
        return fm.isExecutableFile(atPath: env) ? URL(fileURLWithPath: env) : nil
    }
    var candidates: [URL] = []
    for bundle in [Bundle.main, Bundle(for: EndToEndTests.self)] {
        var dir = bundle.bundleURL.deletingLastPathComponent()
        for _ in 0..<3 {
            candidates.append(dir.appendingPathComponent("gen"))
            dir = dir.deletingLastPathComponent()
        }
    }
    if let exe = Bundle.main.executableURL { candidates.append(exe.deletingLastPathComponent().appendingPathComponent("gen")) }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for scratch in [".build-studio", ".build"] {
        candidates.append(root.appendingPathComponent("\(scratch)/debug/gen"))
    }
    return candidates.first { fm.isExecutableFile(atPath: $0.path) && !$0.hasDirectoryPath }
}

/// Folder of the shared bad-input cases, or nil.
func cliCasesDirectory() -> String? {
    if let env = ProcessInfo.processInfo.environment["GEN_DATA_CASES"], !env.isEmpty {
        return FileManager.default.fileExists(atPath: env) ? env : nil
    }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let dir = root.deletingLastPathComponent().appendingPathComponent("shared/cases").path
    return FileManager.default.fileExists(atPath: dir) ? dir : nil
}

struct RunResult {
    var status: Int32
    var stdout: Data
    var stderr: String
    var out: String { String(decoding: stdout, as: UTF8.self) }
}

final class EndToEndTests: XCTestCase {
    var binary: URL!
    var dir: URL!      // working directory of every run (default outputs would land here)

    override func setUpWithError() throws {
        guard let b = genBinary() else {
            throw XCTSkip("the gen executable was not found next to the test bundle (build it with 'swift build', or set GEN_BINARY)")
        }
        binary = b
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gen-cli-tests-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let d = dir!
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
    }

    /// Runs gen in `dir` and collects its outputs (60 s limit).
    @discardableResult
    func gen(_ args: [String], executable: URL? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> RunResult {
        let p = Process()
        p.executableURL = executable ?? binary
        p.arguments = args
        p.currentDirectoryURL = dir
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = "1"
        p.environment = env
        let outPipe = Pipe(), errPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = errPipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Read both pipes concurrently so neither fills up.
        var outData = Data(), errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outData = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        errData = errPipe.fileHandleForReading.readDataToEndOfFile()
        if group.wait(timeout: .now() + 60) == .timedOut {
            p.terminate()
            XCTFail("gen \(args) timed out", file: file, line: line)
        }
        p.waitUntilExit()
        return RunResult(status: p.terminationStatus, stdout: outData, stderr: String(decoding: errData, as: UTF8.self))
    }

    func write(_ text: String, _ name: String) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    static let corpusText: String = {
        let words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
        var s = "", x: UInt64 = 12345
        while s.count < 600 {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            s += words[Int(x >> 33) % words.count] + ((x >> 20) % 7 == 0 ? "\n" : " ")
        }
        return s
    }()

    /// Trains a tiny model through the binary and returns its checkpoint.
    func trainTiny(_ name: String = "run") throws -> URL {
        let corpus = try write(Self.corpusText, "corpus.txt")
        let out = dir.appendingPathComponent(name)
        let r = try gen(["text", "train", "--corpus", corpus.path, "--steps", "5", "--units", "8", "--seq-length", "8",
                         "--batch-size", "4", "--sample-length", "20", "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return out.appendingPathComponent("checkpoint.safetensors")
    }

    /// Asserts a failed run: exit code, a `gen: error:` (or ArgumentParser `Error:`) line naming
    /// `mentions`, and nothing new in the working folder.
    func assertCleanFailure(_ args: [String], code: Int32?, mentions: [String], before: [String]? = nil,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let listingBefore = before ?? listing()
        let r = try gen(args, file: file, line: line)
        if let code {
            XCTAssertEqual(r.status, code, "gen \(args.joined(separator: " ")): stderr \(r.stderr)", file: file, line: line)
        } else {
            XCTAssertNotEqual(r.status, 0, "gen \(args.joined(separator: " ")) succeeded", file: file, line: line)
        }
        XCTAssertTrue(r.stderr.contains("rror"), "no error message: \(r.stderr)", file: file, line: line)
        for m in mentions {
            XCTAssertTrue(r.stderr.contains(m), "stderr does not mention '\(m)': \(r.stderr)", file: file, line: line)
        }
        XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Stack dump"), r.stderr, file: file, line: line)
        XCTAssertTrue(r.stdout.isEmpty, "stdout: \(r.out)", file: file, line: line)
        XCTAssertEqual(listing(), listingBefore, "files were created", file: file, line: line)
    }

    func listing() -> [String] {
        (FileManager.default.enumerator(atPath: dir.path)?.allObjects as? [String] ?? []).sorted()
    }

    // MARK: Success

    func testTrainThenSample() throws {
        let ckpt = try trainTiny()
        let run = ckpt.deletingLastPathComponent()
        let files = (FileManager.default.enumerator(atPath: run.path)?.allObjects as? [String] ?? []).sorted()
        XCTAssertTrue(files.contains("checkpoint.safetensors"), "\(files)")
        XCTAssertTrue(files.contains("metrics.csv"), "\(files)")
        XCTAssertTrue(files.contains("run.json"), "\(files)")
        XCTAssertTrue(files.contains { $0.hasPrefix("samples/") && $0.hasSuffix(".txt") }, "\(files)")
        let metrics = try String(contentsOf: run.appendingPathComponent("metrics.csv"), encoding: .utf8)
        XCTAssertTrue(metrics.hasPrefix("step,epoch,train_bpc,val_bpc"), metrics)
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("run.json"))) as? [String: Any]
        XCTAssertEqual(record?["generator"] as? String, "text")
        XCTAssertEqual(record?["seed"] as? Int, 1)
        XCTAssertNotNil(record?["finished"])

        // --raw: exactly 50 scalars and a newline.
        let r = try gen(["text", "sample", "--checkpoint", ckpt.path, "--length", "50", "--raw"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertNil(TextCorpus.firstInvalidUTF8Offset(r.stdout))
        let text = r.out
        XCTAssertTrue(text.hasSuffix("\n"))
        XCTAssertEqual(text.unicodeScalars.count, 51, "\(text.debugDescription)")
        // Same seed, same text; several temperatures and counts.
        let again = try gen(["text", "sample", "--checkpoint", ckpt.path, "--length", "50", "--raw"])
        XCTAssertEqual(again.stdout, r.stdout)
        let multi = try gen(["text", "sample", "--checkpoint", ckpt.path, "--length", "10", "--raw", "--temperature", "0,0.01,1",
                             "--count", "2", "--top-k", "3", "--top-p", "0.9"])
        XCTAssertEqual(multi.status, 0, multi.stderr)
        let lines = multi.out.unicodeScalars.count
        XCTAssertEqual(lines, 6 * 11)
        // With headers and a prime.
        let framed = try gen(["text", "sample", "--checkpoint", ckpt.path, "--length", "10", "--prime", "the cat", "--temperature", "0.5"])
        XCTAssertEqual(framed.status, 0, framed.stderr)
        XCTAssertTrue(framed.out.contains("----- temperature 0.5 -----\nthe cat"), framed.out)

        // Resume to 8 steps in the same folder.
        let corpus = dir.appendingPathComponent("corpus.txt")
        let res = try gen(["text", "train", "--corpus", corpus.path, "--resume", ckpt.path, "--steps", "8", "--quiet"])
        XCTAssertEqual(res.status, 0, res.stderr)
        XCTAssertTrue(res.out.contains("stopped: reached 8 steps\n"), res.out)
        let st = try Checkpoint.load(from: ckpt, expectingGenerator: "text").metadata[Checkpoint.Key.step]
        XCTAssertEqual(st, "8")
    }

    func testDefaultOutputFolder() throws {
        let corpus = try write(Self.corpusText, "corpus.txt")
        let r = try gen(["text", "train", "--corpus", corpus.path, "--steps", "2", "--units", "8", "--seq-length", "8",
                         "--batch-size", "4", "--sample-length", "5", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("outputs/text").path)
        XCTAssertEqual(runs.count, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("outputs/text/\(runs[0])/checkpoint.safetensors").path))
        XCTAssertTrue(r.out.contains("outputs/text/\(runs[0])"), r.out)
    }

    // MARK: Bad corpora

    func trainArgs(_ corpus: String, output: String = "out") -> [String] {
        ["text", "train", "--corpus", corpus, "--steps", "3", "--units", "8", "--seq-length", "8", "--batch-size", "4",
         "--output", dir.appendingPathComponent(output).path]
    }

    func testMissingCorpus() throws {
        let missing = dir.appendingPathComponent("nope.txt").path
        try assertCleanFailure(trainArgs(missing), code: 2, mentions: [missing, "not found"])
    }

    func testDirectoryCorpus() throws {
        let sub = dir.appendingPathComponent("adir")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        try assertCleanFailure(trainArgs(sub.path), code: 2, mentions: [sub.path, "directory"])
    }

    func testEmptyCorpus() throws {
        let empty = try write("", "empty.txt")
        try assertCleanFailure(trainArgs(empty.path), code: 2, mentions: [empty.path, "corpus is empty"])
        if let cases = cliCasesDirectory() {
            let c24 = cases + "/inputs/case24_empty.txt"
            try assertCleanFailure(trainArgs(c24), code: 2, mentions: ["case24_empty.txt", "corpus is empty"])
        }
    }

    func testTooShortCorpus() throws {
        let short = try write("abc", "short.txt")
        try assertCleanFailure(trainArgs(short.path), code: 2, mentions: [short.path, "too short"])
    }

    func testInvalidUTF8GivesByteOffset() throws {
        var bytes = Data(String(repeating: "héllo wörld ", count: 100).utf8)
        let offset = 777
        bytes[offset] = 0xFF
        let bad = dir.appendingPathComponent("latin1.txt")
        try bytes.write(to: bad)
        let invalidOffset = try XCTUnwrap(TextCorpus.firstInvalidUTF8Offset(bytes))
        try assertCleanFailure(trainArgs(bad.path), code: 2, mentions: [bad.path, "invalid UTF-8", "byte offset \(invalidOffset)"])
        // A Latin-1 file: é as the single byte E9.
        let latin = dir.appendingPathComponent("real-latin1.txt")
        try Data([0x63, 0x61, 0x66, 0xE9, 0x20, 0x61, 0x62]).write(to: latin)
        try assertCleanFailure(trainArgs(latin.path), code: 2, mentions: ["byte offset 3"])
    }

    func testUnwritableOutput() throws {
        let corpus = try write(Self.corpusText, "corpus.txt")
        let taken = try write("not a folder", "taken")
        let before = listing()
        let r = try gen(["text", "train", "--corpus", corpus.path, "--steps", "2", "--units", "8", "--seq-length", "8",
                         "--batch-size", "4", "--output", taken.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains(taken.path) && r.stderr.contains("gen: error:"), r.stderr)
        XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
        XCTAssertEqual(listing(), before)
        XCTAssertEqual(try String(contentsOf: taken, encoding: .utf8), "not a folder")
        // A folder under a regular file.
        try assertCleanFailure(["text", "train", "--corpus", corpus.path, "--steps", "2", "--units", "8", "--seq-length", "8",
                                "--batch-size", "4", "--output", taken.appendingPathComponent("sub").path],
                               code: nil, mentions: [taken.path])
    }

    // MARK: Bad checkpoints

    func testBadCheckpointsOnSampleAndResume() throws {
        let good = try trainTiny("good")
        let goodBytes = try Data(contentsOf: good)
        let bad = dir.appendingPathComponent("bad")
        try FileManager.default.createDirectory(at: bad, withIntermediateDirectories: true)
        var files: [(URL, String)] = []
        let half = bad.appendingPathComponent("half.safetensors")
        try goodBytes.prefix(goodBytes.count / 2).write(to: half)
        files.append((half, "not a valid checkpoint"))
        let text = bad.appendingPathComponent("text.safetensors")
        try Data("hello, this is not a checkpoint".utf8).write(to: text)
        files.append((text, "not a valid checkpoint"))
        let zero = bad.appendingPathComponent("zero.safetensors")
        try Data().write(to: zero)
        files.append((zero, "empty"))
        if let cases = cliCasesDirectory() {
            for name in ["ckpt_empty.bin", "ckpt_random.bin"] {
                let copy = bad.appendingPathComponent(name)
                try FileManager.default.copyItem(atPath: cases + "/inputs/case28_bad_checkpoints/" + name, toPath: copy.path)
                files.append((copy, name == "ckpt_empty.bin" ? "empty" : "not a valid checkpoint"))
            }
        }
        let corpus = dir.appendingPathComponent("corpus.txt")
        for (file, reason) in files {
            let bytes = try Data(contentsOf: file)
            try assertCleanFailure(["text", "sample", "--checkpoint", file.path, "--length", "10"], code: 2, mentions: [file.path, reason])
            try assertCleanFailure(["text", "train", "--corpus", corpus.path, "--resume", file.path, "--steps", "9"],
                                   code: 2, mentions: [file.path, reason])
            try assertCleanFailure(["text", "train", "--corpus", corpus.path, "--resume", file.path, "--steps", "9",
                                    "--output", dir.appendingPathComponent("elsewhere").path], code: 2, mentions: [file.path])
            XCTAssertEqual(try Data(contentsOf: file), bytes, "\(file.lastPathComponent) was modified")
        }
        // A missing checkpoint and a directory.
        try assertCleanFailure(["text", "sample", "--checkpoint", dir.appendingPathComponent("none.safetensors").path],
                               code: 2, mentions: ["none.safetensors"])
        try assertCleanFailure(["text", "sample", "--checkpoint", bad.path], code: 2, mentions: [bad.path])
        XCTAssertEqual(try Data(contentsOf: good), goodBytes)
    }

    /// A resume on another corpus (here the same characters in reverse order) is refused with exit
    /// code 2, naming the corpus and the checkpoint, and leaves the run folder as it was (bug: it
    /// trained on the other text with the run's vocabulary and exited 0).
    func testResumeWithAnotherCorpusIsRefused() throws {
        let ckpt = try trainTiny()
        let run = ckpt.deletingLastPathComponent()
        let other = try write(String(Self.corpusText.reversed()), "other.txt")
        func contents() throws -> [String: Data] {
            var out: [String: Data] = [:]
            for name in try FileManager.default.subpathsOfDirectory(atPath: run.path).sorted() {
                var isDir: ObjCBool = false
                let p = run.appendingPathComponent(name).path
                if FileManager.default.fileExists(atPath: p, isDirectory: &isDir), !isDir.boolValue { out[name] = FileManager.default.contents(atPath: p) }
            }
            return out
        }
        let before = try contents()
        try assertCleanFailure(["text", "train", "--corpus", other.path, "--resume", ckpt.path, "--steps", "10"], code: 2,
                               mentions: [other.path, ckpt.path, "is not the data this run was trained on", "exact resume needs the same data"])
        XCTAssertEqual(try contents(), before, "the run folder changed")
        let r = try gen(["text", "train", "--corpus", dir.appendingPathComponent("corpus.txt").path, "--resume", ckpt.path, "--steps", "10"])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    // MARK: Standard output and error that cannot be written

    /// Runs gen through `sh -c 'exec gen ARGS REDIRECTIONS'` (e.g. `>/dev/full`, `2>&-`), in `dir`,
    /// collecting whichever of stdout and stderr is not redirected.
    func genRedirected(_ args: [String], _ redirections: String) throws -> RunResult {
        try gen(["-c", "exec \"$0\" \"$@\" \(redirections)", binary.path] + args, executable: URL(fileURLWithPath: "/bin/sh"))
    }

    /// A full or closed stdout or stderr is no crash (Foundation's `FileHandle.write` trapped:
    /// "Illegal instruction", exit 132): a lost progress message does not stop training, lost
    /// results are a failed run (exit 1, said on stderr), and a closed stdout's descriptor is not
    /// reused for a file gen writes (printed text would land in it).
    func testUnwritableStandardStreams() throws {
        let ckpt = try trainTiny()
        let sample = ["text", "sample", "--checkpoint", ckpt.path, "--length", "5"]
        let full = try genRedirected(sample, ">/dev/full")
        XCTAssertEqual(full.status, 1, full.stderr)
        XCTAssertTrue(full.stderr.contains("gen: error: writing to standard output failed: No space left on device"), full.stderr)
        let closed = try genRedirected(sample, ">&-")
        XCTAssertEqual(closed.status, 1, closed.stderr)
        XCTAssertTrue(closed.stderr.contains("writing to standard output failed: Bad file descriptor"), closed.stderr)
        let info = try genRedirected(["image", "info", "nonexistent.png"], "2>&-")
        XCTAssertEqual(info.status, 2)
        XCTAssertTrue(info.out.contains("nonexistent.png"), info.out)
        let corpus = dir.appendingPathComponent("corpus.txt").path
        let train = ["text", "train", "--corpus", corpus, "--steps", "3", "--units", "8", "--seq-length", "8", "--batch-size", "4",
                     "--sample-length", "20", "--output"]
        for (i, redirection) in ["2>/dev/full", "2>&-", ">&- 2>&-"].enumerated() {
            let out = dir.appendingPathComponent("streams-\(i)")
            let r = try genRedirected(train + [out.path], redirection)
            // Training completes and checkpoints; only a closed stdout (lost results) fails the run.
            XCTAssertEqual(r.status, redirection.hasPrefix(">&-") ? 1 : 0, "\(redirection): \(r.stderr)")
            let resumed = try gen(["text", "train", "--corpus", corpus, "--resume", out.appendingPathComponent("checkpoint.safetensors").path,
                                   "--steps", "4"])
            XCTAssertEqual(resumed.status, 0, "\(redirection): \(resumed.stderr)")
            let record = try String(contentsOf: out.appendingPathComponent("run.json"), encoding: .utf8)
            XCTAssertFalse(record.contains("wrote checkpoint"), "printed text landed in run.json")
        }
        // A reader that goes after the first step (`2>&1 | grep -q …`; Ctrl-C on `| tee` ends tee first): the
        // run stops cleanly with its checkpoint (SIGPIPE asks for the clean stop), instead of dying
        // at its next message or training on unseen; it then ends by SIGPIPE (141).
        let piped = dir.appendingPathComponent("streams-pipe")
        let p = try gen(["-c", "\"$0\" \"$@\" 2>&1 | grep -q '^step 1/'", binary.path]
                        + train + [piped.path, "--steps", "1000000"], executable: URL(fileURLWithPath: "/bin/sh"))
        XCTAssertEqual(p.status, 0, p.stderr)
        let record = try String(contentsOf: piped.appendingPathComponent("run.json"), encoding: .utf8)
        XCTAssertTrue(record.contains("\"interrupted\""), record)
        XCTAssertTrue(FileManager.default.fileExists(atPath: piped.appendingPathComponent("checkpoint.safetensors").path))
    }

    // MARK: Sampling options

    func testPrimeWithUnknownCharacters() throws {
        let ckpt = try trainTiny()
        try assertCleanFailure(["text", "sample", "--checkpoint", ckpt.path, "--prime", "the Zebra€", "--length", "5"],
                               code: 2, mentions: ["'Z'", "'€'", "U+20AC"])
        let ok = try gen(["text", "sample", "--checkpoint", ckpt.path, "--prime", "the Zebra€", "--skip-unknown", "--length", "5", "--raw"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(ok.out.unicodeScalars.count, 6)
        try assertCleanFailure(["text", "sample", "--checkpoint", ckpt.path, "--prime", "ZZZ", "--skip-unknown", "--length", "5"],
                               code: 2, mentions: ["vocabulary"])
        // --prime-file: missing file and invalid UTF-8.
        try assertCleanFailure(["text", "sample", "--checkpoint", ckpt.path, "--prime-file", dir.appendingPathComponent("p.txt").path],
                               code: 2, mentions: ["p.txt"])
        let badPrime = dir.appendingPathComponent("bad-prime.txt")
        try Data([0x74, 0x68, 0xC3]).write(to: badPrime)
        try assertCleanFailure(["text", "sample", "--checkpoint", ckpt.path, "--prime-file", badPrime.path],
                               code: 2, mentions: [badPrime.path, "byte offset 2"])
        // An empty prime (file or option) is named as the prime, not as a corpus.
        let emptyPrime = try write("", "empty-prime.txt")
        try assertCleanFailure(["text", "sample", "--checkpoint", ckpt.path, "--prime-file", emptyPrime.path],
                               code: 2, mentions: [emptyPrime.path, "the prime file is empty"])
        try assertCleanFailure(["text", "sample", "--checkpoint", ckpt.path, "--prime", ""], code: 2, mentions: ["--prime is empty"])
        let goodPrime = try write("the cat\r\n", "prime.txt")
        let fromFile = try gen(["text", "sample", "--checkpoint", ckpt.path, "--prime-file", goodPrime.path, "--length", "4"])
        XCTAssertEqual(fromFile.status, 0, fromFile.stderr)
        XCTAssertTrue(fromFile.out.contains("the cat\n"), fromFile.out)
    }

    /// `gen image convert`: a PNG to a JPEG; a folder or a write-protected file where the output
    /// goes is refused before decoding, with the reason in plain words, and nothing is written.
    func testImageConvertAndItsRefusals() throws {
        var px = [Float](repeating: 0, count: 12 * 10 * 3)
        for i in px.indices { px[i] = Float(i % 7) / 7 }
        let input = dir.appendingPathComponent("in.png")
        try Image(width: 12, height: 10, channels: 3, pixels: px).write(to: input.path)
        let jpg = dir.appendingPathComponent("out.jpg")
        let ok = try gen(["image", "convert", input.path, jpg.path])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(try Image(contentsOf: jpg.path).width, 12)
        let folder = dir.appendingPathComponent("isdir.png")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
        try assertCleanFailure(["image", "convert", input.path, folder.path], code: 2, mentions: ["isdir.png", "a folder is there"])
        try assertCleanFailure(["image", "convert", input.path, dir.path], code: 2, mentions: ["is a folder"])
        try assertCleanFailure(["image", "convert", input.path, dir.appendingPathComponent("no/such/out.png").path], code: 2,
                               mentions: ["the folder \(dir.appendingPathComponent("no/such").path) does not exist"])
        try assertCleanFailure(["image", "convert", input.path, jpg.path, "--bit-depth", "16"], code: 2,
                               mentions: ["--bit-depth 16 is for PNG output"])
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: jpg.path)
        let before = try Data(contentsOf: jpg)
        try assertCleanFailure(["image", "convert", input.path, jpg.path, "--quality", "50"], code: 2, mentions: ["out.jpg", "write-protected"])
        XCTAssertEqual(try Data(contentsOf: jpg), before)
    }

    /// Dropout sits between stacked LSTM layers: with one layer it does nothing, and gen says so.
    func testDropoutWithOneLayerWarns() throws {
        let corpus = try write(Self.corpusText, "corpus.txt")
        let base = ["text", "train", "--corpus", corpus.path, "--steps", "2", "--units", "8", "--seq-length", "8",
                    "--batch-size", "4", "--sample-length", "5", "--dropout", "0.5"]
        let one = try gen(base + ["--output", dir.appendingPathComponent("one").path])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertTrue(one.stderr.contains("--dropout 0.5 has no effect with one LSTM layer"), one.stderr)
        let two = try gen(base + ["--layers", "2", "--output", dir.appendingPathComponent("two").path])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertFalse(two.stderr.contains("has no effect"), two.stderr)
    }

    func testOptionErrorsThroughTheBinary() throws {
        let ckpt = try trainTiny()
        let corpus = dir.appendingPathComponent("corpus.txt").path
        for args in [["text", "sample", "--checkpoint", ckpt.path, "--temperature", "-1"],
                     ["text", "sample", "--checkpoint", ckpt.path, "--top-p", "0"],
                     ["text", "sample", "--checkpoint", ckpt.path, "--prime", "a", "--prime-file", corpus],
                     ["text", "train", "--corpus", corpus, "--batch-size", "0"],
                     ["text", "train", "--corpus", corpus, "--dropout", "1"],
                     ["text", "train", "--corpus", corpus, "--optimizer", "adagrad"],
                     ["text", "train", "--corpus", corpus, "--bogus"]] {
            try assertCleanFailure(args, code: 2, mentions: [])
        }
        let t0 = try gen(["text", "sample", "--checkpoint", ckpt.path, "--temperature", "0", "--length", "20", "--raw"])
        XCTAssertEqual(t0.status, 0, t0.stderr)
        let t0b = try gen(["text", "sample", "--checkpoint", ckpt.path, "--temperature", "0", "--length", "20", "--raw", "--seed", "9"])
        XCTAssertEqual(t0.stdout, t0b.stdout, "T=0 must be greedy whatever the seed")
        let help = try gen(["text", "train", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.out.contains("--corpus"))
    }

    /// case26 and case21 through the binary.
    func testCasesThroughTheBinary() throws {
        guard let cases = cliCasesDirectory() else { throw XCTSkip("shared cases not found") }
        for (name, check) in [("case26_single_char.txt", "a"), ("case21_utf8_multilang.txt", "")] {
            let out = dir.appendingPathComponent(name)
            let r = try gen(["text", "train", "--corpus", cases + "/inputs/" + name, "--steps", "3", "--units", "8",
                             "--seq-length", "8", "--batch-size", "4", "--sample-length", "30", "--output", out.path, "--quiet"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertFalse(r.out.lowercased().contains("nan"), r.out)
            for t in ["1.0", "0.01", "0"] {
                let s = try gen(["text", "sample", "--checkpoint", out.appendingPathComponent("checkpoint.safetensors").path,
                                 "--length", "40", "--temperature", t, "--raw"])
                XCTAssertEqual(s.status, 0, s.stderr)
                XCTAssertNil(TextCorpus.firstInvalidUTF8Offset(s.stdout))
                XCTAssertFalse(s.out.unicodeScalars.contains("\u{FFFD}"))
                XCTAssertEqual(s.out.unicodeScalars.count, 41)
                if !check.isEmpty { XCTAssertEqual(s.out, String(repeating: "a", count: 40) + "\n") }
            }
        }
    }
}
