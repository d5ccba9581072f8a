import XCTest
import GenData
import GenTensor
@testable import GenStudio

/// The latent scatter plot on small evaluation sets (the window used to collapse onto one point).
final class VAEPicturesTests: XCTestCase {
    /// Columns and rows of pixels drawn in `colour` inside the plot area.
    func extent(of colour: (Float, Float, Float), in im: Image, size: Int) -> (xs: ClosedRange<Int>, ys: ClosedRange<Int>)? {
        var xs: [Int] = [], ys: [Int] = []
        for y in 0..<size { for x in 0..<size where im[x, y, 0] == colour.0 && im[x, y, 1] == colour.1 && im[x, y, 2] == colour.2 {
            xs.append(x); ys.append(y)
        } }
        guard let x0 = xs.min(), let x1 = xs.max(), let y0 = ys.min(), let y1 = ys.max() else { return nil }
        return (x0...x1, y0...y1)
    }

    func testFewPointsStayInsideTheFrame() throws {
        let size = 256
        for points in [[(Float(-1.5), Float(0.5)), (2.0, -0.25)],
                       [(0.1, 0.1), (0.2, 0.4), (-0.3, 0.0), (0.5, -0.2), (0.05, 0.3), (0.4, 0.45)]] {
            let labels = Array(0..<points.count)
            let im = VAEPictures.scatterPlot(points: points, labels: labels, size: size)
            XCTAssertEqual(im.width, size + 40)
            for k in labels {
                let e = try XCTUnwrap(extent(of: VAEPictures.palette[k], in: im, size: size), "point \(k) not drawn")
                // A 3×3 dot well inside the frame: not clamped onto the border.
                XCTAssertEqual(e.xs.count, 3, "point \(k) of \(points.count)"); XCTAssertEqual(e.ys.count, 3)
                XCTAssertGreaterThan(e.xs.lowerBound, 4); XCTAssertLessThan(e.xs.upperBound, size - 5)
                XCTAssertGreaterThan(e.ys.lowerBound, 4); XCTAssertLessThan(e.ys.upperBound, size - 5)
            }
            // Each legend swatch has its label's number beside it (black pixels right of the swatch).
            var black = 0
            for y in 8..<(8 + points.count * 20) { for x in (size + 21)..<(size + 40) where im[x, y, 0] == 0 { black += 1 } }
            XCTAssertGreaterThan(black, 8 * points.count)
        }
    }

    func testCoincidentPointsGetAUnitWindowWithGridLines() {
        let size = 128
        let im = VAEPictures.scatterPlot(points: [(0.5, 0.5), (0.5, 0.5)], labels: nil, size: size)
        // The window is 0.5 ± 1: the axes through 0 (gray) and grid lines at 1 are drawn.
        var gray = 0
        for y in 0..<size { for x in 0..<size where im[x, y, 0] == 0.55 { gray += 1 } }
        XCTAssertGreaterThan(gray, size)
        // The grid lines' values are written along the bottom and left edges.
        var ink = 0
        for y in (size - 12)..<size { for x in 0..<size where im[x, y, 0] == 0.35 { ink += 1 } }
        XCTAssertGreaterThan(ink, 5, "no tick values along the bottom")
        ink = 0
        for y in 0..<size { for x in 0..<12 where im[x, y, 0] == 0.35 { ink += 1 } }
        XCTAssertGreaterThan(ink, 5, "no tick values along the left edge")
        XCTAssertNotNil(extent(of: VAEPictures.palette[0], in: im, size: size))
    }

    /// Pictures and evaluation of large images go a few images per pass (a 15×15 manifold at
    /// --image-size 1024 was one 30 GB pass and crashed), with the same results as one pass.
    func testLargeImagesAreEncodedAndDecodedInSmallChunks() throws {
        var rng = RandomGenerator(seed: 3)
        XCTAssertEqual(VAEModelConfig().inferenceChunk(limit: 500), 500)
        XCTAssertEqual(VAEModelConfig(imageSize: 1024).inferenceChunk(limit: 256), 1)
        let model = VAEModel(config: VAEModelConfig(imageSize: 256), using: &rng)
        let chunk = model.inferenceChunk(limit: 500)
        XCTAssertEqual(chunk, 6)
        let images = Tensor.uniform([chunk + 1, 256, 256, 1], using: &rng)
        let chunked = model.latentMeans(images).scalars
        let onePass = withNoGrad { model.encode(images).mean.scalars }
        XCTAssertEqual(chunked.count, (chunk + 1) * 2)
        for (a, b) in zip(chunked, onePass) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b))) }
        let codes = Tensor.normal([chunk + 1, 2], using: &rng)
        let decoded = model.decodeImages(codes)
        XCTAssertEqual(decoded.count, chunk + 1)
        let last = Image.images(from: withNoGrad { model.decode(codes.slice(axis: 0, range: chunk..<(chunk + 1))) })[0]
        XCTAssertEqual(decoded[chunk].pixels, last.pixels)
    }
}
