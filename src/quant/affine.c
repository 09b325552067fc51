/* MLX affine quantization (FORMATS.md section 1), bit for bit: fp32
 * arithmetic, eps 1e-7, the edge rule that makes one extreme exact (the
 * scale may be negative), rint with ties to even; codes come from the fp32
 * scale and bias, and only the stored copies are rounded to their dtype.
 *
 * Every operation must round on its own: no FMA contraction, no
 * reassociation (no -ffast-math). Clang honours the standard pragma; GCC
 * ignores it (and warns), never contracts in ISO C mode (-std=c11, as the
 * build sets), and is told so explicitly in GNU mode. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "quant/qkernel.h"

#include <float.h>
#include <math.h>

static float n_bins_of(int bits) { return (float)((1 << bits) - 1); }

/* The fit from the group's extremes (NaNs skipped). */
static uq_affine_param fit_from(float wmin, float wmax, float n_bins)
{
    if (isfinite(wmin) && isfinite(wmax) && isinf(wmax - wmin)) {
        /* The range overflows fp32: fit the halved group (halving the extremes
         * is exact) and double the result, which is what fp32 would give
         * without the overflow. The codes are computed on halved values too. */
        uq_affine_param p = uq_affine_fit_extremes(0.5f * wmin, 0.5f * wmax, n_bins);
        float s = 2.0f * p.scale;
        p.scale = isinf(s) ? copysignf(FLT_MAX, s) : s; /* 1 bit only */
        p.bias = 2.0f * p.bias;
        p.wide = 1;
        return p;
    }
    return uq_affine_fit_extremes(wmin, wmax, n_bins);
}

uq_affine_param uq_affine_fit(const float *w, size_t g, int bits)
{
    /* Same comparisons as std::min / std::max from +-Inf: NaNs are skipped. */
    float wmin, wmax;
    uq_qk()->minmax(UQ_F32, w, g, 1, &wmin, &wmax);
    return fit_from(wmin, wmax, n_bins_of(bits));
}

/* clamp(t, 0, n_bins) as a code; NaN (only from non-finite input) gives 0
 * rather than reaching a float-to-int conversion. */
static inline uint8_t to_code(float t, float n_bins)
{
    if (!(t > 0.0f)) return 0;
    if (t >= n_bins) return (uint8_t)n_bins;
    return (uint8_t)t;
}

/* The codes of a wide group, from halved values. */
static void wide_codes(uq_dtype t, const void *src, size_t g, uq_affine_param p, float n_bins,
                       uint8_t *codes)
{
    float hb = 0.5f * p.bias, hs = 0.5f * p.scale;
    for (size_t i = 0; i < g; i++) {
        float d = 0.5f * uq_qk_load(t, src, i) - hb;
        codes[i] = to_code(rintf(d / hs), n_bins);
    }
}

void uq_affine_codes(const float *w, size_t g, int bits, uq_affine_param p, uint8_t *codes)
{
    float n_bins = n_bins_of(bits);
    if (p.wide)
        wide_codes(UQ_F32, w, g, p, n_bins, codes);
    else
        uq_qk()->affine_codes(UQ_F32, w, g, 1, &p.scale, &p.bias, n_bins, codes);
}

static size_t first_nonfinite(uq_dtype t, const void *src, size_t n)
{
    size_t i = 0;
    while (i < n && isfinite(uq_qk_load(t, src, i))) i++;
    return i;
}

/* Groups are quantized BATCH at a time: their extremes, then their fits (the
 * divisions of different groups overlap), then their codes, reading the
 * source again while it is still in cache, then the packing. */
#define BATCH 64

int64_t uq_affine_row(const uq_qkernels *k, uq_dtype t, const void *src, size_t n, int bits,
                      size_t g, uq_dtype sdt, uint8_t *codes, void *packed, void *scales,
                      void *biases, int allow_nonfinite)
{
    const unsigned char *s = src;
    const size_t es = uq_dtype_size(t), ng = n / g;
    const float n_bins = n_bins_of(bits);
    const int pack_groups = g % 8 == 0; /* each group then starts on a byte */
    float mn[BATCH], mx[BATCH], sc[BATCH], bi[BATCH];
    for (size_t g0 = 0; g0 < ng; g0 += BATCH) {
        const size_t nb = ng - g0 < BATCH ? ng - g0 : BATCH, k0 = g0 * g;
        const unsigned char *sb = s + k0 * es;
        int nan = k->minmax(t, sb, g, nb, mn, mx);
        if (k->affine_fit(mn, mx, nb, n_bins, sc, bi) || nan) {
            /* NaN or Inf in the batch, or a range beyond fp32 */
            int wide = 0;
            for (size_t j = 0; j < nb; j++) {
                const unsigned char *sg = sb + j * g * es;
                if (!allow_nonfinite) {
                    size_t c = first_nonfinite(t, sg, g);
                    if (c < g) return (int64_t)(k0 + j * g + c);
                }
                uq_affine_param p = fit_from(mn[j], mx[j], n_bins);
                sc[j] = p.scale;
                bi[j] = p.bias;
                wide |= p.wide;
            }
            k->affine_codes(t, sb, g, nb, sc, bi, n_bins, codes + k0);
            for (size_t j = 0; wide && j < nb; j++) {
                uq_affine_param p = fit_from(mn[j], mx[j], n_bins);
                if (p.wide) wide_codes(t, sb + j * g * es, g, p, n_bins, codes + k0 + j * g);
            }
        } else {
            k->affine_codes(t, sb, g, nb, sc, bi, n_bins, codes + k0);
        }
        uq_qstore_n(sdt, scales, g0, sc, nb);
        uq_qstore_n(sdt, biases, g0, bi, nb);
        if (pack_groups) uq_pack_span(k, codes + k0, k0, nb * g, bits, packed);
    }
    if (!pack_groups) uq_pack_span(k, codes, 0, n, bits, packed);
    uq_pack_pad(n, bits, packed);
    return -1;
}

void uq_affine_quantize_row(const float *w, size_t n, int bits, size_t g, uq_dtype sdt,
                            uint8_t *codes, void *packed, void *scales, void *biases)
{
    uq_affine_row(uq_qk(), UQ_F32, w, n, bits, g, sdt, codes, packed, scales, biases, 1);
}

/* Codes are unpacked into a small buffer a span at a time. */
#define DEQ_SPAN 256

void uq_affine_dequantize_row(const void *packed, size_t n, int bits, size_t g, uq_dtype sdt,
                              const void *scales, const void *biases, float *out)
{
    const uq_qkernels *kern = uq_qk();
    const double n_bins = (double)n_bins_of(bits);
    uint8_t buf[DEQ_SPAN];
    for (size_t gi = 0; gi * g < n; gi++) {
        float s = uq_qload(sdt, scales, gi);
        float b = uq_qload(sdt, biases, gi);
        if (fabs((double)s) * n_bins + fabs((double)b) <= 0x1p126) {
            /* q * s + b cannot overflow (false for NaN or Inf too) */
            for (size_t k0 = gi * g; k0 < (gi + 1) * g; k0 += DEQ_SPAN) {
                size_t m = (gi + 1) * g - k0 < DEQ_SPAN ? (gi + 1) * g - k0 : DEQ_SPAN;
                uq_unpack_span(kern, packed, k0, m, bits, buf);
                kern->affine_deq(buf, m, s, b, out + k0);
            }
            continue;
        }
        for (size_t k = gi * g; k < (gi + 1) * g; k++) {
            float q = (float)uq_unpack_at(packed, k, bits);
            float prod = q * s;
            float v = prod + b;
            if (isinf(v) && isfinite(s) && isfinite(b)) {
                /* Only for groups reaching +-FLT_MAX: q * s overflowed where
                 * q * s + b need not, or the result is within rounding of
                 * FLT_MAX. Form the sum in double and saturate. */
                double x = (double)q * s + b;
                v = fabs(x) > FLT_MAX ? copysignf(FLT_MAX, (float)x) : (float)x;
            }
            out[k] = v;
        }
    }
}
