/* uq_context: binds a model's tensors to the Llama layer structure, picks
 * the backend, and allocates the KV caches and activation buffers. */
#include "core/error.h"
#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void uq_context_params_init(uq_context_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_seq = 1;
    p->n_batch = 512;
    p->backend = "auto";
}

/* A weight of the expected shape, or an error naming it. */
static uq_status bind_weight(const uq_model *m, const char *name, int64_t rows, int64_t cols, const uq_weight **out)
{
    const uq_weight *w = uq_model_find_weight(m, name);
    if (!w) return uq_fail(UQ_ERR_MISSING, "model has no tensor \"%s.weight\"", name);
    if (w->rows != rows || w->cols != cols)
        return uq_fail(UQ_ERR_SHAPE, "\"%s\" is [%lld, %lld], the config implies [%lld, %lld]", name,
                       (long long)w->rows, (long long)w->cols, (long long)rows, (long long)cols);
    *out = w;
    return UQ_OK;
}

/* A 1-D float tensor (norm weight, bias) converted to f32; optional ones may be absent. */
static uq_status bind_vector(const uq_model *m, const char *name, int64_t n, int optional, float **out)
{
    *out = NULL;
    const uq_tensor *t = uq_files_find(uq_model_get_files(m), name);
    if (!t) return optional ? UQ_OK : uq_fail(UQ_ERR_MISSING, "model has no tensor \"%s\"", name);
    if (t->ndim != 1 || t->shape[0] != n)
        return uq_fail(UQ_ERR_SHAPE, "\"%s\" should be a vector of %lld values", name, (long long)n);
    if (!uq_dtype_is_float(t->dtype)) return uq_fail(UQ_ERR_DTYPE, "\"%s\" is %s, not a float", name, uq_dtype_name(t->dtype));
    *out = malloc((size_t)n * sizeof(float));
    if (!*out) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    return uq_to_f32(t->dtype, t->data, *out, (size_t)n);
}

static uq_status bind_layers(uq_context *c)
{
    const uq_model *m = c->model;
    c->layers = calloc((size_t)c->n_layers, sizeof *c->layers);
    if (!c->layers) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    uq_status st = UQ_OK;
    for (int64_t l = 0; l < c->n_layers && st == UQ_OK; l++) {
        uq_layer *L = &c->layers[l];
        char n[256];
#define NAME(s) (snprintf(n, sizeof n, "model.layers.%lld.%s", (long long)l, s), n)
        if ((st = bind_weight(m, NAME("self_attn.q_proj"), c->q_dim, c->dim, &L->wq))) break;
        if ((st = bind_weight(m, NAME("self_attn.k_proj"), c->kv_dim, c->dim, &L->wk))) break;
        if ((st = bind_weight(m, NAME("self_attn.v_proj"), c->kv_dim, c->dim, &L->wv))) break;
        if ((st = bind_weight(m, NAME("self_attn.o_proj"), c->dim, c->q_dim, &L->wo))) break;
        if ((st = bind_weight(m, NAME("mlp.gate_proj"), c->hidden_ff, c->dim, &L->wgate))) break;
        if ((st = bind_weight(m, NAME("mlp.up_proj"), c->hidden_ff, c->dim, &L->wup))) break;
        if ((st = bind_weight(m, NAME("mlp.down_proj"), c->dim, c->hidden_ff, &L->wdown))) break;
        if ((st = bind_vector(m, NAME("input_layernorm.weight"), c->dim, 0, &L->attn_norm))) break;
        if ((st = bind_vector(m, NAME("post_attention_layernorm.weight"), c->dim, 0, &L->ffn_norm))) break;
        if ((st = bind_vector(m, NAME("self_attn.q_proj.bias"), c->q_dim, 1, &L->bq))) break;
        if ((st = bind_vector(m, NAME("self_attn.k_proj.bias"), c->kv_dim, 1, &L->bk))) break;
        if ((st = bind_vector(m, NAME("self_attn.v_proj.bias"), c->kv_dim, 1, &L->bv))) break;
        if ((st = bind_vector(m, NAME("self_attn.o_proj.bias"), c->dim, 1, &L->bo))) break;
#undef NAME
    }
    return st;
}

/* Bytes the model's tensors and its f32 KV caches take on a device. */
static uint64_t device_need(const uq_context *c)
{
    const uq_model_files *f = uq_model_get_files(c->model);
    uint64_t bytes = 0;
    for (size_t i = 0; i < uq_files_count(f); i++) bytes += uq_files_tensor(f, i)->nbytes;
    bytes += 2ull * 4 * (uint64_t)c->n_seq * (uint64_t)c->n_layers * (uint64_t)c->n_ctx * (uint64_t)c->kv_dim;
    return bytes;
}

/* "auto": a device backend when one is available and the model fits in its
 * free memory (with 10% to spare), else the fastest CPU kernels. */
static const uq_backend_ops *choose_auto(const uq_context *c, char *why, size_t cap)
{
    char reasons[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < uq_backend_count(); i++) {
        const uq_backend_ops *ops = uq_backend_at(i);
        if (!ops->forward) continue;
        char r[200] = "";
        if (!ops->available(r, sizeof r)) {
            used += (size_t)snprintf(reasons + used, used < sizeof reasons ? sizeof reasons - used : 0, "%s: %s; ",
                                     ops->name, r);
            continue;
        }
        uint64_t total = 0, free_bytes = 0, need = device_need(c);
        uq_backend probe = {.ops = ops};
        if (ops->memory && ops->memory(&probe, &total, &free_bytes) == UQ_OK && need < free_bytes / 10 * 9) {
            snprintf(why, cap, "%s: %.2f GB free on the device, the model needs %.2f GB", ops->name,
                     (double)free_bytes / 1e9, (double)need / 1e9);
            return ops;
        }
        used += (size_t)snprintf(reasons + used, used < sizeof reasons ? sizeof reasons - used : 0,
                                 "%s: the model (%.2f GB) does not fit in %.2f GB free; ", ops->name,
                                 (double)need / 1e9, (double)free_bytes / 1e9);
    }
    const uq_backend_ops *cpu = uq_backend_find("cpu");
    if (!cpu) cpu = &uq_backend_cpu_ref;
    snprintf(why, cap, "%s%s (%s)", reasons, cpu->name, cpu->description);
    return cpu;
}

static uq_status pick_backend(uq_context *c, const char *name, int verbose)
{
    const uq_backend_ops *ops = NULL;
    char why[768] = "";
    if (!name || !*name || strcmp(name, "auto") == 0) {
        ops = choose_auto(c, why, sizeof why);
    } else {
        ops = uq_backend_find(name);
        if (!ops) return uq_fail(UQ_ERR_UNSUPPORTED, "unknown backend \"%s\" (auto, cpu, cpu-ref, cuda)", name);
        char reason[200] = "";
        if (!ops->available(reason, sizeof reason))
            return uq_fail(UQ_ERR_UNSUPPORTED, "backend \"%s\" is not available: %s", name, reason);
        snprintf(why, sizeof why, "asked for; %s", ops->description);
    }
    if (verbose) fprintf(stderr, "backend: %s (%s)\n", ops->name, why);
    c->backend.ops = ops;
    c->backend.pool = c->pool;
    int64_t max_cols = c->dim > c->hidden_ff ? c->dim : c->hidden_ff;
    if (c->q_dim > max_cols) max_cols = c->q_dim;
    return ops->init ? ops->init(&c->backend, max_cols) : UQ_OK;
}

static float *alloc_f32(int64_t n, uq_status *st)
{
    if (*st != UQ_OK) return NULL;
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) *st = uq_fail(UQ_ERR_NOMEM, "out of memory (%lld floats)", (long long)n);
    return p;
}

uq_status uq_context_create(const uq_model *m, const uq_context_params *p, uq_context **out)
{
    if (!m || !out) return uq_fail(UQ_ERR_ARG, "uq_context_create: NULL argument");
    *out = NULL;
    uq_context_params defaults;
    uq_context_params_init(&defaults);
    if (!p) p = &defaults;
    const uq_model_config *cfg = uq_model_get_config(m);
    if (!cfg) return uq_fail(UQ_ERR_MISSING, "the model has no config.json: cannot run it");
    uq_status st = uq_config_check_runnable(cfg);
    if (st != UQ_OK) return st;
    if (p->n_seq < 1 || p->n_seq > 4096 || p->n_batch < 0 || p->n_ctx < 0 || p->n_threads < 0)
        return uq_fail(UQ_ERR_ARG, "context parameters out of range");

    uq_context *c = calloc(1, sizeof *c);
    if (!c) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    c->model = m;
    c->cfg = *cfg;
    c->dim = cfg->hidden_size;
    c->head_dim = cfg->head_dim;
    c->n_heads = cfg->num_heads;
    c->n_kv = cfg->num_kv_heads;
    c->q_dim = c->n_heads * c->head_dim;
    c->kv_dim = c->n_kv * c->head_dim;
    c->hidden_ff = cfg->intermediate_size;
    c->vocab = cfg->vocab_size;
    c->n_layers = cfg->num_layers;
    c->n_seq = p->n_seq;
    c->n_ctx = p->n_ctx ? p->n_ctx : cfg->max_position_embeddings > 0 && cfg->max_position_embeddings < 2048
                                         ? cfg->max_position_embeddings
                                         : 2048;
    if (cfg->max_position_embeddings > 0 && c->n_ctx > cfg->max_position_embeddings) {
        int64_t want = c->n_ctx;
        free(c);
        return uq_fail(UQ_ERR_ARG, "a context of %lld tokens exceeds the model's %lld positions", (long long)want,
                       (long long)cfg->max_position_embeddings);
    }
    c->n_batch = p->n_batch ? p->n_batch : 512;
    if (c->n_batch > c->n_ctx) c->n_batch = c->n_ctx;

    if ((st = bind_layers(c)) != UQ_OK) goto fail;
    if ((st = bind_weight(m, "model.embed_tokens", c->vocab, c->dim, &c->embed)) != UQ_OK) goto fail;
    if (uq_model_find_weight(m, "lm_head")) {
        if ((st = bind_weight(m, "lm_head", c->vocab, c->dim, &c->lm_head)) != UQ_OK) goto fail;
    } else {
        c->lm_head = c->embed; /* tied */
    }
    if ((st = bind_vector(m, "model.norm.weight", c->dim, 0, &c->final_norm)) != UQ_OK) goto fail;
    if ((st = uq_pool_create(p->n_threads, &c->pool)) != UQ_OK) goto fail;
    if ((st = pick_backend(c, p->backend, p->verbose)) != UQ_OK) goto fail;

    c->pos = calloc((size_t)c->n_seq, sizeof *c->pos);
    c->logits_tmp = alloc_f32(c->vocab, &st);
    if (!c->pos) st = uq_fail(UQ_ERR_NOMEM, "out of memory");
    if (st == UQ_OK && c->backend.ops->forward) {
        /* a device backend holds the caches and activations itself */
        if ((st = c->backend.ops->prepare(&c->backend, c)) != UQ_OK) goto fail;
        *out = c;
        return UQ_OK;
    }
    int64_t kv = (int64_t)c->n_seq * c->n_layers * c->n_ctx * c->kv_dim, nb = c->n_batch;
    c->k_cache = alloc_f32(kv, &st);
    c->v_cache = alloc_f32(kv, &st);
    c->rope_cos = alloc_f32(c->n_ctx * c->head_dim / 2, &st);
    c->rope_sin = alloc_f32(c->n_ctx * c->head_dim / 2, &st);
    c->x = alloc_f32(nb * c->dim, &st);
    c->xb = alloc_f32(nb * (c->dim > c->q_dim ? c->dim : c->q_dim), &st);
    c->xb2 = alloc_f32(nb * c->dim, &st);
    c->q = alloc_f32(nb * c->q_dim, &st);
    c->k = alloc_f32(nb * c->kv_dim, &st);
    c->v = alloc_f32(nb * c->kv_dim, &st);
    c->att_out = alloc_f32(nb * c->q_dim, &st);
    c->hb = alloc_f32(nb * c->hidden_ff, &st);
    c->hb2 = alloc_f32(nb * c->hidden_ff, &st);
    c->att_scratch = alloc_f32((int64_t)uq_pool_threads(c->pool) * uq_attn_scratch_floats(c->n_ctx, c->head_dim), &st);
    if (st != UQ_OK) goto fail;
    uq_rope_tables(&c->cfg, c->n_ctx, c->rope_cos, c->rope_sin);
    *out = c;
    return UQ_OK;
fail:
    uq_context_free(c);
    return st;
}

void uq_context_free(uq_context *c)
{
    if (!c) return;
    if (c->backend.ops && c->backend.ops->release) c->backend.ops->release(&c->backend);
    for (int64_t l = 0; c->layers && l < c->n_layers; l++) {
        uq_layer *L = &c->layers[l];
        free(L->attn_norm);
        free(L->ffn_norm);
        free(L->bq);
        free(L->bk);
        free(L->bv);
        free(L->bo);
    }
    free(c->layers);
    free(c->final_norm);
    uq_pool_free(c->pool);
    free(c->pos);
    float *bufs[] = {c->k_cache, c->v_cache, c->rope_cos, c->rope_sin, c->x, c->xb, c->xb2, c->q, c->k,
                     c->v, c->att_out, c->hb, c->hb2, c->att_scratch, c->logits_tmp};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(c);
}

const char *uq_context_backend_name(const uq_context *c) { return c && c->backend.ops ? c->backend.ops->name : ""; }
int uq_context_threads(const uq_context *c) { return c ? uq_pool_threads(c->pool) : 0; }
int64_t uq_context_n_ctx(const uq_context *c) { return c ? c->n_ctx : 0; }
int64_t uq_context_vocab(const uq_context *c) { return c ? c->vocab : 0; }

int64_t uq_context_pos(const uq_context *c, int seq)
{
    return c && seq >= 0 && seq < c->n_seq ? c->pos[seq] : -1;
}

void uq_context_reset(uq_context *c, int seq)
{
    if (!c) return;
    for (int s = 0; s < c->n_seq; s++)
        if (seq < 0 || s == seq) c->pos[s] = 0;
}
