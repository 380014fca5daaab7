// Attention from scratch: the problem description (shapes, heads, masks, softcap) shared by every
// implementation, and the plain reference in Double that is the oracle for all of them.
//
//   scores  S = softcap(scale · Q Kᵀ)           (queries x keys, per head)
//   weights P = softmax(S + mask)               (row-wise; -inf where the mask hides a key)
//   output  O = P V
//
// Layouts are token-major, as a model's projections produce them: Q is (batch, queries, queryHeads,
// headDim), K and V are (batch, keys, kvHeads, headDim). Grouped-query attention lets `group =
// queryHeads / kvHeads` query heads share one K/V head (multi-query when kvHeads == 1, multi-head when
// equal). The causal mask is aligned bottom-right: with more keys than queries (a decode step or a
// prefill chunk after cached tokens) query i sits at position keys - queries + i.

/// Which keys each query may see.
public struct AttentionMask: Sendable, Equatable {
    /// Query i sees only keys at positions <= its own (keys - queries + i).
    public var causal: Bool
    /// Sliding window: a query sees only the `window` most recent positions, its own included.
    public var window: Int?
    /// Attention sinks: the first `sinks` positions stay visible even outside the window (StreamingLLM).
    public var sinks: Int
    /// Padding: for batch element b only keys 0..<keyLengths[b] exist.
    public var keyLengths: [Int]?
    /// The position of query 0 counted in keys (query i sits at queryOffset + i); nil aligns the queries
    /// bottom-right (keys - queries). A cache that hands attention its keys in several runs (a ring
    /// buffer's two halves, sink tokens apart from the window) sets it per run: the query's position
    /// minus the run's first position, negative when the run starts after the query.
    public var queryOffset: Int?

    public init(causal: Bool = true, window: Int? = nil, sinks: Int = 0, keyLengths: [Int]? = nil, queryOffset: Int? = nil) {
        self.causal = causal
        self.window = window
        self.sinks = sinks
        self.keyLengths = keyLengths
        self.queryOffset = queryOffset
    }

    /// The keys query `query` of batch element `batch` sees: [0, sinkEnd) ∪ [low, high).
    @inline(__always)
    public func visibleKeys(batch: Int, query: Int, queries: Int, keys: Int) -> (sinkEnd: Int, low: Int, high: Int) {
        let length = keyLengths.map { min($0[batch], keys) } ?? keys
        let position = (queryOffset ?? keys - queries) + query
        let high = causal ? max(0, min(length, position + 1)) : length
        let low = window.map { max(0, position - $0 + 1) } ?? 0
        return (min(sinks, high), min(low, high), high)
    }

    @inline(__always)
    public func isVisible(batch: Int, query: Int, key: Int, queries: Int, keys: Int) -> Bool {
        let v = visibleKeys(batch: batch, query: query, queries: queries, keys: keys)
        return key < v.sinkEnd || (key >= v.low && key < v.high)
    }
}

/// How K and V are laid out: as a model's projections produce them, or as a KV cache stores them.
public enum KVLayout: String, Sendable, Equatable {
    /// (batch, keys, kvHeads, headDim): one token's heads side by side.
    case tokenMajor
    /// (batch, kvHeads, keys, headDim): each head's keys contiguous, so a head streams sequentially.
    case headMajor
}

/// Sizes and options of one attention call.
public struct AttentionShape: Sendable, Equatable {
    public var batch: Int, queries: Int, keys: Int
    public var queryHeads: Int, kvHeads: Int, headDim: Int
    /// Defaults to 1 / sqrt(headDim).
    public var scale: Float
    /// Logit softcapping (Gemma 2): s -> cap · tanh(s / cap); nil for none.
    public var softcap: Float?
    public var mask: AttentionMask
    public var kvLayout: KVLayout
    /// Head-major only: elements from one head's keys to the next's — `keys · headDim` unless the keys
    /// are a run inside a longer store (a KV cache's slots), whose capacity sets the stride.
    public var kvHeadStride: Int

    public init(batch: Int = 1, queries: Int, keys: Int, queryHeads: Int, kvHeads: Int? = nil, headDim: Int,
                scale: Float? = nil, softcap: Float? = nil, mask: AttentionMask = AttentionMask(), kvLayout: KVLayout = .tokenMajor,
                kvHeadStride: Int? = nil) {
        self.batch = batch; self.queries = queries; self.keys = keys
        self.queryHeads = queryHeads; self.kvHeads = kvHeads ?? queryHeads; self.headDim = headDim
        self.scale = scale ?? 1 / Float(headDim).squareRoot()
        self.softcap = softcap
        self.mask = mask
        self.kvLayout = kvLayout
        self.kvHeadStride = kvHeadStride ?? keys * headDim
        precondition(kvHeadStride == nil || (kvLayout == .headMajor && batch == 1 && self.kvHeadStride >= keys * headDim),
                     "a head stride is for one head-major sequence and spans its keys")
    }

    public var group: Int { queryHeads / kvHeads }
    public var queryCount: Int { batch * queries * queryHeads * headDim }
    public var keyCount: Int { batch * keys * kvHeads * headDim }
    /// Row strides (elements between consecutive tokens) of Q/O and of K/V.
    public var queryStride: Int { queryHeads * headDim }
    public var keyStride: Int { kvLayout == .tokenMajor ? kvHeads * headDim : headDim }

    /// Element offset of key/value `token` of `head` in batch element b.
    @inline(__always) public func kvOffset(batch b: Int, token: Int, head: Int) -> Int {
        kvLayout == .tokenMajor ? (b * keys + token) * kvHeads * headDim + head * headDim
            : (b * kvHeads + head) * kvHeadStride + token * headDim
    }

    /// Checks the head layout and lengths; throws a TensorError describing the mismatch.
    public func validate() throws(TensorError) {
        guard batch > 0, queries >= 0, keys >= 0, headDim > 0, queryHeads > 0, kvHeads > 0 else {
            throw .shapeMismatch(operation: "attention", expected: "positive sizes", found: "\(self)")
        }
        guard queryHeads % kvHeads == 0 else {
            throw .shapeMismatch(operation: "attention", expected: "queryHeads divisible by kvHeads",
                                 found: "\(queryHeads) query heads, \(kvHeads) kv heads")
        }
        guard queries <= keys || !mask.causal || mask.queryOffset != nil else {
            throw .shapeMismatch(operation: "attention", expected: "queries <= keys for a causal mask",
                                 found: "\(queries) queries, \(keys) keys")
        }
        if let lengths = mask.keyLengths, lengths.count != batch || lengths.contains(where: { $0 < 0 || $0 > keys }) {
            throw .shapeMismatch(operation: "attention", expected: "\(batch) key lengths in 0...\(keys)", found: "\(lengths)")
        }
        if let window = mask.window, window < 1 {
            throw .outOfBounds(operation: "attention", detail: "sliding window must be at least 1, got \(window)")
        }
    }
}

import TesseraCore

/// The oracle: attention computed plainly in Double, one score at a time.
public enum ReferenceAttention {
    /// Returns O (batch, queries, queryHeads, headDim) and P (batch, queryHeads, queries, keys).
    public static func forward(q: [Double], k: [Double], v: [Double], shape s: AttentionShape) -> (output: [Double], weights: [Double]) {
        var output = [Double](repeating: 0, count: s.queryCount)
        var weights = [Double](repeating: 0, count: s.batch * s.queryHeads * s.queries * s.keys)
        for b in 0..<s.batch {
            for h in 0..<s.queryHeads {
                let kvh = h / s.group
                for i in 0..<s.queries {
                    let qBase = (b * s.queries + i) * s.queryStride + h * s.headDim
                    var scores = [Double](repeating: -.infinity, count: s.keys)
                    for j in 0..<s.keys where s.mask.isVisible(batch: b, query: i, key: j, queries: s.queries, keys: s.keys) {
                        let kBase = s.kvOffset(batch: b, token: j, head: kvh)
                        var dot = 0.0
                        for d in 0..<s.headDim { dot += q[qBase + d] * k[kBase + d] }
                        dot *= Double(s.scale)
                        if let cap = s.softcap { dot = Double(cap) * tanh(dot / Double(cap)) }
                        scores[j] = dot
                    }
                    let maximum = scores.max() ?? -.infinity
                    guard maximum > -.infinity else { continue }  // fully masked: zero output, zero weights
                    let exps = scores.map { exp($0 - maximum) }
                    let total = exps.reduce(0, +)
                    let wBase = ((b * s.queryHeads + h) * s.queries + i) * s.keys
                    for j in 0..<s.keys {
                        let p = exps[j] / total
                        weights[wBase + j] = p
                        guard p != 0 else { continue }
                        let vBase = s.kvOffset(batch: b, token: j, head: kvh)
                        for d in 0..<s.headDim { output[qBase + d] += p * v[vBase + d] }
                    }
                }
            }
        }
        return (output, weights)
    }
}

#if canImport(Glibc)
import Glibc
#endif

// MARK: - The Tensor-level entry point

/// Which implementation computes attention.
public enum AttentionImplementation: String, Sendable, CaseIterable {
    /// Tiled, O(N) memory; the split-key decode path for a few queries against a long cache.
    case flash
    /// The materialised queries x keys matrix; can return the weights.
    case standard
}

extension Kernels {
    /// Attention over Tensors: q (batch, queries, queryHeads, headDim), k and v (batch, keys, kvHeads, headDim)
    /// — or (batch, kvHeads, keys, headDim) when `shape.kvLayout` is `.headMajor`. Returns the output
    /// (batch, queries, queryHeads, headDim) and, when asked (standard implementation only), the weights
    /// (batch, queryHeads, queries, keys). Shape mismatches throw a TensorError.
    public static func attention(q: Tensor, k: Tensor, v: Tensor, shape: AttentionShape,
                                 implementation: AttentionImplementation = .flash,
                                 returnWeights: Bool = false) throws(TensorError) -> (output: Tensor, weights: Tensor?) {
        try shape.validate()
        let expectedQ = [shape.batch, shape.queries, shape.queryHeads, shape.headDim]
        let expectedKV = shape.kvLayout == .tokenMajor ? [shape.batch, shape.keys, shape.kvHeads, shape.headDim]
                                                       : [shape.batch, shape.kvHeads, shape.keys, shape.headDim]
        guard q.shape == expectedQ else { throw .shapeMismatch(operation: "attention q", expected: "\(expectedQ)", found: "\(q.shape)") }
        guard k.shape == expectedKV else { throw .shapeMismatch(operation: "attention k", expected: "\(expectedKV)", found: "\(k.shape)") }
        guard v.shape == expectedKV else { throw .shapeMismatch(operation: "attention v", expected: "\(expectedKV)", found: "\(v.shape)") }
        if returnWeights && implementation != .standard {
            throw .outOfBounds(operation: "attention", detail: "attention weights are only available from the standard implementation")
        }
        let output = Tensor(zeros: expectedQ)
        let weights = returnWeights ? Tensor(zeros: [shape.batch, shape.queryHeads, shape.queries, shape.keys]) : nil
        let buffers = AttentionBuffers(q: try q.floatPointer(), k: try k.floatPointer(), v: try v.floatPointer(),
                                       output: try output.floatPointer())
        switch implementation {
        case .flash: FlashAttention.forward(shape, buffers)
        case .standard: StandardAttention.forward(shape, buffers, weights: try weights?.floatPointer())
        }
        return (output, weights)
    }
}
