// The differentiable operations, each a forward computation and the closure that back-propagates
// through it. Shapes are row-major; a "(N, C)" variable is N rows of C values. Heavy work goes to the
// kernels (GEMM, flash attention); the element-wise loops run in parallel over the thread pool.
import Foundation
import TesseraCore
import TesseraKernels

/// Runs `body` over 0..<count in parallel chunks (serially when small).
@inline(__always) func parallelElements(_ count: Int, _ body: (Range<Int>) -> Void) {
    if count < 32_768 { body(0..<count); return }
    ThreadPool.shared.parallelRanges(count, grain: 16_384, body)
}

/// v's gradient += dy (same shape), or = dy while v holds no gradient yet: the copy spares zeroing a
/// fresh buffer and reading the zeros back.
func addGradient(_ v: Variable, _ dy: UnsafePointer<Float>) {
    let (g, accumulate) = v.gradientForWriting()
    parallelElements(v.count) { range in
        if accumulate {
            for i in range { g[i] += dy[i] }
        } else {
            (g + range.lowerBound).update(from: dy + range.lowerBound, count: range.count)
        }
    }
}

public enum NNError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(operation: String, detail: String)

    public var description: String {
        switch self {
        case .shapeMismatch(let operation, let detail): "\(operation): \(detail)"
        }
    }
}

// MARK: - Matrix products

/// y (N, out) = x (N, in) · Wᵀ [+ b], W (out, in) as a linear layer stores it.
public func linear(_ x: Variable, _ w: Variable, _ b: Variable? = nil) -> Variable {
    let inputs = w.shape[1], outputs = w.shape[0]
    precondition(x.shape.last == inputs, "linear: input width \(x.shape.last ?? 0) != weight's \(inputs) (weight \(w.shape))")
    precondition(b == nil || b!.count == outputs, "linear: bias of \(b?.count ?? 0) for \(outputs) outputs")
    let rows = x.count / inputs
    let y = FloatStorage(count: rows * outputs, zeroed: false)
    let kernels = Kernels.active
    kernels.gemm(GEMMArguments(m: rows, n: outputs, k: inputs, a: x.value.pointer, b: w.value.pointer, transposeB: true, c: y.pointer))
    if let b {
        let bias = b.value.pointer
        ThreadPool.shared.parallelRanges(rows, grain: max(1, 16_384 / outputs)) { range in
            for r in range {
                let row = y.pointer + r * outputs
                for j in 0..<outputs { row[j] += bias[j] }
            }
        }
    }
    var shape = x.shape
    shape[shape.count - 1] = outputs
    return Variable(y, shape: shape, parents: [x, w] + (b.map { [$0] } ?? [])) { out in
        let dy = out.grad!.pointer
        if x.requiresGrad {  // dx += dy · W
            let dx = x.gradientForWriting()
            kernels.gemm(GEMMArguments(m: rows, n: inputs, k: outputs, a: dy, b: w.value.pointer, c: dx.pointer, accumulate: dx.accumulate))
        }
        if w.requiresGrad {  // dW += dyᵀ · x
            let dw = w.gradientForWriting()
            kernels.gemm(GEMMArguments(m: outputs, n: inputs, k: rows, a: dy, transposeA: true, b: x.value.pointer,
                                       c: dw.pointer, accumulate: dw.accumulate))
        }
        if let b, b.requiresGrad {  // db += Σ_rows dy
            RowMath.columnSums(dy, times: nil, rows: rows, width: outputs, into: b.gradientForWriting())
        }
    }
}

// MARK: - Element-wise

/// a + b, same shapes.
public func add(_ a: Variable, _ b: Variable) -> Variable {
    precondition(a.count == b.count, "add: \(a.shape) and \(b.shape)")
    let y = FloatStorage(count: a.count, zeroed: false)
    let (pa, pb) = (a.value.pointer, b.value.pointer)
    parallelElements(a.count) { range in for i in range { y.pointer[i] = pa[i] + pb[i] } }
    return Variable(y, shape: a.shape, parents: [a, b]) { out in
        let dy = out.grad!.pointer
        for v in [a, b] where v.requiresGrad { addGradient(v, dy) }
    }
}

/// x (N, C) + each row of p's first N mod R rows, broadcast: y[n] = x[n] + p[n mod R] for p (R, C).
/// Learned positions: x (B·T, C) + wpe[0..<T].
public func addRows(_ x: Variable, _ p: Variable, period: Int) -> Variable {
    let width = x.shape.last!
    precondition(p.shape.last == width && p.shape[0] >= period, "addRows: \(x.shape) + \(p.shape) with period \(period)")
    let rows = x.count / width
    let y = FloatStorage(count: x.count, zeroed: false)
    let (px, pp) = (x.value.pointer, p.value.pointer)
    for r in 0..<rows {
        let t = r % period
        for j in 0..<width { y.pointer[r * width + j] = px[r * width + j] + pp[t * width + j] }
    }
    return Variable(y, shape: x.shape, parents: [x, p]) { out in
        let dy = out.grad!.pointer
        if x.requiresGrad { addGradient(x, dy) }
        if p.requiresGrad {
            let g = p.gradient()
            for r in 0..<rows { let t = r % period; for j in 0..<width { g[t * width + j] += dy[r * width + j] } }
        }
    }
}

/// a ∘ b, same shapes (gating).
public func multiply(_ a: Variable, _ b: Variable) -> Variable {
    precondition(a.count == b.count, "multiply: \(a.shape) and \(b.shape)")
    let y = FloatStorage(count: a.count, zeroed: false)
    let (pa, pb) = (a.value.pointer, b.value.pointer)
    parallelElements(a.count) { range in for i in range { y.pointer[i] = pa[i] * pb[i] } }
    return Variable(y, shape: a.shape, parents: [a, b]) { out in
        let dy = out.grad!.pointer
        if a.requiresGrad { let g = a.gradient(); parallelElements(a.count) { r in for i in r { g[i] += dy[i] * pb[i] } } }
        if b.requiresGrad { let g = b.gradient(); parallelElements(b.count) { r in for i in r { g[i] += dy[i] * pa[i] } } }
    }
}

/// x · c for a constant c.
public func scale(_ x: Variable, _ c: Float) -> Variable {
    let y = FloatStorage(count: x.count, zeroed: false)
    let px = x.value.pointer
    parallelElements(x.count) { range in for i in range { y.pointer[i] = px[i] * c } }
    return Variable(y, shape: x.shape, parents: [x]) { out in
        let dy = out.grad!.pointer, g = x.gradient()
        parallelElements(x.count) { range in for i in range { g[i] += dy[i] * c } }
    }
}

/// act(x) and its derivative, element by element.
public func activation(_ kind: Activation, _ x: Variable) -> Variable {
    let y = FloatStorage(count: x.count, zeroed: false)
    Kernels.active.activation(kind, x.value.pointer, y.pointer, count: x.count)
    return Variable(y, shape: x.shape, parents: [x]) { out in
        Kernels.active.activationGradient(kind, x: x.value.pointer, dy: out.grad!.pointer, dx: x.gradient(), count: x.count)
    }
}

/// Inverted dropout: zeroes each value with probability p and scales the rest by 1/(1-p).
/// Identity when p == 0 or gradients are off (evaluation).
public func dropout<R: RandomNumberGenerator>(_ x: Variable, p: Float, using rng: inout R) -> Variable {
    guard p > 0, GradMode.enabled else { return x }
    precondition(p < 1, "dropout probability must be below 1, got \(p)")
    let keep = 1 / (1 - p)
    var mask = [Float](repeating: 0, count: x.count)
    for i in mask.indices where Float.random(in: 0..<1, using: &rng) >= p { mask[i] = keep }
    let y = FloatStorage(count: x.count, zeroed: false)
    for i in 0..<x.count { y.pointer[i] = x.value.pointer[i] * mask[i] }
    return Variable(y, shape: x.shape, parents: [x]) { out in
        let dy = out.grad!.pointer, g = x.gradient()
        for i in 0..<x.count { g[i] += dy[i] * mask[i] }
    }
}

// MARK: - Gathering and reshaping

/// rows (ids.count, C) = table[ids] for table (V, C); backward scatters into the table's rows.
public func embedding(_ table: Variable, _ ids: [Int32]) -> Variable {
    let width = table.shape[1], vocab = table.shape[0]
    let y = FloatStorage(count: ids.count * width, zeroed: false)
    for (r, id) in ids.enumerated() {
        precondition(id >= 0 && Int(id) < vocab, "embedding: id \(id) outside 0..<\(vocab)")
        (y.pointer + r * width).update(from: table.value.pointer + Int(id) * width, count: width)
    }
    return Variable(y, shape: [ids.count, width], parents: [table]) { out in
        let dy = out.grad!.pointer, g = table.gradient()
        for (r, id) in ids.enumerated() {
            let row = g + Int(id) * width
            for j in 0..<width { row[j] += dy[r * width + j] }
        }
    }
}

/// Columns [range) of x (N, C): (N, range.count). Splits a fused q|k|v projection.
public func columns(_ x: Variable, _ range: Range<Int>) -> Variable {
    let width = x.shape.last!, rows = x.count / width, n = range.count
    let y = FloatStorage(count: rows * n, zeroed: false)
    let grain = max(1, 16_384 / max(1, n))
    ThreadPool.shared.parallelRanges(rows, grain: grain) { rs in
        for r in rs { (y.pointer + r * n).update(from: x.value.pointer + r * width + range.lowerBound, count: n) }
    }
    var shape = x.shape
    shape[shape.count - 1] = n
    return Variable(y, shape: shape, parents: [x]) { out in
        let dy = out.grad!.pointer, g = x.gradient()
        ThreadPool.shared.parallelRanges(rows, grain: grain) { rs in
            for r in rs {
                let to = g + r * width + range.lowerBound, from = dy + r * n
                for j in 0..<n { to[j] += from[j] }
            }
        }
    }
}

/// The same values with another shape (a copy, so the graph stays simple).
public func reshape(_ x: Variable, _ shape: [Int]) -> Variable {
    precondition(shape.reduce(1, *) == x.count, "reshape: \(x.shape) to \(shape)")
    let y = FloatStorage(count: x.count, zeroed: false)
    y.pointer.update(from: x.value.pointer, count: x.count)
    return Variable(y, shape: shape, parents: [x]) { out in addGradient(x, out.grad!.pointer) }
}

/// The transpose of a matrix (R, C) -> (C, R).
public func transpose(_ x: Variable) -> Variable {
    precondition(x.shape.count == 2, "transpose: a matrix, got \(x.shape)")
    let (rows, cols) = (x.shape[0], x.shape[1])
    let y = FloatStorage(count: x.count, zeroed: false)
    for r in 0..<rows { for c in 0..<cols { y.pointer[c * rows + r] = x.value.pointer[r * cols + c] } }
    return Variable(y, shape: [cols, rows], parents: [x]) { out in
        let dy = out.grad!.pointer, g = x.gradient()
        for r in 0..<rows { for c in 0..<cols { g[r * cols + c] += dy[c * rows + r] } }
    }
}

/// Σ of all values (a scalar).
public func sum(_ x: Variable) -> Variable {
    var total: Double = 0
    for i in 0..<x.count { total += Double(x.value.pointer[i]) }
    return Variable(FloatStorage([Float(total)]), shape: [1], parents: [x]) { out in
        let dy = out.grad!.pointer[0], g = x.gradient()
        for i in 0..<x.count { g[i] += dy }
    }
}
