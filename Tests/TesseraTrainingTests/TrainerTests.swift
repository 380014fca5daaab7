// The trainer's contracts: a resumed run continues exactly where it stopped (same weights as an
// uninterrupted run), the schedule and SGD follow their formulas, the data split is by file, and bad
// configurations are typed errors.
import Foundation
import TesseraNN
import TesseraTraining
import XCTest

final class TrainerTests: XCTestCase {
    /// A corpus of three small "plays" in a temporary directory.
    func corpus() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-train-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let lines = ["To be, or not to be, that is the question:\n", "Whether 'tis nobler in the mind to suffer\n",
                     "The slings and arrows of outrageous fortune,\n", "Or to take arms against a sea of troubles\n"]
        for (i, name) in ["a.txt", "b.txt", "c.txt"].enumerated() {
            try String(repeating: lines[i] + lines[(i + 1) % 4], count: 20).write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        }
        return dir
    }

    func config(_ dir: String, output: String) -> TrainingConfig {
        var model = GPTConfig(vocabularySize: 0, layers: 2, heads: 2, embedding: 16, blockSize: 16)
        model.dropout = 0.1
        var c = TrainingConfig(model: model, dataDirectory: dir, validation: ["c.txt"], output: output)
        c.batchSize = 3; c.accumulation = 2; c.steps = 6; c.warmup = 2; c.evalInterval = 3; c.evalBatches = 2; c.checkpointInterval = 3
        return c
    }

    func testResumingContinuesExactlyWhereTheRunStopped() throws {
        let dir = try corpus()
        let straight = try Trainer(config: config(dir, output: dir + "/straight"))
        try straight.run { _ in }
        let first = try Trainer(config: config(dir, output: dir + "/resumed"))
        try first.run(until: 3) { _ in }
        let second = try Trainer(config: config(dir, output: dir + "/resumed"))
        try second.resume()
        XCTAssertEqual(second.step, 3)
        try second.run { _ in }
        for (a, b) in zip(straight.model.parameters, second.model.parameters) {
            XCTAssertEqual(a.array, b.array, "\(a.name) after 3 + 3 steps equals 6 straight steps")
        }
        XCTAssertEqual(second.log.map(\.step), Array(1...6))
        XCTAssertEqual(straight.log.last!.trainLoss, second.log.last!.trainLoss)
        XCTAssertLessThan(straight.log.last!.trainLoss, straight.log.first!.trainLoss, "the loss falls")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/straight/log.csv"))
    }

    func testRotaryGPTAndByteTokensTrain() throws {
        let dir = try corpus()
        var c = config(dir, output: dir + "/rotary")
        c.model.positions = "rotary"
        c.model.dropout = 0
        c.tokenizer = "bytes"
        c.steps = 30; c.accumulation = 1; c.learningRate = 3e-3; c.evalInterval = 30; c.checkpointInterval = 30
        let trainer = try Trainer(config: c)
        XCTAssertEqual(trainer.model.config.vocabularySize, 257)
        XCTAssertNil(trainer.model.parameter(named: "transformer.wpe.weight"), "no learned position table")
        try trainer.run { _ in }
        XCTAssertLessThan(trainer.log.last!.trainLoss, 0.85 * trainer.log.first!.trainLoss)  // measured 5.52 -> 4.26
    }

    func testDataIsSplitByFile() throws {
        let dir = try corpus()
        let data = try TextDataset(directory: dir, validation: ["c.txt"])
        XCTAssertEqual(data.trainFiles, ["a.txt", "b.txt"])
        XCTAssertEqual(data.validationFiles, ["c.txt"])
        XCTAssertEqual(data.vocabulary.decode(try data.vocabulary.encode("To be")), "To be")
        let (x, y) = TextDataset.batch(from: data.train, batch: 2, tokens: 5, seed: 1, step: 0)
        XCTAssertEqual(x.count, 10)
        XCTAssertEqual(Array(x[1..<5]), Array(y[0..<4]), "targets are the inputs shifted by one")
    }

    func testScheduleAndSGDFollowTheirFormulas() {
        let s = LearningRateSchedule(maxLR: 1, minLR: 0.1, warmup: 4, decayIters: 14)
        XCTAssertEqual(s.rate(at: 0), 0.25)
        XCTAssertEqual(s.rate(at: 3), 1)
        XCTAssertEqual(s.rate(at: 9), 0.55, accuracy: 1e-6)   // halfway down the cosine
        XCTAssertEqual(s.rate(at: 14), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 100), 0.1)
        // SGD with momentum 0.9 on f(p) = p²/2 (gradient p): b₁ = g₁, b₂ = 0.9 b₁ + g₂.
        let p = Variable([1], shape: [1], requiresGrad: true)
        let sgd = SGD(parameters: [p], learningRate: 0.1, momentum: 0.9)
        for _ in 0..<2 {
            p.zeroGrad()
            scale(multiply(p, p), 0.5).backward()
            sgd.update()
        }
        // p₁ = 1 - 0.1·1 = 0.9; b₂ = 0.9·1 + 0.9 = 1.8; p₂ = 0.9 - 0.18 = 0.72
        XCTAssertEqual(p.scalar, 0.72, accuracy: 1e-6)
    }

    func testBadConfigurationsAreTypedErrors() throws {
        let dir = try corpus()
        var c = config(dir, output: dir + "/x")
        c.model.heads = 3
        XCTAssertThrowsError(try Trainer(config: c)) { error in
            guard case .invalidConfig? = error as? TrainingError else { return XCTFail("\(error)") }
        }
        c = config(dir, output: dir + "/x")
        c.validation = ["missing.txt"]
        XCTAssertThrowsError(try Trainer(config: c)) { error in
            XCTAssertEqual(error as? TrainingError, .data("validation file missing.txt is not in \(dir)"))
        }
        let t = try Trainer(config: config(dir, output: dir + "/empty"))
        XCTAssertThrowsError(try t.resume(), "no checkpoint to resume from")
    }
}
