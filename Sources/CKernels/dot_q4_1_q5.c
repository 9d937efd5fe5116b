// Decode's dot products for q4_1, q5_0 and q5_1 rows against activations in Q8_0 form, as llama.cpp computes
// them: each block's integer Σ q·x with q unsigned (the nibble, plus 16 for a fifth bit), scaled once per
// block; q4_1/q5_1's minimum multiplies the activations' block sum (d_x·Σx_q), q5_0's offset of 16 comes
// back through the same sum in integers. Scalar C, AVX2, and AVX-512 VNNI four rows at a time.
#include "CKernels.h"
#include "formats_impl.h"
#include <immintrin.h>
#include "simd_math.h"
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,f16c,fma")))
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

// The three layouts: f16 d, then f16 m (q4_1, q5_1), then 32 fifth bits (q5_0, q5_1), then 16 bytes of
// nibbles (element j < 16 the low nibble of byte j, element j + 16 its high nibble).
enum { Q4_1, Q5_0, Q5_1 };
INLINE size_t block_bytes(int f) { return f == Q4_1 ? 20 : f == Q5_0 ? 22 : 24; }
INLINE size_t qs_at(int f) { return f == Q4_1 ? 4 : f == Q5_0 ? 6 : 8; }
INLINE size_t qh_at(int f) { return f == Q5_0 ? 2 : 4; }
INLINE int has_min(int f) { return f != Q5_0; }
INLINE int has_fifth(int f) { return f != Q4_1; }

static inline uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

// ---- scalar: also the AVX kernels' odd last block --------------------------------------------------------------

INLINE int block_isum(int f, const uint8_t *b, const int8_t *x) {
    const uint8_t *qs = b + qs_at(f);
    const uint32_t h = has_fifth(f) ? ld32(b + qh_at(f)) : 0;
    int s = 0;
    for (int j = 0; j < 16; j++) {
        const int lo = (qs[j] & 0x0F) | (int)(((h >> j) & 1) << 4), hi = (qs[j] >> 4) | (int)(((h >> (j + 16)) & 1) << 4);
        s += lo * x[j] + hi * x[j + 16];
    }
    return s;
}

// Block `blk`'s term of the row's dot product.
INLINE float block_dot(int f, const uint8_t *b, const hr_q8_0_acts *a, size_t blk) {
    const int isum = block_isum(f, b, a->q + 32 * blk);
    const float dd = hr_f16_table[ld16(b)] * a->d[blk];
    if (!has_min(f)) return dd * (float)(isum - 16 * a->bsum[blk]);
    return dd * (float)isum + hr_f16_table[ld16(b + 2)] * (a->d[blk] * (float)a->bsum[blk]);
}

INLINE void rows_scalar(int f, const uint8_t *w, size_t rb, size_t k, const hr_q8_0_acts *a, size_t r0, size_t r1, float *y) {
    for (size_t r = r0; r < r1; r++) {
        float s = 0;
        for (size_t blk = 0; blk < k / 32; blk++) s += block_dot(f, w + r * rb + blk * block_bytes(f), a, blk);
        y[r] = s;
    }
}

// ---- AVX2: one block per register, [nibbles, nibbles >> 4] & 15 in element order, maddubs then madd ------------

// Byte j of the result is 16 where bit j of h is set, else 0.
AVX2 static inline __m256i fifth_bits_avx2(uint32_t h) {
    const __m256i spread = _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i t = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)h), spread), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi8(t, bit), _mm256_set1_epi8(16));
}

AVX2 INLINE void rows_avx2(int f, const uint8_t *w, size_t rb, size_t k, const hr_q8_0_acts *a, size_t r0, size_t r1, float *y) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const size_t bb = block_bytes(f);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * rb;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
        float accm = 0;
        for (size_t blk = 0; blk < k / 32; blk++) {
            const uint8_t *b = p + blk * bb;
            const __m128i q = _mm_loadu_si128((const __m128i *)(b + qs_at(f)));
            __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
            if (has_fifth(f)) v = _mm256_or_si256(v, fifth_bits_avx2(ld32(b + qh_at(f))));
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(v, _mm256_load_si256((const __m256i *)(a->q + 32 * blk))), ones);
            if (!has_min(f)) s = _mm256_add_epi32(s, _mm256_set1_epi32(-2 * a->bsum[blk]));   // -16·Σx over 8 lanes
            else accm += hr_f16_table[ld16(b + 2)] * (a->d[blk] * (float)a->bsum[blk]);
            const __m256 dd = _mm256_set1_ps(hr_f16_table[ld16(b)] * a->d[blk]);
            if (blk & 1) acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), dd, acc1);
            else acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), dd, acc0);
        }
        y[r] = hr_hsum256(_mm256_add_ps(acc0, acc1)) + accm;
    }
}

// ---- AVX-512 VNNI on 256-bit registers (three vector ports, where 512-bit operations get two, and these kernels
// are short of operations, not of width): as the q4_0 kernel, two blocks' nibbles side by side, the low nibbles
// against the activations laid out to match (hr_q8_0_acts.qp), lanes 0-3 block 2p and 4-7 block 2p+1; the fifth
// bits of each register one 32-bit mask, added as 16 where set. Four rows per pass share the activations.

AVX512 static inline __m256 pair_f16(const uint8_t *p0, const uint8_t *p1) {
    return _mm256_blend_ps(_mm256_broadcast_ss(&hr_f16_table[ld16(p0)]), _mm256_broadcast_ss(&hr_f16_table[ld16(p1)]), 0xF0);
}

// Rows r0 ..< r0 + nr (nr 1 to 4, a constant where inlined), each streaming prefetches the same columns of the
// row `pf` bytes on (the next group's: rows are a few KiB, so prefetching ahead within one would start every
// group cold).
AVX512 INLINE void group_avx512(int f, int nr, const uint8_t *w, size_t rb, size_t k, const hr_q8_0_acts *a, size_t r0,
                                size_t pf, float *y) {
    const size_t bb = block_bytes(f), nb = k / 32;
    const __m256i m4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
    __m256 acc[4];
    for (int j = 0; j < nr; j++) acc[j] = _mm256_setzero_ps();
    for (size_t pi = 0; pi < nb / 2; pi++) {
        const size_t b0 = 2 * pi, off = b0 * bb;
        const __m256i xlo = _mm256_load_si256((const __m256i *)(a->qp + 64 * pi));
        const __m256i xhi = _mm256_load_si256((const __m256i *)(a->qp + 64 * pi + 32));
        const __m256 dx = _mm256_load_ps(a->dp + 8 * pi);
        // q4_1/q5_1: the minimum times d_x·Σx, a quarter in each of the block's 4 lanes; q5_0: -16·Σx likewise.
        __m256 sx = _mm256_setzero_ps();
        __m256i c = _mm256_setzero_si256();
        if (has_min(f))
            sx = _mm256_blend_ps(_mm256_set1_ps(a->d[b0] * (float)a->bsum[b0] * 0.25f),
                                 _mm256_set1_ps(a->d[b0 + 1] * (float)a->bsum[b0 + 1] * 0.25f), 0xF0);
        else
            c = _mm256_slli_epi32(_mm256_load_si256((const __m256i *)(a->c4p + 8 * pi)), 1);
#pragma clang loop unroll(full)
        for (int j = 0; j < nr; j++) {
            const uint8_t *q = w + (r0 + j) * rb + off, *q1 = q + bb;
            _mm_prefetch((const char *)q + pf, _MM_HINT_T0);
            const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(q + qs_at(f)))),
                                                      _mm_loadu_si128((const __m128i *)(q1 + qs_at(f))), 1);
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (has_fifth(f)) {
                const uint32_t h0 = ld32(q + qh_at(f)), h1 = ld32(q1 + qh_at(f));
                lo = _mm256_mask_add_epi8(lo, _cvtu32_mask32((h0 & 0xFFFFu) | (h1 << 16)), lo, sixteen);
                hi = _mm256_mask_add_epi8(hi, _cvtu32_mask32((h0 >> 16) | (h1 & 0xFFFF0000u)), hi, sixteen);
            }
            const __m256i s = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(c, lo, xlo), hi, xhi);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(pair_f16(q, q1), dx), acc[j]);
            if (has_min(f)) acc[j] = _mm256_fmadd_ps(pair_f16(q + 2, q1 + 2), sx, acc[j]);
        }
    }
    for (int j = 0; j < nr; j++) {
        const uint8_t *p = w + (r0 + j) * rb;
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[j]), _mm256_extractf128_ps(acc[j], 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        y[r0 + j] = _mm_cvtss_f32(h) + (nb & 1 ? block_dot(f, p + (nb - 1) * bb, a, nb - 1) : 0.0f);
    }
}

// q5_1 on 512-bit registers: two blocks per register in element order (lanes 0-7 block 2p, 8-15 block 2p+1), so
// the activations are one aligned load and both blocks' fifth bits one 64-bit mask. With a minimum and fifth bits
// to add, this measured 15-20 % faster than the 256-bit kernel in cache; for q4_1 and q5_0 the 256-bit one is
// as fast or faster.
AVX512 static inline __m512i pair_values512(int f, const uint8_t *b0, const uint8_t *b1) {
    __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(b0 + qs_at(f))));
    v = _mm512_mask_broadcast_i32x4(v, 0xFF00, _mm_loadu_si128((const __m128i *)(b1 + qs_at(f))));
    v = _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xFF00FF00u, v, 4), _mm512_set1_epi8(0x0F));
    if (has_fifth(f)) {
        const __mmask64 h = _cvtu64_mask64((uint64_t)ld32(b0 + qh_at(f)) | (uint64_t)ld32(b1 + qh_at(f)) << 32);
        v = _mm512_mask_add_epi8(v, h, v, _mm512_set1_epi8(16));
    }
    return v;
}

AVX512 static inline __m512 pair_f16_512(const uint8_t *p0, const uint8_t *p1) {
    return _mm512_mask_mov_ps(_mm512_set1_ps(hr_f16_table[ld16(p0)]), 0xFF00, _mm512_set1_ps(hr_f16_table[ld16(p1)]));
}

AVX512 INLINE void group512_avx512(int f, int nr, const uint8_t *w, size_t rb, size_t k, const hr_q8_0_acts *a, size_t r0,
                                   size_t pf, float *y) {
    const size_t bb = block_bytes(f), nb = k / 32;
    __m512 acc[4];
    for (int j = 0; j < nr; j++) acc[j] = _mm512_setzero_ps();
    for (size_t pi = 0; pi < nb / 2; pi++) {
        const size_t b0 = 2 * pi, off = b0 * bb;
        const __m512i xv = _mm512_load_si512(a->q + 64 * pi);
        const __m512 dx = _mm512_mask_mov_ps(_mm512_set1_ps(a->d[b0]), 0xFF00, _mm512_set1_ps(a->d[b0 + 1]));
        __m512 sx = _mm512_setzero_ps();
        __m512i c = _mm512_setzero_si512();
        if (has_min(f))
            sx = _mm512_mask_mov_ps(_mm512_set1_ps(a->d[b0] * (float)a->bsum[b0] * 0.125f), 0xFF00,
                                    _mm512_set1_ps(a->d[b0 + 1] * (float)a->bsum[b0 + 1] * 0.125f));
        else
            c = _mm512_mask_mov_epi32(_mm512_set1_epi32(-2 * a->bsum[b0]), 0xFF00, _mm512_set1_epi32(-2 * a->bsum[b0 + 1]));
#pragma clang loop unroll(full)
        for (int j = 0; j < nr; j++) {
            const uint8_t *q = w + (r0 + j) * rb + off;
            _mm_prefetch((const char *)q + pf, _MM_HINT_T0);
            const __m512i s = _mm512_dpbusd_epi32(c, pair_values512(f, q, q + bb), xv);
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(pair_f16_512(q, q + bb), dx), acc[j]);
            if (has_min(f)) acc[j] = _mm512_fmadd_ps(pair_f16_512(q + 2, q + bb + 2), sx, acc[j]);
        }
    }
    for (int j = 0; j < nr; j++) {
        const uint8_t *p = w + (r0 + j) * rb;
        y[r0 + j] = _mm512_reduce_add_ps(acc[j]) + (nb & 1 ? block_dot(f, p + (nb - 1) * bb, a, nb - 1) : 0.0f);
    }
}

AVX512 INLINE void rows_avx512(int f, const uint8_t *w, size_t rb, size_t k, const hr_q8_0_acts *a, size_t r0, size_t r1, float *y) {
    size_t r = r0;
    if (f == Q5_1) {
        for (; r + 4 <= r1; r += 4) group512_avx512(f, 4, w, rb, k, a, r, 4 * rb, y);
        for (; r < r1; r++) group512_avx512(f, 1, w, rb, k, a, r, rb, y);
        return;
    }
    for (; r + 4 <= r1; r += 4) group_avx512(f, 4, w, rb, k, a, r, 4 * rb, y);
    for (; r < r1; r++) group_avx512(f, 1, w, rb, k, a, r, rb, y);
}

// ---- the table's entries ------------------------------------------------------------------------------------------

#define ENTRIES(t, F) \
    void hr_rows_##t##_scalar(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) { \
        (void)x; rows_scalar(F, w, rb, k, xa, r0, r1, y); \
    } \
    AVX2 void hr_rows_##t##_avx2(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) { \
        (void)x; rows_avx2(F, w, rb, k, xa, r0, r1, y); \
    } \
    AVX512 void hr_rows_##t##_avx512(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) { \
        (void)x; rows_avx512(F, w, rb, k, xa, r0, r1, y); \
    }
ENTRIES(q4_1, Q4_1)
ENTRIES(q5_0, Q5_0)
ENTRIES(q5_1, Q5_1)
