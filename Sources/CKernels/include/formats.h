// The one table of weight formats: for each GGUF/ggml type the engine computes, its block layout,
// its naive dequantization, and its dot-product kernels per instruction set. Swift's `QuantType`,
// the GGUF type map and the planner's bytes per weight read it (formats.c holds the entries).
#ifndef HEADROOM_FORMATS_H
#define HEADROOM_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// ggml type ids of the formats beyond the first four (CKernels.h), as GGUF stores them.
enum {
    HR_TYPE_Q4_1 = 3, HR_TYPE_Q5_0 = 6, HR_TYPE_Q5_1 = 7,
    HR_TYPE_Q2_K = 10, HR_TYPE_Q3_K = 11, HR_TYPE_Q4_K = 12, HR_TYPE_Q5_K = 13, HR_TYPE_Q6_K = 14,
    HR_TYPE_BF16 = 30,
};

/// The form a format's dot products read the activations in: floats, or quantized once per product
/// to ggml's Q8_0 (32-element blocks, f16 scale) or to Q8_K (256-element blocks, f32 scale, sums per 16).
enum { HR_ACT_F32 = 0, HR_ACT_Q8_0 = 1, HR_ACT_Q8_K = 2 };

/// y[r] = row r of W · x for r in [r0, r1). W's rows are `row_bytes` apart and `k` wide; `x` is the float
/// vector and `xa` the same vector in the format's activation form (unused for HR_ACT_F32).
typedef void (*hr_rows_fn)(const uint8_t *w, size_t row_bytes, size_t k, const float *x, const void *xa,
                           size_t r0, size_t r1, float *y);
/// Dequantizes `k` elements (whole blocks) starting at `blocks` into `out`.
typedef void (*hr_dequant_fn)(const uint8_t *blocks, size_t k, float *out);
/// Quantizes `k` floats (whole blocks) into `out`.
typedef void (*hr_quant_fn)(const float *x, size_t k, uint8_t *out);

/// One weight format. Function pointers indexed by ISA level (0 scalar, 1 avx2, 2 avx512-vnni) may be
/// NULL above 0: the level below serves. `dot[0]` NULL means the format has no dot kernel of its own and
/// decode dequantizes a row into floats and dots them (the generic path, formats.c).
typedef struct hr_format {
    int type;                 ///< ggml type id
    const char *name;         ///< lower-case ggml name ("q4_k", "bf16")
    int block;                ///< elements per block (1 for plain floats, 32, or 256 for K-quants)
    int block_bytes;          ///< bytes per block
    int llama_ftype;          ///< llama.cpp's general.file_type for a file of this type throughout
    int act;                  ///< HR_ACT_*: the activation form `dot` reads
    hr_dequant_fn dequantize[3];   ///< [0] is the naive reference: equals gguf-py bit for bit
    hr_quant_fn quantize;     ///< ggml's reference quantizer (quantize_row_*_ref, llama-quantize without an imatrix), byte for byte
    hr_rows_fn dot[3];
} hr_format;

/// The entry of ggml type `type`, or NULL when the engine does not compute it.
const hr_format *hr_format_of(int type);
/// The i-th entry (0 ..< hr_format_count()), in the order `--help` lists them.
const hr_format *hr_format_at(int i);
int hr_format_count(void);

#ifdef __cplusplus
}
#endif

#endif
