// Element-wise kernels: activations (SiLU, GELU), gated activations (SwiGLU, GeGLU), the residual add,
// and the embedding gather. All are bandwidth-bound; large inputs are split over the pool.
import TesseraCore

/// Values per parallel task for streaming element-wise work.
let elementGrain = 1 << 15

@_transparent func applyActivation(_ kind: Activation, _ x: VF) -> VF {
    switch kind {
    case .silu:
        return x * vsigmoid(x)
    case .geluTanh:
        // 0.5·x·(1 + tanh(u)) = x·sigmoid(2u), u = √(2/π)·(x + 0.044715·x³)
        let u = VF(repeating: 0.7978845608028654) * (x + VF(repeating: 0.044715) * x * x * x)
        return x * vsigmoid(u + u)
    case .geluErf:
        return VF(repeating: 0.5) * x * (VF(repeating: 1) + verf(x * VF(repeating: 0.7071067811865476)))
    }
}

/// act′(x): SiLU σ(x)(1 + x(1 - σ(x))); GELU-erf Φ(x) + x·φ(x); GELU-tanh
/// 0.5(1 + t) + 0.5x(1 - t²)·√(2/π)(1 + 3·0.044715x²), t = tanh(√(2/π)(x + 0.044715x³)).
@_transparent func activationDerivative(_ kind: Activation, _ x: VF) -> VF {
    let one = VF(repeating: 1), half = VF(repeating: 0.5)
    switch kind {
    case .silu:
        let s = vsigmoid(x)
        return s * (one + x * (one - s))
    case .geluErf:
        let cdf = half * (one + verf(x * VF(repeating: 0.7071067811865476)))
        let pdf = vexp(VF(repeating: -0.5) * x * x) * VF(repeating: 0.3989422804014327)
        return cdf + x * pdf
    case .geluTanh:
        let k = VF(repeating: 0.7978845608028654), c = VF(repeating: 0.044715)
        let u = k * (x + c * x * x * x)
        let t = VF(repeating: 2) * vsigmoid(u + u) - one   // tanh(u)
        return half * (one + t) + half * x * (one - t * t) * k * (one + VF(repeating: 3) * c * x * x)
    }
}

extension ISAKernels {
    public static func activationGradient(_ kind: Activation, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                          dx: UnsafeMutablePointer<Float>, count: Int) {
        ThreadPool.shared.parallelRanges(count, grain: elementGrain) { range in
            var i = range.lowerBound
            while i + vectorWidth <= range.upperBound {
                store(load(dx + i) + load(dy + i) * activationDerivative(kind, load(x + i)), dx + i)
                i += vectorWidth
            }
            while i < range.upperBound { dx[i] += dy[i] * activationDerivative(kind, VF(repeating: x[i]))[0]; i += 1 }
        }
    }

    public static func activation(_ kind: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        ThreadPool.shared.parallelRanges(count, grain: elementGrain) { range in
            var i = range.lowerBound
            while i + vectorWidth <= range.upperBound { store(applyActivation(kind, load(x + i)), y + i); i += vectorWidth }
            while i < range.upperBound { y[i] = applyActivation(kind, VF(repeating: x[i]))[0]; i += 1 }
        }
    }

    public static func gatedActivation(_ kind: Activation, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                       _ y: UnsafeMutablePointer<Float>, count: Int) {
        ThreadPool.shared.parallelRanges(count, grain: elementGrain) { range in
            var i = range.lowerBound
            while i + vectorWidth <= range.upperBound {
                store(applyActivation(kind, load(gate + i)) * load(up + i), y + i)
                i += vectorWidth
            }
            while i < range.upperBound { y[i] = applyActivation(kind, VF(repeating: gate[i]))[0] * up[i]; i += 1 }
        }
    }

    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        ThreadPool.shared.parallelRanges(count, grain: elementGrain) { range in
            var i = range.lowerBound
            while i + vectorWidth <= range.upperBound { store(load(a + i) + load(b + i), y + i); i += vectorWidth }
            while i < range.upperBound { y[i] = a[i] + b[i]; i += 1 }
        }
    }

    public static func embeddingGather(table: UnsafeRawPointer, dtype: DType, dim: Int, ids: UnsafePointer<Int32>,
                                       count: Int, _ out: UnsafeMutablePointer<Float>) {
        ThreadPool.shared.parallelRanges(count, grain: max(1, 16384 / max(dim, 1))) { range in
            for t in range {
                let row = Int(ids[t])
                let destination = out + t * dim
                switch dtype {
                case .f32:
                    destination.update(from: (table + row * dim * 4).assumingMemoryBound(to: Float.self), count: dim)
                case .f16:
                    convertHalfRow(table + row * dim * 2, format: .f16, destination, count: dim)
                case .bf16:
                    convertHalfRow(table + row * dim * 2, format: .bf16, destination, count: dim)
                default:
                    preconditionFailure("embeddingGather: unsupported table dtype \(dtype)")
                }
            }
        }
    }
}
