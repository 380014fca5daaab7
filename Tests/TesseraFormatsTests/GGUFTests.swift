// GGUF: files written by GGUFWriter read back exactly (every metadata type, arrays, tensors, alignment),
// and every kind of bad file — wrong magic, any truncation, lengths past the end, unknown or
// unsupported types, tensors outside the data — gives a typed GGUFError, never a crash.
import Foundation
import TesseraCore
import TesseraFormats
import XCTest

final class GGUFTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-gguf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func sampleWriter(alignment: Int = 32) throws -> GGUFWriter {
        var w = GGUFWriter()
        w.alignment = alignment
        w.add("general.architecture", .string("llama"))
        w.add("general.name", .string("tiny ünïcode model"))
        w.add("llama.block_count", .uint32(2))
        w.add("llama.rope.freq_base", .float32(10000))
        w.add("test.int8", .int8(-5)); w.add("test.uint8", .uint8(250)); w.add("test.int16", .int16(-300))
        w.add("test.uint16", .uint16(60000)); w.add("test.int32", .int32(-70000)); w.add("test.int64", .int64(-1 << 40))
        w.add("test.uint64", .uint64(1 << 50)); w.add("test.float64", .float64(0.1)); w.add("test.bool", .bool(true))
        w.add("tokenizer.ggml.tokens", .array((0..<20).map { .string("tok\($0)") }))
        w.add("tokenizer.ggml.scores", .array((0..<20).map { .float32(Float($0) / 2) }))
        w.add("test.nested", .array([.array([.int32(1), .int32(2)]), .array([.int32(3)])]))
        try w.addTensor("token_embd.weight", shape: [5, 8], values: (0..<40).map(Float.init))
        try w.addTensor("output_norm.weight", dimensions: [8], type: .f16,
                        data: (0..<8).map { halfBitsFromFloat(Float($0) + 0.5) }.withUnsafeBytes { Array($0) })
        try w.addTensor("blk.0.attn_q.weight", dimensions: [32, 2], type: .q8_0, data: [UInt8](repeating: 1, count: 68))
        return w
    }

    func testRoundTripOfMetadataAndTensors() throws {
        for alignment in [32, 64, 8] {
            let file = path("model-\(alignment).gguf")
            try sampleWriter(alignment: alignment).write(to: file)
            let gguf = try GGUFFile(path: file)
            XCTAssertEqual(gguf.version, 3)
            XCTAssertEqual(gguf.alignment, alignment)
            XCTAssertEqual(gguf.dataOffset % alignment, 0)
            XCTAssertEqual(gguf["general.architecture"]?.stringValue, "llama")
            XCTAssertEqual(gguf["general.name"]?.stringValue, "tiny ünïcode model")
            XCTAssertEqual(gguf["llama.block_count"]?.intValue, 2)
            XCTAssertEqual(gguf["llama.rope.freq_base"]?.doubleValue, 10000)
            XCTAssertEqual(gguf["test.int8"], .int8(-5))
            XCTAssertEqual(gguf["test.uint16"], .uint16(60000))
            XCTAssertEqual(gguf["test.int64"], .int64(-1 << 40))
            XCTAssertEqual(gguf["test.uint64"], .uint64(1 << 50))
            XCTAssertEqual(gguf["test.float64"], .float64(0.1))
            XCTAssertEqual(gguf["test.bool"], .bool(true))
            XCTAssertEqual(gguf["tokenizer.ggml.tokens"]?.arrayValue?.count, 20)
            XCTAssertEqual(gguf["tokenizer.ggml.tokens"]?.arrayValue?[7], .string("tok7"))
            XCTAssertEqual(gguf["test.nested"], .array([.array([.int32(1), .int32(2)]), .array([.int32(3)])]))
            XCTAssertTrue(gguf["tokenizer.ggml.tokens"]!.description.hasPrefix("[20 strings: \"tok0\""))

            XCTAssertEqual(gguf.tensors.map(\.name), ["token_embd.weight", "output_norm.weight", "blk.0.attn_q.weight"])
            let embedding = try XCTUnwrap(try gguf.tensor("token_embd.weight"))
            XCTAssertEqual(embedding.shape, [5, 8])
            XCTAssertEqual(embedding[3, 7], 31)
            XCTAssertEqual(try XCTUnwrap(try gguf.tensor("output_norm.weight")).toFloats(), (0..<8).map { Float($0) + 0.5 })
            let q = try XCTUnwrap(gguf.tensorInfo("blk.0.attn_q.weight"))
            XCTAssertEqual(q.type, .q8_0)
            XCTAssertEqual(q.shape, [2, 32])
            XCTAssertEqual(q.byteCount, 68)
            XCTAssertEqual(gguf.data(of: q).load(as: UInt8.self), 1)
            XCTAssertThrowsError(try gguf.tensor("blk.0.attn_q.weight")) {
                XCTAssertEqual($0 as? GGUFError, .unsupportedTensorType(tensor: "blk.0.attn_q.weight", type: .q8_0))
            }
            XCTAssertNil(try gguf.tensor("missing"))
        }
    }

    func testEveryTruncationIsATypedError() throws {
        let bytes = try sampleWriter().encoded()
        let file = path("truncated.gguf")
        // Cut the file at every length up to the end of the tensor table, then a few inside the data.
        let gguf = try { () throws -> GGUFFile in try sampleWriter().write(to: file); return try GGUFFile(path: file) }()
        let last = gguf.tensors.last!
        let cuts = Array(0..<gguf.dataOffset) + [gguf.dataOffset + 10, gguf.dataOffset + last.offset + last.byteCount - 1]
        for cut in cuts {
            try Data(bytes[0..<cut]).write(to: URL(fileURLWithPath: file))
            do {
                _ = try GGUFFile(path: file)
                XCTFail("a file cut at \(cut) of \(bytes.count) bytes was accepted")
            } catch {
                switch error {
                case .truncated, .notGGUF, .tensorOutOfBounds: break
                default: XCTFail("cut at \(cut): unexpected \(error)")
                }
            }
        }
    }

    /// Random byte corruption of the header and tensor table: every file either parses or throws a
    /// GGUFError — none crashes (a seeded, bounded fuzz run).
    func testRandomCorruptionNeverCrashes() throws {
        let good = try sampleWriter().encoded()
        let file = path("fuzz.gguf")
        var state: UInt64 = 42
        func next() -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(state >> 33) }
        var parsed = 0, rejected = 0
        for _ in 0..<400 {
            var bytes = good
            for _ in 0..<(1 + next() % 4) {
                let position = next() % min(bytes.count, 700)
                bytes[position] = UInt8(truncatingIfNeeded: next())
            }
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            do { _ = try GGUFFile(path: file); parsed += 1 } catch { rejected += 1 }
        }
        XCTAssertEqual(parsed + rejected, 400)
        XCTAssertGreaterThan(rejected, 0)
    }

    func testCorruptFilesGiveClearErrors() throws {
        let good = try sampleWriter().encoded()
        func check(_ bytes: [UInt8], _ expected: (GGUFError) -> Bool, _ label: String) throws {
            let file = path("bad.gguf")
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            XCTAssertThrowsError(try GGUFFile(path: file), label) { error in
                XCTAssertTrue(expected(error as! GGUFError), "\(label): \(error)")
                XCTAssertFalse("\(error)".isEmpty)
            }
        }
        var bytes = good
        bytes[0] = UInt8(ascii: "X")
        try check(bytes, { if case .notGGUF = $0 { true } else { false } }, "magic")
        bytes = good
        bytes[4] = 7
        try check(bytes, { $0 == .unsupportedVersion(7) }, "version")
        // The first metadata key's length (right after the 24-byte header) set past the end of the file.
        bytes = good
        for i in 0..<8 { bytes[24 + i] = 0xff }
        try check(bytes, { if case .truncated = $0 { true } else { false } }, "string length")
        // A tensor count far larger than the file could hold.
        bytes = good
        bytes[15] = 0x10
        try check(bytes, { if case .truncated = $0 { true } else { false } }, "tensor count")
        // Unknown and unsupported tensor types, and a tensor offset outside the data section.
        for (type, expected) in [(UInt32(99), "unknown ggml type 99"), (UInt32(16), "IQ2_XXS")] {
            var w = GGUFWriter()
            try w.addTensor("t", shape: [4], values: [1, 2, 3, 4])
            var encoded = w.encoded()
            let typeOffset = 24 + 8 + 1 + 4 + 8  // header, name length, name "t", dimension count, one dimension
            withUnsafeBytes(of: type.littleEndian) { for (i, b) in $0.enumerated() { encoded[typeOffset + i] = b } }
            try check(encoded, { "\($0)".contains(expected) }, "tensor type \(type)")
        }
        var w = GGUFWriter()
        try w.addTensor("t", shape: [4], values: [1, 2, 3, 4])
        var encoded = w.encoded()
        encoded[24 + 8 + 1 + 4 + 8 + 4] = 64  // the offset of "t" moved past the data
        try check(encoded, { if case .tensorOutOfBounds = $0 { true } else { false } }, "offset")
        // An unknown metadata value type.
        var m = GGUFWriter()
        m.add("k", .uint8(1))
        encoded = m.encoded()
        encoded[24 + 8 + 1] = 42
        try check(encoded, { $0 == .invalidValueType(key: "k", type: 42) }, "value type")
        XCTAssertThrowsError(try GGUFFile(path: path("does-not-exist.gguf"))) { error in
            guard case .cannotOpen = error as? GGUFError else { return XCTFail("\(error)") }
        }
    }

    func testWriterRejectsMismatchedData() {
        var w = GGUFWriter()
        XCTAssertThrowsError(try w.addTensor("x", dimensions: [33], type: .q4_0, data: [UInt8](repeating: 0, count: 18)))
        XCTAssertThrowsError(try w.addTensor("x", dimensions: [4], type: .f32, data: [UInt8](repeating: 0, count: 15)))
        XCTAssertEqual(GGMLType.q4_K.byteCount(values: 512), 288)
        XCTAssertEqual(GGMLType.q6_K.byteCount(values: 256), 210)
        XCTAssertNil(GGMLType.iq2_xs.blockGeometry)
    }
}
