import Foundation

/// A recorded op: the tensors it read and the pullback that turns the gradient of its output
/// into gradients of those inputs.
final class GraphNode {
    let inputs: [Tensor]
    /// Called with the output's gradient (same count as the output). It must accumulate
    /// into inputs through ``Tensor/accumulateGrad(_:)``, and only for inputs whose
    /// `requiresGrad` is set.
    let pullback: (UnsafePointer<Float>) -> Void
    init(inputs: [Tensor], pullback: @escaping (UnsafePointer<Float>) -> Void) {
        self.inputs = inputs
        self.pullback = pullback
    }
}

/// Whether ops record a graph. Turn it off for inference and sampling with ``withNoGrad(_:)``.
public enum GradMode {
    /// True (the default) while ops record the graph for ``Tensor/backward(seed:)``.
    nonisolated(unsafe) public static var isEnabled = true
}

/// Runs `body` without recording any graph (inference, sampling, metrics); restores the mode after.
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    let saved = GradMode.isEnabled
    GradMode.isEnabled = false
    defer { GradMode.isEnabled = saved }
    return try body()
}

extension Tensor {
    /// Builds an op result: records the node only when grad mode is on and some input needs a gradient.
    @usableFromInline
    static func result(shape: [Int], storage: TensorStorage, inputs: [Tensor],
                       pullback: @escaping (UnsafePointer<Float>) -> Void) -> Tensor {
        let out = Tensor(shape: shape, storage: storage)
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            out.requiresGrad = true
            out.node = GraphNode(inputs: inputs, pullback: pullback)
        }
        return out
    }

    /// Adds into this tensor's gradient buffer (allocated zero-filled on first use).
    /// `body` receives the gradient buffer to accumulate into (`count` scalars).
    @inlinable
    public func accumulateGrad(_ body: (UnsafeMutablePointer<Float>) -> Void) {
        if grad == nil { grad = Tensor(zeros: shape) }
        body(grad!.storage.base)
    }

    /// Reverse-mode differentiation from this tensor.
    ///
    /// Fills `.grad` of every tensor with `requiresGrad` that this one depends on, accumulating
    /// onto any existing gradient (call ``zeroGrad()`` or set `grad = nil` between steps).
    /// - Parameter seed: gradient of the final objective with respect to this tensor; defaults
    ///   to 1 for a one-element tensor.
    /// - Precondition: `self` holds one scalar when `seed` is nil.
    public func backward(seed: Tensor? = nil) {
        precondition(seed != nil || count == 1, "backward: seed required for non-scalar shape \(shape)")
        guard requiresGrad else { return }
        // Topological order by iterative depth-first search.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            let id = ObjectIdentifier(t)
            if visited.contains(id) { continue }
            visited.insert(id)
            stack.append((t, true))
            precondition(!t.graphReleased, "backward: a tensor on this path was produced by a graph that was already differentiated (its graph is released after backward); recompute it")
            if let node = t.node {
                for input in node.inputs where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                    stack.append((input, false))
                }
            }
        }
        // Intermediate gradients are dropped once used; leaves keep theirs. A pullback may
        // therefore overwrite the gradient buffer it receives (conv2d's fused ReLU masks it in place).
        accumulateGrad { g in
            if let seed {
                precondition(seed.count == count, "backward: seed shape \(seed.shape) vs \(shape)")
                for i in 0..<count { g[i] += seed.storage.base[i] }
            } else {
                g[0] += 1
            }
        }
        for t in order.reversed() {
            guard let node = t.node, let g = t.grad else { continue }
            node.pullback(UnsafePointer(g.storage.base))
            t.grad = nil
            t.node = nil
            t.graphReleased = true
        }
    }

    /// Clears the gradient.
    public func zeroGrad() { grad = nil }
}
