// Memory-bandwidth kernels for `headroom probe`. Each has an AVX-512, an AVX2 and a scalar
// version; the dispatcher picks the widest this CPU runs, once.
#include "CKernels.h"
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>

static int isa_level = -1; // 2 = avx512, 1 = avx2, 0 = scalar

static int detect(void) {
    if (isa_level >= 0) return isa_level;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) isa_level = 2;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa_level = 1;
    else isa_level = 0;
    return isa_level;
}

const char *hr_isa(void) {
    switch (detect()) {
    case 2: return "avx512";
    case 1: return "avx2";
    default: return "scalar";
    }
}

const char *hr_openblas_coretype_hint(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16")) return "Cooperlake";
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return 0;
}

// ---- one stream ------------------------------------------------------------------------

__attribute__((target("avx512f")))
static float read_stream_avx512(const float *x, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
        a4 = _mm512_add_ps(a4, _mm512_loadu_ps(x + i + 64));
        a5 = _mm512_add_ps(a5, _mm512_loadu_ps(x + i + 80));
        a6 = _mm512_add_ps(a6, _mm512_loadu_ps(x + i + 96));
        a7 = _mm512_add_ps(a7, _mm512_loadu_ps(x + i + 112));
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    float total = _mm512_reduce_add_ps(s);
    for (; i < n; i++) total += x[i];
    return total;
}

__attribute__((target("avx2,fma")))
static float read_stream_avx2(const float *x, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    float total = 0;
    for (int k = 0; k < 8; k++) total += lanes[k];
    for (; i < n; i++) total += x[i];
    return total;
}

static float read_stream_scalar(const float *x, size_t n) {
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) { a0 += x[i]; a1 += x[i + 1]; a2 += x[i + 2]; a3 += x[i + 3]; }
    float total = a0 + a1 + a2 + a3;
    for (; i < n; i++) total += x[i];
    return total;
}

float hr_read_stream(const float *x, size_t n) {
    switch (detect()) {
    case 2: return read_stream_avx512(x, n);
    case 1: return read_stream_avx2(x, n);
    default: return read_stream_scalar(x, n);
    }
}

// ---- several rows side by side ------------------------------------------------------------

#define MAX_ROWS 16

__attribute__((target("avx512f")))
static float read_rows_avx512(const float *x, size_t n, size_t rows) {
    size_t len = n / rows;
    len -= len % 32;
    __m512 acc[MAX_ROWS][2];
    for (size_t r = 0; r < rows; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    for (size_t j = 0; j < len; j += 32) {
        for (size_t r = 0; r < rows; r++) {
            const float *p = x + r * len + j;
            acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(p));
            acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(p + 16));
        }
    }
    __m512 s = _mm512_setzero_ps();
    for (size_t r = 0; r < rows; r++) s = _mm512_add_ps(s, _mm512_add_ps(acc[r][0], acc[r][1]));
    float total = _mm512_reduce_add_ps(s);
    for (size_t i = rows * len; i < n; i++) total += x[i];
    return total;
}

__attribute__((target("avx2,fma")))
static float read_rows_avx2(const float *x, size_t n, size_t rows) {
    size_t len = n / rows;
    len -= len % 16;
    __m256 acc[MAX_ROWS][2];
    for (size_t r = 0; r < rows; r++) { acc[r][0] = _mm256_setzero_ps(); acc[r][1] = _mm256_setzero_ps(); }
    for (size_t j = 0; j < len; j += 16) {
        for (size_t r = 0; r < rows; r++) {
            const float *p = x + r * len + j;
            acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(p));
            acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(p + 8));
        }
    }
    __m256 s = _mm256_setzero_ps();
    for (size_t r = 0; r < rows; r++) s = _mm256_add_ps(s, _mm256_add_ps(acc[r][0], acc[r][1]));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    float total = 0;
    for (int k = 0; k < 8; k++) total += lanes[k];
    for (size_t i = rows * len; i < n; i++) total += x[i];
    return total;
}

static float read_rows_scalar(const float *x, size_t n, size_t rows) {
    size_t len = n / rows;
    float acc[MAX_ROWS] = {0};
    for (size_t j = 0; j < len; j++)
        for (size_t r = 0; r < rows; r++) acc[r] += x[r * len + j];
    float total = 0;
    for (size_t r = 0; r < rows; r++) total += acc[r];
    for (size_t i = rows * len; i < n; i++) total += x[i];
    return total;
}

float hr_read_rows(const float *x, size_t n, size_t rows) {
    if (rows < 1) rows = 1;
    if (rows > MAX_ROWS) rows = MAX_ROWS;
    switch (detect()) {
    case 2: return read_rows_avx512(x, n, rows);
    case 1: return read_rows_avx2(x, n, rows);
    default: return read_rows_scalar(x, n, rows);
    }
}

// ---- the decode kernels' own walk: groups of four rows, prefetched, on the kernel pool -------------------
// hr_matvec reads a weight matrix four rows at a time, asks for each row's line PF_AHEAD bytes on (past a
// row's end, the same offset in the next group's row) and shares chunks of 64 rows among the pool's threads
// as they come free. Neighbouring chunks on the two threads stream from neighbouring memory and the
// prefetches run ahead of the hardware prefetcher: on this project's 2-core machine that read 28-30 GB/s
// where one stream per thread read 24 (issue: decode measured above a roofline set by the plain patterns).
// The ISA follows the decode kernels' choice (hr_isa_level, which the tests can cap), not detect().

#define PF_GROUP 4
#define PF_CHUNK 64     // rows per claim, as hr_matvec
#define PF_AHEAD 1024   // bytes ahead in each row, as the f16 decode kernel

typedef struct { const float *x; size_t row; float *sums; } pf_job;

static inline const char *pf_at(const float *p, size_t byte, size_t rb) {
    const size_t off = byte + PF_AHEAD;
    return (const char *)p + (off < rb ? off : 3 * rb + off);
}

// Sum of rows [lo, hi) (hi - lo a multiple of PF_GROUP) of `row` floats each.
__attribute__((target("avx512f")))
static float pf_rows_avx512(const float *x, size_t row, size_t lo, size_t hi) {
    const size_t rb = 4 * row, body = row - row % 32;
    __m512 s = _mm512_setzero_ps();
    float tail = 0;
    for (size_t r = lo; r < hi; r += PF_GROUP) {
        const float *p0 = x + r * row, *p1 = p0 + row, *p2 = p1 + row, *p3 = p2 + row;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (size_t i = 0; i < body; i += 32) {
            // 128 bytes of each row per step: two lines to ask for.
            _mm_prefetch(pf_at(p0, 4 * i, rb), _MM_HINT_T0); _mm_prefetch(pf_at(p0, 4 * i + 64, rb), _MM_HINT_T0);
            _mm_prefetch(pf_at(p1, 4 * i, rb), _MM_HINT_T0); _mm_prefetch(pf_at(p1, 4 * i + 64, rb), _MM_HINT_T0);
            _mm_prefetch(pf_at(p2, 4 * i, rb), _MM_HINT_T0); _mm_prefetch(pf_at(p2, 4 * i + 64, rb), _MM_HINT_T0);
            _mm_prefetch(pf_at(p3, 4 * i, rb), _MM_HINT_T0); _mm_prefetch(pf_at(p3, 4 * i + 64, rb), _MM_HINT_T0);
            a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p0 + i)); b0 = _mm512_add_ps(b0, _mm512_loadu_ps(p0 + i + 16));
            a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p1 + i)); b1 = _mm512_add_ps(b1, _mm512_loadu_ps(p1 + i + 16));
            a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p2 + i)); b2 = _mm512_add_ps(b2, _mm512_loadu_ps(p2 + i + 16));
            a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p3 + i)); b3 = _mm512_add_ps(b3, _mm512_loadu_ps(p3 + i + 16));
        }
        s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, b0), _mm512_add_ps(a1, b1)),
                                           _mm512_add_ps(_mm512_add_ps(a2, b2), _mm512_add_ps(a3, b3))));
        for (size_t i = body; i < row; i++) tail += p0[i] + p1[i] + p2[i] + p3[i];
    }
    return _mm512_reduce_add_ps(s) + tail;
}

__attribute__((target("avx2,fma")))
static float pf_rows_avx2(const float *x, size_t row, size_t lo, size_t hi) {
    const size_t rb = 4 * row, body = row - row % 16;
    __m256 s = _mm256_setzero_ps();
    float tail = 0;
    for (size_t r = lo; r < hi; r += PF_GROUP) {
        const float *p0 = x + r * row, *p1 = p0 + row, *p2 = p1 + row, *p3 = p2 + row;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (size_t i = 0; i < body; i += 16) {
            _mm_prefetch(pf_at(p0, 4 * i, rb), _MM_HINT_T0); _mm_prefetch(pf_at(p1, 4 * i, rb), _MM_HINT_T0);
            _mm_prefetch(pf_at(p2, 4 * i, rb), _MM_HINT_T0); _mm_prefetch(pf_at(p3, 4 * i, rb), _MM_HINT_T0);
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p0 + i)); b0 = _mm256_add_ps(b0, _mm256_loadu_ps(p0 + i + 8));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p1 + i)); b1 = _mm256_add_ps(b1, _mm256_loadu_ps(p1 + i + 8));
            a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p2 + i)); b2 = _mm256_add_ps(b2, _mm256_loadu_ps(p2 + i + 8));
            a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p3 + i)); b3 = _mm256_add_ps(b3, _mm256_loadu_ps(p3 + i + 8));
        }
        s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1)),
                                           _mm256_add_ps(_mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3))));
        for (size_t i = body; i < row; i++) tail += p0[i] + p1[i] + p2[i] + p3[i];
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    for (int k = 0; k < 8; k++) tail += lanes[k];
    return tail;
}

static float pf_rows_scalar(const float *x, size_t row, size_t lo, size_t hi) {
    const size_t rb = 4 * row;
    float total = 0;
    for (size_t r = lo; r < hi; r += PF_GROUP) {
        const float *p0 = x + r * row, *p1 = p0 + row, *p2 = p1 + row, *p3 = p2 + row;
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (size_t i = 0; i < row; i++) {
            if (i % 16 == 0) {   // once per 64-byte line
                _mm_prefetch(pf_at(p0, 4 * i, rb), _MM_HINT_T0); _mm_prefetch(pf_at(p1, 4 * i, rb), _MM_HINT_T0);
                _mm_prefetch(pf_at(p2, 4 * i, rb), _MM_HINT_T0); _mm_prefetch(pf_at(p3, 4 * i, rb), _MM_HINT_T0);
            }
            a0 += p0[i]; a1 += p1[i]; a2 += p2[i]; a3 += p3[i];
        }
        total += (a0 + a1) + (a2 + a3);
    }
    return total;
}

static void pf_range(void *ctx, size_t lo, size_t hi) {
    pf_job *j = ctx;
    float s;
    switch (hr_isa_level()) {
    case 2: s = pf_rows_avx512(j->x, j->row, lo, hi); break;
    case 1: s = pf_rows_avx2(j->x, j->row, lo, hi); break;
    default: s = pf_rows_scalar(j->x, j->row, lo, hi);
    }
    j->sums[lo / PF_CHUNK] = s;   // one slot per chunk: no two threads write the same one
}

float hr_read_prefetch(const float *x, size_t n, size_t row, int threads) {
    if (row < 1) row = 1;
    const size_t rows = n / row / PF_GROUP * PF_GROUP;
    const size_t chunks = (rows + PF_CHUNK - 1) / PF_CHUNK;
    float total = 0;
    if (chunks > 0) {
        float *sums = malloc(chunks * sizeof(float));
        pf_job j = { x, row, sums };
        hr_pool_for(threads < 1 ? 1 : threads, rows, PF_CHUNK, pf_range, &j);
        for (size_t c = 0; c < chunks; c++) total += sums[c];   // in chunk order: the same sum on any thread count
        free(sums);
    }
    // The rows short of a group of four and the floats short of a row: a small tail, read here.
    for (size_t i = rows * row; i < n; i++) total += x[i];
    return total;
}

// ---- triad ------------------------------------------------------------------------------

__attribute__((target("avx512f")))
static void triad_avx512(float *a, const float *b, const float *c, float s, size_t n) {
    __m512 vs = _mm512_set1_ps(s);
    size_t i = 0;
    if (((uintptr_t)a & 63) == 0) {
        for (; i + 32 <= n; i += 32) {
            _mm512_stream_ps(a + i, _mm512_fmadd_ps(vs, _mm512_loadu_ps(c + i), _mm512_loadu_ps(b + i)));
            _mm512_stream_ps(a + i + 16, _mm512_fmadd_ps(vs, _mm512_loadu_ps(c + i + 16), _mm512_loadu_ps(b + i + 16)));
        }
        _mm_sfence();
    }
    for (; i < n; i++) a[i] = b[i] + s * c[i];
}

__attribute__((target("avx2,fma")))
static void triad_avx2(float *a, const float *b, const float *c, float s, size_t n) {
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    if (((uintptr_t)a & 31) == 0) {
        for (; i + 16 <= n; i += 16) {
            _mm256_stream_ps(a + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(c + i), _mm256_loadu_ps(b + i)));
            _mm256_stream_ps(a + i + 8, _mm256_fmadd_ps(vs, _mm256_loadu_ps(c + i + 8), _mm256_loadu_ps(b + i + 8)));
        }
        _mm_sfence();
    }
    for (; i < n; i++) a[i] = b[i] + s * c[i];
}

void hr_triad(float *a, const float *b, const float *c, float s, size_t n) {
    switch (detect()) {
    case 2: triad_avx512(a, b, c, s, n); break;
    case 1: triad_avx2(a, b, c, s, n); break;
    default: for (size_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
    }
}
