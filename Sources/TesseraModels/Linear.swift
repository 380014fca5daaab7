// Linear layers as the forward pass uses them: y (m, out) = x (m, in) · Wᵀ + b, where W is stored
// (out, in) as the checkpoint stores it. The weight is either dense f32 (the exact path, and what
// a float checkpoint gives) or kept quantised in a repacked block format (the fast path, see
// QuantizedMatrix). Projections that read the same input (Q, K, V; gate and up) are fused into one
// wide matrix at load when their formats agree, so a decode step runs one matrix-vector product
// instead of three.
import TesseraCore
import TesseraFormats
import TesseraKernels

/// Owned, 64-byte aligned f32 memory.
final class FloatBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(1, count))
    }
    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// How weights are held in memory, and what they are multiplied with.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// Every weight dequantised to f32: the reference path the golden tests hold to HF transformers.
    case exact
    /// Quantised weights stay quantised (repacked), times activations quantised to 16 bits per block
    /// of 32 (integer multiply-adds): the exact path's greedy text at quantised memory traffic.
    case fast
    /// Quantised weights times activations quantised to 8 bits per block of 32 (integer dot
    /// products, as llama.cpp does): the least compute, and logits within ~0.1-1 of the exact path.
    case int8
}

/// A weight matrix (rows = outputs, cols = inputs).
enum WeightMatrix: @unchecked Sendable {
    case dense(rows: Int, cols: Int, FloatBuffer)
    case quantized(QuantizedMatrix)

    public var rows: Int {
        switch self { case .dense(let r, _, _): r; case .quantized(let q): q.rows }
    }
    public var cols: Int {
        switch self { case .dense(_, let c, _): c; case .quantized(let q): q.cols }
    }

    /// Bytes held in memory.
    var byteCount: Int {
        switch self { case .dense(let r, let c, _): r * c * 4; case .quantized(let q): q.byteCount }
    }

    /// out (m, rows, row stride ldOut) = x (m, cols) · Wᵀ. The hot path of every model.
    func apply(_ x: UnsafePointer<Float>, m: Int, out: UnsafeMutablePointer<Float>, ldOut: Int, panelRows: Int? = nil) {
        switch self {
        case .dense(let rows, let cols, let w):
            if m == 1 {
                Kernels.active.gemv(n: rows, k: cols, w: w.pointer, ldw: cols, x: x, y: out, accumulate: false)
            } else {
                Kernels.active.gemm(GEMMArguments(m: m, n: rows, k: cols, a: x, lda: cols, b: w.pointer, ldb: cols,
                                                  transposeB: true, c: out, ldc: ldOut))
            }
        case .quantized(let q):
            q.apply(x, m: m, out: out, ldOut: ldOut, panelRows: panelRows)
        }
    }

    /// The rows of several matrices stacked into one, when they are all dense or all the same quantised format.
    static func stacked(_ parts: [WeightMatrix]) -> WeightMatrix? {
        guard let first = parts.first, parts.allSatisfy({ $0.cols == first.cols }) else { return nil }
        if parts.count == 1 { return first }
        let rows = parts.reduce(0) { $0 + $1.rows }
        if parts.allSatisfy({ if case .dense = $0 { true } else { false } }) {
            let buffer = FloatBuffer(count: rows * first.cols)
            var at = buffer.pointer
            for case .dense(let r, let c, let w) in parts {
                at.update(from: w.pointer, count: r * c)
                at += r * c
            }
            return .dense(rows: rows, cols: first.cols, buffer)
        }
        let quantized = parts.compactMap { if case .quantized(let q) = $0 { q } else { nil } }
        guard quantized.count == parts.count, let merged = QuantizedMatrix.stacked(quantized) else { return nil }
        return .quantized(merged)
    }
}

/// One or more weight matrices that read the same input and write side by side into one output row:
/// y[:, offset ..< offset + rows] = x Wᵢᵀ + bᵢ.
struct Linear: @unchecked Sendable {
    var parts: [(matrix: WeightMatrix, offset: Int)]
    /// (outputs) or nil
    var bias: FloatBuffer?
    public let inputs: Int
    public let outputs: Int

    init(parts matrices: [WeightMatrix], bias: FloatBuffer?) {
        var parts: [(WeightMatrix, Int)] = []
        var pending: [WeightMatrix] = []
        var offset = 0, pendingOffset = 0
        func flush() {
            guard !pending.isEmpty else { return }
            if let merged = WeightMatrix.stacked(pending) {
                parts.append((merged, pendingOffset))
            } else {
                var at = pendingOffset
                for m in pending { parts.append((m, at)); at += m.rows }
            }
            pending = []
        }
        for m in matrices {
            if let last = pending.last, WeightMatrix.stacked([last, m]) == nil {
                flush()
                pendingOffset = offset
            }
            if pending.isEmpty { pendingOffset = offset }
            pending.append(m)
            offset += m.rows
        }
        flush()
        self.parts = parts
        self.bias = bias
        inputs = matrices[0].cols
        outputs = offset
    }

    var byteCount: Int { parts.reduce(0) { $0 + $1.matrix.byteCount } + (bias?.count ?? 0) * 4 }

    /// out (m, outputs) = x (m, inputs) · Wᵀ + b; `panelRows` as in QuantizedMatrix.apply.
    func callAsFunction(_ x: UnsafePointer<Float>, m: Int, out: UnsafeMutablePointer<Float>, panelRows: Int? = nil) {
        for (matrix, offset) in parts { matrix.apply(x, m: m, out: out + offset, ldOut: outputs, panelRows: panelRows) }
        if let bias {
            for r in 0..<m { Kernels.active.add(out + r * outputs, bias.pointer, out + r * outputs, count: outputs) }
        }
    }
}

/// The token embedding table, kept in the file's format (often quantised) and decoded row by row.
struct EmbeddingTable: @unchecked Sendable {
    let tensor: RawTensor
    let rows: Int, cols: Int
    let rowBytes: Int
    /// Multiplies every gathered row (Gemma's sqrt(hidden)).
    let scale: Float?

    init(_ tensor: RawTensor, scale: Float?) throws(ModelError) {
        guard tensor.shape.count == 2, let (blockSize, blockBytes) = tensor.type.blockGeometry,
              tensor.shape[1] % blockSize == 0 else {
            throw .unsupportedTensorType(tensor: tensor.name, type: "\(tensor.type) with shape \(tensor.shape)")
        }
        self.tensor = tensor
        rows = tensor.shape[0]
        cols = tensor.shape[1]
        rowBytes = cols / blockSize * blockBytes
        self.scale = scale
    }

    /// out (ids.count, cols) = table[ids] (· scale)
    func gather(_ ids: [Int32], into out: UnsafeMutablePointer<Float>) {
        for (t, id) in ids.enumerated() {
            let row = out + t * cols
            try! tensor.type.dequantize(tensor.data + Int(id) * rowBytes, count: cols, into: row)  // whole blocks: checked in init
            if let scale { for i in 0..<cols { row[i] *= scale } }
        }
    }
}
