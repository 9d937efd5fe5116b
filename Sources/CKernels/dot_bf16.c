// Decode's dot products for bf16 rows against float activations: each weight widened to f32 (bf16 is an f32's
// top half: a zero extension and a shift) and multiplied in f32. AVX512_BF16's vdpbf16ps would need x rounded to
// bf16 too (a relative error of 2^-9 per term, past what the kernels are held to against the reference), and
// decode reads 2 bytes per weight whichever way it multiplies: the widening keeps up with memory.
#include "CKernels.h"
#include "formats_impl.h"
#include <immintrin.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define AVX2 __attribute__((target("avx2,fma")))

static inline float bf16_f32(const uint8_t *p) {
    uint16_t h; memcpy(&h, p, 2);
    const uint32_t u = (uint32_t)h << 16;
    float f; memcpy(&f, &u, 4);
    return f;
}

static float row_scalar(const uint8_t *p, size_t k, const float *x) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= k; i += 4) {
        s0 += bf16_f32(p + 2 * i) * x[i]; s1 += bf16_f32(p + 2 * i + 2) * x[i + 1];
        s2 += bf16_f32(p + 2 * i + 4) * x[i + 2]; s3 += bf16_f32(p + 2 * i + 6) * x[i + 3];
    }
    for (; i < k; i++) s0 += bf16_f32(p + 2 * i) * x[i];
    return (s0 + s1) + (s2 + s3);
}

void hr_rows_bf16_scalar(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)xa;
    for (size_t r = r0; r < r1; r++) y[r] = row_scalar(w + r * rb, k, x);
}

AVX2 static inline __m256 widen8(const uint8_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

AVX2 void hr_rows_bf16_avx2(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)xa;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * rb;
        __m256 a = _mm256_setzero_ps(), c = a;
        size_t i = 0;
        for (; i + 16 <= k; i += 16) {
            a = _mm256_fmadd_ps(widen8(p + 2 * i), _mm256_loadu_ps(x + i), a);
            c = _mm256_fmadd_ps(widen8(p + 2 * i + 16), _mm256_loadu_ps(x + i + 8), c);
        }
        const __m256 s = _mm256_add_ps(a, c);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        y[r] = _mm_cvtss_f32(h) + row_scalar(p + 2 * i, k - i, x + i);
    }
}

AVX512 static inline __m512 widen16(const uint8_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

// Four rows at a time share the loads of x; each row's line 1 KiB ahead is prefetched, past a row's end the start
// of the next group's row (as the f16 kernel does).
AVX512 void hr_rows_bf16_avx512(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)xa;
    const size_t k32 = k / 32 * 32;
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        const uint8_t *p0 = w + r * rb, *p1 = p0 + rb, *p2 = p1 + rb, *p3 = p2 + rb;
        for (size_t i = 0; i < k32; i += 32) {
            const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
            const size_t off = 2 * i + 1024, at = off < rb ? off : 3 * rb + off;
            _mm_prefetch((const char *)p0 + at, _MM_HINT_T0);
            _mm_prefetch((const char *)p1 + at, _MM_HINT_T0);
            _mm_prefetch((const char *)p2 + at, _MM_HINT_T0);
            _mm_prefetch((const char *)p3 + at, _MM_HINT_T0);
            a0 = _mm512_fmadd_ps(widen16(p0 + 2 * i), x0, a0); b0 = _mm512_fmadd_ps(widen16(p0 + 2 * i + 32), x1, b0);
            a1 = _mm512_fmadd_ps(widen16(p1 + 2 * i), x0, a1); b1 = _mm512_fmadd_ps(widen16(p1 + 2 * i + 32), x1, b1);
            a2 = _mm512_fmadd_ps(widen16(p2 + 2 * i), x0, a2); b2 = _mm512_fmadd_ps(widen16(p2 + 2 * i + 32), x1, b2);
            a3 = _mm512_fmadd_ps(widen16(p3 + 2 * i), x0, a3); b3 = _mm512_fmadd_ps(widen16(p3 + 2 * i + 32), x1, b3);
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0)) + row_scalar(p0 + 2 * k32, k - k32, x + k32);
        y[r + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1)) + row_scalar(p1 + 2 * k32, k - k32, x + k32);
        y[r + 2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2)) + row_scalar(p2 + 2 * k32, k - k32, x + k32);
        y[r + 3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3)) + row_scalar(p3 + 2 * k32, k - k32, x + k32);
    }
    if (r < r1) hr_rows_bf16_avx2(w, rb, k, x, xa, r, r1, y);
}
