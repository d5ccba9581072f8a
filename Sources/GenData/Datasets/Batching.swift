import Foundation
import GenTensor

/// Where a run stands in its data, saved in checkpoints for exact resume: the epoch, the
/// number of samples of that epoch already delivered, and the seed that (with the epoch)
/// determines each epoch's permutation.
public struct DataPosition: Codable, Equatable, Sendable {
    /// Zero-based epoch.
    public var epoch: Int
    /// Samples of `epoch` already delivered (a multiple of the batch size, or the epoch length).
    public var indexInEpoch: Int
    /// Permutation seed.
    public var seed: UInt64

    /// Creates a position (defaults: start of epoch 0).
    public init(epoch: Int = 0, indexInEpoch: Int = 0, seed: UInt64) {
        self.epoch = epoch
        self.indexInEpoch = indexInEpoch
        self.seed = seed
    }
}

/// Seeded shuffling and batching over `count` samples.
///
/// Epoch `e` visits the samples in the permutation produced by a Fisher–Yates shuffle driven by
/// `RandomGenerator(seed: mix(seed, e))`, so the order depends only on (seed, epoch): saving
/// ``position`` and restoring it with ``init(count:batchSize:seed:shuffle:dropLast:position:)``
/// continues with exactly the batches an uninterrupted run would have seen.
/// Batches never straddle epochs: the last batch of an epoch is shorter, or dropped with
/// `dropLast`.
public struct BatchSampler: Sendable {
    /// Number of samples.
    public let count: Int
    /// Samples per batch.
    public let batchSize: Int
    /// Whether epochs are shuffled (otherwise 0..<count in order).
    public let shuffle: Bool
    /// Whether a final short batch is skipped.
    public let dropLast: Bool
    /// The next batch's position.
    public private(set) var position: DataPosition
    private var permutationEpoch: Int = -1
    private var permutationCache: [Int] = []

    /// Creates a sampler, optionally resuming at `position` (its seed replaces `seed`).
    /// - Throws: ``DatasetError/invalidArgument(_:)`` when `count` or `batchSize` is not
    ///   positive, `dropLast` leaves no batch, or `position` is out of range.
    public init(count: Int, batchSize: Int, seed: UInt64, shuffle: Bool = true, dropLast: Bool = false,
                position: DataPosition? = nil) throws {
        guard count > 0 else { throw DatasetError.invalidArgument("dataset is empty") }
        guard batchSize > 0 else { throw DatasetError.invalidArgument("batch size must be positive, got \(batchSize)") }
        if dropLast && batchSize > count {
            throw DatasetError.invalidArgument("batch size \(batchSize) is larger than the dataset (\(count) samples)")
        }
        let pos = position ?? DataPosition(seed: seed)
        guard pos.epoch >= 0, pos.indexInEpoch >= 0, pos.indexInEpoch <= count else {
            throw DatasetError.invalidArgument("data position \(pos) does not fit a dataset of \(count) samples")
        }
        self.count = count
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.position = pos
    }

    /// Full batches per epoch, plus a short one unless `dropLast`.
    public var batchesPerEpoch: Int { dropLast ? count / batchSize : (count + batchSize - 1) / batchSize }

    /// The visiting order of `epoch`.
    public func permutation(epoch: Int) -> [Int] {
        var p = Array(0..<count)
        guard shuffle else { return p }
        var rng = RandomGenerator(seed: BatchSampler.mix(position.seed, UInt64(truncatingIfNeeded: epoch)))
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                p.swapAt(i, rng.nextInt(below: i + 1))
            }
        }
        return p
    }

    static func mix(_ seed: UInt64, _ epoch: UInt64) -> UInt64 {
        var z = seed &+ (epoch &+ 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The sample indices of the next batch; advances ``position`` (into the next epoch when
    /// this one is exhausted).
    public mutating func next() -> [Int] {
        if position.indexInEpoch >= count || (dropLast && position.indexInEpoch + batchSize > count) {
            position.epoch += 1
            position.indexInEpoch = 0
        }
        if permutationEpoch != position.epoch {
            permutationCache = permutation(epoch: position.epoch)
            permutationEpoch = position.epoch
        }
        let start = position.indexInEpoch
        let end = min(start + batchSize, count)
        position.indexInEpoch = end
        return Array(permutationCache[start..<end])
    }

    /// Whether the current epoch has delivered all its batches.
    public var epochFinished: Bool {
        position.indexInEpoch >= count || (dropLast && position.indexInEpoch + batchSize > count)
    }
}
