// The block pool of the paged KV cache (vLLM's PagedAttention): the cache of every running request
// lives in fixed-size blocks of `blockSize` tokens drawn from one pool, so memory is shared among
// requests by need instead of being reserved per request for the whole context.
//
// Bookkeeping only — no tensors. Each block has a reference count (a block shared by two requests,
// through the prefix cache or a fork for parallel sampling, has two). A block whose count drops to
// zero goes to the back of the free queue but keeps its contents and, if it was full, its hash: it
// is still in the prefix cache until a new allocation takes it from the front of the queue, which is
// when its hash is forgotten (least recently freed first: LRU eviction). A cache hit on a free block
// takes it out of the queue again.
public final class BlockPool {
    public let blockCount: Int
    public let blockSize: Int
    private var referenceCounts: [Int]
    /// The hash of a full block that is in the prefix cache (nil: not cached).
    private var hashes: [BlockHash?]
    private var cachedBlocks: [BlockHash: Int] = [:]
    // The free queue, a doubly linked list over block ids (-1 ends it), so a hit can unlink in O(1).
    private var next: [Int], previous: [Int]
    private var head = -1, tail = -1
    public private(set) var freeBlockCount = 0

    public init(blockCount: Int, blockSize: Int) {
        precondition(blockCount >= 1 && blockSize >= 1, "a block pool needs at least one block of at least one token")
        self.blockCount = blockCount
        self.blockSize = blockSize
        referenceCounts = Array(repeating: 0, count: blockCount)
        hashes = Array(repeating: nil, count: blockCount)
        next = Array(repeating: -1, count: blockCount)
        previous = Array(repeating: -1, count: blockCount)
        for block in 0..<blockCount { pushBack(block) }
    }

    /// Blocks held by some request (reference count > 0).
    public var usedBlockCount: Int { blockCount - freeBlockCount }
    /// Full blocks in the prefix cache (held or free).
    public var cachedBlockCount: Int { cachedBlocks.count }

    public func referenceCount(_ block: Int) -> Int { referenceCounts[block] }
    public func hash(of block: Int) -> BlockHash? { hashes[block] }

    /// A block for new contents, from the front of the free queue (evicting its cached hash); nil when
    /// every block is held.
    public func allocate() -> Int? {
        guard head >= 0 else { return nil }
        let block = head
        unlink(block)
        if let hash = hashes[block] {
            cachedBlocks[hash] = nil
            hashes[block] = nil
        }
        referenceCounts[block] = 1
        return block
    }

    /// One more holder of `block` (a prefix-cache hit or a fork); a free block leaves the free queue.
    public func retain(_ block: Int) {
        if referenceCounts[block] == 0 { unlink(block) }
        referenceCounts[block] += 1
    }

    /// One holder fewer; at zero the block joins the back of the free queue, still cached if hashed.
    public func release(_ block: Int) {
        precondition(referenceCounts[block] > 0, "block \(block) released more often than held")
        referenceCounts[block] -= 1
        if referenceCounts[block] == 0 { pushBack(block) }
    }

    /// The cached block with these contents, if any.
    public func cachedBlock(_ hash: BlockHash) -> Int? { cachedBlocks[hash] }

    /// Enters a full, held block into the prefix cache. A block with the same contents already cached
    /// stays the cached one (this block is then simply not cached).
    public func cache(_ block: Int, hash: BlockHash) {
        guard hashes[block] == nil, cachedBlocks[hash] == nil else { return }
        hashes[block] = hash
        cachedBlocks[hash] = block
    }

    /// Forgets every cached hash (held blocks keep their contents; they just cannot be found).
    public func resetPrefixCache() {
        cachedBlocks.removeAll()
        for i in hashes.indices { hashes[i] = nil }
    }

    private func pushBack(_ block: Int) {
        previous[block] = tail
        next[block] = -1
        if tail >= 0 { next[tail] = block } else { head = block }
        tail = block
        freeBlockCount += 1
    }

    private func unlink(_ block: Int) {
        let p = previous[block], n = next[block]
        if p >= 0 { next[p] = n } else { head = n }
        if n >= 0 { previous[n] = p } else { tail = p }
        previous[block] = -1
        next[block] = -1
        freeBlockCount -= 1
    }
}

/// The identity of a full block's contents: a hash chained through every block before it, so equal
/// hashes mean equal prefixes (with the same salt), not just equal blocks.
public struct BlockHash: Hashable, Sendable, CustomStringConvertible {
    public let value: UInt64

    /// hash(parent, the block's token ids, salt): FNV-1a over the words, finished with a 64-bit mixer.
    public init(parent: BlockHash?, tokens: ArraySlice<Int32>, salt: UInt64 = 0) {
        var h = FNV1a()
        h.add(parent?.value ?? 0x9e37_79b9_7f4a_7c15)
        h.add(salt)
        h.add(UInt64(tokens.count))
        for token in tokens { h.add(UInt64(UInt32(bitPattern: token))) }
        var v = h.value
        v ^= v >> 33; v &*= 0xff51_afd7_ed55_8ccd; v ^= v >> 33; v &*= 0xc4ce_b9fe_1a85_ec53; v ^= v >> 33
        value = v
    }

    /// The salt for a tenant's `cache_salt` text: FNV-1a of its UTF-8 bytes, never 0 (0 is the shared
    /// cache); nil gives 0.
    public static func salt(for text: String?) -> UInt64 {
        guard let text else { return 0 }
        var h = FNV1a()
        for byte in text.utf8 { h.add(UInt64(byte)) }
        return h.value | 1
    }

    public var description: String { String(value, radix: 16) }
}

/// 64-bit FNV-1a, fed whole words (or bytes).
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ word: UInt64) { value = (value ^ word) &* 0x0000_0100_0000_01b3 }
}
