/* Model-level quantization: plan, output folder, reload, bit-exact
 * dequantization, error bounds, mixed precision, sharding, threads, and the
 * error paths (existing output, NaN, cancellation, bad configs). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/model_internal.h"
#include "model/synthetic.h"
#include "quant/quant.h"
#include "quantize/plan.h"

static char scratch[1024];

static const char *spath(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", scratch, name);
    return buf;
}

/* Every quantized weight of dst dequantizes exactly as quantizing the source
 * tensor in memory does, and within MLX's error bound of the source. */
static void check_against_source(const char *src_dir, const char *dst_dir, int expect_quantized)
{
    uq_model *src, *dst;
    assert_int_equal(uq_model_open(src_dir, &src), UQ_OK);
    assert_int_equal(uq_model_open(dst_dir, &dst), UQ_OK);
    assert_int_equal(uq_model_is_quantized(dst), expect_quantized != 0);
    int n_quantized = 0;
    for (size_t i = 0; i < uq_model_weight_count(dst); i++) {
        const uq_weight *q = uq_model_weight(dst, i);
        const uq_weight *s = uq_model_find_weight(src, q->module);
        assert_non_null(s);
        assert_int_equal(q->rows, s->rows);
        assert_int_equal(q->cols, s->cols);
        size_t n = (size_t)(q->rows * q->cols);
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *w = malloc(n * sizeof *w);
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(w);
        assert_int_equal(uq_dequantize_tensor(dst, q->module, a, n), UQ_OK);
        assert_int_equal(uq_dequantize_tensor(src, s->module, w, n), UQ_OK);
        if (!q->quantized) {
            assert_memory_equal(a, w, n * sizeof *a);
        } else {
            n_quantized++;
            uq_qparams qp = uq_weight_qparams(q);
            size_t pb = uq_quant_packed_bytes(&qp, q->rows, q->cols), sb = uq_quant_scales_bytes(&qp, q->rows, q->cols);
            void *packed = malloc(pb), *scales = malloc(sb), *biases = malloc(sb);
            assert_int_equal(uq_quantize_tensor(&qp, s->dtype, s->weight->data, s->rows, s->cols, packed, scales,
                                                biases, 0, 1),
                             UQ_OK);
            assert_memory_equal(packed, q->weight->data, pb);
            assert_memory_equal(scales, q->scales->data, sb);
            if (q->biases) assert_memory_equal(biases, q->biases->data, sb);
            assert_int_equal(uq_dequantize_qtensor(&qp, q->rows, q->cols, packed, scales, biases, b), UQ_OK);
            assert_memory_equal(a, b, n * sizeof *a);
            /* MLX's bound: <= 0.5 step unless clipped at the code range's end, <= 1 step there */
            int64_t g = qp.group_size ? qp.group_size : q->cols;
            int top = (1 << q->bits) - 1;
            for (int64_t r = 0; r < q->rows; r++) {
                for (int64_t col = 0; col < q->cols; col++) {
                    size_t k = (size_t)(r * q->cols + col);
                    float step = fabsf(uq_qload(q->dtype, q->scales->data, (size_t)(r * (q->cols / g) + col / g)));
                    double err = fabs((double)w[k] - (double)a[k]);
                    int code = uq_unpack_at((const unsigned char *)q->weight->data + (size_t)r * q->weight->shape[1] * 4,
                                            (size_t)col, q->bits);
                    int at_end = code == 0 || code == top;
                    /* plus what rounding the stored scale and bias to the weight's dtype adds:
                     * half an ulp of each, the scale's times the code */
                    double ulp = q->dtype == UQ_BF16 ? 0x1p-8 : q->dtype == UQ_F16 ? 0x1p-11 : 0x1p-24;
                    float bias = q->biases ? uq_qload(q->dtype, q->biases->data, (size_t)(r * (q->cols / g) + col / g)) : 0;
                    double bound = (at_end ? 1.0 : 0.5) * step + ulp * (code * step + fabs(bias)) +
                                   1e-6 * fabs(w[k]) + 1e-30;
                    if (err > bound)
                        fail_msg("%s [%lld, %lld]: |%g - %g| = %g > %g (step %g, code %d)", q->module, (long long)r,
                                 (long long)col, w[k], a[k], err, bound, step, code);
                }
            }
            free(packed);
            free(scales);
            free(biases);
        }
        free(a);
        free(b);
        free(w);
    }
    if (expect_quantized >= 0) assert_int_equal(n_quantized, expect_quantized);
    uq_model_close(src);
    uq_model_close(dst);
}

/* Two folders hold the same weights (however sharded). */
static void check_same_weights(const char *a_dir, const char *b_dir)
{
    uq_model *a, *b;
    assert_int_equal(uq_model_open(a_dir, &a), UQ_OK);
    assert_int_equal(uq_model_open(b_dir, &b), UQ_OK);
    assert_int_equal(uq_model_weight_count(a), uq_model_weight_count(b));
    for (size_t i = 0; i < uq_model_weight_count(a); i++) {
        const uq_weight *x = uq_model_weight(a, i), *y = uq_model_find_weight(b, x->module);
        assert_non_null(y);
        assert_int_equal(x->weight->nbytes, y->weight->nbytes);
        assert_memory_equal(x->weight->data, y->weight->data, x->weight->nbytes);
        if (x->scales) assert_memory_equal(x->scales->data, y->scales->data, x->scales->nbytes);
        if (x->biases) assert_memory_equal(x->biases->data, y->biases->data, x->biases->nbytes);
    }
    uq_model_close(a);
    uq_model_close(b);
}

static char *config_text(const char *dir)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/config.json", dir);
    return tu_read_file(p, NULL);
}

static void test_stories_default(void **state)
{
    (void)state;
    char src[1024], dst[1024];
    tu_bundled_model(src, sizeof src);
    spath("s4", dst, sizeof dst);
    uq_quant_config c;
    uq_quant_config_init(&c);
    uq_quant_report rep;
    assert_int_equal(uq_quantize_model(src, dst, &c, &rep), UQ_OK);
    /* 36 matrices; the 5 down_proj (input 172) fit no MLX group and stay float */
    assert_int_equal(rep.n_decisions, 36);
    assert_int_equal(rep.n_quantized, 31);
    assert_int_equal(rep.n_float, 5);
    int notes = 0;
    for (size_t i = 0; i < rep.n_decisions; i++)
        if (strstr(rep.decisions[i].module, "down_proj")) {
            assert_false(rep.decisions[i].quantized);
            assert_non_null(strstr(rep.decisions[i].note, "172"));
            notes++;
        }
    assert_int_equal(notes, 5);
    assert_true(fabs(rep.bits_per_weight - 5.0) < 1e-9); /* 4 bits + f32 scale and bias per 64 */
    uq_quant_report_free(&rep);
    check_against_source(src, dst, 31);
    char *cfg = config_text(dst);
    assert_non_null(strstr(cfg, "\"quantization\": {"));
    assert_non_null(strstr(cfg, "\"quantization_config\": {"));
    assert_non_null(strstr(cfg, "\"mode\": \"affine\""));
    assert_non_null(strstr(cfg, "\"rms_norm_eps\": 1e-5,"));
    free(cfg);
    /* the tokenizer and other files came along; the safetensors says format mlx */
    char p[2048];
    snprintf(p, sizeof p, "%s/tokenizer.json", dst);
    assert_true(access(p, R_OK) == 0);
    uq_model_files *f;
    assert_int_equal(uq_files_open(dst, &f), UQ_OK);
    assert_string_equal(uq_files_metadata(f, "format"), "mlx");
    const uq_tensor *t = uq_files_find(f, "model.embed_tokens.weight");
    assert_int_equal(t->dtype, UQ_U32);
    assert_int_equal(t->shape[0], 512);
    assert_int_equal(t->shape[1], 64 * 4 / 32);
    assert_int_equal(uq_files_find(f, "model.embed_tokens.scales")->dtype, UQ_F32);
    assert_non_null(uq_files_find(f, "model.layers.0.mlp.down_proj.weight"));
    assert_null(uq_files_find(f, "model.layers.0.mlp.down_proj.scales"));
    uq_files_close(f);

    /* an existing output is refused without force, replaced with it */
    assert_int_equal(uq_quantize_model(src, dst, &c, NULL), UQ_ERR_EXISTS);
    c.force = 1;
    c.bits = 8;
    assert_int_equal(uq_quantize_model(src, dst, &c, NULL), UQ_OK);
    check_against_source(src, dst, 31);
    /* never over the input itself */
    assert_int_equal(uq_quantize_model(src, src, &c, NULL), UQ_ERR_ARG);
}

static void test_every_width(void **state)
{
    (void)state;
    char src[1024], dst[1024];
    tu_bundled_model(src, sizeof src);
    for (int bits = 1; bits <= 8; bits++) {
        for (int g = 32; g <= 64; g += 32) {
            uq_quant_config c;
            uq_quant_config_init(&c);
            c.bits = bits;
            c.group_size = g;
            c.force = 1;
            spath("width", dst, sizeof dst);
            assert_int_equal(uq_quantize_model(src, dst, &c, NULL), UQ_OK);
            check_against_source(src, dst, 31);
            char *cfg = config_text(dst);
            const char *mode = (bits == 1 || bits == 7) ? "\"mode\": \"uquant-affine\"" : "\"mode\": \"affine\"";
            assert_non_null(strstr(cfg, mode));
            free(cfg);
        }
    }
}

static void test_symmetric(void **state)
{
    (void)state;
    char src[1024], dst[1024];
    tu_bundled_model(src, sizeof src);
    uq_quant_config c;
    uq_quant_config_init(&c);
    c.scheme = UQ_SCHEME_SYMMETRIC;
    c.bits = 8;
    c.group_size = 0; /* one scale per output row, like quanto's int8 */
    spath("sym8", dst, sizeof dst);
    uq_quant_report rep;
    assert_int_equal(uq_quantize_model(src, dst, &c, &rep), UQ_OK);
    assert_int_equal(rep.n_quantized, 36); /* per-row scales fit every input dimension */
    uq_quant_report_free(&rep);
    check_against_source(src, dst, 36);
    uq_model *m;
    assert_int_equal(uq_model_open(dst, &m), UQ_OK);
    const uq_weight *w = uq_model_find_weight(m, "model.layers.0.mlp.down_proj");
    assert_true(w->quantized);
    assert_int_equal(w->scheme, UQ_SCHEME_SYMMETRIC);
    assert_int_equal(w->group_size, 172);
    assert_null(w->biases);
    uq_model_close(m);
    char *cfg = config_text(dst);
    assert_non_null(strstr(cfg, "uquant-symmetric"));
    free(cfg);

    c.bits = 4;
    c.group_size = 32;
    spath("sym4", dst, sizeof dst);
    assert_int_equal(uq_quantize_model(src, dst, &c, NULL), UQ_OK);
    check_against_source(src, dst, 31);
    c.bits = 1;
    assert_int_equal(uq_quantize_model(src, dst, &c, NULL), UQ_ERR_UNSUPPORTED);
}

static void test_mixed(void **state)
{
    (void)state;
    char src[1024], dst[1024];
    tu_bundled_model(src, sizeof src);
    uq_quant_config c;
    uq_quant_config_init(&c);
    c.bits = 4;
    c.output_bits = 8; /* tied: applies to the embedding */
    snprintf(c.layer_bits[0].pattern, UQ_MAX_PATTERN, "model.layers.0.*");
    c.layer_bits[0].bits = 6;
    snprintf(c.layer_bits[1].pattern, UQ_MAX_PATTERN, "model.layers.0.self_attn.q_proj");
    c.layer_bits[1].bits = 2;
    c.layer_bits[1].group_size = 32;
    snprintf(c.layer_bits[2].pattern, UQ_MAX_PATTERN, "model.layers.4");
    c.layer_bits[2].bits = 16; /* kept float */
    c.n_layer_bits = 3;
    snprintf(c.skip_modules[0], UQ_MAX_PATTERN, "k_proj");
    c.n_skip_modules = 1;
    spath("mixed", dst, sizeof dst);
    assert_int_equal(uq_quantize_model(src, dst, &c, NULL), UQ_OK);
    check_against_source(src, dst, -1);
    uq_model *m;
    assert_int_equal(uq_model_open(dst, &m), UQ_OK);
    const uq_weight *w;
    assert_int_equal((w = uq_model_find_weight(m, "model.embed_tokens"))->bits, 8);
    assert_int_equal((w = uq_model_find_weight(m, "model.layers.0.self_attn.v_proj"))->bits, 6);
    w = uq_model_find_weight(m, "model.layers.0.self_attn.q_proj");
    assert_int_equal(w->bits, 2);
    assert_int_equal(w->group_size, 32);
    assert_false(uq_model_find_weight(m, "model.layers.0.self_attn.k_proj")->quantized);
    assert_false(uq_model_find_weight(m, "model.layers.4.self_attn.q_proj")->quantized);
    assert_int_equal(uq_model_find_weight(m, "model.layers.1.mlp.up_proj.weight")->bits, 4);
    uq_model_close(m);
    char *cfg = config_text(dst);
    assert_non_null(strstr(cfg, "\"model.layers.0.self_attn.q_proj\": {"));
    free(cfg);

    /* embedding_bits alone when untied would not touch lm_head: tied here, output_bits wins */
    uq_quant_config_init(&c);
    c.embedding_bits = 3;
    c.force = 1;
    assert_int_equal(uq_quantize_model(src, dst, &c, NULL), UQ_OK);
    assert_int_equal(uq_model_open(dst, &m), UQ_OK);
    assert_int_equal(uq_model_find_weight(m, "model.embed_tokens")->bits, 3);
    uq_model_close(m);
}

static void test_recipe_rule(void **state)
{
    (void)state;
    /* mlx-lm's use_more_bits on 32 layers: 0-3, 28-31 and every third from 6 */
    uq_quant_config c;
    uq_quant_config_init(&c);
    snprintf(c.recipe, sizeof c.recipe, "mixed_3_6");
    uq_plan p = {.cfg = &c, .tied = 0, .num_layers = 32};
    int expect_high[32] = {0};
    for (int i = 0; i < 32; i++) expect_high[i] = i < 4 || i >= 28 || (i - 4) % 3 == 2;
    for (int i = 0; i < 32; i++) {
        char mod[128];
        uq_quant_decision d;
        snprintf(mod, sizeof mod, "model.layers.%d.self_attn.v_proj", i);
        uq_plan_weight(&p, mod, 4096, 4096, &d);
        assert_int_equal(d.bits, expect_high[i] ? 6 : 3);
        snprintf(mod, sizeof mod, "model.layers.%d.mlp.down_proj", i);
        uq_plan_weight(&p, mod, 4096, 11008, &d);
        assert_int_equal(d.bits, expect_high[i] ? 6 : 3);
        snprintf(mod, sizeof mod, "model.layers.%d.self_attn.q_proj", i);
        uq_plan_weight(&p, mod, 4096, 4096, &d);
        assert_int_equal(d.bits, 3);
    }
    uq_quant_decision d;
    uq_plan_weight(&p, "lm_head", 32000, 4096, &d);
    assert_int_equal(d.bits, 6);
    uq_plan_weight(&p, "model.embed_tokens", 32000, 4096, &d);
    assert_int_equal(d.bits, 3);
    /* matching rules */
    assert_true(uq_module_matches("model.layers.0.*", "model.layers.0.mlp.up_proj"));
    assert_false(uq_module_matches("model.layers.0.*", "model.layers.10.mlp.up_proj"));
    assert_true(uq_module_matches("model.layers.1", "model.layers.1.mlp.up_proj"));
    assert_false(uq_module_matches("model.layers.1", "model.layers.12.mlp.up_proj"));
    assert_true(uq_module_matches("embed", "model.embed_tokens"));
    assert_true(uq_module_matches("lm_head", "lm_head"));
    assert_false(uq_module_matches("head", "lm_head"));
    assert_true(uq_module_matches("transformer.h.0", "transformer.h.0.attn.c_proj"));
}

static void test_shards_threads(void **state)
{
    (void)state;
    char src[1024], a[1024], b[1024];
    tu_bundled_model(src, sizeof src);
    uq_quant_config c;
    uq_quant_config_init(&c);
    c.n_threads = 1;
    spath("t1", a, sizeof a);
    assert_int_equal(uq_quantize_model(src, a, &c, NULL), UQ_OK);
    for (int t = 2; t <= 3; t++) {
        c.n_threads = t;
        c.chunk_size = t == 3 ? 7 : 0; /* odd chunks too */
        spath(t == 2 ? "t2" : "t3", b, sizeof b);
        assert_int_equal(uq_quantize_model(src, b, &c, NULL), UQ_OK);
        assert_int_equal(tu_system("cmp -s '%s/model.safetensors' '%s/model.safetensors'", a, b), 0);
    }
    c.max_shard_bytes = 100000;
    spath("sharded", b, sizeof b);
    uq_quant_report rep;
    assert_int_equal(uq_quantize_model(src, b, &c, &rep), UQ_OK);
    assert_true(rep.n_shards >= 3);
    uq_quant_report_free(&rep);
    check_against_source(src, b, 31);
    check_same_weights(a, b);
}

static void test_config_file(void **state)
{
    (void)state;
    uq_quant_config c;
    uq_quant_config_init(&c);
    const char *j = "{\"default_bits\": 3, \"group_size\": 32, \"layer_bits\": {\"transformer.h.0\": 8,"
                    " \"model.layers.1.*\": {\"bits\": 6, \"group_size\": 64}}, \"skip_modules\": [\"lm_head\"],"
                    " \"embedding_bits\": 8, \"output_bits\": null, \"memory_efficient\": true, \"chunk_size\": 512,"
                    " \"backend\": \"auto\"}";
    assert_int_equal(uq_quant_config_parse(j, strlen(j), "cfg.json", &c), UQ_OK);
    assert_int_equal(c.bits, 3);
    assert_int_equal(c.group_size, 32);
    assert_int_equal(c.n_layer_bits, 2);
    assert_string_equal(c.layer_bits[1].pattern, "model.layers.1.*");
    assert_int_equal(c.layer_bits[1].group_size, 64);
    assert_int_equal(c.n_skip_modules, 1);
    assert_int_equal(c.embedding_bits, 8);
    assert_int_equal(c.chunk_size, 512);
    const char *bad[] = {"{\"bits\": 9}", "{\"bits\": \"4\"}", "{\"colour\": 1}", "{\"layer_bits\": [1]}",
                         "{\"skip_modules\": \"x\"}", "{\"recipe\": \"mixed_9_9\"}", "{\"group_size\": 12}", "[",
                         "{\"layer_bits\": {\"a\": {\"group_size\": 32}}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uq_quant_config_init(&c);
        uq_status st = uq_quant_config_parse(bad[i], strlen(bad[i]), "cfg.json", &c);
        if (st == UQ_OK) fail_msg("accepted %s", bad[i]);
    }
}

static void test_bad_inputs(void **state)
{
    (void)state;
    char src[1024], dst[1024], p[2048];
    tu_bundled_model(src, sizeof src);
    uq_quant_config c;
    uq_quant_config_init(&c);
    /* NaN in a weight: error naming the tensor, no output */
    spath("nan-src", p, sizeof p);
    assert_int_equal(tu_system("rm -rf '%s' && cp -r '%s' '%s' && chmod -R u+w '%s'", p, src, p, p), 0);
    uq_model_files *f;
    char file[2100];
    snprintf(file, sizeof file, "%s/model.safetensors", p);
    assert_int_equal(uq_files_open(p, &f), UQ_OK);
    const uq_tensor *t = uq_files_find(f, "model.layers.2.self_attn.o_proj.weight");
    /* file offset = data section start + distance from the first tensor (which starts it) */
    const uq_st_file *shard = uq_files_shard(f, 0);
    long off = 8 + (long)uq_st_header_size(shard) +
               (long)((const unsigned char *)t->data - (const unsigned char *)uq_st_tensor(shard, 0)->data);
    uq_files_close(f);
    FILE *fp = fopen(file, "r+b");
    assert_non_null(fp);
    float nan = NAN;
    fseek(fp, off + 4 * 70, SEEK_SET);
    fwrite(&nan, 4, 1, fp);
    fclose(fp);
    spath("nan-out", dst, sizeof dst);
    assert_int_equal(uq_quantize_model(p, dst, &c, NULL), UQ_ERR_NONFINITE);
    assert_non_null(strstr(uq_last_error(), "model.layers.2.self_attn.o_proj.weight"));
    assert_int_equal(tu_system("test ! -e '%s'", dst), 0);
    assert_int_equal(tu_system("test -z \"$(ls -A '%s' | grep uquant-tmp)\"", scratch), 0);
    c.allow_nonfinite = 1;
    assert_int_equal(uq_quantize_model(p, dst, &c, NULL), UQ_OK);

    /* already quantized input */
    char q[1024];
    spath("again", q, sizeof q);
    uq_quant_config_init(&c);
    assert_int_equal(uq_quantize_model(dst, q, &c, NULL), UQ_ERR_UNSUPPORTED);
    /* missing source, missing parent folder of the output */
    assert_int_equal(uq_quantize_model("/nonexistent/model", q, &c, NULL), UQ_ERR_MISSING);
    assert_int_equal(uq_quantize_model(src, "/nonexistent/dir/out", &c, NULL), UQ_ERR_MISSING);
    /* bad configs */
    c.bits = 9;
    assert_int_equal(uq_quantize_model(src, q, &c, NULL), UQ_ERR_UNSUPPORTED);
    c.bits = 4;
    c.group_size = 20;
    assert_int_equal(uq_quantize_model(src, q, &c, NULL), UQ_ERR_UNSUPPORTED);
    assert_int_equal(tu_system("test ! -e '%s'", q), 0);
}

static void on_progress_cancel(void *user, uint64_t done, uint64_t total, const char *tensor)
{
    (void)done;
    (void)total;
    int *calls = user;
    if (tensor && ++*calls == 5) uq_cancel();
}

static void test_cancel(void **state)
{
    (void)state;
    char src[1024], dst[1024];
    tu_bundled_model(src, sizeof src);
    uq_quant_config c;
    uq_quant_config_init(&c);
    int calls = 0;
    c.progress = on_progress_cancel;
    c.progress_user = &calls;
    spath("cancelled", dst, sizeof dst);
    assert_int_equal(uq_quantize_model(src, dst, &c, NULL), UQ_ERR_CANCELLED);
    uq_cancel_reset();
    assert_int_equal(tu_system("test ! -e '%s'", dst), 0);
    assert_int_equal(tu_system("test -z \"$(ls -A '%s' | grep uquant-tmp)\"", scratch), 0);
}

/* Reloading a quantized folder whose files disagree with each other. */
static void test_bad_quantized(void **state)
{
    (void)state;
    char src[1024], dst[1024], p[2048];
    tu_bundled_model(src, sizeof src);
    uq_quant_config c;
    uq_quant_config_init(&c);
    spath("tamper", dst, sizeof dst);
    assert_int_equal(uq_quantize_model(src, dst, &c, NULL), UQ_OK);
    snprintf(p, sizeof p, "%s/config.json", dst);
    char *cfg = tu_read_file(p, NULL);
    char *at = strstr(cfg, "\"bits\": 4");
    assert_non_null(at);
    at[9 - 1] = '3'; /* claims 3 bits: the word count no longer fits */
    tu_write_file(p, cfg, strlen(cfg));
    uq_model *m;
    assert_int_equal(uq_model_open(dst, &m), UQ_ERR_SHAPE);
    assert_non_null(strstr(uq_last_error(), "words per row"));
    at[9 - 1] = '4';
    char *mode = strstr(cfg, "\"affine\"");
    memcpy(mode, "\"mxfp4\" ", 8);
    tu_write_file(p, cfg, strlen(cfg));
    assert_int_equal(uq_model_open(dst, &m), UQ_ERR_UNSUPPORTED);
    free(cfg);
}

/* Streaming keeps the resident set near 2 x the largest tensor in f32,
 * whatever the model size: quantize a synthetic 288 MiB model in a child and
 * read its peak RSS. */
static void test_peak_rss(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* shadow memory makes RSS meaningless */
#endif
    char dir[1024], out[1024];
    spath("big", dir, sizeof dir);
    assert_int_equal(tu_system("mkdir -p '%s'", dir), 0);
    /* 12 layers of hidden 1024 / FFN 2816 in bf16: 144M parameters, 288 MiB */
    uq_model_config mc = uq_synthetic_config(1024, 2816, 12, 16, 8, 4096, 1);
    assert_int_equal(uq_make_synthetic_model(dir, &mc, UQ_BF16, 1), UQ_OK);
    spath("big-q4", out, sizeof out);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uq_quant_config c;
        uq_quant_config_init(&c);
        c.n_threads = 2;
        _exit(uq_quantize_model(dir, out, &c, NULL) == UQ_OK ? 0 : 1);
    }
    int status;
    struct rusage ru;
    assert_int_equal(wait4(pid, &status, 0, &ru), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    double largest_f32 = 4096.0 * 1024 * 4; /* the embedding */
    double limit = 2 * largest_f32 + 64.0 * 1024 * 1024;
    double peak = (double)ru.ru_maxrss * 1024;
    print_message("peak RSS %.1f MiB quantizing a 288 MiB model (limit %.1f MiB)\n", peak / 1048576, limit / 1048576);
    assert_true(peak < limit);
    assert_int_equal(tu_system("rm -rf '%s' '%s'", dir, out), 0);
}

static void test_bench28m(void **state)
{
    (void)state;
    char src[4096], dst[1024];
    if (!tu_shared_has("models/bench-28m/model.safetensors")) skip();
    tu_shared_path("models/bench-28m", src, sizeof src);
    static const int widths[][2] = {{4, 64}, {3, 32}, {2, 128}, {8, 64}};
    for (size_t i = 0; i < sizeof widths / sizeof *widths; i++) {
        uq_quant_config c;
        uq_quant_config_init(&c);
        c.bits = widths[i][0];
        c.group_size = widths[i][1];
        c.force = 1;
        spath("bench28m", dst, sizeof dst);
        uq_quant_report rep;
        assert_int_equal(uq_quantize_model(src, dst, &c, &rep), UQ_OK);
        assert_int_equal(rep.n_quantized, 57); /* 8 layers x 7 + the tied embedding */
        /* bf16 scales and biases */
        assert_true(fabs(rep.bits_per_weight - (c.bits + 32.0 / c.group_size)) < 1e-9);
        uq_quant_report_free(&rep);
        check_against_source(src, dst, 57);
    }
}

int main(void)
{
    tu_scratch_dir("quantize", scratch, sizeof scratch);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_default), cmocka_unit_test(test_every_width),
        cmocka_unit_test(test_symmetric),       cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_recipe_rule),     cmocka_unit_test(test_shards_threads),
        cmocka_unit_test(test_config_file),     cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_cancel),          cmocka_unit_test(test_bad_quantized),
        cmocka_unit_test(test_peak_rss),        cmocka_unit_test(test_bench28m),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
