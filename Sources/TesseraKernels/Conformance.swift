// Kernel conformance: every fast kernel of a kernel set against the plain reference, on odd shapes.
//
// The same checks serve the unit tests (which assert that every case passes, for every kernel set the
// CPU supports) and `tessera check kernels`, which a user runs on a new machine — the way llama.cpp's
// test-backend-ops holds each backend to the CPU reference. Shapes are degenerate (1), prime, and not
// multiples of the micro-kernel tile (6 x 16 or 6 x 32), the vector width or the depth block (256).
// Tolerances are stated per kernel; a case passes when |found - expected| <= atol + rtol·|expected|
// for every element, and NaN/infinity agree exactly.
import Foundation
import TesseraCore

public struct KernelCheckResult: Sendable, CustomStringConvertible {
    public let kernel: String
    public let kernelSet: String
    public let cases: Int
    /// The worst case: max over elements of |found - expected| / (atol + rtol·|expected|); <= 1 passes.
    public let worstRatio: Float
    public let worstCase: String
    public var passed: Bool { worstRatio <= 1 }
    public var description: String {
        "\(kernelSet) \(kernel): \(cases) cases, worst error \(String(format: "%.3g", worstRatio)) of tolerance"
            + (passed ? "" : " — FAILED at \(worstCase)")
    }
}

public enum KernelConformance {
    /// Deterministic uniform values in [-scale, scale).
    public static func randomFloats(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
        }
    }

    /// Accumulates the worst normalised error over the cases of one kernel.
    struct Tally {
        let kernel: String, kernelSet: String
        var cases = 0, worstRatio: Float = 0, worstCase = ""

        mutating func compare(_ found: [Float], _ expected: [Float], atol: Float, rtol: Float, _ label: @autoclosure () -> String) {
            cases += 1
            var ratio: Float = found.count == expected.count ? 0 : .infinity
            var detail = found.count == expected.count ? "" : "count \(found.count) != \(expected.count)"
            for i in 0..<min(found.count, expected.count) {
                let (f, e) = (found[i], expected[i])
                var r: Float
                if f.isNaN || e.isNaN || f.isInfinite || e.isInfinite {
                    r = (f == e || (f.isNaN && e.isNaN)) ? 0 : .infinity
                } else {
                    r = abs(f - e) / (atol + rtol * abs(e))
                }
                if r > ratio { ratio = r; detail = "[\(i)] found \(f), expected \(e)" }
            }
            if ratio > worstRatio || cases == 1 { worstRatio = max(worstRatio, ratio); worstCase = "\(label()) \(detail)" }
        }

        var result: KernelCheckResult {
            KernelCheckResult(kernel: kernel, kernelSet: kernelSet, cases: cases, worstRatio: worstRatio, worstCase: worstCase)
        }
    }

    /// All checks for one kernel set.
    public static func checkAll(_ kernels: any KernelSet.Type) -> [KernelCheckResult] {
        [gemm(kernels), gemv(kernels), gemmHalf(kernels), gemmGeneratedWeights(kernels), convert(kernels), softmax(kernels), rmsNorm(kernels),
         layerNorm(kernels), activations(kernels), gatedActivations(kernels), add(kernels), embedding(kernels), rope(kernels),
         gemvTransposed(kernels), groupAttention(kernels), scaleScores(kernels), onlineSoftmax(kernels), quantizeActivations(kernels),
         quantizedDot(kernels), quantizedDotLanes(kernels), int8KV(kernels), activationGradients(kernels)]
    }

    // MARK: - Matrix products

    /// (m, n, k): degenerate, prime, tile-edge and multi-block shapes.
    public static let gemmShapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 17, 3), (2, 3, 5), (7, 13, 11), (6, 16, 256), (6, 32, 257), (5, 31, 257), (13, 33, 300),
        (37, 65, 129), (97, 130, 513), (1, 257, 1000), (200, 600, 71), (3, 1100, 40), (150, 530, 20),
        (12, 48, 520),  // whole micro-tiles over three depth blocks, accumulating (the index is even)
    ]

    /// f32 GEMM in all four transpose layouts, with padded leading dimensions, overwriting and accumulating.
    public static func gemm(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "gemm", kernelSet: kernels.name)
        for (index, (m, n, k)) in gemmShapes.enumerated() {
            for (transposeA, transposeB) in [(false, true), (false, false), (true, false), (true, true)] {
                let padding = k % 3, accumulate = index % 2 == 0
                let lda = (transposeA ? m : k) + padding, ldb = (transposeB ? k : n) + padding, ldc = n + padding
                let a = randomFloats((transposeA ? k : m) * lda, seed: 1), b = randomFloats((transposeB ? n : k) * ldb, seed: 2)
                var found = randomFloats(m * ldc, seed: 3)
                var expected = found
                a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { b in
                        func arguments(_ c: UnsafeMutablePointer<Float>) -> GEMMArguments {
                            GEMMArguments(m: m, n: n, k: k, a: a.baseAddress!, lda: lda, transposeA: transposeA,
                                          b: b.baseAddress!, ldb: ldb, transposeB: transposeB, c: c, ldc: ldc, accumulate: accumulate)
                        }
                        found.withUnsafeMutableBufferPointer { kernels.gemm(arguments($0.baseAddress!)) }
                        expected.withUnsafeMutableBufferPointer { ReferenceKernels.gemm(arguments($0.baseAddress!)) }
                    }
                }
                // An f32 dot product of k terms of size <= 1 has error growing like sqrt(k)·eps.
                tally.compare(found, expected, atol: 2e-6 * Float(k).squareRoot() + 1e-6, rtol: 1e-5,
                              "\(m)x\(n)x\(k) tA=\(transposeA) tB=\(transposeB) acc=\(accumulate)")
            }
        }
        return tally.result
    }

    public static func gemv(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "gemv", kernelSet: kernels.name)
        for (n, k) in [(1, 1), (3, 7), (4, 16), (17, 33), (131, 517), (1000, 64), (5, 4099)] {
            let ldw = k + n % 2
            let w = randomFloats(n * ldw, seed: 5), x = randomFloats(k, seed: 6)
            for accumulate in [false, true] {
                var found = randomFloats(n, seed: 7)
                var expected = found
                kernels.gemv(n: n, k: k, w: w, ldw: ldw, x: x, y: &found, accumulate: accumulate)
                ReferenceKernels.gemv(n: n, k: k, w: w, ldw: ldw, x: x, y: &expected, accumulate: accumulate)
                tally.compare(found, expected, atol: 2e-6 * Float(k).squareRoot() + 1e-6, rtol: 1e-5, "\(n)x\(k) acc=\(accumulate)")
            }
        }
        return tally.result
    }

    /// f32 activations times f16 / bf16 weights, decode (m = 1) and prefill (m > 1) paths.
    /// 8-bit activation blocks: the same integers, scales and sums as the reference.
    public static func quantizeActivations(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "quantize activations", kernelSet: kernels.name)
        for count in [32, 64, 96, 576, 2048] {
            var x = randomFloats(count, seed: 41, scale: 3)
            if count >= 64 { for i in 32..<64 { x[i] = 0 } }  // an all-zero block
            var (q1, s1, t1) = ([Int8](repeating: 0, count: count), [Float](repeating: 0, count: count / 32), [Float](repeating: 0, count: count / 32))
            var (q2, s2, t2) = (q1, s1, t1)
            kernels.quantizeActivations(x, count: count, q: &q1, scales: &s1, sums: &t1)
            ReferenceKernels.quantizeActivations(x, count: count, q: &q2, scales: &s2, sums: &t2)
            tally.compare(q1.map(Float.init) + s1 + t1, q2.map(Float.init) + s2 + t2, atol: 1e-6, rtol: 1e-6, "\(count) values")
            var (w1, w2) = ([Int16](repeating: 0, count: count), [Int16](repeating: 0, count: count))
            kernels.quantizeActivations16(x, count: count, q: &w1, scales: &s1, sums: &t1)
            ReferenceKernels.quantizeActivations16(x, count: count, q: &w2, scales: &s2, sums: &t2)
            tally.compare(w1.map(Float.init) + s1 + t1, w2.map(Float.init) + s2 + t2, atol: 1e-6, rtol: 1e-6, "\(count) values, 16 bits")
        }
        return tally.result
    }

    /// `tokens` rows of random activations (in ±2) quantised per block by the reference's `quantize`
    /// (8 or 16 bits): values (tokens · 32 · blocks), scales and sums (tokens · blocks).
    static func randomActivations<Q: FixedWidthInteger>(
        tokens: Int, blocks: Int, seed: UInt64,
        _ quantize: (UnsafePointer<Float>, Int, UnsafeMutablePointer<Q>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    ) -> ([Q], [Float], [Float]) {
        let k = 32 * blocks
        let x = randomFloats(tokens * k, seed: seed, scale: 2)
        var (q, scales, sums) = ([Q](repeating: 0, count: tokens * k), [Float](repeating: 0, count: tokens * blocks),
                                 [Float](repeating: 0, count: tokens * blocks))
        for t in 0..<tokens {
            x.withUnsafeBufferPointer { x in
                quantize(x.baseAddress! + t * k, k, &q[t * k], &scales[t * blocks], &sums[t * blocks])
            }
        }
        return (q, scales, sums)
    }

    static func randomActivations16(tokens: Int, blocks: Int, seed: UInt64) -> ([Int16], [Float], [Float]) {
        randomActivations(tokens: tokens, blocks: blocks, seed: seed) {
            ReferenceKernels.quantizeActivations16($0, count: $1, q: $2, scales: $3, sums: $4)
        }
    }

    /// Integer dot products of random q4 / q8 group-blocks with quantised activations.
    public static func quantizedDot(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "quantized dot", kernelSet: kernels.name)
        for format in QuantizedFormat.allCases {
            for (groups, blocks) in [(1, 1), (2, 3), (5, 18), (3, 64)] {
                let bytes = groups * blocks * format.groupBlockBytes
                var weights = [UInt8](repeating: 0, count: bytes)
                var state: UInt64 = 12345
                for i in 0..<bytes {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    weights[i] = UInt8(truncatingIfNeeded: state >> 33)
                }
                // Sane f16 scales and minimums (random bytes could be NaN or huge): values in ±[2^-8, 2^-4].
                let scaleOffset = format == .q4 ? 64 : 128
                let scaleCount = switch format { case .q4: 8; case .q8: 12; case .q8s: 4 }
                for gb in 0..<(groups * blocks) {
                    for s in 0..<scaleCount {
                        let at = gb * format.groupBlockBytes + scaleOffset + 2 * s
                        let sign: UInt16 = weights[at] & 1 == 0 ? 0 : 0x8000
                        let bitsValue = sign | (UInt16(0x1C00 + Int(weights[at + 1] & 0x0F) * 0x80))  // 2^-8 ... 2^-4
                        weights[at] = UInt8(bitsValue & 0xFF); weights[at + 1] = UInt8(bitsValue >> 8)
                    }
                }
                let k = blocks * 32
                let x = randomFloats(k, seed: 43, scale: 2)
                var (xq, xs, xt) = ([Int8](repeating: 0, count: k), [Float](repeating: 0, count: blocks), [Float](repeating: 0, count: blocks))
                ReferenceKernels.quantizeActivations(x, count: k, q: &xq, scales: &xs, sums: &xt)
                var found = [Float](repeating: 0, count: 4 * groups), expected = found
                var found16 = found, expected16 = found
                var (x16, s16, t16) = ([Int16](repeating: 0, count: k), xs, xt)
                ReferenceKernels.quantizeActivations16(x, count: k, q: &x16, scales: &s16, sums: &t16)
                weights.withUnsafeBytes { w in
                    kernels.quantized16Dot(Quantized16DotArguments(format: format, blocks: blocks, weights: w.baseAddress!, groups: groups,
                                                                   x: x16, xScales: s16, xSums: t16, y: &found16))
                    ReferenceKernels.quantized16Dot(Quantized16DotArguments(format: format, blocks: blocks, weights: w.baseAddress!,
                                                                            groups: groups, x: x16, xScales: s16, xSums: t16, y: &expected16))
                    kernels.quantizedDot(QuantizedDotArguments(format: format, blocks: blocks, weights: w.baseAddress!, groups: groups,
                                                               x: xq, xScales: xs, xSums: xt, y: &found))
                    ReferenceKernels.quantizedDot(QuantizedDotArguments(format: format, blocks: blocks, weights: w.baseAddress!, groups: groups,
                                                                        x: xq, xScales: xs, xSums: xt, y: &expected))
                }
                tally.compare(found, expected, atol: 1e-4 * Float(k).squareRoot(), rtol: 1e-5, "\(format) \(groups) groups x \(blocks) blocks")
                tally.compare(found16, expected16, atol: 1e-4 * Float(k).squareRoot(), rtol: 1e-5,
                              "\(format) 16-bit activations \(groups) groups x \(blocks) blocks")
                // 1 to 7 tokens in one pass (batched decode: quads, a pair, a single) match the reference
                // and equal each token run alone, bit for bit.
                let tokens = 7
                let (xb16, sb16, tb16) = randomActivations16(tokens: tokens, blocks: blocks, seed: 44)
                let ldy = 4 * groups + 3
                var expectedBatch = [Float](repeating: 0, count: tokens * ldy)
                weights.withUnsafeBytes { w in
                    ReferenceKernels.quantized16Dot(Quantized16DotArguments(
                        format: format, blocks: blocks, weights: w.baseAddress!, groups: groups, x: xb16, xScales: sb16, xSums: tb16,
                        y: &expectedBatch, tokens: tokens, ldx: k, lds: blocks, ldy: ldy))
                }
                for count in 1...tokens {
                    var batch = [Float](repeating: 0, count: tokens * ldy), alone = batch
                    weights.withUnsafeBytes { w in
                        kernels.quantized16Dot(Quantized16DotArguments(
                            format: format, blocks: blocks, weights: w.baseAddress!, groups: groups, x: xb16, xScales: sb16, xSums: tb16,
                            y: &batch, tokens: count, ldx: k, lds: blocks, ldy: ldy))
                        for t in 0..<count {
                            kernels.quantized16Dot(Quantized16DotArguments(
                                format: format, blocks: blocks, weights: w.baseAddress!, groups: groups, x: xb16, xScales: sb16, xSums: tb16,
                                y: &alone, tokens: count, ldx: k, lds: blocks, ldy: ldy).token(t))
                        }
                    }
                    let used = (0..<count).flatMap { t in (0..<(4 * groups)).map { t * ldy + $0 } }
                    tally.compare(used.map { batch[$0] }, used.map { expectedBatch[$0] }, atol: 1e-4 * Float(k).squareRoot(), rtol: 1e-5,
                                  "\(format) 16-bit activations, \(count) tokens in one pass, \(groups) groups x \(blocks) blocks")
                    tally.compare(used.map { batch[$0] }, used.map { alone[$0] }, atol: 0, rtol: 0,
                                  "\(format) 16-bit activations, \(count) tokens in one pass vs each alone (bitwise)")
                }
            }
        }
        return tally.result
    }

    /// Weights repacked in the lane layout (16 rows a group) times 1 to 19 tokens: against the
    /// reference, each token alone bit for bit, and for q4 and q8s (AVX-512, where the lane kernel is
    /// the C one) the 4-row layout's kernel bit for bit; each format also in its layout for 8-bit activations.
    public static func quantizedDotLanes(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "quantized dot, lanes", kernelSet: kernels.name)
        let shapes = [(1, 1), (2, 3), (1, 18), (3, 48)]  // (16-row groups, blocks)
        let cases = QuantizedFormat.allCases.flatMap { f in shapes.map { (f, $0.0, $0.1) } }
        for (format, laneGroups, blocks) in cases {
            let rows = 16 * laneGroups, k = 32 * blocks, stride = format.groupBlockBytes, laneStride = LaneLayout.blockBytes(format)
            // Random rows and sane f16 scales and minimums (±[2^-8, 2^-4]) in the 4-row layout, then the
            // same rows repacked.
            var grouped = [UInt8](repeating: 0, count: rows / 4 * blocks * stride)
            var lanes = [UInt8](repeating: 0, count: laneGroups * blocks * laneStride), quads = lanes
            var state: UInt64 = 777
            func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
            func half() -> UInt16 { UInt16(next() & 1 == 0 ? 0 : 0x8000) | UInt16(0x1C00 + Int(next() & 0x0F) * 0x80) }
            func put(_ bytes: inout [UInt8], _ at: Int, _ bits: UInt16) { bytes[at] = UInt8(bits & 0xFF); bytes[at + 1] = UInt8(bits >> 8) }
            for row in 0..<rows {
                let (r, j) = (row % 4, row % 16)
                for b in 0..<blocks {
                    let g4 = (row / 4 * blocks + b) * stride, gl = ((row / 16) * blocks + b) * laneStride
                    for i in 0..<32 {
                        let q = UInt8(truncatingIfNeeded: next()) & (format == .q4 ? 0x0F : 0xFF)
                        let (offset, high) = LaneLayout.valuePosition(format, row: j, value: i)
                        lanes[gl + offset] |= high ? q << 4 : q
                        let (at8, high8) = LaneLayout.valuePosition(format, row: j, value: i, int8: true)
                        quads[gl + at8] |= high8 ? q << 4 : format == .q4 ? q : q ^ 0x80
                        if format == .q4 { grouped[g4 + 16 * r + i % 16] |= i < 16 ? q : q << 4 } else { grouped[g4 + 32 * r + i] = q }
                    }
                    // 4-row layout: q4 d at 64 + 2r, m at 72 + 2r; q8s d at 128 + 2r; q8 d of each half at
                    // 128 + 4r (+2), m at 144 + 2r.
                    let d = half()
                    put(&grouped, g4 + (format == .q4 ? 64 : 128) + (format == .q8 ? 4 : 2) * r, d)
                    put(&lanes, gl + LaneLayout.scaleOffset(format, row: j), d)
                    put(&quads, gl + LaneLayout.scaleOffset(format, row: j), d)
                    if format == .q8 {
                        let d1 = half()
                        put(&grouped, g4 + 130 + 4 * r, d1)
                        put(&lanes, gl + LaneLayout.scaleOffset(format, row: j, value: 16), d1)
                        put(&quads, gl + LaneLayout.scaleOffset(format, row: j, value: 16), d1)
                    }
                    if let at = LaneLayout.minimumOffset(format, row: j) {
                        let m = half()
                        put(&grouped, g4 + (format == .q4 ? 72 : 144) + 2 * r, m)
                        put(&lanes, gl + at, m)
                        put(&quads, gl + at, m)
                    }
                }
            }
            let tokens = 19
            let (x16, s16, t16) = randomActivations16(tokens: tokens, blocks: blocks, seed: 45)
            let ldy = rows + 5
            var expected = [Float](repeating: 0, count: tokens * ldy), fourRow = expected
            lanes.withUnsafeBytes { w in
                ReferenceKernels.quantized16DotLanes(Quantized16DotArguments(
                    format: format, blocks: blocks, weights: w.baseAddress!, groups: laneGroups, x: x16, xScales: s16, xSums: t16,
                    y: &expected, tokens: tokens, ldx: k, lds: blocks, ldy: ldy))
            }
            grouped.withUnsafeBytes { w in
                kernels.quantized16Dot(Quantized16DotArguments(
                    format: format, blocks: blocks, weights: w.baseAddress!, groups: rows / 4, x: x16, xScales: s16, xSums: t16,
                    y: &fourRow, tokens: tokens, ldx: k, lds: blocks, ldy: ldy))
            }
            let counts = [1, 2, 3, 7, 8, 9, 16, 19]
            /// For each count: `run(weights, tokens, first token, y)` for `count` tokens in one call, held to
            /// `expected` and to each token run alone (bitwise), and to `bitwise` where given.
            func check(_ label: String, _ weights: [UInt8], expected: [Float], bitwise: [Float]? = nil,
                       _ run: (UnsafeRawPointer, Int, Int, UnsafeMutablePointer<Float>) -> Void) {
                for count in counts {
                    var batch = [Float](repeating: 0, count: tokens * ldy), alone = batch
                    weights.withUnsafeBytes { w in
                        batch.withUnsafeMutableBufferPointer { run(w.baseAddress!, count, 0, $0.baseAddress!) }
                        alone.withUnsafeMutableBufferPointer { y in
                            for t in 0..<count { run(w.baseAddress!, 1, t, y.baseAddress! + t * ldy) }
                        }
                    }
                    let used = (0..<count).flatMap { t in (0..<rows).map { t * ldy + $0 } }
                    let found = used.map { batch[$0] }
                    tally.compare(found, used.map { expected[$0] }, atol: 1e-4 * Float(k).squareRoot(), rtol: 1e-5,
                                  "\(label), \(count) tokens, \(laneGroups) lane groups x \(blocks) blocks")
                    tally.compare(found, used.map { alone[$0] }, atol: 0, rtol: 0, "\(label), \(count) tokens in one call vs each alone (bitwise)")
                    if let bitwise {
                        tally.compare(found, used.map { bitwise[$0] }, atol: 0, rtol: 0,
                                      "\(label), \(count) tokens, lane layout vs 4-row layout (bitwise)")
                    }
                }
            }
            check("\(format)", lanes, expected: expected, bitwise: kernels.name == "avx512" && format != .q8 ? fourRow : nil) { w, n, t0, y in
                x16.withUnsafeBufferPointer { x in s16.withUnsafeBufferPointer { sc in t16.withUnsafeBufferPointer { su in
                    kernels.quantized16DotLanes(Quantized16DotArguments(
                        format: format, blocks: blocks, weights: w, groups: laneGroups, x: x.baseAddress! + t0 * k,
                        xScales: sc.baseAddress! + t0 * blocks, xSums: su.baseAddress! + t0 * blocks, y: y, tokens: n, ldx: k,
                        lds: blocks, ldy: ldy))
                } } }
            }
            // 8-bit activations, each format in its own lane layout (the byte formats' biased, with the offsets).
            let (x8, s8, t8) = randomActivations(tokens: tokens, blocks: blocks, seed: 46) {
                ReferenceKernels.quantizeActivations($0, count: $1, q: $2, scales: $3, sums: $4)
            }
            let perBlock = LaneLayout.offsetsPerBlock(format)
            var offsets = [Int32](repeating: 0, count: tokens * blocks * perBlock)
            x8.withUnsafeBufferPointer { x in
                offsets.withUnsafeMutableBufferPointer { o in
                    for t in 0..<tokens where perBlock > 0 {
                        LaneLayout.biasOffsets(x.baseAddress! + t * k, count: k, perBlock: perBlock, into: o.baseAddress! + t * blocks * perBlock)
                    }
                }
            }
            var expected8 = [Float](repeating: 0, count: tokens * ldy)
            quads.withUnsafeBytes { w in
                expected8.withUnsafeMutableBufferPointer { y in
                    ReferenceKernels.quantizedDotLanes(QuantizedDotArguments(
                        format: format, blocks: blocks, weights: w.baseAddress!, groups: laneGroups, x: x8, xScales: s8, xSums: t8,
                        xOffsets: offsets, y: y.baseAddress!, tokens: tokens, ldx: k, lds: blocks, ldy: ldy))
                }
            }
            check("\(format) 8-bit activations", quads, expected: expected8) { w, n, t0, y in
                x8.withUnsafeBufferPointer { x in s8.withUnsafeBufferPointer { sc in t8.withUnsafeBufferPointer { su in
                    offsets.withUnsafeBufferPointer { o in
                        kernels.quantizedDotLanes(QuantizedDotArguments(
                            format: format, blocks: blocks, weights: w, groups: laneGroups, x: x.baseAddress! + t0 * k,
                            xScales: sc.baseAddress! + t0 * blocks, xSums: su.baseAddress! + t0 * blocks,
                            xOffsets: perBlock > 0 ? o.baseAddress! + t0 * blocks * perBlock : nil, y: y, tokens: n, ldx: k,
                            lds: blocks, ldy: ldy))
                    }
                } } }
            }
        }
        return tally.result
    }

    /// GEMM with W made block by block by a closure (the quantised-weight path), against the reference on
    /// the whole W; accumulating and not, with padded A and C.
    public static func gemmGeneratedWeights(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "gemm generated weights", kernelSet: kernels.name)
        for (index, (m, n, k)) in gemmShapes.enumerated() {
            let lda = k + 1, ldc = n + 2, accumulate = index % 2 == 1
            let a = randomFloats(m * lda, seed: 21), w = randomFloats(n * k, seed: 22)
            var found = randomFloats(m * ldc, seed: 23)
            var expected = found
            a.withUnsafeBufferPointer { a in
                w.withUnsafeBufferPointer { w in
                    let source = w.baseAddress!
                    func arguments(_ c: UnsafeMutablePointer<Float>) -> GEMMArguments {
                        GEMMArguments(m: m, n: n, k: k, a: a.baseAddress!, lda: lda, b: source, transposeB: true, c: c, ldc: ldc,
                                      accumulate: accumulate)
                    }
                    let rows = { (r0: Int, count: Int, p0: Int, kc: Int, destination: UnsafeMutablePointer<Float>) in
                        for r in 0..<count { (destination + r * kc).update(from: source + (r0 + r) * k + p0, count: kc) }
                    }
                    found.withUnsafeMutableBufferPointer { kernels.gemmGeneratedWeights(arguments($0.baseAddress!), rows: rows) }
                    expected.withUnsafeMutableBufferPointer { ReferenceKernels.gemmGeneratedWeights(arguments($0.baseAddress!), rows: rows) }
                }
            }
            tally.compare(found, expected, atol: 2e-6 * Float(k).squareRoot() + 1e-6, rtol: 1e-5, "\(m)x\(n)x\(k)")
        }
        return tally.result
    }

    public static func gemmHalf(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "gemm f16/bf16 weights", kernelSet: kernels.name)
        for format in [HalfFormat.f16, .bf16] {
            for (m, n, k) in [(1, 1, 1), (1, 37, 100), (1, 8, 1027), (2, 5, 9), (7, 33, 257), (50, 70, 300)] {
                let ldw = k + 3
                let w = randomFloats(n * ldw, seed: 11).map { format == .f16 ? halfBitsFromFloat($0) : bfloat16BitsFromFloat($0) }
                let a = randomFloats(m * k, seed: 12)
                var found = [Float](repeating: 0, count: m * n)
                var expected = found
                w.withUnsafeBytes { w in
                    a.withUnsafeBufferPointer { a in
                        func arguments(_ c: UnsafeMutablePointer<Float>) -> HalfGEMMArguments {
                            HalfGEMMArguments(m: m, n: n, k: k, a: a.baseAddress!, w: w.baseAddress!, ldw: ldw, format: format, c: c)
                        }
                        found.withUnsafeMutableBufferPointer { kernels.gemmHalf(arguments($0.baseAddress!)) }
                        expected.withUnsafeMutableBufferPointer { ReferenceKernels.gemmHalf(arguments($0.baseAddress!)) }
                    }
                }
                tally.compare(found, expected, atol: 2e-6 * Float(k).squareRoot() + 1e-6, rtol: 1e-5, "\(format) \(m)x\(n)x\(k)")
            }
        }
        return tally.result
    }

    /// Every one of the 65536 f16 and bf16 bit patterns must convert exactly (NaN stays NaN).
    public static func convert(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "f16/bf16 <-> f32", kernelSet: kernels.name)
        let bits = (0...UInt16.max).map { $0 }
        for format in [HalfFormat.f16, .bf16] {
            var found = [Float](repeating: 0, count: bits.count)
            var expected = found
            bits.withUnsafeBytes { source in
                kernels.convertToFloat(source.baseAddress!, format: format, &found, count: bits.count)
                ReferenceKernels.convertToFloat(source.baseAddress!, format: format, &expected, count: bits.count)
            }
            tally.compare(found, expected, atol: 0, rtol: 0, "\(format) all bit patterns")
        }
        // f32 -> f16 (the f16 KV cache's writes) must give `halfBitsFromFloat`'s bits: every half, the
        // midpoint above each (ties to even), values from far below the subnormals to past the largest
        // half, infinities and NaN (any NaN matches).
        let halves = bits.map(floatFromHalfBits).filter { !$0.isNaN }
        var floats = halves + halves.map { Float(bitPattern: $0.bitPattern + 0x1000) }
        for scale: Float in [1e-9, 1e-6, 1e-3, 1, 1e3, 7e4] { floats += randomFloats(1000, seed: 31, scale: scale) }
        floats += [.infinity, -.infinity, .nan, 65519, 65520, -65520, 1e30]
        var halfBits = [UInt16](repeating: 0, count: floats.count)
        kernels.convertToHalf(floats, &halfBits, count: floats.count)
        func comparable(_ h: UInt16) -> Float { h & 0x7c00 == 0x7c00 && h & 0x3ff != 0 ? .nan : Float(h) }
        tally.compare(halfBits.map(comparable), floats.map { comparable(halfBitsFromFloat($0)) }, atol: 0, rtol: 0, "f32 -> f16")
        return tally.result
    }

    // MARK: - Row-wise kernels

    public static let rowSizes = [1, 3, 7, 8, 15, 16, 17, 31, 33, 100, 127, 1000, 4099]

    /// Large logits, a fully masked (-inf) row that must give zeros (not NaN), and single masked entries.
    public static func softmax(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "softmax", kernelSet: kernels.name)
        for cols in rowSizes {
            let rows = 3
            var x = randomFloats(rows * cols, seed: UInt64(cols), scale: 30)
            x[0] = 80
            if cols > 2 {
                for i in 0..<cols { x[cols + i] = -.infinity }
                x[2 * cols + 1] = -.infinity
            }
            var found = [Float](repeating: .nan, count: x.count)
            var expected = found
            kernels.softmax(x, &found, rows: rows, cols: cols)
            ReferenceKernels.softmax(x, &expected, rows: rows, cols: cols)
            tally.compare(found, expected, atol: 1e-7, rtol: 2e-6, "cols=\(cols)")
        }
        return tally.result
    }

    public static func rmsNorm(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "rmsnorm", kernelSet: kernels.name)
        for cols in rowSizes {
            let rows = 5
            let x = randomFloats(rows * cols, seed: 21, scale: 4), w = randomFloats(cols, seed: 22)
            var found = [Float](repeating: 0, count: x.count)
            var expected = found
            kernels.rmsNorm(x, weight: w, &found, rows: rows, cols: cols, epsilon: 1e-6)
            ReferenceKernels.rmsNorm(x, weight: w, &expected, rows: rows, cols: cols, epsilon: 1e-6)
            tally.compare(found, expected, atol: 1e-6, rtol: 1e-5, "cols=\(cols)")
        }
        return tally.result
    }

    public static func layerNorm(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "layernorm", kernelSet: kernels.name)
        for cols in rowSizes {
            let rows = 5
            let x = randomFloats(rows * cols, seed: 21, scale: 4), w = randomFloats(cols, seed: 22), b = randomFloats(cols, seed: 23)
            for affine in [true, false] {
                var found = [Float](repeating: 0, count: x.count)
                var expected = found
                w.withUnsafeBufferPointer { w in
                    b.withUnsafeBufferPointer { b in
                        let (wp, bp) = affine ? (w.baseAddress, b.baseAddress) : (nil, nil)
                        kernels.layerNorm(x, weight: wp, bias: bp, &found, rows: rows, cols: cols, epsilon: 1e-5)
                        ReferenceKernels.layerNorm(x, weight: wp, bias: bp, &expected, rows: rows, cols: cols, epsilon: 1e-5)
                    }
                }
                tally.compare(found, expected, atol: 2e-6, rtol: 1e-5, "cols=\(cols) affine=\(affine)")
            }
        }
        return tally.result
    }

    public static func rope(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "rope", kernelSet: kernels.name)
        let configs: [(RoPEConfig, headDim: Int)] = [
            (RoPEConfig(rotaryDims: 64, base: 10000, layout: .neox), 64),
            (RoPEConfig(rotaryDims: 128, base: 500000, scaling: .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4,
                                                                       originalContext: 8192), layout: .neox), 128),
            (RoPEConfig(rotaryDims: 22, base: 10000, scaling: .linear(factor: 4), layout: .interleaved), 22),
            (RoPEConfig(rotaryDims: 18, base: 1_000_000, layout: .neox), 30),  // partial rotation
            (RoPEConfig(rotaryDims: 2, layout: .interleaved), 2),
        ]
        for (config, headDim) in configs {
            let tokens = 7, heads = 3
            let positions: [Int32] = [0, 1, 2, 100, 4095, 17, 3]
            let table = RoPETable(config: config, capacity: 4096)
            var found = randomFloats(tokens * heads * headDim, seed: 51)
            var expected = found
            table.cos.withUnsafeBufferPointer { cos in
                table.sin.withUnsafeBufferPointer { sin in
                    func arguments(_ x: UnsafeMutablePointer<Float>) -> RoPEArguments {
                        RoPEArguments(x: x, tokens: tokens, heads: heads, headDim: headDim, rotaryDims: config.rotaryDims,
                                      positions: positions, cos: cos.baseAddress!, sin: sin.baseAddress!, layout: config.layout)
                    }
                    found.withUnsafeMutableBufferPointer { kernels.rope(arguments($0.baseAddress!)) }
                    expected.withUnsafeMutableBufferPointer { ReferenceKernels.rope(arguments($0.baseAddress!)) }
                }
            }
            tally.compare(found, expected, atol: 1e-6, rtol: 1e-6, "\(config.layout) dims=\(config.rotaryDims)/\(headDim) \(config.scaling)")
        }
        return tally.result
    }

    // MARK: - Element-wise kernels

    static func activationInputs(_ count: Int) -> [Float] {
        var x = randomFloats(count, seed: 31, scale: 12)
        if count > 4 { x[0] = -100; x[1] = 100; x[2] = 0; x[3] = -88.5 }  // saturation and exp underflow
        return x
    }

    public static func activations(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "silu/gelu", kernelSet: kernels.name)
        for count in rowSizes {
            let x = activationInputs(count)
            for kind in Activation.allCases {
                var found = [Float](repeating: 0, count: count)
                var expected = found
                kernels.activation(kind, x, &found, count: count)
                ReferenceKernels.activation(kind, x, &expected, count: count)
                tally.compare(found, expected, atol: 2e-6, rtol: 2e-6, "\(kind) n=\(count)")
            }
        }
        return tally.result
    }

    public static func gatedActivations(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "swiglu/geglu", kernelSet: kernels.name)
        for count in rowSizes {
            let x = activationInputs(count), up = randomFloats(count, seed: 32, scale: 3)
            for kind in Activation.allCases {
                var found = [Float](repeating: 0, count: count)
                var expected = found
                kernels.gatedActivation(kind, gate: x, up: up, &found, count: count)
                ReferenceKernels.gatedActivation(kind, gate: x, up: up, &expected, count: count)
                tally.compare(found, expected, atol: 6e-6, rtol: 2e-6, "gated \(kind) n=\(count)")
            }
        }
        return tally.result
    }

    public static func add(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "residual add", kernelSet: kernels.name)
        for count in rowSizes {
            let a = randomFloats(count, seed: 41), b = randomFloats(count, seed: 42)
            var found = [Float](repeating: 0, count: count)
            var expected = found
            kernels.add(a, b, &found, count: count)
            ReferenceKernels.add(a, b, &expected, count: count)
            tally.compare(found, expected, atol: 0, rtol: 0, "n=\(count)")
        }
        return tally.result
    }

    public static func embedding(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "embedding gather", kernelSet: kernels.name)
        let vocabulary = 50, ids: [Int32] = [0, 49, 7, 7, 23]
        for dim in [1, 9, 64, 100] {
            let table = randomFloats(vocabulary * dim, seed: 43)
            let encoded: [(DType, [UInt8])] = [
                (.f32, table.withUnsafeBytes { Array($0) }),
                (.f16, table.map(halfBitsFromFloat).withUnsafeBytes { Array($0) }),
                (.bf16, table.map(bfloat16BitsFromFloat).withUnsafeBytes { Array($0) }),
            ]
            for (dtype, bytes) in encoded {
                var found = [Float](repeating: 0, count: ids.count * dim)
                var expected = found
                bytes.withUnsafeBytes { raw in
                    kernels.embeddingGather(table: raw.baseAddress!, dtype: dtype, dim: dim, ids: ids, count: ids.count, &found)
                    ReferenceKernels.embeddingGather(table: raw.baseAddress!, dtype: dtype, dim: dim, ids: ids, count: ids.count, &expected)
                }
                tally.compare(found, expected, atol: 0, rtol: 0, "\(dtype) dim=\(dim)")
            }
        }
        return tally.result
    }

    // MARK: - Attention building blocks

    public static func gemvTransposed(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "gemv transposed", kernelSet: kernels.name)
        for (n, k) in [(1, 1), (2, 7), (3, 64), (17, 33), (256, 128), (1001, 80)] {
            let ldw = k + n % 3
            let w = randomFloats(n * ldw, seed: 71), x = randomFloats(n, seed: 72)
            for accumulate in [false, true] {
                var found = randomFloats(k, seed: 73)
                var expected = found
                kernels.gemvTransposed(n: n, k: k, w: w, ldw: ldw, x: x, y: &found, accumulate: accumulate)
                ReferenceKernels.gemvTransposed(n: n, k: k, w: w, ldw: ldw, x: x, y: &expected, accumulate: accumulate)
                tally.compare(found, expected, atol: 2e-6 * Float(n).squareRoot() + 1e-6, rtol: 1e-5, "\(n)x\(k) acc=\(accumulate)")
            }
        }
        return tally.result
    }

    /// A GQA group's decode scores and weighted value sums (1 to 9 heads: the 4-head blocks and every
    /// remainder; depths that take the vector path and ones that do not).
    public static func groupAttention(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "group attention", kernelSet: kernels.name)
        for heads in [1, 2, 3, 4, 5, 9] {
            for (n, k) in [(1, 64), (2, 8), (7, 64), (21, 64), (33, 128), (512, 64), (5, 24), (3, 7)] {
                let ld = k + 5, ldq = k + 3, lds = n + 2
                let w = randomFloats(n * ld, seed: 74), q = randomFloats(heads * ldq, seed: 75)
                var found = [Float](repeating: 0, count: heads * lds), expected = found
                kernels.groupScores(heads: heads, n: n, k: k, q: q, ldq: ldq, w: w, ldw: ld, y: &found, ldy: lds)
                ReferenceKernels.groupScores(heads: heads, n: n, k: k, q: q, ldq: ldq, w: w, ldw: ld, y: &expected, ldy: lds)
                tally.compare(found, expected, atol: 2e-6 * Float(k).squareRoot() + 1e-6, rtol: 1e-5, "scores \(heads) heads \(n)x\(k)")
                // The same rows as IEEE halves (an f16 KV cache), against the reference over the widened halves.
                let halves = w.map(halfBitsFromFloat)
                kernels.groupScoresHalf(heads: heads, n: n, k: k, q: q, ldq: ldq, w: halves, ldw: ld, y: &found, ldy: lds)
                ReferenceKernels.groupScoresHalf(heads: heads, n: n, k: k, q: q, ldq: ldq, w: halves, ldw: ld, y: &expected, ldy: lds)
                tally.compare(found, expected, atol: 2e-6 * Float(k).squareRoot() + 1e-6, rtol: 1e-5, "f16 scores \(heads) heads \(n)x\(k)")
                let p = randomFloats(heads * lds, seed: 76)
                for accumulate in [false, true] {
                    var sums = randomFloats(heads * ldq, seed: 77)
                    var expectedSums = sums, halfSums = sums, expectedHalfSums = sums
                    kernels.groupWeightedSum(heads: heads, n: n, k: k, x: p, ldx: lds, w: w, ldw: ld, y: &sums, ldy: ldq, accumulate: accumulate)
                    ReferenceKernels.groupWeightedSum(heads: heads, n: n, k: k, x: p, ldx: lds, w: w, ldw: ld, y: &expectedSums, ldy: ldq,
                                                      accumulate: accumulate)
                    tally.compare(sums, expectedSums, atol: 2e-6 * Float(n).squareRoot() + 1e-6, rtol: 1e-5,
                                  "values \(heads) heads \(n)x\(k) acc=\(accumulate)")
                    kernels.groupWeightedSumHalf(heads: heads, n: n, k: k, x: p, ldx: lds, w: halves, ldw: ld, y: &halfSums, ldy: ldq,
                                                 accumulate: accumulate)
                    ReferenceKernels.groupWeightedSumHalf(heads: heads, n: n, k: k, x: p, ldx: lds, w: halves, ldw: ld, y: &expectedHalfSums,
                                                          ldy: ldq, accumulate: accumulate)
                    tally.compare(halfSums, expectedHalfSums, atol: 2e-6 * Float(n).squareRoot() + 1e-6, rtol: 1e-5,
                                  "f16 values \(heads) heads \(n)x\(k) acc=\(accumulate)")
                }
            }
        }
        return tally.result
    }

    /// The activations' backward passes (training) against the Double reference.
    public static func activationGradients(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "activation gradients", kernelSet: kernels.name)
        for kind in Activation.allCases {
            for count in [1, 7, 64, 1001, 70_000] {
                let x = randomFloats(count, seed: 91, scale: 6), dy = randomFloats(count, seed: 92)
                var found = randomFloats(count, seed: 93), expected = found
                kernels.activationGradient(kind, x: x, dy: dy, dx: &found, count: count)
                ReferenceKernels.activationGradient(kind, x: x, dy: dy, dx: &expected, count: count)
                tally.compare(found, expected, atol: 2e-6, rtol: 2e-5, "\(kind) x\(count)")
            }
        }
        return tally.result
    }

    /// The int8 KV cache's kernels: row quantisation (equal codes, or one step apart at a rounding tie
    /// reached through the reciprocal), and the block-scaled group scores and weighted value sums of decode
    /// (1, 3 and 5 heads; blocks of 16 take the AVX-512 kernels, 64-column slices and their remainders).
    public static func int8KV(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "int8 kv", kernelSet: kernels.name)
        for (n, k, block) in [(1, 1, 1), (2, 7, 7), (3, 64, 32), (17, 33, 33), (256, 128, 32), (1001, 80, 16), (5, 256, 32), (4, 64, 64), (33, 64, 16), (6, 80, 16), (9, 144, 16)] {
            let ldw = k + n % 3, blocks = (k + block - 1) / block, scaleStride = blocks + n % 2
            let source = randomFloats(n * ldw, seed: 81, scale: 2)
            var q1 = [Int8](repeating: 0, count: n * k), q2 = q1
            var d1 = [Float](repeating: 0, count: n), d2 = d1
            kernels.quantizeRowsInt8(source, rows: n, cols: k, ldx: ldw, q: &q1, scales: &d1)
            ReferenceKernels.quantizeRowsInt8(source, rows: n, cols: k, ldx: ldw, q: &q2, scales: &d2)
            tally.compare(q1.map(Float.init), q2.map(Float.init), atol: 1, rtol: 0, "quantize \(n)x\(k)")
            tally.compare(d1, d2, atol: 0, rtol: 1e-7, "scales \(n)x\(k)")
            // Strided rows and scales, as a token-major cache holds them.
            var w = [Int8](repeating: 0, count: n * ldw)
            for i in 0..<n { for j in 0..<k { w[i * ldw + j] = q2[i * k + j] } }
            let scales = randomFloats(n * scaleStride, seed: 85, scale: 0.02)
            // A GQA group's heads (1, 3 and 5: the 4-head blocks and their remainders).
            for heads in [1, 3, 5] {
                let ldq = k + 3, lds = n + 2
                let q = randomFloats(heads * ldq, seed: 82), p = randomFloats(heads * lds, seed: 83)
                var found = [Float](repeating: 0, count: heads * lds), expected = found
                kernels.groupScoresInt8(heads: heads, n: n, k: k, q: q, ldq: ldq, w: w, ldw: ldw, scales: scales, scaleStride: scaleStride,
                                        block: block, y: &found, ldy: lds)
                ReferenceKernels.groupScoresInt8(heads: heads, n: n, k: k, q: q, ldq: ldq, w: w, ldw: ldw, scales: scales,
                                                 scaleStride: scaleStride, block: block, y: &expected, ldy: lds)
                tally.compare(found, expected, atol: 2e-5 * Float(k).squareRoot(), rtol: 1e-5, "scores \(heads) heads \(n)x\(k) block \(block)")
                for accumulate in [false, true] {
                    var found = randomFloats(heads * ldq, seed: 84), expected = found
                    kernels.groupWeightedSumInt8(heads: heads, n: n, k: k, x: p, ldx: lds, w: w, ldw: ldw, scales: scales,
                                                 scaleStride: scaleStride, block: block, y: &found, ldy: ldq, accumulate: accumulate)
                    ReferenceKernels.groupWeightedSumInt8(heads: heads, n: n, k: k, x: p, ldx: lds, w: w, ldw: ldw, scales: scales,
                                                          scaleStride: scaleStride, block: block, y: &expected, ldy: ldq,
                                                          accumulate: accumulate)
                    tally.compare(found, expected, atol: 2e-5 * Float(n).squareRoot(), rtol: 1e-5,
                                  "values \(heads) heads \(n)x\(k) block \(block) acc=\(accumulate)")
                }
            }
        }
        return tally.result
    }

    public static func scaleScores(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "attention score scale", kernelSet: kernels.name)
        for (rows, cols) in [(1, 1), (3, 17), (8, 64), (5, 131)] {
            for softcap: Float in [0, 30, 5] {
                let ld = cols + 2
                var found = randomFloats(rows * ld, seed: 74, scale: 200)
                var expected = found
                kernels.scaleScores(&found, rows: rows, cols: cols, ld: ld, scale: 0.125, softcap: softcap)
                ReferenceKernels.scaleScores(&expected, rows: rows, cols: cols, ld: ld, scale: 0.125, softcap: softcap)
                tally.compare(found, expected, atol: 2e-6 * max(1, softcap), rtol: 2e-6, "\(rows)x\(cols) softcap=\(softcap)")
            }
        }
        return tally.result
    }

    /// Two online steps over a row, including masked entries and rows that are fully masked so far.
    public static func onlineSoftmax(_ kernels: any KernelSet.Type) -> KernelCheckResult {
        var tally = Tally(kernel: "online softmax", kernelSet: kernels.name)
        for (rows, cols) in [(1, 1), (3, 17), (4, 64), (2, 100)] {
            let ld = cols + 1
            var blocks = [randomFloats(rows * ld, seed: 75, scale: 20), randomFloats(rows * ld, seed: 76, scale: 20)]
            for j in 0..<cols { blocks[0][j] = -.infinity }  // row 0 fully masked in the first block
            if cols > 3 { blocks[1][ld + 2] = -.infinity; blocks[1][ld] = 90 }
            var state = [[Float]](repeating: [], count: 2)
            for (index, run) in [(0, true), (1, false)] {
                _ = index
                var m = [Float](repeating: -.infinity, count: rows), l = [Float](repeating: 0, count: rows)
                var c = [Float](repeating: 0, count: rows)
                var out: [Float] = []
                for block in blocks {
                    var b = block
                    if run { kernels.onlineSoftmax(&b, rows: rows, cols: cols, ld: ld, rowMax: &m, rowSum: &l, correction: &c) }
                    else { ReferenceKernels.onlineSoftmax(&b, rows: rows, cols: cols, ld: ld, rowMax: &m, rowSum: &l, correction: &c) }
                    out += (0..<rows).flatMap { r in b[(r * ld)..<(r * ld + cols)] } + c
                }
                state[index] = out + m + l
            }
            tally.compare(state[0], state[1], atol: 1e-7, rtol: 3e-6, "\(rows)x\(cols)")
        }
        return tally.result
    }
}
