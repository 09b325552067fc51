/* The blocked causal attention of the prefill (src/runtime/attention.c)
 * against a straightforward double-precision reference, with the SIMD and
 * the portable kernels: head sizes that are and are not multiples of the
 * vector width, grouped-query layouts, query counts that are not multiples of
 * the lane groups, blocks that start after cached positions, sharp softmaxes.
 * The one-query kernels of decoding are checked against the same reference.
 * A query's result must not depend on the block it is computed in, and the
 * forward pass must give the same logits whatever the thread count and
 * agree with token-by-token decoding. */
#include "testutil.h"

#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* out_i = sum_j softmax_j(scale q_i . k_j) v_j over j <= pos0 + i. */
static void reference(const float *q, int64_t q_stride, const float *k, const float *v, int64_t kv_stride,
                      int64_t hd, int64_t pos0, int64_t nq, float scale, double *out)
{
    double *s = xmalloc((size_t)(pos0 + nq) * sizeof *s);
    for (int64_t i = 0; i < nq; i++) {
        const int64_t npos = pos0 + i + 1;
        double m = -INFINITY, sum = 0;
        for (int64_t j = 0; j < npos; j++) {
            double d = 0;
            for (int64_t e = 0; e < hd; e++) d += (double)q[i * q_stride + e] * (double)k[j * kv_stride + e];
            s[j] = d * scale;
            m = s[j] > m ? s[j] : m;
        }
        for (int64_t j = 0; j < npos; j++) sum += (s[j] = exp(s[j] - m));
        for (int64_t e = 0; e < hd; e++) {
            double o = 0;
            for (int64_t j = 0; j < npos; j++) o += s[j] / sum * (double)v[j * kv_stride + e];
            out[i * hd + e] = o;
        }
    }
    free(s);
}

typedef struct acase {
    int64_t hd, n_heads, n_kv, pos0, nq;
    float qscale; /* larger: sharper softmax */
} acase;

static void run_case(const acase *a, uint64_t *seed)
{
    const int64_t q_stride = a->n_heads * a->hd, kv_stride = a->n_kv * a->hd, npos = a->pos0 + a->nq;
    const int64_t n_ctx = npos + 3;
    float *q = xmalloc((size_t)(a->nq * q_stride) * sizeof *q);
    float *k = xmalloc((size_t)(n_ctx * kv_stride) * sizeof *k);
    float *v = xmalloc((size_t)(n_ctx * kv_stride) * sizeof *v);
    float *out = xmalloc((size_t)(a->nq * q_stride) * sizeof *out);
    float *one = xmalloc((size_t)a->hd * sizeof *one);
    double *ref = xmalloc((size_t)(a->nq * a->hd) * sizeof *ref);
    float *scratch = xmalloc((size_t)uq_attn_scratch_floats(n_ctx, a->hd) * sizeof *scratch);
    for (int64_t i = 0; i < a->nq * q_stride; i++) q[i] = a->qscale * tu_rand_normal(seed);
    for (int64_t i = 0; i < n_ctx * kv_stride; i++) k[i] = tu_rand_normal(seed), v[i] = tu_rand_normal(seed);
    const float scale = 1.0f / sqrtf((float)a->hd);
    for (int portable = 0; portable <= 1; portable++) {
        uq_attn_force_portable(portable);
        for (int i = 0; i < a->nq * q_stride; i++) out[i] = NAN;
        for (int64_t h = 0; h < a->n_heads; h++) {
            const int64_t kvh = h / (a->n_heads / a->n_kv);
            uq_attn_block(q + h * a->hd, q_stride, k + kvh * a->hd, v + kvh * a->hd, kv_stride, a->hd, a->pos0,
                          a->nq, scale, out + h * a->hd, q_stride, scratch);
        }
        for (int64_t h = 0; h < a->n_heads; h++) {
            const int64_t kvh = h / (a->n_heads / a->n_kv);
            reference(q + h * a->hd, q_stride, k + kvh * a->hd, v + kvh * a->hd, kv_stride, a->hd, a->pos0, a->nq,
                      scale, ref);
            double worst = 0;
            for (int64_t i = 0; i < a->nq; i++)
                for (int64_t e = 0; e < a->hd; e++) {
                    double d = fabs((double)out[i * q_stride + h * a->hd + e] - ref[i * a->hd + e]);
                    worst = d > worst || isnan(d) ? d : worst;
                }
            if (!(worst < 2e-5))
                fail_msg("hd %lld heads %lld/%lld pos0 %lld nq %lld qscale %g portable %d head %lld: error %g",
                         (long long)a->hd, (long long)a->n_heads, (long long)a->n_kv, (long long)a->pos0,
                         (long long)a->nq, (double)a->qscale, portable, (long long)h, worst);
        }
        /* each query alone (as the last of a block at its position) gives the same bits */
        for (int64_t i = 0; i < a->nq; i += 1 + a->nq / 7) {
            const int64_t h = i % a->n_heads, kvh = h / (a->n_heads / a->n_kv);
            uq_attn_block(q + i * q_stride + h * a->hd, q_stride, k + kvh * a->hd, v + kvh * a->hd, kv_stride, a->hd,
                          a->pos0 + i, 1, scale, one, a->hd, scratch);
            assert_memory_equal(one, out + i * q_stride + h * a->hd, (size_t)a->hd * sizeof *one);
        }
        /* the decoding kernels (one query) against the reference */
        for (int64_t i = 0; i < a->nq; i += 1 + a->nq / 5) {
            const int64_t h = (i + 1) % a->n_heads, kvh = h / (a->n_heads / a->n_kv);
            uq_attn_one(q + i * q_stride + h * a->hd, k + kvh * a->hd, v + kvh * a->hd, kv_stride, a->hd,
                        a->pos0 + i + 1, scale, one, scratch);
            reference(q + i * q_stride + h * a->hd, q_stride, k + kvh * a->hd, v + kvh * a->hd, kv_stride, a->hd,
                      a->pos0 + i, 1, scale, ref);
            for (int64_t e = 0; e < a->hd; e++)
                if (!(fabs((double)one[e] - ref[e]) < 2e-5))
                    fail_msg("one query: hd %lld pos %lld portable %d: %g vs %g", (long long)a->hd,
                             (long long)(a->pos0 + i), portable, (double)one[e], ref[e]);
        }
    }
    uq_attn_force_portable(0);
    free(q);
    free(k);
    free(v);
    free(out);
    free(one);
    free(ref);
    free(scratch);
}

static void test_blocks(void **state)
{
    (void)state;
    uint64_t seed = 42;
    static const acase cases[] = {
        {64, 8, 4, 0, 1, 1}, {64, 8, 4, 0, 2, 1},     {64, 8, 4, 0, 16, 1},   {64, 8, 4, 0, 32, 1},
        {64, 8, 4, 0, 45, 1}, {64, 8, 4, 7, 32, 1},   {64, 8, 4, 33, 17, 1},  {64, 4, 4, 100, 5, 1},
        {48, 6, 2, 0, 37, 1}, {48, 6, 2, 19, 31, 1},  {128, 4, 1, 0, 33, 1},  {128, 4, 1, 61, 29, 1},
        {8, 8, 4, 3, 21, 1},  {40, 2, 2, 9, 19, 1},   {80, 2, 1, 0, 18, 1},   {64, 8, 4, 5, 40, 8},
        {128, 2, 2, 0, 32, 30}, {16, 2, 1, 250, 32, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i], &seed);
}

/* Whole prefills through the forward pass (bundled model: head size 8). */
static void forward_logits(const uq_model *m, int threads, int n_batch, const int32_t *ids, size_t n, int one_by_one,
                           float *logits)
{
    uq_context_params cp;
    uq_context_params_init(&cp);
    cp.n_ctx = 128;
    cp.n_threads = threads;
    cp.n_batch = n_batch;
    cp.backend = "cpu";
    uq_context *c;
    assert_int_equal(uq_context_create(m, &cp, &c), UQ_OK);
    const int64_t vocab = uq_context_vocab(c);
    if (one_by_one)
        for (size_t i = 0; i < n; i++) assert_int_equal(uq_forward(c, ids + i, 1, logits + i * (size_t)vocab), UQ_OK);
    else
        assert_int_equal(uq_forward(c, ids, n, logits), UQ_OK);
    uq_context_free(c);
}

static void test_forward_threads(void **state)
{
    (void)state;
    char p[1024];
    uq_model *m;
    assert_int_equal(uq_model_open(tu_bundled_model(p, sizeof p), &m), UQ_OK);
    enum { N = 75, V = 512 };
    int32_t ids[N];
    uint64_t seed = 7;
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(tu_rand_u64(&seed) % V);
    float *a = xmalloc(sizeof(float) * N * V), *b = xmalloc(sizeof(float) * N * V);
    forward_logits(m, 1, 512, ids, N, 0, a);
    forward_logits(m, 3, 512, ids, N, 0, b);
    assert_memory_equal(a, b, sizeof(float) * N * V);
    forward_logits(m, 2, 512, ids, N, 1, b);
    assert_true(tu_max_abs_diff(a, b, (size_t)N * V) < 1e-3);
    forward_logits(m, 2, 20, ids, N, 0, b); /* chunks starting after cached positions */
    assert_true(tu_max_abs_diff(a, b, (size_t)N * V) < 1e-3);
    free(a);
    free(b);
    uq_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_forward_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
