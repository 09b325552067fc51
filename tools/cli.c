#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_fail(const char *cmd, uq_status st)
{
    const char *msg = uq_last_error();
    fprintf(stderr, "uquant %s: error: %s\n", cmd, msg && *msg ? msg : uq_status_string(st));
    return UQ_EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "uquant %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'uquant %s --help'.\n", cmd);
    return UQ_EXIT_USAGE;
}

const char *cli_human_bytes(uint64_t b, char *buf, size_t cap)
{
    static const char *units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1000.0 && u < 5) {
        v /= 1000.0;
        u++;
    }
    if (u == 0) snprintf(buf, cap, "%llu B", (unsigned long long)b);
    else snprintf(buf, cap, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
    return buf;
}

const char *cli_grouped(uint64_t v, char *buf, size_t cap)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

int cli_print_json(json_t *v)
{
    if (!v) {
        fprintf(stderr, "uquant: out of memory\n");
        return UQ_EXIT_FAIL;
    }
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    if (!s) return UQ_EXIT_FAIL;
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return UQ_EXIT_OK;
}

int cli_stderr_is_terminal(void) { return isatty(2); }

void cli_progress_bar(const char *what, uint64_t done, uint64_t total, const char *detail)
{
    const int width = 30;
    double f = total ? (double)done / (double)total : 1.0;
    if (f > 1) f = 1;
    int fill = (int)(f * width + 0.5);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r\033[K%s [%s] %3d%%  %.40s", what, bar, (int)(100 * f), detail ? detail : "");
    fflush(stderr);
}

void cli_progress_done(void)
{
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}

int cli_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int cli_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}

uq_status cli_runtime_open(const char *path, const char *backend, int threads, int n_ctx, int verbose,
                           cli_runtime *rt)
{
    memset(rt, 0, sizeof *rt);
    uq_status st = uq_model_open(path, &rt->model);
    if (st == UQ_OK) st = uq_tokenizer_load(path, &rt->tok);
    if (st == UQ_OK) {
        uq_context_params cp;
        uq_context_params_init(&cp);
        cp.backend = backend;
        cp.n_threads = threads;
        cp.n_ctx = n_ctx;
        cp.verbose = verbose;
        st = uq_context_create(rt->model, &cp, &rt->ctx);
    }
    if (st != UQ_OK) cli_runtime_close(rt);
    return st;
}

void cli_runtime_close(cli_runtime *rt)
{
    uq_context_free(rt->ctx);
    uq_tokenizer_free(rt->tok);
    uq_model_close(rt->model);
    memset(rt, 0, sizeof *rt);
}
