import XCTest
@testable import GenCLI

/// The progress line's rate keeps about three significant digits: a GAN at 0.18 steps/s must not
/// read "0 steps/s".
final class ConsoleProgressTests: XCTestCase {
    func testRateFormatting() {
        XCTAssertEqual(ConsoleProgress.formatRate(0), "-")
        XCTAssertEqual(ConsoleProgress.formatRate(.nan), "-")
        XCTAssertEqual(ConsoleProgress.formatRate(0.1834), "0.183")
        XCTAssertEqual(ConsoleProgress.formatRate(0.004567), "0.00457")
        XCTAssertEqual(ConsoleProgress.formatRate(3.14159), "3.14")
        XCTAssertEqual(ConsoleProgress.formatRate(12.44), "12.4")
        XCTAssertEqual(ConsoleProgress.formatRate(4363.2), "4363")
    }
}
