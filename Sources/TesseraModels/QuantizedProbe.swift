// Hooks for `tessera bench kernels`: the quantised matrix product as the model runs it (activation
// quantisation, the lane or 4-row integer kernel, the pool's threads) on a random matrix of a GGML
// type, and the integer multiply-add peak of the cores it is measured against.
import CTesseraCPU
import TesseraCore
import TesseraFormats
import TesseraKernels

public enum QuantizedProbe {
    /// A random `rows` x `cols` matrix of `type` (random codes, small f16 scales), repacked as the
    /// loader repacks weights, and a closure applying it to `tokens` random activation rows; nil when
    /// the type has no integer kernel. `path`: the kernel it takes (the 16-row lane kernel on AVX-512
    /// VNNI; elsewhere the 4-row integer kernel, or f32 panels from `QuantizedMatrix.gemmThreshold` rows).
    public static func matrix(_ type: GGMLType, rows: Int, cols: Int, tokens: Int, int8Activations: Bool)
        throws -> (apply: () -> Void, multiplyAdds: Double, path: String)? {
        guard let (size, bytes) = type.blockGeometry, cols % size == 0, [.q4_0, .q4_1, .q8_0].contains(type) else { return nil }
        let blocks = rows * cols / size
        let raw = UnsafeMutableRawPointer.allocate(byteCount: blocks * bytes, alignment: 64)
        defer { raw.deallocate() }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<(blocks * bytes) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            raw.storeBytes(of: UInt8(truncatingIfNeeded: state >> 33), toByteOffset: i, as: UInt8.self)
        }
        // Q4_0, Q4_1 and Q8_0 blocks open with an f16 scale (Q4_1 then an f16 minimum): keep them small.
        for b in 0..<blocks {
            raw.storeBytes(of: halfBitsFromFloat(0.01), toByteOffset: b * bytes, as: UInt16.self)
            if type == .q4_1 { raw.storeBytes(of: halfBitsFromFloat(-0.08), toByteOffset: b * bytes + 2, as: UInt16.self) }
        }
        let tensor = RawTensor(name: "probe", shape: [rows, cols], type: type, data: UnsafeRawPointer(raw))
        guard let q = try QuantizedMatrix(tensor, int8Activations: int8Activations) else { return nil }
        let buffers = Buffers(x: tokens * cols, y: tokens * rows)
        for i in 0..<(tokens * cols) { buffers.x[i] = Float((i &* 2654435761) & 1023) / 512 - 1 }
        let apply = {
            q.apply(buffers.x, m: tokens, out: buffers.y, ldOut: rows)
            tessera_do_not_optimize(buffers.y)
        }
        let path = q.lanes ? "16-row lane kernel" : tokens >= QuantizedMatrix.gemmThreshold ? "dequantised f32 panels" : "4-row integer kernel"
        return (apply, Double(rows) * Double(cols) * Double(tokens), path)
    }

    /// `tensor` (rows x cols, a quantised type) repacked as the loader repacks weights, times the `m`
    /// rows of `x` (m x cols): the (m x rows) product through the loader's path on the active kernel set
    /// (activation quantisation, lane or 4-row kernels). Nil when the type has no integer form. For
    /// tests holding that path to a plain dequantise-and-multiply.
    public static func product(_ tensor: RawTensor, x: [Float], m: Int, int8Activations: Bool) throws -> [Float]? {
        guard tensor.shape.count == 2, x.count == m * tensor.shape[1],
              let q = try QuantizedMatrix(tensor, int8Activations: int8Activations) else { return nil }
        var y = [Float](repeating: 0, count: m * q.rows)
        x.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in q.apply(x.baseAddress!, m: m, out: y.baseAddress!, ldOut: q.rows) }
        }
        return y
    }

    /// Multiply-adds done by `iterations` rounds of 12 independent VNNI instructions on every thread of
    /// the pool (16-bit `vpdpwssd`, or 8-bit `vpdpbusd` when `bytes`); nil without AVX-512 VNNI.
    public static func vnniPeak(iterations: Int, bytes: Bool) -> Double? {
        guard Kernels.activeID == .avx512 else { return nil }
        let pool = ThreadPool.shared
        var sink = [Int32](repeating: 0, count: pool.threadCount)
        sink.withUnsafeMutableBufferPointer { sink in
            pool.runOnEachThread { thread in sink[thread] = tessera_vnni_peak_avx512(iterations, bytes ? 1 : 0) }
        }
        tessera_do_not_optimize(sink)
        return Double(pool.threadCount) * Double(iterations) * 12 * (bytes ? 64 : 32)
    }

    /// Activations and outputs, freed with the last closure that holds them.
    final class Buffers {
        let x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>
        init(x: Int, y: Int) { self.x = .allocate(capacity: x); self.y = .allocate(capacity: y) }
        deinit { x.deallocate(); y.deallocate() }
    }
}
