// The KV cache of a model: one store per layer, each of its own kind (KVLayerPolicy) and all of one
// element type. A model that mixes local and global layers (Gemma 3) gets ring buffers for the local
// ones and full stores for the others; a streaming cache gives every layer sinks + a window.
//
// Ring buffers. A window layer keeps window + maxChunk - 1 slots: enough that, after a forward pass
// appends up to maxChunk tokens, its first query still finds the window - 1 tokens before it. The chunk
// is at most the smallest window, so a ring holds under twice its window (decode alone would need the
// window only; the rest is room for chunked prefill). Token at
// position p (p >= sinks) lives in slot (p - sinks) mod capacity; the sink tokens, in a store of their own.
import TesseraCore
import TesseraKernels

/// One layer's tokens under one policy.
final class LayerStore {
    let policy: KVLayerPolicy
    let rows: TokenRows          // full: positions 0..<length; ring: positions >= sinks
    let sinkRows: TokenRows?     // the first `sinks` positions
    /// Slots of the ring; nil for a full layer (its rows grow instead).
    let ringCapacity: Int?
    /// The oldest position the ring still holds (appends overwrite; a rewind does not bring tokens back).
    private(set) var oldestHeld = 0

    /// `maskOnly`: keep every token whatever the policy (the model still masks by it).
    init(policy: KVLayerPolicy, kvHeads: Int, headDim: Int, type: KVElementType, maxChunk: Int, initialCapacity: Int, maskOnly: Bool) {
        self.policy = policy
        let headMajor = true  // every kind holds its rows head by head (see TokenRows)
        switch maskOnly ? .full : policy {
        case .full:
            ringCapacity = nil
            rows = TokenRows(kvHeads: kvHeads, headDim: headDim, type: type, capacity: initialCapacity, headMajor: headMajor)
            sinkRows = nil
        case .window(let w), .sinks(_, let w):
            let capacity = w + maxChunk - 1
            ringCapacity = capacity
            rows = TokenRows(kvHeads: kvHeads, headDim: headDim, type: type, capacity: capacity, headMajor: headMajor)
            sinkRows = policy.sinks > 0 ? TokenRows(kvHeads: kvHeads, headDim: headDim, type: type, capacity: policy.sinks, headMajor: headMajor) : nil
        }
    }

    var allocatedBytes: Int { rows.allocatedBytes + (sinkRows?.allocatedBytes ?? 0) }

    /// Bytes this layer holds once the sequence has `tokens` tokens.
    func bytes(forTokens tokens: Int) -> Int {
        guard let ring = ringCapacity else { return tokens * rows.bytesPerToken }
        let sinks = policy.sinks
        return min(tokens, sinks) * rows.bytesPerToken + min(max(0, tokens - sinks), ring) * rows.bytesPerToken
    }

    /// Full layers: room for `tokens` (doubling).
    func reserve(tokens: Int, limit: Int, held: Int) {
        guard ringCapacity == nil, tokens > rows.capacity else { return }
        rows.resize(to: min(limit, max(tokens, 2 * rows.capacity)), keeping: held)
    }

    /// Writes positions start..<start+count.
    func append(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, count: Int, at start: Int) {
        let row = rows.kvHeads * rows.headDim
        guard let ring = ringCapacity else {
            rows.write(slot: start, keys: keys, values: values, count: count)
            return
        }
        var p = start, done = 0
        let sinks = policy.sinks
        oldestHeld = max(oldestHeld, sinks, start + count - ring)
        if p < sinks, let sinkRows {
            let n = min(count, sinks - p)
            sinkRows.write(slot: p, keys: keys, values: values, count: n)
            p += n; done += n
        }
        while done < count {  // at most two pieces: up to the end of the ring, then from its start
            let slot = (p - sinks) % ring, n = min(count - done, ring - slot)
            rows.write(slot: slot, keys: keys + done * row, values: values + done * row, count: n)
            p += n; done += n
        }
    }

    /// The runs visible to queries at positions start..<end (tokens end-1 and before are stored).
    func segments(start: Int, end: Int) -> [KVSegment] {
        guard let ring = ringCapacity, let window = policy.window else {
            return [rows.segment(from: 0, count: end, firstPosition: 0)]
        }
        var result: [KVSegment] = []
        let sinks = policy.sinks
        if let sinkRows, end > 0 {
            result.append(sinkRows.segment(from: 0, count: min(sinks, end), firstPosition: 0, sinkQueryPositionCap: sinks + window - 1))
        }
        var p = max(sinks, start - window + 1)
        while p < end {
            let slot = (p - sinks) % ring, n = min(end - p, ring - slot)
            result.append(rows.segment(from: slot, count: n, firstPosition: p))
            p += n
        }
        return result
    }
}

public final class LayeredKVCache: KVCache {
    public let policies: [KVLayerPolicy]
    public let elementType: KVElementType
    public let kvHeads: Int, headDim: Int
    public let maxTokens: Int
    public let maxChunk: Int
    /// Every token kept, the policies applied as masks only: the reference the rings are tested against.
    public let maskOnly: Bool
    public private(set) var length = 0
    private var pending = 0
    private let stores: [LayerStore]

    /// - Parameters:
    ///   - policies: one per layer.
    ///   - maxTokens: the most tokens the sequence may reach; full layers never allocate more.
    ///   - maxChunk: the most tokens one forward pass appends (sizes the rings, and is capped at the
    ///     smallest window; ignored without rings).
    public init(policies: [KVLayerPolicy], kvHeads: Int, headDim: Int, elementType: KVElementType = .float32,
                maxTokens: Int, maxChunk: Int = 512, initialCapacity: Int = 256, maskOnly: Bool = false) throws(KVCacheError) {
        for p in policies {
            if let w = p.window, w < 1 { throw .invalidPolicy("window must be at least 1 token, got \(w)") }
            if p.sinks < 0 { throw .invalidPolicy("sinks must not be negative, got \(p.sinks)") }
        }
        guard maxChunk >= 1 else { throw .invalidPolicy("chunk must be at least 1 token, got \(maxChunk)") }
        guard maxTokens >= 1 else { throw .invalidPolicy("the cache must hold at least 1 token, got \(maxTokens)") }
        self.policies = policies
        self.elementType = elementType
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.maxTokens = maxTokens
        self.maskOnly = maskOnly
        // Chunks no longer than the smallest window keep every ring under twice its window.
        let smallestWindow = maskOnly ? nil : policies.compactMap(\.window).min()
        let chunk = smallestWindow.map { min(maxChunk, $0) } ?? maxChunk
        self.maxChunk = smallestWindow == nil ? Int.max : chunk
        stores = policies.map {
            LayerStore(policy: $0, kvHeads: kvHeads, headDim: headDim, type: elementType, maxChunk: chunk,
                       initialCapacity: min(maxTokens, initialCapacity), maskOnly: maskOnly)
        }
    }

    /// Every layer full, f32: the plain cache.
    public static func contiguous(layers: Int, kvHeads: Int, headDim: Int, maxTokens: Int,
                                  elementType: KVElementType = .float32) -> LayeredKVCache {
        try! LayeredKVCache(policies: Array(repeating: .full, count: layers), kvHeads: kvHeads, headDim: headDim,
                            elementType: elementType, maxTokens: max(1, maxTokens))
    }

    // MARK: - Memory accounting

    /// Bytes one held token costs in each layer.
    public var bytesPerTokenPerLayer: Int { stores.first?.rows.bytesPerToken ?? 0 }
    public var bytesPerToken: Int { stores.count * bytesPerTokenPerLayer }
    public var allocatedBytes: Int { stores.reduce(0) { $0 + $1.allocatedBytes } }
    /// Tokens actually held now, summed over layers and divided by the layer count (what a window saves).
    public var heldTokens: Int { stores.reduce(0) { $0 + $1.bytes(forTokens: length) } / max(1, bytesPerToken) }

    /// Bytes the cache needs for a sequence of `tokens` tokens (rings at most their capacity).
    public func bytes(forTokens tokens: Int) -> Int { stores.reduce(0) { $0 + $1.bytes(forTokens: tokens) } }

    /// The longest sequence whose cache fits in `budget` bytes: Int.max when no layer keeps every token
    /// and the rings fit, 0 when they do not.
    public func tokens(fittingBytes budget: Int) -> Int {
        let fullLayers = stores.filter { $0.ringCapacity == nil }.count
        let fixed = stores.filter { $0.ringCapacity != nil }.reduce(0) { $0 + $1.bytes(forTokens: Int.max / 2) }
        guard budget >= fixed else { return 0 }
        guard fullLayers > 0 else { return Int.max }
        return (budget - fixed) / (fullLayers * bytesPerTokenPerLayer)
    }

    public var summary: String {
        let kinds = Dictionary(grouping: policies, by: { $0.description }).map { "\($0.value.count) x \($0.key)" }.sorted()
        return "\(elementType.rawValue) " + kinds.joined(separator: ", ") + (maskOnly ? " (masks over a full cache)" : "")
    }

    // MARK: - KVCache

    public func policy(layer: Int) -> KVLayerPolicy { policies[layer] }

    public func reserve(_ count: Int) throws(KVCacheError) {
        guard length + count <= maxTokens else { throw .full(length: length, requested: count, limit: maxTokens) }
        guard count <= maxChunk else { throw .chunkTooLarge(requested: count, limit: maxChunk) }
        for store in stores { store.reserve(tokens: length + count, limit: maxTokens, held: length) }
        pending = count
    }

    public func append(layer: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, count: Int) {
        precondition(count <= pending, "reserve(\(count)) before append()")
        stores[layer].append(keys: keys, values: values, count: count, at: length)
    }

    public func segments(layer: Int) -> [KVSegment] {
        stores[layer].segments(start: length, end: length + pending)
    }

    public func commit(_ count: Int) {
        length += count
        pending = 0
    }

    public func truncate(to newLength: Int) throws(KVCacheError) {
        let target = min(length, max(0, newLength))
        // Position `target` will attend back to target - window + 1; the rings must still hold that.
        for store in stores {
            if let w = store.policy.window, target > store.policy.sinks {
                let needed = max(store.policy.sinks, target - w + 1), oldest = store.oldestHeld
                if needed < oldest { throw .cannotRewind(to: target, oldestHeld: oldest) }
            }
        }
        length = target
        pending = 0
    }
}
