// Where weights come from: a GGUF file or a Hugging Face directory of safetensors files, seen through
// one interface that names tensors the GGUF way ("blk.3.attn_q.weight"). A family's file supplies the
// table from those names to the checkpoint's own (HF: "model.layers.3.self_attn.q_proj.weight"), so
// the model code loads by one set of names whatever the file.
import Foundation
import TesseraCore
import TesseraFormats
import TesseraKernels

/// One stored tensor: its row-major shape (a linear layer's weight is (out, in)), its element or block
/// type, and its bytes (inside a file mapping that the source keeps alive).
public struct RawTensor: @unchecked Sendable {
    public var name: String
    public var shape: [Int]
    public var type: GGMLType
    public var data: UnsafeRawPointer
    public var count: Int { shape.reduce(1, *) }

    /// `data` must outlive every use of the tensor (and of what is built from it without copying).
    public init(name: String, shape: [Int], type: GGMLType, data: UnsafeRawPointer) {
        self.name = name; self.shape = shape; self.type = type; self.data = data
    }
}

public protocol WeightSource: Sendable {
    /// The tensor under its GGUF-style name, or nil when the file does not have it.
    func tensor(_ name: String) throws(ModelError) -> RawTensor?
    /// What this source is, for messages ("model.gguf").
    var path: String { get }
}

// MARK: - GGUF

public struct GGUFWeightSource: WeightSource {
    public let file: GGUFFile
    public var path: String { file.path }

    public init(file: GGUFFile) { self.file = file }

    public func tensor(_ name: String) throws(ModelError) -> RawTensor? {
        guard let info = file.tensorInfo(name) else { return nil }
        return RawTensor(name: name, shape: info.shape, type: info.type, data: file.data(of: info))
    }
}

// MARK: - Hugging Face directory (config.json + *.safetensors)

public struct SafetensorsWeightSource: WeightSource {
    public let path: String
    let files: [SafetensorsFile]
    /// GGUF-style name -> checkpoint name; nil drops the tensor.
    let checkpointName: @Sendable (String) -> String?

    /// Opens every .safetensors file in `directory` (a single file or shards).
    public init(directory: String, checkpointName: @escaping @Sendable (String) -> String?) throws(ModelError) {
        path = directory
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw .cannotOpen(path: directory, reason: "\(error.localizedDescription)")
        }
        var files: [SafetensorsFile] = []
        for name in names.sorted() where name.hasSuffix(".safetensors") {
            do { files.append(try SafetensorsFile(path: directory + "/" + name)) } catch {
                throw .cannotOpen(path: directory + "/" + name, reason: error.description)
            }
        }
        guard !files.isEmpty else { throw .cannotOpen(path: directory, reason: "no .safetensors files in the directory") }
        self.files = files
        self.checkpointName = checkpointName
    }

    public func tensor(_ name: String) throws(ModelError) -> RawTensor? {
        guard let stored = checkpointName(name) else { return nil }
        for file in files {
            guard let entry = file.entry(stored) else { continue }
            let types: [String: GGMLType] = ["F32": .f32, "F16": .f16, "BF16": .bf16]
            guard let type = types[entry.dtype] else { throw .unsupportedTensorType(tensor: stored, type: entry.dtype) }
            return RawTensor(name: stored, shape: entry.shape, type: type,
                             data: UnsafeRawPointer(file.storage.bytes + file.dataOffset + entry.begin))
        }
        return nil
    }
}

// MARK: - GGUF metadata, per architecture

/// Reads "<arch>.<key>" metadata with typed errors.
struct GGUFMetadata {
    let file: GGUFFile
    let architecture: String

    func int(_ key: String) throws(ModelError) -> Int {
        guard let v = optionalInt(key) else { throw .missingMetadata(key: "\(architecture).\(key)", file: file.path) }
        return v
    }
    func optionalInt(_ key: String) -> Int? {
        let value = file["\(architecture).\(key)"]
        // Some keys (head_count_kv) may be per-layer arrays; a uniform array is accepted.
        if let a = value?.arrayValue, let first = a.first?.intValue, a.allSatisfy({ $0.intValue == first }) { return first }
        return value?.intValue
    }
    /// Rows of the embedding table, else "<arch>.vocab_size".
    func vocabularySize() throws(ModelError) -> Int {
        if let rows = file.tensorInfo("token_embd.weight")?.shape.first { return rows }
        return try int("vocab_size")
    }
    /// The sizes every Llama-shaped GGUF states the same way (embedding_length, block_count, heads, ...).
    func llamaShapedConfig(normEpsilon: Float) throws(ModelError) -> TransformerConfig {
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        var c = TransformerConfig(
            architecture: architecture, vocabularySize: try vocabularySize(), hiddenSize: hidden, layerCount: try int("block_count"),
            headCount: heads, kvHeadCount: optionalInt("attention.head_count_kv") ?? heads,
            headDim: optionalInt("attention.key_length") ?? hidden / heads,
            intermediateSize: try int("feed_forward_length"), contextLength: try int("context_length"))
        c.normEpsilon = double("attention.layer_norm_rms_epsilon").map { Float($0) } ?? normEpsilon
        return c
    }

    /// rope.scaling.type "linear" with its factor, else none.
    var linearRoPEScaling: RoPEConfig.Scaling {
        if string("rope.scaling.type") == "linear", let f = double("rope.scaling.factor") { return .linear(factor: f) }
        return .none
    }

    func double(_ key: String) -> Double? { file["\(architecture).\(key)"]?.doubleValue }
    func string(_ key: String) -> String? { file["\(architecture).\(key)"]?.stringValue }
}
