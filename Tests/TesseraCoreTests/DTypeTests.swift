// Scalar f16/bf16 conversions against Swift's own Float16 and exhaustive bit patterns.
import TesseraCore
import XCTest

final class DTypeTests: XCTestCase {
    func testHalfToFloatMatchesFloat16ForEveryBitPattern() {
        for bits in 0...UInt16.max {
            let expected = Float(Float16(bitPattern: bits))
            let found = floatFromHalfBits(bits)
            if expected.isNaN { XCTAssertTrue(found.isNaN, "bits \(bits)"); continue }
            XCTAssertEqual(found.bitPattern, expected.bitPattern, "half bits \(String(bits, radix: 16))")
        }
    }

    func testFloatToHalfRoundsToNearestEvenLikeFloat16() {
        var state: UInt32 = 12345
        var values: [Float] = [0, -0, 1, -1, 65504, 65519, 65520, 1e-8, 5.96e-8, 2.98e-8, 6.1e-5, .infinity, -.infinity,
                               Float(bitPattern: 0x3880_0000), Float(bitPattern: 0x387f_ffff), 0.1, 1.0009765625, 1.00048828125]
        for _ in 0..<200_000 {
            state = state &* 1664525 &+ 1013904223
            values.append(Float(bitPattern: state & 0x7fff_ffff | (state & 1) << 31))
        }
        for v in values where !v.isNaN {
            let expected = Float16(v).bitPattern
            XCTAssertEqual(halfBitsFromFloat(v), expected, "value \(v) (\(String(v.bitPattern, radix: 16)))")
        }
        XCTAssertTrue(floatFromHalfBits(halfBitsFromFloat(.nan)).isNaN)
    }

    func testBFloat16RoundTripAndRounding() {
        XCTAssertEqual(floatFromBFloat16Bits(bfloat16BitsFromFloat(1.5)), 1.5)
        // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to even (1.0).
        XCTAssertEqual(floatFromBFloat16Bits(bfloat16BitsFromFloat(1 + 0x1p-8)), 1.0)
        XCTAssertEqual(floatFromBFloat16Bits(bfloat16BitsFromFloat(1 + 0x1p-8 + 0x1p-12)), 1 + 0x1p-7)
        XCTAssertTrue(floatFromBFloat16Bits(bfloat16BitsFromFloat(.nan)).isNaN)
        XCTAssertEqual(floatFromBFloat16Bits(bfloat16BitsFromFloat(-.infinity)), -.infinity)
        XCTAssertEqual(DType.bf16.byteSize, 2)
        XCTAssertEqual(DType.f32.byteSize, 4)
    }
}
