// The BPE trainer against a plain re-implementation (every pair recounted after every merge, the same
// tie-break), and its tokenizer.json through the loader: it round-trips text and compresses it.
import Foundation
import TesseraTokenizers
import XCTest

final class BPETrainerTests: XCTestCase {
    let text = (try? String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("TesseraEngineTests/Resources/hamlet-excerpt.txt"), encoding: .utf8)) ?? ""

    /// Recount-everything BPE: the definition the incremental trainer must match.
    func referenceMerges(_ text: String, count: Int) -> [String] {
        let symbol = { (b: UInt8) -> String in
            // GPT-2's byte symbols, rebuilt here independently.
            var bytes = Array(33...126) + Array(161...172) + Array(174...255)
            var codes = bytes
            var extra = 0
            for x in 0..<256 where !bytes.contains(x) { bytes.append(x); codes.append(256 + extra); extra += 1 }
            return String(Unicode.Scalar(UInt32(codes[bytes.firstIndex(of: Int(b))!]))!)
        }
        var words: [([String], Int)] = Dictionary(grouping: ByteLevelPreTokenizer(split: .gpt2).pieces(text[...]).map(String.init), by: { $0 })
            .map { (Array($0.key.utf8).map(symbol), $0.value.count) }
        var merges: [String] = []
        for _ in 0..<count {
            var counts: [String: Int] = [:]
            for (w, c) in words where w.count > 1 { for i in 0..<(w.count - 1) { counts[w[i] + " " + w[i + 1], default: 0] += c } }
            guard let best = counts.max(by: { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }), best.value >= 2 else { break }
            merges.append(best.key)
            let parts = best.key.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            words = words.map { w, c in
                var out: [String] = [], i = 0
                while i < w.count {
                    if i + 1 < w.count && w[i] == parts[0] && w[i + 1] == parts[1] { out.append(parts[0] + parts[1]); i += 2 } else { out.append(w[i]); i += 1 }
                }
                return (out, c)
            }
        }
        return merges
    }

    func testMergesEqualTheRecountingDefinition() throws {
        XCTAssertFalse(text.isEmpty)
        let result = try BPETrainer(vocabularySize: 256 + 60 + 1).train(text)
        XCTAssertEqual(result.merges.count, 60)
        XCTAssertEqual(result.tokens.count, 317)
        XCTAssertEqual(result.merges, referenceMerges(text, count: 60))
    }

    func testTrainedTokenizerLoadsRoundTripsAndCompresses() throws {
        let result = try BPETrainer(vocabularySize: 512).train(text)
        let json = result.tokenizerJSON()
        let tokenizer = try TokenizerJSON.makeTokenizer(data: Data(json.utf8))
        XCTAssertEqual(tokenizer.vocabularySize, 512)
        let sample = "To be, or not to be, that is the question: — and naïve unicode too.<|endoftext|>"
        let ids = tokenizer.encode(sample, addSpecialTokens: false)
        var bytes: [UInt8] = []
        for id in ids { bytes += try tokenizer.tokenBytes(id) }
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), sample)
        XCTAssertEqual(ids.last, 511, "the special token is one id")
        let excerptIDs = tokenizer.encode(text, addSpecialTokens: false)
        XCTAssertLessThan(Double(excerptIDs.count), 0.5 * Double(text.utf8.count), "255 merges at least halve the bytes")
    }

    func testTooSmallAVocabularyIsAnError() {
        XCTAssertThrowsError(try BPETrainer(vocabularySize: 100).train("abc"))
    }
}
