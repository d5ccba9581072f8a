import ArgumentParser
import Foundation
import GenStudio

/// The root command: `gen <generator> [action] [arguments] [options]`.
public struct GenCommand: ParsableCommand {
    /// The command's name, summary and its subcommands (one per generator, plus image, bench,
    /// weights and classify tools).
    public static let configuration = CommandConfiguration(
        commandName: "gen",
        abstract: "A studio for generative deep learning: text, style, dream, VAE and GAN.",
        subcommands: [TextCommand.self, StyleCommand.self, VAECommand.self, ImageCommand.self, GANCommand.self, DreamCommand.self, BenchCommand.self, WeightsCommand.self, ClassifyCommand.self]
    )
    /// A root command with no options (ArgumentParser fills in the chosen subcommand).
    public init() {}

    /// gen's exit code for an error: ArgumentParser's usage and validation errors (its
    /// `validationFailure`, EX_USAGE = 64 on Linux) become 2, gen's code for bad arguments or input;
    /// `ExitCode`s thrown by commands (1 or 2, see `reportingErrors`) pass through.
    public static func exitCode(for error: Error) -> ExitCode {
        let code = argumentParserExitCode(Self.self, error)
        return code == .validationFailure ? ExitCode(2) : code
    }

    /// Parses and runs a command, exiting with ``exitCode(for:)`` on error (ArgumentParser's own
    /// `main` would exit with 64 for bad arguments).
    public static func main(_ arguments: [String]? = nil) -> Never {
        // Ctrl-C ends gen at once, leaving no temporary file or empty folder of its own; the
        // training commands replace this with their clean stop.
        Interrupt.installImmediate()
        // A closed standard descriptor (`gen … >&-`) would be reused by the next file gen opens,
        // and printed text would land in that file (a checkpoint, a picture). Each closed one is
        // pointed at /dev/null instead; a closed stdout is then reported as a failed write.
        let stdoutWasClosed = fcntl(STDOUT_FILENO, F_GETFD) == -1
        for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] where fcntl(fd, F_GETFD) == -1 {
            let null = open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY)
            if null >= 0 && null != fd { dup2(null, fd); close(null) }
        }
        // Line-buffered stdout: results printed one per line (classify, image info) reach a pipe
        // as they are printed, so an interrupted command does not lose them in the stdio buffer.
        setvbuf(stdout, nil, _IOLBF, 0)
        do {
            var command = try parseAsRoot(joiningNegativeValues(arguments ?? Array(CommandLine.arguments.dropFirst())))
            try command.run()
            // What the command printed must have reached stdout: `gen image info x.png > /dev/full`
            // would otherwise lose its output and exit 0.
            errno = 0
            let flushFailed = fflush(stdout) != 0
            if flushFailed || ferror(stdout) != 0 || stdoutWasClosed {
                if Interrupt.requested { Interrupt.endAsSignalled() }
                var code = flushFailed ? errno : stdoutWasClosed ? EBADF : 0
                if code == 0 {
                    // The failure came earlier, in a print; a pipe whose reader went shows POLLERR.
                    var p = pollfd(fd: STDOUT_FILENO, events: Int16(POLLOUT), revents: 0)
                    if poll(&p, 1, 0) == 1 && p.revents & Int16(POLLERR) != 0 { code = EPIPE }
                }
                if code == EPIPE { endByBrokenPipe() }
                printError("gen: error: \(StandardOutputError(code: code))")
                Foundation.exit(1)
            }
            // A training run stopped by Ctrl-C (or SIGTERM) ends cleanly with a checkpoint, then
            // ends as killed by that signal (a shell sees 130 or 143), so scripts and loops stop.
            if Interrupt.requested { Interrupt.endAsSignalled() }
            Foundation.exit(0)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if !message.isEmpty {
                if code == .success {
                    print(message)
                } else {
                    writeStandardError(message + "\n")
                }
            }
            if Interrupt.requested { Interrupt.endAsSignalled() }
            Foundation.exit(code.rawValue)
        }
    }
}

/// `--name -1` becomes `--name=-1`: ArgumentParser reads a value that starts with a dash as the
/// next option and reports "Missing value for '--name'", where the user should hear that the
/// number is out of range. Applies to long options without `=` followed by a negative number
/// (digits, `.5`, `inf` or `nan` after the minus sign); everything after `--` is left alone.
func joiningNegativeValues(_ arguments: [String]) -> [String] {
    var out: [String] = []
    var i = 0
    while i < arguments.count {
        let a = arguments[i]
        if a == "--" { out += arguments[i...]; break }
        if a.hasPrefix("--"), a.count > 2, !a.contains("="), i + 1 < arguments.count, isNegativeNumber(arguments[i + 1]) {
            out.append(a + "=" + arguments[i + 1])
            i += 2
            continue
        }
        out.append(a)
        i += 1
    }
    return out
}

/// Whether `s` reads as a negative number: `-` then a digit, `.digit`, `inf` or `nan`.
private func isNegativeNumber(_ s: String) -> Bool {
    guard s.hasPrefix("-"), !s.hasPrefix("--") else { return false }
    let rest = s.dropFirst().lowercased()
    if let c = rest.first, c.isNumber { return true }
    if rest.hasPrefix("."), rest.dropFirst().first?.isNumber == true { return true }
    return rest.hasPrefix("inf") || rest == "nan"
}

/// ArgumentParser's exit code for `error` (the protocol extension, not ``GenCommand/exitCode(for:)``).
private func argumentParserExitCode<C: ParsableCommand>(_: C.Type, _ error: Error) -> ExitCode { C.exitCode(for: error) }
