/* Quantizing and dequantizing whole 2-D tensors, row by row. Rows are
 * independent, so splitting them over threads cannot change the output.
 *
 * Threads take blocks of rows from a shared counter, so a thread that gets
 * less CPU time than the others does less of the work. Each row is read
 * straight from the source dtype and quantized a batch of groups at a time
 * (uq_affine_row / uq_sym_row), with no f32 copy of the tensor. */
#include "core/error.h"
#include "core/threadpool.h"
#include "quant/qkernel.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 256
/* Elements per block of rows handed to a thread (at least one row); also the
 * least work worth waking a thread of the pool for. */
#define BLOCK_ELEMS 32768

/* Byte strides of one row of each buffer. */
typedef struct row_layout {
    size_t cols;
    size_t group;        /* elements per scale (cols when one per row) */
    size_t src_bytes;
    size_t packed_bytes;
    size_t scale_bytes;
} row_layout;

static row_layout layout_of(const uq_qparams *p, uq_dtype src_dtype, int64_t cols)
{
    row_layout l;
    l.cols = (size_t)cols;
    l.group = p->group_size > 0 ? (size_t)p->group_size : (size_t)cols;
    l.src_bytes = (size_t)cols * uq_dtype_size(src_dtype);
    l.packed_bytes = uq_quant_words_per_row(p, cols) * 4;
    l.scale_bytes = uq_quant_groups_per_row(p, cols) * uq_dtype_size(p->scale_dtype);
    return l;
}

/* What all threads of one call share. */
typedef struct qshared {
    const uq_qparams *p;
    const uq_qkernels *k;
    row_layout lay;
    uq_dtype src_dtype;
    const unsigned char *src;
    unsigned char *packed, *scales, *biases;
    int allow_nonfinite;
    int64_t rows, block_rows, n_blocks;
    atomic_llong next_block;
    /* The first non-finite element found: bad_row is INT64_MAX until one is;
     * rows past it are not worth quantizing. */
    atomic_llong bad_row;
    int64_t bad_col;
    pthread_mutex_t bad_lock;
    atomic_int cancelled;
} qshared;

typedef struct qworker {
    qshared *s;
    uint8_t *codes;  /* one row of codes */
} qworker;

static void note_bad(qshared *s, int64_t r, int64_t c)
{
    pthread_mutex_lock(&s->bad_lock);
    if (r < atomic_load(&s->bad_row)) {
        s->bad_col = c;
        atomic_store(&s->bad_row, r);
    }
    pthread_mutex_unlock(&s->bad_lock);
}

static void quantize_blocks(qworker *wk)
{
    qshared *s = wk->s;
    const row_layout *l = &s->lay;
    const uq_qparams *p = s->p;
    for (;;) {
        int64_t b = atomic_fetch_add(&s->next_block, 1);
        if (b >= s->n_blocks) return;
        int64_t r0 = b * s->block_rows;
        int64_t r1 = r0 + s->block_rows < s->rows ? r0 + s->block_rows : s->rows;
        for (int64_t r = r0; r < r1; r++) {
            /* Blocks are taken in row order, so once a row is past the first
             * bad one found, so is every later one. */
            if (r > atomic_load_explicit(&s->bad_row, memory_order_relaxed)) return;
            if (uq_cancel_requested() || atomic_load_explicit(&s->cancelled, memory_order_relaxed)) {
                atomic_store(&s->cancelled, 1);
                return;
            }
            size_t ur = (size_t)r;
            const unsigned char *src = s->src + ur * l->src_bytes;
            void *packed = s->packed + ur * l->packed_bytes;
            void *scales = s->scales + ur * l->scale_bytes;
            int64_t c;
            if (p->scheme == UQ_SCHEME_AFFINE)
                c = uq_affine_row(s->k, s->src_dtype, src, l->cols, p->bits, l->group,
                                  p->scale_dtype, wk->codes, packed, scales,
                                  s->biases + ur * l->scale_bytes, s->allow_nonfinite);
            else
                c = uq_sym_row(s->k, s->src_dtype, src, l->cols, p->bits, l->group,
                               p->scale_dtype, wk->codes, packed, scales,
                               s->allow_nonfinite);
            if (c >= 0) {
                note_bad(s, r, c);
                return;
            }
        }
    }
}

static void *quantize_thread(void *arg)
{
    quantize_blocks(arg);
    return NULL;
}

static void pool_task(void *arg, int64_t task, int thread)
{
    (void)thread;
    quantize_blocks((qworker *)arg + task);
}

/* One pool of worker threads serves the calls, so a model's many tensors do
 * not each pay for starting threads: made on first use, remade larger when a
 * call wants more threads, kept for the life of the process. A call runs one
 * task per thread it wants, so it never uses more threads than it asked for.
 * A call that finds the pool busy (another thread is quantizing) starts
 * threads of its own. A child of fork() starts without a pool. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static uq_pool *pool;
static uq_pool *pool_of_parent; /* the parent's, in a fork child (no threads run it) */
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void) { pthread_mutex_lock(&pool_lock); }
static void fork_parent(void) { pthread_mutex_unlock(&pool_lock); }
static void fork_child(void)
{
    pool_of_parent = pool;
    pool = NULL;
    pthread_mutex_unlock(&pool_lock);
}

static void register_fork_handlers(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }

static int run_on_pool(qworker *wk, int nt)
{
    pthread_once(&fork_once, register_fork_handlers);
    if (pthread_mutex_trylock(&pool_lock) != 0) return 0;
    if (pool && uq_pool_threads(pool) < nt) {
        uq_pool_free(pool);
        pool = NULL;
    }
    if (!pool && uq_pool_create(nt, &pool) != UQ_OK) pool = NULL;
    int ran = pool != NULL;
    if (ran) uq_pool_run(pool, nt, pool_task, wk);
    pthread_mutex_unlock(&pool_lock);
    return ran;
}

/* Runs quantize_blocks on nt workers. */
static void run_workers(qworker *wk, int nt)
{
    if (nt == 1) {
        quantize_blocks(&wk[0]);
        return;
    }
    if (run_on_pool(wk, nt)) return;
    /* The calling thread works too; if a thread cannot be started the others
     * take its share. */
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 1; t < nt; t++)
        started[t] = pthread_create(&tid[t], NULL, quantize_thread, &wk[t]) == 0;
    quantize_blocks(&wk[0]);
    for (int t = 1; t < nt; t++)
        if (started[t]) pthread_join(tid[t], NULL);
}

static int thread_count(int requested, int64_t n_blocks)
{
    long n = requested;
    if (n <= 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1) n = 1;
    }
    if (n > MAX_THREADS) n = MAX_THREADS;
    if (n > n_blocks) n = (long)n_blocks;
    return n < 1 ? 1 : (int)n;
}

static uq_status check_src_dtype(uq_dtype t)
{
    if (t == UQ_F32 || t == UQ_F16 || t == UQ_BF16) return UQ_OK;
    return uq_fail(UQ_ERR_DTYPE, "cannot quantize a tensor of dtype %s (F32, F16 or BF16 only)",
                   uq_dtype_name(t));
}

uq_status uq_quantize_tensor(const uq_qparams *p, uq_dtype src_dtype, const void *src,
                             int64_t rows, int64_t cols, void *packed, void *scales,
                             void *biases, int allow_nonfinite, int n_threads)
{
    uq_status st = uq_qparams_check_shape(p, rows, cols);
    if (st != UQ_OK) return st;
    if ((st = check_src_dtype(src_dtype)) != UQ_OK) return st;
    if (rows == 0) return UQ_OK;
    if (!src || !packed || !scales || (p->scheme == UQ_SCHEME_AFFINE && !biases))
        return uq_fail(UQ_ERR_ARG, "uq_quantize_tensor: missing input or output buffer");

    qshared s;
    s.p = p;
    s.k = uq_qk();
    s.lay = layout_of(p, src_dtype, cols);
    s.src_dtype = src_dtype;
    s.src = src;
    s.packed = packed;
    s.scales = scales;
    s.biases = p->scheme == UQ_SCHEME_AFFINE ? biases : NULL;
    s.allow_nonfinite = allow_nonfinite;
    s.rows = rows;
    s.block_rows = BLOCK_ELEMS / cols > 0 ? BLOCK_ELEMS / cols : 1;
    s.n_blocks = (rows + s.block_rows - 1) / s.block_rows;
    atomic_init(&s.next_block, 0);
    atomic_init(&s.bad_row, INT64_MAX);
    s.bad_col = -1;
    atomic_init(&s.cancelled, 0);

    int nt = thread_count(n_threads, s.n_blocks);
    qworker wk[MAX_THREADS];

    /* Buffers are all allocated here, so the threads have nothing that can fail. */
    for (int t = 0; t < nt; t++) {
        wk[t].s = &s;
        wk[t].codes = malloc(s.lay.cols);
        if (!wk[t].codes) {
            for (int k = 0; k < t; k++) free(wk[k].codes);
            return uq_fail(UQ_ERR_NOMEM, "out of memory for quantization buffers of %zu values",
                           s.lay.cols);
        }
    }
    pthread_mutex_init(&s.bad_lock, NULL);

    run_workers(wk, nt);
    for (int t = 0; t < nt; t++) free(wk[t].codes);
    pthread_mutex_destroy(&s.bad_lock);

    if (atomic_load(&s.cancelled)) return uq_fail(UQ_ERR_CANCELLED, "quantization cancelled");
    int64_t br = atomic_load(&s.bad_row);
    if (br != INT64_MAX) {
        float v;
        const unsigned char *e = s.src + (size_t)br * s.lay.src_bytes +
                                 (size_t)s.bad_col * uq_dtype_size(src_dtype);
        uq_to_f32(src_dtype, e, &v, 1);
        return uq_fail(UQ_ERR_NONFINITE,
                       "non-finite value %s at row %lld, column %lld (quantization needs "
                       "finite weights)",
                       isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf", (long long)br,
                       (long long)s.bad_col);
    }
    return UQ_OK;
}

uq_status uq_dequantize_rows(const uq_qparams *p, int64_t cols, const void *packed,
                             const void *scales, const void *biases, int64_t row0,
                             int64_t nrows, float *out)
{
    if (row0 < 0 || nrows < 0 || row0 > INT64_MAX - nrows)
        return uq_fail(UQ_ERR_SHAPE, "bad row range [%lld, +%lld) to dequantize",
                       (long long)row0, (long long)nrows);
    uq_status st = uq_qparams_check_shape(p, row0 + nrows, cols);
    if (st != UQ_OK) return st;
    if (nrows == 0) return UQ_OK;
    if (!packed || !scales || !out || (p->scheme == UQ_SCHEME_AFFINE && !biases))
        return uq_fail(UQ_ERR_ARG, "uq_dequantize_rows: missing input or output buffer");

    row_layout l = layout_of(p, UQ_F32, cols);
    const unsigned char *pk = packed, *sc = scales, *bi = biases;
    for (int64_t r = row0; r < row0 + nrows; r++) {
        size_t ur = (size_t)r;
        float *o = out + (size_t)(r - row0) * l.cols;
        if (p->scheme == UQ_SCHEME_AFFINE)
            uq_affine_dequantize_row(pk + ur * l.packed_bytes, l.cols, p->bits, l.group,
                                     p->scale_dtype, sc + ur * l.scale_bytes,
                                     bi + ur * l.scale_bytes, o);
        else
            uq_sym_dequantize_row(pk + ur * l.packed_bytes, l.cols, p->bits, l.group,
                                  p->scale_dtype, sc + ur * l.scale_bytes, o);
    }
    return UQ_OK;
}

uq_status uq_dequantize_qtensor(const uq_qparams *p, int64_t rows, int64_t cols,
                                const void *packed, const void *scales, const void *biases,
                                float *out)
{
    return uq_dequantize_rows(p, cols, packed, scales, biases, 0, rows, out);
}
