// Standard ("plain") attention: the textbook computation with the full queries x keys matrix, built
// from the fast kernels (GEMM, softmax) — what flash attention is measured against, and the way to get
// the attention weights out for inspection. Heads run one after another, so the extra memory is one
// queries x keys matrix (two in the backward pass), each kernel using all threads.
import TesseraCore

public enum StandardAttention {
    /// O = softmax(mask(softcap(scale · Q Kᵀ))) V. With `weights`, also writes P as
    /// (batch, queryHeads, queries, keys); `logSumExp` (batch, queryHeads, queries) is filled if given.
    public static func forward(_ s: AttentionShape, _ buffers: AttentionBuffers, weights: UnsafeMutablePointer<Float>? = nil) {
        let n = s.queries * s.keys
        let scratch = weights == nil ? UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1)) : nil
        defer { scratch?.deallocate() }
        for b in 0..<s.batch {
            for h in 0..<s.queryHeads {
                let p = weights.map { $0 + (b * s.queryHeads + h) * n } ?? scratch!
                probabilities(s, buffers, batch: b, head: h, into: p, logSumExp: buffers.logSumExp)
                Kernels.active.gemm(GEMMArguments(m: s.queries, n: s.headDim, k: s.keys, a: p, lda: s.keys,
                                                  b: s.k(buffers.v, batch: b, token: 0, head: h / s.group), ldb: s.keyStride,
                                                  c: buffers.output + b * s.queries * s.queryStride + h * s.headDim, ldc: s.queryStride))
            }
        }
    }

    /// P for one (batch, head), (queries, keys); `capped` receives S' (before masking) when given.
    static func probabilities(_ s: AttentionShape, _ buffers: AttentionBuffers, batch b: Int, head h: Int,
                              into p: UnsafeMutablePointer<Float>, capped: UnsafeMutablePointer<Float>? = nil,
                              logSumExp: UnsafeMutablePointer<Float>? = nil) {
        let kernels = Kernels.active
        kernels.gemm(GEMMArguments(m: s.queries, n: s.keys, k: s.headDim, a: s.q(buffers.q, batch: b, token: 0, head: h),
                                   lda: s.queryStride, b: s.k(buffers.k, batch: b, token: 0, head: h / s.group), ldb: s.keyStride,
                                   transposeB: true, c: p, ldc: s.keys))
        ThreadPool.shared.parallelRanges(s.queries, grain: max(1, 8192 / max(s.keys, 1))) { rows in
            for i in rows {
                let row = p + i * s.keys
                kernels.scaleScores(row, rows: 1, cols: s.keys, ld: s.keys, scale: s.scale, softcap: s.softcap ?? 0)
                capped?.advanced(by: i * s.keys).update(from: row, count: s.keys)
                let v = s.mask.visibleKeys(batch: b, query: i, queries: s.queries, keys: s.keys)
                for j in v.sinkEnd..<max(v.sinkEnd, v.low) { row[j] = -.infinity }
                for j in max(v.high, v.sinkEnd)..<s.keys { row[j] = -.infinity }
                if let logSumExp {
                    var maximum = -Float.infinity
                    for j in 0..<s.keys { maximum = max(maximum, row[j]) }
                    var sum: Float = 0
                    if maximum > -.infinity { for j in 0..<s.keys { sum += exp(row[j] - maximum) } }
                    logSumExp[(b * s.queryHeads + h) * s.queries + i] = sum > 0 ? maximum + log(sum) : -.infinity
                }
            }
        }
        kernels.softmax(p, p, rows: s.queries, cols: s.keys)
    }

    /// Gradients through the materialised computation (recomputing P per head). Overwrites dq, dk, dv.
    public static func backward(_ s: AttentionShape, _ buffers: AttentionBuffers, _ grads: AttentionGradients) {
        let kernels = Kernels.active
        let n = s.queries * s.keys, d = s.headDim
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        let dp = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        let capped = s.softcap == nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        defer { p.deallocate(); dp.deallocate(); capped?.deallocate() }
        grads.dk.update(repeating: 0, count: s.keyCount)
        grads.dv.update(repeating: 0, count: s.keyCount)
        for b in 0..<s.batch {
            for h in 0..<s.queryHeads {
                let kvh = h / s.group
                let q = s.q(buffers.q, batch: b, token: 0, head: h), dO = s.q(grads.outputGradient, batch: b, token: 0, head: h)
                let k = s.k(buffers.k, batch: b, token: 0, head: kvh), v = s.k(buffers.v, batch: b, token: 0, head: kvh)
                let dk = s.k(grads.dk, batch: b, token: 0, head: kvh), dv = s.k(grads.dv, batch: b, token: 0, head: kvh)
                probabilities(s, buffers, batch: b, head: h, into: p, capped: capped)
                // dV += Pᵀ dO;  dP = dO Vᵀ
                kernels.gemm(GEMMArguments(m: s.keys, n: d, k: s.queries, a: p, lda: s.keys, transposeA: true,
                                           b: dO, ldb: s.queryStride, c: dv, ldc: s.keyStride, accumulate: true))
                kernels.gemm(GEMMArguments(m: s.queries, n: s.keys, k: d, a: dO, lda: s.queryStride,
                                           b: v, ldb: s.keyStride, transposeB: true, c: dp, ldc: s.keys))
                // dS = scale · P ∘ (dP - rowsum(P ∘ dP)) ∘ softcap'
                ThreadPool.shared.parallelRanges(s.queries, grain: max(1, 8192 / max(s.keys, 1))) { rows in
                    for i in rows {
                        let pr = p + i * s.keys, dr = dp + i * s.keys
                        var delta: Float = 0
                        for j in 0..<s.keys { delta += pr[j] * dr[j] }
                        for j in 0..<s.keys {
                            var g = s.scale * pr[j] * (dr[j] - delta)
                            if let cap = s.softcap, let capped { let t = capped[i * s.keys + j] / cap; g *= 1 - t * t }
                            dr[j] = g
                        }
                    }
                }
                // dQ = dS K;  dK += dSᵀ Q
                kernels.gemm(GEMMArguments(m: s.queries, n: d, k: s.keys, a: dp, lda: s.keys, b: k, ldb: s.keyStride,
                                           c: grads.dq + b * s.queries * s.queryStride + h * d, ldc: s.queryStride))
                kernels.gemm(GEMMArguments(m: s.keys, n: d, k: s.queries, a: dp, lda: s.keys, transposeA: true,
                                           b: q, ldb: s.queryStride, c: dk, ldc: s.keyStride, accumulate: true))
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
