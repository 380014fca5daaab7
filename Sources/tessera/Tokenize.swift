// `tessera tokenize "text" [--file FILE] [--model FILE.gguf | DIR]`: the token ids as a JSON array; `--decode "1,2,3"` the
// reverse. Without --model, SmolLM2's GGUF from the model cache; a directory is read as a Hugging Face
// model directory (tokenizer.json, tokenizer_config.json).
import ArgumentParser
import Foundation
import TesseraFormats
import TesseraTokenizers

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Text to token ids (a JSON array), or ids back to text with --decode.")

    /// The model `tessera tokenize` (and `tessera bench tokenizer`) use when none is named.
    static var defaultModel: String {
        FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    }

    @Argument(help: "The text, or with --decode the ids (JSON array or comma-separated).") var input: String?
    @Option(help: "Read the text (or the ids) from this file instead.") var file: String?
    @Option(help: "A GGUF model file, or a Hugging Face model directory with tokenizer.json (default: SmolLM2-135M-Instruct.Q4_1.gguf in ~/.cache/tessera/models).")
    var model: String?
    @Flag(help: "Decode ids to text instead.") var decode = false

    /// The tokenizer of a GGUF file or an HF model directory; a missing file is a clear error.
    static func loadTokenizer(_ path: String?) throws -> any Tokenizer {
        let path = path ?? defaultModel
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValidationError(path == defaultModel
                ? "no --model given and the default model \(path) is absent; pass --model FILE.gguf (or an HF model directory)"
                : "model \(path) does not exist")
        }
        if isDirectory.boolValue { return try makeTokenizer(directory: path) }
        return try makeTokenizer(gguf: try GGUFFile(path: path))
    }

    func run() throws {
        let input: String
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read --file \(file)") }
            input = String(decoding: data, as: UTF8.self)
        } else if let text = self.input {
            input = text
        } else {
            throw ValidationError("give the text (or ids) as an argument or with --file")
        }
        let tokenizer = try Self.loadTokenizer(model)
        if decode {
            let parts = input.split(whereSeparator: { "[], \n".contains($0) })
            let ids = try parts.map { part -> Int32 in
                guard let id = Int32(part) else { throw ValidationError("'\(part)' is not a token id") }
                return id
            }
            print(try tokenizer.decode(ids))
        } else {
            print("[" + tokenizer.encode(input, addSpecialTokens: false).map(String.init).joined(separator: ", ") + "]")
        }
    }
}
