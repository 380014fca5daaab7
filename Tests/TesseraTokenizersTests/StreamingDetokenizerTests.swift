// The streaming detokeniser emits each character as soon as its last byte arrives, never a broken one,
// and the pieces add up to the whole decode.
import Foundation
import TesseraTokenizers
import XCTest

final class StreamingDetokenizerTests: XCTestCase {
    func testPiecesAreCompleteCharactersAndAddUp() throws {
        // Tokens that are single bytes of "a🤖é日" (4-byte, 2-byte and 3-byte characters), one byte each.
        let text = "a🤖é日!"
        let bytes = Array(text.utf8)
        var stream = StreamingDetokenizer(tokenBytes: { id throws(TokenizerError) in [bytes[Int(id)]] })
        var pieces: [String] = []
        for id in 0..<bytes.count { pieces.append(try stream.append(Int32(id))) }
        pieces.append(stream.finish())
        XCTAssertEqual(pieces.joined(), text)
        XCTAssertFalse(pieces.joined().contains("\u{FFFD}"))
        // "a" at once; the robot only on its 4th byte; é on its 2nd; 日 on its 3rd.
        XCTAssertEqual(pieces, ["a", "", "", "", "🤖", "", "é", "", "", "日", "!", ""])
    }

    func testWithTheSmolLM2Tokenizer() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Goldens/smollm2.json")
        let golden = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let tokenizer = try ByteLevelBPETokenizer(tokens: golden["tokens"] as! [String], merges: golden["merges"] as! [String],
                                                  specialTokens: golden["special"] as! [String], splitDigits: true)
        for text in ["emoji 🤖🚀 and symbols ∑∫√", "日本語のテキスト", "plain ascii"] {
            var stream = StreamingDetokenizer(tokenizer)
            var out = ""
            for id in tokenizer.encode(text) {
                let piece = try stream.append(id)
                XCTAssertFalse(piece.contains("\u{FFFD}"), "broken character emitted for \(text)")
                out += piece
            }
            out += stream.finish()
            XCTAssertEqual(out, text)
        }
    }

    func testAnUnfinishedCharacterAtTheEndBecomesAReplacement() throws {
        var stream = StreamingDetokenizer(tokenBytes: { _ throws(TokenizerError) in [0xF0, 0x9F] })
        XCTAssertEqual(try stream.append(0), "")
        XCTAssertEqual(stream.finish(), "\u{FFFD}")
    }
}
