/* Matrix products for 1 to 8 tokens (decode): y[n, rows] = x[n, K] . W^T,
 * memory-bound, with the weights read once as stored.
 *
 * A block stages x in shared memory (with the RMSNorm before the product
 * fused in when asked); each warp computes a few rows: its lanes take the
 * rows' chunks of 32 values lane, lane + 32, ... (a chunk is `bits` 32-bit
 * words whatever the width: one 16-byte load at 4 bits, 512 contiguous bytes
 * across the warp), two pipeline stages deep in registers, dequantize in
 * registers and accumulate in fp32; a warp reduction ends it.
 *
 * Dequantization folds the scale and bias out of the inner loop. Each code q
 * is turned into a float v = alpha + beta * q with one byte permute (4 and 2
 * bits: the code lands in the top bits of a float's mantissa) or a couple of
 * integer operations, so for a chunk inside one group, with A = sum v x and
 * X = sum x,
 *     sum (q s + b) x        = (s / beta) A + (b - s alpha / beta) X      (affine)
 *     sum (q - 2^(b-1)) s x  = (s / beta) A - s (alpha / beta + 2^(b-1)) X (symmetric)
 * where alpha / beta is small (at most 2^bits), so little precision is lost
 * to cancellation. */
#include "common.cuh"
#include "cp_async.cuh"


/* 32-bit words holding one chunk of 32 values. */
#define CHUNK_WORDS(F) ((F) <= 8 ? (F) : (F) == FMT_F32 ? 32 : 16)

__device__ __forceinline__ uint4 ld_stream16(const void *p)
{
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
    return v;
}

__device__ __forceinline__ uint2 ld_stream8(const void *p)
{
    uint2 v;
    asm("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
    return v;
}

__device__ __forceinline__ uint32_t ld_stream4(const void *p)
{
    uint32_t v;
    asm("ld.global.nc.L1::no_allocate.u32 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}

__device__ __forceinline__ void load_chunk(uint32_t *w, const uint32_t *p, const int F)
{
    const int NW = CHUNK_WORDS(F);
    if (NW % 4 == 0) {
#pragma unroll
        for (int i = 0; i < NW / 4; i++) {
            uint4 v = ld_stream16(p + 4 * i);
            w[4 * i] = v.x;
            w[4 * i + 1] = v.y;
            w[4 * i + 2] = v.z;
            w[4 * i + 3] = v.w;
        }
    } else if (NW % 2 == 0) {
#pragma unroll
        for (int i = 0; i < NW / 2; i++) {
            uint2 v = ld_stream8(p + 2 * i);
            w[2 * i] = v.x;
            w[2 * i + 1] = v.y;
        }
    } else {
#pragma unroll
        for (int i = 0; i < NW; i++) w[i] = ld_stream4(p + i);
    }
}

/* v = alpha + beta * q for each code of a quantized format. */
__device__ __forceinline__ float code_alpha(const int F) { return F == 8 ? 0.0f : F == 4 || F == 2 ? 0.5f : 1.0f; }
__device__ __forceinline__ float code_inv_beta(const int F)
{
    return F == 8 ? 1.0f : F == 4 ? 32.0f : F == 2 ? 8.0f : (float)(1 << F);
}

/* Values 8 sub .. 8 sub + 7 of a chunk as floats: alpha + beta q for
 * quantized formats, the weights themselves for float formats. */
__device__ __forceinline__ void chunk_values(const uint32_t *w, const int sub, float *v, const int F)
{
    if (F == 4) {
        /* codes at bits 3..6 of each byte, bytes moved under exponent 0x3F:
         * 0x3F000000 | q << 19 is 0.5 + q / 32 */
        uint32_t wd = w[sub];
        uint32_t lo = (wd << 3) & 0x78787878u, hi = (wd >> 1) & 0x78787878u;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            v[2 * j] = __uint_as_float(__byte_perm(lo, 0x3F000000u, 0x7044u | (j << 8)));
            v[2 * j + 1] = __uint_as_float(__byte_perm(hi, 0x3F000000u, 0x7044u | (j << 8)));
        }
    } else if (F == 2) {
        /* codes at bits 5..6 of each byte: 0x3F000000 | q << 21 is 0.5 + q / 8 */
        uint32_t wd = w[sub >> 1];
        uint32_t m[4];
        m[0] = (wd << 5) & 0x60606060u;
        m[1] = (wd << 3) & 0x60606060u;
        m[2] = (wd << 1) & 0x60606060u;
        m[3] = (wd >> 1) & 0x60606060u;
        const int b0 = (sub & 1) * 2; /* byte of the word holding codes 8 (sub & 1) .. */
#pragma unroll
        for (int i = 0; i < 8; i++) {
            /* code k = 8 (sub & 1) + i of the word: byte k / 4, slot k % 4 */
            const int byte = b0 + (i >> 2), slot = i & 3;
            v[i] = __uint_as_float(__byte_perm(m[slot], 0x3F000000u, 0x7044u | (byte << 8)));
        }
    } else if (F == 8) {
        /* 0x4B0000qq is 2^23 + q exactly */
#pragma unroll
        for (int i = 0; i < 8; i++) {
            uint32_t wd = w[2 * sub + (i >> 2)];
            v[i] = __uint_as_float(__byte_perm(wd, 0x4B000000u, 0x7440u | (i & 3))) - 8388608.0f;
        }
    } else if (F <= 8) {
        /* any width: the code under exponent 0x7F is 1 + q / 2^F */
        const uint32_t mask = (1u << F) - 1u;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int bit = (8 * sub + i) * F, wi = bit >> 5, off = bit & 31;
            uint32_t t = off + F <= 32 ? w[wi] >> off : __funnelshift_r(w[wi], w[wi + 1], off);
            v[i] = __uint_as_float(((t & mask) << (23 - F)) | 0x3F800000u);
        }
    } else if (F == FMT_BF16) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            uint32_t wd = w[4 * sub + i];
            v[2 * i] = __uint_as_float(wd << 16);
            v[2 * i + 1] = __uint_as_float(wd & 0xffff0000u);
        }
    } else if (F == FMT_F16) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            uint32_t wd = w[4 * sub + i];
            float2 f = __half22float2(*(const __half2 *)&wd);
            v[2 * i] = f.x;
            v[2 * i + 1] = f.y;
        }
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = __uint_as_float(w[8 * sub + i]);
    }
}

/* x staged in shared memory: chunks of 32 values padded to 36 floats, so that
 * the lanes' 16-byte reads of 32 different chunks hit distinct banks; then
 * the chunk sums; then the inverse RMS of each token. */
#define XS_PAD 36
#define GV_SMEM_MAX (200 * 1024)

/* A scale or bias of a 16-bit array (bf16 or f16, chosen without a branch). */
__device__ __forceinline__ float load_scale16(const unsigned short *p, int i, int is_bf16)
{
    return half_or_bf16(__ldg(p + i), is_bf16);
}

/* One stage of a warp's pipeline: U chunks of each of its R rows, with the
 * scale and bias of each. */
typedef struct gv_stage {
    uint32_t w[4][16];
    float s[4][2], b[4][2];
} gv_stage;

typedef struct gv_rows {
    const uint32_t *w0, *w1;          /* weights of rows < R/2 and the others */
    const unsigned short *s0, *s1, *b0, *b1;
    uint32_t woff[4];                 /* word offset of each row */
    int sidx[4];                      /* index of each row's first scale */
    int hi, is_bf16, affine;
    unsigned cpg;                     /* chunks of 32 values per group */
    int nch;                          /* chunks per row */
    int cend;                         /* end of this warp's range of chunks */
} gv_rows;

__device__ __forceinline__ void gv_load(gv_stage *st, const gv_rows *rw, int c0, const int F, const int R, const int U)
{
    const int NW = CHUNK_WORDS(F), quant = F <= 8;
#pragma unroll
    for (int u = 0; u < U; u++) {
        const int c = c0 + 32 * u;
        const int ok = c < rw->cend;
#pragma unroll
        for (int r = 0; r < R; r++) {
            const int k = r < R / 2 ? 0 : rw->hi;
            const uint32_t *wb = k ? rw->w1 : rw->w0;
            if (ok) {
                load_chunk(&st->w[r][u * NW], wb + rw->woff[r] + (uint32_t)c * NW, F);
            } else {
#pragma unroll
                for (int q = 0; q < NW; q++) st->w[r][u * NW + q] = 0u;
            }
            if (quant) {
                const unsigned short *sp = k ? rw->s1 : rw->s0, *bp = k ? rw->b1 : rw->b0;
                const int gi = rw->sidx[r] + (int)((unsigned)(ok ? c : 0) / rw->cpg);
                st->s[r][u] = load_scale16(sp, gi, rw->is_bf16);
                st->b[r][u] = rw->affine ? load_scale16(bp, gi, rw->is_bf16) : 0.0f;
            }
        }
    }
}

__device__ __forceinline__ void gv_compute(const gv_stage *st, float (*acc)[8], const float *xs, const float *xsum,
                                           const gv_rows *rw, int c0, const int F, const int NB, const int R,
                                           const int U)
{
    const int quant = F <= 8, nch = rw->nch;
    const float alpha = quant ? code_alpha(F) : 0.0f, ib = quant ? code_inv_beta(F) : 1.0f;
    const float off = quant ? (float)(1 << (F - 1)) : 0.0f;
#pragma unroll
    for (int u = 0; u < U; u++) {
        const int c = c0 + 32 * u;
        if (c >= rw->cend) continue;
        float A[4][8];
#pragma unroll
        for (int j = 0; j < NB; j++)
#pragma unroll
            for (int r = 0; r < R; r++) A[r][j] = 0.0f;
#pragma unroll
        for (int sub = 0; sub < 4; sub++) {
            float xv[8][8];
#pragma unroll
            for (int j = 0; j < NB; j++) {
                const float4 *xp = (const float4 *)(xs + (j * nch + c) * XS_PAD + sub * 8);
                const float4 x0 = xp[0], x1 = xp[1];
                xv[j][0] = x0.x;
                xv[j][1] = x0.y;
                xv[j][2] = x0.z;
                xv[j][3] = x0.w;
                xv[j][4] = x1.x;
                xv[j][5] = x1.y;
                xv[j][6] = x1.z;
                xv[j][7] = x1.w;
            }
#pragma unroll
            for (int r = 0; r < R; r++) {
                float v[8];
                chunk_values(&st->w[r][u * CHUNK_WORDS(F)], sub, v, F);
#pragma unroll
                for (int j = 0; j < NB; j++)
#pragma unroll
                    for (int i = 0; i < 8; i++) A[r][j] = fmaf(v[i], xv[j][i], A[r][j]);
            }
        }
        if (quant) {
            float X[8];
#pragma unroll
            for (int j = 0; j < NB; j++) X[j] = xsum[j * nch + c];
#pragma unroll
            for (int r = 0; r < R; r++) {
                const float sc = st->s[r][u];
                const float cA = sc * ib;
                const float cX = rw->affine ? st->b[r][u] - sc * (alpha * ib) : -sc * (alpha * ib + off);
#pragma unroll
                for (int j = 0; j < NB; j++) acc[r][j] += fmaf(cA, A[r][j], cX * X[j]);
            }
        } else {
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int j = 0; j < NB; j++) acc[r][j] += A[r][j];
        }
    }
}

/* The block stages x (RMSNorm applied when asked) in shared memory; each warp
 * then computes R rows (in the SwiGLU mode R/2 rows of gate and the same rows
 * of up) over its range of K: its lanes take the chunks lane, lane + 32, ...
 * of the rows, two pipeline stages of U chunks in registers, so that the next
 * stage's loads are in flight while the current one is computed, and a warp
 * reduction (and one across the warps that split K) ends it. */
/* Stages the block's rows of x in shared memory (RMSNorm applied when
 * asked), then the sum of each chunk; ends with a barrier. */
__device__ __forceinline__ void gv_stage_x(const mm_args *a, float *sx, float *ssum, float *sinv, const int nch,
                                           const int NB)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    /* x in one round trip: every thread loads its float4s of the block's
     * rows of x, then stores them into the padded layout */
    const int nq = NB * nch * 8; /* float4 of x */
    if (a->norm_w && NB == 1 && nq <= 2 * (int)blockDim.x) {
        /* the same for one token in one pass: x and the norm weights loaded
         * together and kept in registers (the same sums in the same order) */
        __shared__ double sred1[32];
        float4 xv[2], wv[2];
        double ss = 0.0;
#pragma unroll
        for (int u = 0; u < 2; u++) {
            const int q = threadIdx.x + u * blockDim.x;
            if (q < nq) {
                xv[u] = __ldg((const float4 *)a->x + q);
                wv[u] = __ldg((const float4 *)a->norm_w + q);
            }
        }
#pragma unroll
        for (int u = 0; u < 2; u++) {
            const float4 v = xv[u];
            if ((int)threadIdx.x + u * (int)blockDim.x < nq)
                ss += (double)v.x * v.x + (double)v.y * v.y + (double)v.z * v.z + (double)v.w * v.w;
        }
        const float inv = block_rms_inv(ss, sred1, nw, a->K, a->norm_eps);
#pragma unroll
        for (int u = 0; u < 2; u++) {
            const int q = threadIdx.x + u * blockDim.x;
            if (q < nq) {
                float4 v = xv[u];
                const float4 wn = wv[u];
                v.x = __fmul_rn(wn.x, __fmul_rn(v.x, inv));
                v.y = __fmul_rn(wn.y, __fmul_rn(v.y, inv));
                v.z = __fmul_rn(wn.z, __fmul_rn(v.z, inv));
                v.w = __fmul_rn(wn.w, __fmul_rn(v.w, inv));
                *(float4 *)(sx + (q >> 3) * XS_PAD + (q & 7) * 4) = v;
            }
        }
    } else if (a->norm_w) {
        /* RMSNorm as src/runtime/ops.c: the sum of squares in double,
         * out = w * (x * inv) */
        __shared__ double sred[8][32];
        double ss[8];
#pragma unroll
        for (int j = 0; j < NB; j++) ss[j] = 0.0;
        for (int q = threadIdx.x; q < nq; q += blockDim.x) {
            const int j = q / (nch * 8), k4 = q - j * nch * 8;
            const float4 v = __ldg((const float4 *)(a->x + j * a->ldx) + k4);
#pragma unroll
            for (int jj = 0; jj < NB; jj++)
                if (jj == j)
                    ss[jj] += (double)v.x * v.x + (double)v.y * v.y + (double)v.z * v.z + (double)v.w * v.w;
            *(float4 *)(sx + (j * nch + (k4 >> 3)) * XS_PAD + (k4 & 7) * 4) = v;
        }
#pragma unroll
        for (int j = 0; j < NB; j++) {
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) ss[j] += __shfl_xor_sync(0xffffffffu, ss[j], o);
            if (lane == 0) sred[j][warp] = ss[j];
        }
        __syncthreads();
        if ((int)threadIdx.x < NB) {
            double t = 0.0;
            for (int w = 0; w < nw; w++) t += sred[threadIdx.x][w];
            sinv[threadIdx.x] = (float)(1.0 / sqrt(t / (double)a->K + a->norm_eps));
        }
        __syncthreads();
        for (int q = threadIdx.x; q < nq; q += blockDim.x) {
            const int j = q / (nch * 8), k4 = q - j * nch * 8;
            float4 *p = (float4 *)(sx + (j * nch + (k4 >> 3)) * XS_PAD + (k4 & 7) * 4);
            const float4 wn = __ldg((const float4 *)a->norm_w + k4);
            float4 v = *p;
            const float inv = sinv[j];
            v.x = __fmul_rn(wn.x, __fmul_rn(v.x, inv));
            v.y = __fmul_rn(wn.y, __fmul_rn(v.y, inv));
            v.z = __fmul_rn(wn.z, __fmul_rn(v.z, inv));
            v.w = __fmul_rn(wn.w, __fmul_rn(v.w, inv));
            *p = v;
        }
    } else {
        for (int q0 = threadIdx.x; q0 < nq; q0 += 4 * blockDim.x) {
            float4 v[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int q = q0 + u * blockDim.x;
                if (q < nq) {
                    const int j = q / (nch * 8), k4 = q - j * nch * 8;
                    v[u] = __ldg((const float4 *)(a->x + j * a->ldx) + k4);
                }
            }
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int q = q0 + u * blockDim.x;
                if (q < nq) {
                    const int j = q / (nch * 8), k4 = q - j * nch * 8;
                    *(float4 *)(sx + (j * nch + (k4 >> 3)) * XS_PAD + (k4 & 7) * 4) = v[u];
                }
            }
        }
    }
    __syncthreads();
    /* the sum of each chunk */
    for (int q = threadIdx.x; q < NB * nch; q += blockDim.x) {
        const float4 *p = (const float4 *)(sx + q * XS_PAD);
        float t = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const float4 v = p[i];
            t += (v.x + v.y) + (v.z + v.w);
        }
        ssum[q] = t;
    }
    __syncthreads();

}

/* Shared-memory bytes of the x staging area (gv_smem_bytes) rounded to 16,
 * the start of the ring of asynchronous copies. */
#define GV_RING_OFF(K, NB) ((((size_t)(NB) * (size_t)((K) / 32) * (XS_PAD + 1) + 8 + 32 * 16) * sizeof(float) + 15) / 16 * 16)

__device__ __forceinline__ void gemv_body(const mm_args *a, const int F, const int NB, const int R, const int U)
{
    extern __shared__ __align__(16) float gv_smem[];
    const int NW = CHUNK_WORDS(F), quant = F <= 8;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int dual = a->mode == MM_SWIGLU;
    /* the block's warps: nw / KS row groups, each split in KS ranges of K */
    const int KS = a->ksplit, rg = warp / KS, ks = warp - rg * KS;
    const int wg = (int)blockIdx.x * (nw / KS) + rg;

    int si = 0;
#pragma unroll
    for (int i = 1; i < 3; i++)
        if (i < a->nseg && wg >= a->seg[i].blk0) si = i;
    const mm_seg *S0 = dual ? &a->seg[0] : &a->seg[si];
    const mm_seg *S1 = dual ? &a->seg[1] : S0;
    const int rows_per = dual ? R / 2 : R;
    const int64_t r0 = (int64_t)(wg - S0->blk0) * rows_per;
    const int idle = r0 >= S0->rows; /* past the last row: only helps with x */
    gv_rows rw;
    rw.nch = (int)(a->K >> 5);
    const int cbeg = (int)((int64_t)rw.nch * ks / KS);
    rw.cend = idle ? cbeg : (int)((int64_t)rw.nch * (ks + 1) / KS);
    rw.cpg = (unsigned)(S0->group > 0 ? S0->group : 32) >> 5;
    const int gpr = (int)((unsigned)rw.nch / rw.cpg);
    rw.w0 = (const uint32_t *)S0->w;
    rw.w1 = (const uint32_t *)S1->w;
    rw.s0 = (const unsigned short *)S0->s;
    rw.s1 = (const unsigned short *)S1->s;
    rw.b0 = (const unsigned short *)S0->b;
    rw.b1 = (const unsigned short *)S1->b;
    rw.hi = dual;
    rw.is_bf16 = S0->sdt == UQ_BF16;
    rw.affine = S0->scheme == UQ_SCHEME_AFFINE;
#pragma unroll
    for (int r = 0; r < R; r++) {
        int64_t rr = r0 + (dual ? r % (R / 2) : r);
        if (rr >= S0->rows) rr = S0->rows - 1; /* computed, not written */
        rw.woff[r] = (uint32_t)(rr * (quant ? S0->wpr : (int64_t)NW * rw.nch));
        rw.sidx[r] = (int)rr * gpr;
    }

    const int nch = rw.nch;
    float *sx = gv_smem, *ssum = gv_smem + NB * nch * XS_PAD, *sinv = ssum + NB * nch, *red = sinv + 8;
    const int c0 = cbeg + lane;

    /* the first stage is requested before waiting for the kernel that
     * produces x (weights are never written) */
    gv_stage sa, sb;
    pdl_trigger();
    gv_load(&sa, &rw, c0, F, R, U);
    pdl_wait();

    gv_stage_x(a, sx, ssum, sinv, nch, NB);

    float acc[4][8];
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[r][j] = 0.0f;
    const int nmax = (rw.cend - cbeg + 31) / 32; /* chunks per lane, at most */
    for (int i0 = 0; i0 < nmax; i0 += 2 * U) {
        gv_load(&sb, &rw, c0 + 32 * (i0 + U), F, R, U);
        gv_compute(&sa, acc, sx, ssum, &rw, c0 + 32 * i0, F, NB, R, U);
        if (i0 + 2 * U < nmax) gv_load(&sa, &rw, c0 + 32 * (i0 + 2 * U), F, R, U);
        gv_compute(&sb, acc, sx, ssum, &rw, c0 + 32 * (i0 + U), F, NB, R, U);
    }

#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int j = 0; j < NB; j++) acc[r][j] = warp_sum(acc[r][j]);
    if (KS > 1) {
        /* the partial sums of the warps splitting K, through shared memory */
        if (lane == 0) {
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int j = 0; j < NB; j++) red[warp * 32 + r * NB + j] = acc[r][j];
        }
        __syncthreads();
        if (ks != 0) return;
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < NB; j++)
                for (int q = 1; q < KS; q++) acc[r][j] += red[(warp + q) * 32 + r * NB + j];
    }
    if (idle) return;
    if (dual) {
#pragma unroll
        for (int r = 0; r < R / 2; r++)
#pragma unroll
            for (int j = 0; j < NB; j++)
                if (lane == r * NB + j && j < a->n && r0 + r < a->seg[0].rows)
                    a->y[j * a->ldy + r0 + r] = silu_mul(acc[r][j], acc[r + R / 2][j]);
    } else {
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < NB; j++)
                if (lane == r * NB + j && j < a->n && r0 + r < S0->rows) {
                    float v = acc[r][j];
                    if (S0->bias) v += S0->bias[r0 + r];
                    float *yp = a->y + j * a->ldy + S0->out_off + r0 + r;
                    *yp = a->mode == MM_ADD ? *yp + v : v;
                }
    }
}

/* Rows per warp, chunks per pipeline stage and warps per block of the
 * kernels in use. */
#define GV_ROWS(F, NB) ((NB) >= 4 || CHUNK_WORDS(F) >= 16 ? 2 : 4)
#define GV_UNROLL(F, NB) 1
#define GV_WARPS 8

#define GEMV_KERNEL(F, NB)                                                                               \
    __global__ void __launch_bounds__(GV_WARPS * 32) gemv_##F##_##NB(const mm_args a)                    \
    {                                                                                                    \
        gemv_body(&a, F, NB, GV_ROWS(F, NB), GV_UNROLL(F, NB));                                         \
    }
#define GEMV_KERNELS(F) GEMV_KERNEL(F, 1) GEMV_KERNEL(F, 2) GEMV_KERNEL(F, 4) GEMV_KERNEL(F, 8)
GEMV_KERNELS(1)
GEMV_KERNELS(2)
GEMV_KERNELS(3)
GEMV_KERNELS(4)
GEMV_KERNELS(5)
GEMV_KERNELS(6)
GEMV_KERNELS(7)
GEMV_KERNELS(8)
GEMV_KERNELS(32)
GEMV_KERNELS(33)

/* Batch 1 with two chunks per stage (one for float weights, whose chunks
 * fill a stage): deeper in flight, for matrices with few row groups (fewer
 * warps to hide latency with). */
#define GEMV_KERNEL_DEEP(F)                                                                              \
    __global__ void __launch_bounds__(GV_WARPS * 32) gemv_##F##_1d(const mm_args a)                      \
    {                                                                                                    \
        gemv_body(&a, F, 1, GV_ROWS(F, 1), CHUNK_WORDS(F) <= 8 ? 2 : 1);                                \
    }
GEMV_KERNEL_DEEP(1)
GEMV_KERNEL_DEEP(2)
GEMV_KERNEL_DEEP(3)
GEMV_KERNEL_DEEP(4)
GEMV_KERNEL_DEEP(5)
GEMV_KERNEL_DEEP(6)
GEMV_KERNEL_DEEP(7)
GEMV_KERNEL_DEEP(8)
GEMV_KERNEL_DEEP(32)
GEMV_KERNEL_DEEP(33)

typedef void (*gemv_fn)(const mm_args);
static const gemv_fn gemv_deep[10] = {gemv_1_1d, gemv_2_1d, gemv_3_1d, gemv_4_1d, gemv_5_1d,
                                      gemv_6_1d, gemv_7_1d, gemv_8_1d, gemv_32_1d, gemv_33_1d};
#define GEMV_ROW(F) {gemv_##F##_1, gemv_##F##_2, gemv_##F##_4, gemv_##F##_8}
static const gemv_fn gemv_table[10][4] = {GEMV_ROW(1), GEMV_ROW(2), GEMV_ROW(3), GEMV_ROW(4), GEMV_ROW(5),
                                          GEMV_ROW(6), GEMV_ROW(7), GEMV_ROW(8), GEMV_ROW(32), GEMV_ROW(33)};

/* Persistent batch-1 product at 4 bits: as many blocks as the GPU holds at
 * once; warp w of the grid takes the row groups w, w + TW, ... (TW: warps in
 * the grid) and streams them through its ring as one sequence of items (a
 * chunk of each of the group's R rows per lane), GP_S items ahead, so
 * that the copies of the next group are in flight while a group is
 * computed; a group's scales and biases are copied with its first item into
 * one of GP_NBUF buffers (enough that the groups in flight never share one). */
#define GP_S 4
#define GP_W 16
#define GP_NBUF(per) ((GP_S + (per) - 1) / (per) + 1)

typedef struct gp_grp {
    const uint32_t *w[2];
    const unsigned short *s[2], *b[2];
} gp_grp;

__device__ __forceinline__ void gp_rows(const mm_args *a, int g, int gpr, gp_grp *o, const int R)
{
    const int dual = a->mode == MM_SWIGLU;
    int64_t r0;
    const mm_seg *S0 = gv_group_seg(a, g, &r0, R);
#pragma unroll
    for (int r = 0; r < R; r++) {
        const mm_seg *sg = dual ? &a->seg[r < R / 2 ? 0 : 1] : S0;
        int64_t rr = r0 + (dual ? r % (R / 2) : r);
        if (rr >= S0->rows) rr = S0->rows - 1; /* computed, not written */
        o->w[r] = (const uint32_t *)sg->w + rr * sg->wpr;
        o->s[r] = (const unsigned short *)sg->s + rr * gpr;
        o->b[r] = (const unsigned short *)sg->b + rr * gpr;
    }
}

/* The issue pointer of a warp: item it = (group ij of the warp's row groups,
 * chunk ii), the group's scales in buffer ib, its rows gi; and what the
 * requests need. */
typedef struct gp_iss {
    int it, ij, ii, ib;
    gp_grp gi;
    uint32_t ring, scs;
    int total, per, nbuf, mine, gw, TW, gpr, nch, lane, affine;
} gp_iss;

/* Requests item p->it (when there is one) into ring slot slot (the group's
 * scales first, on its first chunk), commits, and moves the pointer on. */
__device__ __forceinline__ void gp_issue(gp_iss *p, const mm_args *a, int slot, const int R, const int NW)
{
    if (p->it < p->total) {
        const int gpr = p->gpr, lane = p->lane;
        const uint32_t sb = p->scs + (uint32_t)(p->ib * R * gpr * 4);
        if (p->ii == 0) {
#pragma unroll
            for (int r = 0; r < R; r++)
                for (int q = lane; q < gpr / 2; q += 32) {
                    cp_async4(sb + (uint32_t)((r * gpr + 2 * q) * 2), p->gi.s[r] + 2 * q);
                    if (p->affine) cp_async4(sb + (uint32_t)(((R + r) * gpr + 2 * q) * 2), p->gi.b[r] + 2 * q);
                }
        }
        const int c = lane + 32 * p->ii;
        if (c < p->nch) {
#pragma unroll
            for (int r = 0; r < R; r++)
                cp_async16(p->ring + (uint32_t)(((slot * R + r) * 32 + lane) * 16), p->gi.w[r] + (uint32_t)c * NW);
        }
    }
    cp_async_commit();
    p->it++;
    if (++p->ii == p->per) {
        p->ii = 0;
        p->ij++;
        p->ib = p->ib + 1 == p->nbuf ? 0 : p->ib + 1;
        if (p->ij < p->mine) gp_rows(a, p->gw + p->ij * p->TW, p->gpr, &p->gi, R);
    }
}

/* R rows per warp: 2, or 1 (not in the SwiGLU mode) */
__device__ __forceinline__ void gp_body(const mm_args &a, const int R)
{
    extern __shared__ __align__(16) float gv_smem[];
    const int NW = 4, S = GP_S;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int dual = a.mode == MM_SWIGLU, affine = a.seg[0].scheme == UQ_SCHEME_AFFINE;
    const int is_bf16 = a.seg[0].sdt == UQ_BF16;
    const int nch = (int)(a.K >> 5);
    const unsigned cpg = (unsigned)(a.seg[0].group > 0 ? a.seg[0].group : 32) >> 5;
    const int gpr = (int)((unsigned)nch / cpg);
    const int TW = (int)gridDim.x * nw, gw = (int)blockIdx.x * nw + warp;
    const int mine = gw < a.groups ? (a.groups - 1 - gw) / TW + 1 : 0; /* row groups of this warp */
    const int per = (nch + 31) / 32;                                     /* items per row group */
    const int total = mine * per, nbuf = GP_NBUF(per);
    /* chunks per group as a shift when a power of two (-1: divide) */
    const int cpg_sh = (cpg & (cpg - 1)) == 0 ? __ffs((int)cpg) - 1 : -1;
    float *sx = gv_smem, *ssum = gv_smem + nch * XS_PAD, *sinv = ssum + nch;
    const uint32_t base = (uint32_t)__cvta_generic_to_shared(gv_smem) + (uint32_t)GV_RING_OFF(a.K, 1);
    const uint32_t ring = base + (uint32_t)(warp * S * R * NW * 128);
    const uint32_t scs = base + (uint32_t)(nw * S * R * NW * 128) + (uint32_t)(warp * nbuf * R * gpr * 4);

    gp_iss ip;
    ip.it = ip.ij = ip.ii = ip.ib = 0;
    ip.ring = ring;
    ip.scs = scs;
    ip.total = total;
    ip.per = per;
    ip.nbuf = nbuf;
    ip.mine = mine;
    ip.gw = gw;
    ip.TW = TW;
    ip.gpr = gpr;
    ip.nch = nch;
    ip.lane = lane;
    ip.affine = affine;
    gp_rows(&a, gw, gpr, &ip.gi, R);
    pdl_trigger();
    /* the first S items are requested before waiting for the kernel that
     * produces x (weights are never written) */
#pragma unroll 1
    for (int k = 0; k < S; k++) gp_issue(&ip, &a, ip.it % S, R, NW);
    pdl_wait();
    gv_stage_x(&a, sx, ssum, sinv, nch, 1);

    gv_rows rw;
    rw.nch = nch;
    rw.cend = nch;
    rw.affine = affine;
    gv_stage st;
    float acc[4][8];
#pragma unroll
    for (int r = 0; r < 4; r++) acc[r][0] = 0.0f;
    int cj = 0, ci = 0, cb = 0; /* the compute pointer, as the issue pointer */
#pragma unroll 1
    for (int t = 0; t < total; t++) {
        /* item t has arrived when at most S - 1 groups are pending; the
         * scales were copied by other lanes */
        cp_async_wait(S - 1);
        __syncwarp();
        const int slot = t % S, c = lane + 32 * ci;
        const uint32_t sb = scs + (uint32_t)(cb * R * gpr * 4);
        const unsigned cc = (unsigned)(c < nch ? c : 0);
        const int gl = (int)(cpg_sh >= 0 ? cc >> cpg_sh : cc / cpg);
#pragma unroll
        for (int r = 0; r < R; r++) {
            const uint4 v = lds128(ring + (uint32_t)(((slot * R + r) * 32 + lane) * 16));
            st.w[r][0] = v.x;
            st.w[r][1] = v.y;
            st.w[r][2] = v.z;
            st.w[r][3] = v.w;
            const unsigned short hs = lds16(sb + (uint32_t)((r * gpr + gl) * 2));
            st.s[r][0] = half_or_bf16(hs, is_bf16);
            if (affine) {
                const unsigned short hb = lds16(sb + (uint32_t)(((R + r) * gpr + gl) * 2));
                st.b[r][0] = half_or_bf16(hb, is_bf16);
            } else {
                st.b[r][0] = 0.0f;
            }
        }
        gv_compute(&st, acc, sx, ssum, &rw, c, 4, 1, R, 1);
        /* the slot is free again (its values were used): item t + S */
        gp_issue(&ip, &a, slot, R, NW);
        if (++ci == per) {
            /* the row group is complete */
            int64_t r0;
            const mm_seg *S0 = gv_group_seg(&a, gw + cj * TW, &r0, R);
            float v[2];
#pragma unroll
            for (int r = 0; r < R; r++) {
                v[r] = warp_sum(acc[r][0]);
                acc[r][0] = 0.0f;
            }
            if (dual) {
#pragma unroll
                for (int r = 0; r < R / 2; r++)
                    if (lane == r && r0 + r < a.seg[0].rows) a.y[r0 + r] = silu_mul(v[r], v[r + R / 2]);
            } else {
#pragma unroll
                for (int r = 0; r < R; r++)
                    if (lane == r && r0 + r < S0->rows) {
                        float o = v[r];
                        if (S0->bias) o += S0->bias[r0 + r];
                        float *yp = a.y + S0->out_off + r0 + r;
                        *yp = a.mode == MM_ADD ? *yp + o : o;
                    }
            }
            ci = 0;
            cj++;
            cb = cb + 1 == nbuf ? 0 : cb + 1;
        }
    }
    /* no copy may land in shared memory after the block has left */
    cp_async_wait(0);
}

__global__ void __launch_bounds__(GP_W * 32, 2) gemv_4_1p(const mm_args a) { gp_body(a, 2); }
__global__ void __launch_bounds__(GP_W * 32, 2) gemv_4_1p1(const mm_args a) { gp_body(a, 1); }

/* Variants of the 4-bit batch-1 kernel for the benchmark: the register
 * pipeline (rows per warp, chunks per stage, warps per block) or the
 * persistent kernel (rows per warp; pblocks: at most this many blocks per
 * multiprocessor, 0: as the launcher chooses, -1: as many as fit). */
#define GEMV_VARIANT(R, U, W)                                                                            \
    __global__ void __launch_bounds__(W * 32) gemv_v_##R##_##U##_##W(const mm_args a) { gemv_body(&a, 4, 1, R, U); }
GEMV_VARIANT(4, 2, 8)
GEMV_VARIANT(4, 1, 8)
static const struct {
    gemv_fn fn;
    int rows, unroll, warps, pblocks;
} gemv_variants[6] = {{gemv_v_4_2_8, 4, 2, 8, 0}, {gemv_v_4_1_8, 4, 1, 8, 0}, {gemv_4_1p, 2, 0, GP_W, 0},
                      {gemv_4_1p, 2, 0, GP_W, -1}, {gemv_4_1p1, 1, 0, GP_W, 0}, {gemv_4_1p1, 1, 0, GP_W, -1}};

int gemv_supported(const dmat *m)
{
    if (m->cols % 32 != 0) return 0;
    if (m->quantized) return m->bits >= 1 && m->bits <= 8 && m->group % 32 == 0 && m->dtype != UQ_F32;
    return m->dtype == UQ_BF16 || m->dtype == UQ_F16;
}

static size_t gv_smem_bytes(int64_t K, int nb)
{
    return ((size_t)nb * (size_t)(K / 32) * (XS_PAD + 1) + 8 + 32 * 16) * sizeof(float);
}

static int gv_nb(int n) { return n <= 1 ? 1 : n <= 2 ? 2 : n <= 4 ? 4 : 8; }

int gemv_stages_x(int64_t K, int n) { return n >= 1 && n <= 8 && gv_smem_bytes(K, gv_nb(n)) <= GV_SMEM_MAX; }

cudaError_t gemv_setup(void)
{
    for (int f = 0; f < 10; f++)
        for (int b = 0; b < 4; b++) {
            cudaError_t e = cudaFuncSetAttribute(gemv_table[f][b], cudaFuncAttributeMaxDynamicSharedMemorySize, GV_SMEM_MAX);
            if (e != cudaSuccess) return e;
        }
    for (int v = 0; v < 6; v++) {
        cudaError_t e = cudaFuncSetAttribute(gemv_variants[v].fn, cudaFuncAttributeMaxDynamicSharedMemorySize, GV_SMEM_MAX);
        if (e != cudaSuccess) return e;
    }
    for (int f = 0; f < 10; f++) {
        cudaError_t e = cudaFuncSetAttribute(gemv_deep[f], cudaFuncAttributeMaxDynamicSharedMemorySize, GV_SMEM_MAX);
        if (e != cudaSuccess) return e;
    }
    cudaError_t em = gemv_mma_setup();
    if (em != cudaSuccess) return em;
    const gemv_fn more[2] = {gemv_4_1p, gemv_4_1p1};
    for (int f = 0; f < 2; f++) {
        cudaError_t e = cudaFuncSetAttribute(more[f], cudaFuncAttributeMaxDynamicSharedMemorySize, GV_SMEM_MAX);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

/* Whether the segments allow 16-byte copies of weights and 4-byte copies of
 * scales and biases (gpr: groups per row). */
static int gv_async_ok(const mm_args *a, int64_t gpr)
{
    int ok = gpr % 2 == 0;
    for (int i = 0; i < a->nseg; i++) {
        const mm_seg *g = &a->seg[i];
        ok = ok && (uintptr_t)g->w % 16 == 0 && (g->wpr * 4) % 16 == 0 && (uintptr_t)g->s % 4 == 0 &&
             (g->scheme != UQ_SCHEME_AFFINE || (uintptr_t)g->b % 4 == 0) && g->group == a->seg[0].group &&
             g->sdt == a->seg[0].sdt && g->scheme == a->seg[0].scheme;
    }
    return ok;
}

int gv_row_groups(mm_args *a, int R)
{
    int groups = 0;
    if (a->mode == MM_SWIGLU) {
        a->seg[0].blk0 = a->seg[1].blk0 = 0;
        groups = (int)((a->seg[0].rows + R / 2 - 1) / (R / 2));
    } else {
        for (int i = 0; i < a->nseg; i++) {
            a->seg[i].blk0 = groups;
            groups += (int)((a->seg[i].rows + R - 1) / R);
        }
    }
    return groups;
}

int gv_sm_count(cudaError_t *err)
{
    static int nsm = 0;
    if (nsm == 0) {
        int dev = 0;
        if ((*err = cudaGetDevice(&dev)) != cudaSuccess) return -1;
        if ((*err = cudaDeviceGetAttribute(&nsm, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess) return -1;
    }
    return nsm;
}

/* The persistent kernel (4 bits, one token), when it applies: 1 launched,
 * 0 not applicable, -1 error (in *err). */
static int launch_gemv_persistent(mm_args *a, int R, int max_per_sm, cudaStream_t st, cudaError_t *err)
{
    const int64_t nch = a->K / 32, gpr = a->K / (a->seg[0].group > 0 ? a->seg[0].group : 32);
    if (a->fmt != 4 || a->n != 1 || !gv_async_ok(a, gpr)) return 0;
    if (a->mode == MM_SWIGLU) R = 2;
    const size_t smem = GV_RING_OFF(a->K, 1) + (size_t)GP_W * GP_S * R * 4 * 128 +
                        (size_t)GP_W * GP_NBUF((nch + 31) / 32) * R * gpr * 4;
    const gemv_fn fn = R == 1 ? gemv_4_1p1 : gemv_4_1p;
    if (smem > GV_SMEM_MAX) return 0;
    const int nsm = gv_sm_count(err);
    if (nsm < 0) return -1;
    int occ = 0;
    if ((*err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, fn, GP_W * 32, smem)) != cudaSuccess)
        return -1;
    if (occ < 1) return 0;
    if (max_per_sm > 0 && occ > max_per_sm) occ = max_per_sm;
    const int groups = gv_row_groups(a, R);
    /* fewer row groups than twice the warps the GPU holds: one block per
     * multiprocessor, so that each warp streams two groups or more (its next
     * group's copies in flight while it computes one) */
    if (max_per_sm == 0 && groups < 2 * nsm * occ * GP_W) occ = 1;
    a->groups = groups;
    a->ksplit = 1;
    int blocks = (groups + GP_W - 1) / GP_W;
    if (blocks > nsm * occ) blocks = nsm * occ;
    void *args[] = {a};
    *err = launch_kernel((const void *)fn, dim3((unsigned)blocks), dim3(GP_W * 32), smem, st, args);
    return *err == cudaSuccess ? 1 : -1;
}

/* The caller has checked gemv_supported for the weights and gemv_stages_x
 * for (K, n). variant < 0: the production kernels. */
cudaError_t launch_gemv_variant(mm_args *a, int variant, cudaStream_t st)
{
    if (variant == UQ_CUDA_GEMV_FP32) {
        variant = -1;
    } else if (variant < 0 && uq_cuda_gemv_mma) {
        cudaError_t e = cudaSuccess;
        const int r = launch_gemv_mma(a, st, &e);
        if (r != 0) return e;
    }
    if (a->attn) return cudaErrorInvalidValue; /* only the integer-MMA kernel runs attention */
    const int pers = variant >= 0 && (gemv_variants[variant].fn == gemv_4_1p || gemv_variants[variant].fn == gemv_4_1p1);
    if (variant < 0 || pers) {
        cudaError_t e = cudaSuccess;
        /* one row per warp (x reused less, more warps) but 2 for long rows */
        const int r = launch_gemv_persistent(a, variant >= 0 ? gemv_variants[variant].rows : a->K >= 8192 ? 2 : 1,
                                             variant < 0 ? 0 : gemv_variants[variant].pblocks, st, &e);
        if (r != 0) return e;
        if (variant >= 0) return cudaErrorInvalidValue;
    }
    const int fi = a->fmt <= 8 ? a->fmt - 1 : a->fmt == FMT_BF16 ? 8 : 9;
    const int nb = gv_nb(a->n);
    const int ni = nb == 1 ? 0 : nb == 2 ? 1 : nb == 4 ? 2 : 3;
    const int R = variant >= 0 ? gemv_variants[variant].rows : GV_ROWS(a->fmt, nb);
    const int W = variant >= 0 ? gemv_variants[variant].warps : GV_WARPS;
    const size_t smem = gv_smem_bytes(a->K, nb);
    gemv_fn fn = variant >= 0 ? gemv_variants[variant].fn : gemv_table[fi][ni];
    const int groups = gv_row_groups(a, R); /* row groups: R rows each (R/2 + R/2 in the SwiGLU mode) */
    a->ksplit = 1;
    /* one token and fewer row groups than about 16 warps per multiprocessor
     * hold: the kernel with twice the loads in flight per warp */
    if (variant < 0 && nb == 1 && groups < 132 * 16 && a->fmt <= 8) fn = gemv_deep[fi];
    void *args[] = {a};
    return launch_kernel((const void *)fn, dim3((unsigned)((groups + W - 1) / W)), dim3(W * 32), smem, st, args);
}

cudaError_t launch_gemv(mm_args *a, cudaStream_t st) { return launch_gemv_variant(a, -1, st); }

/* ------------------------------------------------------------ generic */

/* One warp per (row, 8 tokens), values dequantized exactly as the CPU does:
 * any format, any shape. */
#define GEN_WARPS 4
__global__ void __launch_bounds__(GEN_WARPS * 32) matmul_generic(const mm_args a, int fmt_quant, int bits, int dtype)
{
    const int lane = threadIdx.x & 31;
    pdl_trigger();
    pdl_wait();
    int64_t wid = (int64_t)blockIdx.x * GEN_WARPS + (threadIdx.x >> 5);
    const int tb = (int)(wid % ((a.n + 7) / 8));
    int64_t rr = wid / ((a.n + 7) / 8);
    int si = 0;
    for (int i = 1; i < a.nseg; i++)
        if (rr >= a.seg[i].blk0) si = i;
    const mm_seg *S = &a.seg[si];
    rr -= S->blk0;
    if (rr >= S->rows) return;
    float acc[8];
#pragma unroll
    for (int j = 0; j < 8; j++) acc[j] = 0.0f;
    const int j0 = tb * 8, nj = a.n - j0 < 8 ? a.n - j0 : 8;
    for (int64_t k = lane; k < a.K; k += 32) {
        float w = weight_at(S->w, S->s, S->b, fmt_quant, S->scheme, bits, S->group, fmt_quant ? S->sdt : dtype, S->wpr, a.K,
                            rr, k);
#pragma unroll
        for (int j = 0; j < 8; j++)
            if (j < nj) acc[j] = fmaf(w, a.x[(j0 + j) * a.ldx + k], acc[j]);
    }
#pragma unroll
    for (int j = 0; j < 8; j++) {
        float v = warp_sum(acc[j]);
        if (lane == 0 && j < nj) {
            if (S->bias) v += S->bias[rr];
            float *yp = a.y + (j0 + j) * a.ldy + S->out_off + rr;
            *yp = a.mode == MM_ADD ? *yp + v : v;
        }
    }
}

cudaError_t launch_matmul_generic(mm_args *a, cudaStream_t st)
{
    int64_t rows = 0;
    for (int i = 0; i < a->nseg; i++) {
        a->seg[i].blk0 = (int)rows; /* here: first row of the segment */
        rows += a->seg[i].rows;
    }
    int64_t warps = rows * ((a->n + 7) / 8);
    int quant = a->fmt <= 8;
    int dtype = a->fmt == FMT_BF16 ? UQ_BF16 : a->fmt == FMT_F16 ? UQ_F16 : UQ_F32;
    int bits = quant ? a->fmt : 0;
    void *args[] = {a, &quant, &bits, &dtype};
    return launch_kernel((const void *)matmul_generic, dim3((unsigned)((warps + GEN_WARPS - 1) / GEN_WARPS)),
                         dim3(GEN_WARPS * 32), 0, st, args);
}
