// Every model family against HF transformers in fp32: tiny random models (Goldens/tiny-*, written by
// scripts/goldens/make_model_goldens.py) loaded from their HF directories, logits at every position
// within 1e-4 of the largest logit, incremental decoding equal to the full pass, and greedy tokens
// equal to transformers' generate().
import Foundation
import TesseraKVCache
import TesseraModels
import XCTest

struct TinyGolden: Decodable {
    let family: String
    let inputs: [[Int32]]
    let logits: [[[Float]]]
    struct Greedy: Decodable { let prompt: [Int32]; let tokens: [Int32] }
    let greedy: Greedy
}

func goldensDirectory() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Goldens")
}

final class TinyModelTests: XCTestCase {
    static let families = ["tiny-llama", "tiny-smollm", "tiny-mistral", "tiny-qwen2", "tiny-gemma3", "tiny-gpt2"]

    func load(_ name: String) throws -> (DecoderModel, TinyGolden) {
        let dir = goldensDirectory().appendingPathComponent(name)
        let golden = try JSONDecoder().decode(TinyGolden.self, from: Data(contentsOf: dir.appendingPathComponent("golden.json")))
        let model = try ModelRegistry.load(path: dir.path, precision: .exact)
        return (model, golden)
    }

    func testLogitsEqualTransformers() throws {
        for name in Self.families {
            let (model, golden) = try load(name)
            for (input, expected) in zip(golden.inputs, golden.logits) {
                let logits = try model.forward(input, cache: model.makeCache(), logits: .all)
                let vocab = model.config.vocabularySize
                var worst: Float = 0
                for (t, row) in expected.enumerated() {
                    let scale = max(1, row.map(abs).max()!)
                    for v in 0..<vocab { worst = max(worst, abs(logits[t * vocab + v] - row[v]) / scale) }
                }
                XCTAssertLessThan(worst, 1e-4, "\(name), \(input.count) tokens: max logit error \(worst) (relative to the largest logit)")
            }
        }
    }

    /// Prefill of a prefix, then one token at a time (and a chunk), gives the full pass's logits.
    func testIncrementalDecodingEqualsTheFullPass() throws {
        for name in Self.families {
            let (model, golden) = try load(name)
            let input = golden.inputs[0], vocab = model.config.vocabularySize
            let full = try model.forward(input, cache: model.makeCache(), logits: .all)
            let cache = try model.makeCache()
            var rows = try model.forward(Array(input[..<5]), cache: cache, logits: .all)
            rows += try model.forward(Array(input[5..<9]), cache: cache, logits: .all)
            for t in 9..<input.count { rows += try model.forward([input[t]], cache: cache, logits: .all) }
            XCTAssertEqual(cache.length, input.count)
            var worst: Float = 0
            for i in 0..<full.count { worst = max(worst, abs(full[i] - rows[i])) }
            XCTAssertLessThan(worst, 1e-4, "\(name): incremental vs full, max difference \(worst)")
            _ = vocab
        }
    }

    func testGreedyTokensEqualTransformers() throws {
        for name in Self.families {
            let (model, golden) = try load(name)
            let cache = try model.makeCache()
            var logits = try model.forward(golden.greedy.prompt, cache: cache)
            var tokens: [Int32] = []
            for _ in golden.greedy.tokens.indices {
                var best = 0
                for i in 1..<logits.count where logits[i] > logits[best] { best = i }
                tokens.append(Int32(best))
                logits = try model.forward([Int32(best)], cache: cache)
            }
            XCTAssertEqual(tokens, golden.greedy.tokens, name)
        }
    }

    /// The fast path on a float checkpoint is the dense path; quantising weights is the real-model tests' job.
    func testFamiliesAreReadFromTheirConfigs() throws {
        let (gemma, _) = try load("tiny-gemma3")
        XCTAssertEqual(gemma.config.localLayers, [true, false, true, false])
        XCTAssertEqual(gemma.config.slidingWindow, 8)
        XCTAssertTrue(gemma.config.queryKeyNorm && gemma.config.sandwichNorms)
        let (mistral, _) = try load("tiny-mistral")
        XCTAssertEqual(mistral.config.localLayers, [Bool](repeating: true, count: mistral.config.layerCount))
        let (gpt2, _) = try load("tiny-gpt2")
        XCTAssertTrue(gpt2.config.learnedPositions)
        XCTAssertNil(gpt2.config.rope)
    }

    func testKVCacheMemoryAccounting() throws {
        let (model, golden) = try load("tiny-llama")
        let c = model.config
        let cache = model.makeCache(maxTokens: 100)
        XCTAssertEqual(cache.bytesPerToken, 2 * c.layerCount * c.kvHeadCount * c.headDim * 4)
        _ = try model.forward(golden.inputs[0], cache: cache)
        XCTAssertGreaterThanOrEqual(cache.allocatedBytes, golden.inputs[0].count * cache.bytesPerToken)
        XCTAssertEqual(cache.tokens(fittingBytes: 10 * cache.bytesPerToken), 10)
        XCTAssertGreaterThan(model.matrixBytes, 0)
    }

    func testBadInputsAreTypedErrors() throws {
        let (model, _) = try load("tiny-llama")
        XCTAssertThrowsError(try model.forward([999], cache: model.makeCache())) { error in
            XCTAssertEqual(error as? ModelError, .invalidToken(999, vocabularySize: 256))
        }
        let small = model.makeCache(maxTokens: 4)
        XCTAssertThrowsError(try model.forward([1, 2, 3, 4, 5], cache: small)) { error in
            XCTAssertEqual(error as? ModelError, .promptTooLong(tokens: 5, limit: 4))
        }
        XCTAssertThrowsError(try ModelRegistry.load(path: "/nonexistent/model.gguf")) { error in
            guard case .cannotOpen = error as? ModelError else { return XCTFail("\(error)") }
        }
        // An unknown architecture names the supported ones.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-unknown-arch")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try #"{"model_type": "mamba", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1, "vocab_size": 8}"#
            .write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ModelRegistry.load(path: dir.path)) { error in
            guard case .unknownArchitecture("mamba", let supported)? = error as? ModelError else { return XCTFail("\(error)") }
            XCTAssertTrue(supported.contains("llama") && supported.contains("gemma3"))
        }
    }
}
