// Dequantisation of every supported GGUF block type against the `gguf` Python package's dequantiser:
// random blocks of each type and the first blocks of real tensors of every quantised type in the
// SmolLM2, Gemma 3 and Qwen2.5-Coder GGUFs (Q4_1, Q8_0, Q4_K, Q5_0, Q6_K), from Goldens/dequant.json
// (made by scripts/goldens/make_dequant_goldens.py); and the integer form the quantised kernels
// repack (value = scale · q + minimum) against the same values.
import Foundation
import TesseraCore
import TesseraFormats
import XCTest

final class DequantizeTests: XCTestCase {
    struct Golden: Decodable { let type: String; let bytes: String; let values: [Double] }

    func testEveryBlockTypeMatchesTheGGUFPackage() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Goldens/dequant.json")
        let goldens = try JSONDecoder().decode([String: Golden].self, from: Data(contentsOf: url))
        XCTAssertGreaterThanOrEqual(goldens.count, 12)
        var typesSeen = Set<String>(), typesWithIntegerForm = Set<String>()
        for (name, golden) in goldens.sorted(by: { $0.key < $1.key }) {
            let type = try XCTUnwrap(GGMLType.allCases.first { $0.description == golden.type }, name)
            typesSeen.insert(golden.type)
            var bytes = [UInt8]()
            var hex = golden.bytes.utf8.makeIterator()
            while let high = hex.next(), let low = hex.next() {
                bytes.append(UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)!)
            }
            XCTAssertEqual(type.byteCount(values: golden.values.count), bytes.count, name)
            var found = [Float](repeating: .nan, count: golden.values.count)
            try bytes.withUnsafeBytes { raw in try type.dequantize(raw.baseAddress!, count: found.count, into: &found) }
            for (i, (f, e)) in zip(found, golden.values).enumerated() where abs(Double(f) - e) > 1e-6 * max(1, abs(e)) {
                XCTFail("\(name): value \(i) is \(f), the gguf package gives \(e)")
                break
            }
            // The integer form: q, a scale per 16 values and a minimum per 32.
            guard let range = type.integerBlockRange else { continue }
            let n = golden.values.count
            var q = [Int8](repeating: 0, count: n), scales = [Float](repeating: 0, count: n / 16)
            var minimums = [Float](repeating: 0, count: n / 32)
            try bytes.withUnsafeBytes { raw in
                try type.decodeIntegerBlocks(raw.baseAddress!, count: n, q: &q, scales: &scales, minimums: &minimums)
            }
            for i in 0..<n {
                if range == .unsignedNibble { XCTAssertTrue((0...15).contains(q[i]), "\(name): q \(q[i]) is not a nibble") }
                let value = Double(scales[i / 16]) * Double(q[i]) + Double(minimums[i / 32])
                if abs(value - golden.values[i]) > 1e-5 * max(1, abs(golden.values[i])) {
                    XCTFail("\(name): integer form of value \(i) gives \(value), the gguf package \(golden.values[i])")
                    break
                }
            }
            typesWithIntegerForm.insert(golden.type)
        }
        XCTAssertEqual(typesWithIntegerForm, ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"])
        XCTAssertEqual(typesSeen, ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])
    }

    func testDequantizeRefusesPartialBlocksAndUnsupportedTypes() throws {
        var out = [Float](repeating: 0, count: 64)
        let zeros = [UInt8](repeating: 0, count: 256)
        try zeros.withUnsafeBytes { raw in
            XCTAssertThrowsError(try GGMLType.q4_0.dequantize(raw.baseAddress!, count: 31, into: &out))
            XCTAssertThrowsError(try GGMLType.iq4_nl.dequantize(raw.baseAddress!, count: 32, into: &out))
            XCTAssertNoThrow(try GGMLType.q8_0.dequantize(raw.baseAddress!, count: 64, into: &out))
        }
        XCTAssertEqual(out, [Float](repeating: 0, count: 64))
    }
}
