// Generation for one sequence: prefill the prompt, then decode token by token with the Sampler,
// streaming text as soon as it is complete UTF-8, until a stop token, a stop string, the token limit
// or the end of the context. Stop strings are matched on the text: text that could still become a
// stop string is held back until it cannot, so a stop string is never streamed.
//
// The loop reports each step (the token, the text it releases, its log-probabilities when asked) to a
// callback that can also end generation early: the engine uses that to cancel a request whose
// client has gone away.
import Foundation
import TesseraKVCache
import TesseraModels
import TesseraTokenizers

public struct GenerationOptions: Sendable {
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Generation ends before any of these strings would be emitted.
    public var stopStrings: [String]
    /// Extra ids that end generation (besides the tokenizer's end-of-generation ids unless `ignoreEOS`).
    public var stopTokens: Set<Int32>
    public var ignoreEOS: Bool
    /// What to do with a prompt that does not fit the context (with room for one new token).
    public var truncation: PromptTruncation
    /// Report the log-probability of each chosen token and of this many most likely ones (nil: none).
    /// They come from the model's distribution before penalties, bias and temperature, as in vLLM.
    public var logprobs: Int?

    public init(maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(), stopStrings: [String] = [],
                stopTokens: Set<Int32> = [], ignoreEOS: Bool = false, truncation: PromptTruncation = .none,
                logprobs: Int? = nil) {
        self.truncation = truncation
        self.logprobs = logprobs
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.stopTokens = stopTokens
        self.ignoreEOS = ignoreEOS
    }
}

public enum PromptTruncation: String, Sendable, CaseIterable {
    /// An over-long prompt is an error.
    case none
    /// Keep the prompt's last tokens (and its first, when it is BOS), dropping the oldest.
    case keepEnd = "keep-end"
}

public enum FinishReason: String, Sendable, Codable, CaseIterable {
    /// A stop token or stop string.
    case stop
    /// max tokens or the end of the context.
    case length
    /// Ended early by its caller (a client that went away, a server shutting down); vLLM's "abort".
    case cancelled = "abort"
}

/// One generated token with, when asked, its log-probability and the most likely alternatives.
public struct GeneratedToken: Sendable, Equatable {
    public var id: Int32
    public var logprob: Float?
    /// The most likely tokens at this step, most likely first.
    public var topLogprobs: [TokenLogprob]

    public init(id: Int32, logprob: Float? = nil, topLogprobs: [TokenLogprob] = []) {
        self.id = id; self.logprob = logprob; self.topLogprobs = topLogprobs
    }
}

public struct TokenLogprob: Sendable, Equatable {
    public var id: Int32
    public var logprob: Float
    public init(id: Int32, logprob: Float) { self.id = id; self.logprob = logprob }
}

/// What one step of generation produced: a token (nil for the text released at the very end) and the
/// text that became final with it (empty while UTF-8 or a possible stop string is incomplete).
public struct GenerationStep: Sendable {
    public var token: GeneratedToken?
    public var text: String
}

public struct GenerationResult: Sendable {
    public var text: String
    public var tokens: [Int32]
    public var finishReason: FinishReason
    public var promptTokens: Int
    public var promptSeconds: Double
    public var decodeSeconds: Double

    public var promptTokensPerSecond: Double { promptSeconds > 0 ? Double(promptTokens) / promptSeconds : 0 }
    /// Decode speed over the tokens after the first (the first comes from the prefill's logits).
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(max(tokens.count - 1, 0)) / decodeSeconds : 0 }
}

public enum GenerationError: Error, CustomStringConvertible {
    case emptyPrompt
    case model(ModelError)
    case sampling(SamplingError)
    case tokenizer(TokenizerError)

    public var description: String {
        switch self {
        case .emptyPrompt: "the prompt is empty (no tokens)"
        case .model(let e): e.description
        case .sampling(let e): e.description
        case .tokenizer(let e): e.description
        }
    }
}

/// Holds back text that might be the start of a stop string.
public struct StopStringFilter {
    let stops: [String]
    private var pending = ""

    public init(_ stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// Adds text; returns what can be emitted now, and whether a stop string was reached.
    public mutating func push(_ text: String) -> (emit: String, stopped: Bool) {
        pending += text
        guard !stops.isEmpty else { defer { pending = "" }; return (pending, false) }
        if let hit = stops.compactMap({ pending.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
            let emit = String(pending[..<hit.lowerBound])
            pending = ""
            return (emit, true)
        }
        // Keep the longest suffix that is a proper prefix of some stop string.
        var keep = 0
        for stop in stops {
            for n in stride(from: min(stop.count - 1, pending.count), to: 0, by: -1) where pending.hasSuffix(stop.prefix(n)) {
                keep = max(keep, n)
                break
            }
        }
        let cut = pending.index(pending.endIndex, offsetBy: -keep)
        defer { pending = String(pending[cut...]) }
        return (String(pending[..<cut]), false)
    }

    /// Whatever is held back, at the end of generation.
    public mutating func flush() -> String { defer { pending = "" }; return pending }
}

public final class Generator {
    public let model: DecoderModel
    public let tokenizer: any Tokenizer

    public init(model: DecoderModel, tokenizer: any Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// Generates after `prompt` (ids), in a fresh cache or continuing `cache` (whose contents precede the prompt).
    /// `onText` receives each new piece of text as it becomes final.
    public func generate(prompt: [Int32], options: GenerationOptions, cache givenCache: (any KVCache)? = nil,
                         onText: (String) -> Void = { _ in }) throws(GenerationError) -> GenerationResult {
        try generate(prompt: prompt, options: options, cache: givenCache, onStep: { step in
            if !step.text.isEmpty { onText(step.text) }
            return true
        })
    }

    /// Generates after `prompt`, reporting every step to `onStep`; returning false from it ends
    /// generation with `FinishReason.cancelled` (no further model call is made).
    public func generate(prompt: [Int32], options: GenerationOptions, cache givenCache: (any KVCache)? = nil,
                         onStep: (GenerationStep) -> Bool) throws(GenerationError) -> GenerationResult {
        guard !prompt.isEmpty else { throw .emptyPrompt }
        do { try options.sampling.validate(vocabularySize: model.config.vocabularySize) } catch { throw .sampling(error) }
        let cache: any KVCache
        if let givenCache { cache = givenCache } else {
            do throws(ModelError) { cache = try model.makeCache() } catch { throw .model(error) }
        }
        var prompt = prompt
        let room = cache.maxTokens - cache.length - 1  // leave room for one generated token
        if prompt.count > room {
            guard options.truncation == .keepEnd, room >= 2 else {
                throw .model(.promptTooLong(tokens: cache.length + prompt.count, limit: cache.maxTokens))
            }
            let keepFirst = tokenizer.bosID.map { prompt.first == $0 } ?? false
            prompt = (keepFirst ? [prompt[0]] : []) + prompt.suffix(room - (keepFirst ? 1 : 0))
        }
        var decoder = DecodeState(options: options, tokenizer: tokenizer, prompt: prompt)

        let t0 = DispatchTime.now().uptimeNanoseconds
        var logits: [Float]
        do { logits = try model.forward(prompt, cache: cache) } catch { throw .model(error) }
        let t1 = DispatchTime.now().uptimeNanoseconds

        var finish = FinishReason.length
        var cancelled = false
        while let step = try decoder.accept(logits) {
            guard onStep(step) else { cancelled = true; break }
            if decoder.finishReason != nil { break }
            if cache.length >= cache.maxTokens { break }
            do { logits = try model.forward([step.token!.id], cache: cache) } catch { throw .model(error) }
        }
        if cancelled { finish = .cancelled } else {
            finish = decoder.finishReason ?? .length
            let rest = try decoder.flush()
            if !rest.isEmpty { _ = onStep(GenerationStep(token: nil, text: rest)) }
        }
        let text = decoder.text, tokens = decoder.tokens
        let t2 = DispatchTime.now().uptimeNanoseconds
        return GenerationResult(text: text, tokens: tokens, finishReason: finish, promptTokens: prompt.count,
                                promptSeconds: Double(t1 - t0) / 1e9, decodeSeconds: Double(t2 - t1) / 1e9)
    }
}

/// One sequence's generation after its prompt: the sampler (with its seeded generator), the penalty
/// history, the streaming detokenizer and the stop-string filter. The Generator drives one; the
/// batching engine keeps one per request.
public struct DecodeState {
    private var sampler: Sampler
    private var detokenizer: StreamingDetokenizer
    private var filter: StopStringFilter
    private let stopIDs: Set<Int32>
    private let maxTokens: Int
    private let logprobs: Int?
    private var history: TokenHistory
    private var stoppedByString = false
    public private(set) var tokens: [Int32] = []
    /// The text released so far.
    public private(set) var text = ""
    /// Set once generation is over: a stop token or string (.stop), or max tokens (.length).
    public private(set) var finishReason: FinishReason?

    public init(options: GenerationOptions, tokenizer: any Tokenizer, prompt: [Int32]) {
        sampler = Sampler(options.sampling)
        detokenizer = StreamingDetokenizer(tokenizer)
        filter = StopStringFilter(options.stopStrings)
        stopIDs = options.stopTokens.union(options.ignoreEOS ? [] : tokenizer.endOfGenerationIDs)
        maxTokens = options.maxTokens
        logprobs = options.logprobs
        history = TokenHistory(prompt: prompt)
    }

    /// Samples the next token from `logits` (vocab). Returns the step to report, or nil when the
    /// token is a stop token (which is not reported) or generation was already over.
    public mutating func accept(_ logits: [Float]) throws(GenerationError) -> GenerationStep? {
        try accept(logits[...])
    }

    /// `accept` on a row of a larger buffer (the batching engine's logits), read in place where the
    /// sampler can (greedy).
    public mutating func accept(_ logits: ArraySlice<Float>) throws(GenerationError) -> GenerationStep? {
        guard finishReason == nil else { return nil }
        guard tokens.count < maxTokens else { finishReason = .length; return nil }
        let next = sampler.sample(logits, history: history)
        if stopIDs.contains(next) { finishReason = .stop; return nil }
        tokens.append(next)
        history.append(next)
        let piece: String
        do { piece = try detokenizer.append(next) } catch { throw .tokenizer(error) }
        let (emit, stopped) = filter.push(piece)
        text += emit
        let token = logprobs.map { Logprobs.of(next, in: Array(logits), top: $0) } ?? GeneratedToken(id: next)
        if stopped { finishReason = .stop; stoppedByString = true } else if tokens.count == maxTokens { finishReason = .length }
        return GenerationStep(token: token, text: emit)
    }

    /// Ends generation for a reason from outside (the context is full).
    public mutating func end(_ reason: FinishReason) { if finishReason == nil { finishReason = reason } }

    /// The text still held back (an incomplete character, a possible stop-string start), released at
    /// the end; empty after a stop string, whose text is never sent.
    public mutating func flush() throws(GenerationError) -> String {
        guard !stoppedByString else { return "" }
        let tail = detokenizer.finish()
        let rest = filter.push(tail).emit + filter.flush()
        text += rest
        return rest
    }
}

/// Log-probabilities of the model's distribution (log-softmax of the raw logits).
public enum Logprobs {
    /// The chosen token's log-probability and the `top` most likely tokens' (ties: lower id first).
    public static func of(_ id: Int32, in logits: [Float], top: Int) -> GeneratedToken {
        let (maxLogit, logSum) = logits.withUnsafeBufferPointer { normalizer($0) }
        func logprob(_ i: Int) -> Float { Float(Double(logits[i] - maxLogit) - logSum) }
        let best = top > 0 ? Sampler.topIndices(logits, min(top, logits.count)) : []
        return GeneratedToken(id: id, logprob: logprob(Int(id)),
                              topLogprobs: best.map { TokenLogprob(id: Int32($0), logprob: logprob($0)) })
    }

    /// A row's largest logit m and log Σ exp(l - m), in Double: log p(i) = (l_i - m) - logSum.
    static func normalizer(_ row: UnsafeBufferPointer<Float>) -> (maxLogit: Float, logSum: Double) {
        var maxLogit = -Float.infinity
        for l in row { maxLogit = max(maxLogit, l) }
        var sum = 0.0
        for l in row { sum += exp(Double(l - maxLogit)) }
        return (maxLogit, log(sum))
    }
}
