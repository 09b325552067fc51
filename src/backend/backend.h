/* The backend interface: one vtable per backend and a registry. The forward
 * pass calls its heavy operations through it; cpu-ref (portable C) is the
 * correctness oracle every other backend is tested against. */
#ifndef UQ_BACKEND_BACKEND_H
#define UQ_BACKEND_BACKEND_H

#include "core/threadpool.h"
#include "uquant.h"

typedef struct uq_backend uq_backend;

#define UQ_MATMUL_MAX 4
struct uq_context;
struct uq_qparams;

typedef struct uq_backend_caps {
    unsigned affine_bits;    /* bit i set: affine i-bit weights supported */
    unsigned symmetric_bits; /* same for the symmetric scheme */
    int float_weights;       /* F32 / F16 / BF16 matrices */
    int training;            /* backward pass (later) */
} uq_backend_caps;

/* How a device backend picks tokens from its logits: as uq_sample with
 * params (NULL: greedy), r being the uniform in [0, 1) uq_sample would draw
 * for a sampled token (unused when greedy). A draw takes one row. */
typedef struct uq_token_pick {
    const uq_sampler_params *params;
    double r;
} uq_token_pick;

typedef struct uq_backend_ops {
    const char *name;        /* "cpu-ref", "cpu", "cuda" */
    const char *description;
    /* Whether it can run here; when not, why (e.g. "no CUDA driver"). */
    int (*available)(char *why, size_t cap);
    void (*caps)(uq_backend_caps *out);
    /* Per-context state (scratch sized for rows of up to max_cols values). */
    uq_status (*init)(uq_backend *b, int64_t max_cols);
    void (*release)(uq_backend *b);
    /* y[n, w->rows] = x[n, w->cols] . W^T for any weight the caps cover.
     * Rows are independent tasks, so results do not depend on threads. */
    void (*matmul)(uq_backend *b, const uq_weight *w, const float *x, int64_t n, float *y);
    /* Optional: count (<= UQ_MATMUL_MAX) weights of the same width on the
     * same input, y[i] as matmul's for w[i] (q/k/v, gate/up): one pass over
     * the threads and the input prepared once. Same results as count calls
     * of matmul. NULL: the caller loops over matmul. */
    void (*matmul_n)(uq_backend *b, const uq_weight *const *w, int count, const float *x, int64_t n, float *const *y);

    /* Device backends run the whole forward pass themselves, with weights
     * and KV caches resident on the device (NULL for host backends, whose
     * forward is src/runtime/forward.c calling matmul above):
     * prepare uploads what the context's model needs (once per context);
     * forward runs n tokens of sequence seq after the pos tokens it already
     * holds and writes logits like uq_forward_seq (logits may be NULL), and
     * when picked is not NULL the token picked on the device from each row
     * of logits it computes (every token's with all_logits, else the
     * last's), the token uq_sample would pick (see uq_token_pick). */
    uq_status (*prepare)(uq_backend *b, const struct uq_context *ctx);
    uq_status (*forward)(uq_backend *b, struct uq_context *ctx, int seq, const int32_t *ids, int64_t n,
                         int64_t pos, float *logits, int all_logits, const uq_token_pick *pick, int32_t *picked);
    /* Quantizes a [rows, cols] tensor exactly as uq_quantize_tensor does
     * (byte-identical output); NULL: the pipeline uses the CPU quantizer. */
    uq_status (*quantize)(uq_backend *b, const struct uq_qparams *p, uq_dtype src_dtype, const void *src,
                          int64_t rows, int64_t cols, void *packed, void *scales, void *biases,
                          int allow_nonfinite);
    /* Device memory in bytes (total, free); NULL for host backends. */
    uq_status (*memory)(uq_backend *b, uint64_t *total, uint64_t *free_bytes);
} uq_backend_ops;

struct uq_backend {
    const uq_backend_ops *ops;
    uq_pool *pool;           /* shared worker threads */
    void *state;             /* backend-specific */
};

/* Registry. */
const uq_backend_ops *uq_backend_find(const char *name);
size_t uq_backend_count(void);
const uq_backend_ops *uq_backend_at(size_t i);

extern const uq_backend_ops uq_backend_cpu_ref;

#endif
