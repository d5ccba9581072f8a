import Foundation

extension Tensor {
    /// Normalises possibly negative axes and checks them against the rank.
    func normalizedAxes(_ axes: [Int], op: String) -> [Int] {
        let norm = axes.map { $0 < 0 ? $0 + rank : $0 }
        precondition(norm.allSatisfy { $0 >= 0 && $0 < rank }, "\(op): axes \(axes) out of range for shape \(shape)")
        return Array(Set(norm)).sorted()
    }

    /// Sum over `axes` (all axes when empty). With `keepDims` the reduced axes stay with extent 1.
    /// - Returns: the reduced tensor; a rank-0 scalar when every axis is reduced without `keepDims`.
    public func sum(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        let ax = axes.isEmpty ? Array(0..<rank) : normalizedAxes(axes, op: "sum")
        var keptShape = shape
        for a in ax { keptShape[a] = 1 }
        let outShape = keepDims ? keptShape : shape.enumerated().filter { !ax.contains($0.offset) }.map(\.element)
        let pattern = BroadcastPattern(keptShape, shape)
        let n = count
        let out = TensorStorage(count: keptShape.reduce(1, *))
        accumulateReduced(storage.base, outShape: shape, into: out.base, pattern: pattern)
        return Tensor.result(shape: outShape, storage: out, inputs: [self]) { [self] g in
            let shape = self.shape
            self.accumulateGrad { d in
                parallelFor(n) { r in for i in r { d[i] += g[pattern.index(i, outShape: shape)] } }
            }
        }
    }

    /// Mean over `axes` (all axes when empty); see ``sum(axes:keepDims:)``.
    public func mean(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        let ax = axes.isEmpty ? Array(0..<rank) : normalizedAxes(axes, op: "mean")
        let n = ax.reduce(1) { $0 * shape[$1] }
        return sum(axes: ax, keepDims: keepDims) * (1 / Float(max(n, 1)))
    }
}
