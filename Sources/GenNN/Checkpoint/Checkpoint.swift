import Foundation
import GenTensor

/// A training checkpoint: named float32 tensors plus string metadata, stored as a safetensors
/// file (see ``SafetensorsFile``) that Python's `safetensors` and numpy can read.
///
/// A checkpoint restores a run exactly: model weights, optimizer moments (as tensors), the step,
/// the random generator state and the data position. Standard `__metadata__` keys are in
/// ``Key``; every structured value is stored as a JSON string (``setMetadata(_:forKey:)``).
///
/// ```swift
/// var ckpt = Checkpoint(generator: "text")
/// ckpt.tensors["lstm.0.kernel"] = kernel
/// try ckpt.setMetadata(config, forKey: Checkpoint.Key.config)
/// try ckpt.setMetadata(step, forKey: Checkpoint.Key.step)
/// ckpt.setRandomGenerator(rng)
/// try ckpt.save(to: url)                          // atomic: temp file, fsync, rename
/// let back = try Checkpoint.load(from: url, expectingGenerator: "text")
/// let step = try back.metadata(Int.self, forKey: Checkpoint.Key.step)
/// ```
public struct Checkpoint {
    /// Standard metadata keys. Values are strings; structured ones are JSON.
    public enum Key {
        /// Always ``Checkpoint/formatName`` (`"gen-checkpoint"`).
        public static let format = "format"
        /// ``Checkpoint/currentFormatVersion`` (`"1"`).
        public static let formatVersion = "format_version"
        /// The generator that wrote the file: `"text"`, `"vae"`, `"gan"`, ...
        public static let generator = "generator"
        /// The model configuration, JSON of the generator's config struct.
        public static let config = "config"
        /// Optimizer steps taken so far, JSON integer.
        public static let step = "step"
        /// Completed epochs, JSON integer.
        public static let epoch = "epoch"
        /// The optimizer's name and the names of its state tensors, JSON (layout chosen by the optimizer).
        public static let optimizer = "optimizer"
        /// The ``GenTensor/RandomGenerator`` state, JSON (see ``Checkpoint/setRandomGenerator(_:)``).
        public static let rng = "rng"
        /// Where the data stream stands (e.g. offset or batch index within the epoch), JSON.
        public static let dataPosition = "data_position"
        /// The text vocabulary, JSON array of Unicode scalar values (GenData's `Vocabulary`).
        public static let vocabulary = "vocabulary"
    }

    /// The value of ``Key/format`` in every gen checkpoint.
    public static let formatName = "gen-checkpoint"
    /// The format version this build writes and reads.
    public static let currentFormatVersion = "1"

    /// The tensors by name. Saved sorted by name; names must not be empty or `__metadata__`.
    public var tensors: [String: Tensor]
    /// The `__metadata__` map (string values only, as safetensors requires).
    public var metadata: [String: String]
    /// The file this checkpoint was loaded from, for error messages; `nil` for a new one.
    public private(set) var sourceURL: URL?

    /// A new checkpoint with ``Key/format`` and ``Key/formatVersion`` set, and ``Key/generator``
    /// when `generator` is given.
    public init(generator: String? = nil, tensors: [String: Tensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
        self.metadata[Key.format] = Self.formatName
        self.metadata[Key.formatVersion] = Self.currentFormatVersion
        if let g = generator { self.metadata[Key.generator] = g }
    }

    /// The generator name stored under ``Key/generator``, if any.
    public var generator: String? { metadata[Key.generator] }

    private var fileName: String { sourceURL?.path ?? "checkpoint" }

    // MARK: Metadata

    /// Stores `value` as JSON (sorted keys, so equal values give equal bytes) under `key`.
    /// A `String` is stored as a JSON string literal (`"\"abc\""`); use ``metadata`` directly
    /// for plain strings.
    /// - Throws: `EncodingError` when `value` cannot be encoded (e.g. a non-finite Double).
    public mutating func setMetadata<T: Encodable>(_ value: T, forKey key: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        metadata[key] = String(decoding: data, as: UTF8.self)
    }

    /// Decodes the JSON value stored under `key`.
    /// - Throws: ``CheckpointError/Kind/missingMetadata(_:)`` when absent,
    ///   ``CheckpointError/Kind/invalidMetadata(key:reason:)`` when it does not decode as `T`.
    public func metadata<T: Decodable>(_ type: T.Type, forKey key: String) throws -> T {
        guard let value = try metadataIfPresent(type, forKey: key) else {
            throw CheckpointError(file: fileName, kind: .missingMetadata(key))
        }
        return value
    }

    /// Decodes the JSON value stored under `key`, or returns `nil` when the key is absent.
    /// - Throws: ``CheckpointError/Kind/invalidMetadata(key:reason:)`` when present but invalid.
    public func metadataIfPresent<T: Decodable>(_ type: T.Type, forKey key: String) throws -> T? {
        guard let string = metadata[key] else { return nil }
        do {
            return try JSONDecoder().decode(T.self, from: Data(string.utf8))
        } catch {
            throw CheckpointError(file: fileName, kind: .invalidMetadata(key: key, reason: Self.describe(error)))
        }
    }

    /// Stores the generator's full state under ``Key/rng``.
    public mutating func setRandomGenerator(_ rng: RandomGenerator) {
        // RandomGenerator's Codable encoding cannot fail (integers and an optional finite Float).
        try? setMetadata(rng, forKey: Key.rng)
    }

    /// Restores the generator stored under ``Key/rng``, validating its state (four words, not all zero).
    /// - Throws: ``CheckpointError/Kind/missingMetadata(_:)`` or ``CheckpointError/Kind/invalidMetadata(key:reason:)``.
    public func randomGenerator() throws -> RandomGenerator {
        let decoded = try metadata(RandomGenerator.self, forKey: Key.rng)
        do {
            var rng = try RandomGenerator(state: decoded.state)
            if let spare = decoded.spareNormal {
                guard spare.isFinite else {
                    throw TensorError.invalidValue("spare normal sample is not finite")
                }
                rng.spareNormal = spare
            }
            return rng
        } catch {
            throw CheckpointError(file: fileName, kind: .invalidMetadata(key: Key.rng, reason: Self.describe(error)))
        }
    }

    // MARK: Tensors

    /// The tensor `name`, checked against the shape the model expects.
    /// - Throws: ``CheckpointError/Kind/missingTensor(_:)`` or
    ///   ``CheckpointError/Kind/shapeMismatch(tensor:expected:found:)``.
    public func tensor(named name: String, shape: [Int]? = nil) throws -> Tensor {
        guard let t = tensors[name] else {
            throw CheckpointError(file: fileName, kind: .missingTensor(name))
        }
        if let s = shape, s != t.shape {
            throw CheckpointError(file: fileName, kind: .shapeMismatch(tensor: name, expected: s, found: t.shape))
        }
        return t
    }

    /// Copies stored values into existing tensors (model parameters, optimizer slots) in place,
    /// after checking that every name exists with the same shape. Nothing is changed unless all
    /// checks pass.
    /// - Throws: ``CheckpointError/Kind/missingTensor(_:)`` or
    ///   ``CheckpointError/Kind/shapeMismatch(tensor:expected:found:)`` for the first name (sorted) that fails.
    public func restore(into targets: [String: Tensor]) throws {
        let names = targets.keys.sorted()
        var pairs: [(Tensor, Tensor)] = []
        for name in names {
            guard let target = targets[name] else { continue }
            pairs.append((target, try tensor(named: name, shape: target.shape)))
        }
        for (target, source) in pairs { target.assign(source) }
    }

    // MARK: Files

    /// Reads and validates a checkpoint.
    ///
    /// Structural validation is that of ``SafetensorsFile/init(contentsOf:)``. When
    /// `expectingGenerator` is non-nil the file must also be a gen checkpoint
    /// (``Key/format`` = ``formatName``), of a supported ``Key/formatVersion``, written by that
    /// generator; with `nil`, any valid safetensors file loads (e.g. pretrained weights) and
    /// ``Key/format`` is checked only when present.
    ///
    /// - Throws: ``CheckpointError`` naming the file: the kinds of ``SafetensorsFile``, plus
    ///   ``CheckpointError/Kind/notAGenCheckpoint(_:)``, ``CheckpointError/Kind/unsupportedFormatVersion(_:)``
    ///   and ``CheckpointError/Kind/wrongGenerator(expected:found:)``.
    public static func load(from url: URL, expectingGenerator: String? = nil) throws -> Checkpoint {
        let file = try SafetensorsFile(contentsOf: url)
        let path = url.path
        let meta = file.metadata
        if let format = meta[Key.format] {
            guard format == formatName else {
                throw CheckpointError(file: path, kind: .notAGenCheckpoint("its format is '\(format)', not '\(formatName)'"))
            }
            let version = meta[Key.formatVersion] ?? ""
            guard version == currentFormatVersion else {
                throw CheckpointError(file: path, kind: .unsupportedFormatVersion(version))
            }
        } else if expectingGenerator != nil {
            throw CheckpointError(file: path, kind: .notAGenCheckpoint(
                "a safetensors file without gen metadata (\"format\": \"\(formatName)\"), e.g. pretrained weights"))
        }
        if let expected = expectingGenerator {
            let found = meta[Key.generator] ?? ""
            guard found == expected else {
                if found.isEmpty {
                    throw CheckpointError(file: path, kind: .notAGenCheckpoint("no '\(Key.generator)' entry in its metadata"))
                }
                throw CheckpointError(file: path, kind: .wrongGenerator(expected: expected, found: found))
            }
        }
        var ckpt = Checkpoint(tensors: file.tensors(), metadata: meta)
        if meta[Key.format] == nil {
            // A foreign file: do not invent gen metadata it never had.
            ckpt.metadata = meta
        }
        ckpt.sourceURL = url
        return ckpt
    }

    /// Writes the checkpoint atomically (temporary file in the same folder, fsync, rename, fsync
    /// of the folder). ``Key/format`` and ``Key/formatVersion`` are set if missing. On error the
    /// temporary file is removed and an existing checkpoint at `url` is untouched.
    /// - Throws: ``CheckpointError`` with ``CheckpointError/Kind/writeFailed(_:)`` (the reason
    ///   includes the system's `errno` message, e.g. "No space left on device").
    public func save(to url: URL) throws {
        var meta = metadata
        if meta[Key.format] == nil { meta[Key.format] = Self.formatName }
        if meta[Key.formatVersion] == nil { meta[Key.formatVersion] = Self.currentFormatVersion }
        try SafetensorsFile.write(tensors: tensors, metadata: meta, to: url)
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c):
            return c.debugDescription
        case DecodingError.keyNotFound(let k, _):
            return "missing field '\(k.stringValue)'"
        case DecodingError.typeMismatch(let t, let c):
            return "expected \(t) at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.valueNotFound(let t, let c):
            return "missing \(t) at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
        default:
            return String(describing: error)
        }
    }
}
