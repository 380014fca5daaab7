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

extension ISAKernels {
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
