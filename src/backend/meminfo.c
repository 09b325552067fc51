/* System, process and device memory, and a model's footprint. */
#include "backend/backend.h"
#include "core/error.h"
#include "io/path.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* A "Key:   123 kB" line of a /proc file, in bytes (0 if absent). */
static uint64_t proc_kb(const char *file, const char *key)
{
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    char line[256];
    size_t n = strlen(key);
    uint64_t v = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            unsigned long long kb = 0;
            if (sscanf(line + n + 1, "%llu", &kb) == 1) v = (uint64_t)kb * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

uq_status uq_memory_info_get(uq_memory_info *m)
{
    if (!m) return uq_fail(UQ_ERR_ARG, "uq_memory_info_get: NULL argument");
    memset(m, 0, sizeof *m);
    m->ram_total = proc_kb("/proc/meminfo", "MemTotal");
    m->ram_available = proc_kb("/proc/meminfo", "MemAvailable");
    m->ram_used = m->ram_total > m->ram_available ? m->ram_total - m->ram_available : 0;
    m->process_rss = proc_kb("/proc/self/status", "VmRSS");
    m->process_peak_rss = proc_kb("/proc/self/status", "VmHWM");
    for (size_t i = 0; i < uq_backend_count() && m->n_gpus < UQ_MAX_GPUS; i++) {
        const uq_backend_ops *ops = uq_backend_at(i);
        char why[128];
        if (!ops->memory || !ops->available(why, sizeof why)) continue;
        uq_backend b = {.ops = ops};
        uint64_t total = 0, free_bytes = 0;
        if (ops->memory(&b, &total, &free_bytes) != UQ_OK) continue;
        snprintf(m->gpu[m->n_gpus].name, sizeof m->gpu[m->n_gpus].name, "%s:0 %s", ops->name, ops->description);
        m->gpu[m->n_gpus].total = total;
        m->gpu[m->n_gpus].free_bytes = free_bytes;
        m->n_gpus++;
    }
    return UQ_OK;
}

uq_status uq_model_footprint(const char *path, const uq_quant_config *qc, int64_t n_ctx, int kv_bytes,
                             uq_footprint *out)
{
    if (!path || !out || n_ctx < 0 || kv_bytes <= 0) return uq_fail(UQ_ERR_ARG, "uq_model_footprint: bad argument");
    memset(out, 0, sizeof *out);
    out->n_ctx = n_ctx;
    uq_quant_report r;
    uq_status st;
    if (qc) {
        st = uq_quantize_plan(path, qc, &r);
        if (st != UQ_OK) return st;
        out->weights_float = r.bytes_in;
        out->weights_quantized = r.bytes_out;
        out->bits_per_weight = r.bits_per_weight;
        uq_quant_report_free(&r);
    } else {
        uq_model_files *f;
        if ((st = uq_files_open(path, &f)) != UQ_OK) return st;
        for (size_t i = 0; i < uq_files_count(f); i++) out->weights_float += uq_files_tensor(f, i)->nbytes;
        uq_files_close(f);
        out->weights_quantized = out->weights_float;
    }
    char cpath[PATH_MAX];
    uq_model_config c;
    if (uq_path_is_dir(path) && uq_path_join(cpath, sizeof cpath, path, "config.json") == UQ_OK &&
        uq_path_is_file(cpath) && uq_config_load(cpath, &c) == UQ_OK && c.llama_family)
        out->kv_cache = 2ull * (uint64_t)c.num_layers * (uint64_t)n_ctx * (uint64_t)(c.num_kv_heads * c.head_dim) *
                        (uint64_t)kv_bytes;
    return UQ_OK;
}
