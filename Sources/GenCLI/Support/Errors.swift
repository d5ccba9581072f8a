import ArgumentParser
import Foundation
import GenStudio
import GenNN
import GenData
import GenTensor

/// Writes a line to standard error. A failed write (stderr on a full disk, or closed) is
/// ignored: a message that cannot be shown must not stop a run (Foundation's
/// `FileHandle.write` would trap on it).
func printError(_ message: String) {
    writeStandardError(message + "\n")
}

/// Writes `text` to standard error as it is (unbuffered); failures are ignored, as in ``printError(_:)``.
func writeStandardError(_ text: String) {
    let bytes = Array(text.utf8)     // fwrite, not fputs: a NUL in the text is written, not an end
    _ = fwrite(bytes, 1, bytes.count, stderr)
}

/// Writes `text` to standard output (line-buffered, see `GenCommand.main`).
/// - Throws: ``StandardOutputError`` when the write fails (a full disk, a closed descriptor).
func writeStandardOutput(_ text: String) throws {
    errno = 0
    let bytes = Array(text.utf8)     // fwrite, not fputs: generated text may hold NUL characters
    if fwrite(bytes, 1, bytes.count, stdout) < bytes.count || fflush(stdout) != 0 || ferror(stdout) != 0 {
        if errno == EPIPE { endByBrokenPipe() }
        throw StandardOutputError(code: errno)
    }
}

/// Ends gen as killed by SIGPIPE (what a shell reports as 141, silently): a write that failed
/// with EPIPE means SIGPIPE did not end gen (it inherited SIGPIPE ignored), and its output's
/// reader (`gen text sample … | head -c 100`) is gone.
func endByBrokenPipe() -> Never { Interrupt.die(by: SIGPIPE) }

/// Standard output could not be written (e.g. `> /dev/full`, or a closed descriptor): a run
/// failure (exit code 1), since what the command printed is lost.
struct StandardOutputError: Error, CustomStringConvertible {
    /// The `errno` of the failed write (0 when unknown).
    var code: Int32
    /// "writing to standard output failed: No space left on device".
    var description: String {
        "writing to standard output failed" + (code != 0 ? ": " + String(cString: strerror(code)) : "")
    }
}

/// Runs a command body, turning errors into a message on stderr and gen's exit codes:
/// 2 for bad arguments or input (files, checkpoints, options), 1 for failures during the run.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch let e as ValidationError {
        throw e
    } catch {
        if case StudioError.interruptedBeforeFirstStep = error {
            printError("gen: \(describe(error))")     // not an error: the user asked to stop
        } else {
            printError("gen: error: \(describe(error))")
        }
        throw ExitCode(exitCode(for: error))
    }
}

/// A user-facing message for any error.
func describe(_ error: Error) -> String {
    if let e = error as? LocalizedError, let d = e.errorDescription { return d }
    return String(describing: error)
}

/// 2 for input errors, 1 for run failures.
func exitCode(for error: Error) -> Int32 {
    switch error {
    // A failed write (full disk, I/O error) is a run failure, not bad input.
    case let e as CheckpointError:
        if case .writeFailed = e.kind { return 1 }
        return 2
    case let e as ImageError:
        if case .writeFailed = e { return 1 }
        return 2
    case is TextError, is OptimizerError, is DatasetError: return 2
    case let e as PretrainedError:
        switch e.kind {
        case .downloadFailed, .checksumMismatch: return 1
        default: return 2
        }
    case let e as StudioError:
        switch e {
        case .invalidOption, .incompatibleCheckpoint: return 2
        case .cannotCreateFolder, .nonFiniteLoss: return 1
        case .interruptedBeforeFirstStep: return 130
        }
    default: return 1
    }
}

/// Warns on stderr when `folder` holds PNG files named with one of `prefixes` that this command
/// did not write (`written`: file names), e.g. samples 3 and 4 of an earlier `--count 4` in the
/// folder of a `--count 2`. They are not deleted: they may be the user's.
func warnAboutOlderFiles(in folder: URL, prefixes: [String], written: Set<String>, what: (one: String, many: String),
                         notPartOf: String) {
    let stale = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
        .filter { name in prefixes.contains { name.hasPrefix($0) } && name.hasSuffix(".png") && !written.contains(name) }
        .sorted()
    guard let first = stale.first else { return }
    let range = stale.count > 1 ? "\(first) … \(stale[stale.count - 1])" : first
    printError("warning: \(folder.path) also holds \(stale.count) older \(stale.count == 1 ? what.one : what.many) (\(range)) that \(stale.count == 1 ? "is" : "are") not part of \(notPartOf)")
}
