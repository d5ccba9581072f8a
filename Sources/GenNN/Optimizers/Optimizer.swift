import Foundation
import GenTensor

/// A first-order optimizer: updates parameters in place from their `.grad`.
///
/// State (moments) is kept per parameter, keyed by the parameter's position in the list passed to
/// ``update(_:)``; always pass the same list in the same order. Parameters without a gradient are
/// skipped. The state round-trips through checkpoints with ``stateTensors()`` and
/// ``loadState(_:step:)`` for exact resume.
public protocol Optimizer: AnyObject {
    /// Name as used on the command line and in checkpoints (`sgd`, `rmsprop`, `adam`).
    var name: String { get }
    /// Learning rate (step size), > 0.
    var learningRate: Float { get set }
    /// Number of updates applied so far.
    var step: Int { get }
    /// Applies one update to every parameter that has a gradient.
    func update(_ parameters: [Tensor])
    /// Optimizer state as named tensors, e.g. `"rmsprop/velocity/3"` (3 = parameter index).
    func stateTensors() -> [String: Tensor]
    /// Restores the state written by ``stateTensors()``.
    /// - Throws: ``OptimizerError`` when a tensor is missing or has the wrong shape.
    func loadState(_ tensors: [String: Tensor], step: Int, parameters: [Tensor]) throws
}

/// Errors restoring optimizer state from a checkpoint.
public enum OptimizerError: Error, CustomStringConvertible {
    /// A required state tensor is absent.
    case missingState(String)
    /// A state tensor's shape differs from its parameter's.
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    /// An unknown optimizer name.
    case unknown(String)

    /// The message gen prints, naming the state tensor or optimizer.
    public var description: String {
        switch self {
        case .missingState(let n): return "optimizer state \(n) is missing from the checkpoint"
        case .shapeMismatch(let n, let e, let f): return "optimizer state \(n) has shape \(f), expected \(e)"
        case .unknown(let n): return "unknown optimizer '\(n)' (expected sgd, rmsprop or adam)"
        }
    }
}

/// Per-parameter slots of optimizer state, allocated lazily as zeros.
final class SlotStore {
    let prefix: String
    var slots: [Int: Tensor] = [:]
    init(prefix: String) { self.prefix = prefix }

    func slot(_ index: Int, like p: Tensor) -> Tensor {
        if let s = slots[index] { return s }
        let s = Tensor(zeros: p.shape)
        slots[index] = s
        return s
    }

    func export(into dict: inout [String: Tensor]) {
        for (i, t) in slots { dict["\(prefix)/\(i)"] = t }
    }

    func restore(_ dict: [String: Tensor], parameters: [Tensor], required: Bool) throws {
        slots = [:]
        for (i, p) in parameters.enumerated() {
            let key = "\(prefix)/\(i)"
            guard let t = dict[key] else {
                if required { throw OptimizerError.missingState(key) }
                continue
            }
            guard t.shape == p.shape else { throw OptimizerError.shapeMismatch(name: key, expected: p.shape, found: t.shape) }
            slots[i] = t.copy()
        }
    }
}

/// Applies `body(param, grad, count)` to every parameter with a gradient, splitting large ones across threads.
@inline(__always)
func forEachParameter(_ parameters: [Tensor],
                      _ body: (Int, UnsafeMutablePointer<Float>, UnsafePointer<Float>, Range<Int>) -> Void) {
    for (i, p) in parameters.enumerated() {
        guard let g = p.grad else { continue }
        let pp = p.storage.base, gp = UnsafePointer(g.storage.base)
        parallelFor(p.count, cost: 8) { r in body(i, pp, gp, r) }
    }
}
