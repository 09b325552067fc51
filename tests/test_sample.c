/* uq_sample: greedy choice, draws with a temperature, top-k and top-p (the
 * rules the cuda backend's token picking follows), the edges of a draw,
 * and frequencies against the softmax over many seeded draws. */
#include "testutil.h"

#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int32_t pick(const float *logits, int64_t n, const uq_sampler_params *p, double r)
{
    float tmp[64];
    assert_true(n <= 64);
    memcpy(tmp, logits, (size_t)n * sizeof(float));
    return uq_sample_with(tmp, n, p, r);
}

static uq_sampler_params params(float t, int top_k, float top_p)
{
    uq_sampler_params p;
    uq_sampler_params_init(&p);
    p.temperature = t;
    p.top_k = top_k;
    p.top_p = top_p;
    return p;
}

/* Temperature 0: the first largest logit, and no draw from the generator. */
static void test_greedy(void **st)
{
    (void)st;
    const float x[] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
    float tmp[5];
    memcpy(tmp, x, sizeof x);
    uint64_t rng = 5;
    assert_int_equal(uq_sample(tmp, 5, NULL, &rng), 1);
    uq_sampler_params p = params(0.0f, 0, 1.0f);
    assert_int_equal(uq_sample(tmp, 5, &p, &rng), 1);
    assert_true(rng == 5);
    /* top-k 1 and a tiny top-p keep only the most likely token */
    p = params(1.0f, 1, 1.0f);
    for (double r = 0.0; r < 1.0; r += 0.125) assert_int_equal(pick(x, 5, &p, r), 1);
    p = params(1.0f, 0, 1e-6f);
    for (double r = 0.0; r < 1.0; r += 0.125) assert_int_equal(pick(x, 5, &p, r), 1);
}

/* Without top-k or top-p, r walks the vocabulary in index order; r = 0
 * gives the first token with a share, r just below 1 the last; tokens at
 * -inf never come. */
static void test_draw_order_and_edges(void **st)
{
    (void)st;
    const float x[] = {-INFINITY, 0.0f, 0.0f, -INFINITY, 0.0f, 0.0f, -INFINITY};
    uq_sampler_params p = params(1.0f, 0, 1.0f);
    assert_int_equal(pick(x, 7, &p, 0.0), 1);
    assert_int_equal(pick(x, 7, &p, 0.26), 2);
    assert_int_equal(pick(x, 7, &p, 0.51), 4);
    assert_int_equal(pick(x, 7, &p, 0.76), 5);
    assert_int_equal(pick(x, 7, &p, 1.0 - 0x1p-53), 5);
    /* top-k over ties: the smaller id first */
    p = params(1.0f, 2, 1.0f);
    assert_int_equal(pick(x, 7, &p, 0.0), 1);
    assert_int_equal(pick(x, 7, &p, 0.99), 2);
}

/* top-p: the shortest run of the most likely tokens whose share reaches
 * top_p; top-k cuts first. Probabilities 0.5, 0.3, 0.2 (ids 2, 0, 1). */
static void test_top_p_top_k(void **st)
{
    (void)st;
    const float x[] = {logf(0.3f), logf(0.2f), logf(0.5f)};
    uq_sampler_params p = params(1.0f, 0, 0.7f);
    /* kept: ids 2 and 0, shares 0.5 / 0.8 and 0.3 / 0.8 */
    assert_int_equal(pick(x, 3, &p, 0.0), 2);
    assert_int_equal(pick(x, 3, &p, 0.6), 2);
    assert_int_equal(pick(x, 3, &p, 0.65), 0);
    assert_int_equal(pick(x, 3, &p, 0.999), 0);
    p = params(1.0f, 0, 0.45f); /* reached by the first token alone */
    assert_int_equal(pick(x, 3, &p, 0.999), 2);
    p = params(1.0f, 0, 0.9f);
    assert_int_equal(pick(x, 3, &p, 0.95), 1);
    p = params(1.0f, 2, 0.99f);
    assert_int_equal(pick(x, 3, &p, 0.999), 0);
    /* the whole range of r covers exactly the kept tokens */
    p = params(1.0f, 0, 0.7f);
    for (int i = 0; i < 1000; i++) assert_int_not_equal(pick(x, 3, &p, i / 1000.0), 1);
}

/* Frequencies over 40000 seeded draws against softmax(x / t): each within
 * 4.5 standard deviations, with t = 1 and t = 0.5. */
static void test_frequencies(void **st)
{
    (void)st;
    const float x[] = {1.0f, 0.0f, 2.0f, -1.0f, 0.5f, 1.5f};
    enum { N = 6, DRAWS = 40000 };
    const float temps[] = {1.0f, 0.5f};
    for (int ti = 0; ti < 2; ti++) {
        uq_sampler_params p = params(temps[ti], 0, 1.0f);
        uint64_t rng = 123 + (uint64_t)ti;
        int count[N] = {0};
        for (int d = 0; d < DRAWS; d++) {
            float tmp[N];
            memcpy(tmp, x, sizeof x);
            int32_t id = uq_sample(tmp, N, &p, &rng);
            assert_true(id >= 0 && id < N);
            count[id]++;
        }
        double z = 0, e[N];
        for (int i = 0; i < N; i++) z += (e[i] = exp(x[i] / temps[ti]));
        for (int i = 0; i < N; i++) {
            const double q = e[i] / z, sd = sqrt(DRAWS * q * (1 - q));
            assert_true(fabs(count[i] - DRAWS * q) < 4.5 * sd);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_draw_order_and_edges),
        cmocka_unit_test(test_top_p_top_k),
        cmocka_unit_test(test_frequencies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
