// config.json: the shared fields of all-MiniLM-L6-v2's real config, defaults, and clear errors.
import Foundation
import TesseraFormats
import XCTest

final class HFConfigTests: XCTestCase {
    func testReadsARealConfig() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Goldens/minilm-config.json").path
        let config = try HFConfig(path: path)
        XCTAssertEqual(config.modelType, "bert")
        XCTAssertEqual(config.architectures, ["BertModel"])
        XCTAssertEqual(config.hiddenSize, 384)
        XCTAssertEqual(config.numHiddenLayers, 6)
        XCTAssertEqual(config.numAttentionHeads, 12)
        XCTAssertEqual(config.numKeyValueHeads, 12)
        XCTAssertEqual(config.headDim, 32)
        XCTAssertEqual(config.intermediateSize, 1536)
        XCTAssertEqual(config.vocabSize, 30522)
        XCTAssertEqual(config.layerNormEps, 1e-12)
        XCTAssertEqual(config.hiddenAct, "gelu")
        XCTAssertEqual(config.raw["type_vocab_size"]?.int, 2)
        XCTAssertEqual(config.raw["use_cache"]?.bool, true)
    }

    func testGQAAndErrors() throws {
        let qwen = #"{"model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,"#
            + #" "num_key_value_heads": 2, "vocab_size": 151936, "rope_theta": 1000000.0, "tie_word_embeddings": true,"#
            + #" "rope_scaling": {"type": "yarn", "factor": 4.0}}"#
        let config = try HFConfig(data: Data(qwen.utf8))
        XCTAssertEqual(config.headDim, 64)
        XCTAssertEqual(config.numKeyValueHeads, 2)
        XCTAssertEqual(config.ropeTheta, 1e6)
        XCTAssertTrue(config.tieWordEmbeddings)
        XCTAssertEqual(config.raw["rope_scaling"], .object(["type": .string("yarn"), "factor": .number(4)]))
        XCTAssertThrowsError(try HFConfig(data: Data("[1]".utf8)))
        XCTAssertThrowsError(try HFConfig(data: Data(#"{"model_type": "llama"}"#.utf8))) {
            XCTAssertTrue("\($0)".contains("hidden_size"), "\($0)")
        }
        XCTAssertThrowsError(try HFConfig(data: Data(#"{"model_type": "x", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 3, "num_key_value_heads": 2, "vocab_size": 5, "head_dim": 4}"#.utf8)))
        XCTAssertThrowsError(try HFConfig(path: "/nonexistent/config.json"))
    }
}
