// `tessera perplexity FILE`: perplexity of a text file, computed as llama.cpp's llama-perplexity does
// (same chunking, same scored half, same error estimate), so the two tools' figures compare directly;
// with --stream, the whole text through one KV cache of the chosen kind (StreamingLLM's experiment);
// with --stride, sliding windows recomputed from scratch (the baseline a window cache is held to).
import ArgumentParser
import Foundation
import TesseraEngine
import TesseraKVCache

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity", abstract: "Perplexity of a text file, as llama.cpp's llama-perplexity computes it, or streamed through a KV cache.")

    @Argument(help: "A UTF-8 text file.") var file: String
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var kvCache: KVCacheArguments
    @Option(help: "Tokens per chunk (llama-perplexity's -c); with --stride, the recomputed window.") var ctx = 512
    @Option(help: "Score at most this many chunks (llama-perplexity's --chunks).") var chunks: Int?
    @Flag(help: "Stream the whole text through one cache (--kv-cache window or sinks), scoring every token.") var stream = false
    @Option(help: "With --stream: tokens per forward pass.") var batch = 64
    @Option(help: "Sliding-window recomputation: a --ctx window every STRIDE tokens, each from an empty cache.") var stride: Int?
    @Option(help: "Use only the first N tokens of the text.") var limitTokens: Int?
    @Option(help: "With --stream or --stride: write 'tokens,perplexity' per block of --block scored tokens to this CSV.") var curve: String?
    @Option(help: "Block size for --curve.") var block = 1000

    func run() throws {
        try compute.apply()
        guard ctx >= 4 else { throw ValidationError("--ctx must be at least 4") }
        guard !(stream && stride != nil) else { throw ValidationError("--stream and --stride are different methods; choose one") }
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(file) is not UTF-8 text") }
        let loaded = try modelOptions.load()
        var tokens = loaded.tokenizer.encode(text, addSpecialTokens: true)
        if let limitTokens {
            guard limitTokens >= 2 else { throw ValidationError("--limit-tokens must be at least 2") }
            tokens = Array(tokens.prefix(limitTokens))
        }
        guard tokens.count >= 2 else { throw ValidationError("\(file) has fewer than 2 tokens") }

        if stream || stride != nil {
            let bar = ProgressBar(label: stream ? "streaming" : "recomputing")
            let losses: Perplexity.TokenLosses
            let method: String
            if let stride {
                guard stride >= 1 && stride <= ctx else { throw ValidationError("--stride must be in 1...\(ctx)") }
                method = "sliding recomputation, window \(ctx), stride \(stride)"
                losses = try Perplexity.sliding(model: loaded.model, tokens: tokens, context: ctx, stride: stride) { done, total in
                    bar.update(Double(done) / Double(total))
                }
            } else {
                guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
                let options = try kvCache.options(maxTokens: nil, maxChunk: batch)
                let cache = try loaded.model.makeCache(options)
                method = "stream through KV cache \(cache.summary), \(min(batch, cache.maxChunk)) tokens per pass"
                losses = try Perplexity.stream(model: loaded.model, tokens: tokens, cache: options, chunk: batch) { done, total in
                    bar.update(Double(done) / Double(total))
                }
            }
            bar.finish()
            printErr("\(file): \(tokens.count) tokens; \(method)")
            if let curve {
                let rows = losses.blocks(of: block).map { "\($0.0),\(String(format: "%.4f", $0.1))" }
                try (["tokens,perplexity"] + rows).joined(separator: "\n").appending("\n").write(toFile: curve, atomically: true, encoding: .utf8)
            }
            print(String(format: "Final estimate: PPL = %.4f over %d tokens", losses.perplexity, losses.nll.count))
            printErr(String(format: "%.1f s (%.0f tokens/s scored)", losses.seconds, Double(losses.nll.count) / losses.seconds))
            return
        }

        let bos = loaded.tokenizer.addsBOS ? loaded.tokenizer.bosID : nil
        printErr("\(file): \(tokens.count) tokens; \(min(tokens.count / ctx, chunks ?? .max)) chunks of \(ctx); KV cache \(kvCache.kvType)")
        let options = try kvCache.options(maxTokens: ctx)
        let result = try Perplexity.evaluate(model: loaded.model, tokens: tokens, context: ctx, bos: bos, maxChunks: chunks,
                                             cache: options) { c, n, ppl in
            FileHandle.standardError.write("[\(c)]\(String(format: "%.4f", ppl)),".data(using: .utf8)!)
            if c == n { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        }
        print(String(format: "Final estimate: PPL = %.4f +/- %.5f", result.perplexity, result.error))
        printErr(String(format: "%d tokens scored in %.1f s (%.0f tokens/s evaluated)", result.scoredTokens, result.seconds,
                        Double(result.afterChunk.count * ctx) / result.seconds))
    }
}
