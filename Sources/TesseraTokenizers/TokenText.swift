// A token's text as a dictionary key, compared byte by byte.
//
// Swift's String == is canonical equivalence: "e\u{301}" == "é", and "\u{1F71}" == "\u{3AC}". A
// vocabulary holds such spellings as different tokens (Gemma 3 has 434 such groups, Llama 2 a few), and
// a merge of "e" and "\u{301}" must find the token spelled e+U+0301, not "é". So every look-up of a
// token by its text goes through this key, which compares the UTF-8 bytes.
public struct TokenText: Hashable, Sendable {
    public let text: String

    public init(_ text: String) { self.text = text }

    public static func == (a: TokenText, b: TokenText) -> Bool { a.text.utf8.elementsEqual(b.text.utf8) }

    public func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

/// Token text -> id, the first id for a text written twice.
func exactVocabulary(_ tokens: [String]) -> [TokenText: Int32] {
    var vocabulary: [TokenText: Int32] = [:]
    vocabulary.reserveCapacity(tokens.count)
    for (i, t) in tokens.enumerated() where vocabulary[TokenText(t)] == nil { vocabulary[TokenText(t)] = Int32(i) }
    return vocabulary
}
