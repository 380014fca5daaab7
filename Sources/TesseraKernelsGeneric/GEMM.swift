// Dense matrix products: the packed, register-blocked f32 GEMM (BLIS-style) and a bandwidth-bound GEMV.
//
// GEMM structure (Goto/BLIS): for each block of KC depth, A (m x KC) is packed into MR-row panels and B
// (KC x n) into NR-column panels, so that the micro-kernel reads both sequentially; the micro-kernel
// keeps an MR x NR tile of C in registers (6 x 16 floats in 12 ymm on AVX2, 6 x 32 in 12 zmm on
// AVX-512) and does one rank-1 update per k. Threads share the packed panels and split C into tiles.
// The same driver serves f16/bf16 weights: their panels are converted to f32 while packing.
import CTesseraCPU
import TesseraCore

/// Rows of C per micro-kernel call.
let gemmMR = 6
/// Columns of C per micro-kernel call: two native vectors.
let gemmNR = 2 * VF.scalarCount
/// Depth of one packed block (A panel of MR x KC and B panel of KC x NR stay in L1/L2). On Zen 4 the
/// AVX-512 set's 32-column B panel is then 32 KiB; 128 deep (16 KiB) measured the same on
/// 512 x 4096 x 4096 (0.88 against 0.87 of the peak) and no better on a training step.
let gemmKC = 256
/// Rows and columns of C per parallel task.
let gemmTaskRows = gemmMR * 24
let gemmTaskColumns = gemmNR * 8
/// Rows of A packed at once (bounds the packed-A buffer at gemmMaxRows x k floats).
let gemmMaxRows = 1152
/// Columns of B packed at once (the packed-B buffer holds gemmChunkColumns x k floats).
let gemmChunkColumns = 512

// MARK: - The micro-kernel (the hot loop)

/// C[0..<6, 0..<NR] (+)= Apanel (kc x 6) · Bpanel (kc x NR) (+ partial). Both panels are packed and
/// contiguous; `partial`, when given, is a 6 x NR tile (rows `ldp` apart) of sums over earlier depth
/// blocks, added to the product before it is stored (or added) to C.
@inline(__always)
func microKernel(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                 c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                 partial: UnsafePointer<Float>? = nil, ldp: Int = 0) {
    #if TESSERA_AVX512
    tessera_gemm_6x32_avx512(kc, a, b, c, ldc, accumulate ? 1 : 0, partial, ldp)
    #elseif TESSERA_AVX2
    tessera_gemm_6x16_avx2(kc, a, b, c, ldc, accumulate ? 1 : 0, partial, ldp)
    #else
    var c00 = VF(), c01 = VF(), c10 = VF(), c11 = VF(), c20 = VF(), c21 = VF()
    var c30 = VF(), c31 = VF(), c40 = VF(), c41 = VF(), c50 = VF(), c51 = VF()
    var pa = a, pb = b
    @inline(__always) func step() {
        let b0 = load(pb), b1 = load(pb + vectorWidth)
        var av = VF(repeating: pa[0])
        c00.addProduct(av, b0); c01.addProduct(av, b1)
        av = VF(repeating: pa[1])
        c10.addProduct(av, b0); c11.addProduct(av, b1)
        av = VF(repeating: pa[2])
        c20.addProduct(av, b0); c21.addProduct(av, b1)
        av = VF(repeating: pa[3])
        c30.addProduct(av, b0); c31.addProduct(av, b1)
        av = VF(repeating: pa[4])
        c40.addProduct(av, b0); c41.addProduct(av, b1)
        av = VF(repeating: pa[5])
        c50.addProduct(av, b0); c51.addProduct(av, b1)
        pa += gemmMR
        pb += gemmNR
    }
    // Prefetch the C tile a few dozen iterations before the end, late enough that the A and B
    // lines streaming through L1 meanwhile do not evict it again.
    let tail = min(kc, 24)
    if partial != nil {  // writing C itself, not a tile in L2: ask for its lines a whole call ahead
        for row in 0..<gemmMR {
            tessera_prefetch_write(c + row * ldc)
            tessera_prefetch_write(c + row * ldc + gemmNR - 1)
        }
    }
    for _ in 0..<(kc - tail) { step() }
    for row in 0..<gemmMR {
        tessera_prefetch_write(c + row * ldc)
        tessera_prefetch_write(c + row * ldc + gemmNR - 1)
    }
    for _ in 0..<tail { step() }
    @inline(__always) func write(_ row: Int, _ v0: VF, _ v1: VF) {
        var v0 = v0, v1 = v1
        if let partial {
            v0 += load(partial + row * ldp)
            v1 += load(partial + row * ldp + vectorWidth)
        }
        let p = c + row * ldc
        if accumulate {
            store(load(p) + v0, p)
            store(load(p + vectorWidth) + v1, p + vectorWidth)
        } else {
            store(v0, p)
            store(v1, p + vectorWidth)
        }
    }
    write(0, c00, c01); write(1, c10, c11); write(2, c20, c21)
    write(3, c30, c31); write(4, c40, c41); write(5, c50, c51)
    #endif
}

/// The micro-kernel on a partial tile at the matrix edge (rows < MR or columns < NR).
@inline(never)
func microKernelEdge(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                     c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, columns: Int, accumulate: Bool) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: gemmMR * gemmNR) { tile in
        let t = tile.baseAddress!
        microKernel(kc: kc, a: a, b: b, c: t, ldc: gemmNR, accumulate: false)
        for i in 0..<rows {
            for j in 0..<columns {
                if accumulate { c[i * ldc + j] += t[i * gemmNR + j] } else { c[i * ldc + j] = t[i * gemmNR + j] }
            }
        }
    }
}

// MARK: - Packing

/// Packs rows [row0, row0 + rows) x depth [p0, p0 + kc) of op(A) into MR-row panels, zero-padded.
@inline(__always)
func packA(_ args: GEMMArguments, row0: Int, rows: Int, p0: Int, kc: Int, into packed: UnsafeMutablePointer<Float>) {
    let panels = (rows + gemmMR - 1) / gemmMR
    if args.transposeA {
        // A stored (k x m): a row of depth p is contiguous across i, so walk each source row once across
        // all the panels (reading whole cache lines) instead of once per panel.
        for p in 0..<kc {
            let src = args.a + (p0 + p) * args.lda + row0
            // Rows of depth are far apart (a row of A per depth step): ask for the lines sixteen rows ahead.
            if p + 16 < kc {
                let ahead = src + 16 * args.lda
                var line = 0
                while line < rows { tessera_prefetch(ahead + line); line += 16 }
                tessera_prefetch(ahead + rows - 1)
            }
            for panel in 0..<panels {
                let dst = packed + panel * gemmMR * kc + p * gemmMR, base = panel * gemmMR
                let valid = min(gemmMR, rows - base)
                if valid == gemmMR {
                    // Six floats as a vector of four and one of two (element by element this loop
                    // was ~9% of a training step, in the weight-gradient products).
                    let from = UnsafeRawPointer(src + base), to = UnsafeMutableRawPointer(dst)
                    to.storeBytes(of: from.loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
                    to.storeBytes(of: from.loadUnaligned(fromByteOffset: 16, as: SIMD2<Float>.self), toByteOffset: 16, as: SIMD2<Float>.self)
                } else {
                    for i in 0..<gemmMR { dst[i] = i < valid ? src[base + i] : 0 }
                }
            }
        }
        return
    }
    for panel in 0..<panels {
        let dst = packed + panel * gemmMR * kc
        let r0 = row0 + panel * gemmMR
        let valid = min(gemmMR, row0 + rows - r0)
        var p = 0
        if valid == gemmMR {
            // A full panel, a vector of depth from each of its six rows at a time: the loads stay
            // sequential along each row and the transposed stores go out from registers (element by
            // element this loop stalled on its loads: ~10% of a training step). The AVX-512 build
            // takes the same 8-deep kernel: its 16-lane Swift loop below spilled the vectors to the
            // stack (perf: the A pack at 8% of a 512-token prefill on Zen 4, against 2% for AVX2).
            #if TESSERA_AVX2 || TESSERA_AVX512
            let source = args.a + r0 * args.lda + p0
            while p + 8 <= kc {
                tessera_pack_a6x8_avx2(source + p, args.lda, dst + p * gemmMR)
                p += 8
            }
            #endif
            let s0 = args.a + r0 * args.lda + p0, s1 = s0 + args.lda, s2 = s1 + args.lda
            let s3 = s2 + args.lda, s4 = s3 + args.lda, s5 = s4 + args.lda
            while p + vectorWidth <= kc {
                let v0 = load(s0 + p), v1 = load(s1 + p), v2 = load(s2 + p)
                let v3 = load(s3 + p), v4 = load(s4 + p), v5 = load(s5 + p)
                for l in 0..<vectorWidth {
                    let d = dst + (p + l) * gemmMR
                    d[0] = v0[l]; d[1] = v1[l]; d[2] = v2[l]; d[3] = v3[l]; d[4] = v4[l]; d[5] = v5[l]
                }
                p += vectorWidth
            }
        }
        for i in 0..<gemmMR {  // the depth left over, and partial panels
            if i < valid {
                let src = args.a + (r0 + i) * args.lda + p0
                for q in p..<kc { dst[q * gemmMR + i] = src[q] }
            } else {
                for q in p..<kc { dst[q * gemmMR + i] = 0 }
            }
        }
    }
}

/// dst[c * ldd + r] = src[r * lds + c] for an 8x8 block.
@inline(__always)
func transpose8x8(_ src: UnsafePointer<Float>, _ lds: Int, _ dst: UnsafeMutablePointer<Float>, _ ldd: Int) {
    #if TESSERA_AVX2 || TESSERA_AVX512
    tessera_transpose8x8_avx2(src, lds, dst, ldd)
    #else
    for r in 0..<8 { for c in 0..<8 { dst[c * ldd + r] = src[r * lds + c] } }
    #endif
}

/// Packs NR rows of a row-major (n x k) matrix, `rows[j]` = row j (nil past the edge), depth
/// [p0, p0 + kc), into one B panel: dst[p * NR + j] = rows[j][p0 + p]; missing rows become zeros.
@inline(__always)
func packTransposedPanel(_ source: UnsafePointer<Float>, ld: Int, validRows: Int, p0: Int, kc: Int,
                         into dst: UnsafeMutablePointer<Float>) {
    var p = 0
    if validRows == gemmNR {
        while p + 8 <= kc {
            for jb in stride(from: 0, to: gemmNR, by: 8) {
                transpose8x8(source + jb * ld + p0 + p, ld, dst + p * gemmNR + jb, gemmNR)
            }
            p += 8
        }
    }
    for j in 0..<gemmNR {
        if j < validRows {
            let src = source + j * ld + p0
            for q in p..<kc { dst[q * gemmNR + j] = src[q] }
        } else {
            for q in p..<kc { dst[q * gemmNR + j] = 0 }
        }
    }
}

/// Packs `panels` consecutive NR-column panels of f32 op(B) — columns [col0, col0 + panels·NR) x depth
/// [p0, p0 + kc) — each panel NR·kc floats after the previous; columns past n become zeros.
@inline(__always)
func packBPanels(_ args: GEMMArguments, col0: Int, panels: Int, p0: Int, kc: Int, into dst: UnsafeMutablePointer<Float>) {
    if args.transposeB {  // B stored (n x k): each column of op(B) is a contiguous row
        for panel in 0..<panels {
            let c0 = col0 + panel * gemmNR
            packTransposedPanel(args.b + c0 * args.ldb, ld: args.ldb, validRows: min(gemmNR, args.n - c0), p0: p0, kc: kc,
                                into: dst + panel * gemmNR * kc)
        }
        return
    }
    // B stored (k x n): walk each source row once across all panels, so reads stay sequential.
    for p in 0..<kc {
        let src = args.b + (p0 + p) * args.ldb + col0
        for panel in 0..<panels {
            let out = dst + panel * gemmNR * kc + p * gemmNR
            let valid = min(gemmNR, args.n - col0 - panel * gemmNR)
            if valid == gemmNR {
                store(load(src + panel * gemmNR), out)
                store(load(src + panel * gemmNR + vectorWidth), out + vectorWidth)
            } else {
                for j in 0..<gemmNR { out[j] = j < valid ? src[panel * gemmNR + j] : 0 }
            }
        }
    }
}

// MARK: - The blocked, threaded driver

/// Runs C = op(A) · op(B) with `packB(column0, panels, p0, kc, destination)` filling consecutive NR-column panels,
/// so that f32 and half-precision weights share the blocking and threading.
///
/// Loop order: A is packed once for its whole depth (in passes of at most `gemmMaxRows` rows), B one
/// chunk of `gemmChunkColumns` columns at a time, also for its whole depth. Each parallel task owns a
/// (gemmTaskRows x gemmTaskColumns) block of C and runs the depth loop innermost, so its C block stays
/// in L2 across all KC passes instead of travelling to memory and back once per pass.
@inline(__always)
func blockedGEMM(_ args: GEMMArguments,
                 packB: (_ col0: Int, _ panels: Int, _ p0: Int, _ kc: Int, _ destination: UnsafeMutablePointer<Float>) -> Void) {
    let pool = ThreadPool.shared
    let rowsPerPass = min(args.m, gemmMaxRows)
    let chunkColumns = min(args.n, max(gemmChunkColumns, pool.threadCount * 64))
    // Depth blocks of equal size (k = 384 is two blocks of 192, not 256 + 128), a multiple of 8.
    let depthBlocks = (args.k + gemmKC - 1) / gemmKC
    let blockDepth = min(gemmKC, ((args.k + depthBlocks - 1) / depthBlocks + 7) / 8 * 8)
    let paddedRowsPerPass = (rowsPerPass + gemmMR - 1) / gemmMR * gemmMR
    let paddedChunkColumns = (chunkColumns + gemmNR - 1) / gemmNR * gemmNR
    // The calling thread's GEMM scratch (no allocation per call), 64-byte aligned so that no vector
    // load of a B panel row straddles two cache lines. Workers only read it.
    let aCount = (paddedRowsPerPass * args.k + 15) / 16 * 16
    let scratch = tessera_thread_scratch(Int32(TESSERA_SCRATCH_GEMM), (aCount + paddedChunkColumns * args.k) * 4)!
        .bindMemory(to: Float.self, capacity: aCount + paddedChunkColumns * args.k)
    let packedA = scratch, packedB = scratch + aCount

    for row0 in stride(from: 0, to: args.m, by: rowsPerPass) {
        let rows = min(rowsPerPass, args.m - row0)
        let aPanels = (rows + gemmMR - 1) / gemmMR
        let paddedRows = aPanels * gemmMR
        // Packed A: depth block at p0 holds its panels at p0 * paddedRows, each MR x kc.
        pool.parallelFor(depthBlocks * ((aPanels + 7) / 8)) { task in
            let p0 = (task % depthBlocks) * blockDepth, kc = min(blockDepth, args.k - p0)
            let firstPanel = (task / depthBlocks) * 8
            let r = firstPanel * gemmMR
            packA(args, row0: row0 + r, rows: min(8 * gemmMR, rows - r), p0: p0, kc: kc,
                  into: packedA + p0 * paddedRows + firstPanel * gemmMR * kc)
        }
        for col0 in stride(from: 0, to: args.n, by: chunkColumns) {
            let columns = min(chunkColumns, args.n - col0)
            let bPanels = (columns + gemmNR - 1) / gemmNR
            let paddedColumns = bPanels * gemmNR
            pool.parallelFor(depthBlocks * ((bPanels + 3) / 4)) { task in
                let p0 = (task % depthBlocks) * blockDepth, kc = min(blockDepth, args.k - p0)
                let firstPanel = (task / depthBlocks) * 4
                packB(col0 + firstPanel * gemmNR, min(4, bPanels - firstPanel), p0, kc,
                      packedB + p0 * paddedColumns + firstPanel * gemmNR * kc)
            }
            // Tasks: equal row bands of at most gemmTaskRows, and column blocks narrow enough that
            // there are about three tasks per thread (for balance), but no narrower than one panel.
            let rowTasks = (rows + gemmTaskRows - 1) / gemmTaskRows
            let taskRows = ((rows + rowTasks - 1) / rowTasks + gemmMR - 1) / gemmMR * gemmMR
            let wantedColumnTasks = max(1, (3 * pool.threadCount + rowTasks - 1) / rowTasks)
            let taskColumns = min(gemmTaskColumns, max(gemmNR, ((columns + wantedColumnTasks - 1) / wantedColumnTasks + gemmNR - 1) / gemmNR * gemmNR))
            let columnTasks = (columns + taskColumns - 1) / taskColumns
            // With more than one depth block, a task sums its C block in a private, contiguous tile
            // and writes it to C in its last depth block: C's own rows are often a power-of-two stride
            // apart (4096 floats), so a block of them maps onto a few cache sets and would be evicted
            // between depth passes.
            let tiled = depthBlocks > 1
            pool.parallelFor(rowTasks * columnTasks) { task in
                let taskRow = (task % rowTasks) * taskRows
                let taskColumn = (task / rowTasks) * taskColumns
                let rowEnd = min(rows, taskRow + taskRows)
                let columnEnd = min(columns, taskColumn + taskColumns)
                let tile = tiled ? tessera_thread_scratch(Int32(TESSERA_SCRATCH_GEMM_TILE), taskRows * taskColumns * 4)!
                    .bindMemory(to: Float.self, capacity: taskRows * taskColumns) : nil
                for p0 in stride(from: 0, to: args.k, by: blockDepth) {
                    let kc = min(blockDepth, args.k - p0)
                    let accumulate = tiled ? p0 > 0 : args.accumulate
                    // The B micro-panel (KC x NR) stays in L1 while the task's A panels stream from L2;
                    // meanwhile the next B micro-panel is prefetched into L2 (not L1, which the current one fills),
                    // a slice per micro-kernel call. (The next panel's lines are counted with this block's
                    // depth; at the last, shorter block that prefetches a little more than needed.)
                    let panelLines = kc * gemmNR / 16
                    let callsPerColumn = (rowEnd - taskRow + gemmMR - 1) / gemmMR
                    let linesPerCall = (panelLines + callsPerColumn - 1) / callsPerColumn
                    for j in stride(from: taskColumn, to: columnEnd, by: gemmNR) {
                        let bPanel = packedB + p0 * paddedColumns + (j / gemmNR) * gemmNR * kc
                        // After the task's last panel of this depth block comes the first of the next block.
                        let nextPanel = j + gemmNR < columnEnd ? bPanel + gemmNR * kc
                            : p0 + kc < args.k ? packedB + (p0 + kc) * paddedColumns + (taskColumn / gemmNR) * gemmNR * min(blockDepth, args.k - p0 - kc)
                            : nil
                        let tileColumns = min(gemmNR, columnEnd - j)
                        for i in stride(from: taskRow, to: rowEnd, by: gemmMR) {
                            if let nextPanel {
                                let first = (i - taskRow) / gemmMR * linesPerCall
                                var line = first
                                while line < min(panelLines, first + linesPerCall) { tessera_prefetch_l2(nextPanel + line * 16); line += 1 }
                            }
                            let aPanel = packedA + p0 * paddedRows + (i / gemmMR) * gemmMR * kc
                            let tileRows = min(gemmMR, rowEnd - i)
                            let c = args.c + (row0 + i) * args.ldc + col0 + j
                            if let tile {
                                // The tile has room for whole micro-tiles. The last depth block adds the
                                // tile's sums and stores the result in C; at the matrix edge it finishes in
                                // the tile and copies the valid part out.
                                let partial = tile + (i - taskRow) * taskColumns + (j - taskColumn)
                                if p0 + kc < args.k {
                                    microKernel(kc: kc, a: aPanel, b: bPanel, c: partial, ldc: taskColumns, accumulate: accumulate)
                                } else if tileRows == gemmMR && tileColumns == gemmNR {
                                    microKernel(kc: kc, a: aPanel, b: bPanel, c: c, ldc: args.ldc, accumulate: args.accumulate,
                                                partial: partial, ldp: taskColumns)
                                } else {
                                    microKernel(kc: kc, a: aPanel, b: bPanel, c: partial, ldc: taskColumns, accumulate: true)
                                    for r in 0..<tileRows {
                                        let from = partial + r * taskColumns, to = c + r * args.ldc
                                        for q in 0..<tileColumns { to[q] = args.accumulate ? to[q] + from[q] : from[q] }
                                    }
                                }
                                continue
                            }
                            if tileRows == gemmMR && tileColumns == gemmNR {
                                microKernel(kc: kc, a: aPanel, b: bPanel, c: c, ldc: args.ldc, accumulate: accumulate)
                            } else {
                                microKernelEdge(kc: kc, a: aPanel, b: bPanel, c: c, ldc: args.ldc,
                                                rows: tileRows, columns: tileColumns, accumulate: accumulate)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Uninitialised floats on a cache-line boundary.
@inline(__always) func allocateAligned(_ count: Int) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64).bindMemory(to: Float.self, capacity: max(count, 1))
}

extension ISAKernels {
    public static func gemm(_ args: GEMMArguments) {
        if args.m == 0 || args.n == 0 { return }
        if args.k == 0 {
            if !args.accumulate { for i in 0..<args.m { (args.c + i * args.ldc).update(repeating: 0, count: args.n) } }
            return
        }
        // One row against a weight stored (out, in): a matrix-vector product streams W once.
        if args.m == 1 && args.transposeB && !args.transposeA {
            gemv(n: args.n, k: args.k, w: args.b, ldw: args.ldb, x: args.a, y: args.c, accumulate: args.accumulate)
            return
        }
        blockedGEMM(args) { col0, panels, p0, kc, destination in
            packBPanels(args, col0: col0, panels: panels, p0: p0, kc: kc, into: destination)
        }
    }

    // MARK: - GEMV

    public static func gemv(n: Int, k: Int, w: UnsafePointer<Float>, ldw: Int, x: UnsafePointer<Float>,
                            y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        // Rows are independent: split them over the pool in blocks of 4 (sharing each load of x).
        ThreadPool.shared.parallelRanges((n + 3) / 4, grain: max(1, 4096 / max(k, 1))) { blocks in
            let rowStart = blocks.lowerBound * 4, rowEnd = min(n, blocks.upperBound * 4)
            // The four rows of a step come from the four quarters of the range: four independent memory
            // streams even when rows are short and contiguous (attention scores over a cache chunk).
            let quarter = (rowEnd - rowStart) / 4
            for i in 0..<quarter {
                let r = rowStart + i
                gemvRows4(k: k, w: w + r * ldw, ldw: quarter * ldw, x: x, y: y + r, ldy: quarter, accumulate: accumulate)
            }
            var row = rowStart + 4 * quarter
            while row < rowEnd {
                let dot = dotProduct(w + row * ldw, x, count: k)
                y[row] = accumulate ? y[row] + dot : dot
                row += 1
            }
        }
    }
}

/// y[0..<4] (+)= W[0..<4, :] · x, two accumulators per row to hide FMA latency.
@inline(__always)
func gemvRows4(k: Int, w: UnsafePointer<Float>, ldw: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
               ldy: Int = 1, accumulate: Bool) {
    let w0 = w, w1 = w + ldw, w2 = w + 2 * ldw, w3 = w + 3 * ldw
    var a0 = VF(), a1 = VF(), a2 = VF(), a3 = VF(), b0 = VF(), b1 = VF(), b2 = VF(), b3 = VF()
    var p = 0
    let step = 2 * vectorWidth
    while p + step <= k {
        let x0 = load(x + p), x1 = load(x + p + vectorWidth)
        a0.addProduct(load(w0 + p), x0); b0.addProduct(load(w0 + p + vectorWidth), x1)
        a1.addProduct(load(w1 + p), x0); b1.addProduct(load(w1 + p + vectorWidth), x1)
        a2.addProduct(load(w2 + p), x0); b2.addProduct(load(w2 + p + vectorWidth), x1)
        a3.addProduct(load(w3 + p), x0); b3.addProduct(load(w3 + p + vectorWidth), x1)
        p += step
    }
    var s0 = horizontalSum(a0 + b0), s1 = horizontalSum(a1 + b1)
    var s2 = horizontalSum(a2 + b2), s3 = horizontalSum(a3 + b3)
    while p < k {
        let xv = x[p]
        s0 += w0[p] * xv; s1 += w1[p] * xv; s2 += w2[p] * xv; s3 += w3[p] * xv
        p += 1
    }
    if accumulate {
        y[0] += s0; y[ldy] += s1; y[2 * ldy] += s2; y[3 * ldy] += s3
    } else {
        y[0] = s0; y[ldy] = s1; y[2 * ldy] = s2; y[3 * ldy] = s3
    }
}

/// Σ a[i]·b[i] with vector accumulators.
@inline(__always)
func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var acc0 = VF(), acc1 = VF()
    var p = 0
    while p + 2 * vectorWidth <= count {
        acc0.addProduct(load(a + p), load(b + p))
        acc1.addProduct(load(a + p + vectorWidth), load(b + p + vectorWidth))
        p += 2 * vectorWidth
    }
    var s = horizontalSum(acc0 + acc1)
    while p < count { s += a[p] * b[p]; p += 1 }
    return s
}
