// The repacked quantised weight layouts the integer kernels read, and the 8-bit activation blocks
// they multiply with.
//
// A weight matrix (rows = outputs) is cut into groups of 4 rows; for each group, block b (32 values)
// of its 4 rows is stored together, so one pass over a group is one sequential stream that yields 4
// dot products, with each activation block loaded once for 4 rows:
//
//   q4 group-block (80 bytes):  4 x 16 bytes of nibbles (row r at 16·r; low nibbles = values 0..15,
//                               high = 16..31) | 4 f16 scales d | 4 f16 minimums m
//                               value = d·q + m, q in 0...15         (from Q4_0, Q4_1, Q4_K)
//   q8 group-block (152 bytes): 4 x 32 signed bytes | 8 f16 scales (row r: 2r for values 0..15,
//                               2r+1 for 16..31) | 4 f16 minimums
//                               value = d[half]·q + m, q in -128...127 (from Q5_1, Q5_K, Q6_K)
//   q8s group-block (136 bytes): 4 x 32 signed bytes | 4 f16 scales d
//                               value = d·q (from Q8_0 and Q5_0: one scale, no minimum, 6% over Q8_0)
//
// On AVX-512 VNNI, the weights are held instead in the lane layout (LaneLayout below):
// groups of 16 rows whose block b is cut so that, widened to 16 bits, a chunk is one 16-lane vector
// with row j's pair of values in 32-bit lane j; then the 16 rows' f16 scales (and minimums). The same
// bytes a weight as the 4-row layout; the block's sums need no fold (CTesseraCPU.h, lane kernels).
// For 8-bit activations each format has a lane layout of its own ("quads": a vector holds four
// consecutive values of each of the 16 rows, for vpdpbusd); the byte formats' values are stored
// biased to unsigned (q + 128), each sum starting from -128 · Σ xq (`xOffsets`, `biasOffsets`).
//
// Activations x are quantised per block of 32: xq = round(x / dx), dx = max|x| / 127, and
// sx = dx · Σ xq (the minimum's term). The dot product of a row with x is then
//   Σ_blocks  d·dx·Σ(q·xq)  +  m·sx
// with the inner sums in integers (vpmaddubsw / vpdpbusd). The 16-bit variant quantises activations
// to 16 bits instead (vpmaddwd): nearly as cheap, and as accurate as f32 activations for greedy text.
import CTesseraCPU

public enum QuantizedFormat: String, Sendable, Equatable, CaseIterable {
    case q4, q8, q8s

    /// Bytes of one block of 32 values of 4 rows.
    public var groupBlockBytes: Int {
        switch self {
        case .q4: Int(TESSERA_Q4_BLOCK_BYTES)
        case .q8: Int(TESSERA_Q8_BLOCK_BYTES)
        case .q8s: Int(TESSERA_Q8S_BLOCK_BYTES)
        }
    }

    /// Bytes per weight, scales included (for bandwidth figures).
    public var bytesPerWeight: Double { Double(groupBlockBytes) / 128 }
}

/// y[r] = row r · x for the rows of `groups` groups of 4, one activation vector. Single-threaded:
/// callers split groups (and tokens) across threads.
public struct QuantizedDotArguments: @unchecked Sendable {
    public var format: QuantizedFormat
    /// Blocks of 32 per row (columns / 32).
    public var blocks: Int
    /// The first group's first block.
    public var weights: UnsafeRawPointer
    public var groups: Int
    /// (blocks · 32) activation bytes, their scales dx (blocks) and sums sx (blocks).
    public var x: UnsafePointer<Int8>, xScales: UnsafePointer<Float>, xSums: UnsafePointer<Float>
    /// q8s and q8 in their lane layouts (biased bytes, LaneLayout): -128 · Σ x per block (q8s) or per
    /// half block (q8: two a block, token t at xOffsets + 2t · lds), the exact integer the bias adds to
    /// each sum (`LaneLayout.biasOffsets`); nil otherwise.
    public var xOffsets: UnsafePointer<Int32>?
    /// (groups · 4) outputs.
    public var y: UnsafeMutablePointer<Float>
    /// Tokens in one call (the lane kernel): token t's activations are x + t · ldx, its scales and sums
    /// xScales + t · lds and xSums + t · lds, its offsets xOffsets + t · lds · LaneLayout.offsetsPerBlock,
    /// its outputs y + t · ldy.
    public var tokens: Int, ldx: Int, lds: Int, ldy: Int

    public init(format: QuantizedFormat, blocks: Int, weights: UnsafeRawPointer, groups: Int, x: UnsafePointer<Int8>,
                xScales: UnsafePointer<Float>, xSums: UnsafePointer<Float>, xOffsets: UnsafePointer<Int32>? = nil,
                y: UnsafeMutablePointer<Float>, tokens: Int = 1, ldx: Int = 0, lds: Int = 0, ldy: Int = 0) {
        self.tokens = tokens; self.ldx = ldx; self.lds = lds; self.ldy = ldy
        self.format = format; self.blocks = blocks; self.weights = weights; self.groups = groups
        self.x = x; self.xScales = xScales; self.xSums = xSums; self.xOffsets = xOffsets; self.y = y
    }

    /// Token t's arguments on their own.
    public func token(_ t: Int) -> QuantizedDotArguments {
        QuantizedDotArguments(format: format, blocks: blocks, weights: weights, groups: groups, x: x + t * ldx,
                              xScales: xScales + t * lds, xSums: xSums + t * lds,
                              xOffsets: xOffsets.map { $0 + t * lds * LaneLayout.offsetsPerBlock(format) }, y: y + t * ldy)
    }
}

/// As QuantizedDotArguments, with activations quantised to 16 bits per block of 32
/// (dx = max|x| / 32767): 256 times finer than 8 bits, so logits stay within ~1e-3 of f32 activations,
/// at the cost of an integer multiply-add (vpmaddwd) per pair.
public struct Quantized16DotArguments: @unchecked Sendable {
    public var format: QuantizedFormat
    public var blocks: Int
    public var weights: UnsafeRawPointer
    public var groups: Int
    /// Token t's activations are x + t · ldx, its per-block scales and sums xScales + t · lds and
    /// xSums + t · lds, its outputs y + t · ldy.
    public var x: UnsafePointer<Int16>, xScales: UnsafePointer<Float>, xSums: UnsafePointer<Float>
    public var y: UnsafeMutablePointer<Float>
    /// Tokens multiplied by the same weights in one pass (batched decode): the 4-bit kernel unpacks each
    /// block once for up to four of them, and a token's result is the same bits whatever `tokens` is.
    public var tokens: Int
    public var ldx: Int, lds: Int, ldy: Int

    public init(format: QuantizedFormat, blocks: Int, weights: UnsafeRawPointer, groups: Int, x: UnsafePointer<Int16>,
                xScales: UnsafePointer<Float>, xSums: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                tokens: Int = 1, ldx: Int = 0, lds: Int = 0, ldy: Int = 0) {
        self.format = format; self.blocks = blocks; self.weights = weights; self.groups = groups
        self.x = x; self.xScales = xScales; self.xSums = xSums; self.y = y
        self.tokens = tokens; self.ldx = ldx; self.lds = lds; self.ldy = ldy
    }

    /// Token t's arguments on their own.
    public func token(_ t: Int) -> Quantized16DotArguments {
        Quantized16DotArguments(format: format, blocks: blocks, weights: weights, groups: groups, x: x + t * ldx,
                                xScales: xScales + t * lds, xSums: xSums + t * lds, y: y + t * ldy)
    }
}

/// The lane layout (AVX-512 VNNI) of q4, q8s and q8 weights: a group is 16 rows, and its block b
/// (columns 32b ..< 32b + 32) is `blockBytes(format)` bytes at (group · blocks + b) · blockBytes.
/// Byte positions in CTesseraCPU.h (lane kernels).
public enum LaneLayout {
    public static let rows = 16

    /// The C kernels' format number.
    @inlinable public static func kernelFormat(_ format: QuantizedFormat) -> Int32 {
        switch format {
        case .q4: Int32(TESSERA_LANES_Q4)
        case .q8: Int32(TESSERA_LANES_Q8)
        case .q8s: Int32(TESSERA_LANES_Q8S)
        }
    }

    @inlinable public static func blockBytes(_ format: QuantizedFormat) -> Int {
        switch format {
        case .q4: Int(TESSERA_Q4L_BLOCK_BYTES)
        case .q8: Int(TESSERA_Q8ML_BLOCK_BYTES)
        case .q8s: Int(TESSERA_Q8L_BLOCK_BYTES)
        }
    }

    /// Where row j's value i (0 ..< 32) is: a byte (q8s, q8: column pair i / 2, row j, the pair's half),
    /// or for q4 a byte's low or high nibble (chunk i / 4, row j, i % 2; high for i % 4 >= 2). `int8`,
    /// the layouts for 8-bit activations ("quads"): q4's vector (i % 16) / 4, row j, i % 4, high for
    /// i >= 16; q8s's and q8's vector i / 4, row j, i % 4, a biased byte (q + 128).
    @inlinable @inline(__always) public static func valuePosition(_ format: QuantizedFormat, row j: Int, value i: Int,
                                                                  int8: Bool = false) -> (offset: Int, high: Bool) {
        if int8 { return format == .q4 ? (64 * ((i & 15) >> 2) + 4 * j + (i & 3), i >= 16) : (64 * (i >> 2) + 4 * j + (i & 3), false) }
        return format == .q4 ? (32 * (i >> 2) + 2 * j + (i & 1), i & 2 != 0) : (32 * (i >> 1) + 2 * j + (i & 1), false)
    }

    /// Offsets a token's 8-bit activations need with `format`'s lane layout: 0 (q4), one a block (q8s)
    /// or one a half block (q8), per block of 32.
    @inlinable public static func offsetsPerBlock(_ format: QuantizedFormat) -> Int {
        switch format {
        case .q4: 0
        case .q8s: 1
        case .q8: 2
        }
    }

    /// For q8s and q8 with 8-bit activations: -128 · Σ q of each block (`perBlock` 1) or half block
    /// (`perBlock` 2) of `count` activation bytes into `offsets` — what the weights' bias of 128 adds
    /// to each of the kernel's integer sums, taken off first.
    @inlinable public static func biasOffsets(_ q: UnsafePointer<Int8>, count: Int, perBlock: Int,
                                              into offsets: UnsafeMutablePointer<Int32>) {
        let width = 32 / perBlock
        for part in 0..<(count / width) {
            var sum: Int32 = 0
            for i in 0..<width { sum &+= Int32(q[width * part + i]) }
            offsets[part] = -128 * sum
        }
    }

    /// Row j's f16 scale of value i (q8 has one for values 0..15 and one for 16..31).
    @inlinable @inline(__always) public static func scaleOffset(_ format: QuantizedFormat, row j: Int, value i: Int = 0) -> Int {
        switch format {
        case .q4: 256 + 2 * j
        case .q8: (i < 16 ? 512 : 544) + 2 * j
        case .q8s: 512 + 2 * j
        }
    }

    /// Row j's f16 minimum (q4, q8; nil for q8s, which has none).
    @inlinable @inline(__always) public static func minimumOffset(_ format: QuantizedFormat, row j: Int) -> Int? {
        switch format {
        case .q4: 288 + 2 * j
        case .q8: 576 + 2 * j
        case .q8s: nil
        }
    }

    /// Row j's value i of a block as (integer q, scale d, minimum m): the weight is d·q + m.
    @inlinable @inline(__always) public static func weight(_ format: QuantizedFormat, _ p: UnsafeRawPointer, row j: Int, value i: Int,
                                                           int8: Bool = false) -> (q: Int32, d: Float, m: Float) {
        let (offset, high) = valuePosition(format, row: j, value: i, int8: int8)
        let d = floatFromHalfBits(p.loadUnaligned(fromByteOffset: scaleOffset(format, row: j, value: i), as: UInt16.self))
        let m = minimumOffset(format, row: j).map { floatFromHalfBits(p.loadUnaligned(fromByteOffset: $0, as: UInt16.self)) } ?? 0
        if format == .q4 {
            let byte = p.load(fromByteOffset: offset, as: UInt8.self)
            return (Int32(high ? byte >> 4 : byte & 0xF), d, m)
        }
        if int8 { return (Int32(p.load(fromByteOffset: offset, as: UInt8.self)) - 128, d, m) }
        return (Int32(p.load(fromByteOffset: offset, as: Int8.self)), d, m)
    }
}
