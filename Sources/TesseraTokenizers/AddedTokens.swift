// Added tokens (control, user-defined, special) are cut out of the raw text before any other stage and
// map straight to their ids; the text between them goes on to normalisation and the model.
//
// Matching is leftmost-longest, as Hugging Face `tokenizers` does it (an Aho-Corasick automaton there):
// at each position the longest token that starts there wins. Candidates are bucketed by their first
// UTF-8 byte so that a position whose byte starts no token costs one table look-up — a vocabulary such
// as Gemma's has six thousand control tokens, and a 5 MB prompt must not try each of them everywhere.
public struct AddedTokenMatcher: Sendable {
    /// One piece of the input: text for the model, or a token matched whole.
    public enum Segment: Equatable, Sendable {
        case text(Substring)
        case token(Int32)
    }

    /// For each first byte, the tokens that start with it as (UTF-8 bytes, id), longest first.
    private let buckets: [[([UInt8], Int32)]]
    public let isEmpty: Bool

    public init<S: Sequence>(_ tokens: S) where S.Element == (String, Int32) {
        var buckets = [[([UInt8], Int32)]](repeating: [], count: 256)
        var seen = Set<String>()
        for (text, id) in tokens where !text.isEmpty && seen.insert(text).inserted {
            let bytes = Array(text.utf8)
            buckets[Int(bytes[0])].append((bytes, id))
        }
        for i in buckets.indices { buckets[i].sort { $0.0.count > $1.0.count } }
        self.buckets = buckets
        isEmpty = seen.isEmpty
    }

    /// Splits `text` into text segments and matched tokens, in order; no empty text segments.
    public func split(_ text: String) -> [Segment] {
        if isEmpty { return text.isEmpty ? [] : [.text(text[...])] }
        var text = text
        text.makeContiguousUTF8()
        let utf8 = text.utf8
        var segments: [Segment] = []
        var starts: [(start: Int, end: Int, id: Int32)] = []
        utf8.withContiguousStorageIfAvailable { bytes in
            var i = 0
            let n = bytes.count
            while i < n {
                let bucket = buckets[Int(bytes[i])]
                var matched: ([UInt8], Int32)? = nil
                if !bucket.isEmpty {
                    for candidate in bucket where candidate.0.count <= n - i {
                        var equal = true
                        for (k, b) in candidate.0.enumerated() where bytes[i + k] != b { equal = false; break }
                        if equal { matched = candidate; break }
                    }
                }
                if let matched {
                    starts.append((i, i + matched.0.count, matched.1))
                    i += matched.0.count
                } else {
                    i += 1
                }
            }
        }
        var last = 0
        func index(_ offset: Int) -> String.Index { utf8.index(utf8.startIndex, offsetBy: offset) }
        for m in starts {
            if m.start > last { segments.append(.text(text[index(last)..<index(m.start)])) }
            segments.append(.token(m.id))
            last = m.end
        }
        if last < utf8.count { segments.append(.text(text[index(last)...])) }
        return segments
    }
}
