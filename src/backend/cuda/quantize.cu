/* uq_quantize_tensor on the GPU, byte for byte (src/quant/affine.c and
 * symmetric.c): fp32 arithmetic with every operation rounded on its own
 * (division, not a reciprocal; no FMA), rint with ties to even, codes from
 * the fp32 scale and bias, stored copies rounded to nearest even and
 * saturated like uq_qstore. One warp fits and codes one group; a second
 * kernel packs the codes into MLX's LSB-first words.
 *
 * Tensors holding NaN or Inf, or a group whose range overflows fp32 (the
 * CPU's "wide" case), are reported through *fallback for the CPU to do.
 *
 * The host side streams a tensor through pinned staging buffers in chunks of
 * rows, two chunks in flight: while the GPU quantizes one, the CPU copies
 * the next one in and the previous results out. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common.cuh"

__device__ __forceinline__ uint16_t bf16_bits(float f)
{
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

__device__ __forceinline__ uint16_t f16_bits(float f)
{
    uint32_t u = __float_as_uint(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) {
        if (a < 0x33000000u) return sign;
        uint32_t exp = a >> 23;
        uint32_t man = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - exp;
        uint32_t q = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = a - 0x38000000u;
    r += 0xfffu + ((r >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13));
}

/* As uq_qstore: element i of dst in dtype t, saturating finite values. */
__device__ __forceinline__ void store_scale(int t, void *dst, int64_t i, float v)
{
    if (t == UQ_BF16) {
        uint16_t h = bf16_bits(v);
        if (isfinite(v) && (h & 0x7fffu) == 0x7f80u) h = (uint16_t)((h & 0x8000u) | 0x7f7fu);
        ((uint16_t *)dst)[i] = h;
    } else if (t == UQ_F16) {
        uint16_t h = f16_bits(v);
        if (isfinite(v) && (h & 0x7fffu) == 0x7c00u) h = (uint16_t)((h & 0x8000u) | 0x7bffu);
        ((uint16_t *)dst)[i] = h;
    } else {
        ((float *)dst)[i] = v;
    }
}

__device__ __forceinline__ float load_src(const void *src, int64_t i, int t)
{
    if (t == UQ_BF16) return __uint_as_float((uint32_t)((const uint16_t *)src)[i] << 16);
    if (t == UQ_F16) return __half2float(__ushort_as_half(((const uint16_t *)src)[i]));
    return ((const float *)src)[i];
}

#define QG_WARPS 8

/* One warp per (row, group): the fit, the codes (one byte each) and the
 * stored scale and bias. */
__global__ void __launch_bounds__(QG_WARPS * 32)
    quant_groups_kernel(int scheme, int bits, int64_t rows, int64_t cols, int group, int src_dtype, int sdt,
                        const void *src, uint8_t *codes, void *scales, void *biases, int *flag)
{
    const int lane = threadIdx.x & 31;
    const int64_t gpr = cols / group;
    const int64_t gid = (int64_t)blockIdx.x * QG_WARPS + (threadIdx.x >> 5);
    if (gid >= rows * gpr) return;
    const int64_t e0 = (gid / gpr) * cols + (gid % gpr) * group;
    float lo = INFINITY, hi = -INFINITY, amax = 0.0f;
    int bad = 0;
    for (int i = lane; i < group; i += 32) {
        float v = load_src(src, e0 + i, src_dtype);
        bad |= !isfinite(v);
        if (hi < v) hi = v;
        if (v < lo) lo = v;
        float a = fabsf(v);
        if (a > amax) amax = a;
    }
    bad = __any_sync(0xffffffffu, bad);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, o));
        hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, o));
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    }
    if (bad || (scheme == UQ_SCHEME_AFFINE && isinf(__fsub_rn(hi, lo)))) {
        if (lane == 0) atomicOr(flag, 1);
        return;
    }
    if (scheme == UQ_SCHEME_AFFINE) {
        /* fit_extremes of src/quant/affine.c */
        const float n_bins = (float)((1 << bits) - 1);
        const int mask = fabsf(lo) > fabsf(hi);
        float scale = __fdiv_rn(__fsub_rn(hi, lo), n_bins);
        if (scale < 1e-7f) scale = 1e-7f;
        if (!mask) scale = -scale;
        const float edge = mask ? lo : hi;
        const float q0 = rintf(__fdiv_rn(edge, scale));
        float bias = 0.0f;
        if (isinf(q0)) {
            bias = edge;
        } else if (q0 != 0.0f) {
            scale = __fdiv_rn(edge, q0);
            bias = edge;
        }
        for (int i = lane; i < group; i += 32) {
            float v = load_src(src, e0 + i, src_dtype);
            float t = rintf(__fdiv_rn(__fsub_rn(v, bias), scale));
            codes[e0 + i] = !(t > 0.0f) ? 0 : t >= n_bins ? (uint8_t)n_bins : (uint8_t)t;
        }
        if (lane == 0) {
            store_scale(sdt, scales, gid, scale);
            store_scale(sdt, biases, gid, bias);
        }
    } else {
        const int offset = 1 << (bits - 1);
        const float scale = __fdiv_rn(amax, (float)(offset - 1));
        const float qhi = (float)(offset - 1), qlo = (float)-offset;
        for (int i = lane; i < group; i += 32) {
            int q = 0;
            if (scale != 0.0f) {
                float t = rintf(__fdiv_rn(load_src(src, e0 + i, src_dtype), scale));
                q = t >= qhi ? offset - 1 : t <= qlo ? -offset : (int)t;
            }
            codes[e0 + i] = (uint8_t)(q + offset);
        }
        if (lane == 0) store_scale(sdt, scales, gid, scale);
    }
}

/* One thread per output word: the codes whose bits fall in it. */
__global__ void pack_kernel(const uint8_t *codes, int64_t rows, int64_t cols, int bits, int64_t wpr, uint32_t *out)
{
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * wpr) return;
    const int64_t r = idx / wpr, w = idx % wpr;
    const int64_t bit0 = w * 32, k0 = bit0 / bits;
    int64_t kend = (bit0 + 32 + bits - 1) / bits;
    if (kend > cols) kend = cols;
    const uint8_t *c = codes + r * cols;
    uint64_t acc = 0;
    for (int64_t k = k0; k < kend; k++) acc |= (uint64_t)c[k] << ((k - k0) * bits);
    out[idx] = (uint32_t)(acc >> (bit0 - k0 * bits));
}

/* ------------------------------------------------------------------ host */

#define QSLOTS 2
#define QSTAGE ((size_t)64 << 20) /* bytes of source per chunk */

typedef struct qslot {
    cudaStream_t st;
    cudaEvent_t done;
    void *h_src, *h_out;     /* pinned */
    void *d_src, *d_out;
    uint8_t *d_codes;
    int busy;
    int64_t r0, nr;          /* rows of the chunk in flight */
} qslot;

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static qslot q_slots[QSLOTS];
static int *q_flag;
static size_t q_out_cap, q_codes_cap;
static int q_ready;

static int q_fail(cudaError_t e, const char *what, char *err, size_t cap)
{
    snprintf(err, cap, "%s: %s", what, cudaGetErrorString(e));
    return e == cudaErrorMemoryAllocation ? UQ_ERR_NOMEM : UQ_ERR_IO;
}

#define QCHECK(call, what)                                  \
    do {                                                    \
        cudaError_t e_ = (call);                            \
        if (e_ != cudaSuccess) return q_fail(e_, what, err, cap); \
    } while (0)

static int q_setup(size_t out_bytes, size_t codes_bytes, char *err, size_t cap)
{
    if (!q_ready) {
        QCHECK(cudaMalloc((void **)&q_flag, sizeof(int)), "allocating quantization buffers");
        for (int i = 0; i < QSLOTS; i++) {
            qslot *s = &q_slots[i];
            QCHECK(cudaStreamCreateWithFlags(&s->st, cudaStreamNonBlocking), "creating a stream");
            QCHECK(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming), "creating an event");
            QCHECK(cudaMallocHost(&s->h_src, QSTAGE), "allocating pinned memory");
            QCHECK(cudaMalloc(&s->d_src, QSTAGE), "allocating quantization buffers");
        }
        q_ready = 1;
    }
    if (out_bytes > q_out_cap) {
        for (int i = 0; i < QSLOTS; i++) {
            cudaFreeHost(q_slots[i].h_out);
            cudaFree(q_slots[i].d_out);
            q_slots[i].h_out = q_slots[i].d_out = NULL;
            QCHECK(cudaMallocHost(&q_slots[i].h_out, out_bytes), "allocating pinned memory");
            QCHECK(cudaMalloc(&q_slots[i].d_out, out_bytes), "allocating quantization buffers");
        }
        q_out_cap = out_bytes;
    }
    if (codes_bytes > q_codes_cap) {
        for (int i = 0; i < QSLOTS; i++) {
            cudaFree(q_slots[i].d_codes);
            q_slots[i].d_codes = NULL;
            QCHECK(cudaMalloc((void **)&q_slots[i].d_codes, codes_bytes), "allocating quantization buffers");
        }
        q_codes_cap = codes_bytes;
    }
    return UQ_OK;
}

typedef struct qjob {
    int scheme, bits, group, sdt, src_dtype;
    int64_t rows, cols, wpr, gpr;
    size_t es, ses;            /* bytes per source element, per scale */
    size_t pk_row, sc_row;     /* output bytes per row */
    const unsigned char *src;
    unsigned char *packed, *scales, *biases;
} qjob;

/* Copies a finished chunk's results to the caller. */
static void q_drain(const qjob *j, qslot *s)
{
    const unsigned char *o = (const unsigned char *)s->h_out;
    size_t nr = (size_t)s->nr, r0 = (size_t)s->r0;
    memcpy(j->packed + r0 * j->pk_row, o, nr * j->pk_row);
    o += nr * j->pk_row;
    memcpy(j->scales + r0 * j->sc_row, o, nr * j->sc_row);
    o += nr * j->sc_row;
    if (j->biases) memcpy(j->biases + r0 * j->sc_row, o, nr * j->sc_row);
    s->busy = 0;
}

static int q_run(const qjob *j, int64_t rows_per, int *fallback, char *err, size_t cap)
{
    int slot = 0;
    QCHECK(cudaMemsetAsync(q_flag, 0, sizeof(int), q_slots[0].st), "clearing a flag");
    QCHECK(cudaStreamSynchronize(q_slots[0].st), "clearing a flag");
    for (int64_t r0 = 0; r0 < j->rows; r0 += rows_per, slot ^= 1) {
        qslot *s = &q_slots[slot];
        if (s->busy) {
            QCHECK(cudaEventSynchronize(s->done), "quantizing");
            q_drain(j, s);
        }
        int64_t nr = j->rows - r0 < rows_per ? j->rows - r0 : rows_per;
        size_t src_bytes = (size_t)nr * (size_t)j->cols * j->es;
        memcpy(s->h_src, j->src + (size_t)r0 * (size_t)j->cols * j->es, src_bytes);
        QCHECK(cudaMemcpyAsync(s->d_src, s->h_src, src_bytes, cudaMemcpyHostToDevice, s->st), "copying to the GPU");
        unsigned char *d_pk = (unsigned char *)s->d_out, *d_sc = d_pk + (size_t)nr * j->pk_row,
                      *d_bi = d_sc + (size_t)nr * j->sc_row;
        int64_t groups = nr * j->gpr;
        quant_groups_kernel<<<(unsigned)((groups + QG_WARPS - 1) / QG_WARPS), QG_WARPS * 32, 0, s->st>>>(
            j->scheme, j->bits, nr, j->cols, j->group, j->src_dtype, j->sdt, s->d_src, s->d_codes, d_sc,
            j->biases ? d_bi : NULL, q_flag);
        QCHECK(cudaGetLastError(), "launching the quantization kernel");
        int64_t words = nr * j->wpr;
        pack_kernel<<<(unsigned)((words + 255) / 256), 256, 0, s->st>>>(s->d_codes, nr, j->cols, j->bits, j->wpr,
                                                                        (uint32_t *)d_pk);
        QCHECK(cudaGetLastError(), "launching the packing kernel");
        size_t out_bytes = (size_t)nr * (j->pk_row + j->sc_row * (j->biases ? 2 : 1));
        QCHECK(cudaMemcpyAsync(s->h_out, s->d_out, out_bytes, cudaMemcpyDeviceToHost, s->st), "copying from the GPU");
        QCHECK(cudaEventRecord(s->done, s->st), "recording an event");
        s->busy = 1;
        s->r0 = r0;
        s->nr = nr;
    }
    for (int i = 0; i < QSLOTS; i++) {
        qslot *s = &q_slots[(slot + i) % QSLOTS];
        if (!s->busy) continue;
        QCHECK(cudaEventSynchronize(s->done), "quantizing");
        q_drain(j, s);
    }
    int flag = 0;
    QCHECK(cudaMemcpy(&flag, q_flag, sizeof(int), cudaMemcpyDeviceToHost), "reading a flag");
    *fallback = flag != 0;
    return UQ_OK;
}

int quantize_device(int scheme, int bits, int group, int sdt, int src_dtype, const void *src, int64_t rows,
                    int64_t cols, void *packed, void *scales, void *biases, int *fallback, char *err, size_t cap)
{
    qjob j;
    j.scheme = scheme;
    j.bits = bits;
    j.group = group;
    j.sdt = sdt;
    j.src_dtype = src_dtype;
    j.rows = rows;
    j.cols = cols;
    j.wpr = (cols * bits + 31) / 32;
    j.gpr = cols / group;
    j.es = src_dtype == UQ_F32 ? 4 : 2;
    j.ses = sdt == UQ_F32 ? 4 : 2;
    j.pk_row = (size_t)j.wpr * 4;
    j.sc_row = (size_t)j.gpr * j.ses;
    j.src = (const unsigned char *)src;
    j.packed = (unsigned char *)packed;
    j.scales = (unsigned char *)scales;
    j.biases = scheme == UQ_SCHEME_AFFINE ? (unsigned char *)biases : NULL;
    *fallback = 0;

    size_t row_bytes = (size_t)cols * j.es;
    int64_t rows_per = (int64_t)(QSTAGE / row_bytes);
    if (rows_per < 1) {
        /* a row larger than a staging buffer: leave it to the CPU */
        *fallback = 1;
        return UQ_OK;
    }
    if (rows_per > rows) rows_per = rows;
    size_t out_bytes = (size_t)rows_per * (j.pk_row + 2 * j.sc_row);
    size_t codes_bytes = (size_t)rows_per * (size_t)cols;
    pthread_mutex_lock(&q_lock);
    int st = q_setup(out_bytes, codes_bytes, err, cap);
    if (st == UQ_OK) st = q_run(&j, rows_per, fallback, err, cap);
    if (st != UQ_OK) {
        /* leave no chunk marked in flight after a failure */
        for (int i = 0; i < QSLOTS; i++) {
            if (q_slots[i].busy) cudaEventSynchronize(q_slots[i].done);
            q_slots[i].busy = 0;
        }
    }
    pthread_mutex_unlock(&q_lock);
    return st;
}
