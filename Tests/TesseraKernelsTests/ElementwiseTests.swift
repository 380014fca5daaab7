// Softmax, norms, RoPE, activations, the residual add and embedding gather of every kernel set against
// the reference, on odd sizes (1, primes, non-multiples of the vector width) and extreme values.
import TesseraCore
import TesseraKernels
import XCTest

final class ElementwiseTests: XCTestCase {
    static let sizes = [1, 3, 7, 8, 15, 16, 17, 31, 33, 100, 127, 1000, 4099]

    func testSoftmaxIsStableAndHandlesMaskedRows() {
        forEachKernelSet { id, kernels in
            for cols in Self.sizes {
                let rows = 3
                var x = randomFloats(rows * cols, seed: UInt64(cols), scale: 30)
                x[0] = 80  // large logits must not overflow
                if cols > 2 { for i in 0..<cols { x[cols + i] = -.infinity } }  // a fully masked row
                if cols > 2 { x[2 * cols + 1] = -.infinity }  // one masked entry
                var found = [Float](repeating: .nan, count: x.count), expected = found
                kernels.softmax(x, &found, rows: rows, cols: cols)
                ReferenceKernels.softmax(x, &expected, rows: rows, cols: cols)
                assertClose(found, expected, atol: 1e-7, rtol: 2e-6, "\(id) softmax cols=\(cols)")
                XCTAssertFalse(found.contains { $0.isNaN }, "\(id) softmax produced NaN")
            }
        }
    }

    func testRMSNormAndLayerNorm() {
        forEachKernelSet { id, kernels in
            for cols in Self.sizes {
                let rows = 5
                let x = randomFloats(rows * cols, seed: 21, scale: 4), w = randomFloats(cols, seed: 22), b = randomFloats(cols, seed: 23)
                var found = [Float](repeating: 0, count: x.count), expected = found
                kernels.rmsNorm(x, weight: w, &found, rows: rows, cols: cols, epsilon: 1e-6)
                ReferenceKernels.rmsNorm(x, weight: w, &expected, rows: rows, cols: cols, epsilon: 1e-6)
                assertClose(found, expected, atol: 1e-6, rtol: 1e-5, "\(id) rmsnorm cols=\(cols)")
                for (weight, bias) in [(w, b), (nil, nil)] as [([Float]?, [Float]?)] {
                    weight.withOptionalPointer { wp in
                        bias.withOptionalPointer { bp in
                            kernels.layerNorm(x, weight: wp, bias: bp, &found, rows: rows, cols: cols, epsilon: 1e-5)
                            ReferenceKernels.layerNorm(x, weight: wp, bias: bp, &expected, rows: rows, cols: cols, epsilon: 1e-5)
                        }
                    }
                    assertClose(found, expected, atol: 2e-6, rtol: 1e-5, "\(id) layernorm cols=\(cols) affine=\(weight != nil)")
                }
            }
        }
    }

    func testActivationsAndGatedActivations() {
        forEachKernelSet { id, kernels in
            for count in Self.sizes {
                var x = randomFloats(count, seed: 31, scale: 12)
                if count > 4 { x[0] = -100; x[1] = 100; x[2] = 0; x[3] = -88.5 }
                let up = randomFloats(count, seed: 32, scale: 3)
                for kind in Activation.allCases {
                    var found = [Float](repeating: 0, count: count), expected = found
                    kernels.activation(kind, x, &found, count: count)
                    ReferenceKernels.activation(kind, x, &expected, count: count)
                    assertClose(found, expected, atol: 2e-6, rtol: 2e-6, "\(id) \(kind) n=\(count)")
                    kernels.gatedActivation(kind, gate: x, up: up, &found, count: count)
                    ReferenceKernels.gatedActivation(kind, gate: x, up: up, &expected, count: count)
                    assertClose(found, expected, atol: 6e-6, rtol: 2e-6, "\(id) gated \(kind) n=\(count)")
                }
            }
        }
    }

    func testResidualAddAndEmbeddingGather() {
        forEachKernelSet { id, kernels in
            for count in Self.sizes {
                let a = randomFloats(count, seed: 41), b = randomFloats(count, seed: 42)
                var found = [Float](repeating: 0, count: count)
                kernels.add(a, b, &found, count: count)
                XCTAssertEqual(found, zip(a, b).map { $0 + $1 }, "\(id) add n=\(count)")
            }
            let vocabulary = 50, ids: [Int32] = [0, 49, 7, 7, 23]
            for dim in [1, 9, 64, 100] {
                let table = randomFloats(vocabulary * dim, seed: 43)
                let tables: [(DType, [UInt8])] = [
                    (.f32, table.withUnsafeBytes { Array($0) }),
                    (.f16, table.map(halfBitsFromFloat).withUnsafeBytes { Array($0) }),
                    (.bf16, table.map(bfloat16BitsFromFloat).withUnsafeBytes { Array($0) }),
                ]
                for (dtype, bytes) in tables {
                    var found = [Float](repeating: 0, count: ids.count * dim), expected = found
                    bytes.withUnsafeBytes { raw in
                        kernels.embeddingGather(table: raw.baseAddress!, dtype: dtype, dim: dim, ids: ids, count: ids.count, &found)
                        ReferenceKernels.embeddingGather(table: raw.baseAddress!, dtype: dtype, dim: dim, ids: ids, count: ids.count, &expected)
                    }
                    XCTAssertEqual(found, expected, "\(id) embedding \(dtype) dim=\(dim)")
                }
            }
        }
    }

    func testRoPEBothLayoutsPartialRotationAndScaling() {
        let configs = [
            RoPEConfig(rotaryDims: 64, base: 10000, layout: .neox),
            RoPEConfig(rotaryDims: 64, base: 500000, scaling: .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4,
                                                                      originalContext: 8192), layout: .neox),
            RoPEConfig(rotaryDims: 22, base: 10000, scaling: .linear(factor: 4), layout: .interleaved),
            RoPEConfig(rotaryDims: 18, base: 1_000_000, layout: .neox),  // partial rotation of a 30-dim head
            RoPEConfig(rotaryDims: 2, layout: .interleaved),
        ]
        forEachKernelSet { id, kernels in
            for config in configs {
                let headDim = config.rotaryDims == 18 ? 30 : config.rotaryDims
                let tokens = 7, heads = 3
                let positions: [Int32] = [0, 1, 2, 100, 4095, 17, 3]
                let table = RoPETable(config: config, capacity: 4096)
                let x = randomFloats(tokens * heads * headDim, seed: 51)
                var found = x, expected = x
                table.cos.withUnsafeBufferPointer { cos in
                    table.sin.withUnsafeBufferPointer { sin in
                        let args = { (p: UnsafeMutablePointer<Float>) in
                            RoPEArguments(x: p, tokens: tokens, heads: heads, headDim: headDim, rotaryDims: config.rotaryDims,
                                          positions: positions, cos: cos.baseAddress!, sin: sin.baseAddress!, layout: config.layout)
                        }
                        kernels.rope(args(&found))
                        ReferenceKernels.rope(args(&expected))
                    }
                }
                assertClose(found, expected, atol: 1e-6, rtol: 1e-6, "\(id) rope \(config)")
            }
        }
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
}

extension Optional where Wrapped == [Float] {
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let array = self else { return body(nil) }
        return array.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
