// `tessera perplexity FILE`: perplexity of a text file, computed as llama.cpp's llama-perplexity does
// (same chunking, same scored half, same error estimate), so the two tools' figures compare directly.
import ArgumentParser
import Foundation
import TesseraEngine

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity", abstract: "Perplexity of a text file, as llama.cpp's llama-perplexity computes it.")

    @Argument(help: "A UTF-8 text file.") var file: String
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var compute: ComputeOptions
    @Option(help: "Tokens per chunk (llama-perplexity's -c).") var ctx = 512
    @Option(help: "Score at most this many chunks (llama-perplexity's --chunks).") var chunks: Int?

    func run() throws {
        try compute.apply()
        guard ctx >= 4 else { throw ValidationError("--ctx must be at least 4") }
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(file) is not UTF-8 text") }
        let loaded = try modelOptions.load()
        let tokens = loaded.tokenizer.encode(text, addSpecialTokens: true)
        let bos = loaded.tokenizer.addsBOS ? loaded.tokenizer.bosID : nil
        printErr("\(file): \(tokens.count) tokens; \(min(tokens.count / ctx, chunks ?? .max)) chunks of \(ctx)")
        let result = try Perplexity.evaluate(model: loaded.model, tokens: tokens, context: ctx, bos: bos, maxChunks: chunks) { c, n, ppl in
            FileHandle.standardError.write("[\(c)]\(String(format: "%.4f", ppl)),".data(using: .utf8)!)
            if c == n { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        }
        print(String(format: "Final estimate: PPL = %.4f +/- %.5f", result.perplexity, result.error))
        printErr(String(format: "%d tokens scored in %.1f s (%.0f tokens/s evaluated)", result.scoredTokens, result.seconds,
                        Double(result.afterChunk.count * ctx) / result.seconds))
    }
}
