// Training text: a directory of plain-text files split by file (play) into training and validation
// sets, encoded character by character (the vocabulary: every character of the corpus, sorted), and
// random batches of (input, next-token target) windows drawn reproducibly from (seed, step).
import Foundation
import TesseraTokenizers

public struct CharacterVocabulary: Sendable, Equatable {
    public let characters: [Character]
    private let index: [Character: Int32]

    public init(text: String) {
        characters = Array(Set(text)).sorted { String($0).unicodeScalars.first!.value < String($1).unicodeScalars.first!.value }
        index = Dictionary(uniqueKeysWithValues: characters.enumerated().map { ($1, Int32($0)) })
    }

    public init(characters: [Character]) {
        self.characters = characters
        index = Dictionary(uniqueKeysWithValues: characters.enumerated().map { ($1, Int32($0)) })
    }

    public var count: Int { characters.count }

    public func encode(_ text: String) throws(TrainingError) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(text.count)
        for c in text {
            guard let id = index[c] else { throw .data("character \(String(reflecting: c)) is not in the vocabulary") }
            ids.append(id)
        }
        return ids
    }

    public func decode(_ ids: [Int32]) -> String { String(ids.map { characters[Int($0)] }) }
}

/// How text becomes token ids: characters (the corpus's own alphabet), or a byte-level BPE tokenizer
/// (a tokenizer.json; "bytes" is the one with no merges: 256 byte tokens and <|endoftext|>).
public enum TextEncoding: Sendable {
    case characters(CharacterVocabulary)
    case tokenizer(any Tokenizer, json: String)

    public var vocabularySize: Int {
        switch self {
        case .characters(let v): v.count
        case .tokenizer(let t, _): t.vocabularySize
        }
    }

    public func encode(_ text: String) throws(TrainingError) -> [Int32] {
        switch self {
        case .characters(let v): return try v.encode(text)
        case .tokenizer(let t, _): return t.encode(text, addSpecialTokens: false)
        }
    }

    public func decode(_ ids: [Int32]) -> String {
        switch self {
        case .characters(let v): return v.decode(ids)
        case .tokenizer(let t, _):
            var bytes: [UInt8] = []
            for id in ids { bytes += (try? t.tokenBytes(id)) ?? [] }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// "char", "bytes", or the path of a tokenizer.json.
    public static func named(_ name: String, corpus: () -> String) throws(TrainingError) -> TextEncoding {
        switch name {
        case "char": return .characters(CharacterVocabulary(text: corpus()))
        case "bytes":
            do {
                let json = try BPETrainer(vocabularySize: 257).train("").tokenizerJSON()
                return .tokenizer(try TokenizerJSON.makeTokenizer(data: Data(json.utf8)), json: json)
            } catch { throw .data("byte tokenizer: \(error)") }
        default:
            guard let data = FileManager.default.contents(atPath: name) else { throw .data("cannot read tokenizer \(name)") }
            do { return .tokenizer(try TokenizerJSON.makeTokenizer(data: data), json: String(decoding: data, as: UTF8.self)) } catch {
                throw .data("\(name): \(error)")
            }
        }
    }
}

public struct TextDataset: Sendable {
    public let encoding: TextEncoding
    /// The character vocabulary (character encoding only).
    public var vocabulary: CharacterVocabulary {
        if case .characters(let v) = encoding { return v }
        return CharacterVocabulary(characters: [])
    }
    public let train: [Int32]
    public let validation: [Int32]
    public let trainFiles: [String], validationFiles: [String]

    /// Every `*.txt` under `directory`; the files named in `validation` form the validation set;
    /// `tokenizer` is "char", "bytes" or a tokenizer.json path.
    public init(directory: String, validation names: [String], tokenizer: String = "char") throws(TrainingError) {
        let fm = FileManager.default
        guard let listing = try? fm.contentsOfDirectory(atPath: directory) else { throw .data("cannot list \(directory)") }
        let files = listing.filter { $0.hasSuffix(".txt") }.sorted()
        guard !files.isEmpty else { throw .data("no .txt files in \(directory)") }
        for name in names where !files.contains(name) { throw .data("validation file \(name) is not in \(directory)") }
        var texts: [String: String] = [:]
        for f in files {
            guard let data = fm.contents(atPath: directory + "/" + f), let text = String(data: data, encoding: .utf8) else {
                throw .data("\(f) is not readable UTF-8 text")
            }
            texts[f] = text
        }
        encoding = try TextEncoding.named(tokenizer) { files.map { texts[$0]! }.joined() }
        trainFiles = files.filter { !names.contains($0) }
        validationFiles = files.filter { names.contains($0) }
        guard !trainFiles.isEmpty, !validationFiles.isEmpty else { throw .data("both a training and a validation file are needed") }
        var train: [Int32] = [], validation: [Int32] = []
        for f in trainFiles { train += try encoding.encode(texts[f]!) }
        for f in validationFiles { validation += try encoding.encode(texts[f]!) }
        self.train = train
        self.validation = validation
    }

    /// `batch` windows of `tokens` + 1 ids from `ids`, at offsets drawn from (seed, step).
    public static func batch(from ids: [Int32], batch: Int, tokens: Int, seed: UInt64, step: Int) -> (inputs: [Int32], targets: [Int32]) {
        var rng = GaussianGenerator(seed: seed &+ 0x5851_F42D_4C95_7F2D &* UInt64(step + 1))
        var inputs: [Int32] = [], targets: [Int32] = []
        inputs.reserveCapacity(batch * tokens); targets.reserveCapacity(batch * tokens)
        for _ in 0..<batch {
            let start = Int(rng.next() % UInt64(ids.count - tokens - 1))
            inputs += ids[start..<(start + tokens)]
            targets += ids[(start + 1)...(start + tokens)]
        }
        return (inputs, targets)
    }
}
