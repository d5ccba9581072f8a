import Foundation
import XCTest
@testable import GenNN
import GenTensor

/// Safetensors reading/writing, checkpoint metadata, atomic saves, and case28 (bad checkpoints).
final class CheckpointTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("gen-ckpt-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    // MARK: Helpers

    /// `/work/shared/cases` or `$GEN_DATA_CASES`.
    static func casesFolder() throws -> URL {
        if let env = ProcessInfo.processInfo.environment["GEN_DATA_CASES"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                let cases = dir.deletingLastPathComponent().appendingPathComponent("shared/cases")
                if FileManager.default.fileExists(atPath: cases.path) { return cases }
                break
            }
            dir = dir.deletingLastPathComponent()
        }
        throw XCTSkip("bad-input cases not found: set GEN_DATA_CASES or provide ../shared/cases")
    }

    /// A Python interpreter that can import safetensors and numpy, or nil.
    static let python: String? = {
        for candidate in ["/tmp/gen-anchors/bin/python", "python3"] {
            if let r = try? runProcess(candidate, ["-c", "import safetensors, numpy"]), r.status == 0 {
                return candidate
            }
        }
        return nil
    }()

    static func runProcess(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        if executable.hasPrefix("/") {
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = arguments
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [executable] + arguments
        }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func requirePython() throws -> String {
        guard let py = Self.python else {
            throw XCTSkip("python3 with safetensors and numpy not importable (tried /tmp/gen-anchors/bin/python, python3)")
        }
        return py
    }

    func sampleTensors() -> [String: Tensor] {
        var rng = RandomGenerator(seed: 7)
        return [
            "dense.kernel": Tensor.normal([3, 5], using: &rng),
            "dense.bias": Tensor(shape: [5], scalars: [0, -1.5, .greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.0]),
            "scalar": Tensor(3.25),
            "empty": Tensor(zeros: [0, 4]),
            "名前 \"quoted\"\\\n": Tensor(shape: [2, 1, 2], scalars: [1, 2, 3, 4]),
        ]
    }

    /// Builds raw safetensors bytes from a header string and data bytes.
    func rawFile(header: String, data: [UInt8] = [], headerLength: UInt64? = nil) -> Data {
        let h = Array(header.utf8)
        var out = Data()
        var n = (headerLength ?? UInt64(h.count)).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        out.append(contentsOf: data)
        return out
    }

    func expectError(_ data: Data, file: String = "test.safetensors", _ check: (CheckpointError.Kind) -> Bool,
                     line: UInt = #line) {
        do {
            _ = try SafetensorsFile(data: data, path: file)
            XCTFail("expected an error", line: line)
        } catch let e as CheckpointError {
            XCTAssertTrue(check(e.kind), "unexpected kind \(e.kind)", line: line)
            XCTAssertTrue(e.description.hasPrefix(file + ": "), e.description, line: line)
        } catch {
            XCTFail("unexpected error type \(error)", line: line)
        }
    }

    func f32Bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v -> [UInt8] in
            let b = v.bitPattern.littleEndian
            return [UInt8(b & 0xFF), UInt8(b >> 8 & 0xFF), UInt8(b >> 16 & 0xFF), UInt8(b >> 24)]
        }
    }

    // MARK: Round trips

    func testRoundTripPreservesTensorsAndMetadata() throws {
        let url = folder.appendingPathComponent("a.safetensors")
        let tensors = sampleTensors()
        var ckpt = Checkpoint(generator: "text", tensors: tensors)
        try ckpt.setMetadata(42, forKey: Checkpoint.Key.step)
        ckpt.metadata["note"] = "ünïcödé \"quotes\" \\ \n tab\t"
        try ckpt.save(to: url)

        let back = try Checkpoint.load(from: url, expectingGenerator: "text")
        XCTAssertEqual(Set(back.tensors.keys), Set(tensors.keys))
        for (name, t) in tensors {
            let b = try back.tensor(named: name, shape: t.shape)
            XCTAssertEqual(b.shape, t.shape, name)
            XCTAssertEqual(b.scalars.map(\.bitPattern), t.scalars.map(\.bitPattern), name)
            XCTAssertEqual(b.name, name)
        }
        XCTAssertEqual(back.metadata["note"], ckpt.metadata["note"])
        XCTAssertEqual(back.metadata[Checkpoint.Key.format], "gen-checkpoint")
        XCTAssertEqual(back.metadata[Checkpoint.Key.formatVersion], "1")
        XCTAssertEqual(back.generator, "text")
        XCTAssertEqual(try back.metadata(Int.self, forKey: Checkpoint.Key.step), 42)
        XCTAssertEqual(back.sourceURL, url)
    }

    func testWriterLayoutIsDeterministicAndAligned() throws {
        let a = folder.appendingPathComponent("a.safetensors")
        let b = folder.appendingPathComponent("b.safetensors")
        let tensors = sampleTensors()
        try SafetensorsFile.write(tensors: tensors, metadata: ["k": "v", "a": "b"], to: a)
        try SafetensorsFile.write(tensors: tensors, metadata: ["a": "b", "k": "v"], to: b)
        let da = try Data(contentsOf: a), db = try Data(contentsOf: b)
        XCTAssertEqual(da, db)
        let n = da.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        XCTAssertEqual((8 + n) % 8, 0, "data section must start 8-byte aligned")
        let header = String(decoding: da[8..<(8 + Int(n))], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{\"__metadata__\":{\"a\":\"b\",\"k\":\"v\"}"), header)
        let file = try SafetensorsFile(contentsOf: a)
        XCTAssertEqual(file.names, tensors.keys.sorted(), "tensors are stored sorted by name")
        var offset = 0
        for e in file.entries {
            XCTAssertEqual(e.dtype, .f32)
            XCTAssertEqual(e.dataOffsets.lowerBound, offset)
            offset = e.dataOffsets.upperBound
        }
    }

    func testEmptyCheckpointRoundTrips() throws {
        let url = folder.appendingPathComponent("empty.safetensors")
        try Checkpoint(generator: "gan").save(to: url)
        let back = try Checkpoint.load(from: url, expectingGenerator: "gan")
        XCTAssertTrue(back.tensors.isEmpty)
        try SafetensorsFile.write(tensors: [:], to: url)
        XCTAssertTrue(try SafetensorsFile(contentsOf: url).entries.isEmpty)
    }

    func testMetadataCodableHelpers() throws {
        struct Config: Codable, Equatable { var hidden: Int; var layers: Int; var dropout: Double; var name: String }
        var ckpt = Checkpoint(generator: "text")
        let config = Config(hidden: 128, layers: 2, dropout: 0.25, name: "lstm/v1")
        try ckpt.setMetadata(config, forKey: Checkpoint.Key.config)
        try ckpt.setMetadata(3, forKey: Checkpoint.Key.epoch)
        try ckpt.setMetadata(["a", "b"], forKey: Checkpoint.Key.optimizer)
        XCTAssertEqual(ckpt.metadata[Checkpoint.Key.config], #"{"dropout":0.25,"hidden":128,"layers":2,"name":"lstm/v1"}"#)
        let url = folder.appendingPathComponent("m.safetensors")
        try ckpt.save(to: url)
        let back = try Checkpoint.load(from: url, expectingGenerator: "text")
        XCTAssertEqual(try back.metadata(Config.self, forKey: Checkpoint.Key.config), config)
        XCTAssertEqual(try back.metadata(Int.self, forKey: Checkpoint.Key.epoch), 3)
        XCTAssertEqual(try back.metadata([String].self, forKey: Checkpoint.Key.optimizer), ["a", "b"])
        XCTAssertNil(try back.metadataIfPresent(Int.self, forKey: Checkpoint.Key.dataPosition))

        XCTAssertThrowsError(try back.metadata(Int.self, forKey: Checkpoint.Key.dataPosition)) { e in
            XCTAssertEqual((e as? CheckpointError)?.kind, .missingMetadata("data_position"))
            XCTAssertTrue("\(e)".contains(url.path), "\(e)")
        }
        XCTAssertThrowsError(try back.metadata(Config.self, forKey: Checkpoint.Key.epoch)) { e in
            guard case .invalidMetadata(let key, _)? = (e as? CheckpointError)?.kind else {
                return XCTFail("\(e)")
            }
            XCTAssertEqual(key, "epoch")
        }
    }

    func testRandomGeneratorStateRestoresTheStream() throws {
        var rng = RandomGenerator(seed: 99)
        for _ in 0..<5 { _ = rng.next() }
        _ = rng.nextNormal()  // leaves a spare normal in the state
        var ckpt = Checkpoint(generator: "vae")
        ckpt.setRandomGenerator(rng)
        let url = folder.appendingPathComponent("rng.safetensors")
        try ckpt.save(to: url)
        var restored = try Checkpoint.load(from: url, expectingGenerator: "vae").randomGenerator()
        XCTAssertEqual(restored, rng)
        for _ in 0..<10 { XCTAssertEqual(restored.nextNormal(), rng.nextNormal()) }

        var bad = Checkpoint(generator: "vae")
        bad.metadata[Checkpoint.Key.rng] = #"{"state":[1,2,3]}"#
        XCTAssertThrowsError(try bad.randomGenerator()) { e in
            guard case .invalidMetadata(key: "rng", _)? = (e as? CheckpointError)?.kind else { return XCTFail("\(e)") }
        }
        bad.metadata[Checkpoint.Key.rng] = #"{"state":[0,0,0,0]}"#
        XCTAssertThrowsError(try bad.randomGenerator())
    }

    func testRestoreIntoChecksNamesAndShapesFirst() throws {
        let ckpt = Checkpoint(generator: "text", tensors: ["w": Tensor(shape: [2], scalars: [5, 6]),
                                                           "b": Tensor(shape: [1], scalars: [7])])
        let w = Tensor(zeros: [2]), b = Tensor(zeros: [1])
        try ckpt.restore(into: ["w": w, "b": b])
        XCTAssertEqual(w.scalars, [5, 6])
        XCTAssertEqual(b.scalars, [7])

        let w2 = Tensor(zeros: [2]), b2 = Tensor(zeros: [3])
        XCTAssertThrowsError(try ckpt.restore(into: ["w": w2, "b": b2])) { e in
            XCTAssertEqual((e as? CheckpointError)?.kind, .shapeMismatch(tensor: "b", expected: [3], found: [1]))
        }
        XCTAssertEqual(w2.scalars, [0, 0], "nothing is changed when a check fails")
        XCTAssertThrowsError(try ckpt.restore(into: ["missing": Tensor(zeros: [1])])) { e in
            XCTAssertEqual((e as? CheckpointError)?.kind, .missingTensor("missing"))
        }
    }

    // MARK: Gen-format validation

    func testGeneratorAndFormatAreValidated() throws {
        let url = folder.appendingPathComponent("g.safetensors")
        try Checkpoint(generator: "text", tensors: ["x": Tensor(1)]).save(to: url)
        XCTAssertThrowsError(try Checkpoint.load(from: url, expectingGenerator: "vae")) { e in
            XCTAssertEqual((e as? CheckpointError)?.kind, .wrongGenerator(expected: "vae", found: "text"))
            XCTAssertTrue("\(e)".contains("'text'") && "\(e)".contains(url.path), "\(e)")
        }
        XCTAssertNoThrow(try Checkpoint.load(from: url))

        // Foreign safetensors (e.g. pretrained weights): no gen metadata.
        let foreign = folder.appendingPathComponent("weights.safetensors")
        try SafetensorsFile.write(tensors: ["conv.weight": Tensor(zeros: [2, 2])], to: foreign)
        XCTAssertThrowsError(try Checkpoint.load(from: foreign, expectingGenerator: "text")) { e in
            guard case .notAGenCheckpoint? = (e as? CheckpointError)?.kind else { return XCTFail("\(e)") }
            XCTAssertTrue("\(e)".contains("not a gen checkpoint"), "\(e)")
        }
        let loaded = try Checkpoint.load(from: foreign)
        XCTAssertEqual(loaded.tensors["conv.weight"]?.shape, [2, 2])
        XCTAssertTrue(loaded.metadata.isEmpty, "a foreign file gets no invented metadata")

        // A gen checkpoint without a generator entry, a foreign format, a future version.
        try SafetensorsFile.write(tensors: [:], metadata: ["format": "gen-checkpoint", "format_version": "1"], to: foreign)
        XCTAssertThrowsError(try Checkpoint.load(from: foreign, expectingGenerator: "text")) { e in
            guard case .notAGenCheckpoint? = (e as? CheckpointError)?.kind else { return XCTFail("\(e)") }
        }
        try SafetensorsFile.write(tensors: [:], metadata: ["format": "pt"], to: foreign)
        XCTAssertThrowsError(try Checkpoint.load(from: foreign)) { e in
            guard case .notAGenCheckpoint? = (e as? CheckpointError)?.kind else { return XCTFail("\(e)") }
        }
        try SafetensorsFile.write(tensors: [:], metadata: ["format": "gen-checkpoint", "format_version": "2", "generator": "text"], to: foreign)
        XCTAssertThrowsError(try Checkpoint.load(from: foreign, expectingGenerator: "text")) { e in
            XCTAssertEqual((e as? CheckpointError)?.kind, .unsupportedFormatVersion("2"))
        }
    }

    // MARK: Structural errors

    func testFileSystemErrors() throws {
        let missing = folder.appendingPathComponent("nope.safetensors")
        XCTAssertThrowsError(try Checkpoint.load(from: missing, expectingGenerator: "text")) { e in
            XCTAssertEqual((e as? CheckpointError)?.kind, .fileNotFound)
            XCTAssertTrue("\(e)".contains(missing.path))
        }
        XCTAssertThrowsError(try Checkpoint.load(from: folder)) { e in
            XCTAssertEqual((e as? CheckpointError)?.kind, .notARegularFile)
        }
        // A symlink to a valid file is followed.
        let target = folder.appendingPathComponent("t.safetensors")
        try Checkpoint(generator: "text").save(to: target)
        let link = folder.appendingPathComponent("link.safetensors")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        XCTAssertNoThrow(try Checkpoint.load(from: link, expectingGenerator: "text"))
    }

    func testHeaderLengthErrors() {
        expectError(Data()) { $0 == .empty }
        expectError(Data([1, 0, 0])) { if case .truncated = $0 { return true }; return false }
        expectError(rawFile(header: "{}", headerLength: 100_000_001)) { $0 == .headerTooLarge(100_000_001) }
        expectError(rawFile(header: "{}", headerLength: .max)) { $0 == .headerTooLarge(.max) }
        expectError(rawFile(header: "{}", headerLength: 3)) { if case .truncated = $0 { return true }; return false }
        expectError(rawFile(header: "{}", headerLength: 0)) { if case .invalidHeader = $0 { return true }; return false }
        XCTAssertNoThrow(try SafetensorsFile(data: rawFile(header: "{}"), path: "x"))
        XCTAssertNoThrow(try SafetensorsFile(data: rawFile(header: "{}      "), path: "x"), "trailing spaces pad the header")
    }

    func testInvalidHeaderJSON() {
        let invalid: [String] = [
            "{", "{\"a\":}", "[]", " {}", "{} x", "{\"a\":1,}", "{'a':1}", "\"str\"", "{\"a\":01}",
            "{\"a\":\"\u{01}\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}", "{\"a\" \"b\"}", "{}\u{0}",
            String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000),
            "{\"a\":" + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}",
        ]
        for h in invalid {
            expectError(rawFile(header: h)) { kind in
                switch kind {
                case .invalidHeader, .invalidTensor: return true
                default: return false
                }
            }
        }
        // Invalid UTF-8 inside a JSON string.
        var bad = Data()
        var n = UInt64(7).littleEndian
        withUnsafeBytes(of: &n) { bad.append(contentsOf: $0) }
        bad.append(contentsOf: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D])  // {"\xFF":1}
        expectError(bad) { if case .invalidHeader = $0 { return true }; return false }
    }

    func testTensorEntryErrors() {
        let d8 = [UInt8](repeating: 0, count: 8)
        func entry(_ body: String) -> String { "{\"t\":{\(body)}}" }
        expectError(rawFile(header: entry(#""dtype":"F33","shape":[2],"data_offsets":[0,8]"#), data: d8)) {
            $0 == .unknownDType(tensor: "t", dtype: "F33")
        }
        let bad: [String] = [
            #""dtype":"F32","shape":[3],"data_offsets":[0,8]"#,        // size mismatch
            #""dtype":"F32","shape":[2],"data_offsets":[8,0]"#,        // reversed
            #""dtype":"F32","shape":[-2],"data_offsets":[0,8]"#,       // negative dim
            #""dtype":"F32","shape":[2.5],"data_offsets":[0,8]"#,      // fractional dim
            #""dtype":"F32","shape":"2","data_offsets":[0,8]"#,        // shape not array
            #""dtype":"F32","shape":[2],"data_offsets":[0]"#,          // one offset
            #""dtype":"F32","shape":[2],"data_offsets":[-8,0]"#,       // negative offset
            #""dtype":"F32","shape":[2]"#,                             // missing offsets
            #""dtype":7,"shape":[2],"data_offsets":[0,8]"#,            // dtype not a string
            #""dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]"#, // repeated field
            #""dtype":"F32","shape":[9223372036854775807,9223372036854775807],"data_offsets":[0,8]"#, // overflow
            #""dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]"#, // bytes overflow
            #""dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999999]"#, // huge offset
        ]
        for body in bad {
            expectError(rawFile(header: entry(body), data: d8)) { kind in
                if case .invalidTensor(tensor: "t", _) = kind { return true }
                return false
            }
        }
        expectError(rawFile(header: "{\"t\":[1]}", data: d8)) { if case .invalidTensor = $0 { return true }; return false }
        // Unknown extra fields are ignored, as in the reference implementation.
        XCTAssertNoThrow(try SafetensorsFile(data: rawFile(header: entry(#""dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1"#), data: d8), path: "x"))
    }

    func testLayoutErrors() {
        let t1 = #""a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#
        let t2gap = #""b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}"#
        let t2overlap = #""b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
        let t2ok = #""b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}"#
        func isLayout(_ k: CheckpointError.Kind) -> Bool { if case .invalidLayout = k { return true }; return false }
        func isTruncated(_ k: CheckpointError.Kind) -> Bool { if case .truncated = k { return true }; return false }
        expectError(rawFile(header: "{\(t1),\(t2gap)}", data: .init(repeating: 0, count: 12)), isLayout)
        expectError(rawFile(header: "{\(t1),\(t2overlap)}", data: .init(repeating: 0, count: 8)), isLayout)
        expectError(rawFile(header: "{\(t1),\(t2ok)}", data: .init(repeating: 0, count: 9)), isLayout) // trailing byte
        expectError(rawFile(header: "{\(t1),\(t2ok)}", data: .init(repeating: 0, count: 7)), isTruncated)
        expectError(rawFile(header: "{}", data: [0]), isLayout)
        expectError(rawFile(header: "{\(t1),\(t1)}", data: .init(repeating: 0, count: 4))) { $0 == .duplicateName("a") }
        expectError(rawFile(header: #"{"__metadata__":{},"__metadata__":{}}"#)) { $0 == .duplicateName("__metadata__") }
        expectError(rawFile(header: #"{"__metadata__":{"k":1}}"#)) { if case .invalidHeader = $0 { return true }; return false }
        expectError(rawFile(header: #"{"__metadata__":[]}"#)) { if case .invalidHeader = $0 { return true }; return false }
        expectError(rawFile(header: #"{"__metadata__":{"k":"a","k":"b"}}"#)) { if case .invalidHeader = $0 { return true }; return false }
        XCTAssertNoThrow(try SafetensorsFile(data: rawFile(header: "{\(t2ok),\(t1)}", data: f32Bytes([1, 2])), path: "x"))
        // Zero-sized tensors may share an offset.
        let z = #""z":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]}"#
        XCTAssertNoThrow(try SafetensorsFile(data: rawFile(header: "{\(t1),\(z),\(t2ok)}", data: f32Bytes([1, 2])), path: "x"))
    }

    func testDTypeConversions() throws {
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        let f16: [UInt16] = [0x3C00, 0xC000, 0x0001, 0x7BFF, 0x7C00, 0x0000]     // 1, -2, 2^-24, 65504, inf, 0
        let bf16: [UInt16] = [0x3F80, 0xC0A0]                                    // 1, -5
        let f64: [Double] = [0.1, -3]
        let i64: [Int64] = [-7, 1 << 40]
        let i32: [Int32] = [-1, 123456]
        let u8: [UInt8] = [0, 255]
        let boolean: [UInt8] = [0, 1]
        let i8: [UInt8] = [0xFF, 0x7F]
        let i16: [Int16] = [-300, 300]
        let e4m3: [UInt8] = [0x38, 0xC0, 0x7F]  // 1, -2, NaN
        let e5m2: [UInt8] = [0x3C, 0xC0]        // 1, -2
        var data: [UInt8] = []
        var fields: [String] = []
        func add(_ name: String, _ dtype: String, _ count: Int, _ bytes: [UInt8]) {
            fields.append("\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(count)],\"data_offsets\":[\(data.count),\(data.count + bytes.count)]}")
            data += bytes
        }
        add("f16", "F16", f16.count, f16.flatMap(le))
        add("bf16", "BF16", bf16.count, bf16.flatMap(le))
        add("f64", "F64", f64.count, f64.flatMap { le($0.bitPattern) })
        add("i64", "I64", i64.count, i64.flatMap(le))
        add("i32", "I32", i32.count, i32.flatMap(le))
        add("u8", "U8", u8.count, u8)
        add("bool", "BOOL", boolean.count, boolean)
        add("i8", "I8", i8.count, i8)
        add("i16", "I16", i16.count, i16.flatMap(le))
        add("e4m3", "F8_E4M3", e4m3.count, e4m3)
        add("e5m2", "F8_E5M2", e5m2.count, e5m2)
        let file = try SafetensorsFile(data: rawFile(header: "{" + fields.joined(separator: ",") + "}", data: data), path: "x")
        let t = file.tensors()
        XCTAssertEqual(t["f16"]?.scalars, [1, -2, Float(bitPattern: 0x3380_0000), 65504, .infinity, 0])
        XCTAssertEqual(t["bf16"]?.scalars, [1, -5])
        XCTAssertEqual(t["f64"]?.scalars, [Float(0.1), -3])
        XCTAssertEqual(t["i64"]?.scalars, [-7, Float(1 << 40)])
        XCTAssertEqual(t["i32"]?.scalars, [-1, 123456])
        XCTAssertEqual(t["u8"]?.scalars, [0, 255])
        XCTAssertEqual(t["bool"]?.scalars, [0, 1])
        XCTAssertEqual(t["i8"]?.scalars, [-1, 127])
        XCTAssertEqual(t["i16"]?.scalars, [-300, 300])
        XCTAssertEqual(t["e4m3"]?.scalars.prefix(2), [1, -2])
        XCTAssertTrue(t["e4m3"]?.scalars[2].isNaN ?? false)
        XCTAssertEqual(t["e5m2"]?.scalars, [1, -2])
        XCTAssertThrowsError(try file.tensor(named: "nope")) { e in
            XCTAssertEqual((e as? CheckpointError)?.kind, .missingTensor("nope"))
        }
        // Every half value converts like the standard library's Float16 where it exists.
        #if !(os(macOS) && arch(x86_64))
        if #available(macOS 11.0, *) {
            for bits in 0...UInt16.max {
                let expected = Float(Float16(bitPattern: bits))
                let got = SafetensorsFile.halfToFloat(bits)
                XCTAssertTrue(expected.bitPattern == got.bitPattern || (expected.isNaN && got.isNaN), "half 0x\(String(bits, radix: 16))")
            }
        }
        #endif
    }

    // MARK: case28

    func testCase28BadCheckpointsGiveCleanErrorsAndStayUnchanged() throws {
        let cases = try Self.casesFolder().appendingPathComponent("inputs/case28_bad_checkpoints")
        for (name, expectEmpty) in [("ckpt_empty.bin", true), ("ckpt_random.bin", false)] {
            let url = cases.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("\(url.path) missing") }
            let before = try Data(contentsOf: url)
            XCTAssertThrowsError(try Checkpoint.load(from: url, expectingGenerator: "text")) { e in
                guard let ce = e as? CheckpointError else { return XCTFail("not a CheckpointError: \(e)") }
                XCTAssertEqual(ce.file, url.path)
                let message = ce.description
                XCTAssertTrue(message.hasPrefix(url.path + ": "), message)
                if expectEmpty {
                    XCTAssertEqual(ce.kind, .empty)
                    XCTAssertTrue(message.contains("empty"), message)
                } else {
                    XCTAssertTrue(message.contains("not a valid checkpoint"), message)
                }
            }
            XCTAssertEqual(try Data(contentsOf: url), before, "\(name) must be left unchanged")
        }
    }

    func testRealCheckpointCutInHalfGivesCleanError() throws {
        let url = folder.appendingPathComponent("full.safetensors")
        var rng = RandomGenerator(seed: 1)
        var ckpt = Checkpoint(generator: "text", tensors: ["w": Tensor.normal([64, 64], using: &rng),
                                                           "b": Tensor.normal([64], using: &rng)])
        try ckpt.setMetadata(10, forKey: Checkpoint.Key.step)
        try ckpt.save(to: url)
        let full = try Data(contentsOf: url)
        let half = folder.appendingPathComponent("half.safetensors")
        try full.prefix(full.count / 2).write(to: half)
        XCTAssertThrowsError(try Checkpoint.load(from: half, expectingGenerator: "text")) { e in
            guard let ce = e as? CheckpointError, case .truncated = ce.kind else { return XCTFail("\(e)") }
            XCTAssertTrue(ce.description.contains("not a valid checkpoint") && ce.description.contains(half.path), ce.description)
        }
        XCTAssertEqual(try Data(contentsOf: half), full.prefix(full.count / 2))
    }

    /// Every truncation and many random corruptions of a real checkpoint either load or throw a
    /// CheckpointError: never a crash, never another error type.
    func testTruncationsAndCorruptionsNeverCrash() throws {
        var ckpt = Checkpoint(generator: "text", tensors: ["a": Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]),
                                                           "b": Tensor(shape: [1], scalars: [9])])
        try ckpt.setMetadata([1, 2, 3], forKey: "list")
        let url = folder.appendingPathComponent("c.safetensors")
        try ckpt.save(to: url)
        let full = try Data(contentsOf: url)
        for n in 0..<full.count {
            XCTAssertThrowsError(try SafetensorsFile(data: full.prefix(n), path: "p")) { e in
                XCTAssertTrue(e is CheckpointError, "\(e)")
            }
        }
        var rng = RandomGenerator(seed: 5)
        var loaded = 0
        for _ in 0..<3000 {
            var d = [UInt8](full)
            for _ in 0..<(1 + rng.nextInt(below: 3)) {
                d[rng.nextInt(below: d.count)] = UInt8(truncatingIfNeeded: rng.next())
            }
            do {
                _ = try SafetensorsFile(data: Data(d), path: "p").tensors()
                loaded += 1
            } catch {
                XCTAssertTrue(error is CheckpointError, "\(error)")
            }
        }
        XCTAssertGreaterThan(loaded, 0, "corrupting tensor data alone still gives a valid file")
    }

    // MARK: Atomic writes

    func testAtomicWriteReplacesAndLeavesNoTemporaryFiles() throws {
        let url = folder.appendingPathComponent("out.txt")
        try writeFileAtomically(Data("one".utf8), to: url)
        try writeFileAtomically(Data("two".utf8), to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "two")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["out.txt"])
    }

    /// A write-protected destination is refused (for root too, who could otherwise replace it),
    /// and left as it was.
    func testWriteProtectedDestinationIsRefused() throws {
        let url = folder.appendingPathComponent("keep.png")
        try Data("original".utf8).write(to: url)
        chmod(url.path, 0o444)
        defer { chmod(url.path, 0o644) }
        XCTAssertThrowsError(try writeFileAtomically(Data("new".utf8), to: url)) { e in
            guard let fe = e as? FileWriteError else { return XCTFail("\(e)") }
            XCTAssertEqual(fe.code, EACCES)
            XCTAssertTrue(fe.description.contains(url.path) && fe.description.contains("write-protected"), fe.description)
        }
        XCTAssertEqual(try Data(contentsOf: url), Data("original".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["keep.png"])
    }

    /// The temporary file of a write in progress is known to the abort path (a second Ctrl-C),
    /// which removes it; after the write nothing is pending.
    func testPendingTemporaryFileIsRemovedOnAbort() throws {
        let url = folder.appendingPathComponent("big.bin")
        XCTAssertThrowsError(try writeFileAtomically(to: url) { w in
            try w.write(Data([1, 2, 3]))
            let temporaries = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix(".big.bin.tmp-") }
            XCTAssertEqual(temporaries.count, 1)
            PendingTemporaryFile.removeOnAbort()     // what the signal handler does before _exit
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix(".big.bin.tmp-") }, [])
        })  // (the process would have exited; here the rename of the removed file fails)
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
        // Afterwards nothing is pending: an abort now removes nothing.
        let other = folder.appendingPathComponent(".big.bin.tmp-0-0")
        try Data([9]).write(to: other)
        PendingTemporaryFile.removeOnAbort()
        XCTAssertTrue(FileManager.default.fileExists(atPath: other.path))
    }

    func testFailedWritesLeaveTheOldFileUntouched() throws {
        struct Boom: Error {}
        let url = folder.appendingPathComponent("keep.safetensors")
        try Checkpoint(generator: "text", tensors: ["x": Tensor(2)]).save(to: url)
        let before = try Data(contentsOf: url)

        XCTAssertThrowsError(try writeFileAtomically(to: url) { w in
            try w.write(Data("partial".utf8))
            throw Boom()
        }) { e in XCTAssertTrue(e is Boom) }
        XCTAssertEqual(try Data(contentsOf: url), before)

        var bad = Checkpoint(generator: "text", tensors: ["x": Tensor(3)])
        bad.tensors["__metadata__"] = Tensor(1)
        XCTAssertThrowsError(try bad.save(to: url)) { e in
            guard case .writeFailed? = (e as? CheckpointError)?.kind else { return XCTFail("\(e)") }
        }
        XCTAssertEqual(try Data(contentsOf: url), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["keep.safetensors"])

        // Missing folder, destination is a directory: errors name the path and the reason.
        let nowhere = folder.appendingPathComponent("no/such/dir/x.bin")
        XCTAssertThrowsError(try writeFileAtomically(Data([1]), to: nowhere)) { e in
            guard let fe = e as? FileWriteError else { return XCTFail("\(e)") }
            XCTAssertEqual(fe.code, ENOENT)
            XCTAssertTrue(fe.description.contains(nowhere.path) && fe.description.contains("No such file"), fe.description)
        }
        XCTAssertThrowsError(try Checkpoint().save(to: folder)) { e in
            guard case .writeFailed? = (e as? CheckpointError)?.kind else { return XCTFail("\(e)") }
        }
        if getuid() != 0 {
            let readOnly = folder.appendingPathComponent("ro")
            try FileManager.default.createDirectory(at: readOnly, withIntermediateDirectories: false)
            chmod(readOnly.path, 0o555)
            defer { chmod(readOnly.path, 0o755) }
            XCTAssertThrowsError(try writeFileAtomically(Data([1]), to: readOnly.appendingPathComponent("x"))) { e in
                XCTAssertEqual((e as? FileWriteError)?.code, EACCES)
            }
        }
    }

    // MARK: Python interoperability

    func testPythonReadsOurCheckpoint() throws {
        let py = try requirePython()
        let url = folder.appendingPathComponent("for-python.safetensors")
        var rng = RandomGenerator(seed: 3)
        let tensors: [String: Tensor] = [
            "layer.0.weight": Tensor.normal([4, 3, 2], using: &rng),
            "layer.0.bias": Tensor(shape: [2], scalars: [0.5, -0.25]),
            "scalar": Tensor(1.5),
            "ünï": Tensor(shape: [1], scalars: [7]),
        ]
        var ckpt = Checkpoint(generator: "text", tensors: tensors)
        try ckpt.setMetadata(["x": 1], forKey: Checkpoint.Key.config)
        try ckpt.save(to: url)
        var expected: [String: Any] = [:]
        for (k, t) in tensors { expected[k] = ["shape": t.shape, "values": t.scalars.map(Double.init)] }
        let expectedJSON = String(decoding: try JSONSerialization.data(withJSONObject: expected), as: UTF8.self)
        let script = """
        import json, sys, numpy as np
        from safetensors.numpy import load_file
        from safetensors import safe_open
        path, expected = sys.argv[1], json.loads(sys.argv[2])
        got = load_file(path)
        assert set(got) == set(expected), (sorted(got), sorted(expected))
        for k, e in expected.items():
            a = got[k]
            assert a.dtype == np.float32, a.dtype
            assert list(a.shape) == e["shape"], (k, a.shape, e["shape"])
            assert np.array_equal(a.reshape(-1), np.array(e["values"], dtype=np.float32)), k
        with safe_open(path, framework="numpy") as f:
            m = f.metadata()
        assert m["format"] == "gen-checkpoint" and m["generator"] == "text", m
        assert json.loads(m["config"]) == {"x": 1}, m
        print("ok")
        """
        let r = try Self.runProcess(py, ["-c", script, url.path, expectedJSON])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("ok"), r.output)
    }

    func testWeReadAPythonWrittenFile() throws {
        let py = try requirePython()
        let url = folder.appendingPathComponent("from-python.safetensors")
        let script = """
        import sys, numpy as np
        from safetensors.numpy import save_file
        save_file({
            "f32": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
            "f16": np.array([1.5, -2.25, 65504], dtype=np.float16),
            "f64": np.array([[0.1, 0.2]], dtype=np.float64),
            "i64": np.array([-3, 1 << 33], dtype=np.int64),
            "i32": np.array([5], dtype=np.int32),
            "u8": np.array([0, 200], dtype=np.uint8),
            "b": np.array([True, False]),
            "s": np.array(2.5, dtype=np.float32),
        }, sys.argv[1], metadata={"format": "pt", "note": "from python"})
        """
        let r = try Self.runProcess(py, ["-c", script, url.path])
        XCTAssertEqual(r.status, 0, r.output)
        let file = try SafetensorsFile(contentsOf: url)
        XCTAssertEqual(file.metadata["note"], "from python")
        XCTAssertEqual(file.entry(named: "f16")?.dtype, .f16)
        let t = file.tensors()
        XCTAssertEqual(t["f32"]?.shape, [3, 4])
        XCTAssertEqual(t["f32"]?.scalars, (0..<12).map { Float($0) / 7 })
        XCTAssertEqual(t["f16"]?.scalars, [1.5, -2.25, 65504])
        XCTAssertEqual(t["f64"]?.shape, [1, 2])
        XCTAssertEqual(t["f64"]?.scalars, [Float(0.1), Float(0.2)])
        XCTAssertEqual(t["i64"]?.scalars, [-3, Float(1 << 33)])
        XCTAssertEqual(t["i32"]?.scalars, [5])
        XCTAssertEqual(t["u8"]?.scalars, [0, 200])
        XCTAssertEqual(t["b"]?.scalars, [1, 0])
        XCTAssertEqual(t["s"]?.shape, [])
        XCTAssertEqual(t["s"]?.scalars, [2.5])
        XCTAssertThrowsError(try Checkpoint.load(from: url, expectingGenerator: "text")) { e in
            guard case .notAGenCheckpoint? = (e as? CheckpointError)?.kind else { return XCTFail("\(e)") }
        }
    }
}
