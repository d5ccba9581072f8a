import Foundation
import XCTest
@testable import GenStudio
import GenTensor

final class ZZProbe: XCTestCase {
    func testProbe() throws {
        let dir = try makeStudioTempDir(self)
        let corpus = try writeCorpus(syntheticText(count: 400), in: dir)
        for opt in ["rmsprop", "sgd", "adam"] {
            var bad = tinyConfig(steps: 6)
            bad.optimizer = opt
            bad.learningRate = 3e38
            let rec = RecordingProgress()
            let t = try TextTrainer(corpus: corpus, config: bad, resume: nil, output: dir.appendingPathComponent(opt), arguments: [], progress: rec)
            do { let s = try t.run(); print(opt, "finished", s.trainBitsPerCharacter as Any, s.validationBitsPerCharacter as Any, s.samples.map(\.text)) } catch { print(opt, "threw", error) }
            for e in rec.events { if case .step(let st, _, _, let loss, _, _, _, _, _) = e { print(opt, st, loss) } }
            print(t.currentModel.parameters.map { p in p.scalars.map { abs($0) }.max()! })
        }
    }
}
