// Element types and the scalar conversions between them.
//
// Activations are always f32; weights may be f32, f16 or bf16 (and, from the formats issue on, GGUF
// block-quantised types). The scalar conversions here are the reference; the kernel sets carry
// vectorised bulk conversions (`KernelSet.convert`) that tests hold to these.

/// The element type of a tensor.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32, f16, bf16, i32, i8, u8

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f32, .i32: 4
        case .f16, .bf16: 2
        case .i8, .u8: 1
        }
    }

    public var isFloatingPoint: Bool { self == .f32 || self == .f16 || self == .bf16 }
    public var description: String { rawValue }
}

// MARK: - Scalar conversions (the reference for the vectorised ones)

/// IEEE 754 binary16 bits -> Float, exact (every half is representable as a float).
@inlinable public func floatFromHalfBits(_ bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = UInt32(bits >> 10) & 0x1f
    let mantissa = UInt32(bits & 0x3ff)
    if exponent == 0x1f {  // inf / nan
        return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13))
    }
    if exponent == 0 {  // zero / subnormal: mantissa * 2^-24
        let magnitude = Float(mantissa) * 0x1p-24
        return sign != 0 ? -magnitude : magnitude
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}

/// Float -> IEEE binary16 bits, rounding to nearest even; overflow gives infinity, NaN stays NaN.
@inlinable public func halfBitsFromFloat(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    let absBits = bits & 0x7fff_ffff
    if absBits >= 0x7f80_0000 {  // inf or nan
        return sign | 0x7c00 | (absBits > 0x7f80_0000 ? 0x200 : 0)
    }
    if absBits >= 0x4780_0000 { return sign | 0x7c00 }  // >= 65536: overflow
    if absBits < 0x3880_0000 {  // below the smallest normal half (2^-14): subnormal or zero
        // Scale into the subnormal integer grid (units of 2^-24) and round to nearest even.
        let magnitude = Float(bitPattern: absBits) * 0x1p24
        let rounded = magnitude.rounded(.toNearestOrEven)
        return sign | UInt16(rounded)
    }
    // Normal: rebias exponent, round the 13 dropped mantissa bits to nearest even.
    let rebased = absBits &- (112 << 23)
    let roundBit: UInt32 = 0x1000, lsb = (rebased >> 13) & 1
    let rounded = rebased &+ (roundBit - 1) &+ lsb
    return sign | UInt16(truncatingIfNeeded: rounded >> 13)
}

/// bfloat16 bits -> Float (exact: bf16 is the top half of a float).
@inlinable public func floatFromBFloat16Bits(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Float -> bfloat16 bits, rounding to nearest even; NaN stays a quiet NaN.
@inlinable public func bfloat16BitsFromFloat(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if bits & 0x7fff_ffff > 0x7f80_0000 { return UInt16(bits >> 16) | 0x40 }
    let rounded = bits &+ 0x7fff &+ ((bits >> 16) & 1)
    return UInt16(rounded >> 16)
}
