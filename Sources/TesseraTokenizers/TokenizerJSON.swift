// Tokenizers from a Hugging Face tokenizer.json (and tokenizer_config.json), so that an HF model
// directory loads without a GGUF.
//
// Two shapes of model "BPE" are recognised, stage by stage, and anything else is a typed error naming
// the stage (never a guess):
//   byte-level   normalizer null or NFC; pre_tokenizer ByteLevel(use_regex: true) (the GPT-2 regex),
//                or Sequence[Split(Regex one of ours, Isolated), ByteLevel(use_regex: false)], or
//                Sequence[Digits(individual_digits: true), ByteLevel(use_regex: true)] (SmolLM2);
//   SentencePiece spaces become "▁" through a Replace normaliser or a Metaspace pre-tokenizer; the dummy
//                prefix comes from a Prepend normaliser (always) or Metaspace's prepend_scheme;
//                byte_fallback turns unknown scalars into <0xNN> tokens. Gemma's Split(" ") after the
//                Replace normaliser has no spaces left to split and is accepted as the no-op it is.
// BOS: the post-processor's TemplateProcessing puts a special token before $A (or tokenizer_config's
// add_bos_token / bos_token say so); EOS: tokenizer_config's eos_token, plus the end-of-turn tokens the
// vocabulary names. Added tokens are matched in the raw text (their lstrip/rstrip/single_word flags are
// not implemented: none of the supported models sets them).
import Foundation

public enum TokenizerJSON {
    /// Builds the tokenizer a tokenizer.json describes; `config` is tokenizer_config.json, if any.
    public static func makeTokenizer(data: Data, config: Data? = nil) throws(TokenizerError) -> any Tokenizer {
        let json = try JSONValue.parse(Array(data))
        let configJSON = try config.map { data throws(TokenizerError) in try JSONValue.parse(Array(data)) } ?? .object([])
        guard json.members != nil, let model = json["model"], model.members != nil else { throw .invalidTokenizerJSON("no 'model' object") }
        let type = model["type"]?.string ?? "(none)"
        guard type == "BPE" else { throw .unsupportedModel(type) }
        guard let vocab = model["vocab"]?.members else { throw .invalidTokenizerJSON("model.vocab is not a map of token to id") }
        let merges = try mergePairs(model["merges"])
        let added = (json["added_tokens"]?.array ?? []).compactMap { entry -> (content: String, id: Int, special: Bool)? in
            guard let content = entry["content"]?.string, let id = entry["id"]?.int else { return nil }
            return (content, id, entry["special"]?.bool ?? false)
        }
        var size = added.map(\.id).max() ?? -1
        for (_, id) in vocab {
            guard let id = id.int, id >= 0 else { throw .invalidTokenizerJSON("model.vocab has an id that is not a natural number") }
            size = max(size, id)
        }
        var tokens = [String](repeating: "", count: size + 1)
        for (t, id) in vocab { tokens[id.int!] = t }
        for a in added where a.id >= 0 { tokens[a.id] = a.content }
        let vocabulary = exactVocabulary(tokens)
        let rules = specialTokenRules(json: json, config: configJSON, id: { vocabulary[TokenText($0)] })

        let normalizer = json["normalizer"].flatMap { $0.isNull ? nil : $0 }
        let preTokenizer = json["pre_tokenizer"].flatMap { $0.isNull ? nil : $0 }
        if let byteLevel = try byteLevelPreTokenizer(preTokenizer) {
            var nfc = false
            if let normalizer {
                guard normalizer["type"]?.string == "NFC" else {
                    throw .unsupportedPreTokenizer("normalizer \(normalizer.compactText) with byte-level BPE")
                }
                nfc = true
            }
            return try ByteLevelBPETokenizer(
                tokens: tokens, merges: merges.map { "\($0.0) \($0.1)" }, specialTokens: added.map(\.content),
                preTokenizer: byteLevel, ignoresMerges: model["ignore_merges"]?.bool ?? false, rules: rules,
                appliesNFC: nfc)
        }
        let (dummyPrefix, splitsWords) = try sentencePieceNormalization(normalizer: normalizer, preTokenizer: preTokenizer)
        let unknown = model["unk_token"]?.string.flatMap { vocabulary[TokenText($0)] }
        let specialIDs = Set(added.filter(\.special).map(\.id)), userIDs = Set(added.filter { !$0.special }.map(\.id))
        let byteFallback = model["byte_fallback"]?.bool ?? false
        let types: [GGUFTokenType] = tokens.enumerated().map { i, t in
            if specialIDs.contains(i) { return .control }
            if userIDs.contains(i) { return .userDefined }
            if Int32(i) == unknown { return .unknown }
            if byteFallback, GGUFTokenType.byteValue(t) != nil { return .byte }
            return .normal
        }
        return try SentencePieceBPETokenizer(
            tokens: tokens, tokenTypes: types, merges: .ranked(merges), dummyPrefix: dummyPrefix, splitsWords: splitsWords,
            unknownID: unknown, matchedInText: added.map(\.content), rules: rules)
    }

    // MARK: - Stages

    /// The byte-level pre-tokenizer this tokenizer.json describes, nil if it is not byte-level at all.
    static func byteLevelPreTokenizer(_ pre: JSONValue?) throws(TokenizerError) -> ByteLevelPreTokenizer? {
        guard let pre, let type = pre["type"]?.string else { return nil }
        func isByteLevel(_ p: JSONValue, regex: Bool) throws(TokenizerError) -> Bool {
            guard p["type"]?.string == "ByteLevel" else { return false }
            if p["add_prefix_space"]?.bool == true { throw .unsupportedPreTokenizer("ByteLevel(add_prefix_space: true)") }
            guard (p["use_regex"]?.bool ?? true) == regex else {
                throw .unsupportedPreTokenizer("ByteLevel(use_regex: \(!regex)) in \(pre.compactText)")
            }
            return true
        }
        if type == "ByteLevel" { return try isByteLevel(pre, regex: true) ? ByteLevelPreTokenizer(split: .gpt2) : nil }
        guard type == "Sequence", let steps = pre["pretokenizers"]?.array else { return nil }
        guard steps.contains(where: { $0["type"]?.string == "ByteLevel" }) else { return nil }
        if steps.count == 1, try isByteLevel(steps[0], regex: true) { return ByteLevelPreTokenizer(split: .gpt2) }
        if steps.count == 2, steps[0]["type"]?.string == "Digits", steps[0]["individual_digits"]?.bool == true,
           try isByteLevel(steps[1], regex: true) {
            return ByteLevelPreTokenizer(split: .gpt2, isolatesDigits: true)
        }
        if steps.count == 2, steps[0]["type"]?.string == "Split", try isByteLevel(steps[1], regex: false) {
            let split = steps[0]
            guard let pattern = split["pattern"]?["Regex"]?.string, let kind = ByteLevelSplit(pattern: pattern) else {
                throw .unsupportedPreTokenizer("Split pattern \(split["pattern"]?.compactText ?? "null")")
            }
            guard split["behavior"]?.string == "Isolated", split["invert"]?.bool != true else {
                throw .unsupportedPreTokenizer("Split behavior \(split["behavior"]?.compactText ?? "?"), invert \(split["invert"]?.compactText ?? "?")")
            }
            return ByteLevelPreTokenizer(split: kind)
        }
        throw .unsupportedPreTokenizer(pre.compactText)
    }

    /// SentencePiece-style: where spaces become "▁" and where the dummy prefix goes.
    static func sentencePieceNormalization(normalizer: JSONValue?, preTokenizer: JSONValue?)
        throws(TokenizerError) -> (SentencePieceBPETokenizer.DummyPrefix, splitsWords: Bool) {
        var steps: [JSONValue] = []
        if let normalizer {
            steps = normalizer["type"]?.string == "Sequence" ? normalizer["normalizers"]?.array ?? [] : [normalizer]
        }
        var prepends = false, replaces = false
        for step in steps {
            switch step["type"]?.string {
            case "Prepend" where step["prepend"]?.string == "\u{2581}": prepends = true
            case "Replace" where step["pattern"]?["String"]?.string == " " && step["content"]?.string == "\u{2581}": replaces = true
            default: throw .unsupportedPreTokenizer("normalizer \(step.compactText)")
            }
        }
        guard let preTokenizer else {
            guard replaces else { throw .unsupportedPreTokenizer("no normalizer or pre-tokenizer turns spaces into ▁") }
            return (prepends ? .always : .none, false)
        }
        switch preTokenizer["type"]?.string {
        case "Metaspace" where !replaces && !prepends:
            guard (preTokenizer["replacement"]?.string ?? "\u{2581}") == "\u{2581}" else { throw .unsupportedPreTokenizer(preTokenizer.compactText) }
            let split = preTokenizer["split"]?.bool ?? true
            let legacy = (preTokenizer["add_prefix_space"]?.bool ?? true) ? "always" : "never"
            switch preTokenizer["prepend_scheme"]?.string ?? legacy {
            case "always": return (.unlessPresent(firstSegmentOnly: false), split)
            case "first": return (.unlessPresent(firstSegmentOnly: true), split)
            case "never": return (.none, split)
            case let other: throw .unsupportedPreTokenizer("Metaspace prepend_scheme \(other)")
            }
        case "Split" where replaces && preTokenizer["pattern"]?["String"]?.string == " ":
            return (prepends ? .always : .none, false)  // no spaces are left to split on
        default:
            throw .unsupportedPreTokenizer(preTokenizer.compactText)
        }
    }

    static func specialTokenRules(json: JSONValue, config: JSONValue, id: (String) -> Int32?) -> SpecialTokenRules {
        func tokenName(_ value: JSONValue?) -> String? { value?.string ?? value?["content"]?.string }
        var rules = SpecialTokenRules()
        // TemplateProcessing's single sequence, alone or inside a Sequence post-processor.
        var processors: [JSONValue] = json["post_processor"].map { [$0] } ?? []
        processors += json["post_processor"]?["processors"]?.array ?? []
        for p in processors where p["type"]?.string == "TemplateProcessing" {
            if let name = p["single"]?.array?.first?["SpecialToken"]?["id"]?.string {
                rules.bosID = id(name)
                rules.addsBOS = rules.bosID != nil
            }
        }
        if let bos = tokenName(config["bos_token"]), let bosID = id(bos) { rules.bosID = bosID }
        if let adds = config["add_bos_token"]?.bool { rules.addsBOS = adds && rules.bosID != nil }
        if let eos = tokenName(config["eos_token"]) { rules.eosID = id(eos) }
        rules.extraEndIDs = SpecialTokenRules.endOfTurnIDs(id)
        return rules
    }

    // MARK: - Helpers

    /// Merges as "left right" strings or [left, right] arrays.
    static func mergePairs(_ value: JSONValue?) throws(TokenizerError) -> [(String, String)] {
        guard let list = value?.array else { throw .invalidTokenizerJSON("model.merges is not a list") }
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(list.count)
        for item in list {
            if let s = item.string {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw .invalidMerge(s) }
                pairs.append((String(parts[0]), String(parts[1])))
            } else if let a = item.array, a.count == 2, let l = a[0].string, let r = a[1].string {
                pairs.append((l, r))
            } else {
                throw .invalidTokenizerJSON("merge \(item.compactText) is neither \"a b\" nor [a, b]")
            }
        }
        return pairs
    }
}

/// Builds the tokenizer of a Hugging Face model directory (tokenizer.json, and tokenizer_config.json if present).
public func makeTokenizer(directory: String) throws(TokenizerError) -> any Tokenizer {
    let base = URL(fileURLWithPath: directory)
    guard let data = try? Data(contentsOf: base.appendingPathComponent("tokenizer.json")) else {
        throw .missingMetadata("\(directory)/tokenizer.json")
    }
    let config = try? Data(contentsOf: base.appendingPathComponent("tokenizer_config.json"))
    return try TokenizerJSON.makeTokenizer(data: data, config: config)
}
