/* The CUDA backend as libuquant sees it (src/backend/cuda_loader.c): the
 * registry entry and a few internal entry points for the quantizer, the
 * tests and the benchmarks. The kernels live in the module
 * libuquant_cuda.so, opened with dlopen on first use, so the library and
 * its programs run with or without a GPU. */
#ifndef UQ_BACKEND_CUDA_CUDA_H
#define UQ_BACKEND_CUDA_CUDA_H

#include "backend/backend.h"
#include "backend/cuda/cuda_module.h"
#include "quant/quant.h"

extern const uq_backend_ops uq_backend_cuda;

/* 1 when the module loads and finds a device; else 0 and why (one of
 * "libuquant_cuda.so not found (built without CUDA?)", "no CUDA driver",
 * "no CUDA device", or what the driver said). */
int uq_cuda_available(char *why, size_t cap);
/* The module's path once found ("" before the first call or when absent). */
const char *uq_cuda_module_path(void);
/* "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)", or "" when unavailable. */
const char *uq_cuda_device_name(void);

/* uq_quantize_tensor on the GPU: the same arguments (threads aside) and the
 * same bytes out. src and the outputs are host memory. Tensors holding NaN
 * or Inf, or values whose range overflows fp32, are quantized by the CPU
 * code instead (same result, same errors). */
uq_status uq_cuda_quantize_tensor(const uq_qparams *p, uq_dtype src_dtype, const void *src, int64_t rows,
                                  int64_t cols, void *packed, void *scales, void *biases, int allow_nonfinite);

/* uq_forward_seq for a context on the cuda backend, with the greedy token
 * of each logits row computed on the device: argmax receives n ids when
 * all_logits, else one; logits may be NULL (nothing is copied back). */
uq_status uq_cuda_forward_greedy(struct uq_context *c, int seq, const int32_t *ids, int64_t n, float *logits,
                                 int all_logits, int32_t *argmax);

/* The device's token picking on rows x vocab logits in host memory: row i
 * as uq_sample would pick it with params[i] and the uniform r[i] it would
 * draw (see uq_token_pick). For tests of the kernel on chosen logits. */
uq_status uq_cuda_pick_tokens(const float *logits, int64_t rows, int64_t vocab, const uq_sampler_params *params,
                              const double *r, int32_t *out);

/* Sets a module option of a context on the cuda backend (see set_option in
 * cuda_module.h: "graphs", "gemm_min_tokens"). */
uq_status uq_cuda_set_option(struct uq_context *c, const char *key, int64_t value);

/* The decode GEMV on a random rows x cols affine matrix of `bits` bits,
 * against a device-to-device copy (see bench_gemv in cuda_module.h for
 * variant and out). */
uq_status uq_cuda_bench_gemv(int64_t rows, int64_t cols, int bits, int group, int batch, int variant, double out[6]);

#endif
