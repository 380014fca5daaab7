// SequentialEngine: the engine's async interface over one model, running one request at a time.
//
// Requests wait in a queue ordered by (priority, arrival); one worker thread (not a Swift concurrency
// thread: a forward pass blocks for milliseconds and would starve the server's tasks) takes them in
// turn and runs the Generator, sending each step to the request's stream. A stream whose consumer
// stops listening flags its request as cancelled; the worker checks the flag after every token, and a
// waiting request that is cancelled never runs.
//
// One KV cache serves every request. Before a request runs, the cache is rewound to the longest
// common prefix of what it holds and the new prompt, so a follow-up turn of a conversation, or the
// same system prompt again, only runs its new tokens (reported as cached prompt tokens).
import Foundation
import Synchronization
import TesseraKVCache
import TesseraModels
import TesseraTokenizers

/// Sendable by construction: the model, generator and cache are used by the worker thread alone; the
/// queue and counters are behind a mutex.
public final class SequentialEngine: InferenceEngine, @unchecked Sendable {
    public let maxModelLength: Int
    public let tokenizer: any Tokenizer
    private let generator: Generator
    private let model: DecoderModel
    private let cacheOptions: KVCacheOptions
    /// Requests beyond this many waiting are refused (EngineError.overloaded).
    private let maxWaiting: Int
    private let state = Mutex(State())
    private let wakeUp = NSCondition()

    /// One queued or running request.
    private final class Job: Sendable {
        let request: EngineRequest
        let arrival: UInt64
        let order: Int
        let continuation: EngineStream.Continuation
        let cancelled = Atomic<Bool>(false)
        init(request: EngineRequest, arrival: UInt64, order: Int, continuation: EngineStream.Continuation) {
            self.request = request; self.arrival = arrival; self.order = order; self.continuation = continuation
        }
    }

    private struct State: ~Copyable {
        var waiting: [Job] = []
        var running: Job?
        var runningTokens = 0
        var accepting = true
        var stopped = false
        var paused = false
        var nextOrder = 0
        var stats = EngineStats()
    }

    /// - Parameters:
    ///   - maxModelLength: tokens per request (prompt + completion); at most the model's context.
    ///   - cacheOptions: the KV cache kind (its maxTokens is set to maxModelLength).
    public init(model: DecoderModel, tokenizer: any Tokenizer, maxModelLength: Int? = nil,
                cacheOptions: KVCacheOptions = KVCacheOptions(), maxWaiting: Int = 256) {
        self.model = model
        self.tokenizer = tokenizer
        self.generator = Generator(model: model, tokenizer: tokenizer)
        self.maxModelLength = min(maxModelLength ?? model.config.contextLength, model.config.contextLength)
        var options = cacheOptions
        options.maxTokens = self.maxModelLength
        self.cacheOptions = options
        self.maxWaiting = maxWaiting
        // The worker holds the engine until `stop()`: an engine lives as long as the server that uses it.
        let thread = Thread { self.workerLoop() }
        thread.name = "tessera-engine"
        thread.start()
    }

    public func submit(_ request: EngineRequest) throws(EngineError) -> EngineStream {
        try validate(request)
        let (stream, continuation) = EngineStream.makeStream()
        let job: Job = try state.withLock { (s: inout State) throws(EngineError) -> Job in
            guard s.accepting else { throw .shuttingDown }
            guard s.waiting.count < maxWaiting else { throw .overloaded(waiting: s.waiting.count) }
            let job = Job(request: request, arrival: DispatchTime.now().uptimeNanoseconds, order: s.nextOrder,
                          continuation: continuation)
            s.nextOrder += 1
            // Keep the queue sorted by (priority, arrival order).
            let at = s.waiting.firstIndex { ($0.request.priority, $0.order) > (request.priority, job.order) } ?? s.waiting.count
            s.waiting.insert(job, at: at)
            s.stats.waiting = s.waiting.count
            return job
        }
        continuation.onTermination = { [weak job] termination in
            if case .cancelled = termination { job?.cancelled.store(true, ordering: .relaxed) }
        }
        wakeUp.lock(); wakeUp.signal(); wakeUp.unlock()
        return stream
    }

    public func stats() -> EngineStats {
        state.withLock { s in
            var stats = s.stats
            stats.running = s.running == nil ? 0 : 1
            stats.waiting = s.waiting.count
            stats.kvCacheUsage = Double(s.runningTokens) / Double(maxModelLength)
            return stats
        }
    }

    public var isIdle: Bool { state.withLock { $0.running == nil && $0.waiting.isEmpty } }

    public func beginShutdown() { state.withLock { $0.accepting = false } }

    public func cancelAll() {
        let (waiting, running) = state.withLock { s in
            defer { s.waiting.removeAll() }
            return (s.waiting, s.running)
        }
        running?.cancelled.store(true, ordering: .relaxed)  // the worker stops it after its current token
        // Waiting jobs never reach the worker now: finish their streams here.
        for job in waiting {
            job.continuation.yield(.finished(EngineSummary(
                finishReason: .cancelled, promptTokens: job.request.prompt.count, cachedPromptTokens: 0,
                completionTokens: 0, queueSeconds: seconds(since: job.arrival), prefillSeconds: 0, decodeSeconds: 0)))
            job.continuation.finish()
        }
    }

    /// Holds waiting requests in the queue (the running one goes on) until `resume()`.
    public func pause() { state.withLock { $0.paused = true } }

    public func resume() {
        state.withLock { $0.paused = false }
        wakeUp.lock(); wakeUp.signal(); wakeUp.unlock()
    }

    /// Ends the worker thread once the queue is empty; the engine accepts nothing more.
    public func stop() {
        state.withLock { $0.stopped = true; $0.accepting = false }
        wakeUp.lock(); wakeUp.signal(); wakeUp.unlock()
    }

    // MARK: - The worker

    private func workerLoop() {
        var cache: (any KVCache)?
        var cachedIDs: [Int32] = []  // the tokens whose keys and values the cache holds, in order
        while true {
            wakeUp.lock()
            var job: Job?
            while true {
                let (next, stopped) = state.withLock { s -> (Job?, Bool) in
                    guard !s.waiting.isEmpty, !s.paused else { return (nil, s.stopped) }
                    let job = s.waiting.removeFirst()
                    s.running = job
                    return (job, false)
                }
                if let next { job = next; break }
                if stopped { wakeUp.unlock(); return }
                wakeUp.wait()
            }
            wakeUp.unlock()
            guard let job else { continue }
            run(job, cache: &cache, cachedIDs: &cachedIDs)
            state.withLock { s in s.running = nil; s.runningTokens = 0 }
        }
    }

    private func run(_ job: Job, cache: inout (any KVCache)?, cachedIDs: inout [Int32]) {
        let queueSeconds = seconds(since: job.arrival)
        let prompt = job.request.prompt
        if job.cancelled.load(ordering: .relaxed) {
            job.continuation.yield(.finished(EngineSummary(
                finishReason: .cancelled, promptTokens: prompt.count, cachedPromptTokens: 0, completionTokens: 0,
                queueSeconds: queueSeconds, prefillSeconds: 0, decodeSeconds: 0)))
            release()
            job.continuation.finish()
            return
        }
        do {
            if cache == nil { cache = try model.makeCache(cacheOptions) }
            guard let kv = cache else { return }
            // Rewind to the common prefix; at least one prompt token must run to give the next logits.
            var common = min(zip(cachedIDs, prompt).prefix { $0 == $1 }.count, prompt.count - 1)
            do { try kv.truncate(to: common) } catch {
                cache = try model.makeCache(cacheOptions)
                common = 0
            }
            cachedIDs = Array(cachedIDs.prefix(common))
            state.withLock { s in
                s.stats.prefixCacheQueries += prompt.count
                s.stats.prefixCacheHits += common
                s.runningTokens = prompt.count
            }
            job.continuation.yield(.scheduled(queueSeconds: queueSeconds, cachedPromptTokens: common))
            var produced = 0
            let result = try generator.generate(prompt: Array(prompt[common...]), options: job.request.options,
                                                cache: cache) { step in
                if step.token != nil {
                    produced += 1
                    state.withLock { $0.runningTokens = prompt.count + produced }
                }
                job.continuation.yield(.output(step))
                return !job.cancelled.load(ordering: .relaxed)
            }
            cachedIDs = Array((prompt + result.tokens).prefix(cache?.length ?? 0))
            job.continuation.yield(.finished(EngineSummary(
                finishReason: result.finishReason, promptTokens: prompt.count, cachedPromptTokens: common,
                completionTokens: result.tokens.count, queueSeconds: queueSeconds,
                prefillSeconds: result.promptSeconds, decodeSeconds: result.decodeSeconds)))
            release()
            job.continuation.finish()
        } catch {
            // The cache may hold part of this request: forget what it holds.
            cachedIDs = []
            cache = nil
            release()
            job.continuation.finish(throwing: EngineError.generation("\(error)"))
        }
    }

    /// The running request leaves before its stream ends, so a caller that sees the end sees it gone.
    private func release() { state.withLock { s in s.running = nil; s.runningTokens = 0 } }

    private func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}
