// Byte-level BPE against Hugging Face `tokenizers`: SmolLM2's vocabulary and merges, and the ids the
// Python library gives for a set of strings (English, code, digits, whitespace runs, CJK, emoji,
// accents, chat special tokens), from Goldens/smollm2.json (scripts/goldens/make_tokenizer_goldens.py).
import Foundation
import TesseraTokenizers
import XCTest

final class ByteLevelBPETests: XCTestCase {
    struct Golden: Decodable {
        struct Case: Decodable { let text: String; let ids: [Int32] }
        let tokens: [String], merges: [String], special: [String], cases: [Case]
    }

    static let golden: Golden = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Goldens/smollm2.json")
        return try! JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
    }()

    func testIdsMatchHuggingFaceTokenizers() throws {
        let g = Self.golden
        let tokenizer = try ByteLevelBPETokenizer(tokens: g.tokens, merges: g.merges, specialTokens: g.special, splitDigits: true)
        XCTAssertGreaterThanOrEqual(g.cases.count, 16)
        var mismatches = 0
        for c in g.cases {
            let ids = tokenizer.encode(c.text)
            if ids != c.ids {
                mismatches += 1
                XCTFail("\(c.text.debugDescription): found \(ids), expected \(c.ids)")
            }
            XCTAssertEqual(try tokenizer.decode(ids), c.text, "round trip of \(c.text.debugDescription)")
        }
        XCTAssertEqual(mismatches, 0)
    }

    func testErrors() throws {
        let g = Self.golden
        XCTAssertThrowsError(try ByteLevelBPETokenizer(tokens: ["a", "b"], merges: ["a c"], specialTokens: [], splitDigits: false)) {
            XCTAssertEqual($0 as? TokenizerError, .invalidMerge("a c"))
        }
        let tokenizer = try ByteLevelBPETokenizer(tokens: g.tokens, merges: g.merges, specialTokens: g.special, splitDigits: true)
        XCTAssertThrowsError(try tokenizer.decode([Int32(g.tokens.count)]))
    }
}
