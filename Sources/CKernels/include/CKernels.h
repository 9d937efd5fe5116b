// Hot loops for the machine probe (and, later, the quantized kernels): wide vector loads,
// several independent accumulators, chosen at run time by what the CPU supports.
#ifndef HEADROOM_CKERNELS_H
#define HEADROOM_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The widest instruction set the dispatching kernels use on this CPU: "avx512", "avx2" or "scalar".
const char *hr_isa(void);

/// The OpenBLAS core type whose kernels fit this CPU best ("Cooperlake", "SkylakeX", "Haswell"),
/// or NULL when the CPU has no AVX2. OpenBLAS 0.3.21 does not recognise newer Xeons and falls back
/// to its SSE3 "Prescott" kernels, at a fifth of the speed; see headroom's main.swift.
const char *hr_openblas_coretype_hint(void);

/// Reads x[0..<n] as one sequential stream and returns the sum (so the loads are not elided).
float hr_read_stream(const float *x, size_t n);

/// Reads x[0..<n] as `rows` contiguous rows walked side by side, as a matrix-vector
/// product walks its weight rows; returns the sum. `rows` is clamped to 1...16.
float hr_read_rows(const float *x, size_t n, size_t rows);

/// Reads x[0..<n] the way the decode kernels read a weight matrix: rows of `row` floats four at a time, each
/// row's line 1 KiB ahead prefetched, chunks of 64 rows shared across `threads` by the kernel pool
/// (hr_pool_for); the floats past the last whole group of four rows are read on the caller. Returns the sum.
/// The ISA is the decode kernels' (hr_isa_level).
float hr_read_prefetch(const float *x, size_t n, size_t row, int threads);

/// STREAM triad: a[i] = b[i] + s * c[i]. Uses non-temporal stores when `a` is 64-byte aligned,
/// so the figure counts 12 bytes per element with no hidden write-allocate traffic.
void hr_triad(float *a, const float *b, const float *c, float s, size_t n);


// ---- quantized weights (the GGUF/ggml block formats) and the inference kernels: quant.c, pool.c, attention.c


/// ggml type ids, as GGUF stores them.
enum { HR_TYPE_F32 = 0, HR_TYPE_F16 = 1, HR_TYPE_Q4_0 = 2, HR_TYPE_Q8_0 = 8 };
/// The other formats and the table of all of them (block sizes, dequantize, dot products per ISA).
#include "formats.h"

/// Bytes of one row of `k` elements of `type` (k a whole number of the format's blocks); 0 for an unknown type.
size_t hr_row_bytes(int type, size_t k);

/// IEEE half <-> single, round to nearest even (portable bit manipulation, as ggml's reference).
float hr_f16_to_f32(uint16_t h);
uint16_t hr_f32_to_f16(float f);

/// The instruction set the quantized kernels use: "avx512-vnni", "avx2" or "scalar".
const char *hr_quant_isa(void);
/// For tests: cap the kernels at 0 (scalar), 1 (avx2) or 2 (avx512); -1 restores the CPU's best. Returns the level in force.
int hr_set_isa_limit(int level);
/// The level the kernels use now (0 scalar, 1 avx2, 2 avx512).
int hr_isa_level(void);

/// Quantizes `rows` rows of `k` floats into `type` (f32 copies), ggml's reference rounding.
void hr_quantize_rows(int type, const float *x, size_t rows, size_t k, void *out);
/// Dequantizes rows [r0, r0+rows) of a (.., k) matrix of `type` into `out` (rows x k floats), on `threads` threads.
void hr_dequantize_rows(int type, const void *w, size_t k, size_t r0, size_t rows, float *out, int threads);

/// Fills an (n, k) matrix of `type` with seeded uniform values in [-scale, scale), row by row, quantizing as it
/// goes (no f32 copy of the whole matrix). Row r's values depend only on (seed, r): the same on any thread count.
void hr_synthetic_fill(int type, void *out, size_t n, size_t k, uint64_t seed, float scale, int threads);

/// y (n) = W (n, k) · x (k), rows split across `threads`. For q8_0/q4_0, x is first quantized to q8_0 blocks
/// (as llama.cpp does) and the dot products run on integers; accumulation is in f32.
void hr_matvec(int type, const void *w, size_t n, size_t k, const float *x, float *y, int threads);

/// hr_matvec for `count` (≤ 4) matrices of the same width that read the same x (q/k/v, gate/up): one
/// quantization of x and one pool job over their stacked rows. ys[i] receives ns[i] values.
void hr_matvec_multi(int count, const int *types, const void *const *ws, const size_t *ns, size_t k, const float *x,
                     float *const *ys, int threads);

/// y (b, n) = x (b, k) · W (n, k)ᵀ for b up to 64, reading each weight row once for all b rows of x.
void hr_matvec_batch(int type, const void *w, size_t n, size_t k, const float *x, size_t b, float *y, int threads);

/// hr_matvec_batch for `count` matrices of the same width that read the same x (q/k/v, gate/up): x is
/// quantized once and the threads share out the stacked rows. ys[i] is (b, ns[i]).
void hr_matvec_batch_multi(int count, const int *types, const void *const *ws, const size_t *ns, size_t k, const float *x,
                           size_t b, float *const *ys, int threads);

/// The naive reference of hr_matvec_batch: dequantize each row, dot in double. For tests.
void hr_matvec_reference(int type, const void *w, size_t n, size_t k, const float *x, size_t b, float *y);

/// Causal attention of one new query per head against `npos` cached positions.
/// q (heads*hd), kc/vc (npos, kv_heads*hd) rows `kv_stride` floats apart, out (heads*hd); heads split across threads.
void hr_attention_decode(const float *q, const float *kc, const float *vc, size_t npos, size_t kv_stride,
                         int heads, int kv_heads, int hd, float *out, int threads);
/// hr_attention_decode for `b` sequences at once (queries and outputs [b][heads·hd]; each sequence its
/// own cache and length), every (sequence, head) pair split across the pool in one dispatch.
void hr_attention_decode_batch(int b, const float *q, const float *const *kc, const float *const *vc, const size_t *npos,
                               size_t kv_stride, int heads, int kv_heads, int hd, float *out, int threads);

/// hr_attention_decode_batch over a paged KV cache: `rows` queries (q and out [rows][heads·hd]), row r
/// attending to positions 0..<npos[r] of the sequence whose block table is tables[r]. Position p lives in
/// block tables[r][p / block_size] at row p % block_size; block n's rows start at k_pool/v_pool +
/// n·block_size·kv_stride, `kv_stride` floats apart. Rows of one sequence may share a table (a prefill
/// chunk: row i with npos = start + i + 1 is causal attention over the cache and the chunk).
void hr_attention_paged(int rows, const float *q, const float *k_pool, const float *v_pool, const int32_t *const *tables,
                        const size_t *npos, size_t block_size, size_t kv_stride, int heads, int kv_heads, int hd, float *out,
                        int threads);

/// out (n) = silu(gate) · up with silu(g) = g / (1 + e^-g); `out` may alias `gate` or `up`. AVX-512 with
/// a vectorised exp (Cephes' expf polynomial, within 2 ulp) where available, split across the pool for large n.
void hr_swiglu(float *out, const float *gate, const float *up, size_t n, int threads);

/// In place over x[0..<n]: e^(x - max) / sum, vectorised like hr_swiglu.
void hr_softmax(float *x, size_t n);

/// A persistent pool of worker threads: runs fn(ctx, t, n) for t in 0..<n, t = 0 on the caller, and returns
/// when all are done. Workers spin briefly, then sleep, between calls. Calls from inside a task run inline.
typedef void (*hr_task_fn)(void *ctx, int t, int n);
void hr_pool_run(int n, hr_task_fn fn, void *ctx);

/// Runs fn(ctx, lo, hi) over [0, items) in chunks of `chunk`, claimed by up to `threads` threads as they
/// become free (the caller included); returns when all are done. A worker not yet running is not waited for.
typedef void (*hr_range_fn)(void *ctx, size_t lo, size_t hi);
void hr_pool_for(int threads, size_t items, size_t chunk, hr_range_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
