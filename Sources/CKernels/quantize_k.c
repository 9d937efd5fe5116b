// ggml's reference quantizers of the K-quants (q2_K … q6_K), byte for byte: the same searches for each
// sub-block's scale (and minimum), the same 4/6/8-bit quantization of those against the super-block's f16 scale,
// the same final rounding of every value. Written from the algorithms of ggml-quants.c (quantize_row_q*_K_ref,
// the path llama-quantize takes without an importance matrix); every float operation is in ggml's order and
// nothing is contracted into a fused multiply-add, because one ulp of a sub-block scale can change a value's
// rounding and so the bytes. Tests/HeadroomKernelsTests/Fixtures/quant-*.bin hold ggml's own bytes for random
// rows (scripts/ggml-quant-fixtures.py).
#include "CKernels.h"
#include "formats_impl.h"
#include <math.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

#define QK_K HR_QK_K
// A sub-block whose largest |x| is below this is all zeros (ggml's GROUP_MAX_EPS).
#define ALL_ZERO_EPS 1e-15f

// ggml's nearest_int: adding 1.5·2^23 puts the rounded integer in the low mantissa bits (ties to even). Valid for
// |v| < 2^22, which every caller's values are.
static inline int round_int(float v) {
    const float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline uint16_t f16_bits(float v) { return hr_f32_to_f16(v); }
static inline float f16_value(uint16_t h) { return hr_f16_to_f32(h); }
static inline void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

// ---- scale searches for one sub-block ---------------------------------------------------------------------------

/// x ≈ scale·L − min with L in [0, nmax] (ggml's make_qkx2_quants): start from the range, then try nstep+1 other
/// inverse scales (nmax + rmin + rdelta·i over the range), each followed by the weighted least-squares scale and
/// minimum of its levels, keeping the one with the least weighted error (squared, or absolute when `abs_error`).
/// Returns the scale; *neg_min is the minimum's negation (≥ 0). `aux` is scratch of n levels.
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min, uint8_t *aux,
                           float rmin, float rdelta, int nstep, int abs_error) {
    float lo = x[0], hi = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
        const float wi = w[i];
        sum_w += wi;
        sum_x += wi * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi == lo) {
        memset(L, 0, (size_t)n);
        *neg_min = -lo;
        return 0.f;
    }
    float iscale = (float)nmax / (hi - lo);
    float scale = 1 / iscale;
    float best = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(round_int(iscale * (x[i] - lo)), 0, nmax);
        float diff = scale * (float)L[i] + lo - x[i];
        diff = abs_error ? fabsf(diff) : diff * diff;
        best += w[i] * diff;
    }
    if (nstep < 1) { *neg_min = -lo; return scale; }
    for (int step = 0; step <= nstep; step++) {
        iscale = (rmin + rdelta * (float)step + (float)nmax) / (hi - lo);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(round_int(iscale * (x[i] - lo)), 0, nmax);
            aux[i] = (uint8_t)l;
            const float wl = w[i] * (float)l;
            sum_l += wl;
            sum_l2 += wl * (float)l;
            sum_xl += wl * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0)) continue;
        float s = (sum_w * sum_xl - sum_x * sum_l) / det;
        float m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (m > 0) { m = 0; s = sum_xl / sum_l2; }
        float err = 0;
        for (int i = 0; i < n; i++) {
            float diff = s * (float)aux[i] + m - x[i];
            diff = abs_error ? fabsf(diff) : diff * diff;
            err += w[i] * diff;
        }
        if (err < best) {
            memcpy(L, aux, (size_t)n);
            best = err;
            scale = s;
            lo = m;
        }
    }
    *neg_min = -lo;
    return scale;
}

/// Σ w·x·l and Σ w·l² over the levels l = clamp(round(iscale·x)) in [−nmax, nmax−1], weights x² (ggml's
/// rmse_type 1); the levels, offset by nmax, go to L when L is not NULL.
static void sym_sums(int n, int nmax, const float *x, float iscale, int8_t *L, float *sumlx, float *suml2) {
    float a = 0, b = 0;
    for (int i = 0; i < n; i++) {
        const int l = clampi(round_int(iscale * x[i]), -nmax, nmax - 1);
        if (L) L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        a += w * x[i] * (float)l;
        b += w * (float)l * (float)l;
    }
    *sumlx = a; *suml2 = b;
}

/// x ≈ scale·(L − nmax), L in [0, 2·nmax) (ggml's make_qx_quants with x² weights): of the inverse scales
/// (nmax + 0.1·i)/max for i in −9…9, the one whose least-squares scale explains most of Σ x²·x². Returns the scale.
static float fit_scale_sym(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) { const float ax = fabsf(x[i]); if (ax > amax) { amax = ax; max = x[i]; } }
    if (amax < ALL_ZERO_EPS) { memset(L, 0, (size_t)n); return 0.f; }
    float sumlx, suml2;
    sym_sums(n, nmax, x, (float)-nmax / max, L, &sumlx, &suml2);
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int step = -9; step <= 9; step++) {
        if (step == 0) continue;
        const float iscale = -((float)nmax + 0.1f * (float)step) / max;
        sym_sums(n, nmax, x, iscale, NULL, &sumlx, &suml2);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            sym_sums(n, nmax, x, iscale, L, &sumlx, &suml2);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/// x ≈ scale·(L − nmax), L in [0, 2·nmax) (ggml's make_q3_quants with its x²-weighted refinement): round against
/// −nmax/max, then up to five passes that move single levels when that raises (Σ w·x·l)²/Σ w·l². Returns the scale.
static float fit_scale_q3(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) { const float ax = fabsf(x[i]); if (ax > amax) { amax = ax; max = x[i]; } }
    if (amax < ALL_ZERO_EPS) { memset(L, 0, (size_t)n); return 0.f; }
    const float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = clampi(round_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (!(slx > 0)) continue;
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            const int l = clampi(round_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (l == L[i]) continue;
            slx += w * x[i] * (float)l;
            sl2 += w * (float)l * (float)l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)l; sumlx = slx; suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// ---- packing ------------------------------------------------------------------------------------------------------

// 2-bit levels of 256 elements into 64 bytes: in each half of 128, element 32g + l is bits 2g..2g+1 of byte l.
static void pack2(const uint8_t *L, uint8_t *qs) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *v = L + 128 * h + l;
            qs[32 * h + l] = (uint8_t)(v[0] | (v[32] << 2) | (v[64] << 4) | (v[96] << 6));
        }
}

// 4-bit levels of 256 elements into 128 bytes: element 64c + l is the low nibble of byte 32c + l, 64c + 32 + l the high.
static void pack4(const uint8_t *L, uint8_t *qs) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) qs[32 * c + l] = (uint8_t)((L[64 * c + l] & 0x0F) | ((L[64 * c + 32 + l] & 0x0F) << 4));
}

// q4_K / q5_K: eight 6-bit scales and minimums in 12 bytes (the inverse of ggml's get_scale_min_k4).
static void pack_scales_k4(const uint8_t ls[8], const uint8_t lm[8], uint8_t s[12]) {
    for (int j = 0; j < 4; j++) { s[j] = ls[j]; s[j + 4] = lm[j]; }
    for (int j = 4; j < 8; j++) {
        s[j + 4] = (uint8_t)((ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4));
        s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
        s[j] |= (uint8_t)((lm[j] >> 4) << 6);
    }
}

static void unpack_scale_k4(const uint8_t s[12], int j, int *sc, int *m) {
    if (j < 4) { *sc = s[j] & 63; *m = s[j + 4] & 63; }
    else { *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4); *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4); }
}

// ---- q2_K: 16 sub-blocks of 16, 4-bit scale and minimum each; levels 0..3 ------------------------------------------
// Layout: scales[16] (low nibble scale, high nibble minimum), qs[64], f16 d, f16 dmin.

void hr_quant_q2_k(const float *x, size_t k, uint8_t *out) {
    for (size_t blk = 0; blk < k / QK_K; blk++, x += QK_K, out += 84) {
        uint8_t L[QK_K], aux[16];
        float w[16], scales[16], mins[16], max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            scales[j] = fit_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], aux, -0.5f, 0.1f, 15, 1);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        uint8_t *sc = out;
        uint16_t dh = f16_bits(0.f), mh = f16_bits(0.f);
        memset(sc, 0, 16);
        if (max_scale > 0) {
            const float iscale = 15.f / max_scale;
            for (int j = 0; j < 16; j++) sc[j] = (uint8_t)round_int(iscale * scales[j]);
            dh = f16_bits(max_scale / 15.f);
        }
        if (max_min > 0) {
            const float iscale = 15.f / max_min;
            for (int j = 0; j < 16; j++) sc[j] |= (uint8_t)(round_int(iscale * mins[j]) << 4);
            mh = f16_bits(max_min / 15.f);
        }
        put16(out + 80, dh); put16(out + 82, mh);
        for (int j = 0; j < 16; j++) {
            const float d = f16_value(dh) * (float)(sc[j] & 0x0F);
            if (d == 0) continue;
            const float dm = f16_value(mh) * (float)(sc[j] >> 4);
            for (int l = 0; l < 16; l++) L[16 * j + l] = (uint8_t)clampi(round_int((x[16 * j + l] + dm) / d), 0, 3);
        }
        pack2(L, out + 16);
    }
}

// ---- q3_K: 16 sub-blocks of 16, signed 6-bit scales; levels −4..3 --------------------------------------------------
// Layout: hmask[32] (bit i/32 of byte i%32: the level's third bit), qs[64] (low two bits), scales[12], f16 d.

void hr_quant_q3_k(const float *x, size_t k, uint8_t *out) {
    for (size_t blk = 0; blk < k / QK_K; blk++, x += QK_K, out += 110) {
        int8_t L[QK_K];
        float scales[16], max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_scale_q3(16, 4, x + 16 * j, L + 16 * j);
            const float a = fabsf(scales[j]);
            if (a > amax) { amax = a; max_scale = scales[j]; }
        }
        uint8_t *sc = out + 96;
        memset(sc, 0, 12);
        uint16_t dh = f16_bits(0.f);
        if (max_scale != 0) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                const int l = clampi((int8_t)round_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8) sc[j] = (uint8_t)(l & 0x0F);
                else sc[j - 8] |= (uint8_t)((l & 0x0F) << 4);
                sc[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            dh = f16_bits(1 / iscale);
        }
        put16(out + 108, dh);
        for (int j = 0; j < 16; j++) {
            const int lo = j < 8 ? (sc[j] & 0x0F) : (sc[j - 8] >> 4);
            const int s = (lo | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
            const float d = f16_value(dh) * (float)s;
            if (d == 0) continue;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(clampi(round_int(x[16 * j + l] / d), -4, 3) + 4);
        }
        uint8_t low[QK_K];
        memset(out, 0, 32);
        for (int i = 0; i < QK_K; i++) {
            const int v = L[i];
            if (v > 3) out[i % 32] |= (uint8_t)(1 << (i / 32));
            low[i] = (uint8_t)(v > 3 ? v - 4 : v);
        }
        pack2(low, out + 32);
    }
}

// ---- q4_K / q5_K: 8 sub-blocks of 32, 6-bit scale and minimum each ------------------------------------------------
// Sub-block weights: the element's |x| plus the sub-block's root mean square. Returns the f16 d and dmin in dd[0..3].

static void quant_k4_levels(const float *x, int nmax, float rmin, int nstep, uint8_t *dd, uint8_t *scales12, uint8_t L[QK_K]) {
    uint8_t aux[32];
    float w[32], scales[8], mins[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *v = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += v[l] * v[l];
        const float av = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av + fabsf(v[l]);
        scales[j] = fit_scale_min(32, nmax, v, w, L + 32 * j, &mins[j], aux, rmin, 0.1f, nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        // ggml stores the rounded values in uint8_t before limiting them to 63.
        const uint8_t s = (uint8_t)round_int(inv_scale * scales[j]), m = (uint8_t)round_int(inv_min * mins[j]);
        ls[j] = s < 63 ? s : 63;
        lm[j] = m < 63 ? m : 63;
    }
    pack_scales_k4(ls, lm, scales12);
    const uint16_t dh = f16_bits(max_scale / 63.f), mh = f16_bits(max_min / 63.f);
    put16(dd, dh); put16(dd + 2, mh);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        unpack_scale_k4(scales12, j, &sc, &m);
        const float d = f16_value(dh) * (float)sc;
        if (d == 0) continue;
        const float dm = f16_value(mh) * (float)m;
        for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)clampi(round_int((x[32 * j + l] + dm) / d), 0, nmax);
    }
}

// Layout: f16 d, f16 dmin, scales[12], qs[128].
void hr_quant_q4_k(const float *x, size_t k, uint8_t *out) {
    for (size_t blk = 0; blk < k / QK_K; blk++, x += QK_K, out += 144) {
        uint8_t L[QK_K];
        quant_k4_levels(x, 15, -1.f, 20, out, out + 4, L);
        pack4(L, out + 16);
    }
}

// Layout: f16 d, f16 dmin, scales[12], qh[32] (bit i/32 of byte i%32: the level's fifth bit), qs[128].
void hr_quant_q5_k(const float *x, size_t k, uint8_t *out) {
    for (size_t blk = 0; blk < k / QK_K; blk++, x += QK_K, out += 176) {
        uint8_t L[QK_K];
        quant_k4_levels(x, 31, -0.5f, 15, out, out + 4, L);
        memset(out + 16, 0, 32);
        for (int i = 0; i < QK_K; i++) out[16 + i % 32] |= (uint8_t)((L[i] >> 4) << (i / 32));
        pack4(L, out + 48);
    }
}

// ---- q6_K: 16 sub-blocks of 16, signed 8-bit scales; levels −32..31 -----------------------------------------------
// Layout: ql[128] (low nibbles), qh[64] (high two bits), scales[16] (int8), f16 d.

void hr_quant_q6_k(const float *x, size_t k, uint8_t *out) {
    for (size_t blk = 0; blk < k / QK_K; blk++, x += QK_K, out += 210) {
        int8_t L[QK_K];
        float scales[16], max_scale = 0, max_abs = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_scale_sym(16, 32, x + 16 * j, L + 16 * j);
            const float a = fabsf(scales[j]);
            if (a > max_abs) { max_abs = a; max_scale = scales[j]; }
        }
        memset(out, 0, 210);
        if (max_abs < ALL_ZERO_EPS) { put16(out + 208, f16_bits(0.f)); continue; }
        const float iscale = -128.f / max_scale;
        const uint16_t dh = f16_bits(1 / iscale);
        put16(out + 208, dh);
        int8_t *sc = (int8_t *)(out + 192);
        for (int j = 0; j < 16; j++) { const int s = round_int(iscale * scales[j]); sc[j] = (int8_t)(s < 127 ? s : 127); }
        for (int j = 0; j < 16; j++) {
            const float d = f16_value(dh) * (float)sc[j];
            if (d == 0) continue;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(clampi(round_int(x[16 * j + l] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++) {
            const int8_t *v = L + 128 * h;
            uint8_t *ql = out + 64 * h, *qh = out + 128 + 32 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((v[l] & 0x0F) | ((v[l + 64] & 0x0F) << 4));
                ql[l + 32] = (uint8_t)((v[l + 32] & 0x0F) | ((v[l + 96] & 0x0F) << 4));
                qh[l] = (uint8_t)((v[l] >> 4) | ((v[l + 32] >> 4) << 2) | ((v[l + 64] >> 4) << 4) | ((v[l + 96] >> 4) << 6));
            }
        }
    }
}
