// The streaming detokeniser: turns generated tokens into text as they arrive, emitting each piece as
// soon as it is complete UTF-8 and never a broken character. A byte-level token may end in the middle
// of a multi-byte character (an emoji is often two or three tokens); those bytes wait for the rest.
public struct StreamingDetokenizer {
    private var pending: [UInt8] = []
    private let bytesOf: (Int32) throws(TokenizerError) -> [UInt8]

    public init(tokenBytes: @escaping (Int32) throws(TokenizerError) -> [UInt8]) { bytesOf = tokenBytes }

    public init(_ tokenizer: any Tokenizer) { self.init(tokenBytes: { id throws(TokenizerError) in try tokenizer.tokenBytes(id) }) }

    /// Adds one token; returns the text that became complete (possibly empty).
    public mutating func append(_ id: Int32) throws(TokenizerError) -> String {
        pending += try bytesOf(id)
        let complete = StreamingDetokenizer.completePrefixLength(pending)
        defer { pending.removeFirst(complete) }
        return String(decoding: pending[..<complete], as: UTF8.self)
    }

    /// Whatever is left at the end of the stream (an incomplete character becomes U+FFFD).
    public mutating func finish() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix that does not end inside a multi-byte sequence that could still
    /// be completed. Invalid bytes count as complete (they decode to U+FFFD rather than wait forever).
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        // Look back at most 3 bytes for the start of a sequence that is not yet finished.
        var i = bytes.count - 1
        var back = 0
        while i >= 0 && back < 4 {
            let b = bytes[i]
            if b & 0xC0 != 0x80 {  // a lead byte (or ASCII)
                let needed = b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 && b < 0xF0 ? 3 : b >= 0xC2 && b < 0xE0 ? 2 : 1
                return bytes.count - i < needed ? i : bytes.count
            }
            i -= 1
            back += 1
        }
        return bytes.count
    }
}
