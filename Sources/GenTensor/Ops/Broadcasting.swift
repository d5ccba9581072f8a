import Foundation

/// NumPy broadcasting rules: shapes are aligned at their last dimension; each pair of extents
/// must be equal or one of them 1.
/// - Returns: the broadcast shape, or `nil` when the shapes are incompatible.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let n = max(a.count, b.count)
    var out = [Int](repeating: 1, count: n)
    for i in 0..<n {
        let da = i < n - a.count ? 1 : a[i - (n - a.count)]
        let db = i < n - b.count ? 1 : b[i - (n - b.count)]
        if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
    }
    return out
}

/// Element strides of `shape` when read as `outShape` under broadcasting (0 on broadcast dims).
@usableFromInline
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let strides = rowMajorStrides(shape)
    let offset = outShape.count - shape.count
    var result = [Int](repeating: 0, count: outShape.count)
    for i in 0..<shape.count where shape[i] != 1 {
        result[i + offset] = strides[i]
    }
    return result
}

/// How an operand of a broadcast op maps onto the output, in the three shapes that cover
/// nearly all use: identical, a scalar, or a trailing block repeated over leading dimensions.
@usableFromInline
enum BroadcastPattern {
    case same
    case scalar
    /// The operand equals the output's trailing `inner` elements, repeated.
    case trailing(inner: Int)
    /// The operand is `[outer, 1...]`-like: each of `outer` values repeated `inner` times.
    case leading(inner: Int)
    case general(strides: [Int])

    @usableFromInline
    init(_ shape: [Int], _ outShape: [Int]) {
        let count = shape.reduce(1, *)
        let outCount = outShape.reduce(1, *)
        if shape == outShape || count == outCount {
            self = .same
        } else if count == 1 {
            self = .scalar
        } else {
            // Strip leading ones then check whether it matches the output's suffix.
            var s = shape
            while let f = s.first, f == 1 { s.removeFirst() }
            if s.count <= outShape.count && Array(outShape.suffix(s.count)) == s {
                self = .trailing(inner: count)
                return
            }
            // [A, B, 1, 1] against [..., A, B, C, D]: leading block, trailing ones.
            var t = shape
            while let l = t.last, l == 1 { t.removeLast() }
            let padded = [Int](repeating: 1, count: outShape.count - shape.count) + shape
            let prefixLen = padded.count - (shape.count - t.count)
            if padded.prefix(prefixLen).elementsEqual(outShape.prefix(prefixLen)) {
                self = .leading(inner: outShape.suffix(outShape.count - prefixLen).reduce(1, *))
                return
            }
            self = .general(strides: broadcastStrides(shape, to: outShape))
        }
    }

    /// Index into the operand for output element `i`.
    @inlinable @inline(__always)
    func index(_ i: Int, outShape: [Int]) -> Int {
        switch self {
        case .same: return i
        case .scalar: return 0
        case .trailing(let inner): return i % inner
        case .leading(let inner): return i / inner
        case .general(let strides):
            var rem = i, idx = 0
            for d in stride(from: outShape.count - 1, through: 0, by: -1) {
                let e = outShape[d]
                idx += (rem % e) * strides[d]
                rem /= e
            }
            return idx
        }
    }
}

/// The one place where broadcast gradients are reduced back to an operand's shape:
/// `dst[index(i)] += src[i]` summed over every output element `i`.
@usableFromInline
func accumulateReduced(_ src: UnsafePointer<Float>, outShape: [Int], into dst: UnsafeMutablePointer<Float>,
                       pattern: BroadcastPattern) {
    let n = outShape.reduce(1, *)
    switch pattern {
    case .same:
        parallelFor(n) { r in for i in r { dst[i] += src[i] } }
    case .scalar:
        var s: Float = 0
        for i in 0..<n { s += src[i] }
        dst[0] += s
    case .trailing(let inner):
        let outer = n / max(inner, 1)
        for o in 0..<outer {
            let base = src + o * inner
            for j in 0..<inner { dst[j] += base[j] }
        }
    case .leading(let inner):
        let outer = n / max(inner, 1)
        for o in 0..<outer {
            var s: Float = 0
            let base = src + o * inner
            for j in 0..<inner { s += base[j] }
            dst[o] += s
        }
    case .general:
        for i in 0..<n { dst[pattern.index(i, outShape: outShape)] += src[i] }
    }
}
