// From an OpenAI request body to engine requests: the prompt ids (chat template or raw prompt), the
// generation options, one engine request per choice (n per prompt), with every parameter checked
// against OpenAI's ranges. Nothing is clamped: a value out of range is a 400 that names it.
import Foundation
import TesseraEngine
import TesseraTokenizers

enum Endpoint {
    case chat, completion

    var objectName: String { self == .chat ? "chat.completion" : "text_completion" }
    var chunkObjectName: String { self == .chat ? "chat.completion.chunk" : "text_completion" }
    var idPrefix: String { self == .chat ? "chatcmpl-" : "cmpl-" }
}

/// A request ready for the engine.
struct CompletionPlan {
    var endpoint: Endpoint
    var id: String
    var created: Int
    var model: String
    /// One engine request per choice, in choice-index order (prompt-major, then n).
    var choices: [EngineRequest]
    /// Distinct prompts (usage counts each once, however many choices it has).
    var prompts: [[Int32]]
    /// For `echo` (completions): the prompt text to put in front of each choice's text.
    var echoTexts: [String]?
    var n: Int
    var stream: Bool
    var includeUsage: Bool
    /// Top-logprob count when logprobs were asked for.
    var logprobs: Int?
    /// The client's end-user id (OpenAI's `user`), logged with the request.
    var user: String?
}

enum CompletionPlanner {
    static let maxChoices = 16
    static let maxStopStrings = 16

    static func plan(endpoint: Endpoint, body: Data, served: ServedModel) throws(APIError) -> CompletionPlan {
        let decoder = JSONDecoder()
        let fields: SamplingFields
        do { fields = try decoder.decode(SamplingFields.self, from: body) } catch { throw .decoding(error) }
        if let model = fields.model, model != served.name { throw .modelNotFound(model, served: served.name) }
        let tokenizer = served.tokenizer
        let engine = served.engine

        var prompts: [[Int32]], echoTexts: [String]? = nil
        var logprobs: Int?, maxTokens: Int?
        switch endpoint {
        case .chat:
            let chat: ChatCompletionRequest
            do { chat = try decoder.decode(ChatCompletionRequest.self, from: body) } catch { throw .decoding(error) }
            guard let template = served.chatTemplate else {
                throw .badRequest("the model '\(served.name)' has no chat template; use /v1/completions", param: "messages")
            }
            guard !chat.messages.isEmpty else { throw .badRequest("'messages' must not be empty", param: "messages") }
            let messages = try renderable(chat.messages)
            do {
                prompts = [try ChatPrompt.ids(messages: messages, template: template, tokenizer: tokenizer,
                                              addGenerationPrompt: chat.addGenerationPrompt ?? true)]
            } catch { throw .badRequest("the chat template failed: \(error.description)", param: "messages") }
            if let top = chat.topLogprobs {
                guard (0...20).contains(top) else { throw .invalidValue("top_logprobs", "\(top)", allowed: "0...20") }
                guard chat.logprobs == true else { throw .badRequest("'top_logprobs' needs 'logprobs': true", param: "top_logprobs") }
            }
            if chat.logprobs == true { logprobs = chat.topLogprobs ?? 0 }
            if let tools = chat.tools, !tools.isEmpty {
                throw .badRequest("function calling ('tools') is not supported by this server", param: "tools")
            }
            if let format = chat.responseFormat?.type, format != "text" {
                throw .invalidValue("response_format.type", "'\(format)'", allowed: "'text' (structured output is not supported)")
            }
            if let limit = chat.maxCompletionTokens, limit < 1 {
                throw .invalidValue("max_completion_tokens", "\(limit)", allowed: ">= 1")
            }
            maxTokens = chat.maxCompletionTokens ?? fields.maxTokens
        case .completion:
            let completion: CompletionRequest
            do { completion = try decoder.decode(CompletionRequest.self, from: body) } catch { throw .decoding(error) }
            if completion.suffix != nil { throw .badRequest("'suffix' is not supported", param: "suffix") }
            switch completion.prompt {
            case .texts(let texts):
                guard !texts.isEmpty else { throw .badRequest("'prompt' must not be empty", param: "prompt") }
                prompts = texts.map { tokenizer.encode($0, addSpecialTokens: true) }
                if completion.echo == true { echoTexts = texts }
            case .tokens(let lists):
                guard !lists.isEmpty else { throw .badRequest("'prompt' must not be empty", param: "prompt") }
                prompts = try lists.map { list throws(APIError) in
                    try list.map { id throws(APIError) in
                        guard id >= 0, id < tokenizer.vocabularySize else {
                            throw .invalidValue("prompt", "token \(id)", allowed: "ids in 0..<\(tokenizer.vocabularySize)")
                        }
                        return Int32(id)
                    }
                }
                if completion.echo == true {
                    echoTexts = prompts.map { (try? tokenizer.decode($0)) ?? "" }
                }
            }
            if let k = completion.logprobs {
                guard (0...20).contains(k) else { throw .invalidValue("logprobs", "\(k)", allowed: "0...20") }
                logprobs = k
            }
            maxTokens = fields.maxTokens ?? 16  // OpenAI's default for completions
        }
        if let empty = prompts.firstIndex(where: \.isEmpty) {
            throw .badRequest("prompt \(empty) has no tokens", param: endpoint == .chat ? "messages" : "prompt")
        }

        let n = fields.n ?? 1
        guard (1...maxChoices).contains(n) else { throw .invalidValue("n", "\(n)", allowed: "1...\(maxChoices)") }
        let stops = fields.stop?.strings ?? []
        guard stops.count <= maxStopStrings else {
            throw .invalidValue("stop", "\(stops.count) strings", allowed: "at most \(maxStopStrings)")
        }
        if fields.streamOptions != nil && fields.stream != true {
            throw .badRequest("'stream_options' is only allowed with 'stream': true", param: "stream_options")
        }
        let sampling = try samplingParameters(fields, vocabularySize: tokenizer.vocabularySize)

        let id = endpoint.idPrefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        var choices: [EngineRequest] = []
        for (p, prompt) in prompts.enumerated() {
            // Chat without max_tokens may use the rest of the context, as vLLM does.
            let limit = maxTokens ?? max(engine.maxModelLength - prompt.count, 1)
            guard limit >= 1 else { throw .invalidValue("max_tokens", "\(limit)", allowed: ">= 1") }
            for j in 0..<n {
                var parameters = sampling
                if let seed = parameters.seed { parameters.seed = seed &+ UInt64(j) }  // distinct, reproducible choices
                let options = GenerationOptions(maxTokens: limit, sampling: parameters, stopStrings: stops,
                                                ignoreEOS: fields.ignoreEOS ?? false, logprobs: logprobs)
                let request = EngineRequest(id: "\(id)-\(p * n + j)", prompt: prompt, options: options,
                                            priority: fields.priority ?? 0, cacheSalt: fields.cacheSalt,
                                            samplingGroup: n > 1 ? "\(id)-\(p)" : nil)
                do { try engine.validate(request) } catch {
                    var refusal = APIError.engine(error)
                    if case .contextExceeded = error { refusal.param = endpoint == .chat ? "messages" : "prompt" }
                    throw refusal
                }
                choices.append(request)
            }
        }
        return CompletionPlan(endpoint: endpoint, id: id, created: Int(Date().timeIntervalSince1970), model: served.name,
                              choices: choices, prompts: prompts, echoTexts: echoTexts, n: n, stream: fields.stream ?? false,
                              includeUsage: fields.streamOptions?.includeUsage ?? false, logprobs: logprobs, user: fields.user)
    }

    /// Messages as the template wants them: role and text content.
    static func renderable(_ messages: [ChatMessage]) throws(APIError) -> [[String: String]] {
        let roles: Set<String> = ["system", "developer", "user", "assistant", "tool"]
        var out: [[String: String]] = []
        for (i, message) in messages.enumerated() {
            guard roles.contains(message.role) else {
                throw .invalidValue("messages[\(i)].role", "'\(message.role)'", allowed: roles.sorted().joined(separator: ", "))
            }
            var text = ""
            switch message.content {
            case .text(let s): text = s
            case .parts(let parts):
                for (k, part) in parts.enumerated() {
                    guard part.type == "text", let t = part.text else {
                        throw .badRequest("content part type '\(part.type)' is not supported (text only)",
                                          param: "messages[\(i)].content[\(k)]")
                    }
                    text += t
                }
            case nil: text = ""
            }
            // Templates know system/user/assistant; OpenAI's newer "developer" role is the system role.
            out.append(["role": message.role == "developer" ? "system" : message.role, "content": text])
        }
        return out
    }

    /// OpenAI's parameter ranges, checked here so the error names the wire field.
    static func samplingParameters(_ f: SamplingFields, vocabularySize: Int) throws(APIError) -> SamplingParameters {
        func check(_ name: String, _ value: Double?, _ range: ClosedRange<Double>, _ allowed: String,
                   open lower: Bool = false) throws(APIError) -> Float? {
            guard let value else { return nil }
            guard value.isFinite, range.contains(value), !(lower && value == range.lowerBound) else {
                throw .invalidValue(name, "\(value)", allowed: allowed)
            }
            return Float(value)
        }
        var p = SamplingParameters()
        if let t = try check("temperature", f.temperature, 0...2, "0...2") { p.temperature = t }
        if let v = try check("top_p", f.topP, 0...1, "(0, 1]", open: true) { p.topP = v }
        if let v = try check("min_p", f.minP, 0...1, "0...1") { p.minP = v }
        if let v = try check("presence_penalty", f.presencePenalty, -2...2, "-2...2") { p.presencePenalty = v }
        if let v = try check("frequency_penalty", f.frequencyPenalty, -2...2, "-2...2") { p.frequencyPenalty = v }
        if let v = try check("repetition_penalty", f.repetitionPenalty, 0...2, "(0, 2]", open: true) { p.repetitionPenalty = v }
        if let k = f.topK {
            guard k >= -1 else { throw .invalidValue("top_k", "\(k)", allowed: "-1 or 0 (off), or a positive count") }
            p.topK = k
        }
        if let maxTokens = f.maxTokens, maxTokens < 1 {
            throw .invalidValue("max_tokens", "\(maxTokens)", allowed: ">= 1")
        }
        if let seed = f.seed { p.seed = UInt64(bitPattern: seed) }
        for (key, bias) in f.logitBias ?? [:] {
            guard let id = Int32(key), id >= 0, Int(id) < vocabularySize else {
                throw .invalidValue("logit_bias", "key '\(key)'", allowed: "token ids in 0..<\(vocabularySize)")
            }
            guard bias.isFinite, abs(bias) <= 100 else { throw .invalidValue("logit_bias", "\(bias)", allowed: "-100...100") }
            p.logitBias[id] = Float(bias)
        }
        return p
    }
}
