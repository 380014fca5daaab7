// GGML tensor types: the element and block formats a GGUF file may hold, with their block geometry.
//
// Quantised types store blocks of `blockSize` values in `blockBytes` bytes (llama.cpp's ggml-common.h
// layouts); a row's length must be a multiple of the block size. Types this project does not handle are
// named in errors, never guessed at.

public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30, tq1_0 = 34, tq2_0 = 35

    public var description: String {
        switch self {
        case .f32: "F32"; case .f16: "F16"; case .bf16: "BF16"; case .f64: "F64"
        case .q4_0: "Q4_0"; case .q4_1: "Q4_1"; case .q5_0: "Q5_0"; case .q5_1: "Q5_1"; case .q8_0: "Q8_0"; case .q8_1: "Q8_1"
        case .q2_K: "Q2_K"; case .q3_K: "Q3_K"; case .q4_K: "Q4_K"; case .q5_K: "Q5_K"; case .q6_K: "Q6_K"; case .q8_K: "Q8_K"
        case .i8: "I8"; case .i16: "I16"; case .i32: "I32"; case .i64: "I64"
        case .iq2_xxs: "IQ2_XXS"; case .iq2_xs: "IQ2_XS"; case .iq3_xxs: "IQ3_XXS"; case .iq1_s: "IQ1_S"; case .iq4_nl: "IQ4_NL"
        case .iq3_s: "IQ3_S"; case .iq2_s: "IQ2_S"; case .iq4_xs: "IQ4_XS"; case .iq1_m: "IQ1_M"; case .tq1_0: "TQ1_0"; case .tq2_0: "TQ2_0"
        }
    }

    /// (values per block, bytes per block), or nil for the types Tessera cannot read.
    public var blockGeometry: (size: Int, bytes: Int)? {
        switch self {
        case .f32: (1, 4)
        case .f16, .bf16: (1, 2)
        case .f64, .i64: (1, 8)
        case .i32: (1, 4)
        case .i16: (1, 2)
        case .i8: (1, 1)
        case .q4_0: (32, 18)     // f16 d, 16 bytes of 4-bit values
        case .q4_1: (32, 20)     // f16 d, f16 m, 16 bytes
        case .q5_0: (32, 22)     // f16 d, 4 bytes of high bits, 16 bytes
        case .q5_1: (32, 24)     // f16 d, f16 m, 4 bytes of high bits, 16 bytes
        case .q8_0: (32, 34)     // f16 d, 32 int8
        case .q8_1: (32, 36)     // f16 d, f16 s, 32 int8
        case .q2_K: (256, 84)    // 16 scales, 64 bytes of 2-bit values, f16 d, f16 dmin
        case .q3_K: (256, 110)   // 32 bytes high-bit mask, 64 bytes of 2-bit values, 12 bytes scales, f16 d
        case .q4_K: (256, 144)   // f16 d, f16 dmin, 12 bytes scales/mins, 128 bytes of 4-bit values
        case .q5_K: (256, 176)   // f16 d, f16 dmin, 12 bytes scales/mins, 32 bytes high bits, 128 bytes
        case .q6_K: (256, 210)   // 128 bytes low 4 bits, 64 bytes high 2 bits, 16 int8 scales, f16 d
        case .q8_K: (256, 292)   // f32 d, 256 int8, 16 int16 block sums
        default: nil
        }
    }

    /// Bytes of `count` values (count a multiple of the block size), or nil if unsupported or misaligned.
    public func byteCount(values count: Int) -> Int? {
        guard let (size, bytes) = blockGeometry, count >= 0, count % size == 0 else { return nil }
        let (total, overflow) = (count / size).multipliedReportingOverflow(by: bytes)
        return overflow ? nil : total
    }
}
