// The engine's async interface: what a server (or any concurrent caller) sees of the engine.
//
// A caller submits an `EngineRequest` and gets back an AsyncSequence of `EngineEvent`s: the moment it
// was scheduled, then one output per step (a token, its text, its log-probabilities), then a summary.
// Ending the iteration early (a client that disconnects) cancels the request and frees what it held.
// `submit` checks everything it can before queueing (prompt length against the context, sampling
// ranges, a full queue, a shutdown in progress) and throws a typed error, so a server can answer 400
// or 503 before it has sent a byte.
//
// The interface is the one continuous batching implements; `SequentialEngine` is its first
// implementation, which runs one request at a time in arrival (or priority) order.
import Foundation
import TesseraTokenizers

public struct EngineRequest: Sendable {
    /// The caller's id for logs ("chatcmpl-…").
    public var id: String
    public var prompt: [Int32]
    public var options: GenerationOptions
    /// Lower runs first among waiting requests (vLLM's priority scheduling); ties keep arrival order.
    public var priority: Int
    /// Requests with different salts never share prefix-cache blocks (tenant isolation); nil shares.
    public var cacheSalt: String?
    /// Parallel sampling (n > 1): requests submitted with the same group and the same prompt share one
    /// prefill — the first computes the prompt, the others fork its KV blocks (copy-on-write) and
    /// draw their first token from the same logits with their own seeds. Engines without batching
    /// run them one by one.
    public var samplingGroup: String?

    public init(id: String, prompt: [Int32], options: GenerationOptions, priority: Int = 0, cacheSalt: String? = nil,
                samplingGroup: String? = nil) {
        self.id = id; self.prompt = prompt; self.options = options; self.priority = priority; self.cacheSalt = cacheSalt
        self.samplingGroup = samplingGroup
    }
}

public enum EngineEvent: Sendable {
    /// The request left the queue: how long it waited, and how many prompt tokens came from the cache.
    case scheduled(queueSeconds: Double, cachedPromptTokens: Int)
    /// One step's output (the final step may carry text and no token).
    case output(GenerationStep)
    case finished(EngineSummary)
}

public struct EngineSummary: Sendable {
    public var finishReason: FinishReason
    public var promptTokens: Int
    public var cachedPromptTokens: Int
    public var completionTokens: Int
    public var queueSeconds: Double
    public var prefillSeconds: Double
    public var decodeSeconds: Double

    public init(finishReason: FinishReason, promptTokens: Int, cachedPromptTokens: Int, completionTokens: Int,
                queueSeconds: Double, prefillSeconds: Double, decodeSeconds: Double) {
        self.finishReason = finishReason; self.promptTokens = promptTokens; self.cachedPromptTokens = cachedPromptTokens
        self.completionTokens = completionTokens; self.queueSeconds = queueSeconds
        self.prefillSeconds = prefillSeconds; self.decodeSeconds = decodeSeconds
    }
}

public typealias EngineStream = AsyncThrowingStream<EngineEvent, any Error>

public enum EngineError: Error, CustomStringConvertible, Equatable {
    case emptyPrompt
    /// prompt + max_tokens exceed the context (never truncated silently).
    case contextExceeded(promptTokens: Int, maxTokens: Int, limit: Int)
    case invalidParameter(String)
    /// The waiting queue is full; try again later.
    case overloaded(waiting: Int)
    case shuttingDown
    /// The model failed while running the request.
    case generation(String)

    public var description: String {
        switch self {
        case .emptyPrompt: "the prompt is empty (no tokens)"
        case .contextExceeded(let p, let m, let limit):
            "this model's maximum context length is \(limit) tokens, but \(p + m) were requested "
                + "(\(p) in the prompt, \(m) for the completion); shorten the prompt or lower max_tokens"
        case .invalidParameter(let why): why
        case .overloaded(let waiting): "the server is overloaded (\(waiting) requests waiting); retry later"
        case .shuttingDown: "the server is shutting down"
        case .generation(let why): "generation failed: \(why)"
        }
    }
}

/// What the engine is doing now, for /metrics and /health.
public struct EngineStats: Sendable, Equatable {
    public var running = 0
    public var waiting = 0
    /// Fraction of the KV cache's token slots in use by running requests (0...1).
    public var kvCacheUsage = 0.0
    public var preemptions = 0
    /// Prompt tokens looked up in the prefix cache, and how many of them were found.
    public var prefixCacheQueries = 0
    public var prefixCacheHits = 0
    public init() {}
}

public protocol InferenceEngine: AnyObject, Sendable {
    /// The most tokens (prompt + completion) one request may hold.
    var maxModelLength: Int { get }
    var tokenizer: any Tokenizer { get }
    /// Queues a request; its events arrive on the returned stream. Throws before queueing when the
    /// request cannot run.
    func submit(_ request: EngineRequest) throws(EngineError) -> EngineStream
    func stats() -> EngineStats
    /// Refuses new requests from now on; waiting and running ones go on.
    func beginShutdown()
    /// Ends every waiting and running request now (each stream finishes with `.cancelled`).
    func cancelAll()
    /// Whether no request is waiting or running.
    var isIdle: Bool { get }
}

extension InferenceEngine {
    /// Checks a request against the model and the context; shared by every engine.
    public func validate(_ request: EngineRequest) throws(EngineError) {
        guard !request.prompt.isEmpty else { throw .emptyPrompt }
        let vocabulary = tokenizer.vocabularySize
        if let bad = request.prompt.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
            throw .invalidParameter("prompt token \(bad) is outside the vocabulary (0..<\(vocabulary))")
        }
        guard request.options.maxTokens >= 1 else {
            throw .invalidParameter("max_tokens must be at least 1, got \(request.options.maxTokens)")
        }
        if let k = request.options.logprobs, k < 0 || k > 20 {
            throw .invalidParameter("top_logprobs must be in 0...20, got \(k)")
        }
        do { try request.options.sampling.validate(vocabularySize: vocabulary) } catch {
            throw .invalidParameter(error.description)
        }
        guard request.prompt.count + request.options.maxTokens <= maxModelLength else {
            throw .contextExceeded(promptTokens: request.prompt.count, maxTokens: request.options.maxTokens,
                                   limit: maxModelLength)
        }
    }

    /// Runs a request to the end and returns its text, tokens and summary (for callers that do not stream).
    public func complete(_ request: EngineRequest) async throws -> (text: String, tokens: [GeneratedToken], summary: EngineSummary) {
        var text = "", tokens: [GeneratedToken] = []
        for try await event in try submit(request) {
            switch event {
            case .scheduled: break
            case .output(let step):
                text += step.text
                if let token = step.token { tokens.append(token) }
            case .finished(let summary): return (text, tokens, summary)
            }
        }
        throw EngineError.generation("the request ended without a summary")
    }
}
