// The decoder's element-wise activation, SwiGLU (silu(gate) · up), vectorised: at batch 16 the scalar
// loop over 16 × FFN values per layer cost as much as the attention of all 16 sequences.
#include "CKernels.h"
#include <immintrin.h>
#include <math.h>

#define AVX512 __attribute__((target("avx512f,avx512dq,fma")))

// e^x for x in [-88, 88] (inputs are clamped there): Cody–Waite reduction by ln 2, Cephes' expf polynomial,
// then scaling by 2^n. Within 2 ulp of expf over the range.
AVX512 static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-88.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

AVX512 static void swiglu_avx512(float *out, const float *gate, const float *up, size_t lo, size_t hi) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = lo; i < hi; i += 16) {
        const __mmask16 m = hi - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (hi - i)) - 1);
        const __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
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
