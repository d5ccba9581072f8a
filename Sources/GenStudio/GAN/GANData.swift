import Foundation
import GenTensor
import GenData

/// The training images of a GAN, all `size × size × channels`, served as NHWC batches in [-1, 1]
/// (the range of the generator's tanh).
///
/// Sources (``load(_:size:channels:skipInvalid:warn:)``):
/// - a folder of PNG/JPEG files, read recursively (``GenData/ImageFolderDataset``: mixed sizes,
///   gray/RGB/RGBA/palette/16-bit/CMYK all converted; bad files reported together before training);
/// - an IDX file (MNIST layout, plain or gzip-compressed): uint8 `[N, H, W]` or `[N, H, W, C]`
///   with C = 1 or 3, or a folder holding `train-images-idx3-ubyte[.gz]` and its labels file;
/// - the name `mnist` or `fashion-mnist` (training split, see ``GenData/MNISTDataset``) when no
///   file of that name exists.
/// Every image is scaled to cover `size × size` (aspect kept) and centre-cropped, then converted
/// to `channels` (gray copied to RGB, RGB to luma).
public final class GANImageData {
    /// What was loaded (path and kind), for messages and `run.json`.
    public let summary: String
    /// Number of images.
    public let count: Int
    /// Side length.
    public let size: Int
    /// 1 or 3.
    public let channels: Int
    /// The 64-bit FNV-1a hash (``GenData/FNV1a64``) of the images: the bytes of an IDX source, or
    /// the converted images of a folder (``GenData/ImageFolderDataset/fingerprint``).
    public let sourceHash: UInt64
    private let folder: ImageFolderDataset?
    private let memory: [Float]

    /// What a checkpoint records of these images, so that a resume on other images is refused.
    public var fingerprint: DataFingerprint {
        DataFingerprint(images: count, size: size, channels: channels, hash: sourceHash)
    }

    private init(summary: String, count: Int, size: Int, channels: Int, sourceHash: UInt64, folder: ImageFolderDataset?,
                 memory: [Float]) {
        self.summary = summary
        self.count = count
        self.size = size
        self.channels = channels
        self.sourceHash = sourceHash
        self.folder = folder
        self.memory = memory
    }

    /// Loads and checks every image before training starts.
    /// - Parameters:
    ///   - path: a folder (of images, or of MNIST-layout IDX files: its training split), an IDX
    ///     file, or `mnist` / `fashion-mnist`.
    ///   - maxPixels: for folders, the largest accepted width×height of a file's header.
    ///   - warn: receives one line per skipped file (with `skipInvalid`).
    /// - Throws: ``GenData/DatasetError`` (folder without images, invalid files listed together,
    ///   IDX with a wrong magic number or truncated, IDX that is not uint8 images, unknown path),
    ///   ``StudioError/invalidOption(_:)`` for a bad size or channel count.
    public static func load(_ path: String, size: Int, channels: Int, skipInvalid: Bool = false,
                            maxPixels: Int = ImageDecodeOptions.defaultMaxPixels,
                            warn: @escaping (String) -> Void) throws -> GANImageData {
        guard size > 0 && size <= 4096 else { throw StudioError.invalidOption("--image-size must be in 1...4096 (got \(size))") }
        guard channels == 1 || channels == 3 else { throw StudioError.invalidOption("--channels must be 1 or 3 (got \(channels))") }
        var isDir: ObjCBool = false
        let fm = FileManager.default
        if fm.fileExists(atPath: path, isDirectory: &isDir) {
            if isDir.boolValue {
                // A folder of MNIST-layout IDX files (as `gen vae train` takes): its training images
                // (a GAN needs no labels file).
                if let images = try MNISTDataset.trainingImagesFile(in: path) {
                    let idx = try IDXFile(path: images)
                    guard idx.type == .uint8 else {
                        throw DatasetError.inconsistent(path: idx.path, reason: "expected uint8 images, found \(idx.type) elements")
                    }
                    return try fromRaw(IDXFileView(path: idx.path, shape: idx.shape, bytes: idx.payload), size: size,
                                       channels: channels, label: "IDX files in \(path) (\(images))")
                }
                let ds = try ImageFolderDataset(directory: path, size: size, channels: channels, skipInvalid: skipInvalid,
                                                maxPixels: maxPixels, warn: warn)
                return GANImageData(summary: "folder \(path): \(ds.count) images" + (ds.skipped.isEmpty ? "" : " (\(ds.skipped.count) skipped)"),
                                    count: ds.count, size: size, channels: channels, sourceHash: ds.fingerprint,
                                    folder: ds, memory: [])
            }
            return try fromIDX(IDXFile(path: path), size: size, channels: channels)
        }
        let key = path.lowercased().replacingOccurrences(of: "_", with: "-")
        if MNISTDataset.knownNames.contains(key) {
            let ds = try MNISTDataset.load(name: key, split: .train)
            let raw = IDXFileView(path: ds.imagesPath, shape: [ds.count, ds.height, ds.width], bytes: ds.pixels)
            return try fromRaw(raw, size: size, channels: channels, label: "\(key) (\(ds.imagesPath))")
        }
        throw DatasetError.datasetNotFound(name: path, reason:
            "no such folder or IDX file (a folder of PNG/JPEG images, an IDX file, or one of: \(MNISTDataset.knownNames.joined(separator: ", ")))")
    }

    /// A uint8 image array: `[N, H, W]` or `[N, H, W, C]`.
    struct IDXFileView {
        var path: String
        var shape: [Int]
        var bytes: [UInt8]
    }

    static func fromIDX(_ idx: IDXFile, size: Int, channels: Int) throws -> GANImageData {
        guard idx.type == .uint8 else {
            throw DatasetError.inconsistent(path: idx.path, reason: "expected uint8 images, found \(idx.type) elements")
        }
        return try fromRaw(IDXFileView(path: idx.path, shape: idx.shape, bytes: idx.payload), size: size, channels: channels,
                           label: "IDX \(idx.path)")
    }

    static func fromRaw(_ v: IDXFileView, size: Int, channels: Int, label: String) throws -> GANImageData {
        let s = v.shape
        guard s.count == 3 || (s.count == 4 && (s[3] == 1 || s[3] == 3)) else {
            throw DatasetError.inconsistent(path: v.path, reason: "expected images of shape [N, H, W] or [N, H, W, C] with C 1 or 3, found \(s)")
        }
        guard s[0] > 0 else { throw DatasetError.noImages(path: v.path) }
        guard s[1] > 0 && s[2] > 0 else { throw DatasetError.inconsistent(path: v.path, reason: "images of size \(s[1])x\(s[2])") }
        let n = s[0], h = s[1], w = s[2], c = s.count == 4 ? s[3] : 1
        let per = size * size * channels
        let (total, overflow) = n.multipliedReportingOverflow(by: per)
        guard !overflow && total <= 1 << 30 else {
            throw DatasetError.inconsistent(path: v.path, reason: "\(n) images of \(size)x\(size)x\(channels) do not fit in memory")
        }
        var out = [Float](repeating: 0, count: total)
        var failure: String?
        out.withUnsafeMutableBufferPointer { dst in
            let base = dst.baseAddress!
            v.bytes.withUnsafeBufferPointer { src in
                let sp = src.baseAddress!
                for i in 0..<n {
                    let o = i * h * w * c
                    var im = Image(width: w, height: h, channels: c, pixels: (0..<(h * w * c)).map { Float(sp[o + $0]) / 255 })
                    do {
                        if c != channels { im = try im.converted(channels: channels) }
                        im = try im.resizedToFill(width: size, height: size)
                    } catch {
                        failure = "\(error)"
                        return
                    }
                    im.pixels.withUnsafeBufferPointer { (base + i * per).update(from: $0.baseAddress!, count: per) }
                }
            }
        }
        if let failure { throw DatasetError.inconsistent(path: v.path, reason: failure) }
        var hash = FNV1a64()
        hash.combine(v.bytes)
        return GANImageData(summary: "\(label): \(n) images of \(w)x\(h)x\(c)", count: n, size: size, channels: channels,
                            sourceHash: hash.value, folder: nil, memory: out)
    }

    /// The images at `indices` as `[B, size, size, channels]` in [-1, 1].
    /// - Throws: ``GenData/ImageError`` when a folder file can no longer be decoded (changed since the check).
    public func batch(_ indices: [Int]) throws -> Tensor {
        if let folder { return try folder.batch(indices, range: .signed) }
        let per = size * size * channels
        let t = Tensor(zeros: [indices.count, size, size, channels])
        t.withUnsafeMutableBufferPointer { dst in
            memory.withUnsafeBufferPointer { src in
                for (j, i) in indices.enumerated() {
                    precondition(i >= 0 && i < count, "GANImageData.batch: index \(i) out of 0..<\(count)")
                    let d = dst.baseAddress! + j * per, s = src.baseAddress! + i * per
                    for k in 0..<per { d[k] = s[k] * 2 - 1 }
                }
            }
        }
        return t
    }
}
