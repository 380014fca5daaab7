// WordPiece (BERT, all-MiniLM-L6-v2), built from a tokenizer.json.
//
// Stages, as tokenizer.json names them:
//   added tokens   [CLS], [SEP], [MASK], … are matched in the raw text first;
//   normaliser     BertNormalizer: drop control characters and U+FFFD, map whitespace to spaces, put
//                  spaces around CJK ideographs, lowercase, and strip accents (NFD, drop marks);
//   pre-tokeniser  BertPreTokenizer: split on whitespace, and every punctuation character on its own;
//   model          WordPiece: greedy longest match from the left, continuations prefixed "##",
//                  a word with no match (or longer than max_input_chars_per_word) becomes [UNK];
//   post-processor TemplateProcessing: [CLS] A [SEP].
// Held to Hugging Face `tokenizers` by goldens (scripts/goldens/make_wordpiece_goldens.py).
import Foundation

public final class WordPieceTokenizer: @unchecked Sendable {
    public let tokens: [String]
    private let vocabulary: [String: Int32]
    let unknownID: Int32
    let prefix: String
    let maxCharactersPerWord: Int
    let lowercase: Bool, stripAccents: Bool, cleanText: Bool, handleChineseCharacters: Bool
    let added: [String: Int32]
    let classifierID: Int32?, separatorID: Int32?

    /// From a Hugging Face tokenizer.json whose model is WordPiece.
    public init(tokenizerJSON data: Data) throws(TokenizerError) {
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let model = json["model"] as? [String: Any] else { throw .missingMetadata("model (tokenizer.json)") }
        let type = model["type"] as? String ?? "?"
        guard type == "WordPiece" else { throw .unsupportedModel(type) }
        guard let vocab = model["vocab"] as? [String: Int] else { throw .missingMetadata("model.vocab") }
        var tokens = [String](repeating: "", count: (vocab.values.max() ?? -1) + 1)
        for (t, id) in vocab where id >= 0 { tokens[id] = t }
        self.tokens = tokens
        vocabulary = vocab.mapValues(Int32.init)
        let unknown = model["unk_token"] as? String ?? "[UNK]"
        guard let unknownID = vocabulary[unknown] else { throw .missingMetadata("unk_token \(unknown) in the vocabulary") }
        self.unknownID = unknownID
        prefix = model["continuing_subword_prefix"] as? String ?? "##"
        maxCharactersPerWord = model["max_input_chars_per_word"] as? Int ?? 100
        let normalizer = json["normalizer"] as? [String: Any] ?? [:]
        if let t = normalizer["type"] as? String, t != "BertNormalizer" { throw .unsupportedModel("normalizer \(t)") }
        lowercase = normalizer["lowercase"] as? Bool ?? true
        stripAccents = normalizer["strip_accents"] as? Bool ?? lowercase  // null follows lowercase, as in BERT
        cleanText = normalizer["clean_text"] as? Bool ?? true
        handleChineseCharacters = normalizer["handle_chinese_chars"] as? Bool ?? true
        var added: [String: Int32] = [:]
        for entry in json["added_tokens"] as? [[String: Any]] ?? [] {
            if let content = entry["content"] as? String, let id = entry["id"] as? Int { added[content] = Int32(id) }
        }
        self.added = added
        classifierID = vocabulary["[CLS]"]
        separatorID = vocabulary["[SEP]"]
    }

    /// Token ids; with `addSpecialTokens`, wrapped as [CLS] … [SEP].
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int32] {
        var ids: [Int32] = []
        if addSpecialTokens, let classifierID { ids.append(classifierID) }
        for (segment, special) in splitOnAddedTokens(text) {
            if let special { ids.append(special); continue }
            for word in preTokenize(normalize(segment)) { ids += wordPiece(word) }
        }
        if addSpecialTokens, let separatorID { ids.append(separatorID) }
        return ids
    }

    /// Tokens joined: continuations glued to the previous piece, special tokens kept.
    public func decode(_ ids: [Int32]) throws(TokenizerError) -> String {
        var out = ""
        for id in ids {
            guard id >= 0, Int(id) < tokens.count else { throw .unknownToken(id) }
            let t = tokens[Int(id)]
            if t.hasPrefix(prefix) { out += t.dropFirst(prefix.count) } else { out += (out.isEmpty ? "" : " ") + t }
        }
        return out
    }

    func splitOnAddedTokens(_ text: String) -> [(String, Int32?)] {
        let ordered = added.keys.sorted { $0.count > $1.count }
        var result: [(String, Int32?)] = []
        var current = ""
        var i = text.startIndex
        while i < text.endIndex {
            if let match = ordered.first(where: { text[i...].hasPrefix($0) }) {
                if !current.isEmpty { result.append((current, nil)); current = "" }
                result.append((match, added[match]))
                i = text.index(i, offsetBy: match.count)
            } else {
                current.append(text[i])
                i = text.index(after: i)
            }
        }
        if !current.isEmpty { result.append((current, nil)) }
        return result
    }

    func normalize(_ text: String) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if cleanText {
                if v == 0 || v == 0xFFFD || (isControl(scalar)) { continue }
                if isWhitespace(scalar) { out.append(" "); continue }
            }
            if handleChineseCharacters && isChinese(v) { out += [" ", scalar, " "]; continue }
            out.append(scalar)
        }
        var string = String(String.UnicodeScalarView(out))
        if lowercase { string = string.lowercased() }
        if stripAccents {
            string = String(String.UnicodeScalarView(string.decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                $0.properties.generalCategory != .nonspacingMark
            }))
        }
        return Array(string.unicodeScalars)
    }

    func preTokenize(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for s in scalars {
            if isWhitespace(s) {
                if !current.isEmpty { words.append(current); current = [] }
            } else if isPunctuation(s) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([s])
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    func wordPiece(_ word: [Unicode.Scalar]) -> [Int32] {
        if word.count > maxCharactersPerWord { return [unknownID] }
        var pieces: [Int32] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32? = nil
            while start < end {
                var piece = String(String.UnicodeScalarView(word[start..<end]))
                if start > 0 { piece = prefix + piece }
                if let id = vocabulary[piece] { found = id; break }
                end -= 1
            }
            guard let id = found else { return [unknownID] }
            pieces.append(id)
            start = end
        }
        return pieces
    }

    // MARK: - Character classes, as BERT defines them

    func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }
    func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }
    func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }
    func isChinese(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}
