// Attention as a differentiable operation: flash attention forward (saving the log-sum-exp) and its
// backward, which recomputes the probabilities block by block (TesseraKernels/FlashAttention*.swift).
// q is (batch · queries, queryHeads · headDim) and k, v (batch · keys, kvHeads · headDim): the
// token-major layout a fused projection produces, so heads need no transposes.
import TesseraCore
import TesseraKernels

public func attention(q: Variable, k: Variable, v: Variable, shape: AttentionShape) -> Variable {
    precondition(q.count == shape.queryCount && k.count == shape.keyCount && v.count == shape.keyCount,
                 "attention: q \(q.shape), k \(k.shape), v \(v.shape) do not fit \(shape)")
    precondition(shape.kvLayout == .tokenMajor, "attention: token-major K and V")
    let output = FloatStorage(count: shape.queryCount, zeroed: false)
    let logSumExp = FloatStorage(count: shape.batch * shape.queryHeads * shape.queries, zeroed: false)
    let buffers = AttentionBuffers(q: q.value.pointer, k: k.value.pointer, v: v.value.pointer, output: output.pointer,
                                   logSumExp: logSumExp.pointer)
    FlashAttention.tiled(shape, buffers)
    return Variable(output, shape: q.shape, parents: [q, k, v]) { out in
        let dq = FloatStorage(count: q.count, zeroed: false), dk = FloatStorage(count: k.count, zeroed: false)
        let dv = FloatStorage(count: v.count, zeroed: false)
        FlashAttention.backward(shape, buffers, AttentionGradients(outputGradient: out.grad!.pointer, dq: dq.pointer,
                                                                    dk: dk.pointer, dv: dv.pointer))
        _ = logSumExp  // kept alive with the closure
        for (variable, gradient) in [(q, dq), (k, dk), (v, dv)] where variable.requiresGrad {
            let g = variable.gradient(), src = gradient.pointer
            parallelElements(variable.count) { range in for i in range { g[i] += src[i] } }
        }
    }
}

/// Causal self-attention of one fused projection's q, k, v for `batch` sequences of `tokens`.
public func causalSelfAttention(q: Variable, k: Variable, v: Variable, batch: Int, tokens: Int, heads: Int,
                                kvHeads: Int? = nil, headDim: Int) -> Variable {
    attention(q: q, k: k, v: v, shape: AttentionShape(batch: batch, queries: tokens, keys: tokens, queryHeads: heads,
                                                      kvHeads: kvHeads ?? heads, headDim: headDim,
                                                      mask: AttentionMask(causal: true)))
}

/// Rotary position embedding of x (rows, heads · headDim) by `positions` (one per row) as a
/// differentiable operation. A rotation's inverse is its transpose — the rotation by -θ — so the
/// backward pass rotates dy with sin negated.
public func rotary(_ x: Variable, heads: Int, headDim: Int, positions: [Int32], table: RoPETable) -> Variable {
    let rows = x.count / (heads * headDim)
    precondition(positions.count == rows, "rotary: \(positions.count) positions for \(rows) rows")
    table.ensureCapacity(Int(positions.max() ?? 0) + 1)
    let y = FloatStorage(count: x.count, zeroed: false)
    y.pointer.update(from: x.value.pointer, count: x.count)
    table.apply(y.pointer, heads: heads, headDim: headDim, tokens: rows, positions: positions)
    return Variable(y, shape: x.shape, parents: [x]) { out in
        let back = FloatStorage(count: x.count, zeroed: false)
        back.pointer.update(from: out.grad!.pointer, count: x.count)
        table.apply(back.pointer, heads: heads, headDim: headDim, tokens: rows, positions: positions, inverse: true)
        let g = x.gradient(), b = back.pointer
        parallelElements(x.count) { range in for i in range { g[i] += b[i] } }
    }
}
