// The BPE merge loop, shared by byte-level BPE and SentencePiece BPE: the hot function of encoding.
//
// Given a word as symbol ids and a rule that says, for two adjacent symbols, whether they merge, into
// what, and how urgently (lower priority value first), merge the most urgent adjacent pair — the
// leftmost one on a tie — until no pair merges. That is Hugging Face `tokenizers`' BPE (rank = the merge's
// line in the merges list) and llama.cpp's SentencePiece loop (priority = minus the merged token's
// score) alike.
//
// `merge` keeps the symbols in a linked list and the candidate pairs in a binary heap: O(n log n), as a
// whole-text SentencePiece segment of a long prompt needs. `mergeQuadratic` is the plain reference (and
// faster for the short pieces a regex pre-tokenizer makes); a test holds them together.

/// What merging two adjacent symbols gives: the merged id and its priority (lower merges first).
public typealias MergeRule = (_ left: Int32, _ right: Int32) -> (priority: Double, merged: Int32)?

public enum BPEMerge {
    /// Merges `symbols` in place (ids < 0 never merge).
    public static func merge(_ symbols: inout [Int32], rule: MergeRule) {
        if symbols.count < 2 { return }
        if symbols.count <= 24 { mergeQuadratic(&symbols, rule: rule); return }
        mergeWithHeap(&symbols, rule: rule)
    }

    /// The plain reference: scan all pairs, merge the best, repeat.
    public static func mergeQuadratic(_ symbols: inout [Int32], rule: MergeRule) {
        while symbols.count > 1 {
            var best: (index: Int, priority: Double, merged: Int32)? = nil
            for i in 0..<(symbols.count - 1) where symbols[i] >= 0 && symbols[i + 1] >= 0 {
                if let m = rule(symbols[i], symbols[i + 1]), m.priority < (best?.priority ?? .infinity) {
                    best = (i, m.priority, m.merged)
                }
            }
            guard let best else { return }
            symbols[best.index] = best.merged
            symbols.remove(at: best.index + 1)
        }
    }

    struct Candidate {
        var priority: Double
        var left: Int32, right: Int32
        var leftID: Int32, rightID: Int32
        var merged: Int32

        @inline(__always) func before(_ other: Candidate) -> Bool {
            priority < other.priority || (priority == other.priority && left < other.left)
        }
    }

    /// The same result in O(n log n): a doubly linked list of symbols and a heap of candidate pairs;
    /// a popped pair whose symbols have changed since it was pushed is stale and skipped.
    public static func mergeWithHeap(_ symbols: inout [Int32], rule: MergeRule) {
        let n = symbols.count
        var ids = symbols
        var next = [Int32]((1...n).map { Int32($0) })
        var prev = [Int32]((-1..<(n - 1)).map { Int32($0) })
        next[n - 1] = -1
        var heap: [Candidate] = []
        heap.reserveCapacity(n)

        func push(_ c: Candidate) {
            heap.append(c)
            var i = heap.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                guard heap[i].before(heap[parent]) else { break }
                heap.swapAt(i, parent)
                i = parent
            }
        }
        func pop() -> Candidate {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var best = i
                    if l < heap.count, heap[l].before(heap[best]) { best = l }
                    if r < heap.count, heap[r].before(heap[best]) { best = r }
                    if best == i { break }
                    heap.swapAt(i, best)
                    i = best
                }
            }
            return top
        }
        func consider(_ left: Int32, _ right: Int32) {
            guard left >= 0, right >= 0 else { return }
            let a = ids[Int(left)], b = ids[Int(right)]
            guard a >= 0, b >= 0, let m = rule(a, b) else { return }
            push(Candidate(priority: m.priority, left: left, right: right, leftID: a, rightID: b, merged: m.merged))
        }

        for i in 0..<(n - 1) { consider(Int32(i), Int32(i + 1)) }
        while !heap.isEmpty {
            let c = pop()
            let l = Int(c.left), r = Int(c.right)
            guard next[l] == c.right, ids[l] == c.leftID, ids[r] == c.rightID else { continue }
            ids[l] = c.merged
            ids[r] = -2  // dead
            let after = next[r]
            next[l] = after
            if after >= 0 { prev[Int(after)] = c.left }
            consider(prev[l], c.left)
            consider(c.left, after)
        }
        var out: [Int32] = []
        out.reserveCapacity(n)
        var i: Int32 = 0
        while i >= 0 { out.append(ids[Int(i)]); i = next[Int(i)] }
        symbols = out
    }
}
