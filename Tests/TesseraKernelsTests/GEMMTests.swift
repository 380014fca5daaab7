// f32 GEMM, GEMV and 16-bit-weight matmul of every kernel set against the Double-accumulating reference,
// on odd shapes (1, primes, non-multiples of MR=6 / NR=16|32 / KC=256, and larger than one block).
import TesseraCore
import TesseraKernels
import XCTest

final class GEMMTests: XCTestCase {
    /// (m, n, k) triples: degenerate, prime, block-edge and multi-block shapes.
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 17, 3), (2, 3, 5), (7, 13, 11), (6, 16, 256), (5, 31, 257), (13, 33, 300),
        (37, 65, 129), (97, 130, 513), (1, 257, 1000), (200, 600, 71), (3, 1100, 40),
    ]

    func runGEMM(_ kernels: any KernelSet.Type, m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool,
                 accumulate: Bool, padding: Int) -> (found: [Float], expected: [Float]) {
        // Leading dimensions larger than the rows (padding) exercise the strided paths.
        let lda = (transposeA ? m : k) + padding, ldb = (transposeB ? k : n) + padding, ldc = n + padding
        let a = randomFloats((transposeA ? k : m) * lda, seed: 1), b = randomFloats((transposeB ? n : k) * ldb, seed: 2)
        let c0 = randomFloats(m * ldc, seed: 3)
        var found = c0, expected = c0
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                found.withUnsafeMutableBufferPointer { c in
                    kernels.gemm(GEMMArguments(m: m, n: n, k: k, a: a.baseAddress!, lda: lda, transposeA: transposeA,
                                               b: b.baseAddress!, ldb: ldb, transposeB: transposeB,
                                               c: c.baseAddress!, ldc: ldc, accumulate: accumulate))
                }
                expected.withUnsafeMutableBufferPointer { c in
                    ReferenceKernels.gemm(GEMMArguments(m: m, n: n, k: k, a: a.baseAddress!, lda: lda, transposeA: transposeA,
                                                        b: b.baseAddress!, ldb: ldb, transposeB: transposeB,
                                                        c: c.baseAddress!, ldc: ldc, accumulate: accumulate))
                }
            }
        }
        return (found, expected)
    }

    func testGEMMMatchesReferenceOnOddShapesAndLayouts() {
        forEachKernelSet { id, kernels in
            for (m, n, k) in Self.shapes {
                for (transposeA, transposeB) in [(false, true), (false, false), (true, false), (true, true)] {
                    let accumulate = (m + n) % 2 == 0
                    let r = runGEMM(kernels, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                                    accumulate: accumulate, padding: k % 3)
                    // Error of an f32 dot product of k terms of size <= 1 grows like sqrt(k)·eps.
                    assertClose(r.found, r.expected, atol: 2e-6 * Float(k).squareRoot() + 1e-6, rtol: 1e-5,
                                "\(id) gemm \(m)x\(n)x\(k) tA=\(transposeA) tB=\(transposeB) acc=\(accumulate)")
                }
            }
        }
    }

    func testGEMMWithZeroDepthClearsOrKeepsC() {
        forEachKernelSet { id, kernels in
            var c: [Float] = [1, 2, 3, 4]
            let a: [Float] = [0], b: [Float] = [0]
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { cp in
                        kernels.gemm(GEMMArguments(m: 2, n: 2, k: 0, a: a.baseAddress!, lda: 1, b: b.baseAddress!, ldb: 2,
                                                   c: cp.baseAddress!, accumulate: true))
                    }
                }
            }
            XCTAssertEqual(c, [1, 2, 3, 4], "\(id)")
        }
    }

    func testGEMVMatchesReference() {
        forEachKernelSet { id, kernels in
            for (n, k) in [(1, 1), (3, 7), (4, 16), (17, 33), (131, 517), (1000, 64), (5, 4099)] {
                let ldw = k + n % 2
                let w = randomFloats(n * ldw, seed: 5), x = randomFloats(k, seed: 6)
                for accumulate in [false, true] {
                    var found = randomFloats(n, seed: 7), expected = found
                    w.withUnsafeBufferPointer { w in
                        x.withUnsafeBufferPointer { x in
                            kernels.gemv(n: n, k: k, w: w.baseAddress!, ldw: ldw, x: x.baseAddress!, y: &found, accumulate: accumulate)
                            ReferenceKernels.gemv(n: n, k: k, w: w.baseAddress!, ldw: ldw, x: x.baseAddress!, y: &expected,
                                                  accumulate: accumulate)
                        }
                    }
                    assertClose(found, expected, atol: 2e-6 * Float(k).squareRoot() + 1e-6, rtol: 1e-5, "\(id) gemv \(n)x\(k)")
                }
            }
        }
    }

    func testHalfWeightMatmulMatchesReference() {
        forEachKernelSet { id, kernels in
            for format in [HalfFormat.f16, .bf16] {
                for (m, n, k) in [(1, 1, 1), (1, 37, 100), (1, 8, 1027), (2, 5, 9), (7, 33, 257), (50, 70, 300)] {
                    let ldw = k + 3
                    let values = randomFloats(n * ldw, seed: 11)
                    let w = values.map { format == .f16 ? halfBitsFromFloat($0) : bfloat16BitsFromFloat($0) }
                    let a = randomFloats(m * k, seed: 12)
                    var found = [Float](repeating: 0, count: m * n), expected = found
                    w.withUnsafeBytes { w in
                        a.withUnsafeBufferPointer { a in
                            let args = { (c: UnsafeMutablePointer<Float>) in
                                HalfGEMMArguments(m: m, n: n, k: k, a: a.baseAddress!, w: w.baseAddress!, ldw: ldw, format: format, c: c)
                            }
                            found.withUnsafeMutableBufferPointer { kernels.gemmHalf(args($0.baseAddress!)) }
                            expected.withUnsafeMutableBufferPointer { ReferenceKernels.gemmHalf(args($0.baseAddress!)) }
                        }
                    }
                    assertClose(found, expected, atol: 2e-6 * Float(k).squareRoot() + 1e-6, rtol: 1e-5, "\(id) \(format) matmul \(m)x\(n)x\(k)")
                }
            }
        }
    }

    func testHalfToFloatConversionIsExactForEveryBitPattern() {
        let bits = (0...UInt16.max).map { $0 }
        forEachKernelSet { id, kernels in
            for format in [HalfFormat.f16, .bf16] {
                var found = [Float](repeating: 0, count: bits.count), expected = found
                bits.withUnsafeBytes { src in
                    kernels.convertToFloat(src.baseAddress!, format: format, &found, count: bits.count)
                    ReferenceKernels.convertToFloat(src.baseAddress!, format: format, &expected, count: bits.count)
                }
                let mismatches = zip(found, expected).filter { !($0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN)) }
                XCTAssertEqual(mismatches.count, 0, "\(id) \(format) conversion")
            }
        }
    }
}
