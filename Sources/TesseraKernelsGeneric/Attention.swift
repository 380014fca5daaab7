// Attention building blocks for the flash-attention driver in TesseraKernels: block score scaling with
// optional softcapping, the online-softmax step, and the transposed GEMV that sums value rows in decode.
// All single-threaded: the driver parallelises over heads and query blocks around them.
import CTesseraCPU
import TesseraCore

/// tanh(x) = 1 - 2 / (e^{2x} + 1), saturating correctly at both ends.
@_transparent func vtanh(_ x: VF) -> VF {
    VF(repeating: 1) - VF(repeating: 2) / (vexp(x + x) + VF(repeating: 1))
}

extension ISAKernels {
    public static func groupScores(heads: Int, n: Int, k: Int, q: UnsafePointer<Float>, ldq: Int, w: UnsafePointer<Float>, ldw: Int,
                                   y: UnsafeMutablePointer<Float>, ldy: Int) {
        #if TESSERA_AVX2 || TESSERA_AVX512
        if k % 8 == 0 { return tessera_group_scores_avx2(q, ldq, heads, w, ldw, n, k, y, ldy) }
        #endif
        for h in 0..<heads { gemv(n: n, k: k, w: w, ldw: ldw, x: q + h * ldq, y: y + h * ldy, accumulate: false) }
    }

    public static func groupWeightedSum(heads: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Float>,
                                        ldw: Int, y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        #if TESSERA_AVX2 || TESSERA_AVX512
        if k % 8 == 0 { return tessera_group_values_avx2(x, ldx, heads, w, ldw, n, k, y, ldy, accumulate ? 1 : 0) }
        #endif
        for h in 0..<heads { gemvTransposed(n: n, k: k, w: w, ldw: ldw, x: x + h * ldx, y: y + h * ldy, accumulate: accumulate) }
    }

    public static func groupScoresHalf(heads: Int, n: Int, k: Int, q: UnsafePointer<Float>, ldq: Int, w: UnsafePointer<UInt16>,
                                       ldw: Int, y: UnsafeMutablePointer<Float>, ldy: Int) {
        #if TESSERA_AVX512
        if k % 16 == 0 { return tessera_group_scores_f16_avx512(q, ldq, heads, w, ldw, n, k, y, ldy) }
        #endif
        #if TESSERA_AVX2 || TESSERA_AVX512
        if k % 8 == 0 { return tessera_group_scores_f16_avx2(q, ldq, heads, w, ldw, n, k, y, ldy) }
        #endif
        widened(n: n, k: k, w: w, ldw: ldw) { groupScores(heads: heads, n: n, k: k, q: q, ldq: ldq, w: $0, ldw: k, y: y, ldy: ldy) }
    }

    public static func groupWeightedSumHalf(heads: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<UInt16>,
                                            ldw: Int, y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        #if TESSERA_AVX512
        if k % 16 == 0 { return tessera_group_values_f16_avx512(x, ldx, heads, w, ldw, n, k, y, ldy, accumulate ? 1 : 0) }
        #endif
        #if TESSERA_AVX2 || TESSERA_AVX512
        if k % 8 == 0 { return tessera_group_values_f16_avx2(x, ldx, heads, w, ldw, n, k, y, ldy, accumulate ? 1 : 0) }
        #endif
        widened(n: n, k: k, w: w, ldw: ldw) {
            groupWeightedSum(heads: heads, n: n, k: k, x: x, ldx: ldx, w: $0, ldw: k, y: y, ldy: ldy, accumulate: accumulate)
        }
    }

    /// The n rows of k halves (row stride ldw) widened into contiguous floats for `body` (the portable path).
    static func widened(n: Int, k: Int, w: UnsafePointer<UInt16>, ldw: Int, _ body: (UnsafePointer<Float>) -> Void) {
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n * k))
        defer { rows.deallocate() }
        for i in 0..<n { convertHalfRow(w + i * ldw, format: .f16, rows + i * k, count: k) }
        body(rows)
    }

    public static func convertToHalf(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<UInt16>, count: Int) {
        #if TESSERA_AVX2 || TESSERA_AVX512
        tessera_float_to_half_avx2(source, destination, count)
        #else
        for i in 0..<count { destination[i] = halfBitsFromFloat(source[i]) }
        #endif
    }

    public static func gemvTransposed(n: Int, k: Int, w: UnsafePointer<Float>, ldw: Int, x: UnsafePointer<Float>,
                                      y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        // Slices of 8 vectors of y stay in registers while every row streams past (in decode the rows are
        // the value vectors of a chunk of keys, contiguous in a head-major cache).
        let slice = 8 * vectorWidth
        var p = 0
        while p + slice <= k {
            var a0 = VF(), a1 = VF(), a2 = VF(), a3 = VF(), a4 = VF(), a5 = VF(), a6 = VF(), a7 = VF()
            if accumulate {
                a0 = load(y + p); a1 = load(y + p + vectorWidth); a2 = load(y + p + 2 * vectorWidth)
                a3 = load(y + p + 3 * vectorWidth); a4 = load(y + p + 4 * vectorWidth); a5 = load(y + p + 5 * vectorWidth)
                a6 = load(y + p + 6 * vectorWidth); a7 = load(y + p + 7 * vectorWidth)
            }
            // Rows are visited from the four quarters of the range in turn: four memory streams at once.
            @inline(__always) func add(_ i: Int) {
                let r = w + i * ldw + p, xv = VF(repeating: x[i])
                a0.addProduct(xv, load(r)); a1.addProduct(xv, load(r + vectorWidth))
                a2.addProduct(xv, load(r + 2 * vectorWidth)); a3.addProduct(xv, load(r + 3 * vectorWidth))
                a4.addProduct(xv, load(r + 4 * vectorWidth)); a5.addProduct(xv, load(r + 5 * vectorWidth))
                a6.addProduct(xv, load(r + 6 * vectorWidth)); a7.addProduct(xv, load(r + 7 * vectorWidth))
            }
            let quarter = n / 4
            for i in 0..<quarter { add(i); add(i + quarter); add(i + 2 * quarter); add(i + 3 * quarter) }
            for i in (4 * quarter)..<n { add(i) }
            store(a0, y + p); store(a1, y + p + vectorWidth); store(a2, y + p + 2 * vectorWidth)
            store(a3, y + p + 3 * vectorWidth); store(a4, y + p + 4 * vectorWidth); store(a5, y + p + 5 * vectorWidth)
            store(a6, y + p + 6 * vectorWidth); store(a7, y + p + 7 * vectorWidth)
            p += slice
        }
        while p + vectorWidth <= k {  // one vector at a time for the rest
            var a = accumulate ? load(y + p) : VF()
            for i in 0..<n { a.addProduct(VF(repeating: x[i]), load(w + i * ldw + p)) }
            store(a, y + p)
            p += vectorWidth
        }
        while p < k {
            var sum: Float = accumulate ? y[p] : 0
            for i in 0..<n { sum += x[i] * w[i * ldw + p] }
            y[p] = sum
            p += 1
        }
    }

    public static func scaleScores(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int, scale: Float, softcap: Float) {
        let vscale = VF(repeating: scale)
        for r in 0..<rows {
            let row = s + r * ld
            var j = 0
            if softcap > 0 {
                let cap = VF(repeating: softcap), inverse = VF(repeating: scale / softcap)
                while j + vectorWidth <= cols { store(cap * vtanh(load(row + j) * inverse), row + j); j += vectorWidth }
                while j < cols { row[j] = softcap * vtanh(VF(repeating: row[j] * scale / softcap))[0]; j += 1 }
            } else {
                while j + vectorWidth <= cols { store(load(row + j) * vscale, row + j); j += vectorWidth }
                while j < cols { row[j] *= scale; j += 1 }
            }
        }
    }

    public static func onlineSoftmax(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int,
                                     rowMax: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>,
                                     correction: UnsafeMutablePointer<Float>) {
        #if TESSERA_AVX512
        // The same steps in C, with a faster exponential and the row reductions in vectors.
        tessera_online_softmax_avx512(s, rows, cols, ld, rowMax, rowSum, correction)
        #else
        for r in 0..<rows {
            let row = s + r * ld
            var vmaximum = VF(repeating: -.infinity)
            var j = 0
            while j + vectorWidth <= cols { vmaximum = vmax(vmaximum, load(row + j)); j += vectorWidth }
            var blockMax = horizontalMax(vmaximum)
            while j < cols { blockMax = max(blockMax, row[j]); j += 1 }
            let newMax = max(rowMax[r], blockMax)
            if newMax == -.infinity {  // everything so far is masked
                row.update(repeating: 0, count: cols)
                correction[r] = 1
                continue
            }
            let shift = VF(repeating: newMax)
            var vsum = VF()
            j = 0
            while j + vectorWidth <= cols {
                let e = vexp(load(row + j) - shift)  // exp(-inf) = 0 for masked entries
                store(e, row + j)
                vsum += e
                j += vectorWidth
            }
            if j < cols {
                // The tail as one more vector, padded with masked (-inf, so 0) entries: a row's sum is
                // then the same bits whether the tile ends here or goes on with masked columns (a prompt
                // computed in one call or as a cached head and a tail).
                var tail = VF(repeating: -.infinity)
                for t in 0..<(cols - j) { tail[t] = row[j + t] }
                let e = vexp(tail - shift)
                for t in 0..<(cols - j) { row[j + t] = e[t] }
                vsum += e
            }
            let sum = horizontalSum(vsum)
            let c = rowMax[r] == -.infinity ? 0 : vexp(VF(repeating: rowMax[r] - newMax))[0]
            correction[r] = c
            rowSum[r] = rowSum[r] * c + sum
            rowMax[r] = newMax
        }
        #endif
    }
}

// MARK: - Int8 KV rows

/// One vector of int8 values widened to floats (vpmovsxbd + vcvtdq2ps).
@inline(__always) func loadInt8(_ p: UnsafePointer<Int8>) -> VF {
    #if TESSERA_AVX512
    let raw = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Int8>.self)
    #else
    let raw = UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Int8>.self)
    #endif
    var r = VF()
    for i in 0..<VF.scalarCount { r[i] = Float(raw[i]) }
    return r
}

extension ISAKernels {
    public static func quantizeRowsInt8(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ldx: Int,
                                        q: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let src = x + r * ldx, dst = q + r * cols
            var amax = VF(), j = 0
            while j + vectorWidth <= cols { let v = load(src + j); amax = vmax(amax, vmax(v, -v)); j += vectorWidth }
            var m = horizontalMax(amax)
            while j < cols { m = Swift.max(m, abs(src[j])); j += 1 }
            let inverse: Float = m > 0 ? 127 / m : 0
            for i in 0..<cols { dst[i] = Int8((src[i] * inverse).rounded(.toNearestOrEven)) }
            scales[r] = m / 127
        }
    }

    public static func groupScoresInt8(heads: Int, n: Int, k: Int, q: UnsafePointer<Float>, ldq: Int, w: UnsafePointer<Int8>,
                                       ldw: Int, scales: UnsafePointer<Float>, scaleStride: Int, block: Int,
                                       y: UnsafeMutablePointer<Float>, ldy: Int) {
        #if TESSERA_AVX512
        if k % 16 == 0 && block == 16 { return tessera_group_scores_i8_avx512(q, ldq, heads, w, ldw, scales, scaleStride, n, k, y, ldy) }
        #elseif TESSERA_AVX2
        if k % 16 == 0 && block == 16 { return tessera_group_scores_i8_avx2(q, ldq, heads, w, ldw, scales, scaleStride, n, k, y, ldy) }
        #endif
        for h in 0..<heads {
            gemvInt8(n: n, k: k, w: w, ldw: ldw, scales: scales, scaleStride: scaleStride, block: block, x: q + h * ldq, y: y + h * ldy)
        }
    }

    public static func groupWeightedSumInt8(heads: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Int8>,
                                            ldw: Int, scales: UnsafePointer<Float>, scaleStride: Int, block: Int,
                                            y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        #if TESSERA_AVX512
        if k % 16 == 0 && block == 16 {
            return tessera_group_values_i8_avx512(x, ldx, heads, w, ldw, scales, scaleStride, n, k, y, ldy, accumulate ? 1 : 0)
        }
        #elseif TESSERA_AVX2
        if k % 16 == 0 && block == 16 {
            return tessera_group_values_i8_avx2(x, ldx, heads, w, ldw, scales, scaleStride, n, k, y, ldy, accumulate ? 1 : 0)
        }
        #endif
        for h in 0..<heads {
            gemvTransposedInt8(n: n, k: k, w: w, ldw: ldw, scales: scales, scaleStride: scaleStride, block: block, x: x + h * ldx,
                               y: y + h * ldy, accumulate: accumulate)
        }
    }

    /// One head's int8 scores (the portable path, and blocks other than 16).
    static func gemvInt8(n: Int, k: Int, w: UnsafePointer<Int8>, ldw: Int, scales: UnsafePointer<Float>, scaleStride: Int,
                         block: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        // Per block: the int8 values widen to floats, multiply x, and the products add in with the
        // block's scale (one vector multiply and one FMA per vector); two accumulators for latency.
        let vectorBlocks = block % vectorWidth == 0
        for i in 0..<n {
            let r = w + i * ldw, s = scales + i * scaleStride
            var a0 = VF(), a1 = VF(), d = 0
            if vectorBlocks {
                while d + 2 * vectorWidth <= k {
                    let s0 = VF(repeating: s[d / block]), s1 = VF(repeating: s[(d + vectorWidth) / block])
                    a0.addProduct(load(x + d) * loadInt8(r + d), s0)
                    a1.addProduct(load(x + d + vectorWidth) * loadInt8(r + d + vectorWidth), s1)
                    d += 2 * vectorWidth
                }
                while d + vectorWidth <= k { a0.addProduct(load(x + d) * loadInt8(r + d), VF(repeating: s[d / block])); d += vectorWidth }
            }
            var sum = horizontalSum(a0 + a1)
            while d < k { sum += x[d] * Float(r[d]) * s[d / block]; d += 1 }
            y[i] = sum
        }
    }

    /// One head's int8 weighted value sum (the portable path, and blocks other than 16).
    static func gemvTransposedInt8(n: Int, k: Int, w: UnsafePointer<Int8>, ldw: Int, scales: UnsafePointer<Float>,
                                   scaleStride: Int, block: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                   accumulate: Bool) {
        // As gemvTransposed: slices of 4 vectors of y stay in registers while the rows stream past; each
        // vector's weight is x[i] times the scale of the block it lies in.
        let slice = 4 * vectorWidth
        var p = 0
        if block % vectorWidth == 0 {
            while p + slice <= k {
                var a0 = VF(), a1 = VF(), a2 = VF(), a3 = VF()
                if accumulate {
                    a0 = load(y + p); a1 = load(y + p + vectorWidth); a2 = load(y + p + 2 * vectorWidth); a3 = load(y + p + 3 * vectorWidth)
                }
                let b0 = p / block, b1 = (p + vectorWidth) / block, b2 = (p + 2 * vectorWidth) / block, b3 = (p + 3 * vectorWidth) / block
                for i in 0..<n {
                    let r = w + i * ldw + p, s = scales + i * scaleStride, xi = x[i]
                    a0.addProduct(VF(repeating: xi * s[b0]), loadInt8(r)); a1.addProduct(VF(repeating: xi * s[b1]), loadInt8(r + vectorWidth))
                    a2.addProduct(VF(repeating: xi * s[b2]), loadInt8(r + 2 * vectorWidth))
                    a3.addProduct(VF(repeating: xi * s[b3]), loadInt8(r + 3 * vectorWidth))
                }
                store(a0, y + p); store(a1, y + p + vectorWidth); store(a2, y + p + 2 * vectorWidth); store(a3, y + p + 3 * vectorWidth)
                p += slice
            }
            while p + vectorWidth <= k {
                var a = accumulate ? load(y + p) : VF()
                for i in 0..<n { a.addProduct(VF(repeating: x[i] * scales[i * scaleStride + p / block]), loadInt8(w + i * ldw + p)) }
                store(a, y + p)
                p += vectorWidth
            }
        }
        while p < k {
            var sum: Float = accumulate ? y[p] : 0
            for i in 0..<n { sum += x[i] * scales[i * scaleStride + p / block] * Float(w[i * ldw + p]) }
            y[p] = sum
            p += 1
        }
    }
}
