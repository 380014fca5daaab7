// Exporting a trained GPT as a Hugging Face GPT-2 directory — config.json, model.safetensors,
// tokenizer.json — which `tessera generate --model DIR` (and transformers) load. nanoGPT's GPT is
// GPT-2's architecture; the differences are spelled out: transformers' GPT-2 stores its linear layers
// as Conv1D, (in, out), so the four matrices of each block are written transposed, and nanoGPT's exact
// GELU is `activation_function: "gelu"` (GPT-2's own is "gelu_new", the tanh form).
import Foundation
import TesseraCore
import TesseraFormats
import TesseraNN

extension GPT {
    /// Writes DIR/config.json, DIR/model.safetensors and DIR/tokenizer.json.
    public func exportHuggingFace(to directory: String, tokenizerJSON: String) throws {
        guard config.bias else { throw TrainingError.invalidConfig("GPT-2 checkpoints have biases; train with bias: true to export") }
        guard config.positions == "learned" else { throw TrainingError.invalidConfig("GPT-2 checkpoints have learned positions; a rotary GPT cannot be exported as one") }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let c = config
        let activationName = c.activation == "gelu_tanh" ? "gelu_new" : "gelu"
        let json = """
        {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": \(c.vocabularySize), "n_positions": \(c.blockSize),
         "n_embd": \(c.embedding), "n_layer": \(c.layers), "n_head": \(c.heads), "n_inner": \(4 * c.embedding),
         "activation_function": "\(activationName)", "layer_norm_epsilon": \(c.layerNormEpsilon), "tie_word_embeddings": true,
         "bos_token_id": \(c.vocabularySize - 1), "eos_token_id": \(c.vocabularySize - 1), "torch_dtype": "float32"}

        """
        try json.write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
        var writer = SafetensorsWriter()
        writer.metadata = ["format": "pt"]
        let conv1D = ["attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"]
        for p in parameters {
            var tensor = Tensor(shape: p.shape, values: p.array)
            if conv1D.contains(where: { p.name.hasSuffix($0) }) { tensor = tensor.transposed(0, 1).contiguous() }
            writer.add(p.name, tensor)
        }
        try writer.write(to: directory + "/model.safetensors")
        try tokenizerJSON.write(toFile: directory + "/tokenizer.json", atomically: true, encoding: .utf8)
    }
}
