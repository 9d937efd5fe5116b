// What the format table (formats.c) points at, across quant.c (f32, f16, q8_0, q4_0), quant_k.c (the rest) and
// quantize_k.c (the K-quants' quantizers).
// Internal to CKernels: not part of the module Swift imports.
#ifndef HEADROOM_FORMATS_IMPL_H
#define HEADROOM_FORMATS_IMPL_H

#include "formats.h"
#include <stddef.h>
#include <stdint.h>

#define HR_QK_K 256

// ---- quant.c: the first four formats, per ISA level
#define HR_LEGACY_DECL(t) \
    void hr_dequant_##t(const uint8_t *b, size_t k, float *out); \
    void hr_dequant_##t##_avx512(const uint8_t *b, size_t k, float *out); \
    void hr_quant_##t(const float *x, size_t k, uint8_t *out); \
    void hr_rows_##t##_scalar(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y); \
    void hr_rows_##t##_avx2(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y); \
    void hr_rows_##t##_avx512(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y);
HR_LEGACY_DECL(f32)
HR_LEGACY_DECL(f16)
HR_LEGACY_DECL(q8_0)
HR_LEGACY_DECL(q4_0)

// ---- quant_k.c: the others (their hr_quant_q*_k in quantize_k.c)
#define HR_DEQ_DECL(t) \
    void hr_dequant_##t(const uint8_t *b, size_t k, float *out); \
    void hr_quant_##t(const float *x, size_t k, uint8_t *out);
HR_DEQ_DECL(bf16)
HR_DEQ_DECL(q4_1)
HR_DEQ_DECL(q5_0)
HR_DEQ_DECL(q5_1)
HR_DEQ_DECL(q2_k)
HR_DEQ_DECL(q3_k)
HR_DEQ_DECL(q4_k)
HR_DEQ_DECL(q5_k)
HR_DEQ_DECL(q6_k)
void hr_dequant_bf16_avx512(const uint8_t *b, size_t k, float *out);

#define HR_KDOT_DECL(t) \
    void hr_rows_##t##_scalar(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y); \
    void hr_rows_##t##_avx2(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y); \
    void hr_rows_##t##_avx512(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y);
HR_KDOT_DECL(q4_k)
HR_KDOT_DECL(q5_k)
HR_KDOT_DECL(q6_k)
// dot_q4_1_q5.c (against Q8_0), dot_q2_k_q3_k.c (against Q8_K), dot_bf16.c (floats)
HR_KDOT_DECL(q4_1)
HR_KDOT_DECL(q5_0)
HR_KDOT_DECL(q5_1)
HR_KDOT_DECL(q2_k)
HR_KDOT_DECL(q3_k)
HR_KDOT_DECL(bf16)

// dequant_k.c: the K-quants' dequantization with AVX-512 (prefill's tiles), equal to the reference bit for bit
void hr_dequant_q2_k_avx512(const uint8_t *b, size_t k, float *out);
void hr_dequant_q3_k_avx512(const uint8_t *b, size_t k, float *out);
void hr_dequant_q4_k_avx512(const uint8_t *b, size_t k, float *out);
void hr_dequant_q5_k_avx512(const uint8_t *b, size_t k, float *out);
void hr_dequant_q6_k_avx512(const uint8_t *b, size_t k, float *out);

/// Every f16 bit pattern as f32 (quant.c): a block's scale becomes one load that can feed a broadcast.
extern float hr_f16_table[65536];

/// One vector of k activations in ggml's Q8_0 form (quant.c quantizes it once per product): per block of 32,
/// int8 values and the f16-rounded scale as a float, x ≈ d·q, rounded half away from zero.
typedef struct {
    int8_t *q;        ///< k, the blocks in order (64-byte aligned)
    float *d;         ///< k/32
    int32_t *bsum;    ///< k/32: Σ q of each block (q4_1/q5_1's minimum and q5_0's offset multiply it)
    int32_t *c4, *c8; ///< k/4 each: per group of 4 values their sum times -8 (q4_0's offset) and -128 (q8_0 made unsigned)
    /// Pairs of blocks (2p, 2p+1) for the q4_0 kernel: bytes [b0 0:16, b1 0:16, b0 16:32, b1 16:32], the
    /// -8·sum correction per 32-bit lane (lanes 0-3 block 2p, 4-7 block 2p+1) and the scales lane by lane.
    int8_t *qp;       ///< k
    int32_t *c4p;     ///< k/8
    float *dp;        ///< k/8
    size_t cap;
} hr_q8_0_acts;

/// One 256-element block of activations in Q8_K form: x ≈ d·qs, with the sums of qs per 16 and per 32
/// (the K-quants' minimums and offsets multiply those). 64-byte aligned in arrays.
typedef struct {
    int8_t qs[HR_QK_K];
    int16_t bsum16[16];
    int16_t bsum32[8];
    float d;
    uint8_t pad[12];
} hr_q8k_block;

/// Quantizes x (k a multiple of 256) into the calling thread's Q8_K buffer and returns it (valid until the
/// thread's next call). Round half away from zero with d = max|x|/127, as the tests' reference does.
const hr_q8k_block *hr_q8k_quantize(const float *x, size_t k);

// ---- formats.c
/// y[r] for r in [r0, r1) with the format's kernel at ISA level `level` (or the level below), else the generic
/// path: dequantize the row and dot it in floats.
void hr_format_rows(const hr_format *f, int level, const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa,
                    size_t r0, size_t r1, float *y);
/// The format's dequantization at `level` (or the level below).
hr_dequant_fn hr_format_dequant(const hr_format *f, int level);
/// Σ a[i]·b[i] in f32 at `level`.
float hr_dot_f32(const float *a, const float *b, size_t k, int level);

#endif
