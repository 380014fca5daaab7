// Errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}} with the matching HTTP status.
//
// Every way a request can be refused ends here, so a client always gets JSON it can parse and a status
// it can act on: 400 for a bad request (malformed JSON, a field of the wrong type, a value out of
// range, a prompt that does not fit), 401 for a missing or wrong API key, 404 for an unknown model or
// path, 413 for a body over the limit, 503 while loading, overloaded or shutting down.
import Foundation
import Hummingbird
import TesseraEngine
import TesseraTokenizers

struct APIError: Error {
    var status: HTTPResponse.Status
    var message: String
    var type: String
    var param: String?
    var code: String?

    static func badRequest(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func invalidValue(_ param: String, _ value: String, allowed: String) -> APIError {
        .badRequest("invalid value for '\(param)': \(value) (allowed: \(allowed))", param: param, code: "invalid_value")
    }

    static func modelNotFound(_ name: String, served: String) -> APIError {
        APIError(status: .notFound, message: "the model '\(name)' does not exist; this server serves '\(served)'",
                 type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    static let unauthorized = APIError(
        status: .unauthorized, message: "invalid or missing API key: send 'Authorization: Bearer <key>'",
        type: "authentication_error", param: nil, code: "invalid_api_key")

    static let loading = APIError(status: .serviceUnavailable, message: "the model is still loading; retry shortly",
                                  type: "service_unavailable", param: nil, code: "model_loading")

    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(status: .contentTooLarge, message: "the request body is larger than the limit of \(limit) bytes",
                 type: "invalid_request_error", param: nil, code: "body_too_large")
    }

    /// A JSON decoding failure, phrased with the field's wire name and path.
    static func decoding(_ error: any Error) -> APIError {
        guard let error = error as? DecodingError else { return .badRequest("invalid request body: \(error)") }
        func path(_ keys: [any CodingKey]) -> String {
            var out = ""
            for key in keys {
                if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
            }
            return out
        }
        switch error {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            let field = path(context.codingPath)
            let expected = Self.typeName(type)
            return .badRequest("invalid type for '\(field)': expected \(expected)", param: field, code: "invalid_type")
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return .badRequest("missing required field '\(field)'", param: field, code: "missing_field")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return .badRequest("the request body is not valid JSON", code: "invalid_json")
            }
            let field = path(context.codingPath)
            return .badRequest("invalid value for '\(field)': \(context.debugDescription)", param: field, code: "invalid_value")
        @unknown default:
            return .badRequest("invalid request body")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        if type == String.self { return "a string" }
        if type == Bool.self { return "a boolean" }
        if type == Int.self || type == Int64.self { return "an integer" }
        if type == Double.self { return "a number" }
        if type == [String].self { return "a list of strings" }
        let name = String(describing: type)
        if name.hasPrefix("Array") { return "a list" }
        if name.hasPrefix("Dictionary") { return "an object" }
        return "a value of type \(name)"
    }

    /// The engine's refusals, each with its status.
    static func engine(_ error: EngineError) -> APIError {
        switch error {
        case .emptyPrompt: .badRequest(error.description, param: "prompt", code: "empty_prompt")
        case .contextExceeded: .badRequest(error.description, param: "messages", code: "context_length_exceeded")
        case .invalidParameter: .badRequest(error.description, code: "invalid_value")
        case .overloaded:
            APIError(status: .serviceUnavailable, message: error.description, type: "service_unavailable", code: "overloaded")
        case .shuttingDown:
            APIError(status: .serviceUnavailable, message: error.description, type: "service_unavailable", code: "shutting_down")
        case .generation:
            APIError(status: .internalServerError, message: error.description, type: "internal_error", code: "generation_failed")
        }
    }

    var json: JSONValue {
        .object([("error", .object([
            ("message", .string(message)), ("type", .string(type)),
            ("param", param.map { .string($0) } ?? .null), ("code", code.map { .string($0) } ?? .null),
        ]))])
    }

    var response: Response { jsonResponse(json, status: status) }
}

/// A JSON body with its content type.
func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"],
             body: ResponseBody(byteBuffer: ByteBuffer(string: value.compactText)))
}
