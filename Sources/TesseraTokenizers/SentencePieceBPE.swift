// SentencePiece BPE (Llama 2, Gemma 3, Phi-3, Mistral): text -> token ids -> text.
//
// Stages:
//   1. added tokens (control, user-defined, unknown) are cut out of the raw text and map to their ids;
//   2. each text segment is normalised: the dummy prefix "▁" is put in front per the model's rule (see
//      `DummyPrefix`), and every space becomes "▁" (U+2581);
//   3. BPE over the segment's Unicode scalars: a GGUF gives no merges, so two adjacent symbols merge when
//      their concatenation is a vocabulary entry, the highest-scoring one first (llama.cpp's
//      llm_tokenizer_spm, SentencePiece's own BPE); a tokenizer.json gives merges and their ranks;
//   4. a scalar that is no token falls back to its UTF-8 bytes as <0xNN> tokens (<unk> without them);
//   5. decoding: <0xNN> -> the byte, "▁" -> " ", control tokens -> their text; the dummy prefix's space is
//      dropped from the front of a decoded text.
//
// The dummy prefix differs between models and is not guessed: GGUF says tokenizer.ggml.add_space_prefix
// (llama.cpp: true for "llama" unless the file says otherwise; Gemma 3's file says false), applied as
// llama.cpp does — in front of every text segment, also one that starts with a space ("  hi" -> "▁▁▁hi").
// HF's Metaspace pre-tokenizer instead adds it only where the text does not start with "▁" already, and
// with prepend_scheme "first" only at the very start of the input.
//
// A scalar missing from the vocabulary never merges here (HF turns it into byte tokens before merging;
// llama.cpp would still look its concatenations up, which no real vocabulary makes a difference for).
import Foundation
import TesseraFormats

public final class SentencePieceBPETokenizer: Tokenizer, @unchecked Sendable {
    public enum DummyPrefix: Sendable, Equatable {
        /// Gemma 3: no prefix.
        case none
        /// SentencePiece / llama.cpp / HF's Prepend normaliser: "▁" before every non-empty text segment.
        case always
        /// HF's Metaspace: "▁" unless the segment starts with one; `firstSegmentOnly` for prepend_scheme "first".
        case unlessPresent(firstSegmentOnly: Bool)
    }

    public enum Merges: Sendable {
        /// llama.cpp / SentencePiece: merge into any vocabulary entry, highest score first.
        case scores([Float])
        /// tokenizer.json: merges as "left right" or [left, right], earlier first.
        case ranked([(String, String)])
    }

    public let tokens: [String]
    public let tokenTypes: [GGUFTokenType]
    public let dummyPrefix: DummyPrefix
    /// HF Metaspace(split: true): BPE runs on each "▁"-led word separately.
    public let splitsWords: Bool
    public let rules: SpecialTokenRules
    let vocabulary: [TokenText: Int32]
    private let scores: [Float]?
    private let mergeTable: [Int64: (rank: Int32, merged: Int32)]
    private let asciiIDs: [Int32]                // scalar < 128 -> id or -1
    private let scalarIDs: [UInt32: Int32]       // other single-scalar tokens
    private let byteIDs: [Int32]                 // byte -> id of <0xNN>, or -1
    private let unknownID: Int32?
    private let addedTokens: AddedTokenMatcher

    static let spaceMarker: Character = "\u{2581}"

    public init(tokens: [String], tokenTypes: [GGUFTokenType], merges: Merges, dummyPrefix: DummyPrefix,
                splitsWords: Bool = false, unknownID: Int32? = nil, matchedInText: [String]? = nil,
                rules: SpecialTokenRules = SpecialTokenRules()) throws(TokenizerError) {
        guard tokenTypes.count == tokens.count else {
            throw .inconsistentMetadata("\(tokenTypes.count) token types for \(tokens.count) tokens")
        }
        self.tokens = tokens
        self.tokenTypes = tokenTypes
        self.dummyPrefix = dummyPrefix
        self.splitsWords = splitsWords
        self.rules = rules
        self.unknownID = unknownID
        let vocabulary = exactVocabulary(tokens)
        self.vocabulary = vocabulary
        var table: [Int64: (Int32, Int32)] = [:]
        switch merges {
        case .scores(let s):
            guard s.count == tokens.count else { throw .inconsistentMetadata("\(s.count) scores for \(tokens.count) tokens") }
            scores = s
        case .ranked(let pairs):
            scores = nil
            table.reserveCapacity(pairs.count)
            for (rank, (l, r)) in pairs.enumerated() {
                guard let a = vocabulary[TokenText(l)], let b = vocabulary[TokenText(r)], let m = vocabulary[TokenText(l + r)] else { throw .invalidMerge("\(l) \(r)") }
                let key = Int64(a) << 32 | Int64(b)
                if table[key] == nil { table[key] = (Int32(rank), m) }
            }
        }
        mergeTable = table
        var ascii = [Int32](repeating: -1, count: 128)
        var scalars: [UInt32: Int32] = [:]
        var bytes = [Int32](repeating: -1, count: 256)
        for (i, t) in tokens.enumerated() {
            let type = tokenTypes[i]
            if type == .byte, let b = GGUFTokenType.byteValue(t) {
                if bytes[Int(b)] < 0 { bytes[Int(b)] = Int32(i) }
                continue
            }
            guard type == .normal || type == .userDefined, t.unicodeScalars.count == 1, vocabulary[TokenText(t)] == Int32(i) else { continue }
            let v = t.unicodeScalars.first!.value
            if v < 128 { ascii[Int(v)] = Int32(i) } else { scalars[v] = Int32(i) }
        }
        asciiIDs = ascii
        scalarIDs = scalars
        byteIDs = bytes
        let matched = matchedInText ?? zip(tokens, tokenTypes).filter { $0.1.isMatchedInText }.map(\.0)
        addedTokens = AddedTokenMatcher(matched.compactMap { t in vocabulary[TokenText(t)].map { (t, $0) } })
    }

    /// From a GGUF file's tokenizer metadata (tokenizer.ggml.model "llama").
    public convenience init(gguf: GGUFFile) throws(TokenizerError) {
        guard let model = gguf["tokenizer.ggml.model"]?.stringValue else { throw .missingMetadata("tokenizer.ggml.model") }
        guard model == "llama" else { throw .unsupportedModel(model) }
        if let pre = gguf["tokenizer.ggml.pre"]?.stringValue, pre != "default" { throw .unsupportedPreTokenizer(pre) }
        guard let tokens = gguf["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue) else {
            throw .missingMetadata("tokenizer.ggml.tokens")
        }
        guard let scores = gguf["tokenizer.ggml.scores"]?.arrayValue?.compactMap(\.doubleValue).map(Float.init) else {
            throw .missingMetadata("tokenizer.ggml.scores")
        }
        let types = try GGUFTokenType.types(gguf: gguf, count: tokens.count)
        // llama.cpp's defaults for a SentencePiece vocabulary: a dummy prefix and BOS, unless the file says no.
        let prefix = gguf["tokenizer.ggml.add_space_prefix"]?.intValue.map { $0 != 0 } ?? true
        let unknown = gguf["tokenizer.ggml.unknown_token_id"]?.intValue.map(Int32.init) ?? types.firstIndex(of: .unknown).map(Int32.init)
        try self.init(tokens: tokens, tokenTypes: types, merges: .scores(scores), dummyPrefix: prefix ? .always : .none,
                      unknownID: unknown, rules: SpecialTokenRules(gguf: gguf, tokens: tokens, addsBOSByDefault: true))
    }

    // MARK: - Encoding

    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int32] {
        var ids: [Int32] = []
        if addSpecialTokens, rules.addsBOS, let bos = rules.bosID { ids.append(bos) }
        var pairs = PairCache()
        for segment in addedTokens.split(text) {
            switch segment {
            case .token(let id): ids.append(id)
            case .text(let s):
                let normalized = normalize(s, atStart: s.startIndex == text.startIndex)
                if splitsWords {
                    for word in Self.words(normalized) { encodeSegment(word, pairs: &pairs, into: &ids) }
                } else {
                    encodeSegment(normalized[...], pairs: &pairs, into: &ids)
                }
            }
        }
        return ids
    }

    /// The dummy prefix, then every space as "▁".
    func normalize(_ segment: Substring, atStart: Bool) -> String {
        var out = ""
        out.reserveCapacity(segment.utf8.count + 3)
        switch dummyPrefix {
        case .none: break
        case .always: out.append(Self.spaceMarker)
        case .unlessPresent(let firstOnly):
            if (!firstOnly || atStart), let c = segment.unicodeScalars.first, c != " ", c != "\u{2581}" { out.append(Self.spaceMarker) }
        }
        for scalar in segment.unicodeScalars { out.unicodeScalars.append(scalar == " " ? "\u{2581}" : scalar) }
        return out
    }

    /// Metaspace's split: each word starts at a "▁" (merged with the text that follows it).
    static func words(_ text: String) -> [Substring] {
        var words: [Substring] = []
        var start = text.startIndex
        for i in text.unicodeScalars.indices where text.unicodeScalars[i] == "\u{2581}" && i != start {
            words.append(text[start..<i])
            start = i
        }
        if start < text.endIndex { words.append(text[start...]) }
        return words
    }

    /// What adjacent token pairs merge into, found once per encode call (GGUF scores: by concatenating
    /// the texts and looking the result up). Local to the call, so encoding takes no lock.
    typealias PairCache = [Int64: (priority: Double, merged: Int32)]

    /// BPE over one normalised segment, then byte fallback for scalars that are no token.
    func encodeSegment(_ segment: Substring, pairs: inout PairCache, into ids: inout [Int32]) {
        let scalars = Array(segment.unicodeScalars)
        var symbols = [Int32](repeating: 0, count: scalars.count)
        for (i, s) in scalars.enumerated() {
            let id = s.value < 128 ? asciiIDs[Int(s.value)] : (scalarIDs[s.value] ?? -1)
            symbols[i] = id >= 0 ? id : -Int32(i) - 3  // an unknown scalar remembers where it came from
        }
        BPEMerge.merge(&symbols) { a, b in mergeRule(a, b, pairs: &pairs) }
        for id in symbols {
            if id >= 0 { ids.append(id); continue }
            let scalar = scalars[Int(-id - 3)]
            let bytes = Array(String(scalar).utf8)
            if bytes.allSatisfy({ byteIDs[Int($0)] >= 0 }) {
                for b in bytes { ids.append(byteIDs[Int(b)]) }
            } else if let unknownID, ids.last != unknownID {
                ids.append(unknownID)
            }
        }
    }

    /// Two adjacent symbols merge into the token their texts spell, by score (GGUF) or merge rank (tokenizer.json).
    private func mergeRule(_ a: Int32, _ b: Int32, pairs: inout PairCache) -> (priority: Double, merged: Int32)? {
        let key = Int64(a) << 32 | Int64(b)
        guard let scores else { return mergeTable[key].map { (Double($0.rank), $0.merged) } }
        if let hit = pairs[key] { return hit.merged < 0 ? nil : hit }
        var result: (priority: Double, merged: Int32) = (0, -1)
        if let m = vocabulary[TokenText(tokens[Int(a)] + tokens[Int(b)])] { result = (-Double(scores[Int(m)]), m) }
        pairs[key] = result
        return result.merged < 0 ? nil : result
    }

    // MARK: - Decoding

    /// The raw bytes one id stands for: <0xNN> is the byte, "▁" a space, control tokens their text.
    public func tokenBytes(_ id: Int32) throws(TokenizerError) -> [UInt8] {
        guard id >= 0, Int(id) < tokens.count else { throw .unknownToken(id) }
        let token = tokens[Int(id)]
        switch tokenTypes[Int(id)] {
        case .byte: if let b = GGUFTokenType.byteValue(token) { return [b] }
        case .control, .unknown: return Array(token.utf8)
        default: break
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.utf8.count)
        for scalar in token.unicodeScalars {
            if scalar == "\u{2581}" { bytes.append(0x20) } else { bytes += Array(String(scalar).utf8) }
        }
        return bytes
    }

    /// Ids back to text; the space the dummy prefix stands for is dropped from the front (as HF's Strip decoder).
    public func decode(_ ids: [Int32]) throws(TokenizerError) -> String {
        var bytes: [UInt8] = []
        for id in ids { bytes += try tokenBytes(id) }
        if dummyPrefix != .none, bytes.first == 0x20 { bytes.removeFirst() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

// MARK: - Tokenizer conformance

extension SentencePieceBPETokenizer {
    public var vocabularySize: Int { tokens.count }
    public var bosID: Int32? { rules.bosID }
    public var addsBOS: Bool { rules.addsBOS }
    public var endOfGenerationIDs: Set<Int32> { rules.endOfGenerationIDs }
    public func id(of token: String) -> Int32? { vocabulary[TokenText(token)] }
}
