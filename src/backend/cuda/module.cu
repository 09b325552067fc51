/* The CUDA module's entry points (cuda_module.h): device discovery, model
 * upload, the forward pass and quantization.
 *
 * The weights are uploaded as stored (packed codes, scales, biases; float
 * matrices in their dtype) and never expanded. The KV caches are fp32,
 * [sequence][layer][position][kv_dim]. A forward step of n tokens runs
 *   embed -> per layer: RMSNorm, QKV product, RoPE + cache store, attention,
 *   O product (+= residual), RMSNorm, gate/up products with SwiGLU, down
 *   product (+= residual) -> final RMSNorm -> head -> token picked,
 * on one stream. Products for fewer than gemm_min tokens use the GEMV
 * kernels (which fuse the RMSNorm before them), the others the tensor-core
 * GEMM. Single-token steps are captured once in a CUDA graph and replayed:
 * the position, the sequence and how the token is picked are read from
 * device memory. Kernels are launched as programmatic dependent launches
 * (uq_cuda_pdl). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"
#include "cuda_module.h"

int uq_cuda_pdl = 1;

/* mstate.dyn_d: slots 0 and 1 the step's position and sequence, from slot
 * DYN_PICK the step's uq_cuda_pick */
#define DYN_PICK 2
#define DYN_SLOTS (DYN_PICK + (int)(sizeof(uq_cuda_pick) / sizeof(int64_t)))

typedef struct dlayer {
    dmat wq, wk, wv, wo, wg, wu, wd;
    float *attn_norm, *ffn_norm, *bq, *bk, *bv, *bo;
} dlayer;

typedef struct mstate {
    int64_t dim, q_dim, kv_dim, ff, hd, nh, nkv, vocab, nl, n_ctx, nb, nbuf, ldq, maxk;
    int n_seq;
    double eps;
    dlayer *L;
    dmat embed, head;
    float *final_norm, *rope_cos, *rope_sin;
    float *kc, *vc;
    int64_t seq_stride;
    /* activations for nbuf tokens */
    float *x, *xn, *qkv, *att, *gu, *h, *logits;
    uint16_t *sh, *sl;
    /* h in f16 (prefill): the gate / up GEMM's output, the down GEMM's input */
    uint16_t *hh;
    /* quantized weights expanded to f16 for the prefill GEMMs: a scratch per
     * product of a layer (q/k/v, o, gate/up, down), filled on a second stream
     * a layer ahead while the main stream runs the products before
     * (run_layer_pipe); the one-stream path uses the gate/up one */
    uint16_t *pscr[4];
    int64_t pscr_elems[4];
    int pipe_ok;
    /* every layer's products take the GEMM on 4-bit codes (layer_codes_ok) */
    int codes_ok;
    cudaStream_t st2;
    cudaEvent_t ev_ready[4], ev_used[4], ev_start;
    int32_t *ids_d, *picked_d;
    /* the step's {first position, sequence} (what attention reads as
     * attn_args.dyn), then from DYN_PICK a uq_cuda_pick: copied before
     * each step, so that the decode graphs read them from here */
    int64_t *dyn_d;
    float *probs; /* a drawn token's probabilities [vocab] */
    float *att_scratch;
    int *att_counters;
    int *att_ready;      /* attention inside the O product's GEMV (attn_args.ready) */
    int attn_gemv;       /* option attn_gemv: decode attention inside the O product's GEMV where it can */
    /* pinned host staging */
    int64_t *dyn_h;
    int32_t *ids_h;
    cudaStream_t st;
    void **allocs;
    size_t n_allocs, cap_allocs;
    int use_graphs, gemm_min, gemm_dequant, gemm_pipe, gemm_codes;
    cudaGraphExec_t graph[2];
    int graph_state[2]; /* 0 not captured, 1 ready, -1 capture failed */
} mstate;

static int layer_pipe_ok(mstate *s, const dlayer *L);
static int layer_codes_ok(mstate *s, int64_t l);

static int device_index(void)
{
    const char *e = getenv("UQ_CUDA_DEVICE");
    return e && *e ? atoi(e) : 0;
}

static int fail_cuda(cudaError_t e, const char *what, char *err, size_t cap)
{
    snprintf(err, cap, "%s: %s", what, cudaGetErrorString(e));
    return e == cudaErrorMemoryAllocation ? UQ_ERR_NOMEM : UQ_ERR_IO;
}

#define CK(call, what)                                         \
    do {                                                       \
        cudaError_t e_ = (call);                               \
        if (e_ != cudaSuccess) return fail_cuda(e_, what, err, cap); \
    } while (0)

/* ------------------------------------------------------------ discovery */

static int m_probe(char *why, size_t cap)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorNoDevice || (e == cudaSuccess && n == 0)) {
        snprintf(why, cap, "no CUDA device");
        return 0;
    }
    if (e == cudaErrorInsufficientDriver) {
        snprintf(why, cap, "no CUDA driver recent enough for this module (%s)", cudaGetErrorString(e));
        return 0;
    }
    if (e != cudaSuccess) {
        snprintf(why, cap, "no CUDA device (%s)", cudaGetErrorString(e));
        return 0;
    }
    int dev = device_index();
    if (dev < 0 || dev >= n) {
        snprintf(why, cap, "no CUDA device %d (UQ_CUDA_DEVICE; %d present)", dev, n);
        return 0;
    }
    cudaDeviceProp p;
    if ((e = cudaGetDeviceProperties(&p, dev)) != cudaSuccess) {
        snprintf(why, cap, "no CUDA device (%s)", cudaGetErrorString(e));
        return 0;
    }
    if (p.major < 8) {
        snprintf(why, cap, "no supported CUDA device: %s is compute capability %d.%d, 8.0 or newer is needed", p.name,
                 p.major, p.minor);
        return 0;
    }
    return 1;
}

static int m_device_name(char *out, size_t cap)
{
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, device_index());
    if (e != cudaSuccess) {
        snprintf(out, cap, "%s", cudaGetErrorString(e));
        return UQ_ERR_IO;
    }
    snprintf(out, cap, "%s (sm_%d%d, %d SMs, %.1f GiB)", p.name, p.major, p.minor, p.multiProcessorCount,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return UQ_OK;
}

static int m_memory(uint64_t *total, uint64_t *free_bytes, char *err, size_t cap)
{
    size_t f = 0, t = 0;
    CK(cudaSetDevice(device_index()), "selecting the device");
    CK(cudaMemGetInfo(&f, &t), "reading the device memory");
    *total = t;
    *free_bytes = f;
    return UQ_OK;
}

/* ------------------------------------------------------------ upload */

static void *dalloc(mstate *s, size_t bytes, cudaError_t *e)
{
    if (*e != cudaSuccess) return NULL;
    if (s->n_allocs == s->cap_allocs) {
        size_t nc = s->cap_allocs ? 2 * s->cap_allocs : 256;
        void **na = (void **)realloc(s->allocs, nc * sizeof *na);
        if (!na) {
            *e = cudaErrorMemoryAllocation;
            return NULL;
        }
        s->allocs = na;
        s->cap_allocs = nc;
    }
    void *p = NULL;
    *e = cudaMalloc(&p, bytes ? bytes : 16);
    if (*e != cudaSuccess) return NULL;
    s->allocs[s->n_allocs++] = p;
    return p;
}

static void *upload(mstate *s, const void *src, size_t bytes, cudaError_t *e)
{
    void *p = dalloc(s, bytes, e);
    if (p && src && bytes) *e = cudaMemcpy(p, src, bytes, cudaMemcpyHostToDevice);
    return *e == cudaSuccess ? p : NULL;
}

static size_t dtype_bytes(int t) { return t == UQ_F32 ? 4 : 2; }

static int upload_matrix(mstate *s, const uq_cuda_matrix *m, const char *what, dmat *d, char *err, size_t cap)
{
    memset(d, 0, sizeof *d);
    if (m->dtype != UQ_F32 && m->dtype != UQ_F16 && m->dtype != UQ_BF16) {
        snprintf(err, cap, "%s: dtype %d is not F32, F16 or BF16", what, m->dtype);
        return UQ_ERR_DTYPE;
    }
    d->quantized = m->quantized;
    d->scheme = m->scheme;
    d->bits = m->bits;
    d->dtype = m->dtype;
    d->rows = m->rows;
    d->cols = m->cols;
    size_t bytes;
    if (m->quantized) {
        if (m->bits < 1 || m->bits > 8 || m->group_size <= 0 || m->cols % m->group_size != 0 ||
            (m->scheme == UQ_SCHEME_AFFINE && !m->biases)) {
            snprintf(err, cap, "%s: unsupported quantization (%d bits, group %d, %lld columns)", what, m->bits,
                     m->group_size, (long long)m->cols);
            return UQ_ERR_UNSUPPORTED;
        }
        d->group = m->group_size;
        d->wpr = (m->cols * m->bits + 31) / 32;
        bytes = (size_t)m->rows * (size_t)d->wpr * 4;
    } else {
        d->wpr = 0;
        bytes = (size_t)m->rows * (size_t)m->cols * dtype_bytes(m->dtype);
    }
    cudaError_t e = cudaSuccess;
    d->w = upload(s, m->data, bytes, &e);
    if (m->quantized) {
        size_t sb = (size_t)m->rows * (size_t)(m->cols / m->group_size) * dtype_bytes(m->dtype);
        d->s = upload(s, m->scales, sb, &e);
        if (m->scheme == UQ_SCHEME_AFFINE) d->b = upload(s, m->biases, sb, &e);
    }
    if (e != cudaSuccess) {
        char w[160];
        snprintf(w, sizeof w, "uploading %s", what);
        return fail_cuda(e, w, err, cap);
    }
    return UQ_OK;
}

static float *upload_vec(mstate *s, const float *v, int64_t n, cudaError_t *e)
{
    return v ? (float *)upload(s, v, (size_t)n * sizeof(float), e) : NULL;
}

static void m_destroy(void *state)
{
    mstate *s = (mstate *)state;
    if (!s) return;
    cudaSetDevice(device_index());
    if (s->st) cudaStreamSynchronize(s->st);
    for (int i = 0; i < 2; i++)
        if (s->graph_state[i] == 1) cudaGraphExecDestroy(s->graph[i]);
    for (size_t i = 0; i < s->n_allocs; i++) cudaFree(s->allocs[i]);
    free(s->allocs);
    cudaFreeHost(s->dyn_h);
    cudaFreeHost(s->ids_h);
    if (s->st) cudaStreamDestroy(s->st);
    if (s->st2) {
        cudaStreamSynchronize(s->st2);
        cudaStreamDestroy(s->st2);
    }
    for (int i = 0; i < 4; i++) {
        if (s->ev_ready[i]) cudaEventDestroy(s->ev_ready[i]);
        if (s->ev_used[i]) cudaEventDestroy(s->ev_used[i]);
    }
    if (s->ev_start) cudaEventDestroy(s->ev_start);
    free(s->L);
    free(s);
}

/* The default of option gemm_codes (-1 restores it): on the warpgroup MMAs
 * every product is fastest expanded first, on mma.sync q/k/v and gate/up
 * are fastest on their codes. */
static int gemm_codes_default(void) { return gemm_wg_ok() ? 0 : 5; }

static int setup_once(char *err, size_t cap)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static int done = 0;
    int st = UQ_OK;
    pthread_mutex_lock(&lock);
    if (!done) {
        cudaError_t e = gemm_setup();
        if (e == cudaSuccess) e = gemv_setup();
        if (e == cudaSuccess) e = attention_setup();
        if (e == cudaSuccess) e = misc_setup();
        if (e != cudaSuccess)
            st = fail_cuda(e, "configuring the kernels", err, cap);
        else
            done = 1;
    }
    pthread_mutex_unlock(&lock);
    return st;
}

static int m_create(const uq_cuda_model *m, void **state, char *err, size_t cap)
{
    *state = NULL;
    if (m->head_dim > 256 || m->head_dim % 2 != 0 || m->n_kv <= 0 || m->n_heads % m->n_kv != 0) {
        snprintf(err, cap, "unsupported attention shape (head size %lld, %lld heads, %lld KV heads)",
                 (long long)m->head_dim, (long long)m->n_heads, (long long)m->n_kv);
        return UQ_ERR_UNSUPPORTED;
    }
    CK(cudaSetDevice(device_index()), "selecting the device");
    int st = setup_once(err, cap);
    if (st != UQ_OK) return st;
    mstate *s = (mstate *)calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, cap, "out of memory");
        return UQ_ERR_NOMEM;
    }
    s->dim = m->dim;
    s->q_dim = m->q_dim;
    s->kv_dim = m->kv_dim;
    s->ff = m->hidden_ff;
    s->hd = m->head_dim;
    s->nh = m->n_heads;
    s->nkv = m->n_kv;
    s->vocab = m->vocab;
    s->nl = m->n_layers;
    s->n_ctx = m->n_ctx;
    s->nb = m->n_batch > 0 ? m->n_batch : 512;
    s->nbuf = s->nb < 8 ? 8 : s->nb;
    s->n_seq = m->n_seq;
    s->eps = m->rms_eps;
    s->ldq = s->q_dim + 2 * s->kv_dim;
    s->use_graphs = 1;
    s->gemm_min = 9;
    s->gemm_dequant = 1;
    s->gemm_pipe = 1;
    s->gemm_codes = gemm_codes_default();
    s->maxk = s->dim;
    if (s->q_dim > s->maxk) s->maxk = s->q_dim;
    if (s->ff > s->maxk) s->maxk = s->ff;

    cudaError_t e = cudaStreamCreateWithFlags(&s->st, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        m_destroy(s);
        return fail_cuda(e, "creating a stream", err, cap);
    }
    s->L = (dlayer *)calloc((size_t)s->nl, sizeof *s->L);
    if (!s->L) {
        m_destroy(s);
        snprintf(err, cap, "out of memory");
        return UQ_ERR_NOMEM;
    }
    char what[96];
    for (int64_t l = 0; l < s->nl && st == UQ_OK; l++) {
        const uq_cuda_layer *src = &m->layers[l];
        dlayer *d = &s->L[l];
        const uq_cuda_matrix *ms[7] = {&src->wq, &src->wk, &src->wv, &src->wo, &src->wgate, &src->wup, &src->wdown};
        dmat *ds[7] = {&d->wq, &d->wk, &d->wv, &d->wo, &d->wg, &d->wu, &d->wd};
        static const char *names[7] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
        for (int i = 0; i < 7 && st == UQ_OK; i++) {
            snprintf(what, sizeof what, "layer %lld %s", (long long)l, names[i]);
            st = upload_matrix(s, ms[i], what, ds[i], err, cap);
        }
        if (st != UQ_OK) break;
        d->attn_norm = upload_vec(s, src->attn_norm, s->dim, &e);
        d->ffn_norm = upload_vec(s, src->ffn_norm, s->dim, &e);
        d->bq = upload_vec(s, src->bq, s->q_dim, &e);
        d->bk = upload_vec(s, src->bk, s->kv_dim, &e);
        d->bv = upload_vec(s, src->bv, s->kv_dim, &e);
        d->bo = upload_vec(s, src->bo, s->dim, &e);
        if (e != cudaSuccess) st = fail_cuda(e, "uploading the norms", err, cap);
    }
    if (st == UQ_OK) st = upload_matrix(s, &m->embed, "the embedding", &s->embed, err, cap);
    if (st == UQ_OK) {
        if (m->lm_head.data == m->embed.data)
            s->head = s->embed;
        else
            st = upload_matrix(s, &m->lm_head, "the output head", &s->head, err, cap);
    }
    if (st != UQ_OK) {
        m_destroy(s);
        return st;
    }
    const int64_t half = s->hd / 2;
    s->final_norm = upload_vec(s, m->final_norm, s->dim, &e);
    s->rope_cos = upload_vec(s, m->rope_cos, s->n_ctx * half, &e);
    s->rope_sin = upload_vec(s, m->rope_sin, s->n_ctx * half, &e);
    s->seq_stride = s->nl * s->n_ctx * s->kv_dim;
    size_t kv = (size_t)s->n_seq * (size_t)s->seq_stride * sizeof(float);
    s->kc = (float *)dalloc(s, kv, &e);
    s->vc = (float *)dalloc(s, kv, &e);
    const size_t nb = (size_t)s->nbuf;
    s->x = (float *)dalloc(s, nb * s->dim * 4, &e);
    s->xn = (float *)dalloc(s, nb * s->dim * 4, &e);
    s->qkv = (float *)dalloc(s, nb * s->ldq * 4, &e);
    s->att = (float *)dalloc(s, nb * s->q_dim * 4, &e);
    s->gu = (float *)dalloc(s, nb * 2 * s->ff * 4, &e);
    s->h = (float *)dalloc(s, nb * s->ff * 4, &e);
    s->logits = (float *)dalloc(s, nb * s->vocab * 4, &e);
    s->sh = (uint16_t *)dalloc(s, nb * s->maxk * 2, &e);
    s->sl = (uint16_t *)dalloc(s, nb * s->maxk * 2, &e);
    if (s->nbuf >= s->gemm_min && s->nl > 0 && s->L[0].wq.quantized) {
        /* the largest product of a layer: q, k, v together, gate and up together, o, down */
        int64_t m = (s->q_dim + 2 * s->kv_dim) * s->dim;
        if (2 * s->ff * s->dim > m) m = 2 * s->ff * s->dim;
        if (s->q_dim * s->dim > m) m = s->q_dim * s->dim;
        s->hh = (uint16_t *)dalloc(s, nb * s->ff * 2, &e);
        /* the scratch of gate/up (pscr[2]) holds the largest product: the
         * one-stream path expands every product there */
        const int64_t pe[4] = {(s->q_dim + 2 * s->kv_dim) * s->dim, s->q_dim * s->dim, m, s->ff * s->dim};
        for (int p = 0; p < 4; p++) {
            s->pscr_elems[p] = pe[p];
            s->pscr[p] = (uint16_t *)dalloc(s, (size_t)pe[p] * 2, &e);
        }
        if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&s->st2, cudaStreamNonBlocking);
        for (int i = 0; i < 4 && e == cudaSuccess; i++) {
            e = cudaEventCreateWithFlags(&s->ev_ready[i], cudaEventDisableTiming);
            if (e == cudaSuccess) e = cudaEventCreateWithFlags(&s->ev_used[i], cudaEventDisableTiming);
        }
        if (e == cudaSuccess) e = cudaEventCreateWithFlags(&s->ev_start, cudaEventDisableTiming);
    }
    s->ids_d = (int32_t *)dalloc(s, nb * 4, &e);
    s->picked_d = (int32_t *)dalloc(s, nb * 4, &e);
    s->dyn_d = (int64_t *)dalloc(s, DYN_SLOTS * sizeof(int64_t), &e);
    s->probs = (float *)dalloc(s, (size_t)s->vocab * sizeof(float), &e);
    s->att_scratch = (float *)dalloc(s, (size_t)8 * s->nh * ATT_SPLITS * ATT_PART * sizeof(float), &e);
    s->att_counters = (int *)dalloc(s, (size_t)8 * s->nh * sizeof(int), &e);
    if (e == cudaSuccess) e = cudaMemset(s->att_counters, 0, (size_t)8 * s->nh * sizeof(int));
    s->att_ready = (int *)dalloc(s, 2 * sizeof(int), &e);
    if (e == cudaSuccess) e = cudaMemset(s->att_ready, 0, 2 * sizeof(int));
    s->attn_gemv = 1;
    if (e == cudaSuccess) e = cudaMallocHost((void **)&s->dyn_h, DYN_SLOTS * sizeof(int64_t));
    if (e == cudaSuccess) e = cudaMallocHost((void **)&s->ids_h, nb * 4);
    /* the caches start as zeros so that no step ever reads uninitialized memory */
    if (e == cudaSuccess) e = cudaMemset(s->kc, 0, kv);
    if (e == cudaSuccess) e = cudaMemset(s->vc, 0, kv);
    if (e == cudaSuccess) e = cudaMemset(s->x, 0, nb * s->dim * 4);
    if (e == cudaSuccess) e = cudaMemset(s->xn, 0, nb * s->dim * 4);
    if (e == cudaSuccess) e = cudaMemset(s->h, 0, nb * s->ff * 4);
    if (e == cudaSuccess) e = cudaMemset(s->att, 0, nb * s->q_dim * 4);
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    s->pipe_ok = s->pscr[3] && s->st2;
    for (int64_t l = 0; l < s->nl && s->pipe_ok; l++) s->pipe_ok = layer_pipe_ok(s, &s->L[l]);
    s->codes_ok = s->hh != NULL;
    for (int64_t l = 0; l < s->nl && s->codes_ok; l++) s->codes_ok = layer_codes_ok(s, l);
    if (e != cudaSuccess) {
        st = fail_cuda(e, "allocating the caches and activations", err, cap);
        m_destroy(s);
        return st;
    }
    *state = s;
    return UQ_OK;
}

/* ------------------------------------------------------------ products */

static int same_format(const dmat *a, const dmat *b)
{
    return dmat_fmt(a) == dmat_fmt(b) && a->group == b->group && a->dtype == b->dtype && a->cols == b->cols;
}

static void set_seg(mm_seg *g, const dmat *w, const float *bias, int64_t out_off)
{
    memset(g, 0, sizeof *g);
    g->w = w->w;
    g->s = w->s;
    g->b = w->b;
    g->bias = bias;
    g->rows = w->rows;
    g->wpr = w->wpr;
    g->out_off = out_off;
    g->scheme = w->scheme;
    g->group = w->group;
    g->sdt = w->dtype;
}

static void base_args(mm_args *a, const dmat *w0, int mode, const float *x, int64_t ldx, int n, float *y,
                      int64_t ldy)
{
    memset(a, 0, sizeof *a);
    a->fmt = dmat_fmt(w0);
    a->mode = mode;
    a->K = w0->cols;
    a->n = n;
    a->x = x;
    a->ldx = ldx;
    a->y = y;
    a->ldy = ldy;
    a->in_step = 1;
}

/* The GEMM input: x split into 16-bit halves (bf16 for bf16 weights, else
 * f16; quantized weights use only the first, x rounded to f16). */
static cudaError_t gemm_input(mstate *s, const dmat *const *w, const float *x, int64_t ldx, int n, mm_args *a)
{
    a->xh = s->sh;
    a->xl = s->sl;
    return launch_split(x, ldx, NULL, 0.0, n, w[0]->cols, dmat_fmt(w[0]) != FMT_BF16, s->sh, s->sl, s->st);
}

/* The GEMM launch of the one-stream path (layers the pipeline does not
 * take): 4-bit weights straight on their codes when gemm_codes has any bit
 * set, other quantized weights that fit the scratch through the dense f16
 * path (dequantized first), the rest dequantized in the GEMM's loop. */
static int gemm_dense_ok(const mstate *s, const dmat *const *w, int nw)
{
    int64_t elems = 0;
    for (int i = 0; i < nw; i++) elems += w[i]->rows * w[i]->cols;
    return s->gemm_dequant && s->pscr[2] && w[0]->quantized && elems <= s->pscr_elems[2];
}

static cudaError_t gemm_launch(mstate *s, const dmat *const *w, int nw, mm_args *a)
{
    if (s->gemm_codes && s->gemm_dequant && gemm_codes_ok(a)) return launch_gemm_codes(a, s->st);
    if (gemm_dense_ok(s, w, nw)) return launch_gemm_dequant(a, s->pscr[2], s->st);
    return launch_gemm(a, s->st);
}

/* y (+)= x . W^T for one weight, whatever path suits it. */
static cudaError_t mm_one(mstate *s, const dmat *w, const float *bias, int64_t out_off, int mode, const float *x,
                          int64_t ldx, int n, float *y, int64_t ldy)
{
    mm_args a;
    base_args(&a, w, mode, x, ldx, n, y, ldy);
    a.nseg = 1;
    set_seg(&a.seg[0], w, bias, out_off);
    if (n >= s->gemm_min && gemm_supported(w)) {
        cudaError_t e = gemm_input(s, &w, x, ldx, n, &a);
        return e != cudaSuccess ? e : gemm_launch(s, &w, 1, &a);
    }
    if (n <= 8 && gemv_supported(w) && gemv_stages_x(w->cols, n)) return launch_gemv(&a, s->st);
    if (n > 8 && gemv_supported(w) && gemv_stages_x(w->cols, 8)) {
        /* GEMV kernels in slices of 8 tokens */
        for (int j = 0; j < n; j += 8) {
            mm_args b = a;
            b.n = n - j < 8 ? n - j : 8;
            b.x = x + (int64_t)j * ldx;
            b.y = y + (int64_t)j * ldy;
            cudaError_t e = launch_gemv(&b, s->st);
            if (e != cudaSuccess) return e;
        }
        return cudaSuccess;
    }
    return launch_matmul_generic(&a, s->st);
}

/* Products of the weights w[0..nw) with one input, their outputs side by side. */
/* Whether mm_fused / mm_swiglu run these weights through one GEMV launch
 * with x in shared memory, which can fuse the RMSNorm before them. */
static int gemv_fusable(const mstate *s, const dmat *const *w, int nw, int n)
{
    if (n >= s->gemm_min || n > 8) return 0;
    for (int i = 0; i < nw; i++)
        if (!same_format(w[i], w[0]) || !gemv_supported(w[i])) return 0;
    return gemv_stages_x(w[0]->cols, n);
}

static cudaError_t mm_fused(mstate *s, const dmat *const *w, int nw, const float *const *bias, const int64_t *out_off,
                            int mode, const float *x, int64_t ldx, int n, float *y, int64_t ldy, const float *norm_w)
{
    int same = 1, gemm_ok = 1, gemv_ok = 1;
    for (int i = 0; i < nw; i++) {
        same &= same_format(w[i], w[0]);
        gemm_ok &= gemm_supported(w[i]);
        gemv_ok &= gemv_supported(w[i]);
    }
    gemv_ok = gemv_ok && gemv_stages_x(w[0]->cols, n);
    const int use_gemm = n >= s->gemm_min;
    if (same && ((use_gemm && gemm_ok) || (!use_gemm && n <= 8 && gemv_ok))) {
        mm_args a;
        base_args(&a, w[0], mode, x, ldx, n, y, ldy);
        a.nseg = nw;
        for (int i = 0; i < nw; i++) set_seg(&a.seg[i], w[i], bias ? bias[i] : NULL, out_off ? out_off[i] : 0);
        if (use_gemm) {
            cudaError_t e = gemm_input(s, w, x, ldx, n, &a);
            return e != cudaSuccess ? e : gemm_launch(s, w, nw, &a);
        }
        a.norm_w = norm_w;
        a.norm_eps = s->eps;
        return launch_gemv(&a, s->st);
    }
    for (int i = 0; i < nw; i++) {
        cudaError_t e = mm_one(s, w[i], bias ? bias[i] : NULL, out_off ? out_off[i] : 0, mode, x, ldx, n, y, ldy);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

/* h = silu(x . Wg^T) * (x . Wu^T) */
static cudaError_t mm_swiglu(mstate *s, const dmat *wg, const dmat *wu, const float *x, int n, float *h,
                             const float *norm_w)
{
    if (n < s->gemm_min && n <= 8 && same_format(wg, wu) && gemv_supported(wg) && gemv_stages_x(wg->cols, n)) {
        mm_args a;
        base_args(&a, wg, MM_SWIGLU, x, s->dim, n, h, s->ff);
        a.norm_w = norm_w;
        a.norm_eps = s->eps;
        a.nseg = 2;
        set_seg(&a.seg[0], wg, NULL, 0);
        set_seg(&a.seg[1], wu, NULL, 0);
        return launch_gemv(&a, s->st);
    }
    const dmat *w[2] = {wg, wu};
    const int64_t off[2] = {0, s->ff};
    cudaError_t e = mm_fused(s, w, 2, NULL, off, MM_STORE, x, s->dim, n, s->gu, 2 * s->ff, NULL);
    return e != cudaSuccess ? e : launch_swiglu(s->gu, n, s->ff, h, s->st);
}

/* ------------------------------------------------------------ forward */

static cudaError_t attention_and_o(mstate *s, int64_t l, int n);
static cudaError_t run_layer_gemm(mstate *s, int64_t l, int n);
static int layer_gemm_ok(const mstate *s, const dlayer *L, int n);

static cudaError_t run_layer(mstate *s, int64_t l, int n)
{
    if (layer_gemm_ok(s, &s->L[l], n)) return run_layer_gemm(s, l, n);
    const dlayer *L = &s->L[l];
    cudaError_t e;
    const dmat *qkv[3] = {&L->wq, &L->wk, &L->wv};
    const float *qkv_bias[3] = {L->bq, L->bk, L->bv};
    const int64_t qkv_off[3] = {0, s->q_dim, s->q_dim + s->kv_dim};
    if (gemv_fusable(s, qkv, 3, n)) {
        /* RMSNorm inside the GEMV */
        e = mm_fused(s, qkv, 3, qkv_bias, qkv_off, MM_STORE, s->x, s->dim, n, s->qkv, s->ldq, L->attn_norm);
    } else {
        e = launch_rmsnorm(s->x, L->attn_norm, s->xn, n, s->dim, s->eps, s->st);
        if (e == cudaSuccess)
            e = mm_fused(s, qkv, 3, qkv_bias, qkv_off, MM_STORE, s->xn, s->dim, n, s->qkv, s->ldq, NULL);
    }
    if (e != cudaSuccess) return e;
    if ((e = attention_and_o(s, l, n)) != cudaSuccess) return e;
    const dmat *gu[2] = {&L->wg, &L->wu};
    if (gemv_fusable(s, gu, 2, n)) {
        e = mm_swiglu(s, &L->wg, &L->wu, s->x, n, s->h, L->ffn_norm);
    } else {
        e = launch_rmsnorm(s->x, L->ffn_norm, s->xn, n, s->dim, s->eps, s->st);
        if (e == cudaSuccess) e = mm_swiglu(s, &L->wg, &L->wu, s->xn, n, s->h, NULL);
    }
    if (e != cudaSuccess) return e;
    return mm_one(s, &L->wd, NULL, 0, MM_ADD, s->h, s->ff, n, s->x, s->dim);
}

/* The arguments of RoPE, the cache store and attention of layer l for n
 * tokens: s->qkv to s->att, or (out_h, prefill kernel) straight to the O
 * product's f16 input. */
static void attn_prep(mstate *s, int64_t l, int n, uint16_t *out_h, attn_args *a)
{
    attn_args aa;
    memset(&aa, 0, sizeof aa);
    aa.qkv = s->qkv;
    aa.ldq = s->ldq;
    aa.kc = s->kc + l * s->n_ctx * s->kv_dim;
    aa.vc = s->vc + l * s->n_ctx * s->kv_dim;
    aa.seq_stride = s->seq_stride;
    aa.rope_cos = s->rope_cos;
    aa.rope_sin = s->rope_sin;
    aa.dyn = s->dyn_d;
    aa.out = s->att;
    aa.n = n;
    aa.n_heads = (int)s->nh;
    aa.n_kv = (int)s->nkv;
    aa.head_dim = (int)s->hd;
    aa.kv_dim = s->kv_dim;
    aa.q_dim = s->q_dim;
    /* decode splits positions over at most 32 blocks of 16 or more (short
     * contexts: more blocks, each with a shorter serial pass over the
     * values); the scratch holds the partial results of 8 tokens, so longer
     * steps that take this kernel (head sizes the prefill kernel lacks) use
     * one block */
    aa.split_len = n > 8 ? s->n_ctx : (s->n_ctx + 31) / 32 < 16 ? 16 : (s->n_ctx + 31) / 32;
    aa.scratch = s->att_scratch;
    aa.counters = s->att_counters;
    /* one token through the decode kernel: RoPE and the cache store in it */
    aa.fused = n == 1 && n < s->gemm_min && s->hd % 4 == 0 && s->kv_dim % 4 == 0;
    aa.out_h = out_h;
    aa.ready = s->att_ready;
    *a = aa;
}

static cudaError_t run_attention(mstate *s, const attn_args *aa)
{
    cudaError_t e;
    if (!aa->fused && (e = launch_rope_store(aa, s->st)) != cudaSuccess) return e;
    return launch_attention(aa, aa->n >= s->gemm_min, s->st);
}

static cudaError_t attention_of(mstate *s, int64_t l, int n, uint16_t *out_h)
{
    attn_args aa;
    attn_prep(s, l, n, out_h, &aa);
    return run_attention(s, &aa);
}

/* Attention and the O product of layer l (run_layer): one kernel for one
 * token where the integer-MMA GEMV takes the O product (its blocks, resident
 * early, run the attention first: gemv_mma.cu), else two. */
static cudaError_t attention_and_o(mstate *s, int64_t l, int n)
{
    const dlayer *L = &s->L[l];
    attn_args aa;
    attn_prep(s, l, n, NULL, &aa);
    if (s->attn_gemv && n == 1 && n < s->gemm_min && gemv_supported(&L->wo) && gemv_stages_x(L->wo.cols, n)) {
        mm_args a;
        base_args(&a, &L->wo, MM_ADD, s->att, s->q_dim, n, s->x, s->dim);
        a.nseg = 1;
        set_seg(&a.seg[0], &L->wo, L->bo, 0);
        a.attn = 1;
        a.att = aa;
        if (gemv_mma_attn_ok(&a)) return launch_gemv(&a, s->st);
    }
    cudaError_t e = run_attention(s, &aa);
    return e != cudaSuccess ? e : mm_one(s, &L->wo, L->bo, 0, MM_ADD, s->att, s->q_dim, n, s->x, s->dim);
}

/* A layer whose products all take the tensor-core GEMM (many tokens): each
 * product's input is normalized (when it follows an RMSNorm) and split into
 * 16-bit halves by one kernel; with quantized weights through the dense
 * path, the gate / up GEMM applies SwiGLU itself and writes h in f16, the
 * down product's input. The same results as run_layer. */
static int layer_gemm_ok(const mstate *s, const dlayer *L, int n)
{
    const dmat *w[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
    if (n < s->gemm_min) return 0;
    for (int i = 0; i < 7; i++)
        if (!gemm_supported(w[i])) return 0;
    return same_format(&L->wq, &L->wk) && same_format(&L->wq, &L->wv) && same_format(&L->wg, &L->wu);
}

static cudaError_t gemm_product(mstate *s, const dmat *const *w, int nw, const float *const *bias, const int64_t *off,
                                int mode, int n, float *y, int64_t ldy, const uint16_t *xh, const uint16_t *xl)
{
    mm_args a;
    base_args(&a, w[0], mode, NULL, 0, n, y, ldy);
    a.xh = xh;
    a.xl = xl;
    a.nseg = nw;
    for (int i = 0; i < nw; i++) set_seg(&a.seg[i], w[i], bias ? bias[i] : NULL, off ? off[i] : 0);
    return gemm_launch(s, w, nw, &a);
}

/* Whether attention of n tokens takes the prefill kernel, which can write
 * its output as f16 halves. */
static int attn_f16_ok(const mstate *s, int n)
{
    return n >= s->gemm_min && attn_prefill_kernel(s->hd, s->kv_dim, s->ldq);
}

/* The arguments of product p (0 q/k/v, 1 o, 2 gate/up in the SwiGLU mode,
 * 3 down) of layer l for n tokens, its input in 16-bit halves. */
static void layer_args(mstate *s, int64_t l, int p, int n, mm_args *a)
{
    const dlayer *L = &s->L[l];
    if (p == 0) {
        base_args(a, &L->wq, MM_STORE, NULL, 0, n, s->qkv, s->ldq);
        a->nseg = 3;
        set_seg(&a->seg[0], &L->wq, L->bq, 0);
        set_seg(&a->seg[1], &L->wk, L->bk, s->q_dim);
        set_seg(&a->seg[2], &L->wv, L->bv, s->q_dim + s->kv_dim);
    } else if (p == 1) {
        base_args(a, &L->wo, MM_ADD, NULL, 0, n, s->x, s->dim);
        a->nseg = 1;
        set_seg(&a->seg[0], &L->wo, L->bo, 0);
    } else if (p == 2) {
        base_args(a, &L->wg, MM_SWIGLU, NULL, 0, n, NULL, 0);
        a->nseg = 2;
        set_seg(&a->seg[0], &L->wg, NULL, 0);
        set_seg(&a->seg[1], &L->wu, NULL, 0);
        a->yh = s->hh;
        a->ldyh = s->ff;
    } else {
        base_args(a, &L->wd, MM_ADD, NULL, 0, n, s->x, s->dim);
        a->nseg = 1;
        set_seg(&a->seg[0], &L->wd, NULL, 0);
    }
    a->xh = p == 3 ? s->hh : s->sh;
    a->xl = s->sl;
}

/* Whether layer L can take the pipelined prefill: every product quantized
 * and dense (q/k/v and gate/up in the first scratch, o and down in the
 * second), gate / up in the SwiGLU mode. */
static int layer_pipe_ok(mstate *s, const dlayer *L)
{
    const dmat *w[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
    for (int i = 0; i < 7; i++)
        if (!w[i]->quantized || !gemm_supported(w[i]) || w[i]->bits != w[0]->bits) return 0;
    if (!same_format(&L->wq, &L->wk) || !same_format(&L->wq, &L->wv) || !same_format(&L->wg, &L->wu)) return 0;
    if ((L->wq.rows + L->wk.rows + L->wv.rows) * L->wq.cols > s->pscr_elems[0]) return 0;
    if (L->wo.rows * L->wo.cols > s->pscr_elems[1]) return 0;
    if ((L->wg.rows + L->wu.rows) * L->wg.cols > s->pscr_elems[2]) return 0;
    if (L->wd.rows * L->wd.cols > s->pscr_elems[3]) return 0;
    mm_args a;
    memset(&a, 0, sizeof a);
    a.nseg = 2;
    set_seg(&a.seg[0], &L->wg, NULL, 0);
    set_seg(&a.seg[1], &L->wu, NULL, 0);
    return gemm_swiglu_ok(&a);
}

/* Whether every product of layer l takes the GEMM on 4-bit codes (gate and
 * up in the SwiGLU mode, the down product's input h in f16). */
static int layer_codes_ok(mstate *s, int64_t l)
{
    for (int p = 0; p < 4; p++) {
        mm_args a;
        layer_args(s, l, p, s->gemm_min, &a);
        if (!gemm_codes_ok(&a)) return 0;
    }
    return 1;
}

/* How the products of a prefill step get their weights (option gemm_codes):
 * bit p set, product p (0 q/k/v, 1 o, 2 gate/up, 3 down) runs on its 4-bit
 * codes, else its weights are expanded to f16 first, on the second stream
 * into the product's own scratch, a layer ahead. */
static int pipe_expands(int codes, int p) { return !((codes >> p) & 1); }

/* Product p of layer l through its scratch: expanded on the second stream
 * once the GEMM that last read the scratch (p of the layer before) is done
 * (gemm 0), or its GEMM on the main stream once the expansion is done (gemm
 * 1). */
static cudaError_t pipe_launch(mstate *s, int64_t l, int p, int n, int gemm)
{
    cudaStream_t st = gemm ? s->st : s->st2;
    mm_args a;
    layer_args(s, l, p, n, &a);
    cudaError_t e = cudaStreamWaitEvent(st, gemm ? s->ev_ready[p] : s->ev_used[p], 0);
    if (e == cudaSuccess) e = gemm ? launch_gemm_dense(&a, s->pscr[p], st) : launch_dequant(&a, s->pscr[p], st);
    return e != cudaSuccess ? e : cudaEventRecord(gemm ? s->ev_used[p] : s->ev_ready[p], st);
}

/* Product p of layer l: on its codes, or its dense GEMM followed by the
 * expansion of the same product of the next layer. */
static cudaError_t pipe_product(mstate *s, int64_t l, int p, int n, int codes)
{
    if (!pipe_expands(codes, p)) {
        mm_args a;
        layer_args(s, l, p, n, &a);
        return launch_gemm_codes(&a, s->st);
    }
    cudaError_t e = pipe_launch(s, l, p, n, 1);
    if (e == cudaSuccess && l + 1 < s->nl) e = pipe_launch(s, l + 1, p, n, 0);
    return e;
}

/* The pipelined layer: each product's weights expanded on the second stream
 * (or read as codes) while the main stream runs the products and attention
 * before it. */
static cudaError_t run_layer_pipe(mstate *s, int64_t l, int n, int codes)
{
    const dlayer *L = &s->L[l];
    cudaError_t e = cudaSuccess;
    if (l == 0 && codes != 15) {
        /* the second stream starts after everything before this step */
        e = cudaEventRecord(s->ev_start, s->st);
        if (e == cudaSuccess) e = cudaStreamWaitEvent(s->st2, s->ev_start, 0);
        for (int p = 0; p < 4 && e == cudaSuccess; p++)
            if (pipe_expands(codes, p)) e = pipe_launch(s, 0, p, n, 0);
    }
    if (e == cudaSuccess) e = launch_split(s->x, s->dim, L->attn_norm, s->eps, n, s->dim, 1, s->sh, NULL, s->st);
    if (e == cudaSuccess) e = pipe_product(s, l, 0, n, codes);
    /* attention writes the O product's f16 input itself */
    if (e == cudaSuccess) e = attention_of(s, l, n, attn_f16_ok(s, n) ? s->sh : NULL);
    if (e == cudaSuccess && !attn_f16_ok(s, n))
        e = launch_split(s->att, s->q_dim, NULL, 0.0, n, s->q_dim, 1, s->sh, NULL, s->st);
    if (e == cudaSuccess) e = pipe_product(s, l, 1, n, codes);
    if (e == cudaSuccess) e = launch_split(s->x, s->dim, L->ffn_norm, s->eps, n, s->dim, 1, s->sh, NULL, s->st);
    if (e == cudaSuccess) e = pipe_product(s, l, 2, n, codes);
    if (e == cudaSuccess) e = pipe_product(s, l, 3, n, codes);
    return e;
}

static cudaError_t run_layer_gemm(mstate *s, int64_t l, int n)
{
    if (s->gemm_dequant && s->codes_ok && s->gemm_codes == 15) return run_layer_pipe(s, l, n, 15);
    if (s->gemm_dequant && s->pipe_ok && s->gemm_pipe) return run_layer_pipe(s, l, n, s->codes_ok ? s->gemm_codes : 0);
    const dlayer *L = &s->L[l];
    const dmat *qkv[3] = {&L->wq, &L->wk, &L->wv};
    const float *qkv_bias[3] = {L->bq, L->bk, L->bv};
    const int64_t qkv_off[3] = {0, s->q_dim, s->q_dim + s->kv_dim};
    const dmat *wo = &L->wo, *wd = &L->wd, *gu[2] = {&L->wg, &L->wu};
#define F16_IN(w) (dmat_fmt(w) != FMT_BF16)
#define LO(w) ((w)->quantized ? NULL : s->sl)
    cudaError_t e =
        launch_split(s->x, s->dim, L->attn_norm, s->eps, n, s->dim, F16_IN(&L->wq), s->sh, LO(&L->wq), s->st);
    if (e == cudaSuccess) e = gemm_product(s, qkv, 3, qkv_bias, qkv_off, MM_STORE, n, s->qkv, s->ldq, s->sh, s->sl);
    if (e == cudaSuccess) e = attention_of(s, l, n, NULL);
    if (e == cudaSuccess) e = launch_split(s->att, s->q_dim, NULL, 0.0, n, s->q_dim, F16_IN(wo), s->sh, LO(wo), s->st);
    if (e == cudaSuccess) e = gemm_product(s, &wo, 1, &L->bo, NULL, MM_ADD, n, s->x, s->dim, s->sh, s->sl);
    if (e == cudaSuccess)
        e = launch_split(s->x, s->dim, L->ffn_norm, s->eps, n, s->dim, F16_IN(gu[0]), s->sh, LO(gu[0]), s->st);
    if (e != cudaSuccess) return e;
    mm_args a;
    base_args(&a, gu[0], MM_SWIGLU, NULL, 0, n, NULL, 0);
    a.xh = s->sh;
    a.xl = s->sl;
    a.nseg = 2;
    set_seg(&a.seg[0], gu[0], NULL, 0);
    set_seg(&a.seg[1], gu[1], NULL, 0);
    const int codes = s->gemm_codes && s->gemm_dequant && gemm_codes_ok(&a);
    if (s->hh && (codes || gemm_dense_ok(s, gu, 2)) && gemm_swiglu_ok(&a) && wd->quantized) {
        /* h in f16 straight from the GEMM: the down product's input */
        a.yh = s->hh;
        a.ldyh = s->ff;
        e = gemm_launch(s, gu, 2, &a);
        return e != cudaSuccess ? e : gemm_product(s, &wd, 1, NULL, NULL, MM_ADD, n, s->x, s->dim, s->hh, s->sl);
    }
    const int64_t off[2] = {0, s->ff};
    e = gemm_product(s, gu, 2, NULL, off, MM_STORE, n, s->gu, 2 * s->ff, s->sh, s->sl);
    if (e == cudaSuccess) e = launch_swiglu(s->gu, n, s->ff, s->h, s->st);
    if (e == cudaSuccess) e = launch_split(s->h, s->ff, NULL, 0.0, n, s->ff, F16_IN(wd), s->sh, LO(wd), s->st);
    return e != cudaSuccess ? e : gemm_product(s, &wd, 1, NULL, NULL, MM_ADD, n, s->x, s->dim, s->sh, s->sl);
#undef F16_IN
#undef LO
}

/* Everything of one step of n tokens; the logits (and the tokens picked
 * from them) of the last rows_out tokens when rows_out > 0. */
static cudaError_t run_step(mstate *s, int n, int rows_out)
{
    cudaError_t e = launch_embed(s->ids_d, n, &s->embed, s->x, s->st);
    for (int64_t l = 0; l < s->nl && e == cudaSuccess; l++) e = run_layer(s, l, n);
    if (e != cudaSuccess || rows_out <= 0) return e;
    const float *xl = s->x + (int64_t)(n - rows_out) * s->dim;
    const dmat *hw = &s->head;
    if (gemv_fusable(s, &hw, 1, rows_out)) {
        e = mm_fused(s, &hw, 1, NULL, NULL, MM_STORE, xl, s->dim, rows_out, s->logits, s->vocab, s->final_norm);
    } else {
        e = launch_rmsnorm(xl, s->final_norm, s->xn, rows_out, s->dim, s->eps, s->st);
        if (e == cudaSuccess) e = mm_one(s, &s->head, NULL, 0, MM_STORE, s->xn, s->dim, rows_out, s->logits, s->vocab);
    }
    if (e == cudaSuccess)
        e = launch_pick(s->logits, rows_out, s->vocab, (const uq_cuda_pick *)(s->dyn_d + DYN_PICK), 0, s->probs,
                        s->picked_d, s->st);
    return e;
}

/* A single-token step through a graph captured on first use. */
static cudaError_t run_step_graph(mstate *s, int rows_out)
{
    const int gi = rows_out > 0;
    if (s->graph_state[gi] == 0) {
        cudaGraph_t g = NULL;
        cudaError_t e = cudaStreamBeginCapture(s->st, cudaStreamCaptureModeThreadLocal);
        if (e != cudaSuccess) return e;
        cudaError_t le = run_step(s, 1, rows_out);
        e = cudaStreamEndCapture(s->st, &g);
        if (le == cudaSuccess && e == cudaSuccess) e = cudaGraphInstantiate(&s->graph[gi], g, 0);
        if (g) cudaGraphDestroy(g);
        if (le != cudaSuccess) return le;
        if (e != cudaSuccess) {
            /* run without graphs from now on */
            cudaGetLastError();
            s->graph_state[gi] = -1;
            return run_step(s, 1, rows_out);
        }
        s->graph_state[gi] = 1;
    }
    if (s->graph_state[gi] < 0) return run_step(s, 1, rows_out);
    return cudaGraphLaunch(s->graph[gi], s->st);
}

static int m_forward(void *state, int seq, const int32_t *ids, int64_t n, int64_t pos, float *logits, int all_logits,
                     const uq_cuda_pick *pick, int32_t *picked, char *err, size_t cap)
{
    mstate *s = (mstate *)state;
    uq_cuda_pick greedy;
    memset(&greedy, 0, sizeof greedy);
    if (!pick || !(pick->temperature > 0.0f)) pick = &greedy;
    if (pick != &greedy && all_logits && n > 1) {
        snprintf(err, cap, "a drawn token takes one row of logits (not all_logits over %lld tokens)", (long long)n);
        return UQ_ERR_ARG;
    }
    if (pick != &greedy && !(pick->r >= 0.0 && pick->r < 1.0)) {
        snprintf(err, cap, "the uniform draw %g is outside [0, 1)", pick->r);
        return UQ_ERR_ARG;
    }
    if (seq < 0 || seq >= s->n_seq || pos < 0 || n < 0 || pos + n > s->n_ctx) {
        snprintf(err, cap, "tokens [%lld, %lld) of sequence %d do not fit the context (%lld positions, %d sequences)",
                 (long long)pos, (long long)(pos + n), seq, (long long)s->n_ctx, s->n_seq);
        return UQ_ERR_ARG;
    }
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->vocab) {
            snprintf(err, cap, "token id %d is outside the vocabulary (%lld)", ids[i], (long long)s->vocab);
            return UQ_ERR_ARG;
        }
    CK(cudaSetDevice(device_index()), "selecting the device");
    for (int64_t off = 0; off < n; off += s->nb) {
        const int m = (int)(n - off < s->nb ? n - off : s->nb);
        const int last = off + m == n;
        const int want = (logits || picked) && (all_logits || last);
        const int rows_out = want ? (all_logits ? m : 1) : 0;
        s->dyn_h[0] = pos + off;
        s->dyn_h[1] = seq;
        memcpy(s->dyn_h + DYN_PICK, pick, sizeof *pick);
        memcpy(s->ids_h, ids + off, (size_t)m * sizeof(int32_t));
        CK(cudaMemcpyAsync(s->dyn_d, s->dyn_h, DYN_SLOTS * sizeof(int64_t), cudaMemcpyHostToDevice, s->st),
           "copying to the GPU");
        CK(cudaMemcpyAsync(s->ids_d, s->ids_h, (size_t)m * 4, cudaMemcpyHostToDevice, s->st), "copying to the GPU");
        if (m == 1 && s->use_graphs)
            CK(run_step_graph(s, rows_out), "running the forward pass");
        else
            CK(run_step(s, m, rows_out), "running the forward pass");
        if (rows_out > 0 && logits)
            CK(cudaMemcpyAsync(logits + (all_logits ? off * s->vocab : 0), s->logits,
                               (size_t)rows_out * (size_t)s->vocab * sizeof(float), cudaMemcpyDeviceToHost, s->st),
               "copying the logits");
        if (rows_out > 0 && picked)
            CK(cudaMemcpyAsync(picked + (all_logits ? off : 0), s->picked_d, (size_t)rows_out * sizeof(int32_t),
                               cudaMemcpyDeviceToHost, s->st),
               "copying the tokens");
        CK(cudaStreamSynchronize(s->st), "running the forward pass");
    }
    return UQ_OK;
}

/* The decode graphs, captured with the launches as they were: captured
 * again at the next step. */
static void drop_graphs(mstate *s)
{
    for (int i = 0; i < 2; i++) {
        if (s->graph_state[i] == 1) cudaGraphExecDestroy(s->graph[i]);
        s->graph_state[i] = 0;
    }
}

static int m_set_option(void *state, const char *key, int64_t value)
{
    mstate *s = (mstate *)state;
    if (strcmp(key, "graphs") == 0) {
        s->use_graphs = value != 0;
        return UQ_OK;
    }
    if (strcmp(key, "pdl") == 0) {
        uq_cuda_pdl = value != 0;
        drop_graphs(s);
        return UQ_OK;
    }
    if (strcmp(key, "attn_gemv") == 0) {
        s->attn_gemv = value != 0;
        drop_graphs(s);
        return UQ_OK;
    }
    if (strcmp(key, "gemv_mma") == 0 && value >= 0 && value <= 2) {
        uq_cuda_gemv_mma = (int)value;
        drop_graphs(s);
        return UQ_OK;
    }
    if (strcmp(key, "gemm_bn") == 0 && (value == 0 || value == 64 || value == 128)) {
        uq_cuda_gemm_bn = (int)value;
        return UQ_OK;
    }
    if (strcmp(key, "gemm_wgmma") == 0) {
        uq_cuda_gemm_wgmma = value != 0;
        return UQ_OK;
    }
    if (strcmp(key, "gemm_wg_cfg") == 0 && value >= 0 && value <= 2) {
        uq_cuda_gemm_wg_cfg = (int)value;
        return UQ_OK;
    }
    if (strcmp(key, "gemm_pipe") == 0) {
        s->gemm_pipe = value != 0;
        return UQ_OK;
    }
    if (strcmp(key, "gemm_codes") == 0 && value >= -1 && value <= 15) {
        s->gemm_codes = value < 0 ? gemm_codes_default() : (int)value;
        return UQ_OK;
    }
    if (strcmp(key, "gemm_dequant") == 0) {
        s->gemm_dequant = value != 0;
        return UQ_OK;
    }
    if (strcmp(key, "gemm_min_tokens") == 0 && value >= 1) {
        s->gemm_min = (int)value;
        drop_graphs(s);
        return UQ_OK;
    }
    return UQ_ERR_ARG;
}

static int m_quantize(int scheme, int bits, int group_size, int scale_dtype, int src_dtype, const void *src,
                      int64_t rows, int64_t cols, void *packed, void *scales, void *biases, int *fallback, char *err,
                      size_t cap)
{
    CK(cudaSetDevice(device_index()), "selecting the device");
    return quantize_device(scheme, bits, group_size, scale_dtype, src_dtype, src, rows, cols, packed, scales, biases,
                           fallback, err, cap);
}

static int m_bench_gemv(int64_t rows, int64_t cols, int bits, int group, int batch, int variant, double *out,
                        char *err, size_t cap)
{
    CK(cudaSetDevice(device_index()), "selecting the device");
    if (bits < 1 || bits > 8 || group % 32 != 0 || cols % group != 0 || batch < 1 || batch > 8) {
        snprintf(err, cap, "unsupported GEMV benchmark shape");
        return UQ_ERR_ARG;
    }
    if (variant > UQ_CUDA_GEMV_FP32 || (variant >= 0 && variant < UQ_CUDA_GEMV_FP32 && (bits != 4 || batch != 1))) {
        snprintf(err, cap, "no GEMV variant %d for %d bits, batch %d", variant, bits, batch);
        return UQ_ERR_ARG;
    }
    return bench_gemv(rows, cols, bits, group, batch, variant, out, err, cap);
}

static int m_pick(const float *logits, int64_t rows, int64_t vocab, const uq_cuda_pick *picks, int32_t *out,
                  char *err, size_t cap)
{
    CK(cudaSetDevice(device_index()), "selecting the device");
    if (rows < 1 || rows > 65535 || vocab < 1 || vocab > INT32_MAX || (size_t)rows * (size_t)vocab > ((size_t)1 << 32)) {
        snprintf(err, cap, "no token picking for %lld rows of %lld logits", (long long)rows, (long long)vocab);
        return UQ_ERR_ARG;
    }
    return pick_rows(logits, rows, vocab, picks, out, err, cap);
}

static const uq_cuda_api api_table = {
    UQ_CUDA_ABI_VERSION, m_probe,   m_device_name, m_memory,     m_create,     m_destroy,
    m_forward,           m_quantize, m_set_option, m_bench_gemv, m_pick,
};

extern "C" __attribute__((visibility("default"))) const uq_cuda_api *uq_cuda_module_v2(void) { return &api_table; }
