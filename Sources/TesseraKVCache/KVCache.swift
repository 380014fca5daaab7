// The KV cache: keys and values of the tokens a sequence has seen, per layer, so a decode step computes
// attention for its one new token without recomputing the prompt.
//
// One protocol, several kinds, chosen per layer (KVLayerPolicy):
//   full     every token, token-major (tokens, kvHeads, headDim), growing by doubling up to maxTokens;
//   window   a ring buffer of the most recent tokens (Mistral; Gemma 3's local layers; streaming): a
//            query at position p sees [p - window + 1, p], and older tokens are overwritten;
//   sinks    StreamingLLM: the first `sinks` tokens kept for good plus a recent window, so generation
//            can stream past the context without the perplexity blow-up of a plain window.
// and each holds f32, f16 (half the memory and bandwidth) or int8 rows (one scale per 16 values of a
// token's head: 31% of the memory and bandwidth).
//
// A layer's cache reaches attention as a few *segments*, each a run of consecutive positions stored
// contiguously: a full layer is one segment; a ring is up to two (the wrap splits it), and a sink
// layer adds the sink tokens as a segment of their own. Attention over a union of runs is the
// log-sum-exp merge of attention over each run, exactly as flash attention merges its key blocks, so
// no copy ever makes the ring contiguous (TesseraModels' SegmentAttention does this).
//
// Positions. Keys are stored after RoPE at their absolute positions. RoPE makes a score depend only on
// the distance between query and key, and in a window the distances measured in the text and in the
// cache are the same; only the sink tokens are nearer in the cache than in the text. StreamingLLM uses
// cache positions, so a query at position p attends the sink segment as if it stood at cache position
// min(p, sinks + window - 1) — the model rotates one extra copy of the queries for it — which equals
// re-rotating every cached key by its cache position, without touching the cache.
import TesseraCore
import TesseraKernels

public enum KVCacheError: Error, CustomStringConvertible, Equatable {
    /// Appending `requested` tokens to `length` would pass the cache's limit.
    case full(length: Int, requested: Int, limit: Int)
    /// One forward pass may append at most `limit` tokens to a cache with ring buffers.
    case chunkTooLarge(requested: Int, limit: Int)
    /// A ring buffer no longer holds the tokens that position `length` would attend to.
    case cannotRewind(to: Int, oldestHeld: Int)
    case invalidPolicy(String)

    public var description: String {
        switch self {
        case .full(let length, let requested, let limit):
            "the KV cache holds \(length) tokens and cannot take \(requested) more (limit \(limit))"
        case .chunkTooLarge(let requested, let limit):
            "\(requested) tokens in one forward pass; this cache's ring buffers take at most \(limit) at a time"
        case .cannotRewind(let length, let oldest):
            "cannot rewind the KV cache to \(length) tokens: its window now starts at position \(oldest)"
        case .invalidPolicy(let detail): "invalid KV cache policy: \(detail)"
        }
    }
}

/// What one layer keeps.
public enum KVLayerPolicy: Sendable, Equatable, CustomStringConvertible {
    /// Every token.
    case full
    /// The `window` most recent tokens (the query's own included): a ring buffer.
    case window(Int)
    /// The first `sinks` tokens plus the `window` most recent ones (StreamingLLM).
    case sinks(Int, window: Int)

    /// The sliding window a query attends within, nil for full.
    public var window: Int? {
        switch self {
        case .full: nil
        case .window(let w), .sinks(_, let w): w
        }
    }
    public var sinks: Int {
        if case .sinks(let k, _) = self { return k }
        return 0
    }

    public var description: String {
        switch self {
        case .full: "full"
        case .window(let w): "window \(w)"
        case .sinks(let k, let w): "\(k) sinks + window \(w)"
        }
    }
}

/// How cached keys and values are held.
public enum KVElementType: String, Sendable, CaseIterable {
    case float32 = "f32"
    /// IEEE half precision (llama.cpp's default cache type): half the memory and the bytes a decode
    /// step reads; values round to 11 significant bits (relative error ≤ 2⁻¹¹) and overflow past 65504.
    case float16 = "f16"
    /// int8 with one f32 scale per 16 values of a token's head (the head if headDim is not a multiple
    /// of 16): d = max|x| / 127.
    case int8
}

/// A run of consecutive positions of one layer's cache, stored contiguously per head (see `kvLayout`).
public struct KVSegment: @unchecked Sendable {
    public var data: AttentionKV
    /// Tokens in the run.
    public var count: Int
    /// The position (in the sequence) of its first token.
    public var firstPosition: Int
    /// For the sink tokens: a query at position p attends them from cache position min(p, cap).
    public var sinkQueryPositionCap: Int?
    /// How the run's keys and values lie: the caches keep each head's slots contiguous (head-major,
    /// `kvHeadStride` elements from one head to the next; int8 scales at a value's offset / block).
    public var kvLayout: KVLayout = .tokenMajor
    public var kvHeadStride: Int? = nil
}

/// What a model's attention needs from a cache. A forward pass of T tokens calls `reserve(T)`, then per
/// layer `append` (the new keys and values) and `segments` (everything those T queries may attend to,
/// the new tokens included), and finally `commit(T)`.
public protocol KVCache: AnyObject {
    /// Tokens seen so far (the position of the next token); with a window or sinks, more than are held.
    var length: Int { get }
    /// The most tokens the sequence may reach (Int.max when no layer keeps every token).
    var maxTokens: Int { get }
    /// The most tokens one forward pass may append (ring buffers hold window + maxChunk - 1 tokens);
    /// the model splits longer inputs into chunks of this size.
    var maxChunk: Int { get }
    /// Bytes one held token costs, summed over the layers (keys, values and any scales).
    var bytesPerToken: Int { get }
    /// Bytes the cache holds now (allocated capacity, not just the tokens stored).
    var allocatedBytes: Int { get }
    /// The layer's kind: the model masks attention with its window and rotates queries for its sinks.
    func policy(layer: Int) -> KVLayerPolicy
    /// Makes room for `count` more tokens in every layer; once per forward pass, before `append`.
    func reserve(_ count: Int) throws(KVCacheError)
    /// Stores `count` new tokens' keys and values, each (count, kvHeads, headDim), in layer `layer`.
    func append(layer: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, count: Int)
    /// The runs of the layer's cache visible to the pending tokens (those appended since `reserve`).
    func segments(layer: Int) -> [KVSegment]
    /// Advances `length` past the appended tokens.
    func commit(_ count: Int)
    /// Forgets everything after the first `length` tokens (a rejected draft, a prompt sharing a prefix).
    func truncate(to length: Int) throws(KVCacheError)
}

/// How a model's cache is built (TesseraModels' DecoderModel.makeCache reads it).
public struct KVCacheOptions: Sendable, Equatable {
    /// The kind for the model's layers (layers with their own smaller window keep that).
    public var policy: KVLayerPolicy
    public var elementType: KVElementType
    /// The most tokens full layers hold; nil for the model's context.
    public var maxTokens: Int?
    /// The most tokens one forward pass appends when the cache has rings (the rest runs in chunks).
    public var maxChunk: Int
    /// Keep every token and apply the policies as attention masks only: full attention with the
    /// matching mask, the reference that tests hold the rings and sinks to.
    public var maskOnly: Bool

    public init(policy: KVLayerPolicy = .full, elementType: KVElementType = .float32, maxTokens: Int? = nil,
                maxChunk: Int = 512, maskOnly: Bool = false) {
        self.policy = policy
        self.elementType = elementType
        self.maxTokens = maxTokens
        self.maxChunk = maxChunk
        self.maskOnly = maskOnly
    }
}
