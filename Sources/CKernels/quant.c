// The first GGUF/ggml weight formats (f32, f16, q8_0, q4_0) and the kernels that read every format:
// quantize, dequantize, matrix-vector products for decode (one sequence, and up to 64 at once reading each
// weight row once). AVX-512 (with VNNI) and AVX2 versions, a scalar fallback, chosen at run time. What is
// per format goes through the table of formats (formats.c); the other formats' kernels are in quant_k.c and
// dot_*.c, and batched decode runs them once per sequence (the integer batch kernel is q4_0's and q8_0's).
#include "CKernels.h"
#include "formats_impl.h"
#include "simd_math.h"
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QK 32
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,f16c,fma")))
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define Q8_BYTES 34   // f16 d, 32 x int8
#define Q4_BYTES 18   // f16 d, 16 bytes of nibbles

// ---- f16 <-> f32, portable (ggml's reference conversion) ---------------------------------------

static inline float bits_f(uint32_t w) { float f; memcpy(&f, &w, 4); return f; }
static inline uint32_t f_bits(float f) { uint32_t w; memcpy(&w, &f, 4); return w; }

float hr_f16_to_f32(uint16_t h) {
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const float normalized = bits_f((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float denormalized = bits_f((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t result = sign | (two_w < (1u << 27) ? f_bits(denormalized) : f_bits(normalized));
    return bits_f(result);
}

uint16_t hr_f32_to_f16(float f) {
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    const uint32_t w = f_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = bits_f((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = f_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline uint16_t load_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

// Every f16 as f32 (256 KiB, as ggml keeps): a block's scale becomes one load that can feed a broadcast.
float hr_f16_table[65536];
#define f16_table hr_f16_table
__attribute__((constructor)) static void fill_f16_table(void) {
    for (uint32_t i = 0; i < 65536; i++) f16_table[i] = hr_f16_to_f32((uint16_t)i);
}
static inline void store_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

size_t hr_row_bytes(int type, size_t k) {
    const hr_format *f = hr_format_of(type);
    return f ? k / (size_t)f->block * (size_t)f->block_bytes : 0;
}

// ---- ISA choice ---------------------------------------------------------------------------------

static int best_level = -1, level_cap = -1;   // 2 = avx512 + vnni, 1 = avx2 + fma + f16c, 0 = scalar

static int level(void) {
    if (best_level < 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma")) best_level = 2;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) best_level = 1;
        else best_level = 0;
    }
    return level_cap >= 0 && level_cap < best_level ? level_cap : best_level;
}

int hr_set_isa_limit(int l) { level_cap = l; return level(); }
int hr_isa_level(void) { return level(); }

const char *hr_quant_isa(void) {
    switch (level()) { case 2: return "avx512-vnni"; case 1: return "avx2"; default: return "scalar"; }
}

// ---- reference quantization (ggml's quantize_row_*_ref) ------------------------------------------

static void quantize_row_legacy(int type, const float *x, size_t k, uint8_t *out) {
    switch (type) {
    case HR_TYPE_F32: memcpy(out, x, 4 * k); return;
    case HR_TYPE_F16: for (size_t i = 0; i < k; i++) store_u16(out + 2 * i, hr_f32_to_f16(x[i])); return;
    case HR_TYPE_Q8_0:
        for (size_t b = 0; b < k / QK; b++, x += QK, out += Q8_BYTES) {
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
            const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
            store_u16(out, hr_f32_to_f16(d));
            for (int j = 0; j < QK; j++) out[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
        }
        return;
    case HR_TYPE_Q4_0:
        for (size_t b = 0; b < k / QK; b++, x += QK, out += Q4_BYTES) {
            float amax = 0, max = 0;
            for (int j = 0; j < QK; j++) if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
            const float d = max / -8.0f, id = d ? 1.0f / d : 0.0f;
            store_u16(out, hr_f32_to_f16(d));
            for (int j = 0; j < QK / 2; j++) {
                int a = (int8_t)(x[j] * id + 8.5f), c = (int8_t)(x[j + QK / 2] * id + 8.5f);
                uint8_t lo = (uint8_t)(a < 15 ? a : 15), hi = (uint8_t)(c < 15 ? c : 15);
                out[2 + j] = (uint8_t)(lo | (hi << 4));
            }
        }
        return;
    }
}

static void quantize_row(int type, const float *x, size_t k, uint8_t *out) { hr_format_of(type)->quantize(x, k, out); }

void hr_quantize_rows(int type, const float *x, size_t rows, size_t k, void *out) {
    const size_t rb = hr_row_bytes(type, k);
    for (size_t r = 0; r < rows; r++) quantize_row(type, x + r * k, k, (uint8_t *)out + r * rb);
}

static void dequantize_row_legacy(int type, const uint8_t *w, size_t k, float *out) {
    switch (type) {
    case HR_TYPE_F32: memcpy(out, w, 4 * k); return;
    case HR_TYPE_F16: for (size_t i = 0; i < k; i++) out[i] = hr_f16_to_f32(load_u16(w + 2 * i)); return;
    case HR_TYPE_Q8_0:
        for (size_t b = 0; b < k / QK; b++, w += Q8_BYTES, out += QK) {
            const float d = hr_f16_to_f32(load_u16(w));
            for (int j = 0; j < QK; j++) out[j] = (float)(int8_t)w[2 + j] * d;
        }
        return;
    case HR_TYPE_Q4_0:
        for (size_t b = 0; b < k / QK; b++, w += Q4_BYTES, out += QK) {
            const float d = hr_f16_to_f32(load_u16(w));
            for (int j = 0; j < QK / 2; j++) {
                out[j] = (float)((w[2 + j] & 0x0F) - 8) * d;
                out[j + QK / 2] = (float)((w[2 + j] >> 4) - 8) * d;
            }
        }
        return;
    }
}

static void dequantize_row(int type, const uint8_t *w, size_t k, float *out) { hr_format_of(type)->dequantize[0](w, k, out); }

__attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))
static void dequantize_row_avx512(int type, const uint8_t *w, size_t k, float *out) {
    if (type == HR_TYPE_F16) {
        for (size_t i = 0; i < k; i += 16) _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + 2 * i))));
        return;
    }
    if (type == HR_TYPE_Q4_0) {
        const __m128i m4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
        for (size_t b = 0; b < k / QK; b++, w += Q4_BYTES, out += QK) {
            const __m512 d = _mm512_set1_ps(_cvtsh_ss(load_u16(w)));
            const __m128i q = _mm_loadu_si128((const __m128i *)(w + 2));
            const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight);
            const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
            _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), d));
            _mm512_storeu_ps(out + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), d));
        }
        return;
    }
    if (type == HR_TYPE_Q8_0) {
        for (size_t b = 0; b < k / QK; b++, w += Q8_BYTES, out += QK) {
            const __m512 d = _mm512_set1_ps(_cvtsh_ss(load_u16(w)));
            _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(w + 2)))), d));
            _mm512_storeu_ps(out + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(w + 18)))), d));
        }
        return;
    }
    dequantize_row_legacy(type, w, k, out);
}

static void dequant_row_fast(int type, const uint8_t *w, size_t k, float *out) {
    hr_format_dequant(hr_format_of(type), level())(w, k, out);
}

typedef struct { int type; const uint8_t *w; size_t k, r0, rows; float *out; } dq_job;

static void dq_task(void *p, int t, int n) {
    dq_job *j = p;
    const size_t rb = hr_row_bytes(j->type, j->k);
    size_t lo = j->rows * t / n, hi = j->rows * (t + 1) / n;
    for (size_t r = lo; r < hi; r++) dequant_row_fast(j->type, j->w + (j->r0 + r) * rb, j->k, j->out + r * j->k);
}

void hr_dequantize_rows(int type, const void *w, size_t k, size_t r0, size_t rows, float *out, int threads) {
    dq_job j = { type, w, k, r0, rows, out };
    hr_pool_run(threads < 1 ? 1 : threads, dq_task, &j);
}

// ---- synthetic weights -----------------------------------------------------------------------------

static inline uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct { int type; uint8_t *out; size_t n, k; uint64_t seed; float scale; } fill_job;

static void fill_task(void *p, int t, int nt) {
    fill_job *j = p;
    const size_t rb = hr_row_bytes(j->type, j->k);
    float *row = malloc(j->k * sizeof(float));
    for (size_t r = j->n * t / nt; r < j->n * (t + 1) / nt; r++) {
        uint64_t s = j->seed ^ (r * 0xD1B54A32D192ED03ull);
        splitmix(&s);
        for (size_t i = 0; i < j->k; i++) row[i] = ((float)(splitmix(&s) >> 40) * (1.0f / 16777216.0f) * 2 - 1) * j->scale;
        quantize_row(j->type, row, j->k, j->out + r * rb);
    }
    free(row);
}

void hr_synthetic_fill(int type, void *out, size_t n, size_t k, uint64_t seed, float scale, int threads) {
    fill_job j = { type, out, n, k, seed, scale };
    hr_pool_run(threads < 1 ? 1 : threads, fill_task, &j);
}

// ---- activations quantized to q8_0 for the integer dot products ------------------------------------
// The layout is hr_q8_0_acts (formats_impl.h).

typedef hr_q8_0_acts xq_t;

static _Thread_local xq_t xq_tls;

static void xq_reserve(xq_t *x, size_t k) {
    if (x->cap >= k) return;
    free(x->q); free(x->d); free(x->c4); free(x->c8); free(x->qp); free(x->c4p); free(x->dp); free(x->bsum);
    x->qp = aligned_alloc(64, (k + 63) / 64 * 64);
    x->c4p = aligned_alloc(64, (k / 2 + 63) / 64 * 64);
    x->dp = aligned_alloc(64, (k / 2 + 63) / 64 * 64);
    x->q = aligned_alloc(64, (k + 63) / 64 * 64);
    x->d = aligned_alloc(64, ((k / QK) * 4 + 63) / 64 * 64);
    x->c4 = aligned_alloc(64, (k + 63) / 64 * 64);
    x->c8 = aligned_alloc(64, (k + 63) / 64 * 64);
    x->bsum = aligned_alloc(64, ((k / QK) * 4 + 63) / 64 * 64);
    x->cap = k;
}

// One block of 32 activations to q8_0 as ggml's quantize_row_q8_0 does (the scale is stored as f16, the
// values are rounded half away from zero with the exact one): writes the 32 values and the sums of each
// group of 4, returns the f16-rounded scale.
static float quant_block_scalar(const float *v, int8_t *q, int32_t *gsum) {
    float amax = 0;
    for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(v[j]));
    const float d0 = amax / 127.0f, id = d0 ? 1.0f / d0 : 0.0f;
    for (int g = 0; g < QK / 4; g++) {
        int s = 0;
        for (int j = 4 * g; j < 4 * g + 4; j++) {
            int x = (int)roundf(v[j] * id);
            x = x > 127 ? 127 : x < -127 ? -127 : x;
            q[j] = (int8_t)x;
            s += x;
        }
        gsum[g] = s;
    }
    return hr_f16_to_f32(hr_f32_to_f16(d0));
}

AVX512 static float quant_block_avx512(const float *v, int8_t *q, int32_t *gsum) {
    const __m512 x0 = _mm512_loadu_ps(v), x1 = _mm512_loadu_ps(v + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    const float d0 = amax / 127.0f, id = d0 ? 1.0f / d0 : 0.0f;
    const __m512 vid = _mm512_set1_ps(id), half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    __m512i qi[2];
    for (int h = 0; h < 2; h++) {
        const __m512 y = _mm512_mul_ps(h ? x1 : x0, vid);
        // roundf: truncate, then step away from zero when the dropped fraction is at least one half.
        const __m512 t = _mm512_roundscale_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(y, t)), half, _CMP_GE_OQ);
        const __m512 r = _mm512_mask_add_ps(t, up, t, _mm512_or_ps(one, _mm512_and_ps(y, _mm512_set1_ps(-0.0f))));
        qi[h] = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvttps_epi32(r), _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
    }
    const __m128i lo = _mm512_cvtepi32_epi8(qi[0]), hi = _mm512_cvtepi32_epi8(qi[1]);
    const __m256i qb = _mm256_set_m128i(hi, lo);
    _mm256_storeu_si256((__m256i *)q, qb);
    _mm256_storeu_si256((__m256i *)gsum, _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), qb));
    return hr_f16_to_f32(hr_f32_to_f16(d0));
}

static float quant_block(const float *v, int8_t *q, int32_t *gsum) {
    return level() >= 2 ? quant_block_avx512(v, q, gsum) : quant_block_scalar(v, q, gsum);
}

static void quantize_x(const float *x, size_t k, xq_t *o) {
    xq_reserve(o, k);
    for (size_t b = 0; b < k / QK; b++) {
        int32_t gs[8];
        o->d[b] = quant_block(x + b * QK, o->q + b * QK, gs);
        int32_t sum = 0;
        for (int g = 0; g < QK / 4; g++) { o->c4[b * 8 + g] = -8 * gs[g]; o->c8[b * 8 + g] = -128 * gs[g]; sum += gs[g]; }
        o->bsum[b] = sum;
    }
    for (size_t p = 0; p < k / QK / 2; p++) {
        const size_t b0 = 2 * p, b1 = 2 * p + 1;
        memcpy(o->qp + p * 64, o->q + b0 * QK, 16);
        memcpy(o->qp + p * 64 + 16, o->q + b1 * QK, 16);
        memcpy(o->qp + p * 64 + 32, o->q + b0 * QK + 16, 16);
        memcpy(o->qp + p * 64 + 48, o->q + b1 * QK + 16, 16);
        for (int l = 0; l < 4; l++) {
            o->c4p[p * 8 + l] = o->c4[b0 * 8 + l] + o->c4[b0 * 8 + l + 4];
            o->c4p[p * 8 + 4 + l] = o->c4[b1 * 8 + l] + o->c4[b1 * 8 + l + 4];
            o->dp[p * 8 + l] = o->d[b0];
            o->dp[p * 8 + 4 + l] = o->d[b1];
        }
    }
}

// ---- one row · x, per format and ISA ----------------------------------------------------------------

static float dot_scalar(int type, const uint8_t *w, size_t k, const float *x, const xq_t *xq) {
    switch (type) {
    case HR_TYPE_F32: { const float *f = (const float *)w; float s = 0; for (size_t i = 0; i < k; i++) s += f[i] * x[i]; return s; }
    case HR_TYPE_F16: { float s = 0; for (size_t i = 0; i < k; i++) s += hr_f16_to_f32(load_u16(w + 2 * i)) * x[i]; return s; }
    case HR_TYPE_Q8_0: {
        float s = 0;
        for (size_t b = 0; b < k / QK; b++, w += Q8_BYTES) {
            int sum = 0;
            for (int j = 0; j < QK; j++) sum += (int8_t)w[2 + j] * xq->q[b * QK + j];
            s += hr_f16_to_f32(load_u16(w)) * xq->d[b] * (float)sum;
        }
        return s;
    }
    case HR_TYPE_Q4_0: {
        float s = 0;
        for (size_t b = 0; b < k / QK; b++, w += Q4_BYTES) {
            int sum = 0;
            for (int j = 0; j < QK / 2; j++)
                sum += ((w[2 + j] & 0x0F) - 8) * xq->q[b * QK + j] + ((w[2 + j] >> 4) - 8) * xq->q[b * QK + j + 16];
            s += hr_f16_to_f32(load_u16(w)) * xq->d[b] * (float)sum;
        }
        return s;
    }
    }
    return 0;
}


// Four rows at a time share the loads of x.
AVX512 static void rows_avx512(int type, const uint8_t *w, size_t rb, size_t k, const float *x, const xq_t *xq,
                               size_t r0, size_t r1, float *y) {
    size_t r = r0;
    if (type == HR_TYPE_F32 || type == HR_TYPE_F16) {
        for (; r + 4 <= r1; r += 4) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            const uint8_t *p0 = w + r * rb, *p1 = p0 + rb, *p2 = p1 + rb, *p3 = p2 + rb;
            for (size_t i = 0; i < k; i += 32) {
                const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
                if (type == HR_TYPE_F16) {
                    // 1 KiB ahead in each row, and past a row's end the start of the next group's row: at 5632
                    // columns this streams 25-27 GB/s where the next group's same columns gave 20-22.
                    const size_t off = 2 * i + 1024, at = off < rb ? off : 3 * rb + off;
                    _mm_prefetch((const char *)p0 + at, _MM_HINT_T0);
                    _mm_prefetch((const char *)p1 + at, _MM_HINT_T0);
                    _mm_prefetch((const char *)p2 + at, _MM_HINT_T0);
                    _mm_prefetch((const char *)p3 + at, _MM_HINT_T0);
                }
#define LD(p, o) (type == HR_TYPE_F32 ? _mm512_loadu_ps((const float *)(p) + i + (o)) \
                                      : _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((p) + 2 * (i + (o))))))
                a0 = _mm512_fmadd_ps(LD(p0, 0), x0, a0); b0 = _mm512_fmadd_ps(LD(p0, 16), x1, b0);
                a1 = _mm512_fmadd_ps(LD(p1, 0), x0, a1); b1 = _mm512_fmadd_ps(LD(p1, 16), x1, b1);
                a2 = _mm512_fmadd_ps(LD(p2, 0), x0, a2); b2 = _mm512_fmadd_ps(LD(p2, 16), x1, b2);
                a3 = _mm512_fmadd_ps(LD(p3, 0), x0, a3); b3 = _mm512_fmadd_ps(LD(p3, 16), x1, b3);
#undef LD
            }
            y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
            y[r + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
            y[r + 2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
            y[r + 3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
        }
    } else if (type == HR_TYPE_Q4_0) {
        // Two blocks per step: their 32 nibble bytes side by side in one register, low and high nibbles
        // multiplied into x laid out to match (xq->qp), lanes 0-3 summing block 2p and 4-7 block 2p+1.
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        const size_t nb = k / QK, np = nb / 2;
        // Each row's stream prefetches the same columns of the next group of four rows: short rows
        // (1152 bytes at k = 2048) would otherwise start every group cold.
        const size_t pf = 4 * rb;
        for (; r + 4 <= r1; r += 4) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            const uint8_t *p0 = w + r * rb, *p1 = p0 + rb, *p2 = p1 + rb, *p3 = p2 + rb;
            for (size_t pi = 0; pi < np; pi++) {
                const __m256i xlo = _mm256_load_si256((const __m256i *)(xq->qp + pi * 64));
                const __m256i xhi = _mm256_load_si256((const __m256i *)(xq->qp + pi * 64 + 32));
                const __m256i cv = _mm256_load_si256((const __m256i *)(xq->c4p + pi * 8));
                const __m256 dx = _mm256_load_ps(xq->dp + pi * 8);
                const size_t off = pi * 2 * Q4_BYTES;
#define Q4ROW(P, A) { \
                    const uint8_t *q = (P) + off; \
                    _mm_prefetch((const char *)q + pf, _MM_HINT_T0); \
                    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(q + 2))), \
                                                              _mm_loadu_si128((const __m128i *)(q + 20)), 1); \
                    __m256i s = _mm256_dpbusd_epi32(cv, _mm256_and_si256(v, m4), xlo); \
                    s = _mm256_dpbusd_epi32(s, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4), xhi); \
                    const __m256 dw = _mm256_blend_ps(_mm256_broadcast_ss(&f16_table[load_u16(q)]), \
                                                      _mm256_broadcast_ss(&f16_table[load_u16(q + Q4_BYTES)]), 0xF0); \
                    A = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, dx), A); }
                Q4ROW(p0, a0) Q4ROW(p1, a1) Q4ROW(p2, a2) Q4ROW(p3, a3)
#undef Q4ROW
            }
            __m256 acc[4] = { a0, a1, a2, a3 };
            for (int j = 0; j < 4; j++) {
                float tail = 0;
                if (nb & 1) {   // an odd last block
                    const size_t b = nb - 1;
                    const uint8_t *blk = w + (r + j) * rb + b * Q4_BYTES;
                    int sum = 0;
                    for (int e = 0; e < QK / 2; e++)
                        sum += ((blk[2 + e] & 0x0F) - 8) * xq->q[b * QK + e] + ((blk[2 + e] >> 4) - 8) * xq->q[b * QK + e + 16];
                    tail = f16_table[load_u16(blk)] * xq->d[b] * (float)sum;
                }
                __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[j]), _mm256_extractf128_ps(acc[j], 1));
                h = _mm_add_ps(h, _mm_movehl_ps(h, h));
                h = _mm_add_ss(h, _mm_movehdup_ps(h));
                y[r + j] = _mm_cvtss_f32(h) + tail;
            }
        }
    } else if (type == HR_TYPE_Q8_0) {
        const __m256i bias = _mm256_set1_epi8((char)0x80);
        const size_t nb = k / QK, pf = 4 * rb;
        for (; r + 4 <= r1; r += 4) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            const uint8_t *p0 = w + r * rb, *p1 = p0 + rb, *p2 = p1 + rb, *p3 = p2 + rb;
            for (size_t b = 0; b < nb; b++) {
                const __m256i xv = _mm256_load_si256((const __m256i *)(xq->q + b * QK));
                const __m256i cv = _mm256_load_si256((const __m256i *)(xq->c8 + b * 8));
                const __m256 dx = _mm256_broadcast_ss(xq->d + b);
                const size_t off = b * Q8_BYTES;
#define Q8ROW(P, A) { \
                    const uint8_t *q = (P) + off; \
                    _mm_prefetch((const char *)q + pf, _MM_HINT_T0); \
                    const __m256i s = _mm256_dpbusd_epi32(cv, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(q + 2)), bias), xv); \
                    A = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(_mm256_broadcast_ss(&f16_table[load_u16(q)]), dx), A); }
                Q8ROW(p0, a0) Q8ROW(p1, a1) Q8ROW(p2, a2) Q8ROW(p3, a3)
#undef Q8ROW
            }
            __m256 acc[4] = { a0, a1, a2, a3 };
            for (int j = 0; j < 4; j++) {
                __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[j]), _mm256_extractf128_ps(acc[j], 1));
                h = _mm_add_ps(h, _mm_movehl_ps(h, h));
                h = _mm_add_ss(h, _mm_movehdup_ps(h));
                y[r + j] = _mm_cvtss_f32(h);
            }
        }
    }
    for (; r < r1; r++) y[r] = dot_scalar(type, w + r * rb, k, x, xq);
}

AVX2 static void rows_avx2(int type, const uint8_t *w, size_t rb, size_t k, const float *x, const xq_t *xq,
                           size_t r0, size_t r1, float *y) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * rb;
        __m256 a = _mm256_setzero_ps(), c = a;
        if (type == HR_TYPE_F32 || type == HR_TYPE_F16) {
            for (size_t i = 0; i < k; i += 16) {
                __m256 w0, w1;
                if (type == HR_TYPE_F32) { w0 = _mm256_loadu_ps((const float *)p + i); w1 = _mm256_loadu_ps((const float *)p + i + 8); }
                else { w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))); w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i + 16))); }
                a = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a);
                c = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), c);
            }
        } else {
            const int q4 = type == HR_TYPE_Q4_0;
            const size_t bb = q4 ? Q4_BYTES : Q8_BYTES;
            for (size_t b = 0; b < k / QK; b++) {
                const uint8_t *blk = p + b * bb;
                const __m256i xv = _mm256_load_si256((const __m256i *)(xq->q + b * QK));
                __m256i s;
                if (q4) {
                    const __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2));
                    const __m256i wv = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
                    s = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(wv, xv), ones),
                                         _mm256_load_si256((const __m256i *)(xq->c4 + b * 8)));
                } else {
                    const __m256i wv = _mm256_loadu_si256((const __m256i *)(blk + 2));
                    s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv)), ones);
                }
                const __m256 sc = _mm256_set1_ps(_cvtsh_ss(load_u16(blk)) * xq->d[b]);
                if (b & 1) c = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), sc, c);
                else a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), sc, a);
            }
        }
        __m256 s = _mm256_add_ps(a, c);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        y[r] = _mm_cvtss_f32(h);
    }
}

// The first four formats' entries in the table of formats.
#define LEGACY_DEF(T, t) \
    void hr_dequant_##t(const uint8_t *b, size_t k, float *out) { dequantize_row_legacy(T, b, k, out); } \
    void hr_dequant_##t##_avx512(const uint8_t *b, size_t k, float *out) { dequantize_row_avx512(T, b, k, out); } \
    void hr_quant_##t(const float *x, size_t k, uint8_t *out) { quantize_row_legacy(T, x, k, out); } \
    void hr_rows_##t##_scalar(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) { \
        for (size_t r = r0; r < r1; r++) y[r] = dot_scalar(T, w + r * rb, k, x, xa); \
    } \
    void hr_rows_##t##_avx2(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) { \
        rows_avx2(T, w, rb, k, x, xa, r0, r1, y); \
    } \
    void hr_rows_##t##_avx512(const uint8_t *w, size_t rb, size_t k, const float *x, const void *xa, size_t r0, size_t r1, float *y) { \
        rows_avx512(T, w, rb, k, x, xa, r0, r1, y); \
    }
LEGACY_DEF(HR_TYPE_F32, f32)
LEGACY_DEF(HR_TYPE_F16, f16)
LEGACY_DEF(HR_TYPE_Q8_0, q8_0)
LEGACY_DEF(HR_TYPE_Q4_0, q4_0)

typedef struct { int type; const uint8_t *w; size_t n, k; const float *x; const xq_t *xq; float *y; const void *xk; } mv_job;

// The activations each format's dot product reads, quantized once per product on the calling thread.
typedef struct { const xq_t *q8_0; const void *q8_k; } acts_t;

static acts_t quantize_acts(int count, const int *types, const float *x, size_t k) {
    int need = 0;
    for (int i = 0; i < count; i++) { const hr_format *f = hr_format_of(types[i]); if (f) need |= 1 << f->act; }
    acts_t a = { &xq_tls, NULL };
    if (need & (1 << HR_ACT_Q8_0)) quantize_x(x, k, &xq_tls);
    if (need & (1 << HR_ACT_Q8_K)) a.q8_k = hr_q8k_quantize(x, k);
    return a;
}

static void mv_rows(const mv_job *j, size_t r0, size_t r1);

// Several matrices with the same input (q, k, v; gate, up) as one job over their stacked rows.
typedef struct { int count; mv_job parts[4]; size_t start[5]; } mv_multi;

static void mv_multi_range(void *p, size_t lo, size_t hi) {
    mv_multi *m = p;
    for (int i = 0; i < m->count; i++) {
        size_t a = lo > m->start[i] ? lo : m->start[i], b = hi < m->start[i + 1] ? hi : m->start[i + 1];
        if (a < b) mv_rows(&m->parts[i], a - m->start[i], b - m->start[i]);
    }
}

void hr_matvec_multi(int count, const int *types, const void *const *ws, const size_t *ns, size_t k, const float *x,
                     float *const *ys, int threads) {
    if (count < 1) return;
    if (count > 4) count = 4;
    const acts_t a = quantize_acts(count, types, x, k);
    mv_multi m = { .count = count };
    m.start[0] = 0;
    for (int i = 0; i < count; i++) {
        m.parts[i] = (mv_job){ types[i], ws[i], ns[i], k, x, a.q8_0, ys[i], a.q8_k };
        // Each matrix's rows start on a multiple of 64 in the stacked range, so chunks never straddle two.
        m.start[i + 1] = m.start[i] + (ns[i] + 63) / 64 * 64;
    }
    hr_pool_for(threads < 1 ? 1 : threads, m.start[count], 64, mv_multi_range, &m);
}

static void mv_range(void *p, size_t r0, size_t r1) { mv_rows(p, r0, r1); }

static void mv_rows(const mv_job *j, size_t r0, size_t r1) {
    if (r1 > j->n) r1 = j->n;
    if (r0 >= r1) return;
    const hr_format *f = hr_format_of(j->type);
    const void *xa = f->act == HR_ACT_Q8_0 ? (const void *)j->xq : f->act == HR_ACT_Q8_K ? j->xk : NULL;
    hr_format_rows(f, level(), j->w, hr_row_bytes(j->type, j->k), j->k, j->x, xa, r0, r1, j->y);
}

void hr_matvec(int type, const void *w, size_t n, size_t k, const float *x, float *y, int threads) {
    const acts_t a = quantize_acts(1, &type, x, k);
    mv_job j = { type, w, n, k, x, a.q8_0, y, a.q8_k };
    // Chunks of 64 rows (a multiple of the kernels' 4-row groups), claimed by whichever thread is free.
    hr_pool_for(threads < 1 ? 1 : threads, n, 64, mv_range, &j);
}

// ---- batched: b rows of x against each weight row, read once ----------------------------------------

void hr_matvec_reference(int type, const void *w, size_t n, size_t k, const float *x, size_t b, float *y) {
    float *row = malloc(k * sizeof(float));
    const size_t rb = hr_row_bytes(type, k);
    for (size_t r = 0; r < n; r++) {
        dequantize_row(type, (const uint8_t *)w + r * rb, k, row);
        for (size_t s = 0; s < b; s++) {
            double acc = 0;
            for (size_t i = 0; i < k; i++) acc += (double)row[i] * x[s * k + i];
            y[s * n + r] = (float)acc;
        }
    }
    free(row);
}

// Activations of up to 64 sequences for the integer batch kernel: each sequence's blocks quantized to
// q8_0 as for one sequence, with the block's corrections for unsigned weights (-8·sum for q4_0, -128·sum
// for q8_0). Group g (4 values) of block blk of sequence s is the 32-bit word [blk][g][s], so that the
// words one block needs lie together and each sits at a fixed offset from the block's base.
typedef struct {
    int8_t *q;      // [block][group 8][sequence][4]
    float *d;       // [block][sequence]
    int32_t *c4;    // [block][sequence], -8·sum
    int32_t *c8;    // [block][sequence], -128·sum
    size_t cap;
} xb_t;

static _Thread_local xb_t xb_tls;
static _Thread_local float *fw_tls;
static _Thread_local size_t fw_cap;

static void quantize_x_batch(const float *x, size_t b, size_t k, xb_t *o) {
    const size_t nb = k / QK;
    if (o->cap < b * k) {
        free(o->q); free(o->d); free(o->c4); free(o->c8);
        o->q = aligned_alloc(64, (b * k + 63) / 64 * 64);
        o->d = aligned_alloc(64, (b * nb * 4 + 63) / 64 * 64);
        o->c4 = aligned_alloc(64, (b * nb * 4 + 63) / 64 * 64);
        o->c8 = aligned_alloc(64, (b * nb * 4 + 63) / 64 * 64);
        o->cap = b * k;
    }
    for (size_t s = 0; s < b; s++) {
        for (size_t blk = 0; blk < nb; blk++) {
            int8_t q[32];
            int32_t gs[8];
            o->d[blk * b + s] = quant_block(x + s * k + blk * QK, q, gs);
            int sum = 0;
            for (int g = 0; g < 8; g++) { memcpy(o->q + ((blk * 8 + g) * b + s) * 4, q + 4 * g, 4); sum += gs[g]; }
            o->c4[blk * b + s] = -8 * sum;
            o->c8[blk * b + s] = -128 * sum;
        }
    }
}

// Activations of up to 64 sequences for the formats batched through their decode kernels: each sequence's
// own Q8_0 or Q8_K form, quantized as for one sequence.
typedef struct {
    xq_t q8_0[64];
    hr_q8k_block *q8k;   // [sequence][k/256]
    size_t q8k_cap;
} xs_t;

static _Thread_local xs_t xs_tls;

static void quantize_x_seqs(const float *x, size_t b, size_t k, int need, xs_t *o) {
    const size_t nbk = k / HR_QK_K;
    if ((need & (1 << HR_ACT_Q8_K)) && o->q8k_cap < b * nbk) {
        free(o->q8k);
        o->q8k = aligned_alloc(64, b * nbk * sizeof(hr_q8k_block));
        o->q8k_cap = b * nbk;
    }
    for (size_t s = 0; s < b; s++) {
        if (need & (1 << HR_ACT_Q8_0)) quantize_x(x + s * k, k, &o->q8_0[s]);
        if (need & (1 << HR_ACT_Q8_K)) memcpy(o->q8k + s * nbk, hr_q8k_quantize(x + s * k, k), nbk * sizeof(hr_q8k_block));
    }
}

typedef struct { int type; const uint8_t *w; size_t n, k, rb; const float *x; size_t b; const xb_t *xb; float *y; const xs_t *xs; } bmv_job;

// Integer kernel: sixteen weight rows sit in the lanes of a register, so each VNNI instruction multiplies
// 4 weights of 16 rows by 4 activations of one sequence broadcast from memory (a load, not an ALU
// operation). Per block, the 16 rows' 16-byte payloads are loaded and transposed once (4×4 32-bit words
// per 128-bit lane), split into nibbles (q4_0) or made unsigned (q8_0), and then serve up to 16 sequences;
// the 16 scales come in with one gather. After the transpose lane p holds row 4·(p mod 4) + p/4.
#define ROW_OF_LANE(p) (4 * ((p) % 4) + (p) / 4)
typedef int32_t __attribute__((may_alias)) i32a;   // 4 int8 activations read as one word

// The 16 bytes at `off` of the 16 rows' block, transposed: t[g] lane p = bytes 4g..4g+3 of row ROW_OF_LANE(p).
AVX512 static inline void load_transposed(const uint8_t *const rows[16], size_t off, __m512i t[4]) {
    __m512i v[4];
    for (int j = 0; j < 4; j++) {
        __m512i r = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(rows[4 * j] + off)));
        r = _mm512_inserti32x4(r, _mm_loadu_si128((const __m128i *)(rows[4 * j + 1] + off)), 1);
        r = _mm512_inserti32x4(r, _mm_loadu_si128((const __m128i *)(rows[4 * j + 2] + off)), 2);
        v[j] = _mm512_inserti32x4(r, _mm_loadu_si128((const __m128i *)(rows[4 * j + 3] + off)), 3);
    }
    const __m512i u0 = _mm512_unpacklo_epi32(v[0], v[1]), u1 = _mm512_unpackhi_epi32(v[0], v[1]);
    const __m512i u2 = _mm512_unpacklo_epi32(v[2], v[3]), u3 = _mm512_unpackhi_epi32(v[2], v[3]);
    t[0] = _mm512_unpacklo_epi64(u0, u2); t[1] = _mm512_unpackhi_epi64(u0, u2);
    t[2] = _mm512_unpacklo_epi64(u1, u3); t[3] = _mm512_unpackhi_epi64(u1, u3);
}

// Sixteen rows read side by side are more streams than the hardware prefetcher follows from memory: ask
// for each row's line PREFETCH_AHEAD bytes on (past a row's end, the same offset in the next 16 rows).
#define PREFETCH_AHEAD 256
AVX512 static inline void prefetch_rows(const uint8_t *const rows[16], size_t off, size_t rb) {
    const size_t at = off + PREFETCH_AHEAD < rb ? off + PREFETCH_AHEAD : 15 * rb + off + PREFETCH_AHEAD;
    for (int i = 0; i < 16; i++) _mm_prefetch((const char *)rows[i] + at, _MM_HINT_T0);
}

#define INT_BATCH(NB) \
AVX512 static void batch_int_##NB(const bmv_job *j, const uint8_t *const rows[16], const __m512i sidx, size_t s0, \
                                  float out[NB][16]) { \
    const int q4 = j->type == HR_TYPE_Q4_0; \
    const size_t bb = q4 ? Q4_BYTES : Q8_BYTES, nb = j->k / QK, b = j->b; \
    __m512 f[NB]; \
    for (int s = 0; s < NB; s++) f[s] = _mm512_setzero_ps(); \
    const __m512i m4 = _mm512_set1_epi8(0x0F), flip = _mm512_set1_epi8((char)0x80); \
    for (size_t blk = 0; blk < nb; blk++) { \
        __m512i w[8], t[4]; \
        if (s0 == 0 && blk % 4 == 0) prefetch_rows(rows, blk * bb, j->rb); \
        load_transposed(rows, blk * bb + 2, t); \
        if (q4) { \
            for (int g = 0; g < 4; g++) { \
                w[g] = _mm512_and_si512(t[g], m4); \
                w[g + 4] = _mm512_and_si512(_mm512_srli_epi16(t[g], 4), m4); \
            } \
        } else { \
            for (int g = 0; g < 4; g++) w[g] = _mm512_xor_si512(t[g], flip); \
            load_transposed(rows, blk * bb + 18, t); \
            for (int g = 0; g < 4; g++) w[g + 4] = _mm512_xor_si512(t[g], flip); \
        } \
        const __m512i sh = _mm512_i32gather_epi32(sidx, (const void *)(rows[0] + blk * bb), 1); \
        const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(sh)); \
        const int32_t *xc = (q4 ? j->xb->c4 : j->xb->c8) + blk * b + s0; \
        const float *xd = j->xb->d + blk * b + s0; \
        __m512i a[NB]; \
        for (int s = 0; s < NB; s++) a[s] = _mm512_set1_epi32(xc[s]); \
        /* group by group, so that the NB sequences' dependency chains interleave */ \
        for (int g = 0; g < 8; g++) { \
            const i32a *xg = (const i32a *)(j->xb->q + ((blk * 8 + g) * b + s0) * 4); \
            for (int s = 0; s < NB; s++) a[s] = _mm512_dpbusd_epi32(a[s], w[g], _mm512_set1_epi32(xg[s])); \
        } \
        for (int s = 0; s < NB; s++) \
            f[s] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[s]), _mm512_mul_ps(dw, _mm512_set1_ps(xd[s])), f[s]); \
    } \
    for (int s = 0; s < NB; s++) _mm512_storeu_ps(out[s], f[s]); \
}
INT_BATCH(16)
INT_BATCH(8)
INT_BATCH(4)
INT_BATCH(2)
INT_BATCH(1)

AVX512 static void batch_rows_int(const bmv_job *j, size_t r0, size_t r1) {
    const size_t rb = hr_row_bytes(j->type, j->k);
    float out[16][16];
    for (size_t r = r0; r < r1; r += 16) {
        const size_t nr = r1 - r < 16 ? r1 - r : 16;
        const uint8_t *rows[16];
        int32_t idx[16];
        for (size_t i = 0; i < 16; i++) rows[i] = j->w + (r + (i < nr ? i : nr - 1)) * rb;
        for (int p = 0; p < 16; p++) idx[p] = (int32_t)(rows[ROW_OF_LANE(p)] - rows[0]);
        const __m512i sidx = _mm512_loadu_si512(idx);
        for (size_t s = 0; s < j->b;) {
            const size_t left = j->b - s;
            const int m = left >= 16 ? 16 : left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
            switch (m) {
            case 16: batch_int_16(j, rows, sidx, s, out); break;
            case 8: batch_int_8(j, rows, sidx, s, out); break;
            case 4: batch_int_4(j, rows, sidx, s, out); break;
            case 2: batch_int_2(j, rows, sidx, s, out); break;
            default: batch_int_1(j, rows, sidx, s, out); break;
            }
            for (int i = 0; i < m; i++)
                for (int p = 0; p < 16; p++) {
                    const size_t row = ROW_OF_LANE(p);
                    if (row < nr) j->y[(s + i) * j->n + r + row] = out[i][p];
                }
            s += m;
        }
    }
}

// The integer kernel on AVX2 (no VNNI, 16 registers of 8 lanes): eight weight rows sit in the 32-bit lanes of a
// register, so each maddubs multiplies 4 weights of the 8 rows by 4 activations of one sequence broadcast from
// memory. Per block, the 8 rows' 16-byte payloads are loaded (rows 0-3 in the low 128-bit halves, 4-7 in the
// high) and transposed once (4×4 32-bit words per half; lane p then holds row p), split into nibbles (q4_0) or
// into magnitudes and signs (q8_0), and serve the pass's sequences four at a time (16 accumulators of the
// pass's sequences would not fit beside the 8 weight registers; the compiler keeps what is left on the stack).
// - q4_0: nibbles 0..15 (unsigned) times int8 activations (-127..127): a pair of products is at most
//   2·15·127 = 3810, so a block's 8 groups add up in int16 (at most 30480) before one madd to int32, and
//   c4 = -8·sum makes the weights signed.
// - q8_0: |w| times x carrying w's sign (sign_epi8, as rows_avx2; |-128| reads as the unsigned 128, so every
//   byte is exact): a pair is at most 2·128·127 = 32512, so each group goes to int32 on its own.
// A block's sum is the exact integer the AVX-512 kernel gets, and every (row, sequence) accumulates
// fma(float(sum), dw·dx, f) block by block the same way whatever its lane or its pass's width: a sequence's
// result does not depend on the batch around it (and, by the same construction, equals the AVX-512 kernel's:
// the same float operations in the same order; untested, as this was written on a CPU without AVX-512).

// The 16 bytes at `off` of the 8 rows' block, transposed: t[g] lane p = bytes 4g..4g+3 of row p.
AVX2 static inline void load_transposed8(const uint8_t *const rows[8], size_t off, __m256i t[4]) {
    __m256i v[4];
    for (int j = 0; j < 4; j++)
        v[j] = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(rows[j + 4] + off)), _mm_loadu_si128((const __m128i *)(rows[j] + off)));
    const __m256i u0 = _mm256_unpacklo_epi32(v[0], v[1]), u1 = _mm256_unpackhi_epi32(v[0], v[1]);
    const __m256i u2 = _mm256_unpacklo_epi32(v[2], v[3]), u3 = _mm256_unpackhi_epi32(v[2], v[3]);
    t[0] = _mm256_unpacklo_epi64(u0, u2); t[1] = _mm256_unpackhi_epi64(u0, u2);
    t[2] = _mm256_unpacklo_epi64(u1, u3); t[3] = _mm256_unpackhi_epi64(u1, u3);
}

// As prefetch_rows, for 8 rows (past a row's end, the same offset in the next 8 rows).
static inline void prefetch_rows8(const uint8_t *const rows[8], size_t off, size_t rb) {
    const size_t at = off + PREFETCH_AHEAD < rb ? off + PREFETCH_AHEAD : 7 * rb + off + PREFETCH_AHEAD;
    for (int i = 0; i < 8; i++) _mm_prefetch((const char *)rows[i] + at, _MM_HINT_T0);
}

// One pass of NB sequences from s0 over the 8 rows' blocks; NB and q4 are constants where it is inlined.
AVX2 static inline __attribute__((always_inline)) void int_pass_avx2(const bmv_job *j, const uint8_t *const rows[8], size_t s0,
                                                                     const int NB, const int q4, float out[][8]) {
    const size_t bb = q4 ? Q4_BYTES : Q8_BYTES, nb = j->k / QK, b = j->b;
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 f[16];
    for (int s = 0; s < NB; s++) f[s] = _mm256_setzero_ps();
    for (size_t blk = 0; blk < nb; blk++) {
        const size_t off = blk * bb;
        // About once per 64-byte line of the rows, on the first pass (the later passes find them in cache).
        if (s0 == 0 && off % 64 < bb) prefetch_rows8(rows, off, j->rb);
        __m256i w[8], wa[8], t[4];   // q4_0: w the nibbles; q8_0: w the signed bytes, wa their magnitudes
        load_transposed8(rows, off + 2, t);
        if (q4) {
            for (int g = 0; g < 4; g++) {
                w[g] = _mm256_and_si256(t[g], m4);
                w[g + 4] = _mm256_and_si256(_mm256_srli_epi16(t[g], 4), m4);
            }
        } else {
            for (int g = 0; g < 4; g++) w[g] = t[g];
            load_transposed8(rows, off + 18, t);
            for (int g = 0; g < 4; g++) w[g + 4] = t[g];
            for (int g = 0; g < 8; g++) wa[g] = _mm256_abs_epi8(w[g]);
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16(
            (short)load_u16(rows[0] + off), (short)load_u16(rows[1] + off), (short)load_u16(rows[2] + off), (short)load_u16(rows[3] + off),
            (short)load_u16(rows[4] + off), (short)load_u16(rows[5] + off), (short)load_u16(rows[6] + off), (short)load_u16(rows[7] + off)));
        const int8_t *xq = j->xb->q + (blk * 8 * b + s0) * 4;   // group g of sequence s0 + s: word g·b + s
        const int32_t *xc = j->xb->c4 + blk * b + s0;
        const float *xd = j->xb->d + blk * b + s0;
#define XG(g, s) _mm256_set1_epi32(*(const i32a *)(xq + ((size_t)(g) * b + (size_t)(s)) * 4))
        for (int s4 = 0; s4 < NB; s4 += 4) {
            const int m = NB - s4 < 4 ? NB - s4 : 4;
            __m256i a[4];
            for (int s = 0; s < m; s++) a[s] = _mm256_setzero_si256();
            if (q4) {
                // group by group, so that the m sequences' dependency chains interleave
                for (int g = 0; g < 8; g++)
                    for (int s = 0; s < m; s++) a[s] = _mm256_add_epi16(a[s], _mm256_maddubs_epi16(w[g], XG(g, s4 + s)));
                for (int s = 0; s < m; s++) a[s] = _mm256_add_epi32(_mm256_madd_epi16(a[s], ones), _mm256_set1_epi32(xc[s4 + s]));
            } else {
                for (int g = 0; g < 8; g++)
                    for (int s = 0; s < m; s++)
                        a[s] = _mm256_add_epi32(a[s], _mm256_madd_epi16(_mm256_maddubs_epi16(wa[g], _mm256_sign_epi8(XG(g, s4 + s), w[g])), ones));
            }
            for (int s = 0; s < m; s++)
                f[s4 + s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[s]), _mm256_mul_ps(dw, _mm256_set1_ps(xd[s4 + s])), f[s4 + s]);
        }
#undef XG
    }
    for (int s = 0; s < NB; s++) _mm256_storeu_ps(out[s], f[s]);
}

#define INT_BATCH_AVX2(NB) \
AVX2 static void batch_int_avx2_##NB(const bmv_job *j, const uint8_t *const rows[8], size_t s0, float out[][8]) { \
    if (j->type == HR_TYPE_Q4_0) int_pass_avx2(j, rows, s0, NB, 1, out); \
    else int_pass_avx2(j, rows, s0, NB, 0, out); \
}
INT_BATCH_AVX2(16)
INT_BATCH_AVX2(8)
INT_BATCH_AVX2(4)
INT_BATCH_AVX2(2)
INT_BATCH_AVX2(1)

AVX2 static void batch_rows_int_avx2(const bmv_job *j, size_t r0, size_t r1) {
    float out[16][8];
    for (size_t r = r0; r < r1; r += 8) {
        // Rows past the end repeat the last one (read, computed, not written).
        const size_t nr = r1 - r < 8 ? r1 - r : 8;
        const uint8_t *rows[8];
        for (size_t i = 0; i < 8; i++) rows[i] = j->w + (r + (i < nr ? i : nr - 1)) * j->rb;
        for (size_t s = 0; s < j->b;) {
            const size_t left = j->b - s;
            const int m = left >= 16 ? 16 : left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
            switch (m) {
            case 16: batch_int_avx2_16(j, rows, s, out); break;
            case 8: batch_int_avx2_8(j, rows, s, out); break;
            case 4: batch_int_avx2_4(j, rows, s, out); break;
            case 2: batch_int_avx2_2(j, rows, s, out); break;
            default: batch_int_avx2_1(j, rows, s, out); break;
            }
            for (int i = 0; i < m; i++)
                for (size_t row = 0; row < nr; row++) j->y[(s + i) * j->n + r + row] = out[i][row];
            s += m;
        }
    }
}

// Float kernel (f32, f16, bf16; k a multiple of 16): one weight row against up to 16 sequences per pass, row kept in cache between passes.
#define FLOAT_BATCH(NB) \
AVX512 static void batch_float_##NB(int type, const uint8_t *p, size_t k, const float *x, size_t n, size_t r, float *y) { \
    __m512 acc[NB]; \
    for (int s = 0; s < NB; s++) acc[s] = _mm512_setzero_ps(); \
    for (size_t i = 0; i < k; i += 16) { \
        const __m512 wv = type == HR_TYPE_F32 ? _mm512_loadu_ps((const float *)p + i) \
                        : type == HR_TYPE_F16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 2 * i))) \
                        : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p + 2 * i))), 16)); \
        for (int s = 0; s < NB; s++) acc[s] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + s * k + i), acc[s]); \
    } \
    for (int s = 0; s < NB; s++) y[s * n + r] = _mm512_reduce_add_ps(acc[s]); \
}
FLOAT_BATCH(16)
FLOAT_BATCH(8)
FLOAT_BATCH(4)
FLOAT_BATCH(2)
FLOAT_BATCH(1)

AVX512 static void batch_rows_float(const bmv_job *j, size_t r0, size_t r1) {
    const size_t rb = hr_row_bytes(j->type, j->k);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = j->w + r * rb;
        size_t s = 0;
        while (s < j->b) {
            const size_t left = j->b - s;
            const float *xs = j->x + s * j->k;
            float *ys = j->y + s * j->n;
            if (left >= 16) { batch_float_16(j->type, p, j->k, xs, j->n, r, ys); s += 16; }
            else if (left >= 8) { batch_float_8(j->type, p, j->k, xs, j->n, r, ys); s += 8; }
            else if (left >= 4) { batch_float_4(j->type, p, j->k, xs, j->n, r, ys); s += 4; }
            else if (left >= 2) { batch_float_2(j->type, p, j->k, xs, j->n, r, ys); s += 2; }
            else { batch_float_1(j->type, p, j->k, xs, j->n, r, ys); s += 1; }
        }
    }
}

// The same on AVX2 (k a multiple of 8): one weight row, converted 8 columns at a time, against up to 8
// sequences per pass (8 accumulators, the weights and a load of x: 10 of the 16 registers).
#define FLOAT_BATCH_AVX2(NB) \
AVX2 static void batch_float_avx2_##NB(int type, const uint8_t *p, size_t k, const float *x, size_t n, size_t r, float *y) { \
    __m256 acc[NB]; \
    for (int s = 0; s < NB; s++) acc[s] = _mm256_setzero_ps(); \
    for (size_t i = 0; i < k; i += 8) { \
        const __m256 wv = type == HR_TYPE_F32 ? _mm256_loadu_ps((const float *)p + i) \
                        : type == HR_TYPE_F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))) \
                        : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 2 * i))), 16)); \
        for (int s = 0; s < NB; s++) acc[s] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + s * k + i), acc[s]); \
    } \
    for (int s = 0; s < NB; s++) y[s * n + r] = hr_hsum256(acc[s]); \
}
FLOAT_BATCH_AVX2(8)
FLOAT_BATCH_AVX2(4)
FLOAT_BATCH_AVX2(2)
FLOAT_BATCH_AVX2(1)

AVX2 static void batch_rows_float_avx2(const bmv_job *j, size_t r0, size_t r1) {
    const size_t rb = hr_row_bytes(j->type, j->k);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = j->w + r * rb;
        size_t s = 0;
        while (s < j->b) {
            const size_t left = j->b - s;
            const float *xs = j->x + s * j->k;
            float *ys = j->y + s * j->n;
            if (left >= 8) { batch_float_avx2_8(j->type, p, j->k, xs, j->n, r, ys); s += 8; }
            else if (left >= 4) { batch_float_avx2_4(j->type, p, j->k, xs, j->n, r, ys); s += 4; }
            else if (left >= 2) { batch_float_avx2_2(j->type, p, j->k, xs, j->n, r, ys); s += 2; }
            else { batch_float_avx2_1(j->type, p, j->k, xs, j->n, r, ys); s += 1; }
        }
    }
}

// The float formats on neither path (scalar, or a width not a multiple of 8 / 16): dequantize the row once into a
// per-thread buffer, then dot it with every sequence.
static void batch_rows_generic(const bmv_job *j, size_t r0, size_t r1) {
    if (fw_cap < j->k) { free(fw_tls); fw_tls = malloc(j->k * sizeof(float)); fw_cap = j->k; }
    const size_t rb = hr_row_bytes(j->type, j->k);
    for (size_t r = r0; r < r1; r++) {
        dequantize_row(j->type, j->w + r * rb, j->k, fw_tls);
        for (size_t s = 0; s < j->b; s++) {
            const float *xs = j->x + s * j->k;
            float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (size_t i = 0; i < j->k; i += 4) {
                a0 += fw_tls[i] * xs[i]; a1 += fw_tls[i + 1] * xs[i + 1];
                a2 += fw_tls[i + 2] * xs[i + 2]; a3 += fw_tls[i + 3] * xs[i + 3];
            }
            j->y[s * j->n + r] = (a0 + a1) + (a2 + a3);
        }
    }
}

// Formats with quantized activations and no batch kernel of their own: the chunk's rows (32, tens of KiB: they stay
// in L2) through the format's decode kernel once per sequence, so every weight block comes from memory once, each
// sequence's activations stay in L1 for its pass, and each sequence's result is the single-sequence one. (Groups of
// four rows per sequence in turn measured up to 2x slower at batch 16: sixteen sequences' activations, allocated
// alike, evicted each other from L1.)
static void batch_rows_dot(const bmv_job *j, size_t r0, size_t r1) {
    const hr_format *f = hr_format_of(j->type);
    const size_t nbk = j->k / HR_QK_K;
    const int lvl = level();
    for (size_t s = 0; s < j->b; s++) {
        const void *xa = f->act == HR_ACT_Q8_0 ? (const void *)&j->xs->q8_0[s] : (const void *)(j->xs->q8k + s * nbk);
        hr_format_rows(f, lvl, j->w, j->rb, j->k, j->x + s * j->k, xa, r0, r1, j->y + s * j->n);
    }
}

// q4_0 and q8_0 on the integer batch kernels (AVX-512 with VNNI, or AVX2), activations quantized by quantize_x_batch.
static int integer_path(int type) { return level() >= 1 && (type == HR_TYPE_Q4_0 || type == HR_TYPE_Q8_0); }
// The float kernels' level for this type and width: 2 AVX-512 (k in 16s), 1 AVX2 (k in 8s), 0 none (the generic loop).
static int float_path(int type, size_t k) {
    if (type != HR_TYPE_F32 && type != HR_TYPE_F16 && type != HR_TYPE_BF16) return 0;
    const int l = level();
    return l >= 2 && k % 16 == 0 ? 2 : l >= 1 && k % 8 == 0 ? 1 : 0;
}
// The formats whose batched decode runs their single-sequence kernels (activations quantized per sequence).
static int dot_path(int type) {
    const hr_format *f = hr_format_of(type);
    return !integer_path(type) && f->act != HR_ACT_F32 && f->dot[0] != NULL;
}

static void bmv_range(void *p, size_t r0, size_t r1) {
    bmv_job *j = p;
    if (integer_path(j->type)) {
        if (level() >= 2) batch_rows_int(j, r0, r1);
        else batch_rows_int_avx2(j, r0, r1);
    }
    else if (dot_path(j->type)) batch_rows_dot(j, r0, r1);
    else switch (float_path(j->type, j->k)) {
        case 2: batch_rows_float(j, r0, r1); break;
        case 1: batch_rows_float_avx2(j, r0, r1); break;
        default: batch_rows_generic(j, r0, r1); break;
    }
}

void hr_matvec_batch(int type, const void *w, size_t n, size_t k, const float *x, size_t b, float *y, int threads) {
    hr_matvec_batch_multi(1, &type, &w, &n, k, x, b, &y, threads);
}

// Several matrices that read the same x, as one job over their stacked rows (each part starting on a
// multiple of the 32-row chunk): x quantized once, one pool dispatch.
typedef struct { int count; bmv_job parts[4]; size_t start[5]; } bmv_multi;

static void bmv_multi_range(void *p, size_t lo, size_t hi) {
    bmv_multi *m = p;
    for (int i = 0; i < m->count; i++) {
        size_t a = lo > m->start[i] ? lo : m->start[i], b = hi < m->start[i + 1] ? hi : m->start[i + 1];
        if (b > m->start[i] + m->parts[i].n) b = m->start[i] + m->parts[i].n;
        if (a < b) bmv_range(&m->parts[i], a - m->start[i], b - m->start[i]);
    }
}

void hr_matvec_batch_multi(int count, const int *types, const void *const *ws, const size_t *ns, size_t k, const float *x,
                           size_t b, float *const *ys, int threads) {
    if (b == 0 || count < 1) return;
    if (count > 4 || b > 64) {   // more matrices one at a time; larger batches in slices of 64
        for (int i = 0; i < count; i++) {
            if (b <= 64) { hr_matvec_batch_multi(1, types + i, ws + i, ns + i, k, x, b, ys + i, threads); continue; }
            for (size_t s = 0; s < b; s += 64) {
                const size_t m = b - s < 64 ? b - s : 64;
                float *tmp = malloc(m * ns[i] * sizeof(float));
                hr_matvec_batch_multi(1, types + i, ws + i, ns + i, k, x + s * k, m, &tmp, threads);
                memcpy(ys[i] + s * ns[i], tmp, m * ns[i] * sizeof(float));
                free(tmp);
            }
        }
        return;
    }
    xb_t *xb = &xb_tls;
    int quantize = 0, need = 0;
    for (int i = 0; i < count; i++) {
        quantize |= integer_path(types[i]);
        if (dot_path(types[i])) need |= 1 << hr_format_of(types[i])->act;
    }
    if (quantize) quantize_x_batch(x, b, k, xb);
    if (need) quantize_x_seqs(x, b, k, need, &xs_tls);
    bmv_multi m = { .count = count };
    m.start[0] = 0;
    for (int i = 0; i < count; i++) {
        m.parts[i] = (bmv_job){ types[i], ws[i], ns[i], k, hr_row_bytes(types[i], k), x, b, xb, ys[i], &xs_tls };
        m.start[i + 1] = m.start[i] + (ns[i] + 31) / 32 * 32;
    }
    hr_pool_for(threads < 1 ? 1 : threads, m.start[count], 32, bmv_multi_range, &m);
}
