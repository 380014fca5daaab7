// The scheduler, block pool and cache manager as pure bookkeeping (no model): the budget and the
// sequence limit hold every step, no block leaks, every request finishes, chunked prefill and decodes
// share steps, prefix-cache hits, LRU eviction and salts behave, copy-on-write copies exactly the
// shared block written to, and requests preempted for lack of blocks produce the tokens they would have
// produced unpreempted.
import TesseraEngine
import TesseraKVCache
import XCTest

final class SchedulerTests: XCTestCase {
    // MARK: - Block pool and prefix cache

    func testFreedBlocksStayCachedUntilEvictedLeastRecentlyFreedFirst() {
        let pool = BlockPool(blockCount: 4, blockSize: 4)
        let manager = PagedCacheManager(pool: pool)
        let a: [Int32] = Array(0..<13)  // 3 full blocks + 1 token
        XCTAssertNotNil(manager.prepareWrite("a", upTo: 13, writingFrom: 0))
        manager.cacheComputedBlocks("a", tokens: a, computed: 13)
        XCTAssertEqual(pool.cachedBlockCount, 3)
        manager.free("a")
        XCTAssertEqual(pool.freeBlockCount, 4)
        XCTAssertEqual(pool.cachedBlockCount, 3, "freed blocks stay in the prefix cache")

        // Same first 12 tokens: 3 blocks hit (the last token must still be computed).
        let hit = manager.cachedPrefix(Array(0..<12) + [99], record: true)
        XCTAssertEqual(hit.blocks, manager.cachedPrefix(a, record: false).blocks)
        XCTAssertEqual(hit.blocks.count, 3)
        XCTAssertEqual(manager.prefixHits, 12)
        // A prompt of exactly 12 tokens reuses only 2 blocks: one token must run.
        XCTAssertEqual(manager.cachedPrefix(Array(0..<12), record: false).blocks.count, 2)
        // Another salt sees nothing.
        XCTAssertEqual(manager.cachedPrefix(a, salt: 7, record: false).blocks.count, 0)
        // A different first block breaks the chain even if later blocks match.
        XCTAssertEqual(manager.cachedPrefix([100] + Array(1..<13), record: false).blocks.count, 0)

        // Allocation takes the block freed first: the pool freed a's blocks last-first, so the
        // uncached partial block goes first, then a's third block, and its first block survives longest.
        XCTAssertNotNil(manager.prepareWrite("b", upTo: 8, writingFrom: 0))  // two blocks
        XCTAssertEqual(pool.cachedBlockCount, 2)
        XCTAssertEqual(manager.cachedPrefix(a, record: false).blocks.count, 2, "the prefix's first blocks survive")
        XCTAssertNotNil(manager.prepareWrite("c", upTo: 8, writingFrom: 0))
        XCTAssertEqual(pool.cachedBlockCount, 0)
        XCTAssertNil(manager.prepareWrite("d", upTo: 1, writingFrom: 0), "the pool is empty")
        manager.free("b"); manager.free("c")
        XCTAssertEqual(pool.freeBlockCount, 4)
    }

    func testCopyOnWriteCopiesOnlyTheSharedBlockWrittenTo() {
        let pool = BlockPool(blockCount: 8, blockSize: 4)
        let manager = PagedCacheManager(pool: pool)
        XCTAssertEqual(manager.prepareWrite("parent", upTo: 6, writingFrom: 0)?.count, 0)  // blocks 0..1, second partial
        let parentTable = manager.blockTable("parent")
        manager.fork("parent", into: "child")
        XCTAssertEqual(manager.blockTable("child"), parentTable)
        XCTAssertEqual(parentTable.map { pool.referenceCount($0) }, [2, 2])
        // The child writes token 6 into the shared partial block: that block is copied, the full one is not.
        let copies = manager.prepareWrite("child", upTo: 7, writingFrom: 6)
        XCTAssertEqual(copies?.count, 1)
        XCTAssertEqual(copies?.first?.from, parentTable[1])
        let childTable = manager.blockTable("child")
        XCTAssertEqual(childTable[0], parentTable[0])
        XCTAssertNotEqual(childTable[1], parentTable[1])
        XCTAssertEqual(childTable[1], copies?.first?.to)
        XCTAssertEqual([pool.referenceCount(parentTable[0]), pool.referenceCount(parentTable[1])], [2, 1])
        // The parent now owns its block alone: no copy.
        XCTAssertEqual(manager.prepareWrite("parent", upTo: 7, writingFrom: 6)?.count, 0)
        manager.free("parent"); manager.free("child")
        XCTAssertEqual(pool.freeBlockCount, 8)
    }

    // MARK: - Scheduling

    /// A stand-in for the model: the next token is a hash of the request's tokens so far, so a request
    /// that recomputes after preemption must land on the same tokens.
    static func nextToken(_ tokens: [Int32]) -> Int32 {
        var h: UInt32 = 2_166_136_261
        for t in tokens.suffix(8) { h = (h ^ UInt32(bitPattern: t)) &* 16_777_619 }
        return Int32(h % 1000)
    }

    struct Outcome { var outputs: [RequestKey: [Int32]]; var steps: Int; var preemptions: Int }

    /// Runs requests (prompt, max tokens, arrival step) to the end, checking the invariants every step.
    func simulate(_ requests: [(prompt: [Int32], maxTokens: Int, arrives: Int)], blocks: Int, blockSize: Int = 4,
                  config: SchedulerConfig, file: StaticString = #filePath, line: UInt = #line) -> Outcome {
        let pool = BlockPool(blockCount: blocks, blockSize: blockSize)
        let scheduler = Scheduler(config: config, cache: PagedCacheManager(pool: pool))
        var pending = requests.enumerated().map { ($0.offset, $0.element) }
        var live: [RequestKey: (request: SchedulerRequest, maxTokens: Int)] = [:]
        var outputs: [RequestKey: [Int32]] = [:]
        var step = 0
        while !(pending.isEmpty && live.isEmpty) {
            for (i, r) in pending where r.arrives <= step {
                let request = SchedulerRequest(id: "r\(i)", prompt: r.prompt, arrival: scheduler.nextArrival())
                scheduler.add(request)
                live[request.id] = (request, r.maxTokens)
            }
            pending.removeAll { $0.1.arrives <= step }
            let plan = scheduler.schedule()
            XCTAssertLessThanOrEqual(plan.tokenCount, config.maxBatchedTokens, "budget", file: file, line: line)
            XCTAssertLessThanOrEqual(scheduler.running.count, config.maxSequences, "sequence limit", file: file, line: line)
            XCTAssertEqual(Set(plan.entries.map(\.request.id)).count, plan.entries.count, "a request once per step", file: file, line: line)
            for entry in plan.entries {
                XCTAssertGreaterThanOrEqual(scheduler.cache.blockTable(entry.request.id).count * blockSize, entry.start + entry.count,
                                            "blocks cover the tokens written", file: file, line: line)
            }
            scheduler.finishStep(plan)
            for entry in plan.entries where entry.samples {
                let request = entry.request
                request.append(Self.nextToken(request.tokens))
                if request.output.count == live[request.id]!.maxTokens {
                    outputs[request.id] = Array(request.output)
                    scheduler.remove(request.id)
                    live[request.id] = nil
                }
            }
            // No leak: blocks in use are exactly those held by running requests (counted once each).
            let held = Set(scheduler.running.flatMap { scheduler.cache.blockTable($0.id) })
            XCTAssertEqual(pool.usedBlockCount, held.count, "held blocks at step \(step)", file: file, line: line)
            step += 1
            if step > 10_000 { XCTFail("the simulation does not end", file: file, line: line); break }
        }
        XCTAssertEqual(pool.freeBlockCount, blocks, "every block is free at the end", file: file, line: line)
        return Outcome(outputs: outputs, steps: step, preemptions: scheduler.preemptionCount)
    }

    func randomRequests(count: Int, seed: UInt64) -> [(prompt: [Int32], maxTokens: Int, arrives: Int)] {
        var rng = SeededGenerator(seed: seed)
        let shared: [Int32] = (0..<24).map { _ in Int32.random(in: 0..<1000, using: &rng) }  // a common system prompt
        return (0..<count).map { i in
            let own = (0..<Int.random(in: 1...40, using: &rng)).map { _ in Int32.random(in: 0..<1000, using: &rng) }
            let prompt = (i % 2 == 0 ? shared : []) + own
            return (prompt, Int.random(in: 1...30, using: &rng), Int.random(in: 0...20, using: &rng))
        }
    }

    func testEveryRequestFinishesWithinBudgetAndWithoutLeaks() {
        let requests = randomRequests(count: 40, seed: 1)
        let outcome = simulate(requests, blocks: 200, config: SchedulerConfig(maxBatchedTokens: 48, maxSequences: 8))
        XCTAssertEqual(outcome.outputs.count, 40)
        for (i, r) in requests.enumerated() { XCTAssertEqual(outcome.outputs["r\(i)"]?.count, r.maxTokens) }
    }

    func testPreemptedRequestsProduceTheSameTokens() {
        let requests = randomRequests(count: 30, seed: 2)
        let roomy = simulate(requests, blocks: 1000, config: SchedulerConfig(maxBatchedTokens: 64, maxSequences: 16))
        XCTAssertEqual(roomy.preemptions, 0)
        // 24 blocks of 4 tokens: the longest request (64 prompt + 30 output) fits alone, many do not fit together.
        let tight = simulate(requests, blocks: 24, config: SchedulerConfig(maxBatchedTokens: 64, maxSequences: 16))
        XCTAssertGreaterThan(tight.preemptions, 0, "the small pool must force preemptions")
        XCTAssertEqual(tight.outputs, roomy.outputs)
        let priority = simulate(requests, blocks: 24, config: SchedulerConfig(maxBatchedTokens: 64, maxSequences: 16, policy: .priority))
        XCTAssertEqual(priority.outputs, roomy.outputs)
    }

    func testLongPromptsArePrefilledInChunksBesideDecodes() {
        let pool = BlockPool(blockCount: 100, blockSize: 4)
        let scheduler = Scheduler(config: SchedulerConfig(maxBatchedTokens: 16, maxSequences: 4), cache: PagedCacheManager(pool: pool))
        let short = SchedulerRequest(id: "short", prompt: [1, 2, 3], arrival: scheduler.nextArrival())
        scheduler.add(short)
        var plan = scheduler.schedule()
        XCTAssertEqual(plan.entries.map(\.count), [3])
        scheduler.finishStep(plan)
        short.append(7)
        let long = SchedulerRequest(id: "long", prompt: Array(0..<40), arrival: scheduler.nextArrival())
        scheduler.add(long)
        var chunks: [Int] = []
        for _ in 0..<3 {
            plan = scheduler.schedule()
            XCTAssertEqual(plan.entries.first?.request.id, "short", "the decode goes first")
            XCTAssertEqual(plan.entries.first?.count, 1)
            chunks.append(plan.entries.last!.count)
            scheduler.finishStep(plan)
            short.append(7)
        }
        XCTAssertEqual(chunks, [15, 15, 10], "the prompt fills the rest of each step's budget")
        XCTAssertTrue(plan.entries.last!.samples, "the last chunk samples")
    }

    func testPrefixCacheHitsSkipComputation() {
        let pool = BlockPool(blockCount: 50, blockSize: 4)
        let scheduler = Scheduler(config: SchedulerConfig(maxBatchedTokens: 100, maxSequences: 4), cache: PagedCacheManager(pool: pool))
        let system: [Int32] = Array(100..<120)  // 5 blocks
        let first = SchedulerRequest(id: "a", prompt: system + [1, 2], arrival: scheduler.nextArrival())
        scheduler.add(first)
        var plan = scheduler.schedule()
        XCTAssertEqual(plan.entries.first?.start, 0)
        scheduler.finishStep(plan)
        scheduler.remove("a")
        let second = SchedulerRequest(id: "b", prompt: system + [3, 4, 5], arrival: scheduler.nextArrival())
        scheduler.add(second)
        plan = scheduler.schedule()
        XCTAssertEqual(plan.entries.first?.start, 20, "five cached blocks skipped")
        XCTAssertEqual(plan.entries.first?.count, 3)
        XCTAssertEqual(second.cachedPromptTokens, 20)
        let isolated = SchedulerRequest(id: "c", prompt: system + [3, 4, 5], arrival: scheduler.nextArrival(), salt: 42)
        scheduler.add(isolated)
        plan = scheduler.schedule()
        XCTAssertEqual(plan.entries.last?.request.id, "c")
        XCTAssertEqual(plan.entries.last?.start, 0, "another tenant's salt shares nothing")
    }

    func testPriorityPolicyAdmitsTheMostUrgentFirst() {
        let pool = BlockPool(blockCount: 50, blockSize: 4)
        let scheduler = Scheduler(config: SchedulerConfig(maxBatchedTokens: 4, maxSequences: 1, policy: .priority),
                                  cache: PagedCacheManager(pool: pool))
        for (name, priority) in [("low", 5), ("urgent", -3), ("normal", 0)] {
            scheduler.add(SchedulerRequest(id: name, prompt: [1, 2], priority: priority, arrival: scheduler.nextArrival()))
        }
        XCTAssertEqual(scheduler.waiting.map(\.id), ["urgent", "normal", "low"])
        XCTAssertEqual(scheduler.schedule().entries.map(\.request.id), ["urgent"])
    }
}
