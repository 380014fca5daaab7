// GPT-2: LayerNorm (with bias) pre-norm blocks, learned absolute positions, one fused Q/K/V
// projection, biases on every linear layer, a plain (ungated) tanh-GELU MLP, tied output.
// Matches transformers' GPT2LMHeadModel, whose Conv1D layers store weights (in, out).
import TesseraFormats
import TesseraCore
import TesseraKernels

enum GPT2Family: ModelFamily {
    static let ggufArchitectures = ["gpt2"]
    static let hfModelTypes = ["gpt2"]

    static func config(gguf: GGUFFile, architecture arch: String) throws(ModelError) -> TransformerConfig {
        let m = GGUFMetadata(file: gguf, architecture: arch)
        let hidden = try m.int("embedding_length"), heads = try m.int("attention.head_count")
        let vocab = try m.vocabularySize()
        var c = TransformerConfig(
            architecture: arch, vocabularySize: vocab, hiddenSize: hidden, layerCount: try m.int("block_count"),
            headCount: heads, kvHeadCount: heads, headDim: hidden / heads,
            intermediateSize: m.optionalInt("feed_forward_length") ?? 4 * hidden, contextLength: try m.int("context_length"))
        applyGPT2Switches(&c, epsilon: m.double("attention.layer_norm_epsilon") ?? 1e-5)
        c.tiedEmbeddings = gguf.tensorInfo("output.weight") == nil
        return c
    }

    static func config(hf: HFConfig) throws(ModelError) -> TransformerConfig {
        func int(_ key: String) throws(ModelError) -> Int {
            guard let v = hf.raw[key]?.int else { throw .invalidConfig(architecture: "gpt2", detail: "config.json has no '\(key)'") }
            return v
        }
        let hidden = try int("n_embd"), heads = try int("n_head")
        var c = TransformerConfig(
            architecture: "gpt2", vocabularySize: hf.vocabSize, hiddenSize: hidden, layerCount: try int("n_layer"),
            headCount: heads, kvHeadCount: heads, headDim: hidden / heads,
            intermediateSize: hf.raw["n_inner"]?.int ?? 4 * hidden, contextLength: try int("n_positions"))
        applyGPT2Switches(&c, epsilon: hf.raw["layer_norm_epsilon"]?.number ?? 1e-5)
        c.activation = try activation(hf.raw["activation_function"]?.string ?? "gelu_new", "gpt2")
        c.tiedEmbeddings = true
        return c
    }

    static func applyGPT2Switches(_ c: inout TransformerConfig, epsilon: Double) {
        c.norm = .layer
        c.normEpsilon = Float(epsilon)
        c.rope = nil
        c.learnedPositions = true
        c.gatedFeedForward = false
        c.activation = .geluTanh
    }

    static let layerNames: [String: String] = [
        "attn_norm": "ln_1", "attn_qkv": "attn.c_attn", "attn_output": "attn.c_proj",
        "ffn_norm": "ln_2", "ffn_up": "mlp.c_fc", "ffn_down": "mlp.c_proj",
    ]

    static func checkpointName(_ name: String) -> String? {
        switch name {
        case "token_embd.weight": return "transformer.wte.weight"
        case "position_embd.weight": return "transformer.wpe.weight"
        case "output_norm.weight": return "transformer.ln_f.weight"
        case "output_norm.bias": return "transformer.ln_f.bias"
        case "output.weight": return nil  // tied
        default: break
        }
        let parts = name.split(separator: ".")
        guard parts.count == 4, parts[0] == "blk", let mapped = layerNames[String(parts[2])] else { return nil }
        return "transformer.h.\(parts[1]).\(mapped).\(parts[3])"
    }

    static func isTransposedInCheckpoint(_ name: String) -> Bool {
        name.hasSuffix(".weight") && ["attn_qkv", "attn_output", "ffn_up", "ffn_down"].contains { name.contains("." + $0 + ".") }
    }
}
