// `tessera tokenize "text" --model FILE.gguf`: the token ids as a JSON array; `--decode "1,2,3"` the reverse.
import ArgumentParser
import TesseraFormats
import TesseraTokenizers

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Text to token ids (a JSON array), or ids back to text with --decode.")

    @Argument(help: "The text, or with --decode the ids (JSON array or comma-separated).") var input: String
    @Option(help: "A GGUF model file whose tokenizer to use.") var model: String
    @Flag(help: "Decode ids to text instead.") var decode = false

    func run() throws {
        let tokenizer = try makeTokenizer(gguf: try GGUFFile(path: model))
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
