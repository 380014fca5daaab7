// A small exact JSON reader for tokenizer.json and tokenizer_config.json.
//
// Why not JSONSerialization: a vocabulary's keys must survive exactly. Swift dictionaries merge keys
// that are canonically equivalent ("e\u{301}" and "é": Gemma 3 has 434 such pairs), and Foundation's
// parser on Linux loses a leading U+FEFF (Gemma's token 237922 is that character alone). Here objects
// keep their members in order as (key, value) pairs and strings are decoded scalar for scalar.
import Foundation

public indirect enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var int: Int? { if case .number(let d) = self, let i = Int(exactly: d) { i } else { nil } }
    public var array: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var members: [(String, JSONValue)]? { if case .object(let o) = self { o } else { nil } }
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// The first member with exactly this key (nil for a missing key or a non-object).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0.utf8.elementsEqual(key.utf8) }?.1
    }

    /// Compact JSON text, members in their order (for error messages).
    public var compactText: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d): return Int(exactly: d).map(String.init) ?? "\(d)"
        case .string(let s): return JSONValue.quoted(s)
        case .array(let a): return "[" + a.map(\.compactText).joined(separator: ",") + "]"
        case .object(let o): return "{" + o.map { JSONValue.quoted($0.0) + ":" + $0.1.compactText }.joined(separator: ",") + "}"
        }
    }

    public static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    /// Parses a whole document; an error says what was expected and at which byte.
    public static func parse(_ bytes: [UInt8]) throws(TokenizerError) -> JSONValue {
        var reader = Reader(bytes: bytes)
        let value = try reader.value()
        reader.skipSpace()
        guard reader.position == bytes.count else { throw reader.error("the end of the document") }
        return value
    }

    struct Reader {
        let bytes: [UInt8]
        var position = 0

        func error(_ expected: String) -> TokenizerError {
            let found = position < bytes.count ? "'\(Character(Unicode.Scalar(bytes[position])))'" : "the end"
            return .invalidTokenizerJSON("expected \(expected) at byte \(position), found \(found)")
        }

        mutating func skipSpace() {
            while position < bytes.count, bytes[position] == 0x20 || bytes[position] == 0x0A || bytes[position] == 0x0D || bytes[position] == 0x09 {
                position += 1
            }
        }

        mutating func literal(_ word: String, _ value: JSONValue) throws(TokenizerError) -> JSONValue {
            let w = Array(word.utf8)
            guard position + w.count <= bytes.count, Array(bytes[position..<position + w.count]) == w else { throw error(word) }
            position += w.count
            return value
        }

        mutating func value() throws(TokenizerError) -> JSONValue {
            skipSpace()
            guard position < bytes.count else { throw error("a value") }
            switch bytes[position] {
            case UInt8(ascii: "{"):
                position += 1
                var members: [(String, JSONValue)] = []
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
                while true {
                    skipSpace()
                    let key = try string()
                    skipSpace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("':'") }
                    position += 1
                    members.append((key, try value()))
                    skipSpace()
                    guard position < bytes.count else { throw error("',' or '}'") }
                    if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
                    throw error("',' or '}'")
                }
            case UInt8(ascii: "["):
                position += 1
                var items: [JSONValue] = []
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
                while true {
                    items.append(try value())
                    skipSpace()
                    guard position < bytes.count else { throw error("',' or ']'") }
                    if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
                    throw error("',' or ']'")
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .null)
            default: return try number()
            }
        }

        mutating func number() throws(TokenizerError) -> JSONValue {
            let start = position
            var integer = 0, isInteger = true, negative = false
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") { negative = true; position += 1 }
            while position < bytes.count {
                let b = bytes[position]
                if b >= 0x30 && b <= 0x39 {
                    let (m, o1) = integer.multipliedReportingOverflow(by: 10)
                    let (s, o2) = m.addingReportingOverflow(Int(b - 0x30))
                    if o1 || o2 { isInteger = false }
                    integer = s
                } else if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") {
                    isInteger = false
                } else {
                    break
                }
                position += 1
            }
            guard position > start + (negative ? 1 : 0) else { throw error("a value") }
            if isInteger { return .number(Double(negative ? -integer : integer)) }
            guard let d = Double(String(decoding: bytes[start..<position], as: UTF8.self)) else { throw error("a number") }
            return .number(d)
        }

        mutating func hex4() throws(TokenizerError) -> UInt32 {
            guard position + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[position..<position + 4], as: UTF8.self), radix: 16) else {
                throw error("four hex digits")
            }
            position += 4
            return v
        }

        mutating func string() throws(TokenizerError) -> String {
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("a string") }
            position += 1
            var out: [UInt8] = []
            while true {
                let start = position
                while position < bytes.count, bytes[position] != UInt8(ascii: "\""), bytes[position] != UInt8(ascii: "\\") { position += 1 }
                out += bytes[start..<position]
                guard position < bytes.count else { throw error("the end of a string") }
                if bytes[position] == UInt8(ascii: "\"") { position += 1; break }
                position += 1  // backslash
                guard position < bytes.count else { throw error("an escape") }
                let e = bytes[position]
                position += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var v = try hex4()
                    if (0xD800..<0xDC00).contains(v), position + 6 <= bytes.count, bytes[position] == UInt8(ascii: "\\"),
                       bytes[position + 1] == UInt8(ascii: "u") {
                        position += 2
                        let low = try hex4()
                        v = 0x10000 + ((v - 0xD800) << 10) + (low &- 0xDC00)
                    }
                    let scalar = Unicode.Scalar(v) ?? "\u{FFFD}"
                    out += Array(String(scalar).utf8)
                default: position -= 1; throw error("an escape character")
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
    }
}
