import XCTest
import GenTensor

/// Fast math kernels, the random generator, autodiff bookkeeping and broadcast shape rules.
final class FastMathTests: XCTestCase {
    func testFastExpRelativeErrorOverRange() {
        var worst = 0.0, worstX: Float = 0
        var x: Float = -80
        while x <= 80 {
            let rel = Swift.abs(Double(fastExp(x)) / Foundation.exp(Double(x)) - 1)
            if rel > worst { worst = rel; worstX = x }
            x += 0.0013
        }
        XCTAssertLessThan(worst, 1e-6, "fastExp worst relative error at x = \(worstX)")
        XCTAssertEqual(fastExp(0), 1)
        XCTAssertEqual(Double(fastExp(1)), M_E, accuracy: 1e-6)
    }

    func testFastExpClampsToFiniteNormalValues() {
        XCTAssertTrue(fastExp(-200).isNormal)
        XCTAssertTrue(fastExp(-87.3).isNormal)
        XCTAssertTrue(fastExp(-Float.infinity).isNormal)
        XCTAssertTrue(fastExp(88.0).isFinite)
    }

    /// Pins a bug: for x in about [88.38, 88.72] (inside the documented clamp range) fastExp
    /// returns +inf, although e^x < Float.greatestFiniteMagnitude there, and the doc comment
    /// promises a finite result. Cause: k = round(x·log2 e) reaches 128 and the scale
    /// `(k + 127) << 23` becomes the bit pattern of +inf.
    func testFastExpIsFiniteUpToTheUpperClamp() {
        for x: Float in [88.3, 88.4, 88.5, 88.7, 88.72283, 100, .infinity] {
            let y = fastExp(x)
            XCTAssertTrue(y.isFinite, "fastExp(\(x)) = \(y), expected finite (e^x = \(Foundation.exp(Double(min(x, 88.72283)))))")
        }
        for x: Float in [88.3, 88.5, 88.7] {
            let rel = Swift.abs(Double(fastExp(x)) / Foundation.exp(Double(x)) - 1)
            XCTAssertLessThan(rel, 1e-6, "fastExp(\(x))")
        }
    }

    func testFastSigmoidAndTanhAccuracy() {
        var worstSig = 0.0, worstTanh = 0.0, worstTanhRel = 0.0
        var x: Float = -20
        while x <= 20 {
            let d = Double(x)
            worstSig = max(worstSig, Swift.abs(Double(fastSigmoid(x)) - 1 / (1 + Foundation.exp(-d))))
            let t = Foundation.tanh(d)
            worstTanh = max(worstTanh, Swift.abs(Double(fastTanh(x)) - t))
            if Swift.abs(x) >= 0.05 { worstTanhRel = max(worstTanhRel, Swift.abs(Double(fastTanh(x)) / t - 1)) }
            x += 0.0011
        }
        XCTAssertLessThan(worstSig, 3e-7, "fastSigmoid absolute error")
        XCTAssertLessThan(worstTanh, 3e-7, "fastTanh absolute error")
        XCTAssertLessThan(worstTanhRel, 1e-5, "fastTanh relative error for |x| ≥ 0.05")
        XCTAssertEqual(fastTanh(0), 0)
        XCTAssertEqual(fastTanh(50), 1)
        XCTAssertEqual(fastTanh(-50), -1)
        XCTAssertEqual(fastSigmoid(0), 0.5)
        XCTAssertEqual(fastTanh(-0.7), -fastTanh(0.7), "odd symmetry")
        XCTAssertTrue(fastSigmoid(-100) >= 0 && fastSigmoid(100) <= 1)
    }
}

final class RandomGeneratorTests: XCTestCase {
    func testSameSeedSameStream() {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42), c = RandomGenerator(seed: 43)
        let sa = (0..<100).map { _ in a.next() }, sb = (0..<100).map { _ in b.next() }
        let sc = (0..<100).map { _ in c.next() }
        XCTAssertEqual(sa, sb)
        XCTAssertNotEqual(sa, sc)
        var r1 = RandomGenerator(seed: 7), r2 = RandomGenerator(seed: 7)
        XCTAssertEqual(Tensor.normal([50], using: &r1).scalars, Tensor.normal([50], using: &r2).scalars)
        XCTAssertEqual(Tensor.uniform([50], using: &r1).scalars, Tensor.uniform([50], using: &r2).scalars)
        XCTAssertEqual(r1.permutation(20), r2.permutation(20))
    }

    func testKnownFirstOutputIsStable() {
        // Guards against accidental changes to seeding or the generator (checkpoints store state).
        var a = RandomGenerator(seed: 0)
        let first = a.next()
        var b = RandomGenerator(seed: 0)
        XCTAssertEqual(first, b.next())
        XCTAssertNotEqual(first, 0)
    }

    func testStateRestoreContinuesTheStream() throws {
        var g = RandomGenerator(seed: 99)
        for _ in 0..<37 { _ = g.next() }
        _ = g.nextNormal(); _ = g.nextNormal()   // even count: no spare pending
        var restored = try RandomGenerator(state: g.state)
        XCTAssertEqual((0..<20).map { _ in g.next() }, (0..<20).map { _ in restored.next() })
        XCTAssertEqual((0..<11).map { _ in g.nextNormal() }, (0..<11).map { _ in restored.nextNormal() })
    }

    func testCodableRoundTripRestoresSpareNormal() throws {
        var g = RandomGenerator(seed: 5)
        _ = g.nextNormal()   // leaves a spare normal pending
        let data = try JSONEncoder().encode(g)
        var restored = try JSONDecoder().decode(RandomGenerator.self, from: data)
        XCTAssertEqual(restored, g)
        XCTAssertEqual((0..<9).map { _ in g.nextNormal() }, (0..<9).map { _ in restored.nextNormal() })
    }

    /// Pins a gap: the doc says the full state "can be saved into a checkpoint (`state`) and
    /// restored exactly", but `init(state:)` drops the pending Box–Muller spare (`spareNormal`),
    /// so a run resumed after an odd number of normal draws diverges. Fix: an
    /// `init(state:spareNormal:)` (or store `spareNormal` with `state` in checkpoints and say so).
    func testRestoreFromStateAfterOddNumberOfNormals() throws {
        var g = RandomGenerator(seed: 5)
        _ = g.nextNormal()
        var restored = try RandomGenerator(state: g.state, spareNormal: g.spareNormal)
        XCTAssertEqual(g.nextNormal(), restored.nextNormal(),
                       "init(state:) cannot restore a pending spare normal")
    }

    func testInvalidStateThrows() {
        XCTAssertThrowsError(try RandomGenerator(state: [0, 0, 0, 0]))
        XCTAssertThrowsError(try RandomGenerator(state: [1, 2, 3]))
    }

    func testDistributions() {
        var g = RandomGenerator(seed: 11)
        let u = Tensor.uniform([4000], low: -2, high: 3, using: &g).scalars
        XCTAssertTrue(u.allSatisfy { $0 >= -2 && $0 < 3 })
        XCTAssertEqual(Double(u.reduce(0, +)) / 4000, 0.5, accuracy: 0.1)
        let n = Tensor.normal([4000], mean: 1, standardDeviation: 2, using: &g).scalars.map(Double.init)
        let mean = n.reduce(0, +) / 4000
        let sd = (n.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4000).squareRoot()
        XCTAssertEqual(mean, 1, accuracy: 0.1)
        XCTAssertEqual(sd, 2, accuracy: 0.1)
        XCTAssertEqual(g.permutation(30).sorted(), Array(0..<30))
        for _ in 0..<200 { XCTAssertTrue((0..<7).contains(g.nextInt(below: 7))) }
    }
}

final class AutodiffTests: XCTestCase {
    func testWithNoGradRecordsNothing() {
        let x = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4], requiresGrad: true)
        XCTAssertTrue(GradMode.isEnabled)
        let y: Tensor = withNoGrad {
            XCTAssertFalse(GradMode.isEnabled)
            return (Tensor.matmul(x, x) * x + 1).reshaped([4]).softmax().sum()
        }
        XCTAssertTrue(GradMode.isEnabled, "mode restored")
        XCTAssertFalse(y.requiresGrad)
        y.backward()
        XCTAssertNil(x.grad, "nothing recorded, so nothing reaches x")
        // Nested scopes restore the outer mode; so does a throw.
        withNoGrad {
            withNoGrad { }
            XCTAssertFalse(GradMode.isEnabled)
        }
        struct Boom: Error {}
        XCTAssertThrowsError(try withNoGrad { throw Boom() })
        XCTAssertTrue(GradMode.isEnabled)
        // Outside the scope recording resumes.
        XCTAssertTrue((x * 2).requiresGrad)
    }

    func testConstantsDoNotRequireGrad() {
        let a = Tensor(shape: [2], scalars: [1, 2]), b = Tensor(shape: [2], scalars: [3, 4])
        XCTAssertFalse((a * b).exp().requiresGrad)
        let p = Tensor(shape: [2], scalars: [1, 2], requiresGrad: true)
        XCTAssertTrue((a * p).requiresGrad)
        (a * p).sum().backward()
        XCTAssertNil(a.grad)
        XCTAssertEqual(p.grad!.scalars, [1, 2])
    }

    func testGradientsAccumulateAcrossBackwardCalls() {
        let x = Tensor(shape: [3], scalars: [1, -2, 0.5], requiresGrad: true)
        (x * x).sum().backward()             // 2x
        XCTAssertEqual(x.grad!.scalars, [2, -4, 1])
        (x * 3).sum().backward()             // + 3
        XCTAssertEqual(x.grad!.scalars, [5, -1, 4])
        x.zeroGrad()
        XCTAssertNil(x.grad)
        x.exp().sum().backward()
        assertClose(x.grad!.scalars, [1, -2, 0.5].map { Foundation.exp($0) }, atol: 1e-6)
    }

    func testDiamondGraphAndReuse() {
        // y = a·b where a = x², b = a + x: dy/dx = 2x·b + a·(2x + 1).
        let x = Tensor(shape: [2], scalars: [1.5, -0.5], requiresGrad: true)
        let a = x * x
        let b = a + x
        (a * b).sum().backward()
        let expected = [1.5, -0.5].map { v -> Double in
            let av = v * v, bv = av + v
            return 2 * v * bv + av * (2 * v + 1)
        }
        assertClose(x.grad!.scalars, expected, atol: 1e-6)
        XCTAssertNil(a.grad, "intermediate gradients are released")
    }

    func testBackwardWithSeedAndRank0() {
        let x = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4], requiresGrad: true)
        (x * 2).backward(seed: Tensor(shape: [2, 2], scalars: [1, 0, -1, 0.5]))
        XCTAssertEqual(x.grad!.scalars, [2, 0, -2, 1])
        let s = Tensor(shape: [], scalars: [3], requiresGrad: true)
        s.squared().backward()
        XCTAssertEqual(s.grad!.scalars, [6])
        XCTAssertEqual(s.grad!.shape, [])
    }

    func testGradShapesMatchInputs() {
        var r = TestRandom(seed: 70)
        let a = r.uniform([2, 1, 3]), b = r.uniform([4, 1]), c = r.uniform([])
        ((a * b + c).sum(axes: [1])).sum().backward()
        XCTAssertEqual(a.grad!.shape, [2, 1, 3])
        XCTAssertEqual(b.grad!.shape, [4, 1])
        XCTAssertEqual(c.grad!.shape, [])
        XCTAssertEqual(c.grad!.scalar, 24)
    }

    func testDetachedAndCopyAreLeaves() {
        let x = Tensor(shape: [2], scalars: [1, 2], requiresGrad: true)
        let y = x * 3
        XCTAssertFalse(y.detached().requiresGrad)
        XCTAssertFalse(y.copy().requiresGrad)
        XCTAssertEqual(y.detached().scalars, [3, 6])
    }
}

final class BroadcastShapeTests: XCTestCase {
    func testRules() {
        XCTAssertEqual(broadcastShape([2, 3], [2, 3]), [2, 3])
        XCTAssertEqual(broadcastShape([], [2, 3]), [2, 3])
        XCTAssertEqual(broadcastShape([2, 3], []), [2, 3])
        XCTAssertEqual(broadcastShape([1], [2, 3]), [2, 3])
        XCTAssertEqual(broadcastShape([3], [4, 3]), [4, 3])
        XCTAssertEqual(broadcastShape([4, 1], [4, 3]), [4, 3])
        XCTAssertEqual(broadcastShape([2, 1, 3], [4, 1]), [2, 4, 3])
        XCTAssertEqual(broadcastShape([4, 1], [2, 1, 3]), [2, 4, 3])
        XCTAssertEqual(broadcastShape([3, 1], [1, 4]), [3, 4])
        XCTAssertEqual(broadcastShape([1, 1], [1]), [1, 1])
        XCTAssertEqual(broadcastShape([5, 1, 1], [1, 6, 1]), [5, 6, 1])
        XCTAssertEqual(broadcastShape([0], [1]), [0])
        XCTAssertEqual(broadcastShape([2, 0], [2, 1]), [2, 0])
        XCTAssertEqual(broadcastShape([], []), [])
        XCTAssertNil(broadcastShape([3], [4]))
        XCTAssertNil(broadcastShape([2, 3], [3, 2]))
        XCTAssertNil(broadcastShape([4, 3], [4]))
        XCTAssertNil(broadcastShape([2, 3, 4], [3, 1, 4]))
        XCTAssertNil(broadcastShape([0], [2]))
    }

    func testSymmetric() {
        let shapes: [[Int]] = [[], [1], [3], [2, 1], [1, 3], [2, 3], [2, 1, 3], [4, 1], [3, 3]]
        for a in shapes { for b in shapes { XCTAssertEqual(broadcastShape(a, b), broadcastShape(b, a), "\(a) \(b)") } }
    }
}

/// The empty-run-folder removal of a second Ctrl-C (``PendingCreatedFolder``), called directly.
final class PendingCreatedFolderTests: XCTestCase {
    func testRemovesOnlyEmptyFoldersThisProcessMade() throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gen-pending-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        let fm = FileManager.default
        // Made a/b/c (a was missing): all three go.
        let c = base.appendingPathComponent("a/b/c")
        try fm.createDirectory(at: c, withIntermediateDirectories: true)
        PendingCreatedFolder.set(c.path, createdRoot: base.appendingPathComponent("a").path)
        PendingCreatedFolder.removeOnAbort()
        XCTAssertFalse(fm.fileExists(atPath: base.appendingPathComponent("a").path))
        XCTAssertTrue(fm.fileExists(atPath: base.path))
        // Made only c (a/b existed): c goes, a/b stays.
        try fm.createDirectory(at: c, withIntermediateDirectories: true)
        PendingCreatedFolder.set(c.path, createdRoot: c.path)
        PendingCreatedFolder.removeOnAbort()
        XCTAssertFalse(fm.fileExists(atPath: c.path))
        XCTAssertTrue(fm.fileExists(atPath: base.appendingPathComponent("a/b").path))
        // A folder holding a file stays, and so do the ones above it.
        try fm.createDirectory(at: c, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: c.appendingPathComponent("checkpoint.safetensors"))
        PendingCreatedFolder.set(c.path, createdRoot: base.appendingPathComponent("a").path)
        PendingCreatedFolder.removeOnAbort()
        XCTAssertTrue(fm.fileExists(atPath: c.appendingPathComponent("checkpoint.safetensors").path))
        // A root that is not an ancestor, a relative path, or a cleared slot: nothing happens.
        let d = base.appendingPathComponent("d")
        try fm.createDirectory(at: d, withIntermediateDirectories: true)
        PendingCreatedFolder.set(d.path, createdRoot: base.appendingPathComponent("a").path)
        PendingCreatedFolder.removeOnAbort()
        PendingCreatedFolder.set("relative/d", createdRoot: "relative")
        PendingCreatedFolder.removeOnAbort()
        PendingCreatedFolder.set(d.path, createdRoot: d.path)
        PendingCreatedFolder.clear()
        PendingCreatedFolder.removeOnAbort()
        XCTAssertTrue(fm.fileExists(atPath: d.path))
        // A prefix that is not a whole folder name ("/x/ab" is not under "/x/a") is refused.
        let ab = base.appendingPathComponent("ab")
        try fm.createDirectory(at: ab, withIntermediateDirectories: true)
        PendingCreatedFolder.set(ab.path, createdRoot: base.appendingPathComponent("a").path)
        PendingCreatedFolder.removeOnAbort()
        XCTAssertTrue(fm.fileExists(atPath: ab.path))
    }
}
