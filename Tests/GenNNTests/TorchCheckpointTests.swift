import Foundation
import XCTest
@testable import GenNN
import GenTensor

/// The `.pth` reader, `loadStateDict`, `assign` and the layout conversions.
///
/// Fixtures in `Fixtures/pth/` are written by `Tools/make_pth_fixtures.py` with PyTorch; the
/// real SqueezeNet file comes from `../shared/data/weights` (skipped when absent).
final class TorchCheckpointTests: XCTestCase {
    static let marker = "/tmp/gen_pth_fixture_pwned"

    func fixture(_ name: String) throws -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: "pth", subdirectory: "Fixtures/pth") else {
            XCTFail("missing fixture Fixtures/pth/\(name).pth (run Tools/make_pth_fixtures.py)")
            throw XCTSkip("missing fixture")
        }
        return url
    }

    func expected() throws -> [String: (shape: [Int], data: [Double])] {
        guard let url = Bundle.module.url(forResource: "expected", withExtension: "json", subdirectory: "Fixtures/pth") else {
            XCTFail("missing fixture Fixtures/pth/expected.json")
            throw XCTSkip("missing fixture")
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: [String: Any]]
        return json.mapValues { entry in
            ((entry["shape"] as! [NSNumber]).map(\.intValue), (entry["data"] as! [NSNumber]).map(\.doubleValue))
        }
    }

    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gen-pth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// Loads `url`, expecting a PretrainedError, and returns it.
    func loadError(_ url: URL, file: StaticString = #filePath, line: UInt = #line) -> PretrainedError? {
        do {
            let t = try loadStateDict(from: url)
            XCTFail("expected an error, loaded \(t.count) tensors", file: file, line: line)
        } catch let e as PretrainedError {
            XCTAssertEqual(e.file, url.path, file: file, line: line)
            XCTAssertTrue(e.description.hasPrefix(url.path + ": "), e.description, file: file, line: line)
            return e
        } catch {
            XCTFail("expected a PretrainedError, got \(error)", file: file, line: line)
        }
        return nil
    }

    // MARK: Real file

    func testRealSqueezeNetPthEqualsSafetensors() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.deletingLastPathComponent().appendingPathComponent("shared/data/weights")
        let pth = dir.appendingPathComponent("squeezenet1_0.pth")
        let st = dir.appendingPathComponent("squeezenet1_0.safetensors")
        guard FileManager.default.fileExists(atPath: pth.path), FileManager.default.fileExists(atPath: st.path) else {
            throw XCTSkip("shared/data/weights/squeezenet1_0.{pth,safetensors} not found")
        }
        let a = try loadStateDict(from: pth)
        let b = try loadStateDict(from: st)
        XCTAssertEqual(a.count, 52)
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        XCTAssertEqual(a["features.0.weight"]?.shape, [96, 3, 7, 7])
        XCTAssertEqual(a["classifier.1.bias"]?.shape, [1000])
        for (name, t) in a {
            guard let u = b[name] else { continue }
            XCTAssertEqual(t.shape, u.shape, name)
            XCTAssertEqual(t.name, name)
            XCTAssertTrue(t.scalars == u.scalars, "\(name) differs")
        }
    }

    /// Opt-in: `GEN_PTH_LARGE=/path/vgg19-dcbb9e9d.pth swift test --filter testLargeFile` loads a
    /// big file (e.g. a real torchvision download) and prints the time and tensor count.
    func testLargeFileIfProvided() throws {
        guard let path = ProcessInfo.processInfo.environment["GEN_PTH_LARGE"], !path.isEmpty else {
            throw XCTSkip("set GEN_PTH_LARGE to a large .pth file to run")
        }
        let start = Date()
        let tensors = try loadStateDict(from: URL(fileURLWithPath: path))
        let elements = tensors.values.reduce(0) { $0 + $1.count }
        print("loaded \(tensors.count) tensors, \(elements) elements in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        XCTAssertFalse(tensors.isEmpty)
    }

    // MARK: Layouts

    func checkLayouts(_ loaded: [String: Tensor], _ label: String) throws {
        let want = try expected()
        XCTAssertEqual(Set(loaded.keys), Set(want.keys), label)
        for (name, e) in want {
            guard let t = loaded[name] else { continue }
            XCTAssertEqual(t.shape, e.shape, "\(label) \(name)")
            XCTAssertEqual(t.scalars, e.data.map { Float($0) }, "\(label) \(name)")
        }
        // Spot checks of the interesting layouts (values follow from make_pth_fixtures.py).
        XCTAssertEqual(loaded["transposed"]?.shape, [4, 3])
        XCTAssertEqual(loaded["transposed"]?.scalars.prefix(3), [-1.0, 1.0, 3.0])  // column 0 of the 3x4 base
        XCTAssertEqual(loaded["offset_view"]?.scalars, [1.25, 1.5, 1.75, 2.0, 2.25, 2.5])
        XCTAssertEqual(loaded["scalar"]?.shape, [])
        XCTAssertEqual(loaded["scalar"]?.scalar, 3.25)
        XCTAssertEqual(loaded["empty"]?.shape, [0, 3])
        XCTAssertEqual(loaded["bn.num_batches_tracked"]?.scalar, 42)
        XCTAssertEqual(loaded["bool"]?.scalars, [1, 0, 1])
        XCTAssertEqual(loaded["param"]?.scalars, [0.125, -0.5, 2.0])
        let a = loaded["shared_a"]!.scalars, b = loaded["shared_b"]!.scalars
        XCTAssertEqual(Array(a[2..<8]), b, "\(label): two tensors sharing one storage")
    }

    func testZipLayouts() throws {
        try checkLayouts(try TorchCheckpoint.load(contentsOf: fixture("layouts")), "zip")
        try checkLayouts(try loadStateDict(from: fixture("layouts")), "zip via loadStateDict")
    }

    func testLegacyLayouts() throws {
        try checkLayouts(try loadStateDict(from: fixture("layouts_legacy")), "legacy")
    }

    func testSafetensorsDispatchByMagic() throws {
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("weights.pth")  // the extension does not decide
        try SafetensorsFile.write(tensors: ["w": Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])], to: url)
        let loaded = try loadStateDict(from: url)
        XCTAssertEqual(loaded["w"]?.scalars, [1, 2, 3, 4])
        XCTAssertThrowsError(try TorchCheckpoint.load(contentsOf: url)) { error in
            guard case .unknownFormat = (error as? PretrainedError)?.kind else { return XCTFail("\(error)") }
        }
    }

    // MARK: Malicious pickles

    func testMaliciousPicklesAreRefusedWithoutExecuting() throws {
        let cases: [(String, [String])] = [
            ("evil_os_system", ["posix.system", "nt.system"]),
            ("evil_eval", ["builtins.eval"]),
            ("evil_nested", ["posix.system", "nt.system"]),
            ("evil_legacy", ["posix.system", "nt.system"]),
        ]
        for (name, globals) in cases {
            try? FileManager.default.removeItem(atPath: Self.marker)
            let url = try fixture(name)
            guard let e = loadError(url) else { continue }
            guard case .forbiddenGlobal(let global, let location) = e.kind else {
                XCTFail("\(name): \(e)"); continue
            }
            XCTAssertTrue(globals.contains(global), "\(name): \(global)")
            XCTAssertTrue(location.contains("byte"), location)
            XCTAssertTrue(e.description.contains(global) && e.description.contains("nothing was executed"), e.description)
            XCTAssertFalse(FileManager.default.fileExists(atPath: Self.marker), "\(name): the payload ran")
        }
    }

    func testForbiddenGlobalsInMemory() throws {
        // Protocol 0/2 GLOBAL and protocol 4 STACK_GLOBAL, each naming something never allowed.
        func global(_ module: String, _ name: String) -> [UInt8] {
            [0x80, 0x02, 0x63] + Array("\(module)\n\(name)\n".utf8) + [0x29, 0x52, 0x2E]
        }
        func stackGlobal(_ module: String, _ name: String) -> [UInt8] {
            [0x80, 0x04, 0x8C, UInt8(module.utf8.count)] + Array(module.utf8)
                + [0x8C, UInt8(name.utf8.count)] + Array(name.utf8) + [0x93, 0x29, 0x52, 0x2E]
        }
        let programs: [([UInt8], String)] = [
            (global("os", "system"), "os.system"),
            (global("__builtin__", "eval"), "__builtin__.eval"),
            (global("subprocess", "Popen"), "subprocess.Popen"),
            (global("torch", "load"), "torch.load"),
            (global("torch._utils", "_rebuild_device_tensor_from_numpy"), "torch._utils._rebuild_device_tensor_from_numpy"),
            (stackGlobal("builtins", "exec"), "builtins.exec"),
            (stackGlobal("posix", "system"), "posix.system"),
        ]
        for (bytes, name) in programs {
            XCTAssertThrowsError(try unpickle(bytes)) { error in
                guard let f = error as? PickleFailure, case .forbiddenGlobal(let g) = f.reason else {
                    return XCTFail("\(name): \(error)")
                }
                XCTAssertEqual(g, name)
            }
        }
    }

    /// Unpickles `bytes`, passes the value to `inspect`, then releases it.
    func unpickle(_ bytes: [UInt8], inspect: (PickleValue) -> Void = { _ in }) throws {
        try bytes.withUnsafeBytes { raw in
            var u = RestrictedUnpickler(bytes: raw) { _, offset in
                throw PickleFailure(offset: offset, reason: .invalid("no persistent ids here"))
            }
            let v = try u.load()
            inspect(v)
            u.release(v)
        }
    }

    func testUnpicklerValuesAndErrors() throws {
        // {'a': [1, -2, 300, 70000, 2**40, -1.5, True, None, 'é'], 'b': ()}, protocol 2, written
        // by CPython's pickle.dumps.
        let bytes: [UInt8] = [
            0x80, 0x02, 0x7d, 0x71, 0x00, 0x28, 0x58, 0x01, 0x00, 0x00, 0x00, 0x61, 0x71, 0x01, 0x5d, 0x71,
            0x02, 0x28, 0x4b, 0x01, 0x4a, 0xfe, 0xff, 0xff, 0xff, 0x4d, 0x2c, 0x01, 0x4a, 0x70, 0x11, 0x01,
            0x00, 0x8a, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x47, 0xbf, 0xf8, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x88, 0x4e, 0x58, 0x02, 0x00, 0x00, 0x00, 0xc3, 0xa9, 0x71, 0x03, 0x65, 0x58, 0x01,
            0x00, 0x00, 0x00, 0x62, 0x71, 0x04, 0x29, 0x75, 0x2e,
        ]
        var items: [PickleValue] = []
        try unpickle(bytes) { v in
            guard case .dict(let d) = v, d.pairs.count == 2, case .list(let l) = d.pairs[0].value else {
                return XCTFail("\(v.kindName)")
            }
            items = l.items
        }
        XCTAssertEqual(items.count, 9)
        if case .int(let x) = items[0] { XCTAssertEqual(x, 1) } else { XCTFail() }
        if case .int(let x) = items[1] { XCTAssertEqual(x, -2) } else { XCTFail() }
        if case .int(let x) = items[2] { XCTAssertEqual(x, 300) } else { XCTFail() }
        if case .int(let x) = items[3] { XCTAssertEqual(x, 70000) } else { XCTFail() }
        if case .int(let x) = items[4] { XCTAssertEqual(x, 1 << 40) } else { XCTFail() }
        if case .float(let x) = items[5] { XCTAssertEqual(x, -1.5) } else { XCTFail() }
        if case .bool(let x) = items[6] { XCTAssertTrue(x) } else { XCTFail() }
        if case .none = items[7] {} else { XCTFail() }
        if case .string(let x) = items[8] { XCTAssertEqual(x, "é") } else { XCTFail() }

        // Truncated, unknown opcode, stack underflow, bad memo, deep nesting.
        XCTAssertThrowsError(try unpickle(Array(bytes.prefix(30)))) { error in
            guard let f = error as? PickleFailure, case .truncated = f.reason else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try unpickle([0x80, 0x02, 0xFF, 0x2E])) { error in
            guard let f = error as? PickleFailure, case .unknownOpcode(0xFF) = f.reason else { return XCTFail("\(error)") }
            XCTAssertEqual(f.offset, 2)
        }
        XCTAssertThrowsError(try unpickle([0x80, 0x02, 0x52, 0x2E]))
        XCTAssertThrowsError(try unpickle([0x80, 0x02, 0x68, 0x07, 0x2E]))
        XCTAssertThrowsError(try unpickle([0x80, 0x02, 0x49, 0x31, 0x0A, 0x2E]))  // protocol-0 INT: unsupported
        var deep: [UInt8] = [0x80, 0x02, 0x29]
        deep += [UInt8](repeating: 0x85, count: 200_000)  // 200,000 nested 1-tuples
        deep.append(0x2E)
        XCTAssertNoThrow(try unpickle(deep))
    }

    // MARK: Broken files

    func testBrokenArchives() throws {
        func expect(_ name: String, _ check: (PretrainedError.Kind) -> Bool) throws {
            let url = try fixture(name)
            if let e = loadError(url) { XCTAssertTrue(check(e.kind), "\(name): \(e)") }
        }
        try expect("broken_no_pickle") { if case .missingEntry = $0 { return true }; return false }
        try expect("broken_missing_storage") {
            if case .storageMissing(key: "2", tensor: "shared_a") = $0 { return true }; return false
        }
        try expect("broken_short_storage") { if case .storageTooShort(key: "2", _) = $0 { return true }; return false }
        try expect("broken_truncated_pickle") {
            if case .invalidPickle(let location, let reason) = $0 {
                return location.hasPrefix("broken_truncated_pickle/data.pkl byte") && reason.contains("truncated")
            }
            return false
        }
        try expect("broken_unknown_opcode") {
            if case .unknownOpcode(0xFF, "broken_unknown_opcode/data.pkl byte 2") = $0 { return true }; return false
        }
        try expect("broken_not_state_dict") {
            if case .notAStateDict(let d) = $0 { return d.contains("'epoch'") }; return false
        }
    }

    func testTruncatedEmptyRandomAndMissingFiles() throws {
        let dir = try temporaryDirectory()
        let full = try Data(contentsOf: fixture("layouts"))
        for length in [4, 30, 100, full.count / 2, full.count - 10] {
            let url = dir.appendingPathComponent("truncated-\(length).pth")
            try full.prefix(length).write(to: url)
            if let e = loadError(url) {
                switch e.kind {
                case .corruptArchive, .truncated: break
                default: XCTFail("truncated at \(length): \(e)")
                }
            }
        }
        let legacy = try Data(contentsOf: fixture("layouts_legacy"))
        for length in [20, legacy.count / 2, legacy.count - 3] {
            let url = dir.appendingPathComponent("legacy-\(length).pth")
            try legacy.prefix(length).write(to: url)
            if let e = loadError(url) {
                switch e.kind {
                case .truncated, .invalidPickle: break
                default: XCTFail("legacy truncated at \(length): \(e)")
                }
            }
        }

        // A flipped byte inside a stored storage entry fails its CRC-32: the first storage holds
        // the floats -1.0, -0.5, ... (the transposed tensor's base).
        var flipped = full
        let needle = Data([0x00, 0x00, 0x80, 0xBF, 0x00, 0x00, 0x00, 0xBF])
        if let r = flipped.range(of: needle) {
            flipped[r.lowerBound + 2] ^= 0x01
            let url = dir.appendingPathComponent("flipped.pth")
            try flipped.write(to: url)
            if let e = loadError(url) {
                guard case .corruptArchive(let d) = e.kind, d.contains("CRC") else { return XCTFail("\(e)") }
            }
        } else {
            XCTFail("storage bytes not found in the fixture")
        }

        let empty = dir.appendingPathComponent("empty.pth")
        try Data().write(to: empty)
        XCTAssertEqual(loadError(empty)?.kind, .empty)

        var generator = SystemRandomNumberGenerator()
        let random = dir.appendingPathComponent("random.pth")
        try Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) } + [0]).write(to: random)
        if let e = loadError(random) {
            guard case .unknownFormat = e.kind else { return XCTFail("\(e)") }
        }

        XCTAssertEqual(loadError(dir.appendingPathComponent("absent.pth"))?.kind, .fileNotFound)
        XCTAssertEqual(loadError(dir)?.kind, .notARegularFile)
    }

    // MARK: Materialising

    func testMaterialiseRejectsOutOfRangeViews() throws {
        let storageBytes = (0..<6).map { Float($0) }.withUnsafeBytes { Array($0) }
        try storageBytes.withUnsafeBytes { raw in
            let storage = TorchStorageRef(key: "0", type: .float, location: "cpu", numel: 6)
            func make(_ offset: Int, _ shape: [Int], _ stride: [Int]) throws -> Tensor {
                try TorchCheckpoint.materialise(TorchTensorRef(storage: storage, offset: offset, shape: shape, stride: stride),
                                                name: "t", storage: raw, bigEndian: false, file: "f")
            }
            XCTAssertEqual(try make(0, [2, 3], [3, 1]).scalars, [0, 1, 2, 3, 4, 5])
            XCTAssertEqual(try make(0, [3, 2], [1, 3]).scalars, [0, 3, 1, 4, 2, 5])
            XCTAssertEqual(try make(1, [2, 2], [2, 2]).scalars, [1, 3, 3, 5])
            XCTAssertEqual(try make(4, [3], [0]).scalars, [4, 4, 4])  // broadcast view
            XCTAssertEqual(try make(5, [], []).scalars, [5])
            XCTAssertEqual(try make(100, [0, 4], [4, 1]).shape, [0, 4])  // empty: never reads
            XCTAssertThrowsError(try make(1, [2, 3], [3, 1]))  // reaches element 6
            XCTAssertThrowsError(try make(-1, [2], [1]))
            XCTAssertThrowsError(try make(0, [2], [-1]))
            XCTAssertThrowsError(try make(0, [Int.max, 2], [1, 1]))
            XCTAssertThrowsError(try make(0, [1 << 20, 1 << 20], [0, 0]))  // refused, not allocated
        }
    }

    // MARK: Mapping and conversions

    func testAssignIsStrictAndListsEveryProblem() throws {
        let params: [String: Tensor] = [
            "conv.kernel": Tensor(zeros: [2, 2, 3, 2]),
            "fc.kernel": Tensor(zeros: [3, 2]),
            "fc.bias": Tensor(zeros: [2]),
            "absent": Tensor(zeros: [1]),
        ]
        let state: [String: Tensor] = [
            "conv.kernel": Tensor(shape: [2, 3, 2, 2], scalars: (0..<24).map(Float.init)),
            "fc.kernel": Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]),
            "fc.bias": Tensor(shape: [3], scalars: [1, 2, 3]),
            "extra": Tensor(zeros: [4]),
            "bn.num_batches_tracked": Tensor(7),
        ]
        let transform: (String, Tensor) -> Tensor = { name, t in
            if name.hasPrefix("conv") { return convertOIHWToHWIO(t) }
            if name == "fc.kernel" { return convertLinearToInOut(t) }
            return t
        }
        XCTAssertThrowsError(try assign(state, to: params, source: "model.pth", transform: transform)) { error in
            guard let e = error as? PretrainedError, case .stateDictMismatch(let problems) = e.kind else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(problems.count, 3, "\(problems)")
            XCTAssertTrue(problems.contains { $0.contains("missing") && $0.contains("'absent'") })
            XCTAssertTrue(problems.contains { $0.contains("unexpected") && $0.contains("'extra'") })
            XCTAssertTrue(problems.contains { $0.contains("shape mismatch") && $0.contains("'fc.bias'") })
            XCTAssertTrue(e.description.hasPrefix("model.pth: the weights do not match the model (3 problems)"))
        }
        XCTAssertEqual(params["fc.kernel"]!.scalars, [0, 0, 0, 0, 0, 0], "nothing assigned on error")

        var fixed = state
        fixed["fc.bias"] = Tensor(shape: [2], scalars: [7, 8])
        fixed["absent"] = Tensor(shape: [1], scalars: [9])
        fixed["extra"] = nil
        try assign(fixed, to: params, transform: transform)
        XCTAssertEqual(params["fc.kernel"]!.scalars, [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(params["fc.bias"]!.scalars, [7, 8])
        // HWIO[h][w][i][o] == OIHW[o][i][h][w]
        let hwio = params["conv.kernel"]!.scalars, oihw = state["conv.kernel"]!.scalars
        for o in 0..<2 { for i in 0..<3 { for h in 0..<2 { for w in 0..<2 {
            XCTAssertEqual(hwio[((h * 2 + w) * 3 + i) * 2 + o], oihw[((o * 3 + i) * 2 + h) * 2 + w])
        } } } }
        // Conversions leave tensors of another rank alone, so assign reports them.
        XCTAssertEqual(convertOIHWToHWIO(Tensor(zeros: [2, 3])).shape, [2, 3])
        XCTAssertEqual(convertLinearToInOut(Tensor(zeros: [2, 3, 4])).shape, [2, 3, 4])
    }

    // MARK: SHA-256

    func testSHA256KnownVectorsAndChunking() throws {
        func hex(_ s: String, chunk: Int) -> String {
            var h = SHA256()
            let bytes = Array(s.utf8)
            var i = 0
            repeat {
                let part = Array(bytes[i..<min(i + chunk, bytes.count)])
                part.withUnsafeBytes { h.update($0) }
                i += chunk
            } while i < bytes.count
            return h.finalizeHex()
        }
        let vectors = [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
            (String(repeating: "a", count: 1000), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"),
        ]
        for (input, digest) in vectors {
            for chunk in [1, 7, 63, 64, 65, 1000] {
                XCTAssertEqual(hex(input, chunk: chunk), digest, "'\(input.prefix(10))' in chunks of \(chunk)")
            }
        }
        XCTAssertTrue(WeightsRegistry.digest(vectors[1].1, matches: "BA7816BF"))
        XCTAssertFalse(WeightsRegistry.digest(vectors[1].1, matches: "ba7816"))  // shorter than 8 digits
        XCTAssertFalse(WeightsRegistry.digest(vectors[1].1, matches: "ba7816bf0"))
    }

    // MARK: Registry

    func testRegistryAndResolveWeights() throws {
        XCTAssertEqual(WeightsRegistry.network(named: "vgg")?.name, "vgg19")
        XCTAssertEqual(WeightsRegistry.network(named: "Inception")?.name, "inception_v3")
        XCTAssertEqual(WeightsRegistry.network(named: "squeezenet")?.fileName, "squeezenet1_0-b66bff10.pth")
        for n in WeightsRegistry.networks {
            XCTAssertEqual(n.url.host, "download.pytorch.org")
            XCTAssertTrue(n.fileName.contains("-\(n.sha256.prefix(8)).pth"), n.fileName)
        }
        XCTAssertEqual(WeightsRegistry.cacheDirectory(environment: ["GEN_WEIGHTS": "/x/w"]).path, "/x/w")
        XCTAssertEqual(WeightsRegistry.cacheDirectory(environment: ["HOME": "/home/u"]).path, "/home/u/.cache/gen/weights")

        let dir = try temporaryDirectory()
        XCTAssertThrowsError(try WeightsRegistry.resolveWeights(network: "vgg", explicit: nil, cacheDirectory: dir)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("gen weights download vgg19"), text)
            XCTAssertTrue(text.contains("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"), text)
            XCTAssertTrue(text.contains("--weights FILE"), text)
            XCTAssertTrue(text.contains(dir.path), text)
        }
        XCTAssertThrowsError(try WeightsRegistry.resolveWeights(network: "alexnet", explicit: nil, cacheDirectory: dir)) { error in
            guard case .unknownNetwork("alexnet", _) = (error as? PretrainedError)?.kind else { return XCTFail("\(error)") }
        }
        let missing = dir.appendingPathComponent("nope.pth")
        XCTAssertThrowsError(try WeightsRegistry.resolveWeights(network: "vgg", explicit: missing)) { error in
            XCTAssertEqual((error as? PretrainedError)?.kind, .fileNotFound)
        }
        let cached = dir.appendingPathComponent("vgg19.safetensors")
        try Data([1]).write(to: cached)
        XCTAssertEqual(try WeightsRegistry.resolveWeights(network: "vgg19", explicit: nil, cacheDirectory: dir).path, cached.path)
        let official = dir.appendingPathComponent("vgg19-dcbb9e9d.pth")
        try Data([1]).write(to: official)
        XCTAssertEqual(try WeightsRegistry.resolveWeights(network: "vgg", explicit: nil, cacheDirectory: dir).path, official.path)
        XCTAssertEqual(try WeightsRegistry.resolveWeights(network: "vgg", explicit: cached).path, cached.path)
    }
}
