/* Matrix products for many tokens (prefill) on the tensor cores:
 * y[n, rows] = x[n, K] . W^T with mma.sync m16n8k16 and fp32 accumulation.
 *
 * A block computes 128 weight rows x 128 tokens, walking K in stages of 64:
 * the packed weights and the input tiles arrive in shared memory through
 * cp.async (double-buffered) and the weights are dequantized there, as the
 * CPU dequantizes them, into bf16 tiles that ldmatrix feeds to the tensor
 * cores.
 *
 * Precision: quantized weights are dequantized in fp32 exactly as the CPU
 * does and rounded to f16 (11 significant bits; the codes' own error is far
 * larger), the input rounded to f16: one f16 MMA per product, fp32
 * accumulation. Float weights are exact in their type and the input is split
 * into two halves of that type, x = hi + lo: two MMAs, about 16 significant
 * bits of x. */
#include "gemm.cuh"

/* The pieces shared by gemm_body and gemm_dense (8 warps of 64 rows x 32
 * tokens, 4 x 4 tiles of m16n8k16 each). */

/* The B fragments of k-step ks for the warp's 4 token tiles (column wn)
 * from tile tBh, and with two from tile tBl as well (bl is left alone
 * otherwise), the two tiles' loads interleaved. */
__device__ __forceinline__ void gemm_frag_b(uint32_t bh[4][2], uint32_t bl[4][2], const unsigned char *tBh,
                                            const unsigned char *tBl, const int two, int wn, int ks, int lane)
{
#pragma unroll
    for (int np = 0; np < 2; np++) {
        uint32_t r4[4];
        const int t = wn * 32 + np * 16 + (lane & 7) + ((lane >> 4) << 3), ch = ks * 2 + ((lane >> 3) & 1);
        ldmatrix_x4(r4, tBh + swz(t, ch));
        bh[np * 2][0] = r4[0];
        bh[np * 2][1] = r4[1];
        bh[np * 2 + 1][0] = r4[2];
        bh[np * 2 + 1][1] = r4[3];
        if (two) {
            ldmatrix_x4(r4, tBl + swz(t, ch));
            bl[np * 2][0] = r4[0];
            bl[np * 2][1] = r4[1];
            bl[np * 2 + 1][0] = r4[2];
            bl[np * 2 + 1][1] = r4[3];
        }
    }
}

/* The A fragment of k-step ks for row tile mt of the warp (row wm). */
__device__ __forceinline__ void gemm_frag_a(uint32_t ah[4], const unsigned char *tA, int wm, int mt, int ks, int lane)
{
    const int r = wm * 64 + mt * 16 + (lane & 15), ch = ks * 2 + (lane >> 4);
    ldmatrix_x4(ah, tA + swz(r, ch));
}

/* The warp's results plus the bias, written or added to y. */
__device__ __forceinline__ void gemm_epilogue(const mm_args *a, const mm_seg *S, int64_t row0, int tok0, int wm,
                                              int wn, int lane, float acc[4][4][4])
{
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const int64_t r = row0 + wm * 64 + (i >> 1) * 16 + (lane >> 2) + (i & 1) * 8;
        if (r >= S->rows) continue;
        const float bias = S->bias ? S->bias[r] : 0.0f;
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int tok = tok0 + wn * 32 + nt * 8 + (lane & 3) * 2 + e;
                if (tok >= a->n) continue;
                const float v = acc[i >> 1][nt][(i & 1) * 2 + e] + bias;
                float *yp = a->y + (int64_t)tok * a->ldy + S->out_off + r;
                *yp = a->mode == MM_ADD ? *yp + v : v;
            }
    }
}

/* Shared memory: quantized formats keep the dequantized weights (an f16
 * tile, single-buffered), two stages of packed weights (8 KB each) and two
 * stages of f16 input tiles; float formats feed the tensor cores from two
 * stages of weight tiles and two stages of input tiles (hi and lo). */
#define QOFF_AH 0
#define QOFF_W GM_TILE
#define QW_STAGE 8192
#define QOFF_B (GM_TILE + 2 * QW_STAGE)
#define FOFF_W 0
#define FOFF_B (2 * GM_TILE)

__device__ __forceinline__ void gemm_load_stage(const mm_args *a, const mm_seg *S, int64_t row0, int tok0, int kt,
                                                int buf, unsigned char *smem, const int F)
{
    const int quant = F <= 8, tid = threadIdx.x;
    const int64_t K = a->K, k0 = (int64_t)kt * GM_BK;
    unsigned char *tB = smem + (quant ? QOFF_B : FOFF_B);
    const int nb = quant ? 1 : 2; /* input tiles per stage */
#pragma unroll
    for (int i = 0; i < 8; i++) {
        if (quant && i >= 4) break;
        int idx = tid + i * GM_THREADS;
        int arr = idx >> 10, rem = idx & 1023, t = rem >> 3, ch = rem & 7;
        int tok = tok0 + t;
        const uint16_t *base = arr ? a->xl : a->xh;
        const uint16_t *src = base + (int64_t)(tok < a->n ? tok : 0) * K + k0 + ch * 8;
        cp_async16(tB + (buf * nb + arr) * GM_TILE + swz(t, ch), src, tok < a->n ? 16 : 0);
    }
    if (quant) {
        const int wbytes = 8 * F;              /* bytes of one weight row per stage */
        const int wcs = F % 2 == 0 ? 16 : 8;    /* cp.async chunk */
        const int wcpr = wbytes / wcs;
        unsigned char *dst = smem + QOFF_W + buf * QW_STAGE;
        for (int idx = tid; idx < GM_BM * wcpr; idx += GM_THREADS) {
            int r = idx / wcpr, ch = idx - r * wcpr;
            int64_t rr = row0 + r < S->rows ? row0 + r : S->rows - 1;
            const unsigned char *src = (const unsigned char *)S->w + rr * S->wpr * 4 + k0 * F / 8 + ch * wcs;
            if (wcs == 16)
                cp_async16(dst + r * wbytes + ch * 16, src, 16);
            else
                cp_async8(dst + r * wbytes + ch * 8, src);
        }
    } else {
        unsigned char *dst = smem + FOFF_W + buf * GM_TILE;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int idx = tid + i * GM_THREADS, r = idx >> 3, ch = idx & 7;
            int64_t rr = row0 + r < S->rows ? row0 + r : S->rows - 1;
            const uint16_t *src = (const uint16_t *)S->w + rr * K + k0 + ch * 8;
            cp_async16(dst + swz(r, ch), src, 16);
        }
    }
    cp_async_commit();
}

/* A block computes 128 rows x 128 tokens with 8 warps (2 x 4), each 64 rows
 * x 32 tokens: 4 x 4 tiles of m16n8k16.
 *
 * Quantized weights are dequantized per stage exactly as the CPU does
 * (w = q s + b or (q - 2^(b-1)) s in fp32) and rounded to f16; with the input
 * in f16, one MMA. bf16 / f16 weights are exact in their type, the input
 * split in two halves: two MMAs. */
__device__ __forceinline__ void gemm_body(const mm_args *a, const int F)
{
    extern __shared__ __align__(128) unsigned char smem[];
    const int quant = F <= 8;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp & 1, wn = warp >> 1;
    pdl_trigger();
    pdl_wait();

    int64_t row0;
    const mm_seg *S = gemm_seg(a, (int)blockIdx.x, GM_BM, &row0);
    const int tok0 = blockIdx.y * GM_BN;
    const int KT = (int)(a->K / GM_BK);
    const int affine = S->scheme == UQ_SCHEME_AFFINE;
    const int group = S->group > 0 ? S->group : (int)a->K;
    const int64_t gpr = quant ? a->K / group : 0;
    const float sub = 8388608.0f + (quant && !affine ? (float)(1 << (F - 1)) : 0.0f);
    /* the dequantizing thread's row and half of the stage's 64 values */
    const int dr = tid >> 1, dh = tid & 1;
    const int64_t drow = row0 + dr < S->rows ? row0 + dr : S->rows - 1;

    float acc[4][4][4];
    gemm_zero(acc);

    gemm_load_stage(a, S, row0, tok0, 0, 0, smem, F);
    for (int kt = 0; kt < KT; kt++) {
        const int buf = kt & 1;
        /* scales and biases of the dequantizing thread's 4 runs of 8 values,
         * requested before the wait so that their latency overlaps it */
        float sc[4], bi[4];
        if (quant) {
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int64_t gi = drow * gpr + ((int64_t)kt * GM_BK + dh * 32 + c * 8) / group;
                sc[c] = load_scale(S->s, gi, S->sdt);
                bi[c] = affine ? load_scale(S->b, gi, S->sdt) : 0.0f;
            }
        }
        cp_async_wait_all();
        __syncthreads();
        if (kt + 1 < KT) gemm_load_stage(a, S, row0, tok0, kt + 1, buf ^ 1, smem, F);
        const unsigned char *tAh;
        if (quant) {
            const uint32_t *wp = (const uint32_t *)(smem + QOFF_W + buf * QW_STAGE + dr * (8 * F) + dh * 4 * F);
            const uint32_t mask = (1u << F) - 1u;
#pragma unroll
            for (int c = 0; c < 4; c++) {
                uint32_t ph[4];
#pragma unroll
                for (int p = 0; p < 4; p++) {
                    float wv[2];
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const int k = c * 8 + p * 2 + e, bit = k * F, wi = bit >> 5, off = bit & 31;
                        /* the words are read from shared memory where needed */
                        uint32_t t = off + F <= 32 ? wp[wi] >> off : __funnelshift_r(wp[wi], wp[wi + 1], off);
                        const float q = __uint_as_float((t & mask) | 0x4B000000u) - sub; /* exact */
                        wv[e] = affine ? __fadd_rn(__fmul_rn(q, sc[c]), bi[c]) : __fmul_rn(q, sc[c]);
                    }
                    __half2 h2 = __floats2half2_rn(wv[0], wv[1]);
                    ph[p] = *(uint32_t *)&h2;
                }
                *(uint4 *)(smem + QOFF_AH + swz(dr, dh * 4 + c)) = make_uint4(ph[0], ph[1], ph[2], ph[3]);
            }
            __syncthreads();
            tAh = smem + QOFF_AH;
        } else {
            tAh = smem + FOFF_W + buf * GM_TILE;
        }
        const unsigned char *tB = smem + (quant ? QOFF_B : FOFF_B);
        const unsigned char *tBh = tB + (buf * (quant ? 1 : 2)) * GM_TILE, *tBl = tBh + GM_TILE;
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            uint32_t bh[4][2], bl[4][2];
            gemm_frag_b(bh, bl, tBh, tBl, !quant, wn, ks, lane);
#pragma unroll
            for (int mt = 0; mt < 4; mt++) {
                uint32_t ah[4];
                gemm_frag_a(ah, tAh, wm, mt, ks, lane);
#pragma unroll
                for (int nt = 0; nt < 4; nt++) {
                    if (quant) {
                        mma_f16(acc[mt][nt], ah, bh[nt]);
                    } else if (F == FMT_F16) {
                        mma_f16(acc[mt][nt], ah, bh[nt]);
                        mma_f16(acc[mt][nt], ah, bl[nt]);
                    } else {
                        mma_bf16(acc[mt][nt], ah, bh[nt]);
                        mma_bf16(acc[mt][nt], ah, bl[nt]);
                    }
                }
            }
        }
    }

    /* ---- epilogue */
    gemm_epilogue(a, S, row0, tok0, wm, wn, lane, acc);
}

/* ------------------------------------------------ prefill: dense f16 path
 *
 * For a step of many tokens the quantized weights of a product are first
 * expanded to a dense f16 matrix in a scratch buffer (dequant_kernel: the
 * codes read once, f16 written once; the same fp32 arithmetic and rounding as
 * the in-loop path above), then gemm_dense streams f16 tiles of weights and
 * input through a 3-stage cp.async ring with one f16 MMA per product: the
 * same products in the same order as the in-loop path, so the same results
 * bit for bit, without a dequantizing phase between the tensor-core phases. */

#define DQ_THREADS 256
#define DN_STAGES 3

/* Row of the scratch matrix that row r of segment si lands on: stacked after
 * the previous segments' rows, or (gate and up of the SwiGLU mode)
 * interleaved in runs of ilv rows, gate rows ilv j .. ilv j + ilv - 1 then the
 * same up rows: 16 for gemm_dense (one 16-row tile of the GEMM holds gate and
 * the next the matching up values), 8 for gemm_wg (a thread's two rows). */
__device__ __forceinline__ int64_t dq_out_row(const mm_args *a, int si, int64_t r)
{
    if (a->mode == MM_SWIGLU) return (r / a->ilv) * 2 * a->ilv + si * a->ilv + r % a->ilv;
    int64_t row0 = 0;
    for (int i = 0; i < si; i++) row0 += a->seg[i].rows;
    return row0 + r;
}

/* A block expands row blockIdx.x of segment blockIdx.y into out ([rows][K]
 * f16, dq_out_row), a thread a run of 8 values at a time (group % 8 == 0:
 * one scale and bias a run); 32-bit index arithmetic within the row. */
template <int F>
__global__ void __launch_bounds__(DQ_THREADS) dequant_kernel(const mm_args a, uint16_t *out)
{
    pdl_trigger();
    const mm_seg *S = &a.seg[blockIdx.y];
    const int r = blockIdx.x;
    if (r >= S->rows) {
        pdl_wait();
        return;
    }
    const int K = (int)a.K, runs = K / 8;
    const int affine = S->scheme == UQ_SCHEME_AFFINE;
    const int group = S->group > 0 ? S->group : K, gpr = K / group;
    const float sub = 8388608.0f + (!affine ? (float)(1 << (F - 1)) : 0.0f);
    const uint32_t mask = (1u << F) - 1u;
    const uint32_t *wrow = (const uint32_t *)S->w + (int64_t)r * S->wpr;
    const int64_t g0 = (int64_t)r * gpr;
    uint16_t *orow = out + dq_out_row(&a, (int)blockIdx.y, r) * (int64_t)K;
    /* the previous product may still read the buffer */
    pdl_wait();
    for (int k = threadIdx.x; k < runs; k += DQ_THREADS) {
        const int gi = k * 8 / group;
        const float sc = load_scale(S->s, g0 + gi, S->sdt);
        const float bi = affine ? load_scale(S->b, g0 + gi, S->sdt) : 0.0f;
        const int bit0 = k * 8 * F;
        uint32_t ph[4];
#pragma unroll
        for (int p = 0; p < 4; p++) {
            float wv[2];
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int bit = bit0 + (p * 2 + e) * F, wi = bit >> 5, off = bit & 31;
                const uint32_t w0 = __ldg(wrow + wi);
                const uint32_t t = off + F <= 32 ? w0 >> off : __funnelshift_r(w0, __ldg(wrow + wi + 1), off);
                const float q = __uint_as_float((t & mask) | 0x4B000000u) - sub; /* exact */
                wv[e] = affine ? __fadd_rn(__fmul_rn(q, sc), bi) : __fmul_rn(q, sc);
            }
            __half2 h2 = __floats2half2_rn(wv[0], wv[1]);
            ph[p] = *(uint32_t *)&h2;
        }
        *(uint4 *)(orow + k * 8) = make_uint4(ph[0], ph[1], ph[2], ph[3]);
    }
}

/* The dense GEMM's shape for a token tile of BN (128 or 64): 8 warps, WM
 * along the 128 weight rows and WN along the tokens, each MT x NT tiles of
 * m16n8k16 (128: 2 x 4 warps of 64 rows x 32 tokens; 64: 4 x 2 warps of 32
 * rows x 32 tokens, for products with too few 128 x 128 tiles to fill the
 * GPU). */
template <int BN> struct dn_cfg {
    static const int WM = BN == 128 ? 2 : 4, WN = 8 / WM;
    static const int MT = GM_BM / (16 * WM), NT = BN / (8 * WN);
    static const int BTILE = BN * GM_BK * 2; /* bytes of an input tile */
    static const int SMEM = DN_STAGES * (GM_TILE + BTILE);
};

template <int BN>
__device__ __forceinline__ void dense_load_stage(const mm_args *a, const mm_seg *S, int64_t row0, int tok0, int kt,
                                                 int buf, unsigned char *smem)
{
    gemm_load_w(a, S, row0, kt, smem + buf * GM_TILE);
    gemm_load_x<BN>(a, tok0, kt, smem + DN_STAGES * GM_TILE + buf * dn_cfg<BN>::BTILE);
}

/* Weights as f16 from the scratch, through a DN_STAGES-deep cp.async ring;
 * one f16 MMA per product, each output one warp's fp32 sum in the order of
 * the in-loop kernel (so the same bits whatever BN). The token tiles are the
 * grid's x, so the blocks sharing a weight tile run together and its f16
 * values come from DRAM once (a product's dense weights are larger than L2).
 * Epilogue: the bias and store / add (fp32 y), or in the SwiGLU mode (rows
 * of gate and up interleaved by 16, dq_out_row) silu(gate) * up rounded to
 * f16 into yh, the next product's input. */
template <int BN>
__global__ void __launch_bounds__(GM_THREADS, 2) gemm_dense(const mm_args a)
{
    typedef dn_cfg<BN> C;
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp % C::WM, wn = warp / C::WM;
    pdl_trigger();
    pdl_wait();

    int64_t row0;
    const mm_seg *S = gemm_seg(&a, (int)blockIdx.y, GM_BM, &row0);
    const int tok0 = blockIdx.x * BN;
    const int KT = (int)(a.K / GM_BK);

    float acc[C::MT][C::NT][4];
    gemm_zero(acc);

#pragma unroll
    for (int st = 0; st < DN_STAGES - 1; st++) {
        if (st < KT) dense_load_stage<BN>(&a, S, row0, tok0, st, st, smem);
        cp_async_commit();
    }
    for (int kt = 0; kt < KT; kt++) {
        const int buf = kt % DN_STAGES;
        asm volatile("cp.async.wait_group %0;\n" ::"n"(DN_STAGES - 2));
        __syncthreads();
        if (kt + DN_STAGES - 1 < KT)
            dense_load_stage<BN>(&a, S, row0, tok0, kt + DN_STAGES - 1, (kt + DN_STAGES - 1) % DN_STAGES, smem);
        cp_async_commit();
        const unsigned char *tA = smem + buf * GM_TILE, *tB = smem + DN_STAGES * GM_TILE + buf * C::BTILE;
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            uint32_t bh[C::NT][2];
            gemm_frag_x<C::NT>(bh, tB, wn * C::NT * 8, ks, lane);
#pragma unroll
            for (int mt = 0; mt < C::MT; mt++) {
                uint32_t ah[4];
                ldmatrix_x4(ah, tA + swz(wm * C::MT * 16 + mt * 16 + (lane & 15), ks * 2 + (lane >> 4)));
#pragma unroll
                for (int nt = 0; nt < C::NT; nt++) mma_f16(acc[mt][nt], ah, bh[nt]);
            }
        }
    }
    cp_async_wait_all();

    gemm_store<C::MT, C::NT>(a, S, row0 + wm * C::MT * 16 + (lane >> 2), tok0 + wn * C::NT * 8 + (lane & 3) * 2,
                             a.seg[0].rows / 2, acc);
}

typedef void (*dequant_fn)(const mm_args, uint16_t *);
static const dequant_fn dequant_table[8] = {dequant_kernel<1>, dequant_kernel<2>, dequant_kernel<3>,
                                            dequant_kernel<4>, dequant_kernel<5>, dequant_kernel<6>,
                                            dequant_kernel<7>, dequant_kernel<8>};

/* Token tile of the dense GEMM: 0 chooses (64 when 128 x 128 tiles would not
 * give every multiprocessor two blocks), else 64 or 128. */
int uq_cuda_gemm_bn = 0;

int gemm_swiglu_ok(const mm_args *a)
{
    return a->nseg == 2 && a->seg[0].rows == a->seg[1].rows && a->seg[0].rows % 16 == 0 && !a->seg[0].bias &&
           !a->seg[1].bias;
}

cudaError_t launch_dequant(const mm_args *a, uint16_t *scratch, cudaStream_t st)
{
    int64_t maxrows = 0;
    for (int i = 0; i < a->nseg; i++)
        if (a->seg[i].rows > maxrows) maxrows = a->seg[i].rows;
    dim3 grid((unsigned)maxrows, (unsigned)a->nseg);
    mm_args b = *a;
    b.ilv = gemm_wg_ilv();
    void *dargs[] = {&b, &scratch};
    return launch_kernel((const void *)dequant_table[a->fmt - 1], grid, dim3(DQ_THREADS), 0, st, dargs);
}

cudaError_t launch_gemm_dequant(mm_args *a, uint16_t *scratch, cudaStream_t st)
{
    cudaError_t e = launch_dequant(a, scratch, st);
    return e != cudaSuccess ? e : launch_gemm_dense(a, scratch, st);
}

cudaError_t launch_gemm_dense(const mm_args *a, const uint16_t *scratch, cudaStream_t st)
{
    mm_args b = *a;
    int blocks = 0;
    int64_t rows = 0;
    if (b.mode == MM_SWIGLU) {
        /* one matrix of gate and up rows interleaved */
        b.nseg = 1;
        b.seg[0].rows = 2 * a->seg[0].rows;
        b.seg[0].w = scratch;
        b.seg[0].blk0 = 0;
        b.seg[0].out_off = 0;
        blocks = (int)((b.seg[0].rows + GM_BM - 1) / GM_BM);
    } else {
        for (int i = 0; i < b.nseg; i++) {
            b.seg[i].w = scratch + rows * b.K;
            b.seg[i].blk0 = blocks;
            rows += b.seg[i].rows;
            blocks += (int)((b.seg[i].rows + GM_BM - 1) / GM_BM);
        }
    }
    if (gemm_wg_ok()) return launch_gemm_wg(&b, blocks, st);
    int bn = uq_cuda_gemm_bn, few = 0;
    if (bn != 64 && bn != 128) {
        cudaError_t e = gemm_few_blocks((int64_t)blocks * ((b.n + 127) / 128), &few);
        if (e != cudaSuccess) return e;
        bn = few ? 64 : 128;
    }
    dim3 ggrid((unsigned)((b.n + bn - 1) / bn), (unsigned)blocks);
    void *args[] = {&b};
    if (bn == 64) return launch_kernel((const void *)gemm_dense<64>, ggrid, dim3(GM_THREADS), dn_cfg<64>::SMEM, st, args);
    return launch_kernel((const void *)gemm_dense<128>, ggrid, dim3(GM_THREADS), dn_cfg<128>::SMEM, st, args);
}

#define GEMM_KERNEL(F) \
    __global__ void __launch_bounds__(GM_THREADS, 2) gemm_##F(const mm_args a) { gemm_body(&a, F); }
GEMM_KERNEL(1)
GEMM_KERNEL(2)
GEMM_KERNEL(3)
GEMM_KERNEL(4)
GEMM_KERNEL(5)
GEMM_KERNEL(6)
GEMM_KERNEL(7)
GEMM_KERNEL(8)
GEMM_KERNEL(32)
GEMM_KERNEL(33)

typedef void (*gemm_fn)(const mm_args);
static const gemm_fn gemm_table[10] = {gemm_1, gemm_2, gemm_3, gemm_4, gemm_5, gemm_6, gemm_7, gemm_8, gemm_32, gemm_33};

int gemm_supported(const dmat *m)
{
    if (m->cols % GM_BK != 0) return 0;
    if (m->quantized) return m->bits >= 1 && m->bits <= 8 && m->group % 8 == 0;
    return m->dtype == UQ_BF16 || m->dtype == UQ_F16;
}

cudaError_t gemm_setup(void)
{
    for (int i = 0; i < 10; i++) {
        cudaError_t e = cudaFuncSetAttribute(gemm_table[i], cudaFuncAttributeMaxDynamicSharedMemorySize, GM_SMEM);
        if (e != cudaSuccess) return e;
    }
    cudaError_t e = gemm_codes_setup();
    if (e != cudaSuccess) return e;
    (void)gemm_wg_ok(); /* probed here, outside any stream capture */
    e = cudaFuncSetAttribute(gemm_dense<128>, cudaFuncAttributeMaxDynamicSharedMemorySize, dn_cfg<128>::SMEM);
    if (e != cudaSuccess) return e;
    return cudaFuncSetAttribute(gemm_dense<64>, cudaFuncAttributeMaxDynamicSharedMemorySize, dn_cfg<64>::SMEM);
}

cudaError_t launch_gemm(mm_args *a, cudaStream_t st)
{
    int fi = a->fmt <= 8 ? a->fmt - 1 : a->fmt == FMT_BF16 ? 8 : 9;
    int blocks = 0;
    for (int i = 0; i < a->nseg; i++) {
        a->seg[i].blk0 = blocks;
        blocks += (int)((a->seg[i].rows + GM_BM - 1) / GM_BM);
    }
    dim3 grid((unsigned)blocks, (unsigned)((a->n + GM_BN - 1) / GM_BN));
    void *args[] = {a};
    return launch_kernel((const void *)gemm_table[fi], grid, dim3(GM_THREADS), GM_SMEM, st, args);
}
