/* Which bits / group / scheme each weight gets, from a uq_quant_config. */
#ifndef UQ_QUANTIZE_PLAN_H
#define UQ_QUANTIZE_PLAN_H

#include "uquant.h"

typedef struct uq_plan {
    const uq_quant_config *cfg;
    int tied;        /* the embedding doubles as the output head */
    int num_layers;  /* for the mixed recipes: count of down_proj modules */
} uq_plan;

/* Module-path matching for layer_bits and skip_modules:
 *  - a pattern with glob characters (* ? [) is an fnmatch glob on the whole path;
 *  - a dotted pattern names that module and everything under it
 *    ("model.layers.0" matches "model.layers.0.mlp.up_proj");
 *  - a bare word matches any module one of whose path components starts
 *    with it ("embed" matches "model.embed_tokens", "lm_head" the head). */
int uq_module_matches(const char *pattern, const char *module);

/* Layer index N of a "...layers.N..." path, or -1. */
int uq_module_layer_index(const char *module);

/* Decides for the [rows, cols] float weight of `module`. */
void uq_plan_weight(const uq_plan *p, const char *module, int64_t rows, int64_t cols, uq_quant_decision *out);

/* MLX's own affine settings (bits 2-6, 8; groups 32/64/128): mode "affine";
 * anything else gets a mode name of ours so that MLX loaders refuse it. */
const char *uq_plan_mode_name(uq_scheme scheme, int bits, int group_size);
/* The inverse, for loading: UQ_OK with the scheme, else UQ_ERR_UNSUPPORTED. */
uq_status uq_plan_parse_mode(const char *mode, uq_scheme *scheme);

#endif
