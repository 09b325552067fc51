#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "quant_options.h"

enum { Q_SCHEME = 1000, Q_LAYER, Q_SKIP, Q_EMB, Q_OUT, Q_RECIPE };

static const struct option quant_opts[] = {
    {"bits", required_argument, 0, 'b'},        {"group-size", required_argument, 0, 'g'},
    {"scheme", required_argument, 0, Q_SCHEME}, {"layer-bits", required_argument, 0, Q_LAYER},
    {"skip", required_argument, 0, Q_SKIP},     {"embedding-bits", required_argument, 0, Q_EMB},
    {"output-bits", required_argument, 0, Q_OUT}, {"recipe", required_argument, 0, Q_RECIPE},
};

void cli_quant_merge_options(struct option *out, size_t cap, const struct option *own)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof quant_opts / sizeof *quant_opts && n + 1 < cap; i++) out[n++] = quant_opts[i];
    for (size_t i = 0; own[i].name && n + 1 < cap; i++) out[n++] = own[i];
    memset(&out[n], 0, sizeof out[n]);
}

uint64_t cli_parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0)) return 0;
    while (*end == ' ') end++;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mul = 1e3; break;
    case 'M': mul = 1e6; break;
    case 'G': mul = 1e9; break;
    case 'T': mul = 1e12; break;
    case '\0': case 'B': break;
    default: return 0;
    }
    if (*end && end[1] && toupper((unsigned char)end[1]) != 'B') return 0;
    return (uint64_t)(v * mul);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    long v;
    if (!cli_parse_long(s, lo, hi, &v)) return 0;
    *out = (int)v;
    return 1;
}

/* PATTERN=BITS[:GROUP] */
static int parse_layer_rule(const char *arg, uq_layer_rule *r)
{
    const char *eq = strrchr(arg, '=');
    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof r->pattern) return 0;
    memset(r, 0, sizeof *r);
    memcpy(r->pattern, arg, (size_t)(eq - arg));
    char buf[32];
    snprintf(buf, sizeof buf, "%s", eq + 1);
    char *colon = strchr(buf, ':');
    if (colon) {
        *colon = '\0';
        if (!parse_int(colon + 1, 0, 1 << 20, &r->group_size)) return 0;
    }
    return parse_int(buf, 0, 16, &r->bits);
}

int cli_quant_option(int c, const char *arg, uq_quant_config *cfg, int *ok)
{
    *ok = 1;
    switch (c) {
    case 'b': *ok = parse_int(arg, 1, 8, &cfg->bits); return 1;
    case 'g': *ok = parse_int(arg, 0, 1 << 20, &cfg->group_size); return 1;
    case Q_SCHEME:
        if (strcmp(arg, "affine") == 0) cfg->scheme = UQ_SCHEME_AFFINE;
        else if (strcmp(arg, "symmetric") == 0) cfg->scheme = UQ_SCHEME_SYMMETRIC;
        else *ok = 0;
        return 1;
    case Q_LAYER:
        *ok = cfg->n_layer_bits < UQ_MAX_RULES && parse_layer_rule(arg, &cfg->layer_bits[cfg->n_layer_bits]);
        if (*ok) cfg->n_layer_bits++;
        return 1;
    case Q_SKIP:
        *ok = cfg->n_skip_modules < UQ_MAX_RULES && *arg && strlen(arg) < UQ_MAX_PATTERN;
        if (*ok) snprintf(cfg->skip_modules[cfg->n_skip_modules++], UQ_MAX_PATTERN, "%s", arg);
        return 1;
    case Q_EMB: *ok = parse_int(arg, 1, 16, &cfg->embedding_bits); return 1;
    case Q_OUT: *ok = parse_int(arg, 1, 16, &cfg->output_bits); return 1;
    case Q_RECIPE:
        *ok = strlen(arg) < sizeof cfg->recipe;
        if (*ok) snprintf(cfg->recipe, sizeof cfg->recipe, "%s", arg);
        return 1;
    default: return 0;
    }
}

void cli_quant_options_help(FILE *out)
{
    fprintf(out,
            "  -b, --bits N              default bits, 1-8 (default 4)\n"
            "  -g, --group-size G        values per scale (default 64; a multiple of 8;\n"
            "                            symmetric also takes 0 = one scale per row)\n"
            "      --scheme S            affine (MLX, default) or symmetric (quanto-style int)\n"
            "      --layer-bits P=B[:G]  modules matching P get B bits (and group G); B = 16\n"
            "                            keeps them float; repeatable, later rules win\n"
            "      --skip P              leave modules matching P in float (repeatable)\n"
            "      --embedding-bits N    bits of the token embedding\n"
            "      --output-bits N       bits of lm_head (of the embedding when tied)\n"
            "      --recipe R            mlx-lm's mixed_2_6, mixed_3_4, mixed_3_6 or mixed_4_6\n");
}
