// The request bodies of the OpenAI API that `tessera serve` speaks, as Codable types whose coding keys
// are the wire names, so a decoding error can name the field the client sent ("messages[0].content").
//
// Fields that OpenAI accepts in several shapes (`stop`: a string or a list; `prompt`: text, texts, token
// ids or lists of ids; a message's `content`: text or a list of parts) decode into one Swift enum each.
// Unknown fields are ignored, as OpenAI and vLLM do; a known field of the wrong type is an error.

/// Parameters the chat and completion endpoints share.
struct SamplingFields: Decodable {
    var model: String?
    var n: Int?
    var maxTokens: Int?
    var temperature: Double?
    var topP: Double?
    var topK: Int?
    var minP: Double?
    var presencePenalty: Double?
    var frequencyPenalty: Double?
    var repetitionPenalty: Double?
    var seed: Int64?
    var stop: StopField?
    var logitBias: [String: Double]?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var user: String?
    var ignoreEOS: Bool?
    var priority: Int?
    /// Isolates this request's prefix-cache entries (vLLM's cache_salt).
    var cacheSalt: String?

    enum CodingKeys: String, CodingKey {
        case model, n, temperature, seed, stop, stream, user, priority
        case maxTokens = "max_tokens", topP = "top_p", topK = "top_k", minP = "min_p"
        case presencePenalty = "presence_penalty", frequencyPenalty = "frequency_penalty"
        case repetitionPenalty = "repetition_penalty", logitBias = "logit_bias"
        case streamOptions = "stream_options", ignoreEOS = "ignore_eos", cacheSalt = "cache_salt"
    }
}

struct StreamOptions: Decodable {
    var includeUsage: Bool?
    enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
}

/// `stop`: one string or a list of them.
enum StopField: Decodable {
    case one(String)
    case many([String])

    var strings: [String] {
        switch self {
        case .one(let s): [s]
        case .many(let list): list
        }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let s = try? container.decode(String.self) { self = .one(s); return }
        self = .many(try container.decode([String].self))
    }
}

struct ChatCompletionRequest: Decodable {
    var messages: [ChatMessage]
    var maxCompletionTokens: Int?
    var logprobs: Bool?
    var topLogprobs: Int?
    var addGenerationPrompt: Bool?
    /// Function calling and structured output are not implemented: a request that asks for them is
    /// refused (400) rather than answered as if they had not been asked for.
    var tools: [AnyJSON]?
    var responseFormat: ResponseFormat?

    enum CodingKeys: String, CodingKey {
        case messages, logprobs, tools
        case maxCompletionTokens = "max_completion_tokens", topLogprobs = "top_logprobs"
        case addGenerationPrompt = "add_generation_prompt", responseFormat = "response_format"
    }
}

/// `response_format`: only its type is read ("text" is the one served).
struct ResponseFormat: Decodable {
    var type: String
}

/// Any JSON value, not looked into.
struct AnyJSON: Decodable {
    init(from decoder: any Decoder) throws {}
}

struct ChatMessage: Decodable {
    var role: String
    var content: MessageContent?
    var name: String?
}

/// A message's `content`: text, or a list of parts of which Tessera reads the text ones.
enum MessageContent: Decodable {
    case text(String)
    case parts([ContentPart])

    struct ContentPart: Decodable {
        var type: String
        var text: String?
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let s = try? container.decode(String.self) { self = .text(s); return }
        self = .parts(try container.decode([ContentPart].self))
    }
}

struct CompletionRequest: Decodable {
    var prompt: PromptField
    var logprobs: Int?
    var echo: Bool?
    var suffix: String?
}

/// `prompt`: a text, several texts, a list of token ids, or several such lists.
enum PromptField: Decodable {
    case texts([String])
    case tokens([[Int]])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let s = try? container.decode(String.self) { self = .texts([s]); return }
        if let list = try? container.decode([String].self) { self = .texts(list); return }
        if let ids = try? container.decode([Int].self) { self = .tokens([ids]); return }
        if let lists = try? container.decode([[Int]].self) { self = .tokens(lists); return }
        throw DecodingError.typeMismatch(PromptField.self, DecodingError.Context(
            codingPath: decoder.codingPath,
            debugDescription: "expected a string, a list of strings, a list of token ids or a list of such lists"))
    }
}

/// POST /tokenize: text (`prompt`) or chat `messages`, as vLLM takes them.
struct TokenizeRequest: Decodable {
    var model: String?
    var prompt: String?
    var messages: [ChatMessage]?
    var addSpecialTokens: Bool?
    var addGenerationPrompt: Bool?

    enum CodingKeys: String, CodingKey {
        case model, prompt, messages
        case addSpecialTokens = "add_special_tokens", addGenerationPrompt = "add_generation_prompt"
    }
}

struct DetokenizeRequest: Decodable {
    var model: String?
    var tokens: [Int]
}
