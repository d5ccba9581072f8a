import Foundation
import XCTest
@testable import GenStudio
import GenNN
import GenData
import GenTensor

/// A deterministic test picture: smooth colour ramps plus a little seeded noise (so ReLUs fire and
/// gradients are not degenerate), `channels` 1, 3 or 4 (alpha 1 except a transparent band).
func dreamTestImage(width: Int, height: Int, channels: Int = 3, seed: UInt64 = 5) -> Image {
    var rng = RandomGenerator(seed: seed)
    var px = [Float](repeating: 0, count: width * height * channels)
    for y in 0..<height {
        for x in 0..<width {
            let u = Float(x) / Float(max(width - 1, 1)), v = Float(y) / Float(max(height - 1, 1))
            let base: [Float] = [0.2 + 0.6 * u, 0.3 + 0.5 * v, 0.5 + 0.3 * sin(6 * u + 4 * v)]
            for c in 0..<channels {
                let o = (y * width + x) * channels + c
                if channels == 4 && c == 3 {
                    px[o] = (y > height / 3 && y < height / 2) ? 0 : 1
                } else {
                    px[o] = min(max(base[min(c, 2)] + 0.1 * (rng.nextUniform() - 0.5), 0), 1)
                }
            }
        }
    }
    return Image(width: width, height: height, channels: channels, pixels: px)
}

/// A feature extractor whose single "activation" is the input itself laid out as one row
/// (`[1, 1, H·W, 3]`, so the objective's 2-pixel interior crop does not apply): the objective of a
/// tile is `mean(x²)` over the tile and its gradient `2x / (tile pixels·3)`, nonzero wherever a
/// tile covered a (nonzero) pixel. Lets the tests see exactly which pixels the tiles cover.
final class IdentityExtractor: FeatureExtractor {
    let name = "identity"
    let layerNames = ["pixels"]
    let minimumInputSize: Int
    init(minimumInputSize: Int = 8) { self.minimumInputSize = minimumInputSize }
    func preprocess(_ rgb: Tensor) -> Tensor { rgb }
    func activations(_ input: Tensor, layers: [String]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for l in layers { out[l] = input.reshaped([1, 1, -1, 3]) }
        return out
    }
    func resolveLayer(_ name: String) -> String? { name == "pixels" ? name : nil }
}

final class DreamTests: XCTestCase {
    /// Random SqueezeNet 1.1 (minimum input 17), built once.
    static let net: ImageNetClassifier = try! makeRandomNetwork(named: "squeezenet1_1", seed: 3)

    func config(iterations: Int = 2, octaves: Int = 1, jitter: Int = 0, tile: Int = 512, seed: UInt64 = 1,
                layers: [String: Float] = ["fire3": 1, "fire5": 1.5]) -> DreamConfig {
        var c = DreamConfig(layers: layers)
        c.iterations = iterations
        c.octaves = octaves
        c.jitter = jitter
        c.tileSize = tile
        c.seed = seed
        c.step = 0.02
        return c
    }

    func dream(_ c: DreamConfig, guide: Image? = nil, progress: ProgressReporter = SilentProgress()) throws -> DeepDream {
        try DeepDream(network: Self.net, config: c, guide: guide, progress: progress)
    }

    func assertFiniteUnit(_ im: Image, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(im.pixels.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 }, "pixels outside [0, 1] or non-finite", file: file, line: line)
    }

    // MARK: Objective and sizes

    func testObjectiveRisesOverOctave() throws {
        let im = dreamTestImage(width: 48, height: 40)
        let (out, reports) = try dream(config(iterations: 3)).run(im)
        XCTAssertEqual(reports.count, 1)
        let r = reports[0]
        XCTAssertEqual(r.steps, 3)
        XCTAssertTrue(r.initialLoss.isFinite && r.finalLoss.isFinite)
        XCTAssertGreaterThan(r.finalLoss, r.initialLoss * 1.01, "objective did not rise: \(r)")
        XCTAssertNotEqual(out.pixels, im.pixels)
        assertFiniteUnit(out)
    }

    func testObjectiveRisesAtEveryOctaveAndOutputKeepsOddSize() throws {
        let im = dreamTestImage(width: 53, height: 41)
        var c = config(iterations: 2, octaves: 2, jitter: 3)
        c.octaveScale = 1.4
        let (out, reports) = try dream(c).run(im)
        XCTAssertEqual(out.width, 53)
        XCTAssertEqual(out.height, 41)
        XCTAssertEqual(out.channels, 3)
        assertFiniteUnit(out)
        // Octaves from the smallest (53/1.4 ≈ 38, 41/1.4 ≈ 29) to the full size.
        XCTAssertEqual(reports.map(\.width), [38, 53])
        XCTAssertEqual(reports.map(\.height), [29, 41])
        for r in reports { XCTAssertGreaterThan(r.finalLoss, r.initialLoss, "octave \(r.width)x\(r.height)") }
    }

    func testMaxLossStopsTheOctaveEarly() throws {
        var c = config(iterations: 5)
        c.maxLoss = 1e-9   // any objective (> 0 with positive weights) exceeds it: stop before the first step
        let (_, reports) = try dream(c).run(dreamTestImage(width: 40, height: 40))
        XCTAssertEqual(reports[0].steps, 0)
        // A limit ≤ 0 stops nothing useful with positive weights: refused; with a negative weight
        // the objective can be negative, and such a limit means something.
        var zero = c
        zero.maxLoss = 0
        XCTAssertThrowsError(try zero.validate())
        var negative = c
        negative.layers = negative.layers.mapValues { -$0 }
        negative.maxLoss = -0.5
        XCTAssertNoThrow(try negative.validate())
    }

    func testSaveEveryCallsBack() throws {
        var c = config(iterations: 4, octaves: 2)
        c.saveEvery = 2
        var saved: [(Int, Int, Int, Int)] = []
        _ = try dream(c).run(dreamTestImage(width: 45, height: 39)) { im, octave, step in
            saved.append((octave, step, im.width, im.height))
        }
        XCTAssertEqual(saved.map(\.0), [1, 1, 2, 2])
        XCTAssertEqual(saved.map(\.1), [2, 4, 2, 4])
        XCTAssertEqual(saved.last.map { [$0.2, $0.3] }, [45, 39])
    }

    // MARK: Inputs of every kind

    func testGrayAndRGBAInCodeDreamLikeRGB() throws {
        let d = try dream(config(iterations: 1))
        let gray = dreamTestImage(width: 40, height: 36, channels: 1)
        let (g, gr) = try d.run(gray)
        XCTAssertEqual([g.width, g.height, g.channels], [40, 36, 3])
        // A gray image dreams exactly as its RGB copy does.
        let (g3, _) = try d.run(try gray.converted(channels: 3))
        XCTAssertEqual(g.pixels, g3.pixels)
        XCTAssertGreaterThan(gr[0].finalLoss, gr[0].initialLoss)

        let rgba = dreamTestImage(width: 40, height: 36, channels: 4)
        let (a, ar) = try d.run(rgba)
        XCTAssertEqual([a.width, a.height, a.channels], [40, 36, 3])
        let (a3, _) = try d.run(try rgba.converted(channels: 3))
        XCTAssertEqual(a.pixels, a3.pixels)
        XCTAssertGreaterThan(ar[0].finalLoss, ar[0].initialLoss)
        assertFiniteUnit(a)
    }

    func testSharedCaseInputsDream() throws {
        let d = try dream(config(iterations: 1, octaves: 2))
        // case01 gray JPEG (64x48), case02 RGBA PNG (64x64), case07 16-bit RGB PNG (64x64): decoded as
        // the CLI does (3 channels) and also with their own channels.
        for (name, size) in [("case01_gray.jpg", [64, 48]), ("case02_rgba_style.png", [64, 64]), ("case07_rgb16.png", [64, 64])] {
            let path = try studioCasePath(name).path
            for channels in [3, nil] as [Int?] {
                let im = try Image(contentsOf: path, options: ImageDecodeOptions(channels: channels))
                let (out, reports) = try d.run(im)
                XCTAssertEqual([out.width, out.height, out.channels], size + [3], name)
                XCTAssertEqual(reports.count, 2, name)
                assertFiniteUnit(out)
                XCTAssertTrue(reports.allSatisfy { $0.finalLoss > $0.initialLoss }, "\(name): \(reports)")
            }
        }
    }

    func testTooSmallImageIsACleanErrorWithTheMinimum() throws {
        let d = try dream(config())
        for (w, h) in [(16, 40), (40, 16), (5, 5)] {
            XCTAssertThrowsError(try d.run(dreamTestImage(width: w, height: h))) { error in
                guard case StudioError.invalidOption(let m) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(m.contains("17") && m.contains("\(w)x\(h)"), m)
            }
        }
        // The 16-bit gray case (256x16) is 16 pixels tall: below SqueezeNet 1.1's 17.
        let path = try studioCasePath("case07_gray16.png").path
        let im = try Image(contentsOf: path, options: ImageDecodeOptions(channels: 3))
        XCTAssertThrowsError(try d.run(im)) { error in
            XCTAssertTrue(String(describing: error).contains("17"), "\(error)")
        }
    }

    func testOctavesBelowTheMinimumAreSkippedWithAnInfoEvent() throws {
        // 30x30 over 3 octaves of 1.4: 15x15 (below 17: skipped), 21x21, 30x30.
        let progress = RecordingProgress()
        let (out, reports) = try dream(config(iterations: 1, octaves: 3), progress: progress).run(dreamTestImage(width: 30, height: 30))
        XCTAssertEqual(reports.map(\.width), [21, 30])
        XCTAssertEqual([out.width, out.height], [30, 30])
        let infos = progress.events.compactMap { e -> String? in if case .info(let s) = e { return s } else { return nil } }
        XCTAssertTrue(infos.contains { $0.contains("15x15") && $0.contains("skipped") && $0.contains("17") }, "\(infos)")
        // Every octave run is reported too.
        XCTAssertEqual(infos.filter { $0.hasPrefix("octave") && $0.contains("objective") }.count, 2, "\(infos)")
        // Step events count octaves (named so), not epochs.
        let phases = progress.events.compactMap { e -> String? in
            if case .step(_, _, let octave, let phase, _, _, _, _, _, _) = e { return "\(phase) \(octave)" } else { return nil }
        }
        XCTAssertEqual(phases, ["octave 1", "octave 2"])
    }

    func testUnknownLayerListsTheLayers() throws {
        XCTAssertThrowsError(try dream(config(layers: ["fire5": 1, "mixed4": 2]))) { error in
            guard case StudioError.invalidOption(let m) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(m.contains("mixed4"), m)
            for l in ["conv1", "fire2", "fire9", "conv10"] { XCTAssertTrue(m.contains(l), "\(m) lacks \(l)") }
        }
        // Aliases (torchvision paths) are accepted.
        XCTAssertNoThrow(try dream(config(layers: ["features.12": 1])))
    }

    func testInvalidConfigIsRejected() throws {
        var c = config()
        c.octaveScale = 1
        XCTAssertThrowsError(try dream(c))
        c = config(); c.tileSize = 8
        XCTAssertThrowsError(try dream(c))
        c = config(layers: [:])
        XCTAssertThrowsError(try dream(c))
    }

    // MARK: Guide, determinism

    func testGuidedDreamingRaisesItsObjective() throws {
        let guide = dreamTestImage(width: 36, height: 36, seed: 99)
        // A different picture: horizontal stripes.
        var im = dreamTestImage(width: 44, height: 40)
        for y in 0..<40 where y % 6 < 3 { for x in 0..<44 { for c in 0..<3 { im[x, y, c] = 0.9 } } }
        let d = try dream(config(iterations: 3), guide: guide)
        XCTAssertNotNil(d.guideFeatures)
        let (out, reports) = try d.run(im)
        XCTAssertGreaterThan(reports[0].finalLoss, reports[0].initialLoss, "\(reports)")
        assertFiniteUnit(out)
        // The guided result differs from the unguided one.
        let (plain, _) = try dream(config(iterations: 3)).run(im)
        XCTAssertNotEqual(out.pixels, plain.pixels)
        // A guide smaller than the network's minimum is a clean error.
        XCTAssertThrowsError(try dream(config(), guide: dreamTestImage(width: 10, height: 40)))
    }

    func testSameSeedSameDream() throws {
        let im = dreamTestImage(width: 47, height: 38)
        let c = config(iterations: 2, octaves: 2, jitter: 6, tile: 32, seed: 11)
        let (a, ra) = try dream(c).run(im)
        let (b, rb) = try dream(c).run(im)
        XCTAssertEqual(a.pixels, b.pixels)
        XCTAssertEqual(ra, rb)
        var c2 = c
        c2.seed = 12
        let (d, _) = try dream(c2).run(im)
        XCTAssertNotEqual(a.pixels, d.pixels, "the seed does not change jitter/tile offsets")
    }

    // MARK: Tiling

    /// Exactly which pixels the tiles cover, through an extractor whose tile gradient is 2x/(3·tile area):
    /// after the area scaling, every pixel's gradient must be n·2x/(3·full tile area) with n the number
    /// of times the shifted, border-mirrored view contains it (exactly 1 away from the borders),
    /// whatever the tiling, widening and jitter. A pixel covered twice, or never, or a wrongly undone roll
    /// (pairing a gradient with another pixel's value), or an unscaled small edge tile would break it.
    func testTilesCoverEveryPixelOnceAndJitterIsUndone() throws {
        let net = IdentityExtractor(minimumInputSize: 12)
        for (w, h, tile, jitter) in [(100, 70, 32, 0), (100, 70, 32, 9), (33, 97, 32, 5), (64, 64, 32, 0), (41, 29, 512, 7),
                                     (70, 45, 34, 3)] {
            var c = DreamConfig(layers: ["pixels": 1])
            c.tileSize = tile
            c.jitter = jitter
            let d = try DeepDream(network: net, config: c, progress: SilentProgress())
            var rng = RandomGenerator(seed: 4)
            let px = (0..<(w * h * 3)).map { _ in 0.1 + 0.9 * rng.nextUniform() }
            var grad = [Float](repeating: 0, count: px.count)
            let fullArea = Float(min(tile, w) * min(tile, h))
            for _ in 0..<6 {
                let loss = d.gradient(of: px, width: w, height: h, into: &grad, rng: &rng)
                XCTAssertTrue(loss.isFinite && loss > 0)
                // The shifted view mirrors the borders: a pixel within `jitter` of an edge may be seen
                // two (four in a corner) times or not at all in one step; every other pixel exactly once.
                var worst: Float = 0
                var interiorWrong = 0
                for i in 0..<px.count {
                    let expected = 2 * px[i] / (3 * fullArea)
                    let ratio = grad[i] / expected
                    let k = ratio.rounded()
                    worst = max(worst, abs(ratio - k))
                    // Per axis 0, 1 or 2 times, so 0, 1, 2 or 4 in all (corners mirror on both axes).
                    XCTAssertTrue([0, 1, 2, 4].contains(Int(k)), "\(w)x\(h): pixel \(i) seen \(k) times")
                    let x = (i / 3) % w, y = (i / 3) / w
                    if x >= jitter && x < w - jitter && y >= jitter && y < h - jitter && k != 1 { interiorWrong += 1 }
                }
                XCTAssertLessThan(worst, 1e-4, "\(w)x\(h) tile \(tile) jitter \(jitter): relative error \(worst)")
                XCTAssertEqual(interiorWrong, 0, "\(w)x\(h) tile \(tile) jitter \(jitter): interior pixels not covered exactly once")
            }
        }
    }

    /// The tiled gradient of a real network points the same way as the untiled one, and is finite.
    func testTiledGradientMatchesUntiled() throws {
        let w = 96, h = 80
        let im = dreamTestImage(width: w, height: h)
        func grad(tile: Int) throws -> [Float] {
            let d = try dream(config(jitter: 0, tile: tile, layers: ["fire3": 1]))
            var rng = RandomGenerator(seed: 2)
            var g = [Float](repeating: 0, count: w * h * 3)
            _ = d.gradient(of: im.pixels, width: w, height: h, into: &g, rng: &rng)
            return g
        }
        let full = try grad(tile: 512)
        let tiled = try grad(tile: 48)
        XCTAssertTrue(tiled.allSatisfy(\.isFinite))
        var dot: Double = 0, na: Double = 0, nb: Double = 0
        for i in 0..<full.count { dot += Double(full[i] * tiled[i]); na += Double(full[i] * full[i]); nb += Double(tiled[i] * tiled[i]) }
        let cosine = dot / (na.squareRoot() * nb.squareRoot())
        XCTAssertGreaterThan(cosine, 0.5, "tiled and untiled gradients disagree (cosine \(cosine))")
        // A tile's last row/column can get no gradient in one step (SqueezeNet's unpadded stride-2 first
        // convolution never reads the last pixel of an even-sized input, as for the whole image's last
        // row untiled); the tile offsets move every step, so over a few steps no row or column stays
        // dead except those dead untiled too: no seam stays in place.
        let d = try dream(config(jitter: 0, tile: 48, layers: ["fire3": 1]))
        var rng = RandomGenerator(seed: 9)
        var g = [Float](repeating: 0, count: w * h * 3), acc = [Float](repeating: 0, count: w * h * 3)
        for _ in 0..<6 {
            _ = d.gradient(of: im.pixels, width: w, height: h, into: &g, rng: &rng)
            for i in 0..<acc.count { acc[i] += abs(g[i]) }
        }
        func rowSum(_ a: [Float], _ y: Int) -> Float { (0..<(w * 3)).reduce(0) { $0 + abs(a[y * w * 3 + $1]) } }
        func colSum(_ a: [Float], _ x: Int) -> Float { (0..<h).reduce(0) { s, y in s + (0..<3).reduce(0) { $0 + abs(a[(y * w + x) * 3 + $1]) } } }
        for y in 0..<h where rowSum(full, y) > 0 { XCTAssertGreaterThan(rowSum(acc, y), 0, "row \(y) never got gradient") }
        for x in 0..<w where colSum(full, x) > 0 { XCTAssertGreaterThan(colSum(acc, x), 0, "column \(x) never got gradient") }
        let deadRows = (0..<h).filter { rowSum(acc, $0) == 0 }, deadCols = (0..<w).filter { colSum(acc, $0) == 0 }
        XCTAssertLessThanOrEqual(deadRows.count, 1, "\(deadRows)")
        XCTAssertLessThanOrEqual(deadCols.count, 1, "\(deadCols)")
    }

    func testTiledDreamIsFiniteAndKeepsSize() throws {
        let im = dreamTestImage(width: 131, height: 77)
        let (out, reports) = try dream(config(iterations: 2, octaves: 2, jitter: 8, tile: 40)).run(im)
        XCTAssertEqual([out.width, out.height], [131, 77])
        assertFiniteUnit(out)
        XCTAssertTrue(reports.allSatisfy { $0.finalLoss.isFinite && $0.initialLoss.isFinite })
    }

    // MARK: Real SqueezeNet (skipped without ../shared/data)

    func testRealSqueezeNetDreamRaisesTheObjective() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = ProcessInfo.processInfo.environment["GEN_DATA"].map { URL(fileURLWithPath: $0) }
            ?? root.deletingLastPathComponent().appendingPathComponent("shared/data")
        let weights = data.appendingPathComponent("weights/squeezenet1_0.pth")
        let photo = data.appendingPathComponent("images/content/chelsea.png")
        guard FileManager.default.fileExists(atPath: weights.path), FileManager.default.fileExists(atPath: photo.path) else {
            throw XCTSkip("shared data not found at \(data.path) (set GEN_DATA)")
        }
        let net = try loadPretrainedNetwork(named: "squeezenet1_0", weights: weights)
        let im = try Image(contentsOf: photo.path, options: ImageDecodeOptions(channels: 3)).resized(longerSide: 96)
        var c = DreamConfig(layers: DreamConfig.defaultLayers(network: net.name))
        c.iterations = 2
        c.octaves = 2
        c.jitter = 4
        let (out, reports) = try DeepDream(network: net, config: c, progress: SilentProgress()).run(im)
        XCTAssertEqual([out.width, out.height], [im.width, im.height])
        XCTAssertEqual(reports.count, 2)
        for r in reports { XCTAssertGreaterThan(r.finalLoss, r.initialLoss, "\(r)") }
        assertFiniteUnit(out)
    }
}
