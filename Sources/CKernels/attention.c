// Decode-time attention: one new query per head against the cached keys and values, for one sequence
// or a batch of them, in one pool dispatch. The query heads that share a KV head (grouped-query
// attention) are computed together, so each cached key and value row is read once per group rather than
// once per head. Scores, softmax and the weighted sum of values, in f32: AVX-512, AVX2 or scalar, as
// hr_isa_level allows.
#include "CKernels.h"
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include "simd_math.h"

// Cached rows come in segments: one run of `npos` rows for a contiguous cache, or, with a block table,
// blocks of `bs` rows each (`table[i]` is the physical block of positions i·bs..<(i+1)·bs, its rows
// `kv_stride` floats apart from kc + table[i]·bs·kv_stride). Within a segment the walk is the same.
typedef struct {
    const float *q, *kc, *vc; size_t npos, kv_stride; int heads, kv_heads, hd; float *out; int level;   // 0 scalar, 1 AVX2, 2 AVX-512
    const int32_t *table; size_t bs;
} att_job;

static inline size_t seg_rows(const att_job *j) { return j->table ? j->bs : (j->npos ? j->npos : 1); }

// The first row of segment `s` of the cache at `base` (kc or vc, plus the KV head's offset).
static inline const float *seg_base(const att_job *j, const float *base, size_t s) {
    return j->table ? base + (size_t)j->table[s] * j->bs * j->kv_stride : base;
}

// Row t of the cache at `base`, any segmenting (the scalar path).
static inline const float *cache_row(const att_job *j, const float *base, size_t t) {
    return j->table ? base + ((size_t)j->table[t / j->bs] * j->bs + t % j->bs) * j->kv_stride : base + t * j->kv_stride;
}

#define AVX512 HR_AVX512_MATH

// The 8 sums of a[0..7], r[m] = Σ lanes of a[m], by a joint transpose-and-add (23 operations instead of
// 8 separate reductions of 8).
AVX512 static inline void reduce8(const __m512 a[8], float r[8]) {
    __m512 b[4], c[2];
    for (int i = 0; i < 4; i++)
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44), _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
    for (int i = 0; i < 2; i++)
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88), _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
    // 128-bit lane j of c[0] holds 4 partial sums of a[j], of c[1] those of a[4 + j].
    const __m512 f = _mm512_add_ps(_mm512_unpacklo_ps(c[0], c[1]), _mm512_unpackhi_ps(c[0], c[1]));
    const __m512 g = _mm512_add_ps(f, _mm512_shuffle_ps(f, f, _MM_SHUFFLE(1, 0, 3, 2)));
    float t[16];
    _mm512_storeu_ps(t, g);
    for (int j = 0; j < 4; j++) { r[j] = t[4 * j]; r[4 + j] = t[4 * j + 1]; }
}

// Cached rows are kvDim floats apart and a group reads hd of them: a strided walk the hardware prefetcher
// does not run far enough ahead of. Ask for the row PF_AHEAD positions on (`small`'s 22 layers at 512
// positions: 2.0-2.4 ms a token on 2 threads without, 1.4-1.8 with; 4.2-4.9 and 2.5-3.3 on one).
#define PF_AHEAD 16
static inline void prefetch_row(const float *p, int hd) {
    for (int i = 0; i < hd; i += 16) _mm_prefetch((const char *)(p + i), _MM_HINT_T0);
}

// Prefetches row `a` counted from the start of a segment of `n` rows at `cur`, the rows past its end
// being those of the next segment `next` (none when it is the last).
static inline void prefetch_ahead(const float *cur, const float *next, size_t a, size_t n, size_t stride, int hd) {
    if (a < n) prefetch_row(cur + a * stride, hd);
    else if (next) prefetch_row(next + (a - n) * stride, hd);
}

// `C` query heads (C in 1, 2, 4, 8) that share KV head g, against every cached position: each key row is
// loaded once for all C heads, 8 / C positions go through the 8 accumulators at a time, softmax is
// vectorised, and each value row is read once for all C heads. s holds C × npos scores.
__attribute__((always_inline)) AVX512 static inline void heads_avx512(const att_job *j, int h0, int C, int g, float *s) {
    const int hd = j->hd, P = 8 / C;
    const size_t npos = j->npos;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *q = j->q + (size_t)h0 * hd, *kbase = j->kc + (size_t)g * hd, *vbase = j->vc + (size_t)g * hd;
    const size_t seg = seg_rows(j), stride = j->kv_stride;
    for (size_t s0 = 0; s0 < npos; s0 += seg) {
        const size_t n = npos - s0 < seg ? npos - s0 : seg;
        const float *kb = seg_base(j, kbase, s0 / seg), *kn = s0 + seg < npos ? seg_base(j, kbase, s0 / seg + 1) : NULL;
        float *sc = s + s0;
        size_t t = 0;
        for (; t + P <= n; t += P) {
            for (int p = 0; p < P; p++) prefetch_ahead(kb, kn, t + p + PF_AHEAD, n, stride, hd);
            __m512 a[8];
            for (int m = 0; m < 8; m++) a[m] = _mm512_setzero_ps();
            for (int i = 0; i < hd; i += 16)
                for (int p = 0; p < P; p++) {
                    const __m512 kv = _mm512_loadu_ps(kb + (t + p) * stride + i);
                    for (int h = 0; h < C; h++) a[h * P + p] = _mm512_fmadd_ps(_mm512_loadu_ps(q + h * hd + i), kv, a[h * P + p]);
                }
            float r[8];
            reduce8(a, r);
            for (int h = 0; h < C; h++)
                for (int p = 0; p < P; p++) sc[h * npos + t + p] = r[h * P + p] * scale;
        }
        for (; t < n; t++)
            for (int h = 0; h < C; h++) {
                __m512 a = _mm512_setzero_ps();
                for (int i = 0; i < hd; i += 16)
                    a = _mm512_fmadd_ps(_mm512_loadu_ps(q + h * hd + i), _mm512_loadu_ps(kb + t * stride + i), a);
                sc[h * npos + t] = _mm512_reduce_add_ps(a) * scale;
            }
    }
    for (int h = 0; h < C; h++) hr_softmax(s + h * npos, npos);
    // Weighted sum of values, 16·NC columns at a time with C·NC ≤ 16 accumulators.
    const int NC = 16 / C < hd / 16 ? 16 / C : hd / 16;
    for (int i0 = 0; i0 < hd; i0 += 16 * NC) {
        const int nc = (hd - i0) / 16 < NC ? (hd - i0) / 16 : NC;
        __m512 acc[16];
        for (int m = 0; m < 16; m++) acc[m] = _mm512_setzero_ps();
        for (size_t s0 = 0; s0 < npos; s0 += seg) {
            const size_t n = npos - s0 < seg ? npos - s0 : seg;
            const float *vb = seg_base(j, vbase, s0 / seg), *vn = s0 + seg < npos ? seg_base(j, vbase, s0 / seg + 1) : NULL;
            for (size_t u = 0; u < n; u++) {
                const float *vr = vb + u * stride + i0;
                if (i0 == 0) prefetch_ahead(vb, vn, u + PF_AHEAD, n, stride, hd);
                for (int c = 0; c < NC; c++) {
                    if (c >= nc) break;
                    const __m512 v = _mm512_loadu_ps(vr + 16 * c);
                    for (int h = 0; h < C; h++) acc[h * NC + c] = _mm512_fmadd_ps(_mm512_set1_ps(s[h * npos + s0 + u]), v, acc[h * NC + c]);
                }
            }
        }
        for (int h = 0; h < C; h++)
            for (int c = 0; c < nc; c++) _mm512_storeu_ps(j->out + (size_t)(h0 + h) * hd + i0 + 16 * c, acc[h * NC + c]);
    }
}

AVX512 static void heads_avx512_any(const att_job *j, int h0, int C, int g, float *s) {
    switch (C) {
    case 8: heads_avx512(j, h0, 8, g, s); break;
    case 4: heads_avx512(j, h0, 4, g, s); break;
    case 2: heads_avx512(j, h0, 2, g, s); break;
    default: heads_avx512(j, h0, 1, g, s); break;
    }
}

// ---- AVX2 + FMA (8 lanes, 16 registers): the same walk as heads_avx512 with 8-float columns ----------

#define AVX2 __attribute__((target("avx2,fma")))

// The 8 sums of a[0..7], r[m] = Σ lanes of a[m]: three rounds of horizontal adds and one cross-lane add.
AVX2 static inline void reduce8_avx2(const __m256 a[8], float r[8]) {
    const __m256 s01 = _mm256_hadd_ps(a[0], a[1]), s23 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 s45 = _mm256_hadd_ps(a[4], a[5]), s67 = _mm256_hadd_ps(a[6], a[7]);
    // 128-bit half 0 of s0123 holds the sums of lanes 0-3 of a[0..3], half 1 those of lanes 4-7.
    const __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
    _mm256_storeu_ps(r, _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20), _mm256_permute2f128_ps(s0123, s4567, 0x31)));
}

// heads_avx512 on 8 lanes (hd a multiple of 8): `C` query heads (1, 2, 4, 8) sharing KV head g, 8 / C
// positions through the 8 score accumulators at a time, then each value row read once for all C heads
// into C·NC ≤ 8 accumulators of 8 columns (16 registers: the accumulators, a value row and a broadcast).
__attribute__((always_inline)) AVX2 static inline void heads_avx2(const att_job *j, int h0, int C, int g, float *s) {
    const int hd = j->hd, P = 8 / C;
    const size_t npos = j->npos;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *q = j->q + (size_t)h0 * hd, *kbase = j->kc + (size_t)g * hd, *vbase = j->vc + (size_t)g * hd;
    const size_t seg = seg_rows(j), stride = j->kv_stride;
    for (size_t s0 = 0; s0 < npos; s0 += seg) {
        const size_t n = npos - s0 < seg ? npos - s0 : seg;
        const float *kb = seg_base(j, kbase, s0 / seg), *kn = s0 + seg < npos ? seg_base(j, kbase, s0 / seg + 1) : NULL;
        float *sc = s + s0;
        size_t t = 0;
        for (; t + P <= n; t += P) {
            for (int p = 0; p < P; p++) prefetch_ahead(kb, kn, t + p + PF_AHEAD, n, stride, hd);
            __m256 a[8];
            for (int m = 0; m < 8; m++) a[m] = _mm256_setzero_ps();
            for (int i = 0; i < hd; i += 8)
                for (int p = 0; p < P; p++) {
                    const __m256 kv = _mm256_loadu_ps(kb + (t + p) * stride + i);
                    for (int h = 0; h < C; h++) a[h * P + p] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * hd + i), kv, a[h * P + p]);
                }
            float r[8];
            reduce8_avx2(a, r);
            for (int h = 0; h < C; h++)
                for (int p = 0; p < P; p++) sc[h * npos + t + p] = r[h * P + p] * scale;
        }
        for (; t < n; t++)
            for (int h = 0; h < C; h++) {
                __m256 a = _mm256_setzero_ps();
                for (int i = 0; i < hd; i += 8)
                    a = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * hd + i), _mm256_loadu_ps(kb + t * stride + i), a);
                sc[h * npos + t] = hr_hsum256(a) * scale;
            }
    }
    for (int h = 0; h < C; h++) hr_softmax(s + h * npos, npos);
    // Weighted sum of values, 8·NC columns at a time with C·NC ≤ 8 accumulators.
    const int NC = 8 / C < hd / 8 ? 8 / C : hd / 8;
    for (int i0 = 0; i0 < hd; i0 += 8 * NC) {
        const int nc = (hd - i0) / 8 < NC ? (hd - i0) / 8 : NC;
        __m256 acc[8];
        for (int m = 0; m < 8; m++) acc[m] = _mm256_setzero_ps();
        for (size_t s0 = 0; s0 < npos; s0 += seg) {
            const size_t n = npos - s0 < seg ? npos - s0 : seg;
            const float *vb = seg_base(j, vbase, s0 / seg), *vn = s0 + seg < npos ? seg_base(j, vbase, s0 / seg + 1) : NULL;
            for (size_t u = 0; u < n; u++) {
                const float *vr = vb + u * stride + i0;
                if (i0 == 0) prefetch_ahead(vb, vn, u + PF_AHEAD, n, stride, hd);
                for (int c = 0; c < NC; c++) {
                    if (c >= nc) break;
                    const __m256 v = _mm256_loadu_ps(vr + 8 * c);
                    for (int h = 0; h < C; h++) acc[h * NC + c] = _mm256_fmadd_ps(_mm256_broadcast_ss(s + h * npos + s0 + u), v, acc[h * NC + c]);
                }
            }
        }
        for (int h = 0; h < C; h++)
            for (int c = 0; c < nc; c++) _mm256_storeu_ps(j->out + (size_t)(h0 + h) * hd + i0 + 8 * c, acc[h * NC + c]);
    }
}

AVX2 static void heads_avx2_any(const att_job *j, int h0, int C, int g, float *s) {
    switch (C) {
    case 8: heads_avx2(j, h0, 8, g, s); break;
    case 4: heads_avx2(j, h0, 4, g, s); break;
    case 2: heads_avx2(j, h0, 2, g, s); break;
    default: heads_avx2(j, h0, 1, g, s); break;
    }
}

static void head_scalar(const att_job *j, int h, float *scores) {
    const int g = h / (j->heads / j->kv_heads), hd = j->hd;
    const float *q = j->q + (size_t)h * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float mx = -INFINITY;
    for (size_t t = 0; t < j->npos; t++) {
        const float *k = cache_row(j, j->kc + (size_t)g * hd, t);
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
        const float *v = cache_row(j, j->vc + (size_t)g * hd, t);
        const float p = scores[t] / sum;
        for (int i = 0; i < hd; i++) o[i] += p * v[i];
    }
}

// A work item is one sequence's chunk of query heads sharing a KV head: the group split into chunks of 8,
// 4, 2, 1 (a group of 6 is 4 + 2), so that the fast path always fills its 8 accumulators.
typedef struct { int h0, count; } head_chunk;
typedef struct { const att_job *seqs; const head_chunk *chunks; int nchunks; size_t max_npos; } att_batch;

static void att_range(void *p, size_t lo, size_t hi) {
    const att_batch *b = p;
    float *scores = malloc(8 * b->max_npos * sizeof(float));
    for (size_t i = lo; i < hi; i++) {
        const att_job *j = &b->seqs[i / (size_t)b->nchunks];
        const head_chunk ch = b->chunks[i % (size_t)b->nchunks];
        const int g = ch.h0 / (j->heads / j->kv_heads);
        if (j->level == 2) heads_avx512_any(j, ch.h0, ch.count, g, scores);
        else if (j->level == 1) heads_avx2_any(j, ch.h0, ch.count, g, scores);
        else for (int h = ch.h0; h < ch.h0 + ch.count; h++) head_scalar(j, h, scores);
    }
    free(scores);
}

// One query row per job: a sequence's cache (kc[s], vc[s]) contiguous, or, with `tables`, the pool's
// blocks that tables[s] names.
static void attention_rows(int b, const float *q, const float *const *kc, const float *const *vc, const int32_t *const *tables,
                           size_t bs, const size_t *npos, size_t kv_stride, int heads, int kv_heads, int hd, float *out, int threads) {
    if (b < 1) return;
    __builtin_cpu_init();
    // The grouped kernels: AVX-512 for head dims in 16s, AVX2 for those in 8s (and where AVX-512 is capped or
    // absent), else the scalar loop. hr_isa_level() >= 1 implies AVX2, FMA and F16C.
    const int isa = hr_isa_level();
    const int level = isa >= 2 && hd % 16 == 0 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") ? 2
                    : isa >= 1 && hd % 8 == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
    att_job *seqs = malloc((size_t)b * sizeof(att_job));
    size_t max_npos = 1;
    for (int s = 0; s < b; s++) {
        const size_t dim = (size_t)heads * hd;
        seqs[s] = (att_job){ q + s * dim, kc[s], vc[s], npos[s], kv_stride, heads, kv_heads, hd, out + s * dim, level,
                             tables ? tables[s] : NULL, bs };
        if (npos[s] > max_npos) max_npos = npos[s];
    }
    const int group = heads / kv_heads;
    head_chunk *chunks = malloc((size_t)heads * sizeof(head_chunk));
    int nchunks = 0;
    for (int g = 0; g < kv_heads; g++)
        for (int h = g * group; h < (g + 1) * group;) {
            const int left = (g + 1) * group - h, c = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
            chunks[nchunks++] = (head_chunk){ h, c };
            h += c;
        }
    att_batch batch = { seqs, chunks, nchunks, max_npos };
    hr_pool_for(threads < 1 ? 1 : threads, (size_t)b * nchunks, 1, att_range, &batch);
    free(chunks);
    free(seqs);
}

void hr_attention_decode_batch(int b, const float *q, const float *const *kc, const float *const *vc, const size_t *npos,
                               size_t kv_stride, int heads, int kv_heads, int hd, float *out, int threads) {
    attention_rows(b, q, kc, vc, NULL, 0, npos, kv_stride, heads, kv_heads, hd, out, threads);
}

void hr_attention_paged(int rows, const float *q, const float *k_pool, const float *v_pool, const int32_t *const *tables,
                        const size_t *npos, size_t block_size, size_t kv_stride, int heads, int kv_heads, int hd, float *out,
                        int threads) {
    if (rows < 1) return;
    const float **kc = malloc((size_t)rows * sizeof(float *)), **vc = malloc((size_t)rows * sizeof(float *));
    for (int r = 0; r < rows; r++) { kc[r] = k_pool; vc[r] = v_pool; }
    attention_rows(rows, q, kc, vc, tables, block_size, npos, kv_stride, heads, kv_heads, hd, out, threads);
    free(kc);
    free(vc);
}

void hr_attention_decode(const float *q, const float *kc, const float *vc, size_t npos, size_t kv_stride,
                         int heads, int kv_heads, int hd, float *out, int threads) {
    hr_attention_decode_batch(1, q, &kc, &vc, &npos, kv_stride, heads, kv_heads, hd, out, threads);
}
