/* The CUDA backend against cpu-ref: logits of bench-28m in float and under
 * every quantization scheme (max |difference| and KL divergence), decoding
 * through the KV cache (in chunks and one token at a time) against prefill,
 * several sequences, the fallback kernels (stories260K: shapes the fast
 * kernels do not take), tokens picked on the device (greedy and drawn, on
 * chosen logits and in generation) against uq_sample, and GPU quantization
 * byte for byte against the CPU quantizer. Without a usable GPU (or without
 * the module) every test but the first skips. */
#include "testutil.h"

#include "backend/cuda/cuda.h"
#include "quant/quant.h"
#include "runtime/runtime.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int have_cuda(void)
{
    static int state = -1;
    if (state < 0) {
        char why[256] = "";
        state = uq_cuda_available(why, sizeof why);
        if (state)
            print_message("cuda: %s (%s)\n", uq_cuda_device_name(), uq_cuda_module_path());
        else
            print_message("cuda backend unavailable: %s\n", why);
    }
    return state;
}

/* The registry knows the backend, and without a GPU it says why. */
static void test_available(void **st)
{
    (void)st;
    const uq_backend_ops *ops = uq_backend_find("cuda");
    assert_non_null(ops);
    assert_non_null(ops->forward);
    assert_non_null(ops->prepare);
    assert_non_null(ops->memory);
    char why[256] = "";
    int ok = ops->available(why, sizeof why);
    if (!ok) {
        assert_true(why[0] != 0);
        /* a context on it fails with the same reason */
        const char *srcdir = getenv("UQ_SOURCE_DIR");
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/models/stories260K", srcdir && *srcdir ? srcdir : "..");
        uq_model *m;
        if (uq_model_open(dir, &m) != UQ_OK) return; /* run outside ctest, without UQ_SOURCE_DIR */
        uq_context_params cp;
        uq_context_params_init(&cp);
        cp.backend = "cuda";
        uq_context *c = NULL;
        assert_int_equal(uq_context_create(m, &cp, &c), UQ_ERR_UNSUPPORTED);
        assert_non_null(strstr(uq_last_error(), why));
        uq_model_close(m);
    } else {
        uint64_t total = 0, free_bytes = 0;
        uq_backend b = {.ops = ops};
        assert_int_equal(ops->memory(&b, &total, &free_bytes), UQ_OK);
        assert_true(total > 0 && free_bytes <= total);
    }
}

/* Mean over rows of KL(softmax(ref) || softmax(x)). */
static double mean_kl(const float *ref, const float *x, size_t rows, int64_t vocab)
{
    double total = 0;
    for (size_t t = 0; t < rows; t++) {
        const float *a = ref + t * (size_t)vocab, *b = x + t * (size_t)vocab;
        double ma = -INFINITY, mb = -INFINITY;
        for (int64_t i = 0; i < vocab; i++) {
            ma = fmax(ma, a[i]);
            mb = fmax(mb, b[i]);
        }
        double sa = 0, sb = 0;
        for (int64_t i = 0; i < vocab; i++) {
            sa += exp(a[i] - ma);
            sb += exp(b[i] - mb);
        }
        double la = log(sa), lb = log(sb), kl = 0;
        for (int64_t i = 0; i < vocab; i++) {
            double pa = a[i] - ma - la, pb = b[i] - mb - lb;
            kl += exp(pa) * (pa - pb);
        }
        total += kl;
    }
    return total / (double)rows;
}

static uq_context *make_context(const uq_model *m, const char *backend, int n_ctx, int n_seq)
{
    uq_context_params cp;
    uq_context_params_init(&cp);
    cp.backend = backend;
    cp.n_ctx = n_ctx;
    cp.n_seq = n_seq;
    uq_context *c = NULL;
    uq_status st = uq_context_create(m, &cp, &c);
    if (st != UQ_OK) fail_msg("context on %s: %s", backend, uq_last_error());
    return c;
}

static int32_t host_argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

/* Whether the device's pick `got` is the host's for these logits, or one
 * the host makes when the draw r or top_p moves by 1e-5: the two round the
 * probabilities differently, so a draw or a top-p cut at the very edge of
 * a token's share may fall either way. *exact: 1 when it is the host's. */
static int pick_agrees(const float *logits, int64_t vocab, const uq_sampler_params *sp, double r, int32_t got,
                       int *exact)
{
    float *tmp = malloc((size_t)vocab * sizeof(float));
    assert_non_null(tmp);
    int ok = 0;
    *exact = 0;
    for (int dr = 0; dr < 3 && !ok; dr++)
        for (int dp = 0; dp < 3 && !ok; dp++) {
            uq_sampler_params q = *sp;
            if (dp && (q.top_p <= 0.0f || q.top_p >= 1.0f)) continue;
            q.top_p += dp == 1 ? 1e-5f : dp == 2 ? -1e-5f : 0.0f;
            if (dp && (q.top_p <= 0.0f || q.top_p >= 1.0f)) continue;
            double rr = r + (dr == 1 ? 1e-5 : dr == 2 ? -1e-5 : 0.0);
            if (rr < 0.0 || rr >= 1.0) continue;
            memcpy(tmp, logits, (size_t)vocab * sizeof(float));
            if (uq_sample_with(tmp, vocab, &q, rr) == got) {
                ok = 1;
                *exact = dr == 0 && dp == 0;
            }
        }
    free(tmp);
    return ok;
}

/* Generation with a sampler on the device against uq_sample drawing from
 * each step's logits (copied back) with the same generator. After an edge
 * draw (see pick_agrees) the two runs part, so the comparison stops. */
static void compare_sampled(uq_context *gpu, const int32_t *prompt, size_t n_prompt, const uq_sampler_params *sp,
                            int64_t vocab, float *lg)
{
    enum { GEN = 32 };
    int32_t gen[GEN];
    size_t ng = 0;
    uq_context_reset(gpu, 0);
    assert_int_equal(uq_generate(gpu, prompt, n_prompt, GEN, sp, NULL, NULL, gen, &ng), UQ_OK);
    assert_true(ng > 0);
    uq_context_reset(gpu, 0);
    assert_int_equal(uq_forward_last(gpu, prompt, n_prompt, lg), UQ_OK);
    uint64_t rng = sp->seed;
    size_t same = 0;
    for (size_t t = 0; t < ng; t++) {
        const double r = uq_rng_uniform(&rng);
        int exact = 0;
        if (!pick_agrees(lg, vocab, sp, r, gen[t], &exact))
            fail_msg("token %zu: the device drew %d (T %g, top-k %d, top-p %g, r %.17g)", t, gen[t],
                     (double)sp->temperature, sp->top_k, (double)sp->top_p, r);
        if (!exact) break;
        same++;
        if (t + 1 < ng) assert_int_equal(uq_forward_last(gpu, &gen[t], 1, lg), UQ_OK);
    }
    print_message("  drawn on the device (T %g, top-k %d, top-p %g): %zu of %zu tokens as uq_sample\n",
                  (double)sp->temperature, sp->top_k, (double)sp->top_p, same, ng);
}

/* cpu-ref against cuda on one model: prefill logits, then the same tokens
 * fed in uneven chunks through the KV cache, then greedy ids. */
static void compare_model(const char *dir, const char *label, const int32_t *ids, size_t n, double tol_abs,
                          double tol_kl)
{
    uq_model *m;
    assert_int_equal(uq_model_open(dir, &m), UQ_OK);
    uq_context *ref = make_context(m, "cpu-ref", 64, 1);
    uq_context *gpu = make_context(m, "cuda", 64, 1);
    assert_string_equal(uq_context_backend_name(gpu), "cuda");
    int64_t vocab = uq_context_vocab(ref);
    size_t nv = n * (size_t)vocab;
    float *lr = malloc(nv * sizeof(float)), *lg = malloc(nv * sizeof(float)), *ld = malloc(nv * sizeof(float));
    assert_non_null(lr);
    assert_non_null(lg);
    assert_non_null(ld);
    for (size_t i = 0; i < nv; i++) lg[i] = ld[i] = NAN;
    assert_int_equal(uq_forward(ref, ids, n, lr), UQ_OK);
    assert_int_equal(uq_forward(gpu, ids, n, lg), UQ_OK);
    double d = tu_max_abs_diff(lr, lg, nv), kl = mean_kl(lr, lg, n, vocab);
    print_message("%-14s prefill: max |cuda - cpu-ref| = %.3g, mean KL = %.3g\n", label, d, kl);
    assert_true(d < tol_abs);
    assert_true(kl < tol_kl);

    /* prefill with every product on its 4-bit codes, and with every
     * product's weights expanded to f16 first instead of some or all on their
     * codes (the weights rounded the same way but for rare double roundings),
     * on the warpgroup MMAs (where the GPU has them) and on mma.sync (another
     * order of summation); then dequantized inside the GEMM's loop instead of
     * into the dense f16 scratch first: the same products as mma.sync on the
     * expanded weights, the same bits */
    for (int wg = 1; wg >= 0; wg--) {
        assert_int_equal(uq_cuda_set_option(gpu, "gemm_wgmma", wg), UQ_OK);
        for (int mode = 15; mode >= 0; mode -= 15) {
            assert_int_equal(uq_cuda_set_option(gpu, "gemm_codes", mode), UQ_OK);
            uq_context_reset(gpu, 0);
            assert_int_equal(uq_forward(gpu, ids, n, ld), UQ_OK);
            double dc = tu_max_abs_diff(lg, ld, nv);
            print_message("%-14s prefill: max |default - %s%s| = %.3g\n", label, mode ? "all on codes" : "expanded first",
                          wg ? "" : ", mma.sync", dc);
            assert_true(dc < tol_abs);
        }
    }
    memcpy(lg, ld, nv * sizeof(float));
    assert_int_equal(uq_cuda_set_option(gpu, "gemm_dequant", 0), UQ_OK);
    uq_context_reset(gpu, 0);
    assert_int_equal(uq_forward(gpu, ids, n, ld), UQ_OK);
    double di = tu_max_abs_diff(lg, ld, nv);
    print_message("%-14s prefill: max |dequantized first - in the loop| = %.3g\n", label, di);
    assert_memory_equal(lg, ld, nv * sizeof(float));
    assert_int_equal(uq_cuda_set_option(gpu, "gemm_dequant", 1), UQ_OK);
    assert_int_equal(uq_cuda_set_option(gpu, "gemm_wgmma", 1), UQ_OK);
    assert_int_equal(uq_cuda_set_option(gpu, "gemm_codes", -1), UQ_OK);

    /* decode: chunks of 1, 2, 3, ... tokens through the cache */
    uq_context_reset(gpu, 0);
    size_t off = 0;
    for (size_t len = 1; off < n; len++) {
        size_t k = n - off < len ? n - off : len;
        assert_int_equal(uq_forward(gpu, ids + off, k, ld + off * (size_t)vocab), UQ_OK);
        off += k;
    }
    assert_int_equal(uq_context_pos(gpu, 0), (int64_t)n);
    double dd = tu_max_abs_diff(lr, ld, nv), kd = mean_kl(lr, ld, n, vocab), dp = tu_max_abs_diff(lg, ld, nv);
    print_message("%-14s decode:  max |cuda - cpu-ref| = %.3g, mean KL = %.3g, max |decode - prefill| = %.3g\n", label,
                  dd, kd, dp);
    assert_true(dd < tol_abs);
    assert_true(kd < tol_kl);
    assert_true(dp < tol_abs);

    /* decode one token at a time (the kernels of batch 1), with the 4-bit
     * products on the integer MMAs wherever that kernel applies (by default
     * only products larger than these take it), then as by default */
    for (int mma = 2; mma >= 1; mma--) {
        assert_int_equal(uq_cuda_set_option(gpu, "gemv_mma", mma), UQ_OK);
        uq_context_reset(gpu, 0);
        for (size_t t = 0; t < n; t++)
            assert_int_equal(uq_forward(gpu, ids + t, 1, ld + t * (size_t)vocab), UQ_OK);
        dd = tu_max_abs_diff(lr, ld, nv);
        kd = mean_kl(lr, ld, n, vocab);
        print_message("%-14s decode one at a time%s: max |cuda - cpu-ref| = %.3g, mean KL = %.3g\n", label,
                      mma == 2 ? ", integer MMAs" : "", dd, kd);
        assert_true(dd < tol_abs);
        assert_true(kd < tol_kl);
    }

    /* greedy ids computed on the device match the host's argmax */
    uq_context_reset(gpu, 0);
    int32_t *am = malloc(n * sizeof(int32_t));
    assert_non_null(am);
    assert_int_equal(uq_cuda_forward_greedy(gpu, 0, ids, (int64_t)n, lg, 1, am), UQ_OK);
    for (size_t t = 0; t < n; t++) assert_int_equal(am[t], host_argmax(lg + t * (size_t)vocab, vocab));
    free(am);

    /* greedy uq_generate picks on the device: the tokens the host's argmax
     * picks from each step's logits */
    enum { GEN = 24 };
    int32_t gen[GEN], want[GEN];
    size_t ng = 0;
    uq_sampler_params sp;
    uq_sampler_params_init(&sp);
    uq_context_reset(gpu, 0);
    assert_int_equal(uq_generate(gpu, ids, 4, GEN, &sp, NULL, NULL, gen, &ng), UQ_OK);
    assert_true(ng > 0);
    uq_context_reset(gpu, 0);
    assert_int_equal(uq_forward_last(gpu, ids, 4, lg), UQ_OK);
    for (size_t t = 0; t < ng; t++) {
        want[t] = host_argmax(lg, vocab);
        if (t + 1 < ng) assert_int_equal(uq_forward_last(gpu, &want[t], 1, lg), UQ_OK);
    }
    assert_memory_equal(gen, want, ng * sizeof(int32_t));

    /* drawn tokens on the device: uq_sample's with the same generator */
    static const struct {
        float t, top_p;
        int top_k;
    } draws[] = {{1.0f, 1.0f, 0}, {0.7f, 1.0f, 40}, {1.3f, 0.9f, 0}, {0.8f, 0.95f, 40}, {1.0f, 0.5f, 3}};
    for (size_t i = 0; i < sizeof draws / sizeof draws[0]; i++) {
        uq_sampler_params q;
        uq_sampler_params_init(&q);
        q.temperature = draws[i].t;
        q.top_p = draws[i].top_p;
        q.top_k = draws[i].top_k;
        q.seed = 1000 + i;
        compare_sampled(gpu, ids, 4, &q, vocab, lg);
    }
    free(lr);
    free(lg);
    free(ld);
    uq_context_free(gpu);
    uq_context_free(ref);
    uq_model_close(m);
}

/* Decode deep into a context, one token at a time on the integer MMAs,
 * against cpu-ref: with the O product's kernel running the attention
 * (several passes and splits a unit) and with the attention kernel. */
static void compare_long_decode(const char *dir, const char *label)
{
    enum { CTX = 512, PROMPT = 320, STEPS = 48 };
    uq_model *m;
    assert_int_equal(uq_model_open(dir, &m), UQ_OK);
    uq_context *ref = make_context(m, "cpu-ref", CTX, 1);
    uq_context *gpu = make_context(m, "cuda", CTX, 1);
    const int64_t vocab = uq_context_vocab(ref);
    const size_t nv = (size_t)STEPS * (size_t)vocab;
    int32_t ids[PROMPT + STEPS];
    for (int i = 0; i < PROMPT + STEPS; i++) ids[i] = (int32_t)((i * 7919 + 13) % vocab);
    float *last = malloc((size_t)vocab * sizeof(float)), *lr = malloc(nv * sizeof(float));
    float *lf = malloc(nv * sizeof(float)), *ls = malloc(nv * sizeof(float));
    assert_non_null(last);
    assert_non_null(lr);
    assert_non_null(lf);
    assert_non_null(ls);
    assert_int_equal(uq_forward_last(ref, ids, PROMPT, last), UQ_OK);
    for (int t = 0; t < STEPS; t++)
        assert_int_equal(uq_forward(ref, ids + PROMPT + t, 1, lr + (size_t)t * (size_t)vocab), UQ_OK);
    assert_int_equal(uq_cuda_set_option(gpu, "gemv_mma", 2), UQ_OK);
    for (int fused = 1; fused >= 0; fused--) {
        float *l = fused ? lf : ls;
        assert_int_equal(uq_cuda_set_option(gpu, "attn_gemv", fused), UQ_OK);
        uq_context_reset(gpu, 0);
        assert_int_equal(uq_forward_last(gpu, ids, PROMPT, last), UQ_OK);
        for (int t = 0; t < STEPS; t++)
            assert_int_equal(uq_forward(gpu, ids + PROMPT + t, 1, l + (size_t)t * (size_t)vocab), UQ_OK);
    }
    assert_int_equal(uq_cuda_set_option(gpu, "gemv_mma", 1), UQ_OK);
    assert_int_equal(uq_cuda_set_option(gpu, "attn_gemv", 1), UQ_OK);
    /* both within the integer MMAs' distance of cpu-ref (x rounded to 16
     * bits a group, so the two differ by as much) */
    const double dr = tu_max_abs_diff(lr, lf, nv), kd = mean_kl(lr, lf, STEPS, vocab);
    const double dk = tu_max_abs_diff(lr, ls, nv), kk = mean_kl(lr, ls, STEPS, vocab);
    print_message("%-14s decode at %d-%d, max |cuda - cpu-ref|, mean KL: attention in the O product %.3g, %.3g; "
                  "attention kernel %.3g, %.3g\n",
                  label, PROMPT, PROMPT + STEPS - 1, dr, kd, dk, kk);
    assert_true(dr < 1e-2);
    assert_true(kd < 1e-5);
    assert_true(dk < 1e-2);
    assert_true(kk < 1e-5);
    free(last);
    free(lr);
    free(lf);
    free(ls);
    uq_context_free(gpu);
    uq_context_free(ref);
    uq_model_close(m);
}

/* ------------------------------------------------------------ models */

static void test_bench28m_schemes(void **st)
{
    (void)st;
    if (!have_cuda()) skip();
    if (!tu_shared_has("models/bench-28m/model.safetensors") || !tu_shared_has("refs/bench-28m.json")) skip();
    int32_t ids[64];
    size_t n = tu_ref_ids("refs/bench-28m.json", "input_ids", ids, 64);
    char src[4096], dir[4096];
    tu_shared_path("models/bench-28m", src, sizeof src);
    compare_model(src, "bf16", ids, n, 1e-2, 1e-5);
    /* 4 bits in groups of 32, 64 and 128: the integer-MMA decode kernel's
     * three variants */
    static const struct {
        uq_scheme scheme;
        int bits, group;
    } schemes[] = {{UQ_SCHEME_AFFINE, 2, 64},     {UQ_SCHEME_AFFINE, 3, 64},    {UQ_SCHEME_AFFINE, 4, 64},
                   {UQ_SCHEME_AFFINE, 5, 64},     {UQ_SCHEME_AFFINE, 6, 64},    {UQ_SCHEME_AFFINE, 8, 64},
                   {UQ_SCHEME_SYMMETRIC, 4, 64},  {UQ_SCHEME_SYMMETRIC, 8, 64}, {UQ_SCHEME_AFFINE, 4, 32},
                   {UQ_SCHEME_AFFINE, 4, 128},    {UQ_SCHEME_SYMMETRIC, 4, 128}};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "%s %d g%d", schemes[i].scheme == UQ_SCHEME_AFFINE ? "affine" : "symmetric",
                 schemes[i].bits, schemes[i].group);
        char name[64];
        snprintf(name, sizeof name, "cuda-b28-%s%d-g%d", schemes[i].scheme == UQ_SCHEME_AFFINE ? "a" : "s",
                 schemes[i].bits, schemes[i].group);
        tu_scratch_dir(name, dir, sizeof dir);
        char out[4200];
        snprintf(out, sizeof out, "%s/model", dir);
        uq_quant_config qc;
        uq_quant_config_init(&qc);
        qc.bits = schemes[i].bits;
        qc.group_size = schemes[i].group;
        qc.scheme = schemes[i].scheme;
        snprintf(qc.backend, sizeof qc.backend, "cpu");
        if (uq_quantize_model(src, out, &qc, NULL) != UQ_OK) fail_msg("quantize: %s", uq_last_error());
        compare_model(out, label, ids, n, 1e-2, 1e-5);
        if (i == 2) compare_long_decode(out, label);
        tu_system("rm -rf '%s'", dir);
    }
}

/* Shapes the fast kernels leave to the generic ones (f32 weights, 172
 * columns, head size 8). */
static void test_stories_fallback(void **st)
{
    (void)st;
    if (!have_cuda()) skip();
    const char *srcdir = getenv("UQ_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/models/stories260K", srcdir && *srcdir ? srcdir : "..");
    int32_t ids[40];
    for (int i = 0; i < 40; i++) ids[i] = (int32_t)((i * 37 + 1) % 512);
    compare_model(dir, "stories260K", ids, 40, 1e-3, 1e-6);
}

/* The device's token picking on chosen logits against uq_sample: every
 * combination of temperature, top-k and top-p over distributions with
 * ties, -inf entries, underflowing tails and one dominant token, for
 * vocabularies from 1 to beyond 2^17; rows without a finite distribution
 * give a token in range. */
static void test_pick_chosen(void **st)
{
    (void)st;
    if (!have_cuda()) skip();
    static const int64_t vocabs[] = {1, 2, 5, 512, 32000, 131077};
    static const float temps[] = {0.0f, 0.6f, 1.0f, 2.5f};
    static const float top_ps[] = {1.0f, 0.95f, 0.6f, 1e-7f, 0.0f};
    uint64_t rng = 7;
    size_t total = 0, inexact = 0;
    for (size_t vi = 0; vi < sizeof vocabs / sizeof vocabs[0]; vi++) {
        const int64_t V = vocabs[vi];
        const int64_t rows = V > 100000 ? 60 : 400;
        const int64_t top_ks[] = {0, 1, 7, 50, V};
        float *lg = malloc((size_t)rows * (size_t)V * sizeof(float));
        uq_sampler_params *sp = malloc((size_t)rows * sizeof *sp);
        double *r = malloc((size_t)rows * sizeof *r);
        int32_t *got = malloc((size_t)rows * sizeof *got);
        assert_true(lg && sp && r && got);
        for (int64_t row = 0; row < rows; row++) {
            float *x = lg + row * V;
            const int kind = (int)(row % 7);
            for (int64_t i = 0; i < V; i++) {
                float v = tu_rand_normal(&rng);
                switch (kind) {
                case 0: v *= 3.0f; break;
                case 1: v = i == V / 3 ? 20.0f : v; break;               /* one dominant token */
                case 2: v = 0.0f; break;                                 /* all tied */
                case 3: v = roundf(v * 2.0f) * 0.5f; break;              /* many ties */
                case 4: v = i % 3 == 1 ? -INFINITY : v * 2.0f; break;    /* masked tokens */
                case 5: v *= 40.0f; break;                               /* tails underflow to 0 */
                default: v = (float)(i % 5) - (float)(i % 3); break;     /* a few repeated values */
                }
                x[i] = v;
            }
            uq_sampler_params_init(&sp[row]);
            sp[row].temperature = temps[tu_rand_u64(&rng) % 4];
            sp[row].top_k = (int)top_ks[tu_rand_u64(&rng) % 5];
            sp[row].top_p = top_ps[tu_rand_u64(&rng) % 5];
            const uint64_t e = tu_rand_u64(&rng) % 16;
            r[row] = e == 0 ? 0.0 : e == 1 ? 1.0 - 0x1p-53 : uq_rng_uniform(&rng);
        }
        assert_int_equal(uq_cuda_pick_tokens(lg, rows, V, sp, r, got), UQ_OK);
        for (int64_t row = 0; row < rows; row++) {
            int exact = 0;
            if (!pick_agrees(lg + row * V, V, &sp[row], r[row], got[row], &exact))
                fail_msg("vocab %lld, row %lld (kind %d): the device picked %d (T %g, top-k %d, top-p %g, r %.17g)",
                         (long long)V, (long long)row, (int)(row % 7), got[row], (double)sp[row].temperature,
                         sp[row].top_k, (double)sp[row].top_p, r[row]);
            total++;
            inexact += !exact;
        }
        /* no finite distribution: all -inf, or a NaN */
        for (int64_t i = 0; i < V; i++) lg[i] = -INFINITY;
        for (int64_t i = 0; i < V; i++) lg[V + i] = i == V / 2 ? NAN : 1.0f;
        for (int k = 0; k < 2; k++) {
            uq_sampler_params_init(&sp[k]);
            sp[k].temperature = 1.0f;
            sp[k].top_k = k ? 5 : 0;
            r[k] = 0.5;
        }
        assert_int_equal(uq_cuda_pick_tokens(lg, 2, V, sp, r, got), UQ_OK);
        assert_true(got[0] >= 0 && got[0] < V && got[1] >= 0 && got[1] < V);
        free(lg);
        free(sp);
        free(r);
        free(got);
    }
    print_message("  picked on the device: %zu rows, %zu at the edge of a draw\n", total, inexact);
    assert_true(inexact * 100 <= total);
}

/* Two sequences in one context give what each gives alone. */
static void test_sequences(void **st)
{
    (void)st;
    if (!have_cuda()) skip();
    if (!tu_shared_has("models/bench-28m/model.safetensors")) skip();
    char src[4096];
    uq_model *m;
    assert_int_equal(uq_model_open(tu_shared_path("models/bench-28m", src, sizeof src), &m), UQ_OK);
    uq_context *c = make_context(m, "cuda", 64, 2);
    int64_t vocab = uq_context_vocab(c);
    int32_t a[12] = {1, 403, 407, 261, 378, 432, 317, 394, 261, 370, 352, 266};
    int32_t b[7] = {1, 300, 301, 302, 303, 304, 305};
    float *la = malloc((size_t)vocab * sizeof(float)), *lb = malloc((size_t)vocab * sizeof(float));
    float *la2 = malloc((size_t)vocab * sizeof(float));
    assert_int_equal(uq_forward_seq(c, 0, a, 12, la, 0), UQ_OK);
    assert_int_equal(uq_forward_seq(c, 1, b, 7, lb, 0), UQ_OK);
    uq_context_reset(c, 0);
    /* sequence 0 again, token by token, with sequence 1 untouched in between */
    for (int i = 0; i < 12; i++) assert_int_equal(uq_forward_seq(c, 0, &a[i], 1, la2, 0), UQ_OK);
    assert_true(tu_max_abs_diff(la, la2, (size_t)vocab) < 1e-2);
    int32_t next = 306;
    assert_int_equal(uq_forward_seq(c, 1, &next, 1, la2, 0), UQ_OK);
    assert_int_equal(uq_context_pos(c, 1), 8);
    uq_context_free(c);
    /* sequence 1 alone */
    c = make_context(m, "cuda", 64, 1);
    int32_t b2[8] = {1, 300, 301, 302, 303, 304, 305, 306};
    assert_int_equal(uq_forward_last(c, b2, 8, lb), UQ_OK);
    assert_true(tu_max_abs_diff(la2, lb, (size_t)vocab) < 1e-2);
    free(la);
    free(lb);
    free(la2);
    uq_context_free(c);
    uq_model_close(m);
}

/* ------------------------------------------------------------ quantization */

static void fill(uint64_t *rng, uq_dtype t, void *dst, size_t n, int kind)
{
    for (size_t i = 0; i < n; i++) {
        float v;
        switch (kind) {
        case 0: v = tu_rand_normal(rng) * 0.02f; break;
        case 1: v = tu_rand_normal(rng) * 3.0f + 1.0f; break;
        case 2: v = (float)(tu_rand_u64(rng) % 7) - 3.0f; break; /* ties and exact codes */
        default: v = (i / 8) % 3 == 0 ? 0.0f : (i / 8) % 3 == 1 ? 0.25f : tu_rand_normal(rng) * 1e-3f; break;
        }
        uq_from_f32(t, &v, (unsigned char *)dst + i * uq_dtype_size(t), 1);
    }
}

static int check_one(const uq_qparams *p, uq_dtype sdt_src, const void *src, int64_t rows, int64_t cols)
{
    size_t pb = uq_quant_packed_bytes(p, rows, cols), sb = uq_quant_scales_bytes(p, rows, cols);
    size_t bb = uq_quant_biases_bytes(p, rows, cols);
    unsigned char *cp = malloc(pb + 1), *cs = malloc(sb + 1), *cb = malloc(bb + 1);
    unsigned char *gp = malloc(pb + 1), *gs = malloc(sb + 1), *gb = malloc(bb + 1);
    memset(gp, 0xa5, pb + 1);
    memset(gs, 0xa5, sb + 1);
    memset(gb, 0xa5, bb + 1);
    uq_status a = uq_quantize_tensor(p, sdt_src, src, rows, cols, cp, cs, cb, 0, 1);
    uq_status b = uq_cuda_quantize_tensor(p, sdt_src, src, rows, cols, gp, gs, gb, 0);
    int ok = a == b;
    if (ok && a == UQ_OK) {
        ok = memcmp(cp, gp, pb) == 0 && memcmp(cs, gs, sb) == 0 && (bb == 0 || memcmp(cb, gb, bb) == 0);
        ok = ok && gp[pb] == 0xa5 && gs[sb] == 0xa5; /* nothing written past the end */
    }
    if (!ok)
        print_message("mismatch: %s %d bits, group %d, scales %s, src %s, %lldx%lld (cpu %d, cuda %d)\n",
                      p->scheme == UQ_SCHEME_AFFINE ? "affine" : "symmetric", p->bits, p->group_size,
                      uq_dtype_name(p->scale_dtype), uq_dtype_name(sdt_src), (long long)rows, (long long)cols, a, b);
    free(cp);
    free(cs);
    free(cb);
    free(gp);
    free(gs);
    free(gb);
    return ok;
}

static void test_quantize_identical(void **st)
{
    (void)st;
    if (!have_cuda()) skip();
    uint64_t rng = 42;
    const uq_dtype types[3] = {UQ_F32, UQ_F16, UQ_BF16};
    const int groups[] = {8, 16, 24, 32, 64, 128, 0};
    const int64_t rows = 37, cols = 384; /* 384 = 3 * 128: every group above divides it */
    void *src = malloc((size_t)rows * (size_t)cols * 4);
    int checked = 0, bad = 0;
    for (int ti = 0; ti < 3; ti++) {
        for (int kind = 0; kind < 4; kind++) {
            fill(&rng, types[ti], src, (size_t)(rows * cols), kind);
            for (int scheme = 0; scheme < 2; scheme++)
                for (int bits = scheme ? 2 : 1; bits <= 8; bits++)
                    for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
                        if (groups[gi] == 0 && scheme == 0) continue;
                        uq_qparams p = {(uq_scheme)scheme, bits, groups[gi], types[(ti + kind + bits) % 3]};
                        bad += !check_one(&p, types[ti], src, rows, cols);
                        checked++;
                    }
        }
    }
    /* an odd number of rows and columns, and a tall tensor streamed in chunks */
    fill(&rng, UQ_BF16, src, (size_t)(rows * 88), 0);
    for (int bits = 1; bits <= 8; bits++) {
        uq_qparams p = {UQ_SCHEME_AFFINE, bits, 8, UQ_BF16};
        bad += !check_one(&p, UQ_BF16, src, rows, 88);
        checked++;
    }
    int64_t tall_rows = 70000, tall_cols = 512;
    void *tall = malloc((size_t)tall_rows * (size_t)tall_cols * 2);
    fill(&rng, UQ_BF16, tall, (size_t)(tall_rows * tall_cols), 0);
    for (int bits = 3; bits <= 4; bits++) {
        uq_qparams p = {UQ_SCHEME_AFFINE, bits, 64, UQ_BF16};
        bad += !check_one(&p, UQ_BF16, tall, tall_rows, tall_cols);
        checked++;
    }
    free(tall);
    /* values the device leaves to the CPU: NaN, Inf, a range beyond fp32 */
    float *f = src;
    fill(&rng, UQ_F32, src, (size_t)(rows * cols), 0);
    f[5 * cols + 7] = NAN;
    uq_qparams p4 = {UQ_SCHEME_AFFINE, 4, 64, UQ_F32};
    bad += !check_one(&p4, UQ_F32, src, rows, cols);
    f[5 * cols + 7] = INFINITY;
    bad += !check_one(&p4, UQ_F32, src, rows, cols);
    f[5 * cols + 7] = 3e38f;
    f[5 * cols + 8] = -3e38f;
    bad += !check_one(&p4, UQ_F32, src, rows, cols);
    checked += 3;
    print_message("GPU quantization: %d of %d configurations byte-identical to the CPU\n", checked - bad, checked);
    free(src);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_available),        cmocka_unit_test(test_quantize_identical),
        cmocka_unit_test(test_bench28m_schemes), cmocka_unit_test(test_stories_fallback),
        cmocka_unit_test(test_sequences),        cmocka_unit_test(test_pick_chosen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
