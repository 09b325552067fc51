/* Matrix products for many tokens (prefill) straight on 4-bit codes, on
 * Hopper's warpgroup MMAs (sm_90a): the product of gemm_codes.cu with
 * wgmma instead of mma.sync.
 *
 * A block of two warpgroups computes 128 weight rows x 128 tokens. The
 * input tile (f16, swizzled as gemm.cuh's swz) stays in shared memory, where
 * the tensor cores read it as the B operand; the A operand comes from
 * registers: each warp turns the codes of its 16 rows into the fragment for
 * 16 values of K (gemm_codes.cuh's gc_pair: PRMT, LOP3, HSUB2, HFMA2), and
 * since the MMAs are asynchronous the conversion of the next 16 values runs
 * while the tensor cores work on the previous ones (two fragments in
 * registers, each reused after the MMA that read it is done). Codes, (scale,
 * bias) pairs and input tiles come through a GCW_STAGES-deep cp.async ring;
 * the codes and scales of the first stages are requested before waiting for
 * the previous kernel. Gate and up interleave by 8 rows in the SwiGLU mode
 * (wg_store). The weights and their rounding are gemm_codes.cu's; only the
 * order of the fp32 sums within the tensor cores may differ. */
#include "gemm_codes.cuh"
#include "wgmma.cuh"

#define GCW_STAGES 6
#define GCW_XTILE GM_TILE  /* 128 tokens x 64 values, f16 */
#define GCW_WTILE (128 * 32) /* 64 codes of 4 bits a row */
#define GCW_STILE (128 * 4)  /* (scale, bias) in f16 a row */
#define GCW_STAGE 21504    /* the three, rounded up to 1024 bytes (the swizzle's period) */
#define GCW_SMEM (GCW_STAGES * GCW_STAGE + 1024)

__global__ void __launch_bounds__(GM_THREADS, 1) gemm_codes_wg(const mm_args a)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ unsigned char gcw_smem_raw[];
    unsigned char *smem;
    const uint32_t sbase = wg_smem_base(gcw_smem_raw, &smem);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2, g = lane >> 2, c = lane & 3;
    pdl_trigger();

    int64_t row0 = (int64_t)blockIdx.y * 128;
    const mm_seg *S = a.mode == MM_SWIGLU ? &a.seg[0] : gemm_seg(&a, (int)blockIdx.y, 128, &row0);
    const int tok0 = blockIdx.x * 128, KT = (int)(a.K / GM_BK);

    gc_loader L;
    gc_loader_init(&L, a, S, row0, 128, 8);
    const uint32_t sub = S->scheme == UQ_SCHEME_AFFINE ? 0x54006400u : 0x54806408u; /* (1024, 64) or (1032, 72) */
    const uint32_t sel = (uint32_t)c | 0x40u | ((uint32_t)c << 8) | 0x4000u;

    float acc[1][16][4];
    gemm_zero(acc);
    float *d = &acc[0][0][0];

#pragma unroll
    for (int st = 0; st < GCW_STAGES - 2; st++) {
        if (st >= KT) break;
        unsigned char *base = smem + st * GCW_STAGE;
        gc_load_codes(&L, base + GCW_XTILE, st);
        if (L.sp) *(uint32_t *)(base + GCW_XTILE + GCW_WTILE + tid * 4) = gc_load_scale(&L, st);
    }
    pdl_wait();
#pragma unroll
    for (int st = 0; st < GCW_STAGES - 2; st++) {
        if (st < KT) gemm_load_x<128>(&a, tok0, st, smem + st * GCW_STAGE);
        cp_async_commit();
    }

    /* the warp's 16 rows: g and g + 8 of them are the thread's */
    const int wr = wg * 64 + (warp & 3) * 16 + g;
    const uint32_t wo0 = (uint32_t)gc_off(wr, 0), wo1 = (uint32_t)gc_off(wr, 2);
    uint32_t af[2][4];

    for (int kt = 0; kt < KT; kt++) {
        const int buf = kt % GCW_STAGES, nk = kt + GCW_STAGES - 2, nb = nk % GCW_STAGES;
        /* stage kt has landed; the input tile made visible to the tensor
         * cores' reads, then everything to the whole block */
        asm volatile("cp.async.wait_group %0;\n" ::"n"(GCW_STAGES - 3));
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();
        /* buffer nb was last read in iteration kt - 2, whose MMAs are done
         * (each warpgroup keeps at most one in flight past an iteration) */
        uint32_t sb_next = 0;
        if (nk < KT) {
            unsigned char *base = smem + nb * GCW_STAGE;
            gemm_load_x<128>(&a, tok0, nk, base);
            gc_load_codes(&L, base + GCW_XTILE, nk);
            sb_next = gc_load_scale(&L, nk);
        }
        cp_async_commit();

        const uint32_t sx = sbase + buf * GCW_STAGE, sw = sx + GCW_XTILE, ss = sw + GCW_WTILE;
        const uint32_t sb0 = lds32(ss + wr * 4), sb1 = lds32(ss + (wr + 8) * 4);
        const uint32_t s20 = __byte_perm(sb0, 0u, 0x1010), b20 = __byte_perm(sb0, 0u, 0x3232);
        const uint32_t s21 = __byte_perm(sb1, 0u, 0x1010), b21 = __byte_perm(sb1, 0u, 0x3232);
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            uint32_t *f = af[ks & 1];
            const uint32_t a0 = sw + (ks < 2 ? wo0 : wo1) + (ks & 1) * 8;
            uint32_t lo0, lo1, hi0, hi1;
            lds64(a0, lo0, lo1);
            lds64(a0 + 8 * 32, hi0, hi1);
            f[0] = gc_pair(lo0, sel, sub, s20, b20);
            f[1] = gc_pair(hi0, sel, sub, s21, b21);
            f[2] = gc_pair(lo1, sel, sub, s20, b20);
            f[3] = gc_pair(hi1, sel, sub, s21, b21);
            wg_fence();
            wg_mma128_ra(d, f, wg_desc(sx + ks * 32));
            wg_commit();
            /* the MMA before this one is done: its fragment may be rewritten */
            wg_wait<1>();
        }
        if (nk < KT && L.sp) *(uint32_t *)(smem + nb * GCW_STAGE + GCW_XTILE + GCW_WTILE + tid * 4) = sb_next;
    }
    wg_wait<0>();
    cp_async_wait_all();
    wg_store<16>(a, S, row0 + wr, tok0 + c * 2, a.seg[0].rows, acc);
#endif
}

cudaError_t gemm_codes_wg_setup(void)
{
    return cudaFuncSetAttribute(gemm_codes_wg, cudaFuncAttributeMaxDynamicSharedMemorySize, GCW_SMEM);
}

cudaError_t launch_gemm_codes_wg(mm_args *a, int blocks, cudaStream_t st)
{
    dim3 grid((unsigned)((a->n + 127) / 128), (unsigned)blocks);
    void *args[] = {a};
    return launch_kernel((const void *)gemm_codes_wg, grid, dim3(GM_THREADS), GCW_SMEM, st, args);
}
