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
/// not allocate per call. Slot 0: GEMM packing; slot 1: attention workspaces; slot 2: dequantised weight panels.
enum { TESSERA_SCRATCH_GEMM = 0, TESSERA_SCRATCH_ATTENTION = 1, TESSERA_SCRATCH_WEIGHTS = 2, TESSERA_SCRATCH_SLOTS = 4 };
/// At least `bytes` bytes, valid until the next call for the same slot on the same thread.
void *tessera_thread_scratch(int slot, size_t bytes);

// MARK: - Allocator control (for memory measurements)
/// Returns freed heap memory to the OS (malloc_trim).
void tessera_malloc_release(void);
/// Fixes glibc's mmap threshold (disabling its growth after large frees), so freed large blocks leave the resident set.
void tessera_malloc_fix_mmap_threshold(int bytes);

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
/// Transposes an 8x8 block of floats: dst[c * ldd + r] = src[r * lds + c] (for packing (out, in) weights).
__attribute__((target("avx2"))) static inline void tessera_transpose8x8_avx2(const float *src, size_t lds, float *dst, size_t ldd) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds), r2 = _mm256_loadu_ps(src + 2 * lds),
           r3 = _mm256_loadu_ps(src + 3 * lds), r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds),
           r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44),
           u3 = _mm256_shuffle_ps(t1, t3, 0xEE), u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
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
/// Nibbles x 16-bit activations (vpmaddwd): 8 int32 partial sums as floats (any lane order; the sum counts).
__attribute__((target("avx2"))) static inline __m256 tessera_dot_u4s16_avx2(const uint8_t *w, const int16_t *x) {
    __m128i packed = _mm_loadu_si128((const __m128i *)w), mask = _mm_set1_epi8(0x0F);
    __m256i lo = _mm256_cvtepu8_epi16(_mm_and_si128(packed, mask));                    // values 0..15
    __m256i hi = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), mask)); // values 16..31
    __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_loadu_si256((const __m256i *)x)),
                                   _mm256_madd_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 16))));
    return _mm256_cvtepi32_ps(sum);
}
/// The same for two tokens' activations at once: the nibbles are unpacked once for both.
__attribute__((target("avx2"))) static inline void tessera_dot2_u4s16_avx2(const uint8_t *w, const int16_t *x, const int16_t *x2,
                                                                          float *out, float *out2) {
    __m128i packed = _mm_loadu_si128((const __m128i *)w), mask = _mm_set1_epi8(0x0F);
    __m256i lo = _mm256_cvtepu8_epi16(_mm_and_si128(packed, mask));
    __m256i hi = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), mask));
    _mm256_storeu_ps(out, _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_loadu_si256((const __m256i *)x)),
                                                    _mm256_madd_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 16))))));
    _mm256_storeu_ps(out2, _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_loadu_si256((const __m256i *)x2)),
                                                     _mm256_madd_epi16(hi, _mm256_loadu_si256((const __m256i *)(x2 + 16))))));
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
