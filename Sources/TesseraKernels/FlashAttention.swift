// Flash attention, forward: exact attention without ever holding the queries x keys score matrix.
//
// For a block of Br query rows it walks the key blocks of Bc keys that the mask leaves visible and
// keeps, per row, a running maximum m, a running sum l and an unnormalised output acc (Br x headDim):
//     S   = softcap(scale · Q_blk K_blkᵀ)          (GEMM, Br x Bc, in L1/L2)
//     m'  = max(m, rowmax S);  P = exp(S - m')    (masked entries are -inf, so exp gives 0)
//     l   = l · exp(m - m') + rowsum P
//     acc = acc · exp(m - m') + P V_blk           (GEMM)
// and finally O = acc / l. Rescaling by exp(m - m') makes every earlier term as if it had been
// computed with the final maximum, so the result equals softmax(S) V exactly (up to rounding); the
// log-sum-exp m + log l is saved for the backward pass. Extra memory is O(rows · headDim) per task
// plus one Br x Bc tile — O(N), never O(N²). Tasks are (batch, query head, query block) in parallel.
//
// Decode (a few queries against a long cache) has too few query blocks to occupy the threads and is
// bound by reading K and V, so it splits the keys instead ("flash decoding"): each task scores one
// chunk of keys (GEMV for the scores, a transposed GEMV for the weighted sum of values) for each query
// head of a GQA group in turn — the chunk stays in L2, so K and V are read from memory once — keeps
// its own (m, l, partial output) per head, and a final pass merges the chunks with the same rescaling.
import CTesseraCPU
import TesseraCore

/// Raw pointers of one attention call; layouts as in AttentionShape.
public struct AttentionBuffers: @unchecked Sendable {
    public var q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>
    /// (batch, queries, queryHeads, headDim)
    public var output: UnsafeMutablePointer<Float>
    /// (batch, queryHeads, queries): log-sum-exp of each score row (-inf for fully masked rows); optional.
    public var logSumExp: UnsafeMutablePointer<Float>?

    public init(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                output: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>? = nil) {
        self.q = q; self.k = k; self.v = v; self.output = output; self.logSumExp = logSumExp
    }
}

/// How a (query block, key block) tile meets the mask.
enum TileVisibility { case hidden, partial, full }

extension AttentionShape {
    /// Classifies the tile rows [i0, i1) x keys [j0, j1) of batch element b.
    func tileVisibility(batch b: Int, rows i0: Int, _ i1: Int, keys j0: Int, _ j1: Int) -> TileVisibility {
        var any = false, all = true
        for i in i0..<i1 {
            let v = mask.visibleKeys(batch: b, query: i, queries: queries, keys: keys)
            // Count visible keys of [j0, j1) in [0, sinkEnd) ∪ [low, high).
            let sinkPart = max(0, min(j1, v.sinkEnd) - j0)
            let windowPart = max(0, min(j1, v.high) - max(j0, v.low, v.sinkEnd))
            let visible = sinkPart + windowPart
            if visible > 0 { any = true }
            if visible < j1 - j0 { all = false }
            if any && !all { return .partial }
        }
        return any ? (all ? .full : .partial) : .hidden
    }

    /// Sets hidden entries of a score tile (rows [i0, i1), keys [j0, j1), row stride ld) to -inf,
    /// working on the visible interval of each row rather than testing key by key.
    func applyMask(_ s: UnsafeMutablePointer<Float>, ld: Int, batch b: Int, rows i0: Int, _ i1: Int, keys j0: Int, _ j1: Int) {
        for i in i0..<i1 {
            let row = s + (i - i0) * ld - j0  // indexed by absolute key position
            let v = mask.visibleKeys(batch: b, query: i, queries: queries, keys: keys)
            // Hidden: [sinkEnd, low) and [max(high, sinkEnd), keys), clipped to [j0, j1).
            for j in max(j0, v.sinkEnd)..<max(max(j0, v.sinkEnd), min(j1, v.low)) { row[j] = -.infinity }
            for j in max(j0, v.high, v.sinkEnd)..<max(max(j0, v.high, v.sinkEnd), j1) { row[j] = -.infinity }
        }
    }
}

public enum FlashAttention {
    /// Query rows per block.
    public static let queryBlock = 64
    /// Keys per block: 128, or 64 for up to 512 keys. Short causal sequences waste less on the
    /// half-hidden diagonal tiles with square ones (48 heads x 256 tokens: forward 10-13 -> 9 ms,
    /// backward 20-27 -> 17-18 ms); long ones run 5-10% faster with the wider tile.
    public static func keyBlock(_ s: AttentionShape) -> Int { s.keys <= 512 ? 64 : 128 }
    /// The fewest keys per task in the decode path.
    public static let decodeChunk = 512
    /// The most keys per task in the decode path.
    public static let maximumDecodeChunk = 4096

    /// Keys per task in the decode path, a power of two from `decodeChunk` to `maximumDecodeChunk`:
    /// the largest that still leaves about eight tasks per thread over `streams` K/V heads (sequences
    /// times kv heads) of `keys` keys. Longer runs of a head's keys stream from memory faster: on a
    /// 16k-token cache of 8 kv heads a step took 12% less time with 2,048 keys per task than with 512,
    /// and another 1.5% less with 4,096 (the two alternated step by step in one process).
    public static func decodeChunk(keys: Int, streams: Int) -> Int {
        let wanted = keys * streams / (8 * ThreadPool.shared.threadCount)
        var chunk = decodeChunk
        while chunk < maximumDecodeChunk && 2 * chunk <= wanted { chunk *= 2 }
        return chunk
    }

    /// Up to 4 queries per sequence take the split-key decode path (f32 and int8 keys alike).
    static func takesDecodePath(_ shape: AttentionShape) -> Bool { shape.queries <= 4 }

    /// O = attention(Q, K, V). Chooses the decode path for up to 4 queries per sequence, at any
    /// context length: for one query the tiled path's blocked GEMMs (packing, a lone row scored as two)
    /// were a quarter of a decode step at 128 tokens of context, where the group kernels read each key
    /// and value row once for all the group's heads (SmolLM2 tg128 +12-19%, alternating binaries).
    public static func forward(_ shape: AttentionShape, _ buffers: AttentionBuffers) {
        if shape.queries == 0 { return }
        if takesDecodePath(shape) {
            decode(shape, buffers)
        } else {
            tiled(shape, buffers)
        }
    }

    /// The tiled forward pass (prefill and training). `keyBlock` fixes the key tile width; by default
    /// it follows the key count (`keyBlock(_:)`), so the same query row may be summed in other blocks
    /// when it runs in a call with more keys.
    public static func tiled(_ s: AttentionShape, _ buffers: AttentionBuffers, keyBlock fixedKeyBlock: Int? = nil) {
        let kernels = Kernels.active
        let br = queryBlock, bc = fixedKeyBlock ?? keyBlock(s), d = s.headDim
        let queryBlocks = (s.queries + br - 1) / br
        let softcap = s.softcap ?? 0
        ThreadPool.shared.parallelFor(s.batch * s.queryHeads * queryBlocks) { task in
            let qb = task % queryBlocks, h = (task / queryBlocks) % s.queryHeads, b = task / (queryBlocks * s.queryHeads)
            let kvh = h / s.group
            let i0 = qb * br, i1 = min(s.queries, i0 + br), rows = i1 - i0
            // Per-task workspace: the score tile, the output accumulator and the row statistics.
            let workspace = threadScratch(br * bc + br * d + 3 * br)
            let tile = workspace, acc = workspace + br * bc
            let rowMax = acc + br * d, rowSum = rowMax + br, correction = rowSum + br
            acc.update(repeating: 0, count: rows * d)
            rowMax.update(repeating: -.infinity, count: rows)
            rowSum.update(repeating: 0, count: rows)
            let qBase = s.q(buffers.q, batch: b, token: i0, head: h)
            for j0 in stride(from: 0, to: s.keys, by: bc) {
                let j1 = min(s.keys, j0 + bc), cols = j1 - j0
                let visibility = s.tileVisibility(batch: b, rows: i0, i1, keys: j0, j1)
                if visibility == .hidden { continue }
                let kBase = s.k(buffers.k, batch: b, token: j0, head: kvh), vBase = s.k(buffers.v, batch: b, token: j0, head: kvh)
                // A lone query row would take the GEMV path, which sums in another order than the
                // blocked kernel: it is scored as two rows (the same query twice), so a row's scores are
                // the same bits however many rows share its tile.
                kernels.gemm(GEMMArguments(m: max(rows, 2), n: cols, k: d, a: qBase, lda: rows == 1 ? 0 : s.queryStride,
                                           b: kBase, ldb: s.keyStride, transposeB: true, c: tile, ldc: bc))
                kernels.scaleScores(tile, rows: rows, cols: cols, ld: bc, scale: s.scale, softcap: softcap)
                if visibility == .partial { s.applyMask(tile, ld: bc, batch: b, rows: i0, i1, keys: j0, j1) }
                kernels.onlineSoftmax(tile, rows: rows, cols: cols, ld: bc, rowMax: rowMax, rowSum: rowSum, correction: correction)
                for r in 0..<rows where correction[r] != 1 {
                    let c = correction[r]
                    for e in 0..<d { acc[r * d + e] *= c }
                }
                kernels.gemm(GEMMArguments(m: rows, n: d, k: cols, a: tile, lda: bc, b: vBase, ldb: s.keyStride,
                                           c: acc, ldc: d, accumulate: true))
            }
            for r in 0..<rows {
                let out = buffers.output + ((b * s.queries + i0 + r) * s.queryHeads + h) * d
                let inverse: Float = rowSum[r] > 0 ? 1 / rowSum[r] : 0
                for e in 0..<d { out[e] = acc[r * d + e] * inverse }
                buffers.logSumExp?[(b * s.queryHeads + h) * s.queries + i0 + r] =
                    rowSum[r] > 0 ? rowMax[r] + log(rowSum[r]) : -.infinity
            }
        }
    }

    /// Split-key decode: tasks are (batch, kv head, key chunk); each query head of the group and each
    /// query row gets a partial (max, sum, output) per chunk, merged at the end.
    public static func decode(_ s: AttentionShape, _ buffers: AttentionBuffers) {
        decode(s, q: buffers.q, kv: .float32(keys: buffers.k, values: buffers.v), output: buffers.output, logSumExp: buffers.logSumExp)
    }

    /// The decode path over f32, f16 or int8 keys and values (int8: block-scaled, a value's scale at its offset / block).
    static func decode(_ s: AttentionShape, q: UnsafePointer<Float>, kv: AttentionKV, output: UnsafeMutablePointer<Float>,
                       logSumExp: UnsafeMutablePointer<Float>?) {
        let kernels = Kernels.active
        let d = s.headDim, chunk = decodeChunk(keys: s.keys, streams: s.batch * s.kvHeads)
        let chunks = (s.keys + chunk - 1) / chunk
        let rowsPerKV = s.group * s.queries
        // Partials: (batch, kvHead, chunk, queries, group) of max, sum and output.
        let partialRows = s.batch * s.kvHeads * chunks * rowsPerKV
        let partialMax = UnsafeMutablePointer<Float>.allocate(capacity: partialRows)
        let partialSum = UnsafeMutablePointer<Float>.allocate(capacity: partialRows)
        let partialOut = UnsafeMutablePointer<Float>.allocate(capacity: partialRows * d)
        defer { partialMax.deallocate(); partialSum.deallocate(); partialOut.deallocate() }

        ThreadPool.shared.parallelFor(s.batch * s.kvHeads * chunks) { order in
            // Chunk-major: the threads walk the cache front to back with all heads of a chunk close in
            // time. A head's keys are a 256-byte slice of each token's row, so head by head the reads
            // would stride across the whole cache; this way the rows' DRAM pages are read together.
            let kvh = order % s.kvHeads, c = (order / s.kvHeads) % chunks, b = order / (s.kvHeads * chunks)
            let task = (b * s.kvHeads + kvh) * chunks + c  // where its partials go: (batch, kvHead, chunk)
            let j0 = c * chunk, j1 = min(s.keys, j0 + chunk), cols = j1 - j0
            let offset = s.kvOffset(batch: b, token: j0, head: kvh)
            decodeTask(s, batch: b, kvHead: kvh, keys: j0, j1, chunk: chunk, q: q, scratch: threadScratch(s.group * chunk + s.group),
                       partialMax: partialMax, partialSum: partialSum, partialOut: partialOut, task: task) { queries, scores in
                switch kv {
                case .float32(let keys, _):
                    kernels.groupScores(heads: s.group, n: cols, k: d, q: queries, ldq: d, w: keys + offset, ldw: s.keyStride,
                                        y: scores, ldy: chunk)
                case .float16(let keys, _):
                    kernels.groupScoresHalf(heads: s.group, n: cols, k: d, q: queries, ldq: d, w: keys + offset, ldw: s.keyStride,
                                            y: scores, ldy: chunk)
                case .int8(let keys, let keyScales, _, _, let block):  // a value's scale sits at its offset / block
                    kernels.groupScoresInt8(heads: s.group, n: cols, k: d, q: queries, ldq: d, w: keys + offset, ldw: s.keyStride,
                                            scales: keyScales + offset / block, scaleStride: s.keyStride / block, block: block,
                                            y: scores, ldy: chunk)
                }
            } weighValues: { weights, out in
                switch kv {
                case .float32(_, let values):
                    kernels.groupWeightedSum(heads: s.group, n: cols, k: d, x: weights, ldx: chunk, w: values + offset, ldw: s.keyStride,
                                             y: out, ldy: d, accumulate: false)
                case .float16(_, let values):
                    kernels.groupWeightedSumHalf(heads: s.group, n: cols, k: d, x: weights, ldx: chunk, w: values + offset,
                                                 ldw: s.keyStride, y: out, ldy: d, accumulate: false)
                case .int8(_, _, let values, let valueScales, let block):
                    kernels.groupWeightedSumInt8(heads: s.group, n: cols, k: d, x: weights, ldx: chunk, w: values + offset,
                                                 ldw: s.keyStride, scales: valueScales + offset / block, scaleStride: s.keyStride / block,
                                                 block: block, y: out, ldy: d, accumulate: false)
                }
            }
        }
        mergeChunks(s, chunks: chunks, partialMax: partialMax, partialSum: partialSum, partialOut: partialOut,
                    output: output, logSumExp: logSumExp)
    }

    /// One split-key decode task — kv head `kvh` of sequence `b`, keys [j0, j1) — shared by the
    /// contiguous and the paged cache: for each query row, the scores of the group's query heads
    /// (`scoreKeys(queries, scores)`: the group's queries `headDim` apart, its score rows `chunk` apart),
    /// scaled, masked, an online softmax into the task's partial max and sum, and the weighted values
    /// (`weighValues(weights, out)`: weight rows `chunk` apart, outputs `headDim` apart). The f32 caches
    /// score and sum all the heads in one pass over the keys and one over the values. Partials are
    /// (task, queries, group).
    @inline(__always)
    static func decodeTask(_ s: AttentionShape, batch b: Int, kvHead kvh: Int, keys j0: Int, _ j1: Int, chunk: Int,
                           q: UnsafePointer<Float>, scratch scores: UnsafeMutablePointer<Float>,
                           partialMax: UnsafeMutablePointer<Float>, partialSum: UnsafeMutablePointer<Float>,
                           partialOut: UnsafeMutablePointer<Float>, task: Int,
                           scoreKeys: (_ queries: UnsafePointer<Float>, _ scores: UnsafeMutablePointer<Float>) -> Void,
                           weighValues: (_ weights: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) -> Void) {
        let kernels = Kernels.active
        let d = s.headDim, cols = j1 - j0, rowsPerKV = s.group * s.queries
        let correction = scores + s.group * chunk
        for i in 0..<s.queries {
            let slot = task * rowsPerKV + i * s.group
            (partialMax + slot).update(repeating: -.infinity, count: s.group)
            (partialSum + slot).update(repeating: 0, count: s.group)
            if s.tileVisibility(batch: b, rows: i, i + 1, keys: j0, j1) == .hidden {
                (partialOut + slot * d).update(repeating: 0, count: s.group * d)
                continue
            }
            scoreKeys(q + ((b * s.queries + i) * s.queryHeads + kvh * s.group) * d, scores)
            kernels.scaleScores(scores, rows: s.group, cols: cols, ld: chunk, scale: s.scale, softcap: s.softcap ?? 0)
            for g in 0..<s.group { s.applyMask(scores + g * chunk, ld: chunk, batch: b, rows: i, i + 1, keys: j0, j1) }
            kernels.onlineSoftmax(scores, rows: s.group, cols: cols, ld: chunk, rowMax: partialMax + slot,
                                  rowSum: partialSum + slot, correction: correction)
            weighValues(scores, partialOut + slot * d)
        }
    }

    /// The last pass of split-key decode: each row's chunks, rescaled to the overall maximum, summed
    /// and normalised. Partials are laid out (batch, kvHead, chunk, queries, group).
    static func mergeChunks(_ s: AttentionShape, chunks: Int, partialMax: UnsafePointer<Float>, partialSum: UnsafePointer<Float>,
                            partialOut: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                            logSumExp: UnsafeMutablePointer<Float>?) {
        let d = s.headDim, rowsPerKV = s.group * s.queries
        for b in 0..<s.batch {
            for h in 0..<s.queryHeads {
                let kvh = h / s.group, g = h % s.group
                for i in 0..<s.queries {
                    let first = ((b * s.kvHeads + kvh) * chunks) * rowsPerKV + i * s.group + g
                    let (maximum, total) = mergeRow(chunks: chunks, first: first, stride: rowsPerKV, headDim: d, partialMax: partialMax,
                                                    partialSum: partialSum, partialOut: partialOut,
                                                    output: output + ((b * s.queries + i) * s.queryHeads + h) * d)
                    logSumExp?[(b * s.queryHeads + h) * s.queries + i] = total > 0 ? maximum + log(total) : -.infinity
                }
            }
        }
    }

    /// One output row of split-key decode: its partials (slots first, first + stride, … for the
    /// chunks) rescaled to their overall maximum, summed and normalised into `output` (zeros when every
    /// key is masked). Returns the maximum and the sum of exponentials.
    @inline(__always)
    static func mergeRow(chunks: Int, first: Int, stride: Int, headDim d: Int, partialMax: UnsafePointer<Float>,
                         partialSum: UnsafePointer<Float>, partialOut: UnsafePointer<Float>,
                         output out: UnsafeMutablePointer<Float>) -> (maximum: Float, total: Float) {
        if chunks == 1 {
            // The loop below with one chunk (weight exp(0) = 1, so the same bits), without its zeroing,
            // exp and second pass: a batched decode step merges thousands of one-chunk rows.
            let maximum = partialMax[first], total = partialSum[first]
            guard maximum > -.infinity else { out.update(repeating: 0, count: d); return (maximum, 0) }
            let inverse = 1 / total, from = partialOut + first * d
            for e in 0..<d { out[e] = from[e] * inverse }
            return (maximum, total)
        }
        var maximum = -Float.infinity
        for c in 0..<chunks { maximum = max(maximum, partialMax[first + c * stride]) }
        out.update(repeating: 0, count: d)
        var total: Float = 0
        if maximum > -.infinity {
            for c in 0..<chunks {
                let slot = first + c * stride
                guard partialMax[slot] > -.infinity else { continue }
                let weight = exp(partialMax[slot] - maximum)
                total += partialSum[slot] * weight
                for e in 0..<d { out[e] += partialOut[slot * d + e] * weight }
            }
            let inverse = 1 / total
            for e in 0..<d { out[e] *= inverse }
        }
        return (maximum, total)
    }
}

/// This thread's attention workspace (reused across calls; see tessera_thread_scratch).
@inline(__always) func threadScratch(_ count: Int) -> UnsafeMutablePointer<Float> {
    tessera_thread_scratch(Int32(TESSERA_SCRATCH_ATTENTION), max(count, 1) * 4)!.bindMemory(to: Float.self, capacity: max(count, 1))
}

extension AttentionShape {
    @inline(__always) func k(_ base: UnsafePointer<Float>, batch b: Int, token: Int, head: Int) -> UnsafePointer<Float> {
        base + kvOffset(batch: b, token: token, head: head)
    }
    @inline(__always) func k(_ base: UnsafeMutablePointer<Float>, batch b: Int, token: Int, head: Int) -> UnsafeMutablePointer<Float> {
        base + kvOffset(batch: b, token: token, head: head)
    }
}

#if canImport(Glibc)
import Glibc
#endif
