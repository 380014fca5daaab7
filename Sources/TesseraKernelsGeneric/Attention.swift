// Attention building blocks for the flash-attention driver in TesseraKernels: block score scaling with
// optional softcapping, the online-softmax step, and the transposed GEMV that sums value rows in decode.
// All single-threaded: the driver parallelises over heads and query blocks around them.
import TesseraCore

/// tanh(x) = 1 - 2 / (e^{2x} + 1), saturating correctly at both ends.
@_transparent func vtanh(_ x: VF) -> VF {
    VF(repeating: 1) - VF(repeating: 2) / (vexp(x + x) + VF(repeating: 1))
}

extension ISAKernels {
    public static func gemvTransposed(n: Int, k: Int, w: UnsafePointer<Float>, ldw: Int, x: UnsafePointer<Float>,
                                      y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if !accumulate { y.update(repeating: 0, count: k) }
        var i = 0
        // Two rows per pass: y += x[i]·W[i] + x[i+1]·W[i+1], y staying in L1.
        while i + 2 <= n {
            let r0 = w + i * ldw, r1 = r0 + ldw
            let x0 = VF(repeating: x[i]), x1 = VF(repeating: x[i + 1])
            var p = 0
            while p + vectorWidth <= k {
                var acc = load(y + p)
                acc.addProduct(x0, load(r0 + p))
                acc.addProduct(x1, load(r1 + p))
                store(acc, y + p)
                p += vectorWidth
            }
            while p < k { y[p] += x[i] * r0[p] + x[i + 1] * r1[p]; p += 1 }
            i += 2
        }
        if i < n {
            let r0 = w + i * ldw, x0 = VF(repeating: x[i])
            var p = 0
            while p + vectorWidth <= k { var acc = load(y + p); acc.addProduct(x0, load(r0 + p)); store(acc, y + p); p += vectorWidth }
            while p < k { y[p] += x[i] * r0[p]; p += 1 }
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
            var sum = horizontalSum(vsum)
            while j < cols { let e = vexp(VF(repeating: row[j] - newMax))[0]; row[j] = e; sum += e; j += 1 }
            let c = rowMax[r] == -.infinity ? 0 : vexp(VF(repeating: rowMax[r] - newMax))[0]
            correction[r] = c
            rowSum[r] = rowSum[r] * c + sum
            rowMax[r] = newMax
        }
    }
}
