// Attention over keys and values as a KV cache holds them — f32, f16 or int8 rows — and the log-sum-exp
// merge that joins attention computed over separate runs of keys.
//
// int8 rows carry one scale per block of `block` values (16 in the KV cache; see TokenRows.swift),
// at the value's element offset / block: k ≈ d_k · q_k block by block. A decode step reads them directly
// (the scores are Σ_blocks d_k · (q · q_k), the output Σ p·d_v·q_v), so it moves about a quarter of the
// bytes f32 would;
// prefill is compute-bound, so there the run is widened to f32 once and goes through the tiled kernel.
//
// Merging. If O₁, O₂ are attention over two disjoint sets of keys with log-sum-exps L₁, L₂ (of the
// scaled scores), attention over their union is
//     O = (e^{L₁ - M}·O₁ + e^{L₂ - M}·O₂) / (e^{L₁ - M} + e^{L₂ - M}),   M = max(L₁, L₂),
// with log-sum-exp M + log(e^{L₁ - M} + e^{L₂ - M}): the same rescaling flash attention applies between
// key blocks. A run with L = -inf (no visible key) contributes nothing.
import TesseraCore

#if canImport(Glibc)
import Glibc
#endif

/// Keys and values for attention, laid out as the `AttentionShape` that reads them says: token-major
/// (keys, kvHeads, headDim) or head-major (each head's rows contiguous, `kvHeadStride` elements apart).
public enum AttentionKV: @unchecked Sendable {
    case float32(keys: UnsafePointer<Float>, values: UnsafePointer<Float>)
    /// IEEE halves, laid out as f32 rows would be.
    case float16(keys: UnsafePointer<UInt16>, values: UnsafePointer<UInt16>)
    /// int8 codes with one scale per `block` values, the scales laid out as the codes are: the value at
    /// element offset o is scales[o / block] · q[o] (o = the shape's kvOffset + e; block divides headDim
    /// and, head-major, kvHeadStride).
    case int8(keys: UnsafePointer<Int8>, keyScales: UnsafePointer<Float>, values: UnsafePointer<Int8>, valueScales: UnsafePointer<Float>,
              block: Int)
}

extension FlashAttention {
    /// Attention of `q` over keys and values held as f32, f16 or int8 (f16 and int8: batch 1). Writes the
    /// output and, when given, the log-sum-exp per (query head, query).
    public static func forward(_ shape: AttentionShape, q: UnsafePointer<Float>, kv: AttentionKV,
                               output: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>? = nil) {
        if shape.queries == 0 { return }
        switch kv {
        case .float32(let keys, let values):
            forward(shape, AttentionBuffers(q: q, k: keys, v: values, output: output, logSumExp: logSumExp))
        case .float16, .int8:
            precondition(shape.batch == 1, "f16 and int8 keys and values are a cache's: batch 1")
            if case .int8(_, _, _, _, let block) = kv {
                precondition(shape.headDim % block == 0, "int8 blocks of \(block) must tile the head dimension \(shape.headDim)")
                precondition(shape.kvLayout == .tokenMajor || shape.kvHeadStride % block == 0,
                             "int8 blocks of \(block) must tile the head stride \(shape.kvHeadStride)")
            }
            if takesDecodePath(shape) {
                decode(shape, q: q, kv: kv, output: output, logSumExp: logSumExp)
                return
            }
            // Prefill is compute-bound: the rows are widened to f32 once (in the same layout) for the tiled kernel.
            let count = shape.keys * shape.kvHeads * shape.headDim
            let k = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
            let v = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
            defer { k.deallocate(); v.deallocate() }
            let widened = widen(kv, layout: shape, keys: k, values: v)
            forward(widened, AttentionBuffers(q: q, k: k, v: v, output: output, logSumExp: logSumExp))
        }
    }

    /// The `shape.keys` rows of every kv head of f16 or int8 keys and values laid out per `shape`
    /// (token- or head-major, batch 1), widened into `keys` and `values` (keys · kvHeads · headDim
    /// floats each) in the same layout, heads packed together; returns the shape that reads them there.
    static func widen(_ kv: AttentionKV, layout shape: AttentionShape, keys k: UnsafeMutablePointer<Float>,
                      values v: UnsafeMutablePointer<Float>) -> AttentionShape {
        var widened = shape
        if shape.kvLayout == .headMajor { widened.kvHeadStride = shape.keys * shape.headDim }
        // Head by head when head-major (a run of keys · headDim values each), all at once when token-major.
        let runs = shape.kvLayout == .headMajor ? shape.kvHeads : 1
        let run = shape.kvLayout == .headMajor ? shape.keys * shape.headDim : shape.keys * shape.kvHeads * shape.headDim
        for head in 0..<runs {
            let to = widened.kvOffset(batch: 0, token: 0, head: head)
            widenRun(kv, from: shape.kvOffset(batch: 0, token: 0, head: head), count: run, keys: k + to, values: v + to)
        }
        return widened
    }

    /// `count` consecutive keys' and values' elements from element `from` on, as floats into `k` and `v`
    /// (f32 copied, f16 widened, int8 times the scale at the element's offset / block).
    static func widenRun(_ kv: AttentionKV, from: Int, count: Int, keys k: UnsafeMutablePointer<Float>, values v: UnsafeMutablePointer<Float>) {
        switch kv {
        case .float32(let keys, let values):
            k.update(from: keys + from, count: count)
            v.update(from: values + from, count: count)
        case .float16(let keys, let values):
            Kernels.active.convertToFloat(keys + from, format: .f16, k, count: count)
            Kernels.active.convertToFloat(values + from, format: .f16, v, count: count)
        case .int8(let keys, let keyScales, let values, let valueScales, let block):
            dequantizeRows(keys + from, scales: keyScales + from / block, rows: count / block, cols: block, into: k)
            dequantizeRows(values + from, scales: valueScales + from / block, rows: count / block, cols: block, into: v)
        }
    }

    /// x[r, :] = scales[r] · q[r, :], in parallel over rows.
    public static func dequantizeRows(_ q: UnsafePointer<Int8>, scales: UnsafePointer<Float>, rows: Int, cols: Int,
                                      into x: UnsafeMutablePointer<Float>) {
        let block = 256
        ThreadPool.shared.parallelFor((rows + block - 1) / block) { task in
            for r in (task * block)..<min(rows, (task + 1) * block) {
                let d = scales[r], src = q + r * cols, dst = x + r * cols
                for j in 0..<cols { dst[j] = d * Float(src[j]) }
            }
        }
    }

    /// Folds attention over another run of keys into an accumulated result: `output` (queries,
    /// queryHeads, headDim) and `logSumExp` (queryHeads, queries) become attention over the union.
    public static func merge(into output: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
                             adding other: UnsafePointer<Float>, logSumExp otherLSE: UnsafePointer<Float>,
                             queries: Int, queryHeads: Int, headDim d: Int) {
        for h in 0..<queryHeads {
            for i in 0..<queries {
                let l1 = logSumExp[h * queries + i], l2 = otherLSE[h * queries + i]
                if l2 == -.infinity { continue }
                let out = output + (i * queryHeads + h) * d, add = other + (i * queryHeads + h) * d
                if l1 == -.infinity {
                    out.update(from: add, count: d)
                    logSumExp[h * queries + i] = l2
                    continue
                }
                let m = max(l1, l2)
                let w1 = exp(l1 - m), w2 = exp(l2 - m), total = w1 + w2
                let a = w1 / total, b = w2 / total
                for e in 0..<d { out[e] = a * out[e] + b * add[e] }
                logSumExp[h * queries + i] = m + log(total)
            }
        }
    }
}
