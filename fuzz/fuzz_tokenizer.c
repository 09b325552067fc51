/* libFuzzer target for the tokenizer.
 *
 * Each input is used three ways:
 *  (a) as a tokenizer.json document (uq_tokenizer_parse); what parses then
 *      encodes a fixed sample and decodes a few ids;
 *  (b) as text, encoded and decoded with fixed tokenizers: a small byte-level
 *      BPE built here, and the one $UQ_FUZZ_TOKENIZER names (a tokenizer.json
 *      or a model folder, e.g. models/stories260K) when set;
 *  (c) as a sequence of ids, decoded with the same tokenizers.
 * It checks that encoding gives ids in range, that decoding id by id gives
 * whole UTF-8 pieces adding up to the whole decoding, and, for the
 * byte-level tokenizer, that decode(encode(text)) == text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uquant.h"

static uq_tokenizer *fixed[2];
static int roundtrip[2];
static int inited;

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
        if ((c == 0xE0 && u[i + 1] < 0xA0) || (c == 0xED && u[i + 1] > 0x9F) ||
            (c == 0xF0 && u[i + 1] < 0x90) || (c == 0xF4 && u[i + 1] > 0x8F))
            return 0;
        i += need;
    }
    return 1;
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", what);
        abort();
    }
}

/* Decodes ids whole and as a stream; they must agree. Returns the text. */
static char *decode_both(const uq_tokenizer *t, const int32_t *ids, size_t n, int skip,
                         size_t *len)
{
    char *whole = NULL;
    size_t wlen = 0;
    if (uq_tokenizer_decode(t, ids, n, skip, &whole, &wlen) != UQ_OK) return NULL;
    check(utf8_ok(whole, wlen), "decoded text is not UTF-8");
    uq_tokstream *s = NULL;
    if (uq_tokstream_new(t, skip, &s) != UQ_OK) {
        free(whole);
        return NULL;
    }
    size_t off = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *p;
        size_t pl;
        uq_status st = i < n ? uq_tokstream_push(s, ids[i], &p, &pl) : uq_tokstream_finish(s, &p, &pl);
        if (st != UQ_OK) {
            off = SIZE_MAX;
            break;
        }
        check(utf8_ok(p, pl), "streamed piece is not whole UTF-8");
        check(off + pl <= wlen && memcmp(whole + off, p, pl) == 0, "stream differs from whole decoding");
        off += pl;
    }
    if (off != SIZE_MAX) check(off == wlen, "stream shorter than whole decoding");
    uq_tokstream_free(s);
    *len = wlen;
    return whole;
}

static void exercise_text(const uq_tokenizer *t, const char *text, size_t len, int want_roundtrip)
{
    int32_t vs = uq_tokenizer_vocab_size(t);
    for (int add_special = 0; add_special < 2; add_special++) {
        int32_t *ids = NULL;
        size_t n = 0;
        uq_status st = uq_tokenizer_encode(t, text, len, add_special, &ids, &n);
        if (st != UQ_OK) {
            check(ids == NULL && n == 0, "failed encode left output");
            return;
        }
        for (size_t i = 0; i < n; i++) check(ids[i] >= 0 && ids[i] < vs, "id out of range");
        size_t dlen;
        char *back = decode_both(t, ids, n, 0, &dlen);
        /* Exact unless added tokens that swallow spaces are in the text. */
        if (back && want_roundtrip && !add_special && !memmem(text, len, "<|im_start|>", 12) &&
            !memmem(text, len, "[sep]", 5))
            check(dlen == len && memcmp(back, text, len) == 0, "round trip differs");
        free(back);
        back = decode_both(t, ids, n, 1, &dlen);
        free(back);
        free(ids);
    }
}

static void exercise_ids(const uq_tokenizer *t, const uint8_t *data, size_t size)
{
    int32_t vs = uq_tokenizer_vocab_size(t);
    size_t n = size / 2;
    if (n == 0 || vs <= 0) return;
    int32_t *ids = malloc(n * sizeof *ids);
    if (!ids) return;
    for (size_t i = 0; i < n; i++) {
        unsigned v = (unsigned)data[2 * i] | (unsigned)data[2 * i + 1] << 8;
        /* Mostly valid ids, a few out of range. */
        ids[i] = v >= 0xFF00 ? (int32_t)(v - 0x10000) : (int32_t)(v % (unsigned)(vs + 2));
    }
    size_t len;
    free(decode_both(t, ids, n, 0, &len));
    free(decode_both(t, ids, n, 1, &len));
    free(ids);
}

/* A byte-level BPE: the 256 byte characters, some merges, special and
 * stripping added tokens, GPT-2 pre-tokenization. */
static char *byte_level_json(void)
{
    static const char *merges[][2] = {
        {"\xc4\xa0", "t"}, {"h", "e"}, {"\xc4\xa0t", "he"}, {"i", "n"}, {"in", "g"}, {"e", "r"},
        {"\xc4\xa0", "a"}, {"o", "n"}, {"r", "e"}, {"a", "n"}, {"\xc4\xa0", "s"}, {"e", "d"},
        {"\xc4\xa0", "\xc4\xa0"}, {"\xc4\x8a", "\xc4\x8a"}, {"1", "2"}, {"\xc3\xa2", "\xc4\xa2"},
    };
    size_t nm = sizeof merges / sizeof *merges;
    size_t cap = 65536, o = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    o += (size_t)snprintf(s + o, cap - o,
                          "{\"added_tokens\": ["
                          "{\"id\": %zu, \"content\": \"<|endoftext|>\", \"special\": true, \"normalized\": false},"
                          "{\"id\": %zu, \"content\": \"<|im_start|>\", \"special\": true, \"normalized\": false,"
                          " \"rstrip\": true},"
                          "{\"id\": %zu, \"content\": \"[sep]\", \"special\": false, \"normalized\": false,"
                          " \"lstrip\": true, \"single_word\": true},"
                          "{\"id\": %zu, \"content\": \"the\", \"special\": false, \"normalized\": true}],"
                          "\"normalizer\": null,"
                          "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
                          " \"use_regex\": true},"
                          "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\":"
                          " {\"id\": \"<|endoftext|>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}],"
                          " \"special_tokens\": {\"<|endoftext|>\": {\"id\": \"<|endoftext|>\", \"ids\": [%zu],"
                          " \"tokens\": [\"<|endoftext|>\"]}}},"
                          "\"decoder\": {\"type\": \"ByteLevel\"},"
                          "\"model\": {\"type\": \"BPE\", \"ignore_merges\": true, \"vocab\": {",
                          256 + nm, 257 + nm, 258 + nm, 259 + nm, 256 + nm);
    uint32_t n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = printable ? (uint32_t)b : 256 + n++;
        char key[8];
        if (cp == '"' || cp == '\\') snprintf(key, sizeof key, "\\%c", (char)cp);
        else if (cp < 0x80) snprintf(key, sizeof key, "%c", (char)cp);
        else snprintf(key, sizeof key, "%c%c", (char)(0xC0 | (cp >> 6)), (char)(0x80 | (cp & 0x3F)));
        o += (size_t)snprintf(s + o, cap - o, "%s\"%s\": %d", b ? ", " : "", key, b);
    }
    for (size_t i = 0; i < nm; i++)
        o += (size_t)snprintf(s + o, cap - o, ", \"%s%s\": %zu", merges[i][0], merges[i][1], 256 + i);
    o += (size_t)snprintf(s + o, cap - o, "}, \"merges\": [");
    for (size_t i = 0; i < nm; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s\"%s %s\"", i ? ", " : "", merges[i][0], merges[i][1]);
    snprintf(s + o, cap - o, "]}}");
    return s;
}

static void init(void)
{
    inited = 1;
    char *json = byte_level_json();
    if (json) {
        if (uq_tokenizer_parse(json, strlen(json), "embedded", &fixed[0]) != UQ_OK) {
            fprintf(stderr, "fuzz_tokenizer: embedded tokenizer: %s\n", uq_last_error());
            abort();
        }
        roundtrip[0] = 1;
        free(json);
    }
    const char *path = getenv("UQ_FUZZ_TOKENIZER");
    if (path && *path) {
        if (uq_tokenizer_load(path, &fixed[1]) != UQ_OK)
            fprintf(stderr, "fuzz_tokenizer: %s: %s (going on without it)\n", path, uq_last_error());
        roundtrip[1] = getenv("UQ_FUZZ_ROUNDTRIP") != NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!inited) init();
    const char *text = (const char *)data;

    /* (a) the input as tokenizer.json */
    uq_tokenizer *t = NULL;
    if (uq_tokenizer_parse(text, size, "fuzz", &t) == UQ_OK) {
        static const char sample[] = "Hello, world! <s> 12345 caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x99\x82\n\n  x";
        exercise_text(t, sample, sizeof sample - 1, 0);
        int32_t vs = uq_tokenizer_vocab_size(t);
        int32_t ids[64];
        size_t n = 0;
        for (int32_t i = 0; i < vs && n < 64; i++) ids[n++] = i;
        size_t len;
        free(decode_both(t, ids, n, 0, &len));
        uq_tokenizer_free(t);
    } else {
        if (t != NULL) abort();
    }

    /* (b) as text, (c) as ids */
    for (int k = 0; k < 2; k++) {
        if (!fixed[k]) continue;
        exercise_text(fixed[k], text, size, roundtrip[k]);
        exercise_ids(fixed[k], data, size);
    }
    return 0;
}
