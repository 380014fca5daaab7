// PagedAttention: attention over keys and values held in pages (the blocks of a paged KV cache) that
// are scattered through one pool; page i holds keys [i·P, (i+1)·P) of the sequence, token-major.
//
// Decode (a few queries) is bound by reading K and V, so it reads the pages where they are: the keys
// are split into chunks of whole pages, one task per (kv head, chunk); each task scores its chunk page
// by page (a GEMV per page into one score row), takes the online softmax over the chunk, and sums the
// values page by page; the chunks are merged by their (max, sum) as in flash decoding. f32 and int8
// pages alike.
//
// Prefill (many queries) is bound by arithmetic, so the pages are gathered once into contiguous f32
// rows (int8 widened) and the tiled flash kernel runs on them; the copy is O(keys · headDim) against
// the kernel's O(queries · keys · headDim).
import TesseraCore

public enum PagedAttention {
    /// output (queries, queryHeads, headDim) = attention of q (queries, queryHeads, headDim) over
    /// `shape.keys` keys in `pages` of `pageSize` tokens (batch 1; the mask in key positions).
    public static func forward(_ shape: AttentionShape, q: UnsafePointer<Float>, pages: [AttentionKV], pageSize: Int,
                               output: UnsafeMutablePointer<Float>) {
        precondition(shape.batch == 1 && shape.kvLayout == .tokenMajor, "paged attention is per sequence, token-major")
        precondition(pages.count * pageSize >= shape.keys, "\(pages.count) pages of \(pageSize) hold fewer than \(shape.keys) keys")
        if shape.queries == 0 { return }
        if shape.keys == 0 { output.update(repeating: 0, count: shape.queries * shape.queryHeads * shape.headDim); return }
        if shape.queries <= 4 {
            decode(shape, q: q, pages: pages, pageSize: pageSize, output: output)
        } else {
            gathered(shape, q: q, pages: pages, pageSize: pageSize, output: output)
        }
    }

    /// Pages copied (widened) into contiguous rows, then the tiled kernel.
    static func gathered(_ s: AttentionShape, q: UnsafePointer<Float>, pages: [AttentionKV], pageSize: Int,
                         output: UnsafeMutablePointer<Float>) {
        let row = s.kvHeads * s.headDim
        let k = UnsafeMutablePointer<Float>.allocate(capacity: s.keys * row)
        let v = UnsafeMutablePointer<Float>.allocate(capacity: s.keys * row)
        defer { k.deallocate(); v.deallocate() }
        for (p, page) in pages.enumerated() where p * pageSize < s.keys {
            let count = min(pageSize, s.keys - p * pageSize)
            let dk = k + p * pageSize * row, dv = v + p * pageSize * row
            switch page {
            case .float32(let keys, let values):
                dk.update(from: keys, count: count * row)
                dv.update(from: values, count: count * row)
            case .int8(let keys, let keyScales, let values, let valueScales, let block):
                for i in 0..<(count * row / block) {
                    let dK = keyScales[i], dV = valueScales[i]
                    for e in 0..<block {
                        dk[i * block + e] = dK * Float(keys[i * block + e])
                        dv[i * block + e] = dV * Float(values[i * block + e])
                    }
                }
            }
        }
        FlashAttention.forward(s, AttentionBuffers(q: q, k: k, v: v, output: output))
    }

    /// Split-key decode over pages: tasks are (kv head, chunk of whole pages).
    static func decode(_ s: AttentionShape, q: UnsafePointer<Float>, pages: [AttentionKV], pageSize: Int,
                       output: UnsafeMutablePointer<Float>) {
        let kernels = Kernels.active
        let d = s.headDim
        let pagesPerChunk = max(1, FlashAttention.decodeChunk / pageSize)
        let chunk = pagesPerChunk * pageSize
        let chunks = (s.keys + chunk - 1) / chunk
        let rowsPerKV = s.group * s.queries
        let softcap = s.softcap ?? 0
        let partialRows = s.kvHeads * chunks * rowsPerKV
        let partialMax = UnsafeMutablePointer<Float>.allocate(capacity: partialRows)
        let partialSum = UnsafeMutablePointer<Float>.allocate(capacity: partialRows)
        let partialOut = UnsafeMutablePointer<Float>.allocate(capacity: partialRows * d)
        defer { partialMax.deallocate(); partialSum.deallocate(); partialOut.deallocate() }

        ThreadPool.shared.parallelFor(s.kvHeads * chunks) { task in
            let c = task % chunks, kvh = task / chunks
            let j0 = c * chunk, j1 = min(s.keys, j0 + chunk), cols = j1 - j0
            let scores = threadScratch(s.group * chunk + s.group)
            let correction = scores + s.group * chunk
            for i in 0..<s.queries {
                let slot = task * rowsPerKV + i * s.group
                (partialMax + slot).update(repeating: -.infinity, count: s.group)
                (partialSum + slot).update(repeating: 0, count: s.group)
                if s.tileVisibility(batch: 0, rows: i, i + 1, keys: j0, j1) == .hidden {
                    (partialOut + slot * d).update(repeating: 0, count: s.group * d)
                    continue
                }
                for g in 0..<s.group {
                    let query = q + (i * s.queryHeads + kvh * s.group + g) * d
                    forEachPage(pages, pageSize: pageSize, from: j0, to: j1) { page, first, count, at in
                        switch page {
                        case .float32(let keys, _):
                            kernels.gemv(n: count, k: d, w: keys + (first * s.kvHeads + kvh) * d, ldw: s.keyStride, x: query,
                                         y: scores + g * chunk + at, accumulate: false)
                        case .int8(let keys, let keyScales, _, _, let block):
                            let blocks = d / block
                            kernels.gemvInt8(n: count, k: d, w: keys + (first * s.kvHeads + kvh) * d, ldw: s.keyStride,
                                             scales: keyScales + (first * s.kvHeads + kvh) * blocks, scaleStride: s.kvHeads * blocks,
                                             block: block, x: query, y: scores + g * chunk + at)
                        }
                    }
                }
                kernels.scaleScores(scores, rows: s.group, cols: cols, ld: chunk, scale: s.scale, softcap: softcap)
                for g in 0..<s.group { s.applyMask(scores + g * chunk, ld: chunk, batch: 0, rows: i, i + 1, keys: j0, j1) }
                kernels.onlineSoftmax(scores, rows: s.group, cols: cols, ld: chunk, rowMax: partialMax + slot,
                                      rowSum: partialSum + slot, correction: correction)
                for g in 0..<s.group {
                    let out = partialOut + (slot + g) * d
                    forEachPage(pages, pageSize: pageSize, from: j0, to: j1) { page, first, count, at in
                        switch page {
                        case .float32(_, let values):
                            kernels.gemvTransposed(n: count, k: d, w: values + (first * s.kvHeads + kvh) * d, ldw: s.keyStride,
                                                   x: scores + g * chunk + at, y: out, accumulate: at > 0)
                        case .int8(_, _, let values, let valueScales, let block):
                            let blocks = d / block
                            kernels.gemvTransposedInt8(n: count, k: d, w: values + (first * s.kvHeads + kvh) * d, ldw: s.keyStride,
                                                       scales: valueScales + (first * s.kvHeads + kvh) * blocks,
                                                       scaleStride: s.kvHeads * blocks, block: block, x: scores + g * chunk + at,
                                                       y: out, accumulate: at > 0)
                        }
                    }
                }
            }
        }
        FlashAttention.mergeChunks(s, chunks: chunks, partialMax: partialMax, partialSum: partialSum, partialOut: partialOut,
                                   output: output, logSumExp: nil)
    }

    /// Calls `body(page, first row in the page, rows, offset from j0)` for the pages covering keys [j0, j1).
    @inline(__always)
    static func forEachPage(_ pages: [AttentionKV], pageSize: Int, from j0: Int, to j1: Int,
                            _ body: (AttentionKV, Int, Int, Int) -> Void) {
        var j = j0
        while j < j1 {
            let p = j / pageSize, first = j - p * pageSize
            let count = min(pageSize - first, j1 - j)
            body(pages[p], first, count, j - j0)
            j += count
        }
    }
}
