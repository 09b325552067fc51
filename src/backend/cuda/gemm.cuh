/* Pieces shared by the tensor-core GEMMs (gemm.cu: the in-loop and dense f16
 * paths; gemm_codes.cu: the product on 4-bit codes): tile geometry,
 * cp.async, the swizzled 16-bit tiles, the input tile and its fragments,
 * and the epilogue. */
#ifndef UQ_BACKEND_CUDA_GEMM_CUH
#define UQ_BACKEND_CUDA_GEMM_CUH

#include "common.cuh"

#define GM_BM 128
#define GM_BN 128
#define GM_BK 64
#define GM_THREADS 256
#define GM_TILE 16384 /* bytes of one 128 x 64 tile of 16-bit values */
#define GM_SMEM (6 * GM_TILE) /* the larger of the two layouts (float weights) */

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, int src_bytes)
{
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}

__device__ __forceinline__ void cp_async8(void *smem, const void *gmem)
{
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(s), "l"(gmem));
}

__device__ __forceinline__ void cp_async_commit(void) { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all(void) { asm volatile("cp.async.wait_group 0;\n" ::); }

__device__ __forceinline__ void mma_bf16(float *c, const uint32_t *a, const uint32_t *b)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* Byte offset of 16-byte chunk ch (0..7) of row r in a swizzled 128-byte-row tile. */
__device__ __forceinline__ int swz(int r, int ch) { return r * 128 + ((ch ^ (r & 7)) << 4); }

/* The segment of row block blk (blocks of bm rows, numbered from each
 * segment's blk0), and the block's first row in it. */
__device__ __forceinline__ const mm_seg *gemm_seg(const mm_args *a, int blk, int bm, int64_t *row0)
{
    int si = 0;
#pragma unroll
    for (int i = 1; i < 3; i++)
        if (i < a->nseg && blk >= a->seg[i].blk0) si = i;
    const mm_seg *S = &a->seg[si];
    *row0 = (int64_t)(blk - S->blk0) * bm;
    return S;
}

template <int MT, int NT> __device__ __forceinline__ void gemm_zero(float (&acc)[MT][NT][4])
{
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[mt][nt][e] = 0.0f;
}

/* Whether `blocks` blocks would leave some multiprocessor of the current
 * device without two (the count of multiprocessors read once). */
static inline cudaError_t gemm_few_blocks(int64_t blocks, int *few)
{
    static int nsm = 0;
    if (nsm == 0) {
        int dev = 0;
        cudaError_t e = cudaGetDevice(&dev);
        if (e == cudaSuccess) e = cudaDeviceGetAttribute(&nsm, cudaDevAttrMultiProcessorCount, dev);
        if (e != cudaSuccess) return e;
    }
    *few = blocks < 2 * (int64_t)nsm;
    return cudaSuccess;
}

/* Weight tile of stage kt: 128 rows from row0 x 64 f16 values of the dense
 * matrix S->w (rows past the end clamped to the last) into the swizzled tile
 * tA. */
__device__ __forceinline__ void gemm_load_w(const mm_args *a, const mm_seg *S, int64_t row0, int kt,
                                            unsigned char *tA)
{
    const int tid = threadIdx.x;
    const int64_t K = a->K, k0 = (int64_t)kt * GM_BK;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int idx = tid + i * GM_THREADS, r = idx >> 3, ch = idx & 7;
        const int64_t rr = row0 + r < S->rows ? row0 + r : S->rows - 1;
        cp_async16(tA + swz(r, ch), (const uint16_t *)S->w + rr * K + k0 + ch * 8, 16);
    }
}

/* Input tile of stage kt: BN tokens x 64 f16 values of xh (rows past n
 * zero-filled) into the swizzled tile tB. */
template <int BN>
__device__ __forceinline__ void gemm_load_x(const mm_args *a, int tok0, int kt, unsigned char *tB)
{
    const int tid = threadIdx.x;
    const int64_t K = a->K, k0 = (int64_t)kt * GM_BK;
#pragma unroll
    for (int i = 0; i < BN * 8 / GM_THREADS; i++) {
        const int idx = tid + i * GM_THREADS, t = idx >> 3, ch = idx & 7;
        const int tok = tok0 + t;
        const uint16_t *src = a->xh + (int64_t)(tok < a->n ? tok : 0) * K + k0 + ch * 8;
        cp_async16(tB + swz(t, ch), src, tok < a->n ? 16 : 0);
    }
}

/* B fragments of k-step ks for NT token tiles of 8 starting at token t0 of
 * the input tile tB. */
template <int NT>
__device__ __forceinline__ void gemm_frag_x(uint32_t (&bh)[NT][2], const unsigned char *tB, int t0, int ks, int lane)
{
#pragma unroll
    for (int np = 0; np < NT / 2; np++) {
        uint32_t r4[4];
        const int t = t0 + np * 16 + (lane & 7) + ((lane >> 4) << 3);
        ldmatrix_x4(r4, tB + swz(t, ks * 2 + ((lane >> 3) & 1)));
        bh[np * 2][0] = r4[0];
        bh[np * 2][1] = r4[1];
        bh[np * 2 + 1][0] = r4[2];
        bh[np * 2 + 1][1] = r4[3];
    }
}

/* silu(g) * u rounded to f16: the SwiGLU epilogues' output. */
__device__ __forceinline__ uint16_t swiglu_f16(float g, float u)
{
    return __half_as_ushort(__float2half_rn(g / (1.0f + expf(-g)) * u));
}

/* A warp's results: element e of tile (mt, nt) is row r0 + mt * 16 + 8 (e /
 * 2), token t0 + nt * 8 + e % 2 (r0, t0 with the lane's offsets). Bias and
 * store / add to y; in the SwiGLU mode (rows of gate and up interleaved by
 * 16: tiles mt and mt + 1 hold the same rows of h) silu(gate) * up rounded to
 * f16 into yh, whose rows number hrows. */
template <int MT, int NT>
__device__ __forceinline__ void gemm_store(const mm_args &a, const mm_seg *S, int64_t r0, int t0, int64_t hrows,
                                           float (&acc)[MT][NT][4])
{
    if (a.mode == MM_SWIGLU) {
#pragma unroll
        for (int mt = 0; mt < MT; mt += 2) {
            const int64_t gr = r0 + mt * 16; /* interleaved row of the gate value */
            const int64_t hr = (gr >> 5) * 16 + (gr & 15);
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int tok = t0 + nt * 8 + (e & 1);
                    const int64_t row = hr + (e >> 1) * 8;
                    if (tok >= a.n || row >= hrows) continue;
                    a.yh[(int64_t)tok * a.ldyh + row] = swiglu_f16(acc[mt][nt][e], acc[mt + 1][nt][e]);
                }
        }
        return;
    }
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int64_t r = r0 + mt * 16 + h * 8;
            if (r >= S->rows) continue;
            const float bias = S->bias ? S->bias[r] : 0.0f;
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int tok = t0 + nt * 8 + e;
                    if (tok >= a.n) continue;
                    const float v = acc[mt][nt][h * 2 + e] + bias;
                    float *yp = a.y + (int64_t)tok * a.ldy + S->out_off + r;
                    *yp = a.mode == MM_ADD ? *yp + v : v;
                }
        }
}

#endif
