/* The tensor driver: parameter checks, sizes, group choice, thread-count
 * invariance, non-finite detection, row-range dequantization. */
#include "testutil.h"
#include "quant/quant.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ----------------------------------------------------------- parameters */

static void expect_invalid(uq_qparams p, int64_t rows, int64_t cols, uq_status want,
                           const char *fragment)
{
    uq_status st = uq_qparams_check_shape(&p, rows, cols);
    if (st != want)
        fail_msg("scheme %d bits %d group %d dtype %d shape [%lld, %lld]: got %s, want %s",
                 (int)p.scheme, p.bits, p.group_size, (int)p.scale_dtype, (long long)rows,
                 (long long)cols, uq_status_name(st), uq_status_name(want));
    if (fragment && !strstr(uq_last_error(), fragment))
        fail_msg("message \"%s\" lacks \"%s\"", uq_last_error(), fragment);
}

static void test_validation(void **state)
{
    (void)state;
    const uq_qparams ok = {UQ_SCHEME_AFFINE, 4, 64, UQ_BF16};
    assert_int_equal(uq_qparams_validate(&ok), UQ_OK);
    assert_int_equal(uq_qparams_check_shape(&ok, 10, 128), UQ_OK);
    assert_int_equal(uq_qparams_check_shape(&ok, 0, 128), UQ_OK);
    for (int bits = 1; bits <= 8; bits++) {
        uq_qparams p = ok;
        p.bits = bits;
        assert_int_equal(uq_qparams_validate(&p), UQ_OK);
    }

    uq_qparams p = ok;
    p.bits = 0;
    expect_invalid(p, 1, 64, UQ_ERR_UNSUPPORTED, "not 0");
    p.bits = 9;
    expect_invalid(p, 1, 64, UQ_ERR_UNSUPPORTED, "not 9");
    p.bits = -3;
    expect_invalid(p, 1, 64, UQ_ERR_UNSUPPORTED, NULL);
    p = ok;
    p.group_size = 12;
    expect_invalid(p, 1, 48, UQ_ERR_UNSUPPORTED, "multiple of 8");
    p.group_size = 0; /* per row is symmetric only */
    expect_invalid(p, 1, 48, UQ_ERR_UNSUPPORTED, "group size 0");
    p.group_size = -8;
    expect_invalid(p, 1, 48, UQ_ERR_UNSUPPORTED, NULL);
    p.group_size = 64;
    expect_invalid(p, 1, 96, UQ_ERR_SHAPE, "does not divide the input dimension 96");
    expect_invalid(p, 1, 32, UQ_ERR_SHAPE, NULL);
    expect_invalid(p, -1, 64, UQ_ERR_SHAPE, NULL);
    expect_invalid(p, 1, 0, UQ_ERR_SHAPE, NULL);
    expect_invalid(p, INT64_MAX / 2, 64, UQ_ERR_SHAPE, "too large");
    p = ok;
    p.scale_dtype = UQ_I8;
    expect_invalid(p, 1, 64, UQ_ERR_DTYPE, "I8");
    p.scale_dtype = UQ_F64;
    expect_invalid(p, 1, 64, UQ_ERR_DTYPE, NULL);
    p = ok;
    p.scheme = (uq_scheme)7;
    expect_invalid(p, 1, 64, UQ_ERR_ARG, NULL);
    assert_int_equal(uq_qparams_validate(NULL), UQ_ERR_ARG);

    p = (uq_qparams){UQ_SCHEME_SYMMETRIC, 1, 64, UQ_F32};
    expect_invalid(p, 1, 64, UQ_ERR_UNSUPPORTED, "1 bit");
    p.bits = 8;
    p.group_size = 0;
    assert_int_equal(uq_qparams_check_shape(&p, 3, 100), UQ_OK); /* any cols per row */
}

static void test_sizes(void **state)
{
    (void)state;
    uq_qparams p = {UQ_SCHEME_AFFINE, 3, 32, UQ_F16};
    assert_int_equal(uq_quant_words_per_row(&p, 96), 9);  /* 288 bits */
    assert_int_equal(uq_quant_groups_per_row(&p, 96), 3);
    assert_int_equal(uq_quant_packed_bytes(&p, 10, 96), 10 * 9 * 4);
    assert_int_equal(uq_quant_scales_bytes(&p, 10, 96), 10 * 3 * 2);
    assert_int_equal(uq_quant_biases_bytes(&p, 10, 96), 10 * 3 * 2);
    p.bits = 4;
    p.group_size = 64;
    p.scale_dtype = UQ_F32;
    assert_int_equal(uq_quant_words_per_row(&p, 4096), 512); /* in * b / 32 */
    assert_int_equal(uq_quant_scales_bytes(&p, 2, 4096), 2 * 64 * 4);
    p.bits = 5;
    p.group_size = 8;
    assert_int_equal(uq_quant_words_per_row(&p, 8), 2); /* 40 bits */
    p = (uq_qparams){UQ_SCHEME_SYMMETRIC, 8, 0, UQ_BF16};
    assert_int_equal(uq_quant_groups_per_row(&p, 100), 1);
    assert_int_equal(uq_quant_scales_bytes(&p, 7, 100), 7 * 2);
    assert_int_equal(uq_quant_biases_bytes(&p, 7, 100), 0);
    assert_int_equal(uq_quant_packed_bytes(&p, 7, 100), 7 * 25 * 4);
}

static void test_pick_group_size(void **state)
{
    (void)state;
    assert_int_equal(uq_pick_group_size(4096, 64), 64);
    assert_int_equal(uq_pick_group_size(4096, 128), 128);
    assert_int_equal(uq_pick_group_size(4096, 32), 32);
    assert_int_equal(uq_pick_group_size(96, 64), 32);
    assert_int_equal(uq_pick_group_size(192, 128), 64);
    assert_int_equal(uq_pick_group_size(384, 0), 128);
    assert_int_equal(uq_pick_group_size(288, 64), 32);
    assert_int_equal(uq_pick_group_size(768, 48), 48);  /* a multiple of 8 dividing cols */
    assert_int_equal(uq_pick_group_size(768, 12), 128); /* not a multiple of 8 */
    assert_int_equal(uq_pick_group_size(172, 64), 0);   /* stories260K's down_proj */
    assert_int_equal(uq_pick_group_size(100, 64), 0);
    assert_int_equal(uq_pick_group_size(16, 64), 0);
    assert_int_equal(uq_pick_group_size(16, 16), 16);
    assert_int_equal(uq_pick_group_size(0, 64), 0);
}

/* ------------------------------------------------------------ the driver */

/* Quantizes src with n_threads into fresh buffers placed at odd addresses. */
typedef struct run {
    unsigned char *pbuf, *sbuf, *bbuf;
    unsigned char *packed, *scales, *biases;
    size_t np, ns, nb;
} run;

static uq_status run_quant(run *r, const uq_qparams *p, uq_dtype dt, const void *src, int64_t rows,
                           int64_t cols, int allow, int n_threads)
{
    r->np = uq_quant_packed_bytes(p, rows, cols);
    r->ns = uq_quant_scales_bytes(p, rows, cols);
    r->nb = uq_quant_biases_bytes(p, rows, cols);
    r->pbuf = malloc(r->np + 3);
    r->sbuf = malloc(r->ns + 3);
    r->bbuf = malloc(r->nb + 3);
    assert_true(r->pbuf && r->sbuf && r->bbuf);
    memset(r->pbuf, 0xCD, r->np + 3);
    memset(r->sbuf, 0xCD, r->ns + 3);
    memset(r->bbuf, 0xCD, r->nb + 3);
    r->packed = r->pbuf + 1;
    r->scales = r->sbuf + 3;
    r->biases = r->bbuf + 1;
    return uq_quantize_tensor(p, dt, src, rows, cols, r->packed, r->scales,
                              p->scheme == UQ_SCHEME_AFFINE ? r->biases : NULL, allow, n_threads);
}

static void run_free(run *r)
{
    free(r->pbuf);
    free(r->sbuf);
    free(r->bbuf);
}

/* A [rows, cols] tensor of normal values in dtype dt, at an odd address. */
static unsigned char *make_src(uq_dtype dt, int64_t rows, int64_t cols, uint64_t seed,
                               unsigned char **base)
{
    size_t n = (size_t)(rows * cols);
    float *f = malloc(n * sizeof(float));
    *base = malloc(n * uq_dtype_size(dt) + 1);
    assert_true(f && *base);
    for (size_t i = 0; i < n; i++) f[i] = 0.02f * tu_rand_normal(&seed);
    assert_int_equal(uq_from_f32(dt, f, *base + 1, n), UQ_OK);
    free(f);
    return *base + 1;
}

static void test_thread_invariance(void **state)
{
    (void)state;
    static const int threads[] = {2, 3, 7, 0, 64};
    const int64_t rows = 37, cols = 256;
    static const uq_dtype dts[] = {UQ_BF16, UQ_F16, UQ_F32};
    for (size_t d = 0; d < 3; d++) {
        unsigned char *base;
        const unsigned char *src = make_src(dts[d], rows, cols, 5 + d, &base);
        for (int scheme = 0; scheme < 2; scheme++) {
            uq_qparams p = {(uq_scheme)scheme, scheme ? 4 : 3, scheme ? 0 : 64, dts[d]};
            run one;
            assert_int_equal(run_quant(&one, &p, dts[d], src, rows, cols, 0, 1), UQ_OK);
            /* every byte written, nothing past the end */
            assert_int_equal(one.pbuf[one.np + 1], 0xCD);
            assert_int_equal(one.sbuf[0], 0xCD);
            for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
                run many;
                assert_int_equal(run_quant(&many, &p, dts[d], src, rows, cols, 0, threads[t]),
                                 UQ_OK);
                assert_memory_equal(one.packed, many.packed, one.np);
                assert_memory_equal(one.scales, many.scales, one.ns);
                assert_memory_equal(one.biases, many.biases, one.nb);
                run_free(&many);
            }
            /* Dequantizing a row range gives the matching slice of the whole. */
            float *all = malloc((size_t)(rows * cols) * sizeof(float));
            float *part = malloc((size_t)(5 * cols) * sizeof(float));
            assert_true(all && part);
            assert_int_equal(uq_dequantize_qtensor(&p, rows, cols, one.packed, one.scales,
                                                  scheme ? NULL : one.biases, all),
                             UQ_OK);
            assert_int_equal(uq_dequantize_rows(&p, cols, one.packed, one.scales,
                                                scheme ? NULL : one.biases, 30, 5, part),
                             UQ_OK);
            assert_memory_equal(part, all + 30 * cols, (size_t)(5 * cols) * sizeof(float));
            /* and matches quantizing row 30 alone */
            float w[256];
            uint8_t codes[256];
            unsigned char pk[256], sc[64], bi[64];
            assert_int_equal(uq_to_f32(dts[d], src + 30 * cols * (int64_t)uq_dtype_size(dts[d]), w,
                                       256),
                             UQ_OK);
            if (scheme == 0) {
                uq_affine_quantize_row(w, 256, 3, 64, dts[d], codes, pk, sc, bi);
                assert_memory_equal(pk, one.packed + 30 * uq_quant_words_per_row(&p, cols) * 4,
                                    uq_quant_words_per_row(&p, cols) * 4);
                assert_memory_equal(sc, one.scales + 30 * 4 * uq_dtype_size(dts[d]),
                                    4 * uq_dtype_size(dts[d]));
                assert_memory_equal(bi, one.biases + 30 * 4 * uq_dtype_size(dts[d]),
                                    4 * uq_dtype_size(dts[d]));
            } else {
                uq_sym_quantize_row(w, 256, 4, 256, dts[d], codes, pk, sc);
                assert_memory_equal(pk, one.packed + 30 * 128, 128);
                assert_memory_equal(sc, one.scales + 30 * uq_dtype_size(dts[d]),
                                    uq_dtype_size(dts[d]));
            }
            free(all);
            free(part);
            run_free(&one);
        }
        free(base);
    }
}

static void test_nonfinite_detected(void **state)
{
    (void)state;
    const int64_t rows = 40, cols = 64;
    size_t n = (size_t)(rows * cols);
    float *w = malloc(n * sizeof(float));
    assert_non_null(w);
    uint64_t rng = 3;
    for (size_t i = 0; i < n; i++) w[i] = tu_rand_normal(&rng);
    w[5 * cols + 17] = NAN;
    w[20 * cols + 3] = INFINITY;
    w[38 * cols + 60] = -INFINITY;
    static const int threads[] = {1, 2, 3, 7, 40};
    for (int scheme = 0; scheme < 2; scheme++) {
        uq_qparams p = {(uq_scheme)scheme, 4, 32, UQ_F32};
        for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
            run r;
            assert_int_equal(run_quant(&r, &p, UQ_F32, w, rows, cols, 0, threads[t]),
                             UQ_ERR_NONFINITE);
            const char *msg = uq_last_error();
            if (!strstr(msg, "row 5, column 17") || !strstr(msg, "NaN"))
                fail_msg("message: %s", msg);
            run_free(&r);
        }
        /* with the NaN gone, the Inf is the first */
        w[5 * cols + 17] = 1.0f;
        run r;
        assert_int_equal(run_quant(&r, &p, UQ_F32, w, rows, cols, 0, 3), UQ_ERR_NONFINITE);
        assert_non_null(strstr(uq_last_error(), "+Inf at row 20, column 3"));
        run_free(&r);
        w[20 * cols + 3] = 1.0f;
        assert_int_equal(run_quant(&r, &p, UQ_F32, w, rows, cols, 0, 2), UQ_ERR_NONFINITE);
        assert_non_null(strstr(uq_last_error(), "-Inf at row 38, column 60"));
        run_free(&r);
        w[5 * cols + 17] = NAN;
        w[20 * cols + 3] = INFINITY;
    }
    /* f16 source: Inf is a value of the dtype itself */
    uint16_t h[16];
    for (int i = 0; i < 16; i++) h[i] = uq_f32_to_f16((float)i);
    h[9] = 0x7c00; /* +Inf */
    uq_qparams p = {UQ_SCHEME_AFFINE, 4, 16, UQ_F16};
    run r;
    assert_int_equal(run_quant(&r, &p, UQ_F16, h, 1, 16, 0, 1), UQ_ERR_NONFINITE);
    assert_non_null(strstr(uq_last_error(), "row 0, column 9"));
    run_free(&r);
    free(w);
}

/* Non-finite values quantized on request: no crash, no undefined behaviour
 * (the sanitizer build checks), and finite groups unaffected. */
static void test_nonfinite_allowed(void **state)
{
    (void)state;
    const int64_t rows = 6, cols = 64;
    size_t n = (size_t)(rows * cols);
    float *w = malloc(n * sizeof(float)), *clean = malloc(n * sizeof(float));
    float *deq = malloc(n * sizeof(float));
    assert_true(w && clean && deq);
    uint64_t rng = 11;
    for (size_t i = 0; i < n; i++) clean[i] = w[i] = tu_rand_normal(&rng);
    /* row 0: one NaN; row 1: +Inf; row 2: -Inf and +Inf in one group;
     * row 3: a whole group of NaN; row 4: NaN and Inf together; row 5 clean */
    w[0 * cols + 3] = NAN;
    w[1 * cols + 40] = INFINITY;
    w[2 * cols + 8] = -INFINITY;
    w[2 * cols + 9] = INFINITY;
    for (int i = 32; i < 64; i++) w[3 * cols + i] = NAN;
    w[4 * cols + 0] = NAN;
    w[4 * cols + 1] = -INFINITY;
    static const uq_dtype sdts[] = {UQ_F32, UQ_F16, UQ_BF16};
    for (int scheme = 0; scheme < 2; scheme++) {
        for (int bits = scheme ? 2 : 1; bits <= 8; bits++) {
            for (size_t d = 0; d < 3; d++) {
                uq_qparams p = {(uq_scheme)scheme, bits, 32, sdts[d]};
                run r, c;
                assert_int_equal(run_quant(&r, &p, UQ_F32, w, rows, cols, 1, 2), UQ_OK);
                assert_int_equal(run_quant(&c, &p, UQ_F32, clean, rows, cols, 0, 2), UQ_OK);
                assert_int_equal(uq_dequantize_qtensor(&p, rows, cols, r.packed, r.scales,
                                                      scheme ? NULL : r.biases, deq),
                                 UQ_OK);
                /* the untouched groups (row 0 group 1, row 1 group 0, row 3 group 0, row 5) */
                size_t wpr = uq_quant_words_per_row(&p, cols), ss = uq_dtype_size(sdts[d]);
                assert_memory_equal(r.packed + 5 * wpr * 4, c.packed + 5 * wpr * 4, wpr * 4);
                assert_memory_equal(r.scales + (0 * 2 + 1) * ss, c.scales + (0 * 2 + 1) * ss, ss);
                assert_memory_equal(r.scales + (1 * 2 + 0) * ss, c.scales + (1 * 2 + 0) * ss, ss);
                assert_memory_equal(r.scales + (3 * 2 + 0) * ss, c.scales + (3 * 2 + 0) * ss, ss);
                for (int64_t i = 0; i < cols; i++) assert_true(isfinite(deq[5 * cols + i]));
                /* a NaN among finite values gets the code of zero in the symmetric scheme */
                if (scheme == 1) {
                    uint8_t code = uq_unpack_at(r.packed, 3, bits);
                    assert_int_equal(code, 1 << (bits - 1));
                }
                uq_qerror e;
                assert_int_equal(uq_quant_error(&p, UQ_F32, w, rows, cols, r.packed, r.scales,
                                                scheme ? NULL : r.biases, &e),
                                 UQ_OK);
                assert_true(e.n < n); /* the non-finite elements are skipped */
                run_free(&r);
                run_free(&c);
            }
        }
    }
    free(w);
    free(clean);
    free(deq);
}

static void test_bad_calls(void **state)
{
    (void)state;
    float w[64] = {0};
    unsigned char packed[64], scales[64], biases[64];
    float out[64];
    uq_qparams p = {UQ_SCHEME_AFFINE, 4, 32, UQ_F32};
    /* source dtype */
    assert_int_equal(uq_quantize_tensor(&p, UQ_I32, w, 1, 64, packed, scales, biases, 0, 1),
                     UQ_ERR_DTYPE);
    assert_non_null(strstr(uq_last_error(), "I32"));
    /* missing buffers */
    assert_int_equal(uq_quantize_tensor(&p, UQ_F32, w, 1, 64, packed, scales, NULL, 0, 1),
                     UQ_ERR_ARG);
    assert_int_equal(uq_quantize_tensor(&p, UQ_F32, NULL, 1, 64, packed, scales, biases, 0, 1),
                     UQ_ERR_ARG);
    assert_int_equal(uq_dequantize_qtensor(&p, 1, 64, packed, scales, NULL, out), UQ_ERR_ARG);
    /* zero rows is fine and touches nothing */
    assert_int_equal(uq_quantize_tensor(&p, UQ_F32, NULL, 0, 64, NULL, NULL, NULL, 0, 4), UQ_OK);
    /* bad parameters reach the driver's caller */
    p.group_size = 48;
    assert_int_equal(uq_quantize_tensor(&p, UQ_F32, w, 1, 64, packed, scales, biases, 0, 1),
                     UQ_ERR_SHAPE);
    p.group_size = 32;
    p.bits = 0;
    assert_int_equal(uq_quantize_tensor(&p, UQ_F32, w, 1, 64, packed, scales, biases, 0, 1),
                     UQ_ERR_UNSUPPORTED);
    p.bits = 4;
    assert_int_equal(uq_dequantize_rows(&p, 64, packed, scales, biases, -1, 1, out), UQ_ERR_SHAPE);
    assert_int_equal(uq_dequantize_rows(&p, 64, packed, scales, biases, INT64_MAX, 1, out),
                     UQ_ERR_SHAPE);
    uq_qerror e;
    assert_int_equal(uq_quant_error(&p, UQ_F32, w, 1, 64, packed, scales, biases, NULL),
                     UQ_ERR_ARG);
    assert_int_equal(uq_quant_error(&p, UQ_U8, w, 1, 64, packed, scales, biases, &e),
                     UQ_ERR_DTYPE);
}

static void test_cancel(void **state)
{
    (void)state;
    float w[4 * 64] = {0};
    unsigned char packed[4 * 32], scales[4 * 8], biases[4 * 8];
    uq_qparams p = {UQ_SCHEME_AFFINE, 4, 32, UQ_F32};
    uq_cancel();
    assert_int_equal(uq_quantize_tensor(&p, UQ_F32, w, 4, 64, packed, scales, biases, 0, 2),
                     UQ_ERR_CANCELLED);
    assert_non_null(strstr(uq_last_error(), "cancelled"));
    uq_cancel_reset();
    assert_int_equal(uq_quantize_tensor(&p, UQ_F32, w, 4, 64, packed, scales, biases, 0, 2), UQ_OK);
}

/* Every matrix of a real model: the group choice (stories260K's FFN of 172
 * has none) and the error bound on trained weights. */
static void test_real_model(void **state)
{
    (void)state;
    const char *rel = "models/stories260K/model.safetensors";
    if (!tu_shared_has(rel)) skip();
    char path[4096];
    uq_st_file *f;
    assert_int_equal(uq_st_open(tu_shared_path(rel, path, sizeof path), &f), UQ_OK);
    int matrices = 0, left_float = 0;
    for (size_t i = 0; i < uq_st_count(f); i++) {
        const uq_tensor *t = uq_st_tensor(f, i);
        if (t->ndim != 2) continue;
        matrices++;
        int g = uq_pick_group_size(t->shape[1], 64);
        if (g == 0) {
            assert_int_equal(t->shape[1], 172);
            left_float++;
            continue;
        }
        for (int scheme = 0; scheme < 2; scheme++) {
            uq_qparams p = {(uq_scheme)scheme, 4, g, UQ_F32};
            run r;
            assert_int_equal(run_quant(&r, &p, t->dtype, t->data, t->shape[0], t->shape[1], 0, 2),
                             UQ_OK);
            uq_qerror e;
            assert_int_equal(uq_quant_error(&p, t->dtype, t->data, t->shape[0], t->shape[1],
                                            r.packed, r.scales, scheme ? NULL : r.biases, &e),
                             UQ_OK);
            assert_int_equal(e.n, t->numel);
            /* one step on clipped elements (affine), half a step otherwise */
            assert_true(e.max_steps <= (scheme ? 0.5 : 1.0) + 1e-3);
            assert_true(e.rel_rmse > 0.01 && e.rel_rmse < 0.2);
            run_free(&r);
        }
    }
    assert_true(matrices > 0);
    assert_true(left_float > 0);
    uq_st_close(f);
}


/* Calls from several threads at once (one gets the shared pool of workers,
 * the others start their own) and from a fork child (which starts without
 * the parent's pool) give the single-threaded result. */
typedef struct concurrent_job {
    const uq_qparams *p;
    const unsigned char *src;
    int64_t rows, cols;
    run r;
    uq_status st;
} concurrent_job;

static void *concurrent_main(void *arg)
{
    concurrent_job *j = arg;
    j->st = UQ_OK;
    for (int i = 0; i < 20 && j->st == UQ_OK; i++) {
        if (i) run_free(&j->r);
        j->st = run_quant(&j->r, j->p, UQ_BF16, j->src, j->rows, j->cols, 0, 3);
    }
    return NULL;
}

static void test_concurrent_calls_and_fork(void **state)
{
    (void)state;
    const int64_t rows = 300, cols = 512;
    unsigned char *base;
    const unsigned char *src = make_src(UQ_BF16, rows, cols, 77, &base);
    uq_qparams p = {UQ_SCHEME_AFFINE, 4, 64, UQ_BF16};
    run one;
    assert_int_equal(run_quant(&one, &p, UQ_BF16, src, rows, cols, 0, 1), UQ_OK);

    concurrent_job jobs[4];
    pthread_t tid[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (concurrent_job){&p, src, rows, cols, {0}, UQ_OK};
        assert_int_equal(pthread_create(&tid[i], NULL, concurrent_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(tid[i], NULL);
        assert_int_equal(jobs[i].st, UQ_OK);
        assert_memory_equal(one.packed, jobs[i].r.packed, one.np);
        assert_memory_equal(one.scales, jobs[i].r.scales, one.ns);
        assert_memory_equal(one.biases, jobs[i].r.biases, one.nb);
        run_free(&jobs[i].r);
    }

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60); /* a child stuck on the parent's pool fails instead of hanging */
        run r;
        int ok = run_quant(&r, &p, UQ_BF16, src, rows, cols, 0, 4) == UQ_OK &&
                 memcmp(one.packed, r.packed, one.np) == 0 &&
                 memcmp(one.scales, r.scales, one.ns) == 0 &&
                 memcmp(one.biases, r.biases, one.nb) == 0;
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    run_free(&one);
    free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_pick_group_size),
        cmocka_unit_test(test_thread_invariance),
        cmocka_unit_test(test_nonfinite_detected),
        cmocka_unit_test(test_nonfinite_allowed),
        cmocka_unit_test(test_bad_calls),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_real_model),
        cmocka_unit_test(test_concurrent_calls_and_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
