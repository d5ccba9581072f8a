import XCTest
@testable import GenStudio

/// The progress rate counts only time inside training steps (evaluations between steps left out).
final class ThroughputMeterTests: XCTestCase {
    func testRateIsZeroUntilTheFirstWindowCloses() {
        var meter = ThroughputMeter()
        for _ in 0..<19 { meter.record(units: 128, seconds: 0.1) }    // 1.9 s, 19 steps
        XCTAssertEqual(meter.rate, 0)
        XCTAssertNil(meter.eta(remaining: 1000))
        meter.record(units: 128, seconds: 0.1)                         // 2.0 s: the window closes
        XCTAssertEqual(meter.rate, 1280, accuracy: 1e-6)
        XCTAssertEqual(meter.eta(remaining: 2560) ?? -1, 2, accuracy: 1e-9)
        XCTAssertEqual(meter.eta(remaining: -5) ?? -1, 0)
    }

    func testFiftyFastStepsCloseAWindowAndPausesBetweenStepsDoNotCount() {
        var meter = ThroughputMeter()
        // 50 steps of 10 ms; the caller does not record the (long) evaluation after them.
        for _ in 0..<50 { meter.record(units: 64, seconds: 0.01) }
        XCTAssertEqual(meter.rate, 6400, accuracy: 1e-6)
        // The next window's rate reflects only its own steps.
        for _ in 0..<50 { meter.record(units: 64, seconds: 0.02) }
        XCTAssertEqual(meter.rate, 3200, accuracy: 1e-6)
    }

    func testZeroDurationStepsNeverGiveAnInfiniteRate() {
        var meter = ThroughputMeter()
        for _ in 0..<50 { meter.record(units: 1, seconds: 0) }
        XCTAssertEqual(meter.rate, 0)
        for _ in 0..<50 { meter.record(units: 1, seconds: -1) }     // a clock step backwards
        XCTAssertTrue(meter.rate.isFinite)
    }
}
