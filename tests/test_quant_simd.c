/* The instruction-set copies of the kernels (uq_quant_set_simd): every level
 * this CPU has must give the bytes of the portable level, for every source
 * dtype, width and group size, on ordinary and awkward data (outliers,
 * constants, zeros, subnormals, values near the dtype's limits, NaN / Inf),
 * at odd addresses; so must the packing and dequantization. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "testutil.h"
#include "quant/qkernel.h"
#include "quant/quant.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int levels[3];
static int n_levels;

static int setup(void **state)
{
    (void)state;
    n_levels = 0;
    for (int l = UQ_SIMD_SCALAR; l <= UQ_SIMD_AVX2; l++)
        if (uq_quant_set_simd(l) == l) levels[n_levels++] = l;
    uq_quant_set_simd(-1);
    return 0;
}

static const uq_qkernels *table(int level)
{
#ifdef UQ_QK_X86
    if (level == UQ_SIMD_AVX2) return &uq_qk_avx2;
    if (level == UQ_SIMD_SSE2) return &uq_qk_sse2;
#endif
    (void)level;
    return &uq_qk_scalar;
}

static void test_levels(void **state)
{
    (void)state;
    assert_true(n_levels >= 1 && levels[0] == UQ_SIMD_SCALAR);
    /* the default is the best level */
    assert_int_equal(uq_quant_simd(), levels[n_levels - 1]);
    assert_string_equal(uq_quant_simd_name(UQ_SIMD_SCALAR), "scalar");
    assert_int_equal(uq_quant_set_simd(99), levels[n_levels - 1]);
    assert_int_equal(uq_quant_set_simd(UQ_SIMD_SCALAR), UQ_SIMD_SCALAR);
    assert_int_equal(uq_quant_simd(), UQ_SIMD_SCALAR);
    uq_quant_set_simd(-1);
}

/* ------------------------------------------------------------- data */

enum { D_NORMAL, D_OUTLIERS, D_SPECIAL, D_HUGE, D_NONFINITE, D_KINDS };

/* rows x cols values of one kind, in groups of g. */
static void fill(int kind, float *w, size_t rows, size_t cols, size_t g, uq_dtype dt,
                 uint64_t *rng)
{
    const float big = dt == UQ_F16 ? 65504.0f : dt == UQ_BF16 ? 3.38953139e38f : FLT_MAX;
    const float tiny = dt == UQ_F16 ? 0x1p-24f : 0x1p-140f; /* subnormal in the dtype */
    for (size_t i = 0; i < rows * cols; i++) {
        float x = 0.02f * tu_rand_normal(rng);
        size_t gi = i / g, k = i % g;
        switch (kind) {
        case D_OUTLIERS:
            if (tu_rand_u64(rng) % 29 == 0) x *= 40.0f;
            if (k == 0 && gi % 3 == 0) x = 0.0f;
            break;
        case D_SPECIAL:
            switch (gi % 7) {
            case 0: x = 0.0f; break;                            /* all zero */
            case 1: x = 0.375f; break;                          /* constant */
            case 2: x = k % 2 ? -0.0f : 0.0f; break;            /* signed zeros */
            case 3: x = tiny * (float)(tu_rand_u64(rng) % 9) - 4 * tiny; break; /* subnormal */
            case 4: x = fabsf(x); break;                        /* one sign */
            case 5: x = k == 3 ? 1.0f : k == 5 ? -1.0f : x; break; /* |min| == |max| */
            default: x = (float)(tu_rand_u64(rng) % 16) * 0.5f; break; /* halves: ties */
            }
            break;
        case D_HUGE:
            /* near the dtype's largest value: ranges that overflow f32 */
            if (k == 1) x = big;
            if (k == 2 && gi % 2 == 0) x = -big;
            if (gi % 5 == 4) x = gi % 2 ? -big : big; /* constant and huge */
            break;
        case D_NONFINITE:
            if (k == 2 && gi % 3 == 0) x = NAN;
            if (k == 4 && gi % 4 == 1) x = INFINITY;
            if (k == 5 && gi % 5 == 2) x = -INFINITY;
            if (gi % 11 == 7) x = NAN; /* a whole group */
            break;
        default:
            break;
        }
        w[i] = x;
    }
}

/* --------------------------------------------------------- quantization */

typedef struct out {
    unsigned char *buf; /* packed, scales, biases, at odd offsets */
    unsigned char *packed, *scales, *biases;
    size_t np, ns, nb;
    float *deq;
    uq_status st;
    char msg[256];
} out;

static void quantize_at(int level, const uq_qparams *p, uq_dtype dt, const void *src,
                        int64_t rows, int64_t cols, int allow, int threads, out *o)
{
    o->np = uq_quant_packed_bytes(p, rows, cols);
    o->ns = uq_quant_scales_bytes(p, rows, cols);
    o->nb = uq_quant_biases_bytes(p, rows, cols);
    o->buf = malloc(o->np + o->ns + o->nb + 16);
    o->deq = malloc((size_t)(rows * cols) * sizeof(float));
    assert_true(o->buf && o->deq);
    memset(o->buf, 0x5C, o->np + o->ns + o->nb + 16);
    o->packed = o->buf + 1;
    o->scales = o->packed + o->np + 3;
    o->biases = o->scales + o->ns + 5;
    assert_int_equal(uq_quant_set_simd(level), level);
    o->st = uq_quantize_tensor(p, dt, src, rows, cols, o->packed, o->scales,
                               p->scheme == UQ_SCHEME_AFFINE ? o->biases : NULL, allow, threads);
    snprintf(o->msg, sizeof o->msg, "%s", o->st == UQ_OK ? "" : uq_last_error());
    if (o->st == UQ_OK)
        assert_int_equal(uq_dequantize_qtensor(p, rows, cols, o->packed, o->scales,
                                               p->scheme == UQ_SCHEME_AFFINE ? o->biases : NULL,
                                               o->deq),
                         UQ_OK);
    uq_quant_set_simd(-1);
}

static void out_free(out *o)
{
    free(o->buf);
    free(o->deq);
}

static void compare(const out *a, const out *b, const char *what)
{
    if (a->st != b->st || strcmp(a->msg, b->msg) != 0)
        fail_msg("%s: %s \"%s\" vs %s \"%s\"", what, uq_status_name(a->st), a->msg,
                 uq_status_name(b->st), b->msg);
    if (a->st != UQ_OK) return;
    size_t total = a->np + a->ns + a->nb + 16;
    if (memcmp(a->buf, b->buf, total) != 0) {
        size_t i = 0;
        while (a->buf[i] == b->buf[i]) i++;
        fail_msg("%s: outputs differ at byte %zu of %zu (packed %zu, scales %zu)", what, i,
                 total, a->np, a->ns);
    }
}

static void compare_deq(const out *a, const out *b, size_t n, const char *what)
{
    if (a->st != UQ_OK) return;
    if (memcmp(a->deq, b->deq, n * sizeof(float)) != 0) {
        size_t i = 0;
        while (memcmp(&a->deq[i], &b->deq[i], sizeof(float)) == 0) i++;
        fail_msg("%s: dequantized element %zu: %.9g vs %.9g", what, i, a->deq[i], b->deq[i]);
    }
}

static void check_all_levels(void)
{
    static const int groups[] = {8, 16, 24, 40, 64, 128, 136, 0};
    static const uq_dtype dts[] = {UQ_F32, UQ_F16, UQ_BF16};
    const int64_t rows = 2;
    uint64_t rng = 2718;
    for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
        /* 70 groups a row: more than one batch of 64 */
        int g = groups[gi];
        int64_t cols = g ? (int64_t)g * 70 : 1000;
        size_t n = (size_t)(rows * cols);
        float *w = malloc(n * sizeof(float));
        unsigned char *src = malloc(n * 4 + 3);
        assert_true(w && src);
        for (size_t d = 0; d < 3; d++) {
            for (int kind = 0; kind < D_KINDS; kind++) {
                fill(kind, w, (size_t)rows, (size_t)cols, g ? (size_t)g : (size_t)cols, dts[d],
                     &rng);
                /* the source at an odd address */
                assert_int_equal(uq_from_f32(dts[d], w, src + 3, n), UQ_OK);
                for (int scheme = 0; scheme < 2; scheme++) {
                    if (g == 0 && scheme == 0) continue; /* per row: symmetric only */
                    for (int bits = scheme ? 2 : 1; bits <= 8; bits++) {
                        uq_qparams p = {(uq_scheme)scheme, bits, g, dts[d]};
                        for (int allow = 0; allow < 2; allow++) {
                            out ref;
                            quantize_at(UQ_SIMD_SCALAR, &p, dts[d], src + 3, rows, cols, allow,
                                        1, &ref);
                            for (int l = 0; l < n_levels; l++) {
                                char what[160];
                                snprintf(what, sizeof what,
                                         "%s vs scalar: %s %s %d-bit g%d, data %d, allow %d",
                                         uq_quant_simd_name(levels[l]), uq_dtype_name(dts[d]),
                                         scheme ? "symmetric" : "affine", bits, g, kind, allow);
                                out o;
                                quantize_at(levels[l], &p, dts[d], src + 3, rows, cols, allow,
                                            l == 0 ? 3 : 1, &o);
                                compare(&ref, &o, what);
                                compare_deq(&ref, &o, n, what);
                                out_free(&o);
                            }
                            out_free(&ref);
                        }
                    }
                }
            }
        }
        free(w);
        free(src);
    }
}

static void test_quantize_all_levels(void **state)
{
    (void)state;
    check_all_levels();
}

/* -------------------------------------------------------------- kernels */

/* Every f16 value, in groups of 16 copies (the vector path of each level):
 * the extremes are the value itself, bit for bit, as uq_f16_to_f32 gives. */
static void test_f16_every_value(void **state)
{
    (void)state;
    enum { G = 16, NG = 64 };
    uint16_t h[G * NG];
    float mn[NG], mx[NG];
    for (int l = 0; l < n_levels; l++) {
        const uq_qkernels *k = table(levels[l]);
        for (uint32_t base = 0; base < 65536; base += NG) {
            for (int j = 0; j < NG; j++)
                for (int i = 0; i < G; i++) h[j * G + i] = (uint16_t)(base + (uint32_t)j);
            int nan = k->minmax(UQ_F16, h, G, NG, mn, mx);
            int want_nan = 0;
            for (int j = 0; j < NG; j++) {
                float v = uq_f16_to_f32((uint16_t)(base + (uint32_t)j));
                if (isnan(v)) {
                    want_nan = 1;
                    assert_true(mn[j] == INFINITY && mx[j] == -INFINITY);
                    continue;
                }
                if (memcmp(&mn[j], &v, 4) != 0 || memcmp(&mx[j], &v, 4) != 0)
                    fail_msg("%s: f16 0x%04x: min %a max %a, want %a",
                             uq_quant_simd_name(levels[l]), base + (uint32_t)j, mn[j], mx[j], v);
            }
            assert_int_equal(!!nan, want_nan);
        }
    }
}

/* The vector fit against uq_affine_fit_extremes on awkward extremes. */
static void test_fit_kernel(void **state)
{
    (void)state;
    enum { N = 4096 };
    float *mn = malloc(N * sizeof(float)), *mx = malloc(N * sizeof(float));
    float *s = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float));
    assert_true(mn && mx && s && b);
    static const float specials[] = {0.0f,   -0.0f,   1e-7f, -1e-7f,   3e-8f, 0x1p-140f,
                                     -1.0f,  1.0f,    0.5f,  -0.5f,    7.5f,  -7.5f,
                                     1e30f,  -1e30f,  3e38f, -3e38f,   1e-3f, 2.5f};
    const size_t ns = sizeof specials / sizeof specials[0];
    uint64_t rng = 99;
    for (size_t i = 0; i < N; i++) {
        float a, c;
        if (i < ns * ns) {
            a = specials[i / ns];
            c = specials[i % ns];
        } else {
            a = tu_rand_normal(&rng) * (i % 3 ? 0.05f : 100.0f);
            c = tu_rand_normal(&rng) * (i % 5 ? 0.05f : 100.0f);
        }
        mn[i] = a < c ? a : c;
        mx[i] = a < c ? c : a;
    }
    for (int bits = 1; bits <= 8; bits++) {
        float n_bins = (float)((1 << bits) - 1);
        for (int l = 0; l < n_levels; l++) {
            const uq_qkernels *k = table(levels[l]);
            int other = k->affine_fit(mn, mx, N, n_bins, s, b);
            int want_other = 0;
            for (size_t i = 0; i < N; i++) {
                if (isinf(mx[i] - mn[i])) {
                    want_other = 1;
                    continue;
                }
                uq_affine_param p = uq_affine_fit_extremes(mn[i], mx[i], n_bins);
                if (memcmp(&p.scale, &s[i], 4) != 0 || memcmp(&p.bias, &b[i], 4) != 0)
                    fail_msg("%s %d-bit: extremes %a %a: scale %a bias %a, want %a %a",
                             uq_quant_simd_name(levels[l]), bits, mn[i], mx[i], s[i], b[i],
                             p.scale, p.bias);
            }
            assert_int_equal(!!other, want_other);
        }
    }
    free(mn);
    free(mx);
    free(s);
    free(b);
}

/* Packing and unpacking at every level, width and length, at odd addresses. */
static void test_pack_all_levels(void **state)
{
    (void)state;
    uint64_t rng = 4242;
    for (int bits = 1; bits <= 8; bits++) {
        for (size_t n = 0; n <= 300; n += n < 40 ? 1 : 13) {
            uint8_t codes[301], back[301], ref_back[301];
            unsigned char ref[400], got[400];
            for (size_t i = 0; i < n; i++) codes[i] = (uint8_t)tu_rand_u64(&rng); /* unmasked */
            size_t nw = uq_pack_words(n, bits);
            memset(ref, 0x77, sizeof ref);
            uq_pack_row_generic(codes, n, bits, ref + 1);
            uq_unpack_row_generic(ref + 1, n, bits, ref_back);
            for (int l = 0; l < n_levels; l++) {
                assert_int_equal(uq_quant_set_simd(levels[l]), levels[l]);
                memset(got, 0x77, sizeof got);
                uq_pack_row(codes, n, bits, got + 1);
                memset(back, 0, sizeof back);
                uq_unpack_row(got + 1, n, bits, back);
                uq_quant_set_simd(-1);
                if (memcmp(ref, got, 4 * nw + 8) != 0)
                    fail_msg("%s: %d bits, %zu codes: packed bytes differ",
                             uq_quant_simd_name(levels[l]), bits, n);
                assert_memory_equal(back, ref_back, n);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_f16_every_value),
        cmocka_unit_test(test_fit_kernel),
        cmocka_unit_test(test_pack_all_levels),
        cmocka_unit_test(test_quantize_all_levels),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
