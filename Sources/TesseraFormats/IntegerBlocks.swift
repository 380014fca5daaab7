// Quantised blocks in integer form, for kernels that multiply integers: every 32 values of a row
// become 32 small integers q, a scale per half-block (values 0..15 and 16..31) and a minimum, with
//     value = scale[half] · q + minimum
// exactly as the block type defines it (the scales are products such as d · sc of a K-quant, computed
// in f32). The kernels' repacking (TesseraModels' QuantizedMatrix) reads this form, so it needs one
// decoder per block type here, beside the dequantiser that is its oracle.
import TesseraCore

/// The integer range a block type's q values fall in, which decides the repacked format.
public enum IntegerBlockRange: Sendable, Equatable {
    /// 0...15 with one scale per 32 (Q4_0, Q4_1, Q4_K): packable as nibbles.
    case unsignedNibble
    /// -128...127 (Q5_0, Q5_1, Q5_K, Q6_K, Q8_0): one byte each.
    case signedByte
}

extension GGMLType {
    /// The range of q values this type decodes to, or nil when it has no integer form here.
    public var integerBlockRange: IntegerBlockRange? {
        switch self {
        case .q4_0, .q4_1, .q4_K: .unsignedNibble
        case .q5_0, .q5_1, .q5_K, .q6_K, .q8_0: .signedByte
        default: nil
        }
    }

    /// Decodes one row of `count` values (whole blocks) into q (count), scales (count / 16) and
    /// minimums (count / 32). Q5_1 and Q5_K values are shifted by -16 into a signed byte (with the
    /// minimum adjusted), so every signed type fits -128...127.
    public func decodeIntegerBlocks(_ source: UnsafeRawPointer, count: Int, q: UnsafeMutablePointer<Int8>,
                                    scales: UnsafeMutablePointer<Float>, minimums: UnsafeMutablePointer<Float>) throws(GGUFError) {
        guard integerBlockRange != nil, let (size, bytes) = blockGeometry, count % size == 0 else {
            throw .unsupportedTensorType(tensor: "(integer blocks)", type: self)
        }
        func half(_ b: UnsafeRawPointer, _ o: Int) -> Float { floatFromHalfBits(b.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
        func byte(_ b: UnsafeRawPointer, _ o: Int) -> Int { Int(b.load(fromByteOffset: o, as: UInt8.self)) }
        for block in 0..<(count / size) {
            let b = source + block * bytes
            let y = q + block * size, s = scales + block * size / 16, m = minimums + block * size / 32
            switch self {
            case .q4_0, .q4_1:
                let d = half(b, 0), qs = self == .q4_1 ? 4 : 2
                for j in 0..<16 {
                    y[j] = Int8(byte(b, qs + j) & 0xF)
                    y[j + 16] = Int8(byte(b, qs + j) >> 4)
                }
                s[0] = d; s[1] = d
                m[0] = self == .q4_1 ? half(b, 2) : -8 * d
            case .q5_0, .q5_1:
                let d = half(b, 0), h = self == .q5_1 ? 4 : 2
                let qh = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: h, as: UInt32.self))
                for j in 0..<16 {
                    let x = byte(b, h + 4 + j)
                    let x0 = (x & 0xF) | (Int((qh >> UInt32(j)) << 4) & 0x10)
                    let x1 = (x >> 4) | (Int(qh >> UInt32(j + 12)) & 0x10)
                    y[j] = Int8(x0 - 16); y[j + 16] = Int8(x1 - 16)
                }
                s[0] = d; s[1] = d
                m[0] = self == .q5_1 ? half(b, 2) + 16 * d : 0
            case .q8_0:
                let d = half(b, 0)
                for j in 0..<32 { y[j] = b.load(fromByteOffset: 2 + j, as: Int8.self) }
                s[0] = d; s[1] = d; m[0] = 0
            case .q4_K, .q5_K:
                let d = half(b, 0), dmin = half(b, 2)
                func scaleMin(_ j: Int) -> (Float, Float) {
                    let k = { (i: Int) in byte(b, 4 + i) }
                    if j < 4 { return (Float(k(j) & 63), Float(k(j + 4) & 63)) }
                    return (Float((k(j + 4) & 0xF) | ((k(j - 4) >> 6) << 4)), Float((k(j + 4) >> 4) | ((k(j) >> 6) << 4)))
                }
                for j in 0..<8 {  // sub-blocks of 32
                    let (sc, mn) = scaleMin(j)
                    let chunk = j / 2, high = j % 2 == 1
                    for l in 0..<32 {
                        var v: Int
                        if self == .q4_K {
                            let x = byte(b, 16 + chunk * 32 + l)
                            v = high ? x >> 4 : x & 0xF
                        } else {
                            let x = byte(b, 48 + chunk * 32 + l)
                            v = (high ? x >> 4 : x & 0xF) | (byte(b, 16 + l) >> j & 1) << 4
                            v -= 16
                        }
                        y[j * 32 + l] = Int8(v)
                    }
                    s[2 * j] = d * sc; s[2 * j + 1] = d * sc
                    m[j] = -dmin * mn + (self == .q5_K ? 16 * d * sc : 0)
                }
            case .q6_K:
                let d = half(b, 208)
                for n in 0..<2 {
                    let ql = n * 64, qh = 128 + n * 32, out = n * 128
                    for l in 0..<32 {
                        y[out + l] = Int8(((byte(b, ql + l) & 0xF) | ((byte(b, qh + l) & 3) << 4)) - 32)
                        y[out + l + 32] = Int8(((byte(b, ql + l + 32) & 0xF) | (((byte(b, qh + l) >> 2) & 3) << 4)) - 32)
                        y[out + l + 64] = Int8(((byte(b, ql + l) >> 4) | (((byte(b, qh + l) >> 4) & 3) << 4)) - 32)
                        y[out + l + 96] = Int8(((byte(b, ql + l + 32) >> 4) | (((byte(b, qh + l) >> 6) & 3) << 4)) - 32)
                    }
                }
                // 16 scales, one per 16 values, in order.
                for i in 0..<16 { s[i] = d * Float(b.load(fromByteOffset: 192 + i, as: Int8.self)) }
                for i in 0..<8 { m[i] = 0 }
            default:
                throw .unsupportedTensorType(tensor: "(integer blocks)", type: self)
            }
        }
    }
}
