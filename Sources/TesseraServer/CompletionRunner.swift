// Running a planned completion: every choice's engine stream, merged into one sequence of
// (choice, event) as events arrive, with per-choice latency bookkeeping for the metrics; then either
// one JSON body (non-streaming) or OpenAI's server-sent events (streaming):
//
//   data: {chunk: role}            first chunk of each choice (chat)
//   data: {chunk: content delta}   as text becomes final, with logprobs when asked
//   data: {chunk: finish_reason}   when a choice ends
//   data: {chunk: usage}           with stream_options.include_usage, choices: []
//   data: [DONE]
//
// A client that goes away makes a write throw: the merge task group is cancelled, which ends each
// engine stream's iteration, which cancels its request in the engine. An engine failure after the
// response head is sent becomes a `data: {"error": …}` event followed by [DONE].
import Foundation
import Hummingbird
import Synchronization
import TesseraEngine
import TesseraTokenizers

/// One choice's events and timings.
struct ChoiceEvent: Sendable {
    var choice: Int
    var event: EngineEvent
}

final class CompletionRunner: Sendable {
    let plan: CompletionPlanBox
    let served: ServedModel
    let metrics: ServerMetrics
    let start: UInt64

    init(plan: CompletionPlan, served: ServedModel, metrics: ServerMetrics) {
        self.plan = CompletionPlanBox(plan)
        self.served = served
        self.metrics = metrics
        self.start = DispatchTime.now().uptimeNanoseconds
    }

    private func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// Submits every choice; a refusal of any cancels those already queued (their streams are dropped).
    func submitAll() throws(APIError) -> [EngineStream] {
        var streams: [EngineStream] = []
        for request in plan.value.choices {
            do { streams.append(try served.engine.submit(request)) } catch { throw .engine(error) }
        }
        return streams
    }

    /// The choices' streams merged into one, in arrival order, with latencies recorded on the way.
    /// Ending the merged stream early (a write that failed) cancels every choice in the engine.
    func merge(_ streams: [EngineStream]) -> AsyncThrowingStream<ChoiceEvent, any Error> {
        let (merged, continuation) = AsyncThrowingStream<ChoiceEvent, any Error>.makeStream()
        let remaining = Countdown(streams.count)
        let tasks = streams.enumerated().map { index, stream in
            Task { [self] in
                var firstToken: Double?, lastToken: Double?
                var queueSeconds = 0.0, cached = 0, tokens = 0, finished = false
                do {
                    for try await event in stream {
                        let now = elapsed()
                        switch event {
                        case .scheduled(let seconds, let cachedTokens): (queueSeconds, cached) = (seconds, cachedTokens)
                        case .output(let step) where step.token != nil:
                            tokens += 1
                            if let last = lastToken { metrics.interToken(now - last) } else {
                                firstToken = now
                                metrics.firstToken(after: now)
                            }
                            lastToken = now
                        case .finished(let summary):
                            finished = true
                            metrics.finished(summary, e2eSeconds: now, firstTokenSeconds: firstToken)
                        default: break
                        }
                        continuation.yield(ChoiceEvent(choice: index, event: event))
                    }
                    if remaining.decrement() == 0 { continuation.finish() }
                } catch {
                    continuation.finish(throwing: error)
                }
                if !finished {
                    // Cancelled from here (the client went away): count it as vLLM counts an abort.
                    let prompt = plan.value.choices[index].prompt.count
                    metrics.finished(EngineSummary(finishReason: .cancelled, promptTokens: prompt, cachedPromptTokens: cached,
                                                   completionTokens: tokens, queueSeconds: queueSeconds, prefillSeconds: 0,
                                                   decodeSeconds: 0), e2eSeconds: elapsed(), firstTokenSeconds: firstToken)
                }
            }
        }
        continuation.onTermination = { _ in for task in tasks { task.cancel() } }
        return merged
    }

    // MARK: - Non-streaming

    func completeResponse(_ streams: [EngineStream]) async throws -> JSONValue {
        let count = plan.value.choices.count
        var results = [(text: String, tokens: [GeneratedToken], summary: EngineSummary?)](repeating: ("", [], nil), count: count)
        for try await item in merge(streams) {
            switch item.event {
            case .scheduled: break
            case .output(let step):
                results[item.choice].text += step.text
                if let token = step.token { results[item.choice].tokens.append(token) }
            case .finished(let summary): results[item.choice].summary = summary
            }
        }
        var choices: [JSONValue] = []
        var completionTokens = 0, cached = 0
        for (i, result) in results.enumerated() {
            guard let summary = result.summary else { throw EngineError.generation("choice \(i) did not finish") }
            completionTokens += summary.completionTokens
            if i % plan.value.n == 0 { cached += summary.cachedPromptTokens }
            var text = result.text
            if let echo = plan.value.echoTexts { text = echo[i / plan.value.n] + text }
            choices.append(choiceJSON(index: i, text: text, tokens: result.tokens, finish: summary.finishReason))
        }
        return .object([
            ("id", .string(plan.value.id)), ("object", .string(plan.value.endpoint.objectName)),
            ("created", .number(Double(plan.value.created))), ("model", .string(plan.value.model)),
            ("choices", .array(choices)), ("usage", usageJSON(completionTokens: completionTokens, cached: cached)),
            ("system_fingerprint", .string("tessera")),
        ])
    }

    private func choiceJSON(index: Int, text: String, tokens: [GeneratedToken], finish: FinishReason) -> JSONValue {
        let logprobs = plan.value.logprobs == nil ? JSONValue.null : logprobsJSON(tokens)
        switch plan.value.endpoint {
        case .chat:
            return .object([
                ("index", .number(Double(index))),
                ("message", .object([("role", .string("assistant")), ("content", .string(text))])),
                ("logprobs", logprobs), ("finish_reason", .string(finish.rawValue)),
            ])
        case .completion:
            return .object([
                ("index", .number(Double(index))), ("text", .string(text)),
                ("logprobs", logprobs), ("finish_reason", .string(finish.rawValue)),
            ])
        }
    }

    func usageJSON(completionTokens: Int, cached: Int) -> JSONValue {
        let promptTokens = plan.value.prompts.reduce(0) { $0 + $1.count }
        return .object([
            ("prompt_tokens", .number(Double(promptTokens))), ("completion_tokens", .number(Double(completionTokens))),
            ("total_tokens", .number(Double(promptTokens + completionTokens))),
            ("prompt_tokens_details", .object([("cached_tokens", .number(Double(cached)))])),
        ])
    }

    // MARK: - Log-probabilities

    private func tokenText(_ id: Int32) -> (text: String, bytes: [UInt8]) {
        let bytes = (try? served.tokenizer.tokenBytes(id)) ?? []
        return (String(decoding: bytes, as: UTF8.self), bytes)
    }

    /// JSON has no infinities; vLLM reports -9999 for an impossible token.
    private func number(_ logprob: Float?) -> JSONValue { .number(Double(max(logprob ?? -9999, -9999))) }

    /// Chat: {"content": [{token, logprob, bytes, top_logprobs}]}; completions: OpenAI's legacy arrays.
    func logprobsJSON(_ tokens: [GeneratedToken], textOffset: Int = 0) -> JSONValue {
        switch plan.value.endpoint {
        case .chat:
            return .object([("content", .array(tokens.map { token in
                func entry(_ id: Int32, _ logprob: Float?) -> [(String, JSONValue)] {
                    let (text, bytes) = tokenText(id)
                    return [("token", .string(text)), ("logprob", number(logprob)),
                            ("bytes", .array(bytes.map { .number(Double($0)) }))]
                }
                return .object(entry(token.id, token.logprob) + [("top_logprobs", .array(token.topLogprobs.map {
                    .object(entry($0.id, $0.logprob))
                }))])
            }))])
        case .completion:
            let texts = tokens.map { tokenText($0.id).text }
            var offsets: [JSONValue] = [], offset = textOffset
            for text in texts {
                offsets.append(.number(Double(offset)))
                offset += text.count
            }
            return .object([
                ("tokens", .array(texts.map { .string($0) })),
                ("token_logprobs", .array(tokens.map { number($0.logprob) })),
                ("top_logprobs", .array(tokens.map { token in
                    .object(token.topLogprobs.map { (tokenText($0.id).text, number($0.logprob)) })
                })),
                ("text_offset", .array(offsets)),
            ])
        }
    }

    // MARK: - Streaming

    /// One chunk: the choice's delta (chat) or text (completions), its logprobs and finish reason.
    func chunk(choice: Int, text: String?, role: Bool = false, tokens: [GeneratedToken] = [],
               finish: FinishReason? = nil, textOffset: Int = 0) -> JSONValue {
        let logprobs = plan.value.logprobs != nil && !tokens.isEmpty ? logprobsJSON(tokens, textOffset: textOffset) : .null
        var choiceMembers: [(String, JSONValue)] = [("index", .number(Double(choice)))]
        switch plan.value.endpoint {
        case .chat:
            var delta: [(String, JSONValue)] = []
            if role { delta.append(("role", .string("assistant"))) }
            if let text { delta.append(("content", .string(text))) }
            choiceMembers.append(("delta", .object(delta)))
        case .completion:
            choiceMembers.append(("text", .string(text ?? "")))
        }
        choiceMembers += [("logprobs", logprobs), ("finish_reason", finish.map { .string($0.rawValue) } ?? .null)]
        var members = header() + [("choices", .array([.object(choiceMembers)]))]
        if plan.value.includeUsage { members.append(("usage", .null)) }
        return .object(members)
    }

    func header() -> [(String, JSONValue)] {
        [("id", .string(plan.value.id)), ("object", .string(plan.value.endpoint.chunkObjectName)),
         ("created", .number(Double(plan.value.created))), ("model", .string(plan.value.model)),
         ("system_fingerprint", .string("tessera"))]
    }

    /// The streaming body: chunks as events arrive, then usage (when asked) and [DONE].
    func streamBody(_ streams: [EngineStream]) -> ResponseBody {
        ResponseBody { [self] writer in
            let p = plan.value
            var textOffsets = [Int](repeating: 0, count: p.choices.count)
            var completionTokens = 0, cached = 0
            func send(_ chunk: JSONValue) async throws {
                try await writer.write(ByteBuffer(string: "data: " + chunk.compactText + "\n\n"))
            }
            var events = merge(streams).makeAsyncIterator()
            while true {
                let next: ChoiceEvent?
                do { next = try await events.next() } catch {
                    // The engine failed mid-stream (the response head is sent): an error event in
                    // OpenAI's shape, then [DONE], as vLLM does, rather than a dropped connection.
                    let refusal = (error as? EngineError).map(APIError.engine)
                        ?? APIError(status: .internalServerError, message: "\(error)", type: "internal_error", param: nil, code: nil)
                    try await send(refusal.json)
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    try await writer.finish(nil)
                    return
                }
                guard let item = next else { break }
                let i = item.choice
                switch item.event {
                case .scheduled(_, let cachedTokens):
                    if i % p.n == 0 { cached += cachedTokens }
                    if p.endpoint == .chat { try await send(chunk(choice: i, text: "", role: true)) }
                    if let echo = p.echoTexts {
                        let text = echo[i / p.n]
                        textOffsets[i] += text.count
                        try await send(chunk(choice: i, text: text))
                    }
                case .output(let step):
                    let tokens = step.token.map { [$0] } ?? []
                    guard !step.text.isEmpty || (p.logprobs != nil && !tokens.isEmpty) else { continue }
                    try await send(chunk(choice: i, text: step.text, tokens: tokens, textOffset: textOffsets[i]))
                    textOffsets[i] += step.text.count
                case .finished(let summary):
                    completionTokens += summary.completionTokens
                    try await send(chunk(choice: i, text: p.endpoint == .chat ? nil : "", finish: summary.finishReason))
                }
            }
            if p.includeUsage {
                try await send(.object(header() + [("choices", .array([])),
                                                   ("usage", usageJSON(completionTokens: completionTokens, cached: cached))]))
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        }
    }
}

/// A count shared by tasks, down to zero.
final class Countdown: Sendable {
    private let value: Mutex<Int>
    init(_ count: Int) { value = Mutex(count) }
    func decrement() -> Int { value.withLock { $0 -= 1; return $0 } }
}

/// The plan is a value shared read-only by the runner's tasks.
struct CompletionPlanBox: @unchecked Sendable {
    let value: CompletionPlan
    init(_ value: CompletionPlan) { self.value = value }
}
