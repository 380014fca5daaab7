// Perplexity, computed exactly as llama.cpp's `llama-perplexity` computes it, so the numbers compare:
// the text is tokenized once (with BOS if the model adds one); it is cut into non-overlapping chunks of
// n_ctx tokens (a remainder shorter than a chunk is dropped); each chunk runs from an empty cache, its
// first token replaced by BOS when the model adds BOS; and only the second half of each chunk is
// scored — for positions first = n_ctx/2 ..< n_ctx-1, the negative log-likelihood of the next token
// — so every scored token sees at least n_ctx/2 tokens of context. PPL = exp(mean NLL), and the
// error estimate is PPL · sqrt((mean(NLL²) - mean(NLL)²) / (count - 1)), as llama.cpp prints it.
import Foundation
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
            let logits = try model.forward(chunk, cache: model.makeCache(maxTokens: context), logits: .all)
            for i in first..<(context - 1) {
                let row = logits[(i * vocab)..<((i + 1) * vocab)]
                let maxLogit = row.max()!
                var sum = 0.0
                for v in row { sum += exp(Double(v - maxLogit)) }
                let logProbability = Double(row[row.startIndex + Int(chunk[i + 1])] - maxLogit) - log(sum)
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
