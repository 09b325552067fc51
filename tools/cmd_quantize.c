/* uquant quantize SRC -o DST: the seeds' quantize_model + save_model. */
#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "quant_options.h"

void cmd_quantize_help(FILE *out)
{
    fprintf(out,
            "usage: uquant quantize SRC -o DST [OPTIONS]\n"
            "\n"
            "Quantize the Hugging Face model folder (or .safetensors file) SRC into the new\n"
            "folder DST. The default affine scheme is MLX's: DST loads in mlx-lm unchanged.\n"
            "\n"
            "What gets which bits:\n");
    cli_quant_options_help(out);
    fprintf(out,
            "      --config FILE.json    UnifiedQuantizationConfig fields (bits / default_bits,\n"
            "                            group_size, layer_bits, skip_modules, embedding_bits,\n"
            "                            output_bits, memory_efficient, chunk_size); flags win\n"
            "Patterns P: a glob on module paths (\"model.layers.0.*\"), a dotted path (that\n"
            "module and everything under it) or a bare word (\"lm_head\", \"embed\": any module\n"
            "with a path component starting with it).\n"
            "\n"
            "Output and resources:\n"
            "  -o, --output DST          output folder (required; must not exist without --force)\n"
            "      --force               replace an existing DST (only once the new one is complete)\n"
            "      --max-shard-size S    split model.safetensors above S bytes (5GB default; k/M/G)\n"
            "  -t, --threads N           threads (default: one per CPU); output is identical for any N\n"
            "      --backend B           where to quantize: auto (default: the GPU when present),\n"
            "                            cpu, cpu-ref (one thread) or cuda; the bytes are the same\n"
            "      --chunk-size ROWS     rows per streamed chunk (default: about 8 MB of f32)\n"
            "      --no-memory-efficient read whole tensors at once instead of streaming\n"
            "      --allow-nonfinite     quantize tensors holding NaN / Inf instead of failing\n"
            "      --json                print the report as JSON\n"
            "  -q, --quiet               print nothing but errors\n"
            "  -h, --help                show this help\n");
}

static void on_sigint(int sig)
{
    (void)sig;
    uq_cancel();
}

typedef struct progress_state {
    int enabled;
    int last_pct;
} progress_state;

static void on_progress(void *user, uint64_t done, uint64_t total, const char *tensor)
{
    progress_state *p = user;
    if (!p->enabled || !total) return;
    int pct = (int)(100.0 * (double)done / (double)total);
    if (pct == p->last_pct && done != total) return;
    p->last_pct = pct;
    cli_progress_bar("quantize", done, total, tensor);
}

static json_t *report_json(const char *src, const char *dst, const uq_quant_report *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "source", json_string(src));
    json_object_set_new(o, "output", json_string(dst));
    json_object_set_new(o, "weights_quantized", json_integer((json_int_t)r->n_quantized));
    json_object_set_new(o, "weights_float", json_integer((json_int_t)r->n_float));
    json_object_set_new(o, "parameters", json_integer((json_int_t)r->params_total));
    json_object_set_new(o, "parameters_quantized", json_integer((json_int_t)r->params_quantized));
    json_object_set_new(o, "bits_per_weight", json_real(r->bits_per_weight));
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)r->bytes_in));
    json_object_set_new(o, "bytes_out", json_integer((json_int_t)r->bytes_out));
    json_object_set_new(o, "shards", json_integer((json_int_t)r->n_shards));
    json_object_set_new(o, "seconds", json_real(r->seconds));
    json_t *mods = json_array();
    for (size_t i = 0; i < r->n_decisions; i++) {
        const uq_quant_decision *d = &r->decisions[i];
        json_t *m = json_object();
        json_object_set_new(m, "module", json_string(d->module));
        json_object_set_new(m, "quantized", json_boolean(d->quantized));
        if (d->quantized) {
            json_object_set_new(m, "scheme", json_string(d->scheme == UQ_SCHEME_AFFINE ? "affine" : "symmetric"));
            json_object_set_new(m, "bits", json_integer(d->bits));
            json_object_set_new(m, "group_size", json_integer(d->group_size));
        }
        if (d->note[0]) json_object_set_new(m, "note", json_string(d->note));
        json_array_append_new(mods, m);
    }
    json_object_set_new(o, "modules", mods);
    return o;
}

int cmd_quantize(int argc, char **argv)
{
    enum { O_CONFIG = 256, O_FORCE, O_SHARD, O_CHUNK, O_NOMEM, O_NONFINITE, O_JSON, O_BACKEND };
    static const struct option own[] = {
        {"config", required_argument, 0, O_CONFIG}, {"output", required_argument, 0, 'o'},
        {"force", no_argument, 0, O_FORCE},         {"max-shard-size", required_argument, 0, O_SHARD},
        {"threads", required_argument, 0, 't'},     {"chunk-size", required_argument, 0, O_CHUNK},
        {"no-memory-efficient", no_argument, 0, O_NOMEM}, {"allow-nonfinite", no_argument, 0, O_NONFINITE},
        {"json", no_argument, 0, O_JSON},           {"quiet", no_argument, 0, 'q'},
        {"backend", required_argument, 0, O_BACKEND}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    struct option opts[64];
    cli_quant_merge_options(opts, 64, own);
    const char *shortopts = CLI_QUANT_SHORTOPTS "o:t:qh";
    uq_quant_config cfg;
    uq_quant_config_init(&cfg);

    /* First pass: --config, so that flags override the file whatever their order. */
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        if (c == 'h') {
            cmd_quantize_help(stdout);
            return UQ_EXIT_OK;
        }
        if (c == '?') return cli_usage_error("quantize", "unknown option or missing value: '%s'", argv[optind - 1]);
        if (c == O_CONFIG) {
            uq_status st = uq_quant_config_load(optarg, &cfg);
            if (st != UQ_OK) return cli_fail("quantize", st);
        }
    }
    const char *out = NULL;
    int json_out = 0, quiet = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        int ok = 1;
        if (cli_quant_option(c, optarg, &cfg, &ok)) {
            if (!ok) return cli_usage_error("quantize", "bad value for '%s': '%s'", argv[optind - 1], optarg);
            continue;
        }
        switch (c) {
        case O_CONFIG: break;
        case 'o': out = optarg; break;
        case O_FORCE: cfg.force = 1; break;
        case O_SHARD: ok = (cfg.max_shard_bytes = cli_parse_size(optarg)) > 0; break;
        case 't': {
            long v = 0;
            ok = cli_parse_long(optarg, 1, 1024, &v);
            cfg.n_threads = (int)v;
            break;
        }
        case O_CHUNK: {
            long v = 0;
            ok = cli_parse_long(optarg, 1, 1L << 30, &v);
            cfg.chunk_size = v;
            break;
        }
        case O_NOMEM: cfg.memory_efficient = 0; break;
        case O_NONFINITE: cfg.allow_nonfinite = 1; break;
        case O_JSON: json_out = 1; break;
        case O_BACKEND:
            ok = strlen(optarg) < sizeof cfg.backend;
            if (ok) snprintf(cfg.backend, sizeof cfg.backend, "%s", optarg);
            break;
        case 'q': quiet = 1; break;
        default: break;
        }
        if (!ok) return cli_usage_error("quantize", "bad value for '%s': '%s'", argv[optind - 1], optarg);
    }
    if (optind != argc - 1) return cli_usage_error("quantize", "expected one SRC");
    if (!out) return cli_usage_error("quantize", "missing -o DST");
    const char *src = argv[optind];
    uq_status st = uq_quant_config_validate(&cfg);
    if (st != UQ_OK) return cli_usage_error("quantize", "%s", uq_last_error());

    progress_state ps = {.enabled = !quiet && !json_out && cli_stderr_is_terminal(), .last_pct = -1};
    cfg.progress = on_progress;
    cfg.progress_user = &ps;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    uq_quant_report rep;
    st = uq_quantize_model(src, out, &cfg, &rep);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (ps.enabled) cli_progress_done();
    if (st != UQ_OK) return cli_fail("quantize", st);

    int rc = UQ_EXIT_OK;
    if (json_out) {
        json_t *o = report_json(src, out, &rep);
        rc = cli_print_json(o);
        json_decref(o);
    } else if (!quiet) {
        for (size_t i = 0; i < rep.n_decisions; i++)
            if (rep.decisions[i].note[0]) printf("  %s: %s\n", rep.decisions[i].module, rep.decisions[i].note);
        char a[32], b[32];
        printf("quantized %zu of %zu weights (%.2f bits per weight with scales%s), %zu kept float\n",
               rep.n_quantized, rep.n_decisions, rep.bits_per_weight,
               cfg.scheme == UQ_SCHEME_AFFINE ? " and biases" : "", rep.n_float);
        printf("%s -> %s: %s -> %s in %.2f s\n", src, out, cli_human_bytes(rep.bytes_in, a, sizeof a),
               cli_human_bytes(rep.bytes_out, b, sizeof b), rep.seconds);
    }
    uq_quant_report_free(&rep);
    return rc;
}
