import Foundation
import GenTensor
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

// MARK: - Registry

/// A pretrained network whose official weights gen knows how to find and download.
public struct PretrainedNetwork: Equatable, Sendable {
    /// The canonical name (torchvision's model function): `vgg19`, `inception_v3`, ...
    public let name: String
    /// Other names accepted on the command line (`vgg`, `inception`, ...).
    public let aliases: [String]
    /// torchvision's official download URL.
    public let url: URL
    /// The expected SHA-256 of the file, lowercase hex: either the full 64 digits, or the
    /// 8-digit prefix that torchvision embeds in the file name (`vgg19-dcbb9e9d.pth`), which
    /// is what torchvision's own `check_hash` verifies.
    public let sha256: String
    /// One line on what the network is used for in gen.
    public let summary: String

    /// The file name in the cache folder: the URL's last component (`vgg19-dcbb9e9d.pth`).
    public var fileName: String { url.lastPathComponent }

    /// Whether ``sha256`` is only torchvision's 8-digit prefix rather than the full digest.
    public var isHashPrefix: Bool { sha256.count < 64 }

    /// Whether `hexDigest` (a full SHA-256, lowercase hex) matches ``sha256``.
    public func matches(hexDigest: String) -> Bool {
        WeightsRegistry.digest(hexDigest, matches: sha256)
    }
}

/// The pretrained networks gen uses, where their weights are cached, and how to find them.
///
/// URLs and hashes are torchvision's (`torchvision/models/*.py`, the `url` of each
/// `Weights.IMAGENET1K_V1`). torchvision names each file `<model>-<first 8 hex digits of its
/// SHA-256>.pth` and checks only that prefix when downloading (`torch.hub.check_hash`); the
/// registry stores those 8-digit prefixes, and the download is verified against them the same
/// way (see ``PretrainedNetwork/sha256``).
///
/// The cache folder is `$GEN_WEIGHTS` when set, otherwise `~/.cache/gen/weights`.
public enum WeightsRegistry {
    /// The known networks, in listing order.
    public static let networks: [PretrainedNetwork] = [
        PretrainedNetwork(
            name: "squeezenet1_0", aliases: ["squeezenet"],
            url: URL(string: "https://download.pytorch.org/models/squeezenet1_0-b66bff10.pth")!,
            sha256: "b66bff10", summary: "SqueezeNet 1.0, ImageNet classifier (5 MB)"),
        PretrainedNetwork(
            name: "squeezenet1_1", aliases: [],
            url: URL(string: "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth")!,
            sha256: "b8a52dc0", summary: "SqueezeNet 1.1, ImageNet classifier (5 MB)"),
        PretrainedNetwork(
            name: "vgg16", aliases: [],
            url: URL(string: "https://download.pytorch.org/models/vgg16-397923af.pth")!,
            sha256: "397923af", summary: "VGG16, ImageNet classifier (528 MB)"),
        PretrainedNetwork(
            name: "vgg19", aliases: ["vgg"],
            url: URL(string: "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth")!,
            sha256: "dcbb9e9d", summary: "VGG19, ImageNet classifier; features for style transfer (548 MB)"),
        PretrainedNetwork(
            name: "inception_v3", aliases: ["inception"],
            url: URL(string: "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth")!,
            sha256: "0cc3c7bd", summary: "Inception v3 (Google's weights); layers for DeepDream (104 MB)"),
    ]

    /// The environment variable that overrides the cache folder.
    public static let cacheEnvironmentVariable = "GEN_WEIGHTS"

    /// The network called `name` or one of its aliases (case-insensitive), or `nil`.
    public static func network(named name: String) -> PretrainedNetwork? {
        let key = name.lowercased()
        return networks.first { $0.name == key || $0.aliases.contains(key) }
    }

    /// The network called `name`, or ``PretrainedError/Kind/unknownNetwork(_:known:)``.
    public static func requireNetwork(named name: String) throws -> PretrainedNetwork {
        guard let n = network(named: name) else {
            throw PretrainedError(file: name, kind: .unknownNetwork(name, known: networks.map(\.name)))
        }
        return n
    }

    /// The cache folder: `$GEN_WEIGHTS` when set and not empty, otherwise `~/.cache/gen/weights`.
    public static func cacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let dir = environment[cacheEnvironmentVariable], !dir.isEmpty {
            return URL(fileURLWithPath: (dir as NSString).expandingTildeInPath, isDirectory: true)
        }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".cache/gen/weights", isDirectory: true)
    }

    /// The files accepted for `network` in `directory`, in order of preference: torchvision's
    /// file name (`vgg19-dcbb9e9d.pth`, what `gen weights download` writes), then
    /// `<name>.pth` and `<name>.safetensors` (for files converted or copied by hand).
    public static func candidateFiles(for network: PretrainedNetwork, in directory: URL) -> [URL] {
        [network.fileName, network.name + ".pth", network.name + ".safetensors"].map {
            directory.appendingPathComponent($0, isDirectory: false)
        }
    }

    /// The cached weights file for `network` in `directory`, or `nil`.
    public static func cachedFile(for network: PretrainedNetwork, in directory: URL? = nil) -> URL? {
        let dir = directory ?? cacheDirectory()
        return candidateFiles(for: network, in: dir).first { isRegularFile($0) }
    }

    /// The weights file to load for `network`: `explicit` (from `--weights FILE`) when given,
    /// otherwise the cached file (``cachedFile(for:in:)``).
    ///
    /// The cached file is not re-hashed here (it was verified when downloaded).
    /// - Throws: ``PretrainedError``: ``PretrainedError/Kind/fileNotFound`` when `explicit`
    ///   does not exist; ``PretrainedError/Kind/unknownNetwork(_:known:)``;
    ///   ``PretrainedError/Kind/weightsNotFound(_:)`` whose message says how to get the file
    ///   (`gen weights download NAME`, the URL to fetch by hand into the cache folder, or
    ///   `--weights FILE`).
    public static func resolveWeights(network name: String, explicit: URL?,
                                      cacheDirectory directory: URL? = nil) throws -> URL {
        if let url = explicit {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
                throw PretrainedError(file: url.path, kind: .fileNotFound)
            }
            if isDirectory.boolValue { throw PretrainedError(file: url.path, kind: .notARegularFile) }
            return url
        }
        let network = try requireNetwork(named: name)
        let dir = directory ?? cacheDirectory()
        if let found = cachedFile(for: network, in: dir) { return found }
        let how = """
            no pretrained weights for '\(network.name)' in the cache folder \(dir.path). Get them with one of:
              gen weights download \(network.name)
              download \(network.url.absoluteString) into \(dir.path)/ (set \(cacheEnvironmentVariable) to use another folder)
              pass --weights FILE (a torchvision .pth or a .safetensors file with the same tensor names)
            """
        throw PretrainedError(file: network.name, kind: .weightsNotFound(how))
    }

    static func isRegularFile(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    /// Whether a full lowercase-hex digest matches `expected` (full, or a prefix of at least 8 digits).
    public static func digest(_ hexDigest: String, matches expected: String) -> Bool {
        let e = expected.lowercased()
        guard e.count >= 8, e.count <= 64, e.allSatisfy({ $0.isHexDigit }) else { return false }
        return hexDigest.lowercased().hasPrefix(e)
    }

    /// The SHA-256 of the file at `url`, lowercase hex, read in 1 MB chunks.
    public static func sha256Hex(ofFileAt url: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(chunk)
        }
        return hasher.finalizeHex()
    }
}

// MARK: - Download

/// Downloads weights into the cache folder, verified and renamed into place atomically.
public enum WeightsDownloader {
    /// Progress: bytes received so far, and the total when the server announced it.
    public typealias Progress = (_ received: Int64, _ total: Int64?) -> Void

    /// Downloads `network`'s weights into `directory` (default: the cache folder) and returns
    /// the final file, `<directory>/<network.fileName>`.
    ///
    /// The bytes go to a hidden temporary file in `directory` while their SHA-256 is computed;
    /// the temporary file is fsynced and renamed over the final name only when the digest
    /// matches. On any failure (network, HTTP status other than 200, checksum) the temporary
    /// file is deleted and an existing file at the final name is left untouched.
    ///
    /// - Parameters:
    ///   - url: where to download from (default: ``PretrainedNetwork/url``); `http(s)://` or
    ///     `file://`. Tests point it at a local server.
    ///   - expectedSHA256: the digest to verify, full or a prefix of at least 8 hex digits
    ///     (default: ``PretrainedNetwork/sha256``).
    ///   - timeout: seconds without data before giving up.
    /// - Throws: ``PretrainedError``: ``PretrainedError/Kind/downloadFailed(_:)`` or
    ///   ``PretrainedError/Kind/checksumMismatch(expected:found:)``.
    @discardableResult
    public static func download(_ network: PretrainedNetwork, from url: URL? = nil, expectedSHA256: String? = nil,
                                into directory: URL? = nil, timeout: TimeInterval = 60,
                                progress: Progress? = nil) throws -> URL {
        let source = url ?? network.url
        let expected = (expectedSHA256 ?? network.sha256).lowercased()
        let dir = directory ?? WeightsRegistry.cacheDirectory()
        let destination = dir.appendingPathComponent(network.fileName, isDirectory: false)
        func fail(_ reason: String) -> PretrainedError {
            PretrainedError(file: source.absoluteString, kind: .downloadFailed(reason))
        }
        guard expected.count >= 8, expected.count <= 64, expected.allSatisfy({ $0.isHexDigit }) else {
            throw fail("the expected SHA-256 '\(expected)' is not 8 to 64 hex digits")
        }
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw fail("cannot create the cache folder \(dir.path): \(describeSystemError(error))")
        }
        let temporary = dir.appendingPathComponent(".\(network.fileName).\(UUID().uuidString).partial", isDirectory: false)
        // An interrupt that ends gen at once unlinks the partial download too (recorded before it exists).
        PendingTemporaryFile.set(temporary.path)
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            PendingTemporaryFile.clear()
            throw fail("cannot write to the cache folder \(dir.path)")
        }
        var keep = false
        defer {
            PendingTemporaryFile.clear()
            if !keep { try? FileManager.default.removeItem(at: temporary) }
        }
        let output: FileHandle
        do {
            output = try FileHandle(forWritingTo: temporary)
        } catch {
            throw fail("cannot write \(temporary.path): \(describeSystemError(error))")
        }
        var hasher = SHA256()
        do {
            defer { try? output.close() }
            let sink: (Data) throws -> Void = { chunk in
                hasher.update(chunk)
                try output.write(contentsOf: chunk)
            }
            if source.isFileURL {
                try copyFile(source, sink: sink, progress: progress, fail: fail)
            } else {
                try HTTPDownload(url: source, timeout: timeout, sink: sink, progress: progress).run(fail: fail)
            }
            try output.synchronize()
        } catch let e as PretrainedError {
            throw e
        } catch {
            throw fail("cannot write \(temporary.path): \(describeSystemError(error))")
        }
        let digest = hasher.finalizeHex()
        guard WeightsRegistry.digest(digest, matches: expected) else {
            throw PretrainedError(file: source.absoluteString, kind: .checksumMismatch(expected: expected, found: digest))
        }
        guard rename(temporary.path, destination.path) == 0 else {
            throw fail("cannot move the download to \(destination.path): \(String(cString: strerror(errno)))")
        }
        keep = true
        return destination
    }

    private static func copyFile(_ source: URL, sink: (Data) throws -> Void, progress: Progress?,
                                 fail: (String) -> PretrainedError) throws {
        let input: FileHandle
        do {
            input = try FileHandle(forReadingFrom: source)
        } catch {
            throw fail("cannot read \(source.path): \(describeSystemError(error))")
        }
        defer { try? input.close() }
        var received: Int64 = 0
        while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
            try sink(chunk)
            received += Int64(chunk.count)
            progress?(received, nil)
        }
    }
}

/// One HTTP(S) GET streamed to a sink through URLSession, waited for synchronously.
/// `@unchecked Sendable`: the delegate runs on one serial queue while the caller waits on `done`.
private final class HTTPDownload: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let url: URL
    let timeout: TimeInterval
    let sink: (Data) throws -> Void
    let progress: WeightsDownloader.Progress?
    private let done = DispatchSemaphore(value: 0)
    private var failure: String?
    private var received: Int64 = 0
    private var total: Int64?

    init(url: URL, timeout: TimeInterval, sink: @escaping (Data) throws -> Void, progress: WeightsDownloader.Progress?) {
        self.url = url
        self.timeout = timeout
        self.sink = sink
        self.progress = progress
    }

    func run(fail: (String) -> PretrainedError) throws {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let session = URLSession(configuration: configuration, delegate: self, delegateQueue: queue)
        let task = session.dataTask(with: URLRequest(url: url))
        task.resume()
        done.wait()
        session.finishTasksAndInvalidate()
        if let f = failure { throw fail(f) }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        if let http = response as? HTTPURLResponse, http.statusCode != 200 {
            failure = "the server answered HTTP \(http.statusCode) (\(HTTPURLResponse.localizedString(forStatusCode: http.statusCode)))"
            completionHandler(.cancel)
            return
        }
        // With a Content-Encoding the announced length is the encoded one: do not compare it.
        let encoded = (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Content-Encoding").map { $0 != "identity" } ?? false
        if response.expectedContentLength >= 0 && !encoded { total = response.expectedContentLength }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard failure == nil else { return }
        do {
            try sink(data)
            received += Int64(data.count)
            progress?(received, total)
        } catch {
            failure = "cannot write the download: \(describeSystemError(error))"
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if failure == nil, let error = error {
            let nsError = error as NSError
            failure = "\(nsError.localizedDescription) (no network? download \(url.absoluteString) elsewhere and pass --weights FILE, or copy it into the cache folder)"
        }
        if failure == nil, let total = total, received != total {
            failure = "the connection closed after \(received) of \(total) bytes"
        }
        done.signal()
    }
}

// MARK: - SHA-256

/// SHA-256 (FIPS 180-4), streaming. Small and dependency-free; used to verify downloads.
struct SHA256 {
    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
    private var buffer: [UInt8] = []
    private var length: UInt64 = 0

    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    init() {}

    mutating func update(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        length &+= UInt64(bytes.count)
        var i = 0
        if !buffer.isEmpty {
            let n = min(64 - buffer.count, bytes.count)
            buffer.append(contentsOf: bytes[0..<n])
            i = n
            if buffer.count == 64 {
                let block = buffer
                block.withUnsafeBytes { compress($0.baseAddress!) }
                buffer.removeAll(keepingCapacity: true)
            }
        }
        guard let base = bytes.baseAddress else { return }
        while bytes.count - i >= 64 {
            compress(base + i)
            i += 64
        }
        if i < bytes.count { buffer.append(contentsOf: bytes[i...]) }
    }

    /// The digest as 64 lowercase hex digits (the hasher should not be used afterwards).
    mutating func finalizeHex() -> String {
        finalize().map { String(format: "%02x", $0) }.joined()
    }

    mutating func finalize() -> [UInt8] {
        let bits = length &* 8
        var tail = buffer
        tail.append(0x80)
        while tail.count % 64 != 56 { tail.append(0) }
        for s in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(s))) }
        tail.withUnsafeBytes { raw in
            var j = 0
            while j < raw.count { compress(raw.baseAddress! + j); j += 64 }
        }
        buffer = []
        var out: [UInt8] = []
        for v in [state.0, state.1, state.2, state.3, state.4, state.5, state.6, state.7] {
            out += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
        }
        return out
    }

    @inline(__always) private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }

    private mutating func compress(_ p: UnsafeRawPointer) {
        var w = [UInt32](repeating: 0, count: 64)
        w.withUnsafeMutableBufferPointer { w in
            for t in 0..<16 {
                w[t] = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4 * t, as: UInt32.self))
            }
            for t in 16..<64 {
                let s0 = Self.rotr(w[t - 15], 7) ^ Self.rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
                let s1 = Self.rotr(w[t - 2], 17) ^ Self.rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
                w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, h) = state
            Self.k.withUnsafeBufferPointer { k in
                for t in 0..<64 {
                    let s1 = Self.rotr(e, 6) ^ Self.rotr(e, 11) ^ Self.rotr(e, 25)
                    let ch = (e & f) ^ (~e & g)
                    let t1 = h &+ s1 &+ ch &+ k[t] &+ w[t]
                    let s0 = Self.rotr(a, 2) ^ Self.rotr(a, 13) ^ Self.rotr(a, 22)
                    let maj = (a & b) ^ (a & c) ^ (b & c)
                    let t2 = s0 &+ maj
                    h = g; g = f; f = e; e = d &+ t1
                    d = c; c = b; b = a; a = t1 &+ t2
                }
            }
            state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d,
                     state.4 &+ e, state.5 &+ f, state.6 &+ g, state.7 &+ h)
        }
    }
}
