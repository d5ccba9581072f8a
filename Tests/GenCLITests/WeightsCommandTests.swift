import ArgumentParser
import Foundation
import XCTest
@testable import GenCLI
import GenNN

/// `gen weights list` and `gen weights download`, against a local HTTP server on loopback
/// (Python's http.server on a free port; skipped when python3 is missing).
final class WeightsCommandTests: XCTestCase {
    var server: Process?
    var serverRoot: URL!
    var baseURL: String = ""
    var cache: URL!

    override func setUpWithError() throws {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("gen-weights-\(UUID().uuidString)")
        serverRoot = root.appendingPathComponent("www")
        cache = root.appendingPathComponent("cache")
        try fm.createDirectory(at: serverRoot, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: root) }
    }

    override func tearDown() {
        if let s = server, s.isRunning {
            s.terminate()
            s.waitUntilExit()
        }
        server = nil
    }

    /// Starts `python3 -m http.server`-style serving of `serverRoot` on 127.0.0.1, port chosen by
    /// the OS, and sets `baseURL`.
    func startServer() throws {
        let candidates = ["/usr/bin/python3", "/usr/local/bin/python3"] +
            (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/python3" }
        guard let python = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("python3 not found: no local HTTP server")
        }
        let script = """
            import functools, http.server, sys
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
            handler.func.log_message = lambda *a: None
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            print(server.server_address[1], flush=True)
            server.serve_forever()
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", script, serverRoot.path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        server = p
        // The first line is the port.
        var line = Data()
        let deadline = Date().addingTimeInterval(20)
        while !line.contains(0x0A), Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw XCTSkip("the local HTTP server did not start")
        }
        baseURL = "http://127.0.0.1:\(port)"
    }

    /// Parses and runs `gen weights ARGS`; returns the exit code (0 on success).
    @discardableResult
    func run(_ arguments: [String]) throws -> Int32 {
        var command = try WeightsCommand.parseAsRoot(arguments)
        do {
            try command.run()
            return 0
        } catch let e as ExitCode {
            return e.rawValue
        }
    }

    func leftovers() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: cache.path)) ?? []).filter { $0.hasSuffix(".partial") }
    }

    func payload(_ size: Int) -> Data {
        Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
    }

    // MARK: Download

    func testDownloadVerifiesAndRenamesIntoPlace() throws {
        try startServer()
        let body = payload(300_000)
        try body.write(to: serverRoot.appendingPathComponent("sq.pth"))
        let digest = try WeightsRegistry.sha256Hex(ofFileAt: serverRoot.appendingPathComponent("sq.pth"))

        let code = try run(["download", "squeezenet", "--url", "\(baseURL)/sq.pth", "--sha256", digest,
                            "--cache-dir", cache.path, "--quiet"])
        XCTAssertEqual(code, 0)
        let saved = cache.appendingPathComponent("squeezenet1_0-b66bff10.pth")
        XCTAssertEqual(try Data(contentsOf: saved), body)
        XCTAssertEqual(leftovers(), [])

        // A prefix of the digest is enough (torchvision's convention), and a cached file is kept
        // unless --force.
        try Data("other".utf8).write(to: serverRoot.appendingPathComponent("sq.pth"))
        XCTAssertEqual(try run(["download", "squeezenet1_0", "--url", "\(baseURL)/sq.pth",
                                "--sha256", String(digest.prefix(8)), "--cache-dir", cache.path, "--quiet"]), 0)
        XCTAssertEqual(try Data(contentsOf: saved), body, "already cached: not downloaded again")

        // resolveWeights now finds it; the listing says it is cached.
        XCTAssertEqual(try WeightsRegistry.resolveWeights(network: "squeezenet", explicit: nil, cacheDirectory: cache).path, saved.path)
        let listing = WeightsCommand.listing(cacheDirectory: cache)
        XCTAssertTrue(listing.contains("cached:  \(saved.path)"), listing)
    }

    func testChecksumMismatchKeepsNothing() throws {
        try startServer()
        try payload(50_000).write(to: serverRoot.appendingPathComponent("bad.pth"))
        // No --sha256: the registered torchvision prefix (b66bff10) must match, and does not.
        let code = try run(["download", "squeezenet", "--url", "\(baseURL)/bad.pth", "--cache-dir", cache.path, "--quiet"])
        XCTAssertEqual(code, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache.appendingPathComponent("squeezenet1_0-b66bff10.pth").path))
        XCTAssertEqual(leftovers(), [])

        // The library error says what happened.
        let network = WeightsRegistry.network(named: "squeezenet")!
        XCTAssertThrowsError(try WeightsDownloader.download(network, from: URL(string: "\(baseURL)/bad.pth")!, into: cache)) { error in
            guard case .checksumMismatch(let expected, let found) = (error as? PretrainedError)?.kind else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(expected, "b66bff10")
            XCTAssertEqual(found.count, 64)
            XCTAssertTrue("\(error)".contains("the file was not kept"))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.path), [])
    }

    func testHTTPErrorAndRefusedConnection() throws {
        try startServer()
        let network = WeightsRegistry.network(named: "vgg19")!
        XCTAssertThrowsError(try WeightsDownloader.download(network, from: URL(string: "\(baseURL)/missing.pth")!, into: cache)) { error in
            guard case .downloadFailed(let reason) = (error as? PretrainedError)?.kind else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("404"), reason)
        }
        XCTAssertEqual(leftovers(), [])

        // A port nobody listens on: the server's port after it stopped.
        server?.terminate()
        server?.waitUntilExit()
        XCTAssertEqual(try run(["download", "vgg", "--url", "\(baseURL)/x.pth", "--cache-dir", cache.path, "--quiet"]), 1)
        XCTAssertThrowsError(try WeightsDownloader.download(network, from: URL(string: "\(baseURL)/x.pth")!, into: cache, timeout: 10)) { error in
            guard case .downloadFailed(let reason) = (error as? PretrainedError)?.kind else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("--weights FILE"), reason)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache.appendingPathComponent(network.fileName).path))
        XCTAssertEqual(leftovers(), [])
    }

    func testFileURLDownload() throws {
        let source = serverRoot.appendingPathComponent("local.pth")
        try payload(1000).write(to: source)
        let digest = try WeightsRegistry.sha256Hex(ofFileAt: source)
        XCTAssertEqual(try run(["download", "inception", "--url", source.absoluteString, "--sha256", digest,
                                "--cache-dir", cache.path, "--quiet"]), 0)
        XCTAssertEqual(try Data(contentsOf: cache.appendingPathComponent("inception_v3_google-0cc3c7bd.pth")), try Data(contentsOf: source))
    }

    // MARK: Arguments and listing

    func testUnknownNetworkAndBadOptions() throws {
        XCTAssertEqual(try run(["download", "alexnet", "--cache-dir", cache.path]), 2)
        XCTAssertThrowsError(try WeightsCommand.parseAsRoot(["download", "vgg", "--sha256", "xyz"]))
        XCTAssertThrowsError(try WeightsCommand.parseAsRoot(["download", "vgg", "--url", "not a url"]))
        XCTAssertThrowsError(try WeightsCommand.parseAsRoot(["download"]))
        XCTAssertEqual(WeightsCommand.configuration.commandName, "weights")
    }

    func testListing() throws {
        let listing = WeightsCommand.listing(cacheDirectory: cache)
        for n in WeightsRegistry.networks {
            XCTAssertTrue(listing.contains(n.name), n.name)
            XCTAssertTrue(listing.contains(n.url.absoluteString), n.name)
            XCTAssertTrue(listing.contains("sha256:  \(n.sha256)"), n.name)
            for a in n.aliases { XCTAssertTrue(listing.contains(a), a) }
        }
        XCTAssertTrue(listing.contains("cached:  no (gen weights download vgg19)"), listing)
        XCTAssertTrue(listing.contains(cache.path))
        XCTAssertEqual(try run(["list", "--cache-dir", cache.path]), 0)
    }
}
