/* uq_quantize_model: plan every tensor, stream the source through the
 * quantizer into a temporary folder, then rename it into place. */
#include "backend/backend.h"
#include "core/clock.h"
#include "core/error.h"
#include "io/path.h"
#include "quant/quant.h"
#include "quantize/plan.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One source tensor and what becomes of it. */
typedef struct job {
    const uq_tensor *src;
    int decision;            /* index into the report's decisions, -1 for pass-through */
    uq_qparams qp;
    int64_t rows, cols;
    char wname[300], sname[300], bname[300];
} job;

typedef struct ctx {
    const uq_quant_config *cfg;
    uq_backend qbackend;     /* where tensors are quantized (ops NULL: the CPU quantizer) */
    int threads;             /* CPU quantizer threads */
    uq_model_files *files;
    json_t *src_config;      /* parsed config.json of the source, or NULL */
    uq_model_config mcfg;
    int have_mcfg;
    const char *src_dir;     /* folder to copy the other files from, or NULL */
    char tmp_dir[PATH_MAX];
    job *jobs;
    size_t n_jobs;
    uq_quant_report rep;
    uint64_t bytes_total, bytes_done;
} ctx;

void uq_quant_report_free(uq_quant_report *r)
{
    if (!r) return;
    free(r->decisions);
    memset(r, 0, sizeof *r);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ------------------------------------------------------------- planning */

static uq_status plan_jobs(ctx *c)
{
    size_t n = uq_files_count(c->files);
    c->jobs = calloc(n ? n : 1, sizeof *c->jobs);
    c->rep.decisions = calloc(n ? n : 1, sizeof *c->rep.decisions);
    if (!c->jobs || !c->rep.decisions) return uq_fail(UQ_ERR_NOMEM, "out of memory");

    uq_plan plan = {.cfg = c->cfg};
    int has_head = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = uq_files_tensor(c->files, i)->name;
        if (ends_with(name, ".scales") || ends_with(name, "._scale") || ends_with(name, ".weight_scale"))
            return uq_fail(UQ_ERR_UNSUPPORTED, "%s: tensor \"%s\": the model is already quantized",
                           uq_files_dir(c->files), name);
        if (strstr(name, "down_proj.weight")) plan.num_layers++;
        if (strstr(name, "lm_head.weight")) has_head = 1;
    }
    plan.tied = c->have_mcfg ? (c->mcfg.tie_word_embeddings || !has_head) : !has_head;
    if (c->have_mcfg && c->mcfg.num_layers > 0 && plan.num_layers == 0) plan.num_layers = (int)c->mcfg.num_layers;

    for (size_t i = 0; i < n; i++) {
        const uq_tensor *t = uq_files_tensor(c->files, i);
        job *j = &c->jobs[c->n_jobs++];
        j->src = t;
        j->decision = -1;
        c->rep.params_total += t->numel;
        c->bytes_total += t->nbytes;
        if (!ends_with(t->name, ".weight") || t->ndim != 2 || !uq_dtype_is_float(t->dtype) || t->numel == 0)
            continue;
        size_t mlen = strlen(t->name) - strlen(".weight");
        char module[256];
        if (mlen >= sizeof module) return uq_fail(UQ_ERR_ARG, "tensor name too long: %.100s", t->name);
        memcpy(module, t->name, mlen);
        module[mlen] = '\0';
        uq_quant_decision *d = &c->rep.decisions[c->rep.n_decisions];
        j->decision = (int)c->rep.n_decisions++;
        j->rows = t->shape[0];
        j->cols = t->shape[1];
        uq_plan_weight(&plan, module, j->rows, j->cols, d);
        if (!d->quantized) {
            c->rep.n_float++;
            continue;
        }
        j->qp = (uq_qparams){.scheme = d->scheme, .bits = d->bits, .group_size = d->group_size,
                             .scale_dtype = t->dtype};
        if (d->scheme == UQ_SCHEME_SYMMETRIC && d->group_size == j->cols) j->qp.group_size = 0; /* per row */
        uq_status st = uq_qparams_check_shape(&j->qp, j->rows, j->cols);
        if (st != UQ_OK) return uq_fail_context(st, "tensor \"%s\"", t->name);
        c->rep.n_quantized++;
        c->rep.params_quantized += t->numel;
        snprintf(j->wname, sizeof j->wname, "%s.weight", module);
        snprintf(j->sname, sizeof j->sname, "%s.scales", module);
        snprintf(j->bname, sizeof j->bname, "%s.biases", module);
    }
    return UQ_OK;
}

static int job_quantized(const ctx *c, const job *j)
{
    return j->decision >= 0 && c->rep.decisions[j->decision].quantized;
}

static uq_status declare_outputs(ctx *c, uq_st_writer *w)
{
    uq_status st = uq_st_writer_set_metadata(w, "format", "mlx");
    for (size_t i = 0; i < c->n_jobs && st == UQ_OK; i++) {
        job *j = &c->jobs[i];
        if (!job_quantized(c, j)) {
            st = uq_st_writer_add(w, j->src->name, j->src->dtype, j->src->ndim, j->src->shape);
            continue;
        }
        int64_t wshape[2] = {j->rows, (int64_t)uq_quant_words_per_row(&j->qp, j->cols)};
        int64_t sshape[2] = {j->rows, (int64_t)uq_quant_groups_per_row(&j->qp, j->cols)};
        st = uq_st_writer_add(w, j->wname, UQ_U32, 2, wshape);
        if (st == UQ_OK) st = uq_st_writer_add(w, j->sname, j->qp.scale_dtype, 2, sshape);
        if (st == UQ_OK && j->qp.scheme == UQ_SCHEME_AFFINE)
            st = uq_st_writer_add(w, j->bname, j->qp.scale_dtype, 2, sshape);
    }
    return st;
}

/* ------------------------------------------------------------ streaming */

static void progress(ctx *c, const char *name)
{
    if (c->cfg->progress) c->cfg->progress(c->cfg->progress_user, c->bytes_done, c->bytes_total, name);
}

static int64_t chunk_rows(const ctx *c, const job *j)
{
    if (!c->cfg->memory_efficient) return j->rows;
    if (c->cfg->chunk_size > 0) return c->cfg->chunk_size;
    uint64_t row_bytes = (uint64_t)j->cols * 4; /* f32 working size per row */
    int64_t r = (int64_t)((8u << 20) / (row_bytes ? row_bytes : 1));
    return r < 1 ? 1 : r;
}

static uq_status copy_tensor(ctx *c, uq_st_writer *w, const job *j)
{
    const unsigned char *p = j->src->data;
    const uint64_t step = 16u << 20;
    for (uint64_t off = 0; off < j->src->nbytes; off += step) {
        if (uq_cancel_requested()) return uq_fail(UQ_ERR_CANCELLED, "quantization cancelled");
        size_t n = (size_t)(j->src->nbytes - off < step ? j->src->nbytes - off : step);
        uq_status st = uq_st_writer_put(w, j->src->name, off, p + off, n);
        if (st != UQ_OK) return st;
        if (c->cfg->memory_efficient) uq_release_pages(p + off, n);
        c->bytes_done += n;
    }
    return UQ_OK;
}

static uq_status quantize_tensor(ctx *c, uq_st_writer *w, const job *j)
{
    const int64_t rows_per = chunk_rows(c, j);
    const size_t wpr = uq_quant_words_per_row(&j->qp, j->cols), gpr = uq_quant_groups_per_row(&j->qp, j->cols);
    const size_t sel = uq_dtype_size(j->qp.scale_dtype), src_row = (size_t)j->cols * uq_dtype_size(j->src->dtype);
    const int64_t cap = rows_per < j->rows ? rows_per : j->rows;
    uint32_t *packed = malloc((size_t)cap * wpr * 4);
    unsigned char *scales = malloc((size_t)cap * gpr * sel);
    unsigned char *biases = j->qp.scheme == UQ_SCHEME_AFFINE ? malloc((size_t)cap * gpr * sel) : NULL;
    uq_status st = UQ_OK;
    if (!packed || !scales || (j->qp.scheme == UQ_SCHEME_AFFINE && !biases)) {
        st = uq_fail(UQ_ERR_NOMEM, "tensor \"%s\": out of memory", j->src->name);
        goto out;
    }
    for (int64_t r0 = 0; r0 < j->rows; r0 += cap) {
        if (uq_cancel_requested()) {
            st = uq_fail(UQ_ERR_CANCELLED, "quantization cancelled");
            goto out;
        }
        int64_t nr = j->rows - r0 < cap ? j->rows - r0 : cap;
        const unsigned char *src = (const unsigned char *)j->src->data + (size_t)r0 * src_row;
        if (c->qbackend.ops)
            st = c->qbackend.ops->quantize(&c->qbackend, &j->qp, j->src->dtype, src, nr, j->cols, packed, scales,
                                           biases, c->cfg->allow_nonfinite);
        else
            st = uq_quantize_tensor(&j->qp, j->src->dtype, src, nr, j->cols, packed, scales, biases,
                                    c->cfg->allow_nonfinite, c->threads);
        if (st == UQ_ERR_NONFINITE) {
            uq_fail_context(st, "tensor \"%s\" (chunk from row %lld; --allow-nonfinite quantizes anyway)",
                            j->src->name, (long long)r0);
            goto out;
        }
        if (st != UQ_OK) goto out;
        st = uq_st_writer_put(w, j->wname, (uint64_t)r0 * wpr * 4, packed, (size_t)nr * wpr * 4);
        if (st == UQ_OK) st = uq_st_writer_put(w, j->sname, (uint64_t)r0 * gpr * sel, scales, (size_t)nr * gpr * sel);
        if (st == UQ_OK && biases)
            st = uq_st_writer_put(w, j->bname, (uint64_t)r0 * gpr * sel, biases, (size_t)nr * gpr * sel);
        if (st != UQ_OK) goto out;
        if (c->cfg->memory_efficient) uq_release_pages(src, (size_t)nr * src_row);
        c->bytes_done += (uint64_t)nr * src_row;
    }
out:
    free(packed);
    free(scales);
    free(biases);
    return st;
}

/* ---------------------------------------------------------- config.json */

static json_t *qentry(uq_scheme scheme, int bits, int group)
{
    json_t *o = json_object();
    json_object_set_new(o, "group_size", json_integer(group));
    json_object_set_new(o, "bits", json_integer(bits));
    json_object_set_new(o, "mode", json_string(uq_plan_mode_name(scheme, bits, group)));
    return o;
}

static uq_status write_config(ctx *c)
{
    const uq_quant_config *q = c->cfg;
    json_t *root = c->src_config ? json_deep_copy(c->src_config) : json_object();
    if (!root) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    /* The defaults are the most common choice, so per-module entries stay few. */
    int def_bits = q->bits, def_group = q->group_size;
    if (q->recipe[0]) {
        size_t best = 0;
        for (size_t i = 0; i < c->rep.n_decisions; i++) {
            const uq_quant_decision *d = &c->rep.decisions[i];
            if (!d->quantized) continue;
            size_t cnt = 0;
            for (size_t k = 0; k < c->rep.n_decisions; k++)
                cnt += c->rep.decisions[k].quantized && c->rep.decisions[k].bits == d->bits;
            if (cnt > best) best = cnt, def_bits = d->bits;
        }
    }
    json_t *qj = qentry(q->scheme, def_bits, def_group);
    for (size_t i = 0; i < c->rep.n_decisions; i++) {
        const uq_quant_decision *d = &c->rep.decisions[i];
        if (!d->quantized) continue;
        if (d->bits == def_bits && d->group_size == def_group) continue;
        json_object_set_new(qj, d->module, qentry(d->scheme, d->bits, d->group_size));
    }
    json_object_set(root, "quantization", qj);
    json_object_set_new(root, "quantization_config", json_deep_copy(qj));
    json_decref(qj);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.json", c->tmp_dir);
    uq_status st = uq_write_json_atomic(path, root);
    json_decref(root);
    return st;
}

/* Copies the tokenizer and the other small files; weights and config are ours. */
static int is_weight_file(const char *name)
{
    static const char *const ext[] = {".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json",
                                      ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx", ".npz"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (ends_with(name, ext[i])) return 1;
    return 0;
}

static uq_status copy_other_files(ctx *c)
{
    if (!c->src_dir) return UQ_OK;
    DIR *d = opendir(c->src_dir);
    if (!d) return uq_fail(UQ_ERR_IO, "%s: %s", c->src_dir, strerror(errno));
    uq_status st = UQ_OK;
    struct dirent *e;
    while (st == UQ_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "config.json") == 0 || is_weight_file(e->d_name)) continue;
        char src[PATH_MAX], dst[PATH_MAX];
        if (uq_path_join(src, sizeof src, c->src_dir, e->d_name) != UQ_OK ||
            uq_path_join(dst, sizeof dst, c->tmp_dir, e->d_name) != UQ_OK)
            continue;
        if (!uq_path_is_file(src)) continue;
        st = uq_copy_file(src, dst);
    }
    closedir(d);
    return st;
}

/* ------------------------------------------------------------- the job */

/* "" / "auto": a device backend that can quantize when one is available,
 * else the CPU; "cpu-ref" quantizes on one thread. */
static uq_status pick_quant_backend(ctx *c)
{
    const char *name = c->cfg->backend;
    c->threads = c->cfg->n_threads;
    if (strcmp(name, "cpu-ref") == 0) {
        c->threads = 1;
        return UQ_OK;
    }
    if (strcmp(name, "cpu") == 0) return UQ_OK;
    int automatic = !name[0] || strcmp(name, "auto") == 0;
    for (size_t i = 0; i < uq_backend_count(); i++) {
        const uq_backend_ops *ops = uq_backend_at(i);
        if (!ops->quantize || (!automatic && strcmp(ops->name, name) != 0)) continue;
        char why[200] = "";
        if (ops->available(why, sizeof why)) {
            c->qbackend.ops = ops;
            return UQ_OK;
        }
        if (!automatic) return uq_fail(UQ_ERR_UNSUPPORTED, "backend \"%s\" is not available: %s", name, why);
    }
    if (automatic) return UQ_OK;
    if (!uq_backend_find(name)) return uq_fail(UQ_ERR_UNSUPPORTED, "unknown backend \"%s\" (auto, cpu, cpu-ref, cuda)", name);
    return uq_fail(UQ_ERR_UNSUPPORTED, "backend \"%s\" cannot quantize", name);
}

static uq_status load_source_config(ctx *c, const char *src)
{
    if (!uq_path_is_dir(src)) return UQ_OK;
    c->src_dir = src;
    char p[PATH_MAX];
    if (uq_path_join(p, sizeof p, src, "config.json") != UQ_OK || !uq_path_is_file(p)) return UQ_OK;
    uq_status st = uq_config_load(p, &c->mcfg);
    if (st != UQ_OK) return st;
    c->have_mcfg = 1;
    json_error_t jerr;
    c->src_config = json_load_file(p, 0, &jerr);
    if (!c->src_config) return uq_fail(UQ_ERR_JSON, "%s: %s", p, jerr.text);
    return UQ_OK;
}

static uq_status prepare_output(ctx *c, const char *src, const char *dst)
{
    struct stat sb;
    if (!*dst) return uq_fail(UQ_ERR_ARG, "empty output path");
    if (stat(dst, &sb) == 0) {
        if (!c->cfg->force) return uq_fail(UQ_ERR_EXISTS, "%s already exists (use --force to replace it)", dst);
        if (!S_ISDIR(sb.st_mode)) return uq_fail(UQ_ERR_EXISTS, "%s exists and is not a folder", dst);
        char a[PATH_MAX], b[PATH_MAX];
        char *srcdir = uq_path_is_dir(src) ? strdup(src) : uq_path_dirname(src);
        int same = srcdir && realpath(dst, a) && realpath(srcdir, b) && strcmp(a, b) == 0;
        free(srcdir);
        if (same) return uq_fail(UQ_ERR_ARG, "%s: the output folder is the input folder", dst);
    }
    char *parent = uq_path_dirname(dst);
    if (!parent) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    int ok = uq_path_is_dir(parent);
    free(parent);
    if (!ok) return uq_fail(UQ_ERR_MISSING, "%s: the folder it would go in does not exist", dst);
    size_t len = strlen(dst);
    while (len > 1 && dst[len - 1] == '/') len--;
    int n = snprintf(c->tmp_dir, sizeof c->tmp_dir, "%.*s.uquant-tmp-%ld", (int)len, dst, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof c->tmp_dir) return uq_fail(UQ_ERR_ARG, "output path too long");
    uq_remove_tree(c->tmp_dir);
    if (mkdir(c->tmp_dir, 0755) != 0) return uq_fail(UQ_ERR_IO, "%s: %s", c->tmp_dir, strerror(errno));
    return UQ_OK;
}

/* Moves the finished temporary folder to dst, replacing an old one last. */
static uq_status publish(ctx *c, const char *dst)
{
    char old[PATH_MAX + 64];
    int had_old = uq_path_is_dir(dst);
    if (had_old) {
        snprintf(old, sizeof old, "%s.uquant-old-%ld", c->tmp_dir, (long)getpid());
        if (rename(dst, old) != 0) return uq_fail(UQ_ERR_IO, "%s: cannot move the old output aside: %s", dst, strerror(errno));
    }
    if (rename(c->tmp_dir, dst) != 0) {
        int e = errno;
        if (had_old) rename(old, dst);
        return uq_fail(UQ_ERR_IO, "%s: %s", dst, strerror(e));
    }
    c->tmp_dir[0] = '\0';
    if (had_old) uq_remove_tree(old);
    return UQ_OK;
}

/* Bits per weight of the quantized weights, and the bytes every output
 * tensor takes (what the writer will write). */
static void summarize(ctx *c)
{
    uint64_t qbytes = 0, out = 0;
    for (size_t i = 0; i < c->n_jobs; i++) {
        const job *j = &c->jobs[i];
        if (!job_quantized(c, j)) {
            out += j->src->nbytes;
            continue;
        }
        uint64_t b = uq_quant_packed_bytes(&j->qp, j->rows, j->cols) + uq_quant_scales_bytes(&j->qp, j->rows, j->cols) +
                     uq_quant_biases_bytes(&j->qp, j->rows, j->cols);
        qbytes += b;
        out += b;
    }
    c->rep.bits_per_weight = c->rep.params_quantized ? 8.0 * (double)qbytes / (double)c->rep.params_quantized : 0;
    c->rep.bytes_in = c->bytes_total;
    c->rep.bytes_out = out;
}

uq_status uq_quantize_plan(const char *src, const uq_quant_config *cfg, uq_quant_report *report)
{
    if (!src || !cfg || !report) return uq_fail(UQ_ERR_ARG, "uq_quantize_plan: NULL argument");
    memset(report, 0, sizeof *report);
    uq_status st = uq_quant_config_validate(cfg);
    if (st != UQ_OK) return st;
    ctx c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    if ((st = load_source_config(&c, src)) == UQ_OK && (st = uq_files_open(src, &c.files)) == UQ_OK &&
        (st = plan_jobs(&c)) == UQ_OK)
        summarize(&c);
    uq_files_close(c.files);
    json_decref(c.src_config);
    free(c.jobs);
    if (st == UQ_OK) *report = c.rep;
    else uq_quant_report_free(&c.rep);
    return st;
}

uq_status uq_quantize_model(const char *src, const char *dst, const uq_quant_config *cfg, uq_quant_report *report)
{
    if (report) memset(report, 0, sizeof *report);
    if (!src || !dst || !cfg) return uq_fail(UQ_ERR_ARG, "uq_quantize_model: NULL argument");
    uq_status st = uq_quant_config_validate(cfg);
    if (st != UQ_OK) return st;
    double t0 = uq_seconds();
    ctx c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    uq_st_writer *w = NULL;
    if ((st = pick_quant_backend(&c)) != UQ_OK) goto out;
    if ((st = load_source_config(&c, src)) != UQ_OK) goto out;
    if ((st = uq_files_open(src, &c.files)) != UQ_OK) goto out;
    if ((st = plan_jobs(&c)) != UQ_OK) goto out;
    if ((st = prepare_output(&c, src, dst)) != UQ_OK) goto out;
    if ((st = uq_st_writer_create(&w)) != UQ_OK) goto out;
    if ((st = declare_outputs(&c, w)) != UQ_OK) goto out;
    if ((st = uq_st_writer_begin(w, c.tmp_dir, "model", cfg->max_shard_bytes)) != UQ_OK) goto out;
    progress(&c, NULL);
    for (size_t i = 0; i < c.n_jobs && st == UQ_OK; i++) {
        const job *j = &c.jobs[i];
        st = job_quantized(&c, j) ? quantize_tensor(&c, w, j) : copy_tensor(&c, w, j);
        if (st == UQ_OK) progress(&c, j->src->name);
    }
    if (st == UQ_OK) st = uq_st_writer_finish(w);
    if (st != UQ_OK) goto out;
    c.rep.n_shards = uq_st_writer_shard_count(w);
    if ((st = write_config(&c)) != UQ_OK) goto out;
    if ((st = copy_other_files(&c)) != UQ_OK) goto out;
    if ((st = publish(&c, dst)) != UQ_OK) goto out;

    summarize(&c);
    c.rep.seconds = uq_seconds() - t0;
out:
    uq_st_writer_free(w); /* removes its temporary files unless finished */
    if (c.tmp_dir[0]) uq_remove_tree(c.tmp_dir);
    uq_files_close(c.files);
    json_decref(c.src_config);
    free(c.jobs);
    if (st == UQ_OK && report) *report = c.rep;
    else uq_quant_report_free(&c.rep);
    return st;
}
