/* Quantization speed and memory: memcpy bandwidth as the yardstick, then
 * uq_quantize_tensor throughput (GB/s of source weights) on bench-28m's
 * weights and on a synthetic 4096 x 14336 bf16 matrix, dequantization
 * throughput, and optionally (--big) the peak RSS of uq_quantize_model on a
 * synthetic model of about 4 GB. See docs/benchmarks.md. */
#include "core/threadpool.h"
#include "io/path.h"
#include "model/synthetic.h"
#include "quant/quant.h"
#include "uquant.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef UQ_DEFAULT_SHARED_DIR
#define UQ_DEFAULT_SHARED_DIR "../shared"
#endif

#define SYN_ROWS 4096
#define SYN_COLS 14336
#define GROUP 64

static const int bit_widths[] = {4, 2, 3, 8};
#define N_WIDTHS (sizeof bit_widths / sizeof bit_widths[0])

typedef struct opts {
    int threads;       /* as given; 0 = one per CPU */
    int json;
    int big;
    const char *scratch;
    double min_time;   /* seconds each measurement repeats for, at least */
    int simd;          /* -1: the CPU's best */
} opts;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_quantize: %s: %s\n", what, uq_last_error());
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench_quantize: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    memset(p, 0, n); /* fault the pages in before anything is timed */
    return p;
}

/* ----------------------------------------------------------- timing */

typedef void (*work_fn)(void *arg);

/* Best time of fn over at least 3 runs and min_time seconds, after one
 * warm-up run. */
static double best_time(const opts *o, work_fn fn, void *arg)
{
    fn(arg);
    double best = 1e30, start = now();
    for (int runs = 0; runs < 3 || now() - start < o->min_time; runs++) {
        double t0 = now();
        fn(arg);
        double t = now() - t0;
        if (t < best) best = t;
    }
    return best;
}

typedef struct copy_job {
    void *dst;
    const void *src;
    size_t n;
} copy_job;

static void run_copy(void *arg)
{
    copy_job *c = arg;
    memcpy(c->dst, c->src, c->n);
}

/* ------------------------------------------------------ quantization */

/* One 2-D float tensor and its output buffers. */
typedef struct qtensor {
    uq_dtype dtype;
    const void *data;
    int64_t rows, cols;
    uint64_t nbytes;
    void *packed, *scales, *biases;
} qtensor;

typedef struct qset {
    qtensor *t;
    size_t n;
    uint64_t bytes;
    uq_qparams p;
    int threads;
} qset;

/* Buffers sized for the widest codes, so every width reuses them. */
static void qtensor_alloc(qtensor *t)
{
    uq_qparams p = {UQ_SCHEME_AFFINE, 8, GROUP, t->dtype};
    t->packed = xmalloc(uq_quant_packed_bytes(&p, t->rows, t->cols));
    t->scales = xmalloc(uq_quant_scales_bytes(&p, t->rows, t->cols));
    t->biases = xmalloc(uq_quant_biases_bytes(&p, t->rows, t->cols));
}

static void qtensor_free(qtensor *t)
{
    free(t->packed);
    free(t->scales);
    free(t->biases);
}

static void run_quantize(void *arg)
{
    qset *s = arg;
    for (size_t i = 0; i < s->n; i++) {
        qtensor *t = &s->t[i];
        uq_qparams p = s->p;
        p.scale_dtype = t->dtype;
        if (uq_quantize_tensor(&p, t->dtype, t->data, t->rows, t->cols, t->packed, t->scales,
                               t->biases, 0, s->threads) != UQ_OK)
            die("uq_quantize_tensor");
    }
}

typedef struct deq_job {
    const qtensor *t;
    uq_qparams p;
    float *out;
} deq_job;

static void run_dequantize(void *arg)
{
    deq_job *d = arg;
    if (uq_dequantize_qtensor(&d->p, d->t->rows, d->t->cols, d->t->packed, d->t->scales,
                              d->t->biases, d->out) != UQ_OK)
        die("uq_dequantize_qtensor");
}

/* ------------------------------------------------------------ output */

typedef struct result {
    char set[32];
    int bits;
    double seconds;
    double gbps;
} result;

#define MAX_RESULTS 16

typedef struct report {
    int threads, cpus;
    const char *simd;
    double copy_bytes, copy_gbps;
    result r[MAX_RESULTS];
    int n;
    const char *model_dir;
    int have_model;
    size_t model_tensors;
    double model_bytes;
    double deq_gbps;
    int big_done;
    double big_bytes, big_seconds, big_rss, big_bound, big_write_seconds;
} report;

static void add_result(report *rep, const char *set, int bits, double secs, double bytes)
{
    if (rep->n >= MAX_RESULTS) return;
    result *r = &rep->r[rep->n++];
    snprintf(r->set, sizeof r->set, "%s", set);
    r->bits = bits;
    r->seconds = secs;
    r->gbps = bytes / secs / 1e9;
}

static void bench_set(const opts *o, report *rep, qset *s, const char *name)
{
    for (size_t b = 0; b < N_WIDTHS; b++) {
        s->p = (uq_qparams){UQ_SCHEME_AFFINE, bit_widths[b], GROUP, UQ_BF16};
        double t = best_time(o, run_quantize, s);
        add_result(rep, name, bit_widths[b], t, (double)s->bytes);
        if (!o->json)
            printf("  affine %d-bit g%d: %7.2f GB/s  %5.2f x memcpy  (%.1f ms)\n", bit_widths[b],
                   GROUP, rep->r[rep->n - 1].gbps, rep->r[rep->n - 1].gbps / rep->copy_gbps,
                   1e3 * t);
    }
}

/* --------------------------------------------------------- synthetic data */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Roughly normal weights of standard deviation 0.02, as bf16. */
static uint16_t *synthetic_bf16(size_t n)
{
    uint16_t *w = xmalloc(n * 2);
    uint64_t s = 42;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = splitmix(&s);
        float sum = (float)(r & 0xffff) + (float)((r >> 16) & 0xffff) +
                    (float)((r >> 32) & 0xffff) + (float)(r >> 48);
        w[i] = uq_f32_to_bf16((sum - 131070.0f) * (0.02f / 37837.2f));
    }
    return w;
}

/* ------------------------------------------------------------ --big */

static void bench_big(const opts *o, report *rep)
{
    char dir[4096], src[4200], dst[4200];
    snprintf(dir, sizeof dir, "%s/uq-bench-XXXXXX", o->scratch);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "bench_quantize: cannot make a folder in %s: %s\n", o->scratch,
                strerror(errno));
        exit(1);
    }
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(dst, sizeof dst, "%s/out", dir);
    if (mkdir(src, 0755) != 0) {
        fprintf(stderr, "bench_quantize: %s: %s\n", src, strerror(errno));
        exit(1);
    }
    if (!o->json) printf("peak RSS: writing a synthetic model to %s ...\n", src);
    uq_model_config mc = uq_synthetic_config(4096, 11008, 8, 32, 32, 32000, 0);
    double t0 = now();
    if (uq_make_synthetic_model(src, &mc, UQ_BF16, 7) != UQ_OK) {
        uq_remove_tree(dir);
        die("uq_make_synthetic_model");
    }
    rep->big_write_seconds = now() - t0;

    uq_model_files *f;
    if (uq_files_open(src, &f) != UQ_OK) die("uq_files_open");
    uint64_t largest = 0, bytes = 0;
    for (size_t i = 0; i < uq_files_count(f); i++) {
        const uq_tensor *t = uq_files_tensor(f, i);
        if (t->numel > largest) largest = t->numel;
        bytes += t->nbytes;
    }
    uq_files_close(f);

    /* The child reports its time through a pipe; its peak RSS comes from wait4. */
    int fd[2];
    if (pipe(fd) != 0) {
        perror("pipe");
        exit(1);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        close(fd[0]);
        uq_quant_config c;
        uq_quant_config_init(&c);
        c.n_threads = o->threads;
        double c0 = now();
        uq_status st = uq_quantize_model(src, dst, &c, NULL);
        double secs = st == UQ_OK ? now() - c0 : -1.0;
        if (st != UQ_OK) fprintf(stderr, "bench_quantize: uq_quantize_model: %s\n", uq_last_error());
        if (write(fd[1], &secs, sizeof secs) != (ssize_t)sizeof secs) _exit(2);
        _exit(st == UQ_OK ? 0 : 1);
    }
    close(fd[1]);
    double secs = -1.0;
    if (read(fd[0], &secs, sizeof secs) != (ssize_t)sizeof secs) secs = -1.0;
    close(fd[0]);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) {
        perror("wait4");
        exit(1);
    }
    uq_remove_tree(dir);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || secs < 0) {
        fprintf(stderr, "bench_quantize: quantizing the synthetic model failed\n");
        exit(1);
    }
    rep->big_done = 1;
    rep->big_bytes = (double)bytes;
    rep->big_seconds = secs;
    rep->big_rss = (double)ru.ru_maxrss * 1024.0;
    rep->big_bound = 2.0 * (double)largest * 4.0 + 64.0 * 1048576.0;
    if (!o->json)
        printf("  uq_quantize_model, 4-bit g%d, %.2f GB bf16: %.2f s (%.2f GB/s), peak RSS %.0f MiB "
               "(bound 2 x largest tensor in f32 + 64 MiB = %.0f MiB)\n",
               GROUP, rep->big_bytes / 1e9, secs, rep->big_bytes / secs / 1e9,
               rep->big_rss / 1048576.0, rep->big_bound / 1048576.0);
}

/* -------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_quantize [--threads N] [--json] [--big] [--scratch DIR]\n"
            "                      [--min-time SECONDS] [--simd scalar|sse2|avx2]\n"
            "  --threads N     threads for quantization (default: one per CPU)\n"
            "  --json          print the results as one JSON object\n"
            "  --big           also quantize a synthetic ~4 GB model and report its peak RSS\n"
            "                  (writes ~4 GB under --scratch, removed afterwards)\n"
            "  --scratch DIR   folder for --big (default /tmp)\n"
            "  --min-time S    repeat each measurement for at least S seconds (default 1)\n"
            "  --simd L        force the kernel level (default: the CPU's best)\n"
            "The shared data folder is $UQ_SHARED_DIR (default %s).\n",
            UQ_DEFAULT_SHARED_DIR);
}

static void print_json(const report *rep)
{
    printf("{\"threads\": %d, \"cpus\": %d, \"simd\": \"%s\", ", rep->threads, rep->cpus,
           rep->simd);
    printf("\"memcpy\": {\"bytes\": %.0f, \"gbps\": %.3f}, ", rep->copy_bytes, rep->copy_gbps);
    printf("\"quantize\": [");
    for (int i = 0; i < rep->n; i++) {
        const result *r = &rep->r[i];
        printf("%s{\"set\": \"%s\", \"scheme\": \"affine\", \"bits\": %d, \"group_size\": %d, "
               "\"seconds\": %.6f, \"gbps\": %.3f, \"memcpy_ratio\": %.3f}",
               i ? ", " : "", r->set, r->bits, GROUP, r->seconds, r->gbps,
               r->gbps / rep->copy_gbps);
    }
    printf("], ");
    if (rep->have_model)
        printf("\"bench_28m\": {\"tensors\": %zu, \"bytes\": %.0f}, ", rep->model_tensors,
               rep->model_bytes);
    else
        printf("\"bench_28m\": null, ");
    printf("\"dequantize_4bit_gbps_f32\": %.3f, ", rep->deq_gbps);
    if (rep->big_done)
        printf("\"big\": {\"bytes\": %.0f, \"seconds\": %.3f, \"gbps\": %.3f, \"peak_rss\": %.0f, "
               "\"rss_bound\": %.0f}}\n",
               rep->big_bytes, rep->big_seconds, rep->big_bytes / rep->big_seconds / 1e9,
               rep->big_rss, rep->big_bound);
    else
        printf("\"big\": null}\n");
}

int main(int argc, char **argv)
{
    opts o = {0, 0, 0, "/tmp", 1.0, -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--threads") && i + 1 < argc)
            o.threads = atoi(argv[++i]);
        else if (!strcmp(a, "--json"))
            o.json = 1;
        else if (!strcmp(a, "--big"))
            o.big = 1;
        else if (!strcmp(a, "--scratch") && i + 1 < argc)
            o.scratch = argv[++i];
        else if (!strcmp(a, "--min-time") && i + 1 < argc)
            o.min_time = atof(argv[++i]);
        else if (!strcmp(a, "--simd") && i + 1 < argc) {
            const char *l = argv[++i];
            o.simd = !strcmp(l, "scalar") ? UQ_SIMD_SCALAR
                     : !strcmp(l, "sse2") ? UQ_SIMD_SSE2
                     : !strcmp(l, "avx2") ? UQ_SIMD_AVX2
                                          : -2;
            if (o.simd == -2) {
                usage(stderr);
                return 2;
            }
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.threads < 0 || o.min_time < 0) {
        usage(stderr);
        return 2;
    }

    report rep;
    memset(&rep, 0, sizeof rep);
    rep.cpus = uq_cpu_count();
    rep.threads = o.threads > 0 ? o.threads : rep.cpus;
    int level = o.simd >= 0 ? uq_quant_set_simd(o.simd) : uq_quant_simd();
    rep.simd = uq_quant_simd_name(level);
    if (o.simd >= 0 && level != o.simd)
        fprintf(stderr, "bench_quantize: this CPU lacks %s; using %s\n",
                uq_quant_simd_name(o.simd), rep.simd);
    if (!o.json)
        printf("bench_quantize: %d thread%s (%d CPUs), kernels %s\n", rep.threads,
               rep.threads == 1 ? "" : "s", rep.cpus, rep.simd);

    /* memcpy on a buffer the size of the synthetic matrix */
    size_t syn_n = (size_t)SYN_ROWS * SYN_COLS;
    uint16_t *syn = synthetic_bf16(syn_n);
    copy_job cj = {xmalloc(syn_n * 2), syn, syn_n * 2};
    double tc = best_time(&o, run_copy, &cj);
    free(cj.dst);
    rep.copy_bytes = (double)cj.n;
    rep.copy_gbps = (double)cj.n / tc / 1e9;
    if (!o.json)
        printf("memcpy, %.1f MB, 1 thread: %.2f GB/s\n", rep.copy_bytes / 1e6, rep.copy_gbps);

    /* (a) bench-28m */
    const char *shared = getenv("UQ_SHARED_DIR");
    if (!shared || !*shared) shared = UQ_DEFAULT_SHARED_DIR;
    static char model_dir[4096];
    snprintf(model_dir, sizeof model_dir, "%s/models/bench-28m", shared);
    rep.model_dir = model_dir;
    uq_model_files *files = NULL;
    if (!uq_path_is_dir(model_dir)) {
        if (!o.json) printf("bench-28m: skipped (%s not found; set UQ_SHARED_DIR)\n", model_dir);
    } else if (uq_files_open(model_dir, &files) != UQ_OK) {
        die(model_dir);
    } else {
        size_t n = uq_files_count(files);
        qset s = {xmalloc(n * sizeof(qtensor)), 0, 0, {0}, o.threads};
        for (size_t i = 0; i < n; i++) {
            const uq_tensor *t = uq_files_tensor(files, i);
            if (t->ndim != 2 || !uq_dtype_is_float(t->dtype) || t->shape[1] % GROUP != 0) continue;
            qtensor *q = &s.t[s.n++];
            *q = (qtensor){t->dtype, t->data, t->shape[0], t->shape[1], t->nbytes, 0, 0, 0};
            qtensor_alloc(q);
            s.bytes += t->nbytes;
        }
        rep.have_model = 1;
        rep.model_tensors = s.n;
        rep.model_bytes = (double)s.bytes;
        if (!o.json)
            printf("bench-28m, %zu weight tensors, %.1f MB:\n", s.n, (double)s.bytes / 1e6);
        bench_set(&o, &rep, &s, "bench-28m");
        for (size_t i = 0; i < s.n; i++) qtensor_free(&s.t[i]);
        free(s.t);
        uq_files_close(files);
    }

    /* (b) the synthetic matrix */
    qtensor st = {UQ_BF16, syn, SYN_ROWS, SYN_COLS, syn_n * 2, 0, 0, 0};
    qtensor_alloc(&st);
    qset ss = {&st, 1, syn_n * 2, {0}, o.threads};
    if (!o.json)
        printf("synthetic %d x %d bf16, %.1f MB:\n", SYN_ROWS, SYN_COLS, (double)ss.bytes / 1e6);
    bench_set(&o, &rep, &ss, "synthetic");

    /* dequantization of the synthetic matrix at 4 bits, one thread */
    ss.p = (uq_qparams){UQ_SCHEME_AFFINE, 4, GROUP, UQ_BF16};
    run_quantize(&ss);
    deq_job dj = {&st, ss.p, xmalloc(syn_n * sizeof(float))};
    double td = best_time(&o, run_dequantize, &dj);
    rep.deq_gbps = (double)syn_n * 4.0 / td / 1e9;
    if (!o.json)
        printf("dequantize 4-bit g%d, synthetic, 1 thread: %.2f GB/s of f32 output (%.1f ms)\n",
               GROUP, rep.deq_gbps, 1e3 * td);
    free(dj.out);
    qtensor_free(&st);
    free(syn);

    if (o.big) bench_big(&o, &rep);
    else if (!o.json)
        printf("peak RSS: skipped (--big quantizes a synthetic ~4 GB model)\n");

    if (o.json) print_json(&rep);
    return 0;
}
