// Chat templates rendered by Tessera's Jinja subset equal Python jinja2's output (Goldens/templates.json:
// the real templates of SmolLM2, Qwen2.5-Coder and Gemma, a Gemma-style template with role checks and slicing, and one exercising filters,
// tests, loop variables and whitespace control), and unsupported constructs are named in the error.
import Foundation
import TesseraTokenizers
import XCTest

final class ChatTemplateTests: XCTestCase {
    struct Golden: Decodable {
        struct Case: Decodable {
            let template: String
            let messages: [[String: String]]
            let add_generation_prompt: Bool
            let output: String?
            let error: String?
        }
        let templates: [String: String]
        let cases: [Case]
    }

    func testRenderingMatchesJinja2() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Goldens/templates.json")
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
        XCTAssertEqual(Set(golden.templates.keys), ["smollm2", "qwen2", "google-gemma-2-2b-it", "gemma-style", "features", "namespace"])
        for c in golden.cases {
            let template = try ChatTemplate(golden.templates[c.template]!)
            let label = "\(c.template), \(c.messages.count) messages, generation prompt \(c.add_generation_prompt)"
            do {
                let output = try template.render(messages: c.messages, addGenerationPrompt: c.add_generation_prompt,
                                                 variables: ["bos_token": .string("<bos>")])
                XCTAssertEqual(output, c.output, label)
                XCTAssertNil(c.error, "\(label): jinja2 raised \(c.error ?? "")")
            } catch {
                XCTAssertEqual(error, .raised(c.error ?? "(no error expected)"), label)
            }
        }
    }

    func testUnsupportedConstructsAreNamed() {
        XCTAssertThrowsError(try ChatTemplate("{% macro f() %}x{% endmacro %}")) {
            XCTAssertEqual($0 as? TemplateError, .unsupported("macro", line: 1))
            XCTAssertTrue("\($0)".contains("'macro'"))
        }
        XCTAssertThrowsError(try ChatTemplate("{{ x | tojson(indent=2) }}")) {
            XCTAssertEqual($0 as? TemplateError, .unsupported("keyword arguments to |tojson", line: 1))
        }
        XCTAssertThrowsError(try ChatTemplate("{% set x %}block{% endset %}")) { XCTAssertEqual($0 as? TemplateError, .unsupported("{% set %} block", line: 1)) }
        XCTAssertThrowsError(try ChatTemplate("{% if x %}unclosed")) { guard case .syntax = $0 as? TemplateError else { return XCTFail("\($0)") } }
        XCTAssertThrowsError(try ChatTemplate("{{ 'unterminated }}"))
        XCTAssertThrowsError(try ChatTemplate("{{ x | nosuchfilter }}").render(messages: [], addGenerationPrompt: false)) {
            XCTAssertTrue("\($0)".contains("nosuchfilter"))
        }
    }
}
