/* uquant compare MODEL: the seeds' compare_backends. For every available
 * backend: quantization time, prefill and decode speed, peak memory, and KL /
 * top-1 agreement of the quantized model against the original. Each backend
 * runs in a child process so its peak memory is its own. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cli.h"
#include "core/clock.h"
#include "core/error.h"
#include "io/path.h"
#include "quant_options.h"

void cmd_compare_help(FILE *out)
{
    fprintf(out,
            "usage: uquant compare MODEL [OPTIONS]\n"
            "\n"
            "Quantize MODEL and run it on every available backend (cpu-ref, cpu, cuda):\n"
            "quantization time, prefill and decode tokens/s, peak memory, and KL divergence /\n"
            "top-1 agreement against the unquantized model on the same backend.\n"
            "\n"
            "Quantization (as for 'uquant quantize'; default 4-bit, group 64):\n");
    cli_quant_options_help(out);
    fprintf(out,
            "\n"
            "Options:\n"
            "  -d, --data FILE      text for the prefill and the KL (default: text the\n"
            "                       original model samples from BOS)\n"
            "      --tokens N       prefill / evaluation length (default 512, at most the\n"
            "                       model's positions)\n"
            "      --decode N       decode steps timed (default 64)\n"
            "      --backends LIST  comma-separated subset (default: all available)\n"
            "  -t, --threads N      CPU threads (default: one per CPU)\n"
            "      --json           print JSON\n"
            "  -h, --help           show this help\n");
}

typedef struct row {
    char backend[32];
    int ok;
    char error[256];
    double quantize_s, prefill_tps, decode_tps, kl_mean, kl_max, top1;
    uint64_t peak_rss, device_used;
    int threads;
} row;

typedef struct job {
    const char *src, *qdir;
    const uq_quant_config *qc;
    const int32_t *ids;
    size_t n_ids;
    long decode;
    int threads;
} job;

static uq_status open_ctx(const char *path, const char *backend, int threads, int64_t n_ctx, uq_model **m,
                          uq_context **c)
{
    uq_context_params cp;
    uq_context_params_init(&cp);
    cp.backend = backend;
    cp.n_threads = threads;
    cp.n_ctx = (int)n_ctx;
    uq_status st = uq_model_open(path, m);
    if (st == UQ_OK && (st = uq_context_create(*m, &cp, c)) != UQ_OK) uq_model_close(*m);
    return st;
}

/* Runs in the child: everything for one backend. */
static void measure(const job *j, const char *backend, row *r)
{
    snprintf(r->backend, sizeof r->backend, "%s", backend);
    uq_quant_config qc = *j->qc;
    snprintf(qc.backend, sizeof qc.backend, "%s", backend);
    qc.force = 1;
    qc.n_threads = j->threads;
    uq_quant_report rep;
    double t0 = uq_seconds();
    uq_status st = uq_quantize_model(j->src, j->qdir, &qc, &rep);
    r->quantize_s = uq_seconds() - t0;
    uq_model *qm = NULL, *fm = NULL;
    uq_context *q = NULL, *f = NULL;
    uint64_t dev_before = 0;
    uq_memory_info mi;
    if (uq_memory_info_get(&mi) == UQ_OK && mi.n_gpus) dev_before = mi.gpu[0].total - mi.gpu[0].free_bytes;
    if (st == UQ_OK) {
        uq_quant_report_free(&rep);
        st = open_ctx(j->qdir, backend, j->threads, (int64_t)j->n_ids + j->decode, &qm, &q);
    }
    int64_t vocab = q ? uq_context_vocab(q) : 0;
    float *logits = st == UQ_OK ? malloc((size_t)vocab * sizeof(float)) : NULL;
    if (st == UQ_OK && !logits) st = UQ_ERR_NOMEM;
    if (st == UQ_OK) {
        r->threads = uq_context_threads(q);
        t0 = uq_seconds();
        st = uq_forward_last(q, j->ids, j->n_ids, logits);
        r->prefill_tps = (double)j->n_ids / (uq_seconds() - t0);
    }
    if (st == UQ_OK) {
        int32_t tok = uq_sample(logits, vocab, NULL, NULL);
        t0 = uq_seconds();
        for (long i = 0; i < j->decode && st == UQ_OK; i++) {
            st = uq_forward_last(q, &tok, 1, logits);
            tok = uq_sample(logits, vocab, NULL, NULL);
        }
        r->decode_tps = (double)j->decode / (uq_seconds() - t0);
    }
    if (st == UQ_OK && uq_memory_info_get(&mi) == UQ_OK && mi.n_gpus) {
        uint64_t used = mi.gpu[0].total - mi.gpu[0].free_bytes;
        r->device_used = used > dev_before ? used - dev_before : 0;
    }
    if (st == UQ_OK) st = open_ctx(j->src, backend, j->threads, (int64_t)j->n_ids, &fm, &f);
    if (st == UQ_OK) {
        uq_eval_params ep;
        uq_eval_params_init(&ep);
        ep.n_ctx = (int64_t)j->n_ids;
        uq_eval_result er;
        if ((st = uq_evaluate(q, f, j->ids, j->n_ids, &ep, &er)) == UQ_OK) {
            r->kl_mean = er.kl_mean;
            r->kl_max = er.kl_max;
            r->top1 = er.top1;
        }
    }
    r->ok = st == UQ_OK;
    if (!r->ok) snprintf(r->error, sizeof r->error, "%s", uq_last_error());
    free(logits);
    uq_context_free(q);
    uq_context_free(f);
    uq_model_close(qm);
    uq_model_close(fm);
    uq_remove_tree(j->qdir);
}

static void run_backend(const job *j, const char *backend, row *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->backend, sizeof r->backend, "%s", backend);
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(r->error, sizeof r->error, "pipe failed");
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r->error, sizeof r->error, "fork failed");
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        row mine;
        memset(&mine, 0, sizeof mine);
        measure(j, backend, &mine);
        ssize_t w = write(fds[1], &mine, sizeof mine);
        _exit(w == (ssize_t)sizeof mine ? 0 : 1);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], r, sizeof *r);
    close(fds[0]);
    int status;
    struct rusage ru;
    wait4(pid, &status, 0, &ru);
    if (got != (ssize_t)sizeof *r) {
        memset(r, 0, sizeof *r);
        snprintf(r->backend, sizeof r->backend, "%s", backend);
        snprintf(r->error, sizeof r->error, "the measuring process died (status %d)", status);
        return;
    }
    r->peak_rss = (uint64_t)ru.ru_maxrss * 1024;
}

/* Tokens to run: the start of --data, or text the original model samples. */
static uq_status input_tokens(const char *src, const char *data, long n, int threads, int32_t **ids, size_t *n_ids)
{
    uq_model *m;
    uq_tokenizer *t = NULL;
    uq_status st = uq_model_open(src, &m);
    if (st != UQ_OK) return st;
    if (data) {
        char *text = NULL;
        size_t len = 0;
        st = uq_read_file(data, (size_t)1 << 31, &text, &len);
        if (st == UQ_OK) st = uq_tokenizer_load(src, &t);
        if (st == UQ_OK) st = uq_tokenizer_encode(t, text, len, 0, ids, n_ids);
        if (st == UQ_OK && *n_ids < (size_t)n)
            st = uq_fail(UQ_ERR_ARG, "%s holds %zu tokens, fewer than --tokens %ld", data, *n_ids, n);
        if (st == UQ_OK) *n_ids = (size_t)n;
        free(text);
    } else {
        uq_context *c = NULL;
        uq_context_params cp;
        uq_context_params_init(&cp);
        cp.n_threads = threads;
        cp.n_ctx = (int)n;
        const uq_model_config *cfg = uq_model_get_config(m);
        int32_t bos = cfg && cfg->bos_token_id >= 0 ? (int32_t)cfg->bos_token_id : 0;
        st = uq_context_create(m, &cp, &c);
        int64_t vocab = st == UQ_OK ? uq_context_vocab(c) : 0;
        float *logits = st == UQ_OK ? malloc((size_t)vocab * sizeof *logits) : NULL;
        *ids = st == UQ_OK ? malloc((size_t)n * sizeof **ids) : NULL;
        if (st == UQ_OK && (!logits || !*ids)) st = uq_fail(UQ_ERR_NOMEM, "out of memory");
        if (st == UQ_OK) {
            /* sampled at temperature 1, not stopping at end-of-sequence */
            uq_sampler_params sp;
            uq_sampler_params_init(&sp);
            sp.temperature = 1.0f;
            uint64_t rng = 1;
            (*ids)[0] = bos;
            for (long i = 1; i < n && st == UQ_OK; i++) {
                st = uq_forward_last(c, &(*ids)[i - 1], 1, logits);
                (*ids)[i] = uq_sample(logits, vocab, &sp, &rng);
            }
            *n_ids = (size_t)n;
        }
        free(logits);
        uq_context_free(c);
    }
    uq_tokenizer_free(t);
    uq_model_close(m);
    return st;
}

int cmd_compare(int argc, char **argv)
{
    enum { O_TOKENS = 256, O_DECODE, O_BACKENDS, O_JSON };
    static const struct option own[] = {
        {"data", required_argument, 0, 'd'},       {"tokens", required_argument, 0, O_TOKENS},
        {"decode", required_argument, 0, O_DECODE}, {"backends", required_argument, 0, O_BACKENDS},
        {"threads", required_argument, 0, 't'},    {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    struct option opts[64];
    cli_quant_merge_options(opts, 64, own);
    uq_quant_config qc;
    uq_quant_config_init(&qc);
    const char *data = NULL, *only = NULL;
    long tokens = 512, decode = 64, threads = 0;
    int json_out = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, CLI_QUANT_SHORTOPTS "d:t:h", opts, NULL)) != -1) {
        int ok = 1;
        if (!cli_quant_option(c, optarg, &qc, &ok)) {
            switch (c) {
            case 'd': data = optarg; break;
            case O_TOKENS: ok = cli_parse_long(optarg, 2, 1 << 20, &tokens); break;
            case O_DECODE: ok = cli_parse_long(optarg, 1, 1 << 20, &decode); break;
            case O_BACKENDS: only = optarg; break;
            case 't': ok = cli_parse_long(optarg, 1, 1024, &threads); break;
            case O_JSON: json_out = 1; break;
            case 'h': cmd_compare_help(stdout); return UQ_EXIT_OK;
            default: return cli_usage_error("compare", "unknown option or missing value: '%s'", argv[optind - 1]);
            }
        }
        if (!ok) return cli_usage_error("compare", "bad value for '%s': '%s'", argv[optind - 1], optarg);
    }
    if (optind != argc - 1) return cli_usage_error("compare", "expected one MODEL");
    if (uq_quant_config_validate(&qc) != UQ_OK) return cli_usage_error("compare", "%s", uq_last_error());
    const char *src = argv[optind];
    uq_model *probe;
    uq_status st = uq_model_open(src, &probe);
    if (st != UQ_OK) return cli_fail("compare", st);
    const uq_model_config *cfg = uq_model_get_config(probe);
    if (cfg && cfg->max_position_embeddings > 0 && tokens + decode > cfg->max_position_embeddings) {
        tokens = cfg->max_position_embeddings - decode;
        if (tokens < 2) tokens = cfg->max_position_embeddings / 2, decode = cfg->max_position_embeddings - tokens;
    }
    uq_model_close(probe);

    int32_t *ids = NULL;
    size_t n_ids = 0;
    if ((st = input_tokens(src, data, tokens, (int)threads, &ids, &n_ids)) != UQ_OK) return cli_fail("compare", st);
    char qdir[4096];
    snprintf(qdir, sizeof qdir, "%s/uquant-compare-%ld", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
    job j = {src, qdir, &qc, ids, n_ids, decode, (int)threads};
    row rows[8];
    int n_rows = 0;
    for (size_t i = 0; i < uq_backend_count() && n_rows < 8; i++) {
        const char *name = uq_backend_at(i)->name;
        char why[256];
        if (only) {
            char list[256];
            snprintf(list, sizeof list, ",%s,", only);
            char key[64];
            snprintf(key, sizeof key, ",%s,", name);
            if (!strstr(list, key)) continue;
        }
        if (!uq_backend_at(i)->available(why, sizeof why)) {
            if (!json_out) fprintf(stderr, "compare: %s not available: %s\n", name, why);
            continue;
        }
        if (!json_out && cli_stderr_is_terminal()) fprintf(stderr, "compare: measuring %s...\n", name);
        run_backend(&j, name, &rows[n_rows++]);
    }
    free(ids);
    int rc = UQ_EXIT_OK;
    if (json_out) {
        json_t *o = json_object(), *a = json_array();
        json_object_set_new(o, "model", json_string(src));
        json_object_set_new(o, "bits", json_integer(qc.bits));
        json_object_set_new(o, "group_size", json_integer(qc.group_size));
        json_object_set_new(o, "prefill_tokens", json_integer((json_int_t)n_ids));
        json_object_set_new(o, "decode_tokens", json_integer(decode));
        for (int i = 0; i < n_rows; i++) {
            row *r = &rows[i];
            json_t *e = json_object();
            json_object_set_new(e, "backend", json_string(r->backend));
            json_object_set_new(e, "ok", json_boolean(r->ok));
            if (!r->ok) json_object_set_new(e, "error", json_string(r->error));
            json_object_set_new(e, "threads", json_integer(r->threads));
            json_object_set_new(e, "quantize_seconds", json_real(r->quantize_s));
            json_object_set_new(e, "prefill_tokens_per_s", json_real(r->prefill_tps));
            json_object_set_new(e, "decode_tokens_per_s", json_real(r->decode_tps));
            json_object_set_new(e, "peak_rss_bytes", json_integer((json_int_t)r->peak_rss));
            json_object_set_new(e, "device_bytes", json_integer((json_int_t)r->device_used));
            json_object_set_new(e, "kl_mean", json_real(r->kl_mean));
            json_object_set_new(e, "kl_max", json_real(r->kl_max));
            json_object_set_new(e, "top1_agreement", json_real(r->top1));
            json_array_append_new(a, e);
        }
        json_object_set_new(o, "backends", a);
        rc = cli_print_json(o);
        json_decref(o);
    } else {
        printf("%s, %d-bit g%d, prefill %zu tokens, decode %ld tokens\n", src, qc.bits, qc.group_size, n_ids, decode);
        printf("%-8s %7s %10s %12s %11s %11s %10s %10s %7s\n", "backend", "threads", "quantize", "prefill t/s",
               "decode t/s", "peak RSS", "device", "KL mean", "top-1");
        for (int i = 0; i < n_rows; i++) {
            row *r = &rows[i];
            char a[32], b[32];
            if (!r->ok) {
                printf("%-8s failed: %s\n", r->backend, r->error);
                rc = UQ_EXIT_FAIL;
                continue;
            }
            printf("%-8s %7d %9.3fs %12.1f %11.1f %11s %10s %10.6f %7.4f\n", r->backend, r->threads, r->quantize_s,
                   r->prefill_tps, r->decode_tps, cli_human_bytes(r->peak_rss, a, sizeof a),
                   r->device_used ? cli_human_bytes(r->device_used, b, sizeof b) : "-", r->kl_mean, r->top1);
        }
    }
    return n_rows ? rc : (fprintf(stderr, "uquant compare: no backend available\n"), UQ_EXIT_FAIL);
}
