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
    float *att_scratch;               /* [threads][uq_attn_scratch_floats] */
    float *logits_tmp;                /* [vocab] */
};

/* forward.c: n > 0 tokens of sequence seq through a device backend (its
 * forward op: logits as uq_forward_seq, may be NULL; picked, when not NULL,
 * the tokens picked on the device as pick says, NULL: greedy);
 * UQ_ERR_UNSUPPORTED for host backends. */
uq_status uq_forward_device(uq_context *c, int seq, const int32_t *ids, size_t n, float *logits, int all_logits,
                           const uq_token_pick *pick, int32_t *picked);

/* generate.c: uq_sample's generator (a uniform in [0, 1), 53 bits) and
 * uq_sample with the uniform it would draw given: the pick of a device
 * backend (uq_token_pick) and its tests. */
double uq_rng_uniform(uint64_t *state);
int32_t uq_sample_with(float *logits, int64_t vocab, const uq_sampler_params *p, double r);

/* attention.c: causal attention of nq consecutive queries of one head, at
 * positions pos0.., over keys/values 0..pos0 + nq - 1 (rows kv_stride apart,
 * already holding the block's own keys). q[i * q_stride + 0..hd) is query i,
 * out[i * out_stride + 0..hd) its output; scores are scaled by scale. */
#define UQ_ATTN_BLOCK 32 /* queries per prefill attention task */
int64_t uq_attn_scratch_floats(int64_t n_ctx, int64_t head_dim);
void uq_attn_block(const float *q, int64_t q_stride, const float *k, const float *v, int64_t kv_stride,
                   int64_t hd, int64_t pos0, int64_t nq, float scale, float *out, int64_t out_stride,
                   float *scratch);
/* Tests: 1 runs the portable kernels even where SIMD ones exist, 0 the best. */
void uq_attn_force_portable(int on);
/* One query over npos keys (decoding): scores, softmax and mix; scratch holds
 * npos floats. */
void uq_attn_one(const float *q, const float *k, const float *v, int64_t kv_stride, int64_t hd, int64_t npos,
                 float scale, float *out, float *scratch);

/* ops.c */
void uq_rmsnorm(float *out, const float *x, const float *w, int64_t n, double eps);
void uq_rope_tables(const uq_model_config *c, int64_t n_ctx, float *cos_t, float *sin_t);
void uq_rope_apply(float *v, int64_t n_heads, int64_t head_dim, const float *cos_row, const float *sin_row);

#endif
