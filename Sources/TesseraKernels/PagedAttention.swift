// PagedAttention: attention over keys and values held in pages (the blocks of a paged KV cache) that
// are scattered through one pool; page i holds keys [i·P, (i+1)·P) of the sequence, token-major.
//
// Decode (a few queries) is bound by reading K and V, so it reads the pages where they are: the keys
// are split into chunks of whole pages, one task per (kv head, chunk); each task scores its chunk page
// by page (a GEMV per page into one score row), takes the online softmax over the chunk, and sums the
// values page by page; the chunks are merged by their (max, sum) as in flash decoding. f32, f16 and
// int8 pages alike.
//
// Prefill (many queries) is bound by arithmetic, so the pages are gathered once into contiguous f32
// rows (f16 and int8 widened) and the tiled flash kernel runs on them; the copy is O(keys · headDim) against
// the kernel's O(queries · keys · headDim).
//
// Pages are token-major (`shape.kvLayout == .tokenMajor`: a page's rows are (tokens, kvHeads, headDim))
// or head-major (each page pointer is its block's first row of kv head 0, and head h's rows are
// `shape.kvHeadStride` elements on, contiguous within the page; the paged store's pages are); an int8
// value's scale sits at its element offset / block.
import CTesseraCPU
import TesseraCore

/// One sequence's attention in a batched call.
public struct PagedAttentionCall: @unchecked Sendable {
    public var shape: AttentionShape
    public var q: UnsafePointer<Float>
    public var pages: [AttentionKV]
    public var pageSize: Int
    public var output: UnsafeMutablePointer<Float>
    /// Whether the decode kernel (pages read in place, split keys) runs it rather than the tiled prefill
    /// kernel. The two sum in different orders, so a caller that needs a row's bits not to depend on
    /// how its queries were grouped (a prompt's tail after a prefix-cache hit against the whole prompt)
    /// chooses by what the rows are, not by how many. Default: up to 4 queries.
    public var decode: Bool

    public init(shape: AttentionShape, q: UnsafePointer<Float>, pages: [AttentionKV], pageSize: Int, output: UnsafeMutablePointer<Float>,
                decode: Bool? = nil) {
        precondition(shape.batch == 1, "paged attention is per sequence")
        precondition(pages.count * pageSize >= shape.keys, "\(pages.count) pages of \(pageSize) hold fewer than \(shape.keys) keys")
        precondition(decode != true || shape.queries <= 4, "the decode kernel takes up to 4 queries, not \(shape.queries)")
        self.shape = shape; self.q = q; self.pages = pages; self.pageSize = pageSize; self.output = output
        self.decode = decode ?? (shape.queries <= 4)
    }
}

public enum PagedAttention {
    /// output (queries, queryHeads, headDim) = attention of q (queries, queryHeads, headDim) over
    /// `shape.keys` keys in `pages` of `pageSize` tokens (batch 1; the mask in key positions).
    public static func forward(_ shape: AttentionShape, q: UnsafePointer<Float>, pages: [AttentionKV], pageSize: Int,
                               output: UnsafeMutablePointer<Float>) {
        forward([PagedAttentionCall(shape: shape, q: q, pages: pages, pageSize: pageSize, output: output)])
    }

    /// Several sequences' attention: every decode call (up to 4 queries) in one parallel region — a step of
    /// continuous batching has one per sequence per layer, too small to pay a region each — and each
    /// prefill chunk on its own.
    public static func forward(_ calls: [PagedAttentionCall]) {
        var decodes: [PagedAttentionCall] = []
        for call in calls {
            let s = call.shape
            if s.queries == 0 { continue }
            if s.keys == 0 { call.output.update(repeating: 0, count: s.queries * s.queryHeads * s.headDim); continue }
            if call.decode { decodes.append(call) } else {
                gathered(s, q: call.q, pages: call.pages, pageSize: call.pageSize, output: call.output)
            }
        }
        if !decodes.isEmpty { decode(decodes) }
    }

    /// Pages copied (widened) into contiguous rows, then the tiled kernel. The rows live in the calling
    /// thread's scratch: allocated per call (every layer of every prompt chunk, megabytes at long
    /// contexts), the kernel zeroed fresh pages for each, ~1% of a 4,000-token prompt.
    static func gathered(_ s: AttentionShape, q: UnsafePointer<Float>, pages: [AttentionKV], pageSize: Int,
                         output: UnsafeMutablePointer<Float>) {
        let row = s.kvHeads * s.headDim, d = s.headDim
        let k = tessera_thread_scratch(Int32(TESSERA_SCRATCH_PAGES), 2 * s.keys * row * 4)!.bindMemory(to: Float.self, capacity: 2 * s.keys * row)
        let v = k + s.keys * row
        // Head-major pages gather into head-major rows (each head's keys contiguous, s.keys apart).
        var contiguous = s
        if s.kvLayout == .headMajor { contiguous.kvHeadStride = s.keys * d }
        for (p, page) in pages.enumerated() where p * pageSize < s.keys {
            let count = min(pageSize, s.keys - p * pageSize)
            if s.kvLayout == .headMajor {
                for h in 0..<s.kvHeads {
                    let to = h * s.keys * d + p * pageSize * d
                    FlashAttention.widenRun(page, from: h * s.kvHeadStride, count: count * d, keys: k + to, values: v + to)
                }
            } else {
                FlashAttention.widenRun(page, from: 0, count: count * row, keys: k + p * pageSize * row, values: v + p * pageSize * row)
            }
        }
        // One key tile width for every call: a query row is then summed in the same key blocks whether
        // its prompt runs whole, in chunks, or as a tail after cached blocks (batch invariance).
        FlashAttention.tiled(contiguous, AttentionBuffers(q: q, k: k, v: v, output: output), keyBlock: 64)
    }

    /// Split-key decode over pages: tasks are (sequence, kv head, chunk of whole pages), all in one
    /// parallel region; each sequence's chunks are merged at the end.
    static func decode(_ calls: [PagedAttentionCall]) {
        let kernels = Kernels.active
        // Per call: its chunk size, chunk count, first task and first partial row.
        var chunkSizes: [Int] = [], chunkCounts: [Int] = [], firstTask: [Int] = [], firstRow: [Int] = []
        var tasks = 0, rows = 0, maxScratch = 0
        let streams = calls.reduce(0) { $0 + $1.shape.kvHeads }
        for call in calls {
            let s = call.shape
            let keysPerChunk = FlashAttention.decodeChunk(keys: s.keys, streams: streams)
            let chunk = max(1, keysPerChunk / call.pageSize) * call.pageSize
            let chunks = (s.keys + chunk - 1) / chunk
            chunkSizes.append(chunk); chunkCounts.append(chunks); firstTask.append(tasks); firstRow.append(rows)
            tasks += s.kvHeads * chunks
            rows += s.kvHeads * chunks * s.group * s.queries
            maxScratch = max(maxScratch, s.group * chunk + s.group)
        }
        let maxDim = calls.map(\.shape.headDim).max() ?? 0
        let partialMax = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        let partialSum = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        let partialOut = UnsafeMutablePointer<Float>.allocate(capacity: rows * maxDim)
        // Every call's pages in one flat buffer, and the calls themselves read in place: a task that
        // copied its call retained (and released) the call's page array, from both cores at once.
        var firstPage: [Int] = [], pageCount = 0
        for call in calls { firstPage.append(pageCount); pageCount += call.pages.count }
        let allPages = UnsafeMutablePointer<AttentionKV>.allocate(capacity: max(pageCount, 1))
        for (call, first) in zip(calls, firstPage) {
            call.pages.withUnsafeBufferPointer { if let base = $0.baseAddress { (allPages + first).initialize(from: base, count: $0.count) } }
        }
        defer { partialMax.deallocate(); partialSum.deallocate(); partialOut.deallocate(); allPages.deallocate() }

        calls.withUnsafeBufferPointer { calls in
            ThreadPool.shared.parallelFor(tasks) { globalTask in
                // The call this task belongs to (the last whose first task is <= it).
                var lo = 0, hi = calls.count - 1
                while lo < hi {
                    let mid = (lo + hi + 1) / 2
                    if firstTask[mid] <= globalTask { lo = mid } else { hi = mid - 1 }
                }
                let s = calls[lo].shape, q = calls[lo].q, output = calls[lo].output, pageSize = calls[lo].pageSize
                let pages = allPages + firstPage[lo]
                let d = s.headDim, chunk = chunkSizes[lo], chunks = chunkCounts[lo]
                let task = globalTask - firstTask[lo]
                let c = task % chunks, kvh = task / chunks
                let j0 = c * chunk, j1 = min(s.keys, j0 + chunk)
                FlashAttention.decodeTask(s, batch: 0, kvHead: kvh, keys: j0, j1, chunk: chunk, q: q, scratch: threadScratch(maxScratch),
                                          partialMax: partialMax + firstRow[lo], partialSum: partialSum + firstRow[lo],
                                          partialOut: partialOut + firstRow[lo] * d, task: task) { queries, scores in
                    forEachPage(pages, pageSize: pageSize, from: j0, to: j1) { page, first, count, at in
                        switch page {
                        case .float32(let keys, _):
                            kernels.groupScores(heads: s.group, n: count, k: d, q: queries, ldq: d,
                                                w: keys + s.kvOffset(batch: 0, token: first, head: kvh), ldw: s.keyStride, y: scores + at, ldy: chunk)
                        case .float16(let keys, _):
                            kernels.groupScoresHalf(heads: s.group, n: count, k: d, q: queries, ldq: d,
                                                    w: keys + s.kvOffset(batch: 0, token: first, head: kvh), ldw: s.keyStride, y: scores + at,
                                                    ldy: chunk)
                        case .int8(let keys, let keyScales, _, _, let block):  // a value's scale sits at its offset / block
                            let offset = s.kvOffset(batch: 0, token: first, head: kvh)
                            kernels.groupScoresInt8(heads: s.group, n: count, k: d, q: queries, ldq: d, w: keys + offset, ldw: s.keyStride,
                                                    scales: keyScales + offset / block, scaleStride: s.keyStride / block, block: block,
                                                    y: scores + at, ldy: chunk)
                        }
                    }
                } weighValues: { weights, out in
                    forEachPage(pages, pageSize: pageSize, from: j0, to: j1) { page, first, count, at in
                        switch page {
                        case .float32(_, let values):
                            kernels.groupWeightedSum(heads: s.group, n: count, k: d, x: weights + at, ldx: chunk,
                                                     w: values + s.kvOffset(batch: 0, token: first, head: kvh), ldw: s.keyStride, y: out,
                                                     ldy: d, accumulate: at > 0)
                        case .float16(_, let values):
                            kernels.groupWeightedSumHalf(heads: s.group, n: count, k: d, x: weights + at, ldx: chunk,
                                                         w: values + s.kvOffset(batch: 0, token: first, head: kvh), ldw: s.keyStride, y: out,
                                                         ldy: d, accumulate: at > 0)
                        case .int8(_, _, let values, let valueScales, let block):
                            let offset = s.kvOffset(batch: 0, token: first, head: kvh)
                            kernels.groupWeightedSumInt8(heads: s.group, n: count, k: d, x: weights + at, ldx: chunk, w: values + offset,
                                                         ldw: s.keyStride, scales: valueScales + offset / block, scaleStride: s.keyStride / block,
                                                         block: block, y: out, ldy: d, accumulate: at > 0)
                        }
                    }
                }
                // A sequence's one chunk (short contexts) is its whole merge: its rows are normalised here, in
                // parallel (the merge's own code), not one sequence after another on the calling thread while
                // the other threads wait.
                if chunks == 1 {
                    let rowsPerKV = s.group * s.queries, partial = firstRow[lo] + task * rowsPerKV
                    for i in 0..<s.queries {
                        for g in 0..<s.group {
                            _ = FlashAttention.mergeRow(chunks: 1, first: partial + i * s.group + g, stride: rowsPerKV, headDim: d,
                                                        partialMax: partialMax, partialSum: partialSum, partialOut: partialOut,
                                                        output: output + (i * s.queryHeads + kvh * s.group + g) * d)
                        }
                    }
                }
            }
        }
        for (index, call) in calls.enumerated() where chunkCounts[index] > 1 {
            let r = firstRow[index]
            FlashAttention.mergeChunks(call.shape, chunks: chunkCounts[index], partialMax: partialMax + r, partialSum: partialSum + r,
                                       partialOut: partialOut + r * call.shape.headDim, output: call.output, logSumExp: nil)
        }
    }

    /// Calls `body(page, first row in the page, rows, offset from j0)` for the pages covering keys [j0, j1).
    @inline(__always)
    static func forEachPage(_ pages: UnsafePointer<AttentionKV>, pageSize: Int, from j0: Int, to j1: Int,
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
