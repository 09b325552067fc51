/* Storing and loading scale / bias elements in F32, F16 or BF16. */
#include "quant/qkernel.h"

#include <math.h>
#include <string.h>

static void put16(void *dst, size_t i, uint16_t h) { memcpy((unsigned char *)dst + 2 * i, &h, 2); }

static uint16_t get16(const void *src, size_t i)
{
    uint16_t h;
    memcpy(&h, (const unsigned char *)src + 2 * i, 2);
    return h;
}

/* The 16-bit encodings of the largest finite magnitudes. */
#define F16_MAX_BITS 0x7bffu
#define BF16_MAX_BITS 0x7f7fu

float uq_qstore(uq_dtype t, void *dst, size_t i, float v)
{
    uint16_t h;
    switch (t) {
    case UQ_BF16:
        h = uq_f32_to_bf16(v);
        /* Rounding a finite value can give Inf (e.g. FLT_MAX); saturate. */
        if (isfinite(v) && (h & 0x7fffu) == 0x7f80u) h = (uint16_t)((h & 0x8000u) | BF16_MAX_BITS);
        put16(dst, i, h);
        return uq_bf16_to_f32(h);
    case UQ_F16:
        h = uq_f32_to_f16(v);
        if (isfinite(v) && (h & 0x7fffu) == 0x7c00u) h = (uint16_t)((h & 0x8000u) | F16_MAX_BITS);
        put16(dst, i, h);
        return uq_f16_to_f32(h);
    default: /* UQ_F32 (callers validate the dtype) */
        memcpy((unsigned char *)dst + 4 * i, &v, 4);
        return v;
    }
}

float uq_qload(uq_dtype t, const void *src, size_t i)
{
    float v;
    switch (t) {
    case UQ_BF16:
        return uq_bf16_to_f32(get16(src, i));
    case UQ_F16:
        return uq_f16_to_f32(get16(src, i));
    default:
        memcpy(&v, (const unsigned char *)src + 4 * i, 4);
        return v;
    }
}

/* uq_f32_to_bf16 with the saturation of uq_qstore, inline for the batch. */
static inline uint16_t bf16_saturating(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    uint16_t h = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    if ((u & 0x7f800000u) != 0x7f800000u && (h & 0x7fffu) == 0x7f80u)
        h = (uint16_t)((h & 0x8000u) | BF16_MAX_BITS);
    return h;
}

void uq_qstore_n(uq_dtype t, void *dst, size_t i0, const float *v, size_t n)
{
    switch (t) {
    case UQ_BF16:
        for (size_t i = 0; i < n; i++) put16(dst, i0 + i, bf16_saturating(v[i]));
        return;
    case UQ_F16:
        for (size_t i = 0; i < n; i++) uq_qstore(UQ_F16, dst, i0 + i, v[i]);
        return;
    default:
        memcpy((unsigned char *)dst + 4 * i0, v, 4 * n);
        return;
    }
}
