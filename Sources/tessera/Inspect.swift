// `tessera inspect FILE`: a GGUF file's metadata (long arrays summarised) and tensor table.
import ArgumentParser
import TesseraFormats

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a GGUF file's metadata and tensor table.")

    @Argument(help: "A .gguf file.") var file: String
    @Flag(help: "Only the metadata.") var metadataOnly = false

    func run() throws {
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
}
