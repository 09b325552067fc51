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

/* A thread's part in filling a stage of a BM-row code tile: the 16-byte
 * half tid % 2 of code row tid / 2 (tid < 2 BM), and the (scale, bias) pair
 * of row tid (tid < BM; sp NULL otherwise). Rows as gc_row with ilv. */
typedef struct gc_loader {
    const unsigned char *wsrc; /* NULL: no code copy */
    int wdst;
    const void *sp, *bp;
    int64_t sidx;
    int sgroup, sdt;
} gc_loader;

__device__ __forceinline__ void gc_loader_init(gc_loader *L, const mm_args &a, const mm_seg *S, int64_t row0,
                                               int BM, int ilv)
{
    const int tid = threadIdx.x;
    L->wsrc = NULL;
    L->wdst = 0;
    if (tid < 2 * BM) {
        int64_t r;
        const int R = tid >> 1;
        const mm_seg *T = gc_row(a, S, row0, R, ilv, &r);
        L->wsrc = (const unsigned char *)T->w + r * T->wpr * 4 + (tid & 1) * 16;
        L->wdst = gc_off(R, (tid & 1) * 2);
    }
    L->sp = L->bp = NULL;
    L->sidx = 0;
    L->sgroup = GM_BK;
    L->sdt = UQ_F32;
    if (tid < BM) {
        int64_t r;
        const mm_seg *T = gc_row(a, S, row0, tid, ilv, &r);
        L->sp = T->s;
        L->bp = T->scheme == UQ_SCHEME_AFFINE ? T->b : NULL;
        L->sgroup = T->group;
        L->sdt = T->sdt;
        L->sidx = r * (a.K / T->group);
    }
}

/* The thread's code copy of stage kt into the code tile wt. */
__device__ __forceinline__ void gc_load_codes(const gc_loader *L, unsigned char *wt, int kt)
{
    if (L->wsrc) cp_async16(wt + L->wdst, L->wsrc + (int64_t)kt * 32, 16);
}

/* The (scale, bias) pair of the thread's row for stage kt (0 without one). */
__device__ __forceinline__ uint32_t gc_load_scale(const gc_loader *L, int kt)
{
    return L->sp ? gc_scale(L->sp, L->bp, L->sidx + (int64_t)kt * GM_BK / L->sgroup, L->sdt) : 0u;
}

#endif
