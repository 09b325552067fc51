/* Element-wise parts of the forward pass: embedding rows, RMSNorm, SwiGLU
 * and the split of GEMM inputs into 16-bit halves. The arithmetic follows src/runtime/ops.c (fp32, each operation rounded on its
 * own; the RMSNorm sum of squares in double). */
#include "common.cuh"

#define BLOCK 256

__device__ __forceinline__ double block_sum_d(double v, double *red)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    double t = 0;
    for (int i = 0; i < nw; i++) t += red[i];
    return t;
}

/* One token per block: row ids[t] of the embedding, dequantized or converted. */
__global__ void embed_kernel(const int32_t *ids, dmat e, float *x)
{
    pdl_trigger();
    pdl_wait();
    /* token blockIdx.x, columns from blockIdx.y * blockDim.x: one value per
     * thread, so that the reads of a row are all in flight at once */
    const int t = blockIdx.x;
    const int64_t id = ids[t];
    float *out = x + (int64_t)t * e.cols;
    const int64_t k = (int64_t)blockIdx.y * blockDim.x + threadIdx.x;
    if (k < e.cols)
        out[k] = weight_at(e.w, e.s, e.b, e.quantized, e.scheme, e.bits, e.group, e.dtype, e.wpr, e.cols, id, k);
}

cudaError_t launch_embed(const int32_t *ids, int n, const dmat *e, float *x, cudaStream_t st)
{
    void *args[] = {(void *)&ids, (void *)e, &x};
    return launch_kernel((const void *)embed_kernel, dim3((unsigned)n, (unsigned)((e->cols + BLOCK - 1) / BLOCK)),
                         dim3(BLOCK), 0, st, args);
}

/* out = w * (x * inv), inv = 1 / sqrt(mean(x^2) + eps), one token per block. */
__global__ void rmsnorm_kernel(const float *x, const float *w, float *out, int64_t dim, double eps)
{
    pdl_trigger();
    pdl_wait();
    __shared__ double red[BLOCK / 32];
    const float *xr = x + blockIdx.x * dim;
    float *o = out + blockIdx.x * dim;
    double ss = 0;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += (double)xr[i] * (double)xr[i];
    ss = block_sum_d(ss, red);
    const float inv = (float)(1.0 / sqrt(ss / (double)dim + eps));
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) o[i] = __fmul_rn(w[i], __fmul_rn(xr[i], inv));
}

cudaError_t launch_rmsnorm(const float *x, const float *w, float *out, int n, int64_t dim, double eps,
                           cudaStream_t st)
{
    void *args[] = {(void *)&x, (void *)&w, &out, &dim, &eps};
    return launch_kernel((const void *)rmsnorm_kernel, dim3(n), dim3(BLOCK), 0, st, args);
}

/* x = hi + lo in bf16 (or f16) pairs, one token per block (lo may be NULL:
 * quantized weights use hi only); with norm_w,
 * x is first normalized exactly as rmsnorm_kernel does (same block size,
 * same order of the sums). */
__global__ void __launch_bounds__(BLOCK) split_kernel(const float *x, int64_t ldx, const float *norm_w, double eps,
                                                      int64_t K, int f16, uint16_t *hi, uint16_t *lo)
{
    pdl_trigger();
    pdl_wait();
    __shared__ double red[BLOCK / 32];
    const float *xr = x + blockIdx.x * ldx;
    uint16_t *h = hi + blockIdx.x * K, *l = lo ? lo + blockIdx.x * K : NULL;
    float inv = 1.0f;
    if (norm_w) {
        double ss = 0;
        for (int64_t i = threadIdx.x; i < K; i += blockDim.x) ss += (double)xr[i] * (double)xr[i];
        ss = block_sum_d(ss, red);
        inv = (float)(1.0 / sqrt(ss / (double)K + eps));
    }
    if (f16 && (K & 3) == 0 && (ldx & 3) == 0) {
        /* four values per thread and step */
        for (int64_t i = threadIdx.x * 4; i < K; i += blockDim.x * 4) {
            float4 v = *(const float4 *)(xr + i);
            if (norm_w) {
                const float4 w = *(const float4 *)(norm_w + i);
                v = make_float4(__fmul_rn(w.x, __fmul_rn(v.x, inv)), __fmul_rn(w.y, __fmul_rn(v.y, inv)),
                                __fmul_rn(w.z, __fmul_rn(v.z, inv)), __fmul_rn(w.w, __fmul_rn(v.w, inv)));
            }
            uint32_t h0, l0, h1, l1;
            split_f16x2(v.x, v.y, &h0, &l0);
            split_f16x2(v.z, v.w, &h1, &l1);
            *(uint2 *)(h + i) = make_uint2(h0, h1);
            if (lo) *(uint2 *)(l + i) = make_uint2(l0, l1);
        }
        return;
    }
    for (int64_t i = threadIdx.x; i < K; i += blockDim.x) {
        const float v = norm_w ? __fmul_rn(norm_w[i], __fmul_rn(xr[i], inv)) : xr[i];
        if (f16) {
            __half a = __float2half_rn(v);
            __half b = __float2half_rn(v - __half2float(a));
            h[i] = __half_as_ushort(a);
            if (lo) l[i] = __half_as_ushort(b);
        } else {
            __nv_bfloat16 a = __float2bfloat16_rn(v);
            __nv_bfloat16 b = __float2bfloat16_rn(v - __bfloat162float(a));
            h[i] = __bfloat16_as_ushort(a);
            if (lo) l[i] = __bfloat16_as_ushort(b);
        }
    }
}

cudaError_t launch_split(const float *x, int64_t ldx, const float *norm_w, double eps, int n, int64_t K, int f16,
                         uint16_t *hi, uint16_t *lo, cudaStream_t st)
{
    void *args[] = {(void *)&x, &ldx, (void *)&norm_w, &eps, &K, &f16, &hi, &lo};
    return launch_kernel((const void *)split_kernel, dim3(n), dim3(BLOCK), 0, st, args);
}

/* h = silu(gate) * up from gu = [gate | up] rows of 2 ff. */
__global__ void swiglu_kernel(const float *gu, int64_t ff, float *h)
{
    pdl_trigger();
    pdl_wait();
    const float *g = gu + blockIdx.x * 2 * ff, *u = g + ff;
    float *o = h + blockIdx.x * ff;
    for (int64_t i = threadIdx.x; i < ff; i += blockDim.x) {
        float a = g[i];
        o[i] = a / (1.0f + expf(-a)) * u[i];
    }
}

cudaError_t launch_swiglu(const float *gu, int n, int64_t ff, float *h, cudaStream_t st)
{
    void *args[] = {(void *)&gu, &ff, &h};
    return launch_kernel((const void *)swiglu_kernel, dim3(n), dim3(BLOCK), 0, st, args);
}

cudaError_t misc_setup(void) { return cudaSuccess; }
