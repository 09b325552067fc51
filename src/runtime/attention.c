/* Causal attention of a block of consecutive queries of one head over the
 * KV cache (the prefill's attention; decode takes the one-query path).
 *
 * The queries are processed in groups of 16, one per vector lane: the group
 * is transposed to qt[hd][16] once, so the scores of a tile of keys (8 with
 * AVX-512, 4 portable) are s[j][0..16) += qt[d] * k[j][d] with each key
 * element broadcast: no horizontal sums, and each loaded key serves 16
 * queries. The scores stay transposed, s[j][lane], so the softmax runs down
 * the columns with the queries in the lanes (uq_softmax_cols16) and the
 * causal mask is a lane mask on the diagonal rows. The mix then accumulates
 * out[q] += p[q][j] * v[j] for 4 queries x up to 64 dimensions in registers
 * (16 portable), each loaded value row serving 4 queries; each group of 4
 * queries stops at its last visible key (masked keys have weight exactly 0).
 *
 * Each sum runs in one fixed order (over dimensions for a score, over keys
 * for the softmax sum and the mix), so a query gets the same bits whatever
 * block or group it is computed in, and nothing depends on the thread count.
 * The AVX-512 kernels (chosen at run time) fuse the multiply-adds; the
 * portable kernels (GCC vector extensions: AVX2 and baseline clones on
 * x86-64, NEON on Arm) round each product. The one-query kernels of decode
 * (core/vec.c) use 8 partial sums per score, so they agree with these to
 * float rounding, not bit for bit. */
#include "runtime/runtime.h"

#include <math.h>
#include <string.h>

#define LANES 16

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(UQ_NO_CLONES)
#define ATTN_X86 1
#include <immintrin.h>
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

int64_t uq_attn_scratch_floats(int64_t n_ctx, int64_t head_dim)
{
    /* scores [n_ctx][16], transposed queries [head_dim][16] */
    return (n_ctx + head_dim) * LANES;
}

/* qt[d][i] = q[i][d] for the g queries of the group, 0 for the other lanes. */
static void transpose_queries(const float *q, int64_t q_stride, int64_t hd, int g, float *qt)
{
    memset(qt, 0, (size_t)(hd * LANES) * sizeof *qt);
    for (int i = 0; i < g; i++)
        for (int64_t d = 0; d < hd; d++) qt[d * LANES + i] = q[i * q_stride + d];
}

/* Diagonal rows j in [p0, npos): lane i sees key j when p0 + i >= j. */
static void mask_diagonal(float *s, int64_t p0, int64_t npos)
{
    for (int64_t j = p0; j < npos; j++)
        for (int64_t i = 0; i < j - p0 && i < LANES; i++) s[j * LANES + i] = -INFINITY;
}

/* ------------------------------------------------------------ portable */

/* 8 floats: two AVX registers, one AVX2 register, two NEON registers; the
 * compiler splits or joins as the target needs. */
typedef float vf8 __attribute__((vector_size(32)));

/* Unaligned loads and stores (macros: vector arguments would change the ABI
 * of the baseline build). */
#define LD8(x, p) memcpy(&(x), (p), sizeof(vf8))
#define ST8(p, x)                                                                                                  \
    do {                                                                                                           \
        const vf8 st8_ = (x);                                                                                      \
        memcpy((p), &st8_, sizeof st8_);                                                                           \
    } while (0)

CLONES static void scores_c(const float *qt, const float *k, int64_t kv_stride, int64_t hd, int64_t npos,
                            float scale, float *s)
{
    int64_t j = 0;
    for (; j + 4 <= npos; j += 4) {
        const float *k0 = k + j * kv_stride, *k1 = k0 + kv_stride, *k2 = k1 + kv_stride, *k3 = k2 + kv_stride;
        vf8 a0 = {0}, b0 = {0}, a1 = {0}, b1 = {0}, a2 = {0}, b2 = {0}, a3 = {0}, b3 = {0};
        for (int64_t d = 0; d < hd; d++) {
            vf8 qa, qb;
            LD8(qa, qt + d * LANES);
            LD8(qb, qt + d * LANES + 8);
            a0 += qa * k0[d], b0 += qb * k0[d];
            a1 += qa * k1[d], b1 += qb * k1[d];
            a2 += qa * k2[d], b2 += qb * k2[d];
            a3 += qa * k3[d], b3 += qb * k3[d];
        }
        float *sj = s + j * LANES;
        ST8(sj, a0 * scale);
        ST8(sj + 8, b0 * scale);
        ST8(sj + 16, a1 * scale);
        ST8(sj + 24, b1 * scale);
        ST8(sj + 32, a2 * scale);
        ST8(sj + 40, b2 * scale);
        ST8(sj + 48, a3 * scale);
        ST8(sj + 56, b3 * scale);
    }
    for (; j < npos; j++) {
        const float *kj = k + j * kv_stride;
        vf8 a = {0}, b = {0};
        for (int64_t d = 0; d < hd; d++) {
            vf8 qa, qb;
            LD8(qa, qt + d * LANES);
            LD8(qb, qt + d * LANES + 8);
            a += qa * kj[d], b += qb * kj[d];
        }
        ST8(s + j * LANES, a * scale);
        ST8(s + j * LANES + 8, b * scale);
    }
}

/* out[r][0..hd) = sum over j < nkeys of p[j][lane + r] * v[j] for r < nr (nr <= 4). */
CLONES static void mix_c(const float *p, int lane, int nr, const float *v, int64_t kv_stride, int64_t hd,
                         int64_t nkeys, float *out, int64_t out_stride)
{
    int64_t d0 = 0;
    for (; d0 + 16 <= hd; d0 += 16) {
        vf8 a0 = {0}, b0 = {0}, a1 = {0}, b1 = {0}, a2 = {0}, b2 = {0}, a3 = {0}, b3 = {0};
        const float *vj = v + d0, *pj = p + lane;
        for (int64_t j = 0; j < nkeys; j++, vj += kv_stride, pj += LANES) {
            vf8 va, vb;
            LD8(va, vj);
            LD8(vb, vj + 8);
            a0 += pj[0] * va, b0 += pj[0] * vb;
            a1 += pj[1] * va, b1 += pj[1] * vb;
            a2 += pj[2] * va, b2 += pj[2] * vb;
            a3 += pj[3] * va, b3 += pj[3] * vb;
        }
        const vf8 acc[8] = {a0, b0, a1, b1, a2, b2, a3, b3};
        for (int r = 0; r < nr; r++) {
            ST8(out + r * out_stride + d0, acc[2 * r]);
            ST8(out + r * out_stride + d0 + 8, acc[2 * r + 1]);
        }
    }
    for (; d0 + 8 <= hd; d0 += 8) {
        vf8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        const float *vj = v + d0, *pj = p + lane;
        for (int64_t j = 0; j < nkeys; j++, vj += kv_stride, pj += LANES) {
            vf8 va;
            LD8(va, vj);
            a0 += pj[0] * va, a1 += pj[1] * va, a2 += pj[2] * va, a3 += pj[3] * va;
        }
        const vf8 acc[4] = {a0, a1, a2, a3};
        for (int r = 0; r < nr; r++) ST8(out + r * out_stride + d0, acc[r]);
    }
    for (; d0 < hd; d0++)
        for (int r = 0; r < nr; r++) {
            float a = 0;
            for (int64_t j = 0; j < nkeys; j++) a += p[j * LANES + lane + r] * v[j * kv_stride + d0];
            out[r * out_stride + d0] = a;
        }
}

/* ------------------------------------------------------------ AVX-512 */

#ifdef ATTN_X86
#define T512 __attribute__((target("avx512f,avx2,fma")))

T512 static void scores_avx512(const float *qt, const float *k, int64_t kv_stride, int64_t hd, int64_t npos,
                               float scale, float *s)
{
    const __m512 sc = _mm512_set1_ps(scale);
    int64_t j = 0;
    for (; j + 8 <= npos; j += 8) {
        const float *k0 = k + j * kv_stride, *k1 = k0 + kv_stride, *k2 = k1 + kv_stride, *k3 = k2 + kv_stride;
        const float *k4 = k3 + kv_stride, *k5 = k4 + kv_stride, *k6 = k5 + kv_stride, *k7 = k6 + kv_stride;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int64_t d = 0; d < hd; d++) {
            const __m512 qd = _mm512_loadu_ps(qt + d * LANES);
            a0 = _mm512_fmadd_ps(qd, _mm512_set1_ps(k0[d]), a0);
            a1 = _mm512_fmadd_ps(qd, _mm512_set1_ps(k1[d]), a1);
            a2 = _mm512_fmadd_ps(qd, _mm512_set1_ps(k2[d]), a2);
            a3 = _mm512_fmadd_ps(qd, _mm512_set1_ps(k3[d]), a3);
            a4 = _mm512_fmadd_ps(qd, _mm512_set1_ps(k4[d]), a4);
            a5 = _mm512_fmadd_ps(qd, _mm512_set1_ps(k5[d]), a5);
            a6 = _mm512_fmadd_ps(qd, _mm512_set1_ps(k6[d]), a6);
            a7 = _mm512_fmadd_ps(qd, _mm512_set1_ps(k7[d]), a7);
        }
        float *sj = s + j * LANES;
        _mm512_storeu_ps(sj + 0 * LANES, _mm512_mul_ps(a0, sc));
        _mm512_storeu_ps(sj + 1 * LANES, _mm512_mul_ps(a1, sc));
        _mm512_storeu_ps(sj + 2 * LANES, _mm512_mul_ps(a2, sc));
        _mm512_storeu_ps(sj + 3 * LANES, _mm512_mul_ps(a3, sc));
        _mm512_storeu_ps(sj + 4 * LANES, _mm512_mul_ps(a4, sc));
        _mm512_storeu_ps(sj + 5 * LANES, _mm512_mul_ps(a5, sc));
        _mm512_storeu_ps(sj + 6 * LANES, _mm512_mul_ps(a6, sc));
        _mm512_storeu_ps(sj + 7 * LANES, _mm512_mul_ps(a7, sc));
    }
    for (; j < npos; j++) {
        const float *kj = k + j * kv_stride;
        __m512 a = _mm512_setzero_ps();
        for (int64_t d = 0; d < hd; d++) a = _mm512_fmadd_ps(_mm512_loadu_ps(qt + d * LANES), _mm512_set1_ps(kj[d]), a);
        _mm512_storeu_ps(s + j * LANES, _mm512_mul_ps(a, sc));
    }
}

/* As mix_c: 4 queries x up to 4 vectors of 16 dimensions in registers. */
T512 static void mix_avx512(const float *p, int lane, int nr, const float *v, int64_t kv_stride, int64_t hd,
                            int64_t nkeys, float *out, int64_t out_stride)
{
    for (int64_t d0 = 0; d0 < hd; d0 += 64) {
        const int64_t w = hd - d0 < 64 ? hd - d0 : 64;
        const int nv = (int)((w + 15) / 16);
        /* lanes of the last vector inside hd */
        const __mmask16 tail = (__mmask16)(w % 16 ? (1u << (w % 16)) - 1 : 0xFFFFu);
        __m512 acc[4][4];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
        const float *vj = v + d0;
        const float *pj = p + lane;
        if (nv == 4 && tail == 0xFFFFu) {
            for (int64_t j = 0; j < nkeys; j++, vj += kv_stride, pj += LANES) {
                const __m512 v0 = _mm512_loadu_ps(vj), v1 = _mm512_loadu_ps(vj + 16);
                const __m512 v2 = _mm512_loadu_ps(vj + 32), v3 = _mm512_loadu_ps(vj + 48);
                for (int r = 0; r < 4; r++) {
                    const __m512 a = _mm512_set1_ps(pj[r]);
                    acc[r][0] = _mm512_fmadd_ps(a, v0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(a, v1, acc[r][1]);
                    acc[r][2] = _mm512_fmadd_ps(a, v2, acc[r][2]);
                    acc[r][3] = _mm512_fmadd_ps(a, v3, acc[r][3]);
                }
            }
        } else {
            for (int64_t j = 0; j < nkeys; j++, vj += kv_stride, pj += LANES) {
                __m512 vv[4];
                for (int c = 0; c < nv; c++)
                    vv[c] = _mm512_maskz_loadu_ps(c == nv - 1 ? tail : (__mmask16)0xFFFFu, vj + 16 * c);
                for (int r = 0; r < 4; r++) {
                    const __m512 a = _mm512_set1_ps(pj[r]);
                    for (int c = 0; c < nv; c++) acc[r][c] = _mm512_fmadd_ps(a, vv[c], acc[r][c]);
                }
            }
        }
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < nv; c++)
                _mm512_mask_storeu_ps(out + r * out_stride + d0 + 16 * c, c == nv - 1 ? tail : (__mmask16)0xFFFFu,
                                      acc[r][c]);
    }
}

/* One query (decoding), head sizes that are multiples of 16 up to 128.
 * Scores: 16 keys at a time, each key's dot product accumulated across the
 * head in one vector, then the 16 vectors summed lane-wise by a transposing
 * tree (pairs within 128-bit blocks, then 64-bit halves, then the blocks), so
 * one store writes 16 scores. */
T512 static void scores_one_avx512(const float *q, const float *k, int64_t kv_stride, int64_t hd, int64_t npos,
                                   float scale, float *s)
{
    const int nv = (int)(hd / 16);
    __m512 qv[8];
    for (int i = 0; i < nv; i++) qv[i] = _mm512_loadu_ps(q + 16 * i);
    const __m512 sc = _mm512_set1_ps(scale);
    int64_t p = 0;
    for (; p + 16 <= npos; p += 16) {
        __m512 a[16];
        for (int j = 0; j < 16; j++) {
            const float *kp = k + (p + j) * kv_stride;
            __m512 acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kp));
            for (int i = 1; i < nv; i++) acc = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(kp + 16 * i), acc);
            a[j] = acc;
        }
        __m512 b[8], c[4], d[2];
        for (int i = 0; i < 8; i++)
            b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
        for (int i = 0; i < 4; i++) {
            __m512d x = _mm512_castps_pd(b[2 * i]), y = _mm512_castps_pd(b[2 * i + 1]);
            c[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
        }
        for (int i = 0; i < 2; i++)
            d[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0x88),
                                 _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0xdd));
        __m512 e = _mm512_add_ps(_mm512_shuffle_f32x4(d[0], d[1], 0x88), _mm512_shuffle_f32x4(d[0], d[1], 0xdd));
        _mm512_storeu_ps(s + p, _mm512_mul_ps(e, sc));
    }
    for (; p < npos; p++) {
        const float *kp = k + p * kv_stride;
        __m512 acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kp));
        for (int i = 1; i < nv; i++) acc = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(kp + 16 * i), acc);
        s[p] = _mm512_reduce_add_ps(acc) * scale;
    }
}

/* out = sum_p w[p] v[p] with the sums in registers, two sets of
 * accumulators (even and odd keys) so consecutive keys do not wait on each
 * other's additions. */
T512 static void mix_one_avx512(const float *w, const float *v, int64_t kv_stride, int64_t hd, int64_t npos,
                                float *out)
{
    const int nv = (int)(hd / 16);
    __m512 e[8], o[8];
    for (int i = 0; i < nv; i++) e[i] = o[i] = _mm512_setzero_ps();
    int64_t p = 0;
    for (; p + 2 <= npos; p += 2) {
        const float *v0 = v + p * kv_stride, *v1 = v0 + kv_stride;
        const __m512 w0 = _mm512_set1_ps(w[p]), w1 = _mm512_set1_ps(w[p + 1]);
        for (int i = 0; i < nv; i++) {
            e[i] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(v0 + 16 * i), e[i]);
            o[i] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(v1 + 16 * i), o[i]);
        }
    }
    if (p < npos) {
        const float *v0 = v + p * kv_stride;
        const __m512 w0 = _mm512_set1_ps(w[p]);
        for (int i = 0; i < nv; i++) e[i] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(v0 + 16 * i), e[i]);
    }
    for (int i = 0; i < nv; i++) _mm512_storeu_ps(out + 16 * i, _mm512_add_ps(e[i], o[i]));
}

#endif

static int force_portable;

void uq_attn_force_portable(int on) { force_portable = on; }

#ifdef ATTN_X86
static int use_avx512(void)
{
    if (force_portable) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
#endif

/* ------------------------------------------------------------ driver */

void uq_attn_block(const float *q, int64_t q_stride, const float *k, const float *v, int64_t kv_stride,
                   int64_t hd, int64_t pos0, int64_t nq, float scale, float *out, int64_t out_stride,
                   float *scratch)
{
    float *qt = scratch, *s = scratch + hd * LANES;
#ifdef ATTN_X86
    const int wide = use_avx512();
#endif
    for (int64_t g0 = 0; g0 < nq; g0 += LANES) {
        const int g = nq - g0 < LANES ? (int)(nq - g0) : LANES;
        const int64_t p0 = pos0 + g0, npos = p0 + g; /* keys the group sees: 0..npos) */
        transpose_queries(q + g0 * q_stride, q_stride, hd, g, qt);
#ifdef ATTN_X86
        if (wide)
            scores_avx512(qt, k, kv_stride, hd, npos, scale, s);
        else
#endif
            scores_c(qt, k, kv_stride, hd, npos, scale, s);
        mask_diagonal(s, p0, npos);
        uq_softmax_cols16(s, npos);
        for (int r0 = 0; r0 < g; r0 += 4) {
            const int nr = g - r0 < 4 ? g - r0 : 4;
            const int64_t nkeys = p0 + r0 + nr; /* the last of the 4 queries sees keys 0..nkeys) */
            float *o = out + (g0 + r0) * out_stride;
#ifdef ATTN_X86
            if (wide)
                mix_avx512(s, r0, nr, v, kv_stride, hd, nkeys, o, out_stride);
            else
#endif
                mix_c(s, r0, nr, v, kv_stride, hd, nkeys, o, out_stride);
        }
    }
}

void uq_attn_one(const float *q, const float *k, const float *v, int64_t kv_stride, int64_t hd, int64_t npos,
                 float scale, float *out, float *scratch)
{
#ifdef ATTN_X86
    if (hd % 16 == 0 && hd <= 128 && use_avx512()) {
        scores_one_avx512(q, k, kv_stride, hd, npos, scale, scratch);
        uq_softmax_f32(scratch, npos);
        mix_one_avx512(scratch, v, kv_stride, hd, npos, out);
        return;
    }
#endif
    uq_attn_scores(q, k, kv_stride, npos, hd, scale, scratch);
    uq_softmax_f32(scratch, npos);
    uq_attn_mix(scratch, v, kv_stride, npos, hd, out);
}
