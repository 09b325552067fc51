/* The "cpu" backend: the matrix product of the forward pass on SIMD kernels
 * chosen for this CPU at init (cpu_kernels.h), with the portable C kernels of
 * this file as the generic level.
 *
 * A call quantizes its inputs to int8 once (on the calling thread for a few
 * inputs, over the pool for many), then runs a grid of tasks, each a range of
 * output rows x a range of inputs (about 128K multiply-adds at least,
 * activations within L2). Inside a task the kernels work in tiles of up to 4
 * rows x 4 inputs (8 rows x 1 input when decoding) fixed by the shape alone,
 * so results never depend on the thread count: each unpacked chunk of weights
 * serves every input of the tile from registers.
 *
 * Tolerance against cpu-ref (what tests/test_cpu_kernels.c checks):
 *  - float weights: |y - y_ref| <= 1e-5 * sum_i |w_i x_i|: only the order of
 *    the f32 additions differs;
 *  - quantized weights: the product is the exact one of the dequantized
 *    weights w_i with the inputs rounded to int8 per block of 32 (64 for the
 *    AVX-512 kernels when the group size is a multiple of 64), xscale =
 *    absmax / 127, so with q_i the codes, s_i and b_i their group's scale and
 *    bias,
 *        |y - y_ref| <= sum_i |w_i| * xscale_i / 2
 *                       + 1e-4 * (sum_i |w_i x_i| + sum_i |q_i s_i x_i| + sum_i |b_i x_i|)
 *    the first term being the worst case of the input rounding and the second
 *    float rounding. On Gaussian inputs the RMS error of a product stays
 *    below 2e-2 of the RMS output (0.6% to 0.8% measured; rounding the
 *    weights to 4 bits costs about 10%).
 *  - weights the integer kernels do not take (cols or the group size not a
 *    multiple of 32) are dequantized row by row and go through the float
 *    kernels: the float tolerance applies.
 *  - non-finite inputs give NaN outputs (where cpu-ref may give an
 *    infinity). */
#include "backend/cpu/cpu_kernels.h"

#include "core/error.h"
#include "core/vec.h"
#include "model/model_internal.h"
#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ levels */

#ifdef UQ_CPU_X86
#include <cpuid.h>

/* F16C (CPUID.1:ECX bit 29): not every compiler's __builtin_cpu_supports knows it. */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

static int level_runs(uq_cpu_level l)
{
    switch (l) {
    case UQ_CPU_GENERIC:
        return 1;
#ifdef UQ_CPU_X86
    case UQ_CPU_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case UQ_CPU_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c() &&
               __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi");
#endif
#ifdef UQ_CPU_ARM
    case UQ_CPU_NEON:
        return 1; /* Advanced SIMD is part of every AArch64 CPU */
#endif
    default:
        return 0;
    }
}

int uq_cpu_level_usable(uq_cpu_level l) { return l >= 0 && l < UQ_CPU_LEVEL_COUNT && level_runs(l); }

const uq_cpu_kernels *uq_cpu_kernels_for(uq_cpu_level l)
{
    if (!uq_cpu_level_usable(l)) return NULL;
    switch (l) {
#ifdef UQ_CPU_X86
    case UQ_CPU_AVX2:
        return &uq_cpu_kernels_avx2;
    case UQ_CPU_AVX512:
        return &uq_cpu_kernels_avx512;
#endif
#ifdef UQ_CPU_ARM
    case UQ_CPU_NEON:
        return &uq_cpu_kernels_neon;
#endif
    default:
        return &uq_cpu_kernels_generic;
    }
}

uq_cpu_level uq_cpu_detect(void)
{
    static const uq_cpu_level order[] = {UQ_CPU_AVX512, UQ_CPU_AVX2, UQ_CPU_NEON};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (uq_cpu_level_usable(order[i])) return order[i];
    return UQ_CPU_GENERIC;
}

const char *uq_cpu_level_name(uq_cpu_level l)
{
    switch (l) {
    case UQ_CPU_GENERIC: return "generic";
    case UQ_CPU_AVX2: return "AVX2+FMA";
    case UQ_CPU_AVX512: return "AVX-512 VNNI";
    case UQ_CPU_NEON: return "NEON";
    default: return "?";
    }
}

static int forced_level = -1;

int uq_cpu_force_level(int l)
{
    if (l < 0) {
        forced_level = -1;
        return 1;
    }
    if (!uq_cpu_level_usable((uq_cpu_level)l)) return 0;
    forced_level = l;
    return 1;
}

/* The description names the kernels this CPU gets; filled before main. */
static char cpu_description[96] = "SIMD kernels for this CPU (int8 activations)";

__attribute__((constructor)) static void cpu_describe(void)
{
    snprintf(cpu_description, sizeof cpu_description, "%s kernels (int8 activations for quantized weights)",
             uq_cpu_level_name(uq_cpu_detect()));
}

/* ------------------------------------------------- portable kernels */

void uq_cpu_unpack_codes(const uint8_t *src, int bits, int64_t n, uint8_t *dst)
{
    /* 8 codes (bits bytes) at a time: split the 8*bits-bit value into two
     * 4-code halves (one per 32-bit lane), then 2-code quarters (16-bit
     * lanes), then single codes (bytes). */
    const unsigned b = (unsigned)bits;
    const uint64_t m4 = b == 8 ? 0xffffffffull : (1ull << (4 * b)) - 1;
    const uint64_t m2 = ((1ull << (2 * b)) - 1) * 0x0000000100000001ull;
    const uint64_t m1 = ((1ull << b) - 1) * 0x0001000100010001ull;
    for (int64_t k = 0; k < n; k += 8) {
        uint64_t v = 0;
        for (unsigned j = 0; j < b; j++) v |= (uint64_t)src[j] << (8 * j);
        src += b;
        uint64_t d = (v & m4) | (((v >> (4 * b)) & m4) << 32);
        uint64_t h = (d & m2) | (((d >> (2 * b)) & m2) << 16);
        uint64_t c = (h & m1) | (((h >> b) & m1) << 8);
        for (int j = 0; j < 8; j++) dst[j] = (uint8_t)(c >> (8 * j));
        dst += 8;
    }
}

static void quantize_row_generic(const float *x, int64_t cols, int64_t group, int block, int8_t *q, float *xs,
                                 float *xsb, float *gsum)
{
    const int64_t per_group = group / block;
    float gs = 0;
    for (int64_t blk = 0; blk < cols / block; blk++) {
        const float *v = x + blk * block;
        int8_t *o = q + blk * block;
        float amax = 0, sum = 0;
        for (int i = 0; i < block; i++) {
            float a = fabsf(v[i]);
            amax = a > amax ? a : amax;
            sum += v[i];
        }
        float scale = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
        int32_t isum = 0;
        if (!isfinite(sum) || !isfinite(amax)) {
            scale = NAN;
            memset(o, 0, (size_t)block);
        } else {
            for (int i = 0; i < block; i++) {
                o[i] = (int8_t)lrintf(v[i] * inv); /* within [-127, 127] */
                isum += o[i];
            }
        }
        for (int j = 0; j < block / 4; j++) xs[blk * (block / 4) + j] = scale;
        for (int j = 0; j < block / 32; j++) xsb[blk * (block / 32) + j] = scale;
        gs += scale * (float)isum;
        if ((blk + 1) % per_group == 0) {
            gsum[blk / per_group] = gs;
            gs = 0;
        }
    }
}

/* The row's scales and effective biases (symmetric: -2^(bits-1) * scale) in f32. */
static void row_scales(const uq_cpu_qweight *w, int64_t r, float *sc, float *be)
{
    const size_t base = (size_t)r * (size_t)w->groups;
    const float off = (float)(1 << (w->bits - 1));
    for (int64_t g = 0; g < w->groups; g++) {
        sc[g] = uq_qload(w->sdt, w->scales, base + (size_t)g);
        be[g] = w->symmetric ? -off * sc[g] : uq_qload(w->sdt, w->biases, base + (size_t)g);
    }
}

size_t uq_cpu_qgemm_scratch(const uq_cpu_qweight *w, int64_t nr, int64_t nt)
{
    /* scales and biases of nr rows padded to 16 floats, the scales again
     * transposed by blocks of 4 rows (rounded up to 8 rows), the inputs'
     * 64-block scales by blocks of 4 inputs, the inputs deinterleaved with
     * their chunk scales (4-bit kernels), and room for alignment */
    const size_t gp = ((size_t)w->groups + 15) & ~(size_t)15, r8 = ((size_t)nr + 7) & ~(size_t)7;
    const size_t t4 = ((size_t)nt + 3) & ~(size_t)3;
    return 3 * gp * r8 + t4 * ((size_t)w->cols / 16 + 16) + t4 * ((size_t)w->cols * 3 / 8 + 48) + 512;
}

static void qgemm_generic(const uq_cpu_qweight *w, int64_t r0, int64_t nr, const uq_cpu_qact *x, int64_t nt, float *y,
                          int64_t ldy, float *scratch)
{
    const int64_t cols = w->cols, G = w->groups, bpg = w->group / UQ_CPU_QBLOCK;
    float *sc = scratch, *be = scratch + G;
    uint8_t *codes = (uint8_t *)(be + G);
    for (int64_t i = 0; i < nr; i++) {
        const int64_t r = r0 + i;
        row_scales(w, r, sc, be);
        uq_cpu_unpack_codes(w->packed + (size_t)r * w->row_bytes, w->bits, cols, codes);
        for (int64_t t = 0; t < nt; t++) {
            const int8_t *xq = x->q + t * cols;
            const float *xs = x->xs + t * (cols / 4), *gsum = x->gsum + t * G;
            float acc = 0;
            for (int64_t g = 0; g < G; g++) {
                float ga = 0;
                for (int64_t k = g * bpg; k < (g + 1) * bpg; k++) {
                    int32_t d = 0;
                    for (int j = 0; j < UQ_CPU_QBLOCK; j++)
                        d += (int32_t)codes[k * UQ_CPU_QBLOCK + j] * xq[k * UQ_CPU_QBLOCK + j];
                    ga += (float)d * xs[k * (UQ_CPU_QBLOCK / 4)];
                }
                acc += sc[g] * ga + be[g] * gsum[g];
            }
            y[t * ldy + i] = acc;
        }
    }
}

static void fgemm_generic(const void *w, uq_dtype dt, int64_t cols, int64_t nr, const float *x, int64_t nt, float *y,
                          int64_t ldy, float *scratch)
{
    const size_t el = uq_dtype_size(dt);
    for (int64_t i = 0; i < nr; i++) {
        const void *src = (const unsigned char *)w + (size_t)i * (size_t)cols * el;
        const float *row = scratch;
        if (dt == UQ_F32 && ((uintptr_t)src & 3) == 0)
            row = src;
        else
            uq_to_f32(dt, src, scratch, (size_t)cols);
        for (int64_t t = 0; t < nt; t++) y[t * ldy + i] = uq_dot_f32(row, x + t * cols, cols);
    }
}

void uq_cpu_fgemm_tiled(const void *w, uq_dtype dt, int64_t cols, int64_t nr, const float *x, int64_t nt, float *y,
                        int64_t ldy, const uq_cpu_ftile tiles[3], int R, int T)
{
    const uq_cpu_fctx c = {.w = w, .row_bytes = (size_t)cols * uq_dtype_size(dt), .cols = cols, .x = x};
    const uq_cpu_ftile tile = tiles[dt == UQ_F32 ? 0 : dt == UQ_F16 ? 1 : 2];
    for (int64_t t0 = 0; t0 < nt; t0 += T)
        for (int64_t i0 = 0; i0 < nr; i0 += R)
            tile(&c, i0, t0, y, ldy, nr - i0 < R ? (int)(nr - i0) : R, nt - t0 < T ? (int)(nt - t0) : T);
}

const uq_cpu_kernels uq_cpu_kernels_generic = {
    .name = "generic",
    .level = UQ_CPU_GENERIC,
    .quantize_row = quantize_row_generic,
    .qgemm = qgemm_generic,
    .fgemm = fgemm_generic,
    .block64 = 0,
};

/* ------------------------------------------------------------ backend */

typedef struct cpu_state {
    const uq_cpu_kernels *k;
    int threads;
    /* quantized activations of up to tok_cap inputs of up to cols_cap values */
    int64_t cols_cap, tok_cap;
    int8_t *xq;
    float *xs, *xsb, *gsum;
    /* per-thread scratch (one allocation each), scratch_floats floats */
    float **scratch;
    size_t scratch_floats;
} cpu_state;

static void *alloc64(size_t bytes) { return aligned_alloc(64, (bytes + 63) & ~(size_t)63); }

static void free_acts(cpu_state *s)
{
    free(s->xq);
    free(s->xs);
    free(s->xsb);
    free(s->gsum);
    s->xq = NULL;
    s->xs = s->xsb = s->gsum = NULL;
    s->cols_cap = s->tok_cap = 0;
}

/* Activation buffers for inputs of cols values. */
static int ensure_acts(cpu_state *s, int64_t cols)
{
    if (cols <= s->cols_cap && s->xq) return 1;
    free_acts(s);
    /* up to 512 inputs a chunk (the forward pass's largest batch), fewer for
     * very wide rows so the buffers stay around 32 MB */
    const size_t per_tok = (size_t)cols * 2 + (size_t)cols / 8 + 64;
    int64_t cap = (int64_t)((32u << 20) / per_tok);
    cap = cap > 512 ? 512 : cap < 16 ? 16 : cap;
    s->xq = alloc64((size_t)cap * (size_t)cols);
    s->xs = alloc64((size_t)cap * (size_t)cols);           /* cols / 4 floats per input */
    s->xsb = alloc64((size_t)cap * ((size_t)cols / 8 + 16)); /* cols / 32 floats per input */
    s->gsum = alloc64((size_t)cap * ((size_t)cols / 8 + 16));
    if (!s->xq || !s->xs || !s->xsb || !s->gsum) {
        free_acts(s);
        return 0;
    }
    s->cols_cap = cols;
    s->tok_cap = cap;
    return 1;
}

static void free_scratch(cpu_state *s)
{
    for (int i = 0; s->scratch && i < s->threads; i++) free(s->scratch[i]);
    free(s->scratch);
    s->scratch = NULL;
    s->scratch_floats = 0;
}

static int ensure_scratch(cpu_state *s, size_t floats)
{
    floats = (floats + 15) & ~(size_t)15;
    if (floats <= s->scratch_floats && s->scratch) return 1;
    free_scratch(s);
    s->scratch = calloc((size_t)s->threads, sizeof *s->scratch);
    if (!s->scratch) return 0;
    for (int i = 0; i < s->threads; i++)
        if (!(s->scratch[i] = alloc64(floats * sizeof(float)))) {
            free_scratch(s);
            return 0;
        }
    s->scratch_floats = floats;
    return 1;
}

static int cpu_available(char *why, size_t cap)
{
    (void)why;
    (void)cap;
    return 1;
}

static void cpu_caps(uq_backend_caps *c)
{
    c->affine_bits = 0x1feu;    /* 1..8 */
    c->symmetric_bits = 0x1fcu; /* 2..8 */
    c->float_weights = 1;
    c->training = 0;
}

static void cpu_release(uq_backend *b)
{
    cpu_state *s = b->state;
    if (!s) return;
    free_acts(s);
    free_scratch(s);
    free(s);
    b->state = NULL;
}

static uq_status cpu_init(uq_backend *b, int64_t max_cols)
{
    cpu_state *s = calloc(1, sizeof *s);
    if (!s) return uq_fail(UQ_ERR_NOMEM, "cpu backend: out of memory");
    b->state = s;
    s->k = uq_cpu_kernels_for(forced_level >= 0 ? (uq_cpu_level)forced_level : uq_cpu_detect());
    if (!s->k) s->k = &uq_cpu_kernels_generic;
    s->threads = uq_pool_threads(b->pool);
    if (max_cols < UQ_CPU_QBLOCK) max_cols = UQ_CPU_QBLOCK;
    if (!ensure_acts(s, max_cols) || !ensure_scratch(s, (size_t)max_cols * 6 + 1024)) {
        cpu_release(b);
        return uq_fail(UQ_ERR_NOMEM, "cpu backend: out of memory for %lld-wide rows", (long long)max_cols);
    }
    return UQ_OK;
}

const char *uq_cpu_backend_kernels(const uq_backend *b)
{
    if (!b || b->ops != &uq_backend_cpu || !b->state) return "";
    return ((const cpu_state *)b->state)->k->name;
}

/* Rows of a tile the kernels block over: tasks hold multiples of it. */
#define ROW_STEP 8

/* Tasks: a grid of row ranges x input ranges. Consecutive tasks share their
 * inputs (rows vary fastest), so the threads working at one time read the
 * same activations. Every output is computed by one tile whose shape depends
 * on the matrix alone (tasks hold whole tiles), so how the grid is cut, and
 * by how many threads it is run, never changes a result. */
typedef struct plan {
    int64_t rows_per_task, row_tasks;
    int64_t toks_per_task, tok_tasks;
} plan;

static plan make_plan(int64_t rows, int64_t cols, int64_t n, size_t bytes_per_input, size_t bytes_per_row, int threads)
{
    plan p;
    /* inputs per task: those whose activations fit in ~256 KB (L2) */
    int64_t tt = (int64_t)((256u << 10) / (bytes_per_input ? bytes_per_input : 1));
    tt = tt < 4 ? 4 : tt > 64 ? 64 : tt & ~(int64_t)3;
    p.toks_per_task = n < tt ? n : tt;
    p.tok_tasks = (n + p.toks_per_task - 1) / p.toks_per_task;
    /* about 64K multiply-adds a task at least (a few microseconds: waking
     * a worker costs about as much); few tasks otherwise: each converts its
     * rows' scales and prepares its inputs, and long runs of rows stream
     * better; enough of them (4 a thread) to balance the threads */
    double work = (double)rows * (double)cols * (double)n;
    int64_t want = (int64_t)(work / 65536.0), most = threads * 4 > 32 ? threads * 4 : 32;
    want = want < 1 ? 1 : want > most ? most : want;
    int64_t rt = (want + p.tok_tasks - 1) / p.tok_tasks;
    int64_t rpt = (rows + rt - 1) / rt;
    rpt = (rpt + ROW_STEP - 1) / ROW_STEP * ROW_STEP;
    /* keep a task's weights within ~1 MB (L2) */
    int64_t cap = (int64_t)((1024u << 10) / (bytes_per_row ? bytes_per_row : 1));
    cap = cap < ROW_STEP ? ROW_STEP : cap / ROW_STEP * ROW_STEP;
    if (rpt > cap) rpt = cap;
    if (rpt < ROW_STEP) rpt = ROW_STEP;
    p.rows_per_task = rpt;
    p.row_tasks = (rows + rpt - 1) / rpt;
    return p;
}

typedef struct job {
    cpu_state *s;
    const uq_weight *w;
    plan p;
    const float *x; /* inputs of this chunk */
    int64_t n;      /* inputs in this chunk */
    float *y;       /* outputs of this chunk */
    uq_cpu_qweight qw;
    uq_cpu_qact qa;
    uq_qparams qp;  /* for the dequantizing path */
} job;

static void task_range(const job *j, int64_t task, int64_t *r0, int64_t *nr, int64_t *t0, int64_t *nt)
{
    int64_t ri = task % j->p.row_tasks, ti = task / j->p.row_tasks;
    *r0 = ri * j->p.rows_per_task;
    *nr = j->w->rows - *r0 < j->p.rows_per_task ? j->w->rows - *r0 : j->p.rows_per_task;
    *t0 = ti * j->p.toks_per_task;
    *nt = j->n - *t0 < j->p.toks_per_task ? j->n - *t0 : j->p.toks_per_task;
}

static float *thread_scratch(const job *j, int thread) { return j->s->scratch[thread]; }

static void quantize_task(void *arg, int64_t task, int thread)
{
    (void)thread;
    job *j = arg;
    const int64_t cols = j->qw.cols, G = j->qw.groups;
    for (int64_t t = task * 8; t < j->n && t < task * 8 + 8; t++)
        j->s->k->quantize_row(j->x + t * cols, cols, j->qw.group, j->qa.block, j->s->xq + t * cols,
                              j->s->xs + t * (cols / 4), j->s->xsb + t * (cols / 32), j->s->gsum + t * G);
}

static void qgemm_task(void *arg, int64_t task, int thread)
{
    job *j = arg;
    int64_t r0, nr, t0, nt;
    task_range(j, task, &r0, &nr, &t0, &nt);
    uq_cpu_qact a = j->qa;
    a.q += t0 * a.cols;
    a.xs += t0 * (a.cols / 4);
    a.xsb += t0 * (a.cols / 32);
    a.gsum += t0 * a.groups;
    j->s->k->qgemm(&j->qw, r0, nr, &a, nt, j->y + t0 * j->w->rows + r0, j->w->rows, thread_scratch(j, thread));
}

static void fgemm_task(void *arg, int64_t task, int thread)
{
    job *j = arg;
    const uq_weight *w = j->w;
    int64_t r0, nr, t0, nt;
    task_range(j, task, &r0, &nr, &t0, &nt);
    const size_t el = uq_dtype_size(w->dtype);
    const unsigned char *rows = (const unsigned char *)w->weight->data + (size_t)r0 * (size_t)w->cols * el;
    j->s->k->fgemm(rows, w->dtype, w->cols, nr, j->x + t0 * w->cols, nt, j->y + t0 * w->rows + r0, w->rows,
                   thread_scratch(j, thread));
}

/* Weights the integer kernels do not take: dequantize ROW_STEP rows at a time
 * into scratch and use the float kernel. */
static void dequant_task(void *arg, int64_t task, int thread)
{
    job *j = arg;
    const uq_weight *w = j->w;
    int64_t r0, nr, t0, nt;
    task_range(j, task, &r0, &nr, &t0, &nt);
    float *rows = thread_scratch(j, thread), *rest = rows + (size_t)ROW_STEP * (size_t)w->cols;
    for (int64_t i = 0; i < nr; i += ROW_STEP) {
        int64_t m = nr - i < ROW_STEP ? nr - i : ROW_STEP;
        uq_dequantize_rows(&j->qp, w->cols, w->weight->data, w->scales->data, w->biases ? w->biases->data : NULL,
                           r0 + i, m, rows);
        j->s->k->fgemm(rows, UQ_F32, w->cols, m, j->x + t0 * w->cols, nt, j->y + t0 * w->rows + r0 + i, w->rows,
                       rest);
    }
}

static int int8_path(const uq_weight *w)
{
    int64_t g = w->group_size;
    return w->bits >= 1 && w->bits <= 8 && w->cols % UQ_CPU_QBLOCK == 0 && g > 0 && g % UQ_CPU_QBLOCK == 0 &&
           w->cols % g == 0 && (w->scheme == UQ_SCHEME_SYMMETRIC || w->biases) &&
           (w->dtype == UQ_F32 || w->dtype == UQ_F16 || w->dtype == UQ_BF16);
}

static void fill_nan(float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = NAN;
}

/* The integer-kernel view of w. */
static uq_cpu_qweight qweight_of(const uq_weight *w, const uq_qparams *qp)
{
    return (uq_cpu_qweight){
        .packed = w->weight->data,
        .row_bytes = uq_quant_words_per_row(qp, w->cols) * 4,
        .scales = w->scales->data,
        .biases = w->scheme == UQ_SCHEME_AFFINE ? w->biases->data : NULL,
        .sdt = w->dtype,
        .bits = w->bits,
        .symmetric = w->scheme == UQ_SCHEME_SYMMETRIC,
        .group = w->group_size,
        .groups = w->cols / w->group_size,
        .cols = w->cols,
    };
}

/* Runs the tasks of several jobs as one pool run: task i of the run is task
 * i - first[j] of job j. */
typedef struct multi {
    job *jobs[UQ_MATMUL_MAX];
    int64_t first[UQ_MATMUL_MAX + 1];
    int count;
    uq_task_fn fn[UQ_MATMUL_MAX];
} multi;

static void multi_task(void *arg, int64_t task, int thread)
{
    multi *m = arg;
    int j = 0;
    while (task >= m->first[j + 1]) j++;
    m->fn[j](m->jobs[j], task - m->first[j], thread);
}

static void run_jobs(uq_backend *b, job *const *jobs, uq_task_fn const *fn, int count)
{
    multi m = {.count = count};
    m.first[0] = 0;
    for (int i = 0; i < count; i++) {
        m.jobs[i] = jobs[i];
        m.fn[i] = fn[i];
        m.first[i + 1] = m.first[i] + jobs[i]->p.row_tasks * jobs[i]->p.tok_tasks;
    }
    if (count == 1)
        uq_pool_run(b->pool, m.first[1], fn[0], jobs[0]);
    else
        uq_pool_run(b->pool, m.first[count], multi_task, &m);
}

/* Weights that share one quantized input: the integer path with equal
 * widths and group sizes, none empty. */
static int share_input(const uq_weight *const *w, int count)
{
    for (int i = 0; i < count; i++)
        if (w[i]->rows <= 0 || !w[i]->quantized || !int8_path(w[i]) || w[i]->cols != w[0]->cols ||
            w[i]->group_size != w[0]->group_size)
            return 0;
    return 1;
}

/* count weights on the same n inputs x; y[i] receives w[i]'s products. */
static void cpu_matmul_many(uq_backend *b, const uq_weight *const *w, int count, const float *x, int64_t n,
                            float *const *y)
{
    cpu_state *s = b->state;
    if (n <= 0 || count <= 0) return;
    if (count > UQ_MATMUL_MAX || (count > 1 && !share_input(w, count))) {
        for (int i = 0; i < count; i++) cpu_matmul_many(b, &w[i], 1, x, n, &y[i]);
        return;
    }
    if (w[0]->rows <= 0) return;
    job jobs[UQ_MATMUL_MAX], *jp[UQ_MATMUL_MAX];
    uq_task_fn fn[UQ_MATMUL_MAX];
    const int64_t cols = w[0]->cols;
    if (count == 1 && !w[0]->quantized) {
        if (!ensure_scratch(s, (size_t)cols + 64)) goto nomem;
        jobs[0] = (job){.s = s, .w = w[0], .x = x, .n = n, .y = y[0]};
        jobs[0].p =
            make_plan(w[0]->rows, cols, n, (size_t)cols * 4, (size_t)cols * uq_dtype_size(w[0]->dtype), s->threads);
        jp[0] = &jobs[0];
        fn[0] = fgemm_task;
        run_jobs(b, jp, fn, 1);
        return;
    }
    if (count == 1 && !int8_path(w[0])) {
        if (!ensure_scratch(s, (size_t)cols * (ROW_STEP + 1) + 64)) goto nomem;
        jobs[0] = (job){.s = s, .w = w[0], .x = x, .n = n, .y = y[0], .qp = uq_weight_qparams(w[0])};
        jobs[0].p = make_plan(w[0]->rows, cols, n, (size_t)cols * 4, (size_t)cols * 4, s->threads);
        jp[0] = &jobs[0];
        fn[0] = dequant_task;
        run_jobs(b, jp, fn, 1);
        return;
    }
    if (!ensure_acts(s, cols)) goto nomem;
    for (int i = 0; i < count; i++) {
        jobs[i] = (job){.s = s, .w = w[i], .qp = uq_weight_qparams(w[i])};
        jobs[i].qw = qweight_of(w[i], &jobs[i].qp);
        jp[i] = &jobs[i];
        fn[i] = qgemm_task;
    }
    const int64_t group = jobs[0].qw.group, groups = jobs[0].qw.groups;
    const int block = s->k->block64 && cols % 64 == 0 && group % 64 == 0 ? 64 : 32;
    const uq_cpu_qact qa = {
        .q = s->xq, .xs = s->xs, .xsb = s->xsb, .gsum = s->gsum, .cols = cols, .groups = groups, .block = block};
    for (int64_t t0 = 0; t0 < n; t0 += s->tok_cap) {
        const int64_t m = n - t0 < s->tok_cap ? n - t0 : s->tok_cap;
        size_t need = 0;
        for (int i = 0; i < count; i++) {
            job *j = &jobs[i];
            const size_t row_bytes = (size_t)cols * (size_t)j->qw.bits / 8 + (size_t)groups * 4;
            j->qa = qa;
            j->n = m;
            j->x = x + t0 * cols;
            j->y = y[i] + t0 * w[i]->rows;
            j->p = make_plan(w[i]->rows, cols, m, (size_t)cols * 2, row_bytes, s->threads);
            size_t k = uq_cpu_qgemm_scratch(&j->qw, j->p.rows_per_task, j->p.toks_per_task);
            need = k > need ? k : need;
        }
        if (!ensure_scratch(s, need)) goto nomem;
        /* the inputs quantized once for all the weights */
        const int64_t qtasks = (m + 7) / 8;
        if (m >= 16)
            uq_pool_run(b->pool, qtasks, quantize_task, &jobs[0]);
        else
            for (int64_t i = 0; i < qtasks; i++) quantize_task(&jobs[0], i, 0);
        run_jobs(b, jp, fn, count);
    }
    return;
nomem:
    for (int i = 0; i < count; i++) fill_nan(y[i], (size_t)n * (size_t)w[i]->rows);
}

static void cpu_matmul(uq_backend *b, const uq_weight *w, const float *x, int64_t n, float *y)
{
    cpu_matmul_many(b, &w, 1, x, n, &y);
}

const uq_backend_ops uq_backend_cpu = {
    .name = "cpu",
    .description = cpu_description,
    .available = cpu_available,
    .caps = cpu_caps,
    .init = cpu_init,
    .release = cpu_release,
    .matmul = cpu_matmul,
    .matmul_n = cpu_matmul_many,
};
