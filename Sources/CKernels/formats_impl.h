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
