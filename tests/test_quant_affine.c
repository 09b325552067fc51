/* MLX affine quantization: hand-computed vectors, edge cases, error bounds,
 * and a bit-for-bit comparison with an independent scalar reference. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "testutil.h"
#include "quant/quant.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uq_dtype float_dtypes[] = {UQ_F32, UQ_F16, UQ_BF16};
#define BF16_MAX 3.38953139e38f

/* ---------------------------------------------------------------- helpers */

/* Rounds values in place to what dtype dt can hold. */
static void round_to(uq_dtype dt, float *w, size_t n)
{
    unsigned char *tmp = malloc(n * 4);
    assert_non_null(tmp);
    assert_int_equal(uq_from_f32(dt, w, tmp, n), UQ_OK);
    assert_int_equal(uq_to_f32(dt, tmp, w, n), UQ_OK);
    free(tmp);
}

/* A quantized tensor with its buffers, made from f32 values stored as dt
 * (the values must already be representable in dt). */
typedef struct qt {
    uq_qparams p;
    int64_t rows, cols;
    unsigned char *src, *packed, *scales, *biases;
    float *deq;
} qt;

static void qt_make(qt *t, const float *w, int64_t rows, int64_t cols, int bits, int g, uq_dtype dt)
{
    t->p = (uq_qparams){UQ_SCHEME_AFFINE, bits, g, dt};
    t->rows = rows;
    t->cols = cols;
    size_t n = (size_t)(rows * cols);
    t->src = malloc(n * uq_dtype_size(dt));
    t->packed = malloc(uq_quant_packed_bytes(&t->p, rows, cols));
    t->scales = malloc(uq_quant_scales_bytes(&t->p, rows, cols));
    t->biases = malloc(uq_quant_biases_bytes(&t->p, rows, cols));
    t->deq = malloc(n * sizeof(float));
    assert_true(t->src && t->packed && t->scales && t->biases && t->deq);
    assert_int_equal(uq_from_f32(dt, w, t->src, n), UQ_OK);
    assert_int_equal(uq_quantize_tensor(&t->p, dt, t->src, rows, cols, t->packed, t->scales,
                                        t->biases, 0, 1),
                     UQ_OK);
    assert_int_equal(
        uq_dequantize_qtensor(&t->p, rows, cols, t->packed, t->scales, t->biases, t->deq), UQ_OK);
}

static void qt_free(qt *t)
{
    free(t->src);
    free(t->packed);
    free(t->scales);
    free(t->biases);
    free(t->deq);
}

static float qt_scale(const qt *t, size_t i) { return uq_qload(t->p.scale_dtype, t->scales, i); }
static float qt_bias(const qt *t, size_t i) { return uq_qload(t->p.scale_dtype, t->biases, i); }

static uint8_t qt_code(const qt *t, int64_t r, int64_t c)
{
    size_t wpr = uq_quant_words_per_row(&t->p, t->cols);
    return uq_unpack_at(t->packed + (size_t)r * wpr * 4, (size_t)c, t->p.bits);
}

/* Checks every element against the error bound. With the fp32 parameters
 * (s, b) an element is within half a step of its code's value, or within one
 * step when it lies beyond the last code (clipped); storing s and b rounded
 * adds at most q * |s - s'| + |b - b'|; the fp32 operations add a few ulps. */
static void check_error_bound(const qt *t, const float *w)
{
    size_t g = (size_t)t->p.group_size, cols = (size_t)t->cols;
    float n_bins = (float)((1 << t->p.bits) - 1);
    for (int64_t r = 0; r < t->rows; r++) {
        for (size_t gi = 0; gi < cols / g; gi++) {
            const float *wg = w + (size_t)r * cols + gi * g;
            uq_affine_param p = uq_affine_fit(wg, g, t->p.bits);
            size_t si = (size_t)r * (cols / g) + gi;
            double s = p.scale, b = p.bias, s2 = qt_scale(t, si), b2 = qt_bias(t, si);
            assert_true(isfinite(s2) && isfinite(b2));
            for (size_t k = 0; k < g; k++) {
                size_t c = gi * g + k;
                double x = wg[k];
                double tq = rint((x - b) / s);
                int clipped = tq < 0 || tq > n_bins;
                uint8_t q = qt_code(t, r, (int64_t)c);
                double y = t->deq[(size_t)r * cols + c];
                double err = fabs(x - y);
                double slack = 8 * FLT_EPSILON * (fabs(x) + fabs(b2) + q * fabs(s2)) + 1e-37;
                double bound = (clipped ? 1.0 : 0.5) * fabs(s) * (1 + 4 * FLT_EPSILON) +
                               q * fabs(s - s2) + fabs(b - b2) + slack;
                if (!(err <= bound))
                    fail_msg("bits %d g %zu %s: row %lld col %zu w %.9g deq %.9g err %.3g > %.3g "
                             "(s %.9g b %.9g q %d)",
                             t->p.bits, g, uq_dtype_name(t->p.scale_dtype), (long long)r, c, x, y,
                             err, bound, s, b, q);
                if (x == 0.0) {
                    /* zero sits on the grid: (0 - b) / s is an integer */
                    double z = (0.0 - b) / s;
                    assert_true(fabs(z - rint(z)) < 1e-3);
                }
            }
        }
    }
}

/* ----------------------------------------------------- hand-computed vectors */

typedef struct vec_case {
    int bits;
    float w[8];
    float scale, bias;
    uint8_t codes[8];
    uint32_t word; /* the first packed word (the whole row but at 8 bits) */
    float deq[8];
} vec_case;

static const vec_case vec_cases[] = {
    /* min 0, max 3 at 2 bits: scale -1, the max is the edge */
    {2, {0, 1, 2, 3, 0, 1, 2, 3}, -1.0f, 3.0f, {3, 2, 1, 0, 3, 2, 1, 0}, 0x1B1Bu,
     {0, 1, 2, 3, 0, 1, 2, 3}},
    /* |min| > |max|: scale (1 - -4)/3 = 1.667, q0 = rint(-2.4) = -2, scale 2;
     * 1 -> (1 + 4)/2 = 2.5 and -3 -> 0.5 round to even */
    {2, {-4, -3, -2, -1, 0, 1, 0.5f, -0.5f}, 2.0f, -4.0f, {0, 0, 1, 2, 2, 2, 2, 2}, 0xAA90u,
     {-4, -4, -2, 0, 0, 0, 0, 0}},
    /* all negative at 4 bits: scale 7/15, q0 = rint(-32.14) = -32, scale 15/32 */
    {4, {-15, -14, -13, -12, -11, -10, -9, -8}, 0.46875f, -15.0f, {0, 2, 4, 6, 9, 11, 13, 15},
     0xFDB96420u, {-15, -14.0625f, -13.125f, -12.1875f, -10.78125f, -9.84375f, -8.90625f, -7.96875f}},
    /* 3 bits: scale -7.5/7, q0 = rint(-6.53) = -7, scale -1; -0.5 gives 7.5,
     * rounds to 8 and is clipped to 7 */
    {3, {1, 2, 3, 4, 5, 6, 7, -0.5f}, -1.0f, 7.0f, {6, 5, 4, 3, 2, 1, 0, 7}, 0xE0A72Eu,
     {1, 2, 3, 4, 5, 6, 7, 0}},
    /* 1 bit */
    {1, {0, 1, 0, 1, 0, 1, 0, 1}, -1.0f, 1.0f, {1, 0, 1, 0, 1, 0, 1, 0}, 0x55u,
     {0, 1, 0, 1, 0, 1, 0, 1}},
    /* 1 bit, |min| == |max|: q0 = rint(1 / -2) = -0, so bias 0 and scale -2;
     * every value lands on code 0 (+-0.5 round to even) */
    {1, {1, -1, 1, -1, 0.25f, -0.25f, 0, 0}, -2.0f, 0.0f, {0, 0, 0, 0, 0, 0, 0, 0}, 0x0u,
     {0, 0, 0, 0, 0, 0, 0, 0}},
    /* 8 bits: range 255, scale -1, q = 200 - w */
    {8, {200, -55, 0, 100, 1, 2, 3, 4}, -1.0f, 200.0f, {0, 255, 200, 100, 199, 198, 197, 196},
     0x64C8FF00u, {200, -55, 0, 100, 1, 2, 3, 4}},
};

static void test_hand_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vec_cases / sizeof vec_cases[0]; i++) {
        const vec_case *v = &vec_cases[i];
        for (size_t d = 0; d < 3; d++) {
            qt t;
            qt_make(&t, v->w, 1, 8, v->bits, 8, float_dtypes[d]);
            assert_true(qt_scale(&t, 0) == v->scale);
            assert_true(qt_bias(&t, 0) == v->bias);
            for (int k = 0; k < 8; k++) {
                assert_int_equal(qt_code(&t, 0, k), v->codes[k]);
                if (t.deq[k] != v->deq[k])
                    fail_msg("case %zu %s: deq[%d] = %.9g, want %.9g", i,
                             uq_dtype_name(float_dtypes[d]), k, t.deq[k], v->deq[k]);
            }
            uint32_t word = (uint32_t)t.packed[0] | (uint32_t)t.packed[1] << 8 |
                            (uint32_t)t.packed[2] << 16 | (uint32_t)t.packed[3] << 24;
            assert_int_equal(word, v->word);
            qt_free(&t);
        }
    }
}

/* ------------------------------------------------------------- edge cases */

static void test_constant_group(void **state)
{
    (void)state;
    static const float values[] = {0.3f, -0.3f, 1234.5f, -7.25f, 1e-3f, -1e-5f, 42.0f};
    for (size_t d = 0; d < 3; d++) {
        for (int bits = 1; bits <= 8; bits++) {
            for (size_t vi = 0; vi < sizeof values / sizeof values[0]; vi++) {
                float w[16];
                for (int i = 0; i < 16; i++) w[i] = values[vi];
                round_to(float_dtypes[d], w, 16);
                qt t;
                qt_make(&t, w, 1, 16, bits, 8, float_dtypes[d]);
                for (int i = 0; i < 16; i++) assert_true(t.deq[i] == w[i]);
                qt_free(&t);
            }
        }
    }
    /* Huge constants (f32 / bf16 only): edge / eps overflows in fp32. */
    static const float huge[] = {3.0e38f, -3.0e38f, 1e35f, -5e31f};
    for (size_t d = 0; d < 3; d++) {
        if (float_dtypes[d] == UQ_F16) continue;
        for (int bits = 1; bits <= 8; bits++) {
            for (size_t vi = 0; vi < sizeof huge / sizeof huge[0]; vi++) {
                float w[8];
                for (int i = 0; i < 8; i++) w[i] = huge[vi];
                round_to(float_dtypes[d], w, 8);
                qt t;
                qt_make(&t, w, 1, 8, bits, 8, float_dtypes[d]);
                assert_true(isfinite(qt_scale(&t, 0)) && qt_scale(&t, 0) != 0.0f);
                for (int i = 0; i < 8; i++) assert_true(t.deq[i] == w[i]);
                qt_free(&t);
            }
        }
    }
}

static void test_zero_group(void **state)
{
    (void)state;
    float w[64] = {0};
    for (size_t d = 0; d < 3; d++) {
        for (int bits = 1; bits <= 8; bits++) {
            qt t;
            qt_make(&t, w, 2, 32, bits, 8, float_dtypes[d]);
            for (size_t gi = 0; gi < 8; gi++) {
                float s = qt_scale(&t, gi);
                assert_true(isfinite(s) && s != 0.0f);
                assert_true(qt_bias(&t, gi) == 0.0f);
            }
            for (int i = 0; i < 64; i++) {
                assert_int_equal(qt_code(&t, i / 32, i % 32), 0);
                assert_true(t.deq[i] == 0.0f);
            }
            qt_free(&t);
        }
    }
}

static void test_dtype_extremes(void **state)
{
    (void)state;
    static const float maxes[] = {FLT_MAX, 65504.0f, BF16_MAX};
    uint64_t rng = 99;
    for (size_t d = 0; d < 3; d++) {
        uq_dtype dt = float_dtypes[d];
        float m = maxes[d];
        for (int bits = 1; bits <= 8; bits++) {
            for (int layout = 0; layout < 4; layout++) {
                float w[32];
                for (int i = 0; i < 32; i++) w[i] = tu_rand_normal(&rng);
                /* +-max together, +max alone, -max alone, and both twice */
                if (layout == 0 || layout == 3) w[3] = m, w[17] = -m;
                if (layout == 1) w[5] = m;
                if (layout == 2) w[30] = -m;
                if (layout == 3) w[0] = -m, w[31] = m;
                round_to(dt, w, 32);
                qt t;
                qt_make(&t, w, 1, 32, bits, 32, dt);
                float s = qt_scale(&t, 0), b = qt_bias(&t, 0);
                if (!isfinite(s) || !isfinite(b) || s == 0.0f)
                    fail_msg("%s bits %d layout %d: scale %g bias %g", uq_dtype_name(dt), bits,
                             layout, s, b);
                for (int i = 0; i < 32; i++) assert_true(isfinite(t.deq[i]));
                /* the extreme of larger magnitude (the first one for ties) is exact */
                float edge = layout != 2 ? m : -m;
                for (int i = 0; i < 32; i++)
                    if (w[i] == edge && bits > 1) assert_true(t.deq[i] == edge);
                if (bits > 1 || layout == 1 || layout == 2) check_error_bound(&t, w);
                qt_free(&t);
            }
        }
    }
}

static void test_subnormal_values(void **state)
{
    (void)state;
    uint64_t rng = 7;
    for (size_t d = 0; d < 3; d++) {
        uq_dtype dt = float_dtypes[d];
        /* the dtype's smallest normal: f16 2^-14, f32 / bf16 2^-126 */
        float tiny = dt == UQ_F16 ? 0x1p-14f : 0x1p-126f;
        for (int bits = 1; bits <= 8; bits++) {
            float w[64];
            for (int i = 0; i < 64; i++) w[i] = tiny * 0.9f * tu_rand_normal(&rng) * 0.3f;
            w[7] = 0.0f;
            w[40] = tiny * 0.25f; /* subnormal in every dtype */
            round_to(dt, w, 64);
            qt t;
            qt_make(&t, w, 1, 64, bits, 32, dt);
            for (int i = 0; i < 64; i++) assert_true(isfinite(t.deq[i]));
            check_error_bound(&t, w);
            qt_free(&t);
        }
    }
}

/* -------------------------------------------------- error bounds, random data */

static void test_error_bounds_random(void **state)
{
    (void)state;
    static const int groups[] = {8, 32, 64, 128};
    const int64_t rows = 4, cols = 256;
    float *w = malloc((size_t)(rows * cols) * sizeof(float));
    assert_non_null(w);
    uint64_t rng = 2024;
    for (size_t d = 0; d < 3; d++) {
        for (int bits = 1; bits <= 8; bits++) {
            for (size_t gi = 0; gi < 4; gi++) {
                for (int64_t i = 0; i < rows * cols; i++) {
                    float x = 0.05f * tu_rand_normal(&rng);
                    if (i % 37 == 0) x = 0.0f;
                    if (i % 101 == 5) x *= 10.0f; /* an outlier now and then */
                    w[i] = x;
                }
                round_to(float_dtypes[d], w, (size_t)(rows * cols));
                qt t;
                qt_make(&t, w, rows, cols, bits, groups[gi], float_dtypes[d]);
                check_error_bound(&t, w);
                qt_free(&t);
            }
        }
    }
    free(w);
}

/* The same bound stated with the stored scale only, where the scale is
 * stored exactly enough: f32 scales, error <= 0.5 step unclipped, 1 step clipped. */
static void test_error_in_stored_steps_f32(void **state)
{
    (void)state;
    const int64_t rows = 8, cols = 512;
    float *w = malloc((size_t)(rows * cols) * sizeof(float));
    assert_non_null(w);
    uint64_t rng = 77;
    for (int64_t i = 0; i < rows * cols; i++) w[i] = tu_rand_normal(&rng);
    for (int bits = 1; bits <= 8; bits++) {
        qt t;
        qt_make(&t, w, rows, cols, bits, 64, UQ_F32);
        uq_qerror e;
        assert_int_equal(uq_quant_error(&t.p, UQ_F32, t.src, rows, cols, t.packed, t.scales,
                                        t.biases, &e),
                         UQ_OK);
        assert_int_equal(e.n, (uint64_t)(rows * cols));
        assert_true(e.max_steps <= 1.0 + 1e-3);
        assert_true(e.max_abs > 0.0 && e.rmse > 0.0 && e.rmse <= e.max_abs);
        assert_true(e.max_row >= 0 && e.max_col >= 0);
        float n_bins = (float)((1 << bits) - 1);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t c = 0; c < cols; c++) {
                size_t si = (size_t)(r * (cols / 64) + c / 64);
                float s = qt_scale(&t, si), b = qt_bias(&t, si);
                float x = w[r * cols + c];
                float tq = rintf((x - b) / s);
                int clipped = tq < 0 || tq > n_bins;
                double err = fabs((double)x - t.deq[r * cols + c]);
                assert_true(err <= (clipped ? 1.0 : 0.5) * fabs(s) * (1 + 1e-5) + 1e-5);
            }
        }
        /* coarser widths have larger errors */
        if (bits == 2) assert_true(e.rel_rmse > 0.1);
        if (bits == 8) assert_true(e.rel_rmse < 0.01);
        qt_free(&t);
    }
    free(w);
}

/* ------------------------------------------------ independent reference */

/* FORMATS.md section 1, written out plainly, plus a bit-by-bit packer. */
static uint16_t ref_to16(uq_dtype dt, float v)
{
    return dt == UQ_F16 ? uq_f32_to_f16(v) : uq_f32_to_bf16(v);
}

static void ref_store(uq_dtype dt, unsigned char *dst, size_t i, float v)
{
    if (dt == UQ_F32) {
        memcpy(dst + 4 * i, &v, 4);
    } else {
        uint16_t h = ref_to16(dt, v);
        dst[2 * i] = (unsigned char)(h & 0xff);
        dst[2 * i + 1] = (unsigned char)(h >> 8);
    }
}

static void ref_affine(const float *w, int rows, int cols, int bits, int g, uq_dtype dt,
                       unsigned char *packed, unsigned char *scales, unsigned char *biases)
{
    int words = (cols * bits + 31) / 32;
    memset(packed, 0, (size_t)rows * (size_t)words * 4);
    for (int r = 0; r < rows; r++) {
        unsigned char *row = packed + (size_t)r * (size_t)words * 4;
        for (int gi = 0; gi < cols / g; gi++) {
            const float *x = w + r * cols + gi * g;
            float wmin = x[0], wmax = x[0];
            for (int i = 1; i < g; i++) {
                if (x[i] < wmin) wmin = x[i];
                if (x[i] > wmax) wmax = x[i];
            }
            float n_bins = (float)((1 << bits) - 1);
            float eps = 1e-7f;
            int mask = fabsf(wmin) > fabsf(wmax);
            float scale = fmaxf((wmax - wmin) / n_bins, eps);
            if (!mask) scale = -scale;
            float edge = mask ? wmin : wmax;
            float q0 = rintf(edge / scale);
            float bias = 0.0f;
            if (q0 != 0.0f) {
                scale = edge / q0;
                bias = edge;
            }
            for (int i = 0; i < g; i++) {
                float q = rintf((x[i] - bias) / scale);
                q = fminf(fmaxf(q, 0.0f), n_bins);
                unsigned code = (unsigned)q;
                int pos = (gi * g + i) * bits;
                for (int j = 0; j < bits; j++)
                    if ((code >> j) & 1u) row[(pos + j) / 8] |= (unsigned char)(1u << ((pos + j) % 8));
            }
            ref_store(dt, scales, (size_t)(r * (cols / g) + gi), scale);
            ref_store(dt, biases, (size_t)(r * (cols / g) + gi), bias);
        }
    }
}

static void test_matches_reference(void **state)
{
    (void)state;
    static const int bit_widths[] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const int groups[] = {8, 32, 64, 128};
    const int rows = 6, cols = 384;
    size_t n = (size_t)rows * cols;
    float *w = malloc(n * sizeof(float));
    unsigned char *rp = malloc(n), *rs = malloc(n * 4), *rb = malloc(n * 4);
    assert_true(w && rp && rs && rb);
    uint64_t rng = 31337;
    int compared = 0;
    for (size_t d = 0; d < 3; d++) {
        uq_dtype dt = float_dtypes[d];
        for (size_t i = 0; i < n; i++) {
            float x = 0.02f * tu_rand_normal(&rng);
            if (i % 53 == 0) x *= 8.0f;
            w[i] = x;
        }
        for (int i = 0; i < 128; i++) w[2 * cols + i] = fabsf(w[2 * cols + i]); /* all positive */
        for (int i = 0; i < 128; i++) w[3 * cols + i] = -fabsf(w[3 * cols + i]); /* all negative */
        for (int i = 0; i < 32; i++) w[4 * cols + i] = 0.125f; /* constant */
        for (int i = 32; i < 64; i++) w[4 * cols + i] = 0.0f;  /* zero */
        round_to(dt, w, n);
        for (size_t bi = 0; bi < sizeof bit_widths / sizeof bit_widths[0]; bi++) {
            for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
                int bits = bit_widths[bi], g = groups[gi];
                qt t;
                qt_make(&t, w, rows, cols, bits, g, dt);
                ref_affine(w, rows, cols, bits, g, dt, rp, rs, rb);
                assert_memory_equal(t.packed, rp, uq_quant_packed_bytes(&t.p, rows, cols));
                assert_memory_equal(t.scales, rs, uq_quant_scales_bytes(&t.p, rows, cols));
                assert_memory_equal(t.biases, rb, uq_quant_biases_bytes(&t.p, rows, cols));
                compared++;
                qt_free(&t);
            }
        }
    }
    assert_int_equal(compared, 3 * 8 * 4);
    free(w);
    free(rp);
    free(rs);
    free(rb);
}

/* Scales stored in a narrower dtype than the weights saturate rather than
 * overflow to Inf. */
static void test_saturating_store(void **state)
{
    (void)state;
    unsigned char buf[8];
    assert_true(uq_qstore(UQ_F16, buf, 0, 1e6f) == 65504.0f);
    assert_true(uq_qstore(UQ_F16, buf, 1, -70000.0f) == -65504.0f);
    assert_true(uq_qstore(UQ_F16, buf, 2, 65520.0f) == 65504.0f); /* rounds to Inf unsaturated */
    assert_true(uq_qstore(UQ_BF16, buf, 0, FLT_MAX) == BF16_MAX);
    assert_true(uq_qstore(UQ_BF16, buf, 1, -FLT_MAX) == -BF16_MAX);
    assert_true(isinf(uq_qstore(UQ_F16, buf, 0, INFINITY)));
    assert_true(isnan(uq_qstore(UQ_BF16, buf, 0, NAN)));
    assert_true(uq_qstore(UQ_F16, buf, 3, 1.0f / 3.0f) == uq_f16_to_f32(uq_f32_to_f16(1.0f / 3.0f)));
    assert_true(uq_qload(UQ_F16, buf, 3) == uq_f16_to_f32(uq_f32_to_f16(1.0f / 3.0f)));
    assert_true(uq_qstore(UQ_F32, buf + 1, 0, 1e30f) == 1e30f); /* unaligned */
    assert_true(uq_qload(UQ_F32, buf + 1, 0) == 1e30f);

    /* f32 weights of magnitude 1e6 with f16 scales at 1 bit */
    float w[8] = {1e6f, -1e6f, 0, 0, 0, 0, 0, 0};
    uq_qparams p = {UQ_SCHEME_AFFINE, 1, 8, UQ_F16};
    unsigned char packed[4], scales[2], biases[2];
    assert_int_equal(uq_quantize_tensor(&p, UQ_F32, w, 1, 8, packed, scales, biases, 0, 1), UQ_OK);
    assert_true(isfinite(uq_qload(UQ_F16, scales, 0)));
    assert_true(isfinite(uq_qload(UQ_F16, biases, 0)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_vectors),
        cmocka_unit_test(test_constant_group),
        cmocka_unit_test(test_zero_group),
        cmocka_unit_test(test_dtype_extremes),
        cmocka_unit_test(test_subnormal_values),
        cmocka_unit_test(test_error_bounds_random),
        cmocka_unit_test(test_error_in_stored_steps_f32),
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_saturating_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
