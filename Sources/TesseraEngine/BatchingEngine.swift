// BatchingEngine: continuous batching (iteration-level scheduling) over a paged KV cache — the
// engine's async interface as vLLM implements it.
//
// One worker thread runs steps. Each step it takes newly submitted requests into the scheduler, drops
// cancelled ones, asks the scheduler what to compute (decodes first, then prefill chunks, within the
// token budget; preempting when blocks run out), makes the block copies that copy-on-write asks for,
// runs every scheduled sequence's tokens through the model in one pass (DecoderModel.forward(batch:)),
// and samples a token for each sequence whose computation reached its end. Requests join and leave
// the batch at any step, so a short request never waits for a long one to finish.
//
// Each request keeps its own DecodeState (seeded sampler, penalties, detokenizer, stop strings), so
// batching never changes what a request samples from the logits it gets.
import Foundation
import Synchronization
import TesseraCore
import TesseraKVCache
import TesseraModels
import TesseraTokenizers

public struct BatchingConfiguration: Sendable {
    public var scheduler: SchedulerConfig
    /// Memory for the paged KV cache.
    public var kvCacheBytes: Int
    /// Tokens per block.
    public var blockSize: Int
    public var elementType: KVElementType
    public var prefixCaching: Bool
    /// Requests allowed to wait before `submit` refuses (EngineError.overloaded).
    public var maxWaiting: Int
    /// The most tokens one request may hold (prompt + completion); nil: the model's context.
    public var maxModelLength: Int?

    public init(scheduler: SchedulerConfig = SchedulerConfig(), kvCacheBytes: Int = 512 << 20, blockSize: Int = 16,
                elementType: KVElementType = .float32, prefixCaching: Bool = true, maxWaiting: Int = 256, maxModelLength: Int? = nil) {
        self.scheduler = scheduler; self.kvCacheBytes = kvCacheBytes; self.blockSize = blockSize
        self.elementType = elementType; self.prefixCaching = prefixCaching; self.maxWaiting = maxWaiting
        self.maxModelLength = maxModelLength
    }
}

/// Sendable by construction: the model, scheduler, cache and decode states are touched by the worker
/// thread alone; submissions and statistics pass through a mutex.
public final class BatchingEngine: InferenceEngine, @unchecked Sendable {
    public let maxModelLength: Int
    public let tokenizer: any Tokenizer
    public let configuration: BatchingConfiguration
    private let model: DecoderModel
    private let storage: PagedKVStorage
    private let scheduler: Scheduler
    private let shared = Mutex(Shared())
    private let wakeUp = NSCondition()
    /// Worker-thread state: every request the scheduler holds, by id.
    private var jobs: [RequestKey: Job] = [:]

    private struct Shared: ~Copyable {
        var incoming: [Job] = []
        var accepting = true
        var stopped = false
        var paused = false
        var cancelEverything = false
        var stats = EngineStats()
        var active = 0  // requests submitted and not yet finished
        var nextID = 0
    }

    private final class Job: @unchecked Sendable {
        let request: EngineRequest
        let key: RequestKey
        let arrival = DispatchTime.now().uptimeNanoseconds
        let continuation: EngineStream.Continuation
        let cancelled = Atomic<Bool>(false)
        // Worker-thread state.
        var decode: DecodeState
        var scheduled: SchedulerRequest?
        var firstScheduled: UInt64?
        var firstToken: UInt64?
        /// Parallel-sampling siblings waiting to fork from this request once its prompt is computed.
        var children: [Job] = []
        var waitsForParent = false

        init(request: EngineRequest, key: RequestKey, continuation: EngineStream.Continuation, tokenizer: any Tokenizer) {
            self.request = request
            self.key = key
            self.continuation = continuation
            decode = DecodeState(options: request.options, tokenizer: tokenizer, prompt: request.prompt)
        }
    }

    public init(model: DecoderModel, tokenizer: any Tokenizer, configuration: BatchingConfiguration = BatchingConfiguration()) {
        self.model = model
        self.tokenizer = tokenizer
        self.configuration = configuration
        storage = model.makePagedStorage(bytes: configuration.kvCacheBytes, blockSize: configuration.blockSize,
                                         elementType: configuration.elementType)
        let pool = BlockPool(blockCount: storage.blockCount, blockSize: storage.blockSize)
        scheduler = Scheduler(config: configuration.scheduler,
                              cache: PagedCacheManager(pool: pool, prefixCaching: configuration.prefixCaching))
        let context = min(configuration.maxModelLength ?? model.config.contextLength, model.config.contextLength)
        maxModelLength = min(context, storage.blockCount * storage.blockSize)
        let thread = Thread { self.workerLoop() }
        thread.name = "tessera-batching"
        thread.start()
    }

    /// Token slots in the paged cache.
    public var cacheTokens: Int { storage.blockCount * storage.blockSize }
    public var cacheBytes: Int { storage.allocatedBytes }

    public func submit(_ request: EngineRequest) throws(EngineError) -> EngineStream {
        try validate(request)
        let (stream, continuation) = EngineStream.makeStream()
        let job = try shared.withLock { (s: inout Shared) throws(EngineError) -> Job in
            guard s.accepting else { throw .shuttingDown }
            guard s.stats.waiting + s.incoming.count < configuration.maxWaiting else {
                throw .overloaded(waiting: s.stats.waiting + s.incoming.count)
            }
            let job = Job(request: request, key: "\(s.nextID)", continuation: continuation, tokenizer: tokenizer)
            s.nextID += 1
            s.incoming.append(job)
            s.active += 1
            return job
        }
        continuation.onTermination = { [weak job, weak self] termination in
            guard case .cancelled = termination else { return }
            job?.cancelled.store(true, ordering: .relaxed)
            self?.signal()
        }
        signal()
        return stream
    }

    public func stats() -> EngineStats { shared.withLock { $0.stats } }
    public var isIdle: Bool { shared.withLock { $0.active == 0 } }
    public func beginShutdown() { shared.withLock { $0.accepting = false } }
    public func cancelAll() { shared.withLock { $0.cancelEverything = true }; signal() }
    public func pause() { shared.withLock { $0.paused = true } }
    public func resume() { shared.withLock { $0.paused = false }; signal() }
    /// Ends the worker once nothing is left to do.
    public func stop() { shared.withLock { $0.stopped = true; $0.accepting = false }; signal() }

    private func signal() { wakeUp.lock(); wakeUp.signal(); wakeUp.unlock() }

    // MARK: - The worker

    private func workerLoop() {
        while true {
            // Take new requests and cancellations; sleep while there is nothing to run (or paused).
            wakeUp.lock()
            while true {
                let (incoming, cancelEverything, paused, stopped) = shared.withLock { s in
                    defer { s.incoming.removeAll(); s.cancelEverything = false }
                    return (s.incoming, s.cancelEverything, s.paused, s.stopped)
                }
                admit(incoming)
                for job in jobs.values where cancelEverything || job.cancelled.load(ordering: .relaxed) {
                    finish(job, reason: .cancelled)
                }
                publishStats()
                if !paused && !jobs.isEmpty { break }
                if stopped && jobs.isEmpty { wakeUp.unlock(); return }
                wakeUp.wait()
            }
            wakeUp.unlock()
            step()
            publishStats()
        }
    }

    private func admit(_ incoming: [Job]) {
        for job in incoming {
            let request = SchedulerRequest(id: job.key, prompt: job.request.prompt, priority: job.request.priority,
                                           arrival: scheduler.nextArrival(),
                                           salt: BlockHash.salt(for: job.request.cacheSalt)
                                               ^ model.prefixCacheSalt(promptLength: job.request.prompt.count))
            job.scheduled = request
            jobs[job.key] = job
            // A sibling of a parallel-sampling group waits for the group's first request to compute the prompt.
            if let group = job.request.samplingGroup,
               let parent = jobs.values.first(where: { $0 !== job && !$0.waitsForParent && $0.request.samplingGroup == group
                                                      && $0.request.prompt == job.request.prompt
                                                      && $0.request.cacheSalt == job.request.cacheSalt
                                                      && $0.decode.tokens.isEmpty && $0.decode.finishReason == nil }) {
                parent.children.append(job)
                job.waitsForParent = true
                continue
            }
            scheduler.add(request)
        }
    }

    /// The parent's prompt is computed and its first token sampled from `logits`: each waiting sibling
    /// forks the parent's blocks and samples its own first token from the same logits.
    private func forkChildren(of parent: Job, logits: ArraySlice<Float>) {
        guard let parentRequest = parent.scheduled else { return }
        let children = parent.children
        parent.children = []
        let now = DispatchTime.now().uptimeNanoseconds
        for child in children {
            guard let request = child.scheduled, jobs[child.key] === child else { continue }
            child.waitsForParent = false
            if child.cancelled.load(ordering: .relaxed) { finish(child, reason: .cancelled); continue }
            scheduler.fork(parentRequest, into: request)
            child.firstScheduled = now
            child.continuation.yield(.scheduled(queueSeconds: Double(now - child.arrival) / 1e9,
                                                cachedPromptTokens: request.cachedPromptTokens))
            sample(child, request: request, logits: logits)
        }
    }

    /// Samples the next token of a request from its logits row and reports it; finishes it when done.
    private func sample(_ job: Job, request: SchedulerRequest, logits: ArraySlice<Float>) {
        record(job, request: request, draw(job, logits: logits))
    }

    /// The request's next token drawn from its logits row (and detokenised, checked against the stop
    /// strings), sent to its stream. Touches nothing but the job, so the sequences of a step draw in
    /// parallel.
    private func draw(_ job: Job, logits: ArraySlice<Float>) -> Result<GenerationStep?, GenerationError> {
        let outcome = Result { () throws(GenerationError) in try job.decode.accept(logits) }
        if case .success(let output?) = outcome {
            if job.firstToken == nil { job.firstToken = DispatchTime.now().uptimeNanoseconds }
            job.continuation.yield(.output(output))
        }
        return outcome
    }

    /// The engine's side of a draw: the token joins the request; a finished request ends.
    private func record(_ job: Job, request: SchedulerRequest, _ outcome: Result<GenerationStep?, GenerationError>) {
        switch outcome {
        case .failure(let error): fail(job, EngineError.generation("\(error)")); return
        case .success(let output): if let token = output?.token { request.append(token.id) }
        }
        if request.tokenCount >= maxModelLength { job.decode.end(.length) }
        if let reason = job.decode.finishReason { finish(job, reason: reason) }
    }

    /// One iteration: schedule, run the batch, sample.
    private func step() {
        let plan = scheduler.schedule()
        guard !plan.entries.isEmpty else {
            // Nothing fits even alone (cannot happen for validated requests); fail the head of the queue.
            if let head = scheduler.waiting.first, let job = jobs[head.id], scheduler.running.isEmpty {
                fail(job, EngineError.generation("the request needs more KV-cache blocks than the pool has"))
            }
            return
        }
        for entry in plan.entries {
            for copy in entry.copies { storage.copyBlock(copy.from, to: copy.to) }
            if let job = jobs[entry.request.id], job.firstScheduled == nil {
                let now = DispatchTime.now().uptimeNanoseconds
                job.firstScheduled = now
                job.continuation.yield(.scheduled(queueSeconds: Double(now - job.arrival) / 1e9,
                                                  cachedPromptTokens: entry.request.cachedPromptTokens))
            }
        }
        let batch = plan.entries.map { entry in
            BatchSequence(tokens: Array(entry.request.tokens[entry.start..<(entry.start + entry.count)]), start: entry.start,
                          blockTable: scheduler.cache.blockTable(entry.request.id), wantsLogits: entry.samples,
                          isDecode: entry.count == 1 && entry.start >= entry.request.prompt.count,
                          promptLength: entry.request.prompt.count)
        }
        let logits: [Float]
        do { logits = try model.forward(batch: batch, cache: storage) } catch {
            for entry in plan.entries { if let job = jobs[entry.request.id] { fail(job, EngineError.generation("\(error)")) } }
            return
        }
        scheduler.finishStep(plan)

        let vocabulary = model.config.vocabularySize
        // A row in place (a greedy draw reads it there; a copy of 196 KB a sequence was ~10 µs of its draw).
        func rowLogits(_ row: Int) -> ArraySlice<Float> { logits[(row * vocabulary)..<((row + 1) * vocabulary)] }
        var row = 0, drawing: [(job: Job, request: SchedulerRequest, row: Int)] = []
        for entry in plan.entries where entry.samples {
            defer { row += 1 }
            guard let job = jobs[entry.request.id] else { continue }
            // Fork the waiting siblings before the parent samples (and perhaps finishes and frees its blocks).
            if !job.children.isEmpty { forkChildren(of: job, logits: rowLogits(row)) }
            drawing.append((job, entry.request, row))
        }
        // The sequences draw on every thread of the pool: with a temperature a draw is ~0.1 ms (softmax,
        // cuts, detokenising, the stream's wake-up), and sixteen of them one after another on this thread
        // kept the kernels' other threads waiting. Then the engine's bookkeeping, in order.
        var outcomes = [Result<GenerationStep?, GenerationError>](repeating: .success(nil), count: drawing.count)
        outcomes.withUnsafeMutableBufferPointer { outcomes in
            ThreadPool.shared.parallelFor(drawing.count) { i in
                outcomes[i] = draw(drawing[i].job, logits: rowLogits(drawing[i].row))
            }
        }
        for (i, d) in drawing.enumerated() { record(d.job, request: d.request, outcomes[i]) }
    }

    /// Ends a request: releases its text held back, reports the summary, frees its blocks.
    private func finish(_ job: Job, reason: FinishReason) {
        guard jobs[job.key] === job else { return }  // already finished
        if reason != .cancelled, let rest = try? job.decode.flush(), !rest.isEmpty {
            job.continuation.yield(.output(GenerationStep(token: nil, text: rest)))
        }
        let now = DispatchTime.now().uptimeNanoseconds
        let scheduled = job.firstScheduled ?? now, first = job.firstToken ?? now
        job.continuation.yield(.finished(EngineSummary(
            finishReason: reason, promptTokens: job.request.prompt.count,
            cachedPromptTokens: job.scheduled?.cachedPromptTokens ?? 0, completionTokens: job.decode.tokens.count,
            queueSeconds: Double(scheduled - job.arrival) / 1e9, prefillSeconds: Double(first - scheduled) / 1e9,
            decodeSeconds: Double(now - first) / 1e9)))
        // Release the request before its stream ends, so a caller that sees the end sees it gone.
        remove(job)
        publishStats()
        job.continuation.finish()
    }

    private func fail(_ job: Job, _ error: EngineError) {
        guard jobs[job.key] === job else { return }
        remove(job)
        publishStats()
        job.continuation.finish(throwing: error)
    }

    private func remove(_ job: Job) {
        scheduler.remove(job.key)
        jobs[job.key] = nil
        shared.withLock { $0.active -= 1 }
        // Siblings still waiting on this request compute their prompt themselves.
        for child in job.children where jobs[child.key] === child {
            child.waitsForParent = false
            if let request = child.scheduled { scheduler.add(request) }
        }
        job.children = []
    }

    private func publishStats() {
        let pool = scheduler.cache.pool
        let running = scheduler.running.count, waiting = scheduler.waiting.count
        let preemptions = scheduler.preemptionCount
        let queries = scheduler.cache.prefixQueries, hits = scheduler.cache.prefixHits
        shared.withLock { s in
            s.stats.running = running
            s.stats.waiting = waiting + s.incoming.count
            s.stats.kvCacheUsage = Double(pool.usedBlockCount) / Double(pool.blockCount)
            s.stats.preemptions = preemptions
            s.stats.prefixCacheQueries = queries
            s.stats.prefixCacheHits = hits
        }
    }
}
