// The K-quants' dequantization with AVX-512, for prefill's tiles (dequantized rows fed to sgemm): 16 values at
// a time widened to f32 and scaled. Every value equals the naive reference's (quant_k.c) bit for bit: the same
// f32 operations in the same order — the sub-block's scale d·sc and minimum dmin·m in scalar as there, then
// one multiply and one subtract per value, never fused.
#include "CKernels.h"
#include "formats_impl.h"
#include <immintrin.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define QK_K HR_QK_K

static inline uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline float f16(const uint8_t *p) { return hr_f16_table[ld16(p)]; }

// out[0..<16] = dl·q (− ml) for 16 values given as bytes, unsigned or signed.
AVX512 static inline void put_u8(float *out, float dl, float ml, __m128i q) {
    const __m512 p = _mm512_mul_ps(_mm512_set1_ps(dl), _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q)));
    _mm512_storeu_ps(out, _mm512_sub_ps(p, _mm512_set1_ps(ml)));
}
AVX512 static inline void put_i8(float *out, float dl, __m128i q) {
    _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_set1_ps(dl), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q))));
}

AVX512 static inline __m256i shr16(__m256i v, int n) { return _mm256_srl_epi16(v, _mm_cvtsi32_si128(n)); }
#define HALF(v, t) ((t) ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v))

// q2_K: element 128h + 32g + l is bits 2g..2g+1 of byte l of half h; scale and minimum per 16.
AVX512 void hr_dequant_q2_k_avx512(const uint8_t *b, size_t k, float *out) {
    const __m256i m3 = _mm256_set1_epi8(3);
    for (size_t blk = 0; blk < k / QK_K; blk++, b += 84, out += QK_K) {
        const float d = f16(b + 80), dmin = f16(b + 82);
        for (int h = 0; h < 2; h++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * h));
            for (int g = 0; g < 4; g++) {
                const __m256i q = _mm256_and_si256(shr16(v, 2 * g), m3);
                for (int t = 0; t < 2; t++) {
                    const int j = 8 * h + 2 * g + t;
                    const float dl = d * (float)(b[j] & 0x0F), ml = dmin * (float)(b[j] >> 4);
                    put_u8(out + 16 * j, dl, ml, HALF(q, t));
                }
            }
        }
    }
}

// q3_K: as q2_K's values, minus 4 where the high bit (bit 4h + g of byte l of the 32) is clear; scales per 16.
AVX512 void hr_dequant_q3_k_avx512(const uint8_t *b, size_t k, float *out) {
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1), four = _mm256_set1_epi8(4);
    for (size_t blk = 0; blk < k / QK_K; blk++, b += 110, out += QK_K) {
        const float d = f16(b + 108);
        const uint8_t *s = b + 96;
        const __m256i hm = _mm256_loadu_si256((const __m256i *)b);
        for (int h = 0; h < 2; h++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(b + 32 + 32 * h));
            for (int g = 0; g < 4; g++) {
                const __m256i hb = _mm256_and_si256(shr16(hm, 4 * h + g), one);
                const __m256i q = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(shr16(v, 2 * g), m3), _mm256_slli_epi16(hb, 2)), four);
                for (int t = 0; t < 2; t++) {
                    const int j = 8 * h + 2 * g + t;
                    const int lo = j < 8 ? (s[j] & 0x0F) : (s[j - 8] >> 4), hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
                    put_i8(out + 16 * j, d * (float)((lo | (hi << 4)) - 32), HALF(q, t));
                }
            }
        }
    }
}

// q4_K / q5_K: the 8 six-bit scales and minimums (ggml's get_scale_min_k4); element 64c + l (l < 32) the low
// nibble of byte 32c + l, 64c + 32 + l its high nibble; q5_K's fifth bit of element i is bit i/32 of byte i%32.
static inline void scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) { *sc = s[j] & 63; *m = s[j + 4] & 63; }
    else { *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4); *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4); }
}

AVX512 static inline void k4_dequant(int five, const uint8_t *b, size_t k, float *out) {
    const size_t bb = five ? 176 : 144, qoff = five ? 48 : 16;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    for (size_t blk = 0; blk < k / QK_K; blk++, b += bb, out += QK_K) {
        const float d = f16(b), dmin = f16(b + 2);
        const __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(b + qoff + 32 * c));
            __m256i q[2] = { _mm256_and_si256(v, m4), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4) };
            for (int e = 0; e < 2; e++) {
                const int j = 2 * c + e;
                if (five) q[e] = _mm256_or_si256(q[e], _mm256_slli_epi16(_mm256_and_si256(shr16(qh, j), one), 4));
                int sc, m;
                scale_min(b + 4, j, &sc, &m);
                const float dl = d * (float)sc, ml = dmin * (float)m;
                put_u8(out + 32 * j, dl, ml, HALF(q[e], 0));
                put_u8(out + 32 * j + 16, dl, ml, HALF(q[e], 1));
            }
        }
    }
}

AVX512 void hr_dequant_q4_k_avx512(const uint8_t *b, size_t k, float *out) { k4_dequant(0, b, k, out); }
AVX512 void hr_dequant_q5_k_avx512(const uint8_t *b, size_t k, float *out) { k4_dequant(1, b, k, out); }

// q6_K: element 128h + 32g + l is the low (g < 2) or high nibble of byte 32·(g%2) + l of the half's 64, with
// bits 2g..2g+1 of byte l of the half's 32 above it, minus 32; int8 scales per 16.
AVX512 void hr_dequant_q6_k_avx512(const uint8_t *b, size_t k, float *out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
    for (size_t blk = 0; blk < k / QK_K; blk++, b += 210, out += QK_K) {
        const float d = f16(b + 208);
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b + 64 * h)), l1 = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
            for (int g = 0; g < 4; g++) {
                const __m256i l = g % 2 ? l1 : l0;
                const __m256i nib = g < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
                const __m256i q = _mm256_sub_epi8(_mm256_or_si256(nib, _mm256_slli_epi16(_mm256_and_si256(shr16(qh, 2 * g), m3), 4)), off);
                for (int t = 0; t < 2; t++) {
                    const int j = 8 * h + 2 * g + t;
                    put_i8(out + 16 * j, d * (float)(int8_t)b[192 + j], HALF(q, t));
                }
            }
        }
    }
}
