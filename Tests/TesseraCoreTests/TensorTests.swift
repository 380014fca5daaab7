// Tensor views (reshape, transpose, slice), copies, conversions, storage (heap and mmap) and WeightStore errors.
import Foundation
import TesseraCore
import XCTest

final class TensorTests: XCTestCase {
    func testReshapeTransposeSliceAndContiguous() throws {
        let t = Tensor(shape: [2, 3], values: [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(t[1, 2], 5)
        let r = try t.reshaped([3, -1])
        XCTAssertEqual(r.shape, [3, 2])
        XCTAssertEqual(r[2, 1], 5)
        let tr = t.transposed()
        XCTAssertEqual(tr.shape, [3, 2])
        XCTAssertFalse(tr.isContiguous)
        XCTAssertEqual(tr[2, 0], 2)
        XCTAssertEqual(tr.contiguous().toFloats(), [0, 3, 1, 4, 2, 5])
        let s = try t.slice(dim: 1, 1..<3)
        XCTAssertEqual(s.shape, [2, 2])
        XCTAssertEqual(s.toFloats(), [1, 2, 4, 5])
        XCTAssertThrowsError(try tr.reshaped([6])) { XCTAssertEqual($0 as? TensorError, .notContiguous(operation: "reshape")) }
        XCTAssertThrowsError(try t.reshaped([4, 2]))
        XCTAssertThrowsError(try t.slice(dim: 0, 1..<3))
    }

    func testConversionsToHalfFormats() {
        let t = Tensor(shape: [4], values: [1, -2.5, 65504, 0.1])
        let h = t.converted(to: .f16)
        XCTAssertEqual(h.dtype, .f16)
        XCTAssertEqual(h.byteCount, 8)
        XCTAssertEqual(h.toFloats()[0...2], [1, -2.5, 65504])
        XCTAssertEqual(h.toFloats()[3], 0.1, accuracy: 1e-4)
        let b = t.converted(to: .bf16)
        XCTAssertEqual(b.toFloats()[1], -2.5)
        XCTAssertEqual(b[3], 0.1, accuracy: 1e-3)
    }

    func testMappedStorageReadsFileBytesAtAnyOffset() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-storage-\(getpid()).bin").path
        let floats: [Float] = (0..<2000).map { Float($0) }
        var bytes = Data([1, 2, 3])  // an unaligned 3-byte header before the floats
        floats.withUnsafeBytes { bytes.append(contentsOf: $0) }
        try bytes.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }

        let storage = try Storage(mapping: path, offset: 3, length: 2000 * 4)
        XCTAssertEqual(storage.kind, .mapped(path: path))
        let tensor = Tensor(storage: storage, dtype: .f32, shape: [1000, 2], offset: 0)
        XCTAssertEqual(tensor[999, 1], 1999)
        XCTAssertThrowsError(try Storage(mapping: path, offset: 8000, length: 100)) { error in
            guard case .rangeOutsideFile = error as? StorageError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Storage(mapping: path + ".missing")) { error in
            guard case .cannotOpen = error as? StorageError else { return XCTFail("\(error)") }
        }
    }

    func testWeightStoreNamesTheMissingOrMisshapenTensor() throws {
        var store = WeightStore()
        store.insert(Tensor(zeros: [4, 8]), named: "blk.0.attn_q.weight")
        XCTAssertEqual(try store.tensor("blk.0.attn_q.weight", shape: [4, 8]).shape, [4, 8])
        XCTAssertThrowsError(try store.tensor("blk.0.attn_k.weight")) {
            XCTAssertEqual($0 as? WeightError, .missing(name: "blk.0.attn_k.weight"))
            XCTAssertTrue("\($0)".contains("blk.0.attn_k.weight"))
        }
        XCTAssertThrowsError(try store.tensor("blk.0.attn_q.weight", shape: [8, 4])) {
            XCTAssertEqual($0 as? WeightError, .wrongShape(name: "blk.0.attn_q.weight", expected: [8, 4], found: [4, 8]))
        }
        XCTAssertThrowsError(try store.tensor("blk.0.attn_q.weight", dtypes: [.f16]))
        XCTAssertEqual(store.totalBytes, 128)
    }
}
