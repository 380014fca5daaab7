// The pre-tokenizer of byte-level BPE: the regex that cuts text into the pieces BPE runs on.
//
// Three regexes are in use, each a fixed string in the models' tokenizer.json files:
//   gpt2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   llama3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   qwen2   the same with \p{N} (one digit per piece)
// SmolLM2 first isolates every \p{N} scalar (HF's Digits(individual_digits)) and runs gpt2 on the rest.
// Which one a GGUF wants is tokenizer.ggml.pre; a name we do not know is an error, never a guess.
//
// Hugging Face runs these with Oniguruma over Unicode scalars. Swift's Regex does the same job (kept
// below as `referencePieces`, the plain reference) but runs at a few MB/s, so `pieces` is a hand-written
// matcher of the same alternation: at each position the first alternative that matches wins, with the
// backtracking of `\s+(?!\S)` and `\s*[\r\n]+` worked out by hand (see `nextPiece`). Tests hold the two
// together on the golden corpus and on random strings.
//
// Character classes: \p{L} = general category L*, \p{N} = N*, \s = the White_Space property.
import Foundation

public enum ByteLevelSplit: String, Sendable, CaseIterable {
    case gpt2, llama3, qwen2

    /// The regex as the models' tokenizer.json files spell it.
    public var pattern: String {
        switch self {
        case .gpt2: #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
        case .llama3: #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        case .qwen2: #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        }
    }

    /// The split a tokenizer.json Split pre-tokenizer's regex stands for, if it is one of ours.
    public init?(pattern: String) {
        guard let split = ByteLevelSplit.allCases.first(where: { $0.pattern == pattern }) else { return nil }
        self = split
    }
}

public struct ByteLevelPreTokenizer: Sendable, Equatable {
    public var split: ByteLevelSplit
    /// Every \p{N} scalar becomes its own piece before the regex runs (SmolLM2).
    public var isolatesDigits: Bool

    public init(split: ByteLevelSplit, isolatesDigits: Bool = false) {
        self.split = split
        self.isolatesDigits = isolatesDigits
    }

    /// From tokenizer.ggml.pre (absent means llama.cpp's "default", the GPT-2 regex).
    public init(ggufPre pre: String?) throws(TokenizerError) {
        switch pre ?? "default" {
        case "default", "gpt2", "gpt-2": self.init(split: .gpt2)
        case "llama-bpe", "llama3", "llama-v3": self.init(split: .llama3)
        case "qwen2": self.init(split: .qwen2)
        case "smollm": self.init(split: .gpt2, isolatesDigits: true)
        case let other: throw .unsupportedPreTokenizer(other)
        }
    }

    // MARK: - Character classes

    enum Kind: UInt8 { case other = 0, letter, number, space }

    static let asciiKinds: [Kind] = (0..<128).map { kind(ofNonASCII: UInt32($0)) }

    static func kind(ofNonASCII value: UInt32) -> Kind {
        guard let scalar = Unicode.Scalar(value) else { return .other }
        let properties = scalar.properties
        if properties.isWhitespace { return .space }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    @inline(__always) static func kind(of value: UInt32) -> Kind {
        value < 128 ? asciiKinds[Int(value)] : kind(ofNonASCII: value)
    }

    /// The scalars of a UTF-8 buffer with their kinds and byte offsets (`offsets` has one extra entry, the end).
    struct Scalars {
        var values: [UInt32] = []
        var kinds: [Kind] = []
        var offsets: [Int] = []

        init(_ bytes: UnsafeBufferPointer<UInt8>) {
            values.reserveCapacity(bytes.count)
            kinds.reserveCapacity(bytes.count)
            offsets.reserveCapacity(bytes.count + 1)
            var i = 0
            let n = bytes.count
            while i < n {
                let b0 = UInt32(bytes[i])
                var value: UInt32, length: Int
                if b0 < 0x80 { value = b0; length = 1 }
                else if b0 < 0xE0 { value = (b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F); length = 2 }
                else if b0 < 0xF0 {
                    value = (b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F); length = 3
                } else {
                    value = (b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6
                        | UInt32(bytes[i + 3] & 0x3F)
                    length = 4
                }
                values.append(value)
                kinds.append(ByteLevelPreTokenizer.kind(of: value))
                offsets.append(i)
                i += length
            }
            offsets.append(n)
        }
    }

    // MARK: - The fast path

    /// Appends the byte ranges of the pieces of `bytes` (valid UTF-8) to `ranges`, in order.
    func pieces(_ bytes: UnsafeBufferPointer<UInt8>, into ranges: inout [Range<Int>]) {
        let s = Scalars(bytes)
        let count = s.values.count
        func run(_ lo: Int, _ hi: Int) {
            var i = lo
            while i < hi {
                let end = nextPiece(s, i, hi)
                ranges.append(s.offsets[i]..<s.offsets[end])
                i = end
            }
        }
        if isolatesDigits {
            var start = 0
            for i in 0..<count where s.kinds[i] == .number {
                if start < i { run(start, i) }
                ranges.append(s.offsets[i]..<s.offsets[i + 1])
                start = i + 1
            }
            if start < count { run(start, count) }
        } else {
            run(0, count)
        }
    }

    /// Convenience for tests and callers holding a Substring.
    public func pieces(_ text: Substring) -> [Substring] {
        var copy = String(text)
        copy.makeContiguousUTF8()
        var ranges: [Range<Int>] = []
        copy.utf8.withContiguousStorageIfAvailable { pieces($0, into: &ranges) }
        let utf8 = copy.utf8
        return ranges.map { r in
            Substring(copy[utf8.index(utf8.startIndex, offsetBy: r.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: r.upperBound)])
        }
    }

    /// The end (scalar index) of the piece that starts at `i`, the regex never looking past `hi`.
    @inline(__always)
    func nextPiece(_ s: Scalars, _ i: Int, _ hi: Int) -> Int {
        let v = s.values, k = s.kinds
        let c = v[i]
        let apostrophe: UInt32 = 0x27, space: UInt32 = 0x20, cr: UInt32 = 0x0D, lf: UInt32 = 0x0A
        @inline(__always) func run(from j: Int, of kind: Kind, limit: Int = .max) -> Int {
            var e = j
            while e < hi, k[e] == kind, e - j < limit { e += 1 }
            return e
        }
        // Contractions: 's 't 'm 'd 're 've 'll (any ASCII case for llama3 and qwen2).
        if c == apostrophe, i + 1 < hi {
            let fold: (UInt32) -> UInt32 = split == .gpt2 ? { $0 } : { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }
            let a = fold(v[i + 1])
            if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return i + 2 }
            if i + 2 < hi {
                let b = fold(v[i + 2])
                if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return i + 3 }
            }
        }
        // The whitespace run that starts here, and how `\s+(?!\S)` | `\s+` cut it.
        func whitespace() -> Int {
            let e = run(from: i, of: .space)
            if e == hi || e - i < 2 { return e }
            return e - 1
        }
        switch split {
        case .gpt2:
            // ` ?\p{L}+` | ` ?\p{N}+` | ` ?[^\s\p{L}\p{N}]+`
            let j = (c == space && i + 1 < hi && k[i + 1] != .space) ? i + 1 : i
            if k[j] == .space { return whitespace() }
            return run(from: j, of: k[j])
        case .llama3, .qwen2:
            let kind = k[i]
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if kind == .letter { return run(from: i, of: .letter) }
            if kind != .number, c != cr, c != lf, i + 1 < hi, k[i + 1] == .letter { return run(from: i + 1, of: .letter) }
            // `\p{N}{1,3}` (llama3) or `\p{N}` (qwen2)
            if kind == .number { return run(from: i, of: .number, limit: split == .llama3 ? 3 : 1) }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let j = (c == space && i + 1 < hi && k[i + 1] == .other) ? i + 1 : i
            if k[j] == .other {
                var e = run(from: j, of: .other)
                while e < hi, v[e] == cr || v[e] == lf { e += 1 }
                return e
            }
            // `\s*[\r\n]+`: greedy \s* backs off to the last newline of the run.
            let e = run(from: i, of: .space)
            var m = e - 1
            while m >= i, v[m] != cr, v[m] != lf { m -= 1 }
            if m >= i { return m + 1 }
            return whitespace()
        }
    }

    // MARK: - The plain reference

    /// The same pieces found with Swift's Regex on Unicode scalars (slow; for tests).
    public func referencePieces(_ text: Substring) -> [Substring] {
        let regex = try! Regex(split.pattern).matchingSemantics(.unicodeScalar)
        var segments: [Substring] = []
        if isolatesDigits {
            let scalars = text.unicodeScalars
            var start = scalars.startIndex
            for i in scalars.indices where ByteLevelPreTokenizer.kind(of: scalars[i].value) == .number {
                if start < i { segments.append(text[start..<i]) }
                let next = scalars.index(after: i)
                segments.append(text[i..<next])
                start = next
            }
            if start < text.endIndex { segments.append(text[start...]) }
        } else {
            segments = [text]
        }
        var pieces: [Substring] = []
        for segment in segments {
            if isolatesDigits, segment.unicodeScalars.count == 1,
               ByteLevelPreTokenizer.kind(of: segment.unicodeScalars.first!.value) == .number {
                pieces.append(segment)
                continue
            }
            for match in segment.matches(of: regex) { pieces.append(segment[match.range]) }
        }
        return pieces
    }
}
