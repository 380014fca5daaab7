// Chat templates: the Jinja template a model file carries (tokenizer.chat_template), rendered by a
// Jinja subset large enough for the templates of the project's models (ChatML as in SmolLM2 and
// Qwen2.5, Gemma's turns): text, {{ expressions }}, {% if/elif/else %}, {% for … in … [if …] %} with
// `loop`, {% set %}, comments, whitespace control ({%- -%}), literals, lists and dicts, attribute and
// index access, slices, arithmetic, comparison, `in`, `is` tests, `~`, filters (trim, length, upper,
// lower, tojson, first, last, default, join, string, int, list, items) and string methods (strip,
// startswith, endswith, split, replace, upper, lower, title), `range` and `raise_exception`.
// Anything else is a TemplateError that names the construct — never a guess.
// Held to Python's jinja2 by goldens (scripts/goldens/make_template_goldens.py).
import Foundation
import TesseraFormats

public enum TemplateError: Error, CustomStringConvertible, Equatable {
    case syntax(String, line: Int)
    case unsupported(String, line: Int)
    case runtime(String)
    case raised(String)

    public var description: String {
        switch self {
        case .syntax(let m, let line): "chat template syntax error (line \(line)): \(m)"
        case .unsupported(let c, let line): "chat template uses '\(c)' (line \(line)), which Tessera's Jinja subset does not support"
        case .runtime(let m): "chat template error: \(m)"
        case .raised(let m): "the chat template raised: \(m)"
        }
    }
}

/// A template value.
public indirect enum TemplateValue: Equatable, Sendable {
    case none, bool(Bool), int(Int), double(Double), string(String), array([TemplateValue]), object([String: TemplateValue])
    case undefined

    var truthy: Bool {
        switch self {
        case .none, .undefined: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .array(let a): !a.isEmpty
        case .object(let o): !o.isEmpty
        }
    }

    var text: String {
        switch self {
        case .none: "None"
        case .undefined: ""
        case .bool(let b): b ? "True" : "False"
        case .int(let i): "\(i)"
        case .double(let d): d == d.rounded() && abs(d) < 1e15 ? String(format: "%.1f", d) : "\(d)"
        case .string(let s): s
        case .array(let a): "[" + a.map(\.repr).joined(separator: ", ") + "]"
        case .object(let o): "{" + o.sorted { $0.key < $1.key }.map { "'\($0.key)': \($0.value.repr)" }.joined(separator: ", ") + "}"
        }
    }

    var repr: String { if case .string(let s) = self { "'\(s)'" } else { text } }

    var json: String {
        switch self {
        case .none, .undefined: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return "\(i)"
        case .double(let d): return "\(d)"
        case .string(let s):
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 || scalar.value > 0x7e {
                        // jinja2's tojson escapes non-ASCII as \uXXXX (UTF-16 units).
                        for unit in String(scalar).utf16 { out += String(format: "\\u%04x", unit) }
                    } else { out.unicodeScalars.append(scalar) }
                }
            }
            return out + "\""
        case .array(let a): return "[" + a.map(\.json).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.sorted { $0.key < $1.key }.map { "\(TemplateValue.string($0.key).json): \($0.value.json)" }.joined(separator: ", ") + "}"
        }
    }
}

public struct ChatTemplate: Sendable {
    let nodes: [Node]

    public init(_ source: String) throws(TemplateError) {
        // jinja2 drops one newline at the very end of a template (keep_trailing_newline=False).
        var source = source
        if source.last == "\n" || source.last == "\r\n" { source.removeLast() }  // "\r\n" is one Character
        var parser = TemplateParser(tokens: try TemplateLexer.lex(source))
        nodes = try parser.parseBody(until: [])
    }

    /// Renders the template for chat `messages` (each with "role" and "content").
    public func render(messages: [[String: String]], addGenerationPrompt: Bool,
                       variables: [String: TemplateValue] = [:]) throws(TemplateError) -> String {
        var scope: [String: TemplateValue] = variables
        scope["messages"] = .array(messages.map { .object($0.mapValues { .string($0) }) })
        scope["add_generation_prompt"] = .bool(addGenerationPrompt)
        var interpreter = TemplateInterpreter(scopes: [scope])
        return try interpreter.run(nodes)
    }
}

// MARK: - Lexer

enum TemplateToken: Equatable {
    case text(String)
    case output([ExprToken], line: Int)
    case statement([ExprToken], line: Int)
}

enum ExprToken: Equatable {
    case name(String), string(String), int(Int), double(Double), op(String)
}

enum TemplateLexer {
    static func lex(_ source: String) throws(TemplateError) -> [TemplateToken] {
        var tokens: [TemplateToken] = []
        let chars = Array(source)
        var i = 0, line = 1, text = ""
        var trimNextText = false
        func flushText(trimRight: Bool) {
            var t = text
            if trimNextText { t = String(t.drop(while: { $0.isWhitespace })) }
            if trimRight { while let last = t.last, last.isWhitespace { t.removeLast() } }
            if !t.isEmpty { tokens.append(.text(t)) }
            text = ""
            trimNextText = false
        }
        while i < chars.count {
            if chars[i] == "{", i + 1 < chars.count, "{%#".contains(chars[i + 1]) {
                let kind = chars[i + 1]
                let close: Character = kind == "{" ? "}" : kind == "%" ? "%" : "#"
                var j = i + 2
                let trimLeft = j < chars.count && chars[j] == "-"
                if trimLeft { j += 1 }
                var body = ""
                var trimRight = false
                var closed = false
                while j + 1 < chars.count {
                    if chars[j] == close && chars[j + 1] == "}" {
                        if body.hasSuffix("-") { body.removeLast(); trimRight = true }
                        closed = true
                        break
                    }
                    if chars[j] == "\n" { line += 1 }
                    body.append(chars[j])
                    j += 1
                }
                guard closed else { throw .syntax("unclosed '{\(kind)'", line: line) }
                flushText(trimRight: trimLeft)
                if kind == "{" { tokens.append(.output(try lexExpression(body, line: line), line: line)) }
                else if kind == "%" { tokens.append(.statement(try lexExpression(body, line: line), line: line)) }
                trimNextText = trimRight
                i = j + 2
            } else {
                if chars[i] == "\n" { line += 1 }
                text.append(chars[i])
                i += 1
            }
        }
        flushText(trimRight: false)
        return tokens
    }

    static func lexExpression(_ source: String, line: Int) throws(TemplateError) -> [ExprToken] {
        var tokens: [ExprToken] = []
        let c = Array(source)
        var i = 0
        while i < c.count {
            let ch = c[i]
            if ch.isWhitespace { i += 1; continue }
            if ch.isLetter || ch == "_" {
                var name = ""
                while i < c.count, c[i].isLetter || c[i].isNumber || c[i] == "_" { name.append(c[i]); i += 1 }
                tokens.append(.name(name))
            } else if ch.isNumber {
                var number = ""
                while i < c.count, c[i].isNumber || (c[i] == "." && i + 1 < c.count && c[i + 1].isNumber) { number.append(c[i]); i += 1 }
                if let n = Int(number) { tokens.append(.int(n)) } else { tokens.append(.double(Double(number) ?? 0)) }
            } else if ch == "'" || ch == "\"" {
                var s = ""
                i += 1
                while i < c.count && c[i] != ch {
                    if c[i] == "\\" && i + 1 < c.count {
                        i += 1
                        switch c[i] { case "n": s.append("\n"); case "t": s.append("\t"); case "r": s.append("\r"); default: s.append(c[i]) }
                    } else { s.append(c[i]) }
                    i += 1
                }
                guard i < c.count else { throw .syntax("unterminated string", line: line) }
                i += 1
                tokens.append(.string(s))
            } else {
                let two = i + 1 < c.count ? String([ch, c[i + 1]]) : ""
                if ["==", "!=", "<=", ">=", "//", "**"].contains(two) { tokens.append(.op(two)); i += 2 }
                else if "+-*/%<>()[]{}.,:|~=".contains(ch) { tokens.append(.op(String(ch))); i += 1 }
                else { throw .syntax("unexpected character '\(ch)'", line: line) }
            }
        }
        return tokens
    }
}

extension ChatTemplate {
    /// The template stored in a GGUF file (tokenizer.chat_template).
    public init(gguf: GGUFFile) throws(TemplateError) {
        guard let source = gguf["tokenizer.chat_template"]?.stringValue else {
            throw .runtime("the model file has no tokenizer.chat_template")
        }
        try self.init(source)
    }
}
