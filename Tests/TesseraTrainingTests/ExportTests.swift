// A trained GPT exported as a GPT-2 directory is the same model to the inference engine: the logits of
// `DecoderModel` (loaded by the model registry, as `tessera generate --model DIR` loads it) equal the
// training GPT's at every position, and the tokenizer.json written beside it encodes as the trainer did.
import Foundation
import TesseraModels
import TesseraNN
import TesseraTokenizers
import TesseraTraining
import XCTest

final class ExportTests: XCTestCase {
    func testExportedGPTLoadsForInferenceWithTheSameLogits() throws {
        let bytes = try TextEncoding.named("bytes") { "" }
        guard case .tokenizer(let tokenizer, let json) = bytes else { return XCTFail("bytes is a tokenizer") }
        XCTAssertEqual(tokenizer.vocabularySize, 257)
        var config = GPTConfig(vocabularySize: 257, layers: 2, heads: 4, embedding: 32, blockSize: 40)
        config.activation = "gelu"
        let model = try GPT(config: config, seed: 9)
        // Perturb the LayerNorms and biases away from their initial 1 and 0 so every tensor matters.
        var rng = GaussianGenerator(seed: 4)
        for p in model.parameters where p.shape.count == 1 { for i in 0..<p.count { p.value.pointer[i] += 0.1 * rng.next() } }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-export-\(UUID().uuidString)").path
        try model.exportHuggingFace(to: dir, tokenizerJSON: json)

        let loaded = try ModelRegistry.load(path: dir, precision: .exact)
        let ids = try bytes.encode("To be, or not to be: that is")
        var unused = GaussianGenerator(seed: 0)
        let expected = GradMode.disabled { model.forward(ids, batch: 1, tokens: ids.count, rng: &unused).array }
        let found = try loaded.forward(ids, cache: try loaded.makeCache(), logits: .all)
        var worst: Float = 0
        for i in expected.indices { worst = max(worst, abs(found[i] - expected[i])) }
        XCTAssertLessThan(worst, 1e-4, "inference logits vs training logits")
        let reloaded = try makeTokenizer(directory: dir)
        XCTAssertEqual(reloaded.encode("To be, or not to be: that is", addSpecialTokens: false), ids)
    }
}
