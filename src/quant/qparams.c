/* Quantization parameters: validation, output sizes, group size choice. */
#include "core/error.h"
#include "quant/quant.h"

static const char *scheme_name(uq_scheme s)
{
    return s == UQ_SCHEME_AFFINE ? "affine" : "symmetric";
}

uq_status uq_qparams_validate(const uq_qparams *p)
{
    if (!p) return uq_fail(UQ_ERR_ARG, "no quantization parameters given");
    if (p->scheme != UQ_SCHEME_AFFINE && p->scheme != UQ_SCHEME_SYMMETRIC)
        return uq_fail(UQ_ERR_ARG, "unknown quantization scheme %d", (int)p->scheme);
    if (p->scheme == UQ_SCHEME_SYMMETRIC && p->bits == 1)
        return uq_fail(UQ_ERR_UNSUPPORTED,
                       "symmetric quantization needs 2 to 8 bits: 1 bit would leave only the "
                       "values -1 and 0 (use the affine scheme for 1 bit)");
    if (p->bits < 1 || p->bits > 8)
        return uq_fail(UQ_ERR_UNSUPPORTED, "%s quantization supports %d to 8 bits, not %d",
                       scheme_name(p->scheme), p->scheme == UQ_SCHEME_AFFINE ? 1 : 2, p->bits);
    if (p->scheme == UQ_SCHEME_SYMMETRIC && p->group_size == 0) {
        /* one scale per row */
    } else if (p->group_size <= 0 || p->group_size % 8 != 0) {
        return uq_fail(UQ_ERR_UNSUPPORTED, "group size %d is not a positive multiple of 8%s",
                       p->group_size,
                       p->scheme == UQ_SCHEME_SYMMETRIC ? " (nor 0, one scale per row)" : "");
    }
    if (p->scale_dtype != UQ_F32 && p->scale_dtype != UQ_F16 && p->scale_dtype != UQ_BF16)
        return uq_fail(UQ_ERR_DTYPE, "quantization scales must be F32, F16 or BF16, not %s",
                       uq_dtype_name(p->scale_dtype));
    return UQ_OK;
}

static int mul_fits(uint64_t a, uint64_t b, uint64_t limit)
{
    return b == 0 || a <= limit / b;
}

uq_status uq_qparams_check_shape(const uq_qparams *p, int64_t rows, int64_t cols)
{
    uq_status st = uq_qparams_validate(p);
    if (st != UQ_OK) return st;
    if (rows < 0 || cols <= 0)
        return uq_fail(UQ_ERR_SHAPE, "cannot quantize a tensor of shape [%lld, %lld]",
                       (long long)rows, (long long)cols);
    if (p->group_size > 0 && cols % p->group_size != 0)
        return uq_fail(UQ_ERR_SHAPE, "group size %d does not divide the input dimension %lld",
                       p->group_size, (long long)cols);
    /* Every byte count derived from the shape must fit in size_t: the f32
     * row buffers (4 * cols) and the largest output, whole. */
    const uint64_t lim = (uint64_t)SIZE_MAX / 8;
    if (!mul_fits((uint64_t)cols, 8, lim) || !mul_fits((uint64_t)rows, (uint64_t)cols * 8u, lim))
        return uq_fail(UQ_ERR_SHAPE, "tensor of shape [%lld, %lld] is too large",
                       (long long)rows, (long long)cols);
    return UQ_OK;
}

size_t uq_quant_words_per_row(const uq_qparams *p, int64_t cols)
{
    return uq_pack_words((size_t)cols, p->bits);
}

size_t uq_quant_groups_per_row(const uq_qparams *p, int64_t cols)
{
    return p->group_size > 0 ? (size_t)cols / (size_t)p->group_size : 1;
}

size_t uq_quant_packed_bytes(const uq_qparams *p, int64_t rows, int64_t cols)
{
    return (size_t)rows * uq_quant_words_per_row(p, cols) * 4;
}

size_t uq_quant_scales_bytes(const uq_qparams *p, int64_t rows, int64_t cols)
{
    return (size_t)rows * uq_quant_groups_per_row(p, cols) * uq_dtype_size(p->scale_dtype);
}

size_t uq_quant_biases_bytes(const uq_qparams *p, int64_t rows, int64_t cols)
{
    return p->scheme == UQ_SCHEME_AFFINE ? uq_quant_scales_bytes(p, rows, cols) : 0;
}

int uq_pick_group_size(int64_t cols, int requested)
{
    if (cols <= 0) return 0;
    if (requested > 0 && requested % 8 == 0 && cols % requested == 0) return requested;
    static const int mlx_groups[] = {128, 64, 32};
    for (size_t i = 0; i < sizeof mlx_groups / sizeof mlx_groups[0]; i++)
        if (cols % mlx_groups[i] == 0) return mlx_groups[i];
    return 0;
}
