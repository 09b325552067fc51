#include "model/synthetic.h"

#include "core/error.h"
#include "io/path.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uq_model_config uq_synthetic_config(int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads,
                                    int64_t kv_heads, int64_t vocab, int tied)
{
    uq_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.model_type, sizeof c.model_type, "llama");
    snprintf(c.architecture, sizeof c.architecture, "LlamaForCausalLM");
    c.llama_family = 1;
    c.hidden_size = hidden;
    c.intermediate_size = intermediate;
    c.num_layers = layers;
    c.num_heads = heads;
    c.num_kv_heads = kv_heads;
    c.head_dim = hidden / heads;
    c.vocab_size = vocab;
    c.max_position_embeddings = 4096;
    c.rms_norm_eps = 1e-5;
    c.rope_theta = 10000.0;
    c.tie_word_embeddings = tied;
    c.bos_token_id = 1;
    c.n_eos = 1;
    c.eos_token_ids[0] = 2;
    snprintf(c.rope_scaling.type_name, sizeof c.rope_scaling.type_name, "default");
    return c;
}

/* splitmix64: fast, good enough for weights. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Sum of four 16-bit uniforms: mean 0, close to normal; scaled to sd 0.02. */
static float next_weight(uint64_t *s)
{
    uint64_t r = next_u64(s);
    float sum = (float)(r & 0xffff) + (float)((r >> 16) & 0xffff) + (float)((r >> 32) & 0xffff) + (float)(r >> 48);
    /* each uniform on [0, 65535]: mean 32767.5, variance 65536^2 / 12 */
    return (sum - 131070.0f) * (0.02f / 37837.2f);
}

typedef struct spec {
    char name[128];
    int64_t shape[2];
    int ndim;
    int is_norm;
} spec;

static int list_tensors(const uq_model_config *c, spec *out)
{
    int n = 0;
#define ADD2(nm, r, cc) (snprintf(out[n].name, sizeof out[n].name, "%s", nm), out[n].shape[0] = (r), \
                         out[n].shape[1] = (cc), out[n].ndim = 2, out[n].is_norm = 0, n++)
#define ADD1(nm, len) (snprintf(out[n].name, sizeof out[n].name, "%s", nm), out[n].shape[0] = (len), \
                       out[n].ndim = 1, out[n].is_norm = 1, n++)
    const int64_t h = c->hidden_size, q = c->num_heads * c->head_dim, kv = c->num_kv_heads * c->head_dim;
    ADD2("model.embed_tokens.weight", c->vocab_size, h);
    for (int64_t l = 0; l < c->num_layers; l++) {
        char p[128];
#define L(suffix) (snprintf(p, sizeof p, "model.layers.%lld.%s", (long long)l, suffix), p)
        ADD1(L("input_layernorm.weight"), h);
        ADD2(L("self_attn.q_proj.weight"), q, h);
        ADD2(L("self_attn.k_proj.weight"), kv, h);
        ADD2(L("self_attn.v_proj.weight"), kv, h);
        ADD2(L("self_attn.o_proj.weight"), h, q);
        ADD1(L("post_attention_layernorm.weight"), h);
        ADD2(L("mlp.gate_proj.weight"), c->intermediate_size, h);
        ADD2(L("mlp.up_proj.weight"), c->intermediate_size, h);
        ADD2(L("mlp.down_proj.weight"), h, c->intermediate_size);
#undef L
    }
    ADD1("model.norm.weight", h);
    if (!c->tie_word_embeddings) ADD2("lm_head.weight", c->vocab_size, h);
#undef ADD1
#undef ADD2
    return n;
}

uq_status uq_synthetic_write_config(const char *dir, const uq_model_config *c, uq_dtype dtype)
{
    json_t *o = json_object();
    json_t *arch = json_array();
    json_array_append_new(arch, json_string("LlamaForCausalLM"));
    json_object_set_new(o, "architectures", arch);
    json_object_set_new(o, "model_type", json_string("llama"));
    json_object_set_new(o, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(o, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->num_layers));
    json_object_set_new(o, "num_attention_heads", json_integer(c->num_heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->num_kv_heads));
    json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_position_embeddings));
    json_object_set_new(o, "rms_norm_eps", json_real(c->rms_norm_eps));
    json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(o, "bos_token_id", json_integer(c->bos_token_id));
    json_object_set_new(o, "eos_token_id", json_integer(c->n_eos ? c->eos_token_ids[0] : 2));
    json_object_set_new(o, "torch_dtype",
                        json_string(dtype == UQ_BF16 ? "bfloat16" : dtype == UQ_F16 ? "float16" : "float32"));
    char path[PATH_MAX];
    uq_status st = uq_path_join(path, sizeof path, dir, "config.json");
    if (st == UQ_OK) st = uq_write_json_atomic(path, o);
    json_decref(o);
    return st;
}

uq_status uq_make_synthetic_model(const char *dir, const uq_model_config *c, uq_dtype dtype, uint64_t seed)
{
    if (!uq_dtype_is_float(dtype)) return uq_fail(UQ_ERR_DTYPE, "synthetic model: dtype must be F32, F16 or BF16");
    if (c->num_layers < 0 || c->num_layers > 100000) return uq_fail(UQ_ERR_CONFIG, "synthetic model: bad layer count");
    size_t cap = (size_t)(9 * c->num_layers + 3);
    spec *specs = calloc(cap, sizeof *specs);
    if (!specs) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    int n = list_tensors(c, specs);
    uq_st_writer *w = NULL;
    uq_status st = uq_st_writer_create(&w);
    for (int i = 0; i < n && st == UQ_OK; i++) st = uq_st_writer_add(w, specs[i].name, dtype, specs[i].ndim, specs[i].shape);
    if (st == UQ_OK) st = uq_st_writer_set_metadata(w, "format", "pt");
    if (st == UQ_OK) st = uq_st_writer_begin(w, dir, "model", 0);
    const size_t chunk = 1 << 20;
    float *f = malloc(chunk * sizeof *f);
    unsigned char *buf = malloc(chunk * 4);
    if (st == UQ_OK && (!f || !buf)) st = uq_fail(UQ_ERR_NOMEM, "out of memory");
    const size_t el = uq_dtype_size(dtype);
    for (int i = 0; i < n && st == UQ_OK; i++) {
        uint64_t s = seed * 0x100000001b3ull + (uint64_t)i;
        uint64_t total = (uint64_t)specs[i].shape[0] * (uint64_t)(specs[i].ndim == 2 ? specs[i].shape[1] : 1);
        for (uint64_t off = 0; off < total && st == UQ_OK; off += chunk) {
            size_t m = (size_t)(total - off < chunk ? total - off : chunk);
            for (size_t k = 0; k < m; k++) f[k] = specs[i].is_norm ? 1.0f : next_weight(&s);
            if ((st = uq_from_f32(dtype, f, buf, m)) == UQ_OK) st = uq_st_writer_put(w, specs[i].name, off * el, buf, m * el);
        }
    }
    if (st == UQ_OK) st = uq_st_writer_finish(w);
    if (st == UQ_OK) st = uq_synthetic_write_config(dir, c, dtype);
    free(f);
    free(buf);
    free(specs);
    uq_st_writer_free(w);
    return st;
}
