import Foundation
import GenTensor

/// Weight initializers with Keras semantics.
public enum Initializer {
    /// Glorot (Xavier) uniform: U(−l, l) with l = √(6 / (fanIn + fanOut)) (Glorot & Bengio, 2010);
    /// the Keras default for Dense, Conv2D and LSTM kernels.
    public static func glorotUniform(_ shape: [Int], fanIn: Int, fanOut: Int, using rng: inout RandomGenerator) -> Tensor {
        let limit = (6 / Float(max(fanIn + fanOut, 1))).squareRoot()
        return Tensor.uniform(shape, low: -limit, high: limit, using: &rng)
    }

    /// Orthogonal matrix `[rows, cols]` (Saxe et al., 2014): the Q factor of a Gaussian matrix, with
    /// signs fixed by R's diagonal so the distribution is uniform (Keras `Orthogonal`, gain 1).
    /// Rows are orthonormal when rows ≤ cols, columns otherwise.
    public static func orthogonal(rows: Int, cols: Int, gain: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        // Work on the tall orientation (m ≥ n), orthonormalise columns with modified Gram–Schmidt
        // in Double (twice, for stability), then transpose back if needed.
        let m = max(rows, cols), n = min(rows, cols)
        var a = [Double](repeating: 0, count: m * n)   // column-major: column j at a[j*m ..< (j+1)*m]
        for i in 0..<(m * n) { a[i] = Double(rng.nextNormal()) }
        for j in 0..<n {
            for _ in 0..<2 {
                for p in 0..<j {
                    var dot = 0.0
                    for i in 0..<m { dot += a[p * m + i] * a[j * m + i] }
                    for i in 0..<m { a[j * m + i] -= dot * a[p * m + i] }
                }
            }
            var norm = 0.0
            for i in 0..<m { norm += a[j * m + i] * a[j * m + i] }
            norm = norm.squareRoot()
            if norm < 1e-12 { norm = 1 }
            for i in 0..<m { a[j * m + i] /= norm }
        }
        var out = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            for c in 0..<cols {
                // tall case rows ≥ cols: element (r, c) is column c row r; wide case: transpose.
                out[r * cols + c] = gain * Float(rows >= cols ? a[c * m + r] : a[r * m + c])
            }
        }
        return Tensor(shape: [rows, cols], scalars: out)
    }
}
