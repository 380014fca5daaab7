// Integer dot products of repacked quantised weights (see TesseraCore/QuantizedLayout.swift) with
// 8-bit quantised activations: the decode hot loop of a quantised model.
//
// Per group of 4 rows, per block of 32: one activation block, four integer block dots (vpmaddubsw +
// vpmaddwd on AVX2, vpdpbusd with VNNI, plain integer loops on baseline x86-64) turned into floats and
// accumulated with the block's scales d·dx in 8-lane vectors; the minimum's term m·sx is accumulated
// for the 4 rows in one 4-lane vector. Lanes 0-3 of a block dot cover values 0..15 and lanes 4-7
// values 16..31, which is what lets q8 blocks carry a scale per half (Q6_K's 16-value sub-blocks).
import CTesseraCPU
import TesseraCore

typealias V8 = SIMD8<Float>

@inline(__always) private func halves8(_ p: UnsafeRawPointer) -> V8 {
    #if TESSERA_AVX2 || TESSERA_AVX512
    return tessera_load_f16x8_avx2(p.assumingMemoryBound(to: UInt16.self))
    #else
    var r = V8()
    for i in 0..<8 { r[i] = floatFromHalfBits(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    return r
    #endif
}

@inline(__always) private func halves4(_ p: UnsafeRawPointer) -> SIMD4<Float> {
    #if TESSERA_AVX2 || TESSERA_AVX512
    return tessera_load_f16x4_avx2(p.assumingMemoryBound(to: UInt16.self))
    #else
    var r = SIMD4<Float>()
    for i in 0..<4 { r[i] = floatFromHalfBits(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    return r
    #endif
}

/// 16 bytes of nibbles x 32 signed bytes.
@inline(__always) private func dotU4S8(_ w: UnsafeRawPointer, _ x: UnsafePointer<Int8>) -> V8 {
    #if TESSERA_AVX512
    return tessera_dot_u4s8_vnni(w.assumingMemoryBound(to: UInt8.self), x)
    #elseif TESSERA_AVX2
    return tessera_dot_u4s8_avx2(w.assumingMemoryBound(to: UInt8.self), x)
    #else
    let b = w.assumingMemoryBound(to: UInt8.self)
    var low: Int32 = 0, high: Int32 = 0
    for j in 0..<16 {
        low &+= Int32(b[j] & 0xF) &* Int32(x[j])
        high &+= Int32(b[j] >> 4) &* Int32(x[j + 16])
    }
    return V8(Float(low), 0, 0, 0, Float(high), 0, 0, 0)
    #endif
}

/// 32 signed bytes x 32 signed bytes.
@inline(__always) private func dotS8S8(_ w: UnsafeRawPointer, _ x: UnsafePointer<Int8>) -> V8 {
    #if TESSERA_AVX512
    return tessera_dot_s8s8_vnni(w.assumingMemoryBound(to: Int8.self), x)
    #elseif TESSERA_AVX2
    return tessera_dot_s8s8_avx2(w.assumingMemoryBound(to: Int8.self), x)
    #else
    let b = w.assumingMemoryBound(to: Int8.self)
    var low: Int32 = 0, high: Int32 = 0
    for j in 0..<16 {
        low &+= Int32(b[j]) &* Int32(x[j])
        high &+= Int32(b[j + 16]) &* Int32(x[j + 16])
    }
    return V8(Float(low), 0, 0, 0, Float(high), 0, 0, 0)
    #endif
}

/// d0 · (w · x) over values 0..15 + d1 · (w · x) over 16..31, 16-bit activations.
@inline(__always) private func dotS8S16(_ w: UnsafeRawPointer, _ x: UnsafePointer<Int16>, _ d0: Float, _ d1: Float) -> V8 {
    #if TESSERA_AVX2 || TESSERA_AVX512
    return tessera_dot_s8s16_avx2(w.assumingMemoryBound(to: Int8.self), x, d0, d1)
    #else
    let b = w.assumingMemoryBound(to: Int8.self)
    var low: Int32 = 0, high: Int32 = 0
    for j in 0..<16 {
        low &+= Int32(b[j]) &* Int32(x[j])
        high &+= Int32(b[j + 16]) &* Int32(x[j + 16])
    }
    return V8(Float(low) * d0 + Float(high) * d1, 0, 0, 0, 0, 0, 0, 0)
    #endif
}

/// The weights are one sequential stream per thread; asking for the lines ~1 KB ahead keeps more
/// misses in flight than the hardware prefetcher alone does on this loop.
@inline(__always) private func prefetchAhead(_ p: UnsafeRawPointer) {
    tessera_prefetch(p + 1024)
    tessera_prefetch(p + 1088)
}

@inline(__always) private func laneSum(_ v: V8) -> Float {
    ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))
}

/// The four rows' dot products of a group: each accumulator's lanes summed, plus the minimums' term.
@inline(__always) private func storeGroup(_ y: UnsafeMutablePointer<Float>, _ acc0: V8, _ acc1: V8, _ acc2: V8, _ acc3: V8,
                                          _ minimums: SIMD4<Float>) {
    y[0] = laneSum(acc0) + minimums[0]
    y[1] = laneSum(acc1) + minimums[1]
    y[2] = laneSum(acc2) + minimums[2]
    y[3] = laneSum(acc3) + minimums[3]
}

extension ISAKernels {
    public static func quantizeActivations(_ x: UnsafePointer<Float>, count: Int, q: UnsafeMutablePointer<Int8>,
                                           scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>) {
        #if TESSERA_AVX2 || TESSERA_AVX512
        precondition(count % 32 == 0, "activations are quantised in blocks of 32")
        return tessera_quantize8_avx2(x, count / 32, q, scales, sums)
        #else
        quantizeBlocks(x, count: count, levels: 127, scales: scales, sums: sums) { i, v in
            q[i] = Int8(v)
            return Int32(v)
        }
        #endif
    }

    public static func quantizedDot(_ a: QuantizedDotArguments) {
        switch a.format {
        case .q4: dotQ4(a)
        case .q8: dotQ8(a)
        case .q8s: dotQ8S(a)
        }
    }

    public static func quantizeActivations16(_ x: UnsafePointer<Float>, count: Int, q: UnsafeMutablePointer<Int16>,
                                             scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>) {
        #if TESSERA_AVX2 || TESSERA_AVX512
        precondition(count % 32 == 0, "activations are quantised in blocks of 32")
        return tessera_quantize16_avx2(x, count / 32, q, scales, sums)
        #else
        quantizeBlocks(x, count: count, levels: 32767, scales: scales, sums: sums) { i, v in
            q[i] = Int16(v)
            return Int32(v)
        }
        #endif
    }

    /// Per block of 32: dx = max|x| / levels, q = round(x / dx) (ties to even) handed to `store(index, q)`,
    /// which returns it as an integer for the sum sx = dx · Σq.
    @inline(__always) private static func quantizeBlocks(_ x: UnsafePointer<Float>, count: Int, levels: Float,
                                                        scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>,
                                                        store: (Int, Float) -> Int32) {
        precondition(count % 32 == 0, "activations are quantised in blocks of 32")
        for b in 0..<(count / 32) {
            let src = x + 32 * b
            var amax = VF()
            for i in stride(from: 0, to: 32, by: vectorWidth) {
                let v = load(src + i)
                amax = vmax(amax, vmax(v, -v))
            }
            let m = horizontalMax(amax)
            let d = m / levels, inverse = m > 0 ? levels / m : 0
            var total: Int32 = 0
            for i in 0..<32 { total &+= store(32 * b + i, (src[i] * inverse).rounded(.toNearestOrEven)) }
            scales[b] = d
            sums[b] = d * Float(total)
        }
    }

    public static func quantized16Dot(_ a: Quantized16DotArguments) {
        if a.format == .q4 { return quantized16DotQ4(a) }
        #if TESSERA_AVX2 || TESSERA_AVX512
        if a.format == .q8s {
            // The same batched kernel as 4 bits (the token embedding of Q8_0 models is the output head).
            return tessera_q8ss16_tokens_avx2(a.weights.assumingMemoryBound(to: UInt8.self), a.groups, a.blocks, a.tokens, a.x, a.ldx,
                                              a.xScales, a.xSums, a.lds, a.y, a.ldy)
        }
        #endif
        for t in 0..<a.tokens { quantized16DotQ8(a.token(t)) }
    }

    public static var prefersLaneLayout: Bool {
        #if TESSERA_AVX512
        true
        #else
        false
        #endif
    }

    public static func quantized16DotLanes(_ a: Quantized16DotArguments) {
        #if TESSERA_AVX512
        let w = a.weights.assumingMemoryBound(to: UInt8.self)
        if a.format == .q8 {
            tessera_lanes16_q8_tokens_avx512(w, a.groups, a.blocks, a.tokens, a.x, a.ldx, a.xScales, a.xSums, a.lds, a.y, a.ldy)
        } else {
            tessera_lanes16_tokens_avx512(w, LaneLayout.kernelFormat(a.format), a.groups, a.blocks, a.tokens, a.x, a.ldx, a.xScales,
                                          a.xSums, a.lds, a.y, a.ldy)
        }
        #else
        for t in 0..<a.tokens {
            let one = a.token(t)
            portableLanesDot(format: a.format, int8: false, blocks: a.blocks, weights: a.weights, groups: a.groups,
                             x: { Int32(one.x[$0]) }, xScales: one.xScales, xSums: one.xSums, y: one.y)
        }
        #endif
    }

    public static func quantizedDotLanes(_ a: QuantizedDotArguments) {
        precondition(a.format == .q4 || a.xOffsets != nil, "byte-format lanes with 8-bit activations need the bias offsets")
        #if TESSERA_AVX512
        let w = a.weights.assumingMemoryBound(to: UInt8.self)
        switch a.format {
        case .q4:
            tessera_lanes16_q4s8_tokens_avx512(w, a.groups, a.blocks, a.tokens, a.x, a.ldx, a.xScales, a.xSums, a.lds, a.y, a.ldy)
        case .q8s:
            tessera_lanes16_q8s8_tokens_avx512(w, a.groups, a.blocks, a.tokens, a.x, a.ldx, a.xScales, a.xSums, a.xOffsets!, a.lds, a.y,
                                               a.ldy)
        case .q8:
            tessera_lanes16_q88_tokens_avx512(w, a.groups, a.blocks, a.tokens, a.x, a.ldx, a.xScales, a.xSums, a.xOffsets!, a.lds, a.y,
                                              a.ldy)
        }
        #else
        for t in 0..<a.tokens {
            let one = a.token(t)
            portableLanesDot(format: a.format, int8: true, blocks: a.blocks, weights: a.weights, groups: a.groups,
                             x: { Int32(one.x[$0]) }, xScales: one.xScales, xSums: one.xSums, y: one.y)
        }
        #endif
    }

    #if !TESSERA_AVX512
    /// The lane kernels without VNNI (for tests, and a matrix repacked before the kernel set was
    /// switched): per row, one exact integer sum per scale (q8: each half block) scaled per block, then
    /// the minimum's term — the C kernel's sums and steps. Scalar: SIMD16 conversions would instantiate
    /// stdlib specialisations the linker could share with the AVX-512 build (scripts/check-isa.sh).
    private static func portableLanesDot(format: QuantizedFormat, int8: Bool, blocks: Int, weights: UnsafeRawPointer, groups: Int,
                                         x: (Int) -> Int32, xScales: UnsafePointer<Float>, xSums: UnsafePointer<Float>,
                                         y: UnsafeMutablePointer<Float>) {
        let stride = LaneLayout.blockBytes(format), width = format == .q8 ? 16 : 32
        for g in 0..<groups {
            for j in 0..<LaneLayout.rows {
                var acc: Float = 0
                for b in 0..<blocks {
                    let p = weights + (g * blocks + b) * stride
                    for first in Swift.stride(from: 0, to: 32, by: width) {
                        var total: Int32 = 0
                        for i in first..<(first + width) {
                            total &+= LaneLayout.weight(format, p, row: j, value: i, int8: int8).q &* x(32 * b + i)
                        }
                        acc = acc + Float(total) * (LaneLayout.weight(format, p, row: j, value: first, int8: int8).d * xScales[b])
                    }
                    acc = acc + LaneLayout.weight(format, p, row: j, value: 0, int8: int8).m * xSums[b]
                }
                y[16 * g + j] = acc
            }
        }
    }
    #endif

    /// 8-bit weights (q8, q8s) times one token's 16-bit activations.
    private static func quantized16DotQ8(_ a: Quantized16DotArguments) {
        let stride = a.format.groupBlockBytes
        for g in 0..<a.groups {
            var p = a.weights + g * a.blocks * stride
            var acc0 = V8(), acc1 = V8(), acc2 = V8(), acc3 = V8()
            var minimums = SIMD4<Float>()
            for b in 0..<a.blocks {
                prefetchAhead(p)
                let x = a.x + 32 * b, dx = a.xScales[b]
                if a.format == .q8 {
                    let s = halves8(p + 128) * V8(repeating: dx)
                    acc0 += dotS8S16(p, x, s[0], s[1])
                    acc1 += dotS8S16(p + 32, x, s[2], s[3])
                    acc2 += dotS8S16(p + 64, x, s[4], s[5])
                    acc3 += dotS8S16(p + 96, x, s[6], s[7])
                    minimums = minimums.addingProduct(halves4(p + 144), SIMD4(repeating: a.xSums[b]))
                } else {
                    let s = halves4(p + 128) * SIMD4(repeating: dx)
                    acc0 += dotS8S16(p, x, s[0], s[0])
                    acc1 += dotS8S16(p + 32, x, s[1], s[1])
                    acc2 += dotS8S16(p + 64, x, s[2], s[2])
                    acc3 += dotS8S16(p + 96, x, s[3], s[3])
                }
                p += stride
            }
            storeGroup(a.y + 4 * g, acc0, acc1, acc2, acc3, minimums)
        }
    }

    /// 4-bit weights times `a.tokens` tokens. Per block and row: the exact integer dot product I, then
    /// acc = fma(float(I), d·dx, acc) and acc = fma(m, xs, acc) — the same ops for every token however
    /// many run together (the C kernel unpacks each block once for up to four tokens).
    private static func quantized16DotQ4(_ a: Quantized16DotArguments) {
        #if TESSERA_AVX2 || TESSERA_AVX512
        tessera_q4s16_tokens_avx2(a.weights.assumingMemoryBound(to: UInt8.self), a.groups, a.blocks, a.tokens, a.x, a.ldx,
                                  a.xScales, a.xSums, a.lds, a.y, a.ldy)
        #else
        let stride = QuantizedFormat.q4.groupBlockBytes
        for t in 0..<a.tokens {
            let one = a.token(t)
            for g in 0..<a.groups {
                var p = a.weights + g * a.blocks * stride
                var acc = SIMD4<Float>()
                for b in 0..<a.blocks {
                    let x = one.x + 32 * b, dx = one.xScales[b], xs = one.xSums[b]
                    let dm = halves8(p + 64)
                    let nibbles = p.assumingMemoryBound(to: UInt8.self)
                    for r in 0..<4 {
                        var total: Int32 = 0
                        for j in 0..<16 {
                            let byte = nibbles[16 * r + j]
                            total &+= Int32(byte & 0xF) &* Int32(x[j]) &+ Int32(byte >> 4) &* Int32(x[j + 16])
                        }
                        // Not fused: a baseline x86-64 build has no FMA instruction (fma() would be a libm call).
                        acc[r] = acc[r] + Float(total) * (dm[r] * dx)
                        acc[r] = acc[r] + dm[4 + r] * xs
                    }
                    p += stride
                }
                for r in 0..<4 { one.y[4 * g + r] = acc[r] }
            }
        }
        #endif
    }

    private static func dotQ4(_ a: QuantizedDotArguments) {
        let stride = QuantizedFormat.q4.groupBlockBytes
        for g in 0..<a.groups {
            var p = a.weights + g * a.blocks * stride
            var acc0 = V8(), acc1 = V8(), acc2 = V8(), acc3 = V8()
            var minimums = SIMD4<Float>()
            for b in 0..<a.blocks {
                prefetchAhead(p)
                let x = a.x + 32 * b
                let dm = halves8(p + 64)  // d0..d3, m0..m3
                let dx = a.xScales[b]
                acc0 = acc0.addingProduct(dotU4S8(p, x), V8(repeating: dm[0] * dx))
                acc1 = acc1.addingProduct(dotU4S8(p + 16, x), V8(repeating: dm[1] * dx))
                acc2 = acc2.addingProduct(dotU4S8(p + 32, x), V8(repeating: dm[2] * dx))
                acc3 = acc3.addingProduct(dotU4S8(p + 48, x), V8(repeating: dm[3] * dx))
                minimums = minimums.addingProduct(SIMD4(dm[4], dm[5], dm[6], dm[7]), SIMD4(repeating: a.xSums[b]))
                p += stride
            }
            storeGroup(a.y + 4 * g, acc0, acc1, acc2, acc3, minimums)
        }
    }

    private static func dotQ8S(_ a: QuantizedDotArguments) {
        let stride = QuantizedFormat.q8s.groupBlockBytes
        for g in 0..<a.groups {
            var p = a.weights + g * a.blocks * stride
            var acc0 = V8(), acc1 = V8(), acc2 = V8(), acc3 = V8()
            for b in 0..<a.blocks {
                prefetchAhead(p)
                let x = a.x + 32 * b
                let s = halves4(p + 128) * SIMD4(repeating: a.xScales[b])
                acc0 = acc0.addingProduct(dotS8S8(p, x), V8(repeating: s[0]))
                acc1 = acc1.addingProduct(dotS8S8(p + 32, x), V8(repeating: s[1]))
                acc2 = acc2.addingProduct(dotS8S8(p + 64, x), V8(repeating: s[2]))
                acc3 = acc3.addingProduct(dotS8S8(p + 96, x), V8(repeating: s[3]))
                p += stride
            }
            storeGroup(a.y + 4 * g, acc0, acc1, acc2, acc3, SIMD4())
        }
    }

    private static func dotQ8(_ a: QuantizedDotArguments) {
        let stride = QuantizedFormat.q8.groupBlockBytes
        for g in 0..<a.groups {
            var p = a.weights + g * a.blocks * stride
            var acc0 = V8(), acc1 = V8(), acc2 = V8(), acc3 = V8()
            var minimums = SIMD4<Float>()
            for b in 0..<a.blocks {
                prefetchAhead(p)
                let x = a.x + 32 * b
                let s = halves8(p + 128) * V8(repeating: a.xScales[b])  // (row, half) pairs
                acc0 = acc0.addingProduct(dotS8S8(p, x), V8(s[0], s[0], s[0], s[0], s[1], s[1], s[1], s[1]))
                acc1 = acc1.addingProduct(dotS8S8(p + 32, x), V8(s[2], s[2], s[2], s[2], s[3], s[3], s[3], s[3]))
                acc2 = acc2.addingProduct(dotS8S8(p + 64, x), V8(s[4], s[4], s[4], s[4], s[5], s[5], s[5], s[5]))
                acc3 = acc3.addingProduct(dotS8S8(p + 96, x), V8(s[6], s[6], s[6], s[6], s[7], s[7], s[7], s[7]))
                minimums = minimums.addingProduct(halves4(p + 144), SIMD4(repeating: a.xSums[b]))
                p += stride
            }
            storeGroup(a.y + 4 * g, acc0, acc1, acc2, acc3, minimums)
        }
    }
}
