import Foundation
import GenTensor

// L-BFGS with a strong-Wolfe line search, on one flat parameter vector.
//
// Sources: J. Nocedal & S. J. Wright, *Numerical Optimization* (2nd ed., 2006): Algorithm 7.4
// (the two-loop recursion for H·∇f), Algorithm 7.5 (L-BFGS), Algorithm 3.5 (line search for the
// strong Wolfe conditions) and 3.6 (zoom), with the cubic interpolation of §3.5 (eq. 3.59).
// The control flow, defaults and stopping rules follow PyTorch's `torch.optim.LBFGS` with
// `line_search_fn="strong_wolfe"` step by step, so that the same objective gives the same
// sequence of iterates up to float rounding (see Tools/style_reference.py and LBFGSTests).

/// Settings of ``LBFGS``. Defaults are PyTorch's `torch.optim.LBFGS` except `maxIterations`.
public struct LBFGSOptions: Equatable, Sendable {
    /// How the step length along each search direction is chosen.
    public enum LineSearch: String, Sendable {
        /// Strong Wolfe conditions (N&W Alg. 3.5/3.6, cubic interpolation; PyTorch `"strong_wolfe"`).
        case strongWolfe
        /// A fixed step `learningRate` (PyTorch's default `line_search_fn=None`); one evaluation per iteration.
        case fixed
    }
    /// Step length multiplier (> 0). The first iteration uses `min(1, 1/‖g‖₁)·learningRate`
    /// (the initial gradient is not yet scaled by any curvature information), then `learningRate`
    /// as the line search's first trial step.
    public var learningRate: Double = 1
    /// Most L-BFGS iterations (outer steps) per ``LBFGS/minimize(_:objective:callback:)`` (≥ 1).
    public var maxIterations: Int = 1000
    /// Most objective evaluations, line-search trials included (≥ 1; default `maxIterations · 5/4`
    /// as in PyTorch). Checked after each iteration, so the last line search may overshoot it by
    /// at most `maxLineSearch` evaluations, exactly as in PyTorch.
    public var maxEvaluations: Int?
    /// Stop when `max |gᵢ| ≤ toleranceGrad` (first-order optimality).
    public var toleranceGrad: Double = 1e-7
    /// Stop when the loss or the step changes by less than this (and stop the line search when its
    /// bracket is narrower than this along the direction).
    public var toleranceChange: Double = 1e-9
    /// Number of correction pairs (sᵢ, yᵢ) kept: `m` in N&W Alg. 7.5. PyTorch's default is 100;
    /// SciPy's L-BFGS-B (which the book calls) uses 10. Memory is `2·m·n` floats.
    public var historySize: Int = 100
    /// Line search; ``LineSearch/strongWolfe`` by default (PyTorch's default is a fixed step).
    public var lineSearch: LineSearch = .strongWolfe
    /// Sufficient-decrease constant c₁ of the Wolfe conditions, in (0, c₂).
    public var c1: Double = 1e-4
    /// Curvature constant c₂ of the strong Wolfe conditions, in (c₁, 1) (0.9 for quasi-Newton methods).
    public var c2: Double = 0.9
    /// Most evaluations per line search.
    public var maxLineSearch: Int = 25

    /// Default settings.
    public init() {}
}

/// Why ``LBFGS/minimize(_:objective:callback:)`` stopped.
public enum LBFGSStopReason: String, Sendable {
    /// `max |g| ≤ toleranceGrad`.
    case gradientTolerance = "gradient below tolerance"
    /// The loss or the step changed by less than `toleranceChange`, or the direction is no longer a descent direction.
    case changeTolerance = "loss/step change below tolerance"
    /// `maxIterations` reached.
    case maxIterations = "iteration limit"
    /// `maxEvaluations` reached.
    case maxEvaluations = "evaluation limit"
    /// The callback asked to stop.
    case callback = "stopped by callback"
    /// The objective returned a NaN or infinite loss or gradient; `x` holds the last finite iterate.
    case nonFinite = "non-finite loss or gradient"
}

/// One accepted L-BFGS iterate, passed to the callback.
public struct LBFGSIterate {
    /// Iterations done (1 after the first step).
    public var iteration: Int
    /// Objective evaluations so far, line-search trials included.
    public var evaluations: Int
    /// Loss at the new iterate.
    public var loss: Double
    /// Step length taken along the search direction.
    public var stepLength: Double
    /// `max |gᵢ|` at the new iterate.
    public var gradientMaxNorm: Double
}

/// What a minimisation reports.
public struct LBFGSResult {
    /// Loss at the returned point.
    public var loss: Double
    /// Iterations done.
    public var iterations: Int
    /// Objective evaluations done, line-search trials included.
    public var evaluations: Int
    /// Why it stopped.
    public var reason: LBFGSStopReason
    /// Loss of every evaluation, in order (line-search trials included): the curve compared with
    /// PyTorch's at equal evaluation counts.
    public var evaluationLosses: [Double]
}

/// Limited-memory BFGS on a flat `Float` vector with a closure objective `x ↦ (f(x), ∇f(x))`.
///
/// Nocedal & Wright Algorithm 7.5: the search direction is `d = −H·g`, with `H·g` from the
/// two-loop recursion (Alg. 7.4) over the last `historySize` pairs `sₖ = xₖ₊₁ − xₖ`,
/// `yₖ = gₖ₊₁ − gₖ` (pairs with `yᵀs ≤ 1e-10` are skipped so `H` stays positive definite), and the
/// initial scaling `H₀ = (sᵀy / yᵀy)·I` (eq. 7.20). The step length satisfies the strong Wolfe
/// conditions `f(x+αd) ≤ f(x) + c₁α∇fᵀd` and `|∇f(x+αd)ᵀd| ≤ c₂|∇fᵀd|` (Alg. 3.5 bracketing, Alg. 3.6
/// zoom, safeguarded cubic interpolation), as PyTorch's `_strong_wolfe`.
///
/// Vector arithmetic is in `Float` with `Double` accumulation for dot products; scalars
/// (loss, step, curvature) are `Double`.
public final class LBFGS {
    /// The settings.
    public let options: LBFGSOptions

    /// - Precondition: options in range (programmer error: the command line validates user values).
    public init(options: LBFGSOptions = LBFGSOptions()) {
        precondition(options.learningRate > 0 && options.maxIterations >= 1 && options.historySize >= 1
                     && (options.maxEvaluations ?? 1) >= 1 && options.c1 > 0 && options.c1 < options.c2 && options.c2 < 1,
                     "LBFGS: options out of range: \(options)")
        self.options = options
    }

    /// The objective: loss and gradient (same count as `x`) at `x`.
    public typealias Objective = (_ x: [Float]) throws -> (loss: Double, gradient: [Float])

    /// Minimises the objective from `x`, leaving the final iterate in `x`.
    ///
    /// - Parameters:
    ///   - x: the starting point; on return the last accepted iterate (never a failed line-search
    ///     trial, never a non-finite point).
    ///   - objective: evaluated at most about `maxEvaluations` times; errors it throws propagate
    ///     (with `x` left at the last accepted iterate).
    ///   - callback: called after every iteration with the new iterate's numbers and `x`; return
    ///     `false` to stop.
    /// - Returns: the final loss, counts and the stop reason.
    public func minimize(_ x: inout [Float], objective: Objective,
                         callback: ((LBFGSIterate, [Float]) -> Bool)? = nil) rethrows -> LBFGSResult {
        let o = options
        let n = x.count
        let maxEvals = o.maxEvaluations ?? (o.maxIterations * 5 / 4)
        var losses: [Double] = []
        var nonFinite = false
        func evaluate(_ p: [Float]) throws -> (Double, [Float]) {
            let (f, g) = try objective(p)
            precondition(g.count == n, "LBFGS: gradient has \(g.count) entries for \(n) parameters")
            losses.append(f)
            if !f.isFinite || !LBFGS.allFinite(g) { nonFinite = true }
            return (f, g)
        }

        var (loss, g) = try evaluate(x)
        var evals = 1
        if nonFinite { return LBFGSResult(loss: loss, iterations: 0, evaluations: evals, reason: .nonFinite, evaluationLosses: losses) }
        if LBFGS.maxAbs(g) <= o.toleranceGrad {
            return LBFGSResult(loss: loss, iterations: 0, evaluations: evals, reason: .gradientTolerance, evaluationLosses: losses)
        }
        var oldDirs: [[Float]] = []    // y
        var oldSteps: [[Float]] = []   // s
        var ro: [Double] = []
        var hDiag = 1.0
        var d = [Float](repeating: 0, count: n)
        var t = 0.0
        var prevG: [Float] = []
        var iteration = 0
        var reason = LBFGSStopReason.maxIterations

        while iteration < o.maxIterations {
            iteration += 1
            if iteration == 1 {
                for i in 0..<n { d[i] = -g[i] }
                hDiag = 1
            } else {
                // yₖ = gₖ₊₁ − gₖ, sₖ = t·d (the step actually taken).
                var y = [Float](repeating: 0, count: n), s = [Float](repeating: 0, count: n)
                let tf = Float(t)
                for i in 0..<n { y[i] = g[i] - prevG[i]; s[i] = d[i] * tf }
                let ys = LBFGS.dot(y, s)
                if ys > 1e-10 {
                    if oldDirs.count == o.historySize { oldDirs.removeFirst(); oldSteps.removeFirst(); ro.removeFirst() }
                    oldDirs.append(y); oldSteps.append(s); ro.append(1 / ys)
                    hDiag = ys / LBFGS.dot(y, y)
                }
                // Two-loop recursion (N&W Alg. 7.4): d = −H·g.
                let k = oldDirs.count
                var al = [Double](repeating: 0, count: k)
                var q = g.map { -$0 }
                for i in stride(from: k - 1, through: 0, by: -1) {
                    al[i] = LBFGS.dot(oldSteps[i], q) * ro[i]
                    LBFGS.axpy(-al[i], oldDirs[i], &q)
                }
                let hd = Float(hDiag)
                for j in 0..<n { q[j] *= hd }
                for i in 0..<k {
                    let be = LBFGS.dot(oldDirs[i], q) * ro[i]
                    LBFGS.axpy(al[i] - be, oldSteps[i], &q)
                }
                d = q
            }
            prevG = g
            let prevLoss = loss
            t = iteration == 1 ? min(1, 1 / LBFGS.absSum(g)) * o.learningRate : o.learningRate
            let gtd = LBFGS.dot(g, d)
            if gtd > -o.toleranceChange { reason = .changeTolerance; break }

            var lsEvals = 0
            switch o.lineSearch {
            case .strongWolfe:
                let xInit = x
                let r = try strongWolfe(x: xInit, t: t, d: d, f: loss, g: g, gtd: gtd, evaluate: evaluate)
                lsEvals = r.evals
                // A non-finite trial the zoom could not get past (no step, or a non-finite end point).
                if nonFinite && (r.t == 0 || !(r.f.isFinite && LBFGS.allFinite(r.g))) {
                    evals += lsEvals
                    reason = .nonFinite
                    break
                }
                nonFinite = false
                t = r.t; loss = r.f; g = r.g
                let tf = Float(t)
                for i in 0..<n { x[i] = xInit[i] + tf * d[i] }
            case .fixed:
                let tf = Float(t)
                var trial = x
                for i in 0..<n { trial[i] += tf * d[i] }
                let (f1, g1) = try evaluate(trial)
                lsEvals = 1
                if nonFinite { evals += 1; reason = .nonFinite; break }
                x = trial; loss = f1; g = g1
            }
            if reason == .nonFinite { break }
            evals += lsEvals
            let gmax = LBFGS.maxAbs(g)
            if let callback, !callback(LBFGSIterate(iteration: iteration, evaluations: evals, loss: loss,
                                                    stepLength: t, gradientMaxNorm: gmax), x) {
                reason = .callback; break
            }
            if iteration == o.maxIterations { reason = .maxIterations; break }
            if evals >= maxEvals { reason = .maxEvaluations; break }
            if gmax <= o.toleranceGrad { reason = .gradientTolerance; break }
            if LBFGS.maxAbs(d) * Swift.abs(t) <= o.toleranceChange { reason = .changeTolerance; break }
            if Swift.abs(loss - prevLoss) < o.toleranceChange { reason = .changeTolerance; break }
        }
        return LBFGSResult(loss: loss, iterations: iteration, evaluations: evals, reason: reason, evaluationLosses: losses)
    }

    /// Line search for the strong Wolfe conditions (N&W Alg. 3.5 bracketing + Alg. 3.6 zoom), as
    /// PyTorch's `_strong_wolfe`. Returns the accepted step, its loss and gradient, and the
    /// evaluations used. Stops early (returning the best point) when a trial is non-finite.
    private func strongWolfe(x: [Float], t tInit: Double, d: [Float], f: Double, g: [Float], gtd: Double,
                             evaluate: ([Float]) throws -> (Double, [Float])) rethrows
        -> (f: Double, g: [Float], t: Double, evals: Int) {
        let c1 = options.c1, c2 = options.c2, maxLS = options.maxLineSearch, tolChange = options.toleranceChange
        let n = x.count
        let dNorm = LBFGS.maxAbs(d)
        func at(_ t: Double) throws -> (Double, [Float], Double) {
            var p = x
            let tf = Float(t)
            for i in 0..<n { p[i] += tf * d[i] }
            let (fn, gn) = try evaluate(p)
            return (fn, gn, LBFGS.dot(gn, d))
        }
        var t = tInit
        var (fNew, gNew, gtdNew) = try at(t)
        var evals = 1
        var tPrev = 0.0, fPrev = f, gPrev = g, gtdPrev = gtd
        var done = false
        var lsIter = 0
        var bracket: [Double] = [], bf: [Double] = [], bg: [[Float]] = [], bgtd: [Double] = []
        while lsIter < maxLS {
            if !fNew.isFinite || !LBFGS.allFinite(gNew) {
                // Not in PyTorch: a non-finite trial counts as "too far"; bracketing it makes the
                // zoom bisect back towards the last finite step.
                bracket = [tPrev, t]; bf = [fPrev, .infinity]; bg = [gPrev, gNew]; bgtd = [gtdPrev, .infinity]
                break
            }
            if fNew > f + c1 * t * gtd || (lsIter > 1 && fNew >= fPrev) {
                bracket = [tPrev, t]; bf = [fPrev, fNew]; bg = [gPrev, gNew]; bgtd = [gtdPrev, gtdNew]
                break
            }
            if Swift.abs(gtdNew) <= -c2 * gtd {
                bracket = [t]; bf = [fNew]; bg = [gNew]; bgtd = [gtdNew]; done = true
                break
            }
            if gtdNew >= 0 {
                bracket = [tPrev, t]; bf = [fPrev, fNew]; bg = [gPrev, gNew]; bgtd = [gtdPrev, gtdNew]
                break
            }
            let minStep = t + 0.01 * (t - tPrev), maxStep = t * 10
            let tmp = t
            t = LBFGS.cubicInterpolate(tPrev, fPrev, gtdPrev, t, fNew, gtdNew, bounds: (minStep, maxStep))
            tPrev = tmp; fPrev = fNew; gPrev = gNew; gtdPrev = gtdNew
            (fNew, gNew, gtdNew) = try at(t)
            evals += 1
            lsIter += 1
        }
        if lsIter == maxLS {
            bracket = [0, t]; bf = [f, fNew]; bg = [g, gNew]; bgtd = [gtd, gtdNew]
        }
        // Zoom (N&W Alg. 3.6).
        var insufficientProgress = false
        var (low, high) = bf[0] <= bf[bf.count - 1] ? (0, 1) : (1, 0)
        while !done && lsIter < maxLS {
            if bracket.count < 2 { break }
            if Swift.abs(bracket[1] - bracket[0]) * dNorm < tolChange { break }
            t = LBFGS.cubicInterpolate(bracket[0], bf[0], bgtd[0], bracket[1], bf[1], bgtd[1], bounds: nil)
            let bMax = max(bracket[0], bracket[1]), bMin = min(bracket[0], bracket[1])
            let eps = 0.1 * (bMax - bMin)
            if min(bMax - t, t - bMin) < eps {
                if insufficientProgress || t >= bMax || t <= bMin {
                    t = Swift.abs(t - bMax) < Swift.abs(t - bMin) ? bMax - eps : bMin + eps
                    insufficientProgress = false
                } else {
                    insufficientProgress = true
                }
            } else {
                insufficientProgress = false
            }
            (fNew, gNew, gtdNew) = try at(t)
            evals += 1
            lsIter += 1
            let finite = fNew.isFinite && gtdNew.isFinite
            if !finite || fNew > f + c1 * t * gtd || fNew >= bf[low] {
                bracket[high] = t; bf[high] = finite ? fNew : .infinity; bg[high] = gNew
                bgtd[high] = finite ? gtdNew : .infinity
                (low, high) = bf[0] <= bf[1] ? (0, 1) : (1, 0)
            } else {
                if Swift.abs(gtdNew) <= -c2 * gtd {
                    done = true
                } else if gtdNew * (bracket[high] - bracket[low]) >= 0 {
                    bracket[high] = bracket[low]; bf[high] = bf[low]; bg[high] = bg[low]; bgtd[high] = bgtd[low]
                }
                bracket[low] = t; bf[low] = fNew; bg[low] = gNew; bgtd[low] = gtdNew
            }
        }
        if bracket.count == 1 { low = 0 }
        return (bf[low], bg[low], bracket[low], evals)
    }

    /// Minimiser of the cubic through (x₁, f₁, g₁) and (x₂, f₂, g₂), clamped to `bounds` (default:
    /// the interval between the points); the midpoint when the cubic has no minimiser
    /// (N&W eq. 3.59; PyTorch's `_cubic_interpolate`).
    static func cubicInterpolate(_ x1: Double, _ f1: Double, _ g1: Double, _ x2: Double, _ f2: Double, _ g2: Double,
                                 bounds: (Double, Double)?) -> Double {
        let (lo, hi) = bounds ?? (x1 <= x2 ? (x1, x2) : (x2, x1))
        let d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
        let d2sq = d1 * d1 - g1 * g2
        if d2sq >= 0 && d2sq.isFinite {
            let d2 = d2sq.squareRoot()
            let m = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                             : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
            if m.isFinite { return min(max(m, lo), hi) }
        }
        return (lo + hi) / 2
    }

    // MARK: vector helpers (Float data, Double accumulation in blocks)

    static func dot(_ a: [Float], _ b: [Float]) -> Double {
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
            var total = 0.0
            var i = 0
            let n = pa.count
            while i < n {
                let e = min(n, i + 256)
                var s: Float = 0
                for j in i..<e { s += pa[j] * pb[j] }
                total += Double(s)
                i = e
            }
            return total
        } }
    }

    static func axpy(_ alpha: Double, _ x: [Float], _ y: inout [Float]) {
        let a = Float(alpha)
        x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { py in
            for j in 0..<py.count { py[j] += a * px[j] }
        } }
    }

    static func maxAbs(_ a: [Float]) -> Double {
        var m: Float = 0
        for v in a { m = max(m, Swift.abs(v)) }
        return Double(m)
    }

    static func absSum(_ a: [Float]) -> Double {
        var total = 0.0
        a.withUnsafeBufferPointer { p in
            var i = 0
            while i < p.count {
                let e = min(p.count, i + 256)
                var s: Float = 0
                for j in i..<e { s += Swift.abs(p[j]) }
                total += Double(s)
                i = e
            }
        }
        return total
    }

    static func allFinite(_ a: [Float]) -> Bool {
        var bits: UInt32 = 0
        a.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: UInt32.self) { u in
                for v in u { bits = max(bits, v & 0x7F80_0000) }
            }
        }
        return bits != 0x7F80_0000
    }
}
