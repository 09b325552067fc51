/* Dense prefill GEMM on Hopper's warpgroup MMAs (wgmma, sm_90a): the same
 * product as gemm_dense in gemm.cu, y[n, rows] = x[n, K] . W^T with the
 * weights as f16 (expanded into the scratch) and the input in f16, fp32
 * accumulation, on the asynchronous tensor-core instructions that Hopper
 * runs at about twice the rate of mma.sync.
 *
 * A block of two warpgroups computes 128 weight rows x 128 tokens (or 256
 * tokens, option gemm_wg_cfg): each warpgroup 64 rows with one m64n128k16
 * MMA per 16 values of K, both operands read by the tensor cores straight
 * from shared memory (K-major tiles of 64 values in the 128-byte swizzle
 * that gemm.cuh's swz writes). The tiles come through a cp.async ring of 6
 * stages (192 KB, one block per multiprocessor); the MMAs of one stage run
 * while the next stage's are issued, so a stage is refilled only after the
 * MMAs two stages back are done.
 *
 * Accumulators as in wgmma.cuh; in the SwiGLU mode the expansion interleaves
 * gate and up by 8 rows (gemm_wg_ilv), so that a thread holds a gate value
 * and the up value of the same row (wg_store).
 *
 * Built for sm_90a only; elsewhere the kernel is empty and gemm_wg_ok()
 * (a probe run once) says so. */
#include "wgmma.cuh"

/* Tile of 128 rows x BN tokens (128 or 256), STAGES-deep ring. */
template <int BN, int STAGES> struct wg_cfg {
    static const int STAGE = GM_TILE + BN * GM_BK * 2;
    static const int SMEM = STAGES * STAGE + 1024; /* + alignment to 1024 bytes */
};

template <int BN, int STAGES>
__global__ void __launch_bounds__(GM_THREADS, 1) gemm_wg(const mm_args a)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    typedef wg_cfg<BN, STAGES> C;
    extern __shared__ unsigned char wg_smem_raw[];
    unsigned char *smem;
    const uint32_t sbase = wg_smem_base(wg_smem_raw, &smem);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
    pdl_trigger();
    pdl_wait();

    int64_t row0;
    const mm_seg *S = gemm_seg(&a, (int)blockIdx.y, GM_BM, &row0);
    const int tok0 = blockIdx.x * BN;
    const int KT = (int)(a.K / GM_BK);

    float acc[1][BN / 8][4];
    gemm_zero(acc);
    float *d = &acc[0][0][0];

#pragma unroll
    for (int st = 0; st < STAGES - 2; st++) {
        if (st < KT) {
            gemm_load_w(&a, S, row0, st, smem + st * C::STAGE);
            gemm_load_x<BN>(&a, tok0, st, smem + st * C::STAGE + GM_TILE);
        }
        cp_async_commit();
    }
    for (int kt = 0; kt < KT; kt++) {
        const int buf = kt % STAGES;
        /* stage kt has landed (later groups may be in flight); made visible
         * to the tensor cores' reads, then to the whole block */
        asm volatile("cp.async.wait_group %0;\n" ::"n"(STAGES - 3));
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();
        /* the buffer refilled here was last read by the MMAs of stage kt - 2,
         * done (every warpgroup waited for them before the barrier) */
        if (kt + STAGES - 2 < KT) {
            unsigned char *st = smem + ((kt + STAGES - 2) % STAGES) * C::STAGE;
            gemm_load_w(&a, S, row0, kt + STAGES - 2, st);
            gemm_load_x<BN>(&a, tok0, kt + STAGES - 2, st + GM_TILE);
        }
        cp_async_commit();
        const uint32_t tA = sbase + buf * C::STAGE + wg * (64 * 128), tB = sbase + buf * C::STAGE + GM_TILE;
        wg_fence();
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            if (BN == 128)
                wg_mma128(d, wg_desc(tA + ks * 32), wg_desc(tB + ks * 32));
            else
                wg_mma256(d, wg_desc(tA + ks * 32), wg_desc(tB + ks * 32));
        }
        wg_commit();
        wg_wait<1>();
    }
    wg_wait<0>();
    cp_async_wait_all();

    wg_store<BN / 8>(a, S, row0 + wg * 64 + (warp & 3) * 16 + (lane >> 2), tok0 + (lane & 3) * 2, a.seg[0].rows / 2,
                     acc);
#endif
}

__global__ void gemm_wg_probe(int *out)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    *out = 1;
#else
    *out = 0;
#endif
}

/* Use the warpgroup kernel for dense products when the GPU runs it (option
 * gemm_wgmma; 1 by default), and its tile (option gemm_wg_cfg: 0 128 x 128
 * tokens with 4 stages, 1 the same with 6 (the default), 2 128 x 256 with 4). */
int uq_cuda_gemm_wgmma = 1;
int uq_cuda_gemm_wg_cfg = 1;

typedef void (*wg_fn)(const mm_args);
static const wg_fn wg_table[3] = {gemm_wg<128, 4>, gemm_wg<128, 6>, gemm_wg<256, 4>};
static const int wg_bn[3] = {128, 128, 256};
static const int wg_smem[3] = {wg_cfg<128, 4>::SMEM, wg_cfg<128, 6>::SMEM, wg_cfg<256, 4>::SMEM};

int gemm_wg_ok(void)
{
    static int ok = -1;
    if (ok < 0) {
        int *dv = NULL, hv = 0;
        ok = 0;
        if (cudaMalloc((void **)&dv, sizeof *dv) == cudaSuccess) {
            gemm_wg_probe<<<1, 1>>>(dv);
            if (cudaMemcpy(&hv, dv, sizeof hv, cudaMemcpyDeviceToHost) == cudaSuccess) ok = hv == 1;
            cudaFree(dv);
        }
        (void)cudaGetLastError();
        for (int i = 0; i < 3 && ok; i++)
            if (cudaFuncSetAttribute(wg_table[i], cudaFuncAttributeMaxDynamicSharedMemorySize, wg_smem[i]) != cudaSuccess)
                ok = 0;
        if (ok && gemm_codes_wg_setup() != cudaSuccess) ok = 0;
    }
    return ok && uq_cuda_gemm_wgmma;
}

int gemm_wg_ilv(void) { return gemm_wg_ok() ? 8 : 16; }

cudaError_t launch_gemm_wg(const mm_args *b, int blocks, cudaStream_t st)
{
    const int c = uq_cuda_gemm_wg_cfg, bn = wg_bn[c];
    dim3 grid((unsigned)((b->n + bn - 1) / bn), (unsigned)blocks);
    void *args[] = {(void *)b};
    return launch_kernel((const void *)wg_table[c], grid, dim3(GM_THREADS), wg_smem[c], st, args);
}
