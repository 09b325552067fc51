/* Perplexity under the two windowing protocols, and the comparison of a
 * model's output distribution with a reference model's (KL divergence, top-1
 * agreement, cosine similarity of logits), window by window so memory stays
 * bounded by one window's logits per model. */
#include "core/clock.h"
#include "core/error.h"
#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void uq_eval_params_init(uq_eval_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_ctx = 512;
    p->protocol = UQ_PPL_WINDOWS;
    p->bos_id = -1;
}

/* log-sum-exp of a logit row (double for accuracy). */
static double logsumexp(const float *x, int64_t n)
{
    float m = x[0];
    for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += exp((double)(x[i] - m));
    return (double)m + log(s);
}

static int64_t argmax(const float *x, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* KL(P || Q) from logits p (reference) and q. */
static double kl_div(const float *p, const float *q, int64_t n)
{
    double lp = logsumexp(p, n), lq = logsumexp(q, n), kl = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = (double)p[i] - lp, b = (double)q[i] - lq;
        kl += exp(a) * (a - b);
    }
    return kl > 0 ? kl : 0;
}

static double cosine(const float *a, const float *b, int64_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

uq_status uq_evaluate(uq_context *ctx, uq_context *ref, const int32_t *tokens, size_t n, const uq_eval_params *params,
                      uq_eval_result *out)
{
    if (!ctx || !tokens || !out) return uq_fail(UQ_ERR_ARG, "uq_evaluate: NULL argument");
    memset(out, 0, sizeof *out);
    uq_eval_params defaults;
    uq_eval_params_init(&defaults);
    const uq_eval_params *p = params ? params : &defaults;
    const int64_t w = p->n_ctx;
    if (w < 2) return uq_fail(UQ_ERR_ARG, "evaluation window must hold at least 2 tokens");
    if (w > uq_context_n_ctx(ctx) || (ref && w > uq_context_n_ctx(ref)))
        return uq_fail(UQ_ERR_ARG, "window of %lld tokens is longer than the context", (long long)w);
    const int64_t vocab = uq_context_vocab(ctx);
    if (ref && uq_context_vocab(ref) != vocab)
        return uq_fail(UQ_ERR_ARG, "the reference has %lld tokens in its vocabulary, the model %lld",
                       (long long)uq_context_vocab(ref), (long long)vocab);
    int32_t bos = p->bos_id >= 0 ? p->bos_id : (int32_t)ctx->cfg.bos_token_id;
    if (p->protocol == UQ_PPL_LLAMACPP && (bos < 0 || bos >= vocab))
        return uq_fail(UQ_ERR_ARG, "the llamacpp protocol needs a BOS id (the model names none)");
    int64_t windows = (int64_t)(n / (size_t)w);
    if (p->max_windows > 0 && windows > p->max_windows) windows = p->max_windows;
    if (windows == 0)
        return uq_fail(UQ_ERR_ARG, "the text has %zu tokens, fewer than one window of %lld", n, (long long)w);
    const int64_t first = p->protocol == UQ_PPL_LLAMACPP ? w / 2 : 1; /* first scored position */
    const uint64_t per_window = (uint64_t)(w - first);

    const double t0 = uq_seconds();
    float *lg = malloc((size_t)w * (size_t)vocab * sizeof(float));
    float *rl = ref ? malloc((size_t)w * (size_t)vocab * sizeof(float)) : NULL;
    double *kls = ref ? malloc((size_t)windows * per_window * sizeof(double)) : NULL;
    int32_t *win = malloc((size_t)w * sizeof(int32_t));
    uq_status st = UQ_OK;
    if (!lg || !win || (ref && (!rl || !kls))) st = uq_fail(UQ_ERR_NOMEM, "out of memory for one window's logits");
    double nll = 0, ref_nll = 0, cos_sum = 0;
    uint64_t agree = 0, scored = 0;
    for (int64_t k = 0; k < windows && st == UQ_OK; k++) {
        memcpy(win, tokens + k * w, (size_t)w * sizeof(int32_t));
        if (p->protocol == UQ_PPL_LLAMACPP) win[0] = bos;
        uq_context_reset(ctx, 0);
        if ((st = uq_forward(ctx, win, (size_t)w, lg)) != UQ_OK) break;
        if (ref) {
            uq_context_reset(ref, 0);
            if ((st = uq_forward(ref, win, (size_t)w, rl)) != UQ_OK) break;
        }
        for (int64_t i = first; i < w; i++) {
            /* position i's token is predicted by the logits at i - 1 */
            const float *row = lg + (i - 1) * vocab;
            int32_t target = tokens[k * w + i];
            nll += logsumexp(row, vocab) - (double)row[target];
            if (ref) {
                const float *rrow = rl + (i - 1) * vocab;
                ref_nll += logsumexp(rrow, vocab) - (double)rrow[target];
                kls[scored] = kl_div(rrow, row, vocab);
                agree += argmax(rrow, vocab) == argmax(row, vocab);
                cos_sum += cosine(rrow, row, vocab);
            }
            scored++;
        }
        if (p->progress) p->progress(p->progress_user, k + 1, windows);
    }
    if (st == UQ_OK) {
        out->scored = scored;
        out->windows = windows;
        out->tokens = n;
        out->nll = nll / (double)scored;
        out->ppl = exp(out->nll);
        if (ref) {
            out->have_reference = 1;
            out->ref_ppl = exp(ref_nll / (double)scored);
            double s = 0;
            for (uint64_t i = 0; i < scored; i++) s += kls[i];
            out->kl_mean = s / (double)scored;
            qsort(kls, scored, sizeof *kls, cmp_double);
            out->kl_max = kls[scored - 1];
            uint64_t idx = (uint64_t)ceil(0.99 * (double)scored);
            out->kl_p99 = kls[idx > 0 ? idx - 1 : 0];
            out->top1 = (double)agree / (double)scored;
            out->cosine = cos_sum / (double)scored;
        }
        out->seconds = uq_seconds() - t0;
    }
    free(lg);
    free(rl);
    free(kls);
    free(win);
    return st;
}
