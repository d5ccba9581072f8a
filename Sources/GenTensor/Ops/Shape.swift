import Foundation

extension Tensor {
    /// The same scalars viewed with a new shape (shares storage). One extent may be -1 (inferred).
    /// - Precondition: the element count is unchanged.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let k = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != k }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "reshape: cannot infer -1 in \(newShape) from \(shape)")
            s[k] = count / known
        }
        precondition(s.reduce(1, *) == count, "reshape: \(shape) (\(count) scalars) cannot become \(newShape)")
        let out = Tensor(shape: s, storage: storage)
        if GradMode.isEnabled && requiresGrad {
            out.requiresGrad = true
            let n = count
            out.node = GraphNode(inputs: [self]) { [self] g in
                self.accumulateGrad { d in for i in 0..<n { d[i] += g[i] } }
            }
        }
        return out
    }

    /// Permutes the axes: output axis `i` is input axis `permutation[i]`. Defaults to reversing
    /// the axes (a matrix transpose for rank 2). The result is a contiguous copy.
    public func transposed(_ permutation: [Int]? = nil) -> Tensor {
        let perm = permutation ?? Array((0..<rank).reversed())
        precondition(perm.sorted() == Array(0..<rank), "transpose: \(perm) is not a permutation of axes of \(shape)")
        let outShape = perm.map { shape[$0] }
        let inStrides = rowMajorStrides(shape)
        let srcStrides = perm.map { inStrides[$0] }
        let n = count
        // Map of output linear index -> input linear index, computed once and reused by the pullback.
        var map = [Int](repeating: 0, count: n)
        var idx = [Int](repeating: 0, count: rank)
        var src = 0
        for i in 0..<n {
            map[i] = src
            var d = rank - 1
            while d >= 0 {
                idx[d] += 1; src += srcStrides[d]
                if idx[d] < outShape[d] { break }
                src -= srcStrides[d] * outShape[d]; idx[d] = 0; d -= 1
            }
        }
        let out = TensorStorage(count: n)
        let x = storage.base
        map.withUnsafeBufferPointer { m in for i in 0..<n { out.base[i] = x[m[i]] } }
        return Tensor.result(shape: outShape, storage: out, inputs: [self]) { [self] g in
            self.accumulateGrad { d in map.withUnsafeBufferPointer { m in for i in 0..<n { d[m[i]] += g[i] } } }
        }
    }

    /// The elements `range` along `axis` (a contiguous copy).
    public func slice(axis: Int, range: Range<Int>) -> Tensor {
        let ax = axis < 0 ? axis + rank : axis
        precondition(ax >= 0 && ax < rank && range.lowerBound >= 0 && range.upperBound <= shape[ax],
                     "slice: range \(range) on axis \(axis) out of bounds for \(shape)")
        let outer = shape[..<ax].reduce(1, *)
        let inner = shape[(ax + 1)...].reduce(1, *)
        var outShape = shape; outShape[ax] = range.count
        let rowIn = shape[ax] * inner, rowOut = range.count * inner
        let out = TensorStorage(count: outer * rowOut)
        let x = storage.base
        for o in 0..<outer {
            (out.base + o * rowOut).update(from: x + o * rowIn + range.lowerBound * inner, count: rowOut)
        }
        return Tensor.result(shape: outShape, storage: out, inputs: [self]) { [self] g in
            self.accumulateGrad { d in
                for o in 0..<outer {
                    let dst = d + o * rowIn + range.lowerBound * inner, src = g + o * rowOut
                    for j in 0..<rowOut { dst[j] += src[j] }
                }
            }
        }
    }

    /// Joins tensors along `axis`; all other extents must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate: no tensors")
        let first = tensors[0]
        let ax = axis < 0 ? axis + first.rank : axis
        for t in tensors {
            precondition(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == ax || t.shape[$0] == first.shape[$0] },
                         "concatenate: shapes \(tensors.map(\.shape)) differ off axis \(axis)")
        }
        let outer = first.shape[..<ax].reduce(1, *)
        let inner = first.shape[(ax + 1)...].reduce(1, *)
        let total = tensors.reduce(0) { $0 + $1.shape[ax] }
        var outShape = first.shape; outShape[ax] = total
        let rowOut = total * inner
        let out = TensorStorage(count: outer * rowOut)
        var offsets: [Int] = []
        var off = 0
        for t in tensors {
            offsets.append(off)
            let rowIn = t.shape[ax] * inner
            for o in 0..<outer {
                (out.base + o * rowOut + off).update(from: t.storage.base + o * rowIn, count: rowIn)
            }
            off += rowIn
        }
        return result(shape: outShape, storage: out, inputs: tensors) { g in
            for (k, t) in tensors.enumerated() where t.requiresGrad {
                let rowIn = t.shape[ax] * inner
                t.accumulateGrad { d in
                    for o in 0..<outer {
                        let src = g + o * rowOut + offsets[k], dst = d + o * rowIn
                        for j in 0..<rowIn { dst[j] += src[j] }
                    }
                }
            }
        }
    }

    /// Row gather (an embedding lookup, or a one-hot input times a matrix without the product):
    /// `table` is `[V, D]`, `indices` hold values in `0..<V`; the result is `[indices.count, D]`
    /// reshaped to `indexShape + [D]`. The gradient scatters-adds rows back into `table`.
    /// - Precondition: every index in `0..<V` (callers validate user data beforehand).
    public static func gather(_ table: Tensor, indices: [Int32], indexShape: [Int]? = nil) -> Tensor {
        precondition(table.rank == 2, "gather: table must be [V, D], got \(table.shape)")
        let v = table.shape[0], dim = table.shape[1], n = indices.count
        let shapeOut = (indexShape ?? [n]) + [dim]
        precondition(shapeOut.reduce(1, *) == n * dim, "gather: index shape \(indexShape ?? []) vs \(n) indices")
        let out = TensorStorage(count: n * dim)
        let w = table.storage.base
        for (i, ix) in indices.enumerated() {
            precondition(ix >= 0 && Int(ix) < v, "gather: index \(ix) out of range 0..<\(v)")
            (out.base + i * dim).update(from: w + Int(ix) * dim, count: dim)
        }
        return result(shape: shapeOut, storage: out, inputs: [table]) { g in
            table.accumulateGrad { d in
                for (i, ix) in indices.enumerated() {
                    let dst = d + Int(ix) * dim, src = g + i * dim
                    for j in 0..<dim { dst[j] += src[j] }
                }
            }
        }
    }
}
