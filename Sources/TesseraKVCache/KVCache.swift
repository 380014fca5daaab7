// The KV cache: keys and values of every token a sequence has seen, per layer, so a decode step
// computes attention for its one new token without recomputing the prompt.
//
// `ContiguousKVCache` is the plain kind: per layer one (capacity, kvHeads, headDim) block for K and one
// for V, token-major — exactly the layout the attention kernels read (AttentionShape.kvLayout
// .tokenMajor), so a layer's cache is passed to attention as it is, without copies. Capacity grows by
// doubling up to `maxTokens` (a long context does not cost its full size up front). Sliding-window,
// sink, quantised and paged caches conform to the same protocol in later issues.
import TesseraCore

public enum KVCacheError: Error, CustomStringConvertible, Equatable {
    /// Appending `requested` tokens to `length` would pass the cache's limit.
    case full(length: Int, requested: Int, limit: Int)

    public var description: String {
        switch self {
        case .full(let length, let requested, let limit):
            "the KV cache holds \(length) tokens and cannot take \(requested) more (limit \(limit))"
        }
    }
}

/// What a model's attention needs from a cache.
public protocol KVCache: AnyObject {
    /// Tokens stored (the position of the next token).
    var length: Int { get }
    /// The most tokens this cache can hold.
    var maxTokens: Int { get }
    /// Bytes one token costs across all layers (keys and values).
    var bytesPerToken: Int { get }
    /// Bytes the cache holds now (its allocated capacity, not just the tokens stored).
    var allocatedBytes: Int { get }
    /// Makes room for `count` more tokens in every layer; call once per forward pass before `append`.
    func reserve(_ count: Int) throws(KVCacheError)
    /// Copies `count` tokens' keys and values, each (count, kvHeads, headDim), into layer `layer` after
    /// the stored ones. Every layer is appended once per forward pass, then `commit(count)` advances `length`.
    func append(layer: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, count: Int)
    /// The layer's keys and values for positions 0..<length+pending, (tokens, kvHeads, headDim) each.
    func view(layer: Int) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>)
    func commit(_ count: Int)
    /// Forgets everything after the first `length` tokens (a new prompt that shares a prefix, a rejected draft).
    func truncate(to length: Int)
}

public final class ContiguousKVCache: KVCache {
    public let layers: Int, kvHeads: Int, headDim: Int
    public let maxTokens: Int
    public private(set) var length = 0
    public private(set) var capacity = 0
    private var keys: [UnsafeMutablePointer<Float>] = []    // per layer (capacity, kvHeads, headDim)
    private var values: [UnsafeMutablePointer<Float>] = []

    public init(layers: Int, kvHeads: Int, headDim: Int, maxTokens: Int, initialCapacity: Int = 256) {
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.maxTokens = maxTokens
        grow(to: min(maxTokens, initialCapacity))
    }

    deinit {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
    }

    private var rowSize: Int { kvHeads * headDim }

    public var bytesPerToken: Int { 2 * layers * rowSize * MemoryLayout<Float>.size }
    public var allocatedBytes: Int { capacity * bytesPerToken }

    /// How many tokens a budget of `bytes` holds in this layout.
    public static func tokens(fitting bytes: Int, layers: Int, kvHeads: Int, headDim: Int) -> Int {
        bytes / (2 * layers * kvHeads * headDim * MemoryLayout<Float>.size)
    }

    private func grow(to newCapacity: Int) {
        let row = rowSize
        for l in 0..<layers {
            let k = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * row)
            let v = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * row)
            if capacity > 0 {
                k.update(from: keys[l], count: length * row)
                v.update(from: values[l], count: length * row)
                keys[l].deallocate()
                values[l].deallocate()
                keys[l] = k
                values[l] = v
            } else {
                keys.append(k)
                values.append(v)
            }
        }
        capacity = newCapacity
    }

    public func reserve(_ count: Int) throws(KVCacheError) {
        let needed = length + count
        guard needed <= maxTokens else { throw .full(length: length, requested: count, limit: maxTokens) }
        if needed > capacity { grow(to: min(maxTokens, max(needed, capacity * 2))) }
    }

    public func append(layer: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, count: Int) {
        precondition(length + count <= capacity, "reserve() before append()")
        let row = rowSize
        (keys[layer] + length * row).update(from: k, count: count * row)
        (values[layer] + length * row).update(from: v, count: count * row)
    }

    public func view(layer: Int) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        (UnsafePointer(keys[layer]), UnsafePointer(values[layer]))
    }

    public func commit(_ count: Int) { length += count }

    public func truncate(to newLength: Int) { length = min(length, max(0, newLength)) }
}
