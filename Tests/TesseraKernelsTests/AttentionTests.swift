// Attention: flash (tiled and decode) and standard attention against the Double reference over shapes
// and masks, and the backward passes against finite differences of the reference.
//
// Tolerances: outputs are convex combinations of V values in [-1, 1]; f32 accumulation over up to a
// few hundred keys keeps them within 2e-5 absolute + 1e-4 relative of the Double oracle (observed worst
// ~3e-6). Gradients: within 1e-4 absolute + 1e-3 relative of central differences (h = 1e-4, in Double).
import Foundation
import TesseraCore
import TesseraKernels
import XCTest

struct AttentionCase {
    var shape: AttentionShape
    var q: [Float], k: [Float], v: [Float]

    init(_ shape: AttentionShape, seed: UInt64, scale: Float = 1) {
        self.shape = shape
        q = randomFloats(shape.queryCount, seed: seed, scale: scale)
        k = randomFloats(shape.keyCount, seed: seed + 1, scale: scale)
        v = randomFloats(shape.keyCount, seed: seed + 2)
    }

    func reference() -> (output: [Float], weights: [Float]) {
        let r = ReferenceAttention.forward(q: q.map(Double.init), k: k.map(Double.init), v: v.map(Double.init), shape: shape)
        return (r.output.map(Float.init), r.weights.map(Float.init))
    }

    /// Runs `body` with buffers over q, k, v and fresh output / log-sum-exp arrays; returns them.
    func run(_ body: (AttentionBuffers) -> Void) -> (output: [Float], logSumExp: [Float]) {
        var output = [Float](repeating: .nan, count: shape.queryCount)
        var lse = [Float](repeating: .nan, count: shape.batch * shape.queryHeads * shape.queries)
        q.withUnsafeBufferPointer { q in
            k.withUnsafeBufferPointer { k in
                v.withUnsafeBufferPointer { v in
                    output.withUnsafeMutableBufferPointer { o in
                        lse.withUnsafeMutableBufferPointer { l in
                            body(AttentionBuffers(q: q.baseAddress!, k: k.baseAddress!, v: v.baseAddress!,
                                                  output: o.baseAddress!, logSumExp: l.baseAddress!))
                        }
                    }
                }
            }
        }
        return (output, lse)
    }
}

final class AttentionTests: XCTestCase {
    static let masks: [(String, AttentionMask)] = [
        ("none", AttentionMask(causal: false)),
        ("causal", AttentionMask()),
        ("window 7", AttentionMask(window: 7)),
        ("window 50 + 4 sinks", AttentionMask(window: 50, sinks: 4)),
        ("window 1", AttentionMask(window: 1)),
    ]
    /// (batch, queries, keys, queryHeads, kvHeads, headDim): N = 1, non-multiples of the tiles (64 keys
    /// up to 512 keys, 128 above), multi-tile lengths, MHA, GQA (3:1, 4:1) and MQA.
    static let shapes: [(Int, Int, Int, Int, Int, Int)] = [
        (1, 1, 1, 1, 1, 8), (1, 1, 9, 2, 1, 16), (2, 5, 5, 4, 2, 8), (1, 65, 65, 3, 1, 32),
        (1, 130, 300, 2, 2, 64), (1, 200, 200, 4, 1, 24), (1, 3, 700, 6, 2, 64), (2, 129, 129, 2, 1, 128),
        (1, 140, 600, 4, 2, 32),
    ]

    func testFlashAndStandardMatchTheReferenceForEveryMaskAndLayout() {
        for (mi, (maskName, mask)) in Self.masks.enumerated() {
            for (si, (batch, queries, keys, qh, kvh, d)) in Self.shapes.enumerated() {
                let shape = AttentionShape(batch: batch, queries: queries, keys: keys, queryHeads: qh, kvHeads: kvh, headDim: d,
                                           softcap: si % 3 == 2 ? 20 : nil, mask: mask, kvLayout: si % 2 == 1 ? .headMajor : .tokenMajor)
                let c = AttentionCase(shape, seed: UInt64(10 * mi + si))
                let expected = c.reference()
                let flash = c.run { FlashAttention.tiled(shape, $0) }
                assertClose(flash.output, expected.output, atol: 2e-5, "flash, \(maskName), \(shape)")
                var weights = [Float](repeating: 0, count: expected.weights.count)
                let standard = weights.withUnsafeMutableBufferPointer { w in
                    c.run { StandardAttention.forward(shape, $0, weights: w.baseAddress!) }
                }
                assertClose(standard.output, expected.output, atol: 2e-5, "standard, \(maskName), \(shape)")
                assertClose(weights, expected.weights, atol: 1e-5, "standard weights, \(maskName), \(shape)")
                assertClose(standard.logSumExp, flash.logSumExp, atol: 1e-4, "log-sum-exp, \(maskName), \(shape)")
            }
        }
    }

    func testDecodePathSplitsKeysAndMatchesTheReference() {
        for (maskName, mask) in Self.masks {
            for (index, (queries, keys, qh, kvh)) in [(1, 1, 2, 1), (3, 37, 9, 3), (4, 130, 4, 2), (1, 1024, 3, 1), (2, 1500, 4, 2), (4, 2049, 2, 2),
                                                                     (1, 3000, 9, 3), (1, 5000, 16, 8)].enumerated() {
                let shape = AttentionShape(queries: queries, keys: keys, queryHeads: qh, kvHeads: kvh, headDim: 64, mask: mask,
                                           kvLayout: index % 2 == 0 ? .headMajor : .tokenMajor)
                let c = AttentionCase(shape, seed: 99)
                let decoded = c.run { FlashAttention.decode(shape, $0) }
                let tiled = c.run { FlashAttention.tiled(shape, $0) }
                assertClose(decoded.output, c.reference().output, atol: 2e-5, "decode, \(maskName), \(shape)")
                assertClose(decoded.logSumExp, tiled.logSumExp, atol: 1e-4, "decode lse, \(maskName), \(shape)")
            }
        }
    }

    /// PagedAttention over scattered pages of 16 tokens, token-major and head-major (a pool of 9
    /// blocks, the sequence's pages taken out of order), decode (up to 4 queries, the kernel chosen by
    /// the call) and prefill (gathered, tiled): the same output as the reference on the contiguous rows.
    func testPagedAttentionMatchesTheReferenceInBothLayouts() {
        let pageSize = 16, poolBlocks = 9, order = [7, 2, 5, 0, 8, 3]
        for (queries, keys, qh, kvh, decode) in [(1, 37, 3, 1, true), (3, 70, 4, 2, true), (3, 70, 4, 2, false), (20, 90, 6, 3, false)] {
            for layout in [KVLayout.tokenMajor, .headMajor] {
                let shape = AttentionShape(queries: queries, keys: keys, queryHeads: qh, kvHeads: kvh, headDim: 16,
                                           mask: AttentionMask(queryOffset: keys - queries))
                let c = AttentionCase(shape, seed: 7)  // k, v contiguous token-major (keys, kvh, 16)
                let d = 16, row = kvh * d, slots = poolBlocks * pageSize
                var poolK = [Float](repeating: .nan, count: slots * row), poolV = poolK
                for t in 0..<keys {
                    let slot = order[t / pageSize] * pageSize + t % pageSize
                    for h in 0..<kvh {
                        let to = layout == .tokenMajor ? slot * row + h * d : (h * slots + slot) * d
                        for e in 0..<d { poolK[to + e] = c.k[t * row + h * d + e]; poolV[to + e] = c.v[t * row + h * d + e] }
                    }
                }
                var paged = shape
                paged.kvLayout = layout
                if layout == .headMajor { paged.kvHeadStride = slots * d }
                var output = [Float](repeating: .nan, count: shape.queryCount)
                poolK.withUnsafeBufferPointer { k in
                    poolV.withUnsafeBufferPointer { v in
                        c.q.withUnsafeBufferPointer { q in
                            output.withUnsafeMutableBufferPointer { o in
                                let step = layout == .tokenMajor ? pageSize * row : pageSize * d
                                let pages = (0..<((keys + pageSize - 1) / pageSize)).map { p in
                                    AttentionKV.float32(keys: k.baseAddress! + order[p] * step, values: v.baseAddress! + order[p] * step)
                                }
                                PagedAttention.forward([PagedAttentionCall(shape: paged, q: q.baseAddress!, pages: pages, pageSize: pageSize,
                                                                           output: o.baseAddress!, decode: decode)])
                            }
                        }
                    }
                }
                assertClose(output, c.reference().output, atol: 2e-5, "paged \(layout), decode \(decode), \(shape)")
            }
        }
    }

    func testDecodeChunksGrowWithTheCacheButLeaveEveryThreadWork() {
        let threads = ThreadPool.shared.threadCount
        XCTAssertEqual(FlashAttention.decodeChunk(keys: 1024, streams: 1), FlashAttention.decodeChunk)
        XCTAssertEqual(FlashAttention.decodeChunk(keys: 1 << 24, streams: 8), FlashAttention.maximumDecodeChunk)
        for (keys, streams) in [(5000, 8), (16_384, 8), (16_384, 3), (4096, 32), (100_000, 1)] {
            let chunk = FlashAttention.decodeChunk(keys: keys, streams: streams)
            XCTAssertEqual(chunk & (chunk - 1), 0, "a power of two: \(chunk)")
            XCTAssert((FlashAttention.decodeChunk...FlashAttention.maximumDecodeChunk).contains(chunk))
            // Above the minimum, a chunk leaves at least eight tasks per thread.
            if chunk > FlashAttention.decodeChunk { XCTAssertGreaterThanOrEqual(keys * streams / chunk, 8 * threads, "\(keys) keys x \(streams)") }
        }
        // The decode test's largest case takes chunks longer than the minimum (on up to 4 threads).
        if threads <= 4 { XCTAssertGreaterThan(FlashAttention.decodeChunk(keys: 5000, streams: 8), FlashAttention.decodeChunk) }
    }

    func testFullyMaskedRowsGiveZerosNotNaN() {
        // Batch element 1 has no keys at all (padding); element 0 has 3 of 10.
        let shape = AttentionShape(batch: 2, queries: 4, keys: 10, queryHeads: 2, headDim: 8,
                                   mask: AttentionMask(causal: false, keyLengths: [3, 0]))
        let c = AttentionCase(shape, seed: 5)
        for (name, result) in [("flash", c.run { FlashAttention.tiled(shape, $0) }), ("standard", c.run { StandardAttention.forward(shape, $0) })] {
            XCTAssertFalse(result.output.contains { $0.isNaN }, name)
            XCTAssertEqual(Array(result.output[(shape.queryCount / 2)...]), [Float](repeating: 0, count: shape.queryCount / 2), name)
            assertClose(result.output, c.reference().output, atol: 2e-5, "\(name) with padding")
        }
    }

    func testLargeLogitsStayStable() {
        // Scores of size ~1e4 overflow exp() unless the maximum is subtracted first.
        let shape = AttentionShape(queries: 70, keys: 140, queryHeads: 2, headDim: 32, scale: 1, mask: AttentionMask(causal: false))
        let c = AttentionCase(shape, seed: 7, scale: 20)
        let flash = c.run { FlashAttention.tiled(shape, $0) }
        XCTAssertFalse(flash.output.contains { !$0.isFinite })
        assertClose(flash.output, c.reference().output, atol: 2e-5, "large logits")
    }

    func testShapeValidation() {
        XCTAssertThrowsError(try AttentionShape(queries: 4, keys: 4, queryHeads: 3, kvHeads: 2, headDim: 8).validate())
        XCTAssertThrowsError(try AttentionShape(queries: 5, keys: 4, queryHeads: 2, headDim: 8).validate())
        XCTAssertThrowsError(try AttentionShape(batch: 2, queries: 4, keys: 4, queryHeads: 2, headDim: 8,
                                                mask: AttentionMask(keyLengths: [4])).validate())
        XCTAssertThrowsError(try AttentionShape(queries: 4, keys: 4, queryHeads: 2, headDim: 8, mask: AttentionMask(window: 0)).validate())
        XCTAssertNoThrow(try AttentionShape(queries: 4, keys: 9, queryHeads: 6, kvHeads: 2, headDim: 8).validate())
    }

    // MARK: - Backward

    /// dL/dq, dL/dk, dL/dv of L = Σ O ∘ R by central differences of the Double reference.
    func finiteDifferences(_ c: AttentionCase, outputGradient r: [Double]) -> (dq: [Float], dk: [Float], dv: [Float]) {
        let base = [c.q.map(Double.init), c.k.map(Double.init), c.v.map(Double.init)]
        func loss(_ x: [[Double]]) -> Double {
            zip(ReferenceAttention.forward(q: x[0], k: x[1], v: x[2], shape: c.shape).output, r).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let h = 1e-4
        func derivatives(of input: Int) -> [Float] {
            (0..<base[input].count).map { i in
                var up = base, down = base
                up[input][i] += h
                down[input][i] -= h
                return Float((loss(up) - loss(down)) / (2 * h))
            }
        }
        return (derivatives(of: 0), derivatives(of: 1), derivatives(of: 2))
    }

    func gradients(_ c: AttentionCase, _ r: [Float], flash: Bool,
                   schedule: AttentionBackwardSchedule = .automatic) -> (dq: [Float], dk: [Float], dv: [Float]) {
        var dq = [Float](repeating: .nan, count: c.q.count), dk = [Float](repeating: .nan, count: c.k.count)
        var dv = [Float](repeating: .nan, count: c.v.count)
        _ = c.run { buffers in
            if flash { FlashAttention.tiled(c.shape, buffers) } else { StandardAttention.forward(c.shape, buffers) }
            r.withUnsafeBufferPointer { r in
                dq.withUnsafeMutableBufferPointer { dq in
                    dk.withUnsafeMutableBufferPointer { dk in
                        dv.withUnsafeMutableBufferPointer { dv in
                            let grads = AttentionGradients(outputGradient: r.baseAddress!, dq: dq.baseAddress!, dk: dk.baseAddress!, dv: dv.baseAddress!)
                            if flash { FlashAttention.backward(c.shape, buffers, grads, schedule: schedule) } else { StandardAttention.backward(c.shape, buffers, grads) }
                        }
                    }
                }
            }
        }
        return (dq, dk, dv)
    }

    func testBackwardMatchesFiniteDifferences() {
        let masks = [AttentionMask(causal: false), AttentionMask(), AttentionMask(window: 3, sinks: 1),
                     AttentionMask(causal: false, keyLengths: [6, 2])]
        for (index, mask) in masks.enumerated() {
            let shape = AttentionShape(batch: 2, queries: 5, keys: 7, queryHeads: 4, kvHeads: 2, headDim: 8,
                                       softcap: index == 1 ? 2 : nil, mask: mask, kvLayout: index == 2 ? .headMajor : .tokenMajor)
            let c = AttentionCase(shape, seed: UInt64(40 + index))
            let r = randomFloats(shape.queryCount, seed: 77)
            let expected = finiteDifferences(c, outputGradient: r.map(Double.init))
            for (flash, schedule) in [(true, AttentionBackwardSchedule.perHead), (true, .twoPasses), (false, .automatic)] {
                let found = gradients(c, r, flash: flash, schedule: schedule)
                let name = "\(flash ? "flash \(schedule)" : "standard") backward, mask \(index)"
                assertCloseRelative(found.dq, expected.dq, "\(name) dQ")
                assertCloseRelative(found.dk, expected.dk, "\(name) dK")
                assertCloseRelative(found.dv, expected.dv, "\(name) dV")
            }
        }
    }

    func testFlashBackwardMatchesStandardAcrossTiles() {
        for (queries, keys, mask) in [(150, 150, AttentionMask()), (70, 260, AttentionMask(window: 40, sinks: 2)),
                                      (129, 129, AttentionMask(causal: false)), (600, 600, AttentionMask())] {
            let shape = AttentionShape(queries: queries, keys: keys, queryHeads: 6, kvHeads: 2, headDim: 32, mask: mask)
            let c = AttentionCase(shape, seed: 3)
            let r = randomFloats(shape.queryCount, seed: 4)
            let standard = gradients(c, r, flash: false)
            for schedule in [AttentionBackwardSchedule.perHead, .twoPasses] {
                let flash = gradients(c, r, flash: true, schedule: schedule)
                assertClose(flash.dq, standard.dq, atol: 1e-5, "dQ \(shape) \(schedule)")
                assertClose(flash.dk, standard.dk, atol: 1e-5, "dK \(shape) \(schedule)")
                assertClose(flash.dv, standard.dv, atol: 1e-5, "dV \(shape) \(schedule)")
            }
        }
    }

    func assertCloseRelative(_ found: [Float], _ expected: [Float], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(found.count, expected.count, message, file: file, line: line)
        for (i, (f, e)) in zip(found, expected).enumerated() where !(abs(f - e) <= 1e-4 + 1e-3 * abs(e)) {
            XCTFail("\(message): [\(i)] found \(f), expected \(e)", file: file, line: line)
            return
        }
    }
}

final class AttentionTensorAPITests: XCTestCase {
    func testTensorEntryPointChecksShapesAndAgreesAcrossImplementations() throws {
        let shape = AttentionShape(batch: 1, queries: 6, keys: 10, queryHeads: 4, kvHeads: 2, headDim: 8)
        let q = Tensor(shape: [1, 6, 4, 8], values: randomFloats(192, seed: 1))
        let k = Tensor(shape: [1, 10, 2, 8], values: randomFloats(160, seed: 2))
        let v = Tensor(shape: [1, 10, 2, 8], values: randomFloats(160, seed: 3))
        let flash = try Kernels.attention(q: q, k: k, v: v, shape: shape)
        let standard = try Kernels.attention(q: q, k: k, v: v, shape: shape, implementation: .standard, returnWeights: true)
        assertClose(flash.output.toFloats(), standard.output.toFloats(), atol: 1e-5, "flash vs standard")
        let weights = try XCTUnwrap(standard.weights)
        XCTAssertEqual(weights.shape, [1, 4, 6, 10])
        // Each row of weights sums to 1; the first query (position 4) sees keys 0...4 only.
        XCTAssertEqual((0..<10).reduce(Float(0)) { $0 + weights[0, 1, 0, $1] }, 1, accuracy: 1e-5)
        XCTAssertEqual(weights[0, 1, 0, 5], 0)
        XCTAssertThrowsError(try Kernels.attention(q: q, k: v.transposed(1, 2), v: v, shape: shape))
        XCTAssertThrowsError(try Kernels.attention(q: q, k: k, v: v, shape: shape, returnWeights: true))
    }
}
