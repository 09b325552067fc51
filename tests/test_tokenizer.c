/* tokenizer.json tokenizers: the shared models against their references,
 * round trips and exact token counts on the shared texts, streamed decoding,
 * the supported pipeline pieces on small crafted tokenizers, and bad input. */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uquant.h"

/* ---------------------------------------------------------------- helpers */

static uq_tokenizer *load_shared(const char *model)
{
    char rel[256], p[4096];
    snprintf(rel, sizeof rel, "models/%s/tokenizer.json", model);
    if (!tu_shared_has(rel)) return NULL;
    snprintf(rel, sizeof rel, "models/%s", model);
    uq_tokenizer *t = NULL;
    uq_status st = uq_tokenizer_load(tu_shared_path(rel, p, sizeof p), &t);
    if (st) fail_msg("loading %s: %s", model, uq_last_error());
    return t;
}

static uq_tokenizer *parse(const char *json)
{
    uq_tokenizer *t = NULL;
    uq_status st = uq_tokenizer_parse(json, strlen(json), "test.json", &t);
    if (st) fail_msg("parse: %s: %s", uq_status_name(st), uq_last_error());
    return t;
}

static uq_status parse_status(const char *json)
{
    uq_tokenizer *t = NULL;
    uq_status st = uq_tokenizer_parse(json, strlen(json), "bad.json", &t);
    if (st == UQ_OK) uq_tokenizer_free(t);
    else assert_null(t);
    return st;
}

static int32_t *encode(const uq_tokenizer *t, const char *text, size_t len, int add_special,
                       size_t *n)
{
    int32_t *ids = NULL;
    uq_status st = uq_tokenizer_encode(t, text, len, add_special, &ids, n);
    if (st) fail_msg("encode: %s: %s", uq_status_name(st), uq_last_error());
    return ids;
}

static char *decode(const uq_tokenizer *t, const int32_t *ids, size_t n, int skip, size_t *len)
{
    char *s = NULL;
    size_t l = 0;
    uq_status st = uq_tokenizer_decode(t, ids, n, skip, &s, &l);
    if (st) fail_msg("decode: %s", uq_last_error());
    assert_non_null(s);
    assert_int_equal(strlen(s) <= l, 1);
    if (len) *len = l;
    return s;
}

static void check_ids(const uq_tokenizer *t, const char *text, int add_special,
                      const int32_t *want, size_t nwant)
{
    size_t n;
    int32_t *ids = encode(t, text, strlen(text), add_special, &n);
    if (n != nwant || (n && memcmp(ids, want, n * sizeof *ids) != 0)) {
        char buf[1024];
        size_t o = 0;
        for (size_t i = 0; i < n && o + 16 < sizeof buf; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, " %d", ids[i]);
        buf[o] = '\0';
        free(ids);
        fail_msg("\"%s\" encodes to [%s ] (%zu ids, %zu expected)", text, buf, n, nwant);
    }
    free(ids);
}

static void check_decode(const uq_tokenizer *t, const int32_t *ids, size_t n, int skip,
                         const char *want)
{
    size_t len;
    char *s = decode(t, ids, n, skip, &len);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(s, want, len);
    free(s);
}

static int utf8_ok(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        size_t need = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                                : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!need || i + need > n) return 0;
        for (size_t k = 1; k < need; k++)
            if ((u[i + k] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && u[i + 1] < 0xA0) return 0;
        if (c == 0xED && u[i + 1] > 0x9F) return 0;
        if (c == 0xF0 && u[i + 1] < 0x90) return 0;
        if (c == 0xF4 && u[i + 1] > 0x8F) return 0;
        i += need;
    }
    return 1;
}

/* Decodes id by id; checks every piece is whole UTF-8 and the total equals
 * the whole decoding. Returns the streamed text. */
static char *stream_decode(const uq_tokenizer *t, const int32_t *ids, size_t n, int skip,
                           size_t *len)
{
    uq_tokstream *s = NULL;
    assert_int_equal(uq_tokstream_new(t, skip, &s), UQ_OK);
    size_t cap = 64, o = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (size_t i = 0; i <= n; i++) {
        const char *piece;
        size_t plen;
        if (i < n) assert_int_equal(uq_tokstream_push(s, ids[i], &piece, &plen), UQ_OK);
        else assert_int_equal(uq_tokstream_finish(s, &piece, &plen), UQ_OK);
        if (!utf8_ok(piece, plen)) fail_msg("streamed piece %zu is not whole UTF-8", i);
        while (o + plen + 1 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        memcpy(buf + o, piece, plen);
        o += plen;
    }
    buf[o] = '\0';
    uq_tokstream_free(s);
    size_t wlen;
    char *whole = decode(t, ids, n, skip, &wlen);
    assert_int_equal(o, wlen);
    assert_memory_equal(buf, whole, o);
    free(whole);
    if (len) *len = o;
    return buf;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static json_t *load_ref(const char *rel)
{
    char p[4096];
    json_error_t err;
    json_t *j = json_load_file(tu_shared_path(rel, p, sizeof p), 0, &err);
    if (!j) fail_msg("%s: %s", rel, err.text);
    return j;
}

static int32_t *json_ids(json_t *arr, size_t *n)
{
    assert_true(json_is_array(arr));
    *n = json_array_size(arr);
    int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return v;
}

/* ------------------------------------------------------ shared references */

static void test_stories_reference(void **state)
{
    (void)state;
    if (!tu_shared_has("refs/stories260K.json")) skip();
    uq_tokenizer *t = load_shared("stories260K");
    if (!t) skip();
    json_t *ref = load_ref("refs/stories260K.json");
    size_t n;
    int32_t *want = json_ids(json_object_get(ref, "input_ids"), &n);
    check_ids(t, "Once upon a time, Lily saw a big red ball.", 1, want, n);
    /* Without the template: no BOS. */
    check_ids(t, "Once upon a time, Lily saw a big red ball.", 0, want + 1, n - 1);
    free(want);

    int32_t *greedy = json_ids(json_object_get(ref, "greedy_from_bos"), &n);
    const char *text = json_string_value(json_object_get(ref, "greedy_text"));
    check_decode(t, greedy, n, 1, text);
    size_t slen;
    char *streamed = stream_decode(t, greedy, n, 1, &slen);
    assert_string_equal(streamed, text);
    free(streamed);
    /* With special tokens, "<s>" stays and the leading space is not stripped. */
    check_decode(t, greedy, 3, 0, "<s> Once upon");
    free(greedy);
    json_decref(ref);

    assert_int_equal(uq_tokenizer_vocab_size(t), 512);
    assert_int_equal(uq_tokenizer_bos_id(t), 1);
    assert_int_equal(uq_tokenizer_eos_id(t), 2);
    assert_true(uq_tokenizer_adds_bos(t));
    size_t len;
    assert_string_equal(uq_tokenizer_token(t, 1, &len), "<s>");
    assert_int_equal(len, 3);
    assert_string_equal(uq_tokenizer_token(t, 13, NULL), "<0x0A>");
    assert_null(uq_tokenizer_token(t, 512, NULL));
    assert_null(uq_tokenizer_token(t, -1, NULL));
    assert_int_equal(uq_tokenizer_token_id(t, "</s>", 4), 2);
    assert_int_equal(uq_tokenizer_token_id(t, "\xe2\x96\x81t", 4), 259);
    assert_int_equal(uq_tokenizer_token_id(t, "nope", 4), -1);
    assert_true(uq_tokenizer_is_special(t, 2));
    assert_false(uq_tokenizer_is_special(t, 259));
    /* "<s>" in the text is the BOS token. */
    const int32_t bos_text[] = {1, 403};
    check_ids(t, "<s>Once", 0, bos_text, 2);
    check_decode(t, NULL, 0, 0, "");
    uq_tokenizer_free(t);
}

static void test_bench_reference(void **state)
{
    (void)state;
    if (!tu_shared_has("refs/bench-28m.json")) skip();
    uq_tokenizer *t = load_shared("bench-28m");
    if (!t) skip();
    json_t *ref = load_ref("refs/bench-28m.json");
    size_t n, len;
    int32_t *want = json_ids(json_object_get(ref, "input_ids"), &n);
    assert_int_equal(n, 21);
    char *text = decode(t, want, n, 1, &len);
    assert_string_equal(text, "Mr. Speaker, the state of our Union is strong, and our economy is growing.");
    /* bench-28m adds nothing, with or without the template. */
    check_ids(t, text, 0, want, n);
    check_ids(t, text, 1, want, n);
    free(text);
    free(want);
    json_decref(ref);

    assert_int_equal(uq_tokenizer_vocab_size(t), 8192);
    assert_int_equal(uq_tokenizer_bos_id(t), 0);
    assert_int_equal(uq_tokenizer_eos_id(t), 0);
    assert_false(uq_tokenizer_adds_bos(t));
    assert_true(uq_tokenizer_is_special(t, 0));
    assert_true(uq_tokenizer_is_special(t, 1));
    assert_false(uq_tokenizer_is_special(t, 46));
    /* Special tokens in the text; skip_special drops them when decoding. */
    size_t k;
    int32_t *ids = encode(t, "Hello<|endoftext|>world", 23, 0, &k);
    assert_true(k >= 3);
    int found = 0;
    for (size_t i = 0; i < k; i++) found += ids[i] == 0;
    assert_int_equal(found, 1);
    check_decode(t, ids, k, 0, "Hello<|endoftext|>world");
    check_decode(t, ids, k, 1, "Helloworld");
    free(ids);
    /* Ids with no token are skipped. */
    const int32_t odd[] = {99999, 46, -5};
    check_decode(t, odd, 3, 1, "M");
    uq_tokenizer_free(t);
}

/* Encodes a shared text, checks the exact round trip and the streamed
 * decoding; returns the token count. */
static size_t round_trip(const uq_tokenizer *t, const char *rel, double *seconds)
{
    char p[4096];
    size_t len, n, dlen;
    char *text = tu_read_file(tu_shared_path(rel, p, sizeof p), &len);
    double t0 = now();
    int32_t *ids = encode(t, text, len, 0, &n);
    if (seconds) *seconds = now() - t0;
    char *back = decode(t, ids, n, 1, &dlen);
    if (dlen != len || memcmp(back, text, len) != 0) {
        size_t i = 0;
        while (i < len && i < dlen && back[i] == text[i]) i++;
        fail_msg("%s: round trip differs at byte %zu", rel, i);
    }
    free(back);
    char *streamed = stream_decode(t, ids, n, 1, &dlen);
    assert_int_equal(dlen, len);
    free(streamed);
    free(ids);
    free(text);
    return n;
}

static const char *const data_files[] = {"data/calib.txt", "data/sotu-dev.txt",
                                         "data/moby-train.txt", "data/moby-dev.txt"};

static void test_round_trips(void **state)
{
    (void)state;
    const char *models[] = {"stories260K", "bench-28m"};
    for (int m = 0; m < 2; m++) {
        uq_tokenizer *t = load_shared(models[m]);
        if (!t) continue;
        for (size_t f = 0; f < sizeof data_files / sizeof *data_files; f++) {
            if (!tu_shared_has(data_files[f])) continue;
            double sec = 0;
            size_t n = round_trip(t, data_files[f], &sec);
            print_message("%s on %s: %zu tokens, encoded in %.3f s\n", models[m], data_files[f], n, sec);
            assert_true(n > 0);
        }
        uq_tokenizer_free(t);
    }
}

static void test_bench_counts(void **state)
{
    (void)state;
    uq_tokenizer *t = load_shared("bench-28m");
    if (!t || !tu_shared_has("data/sotu-dev.txt") || !tu_shared_has("data/moby-dev.txt")) {
        uq_tokenizer_free(t);
        skip();
    }
    double sec;
    size_t sotu = round_trip(t, "data/sotu-dev.txt", &sec);
    assert_int_equal(sotu, 61506);
    assert_true(sec < 1.0);
    size_t moby = round_trip(t, "data/moby-dev.txt", NULL);
    assert_int_equal(moby, 41427);
    /* The same counts as the reference file. */
    if (tu_shared_has("refs/bench-28m-ppl.json")) {
        json_t *ref = load_ref("refs/bench-28m-ppl.json");
        json_t *s = json_object_get(json_object_get(ref, "sotu-dev.txt"), "tokens");
        json_t *m = json_object_get(json_object_get(ref, "moby-dev.txt"), "tokens");
        assert_int_equal(json_integer_value(s), sotu);
        assert_int_equal(json_integer_value(m), moby);
        json_decref(ref);
    }
    uq_tokenizer_free(t);

    /* stories260K: the whole file is one word for BPE; still fast. */
    t = load_shared("stories260K");
    if (!t) skip();
    round_trip(t, "data/sotu-dev.txt", &sec);
    assert_true(sec < 1.0);
    uq_tokenizer_free(t);
}

static void test_load_paths(void **state)
{
    (void)state;
    char p[8192];
    if (!tu_shared_has("models/stories260K/tokenizer.json")) skip();
    uq_tokenizer *t = NULL;
    /* A file path also reads the tokenizer_config.json beside it. */
    assert_int_equal(uq_tokenizer_load(tu_shared_path("models/stories260K/tokenizer.json", p, sizeof p), &t),
                     UQ_OK);
    assert_int_equal(uq_tokenizer_eos_id(t), 2);
    uq_tokenizer_free(t);
    t = (uq_tokenizer *)&t;
    assert_int_equal(uq_tokenizer_load("/nonexistent/tokenizer.json", &t), UQ_ERR_MISSING);
    assert_null(t);
    char dir[4096];
    tu_scratch_dir("tokenizer_empty", dir, sizeof dir);
    assert_int_equal(uq_tokenizer_load(dir, &t), UQ_ERR_MISSING);
    assert_non_null(strstr(uq_last_error(), "tokenizer.json"));

    /* A folder with a tokenizer_config.json that turns BOS off and EOS on. */
    size_t len;
    char *json = tu_read_file(tu_shared_path("models/stories260K/tokenizer.json", p, sizeof p), &len);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    tu_write_file(p, json, len);
    free(json);
    const char *cfg = "{\"add_bos_token\": false, \"add_eos_token\": true, \"bos_token\": {\"content\": \"<s>\"},"
                      " \"eos_token\": \"</s>\", \"model_max_length\": 1000000000000000019884624838656}";
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    tu_write_file(p, cfg, strlen(cfg));
    assert_int_equal(uq_tokenizer_load(dir, &t), UQ_OK);
    assert_false(uq_tokenizer_adds_bos(t));
    const int32_t want[] = {403, 2};
    check_ids(t, "Once", 1, want, 2);
    uq_tokenizer_free(t);
    /* A broken config is an error naming it. */
    tu_write_file(p, "{\"add_bos_token\": 1}", 20);
    assert_int_equal(uq_tokenizer_load(dir, &t), UQ_ERR_FIELD);
    assert_non_null(strstr(uq_last_error(), "tokenizer_config.json"));
    tu_write_file(p, "{", 1);
    assert_int_equal(uq_tokenizer_load(dir, &t), UQ_ERR_JSON);
}

/* ------------------------------------------------------- streamed decoding */

static const char multibyte[] =
    "Caf\xc3\xa9 \xe2\x80\x94 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xf0\x9f\x99\x82\xf0\x9f\x8e\x89 "
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e, \xce\xb1\xce\xb2\xce\xb3 \xe2\x80\x94\xe2\x80\x94 ok\n";

static void test_stream_multibyte(void **state)
{
    (void)state;
    const char *models[] = {"stories260K", "bench-28m"};
    for (int m = 0; m < 2; m++) {
        uq_tokenizer *t = load_shared(models[m]);
        if (!t) continue;
        size_t n, len;
        int32_t *ids = encode(t, multibyte, strlen(multibyte), 1, &n);
        char *s = stream_decode(t, ids, n, 1, &len);
        assert_string_equal(s, multibyte);
        free(s);
        /* Every split of the sequence into two streams' worth is consistent:
         * decoding each prefix as a stream gives a prefix of the text. */
        for (size_t cut = 0; cut <= n; cut++) {
            char *a = stream_decode(t, ids, cut, 1, &len);
            free(a);
        }
        free(ids);
        uq_tokenizer_free(t);
    }
}

static void test_stream_holdback(void **state)
{
    (void)state;
    uq_tokenizer *t = load_shared("stories260K");
    if (!t) skip();
    uq_tokstream *s;
    const char *piece;
    size_t len;
    assert_int_equal(uq_tokstream_new(t, 1, &s), UQ_OK);
    /* U+1F642 as four byte-fallback tokens (<0xNN> is id 3 + NN), then "▁a". */
    const int32_t emoji[] = {3 + 0xF0, 3 + 0x9F, 3 + 0x99, 3 + 0x82};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(uq_tokstream_push(s, emoji[i], &piece, &len), UQ_OK);
        assert_int_equal(len, 0);
    }
    assert_int_equal(uq_tokstream_push(s, 261, &piece, &len), UQ_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(piece, "\xf0\x9f\x99\x82 a", 6);
    assert_int_equal(uq_tokstream_finish(s, &piece, &len), UQ_OK);
    assert_int_equal(len, 0);
    /* After finish, a new sequence: its leading space is stripped again. */
    assert_int_equal(uq_tokstream_push(s, 1, &piece, &len), UQ_OK);
    assert_int_equal(len, 0);
    assert_int_equal(uq_tokstream_push(s, 261, &piece, &len), UQ_OK);
    assert_int_equal(len, 1);
    assert_memory_equal(piece, "a", 1);
    uq_tokstream_reset(s);
    /* Invalid byte runs: one U+FFFD per byte, as a whole decode gives. */
    const int32_t bad[] = {3 + 0xE2, 3 + 0x80, 261};
    char *out = stream_decode(t, bad, 3, 1, &len);
    assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbd a");
    free(out);
    /* A run left incomplete at the end. */
    out = stream_decode(t, bad, 2, 1, &len);
    assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbd");
    free(out);
    uq_tokstream_free(s);
    uq_tokenizer_free(t);

    t = load_shared("bench-28m");
    if (!t) skip();
    /* Byte-level tokens of single bytes: 0xF0 is "ð", 0x9F "Ł", 0x99 "Ļ", 0x82 "Ĥ". */
    const char *byte_tok[] = {"\xc3\xb0", "\xc5\x81", "\xc4\xbb", "\xc4\xa4"};
    int32_t ids[6];
    for (int i = 0; i < 4; i++) {
        ids[i] = uq_tokenizer_token_id(t, byte_tok[i], strlen(byte_tok[i]));
        assert_true(ids[i] >= 0);
    }
    ids[4] = uq_tokenizer_token_id(t, "a", 1);
    assert_int_equal(uq_tokstream_new(t, 1, &s), UQ_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(uq_tokstream_push(s, ids[i], &piece, &len), UQ_OK);
        assert_int_equal(len, 0);
    }
    assert_int_equal(uq_tokstream_push(s, ids[3], &piece, &len), UQ_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(piece, "\xf0\x9f\x99\x82", 4);
    assert_int_equal(uq_tokstream_finish(s, &piece, &len), UQ_OK);
    assert_int_equal(len, 0);
    uq_tokstream_free(s);
    /* F0 9F then "a": one U+FFFD for the maximal invalid part. */
    const int32_t cut[] = {ids[0], ids[1], ids[4]};
    out = stream_decode(t, cut, 3, 1, &len);
    assert_string_equal(out, "\xef\xbf\xbd" "a");
    free(out);
    /* F0 9F 99 at the end: one U+FFFD at finish. */
    out = stream_decode(t, ids, 3, 1, &len);
    assert_string_equal(out, "\xef\xbf\xbd");
    free(out);
    uq_tokenizer_free(t);
}

/* --------------------------------------------- crafted byte-level tokenizers */

static void b2u(uint32_t cps[256])
{
    uint32_t n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        cps[b] = printable ? (uint32_t)b : 256 + n++;
    }
}

static void put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        o[1] = 0;
    } else {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        o[2] = 0;
    }
}

/* Byte-level BPE: bytes are ids 0-255; merges (256-261): "Ġ t", "h e",
 * "Ġt he", "i n", "in g", "1 2"; "Ġthing" is 262 (no merges lead to it);
 * added: <|endoftext|> 263 and <|pad|> 264 (special), "[x]" 265 (lstrip,
 * rstrip), "cat" 266 (single word). */
static uq_tokenizer *make_bytelevel(const char *normalizer, const char *pre, int pair_merges,
                                    int ignore_merges)
{
    static const char *merges[][2] = {{"\xc4\xa0", "t"}, {"h", "e"}, {"\xc4\xa0t", "he"},
                                      {"i", "n"},        {"in", "g"}, {"1", "2"}};
    uint32_t cps[256];
    b2u(cps);
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        char key[4];
        put_utf8(key, cps[b]);
        json_object_set_new(vocab, key, json_integer(b));
    }
    json_t *ml = json_array();
    for (int i = 0; i < 6; i++) {
        char merged[32];
        snprintf(merged, sizeof merged, "%s%s", merges[i][0], merges[i][1]);
        json_object_set_new(vocab, merged, json_integer(256 + i));
        if (pair_merges) {
            json_array_append_new(ml, json_pack("[ss]", merges[i][0], merges[i][1]));
        } else {
            char line[32];
            snprintf(line, sizeof line, "%s %s", merges[i][0], merges[i][1]);
            json_array_append_new(ml, json_string(line));
        }
    }
    json_object_set_new(vocab, "\xc4\xa0thing", json_integer(262));
    json_t *model = json_pack("{s:s, s:o, s:o, s:b, s:n, s:b, s:b}", "type", "BPE", "vocab", vocab,
                              "merges", ml, "ignore_merges", ignore_merges, "unk_token",
                              "byte_fallback", 0, "fuse_unk", 0);
    json_error_t err;
    json_t *added = json_loads(
        "[{\"id\": 263, \"content\": \"<|endoftext|>\", \"special\": true, \"normalized\": false},"
        " {\"id\": 264, \"content\": \"<|pad|>\", \"special\": true, \"normalized\": false},"
        " {\"id\": 265, \"content\": \"[x]\", \"special\": false, \"normalized\": false,"
        "  \"lstrip\": true, \"rstrip\": true},"
        " {\"id\": 266, \"content\": \"cat\", \"special\": false, \"normalized\": false,"
        "  \"single_word\": true}]",
        0, &err);
    assert_non_null(added);
    json_t *root = json_object();
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "added_tokens", added);
    json_object_set_new(root, "normalizer", normalizer ? json_loads(normalizer, 0, &err) : json_null());
    json_object_set_new(root, "pre_tokenizer", json_loads(pre, 0, &err));
    json_object_set_new(root, "post_processor", json_null());
    json_object_set_new(root, "decoder", json_pack("{s:s}", "type", "ByteLevel"));
    json_object_set_new(root, "model", model);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    uq_tokenizer *t = parse(s);
    free(s);
    return t;
}

static const char gpt2_pre[] = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}";

static void test_bytelevel_bpe(void **state)
{
    (void)state;
    for (int pairs = 0; pairs < 2; pairs++) {
        /* Both forms of merges give the same tokenizer. */
        uq_tokenizer *t = make_bytelevel(NULL, gpt2_pre, pairs, 0);
        const int32_t the_thing[] = {116, 257, 256, 104, 260};
        check_ids(t, "the thing", 0, the_thing, 5);
        check_decode(t, the_thing, 5, 1, "the thing");
        const int32_t special[] = {97, 263, 98};
        check_ids(t, "a<|endoftext|>b", 0, special, 3);
        check_decode(t, special, 3, 1, "ab");
        check_decode(t, special, 3, 0, "a<|endoftext|>b");
        /* lstrip / rstrip take the spaces around "[x]". */
        const int32_t strip[] = {97, 265, 98};
        check_ids(t, "a  [x]  b", 0, strip, 3);
        check_decode(t, strip, 3, 1, "a[x]b"); /* not special: kept */
        /* single_word: not inside "concat". */
        const int32_t word[] = {99, 111, 110, 99, 97, 116, 32, 266};
        check_ids(t, "concat cat", 0, word, 8);
        /* Whitespace runs: "\s+(?!\S)" leaves the last space to the word. */
        const int32_t spaces[] = {97, 32, 32, 256, 104, 260};
        check_ids(t, "a   thing", 0, spaces, 6);
        /* Not UTF-8. */
        int32_t *ids;
        size_t n;
        assert_int_equal(uq_tokenizer_encode(t, "a\xff", 2, 0, &ids, &n), UQ_ERR_ARG);
        assert_null(ids);
        assert_int_equal(n, 0);
        /* Empty text. */
        assert_int_equal(uq_tokenizer_encode(t, "", 0, 1, &ids, &n), UQ_OK);
        assert_int_equal(n, 0);
        free(ids);
        /* NUL bytes are text like any other. */
        const int32_t nul[] = {97, 0, 98};
        ids = encode(t, "a\0b", 3, 0, &n);
        assert_int_equal(n, 3);
        assert_memory_equal(ids, nul, sizeof nul);
        free(ids);
        /* Nothing to decode. */
        check_decode(t, NULL, 0, 1, "");
        free(stream_decode(t, NULL, 0, 0, NULL));
        assert_int_equal(uq_tokenizer_vocab_size(t), 267);
        assert_int_equal(uq_tokenizer_bos_id(t), -1);
        assert_int_equal(uq_tokenizer_eos_id(t), -1);
        uq_tokenizer_free(t);
    }
    /* ignore_merges: a word in the vocabulary is taken whole. */
    uq_tokenizer *t = make_bytelevel(NULL, gpt2_pre, 0, 1);
    const int32_t whole[] = {116, 257, 262};
    check_ids(t, "the thing", 0, whole, 3);
    uq_tokenizer_free(t);
    /* add_prefix_space. */
    t = make_bytelevel(NULL, "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": true}", 0, 0);
    const int32_t prefixed[] = {258, 256, 104, 260};
    check_ids(t, "the thing", 0, prefixed, 4);
    uq_tokenizer_free(t);
}

/* Every byte decodes back to itself through the byte-level mapping (byte b
 * is id b here): completed into valid UTF-8 where it cannot stand alone. */
static void test_byte_table(void **state)
{
    (void)state;
    uq_tokenizer *t = make_bytelevel(NULL, gpt2_pre, 0, 0);
    for (int b = 0; b < 256; b++) {
        int32_t ids[4];
        size_t n = 0;
        if (b < 0x80) {
            ids[n++] = b;
        } else if (b < 0xC0) {
            ids[n++] = 0xC2;
            ids[n++] = b;
        } else if (b >= 0xC2 && b <= 0xDF) {
            ids[n++] = b;
            ids[n++] = 0x80;
        } else if (b >= 0xE0 && b <= 0xEF) {
            ids[n++] = b;
            ids[n++] = b == 0xE0 ? 0xA0 : 0x80;
            ids[n++] = 0x80;
        } else if (b >= 0xF0 && b <= 0xF4) {
            ids[n++] = b;
            ids[n++] = b == 0xF0 ? 0x90 : 0x80;
            ids[n++] = 0x80;
            ids[n++] = 0x80;
        } else {
            ids[n++] = b; /* never valid: U+FFFD */
        }
        size_t len;
        char *s = stream_decode(t, ids, n, 1, &len);
        if (b >= 0xC0 && (b < 0xC2 || b > 0xF4)) {
            assert_string_equal(s, "\xef\xbf\xbd");
        } else {
            assert_int_equal(len, n);
            for (size_t i = 0; i < n; i++) assert_int_equal((unsigned char)s[i], (unsigned)ids[i]);
        }
        /* And the text encodes back to the same ids. */
        if (len == n) {
            size_t k;
            int32_t *back = encode(t, s, len, 0, &k);
            assert_int_equal(k, n);
            assert_memory_equal(back, ids, n * sizeof *ids);
            free(back);
        }
        free(s);
    }
    uq_tokenizer_free(t);
}

static void test_split_pretokenizers(void **state)
{
    (void)state;
    /* Llama 3 / Qwen2 style: a Split regex, then ByteLevel without its own regex. */
    uq_tokenizer *t = make_bytelevel(
        NULL,
        "{\"type\": \"Sequence\", \"pretokenizers\": ["
        " {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+"
        "|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
        "  \"behavior\": \"Isolated\", \"invert\": false},"
        " {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]}",
        1, 0);
    const int32_t digits3[] = {120, 261, 51, 52, 53};
    check_ids(t, "x12345", 0, digits3, 5);
    const int32_t apostrophe[] = {73, 39, 76, 76}; /* "I" "'LL" (case-insensitive) */
    check_ids(t, "I'LL", 0, apostrophe, 4);
    uq_tokenizer_free(t);

    /* Digits, individual or not. */
    t = make_bytelevel(NULL,
                       "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": true},"
                       " {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]}",
                       0, 0);
    const int32_t each[] = {97, 49, 50};
    check_ids(t, "a12", 0, each, 3);
    uq_tokenizer_free(t);
    t = make_bytelevel(NULL,
                       "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": false},"
                       " {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]}",
                       0, 0);
    const int32_t runs[] = {97, 261};
    check_ids(t, "a12", 0, runs, 2);
    uq_tokenizer_free(t);

    /* Split behaviors on a literal "-": "a-b--c". */
    static const struct {
        const char *behavior;
        int invert;
        int32_t ids[8];
        size_t n;
    } cases[] = {
        {"Removed", 0, {97, 98, 99}, 3},
        {"Isolated", 0, {97, 45, 98, 45, 45, 99}, 6},
        {"MergedWithPrevious", 0, {97, 45, 98, 45, 45, 99}, 6},
        {"MergedWithNext", 0, {97, 45, 98, 45, 45, 99}, 6},
        {"Contiguous", 0, {97, 45, 98, 45, 45, 99}, 6},
        {"Removed", 1, {45, 45, 45}, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char pre[512];
        snprintf(pre, sizeof pre,
                 "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"},"
                 " \"behavior\": \"%s\", \"invert\": %s}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
                 " \"use_regex\": false}]}",
                 cases[i].behavior, cases[i].invert ? "true" : "false");
        t = make_bytelevel(NULL, pre, 0, 0);
        check_ids(t, "a-b--c", 0, cases[i].ids, cases[i].n);
        uq_tokenizer_free(t);
    }
    /* Where the pieces fall shows in merges: "12" merges only inside one piece. */
    static const struct {
        const char *behavior;
        int32_t ids[4];
        size_t n;
    } merge_cases[] = {
        {"Isolated", {49, 50}, 2},           /* "1" "2" */
        {"MergedWithPrevious", {261}, 1},    /* "12" */
        {"MergedWithNext", {49, 50}, 2},     /* "1" "2" */
        {"Contiguous", {49, 50}, 2},         /* "1" "2" */
    };
    for (size_t i = 0; i < sizeof merge_cases / sizeof *merge_cases; i++) {
        char pre[512];
        snprintf(pre, sizeof pre,
                 "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"2\"},"
                 " \"behavior\": \"%s\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
                 " \"use_regex\": false}]}",
                 merge_cases[i].behavior);
        t = make_bytelevel(NULL, pre, 0, 0);
        check_ids(t, "12", 0, merge_cases[i].ids, merge_cases[i].n);
        uq_tokenizer_free(t);
    }
    /* Whitespace / WhitespaceSplit / Punctuation pieces. */
    t = make_bytelevel(NULL,
                       "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"WhitespaceSplit\"},"
                       " {\"type\": \"Punctuation\", \"behavior\": \"Isolated\"},"
                       " {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]}",
                       0, 0);
    const int32_t ws[] = {104, 105, 33, 116, 257};
    check_ids(t, "  hi!  the ", 0, ws, 5);
    uq_tokenizer_free(t);
    t = make_bytelevel(NULL,
                       "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Whitespace\"},"
                       " {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]}",
                       0, 0);
    const int32_t words[] = {104, 105, 44, 46, 116, 257, 33};
    check_ids(t, " hi,. the!\n", 0, words, 7);
    uq_tokenizer_free(t);
}

static void test_normalizers(void **state)
{
    (void)state;
    /* NFC: text already in NFC passes; text NFC would change is refused. */
    uq_tokenizer *t = make_bytelevel("{\"type\": \"NFC\"}", gpt2_pre, 0, 0);
    size_t n;
    const char *nfc = "caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x99\x82";
    int32_t *ids = encode(t, nfc, strlen(nfc), 0, &n);
    char *s = decode(t, ids, n, 1, NULL);
    assert_string_equal(s, nfc);
    free(s);
    free(ids);
    assert_int_equal(uq_tokenizer_encode(t, "cafe\xcc\x81", 6, 0, &ids, &n), UQ_ERR_UNSUPPORTED);
    assert_non_null(strstr(uq_last_error(), "NFC"));
    uq_tokenizer_free(t);

    /* Sequence of Replace (string and regex), Strip and Prepend. */
    t = make_bytelevel("{\"type\": \"Sequence\", \"normalizers\": ["
                       " {\"type\": \"Strip\", \"strip_left\": true, \"strip_right\": true},"
                       " {\"type\": \"Replace\", \"pattern\": {\"String\": \"x\"}, \"content\": \"th\"},"
                       " {\"type\": \"Replace\", \"pattern\": {\"Regex\": \"a+\"}, \"content\": \"e\"},"
                       " {\"type\": \"Prepend\", \"prepend\": \" \"}]}",
                       gpt2_pre, 0, 0);
    const int32_t want[] = {258};
    check_ids(t, "  xaaa\n", 0, want, 1);
    uq_tokenizer_free(t);
}

static void test_metaspace_and_templates(void **state)
{
    (void)state;
    static const char base[] =
        "{\"added_tokens\": [{\"id\": 5, \"content\": \"<s>\", \"special\": true, \"normalized\": false},"
        "  {\"id\": 6, \"content\": \"</s>\", \"special\": true, \"normalized\": false}],"
        " \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\xe2\x96\x81\", \"prepend_scheme\": \"%s\","
        "  \"split\": true},"
        " \"post_processor\": %s,"
        " \"decoder\": {\"type\": \"Metaspace\", \"replacement\": \"\xe2\x96\x81\", \"prepend_scheme\": \"%s\"},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"\xe2\x96\x81\": 0, \"a\": 1, \"b\": 2, \"\xe2\x96\x81" "a\": 3,"
        "  \"\xe2\x96\x81" "b\": 4, \"<s>\": 5, \"</s>\": 6},"
        "  \"merges\": [\"\xe2\x96\x81 a\", \"\xe2\x96\x81 b\"]}}";
    static const char *posts[] = {
        "null",
        "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},"
        " {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"</s>\", \"type_id\": 0}}],"
        " \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [5], \"tokens\": [\"<s>\"]},"
        " \"</s>\": {\"id\": \"</s>\", \"ids\": [6], \"tokens\": [\"</s>\"]}}}",
        "{\"type\": \"TemplateProcessing\", \"single\": \"<s>:0 $A:0 </s>:0\", \"pair\": \"$A $B\","
        " \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [5], \"tokens\": [\"<s>\"]},"
        " \"</s>\": {\"id\": \"</s>\", \"ids\": [6], \"tokens\": [\"</s>\"]}}}",
        "{\"type\": \"RobertaProcessing\", \"sep\": [\"</s>\", 6], \"cls\": [\"<s>\", 5], \"trim_offsets\": true}",
        "{\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"}, {\"type\": \"BertProcessing\","
        " \"sep\": [\"</s>\", 6], \"cls\": [\"<s>\", 5]}]}",
    };
    char json[4096];
    for (size_t i = 0; i < sizeof posts / sizeof *posts; i++) {
        snprintf(json, sizeof json, base, "always", posts[i], "always");
        uq_tokenizer *t = parse(json);
        const int32_t ab[] = {3, 4};
        check_ids(t, "a b", 0, ab, 2);
        const int32_t wrapped[] = {5, 3, 4, 6};
        if (i == 0) check_ids(t, "a b", 1, ab, 2);
        else check_ids(t, "a b", 1, wrapped, 4);
        assert_int_equal(uq_tokenizer_adds_bos(t), i != 0);
        check_decode(t, ab, 2, 1, "a b");
        /* Two spaces: "▁a", "▁", "▁b". */
        const int32_t two[] = {3, 0, 4};
        check_ids(t, "a  b", 0, two, 3);
        check_decode(t, two, 3, 1, "a  b");
        const int32_t around[] = {3, 5, 4};
        check_ids(t, "a<s>b", 0, around, 3);
        check_decode(t, around, 3, 0, "a<s> b");
        check_decode(t, wrapped, 4, 1, "a b");
        size_t len;
        char *s = stream_decode(t, wrapped, 4, 0, &len);
        assert_string_equal(s, "<s> a b</s>");
        free(s);
        uq_tokenizer_free(t);
    }
    /* prepend_scheme "first": only the start of the text gets "▁". */
    snprintf(json, sizeof json, base, "first", "null", "first");
    uq_tokenizer *t = parse(json);
    const int32_t first[] = {3, 5, 2};
    check_ids(t, "a<s>b", 0, first, 3);
    uq_tokenizer_free(t);
    snprintf(json, sizeof json, base, "never", "null", "never");
    t = parse(json);
    const int32_t never[] = {1, 4};
    check_ids(t, "a b", 0, never, 2);
    check_decode(t, never, 2, 1, "a b");
    uq_tokenizer_free(t);
}

static void test_unk_and_prefix(void **state)
{
    (void)state;
    static const char unk[] =
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": 0, \"a\": 1, \"b\": 2}, \"merges\": [],"
        " \"unk_token\": %s, \"fuse_unk\": %s}}";
    char json[512];
    snprintf(json, sizeof json, unk, "\"<unk>\"", "true");
    uq_tokenizer *t = parse(json);
    const int32_t fused[] = {1, 0, 2};
    check_ids(t, "axyb", 0, fused, 3);
    /* No decoder: tokens joined by spaces. */
    check_decode(t, fused, 3, 1, "a <unk> b");
    uq_tokenizer_free(t);
    snprintf(json, sizeof json, unk, "\"<unk>\"", "false");
    t = parse(json);
    const int32_t each[] = {1, 0, 0, 2};
    check_ids(t, "axyb", 0, each, 4);
    uq_tokenizer_free(t);
    snprintf(json, sizeof json, unk, "null", "false");
    t = parse(json);
    const int32_t dropped[] = {1, 2};
    check_ids(t, "axyb", 0, dropped, 2);
    uq_tokenizer_free(t);
    /* An unk token missing from the vocabulary fails when needed. */
    snprintf(json, sizeof json, unk, "\"<nope>\"", "false");
    t = parse(json);
    check_ids(t, "ab", 0, dropped, 2);
    int32_t *ids;
    size_t n;
    assert_int_equal(uq_tokenizer_encode(t, "ax", 2, 0, &ids, &n), UQ_ERR_CONFIG);
    uq_tokenizer_free(t);

    /* continuing_subword_prefix / end_of_word_suffix. */
    t = parse("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"##b\": 1, \"ab\": 2, \"##a\": 3},"
              " \"merges\": [\"a ##b\"], \"continuing_subword_prefix\": \"##\"}}");
    const int32_t ab[] = {2};
    check_ids(t, "ab", 0, ab, 1);
    const int32_t aa[] = {0, 3};
    check_ids(t, "aa", 0, aa, 2);
    uq_tokenizer_free(t);
    t = parse("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b</w>\": 1, \"ab</w>\": 2},"
              " \"merges\": [[\"a\", \"b</w>\"]], \"end_of_word_suffix\": \"</w>\"}}");
    check_ids(t, "ab", 0, ab, 1);
    uq_tokenizer_free(t);
}

/* ------------------------------------------------------------- bad input */

static void test_bad_json(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        uq_status st;
        const char *msg;
    } cases[] = {
        {"", UQ_ERR_JSON, NULL},
        {"not json", UQ_ERR_JSON, NULL},
        {"[1, 2]", UQ_ERR_JSON, NULL},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}", UQ_ERR_JSON, NULL},
        {"{\"model\": {}, \"model\": {}}", UQ_ERR_JSON, NULL},
        {"{}", UQ_ERR_FIELD, "model"},
        {"{\"model\": 5}", UQ_ERR_FIELD, "model"},
        {"{\"model\": {\"type\": 5}}", UQ_ERR_FIELD, "model.type"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}", UQ_ERR_FIELD, "model.vocab"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", UQ_ERR_FIELD, "model.vocab"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"0\"}, \"merges\": []}}", UQ_ERR_FIELD, "model.vocab"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 1.5}, \"merges\": []}}", UQ_ERR_FIELD, "model.vocab"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 4294967296}, \"merges\": []}}", UQ_ERR_FIELD,
         "model.vocab"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 100000000}, \"merges\": []}}", UQ_ERR_FIELD,
         "out of range"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}", UQ_ERR_DUPLICATE,
         "id 0"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}", UQ_ERR_FIELD,
         "merges[0]"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", UQ_ERR_FIELD,
         "merged token"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\", \"ab\"]}}",
         UQ_ERR_FIELD, "merges[1]"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\"]]}}", UQ_ERR_FIELD, "merges[0]"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[1, 2]]}}", UQ_ERR_FIELD, "merges[0]"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": {}}}", UQ_ERR_FIELD, "model.merges"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"byte_fallback\": 1}}", UQ_ERR_FIELD, "byte_fallback"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"unk_token\": 3}}", UQ_ERR_FIELD, "unk_token"},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", UQ_ERR_UNSUPPORTED, "WordPiece"},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}", UQ_ERR_UNSUPPORTED, "Unigram"},
        {"{\"model\": {\"type\": \"Magic\", \"vocab\": {}}}", UQ_ERR_UNSUPPORTED, "Magic"},
        {"{\"model\": {\"vocab\": {\"a\": 0}}}", UQ_ERR_UNSUPPORTED, "model"},
        {"{\"added_tokens\": {}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", UQ_ERR_FIELD,
         "added_tokens"},
        {"{\"added_tokens\": [{\"id\": \"x\", \"content\": \"a\"}], \"model\": {\"type\": \"BPE\", \"vocab\": {}}}",
         UQ_ERR_FIELD, "added_tokens[0]"},
        {"{\"added_tokens\": [{\"id\": 0}], \"model\": {\"type\": \"BPE\", \"vocab\": {}}}", UQ_ERR_FIELD,
         "added_tokens[0].content"},
        {"{\"added_tokens\": [{\"id\": 0, \"content\": \"a\", \"special\": \"yes\"}], \"model\": {\"type\": \"BPE\","
         " \"vocab\": {}}}",
         UQ_ERR_FIELD, "added_tokens[0]"},
        {"{\"normalizer\": {\"type\": \"NFKC\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}}}", UQ_ERR_UNSUPPORTED,
         "NFKC"},
        {"{\"normalizer\": {\"type\": \"Lowercase\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}}}",
         UQ_ERR_UNSUPPORTED, "Lowercase"},
        {"{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\"}]}, \"model\":"
         " {\"type\": \"BPE\", \"vocab\": {}}}",
         UQ_ERR_FIELD, "Prepend"},
        {"{\"normalizer\": [], \"model\": {\"type\": \"BPE\", \"vocab\": {}}}", UQ_ERR_FIELD, "normalizer"},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"},"
         " \"model\": {\"type\": \"BPE\", \"vocab\": {}}}",
         UQ_ERR_UNSUPPORTED, "regex"},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}}, \"model\": {\"type\": \"BPE\","
         " \"vocab\": {}}}",
         UQ_ERR_FIELD, "behavior"},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": \"a\", \"behavior\": \"Isolated\"}, \"model\":"
         " {\"type\": \"BPE\", \"vocab\": {}}}",
         UQ_ERR_FIELD, "pattern"},
        {"{\"pre_tokenizer\": {\"type\": \"UnicodeScripts\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}}}",
         UQ_ERR_UNSUPPORTED, "UnicodeScripts"},
        {"{\"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"ab\"}, \"model\": {\"type\": \"BPE\","
         " \"vocab\": {}}}",
         UQ_ERR_FIELD, "Metaspace"},
        {"{\"decoder\": {\"type\": \"WordPiece\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}}}", UQ_ERR_UNSUPPORTED,
         "WordPiece"},
        {"{\"decoder\": {\"type\": \"Strip\", \"content\": \" \", \"start\": -1}, \"model\": {\"type\": \"BPE\","
         " \"vocab\": {}}}",
         UQ_ERR_FIELD, "Strip"},
        {"{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\","
         " \"type_id\": 0}}], \"special_tokens\": {}}, \"model\": {\"type\": \"BPE\", \"vocab\": {}}}",
         UQ_ERR_FIELD, "<s>"},
        {"{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\","
         " \"type_id\": 0}}], \"special_tokens\": {\"<s>\": {\"ids\": [7]}}}, \"model\": {\"type\": \"BPE\","
         " \"vocab\": {\"a\": 0}}}",
         UQ_ERR_FIELD, "out of range"},
        {"{\"post_processor\": {\"type\": \"Funky\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}}}",
         UQ_ERR_UNSUPPORTED, "Funky"},
    };
    /* A decoder chain too long to stream. */
    char many[8192];
    size_t o = (size_t)snprintf(many, sizeof many, "{\"decoder\": {\"type\": \"Sequence\", \"decoders\": [");
    for (int i = 0; i < 100; i++)
        o += (size_t)snprintf(many + o, sizeof many - o, "%s{\"type\": \"Fuse\"}", i ? ", " : "");
    snprintf(many + o, sizeof many - o, "]}, \"model\": {\"type\": \"BPE\", \"vocab\": {}}}");
    assert_int_equal(parse_status(many), UQ_ERR_UNSUPPORTED);
    assert_non_null(strstr(uq_last_error(), "steps"));
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uq_status st = parse_status(cases[i].json);
        if (st != cases[i].st)
            fail_msg("case %zu: %s instead of %s (%s)", i, uq_status_name(st), uq_status_name(cases[i].st),
                     uq_last_error());
        if (cases[i].msg && !strstr(uq_last_error(), cases[i].msg))
            fail_msg("case %zu: message \"%s\" does not name \"%s\"", i, uq_last_error(), cases[i].msg);
        assert_non_null(strstr(uq_last_error(), "bad.json"));
    }
    uq_tokenizer *t = (uq_tokenizer *)&t;
    assert_int_equal(uq_tokenizer_parse(NULL, 5, NULL, &t), UQ_ERR_ARG);
    assert_int_equal(uq_tokenizer_parse("{}", 2, NULL, NULL), UQ_ERR_ARG);
    uq_tokenizer_free(NULL);
    uq_tokstream_free(NULL);
}

/* Truncations and byte mutations of a real tokenizer.json: errors, never a
 * crash; whatever parses encodes and decodes. */
static void test_mutations(void **state)
{
    (void)state;
    char p[4096];
    if (!tu_shared_has("models/stories260K/tokenizer.json")) skip();
    size_t len;
    char *json = tu_read_file(tu_shared_path("models/stories260K/tokenizer.json", p, sizeof p), &len);
    for (size_t cut = 0; cut < len; cut += len / 97 + 1) {
        uq_tokenizer *t = NULL;
        assert_int_equal(uq_tokenizer_parse(json, cut, NULL, &t), UQ_ERR_JSON);
    }
    char *m = malloc(len);
    assert_non_null(m);
    uint64_t seed = 12345;
    size_t parsed = 0;
    const char *sample = "Once upon a time \xc3\xa9 \xf0\x9f\x99\x82 <s> 123";
    for (int iter = 0; iter < 400; iter++) {
        memcpy(m, json, len);
        int edits = 1 + (int)(tu_rand_u64(&seed) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = tu_rand_u64(&seed) % len;
            static const char bytes[] = "\"{}[]:,0123456789-eE.tfn \\u\xe2";
            m[at] = bytes[tu_rand_u64(&seed) % (sizeof bytes - 1)];
        }
        uq_tokenizer *t = NULL;
        if (uq_tokenizer_parse(m, len, NULL, &t) != UQ_OK) continue;
        parsed++;
        int32_t *ids;
        size_t n;
        if (uq_tokenizer_encode(t, sample, strlen(sample), 1, &ids, &n) == UQ_OK) {
            char *s;
            size_t sl;
            assert_int_equal(uq_tokenizer_decode(t, ids, n, 0, &s, &sl), UQ_OK);
            assert_true(utf8_ok(s, sl));
            free(s);
            free(ids);
        }
        uq_tokenizer_free(t);
    }
    print_message("%zu of 400 mutated files parsed\n", parsed);
    free(m);
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_reference),
        cmocka_unit_test(test_bench_reference),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_bench_counts),
        cmocka_unit_test(test_load_paths),
        cmocka_unit_test(test_stream_multibyte),
        cmocka_unit_test(test_stream_holdback),
        cmocka_unit_test(test_bytelevel_bpe),
        cmocka_unit_test(test_byte_table),
        cmocka_unit_test(test_split_pretokenizers),
        cmocka_unit_test(test_normalizers),
        cmocka_unit_test(test_metaspace_and_templates),
        cmocka_unit_test(test_unk_and_prefix),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
