import ArgumentParser
import Foundation
import GenStudio
import GenNN
import GenData
import GenTensor

/// `gen gan`: a deep convolutional GAN (Radford et al., 2016; Chollet §8.5).
struct GANCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan",
        abstract: "Deep convolutional GAN: train on a folder of images or an IDX file, sample and interpolate.",
        subcommands: [GANTrain.self, GANSample.self]
    )
    init() {}
}

/// `gen gan train --data FOLDER_OR_IDX`.
struct GANTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the book's DCGAN (32x32 RGB, latent 32, batch 20, RMSprop 8e-4 / 4e-4 clipped at 1, label noise 0.05).",
        discussion: """
        Writes to the run folder: samples/real.png (real training images), samples/step-NNNNNN.png (an 8x8 grid \
        from one fixed noise batch every --sample-every steps and at the end), metrics.csv (discriminator loss on \
        real and generated images, generator loss), loss.png (losses by step with labelled axes and a legend: blue D on real, red D on generated, green G), \
        checkpoint.safetensors and run.json. Warns when the discriminator's loss collapses to its floor or the \
        samples collapse to one mode. Trains 10,000 steps unless --steps, --epochs or --time-limit says \
        otherwise. Ctrl-C stops cleanly with a checkpoint; --resume continues exactly.
        """
    )

    @Option(help: "Training images: a folder of PNG/JPEG files (searched recursively), an IDX file (plain or gzip), or 'mnist' / 'fashion-mnist'.")
    var data: String
    @Option(help: "Image side length S (even, 8...256); the generator adds up-sampling stages for larger images.")
    var imageSize: Int = 32
    @Option(help: "Channels: 1 (gray) or 3 (RGB).") var channels: Int = 3
    @Option(help: "Dimension of the latent space.") var latentDim: Int = 32
    @Option(help: "Filters of the generator's convolutions (book: 256).") var generatorFilters: Int = 256
    @Option(help: "Filters of the discriminator's convolutions (book: 128).") var discriminatorFilters: Int = 128
    @Option(help: "Optimizer: rmsprop (the book) or adam (beta1 0.5, the DCGAN paper).") var optimizer: String = "rmsprop"
    @Option(help: "Discriminator learning rate (default 8e-4 for rmsprop, 2e-4 for adam; --learning-rate sets both).")
    var dLearningRate: Float?
    @Option(help: "Generator (adversarial step) learning rate (default 4e-4 for rmsprop, 2e-4 for adam).")
    var gLearningRate: Float?
    @Option(help: "Adam's beta1.") var beta1: Float = 0.5
    @Option(help: "Clip each gradient element to ±this (the book's clipvalue 1.0; 0 = off).") var clipValue: Float = 1
    @Option(help: "Label noise: each discriminator target moves by noise·U(0,1) towards 0.5 (the book's 0.05; 0 = off).")
    var labelNoise: Float = 0.05
    @Option(help: "One-sided label smoothing: real images' target becomes this instead of a hard label, in [0, 0.5).")
    var labelSmoothing: Float = 0
    @Option(help: "Write a grid from the fixed noise every N steps (default 100; with --resume, the checkpoint's).")
    var sampleEvery: Int?
    @Option(help: "Average losses over N steps per metrics.csv row (default 10; with --resume, the checkpoint's).")
    var logEvery: Int?
    @OptionGroup var images: ImageFolderOptions
    @OptionGroup var training: TrainingOptions
    @OptionGroup var common: CommonOptions

    init() {}

    func validate() throws {
        if !["rmsprop", "adam"].contains(optimizer.lowercased()) {
            throw ValidationError("--optimizer must be rmsprop or adam (got '\(optimizer)')")
        }
        for (name, v) in [("--d-learning-rate", dLearningRate), ("--g-learning-rate", gLearningRate)] {
            if let v, !(v > 0 && v.isFinite) { throw ValidationError("\(name) must be positive (got \(v))") }
        }
        if !(clipValue >= 0 && clipValue.isFinite) { throw ValidationError("--clip-value must be ≥ 0 (got \(clipValue))") }
        do { try makeConfig().validate() } catch let e as StudioError { throw ValidationError(e.description) }
    }

    /// The trainer configuration these options describe.
    func makeConfig() -> GANTrainingConfig {
        var c = GANTrainingConfig()
        c.model.imageSize = imageSize
        c.model.channels = channels
        c.model.latentDim = latentDim
        c.model.generatorFilters = generatorFilters
        c.model.discriminatorFilters = discriminatorFilters
        c.optimizer = optimizer.lowercased()
        let adam = c.optimizer == "adam"
        c.dLearningRate = dLearningRate ?? training.learningRate ?? (adam ? 2e-4 : 8e-4)
        c.gLearningRate = gLearningRate ?? training.learningRate ?? (adam ? 2e-4 : 4e-4)
        c.adamBeta1 = beta1
        c.clipValue = clipValue > 0 ? clipValue : nil
        c.labelNoise = labelNoise
        c.labelSmoothing = labelSmoothing
        c.sampleEvery = sampleEvery
        c.logEvery = logEvery
        c.skipInvalid = images.skipInvalid
        c.maxPixels = images.maxPixels
        // Without a stopping criterion, train for the book's 10,000 steps.
        training.applySchedule(to: &c, seed: common.seed) { $0.steps = 10_000 }
        return c
    }

    func run() throws {
        try reportingErrors {
            common.applyThreads()
            Interrupt.install()
            let progress = ConsoleProgress(quiet: common.quiet)
            let trainer = try GANTrainer(
                data: data, config: makeConfig(), resume: training.resume.map { URL(fileURLWithPath: $0) },
                output: common.output.map { URL(fileURLWithPath: $0) }, arguments: CommandLine.arguments, progress: progress)
            let s = try trainer.run(shouldStop: { Interrupt.requested })
            var out = "run folder: \(s.folder.path)\ncheckpoint: \(s.checkpoint.path)\n"
            if let g = s.lastGrid { out += "samples: \(g.path)\n" }
            out += stoppedLine(reason: s.stopReason, steps: s.steps) + " (epoch \(s.epoch + 1))\n"
            if let l = s.lastLosses {
                out += String(format: "losses (last %@): D real %.4f, D fake %.4f, G %.4f\n", "window", l.discriminatorReal,
                              l.discriminatorFake, l.generator)
            }
            print(out, terminator: "")
        }
    }
}

/// `gen gan sample --checkpoint FILE`.
struct GANSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate images from a trained GAN checkpoint; interpolate between latent points.",
        discussion: """
        Writes PNGs to the output folder (default outputs/gan/<timestamp>/): sample-NNN.png for each of --count \
        images, or one grid.png with --grid; with --interpolate N, interpolation.png, a strip of N images per \
        segment along a spherical path through --waypoints random latent points (and frame-NNN.png files with --frames). \
        Prints the paths written.
        """
    )

    @Option(help: "Checkpoint written by 'gen gan train'.") var checkpoint: String
    @Option(help: "Images to generate.") var count: Int = 64
    @Flag(help: "Write the images as one grid.png instead of separate files.") var grid = false
    @Option(help: "Also interpolate: N images per segment (including both ends) along a spherical path between latent points.")
    var interpolate: Int?
    @Option(help: "Latent points the interpolation passes through (≥ 2; default: 2; with --interpolate).") var waypoints: Int?
    @Flag(help: "Write the interpolation as frame-NNN.png files as well as the strip (with --interpolate).") var frames = false
    @Option(help: "Truncation trick: redraw latent components beyond ±T (T > 0; smaller is more typical, less varied).")
    var truncation: Float?
    @OptionGroup var common: CommonOptions

    init() {}

    func validate() throws {
        if !(1...4096).contains(count) { throw ValidationError("--count must be in 1...4096 (got \(count))") }
        if let n = interpolate, !(2...1024).contains(n) { throw ValidationError("--interpolate must be in 2...1024 (got \(n))") }
        if let w = waypoints, !(2...64).contains(w) { throw ValidationError("--waypoints must be in 2...64 (got \(w))") }
        // Options that shape an interpolation not asked for would be silently ignored.
        if interpolate == nil && (waypoints != nil || frames) {
            throw ValidationError("\(waypoints != nil ? "--waypoints" : "--frames") shapes the interpolation: give --interpolate N with it")
        }
        if let t = truncation, !(t > 0 && t.isFinite) { throw ValidationError("--truncation must be positive (got \(t))") }
    }

    func run() throws {
        try reportingErrors {
            common.applyThreads()
            let sampler = try GANSampler.load(checkpoint: URL(fileURLWithPath: checkpoint))
            var rng = RandomGenerator(seed: common.seed)
            let images = sampler.generate(sampler.latents(count: count, truncation: truncation, using: &rng))
            var interpolation: Tensor?
            if let n = interpolate {
                let points = sampler.latents(count: waypoints ?? 2, truncation: truncation, using: &rng)
                interpolation = sampler.generate(GANSampler.slerp(points, steps: n))
            }
            guard GANPictures.isFinite(images) && interpolation.map(GANPictures.isFinite) ?? true else {
                throw StudioError.incompatibleCheckpoint(path: checkpoint, reason: "the generator produces NaN or infinite values")
            }
            let folder = try RunFolder(explicit: common.output.map { URL(fileURLWithPath: $0) }, generator: "gan")
            var written: [URL] = []
            do {
                if grid {
                    let url = folder.file("grid.png")
                    try GANPictures.writeGrid(images, to: url)
                    written.append(url)
                } else {
                    for i in 0..<count {
                        let url = folder.file(String(format: "sample-%03d.png", i + 1))
                        try Image(tensor: images, index: i, range: .signed).write(to: url.path, format: .png)
                        written.append(url)
                    }
                }
                if let strip = interpolation {
                    let url = folder.file("interpolation.png")
                    try GANPictures.writeGrid(strip, to: url, columns: strip.shape[0])
                    written.append(url)
                    if frames {
                        for i in 0..<strip.shape[0] {
                            let f = folder.file(String(format: "frame-%03d.png", i + 1))
                            let one = Image(tensor: strip, index: i, range: .signed)
                            try one.write(to: f.path, format: .png)
                            written.append(f)
                        }
                    }
                }
            } catch {
                folder.recordFailure(error, record: RunRecord(generator: "gan", arguments: CommandLine.arguments, settings: [:], seed: common.seed))
                throw error
            }
            // Samples or frames of an earlier, larger request in the same folder are not this one's.
            warnAboutOlderFiles(in: folder.url, prefixes: ["sample-", "frame-"],
                                written: Set(written.map(\.lastPathComponent)), what: ("sample or frame", "samples or frames"),
                                notPartOf: "this output")
            print(written.map(\.path).joined(separator: "\n"))
        }
    }
}
