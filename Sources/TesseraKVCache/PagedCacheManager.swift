// Which blocks each request holds: its block table (block i holds its tokens i·B ..< (i+1)·B), the
// prefix cache lookups, allocation as it grows, copy-on-write for blocks it shares, and freeing.
// Bookkeeping only, like the pool under it; the model runner moves the tensors.
//
// Prefix caching (vLLM's automatic prefix caching): once a block is full and computed, it is entered
// in the pool's cache under a hash chained through its whole prefix (and a per-request salt, which
// isolates tenants). A new request looks its prompt up block by block and takes every consecutive
// hit, so it computes only from the first miss — but always at least one token, whose logits it needs.
//
// Sharing and copy-on-write: a forked request (parallel sampling) starts with its parent's table,
// every block's count raised. Before anyone writes into a block that another request also holds, the
// writer gets a fresh copy; `prepareWrite` returns the (source, destination) copies to make.
public typealias RequestKey = String

public final class PagedCacheManager {
    public let pool: BlockPool
    public var blockSize: Int { pool.blockSize }
    public let prefixCaching: Bool
    private var tables: [RequestKey: [Int]] = [:]
    /// Hashes of each request's full blocks that have been computed, in order.
    private var hashes: [RequestKey: [BlockHash]] = [:]
    public private(set) var prefixQueries = 0
    public private(set) var prefixHits = 0

    public init(pool: BlockPool, prefixCaching: Bool = true) {
        self.pool = pool
        self.prefixCaching = prefixCaching
    }

    public func blockTable(_ id: RequestKey) -> [Int] { tables[id] ?? [] }
    public var requestCount: Int { tables.count }

    /// Blocks needed to hold `tokens` tokens.
    public func blocks(for tokens: Int) -> Int { (tokens + blockSize - 1) / blockSize }

    /// The cached blocks that hold a prefix of `tokens`: consecutive hits from the start, over the full
    /// blocks of all but the last token. Counts the lookup in the hit statistics when `record` is set.
    public func cachedPrefix(_ tokens: [Int32], salt: UInt64 = 0, record: Bool = true) -> (blocks: [Int], hashes: [BlockHash]) {
        guard prefixCaching, tokens.count > 1 else { return ([], []) }
        var blocks: [Int] = [], chain: [BlockHash] = []
        let candidates = (tokens.count - 1) / blockSize
        for b in 0..<candidates {
            let hash = BlockHash(parent: chain.last, tokens: tokens[(b * blockSize)..<((b + 1) * blockSize)], salt: salt)
            guard let block = pool.cachedBlock(hash) else { break }
            blocks.append(block)
            chain.append(hash)
        }
        if record {
            prefixQueries += tokens.count
            prefixHits += blocks.count * blockSize
        }
        return (blocks, chain)
    }

    /// Starts a request's table with cached prefix blocks (each retained).
    public func adopt(_ id: RequestKey, cached: (blocks: [Int], hashes: [BlockHash])) {
        precondition(tables[id] == nil, "request \(id) already has blocks")
        for block in cached.blocks { pool.retain(block) }
        tables[id] = cached.blocks
        hashes[id] = cached.hashes
    }

    /// Blocks an allocation up to `tokens` tokens would take from the free queue, copies included.
    public func blocksNeeded(_ id: RequestKey, upTo tokens: Int, writingFrom start: Int) -> Int {
        let table = tables[id] ?? []
        let fresh = max(0, blocks(for: tokens) - table.count)
        var copies = 0
        if start < tokens {
            for b in (start / blockSize)..<min(table.count, blocks(for: tokens)) where pool.referenceCount(table[b]) > 1 { copies += 1 }
        }
        return fresh + copies
    }

    /// Grows the request's table to hold `tokens` tokens and makes the blocks that tokens
    /// [start, tokens) will be written to its own. Returns the block copies the runner must perform
    /// (source, destination) before writing, or nil — changing nothing — when the pool is short.
    public func prepareWrite(_ id: RequestKey, upTo tokens: Int, writingFrom start: Int) -> [(from: Int, to: Int)]? {
        guard blocksNeeded(id, upTo: tokens, writingFrom: start) <= pool.freeBlockCount else { return nil }
        var table = tables[id] ?? []
        var copies: [(from: Int, to: Int)] = []
        if start < tokens {
            for b in (start / blockSize)..<min(table.count, blocks(for: tokens)) where pool.referenceCount(table[b]) > 1 {
                let copy = pool.allocate()!
                copies.append((table[b], copy))
                pool.release(table[b])
                table[b] = copy
            }
        }
        while table.count < blocks(for: tokens) { table.append(pool.allocate()!) }
        tables[id] = table
        if hashes[id] == nil { hashes[id] = [] }
        return copies
    }

    /// Enters the request's newly full, computed blocks into the prefix cache. `tokens` are all its
    /// tokens so far; the first `computed` have keys and values in the cache.
    public func cacheComputedBlocks(_ id: RequestKey, tokens: [Int32], computed: Int, salt: UInt64 = 0) {
        guard prefixCaching, let table = tables[id] else { return }
        var chain = hashes[id] ?? []
        let full = min(computed / blockSize, table.count)
        while chain.count < full {
            let b = chain.count
            let hash = BlockHash(parent: chain.last, tokens: tokens[(b * blockSize)..<((b + 1) * blockSize)], salt: salt)
            pool.cache(table[b], hash: hash)
            chain.append(hash)
        }
        hashes[id] = chain
    }

    /// A child that shares every block of `parent` (parallel sampling); writes copy on demand.
    public func fork(_ parent: RequestKey, into child: RequestKey) {
        precondition(tables[child] == nil, "request \(child) already has blocks")
        let table = tables[parent] ?? []
        for block in table { pool.retain(block) }
        tables[child] = table
        hashes[child] = hashes[parent] ?? []
    }

    /// Releases the request's blocks, last first, so that a prefix's first blocks are evicted last.
    public func free(_ id: RequestKey) {
        guard let table = tables.removeValue(forKey: id) else { return }
        hashes[id] = nil
        for block in table.reversed() { pool.release(block) }
    }
}
