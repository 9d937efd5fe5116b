// The GGUF formats beyond f32/f16/q8_0/q4_0: bf16, the 32-element blocks with a minimum or a fifth bit
// (q4_1, q5_0, q5_1) and the 256-element K-quant super-blocks (q2_K … q6_K), byte for byte as ggml lays
// them out. The 32-blocks' quantizers are here, the K-quants' in quantize_k.c. Dequantization is the naive
// reference (it equals gguf-py's `gguf.quants` bit for bit: same operations in the same order, no fused
// multiply-add). Q4_K, Q5_K and Q6_K also have integer dot products against Q8_K activations (llama.cpp's
// design: the block's integer sums, scaled once per sub-block), in scalar C, AVX2 and AVX-512 VNNI.
#include "CKernels.h"
#include "formats_impl.h"
#include <immintrin.h>
#include "simd_math.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,f16c,fma")))
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define QK_K HR_QK_K
// Kernels written once for q4_K and q5_K are inlined into each so that the format is a constant there.
#define INLINE static inline __attribute__((always_inline))

static inline uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline void st16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline float f16(const uint8_t *p) { return hr_f16_to_f32(ld16(p)); }
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// ---- bf16: the top half of an f32 ----------------------------------------------------------------------

void hr_dequant_bf16(const uint8_t *b, size_t k, float *out) {
    for (size_t i = 0; i < k; i++) { uint32_t w = (uint32_t)ld16(b + 2 * i) << 16; memcpy(out + i, &w, 4); }
}

AVX512 void hr_dequant_bf16_avx512(const uint8_t *b, size_t k, float *out) {
    size_t i = 0;
    for (; i + 16 <= k; i += 16)
        _mm512_storeu_ps(out + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(b + 2 * i))), 16)));
    hr_dequant_bf16(b + 2 * i, k - i, out + i);
}

// Round to nearest even; NaN stays NaN (quiet), as ggml_compute_fp32_to_bf16.
void hr_quant_bf16(const float *x, size_t k, uint8_t *out) {
    for (size_t i = 0; i < k; i++) {
        uint32_t u; memcpy(&u, x + i, 4);
        uint16_t h = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 64) : (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
        st16(out + 2 * i, h);
    }
}

// ---- q4_1: f16 d, f16 m, 16 bytes of nibbles (element j low nibble of byte j, j+16 the high): d·q + m ------

void hr_dequant_q4_1(const uint8_t *b, size_t k, float *out) {
    for (size_t blk = 0; blk < k / 32; blk++, b += 20, out += 32) {
        const float d = f16(b), m = f16(b + 2);
        for (int j = 0; j < 16; j++) {
            const float p = d * (float)(b[4 + j] & 0x0F), q = d * (float)(b[4 + j] >> 4);
            out[j] = p + m;
            out[j + 16] = q + m;
        }
    }
}

static void minmax(const float *x, int n, float *mn, float *mx) {
    float a = x[0], c = x[0];
    for (int j = 1; j < n; j++) { if (x[j] < a) a = x[j]; if (x[j] > c) c = x[j]; }
    *mn = a; *mx = c;
}

void hr_quant_q4_1(const float *x, size_t k, uint8_t *out) {
    for (size_t blk = 0; blk < k / 32; blk++, x += 32, out += 20) {
        float mn, mx;
        minmax(x, 32, &mn, &mx);
        const float d = (mx - mn) / 15, id = d ? 1.0f / d : 0.0f;
        st16(out, hr_f32_to_f16(d)); st16(out + 2, hr_f32_to_f16(mn));
        for (int j = 0; j < 16; j++) {
            const int a = clampi((int)((x[j] - mn) * id + 0.5f), 0, 15), c = clampi((int)((x[j + 16] - mn) * id + 0.5f), 0, 15);
            out[4 + j] = (uint8_t)(a | (c << 4));
        }
    }
}

// ---- q5_0 / q5_1: as q4_0 / q4_1 with the fifth bits of the 32 elements in a little-endian u32 ------------

static inline int q5_value(const uint8_t *qh, const uint8_t *qs, int j) {
    uint32_t h; memcpy(&h, qh, 4);
    const int lo = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
    return lo | (int)(((h >> j) & 1) << 4);
}

void hr_dequant_q5_0(const uint8_t *b, size_t k, float *out) {
    for (size_t blk = 0; blk < k / 32; blk++, b += 22, out += 32) {
        const float d = f16(b);
        for (int j = 0; j < 32; j++) out[j] = d * (float)(q5_value(b + 2, b + 6, j) - 16);
    }
}

void hr_dequant_q5_1(const uint8_t *b, size_t k, float *out) {
    for (size_t blk = 0; blk < k / 32; blk++, b += 24, out += 32) {
        const float d = f16(b), m = f16(b + 2);
        for (int j = 0; j < 32; j++) { const float p = d * (float)q5_value(b + 4, b + 8, j); out[j] = p + m; }
    }
}

static void q5_pack(const int q[32], uint8_t *qh, uint8_t *qs) {
    uint32_t h = 0;
    for (int j = 0; j < 32; j++) h |= (uint32_t)((q[j] >> 4) & 1) << j;
    memcpy(qh, &h, 4);
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
}

void hr_quant_q5_0(const float *x, size_t k, uint8_t *out) {
    for (size_t blk = 0; blk < k / 32; blk++, x += 32, out += 22) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -16, id = d ? 1.0f / d : 0.0f;
        int q[32];
        for (int j = 0; j < 32; j++) q[j] = clampi((int)(int8_t)(x[j] * id + 16.5f), 0, 31);
        st16(out, hr_f32_to_f16(d));
        q5_pack(q, out + 2, out + 6);
    }
}

void hr_quant_q5_1(const float *x, size_t k, uint8_t *out) {
    for (size_t blk = 0; blk < k / 32; blk++, x += 32, out += 24) {
        float mn, mx;
        minmax(x, 32, &mn, &mx);
        const float d = (mx - mn) / 31, id = d ? 1.0f / d : 0.0f;
        int q[32];
        for (int j = 0; j < 32; j++) q[j] = clampi((int)((x[j] - mn) * id + 0.5f), 0, 31);
        st16(out, hr_f32_to_f16(d)); st16(out + 2, hr_f32_to_f16(mn));
        q5_pack(q, out + 4, out + 8);
    }
}

// ---- K-quants: 256 elements per super-block ---------------------------------------------------------------
// The 2-bit fields of q2_K and q3_K: in each half of 128 elements, element 32g + l is bits 2g..2g+1 of byte l of
// that half's 32 bytes. The 4-bit fields of q4_K and q5_K: element 64c + l (l < 32) is the low nibble of byte
// 32c + l, element 64c + 32 + l its high nibble. The single high bits of q3_K and q5_K: element i is bit i/32
// of byte i%32.

static inline int bits2(const uint8_t *qs, int i) { return (qs[(i / 128) * 32 + i % 32] >> (2 * ((i % 128) / 32))) & 3; }
static inline int nib4(const uint8_t *qs, int i) { const uint8_t b = qs[(i / 64) * 32 + i % 32]; return (i % 64) < 32 ? b & 0x0F : b >> 4; }
static inline int hbit(const uint8_t *h, int i) { return (h[i % 32] >> (i / 32)) & 1; }

// q4_K / q5_K: the 8 six-bit scales and minimums packed into 12 bytes (ggml's get_scale_min_k4).
static inline void scale_min_k4(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) { *sc = s[j] & 63; *m = s[j + 4] & 63; }
    else { *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4); *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4); }
}

// q3_K's 16 six-bit scales (stored +32) in 12 bytes: low nibbles in bytes 0-7 (scales 0-7 low half, 8-15
// high half), the top two bits of scale j in byte 8 + j%4 at bit 2·(j/4).
static inline int scale_q3k(const uint8_t *s, int j) {
    const int lo = j < 8 ? (s[j] & 0x0F) : (s[j - 8] >> 4);
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

// q2_K: 16 bytes of scales (low nibble scale, high nibble minimum, per 16 elements), 64 bytes of 2-bit
// values, f16 d, f16 dmin: (d·sc)·q − dmin·m.
void hr_dequant_q2_k(const uint8_t *b, size_t k, float *out) {
    for (size_t blk = 0; blk < k / QK_K; blk++, b += 84, out += QK_K) {
        const float d = f16(b + 80), dmin = f16(b + 82);
        for (int g = 0; g < 16; g++) {
            const float dl = d * (float)(b[g] & 0x0F), ml = dmin * (float)(b[g] >> 4);
            for (int l = 0; l < 16; l++) { const int i = 16 * g + l; const float p = dl * (float)bits2(b + 16, i); out[i] = p - ml; }
        }
    }
}

// q3_K: 32 bytes of high bits, 64 bytes of 2-bit values, 12 bytes of scales, f16 d: (d·(sc−32))·(q − 4·!h).
void hr_dequant_q3_k(const uint8_t *b, size_t k, float *out) {
    for (size_t blk = 0; blk < k / QK_K; blk++, b += 110, out += QK_K) {
        const float d = f16(b + 108);
        for (int g = 0; g < 16; g++) {
            const float dl = d * (float)scale_q3k(b + 96, g);
            for (int l = 0; l < 16; l++) {
                const int i = 16 * g + l;
                out[i] = dl * (float)(bits2(b + 32, i) - (hbit(b, i) ? 0 : 4));
            }
        }
    }
}

// q4_K: f16 d, f16 dmin, 12 bytes of scales and minimums, 128 bytes of nibbles: (d·sc)·q − dmin·m per 32.
void hr_dequant_q4_k(const uint8_t *b, size_t k, float *out) {
    for (size_t blk = 0; blk < k / QK_K; blk++, b += 144, out += QK_K) {
        const float d = f16(b), dmin = f16(b + 2);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            scale_min_k4(b + 4, j, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            for (int l = 0; l < 32; l++) { const int i = 32 * j + l; const float p = dl * (float)nib4(b + 16, i); out[i] = p - ml; }
        }
    }
}

// q5_K: as q4_K with 32 bytes of fifth bits between the scales and the nibbles.
void hr_dequant_q5_k(const uint8_t *b, size_t k, float *out) {
    for (size_t blk = 0; blk < k / QK_K; blk++, b += 176, out += QK_K) {
        const float d = f16(b), dmin = f16(b + 2);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            scale_min_k4(b + 4, j, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            for (int l = 0; l < 32; l++) {
                const int i = 32 * j + l;
                const float p = dl * (float)(nib4(b + 48, i) | (hbit(b + 16, i) << 4));
                out[i] = p - ml;
            }
        }
    }
}

// q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit high parts, 16 int8 scales (per 16), f16 d:
// (d·sc)·(q − 32). In each half of 128: element 32g + l takes the low (g = 0, 1) or high (g = 2, 3) nibble of
// byte 32·(g%2) + l of the half's 64, and bits 2g..2g+1 of byte l of the half's 32.
static inline int q6_value(const uint8_t *b, int i) {
    const int h = i / 128, g = (i % 128) / 32, l = i % 32;
    const uint8_t lo = b[64 * h + 32 * (g % 2) + l], hi = b[128 + 32 * h + l];
    return ((g < 2 ? lo & 0x0F : lo >> 4) | (((hi >> (2 * g)) & 3) << 4)) - 32;
}

void hr_dequant_q6_k(const uint8_t *b, size_t k, float *out) {
    for (size_t blk = 0; blk < k / QK_K; blk++, b += 210, out += QK_K) {
        const float d = f16(b + 208);
        for (int g = 0; g < 16; g++) {
            const float dl = d * (float)(int8_t)b[192 + g];
            for (int l = 0; l < 16; l++) { const int i = 16 * g + l; out[i] = dl * (float)q6_value(b, i); }
        }
    }
}

// ---- Q8_K activations -----------------------------------------------------------------------------------------

static _Thread_local hr_q8k_block *q8k_buf;
static _Thread_local size_t q8k_cap;

const hr_q8k_block *hr_q8k_quantize(const float *x, size_t k) {
    const size_t nb = k / QK_K;
    if (q8k_cap < nb) {
        free(q8k_buf);
        q8k_buf = aligned_alloc(64, nb * sizeof(hr_q8k_block));
        q8k_cap = nb;
    }
    for (size_t b = 0; b < nb; b++, x += QK_K) {
        hr_q8k_block *o = q8k_buf + b;
        float amax = 0;
        for (int j = 0; j < QK_K; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        for (int j = 0; j < QK_K; j++) o->qs[j] = (int8_t)clampi((int)roundf(x[j] * id), -127, 127);
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += o->qs[16 * g + l];
            o->bsum16[g] = (int16_t)s;
        }
        for (int j = 0; j < 8; j++) o->bsum32[j] = (int16_t)(o->bsum16[2 * j] + o->bsum16[2 * j + 1]);
        o->d = d;
    }
    return q8k_buf;
}

// ---- dot products against Q8_K: scalar ----------------------------------------------------------------------

static inline void unpack_k4(const uint8_t *s, int sc[8], int m[8]) { for (int j = 0; j < 8; j++) scale_min_k4(s, j, sc + j, m + j); }

void hr_rows_q4_k_scalar(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x;
    const hr_q8k_block *a = xa;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *b = w + r * rb;
        float sum = 0;
        for (size_t blk = 0; blk < k / QK_K; blk++, b += 144) {
            int sc[8], m[8], sumi = 0, summ = 0;
            unpack_k4(b + 4, sc, m);
            for (int j = 0; j < 8; j++) {
                int s = 0;
                for (int l = 0; l < 32; l++) s += nib4(b + 16, 32 * j + l) * a[blk].qs[32 * j + l];
                sumi += sc[j] * s;
                summ += m[j] * a[blk].bsum32[j];
            }
            sum += a[blk].d * (f16(b) * (float)sumi - f16(b + 2) * (float)summ);
        }
        y[r] = sum;
    }
}

void hr_rows_q5_k_scalar(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x;
    const hr_q8k_block *a = xa;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *b = w + r * rb;
        float sum = 0;
        for (size_t blk = 0; blk < k / QK_K; blk++, b += 176) {
            int sc[8], m[8], sumi = 0, summ = 0;
            unpack_k4(b + 4, sc, m);
            for (int j = 0; j < 8; j++) {
                int s = 0;
                for (int l = 0; l < 32; l++) {
                    const int i = 32 * j + l;
                    s += (nib4(b + 48, i) | (hbit(b + 16, i) << 4)) * a[blk].qs[i];
                }
                sumi += sc[j] * s;
                summ += m[j] * a[blk].bsum32[j];
            }
            sum += a[blk].d * (f16(b) * (float)sumi - f16(b + 2) * (float)summ);
        }
        y[r] = sum;
    }
}

void hr_rows_q6_k_scalar(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x;
    const hr_q8k_block *a = xa;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *b = w + r * rb;
        float sum = 0;
        for (size_t blk = 0; blk < k / QK_K; blk++, b += 210) {
            int sumi = 0;
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += q6_value(b, 16 * g + l) * a[blk].qs[16 * g + l];
                sumi += (int8_t)b[192 + g] * s;
            }
            sum += a[blk].d * f16(b + 208) * (float)sumi;
        }
        y[r] = sum;
    }
}

// ---- AVX2: 32 weights per register, maddubs (u8 × s8 pairs → s16) then madd by the sub-block's scale ---------

// The vector paths convert scales with F16C (one instruction), the scalar path with the portable conversion.
AVX2 static inline float f16c(const uint8_t *p) { return _cvtsh_ss(ld16(p)); }

// The 8 scales (bytes 0-7) and 8 minimums (bytes 8-15) of a q4_K/q5_K block's 12 packed bytes, as four words.
static inline void unpack_k4_words(const uint8_t *s, uint32_t out[4]) {
    uint32_t w0, w1, w2;
    memcpy(&w0, s, 4); memcpy(&w1, s + 4, 4); memcpy(&w2, s + 8, 4);
    out[0] = w0 & 0x3f3f3f3fu;
    out[1] = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
    out[2] = w1 & 0x3f3f3f3fu;
    out[3] = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
}

static inline void unpack_k4_bytes(const uint8_t *s, uint8_t out[16]) {
    uint32_t w[4];
    unpack_k4_words(s, w);
    memcpy(out, w, 16);
}

// q4_K and q5_K (hb: the fifth bits, NULL for q4_K).
AVX2 INLINE void k4_rows_avx2(int five, size_t bb, const uint8_t *w, size_t rb, size_t k, const hr_q8k_block *a,
                                     size_t r0, size_t r1, float *y) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
    const size_t qoff = five ? 48 : 16;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * rb;
        __m256 acc = _mm256_setzero_ps();
        float accm = 0;
        for (size_t blk = 0; blk < k / QK_K; blk++) {
            const uint8_t *b = p + blk * bb;
            const hr_q8k_block *x = a + blk;
            uint8_t sm[16];
            unpack_k4_bytes(b + 4, sm);
            const __m128i mins = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8))),
                                                _mm_loadu_si128((const __m128i *)x->bsum32));
            __m128i ms = _mm_add_epi32(mins, _mm_shuffle_epi32(mins, 0x4E));
            ms = _mm_add_epi32(ms, _mm_shuffle_epi32(ms, 0xB1));
            accm += x->d * f16c(b + 2) * (float)_mm_cvtsi128_si32(ms);
            __m256i hb = five ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
            __m256i s0 = _mm256_setzero_si256(), s1 = s0;
#pragma clang loop unroll(full)
            for (int c = 0; c < 4; c++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(b + qoff + 32 * c));
                __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                if (five) {
                    lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), bit4));
                    hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), bit4));
                    hb = _mm256_srli_epi16(hb, 2);
                }
                const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(x->qs + 64 * c)));
                const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x->qs + 64 * c + 32)));
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(plo, _mm256_set1_epi16(sm[2 * c])));
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(phi, _mm256_set1_epi16(sm[2 * c + 1])));
            }
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), _mm256_set1_ps(x->d * f16c(b)), acc);
        }
        y[r] = hr_hsum256(acc) - accm;
    }
}

AVX2 void hr_rows_q4_k_avx2(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x; k4_rows_avx2(0, 144, w, rb, k, xa, r0, r1, y);
}
AVX2 void hr_rows_q5_k_avx2(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x; k4_rows_avx2(1, 176, w, rb, k, xa, r0, r1, y);
}

// q6_K: values 0..63 (the −32 comes back through the sums per 16), two scales per 32-value register.
AVX2 void hr_rows_q6_k_avx2(const uint8_t *w, size_t rb, size_t k, const float *xf, const void *xa, size_t r0, size_t r1, float *y) {
    (void)xf;
    const hr_q8k_block *a = xa;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * rb;
        __m256 acc = _mm256_setzero_ps();
        for (size_t blk = 0; blk < k / QK_K; blk++) {
            const uint8_t *b = p + blk * 210;
            const hr_q8k_block *x = a + blk;
            const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 192)));
            const __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)x->bsum16));
            __m256i s0 = _mm256_slli_epi32(corr, 5), s1 = _mm256_setzero_si256();
            s0 = _mm256_sub_epi32(_mm256_setzero_si256(), s0);
            for (int h = 0; h < 2; h++) {
                const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b + 64 * h)), l1 = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32));
                const __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
                const __m256i q[4] = {
                    _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2)),
                    _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m2)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2)),
                };
                for (int g = 0; g < 4; g++) {
                    const int si = 8 * h + 2 * g;
                    const __m256i sv = _mm256_setr_m128i(_mm_set1_epi16((int8_t)b[192 + si]), _mm_set1_epi16((int8_t)b[192 + si + 1]));
                    const __m256i pr = _mm256_maddubs_epi16(q[g], _mm256_loadu_si256((const __m256i *)(x->qs + 128 * h + 32 * g)));
                    if (g & 1) s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(pr, sv));
                    else s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(pr, sv));
                }
            }
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), _mm256_set1_ps(x->d * f16c(b + 208)), acc);
        }
        y[r] = hr_hsum256(acc);
    }
}

// ---- AVX-512 VNNI: 64 weights per register (one 32-byte run of nibbles broadcast to both halves, the upper
// half shifted: low nibbles then high nibbles, which are 64 consecutive elements), maddubs, then vpdpwssd by
// the per-lane scales. Two rows at a time: twice the independent work per activation load, two streams.

#define HI_HALF ((__mmask32)0xFFFF0000u)

AVX512 static inline __m512i scale_pairs(__m512i sc, int a, int b) {
    const __m512i idx = _mm512_mask_blend_epi16(HI_HALF, _mm512_set1_epi16((short)a), _mm512_set1_epi16((short)b));
    return _mm512_permutexvar_epi16(idx, sc);
}

// vpdpwssd as written (clang otherwise splits some into vpmaddwd + vpaddd).
#define DPWSSD(acc, a, b) __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))

// A Q8_K block's activations in the order k4_block_avx512 reads its nibbles: sub-blocks (0 | 2), (1 | 3),
// (4 | 6), (5 | 7).
AVX512 static inline void k4_acts(const hr_q8k_block *x, __m512i xa[4]) {
    const __m512i q0 = _mm512_loadu_si512(x->qs), q1 = _mm512_loadu_si512(x->qs + 64);
    const __m512i q2 = _mm512_loadu_si512(x->qs + 128), q3 = _mm512_loadu_si512(x->qs + 192);
    xa[0] = _mm512_shuffle_i64x2(q0, q1, _MM_SHUFFLE(1, 0, 1, 0));
    xa[1] = _mm512_shuffle_i64x2(q0, q1, _MM_SHUFFLE(3, 2, 3, 2));
    xa[2] = _mm512_shuffle_i64x2(q2, q3, _MM_SHUFFLE(1, 0, 1, 0));
    xa[3] = _mm512_shuffle_i64x2(q2, q3, _MM_SHUFFLE(3, 2, 3, 2));
}

// A q4_K/q5_K block's integer sums Σ sc_j·(q·x) over its 8 sub-blocks, spread over 16 lanes; the scales are
// words base … base + 7 of sc.
AVX512 INLINE __m512i k4_dot(int five, const uint8_t *b, __m512i sc, int base, const __m512i xa[4]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
    const uint8_t *qs = b + (five ? 48 : 16);
    // 64 bytes of nibbles per load: the low nibbles are sub-blocks (0 | 2) in the two halves, the high (1 | 3);
    // the next 64 (4 | 6) and (5 | 7). xa holds the activations in the same order.
    const __m512i v0 = _mm512_loadu_si512(qs), v1 = _mm512_loadu_si512(qs + 64);
    __m512i q[4] = { _mm512_and_si512(v0, m4), _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4),
                     _mm512_and_si512(v1, m4), _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4) };
    if (five) {
        // The fifth bits (bit j of byte l: sub-block j), the upper half shifted down two: then bits 0, 1, 4, 5
        // are those of q[0] … q[3] in both halves; each moved to bit 4.
        __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 16)));
        hb = _mm512_mask_srli_epi16(hb, HI_HALF, hb, 2);
        q[0] = _mm512_ternarylogic_epi32(q[0], _mm512_slli_epi16(hb, 4), bit4, 0xF8);   // q | (t & bit4)
        q[1] = _mm512_ternarylogic_epi32(q[1], _mm512_slli_epi16(hb, 3), bit4, 0xF8);
        q[2] = _mm512_ternarylogic_epi32(q[2], hb, bit4, 0xF8);
        q[3] = _mm512_ternarylogic_epi32(q[3], _mm512_srli_epi16(hb, 1), bit4, 0xF8);
    }
    __m512i s0 = _mm512_maddubs_epi16(q[0], xa[0]), s1 = _mm512_maddubs_epi16(q[1], xa[1]);
    s0 = _mm512_madd_epi16(s0, scale_pairs(sc, base, base + 2));
    s1 = _mm512_madd_epi16(s1, scale_pairs(sc, base + 1, base + 3));
    DPWSSD(s0, _mm512_maddubs_epi16(q[2], xa[2]), scale_pairs(sc, base + 4, base + 6));
    DPWSSD(s1, _mm512_maddubs_epi16(q[3], xa[3]), scale_pairs(sc, base + 5, base + 7));
    return _mm512_add_epi32(s0, s1);
}

AVX512 INLINE void k4_block_avx512(int five, const uint8_t *b, const hr_q8k_block *x, const __m512i xa[4], __m512 *acc, __m128 *accm) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
    // unpack_k4_words on one vector: the 12 bytes (and 4 of the block's next) as words w0 w1 w2, then
    // lanes (w0 & 3f, w2 & 0f | (w0 >> 2) & 30, w1 & 3f, (w2 >> 4) & 0f | (w1 >> 2) & 30) per byte.
    const __m128i raw = _mm_loadu_si128((const __m128i *)(b + 4));
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(raw, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4)),
                                     _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i hi = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(raw, _MM_SHUFFLE(1, 1, 0, 0)), 2),
                                     _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    const __m128i s8 = _mm_or_si128(lo, hi);
    const __m512i sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(s8));
    const __m128i mins = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(s8, 8)), _mm_loadu_si128((const __m128i *)x->bsum32));
    *accm = _mm_fmadd_ps(_mm_cvtepi32_ps(mins), _mm_set1_ps(x->d * _cvtsh_ss(ld16(b + 2))), *accm);
    const __m512i s0 = k4_dot(five, b, sc, 0, xa);
    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_set1_ps(x->d * _cvtsh_ss(ld16(b))), *acc);
}

// Four rows' blocks at once: their scales, minimums, d and dmin unpacked in one register per step (a 16-byte
// lane per row), the minimum terms of all four accumulated in one vector: lanes 4-7 row 0, 12-15 row 1,
// 0-3 row 2, 8-11 row 3.
AVX512 INLINE void k4_block4_avx512(int five, const uint8_t *const p[4], const hr_q8k_block *x, const __m512i xa[4],
                                    __m512 acc[4], __m512 *accm) {
    // Bytes 0-15 of each block: dword 0 (d, dmin), dwords 1-3 the packed scales and minimums.
    __m512i raw = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p[0]));
    raw = _mm512_inserti32x4(raw, _mm_loadu_si128((const __m128i *)p[1]), 1);
    raw = _mm512_inserti32x4(raw, _mm_loadu_si128((const __m128i *)p[2]), 2);
    raw = _mm512_inserti32x4(raw, _mm_loadu_si128((const __m128i *)p[3]), 3);
    const __m512i lo = _mm512_and_si512(_mm512_srlv_epi32(_mm512_shuffle_epi32(raw, _MM_SHUFFLE(3, 2, 3, 1)), _mm512_set4_epi32(4, 0, 0, 0)),
                                        _mm512_set4_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m512i hi = _mm512_srli_epi32(_mm512_shuffle_epi32(raw, _MM_SHUFFLE(2, 2, 1, 1)), 2);
    const __m512i s8 = _mm512_ternarylogic_epi32(lo, hi, _mm512_set4_epi32(0x30303030, 0, 0x30303030, 0), 0xF8);   // lo | (hi & m)
    // words: row 0 scales, row 0 minimums, row 1 scales, row 1 minimums (rows 2, 3 in w23)
    const __m512i w01 = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(s8)), w23 = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(s8, 1));
    const __m512i bs = _mm512_maskz_broadcast_i32x4(0xF0F0, _mm_loadu_si128((const __m128i *)x->bsum32));
    const __m512i m01 = _mm512_madd_epi16(w01, bs), m23 = _mm512_madd_epi16(w23, bs);
    const __m512i mall = _mm512_add_epi32(m01, _mm512_alignr_epi32(m23, m23, 4));
    // d, dmin of the four rows times the activations' d: (d0, dmin0, d1, dmin1, …)
    const __m128i dd = _mm512_castsi512_si128(_mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), raw));
    const __m512 dx = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(dd), _mm256_set1_ps(x->d)));
    *accm = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mall),
                            _mm512_permutexvar_ps(_mm512_setr_epi32(5, 5, 5, 5, 1, 1, 1, 1, 7, 7, 7, 7, 3, 3, 3, 3), dx), *accm);
#pragma clang loop unroll(full)
    for (int r = 0; r < 4; r++) {
        const __m512i s = k4_dot(five, p[r], r < 2 ? w01 : w23, 16 * (r & 1), xa);
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_permutexvar_ps(_mm512_set1_epi32(2 * r), dx), acc[r]);
    }
}

AVX512 static inline float hsum128(__m128 h) {
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

// Rows four at a time (the activation loads shared); each row's stream prefetches the same block of the next
// group of four rows, every line of it: rows are short (a few KiB), so prefetching ahead within a row would
// start every group cold.
static inline void prefetch_block(const uint8_t *b, size_t bb) {
    for (size_t o = 0; o < bb; o += 64) _mm_prefetch((const char *)b + o, _MM_HINT_T0);
}
AVX512 INLINE void k4_rows_avx512(int five, size_t bb, const uint8_t *w, size_t rb, size_t k, const hr_q8k_block *a,
                                         size_t r0, size_t r1, float *y) {
    const size_t nb = k / QK_K, pf = 4 * rb;
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint8_t *p0 = w + r * rb, *p1 = p0 + rb, *p2 = p1 + rb, *p3 = p2 + rb;
        __m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() }, m = acc[0];
        for (size_t blk = 0; blk < nb; blk++) {
            const size_t o = blk * bb;
            prefetch_block(p0 + o + pf, bb);
            prefetch_block(p1 + o + pf, bb);
            prefetch_block(p2 + o + pf, bb);
            prefetch_block(p3 + o + pf, bb);
            __m512i xa[4];
            k4_acts(a + blk, xa);
            const uint8_t *const p[4] = { p0 + o, p1 + o, p2 + o, p3 + o };
            k4_block4_avx512(five, p, a + blk, xa, acc, &m);
        }
        float ms[16];
        _mm512_storeu_ps(ms, m);
        const int lane[4] = { 4, 12, 0, 8 };
        for (int j = 0; j < 4; j++)
            y[r + j] = _mm512_reduce_add_ps(acc[j]) - ((ms[lane[j]] + ms[lane[j] + 1]) + (ms[lane[j] + 2] + ms[lane[j] + 3]));
    }
    for (; r < r1; r++) {
        const uint8_t *p = w + r * rb;
        __m512 acc = _mm512_setzero_ps();
        __m128 m = _mm_setzero_ps();
        for (size_t blk = 0; blk < nb; blk++) {
            prefetch_block(p + blk * bb + rb, bb);
            __m512i xa[4];
            k4_acts(a + blk, xa);
            k4_block_avx512(five, p + blk * bb, a + blk, xa, &acc, &m);
        }
        y[r] = _mm512_reduce_add_ps(acc) - hsum128(m);
    }
}

AVX512 void hr_rows_q4_k_avx512(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x; k4_rows_avx512(0, 144, w, rb, k, xa, r0, r1, y);
}
AVX512 void hr_rows_q5_k_avx512(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) {
    (void)x; k4_rows_avx512(1, 176, w, rb, k, xa, r0, r1, y);
}

// q6_K: per half of 128, the 64 low-nibble bytes as one register (elements 0-63) and their high nibbles as
// another (64-127); the 2-bit high parts of both from one 32-byte run broadcast and shifted.
static const int16_t lane_eighths[32] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3 };

AVX512 INLINE void q6k_block_avx512(const uint8_t *b, const hr_q8k_block *x, __m512 *acc) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x30);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 192)));
    const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)x->bsum16)), 5);
    const __m512i sc = _mm512_castsi256_si512(sc16);
    __m512i s0 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(corr)), s1 = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
        const __m512i ql = _mm512_loadu_si512(b + 64 * h);
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)));
        const __m512i t = _mm512_mask_srli_epi16(qh, HI_HALF, qh, 2);
        const __m512i qa = _mm512_ternarylogic_epi32(_mm512_and_si512(ql, m4), _mm512_slli_epi16(t, 4), m2, 0xF8);
        const __m512i qb = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), t, m2, 0xF8);
        // int16 lane i of a product covers elements 2i, 2i+1: scale (element / 16) = base + i / 8
        const __m512i ia = _mm512_add_epi16(_mm512_loadu_si512(lane_eighths), _mm512_set1_epi16((short)(8 * h)));
        const __m512i pa = _mm512_maddubs_epi16(qa, _mm512_loadu_si512(x->qs + 128 * h));
        const __m512i pb = _mm512_maddubs_epi16(qb, _mm512_loadu_si512(x->qs + 128 * h + 64));
        s0 = _mm512_dpwssd_epi32(s0, pa, _mm512_permutexvar_epi16(ia, sc));
        s1 = _mm512_dpwssd_epi32(s1, pb, _mm512_permutexvar_epi16(_mm512_add_epi16(ia, _mm512_set1_epi16(4)), sc));
    }
    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), _mm512_set1_ps(x->d * _cvtsh_ss(ld16(b + 208))), *acc);
}

AVX512 void hr_rows_q6_k_avx512(const uint8_t *w, size_t rb, size_t k, const float *xf, const void *xa, size_t r0, size_t r1, float *y) {
    (void)xf;
    const hr_q8k_block *a = xa;
    const size_t nb = k / QK_K, pf = 4 * rb;
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint8_t *p0 = w + r * rb, *p1 = p0 + rb, *p2 = p1 + rb, *p3 = p2 + rb;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (size_t blk = 0; blk < nb; blk++) {
            const size_t o = blk * 210;
            prefetch_block(p0 + o + pf, 210);
            prefetch_block(p1 + o + pf, 210);
            prefetch_block(p2 + o + pf, 210);
            prefetch_block(p3 + o + pf, 210);
            q6k_block_avx512(p0 + o, a + blk, &acc0);
            q6k_block_avx512(p1 + o, a + blk, &acc1);
            q6k_block_avx512(p2 + o, a + blk, &acc2);
            q6k_block_avx512(p3 + o, a + blk, &acc3);
        }
        y[r] = _mm512_reduce_add_ps(acc0);
        y[r + 1] = _mm512_reduce_add_ps(acc1);
        y[r + 2] = _mm512_reduce_add_ps(acc2);
        y[r + 3] = _mm512_reduce_add_ps(acc3);
    }
    for (; r < r1; r++) {
        __m512 acc = _mm512_setzero_ps();
        for (size_t blk = 0; blk < nb; blk++) {
            prefetch_block(w + r * rb + blk * 210 + rb, 210);
            q6k_block_avx512(w + r * rb + blk * 210, a + blk, &acc);
        }
        y[r] = _mm512_reduce_add_ps(acc);
    }
}
