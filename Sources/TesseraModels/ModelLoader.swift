// Loading: a file's metadata becomes a TransformerConfig (through the family that claims its
// architecture), and its tensors become the Weights, checked against the shapes the config implies.
// The registry maps architecture names (GGUF "general.architecture", HF "model_type") to families;
// an architecture no family claims is an error that lists the supported ones.
import Foundation
import TesseraCore
import TesseraFormats
import TesseraKernels

/// What a model family tells the loader: how its files spell the configuration and the tensor names.
protocol ModelFamily: Sendable {
    /// GGUF general.architecture values this family reads.
    static var ggufArchitectures: [String] { get }
    /// HF config.json model_type values this family reads.
    static var hfModelTypes: [String] { get }
    static func config(gguf: GGUFFile, architecture: String) throws(ModelError) -> TransformerConfig
    static func config(hf: HFConfig) throws(ModelError) -> TransformerConfig
    /// The HF checkpoint name of a GGUF-style tensor name.
    static func checkpointName(_ name: String) -> String?
    /// HF GPT-2 stores linear weights (in, out) (its Conv1D); everyone else (out, in).
    static func isTransposedInCheckpoint(_ name: String) -> Bool
    /// Added to norm weights read from an HF checkpoint (Gemma stores w for x·(1 + w); its GGUF stores 1 + w).
    static var checkpointNormOffset: Float { get }
}

extension ModelFamily {
    static func isTransposedInCheckpoint(_ name: String) -> Bool { false }
    static var checkpointNormOffset: Float { 0 }
}

public enum ModelRegistry {
    static let families: [any ModelFamily.Type] = [LlamaFamily.self, Gemma3Family.self, GPT2Family.self]

    public static var supportedArchitectures: [String] {
        families.flatMap { $0.ggufArchitectures + $0.hfModelTypes }.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    }

    /// Loads a GGUF file or an HF directory (config.json + safetensors).
    public static func load(path: String, precision: WeightPrecision = .fast,
                            progress: ((Double) -> Void)? = nil) throws(ModelError) -> DecoderModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .cannotOpen(path: path, reason: "no such file or directory")
        }
        if isDirectory.boolValue { return try loadHF(directory: path, precision: precision, progress: progress) }
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw .cannotOpen(path: path, reason: error.description) }
        return try load(gguf: file, precision: precision, progress: progress)
    }

    public static func load(gguf file: GGUFFile, precision: WeightPrecision = .fast,
                            progress: ((Double) -> Void)? = nil) throws(ModelError) -> DecoderModel {
        guard let arch = file["general.architecture"]?.stringValue else {
            throw .missingMetadata(key: "general.architecture", file: file.path)
        }
        guard let family = families.first(where: { $0.ggufArchitectures.contains(arch) }) else {
            throw .unknownArchitecture(arch, supported: supportedArchitectures)
        }
        let config = try family.config(gguf: file, architecture: arch)
        try config.validate()
        let loader = WeightLoader(source: GGUFWeightSource(file: file), precision: precision, normOffset: 0,
                                  transposed: { _ in false }, progress: progress)
        return DecoderModel(config: config, weights: try loader.load(config), precision: precision)
    }

    static func loadHF(directory: String, precision: WeightPrecision, progress: ((Double) -> Void)?) throws(ModelError) -> DecoderModel {
        let hf: HFConfig
        do { hf = try HFConfig(path: directory + "/config.json") } catch {
            throw .cannotOpen(path: directory, reason: error.description)
        }
        guard let family = families.first(where: { $0.hfModelTypes.contains(hf.modelType) }) else {
            throw .unknownArchitecture(hf.modelType, supported: supportedArchitectures)
        }
        let config = try family.config(hf: hf)
        try config.validate()
        let source = try SafetensorsWeightSource(directory: directory, checkpointName: { family.checkpointName($0) })
        let loader = WeightLoader(source: source, precision: precision, normOffset: family.checkpointNormOffset,
                                  transposed: { family.isTransposedInCheckpoint($0) }, progress: progress)
        return DecoderModel(config: config, weights: try loader.load(config), precision: precision)
    }
}

// MARK: - Weights from a source

struct WeightLoader {
    let source: any WeightSource
    let precision: WeightPrecision
    let normOffset: Float
    let transposed: (String) -> Bool
    let progress: ((Double) -> Void)?

    func load(_ c: TransformerConfig) throws(ModelError) -> ModelWeights {
        guard let embedding = try source.tensor("token_embd.weight") else { throw .missingTensor("token_embd.weight") }
        try expect(embedding, [c.vocabularySize, c.hiddenSize])
        var positions: EmbeddingTable?
        if c.learnedPositions {
            guard let p = try source.tensor("position_embd.weight") else { throw .missingTensor("position_embd.weight") }
            positions = try EmbeddingTable(p, scale: nil)
        }
        var layers: [LayerWeights] = []
        for l in 0..<c.layerCount {
            layers.append(try layer(l, c))
            progress?(Double(l + 1) / Double(c.layerCount + 1))
        }
        let outputName = try source.tensor("output.weight") != nil && !c.tiedEmbeddings ? "output.weight" : "token_embd.weight"
        let output = try linear([outputName], bias: nil, rows: [c.vocabularySize], cols: c.hiddenSize)
        progress?(1)
        return ModelWeights(embedding: try EmbeddingTable(embedding, scale: c.embeddingScale), positions: positions,
                            layers: layers, outputNorm: try norm("output_norm", c.hiddenSize, c),
                            output: output, source: source)
    }

    private func layer(_ l: Int, _ c: TransformerConfig) throws(ModelError) -> LayerWeights {
        let p = "blk.\(l)."
        let H = c.hiddenSize, I = c.intermediateSize
        let qkv: Linear
        if try source.tensor(p + "attn_qkv.weight") != nil {
            qkv = try linear([p + "attn_qkv"], bias: [p + "attn_qkv"], rows: [c.queryWidth + 2 * c.kvWidth], cols: H)
        } else {
            qkv = try linear([p + "attn_q", p + "attn_k", p + "attn_v"], bias: [p + "attn_q", p + "attn_k", p + "attn_v"],
                             rows: [c.queryWidth, c.kvWidth, c.kvWidth], cols: H)
        }
        let gateUp = c.gatedFeedForward
            ? try linear([p + "ffn_gate", p + "ffn_up"], bias: nil, rows: [I, I], cols: H)
            : try linear([p + "ffn_up"], bias: [p + "ffn_up"], rows: [I], cols: H)
        return LayerWeights(
            attentionNorm: try norm(p + "attn_norm", H, c),
            qkv: qkv,
            queryNorm: c.queryKeyNorm ? try norm(p + "attn_q_norm", c.headDim, c) : nil,
            keyNorm: c.queryKeyNorm ? try norm(p + "attn_k_norm", c.headDim, c) : nil,
            attentionOutput: try linear([p + "attn_output"], bias: [p + "attn_output"], rows: [H], cols: c.queryWidth),
            postAttentionNorm: c.sandwichNorms ? try norm(p + "post_attention_norm", H, c) : nil,
            feedForwardNorm: try norm(p + "ffn_norm", H, c),
            gateUp: gateUp,
            down: try linear([p + "ffn_down"], bias: [p + "ffn_down"], rows: [H], cols: I),
            postFeedForwardNorm: c.sandwichNorms ? try norm(p + "post_ffw_norm", H, c) : nil)
    }

    private func expect(_ t: RawTensor, _ shape: [Int]) throws(ModelError) {
        guard t.shape == shape else { throw .wrongShape(tensor: t.name, expected: shape, found: t.shape) }
    }

    /// Several (rows[i], cols) matrices named `names[i] + ".weight"`, stacked; biases where the file has them.
    func linear(_ names: [String], bias biasNames: [String]?, rows: [Int], cols: Int) throws(ModelError) -> Linear {
        var matrices: [WeightMatrix] = []
        for (name, r) in zip(names, rows) {
            let full = name.hasSuffix(".weight") ? name : name + ".weight"
            matrices.append(try matrix(full, rows: r, cols: cols))
        }
        var bias: FloatBuffer?
        if let biasNames {
            let found = try biasNames.map { name throws(ModelError) in try source.tensor(name + ".bias") }
            if found.contains(where: { $0 != nil }) {
                let total = rows.reduce(0, +)
                let buffer = FloatBuffer(count: total)
                buffer.pointer.initialize(repeating: 0, count: total)
                var at = 0
                for (t, r) in zip(found, rows) {
                    if let t {
                        try expect(t, [r])
                        try dequantize(t, into: buffer.pointer + at)
                    }
                    at += r
                }
                bias = buffer
            }
        }
        return Linear(parts: matrices, bias: bias)
    }

    func matrix(_ name: String, rows: Int, cols: Int) throws(ModelError) -> WeightMatrix {
        guard let t = try source.tensor(name) else { throw .missingTensor(name) }
        let flip = transposed(name)
        try expect(t, flip ? [cols, rows] : [rows, cols])
        if precision != .exact, let q = try QuantizedMatrix(t, int8Activations: precision == .int8) { return .quantized(q) }
        let buffer = FloatBuffer(count: rows * cols)
        if flip {
            let tmp = FloatBuffer(count: rows * cols)
            try dequantize(t, into: tmp.pointer)
            for i in 0..<cols { for o in 0..<rows { buffer.pointer[o * cols + i] = tmp.pointer[i * rows + o] } }
        } else {
            try dequantize(t, into: buffer.pointer)
        }
        return .dense(rows: rows, cols: cols, buffer)
    }

    func norm(_ name: String, _ width: Int, _ c: TransformerConfig) throws(ModelError) -> NormWeights {
        guard let w = try source.tensor(name + ".weight") else { throw .missingTensor(name + ".weight") }
        try expect(w, [width])
        let weight = FloatBuffer(count: width)
        try dequantize(w, into: weight.pointer)
        if normOffset != 0 { for i in 0..<width { weight.pointer[i] += normOffset } }
        var bias: FloatBuffer?
        if c.norm == .layer, let b = try source.tensor(name + ".bias") {
            try expect(b, [width])
            bias = FloatBuffer(count: width)
            try dequantize(b, into: bias!.pointer)
        }
        return NormWeights(weight: weight, bias: bias)
    }

    func dequantize(_ t: RawTensor, into out: UnsafeMutablePointer<Float>) throws(ModelError) {
        if t.type == .f32 {
            UnsafeMutableRawPointer(out).copyMemory(from: t.data, byteCount: t.count * 4)
            return
        }
        do { try t.type.dequantize(t.data, count: t.count, into: out) } catch {
            throw .unsupportedTensorType(tensor: t.name, type: "\(t.type)")
        }
    }
}
