/* uquant memory [MODEL]: system / process / GPU memory, and a model's
 * footprint in float and under a quantization config. */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "quant_options.h"

void cmd_memory_help(FILE *out)
{
    fprintf(out,
            "usage: uquant memory [MODEL] [OPTIONS]\n"
            "\n"
            "System RAM (total / available / used), this process's resident set, and the\n"
            "memory of each GPU when one is present. With MODEL: its footprint in float and\n"
            "quantized as the options below say (weights, and the KV cache of one sequence\n"
            "of --ctx tokens). Nothing is written.\n"
            "\n"
            "Quantization (as for 'uquant quantize'):\n");
    cli_quant_options_help(out);
    fprintf(out,
            "\n"
            "Options:\n"
            "      --ctx N        context length for the KV cache (default 2048)\n"
            "      --kv-bytes N   bytes per cached value (default 4: f32 on the CPU)\n"
            "      --json         print JSON\n"
            "  -h, --help         show this help\n");
}

int cmd_memory(int argc, char **argv)
{
    enum { O_CTX = 256, O_KVB, O_JSON };
    static const struct option own[] = {{"ctx", required_argument, 0, O_CTX},
                                        {"kv-bytes", required_argument, 0, O_KVB},
                                        {"json", no_argument, 0, O_JSON},
                                        {"help", no_argument, 0, 'h'},
                                        {0, 0, 0, 0}};
    struct option opts[64];
    cli_quant_merge_options(opts, 64, own);
    uq_quant_config qc;
    uq_quant_config_init(&qc);
    long n_ctx = 2048, kvb = 4;
    int json_out = 0, c, quant_given = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, CLI_QUANT_SHORTOPTS "h", opts, NULL)) != -1) {
        int ok = 1;
        if (cli_quant_option(c, optarg, &qc, &ok)) {
            quant_given = 1;
        } else {
            switch (c) {
            case O_CTX: ok = cli_parse_long(optarg, 0, 1L << 30, &n_ctx); break;
            case O_KVB: ok = cli_parse_long(optarg, 1, 8, &kvb); break;
            case O_JSON: json_out = 1; break;
            case 'h': cmd_memory_help(stdout); return UQ_EXIT_OK;
            default: return cli_usage_error("memory", "unknown option or missing value: '%s'", argv[optind - 1]);
            }
        }
        if (!ok) return cli_usage_error("memory", "bad value for '%s': '%s'", argv[optind - 1], optarg);
    }
    if (optind < argc - 1) return cli_usage_error("memory", "expected at most one MODEL");
    const char *path = optind == argc - 1 ? argv[optind] : NULL;
    if (quant_given && uq_quant_config_validate(&qc) != UQ_OK) return cli_usage_error("memory", "%s", uq_last_error());

    uq_memory_info mi;
    uq_status st = uq_memory_info_get(&mi);
    if (st != UQ_OK) return cli_fail("memory", st);
    uq_footprint fp;
    if (path && (st = uq_model_footprint(path, &qc, n_ctx, (int)kvb, &fp)) != UQ_OK) return cli_fail("memory", st);

    char a[32], b[32], d[32];
    if (json_out) {
        json_t *o = json_object();
        json_t *sys = json_object();
        json_object_set_new(sys, "ram_total", json_integer((json_int_t)mi.ram_total));
        json_object_set_new(sys, "ram_available", json_integer((json_int_t)mi.ram_available));
        json_object_set_new(sys, "ram_used", json_integer((json_int_t)mi.ram_used));
        json_object_set_new(sys, "process_rss", json_integer((json_int_t)mi.process_rss));
        json_object_set_new(sys, "process_peak_rss", json_integer((json_int_t)mi.process_peak_rss));
        json_object_set_new(o, "system", sys);
        json_t *gpus = json_array();
        for (int i = 0; i < mi.n_gpus; i++) {
            json_t *g = json_object();
            json_object_set_new(g, "name", json_string(mi.gpu[i].name));
            json_object_set_new(g, "total", json_integer((json_int_t)mi.gpu[i].total));
            json_object_set_new(g, "free", json_integer((json_int_t)mi.gpu[i].free_bytes));
            json_array_append_new(gpus, g);
        }
        json_object_set_new(o, "gpus", gpus);
        if (path) {
            json_t *m = json_object();
            json_object_set_new(m, "path", json_string(path));
            json_object_set_new(m, "weights_float", json_integer((json_int_t)fp.weights_float));
            json_object_set_new(m, "weights_quantized", json_integer((json_int_t)fp.weights_quantized));
            json_object_set_new(m, "bits", json_integer(qc.bits));
            json_object_set_new(m, "group_size", json_integer(qc.group_size));
            json_object_set_new(m, "bits_per_weight", json_real(fp.bits_per_weight));
            json_object_set_new(m, "kv_cache", json_integer((json_int_t)fp.kv_cache));
            json_object_set_new(m, "ctx", json_integer(n_ctx));
            json_object_set_new(o, "model", m);
        }
        int rc = cli_print_json(o);
        json_decref(o);
        return rc;
    }
    printf("RAM           %s total, %s available, %s used\n", cli_human_bytes(mi.ram_total, a, sizeof a),
           cli_human_bytes(mi.ram_available, b, sizeof b), cli_human_bytes(mi.ram_used, d, sizeof d));
    printf("process       %s resident (peak %s)\n", cli_human_bytes(mi.process_rss, a, sizeof a),
           cli_human_bytes(mi.process_peak_rss, b, sizeof b));
    if (!mi.n_gpus) printf("GPU           none available\n");
    for (int i = 0; i < mi.n_gpus; i++)
        printf("GPU           %s: %s total, %s free\n", mi.gpu[i].name, cli_human_bytes(mi.gpu[i].total, a, sizeof a),
               cli_human_bytes(mi.gpu[i].free_bytes, b, sizeof b));
    if (path) {
        printf("\nmodel         %s\n", path);
        printf("weights       %s as stored, %s quantized (%d-bit g%d%s: %.2f bits per weight)\n",
               cli_human_bytes(fp.weights_float, a, sizeof a), cli_human_bytes(fp.weights_quantized, b, sizeof b),
               qc.bits, qc.group_size, qc.recipe[0] ? ", recipe" : "", fp.bits_per_weight);
        printf("KV cache      %s for %ld tokens (%ld bytes per value)\n", cli_human_bytes(fp.kv_cache, a, sizeof a),
               n_ctx, kvb);
        printf("total         %s float, %s quantized\n", cli_human_bytes(fp.weights_float + fp.kv_cache, a, sizeof a),
               cli_human_bytes(fp.weights_quantized + fp.kv_cache, b, sizeof b));
    }
    return UQ_EXIT_OK;
}
