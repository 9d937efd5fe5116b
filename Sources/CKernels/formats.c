// The one table of weight formats (see formats.h): a new format is one entry here plus its functions.
// Also the generic decode path for formats without a dot kernel of their own: dequantize a row into a
// per-thread buffer with the best dequantization, then dot it with x in f32 on the best vector unit.
#include "CKernels.h"
#include "formats_impl.h"
#include <immintrin.h>
#include <stdlib.h>

#define LEGACY_DOT(t) { hr_rows_##t##_scalar, hr_rows_##t##_avx2, hr_rows_##t##_avx512 }
#define NO_DOT { NULL, NULL, NULL }

static const hr_format formats[] = {
    // type           name     block bytes ftype activation   dequantize: scalar, avx2, avx512        quantize        dot: scalar, avx2, avx512
    { HR_TYPE_F32,  "f32",   1,   4,   0,  HR_ACT_F32,  { hr_dequant_f32, NULL, NULL },              hr_quant_f32,  LEGACY_DOT(f32) },
    { HR_TYPE_F16,  "f16",   1,   2,   1,  HR_ACT_F32,  { hr_dequant_f16, NULL, hr_dequant_f16_avx512 }, hr_quant_f16, LEGACY_DOT(f16) },
    { HR_TYPE_Q4_0, "q4_0",  32,  18,  2,  HR_ACT_Q8_0, { hr_dequant_q4_0, NULL, hr_dequant_q4_0_avx512 }, hr_quant_q4_0, LEGACY_DOT(q4_0) },
    { HR_TYPE_Q8_0, "q8_0",  32,  34,  7,  HR_ACT_Q8_0, { hr_dequant_q8_0, NULL, hr_dequant_q8_0_avx512 }, hr_quant_q8_0, LEGACY_DOT(q8_0) },
    { HR_TYPE_BF16, "bf16",  1,   2,   32, HR_ACT_F32,  { hr_dequant_bf16, NULL, hr_dequant_bf16_avx512 }, hr_quant_bf16, LEGACY_DOT(bf16) },
    { HR_TYPE_Q4_1, "q4_1",  32,  20,  3,  HR_ACT_Q8_0, { hr_dequant_q4_1, NULL, NULL },             hr_quant_q4_1, LEGACY_DOT(q4_1) },
    { HR_TYPE_Q5_0, "q5_0",  32,  22,  8,  HR_ACT_Q8_0, { hr_dequant_q5_0, NULL, NULL },             hr_quant_q5_0, LEGACY_DOT(q5_0) },
    { HR_TYPE_Q5_1, "q5_1",  32,  24,  9,  HR_ACT_Q8_0, { hr_dequant_q5_1, NULL, NULL },             hr_quant_q5_1, LEGACY_DOT(q5_1) },
    { HR_TYPE_Q2_K, "q2_k",  256, 84,  10, HR_ACT_Q8_K, { hr_dequant_q2_k, NULL, hr_dequant_q2_k_avx512 }, hr_quant_q2_k, LEGACY_DOT(q2_k) },
    // llama.cpp has no "Q3_K throughout" file type; Q3_K_S, Q4_K_S and Q5_K_S are the closest (mostly that type).
    { HR_TYPE_Q3_K, "q3_k",  256, 110, 11, HR_ACT_Q8_K, { hr_dequant_q3_k, NULL, hr_dequant_q3_k_avx512 }, hr_quant_q3_k, LEGACY_DOT(q3_k) },
    { HR_TYPE_Q4_K, "q4_k",  256, 144, 14, HR_ACT_Q8_K, { hr_dequant_q4_k, NULL, hr_dequant_q4_k_avx512 }, hr_quant_q4_k, LEGACY_DOT(q4_k) },
    { HR_TYPE_Q5_K, "q5_k",  256, 176, 16, HR_ACT_Q8_K, { hr_dequant_q5_k, NULL, hr_dequant_q5_k_avx512 }, hr_quant_q5_k, LEGACY_DOT(q5_k) },
    { HR_TYPE_Q6_K, "q6_k",  256, 210, 18, HR_ACT_Q8_K, { hr_dequant_q6_k, NULL, hr_dequant_q6_k_avx512 }, hr_quant_q6_k, LEGACY_DOT(q6_k) },
};

#define COUNT ((int)(sizeof formats / sizeof formats[0]))

int hr_format_count(void) { return COUNT; }

const hr_format *hr_format_at(int i) { return i >= 0 && i < COUNT ? &formats[i] : NULL; }

const hr_format *hr_format_of(int type) {
    for (int i = 0; i < COUNT; i++) if (formats[i].type == type) return &formats[i];
    return NULL;
}

hr_dequant_fn hr_format_dequant(const hr_format *f, int level) {
    for (int l = level; l > 0; l--) if (f->dequantize[l]) return f->dequantize[l];
    return f->dequantize[0];
}

// ---- Σ a·b in f32 --------------------------------------------------------------------------------------------

__attribute__((target("avx512f,avx512dq")))
static float dot_avx512(const float *a, const float *b, size_t k) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 32 <= k; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < k; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2,fma")))
static float dot_avx2(const float *a, const float *b, size_t k) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= k; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    const __m256 s = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < k; i++) r += a[i] * b[i];
    return r;
}

static float dot_scalar(const float *a, const float *b, size_t k) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= k; i += 4) { s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3]; }
    for (; i < k; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

float hr_dot_f32(const float *a, const float *b, size_t k, int level) {
    return level >= 2 ? dot_avx512(a, b, k) : level == 1 ? dot_avx2(a, b, k) : dot_scalar(a, b, k);
}

// ---- decode rows through the table ------------------------------------------------------------------------------

static _Thread_local float *row_buf;
static _Thread_local size_t row_cap;

void hr_format_rows(const hr_format *f, int level, const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa,
                    size_t r0, size_t r1, float *y) {
    for (int l = level; l >= 0; l--)
        if (f->dot[l]) { f->dot[l](w, rb, k, x, xa, r0, r1, y); return; }
    if (row_cap < k) { free(row_buf); row_buf = malloc(k * sizeof(float)); row_cap = k; }
    const hr_dequant_fn dq = hr_format_dequant(f, level);
    for (size_t r = r0; r < r1; r++) {
        dq(w + r * rb, k, row_buf);
        y[r] = hr_dot_f32(row_buf, x, k, level);
    }
}
