// Perplexity, computed exactly as llama.cpp's `llama-perplexity` computes it, so the numbers compare:
// the text is tokenized once (with BOS if the model adds one); it is cut into non-overlapping chunks of
// n_ctx tokens (a remainder shorter than a chunk is dropped); each chunk runs from an empty cache, its
// first token replaced by BOS when the model adds BOS; and only the second half of each chunk is
// scored — for positions first = n_ctx/2 ..< n_ctx-1, the negative log-likelihood of the next token
// — so every scored token sees at least n_ctx/2 tokens of context. PPL = exp(mean NLL), and the
// error estimate is PPL · sqrt((mean(NLL²) - mean(NLL)²) / (count - 1)), as llama.cpp prints it.
//
// Two more methods measure KV caches over long text (StreamingLLM's experiment):
//   stream   the whole text runs through ONE cache of a chosen kind (window, sinks + window) in chunks,
//            and every token after the first is scored: what generation past the window sees;
//   sliding  recomputation: windows of `context` tokens every `stride` tokens, each from an empty cache,
//            scoring the tokens not scored by the previous window — every token sees between
//            context - stride and context - 1 tokens, recomputed from scratch (the quality a window
//            cache should reach, at context/stride times the work).
// Both score the same tokens 1..<n, so their per-token losses compare position by position.
import Foundation
import TesseraKVCache
import TesseraModels

public struct PerplexityResult: Sendable {
    public var perplexity: Double
    public var error: Double
    /// Running perplexity after each chunk (llama.cpp's "[1]x,[2]y,..." line).
    public var afterChunk: [Double]
    public var scoredTokens: Int
    public var seconds: Double
}

public enum PerplexityError: Error, CustomStringConvertible {
    case textTooShort(tokens: Int, needed: Int)
    case contextTooLong(requested: Int, model: Int)

    public var description: String {
        switch self {
        case .textTooShort(let tokens, let needed):
            "the text has \(tokens) tokens; perplexity needs at least \(needed) (2 chunks of --ctx tokens)"
        case .contextTooLong(let requested, let model): "--ctx \(requested) is longer than the model's context (\(model))"
        }
    }
}

public enum Perplexity {
    /// Scores `tokens` in chunks of `context`; `bos` replaces each chunk's first token when given.
    public static func evaluate(model: DecoderModel, tokens: [Int32], context: Int, bos: Int32?, maxChunks: Int? = nil,
                                cache options: KVCacheOptions = KVCacheOptions(),
                                onChunk: (Int, Int, Double) -> Void = { _, _, _ in }) throws -> PerplexityResult {
        guard context <= model.config.contextLength else { throw PerplexityError.contextTooLong(requested: context, model: model.config.contextLength) }
        guard tokens.count >= 2 * context else { throw PerplexityError.textTooShort(tokens: tokens.count, needed: 2 * context) }
        let chunks = min(tokens.count / context, maxChunks ?? Int.max)
        let first = context / 2, vocab = model.config.vocabularySize
        var nll = 0.0, nll2 = 0.0, count = 0
        var running: [Double] = []
        let t0 = DispatchTime.now().uptimeNanoseconds
        for c in 0..<chunks {
            var chunk = Array(tokens[(c * context)..<((c + 1) * context)])
            if let bos { chunk[0] = bos }
            var chunkOptions = options
            chunkOptions.maxTokens = context
            let logits = try model.forward(chunk, cache: model.makeCache(chunkOptions), logits: .all)
            for i in first..<(context - 1) {
                let logProbability = logSoftmax(logits, row: i, vocab: vocab, token: chunk[i + 1])
                nll -= logProbability
                nll2 += logProbability * logProbability
                count += 1
            }
            running.append(exp(nll / Double(count)))
            onChunk(c + 1, chunks, running.last!)
        }
        let mean = nll / Double(count), meanSquare = nll2 / Double(count)
        let ppl = exp(mean)
        let variance = meanSquare - mean * mean
        let error = variance > 0 && count > 1 ? ppl * (variance / Double(count - 1)).squareRoot() : 0
        return PerplexityResult(perplexity: ppl, error: error, afterChunk: running, scoredTokens: count,
                                seconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
}


extension Perplexity {
    /// log p(token) from row `row` of (rows, vocab) logits, in Double.
    static func logSoftmax(_ logits: [Float], row: Int, vocab: Int, token: Int32) -> Double {
        logits.withUnsafeBufferPointer { all in
            let r = UnsafeBufferPointer(rebasing: all[(row * vocab)..<((row + 1) * vocab)])
            let (maxLogit, logSum) = Logprobs.normalizer(r)
            return Double(r[Int(token)] - maxLogit) - logSum
        }
    }

    /// Per-token losses of a long text: nll[i] = -log p(tokens[i + 1] | what the method lets it see).
    public struct TokenLosses: Sendable {
        public var nll: [Double]
        public var seconds: Double
        public var perplexity: Double { exp(nll.reduce(0, +) / Double(max(1, nll.count))) }
        /// Perplexity of each block of `size` consecutive scored tokens: (tokens scored so far, PPL of the block).
        public func blocks(of size: Int) -> [(Int, Double)] {
            stride(from: 0, to: nll.count, by: size).map { start in
                let block = nll[start..<min(nll.count, start + size)]
                return (start + block.count, exp(block.reduce(0, +) / Double(block.count)))
            }
        }
    }

    /// The whole text through one cache built from `options`, `chunk` tokens per forward pass.
    public static func stream(model: DecoderModel, tokens: [Int32], cache options: KVCacheOptions, chunk: Int,
                              onProgress: (Int, Int) -> Void = { _, _ in }) throws -> TokenLosses {
        let cache = try model.makeCache(options)
        let vocab = model.config.vocabularySize, step = min(chunk, cache.maxChunk)
        var nll: [Double] = []
        nll.reserveCapacity(tokens.count)
        let t0 = DispatchTime.now().uptimeNanoseconds
        for start in stride(from: 0, to: tokens.count - 1, by: step) {
            let end = min(tokens.count - 1, start + step)
            let logits = try model.forward(Array(tokens[start..<end]), cache: cache, logits: .all)
            for i in start..<end { nll.append(-logSoftmax(logits, row: i - start, vocab: vocab, token: tokens[i + 1])) }
            onProgress(end, tokens.count - 1)
        }
        return TokenLosses(nll: nll, seconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }

    /// Recomputation: a window of `context` tokens every `stride` tokens, each from an empty cache.
    public static func sliding(model: DecoderModel, tokens: [Int32], context: Int, stride step: Int,
                               onProgress: (Int, Int) -> Void = { _, _ in }) throws -> TokenLosses {
        precondition(step >= 1 && step <= context, "stride must be in 1...context")
        let vocab = model.config.vocabularySize
        var nll: [Double] = []
        nll.reserveCapacity(tokens.count)
        let t0 = DispatchTime.now().uptimeNanoseconds
        var scoredUpTo = 0  // tokens[1...scoredUpTo] are scored
        while scoredUpTo < tokens.count - 1 {
            let end = min(tokens.count, scoredUpTo == 0 ? context : scoredUpTo + 1 + step)
            let start = max(0, end - context)
            let window = Array(tokens[start..<end])
            // Logits of positions scoredUpTo..<end-1 predict tokens scoredUpTo+1..<end.
            let rows = end - 1 - scoredUpTo
            let logits = try model.forward(window, cache: model.makeCache(maxTokens: context), logits: .tail(rows + 1))
            for target in (scoredUpTo + 1)..<end {
                nll.append(-logSoftmax(logits, row: target - 1 - (end - 1 - rows), vocab: vocab, token: tokens[target]))
            }
            scoredUpTo = end - 1
            onProgress(scoredUpTo, tokens.count - 1)
        }
        return TokenLosses(nll: nll, seconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
}
