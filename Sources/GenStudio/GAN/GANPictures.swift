import Foundation
import GenTensor
import GenData

/// Pictures a GAN run writes: sample grids and the loss curve.
public enum GANPictures {
    /// Whether every value of `t` is finite (no NaN, no ±∞).
    public static func isFinite(_ t: Tensor) -> Bool { allFinite([t]) }

    /// Writes the images of `batch` (`[N, S, S, C]` in [-1, 1]) as one grid PNG (`columns` per row,
    /// default ceil(√N), 2-pixel white padding), atomically.
    /// - Throws: ``GenData/ImageError`` (encoding, writing); ``StudioError/invalidOption(_:)`` when
    ///   `batch` holds a non-finite value (a NaN grid is never written).
    public static func writeGrid(_ batch: Tensor, to url: URL, columns: Int? = nil) throws {
        guard isFinite(batch) else { throw StudioError.invalidOption("refusing to write \(url.path): the images hold NaN or infinity") }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let grid = try Image.grid(tensor: batch, range: .signed, columns: columns)
        try grid.write(to: url.path, format: .png)
    }

    /// Spread of a batch `[N, ...]`: the mean over positions of the standard deviation across the N
    /// images (0 when all images are equal). Real photographs in [-1, 1] give about 0.4 to 0.6; a
    /// generator that collapsed to one mode gives a small fraction of its data's value.
    public static func diversity(_ batch: Tensor) -> Double {
        let n = batch.shape[0]
        guard n > 1 else { return 0 }
        let per = batch.count / n
        let p = batch.storage.base
        var total = 0.0
        for j in 0..<per {
            var s = 0.0, s2 = 0.0
            for i in 0..<n { let v = Double(p[i * per + j]); s += v; s2 += v * v }
            let mean = s / Double(n)
            total += max(0, s2 / Double(n) - mean * mean).squareRoot()
        }
        return total / Double(per)
    }

    /// One curve of ``lossCurve(_:width:height:)``: values by step, drawn in `color` (RGB in [0, 1]).
    public struct Series {
        /// x coordinates (training steps), ascending.
        public var steps: [Double]
        /// y values (losses); non-finite values are skipped.
        public var values: [Double]
        /// Line colour, RGB in [0, 1].
        public var color: (Float, Float, Float)
        /// A curve.
        public init(steps: [Double], values: [Double], color: (Float, Float, Float)) {
            self.steps = steps
            self.values = values
            self.color = color
        }
    }

    /// A line chart of loss curves on white: x from the first to the last step, y from 0 to the
    /// largest finite value (at least 1), light grey lines at every 0.5 of loss and a black frame.
    /// No text (gen draws no fonts): the colours are documented where the picture is written.
    public static func lossCurve(_ series: [Series], width: Int = 800, height: Int = 400) -> Image {
        var im = Image(width: width, height: height, channels: 3, repeating: 1)
        let left = 10, right = width - 10, top = 10, bottom = height - 10
        let all = series.flatMap { s in zip(s.steps, s.values).filter { $0.1.isFinite } }
        let x0 = all.map(\.0).min() ?? 0, x1 = max(all.map(\.0).max() ?? 1, x0 + 1)
        let yMax = max(1, all.map(\.1).max() ?? 1)
        func px(_ x: Double) -> Double { Double(left) + (x - x0) / (x1 - x0) * Double(right - left) }
        func py(_ y: Double) -> Double { Double(bottom) - min(max(y, 0), yMax) / yMax * Double(bottom - top) }
        func plot(_ x: Int, _ y: Int, _ c: (Float, Float, Float)) {
            guard x >= 0 && x < width && y >= 0 && y < height else { return }
            let o = (y * width + x) * 3
            im.pixels[o] = c.0; im.pixels[o + 1] = c.1; im.pixels[o + 2] = c.2
        }
        var g = 0.5
        while g < yMax {
            let y = Int(py(g).rounded())
            for x in left...right { plot(x, y, (0.88, 0.88, 0.88)) }
            g += 0.5
        }
        for x in left...right { plot(x, top, (0, 0, 0)); plot(x, bottom, (0, 0, 0)) }
        for y in top...bottom { plot(left, y, (0, 0, 0)); plot(right, y, (0, 0, 0)) }
        for s in series {
            var prev: (Double, Double)?
            for (x, v) in zip(s.steps, s.values) where v.isFinite {
                let p = (px(x), py(v))
                if let q = prev {
                    let n = max(1, Int(max(abs(p.0 - q.0), abs(p.1 - q.1)).rounded(.up)))
                    for k in 0...n {
                        let t = Double(k) / Double(n)
                        let xx = Int((q.0 + (p.0 - q.0) * t).rounded()), yy = Int((q.1 + (p.1 - q.1) * t).rounded())
                        plot(xx, yy, s.color); plot(xx, yy + 1, s.color)
                    }
                } else {
                    plot(Int(p.0.rounded()), Int(p.1.rounded()), s.color)
                }
                prev = p
            }
        }
        return im
    }
}
