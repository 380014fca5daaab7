// Where the tokenizer tests find their data: committed goldens beside the tests, and files too large to
// commit (model GGUFs, llama.cpp's larger vocabularies, converted tokenizer.json files) under the model
// cache, $TESSERA_CACHE or ~/.cache/tessera. A test whose file is absent skips and says which file and
// how to get it.
import Foundation
import XCTest

enum TestResources {
    static let goldens = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Goldens")

    static var cache: URL {
        if let dir = ProcessInfo.processInfo.environment["TESSERA_CACHE"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tessera")
    }

    static func golden(_ name: String) -> URL { goldens.appendingPathComponent(name) }

    /// A file under the cache, or a skip that names it and how to make it.
    static func cached(_ relative: String, how: String) throws -> URL {
        let url = cache.appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("\(url.path) is absent (\(how)); set TESSERA_CACHE to another cache")
        }
        return url
    }

    static func json(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// (text, ids) cases from a golden file's "cases" array.
    static func cases(_ json: [String: Any]) throws -> [(text: String, ids: [Int32])] {
        let list = try XCTUnwrap(json["cases"] as? [[String: Any]])
        return list.map { ($0["text"] as! String, ($0["ids"] as! [Int]).map(Int32.init)) }
    }
}

/// Encodes every case, and reports each mismatch (text, found, expected); returns the mismatch count.
func countMismatches(_ cases: [(text: String, ids: [Int32])], label: String, file: StaticString = #filePath, line: UInt = #line,
                     encode: (String) -> [Int32]) -> Int {
    var mismatches = 0
    for c in cases {
        let ids = encode(c.text)
        if ids != c.ids {
            mismatches += 1
            XCTFail("\(label) \(c.text.debugDescription): found \(ids), expected \(c.ids)", file: file, line: line)
        }
    }
    print("\(label): \(cases.count - mismatches)/\(cases.count) cases match")
    return mismatches
}
