/* uq_quant_config: defaults, validation, and the seeds'
 * UnifiedQuantizationConfig as a JSON file. */
#include "core/error.h"
#include "io/path.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void uq_quant_config_init(uq_quant_config *c)
{
    memset(c, 0, sizeof *c);
    c->bits = 4;
    c->group_size = 64;
    c->scheme = UQ_SCHEME_AFFINE;
    c->memory_efficient = 1;
    c->max_shard_bytes = 5000000000ull;
}

static const char *const recipes[] = {"mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6"};

uq_status uq_quant_config_validate(const uq_quant_config *c)
{
    if (!c) return uq_fail(UQ_ERR_ARG, "NULL quantization config");
    int min_bits = c->scheme == UQ_SCHEME_SYMMETRIC ? 2 : 1;
    if (c->scheme != UQ_SCHEME_AFFINE && c->scheme != UQ_SCHEME_SYMMETRIC)
        return uq_fail(UQ_ERR_CONFIG, "unknown scheme %d", (int)c->scheme);
    if (c->bits < min_bits || c->bits > 8)
        return uq_fail(UQ_ERR_UNSUPPORTED, "%d bits is not supported by the %s scheme (%d to 8)", c->bits,
                       c->scheme == UQ_SCHEME_AFFINE ? "affine" : "symmetric", min_bits);
    int group_ok = c->group_size > 0 && c->group_size % 8 == 0;
    if (c->scheme == UQ_SCHEME_SYMMETRIC && c->group_size == 0) group_ok = 1;
    if (!group_ok)
        return uq_fail(UQ_ERR_UNSUPPORTED, "group size %d is not a positive multiple of 8%s", c->group_size,
                       c->scheme == UQ_SCHEME_SYMMETRIC ? " (or 0 for one scale per row)" : "");
    struct {
        const char *name;
        int v;
    } extra[] = {{"embedding_bits", c->embedding_bits}, {"output_bits", c->output_bits}};
    for (int i = 0; i < 2; i++)
        if (extra[i].v != 0 && (extra[i].v < min_bits || extra[i].v > 8) && extra[i].v != 16)
            return uq_fail(UQ_ERR_UNSUPPORTED, "%s = %d is not supported (%d to 8, or 16 to keep float)",
                           extra[i].name, extra[i].v, min_bits);
    if (c->n_layer_bits < 0 || c->n_layer_bits > UQ_MAX_RULES || c->n_skip_modules < 0 ||
        c->n_skip_modules > UQ_MAX_RULES)
        return uq_fail(UQ_ERR_CONFIG, "too many layer rules (at most %d)", UQ_MAX_RULES);
    for (int i = 0; i < c->n_layer_bits; i++) {
        const uq_layer_rule *r = &c->layer_bits[i];
        if (!r->pattern[0]) return uq_fail(UQ_ERR_CONFIG, "layer rule %d has an empty pattern", i + 1);
        if (r->bits != 0 && r->bits != 16 && (r->bits < min_bits || r->bits > 8))
            return uq_fail(UQ_ERR_UNSUPPORTED, "layer rule \"%s\": %d bits is not supported", r->pattern, r->bits);
        if (r->group_size < 0 || r->group_size % 8 != 0)
            return uq_fail(UQ_ERR_UNSUPPORTED, "layer rule \"%s\": group size %d is not a multiple of 8", r->pattern,
                           r->group_size);
    }
    if (c->recipe[0]) {
        int ok = 0;
        for (size_t i = 0; i < sizeof recipes / sizeof *recipes; i++) ok |= strcmp(c->recipe, recipes[i]) == 0;
        if (!ok)
            return uq_fail(UQ_ERR_CONFIG, "unknown recipe \"%s\" (mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6)",
                           c->recipe);
    }
    if (c->chunk_size < 0) return uq_fail(UQ_ERR_CONFIG, "chunk_size must not be negative");
    if (c->n_threads < 0 || c->n_threads > 1024) return uq_fail(UQ_ERR_CONFIG, "thread count %d out of range", c->n_threads);
    return UQ_OK;
}

/* ------------------------------------------------------------ JSON file */

static uq_status int_field(const char *label, const char *key, json_t *v, int *out)
{
    if (!json_is_integer(v)) return uq_fail(UQ_ERR_FIELD, "%s: \"%s\" is not an integer", label, key);
    json_int_t x = json_integer_value(v);
    if (x < -1000000 || x > 1000000000) return uq_fail(UQ_ERR_CONFIG, "%s: \"%s\" is out of range", label, key);
    *out = (int)x;
    return UQ_OK;
}

static uq_status add_rule(const char *label, uq_quant_config *c, const char *pattern, json_t *v)
{
    if (c->n_layer_bits >= UQ_MAX_RULES) return uq_fail(UQ_ERR_CONFIG, "%s: more than %d layer_bits rules", label, UQ_MAX_RULES);
    if (strlen(pattern) >= UQ_MAX_PATTERN)
        return uq_fail(UQ_ERR_CONFIG, "%s: layer_bits pattern longer than %d characters", label, UQ_MAX_PATTERN - 1);
    uq_layer_rule *r = &c->layer_bits[c->n_layer_bits];
    memset(r, 0, sizeof *r);
    snprintf(r->pattern, sizeof r->pattern, "%s", pattern);
    uq_status st;
    if (json_is_integer(v)) {
        if ((st = int_field(label, pattern, v, &r->bits)) != UQ_OK) return st;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (strcmp(k, "bits") == 0) st = int_field(label, "bits", x, &r->bits);
            else if (strcmp(k, "group_size") == 0) st = int_field(label, "group_size", x, &r->group_size);
            else st = uq_fail(UQ_ERR_FIELD, "%s: layer_bits \"%s\": unknown field \"%s\"", label, pattern, k);
            if (st != UQ_OK) return st;
        }
        if (!json_object_get(v, "bits"))
            return uq_fail(UQ_ERR_FIELD, "%s: layer_bits \"%s\" has no \"bits\"", label, pattern);
    } else {
        return uq_fail(UQ_ERR_FIELD, "%s: layer_bits \"%s\" must be bits or {\"bits\", \"group_size\"}", label, pattern);
    }
    c->n_layer_bits++;
    return UQ_OK;
}

uq_status uq_quant_config_parse(const char *json, size_t len, const char *label, uq_quant_config *c)
{
    if (!json || !c) return uq_fail(UQ_ERR_ARG, "uq_quant_config_parse: NULL argument");
    label = label ? label : "quantization config";
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return uq_fail(UQ_ERR_JSON, "%s: not valid JSON (%s, line %d)", label, jerr.text, jerr.line);
    uq_status st = UQ_OK;
    if (!json_is_object(root)) {
        st = uq_fail(UQ_ERR_JSON, "%s: not a JSON object", label);
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (strcmp(k, "bits") == 0 || strcmp(k, "default_bits") == 0) {
            st = int_field(label, k, v, &c->bits);
        } else if (strcmp(k, "group_size") == 0) {
            st = int_field(label, k, v, &c->group_size);
        } else if (strcmp(k, "embedding_bits") == 0 || strcmp(k, "output_bits") == 0) {
            int *dst = k[0] == 'e' ? &c->embedding_bits : &c->output_bits;
            if (json_is_null(v)) *dst = 0;
            else st = int_field(label, k, v, dst);
        } else if (strcmp(k, "chunk_size") == 0) {
            int x = 0;
            if (json_is_null(v)) c->chunk_size = 0;
            else if ((st = int_field(label, k, v, &x)) == UQ_OK) c->chunk_size = x;
        } else if (strcmp(k, "memory_efficient") == 0) {
            if (!json_is_boolean(v)) st = uq_fail(UQ_ERR_FIELD, "%s: \"%s\" is not a boolean", label, k);
            else c->memory_efficient = json_is_true(v);
        } else if (strcmp(k, "scheme") == 0) {
            const char *s = json_string_value(v);
            if (s && strcmp(s, "affine") == 0) c->scheme = UQ_SCHEME_AFFINE;
            else if (s && strcmp(s, "symmetric") == 0) c->scheme = UQ_SCHEME_SYMMETRIC;
            else st = uq_fail(UQ_ERR_FIELD, "%s: \"scheme\" must be \"affine\" or \"symmetric\"", label);
        } else if (strcmp(k, "recipe") == 0) {
            const char *s = json_string_value(v);
            if (json_is_null(v)) c->recipe[0] = 0;
            else if (!s || strlen(s) >= sizeof c->recipe) st = uq_fail(UQ_ERR_FIELD, "%s: bad \"recipe\"", label);
            else snprintf(c->recipe, sizeof c->recipe, "%s", s);
        } else if (strcmp(k, "layer_bits") == 0) {
            if (json_is_null(v)) continue;
            if (!json_is_object(v)) {
                st = uq_fail(UQ_ERR_FIELD, "%s: \"layer_bits\" is not an object", label);
                goto out;
            }
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv) if ((st = add_rule(label, c, pk, pv)) != UQ_OK) goto out;
        } else if (strcmp(k, "skip_modules") == 0) {
            if (json_is_null(v)) continue;
            if (!json_is_array(v)) {
                st = uq_fail(UQ_ERR_FIELD, "%s: \"skip_modules\" is not a list", label);
                goto out;
            }
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                const char *s = json_string_value(e);
                if (!s || strlen(s) >= UQ_MAX_PATTERN || !*s) {
                    st = uq_fail(UQ_ERR_FIELD, "%s: skip_modules[%zu] is not a pattern", label, i);
                    goto out;
                }
                if (c->n_skip_modules >= UQ_MAX_RULES) {
                    st = uq_fail(UQ_ERR_CONFIG, "%s: more than %d skip_modules", label, UQ_MAX_RULES);
                    goto out;
                }
                snprintf(c->skip_modules[c->n_skip_modules++], UQ_MAX_PATTERN, "%s", s);
            }
        } else if (strcmp(k, "backend") == 0) {
            const char *b = json_string_value(v);
            if (json_is_null(v)) c->backend[0] = '\0';
            else if (!b || strlen(b) >= sizeof c->backend)
                st = uq_fail(UQ_ERR_FIELD, "%s: \"backend\" is not a backend name", label);
            else snprintf(c->backend, sizeof c->backend, "%s", b);
        } else if (strcmp(k, "device") == 0) {
            if (!json_is_string(v) && !json_is_null(v))
                st = uq_fail(UQ_ERR_FIELD, "%s: \"%s\" is not a string", label, k);
        } else {
            st = uq_fail(UQ_ERR_FIELD, "%s: unknown field \"%s\"", label, k);
        }
        if (st != UQ_OK) goto out;
    }
    st = uq_quant_config_validate(c);
    if (st != UQ_OK) uq_fail_context(st, "%s", label);
out:
    json_decref(root);
    return st;
}

uq_status uq_quant_config_load(const char *path, uq_quant_config *c)
{
    char *text;
    size_t len;
    uq_status st = uq_read_file(path, 16u << 20, &text, &len);
    if (st != UQ_OK) return st;
    st = uq_quant_config_parse(text, len, path, c);
    free(text);
    return st;
}
