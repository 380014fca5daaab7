// Dequantisation of GGUF tensor data to f32: the plain reference for every block type Tessera reads,
// following the block layouts of llama.cpp's ggml-common.h / ggml-quants.c. Held to the `gguf` Python
// package's dequantiser by committed goldens (scripts/goldens/make_dequant_goldens.py). The fast
// quantised matmul kernels of the model issue compute from the blocks directly; this is their oracle.
import TesseraCore

extension GGMLType {
    /// Decodes `count` values (a whole number of blocks) from `source` into `destination`.
    public func dequantize(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) throws(GGUFError) {
        guard let (size, bytes) = blockGeometry, count % size == 0 else {
            throw .invalidTensorShape(tensor: "(\(self) data)", detail: "\(count) values are not whole \(self) blocks")
        }
        for block in 0..<(count / size) {
            let b = source + block * bytes, y = destination + block * size
            switch self {
            case .f32: y[0] = b.loadUnaligned(as: Float.self)
            case .f16: y[0] = floatFromHalfBits(b.loadUnaligned(as: UInt16.self))
            case .bf16: y[0] = floatFromBFloat16Bits(b.loadUnaligned(as: UInt16.self))
            case .f64: y[0] = Float(b.loadUnaligned(as: Double.self))
            case .i8: y[0] = Float(b.load(as: Int8.self))
            case .i16: y[0] = Float(b.loadUnaligned(as: Int16.self))
            case .i32: y[0] = Float(b.loadUnaligned(as: Int32.self))
            case .i64: y[0] = Float(b.loadUnaligned(as: Int64.self))
            case .q4_0: dequantizeQ4(b, y, hasMin: false)
            case .q4_1: dequantizeQ4(b, y, hasMin: true)
            case .q5_0: dequantizeQ5(b, y, hasMin: false)
            case .q5_1: dequantizeQ5(b, y, hasMin: true)
            case .q8_0, .q8_1:
                let d = half(b, 0), qs = b + (self == .q8_0 ? 2 : 4)
                for j in 0..<32 { y[j] = Float(qs.load(fromByteOffset: j, as: Int8.self)) * d }
            case .q2_K: dequantizeQ2K(b, y)
            case .q3_K: dequantizeQ3K(b, y)
            case .q4_K: dequantizeQ4K(b, y)
            case .q5_K: dequantizeQ5K(b, y)
            case .q6_K: dequantizeQ6K(b, y)
            case .q8_K:
                let d = b.loadUnaligned(as: Float.self)
                for j in 0..<256 { y[j] = d * Float(b.load(fromByteOffset: 4 + j, as: Int8.self)) }
            default: throw .unsupportedTensorType(tensor: "(\(self) data)", type: self)
            }
        }
    }
}

@inline(__always) private func half(_ b: UnsafeRawPointer, _ offset: Int) -> Float {
    floatFromHalfBits(b.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}
@inline(__always) private func byte(_ b: UnsafeRawPointer, _ offset: Int) -> Int { Int(b.load(fromByteOffset: offset, as: UInt8.self)) }

/// Q4_0 {f16 d; 16 bytes}: value = (nibble − 8)·d. Q4_1 {f16 d, f16 m; 16 bytes}: value = nibble·d + m.
/// Low nibbles are values 0..15 of the block, high nibbles 16..31.
private func dequantizeQ4(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, hasMin: Bool) {
    let d = half(b, 0), m = hasMin ? half(b, 2) : 0, qs = hasMin ? 4 : 2
    for j in 0..<16 {
        let q = byte(b, qs + j)
        if hasMin {
            y[j] = Float(q & 0xF) * d + m
            y[j + 16] = Float(q >> 4) * d + m
        } else {
            y[j] = Float((q & 0xF) - 8) * d
            y[j + 16] = Float((q >> 4) - 8) * d
        }
    }
}

/// Q5_0 {f16 d; u32 high bits; 16 bytes}: value = (5-bit − 16)·d. Q5_1 {f16 d, f16 m; u32; 16 bytes}: 5-bit·d + m.
private func dequantizeQ5(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, hasMin: Bool) {
    let d = half(b, 0), m = hasMin ? half(b, 2) : 0, hOffset = hasMin ? 4 : 2
    let qh = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: hOffset, as: UInt32.self))
    for j in 0..<16 {
        let q = byte(b, hOffset + 4 + j)
        let high0 = Int((qh >> UInt32(j)) << 4) & 0x10, high1 = Int(qh >> UInt32(j + 12)) & 0x10
        let x0 = (q & 0xF) | high0, x1 = (q >> 4) | high1
        if hasMin {
            y[j] = Float(x0) * d + m
            y[j + 16] = Float(x1) * d + m
        } else {
            y[j] = Float(x0 - 16) * d
            y[j + 16] = Float(x1 - 16) * d
        }
    }
}

/// Q2_K {16 scale bytes (4-bit scale, 4-bit min); 64 bytes of 2-bit values; f16 d; f16 dmin}.
private func dequantizeQ2K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = half(b, 80), dmin = half(b, 82)
    var out = 0, scaleIndex = 0
    for n in stride(from: 0, to: 256, by: 128) {
        let q = 16 + n / 4
        var shift = 0
        for _ in 0..<4 {
            for half16 in 0..<2 {
                let sc = byte(b, scaleIndex); scaleIndex += 1
                let dl = d * Float(sc & 0xF), ml = dmin * Float(sc >> 4)
                for l in 0..<16 { y[out] = dl * Float((byte(b, q + half16 * 16 + l) >> shift) & 3) - ml; out += 1 }
            }
            shift += 2
        }
    }
}

/// Q3_K {32-byte high-bit mask; 64 bytes of low 2 bits; 12 bytes of 6-bit scales; f16 d}.
private func dequantizeQ3K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = half(b, 108)
    // Unpack the sixteen 6-bit scales (stored as 4 low bits + 2 high bits) as ggml does.
    var aux = (UInt32(0), UInt32(0), UInt32(0), UInt32(0))
    aux.0 = b.loadUnaligned(fromByteOffset: 96, as: UInt32.self)
    aux.1 = b.loadUnaligned(fromByteOffset: 100, as: UInt32.self)
    let tmp = b.loadUnaligned(fromByteOffset: 104, as: UInt32.self)
    let kmask1: UInt32 = 0x0303_0303, kmask2: UInt32 = 0x0f0f_0f0f
    aux.2 = ((aux.0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
    aux.3 = ((aux.1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)
    aux.0 = (aux.0 & kmask2) | ((tmp & kmask1) << 4)
    aux.1 = (aux.1 & kmask2) | (((tmp >> 2) & kmask1) << 4)
    let scales: [Int] = [aux.0, aux.1, aux.2, aux.3].flatMap { word in (0..<4).map { Int(Int8(truncatingIfNeeded: word >> (8 * $0))) } }
    var out = 0, scaleIndex = 0, mask = 1
    for n in stride(from: 0, to: 256, by: 128) {
        let q = 32 + n / 4
        var shift = 0
        for _ in 0..<4 {
            for half16 in 0..<2 {
                let dl = d * Float(scales[scaleIndex] - 32); scaleIndex += 1
                for l in 0..<16 {
                    let low = (byte(b, q + half16 * 16 + l) >> shift) & 3
                    let high = byte(b, half16 * 16 + l) & mask != 0 ? 0 : 4
                    y[out] = dl * Float(low - high); out += 1
                }
            }
            shift += 2
            mask <<= 1
        }
    }
}

/// The j-th 6-bit (scale, min) pair of the 12-byte K-quant scale field at `offset`.
@inline(__always) private func scaleMinK4(_ j: Int, _ b: UnsafeRawPointer, _ offset: Int) -> (Float, Float) {
    let q = { (i: Int) in byte(b, offset + i) }
    if j < 4 { return (Float(q(j) & 63), Float(q(j + 4) & 63)) }
    return (Float((q(j + 4) & 0xF) | ((q(j - 4) >> 6) << 4)), Float((q(j + 4) >> 4) | ((q(j) >> 6) << 4)))
}

/// Q4_K {f16 d; f16 dmin; 12 bytes of 6-bit scales and mins; 128 bytes of 4-bit values}.
private func dequantizeQ4K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = half(b, 0), dmin = half(b, 2)
    var out = 0, q = 16
    for j in stride(from: 0, to: 8, by: 2) {
        let (s1, m1) = scaleMinK4(j, b, 4), (s2, m2) = scaleMinK4(j + 1, b, 4)
        for l in 0..<32 { y[out] = d * s1 * Float(byte(b, q + l) & 0xF) - dmin * m1; out += 1 }
        for l in 0..<32 { y[out] = d * s2 * Float(byte(b, q + l) >> 4) - dmin * m2; out += 1 }
        q += 32
    }
}

/// Q5_K {f16 d; f16 dmin; 12 bytes of scales/mins; 32 bytes of fifth bits; 128 bytes of low 4 bits}.
private func dequantizeQ5K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = half(b, 0), dmin = half(b, 2)
    var out = 0, ql = 48, u1 = 1, u2 = 2
    for j in stride(from: 0, to: 8, by: 2) {
        let (s1, m1) = scaleMinK4(j, b, 4), (s2, m2) = scaleMinK4(j + 1, b, 4)
        for l in 0..<32 { y[out] = d * s1 * Float((byte(b, ql + l) & 0xF) + (byte(b, 16 + l) & u1 != 0 ? 16 : 0)) - dmin * m1; out += 1 }
        for l in 0..<32 { y[out] = d * s2 * Float((byte(b, ql + l) >> 4) + (byte(b, 16 + l) & u2 != 0 ? 16 : 0)) - dmin * m2; out += 1 }
        ql += 32
        u1 <<= 2
        u2 <<= 2
    }
}

/// Q6_K {128 bytes of low 4 bits; 64 bytes of high 2 bits; 16 int8 scales; f16 d}.
private func dequantizeQ6K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = half(b, 208)
    for n in 0..<2 {
        let ql = n * 64, qh = 128 + n * 32, sc = 192 + n * 8, out = n * 128
        let scale = { (i: Int) in Float(b.load(fromByteOffset: sc + i, as: Int8.self)) }
        for l in 0..<32 {
            let s = l / 16
            let q1 = ((byte(b, ql + l) & 0xF) | (((byte(b, qh + l) >> 0) & 3) << 4)) - 32
            let q2 = ((byte(b, ql + l + 32) & 0xF) | (((byte(b, qh + l) >> 2) & 3) << 4)) - 32
            let q3 = ((byte(b, ql + l) >> 4) | (((byte(b, qh + l) >> 4) & 3) << 4)) - 32
            let q4 = ((byte(b, ql + l + 32) >> 4) | (((byte(b, qh + l) >> 6) & 3) << 4)) - 32
            y[out + l] = d * scale(s) * Float(q1)
            y[out + l + 32] = d * scale(s + 2) * Float(q2)
            y[out + l + 64] = d * scale(s + 4) * Float(q3)
            y[out + l + 96] = d * scale(s + 6) * Float(q4)
        }
    }
}
