/* Measuring the error of a quantized tensor against its source. */
#include "core/error.h"
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>

uq_status uq_quant_error(const uq_qparams *p, uq_dtype src_dtype, const void *src,
                         int64_t rows, int64_t cols, const void *packed, const void *scales,
                         const void *biases, uq_qerror *out)
{
    if (!out) return uq_fail(UQ_ERR_ARG, "uq_quant_error: no output");
    *out = (uq_qerror){0.0, 0.0, 0.0, 0.0, -1, -1, 0};
    uq_status st = uq_qparams_check_shape(p, rows, cols);
    if (st != UQ_OK) return st;
    if (src_dtype != UQ_F32 && src_dtype != UQ_F16 && src_dtype != UQ_BF16)
        return uq_fail(UQ_ERR_DTYPE, "cannot measure against a tensor of dtype %s",
                       uq_dtype_name(src_dtype));
    if (rows == 0) return UQ_OK;
    if (!src) return uq_fail(UQ_ERR_ARG, "uq_quant_error: no source tensor");

    size_t n = (size_t)cols;
    size_t group = p->group_size > 0 ? (size_t)p->group_size : n;
    size_t gpr = uq_quant_groups_per_row(p, cols);
    float *w = malloc(n * sizeof(float));
    float *d = malloc(n * sizeof(float));
    if (!w || !d) {
        free(w);
        free(d);
        return uq_fail(UQ_ERR_NOMEM, "out of memory measuring quantization error");
    }
    double sum_sq = 0.0, sum_ref = 0.0;
    const unsigned char *s = src;
    size_t row_bytes = n * uq_dtype_size(src_dtype);
    for (int64_t r = 0; r < rows && st == UQ_OK; r++) {
        uq_to_f32(src_dtype, s + (size_t)r * row_bytes, w, n);
        st = uq_dequantize_rows(p, cols, packed, scales, biases, r, 1, d);
        for (size_t c = 0; st == UQ_OK && c < n; c++) {
            if (!isfinite(w[c])) continue;
            /* a non-finite result for a finite weight is an unbounded error */
            double e = isfinite(d[c]) ? fabs((double)w[c] - (double)d[c]) : INFINITY;
            sum_sq += e * e;
            sum_ref += (double)w[c] * (double)w[c];
            out->n++;
            if (e > out->max_abs || out->max_row < 0) {
                out->max_abs = e;
                out->max_row = r;
                out->max_col = (int64_t)c;
            }
            double step = fabs((double)uq_qload(p->scale_dtype, scales,
                                                (size_t)r * gpr + c / group));
            if (step > 0.0 && e / step > out->max_steps) out->max_steps = e / step;
        }
    }
    free(w);
    free(d);
    if (st != UQ_OK) return st;
    if (out->n > 0) {
        out->rmse = sqrt(sum_sq / (double)out->n);
        out->rel_rmse = sum_ref > 0.0 ? out->rmse / sqrt(sum_ref / (double)out->n) : 0.0;
    }
    return UQ_OK;
}
