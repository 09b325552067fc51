#include "core/vec.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(UQ_NO_CLONES)
#define UQ_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define UQ_CLONES
#endif

UQ_CLONES float uq_dot_f32(const float *a, const float *b, int64_t n)
{
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += a[i + k] * b[i + k];
    float t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) t += a[i] * b[i];
    return t;
}

UQ_CLONES void uq_attn_scores(const float *q, const float *k, int64_t stride, int64_t npos, int64_t d, float scale,
                              float *out)
{
    for (int64_t p = 0; p < npos; p++) {
        const float *kp = k + p * stride;
        float s[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= d; i += 8)
            for (int j = 0; j < 8; j++) s[j] += q[i + j] * kp[i + j];
        float t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
        for (; i < d; i++) t += q[i] * kp[i];
        out[p] = t * scale;
    }
}

UQ_CLONES void uq_attn_mix(const float *w, const float *v, int64_t stride, int64_t npos, int64_t d, float *out)
{
    memset(out, 0, (size_t)d * sizeof *out);
    for (int64_t p = 0; p < npos; p++) {
        const float *vp = v + p * stride;
        const float a = w[p];
        for (int64_t i = 0; i < d; i++) out[i] += a * vp[i];
    }
}

/* exp(x) = 2^n * e^r, x = n ln2 + r, |r| <= ln2/2; degree-6 polynomial for e^r. */
float uq_exp_neg(float x)
{
    if (x < -87.0f) return 0.0f;
    float n = rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693145751953125f;
    r -= n * 1.42860682030941723212e-6f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = (int32_t)n + 127;
    uint32_t bits = (uint32_t)e << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

UQ_CLONES void uq_softmax_f32(float *x, int64_t n)
{
    float m = x[0];
    for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    float sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = uq_exp_neg(x[i] - m);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

UQ_CLONES void uq_softmax_cols16(float *s, int64_t rows)
{
    float m[16], sum[16];
    for (int i = 0; i < 16; i++) m[i] = s[i], sum[i] = 0;
    for (int64_t r = 1; r < rows; r++)
        for (int i = 0; i < 16; i++) m[i] = s[r * 16 + i] > m[i] ? s[r * 16 + i] : m[i];
    for (int64_t r = 0; r < rows; r++)
        for (int i = 0; i < 16; i++) {
            float e = uq_exp_neg(s[r * 16 + i] - m[i]);
            s[r * 16 + i] = e;
            sum[i] += e;
        }
    for (int i = 0; i < 16; i++) m[i] = 1.0f / sum[i];
    for (int64_t r = 0; r < rows; r++)
        for (int i = 0; i < 16; i++) s[r * 16 + i] *= m[i];
}

UQ_CLONES void uq_swiglu_f32(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        /* silu(x) = x / (1 + e^-x), written with e^-|x| so the exponent is never positive */
        float x = g[i], e = uq_exp_neg(-fabsf(x));
        float s = x >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
        g[i] = x * s * u[i];
    }
}
