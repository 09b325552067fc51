/* The quantization flags shared by quantize, memory and compare. */
#ifndef UQ_TOOLS_QUANT_OPTIONS_H
#define UQ_TOOLS_QUANT_OPTIONS_H

#include <getopt.h>

#include "uquant.h"

/* Short options of the shared flags (-b, -g). */
#define CLI_QUANT_SHORTOPTS "b:g:"

/* Copies the shared long options, then `own` (zero-terminated), into out. */
void cli_quant_merge_options(struct option *out, size_t cap, const struct option *own);
/* Applies getopt's result c when it is a shared flag: returns 1 (and *ok = 0
 * for a bad value), else 0. */
int cli_quant_option(int c, const char *arg, uq_quant_config *cfg, int *ok);
/* The help lines of the shared flags. */
void cli_quant_options_help(FILE *out);
/* "5GB", "500M", "1024" -> bytes; 0 on error. */
uint64_t cli_parse_size(const char *s);

#endif
