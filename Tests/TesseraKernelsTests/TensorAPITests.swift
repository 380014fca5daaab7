// The Tensor-level kernel API: shape/dtype errors are thrown with a clear message, and results agree
// with the raw kernels; plus dispatch (the active set is the best supported one, and forcing works).
import Foundation
import TesseraCore
import TesseraKernels
import XCTest

final class TensorAPITests: XCTestCase {
    func testLinearWithEachWeightDTypeMatchesF32() throws {
        let x = Tensor(shape: [2, 3, 40], values: randomFloats(240, seed: 61))
        let w = Tensor(shape: [24, 40], values: randomFloats(960, seed: 62))
        let y = try Kernels.linear(x, weight: w)
        XCTAssertEqual(y.shape, [2, 3, 24])
        var expected = [Float](repeating: 0, count: 6 * 24)
        x.toFloats().withUnsafeBufferPointer { a in
            w.toFloats().withUnsafeBufferPointer { b in
                ReferenceKernels.gemm(GEMMArguments(m: 6, n: 24, k: 40, a: a.baseAddress!, b: b.baseAddress!, transposeB: true, c: &expected))
            }
        }
        assertClose(y.toFloats(), expected, atol: 1e-5, "linear f32")
        let yHalf = try Kernels.linear(x, weight: w.converted(to: .f16))
        assertClose(yHalf.toFloats(), expected, atol: 0.01, "linear f16 (weights rounded to f16)")
        let yBF = try Kernels.linear(x, weight: w.converted(to: .bf16))
        assertClose(yBF.toFloats(), expected, atol: 0.05, "linear bf16 (weights rounded to bf16)")
    }

    func testMatmulHandlesTransposedViews() throws {
        let a = Tensor(shape: [5, 7], values: randomFloats(35, seed: 63))
        let b = Tensor(shape: [3, 7], values: randomFloats(21, seed: 64))
        let c = try Kernels.matmul(a, b.transposed())
        let explicit = try Kernels.matmul(a, b.transposed().contiguous())
        assertClose(c.toFloats(), explicit.toFloats(), atol: 1e-6, "matmul with a transposed view")
        let aT = try Kernels.matmul(a.transposed(), a)  // (7,5)·(5,7)
        XCTAssertEqual(aT.shape, [7, 7])
        XCTAssertEqual(aT[2, 4], aT[4, 2], accuracy: 1e-6)  // AᵀA is symmetric
    }

    func testShapeErrorsAreThrownAndDescriptive() throws {
        let x = Tensor(zeros: [4, 8])
        XCTAssertThrowsError(try Kernels.linear(x, weight: Tensor(zeros: [3, 7]))) { error in
            XCTAssertEqual(error as? TensorError, .shapeMismatch(operation: "linear", expected: "weight (out, 8)", found: "[3, 7]"))
            XCTAssertEqual("\(error)", "linear: expected shape weight (out, 8), found [3, 7]")
        }
        XCTAssertThrowsError(try Kernels.matmul(x, Tensor(zeros: [9, 2])))
        XCTAssertThrowsError(try Kernels.rmsNorm(x, weight: Tensor(zeros: [7]), epsilon: 1e-5))
        XCTAssertThrowsError(try Kernels.layerNorm(x, weight: nil, bias: Tensor(zeros: [9]), epsilon: 1e-5))
        XCTAssertThrowsError(try Kernels.add(x, Tensor(zeros: [8, 4])))
        XCTAssertThrowsError(try Kernels.gatedActivation(.silu, gate: x, up: Tensor(zeros: [4, 9])))
        XCTAssertThrowsError(try Kernels.softmax(Tensor(zeros: [4, 8], dtype: .f16))) { error in
            XCTAssertEqual(error as? TensorError, .dtypeMismatch(operation: "softmax", expected: .f32, found: .f16))
        }
        XCTAssertThrowsError(try Kernels.softmax(x.transposed())) { XCTAssertEqual($0 as? TensorError, .notContiguous(operation: "softmax")) }
        XCTAssertThrowsError(try Kernels.embedding(Tensor(zeros: [10, 4]), ids: [3, 10])) { error in
            XCTAssertTrue("\(error)".contains("token id 10 outside the vocabulary of 10"), "\(error)")
        }
        let table = RoPETable(config: RoPEConfig(rotaryDims: 8), capacity: 4)
        XCTAssertThrowsError(try Kernels.applyRoPE(Tensor(zeros: [2, 1, 8]), positions: [0], table: table))
        XCTAssertThrowsError(try Kernels.applyRoPE(Tensor(zeros: [1, 1, 6]), positions: [0], table: table))
    }

    func testRoPETableGrowsOnDemand() throws {
        let table = RoPETable(config: RoPEConfig(rotaryDims: 4), capacity: 2)
        let x = Tensor(shape: [1, 1, 4], values: [1, 0, 0, 1])
        try Kernels.applyRoPE(x, positions: [1000], table: table)
        XCTAssertGreaterThanOrEqual(table.capacity, 1001)
        // Rotations preserve the norm of each pair.
        let v = x.toFloats()
        XCTAssertEqual(v[0] * v[0] + v[2] * v[2], 1, accuracy: 1e-5)
    }

    func testRoPETableMatchesTheClosedForm() {
        // Position p, pair i rotates by p·base^(-2i/d); with linear scaling by p/factor.
        let table = RoPETable(config: RoPEConfig(rotaryDims: 8, base: 100, scaling: .linear(factor: 2)), capacity: 10)
        let angle = 9.0 / 2 * pow(100.0, -2.0 * 3 / 8)
        XCTAssertEqual(Double(table.cos[9 * 4 + 3]), cos(angle), accuracy: 1e-6)
        XCTAssertEqual(Double(table.sin[9 * 4 + 3]), sin(angle), accuracy: 1e-6)
        // Llama 3 scaling keeps high frequencies and divides low ones by the factor.
        let llama3 = RoPEConfig(rotaryDims: 128, base: 500000, scaling: .llama3(factor: 8, lowFrequencyFactor: 1,
                                                                                  highFrequencyFactor: 4, originalContext: 8192))
        let plain = RoPEConfig(rotaryDims: 128, base: 500000)
        XCTAssertEqual(llama3.inverseFrequencies[0], plain.inverseFrequencies[0])
        XCTAssertEqual(llama3.inverseFrequencies[63], plain.inverseFrequencies[63] / 8, accuracy: 1e-20)
    }

    func testDispatchPicksTheBestSupportedSetAndRefusesUnsupportedOnes() throws {
        let supported = CPUFeatures.current.supportedKernelSets
        XCTAssertEqual(supported.last, .generic)
        XCTAssertEqual(Kernels.activeID, supported[0])
        if !supported.contains(.avx512) {
            XCTAssertThrowsError(try Kernels.select(.avx512)) { error in
                XCTAssertTrue("\(error)".contains("avx512"), "\(error)")
            }
        }
        try Kernels.select(.generic)
        XCTAssertEqual(Kernels.active.name, "generic")
        try Kernels.select(supported[0])
    }
}
