/* AVX-512 kernels of the "cpu" backend (F, BW, DQ, VL, VNNI and VBMI: Ice
 * Lake, Sapphire Rapids, Zen 4 and later), compiled per function so the rest
 * of the library runs on any x86-64.
 *
 * Quantized weights: a chunk of 64 codes occupies 8 * bits bytes of a row
 * whatever the width. vpermb gives each 64-bit lane the bits bytes of its 8
 * codes, vpmultishiftqb moves code j of the lane to byte j and an AND keeps
 * its bits: three instructions unpack any width from 1 to 8 bits. vpdpbusd
 * then multiplies the unsigned codes with the int8 activations, 4 per 32-bit
 * lane. Tiles of up to 4 rows x 4 inputs (8 rows x 1 input when decoding)
 * share each unpacked chunk and each loaded activation.
 *
 * With 64-value activation blocks (group sizes multiple of 64, the usual
 * case) a chunk has one scale per row and one per input: the products of the
 * two are formed once per chunk and each dot product then costs vpdpbusd, a
 * conversion and a fused multiply-add. Otherwise (32-blocks: groups of 32 or
 * odd multiples of it) lane l of a chunk is scaled by xs[l] times its group
 * scale. Float weights: F16 / BF16 converted to f32 in registers, FMA.
 *
 * 4-bit weights with 64-blocks (the common case) take a shorter path: 128
 * codes of a row are one 64-byte load whose low and high nibbles (an AND, a
 * shift and an AND) are the even and the odd codes; the task deinterleaves
 * its inputs the same way once, so two vpdpbusd give the dot products of
 * codes 8l..8l+7 in lane l, and one multiply-add with the lanes' scale
 * products (two chunks per vector) accumulates them: about half the
 * instructions of the general path per code. */
#include "backend/cpu/cpu_kernels.h"

#ifdef UQ_CPU_X86

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx2,fma,f16c")))
#define INLINE512 static inline __attribute__((always_inline)) T512

/* 16 elements of dtype dt at p (any alignment) as f32; lanes outside k are 0. */
INLINE512 __m512 load16(const void *p, uq_dtype dt, __mmask16 k)
{
    if (dt == UQ_F32) return _mm512_maskz_loadu_ps(k, p);
    __m256i h = _mm256_maskz_loadu_epi16(k, p);
    if (dt == UQ_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline __mmask16 mask16(int64_t n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

/* n elements of dtype dt at src as f32 at dst (any alignment). */
T512 static void to_f32(const void *src, uq_dtype dt, int64_t n, float *dst)
{
    const size_t el = dt == UQ_F32 ? 4 : 2;
    for (int64_t i = 0; i < n; i += 16)
        _mm512_mask_storeu_ps(dst + i, mask16(n - i), load16((const char *)src + (size_t)i * el, dt, mask16(n - i)));
}

/* Scales and effective biases (symmetric: -2^(bits-1) * scale) of rows
 * [r0, r0 + nr) in f32, [nr][groups]: the rows are contiguous in the
 * tensors, so one pass converts them all. */
T512 static void convert_scales(const uq_cpu_qweight *w, int64_t r0, int64_t nr, float *sc, float *be)
{
    const int64_t n = nr * w->groups;
    const size_t el = uq_dtype_size(w->sdt), base = (size_t)r0 * (size_t)w->groups * el;
    to_f32((const char *)w->scales + base, w->sdt, n, sc);
    if (!w->symmetric) {
        to_f32((const char *)w->biases + base, w->sdt, n, be);
        return;
    }
    const __m512 neg_off = _mm512_set1_ps(-(float)(1 << (w->bits - 1)));
    for (int64_t i = 0; i < n; i += 16)
        _mm512_mask_storeu_ps(be + i, mask16(n - i),
                              _mm512_mul_ps(_mm512_maskz_loadu_ps(mask16(n - i), sc + i), neg_off));
}

typedef struct qctx {
    const uint8_t *packed;
    size_t row_bytes;
    int bits;
    int64_t cols, G, gp, group;
    int64_t K, cpg; /* full 64-code chunks per row; chunks per group (64-blocks) */
    const int8_t *xq;
    const float *xs, *gsum;
    const float *sc, *be; /* [nr][G] scales and effective biases of the task's rows */
    const void *braw;     /* or the task's rows' biases as stored (4-bit affine), in bdt */
    uq_dtype bdt;
    const float *sT;      /* [nr / 4][gp][4]: the scales by blocks of 4 rows (64-blocks) */
    const float *xT;      /* [nt / 4][K][4]: the inputs' chunk scales by blocks of 4 (64-blocks) */
    float *P;             /* 64 floats: scale products of the current chunk (block) */
    const int8_t *xd;     /* 4-bit decode: the input's codes deinterleaved per 128 (even, then odd) */
    const float *x16;     /* 4-bit decode: per 128 codes, the two chunks' input scales, 8 lanes each */
    __m512i perm, shifts, bmask;
} qctx;

/* 64 codes from the bytes of p under lm: vpermb gives 64-bit lane i the
 * bytes [bits * i, bits * i + 8), vpmultishiftqb moves code j of the lane to
 * byte j (bits j * bits and up) and the AND keeps its bits. 8-bit codes go
 * through the same steps (identity permutation and shifts). */
INLINE512 __m512i unpack64(const uint8_t *p, __mmask64 lm, __m512i perm, __m512i shifts, __m512i bmask)
{
    __m512i v = _mm512_permutexvar_epi8(perm, _mm512_maskz_loadu_epi8(lm, p));
    return _mm512_and_si512(_mm512_multishift_epi64_epi8(shifts, v), bmask);
}

INLINE512 void add_bias_dt(const qctx *c, __m512 (*acc)[4], int64_t i0, int64_t t0, const int R, const int T,
                           const void *be, const uq_dtype dt)
{
    const size_t el = dt == UQ_F32 ? 4 : 2;
    for (int64_t g = 0; g < c->G; g += 16) {
        const __mmask16 k = mask16(c->G - g);
        __m512 b[8];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) b[r] = load16((const char *)be + (size_t)((i0 + r) * c->G + g) * el, dt, k);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512 gs = _mm512_maskz_loadu_ps(k, c->gsum + (t0 + t) * c->G + g);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(b[r], gs, acc[r][t]);
        }
    }
}

/* acc[r][t] + bias . group sums, for the tile's rows and inputs: the biases
 * converted to f32 (be), or read as stored (braw, 4-bit affine tasks). */
INLINE512 void add_bias(const qctx *c, __m512 (*acc)[4], int64_t i0, int64_t t0, const int R, const int T)
{
    if (!c->braw) add_bias_dt(c, acc, i0, t0, R, T, c->be, UQ_F32);
    else if (c->bdt == UQ_BF16) add_bias_dt(c, acc, i0, t0, R, T, c->braw, UQ_BF16);
    else if (c->bdt == UQ_F16) add_bias_dt(c, acc, i0, t0, R, T, c->braw, UQ_F16);
    else add_bias_dt(c, acc, i0, t0, R, T, c->braw, UQ_F32);
}

/* y[t][i0 + r] = the sum of acc[r][t]'s lanes (R <= 4, or up to 8 when T is
 * 1), by a transposing tree: the halves of pairs of vectors, then quarters,
 * then lanes, so each level serves several sums at once. */
INLINE512 void store_tile(__m512 (*acc)[4], float *y, int64_t ldy, int64_t i0, int64_t t0, const int R, const int T)
{
    const __m512 z = _mm512_setzero_ps();
    if (T == 1) {
#pragma GCC unroll 8
        for (int h = 0; h < R; h += 4) {
            const int n = R - h < 4 ? R - h : 4;
            __m512 v0 = acc[h][0], v1 = n > 1 ? acc[h + 1][0] : z, v2 = n > 2 ? acc[h + 2][0] : z,
                   v3 = n > 3 ? acc[h + 3][0] : z;
            __m512 w0 = _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x44), _mm512_shuffle_f32x4(v0, v1, 0xee));
            __m512 w1 = _mm512_add_ps(_mm512_shuffle_f32x4(v2, v3, 0x44), _mm512_shuffle_f32x4(v2, v3, 0xee));
            __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(w0, w1, 0x88), _mm512_shuffle_f32x4(w0, w1, 0xdd));
            u = _mm512_add_ps(u, _mm512_permute_ps(u, 0x4e));
            u = _mm512_add_ps(u, _mm512_permute_ps(u, 0xb1));
            _mm_mask_storeu_ps(y + t0 * ldy + i0 + h, (__mmask8)((1u << n) - 1),
                               _mm512_castps512_ps128(_mm512_maskz_compress_ps(0x1111, u)));
        }
        return;
    }
    __m512 v[16], w[8], u[4], q[2];
#pragma GCC unroll 8
    for (int r = 0; r < 4; r++) {
#pragma GCC unroll 8
        for (int t = 0; t < 4; t++) v[r * 4 + t] = r < R && t < T ? acc[r][t] : z;
    }
    for (int i = 0; i < 8; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xee));
    for (int i = 0; i < 4; i++)
        u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0xdd));
    for (int i = 0; i < 2; i++)
        q[i] = _mm512_add_ps(_mm512_unpacklo_ps(u[2 * i], u[2 * i + 1]), _mm512_unpackhi_ps(u[2 * i], u[2 * i + 1]));
    __m512 f = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(q[0]), _mm512_castps_pd(q[1]))),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(q[0]), _mm512_castps_pd(q[1]))));
    /* lane 4t + r holds the sum for (r, t) */
    float out[16] __attribute__((aligned(64)));
    _mm512_store_ps(out, f);
#pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        _mm_mask_storeu_ps(y + (t0 + t) * ldy + i0, (__mmask8)((1u << R) - 1), _mm_load_ps(out + 4 * t));
}

/* A tile's row pointers and zeroed accumulators. */
INLINE512 void tile_start(const qctx *c, int64_t i0, const uint8_t **wp, __m512 (*acc)[4], const int R, const int T)
{
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        wp[r] = c->packed + (size_t)(i0 + r) * c->row_bytes;
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    }
}

/* The groups of a 128-code block's two chunks (the second is the first's
 * when the row ends after one), advancing *g / *kin without divisions. */
INLINE512 void block_groups(int64_t *g, int64_t *kin, int64_t cpg, int64_t ka, int64_t K, int64_t *ga, int64_t *gb)
{
    *ga = *g;
    if (++*kin == cpg) *kin = 0, ++*g;
    *gb = ka + 1 < K ? *g : *ga;
    if (++*kin == cpg) *kin = 0, ++*g;
}

/* 32-blocks (or chunks whose halves may belong to different groups): one
 * chunk of 64 codes (32 when last: the row's odd half chunk) for rows
 * i0..i0+R-1 of the task and inputs t0..t0+T-1 of the block; the per-lane
 * scales multiply the group scales. */
INLINE512 void qchunk(const qctx *c, int64_t k, int64_t ga, int64_t gb, __mmask64 lm, const uint8_t *const *wp,
                      const float *const *sc, int64_t t0, __m512 (*acc)[4], __m512i perm, __m512i shifts, __m512i bmask,
                      const int R, const int T, const int split, const int last)
{
    const int64_t cols = c->cols, xcols = cols / 4, bytes = 8 * c->bits;
    __m512i wv[8];
    __m512 S[8];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        /* the same chunk of the next tile's rows, into L2: a fixed distance
         * ahead whatever the row length */
        _mm_prefetch((const char *)(wp[r] + R * c->row_bytes + k * bytes), _MM_HINT_T1);
        wv[r] = unpack64(wp[r] + k * bytes, lm, perm, shifts, bmask);
        if (split && !last)
            S[r] = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(sc[r][ga]), _mm512_set1_ps(sc[r][gb]));
        else
            S[r] = _mm512_set1_ps(sc[r][ga]);
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        const int8_t *xp = c->xq + (t0 + t) * cols + k * 64;
        const float *sp = c->xs + (t0 + t) * xcols + k * 16;
        __m512i xv = last ? _mm512_maskz_loadu_epi8(0xffffffffu, xp) : _mm512_loadu_si512(xp);
        __m512 X = last ? _mm512_maskz_loadu_ps(0x00ff, sp) : _mm512_loadu_ps(sp);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[r], xv);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(X, S[r]), acc[r][t]);
        }
    }
}

INLINE512 void qtile(const qctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, const int R, const int T,
                     const int split)
{
    const int64_t nfull = c->cols / 64, hpg = c->group / 32, bytes = 8 * c->bits;
    const __mmask64 lm = ~(__mmask64)0 >> (64 - bytes);
    __m512 acc[8][4];
    const uint8_t *wp[8];
    const float *sc[8];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        wp[r] = c->packed + (size_t)(i0 + r) * c->row_bytes;
        sc[r] = c->sc + (i0 + r) * c->G;
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    }
    const __m512i perm = c->perm, shifts = c->shifts, bmask = c->bmask;
    /* the groups of the chunk's halves, advanced without divisions */
    int64_t g = 0, left = hpg;
    for (int64_t k = 0; k < nfull; k++) {
        const int64_t ga = g;
        if (--left == 0) g++, left = hpg;
        const int64_t gb = g;
        if (--left == 0) g++, left = hpg;
        qchunk(c, k, ga, gb, lm, wp, sc, t0, acc, perm, shifts, bmask, R, T, split, 0);
    }
    if (c->cols % 64) qchunk(c, nfull, g, g, lm >> (bytes / 2), wp, sc, t0, acc, perm, shifts, bmask, R, T, split, 1);
    add_bias(c, acc, i0, t0, R, T);
    store_tile(acc, y, ldy, i0, t0, R, T);
}

/* 64-blocks: each chunk has one weight scale per row and one input scale per
 * input, so their products are formed once per chunk (a permute and a
 * multiply for 4 rows x 4 inputs, a multiply for 8 rows x 1 input) and each
 * dot product costs a conversion and a fused multiply-add with a broadcast
 * product. */
INLINE512 void ptile(const qctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, const int R, const int T,
                     const int eight)
{
    const int64_t cols = c->cols, K = c->K, cpg = c->cpg, bytes = 8 * c->bits;
    const float *sT = c->sT + (i0 / 4) * c->gp * 4, *xT = c->xT + (t0 / 4) * K * 4;
    const __m512i ridx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i perm = c->perm, shifts = c->shifts, bmask = c->bmask;
    const __mmask64 lm = ~(__mmask64)0 >> (64 - bytes);
    float *P = c->P;
    __m512 acc[8][4];
    const uint8_t *wp[8];
    tile_start(c, i0, wp, acc, R, T);
    int64_t g = 0, kin = 0;
    for (int64_t k = 0; k < K; k++) {
        if (T == 1) { /* P[r] = scale of row r x the input's scale */
            __m256 s8 = _mm256_set_m128(_mm_load_ps(sT + (c->gp + g) * 4), _mm_load_ps(sT + g * 4));
            _mm256_store_ps(P, _mm256_mul_ps(s8, _mm256_set1_ps(xT[k * 4])));
        } else { /* P[4r + t] = scale of row r x scale of input t */
            __m512 A = _mm512_permutexvar_ps(ridx, _mm512_broadcast_f32x4(_mm_load_ps(sT + g * 4)));
            _mm512_store_ps(P, _mm512_mul_ps(A, _mm512_broadcast_f32x4(_mm_load_ps(xT + k * 4))));
        }
        if (++kin == cpg) kin = 0, g++;
        __m512i wv[8];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            /* the same chunk of the next tile's rows, into L2: a fixed
             * distance ahead whatever the row length */
            _mm_prefetch((const char *)(wp[r] + R * c->row_bytes + k * bytes), _MM_HINT_T1);
            wv[r] = eight ? _mm512_loadu_si512(wp[r] + k * 64) : unpack64(wp[r] + k * bytes, lm, perm, shifts, bmask);
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512i xv = _mm512_loadu_si512(c->xq + (t0 + t) * cols + k * 64);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[r], xv);
                acc[r][t] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_set1_ps(P[T == 1 ? r : r * 4 + t]), acc[r][t]);
            }
        }
    }
    add_bias(c, acc, i0, t0, R, T);
    store_tile(acc, y, ldy, i0, t0, R, T);
}

/* 4-bit codes, one input, 64-blocks: 128 codes of a row are one 64-byte
 * load. Byte b holds codes 2b (low nibble) and 2b + 1 (high nibble), so an
 * AND and a shift give the even and the odd codes, and the input codes were
 * deinterleaved the same way (xd): two vpdpbusd leave in lane l the dot
 * product of codes 8l..8l+7, lanes 0-7 covering the first chunk and 8-15 the
 * second. One multiply by the lanes' scale products (the row's two scales x
 * the input's two) then accumulates the 128 codes. */
INLINE512 void ntile4(const qctx *c, int64_t i0, float *y, int64_t ldy, const int R)
{
    const int64_t K = c->K, nb = (K + 1) / 2, cpg = c->cpg;
    const float *sA = c->sT + (i0 / 4) * c->gp * 4, *sB = sA + c->gp * 4; /* rows 0-3, 4-7 */
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 acc[8][4];
    const uint8_t *wp[8];
    tile_start(c, i0, wp, acc, R, 1);
    const __m512i lane8 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 8, 8, 8, 8, 8, 8, 8, 8);
    int64_t g = 0, kin = 0; /* the group of the next chunk, without divisions */
    for (int64_t b = 0; b < nb; b++) {
        const int64_t ka = 2 * b;
        int64_t ga, gb;
        block_groups(&g, &kin, cpg, ka, K, &ga, &gb);
        /* Z lanes 0-7: rows' scale for chunk ka x its input scale; 8-15: chunk ka + 1 */
        __m512 S = _mm512_castps128_ps512(_mm_load_ps(sA + ga * 4));
        S = _mm512_insertf32x4(S, _mm_load_ps(sB + ga * 4), 1);
        S = _mm512_insertf32x4(S, _mm_load_ps(sA + gb * 4), 2);
        S = _mm512_insertf32x4(S, _mm_load_ps(sB + gb * 4), 3);
        const __m512 Z = _mm512_mul_ps(S, _mm512_load_ps(c->x16 + b * 16));
        const __m512i xe = _mm512_load_si512(c->xd + b * 128), xo = _mm512_load_si512(c->xd + b * 128 + 64);
        const __mmask64 lm = ka + 1 < K ? ~(__mmask64)0 : (__mmask64)0xffffffffu;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const uint8_t *src = wp[r] + b * 64;
            _mm_prefetch((const char *)(src + R * c->row_bytes), _MM_HINT_T1);
            __m512i v = _mm512_maskz_loadu_epi8(lm, src);
            __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xe);
            d = _mm512_dpbusd_epi32(d, hi, xo);
            const __m512 P = _mm512_permutexvar_ps(_mm512_add_epi32(lane8, _mm512_set1_epi32(r)), Z);
            acc[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), P, acc[r][0]);
        }
    }
    add_bias(c, acc, i0, 0, R, 1);
    store_tile(acc, y, ldy, i0, 0, R, 1);
}

/* 4-bit codes, up to 4 rows x 4 inputs, 64-blocks: as ntile4, with the
 * unpacked 128 codes of each row serving the tile's inputs and each
 * product's lane scales formed as (row's two scales) x (input's two). */
INLINE512 void ptile4(const qctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, const int R, const int T)
{
    const int64_t K = c->K, nb = (K + 1) / 2, cpg = c->cpg;
    const float *sA = c->sT + (i0 / 4) * c->gp * 4;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i base = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    float *s2 = c->P; /* the rows' lane scales of the current block, [4][16]: kept in L1, not registers */
    __m512 acc[8][4];
    const uint8_t *wp[4];
    tile_start(c, i0, wp, acc, R, T);
    const int8_t *xp0 = c->xd + t0 * nb * 128;
    const float *xs0 = c->x16 + t0 * nb * 16;
    int64_t g = 0, kin = 0; /* the group of the next chunk, without divisions */
    for (int64_t b = 0; b < nb; b++) {
        const int64_t ka = 2 * b;
        int64_t ga, gb;
        block_groups(&g, &kin, cpg, ka, K, &ga, &gb);
        /* lanes 0-3: the rows' scales for chunk ka, 4-7: chunk ka + 1 */
        const __m512 Sab = _mm512_castps256_ps512(
            _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_load_ps(sA + ga * 4)), _mm_load_ps(sA + gb * 4), 1));
        const __mmask64 lm = ka + 1 < K ? ~(__mmask64)0 : (__mmask64)0xffffffffu;
        __m512i lo[4], hi[4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512i v = _mm512_maskz_loadu_epi8(lm, wp[r] + b * 64);
            lo[r] = _mm512_and_si512(v, m4);
            hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            _mm512_store_ps(s2 + 16 * r, _mm512_permutexvar_ps(_mm512_add_epi32(base, _mm512_set1_epi32(r)), Sab));
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const int8_t *xp = xp0 + t * nb * 128 + b * 128;
            const __m512i xe = _mm512_load_si512(xp), xo = _mm512_load_si512(xp + 64);
            const __m512 X2 = _mm512_load_ps(xs0 + t * nb * 16 + b * 16);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[r], xe);
                d = _mm512_dpbusd_epi32(d, hi[r], xo);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(X2, _mm512_load_ps(s2 + 16 * r)),
                                            acc[r][t]);
            }
        }
    }
    add_bias(c, acc, i0, t0, R, T);
    store_tile(acc, y, ldy, i0, t0, R, T);
}

#define PT4(R, T)                                                                                                      \
    case (R)*4 + (T)-1:                                                                                                \
        ptile4(c, i0, t0, y, ldy, R, T);                                                                               \
        break
#define PT4_R(R)                                                                                                       \
    PT4(R, 1);                                                                                                         \
    PT4(R, 2);                                                                                                         \
    PT4(R, 3);                                                                                                         \
    PT4(R, 4)

T512 static void ptile4_any(const qctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, int R, int T)
{
    switch (R * 4 + T - 1) {
        PT4_R(1);
        PT4_R(2);
        PT4_R(3);
        PT4_R(4);
    default:
        break;
    }
}

T512 static void ntile4_any(const qctx *c, int64_t i0, float *y, int64_t ldy, int R)
{
    switch (R) {
    case 1: ntile4(c, i0, y, ldy, 1); break;
    case 2: ntile4(c, i0, y, ldy, 2); break;
    case 3: ntile4(c, i0, y, ldy, 3); break;
    case 4: ntile4(c, i0, y, ldy, 4); break;
    case 5: ntile4(c, i0, y, ldy, 5); break;
    case 6: ntile4(c, i0, y, ldy, 6); break;
    case 7: ntile4(c, i0, y, ldy, 7); break;
    default: ntile4(c, i0, y, ldy, 8); break;
    }
}

/* The input's codes deinterleaved per 128 for ntile4 (even codes, then odd;
 * a last half block padded with zeros) and the chunk scales as 8-lane
 * halves. */
T512 static void prepare_ntile4(const int8_t *xq, const float *xsb, int64_t cols, int8_t *xd, float *x16)
{
    const __m512i ie = _mm512_set_epi8(126, 124, 122, 120, 118, 116, 114, 112, 110, 108, 106, 104, 102, 100, 98, 96, 94,
                                       92, 90, 88, 86, 84, 82, 80, 78, 76, 74, 72, 70, 68, 66, 64, 62, 60, 58, 56, 54,
                                       52, 50, 48, 46, 44, 42, 40, 38, 36, 34, 32, 30, 28, 26, 24, 22, 20, 18, 16, 14,
                                       12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_add_epi8(ie, _mm512_set1_epi8(1));
    const int64_t K = cols / 64;
    for (int64_t b = 0; b < (K + 1) / 2; b++) {
        const int full = 2 * b + 1 < K;
        __m512i lo = _mm512_loadu_si512(xq + b * 128);
        __m512i hi = full ? _mm512_loadu_si512(xq + b * 128 + 64) : _mm512_setzero_si512();
        _mm512_store_si512(xd + b * 128, _mm512_permutex2var_epi8(lo, ie, hi));
        _mm512_store_si512(xd + b * 128 + 64, _mm512_permutex2var_epi8(lo, io, hi));
        const float a = xsb[4 * b], c = full ? xsb[4 * b + 2] : 0.0f;
        _mm512_store_ps(x16 + b * 16, _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(a), _mm512_set1_ps(c)));
    }
}

#define QT(R, T, M)                                                                                                    \
    case (R)*16 + (T)*4 + (M):                                                                                         \
        if ((M) >= 2)                                                                                                  \
            ptile(c, i0, t0, y, ldy, R, T, (M) == 3);                                                                  \
        else                                                                                                           \
            qtile(c, i0, t0, y, ldy, R, T, M);                                                                         \
        break
#define QT_RT(R, T)                                                                                                    \
    QT(R, T, 0);                                                                                                       \
    QT(R, T, 1);                                                                                                       \
    QT(R, T, 2);                                                                                                       \
    QT(R, T, 3)
#define QT_R(R)                                                                                                        \
    QT_RT(R, 1);                                                                                                       \
    QT_RT(R, 2);                                                                                                       \
    QT_RT(R, 3);                                                                                                       \
    QT_RT(R, 4)
#define QT_1(R)                                                                                                        \
    QT(R, 1, 0);                                                                                                       \
    QT(R, 1, 1);                                                                                                       \
    QT(R, 1, 2);                                                                                                       \
    QT(R, 1, 3)

/* mode 0: lanes scaled per 32-block; 1: the same where a chunk's halves may
 * be in different groups; 2: 64-blocks, products per chunk; 3: the same for
 * 8-bit codes (nothing to unpack). Tiles of R <= 4 rows x T <= 4 inputs, or
 * R <= 8 rows of one input. */
T512 static void qtile_any(const qctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, int R, int T, int mode)
{
    switch (R * 16 + T * 4 + mode) {
        QT_R(1);
        QT_R(2);
        QT_R(3);
        QT_R(4);
        QT_1(5);
        QT_1(6);
        QT_1(7);
        QT_1(8);
    default:
        break;
    }
}

/* Per width: the vpermb indices (64-bit lane i takes bytes bits * i and up)
 * and the vpmultishiftqb shifts (byte j of a lane takes bits j * bits and up). */
static uint8_t unpack_tables[9][2][64];

__attribute__((constructor)) static void fill_unpack_tables(void)
{
    for (int bits = 1; bits <= 8; bits++)
        for (int i = 0; i < 64; i++) {
            unpack_tables[bits][0][i] = (uint8_t)(bits * (i / 8) + i % 8);
            unpack_tables[bits][1][i] = (uint8_t)(bits * (i % 8));
        }
}

/* out[g][r] = sc[r * G + g] for g < G rounded up to 16, r < 4 (rows from n
 * on and groups from G on read as 0): a 4 x 16 transpose per 16 groups. */
INLINE512 void transpose_scales_dt(const void *src, uq_dtype dt, int64_t G, int n, float *out)
{
    const size_t el = dt == UQ_F32 ? 4 : 2;
    const char *sc = src;
    for (int64_t g = 0; g < G; g += 16) {
        const __mmask16 m = mask16(G - g);
        __m512 z = _mm512_setzero_ps(), a = n > 0 ? load16(sc + (size_t)g * el, dt, m) : z;
        __m512 b = n > 1 ? load16(sc + (size_t)(G + g) * el, dt, m) : z;
        __m512 c = n > 2 ? load16(sc + (size_t)(2 * G + g) * el, dt, m) : z;
        __m512 d = n > 3 ? load16(sc + (size_t)(3 * G + g) * el, dt, m) : z;
        __m512 t0 = _mm512_unpacklo_ps(a, b), t1 = _mm512_unpackhi_ps(a, b);
        __m512 t2 = _mm512_unpacklo_ps(c, d), t3 = _mm512_unpackhi_ps(c, d);
        /* u_m, 128-bit block j: group 4j + m of the 4 rows */
        __m512 u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xee);
        __m512 u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xee);
        __m512 p0 = _mm512_shuffle_f32x4(u0, u1, 0x44), p1 = _mm512_shuffle_f32x4(u0, u1, 0xee);
        __m512 p2 = _mm512_shuffle_f32x4(u2, u3, 0x44), p3 = _mm512_shuffle_f32x4(u2, u3, 0xee);
        _mm512_store_ps(out + 4 * g, _mm512_shuffle_f32x4(p0, p2, 0x88));
        _mm512_store_ps(out + 4 * g + 16, _mm512_shuffle_f32x4(p0, p2, 0xdd));
        _mm512_store_ps(out + 4 * g + 32, _mm512_shuffle_f32x4(p1, p3, 0x88));
        _mm512_store_ps(out + 4 * g + 48, _mm512_shuffle_f32x4(p1, p3, 0xdd));
    }
}

T512 static void transpose_scales(const float *sc, int64_t G, int n, float *out)
{
    transpose_scales_dt(sc, UQ_F32, G, n, out);
}

/* The same straight from the stored scales (F32, F16 or BF16). */
T512 static void transpose_scales_raw(const void *sc, uq_dtype dt, int64_t G, int n, float *out)
{
    if (dt == UQ_BF16) transpose_scales_dt(sc, UQ_BF16, G, n, out);
    else if (dt == UQ_F16) transpose_scales_dt(sc, UQ_F16, G, n, out);
    else transpose_scales_dt(sc, UQ_F32, G, n, out);
}

T512 static void qgemm_avx512(const uq_cpu_qweight *w, int64_t r0, int64_t nr, const uq_cpu_qact *x, int64_t nt,
                              float *y, int64_t ldy, float *scratch)
{
    qctx c = {
        .packed = w->packed + (size_t)r0 * w->row_bytes,
        .row_bytes = w->row_bytes,
        .bits = w->bits,
        .cols = w->cols,
        .G = w->groups,
        .gp = (w->groups + 15) & ~(int64_t)15,
        .group = w->group,
        .K = w->cols / 64,
        .cpg = w->group / 64,
        .xq = x->q,
        .xs = x->xs,
        .gsum = x->gsum,
    };
    const int64_t r8 = (nr + 7) & ~(int64_t)7, t4 = (nt + 3) & ~(int64_t)3;
    c.P = scratch;
    const int64_t ng = (nr * c.G + 15) & ~(int64_t)15;
    float *sc = scratch + 64, *be = sc + ng, *sT = be + ng, *xT = sT + r8 * c.gp;
    const int four = x->block == 64 && w->bits == 4;
    const int64_t nb = (c.K + 1) / 2;
    float *x16 = xT;
    int8_t *xd = (int8_t *)(x16 + nt * nb * 16);
    if (four) {
        /* this task's scales and biases on their way while the inputs are
         * deinterleaved: their latency showed in the conversion */
        const size_t el = uq_dtype_size(w->sdt), a = (size_t)r0 * (size_t)c.G * el;
        const size_t e = a + (size_t)nr * (size_t)c.G * el;
        for (size_t o = a & ~(size_t)63; o < e; o += 64) {
            _mm_prefetch((const char *)w->scales + o, _MM_HINT_T0);
            if (w->biases) _mm_prefetch((const char *)w->biases + o, _MM_HINT_T0);
        }
        for (int64_t t = 0; t < nt; t++)
            prepare_ntile4(x->q + t * c.cols, x->xsb + t * (c.cols / 32), c.cols, xd + t * nb * 128, x16 + t * nb * 16);
    }
    if (four && !w->symmetric) { /* scales and biases read as stored */
        c.braw = (const char *)w->biases + (size_t)r0 * (size_t)c.G * uq_dtype_size(w->sdt);
        c.bdt = w->sdt;
    } else {
        convert_scales(w, r0, nr, sc, be);
    }
    {
        /* the next rows' scales and biases (most likely the next task's), into
         * L2 while this task computes */
        const size_t el = uq_dtype_size(w->sdt), a = (size_t)(r0 + nr) * (size_t)c.G * el;
        const size_t e = a + (size_t)nr * (size_t)c.G * el;
        for (size_t o = a; o < e; o += 64) {
            _mm_prefetch((const char *)w->scales + o, _MM_HINT_T1);
            if (w->biases) _mm_prefetch((const char *)w->biases + o, _MM_HINT_T1);
        }
    }
    c.sc = sc;
    c.be = be;
    c.perm = _mm512_loadu_si512(unpack_tables[w->bits][0]);
    c.shifts = _mm512_loadu_si512(unpack_tables[w->bits][1]);
    c.bmask = _mm512_set1_epi8((char)((1 << w->bits) - 1));
    int mode = w->group % 64 != 0;
    if (four) {
        /* 4-bit: scales by blocks of 4 rows, the inputs deinterleaved above */
        const size_t el = uq_dtype_size(w->sdt);
        for (int64_t b = 0; b < r8 / 4; b++) {
            const int n4 = nr - 4 * b < 4 ? (int)(nr - 4 * b) : 4;
            if (w->symmetric)
                transpose_scales(sc + 4 * b * c.G, c.G, n4, sT + 4 * b * c.gp);
            else
                transpose_scales_raw((const char *)w->scales + (size_t)(r0 + 4 * b) * (size_t)c.G * el, w->sdt, c.G,
                                     n4, sT + 4 * b * c.gp);
        }
        c.sT = sT;
        c.x16 = x16;
        c.xd = xd;
        if (nt == 1) {
            for (int64_t i0 = 0; i0 < nr; i0 += 8) ntile4_any(&c, i0, y, ldy, nr - i0 < 8 ? (int)(nr - i0) : 8);
            return;
        }
        for (int64_t t0 = 0; t0 < nt; t0 += 4)
            for (int64_t i0 = 0; i0 < nr; i0 += 4)
                ptile4_any(&c, i0, t0, y, ldy, nr - i0 < 4 ? (int)(nr - i0) : 4, nt - t0 < 4 ? (int)(nt - t0) : 4);
        return;
    }
    if (x->block == 64) {
        /* the scales by blocks of 4 rows (8 rows a tile read two blocks) and
         * of 4 inputs, zero beyond the task */
        mode = w->bits == 8 ? 3 : 2;
        for (int64_t b = 0; b < r8 / 4; b++)
            transpose_scales(sc + 4 * b * c.G, c.G, nr - 4 * b < 4 ? (int)(nr - 4 * b) : 4, sT + 4 * b * c.gp);
        memset(xT, 0, (size_t)(t4 * c.K) * sizeof *xT);
        for (int64_t t = 0; t < nt; t++)
            for (int64_t k = 0; k < c.K; k++) xT[((t / 4) * c.K + k) * 4 + t % 4] = x->xsb[t * (c.cols / 32) + 2 * k];
        c.sT = sT;
        c.xT = xT;
    }
    if (nt == 1) { /* one input: 8 rows a tile */
        for (int64_t i0 = 0; i0 < nr; i0 += 8) qtile_any(&c, i0, 0, y, ldy, nr - i0 < 8 ? (int)(nr - i0) : 8, 1, mode);
        return;
    }
    for (int64_t t0 = 0; t0 < nt; t0 += 4)
        for (int64_t i0 = 0; i0 < nr; i0 += 4)
            qtile_any(&c, i0, t0, y, ldy, nr - i0 < 4 ? (int)(nr - i0) : 4, nt - t0 < 4 ? (int)(nt - t0) : 4, mode);
}

T512 static void quantize_row_avx512(const float *x, int64_t cols, int64_t group, int block, int8_t *q, float *xs,
                                     float *xsb, float *gsum)
{
    const int64_t per_group = group / block;
    const int nv = block / 16;
    float gs = 0;
    for (int64_t blk = 0; blk < cols / block; blk++) {
        const float *p = x + blk * block;
        __m512 v[4], m = _mm512_setzero_ps(), s = _mm512_setzero_ps();
        for (int i = 0; i < nv; i++) {
            v[i] = _mm512_loadu_ps(p + 16 * i);
            m = _mm512_max_ps(m, _mm512_abs_ps(v[i]));
            s = _mm512_add_ps(s, v[i]);
        }
        float amax = _mm512_reduce_max_ps(m), sum = _mm512_reduce_add_ps(s);
        float scale = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
        int32_t isum = 0;
        if (!isfinite(sum) || !isfinite(amax)) {
            scale = NAN;
            memset(q + blk * block, 0, (size_t)block);
        } else {
            const __m512 vi = _mm512_set1_ps(inv);
            __m512i is = _mm512_setzero_si512();
            for (int i = 0; i < nv; i++) {
                __m512i iv = _mm512_cvtps_epi32(_mm512_mul_ps(v[i], vi)); /* within [-127, 127] */
                is = _mm512_add_epi32(is, iv);
                _mm_storeu_si128((__m128i *)(void *)(q + blk * block + 16 * i), _mm512_cvtsepi32_epi8(iv));
            }
            isum = _mm512_reduce_add_epi32(is);
        }
        for (int i = 0; i < block / 4; i += 8) _mm256_storeu_ps(xs + blk * (block / 4) + i, _mm256_set1_ps(scale));
        for (int i = 0; i < block / 32; i++) xsb[blk * (block / 32) + i] = scale;
        gs += scale * (float)isum;
        if ((blk + 1) % per_group == 0) {
            gsum[blk / per_group] = gs;
            gs = 0;
        }
    }
}

/* ------------------------------------------------------ float weights */

typedef uq_cpu_fctx fctx;

INLINE512 void ftile(const fctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, const int R, const int T,
                     const uq_dtype dt)
{
    const int64_t cols = c->cols, el = dt == UQ_F32 ? 4 : 2;
    __m512 acc[4][4];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    }
    for (int64_t j = 0; j < cols; j += 16) {
        const __mmask16 k = mask16(cols - j);
        __m512 W[4];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) W[r] = load16(c->w + (size_t)(i0 + r) * c->row_bytes + (size_t)(j * el), dt, k);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512 X = _mm512_maskz_loadu_ps(k, c->x + (t0 + t) * cols + j);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(W[r], X, acc[r][t]);
        }
    }
    store_tile(acc, y, ldy, i0, t0, R, T);
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
    T512 static void name(const fctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, int R, int T)                  \
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

static void fgemm_avx512(const void *w, uq_dtype dt, int64_t cols, int64_t nr, const float *x, int64_t nt, float *y,
                         int64_t ldy, float *scratch)
{
    static const uq_cpu_ftile tiles[3] = {ftile_f32, ftile_f16, ftile_bf16};
    (void)scratch;
    uq_cpu_fgemm_tiled(w, dt, cols, nr, x, nt, y, ldy, tiles, 4, 4);
}

const uq_cpu_kernels uq_cpu_kernels_avx512 = {
    .name = "AVX-512 VNNI",
    .level = UQ_CPU_AVX512,
    .quantize_row = quantize_row_avx512,
    .qgemm = qgemm_avx512,
    .fgemm = fgemm_avx512,
    .block64 = 1,
};

#endif
