/*
 * The numeric core of quantization: bit packing in MLX's layout, MLX affine
 * and symmetric (absmax) group quantization, and a threaded driver for 2-D
 * tensors. No file I/O. The algorithms follow FORMATS.md sections 1 and 2.
 *
 * Packed rows are little-endian uint32 words whatever the host, and every
 * pointer to packed words, scales or biases may be unaligned. Scales and
 * biases are arrays of F32, F16 or BF16 elements.
 *
 * Rounding to integers (rintf, and its SIMD equivalents) assumes the default
 * rounding mode (round to nearest, ties to even), and subnormals are not
 * flushed to zero (the default too).
 */
#ifndef UQ_QUANT_QUANT_H
#define UQ_QUANT_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "uquant.h"

/* ------------------------------------------------------------- packing */

/* uint32 words a row of n codes of `bits` bits occupies: ceil(n * bits / 32). */
size_t uq_pack_words(size_t n, int bits);

/* Packs n codes of `bits` bits (1..8; each code masked to its low `bits`)
 * into uq_pack_words(n, bits) words at dst: one LSB-first bitstream, code k
 * at bits [k*bits, (k+1)*bits); the tail of the last word is zero. */
void uq_pack_row(const uint8_t *codes, size_t n, int bits, void *dst);
/* The inverse of uq_pack_row. */
void uq_unpack_row(const void *src, size_t n, int bits, uint8_t *codes);
/* Code k of a packed row. */
uint8_t uq_unpack_at(const void *src, size_t k, int bits);

/* Bit-serial versions for every width; uq_pack_row / uq_unpack_row move
 * eight codes (b bytes) at a time. Exported so tests can check that both give
 * the same bytes. */
void uq_pack_row_generic(const uint8_t *codes, size_t n, int bits, void *dst);
void uq_unpack_row_generic(const void *src, size_t n, int bits, uint8_t *codes);

/* ---------------------------------------------------- scale storage */

/* Stores v as element i of dst in dtype t (F32 / F16 / BF16), rounded to
 * nearest even, and returns the stored value as f32. Saturating: a finite v
 * beyond the dtype's range stores the largest finite value of its sign
 * instead of Inf. NaN and Inf are stored as they are. */
float uq_qstore(uq_dtype t, void *dst, size_t i, float v);
/* Element i of src (dtype t: F32 / F16 / BF16) as f32. */
float uq_qload(uq_dtype t, const void *src, size_t i);

/* ---------------------------------------------------- MLX affine */

#define UQ_AFFINE_EPS 1e-7f

/* One group's parameters in fp32, before the stored copies are rounded. */
typedef struct uq_affine_param {
    float scale; /* may be negative (MLX's edge rule) */
    float bias;
    /* 1 when the group's range overflows fp32 (values near +-FLT_MAX): the
     * fit and the codes are then computed on halved values, so nothing
     * overflows; never set for ordinary data. */
    int wide;
} uq_affine_param;

/* Fits MLX's scale and bias to the g values at w (FORMATS.md section 1).
 * bits 1..8. */
uq_affine_param uq_affine_fit(const float *w, size_t g, int bits);
/* Codes of the g values at w: clamp(rint((w - bias) / scale), 0, 2^bits - 1),
 * with p's fp32 values. A NaN gives code 0. */
void uq_affine_codes(const float *w, size_t g, int bits, uq_affine_param p, uint8_t *codes);
/* Quantizes a row of n values in groups of g (g divides n): the codes go to
 * `codes` (n bytes of caller scratch, left holding them), the packed row to
 * `packed`, and n/g scales and biases, rounded to sdt, to scales / biases. */
void uq_affine_quantize_row(const float *w, size_t n, int bits, size_t g, uq_dtype sdt,
                            uint8_t *codes, void *packed, void *scales, void *biases);
/* w' = q * scale + bias in fp32 (two roundings, no FMA) from the stored
 * scales and biases. */
void uq_affine_dequantize_row(const void *packed, size_t n, int bits, size_t g, uq_dtype sdt,
                              const void *scales, const void *biases, float *out);

/* ------------------------------------------- symmetric (quanto style) */

/* qmax = 2^(bits-1) - 1; codes are stored as q + 2^(bits-1). bits 2..8. */
static inline int uq_sym_qmax(int bits) { return (1 << (bits - 1)) - 1; }

/* The fp32 scale of a group: absmax / qmax (0 for an all-zero group). */
float uq_sym_fit(const float *w, size_t g, int bits);
/* Unsigned codes q + 2^(bits-1), q = clamp(rint(w / scale), -qmax-1, qmax)
 * with the fp32 scale; a zero scale or a NaN gives q = 0. */
void uq_sym_codes(const float *w, size_t g, int bits, float scale, uint8_t *codes);
/* As uq_affine_quantize_row, without biases. */
void uq_sym_quantize_row(const float *w, size_t n, int bits, size_t g, uq_dtype sdt,
                         uint8_t *codes, void *packed, void *scales);
/* w' = (code - 2^(bits-1)) * scale, from the stored scales. */
void uq_sym_dequantize_row(const void *packed, size_t n, int bits, size_t g, uq_dtype sdt,
                           const void *scales, float *out);

/* -------------------------------------------------------- parameters */

/* uq_scheme (affine / symmetric) is declared in uquant.h. */
typedef struct uq_qparams {
    uq_scheme scheme;
    int bits;            /* affine 1..8, symmetric 2..8 */
    int group_size;      /* a positive multiple of 8; symmetric also 0 = one scale per row */
    uq_dtype scale_dtype;/* F32, F16 or BF16 (MLX: the weight's dtype) */
} uq_qparams;

/* Checks bits, group size and scale dtype: UQ_ERR_UNSUPPORTED (bits or group
 * size), UQ_ERR_DTYPE (scale dtype), UQ_ERR_ARG (NULL, unknown scheme). */
uq_status uq_qparams_validate(const uq_qparams *p);
/* uq_qparams_validate plus the shape: rows >= 0, cols > 0, the group size
 * divides cols, and no output size overflows (UQ_ERR_SHAPE). */
uq_status uq_qparams_check_shape(const uq_qparams *p, int64_t rows, int64_t cols);

/* Sizes, for parameters and shapes that passed uq_qparams_check_shape. */
size_t uq_quant_words_per_row(const uq_qparams *p, int64_t cols);
size_t uq_quant_groups_per_row(const uq_qparams *p, int64_t cols);
size_t uq_quant_packed_bytes(const uq_qparams *p, int64_t rows, int64_t cols);
size_t uq_quant_scales_bytes(const uq_qparams *p, int64_t rows, int64_t cols);
/* 0 for the symmetric scheme. */
size_t uq_quant_biases_bytes(const uq_qparams *p, int64_t rows, int64_t cols);

/* The group size for a layer whose input dimension is cols: `requested` if it
 * is a positive multiple of 8 dividing cols, else the largest of 128, 64, 32
 * dividing cols, else 0 (no MLX group fits: leave the layer in float). */
int uq_pick_group_size(int64_t cols, int requested);

/* ------------------------------------------------- instruction sets */

/* The loops above and below run in one of these copies, chosen once from the
 * CPU (the best it has). All give the same bits; forcing one is for tests and
 * benchmarks. */
enum { UQ_SIMD_SCALAR = 0, UQ_SIMD_SSE2 = 1, UQ_SIMD_AVX2 = 2 };
/* The level in use. */
int uq_quant_simd(void);
/* Uses `level` from now on (process-wide; call it while nothing quantizes),
 * or the best one the CPU has when level is above it or negative. Returns
 * the level now in use. */
int uq_quant_set_simd(int level);
/* "scalar", "sse2", "avx2". */
const char *uq_quant_simd_name(int level);

/* ---------------------------------------------------- tensor driver */

/* Quantizes the [rows, cols] tensor src (F32 / F16 / BF16, any alignment)
 * into caller buffers: packed [rows, words_per_row] uint32 words, scales and,
 * for the affine scheme, biases [rows, groups_per_row] in p->scale_dtype
 * (biases is ignored for the symmetric scheme). Blocks of rows are shared out
 * over up to n_threads threads (0: one per online CPU; fewer for small
 * tensors), kept from one call to the next; the output is the same for any
 * thread count. A NaN or Inf gives UQ_ERR_NONFINITE
 * naming the first one (row, column) unless allow_nonfinite is set; outputs
 * are then unspecified. With allow_nonfinite the tensor is quantized anyway
 * (NaN elements get the code of zero, scales of such groups may be non-finite).
 * Stops with UQ_ERR_CANCELLED once uq_cancel() has been called (checked
 * before each row). */
uq_status uq_quantize_tensor(const uq_qparams *p, uq_dtype src_dtype, const void *src,
                             int64_t rows, int64_t cols, void *packed, void *scales,
                             void *biases, int allow_nonfinite, int n_threads);

/* Dequantizes rows [row0, row0 + nrows) to f32 out ([nrows, cols]). packed,
 * scales and biases point at the start of the whole tensor (row 0). */
uq_status uq_dequantize_rows(const uq_qparams *p, int64_t cols, const void *packed,
                             const void *scales, const void *biases, int64_t row0,
                             int64_t nrows, float *out);
/* All rows of a [rows, cols] quantized tensor. */
uq_status uq_dequantize_qtensor(const uq_qparams *p, int64_t rows, int64_t cols,
                                const void *packed, const void *scales, const void *biases,
                                float *out);

/* ------------------------------------------------- error measurement */

typedef struct uq_qerror {
    double max_abs;     /* largest |w - w'| */
    double rmse;        /* sqrt(mean (w - w')^2) */
    double rel_rmse;    /* rmse / rms(w); 0 when w is all zero */
    double max_steps;   /* largest |w - w'| / |stored scale of its group| (0-scale groups skipped) */
    int64_t max_row;    /* where max_abs is (-1 if the tensor is empty) */
    int64_t max_col;
    uint64_t n;         /* elements measured (non-finite source elements are skipped) */
} uq_qerror;

/* Measures how far the dequantized tensor is from src. Non-finite source
 * elements are skipped; a non-finite result for a finite one counts as an
 * infinite error. */
uq_status uq_quant_error(const uq_qparams *p, uq_dtype src_dtype, const void *src,
                         int64_t rows, int64_t cols, const void *packed, const void *scales,
                         const void *biases, uq_qerror *out);

#endif
