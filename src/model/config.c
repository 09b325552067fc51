/* config.json of Llama-family models (llama, mistral, qwen2 and anything
 * shaped like LlamaForCausalLM). */
#include "core/error.h"
#include "io/path.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Known runnable families, by model_type and by architecture name. */
static const char *const llama_types[] = {"llama", "mistral", "qwen2"};
static const char *const llama_archs[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};

typedef struct ctx {
    const char *label;
    json_t *root;
} ctx;

static uq_status get_int(const ctx *c, json_t *obj, const char *key, int64_t *out, int64_t dflt)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return UQ_OK;
    }
    if (!json_is_integer(v)) return uq_fail(UQ_ERR_FIELD, "%s: \"%s\" is not an integer", c->label, key);
    *out = (int64_t)json_integer_value(v);
    return UQ_OK;
}

static uq_status get_num(const ctx *c, json_t *obj, const char *key, double *out, double dflt)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return UQ_OK;
    }
    if (!json_is_number(v)) return uq_fail(UQ_ERR_FIELD, "%s: \"%s\" is not a number", c->label, key);
    *out = json_number_value(v);
    return UQ_OK;
}

static uq_status get_bool(const ctx *c, json_t *obj, const char *key, int *out, int dflt)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return UQ_OK;
    }
    if (!json_is_boolean(v)) return uq_fail(UQ_ERR_FIELD, "%s: \"%s\" is not a boolean", c->label, key);
    *out = json_is_true(v);
    return UQ_OK;
}

static uq_status get_str(const ctx *c, json_t *obj, const char *key, char *out, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    out[0] = '\0';
    if (!v || json_is_null(v)) return UQ_OK;
    if (!json_is_string(v)) return uq_fail(UQ_ERR_FIELD, "%s: \"%s\" is not a string", c->label, key);
    snprintf(out, cap, "%s", json_string_value(v));
    return UQ_OK;
}

static uq_status parse_rope(const ctx *c, uq_model_config *m)
{
    json_t *params = json_object_get(c->root, "rope_parameters");
    json_t *scaling = json_object_get(c->root, "rope_scaling");
    if (params && !json_is_null(params) && !json_is_object(params))
        return uq_fail(UQ_ERR_FIELD, "%s: \"rope_parameters\" is not an object", c->label);
    if (scaling && !json_is_null(scaling) && !json_is_object(scaling))
        return uq_fail(UQ_ERR_FIELD, "%s: \"rope_scaling\" is not an object", c->label);
    uq_status st;
    /* rope_theta: top level (older form) or inside rope_parameters (newer). */
    if (json_object_get(c->root, "rope_theta")) st = get_num(c, c->root, "rope_theta", &m->rope_theta, 10000.0);
    else if (json_is_object(params)) st = get_num(c, params, "rope_theta", &m->rope_theta, 10000.0);
    else {
        m->rope_theta = 10000.0;
        st = UQ_OK;
    }
    if (st != UQ_OK) return st;
    if (!(m->rope_theta > 0) || !isfinite(m->rope_theta))
        return uq_fail(UQ_ERR_CONFIG, "%s: rope_theta must be positive", c->label);

    json_t *rs = json_is_object(scaling) ? scaling : json_is_object(params) ? params : NULL;
    uq_rope_scaling *r = &m->rope_scaling;
    memset(r, 0, sizeof *r);
    r->type = UQ_ROPE_DEFAULT;
    snprintf(r->type_name, sizeof r->type_name, "default");
    if (!rs) return UQ_OK;
    char type[32];
    if ((st = get_str(c, rs, "rope_type", type, sizeof type)) != UQ_OK) return st;
    if (!type[0] && (st = get_str(c, rs, "type", type, sizeof type)) != UQ_OK) return st;
    if (!type[0] || strcmp(type, "default") == 0) return UQ_OK;
    snprintf(r->type_name, sizeof r->type_name, "%s", type);
    if ((st = get_num(c, rs, "factor", &r->factor, 1.0)) != UQ_OK) return st;
    if (strcmp(type, "llama3") == 0) {
        r->type = UQ_ROPE_LLAMA3;
        if ((st = get_num(c, rs, "low_freq_factor", &r->low_freq_factor, 1.0)) != UQ_OK) return st;
        if ((st = get_num(c, rs, "high_freq_factor", &r->high_freq_factor, 4.0)) != UQ_OK) return st;
        if ((st = get_int(c, rs, "original_max_position_embeddings", &r->original_max_position_embeddings,
                          8192)) != UQ_OK)
            return st;
        if (!(r->factor > 0) || !(r->high_freq_factor > r->low_freq_factor) ||
            r->original_max_position_embeddings <= 0)
            return uq_fail(UQ_ERR_CONFIG, "%s: inconsistent llama3 rope scaling values", c->label);
    } else if (strcmp(type, "linear") == 0) {
        r->type = UQ_ROPE_LINEAR;
        if (!(r->factor > 0)) return uq_fail(UQ_ERR_CONFIG, "%s: rope scaling factor must be positive", c->label);
    } else {
        r->type = UQ_ROPE_OTHER;
    }
    return UQ_OK;
}

static uq_status parse_token_ids(const ctx *c, uq_model_config *m)
{
    uq_status st = get_int(c, c->root, "bos_token_id", &m->bos_token_id, -1);
    if (st != UQ_OK) return st;
    json_t *eos = json_object_get(c->root, "eos_token_id");
    m->n_eos = 0;
    if (!eos || json_is_null(eos)) return UQ_OK;
    if (json_is_integer(eos)) {
        m->eos_token_ids[m->n_eos++] = (int64_t)json_integer_value(eos);
        return UQ_OK;
    }
    if (!json_is_array(eos)) return uq_fail(UQ_ERR_FIELD, "%s: \"eos_token_id\" is not an integer or a list", c->label);
    size_t i;
    json_t *v;
    json_array_foreach(eos, i, v) {
        if (!json_is_integer(v)) return uq_fail(UQ_ERR_FIELD, "%s: \"eos_token_id\"[%zu] is not an integer", c->label, i);
        if (m->n_eos < UQ_MAX_EOS) m->eos_token_ids[m->n_eos++] = (int64_t)json_integer_value(v);
    }
    return UQ_OK;
}

static int in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

uq_status uq_config_parse(const char *json, size_t len, const char *label, uq_model_config *m)
{
    if (!json || !m) return uq_fail(UQ_ERR_ARG, "uq_config_parse: NULL argument");
    memset(m, 0, sizeof *m);
    label = label ? label : "config.json";
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) return uq_fail(UQ_ERR_JSON, "%s: not valid JSON (%s, line %d)", label, jerr.text, jerr.line);
    ctx c = {label, root};
    uq_status st = UQ_OK;
    if (!json_is_object(root)) {
        st = uq_fail(UQ_ERR_JSON, "%s: not a JSON object", label);
        goto out;
    }
#define TRY(x) \
    if ((st = (x)) != UQ_OK) goto out
    TRY(get_str(&c, root, "model_type", m->model_type, sizeof m->model_type));
    json_t *archs = json_object_get(root, "architectures");
    if (archs && !json_is_null(archs)) {
        if (!json_is_array(archs) || (json_array_size(archs) && !json_is_string(json_array_get(archs, 0)))) {
            st = uq_fail(UQ_ERR_FIELD, "%s: \"architectures\" is not a list of strings", label);
            goto out;
        }
        if (json_array_size(archs))
            snprintf(m->architecture, sizeof m->architecture, "%s", json_string_value(json_array_get(archs, 0)));
    }
    m->llama_family = in_list(m->model_type, llama_types, sizeof llama_types / sizeof *llama_types) ||
                      in_list(m->architecture, llama_archs, sizeof llama_archs / sizeof *llama_archs);
    TRY(get_int(&c, root, "hidden_size", &m->hidden_size, 0));
    TRY(get_int(&c, root, "intermediate_size", &m->intermediate_size, 0));
    TRY(get_int(&c, root, "num_hidden_layers", &m->num_layers, 0));
    TRY(get_int(&c, root, "num_attention_heads", &m->num_heads, 0));
    TRY(get_int(&c, root, "num_key_value_heads", &m->num_kv_heads, m->num_heads));
    int64_t derived = m->num_heads > 0 ? m->hidden_size / m->num_heads : 0;
    TRY(get_int(&c, root, "head_dim", &m->head_dim, derived));
    TRY(get_int(&c, root, "vocab_size", &m->vocab_size, 0));
    TRY(get_int(&c, root, "max_position_embeddings", &m->max_position_embeddings, 0));
    TRY(get_num(&c, root, "rms_norm_eps", &m->rms_norm_eps, 1e-6));
    TRY(parse_rope(&c, m));
    TRY(get_bool(&c, root, "tie_word_embeddings", &m->tie_word_embeddings, 0));
    /* qwen2 always has q/k/v biases and no attention_bias field. */
    TRY(get_bool(&c, root, "attention_bias", &m->attention_bias, strcmp(m->model_type, "qwen2") == 0));
    TRY(get_bool(&c, root, "mlp_bias", &m->mlp_bias, 0));
    TRY(parse_token_ids(&c, m));
    TRY(get_str(&c, root, "torch_dtype", m->torch_dtype, sizeof m->torch_dtype));
    if (!m->torch_dtype[0]) TRY(get_str(&c, root, "dtype", m->torch_dtype, sizeof m->torch_dtype));
#undef TRY
out:
    json_decref(root);
    return st;
}

uq_status uq_config_load(const char *path, uq_model_config *out)
{
    char *text;
    size_t len;
    uq_status st = uq_read_file(path, 16u << 20, &text, &len);
    if (st != UQ_OK) return st;
    st = uq_config_parse(text, len, path, out);
    free(text);
    return st;
}

uq_status uq_config_check_runnable(const uq_model_config *c)
{
    if (!c) return uq_fail(UQ_ERR_ARG, "uq_config_check_runnable: NULL argument");
    if (!c->llama_family)
        return uq_fail(UQ_ERR_UNSUPPORTED, "architecture %s (model_type \"%s\") is not supported for running: "
                       "supported are Llama-family models (llama, mistral, qwen2)",
                       c->architecture[0] ? c->architecture : "(none)", c->model_type);
    const int64_t big = (int64_t)1 << 24;
    struct {
        const char *name;
        int64_t v;
    } pos[] = {{"hidden_size", c->hidden_size},       {"intermediate_size", c->intermediate_size},
               {"num_hidden_layers", c->num_layers},  {"num_attention_heads", c->num_heads},
               {"num_key_value_heads", c->num_kv_heads}, {"head_dim", c->head_dim},
               {"vocab_size", c->vocab_size}};
    for (size_t i = 0; i < sizeof pos / sizeof *pos; i++)
        if (pos[i].v <= 0 || pos[i].v > big)
            return uq_fail(UQ_ERR_CONFIG, "config: %s = %lld is out of range", pos[i].name, (long long)pos[i].v);
    if (c->num_heads % c->num_kv_heads != 0)
        return uq_fail(UQ_ERR_CONFIG, "config: %lld attention heads is not a multiple of %lld KV heads",
                       (long long)c->num_heads, (long long)c->num_kv_heads);
    if (c->head_dim % 2 != 0) return uq_fail(UQ_ERR_CONFIG, "config: head_dim %lld is odd", (long long)c->head_dim);
    if (!(c->rms_norm_eps > 0) || !isfinite(c->rms_norm_eps))
        return uq_fail(UQ_ERR_CONFIG, "config: rms_norm_eps must be positive");
    if (c->rope_scaling.type == UQ_ROPE_OTHER)
        return uq_fail(UQ_ERR_UNSUPPORTED, "config: rope scaling \"%s\" is not supported", c->rope_scaling.type_name);
    return UQ_OK;
}
