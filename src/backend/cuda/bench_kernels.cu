/* Kernel-level measurements for bench/bench_cuda.c: GEMV bandwidth against a
 * device-to-device copy in the same run. Matrices are random and rotated
 * through several copies (well beyond the L2 cache), launches are replayed
 * from a CUDA graph and timed with events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"
#include "cuda_module.h"

__global__ void fill_random_words(uint32_t *p, int64_t n, uint64_t seed)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        uint64_t z = seed + (uint64_t)i * 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        p[i] = (uint32_t)(z ^ (z >> 31));
    }
}

/* bf16 values in [lo, lo + span) */
__global__ void fill_random_bf16(uint16_t *p, int64_t n, uint64_t seed, float lo, float span)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        uint64_t z = seed + (uint64_t)i * 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        float u = (float)((z >> 40) & 0xffffff) * (1.0f / 16777216.0f);
        p[i] = __bfloat16_as_ushort(__float2bfloat16_rn(lo + span * u));
    }
}

__global__ void fill_random_f32(float *p, int64_t n, uint64_t seed)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        uint64_t z = seed + (uint64_t)i * 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        p[i] = (float)((z >> 40) & 0xffffff) * (2.0f / 16777216.0f) - 1.0f;
    }
}

/* Spins for `cycles` SM clock cycles (one block per SM): with the elapsed
 * time this gives the SM clock the GPU runs at under load. */
__global__ void spin_kernel(long long cycles, int *sink)
{
    long long t0 = clock64();
    int v = 0;
    while (clock64() - t0 < cycles) v++;
    if (v == -1) *sink = v;
}

#define BCK(call, what)                                                        \
    do {                                                                       \
        cudaError_t e_ = (call);                                               \
        if (e_ != cudaSuccess) {                                               \
            snprintf(err, cap, "%s: %s", what, cudaGetErrorString(e_));       \
            st = e_ == cudaErrorMemoryAllocation ? UQ_ERR_NOMEM : UQ_ERR_IO;   \
            goto out;                                                          \
        }                                                                      \
    } while (0)

/* out: [0] GEMV GB/s (weights, scales and biases read), [1] copy GB/s (read +
 * written), [2] microseconds per GEMV, [3] largest |GEMV - reference| over
 * the largest |reference|, [4] copies of the matrix rotated through. */
int bench_gemv(int64_t rows, int64_t cols, int bits, int group, int batch, int variant, double *out, char *err,
               size_t cap)
{
    int st = UQ_OK;
    char *big = NULL, *copy_buf = NULL;
    float *x = NULL, *y = NULL, *yref = NULL, *hy = NULL, *hr = NULL;
    cudaStream_t s = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    cudaGraph_t g = NULL;
    cudaGraphExec_t ge = NULL;
    const int64_t wpr = (cols * bits + 31) / 32, gpr = cols / group;
    const size_t wbytes = (size_t)rows * wpr * 4, sbytes = (size_t)rows * gpr * 2;
    const size_t mbytes = (wbytes + 2 * sbytes + 255) / 256 * 256;
    int copies = (int)((1200ull << 20) / mbytes) + 1;
    if (copies < 4) copies = 4;
    const size_t copy_bytes = (size_t)1 << 30;
    const int reps = 20;
    float ms = 0;
    mm_args a;
    memset(&a, 0, sizeof a);
    BCK(gemv_setup(), "configuring the kernels");
    BCK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "creating a stream");
    BCK(cudaEventCreate(&e0), "creating an event");
    BCK(cudaEventCreate(&e1), "creating an event");
    BCK(cudaMalloc((void **)&big, mbytes * copies), "allocating the matrices");
    BCK(cudaMalloc((void **)&x, (size_t)8 * cols * 4), "allocating the input");
    BCK(cudaMalloc((void **)&y, (size_t)8 * rows * 4), "allocating the output");
    BCK(cudaMalloc((void **)&yref, (size_t)8 * rows * 4), "allocating the output");
    for (int c = 0; c < copies; c++) {
        char *m = big + (size_t)c * mbytes;
        fill_random_words<<<1024, 256, 0, s>>>((uint32_t *)m, (int64_t)(wbytes / 4), 1234 + c);
        fill_random_bf16<<<1024, 256, 0, s>>>((uint16_t *)(m + wbytes), rows * gpr, 99 + c, 0.001f, 0.01f);
        fill_random_bf16<<<1024, 256, 0, s>>>((uint16_t *)(m + wbytes + sbytes), rows * gpr, 7 + c, -0.08f, 0.04f);
    }
    fill_random_f32<<<1024, 256, 0, s>>>(x, (int64_t)8 * cols, 5);
    BCK(cudaGetLastError(), "filling the matrices");

    /* the copy: half the rotation buffer onto the other half, timed */
    copy_buf = big;
    {
        size_t half = mbytes * copies / 2;
        size_t nbytes = half < copy_bytes ? half : copy_bytes;
        BCK(cudaMemcpyAsync(copy_buf + half, copy_buf, nbytes, cudaMemcpyDeviceToDevice, s), "copying");
        BCK(cudaEventRecord(e0, s), "timing");
        for (int r = 0; r < reps; r++)
            BCK(cudaMemcpyAsync(copy_buf + half, copy_buf, nbytes, cudaMemcpyDeviceToDevice, s), "copying");
        BCK(cudaEventRecord(e1, s), "timing");
        BCK(cudaEventSynchronize(e1), "timing");
        BCK(cudaEventElapsedTime(&ms, e0, e1), "timing");
        out[1] = 2.0 * (double)nbytes * reps / (ms * 1e-3) / 1e9;
    }
    /* refill what the copy overwrote */
    for (int c = 0; c < copies; c++) {
        char *m = big + (size_t)c * mbytes;
        fill_random_words<<<1024, 256, 0, s>>>((uint32_t *)m, (int64_t)(wbytes / 4), 1234 + c);
        fill_random_bf16<<<1024, 256, 0, s>>>((uint16_t *)(m + wbytes), rows * gpr, 99 + c, 0.001f, 0.01f);
        fill_random_bf16<<<1024, 256, 0, s>>>((uint16_t *)(m + wbytes + sbytes), rows * gpr, 7 + c, -0.08f, 0.04f);
    }
    BCK(cudaGetLastError(), "filling the matrices");

    a.nseg = 1;
    a.fmt = bits;
    a.mode = MM_STORE;
    a.K = cols;
    a.n = batch;
    a.x = x;
    a.ldx = cols;
    a.y = y;
    a.ldy = rows;
    a.seg[0].rows = rows;
    a.seg[0].wpr = wpr;
    a.seg[0].scheme = UQ_SCHEME_AFFINE;
    a.seg[0].group = group;
    a.seg[0].sdt = UQ_BF16;
    a.seg[0].w = big;
    a.seg[0].s = big + wbytes;
    a.seg[0].b = big + wbytes + sbytes;

    /* correctness on copy 0 against the generic kernel */
    {
        mm_args r = a;
        r.y = yref;
        BCK(launch_matmul_generic(&r, s), "running the reference");
        BCK(launch_gemv_variant(&a, variant, s), "running the GEMV");
        BCK(cudaStreamSynchronize(s), "running the GEMV");
        size_t n = (size_t)batch * rows;
        hy = (float *)malloc(n * 4);
        hr = (float *)malloc(n * 4);
        if (!hy || !hr) {
            snprintf(err, cap, "out of memory");
            st = UQ_ERR_NOMEM;
            goto out;
        }
        BCK(cudaMemcpy(hy, y, n * 4, cudaMemcpyDeviceToHost), "copying");
        BCK(cudaMemcpy(hr, yref, n * 4, cudaMemcpyDeviceToHost), "copying");
        double md = 0, mr = 0;
        for (size_t i = 0; i < n; i++) {
            double d = hy[i] - hr[i];
            if (d < 0) d = -d;
            if (!(d <= md)) md = d;
            double v = hr[i] < 0 ? -hr[i] : hr[i];
            if (v > mr) mr = v;
        }
        out[3] = mr > 0 ? md / mr : md;
    }

    /* every copy once per graph replay */
    BCK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "capturing");
    for (int c = 0; c < copies; c++) {
        mm_args b = a;
        char *m = big + (size_t)c * mbytes;
        b.seg[0].w = m;
        b.seg[0].s = m + wbytes;
        b.seg[0].b = m + wbytes + sbytes;
        launch_gemv_variant(&b, variant, s);
    }
    BCK(cudaStreamEndCapture(s, &g), "capturing");
    BCK(cudaGraphInstantiate(&ge, g, 0), "instantiating the graph");
    BCK(cudaGraphLaunch(ge, s), "warming up");
    BCK(cudaGraphLaunch(ge, s), "warming up");
    BCK(cudaEventRecord(e0, s), "timing");
    for (int r = 0; r < reps; r++) BCK(cudaGraphLaunch(ge, s), "running the GEMV");
    BCK(cudaEventRecord(e1, s), "timing");
    BCK(cudaEventSynchronize(e1), "timing");
    BCK(cudaEventElapsedTime(&ms, e0, e1), "timing");
    {
        double per = ms * 1e-3 / ((double)reps * copies);
        out[0] = (double)(wbytes + 2 * sbytes) / per / 1e9;
        out[2] = per * 1e6;
        out[4] = copies;
    }
    {
        /* the SM clock right after the GEMVs */
        const long long cycles = 20000000;
        BCK(cudaEventRecord(e0, s), "timing");
        spin_kernel<<<132, 32, 0, s>>>(cycles, (int *)y);
        BCK(cudaEventRecord(e1, s), "timing");
        BCK(cudaEventSynchronize(e1), "timing");
        BCK(cudaEventElapsedTime(&ms, e0, e1), "timing");
        out[5] = (double)cycles / (ms * 1e-3) / 1e6;
    }
out:
    if (ge) cudaGraphExecDestroy(ge);
    if (g) cudaGraphDestroy(g);
    cudaFree(big);
    cudaFree(x);
    cudaFree(y);
    cudaFree(yref);
    free(hy);
    free(hr);
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (s) cudaStreamDestroy(s);
    return st;
}
