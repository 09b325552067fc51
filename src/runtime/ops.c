/* Element-wise parts of the forward pass, in fp32 as transformers computes them. */
#include "runtime/runtime.h"

#include <math.h>

void uq_rmsnorm(float *out, const float *x, const float *w, int64_t n, double eps)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (int64_t i = 0; i < n; i++) out[i] = w[i] * (x[i] * inv);
}

/* inv_freq[i] = theta^(-2i/d), with llama3-style or linear scaling. */
static double inv_freq(const uq_model_config *c, int64_t i)
{
    double f = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)c->head_dim);
    const uq_rope_scaling *s = &c->rope_scaling;
    if (s->type == UQ_ROPE_LINEAR) return f / s->factor;
    if (s->type != UQ_ROPE_LLAMA3) return f;
    const double pi = 3.14159265358979323846;
    double old = (double)s->original_max_position_embeddings;
    double low_wavelen = old / s->low_freq_factor, high_wavelen = old / s->high_freq_factor;
    double wavelen = 2 * pi / f;
    if (wavelen < high_wavelen) return f;
    if (wavelen > low_wavelen) return f / s->factor;
    double smooth = (old / wavelen - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
    return (1 - smooth) * f / s->factor + smooth * f;
}

void uq_rope_tables(const uq_model_config *c, int64_t n_ctx, float *cos_t, float *sin_t)
{
    int64_t half = c->head_dim / 2;
    for (int64_t i = 0; i < half; i++) {
        /* transformers keeps inv_freq in f32 */
        float f = (float)inv_freq(c, i);
        for (int64_t p = 0; p < n_ctx; p++) {
            float angle = (float)p * f;
            cos_t[p * half + i] = cosf(angle);
            sin_t[p * half + i] = sinf(angle);
        }
    }
}

/* The rotate-half layout of Hugging Face checkpoints: pairs (i, i + d/2). */
void uq_rope_apply(float *v, int64_t n_heads, int64_t head_dim, const float *c, const float *s)
{
    int64_t half = head_dim / 2;
    for (int64_t h = 0; h < n_heads; h++) {
        float *x = v + h * head_dim;
        for (int64_t i = 0; i < half; i++) {
            float a = x[i], b = x[i + half];
            x[i] = a * c[i] - b * s[i];
            x[i + half] = b * c[i] + a * s[i];
        }
    }
}
