import Foundation
import GenData

/// Colour handling for style transfer.
public enum StyleColor {
    /// Luminance-only transfer (`--preserve-colors`): keeps the stylised image's luminance Y and
    /// takes the chrominance I, Q from `content`, in the YIQ space (NTSC 1953, FCC):
    /// `Y = 0.299R + 0.587G + 0.114B`, `I = 0.596R − 0.274G − 0.322B`, `Q = 0.211R − 0.523G + 0.312B`.
    /// This is the colour-preservation method of Gatys, Bethge, Hertzmann & Shechtman,
    /// "Preserving Color in Neural Artistic Style Transfer" (2016, §2.2, applied after the
    /// optimisation as Johnson's neural-style `-original_colors 1`). Results are clamped to [0, 1].
    /// - Precondition: both RGB (3 channels) of the same size.
    public static func preservingColors(stylised: Image, content: Image) -> Image {
        precondition(stylised.channels == 3 && content.channels == 3 && stylised.width == content.width
                     && stylised.height == content.height, "preservingColors: images must be RGB of one size")
        var out = stylised
        let n = stylised.width * stylised.height
        out.pixels.withUnsafeMutableBufferPointer { o in
            content.pixels.withUnsafeBufferPointer { c in
                for p in 0..<n {
                    let r = o[3 * p], g = o[3 * p + 1], b = o[3 * p + 2]
                    let y = 0.299 * r + 0.587 * g + 0.114 * b
                    let cr = c[3 * p], cg = c[3 * p + 1], cb = c[3 * p + 2]
                    let i = 0.596 * cr - 0.274 * cg - 0.322 * cb
                    let q = 0.211 * cr - 0.523 * cg + 0.312 * cb
                    o[3 * p] = min(max(y + 0.956 * i + 0.621 * q, 0), 1)
                    o[3 * p + 1] = min(max(y - 0.272 * i - 0.647 * q, 0), 1)
                    o[3 * p + 2] = min(max(y - 1.106 * i + 1.703 * q, 0), 1)
                }
            }
        }
        return out
    }
}
