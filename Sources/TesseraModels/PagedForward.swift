// The forward pass of a continuous-batching step: the new tokens of many sequences — prefill chunks
// and single decode tokens mixed — run through the weights together, as one (T_total, hidden) batch,
// so every weight matrix is read once per step, not once per sequence. Only attention is per
// sequence: each sequence writes its keys and values into its blocks of the paged cache and attends
// over its own pages (PagedAttention), masked causally in its own positions.
import TesseraCore
import TesseraKVCache
import TesseraKernels

/// One sequence's share of a batched step.
public struct BatchSequence: Sendable {
    /// The tokens to run, at positions start ..< start + tokens.count (the positions before are cached).
    public var tokens: [Int32]
    public var start: Int
    /// The sequence's blocks in the paged cache, enough for start + tokens.count tokens.
    public var blockTable: [Int]
    /// Whether the logits of its last token are wanted (it samples this step).
    public var wantsLogits: Bool
    /// Whether these rows are one decoded token (rather than prompt or recomputed rows).
    public var isDecode: Bool
    /// The length of the request's whole prompt. Prompt rows of a request with a long prompt take the
    /// (dequantised) panel path of quantised matrices, every other row the integer path — a rule of the
    /// request alone, fixed by its prompt, so that its arithmetic does not change with the batch around
    /// it, with how its prompt is chunked, or with how much of it came from the prefix cache (whose
    /// blocks are keyed by the path too: `DecoderModel.prefixCacheSalt`).
    public var promptLength: Int

    public init(tokens: [Int32], start: Int, blockTable: [Int], wantsLogits: Bool, isDecode: Bool = false,
                promptLength: Int = 0) {
        self.tokens = tokens; self.start = start; self.blockTable = blockTable; self.wantsLogits = wantsLogits
        self.isDecode = isDecode; self.promptLength = promptLength
    }

    /// Whether a request's prompt rows take the panel path.
    static func promptUsesPanels(_ promptLength: Int) -> Bool { promptLength >= QuantizedMatrix.gemmThreshold }

    var usesPanels: Bool { !isDecode && BatchSequence.promptUsesPanels(promptLength) }
}

extension DecoderModel {
    /// A paged KV cache sized for this model: `bytes` of blocks of `blockSize` tokens.
    public func makePagedStorage(bytes: Int, blockSize: Int = 16, elementType: KVElementType = .float32) -> PagedKVStorage {
        let c = config
        let blocks = PagedKVStorage.blocks(fitting: bytes, layers: c.layerCount, blockSize: blockSize, kvHeads: c.kvHeadCount,
                                           headDim: c.headDim, elementType: elementType)
        return PagedKVStorage(layers: c.layerCount, blockCount: blocks, blockSize: blockSize, kvHeads: c.kvHeadCount,
                              headDim: c.headDim, elementType: elementType)
    }

    /// Runs one step: every sequence's new tokens, in one pass through the weights. Returns the logits
    /// (one row per sequence that wants them, in batch order), (rows, vocab) row-major.
    public func forward(batch unordered: [BatchSequence], cache: PagedKVStorage) throws(ModelError) -> [Float] {
        let c = config, kern = Kernels.active
        // Panel-path sequences first, so each matrix call splits the rows in two.
        let order = unordered.indices.filter { unordered[$0].usesPanels } + unordered.indices.filter { !unordered[$0].usesPanels }
        let batch = order.map { unordered[$0] }
        let panelRows = batch.prefix { $0.usesPanels }.reduce(0) { $0 + $1.tokens.count }
        let T = batch.reduce(0) { $0 + $1.tokens.count }
        guard T > 0 else { return [] }
        var positions: [Int32] = [], tokens: [Int32] = [], lastRows: [(original: Int, row: Int)] = []
        positions.reserveCapacity(T); tokens.reserveCapacity(T)
        var end = 0
        for (index, sequence) in zip(order, batch) {
            for id in sequence.tokens where id < 0 || Int(id) >= weights.embedding.rows {
                throw .invalidToken(id, vocabularySize: weights.embedding.rows)
            }
            let last = sequence.start + sequence.tokens.count
            let limit = min(c.contextLength, weights.positions?.rows ?? Int.max)
            if last > limit { throw .promptTooLong(tokens: last, limit: limit) }
            precondition(sequence.blockTable.count * cache.blockSize >= last, "the block table is too short for \(last) tokens")
            tokens += sequence.tokens
            positions += (sequence.start..<last).map { Int32($0) }
            end += sequence.tokens.count
            if sequence.wantsLogits { lastRows.append((index, end - 1)) }
        }
        state.ensure(T, c)
        let H = c.hiddenSize, x = state.x.pointer
        let maxPosition = Int(positions.max() ?? 0) + 1
        ropeGlobal?.ensureCapacity(maxPosition)
        ropeLocal?.ensureCapacity(maxPosition)
        weights.embedding.gather(tokens, into: x)
        if let table = weights.positions {
            let p = state.out.pointer
            table.gather(positions, into: p)
            kern.add(x, p, x, count: T * H)
        }

        let qW = c.queryWidth, kvW = c.kvWidth
        var rowOffsets: [Int] = [], rowsBefore = 0
        for sequence in batch { rowOffsets.append(rowsBefore); rowsBefore += sequence.tokens.count }
        // Each sequence's page list, refilled in place layer after layer (the layer's calls, which share
        // them, are gone by the next layer).
        var pageLists = [[AttentionKV]](repeating: [], count: batch.count)
        runLayers(tokens: T, positions: positions, panelRows: panelRows) { l, _ in
            let window = c.localLayers[l] ? c.slidingWindow : nil
            // The new keys and values into each sequence's blocks, the sequences spread over the pool:
            // each decode row lands on cache lines of the pool not touched since the last step, and one
            // thread writing them all kept the others waiting (~2% of a batch-16 step).
            ThreadPool.shared.parallelRanges(batch.count) { range in
                for i in range {
                    let sequence = batch[i]
                    cache.write(layer: l, table: sequence.blockTable, start: sequence.start, keys: state.k.pointer + rowOffsets[i] * kvW,
                                values: state.v.pointer + rowOffsets[i] * kvW, count: sequence.tokens.count)
                }
            }
            var calls: [PagedAttentionCall] = []
            calls.reserveCapacity(batch.count)
            for (i, (sequence, offset)) in zip(batch, rowOffsets).enumerated() {
                let n = sequence.tokens.count, keys = sequence.start + n
                let shape = AttentionShape(queries: n, keys: keys, queryHeads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                                           scale: c.attentionScale, softcap: c.attentionSoftcap,
                                           mask: AttentionMask(causal: true, window: window, queryOffset: sequence.start),
                                           kvLayout: cache.kvLayout, kvHeadStride: cache.kvHeadStride)
                cache.pages(layer: l, table: sequence.blockTable, tokens: keys, into: &pageLists[i])
                calls.append(PagedAttentionCall(shape: shape, q: state.q.pointer + offset * qW, pages: pageLists[i],
                                                pageSize: cache.blockSize, output: state.attention.pointer + offset * qW,
                                                decode: sequence.isDecode))
            }
            PagedAttention.forward(calls)
        }
        // Logits in the caller's order, always by the integer path (one row per sequence).
        let rows = lastRows.sorted { $0.original < $1.original }.map(\.row)
        return rows.isEmpty ? [] : outputHead(rows: rows, panelRows: 0)
    }
}
