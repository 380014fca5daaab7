// Row-wise kernels: softmax, RMSNorm, LayerNorm, and rotary position embeddings.
// Each row is independent, so rows are split over the pool when there is enough work.
import TesseraCore

/// Rows per parallel task such that a task carries at least ~16k values.
@inline(__always) func rowGrain(_ cols: Int) -> Int { max(1, 16384 / max(cols, 1)) }

extension ISAKernels {
    public static func softmax(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        ThreadPool.shared.parallelRanges(rows, grain: rowGrain(cols)) { range in
            for r in range { softmaxRow(x + r * cols, y + r * cols, count: cols) }
        }
    }

    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                               rows: Int, cols: Int, epsilon: Float) {
        ThreadPool.shared.parallelRanges(rows, grain: rowGrain(cols)) { range in
            for r in range {
                let xr = x + r * cols, yr = y + r * cols
                var acc = VF()
                var i = 0
                while i + vectorWidth <= cols { let v = load(xr + i); acc.addProduct(v, v); i += vectorWidth }
                var sumSquares = horizontalSum(acc)
                while i < cols { sumSquares += xr[i] * xr[i]; i += 1 }
                let scale = 1 / (sumSquares / Float(cols) + epsilon).squareRoot()
                let vscale = VF(repeating: scale)
                i = 0
                while i + vectorWidth <= cols { store(load(xr + i) * vscale * load(weight + i), yr + i); i += vectorWidth }
                while i < cols { yr[i] = xr[i] * scale * weight[i]; i += 1 }
            }
        }
    }

    public static func layerNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                 _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, epsilon: Float) {
        ThreadPool.shared.parallelRanges(rows, grain: rowGrain(cols)) { range in
            for r in range {
                let xr = x + r * cols, yr = y + r * cols
                // Two passes (mean, then variance about the mean) for accuracy.
                var acc = VF()
                var i = 0
                while i + vectorWidth <= cols { acc += load(xr + i); i += vectorWidth }
                var sum = horizontalSum(acc)
                while i < cols { sum += xr[i]; i += 1 }
                let mean = sum / Float(cols)
                let vmean = VF(repeating: mean)
                acc = VF()
                i = 0
                while i + vectorWidth <= cols { let d = load(xr + i) - vmean; acc.addProduct(d, d); i += vectorWidth }
                var squares = horizontalSum(acc)
                while i < cols { let d = xr[i] - mean; squares += d * d; i += 1 }
                let scale = 1 / (squares / Float(cols) + epsilon).squareRoot()
                let vscale = VF(repeating: scale)
                i = 0
                while i + vectorWidth <= cols {
                    var v = (load(xr + i) - vmean) * vscale
                    if let weight { v *= load(weight + i) }
                    if let bias { v += load(bias + i) }
                    store(v, yr + i)
                    i += vectorWidth
                }
                while i < cols {
                    var v = (xr[i] - mean) * scale
                    if let weight { v *= weight[i] }
                    if let bias { v += bias[i] }
                    yr[i] = v
                    i += 1
                }
            }
        }
    }

    public static func rope(_ args: RoPEArguments) {
        let half = args.rotaryDims / 2
        ThreadPool.shared.parallelRanges(args.tokens, grain: max(1, 4096 / max(args.heads * args.headDim, 1))) { range in
            for t in range {
                let position = Int(args.positions[t])
                let cosRow = args.cos + position * half, sinRow = args.sin + position * half
                for h in 0..<args.heads {
                    let v = args.x + t * args.tokenStride + h * args.headDim
                    switch args.layout {
                    case .neox:
                        var i = 0
                        while i + vectorWidth <= half {
                            let x1 = load(v + i), x2 = load(v + half + i)
                            let c = load(cosRow + i), s = load(sinRow + i)
                            store(x1 * c - x2 * s, v + i)
                            store(x2 * c + x1 * s, v + half + i)
                            i += vectorWidth
                        }
                        while i < half {
                            let x1 = v[i], x2 = v[half + i]
                            v[i] = x1 * cosRow[i] - x2 * sinRow[i]
                            v[half + i] = x2 * cosRow[i] + x1 * sinRow[i]
                            i += 1
                        }
                    case .interleaved:
                        for i in 0..<half {
                            let x1 = v[2 * i], x2 = v[2 * i + 1]
                            v[2 * i] = x1 * cosRow[i] - x2 * sinRow[i]
                            v[2 * i + 1] = x2 * cosRow[i] + x1 * sinRow[i]
                        }
                    }
                }
            }
        }
    }
}

/// Numerically stable softmax of one row: subtract the max, exponentiate, normalise.
/// A row that is entirely -inf (fully masked) becomes all zeros rather than NaN.
@inline(__always)
func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    var vmaximum = VF(repeating: -.infinity)
    var i = 0
    while i + vectorWidth <= count { vmaximum = vmax(vmaximum, load(x + i)); i += vectorWidth }
    var maximum = horizontalMax(vmaximum)
    while i < count { maximum = max(maximum, x[i]); i += 1 }
    if maximum == -.infinity {
        y.update(repeating: 0, count: count)
        return
    }
    let vm = VF(repeating: maximum)
    var vsum = VF()
    i = 0
    while i + vectorWidth <= count {
        let e = vexp(load(x + i) - vm)
        store(e, y + i)
        vsum += e
        i += vectorWidth
    }
    var sum = horizontalSum(vsum)
    while i < count {
        let e = vexp(VF(repeating: x[i] - maximum))[0]
        y[i] = e
        sum += e
        i += 1
    }
    let inverse = VF(repeating: 1 / sum)
    i = 0
    while i + vectorWidth <= count { store(load(y + i) * inverse, y + i); i += vectorWidth }
    while i < count { y[i] *= inverse[0]; i += 1 }
}
