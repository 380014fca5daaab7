// CTesseraCPU: a private C shim for Tessera. It offers what Swift cannot spell by itself:
// CPU feature detection (cpuid / __builtin_cpu_supports), a futex for the kernel thread pool,
// plain C11 atomics on raw memory, and a few x86 intrinsics (F16C conversions, VNNI dot products)
// wrapped as static inline functions so that clang can inline them into Swift callers that are
// compiled for the same instruction set. It is an implementation detail; no public Swift API wraps it 1:1.
#ifndef CTESSERA_CPU_H
#define CTESSERA_CPU_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - CPU features

/// Bit set of instruction-set extensions found on this CPU (and enabled by the OS).
enum {
    TESSERA_CPU_SSE42 = 1 << 0,
    TESSERA_CPU_AVX = 1 << 1,
    TESSERA_CPU_AVX2 = 1 << 2,
    TESSERA_CPU_FMA = 1 << 3,
    TESSERA_CPU_F16C = 1 << 4,
    TESSERA_CPU_AVX512F = 1 << 5,
    TESSERA_CPU_AVX512BW = 1 << 6,
    TESSERA_CPU_AVX512VL = 1 << 7,
    TESSERA_CPU_AVX512DQ = 1 << 8,
    TESSERA_CPU_AVX512VNNI = 1 << 9,
    TESSERA_CPU_AVX512BF16 = 1 << 10,
    TESSERA_CPU_AVXVNNI = 1 << 11,
    TESSERA_CPU_BMI2 = 1 << 12,
};

/// The features above, detected once; safe to call from any thread.
uint32_t tessera_cpu_features(void);
/// The CPU's brand string ("AMD EPYC 9R14 ..."), written into `buffer` (at least 49 bytes).
void tessera_cpu_brand(char *buffer, size_t size);
/// The number of CPUs this process may run on (sched_getaffinity), at least 1.
int tessera_available_cpus(void);

// MARK: - Futex and atomics (for the thread pool)

/// Sleeps while `*address == expected` (FUTEX_WAIT_PRIVATE); returns on wake, mismatch or signal.
void tessera_futex_wait(uint32_t *address, uint32_t expected);
/// Wakes up to `count` threads sleeping on `address`.
void tessera_futex_wake(uint32_t *address, int count);

static inline uint32_t tessera_atomic_load_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void tessera_atomic_store_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline int64_t tessera_atomic_load_i64(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void tessera_atomic_store_i64(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
/// Stores `desired` if `*p == expected`; returns whether it did.
static inline int tessera_atomic_compare_exchange_i64(int64_t *p, int64_t expected, int64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
/// Returns the value before the addition.
static inline int64_t tessera_atomic_fetch_add_i64(int64_t *p, int64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static inline void tessera_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Cache prefetch hints (for reading, and for a line about to be written).
static inline void tessera_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
static inline void tessera_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }
/// Prefetch into L2 only (prefetcht1), for data needed soon but not yet: it does not disturb L1.
static inline void tessera_prefetch_l2(const void *p) { __builtin_prefetch(p, 0, 2); }

/// A compiler barrier that keeps a benchmark's result alive.
static inline void tessera_do_not_optimize(const void *p) { __asm__ __volatile__("" : : "r"(p) : "memory"); }

/// A per-thread flag: is this thread running a task of a parallel loop?
int tessera_tls_inside_parallel(void);
void tessera_tls_set_inside_parallel(int value);

// MARK: - Per-thread scratch memory
/// Scratch slots: each thread keeps one growable, 64-byte aligned buffer per slot, so hot kernels do
/// not allocate per call. Slot 0: GEMM packing; slot 1: attention workspaces; slot 2: a prefill chunk's
/// keys and values gathered from KV pages; slot 3: a GEMM task's C block; slot 4: quantised activations
/// of a quantised matrix product.
enum { TESSERA_SCRATCH_GEMM = 0, TESSERA_SCRATCH_ATTENTION = 1, TESSERA_SCRATCH_PAGES = 2, TESSERA_SCRATCH_GEMM_TILE = 3,
       TESSERA_SCRATCH_ACTIVATIONS = 4, TESSERA_SCRATCH_SLOTS = 5 };
/// At least `bytes` bytes, valid until the next call for the same slot on the same thread.
void *tessera_thread_scratch(int slot, size_t bytes);

// MARK: - Allocator control (for memory measurements)
/// Returns freed heap memory to the OS (malloc_trim).
void tessera_malloc_release(void);
/// Fixes glibc's mmap threshold (disabling its growth after large frees), so freed large blocks leave the resident set.
void tessera_malloc_fix_mmap_threshold(int bytes);
/// Asks the kernel to back the 2 MiB-aligned part of [p, p + bytes) with transparent huge pages
/// (madvise MADV_HUGEPAGE; nothing for regions under 4 MiB, and no effect where THP is set to never).
/// Call it before the memory is first touched. Returns 1 when madvise accepted the advice.
int tessera_advise_huge_pages(void *p, size_t bytes);

// MARK: - Vocabulary-sized scans (the sampler; baseline SSE2, four lanes)
/// The first index of the largest of x[0..<n]; NaNs never win (all NaN, or n = 0: 0).
size_t tessera_argmax_f32(const float *x, size_t n);
/// The smallest of the maxima of `blocks` near-equal consecutive blocks of x[0..<n] (1 <= blocks <= n):
/// when every block holds a value that is not NaN, at least `blocks` values are >= it (a block of NaNs
/// gives -inf).
float tessera_min_block_max_f32(const float *x, size_t n, size_t blocks);
/// Σ x[0..<n] (four float lanes per run of 16, added in double).
double tessera_sum_f32(const float *x, size_t n);
/// Writes the indices i (ascending) with lo <= x[i] < hi (hi = +inf: lo <= x[i]) to out (room for n)
/// and returns how many.
size_t tessera_select_range_f32(const float *x, size_t n, float lo, float hi, int64_t *out);
/// The first i with x[0] + ... + x[i] > target (x >= 0); when rounding leaves none, the last i with
/// x[i] > 0 (0 when there is none, or n = 0).
size_t tessera_cumulative_find_f32(const float *x, size_t n, double target);

// MARK: - Timing
/// Monotonic time in nanoseconds.
uint64_t tessera_now_ns(void);

// MARK: - Intrinsics for the AVX2 and AVX-512 kernel sets
// Each carries its own target attribute, so it compiles whatever flags the importing module uses;
// LLVM inlines it only into callers built for a superset of its features (the AVX2/AVX-512 targets).
#if defined(__x86_64__)
#include <immintrin.h>

/// 8 IEEE halves -> 8 floats (vcvtph2ps); Swift sees __m256 as SIMD8<Float>.
__attribute__((target("avx2,f16c"))) static inline __m256 tessera_load_f16x8_avx2(const uint16_t *src) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)src));
}
/// An 8x8 transpose in registers: on return r[c] holds what was column c of the rows r[0..<8].
__attribute__((target("avx2"), always_inline)) static inline void tessera_transpose8_registers(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]), t2 = _mm256_unpacklo_ps(r[2], r[3]),
           t3 = _mm256_unpackhi_ps(r[2], r[3]), t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]),
           t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44),
           u3 = _mm256_shuffle_ps(t1, t3, 0xEE), u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20); r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20); r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31); r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31); r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
/// Transposes an 8x8 block of floats: dst[c * ldd + r] = src[r * lds + c] (for packing (out, in) weights).
__attribute__((target("avx2"))) static inline void tessera_transpose8x8_avx2(const float *src, size_t lds, float *dst, size_t ldd) {
    __m256 r[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * lds);
    tessera_transpose8_registers(r);
    for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + i * ldd, r[i]);
}
/// Packs eight depth steps of a six-row GEMM A panel: dst[l * 6 + r] = src[r * lda + l] for r < 6, l < 8, i.e.
/// 48 contiguous floats. An 8x8 transpose with two zero rows; each output row is stored as a whole vector
/// over the previous row's two padding lanes, and the last one as 4 + 2 floats, so nothing past the
/// 48 floats is written.
__attribute__((target("avx2"))) static inline void tessera_pack_a6x8_avx2(const float *src, size_t lda, float *dst) {
    __m256 r[8];
    for (int i = 0; i < 6; i++) r[i] = _mm256_loadu_ps(src + i * lda);
    r[6] = r[7] = _mm256_setzero_ps();
    tessera_transpose8_registers(r);
    for (int i = 0; i < 7; i++) _mm256_storeu_ps(dst + 6 * i, r[i]);
    _mm_storeu_ps(dst + 42, _mm256_castps256_ps128(r[7]));
    _mm_storel_pi((__m64 *)(dst + 46), _mm256_extractf128_ps(r[7], 1));
}
/// The AVX2 GEMM micro-kernel: C[0..<6, 0..<16] (+)= A panel (kc x 6) · B panel (kc x 16), both packed.
/// Twelve ymm accumulators, one rank-1 update per depth step, four steps per loop turn; the A panel
/// (24 bytes a step) is prefetched ~32 steps ahead so that it streams from L2 without stalling the FMAs,
/// and the C tile is prefetched for writing near the end.
/// With `partial` set, the sums of the earlier depth blocks (a 6 x 16 tile, rows `ldp` apart) are added
/// before the store — C (+)= (A·B + partial) — so the last depth block writes C directly and no separate
/// pass copies a summing tile out.
__attribute__((target("avx2,fma"))) static inline void tessera_gemm_6x16_avx2(long kc, const float *a, const float *b,
                                                                           float *c, long ldc, int accumulate,
                                                                           const float *partial, long ldp) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define TESSERA_GEMM_STEP(s) do { \
        __m256 b0 = _mm256_loadu_ps(b + 16 * (s)), b1 = _mm256_loadu_ps(b + 16 * (s) + 8), av; \
        av = _mm256_broadcast_ss(a + 6 * (s));     c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01); \
        av = _mm256_broadcast_ss(a + 6 * (s) + 1); c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11); \
        av = _mm256_broadcast_ss(a + 6 * (s) + 2); c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21); \
        av = _mm256_broadcast_ss(a + 6 * (s) + 3); c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31); \
        av = _mm256_broadcast_ss(a + 6 * (s) + 4); c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41); \
        av = _mm256_broadcast_ss(a + 6 * (s) + 5); c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51); \
    } while (0)
    long k = kc;
    long head = kc > 24 ? kc - 24 : 0;
    // Writing C itself (not a tile in L2): ask for its lines now, a whole call ahead of the stores.
    if (partial) for (int r = 0; r < 6; r++) { __builtin_prefetch(c + r * ldc, 1, 3); __builtin_prefetch(c + r * ldc + 15, 1, 3); }
    while (head >= 4) {
        __builtin_prefetch(a + 192, 0, 3); __builtin_prefetch(a + 208, 0, 3);
        TESSERA_GEMM_STEP(0); TESSERA_GEMM_STEP(1); TESSERA_GEMM_STEP(2); TESSERA_GEMM_STEP(3);
        a += 24; b += 64; head -= 4; k -= 4;
    }
    for (int r = 0; r < 6; r++) { __builtin_prefetch(c + r * ldc, 1, 3); __builtin_prefetch(c + r * ldc + 15, 1, 3); }
    while (k >= 4) {
        TESSERA_GEMM_STEP(0); TESSERA_GEMM_STEP(1); TESSERA_GEMM_STEP(2); TESSERA_GEMM_STEP(3);
        a += 24; b += 64; k -= 4;
    }
    while (k > 0) { TESSERA_GEMM_STEP(0); a += 6; b += 16; k -= 1; }
#undef TESSERA_GEMM_STEP
#define TESSERA_GEMM_ROW(r, v0, v1) do { \
        float *p = c + (r) * ldc; \
        if (partial) { v0 = _mm256_add_ps(v0, _mm256_loadu_ps(partial + (r) * ldp)); v1 = _mm256_add_ps(v1, _mm256_loadu_ps(partial + (r) * ldp + 8)); } \
        if (accumulate) { v0 = _mm256_add_ps(v0, _mm256_loadu_ps(p)); v1 = _mm256_add_ps(v1, _mm256_loadu_ps(p + 8)); } \
        _mm256_storeu_ps(p, v0); _mm256_storeu_ps(p + 8, v1); \
    } while (0)
    TESSERA_GEMM_ROW(0, c00, c01); TESSERA_GEMM_ROW(1, c10, c11); TESSERA_GEMM_ROW(2, c20, c21);
    TESSERA_GEMM_ROW(3, c30, c31); TESSERA_GEMM_ROW(4, c40, c41); TESSERA_GEMM_ROW(5, c50, c51);
#undef TESSERA_GEMM_ROW
}
/// The AVX-512 micro-kernel: the same 6-row tile, 32 columns wide (12 zmm accumulators), same
/// arguments and order of operations as tessera_gemm_6x16_avx2. Written in C for the same reason: the
/// Swift kernel, inlined into the GEMM's task closure, ran at 0.3 of the FMA peak (Zen 4) where it runs
/// at 1.0 alone.
__attribute__((target("avx512f"))) static inline void tessera_gemm_6x32_avx512(long kc, const float *a, const float *b,
                                                                            float *c, long ldc, int accumulate,
                                                                            const float *partial, long ldp) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define TESSERA_GEMM_STEP(s) do { \
        __m512 b0 = _mm512_loadu_ps(b + 32 * (s)), b1 = _mm512_loadu_ps(b + 32 * (s) + 16), av; \
        av = _mm512_set1_ps(a[6 * (s)]);     c00 = _mm512_fmadd_ps(av, b0, c00); c01 = _mm512_fmadd_ps(av, b1, c01); \
        av = _mm512_set1_ps(a[6 * (s) + 1]); c10 = _mm512_fmadd_ps(av, b0, c10); c11 = _mm512_fmadd_ps(av, b1, c11); \
        av = _mm512_set1_ps(a[6 * (s) + 2]); c20 = _mm512_fmadd_ps(av, b0, c20); c21 = _mm512_fmadd_ps(av, b1, c21); \
        av = _mm512_set1_ps(a[6 * (s) + 3]); c30 = _mm512_fmadd_ps(av, b0, c30); c31 = _mm512_fmadd_ps(av, b1, c31); \
        av = _mm512_set1_ps(a[6 * (s) + 4]); c40 = _mm512_fmadd_ps(av, b0, c40); c41 = _mm512_fmadd_ps(av, b1, c41); \
        av = _mm512_set1_ps(a[6 * (s) + 5]); c50 = _mm512_fmadd_ps(av, b0, c50); c51 = _mm512_fmadd_ps(av, b1, c51); \
    } while (0)
    long k = kc;
    long head = kc > 24 ? kc - 24 : 0;
    if (partial) for (int r = 0; r < 6; r++) { __builtin_prefetch(c + r * ldc, 1, 3); __builtin_prefetch(c + r * ldc + 31, 1, 3); }
    while (head >= 4) {
        __builtin_prefetch(a + 192, 0, 3); __builtin_prefetch(a + 208, 0, 3);
        TESSERA_GEMM_STEP(0); TESSERA_GEMM_STEP(1); TESSERA_GEMM_STEP(2); TESSERA_GEMM_STEP(3);
        a += 24; b += 128; head -= 4; k -= 4;
    }
    for (int r = 0; r < 6; r++) { __builtin_prefetch(c + r * ldc, 1, 3); __builtin_prefetch(c + r * ldc + 31, 1, 3); }
    while (k >= 4) {
        TESSERA_GEMM_STEP(0); TESSERA_GEMM_STEP(1); TESSERA_GEMM_STEP(2); TESSERA_GEMM_STEP(3);
        a += 24; b += 128; k -= 4;
    }
    while (k > 0) { TESSERA_GEMM_STEP(0); a += 6; b += 32; k -= 1; }
#undef TESSERA_GEMM_STEP
#define TESSERA_GEMM_ROW(r, v0, v1) do { \
        float *p = c + (r) * ldc; \
        if (partial) { v0 = _mm512_add_ps(v0, _mm512_loadu_ps(partial + (r) * ldp)); v1 = _mm512_add_ps(v1, _mm512_loadu_ps(partial + (r) * ldp + 16)); } \
        if (accumulate) { v0 = _mm512_add_ps(v0, _mm512_loadu_ps(p)); v1 = _mm512_add_ps(v1, _mm512_loadu_ps(p + 16)); } \
        _mm512_storeu_ps(p, v0); _mm512_storeu_ps(p + 16, v1); \
    } while (0)
    TESSERA_GEMM_ROW(0, c00, c01); TESSERA_GEMM_ROW(1, c10, c11); TESSERA_GEMM_ROW(2, c20, c21);
    TESSERA_GEMM_ROW(3, c30, c31); TESSERA_GEMM_ROW(4, c40, c41); TESSERA_GEMM_ROW(5, c50, c51);
#undef TESSERA_GEMM_ROW
}
/// 16 IEEE halves -> 16 floats; Swift sees __m512 as SIMD16<Float>.
__attribute__((target("avx512f"))) static inline __m512 tessera_load_f16x16_avx512(const uint16_t *src) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)src));
}

// MARK: Integer dot products of quantised blocks (32 weights x 32 int8 activations)
// Each returns 8 partial sums as floats: lanes 0-3 cover values 0..15, lanes 4-7 values 16..31, so a
// per-16 scale can be applied lane-wise.

/// 4 halves -> 4 floats.
__attribute__((target("avx2,f16c"))) static inline __m128 tessera_load_f16x4_avx2(const uint16_t *src) {
    return _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)src));
}
/// Unsigned nibbles (16 bytes: low nibbles are values 0..15, high nibbles 16..31) x signed bytes.
__attribute__((target("avx2"))) static inline __m256 tessera_dot_u4s8_avx2(const uint8_t *w, const int8_t *x) {
    __m128i packed = _mm_loadu_si128((const __m128i *)w);
    __m256i nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
    __m256i products = _mm256_maddubs_epi16(nibbles, _mm256_loadu_si256((const __m256i *)x));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(products, _mm256_set1_epi16(1)));
}
/// Signed bytes x signed bytes (maddubs needs one unsigned side: |w| and x with w's sign).
__attribute__((target("avx2"))) static inline __m256 tessera_dot_s8s8_avx2(const int8_t *w, const int8_t *x) {
    __m256i wv = _mm256_loadu_si256((const __m256i *)w), xv = _mm256_loadu_si256((const __m256i *)x);
    __m256i products = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(products, _mm256_set1_epi16(1)));
}

// MARK: Quantised groups times the 16-bit activations of several tokens (batched decode)
/// Bytes of one group block (4 rows x 32 weights) in each format; QuantizedFormat.groupBlockBytes reads
/// these, so the Swift packer and these kernels cannot disagree.
enum { TESSERA_Q4_BLOCK_BYTES = 80, TESSERA_Q8S_BLOCK_BYTES = 136, TESSERA_Q8_BLOCK_BYTES = 152 };
// A 4-bit group block is 80 bytes: 4 rows x 16 bytes of nibbles (low nibbles values 0..15, high
// 16..31), then 4 f16 scales d and 4 f16 minimums m; a symmetric 8-bit one (q8s) is 4 rows x 32 signed
// bytes and 4 f16 scales. Row r, token t: y = Σ_b d·dx·I (+ m·xs for 4 bits), where I is the block's
// exact integer dot product. Per block the four rows' 8-lane madd sums are folded exactly (unpacks and
// adds, then the two 128-bit halves), so one cvt and one fma serve four rows, and the unpacked weights
// serve up to four tokens. Every token goes through the same float ops in the same order
// (acc = fma(float(I), d·dx, acc); acc = fma(m, xs, acc)) whether it runs alone, in a pair or in a quad,
// so a token's result never depends on the batch around it.

/// The four rows' exact block sums for one token: [r0 r1 r2 r3 | r0 r1 r2 r3] (lanes 0-3 + lanes 4-7).
__attribute__((target("avx2"))) static inline __m256i tessera_q16_rowsums_avx2(const __m256i *u, const int16_t *x) {
    __m256i xl = _mm256_loadu_si256((const __m256i *)x), xh = _mm256_loadu_si256((const __m256i *)(x + 16));
    __m256i s0 = _mm256_add_epi32(_mm256_madd_epi16(u[0], xl), _mm256_madd_epi16(u[1], xh));
    __m256i s1 = _mm256_add_epi32(_mm256_madd_epi16(u[2], xl), _mm256_madd_epi16(u[3], xh));
    __m256i s2 = _mm256_add_epi32(_mm256_madd_epi16(u[4], xl), _mm256_madd_epi16(u[5], xh));
    __m256i s3 = _mm256_add_epi32(_mm256_madd_epi16(u[6], xl), _mm256_madd_epi16(u[7], xh));
    // Fold to [r0 r1 r2 r3 | r0 r1 r2 r3] with unpacks and adds (vphaddd is slower on Zen 3).
    __m256i a = _mm256_add_epi32(_mm256_unpacklo_epi32(s0, s1), _mm256_unpackhi_epi32(s0, s1));
    __m256i b = _mm256_add_epi32(_mm256_unpacklo_epi32(s2, s3), _mm256_unpackhi_epi32(s2, s3));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
}
/// Two tokens' 4-row sums folded into one vector [t0 r0..r3 | t1 r0..r3] and accumulated (the minimums'
/// term only for 4-bit weights).
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 tessera_q16_pair_avx2(
    const __m256i *u, __m128 d, __m128 m, const int q8s, const int16_t *x0, const int16_t *x1, const float *dx0, const float *dx1,
    const float *xs0, const float *xs1, __m256 acc) {
    __m256i h = tessera_q16_rowsums_avx2(u, x0), g = tessera_q16_rowsums_avx2(u, x1);
    __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(h, g, 0x20), _mm256_permute2x128_si256(h, g, 0x31));
    __m256 scale = _mm256_mul_ps(_mm256_set_m128(d, d), _mm256_set_m128(_mm_broadcast_ss(dx1), _mm_broadcast_ss(dx0)));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc);
    if (q8s) return acc;
    return _mm256_fmadd_ps(_mm256_set_m128(m, m), _mm256_set_m128(_mm_broadcast_ss(xs1), _mm_broadcast_ss(xs0)), acc);
}
/// One token's 4-row sums, the same ops lane for lane as one half of the pair.
__attribute__((target("avx2,fma"), always_inline)) static inline __m128 tessera_q16_single_avx2(
    const __m256i *u, __m128 d, __m128 m, const int q8s, const int16_t *x, const float *dx, const float *xs, __m128 acc) {
    __m256i h = tessera_q16_rowsums_avx2(u, x);
    __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sums), _mm_mul_ps(d, _mm_broadcast_ss(dx)), acc);
    if (q8s) return acc;
    return _mm_fmadd_ps(m, _mm_broadcast_ss(xs), acc);
}
/// Unpacks a block's four rows to 16-bit lanes (u[2r] values 0..15, u[2r+1] values 16..31) and its
/// scales d (and, for 4-bit weights, minimums m).
__attribute__((target("avx2,f16c"), always_inline)) static inline void tessera_q16_unpack_avx2(const uint8_t *p, const int q8s, __m256i *u,
                                                                                              __m128 *d, __m128 *m) {
    if (q8s) {
        for (int r = 0; r < 4; r++) {
            u[2 * r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 32 * r)));
            u[2 * r + 1] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 32 * r + 16)));
        }
        *d = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(p + 128)));
        *m = _mm_setzero_ps();
        return;
    }
    const __m128i mask = _mm_set1_epi8(0x0F);
    for (int r = 0; r < 4; r++) {
        __m128i packed = _mm_loadu_si128((const __m128i *)(p + 16 * r));
        u[2 * r] = _mm256_cvtepu8_epi16(_mm_and_si128(packed, mask));
        u[2 * r + 1] = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), mask));
    }
    __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 64)));
    *d = _mm256_castps256_ps128(dm);
    *m = _mm256_extractf128_ps(dm, 1);
}
/// One group's blocks times `pairs` pairs of tokens (0-2) and then `single` more token (0 or 1), the
/// weights unpacked once per block for all of them. Token t reads x + t·ldx, dx + t·lds, xs + t·lds
/// and writes its four rows at y + t·ldy. (Called with constants, so the loops unroll.)
__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void tessera_q16_pass_avx2(
    const uint8_t *wg, const int q8s, size_t blocks, const int pairs, const int single, const int16_t *x, size_t ldx,
    const float *dx, const float *xs, size_t lds, float *y, size_t ldy) {
    const size_t stride = q8s ? TESSERA_Q8S_BLOCK_BYTES : TESSERA_Q4_BLOCK_BYTES;
    __m256 a = _mm256_setzero_ps(), c = _mm256_setzero_ps();
    __m128 e = _mm_setzero_ps();
    const int16_t *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx, *xe = x + 2 * (size_t)pairs * ldx;
    const float *d0 = dx, *d1 = dx + lds, *d2 = dx + 2 * lds, *d3 = dx + 3 * lds, *de = dx + 2 * (size_t)pairs * lds;
    const float *s0 = xs, *s1 = xs + lds, *s2 = xs + 2 * lds, *s3 = xs + 3 * lds, *se = xs + 2 * (size_t)pairs * lds;
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *p = wg + b * stride;
        __builtin_prefetch(p + 1024);
        __m256i u[8];
        __m128 d, m;
        tessera_q16_unpack_avx2(p, q8s, u, &d, &m);
        if (pairs >= 1) a = tessera_q16_pair_avx2(u, d, m, q8s, x0 + 32 * b, x1 + 32 * b, d0 + b, d1 + b, s0 + b, s1 + b, a);
        if (pairs >= 2) c = tessera_q16_pair_avx2(u, d, m, q8s, x2 + 32 * b, x3 + 32 * b, d2 + b, d3 + b, s2 + b, s3 + b, c);
        if (single) e = tessera_q16_single_avx2(u, d, m, q8s, xe + 32 * b, de + b, se + b, e);
    }
    if (pairs >= 1) {
        _mm_storeu_ps(y, _mm256_castps256_ps128(a));
        _mm_storeu_ps(y + ldy, _mm256_extractf128_ps(a, 1));
    }
    if (pairs >= 2) {
        _mm_storeu_ps(y + 2 * ldy, _mm256_castps256_ps128(c));
        _mm_storeu_ps(y + 3 * ldy, _mm256_extractf128_ps(c, 1));
    }
    if (single) _mm_storeu_ps(y + 2 * (size_t)pairs * ldy, e);
}
/// `groups` groups of `blocks` blocks (consecutive) times `tokens` tokens. Token t reads x + t·ldx
/// (32·blocks values), dx + t·lds and xs + t·lds (one scale and one sum per block) and writes y + t·ldy
/// (4·groups rows). Tokens go four at a time through each group's blocks, then two, then one.
__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void tessera_q16_tokens_avx2(
    const uint8_t *w, const int q8s, size_t groups, size_t blocks, size_t tokens, const int16_t *x, size_t ldx, const float *dx,
    const float *xs, size_t lds, float *y, size_t ldy) {
    const size_t stride = q8s ? TESSERA_Q8S_BLOCK_BYTES : TESSERA_Q4_BLOCK_BYTES;
    for (size_t g = 0; g < groups; g++) {
        const uint8_t *wg = w + g * blocks * stride;
        size_t t = 0;
        for (; t + 4 <= tokens; t += 4) {
            tessera_q16_pass_avx2(wg, q8s, blocks, 2, 0, x + t * ldx, ldx, dx + t * lds, xs + t * lds, lds, y + t * ldy + 4 * g, ldy);
        }
        const size_t rest = tokens - t;
        if (rest == 3) {
            tessera_q16_pass_avx2(wg, q8s, blocks, 1, 1, x + t * ldx, ldx, dx + t * lds, xs + t * lds, lds, y + t * ldy + 4 * g, ldy);
        } else if (rest == 2) {
            tessera_q16_pass_avx2(wg, q8s, blocks, 1, 0, x + t * ldx, ldx, dx + t * lds, xs + t * lds, lds, y + t * ldy + 4 * g, ldy);
        } else if (rest == 1) {
            tessera_q16_pass_avx2(wg, q8s, blocks, 0, 1, x + t * ldx, ldx, dx + t * lds, xs + t * lds, lds, y + t * ldy + 4 * g, ldy);
        }
    }
}
/// 4-bit groups (80 bytes a block: 4 x 16 bytes of nibbles, 4 f16 scales, 4 f16 minimums).
__attribute__((target("avx2,fma,f16c"))) static inline void tessera_q4s16_tokens_avx2(
    const uint8_t *w, size_t groups, size_t blocks, size_t tokens, const int16_t *x, size_t ldx, const float *dx,
    const float *xs, size_t lds, float *y, size_t ldy) {
    tessera_q16_tokens_avx2(w, 0, groups, blocks, tokens, x, ldx, dx, xs, lds, y, ldy);
}
/// Symmetric 8-bit groups (136 bytes a block: 4 x 32 signed bytes, 4 f16 scales; no minimums).
__attribute__((target("avx2,fma,f16c"))) static inline void tessera_q8ss16_tokens_avx2(
    const uint8_t *w, size_t groups, size_t blocks, size_t tokens, const int16_t *x, size_t ldx, const float *dx,
    const float *xs, size_t lds, float *y, size_t ldy) {
    tessera_q16_tokens_avx2(w, 1, groups, blocks, tokens, x, ldx, dx, xs, lds, y, ldy);
}
// MARK: Activations quantised to 8 or 16 bits per block of 32
/// One block of 32 floats: m = max|x|, q = round(x · (levels / m)) (ties to even; 0 when m = 0) in
/// i[0..3] (8 values each), and the scale d = m / levels and sum d · Σq — the ops of the Swift
/// quantizeBlocks, so the bits are the same.
__attribute__((target("avx2"), always_inline)) static inline void tessera_quantize_block_avx2(const float *src, float levels,
                                                                                              __m256i *i, float *scale, float *sum) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v0 = _mm256_loadu_ps(src), v1 = _mm256_loadu_ps(src + 8), v2 = _mm256_loadu_ps(src + 16), v3 = _mm256_loadu_ps(src + 24);
    __m256 a = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float m = _mm_cvtss_f32(h);
    const __m256 s = _mm256_set1_ps(m > 0 ? levels / m : 0.0f);
    i[0] = _mm256_cvtps_epi32(_mm256_mul_ps(v0, s));
    i[1] = _mm256_cvtps_epi32(_mm256_mul_ps(v1, s));
    i[2] = _mm256_cvtps_epi32(_mm256_mul_ps(v2, s));
    i[3] = _mm256_cvtps_epi32(_mm256_mul_ps(v3, s));
    __m256i t = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
    __m128i u = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0x4E));
    u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0xB1));
    const float d = m / levels;
    *scale = d;
    *sum = d * (float)_mm_cvtsi128_si32(u);
}
/// Per block b of 32 floats, 16-bit q (levels 32767), scales[b] and sums[b].
__attribute__((target("avx2"))) static inline void tessera_quantize16_avx2(const float *x, size_t blocks, int16_t *q, float *scales,
                                                                           float *sums) {
    for (size_t b = 0; b < blocks; b++) {
        __m256i i[4];
        tessera_quantize_block_avx2(x + 32 * b, 32767.0f, i, scales + b, sums + b);
        // packs works within 128-bit halves: [0-3 8-11 | 4-7 12-15] -> reorder the quadwords.
        _mm256_storeu_si256((__m256i *)(q + 32 * b), _mm256_permute4x64_epi64(_mm256_packs_epi32(i[0], i[1]), 0xD8));
        _mm256_storeu_si256((__m256i *)(q + 32 * b + 16), _mm256_permute4x64_epi64(_mm256_packs_epi32(i[2], i[3]), 0xD8));
    }
}
/// Per block b of 32 floats, 8-bit q (levels 127), scales[b] and sums[b].
__attribute__((target("avx2"))) static inline void tessera_quantize8_avx2(const float *x, size_t blocks, int8_t *q, float *scales,
                                                                          float *sums) {
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t b = 0; b < blocks; b++) {
        __m256i i[4];
        tessera_quantize_block_avx2(x + 32 * b, 127.0f, i, scales + b, sums + b);
        // Two packs leave the four 4-value runs of each vector interleaved by 128-bit halves.
        __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
        _mm256_storeu_si256((__m256i *)(q + 32 * b), _mm256_permutevar8x32_epi32(bytes, order));
    }
}

// MARK: Weights with rows in the vector lanes (AVX-512 VNNI), 16-bit activations
/// Bytes of one lane group-block (16 rows x 32 weights, then their f16 scales, and for 4 bits minimums).
enum { TESSERA_Q8L_BLOCK_BYTES = 544, TESSERA_Q4L_BLOCK_BYTES = 320, TESSERA_Q8ML_BLOCK_BYTES = 608 };
/// The lane formats (the `format` argument of the kernels below).
enum { TESSERA_LANES_Q8S = 0, TESSERA_LANES_Q4 = 1, TESSERA_LANES_Q8 = 2 };
/// Bytes of one group-block of lane format `format` (a constant where the kernels inline it).
__attribute__((always_inline)) static inline size_t tessera_lane_block_bytes(const int format) {
    return format == TESSERA_LANES_Q4 ? TESSERA_Q4L_BLOCK_BYTES : format == TESSERA_LANES_Q8 ? TESSERA_Q8ML_BLOCK_BYTES
                                                                                            : TESSERA_Q8L_BLOCK_BYTES;
}
// A lane group-block holds block b of 16 rows so that a 16-bit vector of it has row j in 32-bit lane
// j, as the pair of values vpdpwssd multiplies with a broadcast pair of the token's: sixteen of them sum
// the block for 16 rows with no fold, and a cvt, a mul and an fma or two scale it.
//   q8s (544 bytes): chunk p = 0..15 (32 bytes) holds each row j's values 2p, 2p+1 at 32p + 2j;
//                    row j's f16 scale d at 512 + 2j.                    value = d·q
//   q4  (320 bytes): chunk c = 0..7 holds at 32c + 2j + e the nibbles of row j's values 4c + e (low)
//                    and 4c + 2 + e (high), e = 0, 1; f16 d at 256 + 2j, f16 minimum m at 288 + 2j.
//                                                                        value = d·q + m
//   q8  (608 bytes): chunks as q8s; row j's f16 scales of values 0..15 at 512 + 2j, of 16..31 at
//                    544 + 2j; f16 minimum at 576 + 2j.                  value = d[half]·q + m
// Zero-extended to 16 bits a q4 chunk masks to the pairs of 4c and shifts right 4 to those of 4c + 2.
// Per row and token the float ops are acc = fma(float(I), d·dx, acc) for each scale's exact integer
// sum I (one, or the two halves for q8), then acc = fma(m, xs, acc) — those of the 4-row kernels above
// for q4 and q8s, so a row's result there is the same bits from either layout — and a token's result
// is the same whatever the number of tokens. (q8 has an entry point of its own: with its eight
// variants in the same function as the sixteen of q4 and q8s, the compiler no longer kept the
// tokens' sums in registers.)

/// One 16-row group's blocks times `n` tokens (1-8, a constant where inlined); each block is
/// unpacked once for the n tokens.
__attribute__((target("avx512f,avx512bw,avx512vnni,f16c,fma"), always_inline)) static inline void tessera_lanes16_pass(
    const uint8_t *wg, const int format, size_t blocks, const int n, const int16_t *x, size_t ldx, const float *dx, const float *xs,
    size_t lds, float *y, size_t ldy) {
    const int q4 = format == TESSERA_LANES_Q4, q8 = format == TESSERA_LANES_Q8;
    const size_t stride = tessera_lane_block_bytes(format);
    __m512 acc[8];
    for (int t = 0; t < n; t++) acc[t] = _mm512_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *p = wg + b * stride;
        // The weights are one sequential stream: every line of the block two ahead (~1 KB).
        for (size_t o = 0; o < stride; o += 64) __builtin_prefetch(p + 2 * stride + o);
        // Up to 3 tokens, two sums a token (even and odd pairs), added at the end: one chain of
        // sixteen vpdpwssd would wait on their latency.
        __m512i s[8], z[8];
        for (int t = 0; t < n; t++) s[t] = z[t] = _mm512_setzero_si512();
        const int16_t *xb = x + 32 * b;
        if (q4) {
            const __m512i mask = _mm512_set1_epi16(0x0F);
            for (int c = 0; c < 8; c++) {
                const __m512i v = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(p + 32 * c)));
                const __m512i lo = _mm512_and_si512(v, mask), hi = _mm512_srli_epi16(v, 4);
                for (int t = 0; t < n; t++) {
                    int32_t a, e;
                    __builtin_memcpy(&a, xb + t * ldx + 4 * c, 4);
                    __builtin_memcpy(&e, xb + t * ldx + 4 * c + 2, 4);
                    s[t] = _mm512_dpwssd_epi32(s[t], lo, _mm512_set1_epi32(a));
                    if (n <= 3) z[t] = _mm512_dpwssd_epi32(z[t], hi, _mm512_set1_epi32(e));
                    else s[t] = _mm512_dpwssd_epi32(s[t], hi, _mm512_set1_epi32(e));
                }
            }
        } else {
            for (int k = 0; k < 16; k++) {
                if (q8 && k == 8) {
                    // q8: the first half's sums scaled by their own d before the second half's begin.
                    if (n <= 3) for (int t = 0; t < n; t++) s[t] = _mm512_add_epi32(s[t], z[t]);
                    const __m512 d0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 512)));
                    for (int t = 0; t < n; t++) {
                        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t]), _mm512_mul_ps(d0, _mm512_set1_ps(dx[t * lds + b])), acc[t]);
                        s[t] = z[t] = _mm512_setzero_si512();
                    }
                }
                const __m512i w = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(p + 32 * k)));
                for (int t = 0; t < n; t++) {
                    int32_t pair;
                    __builtin_memcpy(&pair, xb + t * ldx + 2 * k, 4);
                    if (n <= 3 && (k & 1)) z[t] = _mm512_dpwssd_epi32(z[t], w, _mm512_set1_epi32(pair));
                    else s[t] = _mm512_dpwssd_epi32(s[t], w, _mm512_set1_epi32(pair));
                }
            }
        }
        if (n <= 3) for (int t = 0; t < n; t++) s[t] = _mm512_add_epi32(s[t], z[t]);
        // The (last) scale: q4's, q8s's, or that of q8's second half.
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + (q4 ? 256 : q8 ? 544 : 512))));
        for (int t = 0; t < n; t++) {
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t]), _mm512_mul_ps(d, _mm512_set1_ps(dx[t * lds + b])), acc[t]);
        }
        if (q4 || q8) {
            const __m512 m = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + (q4 ? 288 : 576))));
            for (int t = 0; t < n; t++) acc[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(xs[t * lds + b]), acc[t]);
        }
    }
    for (int t = 0; t < n; t++) _mm512_storeu_ps(y + t * ldy, acc[t]);
}
/// The integer multiply-add peak of this core: `iterations` rounds of 12 independent zmm vpdpwssd
/// (`bytes` = 0: 32 16-bit multiply-adds each) or vpdpbusd (`bytes` = 1: 64 8-bit ones) on registers
/// (`iterations` a multiple of 4).
/// Written in assembly: with loop-invariant operands a compiler may hoist the multiply out of the loop
/// and time additions instead. Returns a value to keep.
#define TESSERA_VNNI12_TEXT(op) \
    op " %[a], %[b], %[r0]\n\t" op " %[a], %[b], %[r1]\n\t" op " %[a], %[b], %[r2]\n\t" op " %[a], %[b], %[r3]\n\t" \
    op " %[a], %[b], %[r4]\n\t" op " %[a], %[b], %[r5]\n\t" op " %[a], %[b], %[r6]\n\t" op " %[a], %[b], %[r7]\n\t" \
    op " %[a], %[b], %[r8]\n\t" op " %[a], %[b], %[r9]\n\t" op " %[a], %[b], %[r10]\n\t" op " %[a], %[b], %[r11]\n\t"
/* Four rounds per statement, so that an unoptimised build's register spills around it stay small. */
#define TESSERA_VNNI12(op) \
    __asm__ volatile(TESSERA_VNNI12_TEXT(op) TESSERA_VNNI12_TEXT(op) TESSERA_VNNI12_TEXT(op) TESSERA_VNNI12_TEXT(op) \
                     : [r0] "+v"(r0), [r1] "+v"(r1), [r2] "+v"(r2), [r3] "+v"(r3), [r4] "+v"(r4), [r5] "+v"(r5), \
                       [r6] "+v"(r6), [r7] "+v"(r7), [r8] "+v"(r8), [r9] "+v"(r9), [r10] "+v"(r10), [r11] "+v"(r11) \
                     : [a] "v"(a), [b] "v"(b))
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static inline int tessera_vnni_peak_avx512(size_t iterations, int bytes) {
    const __m512i a = _mm512_set1_epi32(0x00030002), b = _mm512_set1_epi32(0x00010001);
    __m512i r0 = _mm512_setzero_si512(), r1 = r0, r2 = r0, r3 = r0, r4 = r0, r5 = r0, r6 = r0, r7 = r0, r8 = r0, r9 = r0, r10 = r0,
            r11 = r0;
    if (bytes) {
        for (size_t it = 0; it < iterations; it += 4) TESSERA_VNNI12("vpdpbusd");
    } else {
        for (size_t it = 0; it < iterations; it += 4) TESSERA_VNNI12("vpdpwssd");
    }
    __m512i t = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(r0, r1), _mm512_add_epi32(r2, r3)),
                                 _mm512_add_epi32(_mm512_add_epi32(r4, r5), _mm512_add_epi32(r6, r7)));
    t = _mm512_add_epi32(t, _mm512_add_epi32(_mm512_add_epi32(r8, r9), _mm512_add_epi32(r10, r11)));
    return _mm512_reduce_add_epi32(t);
}
#undef TESSERA_VNNI12
#undef TESSERA_VNNI12_TEXT
/// The tokens t0 ..< t0 + n of one group (n = 0-8).
__attribute__((target("avx512f,avx512bw,avx512vnni,f16c,fma"), always_inline)) static inline void tessera_lanes16_tail(
    const uint8_t *wg, const int format, size_t blocks, size_t n, const int16_t *x, size_t ldx, const float *dx, const float *xs,
    size_t lds, float *y, size_t ldy) {
    switch (n) {
    case 8: tessera_lanes16_pass(wg, format, blocks, 8, x, ldx, dx, xs, lds, y, ldy); break;
    case 7: tessera_lanes16_pass(wg, format, blocks, 7, x, ldx, dx, xs, lds, y, ldy); break;
    case 6: tessera_lanes16_pass(wg, format, blocks, 6, x, ldx, dx, xs, lds, y, ldy); break;
    case 5: tessera_lanes16_pass(wg, format, blocks, 5, x, ldx, dx, xs, lds, y, ldy); break;
    case 4: tessera_lanes16_pass(wg, format, blocks, 4, x, ldx, dx, xs, lds, y, ldy); break;
    case 3: tessera_lanes16_pass(wg, format, blocks, 3, x, ldx, dx, xs, lds, y, ldy); break;
    case 2: tessera_lanes16_pass(wg, format, blocks, 2, x, ldx, dx, xs, lds, y, ldy); break;
    case 1: tessera_lanes16_pass(wg, format, blocks, 1, x, ldx, dx, xs, lds, y, ldy); break;
    default: break;
    }
}
/// `groups` 16-row groups of `blocks` blocks (consecutive) in lane format `format` (q4 or q8s; q8
/// below) times `tokens` tokens: token t reads x + t·ldx (32·blocks values), dx + t·lds and xs + t·lds
/// (a scale and a sum per block), and writes 16·groups outputs at y + t·ldy. Eight tokens at a time pass
/// over a group's blocks, which stay in L1 for the next eight.
__attribute__((target("avx512f,avx512bw,avx512vnni,f16c,fma"), always_inline)) static inline void tessera_lanes16_groups(
    const uint8_t *w, const int format, size_t groups, size_t blocks, size_t tokens, const int16_t *x, size_t ldx, const float *dx,
    const float *xs, size_t lds, float *y, size_t ldy) {
    const size_t stride = tessera_lane_block_bytes(format);
    for (size_t g = 0; g < groups; g++) {
        const uint8_t *wg = w + g * blocks * stride;
        for (size_t t = 0; t < tokens; t += 8) {
            const size_t n = tokens - t < 8 ? tokens - t : 8;
            tessera_lanes16_tail(wg, format, blocks, n, x + t * ldx, ldx, dx + t * lds, xs + t * lds, lds, y + t * ldy + 16 * g, ldy);
        }
    }
}
__attribute__((target("avx512f,avx512bw,avx512vnni,f16c,fma"))) static inline void tessera_lanes16_tokens_avx512(
    const uint8_t *w, const int format, size_t groups, size_t blocks, size_t tokens, const int16_t *x, size_t ldx, const float *dx,
    const float *xs, size_t lds, float *y, size_t ldy) {
    if (format == TESSERA_LANES_Q4) {
        tessera_lanes16_groups(w, TESSERA_LANES_Q4, groups, blocks, tokens, x, ldx, dx, xs, lds, y, ldy);
    } else {
        tessera_lanes16_groups(w, TESSERA_LANES_Q8S, groups, blocks, tokens, x, ldx, dx, xs, lds, y, ldy);
    }
}
__attribute__((target("avx512f,avx512bw,avx512vnni,f16c,fma"))) static inline void tessera_lanes16_q8_tokens_avx512(
    const uint8_t *w, size_t groups, size_t blocks, size_t tokens, const int16_t *x, size_t ldx, const float *dx, const float *xs,
    size_t lds, float *y, size_t ldy) {
    tessera_lanes16_groups(w, TESSERA_LANES_Q8, groups, blocks, tokens, x, ldx, dx, xs, lds, y, ldy);
}
// MARK: Weights with rows in the vector lanes (AVX-512 VNNI), 8-bit activations
// With 8-bit activations (--precision int8) q4 matrices take a lane layout of their own, "quads"
// (320 bytes a 16-row block, like q4's): four 64-byte vectors, vector u holding at byte 4j + i row j's
// value 4u + i in the low nibble and 16 + 4u + i in the high one; then f16 d at 256 + 2j and f16
// minimum m at 288 + 2j. Masked to low nibbles a vector has row j's four values in lane j, as unsigned
// bytes: vpdpbusd against the token's four signed bytes broadcast adds four products into the lane,
// so eight of them sum a block for 16 rows (sixteen vpdpwssd with 16-bit activations). The float ops
// per block are those above: acc = fma(float(I), d·dx, acc), acc = fma(m, xs, acc).
// For the byte formats (q8s, q8), vpdpbusd multiplies unsigned bytes by signed ones, and both byte-format weights and 8-bit activations
// are signed: the weights are held biased, u = q + 128 (0..255), and Σ u·x = Σ q·x + 128·Σ x, so each
// token's sum starts from -128·Σ x (its `offsets`, an exact integer: one a block for q8s, one a half
// block for q8, whose halves have scales of their own) and ends as the exact Σ q·x.
// Layouts (q8s 544 bytes, q8 608, their 16-bit layouts' sizes): eight 64-byte vectors, vector u holding
// at byte 4j + i row j's biased value 4u + i; then the f16 scales and minimums as in the 16-bit layouts
// (q8s: d at 512 + 2j; q8: d of values 0..15 at 512 + 2j, of 16..31 at 544 + 2j, minimum at 576 + 2j).
// Eight vpdpbusd sum a block for 16 rows (sixteen vpdpwssd with 16-bit activations); the float ops
// per token are those of the 16-bit layouts: acc = fma(float(I), d·dx, acc) per scale, then for q8
// acc = fma(m, xs, acc).

/// One 16-row group's blocks times `n` tokens (1-8) of 8-bit activations in lane format `format` (a
/// constant where inlined: q4's quads, or the biased bytes of q8s or q8). (Unrolled by hand-set
/// pragmas: left to the compiler, the sums of the tokens went to the stack.)
__attribute__((target("avx512f,avx512bw,avx512vnni,f16c,fma"), always_inline)) static inline void tessera_lanes16_s8_pass(
    const uint8_t *wg, const int format, size_t blocks, const int n, const int8_t *x, size_t ldx, const float *dx, const float *xs,
    const int32_t *offsets, size_t lds, size_t ldo, float *y, size_t ldy) {
    const int q4 = format == TESSERA_LANES_Q4, q8 = format == TESSERA_LANES_Q8;
    const size_t stride = tessera_lane_block_bytes(format);
    __m512 acc[8];
    _Pragma("clang loop unroll(full)")
    for (int t = 0; t < n; t++) acc[t] = _mm512_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *p = wg + b * stride;
        for (size_t o = 0; o < stride; o += 64) __builtin_prefetch(p + 2 * stride + o);
        // Up to 3 tokens, a second chain (q4's high nibbles, the byte formats' odd vectors): one chain
        // would wait on latency. The byte formats' sums start from their bias offsets.
        __m512i s[8], z[8];
        const size_t ob = q8 ? 2 * b : b;  // the block's (first) offset, for the byte formats
        _Pragma("clang loop unroll(full)")
        for (int t = 0; t < n; t++) {
            s[t] = q4 ? _mm512_setzero_si512() : _mm512_set1_epi32(offsets[t * ldo + ob]);
            z[t] = _mm512_setzero_si512();
        }
        const int8_t *xb = x + 32 * b;
        if (q4) {
            const __m512i mask = _mm512_set1_epi8(0x0F);
            _Pragma("clang loop unroll(full)")
            for (int u = 0; u < 4; u++) {
                const __m512i v = _mm512_loadu_si512((const void *)(p + 64 * u));
                const __m512i lo = _mm512_and_si512(v, mask), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask);
                _Pragma("clang loop unroll(full)")
                for (int t = 0; t < n; t++) {
                    int32_t a, e;
                    __builtin_memcpy(&a, xb + t * ldx + 4 * u, 4);
                    __builtin_memcpy(&e, xb + t * ldx + 16 + 4 * u, 4);
                    s[t] = _mm512_dpbusd_epi32(s[t], lo, _mm512_set1_epi32(a));
                    if (n <= 3) z[t] = _mm512_dpbusd_epi32(z[t], hi, _mm512_set1_epi32(e));
                    else s[t] = _mm512_dpbusd_epi32(s[t], hi, _mm512_set1_epi32(e));
                }
            }
        } else {
            _Pragma("clang loop unroll(full)")
            for (int u = 0; u < 8; u++) {
                if (q8 && u == 4) {
                    // q8: the first half's sums scaled by their own d before the second half's begin.
                    if (n <= 3) for (int t = 0; t < n; t++) s[t] = _mm512_add_epi32(s[t], z[t]);
                    const __m512 d0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 512)));
                    _Pragma("clang loop unroll(full)")
                    for (int t = 0; t < n; t++) {
                        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t]), _mm512_mul_ps(d0, _mm512_set1_ps(dx[t * lds + b])), acc[t]);
                        s[t] = _mm512_set1_epi32(offsets[t * ldo + ob + 1]);
                        z[t] = _mm512_setzero_si512();
                    }
                }
                const __m512i v = _mm512_loadu_si512((const void *)(p + 64 * u));
                _Pragma("clang loop unroll(full)")
                for (int t = 0; t < n; t++) {
                    int32_t a;
                    __builtin_memcpy(&a, xb + t * ldx + 4 * u, 4);
                    if (n <= 3 && (u & 1)) z[t] = _mm512_dpbusd_epi32(z[t], v, _mm512_set1_epi32(a));
                    else s[t] = _mm512_dpbusd_epi32(s[t], v, _mm512_set1_epi32(a));
                }
            }
        }
        if (n <= 3) for (int t = 0; t < n; t++) s[t] = _mm512_add_epi32(s[t], z[t]);
        // The (last) scale: q4's, q8s's, or that of q8's second half; then q4's and q8's minimums.
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + (q4 ? 256 : q8 ? 544 : 512))));
        _Pragma("clang loop unroll(full)")
        for (int t = 0; t < n; t++) {
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t]), _mm512_mul_ps(d, _mm512_set1_ps(dx[t * lds + b])), acc[t]);
        }
        if (q4 || q8) {
            const __m512 m = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + (q4 ? 288 : 576))));
            _Pragma("clang loop unroll(full)")
            for (int t = 0; t < n; t++) acc[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(xs[t * lds + b]), acc[t]);
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int t = 0; t < n; t++) _mm512_storeu_ps(y + t * ldy, acc[t]);
}
/// `groups` 16-row groups in lane format `format`'s 8-bit layout times `tokens` tokens of 8-bit
/// activations: token t reads x + t·ldx, dx + t·lds, xs + t·lds (the minimums' term) and, for the byte
/// formats, offsets + t·ldo (-128·Σx per block, or per half block for q8), and writes y + t·ldy.
__attribute__((target("avx512f,avx512bw,avx512vnni,f16c,fma"), always_inline)) static inline void tessera_lanes16_s8_groups(
    const uint8_t *w, const int format, size_t groups, size_t blocks, size_t tokens, const int8_t *x, size_t ldx, const float *dx,
    const float *xs, const int32_t *offsets, size_t lds, size_t ldo, float *y, size_t ldy) {
    const size_t stride = tessera_lane_block_bytes(format);
    for (size_t g = 0; g < groups; g++) {
        const uint8_t *wg = w + g * blocks * stride;
        for (size_t t = 0; t < tokens; t += 8) {
            const size_t n = tokens - t < 8 ? tokens - t : 8;
            const int8_t *xt = x + t * ldx;
            const float *dt = dx + t * lds, *st = xs + t * lds;
            const int32_t *ot = ldo ? offsets + t * ldo : offsets;
            float *yt = y + t * ldy + 16 * g;
            switch (n) {
            case 8: tessera_lanes16_s8_pass(wg, format, blocks, 8, xt, ldx, dt, st, ot, lds, ldo, yt, ldy); break;
            case 7: tessera_lanes16_s8_pass(wg, format, blocks, 7, xt, ldx, dt, st, ot, lds, ldo, yt, ldy); break;
            case 6: tessera_lanes16_s8_pass(wg, format, blocks, 6, xt, ldx, dt, st, ot, lds, ldo, yt, ldy); break;
            case 5: tessera_lanes16_s8_pass(wg, format, blocks, 5, xt, ldx, dt, st, ot, lds, ldo, yt, ldy); break;
            case 4: tessera_lanes16_s8_pass(wg, format, blocks, 4, xt, ldx, dt, st, ot, lds, ldo, yt, ldy); break;
            case 3: tessera_lanes16_s8_pass(wg, format, blocks, 3, xt, ldx, dt, st, ot, lds, ldo, yt, ldy); break;
            case 2: tessera_lanes16_s8_pass(wg, format, blocks, 2, xt, ldx, dt, st, ot, lds, ldo, yt, ldy); break;
            default: tessera_lanes16_s8_pass(wg, format, blocks, 1, xt, ldx, dt, st, ot, lds, ldo, yt, ldy); break;
            }
        }
    }
}
/// One entry point a format (as for the 16-bit kernels: in one function, the compiler no longer kept
/// every variant's sums in registers). q4: `groups` q4 groups in the quads layout.
__attribute__((target("avx512f,avx512bw,avx512vnni,f16c,fma"))) static inline void tessera_lanes16_q4s8_tokens_avx512(
    const uint8_t *w, size_t groups, size_t blocks, size_t tokens, const int8_t *x, size_t ldx, const float *dx, const float *xs,
    size_t lds, float *y, size_t ldy) {
    tessera_lanes16_s8_groups(w, TESSERA_LANES_Q4, groups, blocks, tokens, x, ldx, dx, xs, 0, lds, 0, y, ldy);
}
/// q8s: biased bytes, one offset a block.
__attribute__((target("avx512f,avx512bw,avx512vnni,f16c,fma"))) static inline void tessera_lanes16_q8s8_tokens_avx512(
    const uint8_t *w, size_t groups, size_t blocks, size_t tokens, const int8_t *x, size_t ldx, const float *dx, const float *xs,
    const int32_t *offsets, size_t lds, float *y, size_t ldy) {
    tessera_lanes16_s8_groups(w, TESSERA_LANES_Q8S, groups, blocks, tokens, x, ldx, dx, xs, offsets, lds, lds, y, ldy);
}
/// q8: biased bytes, two offsets a block (token t at offsets + 2t·lds).
__attribute__((target("avx512f,avx512bw,avx512vnni,f16c,fma"))) static inline void tessera_lanes16_q88_tokens_avx512(
    const uint8_t *w, size_t groups, size_t blocks, size_t tokens, const int8_t *x, size_t ldx, const float *dx, const float *xs,
    const int32_t *offsets, size_t lds, float *y, size_t ldy) {
    tessera_lanes16_s8_groups(w, TESSERA_LANES_Q8, groups, blocks, tokens, x, ldx, dx, xs, offsets, lds, 2 * lds, y, ldy);
}

// MARK: Exponentials (AVX-512)
// e^x = 2^(x·log2 e): n = round(x·log2 e), f = x·log2 e - n in [-1/2, 1/2] (with log2 e in two parts, so
// f keeps its precision), 2^f by its degree-7 Taylor polynomial (truncation under 2^-23 of the result),
// and vscalefps multiplies by 2^n, overflowing to inf and underflowing to 0 as exp does. Thirteen
// vector operations, against ~22 for the portable version (clamps, integer exponent bits, a select):
// the softmax of long prompts' attention spends most of its time here.

/// e^x for 16 floats; -inf (masked scores) gives exactly 0, as x < -110 does (denormals above).
__attribute__((target("avx512f"), always_inline)) static inline __m512 tessera_exp_avx512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-110.0f));  // keeps -inf out of the reduction; ~2^-159 scales to 0
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_fmsub_ps(x, _mm512_set1_ps(1.44269502162933349609375f), n);
    f = _mm512_fmadd_ps(x, _mm512_set1_ps(1.925963033500011e-8f), f);
    __m512 p = _mm512_set1_ps(1.525273380405984e-5f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.5403530393381608e-4f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618129107628477e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550410866482158e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.2402265069591007f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931471805599453f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}
/// One step of the online softmax for `rows` rows of `cols` scores (`ld` apart), in place, as the
/// portable kernel: each row's new maximum m' = max(m, max_j s_j); s_j = e^(s_j - m'); the correction
/// c = e^(m - m') (0 while m was -inf); l = l·c + Σ_j s_j; a row still all -inf becomes zeros with c = 1.
/// Σ_j sums lanes in column order, then the lanes; a tail of under 16 is one more vector whose missing
/// lanes count as masked (-inf), so a row's sum is the same bits whether its tile ends there or goes
/// on with masked columns. (Tiles are 64 keys wide: the per-row reductions cost as much as the
/// exponentials, so they stay in vectors here.)
__attribute__((target("avx512f"))) static inline void tessera_online_softmax_avx512(float *s, size_t rows, size_t cols, size_t ld,
                                                                                 float *rowMax, float *rowSum, float *correction) {
    const __m512 masked = _mm512_set1_ps(-__builtin_inff());
    const size_t full = cols / 16 * 16;
    const __mmask16 tail = (__mmask16)((1u << (cols - full)) - 1);
    for (size_t r = 0; r < rows; r++) {
        float *row = s + r * ld;
        __m512 mx = masked;
        for (size_t j = 0; j < full; j += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(row + j));
        if (tail) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(masked, tail, row + full));
        const float old = rowMax[r], blockMax = _mm512_reduce_max_ps(mx), m = old > blockMax ? old : blockMax;
        if (m == -__builtin_inff()) {  // everything so far is masked
            for (size_t j = 0; j < cols; j++) row[j] = 0;
            correction[r] = 1;
            continue;
        }
        const __m512 shift = _mm512_set1_ps(m);
        __m512 sum = _mm512_setzero_ps();
        for (size_t j = 0; j < full; j += 16) {
            const __m512 e = tessera_exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(row + j), shift));
            _mm512_storeu_ps(row + j, e);
            sum = _mm512_add_ps(sum, e);
        }
        if (tail) {
            const __m512 e = tessera_exp_avx512(_mm512_sub_ps(_mm512_mask_loadu_ps(masked, tail, row + full), shift));
            _mm512_mask_storeu_ps(row + full, tail, e);
            sum = _mm512_add_ps(sum, e);
        }
        const float c = old == -__builtin_inff() ? 0.0f : _mm512_cvtss_f32(tessera_exp_avx512(_mm512_set1_ps(old - m)));
        correction[r] = c;
        rowSum[r] = rowSum[r] * c + _mm512_reduce_add_ps(sum);
        rowMax[r] = m;
    }
}

// MARK: Decode attention over a GQA group (all the query heads that share one kv head)
// The scores and the weighted value sum of the group's heads in one pass over the keys and one over
// the values, so each cache line comes from memory once while the arithmetic of every head overlaps
// with the loads (per head in turn, the later heads' passes ran from L2 while memory idled).

/// Horizontal sum of 8 floats.
__attribute__((target("avx2"), always_inline)) static inline float tessera_hsum8_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
/// 8 values of a cache row at element `i` of `p` as floats: f32 rows, or IEEE halves (f16 KV caches).
__attribute__((target("avx2,f16c"), always_inline)) static inline __m256 tessera_load_kv8(const void *p, size_t i, const int half) {
    return half ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i))) : _mm256_loadu_ps((const float *)p + i);
}
/// s[h·lds + j] = q_h · k_j for heads h < H (1-4), keys j < n, depth d (a multiple of 8); q_h at
/// q + h·ldq, k_j at element j·ldk of k (f32, or f16 when `half`). Keys go two at a time, every head
/// against both.
__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void tessera_group_scores_impl(
    const float *q, size_t ldq, const int H, const void *k, size_t ldk, size_t n, size_t d, float *s, size_t lds, const int half) {
    // Keys in pairs from the two halves of the range: two memory streams at once.
    const size_t mid = n / 2;
    for (size_t i = 0; i < mid; i++) {
        const size_t k0 = i * ldk, k1 = (i + mid) * ldk;
        __m256 a[4][2];
        for (int h = 0; h < H; h++) { a[h][0] = _mm256_setzero_ps(); a[h][1] = _mm256_setzero_ps(); }
        for (size_t e = 0; e < d; e += 8) {
            __m256 x0 = tessera_load_kv8(k, k0 + e, half), x1 = tessera_load_kv8(k, k1 + e, half);
            for (int h = 0; h < H; h++) {
                __m256 qh = _mm256_loadu_ps(q + h * ldq + e);
                a[h][0] = _mm256_fmadd_ps(qh, x0, a[h][0]);
                a[h][1] = _mm256_fmadd_ps(qh, x1, a[h][1]);
            }
        }
        for (int h = 0; h < H; h++) {
            s[h * lds + i] = tessera_hsum8_avx2(a[h][0]);
            s[h * lds + i + mid] = tessera_hsum8_avx2(a[h][1]);
        }
    }
    const size_t j = 2 * mid;
    if (j < n) {
        __m256 a[4];
        for (int h = 0; h < H; h++) a[h] = _mm256_setzero_ps();
        for (size_t e = 0; e < d; e += 8) {
            __m256 x0 = tessera_load_kv8(k, j * ldk + e, half);
            for (int h = 0; h < H; h++) a[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * ldq + e), x0, a[h]);
        }
        for (int h = 0; h < H; h++) s[h * lds + j] = tessera_hsum8_avx2(a[h]);
    }
}
__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void tessera_group_scores_any(
    const float *q, size_t ldq, size_t heads, const void *k, size_t ldk, size_t n, size_t d, float *s, size_t lds, const int half) {
    for (size_t h0 = 0; h0 < heads; h0 += 4) {
        const float *qh = q + h0 * ldq;
        float *sh = s + h0 * lds;
        switch (heads - h0 >= 4 ? 4 : heads - h0) {
        case 4: tessera_group_scores_impl(qh, ldq, 4, k, ldk, n, d, sh, lds, half); break;
        case 3: tessera_group_scores_impl(qh, ldq, 3, k, ldk, n, d, sh, lds, half); break;
        case 2: tessera_group_scores_impl(qh, ldq, 2, k, ldk, n, d, sh, lds, half); break;
        default: tessera_group_scores_impl(qh, ldq, 1, k, ldk, n, d, sh, lds, half); break;
        }
    }
}
__attribute__((target("avx2,fma,f16c"))) static inline void tessera_group_scores_avx2(const float *q, size_t ldq, size_t heads, const float *k,
                                                                                   size_t ldk, size_t n, size_t d, float *s, size_t lds) {
    tessera_group_scores_any(q, ldq, heads, k, ldk, n, d, s, lds, 0);
}
__attribute__((target("avx2,fma,f16c"))) static inline void tessera_group_scores_f16_avx2(const float *q, size_t ldq, size_t heads,
                                                                                       const uint16_t *k, size_t ldk, size_t n, size_t d,
                                                                                       float *s, size_t lds) {
    tessera_group_scores_any(q, ldq, heads, k, ldk, n, d, s, lds, 1);
}
/// y[h·ldy + e] += p[h·ldp + j] · row[e] for heads h < `heads`, e < d: one value row (key j, at element
/// `row` of v) for every head.
__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void tessera_group_values_row_avx2(
    const float *p, size_t ldp, size_t heads, const void *v, size_t row, size_t j, size_t d, float *y, size_t ldy, const int half) {
    for (size_t e = 0; e < d; e += 8) {
        __m256 x = tessera_load_kv8(v, row + e, half);
        for (size_t h = 0; h < heads; h++) {
            float *yh = y + h * ldy + e;
            _mm256_storeu_ps(yh, _mm256_fmadd_ps(_mm256_broadcast_ss(p + h * ldp + j), x, _mm256_loadu_ps(yh)));
        }
    }
}
/// y[h·ldy + e] (+)= Σ_j p[h·ldp + j] · v[j·ldv + e] for heads h < `heads`, e < d (a multiple of 8).
/// The heads' sums (a few KB) stay in L1 and are updated in place while the value rows stream past,
/// four at a time from the four quarters of the range (four memory streams), each row read once for
/// all the heads.
__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void tessera_group_values_any(
    const float *p, size_t ldp, size_t heads, const void *v, size_t ldv, size_t n, size_t d, float *y, size_t ldy, int accumulate,
    const int half) {
    if (!accumulate) {
        for (size_t h = 0; h < heads; h++) for (size_t e = 0; e < d; e += 8) _mm256_storeu_ps(y + h * ldy + e, _mm256_setzero_ps());
    }
    const size_t quarter = n / 4;
    for (size_t i = 0; i < quarter; i++) {
        const size_t r0 = i * ldv, r1 = (i + quarter) * ldv, r2 = (i + 2 * quarter) * ldv, r3 = (i + 3 * quarter) * ldv;
        for (size_t e = 0; e < d; e += 8) {
            __m256 v0 = tessera_load_kv8(v, r0 + e, half), v1 = tessera_load_kv8(v, r1 + e, half);
            __m256 v2 = tessera_load_kv8(v, r2 + e, half), v3 = tessera_load_kv8(v, r3 + e, half);
            for (size_t h = 0; h < heads; h++) {
                const float *ph = p + h * ldp;
                float *yh = y + h * ldy + e;
                __m256 acc = _mm256_loadu_ps(yh);
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(ph + i), v0, acc);
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(ph + i + quarter), v1, acc);
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(ph + i + 2 * quarter), v2, acc);
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(ph + i + 3 * quarter), v3, acc);
                _mm256_storeu_ps(yh, acc);
            }
        }
    }
    for (size_t j = 4 * quarter; j < n; j++) tessera_group_values_row_avx2(p, ldp, heads, v, j * ldv, j, d, y, ldy, half);
}
/// The decode weighted sum for head sizes that are multiples of 64: y[h·ldy + e] (+)= Σ_j p[h·ldp + j] ·
/// v[j·ldv + e]. Rows go eight at a time, two from each quarter of the range; for each head and each
/// 64-column slice, eight accumulators stay in registers across the eight rows (one broadcast weight
/// per row, the value rows as FMA memory operands, read from L1 after the first head; f16 rows are
/// widened again for each head), so the heads' sums are loaded and stored once per eight rows rather
/// than once per four.
__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void tessera_group_values64_any(
    const float *p, size_t ldp, size_t heads, const void *v, size_t ldv, size_t n, size_t d, float *y, size_t ldy, int accumulate,
    const int half) {
    if (!accumulate) {
        for (size_t h = 0; h < heads; h++) for (size_t e = 0; e < d; e += 8) _mm256_storeu_ps(y + h * ldy + e, _mm256_setzero_ps());
    }
    const size_t quarter = n / 4, pairs = quarter / 2;
    for (size_t b = 0; b < pairs; b++) {
        const size_t i = 2 * b;
        const size_t idx[8] = {i, i + 1, i + quarter, i + quarter + 1, i + 2 * quarter, i + 2 * quarter + 1, i + 3 * quarter, i + 3 * quarter + 1};
        for (size_t e0 = 0; e0 < d; e0 += 64) {
            for (size_t h = 0; h < heads; h++) {
                float *yh = y + h * ldy + e0;
                const float *ph = p + h * ldp;
                __m256 a0 = _mm256_loadu_ps(yh), a1 = _mm256_loadu_ps(yh + 8), a2 = _mm256_loadu_ps(yh + 16), a3 = _mm256_loadu_ps(yh + 24);
                __m256 a4 = _mm256_loadu_ps(yh + 32), a5 = _mm256_loadu_ps(yh + 40), a6 = _mm256_loadu_ps(yh + 48), a7 = _mm256_loadu_ps(yh + 56);
                for (int rr = 0; rr < 8; rr++) {
                    const size_t row = idx[rr] * ldv + e0;
                    __m256 w = _mm256_broadcast_ss(ph + idx[rr]);
                    a0 = _mm256_fmadd_ps(w, tessera_load_kv8(v, row, half), a0); a1 = _mm256_fmadd_ps(w, tessera_load_kv8(v, row + 8, half), a1);
                    a2 = _mm256_fmadd_ps(w, tessera_load_kv8(v, row + 16, half), a2); a3 = _mm256_fmadd_ps(w, tessera_load_kv8(v, row + 24, half), a3);
                    a4 = _mm256_fmadd_ps(w, tessera_load_kv8(v, row + 32, half), a4); a5 = _mm256_fmadd_ps(w, tessera_load_kv8(v, row + 40, half), a5);
                    a6 = _mm256_fmadd_ps(w, tessera_load_kv8(v, row + 48, half), a6); a7 = _mm256_fmadd_ps(w, tessera_load_kv8(v, row + 56, half), a7);
                }
                _mm256_storeu_ps(yh, a0); _mm256_storeu_ps(yh + 8, a1); _mm256_storeu_ps(yh + 16, a2); _mm256_storeu_ps(yh + 24, a3);
                _mm256_storeu_ps(yh + 32, a4); _mm256_storeu_ps(yh + 40, a5); _mm256_storeu_ps(yh + 48, a6); _mm256_storeu_ps(yh + 56, a7);
            }
        }
    }
    // The rows left over: the last one of a quarter with an odd length, then the rows past 4 quarters.
    for (size_t q = 0; q < 4; q++) {
        for (size_t j = q * quarter + 2 * pairs; j < (q + 1) * quarter; j++) tessera_group_values_row_avx2(p, ldp, heads, v, j * ldv, j, d, y, ldy, half);
    }
    for (size_t j = 4 * quarter; j < n; j++) tessera_group_values_row_avx2(p, ldp, heads, v, j * ldv, j, d, y, ldy, half);
}
/// The group's weighted value sums over f32 rows (d a multiple of 8; the 64-column kernel where d allows).
__attribute__((target("avx2,fma,f16c"))) static inline void tessera_group_values_avx2(const float *p, size_t ldp, size_t heads, const float *v,
                                                                                   size_t ldv, size_t n, size_t d, float *y, size_t ldy,
                                                                                   int accumulate) {
    if (d % 64 == 0) tessera_group_values64_any(p, ldp, heads, v, ldv, n, d, y, ldy, accumulate, 0);
    else tessera_group_values_any(p, ldp, heads, v, ldv, n, d, y, ldy, accumulate, 0);
}
/// The same over f16 rows.
__attribute__((target("avx2,fma,f16c"))) static inline void tessera_group_values_f16_avx2(const float *p, size_t ldp, size_t heads,
                                                                                       const uint16_t *v, size_t ldv, size_t n, size_t d,
                                                                                       float *y, size_t ldy, int accumulate) {
    if (d % 64 == 0) tessera_group_values64_any(p, ldp, heads, v, ldv, n, d, y, ldy, accumulate, 1);
    else tessera_group_values_any(p, ldp, heads, v, ldv, n, d, y, ldy, accumulate, 1);
}
// MARK: Decode attention on AVX-512 (f16 rows, and int8 rows in the KV cache's blocks of 16 values)
// A row is read 16 values at a time — halves widened (vcvtph2ps), or a block of 16 int8 codes widened
// and multiplied by its scale — and every head of the GQA group then uses it, so each row is read and
// widened once. The value sums of up to 4 heads x 64 columns stay in 16 registers across all the rows.

/// The reduced element types of a KV cache's rows, as these kernels read them (f32 rows take the AVX2
/// kernels above: 16-wide reads measured no faster for them, being bound by their bytes).
enum { TESSERA_KV_F16 = 1, TESSERA_KV_I8 = 2 };
/// 16 values of a cache row at element i of p as floats: halves, or int8 codes times `scale`.
__attribute__((target("avx512f,avx512bw"), always_inline)) static inline __m512 tessera_load_kv16(const void *p, size_t i, const int kind,
                                                                                             float scale) {
    if (kind == TESSERA_KV_I8)
        return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)((const int8_t *)p + i)))),
                             _mm512_set1_ps(scale));
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
}
/// s[h·lds + j] = q_h · k_j for heads h < H (1-4), keys j < n, d a multiple of 16; k_j at element j·ldk
/// of k (halves, or int8 codes with scales[j·ss + e/16]). Two keys at a time.
__attribute__((target("avx512f,avx512bw,fma"), always_inline)) static inline void tessera_group_scores_z_impl(
    const float *q, size_t ldq, const int H, const void *k, size_t ldk, const float *scales, size_t ss, size_t n, size_t d, float *s,
    size_t lds, const int kind) {
    size_t j = 0;
    for (; j + 2 <= n; j += 2) {
        __m512 a[4][2];
        for (int h = 0; h < H; h++) a[h][0] = a[h][1] = _mm512_setzero_ps();
        for (size_t e = 0, b = 0; e < d; e += 16, b++) {
            const __m512 x0 = tessera_load_kv16(k, j * ldk + e, kind, kind == TESSERA_KV_I8 ? scales[j * ss + b] : 0);
            const __m512 x1 = tessera_load_kv16(k, (j + 1) * ldk + e, kind, kind == TESSERA_KV_I8 ? scales[(j + 1) * ss + b] : 0);
            for (int h = 0; h < H; h++) {
                const __m512 qh = _mm512_loadu_ps(q + h * ldq + e);
                a[h][0] = _mm512_fmadd_ps(qh, x0, a[h][0]);
                a[h][1] = _mm512_fmadd_ps(qh, x1, a[h][1]);
            }
        }
        for (int h = 0; h < H; h++) {
            s[h * lds + j] = _mm512_reduce_add_ps(a[h][0]);
            s[h * lds + j + 1] = _mm512_reduce_add_ps(a[h][1]);
        }
    }
    if (j < n) {
        __m512 a[4];
        for (int h = 0; h < H; h++) a[h] = _mm512_setzero_ps();
        for (size_t e = 0, b = 0; e < d; e += 16, b++) {
            const __m512 x0 = tessera_load_kv16(k, j * ldk + e, kind, kind == TESSERA_KV_I8 ? scales[j * ss + b] : 0);
            for (int h = 0; h < H; h++) a[h] = _mm512_fmadd_ps(_mm512_loadu_ps(q + h * ldq + e), x0, a[h]);
        }
        for (int h = 0; h < H; h++) s[h * lds + j] = _mm512_reduce_add_ps(a[h]);
    }
}
__attribute__((target("avx512f,avx512bw,fma"), always_inline)) static inline void tessera_group_scores_z(
    const float *q, size_t ldq, size_t heads, const void *k, size_t ldk, const float *scales, size_t ss, size_t n, size_t d, float *s,
    size_t lds, const int kind) {
    for (size_t h0 = 0; h0 < heads; h0 += 4) {
        const float *qh = q + h0 * ldq;
        float *sh = s + h0 * lds;
        switch (heads - h0 >= 4 ? 4 : heads - h0) {
        case 4: tessera_group_scores_z_impl(qh, ldq, 4, k, ldk, scales, ss, n, d, sh, lds, kind); break;
        case 3: tessera_group_scores_z_impl(qh, ldq, 3, k, ldk, scales, ss, n, d, sh, lds, kind); break;
        case 2: tessera_group_scores_z_impl(qh, ldq, 2, k, ldk, scales, ss, n, d, sh, lds, kind); break;
        default: tessera_group_scores_z_impl(qh, ldq, 1, k, ldk, scales, ss, n, d, sh, lds, kind); break;
        }
    }
}
/// y[h·ldy + e] (+)= Σ_j p[h·ldp + j] · v_j[e] for heads h < H (1-4), e < d (a multiple of 16), in
/// slices of 64 columns whose sums stay in registers while every row passes.
__attribute__((target("avx512f,avx512bw,fma"), always_inline)) static inline void tessera_group_values_z_impl(
    const float *p, size_t ldp, const int H, const void *v, size_t ldv, const float *scales, size_t ss, size_t n, size_t d, float *y,
    size_t ldy, int accumulate, const int kind) {
    for (size_t e0 = 0; e0 < d; e0 += 64) {
        const int w = d - e0 >= 64 ? 4 : (int)((d - e0) / 16);
        __m512 acc[4][4];
        for (int h = 0; h < H; h++)
            for (int c = 0; c < 4; c++) acc[h][c] = c < w && accumulate ? _mm512_loadu_ps(y + h * ldy + e0 + 16 * c) : _mm512_setzero_ps();
        for (size_t j = 0; j < n; j++) {
            __m512 x[4];
            for (int c = 0; c < 4; c++)
                x[c] = c < w ? tessera_load_kv16(v, j * ldv + e0 + 16 * c, kind, kind == TESSERA_KV_I8 ? scales[j * ss + e0 / 16 + c] : 0)
                             : _mm512_setzero_ps();
            for (int h = 0; h < H; h++) {
                const __m512 ph = _mm512_set1_ps(p[h * ldp + j]);
                for (int c = 0; c < 4; c++) if (c < w) acc[h][c] = _mm512_fmadd_ps(ph, x[c], acc[h][c]);
            }
        }
        for (int h = 0; h < H; h++)
            for (int c = 0; c < w; c++) _mm512_storeu_ps(y + h * ldy + e0 + 16 * c, acc[h][c]);
    }
}
__attribute__((target("avx512f,avx512bw,fma"), always_inline)) static inline void tessera_group_values_z(
    const float *p, size_t ldp, size_t heads, const void *v, size_t ldv, const float *scales, size_t ss, size_t n, size_t d, float *y,
    size_t ldy, int accumulate, const int kind) {
    for (size_t h0 = 0; h0 < heads; h0 += 4) {
        const float *ph = p + h0 * ldp;
        float *yh = y + h0 * ldy;
        switch (heads - h0 >= 4 ? 4 : heads - h0) {
        case 4: tessera_group_values_z_impl(ph, ldp, 4, v, ldv, scales, ss, n, d, yh, ldy, accumulate, kind); break;
        case 3: tessera_group_values_z_impl(ph, ldp, 3, v, ldv, scales, ss, n, d, yh, ldy, accumulate, kind); break;
        case 2: tessera_group_values_z_impl(ph, ldp, 2, v, ldv, scales, ss, n, d, yh, ldy, accumulate, kind); break;
        default: tessera_group_values_z_impl(ph, ldp, 1, v, ldv, scales, ss, n, d, yh, ldy, accumulate, kind); break;
        }
    }
}
__attribute__((target("avx512f,avx512bw,fma"))) static inline void tessera_group_scores_i8_avx512(
    const float *q, size_t ldq, size_t heads, const int8_t *k, size_t ldk, const float *scales, size_t ss, size_t n, size_t d, float *s,
    size_t lds) {
    tessera_group_scores_z(q, ldq, heads, k, ldk, scales, ss, n, d, s, lds, TESSERA_KV_I8);
}
__attribute__((target("avx512f,avx512bw,fma"))) static inline void tessera_group_values_i8_avx512(
    const float *p, size_t ldp, size_t heads, const int8_t *v, size_t ldv, const float *scales, size_t ss, size_t n, size_t d, float *y,
    size_t ldy, int accumulate) {
    tessera_group_values_z(p, ldp, heads, v, ldv, scales, ss, n, d, y, ldy, accumulate, TESSERA_KV_I8);
}
__attribute__((target("avx512f,avx512bw,fma"))) static inline void tessera_group_scores_f16_avx512(
    const float *q, size_t ldq, size_t heads, const uint16_t *k, size_t ldk, size_t n, size_t d, float *s, size_t lds) {
    tessera_group_scores_z(q, ldq, heads, k, ldk, 0, 0, n, d, s, lds, TESSERA_KV_F16);
}
__attribute__((target("avx512f,avx512bw,fma"))) static inline void tessera_group_values_f16_avx512(
    const float *p, size_t ldp, size_t heads, const uint16_t *v, size_t ldv, size_t n, size_t d, float *y, size_t ldy, int accumulate) {
    tessera_group_values_z(p, ldp, heads, v, ldv, 0, 0, n, d, y, ldy, accumulate, TESSERA_KV_F16);
}
// MARK: Decode attention over int8 rows on AVX2 (blocks of 16 values, one scale each)
// As the AVX-512 kernels above with 8-wide vectors: a row's codes are widened and scaled once for the
// whole GQA group; the value sums go in slices of 16 columns (one block), two registers a head, so
// that up to 4 heads' sums stay in registers while every row of the chunk passes. (The same structure
// over f16 rows measured slower than the f16 kernels above on AVX2: 97-106 against 116-126 tokens/s.)

/// 8 int8 codes at p widened to floats and times `scale`.
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 tessera_load_i8x8_scaled(const int8_t *p, float scale) {
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p))), _mm256_set1_ps(scale));
}
/// s[h·lds + j] = Σ_e q_h[e] · scales[j·ss + e/16] · k[j·ldk + e] for heads h < H (1-4), keys j < n,
/// d a multiple of 16. Two keys at a time.
__attribute__((target("avx2,fma"), always_inline)) static inline void tessera_group_scores_i8_y_impl(
    const float *q, size_t ldq, const int H, const int8_t *k, size_t ldk, const float *scales, size_t ss, size_t n, size_t d, float *s,
    size_t lds) {
    size_t j = 0;
    for (; j + 2 <= n; j += 2) {
        const int8_t *k0 = k + j * ldk, *k1 = k0 + ldk;
        const float *s0 = scales + j * ss, *s1 = s0 + ss;
        __m256 a[4][2];
        for (int h = 0; h < H; h++) a[h][0] = a[h][1] = _mm256_setzero_ps();
        for (size_t e = 0; e < d; e += 8) {
            const __m256 x0 = tessera_load_i8x8_scaled(k0 + e, s0[e >> 4]), x1 = tessera_load_i8x8_scaled(k1 + e, s1[e >> 4]);
            for (int h = 0; h < H; h++) {
                const __m256 qh = _mm256_loadu_ps(q + h * ldq + e);
                a[h][0] = _mm256_fmadd_ps(qh, x0, a[h][0]);
                a[h][1] = _mm256_fmadd_ps(qh, x1, a[h][1]);
            }
        }
        for (int h = 0; h < H; h++) {
            s[h * lds + j] = tessera_hsum8_avx2(a[h][0]);
            s[h * lds + j + 1] = tessera_hsum8_avx2(a[h][1]);
        }
    }
    if (j < n) {
        __m256 a[4];
        for (int h = 0; h < H; h++) a[h] = _mm256_setzero_ps();
        for (size_t e = 0; e < d; e += 8) {
            const __m256 x0 = tessera_load_i8x8_scaled(k + j * ldk + e, scales[j * ss + (e >> 4)]);
            for (int h = 0; h < H; h++) a[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * ldq + e), x0, a[h]);
        }
        for (int h = 0; h < H; h++) s[h * lds + j] = tessera_hsum8_avx2(a[h]);
    }
}
/// y[h·ldy + e] (+)= Σ_j p[h·ldp + j] · scales[j·ss + e/16] · v[j·ldv + e] for heads h < H (1-4), e < d
/// (a multiple of 16), a block of 16 columns at a time.
__attribute__((target("avx2,fma"), always_inline)) static inline void tessera_group_values_i8_y_impl(
    const float *p, size_t ldp, const int H, const int8_t *v, size_t ldv, const float *scales, size_t ss, size_t n, size_t d, float *y,
    size_t ldy, int accumulate) {
    for (size_t e0 = 0; e0 < d; e0 += 16) {
        __m256 acc[4][2];
        for (int h = 0; h < H; h++) {
            acc[h][0] = accumulate ? _mm256_loadu_ps(y + h * ldy + e0) : _mm256_setzero_ps();
            acc[h][1] = accumulate ? _mm256_loadu_ps(y + h * ldy + e0 + 8) : _mm256_setzero_ps();
        }
        for (size_t j = 0; j < n; j++) {
            const float scale = scales[j * ss + (e0 >> 4)];
            const __m256 x0 = tessera_load_i8x8_scaled(v + j * ldv + e0, scale), x1 = tessera_load_i8x8_scaled(v + j * ldv + e0 + 8, scale);
            for (int h = 0; h < H; h++) {
                const __m256 ph = _mm256_broadcast_ss(p + h * ldp + j);
                acc[h][0] = _mm256_fmadd_ps(ph, x0, acc[h][0]);
                acc[h][1] = _mm256_fmadd_ps(ph, x1, acc[h][1]);
            }
        }
        for (int h = 0; h < H; h++) {
            _mm256_storeu_ps(y + h * ldy + e0, acc[h][0]);
            _mm256_storeu_ps(y + h * ldy + e0 + 8, acc[h][1]);
        }
    }
}
__attribute__((target("avx2,fma"))) static inline void tessera_group_scores_i8_avx2(
    const float *q, size_t ldq, size_t heads, const int8_t *k, size_t ldk, const float *scales, size_t ss, size_t n, size_t d, float *s,
    size_t lds) {
    for (size_t h0 = 0; h0 < heads; h0 += 4) {
        const float *qh = q + h0 * ldq;
        float *sh = s + h0 * lds;
        switch (heads - h0 >= 4 ? 4 : heads - h0) {
        case 4: tessera_group_scores_i8_y_impl(qh, ldq, 4, k, ldk, scales, ss, n, d, sh, lds); break;
        case 3: tessera_group_scores_i8_y_impl(qh, ldq, 3, k, ldk, scales, ss, n, d, sh, lds); break;
        case 2: tessera_group_scores_i8_y_impl(qh, ldq, 2, k, ldk, scales, ss, n, d, sh, lds); break;
        default: tessera_group_scores_i8_y_impl(qh, ldq, 1, k, ldk, scales, ss, n, d, sh, lds); break;
        }
    }
}
__attribute__((target("avx2,fma"))) static inline void tessera_group_values_i8_avx2(
    const float *p, size_t ldp, size_t heads, const int8_t *v, size_t ldv, const float *scales, size_t ss, size_t n, size_t d, float *y,
    size_t ldy, int accumulate) {
    for (size_t h0 = 0; h0 < heads; h0 += 4) {
        const float *ph = p + h0 * ldp;
        float *yh = y + h0 * ldy;
        switch (heads - h0 >= 4 ? 4 : heads - h0) {
        case 4: tessera_group_values_i8_y_impl(ph, ldp, 4, v, ldv, scales, ss, n, d, yh, ldy, accumulate); break;
        case 3: tessera_group_values_i8_y_impl(ph, ldp, 3, v, ldv, scales, ss, n, d, yh, ldy, accumulate); break;
        case 2: tessera_group_values_i8_y_impl(ph, ldp, 2, v, ldv, scales, ss, n, d, yh, ldy, accumulate); break;
        default: tessera_group_values_i8_y_impl(ph, ldp, 1, v, ldv, scales, ss, n, d, yh, ldy, accumulate); break;
        }
    }
}
/// dst[i] = the IEEE half nearest src[i] (ties to even), for i < count.
__attribute__((target("avx2,f16c"))) static inline void tessera_float_to_half_avx2(const float *src, uint16_t *dst, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (i < count) {
        float tail[8] = {0};
        uint16_t out[8];
        for (size_t t = 0; t < count - i; t++) tail[t] = src[i + t];
        _mm_storeu_si128((__m128i *)out, _mm256_cvtps_ph(_mm256_loadu_ps(tail), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        for (size_t t = 0; t < count - i; t++) dst[i + t] = out[t];
    }
}
/// d0 · (w · x)[0..15] + d1 · (w · x)[16..31] for 32 signed bytes and 16-bit activations.
__attribute__((target("avx2,fma"))) static inline __m256 tessera_dot_s8s16_avx2(const int8_t *w, const int16_t *x, float d0, float d1) {
    __m256i lo = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w)), _mm256_loadu_si256((const __m256i *)x));
    __m256i hi = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16))),
                                   _mm256_loadu_si256((const __m256i *)(x + 16)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_set1_ps(d0), _mm256_mul_ps(_mm256_cvtepi32_ps(hi), _mm256_set1_ps(d1)));
}
/// The same two with VNNI (vpdpbusd: u8 x s8 summed in groups of 4 straight into int32).
__attribute__((target("avx2,avx512vl,avx512vnni"))) static inline __m256 tessera_dot_u4s8_vnni(const uint8_t *w, const int8_t *x) {
    __m128i packed = _mm_loadu_si128((const __m128i *)w);
    __m256i nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
    return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), nibbles, _mm256_loadu_si256((const __m256i *)x)));
}
__attribute__((target("avx2,avx512vl,avx512vnni"))) static inline __m256 tessera_dot_s8s8_vnni(const int8_t *w, const int8_t *x) {
    __m256i wv = _mm256_loadu_si256((const __m256i *)w), xv = _mm256_loadu_si256((const __m256i *)x);
    return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv)));
}
#endif

#ifdef __cplusplus
}
#endif
#endif
