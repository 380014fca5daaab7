// KernelSet: the contract every instruction-set build of the kernels fulfils.
//
// The same kernel sources are compiled three times (baseline x86-64, AVX2+FMA, AVX-512+VNNI), each as
// its own module with one type conforming to this protocol; TesseraKernels picks the best one the CPU
// supports at start-up. Entry points take raw pointers to contiguous f32 data plus sizes: they are the
// hot loops and check nothing beyond debug preconditions. Shape checking, with thrown errors, happens
// one level up in TesseraKernels' Tensor API.

/// C (m x n) = op(A) · op(B), or C += op(A) · op(B) when `accumulate`.
/// op(A) is m x k: A is stored (m x k) with row stride `lda`, or (k x m) when `transposeA`.
/// op(B) is k x n: B is stored (k x n) with row stride `ldb`, or (n x k) when `transposeB` — the layout
/// of a linear layer's weight (out, in), so y = x Wᵀ is `transposeB: true`.
public struct GEMMArguments: @unchecked Sendable {
    public var m: Int, n: Int, k: Int
    public var a: UnsafePointer<Float>, lda: Int, transposeA: Bool
    public var b: UnsafePointer<Float>, ldb: Int, transposeB: Bool
    public var c: UnsafeMutablePointer<Float>, ldc: Int
    public var accumulate: Bool

    public init(m: Int, n: Int, k: Int,
                a: UnsafePointer<Float>, lda: Int? = nil, transposeA: Bool = false,
                b: UnsafePointer<Float>, ldb: Int? = nil, transposeB: Bool = false,
                c: UnsafeMutablePointer<Float>, ldc: Int? = nil, accumulate: Bool = false) {
        self.m = m; self.n = n; self.k = k
        self.a = a; self.lda = lda ?? (transposeA ? m : k); self.transposeA = transposeA
        self.b = b; self.ldb = ldb ?? (transposeB ? k : n); self.transposeB = transposeB
        self.c = c; self.ldc = ldc ?? n
        self.accumulate = accumulate
    }
}

/// 16-bit floating-point weight formats.
public enum HalfFormat: Sendable, Equatable { case f16, bf16 }

/// C (m x n) = A (m x k, f32) · Wᵀ where W is (n x k) in f16 or bf16 with row stride `ldw` elements.
public struct HalfGEMMArguments: @unchecked Sendable {
    public var m: Int, n: Int, k: Int
    public var a: UnsafePointer<Float>, lda: Int
    public var w: UnsafeRawPointer, ldw: Int, format: HalfFormat
    public var c: UnsafeMutablePointer<Float>, ldc: Int
    public var accumulate: Bool

    public init(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int? = nil,
                w: UnsafeRawPointer, ldw: Int? = nil, format: HalfFormat,
                c: UnsafeMutablePointer<Float>, ldc: Int? = nil, accumulate: Bool = false) {
        self.m = m; self.n = n; self.k = k
        self.a = a; self.lda = lda ?? k
        self.w = w; self.ldw = ldw ?? k; self.format = format
        self.c = c; self.ldc = ldc ?? n
        self.accumulate = accumulate
    }
}

/// Rotary position embedding layouts.
public enum RoPELayout: String, Sendable, CaseIterable {
    /// Pairs (x[2i], x[2i+1]) rotate together: GPT-J, Llama checkpoints as GGUF stores them.
    case interleaved
    /// Pairs (x[i], x[i + d/2]) rotate together: GPT-NeoX, HF Llama/Qwen/Gemma ("rotate_half").
    case neox
}

/// Applies RoPE in place to `x`, (tokens, heads, headDim) with rows of `tokenStride` elements between
/// tokens and `headDim` between heads. Only the first `rotaryDims` of each head rotate (partial RoPE).
/// `cos`/`sin` are tables (positions, rotaryDims / 2) built by `RoPETable`; token t uses row positions[t].
public struct RoPEArguments: @unchecked Sendable {
    public var x: UnsafeMutablePointer<Float>
    public var tokens: Int, heads: Int, headDim: Int, tokenStride: Int
    public var rotaryDims: Int
    public var positions: UnsafePointer<Int32>
    public var cos: UnsafePointer<Float>, sin: UnsafePointer<Float>
    public var layout: RoPELayout

    public init(x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, headDim: Int, tokenStride: Int? = nil,
                rotaryDims: Int? = nil, positions: UnsafePointer<Int32>,
                cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, layout: RoPELayout) {
        self.x = x; self.tokens = tokens; self.heads = heads; self.headDim = headDim
        self.tokenStride = tokenStride ?? heads * headDim
        self.rotaryDims = rotaryDims ?? headDim
        self.positions = positions; self.cos = cos; self.sin = sin; self.layout = layout
    }
}

/// Activation functions with one input.
public enum Activation: String, Sendable, CaseIterable {
    case silu
    /// GELU with the tanh approximation (PyTorch `approximate="tanh"`, "gelu_pytorch_tanh").
    case geluTanh
    /// Exact GELU, x·Φ(x) with the error function.
    case geluErf
}

/// The kernels of one instruction-set build. All pointers address contiguous f32 data unless noted;
/// output may alias input where the comment says "in place allowed".
public protocol KernelSet {
    /// "generic", "avx2" or "avx512".
    static var name: String { get }

    // MARK: Matrix products
    static func gemm(_ arguments: GEMMArguments)
    /// y (n) = W (n x k, row stride ldw) · x (k); y += when `accumulate`.
    static func gemv(n: Int, k: Int, w: UnsafePointer<Float>, ldw: Int, x: UnsafePointer<Float>,
                     y: UnsafeMutablePointer<Float>, accumulate: Bool)
    static func gemmHalf(_ arguments: HalfGEMMArguments)
    /// C (m x n) (+)= A (m x k) · Wᵀ, where W (n x k) is made on demand: `rows(r0, count, p0, kc, destination)`
    /// writes W[r0 ..< r0 + count, p0 ..< p0 + kc] as f32 into `destination` (count x kc, row-major). It is
    /// called from the pool's threads, for disjoint blocks. Quantised weights use it: each weight panel is
    /// dequantised while it is packed, and A is packed once. `arguments.b` is not read.
    static func gemmGeneratedWeights(_ arguments: GEMMArguments,
                                     rows: (_ row0: Int, _ count: Int, _ p0: Int, _ kc: Int, _ destination: UnsafeMutablePointer<Float>) -> Void)

    /// y (k) = Wᵀ x = Σᵢ x[i]·W[i, :] for W (n x k, row stride ldw); y += when `accumulate`. Single-threaded
    /// (attention calls it inside its own parallel tasks): the weighted sum of value rows in decode.
    static func gemvTransposed(n: Int, k: Int, w: UnsafePointer<Float>, ldw: Int, x: UnsafePointer<Float>,
                               y: UnsafeMutablePointer<Float>, accumulate: Bool)

    /// Decode scores of a GQA group: y[h·ldy + j] = q_h · w_j for heads h < `heads` (q_h = q + h·ldq) and
    /// key rows j < n (w_j = w + j·ldw), k values each. Single-threaded; one pass over the keys for all
    /// the heads.
    static func groupScores(heads: Int, n: Int, k: Int, q: UnsafePointer<Float>, ldq: Int, w: UnsafePointer<Float>, ldw: Int,
                            y: UnsafeMutablePointer<Float>, ldy: Int)
    /// The group's weighted value sums: y[h·ldy + e] (+ when `accumulate`)= Σ_j x[h·ldx + j] · w[j·ldw + e]
    /// for h < `heads`, e < k, the rows j < n taken in order. Single-threaded; one pass over the values.
    static func groupWeightedSum(heads: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Float>, ldw: Int,
                                 y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool)
    /// `groupScores` over key rows held as IEEE halves (an f16 KV cache), widened as they are read.
    static func groupScoresHalf(heads: Int, n: Int, k: Int, q: UnsafePointer<Float>, ldq: Int, w: UnsafePointer<UInt16>, ldw: Int,
                                y: UnsafeMutablePointer<Float>, ldy: Int)
    /// `groupWeightedSum` over value rows held as IEEE halves.
    static func groupWeightedSumHalf(heads: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<UInt16>, ldw: Int,
                                     y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool)
    /// destination[i] = the IEEE half nearest source[i] (ties to even, overflow to ±inf: `halfBitsFromFloat`).
    /// Single-threaded (the f16 KV cache's writes).
    static func convertToHalf(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<UInt16>, count: Int)

    // MARK: Quantised weights (layouts in QuantizedLayout.swift)
    /// Quantises `count` floats (a multiple of 32) to 8-bit blocks: q (count), scales and sums (count / 32).
    static func quantizeActivations(_ x: UnsafePointer<Float>, count: Int, q: UnsafeMutablePointer<Int8>,
                                    scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>)
    /// Integer dot products of repacked weight rows with one quantised activation vector. Single-threaded.
    static func quantizedDot(_ arguments: QuantizedDotArguments)
    /// Quantises `count` floats to 16-bit blocks of 32: q (count), scales and sums (count / 32).
    static func quantizeActivations16(_ x: UnsafePointer<Float>, count: Int, q: UnsafeMutablePointer<Int16>,
                                      scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>)
    /// The same weights times 16-bit activations. Single-threaded.
    static func quantized16Dot(_ arguments: Quantized16DotArguments)
    /// Whether `quantized16DotLanes` is this set's fastest path (AVX-512 VNNI): the loader then repacks
    /// quantised matrices in the lane layout (LaneLayout).
    static var prefersLaneLayout: Bool { get }
    /// Weights in the lane layout (`arguments.groups` groups of 16 rows) times `tokens` tokens of 16-bit
    /// activations. Single-threaded. A token's result is the same alone or among others; for q4 and
    /// q8s, a row's is the bits `quantized16Dot` gives it in the 4-row layout on AVX2 and AVX-512.
    static func quantized16DotLanes(_ arguments: Quantized16DotArguments)
    /// Weights in their lane layouts for 8-bit activations ("quads"; q8s and q8 biased, with the
    /// arguments' `xOffsets`) times `tokens` tokens of 8-bit activations (`--precision int8`).
    /// Single-threaded; a token's result is the same alone or among others.
    static func quantizedDotLanes(_ arguments: QuantizedDotArguments)

    // MARK: Attention building blocks (single-threaded; rows of `cols` values `ld` apart)
    /// s = softcap(scale · s) in place; softcap 0 means none, else cap · tanh(x / cap).
    static func scaleScores(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int, scale: Float, softcap: Float)
    /// One online-softmax step (flash attention), per row r: m' = max(m[r], maxⱼ s[r,j]);
    /// s[r,j] = exp(s[r,j] - m'); correction[r] = exp(m[r] - m'); l[r] = l[r]·correction[r] + Σⱼ s[r,j];
    /// m[r] = m'. Masked (-inf) scores become 0; a row masked so far keeps m = -inf and correction 1.
    static func onlineSoftmax(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int,
                              rowMax: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>,
                              correction: UnsafeMutablePointer<Float>)

    // MARK: Int8 KV cache (rows of int8 values with one f32 scale per `block` consecutive values)
    /// Quantises `rows` rows of `cols` floats (row stride `ldx`) to int8 with one scale per row:
    /// d = max|x| / 127, q = round(x / d) (ties to even); q rows are `cols` apart. (The KV cache calls it
    /// with rows of one block.)
    static func quantizeRowsInt8(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ldx: Int,
                                 q: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>)
    /// `groupScores` over int8 key rows: row j's value e is s(j, e) · W[j, e], where s(j, e) =
    /// scales[j · scaleStride + e / block]. Single-threaded: the scores of an int8 key chunk in decode.
    static func groupScoresInt8(heads: Int, n: Int, k: Int, q: UnsafePointer<Float>, ldq: Int, w: UnsafePointer<Int8>, ldw: Int,
                                scales: UnsafePointer<Float>, scaleStride: Int, block: Int, y: UnsafeMutablePointer<Float>, ldy: Int)
    /// `groupWeightedSum` over int8 value rows (s as above): y[h·ldy + e] (+)= Σ_j x[h·ldx + j] · s(j, e) · W[j, e].
    static func groupWeightedSumInt8(heads: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Int8>, ldw: Int,
                                     scales: UnsafePointer<Float>, scaleStride: Int, block: Int, y: UnsafeMutablePointer<Float>,
                                     ldy: Int, accumulate: Bool)

    // MARK: Normalisation and softmax (rows of `cols` contiguous values; in place allowed)
    static func softmax(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int)
    /// y = x / sqrt(mean(x²) + eps) * weight
    static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        rows: Int, cols: Int, epsilon: Float)
    /// y = (x - mean) / sqrt(var + eps) * weight + bias (weight/bias optional)
    static func layerNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                          _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, epsilon: Float)
    static func rope(_ arguments: RoPEArguments)

    // MARK: Element-wise (count values; in place allowed)
    static func activation(_ kind: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int)
    /// dx += dy · act′(x): the activation's backward pass (training).
    static func activationGradient(_ kind: Activation, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                   dx: UnsafeMutablePointer<Float>, count: Int)
    /// y = act(gate) * up: SwiGLU with `.silu`, GeGLU with a GELU.
    static func gatedActivation(_ kind: Activation, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                _ y: UnsafeMutablePointer<Float>, count: Int)
    /// y = a + b (the residual connection).
    static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int)

    // MARK: Data movement
    /// rows (ids.count, dim) = table[ids], the table holding `dtype` elements (f32, f16 or bf16).
    static func embeddingGather(table: UnsafeRawPointer, dtype: DType, dim: Int, ids: UnsafePointer<Int32>,
                                count: Int, _ out: UnsafeMutablePointer<Float>)
    /// Converts `count` f16 or bf16 values to f32.
    static func convertToFloat(_ source: UnsafeRawPointer, format: HalfFormat, _ destination: UnsafeMutablePointer<Float>,
                               count: Int)

    // MARK: Hardware probes (for benchmarks)
    /// Runs `iterations` rounds of independent FMAs on registers on every pool thread; returns the FLOPs done.
    static func fmaPeakProbe(iterations: Int) -> Double
    /// Runs the GEMM micro-kernel `calls` times on L1-resident panels on the calling thread; returns the FLOPs.
    static func microKernelProbe(calls: Int) -> Double
    /// Sums `count` floats with as many loads in flight as possible (a STREAM-like read), across the pool.
    static func streamRead(_ x: UnsafePointer<Float>, count: Int) -> Float
}
