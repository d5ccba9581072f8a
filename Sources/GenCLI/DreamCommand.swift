import ArgumentParser
import Foundation
import GenStudio
import GenNN
import GenData
import GenTensor

/// `gen dream IMAGE`: DeepDream over octaves on a pretrained network.
struct DreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dream",
        abstract: "DeepDream: gradient ascent on a pretrained network's activations, over octaves.",
        discussion: """
        The image is shrunk --octaves times by --octave-scale; from the smallest scale up, gen ascends the \
        gradient of Σ weight·mean(activation²) over the chosen layers (--iterations steps of size --step, the \
        gradient divided by its mean absolute value), upscales, and re-injects the detail lost by shrinking \
        (Chollet, Deep Learning with Python §8.2). Gradients are computed on tiles (--tile-size) at random \
        offsets after a random shift (--jitter), so large photos fit in memory and show no seams. The output \
        has the input's size, upright (EXIF applied), and is written atomically.
        """
    )

    @Argument(help: "Input image (PNG or JPEG).") var image: String?
    @Option(name: .shortAndLong, help: "Output image (.png or .jpg; a missing folder is made; default: outputs/dream/<timestamp>/dream.png).")
    var output: String?
    @Option(help: "Network: inception_v3 (default when its weights are present), squeezenet1_0, squeezenet1_1, vgg16, vgg19.")
    var network: String?
    @Option(help: "Weights file (.pth or .safetensors with torchvision's names; default: the weights cache).")
    var weights: String?
    @Option(help: "Layers and weights, NAME:WEIGHT,... (default: the book's for InceptionV3; fire5:1,fire7:1.5 for SqueezeNet).")
    var layers: String?
    @Flag(help: "Print the network's layer names and exit.") var listLayers = false
    @Option(help: "Gradient-ascent steps per octave.") var iterations: Int = 20
    @Option(help: "Step size (pixels in [0, 1] move by this on average per step).") var step: Float = 0.01
    @Option(help: "Number of octaves (scales).") var octaves: Int = 3
    @Option(help: "Ratio between successive octaves.") var octaveScale: Float = 1.4
    @Option(help: "Stop an octave once the objective exceeds this.") var maxLoss: Float?
    @Option(help: "Largest random shift in pixels before each step (0 = off).") var jitter: Int = 32
    @Option(help: "Tile side for gradient computation (bounds memory on large images).") var tileSize: Int = 512
    @Option(help: "Guide image: maximise the match with its features instead of their magnitude.") var guide: String?
    @Option(help: "Write the current image every N steps (next to the output).") var saveEvery: Int?
    @Option(help: "Dream at most at this size (longer side); the result is scaled back to the input's size.")
    var maxSize: Int?
    @Option(help: "Largest accepted width×height of an input image header.") var maxPixels: Int = ImageDecodeOptions.defaultMaxPixels
    @Option(help: "Random seed (jitter and tile offsets).") var seed: UInt64 = 1
    @Option(help: "Threads for gen's kernels and OpenBLAS (default: all cores).") var threads: Int?
    @Flag(name: .shortAndLong, help: "Print only results and errors.") var quiet = false

    init() {}

    func validate() throws {
        if image == nil && !listLayers { throw ValidationError("give an IMAGE to dream on (or --list-layers)") }
        if iterations < 1 { throw ValidationError("--iterations must be at least 1 (got \(iterations))") }
        if !(step > 0) { throw ValidationError("--step must be positive (got \(step))") }
        if octaves < 1 { throw ValidationError("--octaves must be at least 1 (got \(octaves))") }
        if !(octaveScale > 1) { throw ValidationError("--octave-scale must be greater than 1 (got \(octaveScale))") }
        if jitter < 0 { throw ValidationError("--jitter must be ≥ 0 (got \(jitter))") }
        if tileSize < 32 { throw ValidationError("--tile-size must be at least 32 (got \(tileSize))") }
        if let s = saveEvery, s < 1 { throw ValidationError("--save-every must be at least 1 (got \(s))") }
        if let m = maxSize, m < 32 { throw ValidationError("--max-size must be at least 32 (got \(m))") }
        if maxPixels < 1 { throw ValidationError("--max-pixels must be positive") }
        try validateThreads(threads)
        if let output {
            let ext = (output as NSString).pathExtension.lowercased()
            guard ["png", "jpg", "jpeg", "jpe", "jfif"].contains(ext) else { throw ValidationError("--output must end in .png, .jpg or .jpeg (.jpe, .jfif) (got '\(output)')") }
        }
        if let layers { _ = try DreamCommand.parseLayers(layers) }
    }

    /// Parses `NAME:WEIGHT,NAME:WEIGHT` (a missing weight means 1).
    static func parseLayers(_ text: String) throws -> [String: Float] {
        var out: [String: Float] = [:]
        for part in text.split(separator: ",") {
            let pieces = part.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let name = pieces.first, !name.isEmpty else { throw ValidationError("--layers: empty layer name in '\(text)'") }
            var w: Float = 1
            if pieces.count == 2 {
                guard let v = Float(pieces[1]), v.isFinite else { throw ValidationError("--layers: '\(pieces[1])' is not a number (in '\(part)')") }
                w = v
            }
            out[name] = w
        }
        if out.isEmpty { throw ValidationError("--layers needs at least one NAME:WEIGHT") }
        return out
    }

    /// The network to use: the one asked for, else InceptionV3 when its weights resolve, else SqueezeNet 1.0.
    func chooseNetwork() throws -> (String, URL) {
        let explicit = weights.map { URL(fileURLWithPath: $0) }
        if let network {
            let canonical = try WeightsRegistry.requireNetwork(named: network).name
            return (canonical, try WeightsRegistry.resolveWeights(network: canonical, explicit: explicit))
        }
        if let explicit { return ("squeezenet1_0", explicit) }
        if let url = try? WeightsRegistry.resolveWeights(network: "inception_v3", explicit: nil) { return ("inception_v3", url) }
        if let url = try? WeightsRegistry.resolveWeights(network: "squeezenet1_0", explicit: nil) {
            if !quiet { printError("note: using squeezenet1_0 (\(url.path)): inception_v3's weights, the default, are not in the cache") }
            return ("squeezenet1_0", url)
        }
        printError("note: without --network, dream uses inception_v3, else squeezenet1_0; the cache holds neither's weights")
        return ("inception_v3", try WeightsRegistry.resolveWeights(network: "inception_v3", explicit: nil))
    }

    func run() throws {
        try reportingErrors {
            Threads.configure(threads)
            let (networkName, weightsURL) = try chooseNetwork()
            let net = try loadPretrainedNetwork(named: networkName, weights: weightsURL)
            if listLayers {
                print(net.layerNames.joined(separator: "\n"))
                return
            }
            guard let image else { return }
            let progress = ConsoleProgress(quiet: quiet)
            let options = ImageDecodeOptions(channels: 3, maxPixels: maxPixels)
            let original = try Image(contentsOf: image, options: options)
            let minSide = net.minimumInputSize
            try DeepDream.checkSize(original, network: net, file: image)
            var config = DreamConfig(layers: try layers.map(DreamCommand.parseLayers) ?? DreamConfig.defaultLayers(network: net.name))
            config.iterations = iterations
            config.step = step
            config.octaves = octaves
            config.octaveScale = octaveScale
            config.maxLoss = maxLoss
            config.jitter = jitter
            config.tileSize = tileSize
            config.seed = seed
            config.saveEvery = saveEvery
            let guideImage = try guide.map { try Image(contentsOf: $0, options: options) }
            if let guide, let g = guideImage { try DeepDream.checkSize(g, network: net, file: guide, role: "guide image") }
            let dream = try DeepDream(network: net, config: config, guide: guideImage, progress: progress)
            // The size the dream runs at (--max-size), checked before any output folder is made.
            var working = original
            if let maxSize, max(original.width, original.height) > maxSize {
                working = try original.resized(longerSide: maxSize)
                guard min(working.width, working.height) >= minSide else {
                    throw StudioError.invalidOption("\(image): --max-size \(maxSize) shrinks the \(original.width)x\(original.height) image to \(working.width)x\(working.height); \(net.name) needs at least \(minSide) pixels on the shorter side (raise --max-size)")
                }
            }

            // Where results go: --output, or a fresh run folder.
            let outputURL: URL
            var folder: RunFolder?
            var outputFolder: RunFolder?
            try refuseOutputOverwritingInput(output, inputs: [(image, "input image")] + (guide.map { [($0, "guide image")] } ?? []))
            if let output {
                outputURL = URL(fileURLWithPath: output)
                // A write-protected output would be refused only after every octave: refuse now.
                if let problem = replacementRefusal(of: outputURL.path) {
                    throw StudioError.invalidOption("--output \(outputURL.path): \(problem)")
                }
                // A missing folder is made, as gen style does, and removed again if the dream
                // writes nothing into it; one that cannot be made or written is refused now, not
                // after every octave has been computed.
                outputFolder = try RunFolder(explicit: outputURL.deletingLastPathComponent(), generator: "dream")
            } else {
                let f = try RunFolder(explicit: nil, generator: "dream")
                folder = f
                outputURL = f.file("dream.png")
            }
            var record = RunRecord(generator: "dream", arguments: CommandLine.arguments,
                                   settings: ["network": net.name, "weights": weightsURL.path,
                                              "layers": config.layers.map { "\($0.key):\($0.value)" }.sorted().joined(separator: ",")],
                                   seed: seed)
            let started = Date()
            do {
                if working.width != original.width || working.height != original.height {
                    progress.report(.info("dreaming at \(working.width)x\(working.height) (--max-size \(maxSize ?? 0)); the result is scaled back to \(original.width)x\(original.height)"))
                }
                let stem = outputURL.deletingPathExtension().lastPathComponent
                let (result, reports) = try dream.run(working) { im, octave, step in
                    let url = outputURL.deletingLastPathComponent().appendingPathComponent("\(stem)-octave\(octave)-step\(step).png")
                    try im.write(to: url.path)
                    progress.report(.wrote(url, what: "intermediate image"))
                }
                let final = (result.width, result.height) == (original.width, original.height)
                    ? result : try result.resized(width: original.width, height: original.height)
                try final.write(to: outputURL.path)
                progress.report(.wrote(outputURL, what: "dream"))
                for (k, r) in reports.enumerated() {
                    record.settings["octave\(k + 1)"] = String(format: "%dx%d objective %.5f -> %.5f (%d steps)", r.width, r.height, r.initialLoss, r.finalLoss, r.steps)
                }
                record.timings["total_s"] = Date().timeIntervalSince(started)
                record.finished = ISO8601DateFormatter().string(from: Date())
                record.outcome = "completed"
                if let folder { try folder.writeRecord(record) }
                print(outputURL.path)
            } catch {
                folder?.recordFailure(error, record: record)
                outputFolder?.discardIfUnused()
                throw error
            }
        }
    }
}
