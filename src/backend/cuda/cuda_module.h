/* The interface between libuquant and the CUDA module (libuquant_cuda.so).
 *
 * libuquant never links CUDA: src/backend/cuda_loader.c opens the module with
 * dlopen on first use, looks up UQ_CUDA_MODULE_SYMBOL and calls it for this
 * table. Everything that crosses is plain C data: the loader describes the
 * context's model with the structs below (host pointers into the mapped
 * files) and the module copies what it needs to the device.
 *
 * Functions return uq_status values; on failure they write a message to
 * err (cap bytes). */
#ifndef UQ_BACKEND_CUDA_MODULE_H
#define UQ_BACKEND_CUDA_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UQ_CUDA_ABI_VERSION 2
#define UQ_CUDA_MODULE_NAME "libuquant_cuda.so"
#define UQ_CUDA_MODULE_SYMBOL "uq_cuda_module_v2"

/* One weight matrix as stored (see uq_weight in uquant.h). */
typedef struct uq_cuda_matrix {
    int quantized;      /* 0: a float matrix of dtype */
    int scheme;         /* uq_scheme: 0 affine, 1 symmetric */
    int bits;           /* 1..8 */
    int group_size;     /* values per scale; cols for one scale per row */
    int dtype;          /* uq_dtype of the float matrix, or of the scales and biases */
    int64_t rows, cols;
    const void *data;   /* float [rows, cols] or packed U32 [rows, ceil(cols * bits / 32)] */
    const void *scales; /* [rows, cols / group_size] (quantized only) */
    const void *biases; /* [rows, cols / group_size] (affine only) */
} uq_cuda_matrix;

typedef struct uq_cuda_layer {
    uq_cuda_matrix wq, wk, wv, wo, wgate, wup, wdown;
    const float *attn_norm, *ffn_norm; /* [dim] */
    const float *bq, *bk, *bv, *bo;    /* optional projection biases (NULL when absent) */
} uq_cuda_layer;

/* A Llama-family model bound to a context. */
typedef struct uq_cuda_model {
    int64_t dim, q_dim, kv_dim, hidden_ff, head_dim, n_heads, n_kv, vocab, n_layers;
    int64_t n_ctx;                     /* positions per sequence */
    int64_t n_batch;                   /* tokens per internal step */
    int n_seq;                         /* sequences held at once */
    double rms_eps;
    const float *rope_cos, *rope_sin;  /* [n_ctx][head_dim / 2], as uq_rope_tables makes them */
    const uq_cuda_layer *layers;       /* [n_layers] */
    uq_cuda_matrix embed, lm_head;     /* lm_head.data == embed.data when tied */
    const float *final_norm;           /* [dim] */
} uq_cuda_model;

/* How a token is picked from a row of logits, as uq_sample does it:
 * temperature <= 0 greedy; else drawn from softmax(logits / temperature)
 * (cut to top_k tokens when 0 < top_k < vocab, then to top_p of the
 * probability when 0 < top_p < 1) with the uniform r in [0, 1) that the
 * caller drew from its generator. */
typedef struct uq_cuda_pick {
    double r;
    float temperature, top_p;
    int32_t top_k, reserved;
} uq_cuda_pick;

typedef struct uq_cuda_api {
    int abi_version;                   /* UQ_CUDA_ABI_VERSION */
    /* 1 when a usable device is present, else 0 and why. */
    int (*probe)(char *why, size_t cap);
    /* "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)" */
    int (*device_name)(char *out, size_t cap);
    int (*memory)(uint64_t *total, uint64_t *free_bytes, char *err, size_t cap);
    /* Uploads the model and allocates the KV caches and activations. */
    int (*create)(const uq_cuda_model *m, void **state, char *err, size_t cap);
    void (*destroy)(void *state);
    /* Runs tokens ids[0, n) of sequence seq at positions [pos, pos + n).
     * logits (may be NULL): [n, vocab] when all_logits, else the last row.
     * picked (may be NULL): the token picked from each of those rows as
     * pick says (NULL: greedy); a draw (temperature > 0) takes one row. */
    int (*forward)(void *state, int seq, const int32_t *ids, int64_t n, int64_t pos, float *logits,
                   int all_logits, const uq_cuda_pick *pick, int32_t *picked, char *err, size_t cap);
    /* uq_quantize_tensor on the device, byte for byte. *fallback is set
     * (and nothing is guaranteed about the outputs) when the tensor holds
     * values the device path does not handle (NaN, Inf, a range beyond
     * fp32): the caller then quantizes it on the CPU. */
    int (*quantize)(int scheme, int bits, int group_size, int scale_dtype, int src_dtype, const void *src,
                    int64_t rows, int64_t cols, void *packed, void *scales, void *biases, int *fallback,
                    char *err, size_t cap);
    /* Tuning and test switches: "graphs" (decode through CUDA graphs, 1 by
     * default), "gemm_min_tokens" (tokens from which the tensor-core GEMM
     * replaces the GEMV kernels, default 9). Unknown keys: UQ_ERR_ARG. */
    int (*set_option)(void *state, const char *key, int64_t value);
    /* Benchmark of the decode GEMV on a random affine matrix (bf16 scales),
     * variant -1 (the kernels in use), 0..5 (4-bit batch-1 variants of the
     * fp32 kernels) or UQ_CUDA_GEMV_FP32 (the fp32 kernels as chosen without
     * the integer MMAs):
     * out[0] GB/s of weights, scales and biases read, out[1] GB/s of a
     * device-to-device copy (bytes read + written), out[2] microseconds per
     * product, out[3] largest error relative to the generic kernel, out[4]
     * copies of the matrix rotated through, out[5] the SM clock in MHz
     * measured right after. */
    int (*bench_gemv)(int64_t rows, int64_t cols, int bits, int group, int batch, int variant, double *out,
                      char *err, size_t cap);
    /* The forward pass's token picking on rows x vocab logits in host
     * memory, row i as picks[i] says; the tokens to out[rows]. */
    int (*pick)(const float *logits, int64_t rows, int64_t vocab, const uq_cuda_pick *picks, int32_t *out,
                char *err, size_t cap);
} uq_cuda_api;

/* bench_gemv's variant: the fp32 kernels where the integer-MMA one would run. */
#define UQ_CUDA_GEMV_FP32 6

typedef const uq_cuda_api *(*uq_cuda_module_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
