/* The inner loops of quantization and dequantization, one copy per
 * instruction set: portable C, SSE2 and AVX2 (x86-64). Every copy performs the
 * same fp32 operations on every element (a subtraction and a division, or a
 * multiplication and an addition, each rounded on its own), so all give the
 * same bits; the SIMD copies only do several elements at once. Which copy
 * runs is chosen once from the CPU (uq_quant_simd in quant.h).
 *
 * Rounding to an integer after clamping to [lo, hi] (integer bounds) equals
 * clamping after rounding, so the kernels clamp first and round in range.
 *
 * Sources are arrays of F32, F16 or BF16 elements at any alignment; the
 * kernels convert them to f32 (exactly) as they read them. */
#ifndef UQ_QUANT_QKERNEL_H
#define UQ_QUANT_QKERNEL_H

#include "quant/quant.h"

/* Kernels work on ng consecutive groups of g elements at once (the groups of
 * a row, or part of one): per-group arrays hold one value per group. */
typedef struct uq_qkernels {
    /* The minimum and maximum of each group, NaNs skipped (+Inf / -Inf when
     * there are none); returns nonzero when any element is NaN. */
    int (*minmax)(uq_dtype t, const void *src, size_t g, size_t ng, float *mn, float *mx);
    /* As minmax for the largest |x| of each group (0 when there is none). */
    int (*absmax)(uq_dtype t, const void *src, size_t g, size_t ng, float *amax);
    /* MLX's scale and bias of each group from its extremes (as
     * uq_affine_fit_extremes). Returns nonzero when some group's extremes
     * are not finite or their range overflows: the results of those groups
     * are then unspecified, and the caller fits them itself. */
    int (*affine_fit)(const float *mn, const float *mx, size_t ng, float n_bins, float *scale,
                      float *bias);
    /* codes[i] = clamp(rint((x[i] - bias) / scale), 0, n_bins) with the
     * group's scale and bias; NaN gives 0. */
    void (*affine_codes)(uq_dtype t, const void *src, size_t g, size_t ng, const float *scale,
                         const float *bias, float n_bins, uint8_t *codes);
    /* codes[i] = clamp(rint(x[i] / scale), -offset, offset - 1) + offset with
     * the group's scale; NaN, and every element of a group of scale 0, give
     * the code of zero, offset. */
    void (*sym_codes)(uq_dtype t, const void *src, size_t g, size_t ng, const float *scale,
                      int offset, uint8_t *codes);
    /* nblk blocks of 8 codes <-> nblk * bits bytes of the packed stream,
     * starting on a byte boundary. pack masks each code to its low bits. */
    void (*pack)(const uint8_t *codes, size_t nblk, int bits, void *dst);
    void (*unpack)(const void *src, size_t nblk, int bits, uint8_t *codes);
    /* out[i] = (float)codes[i] * s + b. */
    void (*affine_deq)(const uint8_t *codes, size_t n, float s, float b, float *out);
    /* out[i] = (float)(codes[i] - offset) * s. */
    void (*sym_deq)(const uint8_t *codes, size_t n, int offset, float s, float *out);
} uq_qkernels;

/* The kernels of the level in use. */
const uq_qkernels *uq_qk(void);

extern const uq_qkernels uq_qk_scalar;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define UQ_QK_X86 1
extern const uq_qkernels uq_qk_sse2;
extern const uq_qkernels uq_qk_avx2;
#endif

/* Eight codes at a time in plain C (pack.c); the SIMD kernels finish with it. */
void uq_pack_blocks_swar(const uint8_t *codes, size_t nblk, int bits, void *dst);
void uq_unpack_blocks_swar(const void *src, size_t nblk, int bits, uint8_t *codes);

/* Element i of src (F32 / F16 / BF16) as f32. */
float uq_qk_load(uq_dtype t, const void *src, size_t i);

/* MLX's recipe from a group's extremes when they and their range are finite
 * (affine.c handles the rest). */
uq_affine_param uq_affine_fit_extremes(float wmin, float wmax, float n_bins);

/* uq_qstore of n values to elements [i0, i0 + n) of dst. */
void uq_qstore_n(uq_dtype t, void *dst, size_t i0, const float *v, size_t n);

/* Row kernels shared by the tensor driver and the public row functions: src
 * holds n elements of dtype t, codes is scratch for n bytes. With
 * allow_nonfinite == 0 they stop at the first group holding a NaN or Inf and
 * return the column of its first non-finite element (the outputs are then
 * incomplete); otherwise they return -1. */
int64_t uq_affine_row(const uq_qkernels *k, uq_dtype t, const void *src, size_t n, int bits,
                      size_t g, uq_dtype sdt, uint8_t *codes, void *packed, void *scales,
                      void *biases, int allow_nonfinite);
int64_t uq_sym_row(const uq_qkernels *k, uq_dtype t, const void *src, size_t n, int bits,
                   size_t g, uq_dtype sdt, uint8_t *codes, void *packed, void *scales,
                   int allow_nonfinite);

/* Packs codes [k0, k0 + n) of a row, k0 a multiple of 8, into their bytes of
 * the packed row. */
void uq_pack_span(const uq_qkernels *k, const uint8_t *codes, size_t k0, size_t n, int bits,
                  void *packed);
/* Zeroes the bytes of a packed row of n codes past its last code. */
void uq_pack_pad(size_t n, int bits, void *packed);
/* The codes [k0, k0 + n) of a packed row. */
void uq_unpack_span(const uq_qkernels *k, const void *src, size_t k0, size_t n, int bits,
                    uint8_t *codes);

#endif
