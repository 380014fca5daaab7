// The blueprint of a decoder-only transformer: every size and every switch in which the supported
// families (Llama/SmolLM2/Mistral/Qwen2, Gemma 3, GPT-2) differ. One forward pass (DecoderModel)
// reads these switches; each family's file only says how its files spell them.
import TesseraCore
import TesseraKernels
import TesseraKVCache

public enum NormKind: Sendable, Equatable {
    /// x / sqrt(mean(x²) + eps) · w
    case rms
    /// (x - mean) / sqrt(var + eps) · w + b
    case layer
}

public struct TransformerConfig: Sendable, Equatable {
    /// The architecture name as files spell it ("llama", "qwen2", "gemma3", "gpt2", ...).
    public var architecture: String
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var intermediateSize: Int
    /// The longest context the model was trained for.
    public var contextLength: Int

    public var norm: NormKind = .rms
    public var normEpsilon: Float = 1e-5
    /// RoPE for full-attention layers; nil for learned absolute positions (GPT-2).
    public var rope: RoPEConfig?
    /// RoPE for sliding-window layers when it differs (Gemma 3's local base 10k).
    public var localRope: RoPEConfig?
    /// Sliding-window size for the layers marked local.
    public var slidingWindow: Int?
    /// Per layer: does it attend within the sliding window only?
    public var localLayers: [Bool]
    /// The feed-forward activation; gated (act(gate) · up) or plain (act(up)).
    public var activation: Activation = .silu
    public var gatedFeedForward = true
    /// RMS-normalise each query and key head before RoPE (Gemma 3).
    public var queryKeyNorm = false
    /// Norms after attention and after the feed-forward too, before the residual add (Gemma 2/3).
    public var sandwichNorms = false
    /// Embeddings multiplied by this (Gemma: sqrt(hidden)).
    public var embeddingScale: Float?
    /// Scores scale; 1/sqrt(headDim) unless the family says otherwise.
    public var attentionScale: Float
    public var attentionSoftcap: Float?
    public var finalLogitSoftcap: Float?
    /// GPT-2: a learned table of absolute positions added to the embeddings.
    public var learnedPositions = false
    public var tiedEmbeddings = false

    public init(architecture: String, vocabularySize: Int, hiddenSize: Int, layerCount: Int, headCount: Int,
                kvHeadCount: Int, headDim: Int, intermediateSize: Int, contextLength: Int) {
        self.architecture = architecture
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim
        self.intermediateSize = intermediateSize
        self.contextLength = contextLength
        self.localLayers = Array(repeating: false, count: layerCount)
        self.attentionScale = 1 / Float(headDim).squareRoot()
    }

    public var queryWidth: Int { headCount * headDim }
    public var kvWidth: Int { kvHeadCount * headDim }

    /// Checks the sizes fit together; a file with inconsistent metadata gets a clear error here.
    public func validate() throws(ModelError) {
        func bad(_ detail: String) -> ModelError { .invalidConfig(architecture: architecture, detail: detail) }
        guard vocabularySize > 0, hiddenSize > 0, layerCount > 0, headCount > 0, kvHeadCount > 0, headDim > 0,
              intermediateSize > 0, contextLength > 0 else { throw bad("sizes must be positive") }
        guard headCount % kvHeadCount == 0 else { throw bad("\(headCount) heads are not a multiple of \(kvHeadCount) KV heads") }
        guard localLayers.count == layerCount else { throw bad("\(localLayers.count) layer kinds for \(layerCount) layers") }
        if localLayers.contains(true) && slidingWindow == nil { throw bad("local layers without a sliding window") }
        if let r = rope, r.rotaryDims > headDim { throw bad("rotary dims \(r.rotaryDims) > head dim \(headDim)") }
    }
}

/// Errors of loading and running a model, each saying what was expected and what was found.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unknownArchitecture(String, supported: [String])
    case missingMetadata(key: String, file: String)
    case missingTensor(String)
    case wrongShape(tensor: String, expected: [Int], found: [Int])
    case unsupportedTensorType(tensor: String, type: String)
    case invalidConfig(architecture: String, detail: String)
    case promptTooLong(tokens: Int, limit: Int)
    case invalidToken(Int32, vocabularySize: Int)
    case cannotOpen(path: String, reason: String)
    case kvCache(KVCacheError)

    public var description: String {
        switch self {
        case .unknownArchitecture(let a, let supported):
            "unknown model architecture '\(a)' (supported: \(supported.joined(separator: ", ")))"
        case .missingMetadata(let key, let file): "\(file) has no '\(key)' metadata"
        case .missingTensor(let name): "the model file has no tensor '\(name)'"
        case .wrongShape(let name, let expected, let found): "tensor '\(name)' has shape \(found), expected \(expected)"
        case .unsupportedTensorType(let name, let type): "tensor '\(name)' has type \(type), which this model cannot use"
        case .invalidConfig(let a, let detail): "invalid \(a) configuration: \(detail)"
        case .promptTooLong(let tokens, let limit): "the prompt has \(tokens) tokens but the context holds \(limit)"
        case .invalidToken(let id, let size): "token id \(id) is outside the vocabulary (\(size) tokens)"
        case .cannotOpen(let path, let reason): "cannot open model '\(path)': \(reason)"
        case .kvCache(let error): error.description
        }
    }
}
