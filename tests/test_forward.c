/* The forward pass against the PyTorch reference logits in shared/refs, greedy
 * generation against the published text's ids, KV-cache consistency, several
 * sequences, and the quantized paths. */
#include "testutil.h"

#include "runtime/runtime.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *ref_logits(const char *rel, size_t n)
{
    char p[4096];
    size_t len;
    float *f = (float *)tu_read_file(tu_shared_path(rel, p, sizeof p), &len);
    assert_int_equal(len, n * sizeof(float));
    return f;
}

static void check_logits(const char *model_dir, const char *json_rel, const char *logits_rel, double tol,
                         int n_threads)
{
    int32_t ids[64];
    size_t n = tu_ref_ids(json_rel, "input_ids", ids, 64);
    uq_model *m;
    assert_int_equal(uq_model_open(model_dir, &m), UQ_OK);
    uq_context_params cp;
    uq_context_params_init(&cp);
    cp.n_threads = n_threads;
    cp.backend = "cpu-ref";
    uq_context *c;
    assert_int_equal(uq_context_create(m, &cp, &c), UQ_OK);
    int64_t vocab = uq_context_vocab(c);
    float *logits = malloc(n * (size_t)vocab * sizeof(float));
    assert_int_equal(uq_forward(c, ids, n, logits), UQ_OK);
    float *ref = ref_logits(logits_rel, n * (size_t)vocab);
    double d = tu_max_abs_diff(logits, ref, n * (size_t)vocab);
    print_message("%s: max |logit - reference| = %.3g over %zu x %lld (threads %d)\n", model_dir, d, n,
                  (long long)vocab, n_threads);
    assert_true(d < tol);

    /* the same tokens one at a time through the KV cache */
    uq_context_reset(c, 0);
    float *one = malloc((size_t)vocab * sizeof(float));
    double worst = 0;
    for (size_t t = 0; t < n; t++) {
        assert_int_equal(uq_forward(c, &ids[t], 1, one), UQ_OK);
        double dd = tu_max_abs_diff(one, ref + t * (size_t)vocab, (size_t)vocab);
        if (dd > worst) worst = dd;
    }
    assert_true(worst < tol);
    assert_int_equal(uq_context_pos(c, 0), (int64_t)n);
    free(one);
    free(ref);
    free(logits);
    uq_context_free(c);
    uq_model_close(m);
}

static void test_stories_logits(void **state)
{
    (void)state;
    char p[1024];
    if (!tu_shared_has("refs/stories260K-logits.f32")) skip();
    check_logits(tu_bundled_model(p, sizeof p), "refs/stories260K.json", "refs/stories260K-logits.f32", 1e-3, 1);
    check_logits(p, "refs/stories260K.json", "refs/stories260K-logits.f32", 1e-3, 3);
}

static void test_bench28m_logits(void **state)
{
    (void)state;
    char p[4096];
    if (!tu_shared_has("refs/bench-28m-logits.f32") || !tu_shared_has("models/bench-28m/model.safetensors")) skip();
    check_logits(tu_shared_path("models/bench-28m", p, sizeof p), "refs/bench-28m.json", "refs/bench-28m-logits.f32",
                 2e-3, 0);
}

static void test_greedy(void **state)
{
    (void)state;
    char p[1024];
    if (!tu_shared_has("refs/stories260K.json")) skip();
    int32_t want[128];
    size_t n_want = tu_ref_ids("refs/stories260K.json", "greedy_from_bos", want, 128);
    uq_model *m;
    assert_int_equal(uq_model_open(tu_bundled_model(p, sizeof p), &m), UQ_OK);
    uq_context *c;
    assert_int_equal(uq_context_create(m, NULL, &c), UQ_OK);
    int32_t out[128];
    size_t n_out;
    assert_int_equal(uq_generate(c, want, 1, n_want - 1, NULL, NULL, NULL, out, &n_out), UQ_OK);
    assert_int_equal(n_out, n_want - 1);
    assert_memory_equal(out, want + 1, n_out * sizeof(int32_t));
    uq_context_free(c);
    uq_model_close(m);
}

/* Two sequences in one context give the logits each gives alone. */
static void test_sequences(void **state)
{
    (void)state;
    char p[1024];
    uq_model *m;
    assert_int_equal(uq_model_open(tu_bundled_model(p, sizeof p), &m), UQ_OK);
    uq_context_params cp;
    uq_context_params_init(&cp);
    cp.n_seq = 2;
    cp.n_ctx = 64;
    cp.n_batch = 5; /* chunks smaller than the inputs */
    uq_context *c;
    assert_int_equal(uq_context_create(m, &cp, &c), UQ_OK);
    int32_t a[12] = {1, 403, 407, 261, 378, 432, 317, 394, 261, 370, 352, 266};
    int32_t b[7] = {1, 300, 301, 302, 303, 304, 305};
    float la[512], lb[512], la2[512];
    assert_int_equal(uq_forward_seq(c, 0, a, 12, la, 0), UQ_OK);
    assert_int_equal(uq_forward_seq(c, 1, b, 7, lb, 0), UQ_OK);
    uq_context_reset(c, 0);
    assert_int_equal(uq_forward_seq(c, 0, a, 12, la2, 0), UQ_OK);
    assert_memory_equal(la, la2, sizeof la);
    assert_int_equal(uq_context_pos(c, 1), 7);
    /* errors: out of vocabulary, past the context, bad sequence */
    int32_t bad = 512;
    assert_int_equal(uq_forward_seq(c, 0, &bad, 1, la, 0), UQ_ERR_ARG);
    int32_t many[64] = {0};
    assert_int_equal(uq_forward_seq(c, 1, many, 64, la, 0), UQ_ERR_ARG);
    assert_int_equal(uq_forward_seq(c, 2, a, 1, la, 0), UQ_ERR_ARG);
    uq_context_free(c);
    uq_model_close(m);
}

/* Quantized models run straight from their packed weights. The tolerances are
 * regression bounds on the tiny model's logits (which span tens of units):
 * the error grows as bits shrink. */
static void test_quantized_forward(void **state)
{
    (void)state;
    char src[1024], dst[1024], scratch[1024];
    tu_bundled_model(src, sizeof src);
    tu_scratch_dir("forward", scratch, sizeof scratch);
    int32_t ids[15];
    size_t n = tu_ref_ids("refs/stories260K.json", "input_ids", ids, 15);
    float *ref = ref_logits("refs/stories260K-logits.f32", n * 512);
    static const struct {
        uq_scheme scheme;
        int bits, group;
        double tol;
    } cases[] = {{UQ_SCHEME_AFFINE, 8, 32, 0.5}, {UQ_SCHEME_AFFINE, 4, 32, 5}, {UQ_SCHEME_AFFINE, 3, 64, 12},
                 {UQ_SCHEME_SYMMETRIC, 8, 0, 0.5}, {UQ_SCHEME_AFFINE, 2, 32, 30}, {UQ_SCHEME_AFFINE, 5, 64, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uq_quant_config qc;
        uq_quant_config_init(&qc);
        qc.scheme = cases[i].scheme;
        qc.bits = cases[i].bits;
        qc.group_size = cases[i].group;
        qc.force = 1;
        snprintf(dst, sizeof dst, "%s/q", scratch);
        assert_int_equal(uq_quantize_model(src, dst, &qc, NULL), UQ_OK);
        uq_model *m;
        assert_int_equal(uq_model_open(dst, &m), UQ_OK);
        uq_context *c;
        assert_int_equal(uq_context_create(m, NULL, &c), UQ_OK);
        float *logits = malloc(n * 512 * sizeof(float));
        assert_int_equal(uq_forward(c, ids, n, logits), UQ_OK);
        double d = tu_max_abs_diff(logits, ref, n * 512);
        print_message("%s %d-bit g%d: max |logit - float reference| = %.3g\n",
                      qc.scheme == UQ_SCHEME_AFFINE ? "affine" : "symmetric", qc.bits, qc.group_size, d);
        assert_true(d < cases[i].tol);
        free(logits);
        uq_context_free(c);
        uq_model_close(m);
    }
    free(ref);
}

static void test_not_runnable(void **state)
{
    (void)state;
    char scratch[1024], p[1200];
    tu_scratch_dir("forward-bad", scratch, sizeof scratch);
    const char *src = getenv("UQ_SOURCE_DIR");
    assert_int_equal(tu_system("cp '%s/models/stories260K/model.safetensors' '%s/'", src, scratch), 0);
    snprintf(p, sizeof p, "%s/config.json", scratch);
    const char *cfg = "{\"architectures\": [\"GPT2LMHeadModel\"], \"model_type\": \"gpt2\"}";
    tu_write_file(p, cfg, strlen(cfg));
    uq_model *m;
    assert_int_equal(uq_model_open(scratch, &m), UQ_OK);
    uq_context *c;
    assert_int_equal(uq_context_create(m, NULL, &c), UQ_ERR_UNSUPPORTED);
    uq_model_close(m);
    /* a config whose shapes disagree with the tensors */
    cfg = "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 170, \"num_hidden_layers\": 5,"
          " \"num_attention_heads\": 8, \"num_key_value_heads\": 4, \"vocab_size\": 512, \"tie_word_embeddings\": true}";
    tu_write_file(p, cfg, strlen(cfg));
    assert_int_equal(uq_model_open(scratch, &m), UQ_OK);
    assert_int_equal(uq_context_create(m, NULL, &c), UQ_ERR_SHAPE);
    assert_non_null(strstr(uq_last_error(), "gate_proj"));
    uq_model_close(m);
    /* more layers than tensors */
    cfg = "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 172, \"num_hidden_layers\": 6,"
          " \"num_attention_heads\": 8, \"num_key_value_heads\": 4, \"vocab_size\": 512, \"tie_word_embeddings\": true}";
    tu_write_file(p, cfg, strlen(cfg));
    assert_int_equal(uq_model_open(scratch, &m), UQ_OK);
    assert_int_equal(uq_context_create(m, NULL, &c), UQ_ERR_MISSING);
    assert_non_null(strstr(uq_last_error(), "model.layers.5"));
    uq_model_close(m);
}

/* llama3 rope scaling: inverse frequencies against the formula written out
 * independently (transformers' _compute_llama3_parameters). */
static void test_rope_llama3(void **state)
{
    (void)state;
    uq_model_config c;
    const char *j = "{\"model_type\": \"llama\", \"hidden_size\": 256, \"num_attention_heads\": 2,"
                    " \"num_hidden_layers\": 1, \"intermediate_size\": 64, \"vocab_size\": 10,"
                    " \"rope_theta\": 500000.0, \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0,"
                    " \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}}";
    assert_int_equal(uq_config_parse(j, strlen(j), "c", &c), UQ_OK);
    const int64_t half = c.head_dim / 2, n_ctx = 3;
    float cs[3 * 64], sn[3 * 64];
    uq_rope_tables(&c, n_ctx, cs, sn);
    int saw_low = 0, saw_mid = 0, saw_high = 0;
    for (int64_t i = 0; i < half; i++) {
        double f = 1.0 / pow(500000.0, (double)(2 * i) / (double)c.head_dim);
        double wl = 2 * M_PI / f, want;
        if (wl < 8192.0 / 4.0) want = f, saw_high = 1;
        else if (wl > 8192.0 / 1.0) want = f / 8.0, saw_low = 1;
        else {
            double sm = (8192.0 / wl - 1.0) / (4.0 - 1.0);
            want = (1 - sm) * f / 8.0 + sm * f;
            saw_mid = 1;
        }
        /* position 1: the angle is the frequency itself */
        double got = atan2((double)sn[half + i], (double)cs[half + i]);
        assert_true(fabs(got - want) <= 1e-6 * fabs(want) + 1e-9);
        assert_true(cs[i] == 1.0f && sn[i] == 0.0f); /* position 0 */
    }
    assert_true(saw_low && saw_mid && saw_high);
}

/* Biases on q/k/v/o (qwen2-style): zero biases change nothing, a bias on
 * o_proj changes the logits. */
static void test_biases(void **state)
{
    (void)state;
    char scratch[1024], src[1024];
    tu_bundled_model(src, sizeof src);
    tu_scratch_dir("forward-bias", scratch, sizeof scratch);
    uq_model *m;
    assert_int_equal(uq_model_open(src, &m), UQ_OK);
    const uq_model_files *f = uq_model_get_files(m);
    uq_st_writer *w;
    assert_int_equal(uq_st_writer_create(&w), UQ_OK);
    for (size_t i = 0; i < uq_files_count(f); i++) {
        const uq_tensor *t = uq_files_tensor(f, i);
        assert_int_equal(uq_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape), UQ_OK);
    }
    static const char *const proj[] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    for (int l = 0; l < 5; l++)
        for (int k = 0; k < 4; k++) {
            char n[128];
            snprintf(n, sizeof n, "model.layers.%d.self_attn.%s.bias", l, proj[k]);
            int64_t len = k == 1 || k == 2 ? 32 : 64;
            assert_int_equal(uq_st_writer_add(w, n, UQ_F32, 1, &len), UQ_OK);
        }
    assert_int_equal(uq_st_writer_begin(w, scratch, "model", 0), UQ_OK);
    for (size_t i = 0; i < uq_files_count(f); i++) {
        const uq_tensor *t = uq_files_tensor(f, i);
        assert_int_equal(uq_st_writer_put(w, t->name, 0, t->data, t->nbytes), UQ_OK);
    }
    float zeros[64] = {0}, ones[64];
    for (int i = 0; i < 64; i++) ones[i] = 0.5f;
    for (int l = 0; l < 5; l++)
        for (int k = 0; k < 4; k++) {
            char n[128];
            snprintf(n, sizeof n, "model.layers.%d.self_attn.%s.bias", l, proj[k]);
            const float *v = (l == 2 && k == 3) ? ones : zeros;
            assert_int_equal(uq_st_writer_put(w, n, 0, v, (k == 1 || k == 2 ? 32 : 64) * sizeof(float)), UQ_OK);
        }
    assert_int_equal(uq_st_writer_finish(w), UQ_OK);
    uq_st_writer_free(w);
    assert_int_equal(tu_system("cp '%s/config.json' '%s/'", src, scratch), 0);
    uq_model *b;
    assert_int_equal(uq_model_open(scratch, &b), UQ_OK);
    uq_context_params cp;
    uq_context_params_init(&cp);
    cp.backend = "cpu-ref";
    uq_context *c1, *c2;
    assert_int_equal(uq_context_create(m, &cp, &c1), UQ_OK);
    assert_int_equal(uq_context_create(b, &cp, &c2), UQ_OK);
    int32_t ids[4] = {1, 403, 407, 261};
    float l1[4 * 512], l2[4 * 512];
    assert_int_equal(uq_forward(c1, ids, 4, l1), UQ_OK);
    assert_int_equal(uq_forward(c2, ids, 4, l2), UQ_OK);
    assert_true(tu_max_abs_diff(l1, l2, 4 * 512) > 1e-3); /* the o_proj bias of layer 2 acts */
    uq_context_free(c1);
    uq_context_free(c2);
    uq_model_close(b);
    uq_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_logits),  cmocka_unit_test(test_bench28m_logits),
        cmocka_unit_test(test_greedy),          cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_quantized_forward), cmocka_unit_test(test_not_runnable),
        cmocka_unit_test(test_rope_llama3),     cmocka_unit_test(test_biases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
