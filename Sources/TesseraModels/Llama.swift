// The Llama family: Llama 2/3, SmolLM2, Mistral (sliding window) and Qwen2 (Q/K/V biases, loaded
// wherever the file has them). Pre-norm RMSNorm blocks, SwiGLU feed-forward, RoPE.
// Matches transformers' LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM.
//
// RoPE layout: llama.cpp's converter permutes the Q and K rows of "llama" GGUFs so that adjacent pairs
// rotate together (interleaved); HF checkpoints and "qwen2" GGUFs rotate the two halves (NeoX).
import TesseraFormats
import TesseraCore
import TesseraKernels

enum LlamaFamily: ModelFamily {
    static let ggufArchitectures = ["llama", "qwen2", "mistral"]
    static let hfModelTypes = ["llama", "mistral", "qwen2"]

    static func config(gguf: GGUFFile, architecture arch: String) throws(ModelError) -> TransformerConfig {
        let m = GGUFMetadata(file: gguf, architecture: arch)
        var c = try m.llamaShapedConfig(normEpsilon: 1e-5)
        let headDim = c.headDim, rotary = m.optionalInt("rope.dimension_count") ?? headDim
        var scaling = m.linearRoPEScaling
        if let info = gguf.tensorInfo("rope_freqs.weight") {
            // Llama 3.1-style scaling, stored as one divisor per rotated pair.
            guard info.type == .f32, info.count == rotary / 2 else {
                throw .wrongShape(tensor: "rope_freqs.weight", expected: [rotary / 2], found: info.shape)
            }
            let p = gguf.data(of: info)
            scaling = .frequencyFactors((0..<info.count).map { Double(p.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self)) })
        }
        c.rope = RoPEConfig(rotaryDims: rotary, base: m.double("rope.freq_base") ?? 10000,
                            scaling: scaling, layout: arch == "llama" ? .interleaved : .neox)
        if let window = m.optionalInt("attention.sliding_window"), window > 0 {
            c.slidingWindow = window
            c.localLayers = Array(repeating: true, count: c.layerCount)
        }
        c.tiedEmbeddings = gguf.tensorInfo("output.weight") == nil
        return c
    }

    static func config(hf: HFConfig) throws(ModelError) -> TransformerConfig {
        var c = try llamaShapedConfig(hf, defaultContext: 4096, normEpsilon: 1e-5)
        c.rope = RoPEConfig(rotaryDims: hf.headDim, base: hf.ropeTheta ?? 10000, scaling: try ropeScaling(hf), layout: .neox)
        let windowed = hf.modelType == "mistral" || hf.raw["use_sliding_window"]?.bool == true
        if windowed, let window = hf.slidingWindow {
            c.slidingWindow = window
            c.localLayers = Array(repeating: true, count: c.layerCount)
        }
        c.tiedEmbeddings = hf.tieWordEmbeddings
        c.activation = try activation(hf.hiddenAct ?? "silu", hf.modelType)
        return c
    }

    static func checkpointName(_ name: String) -> String? { hfLlamaStyleName(name, layerNames: layerNames) }

    static let layerNames: [String: String] = [
        "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
        "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    ]
}

/// The sizes every Llama-shaped config.json states the same way.
func llamaShapedConfig(_ hf: HFConfig, defaultContext: Int, normEpsilon: Double) throws(ModelError) -> TransformerConfig {
    guard let intermediate = hf.intermediateSize else {
        throw .invalidConfig(architecture: hf.modelType, detail: "config.json has no intermediate_size")
    }
    var c = TransformerConfig(
        architecture: hf.modelType, vocabularySize: hf.vocabSize, hiddenSize: hf.hiddenSize, layerCount: hf.numHiddenLayers,
        headCount: hf.numAttentionHeads, kvHeadCount: hf.numKeyValueHeads, headDim: hf.headDim,
        intermediateSize: intermediate, contextLength: hf.maxPositionEmbeddings ?? defaultContext)
    c.normEpsilon = Float(hf.rmsNormEps ?? normEpsilon)
    return c
}

/// HF rope_scaling -> RoPEConfig.Scaling.
func ropeScaling(_ hf: HFConfig) throws(ModelError) -> RoPEConfig.Scaling {
    // rope_scaling (transformers 4) or a flat rope_parameters (transformers 5).
    let object: [String: HFConfig.JSONValue]
    if case .object(let s)? = hf.raw["rope_scaling"] { object = s }
    else if case .object(let p)? = hf.raw["rope_parameters"], p["rope_type"] != nil { object = p }
    else { return .none }
    let s = object
    let type = s["rope_type"]?.string ?? s["type"]?.string ?? "default"
    switch type {
    case "default": return .none
    case "linear": return .linear(factor: s["factor"]?.number ?? 1)
    case "llama3":
        guard let f = s["factor"]?.number, let low = s["low_freq_factor"]?.number, let high = s["high_freq_factor"]?.number,
              let original = s["original_max_position_embeddings"]?.int else {
            throw .invalidConfig(architecture: hf.modelType, detail: "llama3 rope_scaling lacks a field")
        }
        return .llama3(factor: f, lowFrequencyFactor: low, highFrequencyFactor: high, originalContext: original)
    default: throw .invalidConfig(architecture: hf.modelType, detail: "rope_scaling type '\(type)' is not supported")
    }
}

func activation(_ name: String, _ arch: String) throws(ModelError) -> Activation {
    switch name {
    case "silu", "swish": return .silu
    case "gelu_pytorch_tanh", "gelu_new", "gelu_fast": return .geluTanh
    case "gelu": return .geluErf
    default: throw .invalidConfig(architecture: arch, detail: "activation '\(name)' is not supported")
    }
}

/// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight" (and the global tensors) for
/// checkpoints laid out like transformers' Llama.
func hfLlamaStyleName(_ name: String, layerNames: [String: String]) -> String? {
    switch name {
    case "token_embd.weight": return "model.embed_tokens.weight"
    case "output_norm.weight": return "model.norm.weight"
    case "output.weight": return "lm_head.weight"
    default: break
    }
    let parts = name.split(separator: ".")
    guard parts.count == 4, parts[0] == "blk", let mapped = layerNames[String(parts[2])] else { return nil }
    return "model.layers.\(parts[1]).\(mapped).\(parts[3])"
}
