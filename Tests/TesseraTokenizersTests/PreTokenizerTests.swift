// The hand-written pre-tokenizer matcher against Swift's Regex running the same pattern (the plain
// reference), for each split, on the golden corpus and on seeded random strings built from the
// characters the regexes treat specially; and the heap BPE merge loop against the quadratic one.
import Foundation
import TesseraTokenizers
import XCTest

final class PreTokenizerTests: XCTestCase {
    static let configurations: [ByteLevelPreTokenizer] = [
        ByteLevelPreTokenizer(split: .gpt2), ByteLevelPreTokenizer(split: .gpt2, isolatesDigits: true),
        ByteLevelPreTokenizer(split: .llama3), ByteLevelPreTokenizer(split: .qwen2),
    ]

    func testFastMatcherEqualsRegexOnCorpus() throws {
        let texts = try TestResources.cases(TestResources.json(TestResources.golden("qwen25.json"))).map(\.text)
        for p in Self.configurations {
            for t in texts { XCTAssertEqual(p.pieces(t[...]), p.referencePieces(t[...]), "\(p.split) \(t.debugDescription)") }
        }
    }

    func testFastMatcherEqualsRegexOnRandomStrings() {
        let alphabet: [String] = ["a", "Z", "é", "ж", "中", "1", "٣", "½", " ", "  ", "\t", "\n", "\r", "\r\n", "\u{a0}", "\u{3000}",
                                  "'", "'s", "'T", "'re", "'LL", "!", "?", ".", "🚀", "👨\u{200d}👩", "\u{301}", "_", "-", "ǅ"]
        var rng = SplitMix64(seed: 42)
        for p in Self.configurations {
            for _ in 0..<300 {
                let text = (0..<Int(rng.next() % 16)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
                XCTAssertEqual(p.pieces(text[...]), p.referencePieces(text[...]), "\(p.split) \(text.debugDescription)")
            }
        }
    }

    func testExamplePieces() {
        XCTAssertEqual(ByteLevelPreTokenizer(split: .llama3).pieces("I'M 12345 (ok)\n\n  x"[...]),
                       ["I", "'M", " ", "123", "45", " (", "ok", ")\n\n", " ", " x"])
        XCTAssertEqual(ByteLevelPreTokenizer(split: .qwen2).pieces("ab12"[...]), ["ab", "1", "2"])
        XCTAssertEqual(ByteLevelPreTokenizer(split: .gpt2).pieces("I'M  fine"[...]), ["I", "'", "M", " ", " fine"])
    }

    func testHeapMergeEqualsQuadraticMerge() {
        // A toy vocabulary: ids 0..<4 are letters; a pair merges into a fresh id with a pseudo-random priority.
        var rng = SplitMix64(seed: 7)
        var table: [Int64: (Double, Int32)] = [:]
        var nextID: Int32 = 4
        for a in Int32(0)..<40 { for b in Int32(0)..<40 where rng.next() % 3 == 0 {
            table[Int64(a) << 32 | Int64(b)] = (Double(rng.next() % 50), nextID % 40)
            nextID += 1
        } }
        let rule: MergeRule = { a, b in table[Int64(a) << 32 | Int64(b)].map { (priority: $0.0, merged: $0.1) } }
        for _ in 0..<200 {
            let word = (0..<Int(2 + rng.next() % 60)).map { _ in rng.next() % 9 == 0 ? -5 : Int32(rng.next() % 4) }
            var quadratic = word, heap = word
            BPEMerge.mergeQuadratic(&quadratic, rule: rule)
            BPEMerge.mergeWithHeap(&heap, rule: rule)
            XCTAssertEqual(heap, quadratic, "\(word)")
        }
    }
}

struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D4_9BB8_5E69_B133
        return z ^ (z >> 31)
    }
}
