/* aarch64 Advanced SIMD kernels of the "cpu" backend (baseline ARMv8-A: no
 * dot-product extension needed).
 *
 * Quantized weights: a chunk of 16 codes occupies 2 * bits bytes. tbl gives
 * each 64-bit lane the bits bytes of its 8 codes; three shift / transpose /
 * mask steps split each lane into halves (32-bit lanes), quarters (16-bit
 * lanes) and single codes (bytes); 4- and 8-bit rows take shorter paths.
 * smull + addp + saddlp multiply the codes with the int8 activations exactly
 * (codes below 128 as signed bytes; 8-bit codes offset by -128 and corrected
 * with the activation sums), lane l holding codes 4l..4l+3. Tiles of up to
 * 4 rows x 4 inputs. */
#include "backend/cpu/cpu_kernels.h"

#ifdef UQ_CPU_ARM

#include <arm_neon.h>
#include <math.h>
#include <string.h>

static inline float32x4_t load4(const void *p, uq_dtype dt)
{
    if (dt == UQ_F32) return vreinterpretq_f32_u8(vld1q_u8(p));
    uint16x4_t h = vreinterpret_u16_u8(vld1_u8(p));
    if (dt == UQ_F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

static float load1(const void *p, uq_dtype dt)
{
    uint16_t h;
    if (dt == UQ_F32) {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    memcpy(&h, p, 2);
    return dt == UQ_F16 ? uq_f16_to_f32(h) : uq_bf16_to_f32(h);
}

static void convert_scales(const uq_cpu_qweight *w, int64_t r0, int64_t nr, int64_t gp, float *sc, float *be)
{
    const int64_t G = w->groups;
    const size_t el = uq_dtype_size(w->sdt);
    const float neg_off = -(float)(1 << (w->bits - 1));
    for (int64_t i = 0; i < nr; i++) {
        const size_t base = (size_t)(r0 + i) * (size_t)G;
        const char *s = (const char *)w->scales + base * el,
                   *b = w->biases ? (const char *)w->biases + base * el : NULL;
        float *so = sc + i * gp, *bo = be + i * gp;
        int64_t g = 0;
        for (; g + 4 <= G; g += 4) {
            float32x4_t v = load4(s + (size_t)g * el, w->sdt);
            vst1q_f32(so + g, v);
            vst1q_f32(bo + g, b ? load4(b + (size_t)g * el, w->sdt) : vmulq_n_f32(v, neg_off));
        }
        for (; g < G; g++) {
            so[g] = load1(s + (size_t)g * el, w->sdt);
            bo[g] = b ? load1(b + (size_t)g * el, w->sdt) : so[g] * neg_off;
        }
    }
}

typedef struct qctx {
    const uint8_t *packed;
    size_t row_bytes;
    int bits;
    int64_t cols, G, gp, group;
    const int8_t *xq;
    const float *xs, *gsum;
    const float *sc, *be;
    uint8x16_t tbl;
    int64x2_t sh4;
    int32x4_t sh2;
    int16x8_t sh1;
    uint32x4_t m4;
    uint16x8_t m2;
    uint8x16_t m1;
} qctx;

/* Codes [16k, 16k + 16) of the row at p. */
static inline uint8x16_t unpack16(const qctx *c, const uint8_t *p, int64_t k)
{
    const int b = c->bits;
    const uint8_t *q = p + k * 2 * b;
    if (b == 8) return vld1q_u8(q);
    if (b == 4) {
        uint8x8_t v = vld1_u8(q);
        uint8x8_t lo = vand_u8(v, vdup_n_u8(0x0f)), hi = vshr_n_u8(v, 4);
        return vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi));
    }
    uint8x16_t v;
    if ((size_t)(k * 2 * b + 16) <= c->row_bytes) {
        v = vld1q_u8(q);
    } else {
        uint8_t buf[16] = {0};
        memcpy(buf, q, (size_t)(2 * b));
        v = vld1q_u8(buf);
    }
    uint64x2_t l = vreinterpretq_u64_u8(vqtbl1q_u8(v, c->tbl));
    uint32x4_t d = vandq_u32(vtrn1q_u32(vreinterpretq_u32_u64(l), vreinterpretq_u32_u64(vshlq_u64(l, c->sh4))), c->m4);
    uint16x8_t h = vandq_u16(vtrn1q_u16(vreinterpretq_u16_u32(d), vreinterpretq_u16_u32(vshlq_u32(d, c->sh2))), c->m2);
    return vandq_u8(vtrn1q_u8(vreinterpretq_u8_u16(h), vreinterpretq_u8_u16(vshlq_u16(h, c->sh1))), c->m1);
}

/* Sum of codes * activations per 32-bit lane (4 products each). */
static inline int32x4_t dot16(uint8x16_t codes, int8x16_t x, int eight)
{
    int8x16_t w = eight ? vreinterpretq_s8_u8(veorq_u8(codes, vdupq_n_u8(0x80))) : vreinterpretq_s8_u8(codes);
    int16x8_t p = vpaddq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(x)), vmull_high_s8(w, x));
    int32x4_t d = vpaddlq_s16(p);
    if (eight) d = vaddq_s32(d, vshlq_n_s32(vpaddlq_s16(vpaddlq_s8(x)), 7));
    return d;
}

static inline __attribute__((always_inline)) void qtile(const qctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy,
                                                        const int R, const int T)
{
    const int64_t cols = c->cols, nk = cols / 16, xcols = cols / 4;
    const int eight = c->bits == 8;
    float32x4_t acc[4][4];
    const uint8_t *wp[4];
    const float *sc[4];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        wp[r] = c->packed + (size_t)(i0 + r) * c->row_bytes;
        sc[r] = c->sc + (i0 + r) * c->gp;
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = vdupq_n_f32(0);
    }
    for (int64_t k = 0; k < nk; k++) {
        const int64_t g = k * 16 / c->group;
        uint8x16_t wv[4];
        float S[4];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            wv[r] = unpack16(c, wp[r], k);
            S[r] = sc[r][g];
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            int8x16_t xv = vld1q_s8(c->xq + (t0 + t) * cols + k * 16);
            float32x4_t X = vld1q_f32(c->xs + (t0 + t) * xcols + k * 4);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
                acc[r][t] = vfmaq_f32(acc[r][t], vcvtq_f32_s32(dot16(wv[r], xv, eight)), vmulq_n_f32(X, S[r]));
        }
    }
    const int64_t G = c->G, G4 = G & ~(int64_t)3;
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        const float *gs = c->gsum + (t0 + t) * G;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const float *be = c->be + (i0 + r) * c->gp;
            float32x4_t a = acc[r][t];
            for (int64_t g = 0; g < G4; g += 4) a = vfmaq_f32(a, vld1q_f32(be + g), vld1q_f32(gs + g));
            float s = vaddvq_f32(a);
            for (int64_t g = G4; g < G; g++) s += be[g] * gs[g];
            y[(t0 + t) * ldy + i0 + r] = s;
        }
    }
}

#define QT(R, T)                                                                                                       \
    case (R)*8 + (T):                                                                                                  \
        qtile(c, i0, t0, y, ldy, R, T);                                                                                \
        break
#define QT_R(R)                                                                                                        \
    QT(R, 1);                                                                                                          \
    QT(R, 2);                                                                                                          \
    QT(R, 3);                                                                                                          \
    QT(R, 4)

static void qtile_any(const qctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, int R, int T)
{
    switch (R * 8 + T) {
        QT_R(1);
        QT_R(2);
        QT_R(3);
        QT_R(4);
    default:
        break;
    }
}

static void qgemm_neon(const uq_cpu_qweight *w, int64_t r0, int64_t nr, const uq_cpu_qact *x, int64_t nt, float *y,
                       int64_t ldy, float *scratch)
{
    const int b = w->bits;
    qctx c = {
        .packed = w->packed + (size_t)r0 * w->row_bytes,
        .row_bytes = w->row_bytes,
        .bits = b,
        .cols = w->cols,
        .G = w->groups,
        .gp = (w->groups + 15) & ~(int64_t)15,
        .group = w->group,
        .xq = x->q,
        .xs = x->xs,
        .gsum = x->gsum,
    };
    float *sc = scratch, *be = scratch + nr * c.gp;
    convert_scales(w, r0, nr, c.gp, sc, be);
    c.sc = sc;
    c.be = be;
    if (b != 4 && b != 8) {
        uint8_t tbl[16];
        for (int i = 0; i < 16; i++) tbl[i] = i % 8 < b ? (uint8_t)((i / 8) * b + i % 8) : 0xff;
        c.tbl = vld1q_u8(tbl);
        c.sh4 = vdupq_n_s64(-4 * b);
        c.sh2 = vdupq_n_s32(-2 * b);
        c.sh1 = vdupq_n_s16((int16_t)-b);
        c.m4 = vdupq_n_u32((1u << (4 * b)) - 1);
        c.m2 = vdupq_n_u16((uint16_t)((1u << (2 * b)) - 1));
        c.m1 = vdupq_n_u8((uint8_t)((1u << b) - 1));
    }
    for (int64_t t0 = 0; t0 < nt; t0 += 4)
        for (int64_t i0 = 0; i0 < nr; i0 += 4)
            qtile_any(&c, i0, t0, y, ldy, nr - i0 < 4 ? (int)(nr - i0) : 4, nt - t0 < 4 ? (int)(nt - t0) : 4);
}

static void quantize_row_neon(const float *x, int64_t cols, int64_t group, int block, int8_t *q, float *xs, float *xsb,
                              float *gsum)
{
    (void)block; /* 32: block64 is not set for these kernels */
    const int64_t per_group = group / UQ_CPU_QBLOCK;
    float gs = 0;
    for (int64_t blk = 0; blk < cols / UQ_CPU_QBLOCK; blk++) {
        const float *p = x + blk * 32;
        float32x4_t v[8];
        for (int i = 0; i < 8; i++) v[i] = vld1q_f32(p + 4 * i);
        float32x4_t m = vabsq_f32(v[0]), s = v[0];
        for (int i = 1; i < 8; i++) {
            m = vmaxq_f32(m, vabsq_f32(v[i]));
            s = vaddq_f32(s, v[i]);
        }
        float amax = vmaxvq_f32(m), sum = vaddvq_f32(s);
        float scale = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
        int32_t isum = 0;
        int8x16_t q0 = vdupq_n_s8(0), q1 = vdupq_n_s8(0);
        if (!isfinite(sum) || !isfinite(amax)) {
            scale = NAN;
        } else {
            int32x4_t iv[8], is = vdupq_n_s32(0);
            for (int i = 0; i < 8; i++) {
                iv[i] = vcvtnq_s32_f32(vmulq_n_f32(v[i], inv));
                is = vaddq_s32(is, iv[i]);
            }
            isum = vaddvq_s32(is);
            int16x8_t h0 = vcombine_s16(vqmovn_s32(iv[0]), vqmovn_s32(iv[1]));
            int16x8_t h1 = vcombine_s16(vqmovn_s32(iv[2]), vqmovn_s32(iv[3]));
            int16x8_t h2 = vcombine_s16(vqmovn_s32(iv[4]), vqmovn_s32(iv[5]));
            int16x8_t h3 = vcombine_s16(vqmovn_s32(iv[6]), vqmovn_s32(iv[7]));
            q0 = vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1));
            q1 = vcombine_s8(vqmovn_s16(h2), vqmovn_s16(h3));
        }
        vst1q_s8(q + blk * 32, q0);
        vst1q_s8(q + blk * 32 + 16, q1);
        for (int j = 0; j < 8; j++) xs[blk * 8 + j] = scale;
        xsb[blk] = scale;
        gs += scale * (float)isum;
        if ((blk + 1) % per_group == 0) {
            gsum[blk / per_group] = gs;
            gs = 0;
        }
    }
}

/* ------------------------------------------------------ float weights */

typedef uq_cpu_fctx fctx;

static inline __attribute__((always_inline)) void ftile(const fctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy,
                                                        const int R, const int T, const uq_dtype dt)
{
    const int64_t cols = c->cols, c4 = cols & ~(int64_t)3, el = dt == UQ_F32 ? 4 : 2;
    float32x4_t acc[4][4];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = vdupq_n_f32(0);
    }
    for (int64_t j = 0; j < c4; j += 4) {
        float32x4_t W[4];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) W[r] = load4(c->w + (size_t)(i0 + r) * c->row_bytes + (size_t)(j * el), dt);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            float32x4_t X = vld1q_f32(c->x + (t0 + t) * cols + j);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = vfmaq_f32(acc[r][t], W[r], X);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            float s = vaddvq_f32(acc[r][t]);
            const char *wr = c->w + (size_t)(i0 + r) * c->row_bytes;
            for (int64_t j = c4; j < cols; j++) s += load1(wr + (size_t)(j * el), dt) * c->x[(t0 + t) * cols + j];
            y[(t0 + t) * ldy + i0 + r] = s;
        }
    }
}

#define FT(R, T)                                                                                                       \
    case (R)*8 + (T):                                                                                                  \
        ftile(c, i0, t0, y, ldy, R, T, DT);                                                                            \
        break
#define FT_R(R)                                                                                                        \
    FT(R, 1);                                                                                                          \
    FT(R, 2);                                                                                                          \
    FT(R, 3);                                                                                                          \
    FT(R, 4)
#define FTILE_FN(name, dtv)                                                                                            \
    static void name(const fctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, int R, int T)                       \
    {                                                                                                                  \
        const uq_dtype DT = dtv;                                                                                       \
        switch (R * 8 + T) {                                                                                           \
            FT_R(1);                                                                                                   \
            FT_R(2);                                                                                                   \
            FT_R(3);                                                                                                   \
            FT_R(4);                                                                                                   \
        default:                                                                                                       \
            break;                                                                                                     \
        }                                                                                                              \
    }
FTILE_FN(ftile_f32, UQ_F32)
FTILE_FN(ftile_f16, UQ_F16)
FTILE_FN(ftile_bf16, UQ_BF16)

static void fgemm_neon(const void *w, uq_dtype dt, int64_t cols, int64_t nr, const float *x, int64_t nt, float *y,
                       int64_t ldy, float *scratch)
{
    static const uq_cpu_ftile tiles[3] = {ftile_f32, ftile_f16, ftile_bf16};
    (void)scratch;
    uq_cpu_fgemm_tiled(w, dt, cols, nr, x, nt, y, ldy, tiles, 4, 4);
}

const uq_cpu_kernels uq_cpu_kernels_neon = {
    .name = "NEON",
    .level = UQ_CPU_NEON,
    .quantize_row = quantize_row_neon,
    .qgemm = qgemm_neon,
    .fgemm = fgemm_neon,
    .block64 = 0,
};

#endif
