// The engine's async interface (SequentialEngine): a request whose consumer stops listening is
// cancelled and frees the engine, waiting requests run by priority then arrival, a full queue and a
// shutdown refuse new work, and cancelAll ends everything in flight.
import Foundation
import TesseraEngine
import XCTest

final class EngineTests: XCTestCase, @unchecked Sendable {
    func request(_ text: String, maxTokens: Int, priority: Int = 0) -> EngineRequest {
        let ids = TinyChatModel.loaded.tokenizer.encode(text, addSpecialTokens: true)
        return EngineRequest(id: text, prompt: ids, options: GenerationOptions(maxTokens: maxTokens, sampling: .greedy, ignoreEOS: true),
                             priority: priority)
    }

    func waitUntilIdle(_ engine: any InferenceEngine, seconds: Double = 10) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !engine.isIdle {
            guard Date() < deadline else { return XCTFail("the engine did not become idle") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func testAConsumerThatStopsListeningCancelsItsRequest() async throws {
        let engine = TinyChatModel.engine()
        var outputs = 0
        do {
            let stream = try engine.submit(request("Hello", maxTokens: 200))
            for try await event in stream {
                if case .output = event { outputs += 1 }
                if outputs == 3 { break }
            }
        }
        try await waitUntilIdle(engine)
        // The engine serves the next request in full.
        let (_, tokens, summary) = try await engine.complete(request("Hello again", maxTokens: 5))
        XCTAssertEqual(tokens.count, 5)
        XCTAssertEqual(summary.finishReason, .length)
    }

    func testWaitingRequestsRunByPriorityThenArrival() async throws {
        let engine = TinyChatModel.engine()
        engine.pause()
        // Each stream is read by its own task, so the order in which the tasks see their events says
        // nothing; the engine's clock does. A request's start is its submit time plus its queue time,
        // and the engine starts one only after the last has finished (milliseconds apart), while the
        // submits below are microseconds apart.
        let requests = [("low", 5), ("high", -1), ("low2", 5)].map { name, priority in
            (name, request(name, maxTokens: 24, priority: priority))
        }
        var streams: [(String, Date, EngineStream)] = []
        for (name, request) in requests { streams.append((name, Date(), try engine.submit(request))) }
        XCTAssertEqual(engine.stats().waiting, 3)
        engine.resume()
        let starts = try await withThrowingTaskGroup(of: (String, Date).self) { group in
            for (name, submitted, stream) in streams {
                group.addTask {
                    var start = Date.distantFuture
                    for try await event in stream {
                        if case .scheduled(let queueSeconds, _) = event { start = submitted.addingTimeInterval(queueSeconds) }
                    }
                    return (name, start)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(starts.sorted { $0.1 < $1.1 }.map(\.0), ["high", "low", "low2"])
    }

    func testAFullQueueAndAShutdownRefuseNewRequests() async throws {
        let engine = TinyChatModel.engine(maxWaiting: 2)
        engine.pause()
        let streams = [try engine.submit(request("one", maxTokens: 2)), try engine.submit(request("two", maxTokens: 2))]
        XCTAssertThrowsError(try engine.submit(request("three", maxTokens: 2))) { error in
            XCTAssertEqual(error as? EngineError, .overloaded(waiting: 2))
        }
        engine.beginShutdown()
        XCTAssertThrowsError(try engine.submit(request("four", maxTokens: 2))) { error in
            XCTAssertEqual(error as? EngineError, .shuttingDown)
        }
        engine.cancelAll()
        var reasons: [FinishReason] = []
        for stream in streams {
            for try await event in stream { if case .finished(let s) = event { reasons.append(s.finishReason) } }
        }
        XCTAssertEqual(reasons, [.cancelled, .cancelled])
        XCTAssertTrue(engine.isIdle)
    }

    func testTheContextLimitIsAnErrorBeforeQueueing() throws {
        let engine = TinyChatModel.engine()
        XCTAssertThrowsError(try engine.submit(request("Hi", maxTokens: TinyChatModel.contextLength))) { error in
            guard case .contextExceeded(_, let m, let limit) = error as? EngineError else { return XCTFail("\(error)") }
            XCTAssertEqual(m, TinyChatModel.contextLength)
            XCTAssertEqual(limit, TinyChatModel.contextLength)
        }
        XCTAssertThrowsError(try engine.submit(EngineRequest(id: "x", prompt: [], options: GenerationOptions())))
    }
}
