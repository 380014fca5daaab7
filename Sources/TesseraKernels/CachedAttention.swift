// Attention over keys and values as a KV cache holds them — f32, f16 or int8 rows — and the log-sum-exp
// merge that joins attention computed over separate runs of keys.
//
// int8 rows carry one scale per block of `block` values (16 in the KV cache; see TokenRows.swift):
// k ≈ d_k · q_k block by block. A decode step reads them directly
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

/// Keys and values for attention, token-major (keys, kvHeads, headDim).
public enum AttentionKV: @unchecked Sendable {
    case float32(keys: UnsafePointer<Float>, values: UnsafePointer<Float>)
    /// IEEE halves, laid out as f32 rows would be.
    case float16(keys: UnsafePointer<UInt16>, values: UnsafePointer<UInt16>)
    /// int8 rows with scales (keys, kvHeads, headDim / block): value (t, h, e) is
    /// scales[(t · kvHeads + h) · headDim / block + e / block] · q[t, h, e].
    case int8(keys: UnsafePointer<Int8>, keyScales: UnsafePointer<Float>, values: UnsafePointer<Int8>, valueScales: UnsafePointer<Float>,
              block: Int)
}

extension FlashAttention {
    /// Attention of `q` over keys and values held as f32, f16 or int8 (batch 1; int8 token-major). Writes the
    /// output and, when given, the log-sum-exp per (query head, query).
    public static func forward(_ shape: AttentionShape, q: UnsafePointer<Float>, kv: AttentionKV,
                               output: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>? = nil) {
        if shape.queries == 0 { return }
        switch kv {
        case .float32(let keys, let values):
            forward(shape, AttentionBuffers(q: q, k: keys, v: values, output: output, logSumExp: logSumExp))
        case .float16, .int8:
            if case .int8(_, _, _, _, let block) = kv {
                precondition(shape.batch == 1 && shape.kvLayout == .tokenMajor, "int8 keys and values are a cache's: batch 1, token-major")
                precondition(shape.headDim % block == 0, "int8 blocks of \(block) must tile the head dimension \(shape.headDim)")
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
            var widened = shape
            switch kv {
            case .float16(let keys, let values):
                widened = widenHalves(keys, layout: shape, into: k)
                _ = widenHalves(values, layout: shape, into: v)
            case .int8(let keys, let keyScales, let values, let valueScales, let block):
                dequantizeRows(keys, scales: keyScales, rows: count / block, cols: block, into: k)
                dequantizeRows(values, scales: valueScales, rows: count / block, cols: block, into: v)
            case .float32: break
            }
            forward(widened, AttentionBuffers(q: q, k: k, v: v, output: output, logSumExp: logSumExp))
        }
    }

    /// The `shape.keys` rows of every kv head, as halves laid out per `shape` (token- or head-major, batch 1),
    /// widened into `x` (keys · kvHeads · headDim floats) in the same layout, heads packed together;
    /// returns the shape that reads them there.
    static func widenHalves(_ h: UnsafePointer<UInt16>, layout shape: AttentionShape, into x: UnsafeMutablePointer<Float>) -> AttentionShape {
        precondition(shape.batch == 1, "f16 keys and values are a cache's: batch 1")
        let kernels = Kernels.active
        var widened = shape
        if shape.kvLayout == .tokenMajor {
            kernels.convertToFloat(h, format: .f16, x, count: shape.keys * shape.kvHeads * shape.headDim)
        } else {
            widened.kvHeadStride = shape.keys * shape.headDim
            for head in 0..<shape.kvHeads {
                kernels.convertToFloat(h + shape.kvOffset(batch: 0, token: 0, head: head), format: .f16,
                                       x + widened.kvOffset(batch: 0, token: 0, head: head), count: shape.keys * shape.headDim)
            }
        }
        return widened
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
