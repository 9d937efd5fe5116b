// Memory-bandwidth kernels for `headroom probe`. Each has an AVX-512, an AVX2 and a scalar
// version; the dispatcher picks the widest this CPU runs, once.
#include "CKernels.h"
#include <immintrin.h>
#include <stdint.h>

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
