/* Matrix-vector speed of a backend on one large quantized weight (default
 * 4096 x 14336, affine, group 64, bf16 scales and biases: a Llama-3-8B MLP
 * projection): time per call and the effective bandwidth of the weight bytes
 * read (codes + scales + biases), next to the streaming-read bandwidth of a
 * buffer of the same size measured in the same run with the same threads,
 * and their ratio. One line per width (4, 8, 3, 2 bits by default). With
 * --n N > 1 it multiplies N input rows at once and also reports multiply-adds
 * per second (the prefill case).
 *
 * --backend cuda measures the GPU's decode kernels instead (through the CUDA
 * module, uq_cuda_bench_gemv): by default on 4096 x 4096, 4096 x 14336 and
 * 14336 x 4096 (or --rows x --cols), against a device-to-device copy timed
 * in the same run (bytes read + written); --n up to 8 tokens; --fp32 the
 * fp32 kernels in place of the integer-MMA one (4 bits, one token).
 *
 *   bench_gemv [--threads N] [--backend cpu|cpu-ref|cuda] [--kernels generic|avx2|avx512|neon]
 *              [--rows R] [--cols C] [--group G] [--bits LIST] [--n N] [--seconds S] [--json] [--fp32] */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_kernels.h"
#include "backend/cuda/cuda.h"
#include "core/threadpool.h"
#include "quant/quant.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------ streaming-read bandwidth */

typedef struct read_job {
    const uint64_t *buf;
    size_t words, per_task;
    uint64_t *sums;
} read_job;

static void read_task(void *arg, int64_t task, int thread)
{
    (void)thread;
    read_job *j = arg;
    size_t a = (size_t)task * j->per_task, b = a + j->per_task < j->words ? a + j->per_task : j->words;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = a;
    for (; i + 4 <= b; i += 4) {
        s0 += j->buf[i];
        s1 += j->buf[i + 1];
        s2 += j->buf[i + 2];
        s3 += j->buf[i + 3];
    }
    for (; i < b; i++) s0 += j->buf[i];
    j->sums[task] = s0 + s1 + s2 + s3;
}

/* A buffer of the weight's size, read in 1 MB tasks over the pool. */
static int read_init(read_job *j, size_t bytes)
{
    j->words = bytes / 8;
    j->per_task = (1u << 20) / 8;
    uint64_t *buf = malloc(j->words * 8);
    j->sums = calloc(j->words / j->per_task + 1, sizeof *j->sums);
    if (!buf || !j->sums) return 1;
    uint64_t s = 1;
    for (size_t i = 0; i < j->words; i++) buf[i] = next_rand(&s);
    j->buf = buf;
    return 0;
}

static double read_once(uq_pool *pool, read_job *j)
{
    double t0 = now();
    uq_pool_run(pool, (int64_t)((j->words + j->per_task - 1) / j->per_task), read_task, j);
    return now() - t0;
}

static void read_free(read_job *j)
{
    uint64_t total = 0;
    for (size_t i = 0; i < j->words / j->per_task + 1; i++) total += j->sums[i];
    if (total == 42) fprintf(stderr, " "); /* keeps the reads */
    free((void *)j->buf);
    free(j->sums);
}

/* ------------------------------------------------------------ the weight */

typedef struct bench_weight {
    uq_qparams qp;
    void *packed, *scales, *biases;
    size_t bytes; /* codes + scales + biases */
    uq_tensor tw, ts, tb;
    uq_weight w;
} bench_weight;

/* Random codes and scales: the kernels' speed does not depend on the values. */
static int make_weight(bench_weight *b, int bits, int group, int64_t rows, int64_t cols)
{
    memset(b, 0, sizeof *b);
    b->qp = (uq_qparams){UQ_SCHEME_AFFINE, bits, group, UQ_BF16};
    if (uq_qparams_check_shape(&b->qp, rows, cols) != UQ_OK) return 1;
    size_t pb = uq_quant_packed_bytes(&b->qp, rows, cols), sb = uq_quant_scales_bytes(&b->qp, rows, cols);
    b->packed = malloc(pb);
    b->scales = malloc(sb);
    b->biases = malloc(sb);
    if (!b->packed || !b->scales || !b->biases) return 1;
    uint64_t s = 7;
    for (size_t i = 0; i < pb / 8; i++) ((uint64_t *)b->packed)[i] = next_rand(&s);
    int64_t groups = cols / group;
    for (int64_t i = 0; i < rows * groups; i++) {
        uq_qstore(UQ_BF16, b->scales, (size_t)i, 0.01f * (float)(next_rand(&s) % 100 + 1) / 100.0f);
        uq_qstore(UQ_BF16, b->biases, (size_t)i, -0.08f * (float)(next_rand(&s) % 100 + 1) / 100.0f);
    }
    b->bytes = pb + 2 * sb;
    b->tw = (uq_tensor){.name = "w.weight", .dtype = UQ_U32, .ndim = 2,
                        .shape = {rows, (int64_t)uq_quant_words_per_row(&b->qp, cols)}, .data = b->packed};
    b->ts = (uq_tensor){.name = "w.scales", .dtype = UQ_BF16, .ndim = 2, .shape = {rows, groups}, .data = b->scales};
    b->tb = (uq_tensor){.name = "w.biases", .dtype = UQ_BF16, .ndim = 2, .shape = {rows, groups}, .data = b->biases};
    b->w = (uq_weight){.module = "w", .quantized = 1, .scheme = UQ_SCHEME_AFFINE, .bits = bits, .group_size = group,
                       .rows = rows, .cols = cols, .dtype = UQ_BF16, .weight = &b->tw, .scales = &b->ts,
                       .biases = &b->tb};
    return 0;
}

static void free_weight(bench_weight *b)
{
    free(b->packed);
    free(b->scales);
    free(b->biases);
}

/* ------------------------------------------------------------ the GPU */

/* GEMV bandwidth of the CUDA backend's kernels (weights + scales + biases
 * read) against a device-to-device copy in the same run; rows / cols 0: the
 * three default shapes. */
static int bench_cuda_gemv(int64_t rows, int64_t cols, int group, const char *bits_list, int64_t n, int variant, int json)
{
    char why[256];
    if (!uq_cuda_available(why, sizeof why)) {
        fprintf(stderr, "bench_gemv: the cuda backend is not available: %s\n", why);
        return 1;
    }
    static const int64_t shapes[3][2] = {{4096, 4096}, {4096, 14336}, {14336, 4096}};
    const int nshape = rows > 0 ? 1 : 3;
    json_t *jr = json_array();
    if (!json)
        printf("backend cuda (%s)%s, affine g%d bf16 scales, %lld input row%s\n%-5s %-14s %10s %10s %7s %9s %9s\n",
               uq_cuda_device_name(), variant >= 0 ? ", fp32 kernels" : "", group, (long long)n, n == 1 ? "" : "s",
               "bits", "rows x cols", "GEMV GB/s",
               "copy GB/s", "ratio", "us", "rel err");
    for (const char *p = bits_list; *p;) {
        int bits = atoi(p);
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
        for (int i = 0; i < nshape; i++) {
            const int64_t r = rows > 0 ? rows : shapes[i][0], c = rows > 0 ? cols : shapes[i][1];
            double out[6];
            if (uq_cuda_bench_gemv(r, c, bits, group, (int)n, variant, out) != UQ_OK) {
                fprintf(stderr, "bench_gemv: %d-bit [%lld x %lld]: %s\n", bits, (long long)r, (long long)c,
                        uq_last_error());
                json_decref(jr);
                return 1;
            }
            if (json) {
                json_t *o = json_object();
                json_object_set_new(o, "backend", json_string("cuda"));
                json_object_set_new(o, "device", json_string(uq_cuda_device_name()));
                json_object_set_new(o, "rows", json_integer(r));
                json_object_set_new(o, "cols", json_integer(c));
                json_object_set_new(o, "group_size", json_integer(group));
                json_object_set_new(o, "bits", json_integer(bits));
                json_object_set_new(o, "n", json_integer(n));
                json_object_set_new(o, "us_per_call", json_real(out[2]));
                json_object_set_new(o, "weight_gbs", json_real(out[0]));
                json_object_set_new(o, "copy_gbs", json_real(out[1]));
                json_object_set_new(o, "ratio", json_real(out[0] / out[1]));
                json_object_set_new(o, "rel_err", json_real(out[3]));
                json_array_append_new(jr, o);
            } else {
                printf("%-5d %5lld x %-6lld %10.0f %10.0f %6.1f%% %9.2f %9.1e\n", bits, (long long)r, (long long)c,
                       out[0], out[1], 100.0 * out[0] / out[1], out[2], out[3]);
                fflush(stdout);
            }
        }
    }
    if (json) {
        char *txt = json_dumps(jr, JSON_INDENT(2));
        printf("%s\n", txt);
        free(txt);
    }
    json_decref(jr);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_gemv [--threads N] [--backend cpu|cpu-ref|cuda] [--kernels generic|avx2|avx512|neon]\n"
            "                  [--rows R] [--cols C] [--group G] [--bits LIST] [--n N] [--seconds S] [--json]\n"
            "                  [--fp32] (cuda: the fp32 kernels, not the integer MMAs)\n");
}

int main(int argc, char **argv)
{
    int threads = 0, json = 0, group = 64, fp32 = 0;
    int64_t rows = 4096, cols = 14336, n = 1;
    int shape_given = 0;
    double seconds = 1.0;
    const char *backend = "cpu", *kernels = NULL, *bits_list = "4,8,3,2";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) json = 1;
        else if (strcmp(a, "--fp32") == 0) fp32 = 1;
        else if (!v) return usage(), 2;
        else if (strcmp(a, "--threads") == 0) threads = atoi(v), i++;
        else if (strcmp(a, "--backend") == 0) backend = v, i++;
        else if (strcmp(a, "--kernels") == 0) kernels = v, i++;
        else if (strcmp(a, "--rows") == 0) rows = atoll(v), i++, shape_given = 1;
        else if (strcmp(a, "--cols") == 0) cols = atoll(v), i++, shape_given = 1;
        else if (strcmp(a, "--group") == 0) group = atoi(v), i++;
        else if (strcmp(a, "--bits") == 0) bits_list = v, i++;
        else if (strcmp(a, "--n") == 0) n = atoll(v), i++;
        else if (strcmp(a, "--seconds") == 0) seconds = atof(v), i++;
        else return usage(), 2;
    }
    if (threads <= 0) threads = uq_cpu_count();
    if (rows < 1 || cols < 1 || n < 1 || seconds <= 0) return usage(), 2;
    if (strcmp(backend, "cuda") == 0) {
        if (n > 8) return usage(), 2;
        return bench_cuda_gemv(shape_given ? rows : 0, shape_given ? cols : 0, group, bits_list, n,
                               fp32 ? UQ_CUDA_GEMV_FP32 : -1, json);
    }
    const uq_backend_ops *ops = uq_backend_find(backend);
    if (!ops) {
        fprintf(stderr, "bench_gemv: unknown backend \"%s\"\n", backend);
        return 2;
    }
    if (kernels) {
        static const char *names[] = {"generic", "avx2", "avx512", "neon"};
        int l = -1;
        for (int k = 0; k < 4; k++)
            if (strcmp(kernels, names[k]) == 0) l = k;
        if (l < 0 || !uq_cpu_force_level(l)) {
            fprintf(stderr, "bench_gemv: kernels \"%s\" do not run here\n", kernels);
            return 2;
        }
    }
    uq_pool *pool;
    if (uq_pool_create(threads, &pool) != UQ_OK) return 1;
    uq_backend be = {.ops = ops, .pool = pool};
    if (ops->init(&be, cols) != UQ_OK) {
        fprintf(stderr, "bench_gemv: %s\n", uq_last_error());
        return 1;
    }
    const char *kname = uq_cpu_backend_kernels(&be);
    float *x = malloc((size_t)(n * cols) * sizeof *x), *y = malloc((size_t)(n * rows) * sizeof *y);
    uint64_t s = 3;
    for (int64_t i = 0; i < n * cols; i++) x[i] = (float)((int64_t)(next_rand(&s) % 2001) - 1000) / 1000.0f;

    json_t *jr = json_array();
    if (!json)
        printf("backend %s%s%s%s, %d threads, [%lld x %lld] affine g%d bf16 scales, %lld input row%s\n", backend,
               *kname ? " (" : "", kname, *kname ? ")" : "", threads, (long long)rows, (long long)cols, group,
               (long long)n, n == 1 ? "" : "s");
    for (const char *p = bits_list; *p;) {
        int bits = atoi(p);
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
        bench_weight bw;
        if (bits < 1 || bits > 8 || make_weight(&bw, bits, group, rows, cols)) {
            fprintf(stderr, "bench_gemv: cannot make a %d-bit [%lld x %lld] g%d weight\n", bits, (long long)rows,
                    (long long)cols, group);
            return 1;
        }
        /* matrix products and streaming reads alternate in 8 rounds, so both
         * see the same machine; medians of each */
        static double times[20000], rtimes[20000];
        int calls = 0, reads = 0;
        read_job rj;
        if (read_init(&rj, bw.bytes)) return 1;
        ops->matmul(&be, &bw.w, x, n, y); /* warm up */
        read_once(pool, &rj);
        for (int round = 0; round < 8; round++) {
            double t_end = now() + seconds / 16;
            for (int i = 0; calls < 20000 && (i < 2 || now() < t_end); i++) {
                double t0 = now();
                ops->matmul(&be, &bw.w, x, n, y);
                times[calls++] = now() - t0;
            }
            t_end = now() + seconds / 16;
            for (int i = 0; reads < 20000 && (i < 2 || now() < t_end); i++) rtimes[reads++] = read_once(pool, &rj);
        }
        read_free(&rj);
        qsort(times, (size_t)calls, sizeof *times, cmp_double);
        qsort(rtimes, (size_t)reads, sizeof *rtimes, cmp_double);
        double t = times[calls / 2], best = times[0], read_t = rtimes[reads / 2];
        double gbs = (double)bw.bytes / t / 1e9, read_gbs = (double)bw.bytes / read_t / 1e9;
        double gmacs = (double)rows * (double)cols * (double)n / t / 1e9;
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "backend", json_string(backend));
            json_object_set_new(o, "kernels", json_string(kname));
            json_object_set_new(o, "threads", json_integer(threads));
            json_object_set_new(o, "rows", json_integer(rows));
            json_object_set_new(o, "cols", json_integer(cols));
            json_object_set_new(o, "group_size", json_integer(group));
            json_object_set_new(o, "bits", json_integer(bits));
            json_object_set_new(o, "n", json_integer(n));
            json_object_set_new(o, "weight_bytes", json_integer((json_int_t)bw.bytes));
            json_object_set_new(o, "calls", json_integer(calls));
            json_object_set_new(o, "us_per_call", json_real(t * 1e6));
            json_object_set_new(o, "best_us_per_call", json_real(best * 1e6));
            json_object_set_new(o, "weight_gbs", json_real(gbs));
            json_object_set_new(o, "read_gbs", json_real(read_gbs));
            json_object_set_new(o, "ratio", json_real(gbs / read_gbs));
            json_object_set_new(o, "gmac_per_s", json_real(gmacs));
            json_array_append_new(jr, o);
        } else {
            printf("%d-bit: %9.1f us/call (best %9.1f), weights %6.1f MB at %6.2f GB/s, read %6.2f GB/s, "
                   "ratio %5.1f%%, %7.1f GMAC/s\n",
                   bits, t * 1e6, best * 1e6, (double)bw.bytes / 1e6, gbs, read_gbs, 100.0 * gbs / read_gbs, gmacs);
            fflush(stdout);
        }
        free_weight(&bw);
    }
    if (json) {
        char *txt = json_dumps(jr, JSON_INDENT(2));
        printf("%s\n", txt);
        free(txt);
    }
    json_decref(jr);
    ops->release(&be);
    uq_pool_free(pool);
    free(x);
    free(y);
    return 0;
}
