/* Internal structures of the Llama-family forward pass (llama2.c style:
 * plain structs, one function per layer part). */
#ifndef UQ_RUNTIME_RUNTIME_H
#define UQ_RUNTIME_RUNTIME_H

#include "backend/backend.h"
#include "core/vec.h"
#include "uquant.h"

typedef struct uq_layer {
    const uq_weight *wq, *wk, *wv, *wo, *wgate, *wup, *wdown;
    float *attn_norm, *ffn_norm;      /* [hidden] */
    float *bq, *bk, *bv, *bo;         /* optional biases (qwen2: q/k/v) */
} uq_layer;

struct uq_context {
    const uq_model *model;
    uq_model_config cfg;
    int64_t dim, q_dim, kv_dim, hidden_ff, head_dim, n_heads, n_kv, vocab, n_layers;
    uq_layer *layers;
    const uq_weight *embed, *lm_head;
    float *final_norm;
    uq_backend backend;
    uq_pool *pool;
    int64_t n_ctx, n_batch;
    int n_seq;
    int64_t *pos;                     /* tokens held per sequence */
    float *k_cache, *v_cache;         /* [n_seq][layers][n_ctx][kv_dim] */
    float *rope_cos, *rope_sin;       /* [n_ctx][head_dim / 2] */
    /* activations for up to n_batch tokens */
    float *x, *xb, *xb2, *q, *k, *v, *att_out, *hb, *hb2;
    float *att_scratch;               /* [threads][n_ctx] */
    float *logits_tmp;                /* [vocab] */
};

/* ops.c */
void uq_rmsnorm(float *out, const float *x, const float *w, int64_t n, double eps);
void uq_rope_tables(const uq_model_config *c, int64_t n_ctx, float *cos_t, float *sin_t);
void uq_rope_apply(float *v, int64_t n_heads, int64_t head_dim, const float *cos_row, const float *sin_row);

#endif
