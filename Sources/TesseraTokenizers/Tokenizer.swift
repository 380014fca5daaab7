// The Tokenizer protocol: what the engine needs from any tokenizer (byte-level BPE, SentencePiece,
// WordPiece), and the factory that builds the right one from a model file's metadata.
//
// The engine never looks inside a tokenizer: it encodes a prompt (adding BOS where the model wants
// it), streams generated ids back through `tokenBytes` (a token may carry half a UTF-8 character, so
// bytes, not strings), and stops on any of the end-of-generation ids.
import TesseraFormats

public protocol Tokenizer: AnyObject, Sendable {
    /// Number of token ids (the embedding table may be larger).
    var vocabularySize: Int { get }
    /// The beginning-of-sequence id, when the model has one.
    var bosID: Int32? { get }
    /// Whether `encode(_:addSpecialTokens: true)` puts BOS in front (from the model file).
    var addsBOS: Bool { get }
    /// Ids that end generation (EOS, end-of-turn, ...).
    var endOfGenerationIDs: Set<Int32> { get }
    /// Text to ids; special tokens written in the text map to their ids.
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int32]
    /// The raw bytes one id stands for (special tokens: their text).
    func tokenBytes(_ id: Int32) throws(TokenizerError) -> [UInt8]
    /// The id of a token written out ("<|im_end|>"), if the vocabulary has it.
    func id(of token: String) -> Int32?
    /// Ids back to text; invalid UTF-8 becomes U+FFFD. (A SentencePiece tokenizer also drops the space
    /// its dummy prefix stands for from the front.)
    func decode(_ ids: [Int32]) throws(TokenizerError) -> String
}

extension Tokenizer {
    /// Ids back to text; invalid UTF-8 becomes U+FFFD.
    public func decode(_ ids: [Int32]) throws(TokenizerError) -> String {
        var bytes: [UInt8] = []
        for id in ids { bytes += try tokenBytes(id) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The special-token rules a GGUF file states (tokenizer.ggml.*_token_id, add_bos_token, ...).
public struct SpecialTokenRules: Sendable, Equatable {
    public var bosID: Int32?
    public var eosID: Int32?
    public var addsBOS: Bool
    public var extraEndIDs: Set<Int32>

    public init(bosID: Int32? = nil, eosID: Int32? = nil, addsBOS: Bool = false, extraEndIDs: Set<Int32> = []) {
        self.bosID = bosID
        self.eosID = eosID
        self.addsBOS = addsBOS
        self.extraEndIDs = extraEndIDs
    }

    /// Reads the rules from GGUF metadata; end-of-turn tokens named by the vocabulary
    /// (`<|im_end|>`, `<end_of_turn>`, `<|eot_id|>`, `<|endoftext|>`) also end generation.
    /// `addsBOSByDefault`: what llama.cpp assumes when the file has no add_bos_token (true for
    /// SentencePiece and Llama 3 vocabularies).
    public init(gguf: GGUFFile, tokens: [String], addsBOSByDefault: Bool = false) {
        func id(_ key: String) -> Int32? { gguf[key]?.intValue.map { Int32($0) } }
        bosID = id("tokenizer.ggml.bos_token_id")
        eosID = id("tokenizer.ggml.eos_token_id")
        addsBOS = gguf["tokenizer.ggml.add_bos_token"]?.intValue.map { $0 != 0 } ?? addsBOSByDefault
        var ends: Set<Int32> = []
        if let eot = id("tokenizer.ggml.eot_token_id") { ends.insert(eot) }
        for name in ["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"] {
            if let i = tokens.firstIndex(of: name) { ends.insert(Int32(i)) }
        }
        extraEndIDs = ends
    }

    /// End-of-turn tokens a vocabulary names, which end generation besides EOS.
    static func endOfTurnIDs(_ id: (String) -> Int32?) -> Set<Int32> {
        Set(["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"].compactMap(id))
    }

    public var endOfGenerationIDs: Set<Int32> { extraEndIDs.union(eosID.map { [$0] } ?? []) }
}

/// Builds the tokenizer a GGUF file describes (tokenizer.ggml.model: "gpt2" byte-level BPE, "llama"
/// SentencePiece BPE); an unknown kind is an error.
public func makeTokenizer(gguf: GGUFFile) throws(TokenizerError) -> any Tokenizer {
    guard let model = gguf["tokenizer.ggml.model"]?.stringValue else { throw .missingMetadata("tokenizer.ggml.model") }
    switch model {
    case "gpt2": return try ByteLevelBPETokenizer(gguf: gguf)
    case "llama": return try SentencePieceBPETokenizer(gguf: gguf)
    default: throw .unsupportedModel(model)
    }
}
