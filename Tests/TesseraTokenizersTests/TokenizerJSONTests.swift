// Tokenizers built from a Hugging Face tokenizer.json: the llama-spm vocabulary as transformers converts
// it (BPE with byte fallback, Metaspace with prepend_scheme "first", TemplateProcessing adding <s>),
// against HF's ids on the shared corpus (Goldens/llama-spm-tokenizer.json); and the typed errors for
// shapes we do not implement.
import Foundation
import TesseraTokenizers
import XCTest

final class TokenizerJSONTests: XCTestCase {
    func testSentencePieceMatchesHuggingFace() throws {
        let url = TestResources.golden("llama-spm-tokenizer.json")
        let golden = try TestResources.json(url)
        // The tokenizer is taken out with the exact reader: a round trip through JSONSerialization would
        // merge vocabulary keys that Swift calls equal ("ά" U+1F71 and U+03AC).
        let whole = try JSONValue.parse(Array(Data(contentsOf: url)))
        let data = Data(try XCTUnwrap(whole["tokenizer"]).compactText.utf8)
        let tokenizer = try TokenizerJSON.makeTokenizer(data: data)
        XCTAssertTrue(tokenizer is SentencePieceBPETokenizer)
        let cases = try TestResources.cases(golden)
        XCTAssertEqual(countMismatches(cases, label: "llama-spm tokenizer.json") { tokenizer.encode($0, addSpecialTokens: false) }, 0)
        XCTAssertEqual(tokenizer.encode("Hello", addSpecialTokens: true), (golden["hello_with_special_tokens"] as! [Int]).map(Int32.init))
        XCTAssertEqual(tokenizer.bosID, 1)
        // Metaspace "first": no second "▁" for a text that starts with a space, unlike llama.cpp.
        XCTAssertEqual(tokenizer.encode(" Hello", addSpecialTokens: false), [15043])
        XCTAssertEqual(try tokenizer.decode(tokenizer.encode("Hello world", addSpecialTokens: true)), "<s> Hello world")
        XCTAssertEqual(try tokenizer.decode(tokenizer.encode("Hello world", addSpecialTokens: false)), "Hello world")
    }

    func testModelDirectoryWithConfig() throws {
        // An HF model directory: tokenizer.json, and tokenizer_config.json overriding BOS and naming EOS.
        let whole = try JSONValue.parse(Array(Data(contentsOf: TestResources.golden("llama-spm-tokenizer.json"))))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-hf-dir-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(XCTUnwrap(whole["tokenizer"]).compactText.utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        try Data(#"{"add_bos_token": false, "eos_token": {"content": "</s>"}}"#.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let tokenizer = try makeTokenizer(directory: dir.path)
        XCTAssertFalse(tokenizer.addsBOS)
        XCTAssertEqual(tokenizer.bosID, 1)
        XCTAssertEqual(tokenizer.endOfGenerationIDs, [2])
        XCTAssertEqual(tokenizer.encode("Hello", addSpecialTokens: true), [15043])
        XCTAssertThrowsError(try makeTokenizer(directory: dir.appendingPathComponent("absent").path)) {
            XCTAssertEqual($0 as? TokenizerError, .missingMetadata(dir.appendingPathComponent("absent").path + "/tokenizer.json"))
        }
    }

    func testUnknownStagesAreErrors() throws {
        func build(_ json: String) throws -> any Tokenizer { try TokenizerJSON.makeTokenizer(data: Data(json.utf8)) }
        let vocab = #""vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]"#
        XCTAssertThrowsError(try build(#"{"model": {"type": "Unigram", "vocab": []}}"#)) {
            XCTAssertEqual($0 as? TokenizerError, .unsupportedModel("Unigram"))
        }
        XCTAssertThrowsError(try build(#"{"model": {"type": "BPE", \#(vocab)}, "pre_tokenizer": {"type": "Whitespace"}}"#)) {
            XCTAssertEqual($0 as? TokenizerError, .unsupportedPreTokenizer(#"{"type":"Whitespace"}"#))
        }
        XCTAssertThrowsError(try build(#"{"model": {"type": "BPE", \#(vocab)}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated"}, {"type": "ByteLevel", "use_regex": false}]}}"#)) {
            XCTAssertEqual($0 as? TokenizerError, .unsupportedPreTokenizer(#"Split pattern {"Regex":"\\w+"}"#))
        }
        XCTAssertThrowsError(try build(#"{"model": {"type": "BPE", \#(vocab)}, "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Metaspace"}}"#)) {
            XCTAssertEqual($0 as? TokenizerError, .unsupportedPreTokenizer(#"normalizer {"type":"Lowercase"}"#))
        }
        XCTAssertThrowsError(try build("not json")) {
            XCTAssertEqual($0 as? TokenizerError, .invalidTokenizerJSON("expected null at byte 0, found 'n'"))
        }
        XCTAssertThrowsError(try build("[1, 2]")) { XCTAssertEqual($0 as? TokenizerError, .invalidTokenizerJSON("no 'model' object")) }
        // A minimal byte-level one does build, and merges.
        let byteLevel = try build(#"{"model": {"type": "BPE", \#(vocab)}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}}"#)
        XCTAssertEqual(byteLevel.encode("ab", addSpecialTokens: false), [2])
    }

    func testGGUFPreTokenizerNames() throws {
        XCTAssertEqual(try ByteLevelPreTokenizer(ggufPre: nil), ByteLevelPreTokenizer(split: .gpt2))
        XCTAssertEqual(try ByteLevelPreTokenizer(ggufPre: "llama-bpe"), ByteLevelPreTokenizer(split: .llama3))
        XCTAssertEqual(try ByteLevelPreTokenizer(ggufPre: "qwen2"), ByteLevelPreTokenizer(split: .qwen2))
        XCTAssertEqual(try ByteLevelPreTokenizer(ggufPre: "smollm"), ByteLevelPreTokenizer(split: .gpt2, isolatesDigits: true))
        XCTAssertThrowsError(try ByteLevelPreTokenizer(ggufPre: "deepseek-coder")) {
            XCTAssertEqual($0 as? TokenizerError, .unsupportedPreTokenizer("deepseek-coder"))
        }
    }
}
