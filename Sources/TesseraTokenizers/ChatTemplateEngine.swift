// The chat-template parser (statements and a precedence-climbing expression parser) and interpreter.
// See ChatTemplate.swift for the supported Jinja subset.

indirect enum Expr: @unchecked Sendable {
    case literal(TemplateValue), name(String), list([Expr]), dict([(Expr, Expr)])
    case attribute(Expr, String), index(Expr, Expr), slice(Expr, Expr?, Expr?)
    case call(Expr, [Expr], keywords: [(String, Expr)])
    case filter(Expr, String, [Expr])
    case test(Expr, String, negated: Bool)
    case unary(String, Expr)
    case binary(String, Expr, Expr)
    case conditional(then: Expr, condition: Expr, otherwise: Expr?)
}

enum Node: @unchecked Sendable {
    case text(String)
    case output(Expr)
    case ifBlock([(Expr, [Node])], otherwise: [Node]?)
    case forBlock(names: [String], iterable: Expr, filter: Expr?, body: [Node])
    case set(String, Expr)
    /// {% set ns.attribute = … %}: writes into a namespace() object wherever it was defined.
    case setAttribute(String, String, Expr)
}

struct TemplateParser {
    let tokens: [TemplateToken]
    var position = 0
    // Expression state
    var expr: [ExprToken] = []
    var at = 0
    var line = 1

    init(tokens: [TemplateToken]) { self.tokens = tokens }

    /// Parses nodes until a statement whose keyword is in `terminators` (left unconsumed).
    mutating func parseBody(until terminators: Set<String>) throws(TemplateError) -> [Node] {
        var nodes: [Node] = []
        while position < tokens.count {
            switch tokens[position] {
            case .text(let t):
                nodes.append(.text(t))
                position += 1
            case .output(let e, let l):
                begin(e, l)
                nodes.append(.output(try parseExpression()))
                try end()
                position += 1
            case .statement(let e, let l):
                guard case .name(let keyword)? = e.first else { throw .syntax("empty statement", line: l) }
                if terminators.contains(keyword) { return nodes }
                begin(e, l)
                at = 1
                position += 1
                switch keyword {
                case "if": nodes.append(try parseIf())
                case "for": nodes.append(try parseFor())
                case "set":
                    guard case .name(let name)? = peek else { throw .syntax("set needs a name", line: line) }
                    at += 1
                    var attribute: String? = nil
                    if accept(.op(".")) {
                        guard case .name(let a)? = peek else { throw .syntax("expected an attribute name", line: line) }
                        attribute = a
                        at += 1
                    }
                    guard accept(.op("=")) else { throw .unsupported("{% set %} block", line: line) }
                    let value = try parseExpression()
                    nodes.append(attribute.map { .setAttribute(name, $0, value) } ?? .set(name, value))
                    try end()
                default:
                    throw .unsupported(keyword, line: l)
                }
            }
        }
        if !terminators.isEmpty { throw .syntax("missing {% \(terminators.sorted().joined(separator: " / ")) %}", line: line) }
        return nodes
    }

    mutating func parseIf() throws(TemplateError) -> Node {
        var branches: [(Expr, [Node])] = []
        var condition = try parseExpression()
        try end()
        var otherwise: [Node]? = nil
        while true {
            let body = try parseBody(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            guard case .statement(let e, let l) = tokens[position], case .name(let keyword)? = e.first else { break }
            position += 1
            if keyword == "elif" {
                begin(e, l); at = 1
                condition = try parseExpression()
                try end()
            } else if keyword == "else" {
                otherwise = try parseBody(until: ["endif"])
                position += 1
                break
            } else { break }  // endif
        }
        return .ifBlock(branches, otherwise: otherwise)
    }

    mutating func parseFor() throws(TemplateError) -> Node {
        var names: [String] = []
        repeat {
            guard case .name(let n)? = peek else { throw .syntax("for needs a loop variable", line: line) }
            names.append(n)
            at += 1
        } while accept(.op(","))
        guard case .name("in")? = peek else { throw .syntax("for needs 'in'", line: line) }
        at += 1
        let iterable = try parseOr()
        var filter: Expr? = nil
        if case .name("if")? = peek { at += 1; filter = try parseOr() }
        if case .name("recursive")? = peek { throw .unsupported("for … recursive", line: line) }
        try end()
        let body = try parseBody(until: ["endfor", "else"])
        if case .statement(let e, let l) = tokens[position], case .name("else")? = e.first { throw .unsupported("for … else", line: l) }
        position += 1
        return .forBlock(names: names, iterable: iterable, filter: filter, body: body)
    }

    // MARK: Expressions

    mutating func begin(_ e: [ExprToken], _ l: Int) { expr = e; at = 0; line = l }
    var peek: ExprToken? { at < expr.count ? expr[at] : nil }
    mutating func accept(_ t: ExprToken) -> Bool { if peek == t { at += 1; return true }; return false }
    mutating func expect(_ t: ExprToken) throws(TemplateError) { guard accept(t) else { throw .syntax("expected \(t)", line: line) } }
    mutating func end() throws(TemplateError) {
        guard at == expr.count else { throw .syntax("unexpected \(expr[at]) at the end of an expression", line: line) }
    }

    mutating func parseExpression() throws(TemplateError) -> Expr {
        let value = try parseOr()
        if case .name("if")? = peek {
            at += 1
            let condition = try parseOr()
            var otherwise: Expr? = nil
            if case .name("else")? = peek { at += 1; otherwise = try parseExpression() }
            return .conditional(then: value, condition: condition, otherwise: otherwise)
        }
        return value
    }
    mutating func parseOr() throws(TemplateError) -> Expr {
        var left = try parseAnd()
        while case .name("or")? = peek { at += 1; left = .binary("or", left, try parseAnd()) }
        return left
    }
    mutating func parseAnd() throws(TemplateError) -> Expr {
        var left = try parseNot()
        while case .name("and")? = peek { at += 1; left = .binary("and", left, try parseNot()) }
        return left
    }
    mutating func parseNot() throws(TemplateError) -> Expr {
        if case .name("not")? = peek { at += 1; return .unary("not", try parseNot()) }
        return try parseComparison()
    }
    mutating func parseComparison() throws(TemplateError) -> Expr {
        var left = try parseConcat()
        while true {
            if case .op(let o)? = peek, ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                at += 1; left = .binary(o, left, try parseConcat())
            } else if case .name("in")? = peek {
                at += 1; left = .binary("in", left, try parseConcat())
            } else if case .name("not")? = peek, at + 1 < expr.count, expr[at + 1] == .name("in") {
                at += 2; left = .unary("not", .binary("in", left, try parseConcat()))
            } else if case .name("is")? = peek {
                at += 1
                let negated = accept(.name("not"))
                guard case .name(let test)? = peek else { throw .syntax("'is' needs a test name", line: line) }
                at += 1
                left = .test(left, test, negated: negated)
            } else { return left }
        }
    }
    mutating func parseConcat() throws(TemplateError) -> Expr {
        var left = try parseAdditive()
        while accept(.op("~")) { left = .binary("~", left, try parseAdditive()) }
        return left
    }
    mutating func parseAdditive() throws(TemplateError) -> Expr {
        var left = try parseMultiplicative()
        while case .op(let o)? = peek, o == "+" || o == "-" { at += 1; left = .binary(o, left, try parseMultiplicative()) }
        return left
    }
    mutating func parseMultiplicative() throws(TemplateError) -> Expr {
        var left = try parseUnary()
        while case .op(let o)? = peek, ["*", "/", "%", "//"].contains(o) { at += 1; left = .binary(o, left, try parseUnary()) }
        return left
    }
    mutating func parseUnary() throws(TemplateError) -> Expr {
        if accept(.op("-")) { return .unary("-", try parseUnary()) }
        return try parsePostfix(try parsePrimary())
    }
    mutating func parsePostfix(_ base: Expr) throws(TemplateError) -> Expr {
        var e = base
        while true {
            if accept(.op(".")) {
                guard case .name(let n)? = peek else { throw .syntax("expected an attribute name", line: line) }
                at += 1
                e = .attribute(e, n)
            } else if accept(.op("[")) {
                var lower: Expr? = nil
                if peek != .op(":") { lower = try parseExpression() }
                if accept(.op(":")) {
                    var upper: Expr? = nil
                    if peek != .op("]") { upper = try parseExpression() }
                    if peek == .op(":") { throw .unsupported("slice step", line: line) }
                    try expect(.op("]"))
                    e = .slice(e, lower, upper)
                } else {
                    try expect(.op("]"))
                    guard let lower else { throw .syntax("empty index", line: line) }
                    e = .index(e, lower)
                }
            } else if accept(.op("(")) {
                let (args, keywords) = try parseArguments()
                e = .call(e, args, keywords: keywords)
            } else if accept(.op("|")) {
                guard case .name(let f)? = peek else { throw .syntax("expected a filter name", line: line) }
                at += 1
                var args: [Expr] = []
                if accept(.op("(")) {
                    let (positional, keywords) = try parseArguments()
                    if !keywords.isEmpty { throw .unsupported("keyword arguments to |\(f)", line: line) }
                    args = positional
                }
                e = .filter(e, f, args)
            } else { return e }
        }
    }
    mutating func parseArguments() throws(TemplateError) -> ([Expr], [(String, Expr)]) {
        var args: [Expr] = [], keywords: [(String, Expr)] = []
        if accept(.op(")")) { return (args, keywords) }
        repeat {
            if case .name(let key)? = peek, at + 1 < expr.count, expr[at + 1] == .op("=") {
                at += 2
                keywords.append((key, try parseExpression()))
            } else {
                args.append(try parseExpression())
            }
        } while accept(.op(","))
        try expect(.op(")"))
        return (args, keywords)
    }
    mutating func parsePrimary() throws(TemplateError) -> Expr {
        guard let t = peek else { throw .syntax("expression ends too early", line: line) }
        at += 1
        switch t {
        case .string(var s):
            while case .string(let more)? = peek { s += more; at += 1 }  // adjacent literals concatenate
            return .literal(.string(s))
        case .int(let i): return .literal(.int(i))
        case .double(let d): return .literal(.double(d))
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .op("("):
            let e = try parseExpression()
            try expect(.op(")"))
            return e
        case .op("["):
            var items: [Expr] = []
            if !accept(.op("]")) {
                repeat { items.append(try parseExpression()) } while accept(.op(","))
                try expect(.op("]"))
            }
            return .list(items)
        case .op("{"):
            var pairs: [(Expr, Expr)] = []
            if !accept(.op("}")) {
                repeat {
                    let k = try parseExpression()
                    try expect(.op(":"))
                    pairs.append((k, try parseExpression()))
                } while accept(.op(","))
                try expect(.op("}"))
            }
            return .dict(pairs)
        default:
            throw .syntax("unexpected \(t)", line: line)
        }
    }
}

struct TemplateInterpreter {
    var scopes: [[String: TemplateValue]]

    mutating func run(_ nodes: [Node]) throws(TemplateError) -> String {
        var out = ""
        for node in nodes {
            switch node {
            case .text(let t): out += t
            case .output(let e): out += try evaluate(e).text
            case .set(let name, let e): scopes[scopes.count - 1][name] = try evaluate(e)
            case .setAttribute(let name, let attribute, let e):
                let value = try evaluate(e)
                guard let level = scopes.lastIndex(where: { $0[name] != nil }), case .object(var o)? = scopes[level][name] else {
                    throw .runtime("'\(name)' is not a namespace")
                }
                o[attribute] = value
                scopes[level][name] = .object(o)
            case .ifBlock(let branches, let otherwise):
                var done = false
                for (condition, body) in branches where try evaluate(condition).truthy {
                    out += try run(body)
                    done = true
                    break
                }
                if !done, let otherwise { out += try run(otherwise) }
            case .forBlock(let names, let iterable, let filter, let body):
                var items: [TemplateValue]
                switch try evaluate(iterable) {
                case .array(let a): items = a
                case .object(let o): items = o.keys.sorted().map { .string($0) }
                case .string(let s): items = s.map { .string(String($0)) }
                case .none, .undefined: items = []
                case let other: throw .runtime("cannot iterate over \(other.repr)")
                }
                if let filter {
                    var kept: [TemplateValue] = []
                    for item in items {
                        scopes.append(bind(names, item))
                        let keep = try evaluate(filter).truthy
                        scopes.removeLast()
                        if keep { kept.append(item) }
                    }
                    items = kept
                }
                for (i, item) in items.enumerated() {
                    var scope = bind(names, item)
                    scope["loop"] = .object([
                        "index": .int(i + 1), "index0": .int(i), "first": .bool(i == 0), "last": .bool(i == items.count - 1),
                        "length": .int(items.count), "revindex": .int(items.count - i), "revindex0": .int(items.count - i - 1),
                        "previtem": i > 0 ? items[i - 1] : .undefined, "nextitem": i + 1 < items.count ? items[i + 1] : .undefined,
                    ])
                    scopes.append(scope)
                    out += try run(body)
                    // `set` inside a loop does not leak out (Jinja scoping).
                    scopes.removeLast()
                }
            }
        }
        return out
    }

    func bind(_ names: [String], _ item: TemplateValue) -> [String: TemplateValue] {
        if names.count == 1 { return [names[0]: item] }
        guard case .array(let parts) = item, parts.count == names.count else { return [:] }
        return Dictionary(uniqueKeysWithValues: zip(names, parts))
    }

    func lookup(_ name: String) -> TemplateValue {
        for scope in scopes.reversed() { if let v = scope[name] { return v } }
        return .undefined
    }

    mutating func evaluate(_ e: Expr) throws(TemplateError) -> TemplateValue {
        switch e {
        case .literal(let v): return v
        case .name(let n): return lookup(n)
        case .list(let items):
            var values: [TemplateValue] = []
            for item in items { values.append(try evaluate(item)) }
            return .array(values)
        case .dict(let pairs):
            var o: [String: TemplateValue] = [:]
            for (k, v) in pairs { o[try evaluate(k).text] = try evaluate(v) }
            return .object(o)
        case .attribute(let base, let name):
            let b = try evaluate(base)
            if case .object(let o) = b { return o[name] ?? .undefined }
            return .undefined
        case .index(let base, let index):
            let (b, i) = (try evaluate(base), try evaluate(index))
            switch (b, i) {
            case (.object(let o), _): return o[i.text] ?? .undefined
            case (.array(let a), .int(let n)):
                let k = n < 0 ? a.count + n : n
                return a.indices.contains(k) ? a[k] : .undefined
            case (.string(let s), .int(let n)):
                let chars = Array(s), k = n < 0 ? chars.count + n : n
                return chars.indices.contains(k) ? .string(String(chars[k])) : .undefined
            default: return .undefined
            }
        case .slice(let base, let lower, let upper):
            let b = try evaluate(base)
            func bounds(_ count: Int) throws(TemplateError) -> Range<Int> {
                func resolve(_ e: Expr?, _ fallback: Int) throws(TemplateError) -> Int {
                    guard let e else { return fallback }
                    guard case .int(let n) = try evaluate(e) else { throw .runtime("slice bounds must be integers") }
                    return max(0, min(count, n < 0 ? count + n : n))
                }
                let lo = try resolve(lower, 0), hi = try resolve(upper, count)
                return lo..<max(lo, hi)
            }
            switch b {
            case .array(let a): return .array(Array(a[try bounds(a.count)]))
            case .string(let s): let c = Array(s); return .string(String(c[try bounds(c.count)]))
            default: return .undefined
            }
        case .call(let callee, let argExprs, let keywordExprs):
            var args: [TemplateValue] = []
            for a in argExprs { args.append(try evaluate(a)) }
            if case .name("namespace") = callee {
                var o: [String: TemplateValue] = [:]
                for (k, v) in keywordExprs { o[k] = try evaluate(v) }
                return .object(o)
            }
            guard keywordExprs.isEmpty else { throw .runtime("keyword arguments are only supported for namespace()") }
            if case .name(let fn) = callee {
                switch fn {
                case "raise_exception": throw .raised(args.first?.text ?? "")
                case "range":
                    guard case .int(let n)? = args.last else { throw .runtime("range needs integers") }
                    let start = args.count > 1 ? (args[0] == .int(0) ? 0 : { if case .int(let s) = args[0] { s } else { 0 } }()) : 0
                    return .array((start..<max(start, n)).map { .int($0) })
                default: throw .runtime("unknown function '\(fn)'")
                }
            }
            guard case .attribute(let receiverExpr, let method) = callee else { throw .runtime("cannot call this expression") }
            return try callMethod(try evaluate(receiverExpr), method, args)
        case .filter(let base, let name, let argExprs):
            var args: [TemplateValue] = []
            for a in argExprs { args.append(try evaluate(a)) }
            return try applyFilter(name, try evaluate(base), args)
        case .test(let base, let name, let negated):
            let v = try evaluate(base)
            let result: Bool
            switch name {
            case "defined": if case .undefined = v { result = false } else { result = true }
            case "undefined": if case .undefined = v { result = true } else { result = false }
            case "none": result = v == .none
            case "string": if case .string = v { result = true } else { result = false }
            case "number": switch v { case .int, .double: result = true; default: result = false }
            case "mapping": if case .object = v { result = true } else { result = false }
            case "sequence", "iterable": switch v { case .array, .string, .object: result = true; default: result = false }
            case "true": result = v == .bool(true)
            case "false": result = v == .bool(false)
            default: throw .runtime("unknown test 'is \(name)'")
            }
            return .bool(result != negated)
        case .unary(let op, let operand):
            let v = try evaluate(operand)
            if op == "not" { return .bool(!v.truthy) }
            switch v {
            case .int(let i): return .int(-i)
            case .double(let d): return .double(-d)
            default: throw .runtime("cannot negate \(v.repr)")
            }
        case .binary(let op, let l, let r):
            if op == "and" { let a = try evaluate(l); return a.truthy ? try evaluate(r) : a }
            if op == "or" { let a = try evaluate(l); return a.truthy ? a : try evaluate(r) }
            return try binary(op, try evaluate(l), try evaluate(r))
        case .conditional(let then, let condition, let otherwise):
            if try evaluate(condition).truthy { return try evaluate(then) }
            return try otherwise.map { e throws(TemplateError) in try evaluate(e) } ?? .undefined
        }
    }

    func binary(_ op: String, _ a: TemplateValue, _ b: TemplateValue) throws(TemplateError) -> TemplateValue {
        switch op {
        case "~": return .string(a.text + b.text)
        case "==": return .bool(equal(a, b))
        case "!=": return .bool(!equal(a, b))
        case "in":
            switch b {
            case .string(let s): return .bool(s.contains(a.text))
            case .array(let items): return .bool(items.contains { equal($0, a) })
            case .object(let o): return .bool(o[a.text] != nil)
            default: return .bool(false)
            }
        default: break
        }
        switch (a, b) {
        case (.string(let x), .string(let y)) where op == "+": return .string(x + y)
        case (.array(let x), .array(let y)) where op == "+": return .array(x + y)
        case (.string(let x), .string(let y)) where ["<", ">", "<=", ">="].contains(op):
            return .bool(op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y)
        case (.int(let x), .int(let y)):
            switch op {
            case "+": return .int(x + y)
            case "-": return .int(x - y)
            case "*": return .int(x * y)
            case "%": guard y != 0 else { throw .runtime("modulo by zero") }; return .int(((x % y) + y) % y)
            case "//": guard y != 0 else { throw .runtime("division by zero") }; return .int(Int((Double(x) / Double(y)).rounded(.down)))
            case "/": guard y != 0 else { throw .runtime("division by zero") }; return .double(Double(x) / Double(y))
            case "<": return .bool(x < y)
            case ">": return .bool(x > y)
            case "<=": return .bool(x <= y)
            case ">=": return .bool(x >= y)
            default: break
            }
        default: break
        }
        if let x = number(a), let y = number(b) {
            switch op {
            case "+": return .double(x + y)
            case "-": return .double(x - y)
            case "*": return .double(x * y)
            case "/": return .double(x / y)
            case "<": return .bool(x < y)
            case ">": return .bool(x > y)
            case "<=": return .bool(x <= y)
            case ">=": return .bool(x >= y)
            default: break
            }
        }
        throw .runtime("cannot apply '\(op)' to \(a.repr) and \(b.repr)")
    }

    func number(_ v: TemplateValue) -> Double? {
        switch v { case .int(let i): Double(i); case .double(let d): d; default: nil }
    }
    func equal(_ a: TemplateValue, _ b: TemplateValue) -> Bool {
        if let x = number(a), let y = number(b) { return x == y }
        return a == b
    }

    func callMethod(_ receiver: TemplateValue, _ method: String, _ args: [TemplateValue]) throws(TemplateError) -> TemplateValue {
        switch (receiver, method) {
        case (.string(let s), "strip"): return .string(s.trimmingCharacters(in: .whitespacesAndNewlines))
        case (.string(let s), "lstrip"): return .string(String(s.drop(while: { $0.isWhitespace })))
        case (.string(let s), "rstrip"):
            var t = s
            while let last = t.last, last.isWhitespace { t.removeLast() }
            return .string(t)
        case (.string(let s), "upper"): return .string(s.uppercased())
        case (.string(let s), "lower"): return .string(s.lowercased())
        case (.string(let s), "title"): return .string(s.capitalized)
        case (.string(let s), "startswith"): return .bool(s.hasPrefix(args.first?.text ?? ""))
        case (.string(let s), "endswith"): return .bool(s.hasSuffix(args.first?.text ?? ""))
        case (.string(let s), "replace"):
            guard args.count >= 2 else { throw .runtime("replace needs two arguments") }
            return .string(s.replacingOccurrences(of: args[0].text, with: args[1].text))
        case (.string(let s), "split"):
            if let sep = args.first?.text { return .array(s.components(separatedBy: sep).map { .string($0) }) }
            return .array(s.split(whereSeparator: { $0.isWhitespace }).map { .string(String($0)) })
        case (.object(let o), "items"): return .array(o.keys.sorted().map { .array([.string($0), o[$0]!]) })
        case (.object(let o), "keys"): return .array(o.keys.sorted().map { .string($0) })
        case (.object(let o), "values"): return .array(o.keys.sorted().map { o[$0]! })
        case (.object(let o), "get"): return o[args.first?.text ?? ""] ?? (args.count > 1 ? args[1] : .none)
        default: throw .runtime("unknown method '\(method)' on \(receiver.repr)")
        }
    }

    func applyFilter(_ name: String, _ v: TemplateValue, _ args: [TemplateValue]) throws(TemplateError) -> TemplateValue {
        switch name {
        case "trim": return try callMethod(.string(v.text), "strip", [])
        case "upper": return .string(v.text.uppercased())
        case "lower": return .string(v.text.lowercased())
        case "string": return .string(v.text)
        case "tojson": return .string(v.json)
        case "int":
            switch v { case .int: return v; case .double(let d): return .int(Int(d)); default: return .int(Int(v.text) ?? 0) }
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.count)
            case .array(let a): return .int(a.count)
            case .object(let o): return .int(o.count)
            default: return .int(0)
            }
        case "first": if case .array(let a) = v { return a.first ?? .undefined }; return .undefined
        case "last": if case .array(let a) = v { return a.last ?? .undefined }; return .undefined
        case "list": if case .array = v { return v }; if case .string(let s) = v { return .array(s.map { .string(String($0)) }) }; return .array([])
        case "default":
            if case .undefined = v { return args.first ?? .string("") }
            return v
        case "join":
            guard case .array(let a) = v else { return .string(v.text) }
            return .string(a.map(\.text).joined(separator: args.first?.text ?? ""))
        case "items": return try callMethod(v, "items", [])
        default: throw .runtime("unknown filter '|\(name)'")
        }
    }
}

import Foundation
