import Foundation

// Elementwise ops: binary ops broadcast as NumPy does (gradients reduced back to each operand's
// shape in `accumulateReduced`), unary ops apply pointwise. Each op's pullback sits beside it.

extension Tensor {
    /// Shared driver for a broadcasting binary op.
    /// - Parameters:
    ///   - forward: `f(a, b)` for one pair of scalars.
    ///   - da: ∂f/∂a · g for one element, given `(a, b, out, g)`; `nil` when a gets no gradient.
    ///   - db: ∂f/∂b · g for one element.
    @inline(__always)
    static func binary(_ op: String, _ a: Tensor, _ b: Tensor,
                       forward: @escaping (Float, Float) -> Float,
                       da: @escaping (Float, Float, Float, Float) -> Float,
                       db: @escaping (Float, Float, Float, Float) -> Float) -> Tensor {
        guard let outShape = broadcastShape(a.shape, b.shape) else {
            preconditionFailure("\(op): shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let n = outShape.reduce(1, *)
        let pa = BroadcastPattern(a.shape, outShape), pb = BroadcastPattern(b.shape, outShape)
        let out = TensorStorage(count: n)
        let x = a.storage.base, y = b.storage.base, o = out.base
        switch (pa, pb) {
        case (.same, .same):
            parallelFor(n) { r in for i in r { o[i] = forward(x[i], y[i]) } }
        case (.same, .scalar):
            let s = y[0]
            parallelFor(n) { r in for i in r { o[i] = forward(x[i], s) } }
        case (.scalar, .same):
            let s = x[0]
            parallelFor(n) { r in for i in r { o[i] = forward(s, y[i]) } }
        case (.same, .trailing(let inner)):
            parallelFor(n / inner, cost: inner) { r in
                for row in r {
                    let xr = x + row * inner, or = o + row * inner
                    for j in 0..<inner { or[j] = forward(xr[j], y[j]) }
                }
            }
        default:
            parallelFor(n) { r in
                for i in r { o[i] = forward(x[pa.index(i, outShape: outShape)], y[pb.index(i, outShape: outShape)]) }
            }
        }
        return result(shape: outShape, storage: out, inputs: [a, b]) { g in
            if a.requiresGrad {
                let tmp = UnsafeMutablePointer<Float>.allocate(capacity: n)
                defer { tmp.deallocate() }
                parallelFor(n) { r in
                    for i in r {
                        let ia = pa.index(i, outShape: outShape), ib = pb.index(i, outShape: outShape)
                        tmp[i] = da(x[ia], y[ib], o[i], g[i])
                    }
                }
                a.accumulateGrad { accumulateReduced(tmp, outShape: outShape, into: $0, pattern: pa) }
            }
            if b.requiresGrad {
                let tmp = UnsafeMutablePointer<Float>.allocate(capacity: n)
                defer { tmp.deallocate() }
                parallelFor(n) { r in
                    for i in r {
                        let ia = pa.index(i, outShape: outShape), ib = pb.index(i, outShape: outShape)
                        tmp[i] = db(x[ia], y[ib], o[i], g[i])
                    }
                }
                b.accumulateGrad { accumulateReduced(tmp, outShape: outShape, into: $0, pattern: pb) }
            }
        }
    }

    /// Shared driver for a unary op. `derivative(x, y, g)` returns ∂y/∂x · g.
    @inline(__always)
    func unary(forward: @escaping (Float) -> Float,
               derivative: @escaping (Float, Float, Float) -> Float) -> Tensor {
        let n = count
        let out = TensorStorage(count: n)
        let x = storage.base, o = out.base
        parallelFor(n, cost: 4) { r in for i in r { o[i] = forward(x[i]) } }
        return Tensor.result(shape: shape, storage: out, inputs: [self]) { [self] g in
            self.accumulateGrad { d in
                parallelFor(n, cost: 2) { r in for i in r { d[i] += derivative(x[i], o[i], g[i]) } }
            }
        }
    }

    /// Elementwise sum with broadcasting. Shapes must broadcast (precondition).
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        binary("add", a, b, forward: { $0 + $1 }, da: { _, _, _, g in g }, db: { _, _, _, g in g })
    }
    /// Elementwise difference with broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        binary("subtract", a, b, forward: { $0 - $1 }, da: { _, _, _, g in g }, db: { _, _, _, g in -g })
    }
    /// Elementwise product with broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        binary("multiply", a, b, forward: { $0 * $1 }, da: { _, y, _, g in g * y }, db: { x, _, _, g in g * x })
    }
    /// Elementwise quotient with broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        binary("divide", a, b, forward: { $0 / $1 },
               da: { _, y, _, g in g / y }, db: { x, y, _, g in -g * x / (y * y) })
    }
    /// Adds a constant to every element.
    public static func + (a: Tensor, s: Float) -> Tensor {
        a.unary(forward: { $0 + s }, derivative: { _, _, g in g })
    }
    /// Subtracts a constant from every element.
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    /// Constant minus every element.
    public static func - (s: Float, a: Tensor) -> Tensor {
        a.unary(forward: { s - $0 }, derivative: { _, _, g in -g })
    }
    /// Multiplies every element by a constant.
    public static func * (a: Tensor, s: Float) -> Tensor {
        a.unary(forward: { $0 * s }, derivative: { _, _, g in g * s })
    }
    /// Multiplies every element by a constant.
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    /// Divides every element by a constant.
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
    /// Negation.
    public static prefix func - (a: Tensor) -> Tensor {
        a.unary(forward: { -$0 }, derivative: { _, _, g in -g })
    }

    /// e^x elementwise.
    public func exp() -> Tensor {
        unary(forward: { Foundation.exp($0) }, derivative: { _, y, g in g * y })
    }
    /// Natural logarithm elementwise; inputs must be positive for a finite result.
    public func log() -> Tensor {
        unary(forward: { Foundation.log($0) }, derivative: { x, _, g in g / x })
    }
    /// Hyperbolic tangent elementwise, in [-1, 1].
    public func tanh() -> Tensor {
        unary(forward: { Foundation.tanh($0) }, derivative: { _, y, g in g * (1 - y * y) })
    }
    /// Logistic sigmoid 1/(1+e^-x) elementwise, in (0, 1).
    public func sigmoid() -> Tensor {
        unary(forward: { fastSigmoid($0) }, derivative: { _, y, g in g * y * (1 - y) })
    }
    /// Rectified linear unit max(x, 0); the derivative at 0 is taken as 0.
    public func relu() -> Tensor {
        unary(forward: { max($0, 0) }, derivative: { x, _, g in x > 0 ? g : 0 })
    }
    /// Leaky ReLU: x for x > 0, `alpha`·x otherwise (Keras default alpha 0.3; the DCGAN paper uses 0.2).
    public func leakyRelu(alpha: Float = 0.2) -> Tensor {
        unary(forward: { $0 > 0 ? $0 : alpha * $0 }, derivative: { x, _, g in x > 0 ? g : alpha * g })
    }
    /// Square x² elementwise.
    public func squared() -> Tensor {
        unary(forward: { $0 * $0 }, derivative: { x, _, g in 2 * x * g })
    }
    /// Square root elementwise; inputs must be non-negative.
    public func sqrt() -> Tensor {
        unary(forward: { $0.squareRoot() }, derivative: { _, y, g in g / (2 * y) })
    }
    /// Absolute value elementwise; the derivative at 0 is taken as 0.
    public func abs() -> Tensor {
        unary(forward: { Swift.abs($0) }, derivative: { x, _, g in x > 0 ? g : (x < 0 ? -g : 0) })
    }
}
