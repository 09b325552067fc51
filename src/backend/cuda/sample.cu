/* Picking the next token on the GPU, as uq_sample (src/runtime/generate.c)
 * does on the host: greedy (the first largest logit), or a draw from
 * softmax(logits / temperature), optionally cut to the top_k most likely
 * tokens and then to the shortest run of them whose probability reaches
 * top_p, the draw walking the kept tokens from the most likely down.
 *
 * One block per row. Probabilities become 62-bit fixed-point weights, so
 * every sum is exact and the choice does not depend on the order threads
 * add in. The order "most likely first, then the smaller id" is walked by
 * radix selection rather than by sorting the vocabulary: each pass counts
 * the tokens (and adds their weights) in 256 bins of the probability's bits
 * over the range still open, and keeps the bin holding the wanted rank or
 * weight; tokens of equal probability are then told apart by id. */
#include <stdio.h>
#include <stdlib.h>

#include "common.cuh"

#define PK_THREADS 1024
#define PK_WARPS (PK_THREADS / 32)
#define PK_BINS 256

typedef unsigned long long u64;

struct pk_shared {
    /* a pass's histogram: counts and weights (split in 32-bit halves, so
     * that every atomic is a native 32-bit one) */
    unsigned cnt[PK_BINS], mass_lo[PK_BINS], mass_hi[PK_BINS];
    /* the first pass's, the same for every selection of a row */
    unsigned first_cnt[PK_BINS];
    u64 first_mass[PK_BINS];
    u64 red_u[PK_WARPS];
    float red_f[PK_WARPS];
    int64_t red_i[PK_WARPS];
    /* one pass's choice */
    u64 before_m;
    unsigned before_c, bin, bin_cnt;
    int found;
    int64_t id;
};

/* The probability's bits: ordered as the probabilities (p >= 0). */
__device__ __forceinline__ unsigned pk_bits(float p) { return p > 0.0f ? __float_as_uint(p) : 0u; }

/* floor(p * 2^62), at least 1 for any p > 0 so that a draw at the very
 * start of a token's share still lands on it (as uq_sample's does with
 * r = 0); from the bits alone, p in (0, 1]. */
__device__ __forceinline__ u64 pk_weight_bits(unsigned b)
{
    if (!b) return 0ull;
    const int e = (int)(b >> 23); /* biased exponent; p = m * 2^(e - 150) */
    const u64 m = e ? (u64)((b & 0x7fffffu) | 0x800000u) : (u64)(b & 0x7fffffu);
    const int sh = (e ? e : 1) - 150 + 62;
    const u64 w = sh >= 0 ? m << (sh < 40 ? sh : 40) : (sh > -64 ? m >> -sh : 0ull);
    return w ? w : 1ull;
}

__device__ __forceinline__ u64 pk_weight(float p) { return pk_weight_bits(pk_bits(p)); }

/* Block-wide reductions; every thread gets the result. */
__device__ float pk_max(float v, pk_shared *sm)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sm->red_f[warp] = v;
    __syncthreads();
    v = sm->red_f[0];
    for (int w = 1; w < PK_WARPS; w++) v = fmaxf(v, sm->red_f[w]);
    return v;
}

__device__ float pk_sum(float v, pk_shared *sm)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sm->red_f[warp] = v;
    __syncthreads();
    v = 0.0f;
    for (int w = 0; w < PK_WARPS; w++) v += sm->red_f[w];
    return v;
}

/* The sum over the block and, in *excl, the sum over the threads before this one. */
__device__ u64 pk_scan(u64 v, u64 *excl, pk_shared *sm)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    u64 inc = v;
    for (int o = 1; o < 32; o <<= 1) {
        u64 t = __shfl_up_sync(0xffffffffu, inc, o);
        if (lane >= o) inc += t;
    }
    __syncthreads();
    if (lane == 31) sm->red_u[warp] = inc;
    __syncthreads();
    u64 before = 0, total = 0;
    for (int w = 0; w < PK_WARPS; w++) {
        if (w < warp) before += sm->red_u[w];
        total += sm->red_u[w];
    }
    *excl = before + inc - v;
    return total;
}

__device__ u64 pk_minmax(u64 v, int want_max, pk_shared *sm)
{
    for (int o = 16; o > 0; o >>= 1) {
        u64 t = __shfl_xor_sync(0xffffffffu, v, o);
        v = want_max ? (t > v ? t : v) : (t < v ? t : v);
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sm->red_u[warp] = v;
    __syncthreads();
    v = sm->red_u[0];
    for (int w = 1; w < PK_WARPS; w++) {
        u64 t = sm->red_u[w];
        v = want_max ? (t > v ? t : v) : (t < v ? t : v);
    }
    return v;
}

/* The first index of the largest value (NaN never wins), as uq_sample's greedy path. */
__device__ int64_t pk_argmax(const float *row, int64_t n, pk_shared *sm)
{
    float best = -INFINITY;
    int64_t idx = n;
#pragma unroll 8
    for (int64_t i = threadIdx.x; i < n; i += PK_THREADS) {
        float v = row[i];
        if (v > best || (idx == n && v == best)) {
            best = v;
            idx = i;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, best, o);
        int64_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (ov > best || (ov == best && oi < idx)) {
            best = ov;
            idx = oi;
        }
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) {
        sm->red_f[warp] = best;
        sm->red_i[warp] = idx;
    }
    __syncthreads();
    best = sm->red_f[0];
    idx = sm->red_i[0];
    for (int w = 1; w < PK_WARPS; w++)
        if (sm->red_f[w] > best || (sm->red_f[w] == best && sm->red_i[w] < idx)) {
            best = sm->red_f[w];
            idx = sm->red_i[w];
        }
    return idx < n ? idx : 0;
}

/* This warp's contiguous range [*b, *end) of n tokens (a multiple of 32
 * long), for the walks that go in id order. */
__device__ __forceinline__ void pk_warp_range(int64_t n, int64_t *b, int64_t *end)
{
    const int64_t span = (n + PK_WARPS * 32 - 1) / (PK_WARPS * 32) * 32;
    *b = (threadIdx.x >> 5) * span;
    *end = *b + span < n ? *b + span : n;
}

/* A draw over the whole vocabulary in index order (uq_sample without top-k
 * or top-p): the first token whose running weight passes r times the
 * total, else the last token with a weight. Each warp owns
 * a contiguous range; the warp holding the target walks it 32 at a time. */
__device__ int64_t pk_draw_in_order(const float *e, int64_t n, float inv, double rr, pk_shared *sm)
{
    const int lane = threadIdx.x & 31;
    int64_t b, end;
    pk_warp_range(n, &b, &end);
    u64 mine = 0, last = 0; /* last: 1 + the last token of non-zero weight */
    for (int64_t i = b + lane; i < end; i += 32) {
        const u64 w = pk_weight(__fmul_rn(e[i], inv));
        mine += w;
        last = w ? (u64)i + 1 : last;
    }
    for (int o = 16; o > 0; o >>= 1) mine += __shfl_xor_sync(0xffffffffu, mine, o);
    last = pk_minmax(last, 1, sm);
    /* the block's running sum at each warp: one lane per warp */
    u64 before = 0;
    const u64 total = pk_scan(lane == 0 ? mine : 0ull, &before, sm);
    before = __shfl_sync(0xffffffffu, before, 0);
    const u64 target = (u64)(rr * (double)total);
    __syncthreads();
    /* past the last running sum: the last token that has a share */
    if (threadIdx.x == 0) sm->id = last ? (int64_t)last - 1 : 0;
    __syncthreads();
    if (target < total && target >= before && target < before + mine) {
        u64 acc = before;
        for (int64_t i0 = b; i0 < end; i0 += 32) {
            const int64_t i = i0 + lane;
            const u64 w = i < end ? pk_weight(__fmul_rn(e[i], inv)) : 0ull;
            u64 inc = w;
            for (int o = 1; o < 32; o <<= 1) {
                u64 t = __shfl_up_sync(0xffffffffu, inc, o);
                if (lane >= o) inc += t;
            }
            const unsigned hit = __ballot_sync(0xffffffffu, target < acc + inc);
            if (hit) {
                if (lane == __ffs(hit) - 1) sm->id = i;
                break;
            }
            acc += __shfl_sync(0xffffffffu, inc, 31);
        }
    }
    __syncthreads();
    return sm->id;
}

/* The j-th (from 0) smallest id among the tokens whose bits are b (j below
 * their count): warps own contiguous ranges of ids, counted and walked 32
 * at a time. */
__device__ int64_t pk_nth_id(const float *p, int64_t n, unsigned b, u64 j, pk_shared *sm)
{
    const int lane = threadIdx.x & 31;
    int64_t lo, end;
    pk_warp_range(n, &lo, &end);
    unsigned mine = 0;
    for (int64_t i0 = lo; i0 < end; i0 += 32) {
        const int64_t i = i0 + lane;
        mine += __popc(__ballot_sync(0xffffffffu, i < end && pk_bits(p[i]) == b));
    }
    u64 before = 0;
    pk_scan(lane == 0 ? (u64)mine : 0ull, &before, sm);
    before = __shfl_sync(0xffffffffu, before, 0);
    if (j >= before && j < before + mine) {
        u64 seen = before;
        for (int64_t i0 = lo; i0 < end; i0 += 32) {
            const int64_t i = i0 + lane;
            const unsigned hits = __ballot_sync(0xffffffffu, i < end && pk_bits(p[i]) == b);
            const unsigned c = __popc(hits);
            if (j < seen + c) {
                /* the (j - seen)-th set bit of hits */
                unsigned h = hits;
                for (u64 k = seen; k < j; k++) h &= h - 1;
                if (lane == 0) sm->id = i0 + __ffs(h) - 1;
                break;
            }
            seen += c;
        }
    }
    __syncthreads();
    return sm->id;
}

/* Radix selection in the order "most likely first, then the smaller id".
 * weighted 0: the token of rank target (0 = the most likely); 1: the token
 * whose weight covers position target of the weights laid end to end in
 * that order. Its id, and the count and weight of the tokens before it,
 * land in *id, *bc, *bm; returns 0 when target lies beyond them all. The
 * probabilities' bits span [lo, hi]. */
__device__ int pk_select(const float *p, int64_t n, unsigned lo, unsigned hi, int weighted, u64 target, int64_t *id,
                         u64 *bc, u64 *bm, pk_shared *sm, int *first_done)
{
    u64 c_before = 0, m_before = 0;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int pass = 0;; pass++) {
        const unsigned span = hi - lo;
        const int sh = span >> 8 ? 24 - __clz((int)span) : 0; /* bins of 2^sh values of the bits */
        __syncthreads();
        if (pass == 0 && *first_done) {
            for (int b = threadIdx.x; b < PK_BINS; b += PK_THREADS) {
                sm->cnt[b] = sm->first_cnt[b];
                sm->mass_lo[b] = (unsigned)sm->first_mass[b];
                sm->mass_hi[b] = (unsigned)(sm->first_mass[b] >> 32);
            }
        } else {
            for (int b = threadIdx.x; b < PK_BINS; b += PK_THREADS) sm->cnt[b] = sm->mass_lo[b] = sm->mass_hi[b] = 0;
            __syncthreads();
            for (int64_t i = threadIdx.x; i < n; i += PK_THREADS) {
                const unsigned pb = pk_bits(p[i]);
                if (pb < lo || pb > hi) continue;
                const unsigned b = (pb - lo) >> sh;
                atomicAdd(&sm->cnt[b], 1u);
                const u64 w = pk_weight_bits(pb);
                const unsigned wl = (unsigned)w, old = atomicAdd(&sm->mass_lo[b], wl);
                const unsigned wh = (unsigned)(w >> 32) + (old + wl < old);
                if (wh) atomicAdd(&sm->mass_hi[b], wh);
            }
            __syncthreads();
            if (pass == 0) {
                for (int b = threadIdx.x; b < PK_BINS; b += PK_THREADS) {
                    sm->first_cnt[b] = sm->cnt[b];
                    sm->first_mass[b] = ((u64)sm->mass_hi[b] << 32) | sm->mass_lo[b];
                }
                *first_done = 1;
            }
        }
        __syncthreads();
        if (warp == 0) {
            /* lane l holds bins 255 - 8l down to 248 - 8l: the most likely first */
            const int top = PK_BINS - 1 - 8 * lane;
            u64 lc = 0, lm = 0;
            for (int j = 0; j < 8; j++) {
                lc += sm->cnt[top - j];
                lm += ((u64)sm->mass_hi[top - j] << 32) | sm->mass_lo[top - j];
            }
            u64 ic = lc, im = lm;
            for (int o = 1; o < 32; o <<= 1) {
                u64 tc = __shfl_up_sync(0xffffffffu, ic, o);
                u64 tm = __shfl_up_sync(0xffffffffu, im, o);
                if (lane >= o) {
                    ic += tc;
                    im += tm;
                }
            }
            u64 c0 = c_before + ic - lc, m0 = m_before + im - lm;
            int mine = -1;
            for (int j = 0; j < 8; j++) {
                const int b = top - j;
                const u64 bmass = ((u64)sm->mass_hi[b] << 32) | sm->mass_lo[b];
                if (weighted ? target < m0 + bmass : target < c0 + sm->cnt[b]) {
                    mine = b;
                    break;
                }
                c0 += sm->cnt[b];
                m0 += bmass;
            }
            const unsigned hit = __ballot_sync(0xffffffffu, mine >= 0);
            if (lane == 0) sm->found = hit != 0;
            if (hit && lane == __ffs(hit) - 1) {
                sm->bin = (unsigned)mine;
                sm->bin_cnt = sm->cnt[mine];
                sm->before_c = (unsigned)c0;
                sm->before_m = m0;
            }
        }
        __syncthreads();
        if (!sm->found) return 0;
        c_before = sm->before_c;
        m_before = sm->before_m;
        const unsigned nlo = lo + (sm->bin << sh);
        const unsigned nhi = nlo + ((1u << sh) - 1);
        lo = nlo;
        hi = nhi < hi ? nhi : hi;
        if (sm->bin_cnt == 1 && lo != hi) {
            /* one token left in [lo, hi]: its id */
            __syncthreads();
            for (int64_t i = threadIdx.x; i < n; i += PK_THREADS) {
                const unsigned pb = pk_bits(p[i]);
                if (pb >= lo && pb <= hi) sm->id = i;
            }
            __syncthreads();
            *id = sm->id;
            *bc = c_before;
            *bm = m_before;
            return 1;
        }
        if (lo == hi) {
            /* bin_cnt tokens of bits lo, in id order: the one wanted */
            const u64 w = pk_weight_bits(lo);
            const u64 j = weighted ? (target - m_before) / w : target - c_before;
            *id = pk_nth_id(p, n, lo, j, sm);
            *bc = c_before + j;
            *bm = m_before + j * w;
            return 1;
        }
    }
}

/* v: vocab floats of shared memory when they fit (dynamic shared memory
 * of the launch), else the row's part of scratch. */
__global__ void __launch_bounds__(PK_THREADS) pick_kernel(const float *logits, int64_t vocab, const uq_cuda_pick *pp,
                                                          int64_t pp_stride, float *scratch, int in_shared,
                                                          int32_t *out)
{
    pdl_trigger();
    pdl_wait();
    __shared__ pk_shared sm;
    extern __shared__ float pk_dyn[];
    const float *row = logits + (int64_t)blockIdx.x * vocab;
    const uq_cuda_pick prm = pp[(int64_t)blockIdx.x * pp_stride];
    const float t = prm.temperature;
    const int tid = threadIdx.x;
    if (!(t > 0.0f)) {
        int64_t id = pk_argmax(row, vocab, &sm);
        if (tid == 0) out[blockIdx.x] = (int32_t)id;
        return;
    }
    float *v = in_shared ? pk_dyn : scratch + (int64_t)blockIdx.x * vocab;
    /* softmax of logits / t, rounded as the host's; v: the quotients, then
     * their exponentials, then (for top-k / top-p) the probabilities */
    float zmax = -INFINITY;
#pragma unroll 4
    for (int64_t i = tid; i < vocab; i += PK_THREADS) {
        const float z = __fdiv_rn(row[i], t);
        v[i] = z;
        zmax = fmaxf(zmax, z);
    }
    zmax = pk_max(zmax, &sm);
    float s = 0.0f;
    for (int64_t i = tid; i < vocab; i += PK_THREADS) {
        /* 0 below e^-87, as the host's exponential (the same tokens have a share) */
        const float d = v[i] - zmax, e = d < -87.0f ? 0.0f : expf(d);
        v[i] = e;
        s += e;
    }
    s = pk_sum(s, &sm);
    if (!(s >= 1.0f && s < INFINITY)) {
        /* no finite distribution (a NaN or infinite logit, or a temperature
         * so small the quotients overflow): the greedy choice */
        int64_t id = pk_argmax(row, vocab, &sm);
        if (tid == 0) out[blockIdx.x] = (int32_t)id;
        return;
    }
    const float inv = __fdiv_rn(1.0f, s);
    const int restricted = (prm.top_k > 0 && prm.top_k < vocab) || (prm.top_p > 0.0f && prm.top_p < 1.0f);
    if (!restricted) {
        const int64_t id = pk_draw_in_order(v, vocab, inv, prm.r, &sm);
        if (tid == 0) out[blockIdx.x] = (int32_t)id;
        return;
    }
    u64 lo = ~0ull, hi = 0, total = 0;
    for (int64_t i = tid; i < vocab; i += PK_THREADS) {
        const float p = __fmul_rn(v[i], inv);
        v[i] = p;
        const u64 b = pk_bits(p);
        lo = b < lo ? b : lo;
        hi = b > hi ? b : hi;
        total += pk_weight_bits((unsigned)b);
    }
    lo = pk_minmax(lo, 0, &sm); /* its barrier also publishes the probabilities */
    hi = pk_minmax(hi, 1, &sm);
    u64 excl_unused;
    total = pk_scan(total, &excl_unused, &sm);

    int first_done = 0;
    u64 keep = prm.top_k > 0 && prm.top_k < vocab ? (u64)prm.top_k : (u64)vocab;
    int64_t id = 0;
    u64 bc = 0, bm = 0, kept = 0; /* kept: the weight of the kept tokens, once known */
    if (prm.top_p > 0.0f && prm.top_p < 1.0f) {
        /* the first token at which the running sum reaches top_p of the total */
        u64 reach = (u64)((double)prm.top_p * (double)total);
        if (reach == 0) reach = 1;
        if (reach - 1 < total &&
            pk_select(v, vocab, (unsigned)lo, (unsigned)hi, 1, reach - 1, &id, &bc, &bm, &sm, &first_done) &&
            bc + 1 <= keep) {
            keep = bc + 1;
            kept = bm + pk_weight(v[id]);
        }
    }
    if (!kept) {
        pk_select(v, vocab, (unsigned)lo, (unsigned)hi, 0, keep - 1, &id, &bc, &bm, &sm, &first_done);
        kept = bm + pk_weight(v[id]);
    }
    u64 target = (u64)(prm.r * (double)kept);
    if (target >= kept) target = kept - 1;
    /* the selection cannot miss (target < kept); the greedy choice if it did */
    if (!pk_select(v, vocab, (unsigned)lo, (unsigned)hi, 1, target, &id, &bc, &bm, &sm, &first_done))
        id = pk_argmax(row, vocab, &sm);
    if (tid == 0) out[blockIdx.x] = (int32_t)id;
}

cudaError_t launch_pick(const float *logits, int rows, int64_t vocab, const uq_cuda_pick *pp, int64_t pp_stride,
                        float *scratch, int32_t *out, cudaStream_t st)
{
    /* the values in shared memory when the device has room for a row */
    static int room = -1;
    if (room < 0) {
        int dev = 0, optin = 0;
        cudaError_t e = cudaGetDevice(&dev);
        if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
        int avail = optin - (int)sizeof(pk_shared) - 1024;
        if (e == cudaSuccess && avail > 0)
            e = cudaFuncSetAttribute((const void *)pick_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, avail);
        if (e != cudaSuccess) return e;
        room = avail > 0 ? avail : 0;
    }
    int in_shared = vocab * (int64_t)sizeof(float) <= room;
    size_t smem = in_shared ? (size_t)vocab * sizeof(float) : 0;
    void *args[] = {(void *)&logits, &vocab, (void *)&pp, &pp_stride, &scratch, &in_shared, &out};
    return launch_kernel((const void *)pick_kernel, dim3(rows), dim3(PK_THREADS), smem, st, args);
}

int pick_rows(const float *logits, int64_t rows, int64_t vocab, const uq_cuda_pick *picks, int32_t *out, char *err,
              size_t cap)
{
    int st = UQ_OK;
    float *x = NULL, *scr = NULL;
    uq_cuda_pick *pp = NULL;
    int32_t *ids = NULL;
    const size_t n = (size_t)rows * (size_t)vocab;
    cudaError_t e = cudaMalloc((void **)&x, n * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&scr, n * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&pp, (size_t)rows * sizeof *pp);
    if (e == cudaSuccess) e = cudaMalloc((void **)&ids, (size_t)rows * sizeof *ids);
    if (e == cudaSuccess) e = cudaMemcpy(x, logits, n * sizeof(float), cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(pp, picks, (size_t)rows * sizeof *pp, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = launch_pick(x, (int)rows, vocab, pp, 1, scr, ids, 0);
    if (e == cudaSuccess && getenv("UQ_PICK_TIME")) {
        cudaEvent_t a0, a1;
        cudaEventCreate(&a0);
        cudaEventCreate(&a1);
        cudaEventRecord(a0, 0);
        for (int k = 0; k < 50; k++) launch_pick(x, (int)rows, vocab, pp, 1, scr, ids, 0);
        cudaEventRecord(a1, 0);
        cudaEventSynchronize(a1);
        float ms = 0;
        cudaEventElapsedTime(&ms, a0, a1);
        printf("PICKTIME rows %lld vocab %lld T %g k %d p %g: %.1f us\n", (long long)rows, (long long)vocab, picks[0].temperature, picks[0].top_k, picks[0].top_p, ms * 1000 / 50);
    }
    if (e == cudaSuccess) e = cudaMemcpy(out, ids, (size_t)rows * sizeof *ids, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
        snprintf(err, cap, "picking tokens: %s", cudaGetErrorString(e));
        st = e == cudaErrorMemoryAllocation ? UQ_ERR_NOMEM : UQ_ERR_IO;
    }
    cudaFree(x);
    cudaFree(scr);
    cudaFree(pp);
    cudaFree(ids);
    return st;
}
