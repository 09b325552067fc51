/* The decode attention of one token run by the blocks of the O product's
 * GEMV (gemv_mma.cu) before their product: a unit is (head, split of the
 * positions) and takes a whole block of 8 warps. Each warp reads 4
 * positions a pass, their keys and values at once (one round trip), and
 * keeps its own online softmax; the warps are combined at the end, and the
 * splits of a head by the last unit to finish, as attn_decode_kernel does.
 * Heads of at most 128 values (a lane 4 of them), a multiple of 4. */
#ifndef UQ_BACKEND_CUDA_GEMV_ATTN_CUH
#define UQ_BACKEND_CUDA_GEMV_ATTN_CUH

#include "common.cuh"

#define GA_W 8        /* warps of a unit */
#define GA_P 4        /* positions a warp reads at once */
#define GA_D 128      /* largest head */

typedef struct ga_smem {
    float qs[GA_D], ks[GA_D], vs[GA_D];
    float ow[GA_W][GA_D];
    float wm[GA_W], wl[GA_W];
    int last;
} ga_smem;

/* Positions a split: at least 32 (a split's latency hardly depends on its
 * length up to that), few enough splits for the scratch, and enough for
 * one unit a block of the grid. */
__device__ __forceinline__ int64_t ga_split_len(int64_t npos, int nh, int grid)
{
    int64_t L = (npos + ATT_SPLITS - 1) / ATT_SPLITS;
    const int64_t per_block = (npos * nh + grid - 1) / grid;
    if (L < per_block) L = per_block;
    return L < 32 ? 32 : L;
}

/* The keys and values of the thread's first pass of unit (h, sp) at
 * positions before the token's (earlier steps wrote them: they may be read
 * before the kernel's wait), zeros elsewhere. */
__device__ __forceinline__ void ga_fetch(const attn_args &a, int h, int sp, int64_t L, int64_t npos, int64_t seq,
                                         float4 *kr, float4 *vr)
{
    const int lane = (int)threadIdx.x & 31, warp = (int)threadIdx.x >> 5;
    const int hd = a.head_dim, nv = hd / 4, kvh = h / (a.n_heads / a.n_kv);
    const int64_t pos = npos - 1, p_end = sp * L + L < npos ? sp * L + L : npos;
    const float *kc = a.kc + seq * a.seq_stride + kvh * hd, *vc = a.vc + seq * a.seq_stride + kvh * hd;
#pragma unroll
    for (int u = 0; u < GA_P; u++) {
        const int64_t pp = sp * L + warp * GA_P + u;
        const int ok = pp < p_end && pp != pos && lane < nv;
        kr[u] = ok ? *(const float4 *)(kc + pp * a.kv_dim + 4 * lane) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        vr[u] = ok ? *(const float4 *)(vc + pp * a.kv_dim + 4 * lane) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
}

/* Unit (head h, split sp of L positions) of the token at position
 * npos - 1 of sequence seq (all 256 threads); returns 1 where it wrote the
 * head's output (alone or combining the splits). q, k and v come from this
 * step's q/k/v product, read through L2; the last split rotates the token's
 * own key and stores it and its value in the cache (the first query head of
 * each key head). With pre, the first pass's keys and values are fk, fv
 * (ga_fetch). */
__device__ __forceinline__ int ga_unit(const attn_args &a, int h, int sp, int64_t L, int64_t npos, int64_t seq,
                                       ga_smem *sm, int pre, const float4 *fk, const float4 *fv)
{
    const int tid = (int)threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int hd = a.head_dim, half = hd / 2, nv = hd / 4, group = a.n_heads / a.n_kv, kvh = h / group;
    const int64_t pos = npos - 1;
    const int nsplit = (int)((npos + L - 1) / L);
    const int64_t p_begin = sp * L, p_end = p_begin + L < npos ? p_begin + L : npos;
    const float *cs = a.rope_cos + pos * half, *sn = a.rope_sin + pos * half;
    const int last_split = sp == nsplit - 1;
    /* the query rotated by threads 0.. (as rope_store_kernel rounds it) */
    if (tid < half) {
        const float *q = a.qkv + h * hd;
        rope_rotate(__ldcg(q + tid), __ldcg(q + tid + half), cs[tid], sn[tid], &sm->qs[tid], &sm->qs[tid + half]);
    } else if (last_split) {
        /* the key pairs by threads 64.., the values by 128.. */
        const int ki = tid >= 64 && tid < 128 ? tid - 64 : half, vj = tid >= 128 ? tid - 128 : hd;
        att_own_kv(a, 0, kvh, pos, seq, h % group == 0, ki, vj, GA_W * 32, sm->ks, sm->vs);
    }
    __syncthreads();

    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    const float4 qv = lane < nv ? *(const float4 *)(sm->qs + 4 * lane) : zero;
    const float *kc = a.kc + seq * a.seq_stride + kvh * hd, *vc = a.vc + seq * a.seq_stride + kvh * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float m = -INFINITY, l = 0.0f;
    float4 ov = zero;
    for (int64_t p0 = p_begin + warp * GA_P; p0 < p_end; p0 += GA_W * GA_P) {
        float4 kr[GA_P], vr[GA_P];
#pragma unroll
        for (int u = 0; u < GA_P; u++) {
            const int64_t pp = p0 + u;
            const int ok = pp < p_end && lane < nv;
            if (pre && pp != pos) {
                kr[u] = fk[u];
                vr[u] = fv[u];
            } else {
                const float *kp = pp == pos ? sm->ks : kc + pp * a.kv_dim;
                const float *vp = pp == pos ? sm->vs : vc + pp * a.kv_dim;
                kr[u] = ok ? *(const float4 *)(kp + 4 * lane) : zero;
                vr[u] = ok ? *(const float4 *)(vp + 4 * lane) : zero;
            }
        }
        pre = 0;
        float s[GA_P], mx = -INFINITY;
#pragma unroll
        for (int u = 0; u < GA_P; u++) {
            float d = qv.x * kr[u].x;
            d = fmaf(qv.y, kr[u].y, d);
            d = fmaf(qv.z, kr[u].z, d);
            d = fmaf(qv.w, kr[u].w, d);
            s[u] = warp_sum(d) * scale;
            if (p0 + u < p_end) mx = fmaxf(mx, s[u]);
        }
        const float mn = fmaxf(m, mx), corr = expf(m - mn);
        l *= corr;
        ov.x *= corr, ov.y *= corr, ov.z *= corr, ov.w *= corr;
#pragma unroll
        for (int u = 0; u < GA_P; u++) {
            const float p = p0 + u < p_end ? expf(s[u] - mn) : 0.0f;
            l += p;
            ov.x = fmaf(p, vr[u].x, ov.x);
            ov.y = fmaf(p, vr[u].y, ov.y);
            ov.z = fmaf(p, vr[u].z, ov.z);
            ov.w = fmaf(p, vr[u].w, ov.w);
        }
        m = mn;
    }
    /* the warps' softmax states combined (a warp without positions: m -inf, l 0) */
    if (lane == 0) {
        sm->wm[warp] = m;
        sm->wl[warp] = l;
    }
    if (lane < nv) *(float4 *)(&sm->ow[warp][4 * lane]) = ov;
    __syncthreads();
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < GA_W; w++) M = fmaxf(M, sm->wm[w]);
    float ls = 0.0f, o = 0.0f;
#pragma unroll
    for (int w = 0; w < GA_W; w++) {
        const float f = sm->wm[w] == -INFINITY ? 0.0f : expf(sm->wm[w] - M);
        ls = fmaf(sm->wl[w], f, ls);
        if (tid < hd) o = fmaf(sm->ow[w][tid], f, o);
    }
    float *out = a.out + h * hd;
    if (nsplit == 1) {
        if (tid < hd) out[tid] = o / ls;
        return 1;
    }
    /* partial results, then the last unit of the head combines */
    return att_split_done<1>(a.scratch, &a.counters[h], h, sp, nsplit, M, ls, &o, tid, GA_W * 32, hd, out, &sm->last);
}

#endif
