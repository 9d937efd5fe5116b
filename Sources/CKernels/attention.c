// Decode-time attention: one new query per head against the cached keys and values, for one sequence
// or a batch of them, all heads of all sequences split across the pool in one dispatch. Scores, softmax
// and the weighted sum of values, in f32.
#include "CKernels.h"
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>

typedef struct {
    const float *q, *kc, *vc; size_t npos, kv_stride; int heads, kv_heads, hd; float *out; int fast;
} att_job;

__attribute__((target("avx512f,fma")))
static void head_avx512(const att_job *j, int h, float *scores) {
    const int g = h / (j->heads / j->kv_heads), hd = j->hd;
    const float *q = j->q + (size_t)h * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float mx = -INFINITY;
    for (size_t t = 0; t < j->npos; t++) {
        const float *k = j->kc + t * j->kv_stride + (size_t)g * hd;
        __m512 a = _mm512_setzero_ps();
        for (int i = 0; i < hd; i += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(k + i), a);
        float s = _mm512_reduce_add_ps(a) * scale;
        scores[t] = s;
        if (s > mx) mx = s;
    }
    float sum = 0;
    for (size_t t = 0; t < j->npos; t++) { scores[t] = expf(scores[t] - mx); sum += scores[t]; }
    const float inv = 1.0f / sum;
    float *o = j->out + (size_t)h * hd;
    // One pass over the values for up to 128 dims (8 accumulators), so each row of V is read once.
    for (int i0 = 0; i0 < hd; i0 += 128) {
        const int nv = (hd - i0 < 128 ? hd - i0 : 128) / 16;
        __m512 a[8];
        for (int v = 0; v < 8; v++) a[v] = _mm512_setzero_ps();
        for (size_t t = 0; t < j->npos; t++) {
            const float *vr = j->vc + t * j->kv_stride + (size_t)g * hd + i0;
            const __m512 p = _mm512_set1_ps(scores[t]);
            for (int v = 0; v < 8; v++) if (v < nv) a[v] = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 16 * v), a[v]);
        }
        for (int v = 0; v < nv; v++) _mm512_storeu_ps(o + i0 + 16 * v, _mm512_mul_ps(a[v], _mm512_set1_ps(inv)));
    }
}

static void head_scalar(const att_job *j, int h, float *scores) {
    const int g = h / (j->heads / j->kv_heads), hd = j->hd;
    const float *q = j->q + (size_t)h * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float mx = -INFINITY;
    for (size_t t = 0; t < j->npos; t++) {
        const float *k = j->kc + t * j->kv_stride + (size_t)g * hd;
        float s = 0;
        for (int i = 0; i < hd; i++) s += q[i] * k[i];
        scores[t] = s * scale;
        if (scores[t] > mx) mx = scores[t];
    }
    float sum = 0;
    for (size_t t = 0; t < j->npos; t++) { scores[t] = expf(scores[t] - mx); sum += scores[t]; }
    float *o = j->out + (size_t)h * hd;
    for (int i = 0; i < hd; i++) o[i] = 0;
    for (size_t t = 0; t < j->npos; t++) {
        const float *v = j->vc + t * j->kv_stride + (size_t)g * hd;
        const float p = scores[t] / sum;
        for (int i = 0; i < hd; i++) o[i] += p * v[i];
    }
}

typedef struct { const att_job *seqs; int heads; size_t max_npos; } att_batch;

static void att_range(void *p, size_t lo, size_t hi) {
    const att_batch *b = p;
    float *scores = malloc(b->max_npos * sizeof(float));
    for (size_t i = lo; i < hi; i++) {
        const att_job *j = &b->seqs[i / (size_t)b->heads];
        const int h = (int)(i % (size_t)b->heads);
        if (j->fast) head_avx512(j, h, scores); else head_scalar(j, h, scores);
    }
    free(scores);
}

void hr_attention_decode_batch(int b, const float *q, const float *const *kc, const float *const *vc, const size_t *npos,
                               size_t kv_stride, int heads, int kv_heads, int hd, float *out, int threads) {
    if (b < 1) return;
    __builtin_cpu_init();
    const int fast = hd % 16 == 0 && __builtin_cpu_supports("avx512f") && hr_isa_level() >= 2;
    att_job *seqs = malloc((size_t)b * sizeof(att_job));
    size_t max_npos = 1;
    for (int s = 0; s < b; s++) {
        const size_t dim = (size_t)heads * hd;
        seqs[s] = (att_job){ q + s * dim, kc[s], vc[s], npos[s], kv_stride, heads, kv_heads, hd, out + s * dim, fast };
        if (npos[s] > max_npos) max_npos = npos[s];
    }
    att_batch batch = { seqs, heads, max_npos };
    hr_pool_for(threads < 1 ? 1 : threads, (size_t)b * heads, 1, att_range, &batch);
    free(seqs);
}

void hr_attention_decode(const float *q, const float *kc, const float *vc, size_t npos, size_t kv_stride,
                         int heads, int kv_heads, int hd, float *out, int threads) {
    hr_attention_decode_batch(1, q, &kc, &vc, &npos, kv_stride, heads, kv_heads, hd, out, threads);
}
