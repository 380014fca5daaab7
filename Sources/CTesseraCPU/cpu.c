// CPU feature detection, futex and clock for Tessera (see include/CTesseraCPU.h).
#define _GNU_SOURCE
#include "CTesseraCPU.h"
#include <sched.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#endif
#if defined(__x86_64__)
#include <cpuid.h>
#endif

uint32_t tessera_cpu_features(void) {
    uint32_t f = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) f |= TESSERA_CPU_SSE42;
    if (__builtin_cpu_supports("avx")) f |= TESSERA_CPU_AVX;
    if (__builtin_cpu_supports("avx2")) f |= TESSERA_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= TESSERA_CPU_FMA;
    if (__builtin_cpu_supports("bmi2")) f |= TESSERA_CPU_BMI2;
    if (__builtin_cpu_supports("avx512f")) f |= TESSERA_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) f |= TESSERA_CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512vl")) f |= TESSERA_CPU_AVX512VL;
    if (__builtin_cpu_supports("avx512dq")) f |= TESSERA_CPU_AVX512DQ;
    if (__builtin_cpu_supports("avx512vnni")) f |= TESSERA_CPU_AVX512VNNI;
    if (__builtin_cpu_supports("avx512bf16")) f |= TESSERA_CPU_AVX512BF16;
    // F16C and AVX-VNNI are not known to every compiler's __builtin_cpu_supports: read cpuid directly.
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) && (f & TESSERA_CPU_AVX)) f |= TESSERA_CPU_F16C;
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)) && (f & TESSERA_CPU_AVX2)) f |= TESSERA_CPU_AVXVNNI;
#endif
    return f;
}

void tessera_cpu_brand(char *buffer, size_t size) {
    if (size == 0) return;
    buffer[0] = 0;
#if defined(__x86_64__)
    unsigned regs[12];
    if (__get_cpuid_max(0x80000000, 0) < 0x80000004 || size < 49) return;
    for (unsigned i = 0; i < 3; i++) __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    memcpy(buffer, regs, 48);
    buffer[48] = 0;
#endif
}

int tessera_available_cpus(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void tessera_futex_wait(uint32_t *address, uint32_t expected) {
#if defined(__linux__)
    syscall(SYS_futex, address, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    (void)address; (void)expected;
    sched_yield();
#endif
}

void tessera_futex_wake(uint32_t *address, int count) {
#if defined(__linux__)
    syscall(SYS_futex, address, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
#else
    (void)address; (void)count;
#endif
}

uint64_t tessera_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static __thread int inside_parallel = 0;
int tessera_tls_inside_parallel(void) { return inside_parallel; }
void tessera_tls_set_inside_parallel(int value) { inside_parallel = value; }

void tessera_malloc_release(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

void tessera_malloc_fix_mmap_threshold(int bytes) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, bytes);
#else
    (void)bytes;
#endif
}

static __thread void *scratch_buffers[TESSERA_SCRATCH_SLOTS];
static __thread size_t scratch_sizes[TESSERA_SCRATCH_SLOTS];

void *tessera_thread_scratch(int slot, size_t bytes) {
    if (slot < 0 || slot >= TESSERA_SCRATCH_SLOTS) return NULL;
    if (bytes <= scratch_sizes[slot] && scratch_buffers[slot]) return scratch_buffers[slot];
    size_t size = bytes < 4096 ? 4096 : bytes;
    size = (size + size / 4 + 63) & ~(size_t)63;  /* grow with headroom, keep 64-byte multiples */
    free(scratch_buffers[slot]);
    scratch_buffers[slot] = aligned_alloc(64, size);
    scratch_sizes[slot] = scratch_buffers[slot] ? size : 0;
    return scratch_buffers[slot];
}

int tessera_advise_huge_pages(void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (bytes < 2 * huge) return 0;
    uintptr_t start = ((uintptr_t)p + huge - 1) & ~(huge - 1), end = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (end <= start) return 0;
    return madvise((void *)start, end - start, MADV_HUGEPAGE) == 0;
#else
    (void)p; (void)bytes;
    return 0;
#endif
}

// MARK: - Vocabulary-sized scans
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

static float tessera_max_f32(const float *x, size_t n);

size_t tessera_argmax_f32(const float *x, size_t n) {
    if (n == 0) return 0;
    // The largest (maxps keeps the running value when x is NaN), then its first place.
    const float best = tessera_max_f32(x, n);
    size_t k = 0;
#if defined(__x86_64__)
    const __m128 b = _mm_set1_ps(best);
    for (; k + 4 <= n; k += 4) if (_mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(x + k), b))) break;
#endif
    for (; k < n; k++) if (x[k] == best) return k;
    return 0;
}

/// The largest of x[0..<n] (-inf when empty or all NaN).
static float tessera_max_f32(const float *x, size_t n) {
    float best = -INFINITY;
    size_t i = 0;
#if defined(__x86_64__)
    __m128 m0 = _mm_set1_ps(-INFINITY), m1 = m0;
    for (; i + 8 <= n; i += 8) {
        m0 = _mm_max_ps(_mm_loadu_ps(x + i), m0);
        m1 = _mm_max_ps(_mm_loadu_ps(x + i + 4), m1);
    }
    float lanes[8];
    _mm_storeu_ps(lanes, m0);
    _mm_storeu_ps(lanes + 4, m1);
    for (int j = 0; j < 8; j++) if (lanes[j] > best) best = lanes[j];
#endif
    for (; i < n; i++) if (x[i] > best) best = x[i];
    return best;
}

float tessera_min_block_max_f32(const float *x, size_t n, size_t blocks) {
    float smallest = INFINITY;
    for (size_t b = 0; b < blocks; b++) {
        const size_t lo = n * b / blocks, hi = n * (b + 1) / blocks;
        const float m = tessera_max_f32(x + lo, hi - lo);
        if (m < smallest) smallest = m;
    }
    return smallest;
}

/// The sum of one run of 16 in four float lanes.
static inline float tessera_run16_sum(const float *x) {
#if defined(__x86_64__)
    __m128 s = _mm_add_ps(_mm_add_ps(_mm_loadu_ps(x), _mm_loadu_ps(x + 4)), _mm_add_ps(_mm_loadu_ps(x + 8), _mm_loadu_ps(x + 12)));
    float lanes[4];
    _mm_storeu_ps(lanes, s);
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#else
    float s = 0;
    for (int j = 0; j < 16; j++) s += x[j];
    return s;
#endif
}

double tessera_sum_f32(const float *x, size_t n) {
    double total = 0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) total += tessera_run16_sum(x + i);
    for (; i < n; i++) total += x[i];
    return total;
}

size_t tessera_select_range_f32(const float *x, size_t n, float lo, float hi, int64_t *out) {
    size_t count = 0, i = 0;
    const int unbounded = hi == INFINITY;  // [lo, +inf]: +inf values count too
#if defined(__x86_64__)
    const __m128 l = _mm_set1_ps(lo), h = _mm_set1_ps(hi);
    for (; i + 4 <= n; i += 4) {
        const __m128 v = _mm_loadu_ps(x + i);
        const __m128 below = unbounded ? _mm_cmpeq_ps(v, v) : _mm_cmplt_ps(v, h);
        int mask = _mm_movemask_ps(_mm_and_ps(_mm_cmpge_ps(v, l), below));
        while (mask) {
            out[count++] = (int64_t)(i + __builtin_ctz(mask));
            mask &= mask - 1;
        }
    }
#endif
    for (; i < n; i++) if (x[i] >= lo && (unbounded || x[i] < hi)) out[count++] = (int64_t)i;
    return count;
}

size_t tessera_cumulative_find_f32(const float *x, size_t n, double target) {
    double cumulative = 0;
    size_t i = 0, last = 0;
    for (; i + 16 <= n; i += 16) {
        const double run = tessera_run16_sum(x + i);
        if (cumulative + run > target) break;
        cumulative += run;
    }
    for (; i < n; i++) {
        cumulative += x[i];
        if (x[i] > 0) last = i;
        if (cumulative > target) return i;
    }
    // Rounding left the target just past the sum (a run summed whole, then value by value): the last
    // value that can be drawn, never one of probability 0.
    if (last == 0) for (size_t j = n; j-- > 0;) if (x[j] > 0) return j;
    return last;
}
