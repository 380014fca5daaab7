// Gemma 3 (SentencePiece BPE) and Qwen2.5 (byte-level BPE, Qwen2 regex) against the ids Hugging Face
// gives when transformers converts the same GGUF (AutoTokenizer.from_pretrained(dir, gguf_file=)):
// Goldens/gemma3.json and Goldens/qwen25.json, made by scripts/goldens/make_tokenizer_goldens.py on the
// shared corpus. The models (250 and 490 MB) are read from $TESSERA_CACHE/models/; the converted
// tokenizer.json files, which hold the tokenizer.json loader to the same ids, from
// $TESSERA_CACHE/tokenizers/. Each test skips when its file is absent.
import Foundation
import TesseraFormats
import TesseraTokenizers
import XCTest

final class ModelTokenizerTests: XCTestCase {
    struct Model {
        let golden: String, gguf: String, tokenizerJSON: String
        let kind: any Tokenizer.Type
    }
    static let gemma3 = Model(golden: "gemma3.json", gguf: "models/gemma-3-270m-Q4_K_M.gguf",
                              tokenizerJSON: "tokenizers/gemma-3-270m/tokenizer.json", kind: SentencePieceBPETokenizer.self)
    static let qwen25 = Model(golden: "qwen25.json", gguf: "models/Qwen2.5-Coder-0.5B-Instruct.gguf",
                              tokenizerJSON: "tokenizers/qwen2.5-coder-0.5b/tokenizer.json", kind: ByteLevelBPETokenizer.self)

    func checkGGUF(_ model: Model) throws {
        let golden = try TestResources.json(TestResources.golden(model.golden))
        let url = try TestResources.cached(model.gguf, how: "the model cache")
        let tokenizer = try makeTokenizer(gguf: GGUFFile(path: url.path))
        XCTAssertTrue(type(of: tokenizer) == model.kind)
        let cases = try TestResources.cases(golden)
        XCTAssertEqual(cases.count, 42)
        XCTAssertEqual(countMismatches(cases, label: "\(model.golden) from GGUF") { tokenizer.encode($0, addSpecialTokens: false) }, 0)
        XCTAssertEqual(tokenizer.encode("Hello", addSpecialTokens: true), (golden["hello_with_special_tokens"] as! [Int]).map(Int32.init))
        for c in cases { XCTAssertEqual(try tokenizer.decode(c.ids), c.text, "round trip of \(c.text.debugDescription)") }
    }

    func checkTokenizerJSON(_ model: Model) throws {
        let golden = try TestResources.json(TestResources.golden(model.golden))
        let url = try TestResources.cached(model.tokenizerJSON, how: "make_tokenizer_goldens.py writes it")
        let tokenizer = try TokenizerJSON.makeTokenizer(data: Data(contentsOf: url))
        XCTAssertTrue(type(of: tokenizer) == model.kind)
        let cases = try TestResources.cases(golden)
        XCTAssertEqual(countMismatches(cases, label: "\(model.golden) from tokenizer.json") { tokenizer.encode($0, addSpecialTokens: false) }, 0)
        XCTAssertEqual(tokenizer.encode("Hello", addSpecialTokens: true), (golden["hello_with_special_tokens"] as! [Int]).map(Int32.init))
    }

    func testGemma3FromGGUF() throws {
        try checkGGUF(Self.gemma3)
        let tokenizer = try makeTokenizer(gguf: GGUFFile(path: TestResources.cached(Self.gemma3.gguf, how: "").path))
        XCTAssertEqual(tokenizer.bosID, 2)
        XCTAssertTrue(tokenizer.addsBOS)
        XCTAssertEqual(tokenizer.endOfGenerationIDs, [1, 106])  // <eos>, <end_of_turn>
        XCTAssertEqual(try tokenizer.tokenBytes(tokenizer.id(of: "<0xE2>")!), [0xE2])
        XCTAssertEqual(try tokenizer.decode([tokenizer.id(of: "▁Hello")!]), " Hello")  // no dummy prefix to drop
        // Runs of more than 31 spaces (Gemma's longest whitespace token) are where the GGUF reading and HF's
        // conversion part: the GGUF marks "  "…"<31 spaces>" user-defined, and llama.cpp (like SentencePiece's
        // prefix matcher for user-defined symbols) takes the longest one, 31 + 6; HF's conversion respells
        // them "▁▁"… and lets ranked merges cut the run, 16 + 21. We follow the file (llama.cpp); the
        // tokenizer.json path follows HF. The only difference on the 5 MB Shakespeare corpus: 50 such runs.
        let run37 = String(repeating: " ", count: 37) + "x"
        XCTAssertEqual(tokenizer.encode(run37, addSpecialTokens: false), [167, 142, 236781])
        XCTAssertEqual(tokenizer.encode(String(repeating: " ", count: 31) + "x", addSpecialTokens: false), [167, 236781])
    }

    func testQwen25FromGGUF() throws {
        try checkGGUF(Self.qwen25)
        let tokenizer = try makeTokenizer(gguf: GGUFFile(path: TestResources.cached(Self.qwen25.gguf, how: "").path))
        XCTAssertFalse(tokenizer.addsBOS)
        XCTAssertTrue(tokenizer.endOfGenerationIDs.isSuperset(of: [151643, 151645]))  // <|endoftext|>, <|im_end|>
    }

    func testGemma3FromTokenizerJSON() throws {
        try checkTokenizerJSON(Self.gemma3)
        let url = try TestResources.cached(Self.gemma3.tokenizerJSON, how: "make_tokenizer_goldens.py writes it")
        let tokenizer = try TokenizerJSON.makeTokenizer(data: Data(contentsOf: url))
        XCTAssertEqual(tokenizer.encode(String(repeating: " ", count: 37) + "x", addSpecialTokens: false), [152, 157, 236781])  // HF's cut
    }
    func testQwen25FromTokenizerJSON() throws { try checkTokenizerJSON(Self.qwen25) }
}
