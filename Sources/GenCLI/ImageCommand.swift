import ArgumentParser
import Dispatch
import Foundation
import GenData
import GenTensor

/// `gen image`: inspect and convert image files with the same decoder every generator uses.
///
/// Exit codes: 0 success, 2 bad input (unreadable, unsupported, corrupt or too large file, bad
/// option), with `gen: error: <path>: <reason>` on stderr and no output file created.
struct ImageCommand: ParsableCommand {
    /// `image` with subcommands `info`, `convert` and the hidden `bench`.
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Inspect and convert images (PNG, JPEG) with gen's decoder.",
        discussion: """
            Formats are recognised by their first bytes, never by the extension. Images are \
            decoded upright (EXIF orientation applied); alpha is composited onto white; 16-bit \
            PNGs are scaled exactly. Headers declaring more than --max-pixels pixels \
            (default \(ImageDecodeOptions.defaultMaxPixels)) are refused before decoding.
            """,
        subcommands: [Info.self, Convert.self, Bench.self]
    )

    /// Creates the command (ArgumentParser fills it in).
    init() {}

    /// Prints `gen: error: <message>` to stderr.
    static func fail(_ message: String) {
        writeStandardError("gen: error: " + message + "\n")
    }

    /// `gen image info FILE...`
    struct Info: ParsableCommand {
        /// Help text.
        static let configuration = CommandConfiguration(
            abstract: "Print format, size, channels, bit depth, orientation and any problem of each file.",
            discussion: "Each file is fully decoded to find truncated or corrupt data. Exit code 2 if any file has a problem.")

        @Argument(help: "Image files.")
        var files: [String]

        @Option(help: "Largest accepted width*height declared by a header.")
        var maxPixels: Int = ImageDecodeOptions.defaultMaxPixels

        /// Creates the command (ArgumentParser fills it in).
        init() {}

        /// Prints one line per file; exits with code 2 when any file has a problem.
        func run() throws {
            var bad = 0
            for path in files {
                var line = path + ": "
                var problem: String?
                do {
                    let info = try ImageInfo.read(path: path)
                    line += Info.describe(info)
                    do {
                        _ = try Image(contentsOf: path, options: ImageDecodeOptions(maxPixels: maxPixels))
                    } catch let e as ImageError {
                        problem = e.reason
                    }
                } catch let e as ImageError {
                    problem = e.reason
                    line += "unusable"
                }
                if let p = problem {
                    bad += 1
                    print(line + ", problem: " + p)
                    ImageCommand.fail(path + ": " + p)
                } else {
                    print(line + ", ok")
                }
            }
            if bad > 0 { throw ExitCode(2) }
        }

        static func describe(_ i: ImageInfo) -> String {
            var parts = ["\(i.format.rawValue)", "\(i.width)x\(i.height)"]
            let names = [1: "gray", 2: "gray+alpha", 3: "RGB", 4: "RGBA"]
            parts.append("\(i.storedChannels) channel\(i.storedChannels == 1 ? "" : "s") (\(i.colorModel.rawValue)"
                         + (i.colorModel == .palette ? ", decodes as \(names[i.decodedChannels] ?? "?")" : "")
                         + (i.adobeInverted ? ", Adobe inverted" : "") + ")")
            parts.append("\(i.bitDepth)-bit")
            if i.hasAlpha { parts.append("alpha") }
            if i.format == .jpeg { parts.append(i.progressive ? "progressive" : "baseline") }
            if i.format == .png { parts.append(i.interlaced ? "interlaced" : "non-interlaced") }
            let orient = [1: "upright", 2: "mirrored", 3: "rotated 180", 4: "flipped", 5: "transposed",
                          6: "rotated 90 CW on display", 7: "transversed", 8: "rotated 90 CCW on display"]
            parts.append("orientation \(i.orientation) (\(orient[i.orientation] ?? "?"))"
                         + (i.orientation >= 5 ? ", stored \(i.storedWidth)x\(i.storedHeight)" : ""))
            return parts.joined(separator: ", ")
        }
    }

    /// `gen image convert INPUT OUTPUT [--size N] [--gray]`
    struct Convert: ParsableCommand {
        /// Help text.
        static let configuration = CommandConfiguration(
            abstract: "Decode an image, optionally resize it, and encode it by the output's extension (.png, .jpg).",
            discussion: """
                --size N scales so the longer side is N (aspect kept); --size WxH resizes to exactly \
                W by H. Shrinking uses area averaging, enlarging bicubic. The output is written \
                atomically, upright, without an orientation tag; on any error no output file is created.
                """)

        @Argument(help: "Input image (PNG or JPEG, any extension).")
        var input: String

        @Argument(help: "Output file: .png, .jpg or .jpeg.")
        var output: String

        @Option(help: "Target size: N (longer side) or WxH.")
        var size: String?

        @Flag(help: "Convert to one gray channel (luma).")
        var gray = false

        @Option(help: "JPEG quality, 1-100.")
        var quality: Int = 92

        @Option(help: "PNG bits per sample: 8 or 16.")
        var bitDepth: Int = 8

        @Option(help: "Largest accepted width*height declared by the input header.")
        var maxPixels: Int = ImageDecodeOptions.defaultMaxPixels

        /// Creates the command (ArgumentParser fills it in).
        init() {}

        /// Parses "N" or "WxH".
        static func parseSize(_ s: String) -> (Int?, Int?, Int?)? {
            let parts = s.lowercased().split(separator: "x", omittingEmptySubsequences: false)
            if parts.count == 1, let n = Int(parts[0]), n > 0 { return (n, nil, nil) }
            if parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), w > 0, h > 0 { return (nil, w, h) }
            return nil
        }

        /// Converts; on bad input prints `gen: error: ...` and exits with code 2, creating nothing.
        func run() throws {
            do {
                let format = try ImageFileFormat(path: output)
                // A folder (or a write-protected file) where the output goes: refused before decoding.
                if let problem = replacementRefusal(of: output) { throw ImageError.invalidArgument("\(output): \(problem)") }
                guard bitDepth == 8 || bitDepth == 16 else { throw ImageError.invalidArgument("--bit-depth must be 8 or 16, got \(bitDepth)") }
                if bitDepth == 16 && format == .jpeg {
                    throw ImageError.invalidArgument("--bit-depth 16 is for PNG output: JPEG (\(output)) stores 8 bits per sample")
                }
                // The folder the output goes in must exist (the error would otherwise name the temporary file).
                let parent = (output as NSString).deletingLastPathComponent
                var isFolder: ObjCBool = false
                if !parent.isEmpty && !(FileManager.default.fileExists(atPath: parent, isDirectory: &isFolder) && isFolder.boolValue) {
                    throw ImageError.invalidArgument("\(output): the folder \(parent) does not exist")
                }
                guard (1...100).contains(quality) else { throw ImageError.invalidArgument("--quality must be in 1...100, got \(quality)") }
                guard maxPixels > 0 else { throw ImageError.invalidArgument("--max-pixels must be positive") }
                var target: (Int?, Int?, Int?)?
                if let s = size {
                    guard let t = Convert.parseSize(s) else {
                        throw ImageError.invalidArgument("--size must be N or WxH with positive integers, got '\(s)'")
                    }
                    target = t
                }
                var image = try Image(contentsOf: input, options: ImageDecodeOptions(channels: gray ? 1 : nil, maxPixels: maxPixels))
                if let t = target {
                    // The output obeys the same pixel limit as inputs: refuse before allocating it.
                    let longer = max(image.width, image.height)
                    let (ow, oh): (Int, Int) = t.0.map { n in
                        (max(1, image.width * n / max(longer, 1)), max(1, image.height * n / max(longer, 1)))
                    } ?? (t.1 ?? 1, t.2 ?? 1)
                    let (pixels, overflow) = ow.multipliedReportingOverflow(by: oh)
                    guard !overflow, pixels <= maxPixels else {
                        throw ImageError.invalidArgument("--size \(size ?? "") would make a \(ow)x\(oh) image, more than --max-pixels \(maxPixels) pixels")
                    }
                    if let n = t.0 { image = try image.resized(longerSide: n) } else if let w = t.1, let h = t.2 {
                        image = try image.resized(width: w, height: h)
                    }
                }
                try image.write(to: output, format: format, options: ImageEncodeOptions(bitDepth: bitDepth, quality: quality))
                print(output)
            } catch let e as ImageError {
                ImageCommand.fail(e.description)
                throw ExitCode(GenCLI.exitCode(for: e))     // 2 for bad input, 1 for a failed write
            }
        }
    }

    /// Hidden: `gen image bench PATH...` times decode + float conversion (one thread by default).
    struct Bench: ParsableCommand {
        /// Help text (hidden from `gen image --help`).
        static let configuration = CommandConfiguration(
            abstract: "Time decode + conversion to float RGB of files or folders.",
            shouldDisplay: false)

        @Argument(help: "Image files or folders (searched recursively).")
        var paths: [String]

        @Option(help: "Passes over the files; the fastest is reported.")
        var repeats: Int = 3

        @Option(help: "Output channels (1 or 3).")
        var channels: Int = 3

        @Option(help: "Decode files in parallel on this many threads.")
        var threads: Int = 1

        /// Creates the command (ArgumentParser fills it in).
        init() {}

        /// Checks `--threads`, `--repeats` and `--channels`.
        func validate() throws {
            try validateThreads(threads)
            if repeats < 1 { throw ValidationError("--repeats must be at least 1 (got \(repeats))") }
            if channels != 1 && channels != 3 { throw ValidationError("--channels must be 1 or 3 (got \(channels))") }
        }

        /// Decodes every file `repeats` times and prints the fastest pass.
        func run() throws {
            var files: [String] = []
            for p in paths {
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue {
                    files += ImageFolderDataset.listImageFiles(p)
                } else {
                    files.append(p)
                }
            }
            guard !files.isEmpty else { ImageCommand.fail("no files"); throw ExitCode(2) }
            let opts = ImageDecodeOptions(channels: channels)
            var best = Double.infinity
            var pixels = 0
            var errors = 0
            for _ in 0..<max(1, repeats) {
                let start = DispatchTime.now().uptimeNanoseconds
                var px = 0
                var errs = 0
                if threads <= 1 {
                    for f in files {
                        if let im = try? Image(contentsOf: f, options: opts) { px += im.width * im.height } else { errs += 1 }
                    }
                } else {
                    let lock = NSLock()
                    let chunk = (files.count + threads - 1) / threads
                    DispatchQueue.concurrentPerform(iterations: threads) { t in
                        var lp = 0, le = 0
                        for f in files[min(files.count, t * chunk)..<min(files.count, (t + 1) * chunk)] {
                            if let im = try? Image(contentsOf: f, options: opts) { lp += im.width * im.height } else { le += 1 }
                        }
                        lock.lock(); px += lp; errs += le; lock.unlock()
                    }
                }
                let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                best = min(best, secs)
                pixels = px
                errors = errs
            }
            print(String(format: "%d files, %.1f Mpixel, best of %d: %.3f s (%.3f ms/file, %.1f Mpixel/s), %d errors",
                         files.count, Double(pixels) / 1e6, max(1, repeats), best, best * 1000 / Double(files.count),
                         Double(pixels) / 1e6 / best, errors))
        }
    }
}
