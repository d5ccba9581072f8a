import Foundation
import GenTensor
import GenNN
import GenData

/// Failures during a style-transfer run (exit code 1).
public enum StyleError: Error, CustomStringConvertible {
    /// The loss or its gradient became NaN or infinite.
    case nonFiniteLoss(iteration: Int, level: Int)

    /// The message gen prints: the iteration and scale, and what to change.
    public var description: String {
        switch self {
        case .nonFiniteLoss(let i, let l):
            return "the loss became non-finite (NaN or infinity) at iteration \(i)\(l > 0 ? " of scale \(l + 1)" : ""); "
                + "no result was written (lower --style-weight/--content-weight, or use --optimizer adam with a smaller --learning-rate)"
        }
    }
}

/// What a finished run reports.
public struct StyleSummary {
    /// The run folder.
    public var folder: URL
    /// The result image.
    public var result: URL
    /// Output width and height.
    public var width: Int, height: Int
    /// Iterations and loss evaluations done (all scales).
    public var iterations: Int, evaluations: Int
    /// Final loss terms (last scale).
    public var terms: StyleLossTerms
    /// Why the last scale's optimiser stopped.
    public var stopReason: String
    /// Median seconds per loss-and-gradient evaluation.
    public var secondsPerEvaluation: Double
}

/// `gen style CONTENT STYLE...`: optimises an image so that its deep features match the content
/// image and its feature correlations (Gram matrices) match the style images (Gatys et al. 2016).
///
/// Every input is read and checked before anything is written: images (any kind the image layer
/// decodes, by magic bytes), sizes against the network's minimum input, layer names, weights.
public final class StyleTransfer {
    /// Effective settings.
    public let config: StyleConfig
    /// The network in use.
    public let network: FeatureExtractor
    /// Effective layers and weights.
    public let contentLayers: [String], styleLayers: [String]
    /// Effective loss weights.
    public let weights: StyleLossWeights
    /// Output width and height.
    public let width: Int, height: Int
    /// The file the result is written to.
    public let resultURL: URL
    let content: Image
    let styles: [Image]
    let initial: Image?
    let folder: RunFolder
    let progress: ProgressReporter
    var record: RunRecord
    /// Loss objects built (one per scale), kept for tests (targets computed once each).
    public private(set) var losses: [StyleLoss] = []

    /// Reads and checks all inputs, loads the network, creates the run folder.
    ///
    /// - Parameters:
    ///   - contentURL: the content image; stylesURLs: one or more style images.
    ///   - output: a folder (the run folder; refused when it holds another run's `run.json`,
    ///     `metrics.csv` or `result.png`), or a file ending in `.png`/`.jpg`/`.jpeg` (the result;
    ///     its records `NAME-run.json` and `NAME-metrics.csv` go beside it). Default
    ///     `outputs/style/<timestamp>/`.
    ///   - network: a feature extractor to use instead of loading `config.network` (tests).
    /// - Throws: `ImageError` (unreadable or undecodable images), `PretrainedError` and
    ///   ``StudioError/incompatibleCheckpoint(path:reason:)`` (missing or wrong weights),
    ///   ``StudioError/invalidOption(_:)`` (options, sizes below the network's minimum, unknown
    ///   layers), ``StudioError/cannotCreateFolder(path:reason:)``. Nothing is written before all
    ///   checks pass.
    public init(content contentURL: URL, styles styleURLs: [URL], config requested: StyleConfig, output: URL?,
                arguments: [String], progress: ProgressReporter, network injected: FeatureExtractor? = nil) throws {
        try requested.validate()
        let config = requested
        self.progress = progress
        guard !styleURLs.isEmpty else { throw StudioError.invalidOption("give at least one style image") }
        if let b = config.styleBlendWeights, b.count != styleURLs.count {
            throw StudioError.invalidOption("--style-blend-weights has \(b.count) values for \(styleURLs.count) style images")
        }
        // Images first (cheap, and the most common mistakes).
        let decode = ImageDecodeOptions(channels: 3, maxPixels: config.maxPixels)
        let contentImage = try Image(contentsOf: contentURL.path, options: decode)
        let styleImages = try styleURLs.map { try Image(contentsOf: $0.path, options: decode) }
        var initialImage: Image?
        switch config.initialImage {
        case "content", "random": break
        default: initialImage = try Image(contentsOf: config.initialImage, options: decode)
        }

        // Network.
        let net: FeatureExtractor
        if let injected {
            net = injected
        } else {
            net = try StyleTransfer.loadNetwork(config)
        }
        network = net
        let defaults = StyleNetworkDefaults.forNetwork(net.name)
        contentLayers = config.contentLayers ?? defaults.contentLayers
        styleLayers = config.styleLayers ?? defaults.styleLayers
        weights = StyleLossWeights(content: config.contentWeight ?? defaults.weights.content,
                                   style: config.styleWeight ?? defaults.weights.style,
                                   totalVariation: config.tvWeight ?? defaults.weights.totalVariation)
        for (option, names) in [("--content-layers", contentLayers), ("--style-layers", styleLayers)] {
            for n in names where net.resolveLayer(n) == nil {
                throw StudioError.invalidOption("\(option): network \(net.name) has no layer '\(n)' (layers: \(net.layerNames.joined(separator: ", ")))")
            }
        }
        if contentLayers.isEmpty && weights.content > 0 { throw StudioError.invalidOption("--content-layers: no layer given") }
        if styleLayers.isEmpty && weights.style > 0 { throw StudioError.invalidOption("--style-layers: no layer given") }

        // Sizes.
        let longest = max(contentImage.width, contentImage.height)
        var target: Int
        if let s = config.size { target = s }
        else if let h = config.height { target = Int((Double(longest) * Double(h) / Double(contentImage.height)).rounded()) }
        else { target = longest }
        if target > config.maxSize {
            if config.size != nil || config.height != nil {
                progress.report(.warning("the requested size (\(target) px on the longest side) exceeds --max-size \(config.maxSize); using \(config.maxSize)"))
            } else {
                progress.report(.info("content image \(contentImage.width)x\(contentImage.height) scaled to \(config.maxSize) px on its longest side (--max-size)"))
            }
            target = config.maxSize
        }
        let (w, h) = StyleTransfer.scaled(contentImage.width, contentImage.height, longest: target)
        let minimum = net.minimumInputSize
        guard min(w, h) >= minimum else {
            throw StudioError.invalidOption("\(contentURL.path): content image \(contentImage.width)x\(contentImage.height) gives an output of \(w)x\(h) pixels, smaller than \(net.name)'s minimum input of \(minimum) px on each side; use a larger --size (or content image)")
        }
        for (url, im) in zip(styleURLs, styleImages) {
            let (sw, sh) = StyleTransfer.scaled(im.width, im.height, longest: max(1, Int((Double(target) * config.styleScale).rounded())))
            guard min(sw, sh) >= minimum else {
                throw StudioError.invalidOption("\(url.path): style image \(im.width)x\(im.height) becomes \(sw)x\(sh) at --style-scale \(config.styleScale), smaller than \(net.name)'s minimum input of \(minimum) px on each side; raise --style-scale or --size")
            }
        }
        width = w
        height = h
        content = contentImage
        styles = styleImages
        initial = initialImage
        self.config = config

        // Output location.
        var outFolder = output
        var result: URL?
        if let o = output, ["png", "jpg", "jpeg", "jpe", "jfif"].contains(o.pathExtension.lowercased()) {
            outFolder = o.deletingLastPathComponent()
            result = o
        } else if let o = output, StyleTransfer.otherImageExtensions.contains(o.pathExtension.lowercased()) {
            // An image name gen cannot write: not a folder to make.
            throw StudioError.invalidOption("--output \(o.path): gen writes .png or .jpg images, not .\(o.pathExtension) (or give a folder)")
        }
        if result == nil, let o = outFolder {
            // A folder: its records would be replaced; refuse one holding another run's.
            for name in ["run.json", "metrics.csv", "result.png"]
            where FileManager.default.fileExists(atPath: o.appendingPathComponent(name).path) {
                throw StudioError.invalidOption(
                    "\(o.path) already holds another run's \(name); choose another --output folder, or name the result file (-o \(o.path)/NAME.png: its records are NAME-run.json and NAME-metrics.csv)")
            }
        }
        var runFolder = try RunFolder(explicit: outFolder, generator: "style")
        if let result {
            // Records named after the result, so results sharing a folder keep their own.
            runFolder.recordFileName = result.deletingPathExtension().lastPathComponent + "-run.json"
            // n.png and n.jpg would share them: refuse records that belong to another result.
            let existing = runFolder.file(runFolder.recordFileName)
            if let data = try? Data(contentsOf: existing), let other = try? JSONDecoder().decode(RunRecord.self, from: data),
               let otherResult = other.settings["result"], !samePath(URL(fileURLWithPath: otherResult), result) {
                runFolder.discardIfUnused()
                throw StudioError.invalidOption("\(existing.path) is the record of another result (\(otherResult)); give this result another name")
            }
            // The result file may be another run's: `--output DIR` wrote DIR/result.png beside DIR/run.json.
            if let owner = StyleTransfer.otherRecord(claiming: result, in: runFolder) {
                runFolder.discardIfUnused()
                throw StudioError.invalidOption("\(result.path) is the result of another run (its record is \(owner.path)); give this result another name")
            }
        }
        folder = runFolder
        resultURL = result ?? folder.file("result.png")
        // Files this run will replace at its end, checked now rather than after every iteration.
        let records = [resultURL, folder.file(folder.recordFileName),
                       folder.file(folder.recordFileName == "run.json" ? "metrics.csv"
                                   : resultURL.deletingPathExtension().lastPathComponent + "-metrics.csv")]
        for url in records {
            if let problem = replacementRefusal(of: url.path) {
                folder.discardIfUnused()
                throw StudioError.invalidOption("\(url.path): \(problem)")
            }
        }
        record = RunRecord(generator: "style", arguments: arguments, settings: [:], seed: config.seed)
        record.settings = describeSettings()
        let mb = Double(memoryEstimate(defaults: defaults)) / 1e6
        progress.report(.info(String(format: "%@ %dx%d, %@, about %.0f MB of memory (network activations and optimiser history)",
                                     net.name, w, h, config.optimizer, mb)))
        if mb * 1e6 > Double(ProcessInfo.processInfo.physicalMemory) * 0.8 {
            progress.report(.warning(String(format: "the estimated %.0f MB exceed 80%% of this machine's memory; lower --size or --history", mb)))
        }
    }

    /// Image extensions gen reads but does not write: an `--output` ending in one is refused rather
    /// than made into a folder of that name.
    static let otherImageExtensions: Set<String> = ["gif", "bmp", "webp", "tif", "tiff", "ppm", "pgm", "pnm", "heic", "heif",
                                                    "avif", "jp2", "ico", "psd", "qoi", "svg"]

    /// A style record in `folder` other than this run's own whose result is `result`: `run.json` of
    /// an `--output DIR` run (its result is `result.png`), or `NAME-run.json` naming this file.
    static func otherRecord(claiming result: URL, in folder: RunFolder) -> URL? {
        guard FileManager.default.fileExists(atPath: result.path),
              let names = try? FileManager.default.contentsOfDirectory(atPath: folder.url.path) else { return nil }
        for name in names.sorted() where (name == "run.json" || name.hasSuffix("-run.json")) && name != folder.recordFileName {
            let url = folder.file(name)
            guard let data = try? Data(contentsOf: url), let other = try? JSONDecoder().decode(RunRecord.self, from: data),
                  other.generator == "style" else { continue }
            if let claimed = other.settings["result"] {
                if samePath(URL(fileURLWithPath: claimed), result) { return url }
            } else if name == "run.json" && result.lastPathComponent == "result.png" {
                return url      // a folder run that has not finished yet
            }
        }
        return nil
    }

    /// Loads the configured network: random weights, or the weights file (explicit or cached).
    /// - Throws: `PretrainedError` (unknown network, missing file, how to get the weights) or
    ///   ``StudioError/incompatibleCheckpoint(path:reason:)`` for a file that is not usable weights.
    public static func loadNetwork(_ config: StyleConfig) throws -> ImageNetClassifier {
        if config.randomWeights {
            do { return try makeRandomNetwork(named: config.network, seed: config.seed) }
            catch let e as PretrainedError { throw e }
            catch { throw StudioError.invalidOption("--network \(config.network): \(error)") }
        }
        let url = try WeightsRegistry.resolveWeights(network: config.network, explicit: config.weightsPath.map { URL(fileURLWithPath: $0) })
        do {
            return try loadPretrainedNetwork(named: config.network, weights: url)
        } catch let e as PretrainedError {
            throw e
        } catch let e as StudioError {
            throw e
        } catch let e as CheckpointError {
            throw e     // already "PATH: reason", as gen dream and gen classify report it
        } catch {
            throw StudioError.incompatibleCheckpoint(path: url.path, reason: "not usable as \(config.network) weights: \(error)")
        }
    }

    /// `width x height` scaled so the longer side is `longest` (aspect kept, sides ≥ 1).
    static func scaled(_ width: Int, _ height: Int, longest: Int) -> (Int, Int) {
        let s = Double(longest) / Double(max(width, height))
        return (max(1, Int((Double(width) * s).rounded())), max(1, Int((Double(height) * s).rounded())))
    }

    /// Bytes: activations kept for the backward pass, the optimiser's vectors, images.
    func memoryEstimate(defaults: StyleNetworkDefaults) -> Int {
        let pixels = Double(width * height)
        let history = config.optimizer == "lbfgs" ? Double(2 * config.historySize + 8) : 6
        return Int(4 * pixels * (defaults.floatsPerPixel + 3 * history)) + 64 << 20
    }

    func describeSettings() -> [String: String] {
        var s: [String: String] = [:]
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        if let data = try? enc.encode(config), let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
            s = obj.mapValues { "\($0)" }
        }
        s["network"] = network.name
        s["contentLayers"] = contentLayers.joined(separator: ",")
        s["styleLayers"] = styleLayers.joined(separator: ",")
        s["contentWeight"] = "\(weights.content)"
        s["styleWeight"] = "\(weights.style)"
        s["tvWeight"] = "\(weights.totalVariation)"
        s["width"] = "\(width)"
        s["height"] = "\(height)"
        return s
    }

    /// The sizes of the scales, coarse to fine (one unless ``StyleConfig/multiscale``).
    func levels() -> [(Int, Int)] {
        let longest = max(width, height)
        guard config.multiscale else { return [(width, height)] }
        var out: [(Int, Int)] = []
        for div in [4, 2] {
            let (w, h) = StyleTransfer.scaled(width, height, longest: longest / div)
            // A coarse level is used only if the content and every style image fit the network there.
            let styleLongest = max(1, Int((Double(max(w, h)) * config.styleScale).rounded()))
            let stylesFit = styles.allSatisfy { im in
                let (sw, sh) = StyleTransfer.scaled(im.width, im.height, longest: styleLongest)
                return min(sw, sh) >= network.minimumInputSize
            }
            if min(w, h) >= network.minimumInputSize && longest / div >= 32 && stylesFit { out.append((w, h)) }
        }
        out.append((width, height))
        return out
    }

    /// Runs the optimisation and writes the result, intermediate images (`--save-every`),
    /// `metrics.csv` and `run.json`.
    /// - Parameter shouldStop: polled after every iteration (Ctrl-C): the current image is then
    ///   written as the result.
    /// - Throws: ``StyleError/nonFiniteLoss(iteration:level:)``; `ImageError` when writing fails.
    public func run(shouldStop: @escaping () -> Bool = { false }) throws -> StyleSummary {
        do {
            return try runLevels(shouldStop: shouldStop)
        } catch {
            record.outcome = "failed: \(error)"
            folder.recordFailure(error, record: record)
            throw error
        }
    }

    private func runLevels(shouldStop: @escaping () -> Bool) throws -> StyleSummary {
        let start = Date()
        var metricsRows: [[String]] = []
        let header = ["scale", "iteration", "evaluations", "total", "content", "style", "tv", "elapsed_s"]
        var totalIterations = 0, totalEvaluations = 0
        var pixels: [Float] = []
        var lastTerms = StyleLossTerms(content: 0, style: 0, totalVariation: 0)
        var reason = ""
        var evalTimes: [Double] = []
        var stopped = false
        let levels = levels()
        var rng = RandomGenerator(seed: config.seed)
        for (li, (lw, lh)) in levels.enumerated() where !stopped {
            let contentL = try content.resized(width: lw, height: lh)
            let longest = max(1, Int((Double(max(lw, lh)) * config.styleScale).rounded()))
            let styleL = try styles.map { im -> Image in
                let (sw, sh) = StyleTransfer.scaled(im.width, im.height, longest: longest)
                return try im.resized(width: sw, height: sh)
            }
            let t0 = Date()
            let loss = try StyleLoss(network: network, content: contentL.tensor(), styles: styleL.map { $0.tensor() },
                                     blendWeights: config.styleBlendWeights, contentLayers: contentLayers,
                                     styleLayers: styleLayers, weights: weights)
            losses.append(loss)
            record.timings["targets_scale\(li + 1)"] = Date().timeIntervalSince(t0)
            // Starting point.
            if li > 0 {
                let prev = Image(width: levels[li - 1].0, height: levels[li - 1].1, channels: 3,
                                 pixels: pixels.map { min(max($0, 0), 1) })
                pixels = try prev.resized(width: lw, height: lh, filter: .bicubic).pixels
            } else if let initial {
                pixels = try initial.resized(width: lw, height: lh).pixels
            } else if config.initialImage == "random" {
                pixels = (0..<(lw * lh * 3)).map { _ in rng.nextUniform() }
            } else {
                pixels = contentL.pixels
            }
            if levels.count > 1 { progress.report(.info("scale \(li + 1)/\(levels.count): \(lw)x\(lh)")) }

            var iterTerms: [(Double, StyleLossTerms)] = []
            let levelStart = Date()
            var levelIterations = 0
            let objective: ([Float]) -> (Double, [Float]) = { x in
                let e0 = Date()
                let (terms, grad) = loss.evaluate(x)
                evalTimes.append(Date().timeIntervalSince(e0))
                iterTerms.append((terms.total, terms))
                return (terms.total, grad)
            }
            let afterIteration: (Int, Int, Double, [Float]) -> Bool = { [self] it, evals, value, x in
                levelIterations = it
                let terms = iterTerms.last(where: { $0.0 == value })?.1 ?? iterTerms.last?.1 ?? lastTerms
                iterTerms.removeAll(keepingCapacity: true)
                lastTerms = terms
                let elapsed = Date().timeIntervalSince(start)
                metricsRows.append([String(li + 1), String(it), String(totalEvaluations + evals), String(format: "%.6g", terms.total),
                                    String(format: "%.6g", terms.content), String(format: "%.6g", terms.style),
                                    String(format: "%.6g", terms.totalVariation), String(format: "%.2f", elapsed)])
                let rate = Double(it) / max(Date().timeIntervalSince(levelStart), 1e-9)
                let remaining = Double(config.iterations - it) / max(rate, 1e-9)
                progress.report(.step(step: it, totalSteps: config.iterations, epoch: li + 1, phase: "level", loss: terms.total, unit: "loss",
                                      rate: rate, rateUnit: "it/s", elapsed: elapsed, eta: remaining))
                progress.report(.metrics(step: it, epoch: li + 1, phase: "level", values: [
                    ("total", terms.total), ("content", terms.content), ("style", terms.style), ("tv", terms.totalVariation)]))
                if let every = config.saveEvery, (totalIterations + it) % every == 0 {
                    let url = folder.file(snapshotPrefix + String(format: "iter-%05d.png", totalIterations + it))
                    if (try? self.finalImage(x, width: lw, height: lh, content: contentL).write(to: url.path)) != nil {
                        progress.report(.wrote(url, what: "intermediate image"))
                    }
                }
                if shouldStop() { stopped = true; return false }
                return true
            }

            var levelEvaluations = 0
            if config.optimizer == "lbfgs" {
                var o = LBFGSOptions()
                o.maxIterations = config.iterations
                o.maxEvaluations = config.maxEvaluations
                o.historySize = config.historySize
                o.learningRate = config.learningRate ?? 1
                o.toleranceGrad = 0
                let r = LBFGS(options: o).minimize(&pixels, objective: objective) { it, x in
                    afterIteration(it.iteration, it.evaluations, it.loss, x)
                }
                levelEvaluations = r.evaluations
                reason = r.reason.rawValue
                if r.reason == .nonFinite {
                    throw StyleError.nonFiniteLoss(iteration: totalIterations + r.iterations, level: li)
                }
                levelIterations = r.iterations
            } else {
                let adam = Adam(learningRate: Float(config.learningRate ?? 0.02), epsilon: 1e-8)
                let param = Tensor(shape: [pixels.count], scalars: pixels)
                reason = "iteration limit"
                for it in 1...config.iterations {
                    let (f, g) = objective(param.scalars)
                    levelEvaluations += 1
                    guard f.isFinite, g.allSatisfy({ $0.isFinite }) else {
                        throw StyleError.nonFiniteLoss(iteration: totalIterations + it, level: li)
                    }
                    param.grad = Tensor(shape: [g.count], scalars: g)
                    adam.update([param])
                    // Adam's iterate is reported with the loss measured just before its step.
                    if !afterIteration(it, levelEvaluations, f, param.scalars) { reason = "stopped"; break }
                }
                pixels = param.scalars
                if stopped { reason = "interrupted" }
            }
            if stopped { reason = "interrupted" }
            totalIterations += levelIterations
            totalEvaluations += levelEvaluations
        }
        let (fw, fh) = levels.last.map { ($0.0, $0.1) } ?? (width, height)
        let contentFinal = try content.resized(width: fw, height: fh)
        let image = finalImage(pixels, width: fw, height: fh, content: contentFinal)
        try image.write(to: resultURL.path)
        progress.report(.wrote(resultURL, what: "result"))
        try writeMetrics(header: header, rows: metricsRows)
        let sorted = evalTimes.sorted()
        let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        record.timings["total"] = Date().timeIntervalSince(start)
        record.timings["median_seconds_per_evaluation"] = median
        record.settings["iterations_done"] = "\(totalIterations)"
        record.settings["evaluations_done"] = "\(totalEvaluations)"
        record.settings["final_loss"] = String(format: "%.6g", lastTerms.total)
        record.settings["final_content_loss"] = String(format: "%.6g", lastTerms.content)
        record.settings["final_style_loss"] = String(format: "%.6g", lastTerms.style)
        record.settings["final_tv_loss"] = String(format: "%.6g", lastTerms.totalVariation)
        record.settings["result"] = resultURL.path
        record.finished = ISO8601DateFormatter().string(from: Date())
        record.outcome = stopped ? "interrupted" : "completed (\(reason))"
        try folder.writeRecord(record)
        return StyleSummary(folder: folder.url, result: resultURL, width: fw, height: fh, iterations: totalIterations,
                            evaluations: totalEvaluations, terms: lastTerms, stopReason: reason, secondsPerEvaluation: median)
    }

    /// Pixels clamped to [0, 1], with the content's colours when ``StyleConfig/preserveColors``.
    func finalImage(_ pixels: [Float], width w: Int, height h: Int, content: Image) -> Image {
        let im = Image(width: w, height: h, channels: 3, pixels: pixels.map { $0.isFinite ? min(max($0, 0), 1) : 0 })
        return config.preserveColors ? StyleColor.preservingColors(stylised: im, content: content) : im
    }

    /// The prefix of `--save-every` snapshots: `NAME-` beside an `--output NAME.png` (so results
    /// sharing a folder keep their own), none in a run folder.
    var snapshotPrefix: String {
        folder.recordFileName == "run.json" ? "" : resultURL.deletingPathExtension().lastPathComponent + "-"
    }

    func writeMetrics(header: [String], rows: [[String]]) throws {
        var text = header.joined(separator: ",") + "\n"
        for r in rows { text += r.joined(separator: ",") + "\n" }
        let stem = resultURL.deletingPathExtension().lastPathComponent
        try writeFileAtomically(Data(text.utf8), to: folder.file(folder.recordFileName == "run.json" ? "metrics.csv" : stem + "-metrics.csv"))
    }
}
