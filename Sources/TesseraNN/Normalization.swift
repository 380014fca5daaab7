// LayerNorm and RMSNorm over the last dimension, with their backward passes.
//   LayerNorm: x̂ = (x - μ) · r, r = 1/sqrt(σ² + eps);  y = x̂ · w + b
//     dx = r · (g - mean(g) - x̂ · mean(g · x̂)),  g = dy · w;  dw += Σ dy · x̂;  db += Σ dy
//   RMSNorm:   r = 1/sqrt(mean(x²) + eps);  y = x · r · w
//     dx = r · (g - x · r² · mean(g · x)),  g = dy · w;  dw += Σ dy · x · r
import Foundation
import TesseraCore

public func layerNorm(_ x: Variable, weight w: Variable?, bias b: Variable?, epsilon: Float = 1e-5) -> Variable {
    let width = x.shape.last!, rows = x.count / width
    let y = FloatStorage(count: x.count, zeroed: false)
    let normalized = FloatStorage(count: x.count, zeroed: false)   // x̂, kept for backward
    var rstd = [Float](repeating: 0, count: rows)
    let px = x.value.pointer, pw = w?.value.pointer, pb = b?.value.pointer
    rstd.withUnsafeMutableBufferPointer { r in
        let rp = r.baseAddress!
        ThreadPool.shared.parallelRanges(rows, grain: 32) { range in
            for row in range {
                let xr = px + row * width, xh = normalized.pointer + row * width, yr = y.pointer + row * width
                let mean = RowMath.sum(xr, width) / Float(width)
                let inverse = 1 / (RowMath.squaredDeviations(xr, mean, width) / Float(width) + epsilon).squareRoot()
                rp[row] = inverse
                RowMath.normalize(xr, mean: mean, inverse: inverse, weight: pw, bias: pb, normalized: xh, output: yr, width)
            }
        }
    }
    return Variable(y, shape: x.shape, parents: [x] + [w, b].compactMap { $0 }) { out in
        let dy = out.grad!.pointer, xh = normalized.pointer
        // dw = Σ_rows dy · x̂ and db = Σ_rows dy.
        if let w, w.requiresGrad { RowMath.columnSums(dy, times: xh, rows: rows, width: width, into: w.gradientForWriting()) }
        if let b, b.requiresGrad { RowMath.columnSums(dy, times: nil, rows: rows, width: width, into: b.gradientForWriting()) }
        guard x.requiresGrad else { return }
        let (dx, accumulate) = x.gradientForWriting()
        rstd.withUnsafeBufferPointer { r in
            let rp = r.baseAddress!
            ThreadPool.shared.parallelRanges(rows, grain: 32) { range in
                for row in range {
                    RowMath.layerNormInputGradient(dy: dy + row * width, normalized: xh + row * width, weight: pw, rstd: rp[row],
                                                   dx: dx + row * width, accumulate: accumulate, width)
                }
            }
        }
    }
}

/// Row loops of the normalisations and the column sums of parameter gradients (LayerNorm's, a linear
/// layer's bias), eight floats at a time with two accumulators (the scalar loops were one long
/// dependency chain of additions per row: ~3% of a GPT training step). `load` and `store` also serve
/// the optimisers.
public enum RowMath {
    public typealias V = SIMD8<Float>
    @inline(__always) public static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) public static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

    static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var a = V(), b = V(), j = 0
        while j + 16 <= n { a += load(x + j); b += load(x + j + 8); j += 16 }
        if j + 8 <= n { a += load(x + j); j += 8 }
        var s = (a + b).sum()
        while j < n { s += x[j]; j += 1 }
        return s
    }

    static func squaredDeviations(_ x: UnsafePointer<Float>, _ mean: Float, _ n: Int) -> Float {
        var a = V(), b = V(), j = 0
        let m = V(repeating: mean)
        while j + 16 <= n {
            let d0 = load(x + j) - m, d1 = load(x + j + 8) - m
            a += d0 * d0; b += d1 * d1; j += 16
        }
        if j + 8 <= n { let d = load(x + j) - m; a += d * d; j += 8 }
        var s = (a + b).sum()
        while j < n { let d = x[j] - mean; s += d * d; j += 1 }
        return s
    }

    /// x̂ = (x - mean) · inverse and y = x̂ · w + b (w, b optional).
    static func normalize(_ x: UnsafePointer<Float>, mean: Float, inverse: Float, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                          normalized: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, _ n: Int) {
        let m = V(repeating: mean), r = V(repeating: inverse)
        var j = 0
        while j + 8 <= n {
            let h = (load(x + j) - m) * r
            store(h, normalized + j)
            var v = h
            if let weight { v = v * load(weight + j) }
            if let bias { v = v + load(bias + j) }
            store(v, output + j)
            j += 8
        }
        while j < n {
            let h = (x[j] - mean) * inverse
            normalized[j] = h
            output[j] = h * (weight?[j] ?? 1) + (bias?[j] ?? 0)
            j += 1
        }
    }

    /// into[j] (+)= Σ_rows a[row, j] · b[row, j] (b nil: Σ a); `into.accumulate` false overwrites. The
    /// rows go in chunks of 64 over the threads, each summing whole rows (contiguous reads) into its own
    /// partial row; the partials are then added in chunk order, so the result does not depend on the
    /// thread count. (Splitting by columns instead read the matrix in 32-byte pieces a row apart.)
    static func columnSums(_ a: UnsafePointer<Float>, times b: UnsafePointer<Float>?, rows: Int, width: Int,
                           into: (pointer: UnsafeMutablePointer<Float>, accumulate: Bool)) {
        let chunk = 64, chunks = (rows + chunk - 1) / chunk
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: max(1, chunks * width))
        defer { partials.deallocate() }
        ThreadPool.shared.parallelFor(chunks) { c in
            let sum = partials + c * width
            sum.update(repeating: 0, count: width)
            for row in (c * chunk)..<min(rows, (c + 1) * chunk) {
                let ar = a + row * width, br = b.map { $0 + row * width }
                var j = 0
                while j + 8 <= width {
                    let v = load(ar + j)
                    store(load(sum + j) + (br.map { v * load($0 + j) } ?? v), sum + j)
                    j += 8
                }
                while j < width { sum[j] += ar[j] * (br?[j] ?? 1); j += 1 }
            }
        }
        var j = 0
        while j + 8 <= width {
            var acc = into.accumulate ? load(into.pointer + j) : V()
            for c in 0..<chunks { acc += load(partials + c * width + j) }
            store(acc, into.pointer + j)
            j += 8
        }
        while j < width {
            var acc = into.accumulate ? into.pointer[j] : 0
            for c in 0..<chunks { acc += partials[c * width + j] }
            into.pointer[j] = acc
            j += 1
        }
    }

    /// dx (+)= r · (g - mean(g) - x̂ · mean(g · x̂)), g = dy · w, for one row.
    static func layerNormInputGradient(dy: UnsafePointer<Float>, normalized xh: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                                       rstd: Float, dx: UnsafeMutablePointer<Float>, accumulate: Bool, _ n: Int) {
        var sg = V(), sgx = V(), j = 0
        while j + 8 <= n {
            let g = weight.map { load(dy + j) * load($0 + j) } ?? load(dy + j)
            sg += g; sgx += g * load(xh + j); j += 8
        }
        var meanG = sg.sum(), meanGX = sgx.sum()
        while j < n { let g = dy[j] * (weight?[j] ?? 1); meanG += g; meanGX += g * xh[j]; j += 1 }
        meanG /= Float(n); meanGX /= Float(n)
        let r = V(repeating: rstd), mg = V(repeating: meanG), mgx = V(repeating: meanGX)
        j = 0
        while j + 8 <= n {
            let g = weight.map { load(dy + j) * load($0 + j) } ?? load(dy + j)
            let d = r * (g - mg - load(xh + j) * mgx)
            store(accumulate ? load(dx + j) + d : d, dx + j)
            j += 8
        }
        while j < n {
            let d = rstd * (dy[j] * (weight?[j] ?? 1) - meanG - xh[j] * meanGX)
            dx[j] = accumulate ? dx[j] + d : d
            j += 1
        }
    }
}

public func rmsNorm(_ x: Variable, weight w: Variable, epsilon: Float = 1e-6) -> Variable {
    let width = x.shape.last!, rows = x.count / width
    let y = FloatStorage(count: x.count, zeroed: false)
    var rms = [Float](repeating: 0, count: rows)
    let px = x.value.pointer, pw = w.value.pointer
    for row in 0..<rows {
        let xr = px + row * width
        var squares: Float = 0
        for j in 0..<width { squares += xr[j] * xr[j] }
        let inverse = 1 / (squares / Float(width) + epsilon).squareRoot()
        rms[row] = inverse
        for j in 0..<width { y.pointer[row * width + j] = xr[j] * inverse * pw[j] }
    }
    return Variable(y, shape: x.shape, parents: [x, w]) { out in
        let dy = out.grad!.pointer
        if w.requiresGrad {
            let g = w.gradient()
            for row in 0..<rows { for j in 0..<width { g[j] += dy[row * width + j] * px[row * width + j] * rms[row] } }
        }
        guard x.requiresGrad else { return }
        let dx = x.gradient()
        for row in 0..<rows {
            let r = rms[row], xr = px + row * width, dyr = dy + row * width
            var meanGX: Float = 0
            for j in 0..<width { meanGX += dyr[j] * pw[j] * xr[j] }
            meanGX /= Float(width)
            for j in 0..<width { dx[row * width + j] += r * (dyr[j] * pw[j] - xr[j] * r * r * meanGX) }
        }
    }
}
