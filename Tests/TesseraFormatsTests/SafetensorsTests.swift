// safetensors: round trips through the writer, and typed errors for truncated or inconsistent files.
import Foundation
import TesseraCore
import TesseraFormats
import XCTest

final class SafetensorsTests: XCTestCase {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString).safetensors").path
    }

    func testRoundTrip() throws {
        var writer = SafetensorsWriter()
        writer.metadata = ["format": "pt"]
        writer.add("embeddings.word_embeddings.weight", Tensor(shape: [3, 4], values: (0..<12).map(Float.init)))
        writer.add("encoder.layer.0.attention.self.query.bias", Tensor(shape: [4], values: [1, 2, 3, 4]).converted(to: .bf16))
        writer.add("pooler.dense.weight", Tensor(shape: [2, 2], values: [0.5, -1, 2, 65504]).converted(to: .f16))
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writer.write(to: path)
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.metadata, ["format": "pt"])
        XCTAssertEqual(file.entries.count, 3)
        XCTAssertEqual(file.dataOffset % 8, 0)
        let embeddings = try XCTUnwrap(try file.tensor("embeddings.word_embeddings.weight"))
        XCTAssertEqual(embeddings.shape, [3, 4])
        XCTAssertEqual(embeddings[2, 3], 11)
        XCTAssertEqual(try XCTUnwrap(try file.tensor("encoder.layer.0.attention.self.query.bias")).toFloats(), [1, 2, 3, 4])
        XCTAssertEqual(try XCTUnwrap(try file.tensor("pooler.dense.weight")).toFloats(), [0.5, -1, 2, 65504])
        XCTAssertEqual(file.entry("pooler.dense.weight")?.dtype, "F16")
        XCTAssertNil(try file.tensor("missing"))
    }

    func testBadFilesGiveTypedErrors() throws {
        func header(_ json: String, data: Int = 16) -> [UInt8] {
            var out = [UInt8]()
            withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { out.append(contentsOf: $0) }
            return out + Array(json.utf8) + [UInt8](repeating: 0, count: data)
        }
        let cases: [([UInt8], (SafetensorsError) -> Bool)] = [
            ([1, 2, 3], { if case .truncated = $0 { true } else { false } }),
            ([255, 255, 0, 0, 0, 0, 0, 0, 123], { if case .truncated = $0 { true } else { false } }),
            (header("{not json"), { if case .invalidHeader = $0 { true } else { false } }),
            (header("[1, 2]"), { if case .invalidHeader = $0 { true } else { false } }),
            (header(#"{"a": {"dtype": "F32", "shape": [2]}}"#), { if case .invalidHeader = $0 { true } else { false } }),
            (header(#"{"a": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}"#), { $0 == .unsupportedDType(tensor: "a", dtype: "Q9") }),
            (header(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 40]}}"#), { if case .tensorOutOfBounds = $0 { true } else { false } }),
            (header(#"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#), { if case .tensorOutOfBounds = $0 { true } else { false } }),
            (header(#"{"a": {"dtype": "F64", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 8]}}"#),
             { if case .tensorOutOfBounds = $0 { true } else { false } }),
        ]
        for (index, (bytes, expected)) in cases.enumerated() {
            let path = temporaryPath()
            defer { try? FileManager.default.removeItem(atPath: path) }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try SafetensorsFile(path: path), "case \(index)") { error in
                XCTAssertTrue(expected(error as! SafetensorsError), "case \(index): \(error)")
            }
        }
        XCTAssertThrowsError(try SafetensorsFile(path: "/nonexistent.safetensors"))
    }
}
