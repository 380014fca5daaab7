// Attention of a forward pass's queries over a KV cache, whatever its kind: one flash-attention call
// per segment the cache hands over (a full layer's one run, a ring's one or two, the sink tokens),
// joined by the log-sum-exp merge (FlashAttention.merge). Each segment is masked in absolute
// positions — causal, and the layer's sliding window for the recent tokens — through the mask's query
// offset (the query's position minus the segment's first position).
//
// Sink tokens (StreamingLLM) are attended from cache positions: with keys stored after RoPE at their
// absolute positions, a query at position p sees the sink segment rotated to min(p, cap) instead of p,
// which gives every (query, sink) pair the distance it has in the cache, as re-rotating the cached keys
// would; the recent window's distances are the same in the text and in the cache.
import TesseraCore
import TesseraKVCache
import TesseraKernels

public enum CacheAttention {
    /// The queries of one layer's forward pass.
    public struct Query {
        /// (tokens, heads, headDim), rotated to positions start..<start+tokens.
        public var q: UnsafePointer<Float>
        /// The same queries before RoPE: needed when the cache has sink tokens (nil otherwise).
        public var unrotated: UnsafePointer<Float>?
        public var start: Int, tokens: Int
        /// The layer's sink tokens: a segment that starts at position 0 and is not the sink store (a
        /// full cache used as the reference) keeps them visible by mask.
        public var sinks: Int
        public var heads: Int, kvHeads: Int, headDim: Int
        public var scale: Float
        public var softcap: Float?
        /// The sliding window of the layer (the model's or the cache's, the smaller), nil for none.
        public var window: Int?
        /// The layer's RoPE table (nil: no rotary positions, and then no re-rotation for sinks).
        public var rope: RoPETable?

        public init(q: UnsafePointer<Float>, unrotated: UnsafePointer<Float>?, start: Int, tokens: Int, sinks: Int = 0, heads: Int,
                    kvHeads: Int, headDim: Int, scale: Float, softcap: Float?, window: Int?, rope: RoPETable?) {
            self.q = q; self.unrotated = unrotated; self.start = start; self.tokens = tokens; self.sinks = sinks
            self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
            self.scale = scale; self.softcap = softcap; self.window = window; self.rope = rope
        }
    }

    /// Buffers reused across calls: sink-rotated queries, one segment's output and the log-sum-exps.
    public final class Workspace {
        var sinkQueries = FloatBuffer(count: 0)     // (tokens, heads, headDim)
        var segmentOutput = FloatBuffer(count: 0)   // (tokens, heads, headDim)
        var logSumExp = FloatBuffer(count: 0)       // (heads, tokens) of the merged result
        var segmentLogSumExp = FloatBuffer(count: 0) // (heads, tokens)
        private var capacity = 0

        public init() {}

        func ensure(_ q: Query) {
            let rows = q.tokens * q.heads
            guard rows > capacity else { return }
            sinkQueries = FloatBuffer(count: rows * q.headDim)
            segmentOutput = FloatBuffer(count: rows * q.headDim)
            logSumExp = FloatBuffer(count: rows)
            segmentLogSumExp = FloatBuffer(count: rows)
            capacity = rows
        }
    }

    /// output (tokens, heads, headDim) = attention of the queries over the segments.
    public static func forward(_ query: Query, segments: [KVSegment], output: UnsafeMutablePointer<Float>, workspace: Workspace) {
        workspace.ensure(query)
        let T = query.tokens
        if segments.isEmpty { output.update(repeating: 0, count: T * query.heads * query.headDim); return }
        for (index, segment) in segments.enumerated() {
            var q = query.q
            if let cap = segment.sinkQueryPositionCap, query.start + T - 1 > cap, let rope = query.rope {
                guard let unrotated = query.unrotated else { preconditionFailure("a sink segment needs the unrotated queries") }
                let rotated = workspace.sinkQueries.pointer
                rotated.update(from: unrotated, count: T * query.heads * query.headDim)
                rope.apply(rotated, heads: query.heads, headDim: query.headDim, tokens: T,
                           positions: (0..<T).map { Int32(min(query.start + $0, cap)) })
                q = UnsafePointer(rotated)
            }
            let isSinkStore = segment.sinkQueryPositionCap != nil
            let mask = AttentionMask(causal: true, window: isSinkStore ? nil : query.window,
                                     sinks: !isSinkStore && segment.firstPosition == 0 ? query.sinks : 0,
                                     queryOffset: query.start - segment.firstPosition)
            let shape = AttentionShape(queries: T, keys: segment.count, queryHeads: query.heads, kvHeads: query.kvHeads,
                                       headDim: query.headDim, scale: query.scale, softcap: query.softcap, mask: mask,
                                       kvLayout: segment.kvLayout, kvHeadStride: segment.kvHeadStride)
            if segments.count == 1 {
                FlashAttention.forward(shape, q: q, kv: segment.data, output: output)
            } else if index == 0 {
                FlashAttention.forward(shape, q: q, kv: segment.data, output: output, logSumExp: workspace.logSumExp.pointer)
            } else {
                FlashAttention.forward(shape, q: q, kv: segment.data, output: workspace.segmentOutput.pointer,
                                       logSumExp: workspace.segmentLogSumExp.pointer)
                FlashAttention.merge(into: output, logSumExp: workspace.logSumExp.pointer, adding: workspace.segmentOutput.pointer,
                                     logSumExp: workspace.segmentLogSumExp.pointer, queries: T, queryHeads: query.heads,
                                     headDim: query.headDim)
            }
        }
    }
}
