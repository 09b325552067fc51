/* Rotary embeddings, the KV cache and causal attention (GQA), fp32 caches.
 *
 * rope_store rotates q in place and writes rotated k and v into the cache at
 * the step's positions; the attention kernels then read the cache only.
 * Decode (and any head size): the positions of a (head, token) split over
 * up to 32 blocks, online softmax in fp32 in each, the last block to finish
 * combining the partial results. Prefill with head sizes 64 and 128: a
 * flash-attention kernel on the tensor cores, 64 queries x 32 keys per tile
 * through shared memory, operands split into two f16 halves. The first
 * position and the sequence come from device memory (dyn), so a captured
 * graph serves every decode step. */
#include "common.cuh"

/* The rotate-half pairs (i, i + d/2) with the context's cos / sin tables,
 * rounded as src/runtime/ops.c rounds them. ROPE_SPLIT blocks per token
 * (enough loads in flight): the query heads rotated in place, the key heads
 * rotated into the cache, the values stored, a pair (or a value) per thread
 * and step. */
#define ROPE_T 256
#define ROPE_SPLIT 4 /* blocks per token */
__global__ void __launch_bounds__(ROPE_T) rope_store_kernel(attn_args a)
{
    pdl_trigger();
    pdl_wait();
    const int t = blockIdx.x;
    const int64_t pos = a.dyn[0] + t, seq = a.dyn[1];
    const int hd = a.head_dim, half = hd / 2;
    const float *cs = a.rope_cos + pos * half, *sn = a.rope_sin + pos * half;
    float *q = a.qkv + (int64_t)t * a.ldq, *k = q + a.q_dim, *v = k + a.kv_dim;
    float *kc = a.kc + seq * a.seq_stride + pos * a.kv_dim;
    float *vc = a.vc + seq * a.seq_stride + pos * a.kv_dim;
    const int nq = a.n_heads * half, nk = a.n_kv * half;
    const int j0 = blockIdx.y * ROPE_T + threadIdx.x, step = ROPE_T * ROPE_SPLIT;
    for (int j = j0; j < nq + nk; j += step) {
        const int kh = j >= nq, jj = kh ? j - nq : j, h = jj / half, i = jj - h * half;
        const float *x = (kh ? k : q) + h * hd;
        float *o = kh ? kc + h * hd : q + h * hd;
        rope_rotate(x[i], x[i + half], cs[i], sn[i], &o[i], &o[i + half]);
    }
    for (int64_t i = j0; i < a.kv_dim; i += step) vc[i] = v[i];
}

cudaError_t launch_rope_store(const attn_args *a, cudaStream_t st)
{
    void *args[] = {(void *)a};
    return launch_kernel((const void *)rope_store_kernel, dim3(a->n, ROPE_SPLIT), dim3(ROPE_T), 0, st, args);
}

/* ---------------------------------------------------------------- decode */

#define DEC_T 64          /* threads per block: two warps */

/* Rows i0 .. i0 + 7 of a pass of cnt positions from p0 of the key or value
 * cache c (rows kv_dim apart), 4 dimensions a lane (nv float4s a row), zeros
 * past cnt; with fused the row at pos is cur, not yet in the cache. */
__device__ __forceinline__ void dec_load8(float4 out[8][2], const float *c, const float *cur, int fused, int64_t pos,
                                          int64_t p0, int i0, int cnt, int64_t kv_dim, int lane, int nv)
{
#pragma unroll
    for (int u = 0; u < 8; u++)
#pragma unroll
        for (int k = 0; k < 2; k++) {
            const int idx = lane + 32 * k;
            const int64_t pp = p0 + i0 + u;
            const float *r = fused && pp == pos ? cur : c + pp * kv_dim;
            out[u][k] = i0 + u < cnt && idx < nv ? *(const float4 *)(r + 4 * idx) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
}

/* The online-softmax step of a pass: the block's (two warps') maximum of
 * the scores sc (valid: the thread has a position), exp(sc - max) into
 * ps[tid], the running max *m and sum *l updated; returns the factor for the
 * output so far (0 on the first pass). */
__device__ __forceinline__ float dec_softmax(float sc, int valid, float *ps, float *red, int tid, float *m, float *l)
{
    float mx = warp_max(sc);
    if ((tid & 31) == 0) red[tid >> 5] = mx;
    __syncthreads();
    mx = fmaxf(red[0], red[1]);
    const float mn = fmaxf(*m, mx);
    const float corr = expf(*m - mn);
    const float e = valid ? expf(sc - mn) : 0.0f;
    ps[tid] = e;
    float se = warp_sum(e);
    __syncthreads();
    if ((tid & 31) == 0) red[tid >> 5] = se;
    __syncthreads();
    *l = *l * corr + (red[0] + red[1]);
    *m = mn;
    return corr;
}

/* Block (head h, split sp, token t) attends from the token at position
 * dyn[0] + t to positions [sp * L, (sp + 1) * L) of [0, dyn[0] + t]: scores
 * by threads (a position each, the key read whole), an online softmax over
 * passes of 64 positions,
 * and writes its partial (max, sum, unnormalized output) to scratch. The last
 * block of a (head, token) to finish combines the partials. */
__global__ void __launch_bounds__(DEC_T) attn_decode_kernel(attn_args a)
{
    __shared__ __align__(16) float qs[ATT_MAXD];
    __shared__ float ps[DEC_T];
    __shared__ float red[2];
    __shared__ int last;
    pdl_trigger();
    pdl_wait();
    const int h = blockIdx.x, sp = blockIdx.y, t = blockIdx.z, tid = threadIdx.x;
    const int hd = a.head_dim, kvh = h / (a.n_heads / a.n_kv);
    const int64_t npos = a.dyn[0] + t + 1, seq = a.dyn[1];
    const int64_t L = a.split_len;
    const int nsplit = (int)((npos + L - 1) / L);
    if (sp >= nsplit) return;
    const int64_t p_begin = sp * L, p_end = p_begin + L < npos ? p_begin + L : npos;
    const float scale = 1.0f / sqrtf((float)hd);
    const int vec4 = (hd & 3) == 0 && (a.kv_dim & 3) == 0;
    const float *q = a.qkv + (int64_t)t * a.ldq + h * hd;
    /* fused (one token, head size a multiple of 4): the query rotated here
     * (as rope_store_kernel), and the blocks holding the token's own position
     * rotate its key into shared memory and read it and its values from
     * there; those of the first query head of each key head also store them
     * in the cache, which no block of this launch reads at that position */
    const int fused = a.fused;
    const int64_t pos = npos - 1;
    __shared__ __align__(16) float ks[ATT_MAXD], vs[ATT_MAXD];
    if (fused) {
        const int half = hd / 2;
        const float *cs = a.rope_cos + pos * half, *sn = a.rope_sin + pos * half;
        for (int i = tid; i < half; i += DEC_T) {
            rope_rotate(q[i], q[i + half], cs[i], sn[i], &qs[i], &qs[i + half]);
        }
        if (sp == nsplit - 1)
            att_own_kv(a, t, kvh, pos, seq, h % (a.n_heads / a.n_kv) == 0, tid, tid, DEC_T, ks, vs);
    } else {
        for (int i = tid; i < hd; i += DEC_T) qs[i] = q[i];
    }
    const float *kc = a.kc + seq * a.seq_stride + kvh * hd, *vc = a.vc + seq * a.seq_stride + kvh * hd;
    float m = -INFINITY, l = 0.0f, o[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    __syncthreads();
    if (vec4) {
        /* passes of 64 positions: each warp takes half of them, a lane 4
         * dimensions of each (16-byte loads, 8 positions in flight), the
         * scores by warp reductions; then the values the same way, each warp
         * accumulating its positions, the two warps added at the end */
        __shared__ __align__(16) float ow[2][ATT_MAXD];
        const int lane = tid & 31, warp = tid >> 5, nv = hd >> 2;
        float4 qv[2], ov[2];
#pragma unroll
        for (int k = 0; k < 2; k++) {
            const int idx = lane + 32 * k;
            qv[k] = idx < nv ? *(const float4 *)(qs + 4 * idx) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            ov[k] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        for (int64_t p0 = p_begin; p0 < p_end; p0 += DEC_T) {
            const int cnt = (int)(p_end - p0 < DEC_T ? p_end - p0 : DEC_T);
            /* each warp half the pass's positions, in whole loads of 8
             * rows (a short pass, such as a split of 32, would otherwise
             * leave the second warp idle and the first with twice the
             * dependent loads) */
            const int share = (cnt + 15) / 16 * 8;
#pragma unroll 1
            for (int i0 = warp * share; i0 < warp * share + share && i0 < cnt; i0 += 8) {
                float4 kv[8][2];
                dec_load8(kv, kc, ks, fused, pos, p0, i0, cnt, a.kv_dim, lane, nv);
#pragma unroll
                for (int u = 0; u < 8; u++) {
                    float sd = 0.0f;
#pragma unroll
                    for (int k = 0; k < 2; k++) {
                        sd = fmaf(qv[k].x, kv[u][k].x, sd);
                        sd = fmaf(qv[k].y, kv[u][k].y, sd);
                        sd = fmaf(qv[k].z, kv[u][k].z, sd);
                        sd = fmaf(qv[k].w, kv[u][k].w, sd);
                    }
                    sd = warp_sum(sd);
                    if (lane == 0 && i0 + u < cnt) ps[i0 + u] = sd * scale;
                }
            }
            __syncthreads();
            const float sc = tid < cnt ? ps[tid] : -INFINITY;
            const float corr = dec_softmax(sc, tid < cnt, ps, red, tid, &m, &l);
#pragma unroll
            for (int k = 0; k < 2; k++) {
                ov[k].x *= corr;
                ov[k].y *= corr;
                ov[k].z *= corr;
                ov[k].w *= corr;
            }
#pragma unroll 1
            for (int i0 = warp * share; i0 < warp * share + share && i0 < cnt; i0 += 8) {
                float4 vv[8][2];
                dec_load8(vv, vc, vs, fused, pos, p0, i0, cnt, a.kv_dim, lane, nv);
#pragma unroll
                for (int u = 0; u < 8; u++) {
                    const float w = i0 + u < cnt ? ps[i0 + u] : 0.0f;
#pragma unroll
                    for (int k = 0; k < 2; k++) {
                        ov[k].x = fmaf(w, vv[u][k].x, ov[k].x);
                        ov[k].y = fmaf(w, vv[u][k].y, ov[k].y);
                        ov[k].z = fmaf(w, vv[u][k].z, ov[k].z);
                        ov[k].w = fmaf(w, vv[u][k].w, ov[k].w);
                    }
                }
            }
            __syncthreads();
        }
#pragma unroll
        for (int k = 0; k < 2; k++) {
            const int idx = lane + 32 * k;
            if (idx < nv) *(float4 *)(&ow[warp][4 * idx]) = ov[k];
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < 4; k++)
            if (tid + k * DEC_T < hd) o[k] = ow[0][tid + k * DEC_T] + ow[1][tid + k * DEC_T];
    }
    for (int64_t p0 = p_begin; p0 < p_end && !vec4; p0 += DEC_T) {
        const int64_t p = p0 + tid;
        float sc = -INFINITY;
        /* scores: a position per thread, its key read whole (independent
         * loads, the query broadcast from shared memory) */
        if (p < p_end) {
            const float *kr = kc + p * a.kv_dim;
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
            if (vec4) {
#pragma unroll 8
                for (int d = 0; d < hd; d += 4) {
                    const float4 kv = *(const float4 *)(kr + d), qv = *(const float4 *)(qs + d);
                    s0 = fmaf(qv.x, kv.x, s0);
                    s1 = fmaf(qv.y, kv.y, s1);
                    s2 = fmaf(qv.z, kv.z, s2);
                    s3 = fmaf(qv.w, kv.w, s3);
                }
            } else {
                for (int d = 0; d < hd; d++) s0 = fmaf(qs[d], kr[d], s0);
            }
            sc = ((s0 + s1) + (s2 + s3)) * scale;
        }
        const float corr = dec_softmax(sc, p < p_end, ps, red, tid, &m, &l);
        const int cnt = (int)(p_end - p0 < DEC_T ? p_end - p0 : DEC_T);
#pragma unroll
        for (int k = 0; k < 4; k++) o[k] *= corr;
#pragma unroll 8
        for (int i = 0; i < cnt; i++) {
            const float *vr = vc + (p0 + i) * a.kv_dim;
            const float w = ps[i];
#pragma unroll
            for (int k = 0; k < 4; k++)
                if (tid + k * DEC_T < hd) o[k] = fmaf(w, vr[tid + k * DEC_T], o[k]);
        }
        __syncthreads();
    }
    float *out = a.out + (int64_t)t * a.q_dim + h * hd;
    if (nsplit == 1) {
#pragma unroll
        for (int k = 0; k < 4; k++)
            if (tid + k * DEC_T < hd) out[tid + k * DEC_T] = o[k] / l;
        return;
    }
    /* partial results, then the last block of this (head, token) combines */
    const int slot = (t * a.n_heads + h);
    att_split_done<4>(a.scratch, &a.counters[slot], slot, sp, nsplit, m, l, o, tid, DEC_T, hd, out, &last);
}

/* --------------------------------------------------------------- prefill */

/* Flash attention on the tensor cores (head sizes 64 and 128): a block of 4
 * warps takes 64 queries of a head (16 a warp) and walks the keys up to its
 * last query in tiles of 32 through shared memory, the newest query tiles
 * first (they have the most keys). Scores and the probability-weighted
 * values are m16n8k16 f16 MMAs on operands split in two f16 halves, x = hi +
 * lo, with the three products hi hi + hi lo + lo hi (about 21 significant
 * bits, fp32 accumulation): close to the fp32 kernel's results. Online
 * softmax in fp32 per query row (expf), the scores scaled by 1/sqrt(d) as
 * in ops.c; the probabilities become the A operand of the value product in
 * registers. */
#define FT_BQ 64
#define FT_BK 32
#define FT_T 128

/* 4 fp32 values as 4 hi and 4 lo f16 values at hi[0..3], lo[0..3] */
__device__ __forceinline__ void ft_split4(float4 v, uint16_t *hi, uint16_t *lo)
{
    uint32_t h0, l0, h1, l1;
    split_f16x2(v.x, v.y, &h0, &l0);
    split_f16x2(v.z, v.w, &h1, &l1);
    *(uint2 *)hi = make_uint2(h0, h1);
    *(uint2 *)lo = make_uint2(l0, l1);
}

__device__ __forceinline__ void mma3(float *c, const uint32_t *ah, const uint32_t *al, const uint32_t *bh,
                                     const uint32_t *bl)
{
    mma_f16(c, ah, bh);
    mma_f16(c, ah, bl);
    mma_f16(c, al, bh);
}

template <int D> static constexpr size_t ft_smem() { return (size_t)2 * (FT_BQ + 2 * FT_BK) * (D + 8) * 2; }

template <int D>
__global__ void __launch_bounds__(FT_T) attn_flash_tc(attn_args a)
{
    constexpr int LD = D + 8; /* 16-bit values per shared row: ldmatrix rows on distinct banks */
    extern __shared__ __align__(16) uint16_t ftsm[];
    uint16_t *Qh = ftsm, *Ql = Qh + FT_BQ * LD, *Kh = Ql + FT_BQ * LD, *Kl = Kh + FT_BK * LD;
    uint16_t *Vh = Kl + FT_BK * LD, *Vl = Vh + FT_BK * LD;
    pdl_trigger();
    pdl_wait();
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int h = blockIdx.y, q0 = (int)(gridDim.x - 1 - blockIdx.x) * FT_BQ;
    const int kvh = h / (a.n_heads / a.n_kv);
    const int64_t pos0 = a.dyn[0], seq = a.dyn[1];
    const float scale = 1.0f / sqrtf((float)D);
    const int nq = a.n - q0 < FT_BQ ? a.n - q0 : FT_BQ;
    const float *kc = a.kc + seq * a.seq_stride + kvh * D, *vc = a.vc + seq * a.seq_stride + kvh * D;

    for (int idx = tid; idx < FT_BQ * (D / 4); idx += FT_T) {
        const int r = idx / (D / 4), c = (idx % (D / 4)) * 4;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (r < nq) v = *(const float4 *)(a.qkv + (int64_t)(q0 + r) * a.ldq + h * D + c);
        ft_split4(v, Qh + r * LD + c, Ql + r * LD + c);
    }
    const int g = lane >> 2, c2 = (lane & 3) * 2;
    const int64_t qa = pos0 + q0 + warp * 16 + g, qb = qa + 8; /* positions of the thread's two rows */
    const int64_t kend = pos0 + q0 + nq;                        /* keys [0, kend) */
    float o[D / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
#pragma unroll
    for (int t = 0; t < D / 8; t++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[t][e] = 0.0f;

    for (int64_t kb = 0; kb < kend; kb += FT_BK) {
        __syncthreads();
        for (int idx = tid; idx < FT_BK * (D / 4); idx += FT_T) {
            const int r = idx / (D / 4), c = (idx % (D / 4)) * 4;
            float4 kv = make_float4(0.0f, 0.0f, 0.0f, 0.0f), vv = kv;
            if (kb + r < kend) {
                kv = *(const float4 *)(kc + (kb + r) * a.kv_dim + c);
                vv = *(const float4 *)(vc + (kb + r) * a.kv_dim + c);
            }
            ft_split4(kv, Kh + r * LD + c, Kl + r * LD + c);
            ft_split4(vv, Vh + r * LD + c, Vl + r * LD + c);
        }
        __syncthreads();
        if (pos0 + q0 + warp * 16 + 15 < kb) continue; /* every key of the tile after the warp's queries */

        float sc[FT_BK / 8][4];
#pragma unroll
        for (int t = 0; t < FT_BK / 8; t++)
#pragma unroll
            for (int e = 0; e < 4; e++) sc[t][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t ah[4], al[4];
            const int qr = warp * 16 + (lane & 15), qc = kk * 16 + (lane >> 4) * 8;
            ldmatrix_x4(ah, Qh + qr * LD + qc);
            ldmatrix_x4(al, Ql + qr * LD + qc);
#pragma unroll
            for (int np = 0; np < FT_BK / 16; np++) {
                uint32_t bh[4], bl[4];
                const int kr = np * 16 + (lane & 7) + ((lane >> 4) << 3), kc2 = kk * 16 + ((lane >> 3) & 1) * 8;
                ldmatrix_x4(bh, Kh + kr * LD + kc2);
                ldmatrix_x4(bl, Kl + kr * LD + kc2);
                mma3(sc[2 * np], ah, al, bh, bl);
                mma3(sc[2 * np + 1], ah, al, bh + 2, bl + 2);
            }
        }
        /* scale, causal mask, online softmax of the thread's rows a (e < 2) and b */
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int t = 0; t < FT_BK / 8; t++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int64_t key = kb + t * 8 + c2 + (e & 1);
                const float v = sc[t][e] * scale;
                sc[t][e] = key <= (e < 2 ? qa : qb) && key < kend ? v : -INFINITY;
                mx[e >> 1] = fmaxf(mx[e >> 1], sc[t][e]);
            }
        float corr[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int i = 0; i < 2; i++) {
            mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
            mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
            const float mn = fmaxf(m[i], mx[i]);
            corr[i] = mn == -INFINITY ? 1.0f : expf(m[i] - mn);
            m[i] = mn;
        }
#pragma unroll
        for (int t = 0; t < FT_BK / 8; t++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float p = sc[t][e] == -INFINITY ? 0.0f : expf(sc[t][e] - m[e >> 1]);
                sc[t][e] = p;
                sum[e >> 1] += p;
            }
#pragma unroll
        for (int i = 0; i < 2; i++) {
            sum[i] += __shfl_xor_sync(0xffffffffu, sum[i], 1);
            sum[i] += __shfl_xor_sync(0xffffffffu, sum[i], 2);
            l[i] = l[i] * corr[i] + sum[i];
        }
#pragma unroll
        for (int t = 0; t < D / 8; t++) {
            o[t][0] *= corr[0];
            o[t][1] *= corr[0];
            o[t][2] *= corr[1];
            o[t][3] *= corr[1];
        }
        /* o += p v: the score tiles 2j, 2j + 1 are the A operand of keys 16j.. */
#pragma unroll
        for (int j = 0; j < FT_BK / 16; j++) {
            uint32_t ph[4], pl[4];
            split_f16x2(sc[2 * j][0], sc[2 * j][1], &ph[0], &pl[0]);
            split_f16x2(sc[2 * j][2], sc[2 * j][3], &ph[1], &pl[1]);
            split_f16x2(sc[2 * j + 1][0], sc[2 * j + 1][1], &ph[2], &pl[2]);
            split_f16x2(sc[2 * j + 1][2], sc[2 * j + 1][3], &ph[3], &pl[3]);
#pragma unroll
            for (int dp = 0; dp < D / 16; dp++) {
                uint32_t vh[4], vl[4];
                const int vr = j * 16 + (lane & 15), vcol = dp * 16 + (lane >> 4) * 8;
                ldmatrix_x4_trans(vh, Vh + vr * LD + vcol);
                ldmatrix_x4_trans(vl, Vl + vr * LD + vcol);
                mma3(o[2 * dp], ph, pl, vh, vl);
                mma3(o[2 * dp + 1], ph, pl, vh + 2, vl + 2);
            }
        }
    }
    const float inv[2] = {1.0f / l[0], 1.0f / l[1]};
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int qi = warp * 16 + g + i * 8;
        if (qi >= nq) continue;
        const int64_t off = (int64_t)(q0 + qi) * a.q_dim + h * D + c2;
#pragma unroll
        for (int t = 0; t < D / 8; t++) {
            const float v0 = o[t][i * 2] * inv[i], v1 = o[t][i * 2 + 1] * inv[i];
            if (a.out_h) {
                /* the O product's input, as split_kernel splits it */
                uint32_t hi, lo;
                split_f16x2(v0, v1, &hi, &lo);
                *(uint32_t *)(a.out_h + off + t * 8) = hi;
                if (a.out_l) *(uint32_t *)(a.out_l + off + t * 8) = lo;
            } else {
                *(float2 *)(a.out + off + t * 8) = make_float2(v0, v1);
            }
        }
    }
}

cudaError_t attention_setup(void)
{
    cudaError_t e = cudaFuncSetAttribute(attn_flash_tc<64>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)ft_smem<64>());
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(attn_flash_tc<128>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)ft_smem<128>());
    return e;
}

int attn_prefill_kernel(int64_t head_dim, int64_t kv_dim, int64_t ldq)
{
    return (head_dim == 64 || head_dim == 128) && kv_dim % 4 == 0 && ldq % 4 == 0;
}

cudaError_t launch_attention(const attn_args *a, int prefill, cudaStream_t st)
{
    void *args[] = {(void *)a};
    if (prefill && attn_prefill_kernel(a->head_dim, a->kv_dim, a->ldq)) {
        dim3 grid((unsigned)((a->n + FT_BQ - 1) / FT_BQ), (unsigned)a->n_heads);
        if (a->head_dim == 64) return launch_kernel((const void *)attn_flash_tc<64>, grid, dim3(FT_T), ft_smem<64>(), st, args);
        return launch_kernel((const void *)attn_flash_tc<128>, grid, dim3(FT_T), ft_smem<128>(), st, args);
    }
    dim3 grid((unsigned)a->n_heads, (unsigned)ATT_SPLITS, (unsigned)a->n);
    return launch_kernel((const void *)attn_decode_kernel, grid, dim3(DEC_T), 0, st, args);
}
