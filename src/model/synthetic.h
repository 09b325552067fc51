/* Synthetic Llama models with random weights, for tests and benchmarks that
 * need a model of a given shape (a 4 GB one, a Llama-2-7B-shaped one) without
 * shipping one. Written through the streaming writer, so any size works in
 * little memory. */
#ifndef UQ_MODEL_SYNTHETIC_H
#define UQ_MODEL_SYNTHETIC_H

#include "uquant.h"

/* Writes dir/config.json and dir/model.safetensors (dir must exist) for the
 * shape in c (hidden_size, intermediate_size, num_layers, num_heads,
 * num_kv_heads, head_dim, vocab_size, tie_word_embeddings, rope_theta,
 * rms_norm_eps), weights of dtype (F32 / F16 / BF16) drawn from an
 * approximately normal distribution with standard deviation 0.02 (norms 1.0),
 * deterministic for a seed. */
uq_status uq_make_synthetic_model(const char *dir, const uq_model_config *c, uq_dtype dtype, uint64_t seed);

/* Writes dir/config.json for the shape in c with weights of dtype. */
uq_status uq_synthetic_write_config(const char *dir, const uq_model_config *c, uq_dtype dtype);

/* A Llama config with the given shape and sane defaults for the rest. */
uq_model_config uq_synthetic_config(int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads,
                                    int64_t kv_heads, int64_t vocab, int tied);

#endif
