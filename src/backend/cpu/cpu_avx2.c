/* AVX2 + FMA (+ F16C) kernels of the "cpu" backend, compiled per function so
 * the rest of the library runs on any x86-64.
 *
 * Quantized weights: a chunk of 32 codes occupies 4 * bits bytes. vpshufb
 * gives each 64-bit lane the bits bytes of its 8 codes; three shift / blend /
 * mask steps then split each lane into halves (32-bit lanes), quarters
 * (16-bit lanes) and single codes (bytes). 4- and 8-bit rows take shorter
 * paths. vpmaddubsw + vpmaddwd multiply the unsigned codes with the int8
 * activations (exactly: codes below 128 cannot saturate the 16-bit pair
 * sums; 8-bit codes are split into nibbles), lane l holding codes
 * 4l..4l+3. Tiles of up to 2 rows x 4 inputs. 4-bit decoding (one input,
 * groups of 64 or multiples) splits each 32-byte load into its even and odd
 * codes against an input deinterleaved to match (ntile4), 4 rows a tile. */
#include "backend/cpu/cpu_kernels.h"

#ifdef UQ_CPU_X86

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define T256 __attribute__((target("avx2,fma,f16c")))
#define INLINE256 static inline __attribute__((always_inline)) T256

INLINE256 float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 elements of dtype dt at p (any alignment) as f32. */
INLINE256 __m256 load8(const void *p, uq_dtype dt)
{
    if (dt == UQ_F32) return _mm256_loadu_ps(p);
    __m128i h = _mm_loadu_si128(p);
    if (dt == UQ_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
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

/* Scales and effective biases of rows [r0, r0 + nr), each row padded to gp. */
T256 static void convert_scales(const uq_cpu_qweight *w, int64_t r0, int64_t nr, int64_t gp, float *sc, float *be)
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
        for (; g + 8 <= G; g += 8) {
            __m256 v = load8(s + (size_t)g * el, w->sdt);
            _mm256_storeu_ps(so + g, v);
            _mm256_storeu_ps(bo + g, b ? load8(b + (size_t)g * el, w->sdt) : _mm256_mul_ps(v, _mm256_set1_ps(neg_off)));
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
    __m256i shuf;            /* bytes of each 64-bit lane's 8 codes */
    __m128i sh4, sh2, sh1;   /* left shifts: 32 - 4b, 16 - 2b, 8 - b */
    __m256i m4, m2, m1, m1h; /* masks of 4, 2, 1 codes; m1h = m1 << 8 */
} qctx;

/* Codes [32k, 32k + 32) of the row at p (natural order, one per byte). */
INLINE256 __m256i unpack32(const qctx *c, const uint8_t *p, int64_t k)
{
    const int b = c->bits;
    const uint8_t *q = p + k * 4 * b;
    if (b == 8) return _mm256_loadu_si256((const __m256i *)(const void *)q);
    if (b == 4) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x0f));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0f));
        return _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
    }
    /* lane 0 of the register takes bytes [0, 2b), lane 1 bytes [2b, 4b);
     * near the row's end (16-byte loads would pass it) through a copy */
    __m128i l0, l1;
    if ((size_t)(k * 4 * b + 2 * b + 16) <= c->row_bytes) {
        l0 = _mm_loadu_si128((const __m128i *)(const void *)q);
        l1 = _mm_loadu_si128((const __m128i *)(const void *)(q + 2 * b));
    } else {
        uint8_t buf[48] = {0};
        memcpy(buf, q, (size_t)(4 * b));
        l0 = _mm_loadu_si128((const __m128i *)(const void *)buf);
        l1 = _mm_loadu_si128((const __m128i *)(const void *)(buf + 2 * b));
    }
    __m256i v = _mm256_shuffle_epi8(_mm256_set_m128i(l1, l0), c->shuf);
    __m256i d = _mm256_and_si256(_mm256_blend_epi32(v, _mm256_sll_epi64(v, c->sh4), 0xaa), c->m4);
    __m256i h = _mm256_and_si256(_mm256_blend_epi16(d, _mm256_sll_epi32(d, c->sh2), 0xaa), c->m2);
    return _mm256_or_si256(_mm256_and_si256(h, c->m1), _mm256_and_si256(_mm256_sll_epi16(h, c->sh1), c->m1h));
}

/* Sum of codes * activations per 32-bit lane (4 products each). */
INLINE256 __m256i dot32(__m256i codes, __m256i x, int eight)
{
    const __m256i ones = _mm256_set1_epi16(1);
    if (!eight) return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, x), ones);
    const __m256i nib = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(codes, nib), hi = _mm256_and_si256(_mm256_srli_epi16(codes, 4), nib);
    return _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, x), ones),
                            _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x), _mm256_set1_epi16(16)));
}

INLINE256 void qtile(const qctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, const int R, const int T)
{
    const int64_t cols = c->cols, nk = cols / 32, xcols = cols / 4;
    const int eight = c->bits == 8;
    __m256 acc[2][4];
    const uint8_t *wp[2];
    const float *sc[2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        wp[r] = c->packed + (size_t)(i0 + r) * c->row_bytes;
        sc[r] = c->sc + (i0 + r) * c->gp;
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < nk; k++) {
        const int64_t g = k * 32 / c->group;
        __m256i wv[2];
        __m256 S[2];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            wv[r] = unpack32(c, wp[r], k);
            S[r] = _mm256_broadcast_ss(sc[r] + g);
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(c->xq + (t0 + t) * cols + k * 32));
            __m256 X = _mm256_loadu_ps(c->xs + (t0 + t) * xcols + k * 8);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
                acc[r][t] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot32(wv[r], xv, eight)), _mm256_mul_ps(X, S[r]), acc[r][t]);
        }
    }
    /* + bias . group sums (the group count's tail one at a time) */
    const int64_t G = c->G, G8 = G & ~(int64_t)7;
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        const float *gs = c->gsum + (t0 + t) * G;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const float *be = c->be + (i0 + r) * c->gp;
            __m256 a = acc[r][t];
            for (int64_t g = 0; g < G8; g += 8)
                a = _mm256_fmadd_ps(_mm256_loadu_ps(be + g), _mm256_loadu_ps(gs + g), a);
            float s = hsum256(a);
            for (int64_t g = G8; g < G; g++) s += be[g] * gs[g];
            y[(t0 + t) * ldy + i0 + r] = s;
        }
    }
}

#define QT(R, T)                                                                                                       \
    case (R)*8 + (T):                                                                                                  \
        qtile(c, i0, t0, y, ldy, R, T);                                                                                \
        break

T256 static void qtile_any(const qctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, int R, int T)
{
    switch (R * 8 + T) {
        QT(1, 1);
        QT(1, 2);
        QT(1, 3);
        QT(1, 4);
        QT(2, 1);
        QT(2, 2);
        QT(2, 3);
        QT(2, 4);
    default:
        break;
    }
}

/* 4-bit codes, one input, groups that are multiples of 64: the 64 codes
 * of a chunk are one 32-byte load whose low and high nibbles are the even
 * and the odd codes; the input was deinterleaved the same way (xd), so two
 * vpmaddubsw and a 16-bit add (at most 4 x 15 x 127 per lane: no overflow)
 * hold codes 4i..4i+3 in lane i, and vpmaddwd gives codes 8j..8j+7 in
 * 32-bit lane j: lanes 0-3 the first 32-block of the chunk, 4-7 the second
 * (x2: their input scales). Tiles of up to 4 rows share each input load. */
INLINE256 void ntile4(const qctx *c, const int8_t *xd, const float *x2, int64_t i0, float *y, const int R)
{
    const int64_t nk = c->cols / 64, cpg = c->group / 64;
    const __m256i nib = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    const uint8_t *wp[4];
    const float *sc[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        wp[r] = c->packed + (size_t)(i0 + r) * c->row_bytes;
        sc[r] = c->sc + (i0 + r) * c->gp;
        acc[r] = _mm256_setzero_ps();
    }
    int64_t g = 0, kin = 0; /* the chunk's group, without divisions */
    for (int64_t k = 0; k < nk; k++) {
        const __m256i xe = _mm256_load_si256((const __m256i *)(const void *)(xd + k * 64));
        const __m256i xo = _mm256_load_si256((const __m256i *)(const void *)(xd + k * 64 + 32));
        const __m256 X = _mm256_load_ps(x2 + k * 8);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(wp[r] + k * 32));
            __m256i lo = _mm256_and_si256(v, nib), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
            __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xe), _mm256_maddubs_epi16(hi, xo));
            __m256 d = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
            acc[r] = _mm256_fmadd_ps(d, _mm256_mul_ps(X, _mm256_broadcast_ss(sc[r] + g)), acc[r]);
        }
        if (++kin == cpg) kin = 0, g++;
    }
    const int64_t G = c->G, G8 = G & ~(int64_t)7;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const float *be = c->be + (i0 + r) * c->gp;
        __m256 a = acc[r];
        for (int64_t gg = 0; gg < G8; gg += 8)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(be + gg), _mm256_loadu_ps(c->gsum + gg), a);
        float sum = hsum256(a);
        for (int64_t gg = G8; gg < G; gg++) sum += be[gg] * c->gsum[gg];
        y[i0 + r] = sum;
    }
}

T256 static void ntile4_any(const qctx *c, const int8_t *xd, const float *x2, int64_t i0, float *y, int R)
{
    switch (R) {
    case 1: ntile4(c, xd, x2, i0, y, 1); break;
    case 2: ntile4(c, xd, x2, i0, y, 2); break;
    case 3: ntile4(c, xd, x2, i0, y, 3); break;
    default: ntile4(c, xd, x2, i0, y, 4); break;
    }
}

/* The input's codes deinterleaved per 64 (even, then odd) for ntile4, and
 * each chunk's two 32-block scales as 4-lane halves. */
T256 static void prepare_ntile4(const int8_t *xq, const float *xs, int64_t cols, int8_t *xd, float *x2)
{
    const __m256i idx = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12,
                                         14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int64_t k = 0; k < cols / 64; k++) {
        /* per 128-bit lane: even bytes, then odd; then the quarters reordered */
        __m256i a = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(const void *)(xq + k * 64)), idx);
        __m256i b = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(const void *)(xq + k * 64 + 32)), idx);
        a = _mm256_permute4x64_epi64(a, 0xd8);
        b = _mm256_permute4x64_epi64(b, 0xd8);
        _mm256_store_si256((__m256i *)(void *)(xd + k * 64), _mm256_permute2x128_si256(a, b, 0x20));
        _mm256_store_si256((__m256i *)(void *)(xd + k * 64 + 32), _mm256_permute2x128_si256(a, b, 0x31));
        /* xs[j] scales codes 4j..4j+3: the chunk's blocks start at codes 64k and 64k + 32 */
        __m128 s0 = _mm_set1_ps(xs[k * 16]), s1 = _mm_set1_ps(xs[k * 16 + 8]);
        _mm256_store_ps(x2 + k * 8, _mm256_set_m128(s1, s0));
    }
}

T256 static void qgemm_avx2(const uq_cpu_qweight *w, int64_t r0, int64_t nr, const uq_cpu_qact *x, int64_t nt, float *y,
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
        uint8_t shuf[32];
        for (int i = 0; i < 32; i++) {
            int lane = (i % 16) / 8, j = i % 8; /* 64-bit lane within the 128-bit half, byte in it */
            shuf[i] = j < b ? (uint8_t)(lane * b + j) : 0x80;
        }
        c.shuf = _mm256_loadu_si256((const __m256i *)(const void *)shuf);
        c.sh4 = _mm_cvtsi32_si128(32 - 4 * b);
        c.sh2 = _mm_cvtsi32_si128(16 - 2 * b);
        c.sh1 = _mm_cvtsi32_si128(8 - b);
        c.m4 = _mm256_set1_epi32((int)((1u << (4 * b)) - 1));
        c.m2 = _mm256_set1_epi16((short)((1u << (2 * b)) - 1));
        c.m1 = _mm256_set1_epi16((short)((1u << b) - 1));
        c.m1h = _mm256_set1_epi16((short)(((1u << b) - 1) << 8));
    }
    if (b == 4 && nt == 1 && c.cols % 64 == 0 && c.group % 64 == 0) {
        /* 4-bit decode: the input deinterleaved once for the task's rows */
        float *x2 = be + nr * c.gp; /* 64-byte aligned: gp is a multiple of 16 */
        int8_t *xd = (int8_t *)(x2 + c.cols / 8);
        prepare_ntile4(x->q, x->xs, c.cols, xd, x2);
        for (int64_t i0 = 0; i0 < nr; i0 += 4) ntile4_any(&c, xd, x2, i0, y, nr - i0 < 4 ? (int)(nr - i0) : 4);
        return;
    }
    for (int64_t t0 = 0; t0 < nt; t0 += 4)
        for (int64_t i0 = 0; i0 < nr; i0 += 2)
            qtile_any(&c, i0, t0, y, ldy, nr - i0 < 2 ? (int)(nr - i0) : 2, nt - t0 < 4 ? (int)(nt - t0) : 4);
}

T256 static void quantize_row_avx2(const float *x, int64_t cols, int64_t group, int block, int8_t *q, float *xs,
                                   float *xsb, float *gsum)
{
    (void)block; /* 32: block64 is not set for these kernels */
    const int64_t per_group = group / UQ_CPU_QBLOCK;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    float gs = 0;
    for (int64_t blk = 0; blk < cols / UQ_CPU_QBLOCK; blk++) {
        const float *p = x + blk * 32;
        __m256 v0 = _mm256_loadu_ps(p), v1 = _mm256_loadu_ps(p + 8), v2 = _mm256_loadu_ps(p + 16),
               v3 = _mm256_loadu_ps(p + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                                 _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float sum = hsum256(_mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(v2, v3)));
        float scale = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
        int32_t isum = 0;
        __m256i b8 = _mm256_setzero_si256();
        if (!isfinite(sum) || !isfinite(amax)) {
            scale = NAN;
        } else {
            const __m256 vi = _mm256_set1_ps(inv);
            __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vi)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vi)),
                    i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vi)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vi));
            __m256i s4 = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)); /* |values| <= 508 */
            __m128i s2 = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
            s2 = _mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0x4e));
            s2 = _mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xb1));
            isum = _mm_cvtsi128_si32(s2);
            b8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3)),
                                             order);
        }
        _mm256_storeu_si256((__m256i *)(void *)(q + blk * 32), b8);
        _mm256_storeu_ps(xs + blk * 8, _mm256_set1_ps(scale));
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

INLINE256 void ftile(const fctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, const int R, const int T,
                     const uq_dtype dt)
{
    const int64_t cols = c->cols, c8 = cols & ~(int64_t)7, el = dt == UQ_F32 ? 4 : 2;
    __m256 acc[4][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    }
    for (int64_t j = 0; j < c8; j += 8) {
        __m256 W[4];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) W[r] = load8(c->w + (size_t)(i0 + r) * c->row_bytes + (size_t)(j * el), dt);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m256 X = _mm256_loadu_ps(c->x + (t0 + t) * cols + j);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = _mm256_fmadd_ps(W[r], X, acc[r][t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            float s = hsum256(acc[r][t]);
            const char *wr = c->w + (size_t)(i0 + r) * c->row_bytes;
            for (int64_t j = c8; j < cols; j++) s += load1(wr + (size_t)(j * el), dt) * c->x[(t0 + t) * cols + j];
            y[(t0 + t) * ldy + i0 + r] = s;
        }
    }
}

#define FT(R, T)                                                                                                       \
    case (R)*4 + (T):                                                                                                  \
        ftile(c, i0, t0, y, ldy, R, T, DT);                                                                            \
        break
#define FTILE_FN(name, dtv)                                                                                            \
    T256 static void name(const fctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, int R, int T)                  \
    {                                                                                                                  \
        const uq_dtype DT = dtv;                                                                                       \
        switch (R * 4 + T) {                                                                                           \
            FT(1, 1);                                                                                                  \
            FT(1, 2);                                                                                                  \
            FT(2, 1);                                                                                                  \
            FT(2, 2);                                                                                                  \
            FT(3, 1);                                                                                                  \
            FT(3, 2);                                                                                                  \
            FT(4, 1);                                                                                                  \
            FT(4, 2);                                                                                                  \
        default:                                                                                                       \
            break;                                                                                                     \
        }                                                                                                              \
    }
FTILE_FN(ftile_f32, UQ_F32)
FTILE_FN(ftile_f16, UQ_F16)
FTILE_FN(ftile_bf16, UQ_BF16)

static void fgemm_avx2(const void *w, uq_dtype dt, int64_t cols, int64_t nr, const float *x, int64_t nt, float *y,
                       int64_t ldy, float *scratch)
{
    static const uq_cpu_ftile tiles[3] = {ftile_f32, ftile_f16, ftile_bf16};
    (void)scratch;
    uq_cpu_fgemm_tiled(w, dt, cols, nr, x, nt, y, ldy, tiles, 4, 2);
}

const uq_cpu_kernels uq_cpu_kernels_avx2 = {
    .name = "AVX2+FMA",
    .level = UQ_CPU_AVX2,
    .quantize_row = quantize_row_avx2,
    .qgemm = qgemm_avx2,
    .fgemm = fgemm_avx2,
    .block64 = 0,
};

#endif
