// Hot loops for the machine probe (and, later, the quantized kernels): wide vector loads,
// several independent accumulators, chosen at run time by what the CPU supports.
#ifndef HEADROOM_CKERNELS_H
#define HEADROOM_CKERNELS_H

#include <stddef.h>

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

/// STREAM triad: a[i] = b[i] + s * c[i]. Uses non-temporal stores when `a` is 64-byte aligned,
/// so the figure counts 12 bytes per element with no hidden write-allocate traffic.
void hr_triad(float *a, const float *b, const float *c, float s, size_t n);

#ifdef __cplusplus
}
#endif

#endif
