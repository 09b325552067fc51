/* uquant info PATH: architecture summary, tensor table, totals. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "io/path.h"

void cmd_info_help(FILE *out)
{
    fprintf(out,
            "usage: uquant info [--json] PATH\n"
            "\n"
            "Show a model's architecture (from config.json), its tensors (name, dtype,\n"
            "shape, bytes) and totals. PATH is a model folder (model.safetensors or a\n"
            "sharded model with model.safetensors.index.json) or one .safetensors file.\n"
            "Works on any safetensors model; the architecture line says whether uquant\n"
            "can run it.\n"
            "\n"
            "Options:\n"
            "  --json       print one JSON object instead of the table\n"
            "  -h, --help   show this help\n");
}

typedef struct dtype_total {
    uint64_t tensors, params, bytes;
} dtype_total;

static json_t *config_json(const uq_model_config *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "architecture", json_string(c->architecture));
    json_object_set_new(o, "model_type", json_string(c->model_type));
    json_object_set_new(o, "llama_family", json_boolean(c->llama_family));
    json_object_set_new(o, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(o, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(o, "num_layers", json_integer(c->num_layers));
    json_object_set_new(o, "num_heads", json_integer(c->num_heads));
    json_object_set_new(o, "num_kv_heads", json_integer(c->num_kv_heads));
    json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_position_embeddings));
    json_object_set_new(o, "rms_norm_eps", json_real(c->rms_norm_eps));
    json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
    json_object_set_new(o, "rope_scaling", json_string(c->rope_scaling.type_name));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(o, "attention_bias", json_boolean(c->attention_bias));
    json_object_set_new(o, "bos_token_id", c->bos_token_id >= 0 ? json_integer(c->bos_token_id) : json_null());
    json_t *eos = json_array();
    for (int i = 0; i < c->n_eos; i++) json_array_append_new(eos, json_integer(c->eos_token_ids[i]));
    json_object_set_new(o, "eos_token_ids", eos);
    json_object_set_new(o, "torch_dtype", json_string(c->torch_dtype));
    return o;
}

static void print_config(const uq_model_config *c, uq_status runnable)
{
    printf("architecture  %s (model_type %s): %s\n", c->architecture[0] ? c->architecture : "unknown",
           c->model_type[0] ? c->model_type : "unknown",
           runnable == UQ_OK ? "runnable" : "not runnable (info and quantize only)");
    if (!c->llama_family) return;
    printf("shape         %lld layers, hidden %lld, intermediate %lld, heads %lld (kv %lld), head_dim %lld, vocab %lld\n",
           (long long)c->num_layers, (long long)c->hidden_size, (long long)c->intermediate_size,
           (long long)c->num_heads, (long long)c->num_kv_heads, (long long)c->head_dim, (long long)c->vocab_size);
    printf("details       rope theta %g (%s), rms eps %g, %s embeddings, bos %lld, eos", c->rope_theta,
           c->rope_scaling.type_name, c->rms_norm_eps, c->tie_word_embeddings ? "tied" : "separate",
           (long long)c->bos_token_id);
    for (int i = 0; i < c->n_eos; i++) printf("%s%lld", i ? "," : " ", (long long)c->eos_token_ids[i]);
    if (!c->n_eos) printf(" none");
    printf(", max positions %lld\n", (long long)c->max_position_embeddings);
}

static void shape_string(const uq_tensor *t, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

/* What the quantized weights add up to. */
typedef struct quant_summary {
    size_t n_quantized, n_float;
    uint64_t params;          /* elements of the quantized weights */
    uint64_t stored_bytes;    /* their packed words + scales + biases */
    uint64_t float_bytes;     /* the same weights in their scales' dtype */
    uint64_t other_bytes;     /* every other tensor as stored */
} quant_summary;

static uint64_t weight_stored_bytes(const uq_weight *w)
{
    return w->weight->nbytes + (w->scales ? w->scales->nbytes : 0) + (w->biases ? w->biases->nbytes : 0);
}

static void summarize_quantization(const uq_model *model, quant_summary *q)
{
    memset(q, 0, sizeof *q);
    uint64_t weight_tensor_bytes = 0;
    for (size_t i = 0; i < uq_model_weight_count(model); i++) {
        const uq_weight *w = uq_model_weight(model, i);
        if (!w->quantized) {
            q->n_float++;
            continue;
        }
        q->n_quantized++;
        q->params += (uint64_t)(w->rows * w->cols);
        q->stored_bytes += weight_stored_bytes(w);
        q->float_bytes += (uint64_t)(w->rows * w->cols) * uq_dtype_size(w->dtype);
        weight_tensor_bytes += weight_stored_bytes(w);
    }
    const uq_model_files *m = uq_model_get_files(model);
    uint64_t all = 0;
    for (size_t i = 0; i < uq_files_count(m); i++) all += uq_files_tensor(m, i)->nbytes;
    q->other_bytes = all - weight_tensor_bytes;
}

static const char *scheme_name(uq_scheme s) { return s == UQ_SCHEME_AFFINE ? "affine" : "symmetric"; }

static double weight_bpw(const uq_weight *w) { return 8.0 * (double)weight_stored_bytes(w) / (double)(w->rows * w->cols); }

static void print_quantization(const uq_model *model, const quant_summary *q)
{
    size_t name_w = 6;
    for (size_t i = 0; i < uq_model_weight_count(model); i++) {
        size_t l = strlen(uq_model_weight(model, i)->module);
        if (l > name_w) name_w = l;
    }
    printf("\nquantization\n%-*s  %-9s  %4s  %5s  %6s\n", (int)name_w, "MODULE", "SCHEME", "BITS", "GROUP", "BPW");
    for (size_t i = 0; i < uq_model_weight_count(model); i++) {
        const uq_weight *w = uq_model_weight(model, i);
        if (w->quantized)
            printf("%-*s  %-9s  %4d  %5d  %6.3f\n", (int)name_w, w->module, scheme_name(w->scheme), w->bits,
                   w->group_size, weight_bpw(w));
        else
            printf("%-*s  %-9s  %4d  %5s  %6d\n", (int)name_w, w->module, uq_dtype_name(w->dtype),
                   (int)(8 * uq_dtype_size(w->dtype)), "-", (int)(8 * uq_dtype_size(w->dtype)));
    }
    char a[32], b[32];
    printf("\n%zu weights quantized (%zu kept float): %.3f bits per weight counting scales and biases\n",
           q->n_quantized, q->n_float, q->params ? 8.0 * (double)q->stored_bytes / (double)q->params : 0.0);
    uint64_t before = q->float_bytes + q->other_bytes, after = q->stored_bytes + q->other_bytes;
    printf("size before %s, after %s (%.2fx smaller)\n", cli_human_bytes(before, a, sizeof a),
           cli_human_bytes(after, b, sizeof b), after ? (double)before / (double)after : 0.0);
}

static json_t *quant_json(const uq_model *model, const quant_summary *q)
{
    json_t *o = json_object();
    json_t *mods = json_array();
    for (size_t i = 0; i < uq_model_weight_count(model); i++) {
        const uq_weight *w = uq_model_weight(model, i);
        json_t *e = json_object();
        json_object_set_new(e, "module", json_string(w->module));
        json_object_set_new(e, "quantized", json_boolean(w->quantized));
        if (w->quantized) {
            json_object_set_new(e, "scheme", json_string(scheme_name(w->scheme)));
            json_object_set_new(e, "bits", json_integer(w->bits));
            json_object_set_new(e, "group_size", json_integer(w->group_size));
            json_object_set_new(e, "bits_per_weight", json_real(weight_bpw(w)));
        } else {
            json_object_set_new(e, "dtype", json_string(uq_dtype_name(w->dtype)));
        }
        json_array_append_new(mods, e);
    }
    json_object_set_new(o, "modules", mods);
    json_object_set_new(o, "weights_quantized", json_integer((json_int_t)q->n_quantized));
    json_object_set_new(o, "weights_float", json_integer((json_int_t)q->n_float));
    json_object_set_new(o, "bits_per_weight",
                        json_real(q->params ? 8.0 * (double)q->stored_bytes / (double)q->params : 0.0));
    json_object_set_new(o, "bytes_before", json_integer((json_int_t)(q->float_bytes + q->other_bytes)));
    json_object_set_new(o, "bytes_after", json_integer((json_int_t)(q->stored_bytes + q->other_bytes)));
    return o;
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int json_out = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json_out = 1; break;
        case 'h': cmd_info_help(stdout); return UQ_EXIT_OK;
        default: return cli_usage_error("info", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return cli_usage_error("info", "expected one PATH");
    const char *path = argv[optind];

    uq_model *model;
    uq_status st = uq_model_open(path, &model);
    if (st != UQ_OK) return cli_fail("info", st);
    const uq_model_files *m = uq_model_get_files(model);
    const uq_model_config *cfgp = uq_model_get_config(model);
    int have_cfg = cfgp != NULL;
    uq_model_config cfg;
    if (cfgp) cfg = *cfgp;
    uq_status runnable = have_cfg ? uq_config_check_runnable(&cfg) : UQ_ERR_UNSUPPORTED;
    quant_summary qs;
    summarize_quantization(model, &qs);

    dtype_total by_dtype[UQ_DTYPE_COUNT];
    memset(by_dtype, 0, sizeof by_dtype);
    uint64_t params = 0, bytes = 0, file_bytes = 0;
    size_t n = uq_files_count(m), name_w = 4;
    for (size_t i = 0; i < n; i++) {
        const uq_tensor *t = uq_files_tensor(m, i);
        by_dtype[t->dtype].tensors++;
        by_dtype[t->dtype].params += t->numel;
        by_dtype[t->dtype].bytes += t->nbytes;
        params += t->numel;
        bytes += t->nbytes;
        size_t l = strlen(t->name);
        if (l > name_w) name_w = l;
    }
    for (size_t s = 0; s < uq_files_shard_count(m); s++) file_bytes += uq_st_file_size(uq_files_shard(m, s));

    int rc = UQ_EXIT_OK;
    if (json_out) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(path));
        json_object_set_new(o, "config", have_cfg ? config_json(&cfg) : json_null());
        json_object_set_new(o, "runnable", json_boolean(have_cfg && runnable == UQ_OK));
        json_t *files = json_array();
        for (size_t s = 0; s < uq_files_shard_count(m); s++) {
            json_t *f = json_object();
            json_object_set_new(f, "path", json_string(uq_files_shard_path(m, s)));
            json_object_set_new(f, "bytes", json_integer((json_int_t)uq_st_file_size(uq_files_shard(m, s))));
            json_t *meta = json_object();
            const uq_st_file *sf = uq_files_shard(m, s);
            for (size_t k = 0; k < uq_st_metadata_count(sf); k++) {
                const char *key, *val;
                uq_st_metadata_at(sf, k, &key, &val);
                json_object_set_new(meta, key, json_string(val));
            }
            json_object_set_new(f, "metadata", meta);
            json_array_append_new(files, f);
        }
        json_object_set_new(o, "files", files);
        json_t *tensors = json_array();
        for (size_t i = 0; i < n; i++) {
            const uq_tensor *t = uq_files_tensor(m, i);
            json_t *to = json_object();
            json_object_set_new(to, "name", json_string(t->name));
            json_object_set_new(to, "dtype", json_string(uq_dtype_name(t->dtype)));
            json_t *shape = json_array();
            for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
            json_object_set_new(to, "shape", shape);
            json_object_set_new(to, "bytes", json_integer((json_int_t)t->nbytes));
            json_object_set_new(to, "shard", json_integer(t->shard));
            json_array_append_new(tensors, to);
        }
        json_object_set_new(o, "tensors", tensors);
        if (qs.n_quantized) json_object_set_new(o, "quantization", quant_json(model, &qs));
        json_t *tot = json_object();
        json_object_set_new(tot, "tensors", json_integer((json_int_t)n));
        json_object_set_new(tot, "parameters", json_integer((json_int_t)params));
        json_object_set_new(tot, "bytes", json_integer((json_int_t)bytes));
        json_object_set_new(tot, "file_bytes", json_integer((json_int_t)file_bytes));
        json_t *bd = json_object();
        for (int d = 0; d < UQ_DTYPE_COUNT; d++) {
            if (!by_dtype[d].tensors) continue;
            json_t *e = json_object();
            json_object_set_new(e, "tensors", json_integer((json_int_t)by_dtype[d].tensors));
            json_object_set_new(e, "parameters", json_integer((json_int_t)by_dtype[d].params));
            json_object_set_new(e, "bytes", json_integer((json_int_t)by_dtype[d].bytes));
            json_object_set_new(bd, uq_dtype_name((uq_dtype)d), e);
        }
        json_object_set_new(tot, "by_dtype", bd);
        json_object_set_new(o, "totals", tot);
        rc = cli_print_json(o);
        json_decref(o);
    } else {
        char b1[32], b2[32];
        printf("model         %s\n", path);
        if (have_cfg) print_config(&cfg, runnable);
        else printf("architecture  unknown (no config.json)\n");
        printf("files         %zu safetensors file%s, %s\n\n", uq_files_shard_count(m),
               uq_files_shard_count(m) == 1 ? "" : "s", cli_human_bytes(file_bytes, b1, sizeof b1));
        printf("%-*s  %-7s  %-16s  %12s\n", (int)name_w, "NAME", "DTYPE", "SHAPE", "BYTES");
        for (size_t i = 0; i < n; i++) {
            const uq_tensor *t = uq_files_tensor(m, i);
            char shape[160];
            shape_string(t, shape, sizeof shape);
            printf("%-*s  %-7s  %-16s  %12llu\n", (int)name_w, t->name, uq_dtype_name(t->dtype), shape,
                   (unsigned long long)t->nbytes);
        }
        printf("\ntotal         %zu tensors, %s parameters, %s\n", n, cli_grouped(params, b1, sizeof b1),
               cli_human_bytes(bytes, b2, sizeof b2));
        for (int d = 0; d < UQ_DTYPE_COUNT; d++) {
            if (!by_dtype[d].tensors) continue;
            printf("  %-10s  %llu tensors, %s parameters, %s\n", uq_dtype_name((uq_dtype)d),
                   (unsigned long long)by_dtype[d].tensors, cli_grouped(by_dtype[d].params, b1, sizeof b1),
                   cli_human_bytes(by_dtype[d].bytes, b2, sizeof b2));
        }
        if (qs.n_quantized) print_quantization(model, &qs);
    }
    uq_model_close(model);
    return rc;
}
