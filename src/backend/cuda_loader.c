/* The "cuda" backend entry: opens the CUDA module (libuquant_cuda.so) with
 * dlopen on first use and forwards to its table (backend/cuda/cuda_module.h).
 * libuquant itself never links CUDA, so one binary runs with or without a
 * GPU; without one, available() says why.
 *
 * The module is looked for, in order: $UQ_CUDA_MODULE (the file, or a folder
 * holding it); next to the running executable and in ../lib from there; the
 * build tree's lib folder; the install lib folder; the dynamic linker's
 * default search path. */
#include "backend/cuda/cuda.h"
#include "backend/cuda/cuda_module.h"
#include "core/error.h"
#include "runtime/runtime.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const uq_cuda_api *api;      /* NULL when the module is absent or unusable */
static int device_ok;
static char load_why[256];
static char module_path[PATH_MAX];
static char device_desc[160];

static int is_file(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

static int is_dir(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

/* Tries path; returns the handle or NULL (noting a load error for an existing file). */
static void *try_open(const char *path, char *err, size_t cap)
{
    if (!is_file(path)) return NULL;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(err, cap, "cannot load %s: %s", path, e ? e : "unknown error");
        return NULL;
    }
    snprintf(module_path, sizeof module_path, "%s", path);
    return h;
}

static void *find_module(char *err, size_t cap)
{
    char p[PATH_MAX + 64];
    void *h;
    const char *env = getenv("UQ_CUDA_MODULE");
    if (env && *env) {
        if (is_dir(env))
            snprintf(p, sizeof p, "%s/%s", env, UQ_CUDA_MODULE_NAME);
        else
            snprintf(p, sizeof p, "%s", env);
        if ((h = try_open(p, err, cap))) return h;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(p, sizeof p, "%s/%s", exe, UQ_CUDA_MODULE_NAME);
            if ((h = try_open(p, err, cap))) return h;
            snprintf(p, sizeof p, "%s/../lib/%s", exe, UQ_CUDA_MODULE_NAME);
            if ((h = try_open(p, err, cap))) return h;
        }
    }
#ifdef UQ_CUDA_BUILD_LIB_DIR
    snprintf(p, sizeof p, "%s/%s", UQ_CUDA_BUILD_LIB_DIR, UQ_CUDA_MODULE_NAME);
    if ((h = try_open(p, err, cap))) return h;
#endif
#ifdef UQ_CUDA_INSTALL_LIB_DIR
    snprintf(p, sizeof p, "%s/%s", UQ_CUDA_INSTALL_LIB_DIR, UQ_CUDA_MODULE_NAME);
    if ((h = try_open(p, err, cap))) return h;
#endif
    if ((h = dlopen(UQ_CUDA_MODULE_NAME, RTLD_NOW | RTLD_LOCAL))) {
        snprintf(module_path, sizeof module_path, "%s", UQ_CUDA_MODULE_NAME);
        return h;
    }
    return NULL;
}

static void load_module(void)
{
    char err[sizeof load_why] = "";
    void *h = find_module(err, sizeof err);
    if (!h) {
        snprintf(load_why, sizeof load_why, "%s", err[0] ? err : UQ_CUDA_MODULE_NAME " not found (built without CUDA?)");
        return;
    }
    /* The module links the CUDA runtime statically; it needs only the driver. */
    void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!drv) {
        snprintf(load_why, sizeof load_why, "no CUDA driver (libcuda.so.1 cannot be loaded)");
        return;
    }
    dlclose(drv);
    uq_cuda_module_fn fn;
    *(void **)(&fn) = dlsym(h, UQ_CUDA_MODULE_SYMBOL);
    const uq_cuda_api *a = fn ? fn() : NULL;
    if (!a || a->abi_version != UQ_CUDA_ABI_VERSION) {
        snprintf(load_why, sizeof load_why, "%s is not a compatible CUDA module (interface version %d, need %d)",
                 module_path, a ? a->abi_version : -1, UQ_CUDA_ABI_VERSION);
        return;
    }
    api = a;
    char why[sizeof load_why] = "";
    device_ok = api->probe(why, sizeof why);
    if (!device_ok) {
        snprintf(load_why, sizeof load_why, "%s", why[0] ? why : "no CUDA device");
        return;
    }
    if (api->device_name(device_desc, sizeof device_desc) != UQ_OK) device_desc[0] = 0;
}

int uq_cuda_available(char *why, size_t cap)
{
    pthread_once(&load_once, load_module);
    if (!device_ok && why && cap) snprintf(why, cap, "%s", load_why);
    return device_ok;
}

const char *uq_cuda_module_path(void) { return module_path; }

const char *uq_cuda_device_name(void)
{
    pthread_once(&load_once, load_module);
    return device_ok ? device_desc : "";
}

static uq_status module_fail(int st, const char *what, const char *msg)
{
    return uq_fail((uq_status)st, "cuda: %s: %s", what, msg[0] ? msg : "failed");
}

static uq_status need_device(void)
{
    char why[256];
    if (uq_cuda_available(why, sizeof why)) return UQ_OK;
    return uq_fail(UQ_ERR_UNSUPPORTED, "backend \"cuda\" is not available: %s", why);
}

/* ------------------------------------------------------------ the backend */

typedef struct cuda_ctx {
    void *mod;      /* the module's state for this context */
} cuda_ctx;

static int cuda_available(char *why, size_t cap) { return uq_cuda_available(why, cap); }

static void cuda_caps(uq_backend_caps *c)
{
    c->affine_bits = 0x1feu;    /* 1..8 */
    c->symmetric_bits = 0x1fcu; /* 2..8 */
    c->float_weights = 1;
    c->training = 0;
}

static uq_status cuda_init(uq_backend *b, int64_t max_cols)
{
    (void)max_cols;
    uq_status st = need_device();
    if (st != UQ_OK) return st;
    b->state = calloc(1, sizeof(cuda_ctx));
    return b->state ? UQ_OK : uq_fail(UQ_ERR_NOMEM, "out of memory");
}

static void cuda_release(uq_backend *b)
{
    cuda_ctx *s = b->state;
    if (!s) return;
    if (s->mod && api) api->destroy(s->mod);
    free(s);
    b->state = NULL;
}

static void describe(const uq_weight *w, uq_cuda_matrix *m)
{
    memset(m, 0, sizeof *m);
    m->quantized = w->quantized;
    m->scheme = (int)w->scheme;
    m->bits = w->bits;
    m->group_size = w->quantized ? (w->group_size > 0 ? w->group_size : (int)w->cols) : 0;
    m->dtype = (int)w->dtype;
    m->rows = w->rows;
    m->cols = w->cols;
    m->data = w->weight->data;
    m->scales = w->quantized && w->scales ? w->scales->data : NULL;
    m->biases = w->quantized && w->biases ? w->biases->data : NULL;
}

static uq_status cuda_prepare(uq_backend *b, const uq_context *c)
{
    cuda_ctx *s = b->state;
    if (!s) return uq_fail(UQ_ERR_STATE, "cuda: prepare before init");
    uq_cuda_model m;
    memset(&m, 0, sizeof m);
    m.dim = c->dim;
    m.q_dim = c->q_dim;
    m.kv_dim = c->kv_dim;
    m.hidden_ff = c->hidden_ff;
    m.head_dim = c->head_dim;
    m.n_heads = c->n_heads;
    m.n_kv = c->n_kv;
    m.vocab = c->vocab;
    m.n_layers = c->n_layers;
    m.n_ctx = c->n_ctx;
    m.n_batch = c->n_batch;
    m.n_seq = c->n_seq;
    m.rms_eps = c->cfg.rms_norm_eps;
    m.final_norm = c->final_norm;
    describe(c->embed, &m.embed);
    describe(c->lm_head, &m.lm_head);

    size_t half = (size_t)(c->head_dim / 2), nrope = (size_t)c->n_ctx * (half ? half : 1);
    float *cs = malloc(nrope * sizeof(float)), *sn = malloc(nrope * sizeof(float));
    uq_cuda_layer *L = calloc((size_t)c->n_layers, sizeof *L);
    if (!cs || !sn || !L) {
        free(cs);
        free(sn);
        free(L);
        return uq_fail(UQ_ERR_NOMEM, "out of memory");
    }
    uq_rope_tables(&c->cfg, c->n_ctx, cs, sn);
    m.rope_cos = cs;
    m.rope_sin = sn;
    for (int64_t l = 0; l < c->n_layers; l++) {
        const uq_layer *src = &c->layers[l];
        describe(src->wq, &L[l].wq);
        describe(src->wk, &L[l].wk);
        describe(src->wv, &L[l].wv);
        describe(src->wo, &L[l].wo);
        describe(src->wgate, &L[l].wgate);
        describe(src->wup, &L[l].wup);
        describe(src->wdown, &L[l].wdown);
        L[l].attn_norm = src->attn_norm;
        L[l].ffn_norm = src->ffn_norm;
        L[l].bq = src->bq;
        L[l].bk = src->bk;
        L[l].bv = src->bv;
        L[l].bo = src->bo;
    }
    m.layers = L;
    char err[512] = "";
    int st = api->create(&m, &s->mod, err, sizeof err);
    free(cs);
    free(sn);
    free(L);
    return st == UQ_OK ? UQ_OK : module_fail(st, "uploading the model", err);
}

static void to_module_pick(const uq_sampler_params *sp, double r, uq_cuda_pick *p)
{
    memset(p, 0, sizeof *p);
    if (!sp || !(sp->temperature > 0.0f)) return;
    p->r = r;
    p->temperature = sp->temperature;
    p->top_p = sp->top_p;
    p->top_k = sp->top_k;
}

static uq_status cuda_forward(uq_backend *b, uq_context *c, int seq, const int32_t *ids, int64_t n, int64_t pos,
                              float *logits, int all_logits, const uq_token_pick *pick, int32_t *picked)
{
    (void)c;
    cuda_ctx *s = b->state;
    if (!s || !s->mod) return uq_fail(UQ_ERR_STATE, "cuda: forward before prepare");
    uq_cuda_pick p;
    to_module_pick(pick ? pick->params : NULL, pick ? pick->r : 0.0, &p);
    char err[512] = "";
    int st = api->forward(s->mod, seq, ids, n, pos, logits, all_logits, &p, picked, err, sizeof err);
    return st == UQ_OK ? UQ_OK : module_fail(st, "forward", err);
}

static uq_status cuda_memory(uq_backend *b, uint64_t *total, uint64_t *free_bytes)
{
    (void)b;
    uq_status st = need_device();
    if (st != UQ_OK) return st;
    char err[256] = "";
    int r = api->memory(total, free_bytes, err, sizeof err);
    return r == UQ_OK ? UQ_OK : module_fail(r, "memory", err);
}

uq_status uq_cuda_quantize_tensor(const uq_qparams *p, uq_dtype src_dtype, const void *src, int64_t rows,
                                  int64_t cols, void *packed, void *scales, void *biases, int allow_nonfinite)
{
    uq_status st = uq_qparams_check_shape(p, rows, cols);
    if (st != UQ_OK) return st;
    if (src_dtype != UQ_F32 && src_dtype != UQ_F16 && src_dtype != UQ_BF16)
        return uq_fail(UQ_ERR_DTYPE, "cannot quantize a tensor of dtype %s (F32, F16 or BF16 only)",
                       uq_dtype_name(src_dtype));
    if (rows == 0) return UQ_OK;
    if (!src || !packed || !scales || (p->scheme == UQ_SCHEME_AFFINE && !biases))
        return uq_fail(UQ_ERR_ARG, "uq_cuda_quantize_tensor: missing input or output buffer");
    if ((st = need_device()) != UQ_OK) return st;
    if (uq_cancel_requested()) return uq_fail(UQ_ERR_CANCELLED, "quantization cancelled");
    int group = p->group_size > 0 ? p->group_size : (int)cols;
    int fallback = 0;
    char err[512] = "";
    int r = api->quantize((int)p->scheme, p->bits, group, (int)p->scale_dtype, (int)src_dtype, src, rows, cols, packed,
                          scales, p->scheme == UQ_SCHEME_AFFINE ? biases : NULL, &fallback, err, sizeof err);
    if (r != UQ_OK) return module_fail(r, "quantize", err);
    if (fallback)
        return uq_quantize_tensor(p, src_dtype, src, rows, cols, packed, scales, biases, allow_nonfinite, 0);
    return UQ_OK;
}

static uq_status cuda_quantize(uq_backend *b, const struct uq_qparams *p, uq_dtype src_dtype, const void *src,
                               int64_t rows, int64_t cols, void *packed, void *scales, void *biases,
                               int allow_nonfinite)
{
    (void)b;
    return uq_cuda_quantize_tensor(p, src_dtype, src, rows, cols, packed, scales, biases, allow_nonfinite);
}

static cuda_ctx *context_state(struct uq_context *c)
{
    if (!c || c->backend.ops != &uq_backend_cuda) return NULL;
    cuda_ctx *s = c->backend.state;
    return s && s->mod ? s : NULL;
}

uq_status uq_cuda_forward_greedy(struct uq_context *c, int seq, const int32_t *ids, int64_t n, float *logits,
                                 int all_logits, int32_t *argmax)
{
    if (!context_state(c))
        return uq_fail(UQ_ERR_ARG, "uq_cuda_forward_greedy: the context does not run on the cuda backend");
    if (n <= 0) return UQ_OK;
    return uq_forward_device(c, seq, ids, (size_t)n, logits, all_logits, NULL, argmax);
}

uq_status uq_cuda_pick_tokens(const float *logits, int64_t rows, int64_t vocab, const uq_sampler_params *params,
                              const double *r, int32_t *out)
{
    if (!logits || !params || !r || !out || rows < 1 || vocab < 1)
        return uq_fail(UQ_ERR_ARG, "uq_cuda_pick_tokens: bad argument");
    uq_status st = need_device();
    if (st != UQ_OK) return st;
    uq_cuda_pick *pp = malloc((size_t)rows * sizeof *pp);
    if (!pp) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < rows; i++) to_module_pick(&params[i], r[i], &pp[i]);
    char err[512] = "";
    int rc = api->pick(logits, rows, vocab, pp, out, err, sizeof err);
    free(pp);
    return rc == UQ_OK ? UQ_OK : module_fail(rc, "pick", err);
}

uq_status uq_cuda_set_option(struct uq_context *c, const char *key, int64_t value)
{
    cuda_ctx *s = context_state(c);
    if (!s) return uq_fail(UQ_ERR_ARG, "uq_cuda_set_option: the context does not run on the cuda backend");
    int st = api->set_option(s->mod, key, value);
    return st == UQ_OK ? UQ_OK : uq_fail((uq_status)st, "cuda: unknown option \"%s\"", key);
}

uq_status uq_cuda_bench_gemv(int64_t rows, int64_t cols, int bits, int group, int batch, int variant, double out[6])
{
    uq_status st = need_device();
    if (st != UQ_OK) return st;
    char err[512] = "";
    int r = api->bench_gemv(rows, cols, bits, group, batch, variant, out, err, sizeof err);
    return r == UQ_OK ? UQ_OK : module_fail(r, "GEMV benchmark", err);
}

const uq_backend_ops uq_backend_cuda = {
    .name = "cuda",
    .description = "NVIDIA GPUs (CUDA module loaded at run time)",
    .available = cuda_available,
    .caps = cuda_caps,
    .init = cuda_init,
    .release = cuda_release,
    .matmul = NULL,
    .prepare = cuda_prepare,
    .forward = cuda_forward,
    .quantize = cuda_quantize,
    .memory = cuda_memory,
};
