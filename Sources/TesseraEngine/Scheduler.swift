// The scheduler of continuous batching, as pure bookkeeping (vLLM v1's design): it never touches a
// tensor, so its invariants are tested on their own.
//
// One idea covers prefill, chunked prefill, decode, prefix caching and preemption: every request has
// tokens (prompt + output so far) and a count of computed tokens (those with keys and values in the
// cache), and each step lets computed catch up with tokens as far as the budget allows. A request whose
// computed count reaches its token count gets logits, so a token is sampled and appended — and it
// has one token to compute next step (a decode).
//
// A step: first the running requests — decodes, then unfinished prefills — each granted
// min(remaining, budget) tokens, with blocks allocated as they grow; when the pool runs dry the
// lowest-priority, latest-arrived running request is preempted (its blocks freed, its computed count
// reset: it recomputes later, prompt and output alike, usually from the prefix cache). Then, if
// nothing was preempted, waiting requests in policy order (FCFS or priority) are admitted while the
// budget, the sequence limit and the pool allow, each starting after its cached prefix.
import TesseraKVCache

public struct SchedulerConfig: Sendable, Equatable {
    /// Tokens computed per step, over all requests (vLLM's max_num_batched_tokens).
    public var maxBatchedTokens: Int
    /// Requests running at once (max_num_seqs).
    public var maxSequences: Int
    public var policy: Policy

    public enum Policy: String, Sendable, CaseIterable {
        /// First come, first served.
        case fcfs
        /// Lower `priority` first, then arrival (vLLM's priority scheduling); preempts the lowest first.
        case priority
    }

    public init(maxBatchedTokens: Int = 512, maxSequences: Int = 32, policy: Policy = .fcfs) {
        precondition(maxBatchedTokens >= 1 && maxSequences >= 1, "the scheduler needs a budget and room for a sequence")
        self.maxBatchedTokens = maxBatchedTokens
        self.maxSequences = maxSequences
        self.policy = policy
    }
}

/// One request as the scheduler sees it.
public final class SchedulerRequest {
    public let id: RequestKey
    public let prompt: [Int32]
    /// Prompt and output so far, kept as one array: the scheduler reads it every step.
    public private(set) var tokens: [Int32]
    /// Tokens whose keys and values are in the cache.
    public fileprivate(set) var computed = 0
    public let priority: Int
    public let arrival: Int
    /// Isolates this request's prefix-cache entries from other tenants' (0: shared).
    public let salt: UInt64
    /// Prompt tokens found in the prefix cache when it was first scheduled.
    public fileprivate(set) var cachedPromptTokens = 0
    public fileprivate(set) var preemptions = 0
    fileprivate var wasScheduled = false

    public init(id: RequestKey, prompt: [Int32], priority: Int = 0, arrival: Int, salt: UInt64 = 0) {
        self.id = id; self.prompt = prompt; self.tokens = prompt; self.priority = priority; self.arrival = arrival; self.salt = salt
    }

    public var output: ArraySlice<Int32> { tokens[prompt.count...] }
    public var tokenCount: Int { tokens.count }
    /// Whether it is in its prefill (prompt tokens, or output tokens being recomputed, remain).
    public var isPrefilling: Bool { tokenCount - computed > 1 }

    public func append(_ token: Int32) { tokens.append(token) }
}

/// What to run in one step.
public struct SchedulerStep {
    public struct Entry {
        public let request: SchedulerRequest
        /// Compute tokens [start, start + count) of the request.
        public let start: Int
        public let count: Int
        /// The block copies (source, destination) to make before writing (copy-on-write).
        public let copies: [(from: Int, to: Int)]
        /// Whether this chunk reaches the end of the request's tokens, so its logits are sampled.
        public var samples: Bool { start + count == request.tokenCount }
    }
    public var entries: [Entry] = []
    public var preempted: [SchedulerRequest] = []
    public var tokenCount: Int { entries.reduce(0) { $0 + $1.count } }
}

public final class Scheduler {
    public let config: SchedulerConfig
    public let cache: PagedCacheManager
    public private(set) var waiting: [SchedulerRequest] = []
    public private(set) var running: [SchedulerRequest] = []
    public private(set) var preemptionCount = 0
    private var arrivals = 0

    public init(config: SchedulerConfig, cache: PagedCacheManager) {
        self.config = config
        self.cache = cache
    }

    /// Queues a request (its `arrival` orders it among equals).
    public func add(_ request: SchedulerRequest) {
        insertWaiting(request)
    }

    /// The next arrival number, for callers that build requests.
    public func nextArrival() -> Int { defer { arrivals += 1 }; return arrivals }

    /// Whether the request could ever fit: its tokens up to `maxTokens` need at most the whole pool.
    public func fits(tokens: Int) -> Bool { cache.blocks(for: tokens) <= cache.pool.blockCount }

    /// Starts `child` as a running copy of `parent` at the end of its prompt (parallel sampling): the
    /// child shares every block of the parent (copy-on-write) and has computed what the parent has.
    public func fork(_ parent: SchedulerRequest, into child: SchedulerRequest) {
        precondition(child.prompt == parent.prompt, "a fork shares its parent's prompt")
        cache.fork(parent.id, into: child.id)
        child.computed = parent.computed
        child.cachedPromptTokens = parent.cachedPromptTokens
        child.wasScheduled = true
        running.append(child)
    }

    /// Takes a request out (finished or cancelled), freeing its blocks.
    public func remove(_ id: RequestKey) {
        running.removeAll { $0.id == id }
        waiting.removeAll { $0.id == id }
        cache.free(id)
    }

    public func schedule() -> SchedulerStep {
        var step = SchedulerStep()
        var budget = config.maxBatchedTokens
        var scheduled = Set<ObjectIdentifier>()

        // Running requests: decodes first, then unfinished prefills (each keeps its relative order).
        let order = running.filter { !$0.isPrefilling } + running.filter { $0.isPrefilling }
        for request in order {
            guard budget > 0 else { break }
            guard running.contains(where: { $0 === request }) else { continue }  // preempted this step
            let count = min(request.tokenCount - request.computed, budget)
            guard count > 0 else { continue }
            var copies: [(from: Int, to: Int)]?
            while true {
                copies = cache.prepareWrite(request.id, upTo: request.computed + count, writingFrom: request.computed)
                if copies != nil { break }
                // Out of blocks: preempt the least important running request (possibly this one).
                guard let victim = preemptionVictim(excluding: scheduled) else { break }
                preempt(victim, into: &step)
                if victim === request { break }
            }
            guard let copies, running.contains(where: { $0 === request }) else { continue }
            step.entries.append(.init(request: request, start: request.computed, count: count, copies: copies))
            scheduled.insert(ObjectIdentifier(request))
            budget -= count
        }

        // Waiting requests, unless this step had to preempt (the pool is short).
        while step.preempted.isEmpty, budget > 0, running.count < config.maxSequences, let request = waiting.first {
            let tokens = request.tokens
            let hit = cache.cachedPrefix(tokens, salt: request.salt, record: !request.wasScheduled)
            let start = hit.blocks.count * cache.blockSize
            let count = min(tokens.count - start, budget)
            // Check before taking anything: the hit blocks that are free count against the pool too.
            let freeHits = hit.blocks.filter { cache.pool.referenceCount($0) == 0 }.count
            guard cache.blocks(for: start + count) - hit.blocks.count + freeHits <= cache.pool.freeBlockCount else { break }
            waiting.removeFirst()
            cache.adopt(request.id, cached: hit)
            guard let copies = cache.prepareWrite(request.id, upTo: start + count, writingFrom: start) else {
                preconditionFailure("the pool had room for request \(request.id)")
            }
            if !request.wasScheduled { request.cachedPromptTokens = min(start, request.prompt.count) }
            request.wasScheduled = true
            request.computed = start
            running.append(request)
            step.entries.append(.init(request: request, start: start, count: count, copies: copies))
            budget -= count
        }
        return step
    }

    /// After the model ran a step: advance each entry's computed count and cache its full blocks.
    /// (The engine appends sampled tokens to the requests that sampled.)
    public func finishStep(_ step: SchedulerStep) {
        for entry in step.entries {
            entry.request.computed = entry.start + entry.count
            cache.cacheComputedBlocks(entry.request.id, tokens: entry.request.tokens, computed: entry.request.computed,
                                      salt: entry.request.salt)
        }
    }

    // MARK: - Policy

    private func insertWaiting(_ request: SchedulerRequest, front: Bool = false) {
        let at: Int
        switch config.policy {
        case .fcfs:
            at = front ? 0 : waiting.count
        case .priority:
            at = waiting.firstIndex { ($0.priority, $0.arrival) > (request.priority, request.arrival) } ?? waiting.count
        }
        waiting.insert(request, at: at)
    }

    /// FCFS: the latest-arrived running request; priority: the lowest priority, latest arrival.
    private func preemptionVictim(excluding: Set<ObjectIdentifier>) -> SchedulerRequest? {
        let candidates = running.filter { !excluding.contains(ObjectIdentifier($0)) }
        switch config.policy {
        case .fcfs: return candidates.max { $0.arrival < $1.arrival }
        case .priority: return candidates.max { ($0.priority, $0.arrival) < ($1.priority, $1.arrival) }
        }
    }

    private func preempt(_ request: SchedulerRequest, into step: inout SchedulerStep) {
        running.removeAll { $0 === request }
        cache.free(request.id)
        request.computed = 0
        request.preemptions += 1
        preemptionCount += 1
        step.preempted.append(request)
        insertWaiting(request, front: true)
    }
}
