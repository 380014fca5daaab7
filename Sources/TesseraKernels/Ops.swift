// The Tensor-level kernel API: shape-checked wrappers over the active kernel set.
//
// Error policy: these functions validate shapes, dtypes and indices and *throw* TensorError on a
// mismatch, because shapes here come from model files and user input. The raw-pointer KernelSet entry
// points below them check nothing (beyond debug preconditions): callers have already validated.
import TesseraCore

extension Kernels {
    /// Collapses all leading dimensions: (..., n) -> (rows, n).
    static func rowsAndColumns(_ t: Tensor) -> (rows: Int, cols: Int) {
        let cols = t.shape.last ?? 1
        return (cols == 0 ? 0 : t.count / cols, cols)
    }

    static func requireF32(_ t: Tensor, _ op: String) throws(TensorError) -> UnsafeMutablePointer<Float> {
        guard t.dtype == .f32 else { throw .dtypeMismatch(operation: op, expected: .f32, found: t.dtype) }
        guard t.isContiguous else { throw .notContiguous(operation: op) }
        return t.rawPointer.assumingMemoryBound(to: Float.self)
    }

    /// x · Wᵀ: x is (..., in) f32, W is (out, in) in f32, f16 or bf16 — a linear layer without bias.
    public static func linear(_ x: Tensor, weight: Tensor) throws(TensorError) -> Tensor {
        let (m, k) = rowsAndColumns(x)
        guard weight.rank == 2, weight.shape[1] == k else {
            throw .shapeMismatch(operation: "linear", expected: "weight (out, \(k))", found: "\(weight.shape)")
        }
        let a = try requireF32(x, "linear")
        guard weight.isContiguous else { throw .notContiguous(operation: "linear") }
        let n = weight.shape[0]
        let out = Tensor(zeros: Array(x.shape.dropLast()) + [n])
        let c = out.rawPointer.assumingMemoryBound(to: Float.self)
        switch weight.dtype {
        case .f32:
            active.gemm(GEMMArguments(m: m, n: n, k: k, a: a, b: weight.rawPointer.assumingMemoryBound(to: Float.self),
                                      transposeB: true, c: c))
        case .f16, .bf16:
            active.gemmHalf(HalfGEMMArguments(m: m, n: n, k: k, a: a, w: weight.rawPointer,
                                              format: weight.dtype == .f16 ? .f16 : .bf16, c: c))
        default:
            throw .dtypeMismatch(operation: "linear", expected: .f32, found: weight.dtype)
        }
        return out
    }

    /// A (m, k) · B (k, n) for f32 matrices; pass transposed views freely (they are handled by packing).
    public static func matmul(_ a: Tensor, _ b: Tensor) throws(TensorError) -> Tensor {
        guard a.rank == 2, b.rank == 2, a.shape[1] == b.shape[0] else {
            throw .shapeMismatch(operation: "matmul", expected: "(m, k) · (k, n)", found: "\(a.shape) · \(b.shape)")
        }
        guard a.dtype == .f32 else { throw .dtypeMismatch(operation: "matmul", expected: .f32, found: a.dtype) }
        guard b.dtype == .f32 else { throw .dtypeMismatch(operation: "matmul", expected: .f32, found: b.dtype) }
        let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
        // A row-major or transposed view, each with unit stride in one dimension; otherwise copy.
        func operand(_ t: Tensor) -> (Tensor, transposed: Bool, ld: Int) {
            if t.strides[1] == 1 { return (t, false, max(t.strides[0], 1)) }
            if t.strides[0] == 1 { return (t, true, max(t.strides[1], 1)) }
            let dense = t.contiguous()
            return (dense, false, max(dense.strides[0], 1))
        }
        let (ta, transA, lda) = operand(a), (tb, transB, ldb) = operand(b)
        let out = Tensor(zeros: [m, n])
        active.gemm(GEMMArguments(m: m, n: n, k: k,
                                  a: ta.rawPointer.assumingMemoryBound(to: Float.self), lda: lda, transposeA: transA,
                                  b: tb.rawPointer.assumingMemoryBound(to: Float.self), ldb: ldb, transposeB: transB,
                                  c: out.rawPointer.assumingMemoryBound(to: Float.self)))
        return out
    }

    /// Softmax over the last dimension.
    public static func softmax(_ x: Tensor) throws(TensorError) -> Tensor {
        let input = try requireF32(x, "softmax")
        let out = Tensor(zeros: x.shape)
        let (rows, cols) = rowsAndColumns(x)
        active.softmax(input, out.rawPointer.assumingMemoryBound(to: Float.self), rows: rows, cols: cols)
        return out
    }

    /// RMSNorm over the last dimension with a learned scale of that size.
    public static func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Float) throws(TensorError) -> Tensor {
        let (rows, cols) = rowsAndColumns(x)
        guard weight.count == cols else {
            throw .shapeMismatch(operation: "rmsNorm", expected: "weight [\(cols)]", found: "\(weight.shape)")
        }
        let out = Tensor(zeros: x.shape)
        active.rmsNorm(try requireF32(x, "rmsNorm"), weight: try requireF32(weight, "rmsNorm"),
                       out.rawPointer.assumingMemoryBound(to: Float.self), rows: rows, cols: cols, epsilon: epsilon)
        return out
    }

    /// LayerNorm over the last dimension; weight and bias optional, each of that size.
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float) throws(TensorError) -> Tensor {
        let (rows, cols) = rowsAndColumns(x)
        for (name, t) in [("weight", weight), ("bias", bias)] {
            if let t, t.count != cols {
                throw .shapeMismatch(operation: "layerNorm", expected: "\(name) [\(cols)]", found: "\(t.shape)")
            }
        }
        let out = Tensor(zeros: x.shape)
        let w = try weight.map { t throws(TensorError) in UnsafePointer(try requireF32(t, "layerNorm")) }
        let b = try bias.map { t throws(TensorError) in UnsafePointer(try requireF32(t, "layerNorm")) }
        active.layerNorm(try requireF32(x, "layerNorm"), weight: w, bias: b,
                         out.rawPointer.assumingMemoryBound(to: Float.self), rows: rows, cols: cols, epsilon: epsilon)
        return out
    }

    /// Rotates x, (tokens, heads, headDim), in place by the positions given (one per token).
    public static func applyRoPE(_ x: Tensor, positions: [Int32], table: RoPETable) throws(TensorError) {
        guard x.rank == 3, x.shape[0] == positions.count else {
            throw .shapeMismatch(operation: "rope", expected: "(\(positions.count) tokens, heads, headDim)", found: "\(x.shape)")
        }
        guard table.config.rotaryDims <= x.shape[2] else {
            throw .shapeMismatch(operation: "rope", expected: "headDim >= \(table.config.rotaryDims)", found: "\(x.shape)")
        }
        guard positions.allSatisfy({ $0 >= 0 }) else { throw .outOfBounds(operation: "rope", detail: "negative position") }
        let pointer = try requireF32(x, "rope")
        table.ensureCapacity(Int(positions.max() ?? 0) + 1)
        positions.withUnsafeBufferPointer { pos in
            table.cos.withUnsafeBufferPointer { cos in
                table.sin.withUnsafeBufferPointer { sin in
                    active.rope(RoPEArguments(x: pointer, tokens: x.shape[0], heads: x.shape[1], headDim: x.shape[2],
                                              rotaryDims: table.config.rotaryDims, positions: pos.baseAddress!,
                                              cos: cos.baseAddress!, sin: sin.baseAddress!, layout: table.config.layout))
                }
            }
        }
    }

    public static func activation(_ kind: Activation, _ x: Tensor) throws(TensorError) -> Tensor {
        let out = Tensor(zeros: x.shape)
        active.activation(kind, try requireF32(x, "\(kind)"), out.rawPointer.assumingMemoryBound(to: Float.self), count: x.count)
        return out
    }

    /// act(gate) · up element-wise: SwiGLU (.silu) or GeGLU (a GELU).
    public static func gatedActivation(_ kind: Activation, gate: Tensor, up: Tensor) throws(TensorError) -> Tensor {
        guard gate.shape == up.shape else {
            throw .shapeMismatch(operation: "gated \(kind)", expected: "up \(gate.shape)", found: "\(up.shape)")
        }
        let out = Tensor(zeros: gate.shape)
        active.gatedActivation(kind, gate: try requireF32(gate, "gated"), up: try requireF32(up, "gated"),
                               out.rawPointer.assumingMemoryBound(to: Float.self), count: gate.count)
        return out
    }

    /// a + b element-wise (the residual connection).
    public static func add(_ a: Tensor, _ b: Tensor) throws(TensorError) -> Tensor {
        guard a.shape == b.shape else { throw .shapeMismatch(operation: "add", expected: "\(a.shape)", found: "\(b.shape)") }
        let out = Tensor(zeros: a.shape)
        active.add(try requireF32(a, "add"), try requireF32(b, "add"), out.rawPointer.assumingMemoryBound(to: Float.self), count: a.count)
        return out
    }

    /// Rows of an embedding table (vocab, dim) in f32/f16/bf16 for the given token ids -> (ids, dim) f32.
    public static func embedding(_ table: Tensor, ids: [Int32]) throws(TensorError) -> Tensor {
        guard table.rank == 2 else { throw .shapeMismatch(operation: "embedding", expected: "(vocab, dim)", found: "\(table.shape)") }
        guard table.dtype.isFloatingPoint else { throw .dtypeMismatch(operation: "embedding", expected: .f32, found: table.dtype) }
        guard table.isContiguous else { throw .notContiguous(operation: "embedding") }
        let vocabulary = table.shape[0]
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
            throw .outOfBounds(operation: "embedding", detail: "token id \(bad) outside the vocabulary of \(vocabulary)")
        }
        let dim = table.shape[1]
        let out = Tensor(zeros: [ids.count, dim])
        ids.withUnsafeBufferPointer { idp in
            active.embeddingGather(table: table.rawPointer, dtype: table.dtype, dim: dim, ids: idp.baseAddress!,
                                   count: ids.count, out.rawPointer.assumingMemoryBound(to: Float.self))
        }
        return out
    }
}
