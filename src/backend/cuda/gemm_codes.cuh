/* Pieces of the GEMMs on 4-bit codes (gemm_codes.cu on mma.sync,
 * gemm_codes_wg.cu on the warpgroup MMAs): rows of the tile, scales as f16
 * pairs, codes to f16 weights in registers, the code tile's layout. */
#ifndef UQ_BACKEND_CUDA_GEMM_CODES_CUH
#define UQ_BACKEND_CUDA_GEMM_CODES_CUH

#include "gemm.cuh"

/* The segment and row of row R of the block's tile (rows past a segment's
 * end clamped to its last): in the SwiGLU mode the tile's rows interleave
 * gate and up by ilv (a power of two), as the dense path's scratch does
 * (dq_out_row). */
__device__ __forceinline__ const mm_seg *gc_row(const mm_args &a, const mm_seg *S, int64_t row0, int R, int ilv,
                                                int64_t *r)
{
    if (a.mode == MM_SWIGLU) {
        const int64_t ir = row0 + R;
        const mm_seg *T = &a.seg[(ir / ilv) & 1];
        const int64_t rr = (ir / (2 * ilv)) * ilv + (ir & (ilv - 1));
        *r = rr < T->rows ? rr : T->rows - 1;
        return T;
    }
    *r = row0 + R < S->rows ? row0 + R : S->rows - 1;
    return S;
}

/* (scale, bias) of group gi as two f16 halves of a word. */
__device__ __forceinline__ uint32_t gc_scale(const void *sp, const void *bp, int64_t gi, int sdt)
{
    const float s = load_scale(sp, gi, sdt), b = bp ? load_scale(bp, gi, sdt) : 0.0f;
    const __half2 h = __floats2half2_rn(s, b);
    return *(const uint32_t *)&h;
}

/* Byte c of w (codes 2c, 2c+1) as two f16 weights: see the top of the file.
 * sel puts byte c in bytes 0 and 2; sub is (1024, 64), plus 2^(bits-1) for
 * the symmetric scheme. */
__device__ __forceinline__ uint32_t gc_pair(uint32_t w, uint32_t sel, uint32_t sub, uint32_t s2, uint32_t b2)
{
    const uint32_t t = (__byte_perm(w, 0u, sel) & 0x00F0000Fu) | 0x54006400u;
    const __half2 q = __hsub2(*(const __half2 *)&t, *(const __half2 *)&sub);
    const __half2 v = __hfma2(q, *(const __half2 *)&s2, *(const __half2 *)&b2);
    return *(const uint32_t *)&v;
}

/* A row of a code tile is 32 bytes (64 codes); its two 16-byte halves are
 * swapped on rows with bit 2 set, so that the 8 rows a warp reads at once
 * fall on distinct banks. Byte offset of the 8 bytes of k-step ks (codes
 * 16 ks .. 16 ks + 15) of row R: */
__device__ __forceinline__ int gc_off(int R, int ks) { return R * 32 + (((ks >> 1) ^ ((R >> 2) & 1)) << 4) + (ks & 1) * 8; }

__device__ __forceinline__ void lds64(uint32_t addr, uint32_t &x, uint32_t &y)
{
    asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n" : "=r"(x), "=r"(y) : "r"(addr));
}

__device__ __forceinline__ uint32_t lds32(uint32_t addr)
{
    uint32_t x;
    asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(x) : "r"(addr));
    return x;
}

#endif
