// Decode's dot products for q2_K and q3_K rows against Q8_K activations (llama.cpp's design): per sub-block of
// 16 the integer Σ q·x with q unsigned (q2_K's 2 bits; q3_K's 2 bits plus 4 for a set high bit), times the
// sub-block's scale, summed in integers over the super-block and scaled once. q2_K's minimums multiply the
// activations' sums per 16; q3_K's offset of 4 comes back through the same sums. Scalar C, AVX2, AVX-512 VNNI.
#include "CKernels.h"
#include "formats_impl.h"
#include <immintrin.h>
#include "simd_math.h"
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,f16c,fma")))
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
#define QK_K HR_QK_K

// q2_K: 16 bytes of scales (low nibble scale, high nibble minimum), 64 bytes of 2-bit values, f16 d, f16 dmin.
// q3_K: 32 bytes of high bits, 64 bytes of 2-bit values, 12 bytes of 6-bit scales (+32), f16 d.
// The 2-bit values: in each half of 128 elements, element 32g + l is bits 2g..2g+1 of byte l of the half's 32
// bytes; q3_K's high bit of element i is bit i/32 of byte i%32.
#define Q2K_BYTES 84
#define Q3K_BYTES 110

static inline uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline int bits2(const uint8_t *qs, int i) { return (qs[(i / 128) * 32 + i % 32] >> (2 * ((i % 128) / 32))) & 3; }
static inline int hbit(const uint8_t *h, int i) { return (h[i % 32] >> (i / 32)) & 1; }

// q3_K's 16 scales, signed, from the 12 packed bytes: low nibbles in bytes 0-7 (scales 0-7 the low halves,
// 8-15 the high), the top two bits of scale j at bits 2·(j/4) of byte 8 + j%4. Four at a time as ggml does.
static inline void q3k_scales(const uint8_t *s, int8_t out[16]) {
    const uint32_t a0 = ld32(s), a1 = ld32(s + 4), a2 = ld32(s + 8);
    const uint32_t w[4] = {
        (a0 & 0x0F0F0F0Fu) | ((a2 & 0x03030303u) << 4),
        (a1 & 0x0F0F0F0Fu) | (((a2 >> 2) & 0x03030303u) << 4),
        ((a0 >> 4) & 0x0F0F0F0Fu) | (((a2 >> 4) & 0x03030303u) << 4),
        ((a1 >> 4) & 0x0F0F0F0Fu) | (((a2 >> 6) & 0x03030303u) << 4),
    };
    uint8_t u[16];
    memcpy(u, w, 16);
    for (int j = 0; j < 16; j++) out[j] = (int8_t)(u[j] - 32);
}

// ---- scalar ---------------------------------------------------------------------------------------------------

void hr_rows_q2_k_scalar(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x;
    const hr_q8k_block *a = xa;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *b = w + r * rb;
        float sum = 0;
        for (size_t blk = 0; blk < k / QK_K; blk++, b += Q2K_BYTES) {
            int sumi = 0, summ = 0;
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += bits2(b + 16, 16 * g + l) * a[blk].qs[16 * g + l];
                sumi += (b[g] & 0x0F) * s;
                summ += (b[g] >> 4) * a[blk].bsum16[g];
            }
            sum += a[blk].d * (hr_f16_table[ld16(b + 80)] * (float)sumi - hr_f16_table[ld16(b + 82)] * (float)summ);
        }
        y[r] = sum;
    }
}

void hr_rows_q3_k_scalar(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x;
    const hr_q8k_block *a = xa;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *b = w + r * rb;
        float sum = 0;
        for (size_t blk = 0; blk < k / QK_K; blk++, b += Q3K_BYTES) {
            int8_t sc[16];
            q3k_scales(b + 96, sc);
            int sumi = 0;
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int l = 0; l < 16; l++) {
                    const int i = 16 * g + l;
                    s += (bits2(b + 32, i) | hbit(b, i) << 2) * a[blk].qs[i];
                }
                sumi += sc[g] * (s - 4 * a[blk].bsum16[g]);
            }
            sum += a[blk].d * hr_f16_table[ld16(b + 108)] * (float)sumi;
        }
        y[r] = sum;
    }
}

// ---- AVX2: per half of 128, the 32 bytes of 2-bit values shifted by 2g for elements 32g ..< 32g + 32 of the half
// (the activations in their own order), maddubs, then madd by the two sub-blocks' scales ------------------------

AVX2 static inline __m256i two_scales(int lo, int hi) { return _mm256_setr_m128i(_mm_set1_epi16((short)lo), _mm_set1_epi16((short)hi)); }

AVX2 void hr_rows_q2_k_avx2(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x;
    const hr_q8k_block *a = xa;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (size_t r = r0; r < r1; r++) {
        __m256 acc = _mm256_setzero_ps(), accm = acc;
        for (size_t blk = 0; blk < k / QK_K; blk++) {
            const uint8_t *b = w + r * rb + blk * Q2K_BYTES;
            const hr_q8k_block *xb = a + blk;
            const __m128i raw = _mm_loadu_si128((const __m128i *)b);
            const __m256i mins = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4)),
                                                   _mm256_loadu_si256((const __m256i *)xb->bsum16));
            accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(xb->d * hr_f16_table[ld16(b + 82)]), accm);
            __m256i s0 = _mm256_setzero_si256(), s1 = s0;
            for (int h = 0; h < 2; h++) {
                const __m256i qv = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * h));
#pragma clang loop unroll(full)
                for (int g = 0; g < 4; g++) {
                    const __m256i q = _mm256_and_si256(_mm256_srli_epi16(qv, 2 * g), m3);
                    const __m256i pr = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)(xb->qs + 128 * h + 32 * g)));
                    const int j = 8 * h + 2 * g;
                    const __m256i t = _mm256_madd_epi16(pr, two_scales(b[j] & 0x0F, b[j + 1] & 0x0F));
                    if (g & 1) s1 = _mm256_add_epi32(s1, t); else s0 = _mm256_add_epi32(s0, t);
                }
            }
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), _mm256_set1_ps(xb->d * hr_f16_table[ld16(b + 80)]), acc);
        }
        y[r] = hr_hsum256(acc) - hr_hsum256(accm);
    }
}

AVX2 void hr_rows_q3_k_avx2(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x;
    const hr_q8k_block *a = xa;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    for (size_t r = r0; r < r1; r++) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t blk = 0; blk < k / QK_K; blk++) {
            const uint8_t *b = w + r * rb + blk * Q3K_BYTES;
            const hr_q8k_block *xb = a + blk;
            int8_t sc[16];
            q3k_scales(b + 96, sc);
            // Σ sc·(q + 4h − 4)·x = Σ sc·(q + 4h)·x − 4·Σ sc·Σx: the second term starts the sum.
            const __m256i corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc)),
                                                   _mm256_loadu_si256((const __m256i *)xb->bsum16));
            __m256i s0 = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 2)), s1 = _mm256_setzero_si256();
            const __m256i hm = _mm256_loadu_si256((const __m256i *)b);
            for (int h = 0; h < 2; h++) {
                const __m256i qv = _mm256_loadu_si256((const __m256i *)(b + 32 + 32 * h));
#pragma clang loop unroll(full)
                for (int g = 0; g < 4; g++) {
                    const __m256i hb = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(4 * h + g)), one);
                    const __m256i q = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 2 * g), m3), _mm256_slli_epi16(hb, 2));
                    const __m256i pr = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)(xb->qs + 128 * h + 32 * g)));
                    const int j = 8 * h + 2 * g;
                    const __m256i t = _mm256_madd_epi16(pr, two_scales(sc[j], sc[j + 1]));
                    if (g & 1) s1 = _mm256_add_epi32(s1, t); else s0 = _mm256_add_epi32(s0, t);
                }
            }
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), _mm256_set1_ps(xb->d * hr_f16_table[ld16(b + 108)]), acc);
        }
        y[r] = hr_hsum256(acc);
    }
}

// ---- AVX-512 VNNI: the 64 bytes of 2-bit values as one register, shifted by 2g: elements 32g ..< 32g + 32 of
// both halves, against the activations reordered to match (once per block for the rows that share them);
// maddubs, then vpdpwssd by the four sub-blocks' scales spread over the lanes. Rows four at a time, each row
// prefetching the same block of the next group's row.

// Word lanes of a product for shift g: lanes 0-7 sub-block 2g, 8-15 2g+1, 16-23 8+2g, 24-31 9+2g.
static const int16_t scale_lanes[4][32] = {
#define L(g) { 2*g,2*g,2*g,2*g,2*g,2*g,2*g,2*g, 2*g+1,2*g+1,2*g+1,2*g+1,2*g+1,2*g+1,2*g+1,2*g+1, \
               8+2*g,8+2*g,8+2*g,8+2*g,8+2*g,8+2*g,8+2*g,8+2*g, 9+2*g,9+2*g,9+2*g,9+2*g,9+2*g,9+2*g,9+2*g,9+2*g }
    L(0), L(1), L(2), L(3)
#undef L
};

// vpdpwssd as written (clang otherwise splits some into vpmaddwd + vpaddd).
#define DPWSSD(acc, a, b) __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))

AVX512 static inline void acts_k23(const hr_q8k_block *x, __m512i xa[4]) {
    const __m512i q0 = _mm512_loadu_si512(x->qs), q1 = _mm512_loadu_si512(x->qs + 64);
    const __m512i q2 = _mm512_loadu_si512(x->qs + 128), q3 = _mm512_loadu_si512(x->qs + 192);
    xa[0] = _mm512_shuffle_i64x2(q0, q2, _MM_SHUFFLE(1, 0, 1, 0));
    xa[1] = _mm512_shuffle_i64x2(q0, q2, _MM_SHUFFLE(3, 2, 3, 2));
    xa[2] = _mm512_shuffle_i64x2(q1, q3, _MM_SHUFFLE(1, 0, 1, 0));
    xa[3] = _mm512_shuffle_i64x2(q1, q3, _MM_SHUFFLE(3, 2, 3, 2));
}

AVX512 INLINE void q2k_block_avx512(const uint8_t *b, const hr_q8k_block *x, const __m512i xa[4], __m512 *acc, __m256 *accm) {
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m128i raw = _mm_loadu_si128((const __m128i *)b);
    const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(raw, m4)));
    const __m256i mins = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4)),
                                           _mm256_loadu_si256((const __m256i *)x->bsum16));
    *accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(x->d * hr_f16_table[ld16(b + 82)]), *accm);
    const __m512i m3 = _mm512_set1_epi8(3), qv = _mm512_loadu_si512(b + 16);
    __m512i s = _mm512_setzero_si512();
#pragma clang loop unroll(full)
    for (int g = 0; g < 4; g++) {
        const __m512i q = _mm512_and_si512(g ? _mm512_srli_epi16(qv, 2 * g) : qv, m3);
        DPWSSD(s, _mm512_maddubs_epi16(q, xa[g]), _mm512_permutexvar_epi16(_mm512_loadu_si512(scale_lanes[g]), sc));
    }
    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(x->d * hr_f16_table[ld16(b + 80)]), *acc);
}

AVX512 INLINE void q3k_block_avx512(const uint8_t *b, const hr_q8k_block *x, const __m512i xa[4], __m512 *acc) {
    // The 12 bytes of scales (read from 2 bytes before them: the block ends 2 bytes after), unpacked as q3k_scales.
    const __m128i raw = _mm_srli_si128(_mm_loadu_si128((const __m128i *)(b + 94)), 2);
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(raw, _MM_SHUFFLE(1, 0, 1, 0)), _mm_setr_epi32(0, 0, 4, 4)),
                                     _mm_set1_epi8(0x0F));
    const __m128i hi = _mm_srlv_epi32(_mm_shuffle_epi32(raw, _MM_SHUFFLE(2, 2, 2, 2)), _mm_setr_epi32(0, 2, 4, 6));
    const __m128i s8 = _mm_ternarylogic_epi32(lo, _mm_slli_epi32(hi, 4), _mm_set1_epi8(0x30), 0xF8);   // lo | (hi << 4 & 0x30)
    const __m256i sc16 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(s8), _mm256_set1_epi16(32));
    const __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)x->bsum16));
    __m512i s = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 2)));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    // The high bits: both halves of the register hold the 32 bytes, the upper shifted down 4 (elements 128 on are
    // bits 4-7); then bit g of each byte is that of shift g.
    __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b));
    hb = _mm512_mask_srli_epi16(hb, 0xFFFF0000u, hb, 4);
    const __m512i m3 = _mm512_set1_epi8(3), bit2 = _mm512_set1_epi8(4), qv = _mm512_loadu_si512(b + 32);
#pragma clang loop unroll(full)
    for (int g = 0; g < 4; g++) {
        const __m512i q = _mm512_and_si512(g ? _mm512_srli_epi16(qv, 2 * g) : qv, m3);
        const __m512i h = g == 0 ? _mm512_slli_epi16(hb, 2) : g == 1 ? _mm512_slli_epi16(hb, 1) : g == 2 ? hb : _mm512_srli_epi16(hb, 1);
        const __m512i u = _mm512_ternarylogic_epi32(q, h, bit2, 0xF8);   // q | (h & 4)
        DPWSSD(s, _mm512_maddubs_epi16(u, xa[g]), _mm512_permutexvar_epi16(_mm512_loadu_si512(scale_lanes[g]), sc));
    }
    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(x->d * hr_f16_table[ld16(b + 108)]), *acc);
}

static inline void prefetch_block(const uint8_t *b, size_t bb) {
    for (size_t o = 0; o < bb; o += 64) _mm_prefetch((const char *)b + o, _MM_HINT_T0);
}

// Rows r0 ..< r0 + nr (a constant where inlined).
AVX512 INLINE void group_avx512(int three, int nr, const uint8_t *w, size_t rb, size_t k, const hr_q8k_block *a, size_t r0,
                                size_t pf, float *y) {
    const size_t bb = three ? Q3K_BYTES : Q2K_BYTES;
    __m512 acc[4];
    __m256 accm[4];
    for (int j = 0; j < nr; j++) { acc[j] = _mm512_setzero_ps(); accm[j] = _mm256_setzero_ps(); }
    for (size_t blk = 0; blk < k / QK_K; blk++) {
        __m512i xa[4];
        acts_k23(a + blk, xa);
#pragma clang loop unroll(full)
        for (int j = 0; j < nr; j++) {
            const uint8_t *b = w + (r0 + j) * rb + blk * bb;
            prefetch_block(b + pf, bb);
            if (three) q3k_block_avx512(b, a + blk, xa, &acc[j]);
            else q2k_block_avx512(b, a + blk, xa, &acc[j], &accm[j]);
        }
    }
    for (int j = 0; j < nr; j++) y[r0 + j] = _mm512_reduce_add_ps(acc[j]) - (three ? 0.0f : hr_hsum256(accm[j]));
}

AVX512 INLINE void rows_avx512(int three, const uint8_t *w, size_t rb, size_t k, const hr_q8k_block *a, size_t r0, size_t r1, float *y) {
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) group_avx512(three, 4, w, rb, k, a, r, 4 * rb, y);
    for (; r < r1; r++) group_avx512(three, 1, w, rb, k, a, r, rb, y);
}

AVX512 void hr_rows_q2_k_avx512(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x; rows_avx512(0, w, rb, k, xa, r0, r1, y);
}
AVX512 void hr_rows_q3_k_avx512(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x; rows_avx512(1, w, rb, k, xa, r0, r1, y);
}
