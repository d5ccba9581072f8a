import Foundation
import XCTest
import GenTensor
import GenData
@testable import GenStudio

/// Training states from checkpoints written before the epoch loss sums or the data fingerprints
/// were kept still load.
final class TrainingStateCompatibilityTests: XCTestCase {
    /// `state` encoded as JSON without `keys`, decoded again.
    func withoutKeys<T: Codable>(_ state: T, _ keys: [String]) throws -> T {
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(state)) as? [String: Any])
        for k in keys { XCTAssertNotNil(object.removeValue(forKey: k), "no key \(k)") }
        return try JSONDecoder().decode(T.self, from: JSONSerialization.data(withJSONObject: object))
    }

    func testTextStateWithoutEpochSums() throws {
        var s = TextTrainingState(rng: RandomGenerator(seed: 3))
        s.step = 17; s.epoch = 2; s.batchInEpoch = 4; s.epochLossSum = 12.5; s.epochLossCount = 5
        XCTAssertEqual(try JSONDecoder().decode(TextTrainingState.self, from: JSONEncoder().encode(s)), s)
        let old = try withoutKeys(s, ["epochLossSum", "epochLossCount"])
        XCTAssertEqual(old.step, 17); XCTAssertEqual(old.batchInEpoch, 4); XCTAssertEqual(old.rng, s.rng)
        XCTAssertEqual(old.epochLossSum, 0); XCTAssertEqual(old.epochLossCount, 0)
    }

    func testVAEStateWithoutEpochSums() throws {
        var s = VAETrainingState(position: DataPosition(seed: 5), rng: RandomGenerator(seed: 4))
        s.step = 9; s.epoch = 1; s.elapsed = 3.5; s.epochLossSum = 1234.5; s.epochImages = 96
        XCTAssertEqual(try JSONDecoder().decode(VAETrainingState.self, from: JSONEncoder().encode(s)), s)
        let old = try withoutKeys(s, ["epochLossSum", "epochImages"])
        XCTAssertEqual(old.step, 9); XCTAssertEqual(old.elapsed, 3.5); XCTAssertEqual(old.position, s.position)
        XCTAssertEqual(old.epochLossSum, 0); XCTAssertEqual(old.epochImages, 0)
    }

    func testGANStateWithoutLogWindow() throws {
        var s = GANTrainingState(rng: RandomGenerator(seed: 2), data: DataPosition(seed: 9), dataCount: 40)
        s.step = 12; s.elapsed = 1.5
        s.logWindow = [GANStepLosses(discriminatorReal: 0.7, discriminatorFake: 0.6, generator: 0.9, discriminatorExcess: 0.1)]
        XCTAssertEqual(try JSONDecoder().decode(GANTrainingState.self, from: JSONEncoder().encode(s)), s)
        let old = try withoutKeys(s, ["logWindow"])
        XCTAssertEqual(old.step, 12); XCTAssertEqual(old.dataCount, 40); XCTAssertEqual(old.data, s.data)
        XCTAssertEqual(old.logWindow, [])
    }

    /// States keep their data fingerprint; without it (older checkpoints) it is nil and the rest loads.
    func testStatesWithoutDataFingerprint() throws {
        let text = DataFingerprint(characters: 1_234_567, hash: 0xABCD)
        XCTAssertEqual(text.description, "1,234,567 characters, fingerprint 000000000000abcd")
        let images = DataFingerprint(images: 60_000, size: 28, channels: 1, hash: 1)
        XCTAssertEqual(images.description, "60,000 images of 28x28x1, fingerprint 0000000000000001")

        var t = TextTrainingState(rng: RandomGenerator(seed: 3))
        t.step = 5; t.dataFingerprint = text
        XCTAssertEqual(try JSONDecoder().decode(TextTrainingState.self, from: JSONEncoder().encode(t)), t)
        let oldText = try withoutKeys(t, ["dataFingerprint"])
        XCTAssertNil(oldText.dataFingerprint); XCTAssertEqual(oldText.step, 5)

        var v = VAETrainingState(position: DataPosition(seed: 5), rng: RandomGenerator(seed: 4))
        v.step = 6; v.dataFingerprint = images
        XCTAssertEqual(try JSONDecoder().decode(VAETrainingState.self, from: JSONEncoder().encode(v)), v)
        let oldVAE = try withoutKeys(v, ["dataFingerprint"])
        XCTAssertNil(oldVAE.dataFingerprint); XCTAssertEqual(oldVAE.step, 6)

        var g = GANTrainingState(rng: RandomGenerator(seed: 2), data: DataPosition(seed: 9), dataCount: 40)
        g.step = 7; g.dataFingerprint = images
        XCTAssertEqual(try JSONDecoder().decode(GANTrainingState.self, from: JSONEncoder().encode(g)), g)
        let oldGAN = try withoutKeys(g, ["dataFingerprint"])
        XCTAssertNil(oldGAN.dataFingerprint); XCTAssertEqual(oldGAN.step, 7); XCTAssertEqual(oldGAN.dataCount, 40)
    }
}
