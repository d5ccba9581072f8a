import ArgumentParser
import Foundation
import GenStudio
import GenNN
import GenData
import GenTensor

/// `gen vae`: the convolutional variational autoencoder (Kingma & Welling 2014; F. Chollet,
/// *Deep Learning with Python*, 2nd ed. §12.4).
struct VAECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae",
        abstract: "Convolutional variational autoencoder: train on images, sample, interpolate, draw the latent manifold.",
        subcommands: [VAETrain.self, VAESample.self]
    )
    init() {}
}

/// `gen vae train [--data SOURCE]`.
struct VAETrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the book's convolutional VAE (default: Fashion-MNIST, latent dimension 2, Adam 1e-3, batch 128, 30 epochs).",
        discussion: """
        Loss per image: binary cross-entropy summed over pixels + beta * KL(q(z|x) || N(0, I)); \
        z = mean + exp(0.5 * log_var) * eps. After every epoch: the test set's negative ELBO in nats per \
        image with its reconstruction and KL terms (metrics.csv), and pictures/epoch-NNN-*.png: test images \
        above their reconstructions, samples from the prior, and for a 2-D latent space the manifold (decoded \
        over the Gaussian's quantiles) and a scatter plot of the test set's latent means coloured by label. \
        Trains 30 epochs unless --epochs, --steps or --time-limit says otherwise. Writes checkpoint.safetensors and run.json; Ctrl-C stops cleanly with a checkpoint; --resume continues exactly, with the checkpoint's model and training settings.
        """
    )

    @Option(help: "Images: a dataset name (fashion-mnist; mnist when its IDX files are in $GEN_DATA/images/mnist, ./data/mnist or /usr/share/datasets/mnist), an IDX images file or folder (plain or gzip), or an image folder (any format, mode and size). Default: Fashion-MNIST from /usr/share/datasets/fashion-mnist.")
    var data: String?
    @Option(help: "Dimension of the latent space (book: 2).") var latentDim: Int = 2
    @Option(help: "Weight of the KL term (1 = the ELBO; other values give a beta-VAE).") var beta: Float = 1
    @Option(help: "Side length images are converted to (a multiple of 4).") var imageSize: Int = 28
    @Option(help: "Channels images are converted to: 1 (gray) or 3 (RGB).") var channels: Int = 1
    @Option(help: "Side of the latent manifold grid written after each epoch (2-D latent space only).") var manifoldSize: Int = 15
    @OptionGroup var images: ImageFolderOptions
    @OptionGroup var training: TrainingOptions
    @OptionGroup var common: CommonOptions

    init() {}

    func validate() throws {
        if latentDim < 1 { throw ValidationError("--latent-dim must be at least 1 (got \(latentDim))") }
        if !(beta >= 0 && beta.isFinite) { throw ValidationError("--beta must be a finite number ≥ 0 (got \(beta))") }
        if imageSize < 4 || imageSize % 4 != 0 || imageSize > 1024 {
            throw ValidationError("--image-size must be a multiple of 4 in 4...1024 (got \(imageSize))")
        }
        if channels != 1 && channels != 3 { throw ValidationError("--channels must be 1 or 3 (got \(channels))") }
        if manifoldSize < 2 || manifoldSize > 100 { throw ValidationError("--manifold-size must be in 2...100 (got \(manifoldSize))") }
    }

    /// The trainer configuration these options describe.
    func makeConfig() -> VAETrainingConfig {
        var c = VAETrainingConfig()
        c.data = data
        c.skipInvalid = images.skipInvalid
        c.maxPixels = images.maxPixels
        c.latentDim = latentDim
        c.beta = beta
        c.imageSize = imageSize
        c.channels = channels
        c.manifoldSize = manifoldSize
        if let l = training.learningRate { c.learningRate = l }
        // Without a stopping criterion, train for the book's 30 epochs.
        training.applySchedule(to: &c, seed: common.seed) { $0.epochs = 30 }
        return c
    }

    func run() throws {
        try reportingErrors {
            common.applyThreads()
            Interrupt.install()
            let progress = ConsoleProgress(quiet: common.quiet)
            let trainer = try VAETrainer(config: makeConfig(), resume: training.resume.map { URL(fileURLWithPath: $0) },
                                         output: common.output.map { URL(fileURLWithPath: $0) },
                                         arguments: CommandLine.arguments, progress: progress)
            let s = try trainer.run(shouldStop: { Interrupt.requested })
            var out = "run folder: \(s.folder.path)\ncheckpoint: \(s.checkpoint.path)\n"
            out += stoppedLine(reason: s.stopReason, steps: s.steps) + "\n"
            if let t = s.trainLoss { out += String(format: "train loss: %.4f nats/image\n", t) }
            if let e = s.evaluation {
                out += String(format: "test negative ELBO: %.4f nats/image (reconstruction %.4f, KL %.4f; %d images)\n",
                              e.negativeELBO, e.reconstruction, e.kl, e.images)
            }
            for p in s.pictures { out += "picture: \(p.path)\n" }
            print(out, terminator: "")
        }
    }
}

/// `gen vae sample --checkpoint FILE`.
struct VAESample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Decode samples from the prior, interpolations between two images, or the latent manifold.",
        discussion: """
        Writes PNGs into the output folder and prints their paths: samples.png (a grid of --count samples, \
        or --grid N for N x N), interpolation.png (a strip decoding a spherical interpolation between the \
        latent means of the two --interpolate images; --frames writes interpolation-NNN.png instead) and \
        manifold.png (an N x N grid over the Gaussian's quantiles of the first two latent dimensions). \
        Samples are written when asked for, or when nothing else is.
        """
    )

    @Option(help: "Checkpoint written by 'gen vae train'.") var checkpoint: String
    @Option(help: "Samples from the prior, in a grid of ceil(sqrt(count)) columns.") var count: Int?
    @Option(help: "Samples from the prior in an N x N grid.") var grid: Int?
    @Option(parsing: .upToNextOption, help: "Two image files: decode along a spherical interpolation between their latent codes.")
    var interpolate: [String] = []
    @Option(help: "Images along the interpolation, both ends included (default: 10; with --interpolate).") var steps: Int?
    @Flag(help: "Write the interpolation as separate frames instead of one strip (with --interpolate).") var frames = false
    @Flag(help: "Write the latent manifold.") var manifold = false
    @Option(help: "Side of the manifold grid (default: 15; with --manifold).") var manifoldSize: Int?
    @Option(help: "Largest accepted width×height of an --interpolate image's header (a guard against decompression bombs; raise it for trusted large images).") var maxPixels: Int = ImageDecodeOptions.defaultMaxPixels
    @OptionGroup var common: CommonOptions

    init() {}

    /// Prior samples to draw (`--grid N`: N², else `--count`, else 64 when no other picture is
    /// asked for), or nil when none are asked for.
    var priorSamples: Int? {
        count != nil || grid != nil || (interpolate.isEmpty && !manifold) ? grid.map { $0 * $0 } ?? count ?? 64 : nil
    }
    /// Images along the interpolation.
    var interpolationSteps: Int { steps ?? 10 }
    /// Side of the manifold grid.
    var manifoldSide: Int { manifoldSize ?? 15 }

    func validate() throws {
        if let c = count, c < 1 || c > 4096 { throw ValidationError("--count must be in 1...4096 (got \(c))") }
        if let g = grid, g < 1 || g > 64 { throw ValidationError("--grid must be in 1...64 (got \(g))") }
        if count != nil && grid != nil { throw ValidationError("give --count or --grid, not both") }
        if !interpolate.isEmpty && interpolate.count != 2 {
            throw ValidationError("--interpolate needs exactly two image files (got \(interpolate.count))")
        }
        if let steps, steps < 2 || steps > 1000 { throw ValidationError("--steps must be in 2...1000 (got \(steps))") }
        if let m = manifoldSize, m < 2 || m > 100 { throw ValidationError("--manifold-size must be in 2...100 (got \(m))") }
        // Options that shape a picture not asked for would be silently ignored.
        if interpolate.isEmpty && (steps != nil || frames) {
            throw ValidationError("\(steps != nil ? "--steps" : "--frames") shapes the interpolation: give --interpolate A B with it")
        }
        if manifoldSize != nil && !manifold { throw ValidationError("--manifold-size shapes the manifold: give --manifold with it") }
    }

    func run() throws {
        try reportingErrors {
            common.applyThreads()
            let model = try VAEModel.load(from: URL(fileURLWithPath: checkpoint))
            let mc = model.config
            // Every picture's images and its grid are held as floats: refuse a request that cannot
            // fit (a 100×100 manifold at 1024 px needs about 95 GB) before decoding for minutes.
            let images = (priorSamples ?? 0) + (manifold ? manifoldSide * manifoldSide : 0) + (interpolate.isEmpty ? 0 : interpolationSteps)
            let bytes = Double(images) * Double(mc.imageSize * mc.imageSize * mc.channels) * 4 * 2.5
            if bytes > 16 * 1_073_741_824 {
                throw StudioError.invalidOption(String(format: "%d images of %dx%d need about %.0f GB of memory; ask for fewer (--count, --grid, --manifold-size, --steps)",
                                                       images, mc.imageSize, mc.imageSize, bytes / 1e9))
            }
            // Read the interpolation ends before creating any output.
            var ends: [Image] = []
            for path in interpolate {
                let im = try Image(contentsOf: path, options: ImageDecodeOptions(channels: mc.channels, maxPixels: maxPixels))
                ends.append(try im.resizedToFill(width: mc.imageSize, height: mc.imageSize))
            }
            var pictures: [(Image, String)] = []
            var rng = RandomGenerator(seed: common.seed)
            if let n = priorSamples {
                let cols = grid ?? Int(Double(n).squareRoot().rounded(.up))
                pictures.append((try model.priorSampleGrid(count: n, columns: cols, using: &rng), "samples.png"))
            }
            if ends.count == 2 {
                let means = model.latentMeans(Image.batchTensor(ends)).scalars
                let d = mc.latentDim
                let a = Array(means[0..<d]), b = Array(means[d..<2 * d])
                var codes: [Float] = []
                let steps = interpolationSteps
                for i in 0..<steps { codes += VAEPictures.slerp(a, b, Float(i) / Float(steps - 1)) }
                let images = model.decodeImages(Tensor(shape: [steps, d], scalars: codes))
                if frames {
                    for (i, im) in images.enumerated() { pictures.append((im, String(format: "interpolation-%03d.png", i))) }
                } else {
                    pictures.append((try Image.grid(images, columns: steps, padding: 2, background: 1), "interpolation.png"))
                }
            }
            if manifold {
                pictures.append((try model.manifold(n: manifoldSide), "manifold.png"))
            }
            for (im, name) in pictures where !VAEPictures.isFinite(im) {
                throw StudioError.incompatibleCheckpoint(path: checkpoint, reason: "decoding gives non-finite values (\(name))")
            }
            let folder = try RunFolder(explicit: common.output.map { URL(fileURLWithPath: $0) }, generator: "vae")
            var out = ""
            for (im, name) in pictures {
                let url = folder.file(name)
                try im.write(to: url.path)
                out += url.path + "\n"
            }
            if mc.latentDim > 2 && manifold && !common.quiet {
                printError("note: the manifold varies the first two of \(mc.latentDim) latent dimensions (the others are 0)")
            }
            if frames && ends.count == 2 {
                // Frames of an earlier, longer interpolation in the same folder are not this one's.
                warnAboutOlderFiles(in: folder.url, prefixes: ["interpolation-"], written: Set(pictures.map(\.1)),
                                    what: ("interpolation frame", "interpolation frames"), notPartOf: "this interpolation")
            }
            try writeStandardOutput(out)
        }
    }
}
