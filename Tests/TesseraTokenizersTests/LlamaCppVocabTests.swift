// Tokenizers against llama.cpp's own vocabulary tests (vendor/llama.cpp/models/ggml-vocab-NAME.gguf with
// .inp/.out, from the llama-cpp-python 0.3.36 sdist): the inputs are separated by
// "\n__ggml_vocab_test__\n", the outputs are one line of ids each, made with add_special = false and
// parse_special = false. Vocabularies under 5 MB are committed (Goldens/llama-cpp/); llama-bpe and qwen2
// are read from $TESSERA_CACHE/llama-vocab/ (scripts/goldens/make_tokenizer_goldens.py --llama-cpp copies
// them there) and skip when absent.
import Foundation
import TesseraFormats
import TesseraTokenizers
import XCTest

final class LlamaCppVocabTests: XCTestCase {
    static func cases(_ name: String) throws -> [(text: String, ids: [Int32])] {
        let base = TestResources.golden("llama-cpp/ggml-vocab-\(name).gguf")
        let input = try String(contentsOf: base.appendingPathExtension("inp"), encoding: .utf8)
        let output = try String(contentsOf: base.appendingPathExtension("out"), encoding: .utf8)
        var texts = input.components(separatedBy: "\n__ggml_vocab_test__\n")
        if texts.last == "" { texts.removeLast() }
        var lines = output.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        XCTAssertEqual(texts.count, lines.count, "\(name): inputs and outputs")
        return zip(texts, lines).map { text, line in (text, line.split(separator: " ").map { Int32($0)! }) }
    }

    func check(_ name: String, gguf url: URL, expectedCases: Int) throws {
        let tokenizer = try makeTokenizer(gguf: GGUFFile(path: url.path))
        let cases = try Self.cases(name)
        XCTAssertEqual(cases.count, expectedCases)
        XCTAssertEqual(countMismatches(cases, label: "llama.cpp \(name)") { tokenizer.encode($0, addSpecialTokens: false) }, 0)
        for c in cases {
            // Every id decodes, and the text comes back (SentencePiece drops only its dummy prefix's space).
            XCTAssertEqual(try tokenizer.decode(c.ids), c.text, "round trip of \(c.text.debugDescription) in \(name)")
        }
    }

    func testLlamaSPM() throws {
        try check("llama-spm", gguf: TestResources.golden("llama-cpp/ggml-vocab-llama-spm.gguf"), expectedCases: 46)
    }

    func testPhi3() throws {
        try check("phi-3", gguf: TestResources.golden("llama-cpp/ggml-vocab-phi-3.gguf"), expectedCases: 46)
    }

    func testGPT2() throws {
        try check("gpt-2", gguf: TestResources.golden("llama-cpp/ggml-vocab-gpt-2.gguf"), expectedCases: 46)
    }

    func testLlama3() throws {
        let how = "make_tokenizer_goldens.py --llama-cpp copies it"
        try check("llama-bpe", gguf: TestResources.cached("llama-vocab/ggml-vocab-llama-bpe.gguf", how: how), expectedCases: 46)
    }

    func testQwen2() throws {
        let how = "make_tokenizer_goldens.py --llama-cpp copies it"
        try check("qwen2", gguf: TestResources.cached("llama-vocab/ggml-vocab-qwen2.gguf", how: how), expectedCases: 46)
    }
}
