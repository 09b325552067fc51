/* The CUDA backend's figures (see docs/cuda.md):
 *  (a) 4-bit GEMV bandwidth (weights + scales + biases read) against a
 *      device-to-device copy measured in the same run, on 4096 x 4096,
 *      4096 x 14336 and 14336 x 4096 matrices, batch 1;
 *  (b) a Llama-2-7B-shaped model with random weights (vocab 32000, hidden
 *      4096, 32 layers, FFN 11008, 32 heads), affine 4-bit group 64: decode
 *      tokens/s (128 tokens from an empty context, greedy on the device, and
 *      through uq_forward_last with the logits copied back; drawn with a
 *      temperature, top-k and top-p on the device through uq_generate and
 *      on the host by uq_sample; and 128 tokens
 *      after a 512-token prompt) and prefill tokens/s (512 tokens);
 *  (c) the time to quantize that model on the GPU from its bf16 safetensors
 *      (uq_quantize_model with backend "cuda"), optionally also on the CPU.
 *
 *   bench_cuda [--json] [--scratch DIR] [--no-model] [--no-gemv] [--variants] [--keep] [--layers N]
 *              [--prompt N] [--decode N] [--repeat N] [--cpu-quant]
 *
 * The bf16 model (13.5 GB) and its 4-bit copy (3.8 GB) are written under
 * --scratch (default /tmp) and removed at the end unless --keep. */
#include "backend/cuda/cuda.h"
#include "model/synthetic.h"
#include "uquant.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_cuda: %s: %s\n", what, uq_last_error());
    exit(1);
}

/* Reference figures on the same H100 (llama.cpp) and the goals. */
#define LLAMACPP_DECODE 340.0
#define LLAMACPP_PREFILL 10800.0
#define LLAMACPP_QUANT_S 15.0
#define GOAL_DECODE 680.0
#define GOAL_PREFILL 16000.0
#define GOAL_GEMV 0.80
/* the sampler of the drawn decode lines */
#define SAMPLE_T 0.8f
#define SAMPLE_K 40
#define SAMPLE_P 0.95f
/* option gemm_codes: the module's default */
#define GEMM_CODES -1

/* ------------------------------------------------- synthetic bf16 model */

typedef struct tensor_spec {
    char name[96];
    int64_t rows, cols; /* cols 0: a vector of rows ones */
} tensor_spec;

typedef struct gen_job {
    uq_st_writer *w;
    const tensor_spec *specs;
    int n;
    int next;
    pthread_mutex_t lock;
    uq_status st;
} gen_job;

/* Roughly normal weights of standard deviation 0.02, as uq_make_synthetic_model. */
static void *gen_thread(void *arg)
{
    gen_job *j = arg;
    const size_t chunk = 1 << 20;
    uint16_t *buf = malloc(chunk * sizeof *buf);
    for (;;) {
        pthread_mutex_lock(&j->lock);
        int i = j->next++;
        uq_status st = j->st;
        pthread_mutex_unlock(&j->lock);
        if (i >= j->n || st != UQ_OK || !buf) break;
        const tensor_spec *t = &j->specs[i];
        uint64_t total = (uint64_t)t->rows * (uint64_t)(t->cols ? t->cols : 1), s = 0x1234567ull * (uint64_t)(i + 1);
        for (uint64_t off = 0; off < total && st == UQ_OK; off += chunk) {
            size_t m = (size_t)(total - off < chunk ? total - off : chunk);
            for (size_t k = 0; k < m; k++) {
                float v = 1.0f;
                if (t->cols) {
                    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
                    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
                    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
                    z ^= z >> 31;
                    float sum = (float)(z & 0xffff) + (float)((z >> 16) & 0xffff) + (float)((z >> 32) & 0xffff) +
                                (float)(z >> 48);
                    v = (sum - 131070.0f) * (0.02f / 37837.2f);
                }
                buf[k] = uq_f32_to_bf16(v);
            }
            st = uq_st_writer_put(j->w, t->name, off * 2, buf, m * 2);
        }
        if (st != UQ_OK) {
            pthread_mutex_lock(&j->lock);
            j->st = st;
            pthread_mutex_unlock(&j->lock);
        }
    }
    free(buf);
    return NULL;
}

/* The model of config c in bf16, written by one thread per CPU. */
static void make_model(const char *dir, const uq_model_config *c)
{
    const int64_t h = c->hidden_size, q = c->num_heads * c->head_dim, kv = c->num_kv_heads * c->head_dim;
    const int64_t ff = c->intermediate_size;
    int cap = (int)(9 * c->num_layers + 3), n = 0;
    tensor_spec *sp = calloc((size_t)cap, sizeof *sp);
#define ADD(nm, r, cc) (snprintf(sp[n].name, sizeof sp[n].name, "%s", nm), sp[n].rows = (r), sp[n].cols = (cc), n++)
    ADD("model.embed_tokens.weight", c->vocab_size, h);
    for (int64_t l = 0; l < c->num_layers; l++) {
        char p[96];
#define L(s) (snprintf(p, sizeof p, "model.layers.%lld.%s", (long long)l, s), p)
        ADD(L("input_layernorm.weight"), h, 0);
        ADD(L("self_attn.q_proj.weight"), q, h);
        ADD(L("self_attn.k_proj.weight"), kv, h);
        ADD(L("self_attn.v_proj.weight"), kv, h);
        ADD(L("self_attn.o_proj.weight"), h, q);
        ADD(L("post_attention_layernorm.weight"), h, 0);
        ADD(L("mlp.gate_proj.weight"), ff, h);
        ADD(L("mlp.up_proj.weight"), ff, h);
        ADD(L("mlp.down_proj.weight"), h, ff);
#undef L
    }
    ADD("model.norm.weight", h, 0);
    if (!c->tie_word_embeddings) ADD("lm_head.weight", c->vocab_size, h);
#undef ADD
    gen_job j = {.specs = sp, .n = n, .st = UQ_OK};
    pthread_mutex_init(&j.lock, NULL);
    if (uq_st_writer_create(&j.w) != UQ_OK) die("writer");
    for (int i = 0; i < n; i++) {
        int64_t shape[2] = {sp[i].rows, sp[i].cols};
        if (uq_st_writer_add(j.w, sp[i].name, UQ_BF16, sp[i].cols ? 2 : 1, shape) != UQ_OK) die("writer");
    }
    if (uq_st_writer_set_metadata(j.w, "format", "pt") != UQ_OK) die("writer");
    if (uq_st_writer_begin(j.w, dir, "model", 0) != UQ_OK) die("writing the model");
    long nt = sysconf(_SC_NPROCESSORS_ONLN);
    if (nt < 1) nt = 1;
    if (nt > 64) nt = 64;
    pthread_t tid[64];
    for (long t = 0; t < nt; t++) pthread_create(&tid[t], NULL, gen_thread, &j);
    for (long t = 0; t < nt; t++) pthread_join(tid[t], NULL);
    if (j.st != UQ_OK) die("writing the model");
    if (uq_st_writer_finish(j.w) != UQ_OK) die("writing the model");
    uq_st_writer_free(j.w);
    pthread_mutex_destroy(&j.lock);
    free(sp);
    if (uq_synthetic_write_config(dir, c, UQ_BF16) != UQ_OK) {
        fprintf(stderr, "bench_cuda: %s\n", uq_last_error());
        exit(1);
    }
}

static int exists(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0;
}

static double quantize_model(const char *src, const char *dst, const char *backend)
{
    uq_quant_config qc;
    uq_quant_config_init(&qc);
    qc.bits = 4;
    qc.group_size = 64;
    qc.scheme = UQ_SCHEME_AFFINE;
    qc.force = 1;
    snprintf(qc.backend, sizeof qc.backend, "%s", backend);
    double t0 = now();
    if (uq_quantize_model(src, dst, &qc, NULL) != UQ_OK) die("quantize");
    return now() - t0;
}

/* ------------------------------------------------------------ main */

typedef struct gemv_row {
    int64_t rows, cols;
    double gbps, copy, us, err, copies, mhz;
    double fp32_ratio; /* the fp32 kernels' share of the copy, measured next */
} gemv_row;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Greedy decode tokens/s from an empty context starting at token first
 * (median of repeat runs of n tokens, td their scratch), sampled on the GPU. */
static double decode_greedy(uq_context *c, int32_t first, int n, double *td, int repeat)
{
    for (int r = 0; r < repeat; r++) {
        uq_context_reset(c, -1);
        int32_t tok = first;
        double t0 = now();
        for (int i = 0; i < n; i++)
            if (uq_cuda_forward_greedy(c, 0, &tok, 1, NULL, 0, &tok) != UQ_OK) die("decode");
        td[r] = now() - t0;
    }
    return n / median(td, repeat);
}

/* Decode tokens/s through uq_forward_last with the logits copied back and
 * the token picked by uq_sample on the host (sp NULL: greedy; seeded from
 * sp->seed as uq_generate is). */
static double decode_host(uq_context *c, int32_t first, int n, float *logits, int64_t vocab,
                          const uq_sampler_params *sp, double *td, int repeat)
{
    for (int r = 0; r < repeat; r++) {
        uq_context_reset(c, -1);
        uint64_t rng = sp ? sp->seed : 0;
        int32_t tok = first;
        double t0 = now();
        for (int i = 0; i < n; i++) {
            if (uq_forward_last(c, &tok, 1, logits) != UQ_OK) die("decode");
            tok = uq_sample(logits, vocab, sp, &rng);
        }
        td[r] = now() - t0;
    }
    return n / median(td, repeat);
}

/* Decode tokens/s through uq_generate (tokens picked on the device) with
 * sampler sp, gen holding n tokens. */
static double decode_generate(uq_context *c, const int32_t *prompt, int n, const uq_sampler_params *sp, int32_t *gen,
                              double *td, int repeat)
{
    for (int r = 0; r < repeat; r++) {
        uq_context_reset(c, -1);
        size_t ng = 0;
        double t0 = now();
        if (uq_generate(c, prompt, 1, (size_t)n, sp, NULL, NULL, gen, &ng) != UQ_OK) die("generate");
        td[r] = (now() - t0) / (double)(ng ? ng : 1);
    }
    return 1.0 / median(td, repeat);
}

/* Prefill tokens/s (median of repeat runs, tp their scratch) with option
 * key set to value, then back to restore. */
static double prefill_with(uq_context *c, const char *key, int64_t value, int64_t restore, const int32_t *ids,
                           int prompt, float *logits, double *tp, int repeat)
{
    if (uq_cuda_set_option(c, key, value) != UQ_OK) die("option");
    for (int r = 0; r < repeat; r++) {
        uq_context_reset(c, -1);
        double t0 = now();
        if (uq_forward_last(c, ids, (size_t)prompt, logits) != UQ_OK) die("prefill");
        tp[r] = now() - t0;
    }
    if (uq_cuda_set_option(c, key, restore) != UQ_OK) die("option");
    return prompt / median(tp, repeat);
}

int main(int argc, char **argv)
{
    int json = 0, no_model = 0, no_gemv = 0, variants = 0, keep = 0, layers = 32, prompt = 512, decode = 128, repeat = 3, cpu_quant = 0;
    const char *scratch = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--no-model")) no_model = 1;
        else if (!strcmp(argv[i], "--no-gemv")) no_gemv = 1;
        else if (!strcmp(argv[i], "--variants")) variants = 1;
        else if (!strcmp(argv[i], "--keep")) keep = 1;
        else if (!strcmp(argv[i], "--cpu-quant")) cpu_quant = 1;
        else if (!strcmp(argv[i], "--scratch") && i + 1 < argc) scratch = argv[++i];
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) prompt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--decode") && i + 1 < argc) decode = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: bench_cuda [--json] [--scratch DIR] [--no-model] [--no-gemv] [--variants] [--keep] [--layers N]\n"
                    "                  [--prompt N] [--decode N] [--repeat N] [--cpu-quant]\n");
            return 2;
        }
    }
    if (prompt < 1 || decode < 1 || repeat < 1 || layers < 1) {
        fprintf(stderr, "bench_cuda: bad sizes\n");
        return 2;
    }
    char why[256];
    if (!uq_cuda_available(why, sizeof why)) {
        fprintf(stderr, "bench_cuda: the cuda backend is not available: %s\n", why);
        return 1;
    }
    const char *device = uq_cuda_device_name();
    if (!json) printf("device: %s\n\n", device);

    /* (a) GEMV against copy */
    static const int64_t shapes[3][2] = {{4096, 4096}, {4096, 14336}, {14336, 4096}};
    gemv_row g[3];
    memset(g, 0, sizeof g);
    if (!json && !no_gemv)
        printf("(a) 4-bit GEMV (affine, group 64, bf16 scales), batch 1; last column: the fp32 kernels\n"
               "%-14s %10s %10s %7s %9s %9s %8s %7s\n",
               "rows x cols", "GEMV GB/s", "copy GB/s", "ratio", "us", "rel err", "SM MHz", "fp32");
    for (int i = 0; i < 3 && !no_gemv; i++) {
        double out[6];
        if (uq_cuda_bench_gemv(shapes[i][0], shapes[i][1], 4, 64, 1, -1, out) != UQ_OK) die("GEMV benchmark");
        g[i] = (gemv_row){shapes[i][0], shapes[i][1], out[0], out[1], out[2], out[3], out[4], out[5], 0};
        if (uq_cuda_bench_gemv(shapes[i][0], shapes[i][1], 4, 64, 1, UQ_CUDA_GEMV_FP32, out) != UQ_OK)
            die("GEMV benchmark");
        g[i].fp32_ratio = out[0] / out[1];
        if (!json)
            printf("%5lld x %-6lld %10.0f %10.0f %6.1f%% %9.2f %9.1e %8.0f %6.1f%%\n", (long long)g[i].rows,
                   (long long)g[i].cols, g[i].gbps, g[i].copy, 100.0 * g[i].gbps / g[i].copy, g[i].us, g[i].err,
                   g[i].mhz, 100.0 * g[i].fp32_ratio);
    }

    /* kernel variants: the fp32 register pipeline (rows per warp, chunks
     * per stage), the fp32 persistent kernel (rows per warp, "full": as many
     * blocks as fit), the fp32 kernels as chosen without the integer MMAs */
    static const char *vnames[UQ_CUDA_GEMV_FP32 + 1] = {"registers R4 U2",    "registers R4 U1", "persistent R2",
                                                        "persistent R2 full", "persistent R1",   "persistent R1 full",
                                                        "fp32 kernels"};
    for (int v = 0; v <= UQ_CUDA_GEMV_FP32 && variants && !json; v++) {
        printf("    variant %s:", vnames[v]);
        for (int i = 0; i < 3; i++) {
            double out[6];
            if (uq_cuda_bench_gemv(shapes[i][0], shapes[i][1], 4, 64, 1, v, out) != UQ_OK) {
                printf("  (does not fit)");
                continue;
            }
            printf("  %5.1f%% (%.2f us, err %.1e)", 100.0 * out[0] / out[1], out[2], out[3]);
        }
        printf("\n");
    }

    double t_gen = 0, t_qgpu = 0, t_qcpu = 0, prefill_tps = 0, prefill_inloop_tps = 0, prefill_expanded_tps = 0, prefill_mma_tps = 0, decode_tps = 0, decode_api_tps = 0, decode_gen_tps = 0,
           decode_drawn_tps = 0, decode_drawn_host_tps = 0, decode_deep_tps = 0, decode_fp32_tps = 0, decode_sep_tps = 0, bytes_bf16 = 0;
    if (!no_model) {
        uq_model_config cfg = uq_synthetic_config(4096, 11008, layers, 32, 32, 32000, 0);
        char bf16[4096], q4[4096], qcpu[4200];
        snprintf(bf16, sizeof bf16, "%s/uq-bench-cuda-7b-bf16", scratch);
        snprintf(q4, sizeof q4, "%s/uq-bench-cuda-7b-q4", scratch);
        snprintf(qcpu, sizeof qcpu, "%s-cpu", q4);
        char cfgp[4200];
        snprintf(cfgp, sizeof cfgp, "%s/config.json", bf16);
        if (!exists(cfgp)) {
            mkdir(bf16, 0755);
            double t0 = now();
            make_model(bf16, &cfg);
            t_gen = now() - t0;
        }
        uq_model_files *f;
        if (uq_files_open(bf16, &f) != UQ_OK) die("opening the bf16 model");
        for (size_t i = 0; i < uq_files_count(f); i++) bytes_bf16 += (double)uq_files_tensor(f, i)->nbytes;
        uq_files_close(f);
        /* (c) quantization: read once first so that both runs find it in the page cache */
        t_qgpu = quantize_model(bf16, q4, "cuda");
        t_qgpu = quantize_model(bf16, q4, "cuda");
        if (cpu_quant) {
            t_qcpu = quantize_model(bf16, qcpu, "cpu");
            char cmd[8500];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", qcpu);
            if (system(cmd) != 0) fprintf(stderr, "bench_cuda: could not remove %s\n", qcpu);
        }
        if (!json) {
            printf("\n(c) quantizing the %d-layer 7B-shaped model (%.1f GB bf16) to affine 4-bit g64\n", layers,
                   bytes_bf16 / 1e9);
            if (t_gen > 0) printf("    (writing the bf16 model took %.1f s)\n", t_gen);
            printf("    GPU: %.2f s (%.1f GB/s of bf16 read; llama.cpp's CPU quantizer: %.0f s, %.1fx)\n", t_qgpu,
                   bytes_bf16 / t_qgpu / 1e9, LLAMACPP_QUANT_S, LLAMACPP_QUANT_S / t_qgpu);
            if (cpu_quant) printf("    CPU (this library, all threads): %.2f s\n", t_qcpu);
        }

        /* (b) inference */
        uq_model *m;
        if (uq_model_open(q4, &m) != UQ_OK) die("opening the 4-bit model");
        uq_context_params cp;
        uq_context_params_init(&cp);
        cp.backend = "cuda";
        cp.n_ctx = prompt + decode + 8 > 1024 ? prompt + decode + 8 : 1024;
        cp.n_batch = prompt;
        uq_context *c;
        if (uq_context_create(m, &cp, &c) != UQ_OK) die("context");
        const int64_t vocab = uq_context_vocab(c);
        int32_t *ids = malloc((size_t)prompt * sizeof *ids);
        float *logits = malloc((size_t)vocab * sizeof *logits);
        uint64_t s = 12345;
        for (int i = 0; i < prompt; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            ids[i] = (int32_t)((s >> 33) % (uint64_t)vocab);
        }
        double *tp = malloc((size_t)repeat * sizeof *tp), *td = malloc((size_t)repeat * sizeof *td);
        /* warm-up: kernels loaded, graphs captured */
        if (uq_forward_last(c, ids, (size_t)prompt, logits) != UQ_OK) die("prefill");
        int32_t tok = ids[0];
        for (int i = 0; i < 4; i++)
            if (uq_cuda_forward_greedy(c, 0, &tok, 1, NULL, 0, &tok) != UQ_OK) die("decode");
        for (int r = 0; r < repeat; r++) {
            uq_context_reset(c, -1);
            double t0 = now();
            if (uq_forward_last(c, ids, (size_t)prompt, logits) != UQ_OK) die("prefill");
            tp[r] = now() - t0;
            /* decode after the prompt */
            tok = uq_sample(logits, vocab, NULL, NULL);
            t0 = now();
            for (int i = 0; i < decode; i++)
                if (uq_cuda_forward_greedy(c, 0, &tok, 1, NULL, 0, &tok) != UQ_OK) die("decode");
            td[r] = now() - t0;
        }
        prefill_tps = prompt / median(tp, repeat);
        decode_deep_tps = decode / median(td, repeat);
        /* prefill with the weights dequantized inside the GEMM's loop; with
         * each product's weights expanded to f16 first (on the second stream,
         * with one token tile for every dense GEMM, on the main stream) */
        prefill_inloop_tps = prefill_with(c, "gemm_dequant", 0, 1, ids, prompt, logits, tp, repeat);
        /* products on their codes (bit p of gemm_codes: 0 q/k/v, 1 o, 2
         * gate/up, 3 down), the others expanded a layer ahead */
        static const int code_masks[4] = {15, 5, 4, 1};
        double prefill_codes_tps[4];
        for (int i = 0; i < 4; i++)
            prefill_codes_tps[i] = prefill_with(c, "gemm_codes", code_masks[i], GEMM_CODES, ids, prompt, logits, tp, repeat);
        if (uq_cuda_set_option(c, "gemm_codes", 0) != UQ_OK) die("option");
        prefill_expanded_tps = prefill_with(c, "gemm_pipe", 1, 1, ids, prompt, logits, tp, repeat);
        /* other tiles of the warpgroup kernel: 128 x 128 with 4 stages, 128 x 256 */
        const double prefill_wgcfg_tps[2] = {prefill_with(c, "gemm_wg_cfg", 0, 1, ids, prompt, logits, tp, repeat),
                                             prefill_with(c, "gemm_wg_cfg", 2, 1, ids, prompt, logits, tp, repeat)};
        /* the dense products on mma.sync instead of the warpgroup MMAs */
        prefill_mma_tps = prefill_with(c, "gemm_wgmma", 0, 1, ids, prompt, logits, tp, repeat);
        if (uq_cuda_set_option(c, "gemm_wgmma", 0) != UQ_OK) die("option");
        const double prefill_bn_tps[2] = {prefill_with(c, "gemm_bn", 128, 0, ids, prompt, logits, tp, repeat),
                                          prefill_with(c, "gemm_bn", 64, 0, ids, prompt, logits, tp, repeat)};
        if (uq_cuda_set_option(c, "gemm_wgmma", 1) != UQ_OK) die("option");
        const double prefill_nopipe_tps = prefill_with(c, "gemm_pipe", 0, 1, ids, prompt, logits, tp, repeat);
        if (uq_cuda_set_option(c, "gemm_codes", GEMM_CODES) != UQ_OK) die("option");
        decode_tps = decode_greedy(c, ids[0], decode, td, repeat);
        decode_api_tps = decode_host(c, ids[0], decode, logits, vocab, NULL, td, repeat);
        /* uq_generate, greedy and drawn: the tokens picked on the device;
         * then the same draws by uq_sample on the host from copied logits */
        {
            uq_sampler_params greedy, drawn;
            uq_sampler_params_init(&greedy);
            drawn = greedy;
            drawn.temperature = SAMPLE_T;
            drawn.top_k = SAMPLE_K;
            drawn.top_p = SAMPLE_P;
            int32_t *gen = malloc((size_t)decode * sizeof(int32_t));
            if (!gen) die("out of memory");
            decode_gen_tps = decode_generate(c, ids, decode, &greedy, gen, td, repeat);
            decode_drawn_tps = decode_generate(c, ids, decode, &drawn, gen, td, repeat);
            decode_drawn_host_tps = decode_host(c, ids[0], decode, logits, vocab, &drawn, td, repeat);
            free(gen);
        }
        /* the same without dependent launches and without graphs, for comparison */
        if (uq_cuda_set_option(c, "gemv_mma", 0) != UQ_OK) die("option");
        decode_fp32_tps = decode_greedy(c, ids[0], decode, td, repeat);
        if (uq_cuda_set_option(c, "gemv_mma", 1) != UQ_OK) die("option");
        /* the decode attention in its own kernel instead of the O product's GEMV */
        if (uq_cuda_set_option(c, "attn_gemv", 0) != UQ_OK) die("option");
        decode_sep_tps = decode_greedy(c, ids[0], decode, td, repeat);
        if (uq_cuda_set_option(c, "attn_gemv", 1) != UQ_OK) die("option");
        double decode_nopdl_tps = 0, decode_nograph_tps = 0;
        for (int pass = 0; pass < 2; pass++) {
            if (uq_cuda_set_option(c, pass == 0 ? "pdl" : "graphs", 0) != UQ_OK) die("option");
            *(pass == 0 ? &decode_nopdl_tps : &decode_nograph_tps) = decode_greedy(c, ids[0], decode, td, repeat);
        }
        if (uq_cuda_set_option(c, "pdl", 1) != UQ_OK || uq_cuda_set_option(c, "graphs", 1) != UQ_OK) die("option");
        if (!json) {
            printf("\n(b) the model on the GPU, affine 4-bit g64 (median of %d runs)\n", repeat);
            printf("    decode, %d tokens from an empty context:    %8.1f tok/s (goal %.0f: %.2fx; llama.cpp %.0f: "
                   "%.2fx)\n",
                   decode, decode_tps, GOAL_DECODE, decode_tps / GOAL_DECODE, LLAMACPP_DECODE,
                   decode_tps / LLAMACPP_DECODE);
            printf("    decode, same through uq_forward_last + logits: %8.1f tok/s\n", decode_api_tps);
            printf("    decode, through uq_generate (greedy):          %8.1f tok/s\n", decode_gen_tps);
            printf("    decode, through uq_generate (T %.1f, top-k %d, top-p %.2f): %8.1f tok/s; drawn by uq_sample on the "
                   "host: %.1f tok/s\n",
                   SAMPLE_T, SAMPLE_K, SAMPLE_P, decode_drawn_tps, decode_drawn_host_tps);
            printf("    decode, with the fp32 GEMV kernels:           %8.1f tok/s\n", decode_fp32_tps);
            printf("    decode, attention in its own kernel:          %8.1f tok/s\n", decode_sep_tps);
            printf("    decode, without dependent launches:           %8.1f tok/s\n", decode_nopdl_tps);
            printf("    decode, without them and without CUDA graphs: %8.1f tok/s\n", decode_nograph_tps);
            printf("    decode, %d tokens after %d prompt tokens:   %8.1f tok/s\n", decode, prompt, decode_deep_tps);
            printf("    prefill, %d tokens:                          %8.0f tok/s (goal %.0f: %.2fx; llama.cpp %.0f: "
                   "%.2fx)\n",
                   prompt, prefill_tps, GOAL_PREFILL, prefill_tps / GOAL_PREFILL, LLAMACPP_PREFILL,
                   prefill_tps / LLAMACPP_PREFILL);
            printf("    prefill, dequantizing inside the GEMM loop:   %8.0f tok/s\n", prefill_inloop_tps);
            printf("    prefill, every product on its 4-bit codes:     %8.0f tok/s\n", prefill_codes_tps[0]);
            printf("    prefill, on codes q/k/v + gate/up, gate/up, q/k/v (the rest expanded): %.0f, %.0f, %.0f tok/s\n",
                   prefill_codes_tps[1], prefill_codes_tps[2], prefill_codes_tps[3]);
            printf("    prefill, weights expanded to f16 first:        %8.0f tok/s\n", prefill_expanded_tps);
            printf("      the same, wgmma 128 x 128 4 stages / 128 x 256: %5.0f / %.0f tok/s\n", prefill_wgcfg_tps[0],
                   prefill_wgcfg_tps[1]);
            printf("      the same, on mma.sync instead of wgmma:     %8.0f tok/s\n", prefill_mma_tps);
            printf("      the same on mma.sync, tiles of 128 / 64 tokens: %5.0f / %.0f tok/s\n", prefill_bn_tps[0],
                   prefill_bn_tps[1]);
            printf("      the same, expanded on the main stream:       %8.0f tok/s\n", prefill_nopipe_tps);
        }
        free(tp);
        free(td);
        free(ids);
        free(logits);
        uq_context_free(c);
        uq_model_close(m);
        if (!keep) {
            char cmd[8500];
            snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", bf16, q4);
            if (system(cmd) != 0) fprintf(stderr, "bench_cuda: could not remove the models\n");
        }
    }

    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "device", json_string(device));
        json_t *ga = json_array();
        for (int i = 0; i < 3; i++) {
            json_t *r = json_object();
            json_object_set_new(r, "rows", json_integer(g[i].rows));
            json_object_set_new(r, "cols", json_integer(g[i].cols));
            json_object_set_new(r, "gemv_gbps", json_real(g[i].gbps));
            json_object_set_new(r, "copy_gbps", json_real(g[i].copy));
            json_object_set_new(r, "ratio", json_real(g[i].gbps / g[i].copy));
            json_object_set_new(r, "us", json_real(g[i].us));
            json_object_set_new(r, "rel_err", json_real(g[i].err));
            json_object_set_new(r, "sm_mhz", json_real(g[i].mhz));
            json_object_set_new(r, "fp32_kernels_ratio", json_real(g[i].fp32_ratio));
            json_array_append_new(ga, r);
        }
        json_object_set_new(o, "gemv_4bit_batch1", ga);
        if (!no_model) {
            json_t *mo = json_object();
            json_object_set_new(mo, "layers", json_integer(layers));
            json_object_set_new(mo, "bf16_bytes", json_real(bytes_bf16));
            json_object_set_new(mo, "quantize_gpu_s", json_real(t_qgpu));
            if (cpu_quant) json_object_set_new(mo, "quantize_cpu_s", json_real(t_qcpu));
            json_object_set_new(mo, "decode_tps", json_real(decode_tps));
            json_object_set_new(mo, "decode_api_tps", json_real(decode_api_tps));
            json_object_set_new(mo, "decode_generate_tps", json_real(decode_gen_tps));
            json_object_set_new(mo, "decode_generate_drawn_tps", json_real(decode_drawn_tps));
            json_object_set_new(mo, "decode_host_drawn_tps", json_real(decode_drawn_host_tps));
            json_object_set_new(mo, "decode_fp32_gemv_tps", json_real(decode_fp32_tps));
            json_object_set_new(mo, "decode_attention_kernel_tps", json_real(decode_sep_tps));
            json_object_set_new(mo, "decode_after_prompt_tps", json_real(decode_deep_tps));
            json_object_set_new(mo, "prefill_tps", json_real(prefill_tps));
            json_object_set_new(mo, "prefill_inloop_tps", json_real(prefill_inloop_tps));
            json_object_set_new(mo, "prefill_expanded_tps", json_real(prefill_expanded_tps));
            json_object_set_new(mo, "prefill_mma_sync_tps", json_real(prefill_mma_tps));
            json_object_set_new(mo, "prompt", json_integer(prompt));
            json_object_set_new(mo, "decode", json_integer(decode));
            json_object_set_new(o, "llama2_7b_shape_q4", mo);
        }
        char *txt = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", txt);
        free(txt);
        json_decref(o);
    }
    return 0;
}
