#include "quantize/plan.h"

#include "core/error.h"
#include "quant/quant.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int uq_module_matches(const char *pattern, const char *module)
{
    if (strpbrk(pattern, "*?[")) return fnmatch(pattern, module, 0) == 0;
    size_t n = strlen(pattern);
    if (strchr(pattern, '.')) {
        /* that module or anything under it, anchored at a component boundary */
        for (const char *p = module; p; p = strchr(p, '.')) {
            if (*p == '.') p++;
            if (strncmp(p, pattern, n) == 0 && (p[n] == '\0' || p[n] == '.')) return 1;
        }
        return 0;
    }
    for (const char *p = module; p; p = strchr(p, '.')) {
        if (*p == '.') p++;
        if (strncmp(p, pattern, n) == 0) return 1;
    }
    return 0;
}

int uq_module_layer_index(const char *module)
{
    const char *p = strstr(module, "layers.");
    if (!p) return -1;
    p += 7;
    if (*p < '0' || *p > '9') return -1;
    return atoi(p);
}

static int is_embedding(const char *module)
{
    const char *last = strrchr(module, '.');
    last = last ? last + 1 : module;
    return strcmp(last, "embed_tokens") == 0 || strcmp(last, "wte") == 0 || strcmp(last, "tok_embeddings") == 0;
}

static int is_output(const char *module) { return strcmp(module, "lm_head") == 0 || strstr(module, ".lm_head") != NULL; }

/* mlx-lm's mixed recipes: low bits everywhere, high bits for lm_head and for
 * v_proj / down_proj of the layers use_more_bits picks. */
static int recipe_bits(const uq_plan *p, const char *module)
{
    int low = 4, high = 6;
    const char *r = p->cfg->recipe;
    if (strcmp(r, "mixed_2_6") == 0) low = 2;
    else if (strcmp(r, "mixed_3_4") == 0) low = 3, high = 4;
    else if (strcmp(r, "mixed_3_6") == 0) low = 3;
    else if (strcmp(r, "mixed_4_6") == 0) low = 4;
    int n = p->num_layers;
    int i = uq_module_layer_index(module);
    if (i < 0) i = 0;
    int more = i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
    if (more && (strstr(module, "v_proj") || strstr(module, "down_proj"))) return high;
    if (strstr(module, "lm_head")) return high;
    return low;
}

void uq_plan_weight(const uq_plan *p, const char *module, int64_t rows, int64_t cols, uq_quant_decision *d)
{
    const uq_quant_config *c = p->cfg;
    memset(d, 0, sizeof *d);
    snprintf(d->module, sizeof d->module, "%s", module);
    d->scheme = c->scheme;
    int bits = c->bits, group = c->group_size;
    if (c->recipe[0]) bits = recipe_bits(p, module);
    int emb = is_embedding(module), out = is_output(module);
    if (emb && p->tied && c->output_bits) bits = c->output_bits;
    else if (emb && c->embedding_bits) bits = c->embedding_bits;
    if (out && c->output_bits) bits = c->output_bits;
    for (int i = 0; i < c->n_layer_bits; i++) {
        if (!uq_module_matches(c->layer_bits[i].pattern, module)) continue;
        bits = c->layer_bits[i].bits;
        if (c->layer_bits[i].group_size) group = c->layer_bits[i].group_size;
    }
    for (int i = 0; i < c->n_skip_modules; i++) {
        if (uq_module_matches(c->skip_modules[i], module)) {
            snprintf(d->note, sizeof d->note, "skipped (matches \"%s\")", c->skip_modules[i]);
            return;
        }
    }
    if (bits == 0 || bits == 16) {
        snprintf(d->note, sizeof d->note, "kept float by a layer rule");
        return;
    }
    (void)rows;
    if (c->scheme == UQ_SCHEME_SYMMETRIC && group == 0) {
        group = (int)cols; /* one scale per row: recorded as a group spanning the row */
    } else {
        int g = uq_pick_group_size(cols, group);
        if (g == 0) {
            snprintf(d->note, sizeof d->note, "kept float: no group size of 32/64/128 divides its input dimension %lld",
                     (long long)cols);
            return;
        }
        if (g != group)
            snprintf(d->note, sizeof d->note, "group size %d (input dimension %lld is not a multiple of %d)", g,
                     (long long)cols, group);
        group = g;
    }
    d->quantized = 1;
    d->bits = bits;
    d->group_size = group;
}

const char *uq_plan_mode_name(uq_scheme scheme, int bits, int g)
{
    if (scheme == UQ_SCHEME_SYMMETRIC) return "uquant-symmetric";
    int mlx_bits = bits >= 2 && bits <= 8 && bits != 7;
    int mlx_group = g == 32 || g == 64 || g == 128;
    return mlx_bits && mlx_group ? "affine" : "uquant-affine";
}

uq_status uq_plan_parse_mode(const char *mode, uq_scheme *scheme)
{
    if (!mode || strcmp(mode, "affine") == 0 || strcmp(mode, "uquant-affine") == 0) {
        *scheme = UQ_SCHEME_AFFINE;
        return UQ_OK;
    }
    if (strcmp(mode, "uquant-symmetric") == 0) {
        *scheme = UQ_SCHEME_SYMMETRIC;
        return UQ_OK;
    }
    return uq_fail(UQ_ERR_UNSUPPORTED, "quantization mode \"%s\" is not supported", mode);
}
