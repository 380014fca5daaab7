// Token types as llama.cpp writes them to tokenizer.ggml.token_type, and what each means here:
// control, user-defined and unknown tokens are matched whole in the raw text (llama.cpp's
// tokenizer_st_partition with parse_special, HF's added tokens); byte tokens <0xNN> are SentencePiece's
// byte fallback; normal tokens take part in BPE.
import TesseraFormats

public enum GGUFTokenType: Int, Sendable, Equatable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6

    /// Cut out of the text before BPE (when the text spells them).
    public var isMatchedInText: Bool { self == .control || self == .userDefined || self == .unknown }

    /// The byte a "<0xNN>" token stands for.
    public static func byteValue(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16)
    }

    /// tokenizer.ggml.token_type, one per token; without it, "<0xNN>" tokens are bytes and the rest normal.
    public static func types(gguf: GGUFFile, count: Int) throws(TokenizerError) -> [GGUFTokenType] {
        guard let raw = gguf["tokenizer.ggml.token_type"]?.arrayValue else {
            guard let tokens = gguf["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue) else { return [] }
            return tokens.map { byteValue($0) != nil ? .byte : .normal }
        }
        guard raw.count == count else { throw .inconsistentMetadata("\(raw.count) token types for \(count) tokens") }
        var types: [GGUFTokenType] = []
        types.reserveCapacity(count)
        for (i, value) in raw.enumerated() {
            guard let v = value.intValue, let type = GGUFTokenType(rawValue: v) else {
                throw .inconsistentMetadata("token \(i) has type \(value), expected 0...6")
            }
            types.append(type)
        }
        return types
    }
}
