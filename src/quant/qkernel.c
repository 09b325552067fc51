/* The portable kernels (the definition the SIMD copies must match) and the
 * choice of the copy in use. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "quant/qkernel.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

float uq_qk_load(uq_dtype t, const void *src, size_t i)
{
    const unsigned char *p = src;
    uint16_t h;
    uint32_t u;
    float f;
    switch (t) {
    case UQ_BF16:
        memcpy(&h, p + 2 * i, 2);
        u = (uint32_t)h << 16;
        memcpy(&f, &u, 4);
        return f;
    case UQ_F16:
        memcpy(&h, p + 2 * i, 2);
        return uq_f16_to_f32(h);
    default:
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
}

/* MLX's recipe (FORMATS.md section 1); the edge rule makes the extreme of
 * larger magnitude exact, so the scale may be negative. */
uq_affine_param uq_affine_fit_extremes(float wmin, float wmax, float n_bins)
{
    uq_affine_param p = {0.0f, 0.0f, 0};
    int mask = fabsf(wmin) > fabsf(wmax);
    float scale = (wmax - wmin) / n_bins;
    if (scale < UQ_AFFINE_EPS) scale = UQ_AFFINE_EPS; /* as std::max: NaN stays NaN */
    if (!mask) scale = -scale;
    float edge = mask ? wmin : wmax;
    float q0 = rintf(edge / scale);
    float bias = 0.0f;
    if (isinf(q0)) {
        /* Only a constant group of magnitude above ~3e31 gets here (edge / eps
         * overflows). MLX would go on to a zero scale and NaN codes; keeping the
         * eps scale with bias = edge reconstructs the group exactly. */
        bias = edge;
    } else if (q0 != 0.0f) {
        scale = edge / q0;
        bias = edge;
    }
    p.scale = scale;
    p.bias = bias;
    return p;
}

/* The comparisons of std::min / std::max from +-Inf: NaNs are skipped. */
static int scalar_minmax(uq_dtype t, const void *src, size_t g, size_t ng, float *mn, float *mx)
{
    int nan = 0;
    for (size_t j = 0; j < ng; j++) {
        float lo = INFINITY, hi = -INFINITY;
        for (size_t i = j * g; i < (j + 1) * g; i++) {
            float v = uq_qk_load(t, src, i);
            if (hi < v) hi = v;
            if (v < lo) lo = v;
            nan |= v != v;
        }
        mn[j] = lo;
        mx[j] = hi;
    }
    return nan;
}

static int scalar_absmax(uq_dtype t, const void *src, size_t g, size_t ng, float *amax)
{
    int nan = 0;
    for (size_t j = 0; j < ng; j++) {
        float m = 0.0f;
        for (size_t i = j * g; i < (j + 1) * g; i++) {
            float a = fabsf(uq_qk_load(t, src, i));
            if (a > m) m = a;
            nan |= a != a;
        }
        amax[j] = m;
    }
    return nan;
}

static int scalar_affine_fit(const float *mn, const float *mx, size_t ng, float n_bins,
                             float *scale, float *bias)
{
    int other = 0;
    for (size_t j = 0; j < ng; j++) {
        if (!isfinite(mn[j]) || !isfinite(mx[j]) || isinf(mx[j] - mn[j])) {
            other = 1;
            continue;
        }
        uq_affine_param p = uq_affine_fit_extremes(mn[j], mx[j], n_bins);
        scale[j] = p.scale;
        bias[j] = p.bias;
    }
    return other;
}

static void scalar_affine_codes(uq_dtype t, const void *src, size_t g, size_t ng,
                                const float *scale, const float *bias, float n_bins,
                                uint8_t *codes)
{
    for (size_t j = 0; j < ng; j++) {
        for (size_t i = j * g; i < (j + 1) * g; i++) {
            float q = rintf((uq_qk_load(t, src, i) - bias[j]) / scale[j]);
            codes[i] = !(q > 0.0f) ? 0 : q >= n_bins ? (uint8_t)n_bins : (uint8_t)q;
        }
    }
}

static void scalar_sym_codes(uq_dtype t, const void *src, size_t g, size_t ng,
                             const float *scale, int offset, uint8_t *codes)
{
    const float hi = (float)(offset - 1), lo = (float)-offset;
    for (size_t j = 0; j < ng; j++) {
        if (scale[j] == 0.0f) {
            memset(codes + j * g, offset, g);
            continue;
        }
        for (size_t i = j * g; i < (j + 1) * g; i++) {
            float q = rintf(uq_qk_load(t, src, i) / scale[j]);
            int v = q != q ? 0 : q >= hi ? offset - 1 : q <= lo ? -offset : (int)q;
            codes[i] = (uint8_t)(v + offset);
        }
    }
}

static void scalar_affine_deq(const uint8_t *codes, size_t n, float s, float b, float *out)
{
    for (size_t i = 0; i < n; i++) {
        float prod = (float)codes[i] * s;
        out[i] = prod + b;
    }
}

static void scalar_sym_deq(const uint8_t *codes, size_t n, int offset, float s, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = (float)((int)codes[i] - offset) * s;
}

const uq_qkernels uq_qk_scalar = {
    .minmax = scalar_minmax,
    .absmax = scalar_absmax,
    .affine_fit = scalar_affine_fit,
    .affine_codes = scalar_affine_codes,
    .sym_codes = scalar_sym_codes,
    .pack = uq_pack_blocks_swar,
    .unpack = uq_unpack_blocks_swar,
    .affine_deq = scalar_affine_deq,
    .sym_deq = scalar_sym_deq,
};

/* ----------------------------------------------------------- dispatch */

static int best_level(void)
{
#ifdef UQ_QK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return UQ_SIMD_AVX2;
    return UQ_SIMD_SSE2;
#else
    return UQ_SIMD_SCALAR;
#endif
}

static atomic_int level_in_use = -1;

int uq_quant_simd(void)
{
    int l = atomic_load_explicit(&level_in_use, memory_order_relaxed);
    if (l < 0) {
        l = best_level();
        atomic_store_explicit(&level_in_use, l, memory_order_relaxed);
    }
    return l;
}

int uq_quant_set_simd(int level)
{
    int best = best_level();
    if (level < 0 || level > best) level = best;
    atomic_store_explicit(&level_in_use, level, memory_order_relaxed);
    return level;
}

const char *uq_quant_simd_name(int level)
{
    switch (level) {
    case UQ_SIMD_SCALAR: return "scalar";
    case UQ_SIMD_SSE2: return "sse2";
    case UQ_SIMD_AVX2: return "avx2";
    default: return "?";
    }
}

const uq_qkernels *uq_qk(void)
{
    switch (uq_quant_simd()) {
#ifdef UQ_QK_X86
    case UQ_SIMD_AVX2: return &uq_qk_avx2;
    case UQ_SIMD_SSE2: return &uq_qk_sse2;
#endif
    default: return &uq_qk_scalar;
    }
}
