// A decoder-only transformer, the shape shared by Llama, SmolLM2, Mistral, Qwen2, Gemma 3 and GPT-2:
// three plain parts, as in llama2.c — the Config (TransformerConfig, the blueprint), the Weights
// (below, one struct per layer), and the RunState (activation buffers, reused between steps) — plus the
// KV cache the caller owns. The family files (Llama.swift, Gemma3.swift, GPT2.swift) only fill these.
//
// One forward pass, for T new tokens at positions p..p+T-1 after the p tokens already cached:
//   x = embed(tokens) [· sqrt(hidden)] [+ position embedding]
//   per layer:  h = norm(x);  q, k, v = h·Wqkvᵀ [+ b];  [per-head norm of q, k];  RoPE(q, k)
//               append k, v to the cache;  a = attention(q, cached K, V; causal, [window])
//               o = a·Woᵀ [+ b];  [o = norm(o)];  x += o
//               h = norm(x);  f = down(act(gate(h)) · up(h))  or  down(act(up(h)));  [f = norm(f)];  x += f
//   logits = norm(x)·Woutᵀ  [softcap]
// The model code never touches SIMD: every step is a kernel call on raw buffers.
import Foundation
import TesseraCore
import TesseraKVCache
import TesseraKernels

/// A normalisation layer's parameters: weight (with any checkpoint offset already added) and bias.
struct NormWeights: @unchecked Sendable {
    let weight: FloatBuffer   // (width)
    let bias: FloatBuffer?    // (width), LayerNorm only
}

struct LayerWeights: @unchecked Sendable {
    let attentionNorm: NormWeights
    let qkv: Linear               // (q heads + 2 kv heads) · headDim outputs, in that order
    let queryNorm: NormWeights?   // (headDim)
    let keyNorm: NormWeights?     // (headDim)
    let attentionOutput: Linear   // (hidden, heads · headDim)
    let postAttentionNorm: NormWeights?
    let feedForwardNorm: NormWeights
    let gateUp: Linear            // gate and up stacked (2 · intermediate), or up alone
    let down: Linear              // (hidden, intermediate)
    let postFeedForwardNorm: NormWeights?
}

struct ModelWeights: @unchecked Sendable {
    let embedding: EmbeddingTable           // (vocab, hidden)
    let positions: EmbeddingTable?          // (context, hidden), GPT-2
    let layers: [LayerWeights]
    let outputNorm: NormWeights
    let output: Linear                      // (vocab, hidden)
    /// The file the embedding tables point into (kept mapped).
    let source: any WeightSource
}

/// Activation buffers for up to `capacity` tokens, reused across forward passes.
final class RunState {
    private(set) var capacity = 0
    var x = FloatBuffer(count: 0)          // (T, hidden) the residual stream
    var h = FloatBuffer(count: 0)          // (T, hidden) normed input of a sub-layer
    var qkv = FloatBuffer(count: 0)        // (T, q + 2 kv widths)
    var q = FloatBuffer(count: 0)          // (T, heads, headDim)
    var k = FloatBuffer(count: 0)          // (T, kvHeads, headDim)
    var v = FloatBuffer(count: 0)
    var attention = FloatBuffer(count: 0)  // (T, heads, headDim)
    var ffn = FloatBuffer(count: 0)        // (T, 2 · intermediate)
    var act = FloatBuffer(count: 0)        // (T, intermediate)
    var out = FloatBuffer(count: 0)        // (T, hidden)
    var qRaw = FloatBuffer(count: 0)       // (T, heads, headDim) queries before RoPE (for sink tokens)
    let attentionWorkspace = CacheAttention.Workspace()

    func ensure(_ tokens: Int, _ c: TransformerConfig) {
        guard tokens > capacity else { return }
        let n = max(tokens, 1)
        x = FloatBuffer(count: n * c.hiddenSize); h = FloatBuffer(count: n * c.hiddenSize)
        qkv = FloatBuffer(count: n * (c.queryWidth + 2 * c.kvWidth))
        q = FloatBuffer(count: n * c.queryWidth); k = FloatBuffer(count: n * c.kvWidth); v = FloatBuffer(count: n * c.kvWidth)
        attention = FloatBuffer(count: n * c.queryWidth)
        ffn = FloatBuffer(count: n * 2 * c.intermediateSize); act = FloatBuffer(count: n * c.intermediateSize)
        out = FloatBuffer(count: n * c.hiddenSize)
        qRaw = FloatBuffer(count: n * c.queryWidth)
        capacity = n
    }
}

/// Which positions' logits a forward pass returns.
public enum LogitsSelection: Sendable, Equatable {
    case last
    case all
    /// The last n positions' logits (scoring a suffix).
    case tail(Int)
}

public final class DecoderModel: @unchecked Sendable {
    public let config: TransformerConfig
    public let precision: WeightPrecision
    let weights: ModelWeights
    let ropeGlobal: RoPETable?
    let ropeLocal: RoPETable?
    let state = RunState()

    init(config: TransformerConfig, weights: ModelWeights, precision: WeightPrecision) {
        self.config = config
        self.weights = weights
        self.precision = precision
        let linears = weights.layers.flatMap { [$0.qkv, $0.attentionOutput, $0.gateUp, $0.down] } + [weights.output]
        hasPanelPath = linears.contains { linear in
            linear.parts.contains { if case .quantized(let q) = $0.matrix { !q.lanes } else { false } }
        }
        let initial = min(config.contextLength, 4096)
        ropeGlobal = config.rope.map { RoPETable(config: $0, capacity: initial) }
        ropeLocal = config.localRope.map { RoPETable(config: $0, capacity: initial) }
    }

    /// Whether a long prompt's rows take another arithmetic than decode rows in some matrix (quantised
    /// weights in the 4-row layout: dequantised panels against integer kernels). Dense weights and the
    /// lane layout give every row the same arithmetic, so their prefix-cache blocks need no path key.
    public let hasPanelPath: Bool

    /// Mixed into the prefix-cache hash of a request's blocks where the model has two matrix paths:
    /// they give keys and values that differ in the last bits, so a block computed by one is never
    /// reused by a request of the other. Then a request gives the same bits whether its prefix was
    /// cached or not (a seeded request repeats exactly).
    public func prefixCacheSalt(promptLength: Int) -> UInt64 {
        hasPanelPath && BatchSequence.promptUsesPanels(promptLength) ? 0x7061_6e65_6c73_0000 : 0  // "panels"
    }

    /// Bytes of the weights the forward pass reads per token (the matrices as held; the embedding
    /// table stays in the mapped file and only its gathered rows are read).
    public var matrixBytes: Int {
        weights.layers.reduce(weights.output.byteCount) { total, l in
            total + l.qkv.byteCount + l.attentionOutput.byteCount + l.gateUp.byteCount + l.down.byteCount
        }
    }

    /// A KV cache for this model: `options.policy` for its layers, except that layers the model itself
    /// limits to a sliding window (Gemma 3's local layers, Mistral) keep only that window in a ring.
    /// Full layers hold at most `options.maxTokens` (default and limit: the model's context); a cache
    /// with no full layer streams without limit.
    public func makeCache(_ options: KVCacheOptions = KVCacheOptions()) throws(ModelError) -> LayeredKVCache {
        let c = config
        let policies = (0..<c.layerCount).map { l -> KVLayerPolicy in
            let modelWindow = c.localLayers[l] ? c.slidingWindow : nil
            switch options.policy {
            case .full:
                return modelWindow.map { .window($0) } ?? .full
            case .window(let w):
                return .window(min(w, modelWindow ?? w))
            case .sinks(let k, let w):
                if let m = modelWindow, m <= k + w { return .window(m) }
                return .sinks(k, window: w)
            }
        }
        let limit = policies.contains(.full) || options.maskOnly ? min(options.maxTokens ?? c.contextLength, c.contextLength)
                                             : (options.maxTokens ?? Int.max)
        do {
            return try LayeredKVCache(policies: policies, kvHeads: c.kvHeadCount, headDim: c.headDim, elementType: options.elementType,
                                      maxTokens: limit, maxChunk: options.maxChunk, maskOnly: options.maskOnly)
        } catch { throw .kvCache(error) }
    }

    /// A full f32 cache holding at most `maxTokens` (default: the model's context).
    public func makeCache(maxTokens: Int?) -> LayeredKVCache {
        try! makeCache(KVCacheOptions(maxTokens: maxTokens.map { max(1, $0) }))
    }

    // MARK: - The forward pass (the hot function)

    /// Runs `tokens` after the cache's contents and appends them to the cache. Returns the logits,
    /// (1, vocab) for `.last`, (tokens.count, vocab) for `.all` or (n, vocab) for `.tail(n)`, row-major. Inputs longer than the
    /// cache's `maxChunk` run as consecutive chunks.
    public func forward(_ tokens: [Int32], cache: any KVCache, logits selection: LogitsSelection = .last) throws(ModelError) -> [Float] {
        guard !tokens.isEmpty else { return [] }
        for id in tokens where id < 0 || Int(id) >= weights.embedding.rows {
            throw .invalidToken(id, vocabularySize: weights.embedding.rows)
        }
        // Check the whole input fits before changing the cache.
        let end = cache.length + tokens.count
        if end > cache.maxTokens { throw .promptTooLong(tokens: end, limit: cache.maxTokens) }
        if let table = weights.positions, end > table.rows { throw .promptTooLong(tokens: end, limit: table.rows) }
        let chunk = cache.maxChunk
        if tokens.count <= chunk { return try forwardChunk(tokens[...], cache: cache, logits: selection) }
        var result: [Float] = []
        let wanted: Int  // logits for positions wanted..<tokens.count
        switch selection {
        case .last: wanted = tokens.count - 1
        case .all: wanted = 0
        case .tail(let n): wanted = max(0, tokens.count - n)
        }
        for first in stride(from: 0, to: tokens.count, by: chunk) {
            let end = min(tokens.count, first + chunk)
            let rows = end - max(first, wanted)
            let logits = try forwardChunk(tokens[first..<end], cache: cache, logits: rows > 0 ? .tail(rows) : nil)
            result += logits
        }
        return result
    }

    /// One forward pass over at most `cache.maxChunk` tokens; no output head when `selection` is nil.
    private func forwardChunk(_ tokens: ArraySlice<Int32>, cache: any KVCache, logits selection: LogitsSelection?) throws(ModelError) -> [Float] {
        let c = config, kern = Kernels.active
        let T = tokens.count
        let start = cache.length
        do { try cache.reserve(T) } catch {
            if case .full = error { throw .promptTooLong(tokens: start + T, limit: cache.maxTokens) }
            throw .kvCache(error)
        }
        state.ensure(T, c)
        let H = c.hiddenSize, x = state.x.pointer
        let positions = (0..<T).map { Int32(start + $0) }
        ropeGlobal?.ensureCapacity(start + T)
        ropeLocal?.ensureCapacity(start + T)

        weights.embedding.gather(Array(tokens), into: x)
        if let table = weights.positions {
            let p = state.out.pointer
            table.gather(positions, into: p)
            kern.add(x, p, x, count: T * H)
        }

        runLayers(tokens: T, positions: positions, keepUnrotated: { cache.policy(layer: $0).sinks > 0 }) { l, table in
            let q = state.q.pointer, k = state.k.pointer
            let policy = cache.policy(layer: l)
            cache.append(layer: l, keys: k, values: state.v.pointer, count: T)
            let window = [c.localLayers[l] ? c.slidingWindow : nil, policy.window].compactMap { $0 }.min()
            CacheAttention.forward(CacheAttention.Query(q: q, unrotated: policy.sinks > 0 ? state.qRaw.pointer : nil, start: start,
                                                        tokens: T, sinks: policy.sinks, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                                                        scale: c.attentionScale, softcap: c.attentionSoftcap, window: window, rope: table),
                                   segments: cache.segments(layer: l), output: state.attention.pointer, workspace: state.attentionWorkspace)
        }
        cache.commit(T)
        guard let selection else { return [] }

        // Output head, on the rows asked for.
        let rows: Int
        switch selection {
        case .last: rows = 1
        case .all: rows = T
        case .tail(let n): rows = min(max(n, 1), T)
        }
        return outputHead(rows: Array((T - rows)..<T))
    }

    /// The layers over the T rows of the residual stream `state.x` at `positions`. Per layer,
    /// `attend(layer, its RoPE table)` receives the rotated q, k and v (in state.q/k/v; with
    /// `keepUnrotated(layer)`, the queries before RoPE in state.qRaw) and writes the attention output,
    /// (T, heads, headDim), to state.attention.
    func runLayers(tokens T: Int, positions: [Int32], panelRows: Int? = nil, keepUnrotated: (Int) -> Bool = { _ in false },
                   attend: (Int, RoPETable?) -> Void) {
        let c = config, kern = Kernels.active
        let H = c.hiddenSize, qW = c.queryWidth, kvW = c.kvWidth, I = c.intermediateSize
        let x = state.x.pointer, h = state.h.pointer
        for (l, layer) in weights.layers.enumerated() {
            // Attention block.
            norm(x, layer.attentionNorm, h, rows: T, cols: H)
            layer.qkv(h, m: T, out: state.qkv.pointer, panelRows: panelRows)
            split(T, qW: qW, kvW: kvW)
            let q = state.q.pointer, k = state.k.pointer
            if let n = layer.queryNorm { norm(q, n, q, rows: T * c.headCount, cols: c.headDim) }
            if let n = layer.keyNorm { norm(k, n, k, rows: T * c.kvHeadCount, cols: c.headDim) }
            let table = (c.localLayers[l] ? ropeLocal : nil) ?? ropeGlobal
            if keepUnrotated(l) { state.qRaw.pointer.update(from: q, count: T * qW) }
            if let table {
                table.apply(q, heads: c.headCount, headDim: c.headDim, tokens: T, positions: positions)
                table.apply(k, heads: c.kvHeadCount, headDim: c.headDim, tokens: T, positions: positions)
            }
            attend(l, table)
            let o = state.out.pointer
            layer.attentionOutput(state.attention.pointer, m: T, out: o, panelRows: panelRows)
            if let n = layer.postAttentionNorm { norm(o, n, o, rows: T, cols: H) }
            kern.add(x, o, x, count: T * H)

            // Feed-forward block.
            norm(x, layer.feedForwardNorm, h, rows: T, cols: H)
            layer.gateUp(h, m: T, out: state.ffn.pointer, panelRows: panelRows)
            let f = state.ffn.pointer, a = state.act.pointer
            if c.gatedFeedForward {
                // Row by row (gate and up interleave per token), the rows spread over the pool: one row is
                // too little work to split, and a batch's rows one after another kept the other threads
                // waiting.
                ThreadPool.shared.parallelRanges(T, grain: max(1, 4096 / I)) { rows in
                    for t in rows {
                        kern.gatedActivation(c.activation, gate: f + t * 2 * I, up: f + t * 2 * I + I, a + t * I, count: I)
                    }
                }
            } else {
                kern.activation(c.activation, f, a, count: T * I)
            }
            layer.down(a, m: T, out: o, panelRows: panelRows)
            if let n = layer.postFeedForwardNorm { norm(o, n, o, rows: T, cols: H) }
            kern.add(x, o, x, count: T * H)
        }
    }

    /// Logits (rows.count, vocab) of the given rows of the residual stream.
    func outputHead(rows: [Int], panelRows: Int? = nil) -> [Float] {
        let c = config, H = c.hiddenSize
        let x = state.x.pointer, h = state.h.pointer
        for (i, r) in rows.enumerated() { norm(x + r * H, weights.outputNorm, h + i * H, rows: 1, cols: H) }
        // Every element is written by the product (not zeroed first: 3 MB a batch-16 step).
        var logits = [Float](unsafeUninitializedCapacity: rows.count * c.vocabularySize) { out, count in
            weights.output(h, m: rows.count, out: out.baseAddress!, panelRows: panelRows)
            count = rows.count * c.vocabularySize
        }
        if let cap = c.finalLogitSoftcap {
            for i in logits.indices { logits[i] = cap * tanhf(logits[i] / cap) }
        }
        return logits
    }

    func norm(_ x: UnsafePointer<Float>, _ n: NormWeights, _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        switch config.norm {
        case .rms:
            Kernels.active.rmsNorm(x, weight: n.weight.pointer, y, rows: rows, cols: cols, epsilon: config.normEpsilon)
        case .layer:
            Kernels.active.layerNorm(x, weight: n.weight.pointer, bias: n.bias?.pointer, y, rows: rows, cols: cols,
                                     epsilon: config.normEpsilon)
        }
    }

    /// Copies the fused projection's (T, q | k | v) rows into the separate q, k, v buffers.
    func split(_ T: Int, qW: Int, kvW: Int) {
        let src = state.qkv.pointer, row = qW + 2 * kvW
        let (q, k, v) = (state.q.pointer, state.k.pointer, state.v.pointer)
        // Tokens spread over the pool (a batch-16 step copied ~60 KB a layer on one thread).
        ThreadPool.shared.parallelRanges(T, grain: max(1, 4096 / row)) { tokens in
            for t in tokens {
                (q + t * qW).update(from: src + t * row, count: qW)
                (k + t * kvW).update(from: src + t * row + qW, count: kvW)
                (v + t * kvW).update(from: src + t * row + qW + kvW, count: kvW)
            }
        }
    }
}
