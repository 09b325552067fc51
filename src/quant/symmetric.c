/* Symmetric absmax quantization in the style of optimum-quanto's int types
 * (FORMATS.md section 2): scale = absmax / qmax, q = clamp(rint(w / scale),
 * -qmax-1, qmax), no bias. As with the affine scheme, q is computed with the
 * fp32 scale and only the stored copy is rounded to its dtype. The signed q
 * is stored in the packed bitstream as the unsigned code q + 2^(bits-1). */
#include "quant/qkernel.h"

#include <float.h>
#include <math.h>
#include <string.h>

float uq_sym_fit(const float *w, size_t g, int bits)
{
    float amax; /* NaNs fail the comparison and are skipped */
    uq_qk()->absmax(UQ_F32, w, g, 1, &amax);
    return amax / (float)uq_sym_qmax(bits);
}

void uq_sym_codes(const float *w, size_t g, int bits, float scale, uint8_t *codes)
{
    /* a zero scale (all-zero group, or absmax / qmax underflowing) gives the
     * code of zero throughout */
    uq_qk()->sym_codes(UQ_F32, w, g, 1, &scale, uq_sym_qmax(bits) + 1, codes);
}

static size_t first_nonfinite(uq_dtype t, const void *src, size_t n)
{
    size_t i = 0;
    while (i < n && isfinite(uq_qk_load(t, src, i))) i++;
    return i;
}

/* As in affine.c: extremes, scales, codes and packing, BATCH groups at a time. */
#define BATCH 64

int64_t uq_sym_row(const uq_qkernels *k, uq_dtype t, const void *src, size_t n, int bits,
                   size_t g, uq_dtype sdt, uint8_t *codes, void *packed, void *scales,
                   int allow_nonfinite)
{
    const unsigned char *s = src;
    const size_t es = uq_dtype_size(t), ng = n / g;
    const int offset = uq_sym_qmax(bits) + 1;
    const float qmax = (float)uq_sym_qmax(bits);
    const int pack_groups = g % 8 == 0;
    float sc[BATCH];
    for (size_t g0 = 0; g0 < ng; g0 += BATCH) {
        const size_t nb = ng - g0 < BATCH ? ng - g0 : BATCH, k0 = g0 * g;
        const unsigned char *sb = s + k0 * es;
        int nan = k->absmax(t, sb, g, nb, sc);
        for (size_t j = 0; j < nb; j++) {
            if (!allow_nonfinite && (nan || isinf(sc[j]))) {
                size_t c = first_nonfinite(t, sb + j * g * es, g);
                if (c < g) return (int64_t)(k0 + j * g + c);
            }
            sc[j] = sc[j] / qmax;
        }
        k->sym_codes(t, sb, g, nb, sc, offset, codes + k0);
        uq_qstore_n(sdt, scales, g0, sc, nb);
        if (pack_groups) uq_pack_span(k, codes + k0, k0, nb * g, bits, packed);
    }
    if (!pack_groups) uq_pack_span(k, codes, 0, n, bits, packed);
    uq_pack_pad(n, bits, packed);
    return -1;
}

void uq_sym_quantize_row(const float *w, size_t n, int bits, size_t g, uq_dtype sdt,
                         uint8_t *codes, void *packed, void *scales)
{
    uq_sym_row(uq_qk(), UQ_F32, w, n, bits, g, sdt, codes, packed, scales, 1);
}

#define DEQ_SPAN 256

void uq_sym_dequantize_row(const void *packed, size_t n, int bits, size_t g, uq_dtype sdt,
                           const void *scales, float *out)
{
    const uq_qkernels *kern = uq_qk();
    const int offset = uq_sym_qmax(bits) + 1;
    uint8_t buf[DEQ_SPAN];
    for (size_t gi = 0; gi * g < n; gi++) {
        float s = uq_qload(sdt, scales, gi);
        if (fabs((double)s) * offset <= 0x1p126) {
            /* (code - offset) * s cannot overflow (false for NaN or Inf too) */
            for (size_t k0 = gi * g; k0 < (gi + 1) * g; k0 += DEQ_SPAN) {
                size_t m = (gi + 1) * g - k0 < DEQ_SPAN ? (gi + 1) * g - k0 : DEQ_SPAN;
                uq_unpack_span(kern, packed, k0, m, bits, buf);
                kern->sym_deq(buf, m, offset, s, out + k0);
            }
            continue;
        }
        for (size_t k = gi * g; k < (gi + 1) * g; k++) {
            float v = (float)((int)uq_unpack_at(packed, k, bits) - offset) * s;
            /* a group reaching +-FLT_MAX can overshoot it by a rounding */
            if (isinf(v) && isfinite(s)) v = copysignf(FLT_MAX, v);
            out[k] = v;
        }
    }
}
