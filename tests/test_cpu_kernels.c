/* The "cpu" backend against cpu-ref: every kernel level this machine runs
 * (generic, AVX2, AVX-512, NEON, forced in turn), every scheme and width,
 * scale dtypes, group sizes, odd shapes, input counts, thread counts, wide
 * dynamic ranges, zero and non-finite inputs.
 *
 * Quantized weights are held, output by output, to the bound documented in
 * cpu.c (the worst case of rounding the inputs to int8 per block of 32 or 64,
 * plus float rounding); on Gaussian inputs the RMS error over a product of 64
 * outputs or more must also stay under 2e-2 of the RMS of cpu-ref's outputs. Float weights
 * (and quantized ones the integer kernels leave to the float path) are held
 * to 1e-5 of sum |w x|. */
#include "testutil.h"

#include "backend/backend.h"
#include "backend/cpu/cpu_kernels.h"
#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ fixtures */

typedef struct qmat {
    uq_qparams qp;
    int64_t rows, cols, groups;
    uint32_t *packed;
    void *scales, *biases;
    float *deq; /* dequantized [rows, cols] */
    uq_tensor tw, ts, tb;
    uq_weight w;
} qmat;

static uq_pool *pools[4]; /* 1, 2 and 3 threads */

static int setup(void **state)
{
    (void)state;
    for (int t = 1; t <= 3; t++)
        if (uq_pool_create(t, &pools[t]) != UQ_OK) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int t = 1; t <= 3; t++) uq_pool_free(pools[t]);
    uq_cpu_force_level(-1);
    return 0;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* Weight values: Gaussian, each row scaled by 10^(-3..3) when wide. */
static float *random_matrix(int64_t rows, int64_t cols, int wide, uint64_t *seed)
{
    float *w = xmalloc((size_t)(rows * cols) * sizeof *w);
    for (int64_t r = 0; r < rows; r++) {
        float s = wide ? powf(10.0f, (float)((int)(tu_rand_u64(seed) % 7) - 3)) : 1.0f;
        for (int64_t c = 0; c < cols; c++) w[r * cols + c] = s * tu_rand_normal(seed);
    }
    return w;
}

static void qmat_make(qmat *m, uq_scheme scheme, int bits, int group, uq_dtype sdt, int64_t rows, int64_t cols,
                      int wide, uint64_t *seed)
{
    memset(m, 0, sizeof *m);
    m->qp = (uq_qparams){scheme, bits, group, sdt};
    assert_int_equal(uq_qparams_check_shape(&m->qp, rows, cols), UQ_OK);
    m->rows = rows;
    m->cols = cols;
    m->groups = (int64_t)uq_quant_groups_per_row(&m->qp, cols);
    float *src = random_matrix(rows, cols, wide, seed);
    m->packed = xmalloc(uq_quant_packed_bytes(&m->qp, rows, cols));
    m->scales = xmalloc(uq_quant_scales_bytes(&m->qp, rows, cols));
    m->biases = scheme == UQ_SCHEME_AFFINE ? xmalloc(uq_quant_biases_bytes(&m->qp, rows, cols)) : NULL;
    assert_int_equal(uq_quantize_tensor(&m->qp, UQ_F32, src, rows, cols, m->packed, m->scales, m->biases, 0, 1),
                     UQ_OK);
    free(src);
    m->deq = xmalloc((size_t)(rows * cols) * sizeof(float));
    assert_int_equal(uq_dequantize_qtensor(&m->qp, rows, cols, m->packed, m->scales, m->biases, m->deq), UQ_OK);
    int64_t words = (int64_t)uq_quant_words_per_row(&m->qp, cols);
    m->tw = (uq_tensor){.name = "w.weight", .dtype = UQ_U32, .ndim = 2, .shape = {rows, words}, .data = m->packed};
    m->ts = (uq_tensor){.name = "w.scales", .dtype = sdt, .ndim = 2, .shape = {rows, m->groups}, .data = m->scales};
    m->tb = (uq_tensor){.name = "w.biases", .dtype = sdt, .ndim = 2, .shape = {rows, m->groups}, .data = m->biases};
    m->w = (uq_weight){
        .module = "w",
        .quantized = 1,
        .scheme = scheme,
        .bits = bits,
        .group_size = group ? group : (int)cols,
        .rows = rows,
        .cols = cols,
        .dtype = sdt,
        .weight = &m->tw,
        .scales = &m->ts,
        .biases = m->biases ? &m->tb : NULL,
    };
}

static void qmat_free(qmat *m)
{
    free(m->packed);
    free(m->scales);
    free(m->biases);
    free(m->deq);
}

/* Inputs: kind 0 Gaussian; 1 wide (each block of 32 scaled by 10^(-6..4), a
 * few outliers of 1e4); rows listed in zero_rows are all zero. */
static float *random_inputs(int64_t n, int64_t cols, int kind, uint64_t *seed)
{
    float *x = xmalloc((size_t)(n * cols) * sizeof *x);
    for (int64_t t = 0; t < n; t++) {
        float s = 1;
        for (int64_t c = 0; c < cols; c++) {
            if (kind == 1 && c % 32 == 0) s = powf(10.0f, (float)((int)(tu_rand_u64(seed) % 11) - 6));
            float v = s * tu_rand_normal(seed);
            if (kind == 1 && tu_rand_u64(seed) % 97 == 0) v = (tu_rand_u64(seed) & 1) ? 1e4f : -1e4f;
            x[t * cols + c] = v;
        }
        if (n > 2 && t % 5 == 2) memset(x + t * cols, 0, (size_t)cols * sizeof *x); /* all-zero rows */
    }
    return x;
}

/* y [n, rows] through backend ops with the given pool (forcing level lvl for "cpu"). */
static float *run(const uq_backend_ops *ops, int lvl, int threads, const uq_weight *w, const float *x, int64_t n,
                  int64_t max_cols)
{
    if (ops == &uq_backend_cpu) assert_true(uq_cpu_force_level(lvl));
    uq_backend b = {.ops = ops, .pool = pools[threads]};
    assert_int_equal(ops->init(&b, max_cols), UQ_OK);
    if (ops == &uq_backend_cpu) assert_string_equal(uq_cpu_backend_kernels(&b), uq_cpu_level_name((uq_cpu_level)lvl));
    float *y = xmalloc((size_t)(n * w->rows) * sizeof *y);
    for (int64_t i = 0; i < n * w->rows; i++) y[i] = -12345.0f;
    ops->matmul(&b, w, x, n, y);
    ops->release(&b);
    return y;
}

static float *run_ref(const uq_weight *w, const float *x, int64_t n)
{
    return run(&uq_backend_cpu_ref, -1, 1, w, x, n, w->cols);
}

/* ---------------------------------------------------------- tolerances */

static int uses_int8(const qmat *m)
{
    int64_t g = m->qp.group_size ? m->qp.group_size : m->cols;
    return m->cols % 32 == 0 && g % 32 == 0;
}

/* The documented bound for output (t, r) of a quantized weight. Inputs are
 * rounded per block of 32, or of 64 where the kernels may use those (the
 * looser bound holds for both). */
static double qbound(const qmat *m, const float *x, int64_t t, int64_t r, double *sum_abs_wx)
{
    const int64_t cols = m->cols, g = m->qp.group_size ? m->qp.group_size : cols;
    const int64_t B = cols % 64 == 0 && g % 64 == 0 ? 64 : 32;
    const float *xr = x + t * cols, *wr = m->deq + r * cols;
    const size_t words = uq_quant_words_per_row(&m->qp, cols);
    const uint32_t *row = m->packed + (size_t)r * words;
    double in8 = 0, s_wx = 0, s_qsx = 0, s_bx = 0;
    for (int64_t blk = 0; blk * B < cols; blk++) {
        double amax = 0;
        for (int64_t c = blk * B; c < cols && c < blk * B + B; c++) amax = fmax(amax, fabs(xr[c]));
        for (int64_t c = blk * B; c < cols && c < blk * B + B; c++) {
            size_t gi = (size_t)(r * m->groups + c / g);
            double s = uq_qload(m->qp.scale_dtype, m->scales, gi);
            double b = m->biases ? uq_qload(m->qp.scale_dtype, m->biases, gi) : -(double)(1 << (m->qp.bits - 1)) * s;
            double qs = fabs((double)uq_unpack_at(row, (size_t)c, m->qp.bits) * s);
            in8 += fabs((double)wr[c]) * amax / 127.0 / 2.0;
            s_wx += fabs((double)wr[c] * xr[c]);
            s_qsx += qs * fabs(xr[c]);
            s_bx += fabs(b * xr[c]);
        }
    }
    *sum_abs_wx = s_wx;
    if (!uses_int8(m)) return 1e-5 * s_wx + 1e-30;
    return in8 * 1.001 + 1e-4 * (s_wx + s_qsx + s_bx) + 1e-30;
}

static double fbound(const float *w, uq_dtype dt, const float *x, int64_t cols, double *sum_abs_wx)
{
    (void)dt;
    double s = 0;
    for (int64_t c = 0; c < cols; c++) s += fabs((double)w[c] * x[c]);
    *sum_abs_wx = s;
    return 1e-5 * s + 1e-30;
}

/* ------------------------------------------------------------- checks */

static int levels[UQ_CPU_LEVEL_COUNT];
static int n_levels;

static void find_levels(void)
{
    n_levels = 0;
    for (int l = 0; l < UQ_CPU_LEVEL_COUNT; l++)
        if (uq_cpu_level_usable((uq_cpu_level)l)) levels[n_levels++] = l;
}

static double worst_rel; /* largest RMS(y - y_ref) / RMS(y_ref) seen on Gaussian inputs */

/* Every level against cpu-ref, and the same bits for 1, 2 and 3 threads. */
static void check_qmat(const qmat *m, const float *x, int64_t n, int gaussian, const char *what)
{
    float *ref = run_ref(&m->w, x, n);
    for (int li = 0; li < n_levels; li++) {
        const char *lname = uq_cpu_level_name((uq_cpu_level)levels[li]);
        float *y = run(&uq_backend_cpu, levels[li], 1, &m->w, x, n, m->cols);
        double e2 = 0, r2 = 0;
        for (int64_t t = 0; t < n; t++)
            for (int64_t r = 0; r < m->rows; r++) {
                double sabs, tol = qbound(m, x, t, r, &sabs), got = y[t * m->rows + r], want = ref[t * m->rows + r];
                double err = fabs(got - want);
                if (!(err <= tol))
                    fail_msg("%s, level %s: y[%lld, %lld] = %.9g, cpu-ref %.9g (error %.3g, bound %.3g, sum|wx| %.3g)",
                             what, lname, (long long)t, (long long)r, got, want, err, tol, sabs);
                e2 += err * err;
                r2 += want * want;
            }
        if (gaussian && r2 > 0 && n * m->rows >= 64) { /* enough outputs for a stable RMS */
            double rel = sqrt(e2 / r2);
            if (rel > 2e-2) fail_msg("%s, level %s: RMS error %.3g of the RMS output", what, lname, rel);
            if (rel > worst_rel) worst_rel = rel;
        }
        for (int th = 2; th <= 3; th++) {
            float *y2 = run(&uq_backend_cpu, levels[li], th, &m->w, x, n, m->cols);
            if (memcmp(y, y2, (size_t)(n * m->rows) * sizeof *y) != 0)
                fail_msg("%s, level %s: %d threads differ from 1", what, lname, th);
            free(y2);
        }
        free(y);
    }
    free(ref);
}

static const char *dt_name(uq_dtype t) { return uq_dtype_name(t); }

/* --------------------------------------------------------------- tests */

static void test_levels(void **state)
{
    (void)state;
    find_levels();
    assert_true(n_levels >= 1);
    assert_int_equal(levels[0], UQ_CPU_GENERIC);
    assert_true(uq_cpu_level_usable(uq_cpu_detect()));
    assert_false(uq_cpu_force_level(UQ_CPU_LEVEL_COUNT));
    assert_false(uq_cpu_level_usable((uq_cpu_level)-1));
    assert_true(uq_cpu_force_level(-1));
    assert_non_null(uq_cpu_kernels_for(UQ_CPU_GENERIC));
    for (int l = 0; l < UQ_CPU_LEVEL_COUNT; l++)
        assert_true((uq_cpu_kernels_for((uq_cpu_level)l) != NULL) == uq_cpu_level_usable((uq_cpu_level)l));
#if defined(__x86_64__)
    assert_false(uq_cpu_level_usable(UQ_CPU_NEON));
#endif
    /* registered before cpu-ref, always available, describing the level */
    const uq_backend_ops *ops = uq_backend_find("cpu");
    assert_ptr_equal(ops, &uq_backend_cpu);
    assert_ptr_equal(uq_backend_at(0), &uq_backend_cpu);
    assert_ptr_equal(uq_backend_find("cpu-ref"), &uq_backend_cpu_ref);
    char why[64] = "";
    assert_true(ops->available(why, sizeof why));
    assert_non_null(strstr(ops->description, uq_cpu_level_name(uq_cpu_detect())));
    uq_backend_caps caps;
    ops->caps(&caps);
    assert_int_equal(caps.affine_bits, 0x1fe);
    assert_int_equal(caps.symmetric_bits, 0x1fc);
    assert_true(caps.float_weights);
    uq_backend ref = {.ops = &uq_backend_cpu_ref};
    assert_string_equal(uq_cpu_backend_kernels(&ref), "");
    print_message("kernel levels here:");
    for (int i = 0; i < n_levels; i++) print_message(" %s", uq_cpu_level_name((uq_cpu_level)levels[i]));
    print_message("\n");
}

static void test_unpack(void **state)
{
    (void)state;
    uint64_t seed = 7;
    uint8_t codes[256], packed[256], got[256], want[256];
    for (int bits = 1; bits <= 8; bits++) {
        for (int i = 0; i < 256; i++) codes[i] = (uint8_t)(tu_rand_u64(&seed) & ((1u << bits) - 1));
        memset(packed, 0, sizeof packed);
        uq_pack_row(codes, 256, bits, packed);
        uq_unpack_row(packed, 256, bits, want);
        uq_cpu_unpack_codes(packed, bits, 256, got);
        assert_memory_equal(got, want, 256);
        assert_memory_equal(got, codes, 256);
    }
}

/* Every scheme x width x group size (MLX's 32 / 64 / 128, 96 whose groups
 * start mid-chunk, and one scale per row) x scale dtype, over odd shapes and
 * input counts. */
static void test_quantized(void **state)
{
    (void)state;
    find_levels();
    static const int64_t rows_list[] = {1, 3, 5, 13, 33};
    static const int64_t n_list[] = {1, 2, 3, 7, 64};
    static const uq_dtype sdts[] = {UQ_F32, UQ_F16, UQ_BF16};
    static const int groups[] = {32, 64, 96, 128, 0};
    uint64_t seed = 42;
    int k = 0;
    worst_rel = 0;
    for (int sch = 0; sch < 2; sch++)
        for (int bits = sch ? 2 : 1; bits <= 8; bits++)
            for (int gi = 0; gi < 5; gi++) {
                int g = groups[gi];
                if (g == 0 && sch == 0) continue; /* one scale per row is symmetric only */
                for (int variant = 0; variant < 2; variant++, k++) {
                    /* the smallest valid width, then a wider one that is an
                     * odd number of 32-code halves where the group allows */
                    int64_t base = g ? g : 32;
                    int64_t cols = variant == 0 ? base : base * (g == 0 || g == 32 ? 5 : g == 96 ? 2 : 3);
                    int64_t rows = rows_list[k % 5], n = n_list[(k / 2) % 5];
                    uq_dtype sdt = sdts[k % 3];
                    qmat m;
                    qmat_make(&m, sch ? UQ_SCHEME_SYMMETRIC : UQ_SCHEME_AFFINE, bits, g, sdt, rows, cols,
                              k % 4 == 3, &seed);
                    float *x = random_inputs(n, cols, 0, &seed);
                    char what[160];
                    snprintf(what, sizeof what, "%s %d-bit g%d %s [%lld x %lld] n %lld", sch ? "symmetric" : "affine",
                             bits, g, dt_name(sdt), (long long)rows, (long long)cols, (long long)n);
                    check_qmat(&m, x, n, 1, what);
                    free(x);
                    qmat_free(&m);
                }
            }
    print_message("largest RMS error on Gaussian inputs: %.3g of the RMS output\n", worst_rel);
}

/* Every input count on one shape per width, and a width with an odd number
 * of 32-code halves (the 64-code kernels' half chunk). */
static void test_input_counts(void **state)
{
    (void)state;
    find_levels();
    static const int64_t n_list[] = {1, 2, 3, 4, 5, 7, 8, 9, 64};
    static const int bits_list[] = {2, 3, 4, 5, 6, 8};
    uint64_t seed = 9;
    for (size_t bi = 0; bi < sizeof bits_list / sizeof *bits_list; bi++)
        for (size_t ni = 0; ni < sizeof n_list / sizeof *n_list; ni++) {
            qmat m;
            int64_t rows = 7 + (int64_t)ni, cols = 224;
            qmat_make(&m, bi % 2 ? UQ_SCHEME_SYMMETRIC : UQ_SCHEME_AFFINE, bits_list[bi], 32, UQ_BF16, rows, cols, 0,
                      &seed);
            float *x = random_inputs(n_list[ni], cols, 0, &seed);
            char what[128];
            snprintf(what, sizeof what, "%d-bit g32 [%lld x 224] n %lld", bits_list[bi], (long long)rows,
                     (long long)n_list[ni]);
            check_qmat(&m, x, n_list[ni], 1, what);
            free(x);
            qmat_free(&m);
        }
}

/* Inputs spanning ten decades with outliers, all-zero rows, wide weights. */
static void test_dynamic_range(void **state)
{
    (void)state;
    find_levels();
    uint64_t seed = 1234;
    static const int bits_list[] = {2, 3, 4, 5, 6, 7, 8};
    for (size_t bi = 0; bi < sizeof bits_list / sizeof *bits_list; bi++)
        for (int sch = 0; sch < 2; sch++) {
            qmat m;
            int64_t rows = 19, cols = 320, n = 7;
            qmat_make(&m, sch ? UQ_SCHEME_SYMMETRIC : UQ_SCHEME_AFFINE, bits_list[bi], 64, UQ_F16, rows, cols, 1,
                      &seed);
            float *x = random_inputs(n, cols, 1, &seed);
            char what[128];
            snprintf(what, sizeof what, "wide %s %d-bit", sch ? "symmetric" : "affine", bits_list[bi]);
            check_qmat(&m, x, n, 0, what);
            /* all-zero inputs give exactly zero */
            float *y = run(&uq_backend_cpu, uq_cpu_detect(), 2, &m.w, x, n, cols);
            for (int64_t r = 0; r < rows; r++) assert_true(y[2 * rows + r] == 0.0f);
            free(y);
            free(x);
            qmat_free(&m);
        }
}

/* Group sizes that are not multiples of 32 (8, 16, 24, 40) and widths that
 * are not (one scale per row): the dequantizing path. */
static void test_other_groups(void **state)
{
    (void)state;
    find_levels();
    uint64_t seed = 77;
    static const struct {
        int scheme, bits, group;
        int64_t cols;
    } cases[] = {
        {0, 4, 8, 64}, {0, 3, 16, 48}, {1, 5, 24, 72}, {0, 2, 40, 120}, {1, 8, 0, 172}, {1, 4, 0, 100}, {0, 7, 8, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        qmat m;
        int64_t rows = 9 + (int64_t)i, n = (int64_t)i % 3 + 1;
        qmat_make(&m, cases[i].scheme ? UQ_SCHEME_SYMMETRIC : UQ_SCHEME_AFFINE, cases[i].bits, cases[i].group,
                  UQ_BF16, rows, cases[i].cols, 0, &seed);
        float *x = random_inputs(n, cases[i].cols, 0, &seed);
        char what[128];
        snprintf(what, sizeof what, "%d-bit group %d cols %lld", cases[i].bits, cases[i].group,
                 (long long)cases[i].cols);
        check_qmat(&m, x, n, 1, what);
        free(x);
        qmat_free(&m);
    }
}

static void test_float_weights(void **state)
{
    (void)state;
    find_levels();
    uint64_t seed = 5;
    static const int64_t cols_list[] = {1, 7, 15, 16, 17, 100, 257};
    static const int64_t n_list[] = {1, 2, 3, 7, 64};
    static const uq_dtype dts[] = {UQ_F32, UQ_F16, UQ_BF16};
    int k = 0;
    for (size_t di = 0; di < 3; di++)
        for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++, k++) {
            int64_t rows = 1 + (k * 5) % 11, cols = cols_list[ci], n = n_list[k % 5];
            uq_dtype dt = dts[di];
            float *wf = random_matrix(rows, cols, k % 2, &seed);
            size_t el = uq_dtype_size(dt);
            /* stored one byte off alignment, as in a mapped file */
            unsigned char *store = xmalloc((size_t)(rows * cols) * el + 1);
            assert_int_equal(uq_from_f32(dt, wf, store + 1, (size_t)(rows * cols)), UQ_OK);
            assert_int_equal(uq_to_f32(dt, store + 1, wf, (size_t)(rows * cols)), UQ_OK);
            uq_tensor tw = {.name = "f.weight", .dtype = dt, .ndim = 2, .shape = {rows, cols}, .data = store + 1};
            uq_weight w = {.module = "f", .rows = rows, .cols = cols, .dtype = dt, .weight = &tw};
            float *x = random_inputs(n, cols, k % 2, &seed);
            float *ref = run_ref(&w, x, n);
            for (int li = 0; li < n_levels; li++) {
                float *y = run(&uq_backend_cpu, levels[li], 1, &w, x, n, cols);
                for (int64_t t = 0; t < n; t++)
                    for (int64_t r = 0; r < rows; r++) {
                        double sabs, tol = fbound(wf + r * cols, dt, x + t * cols, cols, &sabs);
                        double err = fabs((double)y[t * rows + r] - ref[t * rows + r]);
                        if (!(err <= tol))
                            fail_msg("%s [%lld x %lld] n %lld level %s: y[%lld, %lld] = %.9g, cpu-ref %.9g",
                                     dt_name(dt), (long long)rows, (long long)cols, (long long)n,
                                     uq_cpu_level_name((uq_cpu_level)levels[li]), (long long)t, (long long)r,
                                     y[t * rows + r], ref[t * rows + r]);
                    }
                float *y3 = run(&uq_backend_cpu, levels[li], 3, &w, x, n, cols);
                assert_memory_equal(y, y3, (size_t)(n * rows) * sizeof *y);
                free(y3);
                free(y);
            }
            free(ref);
            free(x);
            free(store);
            free(wf);
        }
}

/* More inputs than one activation chunk holds, and rows wider than the
 * backend was initialised for (its buffers grow). */
static void test_chunks_and_growth(void **state)
{
    (void)state;
    find_levels();
    uint64_t seed = 99;
    qmat m;
    qmat_make(&m, UQ_SCHEME_AFFINE, 4, 64, UQ_BF16, 6, 128, 0, &seed);
    const int64_t n = 600;
    float *x = random_inputs(n, 128, 0, &seed);
    float *ref = run_ref(&m.w, x, n);
    for (int li = 0; li < n_levels; li++) {
        float *y = run(&uq_backend_cpu, levels[li], 2, &m.w, x, n, 32);
        for (int64_t i = 0; i < n * m.rows; i++) {
            double sabs, tol = qbound(&m, x, i / m.rows, i % m.rows, &sabs);
            if (!(fabs((double)y[i] - ref[i]) <= tol))
                fail_msg("output %lld: %.9g vs %.9g", (long long)i, y[i], ref[i]);
        }
        free(y);
    }
    free(ref);
    free(x);
    qmat_free(&m);
}

static void test_nonfinite(void **state)
{
    (void)state;
    find_levels();
    uint64_t seed = 3;
    qmat m;
    qmat_make(&m, UQ_SCHEME_SYMMETRIC, 4, 32, UQ_F32, 5, 96, 0, &seed);
    float *x = random_inputs(3, 96, 0, &seed);
    x[0 * 96 + 40] = NAN;
    x[1 * 96 + 3] = INFINITY;
    for (int li = 0; li < n_levels; li++) {
        float *y = run(&uq_backend_cpu, levels[li], 1, &m.w, x, 3, 96);
        for (int64_t r = 0; r < m.rows; r++) {
            assert_true(isnan(y[0 * m.rows + r]));
            assert_false(isfinite(y[1 * m.rows + r]));
            assert_true(isfinite(y[2 * m.rows + r]));
        }
        free(y);
    }
    free(x);
    qmat_free(&m);
}

/* matmul_n (weights sharing an input: q/k/v, gate/up) gives exactly what
 * separate matmul calls give: weights that can share the quantized input,
 * and sets that cannot (another group size, different widths, a float
 * weight) and fall back to one product at a time. */
static void test_matmul_n(void **state)
{
    (void)state;
    find_levels();
    uint64_t seed = 5;
    enum { K = 4 };
    qmat m[K];
    qmat_make(&m[0], UQ_SCHEME_AFFINE, 4, 64, UQ_BF16, 37, 192, 0, &seed);
    qmat_make(&m[1], UQ_SCHEME_AFFINE, 4, 64, UQ_BF16, 13, 192, 0, &seed);
    qmat_make(&m[2], UQ_SCHEME_SYMMETRIC, 8, 64, UQ_F16, 9, 192, 0, &seed);
    qmat_make(&m[3], UQ_SCHEME_AFFINE, 3, 32, UQ_BF16, 21, 192, 0, &seed);
    /* a float weight of the same width */
    float *fw = random_matrix(11, 192, 0, &seed);
    uq_tensor ft = {.name = "f.weight", .dtype = UQ_F32, .ndim = 2, .shape = {11, 192}, .data = fw};
    uq_weight fwt = {.weight = &ft, .rows = 11, .cols = 192, .dtype = UQ_F32};
    static const int sets[][3] = {{0, 1, 2}, {0, 1, -1}, {0, 3, -1}, {2, 0, 4}, {1, 4, 3}};
    for (int64_t n = 1; n <= 9; n += 8) {
        float *x = random_inputs(n, 192, 0, &seed);
        for (int li = 0; li < n_levels; li++)
            for (size_t si = 0; si < sizeof sets / sizeof *sets; si++) {
                const uq_weight *ws[3];
                float *ys[3];
                int count = 0;
                for (int k = 0; k < 3 && sets[si][k] >= 0; k++, count++) {
                    ws[k] = sets[si][k] == 4 ? &fwt : &m[sets[si][k]].w;
                    ys[k] = xmalloc((size_t)(n * ws[k]->rows) * sizeof(float));
                }
                assert_true(uq_cpu_force_level(levels[li]));
                uq_backend b = {.ops = &uq_backend_cpu, .pool = pools[2]};
                assert_int_equal(b.ops->init(&b, 192), UQ_OK);
                b.ops->matmul_n(&b, ws, count, x, n, ys);
                b.ops->release(&b);
                for (int k = 0; k < count; k++) {
                    float *want = run(&uq_backend_cpu, levels[li], 2, ws[k], x, n, 192);
                    assert_memory_equal(ys[k], want, (size_t)(n * ws[k]->rows) * sizeof(float));
                    free(want);
                    free(ys[k]);
                }
            }
        free(x);
    }
    free(fw);
    for (int k = 0; k < K; k++) qmat_free(&m[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_unpack),
        cmocka_unit_test(test_quantized),
        cmocka_unit_test(test_input_counts),
        cmocka_unit_test(test_dynamic_range),
        cmocka_unit_test(test_other_groups),
        cmocka_unit_test(test_float_weights),
        cmocka_unit_test(test_chunks_and_growth),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_matmul_n),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
