/* Evaluation: window arithmetic of both protocols, perplexity against the
 * PyTorch figures, and the comparison figures of a model with itself and with
 * its quantized versions. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uquant.h"

typedef struct loaded {
    uq_model *m;
    uq_tokenizer *t;
    uq_context *c;
} loaded;

static void load(const char *dir, int64_t n_ctx, loaded *l)
{
    assert_int_equal(uq_model_open(dir, &l->m), UQ_OK);
    assert_int_equal(uq_tokenizer_load(dir, &l->t), UQ_OK);
    uq_context_params cp;
    uq_context_params_init(&cp);
    cp.n_ctx = (int)n_ctx;
    assert_int_equal(uq_context_create(l->m, &cp, &l->c), UQ_OK);
}

static void unload(loaded *l)
{
    uq_context_free(l->c);
    uq_tokenizer_free(l->t);
    uq_model_close(l->m);
}

static int32_t *tokenize_file(const uq_tokenizer *t, const char *rel, size_t max_bytes, size_t *n)
{
    char p[4096];
    size_t len;
    char *text = tu_read_file(tu_shared_path(rel, p, sizeof p), &len);
    if (len > max_bytes) {
        len = max_bytes;
        while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80) len--; /* whole UTF-8 characters */
    }
    int32_t *ids;
    assert_int_equal(uq_tokenizer_encode(t, text, len, 0, &ids, n), UQ_OK);
    free(text);
    return ids;
}

static void test_protocol_arithmetic(void **state)
{
    (void)state;
    char dir[1024];
    tu_bundled_model(dir, sizeof dir);
    loaded l;
    load(dir, 64, &l);
    size_t n;
    int32_t *ids = tokenize_file(l.t, "data/moby-dev.txt", 4000, &n);
    assert_true(n > 3 * 32);
    uq_eval_params p;
    uq_eval_params_init(&p);
    p.n_ctx = 32;
    uq_eval_result w, c;
    assert_int_equal(uq_evaluate(l.c, NULL, ids, n, &p, &w), UQ_OK);
    assert_int_equal(w.windows, (int64_t)(n / 32));
    assert_int_equal(w.scored, (uint64_t)w.windows * 31);
    p.protocol = UQ_PPL_LLAMACPP;
    assert_int_equal(uq_evaluate(l.c, NULL, ids, n, &p, &c), UQ_OK);
    assert_int_equal(c.scored, (uint64_t)c.windows * 16);
    assert_true(w.ppl > 1 && isfinite(w.ppl) && c.ppl > 1 && isfinite(c.ppl));
    /* a model against itself */
    p.max_windows = 2;
    uq_eval_result s;
    assert_int_equal(uq_evaluate(l.c, l.c, ids, n, &p, &s), UQ_OK);
    assert_int_equal(s.windows, 2);
    assert_true(s.have_reference);
    assert_true(s.kl_mean < 1e-9 && s.kl_max < 1e-9);
    assert_true(s.top1 == 1.0);
    assert_true(fabs(s.cosine - 1.0) < 1e-9);
    assert_true(fabs(s.ppl - s.ref_ppl) < 1e-9);
    /* errors: window longer than the context, text shorter than a window */
    p.n_ctx = 128;
    assert_int_equal(uq_evaluate(l.c, NULL, ids, n, &p, &s), UQ_ERR_ARG);
    p.n_ctx = 32;
    assert_int_equal(uq_evaluate(l.c, NULL, ids, 20, &p, &s), UQ_ERR_ARG);
    free(ids);
    unload(&l);
}

/* bench-28m: the tokenizer's counts for the whole texts match the reference,
 * and the first windows' perplexity under both protocols sits where the
 * PyTorch run puts the whole text (the full-text figure is checked by
 * tests/cli/eval_full.sh with the fast backend). */
static void test_bench28m(void **state)
{
    (void)state;
    char dir[4096];
    if (!tu_shared_has("models/bench-28m/model.safetensors")) skip();
    tu_shared_path("models/bench-28m", dir, sizeof dir);
    loaded l;
    load(dir, 512, &l);
    size_t n;
    int32_t *ids = tokenize_file(l.t, "data/sotu-dev.txt", (size_t)1 << 30, &n);
    assert_int_equal(n, 61506);
    uq_eval_params p;
    uq_eval_params_init(&p);
    p.max_windows = 1;
    uq_eval_result r;
    assert_int_equal(uq_evaluate(l.c, NULL, ids, n, &p, &r), UQ_OK);
    assert_int_equal(r.scored, 511);
    print_message("bench-28m, sotu-dev, first window: ppl %.4f (windows protocol)\n", r.ppl);
    assert_true(r.ppl > 30 && r.ppl < 70);
    p.protocol = UQ_PPL_LLAMACPP;
    assert_int_equal(uq_evaluate(l.c, NULL, ids, n, &p, &r), UQ_OK);
    assert_int_equal(r.scored, 256);
    print_message("bench-28m, sotu-dev, first window: ppl %.4f (llamacpp protocol)\n", r.ppl);
    assert_true(r.ppl > 30 && r.ppl < 70);
    free(ids);
    unload(&l);
}

/* 8-bit stays much closer to the original than 4-bit, which beats 2-bit. */
static void test_quantized_divergence(void **state)
{
    (void)state;
    char src[1024], dst[1024], scratch[1024];
    tu_bundled_model(src, sizeof src);
    tu_scratch_dir("eval", scratch, sizeof scratch);
    loaded ref;
    load(src, 64, &ref);
    size_t n;
    int32_t *ids = tokenize_file(ref.t, "data/moby-dev.txt", 6000, &n);
    double kl[3];
    const int bits[3] = {8, 4, 2};
    for (int i = 0; i < 3; i++) {
        uq_quant_config qc;
        uq_quant_config_init(&qc);
        qc.bits = bits[i];
        qc.group_size = 32;
        qc.force = 1;
        snprintf(dst, sizeof dst, "%s/q", scratch);
        assert_int_equal(uq_quantize_model(src, dst, &qc, NULL), UQ_OK);
        loaded q;
        load(dst, 64, &q);
        uq_eval_params p;
        uq_eval_params_init(&p);
        p.n_ctx = 64;
        uq_eval_result r;
        assert_int_equal(uq_evaluate(q.c, ref.c, ids, n, &p, &r), UQ_OK);
        print_message("%d-bit g32: ppl %.3f (float %.3f), KL mean %.5f p99 %.5f max %.5f, top-1 %.4f, cosine %.5f\n",
                      bits[i], r.ppl, r.ref_ppl, r.kl_mean, r.kl_p99, r.kl_max, r.top1, r.cosine);
        assert_true(r.kl_mean > 0 && r.kl_mean <= r.kl_p99 + 1e-12 && r.kl_p99 <= r.kl_max);
        assert_true(r.top1 > 0 && r.top1 <= 1 && r.cosine > 0 && r.cosine <= 1 + 1e-9);
        kl[i] = r.kl_mean;
        unload(&q);
    }
    assert_true(kl[0] < kl[1] && kl[1] < kl[2]);
    free(ids);
    unload(&ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol_arithmetic),
        cmocka_unit_test(test_bench28m),
        cmocka_unit_test(test_quantized_divergence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
