/* dtype table and the f16 / bf16 <-> f32 conversions (round to nearest even). */
#include "core/error.h"

#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[UQ_DTYPE_COUNT] = {
    [UQ_F64] = {"F64", 8},   [UQ_F32] = {"F32", 4},   [UQ_F16] = {"F16", 2},
    [UQ_BF16] = {"BF16", 2}, [UQ_I64] = {"I64", 8},   [UQ_I32] = {"I32", 4},
    [UQ_I16] = {"I16", 2},   [UQ_I8] = {"I8", 1},     [UQ_U64] = {"U64", 8},
    [UQ_U32] = {"U32", 4},   [UQ_U16] = {"U16", 2},   [UQ_U8] = {"U8", 1},
    [UQ_BOOL] = {"BOOL", 1}, [UQ_F8_E4M3] = {"F8_E4M3", 1}, [UQ_F8_E5M2] = {"F8_E5M2", 1},
};

const char *uq_dtype_name(uq_dtype t)
{
    return (unsigned)t < UQ_DTYPE_COUNT ? dtype_info[t].name : "?";
}

size_t uq_dtype_size(uq_dtype t)
{
    return (unsigned)t < UQ_DTYPE_COUNT ? dtype_info[t].size : 0;
}

int uq_dtype_is_float(uq_dtype t) { return t == UQ_F32 || t == UQ_F16 || t == UQ_BF16; }

uq_status uq_dtype_parse(const char *name, uq_dtype *out)
{
    for (int i = 0; i < UQ_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_info[i].name) == 0) {
            *out = (uq_dtype)i;
            return UQ_OK;
        }
    }
    return uq_fail(UQ_ERR_DTYPE, "unknown dtype \"%.40s\"", name);
}

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float uq_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t uq_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float uq_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13)); /* Inf / NaN */
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* subnormal: man * 2^-24, exact in f32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t uq_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65536: Inf */
    if (a < 0x38800000u) {
        /* result is subnormal or zero: value / 2^-24 rounded to nearest even */
        if (a < 0x33000000u) return sign; /* below half the smallest subnormal */
        uint32_t exp = a >> 23;
        uint32_t man = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - exp; /* 14..24 */
        uint32_t q = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    /* normal: rebias exponent, round mantissa to 10 bits (carry may bump exp) */
    uint32_t r = a - 0x38000000u; /* exponent rebias 127 -> 15 */
    r += 0xfffu + ((r >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13));
}

uq_status uq_to_f32(uq_dtype t, const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    switch (t) {
    case UQ_F32:
        memcpy(dst, src, n * 4);
        return UQ_OK;
    case UQ_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = uq_bf16_to_f32(h);
        }
        return UQ_OK;
    case UQ_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = uq_f16_to_f32(h);
        }
        return UQ_OK;
    default:
        return uq_fail(UQ_ERR_DTYPE, "no arithmetic for dtype %s", uq_dtype_name(t));
    }
}

uq_status uq_from_f32(uq_dtype t, const float *src, void *dst, size_t n)
{
    unsigned char *p = dst;
    switch (t) {
    case UQ_F32:
        memcpy(dst, src, n * 4);
        return UQ_OK;
    case UQ_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = uq_f32_to_bf16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return UQ_OK;
    case UQ_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = uq_f32_to_f16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return UQ_OK;
    default:
        return uq_fail(UQ_ERR_DTYPE, "no arithmetic for dtype %s", uq_dtype_name(t));
    }
}
