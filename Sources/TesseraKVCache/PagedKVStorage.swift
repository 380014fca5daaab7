// The tensors of the paged KV cache: per layer, one store of blockCount · blockSize token slots (f32,
// f16, or int8 with a scale per 16 values, as TokenRows holds them); block b is slots b·B ..< (b+1)·B. The
// block pool and the cache manager decide which blocks a request uses; the model writes its new keys
// and values through the slots of its block table and attends over its blocks as pages.
//
// Slots are held head by head, (kvHeads, slots, headDim) (int8 scales likewise), so that a page's rows
// of one kv head are one contiguous run: a decode task reads one head, and token-major it would read
// 256 bytes of every 768 (SmolLM2 in f32) — a third of the memory bandwidth (see TokenRows).
import TesseraCore
import TesseraKernels

public final class PagedKVStorage {
    public let layerCount: Int
    public let blockCount: Int
    public let blockSize: Int
    public let kvHeads: Int, headDim: Int
    public let elementType: KVElementType
    private let layers: [TokenRows]

    public init(layers: Int, blockCount: Int, blockSize: Int, kvHeads: Int, headDim: Int, elementType: KVElementType = .float32) {
        layerCount = layers
        self.blockCount = blockCount
        self.blockSize = blockSize
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.elementType = elementType
        // Rows head by head (see TokenRows).
        kvLayout = .headMajor
        kvHeadStride = blockCount * blockSize * headDim
        self.layers = (0..<layers).map { _ in
            TokenRows(kvHeads: kvHeads, headDim: headDim, type: elementType, capacity: blockCount * blockSize, headMajor: true)
        }
        // Touched now, as llama.cpp clears its KV buffer when a context is made: each layer's K and V
        // rows of each head are a region of their own (head-major), advised onto 2 MiB pages, so a first
        // request touched a fresh huge page in every region at once — SmolLM2's 180 regions, ~360 MiB
        // zeroed by the kernel inside its first forward pass (time to first token ~710 ms against ~80).
        let pool = self.layers
        ThreadPool.shared.parallelFor(pool.count) { pool[$0].touchAll() }
    }

    /// How the pages' rows are laid out: head-major (one head's slots contiguous, heads `kvHeadStride`
    /// elements apart; an int8 row's scales at its element offset / block).
    public let kvLayout: KVLayout
    /// Elements from one kv head's slots to the next's (head-major pages); nil when token-major.
    public let kvHeadStride: Int?

    /// Bytes one token slot costs over all layers.
    public var bytesPerToken: Int { layers.reduce(0) { $0 + $1.bytesPerToken } }
    public var allocatedBytes: Int { layers.reduce(0) { $0 + $1.allocatedBytes } }

    /// Blocks of `blockSize` tokens that fit in `bytes` (at least one).
    public static func blocks(fitting bytes: Int, layers: Int, blockSize: Int, kvHeads: Int, headDim: Int,
                              elementType: KVElementType) -> Int {
        let probe = TokenRows(kvHeads: kvHeads, headDim: headDim, type: elementType, capacity: 0)
        return max(1, bytes / (layers * probe.bytesPerToken * blockSize))
    }

    /// Stores `count` tokens' keys and values (each (count, kvHeads, headDim)) of layer `layer` at the
    /// positions [start, start + count) of a sequence whose blocks are `table`.
    public func write(layer: Int, table: [Int], start: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, count: Int) {
        let row = kvHeads * headDim
        var written = 0
        while written < count {
            let position = start + written
            let block = table[position / blockSize], offset = position % blockSize
            let run = min(blockSize - offset, count - written)
            layers[layer].write(slot: block * blockSize + offset, keys: keys + written * row, values: values + written * row, count: run)
            written += run
        }
    }

    /// The pages of a sequence's first `tokens` positions in layer `layer`, in order: each is its block's
    /// first slot of kv head 0 (head-major pages: head h is `kvHeadStride` elements on).
    public func pages(layer: Int, table: [Int], tokens: Int) -> [AttentionKV] {
        var list: [AttentionKV] = []
        pages(layer: layer, table: table, tokens: tokens, into: &list)
        return list
    }

    /// The same pages written over `list` (in place when the count is unchanged and `list` is not
    /// shared: a step's forward pass refills one list per sequence for every layer instead of
    /// allocating one each time).
    public func pages(layer: Int, table: [Int], tokens: Int, into list: inout [AttentionKV]) {
        let used = (tokens + blockSize - 1) / blockSize
        precondition(used <= table.count, "the block table holds \(table.count) blocks, not \(used)")
        let rows = layers[layer]
        if list.count != used {
            list = table.prefix(used).map { rows.data(from: $0 * blockSize) }
            return
        }
        for p in 0..<used { list[p] = rows.data(from: table[p] * blockSize) }
    }

    /// Copies block `source` to `destination` in every layer (copy-on-write of a shared block).
    public func copyBlock(_ source: Int, to destination: Int) {
        for rows in layers { rows.copy(slots: source * blockSize, to: destination * blockSize, count: blockSize) }
    }
}
