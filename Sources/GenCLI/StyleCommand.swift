import ArgumentParser
import Foundation
import GenStudio
import GenNN
import GenData
import GenTensor

/// `gen style CONTENT STYLE... [options]`: neural style transfer (Gatys, Ecker & Bethge 2016, as in
/// F. Chollet, *Deep Learning with Python* §8.3).
struct StyleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "style",
        abstract: "Neural style transfer: repaint a content image in the style of one or more style images.",
        discussion: """
        Optimises the image so that a pretrained network's deep activations match the content image \
        (content loss), its Gram matrices match the style images' (style loss), and neighbouring pixels \
        stay close (total variation). L-BFGS with a strong-Wolfe line search by default. Writes result.png, \
        iter-NNNNN.png with --save-every, metrics.csv (loss terms per iteration) and run.json into the run \
        folder (--output DIR; refused when it holds another run's); with --output NAME.png they are \
        NAME.png, NAME-iter-NNNNN.png, NAME-metrics.csv and NAME-run.json beside it. Content and style images may be any PNG or JPEG (format by \
        content, EXIF orientation applied, alpha composited onto white, gray copied to RGB). \
        Defaults: SqueezeNet 1.0 with its ImageNet weights (gen weights download squeezenet1_0); \
        --network vgg19 uses the book's layers.
        """
    )

    @Argument(help: "Content image (PNG or JPEG).") var content: String
    @Argument(help: "One or more style images (PNG or JPEG).") var styles: [String] = []

    @Option(help: "Network: squeezenet1_0 (default; also 'squeezenet'), squeezenet1_1, vgg16 or vgg19 (the book's; VGG layers for vgg16 too).") var network: String = "squeezenet1_0"
    @Option(help: "Weights file (torchvision .pth or .safetensors); default: the cache folder (see 'gen weights').") var weights: String?
    @Flag(help: "Use random weights (timing and tests only: the result is not a stylisation).") var randomWeights = false
    @Option(help: "Content layers, comma-separated (default per network: fire7 for SqueezeNet, block5_conv2 for VGG19).")
    var contentLayers: String?
    @Option(help: "Style layers, comma-separated (default per network: conv1,fire2,fire3,fire5,fire7; VGG19 block1_conv1..block5_conv1).")
    var styleLayers: String?
    @Option(help: "Content loss weight α ≥ 0 (default per network).") var contentWeight: Double?
    @Option(help: "Style loss weight β ≥ 0, split over the style layers (default per network).") var styleWeight: Double?
    @Option(help: "Total-variation weight ≥ 0 (default per network).") var tvWeight: Double?
    @Option(help: "Optimizer: lbfgs (default) or adam.") var optimizer: String = "lbfgs"
    @Option(help: "L-BFGS step multiplier (default 1) or Adam learning rate (default 0.02).") var learningRate: Double?
    @Option(help: "Optimizer iterations (per scale with --multiscale).") var iterations: Int = 300
    @Option(help: "Most loss evaluations per scale for L-BFGS (default 1.25 × iterations).") var maxEvaluations: Int?
    @Option(help: "L-BFGS history size (PyTorch 100, SciPy 10).") var history: Int = 100
    @Option(name: .customLong("init"), help: "Starting image: content, random, or an image file.") var initImage: String = "content"
    @Option(help: "Longest side of the output in pixels (default: the content image's, capped at --max-size).") var size: Int?
    @Option(help: "Height of the output in pixels, as the book (400); exclusive with --size.") var height: Int?
    @Option(help: "Cap on the output's longest side; larger images and requests are scaled down.") var maxSize: Int = 512
    @Option(help: "Relative weights of the style images, comma-separated (default: equal).") var styleBlendWeights: String?
    @Option(help: "Style images are scaled to this fraction of the output's longest side.") var styleScale: Double = 1
    @Flag(help: "Keep the content's colours (transfer in luminance only, YIQ).") var preserveColors = false
    @Flag(help: "Coarse to fine: optimise at 1/4 and 1/2 of the size first.") var multiscale = false
    @Option(help: "Also write the image every N iterations.") var saveEvery: Int?
    @Option(help: "Largest accepted width×height of an input image's header (a guard against decompression bombs; raise it for trusted large images).") var maxPixels: Int = ImageDecodeOptions.defaultMaxPixels

    @OptionGroup var common: CommonOptions

    init() {}

    static func list(_ s: String?) -> [String]? {
        s.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
    }

    func blendWeights() throws -> [Double]? {
        guard let parts = StyleCommand.list(styleBlendWeights) else { return nil }
        return try parts.map { p in
            guard let v = Double(p), v.isFinite else { throw ValidationError("--style-blend-weights: '\(p)' is not a number") }
            return v
        }
    }

    func validate() throws {
        if styles.isEmpty { throw ValidationError("give at least one style image after the content image") }
        if let b = try blendWeights(), b.count != styles.count {
            throw ValidationError("--style-blend-weights has \(b.count) values for \(styles.count) style images")
        }
        do { try makeConfig().validate() } catch let e as StudioError { throw ValidationError(e.description) }
    }

    /// The settings these options describe.
    func makeConfig() throws -> StyleConfig {
        var c = StyleConfig()
        c.network = network.lowercased()
        c.weightsPath = weights
        c.randomWeights = randomWeights
        c.contentLayers = StyleCommand.list(contentLayers)
        c.styleLayers = StyleCommand.list(styleLayers)
        c.contentWeight = contentWeight
        c.styleWeight = styleWeight
        c.tvWeight = tvWeight
        c.optimizer = optimizer.lowercased()
        c.learningRate = learningRate
        c.iterations = iterations
        c.maxEvaluations = maxEvaluations
        c.historySize = history
        c.initialImage = initImage
        c.size = size
        c.height = height
        c.maxSize = maxSize
        c.styleBlendWeights = try blendWeights()
        c.styleScale = styleScale
        c.preserveColors = preserveColors
        c.multiscale = multiscale
        c.saveEvery = saveEvery
        c.maxPixels = maxPixels
        c.seed = common.seed
        return c
    }

    func run() throws {
        try reportingErrors {
            common.applyThreads()
            Interrupt.install()
            var inputs = [(content, "content image")] + styles.map { ($0, "style image") }
            if !["content", "random"].contains(initImage) { inputs.append((initImage, "--init image")) }
            try refuseOutputOverwritingInput(common.output, inputs: inputs)
            let progress = ConsoleProgress(quiet: common.quiet)
            let transfer = try StyleTransfer(
                content: URL(fileURLWithPath: content), styles: styles.map { URL(fileURLWithPath: $0) },
                config: try makeConfig(), output: common.output.map { URL(fileURLWithPath: $0) },
                arguments: CommandLine.arguments, progress: progress)
            let s = try transfer.run(shouldStop: { Interrupt.requested })
            var out = "result: \(s.result.path)\nrun folder: \(s.folder.path)\n"
            out += "size: \(s.width)x\(s.height), \(counted(s.iterations, "iteration")), \(counted(s.evaluations, "evaluation")) (\(s.stopReason))\n"
            out += String(format: "loss: %.6g (content %.6g, style %.6g, tv %.6g)\n", s.terms.total, s.terms.content, s.terms.style, s.terms.totalVariation)
            out += String(format: "%.3f s per loss-and-gradient evaluation (median)\n", s.secondsPerEvaluation)
            print(out, terminator: "")
        }
    }
}
