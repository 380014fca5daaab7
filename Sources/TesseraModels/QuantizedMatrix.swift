// A quantised weight matrix, repacked at load into the kernels' group layout (TesseraCore/
// QuantizedLayout.swift): 4 rows' blocks side by side, nibbles for 4-bit types (Q4_0, Q4_1, Q4_K),
// bytes with one scale for Q8_0 and Q5_0, and bytes with half-block scales and minimums for the
// rest (Q5_1, Q5_K, Q6_K); scales and minimums in f16.
//
// Two ways to multiply, chosen by the number of activation rows m:
//   - decode and small batches (m < 32): integer dot products straight from the packed weights,
//     threads splitting the row groups, with activations quantised per block of 32 to 16 bits
//     (vpmaddwd; as accurate as f32 for greedy text) or 8 bits (vpmaddubsw, llama.cpp's choice, the
//     least compute but logits off by up to ~1); each group's blocks stay in L1 while
//     every one of the m activation rows passes over them, so the weights are read from memory once;
//   - prefill (m >= 32): one f32 GEMM whose weight panels are dequantised as they are packed
//     (KernelSet.gemmGeneratedWeights), so long prompts go at GEMM speed with unquantised activations.
// On AVX-512 VNNI, every quantised matrix is held in the lane layout (16 rows a group, rows in the
// vector lanes) and every m takes its integer kernel (vpdpwssd, 16-bit activations): a 16-bit multiply-add there does twice the work of an f32 FMA, so it beats the panels
// for prompts too (pp512 on Zen 4 ~780 -> ~1030 tokens/s; perplexity 28.4320 against 28.4322), and a
// row's arithmetic is the same whatever the batch, so no panel/integer choice is needed there. With
// 8-bit activations every format takes a lane layout of its own (for vpdpbusd: q4's nibbles as they
// are, the byte formats' values biased to unsigned bytes, CTesseraCPU.h).
// The scales of K-quants (d·sc) and the minimums are rounded to f16 when repacked (relative error
// below 2^-11, far under the 4-6 bit weights' own error); Q4_0, Q4_1, Q5_0 and Q8_0 repack exactly.
import CTesseraCPU
import Synchronization
import TesseraCore
import TesseraFormats
import TesseraKernels

final class QuantizedMatrix: @unchecked Sendable {
    let rows: Int, cols: Int
    let format: QuantizedFormat
    /// Held in the lane layout (LaneLayout: groups of 16 rows), where the kernel set prefers it.
    let lanes: Bool
    /// Blocks of 32 per row, and groups of 4 rows (the last one zero-padded), or of 16 in the lane layout.
    let blocks: Int, groups: Int
    let data: UnsafeMutableRawPointer   // (groups, blocks, group-block bytes)
    /// The file's type it came from (for reports).
    let sourceType: GGMLType
    /// Decode with 8-bit activations and integer dot products (else f32 activations).
    var int8Activations = false

    /// Below this many activation rows the integer kernels run; from it on, dequantised panels and f32
    /// GEMM. Measured crossover on SmolLM2 (2 threads, alternating runs): at 16 rows the integer path
    /// ran 1.6x the panels' speed, at 32 rows they were even (continuous batching's decode steps are
    /// 1-32 rows). Measured again on Zen 4 after the panels became one GEMM (docs/batching.md): for a
    /// request alone the crossover is near 120 rows (the panels' fixed cost, dequantising every weight,
    /// is ~66 ms there); kept at 32, since in a busy step that fixed cost is shared by every long
    /// prompt's rows.
    static let gemmThreshold = 32

    private init(rows: Int, cols: Int, format: QuantizedFormat, lanes: Bool, sourceType: GGMLType) {
        self.rows = rows
        self.cols = cols
        self.format = format
        self.lanes = lanes
        self.sourceType = sourceType
        blocks = cols / 32
        groups = lanes ? rows / LaneLayout.rows : (rows + 3) / 4
        let bytes = groups * blocks * QuantizedMatrix.groupBlockBytes(format, lanes: lanes)
        data = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
        data.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    }

    deinit { data.deallocate() }

    /// Bytes of one block of a group (4 rows, or 16 in the lane layout).
    static func groupBlockBytes(_ format: QuantizedFormat, lanes: Bool) -> Int {
        lanes ? LaneLayout.blockBytes(format) : format.groupBlockBytes
    }

    var byteCount: Int { groups * blocks * QuantizedMatrix.groupBlockBytes(format, lanes: lanes) }
    var rowsPerGroup: Int { lanes ? LaneLayout.rows : 4 }

    /// Repacks a 2-D quantised tensor (rows = outputs); nil when its type has no integer form here.
    convenience init?(_ t: RawTensor, int8Activations: Bool) throws(ModelError) {
        guard t.shape.count == 2, let range = t.type.integerBlockRange, let (blockSize, blockBytes) = t.type.blockGeometry,
              t.shape[1] % blockSize == 0 else { return nil }
        // One scale per 32 and no minimum (Q8_0, Q5_0): the lean byte layout.
        let format: QuantizedFormat = range == .unsignedNibble ? .q4 : ([.q8_0, .q5_0].contains(t.type) ? .q8s : .q8)
        let lanes = t.shape[0] % LaneLayout.rows == 0 && Kernels.active.prefersLaneLayout
        self.init(rows: t.shape[0], cols: t.shape[1], format: format, lanes: lanes, sourceType: t.type)
        self.int8Activations = int8Activations
        let rowsPerGroup = self.rowsPerGroup
        let rowBytes = cols / blockSize * blockBytes
        let failed = Atomic(false)
        ThreadPool.shared.parallelRanges(groups, grain: 16) { range in
            var q = [Int8](repeating: 0, count: cols)
            var scales = [Float](repeating: 0, count: cols / 16), minimums = [Float](repeating: 0, count: cols / 32)
            for g in range {
                for r in 0..<rowsPerGroup where rowsPerGroup * g + r < rows {
                    do {
                        try t.type.decodeIntegerBlocks(t.data + (rowsPerGroup * g + r) * rowBytes, count: cols, q: &q, scales: &scales,
                                                       minimums: &minimums)
                    } catch { failed.store(true, ordering: .relaxed); return }
                    pack(group: g, row: r, q: q, scales: scales, minimums: minimums)
                }
            }
        }
        if failed.load(ordering: .relaxed) { throw .unsupportedTensorType(tensor: t.name, type: "\(t.type)") }
    }

    private func pack(group g: Int, row r: Int, q: [Int8], scales: [Float], minimums: [Float]) {
        if lanes {
            let stride = LaneLayout.blockBytes(format)
            for b in 0..<blocks {
                let dst = data + (g * blocks + b) * stride
                q.withUnsafeBufferPointer { q in packLaneValues(q.baseAddress! + 32 * b, row: r, into: dst) }
                dst.storeBytes(of: halfBitsFromFloat(scales[2 * b]), toByteOffset: LaneLayout.scaleOffset(format, row: r), as: UInt16.self)
                if format == .q8 {
                    dst.storeBytes(of: halfBitsFromFloat(scales[2 * b + 1]), toByteOffset: LaneLayout.scaleOffset(format, row: r, value: 16),
                                   as: UInt16.self)
                }
                if let at = LaneLayout.minimumOffset(format, row: r) {
                    dst.storeBytes(of: halfBitsFromFloat(minimums[b]), toByteOffset: at, as: UInt16.self)
                }
            }
            return
        }
        let stride = format.groupBlockBytes
        for b in 0..<blocks {
            let dst = data + (g * blocks + b) * stride
            switch format {
            case .q4:
                for j in 0..<16 {
                    dst.storeBytes(of: UInt8(q[32 * b + j]) | UInt8(q[32 * b + j + 16]) << 4, toByteOffset: 16 * r + j, as: UInt8.self)
                }
                dst.storeBytes(of: halfBitsFromFloat(scales[2 * b]), toByteOffset: 64 + 2 * r, as: UInt16.self)
                dst.storeBytes(of: halfBitsFromFloat(minimums[b]), toByteOffset: 72 + 2 * r, as: UInt16.self)
            case .q8:
                for j in 0..<32 { dst.storeBytes(of: q[32 * b + j], toByteOffset: 32 * r + j, as: Int8.self) }
                dst.storeBytes(of: halfBitsFromFloat(scales[2 * b]), toByteOffset: 128 + 4 * r, as: UInt16.self)
                dst.storeBytes(of: halfBitsFromFloat(scales[2 * b + 1]), toByteOffset: 130 + 4 * r, as: UInt16.self)
                dst.storeBytes(of: halfBitsFromFloat(minimums[b]), toByteOffset: 144 + 2 * r, as: UInt16.self)
            case .q8s:
                for j in 0..<32 { dst.storeBytes(of: q[32 * b + j], toByteOffset: 32 * r + j, as: Int8.self) }
                dst.storeBytes(of: halfBitsFromFloat(scales[2 * b]), toByteOffset: 128 + 2 * r, as: UInt16.self)
            }
        }
    }

    /// Row r's 32 codes of one block into its lane-layout group block: whole bytes, pairs or quads at
    /// a time (where `LaneLayout.valuePosition` puts each value; a row's bytes hold only its own values,
    /// so nothing is read back). Load-time work: value by value it was half of a short run's time.
    private func packLaneValues(_ q: UnsafePointer<Int8>, row r: Int, into dst: UnsafeMutableRawPointer) {
        @inline(__always) func nibbles(_ low: Int8, _ high: Int8) -> UInt8 { UInt8(bitPattern: low) & 0x0F | UInt8(bitPattern: high) << 4 }
        switch format {
        case .q4 where int8Activations:
            // Quads: bytes 64u + 4r + t hold values 4u + t (low nibble) and 16 + 4u + t (high).
            for u in 0..<4 {
                var word: UInt32 = 0
                for t in 0..<4 { word |= UInt32(nibbles(q[4 * u + t], q[16 + 4 * u + t])) << (8 * t) }
                dst.storeBytes(of: word.littleEndian, toByteOffset: 64 * u + 4 * r, as: UInt32.self)
            }
        case .q8 where int8Activations, .q8s where int8Activations:
            // Biased quads: byte 64u + 4r + t holds value 4u + t plus 128.
            for u in 0..<8 {
                var word: UInt32 = 0
                for t in 0..<4 { word |= UInt32(UInt8(bitPattern: q[4 * u + t]) ^ 0x80) << (8 * t) }
                dst.storeBytes(of: word.littleEndian, toByteOffset: 64 * u + 4 * r, as: UInt32.self)
            }
        case .q4:
            // Bytes 32c + 2r and 32c + 2r + 1 hold values 4c, 4c + 2 and 4c + 1, 4c + 3 (low, high nibble).
            for c in 0..<8 {
                let pair = UInt16(nibbles(q[4 * c], q[4 * c + 2])) | UInt16(nibbles(q[4 * c + 1], q[4 * c + 3])) << 8
                dst.storeBytes(of: pair.littleEndian, toByteOffset: 32 * c + 2 * r, as: UInt16.self)
            }
        case .q8, .q8s:
            // Bytes 32c + 2r and 32c + 2r + 1 hold values 2c and 2c + 1.
            for c in 0..<16 {
                let pair = UInt16(UInt8(bitPattern: q[2 * c])) | UInt16(UInt8(bitPattern: q[2 * c + 1])) << 8
                dst.storeBytes(of: pair.littleEndian, toByteOffset: 32 * c + 2 * r, as: UInt16.self)
            }
        }
    }

    /// Rows stacked (Q, K, V), when all share the format and every part but the last fills its groups.
    static func stacked(_ parts: [QuantizedMatrix]) -> QuantizedMatrix? {
        guard let first = parts.first,
              parts.allSatisfy({ $0.format == first.format && $0.lanes == first.lanes && $0.cols == first.cols
                                 && $0.int8Activations == first.int8Activations }),
              parts.dropLast().allSatisfy({ $0.rows % $0.rowsPerGroup == 0 }) else { return nil }
        let merged = QuantizedMatrix(rows: parts.reduce(0) { $0 + $1.rows }, cols: first.cols, format: first.format,
                                     lanes: first.lanes, sourceType: first.sourceType)
        merged.int8Activations = first.int8Activations
        var at = merged.data
        for p in parts {
            at.copyMemory(from: p.data, byteCount: p.byteCount)
            at += p.byteCount
        }
        return merged
    }

    // MARK: - Multiplication

    /// out (m, rows, row stride ldOut) = x (m, cols) · Wᵀ
    /// `panelRows`: the first rows that take the panel path, the rest the integer path (nil: all rows
    /// by the size rule). Continuous batching sets it per sequence, so that a row's arithmetic does
    /// not depend on how many other requests share its step.
    func apply(_ x: UnsafePointer<Float>, m: Int, out: UnsafeMutablePointer<Float>, ldOut: Int, panelRows: Int? = nil) {
        if lanes { return applyLanes(x, m: m, out: out, ldOut: ldOut) }
        let panels = min(panelRows ?? (m >= QuantizedMatrix.gemmThreshold ? m : 0), m)
        if panels > 0 { applyByPanels(x, m: panels, out: out, ldOut: ldOut) }
        if panels < m { applyIntegers(x + panels * cols, m: m - panels, out: out + panels * ldOut, ldOut: ldOut) }
    }

    /// The lane layout: every row count takes the integer kernel (AVX-512 VNNI), prompts included.
    /// The activations are quantised a token per task, then the threads split the 16-row groups, each
    /// group passing its blocks (L1-resident) eight tokens at a time.
    private func applyLanes(_ x: UnsafePointer<Float>, m: Int, out: UnsafeMutablePointer<Float>, ldOut: Int) {
        let kernels = Kernels.active
        let int8 = int8Activations
        let (x8, x16, xs, offsets) = quantizeActivations(x, m: m)
        let (blocks, cols, data, format) = (self.blocks, self.cols, self.data, self.format)
        let stride = blocks * LaneLayout.blockBytes(format)
        // Chunks claimed as threads free up, down to about eight groups of one token (~1.5 µs of
        // reading weights): a prompt's products end together (pp128 +3-5%, alternating binaries).
        ThreadPool.shared.parallelGuided(groups, grain: max(1, 8 / m)) { range in
            let (w, y) = (data + range.lowerBound * stride, out + LaneLayout.rows * range.lowerBound)
            if int8 {
                kernels.quantizedDotLanes(QuantizedDotArguments(
                    format: format, blocks: blocks, weights: w, groups: range.count, x: x8, xScales: xs, xSums: xs + m * blocks,
                    xOffsets: offsets, y: y, tokens: m, ldx: cols, lds: blocks, ldy: ldOut))
            } else {
                kernels.quantized16DotLanes(Quantized16DotArguments(
                    format: format, blocks: blocks, weights: w, groups: range.count, x: x16, xScales: xs, xSums: xs + m * blocks, y: y,
                    tokens: m, ldx: cols, lds: blocks, ldy: ldOut))
            }
        }
    }

    /// The m rows of x quantised per block of 32 to 8 bits (`int8Activations`) or 16, in the calling
    /// thread's scratch (no allocation per product; a decode step makes hundreds): the values (x8 or
    /// x16, row t at t · cols), then the scales (row t at t · blocks) and the sums (row t at
    /// (m + t) · blocks) in xs; for the byte formats' lanes with 8-bit activations also the bias offsets
    /// (row t at t · blocks · LaneLayout.offsetsPerBlock). Runs of tokens spread over the pool: on the
    /// calling thread alone a step of many decode rows kept the other threads spinning, and a task a
    /// token (a quarter of a microsecond each) spent as long claiming tasks as quantising.
    private func quantizeActivations(_ x: UnsafePointer<Float>, m: Int)
        -> (x8: UnsafeMutablePointer<Int8>, x16: UnsafeMutablePointer<Int16>, xs: UnsafeMutablePointer<Float>,
            offsets: UnsafeMutablePointer<Int32>?) {
        let kernels = Kernels.active
        let (int8, cols, blocks) = (int8Activations, self.cols, self.blocks)
        let perBlock = int8 && lanes ? LaneLayout.offsetsPerBlock(format) : 0
        let quantizedBytes = (m * cols * (int8 ? 1 : 2) + 63) / 64 * 64
        let scratch = tessera_thread_scratch(Int32(TESSERA_SCRATCH_ACTIVATIONS), quantizedBytes + (2 + perBlock) * m * blocks * 4)!
        let x8 = scratch.assumingMemoryBound(to: Int8.self), x16 = scratch.assumingMemoryBound(to: Int16.self)
        let xs = (scratch + quantizedBytes).bindMemory(to: Float.self, capacity: 2 * m * blocks)
        let offsets = perBlock > 0
            ? (scratch + quantizedBytes + 2 * m * blocks * 4).bindMemory(to: Int32.self, capacity: perBlock * m * blocks) : nil
        ThreadPool.shared.parallelRanges(m, grain: max(1, 2048 / cols)) { tokens in
            for t in tokens {
                if int8 {
                    kernels.quantizeActivations(x + t * cols, count: cols, q: x8 + t * cols, scales: xs + t * blocks,
                                                sums: xs + (m + t) * blocks)
                    if let offsets {
                        LaneLayout.biasOffsets(x8 + t * cols, count: cols, perBlock: perBlock, into: offsets + t * perBlock * blocks)
                    }
                } else {
                    kernels.quantizeActivations16(x + t * cols, count: cols, q: x16 + t * cols, scales: xs + t * blocks,
                                                  sums: xs + (m + t) * blocks)
                }
            }
        }
        return (x8, x16, xs, offsets)
    }

    private func applyIntegers(_ x: UnsafePointer<Float>, m: Int, out: UnsafeMutablePointer<Float>, ldOut: Int) {
        let kernels = Kernels.active
        let int8 = int8Activations
        let (x8, x16, xs, _) = quantizeActivations(x, m: m)
        let (format, blocks, rows, groups, data, cols) = (self.format, self.blocks, self.rows, self.groups, self.data, self.cols)
        let stride = blocks * format.groupBlockBytes
        /// Groups g0 ..< g0 + count of token t into dst.
        func dot(_ t: Int, _ g0: Int, _ count: Int, _ dst: UnsafeMutablePointer<Float>) {
            if int8 {
                kernels.quantizedDot(QuantizedDotArguments(format: format, blocks: blocks, weights: data + g0 * stride, groups: count,
                                                           x: x8 + t * cols, xScales: xs + t * blocks, xSums: xs + (m + t) * blocks, y: dst))
            } else {
                kernels.quantized16Dot(Quantized16DotArguments(format: format, blocks: blocks, weights: data + g0 * stride, groups: count,
                                                               x: x16 + t * cols, xScales: xs + t * blocks, xSums: xs + (m + t) * blocks,
                                                               y: dst))
            }
        }
        // About 8 tasks per thread so uneven progress evens out; at least 4 groups each.
        let grain = max(4, groups / (ThreadPool.shared.threadCount * 8))
        ThreadPool.shared.parallelRanges(groups, grain: grain) { range in
            var tail = (Float(0), Float(0), Float(0), Float(0))
            // Whole groups straight into the output; a last, partial group through `tail`.
            let full = min(range.upperBound, rows / 4)
            if full > range.lowerBound {
                let g0 = range.lowerBound
                if int8 {
                    for t in 0..<m { dot(t, g0, full - g0, out + t * ldOut + 4 * g0) }
                } else {
                    // All the tokens in one call: the 4-bit kernel unpacks each block once for up to four.
                    kernels.quantized16Dot(Quantized16DotArguments(
                        format: format, blocks: blocks, weights: data + g0 * stride, groups: full - g0, x: x16, xScales: xs,
                        xSums: xs + m * blocks, y: out + 4 * g0, tokens: m, ldx: cols, lds: blocks, ldy: ldOut))
                }
            }
            if range.upperBound > full {
                for t in 0..<m {
                    let y = out + t * ldOut
                    withUnsafeMutableBytes(of: &tail) { buffer in
                        let p = buffer.baseAddress!.assumingMemoryBound(to: Float.self)
                        dot(t, groups - 1, 1, p)
                        for r in 0..<(rows - 4 * (groups - 1)) { y[4 * (groups - 1) + r] = p[r] }
                    }
                }
            }
        }
    }

    /// The panel path: one GEMM whose weight panels are dequantised to f32 as they are packed, so the
    /// activations are packed once. (A GEMM per 64-row panel of dequantised weights repacked them for
    /// every panel: ~12% of a prefill.)
    private func applyByPanels(_ x: UnsafePointer<Float>, m: Int, out: UnsafeMutablePointer<Float>, ldOut: Int) {
        Kernels.active.gemmGeneratedWeights(GEMMArguments(m: m, n: rows, k: cols, a: x, lda: cols, b: x /* not read */, transposeB: true,
                                                          c: out, ldc: ldOut)) { r0, count, p0, kc, destination in
            dequantizeRows(r0..<(r0 + count), depth: p0..<(p0 + kc), into: destination, ld: kc)
        }
    }

    /// Rows `range`, depth `depth` of the weights as f32 into `out` (rows `ld` apart).
    func dequantizeRows(_ range: Range<Int>, depth: Range<Int>, into out: UnsafeMutablePointer<Float>, ld: Int) {
        let b0 = depth.lowerBound / 32, b1 = (depth.upperBound + 31) / 32
        if depth.lowerBound % 32 == 0 && depth.upperBound % 32 == 0 {
            for row in range { dequantizeBlocks(row: row, b0..<b1, into: out + (row - range.lowerBound) * ld) }
            return
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { block in
            for row in range {
                let y = out + (row - range.lowerBound) * ld
                for b in b0..<b1 {
                    dequantizeBlocks(row: row, b..<(b + 1), into: block.baseAddress!)
                    let lo = max(depth.lowerBound, 32 * b), hi = min(depth.upperBound, 32 * b + 32)
                    (y + lo - depth.lowerBound).update(from: block.baseAddress! + lo - 32 * b, count: hi - lo)
                }
            }
        }
    }

    /// Blocks `blockRange` (32 values each) of one row as f32, contiguous from `out`. SIMD over each
    /// block's 32 values: the panel path dequantises every weight once per call, which decides its cost
    /// for small batches.
    @inline(__always)
    func dequantizeBlocks(row: Int, _ blockRange: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        if lanes {
            let g = row / LaneLayout.rows, j = row % LaneLayout.rows
            for b in blockRange {
                let p = UnsafeRawPointer(data + (g * blocks + b) * LaneLayout.blockBytes(format))
                let y = out + 32 * (b - blockRange.lowerBound)
                for i in 0..<32 {
                    let w = LaneLayout.weight(format, p, row: j, value: i, int8: int8Activations)
                    y[i] = Float(w.q) * w.d + w.m
                }
            }
            return
        }
        let stride = format.groupBlockBytes
        let g = row / 4, r = row % 4
        let y = UnsafeMutableRawPointer(out)
        for b in blockRange {
            let p = UnsafeRawPointer(data + (g * blocks + b) * stride)
            let dst = y + 128 * (b - blockRange.lowerBound)
            switch format {
            case .q4:
                let d = floatFromHalfBits(p.load(fromByteOffset: 64 + 2 * r, as: UInt16.self))
                let m = floatFromHalfBits(p.load(fromByteOffset: 72 + 2 * r, as: UInt16.self))
                let bytes = p.loadUnaligned(fromByteOffset: 16 * r, as: SIMD16<UInt8>.self)
                let low = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: bytes & 0x0F))
                let high = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: bytes &>> 4))
                dst.storeBytes(of: low * d + m, as: SIMD16<Float>.self)
                (dst + 64).storeBytes(of: high * d + m, as: SIMD16<Float>.self)
            case .q8:
                let d0 = floatFromHalfBits(p.load(fromByteOffset: 128 + 4 * r, as: UInt16.self))
                let d1 = floatFromHalfBits(p.load(fromByteOffset: 130 + 4 * r, as: UInt16.self))
                let m = floatFromHalfBits(p.load(fromByteOffset: 144 + 2 * r, as: UInt16.self))
                let first = p.loadUnaligned(fromByteOffset: 32 * r, as: SIMD16<Int8>.self)
                let second = p.loadUnaligned(fromByteOffset: 32 * r + 16, as: SIMD16<Int8>.self)
                dst.storeBytes(of: SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: first)) * d0 + m, as: SIMD16<Float>.self)
                (dst + 64).storeBytes(of: SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: second)) * d1 + m, as: SIMD16<Float>.self)
            case .q8s:
                let d = floatFromHalfBits(p.load(fromByteOffset: 128 + 2 * r, as: UInt16.self))
                let first = p.loadUnaligned(fromByteOffset: 32 * r, as: SIMD16<Int8>.self)
                let second = p.loadUnaligned(fromByteOffset: 32 * r + 16, as: SIMD16<Int8>.self)
                dst.storeBytes(of: SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: first)) * d, as: SIMD16<Float>.self)
                (dst + 64).storeBytes(of: SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: second)) * d, as: SIMD16<Float>.self)
            }
        }
    }
}
