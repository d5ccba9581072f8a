import Foundation
import GenStudio
import GenTensor

/// Shows progress on stderr: a live, redrawn line on a terminal; plain lines at most every
/// `plainInterval` seconds otherwise (logs, pipes, CI).
final class ConsoleProgress: ProgressReporter {
    let quiet: Bool
    let isTerminal = isatty(STDERR_FILENO) != 0
    var lastLine = Date.distantPast
    let plainInterval: TimeInterval = 10
    var lineOpen = false

    init(quiet: Bool) { self.quiet = quiet }

    func report(_ event: ProgressEvent) {
        if quiet {
            if case .warning(let m) = event { emit("warning: \(m)") }
            return
        }
        switch event {
        case .info(let m): emit(m)
        case .warning(let m): emit("warning: \(m)")
        case .wrote(let url, let what): emit("wrote \(what): \(url.path)")
        case .metrics(let step, let epoch, let phase, let values):
            let v = values.map { "\($0.0) \(String(format: "%.4f", $0.1))" }.joined(separator: ", ")
            emit("\(phase) \(epoch) step \(step): \(v)")
        case .step(let step, let total, let epoch, let phase, let loss, let unit, let rate, let rateUnit, let elapsed, let eta):
            let now = Date()
            let frac = total.map { " \(String(format: "%5.1f", 100 * Double(step) / Double(max($0, 1))))%" } ?? ""
            let totalText = total.map { "/\($0)" } ?? ""
            let etaText = eta.map { " eta \(clock($0))" } ?? ""
            let line = "step \(step)\(totalText)\(frac) \(phase) \(epoch) loss \(String(format: "%.4f", loss)) \(unit)  \(Self.formatRate(rate)) \(rateUnit)  \(clock(elapsed))\(etaText)"
            if isTerminal {
                if now.timeIntervalSince(lastLine) < 0.1 { return }
                lastLine = now
                writeStandardError("\r\u{1B}[K" + line)
                lineOpen = true
            } else if now.timeIntervalSince(lastLine) >= plainInterval || step == 1 {
                lastLine = now
                emit(line)
            }
        }
    }

    /// A rate with about three significant digits ("0.183", "12.4", "4363"), or "-" before the
    /// first measurement (a rate of 0).
    static func formatRate(_ rate: Double) -> String {
        guard rate > 0 && rate.isFinite else { return "-" }
        if rate >= 100 { return String(format: "%.0f", rate) }
        if rate >= 10 { return String(format: "%.1f", rate) }
        if rate >= 1 { return String(format: "%.2f", rate) }
        return String(format: "%.3g", rate)
    }

    private func emit(_ message: String) {
        if lineOpen { writeStandardError("\r\u{1B}[K"); lineOpen = false }
        writeStandardError(message + "\n")
    }

    private func clock(_ t: TimeInterval) -> String {
        let s = Int(t.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// Set when the user presses Ctrl-C once (or the process gets SIGTERM); training stops cleanly at the
/// next step with a checkpoint, and gen then ends as killed by that signal (a shell reports 130 for
/// SIGINT, 143 for SIGTERM, and a script's loop stops, as for any interrupted program). A second
/// signal aborts at once. A stop requested before the first training step (while the data loads)
/// writes nothing.
///
/// Commands without a clean stop (dream, sample, convert, ...) get ``installImmediate()`` instead:
/// the first signal ends gen at once, without a half-written file or an empty folder of its own.
/// An inherited "ignore SIGINT" (a background job of a shell script) is kept by both.
enum Interrupt {
    nonisolated(unsafe) static var requested = false
    nonisolated(unsafe) static var installed = false
    /// The signal that asked for the stop (SIGINT, SIGTERM, or SIGPIPE for a training run).
    nonisolated(unsafe) static var signalNumber: Int32 = SIGINT

    /// "gen: interrupted\n", allocated before any handler can run (the handler must not allocate).
    nonisolated(unsafe) static let abortMessage: UnsafeMutablePointer<CChar> = {
        let text = Array("gen: interrupted\n".utf8CString)
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: text.count)
        p.initialize(from: text, count: text.count)
        return p
    }()

    /// Ends the process now: removes the pending temporary file and the empty run folder, says
    /// so on stderr, and dies by `signal` (the shell's status is 128 + signal; a script stops, see
    /// https://www.cons.org/cracauer/sigint.html). Async-signal-safe (unlink, rmdir, write,
    /// signal, raise, _exit).
    static func abortNow(_ signal: Int32, announce: Bool) -> Never {
        PendingTemporaryFile.removeOnAbort()    // no half-written .tmp file left behind
        PendingCreatedFolder.removeOnAbort()    // nor an empty run folder
        if announce { _ = write(2, abortMessage, 17) }
        die(by: signal)
    }

    /// Ends the process as killed by `signal`: its default action, unblocked (a handler runs with
    /// its own signal blocked), then raised; `_exit(128 + signal)` should it return.
    /// Async-signal-safe.
    static func die(by signal: Int32) -> Never {
        Glibc.signal(signal, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, signal)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        raise(signal)
        _exit(128 + signal)
    }

    /// After a clean stop: ends the process as killed by the signal that asked for it.
    static func endAsSignalled() -> Never {
        fflush(stdout)
        die(by: signalNumber)
    }

    /// The training handler: the first signal asks for a clean stop, the second ends gen at once.
    /// SIGPIPE (the reader of stdout or stderr went: `gen … 2>&1 | head`, or `| tee` ended by the
    /// same Ctrl-C) asks for the clean stop too, and is never the second signal: every later write
    /// raises it again, and the run must still write its checkpoint (those writes then fail with
    /// EPIPE and are dropped). The run then ends by the first signal (141 for SIGPIPE alone).
    static func install() {
        guard !installed else { return }
        installed = true
        prepare()
        handle { sig in
            if Interrupt.requested { Interrupt.abortNow(sig, announce: false) }
            Interrupt.signalNumber = sig
            Interrupt.requested = true
        }
        signal(SIGPIPE, { sig in
            if !Interrupt.requested { Interrupt.signalNumber = sig; Interrupt.requested = true }
        })
    }

    /// The handler of commands that have no clean stop: the first signal ends gen at once.
    /// ``install()`` replaces it.
    static func installImmediate() {
        guard !installed else { return }
        prepare()
        handle { sig in Interrupt.abortNow(sig, announce: true) }
    }

    private static func prepare() {
        PendingTemporaryFile.prepare()      // the buffers exist before any signal: no allocation in the handler
        PendingCreatedFolder.prepare()
        _ = abortMessage
    }

    /// Installs `handler` for SIGTERM, and for SIGINT unless the process inherited it ignored.
    private static func handle(_ handler: @convention(c) (Int32) -> Void) {
        let previous = signal(SIGINT, handler)
        if unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { signal(SIGINT, SIG_IGN) }
        signal(SIGTERM, handler)
    }
}
