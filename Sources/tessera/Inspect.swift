// `tessera inspect PATH`: a GGUF file's metadata (long arrays summarised) and tensor table, a
// safetensors file's tensor table, or an HF model directory's config.json and every shard's tensors.
import ArgumentParser
import Foundation
import TesseraFormats

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a GGUF or safetensors file's (or an HF model directory's) metadata and tensor table.")

    @Argument(help: "A .gguf or .safetensors file, or an HF model directory.") var file: String
    @Flag(help: "Only the metadata.") var metadataOnly = false

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            throw ValidationError("\(file): no such file or directory")
        }
        if isDirectory.boolValue { return try inspectDirectory() }
        if file.hasSuffix(".safetensors") { return try inspectSafetensors(file) }
        let gguf = try GGUFFile(path: file)
        print("\(file): GGUF v\(gguf.version), \(gguf.metadata.count) metadata entries, \(gguf.tensors.count) tensors, alignment \(gguf.alignment)")
        let keyWidth = gguf.metadata.map(\.key.count).max() ?? 0
        for (key, value) in gguf.metadata {
            print("  \(key.padding(toLength: keyWidth, withPad: " ", startingAt: 0))  \(value)")
        }
        if metadataOnly { return }
        let nameWidth = max(4, gguf.tensors.map(\.name.count).max() ?? 0)
        print("\n  \("name".padding(toLength: nameWidth, withPad: " ", startingAt: 0))  type   shape                bytes")
        var total = 0
        var byType: [String: Int] = [:]
        for t in gguf.tensors {
            let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
            print("  \(t.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(t.type.description.padding(toLength: 5, withPad: " ", startingAt: 0))  \(shape.padding(toLength: 19, withPad: " ", startingAt: 0))  \(t.byteCount)")
            total += t.byteCount
            byType[t.type.description, default: 0] += 1
        }
        let types = byType.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print("\n  \(gguf.tensors.count) tensors (\(types)), \(total) bytes of tensor data")
    }

    /// config.json's main sizes, then each .safetensors shard.
    func inspectDirectory() throws {
        let configPath = file + "/config.json"
        if FileManager.default.fileExists(atPath: configPath) {
            let config = try HFConfig(path: configPath)
            print("\(configPath): model_type \(config.modelType), hidden \(config.hiddenSize), layers \(config.numHiddenLayers), "
                  + "heads \(config.numAttentionHeads) (kv \(config.numKeyValueHeads)), head_dim \(config.headDim), vocab \(config.vocabSize)")
            for (key, value) in config.raw.sorted(by: { $0.key < $1.key }) { print("  \(key)  \(value)") }
        }
        let shards = try FileManager.default.contentsOfDirectory(atPath: file).filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !shards.isEmpty else { throw ValidationError("\(file) has no .safetensors files") }
        for shard in shards {
            print("")
            try inspectSafetensors(file + "/" + shard)
        }
    }

    func inspectSafetensors(_ file: String) throws {
        let st = try SafetensorsFile(path: file)
        print("\(file): safetensors, \(st.entries.count) tensors, \(st.metadata.count) metadata entries")
        for (key, value) in st.metadata.sorted(by: { $0.key < $1.key }) { print("  \(key)  \(value)") }
        if metadataOnly { return }
        let nameWidth = max(4, st.entries.map(\.name.count).max() ?? 0)
        for e in st.entries {
            let shape = "[" + e.shape.map(String.init).joined(separator: ", ") + "]"
            print("  \(e.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(e.dtype.padding(toLength: 5, withPad: " ", startingAt: 0))  \(shape.padding(toLength: 19, withPad: " ", startingAt: 0))  \(e.end - e.begin)")
        }
        print("\n  \(st.entries.count) tensors, \(st.entries.reduce(0) { $0 + $1.end - $1.begin }) bytes of tensor data")
    }
}
