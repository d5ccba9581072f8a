import Foundation
import GenTensor
import GenData

/// The images a VAE trains and evaluates on, converted once to `size`×`size`×`channels` floats in
/// [0, 1] (NHWC, one contiguous array per split).
///
/// Sources (``load(data:size:channels:skipInvalid:warn:)``):
/// - nothing, or a dataset name (`fashion-mnist`, `mnist`): the named IDX dataset (Fashion-MNIST from
///   Debian's `dataset-fashion-mnist` in `/usr/share/datasets/fashion-mnist`), its train and test splits;
/// - a folder holding `train-images-idx3-ubyte[.gz]` and `train-labels-idx1-ubyte[.gz]` (plain or gzip,
///   detected by magic bytes), with `t10k-*` files as the test split when present;
/// - a single IDX images file (`[N, H, W]` or `[N, H, W, C]`, C 1 or 3, any IDX element type: uint8 is
///   divided by 255, other types are taken as values in [0, 1] and clamped);
/// - any other folder: an image folder (``GenData/ImageFolderDataset``): every image, whatever its format,
///   mode and size, decoded with the requested channels, scaled to cover the size and centre-cropped;
///   files with other extensions are ignored and bad image files are all reported at once (or skipped).
///   Labels (for the latent scatter plot) are the names of the first-level subfolders when there are several.
///
/// Without a test split, a tenth of the images (chosen by a fixed seed, at least one) is held out
/// when there are at least 20; with fewer, the training images themselves are evaluated.
public struct VAEData {
    /// What was loaded, for messages and `run.json`.
    public let description: String
    /// Side length of every image.
    public let size: Int
    /// Channels (1 or 3).
    public let channels: Int
    /// Training images, `trainCount · size · size · channels` floats.
    public let train: [Float]
    /// Number of training images (≥ 1).
    public let trainCount: Int
    /// Evaluation images, `testCount · size · size · channels` floats.
    public let test: [Float]
    /// Number of evaluation images (≥ 1).
    public let testCount: Int
    /// Labels of the evaluation images (class indices ≥ 0), when the source has them.
    public let testLabels: [Int]?
    /// Names of the label classes, when known (image-folder subfolders).
    public let labelNames: [String]?
    /// Whether the evaluation images are the training images (too few images to hold some out).
    public let evaluatesOnTrainingSet: Bool
    /// The 64-bit FNV-1a hash (``GenData/FNV1a64``) of the source's images: the bytes of the IDX
    /// images (training split, then test split when there is one), or the converted images of an
    /// image folder. With the counts, size and channels, what a checkpoint records of its data
    /// (``DataFingerprint``), so that a resume on other images is refused.
    public let sourceHash: UInt64

    /// What a checkpoint records of these images.
    public var fingerprint: DataFingerprint {
        DataFingerprint(images: trainCount, size: size, channels: channels, hash: sourceHash)
    }

    /// Floats per image.
    public var sampleSize: Int { size * size * channels }

    /// The images at `indices` of the training (`test == false`) or evaluation split as an
    /// `[B, size, size, channels]` tensor. - Precondition: indices in range.
    public func batch(_ indices: [Int], test fromTest: Bool = false) -> Tensor {
        let per = sampleSize
        let t = Tensor(zeros: [indices.count, size, size, channels])
        let source = fromTest ? test : train
        let n = fromTest ? testCount : trainCount
        t.withUnsafeMutableBufferPointer { dst in
            source.withUnsafeBufferPointer { src in
                for (j, i) in indices.enumerated() {
                    precondition(i >= 0 && i < n, "VAEData.batch: index \(i) out of 0..<\(n)")
                    (dst.baseAddress! + j * per).update(from: src.baseAddress! + i * per, count: per)
                }
            }
        }
        return t
    }

    /// Evaluation image `index` as an ``GenData/Image``.
    public func testImage(_ index: Int) -> Image {
        let per = sampleSize
        return Image(width: size, height: size, channels: channels, pixels: Array(test[index * per..<(index + 1) * per]))
    }

    /// Loads and converts a data source (see the type's documentation).
    /// - Parameters:
    ///   - data: nil (Fashion-MNIST), a dataset name, an IDX file or folder, or an image folder.
    ///   - size: output side length (> 0); channels: 1 or 3.
    ///   - skipInvalid: for image folders, drop undecodable files with a warning instead of failing.
    ///   - maxPixels: for image folders, the largest accepted width×height of a file's header.
    /// - Throws: ``GenData/DatasetError`` (not found, bad IDX, bad image files listed, no images),
    ///   ``StudioError/invalidOption(_:)`` for an unusable IDX shape.
    public static func load(data: String?, size: Int, channels: Int, skipInvalid: Bool = false,
                            maxPixels: Int = ImageDecodeOptions.defaultMaxPixels,
                            warn: @escaping (String) -> Void = { _ in }) throws -> VAEData {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let spec = data ?? "fashion-mnist"
        let exists = fm.fileExists(atPath: spec, isDirectory: &isDir)
        if !exists {
            let key = spec.lowercased().replacingOccurrences(of: "_", with: "-")
            if MNISTDataset.knownNames.contains(key) {
                let train = try MNISTDataset.load(name: key, split: .train)
                let test = try MNISTDataset.load(name: key, split: .test)
                return try fromMNIST(train: train, test: test, name: "\(key) (\(train.imagesPath) and its test split)",
                                     size: size, channels: channels)
            }
            throw DatasetError.datasetNotFound(name: spec, reason:
                "no such file or folder, and not a dataset name (known: \(MNISTDataset.knownNames.joined(separator: ", ")))")
        }
        if isDir.boolValue {
            let names = (try? fm.contentsOfDirectory(atPath: spec)) ?? []
            if try MNISTDataset.trainingImagesFile(in: spec) != nil {
                let train = try MNISTDataset.load(name: "mnist", split: .train, searchPaths: [spec])
                let test: MNISTDataset? = names.contains(where: { $0.hasPrefix("t10k-images-idx3-ubyte") })
                    ? try MNISTDataset.load(name: "mnist", split: .test, searchPaths: [spec]) : nil
                return try fromMNIST(train: train, test: test, name: "IDX files in \(spec)", size: size, channels: channels)
            }
            let folder = try ImageFolderDataset(directory: spec, size: size, channels: channels, skipInvalid: skipInvalid,
                                                maxPixels: maxPixels, warn: warn)
            var all = [Float](repeating: 0, count: folder.count * folder.sampleSize)
            let per = folder.sampleSize
            for i in 0..<folder.count {
                let im = try folder.image(at: i)
                all.replaceSubrange(i * per..<(i + 1) * per, with: im.pixels)
            }
            // Labels from first-level subfolders, when the files sit in more than one.
            let root = URL(fileURLWithPath: spec).standardizedFileURL.path
            let groups = folder.files.map { path -> String in
                let p = URL(fileURLWithPath: path).standardizedFileURL.path
                let rel = p.hasPrefix(root + "/") ? String(p.dropFirst(root.count + 1)) : p
                let parts = rel.split(separator: "/")
                return parts.count > 1 ? String(parts[0]) : ""
            }
            let classes = Array(Set(groups)).sorted()
            let labels = classes.count > 1 ? groups.map { classes.firstIndex(of: $0) ?? 0 } : nil
            return split(all: all, count: folder.count, labels: labels, labelNames: classes.count > 1 ? classes : nil,
                         sourceHash: folder.fingerprint, description: "image folder \(spec) (\(folder.count) images\(folder.skipped.isEmpty ? "" : ", \(folder.skipped.count) skipped"))",
                         size: size, channels: channels)
        }
        // A single IDX images file, with a sibling labels file when there is one.
        let idx = try IDXFile(path: spec)
        let s = idx.shape
        guard (s.count == 3 || (s.count == 4 && (s[3] == 1 || s[3] == 3))), s[0] > 0, s[1] > 0, s[2] > 0 else {
            throw DatasetError.inconsistent(path: spec, reason: "expected images of shape [N, H, W] or [N, H, W, C] with C 1 or 3, found \(s)")
        }
        let n = s[0], h = s[1], w = s[2], c = s.count == 4 ? s[3] : 1
        var values = idx.floats()
        if idx.type == .uint8 { for i in 0..<values.count { values[i] /= 255 } } else {
            for i in 0..<values.count { values[i] = values[i].isFinite ? min(max(values[i], 0), 1) : 0 }
        }
        var labels: [Int]?
        let labelsPath = URL(fileURLWithPath: spec).deletingLastPathComponent()
            .appendingPathComponent(URL(fileURLWithPath: spec).lastPathComponent.replacingOccurrences(of: "images-idx3", with: "labels-idx1")).path
        if labelsPath != spec, let l = try? IDXFile(path: labelsPath), l.shape == [n] { labels = l.integers().map { max($0, 0) } }
        let converted = try convert(values, count: n, height: h, width: w, channels: c, size: size, to: channels)
        var hash = FNV1a64()
        hash.combine(idx.payload)
        return split(all: converted, count: n, labels: labels, labelNames: nil, sourceHash: hash.value, description: "IDX file \(spec) (\(n) images \(w)x\(h))",
                     size: size, channels: channels)
    }

    static func fromMNIST(train: MNISTDataset, test: MNISTDataset?, name: String, size: Int, channels: Int) throws -> VAEData {
        func floats(_ d: MNISTDataset) throws -> [Float] {
            let v = d.pixels.map { Float($0) / 255 }
            return try convert(v, count: d.count, height: d.height, width: d.width, channels: 1, size: size, to: channels)
        }
        let tr = try floats(train)
        var hash = FNV1a64()
        hash.combine(train.pixels)
        guard let test else {
            return split(all: tr, count: train.count, labels: train.labels, labelNames: nil, sourceHash: hash.value,
                         description: name, size: size, channels: channels)
        }
        hash.combine(test.pixels)
        return VAEData(description: name, size: size, channels: channels, train: tr, trainCount: train.count,
                       test: try floats(test), testCount: test.count, testLabels: test.labels, labelNames: nil,
                       evaluatesOnTrainingSet: false, sourceHash: hash.value)
    }

    /// Converts `count` HWC images to `size`×`size`×`channels` (the image-folder rule: channel
    /// conversion, then scale to cover and centre-crop). Returns the input when nothing changes.
    static func convert(_ values: [Float], count: Int, height: Int, width: Int, channels: Int, size: Int, to dst: Int) throws -> [Float] {
        if height == size && width == size && channels == dst { return values }
        let per = height * width * channels, outPer = size * size * dst
        var out = [Float](repeating: 0, count: count * outPer)
        for i in 0..<count {
            let im = Image(width: width, height: height, channels: channels, pixels: Array(values[i * per..<(i + 1) * per]))
            let r = try im.converted(channels: dst).resizedToFill(width: size, height: size)
            out.replaceSubrange(i * outPer..<(i + 1) * outPer, with: r.pixels)
        }
        return out
    }

    /// Holds out a tenth (fixed seed) when there are at least 20 images; else evaluates on all of them.
    static func split(all: [Float], count: Int, labels: [Int]?, labelNames: [String]?, sourceHash: UInt64,
                      description: String, size: Int, channels: Int) -> VAEData {
        let per = size * size * channels
        guard count >= 20 else {
            return VAEData(description: description + "; fewer than 20 images: evaluated on the training images",
                           size: size, channels: channels, train: all, trainCount: count, test: all, testCount: count,
                           testLabels: labels, labelNames: labelNames, evaluatesOnTrainingSet: true, sourceHash: sourceHash)
        }
        var rng = RandomGenerator(seed: 0x7E57_5EED)
        let order = rng.permutation(count)
        let held = max(1, count / 10)
        let testIdx = Array(order[..<held]).sorted(), trainIdx = Array(order[held...]).sorted()
        func gather(_ idx: [Int]) -> [Float] {
            var out = [Float](repeating: 0, count: idx.count * per)
            for (j, i) in idx.enumerated() { out.replaceSubrange(j * per..<(j + 1) * per, with: all[i * per..<(i + 1) * per]) }
            return out
        }
        return VAEData(description: description + "; \(held) held out for evaluation", size: size, channels: channels,
                       train: gather(trainIdx), trainCount: trainIdx.count, test: gather(testIdx), testCount: held,
                       testLabels: labels.map { l in testIdx.map { l[$0] } }, labelNames: labelNames, evaluatesOnTrainingSet: false,
                       sourceHash: sourceHash)
    }
}
