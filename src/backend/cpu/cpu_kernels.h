/* The "cpu" backend's kernels: one table per instruction-set level (portable
 * C, x86-64 AVX2 and AVX-512, aarch64 NEON), chosen once from the CPU when a
 * backend is initialised.
 *
 * Quantized weights run in integer form. Each input row is quantized to int8
 * in blocks of 32 values (64 for kernel tables with block64 set, where the
 * group size and width allow), xscale = absmax / 127, rounded to nearest
 * even, once per matmul call. A weight group of g codes q (scale s, bias b;
 * symmetric weights use b = -2^(bits-1) * s) then contributes
 *
 *     s * sum_blocks(xscale * sum(q * xq)) + b * sum_blocks(xscale * sum(xq))
 *
 * where the inner sums are exact integer dot products (VNNI vpdpbusd,
 * vpmaddubsw / vpmaddwd, smull) and the second term is computed once per
 * input and group. That is exactly the product of the dequantized weights
 * with the rounded inputs, so the error against the exact product is
 * sum_i w_i * (x_i - xq_i * xscale_i) plus float rounding (the tolerance is
 * in cpu.c).
 *
 * Float weights (F32, F16, BF16) are converted to f32 exactly and multiplied
 * with fused multiply-adds: only the order of the additions differs from
 * cpu-ref.
 *
 * Tasks are cut from the shape alone and tiles from the task, each output
 * reduced in a fixed order, so results never depend on the number of
 * threads. */
#ifndef UQ_BACKEND_CPU_KERNELS_H
#define UQ_BACKEND_CPU_KERNELS_H

#include "backend/backend.h"

#include <stddef.h>
#include <stdint.h>

extern const uq_backend_ops uq_backend_cpu;

typedef enum uq_cpu_level {
    UQ_CPU_GENERIC = 0, /* portable C */
    UQ_CPU_AVX2,        /* x86-64: AVX2, FMA, F16C */
    UQ_CPU_AVX512,      /* x86-64: AVX-512 F/BW/DQ/VL/VNNI/VBMI (Ice Lake, Zen 4 and later) */
    UQ_CPU_NEON,        /* aarch64 Advanced SIMD */
    UQ_CPU_LEVEL_COUNT
} uq_cpu_level;

/* Activation values per int8 scale (the smallest block; see block64). */
#define UQ_CPU_QBLOCK 32

/* A quantized weight as the kernels read it. */
typedef struct uq_cpu_qweight {
    const uint8_t *packed; /* row r at packed + r * row_bytes (LSB-first bitstream) */
    size_t row_bytes;
    const void *scales;    /* [rows, groups] in sdt */
    const void *biases;    /* [rows, groups] in sdt; NULL when symmetric */
    uq_dtype sdt;          /* F32, F16 or BF16 */
    int bits;              /* 1..8 */
    int symmetric;
    int64_t group;         /* codes per scale: a multiple of UQ_CPU_QBLOCK dividing cols */
    int64_t groups;        /* cols / group */
    int64_t cols;          /* a multiple of UQ_CPU_QBLOCK */
} uq_cpu_qweight;

/* Quantized activations of n input rows. */
typedef struct uq_cpu_qact {
    const int8_t *q;       /* [n, cols] */
    const float *xs;       /* [n, cols / 4]: xs[j] scales codes 4j..4j+3 (the scale of their block) */
    const float *xsb;      /* [n, cols / 32]: the scale of each 32 codes (pairs equal with 64-blocks) */
    const float *gsum;     /* [n, groups]: sum of the rounded inputs (xscale * xq) over each weight group */
    int64_t cols, groups;
    int block;             /* 32 or 64 */
} uq_cpu_qact;

typedef struct uq_cpu_kernels {
    const char *name;      /* "AVX-512 VNNI", "AVX2+FMA", "NEON", "generic" */
    uq_cpu_level level;
    /* Quantizes one row of cols inputs in blocks of `block` (32, or 64 for
     * tables with block64 set; cols and group are multiples of it) into
     * q [cols], xs [cols / 4], xsb [cols / 32] and gsum [cols / group].
     * A block holding a NaN or an infinity (or whose sum overflows) gets zero
     * codes and a NaN scale, so the outputs it touches are NaN. */
    void (*quantize_row)(const float *x, int64_t cols, int64_t group, int block, int8_t *q, float *xs, float *xsb,
                         float *gsum);
    /* y[t * ldy + i] = row r0 + i of w . input t, for i < nr and t < nt (the
     * activations x start at input 0 of the block). scratch holds at least
     * uq_cpu_qgemm_scratch(w, nr, nt) floats, 64-byte aligned. */
    void (*qgemm)(const uq_cpu_qweight *w, int64_t r0, int64_t nr, const uq_cpu_qact *x, int64_t nt, float *y,
                  int64_t ldy, float *scratch);
    /* Float weights: nr rows of cols elements of dtype dt (F32, F16 or BF16)
     * at w, row after row; x [nt, cols] f32; y as for qgemm. scratch holds
     * cols + 64 floats, 64-byte aligned. */
    void (*fgemm)(const void *w, uq_dtype dt, int64_t cols, int64_t nr, const float *x, int64_t nt, float *y,
                  int64_t ldy, float *scratch);
    /* Whether quantize_row takes 64-value blocks (and qgemm reads them). */
    int block64;
} uq_cpu_kernels;

/* Float weights on the SIMD levels: each level provides tile functions
 * (one per weight dtype: F32, F16, BF16) computing up to R rows x T inputs
 * of y, and uq_cpu_fgemm_tiled walks the tiles. */
typedef struct uq_cpu_fctx {
    const char *w;    /* row i at w + i * row_bytes */
    size_t row_bytes;
    int64_t cols;
    const float *x;   /* [inputs, cols] */
} uq_cpu_fctx;
typedef void (*uq_cpu_ftile)(const uq_cpu_fctx *c, int64_t i0, int64_t t0, float *y, int64_t ldy, int R, int T);
/* fgemm's contract, with tiles[0..2] for F32, F16, BF16 weights and tiles of
 * at most R rows x T inputs. */
void uq_cpu_fgemm_tiled(const void *w, uq_dtype dt, int64_t cols, int64_t nr, const float *x, int64_t nt, float *y,
                        int64_t ldy, const uq_cpu_ftile tiles[3], int R, int T);

/* Floats of per-thread scratch qgemm needs for nr rows of w and nt inputs. */
size_t uq_cpu_qgemm_scratch(const uq_cpu_qweight *w, int64_t nr, int64_t nt);

/* Unpacks n codes (a multiple of 8) of `bits` bits from an LSB-first
 * bitstream starting on a byte boundary, one code per byte. */
void uq_cpu_unpack_codes(const uint8_t *src, int bits, int64_t n, uint8_t *dst);

/* The tables built for this architecture (uq_cpu_level_usable says which run
 * on this CPU). */
extern const uq_cpu_kernels uq_cpu_kernels_generic;
#if defined(__x86_64__) && defined(__GNUC__)
#define UQ_CPU_X86 1
extern const uq_cpu_kernels uq_cpu_kernels_avx2;
extern const uq_cpu_kernels uq_cpu_kernels_avx512;
#endif
#if defined(__aarch64__) && defined(__GNUC__)
#define UQ_CPU_ARM 1
extern const uq_cpu_kernels uq_cpu_kernels_neon;
#endif

/* The best level this CPU runs. */
uq_cpu_level uq_cpu_detect(void);
/* Whether level l is built in and runs on this CPU. */
int uq_cpu_level_usable(uq_cpu_level l);
/* The kernel table of level l, or NULL when it is not usable. */
const uq_cpu_kernels *uq_cpu_kernels_for(uq_cpu_level l);
/* "AVX-512 VNNI", "AVX2+FMA", "NEON", "generic". */
const char *uq_cpu_level_name(uq_cpu_level l);

/* Makes backends initialised from now on use level l (tests, benchmarks), or
 * the best level again for l < 0. Returns 0 when l is not usable here (the
 * setting is then unchanged). Not thread-safe: call it before creating
 * contexts. */
int uq_cpu_force_level(int l);

/* The kernel set an initialised "cpu" backend runs ("" for another backend):
 * for --verbose. */
const char *uq_cpu_backend_kernels(const uq_backend *b);

#endif
