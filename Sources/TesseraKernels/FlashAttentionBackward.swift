// Flash attention, backward: dQ, dK, dV from dO, recomputing the probabilities tile by tile from the
// log-sum-exp saved by the forward pass instead of storing the queries x keys matrix.
//
// With P = softmax(S') and S' = softcap(scale · Q Kᵀ), for each tile:
//     P   = exp(S' - lse)                       (the forward's row statistics make this exact)
//     dV += Pᵀ dO
//     dP  = dO Vᵀ
//     dS' = P ∘ (dP - Δ),   Δ = rowsum(dO ∘ O)   (the softmax Jacobian, folded into one row constant)
//     dS  = scale · dS' ∘ (1 - (S'/cap)²)        (the chain rule through softcap; just scale without it)
//     dQ += dS K,   dK += dSᵀ Q
// Every write stays private to its task (no atomics), in one of two schedules:
// - per head (the usual one in training): one task per (batch, kv head) walks all its tiles once, key
//   block outermost; dK and dV of a key block sum in scratch, and dQ sums straight into its rows of the
//   output, which no other task touches. Five tile products per tile.
// - two passes, when there are too few heads to keep the threads busy: one over (batch, kv head, key
//   block) accumulates dK and dV — the query heads of a GQA group add into the same K/V head there —
//   and one over (batch, query head, query block) accumulates dQ. Each pass recomputes P and dS, so
//   seven tile products per tile, but the tasks are small and many.
// Extra memory stays O(N) in both.
import TesseraCore

/// Gradients in and out of the backward pass; layouts as in AttentionShape.
public struct AttentionGradients: @unchecked Sendable {
    /// dL/dO (batch, queries, queryHeads, headDim)
    public var outputGradient: UnsafePointer<Float>
    public var dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>

    public init(outputGradient: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                dv: UnsafeMutablePointer<Float>) {
        self.outputGradient = outputGradient; self.dq = dq; self.dk = dk; self.dv = dv
    }
}

/// How the backward pass splits its work over the threads (see the top of the file).
public enum AttentionBackwardSchedule: Sendable {
    /// Per head when there are enough (batch, kv head) pairs to balance the threads, else two passes.
    case automatic
    case perHead
    case twoPasses
}

extension FlashAttention {
    /// Needs the forward's output and log-sum-exp in `buffers`. Overwrites dq, dk and dv.
    public static func backward(_ s: AttentionShape, _ buffers: AttentionBuffers, _ grads: AttentionGradients,
                                schedule: AttentionBackwardSchedule = .automatic) {
        guard let logSumExp = buffers.logSumExp else { preconditionFailure("FlashAttention.backward needs the forward log-sum-exp") }
        let d = s.headDim, br = queryBlock, bc = keyBlock(s)
        let pool = ThreadPool.shared
        // Δ[b, h, i] = Σₑ dO·O, one number per query row.
        let delta = UnsafeMutablePointer<Float>.allocate(capacity: s.batch * s.queryHeads * max(s.queries, 1))
        defer { delta.deallocate() }
        pool.parallelRanges(s.batch * s.queries, grain: 16) { range in
            for row in range {
                let b = row / s.queries, i = row % s.queries
                for h in 0..<s.queryHeads {
                    let offset = (b * s.queries + i) * s.queryStride + h * d
                    var sum: Float = 0
                    for e in 0..<d { sum += grads.outputGradient[offset + e] * buffers.output[offset + e] }
                    delta[(b * s.queryHeads + h) * s.queries + i] = sum
                }
            }
        }
        let context = BackwardContext(shape: s, buffers: buffers, grads: grads, logSumExp: logSumExp, delta: delta)
        let heads = s.batch * s.kvHeads, threads = pool.threadCount
        let perHead: Bool
        switch schedule {
        case .automatic: perHead = heads >= 4 * threads || heads % threads == 0
        case .perHead: perHead = true
        case .twoPasses: perHead = false
        }
        if perHead {
            pool.parallelFor(heads) { task in context.headGradients(batch: task / s.kvHeads, kvHead: task % s.kvHeads) }
            return
        }

        // Pass 1: dK and dV, one task per (batch, kv head, key block).
        let keyBlocks = (s.keys + bc - 1) / bc
        pool.parallelFor(s.batch * s.kvHeads * keyBlocks) { task in
            let jb = task % keyBlocks, kvh = (task / keyBlocks) % s.kvHeads, b = task / (keyBlocks * s.kvHeads)
            let j0 = jb * bc
            context.keyBlockGradients(TileWorkspace(rows: br, cols: bc, headDim: d), batch: b, kvHead: kvh,
                                      keys: j0, min(s.keys, j0 + bc), queryGradients: false)
        }

        // Pass 2: dQ, one task per (batch, query head, query block).
        let queryBlocks = (s.queries + br - 1) / br
        pool.parallelFor(s.batch * s.queryHeads * queryBlocks) { task in
            let qb = task % queryBlocks, h = (task / queryBlocks) % s.queryHeads, b = task / (queryBlocks * s.queryHeads)
            let kvh = h / s.group
            let i0 = qb * br, i1 = min(s.queries, i0 + br), rows = i1 - i0
            let work = TileWorkspace(rows: br, cols: bc, headDim: d)
            work.dq.update(repeating: 0, count: rows * d)
            for j0 in stride(from: 0, to: s.keys, by: bc) {
                let j1 = min(s.keys, j0 + bc)
                guard context.tileGradients(work, batch: b, head: h, rows: i0, i1, keys: j0, j1) else { continue }
                Kernels.active.gemm(GEMMArguments(m: rows, n: d, k: j1 - j0, a: work.scoreGradient, lda: bc,
                                                  b: s.k(buffers.k, batch: b, token: j0, head: kvh), ldb: s.keyStride,
                                                  c: work.dq, ldc: d, accumulate: true))
            }
            for r in 0..<rows {
                (grads.dq + (b * s.queries + i0 + r) * s.queryStride + h * d).update(from: work.dq + r * d, count: d)
            }
        }
    }
}

extension BackwardContext {
    /// The per-head schedule: every tile of kv head `kvh` (and its group's query heads) of batch `b`.
    func headGradients(batch b: Int, kvHead kvh: Int) {
        let s = shape, d = s.headDim, bc = FlashAttention.keyBlock(s)
        for i in 0..<s.queries {
            for h in kvh * s.group..<(kvh + 1) * s.group {
                (grads.dq + (b * s.queries + i) * s.queryStride + h * d).update(repeating: 0, count: d)
            }
        }
        let work = TileWorkspace(rows: FlashAttention.queryBlock, cols: bc, headDim: d)
        for j0 in stride(from: 0, to: s.keys, by: bc) {
            keyBlockGradients(work, batch: b, kvHead: kvh, keys: j0, min(s.keys, j0 + bc), queryGradients: true)
        }
    }

    /// dK and dV of keys [j0, j1) of kv head `kvh`, summed over the group's query heads and every query
    /// block, and written out; with `queryGradients`, also each tile's share of dQ, added into dq (so
    /// only a task that owns those dq rows may ask for it).
    func keyBlockGradients(_ work: TileWorkspace, batch b: Int, kvHead kvh: Int, keys j0: Int, _ j1: Int, queryGradients: Bool) {
        let s = shape, d = s.headDim, br = FlashAttention.queryBlock, bc = FlashAttention.keyBlock(s), cols = j1 - j0
        let kernels = Kernels.active
        work.dk.update(repeating: 0, count: cols * d)
        work.dv.update(repeating: 0, count: cols * d)
        for h in kvh * s.group..<(kvh + 1) * s.group {
            for i0 in stride(from: 0, to: s.queries, by: br) {
                let i1 = min(s.queries, i0 + br), rows = i1 - i0
                guard tileGradients(work, batch: b, head: h, rows: i0, i1, keys: j0, j1) else { continue }
                // dV += Pᵀ dO;  dK += dSᵀ Q;  (dQ += dS K)
                kernels.gemm(GEMMArguments(m: cols, n: d, k: rows, a: work.probabilities, lda: bc, transposeA: true,
                                           b: s.q(grads.outputGradient, batch: b, token: i0, head: h), ldb: s.queryStride,
                                           c: work.dv, ldc: d, accumulate: true))
                kernels.gemm(GEMMArguments(m: cols, n: d, k: rows, a: work.scoreGradient, lda: bc, transposeA: true,
                                           b: s.q(buffers.q, batch: b, token: i0, head: h), ldb: s.queryStride,
                                           c: work.dk, ldc: d, accumulate: true))
                if queryGradients {
                    kernels.gemm(GEMMArguments(m: rows, n: d, k: cols, a: work.scoreGradient, lda: bc,
                                               b: s.k(buffers.k, batch: b, token: j0, head: kvh), ldb: s.keyStride,
                                               c: grads.dq + (b * s.queries + i0) * s.queryStride + h * d, ldc: s.queryStride,
                                               accumulate: true))
                }
            }
        }
        for j in 0..<cols {
            s.k(grads.dk, batch: b, token: j0 + j, head: kvh).update(from: work.dk + j * d, count: d)
            s.k(grads.dv, batch: b, token: j0 + j, head: kvh).update(from: work.dv + j * d, count: d)
        }
    }
}

/// Scratch tiles of one backward task.
struct TileWorkspace {
    let probabilities: UnsafeMutablePointer<Float>  // (rows, cols): P
    let scoreGradient: UnsafeMutablePointer<Float>  // (rows, cols): dP, then dS
    let capped: UnsafeMutablePointer<Float>         // (rows, cols): S' (for the softcap derivative)
    let rowStatistic: UnsafeMutablePointer<Float>   // (rows): lse, as the "running max" of onlineSoftmax
    let scratch: UnsafeMutablePointer<Float>        // (rows) x 2: ignored outputs of onlineSoftmax
    let dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>
    private let base: UnsafeMutablePointer<Float>

    init(rows: Int, cols: Int, headDim: Int) {
        let tile = rows * cols
        base = threadScratch(3 * tile + 3 * rows + rows * headDim + 2 * cols * headDim)
        probabilities = base
        scoreGradient = base + tile
        capped = base + 2 * tile
        rowStatistic = base + 3 * tile
        scratch = rowStatistic + rows
        dq = scratch + 2 * rows
        dk = dq + rows * headDim
        dv = dk + cols * headDim
    }

}

/// What both backward passes need to rebuild a tile's P and dS.
struct BackwardContext: @unchecked Sendable {
    let shape: AttentionShape
    let buffers: AttentionBuffers
    let grads: AttentionGradients
    let logSumExp: UnsafeMutablePointer<Float>
    let delta: UnsafeMutablePointer<Float>

    /// Fills work.probabilities with P and work.scoreGradient with dS for the tile; false if it is hidden.
    func tileGradients(_ work: TileWorkspace, batch b: Int, head h: Int, rows i0: Int, _ i1: Int, keys j0: Int, _ j1: Int) -> Bool {
        let s = shape, kernels = Kernels.active
        let visibility = s.tileVisibility(batch: b, rows: i0, i1, keys: j0, j1)
        if visibility == .hidden { return false }
        let rows = i1 - i0, cols = j1 - j0, ld = FlashAttention.keyBlock(s), d = s.headDim, kvh = h / s.group
        let p = work.probabilities, ds = work.scoreGradient
        kernels.gemm(GEMMArguments(m: rows, n: cols, k: d, a: s.q(buffers.q, batch: b, token: i0, head: h), lda: s.queryStride,
                                   b: s.k(buffers.k, batch: b, token: j0, head: kvh), ldb: s.keyStride, transposeB: true,
                                   c: p, ldc: ld))
        kernels.scaleScores(p, rows: rows, cols: cols, ld: ld, scale: s.scale, softcap: s.softcap ?? 0)
        if s.softcap != nil { for r in 0..<rows { (work.capped + r * ld).update(from: p + r * ld, count: cols) } }
        if visibility == .partial { s.applyMask(p, ld: ld, batch: b, rows: i0, i1, keys: j0, j1) }
        // P = exp(S' - lse): the online-softmax step with the final lse as its running maximum (lse is at
        // least every score of its row, so the maximum stays lse and the step exponentiates s - lse).
        let lseRow = logSumExp + (b * s.queryHeads + h) * s.queries + i0
        work.rowStatistic.update(from: lseRow, count: rows)
        kernels.onlineSoftmax(p, rows: rows, cols: cols, ld: ld, rowMax: work.rowStatistic,
                              rowSum: work.scratch, correction: work.scratch + rows)
        // dP = dO Vᵀ, then dS = scale · P ∘ (dP - Δ) ∘ softcap'.
        kernels.gemm(GEMMArguments(m: rows, n: cols, k: d, a: s.q(grads.outputGradient, batch: b, token: i0, head: h),
                                   lda: s.queryStride, b: s.k(buffers.v, batch: b, token: j0, head: kvh), ldb: s.keyStride,
                                   transposeB: true, c: ds, ldc: ld))
        let deltaRow = delta + (b * s.queryHeads + h) * s.queries + i0
        for r in 0..<rows {
            let pr = p + r * ld, dr = ds + r * ld, dl = deltaRow[r]
            if let cap = s.softcap {
                let cr = work.capped + r * ld
                for j in 0..<cols { let t = cr[j] / cap; dr[j] = s.scale * pr[j] * (dr[j] - dl) * (1 - t * t) }
            } else {
                for j in 0..<cols { dr[j] = s.scale * pr[j] * (dr[j] - dl) }
            }
        }
        return true
    }
}

extension AttentionShape {
    @inline(__always) func q(_ base: UnsafePointer<Float>, batch b: Int, token: Int, head: Int) -> UnsafePointer<Float> {
        base + (b * queries + token) * queryStride + head * headDim
    }
}
