/* Hopper's warpgroup MMAs (wgmma, sm_90a only: callers compile them under
 * __CUDA_ARCH_FEAT_SM90_ALL): shared-memory matrix descriptors, the
 * m64nNk16 f16 MMAs with fp32 accumulators, and the fence / commit / wait
 * that order them. Accumulator value 4 j + 2 h + e of a thread is row
 * 16 (warp % 4) + lane / 4 + 8 h of the warpgroup's 64, column 8 j +
 * 2 (lane % 4) + e: mma.sync's m16n8 tiles side by side. */
#ifndef UQ_BACKEND_CUDA_WGMMA_CUH
#define UQ_BACKEND_CUDA_WGMMA_CUH

#include "gemm.cuh"

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
/* Matrix descriptor of a K-major tile with 128-byte rows in the 128-byte
 * swizzle: 8-row groups 1024 bytes apart. */
__device__ __forceinline__ uint64_t wg_desc(uint32_t saddr)
{
    return (uint64_t)((saddr & 0x3FFFF) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) |
           ((uint64_t)1 << 62);
}

/* The operand lists of the fp32 accumulators: 64 values from p (the
 * "+f" outputs) and their names in the instruction ("%0" ... "%63", and
 * "%64" ... "%127" for the second half of an N = 256 MMA). */
#define WG_OUT16(p)                                                                                             \
    "+f"((p)[0]), "+f"((p)[1]), "+f"((p)[2]), "+f"((p)[3]), "+f"((p)[4]), "+f"((p)[5]), "+f"((p)[6]),           \
        "+f"((p)[7]), "+f"((p)[8]), "+f"((p)[9]), "+f"((p)[10]), "+f"((p)[11]), "+f"((p)[12]), "+f"((p)[13]),   \
        "+f"((p)[14]), "+f"((p)[15])
#define WG_OUT64(p) WG_OUT16(p), WG_OUT16((p) + 16), WG_OUT16((p) + 32), WG_OUT16((p) + 48)
#define WG_D0_63 \
    "%0, %1, %2, %3, %4, %5, %6, %7, " \
    "%8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, " \
    "%24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, " \
    "%40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, " \
    "%56, %57, %58, %59, %60, %61, %62, %63"
#define WG_D64_127 \
    "%64, %65, %66, %67, %68, %69, %70, %71, " \
    "%72, %73, %74, %75, %76, %77, %78, %79, " \
    "%80, %81, %82, %83, %84, %85, %86, %87, " \
    "%88, %89, %90, %91, %92, %93, %94, %95, " \
    "%96, %97, %98, %99, %100, %101, %102, %103, " \
    "%104, %105, %106, %107, %108, %109, %110, %111, " \
    "%112, %113, %114, %115, %116, %117, %118, %119, " \
    "%120, %121, %122, %123, %124, %125, %126, %127"

/* D (64 x 128, fp32) += A (64 x 16) . B (128 x 16)^T, both from shared
 * memory through their descriptors. */
__device__ __forceinline__ void wg_mma128(float *d, uint64_t da, uint64_t db)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {" WG_D0_63 "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : WG_OUT64(d)
                 : "l"(da), "l"(db), "r"(1));
}

/* The same for 256 columns of B and D. */
__device__ __forceinline__ void wg_mma256(float *d, uint64_t da, uint64_t db)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {" WG_D0_63 ", " WG_D64_127
                 "}, %128, %129, p, 1, 1, 0, 0;\n}\n"
                 : WG_OUT64(d), WG_OUT64(d + 64)
                 : "l"(da), "l"(db), "r"(1));
}

/* The same as wg_mma128 with A from registers: each warp of the warpgroup
 * holds its 16 rows as mma.sync's m16n8k16 A fragment. */
__device__ __forceinline__ void wg_mma128_ra(float *d, const uint32_t *af, uint64_t db)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {" WG_D0_63
                 "}, {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
                 : WG_OUT64(d)
                 : "r"(af[0]), "r"(af[1]), "r"(af[2]), "r"(af[3]), "l"(db), "r"(1));
}

__device__ __forceinline__ void wg_fence(void) { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit(void) { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wg_wait(void)
{
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

#endif

/* The warpgroup GEMMs' results: the thread's row r0 (of the block's
 * interleaved matrix in the SwiGLU mode), tokens from t0. Bias and store /
 * add as gemm_store; in the SwiGLU mode gate and up come interleaved by 8
 * rows, so the thread's row r0 holds the gate value of h row hr and row
 * r0 + 8 the up value: silu(gate) * up rounded to f16 into yh, whose rows
 * number hrows. */
template <int NJ>
__device__ __forceinline__ void wg_store(const mm_args &a, const mm_seg *S, int64_t r0, int t0, int64_t hrows,
                                         float (&acc)[1][NJ][4])
{
    if (a.mode != MM_SWIGLU) {
        gemm_store<1, NJ>(a, S, r0, t0, 0, acc);
        return;
    }
    const int64_t hr = (r0 >> 4) * 8 + (r0 & 7);
    if (hr >= hrows) return;
#pragma unroll
    for (int j = 0; j < NJ; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int tok = t0 + j * 8 + e;
            if (tok >= a.n) continue;
            a.yh[(int64_t)tok * a.ldyh + hr] = swiglu_f16(acc[0][j][e], acc[0][j][2 + e]);
        }
}

/* Shared-space address of the dynamic shared memory rounded up to 1024
 * bytes (the 128-byte swizzle's period), and the generic pointer to it. */
__device__ __forceinline__ uint32_t wg_smem_base(unsigned char *raw, unsigned char **smem)
{
    const uint32_t r = (uint32_t)__cvta_generic_to_shared(raw), b = (r + 1023) & ~1023u;
    *smem = raw + (b - r);
    return b;
}

#endif
