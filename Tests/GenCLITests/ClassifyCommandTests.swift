import Foundation
import XCTest

/// `gen classify` through the built binary with the real SqueezeNet 1.0 weights of ../shared/data.
final class ClassifyCommandTests: XCTestCase {
    func runGen(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        guard let binary = genBinary() else { throw XCTSkip("the gen executable was not found (build it, or set GEN_BINARY)") }
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        var outData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    /// Every unusable file is reported, the good ones are still classified as the torchvision
    /// reference says (parrot.jpg → macaw first), and the exit status is 2.
    func testBadFilesAreAllReportedAndGoodOnesClassified() throws {
        guard let data = dreamDataDirectory() else { throw XCTSkip("shared data not found (set GEN_DATA or provide ../shared/data)") }
        let cases = data.deletingLastPathComponent().appendingPathComponent("cases/inputs")
        let weights = data.appendingPathComponent("weights/squeezenet1_0.pth").path
        let gif = cases.appendingPathComponent("case13_gif_named.jpg").path
        let html = cases.appendingPathComponent("case13_html_named.jpg").path
        let parrot = data.appendingPathComponent("images/content/parrot.jpg").path
        let r = try runGen(["classify", gif, parrot, html, "--weights", weights, "--top", "1"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("case13_gif_named.jpg") && r.stderr.contains("GIF"), r.stderr)
        XCTAssertTrue(r.stderr.contains("case13_html_named.jpg"), r.stderr)
        XCTAssertTrue(r.stdout.contains("parrot.jpg") && r.stdout.contains("macaw"), r.stdout)
        // Nothing usable: exit 2 and nothing on stdout.
        let none = try runGen(["classify", gif, "--weights", weights])
        XCTAssertEqual(none.status, 2)
        XCTAssertEqual(none.stdout, "")
        // The decompression-bomb limit names --max-pixels, which classify has.
        let small = try runGen(["classify", parrot, "--weights", weights, "--max-pixels", "1000"])
        XCTAssertEqual(small.status, 2, small.stderr)
        XCTAssertTrue(small.stderr.contains("parrot.jpg") && small.stderr.contains("--max-pixels"), small.stderr)
    }
}
