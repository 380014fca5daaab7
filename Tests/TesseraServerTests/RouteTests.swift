// The server's routes without a socket (HummingbirdTesting's router mode), on a tiny chat model:
// responses equal what the Generator produces for the same prompt, streaming equals non-streaming,
// seeds reproduce, and every kind of bad request gets OpenAI's error shape with the right status.
import Foundation
import Hummingbird
import HummingbirdTesting
import TesseraEngine
import TesseraServer
import TesseraTokenizers
import XCTest

final class RouteTests: XCTestCase, @unchecked Sendable {
    struct Reply {
        var status: HTTPResponse.Status
        var text: String
        var headers: HTTPFields
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }
        var error: [String: Any] { json["error"] as? [String: Any] ?? [:] }
    }

    /// Runs `body` against a router over a filled (or empty) slot.
    func withServer(loaded: Bool = true, options: RouteOptions = RouteOptions(), served: ServedModel? = nil,
                    slot given: ModelSlot? = nil, _ body: @Sendable (TestClientProtocol) async throws -> Void) async throws {
        let slot = given ?? ModelSlot(name: "tiny-chat")
        if loaded { slot.fill(served ?? TinyChatModel.served()) }
        let app = Application(router: makeRouter(slot: slot, metrics: ServerMetricsHandle(modelName: "tiny-chat"), options: options))
        try await app.test(.router) { client in try await body(client) }
    }

    func call(_ client: TestClientProtocol, _ method: HTTPRequest.Method = .post, _ uri: String, _ body: String? = nil,
              headers: HTTPFields = [.contentType: "application/json"]) async throws -> Reply {
        try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            Reply(status: response.status, text: String(buffer: response.body), headers: response.headers)
        }
    }

    func greedy(_ prompt: [Int32], maxTokens: Int, stop: [String] = []) throws -> GenerationResult {
        let loaded = TinyChatModel.loaded
        return try Generator(model: loaded.model, tokenizer: loaded.tokenizer)
            .generate(prompt: prompt, options: GenerationOptions(maxTokens: maxTokens, sampling: .greedy, stopStrings: stop, ignoreEOS: true))
    }

    func chatIDs(_ content: String) throws -> [Int32] {
        let loaded = TinyChatModel.loaded
        return try ChatPrompt.ids(messages: [["role": "user", "content": content]], template: loaded.chatTemplate!, tokenizer: loaded.tokenizer)
    }

    /// The `data:` payloads of a server-sent-events body.
    func events(_ body: String) -> [String] {
        body.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map {
            XCTAssertTrue($0.hasPrefix("data: "), "event without data: \($0)")
            return String($0.dropFirst(6))
        }
    }

    // MARK: - Health, models, page

    func testHealthIs503WhileLoadingThen200() async throws {
        try await withServer(loaded: false) { client in
            let r = try await call(client, .get, "/health")
            XCTAssertEqual(r.status, .serviceUnavailable)
            XCTAssertEqual(r.error["code"] as? String, "model_loading")
            let c = try await call(client, .post, "/v1/completions", #"{"prompt": "Hi"}"#)
            XCTAssertEqual(c.status, .serviceUnavailable)
        }
        // A shutdown has begun: /health is 503 so that probes stop routing here.
        let draining = ModelSlot(name: "tiny-chat")
        draining.beginDraining()
        try await withServer(slot: draining) { client in
            let r = try await call(client, .get, "/health")
            XCTAssertEqual(r.status, .serviceUnavailable)
            XCTAssertEqual(r.error["code"] as? String, "shutting_down")
        }
        try await withServer { client in
            let r = try await call(client, .get, "/health")
            XCTAssertEqual(r.status, .ok)
            let models = try await call(client, .get, "/v1/models")
            let data = models.json["data"] as? [[String: Any]]
            XCTAssertEqual(data?.first?["id"] as? String, "tiny-chat")
            XCTAssertEqual(data?.first?["max_model_len"] as? Int, TinyChatModel.contextLength)
            let page = try await call(client, .get, "/")
            XCTAssertEqual(page.headers[.contentType], "text/html; charset=utf-8")
            XCTAssertTrue(page.text.contains("/v1/chat/completions"))
            XCTAssertNotNil(page.headers[.init("x-request-id")!])
        }
    }

    // MARK: - Completions

    func testCompletionEqualsTheGenerator() async throws {
        let prompt = "To be, or not"
        let ids = TinyChatModel.loaded.tokenizer.encode(prompt, addSpecialTokens: true)
        let expected = try greedy(ids, maxTokens: 12)
        for batching in [false, true] {
        try await withServer(served: TinyChatModel.served(batching: batching)) { client in
            let r = try await call(client, .post, "/v1/completions",
                                   #"{"model": "tiny-chat", "prompt": "To be, or not", "max_tokens": 12, "temperature": 0, "ignore_eos": true}"#)
            XCTAssertEqual(r.status, .ok, r.text)
            let choice = (r.json["choices"] as? [[String: Any]])?.first
            XCTAssertEqual(choice?["text"] as? String, expected.text)
            XCTAssertEqual(choice?["finish_reason"] as? String, "length")
            XCTAssertEqual(r.json["object"] as? String, "text_completion")
            let usage = r.json["usage"] as? [String: Any]
            XCTAssertEqual(usage?["prompt_tokens"] as? Int, ids.count)
            XCTAssertEqual(usage?["completion_tokens"] as? Int, 12)
            XCTAssertEqual(usage?["total_tokens"] as? Int, ids.count + 12)

            // Token-id prompts give the same text; a second identical request reuses the cached prefix.
            let idList = ids.map(String.init).joined(separator: ",")
            let again = try await call(client, .post, "/v1/completions",
                                       #"{"prompt": [\#(idList)], "max_tokens": 12, "temperature": 0, "ignore_eos": true}"#)
            XCTAssertEqual((again.json["choices"] as? [[String: Any]])?.first?["text"] as? String, expected.text)
            let details = (again.json["usage"] as? [String: Any])?["prompt_tokens_details"] as? [String: Any]
            // The sequential engine reuses every token but the last; the paged cache whole blocks of 16.
            XCTAssertEqual(details?["cached_tokens"] as? Int, batching ? (ids.count - 1) / 16 * 16 : ids.count - 1)
        }
        }
    }

    func testChatStreamingEqualsNonStreaming() async throws {
        let expected = try greedy(try chatIDs("Hello world"), maxTokens: 10)
        for batching in [false, true] {
        try await withServer(served: TinyChatModel.served(batching: batching)) { client in
            let body = #"{"messages": [{"role": "user", "content": "Hello world"}], "max_tokens": 10, "temperature": 0, "ignore_eos": true"#
            let plain = try await call(client, .post, "/v1/chat/completions", body + "}")
            XCTAssertEqual(plain.status, .ok, plain.text)
            let message = ((plain.json["choices"] as? [[String: Any]])?.first?["message"]) as? [String: Any]
            XCTAssertEqual(message?["content"] as? String, expected.text)
            XCTAssertEqual(message?["role"] as? String, "assistant")

            let streamed = try await call(client, .post, "/v1/chat/completions",
                                          body + #", "stream": true, "stream_options": {"include_usage": true}}"#)
            XCTAssertEqual(streamed.status, .ok)
            XCTAssertEqual(streamed.headers[.contentType], "text/event-stream")
            let payloads = events(streamed.text)
            XCTAssertEqual(payloads.last, "[DONE]")
            let chunks = payloads.dropLast().map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? [:] }
            let deltas = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"]) as? [String: Any] }
            XCTAssertEqual(deltas.first?["role"] as? String, "assistant", "the first chunk carries the role")
            XCTAssertEqual(deltas.compactMap { $0["content"] as? String }.joined(), expected.text)
            let finishes = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["finish_reason"]) as? String }
            XCTAssertEqual(finishes, ["length"])
            let usage = chunks.last?["usage"] as? [String: Any]
            XCTAssertEqual((chunks.last?["choices"] as? [Any])?.count, 0, "the usage chunk has no choices")
            XCTAssertEqual(usage?["completion_tokens"] as? Int, 10)
            XCTAssertTrue(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
        }
        }
    }

    func testSeedsReproduceAndNGivesDistinctChoices() async throws {
        for batching in [false, true] {
        try await withServer(served: TinyChatModel.served(batching: batching)) { client in
            let body = #"{"prompt": "The quick", "max_tokens": 16, "temperature": 1.0, "seed": 1234, "n": 3, "ignore_eos": true}"#
            let a = try await call(client, .post, "/v1/completions", body)
            let b = try await call(client, .post, "/v1/completions", body)
            let textsA = (a.json["choices"] as? [[String: Any]])?.map { $0["text"] as? String ?? "" } ?? []
            let textsB = (b.json["choices"] as? [[String: Any]])?.map { $0["text"] as? String ?? "" } ?? []
            XCTAssertEqual(textsA.count, 3)
            XCTAssertEqual(textsA, textsB, "same seed, same choices")
            XCTAssertEqual(Set(textsA).count, 3, "n choices are sampled independently: \(textsA)")
            XCTAssertEqual((a.json["choices"] as? [[String: Any]])?.map { $0["index"] as? Int ?? -1 }, [0, 1, 2])
            XCTAssertEqual((a.json["usage"] as? [String: Any])?["completion_tokens"] as? Int, 48)
        }
        }
    }

    func testStopStringEndsTheTextBeforeIt() async throws {
        let ids = TinyChatModel.loaded.tokenizer.encode("Hello", addSpecialTokens: true)
        let full = try greedy(ids, maxTokens: 24).text
        let characters = Array(full)
        XCTAssertGreaterThan(characters.count, 12, "the tiny model should write some text")
        let stop = String(characters[8..<11])
        let expected = String(full[..<full.range(of: stop)!.lowerBound])
        for batching in [false, true] {
        try await withServer(served: TinyChatModel.served(batching: batching)) { client in
            let stopJSON = String(data: try JSONSerialization.data(withJSONObject: [stop]), encoding: .utf8)!
            for stream in [false, true] {
                let r = try await call(client, .post, "/v1/completions",
                                       #"{"prompt": "Hello", "max_tokens": 24, "temperature": 0, "ignore_eos": true, "stop": \#(stopJSON), "stream": \#(stream)}"#)
                if stream {
                    let chunks = events(r.text).dropLast().map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? [:] }
                    let choices = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first }
                    XCTAssertEqual(choices.compactMap { $0["text"] as? String }.joined(), expected)
                    XCTAssertEqual(choices.last?["finish_reason"] as? String, "stop")
                } else {
                    let choice = (r.json["choices"] as? [[String: Any]])?.first
                    XCTAssertEqual(choice?["text"] as? String, expected)
                    XCTAssertEqual(choice?["finish_reason"] as? String, "stop")
                }
            }
        }
        }
    }

    func testLogprobsAreTheModelsDistribution() async throws {
        for batching in [false, true] {
        try await withServer(served: TinyChatModel.served(batching: batching)) { client in
            let r = try await call(client, .post, "/v1/chat/completions",
                                   #"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "temperature": 0, "logprobs": true, "top_logprobs": 3, "ignore_eos": true}"#)
            XCTAssertEqual(r.status, .ok, r.text)
            let content = (((r.json["choices"] as? [[String: Any]])?.first?["logprobs"]) as? [String: Any])?["content"] as? [[String: Any]]
            XCTAssertEqual(content?.count, 5)
            for entry in content ?? [] {
                let top = entry["top_logprobs"] as? [[String: Any]] ?? []
                XCTAssertEqual(top.count, 3)
                let logprob = entry["logprob"] as? Double ?? 1
                XCTAssertLessThanOrEqual(logprob, 0)
                // Greedy picks the most likely token: the chosen one is the first of the top list.
                XCTAssertEqual(entry["token"] as? String, top.first?["token"] as? String)
                XCTAssertEqual(logprob, top.first?["logprob"] as? Double ?? 1, accuracy: 1e-6)
                let values = top.compactMap { $0["logprob"] as? Double }
                XCTAssertEqual(values, values.sorted(by: >))
                XCTAssertEqual((entry["bytes"] as? [Int])?.isEmpty, false)
            }
            let legacy = try await call(client, .post, "/v1/completions",
                                        #"{"prompt": "Hi", "max_tokens": 4, "temperature": 0, "logprobs": 2, "ignore_eos": true}"#)
            let lp = (legacy.json["choices"] as? [[String: Any]])?.first?["logprobs"] as? [String: Any]
            XCTAssertEqual((lp?["tokens"] as? [String])?.count, 4)
            XCTAssertEqual((lp?["token_logprobs"] as? [Double])?.count, 4)
            XCTAssertEqual((lp?["top_logprobs"] as? [[String: Double]])?.first?.count, 2)
            XCTAssertEqual((lp?["text_offset"] as? [Int])?.first, 0)
        }
        }
    }

    /// max_completion_tokens (chat) limits the completion like max_tokens; the penalties change a
    /// greedy answer only through the tokens generated (presence and frequency never count the prompt),
    /// and `tools: []` or `response_format: text` are accepted as no-ops.
    func testCompletionLimitsAndPenalties() async throws {
        try await withServer { client in
            let base = #"{"messages": [{"role": "user", "content": "Hello world"}], "temperature": 0, "ignore_eos": true"#
            let limited = try await call(client, .post, "/v1/chat/completions",
                                         base + #", "max_completion_tokens": 5, "tools": [], "response_format": {"type": "text"}}"#)
            XCTAssertEqual(limited.status, .ok, limited.text)
            XCTAssertEqual((limited.json["usage"] as? [String: Any])?["completion_tokens"] as? Int, 5)
            XCTAssertEqual(((limited.json["choices"] as? [[String: Any]])?.first?["finish_reason"]) as? String, "length")

            /// The token texts of a greedy completion (from its logprobs).
            func tokens(_ extra: String = "") async throws -> [String] {
                let r = try await call(client, .post, "/v1/completions",
                                       #"{"prompt": "The quick brown fox", "max_tokens": 24, "temperature": 0, "ignore_eos": true, "logprobs": 0"# + extra + "}")
                XCTAssertEqual(r.status, .ok, r.text)
                let logprobs = ((r.json["choices"] as? [[String: Any]])?.first?["logprobs"]) as? [String: Any]
                return logprobs?["tokens"] as? [String] ?? []
            }
            let plain = try await tokens()
            XCTAssertEqual(plain.count, 24)
            XCTAssertLessThan(Set(plain).count, plain.count, "the tiny model repeats itself, so the penalties have work")
            for field in ["presence_penalty", "frequency_penalty"] {
                let penalised = try await tokens(#", "\#(field)": 2"#)
                XCTAssertNotEqual(penalised, plain, "\(field) changes a repetitive greedy answer")
                // Output only: the first token is chosen before anything is generated, so it cannot move.
                XCTAssertEqual(penalised.first, plain.first, "\(field) must not penalise the prompt's tokens")
            }
        }
    }

    /// An engine that fails after scheduling: the stream has begun, so the failure arrives as an error
    /// event in OpenAI's shape, then [DONE] — never a dropped connection.
    func testAnEngineFailureMidStreamIsAnErrorEvent() async throws {
        final class FailingEngine: InferenceEngine, @unchecked Sendable {
            let inner = TinyChatModel.engine()
            var maxModelLength: Int { inner.maxModelLength }
            var tokenizer: any Tokenizer { inner.tokenizer }
            func submit(_ request: EngineRequest) throws(EngineError) -> EngineStream {
                AsyncThrowingStream { continuation in
                    continuation.yield(.scheduled(queueSeconds: 0, cachedPromptTokens: 0))
                    continuation.finish(throwing: EngineError.generation("the model failed"))
                }
            }
            func stats() -> EngineStats { EngineStats() }
            func beginShutdown() {}
            func cancelAll() {}
            var isIdle: Bool { true }
        }
        let served = ServedModel(name: "tiny-chat", engine: FailingEngine(), chatTemplate: TinyChatModel.loaded.chatTemplate,
                                 path: TinyChatModel.directory)
        try await withServer(served: served) { client in
            let r = try await call(client, .post, "/v1/chat/completions",
                                   #"{"messages": [{"role": "user", "content": "Hi"}], "stream": true}"#)
            XCTAssertEqual(r.status, .ok)
            let payloads = events(r.text)
            XCTAssertEqual(payloads.last, "[DONE]", r.text)
            XCTAssertGreaterThanOrEqual(payloads.count, 3, r.text)
            let error = (try? JSONSerialization.jsonObject(with: Data(payloads[payloads.count - 2].utf8))) as? [String: Any]
            let body = error?["error"] as? [String: Any]
            XCTAssertEqual(body?["code"] as? String, "generation_failed", r.text)
            XCTAssertTrue((body?["message"] as? String ?? "").contains("the model failed"))
        }
    }

    // MARK: - Errors

    func testBadRequestsGetOpenAIErrors() async throws {
        try await withServer(options: RouteOptions(maxBodyBytes: 2048)) { client in
            let cases: [(String, String, HTTPResponse.Status, String?)] = [
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}"#, .badRequest, nil),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "temperature": "hot"}"#, .badRequest, "temperature"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "temperature": 3}"#, .badRequest, "temperature"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "top_p": 0}"#, .badRequest, "top_p"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "n": 0}"#, .badRequest, "n"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 0}"#, .badRequest, "max_tokens"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 0}"#, .badRequest, "max_completion_tokens"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 1000}"#, .badRequest, "messages"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "presence_penalty": 2.5}"#, .badRequest, "presence_penalty"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "function", "function": {"name": "f"}}]}"#, .badRequest, "tools"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "response_format": {"type": "json_object"}}"#, .badRequest, "response_format.type"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "logit_bias": {"99999": 5}}"#, .badRequest, "logit_bias"),
                ("/v1/chat/completions", #"{"messages": [{"role": "wizard", "content": "Hi"}]}"#, .badRequest, "messages[0].role"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": 5}]}"#, .badRequest, "messages[0].content"),
                ("/v1/chat/completions", #"{"temperature": 1}"#, .badRequest, "messages"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "model": "gpt-4"}"#, .notFound, "model"),
                ("/v1/completions", #"{"prompt": "Hi", "max_tokens": 1000}"#, .badRequest, "prompt"),
                ("/v1/completions", #"{"prompt": "Hi", "stream_options": {"include_usage": true}}"#, .badRequest, "stream_options"),
                ("/v1/completions", #"{"prompt": "Hi", "seed": "x"}"#, .badRequest, "seed"),
                ("/v1/completions", #"{"prompt": {"text": "Hi"}}"#, .badRequest, "prompt"),
                ("/v1/completions", "{\"prompt\": \"" + String(repeating: "a", count: 4000) + "\"}", .contentTooLarge, nil),
                ("/v1/nothing", "{}", .notFound, nil),
            ]
            for (uri, body, status, param) in cases {
                let r = try await call(client, .post, uri, body)
                XCTAssertEqual(r.status, status, "\(uri) \(body.prefix(80)): \(r.text)")
                XCTAssertNotNil(r.error["message"] as? String, "OpenAI's error shape: \(r.text)")
                XCTAssertNotNil(r.error["type"] as? String)
                if let param { XCTAssertEqual(r.error["param"] as? String, param, r.text) }
            }
            let tooLong = try await call(client, .post, "/v1/completions", #"{"prompt": "Hi", "max_tokens": 1000}"#)
            XCTAssertEqual(tooLong.error["code"] as? String, "context_length_exceeded")
            XCTAssertTrue((tooLong.error["message"] as? String ?? "").contains("maximum context length is 256"))
            let malformed = try await call(client, .post, "/v1/chat/completions", "{not json")
            XCTAssertEqual(malformed.error["code"] as? String, "invalid_json")
        }
    }

    func testAPIKeyIsRequiredWhenSet() async throws {
        try await withServer(options: RouteOptions(apiKey: "sekret")) { client in
            let body = #"{"prompt": "Hi", "max_tokens": 2}"#
            let none = try await call(client, .post, "/v1/completions", body)
            XCTAssertEqual(none.status, .unauthorized)
            XCTAssertEqual(none.error["type"] as? String, "authentication_error")
            let wrong = try await call(client, .post, "/v1/completions", body,
                                       headers: [.contentType: "application/json", .authorization: "Bearer nope"])
            XCTAssertEqual(wrong.status, .unauthorized)
            let right = try await call(client, .post, "/v1/completions", body,
                                       headers: [.contentType: "application/json", .authorization: "Bearer sekret"])
            XCTAssertEqual(right.status, .ok)
            let health = try await call(client, .get, "/health")
            XCTAssertEqual(health.status, .ok, "probes need no key")
        }
    }

    // MARK: - Tokenize, metrics

    func testTokenizeAndDetokenizeRoundTrip() async throws {
        let tokenizer = TinyChatModel.loaded.tokenizer
        try await withServer { client in
            let t = try await call(client, .post, "/tokenize", #"{"prompt": "Hello world"}"#)
            XCTAssertEqual(t.status, .ok, t.text)
            let tokens = t.json["tokens"] as? [Int] ?? []
            XCTAssertEqual(tokens.map(Int32.init), tokenizer.encode("Hello world", addSpecialTokens: true))
            XCTAssertEqual(t.json["count"] as? Int, tokens.count)
            let d = try await call(client, .post, "/detokenize", #"{"tokens": \#(tokens)}"#)
            XCTAssertEqual(d.json["prompt"] as? String, try tokenizer.decode(tokens.map(Int32.init)))
            let chat = try await call(client, .post, "/tokenize", #"{"messages": [{"role": "user", "content": "Hello world"}]}"#)
            XCTAssertEqual((chat.json["tokens"] as? [Int])?.map(Int32.init), try chatIDs("Hello world"))
            let bad = try await call(client, .post, "/detokenize", #"{"tokens": [-1]}"#)
            XCTAssertEqual(bad.status, .badRequest)
        }
    }

    func testMetricsUseVLLMNames() async throws {
        try await withServer { client in
            _ = try await call(client, .post, "/v1/completions", #"{"prompt": "Hello", "max_tokens": 6, "temperature": 0, "ignore_eos": true}"#)
            _ = try await call(client, .post, "/v1/completions", #"{"prompt": "Hello", "max_tokens": 6, "temperature": 0, "ignore_eos": true, "stream": true}"#)
            let r = try await call(client, .get, "/metrics")
            XCTAssertEqual(r.status, .ok)
            let prompt = TinyChatModel.loaded.tokenizer.encode("Hello", addSpecialTokens: true).count
            func value(_ line: String) -> Double? {
                r.text.split(separator: "\n").first { $0.hasPrefix(line + "{") || $0.hasPrefix(line + " ") }
                    .flatMap { Double($0.split(separator: " ").last!) }
            }
            XCTAssertEqual(value("vllm:generation_tokens_total"), 12)
            XCTAssertEqual(value("vllm:prompt_tokens_total"), Double(2 * prompt))
            XCTAssertEqual(value("vllm:num_requests_running"), 0)
            XCTAssertEqual(value("vllm:num_requests_waiting"), 0)
            XCTAssertEqual(value("vllm:prefix_cache_hits_total"), Double(prompt - 1))
            XCTAssertTrue(r.text.contains(#"vllm:request_success_total{model_name="tiny-chat",engine="0",finished_reason="length"} 2"#), r.text)
            for name in ["vllm:kv_cache_usage_perc", "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_count",
                         "vllm:e2e_request_latency_seconds_sum", "vllm:request_queue_time_seconds_count"] {
                XCTAssertTrue(r.text.contains(name), "missing \(name)")
            }
            XCTAssertEqual(value("vllm:time_to_first_token_seconds_count"), 2)
            XCTAssertEqual(value("vllm:inter_token_latency_seconds_count"), 10)
        }
    }
}
