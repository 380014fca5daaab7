// Matrix products with 16-bit weights (f16 or bf16) and f32 activations.
//
// Decode (one row) is bandwidth-bound: the weights are converted in registers as they stream by, so a
// 16-bit weight costs half the memory traffic of an f32 one. Prefill (many rows) reuses the f32 GEMM:
// each weight panel is converted once while it is packed, then the f32 micro-kernel runs on it.
import TesseraCore

extension ISAKernels {
    public static func gemmHalf(_ args: HalfGEMMArguments) {
        if args.m == 0 || args.n == 0 { return }
        if args.m == 1 {
            halfGEMV(args)
            return
        }
        let f32Args = GEMMArguments(m: args.m, n: args.n, k: args.k, a: args.a, lda: args.lda,
                                    b: args.a /* not read: the rows are converted below */, ldb: args.ldw, transposeB: true,
                                    c: args.c, ldc: args.ldc, accumulate: args.accumulate)
        let rowBytes = args.ldw * 2
        // Each panel's rows converted to f32 (vectorised) as the GEMM packs them.
        gemmGeneratedWeights(f32Args) { r0, count, p0, kc, destination in
            for j in 0..<count {
                convertHalfRow(args.w + (r0 + j) * rowBytes + p0 * 2, format: args.format, destination + j * kc, count: kc)
            }
        }
    }

    public static func gemmGeneratedWeights(_ args: GEMMArguments,
                                            rows: (_ row0: Int, _ count: Int, _ p0: Int, _ kc: Int, _ destination: UnsafeMutablePointer<Float>) -> Void) {
        if args.m == 0 || args.n == 0 { return }
        if args.k == 0 { gemm(args); return }
        blockedGEMM(args) { col0, panels, p0, kc, destination in
            // Make each panel's rows (f32, in L1), then transpose them into place.
            withUnsafeTemporaryAllocation(of: Float.self, capacity: gemmNR * kc) { buffer in
                let made = buffer.baseAddress!
                for panel in 0..<panels {
                    let c0 = col0 + panel * gemmNR, valid = min(gemmNR, args.n - c0)
                    rows(c0, valid, p0, kc, made)
                    packTransposedPanel(made, ld: kc, validRows: valid, p0: 0, kc: kc, into: destination + panel * gemmNR * kc)
                }
            }
        }
    }

    /// y = W x for a single activation row, converting the weights on the fly.
    static func halfGEMV(_ args: HalfGEMMArguments) {
        let k = args.k, rowBytes = args.ldw * 2
        ThreadPool.shared.parallelRanges((args.n + 3) / 4, grain: max(1, 4096 / max(k, 1))) { blocks in
            let rowEnd = min(args.n, blocks.upperBound * 4)
            var row = blocks.lowerBound * 4
            while row + 4 <= rowEnd {
                if args.format == .f16 {
                    halfGEMVRows4(k: k, w: args.w + row * rowBytes, rowBytes: rowBytes, x: args.a, y: args.c + row,
                                  accumulate: args.accumulate, format: .f16, load: loadHalf)
                } else {
                    halfGEMVRows4(k: k, w: args.w + row * rowBytes, rowBytes: rowBytes, x: args.a, y: args.c + row,
                                  accumulate: args.accumulate, format: .bf16, load: loadBFloat16)
                }
                row += 4
            }
            while row < rowEnd {
                let base = args.w + row * rowBytes
                var acc = VF()
                var p = 0
                while p + vectorWidth <= k { acc.addProduct(loadHalf(base + 2 * p, format: args.format), load(args.a + p)); p += vectorWidth }
                var sum = horizontalSum(acc)
                while p < k { sum += scalarHalf(base, p, format: args.format) * args.a[p]; p += 1 }
                args.c[row] = args.accumulate ? args.c[row] + sum : sum
                row += 1
            }
        }
    }

    public static func convertToFloat(_ source: UnsafeRawPointer, format: HalfFormat,
                                      _ destination: UnsafeMutablePointer<Float>, count: Int) {
        ThreadPool.shared.parallelRanges(count, grain: 1 << 16) { range in
            convertHalfRow(source + range.lowerBound * 2, format: format, destination + range.lowerBound, count: range.count)
        }
    }
}

/// Converts `count` halves to floats (single-threaded; the callers parallelise).
@inline(__always)
func convertHalfRow(_ source: UnsafeRawPointer, format: HalfFormat, _ destination: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + vectorWidth <= count {
        store(loadHalf(source + 2 * i, format: format), destination + i)
        i += vectorWidth
    }
    while i < count {
        destination[i] = scalarHalf(source, i, format: format)
        i += 1
    }
}

/// y[0..<4] (+)= W[0..<4, :] · x for 16-bit weight rows `rowBytes` apart, converted by `load`.
@inline(__always)
func halfGEMVRows4(k: Int, w: UnsafeRawPointer, rowBytes: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                   accumulate: Bool, format: HalfFormat, load convert: (UnsafeRawPointer) -> VF) {
    let w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes
    var a0 = VF(), a1 = VF(), a2 = VF(), a3 = VF(), b0 = VF(), b1 = VF(), b2 = VF(), b3 = VF()
    var p = 0
    while p + 2 * vectorWidth <= k {
        let xa = load(x + p), xb = load(x + p + vectorWidth)
        let q = 2 * (p + vectorWidth)
        a0.addProduct(convert(w0 + 2 * p), xa); b0.addProduct(convert(w0 + q), xb)
        a1.addProduct(convert(w1 + 2 * p), xa); b1.addProduct(convert(w1 + q), xb)
        a2.addProduct(convert(w2 + 2 * p), xa); b2.addProduct(convert(w2 + q), xb)
        a3.addProduct(convert(w3 + 2 * p), xa); b3.addProduct(convert(w3 + q), xb)
        p += 2 * vectorWidth
    }
    while p + vectorWidth <= k {
        let xv = load(x + p)
        a0.addProduct(convert(w0 + 2 * p), xv)
        a1.addProduct(convert(w1 + 2 * p), xv)
        a2.addProduct(convert(w2 + 2 * p), xv)
        a3.addProduct(convert(w3 + 2 * p), xv)
        p += vectorWidth
    }
    var s0 = horizontalSum(a0 + b0), s1 = horizontalSum(a1 + b1), s2 = horizontalSum(a2 + b2), s3 = horizontalSum(a3 + b3)
    while p < k {  // scalar tail (a vector load here would read past the row)
        let xv = x[p]
        s0 += scalarHalf(w0, p, format: format) * xv
        s1 += scalarHalf(w1, p, format: format) * xv
        s2 += scalarHalf(w2, p, format: format) * xv
        s3 += scalarHalf(w3, p, format: format) * xv
        p += 1
    }
    if accumulate { y[0] += s0; y[1] += s1; y[2] += s2; y[3] += s3 } else { y[0] = s0; y[1] = s1; y[2] = s2; y[3] = s3 }
}
