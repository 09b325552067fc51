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
    UQ_STATUS_COUNT
} uq_status;

/* "UQ_ERR_DTYPE" etc. */
UQ_API const char *uq_status_name(uq_status s);
/* A one-line description of the status class. */
UQ_API const char *uq_status_string(uq_status s);
/* The message of the last failure on this thread ("" if none). */
UQ_API const char *uq_last_error(void);
UQ_API const char *uq_version(void);

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

#ifdef __cplusplus
}
#endif
#endif /* UQUANT_H */
