// The one error type every tokenizer throws: each case says what was expected and what was found.
// An unknown tokenizer model, pre-tokenizer or normalizer is an error here, never a guess.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// tokenizer.ggml.model or tokenizer.json's model.type names a kind we do not implement.
    case unsupportedModel(String)
    /// tokenizer.ggml.pre or tokenizer.json's pre_tokenizer/normalizer names a split we do not implement.
    case unsupportedPreTokenizer(String)
    case missingMetadata(String)
    case invalidMerge(String)
    case unknownToken(Int32)
    /// A tokenizer.json (or tokenizer_config.json) that does not parse or lacks a field.
    case invalidTokenizerJSON(String)
    /// A metadata array whose length disagrees with the vocabulary (scores, token types).
    case inconsistentMetadata(String)

    public var description: String {
        switch self {
        case .unsupportedModel(let m):
            "tokenizer model '\(m)' is not supported (GGUF 'gpt2' and 'llama'; tokenizer.json BPE, byte-level or SentencePiece-style, are)"
        case .unsupportedPreTokenizer(let p):
            "pre-tokenizer '\(p)' is not supported (GGUF tokenizer.ggml.pre: gpt2/gpt-2/default, llama-bpe/llama3/llama-v3, qwen2, smollm)"
        case .missingMetadata(let key): "the model file has no '\(key)'"
        case .invalidMerge(let m): "merge rule '\(m)' does not name two vocabulary entries"
        case .unknownToken(let id): "token id \(id) is outside the vocabulary"
        case .invalidTokenizerJSON(let reason): "tokenizer.json: \(reason)"
        case .inconsistentMetadata(let reason): "tokenizer metadata: \(reason)"
        }
    }
}
