/* One token through 4-bit weights on the integer tensor cores (decode).
 *
 * The fp32 GEMV kernels (gemv.cu) execute about seven thread instructions a
 * weight unpacking codes and multiplying (measured: 69% of the issue slots
 * busy on a 32000 x 4096 product at 61% of the copy's bandwidth). Here a
 * warp multiplies 16 rows by 32 values in one integer MMA (m16n8k32,
 * unsigned 8-bit codes by signed 8-bit x): about 40 warp instructions for a
 * group of 64 values of 16 rows. launch_gemv takes it for products of more
 * than 4096 x 4096 weights, where it is faster (docs/cuda.md).
 *
 * x in 16-bit fixed point: each group of G values (the weights' group) is
 * scaled by sx = max |x| / 32639 and rounded to q = 256 hi + lo, hi and lo
 * signed bytes; the two are the MMA's first two columns, so one MMA gives
 * sum(code * hi) and sum(code * lo) over its 32 values, exactly, and
 *     sum(code * x) = sx * (256 D_hi + D_lo)          (to about 1.5e-5 of max |x|)
 * then, with X the group's exact sum of x,
 *     affine:    sum((s code + b) x) = s sx (256 D_hi + D_lo) + b X
 *     symmetric: sum(s (code - 8) x) = s (sx (256 D_hi + D_lo) - 8 X).
 *
 * Work: tiles of 16 rows (SwiGLU: 8 rows of gate and the same 8 of up);
 * tiles T = block, block + grid, ...; a tile is cut into items of 256
 * values of K, and the block's items are dealt round-robin to its warps,
 * each streaming its own through a ring of cp.async copies (S items
 * ahead, the first before waiting for the kernel that produces x). A warp's
 * sums for a tile go to shared memory; the last warp to finish a tile adds
 * them up in warp order (deterministic) and writes the outputs.
 *
 * An MMA's codes: the lane of row group g and thread t reads the 32-bit
 * words t NI .. t NI + NI - 1 of its rows' group (NI = G / 32); its MMA i
 * takes word t NI + i, whose even codes (c & 0x0F0F0F0F) are the A
 * fragment's k = 4t..4t+3 and odd codes its k = 16+4t..16+4t+3. x is
 * staged in shared memory in that order, as the B fragments of lanes 0..7
 * (hi plane: 0..3, lo plane: 4..7). */
#include "gemv_attn.cuh"
#include "cp_async.cuh"

#define GQ_W 8                              /* warps a block */
#define GQ_KI 256                           /* values of K an item */
#define GQ_ROWB 128                         /* bytes a row takes in a ring slot */
#define GQ_SCB 16                           /* bytes of scales (or biases) a row takes in a slot */
#define GQ_SLOT (16 * GQ_ROWB + 2 * 16 * GQ_SCB)
#define GQ_D 4                              /* tiles of a block whose sums may be pending at once */
#define GQ_FP32_MAX (4096 * 4096)           /* weights up to which the fp32 kernel is faster alone */
#define GQ_XMAX 32639.0f                    /* 127 * 256 + 127 */

/* 16-byte chunk c of row rr of a slot is stored at chunk c ^ gq_swz(rr): the
 * lanes' reads of rows g (and g + 8) hit distinct banks for groups of 32
 * (4-byte reads of one chunk a row), 64 (8-byte, two chunks) and 128
 * (16-byte, four chunks). */
__device__ __forceinline__ int gq_swz(int rr, const int G)
{
    return G == 32 ? rr & 7 : G == 64 ? (rr & 3) << 1 : (rr & 1) << 2;
}

int uq_cuda_gemv_mma = 1; /* 0 off, 1 where faster, 2 wherever it applies */

__device__ __forceinline__ void imma_u8s8(int *d, const uint32_t *a, uint2 b)
{
    asm("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b.x), "r"(b.y));
}

/* Shared memory: the ring, x's B fragments, the groups' sx and X, the
 * warps' sums of pending tiles and their counters, the attention's units
 * (attn). */
typedef struct gq_layout {
    uint32_t ring, bfrag, sx, xsum, part, cnt, gen, red, att, total;
} gq_layout;

__host__ __device__ static inline gq_layout gq_layout_of(int64_t K, int G, int S, int attn)
{
    gq_layout l;
    l.ring = 0;
    l.bfrag = GQ_W * S * GQ_SLOT;
    l.sx = l.bfrag + (uint32_t)(K / 32) * 64;
    l.xsum = l.sx + (uint32_t)(K / G) * 4;
    l.part = l.xsum + (uint32_t)(K / G) * 4;
    l.cnt = l.part + GQ_D * GQ_W * 16 * 4;
    l.gen = l.cnt + GQ_D * 4;
    l.red = (l.gen + GQ_D * 4 + 7) / 8 * 8;
    l.att = (l.red + GQ_W * 8 + 15) / 16 * 16;
    l.total = l.att + (attn ? (uint32_t)sizeof(ga_smem) : 0);
    return l;
}

/* Row rr (0..15) of a tile: its segment and row (rows past the end repeat
 * the last: computed, not written). */
__device__ __forceinline__ const mm_seg *gq_row(const mm_args &a, const mm_seg *S0, int64_t r0, int rr, int64_t *r)
{
    const mm_seg *sg = S0;
    int64_t row = r0 + rr;
    if (a.mode == MM_SWIGLU) {
        sg = &a.seg[rr < 8 ? 0 : 1];
        row = r0 + (rr & 7);
    }
    *r = row < S0->rows ? row : S0->rows - 1;
    return sg;
}

/* A warp's pointer into its sequence of items: item I = warp + GQ_W m of
 * the block is (local tile jl, slice s of 256 values); the issue pointer
 * keeps its lane's rows of the tile: lane copies chunk lane & 7 of rows
 * lane / 8 + 4u (u < 4), and the scales (lane < 16) or biases of row
 * lane & 15. */
typedef struct gq_ptr {
    int I, jl, s;
    int tile;                  /* the tile the rows below are of (-1: none) */
    const char *w[4];
    const unsigned short *sc;
} gq_ptr;

/* The warp's first item, its rows not yet looked up. */
__device__ __forceinline__ void gq_start(gq_ptr *p, int warp, int nks)
{
    p->I = warp;
    p->jl = warp / nks;
    p->s = warp % nks;
    p->tile = -1;
#pragma unroll
    for (int u = 0; u < 4; u++) p->w[u] = NULL;
    p->sc = NULL;
}

__device__ __forceinline__ void gq_next(gq_ptr *p, int nks)
{
    p->I += GQ_W;
    p->s += GQ_W;
    while (p->s >= nks) {
        p->s -= nks;
        p->jl++;
    }
}

/* Requests the item at p (when there is one) into the ring slot at address
 * slot and commits: the codes of 16 rows x 256 values, then the rows'
 * scales and biases of the item's groups, rounded to an even number of
 * groups (4-byte copies). */
__device__ __forceinline__ void gq_issue(const mm_args &a, gq_ptr *p, int nitems, int nks, uint32_t slot, int lane,
                                         int gpr, int affine, const int G)
{
    if (p->I < nitems) {
        if (p->tile != p->jl) {
            p->tile = p->jl;
            int64_t r0, r;
            const mm_seg *S0 = gv_group_seg(&a, (int)blockIdx.x + p->jl * (int)gridDim.x, &r0, 16);
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const mm_seg *sg = gq_row(a, S0, r0, (lane >> 3) + 4 * u, &r);
                p->w[u] = (const char *)sg->w + (r * sg->wpr) * 4 + (lane & 7) * 16;
            }
            const mm_seg *sg = gq_row(a, S0, r0, lane & 15, &r);
            p->sc = (const unsigned short *)(lane < 16 ? sg->s : sg->b) + r * gpr;
        }
        const int k0 = p->s * GQ_KI, kn = (int)a.K - k0 < GQ_KI ? (int)a.K - k0 : GQ_KI;
        if ((lane & 7) * 32 < kn) {
#pragma unroll
            for (int u = 0; u < 4; u++)
                cp_async16(slot + (uint32_t)(((lane >> 3) + 4 * u) * GQ_ROWB +
                                             ((lane & 7) ^ gq_swz((lane >> 3) + 4 * u, G)) * 16),
                           p->w[u] + k0 / 2);
        }
        if (lane < 16 || affine) {
            const int g0 = k0 / G, ng = (kn / G + 1) & ~1;
            const uint32_t dst = slot + (uint32_t)(16 * GQ_ROWB + lane * GQ_SCB);
            for (int q = 0; 2 * q < ng && g0 + 2 * q < gpr; q++) cp_async4(dst + 4 * q, p->sc + g0 + 2 * q);
        }
    }
    cp_async_commit();
    gq_next(p, nks);
}

/* One word (8 values) of x into the B fragments: the group's max and sum
 * over its lpg neighbouring lanes (every lane of the warp calls this). */
__device__ __forceinline__ void gq_word(const float *v, int q, int ok, uint2 *bf, float *sxs, float *xs, const int G)
{
    const int NI = G / 32, lpg = G / 8;
    float m = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; i++) m = fmaxf(m, fabsf(v[i]));
    float sum = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
#pragma unroll
    for (int o = 1; o < lpg; o <<= 1) {
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
    }
    if (!ok) return;
    /* inf or NaN in x give sx inf or NaN: outputs not finite, as they
     * should be */
    const float sx = m * (1.0f / GQ_XMAX), isx = m > 0.0f && m <= 3.0e38f ? GQ_XMAX / m : 0.0f;
    uint32_t pk[4] = {0, 0, 0, 0}; /* hi even, hi odd, lo even, lo odd */
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int qv = __float2int_rn(v[i] * isx);
        qv = qv > 32639 ? 32639 : qv < -32639 ? -32639 : qv;
        const int hi = (qv + 128) >> 8, lo = qv - hi * 256;
        pk[i & 1] |= (uint32_t)(hi & 255) << (8 * (i >> 1));
        pk[2 + (i & 1)] |= (uint32_t)(lo & 255) << (8 * (i >> 1));
    }
    const int W = q % lpg, t = W / NI, i = W % NI, cg = (q / lpg) * NI + i;
    bf[cg * 8 + t] = make_uint2(pk[0], pk[1]);
    bf[cg * 8 + 4 + t] = make_uint2(pk[2], pk[3]);
    if (W == 0) {
        sxs[q / lpg] = sx;
        xs[q / lpg] = sum;
    }
}

/* x (RMSNorm applied when asked, as gv_stage_x does) into the B fragments
 * of the MMAs, with each group's sx and exact sum; ends with a barrier.
 * Thread j takes the words j, j + 256, ... (the lpg lanes of a group are
 * neighbours in one warp), GQ_XW at a time with their loads issued together
 * (x is read behind the stream of weights: each round trip is long); with
 * the RMSNorm (K <= GQ_XW * 256 * 8), x and the norm's weights are loaded
 * once, kept in registers across the sum of squares. */
#define GQ_XW 2
template <bool ATT> __device__ __forceinline__ void gq_stage_x(const mm_args &a, char *sm, const gq_layout &L, const int G)
{
    const int warp = threadIdx.x >> 5, nt = GQ_W * 32;
    const int nwd = (int)a.K / 8;
    uint2 *bf = (uint2 *)(sm + L.bfrag);
    float *sxs = (float *)(sm + L.sx), *xs = (float *)(sm + L.xsum);
    const float4 *x4 = (const float4 *)a.x, *n4 = (const float4 *)a.norm_w;
    for (int q0 = 0; q0 < nwd; q0 += GQ_XW * nt) {
        float v[GQ_XW][8];
#pragma unroll
        for (int u = 0; u < GQ_XW; u++) {
            const int q = q0 + u * nt + (int)threadIdx.x;
            float4 x0 = make_float4(0.f, 0.f, 0.f, 0.f), x1 = x0;
            /* x written by this kernel's attention: read through L2 */
            if (q < nwd && ATT) x0 = __ldcg(x4 + 2 * q), x1 = __ldcg(x4 + 2 * q + 1);
            else if (q < nwd) x0 = __ldg(x4 + 2 * q), x1 = __ldg(x4 + 2 * q + 1);
            v[u][0] = x0.x, v[u][1] = x0.y, v[u][2] = x0.z, v[u][3] = x0.w;
            v[u][4] = x1.x, v[u][5] = x1.y, v[u][6] = x1.z, v[u][7] = x1.w;
        }
        if (a.norm_w) {
            /* the whole of x is in registers (gq_ok) */
            float4 w[GQ_XW][2];
            double ss = 0.0;
#pragma unroll
            for (int u = 0; u < GQ_XW; u++) {
                const int q = q0 + u * nt + (int)threadIdx.x;
                w[u][0] = w[u][1] = make_float4(0.f, 0.f, 0.f, 0.f);
                if (q < nwd) w[u][0] = __ldg(n4 + 2 * q), w[u][1] = __ldg(n4 + 2 * q + 1);
#pragma unroll
                for (int i = 0; i < 8; i++) ss += (double)v[u][i] * v[u][i];
            }
            const float inv = block_rms_inv(ss, (double *)(sm + L.red), GQ_W, a.K, a.norm_eps);
#pragma unroll
            for (int u = 0; u < GQ_XW; u++) {
                const float wn[8] = {w[u][0].x, w[u][0].y, w[u][0].z, w[u][0].w,
                                     w[u][1].x, w[u][1].y, w[u][1].z, w[u][1].w};
#pragma unroll
                for (int i = 0; i < 8; i++) v[u][i] = __fmul_rn(wn[i], __fmul_rn(v[u][i], inv));
            }
        }
#pragma unroll
        for (int u = 0; u < GQ_XW; u++) {
            const int q = q0 + u * nt + (int)threadIdx.x;
            /* whole warps: each goes through the group's shuffles */
            if (q0 + u * nt + warp * 32 < nwd) gq_word(v[u], q, q < nwd, bf, sxs, xs, G);
        }
    }
    if ((int)threadIdx.x < GQ_D) {
        ((int *)(sm + L.cnt))[threadIdx.x] = 0;
        ((int *)(sm + L.gen))[threadIdx.x] = 0;
    }
    __syncthreads();
}

/* A warp's sums of local tile jl (rows g and g + 8 in lanes with t == 0)
 * into shared memory; the last of the tile's warps adds them in warp order
 * and writes the outputs. */
__device__ __forceinline__ void gq_flush(const mm_args &a, char *sm, const gq_layout &L, int jl, int nks, float acc0,
                                         float acc1)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int slot = jl % GQ_D, contrib = nks < GQ_W ? nks : GQ_W;
    volatile int *gen = (volatile int *)(sm + L.gen);
    int *cnt = (int *)(sm + L.cnt);
    volatile float *part = (volatile float *)(sm + L.part) + slot * GQ_W * 16;
    /* the slot's previous tile must have been added up */
    if (lane == 0)
        while (gen[slot] != jl / GQ_D) {
        }
    __syncwarp();
    if ((lane & 3) == 0) {
        part[warp * 16 + (lane >> 2)] = acc0;
        part[warp * 16 + (lane >> 2) + 8] = acc1;
    }
    __syncwarp();
    int last = 0;
    if (lane == 0) {
        __threadfence_block();
        last = atomicAdd(cnt + slot, 1) == contrib - 1;
    }
    if (!__shfl_sync(0xffffffffu, last, 0)) return;
    __threadfence_block();
    if (lane < 16) {
        float v = 0.0f;
        if (nks >= GQ_W)
            for (int w = 0; w < GQ_W; w++) v += part[w * 16 + lane];
        else
            for (int q = 0; q < nks; q++) v += part[((jl * nks + q) % GQ_W) * 16 + lane];
        int64_t r0;
        const mm_seg *S0 = gv_group_seg(&a, (int)blockIdx.x + jl * (int)gridDim.x, &r0, 16);
        if (a.mode == MM_SWIGLU) {
            const float u = __shfl_down_sync(0xffffu, v, 8, 16);
            if (lane < 8 && r0 + lane < S0->rows) a.y[r0 + lane] = silu_mul(v, u);
        } else if (r0 + lane < S0->rows) {
            if (S0->bias) v += S0->bias[r0 + lane];
            float *yp = a.y + S0->out_off + r0 + lane;
            *yp = a.mode == MM_ADD ? *yp + v : v;
        }
    }
    __syncwarp();
    if (lane == 0) {
        cnt[slot] = 0;
        __threadfence_block();
        gen[slot] = jl / GQ_D + 1;
    }
}

/* The products of one group j of an item in slot sl (rows g and g + 8 of
 * the lane) added to acc0 and acc1. */
template <int G>
__device__ __forceinline__ void gq_group(const char *sl, const uint2 *bf, const float *sxs, const float *xs, int k0,
                                         int j, int lane, int affine, int is_bf16, float &acc0, float &acc1)
{
    constexpr int NI = G / 32;
    const int g = lane >> 2;
    uint32_t w0[NI], w1[NI];
    /* byte j G / 2 + t NI 4 of the row's 128, swizzled */
    const int off = j * (G / 2) + (lane & 3) * NI * 4;
    const char *p0 = sl + g * GQ_ROWB + (((off >> 4) ^ gq_swz(g, G)) << 4) + (off & 15);
    if constexpr (NI == 4) {
        const uint4 u0 = *(const uint4 *)p0, u1 = *(const uint4 *)(p0 + 8 * GQ_ROWB);
        w0[0] = u0.x, w0[1] = u0.y, w0[2] = u0.z, w0[3] = u0.w;
        w1[0] = u1.x, w1[1] = u1.y, w1[2] = u1.z, w1[3] = u1.w;
    } else if constexpr (NI == 2) {
        const uint2 u0 = *(const uint2 *)p0, u1 = *(const uint2 *)(p0 + 8 * GQ_ROWB);
        w0[0] = u0.x, w0[1] = u0.y, w1[0] = u1.x, w1[1] = u1.y;
    } else {
        w0[0] = *(const uint32_t *)p0;
        w1[0] = *(const uint32_t *)(p0 + 8 * GQ_ROWB);
    }
    int d[4] = {0, 0, 0, 0};
    const int gg = k0 / G + j; /* the group in the row */
#pragma unroll
    for (int i = 0; i < NI; i++) {
        uint32_t af[4];
        af[0] = w0[i] & 0x0F0F0F0Fu;
        af[1] = w1[i] & 0x0F0F0F0Fu;
        af[2] = (w0[i] >> 4) & 0x0F0F0F0Fu;
        af[3] = (w1[i] >> 4) & 0x0F0F0F0Fu;
        const uint2 b = lane < 8 ? bf[(gg * NI + i) * 8 + lane] : make_uint2(0u, 0u);
        imma_u8s8(d, af, b);
    }
    const unsigned short *scs = (const unsigned short *)(sl + 16 * GQ_ROWB);
    const float sxj = sxs[gg], xj = xs[gg];
    const unsigned short h0 = scs[g * (GQ_SCB / 2) + j], h1 = scs[(g + 8) * (GQ_SCB / 2) + j];
    const float s0 = half_or_bf16(h0, is_bf16), s1 = half_or_bf16(h1, is_bf16);
    const float f0 = (float)(d[0] * 256 + d[1]), f1 = (float)(d[2] * 256 + d[3]);
    if (affine) {
        const unsigned short e0 = scs[(16 + g) * (GQ_SCB / 2) + j], e1 = scs[(24 + g) * (GQ_SCB / 2) + j];
        const float b0 = half_or_bf16(e0, is_bf16), b1 = half_or_bf16(e1, is_bf16);
        acc0 = fmaf(f0, s0 * sxj, fmaf(b0, xj, acc0));
        acc1 = fmaf(f1, s1 * sxj, fmaf(b1, xj, acc1));
    } else {
        acc0 = fmaf(s0, fmaf(f0, sxj, -8.0f * xj), acc0);
        acc1 = fmaf(s1, fmaf(f1, sxj, -8.0f * xj), acc1);
    }
}

/* The decode attention before the O product (a.attn, gemv_attn.cuh). The
 * product's blocks are resident early (dependent launch), their weights'
 * first copies in flight: before the wait each block with a unit (unit u
 * on block u, then u + grid...) loads its first keys and values, after it
 * runs its units; each block then waits until every head's output, the
 * product's x, is written. The launcher's grid is resident at once, so
 * every unit runs and the wait ends; the last block to finish zeroes the
 * counters (t.ready: heads written, blocks done) for the next launch. */
__device__ __forceinline__ int gq_ld_acquire(const int *p)
{
    int v;
    asm volatile("ld.acquire.gpu.global.b32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
    return v;
}

/* The step's position and units (dyn is written before the step's first
 * kernel: it may be read before the wait). */
typedef struct gq_att_plan {
    int64_t npos, seq, L;
    int units;
    float4 fk[GA_P], fv[GA_P];
} gq_att_plan;

__device__ __forceinline__ void gq_attention_plan(const mm_args &a, gq_att_plan *p)
{
    const attn_args &t = a.att;
    p->npos = t.dyn[0] + 1;
    p->seq = t.dyn[1];
    p->L = ga_split_len(p->npos, t.n_heads, (int)gridDim.x);
    p->units = t.n_heads * (int)((p->npos + p->L - 1) / p->L);
    const int u = (int)blockIdx.x;
    if (u < p->units) ga_fetch(t, u % t.n_heads, u / t.n_heads, p->L, p->npos, p->seq, p->fk, p->fv);
}

__device__ __forceinline__ void gq_attention(const mm_args &a, char *att_smem, const gq_att_plan &p)
{
    const attn_args &t = a.att;
    ga_smem *sm = (ga_smem *)att_smem;
    int *heads = t.ready;
    const int nh = t.n_heads;
    for (int u = (int)blockIdx.x; u < p.units; u += (int)gridDim.x) {
        if (ga_unit(t, u % nh, u / nh, p.L, p.npos, p.seq, sm, u == (int)blockIdx.x, p.fk, p.fv)) {
            /* the unit wrote its head's output */
            __threadfence();
            __syncthreads();
            if (threadIdx.x == 0) atomicAdd(heads, 1);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
        while (gq_ld_acquire(heads) < nh) __nanosleep(128);
    __syncthreads();
}

/* After the product (a.attn): the last block zeroes the counters. */
__device__ __forceinline__ void gq_attention_done(const mm_args &a)
{
    int *heads = a.att.ready, *done = heads + 1;
    if (threadIdx.x == 0 && atomicAdd(done, 1) == (int)gridDim.x - 1) {
        *heads = 0;
        *done = 0;
    }
}

template <int G, int S, bool ATT> __device__ __forceinline__ void gq_body(const mm_args &a)
{
    extern __shared__ __align__(16) char gq_smem[];
    constexpr int NG = GQ_KI / G;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const gq_layout L = gq_layout_of(a.K, G, S, ATT);
    const int affine = a.seg[0].scheme == UQ_SCHEME_AFFINE, is_bf16 = a.seg[0].sdt == UQ_BF16;
    const int gpr = (int)(a.K / G), nks = (int)((a.K + GQ_KI - 1) / GQ_KI);
    const int tiles = ((int)a.groups - (int)blockIdx.x + (int)gridDim.x - 1) / (int)gridDim.x;
    const int nitems = tiles * nks;
    const uint32_t ring = (uint32_t)__cvta_generic_to_shared(gq_smem) + L.ring + (uint32_t)(warp * S * GQ_SLOT);

    pdl_trigger();
    /* weights are never written: their copies start before the wait */
    gq_ptr ip, cp;
    gq_start(&ip, warp, nks);
#pragma unroll
    for (int k = 0; k < S; k++) gq_issue(a, &ip, nitems, nks, ring + k * GQ_SLOT, lane, gpr, affine, G);
    gq_att_plan plan;
    if (ATT) gq_attention_plan(a, &plan);
    pdl_wait();
    if (ATT) {
        const int I = ip.I, jl = ip.jl, s = ip.s;
        gq_attention(a, gq_smem + L.att, plan);
        /* the row pointers computed again (their registers free meanwhile) */
        gq_start(&ip, warp, nks);
        ip.I = I, ip.jl = jl, ip.s = s;
    }
    gq_start(&cp, warp, nks);
    gq_stage_x<ATT>(a, gq_smem, L, G);

    const uint2 *bf = (const uint2 *)(gq_smem + L.bfrag);
    const float *sxs = (const float *)(gq_smem + L.sx), *xs = (const float *)(gq_smem + L.xsum);
    float acc0 = 0.0f, acc1 = 0.0f;
    int cur = -1, si = 0;
#pragma unroll 1
    for (; cp.I < nitems; gq_next(&cp, nks)) {
        cp_async_wait(S - 1);
        __syncwarp();
        if (cp.jl != cur) {
            if (cur >= 0) gq_flush(a, gq_smem, L, cur, nks, acc0, acc1);
            acc0 = acc1 = 0.0f;
            cur = cp.jl;
        }
        const int k0 = cp.s * GQ_KI, kn = (int)a.K - k0 < GQ_KI ? (int)a.K - k0 : GQ_KI;
        const char *sl = gq_smem + L.ring + (warp * S + si) * GQ_SLOT;
        if (kn == GQ_KI) {
#pragma unroll
            for (int j = 0; j < NG; j++) gq_group<G>(sl, bf, sxs, xs, k0, j, lane, affine, is_bf16, acc0, acc1);
        } else {
            for (int j = 0; j * G < kn; j++) gq_group<G>(sl, bf, sxs, xs, k0, j, lane, affine, is_bf16, acc0, acc1);
        }
        /* every lane is done with the slot: refill it */
        __syncwarp();
        gq_issue(a, &ip, nitems, nks, ring + si * GQ_SLOT, lane, gpr, affine, G);
        si = si + 1 == S ? 0 : si + 1;
    }
    if (cur >= 0) gq_flush(a, gq_smem, L, cur, nks, acc0, acc1);
    /* no copy may land in shared memory after the block has left */
    cp_async_wait(0);
    if (ATT) gq_attention_done(a);
}

/* Items in flight a warp: S = 2 (three blocks a multiprocessor) or 3 */
#define GQ_KERNEL(G, S)                                                                                  \
    __global__ void __launch_bounds__(GQ_W * 32, 3) gemv_mma_g##G##_s##S(const mm_args a) { gq_body<G, S, false>(a); }
GQ_KERNEL(32, 2)
GQ_KERNEL(64, 2)
GQ_KERNEL(128, 2)
GQ_KERNEL(32, 3)
GQ_KERNEL(64, 3)
GQ_KERNEL(128, 3)
/* With the attention first (the O product): two blocks a multiprocessor
 * (at three, 80 registers, the prefetched keys and values spill) */
#define GQ_ATT_KERNEL(G)                                                                                  \
    __global__ void __launch_bounds__(GQ_W * 32, 2) gemv_mma_att_g##G(const mm_args a) { gq_body<G, 2, true>(a); }
GQ_ATT_KERNEL(32)
GQ_ATT_KERNEL(64)
GQ_ATT_KERNEL(128)
static const void *const gq_att_fns[3] = {(const void *)gemv_mma_att_g32, (const void *)gemv_mma_att_g64,
                                          (const void *)gemv_mma_att_g128};
static const void *const gq_fns[2][3] = {
    {(const void *)gemv_mma_g32_s2, (const void *)gemv_mma_g64_s2, (const void *)gemv_mma_g128_s2},
    {(const void *)gemv_mma_g32_s3, (const void *)gemv_mma_g64_s3, (const void *)gemv_mma_g128_s3}};

/* Whether the product takes this kernel: 4 bits, one token, groups of 32,
 * 64 or 128 (an even number a row), segments alike, 16-byte rows of codes
 * and 4-byte aligned scales, x's fragments, the ring (and the attention's
 * units) in shared memory. */
static int gq_ok(const mm_args *a)
{
    const int G = a->seg[0].group;
    if (a->fmt != 4 || a->n != 1 || (G != 32 && G != 64 && G != 128) || a->K % G != 0 || (a->K / G) % 2 != 0)
        return 0;
    if ((uintptr_t)a->x % 16 != 0 || (a->norm_w && (uintptr_t)a->norm_w % 16 != 0)) return 0;
    if (a->norm_w && a->K > GQ_XW * GQ_W * 32 * 8) return 0;
    if (a->seg[0].sdt != UQ_BF16 && a->seg[0].sdt != UQ_F16) return 0;
    for (int i = 0; i < a->nseg; i++) {
        const mm_seg *g = &a->seg[i];
        if (g->group != G || g->sdt != a->seg[0].sdt || g->scheme != a->seg[0].scheme || (uintptr_t)g->w % 16 != 0 ||
            (g->wpr * 4) % 16 != 0 || (uintptr_t)g->s % 4 != 0 ||
            (g->scheme == UQ_SCHEME_AFFINE && (uintptr_t)g->b % 4 != 0))
            return 0;
    }
    return gq_layout_of(a->K, G, 3, a->attn).total <= 200 * 1024;
}

/* Whether the decode attention of one token can run first in this product's
 * kernel: the O product (its x the attention's output), the attention's
 * fused decode path with heads of at most 128 values (a multiple of 4). */
static int gq_attn_ok(const mm_args *a)
{
    const attn_args *t = &a->att;
    const int hd = t->head_dim;
    if (a->mode != MM_ADD || a->nseg != 1 || a->n != 1 || !t->fused || !t->ready || t->n != 1) return 0;
    return hd % 4 == 0 && hd <= 128 && t->kv_dim % 4 == 0 && a->x == t->out && a->K == t->q_dim;
}

/* By default only from 4096 x 4096 weights (Llama-7B's O product): smaller
 * models keep the fp32 kernel's exact x for it. */
int gemv_mma_attn_ok(const mm_args *a)
{
    if (!uq_cuda_gemv_mma || !a->attn || !gq_attn_ok(a) || !gq_ok(a)) return 0;
    return uq_cuda_gemv_mma == 2 || a->seg[0].rows * a->K >= GQ_FP32_MAX;
}

cudaError_t gemv_mma_setup(void)
{
    for (int i = 0; i < 9; i++) {
        cudaError_t e = cudaFuncSetAttribute(i < 6 ? gq_fns[i / 3][i % 3] : gq_att_fns[i - 6],
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

int launch_gemv_mma(mm_args *a, cudaStream_t st, cudaError_t *err)
{
    if ((a->attn && !gq_attn_ok(a)) || !gq_ok(a)) return 0;
    /* up to 4096 x 4096 weights the fp32 persistent kernel is faster (52%
     * of the copy's bandwidth against 48%): its blocks leave room for the
     * next product's to start copying; but only this kernel runs the
     * attention first */
    int64_t weights = 0;
    for (int i = 0; i < a->nseg; i++) weights += a->seg[i].rows * a->K;
    if (uq_cuda_gemv_mma < 2 && weights <= GQ_FP32_MAX && !a->attn) return 0;
    const int G = a->seg[0].group, gi = G == 32 ? 0 : G == 64 ? 1 : 2;
    const int nsm = gv_sm_count(err);
    if (nsm < 0) return -1;
    /* tiles of 16 rows (8 + 8 in the SwiGLU mode), numbered per segment */
    const int tiles = gv_row_groups(a, 16);
    /* two items in flight a warp and three blocks a multiprocessor; but a
     * product repeated (the benchmark's chains) is faster with three items
     * for long rows (few tiles) and for many tiles (measured on an H100:
     * 4096 x 11008 61.8% of the copy's bandwidth against 57.4%, 22016 x 4096
     * 79.5% against 77.1%; 12288 x 4096 68.7% against 62.1%), while a
     * forward step's products, each followed by a different one, are not:
     * a decode step of 7B shape with two items everywhere 463-464 tokens/s,
     * three everywhere 460-462, three for gate/up, down and the head only
     * 453-454 (one process; docs/cuda.md) */
    const int S = !a->attn && !a->in_step && (a->K >= 8192 || tiles >= 1024) ? 3 : 2;
    const void *fn = a->attn ? gq_att_fns[gi] : gq_fns[S - 2][gi];
    const size_t smem = gq_layout_of(a->K, G, S, a->attn).total;
    int occ = 0;
    if ((*err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, fn, GQ_W * 32, smem)) != cudaSuccess) return -1;
    if (occ < 1) return 0;
    a->groups = tiles;
    const int blocks = tiles < nsm * occ ? tiles : nsm * occ;
    void *args[] = {a};
    *err = launch_kernel(fn, dim3((unsigned)blocks), dim3(GQ_W * 32), smem, st, args);
    return *err == cudaSuccess ? 1 : -1;
}
