// Byte-level BPE (GPT-2 family: GPT-2, Llama 3, Qwen2, SmolLM2): text -> token ids -> text.
//
// Stages, as a tokenizer.json describes them:
//   1. special tokens are cut out of the text first and map straight to their ids;
//   2. pre-tokenisation splits the rest into pieces: optionally every digit on its own (SmolLM2's
//      "Digits(individual_digits)"), then the GPT-2 regex ('s|'t|…| ?\p{L}+| ?\p{N}+|…|\s+(?!\S)|\s+);
//   3. each piece's UTF-8 bytes become GPT-2's printable byte symbols (0x20 'space' -> 'Ġ', …);
//   4. BPE merges adjacent symbols, lowest merge rank first, until no ranked pair is left;
//   5. decoding maps the symbols back to bytes and the bytes to UTF-8.
// Held to Hugging Face `tokenizers` by committed goldens (scripts/goldens/make_tokenizer_goldens.py).
import Foundation
import TesseraFormats

public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case unsupportedModel(String)
    case missingMetadata(String)
    case invalidMerge(String)
    case unknownToken(Int32)

    public var description: String {
        switch self {
        case .unsupportedModel(let m): "tokenizer model '\(m)' is not supported (byte-level BPE 'gpt2' is)"
        case .missingMetadata(let key): "the model file has no '\(key)'"
        case .invalidMerge(let m): "merge rule '\(m)' does not name two vocabulary entries"
        case .unknownToken(let id): "token id \(id) is outside the vocabulary"
        }
    }
}

public final class ByteLevelBPETokenizer: Tokenizer, @unchecked Sendable {
    public let tokens: [String]
    public let specialTokens: [String]
    public let splitDigits: Bool
    let vocabulary: [String: Int32]
    /// (left id, right id) -> (rank, merged id)
    private let merges: [Int64: (rank: Int32, merged: Int32)]
    private let byteSymbol: [Int32]               // byte -> id of its single-symbol token
    private let symbolByte: [Character: UInt8]    // byte-level symbol -> byte
    private let specialIDs: [String: Int32]
    public let rules: SpecialTokenRules
    private var cache: [Substring: [Int32]] = [:]
    private let cacheLock = NSLock()

    /// GPT-2's reversible map from bytes to printable characters.
    static let byteToSymbol: [Character] = {
        var bytes = Array(33...126) + Array(161...172) + Array(174...255)
        var codes = bytes
        var extra = 0
        for b in 0..<256 where !bytes.contains(b) {
            bytes.append(b)
            codes.append(256 + extra)
            extra += 1
        }
        var table = [Character](repeating: " ", count: 256)
        for (b, c) in zip(bytes, codes) { table[b] = Character(Unicode.Scalar(UInt32(c))!) }
        return table
    }()

    public init(tokens: [String], merges: [String], specialTokens: [String], splitDigits: Bool,
                rules: SpecialTokenRules = SpecialTokenRules()) throws(TokenizerError) {
        self.tokens = tokens
        self.rules = rules
        self.specialTokens = specialTokens
        self.splitDigits = splitDigits
        var vocabulary: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() where vocabulary[t] == nil { vocabulary[t] = Int32(i) }
        self.vocabulary = vocabulary
        var table: [Int64: (Int32, Int32)] = [:]
        for (rank, rule) in merges.enumerated() {
            let parts = rule.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let a = vocabulary[String(parts[0])], let b = vocabulary[String(parts[1])],
                  let merged = vocabulary[String(parts[0]) + String(parts[1])] else { throw .invalidMerge(rule) }
            let key = Int64(a) << 32 | Int64(b)
            if table[key] == nil { table[key] = (Int32(rank), merged) }
        }
        self.merges = table
        var byteSymbol = [Int32](repeating: -1, count: 256)
        var symbolByte: [Character: UInt8] = [:]
        for b in 0..<256 {
            let symbol = ByteLevelBPETokenizer.byteToSymbol[b]
            symbolByte[symbol] = UInt8(b)
            byteSymbol[b] = vocabulary[String(symbol)] ?? -1
        }
        self.byteSymbol = byteSymbol
        self.symbolByte = symbolByte
        self.specialIDs = Dictionary(specialTokens.compactMap { t in vocabulary[t].map { (t, $0) } }, uniquingKeysWith: { a, _ in a })
    }

    /// From a GGUF file's tokenizer metadata (tokenizer.ggml.model "gpt2").
    public convenience init(gguf: GGUFFile) throws(TokenizerError) {
        guard let model = gguf["tokenizer.ggml.model"]?.stringValue else { throw .missingMetadata("tokenizer.ggml.model") }
        guard model == "gpt2" else { throw .unsupportedModel(model) }
        guard let tokens = gguf["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue) else {
            throw .missingMetadata("tokenizer.ggml.tokens")
        }
        guard let merges = gguf["tokenizer.ggml.merges"]?.arrayValue?.compactMap(\.stringValue) else {
            throw .missingMetadata("tokenizer.ggml.merges")
        }
        let types = gguf["tokenizer.ggml.token_type"]?.arrayValue?.compactMap(\.intValue) ?? []
        let specials = zip(tokens, types).filter { $0.1 == 3 }.map(\.0)  // 3: control tokens
        // Pre-tokeniser families that split digits one by one before the GPT-2 regex.
        let pre = gguf["tokenizer.ggml.pre"]?.stringValue ?? "default"
        try self.init(tokens: tokens, merges: merges, specialTokens: specials, splitDigits: ["smollm"].contains(pre),
                      rules: SpecialTokenRules(gguf: gguf, tokens: tokens))
    }

    // MARK: - Encoding

    public func encode(_ text: String) -> [Int32] { encode(text, addSpecialTokens: false) }

    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int32] {
        var ids: [Int32] = []
        if addSpecialTokens, rules.addsBOS, let bos = rules.bosID { ids.append(bos) }
        for (segment, special) in splitOnSpecialTokens(text) {
            if let special { ids.append(special); continue }
            for piece in preTokenize(segment) { ids += encodePiece(piece) }
        }
        return ids
    }

    /// Cuts out special tokens (longest first at each position).
    func splitOnSpecialTokens(_ text: String) -> [(Substring, Int32?)] {
        guard !specialIDs.isEmpty else { return [(text[...], nil)] }
        let ordered = specialIDs.keys.sorted { $0.count > $1.count }
        var result: [(Substring, Int32?)] = []
        var start = text.startIndex, i = text.startIndex
        while i < text.endIndex {
            if let match = ordered.first(where: { text[i...].hasPrefix($0) }) {
                if start < i { result.append((text[start..<i], nil)) }
                let end = text.index(i, offsetBy: match.count)
                result.append((text[i..<end], specialIDs[match]))
                i = end
                start = end
            } else {
                i = text.index(after: i)
            }
        }
        if start < text.endIndex { result.append((text[start...], nil)) }
        return result
    }

    /// The GPT-2 pre-tokeniser (after an optional split of every digit into its own piece).
    /// Matched on Unicode scalars, not Swift's grapheme clusters ("\r\n" is one Character but two pieces of text here).
    nonisolated(unsafe) static let gpt2Pattern = try! Regex(#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#)
        .matchingSemantics(.unicodeScalar)

    func preTokenize(_ text: Substring) -> [Substring] {
        var segments: [Substring] = []
        if splitDigits {
            // Every scalar with a numeric type (\p{N}) becomes its own piece.
            let scalars = text.unicodeScalars
            var start = scalars.startIndex
            for i in scalars.indices where scalars[i].properties.numericType != nil {
                if start < i { segments.append(text[start..<i]) }
                let next = scalars.index(after: i)
                segments.append(text[i..<next])
                start = next
            }
            if start < text.endIndex { segments.append(text[start...]) }
        } else {
            segments = [text]
        }
        var pieces: [Substring] = []
        for segment in segments {
            for match in segment.matches(of: ByteLevelBPETokenizer.gpt2Pattern) { pieces.append(segment[match.range]) }
        }
        return pieces
    }

    /// BPE over one piece: start from byte symbols, merge the lowest-ranked adjacent pair until none is left.
    func encodePiece(_ piece: Substring) -> [Int32] {
        cacheLock.lock()
        if let cached = cache[piece] { cacheLock.unlock(); return cached }
        cacheLock.unlock()
        var symbols = piece.utf8.map { byteSymbol[Int($0)] }
        while symbols.count > 1 {
            var best: (index: Int, rank: Int32, merged: Int32)? = nil
            for i in 0..<(symbols.count - 1) {
                if let m = merges[Int64(symbols[i]) << 32 | Int64(symbols[i + 1])], m.rank < (best?.rank ?? .max) {
                    best = (i, m.rank, m.merged)
                }
            }
            guard let best else { break }
            symbols[best.index] = best.merged
            symbols.remove(at: best.index + 1)
        }
        cacheLock.lock()
        if cache.count < 100_000 { cache[piece] = symbols }
        cacheLock.unlock()
        return symbols
    }

    // MARK: - Decoding


    /// The raw bytes one token stands for (a token may hold part of a UTF-8 character).
    public func tokenBytes(_ id: Int32) throws(TokenizerError) -> [UInt8] {
        guard id >= 0, Int(id) < tokens.count else { throw .unknownToken(id) }
        let token = tokens[Int(id)]
        if specialIDs[token] != nil { return Array(token.utf8) }
        var bytes: [UInt8] = []
        for c in token { if let b = symbolByte[c] { bytes.append(b) } else { bytes += Array(String(c).utf8) } }
        return bytes
    }
}

// MARK: - Tokenizer conformance

extension ByteLevelBPETokenizer {
    public var vocabularySize: Int { tokens.count }
    public var bosID: Int32? { rules.bosID }
    public var addsBOS: Bool { rules.addsBOS }
    public var endOfGenerationIDs: Set<Int32> { rules.endOfGenerationIDs }
    public func id(of token: String) -> Int32? { vocabulary[token] }
}
