// Vector building blocks shared by every kernel: the native float vector `VF` of this instruction set,
// unaligned loads and stores, and vectorised exp / sigmoid / erf.
//
// This file is compiled once per ISA target; `VF` is SIMD16<Float> (one zmm) on AVX-512 and
// SIMD8<Float> (one ymm, or two xmm on baseline x86-64) elsewhere. Helpers are written as explicit,
// always-inlined lane operations because some stdlib SIMD conversions do not inline.
import CTesseraCPU
import TesseraCore

#if TESSERA_AVX512
typealias VF = SIMD16<Float>
typealias VU = SIMD16<UInt32>
#else
typealias VF = SIMD8<Float>
typealias VU = SIMD8<UInt32>
#endif

/// Lanes per native vector.
let vectorWidth = VF.scalarCount

@inline(__always) func load(_ p: UnsafePointer<Float>) -> VF {
    UnsafeRawPointer(p).loadUnaligned(as: VF.self)
}
@inline(__always) func load(_ p: UnsafeMutablePointer<Float>) -> VF {
    UnsafeRawPointer(p).loadUnaligned(as: VF.self)
}
@inline(__always) func store(_ v: VF, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: VF.self)
}
@inline(__always) func bits(_ v: VF) -> VU { unsafeBitCast(v, to: VU.self) }
@inline(__always) func floats(_ v: VU) -> VF { unsafeBitCast(v, to: VF.self) }

/// Sum of the lanes.
@inline(__always) func horizontalSum(_ v: VF) -> Float {
    var s: Float = 0
    for i in 0..<VF.scalarCount { s += v[i] }
    return s
}
/// Largest lane.
@inline(__always) func horizontalMax(_ v: VF) -> Float {
    var m = v[0]
    for i in 1..<VF.scalarCount { m = Swift.max(m, v[i]) }
    return m
}

/// Lane-wise minimum / maximum / select, as explicit lane loops (the stdlib's generic versions are
/// not always inlined and then cost a call per vector); LLVM turns these into vminps/vmaxps/vblendvps.
@inline(__always) func vmin(_ a: VF, _ b: VF) -> VF {
    var r = a
    for i in 0..<VF.scalarCount { r[i] = b[i] < a[i] ? b[i] : a[i] }
    return r
}
@inline(__always) func vmax(_ a: VF, _ b: VF) -> VF {
    var r = a
    for i in 0..<VF.scalarCount { r[i] = b[i] > a[i] ? b[i] : a[i] }
    return r
}
/// Lanes of `ifTrue` where `condition[i] < threshold[i]`, else of `ifFalse`.
@inline(__always) func selectLess(_ condition: VF, _ threshold: VF, _ ifTrue: VF, _ ifFalse: VF) -> VF {
    var r = ifFalse
    for i in 0..<VF.scalarCount { r[i] = condition[i] < threshold[i] ? ifTrue[i] : ifFalse[i] }
    return r
}

// MARK: - Half-precision loads

/// `vectorWidth` IEEE halves at `p` as floats.
@inline(__always) func loadHalf(_ p: UnsafeRawPointer) -> VF {
    #if TESSERA_AVX512
    return tessera_load_f16x16_avx512(p.assumingMemoryBound(to: UInt16.self))
    #elseif TESSERA_AVX2
    return tessera_load_f16x8_avx2(p.assumingMemoryBound(to: UInt16.self))
    #else
    // Bit trick: shift exponent+mantissa into place and multiply by 2^112 to rebias (this also
    // normalises subnormals); infinities and NaNs get the all-ones exponent back afterwards.
    let h = p.assumingMemoryBound(to: UInt16.self)
    var u = VU()
    for i in 0..<VU.scalarCount { u[i] = UInt32(h[i]) }
    let sign = (u & 0x8000) &<< 16
    let magnitude = (u & 0x7fff) &<< 13
    var value = bits(floats(magnitude) * VF(repeating: 0x1p112))
    for i in 0..<VU.scalarCount where magnitude[i] >= 0x0f80_0000 { value[i] = magnitude[i] | 0x7f80_0000 }
    return floats(value | sign)
    #endif
}

/// `vectorWidth` bfloat16 values at `p` as floats.
@inline(__always) func loadBFloat16(_ p: UnsafeRawPointer) -> VF {
    let h = p.assumingMemoryBound(to: UInt16.self)
    var u = VU()
    for i in 0..<VU.scalarCount { u[i] = UInt32(h[i]) &<< 16 }
    return floats(u)
}

@inline(__always) func loadHalf(_ p: UnsafeRawPointer, format: HalfFormat) -> VF {
    format == .f16 ? loadHalf(p) : loadBFloat16(p)
}

@inline(__always) func scalarHalf(_ p: UnsafeRawPointer, _ i: Int, format: HalfFormat) -> Float {
    let h = p.load(fromByteOffset: 2 * i, as: UInt16.self)
    return format == .f16 ? floatFromHalfBits(h) : floatFromBFloat16Bits(h)
}

// MARK: - Transcendentals

/// e^x, relative error below 2e-7 over the float range; 0 for x < -87.3 (and -inf), +inf past 88.7.
@_transparent func vexp(_ x: VF) -> VF {
    let clamped = vmax(vmin(x, VF(repeating: 88.3762626647949)), VF(repeating: -87.3365447504))
    // x = n ln2 + r, |r| <= ln2/2; n rounded with the 1.5·2^23 trick so its bits give 2^n directly.
    let magic = VF(repeating: 12582912.0)
    let shifted = clamped * VF(repeating: 1.44269504088896341) + magic
    let n = shifted - magic
    var r = clamped - n * VF(repeating: 0.693359375)
    r = r - n * VF(repeating: -2.12194440e-4)
    // Cephes' minimax polynomial for e^r on [-ln2/2, ln2/2].
    var p = VF(repeating: 1.9875691500e-4)
    p = VF(repeating: 1.3981999507e-3).addingProduct(p, r)
    p = VF(repeating: 8.3334519073e-3).addingProduct(p, r)
    p = VF(repeating: 4.1665795894e-2).addingProduct(p, r)
    p = VF(repeating: 1.6666665459e-1).addingProduct(p, r)
    p = VF(repeating: 5.0000001201e-1).addingProduct(p, r)
    p = p * (r * r) + r + VF(repeating: 1)
    let pow2n = (bits(shifted) &- bits(magic) &+ 127) &<< 23
    return selectLess(x, VF(repeating: -87.3365447504), VF(), p * floats(pow2n))
}

/// 1 / (1 + e^-x)
@_transparent func vsigmoid(_ x: VF) -> VF {
    VF(repeating: 1) / (VF(repeating: 1) + vexp(-x))
}

/// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
@_transparent func verf(_ x: VF) -> VF {
    let a = vmin(selectLess(x, VF(), -x, x), VF(repeating: 9))
    let t = VF(repeating: 1) / (VF(repeating: 1) + VF(repeating: 0.3275911) * a)
    var poly = VF(repeating: 1.061405429)
    poly = VF(repeating: -1.453152027).addingProduct(poly, t)
    poly = VF(repeating: 1.421413741).addingProduct(poly, t)
    poly = VF(repeating: -0.284496736).addingProduct(poly, t)
    poly = VF(repeating: 0.254829592).addingProduct(poly, t)
    poly = poly * t
    let y = VF(repeating: 1) - poly * vexp(-(a * a))
    return selectLess(x, VF(), -y, y)
}
