/* safetensors reader / writer / model folders: one test per bad-input class,
 * writer -> reader round trips, and the two shared models. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char scratch[1024];

/* Writes [u64 header length][header][data_len zero bytes] to dir/name. */
static const char *craft(const char *name, const char *header, size_t data_len)
{
    static char path[2048];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    size_t hl = strlen(header);
    unsigned char *buf = calloc(1, 8 + hl + data_len);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    tu_write_file(path, buf, 8 + hl + data_len);
    free(buf);
    return path;
}

/* Opens a crafted file and checks the status and that the message names what it should. */
static void expect(const char *header, size_t data_len, uq_status want, const char *in_message)
{
    const char *path = craft("bad.safetensors", header, data_len);
    uq_st_file *f = (uq_st_file *)0x1;
    uq_status st = uq_st_open(path, &f);
    if (st != want) fail_msg("header %s: got %s (%s), want %s", header, uq_status_name(st), uq_last_error(),
                             uq_status_name(want));
    assert_null(f);
    assert_non_null(strstr(uq_last_error(), "bad.safetensors"));
    if (in_message && !strstr(uq_last_error(), in_message))
        fail_msg("message \"%s\" does not mention \"%s\"", uq_last_error(), in_message);
}

static void test_truncated(void **state)
{
    (void)state;
    char path[2048];
    snprintf(path, sizeof path, "%s/short.safetensors", scratch);
    tu_write_file(path, "\x10\0\0", 3);
    uq_st_file *f;
    assert_int_equal(uq_st_open(path, &f), UQ_ERR_TRUNCATED);
    tu_write_file(path, "", 0);
    assert_int_equal(uq_st_open(path, &f), UQ_ERR_TRUNCATED);
    /* header length beyond the file */
    unsigned char b[16] = {0xe8, 0x03, 0, 0, 0, 0, 0, 0, '{', '}'};
    tu_write_file(path, b, 10);
    assert_int_equal(uq_st_open(path, &f), UQ_ERR_TRUNCATED);
    assert_non_null(strstr(uq_last_error(), "beyond"));
    /* huge header length (would overflow naive arithmetic) */
    memset(b, 0xff, 8);
    tu_write_file(path, b, 10);
    assert_int_equal(uq_st_open(path, &f), UQ_ERR_TRUNCATED);
}

static void test_not_json(void **state)
{
    (void)state;
    expect("{\"a\": ", 0, UQ_ERR_JSON, NULL);
    expect("hello world", 0, UQ_ERR_JSON, NULL);
    expect("[1, 2, 3]", 0, UQ_ERR_JSON, "not a JSON object");
    expect("\"str\"", 0, UQ_ERR_JSON, NULL);
}

static void test_fields(void **state)
{
    (void)state;
    expect("{\"w\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8, UQ_ERR_FIELD, "\"w\"");
    expect("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", 8, UQ_ERR_FIELD, "shape");
    expect("{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8, UQ_ERR_FIELD, "data_offsets");
    expect("{\"w\": {\"dtype\": 5, \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, UQ_ERR_FIELD, "dtype");
    expect("{\"w\": {\"dtype\": \"F32\", \"shape\": \"2\", \"data_offsets\": [0, 8]}}", 8, UQ_ERR_FIELD, "shape");
    expect("{\"w\": {\"dtype\": \"F32\", \"shape\": [2.0], \"data_offsets\": [0, 8]}}", 8, UQ_ERR_FIELD, "shape");
    expect("{\"w\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8, UQ_ERR_FIELD, "shape");
    expect("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8, 9]}}", 8, UQ_ERR_FIELD, NULL);
    expect("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [-1, 7]}}", 8, UQ_ERR_FIELD, NULL);
    expect("{\"w\": [1, 2]}", 8, UQ_ERR_FIELD, "\"w\"");
    expect("{\"__metadata__\": {\"format\": 1}}", 0, UQ_ERR_FIELD, "format");
    expect("{\"__metadata__\": [1]}", 0, UQ_ERR_FIELD, "__metadata__");
}

static void test_dtype(void **state)
{
    (void)state;
    expect("{\"w\": {\"dtype\": \"F7\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, UQ_ERR_DTYPE, "F7");
    expect("{\"w\": {\"dtype\": \"f32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, UQ_ERR_DTYPE, "\"w\"");
}

static void test_shape(void **state)
{
    (void)state;
    expect("{\"w\": {\"dtype\": \"F32\", \"shape\": [1099511627776, 1099511627776], \"data_offsets\": [0, 8]}}", 8,
           UQ_ERR_SHAPE, "overflow");
    expect("{\"w\": {\"dtype\": \"F64\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 8]}}", 8,
           UQ_ERR_SHAPE, "overflow");
    expect("{\"w\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 1]}}", 1, UQ_ERR_SHAPE,
           "dimensions");
}

static void test_offsets(void **state)
{
    (void)state;
    /* out of range */
    expect("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4, UQ_ERR_OFFSETS, "range");
    expect("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8, UQ_ERR_OFFSETS, "\"w\"");
    expect("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 9223372036854775807]}}", 8,
           UQ_ERR_OFFSETS, NULL);
    /* not equal to dtype x shape */
    expect("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 12]}}", 12, UQ_ERR_OFFSETS, "needs 8");
    expect("{\"w\": {\"dtype\": \"BF16\", \"shape\": [3, 2], \"data_offsets\": [0, 24]}}", 24, UQ_ERR_OFFSETS, NULL);
    /* overlapping */
    expect("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
           " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
           12, UQ_ERR_OFFSETS, "overlap");
    expect("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
           " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
           8, UQ_ERR_OFFSETS, "overlap");
}

static void test_duplicate(void **state)
{
    (void)state;
    expect("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
           " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
           8, UQ_ERR_DUPLICATE, "w");
}

static void test_all_dtypes(void **state)
{
    (void)state;
    static const char *names[] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8",
                                  "U64", "U32", "U16", "U8", "BOOL", "F8_E4M3", "F8_E5M2"};
    static const size_t sizes[] = {8, 4, 2, 2, 8, 4, 2, 1, 8, 4, 2, 1, 1, 1, 1};
    char header[4096];
    size_t o = (size_t)snprintf(header, sizeof header, "{\"__metadata__\": {\"format\": \"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < 15; i++) {
        o += (size_t)snprintf(header + o, sizeof header - o,
                              ", \"t_%s\": {\"dtype\": \"%s\", \"shape\": [3, 2], \"data_offsets\": [%llu, %llu]}",
                              names[i], names[i], (unsigned long long)off, (unsigned long long)(off + 6 * sizes[i]));
        off += 6 * sizes[i];
    }
    snprintf(header + o, sizeof header - o, "}");
    const char *path = craft("dtypes.safetensors", header, off);
    uq_st_file *f;
    assert_int_equal(uq_st_open(path, &f), UQ_OK);
    assert_int_equal(uq_st_count(f), 15);
    assert_string_equal(uq_st_metadata(f, "format"), "pt");
    for (int i = 0; i < 15; i++) {
        char n[32];
        snprintf(n, sizeof n, "t_%s", names[i]);
        const uq_tensor *t = uq_st_find(f, n);
        assert_non_null(t);
        assert_string_equal(uq_dtype_name(t->dtype), names[i]);
        assert_int_equal(uq_dtype_size(t->dtype), sizes[i]);
        assert_int_equal(t->ndim, 2);
        assert_int_equal(t->numel, 6);
        assert_int_equal(t->nbytes, 6 * sizes[i]);
        assert_int_equal(uq_dtype_is_float(t->dtype), i >= 1 && i <= 3);
    }
    /* file order is by offset: the first tensor is F64 */
    assert_string_equal(uq_st_tensor(f, 0)->name, "t_F64");
    assert_null(uq_st_find(f, "nope"));
    uq_st_close(f);
}

static void test_empty_and_zero_sized(void **state)
{
    (void)state;
    const char *path = craft("empty.safetensors", "{}", 0);
    uq_st_file *f;
    assert_int_equal(uq_st_open(path, &f), UQ_OK);
    assert_int_equal(uq_st_count(f), 0);
    uq_st_close(f);
    path = craft("zero.safetensors",
                 "{\"z\": {\"dtype\": \"F32\", \"shape\": [0, 4], \"data_offsets\": [0, 0]},"
                 " \"s\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]}}",
                 4);
    assert_int_equal(uq_st_open(path, &f), UQ_OK);
    assert_int_equal(uq_st_find(f, "z")->numel, 0);
    assert_int_equal(uq_st_find(f, "s")->numel, 1);
    assert_int_equal(uq_st_find(f, "s")->ndim, 0);
    uq_st_close(f);
}

static void test_open_memory_and_missing(void **state)
{
    (void)state;
    uq_st_file *f;
    assert_int_equal(uq_st_open_memory("\x02\0\0\0\0\0\0\0{}", 10, "mem", &f), UQ_OK);
    uq_st_close(f);
    assert_int_equal(uq_st_open_memory("\x02\0\0\0\0\0\0\0[]", 10, "mem", &f), UQ_ERR_JSON);
    char p[2048];
    snprintf(p, sizeof p, "%s/does-not-exist.safetensors", scratch);
    assert_int_equal(uq_st_open(p, &f), UQ_ERR_MISSING);
    assert_int_equal(uq_st_open(scratch, &f), UQ_ERR_IO); /* a folder */
}

/* --------------------------------------------------------------- writer */

static void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(i * 131u + seed * 7u + (i >> 8));
}

static void write_model(const char *dir, uint64_t max_shard, size_t *n_shards)
{
    uq_st_writer *w;
    assert_int_equal(uq_st_writer_create(&w), UQ_OK);
    assert_int_equal(uq_st_writer_set_metadata(w, "format", "mlx"), UQ_OK);
    int64_t s1[2] = {7, 3}, s2[1] = {5}, s3[2] = {4, 4}, s4[3] = {2, 3, 5};
    assert_int_equal(uq_st_writer_add(w, "a.u8", UQ_U8, 2, s1), UQ_OK);     /* 21 bytes */
    assert_int_equal(uq_st_writer_add(w, "b.f32", UQ_F32, 1, s2), UQ_OK);   /* 20 */
    assert_int_equal(uq_st_writer_add(w, "c.bf16", UQ_BF16, 2, s3), UQ_OK); /* 32 */
    assert_int_equal(uq_st_writer_add(w, "d.u32", UQ_U32, 3, s4), UQ_OK);   /* 120 */
    assert_int_equal(uq_st_writer_add(w, "e.f64", UQ_F64, 1, s2), UQ_OK);   /* 40 */
    assert_int_equal(uq_st_writer_begin(w, dir, "model", max_shard), UQ_OK);
    /* out of declaration order, one tensor in two pieces */
    const char *names[] = {"d.u32", "a.u8", "e.f64", "c.bf16", "b.f32"};
    const size_t bytes[] = {120, 21, 40, 32, 20};
    for (int i = 0; i < 5; i++) {
        unsigned char buf[256];
        fill(buf, bytes[i], (unsigned)names[i][0]);
        if (i == 0) {
            assert_int_equal(uq_st_writer_put(w, names[i], 100, buf + 100, 20), UQ_OK);
            assert_int_equal(uq_st_writer_put(w, names[i], 0, buf, 100), UQ_OK);
        } else {
            assert_int_equal(uq_st_writer_put(w, names[i], 0, buf, bytes[i]), UQ_OK);
        }
    }
    unsigned char x[200] = {0};
    assert_int_equal(uq_st_writer_put(w, "a.u8", 10, x, 12), UQ_ERR_STATE); /* beyond the tensor */
    assert_int_equal(uq_st_writer_put(w, "zzz", 0, x, 1), UQ_ERR_MISSING);
    assert_int_equal(uq_st_writer_finish(w), UQ_OK);
    *n_shards = uq_st_writer_shard_count(w);
    assert_int_equal(uq_st_writer_total_bytes(w), 233);
    uq_st_writer_free(w);
}

static void check_model(const char *dir)
{
    uq_model_files *m;
    assert_int_equal(uq_files_open(dir, &m), UQ_OK);
    assert_int_equal(uq_files_count(m), 5);
    assert_string_equal(uq_files_metadata(m, "format"), "mlx");
    const char *names[] = {"a.u8", "b.f32", "c.bf16", "d.u32", "e.f64"};
    const size_t bytes[] = {21, 20, 32, 120, 40};
    for (int i = 0; i < 5; i++) {
        const uq_tensor *t = uq_files_find(m, names[i]);
        assert_non_null(t);
        assert_int_equal(t->nbytes, bytes[i]);
        unsigned char buf[256];
        fill(buf, bytes[i], (unsigned)names[i][0]);
        assert_memory_equal(t->data, buf, bytes[i]);
        /* natural alignment relative to the mapping */
        assert_int_equal((uintptr_t)t->data % uq_dtype_size(t->dtype), 0);
    }
    const uq_tensor *t = uq_files_find(m, "d.u32");
    assert_int_equal(t->ndim, 3);
    assert_int_equal(t->shape[2], 5);
    uq_files_close(m);
}

static void test_writer_roundtrip(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/w1", scratch);
    assert_int_equal(tu_system("mkdir -p '%s'", dir), 0);
    size_t shards;
    write_model(dir, 0, &shards);
    assert_int_equal(shards, 1);
    check_model(dir);
    /* a single file opens directly too */
    char file[1100];
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    uq_st_file *f;
    assert_int_equal(uq_st_open(file, &f), UQ_OK);
    assert_int_equal(uq_st_header_size(f) % 8, 0);
    assert_string_equal(uq_st_tensor(f, 0)->name, "e.f64"); /* 8-byte elements first */
    uq_st_close(f);
    /* re-running over an existing output is safe */
    write_model(dir, 0, &shards);
    check_model(dir);
}

static void test_writer_shards(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/w2", scratch);
    assert_int_equal(tu_system("mkdir -p '%s'", dir), 0);
    size_t shards;
    write_model(dir, 64, &shards);
    assert_true(shards >= 3);
    char p[1200];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    size_t len;
    char *idx = tu_read_file(p, &len);
    assert_non_null(strstr(idx, "\"total_size\": 233"));
    assert_non_null(strstr(idx, "model-00001-of-0000"));
    free(idx);
    check_model(dir);
    /* no temporary files left behind */
    assert_int_equal(tu_system("test -z \"$(ls -A '%s' | grep tmp)\"", dir), 0);
}

static void test_writer_incomplete(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/w3", scratch);
    assert_int_equal(tu_system("mkdir -p '%s'", dir), 0);
    uq_st_writer *w;
    assert_int_equal(uq_st_writer_create(&w), UQ_OK);
    int64_t s[1] = {4};
    assert_int_equal(uq_st_writer_add(w, "x", UQ_F32, 1, s), UQ_OK);
    assert_int_equal(uq_st_writer_add(w, "x", UQ_F32, 1, s), UQ_OK);
    assert_int_equal(uq_st_writer_begin(w, dir, "model", 0), UQ_ERR_DUPLICATE);
    uq_st_writer_free(w);

    assert_int_equal(uq_st_writer_create(&w), UQ_OK);
    assert_int_equal(uq_st_writer_add(w, "x", UQ_F32, 1, s), UQ_OK);
    assert_int_equal(uq_st_writer_add(w, "y", UQ_F32, 1, s), UQ_OK);
    assert_int_equal(uq_st_writer_begin(w, dir, "model", 0), UQ_OK);
    float v[4] = {1, 2, 3, 4};
    assert_int_equal(uq_st_writer_put(w, "x", 0, v, sizeof v), UQ_OK);
    assert_int_equal(uq_st_writer_finish(w), UQ_ERR_STATE);
    assert_non_null(strstr(uq_last_error(), "\"y\""));
    uq_st_writer_free(w);
    /* nothing half-written remains */
    assert_int_equal(tu_system("test -z \"$(ls -A '%s')\"", dir), 0);
}

/* --------------------------------------------------------- model folders */

static void write_index(const char *dir, const char *json)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    tu_write_file(p, json, strlen(json));
}

static void test_index_errors(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/w4", scratch);
    assert_int_equal(tu_system("mkdir -p '%s'", dir), 0);
    size_t shards;
    write_model(dir, 64, &shards);
    uq_model_files *m = (uq_model_files *)0x1;

    write_index(dir, "{\"weight_map\": {\"a.u8\": \"../model-00001-of-00004.safetensors\"}}");
    assert_int_equal(uq_files_open(dir, &m), UQ_ERR_PATH);
    assert_null(m);
    assert_non_null(strstr(uq_last_error(), "outside"));
    write_index(dir, "{\"weight_map\": {\"a.u8\": \"/etc/passwd\"}}");
    assert_int_equal(uq_files_open(dir, &m), UQ_ERR_PATH);
    write_index(dir, "{\"weight_map\": {\"a.u8\": \"sub/../../x.safetensors\"}}");
    assert_int_equal(uq_files_open(dir, &m), UQ_ERR_PATH);
    write_index(dir, "{\"weight_map\": {\"a.u8\": \"model-00009-of-00009.safetensors\"}}");
    assert_int_equal(uq_files_open(dir, &m), UQ_ERR_MISSING);
    assert_non_null(strstr(uq_last_error(), "model-00009-of-00009.safetensors"));
    write_index(dir, "{\"weight_map\": {\"not.there\": \"model-00001-of-00004.safetensors\"}}");
    assert_int_equal(uq_files_open(dir, &m), UQ_ERR_MISSING);
    assert_non_null(strstr(uq_last_error(), "not.there"));
    write_index(dir, "{\"weight_map\": 3}");
    assert_int_equal(uq_files_open(dir, &m), UQ_ERR_FIELD);
    write_index(dir, "{\"weight_map\": {\"a.u8\": 3}}");
    assert_int_equal(uq_files_open(dir, &m), UQ_ERR_FIELD);
    write_index(dir, "{weight_map");
    assert_int_equal(uq_files_open(dir, &m), UQ_ERR_JSON);
    write_index(dir, "[]");
    assert_int_equal(uq_files_open(dir, &m), UQ_ERR_JSON);
    write_index(dir, "{\"weight_map\": {\"a.u8\": \"x\", \"a.u8\": \"y\"}}");
    assert_int_equal(uq_files_open(dir, &m), UQ_ERR_DUPLICATE);

    /* the same tensor in two shards */
    char p[1200];
    snprintf(p, sizeof p, "cp '%s/model-00001-of-0000%zu.safetensors' '%s/copy.safetensors'", dir, shards, dir);
    assert_int_equal(tu_system("%s", p), 0);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"weight_map\": {\"a.u8\": \"model-00001-of-0000%zu.safetensors\", \"b.f32\": \"copy.safetensors\"}}",
             shards);
    write_index(dir, json);
    assert_int_equal(uq_files_open(dir, &m), UQ_ERR_DUPLICATE);

    /* an empty folder */
    snprintf(dir, sizeof dir, "%s/w5", scratch);
    assert_int_equal(tu_system("mkdir -p '%s'", dir), 0);
    assert_int_equal(uq_files_open(dir, &m), UQ_ERR_MISSING);
}

/* ------------------------------------------------------- shared models */

static void test_shared_models(void **state)
{
    (void)state;
    char p[4096];
    uq_model_files *m;
    if (!tu_shared_has("models/stories260K/model.safetensors")) skip();
    assert_int_equal(uq_files_open(tu_shared_path("models/stories260K", p, sizeof p), &m), UQ_OK);
    assert_int_equal(uq_files_count(m), 47);
    for (size_t i = 0; i < 47; i++) assert_int_equal(uq_files_tensor(m, i)->dtype, UQ_F32);
    const uq_tensor *e = uq_files_find(m, "model.embed_tokens.weight");
    assert_non_null(e);
    assert_int_equal(e->shape[0], 512);
    assert_int_equal(e->shape[1], 64);
    uq_files_close(m);

    if (!tu_shared_has("models/bench-28m/model.safetensors")) skip();
    assert_int_equal(uq_files_open(tu_shared_path("models/bench-28m", p, sizeof p), &m), UQ_OK);
    assert_int_equal(uq_files_count(m), 74);
    uint64_t params = 0;
    for (size_t i = 0; i < 74; i++) {
        assert_int_equal(uq_files_tensor(m, i)->dtype, UQ_BF16);
        params += uq_files_tensor(m, i)->numel;
    }
    assert_int_equal(params, 27795968);
    /* bf16 -> f32 arithmetic on a real tensor: RMSNorm weights are finite and mostly near 1 */
    const uq_tensor *n = uq_files_find(m, "model.norm.weight");
    float v[512];
    assert_int_equal(uq_to_f32(n->dtype, n->data, v, 512), UQ_OK);
    for (int i = 0; i < 512; i++) assert_true(v[i] > -100 && v[i] < 100);
    uq_files_close(m);
}

int main(void)
{
    tu_scratch_dir("safetensors", scratch, sizeof scratch);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_dtype),
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_all_dtypes),
        cmocka_unit_test(test_empty_and_zero_sized),
        cmocka_unit_test(test_open_memory_and_missing),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_writer_shards),
        cmocka_unit_test(test_writer_incomplete),
        cmocka_unit_test(test_index_errors),
        cmocka_unit_test(test_shared_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
