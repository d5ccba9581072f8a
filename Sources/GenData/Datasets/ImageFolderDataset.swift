import Dispatch
import Foundation
import GenTensor

/// A problem with one file of a dataset: its path and the reason.
public struct DatasetFileProblem: Equatable, Sendable, CustomStringConvertible {
    /// The file.
    public let path: String
    /// Why it cannot be used (the decoder's message without the path).
    public let reason: String
    /// `"<path>: <reason>"`.
    public var description: String { "\(path): \(reason)" }
}

/// Errors of the dataset loaders (image folders, IDX, named datasets).
public enum DatasetError: Error, Equatable, Sendable, LocalizedError, CustomStringConvertible {
    /// The folder does not exist or is not a directory.
    case folderNotFound(path: String)
    /// The folder holds no image files (after ignoring hidden files and other extensions).
    case noImages(path: String)
    /// Some files cannot be decoded; all of them are listed, found before training starts.
    case invalidFiles([DatasetFileProblem])
    /// Every image file was invalid and `skipInvalid` dropped them all.
    case allInvalid(path: String, problems: [DatasetFileProblem])
    /// An IDX file problem: wrong magic, truncated, unreadable; names the file.
    case invalidIDX(path: String, reason: String)
    /// Images and labels disagree (counts), or a named dataset has unexpected content.
    case inconsistent(path: String, reason: String)
    /// A named dataset (e.g. "fashion-mnist") is unknown or its files were not found.
    case datasetNotFound(name: String, reason: String)
    /// An argument was out of range (size, channels, batch size, ...).
    case invalidArgument(String)

    /// The human-readable message, naming files and reasons.
    public var description: String {
        switch self {
        case .folderNotFound(let p): return "\(p): image folder not found (or not a directory)"
        case .noImages(let p):
            // A folder of IDX files (e.g. MNIST's *-ubyte files) is a common mix-up: point at them.
            // (The training images first: train-*images* before t10k-*, images before labels.)
            let idx = ((try? FileManager.default.contentsOfDirectory(atPath: p)) ?? [])
                .filter { $0.contains("-ubyte") || $0.lowercased().contains(".idx") }
                .sorted { a, b in
                    func rank(_ n: String) -> Int { (n.contains("images") ? 0 : 2) + (n.hasPrefix("train") ? 0 : 1) }
                    return (rank(a), a) < (rank(b), b)
                }
            let hint = idx.first.map { "; it holds IDX files: pass one of them, e.g. \((p as NSString).appendingPathComponent($0))" } ?? ""
            return "\(p): no image files found (looked recursively for .png, .jpg, .jpeg, .jpe, .jfif, and for .gif, .bmp, "
                + ".webp, .tif, .tiff to report them as unsupported; hidden files are ignored)\(hint)"
        case .invalidFiles(let problems):
            return "\(problems.count) invalid image file\(problems.count == 1 ? "" : "s") (fix or remove them, or skip them with --skip-invalid):\n"
                + problems.map { "  \($0.path): \($0.reason)" }.joined(separator: "\n")
        case .allInvalid(let p, let problems):
            return "\(p): all \(problems.count) image files are invalid:\n"
                + problems.map { "  \($0.path): \($0.reason)" }.joined(separator: "\n")
        case .invalidIDX(let p, let r): return "\(p): \(r)"
        case .inconsistent(let p, let r): return "\(p): \(r)"
        case .datasetNotFound(let n, let r): return "dataset '\(n)': \(r)"
        case .invalidArgument(let r): return r
        }
    }

    /// Same as ``description``.
    public var errorDescription: String? { description }
}

/// A folder of images for unconditional generators (VAE, GAN): every image becomes
/// `size` x `size` x `channels`, so folders mixing gray, RGBA, palette, 16-bit, CMYK and
/// different sizes batch without shape errors.
///
/// - Files: found recursively; names starting with "." (and hidden folders) are ignored, and
///   so is every file whose extension is not an image extension (`png`, `jpg`, `jpeg`, `jpe`,
///   `jfif`, and `gif`, `bmp`, `webp`, `tif`, `tiff`, which are reported as unsupported rather
///   than silently skipped). Order: sorted paths.
/// - Checking: every file is fully decoded before training starts (in parallel on
///   `Threads.count` threads). Bad files
///   (truncated, corrupt, wrong format, too large) are all reported at once in
///   ``DatasetError/invalidFiles(_:)``, or, with `skipInvalid`, dropped with one warning each.
/// - Conversion rule: decode with the requested channels (gray copied to RGB, RGB to luma,
///   alpha composited onto white, palette expanded, 16-bit scaled by 1/65535, CMYK converted),
///   scale so the image covers `size` x `size` with its aspect kept (area averaging when
///   shrinking, bicubic when enlarging), then center-crop to `size` x `size`.
/// - Memory: converted samples are cached in one float array when they fit in `cacheLimit`
///   bytes (default 2 GiB); otherwise each batch decodes its files again.
public final class ImageFolderDataset {
    /// The folder given.
    public let root: String
    /// The usable files, sorted.
    public let files: [String]
    /// Files dropped under `skipInvalid`, with reasons.
    public let skipped: [DatasetFileProblem]
    /// Output side length.
    public let size: Int
    /// Output channels (1 or 3).
    public let channels: Int
    /// Pixel limit per file (see ``ImageDecodeOptions/maxPixels``).
    public let maxPixels: Int
    /// The 64-bit FNV-1a hash (``FNV1a64``) of the usable images as converted (each sample's
    /// `size`·`size`·`channels` floats, in file order): what a training checkpoint records of its
    /// images, so that a resume on other images is refused. Computed while the files are checked.
    public let fingerprint: UInt64
    private var cache: [Float]?

    /// Extensions treated as image files.
    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "jpe", "jfif", "gif", "bmp", "webp", "tif", "tiff"]

    /// Number of usable images.
    public var count: Int { files.count }
    /// Floats per sample: `size * size * channels`.
    public var sampleSize: Int { size * size * channels }

    /// Lists, checks and (when it fits) caches the folder.
    /// - Parameters:
    ///   - directory: the folder, searched recursively.
    ///   - size: output side length S (> 0).
    ///   - channels: 1 or 3.
    ///   - skipInvalid: drop bad files with a warning instead of throwing.
    ///   - maxPixels: per-file pixel limit.
    ///   - cacheLimit: largest cache in bytes; beyond it batches decode on the fly.
    ///   - warn: receives one line per skipped file (default: stderr).
    /// - Throws: ``DatasetError`` (folderNotFound, noImages, invalidFiles listing every bad
    ///   file, allInvalid, invalidArgument).
    public init(directory: String, size: Int, channels: Int = 3, skipInvalid: Bool = false,
                maxPixels: Int = ImageDecodeOptions.defaultMaxPixels, cacheLimit: Int = 2 << 30,
                warn: (String) -> Void = { fputs("gen: warning: " + $0 + "\n", stderr) }) throws {
        guard size > 0 && size <= 16384 else { throw DatasetError.invalidArgument("image size must be in 1...16384, got \(size)") }
        guard channels == 1 || channels == 3 else { throw DatasetError.invalidArgument("channels must be 1 or 3, got \(channels)") }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw DatasetError.folderNotFound(path: directory)
        }
        let candidates = ImageFolderDataset.listImageFiles(directory)
        if candidates.isEmpty { throw DatasetError.noImages(path: directory) }
        self.root = directory
        self.size = size
        self.channels = channels
        self.maxPixels = maxPixels
        let per = size * size * channels
        let cacheable = candidates.count.multipliedReportingOverflow(by: per * 4)
        let useCache = !cacheable.overflow && cacheable.partialValue <= cacheLimit

        // Decode everything once, in parallel; keep samples when caching.
        let n = candidates.count
        var samples = useCache ? [Float](repeating: 0, count: n * per) : []
        var problems = [String?](repeating: nil, count: n)
        var hashes = [UInt64](repeating: 0, count: n)
        let opts = ImageDecodeOptions(channels: channels, maxPixels: maxPixels)
        samples.withUnsafeMutableBufferPointer { sbuf in
            problems.withUnsafeMutableBufferPointer { pbuf in
                hashes.withUnsafeMutableBufferPointer { hbuf in
                    let sbase = useCache ? sbuf.baseAddress : nil, pbase = pbuf.baseAddress!, hbase = hbuf.baseAddress!
                    // One image is heavy work: split across Threads.count (the --threads setting).
                    parallelFor(n, cost: parallelThreshold) { range in
                        for i in range {
                            do {
                                let im = try ImageFolderDataset.loadSample(candidates[i], size: size, options: opts)
                                var hash = FNV1a64()
                                hash.combine(im.pixels)
                                hbase[i] = hash.value
                                if let sb = sbase {
                                    im.pixels.withUnsafeBufferPointer { (sb + i * per).update(from: $0.baseAddress!, count: per) }
                                }
                            } catch let e as ImageError {
                                pbase[i] = e.reason
                            } catch {
                                pbase[i] = "\(error)"
                            }
                        }
                    }
                }
            }
        }
        var bad: [DatasetFileProblem] = []
        var keep: [Int] = []
        for i in 0..<n {
            if let r = problems[i] { bad.append(DatasetFileProblem(path: candidates[i], reason: r)) } else { keep.append(i) }
        }
        if !bad.isEmpty {
            if !skipInvalid { throw DatasetError.invalidFiles(bad) }
            if keep.isEmpty { throw DatasetError.allInvalid(path: directory, problems: bad) }
            for p in bad { warn("skipping \(p.path): \(p.reason)") }
            if useCache {
                var compact = [Float](repeating: 0, count: keep.count * per)
                compact.withUnsafeMutableBufferPointer { d in
                    samples.withUnsafeBufferPointer { s in
                        for (j, i) in keep.enumerated() { (d.baseAddress! + j * per).update(from: s.baseAddress! + i * per, count: per) }
                    }
                }
                samples = compact
            }
        }
        self.files = keep.map { candidates[$0] }
        var fingerprint = FNV1a64()
        for i in keep { fingerprint.combine(hashes[i]) }
        self.fingerprint = fingerprint.value
        self.skipped = bad
        self.cache = useCache ? samples : nil
    }

    /// Decodes one file and applies the conversion rule.
    static func loadSample(_ path: String, size: Int, options: ImageDecodeOptions) throws -> Image {
        let im = try Image(contentsOf: path, options: options)
        return try im.resizedToFill(width: size, height: size)
    }

    /// Image files under `directory`, recursively, sorted; hidden entries and non-image
    /// extensions ignored. Symbolic links to folders are followed (as torchvision's `ImageFolder`
    /// does), in name order, but no folder is entered twice (compared by device and inode: the
    /// first path in name order is the one listed), and a link to the root or one of its ancestors
    /// (such as `self -> .` or `up -> ..`) is not followed, so link loops end and nothing outside
    /// the tree is pulled in through them. Entries with an image extension are listed whatever they
    /// are (a broken link, a named pipe, a socket, a device), and so is a subfolder that cannot be
    /// read, so that decoding names them as bad files instead of skipping them silently or blocking.
    public static func listImageFiles(_ directory: String) -> [String] {
        var out: [String] = []
        var visited = Set<FolderIdentity>()
        let fm = FileManager.default
        let rootReal = URL(fileURLWithPath: directory).resolvingSymlinksInPath().standardizedFileURL.path
        func isAncestorOfRoot(_ path: String) -> Bool {
            let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
            return real == "/" || rootReal == real || rootReal.hasPrefix(real + "/")
        }
        // `st`: the folder's stat(2), taken once by the caller.
        func walk(_ dir: String, _ st: stat, isRoot: Bool) {
            guard visited.insert(FolderIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))).inserted else { return }
            guard let names = try? fm.contentsOfDirectory(atPath: dir) else {
                if !isRoot { out.append(dir) }     // unreadable: decoding reports why
                return
            }
            for name in names.sorted() where !name.hasPrefix(".") {
                let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
                var entry = stat(), link = stat()
                if stat(path, &entry) == 0 && (entry.st_mode & S_IFMT) == S_IFDIR {
                    let isLink = lstat(path, &link) == 0 && (link.st_mode & S_IFMT) == S_IFLNK
                    if isLink && isAncestorOfRoot(path) { continue }
                    walk(path, entry, isRoot: false)
                } else if imageExtensions.contains((name as NSString).pathExtension.lowercased()) {
                    out.append(path)
                }
            }
        }
        var root = stat()
        if stat(directory, &root) == 0 { walk(directory, root, isRoot: true) }
        return out.sorted()
    }

    /// A folder's identity for loop detection: `st_dev` and `st_ino` of `stat(2)`.
    private struct FolderIdentity: Hashable {
        let device: UInt64, inode: UInt64
    }

    /// Sample `index` as an image (`size` x `size` x `channels`, [0, 1]).
    /// - Throws: ``ImageError`` when decoding on the fly fails (file changed since checking).
    public func image(at index: Int) throws -> Image {
        precondition(index >= 0 && index < count, "ImageFolderDataset: index \(index) out of 0..<\(count)")
        if let c = cache {
            let per = sampleSize
            return Image(width: size, height: size, channels: channels, pixels: Array(c[index * per..<(index + 1) * per]))
        }
        return try ImageFolderDataset.loadSample(files[index], size: size,
                                                 options: ImageDecodeOptions(channels: channels, maxPixels: maxPixels))
    }

    /// The samples at `indices` as an `[B, size, size, channels]` NHWC tensor in `range`.
    /// - Throws: ``ImageError`` when decoding on the fly fails.
    public func batch(_ indices: [Int], range: PixelRange = .unit) throws -> Tensor {
        let per = sampleSize
        let t = Tensor(zeros: [indices.count, size, size, channels])
        let (scale, offset) = range.affine
        if let c = cache {
            t.withUnsafeMutableBufferPointer { dst in
                c.withUnsafeBufferPointer { src in
                    for (j, i) in indices.enumerated() {
                        precondition(i >= 0 && i < count, "ImageFolderDataset.batch: index \(i) out of 0..<\(count)")
                        let d = dst.baseAddress! + j * per, s = src.baseAddress! + i * per
                        if scale == 1 && offset == 0 { d.update(from: s, count: per) } else {
                            for k in 0..<per { d[k] = s[k] * scale + offset }
                        }
                    }
                }
            }
            return t
        }
        var errors = [ImageError?](repeating: nil, count: indices.count)
        let opts = ImageDecodeOptions(channels: channels, maxPixels: maxPixels)
        t.withUnsafeMutableBufferPointer { dst in
            let base = dst.baseAddress!
            errors.withUnsafeMutableBufferPointer { ebuf in
                let eb = ebuf.baseAddress!
                parallelFor(indices.count, cost: parallelThreshold) { range in
                    for j in range {
                        do {
                            let im = try ImageFolderDataset.loadSample(files[indices[j]], size: size, options: opts)
                            im.pixels.withUnsafeBufferPointer { s in
                                let d = base + j * per
                                for k in 0..<per { d[k] = s[k] * scale + offset }
                            }
                        } catch let e as ImageError {
                            eb[j] = e
                        } catch {
                            eb[j] = .unreadable(path: files[indices[j]], reason: "\(error)")
                        }
                    }
                }
            }
        }
        if let e = errors.compactMap({ $0 }).first { throw e }
        return t
    }
}
