/* uq_model: a model folder opened for reading, its weight matrices described
 * as float or quantized (MLX layout: P.weight U32 + P.scales [+ P.biases]),
 * with the quantization read from config.json the way mlx-lm reads it. */
#include "core/error.h"
#include "io/path.h"
#include "model/model_internal.h"
#include "quant/quant.h"
#include "quantize/plan.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct uq_model {
    uq_model_files *files;
    uq_model_config config;
    int have_config;
    int quantized;
    uq_weight *weights;
    char **modules;
    size_t n_weights;
    const uq_weight **by_name;
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int cmp_module(const void *a, const void *b)
{
    return strcmp((*(const uq_weight *const *)a)->module, (*(const uq_weight *const *)b)->module);
}

void uq_model_close(uq_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_weights; i++) free(m->modules[i]);
    free(m->modules);
    free(m->weights);
    free(m->by_name);
    uq_files_close(m->files);
    free(m);
}

/* Reads {"group_size", "bits", "mode"} of a quantization entry over *bits / *group / *scheme. */
static uq_status read_qentry(const char *label, const char *key, json_t *e, int *bits, int *group, uq_scheme *scheme)
{
    json_t *b = json_object_get(e, "bits"), *g = json_object_get(e, "group_size"), *mode = json_object_get(e, "mode");
    if (b) {
        if (!json_is_integer(b)) return uq_fail(UQ_ERR_FIELD, "%s: quantization \"%s\": bits is not an integer", label, key);
        *bits = (int)json_integer_value(b);
    }
    if (g) {
        if (!json_is_integer(g))
            return uq_fail(UQ_ERR_FIELD, "%s: quantization \"%s\": group_size is not an integer", label, key);
        json_int_t v = json_integer_value(g);
        if (v < 0 || v > INT_MAX) return uq_fail(UQ_ERR_CONFIG, "%s: quantization \"%s\": bad group_size", label, key);
        *group = (int)v;
    }
    if (mode && !json_is_null(mode)) {
        if (!json_is_string(mode)) return uq_fail(UQ_ERR_FIELD, "%s: quantization \"%s\": mode is not a string", label, key);
        uq_status st = uq_plan_parse_mode(json_string_value(mode), scheme);
        if (st != UQ_OK) return uq_fail_context(st, "%s", label);
    }
    return UQ_OK;
}

/* Describes the quantized weight of `module` from its tensors and the
 * quantization object (NULL if config.json has none). */
static uq_status describe_quantized(uq_model *m, json_t *q, const char *label, const char *module,
                                    const uq_tensor *w, const uq_tensor *s, uq_weight *out)
{
    int bits = 4, group = 64;
    uq_scheme scheme = UQ_SCHEME_AFFINE;
    uq_status st;
    if (q) {
        if ((st = read_qentry(label, "quantization", q, &bits, &group, &scheme)) != UQ_OK) return st;
        json_t *e = json_object_get(q, module);
        if (e && json_is_false(e))
            return uq_fail(UQ_ERR_CONFIG, "%s: \"%s\" is marked not quantized but has scales", label, module);
        if (e && json_is_object(e) && (st = read_qentry(label, module, e, &bits, &group, &scheme)) != UQ_OK) return st;
    }
    char bname[600];
    snprintf(bname, sizeof bname, "%s.biases", module);
    const uq_tensor *b = uq_files_find(m->files, bname);
    if (w->dtype != UQ_U32 || w->ndim != 2)
        return uq_fail(UQ_ERR_DTYPE, "%s: \"%s\" has scales but is %s, %d-D (want U32, 2-D)", label, w->name,
                       uq_dtype_name(w->dtype), w->ndim);
    if (s->ndim != 2 || s->shape[0] != w->shape[0] || !uq_dtype_is_float(s->dtype))
        return uq_fail(UQ_ERR_SHAPE, "%s: \"%s.scales\" does not match its weight", label, module);
    if (scheme == UQ_SCHEME_AFFINE && !b)
        return uq_fail(UQ_ERR_MISSING, "%s: \"%s\" is affine-quantized but has no biases", label, module);
    if (b && (b->ndim != 2 || b->shape[0] != s->shape[0] || b->shape[1] != s->shape[1] || b->dtype != s->dtype))
        return uq_fail(UQ_ERR_SHAPE, "%s: \"%s\" does not match its scales", label, bname);
    int64_t groups = s->shape[1];
    if (group <= 0 || groups <= 0 || groups > INT64_MAX / group)
        return uq_fail(UQ_ERR_SHAPE, "%s: \"%s\": bad group size %d", label, module, group);
    int64_t cols = groups * group;
    uq_qparams qp = {.scheme = scheme, .bits = bits, .group_size = group, .scale_dtype = s->dtype};
    /* One scale per row of a symmetric weight is recorded as group = cols. */
    if (scheme == UQ_SCHEME_SYMMETRIC && groups == 1) qp.group_size = 0;
    if ((st = uq_qparams_check_shape(&qp, w->shape[0], cols)) != UQ_OK) return uq_fail_context(st, "%s: \"%s\"", label, module);
    if ((int64_t)uq_quant_words_per_row(&qp, cols) != w->shape[1])
        return uq_fail(UQ_ERR_SHAPE, "%s: \"%s\" has %lld words per row, %d-bit rows of %lld values need %zu", label,
                       w->name, (long long)w->shape[1], bits, (long long)cols, uq_quant_words_per_row(&qp, cols));
    out->quantized = 1;
    out->scheme = scheme;
    out->bits = bits;
    out->group_size = qp.group_size ? group : (int)cols;
    out->rows = w->shape[0];
    out->cols = cols;
    out->dtype = s->dtype;
    out->weight = w;
    out->scales = s;
    out->biases = scheme == UQ_SCHEME_AFFINE ? b : NULL;
    return UQ_OK;
}

static uq_status load_quant_json(const char *dir, json_t **root, json_t **q)
{
    *root = NULL;
    *q = NULL;
    char p[PATH_MAX];
    if (!dir || uq_path_join(p, sizeof p, dir, "config.json") != UQ_OK || !uq_path_is_file(p)) return UQ_OK;
    json_error_t jerr;
    *root = json_load_file(p, 0, &jerr);
    if (!*root) return uq_fail(UQ_ERR_JSON, "%s: not valid JSON (%s, line %d)", p, jerr.text, jerr.line);
    json_t *v = json_object_get(*root, "quantization");
    if (!v) v = json_object_get(*root, "quantization_config");
    if (v && !json_is_object(v)) return uq_fail(UQ_ERR_FIELD, "%s: \"quantization\" is not an object", p);
    *q = v;
    return UQ_OK;
}

uq_status uq_model_open(const char *path, uq_model **out)
{
    if (!path || !out) return uq_fail(UQ_ERR_ARG, "uq_model_open: NULL argument");
    *out = NULL;
    uq_model *m = calloc(1, sizeof *m);
    if (!m) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    json_t *root = NULL, *q = NULL;
    uq_status st;
    const char *dir = uq_path_is_dir(path) ? path : NULL;
    char cpath[PATH_MAX];
    if (dir && uq_path_join(cpath, sizeof cpath, dir, "config.json") == UQ_OK && uq_path_is_file(cpath)) {
        if ((st = uq_config_load(cpath, &m->config)) != UQ_OK) goto fail;
        m->have_config = 1;
    }
    if ((st = load_quant_json(dir, &root, &q)) != UQ_OK) goto fail;
    if ((st = uq_files_open(path, &m->files)) != UQ_OK) goto fail;

    size_t n = uq_files_count(m->files);
    m->weights = calloc(n ? n : 1, sizeof *m->weights);
    m->modules = calloc(n ? n : 1, sizeof *m->modules);
    if (!m->weights || !m->modules) {
        st = uq_fail(UQ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    const char *label = dir ? dir : path;
    for (size_t i = 0; i < n; i++) {
        const uq_tensor *t = uq_files_tensor(m->files, i);
        if (!ends_with(t->name, ".weight") || t->ndim != 2) continue;
        size_t mlen = strlen(t->name) - 7;
        char *module = strndup(t->name, mlen);
        if (!module) {
            st = uq_fail(UQ_ERR_NOMEM, "out of memory");
            goto fail;
        }
        char sname[600];
        snprintf(sname, sizeof sname, "%s.scales", module);
        const uq_tensor *s = uq_files_find(m->files, sname);
        uq_weight *w = &m->weights[m->n_weights];
        m->modules[m->n_weights] = module;
        m->n_weights++;
        w->module = module;
        if (s) {
            if ((st = describe_quantized(m, q, label, module, t, s, w)) != UQ_OK) goto fail;
            m->quantized = 1;
        } else {
            if (!uq_dtype_is_float(t->dtype)) {
                /* an integer matrix that is not a quantized weight: not a weight for us */
                free(module);
                m->n_weights--;
                continue;
            }
            w->rows = t->shape[0];
            w->cols = t->shape[1];
            w->dtype = t->dtype;
            w->weight = t;
        }
    }
    m->by_name = calloc(m->n_weights ? m->n_weights : 1, sizeof *m->by_name);
    if (!m->by_name) {
        st = uq_fail(UQ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < m->n_weights; i++) m->by_name[i] = &m->weights[i];
    qsort(m->by_name, m->n_weights, sizeof *m->by_name, cmp_module);
    json_decref(root);
    *out = m;
    return UQ_OK;
fail:
    json_decref(root);
    uq_model_close(m);
    return st;
}

const uq_model_config *uq_model_get_config(const uq_model *m) { return m && m->have_config ? &m->config : NULL; }
const uq_model_files *uq_model_get_files(const uq_model *m) { return m ? m->files : NULL; }
int uq_model_is_quantized(const uq_model *m) { return m ? m->quantized : 0; }
size_t uq_model_weight_count(const uq_model *m) { return m ? m->n_weights : 0; }

const uq_weight *uq_model_weight(const uq_model *m, size_t i)
{
    return m && i < m->n_weights ? &m->weights[i] : NULL;
}

const uq_weight *uq_model_find_weight(const uq_model *m, const char *name)
{
    if (!m || !name) return NULL;
    char module[600];
    size_t len = strlen(name);
    if (ends_with(name, ".weight")) len -= 7;
    if (len >= sizeof module) return NULL;
    memcpy(module, name, len);
    module[len] = '\0';
    size_t lo = 0, hi = m->n_weights;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(module, m->by_name[mid]->module);
        if (c == 0) return m->by_name[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

uq_qparams uq_weight_qparams(const uq_weight *w)
{
    uq_qparams qp = {.scheme = w->scheme, .bits = w->bits, .group_size = w->group_size, .scale_dtype = w->dtype};
    if (w->scheme == UQ_SCHEME_SYMMETRIC && w->group_size == w->cols && w->scales && w->scales->shape[1] == 1)
        qp.group_size = 0;
    return qp;
}

uq_status uq_dequantize_tensor(const uq_model *m, const char *name, float *out, size_t n)
{
    const uq_weight *w = uq_model_find_weight(m, name);
    if (!w) return uq_fail(UQ_ERR_MISSING, "no weight \"%s\"", name ? name : "(null)");
    if (!out || n < (size_t)w->rows * (size_t)w->cols)
        return uq_fail(UQ_ERR_ARG, "\"%s\": output holds %zu floats, %lld needed", name, n,
                       (long long)(w->rows * w->cols));
    if (!w->quantized) return uq_to_f32(w->dtype, w->weight->data, out, (size_t)(w->rows * w->cols));
    uq_qparams qp = uq_weight_qparams(w);
    return uq_dequantize_qtensor(&qp, w->rows, w->cols, w->weight->data, w->scales->data,
                                 w->biases ? w->biases->data : NULL, out);
}
