/* cpu-ref: the portable C backend. Straightforward and exact enough to be the
 * oracle: each weight row is dequantized (or converted) to f32 once and dotted
 * with every input row. */
#include "backend/backend.h"
#include "core/error.h"
#include "core/vec.h"
#include "model/model_internal.h"
#include "quant/quant.h"

#include <stdlib.h>
#include <string.h>

static int ref_available(char *why, size_t cap)
{
    (void)why;
    (void)cap;
    return 1;
}

static void ref_caps(uq_backend_caps *c)
{
    c->affine_bits = 0x1feu;    /* 1..8 */
    c->symmetric_bits = 0x1fcu; /* 2..8 */
    c->float_weights = 1;
    c->training = 0;
}

typedef struct job {
    const uq_weight *w;
    uq_qparams qp;
    const float *x;
    int64_t n;
    float *y;
    float *rowbuf;   /* [threads][cols] */
    int64_t rows_per_task;
} job;

static void row_task(void *arg, int64_t task, int thread)
{
    job *j = arg;
    const uq_weight *w = j->w;
    float *row = j->rowbuf + (size_t)thread * (size_t)w->cols;
    int64_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task;
    if (r1 > w->rows) r1 = w->rows;
    size_t el = uq_dtype_size(w->dtype);
    for (int64_t r = r0; r < r1; r++) {
        if (w->quantized)
            uq_dequantize_rows(&j->qp, w->cols, w->weight->data, w->scales->data, w->biases ? w->biases->data : NULL,
                               r, 1, row);
        else
            uq_to_f32(w->dtype, (const unsigned char *)w->weight->data + (size_t)r * (size_t)w->cols * el, row,
                      (size_t)w->cols);
        for (int64_t t = 0; t < j->n; t++) j->y[t * w->rows + r] = uq_dot_f32(row, j->x + t * w->cols, w->cols);
    }
}

/* state: one f32 row buffer per thread */
static uq_status ref_init(uq_backend *b, int64_t max_cols)
{
    b->state = malloc((size_t)uq_pool_threads(b->pool) * (size_t)max_cols * sizeof(float));
    return b->state ? UQ_OK : uq_fail(UQ_ERR_NOMEM, "cpu-ref: out of memory");
}

static void ref_release(uq_backend *b)
{
    free(b->state);
    b->state = NULL;
}

static void ref_matmul(uq_backend *b, const uq_weight *w, const float *x, int64_t n, float *y)
{
    job j = {.w = w, .x = x, .n = n, .y = y, .rowbuf = b->state, .rows_per_task = 16};
    if (w->quantized) j.qp = uq_weight_qparams(w);
    uq_pool_run(b->pool, (w->rows + j.rows_per_task - 1) / j.rows_per_task, row_task, &j);
}

const uq_backend_ops uq_backend_cpu_ref = {
    .name = "cpu-ref",
    .description = "portable C reference (the correctness oracle)",
    .available = ref_available,
    .caps = ref_caps,
    .init = ref_init,
    .release = ref_release,
    .matmul = ref_matmul,
};
