// The storage under every cache kind: `capacity` slots, each one token's keys and values for all KV
// heads, as f32 or f16 values, or int8 codes plus one f32 scale per block of 16 (per head when headDim
// is not a multiple of 16): 1.25 bytes a value, 31% of f32. The block size is Qwen2.5's doing: its keys
// carry a few very large channels that crush the rest of their block. Perplexity change vs f32 on
// Qwen2.5-0.5B (hamlet excerpt, ctx 256): one scale per head of 64 +3.7%, blocks of 32 +3.0%, 16 +0.8%,
// 8 +0.2%; SmolLM2 and Gemma 3 stay under 0.1% already at 32. f16 rows (llama.cpp's default) are half
// of f32 and rounded to nearest: the decode kernels widen them as they read (vcvtph2ps).
//
// Rows may be held head by head — (kvHeads, capacity, headDim), an int8 row's scales likewise
// (kvHeads, capacity, headDim / block); every cache does — so that a decode task, which reads one head,
// streams it sequentially: token-major, a head is 256 bytes of every 768 (SmolLM2's 3 heads of 64 in
// f32) and decode attention read at 0.35 of the memory bandwidth against 0.75 head-major (16k tokens,
// alternating call by call in one process). Either way a value's scale sits at its element offset /
// block, so attention finds it from the same offset as the value.
import CTesseraCPU
import TesseraCore
import TesseraKernels

final class TokenRows {
    let kvHeads: Int, headDim: Int
    let type: KVElementType
    /// Slots stored (kvHeads, capacity, headDim) rather than (capacity, kvHeads, headDim) (int8 scales likewise).
    let headMajor: Bool
    /// int8: values per scale.
    let block: Int
    private(set) var capacity = 0
    private var keys = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)    // see `headMajor`
    private var values = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
    private var keyScales = UnsafeMutablePointer<Float>.allocate(capacity: 1)          // int8 only: as the rows, one per block
    private var valueScales = UnsafeMutablePointer<Float>.allocate(capacity: 1)

    init(kvHeads: Int, headDim: Int, type: KVElementType, capacity: Int, headMajor: Bool = false) {
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.type = type
        self.headMajor = headMajor
        self.block = headDim % 16 == 0 ? 16 : headDim
        resize(to: capacity, keeping: 0)
    }

    deinit {
        keys.deallocate(); values.deallocate(); keyScales.deallocate(); valueScales.deallocate()
    }

    private var rowElements: Int { kvHeads * headDim }
    private var elementBytes: Int {
        switch type {
        case .float32: 4
        case .float16: 2
        case .int8: 1
        }
    }
    private var scaleCount: Int { type == .int8 ? kvHeads * headDim / block : 0 }
    /// Scales of one head's slot (int8).
    private var headScales: Int { type == .int8 ? headDim / block : 0 }

    /// Bytes of one slot: keys and values (and their scales).
    var bytesPerToken: Int { 2 * (rowElements * elementBytes + scaleCount * 4) }
    var allocatedBytes: Int { capacity * bytesPerToken }

    /// Reallocates to `newCapacity` slots, keeping the first `count`.
    func resize(to newCapacity: Int, keeping count: Int) {
        let rowBytes = rowElements * elementBytes
        let k = UnsafeMutableRawPointer.allocate(byteCount: max(1, newCapacity * rowBytes), alignment: 64)
        let v = UnsafeMutableRawPointer.allocate(byteCount: max(1, newCapacity * rowBytes), alignment: 64)
        let ks = UnsafeMutablePointer<Float>.allocate(capacity: max(1, newCapacity * scaleCount))
        let vs = UnsafeMutablePointer<Float>.allocate(capacity: max(1, newCapacity * scaleCount))
        tessera_advise_huge_pages(k, newCapacity * rowBytes); tessera_advise_huge_pages(v, newCapacity * rowBytes)
        if headMajor {  // each head's first `count` slots (and their scales) move to its new place
            let headBytes = headDim * elementBytes
            for h in 0..<kvHeads {
                (k + h * newCapacity * headBytes).copyMemory(from: keys + h * capacity * headBytes, byteCount: count * headBytes)
                (v + h * newCapacity * headBytes).copyMemory(from: values + h * capacity * headBytes, byteCount: count * headBytes)
                (ks + h * newCapacity * headScales).update(from: keyScales + h * capacity * headScales, count: count * headScales)
                (vs + h * newCapacity * headScales).update(from: valueScales + h * capacity * headScales, count: count * headScales)
            }
        } else {
            k.copyMemory(from: keys, byteCount: count * rowBytes)
            v.copyMemory(from: values, byteCount: count * rowBytes)
            ks.update(from: keyScales, count: count * scaleCount)
            vs.update(from: valueScales, count: count * scaleCount)
        }
        keys.deallocate(); values.deallocate(); keyScales.deallocate(); valueScales.deallocate()
        (keys, values, keyScales, valueScales) = (k, v, ks, vs)
        capacity = newCapacity
    }

    /// Writes zeros over every slot (and scale), so the memory is the process's before a request needs it.
    func touchAll() {
        let rowBytes = rowElements * elementBytes
        keys.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * rowBytes)
        values.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * rowBytes)
        keyScales.initialize(repeating: 0, count: capacity * scaleCount)
        valueScales.initialize(repeating: 0, count: capacity * scaleCount)
    }

    /// Stores `count` tokens, each (kvHeads, headDim), in slots slot..<slot+count (rounding for f16,
    /// quantising for int8).
    func write(slot: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, count: Int) {
        precondition(slot >= 0 && slot + count <= capacity, "KV slots \(slot)..<\(slot + count) outside \(capacity)")
        let row = rowElements
        switch type {
        case .float32 where headMajor:
            let keyBase = keys.assumingMemoryBound(to: Float.self), valueBase = values.assumingMemoryBound(to: Float.self)
            for t in 0..<count {
                for h in 0..<kvHeads {
                    (keyBase + (h * capacity + slot + t) * headDim).update(from: k + (t * kvHeads + h) * headDim, count: headDim)
                    (valueBase + (h * capacity + slot + t) * headDim).update(from: v + (t * kvHeads + h) * headDim, count: headDim)
                }
            }
        case .float32:
            (keys.assumingMemoryBound(to: Float.self) + slot * row).update(from: k, count: count * row)
            (values.assumingMemoryBound(to: Float.self) + slot * row).update(from: v, count: count * row)
        case .float16 where headMajor:
            let kernels = Kernels.active
            let keyBase = keys.assumingMemoryBound(to: UInt16.self), valueBase = values.assumingMemoryBound(to: UInt16.self)
            for t in 0..<count {
                for h in 0..<kvHeads {
                    kernels.convertToHalf(k + (t * kvHeads + h) * headDim, keyBase + (h * capacity + slot + t) * headDim, count: headDim)
                    kernels.convertToHalf(v + (t * kvHeads + h) * headDim, valueBase + (h * capacity + slot + t) * headDim, count: headDim)
                }
            }
        case .float16:
            Kernels.active.convertToHalf(k, keys.assumingMemoryBound(to: UInt16.self) + slot * row, count: count * row)
            Kernels.active.convertToHalf(v, values.assumingMemoryBound(to: UInt16.self) + slot * row, count: count * row)
        case .int8 where headMajor:
            let kernels = Kernels.active
            let keyBase = keys.assumingMemoryBound(to: Int8.self), valueBase = values.assumingMemoryBound(to: Int8.self)
            for t in 0..<count {
                for h in 0..<kvHeads {
                    let to = h * capacity + slot + t
                    kernels.quantizeRowsInt8(k + (t * kvHeads + h) * headDim, rows: headScales, cols: block, ldx: block,
                                             q: keyBase + to * headDim, scales: keyScales + to * headScales)
                    kernels.quantizeRowsInt8(v + (t * kvHeads + h) * headDim, rows: headScales, cols: block, ldx: block,
                                             q: valueBase + to * headDim, scales: valueScales + to * headScales)
                }
            }
        case .int8:
            let kernels = Kernels.active
            let blocks = count * row / block
            kernels.quantizeRowsInt8(k, rows: blocks, cols: block, ldx: block,
                                     q: keys.assumingMemoryBound(to: Int8.self) + slot * row, scales: keyScales + slot * scaleCount)
            kernels.quantizeRowsInt8(v, rows: blocks, cols: block, ldx: block,
                                     q: values.assumingMemoryBound(to: Int8.self) + slot * row, scales: valueScales + slot * scaleCount)
        }
    }

    /// Copies `count` slots from `source` on to `destination` on (keys, values and scales).
    func copy(slots source: Int, to destination: Int, count: Int) {
        if headMajor {
            let headBytes = headDim * elementBytes
            for h in 0..<kvHeads {
                let base = h * capacity * headBytes
                (keys + base + destination * headBytes).copyMemory(from: keys + base + source * headBytes, byteCount: count * headBytes)
                (values + base + destination * headBytes).copyMemory(from: values + base + source * headBytes, byteCount: count * headBytes)
                let scaleBase = h * capacity * headScales
                (keyScales + scaleBase + destination * headScales).update(from: keyScales + scaleBase + source * headScales,
                                                                          count: count * headScales)
                (valueScales + scaleBase + destination * headScales).update(from: valueScales + scaleBase + source * headScales,
                                                                            count: count * headScales)
            }
            return
        }
        let rowBytes = rowElements * elementBytes
        (keys + destination * rowBytes).copyMemory(from: keys + source * rowBytes, byteCount: count * rowBytes)
        (values + destination * rowBytes).copyMemory(from: values + source * rowBytes, byteCount: count * rowBytes)
        (keyScales + destination * scaleCount).update(from: keyScales + source * scaleCount, count: count * scaleCount)
        (valueScales + destination * scaleCount).update(from: valueScales + source * scaleCount, count: count * scaleCount)
    }

    /// `count` slots from `slot` on, as attention reads them: positions firstPosition..<firstPosition+count.
    func segment(from slot: Int, count: Int, firstPosition: Int, sinkQueryPositionCap: Int? = nil) -> KVSegment {
        var segment = KVSegment(data: data(from: slot), count: count, firstPosition: firstPosition, sinkQueryPositionCap: sinkQueryPositionCap)
        if headMajor {
            segment.kvLayout = .headMajor
            segment.kvHeadStride = capacity * headDim
        }
        return segment
    }

    /// The rows from `slot` on, as attention reads them. Head-major rows also need the head stride,
    /// which only `segment(from:count:firstPosition:)` hands on.
    func data(from slot: Int) -> AttentionKV {
        let row = headMajor ? headDim : rowElements, rowScales = headMajor ? headScales : scaleCount
        switch type {
        case .float32:
            return .float32(keys: UnsafePointer(keys.assumingMemoryBound(to: Float.self) + slot * row),
                            values: UnsafePointer(values.assumingMemoryBound(to: Float.self) + slot * row))
        case .float16:
            return .float16(keys: UnsafePointer(keys.assumingMemoryBound(to: UInt16.self) + slot * row),
                            values: UnsafePointer(values.assumingMemoryBound(to: UInt16.self) + slot * row))
        case .int8:
            return .int8(keys: UnsafePointer(keys.assumingMemoryBound(to: Int8.self) + slot * row),
                         keyScales: UnsafePointer(keyScales + slot * rowScales),
                         values: UnsafePointer(values.assumingMemoryBound(to: Int8.self) + slot * row),
                         valueScales: UnsafePointer(valueScales + slot * rowScales), block: block)
        }
    }
}
