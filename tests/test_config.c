/* config.json parsing for Llama-family models and its error paths. */
#include "testutil.h"

#include <string.h>

static uq_status parse(const char *json, uq_model_config *c)
{
    return uq_config_parse(json, strlen(json), "config.json", c);
}

static void test_shared_configs(void **state)
{
    (void)state;
    char p[4096];
    uq_model_config c;
    if (!tu_shared_has("models/stories260K/config.json")) skip();
    assert_int_equal(uq_config_load(tu_shared_path("models/stories260K/config.json", p, sizeof p), &c), UQ_OK);
    assert_string_equal(c.architecture, "LlamaForCausalLM");
    assert_true(c.llama_family);
    assert_int_equal(c.hidden_size, 64);
    assert_int_equal(c.intermediate_size, 172);
    assert_int_equal(c.num_layers, 5);
    assert_int_equal(c.num_heads, 8);
    assert_int_equal(c.num_kv_heads, 4);
    assert_int_equal(c.head_dim, 8);
    assert_int_equal(c.vocab_size, 512);
    assert_true(c.rms_norm_eps == 1e-5);
    assert_true(c.rope_theta == 10000.0);
    assert_int_equal(c.rope_scaling.type, UQ_ROPE_DEFAULT);
    assert_true(c.tie_word_embeddings);
    assert_int_equal(c.bos_token_id, 1);
    assert_int_equal(c.n_eos, 1);
    assert_int_equal(c.eos_token_ids[0], 2);
    assert_int_equal(uq_config_check_runnable(&c), UQ_OK);

    if (!tu_shared_has("models/bench-28m/config.json")) skip();
    assert_int_equal(uq_config_load(tu_shared_path("models/bench-28m/config.json", p, sizeof p), &c), UQ_OK);
    assert_int_equal(c.hidden_size, 512);
    assert_int_equal(c.num_layers, 8);
    assert_int_equal(c.vocab_size, 8192);
    assert_true(c.rope_theta == 10000.0); /* from rope_parameters */
    assert_string_equal(c.torch_dtype, "bfloat16");
    assert_int_equal(c.bos_token_id, 0);
    assert_int_equal(uq_config_check_runnable(&c), UQ_OK);
}

static void test_forms(void **state)
{
    (void)state;
    uq_model_config c;
    /* head_dim derived, num_key_value_heads defaults to heads, rope_theta top level */
    assert_int_equal(parse("{\"model_type\": \"mistral\", \"hidden_size\": 4096, \"num_attention_heads\": 32,"
                           " \"num_hidden_layers\": 2, \"intermediate_size\": 14336, \"vocab_size\": 32000,"
                           " \"rope_theta\": 1000000.0, \"eos_token_id\": [2, 7]}", &c),
                     UQ_OK);
    assert_true(c.llama_family);
    assert_int_equal(c.head_dim, 128);
    assert_int_equal(c.num_kv_heads, 32);
    assert_true(c.rope_theta == 1e6);
    assert_int_equal(c.n_eos, 2);
    assert_int_equal(c.eos_token_ids[1], 7);
    assert_int_equal(c.bos_token_id, -1);
    assert_int_equal(uq_config_check_runnable(&c), UQ_OK);
    /* llama3 rope scaling */
    assert_int_equal(parse("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 2048,"
                           " \"num_attention_heads\": 32, \"num_key_value_heads\": 8, \"num_hidden_layers\": 16,"
                           " \"intermediate_size\": 8192, \"vocab_size\": 128256, \"rope_theta\": 500000.0,"
                           " \"rope_scaling\": {\"factor\": 32.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
                           " \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}}",
                           &c),
                     UQ_OK);
    assert_int_equal(c.rope_scaling.type, UQ_ROPE_LLAMA3);
    assert_true(c.rope_scaling.factor == 32.0);
    assert_int_equal(c.rope_scaling.original_max_position_embeddings, 8192);
    assert_int_equal(uq_config_check_runnable(&c), UQ_OK);
    /* the newer rope_parameters form carrying scaling too */
    assert_int_equal(parse("{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 4,"
                           " \"num_hidden_layers\": 1, \"intermediate_size\": 128, \"vocab_size\": 100,"
                           " \"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"llama3\", \"factor\": 8.0,"
                           " \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}}",
                           &c),
                     UQ_OK);
    assert_true(c.rope_theta == 500000.0);
    assert_int_equal(c.rope_scaling.type, UQ_ROPE_LLAMA3);
    /* qwen2: q/k/v biases implied */
    assert_int_equal(parse("{\"model_type\": \"qwen2\", \"hidden_size\": 896, \"num_attention_heads\": 14,"
                           " \"num_key_value_heads\": 2, \"num_hidden_layers\": 24, \"intermediate_size\": 4864,"
                           " \"vocab_size\": 151936, \"tie_word_embeddings\": true}", &c),
                     UQ_OK);
    assert_true(c.attention_bias);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(uq_config_check_runnable(&c), UQ_OK);
}

static void test_unknown_arch(void **state)
{
    (void)state;
    uq_model_config c;
    assert_int_equal(parse("{\"architectures\": [\"BertModel\"], \"model_type\": \"bert\", \"hidden_size\": 768}", &c),
                     UQ_OK);
    assert_false(c.llama_family);
    assert_int_equal(uq_config_check_runnable(&c), UQ_ERR_UNSUPPORTED);
    assert_non_null(strstr(uq_last_error(), "BertModel"));
    assert_int_equal(parse("{}", &c), UQ_OK);
    assert_int_equal(uq_config_check_runnable(&c), UQ_ERR_UNSUPPORTED);
}

static void test_bad(void **state)
{
    (void)state;
    uq_model_config c;
    assert_int_equal(parse("{\"hidden_size\": ", &c), UQ_ERR_JSON);
    assert_int_equal(parse("[]", &c), UQ_ERR_JSON);
    assert_int_equal(parse("{\"hidden_size\": \"64\"}", &c), UQ_ERR_FIELD);
    assert_non_null(strstr(uq_last_error(), "hidden_size"));
    assert_int_equal(parse("{\"rms_norm_eps\": \"x\"}", &c), UQ_ERR_FIELD);
    assert_int_equal(parse("{\"tie_word_embeddings\": 1}", &c), UQ_ERR_FIELD);
    assert_int_equal(parse("{\"architectures\": \"Llama\"}", &c), UQ_ERR_FIELD);
    assert_int_equal(parse("{\"eos_token_id\": \"2\"}", &c), UQ_ERR_FIELD);
    assert_int_equal(parse("{\"rope_scaling\": 3}", &c), UQ_ERR_FIELD);
    assert_int_equal(parse("{\"rope_theta\": -1}", &c), UQ_ERR_CONFIG);
    assert_int_equal(parse("{\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4,"
                           " \"high_freq_factor\": 1}}", &c),
                     UQ_ERR_CONFIG);
    /* parses, but cannot run */
    assert_int_equal(parse("{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 6,"
                           " \"num_key_value_heads\": 4, \"num_hidden_layers\": 1, \"intermediate_size\": 10,"
                           " \"vocab_size\": 10}", &c),
                     UQ_OK);
    assert_int_equal(uq_config_check_runnable(&c), UQ_ERR_CONFIG);
    assert_int_equal(parse("{\"model_type\": \"llama\", \"hidden_size\": -64, \"num_attention_heads\": 4,"
                           " \"num_hidden_layers\": 1, \"intermediate_size\": 10, \"vocab_size\": 10}", &c),
                     UQ_OK);
    assert_int_equal(uq_config_check_runnable(&c), UQ_ERR_CONFIG);
    assert_int_equal(parse("{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 4,"
                           " \"num_hidden_layers\": 1, \"intermediate_size\": 10, \"vocab_size\": 10,"
                           " \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4}}", &c),
                     UQ_OK);
    assert_int_equal(uq_config_check_runnable(&c), UQ_ERR_UNSUPPORTED);
    assert_non_null(strstr(uq_last_error(), "yarn"));
    char p[64];
    assert_int_equal(uq_config_load("/nonexistent/config.json", &c), UQ_ERR_MISSING);
    (void)p;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_configs),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_unknown_arch),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
