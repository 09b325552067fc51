/* Sampling (greedy, temperature, top-k, top-p) and the generation loop. */
#include "core/error.h"
#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void uq_sampler_params_init(uq_sampler_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 0.0f;
    p->top_p = 1.0f;
    p->seed = 42;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double uq_rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1p-53; }

static int32_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

typedef struct cand {
    float p;
    int32_t id;
} cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id;
}

int32_t uq_sample(float *logits, int64_t vocab, const uq_sampler_params *p, uint64_t *rng)
{
    if (!p || p->temperature <= 0.0f) return argmax(logits, vocab);
    return uq_sample_with(logits, vocab, p, uq_rng_uniform(rng));
}

int32_t uq_sample_with(float *logits, int64_t vocab, const uq_sampler_params *p, double r)
{
    if (!p || p->temperature <= 0.0f) return argmax(logits, vocab);
    for (int64_t i = 0; i < vocab; i++) logits[i] /= p->temperature;
    uq_softmax_f32(logits, vocab);
    int restrict_set = (p->top_k > 0 && p->top_k < vocab) || (p->top_p > 0.0f && p->top_p < 1.0f);
    if (!restrict_set) {
        /* in vocabulary order, r scaled to the probabilities' rounded sum;
         * past the last running sum (rounding): the last token with a share */
        double total = 0, acc = 0;
        for (int64_t i = 0; i < vocab; i++) total += logits[i];
        const double target = r * total;
        int64_t last = 0;
        for (int64_t i = 0; i < vocab; i++) {
            acc += logits[i];
            if (target < acc) return (int32_t)i;
            if (logits[i] > 0.0f) last = i;
        }
        return (int32_t)last;
    }
    cand *cs = malloc((size_t)vocab * sizeof *cs);
    if (!cs) return argmax(logits, vocab);
    for (int64_t i = 0; i < vocab; i++) cs[i] = (cand){logits[i], (int32_t)i};
    qsort(cs, (size_t)vocab, sizeof *cs, cmp_cand);
    int64_t keep = vocab;
    if (p->top_k > 0 && p->top_k < keep) keep = p->top_k;
    if (p->top_p > 0.0f && p->top_p < 1.0f) {
        /* top_p of the probabilities' sum as rounded (not of 1): the cut
         * then does not move with the softmax's rounding */
        double all = 0, acc = 0;
        for (int64_t i = 0; i < vocab; i++) all += cs[i].p;
        const double reach = p->top_p * all;
        for (int64_t i = 0; i < keep; i++) {
            acc += cs[i].p;
            if (acc >= reach) {
                keep = i + 1;
                break;
            }
        }
    }
    double total = 0;
    for (int64_t i = 0; i < keep; i++) total += cs[i].p;
    double acc = 0, target = r * total;
    int32_t id = cs[0].id;
    for (int64_t i = 0; i < keep; i++) {
        acc += cs[i].p;
        if (cs[i].p > 0.0f) id = cs[i].id; /* past the last running sum: the last with a share */
        if (target < acc) break;
    }
    free(cs);
    return id;
}

static int is_eos(const uq_context *c, int32_t id)
{
    for (int i = 0; i < c->cfg.n_eos; i++)
        if (c->cfg.eos_token_ids[i] == id) return 1;
    return 0;
}

/* The successor of ids (fed to sequence 0): picked on the device when the
 * backend runs the forward pass there (no logits copied to the host; the
 * same draw from the generator as uq_sample's), else here from the logits. */
static uq_status next_token(uq_context *c, const int32_t *ids, size_t n, const uq_sampler_params *p, uint64_t *rng,
                            int32_t *id)
{
    if (c->backend.ops->forward) {
        uq_token_pick pick = {p, p->temperature > 0.0f ? uq_rng_uniform(rng) : 0.0};
        return uq_forward_device(c, 0, ids, n, NULL, 0, &pick, id);
    }
    uq_status st = uq_forward_last(c, ids, n, c->logits_tmp);
    if (st == UQ_OK) *id = uq_sample(c->logits_tmp, c->vocab, p, rng);
    return st;
}

uq_status uq_generate(uq_context *c, const int32_t *prompt, size_t n_prompt, size_t max_new,
                      const uq_sampler_params *p, int (*on_token)(void *user, int32_t id), void *user, int32_t *out,
                      size_t *n_out)
{
    if (!c || (!prompt && n_prompt) || (!out && max_new) || !n_out) return uq_fail(UQ_ERR_ARG, "uq_generate: NULL argument");
    *n_out = 0;
    if (n_prompt == 0) return uq_fail(UQ_ERR_ARG, "uq_generate: empty prompt (start with BOS)");
    uq_sampler_params defaults;
    uq_sampler_params_init(&defaults);
    if (!p) p = &defaults;
    uint64_t rng = p->seed;
    int32_t id = 0;
    uq_status st = next_token(c, prompt, n_prompt, p, &rng, &id);
    while (st == UQ_OK && *n_out < max_new) {
        out[(*n_out)++] = id;
        if (on_token && on_token(user, id)) break;
        if (is_eos(c, id)) break;
        if (*n_out == max_new || c->pos[0] >= c->n_ctx) break;
        st = next_token(c, &out[*n_out - 1], 1, p, &rng, &id);
    }
    return st;
}
