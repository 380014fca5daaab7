// Plain reference kernels: the oracle every fast kernel is tested against.
//
// Written for clarity, not speed: triple loops, Double accumulation, Foundation's exp/tanh/erf. They
// follow the same raw-pointer contracts as `KernelSet`, so a test can run both on the same buffers.
import Foundation
import TesseraCore

public enum ReferenceKernels {
    /// C = op(A) · op(B) (+ C), accumulating in Double.
    public static func gemm(_ args: GEMMArguments) {
        for i in 0..<args.m {
            for j in 0..<args.n {
                var sum = 0.0
                for p in 0..<args.k {
                    let a = args.transposeA ? args.a[p * args.lda + i] : args.a[i * args.lda + p]
                    let b = args.transposeB ? args.b[j * args.ldb + p] : args.b[p * args.ldb + j]
                    sum += Double(a) * Double(b)
                }
                let c = args.c + i * args.ldc + j
                c.pointee = args.accumulate ? c.pointee + Float(sum) : Float(sum)
            }
        }
    }

    public static func gemv(n: Int, k: Int, w: UnsafePointer<Float>, ldw: Int, x: UnsafePointer<Float>,
                            y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        gemm(GEMMArguments(m: 1, n: n, k: k, a: x, b: w, ldb: ldw, transposeB: true, c: y, accumulate: accumulate))
    }

    /// The whole W made at once, then `gemm`.
    public static func gemmGeneratedWeights(_ args: GEMMArguments,
                                            rows: (_ row0: Int, _ count: Int, _ p0: Int, _ kc: Int, _ destination: UnsafeMutablePointer<Float>) -> Void) {
        var w = [Float](repeating: 0, count: args.n * args.k)
        w.withUnsafeMutableBufferPointer { w in
            if args.n > 0 && args.k > 0 { rows(0, args.n, 0, args.k, w.baseAddress!) }
            var full = args
            full.b = UnsafePointer(w.baseAddress!); full.ldb = args.k; full.transposeB = true
            gemm(full)
        }
    }

    public static func gemmHalf(_ args: HalfGEMMArguments) {
        for i in 0..<args.m {
            for j in 0..<args.n {
                var sum = 0.0
                for p in 0..<args.k {
                    let bits = args.w.load(fromByteOffset: (j * args.ldw + p) * 2, as: UInt16.self)
                    let w = args.format == .f16 ? floatFromHalfBits(bits) : floatFromBFloat16Bits(bits)
                    sum += Double(args.a[i * args.lda + p]) * Double(w)
                }
                let c = args.c + i * args.ldc + j
                c.pointee = args.accumulate ? c.pointee + Float(sum) : Float(sum)
            }
        }
    }

    public static func groupScores(heads: Int, n: Int, k: Int, q: UnsafePointer<Float>, ldq: Int, w: UnsafePointer<Float>, ldw: Int,
                                   y: UnsafeMutablePointer<Float>, ldy: Int) {
        for h in 0..<heads { gemv(n: n, k: k, w: w, ldw: ldw, x: q + h * ldq, y: y + h * ldy, accumulate: false) }
    }

    public static func groupWeightedSum(heads: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Float>,
                                        ldw: Int, y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        for h in 0..<heads { gemvTransposed(n: n, k: k, w: w, ldw: ldw, x: x + h * ldx, y: y + h * ldy, accumulate: accumulate) }
    }

    public static func groupScoresHalf(heads: Int, n: Int, k: Int, q: UnsafePointer<Float>, ldq: Int, w: UnsafePointer<UInt16>,
                                       ldw: Int, y: UnsafeMutablePointer<Float>, ldy: Int) {
        let rows = (0..<(n == 0 ? 0 : (n - 1) * ldw + k)).map { floatFromHalfBits(w[$0]) }
        groupScores(heads: heads, n: n, k: k, q: q, ldq: ldq, w: rows, ldw: ldw, y: y, ldy: ldy)
    }

    public static func groupWeightedSumHalf(heads: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<UInt16>,
                                            ldw: Int, y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        let rows = (0..<(n == 0 ? 0 : (n - 1) * ldw + k)).map { floatFromHalfBits(w[$0]) }
        groupWeightedSum(heads: heads, n: n, k: k, x: x, ldx: ldx, w: rows, ldw: ldw, y: y, ldy: ldy, accumulate: accumulate)
    }

    public static func gemvTransposed(n: Int, k: Int, w: UnsafePointer<Float>, ldw: Int, x: UnsafePointer<Float>,
                                      y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        for p in 0..<k {
            var sum = 0.0
            for i in 0..<n { sum += Double(x[i]) * Double(w[i * ldw + p]) }
            y[p] = accumulate ? y[p] + Float(sum) : Float(sum)
        }
    }

    /// Per row: d = max|x| / 127, q = round(x · 127 / max|x|) (ties to even).
    public static func quantizeRowsInt8(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ldx: Int,
                                        q: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            var m: Float = 0
            for j in 0..<cols { m = max(m, abs(x[r * ldx + j])) }
            let inverse: Float = m > 0 ? 127 / m : 0
            for j in 0..<cols { q[r * cols + j] = Int8((x[r * ldx + j] * inverse).rounded(.toNearestOrEven)) }
            scales[r] = m / 127
        }
    }

    public static func groupScoresInt8(heads: Int, n: Int, k: Int, q: UnsafePointer<Float>, ldq: Int, w: UnsafePointer<Int8>,
                                       ldw: Int, scales: UnsafePointer<Float>, scaleStride: Int, block: Int,
                                       y: UnsafeMutablePointer<Float>, ldy: Int) {
        for h in 0..<heads {
            for i in 0..<n {
                var sum = 0.0
                for p in 0..<k { sum += Double(q[h * ldq + p]) * Double(scales[i * scaleStride + p / block]) * Double(w[i * ldw + p]) }
                y[h * ldy + i] = Float(sum)
            }
        }
    }

    public static func groupWeightedSumInt8(heads: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Int8>,
                                            ldw: Int, scales: UnsafePointer<Float>, scaleStride: Int, block: Int,
                                            y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        for h in 0..<heads {
            for p in 0..<k {
                var sum = 0.0
                for i in 0..<n { sum += Double(x[h * ldx + i]) * Double(scales[i * scaleStride + p / block]) * Double(w[i * ldw + p]) }
                y[h * ldy + p] = accumulate ? y[h * ldy + p] + Float(sum) : Float(sum)
            }
        }
    }

    /// dx += dy · act′(x), in Double.
    public static func activationGradient(_ kind: Activation, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                          dx: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let v = Double(x[i])
            let derivative: Double
            switch kind {
            case .silu:
                let s = 1 / (1 + exp(-v))
                derivative = s * (1 + v * (1 - s))
            case .geluErf:
                derivative = 0.5 * (1 + erf(v / 2.0.squareRoot())) + v * exp(-0.5 * v * v) / (2 * Double.pi).squareRoot()
            case .geluTanh:
                let k = (2 / Double.pi).squareRoot(), t = tanh(k * (v + 0.044715 * v * v * v))
                derivative = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * 0.044715 * v * v)
            }
            dx[i] = Float(Double(dx[i]) + Double(dy[i]) * derivative)
        }
    }

    /// Per 32 values: dx = max|x| / 127, q = round(x / dx) (ties to even), sx = dx · Σq.
    public static func quantizeActivations(_ x: UnsafePointer<Float>, count: Int, q: UnsafeMutablePointer<Int8>,
                                           scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>) {
        quantizeBlocks(x, count: count, levels: 127, scales: scales, sums: sums) { q[$0] = Int8($1) }
    }

    /// Per 32 values: dx = max|x| / 32767, q = round(x / dx) (ties to even), sx = dx · Σq.
    public static func quantizeActivations16(_ x: UnsafePointer<Float>, count: Int, q: UnsafeMutablePointer<Int16>,
                                             scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>) {
        quantizeBlocks(x, count: count, levels: 32767, scales: scales, sums: sums) { q[$0] = Int16($1) }
    }

    private static func quantizeBlocks(_ x: UnsafePointer<Float>, count: Int, levels: Float, scales: UnsafeMutablePointer<Float>,
                                       sums: UnsafeMutablePointer<Float>, store: (Int, Float) -> Void) {
        for b in 0..<(count / 32) {
            var m: Float = 0
            for i in 0..<32 { m = max(m, abs(x[32 * b + i])) }
            let inverse = m > 0 ? levels / m : 0
            var total = 0
            for i in 0..<32 {
                let v = (x[32 * b + i] * inverse).rounded(.toNearestOrEven)
                store(32 * b + i, v)
                total += Int(v)
            }
            scales[b] = m / levels
            sums[b] = m / levels * Float(total)
        }
    }

    /// 16-bit activations: the same sums as `quantizedDot`.
    public static func quantized16Dot(_ a: Quantized16DotArguments) {
        for t in 0..<a.tokens {
            let one = a.token(t)
            quantizedDot(format: one.format, blocks: one.blocks, weights: one.weights, groups: one.groups,
                         x: { Double(one.x[$0]) }, xScales: one.xScales, xSums: one.xSums, y: one.y)
        }
    }

    /// Weights in the lane layout (LaneLayout), 16-bit activations, in Double.
    public static func quantized16DotLanes(_ a: Quantized16DotArguments) {
        for t in 0..<a.tokens {
            let one = a.token(t)
            lanesDot(format: one.format, int8: false, blocks: one.blocks, weights: one.weights, groups: one.groups,
                     x: { Double(one.x[$0]) }, xScales: one.xScales, xSums: one.xSums, y: one.y)
        }
    }

    /// Weights in their lane layouts for 8-bit activations, in Double (the byte formats' bias removed
    /// value by value, so the offsets are not read).
    public static func quantizedDotLanes(_ a: QuantizedDotArguments) {
        for t in 0..<a.tokens {
            let one = a.token(t)
            lanesDot(format: one.format, int8: true, blocks: one.blocks, weights: one.weights, groups: one.groups,
                     x: { Double(one.x[$0]) }, xScales: one.xScales, xSums: one.xSums, y: one.y)
        }
    }

    /// One token through lane-layout weights (`int8`: the layouts for 8-bit activations), value by value:
    /// Σ_blocks d·dx·q·x + m·sx per row.
    private static func lanesDot(format: QuantizedFormat, int8: Bool, blocks: Int, weights: UnsafeRawPointer, groups: Int,
                                 x: (Int) -> Double, xScales: UnsafePointer<Float>, xSums: UnsafePointer<Float>,
                                 y: UnsafeMutablePointer<Float>) {
        for g in 0..<groups {
            for j in 0..<LaneLayout.rows {
                var total = 0.0
                for b in 0..<blocks {
                    let p = weights + (g * blocks + b) * LaneLayout.blockBytes(format)
                    for i in 0..<32 {
                        let w = LaneLayout.weight(format, p, row: j, value: i, int8: int8)
                        total += Double(w.d) * Double(xScales[b]) * Double(w.q) * x(32 * b + i)
                    }
                    total += Double(LaneLayout.weight(format, p, row: j, value: 0, int8: int8).m) * Double(xSums[b])
                }
                y[16 * g + j] = Float(total)
            }
        }
    }

    /// The repacked layouts decoded value by value (in Double): Σ_blocks d·dx·Σ(q·xq) + m·sx per row.
    public static func quantizedDot(_ a: QuantizedDotArguments) {
        quantizedDot(format: a.format, blocks: a.blocks, weights: a.weights, groups: a.groups,
                     x: { Double(a.x[$0]) }, xScales: a.xScales, xSums: a.xSums, y: a.y)
    }

    /// Weight (q, scale) of value j of row r in a group-block, and the row's minimum.
    static func repackedWeight(_ format: QuantizedFormat, _ p: UnsafeRawPointer, row r: Int, _ j: Int) -> (q: Int, d: Double) {
        func half(_ offset: Int) -> Double { Double(floatFromHalfBits(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))) }
        switch format {
        case .q4:
            let byte = Int(p.load(fromByteOffset: 16 * r + j % 16, as: UInt8.self))
            return (j < 16 ? byte & 0xF : byte >> 4, half(64 + 2 * r))
        case .q8: return (Int(p.load(fromByteOffset: 32 * r + j, as: Int8.self)), half(128 + 4 * r + (j < 16 ? 0 : 2)))
        case .q8s: return (Int(p.load(fromByteOffset: 32 * r + j, as: Int8.self)), half(128 + 2 * r))
        }
    }

    static func repackedMinimum(_ format: QuantizedFormat, _ p: UnsafeRawPointer, row r: Int) -> Double {
        let offset: Int
        switch format {
        case .q4: offset = 72 + 2 * r
        case .q8: offset = 144 + 2 * r
        case .q8s: return 0
        }
        return Double(floatFromHalfBits(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    private static func quantizedDot(format: QuantizedFormat, blocks: Int, weights: UnsafeRawPointer, groups: Int,
                                     x: (Int) -> Double, xScales: UnsafePointer<Float>, xSums: UnsafePointer<Float>,
                                     y: UnsafeMutablePointer<Float>) {
        for g in 0..<groups {
            for r in 0..<4 {
                var total = 0.0
                for b in 0..<blocks {
                    let p = weights + (g * blocks + b) * format.groupBlockBytes
                    for j in 0..<32 {
                        let (q, d) = repackedWeight(format, p, row: r, j)
                        total += d * Double(xScales[b]) * Double(q) * x(32 * b + j)
                    }
                    total += repackedMinimum(format, p, row: r) * Double(xSums[b])
                }
                y[4 * g + r] = Float(total)
            }
        }
    }

    public static func scaleScores(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int, scale: Float, softcap: Float) {
        for r in 0..<rows {
            for j in 0..<cols {
                let v = Double(s[r * ld + j]) * Double(scale)
                s[r * ld + j] = softcap > 0 ? Float(Double(softcap) * Foundation.tanh(v / Double(softcap))) : Float(v)
            }
        }
    }

    public static func onlineSoftmax(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int,
                                     rowMax: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>,
                                     correction: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = s + r * ld
            let newMax = max(rowMax[r], (0..<cols).map { row[$0] }.max() ?? -.infinity)
            if newMax == -.infinity {
                for j in 0..<cols { row[j] = 0 }
                correction[r] = 1
                continue
            }
            var sum = 0.0
            for j in 0..<cols {
                let e = Foundation.exp(Double(row[j]) - Double(newMax))
                row[j] = Float(e)
                sum += e
            }
            let c = rowMax[r] == -.infinity ? 0 : Foundation.exp(Double(rowMax[r]) - Double(newMax))
            correction[r] = Float(c)
            rowSum[r] = Float(Double(rowSum[r]) * c + sum)
            rowMax[r] = newMax
        }
    }

    public static func softmax(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows {
            let row = x + r * cols, out = y + r * cols
            let maximum = (0..<cols).map { Double(row[$0]) }.max() ?? 0
            if maximum == -.infinity { for i in 0..<cols { out[i] = 0 }; continue }
            let exps = (0..<cols).map { Foundation.exp(Double(row[$0]) - maximum) }
            let sum = exps.reduce(0, +)
            for i in 0..<cols { out[i] = Float(exps[i] / sum) }
        }
    }

    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                               rows: Int, cols: Int, epsilon: Float) {
        for r in 0..<rows {
            let row = x + r * cols
            let meanSquare = (0..<cols).reduce(0.0) { $0 + Double(row[$1]) * Double(row[$1]) } / Double(cols)
            let scale = 1 / (meanSquare + Double(epsilon)).squareRoot()
            for i in 0..<cols { y[r * cols + i] = Float(Double(row[i]) * scale * Double(weight[i])) }
        }
    }

    public static func layerNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                 _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, epsilon: Float) {
        for r in 0..<rows {
            let row = x + r * cols
            let mean = (0..<cols).reduce(0.0) { $0 + Double(row[$1]) } / Double(cols)
            let variance = (0..<cols).reduce(0.0) { $0 + (Double(row[$1]) - mean) * (Double(row[$1]) - mean) } / Double(cols)
            let scale = 1 / (variance + Double(epsilon)).squareRoot()
            for i in 0..<cols {
                var v = (Double(row[i]) - mean) * scale
                if let weight { v *= Double(weight[i]) }
                if let bias { v += Double(bias[i]) }
                y[r * cols + i] = Float(v)
            }
        }
    }

    public static func rope(_ args: RoPEArguments) {
        let half = args.rotaryDims / 2
        for t in 0..<args.tokens {
            let position = Int(args.positions[t])
            for h in 0..<args.heads {
                let v = args.x + t * args.tokenStride + h * args.headDim
                for i in 0..<half {
                    let c = args.cos[position * half + i], s = args.sin[position * half + i]
                    let (a, b) = args.layout == .neox ? (i, i + half) : (2 * i, 2 * i + 1)
                    let x1 = v[a], x2 = v[b]
                    v[a] = x1 * c - x2 * s
                    v[b] = x2 * c + x1 * s
                }
            }
        }
    }

    public static func activation(_ x: Float, _ kind: Activation) -> Float {
        let v = Double(x)
        switch kind {
        case .silu: return Float(v / (1 + Foundation.exp(-v)))
        case .geluTanh: return Float(0.5 * v * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v))))
        case .geluErf: return Float(0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot())))
        }
    }

    public static func activation(_ kind: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = activation(x[i], kind) }
    }

    public static func gatedActivation(_ kind: Activation, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                       _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Float(Double(activation(gate[i], kind)) * Double(up[i])) }
    }

    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = a[i] + b[i] }
    }

    public static func embeddingGather(table: UnsafeRawPointer, dtype: DType, dim: Int, ids: UnsafePointer<Int32>,
                                       count: Int, _ out: UnsafeMutablePointer<Float>) {
        for t in 0..<count {
            let row = Int(ids[t])
            for i in 0..<dim {
                let index = row * dim + i
                switch dtype {
                case .f32: out[t * dim + i] = table.load(fromByteOffset: index * 4, as: Float.self)
                case .f16: out[t * dim + i] = floatFromHalfBits(table.load(fromByteOffset: index * 2, as: UInt16.self))
                case .bf16: out[t * dim + i] = floatFromBFloat16Bits(table.load(fromByteOffset: index * 2, as: UInt16.self))
                default: preconditionFailure("embeddingGather: unsupported table dtype \(dtype)")
                }
            }
        }
    }

    public static func convertToFloat(_ source: UnsafeRawPointer, format: HalfFormat, _ destination: UnsafeMutablePointer<Float>,
                                      count: Int) {
        for i in 0..<count {
            let bits = source.load(fromByteOffset: i * 2, as: UInt16.self)
            destination[i] = format == .f16 ? floatFromHalfBits(bits) : floatFromBFloat16Bits(bits)
        }
    }
}
