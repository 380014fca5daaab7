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
                                    b: args.a /* unused: B comes from packB below */, ldb: args.ldw, transposeB: true,
                                    c: args.c, ldc: args.ldc, accumulate: args.accumulate)
        if args.k == 0 { gemm(f32Args); return }
        let rowBytes = args.ldw * 2
        blockedGEMM(f32Args) { col0, p0, kc, destination in
            // Convert the panel's rows to f32 (vectorised), then transpose them into place.
            let valid = min(gemmNR, args.n - col0)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: gemmNR * kc) { rows in
                let converted = rows.baseAddress!
                for j in 0..<valid {
                    convertHalfRow(args.w + (col0 + j) * rowBytes + p0 * 2, format: args.format, converted + j * kc, count: kc)
                }
                packTransposedPanel(converted, ld: kc, validRows: valid, p0: 0, kc: kc, into: destination)
            }
        }
    }

    /// y = W x for a single activation row, converting the weights on the fly.
    static func halfGEMV(_ args: HalfGEMMArguments) {
        let k = args.k, rowBytes = args.ldw * 2
        ThreadPool.shared.parallelRanges((args.n + 3) / 4, grain: max(1, 4096 / max(k, 1))) { blocks in
            let rowEnd = min(args.n, blocks.upperBound * 4)
            var row = blocks.lowerBound * 4
            while row < rowEnd {
                let rows = min(4, rowEnd - row)
                var acc = (VF(), VF(), VF(), VF())
                var p = 0
                while p + vectorWidth <= k {
                    let xv = load(args.a + p)
                    let base = args.w + row * rowBytes + p * 2
                    acc.0.addProduct(loadHalf(base, format: args.format), xv)
                    if rows > 1 { acc.1.addProduct(loadHalf(base + rowBytes, format: args.format), xv) }
                    if rows > 2 { acc.2.addProduct(loadHalf(base + 2 * rowBytes, format: args.format), xv) }
                    if rows > 3 { acc.3.addProduct(loadHalf(base + 3 * rowBytes, format: args.format), xv) }
                    p += vectorWidth
                }
                let sums = (horizontalSum(acc.0), horizontalSum(acc.1), horizontalSum(acc.2), horizontalSum(acc.3))
                for r in 0..<rows {
                    var sum = r == 0 ? sums.0 : r == 1 ? sums.1 : r == 2 ? sums.2 : sums.3
                    let base = args.w + (row + r) * rowBytes
                    for q in p..<k { sum += scalarHalf(base, q, format: args.format) * args.a[q] }
                    let out = args.c + (row + r)
                    out.pointee = args.accumulate ? out.pointee + sum : sum
                }
                row += rows
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
