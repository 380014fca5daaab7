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
                var mean: Float = 0
                for j in 0..<width { mean += xr[j] }
                mean /= Float(width)
                var variance: Float = 0
                for j in 0..<width { let d = xr[j] - mean; variance += d * d }
                let inverse = 1 / (variance / Float(width) + epsilon).squareRoot()
                rp[row] = inverse
                for j in 0..<width {
                    let h = (xr[j] - mean) * inverse
                    xh[j] = h
                    yr[j] = h * (pw?[j] ?? 1) + (pb?[j] ?? 0)
                }
            }
        }
    }
    return Variable(y, shape: x.shape, parents: [x] + [w, b].compactMap { $0 }) { out in
        let dy = out.grad!.pointer, xh = normalized.pointer
        if let w, w.requiresGrad {
            let g = w.gradient()
            for row in 0..<rows { for j in 0..<width { g[j] += dy[row * width + j] * xh[row * width + j] } }
        }
        if let b, b.requiresGrad {
            let g = b.gradient()
            for row in 0..<rows { for j in 0..<width { g[j] += dy[row * width + j] } }
        }
        guard x.requiresGrad else { return }
        let dx = x.gradient()
        rstd.withUnsafeBufferPointer { r in
            let rp = r.baseAddress!
            ThreadPool.shared.parallelRanges(rows, grain: 32) { range in
                for row in range {
                    let dyr = dy + row * width, xhr = xh + row * width, dxr = dx + row * width
                    var meanG: Float = 0, meanGX: Float = 0
                    for j in 0..<width { let g = dyr[j] * (pw?[j] ?? 1); meanG += g; meanGX += g * xhr[j] }
                    meanG /= Float(width); meanGX /= Float(width)
                    for j in 0..<width { dxr[j] += rp[row] * (dyr[j] * (pw?[j] ?? 1) - meanG - xhr[j] * meanGX) }
                }
            }
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
