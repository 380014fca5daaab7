// The KV cache kinds against their references: ring buffers equal full attention with a sliding-window
// mask (KVCacheOptions.maskOnly keeps every token and only masks); a sink cache equals full attention
// with the matching sinks + window mask until tokens are evicted, and after that equals attention over
// the cached tokens re-rotated to their cache positions (StreamingLLM); int8 rows stay within a stated
// tolerance of f32; memory accounting and typed errors.
import Foundation
import TesseraCore
import TesseraKVCache
import TesseraKernels
import TesseraModels
import XCTest

final class KVCacheKindsTests: XCTestCase {
    func load(_ name: String) throws -> DecoderModel {
        try ModelRegistry.load(path: goldensDirectory().appendingPathComponent(name).path, precision: .exact)
    }

    func randomTokens(_ count: Int, seed: UInt64) -> [Int32] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int32((state >> 33) % 256)
        }
    }

    /// Logits of `tokens` fed as a prefill of 11, a chunk of 3, then one token at a time.
    func incrementalLogits(_ model: DecoderModel, _ tokens: [Int32], cache: any KVCache) throws -> [Float] {
        var rows = try model.forward(Array(tokens[..<11]), cache: cache, logits: .all)
        rows += try model.forward(Array(tokens[11..<14]), cache: cache, logits: .all)
        for t in 14..<tokens.count { rows += try model.forward([tokens[t]], cache: cache, logits: .all) }
        return rows
    }

    func maxDifference(_ a: [Float], _ b: [Float], rows: Range<Int>? = nil, vocab: Int) -> Float {
        var worst: Float = 0
        let range = rows.map { ($0.lowerBound * vocab)..<($0.upperBound * vocab) } ?? a.indices
        for i in range { worst = max(worst, abs(a[i] - b[i])) }
        return worst
    }

    func testRingBuffersEqualFullAttentionWithASlidingWindowMask() throws {
        // Gemma 3's local layers and Mistral's (window 8, from their configs), and a window forced on Llama.
        for (name, policy) in [("tiny-gemma3", KVLayerPolicy.full), ("tiny-mistral", .full), ("tiny-llama", .window(6)),
                               ("tiny-qwen2", .window(5))] {
            let model = try load(name)
            let tokens = randomTokens(48, seed: 7)
            let ring = try model.makeCache(KVCacheOptions(policy: policy, maxChunk: 4))
            let reference = try model.makeCache(KVCacheOptions(policy: policy, maskOnly: true))
            XCTAssertNotEqual(ring.maxChunk, Int.max, name)
            let found = try incrementalLogits(model, tokens, cache: ring)
            let expected = try model.forward(tokens, cache: reference, logits: .all)
            XCTAssertLessThan(maxDifference(found, expected, vocab: 256), 1e-4, "\(name) \(policy)")
            // The ring holds under twice its window, not the sequence.
            XCTAssertLessThan(ring.allocatedBytes, reference.allocatedBytes, name)
        }
    }

    func testSinkCacheEqualsTheMatchingMaskUntilEviction() throws {
        let model = try load("tiny-llama")
        let tokens = randomTokens(40, seed: 11)
        let sinks = try model.makeCache(KVCacheOptions(policy: .sinks(2, window: 6), maxChunk: 4))
        let reference = try model.makeCache(KVCacheOptions(policy: .sinks(2, window: 6), maskOnly: true))
        let found = try incrementalLogits(model, tokens, cache: sinks)
        let expected = try model.forward(tokens, cache: reference, logits: .all)
        // Positions 0...7 (2 sinks + 6) evict nothing: the same attention exactly.
        XCTAssertLessThan(maxDifference(found, expected, rows: 0..<8, vocab: 256), 1e-4)
        // After eviction the sink tokens are nearer in the cache than in the text, so the logits differ.
        XCTAssertGreaterThan(maxDifference(found, expected, rows: 8..<40, vocab: 256), 1e-3)
        XCTAssertEqual(sinks.length, 40)
    }

    /// An f32 cache holds each head's slots contiguously (head-major). Growing from 5 slots, fed chunks
    /// of every size up to a decode over more than 1,024 keys (the split-key path), it gives the
    /// attention of the same keys and values passed token-major.
    func testHeadMajorRowsEqualTheTokenMajorKeysAsTheyGrow() throws {
        let heads = 4, kvHeads = 2, d = 16, n = 1100
        let q = KernelConformance.randomFloats(n * heads * d, seed: 4)
        let k = KernelConformance.randomFloats(n * kvHeads * d, seed: 5), v = KernelConformance.randomFloats(n * kvHeads * d, seed: 6)
        let cache = try LayeredKVCache(policies: [.full], kvHeads: kvHeads, headDim: d, maxTokens: n, initialCapacity: 5)
        let workspace = CacheAttention.Workspace()
        var start = 0, worst: Float = 0, step = 0
        let sizes = [1, 3, 7, 2, 300, 1, 1, 500, 4]
        while start < n {
            let T = start >= 1090 ? 1 : min(sizes[step % sizes.count], n - start)
            step += 1
            try cache.reserve(T)
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    cache.append(layer: 0, keys: kp.baseAddress! + start * kvHeads * d, values: vp.baseAddress! + start * kvHeads * d, count: T)
                }
            }
            var found = [Float](repeating: 0, count: T * heads * d), expected = found
            let segments = cache.segments(layer: 0)
            XCTAssertEqual(segments.first?.kvLayout, .headMajor)
            let shape = AttentionShape(queries: T, keys: start + T, queryHeads: heads, kvHeads: kvHeads, headDim: d, scale: 0.25,
                                       mask: AttentionMask(causal: true))
            q.withUnsafeBufferPointer { qp in
                let queries = qp.baseAddress! + start * heads * d
                let query = CacheAttention.Query(q: queries, unrotated: nil, start: start, tokens: T, heads: heads, kvHeads: kvHeads,
                                                 headDim: d, scale: 0.25, softcap: nil, window: nil, rope: nil)
                found.withUnsafeMutableBufferPointer { out in
                    CacheAttention.forward(query, segments: segments, output: out.baseAddress!, workspace: workspace)
                }
                k.withUnsafeBufferPointer { kp in
                    v.withUnsafeBufferPointer { vp in
                        expected.withUnsafeMutableBufferPointer { out in
                            FlashAttention.forward(shape, AttentionBuffers(q: queries, k: kp.baseAddress!, v: vp.baseAddress!,
                                                                           output: out.baseAddress!))
                        }
                    }
                }
            }
            for i in found.indices { worst = max(worst, abs(found[i] - expected[i])) }
            cache.commit(T)
            start += T
        }
        XCTAssertLessThan(worst, 1e-5)
    }

    /// CacheAttention over a sink cache equals plain attention over the cached tokens with every key
    /// re-rotated to its cache position and the query at its own (StreamingLLM's definition).
    func testSinkAttentionEqualsRerotatingTheCachedKeys() throws {
        let heads = 4, kvHeads = 2, d = 16, sinkCount = 3, window = 7, n = 30
        let rope = RoPETable(config: RoPEConfig(rotaryDims: d, base: 10000, layout: .neox), capacity: 64)
        let qRaw = KernelConformance.randomFloats(n * heads * d, seed: 1)
        let kRaw = KernelConformance.randomFloats(n * kvHeads * d, seed: 2)
        let v = KernelConformance.randomFloats(n * kvHeads * d, seed: 3)
        for type in KVElementType.allCases {
            let cache = try LayeredKVCache(policies: [.sinks(sinkCount, window: window)], kvHeads: kvHeads, headDim: d,
                                           elementType: type, maxTokens: Int.max, maxChunk: 4)
            let workspace = CacheAttention.Workspace()
            var output = [Float](repeating: 0, count: n * heads * d)
            var start = 0
            for size in [4, 1, 3, 4, 4, 2, 4, 4, 4] where start < n {
                let T = min(size, n - start)
                let positions = (0..<T).map { Int32(start + $0) }
                var q = Array(qRaw[(start * heads * d)..<((start + T) * heads * d)])
                var k = Array(kRaw[(start * kvHeads * d)..<((start + T) * kvHeads * d)])
                let unrotated = q
                rope.apply(&q, heads: heads, headDim: d, tokens: T, positions: positions)
                rope.apply(&k, heads: kvHeads, headDim: d, tokens: T, positions: positions)
                try cache.reserve(T)
                cache.append(layer: 0, keys: k, values: Array(v[(start * kvHeads * d)..<((start + T) * kvHeads * d)]), count: T)
                let query = CacheAttention.Query(q: q, unrotated: unrotated, start: start, tokens: T, sinks: sinkCount, heads: heads,
                                                 kvHeads: kvHeads, headDim: d, scale: 0.25, softcap: nil, window: window, rope: rope)
                output.withUnsafeMutableBufferPointer { out in
                    CacheAttention.forward(query, segments: cache.segments(layer: 0), output: out.baseAddress! + start * heads * d,
                                           workspace: workspace)
                }
                cache.commit(T)
                start += T
            }
            // The reference, query by query.
            var worst: Float = 0
            for p in 0..<n {
                let recent = max(sinkCount, p - window + 1)
                let held = Array(0..<min(sinkCount, p + 1)) + (recent <= p ? Array(recent...p) : [])
                var keys: [Float] = [], values: [Float] = []
                for (cachePosition, token) in held.enumerated() {
                    var key = Array(kRaw[(token * kvHeads * d)..<((token + 1) * kvHeads * d)])
                    rope.apply(&key, heads: kvHeads, headDim: d, tokens: 1, positions: [Int32(cachePosition)])
                    keys += key
                    values += v[(token * kvHeads * d)..<((token + 1) * kvHeads * d)]
                }
                var q = Array(qRaw[(p * heads * d)..<((p + 1) * heads * d)])
                rope.apply(&q, heads: heads, headDim: d, tokens: 1, positions: [Int32(held.count - 1)])
                let shape = AttentionShape(queries: 1, keys: held.count, queryHeads: heads, kvHeads: kvHeads, headDim: d, scale: 0.25,
                                           mask: AttentionMask(causal: false))
                let expected = ReferenceAttention.forward(q: q.map(Double.init), k: keys.map(Double.init), v: values.map(Double.init),
                                                          shape: shape).output
                for i in 0..<(heads * d) { worst = max(worst, abs(output[p * heads * d + i] - Float(expected[i]))) }
            }
            // f16 rows: 2^-11 of each value; int8 rows: one step of 1/127 of each block's largest value,
            // through the softmax.
            let tolerance: Float = switch type {
            case .float32: 1e-5
            case .float16: 2e-3
            case .int8: 2e-2
            }
            XCTAssertLessThan(worst, tolerance, "\(type)")
        }
    }

    /// int8 keys and values: logits within 2% of the largest logit of the f32 cache's, f16 ones within
    /// 0.2%, on every position of a 48-token sequence (prefill, chunk and decode).
    func testReducedKVTypesStayWithinTolerance() throws {
        for name in ["tiny-llama", "tiny-gemma3", "tiny-qwen2"] {
            let model = try load(name)
            let tokens = randomTokens(48, seed: 5)
            let f32 = try incrementalLogits(model, tokens, cache: model.makeCache(KVCacheOptions()))
            let scale = f32.map(abs).max()!
            for (type, tolerance) in [(KVElementType.int8, Float(0.02)), (.float16, 0.002)] {
                let reduced = try incrementalLogits(model, tokens, cache: model.makeCache(KVCacheOptions(elementType: type)))
                XCTAssertLessThan(maxDifference(f32, reduced, vocab: 256) / scale, tolerance, "\(name) \(type)")
            }
        }
    }

    /// The f16 paths (decode: scores and value sums widened as they are read; prefill: the rows widened
    /// once) equal f32 attention over the same rows widened, token-major and head-major (a head stride
    /// longer than the keys, as a cache with spare slots has), for 1, 3 and 9 queries and a window.
    func testF16AttentionEqualsAttentionOverTheWidenedRows() throws {
        let heads = 8, kvHeads = 2, d = 64, keys = 700, stride = 800
        let count = kvHeads * stride * d  // room for either layout
        let halves = KernelConformance.randomFloats(2 * count, seed: 9, scale: 2).map(halfBitsFromFloat)
        let widened = halves.map(floatFromHalfBits)
        for layout in [KVLayout.tokenMajor, .headMajor] {
            for (queries, window) in [(1, nil), (3, nil), (9, nil), (1, 300)] as [(Int, Int?)] {
                let q = KernelConformance.randomFloats(queries * heads * d, seed: 10)
                let shape = AttentionShape(queries: queries, keys: keys, queryHeads: heads, kvHeads: kvHeads, headDim: d,
                                           mask: AttentionMask(causal: true, window: window), kvLayout: layout,
                                           kvHeadStride: layout == .headMajor ? stride * d : nil)
                var found = [Float](repeating: 0, count: queries * heads * d), expected = found
                halves.withUnsafeBufferPointer { h in
                    FlashAttention.forward(shape, q: q, kv: .float16(keys: h.baseAddress!, values: h.baseAddress! + count), output: &found)
                }
                widened.withUnsafeBufferPointer { w in
                    FlashAttention.forward(shape, q: q, kv: .float32(keys: w.baseAddress!, values: w.baseAddress! + count), output: &expected)
                }
                var worst: Float = 0
                for i in found.indices { worst = max(worst, abs(found[i] - expected[i])) }
                XCTAssertLessThan(worst, 1e-5, "\(layout), \(queries) queries, window \(String(describing: window))")
            }
        }
    }

    /// The int8 paths (decode: scores and value sums straight from int8 rows; prefill: widened once)
    /// equal f32 attention over the same rows widened, token- and head-major, for a long cache with
    /// GQA, a window, and 1, 3 or 9 queries.
    func testInt8DecodePathEqualsAttentionOverTheWidenedRows() throws {
        let heads = 8, kvHeads = 2, d = 64, keys = 2500, block = 32
        let values = keys * kvHeads * d, blocks = values / block
        let source = KernelConformance.randomFloats(2 * values, seed: 9, scale: 2)
        var q8 = [Int8](repeating: 0, count: 2 * values), scales = [Float](repeating: 0, count: 2 * blocks)
        Kernels.active.quantizeRowsInt8(source, rows: 2 * blocks, cols: block, ldx: block, q: &q8, scales: &scales)
        var widened = [Float](repeating: 0, count: 2 * values)
        FlashAttention.dequantizeRows(q8, scales: scales, rows: 2 * blocks, cols: block, into: &widened)
        // The same buffers read token-major and head-major (a value's scale at its offset / block either way).
        for (queries, window, layout) in [(1, nil, .tokenMajor), (3, nil, .tokenMajor), (1, 700, .tokenMajor), (1, nil, .headMajor),
                                          (3, 700, .headMajor), (9, nil, .headMajor)] as [(Int, Int?, KVLayout)] {
            let q = KernelConformance.randomFloats(queries * heads * d, seed: 10)
            let shape = AttentionShape(queries: queries, keys: keys, queryHeads: heads, kvHeads: kvHeads, headDim: d,
                                       mask: AttentionMask(causal: true, window: window), kvLayout: layout)
            var found = [Float](repeating: 0, count: queries * heads * d), expected = found
            q8.withUnsafeBufferPointer { k in
                scales.withUnsafeBufferPointer { s in
                    FlashAttention.forward(shape, q: q, kv: .int8(keys: k.baseAddress!, keyScales: s.baseAddress!,
                                                                 values: k.baseAddress! + values, valueScales: s.baseAddress! + blocks,
                                                                 block: block),
                                           output: &found)
                }
            }
            widened.withUnsafeBufferPointer { w in
                FlashAttention.forward(shape, q: q, kv: .float32(keys: w.baseAddress!, values: w.baseAddress! + values), output: &expected)
            }
            var worst: Float = 0
            for i in found.indices { worst = max(worst, abs(found[i] - expected[i])) }
            XCTAssertLessThan(worst, 1e-5, "\(layout), \(queries) queries, window \(String(describing: window))")
        }
    }

    func testMemoryAccounting() throws {
        let gemma = try load("tiny-gemma3")  // layers: local, global, local, global; window 8; 2 KV heads of 16
        let cache = try gemma.makeCache(KVCacheOptions(maxTokens: 100, maxChunk: 512))
        let perToken = 2 * 2 * 16 * 4
        XCTAssertEqual(cache.bytesPerTokenPerLayer, perToken)
        XCTAssertEqual(cache.policies, [.window(8), .full, .window(8), .full])
        XCTAssertEqual(cache.maxChunk, 8)  // chunks no longer than the window: rings of 8 + 8 - 1 slots
        XCTAssertEqual(cache.bytes(forTokens: 100), 2 * 100 * perToken + 2 * 15 * perToken)
        XCTAssertEqual(cache.tokens(fittingBytes: 2 * 15 * perToken + 2 * 50 * perToken), 50)
        let streaming = try gemma.makeCache(KVCacheOptions(policy: .sinks(4, window: 60)))
        XCTAssertEqual(streaming.maxTokens, Int.max)
        XCTAssertEqual(streaming.tokens(fittingBytes: 1 << 20), Int.max)
        let int8 = try gemma.makeCache(KVCacheOptions(elementType: .int8))
        XCTAssertEqual(int8.bytesPerTokenPerLayer, 2 * (2 * 16 + 2 * 4))  // head 16: one scale per head
        let f16 = try gemma.makeCache(KVCacheOptions(elementType: .float16))
        XCTAssertEqual(f16.bytesPerTokenPerLayer, perToken / 2)
        _ = try gemma.forward(randomTokens(40, seed: 3), cache: cache)
        XCTAssertEqual(cache.length, 40)
        XCTAssertEqual(cache.heldTokens, (2 * 40 + 2 * 15) / 4)
    }

    func testBadUseIsATypedError() throws {
        let model = try load("tiny-llama")
        XCTAssertThrowsError(try model.makeCache(KVCacheOptions(policy: .window(0)))) { error in
            guard case .kvCache(.invalidPolicy)? = error as? ModelError else { return XCTFail("\(error)") }
        }
        let ring = try model.makeCache(KVCacheOptions(policy: .window(4), maxChunk: 4))
        XCTAssertThrowsError(try ring.reserve(5)) { error in
            XCTAssertEqual(error as? KVCacheError, .chunkTooLarge(requested: 5, limit: 4))
        }
        _ = try model.forward(randomTokens(20, seed: 1), cache: ring)  // runs as chunks of 4
        XCTAssertEqual(ring.length, 20)
        try ring.truncate(to: 18)  // position 18 attends 15...18: still held
        XCTAssertThrowsError(try ring.truncate(to: 6)) { error in
            guard case .cannotRewind(to: 6, _)? = error as? KVCacheError else { return XCTFail("\(error)") }
        }
        let full = try model.makeCache(KVCacheOptions(maxTokens: 10))
        XCTAssertThrowsError(try model.forward(randomTokens(11, seed: 1), cache: full)) { error in
            XCTAssertEqual(error as? ModelError, .promptTooLong(tokens: 11, limit: 10))
        }
        XCTAssertEqual(full.length, 0, "a prompt that does not fit leaves the cache as it was")
    }
}
