/* Symmetric absmax quantization: vectors, zero groups, error bounds, and
 * the refusal of 1 bit. */
#include "testutil.h"
#include "quant/quant.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uq_dtype float_dtypes[] = {UQ_F32, UQ_F16, UQ_BF16};

typedef struct sq {
    uq_qparams p;
    int64_t rows, cols;
    unsigned char *src, *packed, *scales;
    float *deq;
} sq;

static void sq_make(sq *t, const float *w, int64_t rows, int64_t cols, int bits, int g, uq_dtype dt)
{
    t->p = (uq_qparams){UQ_SCHEME_SYMMETRIC, bits, g, dt};
    t->rows = rows;
    t->cols = cols;
    size_t n = (size_t)(rows * cols);
    t->src = malloc(n * uq_dtype_size(dt));
    t->packed = malloc(uq_quant_packed_bytes(&t->p, rows, cols));
    t->scales = malloc(uq_quant_scales_bytes(&t->p, rows, cols));
    t->deq = malloc(n * sizeof(float));
    assert_true(t->src && t->packed && t->scales && t->deq);
    assert_int_equal(uq_quant_biases_bytes(&t->p, rows, cols), 0);
    assert_int_equal(uq_from_f32(dt, w, t->src, n), UQ_OK);
    assert_int_equal(uq_quantize_tensor(&t->p, dt, t->src, rows, cols, t->packed, t->scales, NULL,
                                        0, 1),
                     UQ_OK);
    assert_int_equal(uq_dequantize_qtensor(&t->p, rows, cols, t->packed, t->scales, NULL, t->deq),
                     UQ_OK);
}

static void sq_free(sq *t)
{
    free(t->src);
    free(t->packed);
    free(t->scales);
    free(t->deq);
}

static uint8_t sq_code(const sq *t, int64_t r, int64_t c)
{
    size_t wpr = uq_quant_words_per_row(&t->p, t->cols);
    return uq_unpack_at(t->packed + (size_t)r * wpr * 4, (size_t)c, t->p.bits);
}

static void round_to(uq_dtype dt, float *w, size_t n)
{
    unsigned char *tmp = malloc(n * 4);
    assert_non_null(tmp);
    assert_int_equal(uq_from_f32(dt, w, tmp, n), UQ_OK);
    assert_int_equal(uq_to_f32(dt, tmp, w, n), UQ_OK);
    free(tmp);
}

static void test_vectors(void **state)
{
    (void)state;
    /* 4 bits, absmax 7 = qmax: scale 1, codes q + 8; +-2.5 round to even */
    {
        float w[8] = {7, -7, 3, 0, -1, 2, 2.5f, -2.5f};
        static const uint8_t codes[8] = {15, 1, 11, 8, 7, 10, 10, 6};
        for (size_t d = 0; d < 3; d++) {
            sq t;
            sq_make(&t, w, 1, 8, 4, 8, float_dtypes[d]);
            assert_true(uq_qload(float_dtypes[d], t.scales, 0) == 1.0f);
            for (int k = 0; k < 8; k++) assert_int_equal(sq_code(&t, 0, k), codes[k]);
            assert_memory_equal(t.packed, "\x1F\x8B\xA7\x6A", 4); /* 0x6AA78B1F */
            static const float deq[8] = {7, -7, 3, 0, -1, 2, 2, -2};
            for (int k = 0; k < 8; k++) assert_true(t.deq[k] == deq[k]);
            sq_free(&t);
        }
    }
    /* 2 bits: qmax 1, q in [-2, 1]; -0.5 -> -0 and 0.5 -> 0 (ties to even) */
    {
        float w[8] = {1, -1, 0.4f, 0.6f, -0.5f, 0.5f, -0.6f, 0};
        static const uint8_t codes[8] = {3, 1, 2, 3, 2, 2, 1, 2};
        sq t;
        sq_make(&t, w, 1, 8, 2, 8, UQ_F32);
        assert_true(uq_qload(UQ_F32, t.scales, 0) == 1.0f);
        for (int k = 0; k < 8; k++) assert_int_equal(sq_code(&t, 0, k), codes[k]);
        sq_free(&t);
    }
    /* 8 bits, one scale per row (group 0): absmax 127 -> scale 1 */
    {
        float w[2 * 16];
        for (int i = 0; i < 16; i++) w[i] = (float)(i * 17 - 127); /* -127 .. 128 - 1 */
        w[15] = 127.0f;
        for (int i = 0; i < 16; i++) w[16 + i] = 2.0f * w[i]; /* second row: scale 2 */
        sq t;
        sq_make(&t, w, 2, 16, 8, 0, UQ_F32);
        assert_int_equal(uq_quant_groups_per_row(&t.p, 16), 1);
        assert_true(uq_qload(UQ_F32, t.scales, 0) == 1.0f);
        assert_true(uq_qload(UQ_F32, t.scales, 1) == 2.0f);
        for (int i = 0; i < 16; i++) {
            assert_int_equal(sq_code(&t, 0, i), (int)w[i] + 128);
            assert_int_equal(sq_code(&t, 1, i), (int)w[i] + 128);
            assert_true(t.deq[i] == w[i]);
            assert_true(t.deq[16 + i] == w[16 + i]);
        }
        sq_free(&t);
    }
}

static void test_zero_group(void **state)
{
    (void)state;
    for (size_t d = 0; d < 3; d++) {
        for (int bits = 2; bits <= 8; bits++) {
            float w[32] = {0};
            for (int i = 16; i < 32; i++) w[i] = (float)(i - 20); /* second group not zero */
            sq t;
            sq_make(&t, w, 1, 32, bits, 16, float_dtypes[d]);
            assert_true(uq_qload(float_dtypes[d], t.scales, 0) == 0.0f);
            for (int i = 0; i < 16; i++) {
                assert_int_equal(sq_code(&t, 0, i), 1 << (bits - 1));
                assert_true(t.deq[i] == 0.0f);
            }
            for (int i = 0; i < 32; i++) assert_true(isfinite(t.deq[i]));
            sq_free(&t);
        }
    }
}

/* No clipping: |w| <= absmax maps within [-qmax, qmax], so the error is at
 * most half a step with the fp32 scale, plus what rounding the stored scale
 * adds (|q| * |s - s'|) and a few ulps. */
static void test_error_bounds(void **state)
{
    (void)state;
    static const int groups[] = {0, 8, 32, 128};
    const int64_t rows = 5, cols = 256;
    size_t n = (size_t)(rows * cols);
    float *w = malloc(n * sizeof(float));
    assert_non_null(w);
    uint64_t rng = 4242;
    for (size_t d = 0; d < 3; d++) {
        for (int bits = 2; bits <= 8; bits++) {
            for (size_t gi = 0; gi < 4; gi++) {
                for (size_t i = 0; i < n; i++) w[i] = (i % 29 == 0) ? 0.0f : 0.03f * tu_rand_normal(&rng);
                round_to(float_dtypes[d], w, n);
                sq t;
                sq_make(&t, w, rows, cols, bits, groups[gi], float_dtypes[d]);
                size_t g = groups[gi] ? (size_t)groups[gi] : (size_t)cols;
                int qmax = uq_sym_qmax(bits);
                for (int64_t r = 0; r < rows; r++) {
                    for (size_t c0 = 0; c0 < (size_t)cols; c0 += g) {
                        const float *wg = w + (size_t)r * (size_t)cols + c0;
                        float s = uq_sym_fit(wg, g, bits);
                        float s2 = uq_qload(float_dtypes[d], t.scales,
                                            (size_t)r * ((size_t)cols / g) + c0 / g);
                        for (size_t k = 0; k < g; k++) {
                            uint8_t code = sq_code(&t, r, (int64_t)(c0 + k));
                            int q = (int)code - (qmax + 1);
                            /* q uses the fp32 scale, before rounding */
                            if (s != 0.0f) assert_int_equal(q, (int)rintf(wg[k] / s));
                            assert_true(q >= -qmax && q <= qmax); /* -qmax-1 never needed */
                            double err = fabs((double)wg[k] - t.deq[(size_t)r * (size_t)cols + c0 + k]);
                            double bound = 0.5 * s * (1 + 4 * FLT_EPSILON) + abs(q) * fabs((double)s - s2) +
                                           4 * FLT_EPSILON * fabs(wg[k]) + 1e-37;
                            if (!(err <= bound))
                                fail_msg("%s bits %d g %zu: w %.9g deq %.9g err %.3g > %.3g",
                                         uq_dtype_name(float_dtypes[d]), bits, g, wg[k],
                                         t.deq[(size_t)r * (size_t)cols + c0 + k], err, bound);
                            if (wg[k] == 0.0f) assert_true(t.deq[(size_t)r * (size_t)cols + c0 + k] == 0.0f);
                        }
                    }
                }
                sq_free(&t);
            }
        }
    }
    free(w);
}

static void test_one_bit_refused(void **state)
{
    (void)state;
    uq_qparams p = {UQ_SCHEME_SYMMETRIC, 1, 32, UQ_F16};
    assert_int_equal(uq_qparams_validate(&p), UQ_ERR_UNSUPPORTED);
    assert_non_null(strstr(uq_last_error(), "1 bit"));
    float w[32] = {0};
    unsigned char packed[4], scales[2];
    assert_int_equal(uq_quantize_tensor(&p, UQ_F32, w, 1, 32, packed, scales, NULL, 0, 1),
                     UQ_ERR_UNSUPPORTED);
    assert_non_null(strstr(uq_last_error(), "symmetric"));
    p.bits = 9;
    assert_int_equal(uq_qparams_validate(&p), UQ_ERR_UNSUPPORTED);
    p.bits = 2;
    assert_int_equal(uq_qparams_validate(&p), UQ_OK);
    p.group_size = 0; /* one scale per row */
    assert_int_equal(uq_qparams_validate(&p), UQ_OK);
    p.group_size = 4;
    assert_int_equal(uq_qparams_validate(&p), UQ_ERR_UNSUPPORTED);
}

/* Large f32 weights with f16 scales: the stored scale saturates. */
static void test_scale_saturates(void **state)
{
    (void)state;
    float w[8] = {1e9f, -3e8f, 1, 2, 3, 4, 5, 6};
    uq_qparams p = {UQ_SCHEME_SYMMETRIC, 2, 8, UQ_F16};
    unsigned char packed[4], scales[2];
    assert_int_equal(uq_quantize_tensor(&p, UQ_F32, w, 1, 8, packed, scales, NULL, 0, 1), UQ_OK);
    assert_true(uq_qload(UQ_F16, scales, 0) == 65504.0f);
    /* extremes of the dtypes stored in themselves stay finite */
    static const float maxes[] = {FLT_MAX, 65504.0f, 3.38953139e38f};
    for (size_t d = 0; d < 3; d++) {
        for (int bits = 2; bits <= 8; bits++) {
            float x[8] = {maxes[d], -maxes[d], 0, 1, -1, 0.5f, 2, 3};
            sq t;
            sq_make(&t, x, 1, 8, bits, 8, float_dtypes[d]);
            assert_true(isfinite(uq_qload(float_dtypes[d], t.scales, 0)));
            for (int i = 0; i < 8; i++) assert_true(isfinite(t.deq[i]));
            sq_free(&t);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_zero_group),
        cmocka_unit_test(test_error_bounds),
        cmocka_unit_test(test_one_bit_refused),
        cmocka_unit_test(test_scale_saturates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
