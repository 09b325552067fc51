/* Matrix products for many tokens (prefill) straight on 4-bit codes:
 * y[n, rows] = x[n, K] . W^T with mma.sync m16n8k16, fp32 accumulation.
 *
 * The dense path (gemm.cu) first expands a product's weights to an f16
 * matrix (0.4 GB of extra traffic a layer of a 7B model) and then streams f16
 * tiles. Here the packed codes (a quarter of the bytes) go through the
 * cp.async ring next to the input tiles, and each warp turns its own codes
 * into the tensor cores' A fragments in registers: for the byte c holding
 * codes 2c and 2c+1 (the pair a fragment register needs), one PRMT copies it
 * to both halves of a word, one LOP3 keeps the low nibble in the low half and
 * the high nibble in bits 4-7 of the high half and ORs in the exponents of
 * 1024 and 64, so that the halves read as the f16 numbers 1024 + lo and
 * 64 + hi; one HSUB2 leaves the exact codes (minus 2^(bits-1) for the
 * symmetric scheme) and one HFMA2 applies the group's scale and bias: the
 * weight q s + b rounded once to f16. The dense path rounds q s + b
 * computed in fp32 to f16: the same value whenever that fp32 sum is exact
 * (bf16 or f16 scales and biases of comparable size), else one f16 step
 * apart at most; the products and their order are the same.
 *
 * A block computes BM weight rows (128, or 64 for products too small to give
 * every multiprocessor two blocks) x 128 tokens, gate and up interleaved by
 * 16 rows in the SwiGLU mode as in the dense path. Groups of 64 values or a
 * multiple: one scale and bias per row and stage, converted to f16 by one
 * thread a row and kept beside the codes.
 *
 * At 512 tokens these GEMMs take 20-35% longer than the dense path's (the
 * conversion's dependent chain sits in front of each warp's MMAs, at 128
 * registers a thread), which the expansion they save outweighs only for the
 * larger products: module.cu runs q/k/v and gate/up here by default and
 * expands o and down a layer ahead. Measured and dropped: each warp a
 * 16-row tile against all 128 tokens (half the conversions, no faster); the
 * block converting each stage into an f16 tile in shared memory while its
 * MMAs work on the previous one (the dense loop unchanged): 5% slower. */
#include "gemm_codes.cuh"

#define GC_STAGES 4
#define GC_BN 128

/* 8 warps, 4 along the rows and 2 along the tokens: a warp computes MT
 * 16-row tiles against 8 token tiles, each converted fragment serving 8
 * MMAs. */
template <int BM> struct gc_cfg {
    static const int WM = 4, WN = 2, MT = BM / (16 * WM), NT = GC_BN / (8 * WN);
    static const int XTILE = GC_BN * GM_BK * 2; /* input tile, f16 */
    static const int WTILE = BM * 32;           /* 64 codes of 4 bits a row */
    static const int STILE = BM * 4;            /* (scale, bias) in f16 a row */
    static const int STAGE = XTILE + WTILE + STILE;
    static const int SMEM = GC_STAGES * STAGE;
};

template <int BM>
__global__ void __launch_bounds__(GM_THREADS, 2) gemm_codes4(const mm_args a)
{
    typedef gc_cfg<BM> C;
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp % C::WM, wn = warp / C::WM, g = lane >> 2, c = lane & 3;
    pdl_trigger();

    int64_t row0 = (int64_t)blockIdx.y * BM;
    const mm_seg *S = a.mode == MM_SWIGLU ? &a.seg[0] : gemm_seg(&a, (int)blockIdx.y, BM, &row0);
    const int tok0 = blockIdx.x * GC_BN, KT = (int)(a.K / GM_BK);

    gc_loader L;
    gc_loader_init(&L, a, S, row0, BM, 16);
    const uint32_t sub = S->scheme == UQ_SCHEME_AFFINE ? 0x54006400u : 0x54806408u; /* (1024, 64) or (1032, 72) */
    const uint32_t sel = (uint32_t)c | 0x40u | ((uint32_t)c << 8) | 0x4000u;

    float acc[C::MT][C::NT][4];
    gemm_zero(acc);

    /* the weights are not the previous kernel's: the first stages' codes
     * and scales are requested before waiting for it */
#pragma unroll
    for (int st = 0; st < GC_STAGES - 1; st++) {
        if (st >= KT) break;
        unsigned char *base = smem + st * C::STAGE;
        gc_load_codes(&L, base + C::XTILE, st);
        if (L.sp) *(uint32_t *)(base + C::XTILE + C::WTILE + tid * 4) = gc_load_scale(&L, st);
    }
    pdl_wait();
#pragma unroll
    for (int st = 0; st < GC_STAGES - 1; st++) {
        if (st < KT) gemm_load_x<GC_BN>(&a, tok0, st, smem + st * C::STAGE);
        cp_async_commit();
    }

    /* the input fragments' rows and swizzled chunks (gemm_frag_x) for the 4
     * k-steps, and the code rows' offsets for k-steps 0-1 and 2-3 (gc_off) */
    const uint32_t sbase = (uint32_t)__cvta_generic_to_shared(smem);
    uint32_t xo[4];
    const int xt = wn * C::NT * 8 + (lane & 7) + ((lane >> 4) << 3);
#pragma unroll
    for (int ks = 0; ks < 4; ks++) xo[ks] = (uint32_t)swz(xt, ks * 2 + ((lane >> 3) & 1));
    const int wr = wm * C::MT * 16 + g;
    const uint32_t wo0 = (uint32_t)gc_off(wr, 0), wo1 = (uint32_t)gc_off(wr, 2);

    for (int kt = 0; kt < KT; kt++) {
        const int buf = kt % GC_STAGES, nk = kt + GC_STAGES - 1, nb = nk % GC_STAGES;
        asm volatile("cp.async.wait_group %0;\n" ::"n"(GC_STAGES - 2));
        __syncthreads();
        uint32_t sb_next = 0;
        if (nk < KT) {
            unsigned char *base = smem + nb * C::STAGE;
            gemm_load_x<GC_BN>(&a, tok0, nk, base);
            gc_load_codes(&L, base + C::XTILE, nk);
            sb_next = gc_load_scale(&L, nk);
        }
        cp_async_commit();

        /* 32-bit shared addresses, the per-thread parts computed once
         * (xo, wo0, wo1 below) and the rest immediate offsets */
        const uint32_t sx = sbase + buf * C::STAGE, sw = sx + C::XTILE, ss = sw + C::WTILE;
        uint32_t s2[C::MT][2], b2[C::MT][2];
#pragma unroll
        for (int mt = 0; mt < C::MT; mt++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const uint32_t sb = lds32(ss + (wm * C::MT * 16 + mt * 16 + g + h * 8) * 4);
                s2[mt][h] = __byte_perm(sb, 0u, 0x1010);
                b2[mt][h] = __byte_perm(sb, 0u, 0x3232);
            }
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            uint32_t bh[C::NT][2];
#pragma unroll
            for (int np = 0; np < C::NT / 2; np++) {
                uint32_t r4[4];
                ldmatrix_x4(r4, sx + xo[ks] + np * 16 * 128);
                bh[np * 2][0] = r4[0];
                bh[np * 2][1] = r4[1];
                bh[np * 2 + 1][0] = r4[2];
                bh[np * 2 + 1][1] = r4[3];
            }
#pragma unroll
            for (int mt = 0; mt < C::MT; mt++) {
                const uint32_t a0 = sw + (ks < 2 ? wo0 : wo1) + mt * 16 * 32 + (ks & 1) * 8;
                uint32_t lo0, lo1, hi0, hi1;
                lds64(a0, lo0, lo1);
                lds64(a0 + 8 * 32, hi0, hi1);
                uint32_t af[4];
                af[0] = gc_pair(lo0, sel, sub, s2[mt][0], b2[mt][0]);
                af[1] = gc_pair(hi0, sel, sub, s2[mt][1], b2[mt][1]);
                af[2] = gc_pair(lo1, sel, sub, s2[mt][0], b2[mt][0]);
                af[3] = gc_pair(hi1, sel, sub, s2[mt][1], b2[mt][1]);
#pragma unroll
                for (int nt = 0; nt < C::NT; nt++) mma_f16(acc[mt][nt], af, bh[nt]);
            }
        }
        /* stage nk's buffer was last read in the previous iteration, before
         * this iteration's barrier */
        if (nk < KT && L.sp) *(uint32_t *)(smem + nb * C::STAGE + C::XTILE + C::WTILE + tid * 4) = sb_next;
    }
    cp_async_wait_all();
    gemm_store<C::MT, C::NT>(a, S, row0 + wm * C::MT * 16 + g, tok0 + wn * C::NT * 8 + c * 2, a.seg[0].rows, acc);
}

int gemm_codes_ok(const mm_args *a)
{
    if (a->fmt != 4 || a->K % GM_BK != 0 || a->nseg < 1) return 0;
    if (a->mode == MM_SWIGLU && !gemm_swiglu_ok(a)) return 0;
    for (int i = 0; i < a->nseg; i++) {
        const mm_seg *s = &a->seg[i];
        if (s->group <= 0 || s->group % GM_BK != 0 || a->K % s->group != 0) return 0;
        if (s->scheme != a->seg[0].scheme || (s->scheme != UQ_SCHEME_AFFINE && s->scheme != UQ_SCHEME_SYMMETRIC))
            return 0;
        if (s->sdt != UQ_F32 && s->sdt != UQ_F16 && s->sdt != UQ_BF16) return 0;
        if ((uintptr_t)s->w % 16 != 0 || s->wpr * 4 != a->K / 2) return 0;
    }
    return 1;
}

cudaError_t gemm_codes_setup(void)
{
    cudaError_t e =
        cudaFuncSetAttribute(gemm_codes4<128>, cudaFuncAttributeMaxDynamicSharedMemorySize, gc_cfg<128>::SMEM);
    if (e != cudaSuccess) return e;
    return cudaFuncSetAttribute(gemm_codes4<64>, cudaFuncAttributeMaxDynamicSharedMemorySize, gc_cfg<64>::SMEM);
}

/* Row blocks of bm rows for a's segments (blk0 set), gate and up counted
 * as one interleaved matrix in the SwiGLU mode. */
static int gc_blocks(mm_args *a, int bm)
{
    if (a->mode == MM_SWIGLU) return (int)((2 * a->seg[0].rows + bm - 1) / bm);
    int blocks = 0;
    for (int i = 0; i < a->nseg; i++) {
        a->seg[i].blk0 = blocks;
        blocks += (int)((a->seg[i].rows + bm - 1) / bm);
    }
    return blocks;
}

cudaError_t launch_gemm_codes(mm_args *a, cudaStream_t st)
{
    if (gemm_wg_ok()) return launch_gemm_codes_wg(a, gc_blocks(a, 128), st);
    const int tiles = (a->n + GC_BN - 1) / GC_BN;
    /* 64-row blocks when 128-row ones would not give every multiprocessor
     * two (the SwiGLU epilogue pairs 16-row tiles: 128 only) */
    int bm = 128, blocks = gc_blocks(a, 128), few = 0;
    const cudaError_t e = gemm_few_blocks((int64_t)blocks * tiles, &few);
    if (e != cudaSuccess) return e;
    if (a->mode != MM_SWIGLU && few) blocks = gc_blocks(a, bm = 64);
    dim3 grid((unsigned)tiles, (unsigned)blocks);
    void *args[] = {a};
    if (bm == 64) return launch_kernel((const void *)gemm_codes4<64>, grid, dim3(GM_THREADS), gc_cfg<64>::SMEM, st, args);
    return launch_kernel((const void *)gemm_codes4<128>, grid, dim3(GM_THREADS), gc_cfg<128>::SMEM, st, args);
}
