// The HTTP routes of `tessera serve`: OpenAI's completions, chat completions and models; vLLM's
// tokenize/detokenize, health and metrics; the chat page at /.
//
// The router is built by a function of the model slot, the metrics and the options, with no socket,
// so the route tests drive it directly (HummingbirdTesting's .router mode).
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import NIOCore
import TesseraEngine
import TesseraTokenizers

public struct RouteOptions: Sendable {
    /// Clients must send `Authorization: Bearer <key>` to /v1/* and /tokenize, /detokenize.
    public var apiKey: String?
    /// Larger bodies get 413.
    public var maxBodyBytes: Int

    public init(apiKey: String? = nil, maxBodyBytes: Int = 4 << 20) {
        self.apiKey = apiKey; self.maxBodyBytes = maxBodyBytes
    }
}

/// The server's routes over a model slot (empty while loading).
public func makeRouter(slot: ModelSlot, metrics: ServerMetricsHandle, options: RouteOptions = RouteOptions())
    -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: APIErrorMiddleware())
    if let key = options.apiKey { router.add(middleware: APIKeyMiddleware(key: key)) }
    let handlers = Handlers(slot: slot, metrics: metrics.metrics, options: options)

    router.get("/") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: ChatPage.html)))
    }
    router.get("/health") { _, _ in
        guard slot.model != nil else { return APIError.loading.response }
        guard !slot.isDraining else { return APIError.engine(.shuttingDown).response }
        return jsonResponse(.object([("status", .string("ok"))]))
    }
    router.get("/metrics") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.metrics.exposition(engine: slot.model?.engine.stats()))))
    }
    router.get("/v1/models") { _, _ in try handlers.models() }
    router.post("/v1/chat/completions") { request, context in try await handlers.completion(.chat, request, context) }
    router.post("/v1/completions") { request, context in try await handlers.completion(.completion, request, context) }
    router.post("/tokenize") { request, context in try await handlers.tokenize(request, context) }
    router.post("/detokenize") { request, context in try await handlers.detokenize(request, context) }
    return router
}

/// The metrics a router reports to (public so the CLI can own one registry for the process).
public final class ServerMetricsHandle: Sendable {
    let metrics: ServerMetrics
    public init(modelName: String) { metrics = ServerMetrics(modelName: modelName) }

    /// Sends swift-metrics (Hummingbird's HTTP request counters and durations) to the same registry,
    /// so /metrics shows them beside vLLM's. Once per process: swift-metrics has one global backend.
    public func bootstrapSwiftMetrics() {
        var factory = PrometheusMetricsFactory(registry: metrics.registry)
        // swift-metrics labels use dots ("http.server.request.duration"); Prometheus names cannot.
        factory.nameAndLabelSanitizer = { name, labels in
            (name.replacingOccurrences(of: ".", with: "_"), labels.map { ($0.replacingOccurrences(of: ".", with: "_"), $1) })
        }
        MetricsSystem.bootstrap(factory)
    }
}

struct Handlers: Sendable {
    let slot: ModelSlot
    let metrics: ServerMetrics
    let options: RouteOptions

    func served() throws(APIError) -> ServedModel {
        guard let model = slot.model else { throw .loading }
        return model
    }

    func body(_ request: Request) async throws -> Data {
        var request = request
        return try await body(&request)
    }

    /// The request's body, collected into `request` (so that it can be consumed again).
    func body(_ request: inout Request) async throws -> Data {
        do {
            let buffer = try await request.collectBody(upTo: options.maxBodyBytes)
            return Data(buffer.readableBytesView)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError.bodyTooLarge(limit: options.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError.bodyTooLarge(limit: options.maxBodyBytes)
        }
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws(APIError) -> T {
        do { return try JSONDecoder().decode(type, from: data) } catch { throw .decoding(error) }
    }

    func models() throws -> Response {
        let model = try served()
        return jsonResponse(.object([("object", .string("list")), ("data", .array([.object([
            ("id", .string(model.name)), ("object", .string("model")), ("created", .number(Double(model.created))),
            ("owned_by", .string("tessera")), ("root", .string(model.path)),
            ("max_model_len", .number(Double(model.engine.maxModelLength))),
        ])]))]))
    }

    func completion(_ endpoint: Endpoint, _ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        let data = try await body(&request)
        let model = try served()
        let plan = try CompletionPlanner.plan(endpoint: endpoint, body: data, served: model)
        let runner = CompletionRunner(plan: plan, served: model, metrics: metrics)
        let streams = try runner.submitAll()
        let maxTokens = plan.choices.first?.options.maxTokens ?? 0
        let user = plan.user.map { ", user \($0.debugDescription)" } ?? ""
        context.logger.info("\(plan.id): \(plan.choices.count) choice(s), prompt \(plan.prompts.map(\.count)) tokens, max_tokens \(maxTokens), stream \(plan.stream)\(user)")
        if plan.stream {
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: runner.streamBody(streams))
        }
        // A client that goes away before the whole answer is ready (a timeout, a retry) cancels the work:
        // the connection's close cancels this task, which cancels the choices in the engine, as vLLM
        // aborts a request on disconnect. (The connection is not kept alive after such a response.)
        let body = try await request.body.consumeWithCancellationOnInboundClose { _ in
            try await runner.completeResponse(streams)
        }
        var response = jsonResponse(body)
        response.headers[.connection] = "close"
        return response
    }

    func tokenize(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try decode(TokenizeRequest.self, try await self.body(request))
        let model = try served()
        if let name = body.model, name != model.name { throw APIError.modelNotFound(name, served: model.name) }
        let ids: [Int32]
        switch (body.prompt, body.messages) {
        case (let prompt?, nil):
            ids = model.tokenizer.encode(prompt, addSpecialTokens: body.addSpecialTokens ?? true)
        case (nil, let messages?):
            guard let template = model.chatTemplate else {
                throw APIError.badRequest("the model has no chat template", param: "messages")
            }
            do {
                ids = try ChatPrompt.ids(messages: try CompletionPlanner.renderable(messages), template: template,
                                         tokenizer: model.tokenizer, addGenerationPrompt: body.addGenerationPrompt ?? true)
            } catch let error as TemplateError {
                throw APIError.badRequest("the chat template failed: \(error.description)", param: "messages")
            }
        default:
            throw APIError.badRequest("send exactly one of 'prompt' and 'messages'", param: "prompt")
        }
        return jsonResponse(.object([
            ("count", .number(Double(ids.count))), ("max_model_len", .number(Double(model.engine.maxModelLength))),
            ("tokens", .array(ids.map { .number(Double($0)) })),
        ]))
    }

    func detokenize(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try decode(DetokenizeRequest.self, try await self.body(request))
        let model = try served()
        if let name = body.model, name != model.name { throw APIError.modelNotFound(name, served: model.name) }
        let vocabulary = model.tokenizer.vocabularySize
        if let bad = body.tokens.first(where: { $0 < 0 || $0 >= vocabulary }) {
            throw APIError.invalidValue("tokens", "\(bad)", allowed: "ids in 0..<\(vocabulary)")
        }
        let text: String
        do { text = try model.tokenizer.decode(body.tokens.map { Int32($0) }) } catch {
            throw APIError.badRequest(error.description, param: "tokens")
        }
        return jsonResponse(.object([("prompt", .string(text))]))
    }
}

// MARK: - Middleware

/// Turns every thrown error into OpenAI's error shape (a route that does not exist included).
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as HTTPError {
            let type = error.status == .notFound ? "not_found_error" : "invalid_request_error"
            let message = error.status == .notFound ? "no route for \(request.method) \(request.uri.path)"
                : (error.body ?? error.status.reasonPhrase)
            return APIError(status: error.status, message: message, type: type, param: nil, code: nil).response
        } catch let error as EngineError {
            return APIError.engine(error).response
        } catch is CancellationError {
            // The client closed the connection while its answer was being made; the engine has dropped
            // the request. Nobody reads this response: its status is for the access log (nginx's 499).
            context.logger.info("client went away: request cancelled")
            return APIError(status: .init(code: 499, reasonPhrase: "Client Closed Request"), message: "the client closed the connection",
                            type: "cancelled", param: nil, code: nil).response
        } catch {
            context.logger.error("internal error: \(error)")
            return APIError(status: .internalServerError, message: "internal error: \(error)", type: "internal_error",
                            param: nil, code: nil).response
        }
    }
}

/// Bearer-token check for the API routes; the page, /health and /metrics stay open (probes, scrapers).
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/v1/") || path == "/tokenize" || path == "/detokenize" else { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
              constantTimeEqual(Array(header.utf8.dropFirst(7)), Array(key.utf8)) else {
            return APIError.unauthorized.response
        }
        return try await next(request, context)
    }

    private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}

/// One log line per request: method, path, status, time to the response head, and the request id
/// (also returned to the client as x-request-id).
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        var response = try await next(request, context)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        context.logger.info("\(request.method) \(request.uri.path) \(response.status.code) \(String(format: "%.1f", ms)) ms")
        response.headers[.init("x-request-id")!] = context.id
        return response
    }
}
