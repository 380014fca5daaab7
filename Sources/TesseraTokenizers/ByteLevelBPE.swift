// Byte-level BPE (GPT-2 family: GPT-2, Llama 3, Qwen2, SmolLM2): text -> token ids -> text.
//
// Stages, as a tokenizer.json describes them:
//   1. added tokens (control and user-defined) are cut out of the text first and map straight to their ids;
//   2. pre-tokenisation splits the rest into pieces (ByteLevelPreTokenizer: the GPT-2, Llama 3 or Qwen2
//      regex, SmolLM2's digit isolation first);
//   3. each piece's UTF-8 bytes become GPT-2's printable byte symbols (0x20 'space' -> 'Ġ', …);
//   4. BPE merges adjacent symbols, lowest merge rank first, until no ranked pair is left (Llama 3's
//      `ignore_merges`: a piece that is itself a vocabulary entry is taken whole first);
//   5. decoding maps the symbols back to bytes and the bytes to UTF-8.
// Built from GGUF metadata (tokenizer.ggml.model "gpt2") or a tokenizer.json (TokenizerJSON.swift).
// Held to Hugging Face `tokenizers` by committed goldens (scripts/goldens/make_tokenizer_goldens.py) and
// to llama.cpp's own vocabulary tests.
import Foundation
import TesseraFormats

public final class ByteLevelBPETokenizer: Tokenizer, @unchecked Sendable {
    public let tokens: [String]
    /// Tokens matched whole in the text (GGUF control and user-defined tokens; tokenizer.json added tokens).
    public let specialTokens: [String]
    public let preTokenizer: ByteLevelPreTokenizer
    /// A piece that is a vocabulary entry becomes that token without merging (Llama 3).
    public let ignoresMerges: Bool
    /// Text segments are put in Unicode NFC first (a tokenizer.json "NFC" normalizer, as Qwen2's).
    public let appliesNFC: Bool
    public var splitDigits: Bool { preTokenizer.isolatesDigits }
    let vocabulary: [TokenText: Int32]
    /// (left id << 32 | right id) -> (rank, merged id)
    private let merges: [Int64: (rank: Int32, merged: Int32)]
    private let byteSymbol: [Int32]               // byte -> id of its single-symbol token
    private let symbolByte: [Character: UInt8]    // byte-level symbol -> byte
    private let specialIDs: Set<Int32>
    private let addedTokens: AddedTokenMatcher
    public let rules: SpecialTokenRules
    private var cache: [String: [Int32]] = [:]
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

    public init(tokens: [String], merges: [String], specialTokens: [String], preTokenizer: ByteLevelPreTokenizer,
                ignoresMerges: Bool = false, rules: SpecialTokenRules = SpecialTokenRules(),
                appliesNFC: Bool = false) throws(TokenizerError) {
        self.tokens = tokens
        self.appliesNFC = appliesNFC
        self.rules = rules
        self.specialTokens = specialTokens
        self.preTokenizer = preTokenizer
        self.ignoresMerges = ignoresMerges
        let vocabulary = exactVocabulary(tokens)
        self.vocabulary = vocabulary
        var table: [Int64: (Int32, Int32)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, rule) in merges.enumerated() {
            let parts = rule.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let a = vocabulary[TokenText(String(parts[0]))], let b = vocabulary[TokenText(String(parts[1]))],
                  let merged = vocabulary[TokenText(String(parts[0]) + String(parts[1]))] else { throw .invalidMerge(rule) }
            let key = Int64(a) << 32 | Int64(b)
            if table[key] == nil { table[key] = (Int32(rank), merged) }
        }
        self.merges = table
        var byteSymbol = [Int32](repeating: -1, count: 256)
        var symbolByte: [Character: UInt8] = [:]
        for b in 0..<256 {
            let symbol = ByteLevelBPETokenizer.byteToSymbol[b]
            symbolByte[symbol] = UInt8(b)
            byteSymbol[b] = vocabulary[TokenText(String(symbol))] ?? -1
        }
        self.byteSymbol = byteSymbol
        self.symbolByte = symbolByte
        let special = specialTokens.compactMap { t in vocabulary[TokenText(t)].map { (t, $0) } }
        specialIDs = Set(special.map(\.1))
        addedTokens = AddedTokenMatcher(special)
    }

    /// The GPT-2 regex, optionally after SmolLM2's digit isolation (the original initialiser).
    public convenience init(tokens: [String], merges: [String], specialTokens: [String], splitDigits: Bool,
                            rules: SpecialTokenRules = SpecialTokenRules()) throws(TokenizerError) {
        try self.init(tokens: tokens, merges: merges, specialTokens: specialTokens,
                      preTokenizer: ByteLevelPreTokenizer(split: .gpt2, isolatesDigits: splitDigits), rules: rules)
    }

    /// From a GGUF file's tokenizer metadata (tokenizer.ggml.model "gpt2"); the pre-tokenizer comes from
    /// tokenizer.ggml.pre, and an unknown one is an error.
    public convenience init(gguf: GGUFFile) throws(TokenizerError) {
        guard let model = gguf["tokenizer.ggml.model"]?.stringValue else { throw .missingMetadata("tokenizer.ggml.model") }
        guard model == "gpt2" else { throw .unsupportedModel(model) }
        guard let tokens = gguf["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue) else {
            throw .missingMetadata("tokenizer.ggml.tokens")
        }
        guard let merges = gguf["tokenizer.ggml.merges"]?.arrayValue?.compactMap(\.stringValue) else {
            throw .missingMetadata("tokenizer.ggml.merges")
        }
        let types = try GGUFTokenType.types(gguf: gguf, count: tokens.count)
        let matched = zip(tokens, types).filter { $0.1.isMatchedInText }.map(\.0)
        let pre = gguf["tokenizer.ggml.pre"]?.stringValue
        let preTokenizer = try ByteLevelPreTokenizer(ggufPre: pre)
        // llama.cpp: Llama 3's vocabulary takes a piece that is a token whole, and adds BOS unless told not to.
        let llama3 = preTokenizer.split == .llama3
        try self.init(tokens: tokens, merges: merges, specialTokens: matched, preTokenizer: preTokenizer,
                      ignoresMerges: llama3, rules: SpecialTokenRules(gguf: gguf, tokens: tokens, addsBOSByDefault: llama3))
    }

    // MARK: - Encoding

    public func encode(_ text: String) -> [Int32] { encode(text, addSpecialTokens: false) }

    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int32] {
        var ids: [Int32] = []
        if addSpecialTokens, rules.addsBOS, let bos = rules.bosID { ids.append(bos) }
        var ranges: [Range<Int>] = []
        for segment in addedTokens.split(text) {
            switch segment {
            case .token(let id): ids.append(id)
            case .text(let piece):
                var piece = appliesNFC ? Substring(piece.precomposedStringWithCanonicalMapping) : piece
                piece.withUTF8 { bytes in
                    ranges.removeAll(keepingCapacity: true)
                    preTokenizer.pieces(bytes, into: &ranges)
                    for r in ranges { encodePiece(UnsafeBufferPointer(rebasing: bytes[r]), into: &ids) }
                }
            }
        }
        return ids
    }

    /// Cuts out special tokens (longest first at each position).
    func splitOnSpecialTokens(_ text: String) -> [(Substring, Int32?)] {
        addedTokens.split(text).map { segment in
            switch segment {
            case .text(let s): (s, nil)
            case .token(let id): (Substring(tokens[Int(id)]), id)
            }
        }
    }

    /// The pieces BPE sees (after special tokens are cut out; those are left out here).
    func preTokenize(_ text: Substring) -> [Substring] { preTokenizer.pieces(text) }

    /// BPE over one piece's bytes: start from byte symbols, merge the lowest-ranked adjacent pair until none is left.
    func encodePiece(_ bytes: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        let key = String(decoding: bytes, as: UTF8.self)
        cacheLock.lock()
        if let cached = cache[key] { cacheLock.unlock(); ids += cached; return }
        cacheLock.unlock()
        var symbols: [Int32]
        if ignoresMerges, let whole = vocabulary[TokenText(String(bytes.map { ByteLevelBPETokenizer.byteToSymbol[Int($0)] }))] {
            symbols = [whole]
        } else {
            symbols = bytes.map { byteSymbol[Int($0)] }
            let merges = self.merges
            BPEMerge.merge(&symbols) { a, b in
                merges[Int64(a) << 32 | Int64(b)].map { (Double($0.rank), $0.merged) }
            }
        }
        cacheLock.lock()
        if cache.count < 100_000 { cache[key] = symbols }
        cacheLock.unlock()
        ids += symbols
    }

    func encodePiece(_ piece: Substring) -> [Int32] {
        var piece = piece
        var ids: [Int32] = []
        piece.withUTF8 { encodePiece($0, into: &ids) }
        return ids
    }

    // MARK: - Decoding

    /// The raw bytes one token stands for (a token may hold part of a UTF-8 character).
    public func tokenBytes(_ id: Int32) throws(TokenizerError) -> [UInt8] {
        guard id >= 0, Int(id) < tokens.count else { throw .unknownToken(id) }
        let token = tokens[Int(id)]
        if specialIDs.contains(id) { return Array(token.utf8) }
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
    public func id(of token: String) -> Int32? { vocabulary[TokenText(token)] }
}
