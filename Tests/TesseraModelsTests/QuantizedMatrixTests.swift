// The quantised matrix product as the loader builds it (repacking, activation quantisation, the lane
// or 4-row integer kernels), under every kernel set this CPU runs, held to a plain product of the
// weights dequantised by the reference decoder with the activations quantised as the kernels quantise
// them, for two types of each repacked format — q4 (Q4_1, Q4_K), q8s (Q8_0, Q5_0) and q8 (Q5_1, Q6_K)
// — with 16-bit and 8-bit activations; and each token's result the same bits alone as among others.
import TesseraCore
import TesseraFormats
import TesseraKernels
import TesseraModels
import XCTest

final class QuantizedMatrixTests: XCTestCase {
    /// Random blocks of `type` whose f16 scales (and minimums) are set small and finite.
    func randomTensorBytes(_ type: GGMLType, rows: Int, cols: Int, seed: UInt64) -> [UInt8] {
        let (size, bytes) = type.blockGeometry!
        var state = seed
        var data = (0..<(rows * cols / size * bytes)).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        // Byte offsets of the block's f16 scale fields (K-quants' d and dmin; Q6_K's d comes last).
        let halves: [Int: Float] = switch type {
        case .q4_1, .q5_1, .q4_K: [0: 0.01, 2: -0.003]
        case .q6_K: [208: 0.004]
        default: [0: 0.01]
        }
        for block in 0..<(rows * cols / size) {
            for (offset, value) in halves {
                let bits = halfBitsFromFloat(value)
                data[block * bytes + offset] = UInt8(bits & 0xFF)
                data[block * bytes + offset + 1] = UInt8(bits >> 8)
            }
        }
        return data
    }

    func testProductsAgainstDequantisedWeights() throws {
        let original = Kernels.activeID
        defer { try? Kernels.select(original) }
        for id in CPUFeatures.current.supportedKernelSets {
            try Kernels.select(id)
            try checkProducts(kernelSet: "\(id)")
        }
    }

    func checkProducts(kernelSet: String) throws {
        let (rows, cols) = (32, 512)
        var state: UInt64 = 99
        for type in [GGMLType.q4_1, .q4_K, .q8_0, .q5_0, .q5_1, .q6_K] {
            let bytes = randomTensorBytes(type, rows: rows, cols: cols, seed: UInt64(type.rawValue) + 7)
            try bytes.withUnsafeBytes { raw in
                let tensor = RawTensor(name: "w", shape: [rows, cols], type: type, data: raw.baseAddress!)
                var w = [Float](repeating: 0, count: rows * cols)
                try type.dequantize(raw.baseAddress!, count: rows * cols, into: &w)
                // |d·q| + |m| per weight: the K-quants' scales (d·sc) and minimums are rounded to f16 when
                // repacked (relative error under 2^-11), so a product may be off by that much of it.
                var scaled = [Double](repeating: 0, count: rows * cols)
                let rowBytes = cols / type.blockGeometry!.size * type.blockGeometry!.bytes
                var q = [Int8](repeating: 0, count: cols), scales = [Float](repeating: 0, count: cols / 16)
                var minimums = [Float](repeating: 0, count: cols / 32)
                for r in 0..<rows {
                    try type.decodeIntegerBlocks(raw.baseAddress! + r * rowBytes, count: cols, q: &q, scales: &scales, minimums: &minimums)
                    for j in 0..<cols { scaled[r * cols + j] = abs(Double(scales[j / 16]) * Double(q[j])) + abs(Double(minimums[j / 32])) }
                }
                let m = 19
                let x = (0..<(m * cols)).map { _ -> Float in
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    return Float(Int(state >> 40) % 2001 - 1000) / 1000
                }
                for int8 in [false, true] {
                    let label = "\(type) with \(int8 ? 8 : 16)-bit activations, \(kernelSet) kernels"
                    let batch = try XCTUnwrap(QuantizedProbe.product(tensor, x: x, m: m, int8Activations: int8), label)
                    for t in 0..<m {
                        let xt = Array(x[(t * cols)..<((t + 1) * cols)])
                        let alone = try XCTUnwrap(QuantizedProbe.product(tensor, x: xt, m: 1, int8Activations: int8), label)
                        // The activations as the kernels see them: each block of 32 quantised with scale
                        // max|x| / levels, rounded to nearest (the kernels' quantiser, checked bit for bit
                        // against the reference one by the kernel checks).
                        let levels: Float = int8 ? 127 : 32767
                        var quantised = [Double](repeating: 0, count: cols)
                        for b in 0..<(cols / 32) {
                            let block = (32 * b)..<(32 * b + 32), top = block.map { abs(xt[$0]) }.max()!
                            let s: Float = top > 0 ? levels / top : 0
                            for j in block { quantised[j] = Double((xt[j] * s).rounded(.toNearestOrEven)) * Double(top / levels) }
                        }
                        for r in 0..<rows {
                            var exact = 0.0, magnitude = 0.0, repacking = 0.0
                            for j in 0..<cols {
                                let product = Double(w[r * cols + j]) * quantised[j]
                                exact += product
                                magnitude += abs(product)
                                repacking += scaled[r * cols + j] * abs(quantised[j]) / 2048
                            }
                            let found = Double(batch[t * rows + r])
                            XCTAssertLessThanOrEqual(abs(found - exact), repacking + 1e-5 * magnitude + 1e-6,
                                                     "\(label): row \(r), token \(t)")
                            XCTAssertEqual(batch[t * rows + r].bitPattern, alone[r].bitPattern,
                                           "\(label): row \(r) of token \(t) alone and among \(m) differ")
                        }
                    }
                }
            }
        }
    }
}
