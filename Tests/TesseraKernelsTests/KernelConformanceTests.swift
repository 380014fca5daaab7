// Every fast kernel of every kernel set this CPU supports against the plain reference (see
// KernelConformance for the shapes and tolerances), plus checks that the checker itself notices errors.
import TesseraCore
import TesseraKernels
import XCTest

final class KernelConformanceTests: XCTestCase {
    func testGEMM() { forEachKernelSet { _, k in assertPassed(KernelConformance.gemm(k)) } }
    func testGEMV() { forEachKernelSet { _, k in assertPassed(KernelConformance.gemv(k)) } }
    func testGEMMWithGeneratedWeights() { forEachKernelSet { _, k in assertPassed(KernelConformance.gemmGeneratedWeights(k)) } }
    func testHalfWeightMatmul() { forEachKernelSet { _, k in assertPassed(KernelConformance.gemmHalf(k)) } }
    func testHalfConversionIsExactForEveryBitPattern() { forEachKernelSet { _, k in assertPassed(KernelConformance.convert(k)) } }
    func testSoftmaxStableAndMasked() { forEachKernelSet { _, k in assertPassed(KernelConformance.softmax(k)) } }
    func testRMSNorm() { forEachKernelSet { _, k in assertPassed(KernelConformance.rmsNorm(k)) } }
    func testLayerNorm() { forEachKernelSet { _, k in assertPassed(KernelConformance.layerNorm(k)) } }
    func testRoPE() { forEachKernelSet { _, k in assertPassed(KernelConformance.rope(k)) } }
    func testActivations() { forEachKernelSet { _, k in assertPassed(KernelConformance.activations(k)) } }
    func testGatedActivations() { forEachKernelSet { _, k in assertPassed(KernelConformance.gatedActivations(k)) } }
    func testResidualAdd() { forEachKernelSet { _, k in assertPassed(KernelConformance.add(k)) } }
    func testEmbeddingGather() { forEachKernelSet { _, k in assertPassed(KernelConformance.embedding(k)) } }
    func testGEMVTransposed() { forEachKernelSet { _, k in assertPassed(KernelConformance.gemvTransposed(k)) } }
    func testGroupAttention() { forEachKernelSet { _, k in assertPassed(KernelConformance.groupAttention(k)) } }
    func testAttentionScoreScaling() { forEachKernelSet { _, k in assertPassed(KernelConformance.scaleScores(k)) } }
    func testOnlineSoftmax() { forEachKernelSet { _, k in assertPassed(KernelConformance.onlineSoftmax(k)) } }
    func testInt8KVKernels() { forEachKernelSet { _, k in assertPassed(KernelConformance.int8KV(k)) } }
    func testQuantizedDotInTheLaneLayout() { forEachKernelSet { _, k in assertPassed(KernelConformance.quantizedDotLanes(k)) } }
    func testActivationGradients() { forEachKernelSet { _, k in assertPassed(KernelConformance.activationGradients(k)) } }

    func testSoftmaxOfAFullyMaskedRowIsZeroNotNaN() {
        forEachKernelSet { id, kernels in
            let x = [Float](repeating: -.infinity, count: 19)
            var y = [Float](repeating: .nan, count: 19)
            kernels.softmax(x, &y, rows: 1, cols: 19)
            XCTAssertEqual(y, [Float](repeating: 0, count: 19), "\(id)")
        }
    }

    func testGEMMWithZeroDepthKeepsOrClearsC() {
        forEachKernelSet { id, kernels in
            for accumulate in [true, false] {
                var c: [Float] = [1, 2, 3, 4]
                let a: [Float] = [0], b: [Float] = [0]
                kernels.gemm(GEMMArguments(m: 2, n: 2, k: 0, a: a, lda: 1, b: b, ldb: 2, c: &c, accumulate: accumulate))
                XCTAssertEqual(c, accumulate ? [1, 2, 3, 4] : [0, 0, 0, 0], "\(id) accumulate=\(accumulate)")
            }
        }
    }

    /// The checker must fail a kernel set that is wrong: a set whose rmsNorm forgets the weight.
    func testTheCheckerCatchesAWrongKernel() {
        let result = KernelConformance.rmsNorm(BrokenKernels.self)
        XCTAssertFalse(result.passed)
        XCTAssertTrue(result.description.contains("FAILED"), result.description)
    }
}

/// The generic kernels with one deliberate bug, to show that conformance checks can fail.
enum BrokenKernels: KernelSet {
    static let name = "broken"
    static let base = KernelSetID.generic.kernels
    static func gemm(_ a: GEMMArguments) { base.gemm(a) }
    static func gemv(n: Int, k: Int, w: UnsafePointer<Float>, ldw: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        base.gemv(n: n, k: k, w: w, ldw: ldw, x: x, y: y, accumulate: accumulate)
    }
    static func gemmHalf(_ a: HalfGEMMArguments) { base.gemmHalf(a) }
    static func gemmGeneratedWeights(_ a: GEMMArguments, rows: (Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        base.gemmGeneratedWeights(a, rows: rows)
    }
    static func softmax(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int) { base.softmax(x, y, rows: rows, cols: cols) }
    static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, epsilon: Float) {
        let ones = [Float](repeating: 1, count: cols)
        base.rmsNorm(x, weight: ones, y, rows: rows, cols: cols, epsilon: epsilon)
    }
    static func layerNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                          rows: Int, cols: Int, epsilon: Float) {
        base.layerNorm(x, weight: weight, bias: bias, y, rows: rows, cols: cols, epsilon: epsilon)
    }
    static func rope(_ a: RoPEArguments) { base.rope(a) }
    static func activation(_ kind: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        base.activation(kind, x, y, count: count)
    }
    static func gatedActivation(_ kind: Activation, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        base.gatedActivation(kind, gate: gate, up: up, y, count: count)
    }
    static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { base.add(a, b, y, count: count) }
    static func embeddingGather(table: UnsafeRawPointer, dtype: DType, dim: Int, ids: UnsafePointer<Int32>, count: Int, _ out: UnsafeMutablePointer<Float>) {
        base.embeddingGather(table: table, dtype: dtype, dim: dim, ids: ids, count: count, out)
    }
    static func gemvTransposed(n: Int, k: Int, w: UnsafePointer<Float>, ldw: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        base.gemvTransposed(n: n, k: k, w: w, ldw: ldw, x: x, y: y, accumulate: accumulate)
    }
    static func groupScores(heads: Int, n: Int, k: Int, q: UnsafePointer<Float>, ldq: Int, w: UnsafePointer<Float>, ldw: Int,
                            y: UnsafeMutablePointer<Float>, ldy: Int) {
        base.groupScores(heads: heads, n: n, k: k, q: q, ldq: ldq, w: w, ldw: ldw, y: y, ldy: ldy)
    }
    static func groupWeightedSum(heads: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Float>, ldw: Int,
                                 y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        base.groupWeightedSum(heads: heads, n: n, k: k, x: x, ldx: ldx, w: w, ldw: ldw, y: y, ldy: ldy, accumulate: accumulate)
    }
    static func groupScoresHalf(heads: Int, n: Int, k: Int, q: UnsafePointer<Float>, ldq: Int, w: UnsafePointer<UInt16>, ldw: Int,
                                y: UnsafeMutablePointer<Float>, ldy: Int) {
        base.groupScoresHalf(heads: heads, n: n, k: k, q: q, ldq: ldq, w: w, ldw: ldw, y: y, ldy: ldy)
    }
    static func groupWeightedSumHalf(heads: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<UInt16>, ldw: Int,
                                     y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        base.groupWeightedSumHalf(heads: heads, n: n, k: k, x: x, ldx: ldx, w: w, ldw: ldw, y: y, ldy: ldy, accumulate: accumulate)
    }
    static func convertToHalf(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<UInt16>, count: Int) { base.convertToHalf(s, d, count: count) }
    static func scaleScores(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int, scale: Float, softcap: Float) {
        base.scaleScores(s, rows: rows, cols: cols, ld: ld, scale: scale, softcap: softcap)
    }
    static func onlineSoftmax(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int, rowMax: UnsafeMutablePointer<Float>,
                              rowSum: UnsafeMutablePointer<Float>, correction: UnsafeMutablePointer<Float>) {
        base.onlineSoftmax(s, rows: rows, cols: cols, ld: ld, rowMax: rowMax, rowSum: rowSum, correction: correction)
    }
    static func convertToFloat(_ s: UnsafeRawPointer, format: HalfFormat, _ d: UnsafeMutablePointer<Float>, count: Int) {
        base.convertToFloat(s, format: format, d, count: count)
    }
    static func quantizeActivations(_ x: UnsafePointer<Float>, count: Int, q: UnsafeMutablePointer<Int8>,
                                    scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>) {
        base.quantizeActivations(x, count: count, q: q, scales: scales, sums: sums)
    }
    static func quantizedDot(_ a: QuantizedDotArguments) { base.quantizedDot(a) }
    static func quantizeActivations16(_ x: UnsafePointer<Float>, count: Int, q: UnsafeMutablePointer<Int16>,
                                      scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>) {
        base.quantizeActivations16(x, count: count, q: q, scales: scales, sums: sums)
    }
    static func quantized16Dot(_ a: Quantized16DotArguments) { base.quantized16Dot(a) }
    static var prefersLaneLayout: Bool { base.prefersLaneLayout }
    static func quantized16DotLanes(_ a: Quantized16DotArguments) { base.quantized16DotLanes(a) }
    static func quantizedDotLanes(_ a: QuantizedDotArguments) { base.quantizedDotLanes(a) }
    static func activationGradient(_ kind: Activation, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                   dx: UnsafeMutablePointer<Float>, count: Int) {
        base.activationGradient(kind, x: x, dy: dy, dx: dx, count: count)
    }
    static func quantizeRowsInt8(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ldx: Int, q: UnsafeMutablePointer<Int8>,
                                 scales: UnsafeMutablePointer<Float>) {
        base.quantizeRowsInt8(x, rows: rows, cols: cols, ldx: ldx, q: q, scales: scales)
    }
    static func groupScoresInt8(heads: Int, n: Int, k: Int, q: UnsafePointer<Float>, ldq: Int, w: UnsafePointer<Int8>, ldw: Int,
                                scales: UnsafePointer<Float>, scaleStride: Int, block: Int, y: UnsafeMutablePointer<Float>, ldy: Int) {
        base.groupScoresInt8(heads: heads, n: n, k: k, q: q, ldq: ldq, w: w, ldw: ldw, scales: scales, scaleStride: scaleStride, block: block,
                             y: y, ldy: ldy)
    }
    static func groupWeightedSumInt8(heads: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Int8>, ldw: Int,
                                     scales: UnsafePointer<Float>, scaleStride: Int, block: Int, y: UnsafeMutablePointer<Float>,
                                     ldy: Int, accumulate: Bool) {
        base.groupWeightedSumInt8(heads: heads, n: n, k: k, x: x, ldx: ldx, w: w, ldw: ldw, scales: scales, scaleStride: scaleStride,
                                  block: block, y: y, ldy: ldy, accumulate: accumulate)
    }
    static func fmaPeakProbe(iterations: Int) -> Double { base.fmaPeakProbe(iterations: iterations) }
    static func microKernelProbe(calls: Int) -> Double { base.microKernelProbe(calls: calls) }
    static func streamRead(_ x: UnsafePointer<Float>, count: Int) -> Float { base.streamRead(x, count: count) }
}
