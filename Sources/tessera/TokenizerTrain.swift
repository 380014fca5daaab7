// `tessera tokenizer train FILES... --vocab-size N -o tokenizer.json`: a byte-level BPE tokenizer
// trained on text files (TesseraTokenizers.BPETrainer), written as a Hugging Face tokenizer.json.
import ArgumentParser
import Foundation
import TesseraTokenizers

struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenizer", abstract: "Tokenizer tools.",
                                                    subcommands: [TokenizerTrain.self])
}

struct TokenizerTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Train a byte-level BPE tokenizer on text files.")

    @Argument(help: "Text files, or directories (their .txt files).") var inputs: [String]
    @Option(help: "Vocabulary size: 256 bytes + merges + special tokens.") var vocabSize = 1024
    @Option(help: "Special tokens, appended after the merges.") var special: [String] = ["<|endoftext|>"]
    @Option(name: .shortAndLong, help: "Where to write tokenizer.json.") var output = "tokenizer.json"

    func run() throws {
        var files: [String] = []
        for input in inputs {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else { throw ValidationError("\(input) does not exist") }
            if isDirectory.boolValue {
                let listing = try FileManager.default.contentsOfDirectory(atPath: input).filter { $0.hasSuffix(".txt") }.sorted()
                files += listing.map { input + "/" + $0 }
            } else {
                files.append(input)
            }
        }
        guard !files.isEmpty else { throw ValidationError("no text files in \(inputs)") }
        var text = ""
        for f in files {
            guard let data = FileManager.default.contents(atPath: f), let t = String(data: data, encoding: .utf8) else {
                throw ValidationError("\(f) is not readable UTF-8 text")
            }
            text += t
        }
        printErr("training on \(files.count) files, \(text.utf8.count) bytes, to \(vocabSize) tokens")
        let bar = ProgressBar(label: "merging")
        let t0 = Date()
        let result = try BPETrainer(vocabularySize: vocabSize, specialTokens: special).train(text) { done, wanted in
            bar.update(Double(done) / Double(max(1, wanted)))
        }
        bar.finish()
        try result.tokenizerJSON().write(toFile: output, atomically: true, encoding: .utf8)
        let tokenizer = try TokenizerJSON.makeTokenizer(data: Data(contentsOf: URL(fileURLWithPath: output)))
        let sample = String(text.prefix(100_000))
        let ids = tokenizer.encode(sample, addSpecialTokens: false)
        print(String(format: "wrote %@: %d tokens (%d merges) in %.1f s; %.2f bytes per token on the first 100 kB", output,
                     result.tokens.count, result.merges.count, Date().timeIntervalSince(t0), Double(sample.utf8.count) / Double(ids.count)))
    }
}
