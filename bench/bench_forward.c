/* Forward-pass speed on bench-28m: prefill tokens/s (512 tokens at once) and
 * decode tokens/s (one token at a time through the KV cache), for the model in
 * bf16 and quantized to 8 and 4 bits (affine, group 64), with the backend and
 * thread count used. Prints a table, or JSON with --json.
 *
 *   bench_forward [--threads N] [--backend B] [--model DIR] [--scratch DIR]
 *                 [--decode N] [--repeat N] [--bits LIST] [--phase both|prefill|decode] [--json]
 *
 * --phase runs one of the two measurements only (for profilers); the other
 * column then reads 0. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uquant.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct result {
    char label[32];
    double prefill_tps, decode_tps;
} result;

static int phase_prefill = 1, phase_decode = 1;

static int measure(const char *dir, const char *backend, int threads, int n_decode, int repeat, result *r)
{
    uq_model *m;
    uq_context *c;
    if (uq_model_open(dir, &m) != UQ_OK) return 1;
    uq_context_params cp;
    uq_context_params_init(&cp);
    cp.backend = backend;
    cp.n_threads = threads;
    cp.n_ctx = 1024;
    if (uq_context_create(m, &cp, &c) != UQ_OK) {
        uq_model_close(m);
        return 1;
    }
    int64_t vocab = uq_context_vocab(c);
    float *logits = malloc((size_t)vocab * sizeof(float));
    int32_t ids[512];
    uint64_t s = 12345;
    for (int i = 0; i < 512; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((s >> 33) % (uint64_t)vocab);
    }
    double best_prefill = 1e30, best_decode = 1e30;
    for (int k = 0; k < repeat; k++) {
        double t0, t1;
        if (phase_prefill) {
            uq_context_reset(c, -1);
            t0 = now();
            if (uq_forward_last(c, ids, 512, logits) != UQ_OK) return 1;
            t1 = now();
            if (t1 - t0 < best_prefill) best_prefill = t1 - t0;
        }
        if (!phase_decode) continue;
        uq_context_reset(c, -1);
        int32_t tok = ids[0];
        t0 = now();
        for (int i = 0; i < n_decode; i++) {
            if (uq_forward_last(c, &tok, 1, logits) != UQ_OK) return 1;
            tok = uq_sample(logits, vocab, NULL, NULL);
        }
        t1 = now();
        if (t1 - t0 < best_decode) best_decode = t1 - t0;
    }
    r->prefill_tps = phase_prefill ? 512.0 / best_prefill : 0;
    r->decode_tps = phase_decode ? n_decode / best_decode : 0;
    free(logits);
    uq_context_free(c);
    uq_model_close(m);
    return 0;
}

int main(int argc, char **argv)
{
    const char *shared = getenv("UQ_SHARED_DIR");
    char model[4096];
    snprintf(model, sizeof model, "%s/models/bench-28m", shared && *shared ? shared : UQ_DEFAULT_SHARED_DIR);
    const char *backend = "auto", *scratch = "/tmp", *bits_list = "16,8,4";
    int threads = 0, n_decode = 128, repeat = 3, json_out = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--threads") && v) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--backend") && v) backend = argv[++i];
        else if (!strcmp(a, "--model") && v) snprintf(model, sizeof model, "%s", argv[++i]);
        else if (!strcmp(a, "--scratch") && v) scratch = argv[++i];
        else if (!strcmp(a, "--decode") && v) n_decode = atoi(argv[++i]);
        else if (!strcmp(a, "--repeat") && v) repeat = atoi(argv[++i]);
        else if (!strcmp(a, "--bits") && v) bits_list = argv[++i];
        else if (!strcmp(a, "--phase") && v) {
            const char *ph = argv[++i];
            phase_prefill = strcmp(ph, "decode") != 0;
            phase_decode = strcmp(ph, "prefill") != 0;
        } else if (!strcmp(a, "--json")) json_out = 1;
        else {
            fprintf(stderr, "usage: bench_forward [--threads N] [--backend B] [--model DIR] [--scratch DIR]"
                            " [--decode N] [--repeat N] [--bits 16,8,4] [--phase both|prefill|decode] [--json]\n");
            return 2;
        }
    }
    if (n_decode < 1 || repeat < 1) return 2;
    result res[8];
    int n_res = 0, rc = 0, used_threads = 0;
    char used_backend[32] = "";
    char list[64];
    snprintf(list, sizeof list, "%s", bits_list);
    for (char *tok = strtok(list, ","); tok && n_res < 8; tok = strtok(NULL, ",")) {
        int bits = atoi(tok);
        char dir[4200];
        result *r = &res[n_res];
        if (bits >= 16) {
            snprintf(dir, sizeof dir, "%s", model);
            snprintf(r->label, sizeof r->label, "bf16");
        } else {
            snprintf(dir, sizeof dir, "%s/bench-forward-q%d", scratch, bits);
            uq_quant_config qc;
            uq_quant_config_init(&qc);
            qc.bits = bits;
            qc.group_size = 64;
            qc.force = 1;
            if (uq_quantize_model(model, dir, &qc, NULL) != UQ_OK) {
                fprintf(stderr, "bench_forward: %s\n", uq_last_error());
                return 1;
            }
            snprintf(r->label, sizeof r->label, "%d-bit g64", bits);
        }
        if (measure(dir, backend, threads, n_decode, repeat, r) != 0) {
            fprintf(stderr, "bench_forward: %s: %s\n", dir, uq_last_error());
            rc = 1;
            break;
        }
        n_res++;
        if (!used_threads) {
            /* report what the context actually used */
            uq_model *m;
            uq_context *c;
            uq_context_params cp;
            uq_context_params_init(&cp);
            cp.backend = backend;
            cp.n_threads = threads;
            cp.n_ctx = 16;
            if (uq_model_open(dir, &m) == UQ_OK) {
                if (uq_context_create(m, &cp, &c) == UQ_OK) {
                    used_threads = uq_context_threads(c);
                    snprintf(used_backend, sizeof used_backend, "%s", uq_context_backend_name(c));
                    uq_context_free(c);
                }
                uq_model_close(m);
            }
        }
        if (bits < 16) {
            char cmd[8600];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
            if (system(cmd) != 0) fprintf(stderr, "bench_forward: could not remove %s\n", dir);
        }
    }
    if (json_out) {
        json_t *o = json_object(), *a = json_array();
        json_object_set_new(o, "model", json_string(model));
        json_object_set_new(o, "backend", json_string(used_backend));
        json_object_set_new(o, "threads", json_integer(used_threads));
        json_object_set_new(o, "prefill_tokens", json_integer(512));
        json_object_set_new(o, "decode_tokens", json_integer(n_decode));
        for (int i = 0; i < n_res; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "weights", json_string(res[i].label));
            json_object_set_new(e, "prefill_tokens_per_s", json_real(res[i].prefill_tps));
            json_object_set_new(e, "decode_tokens_per_s", json_real(res[i].decode_tps));
            json_array_append_new(a, e);
        }
        json_object_set_new(o, "results", a);
        char *txt = json_dumps(o, JSON_INDENT(2));
        puts(txt);
        free(txt);
        json_decref(o);
    } else {
        printf("bench_forward: %s, backend %s, %d threads, best of %d\n", model, used_backend, used_threads, repeat);
        printf("%-12s %18s %18s\n", "weights", "prefill 512 tok/s", "decode tok/s");
        for (int i = 0; i < n_res; i++)
            printf("%-12s %18.1f %18.1f\n", res[i].label, res[i].prefill_tps, res[i].decode_tps);
    }
    return rc;
}
