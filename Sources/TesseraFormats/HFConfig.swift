// A Hugging Face model directory's config.json: the fields every architecture shares, typed, with the
// whole JSON object kept for the keys a particular architecture reads itself. Field names mirror
// config.json so that mapping a model is a key-by-key read (CodingKeys below).
import Foundation

public enum HFConfigError: Error, CustomStringConvertible, Equatable {
    case cannotRead(path: String, reason: String)
    case invalid(path: String, detail: String)

    public var description: String {
        switch self {
        case .cannotRead(let path, let reason): "cannot read \(path): \(reason)"
        case .invalid(let path, let detail): "invalid config.json \(path): \(detail)"
        }
    }
}

public struct HFConfig: Sendable {
    public var modelType: String
    public var architectures: [String]
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var intermediateSize: Int?
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int?
    public var headDim: Int
    public var hiddenAct: String?
    public var rmsNormEps: Double?
    public var layerNormEps: Double?
    public var ropeTheta: Double?
    public var slidingWindow: Int?
    public var tieWordEmbeddings: Bool
    /// The whole object, for architecture-specific keys.
    public let raw: [String: JSONValue]

    /// A JSON value (config.json holds nested objects such as rope_scaling).
    public indirect enum JSONValue: Sendable, Equatable, Decodable, CustomStringConvertible {
        case number(Double), string(String), bool(Bool), array([JSONValue]), object([String: JSONValue]), null

        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let n = try? c.decode(Double.self) { self = .number(n) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
            else { self = .object(try c.decode([String: JSONValue].self)) }
        }
        /// Compact JSON-like text (for `tessera inspect`).
        public var description: String {
            switch self {
            case .number(let n): n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : "\(n)"
            case .string(let s): "\"\(s)\""
            case .bool(let b): "\(b)"
            case .null: "null"
            case .array(let a): "[" + a.map(\.description).joined(separator: ", ") + "]"
            case .object(let o): "{" + o.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
            }
        }
        public var number: Double? { if case .number(let n) = self { n } else { nil } }
        public var int: Int? { number.flatMap { Int(exactly: $0) } }
        public var string: String? { if case .string(let s) = self { s } else { nil } }
        public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    }

    public init(path: String) throws(HFConfigError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .cannotRead(path: path, reason: (error as NSError).localizedDescription)
        }
        try self.init(data: data, path: path)
    }

    public init(data: Data, path: String = "config.json") throws(HFConfigError) {
        guard let raw = try? JSONDecoder().decode([String: JSONValue].self, from: data) else {
            throw .invalid(path: path, detail: "not a JSON object")
        }
        // GPT-2-style configs name the sizes differently (n_embd, n_layer, n_head, n_positions).
        let aliases = ["hidden_size": "n_embd", "num_hidden_layers": "n_layer", "num_attention_heads": "n_head",
                       "max_position_embeddings": "n_positions"]
        func int(_ key: String) throws(HFConfigError) -> Int {
            guard let v = raw[key]?.int ?? aliases[key].flatMap({ raw[$0]?.int }) else {
                throw .invalid(path: path, detail: "'\(key)' is missing or not an integer")
            }
            return v
        }
        guard let modelType = raw["model_type"]?.string else { throw .invalid(path: path, detail: "'model_type' is missing") }
        self.modelType = modelType
        architectures = (raw["architectures"].flatMap { if case .array(let a) = $0 { a.compactMap(\.string) } else { nil } }) ?? []
        hiddenSize = try int("hidden_size")
        numHiddenLayers = try int("num_hidden_layers")
        numAttentionHeads = try int("num_attention_heads")
        numKeyValueHeads = raw["num_key_value_heads"]?.int ?? numAttentionHeads
        intermediateSize = raw["intermediate_size"]?.int
        vocabSize = try int("vocab_size")
        maxPositionEmbeddings = raw["max_position_embeddings"]?.int ?? raw["n_positions"]?.int
        guard numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 || raw["head_dim"]?.int != nil else {
            throw .invalid(path: path, detail: "hidden_size \(hiddenSize) is not divisible by \(numAttentionHeads) heads")
        }
        headDim = raw["head_dim"]?.int ?? hiddenSize / numAttentionHeads
        guard numKeyValueHeads > 0, numAttentionHeads % numKeyValueHeads == 0 else {
            throw .invalid(path: path, detail: "\(numAttentionHeads) attention heads are not a multiple of \(numKeyValueHeads) key/value heads")
        }
        hiddenAct = raw["hidden_act"]?.string ?? raw["hidden_activation"]?.string
        rmsNormEps = raw["rms_norm_eps"]?.number
        layerNormEps = raw["layer_norm_eps"]?.number
        // transformers 5 writes rope_parameters {rope_theta, rope_type, ...} (per layer type for Gemma 3).
        var ropeParameters: [String: JSONValue]?
        if case .object(let p)? = raw["rope_parameters"] { ropeParameters = p }
        ropeTheta = raw["rope_theta"]?.number ?? ropeParameters?["rope_theta"]?.number
            ?? { if case .object(let full)? = ropeParameters?["full_attention"] { full["rope_theta"]?.number } else { nil } }()
        slidingWindow = raw["sliding_window"]?.int
        tieWordEmbeddings = raw["tie_word_embeddings"]?.bool ?? false
        self.raw = raw
    }
}
