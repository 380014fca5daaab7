// Gemma 3 (text): Llama-shaped blocks with
//   - RMSNorm computing x·(1 + w) (HF stores w; llama.cpp's converter stores 1 + w in the GGUF),
//     before AND after both attention and the feed-forward ("sandwich" norms);
//   - RMSNorm of every query and key head (QK-norm) before RoPE;
//   - GeGLU (tanh GELU) feed-forward; embeddings scaled by sqrt(hidden); tied output;
//   - five local (sliding-window) layers for every global one, local layers with their own RoPE base
//     (10 000) and global ones with rope_theta (1 000 000), plus any linear scaling on global only;
//   - scores scaled by query_pre_attn_scalar^-1/2.
// Matches transformers' Gemma3ForCausalLM. Settings a GGUF file does not carry (the local/global
// pattern, the local RoPE base, the attention scale) come from this file, as in llama.cpp.
import TesseraFormats
import TesseraCore
import TesseraKernels

enum Gemma3Family: ModelFamily {
    static let ggufArchitectures = ["gemma3"]
    static let hfModelTypes = ["gemma3_text"]
    static let checkpointNormOffset: Float = 1
    /// Every sixth layer is global.
    static let slidingWindowPattern = 6
    static let localRopeBase = 10000.0

    static func config(gguf: GGUFFile, architecture arch: String) throws(ModelError) -> TransformerConfig {
        let m = GGUFMetadata(file: gguf, architecture: arch)
        var c = try m.llamaShapedConfig(normEpsilon: 1e-6)
        let headDim = c.headDim, rotary = m.optionalInt("rope.dimension_count") ?? headDim
        c.rope = RoPEConfig(rotaryDims: rotary, base: m.double("rope.freq_base") ?? 1_000_000, scaling: m.linearRoPEScaling,
                            layout: .neox)
        c.localRope = RoPEConfig(rotaryDims: rotary, base: localRopeBase, layout: .neox)
        guard let window = m.optionalInt("attention.sliding_window") else {
            throw .missingMetadata(key: "\(arch).attention.sliding_window", file: gguf.path)
        }
        c.slidingWindow = window
        c.localLayers = (0..<c.layerCount).map { ($0 + 1) % slidingWindowPattern != 0 }
        applyGemmaSwitches(&c)
        c.attentionScale = 1 / Float(headDim).squareRoot()
        return c
    }

    static func config(hf: HFConfig) throws(ModelError) -> TransformerConfig {
        var c = try llamaShapedConfig(hf, defaultContext: 32768, normEpsilon: 1e-6)
        c.rope = RoPEConfig(rotaryDims: hf.headDim, base: hf.ropeTheta ?? 1_000_000, scaling: try ropeScaling(hf), layout: .neox)
        c.localRope = RoPEConfig(rotaryDims: hf.headDim, base: hf.raw["rope_local_base_freq"]?.number ?? localRopeBase, layout: .neox)
        guard let window = hf.slidingWindow else { throw .invalidConfig(architecture: hf.modelType, detail: "no sliding_window") }
        c.slidingWindow = window
        if case .array(let types)? = hf.raw["layer_types"] {
            c.localLayers = types.map { $0.string == "sliding_attention" }
        } else {
            let pattern = hf.raw["sliding_window_pattern"]?.int ?? slidingWindowPattern
            c.localLayers = (0..<c.layerCount).map { ($0 + 1) % pattern != 0 }
        }
        applyGemmaSwitches(&c)
        c.activation = try activation(hf.raw["hidden_activation"]?.string ?? hf.hiddenAct ?? "gelu_pytorch_tanh", hf.modelType)
        c.attentionScale = 1 / Float(hf.raw["query_pre_attn_scalar"]?.number ?? Double(hf.headDim)).squareRoot()
        c.finalLogitSoftcap = hf.raw["final_logit_softcapping"]?.number.map { Float($0) }
        c.attentionSoftcap = hf.raw["attn_logit_softcapping"]?.number.map { Float($0) }
        return c
    }

    static func applyGemmaSwitches(_ c: inout TransformerConfig) {
        c.activation = .geluTanh
        c.queryKeyNorm = true
        c.sandwichNorms = true
        c.embeddingScale = Float(c.hiddenSize).squareRoot()
        c.tiedEmbeddings = true
    }

    static func checkpointName(_ name: String) -> String? { hfLlamaStyleName(name, layerNames: layerNames) }

    static let layerNames: [String: String] = LlamaFamily.layerNames.merging([
        "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
        "post_attention_norm": "post_attention_layernorm", "ffn_norm": "pre_feedforward_layernorm",
        "post_ffw_norm": "post_feedforward_layernorm",
    ]) { _, new in new }
}
