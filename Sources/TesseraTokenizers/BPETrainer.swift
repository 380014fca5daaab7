// Training a byte-level BPE tokenizer (GPT-2's scheme, Sennrich et al. 2016): split the text with the
// GPT-2 pre-tokenizer regex, count the pieces, start from the 256 byte symbols, and repeatedly merge
// the most frequent adjacent pair of symbols (ties: the pair whose merged symbols come first in byte
// order, so training is deterministic) until the vocabulary has the size asked for or no pair occurs
// twice. Pair counts are updated incrementally — only the pieces that contain the merged pair are
// revisited — and the best pair comes from a max-heap whose stale entries are skipped on the way out.
// The result is a tokenizer.json (model BPE, ByteLevel pre-tokenizer and decoder) that
// `TokenizerJSON.makeTokenizer` and Hugging Face tokenizers both load.
import Foundation

public struct BPETrainer {
    public var vocabularySize: Int
    /// Tokens added after the merges (e.g. "<|endoftext|>"), matched in the raw text.
    public var specialTokens: [String]
    public var split: ByteLevelSplit = .gpt2

    public init(vocabularySize: Int, specialTokens: [String] = ["<|endoftext|>"]) {
        self.vocabularySize = vocabularySize
        self.specialTokens = specialTokens
    }

    public struct Result: Sendable {
        /// Byte-level symbols by id: 256 bytes, then one per merge, then the special tokens.
        public var tokens: [String]
        /// "a b" per merge, in order.
        public var merges: [String]
        public var specialTokens: [String]

        /// A tokenizer.json that Tessera and Hugging Face tokenizers load.
        public func tokenizerJSON() -> String {
            let quote = JSONValue.quoted
            let ordinary = tokens.count - specialTokens.count
            let added = specialTokens.enumerated().map { i, t in
                "{\"id\": \(ordinary + i), \"content\": \(quote(t)), \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}"
            }
            let vocab = tokens.prefix(ordinary).enumerated().map { "\(quote($1)): \($0)" }.joined(separator: ", ")
            let mergeList = merges.map(quote).joined(separator: ", ")
            return """
            {"version": "1.0", "truncation": null, "padding": null,
             "added_tokens": [\(added.joined(separator: ", "))],
             "normalizer": null,
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
             "post_processor": null,
             "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
             "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                       "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                       "vocab": {\(vocab)},
                       "merges": [\(mergeList)]}}

            """
        }
    }

    private struct Pair: Hashable, Comparable {
        let a: Int32, b: Int32
        static func < (l: Pair, r: Pair) -> Bool { (l.a, l.b) < (r.a, r.b) }
    }

    /// Trains on `text`; `progress(merges done, merges wanted)` is called now and then.
    public func train(_ text: String, progress: (Int, Int) -> Void = { _, _ in }) throws(TokenizerError) -> Result {
        let wanted = vocabularySize - 256 - specialTokens.count
        guard wanted >= 0 else { throw .invalidTokenizerJSON("a byte-level vocabulary needs at least \(256 + specialTokens.count) tokens") }
        // Count the pre-tokenized pieces (special tokens are not part of the training text).
        var text = text
        for s in specialTokens { text = text.replacingOccurrences(of: s, with: " ") }
        let pre = ByteLevelPreTokenizer(split: split)
        var pieceCounts: [String: Int] = [:]
        for piece in pre.pieces(text[...]) { pieceCounts[String(piece), default: 0] += 1 }
        let symbolOfByte = ByteLevelBPETokenizer.byteToSymbol
        var tokens = (0..<256).map { String(symbolOfByte[$0]) }
        var words: [[Int32]] = [], counts: [Int] = []
        for (piece, count) in pieceCounts.sorted(by: { $0.key < $1.key }) {
            words.append(Array(piece.utf8).map { Int32($0) })
            counts.append(count)
        }
        // Pair counts and where each pair occurs.
        var pairCount: [Pair: Int] = [:], pairWords: [Pair: Set<Int>] = [:]
        func forEachPair(_ w: [Int32], _ body: (Pair) -> Void) { if w.count > 1 { for i in 0..<(w.count - 1) { body(Pair(a: w[i], b: w[i + 1])) } } }
        for (index, w) in words.enumerated() {
            forEachPair(w) { pairCount[$0, default: 0] += counts[index]; pairWords[$0, default: []].insert(index) }
        }
        var heap = MaxHeap<HeapEntry>()
        for (pair, count) in pairCount { heap.push(HeapEntry(count: count, pair: pair, tokens: tokens)) }
        var merges: [String] = []
        while merges.count < wanted, let top = heap.pop() {
            guard let current = pairCount[top.pair], current == top.count else { continue }  // stale
            guard current >= 2 else { break }
            let pair = top.pair, newID = Int32(tokens.count)
            tokens.append(tokens[Int(pair.a)] + tokens[Int(pair.b)])
            merges.append(tokens[Int(pair.a)] + " " + tokens[Int(pair.b)])
            var touched: Set<Pair> = []
            for index in pairWords[pair] ?? [] {
                let old = words[index], c = counts[index]
                var merged: [Int32] = []
                merged.reserveCapacity(old.count)
                var i = 0
                while i < old.count {
                    if i + 1 < old.count && old[i] == pair.a && old[i + 1] == pair.b { merged.append(newID); i += 2 } else { merged.append(old[i]); i += 1 }
                }
                forEachPair(old) { p in pairCount[p, default: 0] -= c; touched.insert(p) }
                forEachPair(merged) { p in pairCount[p, default: 0] += c; pairWords[p, default: []].insert(index); touched.insert(p) }
                words[index] = merged
            }
            pairCount[pair] = nil
            pairWords[pair] = nil
            for p in touched where p != pair {
                if let c = pairCount[p], c > 0 { heap.push(HeapEntry(count: c, pair: p, tokens: tokens)) } else { pairCount[p] = nil }
            }
            if merges.count % 100 == 0 { progress(merges.count, wanted) }
        }
        progress(merges.count, wanted)
        return Result(tokens: tokens + specialTokens, merges: merges, specialTokens: specialTokens)
    }

    private struct HeapEntry: Comparable {
        let count: Int, pair: Pair, key: String
        init(count: Int, pair: Pair, tokens: [String]) {
            self.count = count; self.pair = pair; key = tokens[Int(pair.a)] + " " + tokens[Int(pair.b)]
        }
        // Larger count first; among equal counts, the lexicographically smaller merge first.
        static func < (l: HeapEntry, r: HeapEntry) -> Bool { l.count != r.count ? l.count < r.count : l.key > r.key }
        static func == (l: HeapEntry, r: HeapEntry) -> Bool { l.count == r.count && l.pair == r.pair }
    }
}

/// A binary max-heap.
struct MaxHeap<Element: Comparable> {
    private var items: [Element] = []
    var isEmpty: Bool { items.isEmpty }

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[parent] < items[i] else { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var largest = i
            if l < items.count && items[largest] < items[l] { largest = l }
            if r < items.count && items[largest] < items[r] { largest = r }
            if largest == i { break }
            items.swapAt(i, largest)
            i = largest
        }
        return top
    }
}
