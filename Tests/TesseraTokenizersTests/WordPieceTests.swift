// WordPiece against Hugging Face `tokenizers` on all-MiniLM-L6-v2's tokenizer.json: accents, CJK,
// punctuation, long words, control and zero-width characters, special tokens in the text
// (Goldens/minilm.json, made by scripts/goldens/make_wordpiece_goldens.py).
import Foundation
import TesseraTokenizers
import XCTest

final class WordPieceTests: XCTestCase {
    func testIdsMatchHuggingFaceTokenizers() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Goldens/minilm.json")
        let golden = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let tokenizer = try WordPieceTokenizer(tokenizerJSON: JSONSerialization.data(withJSONObject: golden["tokenizer"]!))
        let cases = try XCTUnwrap(golden["cases"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 15)
        for c in cases {
            let text = c["text"] as! String, expected = (c["ids"] as! [Int]).map(Int32.init)
            XCTAssertEqual(tokenizer.encode(text), expected, text.debugDescription)
        }
        XCTAssertEqual(try tokenizer.decode(tokenizer.encode("Hello, unbelievably!", addSpecialTokens: false)), "hello , unbelievably !")
    }

    func testRejectsOtherModels() {
        let json = Data(#"{"model": {"type": "BPE", "vocab": {}, "merges": []}}"#.utf8)
        XCTAssertThrowsError(try WordPieceTokenizer(tokenizerJSON: json)) { XCTAssertEqual($0 as? TokenizerError, .unsupportedModel("BPE")) }
    }
}
