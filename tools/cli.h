/* Shared pieces of the uquant command-line tool. */
#ifndef UQ_TOOLS_CLI_H
#define UQ_TOOLS_CLI_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "uquant.h"
#include "uquant.h"

/* Exit codes of every command. */
enum { UQ_EXIT_OK = 0, UQ_EXIT_FAIL = 1, UQ_EXIT_USAGE = 2 };

typedef struct uq_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    void (*help)(FILE *out);
} uq_command;

/* Prints "uquant CMD: <message>" for a failed status and returns UQ_EXIT_FAIL. */
int cli_fail(const char *cmd, uq_status st);
/* Prints a usage error and returns UQ_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "1.04 MB" style sizes (decimal units, like the size figures users compare). */
const char *cli_human_bytes(uint64_t bytes, char *buf, size_t cap);
/* "1,234,567" */
const char *cli_grouped(uint64_t v, char *buf, size_t cap);
/* Prints a JSON value to stdout (indented) and a newline; returns 0 or UQ_EXIT_FAIL. */
int cli_print_json(json_t *v);

/* Progress bar on stderr (callers show it only when stderr is a terminal). */
int cli_stderr_is_terminal(void);
void cli_progress_bar(const char *what, uint64_t done, uint64_t total, const char *detail);
void cli_progress_done(void);

/* Strict number parsing for option values; 1 on success. */
int cli_parse_long(const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *s, double lo, double hi, double *out);

/* A model opened for running: weights, tokenizer and a context. */
typedef struct cli_runtime {
    uq_model *model;
    uq_tokenizer *tok;
    uq_context *ctx;
} cli_runtime;

uq_status cli_runtime_open(const char *path, const char *backend, int threads, int n_ctx, int verbose,
                           cli_runtime *rt);
void cli_runtime_close(cli_runtime *rt);

int cmd_info(int argc, char **argv);
void cmd_info_help(FILE *out);
int cmd_quantize(int argc, char **argv);
void cmd_quantize_help(FILE *out);
int cmd_run(int argc, char **argv);
void cmd_run_help(FILE *out);
int cmd_compare(int argc, char **argv);
void cmd_compare_help(FILE *out);
int cmd_memory(int argc, char **argv);
void cmd_memory_help(FILE *out);
int cmd_eval(int argc, char **argv);
void cmd_eval_help(FILE *out);

#endif
