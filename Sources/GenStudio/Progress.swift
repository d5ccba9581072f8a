import Foundation

/// What a generator tells its caller while it runs. Generators never print; the command line
/// (or a test) decides how to show these.
public enum ProgressEvent {
    /// A line of information (settings, resumed state, files written).
    case info(String)
    /// A warning the user should see (e.g. a skipped input, a collapsing loss).
    case warning(String)
    /// Training progress after an optimizer step.
    /// - step: steps done so far; totalSteps: the planned total when known.
    /// - loss: the step's training loss in the generator's unit; rate: items per second.
    /// - epoch: the 1-based number of the current pass, named by `phase` ("epoch" for training,
    ///   "octave" for DeepDream, "level" for multi-scale style transfer).
    case step(step: Int, totalSteps: Int?, epoch: Int, phase: String = "epoch", loss: Double, unit: String, rate: Double,
              rateUnit: String, elapsed: TimeInterval, eta: TimeInterval?)
    /// A finished evaluation or epoch (or octave, level: `phase`): named metrics.
    case metrics(step: Int, epoch: Int, phase: String = "epoch", values: [(String, Double)])
    /// A file was written (checkpoint, sample, picture).
    case wrote(URL, what: String)
}

/// Receives ``ProgressEvent``s. Implementations must be cheap: events arrive every step.
public protocol ProgressReporter: AnyObject {
    /// Handles one event.
    func report(_ event: ProgressEvent)
}

/// Discards all events (tests, `--quiet`).
public final class SilentProgress: ProgressReporter {
    /// A reporter that prints nothing.
    public init() {}
    /// Ignores `event`.
    public func report(_ event: ProgressEvent) {}
}
