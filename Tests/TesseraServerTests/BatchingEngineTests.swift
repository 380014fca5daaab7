// Continuous batching on a real (tiny) model: greedy outputs of requests run together equal their
// outputs run alone (batch invariance), also when a small pool forces preemptions, when prompts are
// prefilled in chunks, when prompts share cached prefixes, and with int8 blocks.
import Foundation
import TesseraEngine
import TesseraKVCache
import TesseraModels
import XCTest

final class BatchingEngineTests: XCTestCase, @unchecked Sendable {
    static let prompts = ["To be, or not to be", "The quick brown fox", "Hello world! How are you today?", "I am",
                          "whether 'tis nobler in the mind to suffer the slings and arrows", "fine"]

    func ids(_ text: String) -> [Int32] { TinyChatModel.loaded.tokenizer.encode(text, addSpecialTokens: true) }

    func request(_ prompt: [Int32], maxTokens: Int = 12, id: String = "r") -> EngineRequest {
        EngineRequest(id: id, prompt: prompt, options: GenerationOptions(maxTokens: maxTokens, sampling: .greedy, ignoreEOS: true))
    }

    /// Greedy tokens of one prompt alone (the Generator over an f32, f16 or int8 cache).
    func alone(_ prompt: [Int32], maxTokens: Int = 12, elementType: KVElementType = .float32) throws -> [Int32] {
        let loaded = TinyChatModel.loaded
        let cache = try loaded.model.makeCache(KVCacheOptions(elementType: elementType))
        return try Generator(model: loaded.model, tokenizer: loaded.tokenizer)
            .generate(prompt: prompt, options: GenerationOptions(maxTokens: maxTokens, sampling: .greedy, ignoreEOS: true), cache: cache).tokens
    }

    /// Submits every prompt while the engine is paused, so they start together, and collects their tokens.
    func together(_ engine: BatchingEngine, _ prompts: [[Int32]], maxTokens: Int = 12) async throws -> [[Int32]] {
        engine.pause()
        let streams = try prompts.enumerated().map { try engine.submit(request($1, maxTokens: maxTokens, id: "\($0)")) }
        engine.resume()
        return try await withThrowingTaskGroup(of: (Int, [Int32]).self) { group in
            for (i, stream) in streams.enumerated() {
                group.addTask {
                    var tokens: [Int32] = []
                    for try await event in stream { if case .output(let step) = event, let t = step.token { tokens.append(t.id) } }
                    return (i, tokens)
                }
            }
            var results = [[Int32]](repeating: [], count: prompts.count)
            for try await (i, tokens) in group { results[i] = tokens }
            return results
        }
    }

    func engine(_ configuration: BatchingConfiguration = BatchingConfiguration(kvCacheBytes: 4 << 20)) -> BatchingEngine {
        BatchingEngine(model: TinyChatModel.loaded.model, tokenizer: TinyChatModel.loaded.tokenizer, configuration: configuration)
    }

    func testRequestsRunTogetherEqualTheirOutputsAlone() async throws {
        let prompts = Self.prompts.map(ids)
        let expected = try prompts.map { try alone($0) }
        let engine = self.engine()
        let found = try await together(engine, prompts)
        XCTAssertEqual(found, expected)
        // A stream ends after its request has left the engine and its blocks are free.
        XCTAssertTrue(engine.isIdle)
        XCTAssertEqual(engine.stats().kvCacheUsage, 0, "every block is free again")
    }

    func testPreemptionAndChunkedPrefillKeepTheOutputs() async throws {
        let prompts = Self.prompts.map(ids)
        let expected = try prompts.map { try alone($0, maxTokens: 20) }
        // 6 blocks of 16 tokens (512 bytes a token): the six requests need about 12 together.
        let tight = BatchingConfiguration(scheduler: SchedulerConfig(maxBatchedTokens: 8, maxSequences: 6), kvCacheBytes: 6 * 16 * 512)
        let engine = self.engine(tight)
        XCTAssertEqual(engine.cacheTokens, 96)
        let found = try await together(engine, prompts, maxTokens: 20)
        XCTAssertEqual(found, expected)
        XCTAssertGreaterThan(engine.stats().preemptions, 0, "the small pool must preempt")
    }

    func testSharedPrefixesComeFromTheCache() async throws {
        let system = ids(String(repeating: "To be, or not to be, that is the question. ", count: 3))
        XCTAssertGreaterThan(system.count, 40)
        let engine = self.engine()
        let first = try await engine.complete(request(system + ids("Hello"), id: "a"))
        let second = try await engine.complete(request(system + ids("The quick"), id: "b"))
        XCTAssertEqual(first.summary.cachedPromptTokens, 0)
        XCTAssertEqual(second.summary.cachedPromptTokens, system.count / 16 * 16, "every full block of the shared prefix")
        XCTAssertEqual(second.tokens.map(\.id), try alone(system + ids("The quick")))
        XCTAssertGreaterThan(engine.stats().prefixCacheHits, 0)
    }

    /// int8 and f16 blocks: the batched paged engine gives the greedy tokens the contiguous cache of the
    /// same type gives each prompt alone.
    func testReducedBlocksMatchTheSameTypeOfCache() async throws {
        let prompts = Self.prompts.map(ids)
        for type in [KVElementType.int8, .float16] {
            let expected = try prompts.map { try alone($0, elementType: type) }
            let engine = self.engine(BatchingConfiguration(kvCacheBytes: 4 << 20, elementType: type))
            let found = try await together(engine, prompts)
            XCTAssertEqual(found, expected, "\(type)")
        }
    }

    /// n > 1: the siblings fork the first request's blocks after its prompt (copy-on-write on the shared
    /// last block) and sample from its logits with their own seeds — the same text as each run alone.
    func testParallelSamplingForksThePromptAndEqualsSeparateRuns() async throws {
        let prompt = ids("whether 'tis nobler in the mind to suffer")  // a partial last block, shared by the forks
        XCTAssertNotEqual(prompt.count % 16, 0)
        func options(_ seed: UInt64) -> GenerationOptions {
            GenerationOptions(maxTokens: 24, sampling: SamplingParameters(temperature: 1, seed: seed), ignoreEOS: true)
        }
        var expected: [[Int32]] = []
        for seed: UInt64 in [11, 12, 13] {
            let alone = self.engine()
            expected.append(try await alone.complete(EngineRequest(id: "a", prompt: prompt, options: options(seed))).tokens.map(\.id))
        }
        XCTAssertEqual(Set(expected).count, 3, "different seeds, different samples")
        let engine = self.engine()
        engine.pause()
        let streams = try [11, 12, 13].map { (seed: UInt64) in
            try engine.submit(EngineRequest(id: "g\(seed)", prompt: prompt, options: options(seed), samplingGroup: "g"))
        }
        engine.resume()
        var found: [[Int32]] = []
        for stream in streams {
            var tokens: [Int32] = []
            for try await event in stream { if case .output(let step) = event, let t = step.token { tokens.append(t.id) } }
            found.append(tokens)
        }
        XCTAssertEqual(found, expected)
        XCTAssertEqual(engine.stats().prefixCacheQueries, prompt.count, "only the first request looked its prompt up and computed it")
    }

    func testACancelledRequestLeavesTheBatch() async throws {
        let engine = self.engine()
        let long = try engine.submit(request(ids("Hello"), maxTokens: 200, id: "long"))
        let short = try engine.submit(request(ids("The quick"), maxTokens: 5, id: "short"))
        var outputs = 0
        for try await event in long {
            if case .output = event { outputs += 1 }
            if outputs == 3 { break }
        }
        var shortTokens = 0
        for try await event in short { if case .output(let s) = event, s.token != nil { shortTokens += 1 } }
        XCTAssertEqual(shortTokens, 5)
        let deadline = Date().addingTimeInterval(10)
        while !engine.isIdle && Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        XCTAssertTrue(engine.isIdle)
        XCTAssertEqual(engine.stats().kvCacheUsage, 0)
    }
}
