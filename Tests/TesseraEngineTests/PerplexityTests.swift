// `tessera perplexity` against llama.cpp's llama-perplexity on the same model and text:
// SmolLM2-135M-Instruct Q4_1 on the first 9,000 bytes of Hamlet (public domain, Resources/), -c 128:
//   llama-perplexity -m SmolLM2-135M-Instruct.Q4_1.gguf -f hamlet-excerpt.txt -c 128 -t 2
//   -> "calculating perplexity over 21 chunks", "Final estimate: PPL = 43.3467 +/- 4.03338"
// (llama.cpp 0.3.36's vendored copy). llama.cpp multiplies with 8-bit activations, Tessera's prefill
// with f32 ones, so the figures agree to a fraction of a percent rather than exactly.
import Foundation
import TesseraEngine
import XCTest

final class PerplexityTests: XCTestCase {
    func testPerplexityAgreesWithLlamaCpp() throws {
        let path = ModelStore.modelDirectory + "/" + ModelSpec.smolLM2.fileName
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) not in the cache; run `tessera fetch`") }
        let loaded = try LoadedModel.load(path: path)
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources/hamlet-excerpt.txt")
        let text = try String(contentsOf: url, encoding: .utf8)
        let tokens = loaded.tokenizer.encode(text, addSpecialTokens: true)
        let result = try Perplexity.evaluate(model: loaded.model, tokens: tokens, context: 128,
                                             bos: loaded.tokenizer.addsBOS ? loaded.tokenizer.bosID : nil)
        XCTAssertEqual(result.afterChunk.count, 21)
        XCTAssertEqual(result.scoredTokens, 21 * 63)
        XCTAssertEqual(result.perplexity, 43.3467, accuracy: 43.3467 * 0.01)
        XCTAssertEqual(result.error, 4.03338, accuracy: 4.03338 * 0.02)
        print(String(format: "perplexity %.4f +/- %.5f (llama.cpp 43.3467 +/- 4.03338)", result.perplexity, result.error))

        XCTAssertThrowsError(try Perplexity.evaluate(model: loaded.model, tokens: Array(tokens.prefix(200)), context: 128, bos: nil)) { error in
            XCTAssertTrue("\(error)".contains("at least 256"), "\(error)")
        }
    }
}
