import ArgumentParser
import Dispatch
import Foundation
import GenData
import GenNN
import GenTensor

/// `gen classify IMAGE... [--network NAME] [--weights FILE] [--top N] [--classes FILE] [--size N]`:
/// ImageNet top-N classes of each image with a pretrained network.
///
/// Each image is decoded (EXIF orientation applied, alpha composited onto white), resized to
/// `--size`×`--size` with an antialiased bilinear filter (torchvision's `Resize((size, size))`),
/// normalised as torchvision does, and classified. Results go to stdout:
///
///     parrot.jpg
///       1. macaw (88)  1.0000  (logit 32.074)
///
/// Exit codes: 0 success; 2 bad arguments or input (unreadable or corrupt image, missing or
/// mismatched weights, bad class-names file), with `gen: error: ...` on stderr.
struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify images with a pretrained ImageNet network (SqueezeNet, VGG, Inception v3).",
        discussion: """
            Weights: --weights FILE (a torchvision .pth or a .safetensors file with torchvision's tensor names), \
            otherwise the cached file (see `gen weights list` and `gen weights download NAME`). Class names: \
            --classes FILE (one per line, 1000 lines), otherwise imagenet_classes.txt next to the weights file \
            when there is one, otherwise class indices only.
            """
    )

    @Argument(help: "Image files (PNG or JPEG).")
    var images: [String]

    @Option(help: "Network: squeezenet1_0, squeezenet1_1, vgg16, vgg19, inception_v3 (or squeezenet, vgg, inception).")
    var network: String = "squeezenet1_0"

    @Option(help: "Weights file (.pth or .safetensors; default: the cached file for --network).")
    var weights: String?

    @Option(help: "Class names, one per line in index order (default: imagenet_classes.txt next to the weights).")
    var classes: String?

    @Option(help: "How many classes to print per image.")
    var top: Int = 5

    @Option(help: "Resize images to SIZE×SIZE (default: 227 for SqueezeNet, 224 for VGG, 299 for Inception v3).")
    var size: Int?

    @Option(help: "Threads for gen's kernels and OpenBLAS (default: all cores).")
    var threads: Int?

    @Option(help: "Largest accepted width×height of an image's header (a guard against decompression bombs; raise it for trusted large images).")
    var maxPixels: Int = ImageDecodeOptions.defaultMaxPixels

    /// For timing: use deterministic random weights with this seed instead of a weights file.
    @Option(name: .customLong("random-weights"), help: .hidden)
    var randomWeights: UInt64?

    /// Print the time of each forward pass to stderr.
    @Flag(help: .hidden)
    var timing = false

    init() {}

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image file") }
        if !(1...1000).contains(top) { throw ValidationError("--top must be between 1 and 1000 (got \(top))") }
        try validateThreads(threads)
        if maxPixels < 1 { throw ValidationError("--max-pixels must be at least 1 (got \(maxPixels))") }
        guard let name = try? canonicalNetworkName(network) else {
            throw ValidationError("unknown --network '\(network)' (known: \(pretrainedNetworkNames.joined(separator: ", ")); aliases squeezenet, vgg, inception)")
        }
        if let s = size {
            let minimum = ClassifyCommand.minimumSize[name] ?? 1
            if s < minimum || s > 2048 {
                throw ValidationError("--size must be between \(minimum) and 2048 for \(name) (got \(s))")
            }
        }
    }

    /// Smallest input of each network (as ``GenNN/FeatureExtractor/minimumInputSize``).
    static let minimumSize = ["squeezenet1_0": 21, "squeezenet1_1": 17, "vgg16": 32, "vgg19": 32, "inception_v3": 75]

    /// The default input size: what the networks were trained and evaluated at.
    static func defaultSize(_ canonical: String) -> Int {
        switch canonical {
        case "inception_v3": return 299
        case "vgg16", "vgg19": return 224
        default: return 227
        }
    }

    /// A problem with the class-names file (exit code 2).
    struct ClassNamesError: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads one class name per line (UTF-8; trailing empty line ignored); must hold `count` names.
    static func readClassNames(_ url: URL, count: Int) throws -> [String] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ClassNamesError(description: "\(url.path): cannot read the class names: \(describe(error))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ClassNamesError(description: "\(url.path): the class names are not UTF-8 text")
        }
        var lines = text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        guard lines.count == count else {
            throw ClassNamesError(description: "\(url.path): expected \(count) class names (one per line), found \(lines.count)")
        }
        return lines
    }

    /// The top `k` classes of one row of logits: (index, probability, logit), best first.
    static func topClasses(_ logits: [Float], k: Int) -> [(index: Int, probability: Double, logit: Float)] {
        let m = Double(logits.max() ?? 0)
        let exps = logits.map { Foundation.exp(Double($0) - m) }
        let total = exps.reduce(0, +)
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        return order.prefix(k).map { ($0, exps[$0] / total, logits[$0]) }
    }

    func run() throws {
        try reportingErrors {
            do {
                try classify()
            } catch let e as ClassNamesError {
                printError("gen: error: \(e.description)")
                throw ExitCode(2)
            }
        }
    }

    func classify() throws {
        Threads.configure(threads)
        let name = try canonicalNetworkName(network)
        let side = size ?? ClassifyCommand.defaultSize(name)
        // Decode everything first and report every unusable file; the good ones are still classified,
        // and the exit status is 2 if any file was bad.
        var inputs: [(path: String, image: Image)] = []
        var failures = 0
        for path in images {
            do {
                let image = try Image(contentsOf: path, options: ImageDecodeOptions(channels: 3, maxPixels: maxPixels))
                inputs.append((path, try image.resized(width: side, height: side, filter: .bilinear)))
            } catch {
                printError("gen: error: \(describe(error))")
                failures += 1
            }
        }
        if inputs.isEmpty { throw ExitCode(2) }
        let net: ImageNetClassifier
        var weightsURL: URL?
        if let seed = randomWeights {
            net = try makeRandomNetwork(named: name, seed: seed)
        } else {
            let url = try WeightsRegistry.resolveWeights(network: name, explicit: weights.map { URL(fileURLWithPath: $0) })
            weightsURL = url
            net = try loadPretrainedNetwork(named: name, weights: url)
        }
        var names: [String]?
        if let c = classes {
            names = try ClassifyCommand.readClassNames(URL(fileURLWithPath: c), count: 1000)
        } else if let w = weightsURL {
            let candidate = w.deletingLastPathComponent().appendingPathComponent("imagenet_classes.txt")
            if FileManager.default.fileExists(atPath: candidate.path) {
                names = try ClassifyCommand.readClassNames(candidate, count: 1000)
            }
        }
        for (k, item) in inputs.enumerated() {
            let start = DispatchTime.now().uptimeNanoseconds
            let logits = withNoGrad { net.logits(net.preprocess(item.image.tensor())) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if timing {
                printError("\(net.name): forward at \(side)×\(side) took " + String(format: "%.3f s", seconds))
            }
            if k > 0 { print("") }
            print(item.path)
            for (rank, c) in ClassifyCommand.topClasses(logits.scalars, k: top).enumerated() {
                let label = names.map { "\($0[c.index]) (\(c.index))" } ?? "class \(c.index)"
                print("  \(rank + 1). \(label)  " + String(format: "%.4f  (logit %.3f)", c.probability, c.logit))
            }
        }
        if failures > 0 { throw ExitCode(2) }
    }
}
