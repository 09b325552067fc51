/* uquant run MODEL: generate text, streamed as it is produced. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/clock.h"

void cmd_run_help(FILE *out)
{
    fprintf(out,
            "usage: uquant run MODEL [--prompt TEXT] [OPTIONS]\n"
            "\n"
            "Generate text with MODEL (a float or quantized model folder), streaming it to\n"
            "stdout. Without a prompt, generation starts from the BOS token alone.\n"
            "\n"
            "Options:\n"
            "  -p, --prompt TEXT    text to continue (echoed before the continuation)\n"
            "  -n, --tokens N       new tokens at most (default 256); stops at end-of-sequence\n"
            "      --temp T         temperature; 0 = greedy (default 0)\n"
            "      --top-p P        nucleus sampling threshold (default 1 = off)\n"
            "      --top-k K        sample among the K most likely tokens (default 0 = off)\n"
            "      --seed S         random seed for sampling (default 42)\n"
            "      --backend B      auto (default), cpu, cpu-ref or cuda\n"
            "  -t, --threads N      threads (default: one per CPU)\n"
            "      --ctx N          context length (default: the model's, at most 2048)\n"
            "  -v, --verbose        backend choice and speed on stderr\n"
            "  -h, --help           show this help\n");
}

typedef struct stream_state {
    uq_tokstream *ts;
    uq_status st;
} stream_state;

static int on_token(void *user, int32_t id)
{
    stream_state *s = user;
    const char *text;
    size_t len;
    s->st = uq_tokstream_push(s->ts, id, &text, &len);
    if (s->st != UQ_OK) return 1;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

int cmd_run(int argc, char **argv)
{
    enum { O_TEMP = 256, O_TOPP, O_TOPK, O_SEED, O_BACKEND, O_CTX };
    static const struct option opts[] = {
        {"prompt", required_argument, 0, 'p'}, {"tokens", required_argument, 0, 'n'},
        {"temp", required_argument, 0, O_TEMP}, {"top-p", required_argument, 0, O_TOPP},
        {"top-k", required_argument, 0, O_TOPK}, {"seed", required_argument, 0, O_SEED},
        {"backend", required_argument, 0, O_BACKEND}, {"threads", required_argument, 0, 't'},
        {"ctx", required_argument, 0, O_CTX},   {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *prompt = "", *backend = "auto";
    long n_new = 256, threads = 0, n_ctx = 0, top_k = 0;
    double temp = 0, top_p = 1;
    unsigned long long seed = 42;
    int verbose = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "p:n:t:vh", opts, NULL)) != -1) {
        int ok = 1;
        switch (c) {
        case 'p': prompt = optarg; break;
        case 'n': ok = cli_parse_long(optarg, 0, 1 << 24, &n_new); break;
        case O_TEMP: ok = cli_parse_double(optarg, 0, 100, &temp); break;
        case O_TOPP: ok = cli_parse_double(optarg, 0, 1, &top_p); break;
        case O_TOPK: ok = cli_parse_long(optarg, 0, 1 << 24, &top_k); break;
        case O_SEED: {
            char *end;
            seed = strtoull(optarg, &end, 10);
            ok = *optarg && !*end;
            break;
        }
        case O_BACKEND: backend = optarg; break;
        case 't': ok = cli_parse_long(optarg, 1, 1024, &threads); break;
        case O_CTX: ok = cli_parse_long(optarg, 1, 1 << 24, &n_ctx); break;
        case 'v': verbose = 1; break;
        case 'h': cmd_run_help(stdout); return UQ_EXIT_OK;
        default: return cli_usage_error("run", "unknown option or missing value: '%s'", argv[optind - 1]);
        }
        if (!ok) return cli_usage_error("run", "bad value for '%s': '%s'", argv[optind - 1], optarg);
    }
    if (optind != argc - 1) return cli_usage_error("run", "expected one MODEL");
    const char *path = argv[optind];

    cli_runtime rt;
    uq_status st = cli_runtime_open(path, backend, (int)threads, (int)n_ctx, verbose, &rt);
    if (st != UQ_OK) return cli_fail("run", st);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc = UQ_EXIT_OK;
    uq_tokstream *ts = NULL;
    st = uq_tokenizer_encode(rt.tok, prompt, strlen(prompt), 1, &ids, &n_ids);
    if (st == UQ_OK && n_ids == 0) {
        int32_t bos = uq_tokenizer_bos_id(rt.tok);
        if (bos < 0) bos = (int32_t)uq_model_get_config(rt.model)->bos_token_id;
        if (bos < 0) {
            rc = cli_usage_error("run", "this model has no BOS token: give a --prompt");
            goto out;
        }
        ids = malloc(sizeof *ids);
        if (!ids) st = UQ_ERR_NOMEM;
        else ids[n_ids++] = bos;
    }
    if (st == UQ_OK) st = uq_tokstream_new(rt.tok, 1, &ts);
    if (st != UQ_OK) {
        rc = cli_fail("run", st);
        goto out;
    }
    /* Prime the decoder with the prompt so the continuation decodes in context
     * (a SentencePiece decoder strips the space of the first token only). */
    for (size_t i = 0; i < n_ids && st == UQ_OK; i++) {
        const char *piece;
        size_t plen;
        st = uq_tokstream_push(ts, ids[i], &piece, &plen);
    }
    if (st != UQ_OK) {
        rc = cli_fail("run", st);
        goto out;
    }
    fputs(prompt, stdout);
    fflush(stdout);
    uq_sampler_params sp;
    uq_sampler_params_init(&sp);
    sp.temperature = (float)temp;
    sp.top_p = (float)top_p;
    sp.top_k = (int)top_k;
    sp.seed = seed;
    int32_t *gen = malloc((size_t)(n_new > 0 ? n_new : 1) * sizeof *gen);
    size_t n_gen = 0;
    stream_state ss = {ts, UQ_OK};
    const double t0 = uq_seconds();
    st = gen ? uq_generate(rt.ctx, ids, n_ids, (size_t)n_new, &sp, on_token, &ss, gen, &n_gen) : UQ_ERR_NOMEM;
    const double t1 = uq_seconds();
    if (st == UQ_OK) st = ss.st;
    const char *tail;
    size_t tail_len;
    if (st == UQ_OK && uq_tokstream_finish(ts, &tail, &tail_len) == UQ_OK) fwrite(tail, 1, tail_len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(gen);
    if (st != UQ_OK) rc = cli_fail("run", st);
    else if (verbose) {
        double s = t1 - t0;
        fprintf(stderr, "%zu prompt + %zu new tokens in %.3f s (%.1f tokens/s), backend %s, %d threads\n", n_ids,
                n_gen, s, s > 0 ? (double)(n_ids + n_gen) / s : 0.0, uq_context_backend_name(rt.ctx),
                uq_context_threads(rt.ctx));
    }
out:
    uq_tokstream_free(ts);
    free(ids);
    cli_runtime_close(&rt);
    return rc;
}
