/* The Llama forward pass over a chunk of tokens of one sequence: embedding,
 * per layer RMSNorm -> attention (RoPE, GQA, causal, KV cache) -> RMSNorm ->
 * SwiGLU MLP, final norm, output head. Matmuls go through the backend and
 * read the stored (quantized or float) weights directly. */
#include "core/error.h"
#include "model/model_internal.h"
#include "quant/quant.h"
#include "runtime/runtime.h"

#include <math.h>
#include <string.h>

static void embed_row(const uq_context *c, int32_t id, float *out)
{
    const uq_weight *e = c->embed;
    if (e->quantized) {
        uq_qparams qp = uq_weight_qparams(e);
        uq_dequantize_rows(&qp, e->cols, e->weight->data, e->scales->data, e->biases ? e->biases->data : NULL, id, 1,
                           out);
    } else {
        size_t el = uq_dtype_size(e->dtype);
        uq_to_f32(e->dtype, (const unsigned char *)e->weight->data + (size_t)id * (size_t)e->cols * el, out,
                  (size_t)e->cols);
    }
}

static void add_bias(const uq_weight *w, int64_t n, float *y, const float *bias)
{
    if (bias)
        for (int64_t t = 0; t < n; t++)
            for (int64_t i = 0; i < w->rows; i++) y[t * w->rows + i] += bias[i];
}

static void matmul(uq_context *c, const uq_weight *w, const float *x, int64_t n, float *y, const float *bias)
{
    c->backend.ops->matmul(&c->backend, w, x, n, y);
    add_bias(w, n, y, bias);
}

/* Products of up to three weights with the same input (q/k/v, gate/up). */
static void matmul3(uq_context *c, const uq_weight *w0, const uq_weight *w1, const uq_weight *w2, const float *x,
                    int64_t n, float *y0, float *y1, float *y2, const float *b0, const float *b1, const float *b2)
{
    const uq_weight *w[3] = {w0, w1, w2};
    float *y[3] = {y0, y1, y2};
    const int count = w2 ? 3 : 2;
    if (c->backend.ops->matmul_n)
        c->backend.ops->matmul_n(&c->backend, w, count, x, n, y);
    else
        for (int i = 0; i < count; i++) c->backend.ops->matmul(&c->backend, w[i], x, n, y[i]);
    add_bias(w0, n, y0, b0);
    add_bias(w1, n, y1, b1);
    if (w2) add_bias(w2, n, y2, b2);
}

typedef struct attn_job {
    uq_context *c;
    int seq;
    int64_t layer, pos0, n;
} attn_job;

static float *cache_at(const uq_context *c, float *cache, int seq, int64_t layer, int64_t pos)
{
    return cache + (((int64_t)seq * c->n_layers + layer) * c->n_ctx + pos) * c->kv_dim;
}

/* One head x a block of up to UQ_ATTN_BLOCK consecutive tokens (cut from the
 * shape alone), the blocks with the most keys first: causal softmax
 * attention over the cache. A single token (decode) takes the one-query
 * kernels. */
static void attn_task(void *arg, int64_t task, int thread)
{
    attn_job *j = arg;
    uq_context *c = j->c;
    const int64_t nblocks = (j->n + UQ_ATTN_BLOCK - 1) / UQ_ATTN_BLOCK;
    const int64_t b = nblocks - 1 - task / c->n_heads, h = task % c->n_heads;
    const int64_t t0 = b * UQ_ATTN_BLOCK, nq = j->n - t0 < UQ_ATTN_BLOCK ? j->n - t0 : UQ_ATTN_BLOCK;
    const int64_t hd = c->head_dim, kvh = h / (c->n_heads / c->n_kv);
    const float scale = 1.0f / sqrtf((float)hd);
    const float *q = c->q + t0 * c->q_dim + h * hd;
    float *out = c->att_out + t0 * c->q_dim + h * hd;
    float *scratch = c->att_scratch + (int64_t)thread * uq_attn_scratch_floats(c->n_ctx, hd);
    const float *k = cache_at(c, c->k_cache, j->seq, j->layer, 0) + kvh * hd;
    const float *v = cache_at(c, c->v_cache, j->seq, j->layer, 0) + kvh * hd;
    if (nq == 1) {
        const int64_t npos = j->pos0 + t0 + 1;
        uq_attn_one(q, k, v, c->kv_dim, hd, npos, scale, out, scratch);
    } else {
        uq_attn_block(q, c->q_dim, k, v, c->kv_dim, hd, j->pos0 + t0, nq, scale, out, c->q_dim, scratch);
    }
}

static void layer_forward(uq_context *c, int seq, int64_t l, int64_t pos0, int64_t n)
{
    const uq_layer *L = &c->layers[l];
    const int64_t d = c->dim;
    const double eps = c->cfg.rms_norm_eps;
    for (int64_t t = 0; t < n; t++) uq_rmsnorm(c->xb + t * d, c->x + t * d, L->attn_norm, d, eps);
    matmul3(c, L->wq, L->wk, L->wv, c->xb, n, c->q, c->k, c->v, L->bq, L->bk, L->bv);
    const int64_t half = c->head_dim / 2;
    for (int64_t t = 0; t < n; t++) {
        int64_t p = pos0 + t;
        const float *cs = c->rope_cos + p * half, *sn = c->rope_sin + p * half;
        uq_rope_apply(c->q + t * c->q_dim, c->n_heads, c->head_dim, cs, sn);
        uq_rope_apply(c->k + t * c->kv_dim, c->n_kv, c->head_dim, cs, sn);
        memcpy(cache_at(c, c->k_cache, seq, l, p), c->k + t * c->kv_dim, (size_t)c->kv_dim * sizeof(float));
        memcpy(cache_at(c, c->v_cache, seq, l, p), c->v + t * c->kv_dim, (size_t)c->kv_dim * sizeof(float));
    }
    attn_job aj = {c, seq, l, pos0, n};
    uq_pool_run(c->pool, (n + UQ_ATTN_BLOCK - 1) / UQ_ATTN_BLOCK * c->n_heads, attn_task, &aj);
    matmul(c, L->wo, c->att_out, n, c->xb2, L->bo);
    for (int64_t i = 0; i < n * d; i++) c->x[i] += c->xb2[i];

    for (int64_t t = 0; t < n; t++) uq_rmsnorm(c->xb + t * d, c->x + t * d, L->ffn_norm, d, eps);
    matmul3(c, L->wgate, L->wup, NULL, c->xb, n, c->hb, c->hb2, NULL, NULL, NULL, NULL);
    uq_swiglu_f32(c->hb, c->hb2, n * c->hidden_ff);
    matmul(c, L->wdown, c->hb, n, c->xb2, NULL);
    for (int64_t i = 0; i < n * d; i++) c->x[i] += c->xb2[i];
}

/* Whether n tokens ids fit sequence seq of c (n > 0 here). */
static uq_status check_tokens(const uq_context *c, int seq, const int32_t *ids, size_t n)
{
    if (seq < 0 || seq >= c->n_seq) return uq_fail(UQ_ERR_ARG, "sequence %d out of range (context holds %d)", seq, c->n_seq);
    if ((int64_t)n > c->n_ctx - c->pos[seq])
        return uq_fail(UQ_ERR_ARG, "%zu tokens do not fit: the context holds %lld of %lld", n,
                       (long long)c->pos[seq], (long long)c->n_ctx);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab)
            return uq_fail(UQ_ERR_ARG, "token id %d at position %zu is outside the vocabulary (%lld)", ids[i], i,
                           (long long)c->vocab);
    return UQ_OK;
}

uq_status uq_forward_device(uq_context *c, int seq, const int32_t *ids, size_t n, float *logits, int all_logits,
                           const uq_token_pick *pick, int32_t *picked)
{
    if (!c || !ids || !n) return uq_fail(UQ_ERR_ARG, "forward: NULL argument");
    if (!c->backend.ops->forward)
        return uq_fail(UQ_ERR_UNSUPPORTED, "backend %s is not a device backend", c->backend.ops->name);
    uq_status st = check_tokens(c, seq, ids, n);
    if (st != UQ_OK) return st;
    st = c->backend.ops->forward(&c->backend, c, seq, ids, (int64_t)n, c->pos[seq], logits, all_logits, pick,
                                 picked);
    if (st == UQ_OK) c->pos[seq] += (int64_t)n;
    return st;
}

uq_status uq_forward_seq(uq_context *c, int seq, const int32_t *ids, size_t n, float *logits, int all_logits)
{
    if (!c || (!ids && n)) return uq_fail(UQ_ERR_ARG, "uq_forward: NULL argument");
    if (seq < 0 || seq >= c->n_seq) return uq_fail(UQ_ERR_ARG, "sequence %d out of range (context holds %d)", seq, c->n_seq);
    if (n == 0) return UQ_OK;
    if (c->backend.ops->forward) return uq_forward_device(c, seq, ids, n, logits, all_logits, NULL, NULL);
    uq_status chk = check_tokens(c, seq, ids, n);
    if (chk != UQ_OK) return chk;
    const int64_t d = c->dim;
    for (size_t off = 0; off < n; off += (size_t)c->n_batch) {
        if (uq_cancel_requested()) return uq_fail(UQ_ERR_CANCELLED, "cancelled");
        int64_t m = (int64_t)(n - off) < c->n_batch ? (int64_t)(n - off) : c->n_batch;
        for (int64_t t = 0; t < m; t++) embed_row(c, ids[off + (size_t)t], c->x + t * d);
        for (int64_t l = 0; l < c->n_layers; l++) layer_forward(c, seq, l, c->pos[seq], m);
        c->pos[seq] += m;
        int last_chunk = off + (size_t)m == n;
        if (!logits || (!all_logits && !last_chunk)) continue;
        if (all_logits) {
            for (int64_t t = 0; t < m; t++) uq_rmsnorm(c->xb + t * d, c->x + t * d, c->final_norm, d, c->cfg.rms_norm_eps);
            matmul(c, c->lm_head, c->xb, m, logits + off * (size_t)c->vocab, NULL);
        } else {
            uq_rmsnorm(c->xb, c->x + (m - 1) * d, c->final_norm, d, c->cfg.rms_norm_eps);
            matmul(c, c->lm_head, c->xb, 1, logits, NULL);
        }
    }
    return UQ_OK;
}

uq_status uq_forward(uq_context *c, const int32_t *ids, size_t n, float *logits)
{
    return uq_forward_seq(c, 0, ids, n, logits, 1);
}

uq_status uq_forward_last(uq_context *c, const int32_t *ids, size_t n, float *logits)
{
    return uq_forward_seq(c, 0, ids, n, logits, 0);
}
