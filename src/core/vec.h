/* Small vector kernels shared by the backends and the runtime. On x86-64
 * each has AVX-512, AVX2 and baseline clones picked at load time, so one
 * binary runs anywhere and uses what the processor has. */
#ifndef UQ_CORE_VEC_H
#define UQ_CORE_VEC_H

#include <stdint.h>

/* Dot product with 8 partial sums in a fixed order. */
float uq_dot_f32(const float *a, const float *b, int64_t n);
/* out[p] = scale * dot(q, k + p * stride, d) for p < npos. */
void uq_attn_scores(const float *q, const float *k, int64_t stride, int64_t npos, int64_t d, float scale,
                    float *out);
/* out[0..d) = sum over p < npos of w[p] * v[p * stride + 0..d). */
void uq_attn_mix(const float *w, const float *v, int64_t stride, int64_t npos, int64_t d, float *out);
/* x = softmax(x) in place (max-subtracted, sum in double). */
void uq_softmax_f32(float *x, int64_t n);
/* Softmax down each of the 16 columns of s[rows][16] in place, as
 * uq_softmax_f32 on every column (-INFINITY entries get weight 0). */
void uq_softmax_cols16(float *s, int64_t rows);
/* g[i] = silu(g[i]) * u[i] (SwiGLU), with the vectorizable exponential. */
void uq_swiglu_f32(float *g, const float *u, int64_t n);
/* exp(x) for x <= 0 within 2 ulp: a polynomial the compiler vectorizes. */
float uq_exp_neg(float x);

#endif
