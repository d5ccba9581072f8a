import Foundation
import GenTensor

/// MNIST-style labelled images from a pair of IDX files (`[N, H, W]` uint8 images and `[N]`
/// uint8 labels), plain or gzip-compressed (detected by magic bytes).
///
/// Named datasets (``load(name:split:searchPaths:)``): "mnist" and "fashion-mnist", each with
/// a train and a test split, files `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally with `.gz`.
public struct MNISTDataset: Sendable {
    /// Which part of a named dataset.
    public enum Split: String, Sendable, CaseIterable {
        /// The training split (`train-*`).
        case train
        /// The test split (`t10k-*`).
        case test
    }

    /// The images file.
    public let imagesPath: String
    /// Pixel bytes, `count * height * width`, row-major, 0 (background) ... 255.
    public let pixels: [UInt8]
    /// Labels, one per image (0...9 for MNIST / Fashion-MNIST).
    public let labels: [Int]
    /// Number of images.
    public let count: Int
    /// Image height (28 for MNIST).
    public let height: Int
    /// Image width (28 for MNIST).
    public let width: Int

    /// Loads an images file and a labels file.
    /// - Throws: ``DatasetError/invalidIDX(path:reason:)`` (wrong magic, truncated, bad gzip),
    ///   ``DatasetError/inconsistent(path:reason:)`` (not 3-D uint8 images, not 1-D labels,
    ///   counts differ).
    public init(imagesPath: String, labelsPath: String) throws {
        let images = try IDXFile(path: imagesPath)
        let labels = try IDXFile(path: labelsPath)
        guard images.type == .uint8, images.shape.count == 3 else {
            throw DatasetError.inconsistent(path: imagesPath,
                reason: "expected uint8 images of shape [N, H, W], found \(images.type) \(images.shape)")
        }
        guard labels.shape.count == 1 else {
            throw DatasetError.inconsistent(path: labelsPath, reason: "expected labels of shape [N], found \(labels.shape)")
        }
        guard labels.shape[0] == images.shape[0] else {
            throw DatasetError.inconsistent(path: labelsPath,
                reason: "\(labels.shape[0]) labels for \(images.shape[0]) images in \(imagesPath)")
        }
        self.imagesPath = imagesPath
        self.pixels = images.payload
        self.labels = labels.integers()
        self.count = images.shape[0]
        self.height = images.shape[1]
        self.width = images.shape[2]
    }

    /// The MNIST-layout training images file in `folder` (`train-images-idx3-ubyte`, plain or with
    /// `.gz`), or nil when it has none.
    /// - Throws: ``DatasetError/inconsistent(path:reason:)`` when the folder also holds image files
    ///   that an image folder would train on (``ImageFolderDataset/listImageFiles(_:)``: subfolders
    ///   included, hidden files not): which of the two is meant is not for gen to guess.
    public static func trainingImagesFile(in folder: String) throws -> String? {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        guard let idx = names.first(where: { $0 == "train-images-idx3-ubyte" || $0 == "train-images-idx3-ubyte.gz" }) else { return nil }
        if let image = ImageFolderDataset.listImageFiles(folder).first {
            let shown = image.hasPrefix(folder) ? String(image.dropFirst(folder.count)).drop { $0 == "/" } : Substring(image)
            throw DatasetError.inconsistent(path: folder, reason:
                "holds both IDX files (\(idx)) and images (\(shown)); give the IDX file itself, or a folder of images only")
        }
        return (folder as NSString).appendingPathComponent(idx)
    }

    /// Names ``load(name:split:searchPaths:)`` understands.
    public static let knownNames = ["mnist", "fashion-mnist"]

    /// Default folders searched for a named dataset `name`, in order:
    /// `$GEN_DATA/images/<name>`, `$GEN_DATA/<name>`, `./data/<name>`,
    /// `/usr/share/datasets/<name>` (Debian's `dataset-fashion-mnist` package).
    public static func defaultSearchPaths(for name: String) -> [String] {
        var dirs: [String] = []
        if let d = ProcessInfo.processInfo.environment["GEN_DATA"], !d.isEmpty {
            dirs += ["\(d)/images/\(name)", "\(d)/\(name)"]
        }
        dirs += ["data/\(name)", "/usr/share/datasets/\(name)"]
        return dirs
    }

    /// Loads a named dataset split ("mnist" or "fashion-mnist", case-insensitive; "fashion_mnist"
    /// also accepted) from the first folder in `searchPaths` holding both of its files.
    /// - Throws: ``DatasetError/datasetNotFound(name:reason:)`` listing the folders searched,
    ///   or the errors of ``init(imagesPath:labelsPath:)``.
    public static func load(name: String, split: Split = .train, searchPaths: [String]? = nil) throws -> MNISTDataset {
        let key = name.lowercased().replacingOccurrences(of: "_", with: "-")
        guard knownNames.contains(key) else {
            throw DatasetError.datasetNotFound(name: name, reason: "unknown dataset; known: \(knownNames.joined(separator: ", "))")
        }
        let prefix = split == .train ? "train" : "t10k"
        let dirs = searchPaths ?? defaultSearchPaths(for: key)
        let fm = FileManager.default
        func find(_ dir: String, _ base: String) -> String? {
            for cand in ["\(dir)/\(base)", "\(dir)/\(base).gz"] where fm.isReadableFile(atPath: cand) { return cand }
            return nil
        }
        for dir in dirs {
            if let img = find(dir, "\(prefix)-images-idx3-ubyte"), let lab = find(dir, "\(prefix)-labels-idx1-ubyte") {
                return try MNISTDataset(imagesPath: img, labelsPath: lab)
            }
        }
        throw DatasetError.datasetNotFound(name: name, reason:
            "\(split.rawValue) split not found (\(prefix)-images-idx3-ubyte[.gz] and \(prefix)-labels-idx1-ubyte[.gz]) in: \(dirs.joined(separator: ", "))"
            + (key == "fashion-mnist" ? "; on Debian: apt-get install dataset-fashion-mnist" : ""))
    }

    /// Image `index` as a 1-channel ``Image`` in [0, 1] (v / 255).
    public func image(at index: Int) -> Image {
        precondition(index >= 0 && index < count, "MNISTDataset: index \(index) out of 0..<\(count)")
        let per = height * width
        return Image(width: width, height: height, channels: 1,
                     pixels: pixels[index * per..<(index + 1) * per].map { Float($0) / 255 })
    }

    /// The images at `indices` as an `[B, H, W, 1]` NHWC tensor in `range` (v / 255 for unit).
    public func batch(_ indices: [Int], range: PixelRange = .unit) -> Tensor {
        let per = height * width
        let (scale, offset) = range.affine
        var lut = [Float](repeating: 0, count: 256)
        for v in 0..<256 { lut[v] = Float(v) / 255 * scale + offset }
        let t = Tensor(zeros: [indices.count, height, width, 1])
        t.withUnsafeMutableBufferPointer { dst in
            pixels.withUnsafeBufferPointer { src in
                for (j, i) in indices.enumerated() {
                    precondition(i >= 0 && i < count, "MNISTDataset.batch: index \(i) out of 0..<\(count)")
                    let d = dst.baseAddress! + j * per, s = src.baseAddress! + i * per
                    for k in 0..<per { d[k] = lut[Int(s[k])] }
                }
            }
        }
        return t
    }

    /// Labels at `indices`.
    public func labels(_ indices: [Int]) -> [Int] { indices.map { labels[$0] } }
}
