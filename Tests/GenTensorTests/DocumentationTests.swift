import Foundation
import XCTest

/// The standard that every public declaration has a doc comment, checked over Sources/: a line
/// that declares something `public` (or `open`) must follow a `///` line, attributes in between.
final class DocumentationTests: XCTestCase {
    func testEveryPublicDeclarationHasADocComment() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let sources = root.appendingPathComponent("Sources")
        guard let files = FileManager.default.enumerator(atPath: sources.path) else { return XCTFail("no Sources folder at \(sources.path)") }
        let declaration = try NSRegularExpression(pattern:
            #"^(@[\w.]+(\(.*?\))?\s+)*((nonisolated\(unsafe\)|static|final|override|mutating|indirect)\s+)*(public|open)\s+(?!import\b)"#)
        var missing: [String] = []
        var checked = 0
        for case let file as String in files where file.hasSuffix(".swift") {
            let lines = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
                .components(separatedBy: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            for (i, line) in lines.enumerated()
            where declaration.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil {
                checked += 1
                var j = i - 1
                while j >= 0 && lines[j].hasPrefix("@") { j -= 1 }
                if j < 0 || !(lines[j].hasPrefix("///") || lines[j].hasSuffix("*/")) {
                    missing.append("Sources/\(file):\(i + 1): \(line.prefix(100))")
                }
            }
        }
        XCTAssertGreaterThan(checked, 100, "the scan found too few public declarations to be working")
        XCTAssertTrue(missing.isEmpty, "public declarations without a doc comment:\n" + missing.sorted().joined(separator: "\n"))
    }
}
