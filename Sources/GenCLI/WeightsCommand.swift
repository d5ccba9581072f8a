import ArgumentParser
import Foundation
import GenNN

/// `gen weights list` and `gen weights download NAME`: the pretrained networks gen knows
/// (``GenNN/WeightsRegistry``) and their cached files.
struct WeightsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weights",
        abstract: "List and download the pretrained weights gen uses (torchvision's official files).",
        discussion: """
            Weights are cached in $\(WeightsRegistry.cacheEnvironmentVariable), or ~/.cache/gen/weights when it is not set. \
            Commands that need weights look there, or take --weights FILE (a .pth or .safetensors file).
            """,
        subcommands: [List.self, Download.self]
    )

    init() {}

    /// The cache folder: `--cache-dir` when given, otherwise ``GenNN/WeightsRegistry/cacheDirectory(environment:)``.
    static func cacheDirectory(_ option: String?) -> URL {
        if let dir = option, !dir.isEmpty {
            return URL(fileURLWithPath: (dir as NSString).expandingTildeInPath, isDirectory: true)
        }
        return WeightsRegistry.cacheDirectory()
    }

    /// Runs `body`, printing a `PretrainedError` as `gen: error: ...` and exiting with 2 for
    /// bad input (unknown network, bad option) or 1 for a failed download.
    static func reporting(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as PretrainedError {
            printError("gen: error: \(e)")
            switch e.kind {
            case .downloadFailed, .checksumMismatch: throw ExitCode(1)
            default: throw ExitCode(2)
            }
        }
    }

    /// The text of `gen weights list` for the cache folder `directory`.
    static func listing(cacheDirectory directory: URL) -> String {
        var lines = ["Cache folder: \(directory.path) (set \(WeightsRegistry.cacheEnvironmentVariable) or use --cache-dir to change it)", ""]
        for n in WeightsRegistry.networks {
            let aliases = n.aliases.isEmpty ? "" : " (alias: \(n.aliases.joined(separator: ", ")))"
            lines.append("\(n.name)\(aliases): \(n.summary)")
            if let file = WeightsRegistry.cachedFile(for: n, in: directory) {
                lines.append("  cached:  \(file.path)")
            } else {
                lines.append("  cached:  no (gen weights download \(n.name))")
            }
            lines.append("  url:     \(n.url.absoluteString)")
            let note = n.isHashPrefix ? " (first \(n.sha256.count) hex digits, as in torchvision's file name)" : ""
            lines.append("  sha256:  \(n.sha256)\(note)")
        }
        return lines.joined(separator: "\n")
    }

    /// `gen weights list`.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the known networks, their download URLs and SHA-256, and whether each is cached."
        )

        @Option(name: .customLong("cache-dir"), help: "Cache folder (default: $GEN_WEIGHTS or ~/.cache/gen/weights).")
        var cacheDir: String?

        init() {}

        func run() throws {
            print(WeightsCommand.listing(cacheDirectory: WeightsCommand.cacheDirectory(cacheDir)))
        }
    }

    /// `gen weights download NAME`.
    struct Download: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "download",
            abstract: "Download a network's weights into the cache folder, verifying the SHA-256.",
            discussion: "The file is written to a temporary name and renamed into place only when its checksum matches."
        )

        @Argument(help: "Network: squeezenet1_0, squeezenet1_1, vgg16, vgg19, inception_v3 (or squeezenet, vgg, inception).")
        var name: String

        @Option(help: "Download from this URL instead of torchvision's (http, https or file).")
        var url: String?

        @Option(help: "Expected SHA-256 (full, or a prefix of at least 8 hex digits) instead of the registered one.")
        var sha256: String?

        @Option(name: .customLong("cache-dir"), help: "Cache folder (default: $GEN_WEIGHTS or ~/.cache/gen/weights).")
        var cacheDir: String?

        @Flag(help: "Download again even when the file is already cached.")
        var force = false

        @Flag(help: "Print no progress.")
        var quiet = false

        init() {}

        func validate() throws {
            if let u = url, URL(string: u)?.scheme == nil {
                throw ValidationError("--url '\(u)' is not a URL (e.g. https://host/file.pth or file:///path/file.pth)")
            }
            if let s = sha256, !(8...64).contains(s.count) || !s.allSatisfy(\.isHexDigit) {
                throw ValidationError("--sha256 must be 8 to 64 hex digits")
            }
        }

        func run() throws {
            try WeightsCommand.reporting {
                let network = try WeightsRegistry.requireNetwork(named: name)
                let directory = WeightsCommand.cacheDirectory(cacheDir)
                let destination = directory.appendingPathComponent(network.fileName)
                if !force, FileManager.default.fileExists(atPath: destination.path) {
                    print("\(network.name): already cached at \(destination.path) (use --force to download again)")
                    return
                }
                let source = url.flatMap { URL(string: $0) } ?? network.url
                if !quiet { printError("Downloading \(network.name) from \(source.absoluteString)") }
                var lastReported = -1
                let progress: WeightsDownloader.Progress? = quiet ? nil : { received, total in
                    let mb = Int(received / 1_000_000)
                    guard mb / 10 != lastReported else { return }
                    lastReported = mb / 10
                    if let t = total, t > 0 {
                        printError(String(format: "  %d / %d MB (%.0f%%)", mb, Int(t / 1_000_000), 100 * Double(received) / Double(t)))
                    } else {
                        printError("  \(mb) MB")
                    }
                }
                let file = try WeightsDownloader.download(network, from: source, expectedSHA256: sha256,
                                                          into: directory, progress: progress)
                print("\(network.name): saved to \(file.path) (SHA-256 verified)")
            }
        }
    }
}
