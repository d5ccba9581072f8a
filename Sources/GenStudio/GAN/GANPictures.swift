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
        /// Legend text (shown in capitals; letters and digits of ``ChartFont``), or empty for none.
        public var name: String
        /// A curve.
        public init(steps: [Double], values: [Double], color: (Float, Float, Float), name: String = "") {
            self.steps = steps
            self.values = values
            self.color = color
            self.name = name
        }
    }

    /// A line chart of loss curves on white: x from the first to the last step, y from 0 to the
    /// largest finite value (at least 1) plus headroom for the legend, so no curve runs under it; light grey lines at every 0.5 of loss (a coarser 1-2-5 step
    /// above 6), labelled on the y axis (sparser when they are close); x ticks at whole 1-2-5 steps,
    /// each labelled with its exact step; axis titles STEP (under the axis) and LOSS (along it); a legend of the named series at the top right; a black frame.
    /// Text uses ``ChartFont`` (5×7 pixel glyphs drawn at twice that size). Sizes below 240×160
    /// are raised to that; points with a non-finite step or loss are skipped.
    public static func lossCurve(_ series: [Series], width requestedWidth: Int = 800, height requestedHeight: Int = 400) -> Image {
        let width = max(requestedWidth, 240), height = max(requestedHeight, 160)
        var im = Image(width: width, height: height, channels: 3, repeating: 1)
        let left = 80, right = width - 10, top = 10, bottom = height - 40
        let series = series.map { s -> Series in
            var t = s
            let kept = zip(s.steps, s.values).filter { $0.0.isFinite && $0.1.isFinite }
            t.steps = kept.map(\.0); t.values = kept.map(\.1)
            return t
        }
        let all = series.flatMap { s in zip(s.steps, s.values) }
        let x0 = all.map(\.0).min() ?? 0
        let x1 = max(all.map(\.0).max() ?? 1, x0 + max(1, abs(x0) * 1e-6))
        let dataMax = max(1, all.map(\.1).max() ?? 1)
        let black: (Float, Float, Float) = (0, 0, 0), scale = 2
        let glyphHeight = ChartFont.glyphHeight * scale
        // The legend's box sits in a band above the data: the y axis runs to yMax, enough headroom
        // over the largest loss that no curve passes under the box (when the band leaves at least
        // 60% of the plot's height; otherwise the box overlays the curves as before).
        let named = series.filter { !$0.name.isEmpty }
        let legendHeight = named.isEmpty ? 0 : named.count * (glyphHeight + 6) + 6
        let band = legendHeight + 12, plotHeight = bottom - top
        let yMax = legendHeight > 0 && band * 10 <= plotHeight * 4
            ? dataMax * Double(plotHeight) / Double(plotHeight - band) : dataMax
        func px(_ x: Double) -> Double { Double(left) + (x - x0) / (x1 - x0) * Double(right - left) }
        func py(_ y: Double) -> Double { Double(bottom) - min(max(y, 0), yMax) / yMax * Double(bottom - top) }
        func plot(_ x: Int, _ y: Int, _ c: (Float, Float, Float)) {
            guard x >= 0 && x < width && y >= 0 && y < height else { return }
            let o = (y * width + x) * 3
            im.pixels[o] = c.0; im.pixels[o + 1] = c.1; im.pixels[o + 2] = c.2
        }
        // Grid lines every 0.5 of loss, or at a coarser 1-2-5 step so there are at most 12 (a
        // diverged run's huge losses stay cheap to draw); labels on lines at least 2.5 glyph heights apart.
        var gridStep = 0.5
        while yMax / gridStep > 12 {
            let mantissa = gridStep / Foundation.pow(10, Foundation.floor(Foundation.log10(gridStep)))
            gridStep *= mantissa < 1.5 || mantissa > 4 ? 2 : 2.5      // 0.5 → 1 → 2 → 5 → 10 → 20 → 50 ...
        }
        let perLine = gridStep / yMax * Double(bottom - top)
        let labelEvery = max(1, Int((Double(glyphHeight) * 2.5 / perLine).rounded(.up)))
        var k = 1
        while gridStep * Double(k) < yMax {
            let y = Int(py(gridStep * Double(k)).rounded())
            for x in left...right { plot(x, y, (0.88, 0.88, 0.88)) }
            if k % labelEvery == 0 {
                let text = ChartFont.format(gridStep * Double(k))
                ChartFont.draw(text, right: left - 6, centerY: y, scale: scale, color: black, plot: plot)
            }
            k += 1
        }
        ChartFont.draw("0", right: left - 6, centerY: bottom, scale: scale, color: black, plot: plot)
        for x in left...right { plot(x, top, black); plot(x, bottom, black) }
        for y in top...bottom { plot(left, y, black); plot(right, y, black) }
        // Step ticks at the multiples of a whole 1-2-5 step inside the range, each labelled with its
        // exact step, as many as fit without labels touching (at most 8).
        let widest = ChartFont.width(of: String(format: "%.0f", max(abs(x0), abs(x1))) + "-", scale: scale) + 12
        let fit = max(2, min(8, (right - left) / max(widest, 1)))
        let tick = GANPictures.tickStep(from: x0, to: x1, atMost: fit)
        var t = (x0 / tick).rounded(.up) * tick
        while t <= x1 + tick * 1e-9 {
            let x = Int(px(t).rounded())
            for y in bottom...(bottom + 4) { plot(x, y, black) }
            let text = String(format: "%.0f", t)
            let w = ChartFont.width(of: text, scale: scale)
            let start = min(max(x - w / 2, 0), width - w)
            ChartFont.draw(text, left: start, top: bottom + 7, scale: scale, color: black, plot: plot)
            t += tick
        }
        ChartFont.draw("STEP", left: (left + right) / 2 - ChartFont.width(of: "STEP", scale: scale) / 2,
                       top: bottom + 7 + glyphHeight + 2, scale: 1, color: black, plot: plot)
        // The y axis title reads upwards along the axis, left of its labels.
        ChartFont.drawUpwards("LOSS", left: 4, centerY: (top + bottom) / 2, scale: 1, color: black, plot: plot)
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
        // Legend: a short line in each series' colour and its name, top right, on white.
        if !named.isEmpty {
            let textWidth = named.map { ChartFont.width(of: $0.name.uppercased(), scale: scale) }.max() ?? 0
            let boxW = 20 + 6 + textWidth + 8, boxH = legendHeight
            let bx = right - boxW - 6, by = top + 6
            for y in by..<(by + boxH) { for x in bx..<(bx + boxW) { plot(x, y, (1, 1, 1)) } }
            for x in bx..<(bx + boxW) { plot(x, by, (0.6, 0.6, 0.6)); plot(x, by + boxH - 1, (0.6, 0.6, 0.6)) }
            for y in by..<(by + boxH) { plot(bx, y, (0.6, 0.6, 0.6)); plot(bx + boxW - 1, y, (0.6, 0.6, 0.6)) }
            for (i, s) in named.enumerated() {
                let cy = by + 6 + i * (glyphHeight + 6) + glyphHeight / 2
                for x in (bx + 6)..<(bx + 26) { plot(x, cy, s.color); plot(x, cy + 1, s.color) }
                ChartFont.draw(s.name.uppercased(), left: bx + 32, top: cy - glyphHeight / 2, scale: scale, color: black, plot: plot)
            }
        }
        return im
    }
}

extension GANPictures {
    /// The smallest whole step of the form 1, 2 or 5 × 10ᵏ whose multiples in `[lower, upper]`
    /// number at most `count` (≥ 2): the spacing of an axis's ticks.
    static func tickStep(from lower: Double, to upper: Double, atMost count: Int) -> Double {
        var step = 1.0
        func ticks(_ s: Double) -> Int { Int(Foundation.floor(upper / s) - Foundation.ceil(lower / s)) + 1 }
        while ticks(step) > max(count, 2) {
            let mantissa = step / Foundation.pow(10, Foundation.floor(Foundation.log10(step)))
            step *= mantissa < 1.5 || mantissa > 4 ? 2 : 2.5      // 1 → 2 → 5 → 10 → 20 → 50 ...
        }
        return step
    }
}

/// A 5×7 pixel bitmap font for chart labels: digits, `.`, `-`, `:`, space and the capitals the
/// labels use (A D E F G K L N O P R S T). Characters it lacks are drawn as blanks. Glyph rows are 5-bit masks, the
/// leftmost pixel in the highest bit.
enum ChartFont {
    static let glyphWidth = 5, glyphHeight = 7, spacing = 1
    static let glyphs: [Character: [UInt8]] = [
        "0": [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
        "1": [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        "2": [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
        "3": [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
        "4": [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
        "5": [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
        "6": [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
        "7": [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
        "8": [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
        "9": [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
        ".": [0, 0, 0, 0, 0, 0b01100, 0b01100],
        "-": [0, 0, 0, 0b11111, 0, 0, 0],
        ":": [0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0],
        " ": [0, 0, 0, 0, 0, 0, 0],
        "A": [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        "D": [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100],
        "E": [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111],
        "F": [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000],
        "G": [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111],
        "K": [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001],
        "L": [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111],
        "N": [0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001, 0b10001],
        "O": [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        "P": [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000],
        "R": [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001],
        "S": [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110],
        "T": [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
    ]

    /// Width in pixels of `text` at `scale` (glyphs and the spaces between them).
    static func width(of text: String, scale: Int) -> Int {
        let n = text.count
        return n == 0 ? 0 : (n * (glyphWidth + spacing) - spacing) * scale
    }

    /// A loss label of at most five characters: integers without decimals, halves with one ("1",
    /// "2.5"); from 10⁴ on, a mantissa and a power of ten ("1.2E5", "4E6", "2E12"); "-" if not finite.
    static func format(_ v: Double) -> String {
        guard v.isFinite else { return "-" }
        if abs(v) < 1e4 { return v == v.rounded() ? String(format: "%.0f", v) : String(format: "%.1f", v) }
        var e = Int(Foundation.floor(Foundation.log10(abs(v))))
        var m = v / Foundation.pow(10, Double(e))
        if (m * 10).rounded() >= 100 { m /= 10; e += 1 }
        let mantissa = e < 10 && (m * 10).rounded() != (m.rounded() * 10) ? String(format: "%.1f", m) : String(format: "%.0f", m)
        return mantissa + "E" + String(e)
    }

    /// Draws `text` with its top-left corner at (`left`, `top`), each font pixel a `scale`×`scale`
    /// square, through `plot` (which clips).
    static func draw(_ text: String, left: Int, top: Int, scale: Int, color: (Float, Float, Float),
                     plot: (Int, Int, (Float, Float, Float)) -> Void) {
        var x = left
        for ch in text {
            if let rows = glyphs[ch] {
                for (r, bits) in rows.enumerated() {
                    for c in 0..<glyphWidth where bits & (1 << (glyphWidth - 1 - c)) != 0 {
                        for dy in 0..<scale { for dx in 0..<scale { plot(x + c * scale + dx, top + r * scale + dy, color) } }
                    }
                }
            }
            x += (glyphWidth + spacing) * scale
        }
    }

    /// Draws `text` turned a quarter left (reading bottom to top, as a y axis title), its glyphs'
    /// tops facing `left`, centred on `centerY`.
    static func drawUpwards(_ text: String, left: Int, centerY: Int, scale: Int, color: (Float, Float, Float),
                            plot: (Int, Int, (Float, Float, Float)) -> Void) {
        // Draw into a horizontal frame, then map (x, y) of that frame to (left + y, bottom − x).
        let bottom = centerY + width(of: text, scale: scale) / 2
        draw(text, left: 0, top: 0, scale: scale, color: color) { x, y, c in plot(left + y, bottom - x, c) }
    }

    /// Draws `text` right-aligned to `right`, vertically centred on `centerY`.
    static func draw(_ text: String, right: Int, centerY: Int, scale: Int, color: (Float, Float, Float),
                     plot: (Int, Int, (Float, Float, Float)) -> Void) {
        draw(text, left: right - width(of: text, scale: scale), top: centerY - glyphHeight * scale / 2, scale: scale,
             color: color, plot: plot)
    }
}
