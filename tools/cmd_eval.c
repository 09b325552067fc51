/* uquant eval MODEL --data FILE [--reference MODEL]: perplexity, and with a
 * reference the seeds' validation (KL, top-1 agreement, cosine similarity). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "io/path.h"

void cmd_eval_help(FILE *out)
{
    fprintf(out,
            "usage: uquant eval MODEL --data FILE [--reference MODEL] [OPTIONS]\n"
            "\n"
            "Perplexity of MODEL on the text FILE (tokenized whole, no BOS, cut into\n"
            "non-overlapping windows; a shorter tail is dropped). With --reference (the\n"
            "original model), also the KL divergence of MODEL's next-token distribution from\n"
            "the reference's (mean / p99 / max), top-1 agreement and the mean cosine\n"
            "similarity of the logits. Both models run window by window.\n"
            "\n"
            "Options:\n"
            "  -d, --data FILE        the text (UTF-8)\n"
            "  -r, --reference MODEL  the model to compare against\n"
            "      --ctx N            window length (default 512)\n"
            "      --protocol P       windows (default: every position but the first of each\n"
            "                         window scored) or llamacpp (first token replaced by BOS,\n"
            "                         second half of each window scored, as llama.cpp does)\n"
            "      --max-windows N    evaluate the first N windows only\n"
            "      --backend B        auto (default), cpu, cpu-ref or cuda\n"
            "  -t, --threads N        threads (default: one per CPU)\n"
            "      --json             print the result as JSON\n"
            "  -v, --verbose          backend choice on stderr\n"
            "  -h, --help             show this help\n");
}

typedef struct progress_state {
    int enabled;
} progress_state;

static void on_progress(void *user, int64_t done, int64_t total)
{
    progress_state *p = user;
    if (p->enabled) cli_progress_bar("eval", (uint64_t)done, (uint64_t)total, "");
}

int cmd_eval(int argc, char **argv)
{
    enum { O_CTX = 256, O_PROTO, O_MAXW, O_BACKEND, O_JSON };
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},      {"reference", required_argument, 0, 'r'},
        {"ctx", required_argument, 0, O_CTX},     {"protocol", required_argument, 0, O_PROTO},
        {"max-windows", required_argument, 0, O_MAXW}, {"backend", required_argument, 0, O_BACKEND},
        {"threads", required_argument, 0, 't'},   {"json", no_argument, 0, O_JSON},
        {"verbose", no_argument, 0, 'v'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *data = NULL, *refpath = NULL, *backend = "auto";
    long ctx = 512, maxw = 0, threads = 0;
    int json_out = 0, verbose = 0, c;
    uq_ppl_protocol proto = UQ_PPL_WINDOWS;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:r:t:vh", opts, NULL)) != -1) {
        int ok = 1;
        switch (c) {
        case 'd': data = optarg; break;
        case 'r': refpath = optarg; break;
        case O_CTX: ok = cli_parse_long(optarg, 2, 1 << 20, &ctx); break;
        case O_PROTO:
            if (strcmp(optarg, "windows") == 0) proto = UQ_PPL_WINDOWS;
            else if (strcmp(optarg, "llamacpp") == 0) proto = UQ_PPL_LLAMACPP;
            else ok = 0;
            break;
        case O_MAXW: ok = cli_parse_long(optarg, 1, 1L << 40, &maxw); break;
        case O_BACKEND: backend = optarg; break;
        case 't': ok = cli_parse_long(optarg, 1, 1024, &threads); break;
        case O_JSON: json_out = 1; break;
        case 'v': verbose = 1; break;
        case 'h': cmd_eval_help(stdout); return UQ_EXIT_OK;
        default: return cli_usage_error("eval", "unknown option or missing value: '%s'", argv[optind - 1]);
        }
        if (!ok) return cli_usage_error("eval", "bad value for '%s': '%s'", argv[optind - 1], optarg);
    }
    if (optind != argc - 1) return cli_usage_error("eval", "expected one MODEL");
    if (!data) return cli_usage_error("eval", "missing --data FILE");
    const char *path = argv[optind];

    cli_runtime rt = {0}, rr = {0};
    int32_t *ids = NULL;
    size_t n_ids = 0;
    char *text = NULL;
    size_t len = 0;
    int rc = UQ_EXIT_OK;
    uq_status st = uq_read_file(data, (size_t)1 << 31, &text, &len);
    if (st == UQ_OK) st = cli_runtime_open(path, backend, (int)threads, (int)ctx, verbose, &rt);
    if (st == UQ_OK && refpath) st = cli_runtime_open(refpath, backend, (int)threads, (int)ctx, verbose, &rr);
    if (st == UQ_OK) st = uq_tokenizer_encode(rt.tok, text, len, 0, &ids, &n_ids);
    if (st != UQ_OK) {
        rc = cli_fail("eval", st);
        goto out;
    }
    uq_eval_params ep;
    uq_eval_params_init(&ep);
    ep.n_ctx = ctx;
    ep.protocol = proto;
    ep.max_windows = maxw;
    int32_t bos = uq_tokenizer_bos_id(rt.tok);
    if (bos >= 0) ep.bos_id = bos;
    progress_state ps = {!json_out && cli_stderr_is_terminal()};
    ep.progress = on_progress;
    ep.progress_user = &ps;
    uq_eval_result r;
    st = uq_evaluate(rt.ctx, refpath ? rr.ctx : NULL, ids, n_ids, &ep, &r);
    if (ps.enabled) cli_progress_done();
    if (st != UQ_OK) {
        rc = cli_fail("eval", st);
        goto out;
    }
    const char *pname = proto == UQ_PPL_WINDOWS ? "windows" : "llamacpp";
    if (json_out) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(path));
        json_object_set_new(o, "data", json_string(data));
        json_object_set_new(o, "protocol", json_string(pname));
        json_object_set_new(o, "ctx", json_integer(ctx));
        json_object_set_new(o, "tokens", json_integer((json_int_t)r.tokens));
        json_object_set_new(o, "windows", json_integer(r.windows));
        json_object_set_new(o, "scored_tokens", json_integer((json_int_t)r.scored));
        json_object_set_new(o, "ppl", json_real(r.ppl));
        json_object_set_new(o, "nll", json_real(r.nll));
        if (r.have_reference) {
            json_t *ref = json_object();
            json_object_set_new(ref, "model", json_string(refpath));
            json_object_set_new(ref, "ppl", json_real(r.ref_ppl));
            json_object_set_new(ref, "kl_mean", json_real(r.kl_mean));
            json_object_set_new(ref, "kl_p99", json_real(r.kl_p99));
            json_object_set_new(ref, "kl_max", json_real(r.kl_max));
            json_object_set_new(ref, "top1_agreement", json_real(r.top1));
            json_object_set_new(ref, "cosine_similarity", json_real(r.cosine));
            json_object_set_new(o, "reference", ref);
        }
        json_object_set_new(o, "backend", json_string(uq_context_backend_name(rt.ctx)));
        json_object_set_new(o, "threads", json_integer(uq_context_threads(rt.ctx)));
        json_object_set_new(o, "seconds", json_real(r.seconds));
        rc = cli_print_json(o);
        json_decref(o);
    } else {
        printf("%s on %s: %zu tokens, %lld windows of %ld (%s), %llu scored\n", path, data, n_ids,
               (long long)r.windows, ctx, pname, (unsigned long long)r.scored);
        printf("perplexity      %.4f\n", r.ppl);
        if (r.have_reference) {
            printf("reference ppl   %.4f  (%s)\n", r.ref_ppl, refpath);
            printf("KL divergence   mean %.6f  p99 %.6f  max %.6f  (nats)\n", r.kl_mean, r.kl_p99, r.kl_max);
            printf("top-1 agreement %.4f\n", r.top1);
            printf("cosine (logits) %.6f\n", r.cosine);
        }
        printf("time            %.2f s (%s, %d threads)\n", r.seconds, uq_context_backend_name(rt.ctx),
               uq_context_threads(rt.ctx));
    }
out:
    free(ids);
    free(text);
    cli_runtime_close(&rt);
    cli_runtime_close(&rr);
    return rc;
}
