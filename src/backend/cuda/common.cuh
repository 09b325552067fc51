/* Shared by the CUDA module's sources: kernel argument structs, small device
 * helpers and the launchers each .cu file provides to module.cu. */
#ifndef UQ_BACKEND_CUDA_COMMON_CUH
#define UQ_BACKEND_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cuda_module.h"
#include "uquant.h"

/* Weight formats the kernels are built for: 1..8 are quantized bit widths. */
#define FMT_BF16 32
#define FMT_F16 33
#define FMT_F32 34

/* What a matrix product does with its result. */
#define MM_STORE 0  /* y = W x (+ bias) */
#define MM_ADD 1    /* y += W x (+ bias): residual connections */
#define MM_SWIGLU 2 /* two segments (gate, up): y = silu(gate x) * (up x) */

/* A weight matrix on the device, as stored. */
typedef struct dmat {
    int quantized, scheme, bits, group, dtype; /* dtype: the float weight's, or the scales' */
    int64_t rows, cols, wpr;                   /* wpr: packed 32-bit words per row */
    const void *w, *s, *b;                     /* data, scales, biases (device) */
} dmat;

/* One weight of a fused product: its rows go to output columns
 * [out_off, out_off + rows). */
typedef struct mm_seg {
    const void *w, *s, *b;
    const float *bias;   /* added to the output (projection bias), or NULL */
    int64_t rows, wpr, out_off;
    int scheme, group, sdt;
    int blk0;            /* first block of the segment (set by the launcher) */
} mm_seg;

/* Attention of one step (attention.cu; one token's also inside the O
 * product's GEMV: gemv_attn.cuh, gemv_mma.cu). */
typedef struct attn_args {
    float *qkv;          /* [n][ldq]: q (rotated in place), k, v */
    int64_t ldq;
    float *kc, *vc;      /* this layer's caches of sequence 0; sequences are seq_stride apart */
    int64_t seq_stride;
    const float *rope_cos, *rope_sin;
    const int64_t *dyn;
    float *out;          /* [n][q_dim] */
    int n;
    int n_heads, n_kv, head_dim;
    int64_t kv_dim, q_dim;
    int64_t split_len;   /* positions per block of decode attention (attention.cu's kernel) */
    float *scratch;      /* [n][heads][ATT_SPLITS][ATT_PART] partial results */
    int *counters;       /* [n][heads], zero between launches */
    int fused;           /* one token, decode kernel: RoPE and the cache store done by it */
    uint16_t *out_h, *out_l; /* prefill kernel, when out_h is set: out split into f16 halves (out_l may be NULL) */
    int *ready;          /* attention inside the O GEMV: {heads written, blocks done}, zero between launches */
} attn_args;

/* Decode attention's scratch: at most ATT_SPLITS splits of a (head, token),
 * each a partial result of ATT_PART floats (max, sum, a head of up to
 * ATT_MAXD values). */
#define ATT_SPLITS 32
#define ATT_MAXD 256
#define ATT_PART (ATT_MAXD + 2)

/* RoPE's rotate-half of the pair (x0, x1), rounded as src/runtime/ops.c. */
__device__ __forceinline__ void rope_rotate(float x0, float x1, float c, float s, float *o0, float *o1)
{
    *o0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
    *o1 = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
}

/* The decode step's own key (rotated, as rope_rotate) and value, token t,
 * key head kvh, position pos of sequence seq: key pairs i0, i0 + step, ...
 * below hd / 2 into ks, values j0, j0 + step, ... below hd into vs, and
 * with store also into the cache (which no kernel of the step reads at pos).
 * q/k/v read through L2 (they may come from the same kernel's blocks). */
__device__ __forceinline__ void att_own_kv(const attn_args &a, int t, int kvh, int64_t pos, int64_t seq, int store,
                                           int i0, int j0, int step, float *ks, float *vs)
{
    const int hd = a.head_dim, half = hd / 2;
    const float *cs = a.rope_cos + pos * half, *sn = a.rope_sin + pos * half;
    const float *kx = a.qkv + (int64_t)t * a.ldq + a.q_dim + kvh * hd, *vx = kx + a.kv_dim;
    float *kd = a.kc + seq * a.seq_stride + pos * a.kv_dim + kvh * hd;
    float *vd = a.vc + seq * a.seq_stride + pos * a.kv_dim + kvh * hd;
    for (int i = i0; i < half; i += step) {
        rope_rotate(__ldcg(kx + i), __ldcg(kx + i + half), cs[i], sn[i], &ks[i], &ks[i + half]);
        if (store) {
            kd[i] = ks[i];
            kd[i + half] = ks[i + half];
        }
    }
    for (int j = j0; j < hd; j += step) {
        vs[j] = __ldcg(vx + j);
        if (store) vd[j] = vs[j];
    }
}

/* The splits of a decode attention combined, by the block of the last to
 * finish (after its fence): the nsplit partials at base (ATT_PART floats
 * apart) read through L2, where the other blocks' fenced partials are, not
 * volatile, so that several splits' loads are in flight at once; the
 * thread's ND values d0 + k dstep (those below hd) into out. */
template <int ND>
__device__ __forceinline__ void att_combine(const float *base, int nsplit, int d0, int dstep, int hd, float *out)
{
    float gm = -INFINITY, gl = 0.0f, go[ND];
#pragma unroll
    for (int k = 0; k < ND; k++) go[k] = 0.0f;
#pragma unroll 4
    for (int s2 = 0; s2 < nsplit; s2++) gm = fmaxf(gm, __ldcg(base + s2 * ATT_PART));
#pragma unroll 4
    for (int s2 = 0; s2 < nsplit; s2++) {
        const float *pp = base + s2 * ATT_PART;
        const float w = expf(__ldcg(pp) - gm);
        gl += __ldcg(pp + 1) * w;
#pragma unroll
        for (int k = 0; k < ND; k++)
            if (d0 + k * dstep < hd) go[k] += __ldcg(pp + 2 + d0 + k * dstep) * w;
    }
#pragma unroll
    for (int k = 0; k < ND; k++)
        if (d0 + k * dstep < hd) out[d0 + k * dstep] = go[k] / gl;
}

/* A split's partial result (max m, sum l, the thread's ND values o at
 * d0 + k dstep below hd) into its slot of the scratch; the block of the
 * last split of the (head, token) to finish (the counter) combines them all
 * into out and zeroes the counter. Every thread of the block calls it (last:
 * a shared int); returns 1 in the block that combined. */
template <int ND>
__device__ __forceinline__ int att_split_done(float *scratch, int *counter, int slot, int sp, int nsplit, float m,
                                              float l, const float *o, int d0, int dstep, int hd, float *out,
                                              int *last)
{
    float *base = scratch + (int64_t)slot * ATT_SPLITS * ATT_PART, *part = base + sp * ATT_PART;
#pragma unroll
    for (int k = 0; k < ND; k++)
        if (d0 + k * dstep < hd) part[2 + d0 + k * dstep] = o[k];
    if (threadIdx.x == 0) {
        part[0] = m;
        part[1] = l;
    }
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) *last = atomicAdd(counter, 1) == nsplit - 1;
    __syncthreads();
    if (!*last) return 0;
    __threadfence();
    att_combine<ND>(base, nsplit, d0, dstep, hd, out);
    if (threadIdx.x == 0) *counter = 0;
    return 1;
}

typedef struct mm_args {
    mm_seg seg[3];
    int nseg;
    int fmt;             /* FMT_* or the bit width, shared by the segments */
    int mode;            /* MM_* */
    int64_t K;           /* input size (columns of W) */
    int n;               /* tokens */
    const float *x;      /* fp32 input [n][ldx] */
    int64_t ldx;
    const uint16_t *xh, *xl; /* GEMM input split into two 16-bit halves [n][K] */
    float *y;            /* output [n][ldy] */
    int64_t ldy;
    const float *norm_w; /* GEMV: RMSNorm x with these weights first */
    int ksplit;          /* GEMV: warps of a block splitting K (set by the launcher) */
    int groups;          /* GEMV: row groups (set by the launcher) */
    double norm_eps;
    uint16_t *yh;        /* GEMM in the SwiGLU mode: f16 output [n][ldyh] */
    int64_t ldyh;
    int ilv;             /* SwiGLU expansion: gate and up rows interleaved in runs of ilv (set by the launcher) */
    int attn;            /* GEMV of the O product for one token: the kernel runs the decode attention (att)
                          * first (only when gemv_mma_attn_ok) */
    int in_step;         /* GEMV: one of a forward step's products (the module's launches), each followed by
                          * a different one, not by the same product again */
    attn_args att;
} mm_args;

static inline int dmat_fmt(const dmat *m)
{
    if (m->quantized) return m->bits;
    return m->dtype == UQ_BF16 ? FMT_BF16 : m->dtype == UQ_F16 ? FMT_F16 : FMT_F32;
}

/* ------------------------------------------------- dependent launches */

/* Programmatic dependent launch (Hopper): a kernel lets the next one in its
 * stream start early (pdl_trigger) and waits for the previous one to finish,
 * its memory visible, before touching anything it produced (pdl_wait). Only
 * immutable data (weights) may be read, and nothing written, before the
 * wait. Without the launch attribute both are no-ops. */
__device__ __forceinline__ void pdl_trigger(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_wait(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

/* Whether launches carry the programmatic-serialization attribute (module.cu). */
extern int uq_cuda_pdl;

/* Launches fn with the argument pointers args, as a dependent launch when
 * uq_cuda_pdl is set. */
static inline cudaError_t launch_kernel(const void *fn, dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                                       void **args)
{
    cudaLaunchConfig_t cfg;
    cudaLaunchAttribute attr[1];
    memset(attr, 0, sizeof attr);
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = uq_cuda_pdl ? 1 : 0;
    return cudaLaunchKernelExC(&cfg, fn, args);
}

/* ------------------------------------------------------- device helpers */

/* Tensor-core pieces shared by the GEMM and attention: four 8 x 8 matrices
 * of 16-bit values from shared memory (transposed: for a B operand stored
 * k-major), and the m16n8k16 f16 MMA with fp32 accumulation. */
__device__ __forceinline__ void ldmatrix_x4(uint32_t *r, uint32_t saddr) /* a shared-space address */
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(saddr));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t *r, const void *smem)
{
    ldmatrix_x4(r, (uint32_t)__cvta_generic_to_shared(smem));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t *r, const void *smem)
{
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

__device__ __forceinline__ void mma_f16(float *c, const uint32_t *a, const uint32_t *b)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* v = hi + lo in f16 (hi rounded to nearest, lo the rest rounded): two
 * 16-bit values packed in a word per pair. */
__device__ __forceinline__ void split_f16x2(float a, float b, uint32_t *hi, uint32_t *lo)
{
    const __half2 h = __floats2half2_rn(a, b);
    const float2 hf = __half22float2(h);
    const __half2 l = __floats2half2_rn(a - hf.x, b - hf.y);
    *hi = *(const uint32_t *)&h;
    *lo = *(const uint32_t *)&l;
}

__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

/* A 16-bit scale or bias as a float: bf16 or f16, chosen without a branch. */
__device__ __forceinline__ float half_or_bf16(unsigned short h, int is_bf16)
{
    return is_bf16 ? __uint_as_float((uint32_t)h << 16) : __half2float(__ushort_as_half(h));
}

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* RMSNorm's inverse for a block's token: each thread's sum of squares ss
 * added over the warp, then over the block's nw warps in warp order (red:
 * nw doubles of shared memory; a barrier inside), 1 / sqrt(mean + eps). */
__device__ __forceinline__ float block_rms_inv(double ss, double *red, int nw, int64_t K, double eps)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
    __syncthreads();
    double t = 0.0;
    for (int w = 0; w < nw; w++) t += red[w];
    return (float)(1.0 / sqrt(t / (double)K + eps));
}

__device__ __forceinline__ float warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Element i of a scale / bias array of dtype t (F32, F16 or BF16), without
 * branches (so that loads can be issued together): the aligned 32-bit word
 * holding it is read and the value picked and converted with selects. A
 * 16-bit array's last element may share its word with 2 bytes past the end,
 * which lie inside the allocation's padding. */
__device__ __forceinline__ float load_scale(const void *p, int64_t i, int t)
{
    const int64_t byte = t == UQ_F32 ? i * 4 : i * 2;
    const uint32_t w = __ldg((const unsigned int *)((const char *)p + (byte & ~(int64_t)3)));
    const uint32_t h = (byte & 2) ? w >> 16 : w & 0xffffu;
    const float bf = __uint_as_float(h << 16), hf = __half2float(__ushort_as_half((unsigned short)h));
    return t == UQ_F32 ? __uint_as_float(w) : t == UQ_BF16 ? bf : hf;
}

/* Code k of a packed row (LSB-first bitstream of `bits`-bit codes). */
__device__ __forceinline__ uint32_t unpack_at(const uint32_t *row, int64_t wpr, int64_t k, int bits)
{
    int64_t bit = k * bits;
    int64_t wi = bit >> 5;
    uint64_t lo = __ldg(row + wi), hi = wi + 1 < wpr ? __ldg(row + wi + 1) : 0u;
    return (uint32_t)(((hi << 32) | lo) >> (bit & 31)) & ((1u << bits) - 1u);
}

/* Weight (row, k) of a matrix as the CPU dequantizes or converts it:
 * affine q * s + b and symmetric (q - 2^(bits-1)) * s, each operation
 * rounded on its own (no FMA). */
__device__ __forceinline__ float weight_at(const void *w, const void *s, const void *b, int quantized, int scheme,
                                           int bits, int group, int dtype, int64_t wpr, int64_t cols, int64_t row,
                                           int64_t k)
{
    if (!quantized) {
        if (dtype == UQ_BF16) return __uint_as_float((uint32_t)__ldg((const unsigned short *)w + row * cols + k) << 16);
        if (dtype == UQ_F16) return __half2float(__ushort_as_half(__ldg((const unsigned short *)w + row * cols + k)));
        return __ldg((const float *)w + row * cols + k);
    }
    uint32_t q = unpack_at((const uint32_t *)w + row * wpr, wpr, k, bits);
    int64_t gi = row * (cols / group) + k / group;
    float sc = load_scale(s, gi, dtype);
    if (scheme == UQ_SCHEME_AFFINE) return __fadd_rn(__fmul_rn((float)q, sc), load_scale(b, gi, dtype));
    return __fmul_rn((float)((int)q - (1 << (bits - 1))), sc);
}

/* -------------------------------------------------------- launchers */

/* gemv.cu: products for a few tokens (GEMV kernels, fp32 arithmetic), and
 * the generic kernel every weight format and shape falls back to. */
int gemv_supported(const dmat *m);
cudaError_t gemv_setup(void);
/* Whether the GEMV kernels take n tokens of K values (x must fit in shared
 * memory); launch_gemv needs it and gemv_supported. */
int gemv_stages_x(int64_t K, int n);
cudaError_t launch_gemv(mm_args *a, cudaStream_t st);
cudaError_t launch_gemv_variant(mm_args *a, int variant, cudaStream_t st);
/* Numbers the row groups of R rows (R/2 of gate + R/2 of up in the SwiGLU
 * mode) of a's segments (sets their blk0) and returns how many there are;
 * gv_group_seg gives a group's segment and first row. */
int gv_row_groups(mm_args *a, int R);
/* The device's multiprocessors (asked once); -1 with *err on failure. */
int gv_sm_count(cudaError_t *err);
__device__ __forceinline__ const mm_seg *gv_group_seg(const mm_args *a, int g, int64_t *r0, const int R)
{
    const int dual = a->mode == MM_SWIGLU;
    int si = 0;
#pragma unroll
    for (int i = 1; i < 3; i++)
        if (!dual && i < a->nseg && g >= a->seg[i].blk0) si = i;
    const mm_seg *S0 = &a->seg[si];
    *r0 = (int64_t)(g - S0->blk0) * (dual ? R / 2 : R);
    return S0;
}
/* gemv_mma.cu: one token through 4-bit weights on the integer MMAs, which
 * launch_gemv tries first unless option gemv_mma (uq_cuda_gemv_mma) is 0 (1:
 * for products of more than 4096 x 4096 weights, 2: any it takes): 1
 * launched, 0 not for this product, -1 error (in *err). */
extern int uq_cuda_gemv_mma;
cudaError_t gemv_mma_setup(void);
int launch_gemv_mma(mm_args *a, cudaStream_t st, cudaError_t *err);
/* Whether launch_gemv takes the integer-MMA kernel for this product with
 * a->attn set (the decode attention in a->att run first, its output x). */
int gemv_mma_attn_ok(const mm_args *a);
cudaError_t launch_matmul_generic(mm_args *a, cudaStream_t st);

/* gemm.cu: products for many tokens on the tensor cores; the input comes
 * split into two 16-bit halves (bf16, or f16 for f16 weights). */
int gemm_supported(const dmat *m);
cudaError_t gemm_setup(void);
cudaError_t launch_gemm(mm_args *a, cudaStream_t st);
/* Quantized weights (every segment's rows * K f16 values fit in scratch):
 * dequantize them into scratch, then the dense f16 GEMM; same results. */
cudaError_t launch_gemm_dequant(mm_args *a, uint16_t *scratch, cudaStream_t st);
/* Its two halves, which may run on different streams: the weights of a
 * expanded into scratch, and the dense GEMM reading them. */
cudaError_t launch_dequant(const mm_args *a, uint16_t *scratch, cudaStream_t st);
cudaError_t launch_gemm_dense(const mm_args *a, const uint16_t *scratch, cudaStream_t st);
/* gemm_wgmma.cu: the dense product on Hopper's warpgroup MMAs, when the GPU
 * runs them and option gemm_wgmma allows (gemm_wg_ok), and the interleave of
 * gate and up rows its SwiGLU epilogue expects of the expansion. */
int gemm_wg_ok(void);
int gemm_wg_ilv(void);
cudaError_t launch_gemm_wg(const mm_args *b, int blocks, cudaStream_t st); /* blocks: 128-row blocks, blk0 set */
/* gemm_codes_wg.cu: the product on 4-bit codes on the warpgroup MMAs (used
 * by launch_gemm_codes when gemm_wg_ok). */
cudaError_t gemm_codes_wg_setup(void);
cudaError_t launch_gemm_codes_wg(mm_args *a, int blocks, cudaStream_t st); /* blocks: gc_blocks(a, 128) */
extern int uq_cuda_gemm_wgmma, uq_cuda_gemm_wg_cfg;
/* Whether a two-segment product can run launch_gemm_dequant in the SwiGLU
 * mode (gate and up of equal rows, a multiple of 16, without biases): h =
 * silu(gate) * up written as f16 to a->yh. */
int gemm_swiglu_ok(const mm_args *a);
/* Token tile of the dense GEMM (option "gemm_bn"): 0 automatic, 64, 128. */
extern int uq_cuda_gemm_bn;

/* gemm_codes.cu: the product on 4-bit codes (affine or symmetric, groups
 * of a multiple of 64), without expanding the weights; the input in f16
 * (a->xh), the same modes as launch_gemm_dense (SwiGLU: gate and up as
 * launch_gemm_dequant takes them). */
int gemm_codes_ok(const mm_args *a);
cudaError_t gemm_codes_setup(void);
cudaError_t launch_gemm_codes(mm_args *a, cudaStream_t st);

/* misc.cu */
cudaError_t misc_setup(void);
cudaError_t launch_embed(const int32_t *ids, int n, const dmat *e, float *x, cudaStream_t st);
cudaError_t launch_rmsnorm(const float *x, const float *w, float *out, int n, int64_t dim, double eps,
                           cudaStream_t st);
/* x (RMSNorm applied first when norm_w is not NULL, as launch_rmsnorm)
 * split into two 16-bit halves, f16 or bf16. */
cudaError_t launch_split(const float *x, int64_t ldx, const float *norm_w, double eps, int n, int64_t K, int f16,
                         uint16_t *hi, uint16_t *lo, cudaStream_t st);
cudaError_t launch_swiglu(const float *gu, int n, int64_t ff, float *h, cudaStream_t st);

/* attention.cu: dyn points at the step's {first position, sequence} on the device. */
cudaError_t attention_setup(void);
cudaError_t launch_rope_store(const attn_args *a, cudaStream_t st);
cudaError_t launch_attention(const attn_args *a, int prefill, cudaStream_t st);
/* Whether prefill attention takes the tensor-core kernel (which honours out_h). */
int attn_prefill_kernel(int64_t head_dim, int64_t kv_dim, int64_t ldq);

/* sample.cu: the token of each of rows rows of logits picked as pp[row *
 * pp_stride] says (see uq_cuda_pick); scratch holds rows * vocab floats. */
cudaError_t launch_pick(const float *logits, int rows, int64_t vocab, const uq_cuda_pick *pp, int64_t pp_stride,
                        float *scratch, int32_t *out, cudaStream_t st);
/* The same on host memory (cuda_module.h's pick). */
int pick_rows(const float *logits, int64_t rows, int64_t vocab, const uq_cuda_pick *picks, int32_t *out, char *err,
              size_t cap);

/* bench_kernels.cu (see bench_gemv in cuda_module.h) */
int bench_gemv(int64_t rows, int64_t cols, int bits, int group, int batch, int variant, double *out, char *err,
               size_t cap);

/* quantize.cu */
int quantize_device(int scheme, int bits, int group, int sdt, int src_dtype, const void *src, int64_t rows,
                    int64_t cols, void *packed, void *scales, void *biases, int *fallback, char *err, size_t cap);

#endif
