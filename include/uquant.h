/*
 * uquant: quantize large language models to 1-8 bits and run them quantized.
 *
 * The one public header of libuquant. Conventions:
 *  - every fallible call returns a uq_status; UQ_OK is 0. On failure,
 *    uq_last_error() holds a message naming the file / tensor at fault
 *    (per thread, overwritten by the next failure on that thread);
 *  - objects are opaque handles created by *_open / *_create and released by
 *    the matching *_close / *_free, which accept NULL;
 *  - plain data (tensor views, configs) are public structs.
 */
#ifndef UQUANT_H
#define UQUANT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UQ_VERSION_MAJOR 0
#define UQ_VERSION_MINOR 1
#define UQ_VERSION_PATCH 0
#define UQ_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define UQ_API __attribute__((visibility("default")))
#else
#define UQ_API
#endif

/* ------------------------------------------------------------------ status */

typedef enum uq_status {
    UQ_OK = 0,
    UQ_ERR_IO,           /* open / read / write / mmap failed */
    UQ_ERR_NOMEM,        /* allocation failed */
    UQ_ERR_ARG,          /* invalid argument from the caller */
    UQ_ERR_TRUNCATED,    /* file shorter than its header says */
    UQ_ERR_JSON,         /* a JSON document that does not parse, or is not an object */
    UQ_ERR_FIELD,        /* a required field missing or of the wrong type */
    UQ_ERR_DTYPE,        /* unknown dtype name, or a dtype not usable here */
    UQ_ERR_SHAPE,        /* bad shape: negative, too many dims, product overflow, mismatch */
    UQ_ERR_OFFSETS,      /* data offsets out of range, overlapping or of the wrong size */
    UQ_ERR_DUPLICATE,    /* the same tensor name twice */
    UQ_ERR_PATH,         /* a path leaving the model folder */
    UQ_ERR_MISSING,      /* a file or tensor that should exist does not */
    UQ_ERR_UNSUPPORTED,  /* valid input this build cannot handle (architecture, bits...) */
    UQ_ERR_EXISTS,       /* output exists and overwriting was not asked for */
    UQ_ERR_NONFINITE,    /* NaN or Inf where finite values are required */
    UQ_ERR_CONFIG,       /* inconsistent configuration values */
    UQ_ERR_STATE,        /* call out of order (e.g. writing after finish) */
    UQ_ERR_CANCELLED,    /* stopped by uq_cancel() (e.g. on SIGINT) */
    UQ_STATUS_COUNT
} uq_status;

/* "UQ_ERR_DTYPE" etc. */
UQ_API const char *uq_status_name(uq_status s);
/* A one-line description of the status class. */
UQ_API const char *uq_status_string(uq_status s);
/* The message of the last failure on this thread ("" if none). */
UQ_API const char *uq_last_error(void);
UQ_API const char *uq_version(void);
/* Asks long-running calls (quantize, evaluate) to stop soon and return
 * UQ_ERR_CANCELLED, cleaning up what they wrote. Async-signal-safe: meant to
 * be called from a SIGINT handler. uq_cancel_reset() clears the request. */
UQ_API void uq_cancel(void);
UQ_API void uq_cancel_reset(void);
UQ_API int uq_cancel_requested(void);

/* ------------------------------------------------------------------ dtypes */

typedef enum uq_dtype {
    UQ_F64, UQ_F32, UQ_F16, UQ_BF16,
    UQ_I64, UQ_I32, UQ_I16, UQ_I8,
    UQ_U64, UQ_U32, UQ_U16, UQ_U8,
    UQ_BOOL, UQ_F8_E4M3, UQ_F8_E5M2,
    UQ_DTYPE_COUNT
} uq_dtype;

/* Safetensors spelling ("F32", "BF16", "F8_E4M3", ...). */
UQ_API const char *uq_dtype_name(uq_dtype t);
/* Parses a safetensors dtype name; UQ_ERR_DTYPE if unknown. */
UQ_API uq_status uq_dtype_parse(const char *name, uq_dtype *out);
UQ_API size_t uq_dtype_size(uq_dtype t);
/* 1 for the dtypes with arithmetic support (F32, F16, BF16). */
UQ_API int uq_dtype_is_float(uq_dtype t);

/* Conversions round to nearest even; NaN stays NaN (quiet), Inf stays Inf. */
UQ_API float uq_f16_to_f32(uint16_t h);
UQ_API uint16_t uq_f32_to_f16(float f);
UQ_API float uq_bf16_to_f32(uint16_t h);
UQ_API uint16_t uq_f32_to_bf16(float f);

/* Converts n elements of src (F32/F16/BF16, any alignment) to f32. */
UQ_API uq_status uq_to_f32(uq_dtype src_type, const void *src, float *dst, size_t n);
/* Converts n f32 values to dst_type (F32/F16/BF16, any alignment). */
UQ_API uq_status uq_from_f32(uq_dtype dst_type, const float *src, void *dst, size_t n);

/* ----------------------------------------------------------------- tensors */

#define UQ_MAX_DIMS 8

/* A view of one tensor inside a mapped file. data points into the mapping
 * (zero-copy) and is valid until the owning handle is closed; it may be
 * unaligned when the file's header length is not a multiple of 8. */
typedef struct uq_tensor {
    const char *name;
    uq_dtype dtype;
    int ndim;
    int64_t shape[UQ_MAX_DIMS];
    uint64_t numel;
    uint64_t nbytes;
    const void *data;
    int shard;           /* index of the shard holding it (0 for a single file) */
} uq_tensor;

/* ------------------------------------------------------ safetensors reading */

typedef struct uq_st_file uq_st_file;

/* Maps a .safetensors file and validates its header completely. */
UQ_API uq_status uq_st_open(const char *path, uq_st_file **out);
/* Same on a caller-owned buffer (not copied; must outlive the handle). */
UQ_API uq_status uq_st_open_memory(const void *buf, size_t len, const char *label,
                                   uq_st_file **out);
UQ_API void uq_st_close(uq_st_file *f);
/* Tensors in file order (ascending data offset). */
UQ_API size_t uq_st_count(const uq_st_file *f);
UQ_API const uq_tensor *uq_st_tensor(const uq_st_file *f, size_t i);
UQ_API const uq_tensor *uq_st_find(const uq_st_file *f, const char *name);
/* __metadata__ entries (string -> string). */
UQ_API size_t uq_st_metadata_count(const uq_st_file *f);
UQ_API void uq_st_metadata_at(const uq_st_file *f, size_t i, const char **key, const char **value);
UQ_API const char *uq_st_metadata(const uq_st_file *f, const char *key);
UQ_API uint64_t uq_st_file_size(const uq_st_file *f);
UQ_API uint64_t uq_st_header_size(const uq_st_file *f);

/* ------------------------------------------------ model folders (sharded) */

/* A Hugging Face style folder: model.safetensors, or shards listed by
 * model.safetensors.index.json; also accepts a single .safetensors path. */
typedef struct uq_model_files uq_model_files;

UQ_API uq_status uq_files_open(const char *path, uq_model_files **out);
UQ_API void uq_files_close(uq_model_files *m);
UQ_API size_t uq_files_count(const uq_model_files *m);
UQ_API const uq_tensor *uq_files_tensor(const uq_model_files *m, size_t i);
UQ_API const uq_tensor *uq_files_find(const uq_model_files *m, const char *name);
UQ_API size_t uq_files_shard_count(const uq_model_files *m);
UQ_API const uq_st_file *uq_files_shard(const uq_model_files *m, size_t i);
UQ_API const char *uq_files_shard_path(const uq_model_files *m, size_t i);
/* The folder (for a single file: the folder containing it). */
UQ_API const char *uq_files_dir(const uq_model_files *m);
/* Metadata value from the first shard holding the key, or NULL. */
UQ_API const char *uq_files_metadata(const uq_model_files *m, const char *key);

/* ------------------------------------------------------ safetensors writing */

/* Streaming writer. Declare every tensor first (uq_st_writer_add), then
 * uq_st_writer_begin lays out the shards and writes their headers; then each
 * tensor's data is written at its place (uq_st_writer_put, in any order, in
 * one piece or several), so the file is never assembled in memory. Files are
 * written under temporary names and renamed by uq_st_writer_finish, which
 * also checks every byte was written; uq_st_writer_free without finish
 * removes them. Tensors are laid out contiguously (the format allows no
 * gaps), larger element sizes first within a shard, so each tensor is
 * naturally aligned (the header is padded to a multiple of 8). */
typedef struct uq_st_writer uq_st_writer;

UQ_API uq_status uq_st_writer_create(uq_st_writer **out);
UQ_API void uq_st_writer_free(uq_st_writer *w);
UQ_API uq_status uq_st_writer_set_metadata(uq_st_writer *w, const char *key, const char *value);
UQ_API uq_status uq_st_writer_add(uq_st_writer *w, const char *name, uq_dtype dtype,
                                  int ndim, const int64_t *shape);
/* Writes into folder dir: "<base>.safetensors" when everything fits in
 * max_shard_bytes (0 = no limit), else "<base>-0000i-of-0000N.safetensors"
 * plus "<base>.safetensors.index.json". Tensors go to shards in the order
 * they were added. */
UQ_API uq_status uq_st_writer_begin(uq_st_writer *w, const char *dir, const char *base,
                                    uint64_t max_shard_bytes);
/* Writes nbytes of tensor `name` starting at byte `offset` of its data.
 * Thread-safe for distinct ranges. */
UQ_API uq_status uq_st_writer_put(uq_st_writer *w, const char *name, uint64_t offset,
                                  const void *data, size_t nbytes);
UQ_API uq_status uq_st_writer_finish(uq_st_writer *w);
UQ_API size_t uq_st_writer_shard_count(const uq_st_writer *w);
UQ_API uint64_t uq_st_writer_total_bytes(const uq_st_writer *w);

/* ------------------------------------------------------------ config.json */

typedef enum uq_rope_type {
    UQ_ROPE_DEFAULT = 0,
    UQ_ROPE_LLAMA3,
    UQ_ROPE_LINEAR,
    UQ_ROPE_OTHER        /* recorded but not runnable */
} uq_rope_type;

typedef struct uq_rope_scaling {
    uq_rope_type type;
    char type_name[32];
    double factor;
    double low_freq_factor;
    double high_freq_factor;
    int64_t original_max_position_embeddings;
} uq_rope_scaling;

#define UQ_MAX_EOS 8

typedef struct uq_model_config {
    char model_type[32];          /* "llama", "mistral", "qwen2", ... ("" if absent) */
    char architecture[64];        /* first of "architectures" ("" if absent) */
    int llama_family;             /* 1 if the forward pass supports it */
    int64_t hidden_size;
    int64_t intermediate_size;
    int64_t num_layers;
    int64_t num_heads;
    int64_t num_kv_heads;
    int64_t head_dim;             /* derived as hidden / heads when absent */
    int64_t vocab_size;
    int64_t max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;            /* from rope_theta or rope_parameters.rope_theta */
    uq_rope_scaling rope_scaling; /* type DEFAULT when absent */
    int tie_word_embeddings;
    int attention_bias;           /* q/k/v (and o for some) projections carry a bias */
    int mlp_bias;
    int64_t bos_token_id;         /* -1 if absent */
    int n_eos;
    int64_t eos_token_ids[UQ_MAX_EOS];
    char torch_dtype[16];         /* "bfloat16", "float32", ... ("" if absent) */
} uq_model_config;

/* Parses config.json text. Fields absent for non-Llama models are left 0;
 * llama_family says whether the model can be run. */
UQ_API uq_status uq_config_parse(const char *json, size_t len, const char *label,
                                 uq_model_config *out);
UQ_API uq_status uq_config_load(const char *path, uq_model_config *out);
/* UQ_OK if the config describes a model the forward pass can run, else
 * UQ_ERR_UNSUPPORTED with a message saying why. */
UQ_API uq_status uq_config_check_runnable(const uq_model_config *c);

/* ----------------------------------------------------------- quantization */

typedef enum uq_scheme {
    UQ_SCHEME_AFFINE = 0, /* MLX's affine group-wise (scales + biases); mlx-lm loads it */
    UQ_SCHEME_SYMMETRIC   /* quanto-style absmax int (scales only) */
} uq_scheme;

/* Fixed capacities of uq_quant_config's lists. */
#define UQ_MAX_RULES 64
#define UQ_MAX_PATTERN 128

/* One --layer-bits rule: modules whose path matches the glob `pattern`
 * (fnmatch, e.g. "model.layers.0.*") get `bits` and, when non-zero,
 * `group_size`. bits 0 leaves them in float. Later rules win. */
typedef struct uq_layer_rule {
    char pattern[UQ_MAX_PATTERN];
    int bits;
    int group_size;
} uq_layer_rule;

/* Mirrors the seeds' UnifiedQuantizationConfig. Initialise with
 * uq_quant_config_init; every field has a usable default. */
typedef struct uq_quant_config {
    int bits;                 /* default bits, 1..8 (default 4) */
    int group_size;           /* default 64; symmetric also accepts 0 = per output row */
    uq_scheme scheme;         /* default affine */
    uq_layer_rule layer_bits[UQ_MAX_RULES];
    int n_layer_bits;
    char skip_modules[UQ_MAX_RULES][UQ_MAX_PATTERN]; /* globs left in float */
    int n_skip_modules;
    int embedding_bits;       /* 0 = same as bits */
    int output_bits;          /* lm_head (the embedding when tied); 0 = same as bits */
    char recipe[32];          /* "" or mixed_2_6 / mixed_3_4 / mixed_3_6 / mixed_4_6 */
    int memory_efficient;     /* stream tensor by tensor (default 1) */
    int64_t chunk_size;       /* rows per streamed chunk; 0 = automatic */
    int n_threads;            /* 0 = one per online CPU */
    uint64_t max_shard_bytes; /* default 5 GB */
    int allow_nonfinite;      /* quantize tensors holding NaN / Inf instead of failing */
    int force;                /* replace an existing output folder */
    char backend[16];         /* where to quantize: "" / "auto", "cpu", "cpu-ref" (one thread), "cuda" */
    /* Called after each tensor (may be NULL). */
    void (*progress)(void *user, uint64_t bytes_done, uint64_t bytes_total, const char *tensor);
    void *progress_user;
} uq_quant_config;

UQ_API void uq_quant_config_init(uq_quant_config *c);
/* Reads a JSON file with the seeds' field names (bits / default_bits,
 * group_size, scheme, layer_bits {pattern: bits | {"bits", "group_size"}},
 * skip_modules, embedding_bits, output_bits, recipe, memory_efficient,
 * chunk_size) over the values already in c. Unknown fields are an error. */
UQ_API uq_status uq_quant_config_load(const char *path, uq_quant_config *c);
UQ_API uq_status uq_quant_config_parse(const char *json, size_t len, const char *label,
                                       uq_quant_config *c);
/* Checks ranges and the recipe name. */
UQ_API uq_status uq_quant_config_validate(const uq_quant_config *c);

/* What happened to one weight. */
typedef struct uq_quant_decision {
    char module[256];         /* module path, e.g. model.layers.0.mlp.down_proj */
    int quantized;            /* 0: left in float */
    uq_scheme scheme;
    int bits;
    int group_size;
    char note[160];           /* why it was left float or got another group size ("" if nothing to say) */
} uq_quant_decision;

typedef struct uq_quant_report {
    uq_quant_decision *decisions; /* one per 2-D weight considered */
    size_t n_decisions;
    size_t n_quantized, n_float;
    uint64_t params_total;        /* every element of every tensor */
    uint64_t params_quantized;
    uint64_t bytes_in;            /* tensor bytes read */
    uint64_t bytes_out;           /* tensor bytes written */
    double bits_per_weight;       /* of the quantized weights, scales and biases included */
    double seconds;
    size_t n_shards;
} uq_quant_report;

UQ_API void uq_quant_report_free(uq_quant_report *r);

/* Quantizes the model folder (or .safetensors file) src into the new folder
 * dst: config.json with the quantization recorded, model.safetensors (sharded
 * above max_shard_bytes), tokenizer and other non-weight files copied. The
 * output appears complete or not at all; src is never modified. report may
 * be NULL. */
UQ_API uq_status uq_quantize_model(const char *src, const char *dst, const uq_quant_config *c,
                                   uq_quant_report *report);

/* The same plan without writing anything: what each weight would get, the
 * bits per weight and the output size (the seeds' memory estimate). */
UQ_API uq_status uq_quantize_plan(const char *src, const uq_quant_config *c, uq_quant_report *report);

/* ------------------------------------------------------- model handles */

/* A model opened for reading: float or quantized, with its config. */
typedef struct uq_model uq_model;

/* One weight matrix as stored: float, or packed codes + scales (+ biases). */
typedef struct uq_weight {
    const char *module;       /* module path, e.g. model.layers.0.self_attn.q_proj */
    int quantized;
    uq_scheme scheme;
    int bits;
    int group_size;
    int64_t rows, cols;       /* logical [out, in] */
    uq_dtype dtype;           /* float weight's dtype, or the scales' dtype */
    const uq_tensor *weight;  /* float [rows, cols] or packed U32 [rows, words] */
    const uq_tensor *scales;  /* NULL when float */
    const uq_tensor *biases;  /* NULL when float or symmetric */
} uq_weight;

UQ_API uq_status uq_model_open(const char *path, uq_model **out);
UQ_API void uq_model_close(uq_model *m);
/* NULL when the folder has no config.json. */
UQ_API const uq_model_config *uq_model_get_config(const uq_model *m);
UQ_API const uq_model_files *uq_model_get_files(const uq_model *m);
UQ_API int uq_model_is_quantized(const uq_model *m);
/* Weights: 2-D matrices, float or quantized, in file order. */
UQ_API size_t uq_model_weight_count(const uq_model *m);
UQ_API const uq_weight *uq_model_weight(const uq_model *m, size_t i);
/* By module path ("model.layers.0.mlp.up_proj") or tensor name ("...up_proj.weight"). */
UQ_API const uq_weight *uq_model_find_weight(const uq_model *m, const char *name);
/* Dequantizes (or converts) a weight to f32: out holds rows * cols floats. */
UQ_API uq_status uq_dequantize_tensor(const uq_model *m, const char *name, float *out, size_t n);

/* ------------------------------------------------------------ tokenizer */

/* Hugging Face tokenizer.json tokenizers (BPE models: SentencePiece style with
 * byte fallback, and byte-level BPE as in GPT-2 / Llama 3 / Qwen).
 *
 * A loaded tokenizer is immutable: it may be shared by threads, each encoding
 * or decoding with its own buffers and stream states.
 *
 * Encoding follows the tokenizers library: added tokens are split out of the
 * raw text first, the rest goes through the normalizer, the pre-tokenizer and
 * the BPE model; add_special applies the post-processor template (BOS...).
 * Decoding runs the decoder chain (ByteLevel, Replace, ByteFallback, Fuse,
 * Strip, Metaspace) as a stream, so decoding id by id and decoding a whole
 * sequence give the same bytes, and every piece a stream returns is complete
 * UTF-8. */
typedef struct uq_tokenizer uq_tokenizer;

/* Loads a tokenizer.json file, or a model folder holding one. The
 * tokenizer_config.json beside it is read when present: bos_token /
 * eos_token name the BOS / EOS ids, and add_bos_token / add_eos_token, when
 * given, decide what add_special adds (as transformers' Llama tokenizers do). */
UQ_API uq_status uq_tokenizer_load(const char *path, uq_tokenizer **out);

/* Parses a tokenizer.json document from memory (not NUL-terminated; json is
 * copied). label names the source in error messages (NULL: "tokenizer.json"). */
UQ_API uq_status uq_tokenizer_parse(const char *json, size_t len, const char *label,
                             uq_tokenizer **out);

/* Applies a tokenizer_config.json document (the same rules as load). */
UQ_API uq_status uq_tokenizer_apply_config(uq_tokenizer *t, const char *json, size_t len,
                                    const char *label);

UQ_API void uq_tokenizer_free(uq_tokenizer *t);

/* Encodes len bytes of UTF-8 text (UQ_ERR_ARG if not valid UTF-8). Added and
 * special tokens written in the text ("<|endoftext|>") encode to their ids.
 * add_special applies the post-processor (e.g. the BOS of Llama models).
 * *ids is malloc'd (free() it; may be NULL when *n_ids is 0). */
UQ_API uq_status uq_tokenizer_encode(const uq_tokenizer *t, const char *text, size_t len,
                              int add_special, int32_t **ids, size_t *n_ids);

/* Decodes a whole sequence into malloc'd, NUL-terminated UTF-8 text.
 * skip_special drops special tokens (BOS, EOS...). Ids with no token are
 * skipped, as the tokenizers library does. */
UQ_API uq_status uq_tokenizer_decode(const uq_tokenizer *t, const int32_t *ids, size_t n,
                              int skip_special, char **text, size_t *len);

/* One more than the largest id (model vocabulary and added tokens). */
UQ_API int32_t uq_tokenizer_vocab_size(const uq_tokenizer *t);
/* BOS / EOS ids, or -1 when the tokenizer names none. */
UQ_API int32_t uq_tokenizer_bos_id(const uq_tokenizer *t);
UQ_API int32_t uq_tokenizer_eos_id(const uq_tokenizer *t);
/* Whether encoding with add_special puts the BOS id first. */
UQ_API int uq_tokenizer_adds_bos(const uq_tokenizer *t);
/* The token string of an id (not NUL-safe: *len gives its length; len may be
 * NULL), or NULL for an id with no token. */
UQ_API const char *uq_tokenizer_token(const uq_tokenizer *t, int32_t id, size_t *len);
/* The id of a token string (added tokens first), or -1. */
UQ_API int32_t uq_tokenizer_token_id(const uq_tokenizer *t, const char *s, size_t len);
/* Whether id is a special added token (what skip_special drops). */
UQ_API int uq_tokenizer_is_special(const uq_tokenizer *t, int32_t id);

/* ----------------------------------------------------- streamed decoding */

/* A decoder state taking one id at a time. Each call returns the bytes that
 * became final: a UTF-8 sequence split across tokens, or a run of byte
 * fallback tokens, is held back until complete, so the pieces are always
 * whole UTF-8 characters, and their concatenation followed by what
 * uq_tokstream_finish returns equals uq_tokenizer_decode of the same ids. */
typedef struct uq_tokstream uq_tokstream;

UQ_API uq_status uq_tokstream_new(const uq_tokenizer *t, int skip_special, uq_tokstream **out);
UQ_API void uq_tokstream_free(uq_tokstream *s);
/* Forgets everything pushed so far (a new sequence). */
UQ_API void uq_tokstream_reset(uq_tokstream *s);
/* Pushes one id; *text / *len receive the newly final bytes (possibly none),
 * valid until the next call on s. */
UQ_API uq_status uq_tokstream_push(uq_tokstream *s, int32_t id, const char **text, size_t *len);
/* Ends the sequence: returns what was held back (an incomplete UTF-8 tail
 * becomes U+FFFD) and resets the state. */
UQ_API uq_status uq_tokstream_finish(uq_tokstream *s, const char **text, size_t *len);

/* ------------------------------------------------------------- running */

/* Inference state over a model: the backend, worker threads and the KV caches
 * of n_seq sequences of up to n_ctx tokens each. */
typedef struct uq_context uq_context;

typedef struct uq_context_params {
    int n_ctx;            /* tokens per sequence (0: the model's max positions, at most 2048) */
    int n_seq;            /* sequences held at once (default 1) */
    int n_batch;          /* tokens per internal step (default 512) */
    int n_threads;        /* 0: one per online CPU */
    const char *backend;  /* "auto" (default), "cpu", "cpu-ref", "cuda" */
    int verbose;          /* print the backend choice and why to stderr */
} uq_context_params;

UQ_API void uq_context_params_init(uq_context_params *p);
/* The model must be runnable (uq_config_check_runnable) and outlive the context. */
UQ_API uq_status uq_context_create(const uq_model *m, const uq_context_params *p, uq_context **out);
UQ_API void uq_context_free(uq_context *c);
UQ_API const char *uq_context_backend_name(const uq_context *c);
UQ_API int uq_context_threads(const uq_context *c);
UQ_API int64_t uq_context_n_ctx(const uq_context *c);
UQ_API int64_t uq_context_vocab(const uq_context *c);

/* Runs n tokens after what sequence 0 already holds (its KV cache grows by n)
 * and writes the logits of every position, [n, vocab], to logits (or only
 * of the last position when logits is given to uq_forward_last). */
UQ_API uq_status uq_forward(uq_context *c, const int32_t *ids, size_t n, float *logits);
UQ_API uq_status uq_forward_last(uq_context *c, const int32_t *ids, size_t n, float *logits);
/* The same for sequence seq; all_logits 0: only the last position's. */
UQ_API uq_status uq_forward_seq(uq_context *c, int seq, const int32_t *ids, size_t n, float *logits,
                                int all_logits);
/* Tokens held by sequence seq; clearing (seq -1: all). */
UQ_API int64_t uq_context_pos(const uq_context *c, int seq);
UQ_API void uq_context_reset(uq_context *c, int seq);

typedef struct uq_sampler_params {
    float temperature;   /* 0: greedy */
    float top_p;         /* nucleus sampling (1: off) */
    int top_k;           /* 0: off */
    uint64_t seed;
} uq_sampler_params;

UQ_API void uq_sampler_params_init(uq_sampler_params *p);
/* Picks the next token from one row of logits (modified in place): the
 * first largest at temperature 0; else drawn from softmax(logits / T)
 * with one uniform from *rng_state, cut first to the top_k most likely
 * tokens (ties: the smaller id first), then to the shortest run of them
 * holding top_p of the probability; without a cut in vocabulary order. */
UQ_API int32_t uq_sample(float *logits, int64_t vocab, const uq_sampler_params *p, uint64_t *rng_state);

/* Generation on sequence 0: feeds the prompt, then samples up to max_new
 * tokens, stopping after an end-of-sequence token of the model; on_token
 * (may be NULL) sees each new token and stops early by returning non-zero.
 * The new tokens go to out (max_new entries) and their count to *n_out.
 * On the cuda backend each token is picked on the GPU, greedy or drawn:
 * the token uq_sample would pick from the same logits with the same
 * generator state (up to rounding at the edges of a draw), with no logits
 * copied back. */
UQ_API uq_status uq_generate(uq_context *c, const int32_t *prompt, size_t n_prompt, size_t max_new,
                             const uq_sampler_params *p, int (*on_token)(void *user, int32_t id),
                             void *user, int32_t *out, size_t *n_out);

/* ---------------------------------------------------------- evaluation */

typedef enum uq_ppl_protocol {
    /* non-overlapping windows of n_ctx tokens (a shorter tail dropped);
     * every position but the first of each window is scored */
    UQ_PPL_WINDOWS = 0,
    /* llama.cpp's perplexity tool: the first token of each window replaced
     * by BOS, only the second half of each window scored */
    UQ_PPL_LLAMACPP
} uq_ppl_protocol;

typedef struct uq_eval_params {
    int64_t n_ctx;            /* window length (default 512) */
    uq_ppl_protocol protocol;
    int64_t max_windows;      /* 0: all */
    int32_t bos_id;           /* for UQ_PPL_LLAMACPP (default: the model's bos_token_id) */
    void (*progress)(void *user, int64_t windows_done, int64_t windows_total);
    void *progress_user;
} uq_eval_params;

typedef struct uq_eval_result {
    double ppl;               /* exp(mean NLL) of the evaluated model */
    double nll;               /* mean negative log-likelihood (nats) */
    uint64_t scored;          /* positions scored */
    int64_t windows;
    uint64_t tokens;          /* tokens of the whole text */
    /* against a reference model (when one was given) */
    int have_reference;
    double ref_ppl;
    double kl_mean, kl_p99, kl_max; /* KL(reference || model) per position, nats */
    double top1;              /* fraction of positions where both argmax agree */
    double cosine;            /* mean cosine similarity of the logit vectors */
    double seconds;
} uq_eval_result;

UQ_API void uq_eval_params_init(uq_eval_params *p);
/* Perplexity of the model behind ctx over tokens (a text tokenized whole, no
 * BOS), window by window; with a reference context (same vocabulary), the
 * divergence figures too. Both contexts need n_ctx >= params->n_ctx and are
 * reset per window. */
UQ_API uq_status uq_evaluate(uq_context *ctx, uq_context *reference, const int32_t *tokens, size_t n,
                             const uq_eval_params *params, uq_eval_result *out);

/* ------------------------------------------------------------- memory */

#define UQ_MAX_GPUS 16

/* The seeds' BackendManager.get_memory_info(). */
typedef struct uq_memory_info {
    uint64_t ram_total, ram_available, ram_used;
    uint64_t process_rss, process_peak_rss;
    int n_gpus;
    struct {
        char name[64];     /* "cuda:0 NVIDIA H100 80GB HBM3" */
        uint64_t total, free_bytes;
    } gpu[UQ_MAX_GPUS];
} uq_memory_info;

UQ_API uq_status uq_memory_info_get(uq_memory_info *out);

/* What a model needs: its weights in float and under a quantization config
 * (NULL: float only), and the KV cache of one sequence of n_ctx tokens with
 * elements of kv_bytes each (4 on the CPU backends). */
typedef struct uq_footprint {
    uint64_t weights_float;       /* the tensors as stored in the source */
    uint64_t weights_quantized;   /* after quantization (== float without a config) */
    double bits_per_weight;       /* of the quantized weights, scales included */
    uint64_t kv_cache;
    int64_t n_ctx;
} uq_footprint;

UQ_API uq_status uq_model_footprint(const char *path, const uq_quant_config *qc, int64_t n_ctx, int kv_bytes,
                                    uq_footprint *out);

#ifdef __cplusplus
}
#endif
#endif /* UQUANT_H */
