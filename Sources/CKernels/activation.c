// The decoder's element-wise functions, vectorised: SwiGLU (silu(gate) · up; at batch 16 the scalar loop
// over 16 × FFN values per layer cost as much as the attention of all 16 sequences) and softmax.
#include "CKernels.h"
#include <immintrin.h>
#include <math.h>
#include "simd_math.h"

#define AVX512 HR_AVX512_MATH

AVX512 static void swiglu_avx512(float *out, const float *gate, const float *up, size_t lo, size_t hi) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = lo; i < hi; i += 16) {
        const __mmask16 m = hi - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (hi - i)) - 1);
        const __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
        const __m512 e = hr_exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), u));
    }
}

static void swiglu_scalar(float *out, const float *gate, const float *up, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i++) { const float g = gate[i]; out[i] = g / (1 + expf(-g)) * up[i]; }
}

typedef struct { float *out; const float *gate, *up; int fast; } swiglu_job;

static void swiglu_range(void *p, size_t lo, size_t hi) {
    const swiglu_job *j = p;
    if (j->fast) swiglu_avx512(j->out, j->gate, j->up, lo, hi); else swiglu_scalar(j->out, j->gate, j->up, lo, hi);
}

void hr_swiglu(float *out, const float *gate, const float *up, size_t n, int threads) {
    __builtin_cpu_init();
    swiglu_job j = { out, gate, up, __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && hr_isa_level() >= 2 };
    // Below a few tens of thousands of values a pool dispatch costs more than it saves.
    if (threads <= 1 || n < 32768) swiglu_range(&j, 0, n);
    else hr_pool_for(threads, n, 8192, swiglu_range, &j);
}

HR_AVX512_MATH static void softmax_avx512(float *x, size_t n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        m = _mm512_mask_max_ps(m, k, m, _mm512_maskz_loadu_ps(k, x + i));
    }
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(m));
    __m512 s = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 e = hr_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mx));
        s = _mm512_mask_add_ps(s, k, s, e);
        _mm512_mask_storeu_ps(x + i, k, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(s));
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
    }
}

// softmax_avx512 on 8 lanes; the last n mod 8 values through masked loads and stores (lanes past n count
// -inf to the maximum and 0 to the sum).
HR_AVX2_MATH static void softmax_avx2(float *x, size_t n) {
    const size_t n8 = n & ~(size_t)7;
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - n8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 m = ninf;
    for (size_t i = 0; i < n8; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    if (n8 < n) m = _mm256_max_ps(m, _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + n8, tail), _mm256_castsi256_ps(tail)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const __m256 mx = _mm256_set1_ps(_mm_cvtss_f32(h));
    __m256 s = _mm256_setzero_ps();
    for (size_t i = 0; i < n8; i += 8) {
        const __m256 e = hr_exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), mx));
        s = _mm256_add_ps(s, e);
        _mm256_storeu_ps(x + i, e);
    }
    if (n8 < n) {
        const __m256 e = _mm256_and_ps(hr_exp256(_mm256_sub_ps(_mm256_maskload_ps(x + n8, tail), mx)), _mm256_castsi256_ps(tail));
        s = _mm256_add_ps(s, e);
        _mm256_maskstore_ps(x + n8, tail, e);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / hr_hsum256(s));
    for (size_t i = 0; i < n8; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    if (n8 < n) _mm256_maskstore_ps(x + n8, tail, _mm256_mul_ps(_mm256_maskload_ps(x + n8, tail), inv));
}

void hr_softmax(float *x, size_t n) {
    if (n == 0) return;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && hr_isa_level() >= 2) { softmax_avx512(x, n); return; }
    if (hr_isa_level() >= 1) { softmax_avx2(x, n); return; }   // level 1 implies AVX2 and FMA
    float mx = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (size_t i = 0; i < n; i++) { x[i] = expf(x[i] - mx); sum += x[i]; }
    const float inv = 1.0f / sum;
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}
