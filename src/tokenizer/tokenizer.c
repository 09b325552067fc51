/* Loading tokenizer.json (and tokenizer_config.json) into a uq_tokenizer. */
#include "tokenizer/tok_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Largest template after composing post-processors. */
#define TK_MAX_TEMPLATE 4096
/* Most normalizer / pre-tokenizer / decoder steps (decoding recurses once
 * per decoder step). */
#define TK_MAX_STEPS 64
/* Largest tokenizer file read. */
#define TK_MAX_FILE ((size_t)1 << 31)

typedef struct loader {
    uq_tokenizer *t;
    const char *label;
    /* growable arrays */
    size_t cap_norms, cap_pres, cap_decs;
} loader;

#define FAIL(st, ...) uq_fail((st), __VA_ARGS__)

/* -------------------------------------------------------- JSON helpers */

/* 1: a string (s, len set), 0: absent or null, -1: another type. */
static int get_str(const json_t *obj, const char *key, const char **s, size_t *len)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return -1;
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 1;
}

/* 1 / 0 for a boolean (def when absent or null), -1 for another type. */
static int get_bool(const json_t *obj, const char *key, int def)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return def;
    if (!json_is_boolean(v)) return -1;
    return json_is_true(v);
}

/* 1: a non-negative integer below limit, 0: absent or null, -1: otherwise. */
static int get_uint(const json_t *obj, const char *key, json_int_t limit, json_int_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0 || x >= limit) return -1;
    *out = x;
    return 1;
}

static const char *type_of(const json_t *obj)
{
    json_t *v = json_object_get(obj, "type");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A printable excerpt of a token for messages. */
static const char *excerpt(const char *s, size_t len, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\') {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    if (o >= cap) o = cap - 1;
    buf[o] = '\0';
    return buf;
}

static char *dup_str(loader *L, const char *s, size_t len)
{
    return tk_arena_dup(&L->t->arena, s, len);
}

/* --------------------------------------------------------------- model */

static uq_status add_model_token(loader *L, const char *key, size_t klen, int32_t id)
{
    uq_tokenizer *t = L->t;
    char ex[96];
    if (t->ids[id].s) {
        char ex2[96];
        return FAIL(UQ_ERR_DUPLICATE, "%s: model.vocab: id %d given to both \"%s\" and \"%s\"",
                    L->label, (int)id, excerpt(t->ids[id].s, t->ids[id].len, ex2, sizeof ex2),
                    excerpt(key, klen, ex, sizeof ex));
    }
    char *s = dup_str(L, key, klen);
    if (!s) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
    t->ids[id].s = s;
    t->ids[id].len = (uint32_t)klen;
    if (tk_smap_put(&t->vocab, s, klen, id, NULL) != 0)
        return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
    return UQ_OK;
}

/* Reads the vocabulary and the added tokens' ids; sizes the id table. */
static uq_status parse_vocab(loader *L, json_t *model, json_t *added)
{
    uq_tokenizer *t = L->t;
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return FAIL(UQ_ERR_FIELD, "%s: model.vocab: missing or not an object", L->label);

    const char *key;
    size_t klen;
    json_t *v;
    json_int_t max_id = -1;
    size_t count = json_object_size(vocab);
    char ex[96];
    json_object_keylen_foreach(vocab, key, klen, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= INT32_MAX)
            return FAIL(UQ_ERR_FIELD,
                        "%s: model.vocab[\"%s\"]: id must be an integer in [0, 2^31 - 1)",
                        L->label, excerpt(key, klen, ex, sizeof ex));
        if (klen > UINT32_MAX / 2)
            return FAIL(UQ_ERR_FIELD, "%s: model.vocab: token too long", L->label);
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    size_t n_added = json_is_array(added) ? json_array_size(added) : 0;
    for (size_t i = 0; i < n_added; i++) {
        json_t *a = json_array_get(added, i);
        json_int_t id;
        if (!json_is_object(a) || get_uint(a, "id", INT32_MAX, &id) != 1)
            return FAIL(UQ_ERR_FIELD,
                        "%s: added_tokens[%zu]: not an object with an integer id in [0, 2^31 - 1)",
                        L->label, i);
        if (id > max_id) max_id = id;
    }
    /* Ids may have gaps, but a table far larger than the vocabulary is an error. */
    size_t n_ids = (size_t)(max_id + 1);
    if (n_ids > 4 * (count + n_added) + 65536)
        return FAIL(UQ_ERR_FIELD, "%s: model.vocab: ids out of range (largest %lld for %zu tokens)",
                    L->label, (long long)max_id, count + n_added);
    t->n_ids = (int32_t)n_ids;
    t->ids = calloc(n_ids ? n_ids : 1, sizeof *t->ids);
    if (!t->ids) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
    for (size_t i = 0; i < n_ids; i++) t->ids[i].added = -1;
    json_object_keylen_foreach(vocab, key, klen, v) {
        uq_status st = add_model_token(L, key, klen, (int32_t)json_integer_value(v));
        if (st) return st;
    }
    return UQ_OK;
}

static uq_status parse_added(loader *L, json_t *added)
{
    uq_tokenizer *t = L->t;
    if (!added || json_is_null(added)) return UQ_OK;
    if (!json_is_array(added))
        return FAIL(UQ_ERR_FIELD, "%s: added_tokens: not an array", L->label);
    size_t n = json_array_size(added);
    t->added = calloc(n ? n : 1, sizeof *t->added);
    if (!t->added) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(added, i);
        const char *s;
        size_t len;
        json_int_t id = 0;
        get_uint(a, "id", INT32_MAX, &id); /* checked by parse_vocab */
        if (get_str(a, "content", &s, &len) != 1)
            return FAIL(UQ_ERR_FIELD, "%s: added_tokens[%zu].content: missing or not a string",
                        L->label, i);
        int special = get_bool(a, "special", 0);
        int single = get_bool(a, "single_word", 0);
        int lstrip = get_bool(a, "lstrip", 0);
        int rstrip = get_bool(a, "rstrip", 0);
        int normalized = special < 0 ? 0 : get_bool(a, "normalized", !special);
        if (special < 0 || single < 0 || lstrip < 0 || rstrip < 0 || normalized < 0)
            return FAIL(UQ_ERR_FIELD,
                        "%s: added_tokens[%zu]: special / single_word / lstrip / rstrip / "
                        "normalized must be booleans",
                        L->label, i);
        if (len == 0) continue; /* ignored, as the tokenizers library does */
        if (tk_smap_get(&t->added_map, s, len) >= 0) continue; /* first one wins */
        /* A token the model knows keeps the model's id. */
        int32_t vid = tk_smap_get(&t->vocab, s, len);
        if (vid >= 0) id = vid;
        tk_added *e = &t->added[t->n_added];
        e->content = dup_str(L, s, len);
        if (!e->content) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        e->len = len;
        e->norm = e->content;
        e->norm_len = len;
        e->id = (int32_t)id;
        e->special = (uint8_t)special;
        e->single_word = (uint8_t)single;
        e->lstrip = (uint8_t)lstrip;
        e->rstrip = (uint8_t)rstrip;
        e->normalized = (uint8_t)normalized;
        if (tk_smap_put(&t->added_map, e->content, len, (int32_t)id, NULL) != 0)
            return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        t->ids[id].added = (int32_t)t->n_added;
        t->n_added++;
    }
    return UQ_OK;
}

static uq_status parse_merge(loader *L, json_t *m, size_t i, const char **a, size_t *alen,
                             const char **b, size_t *blen)
{
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        size_t len = json_string_length(m);
        const char *sp = memchr(s, ' ', len);
        if (!sp)
            return FAIL(UQ_ERR_FIELD, "%s: model.merges[%zu]: \"a b\" expected", L->label, i);
        *a = s;
        *alen = (size_t)(sp - s);
        *b = sp + 1;
        *blen = len - *alen - 1;
        return UQ_OK;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0));
        *alen = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1));
        *blen = json_string_length(json_array_get(m, 1));
        return UQ_OK;
    }
    return FAIL(UQ_ERR_FIELD, "%s: model.merges[%zu]: a \"a b\" string or a pair of strings expected",
                L->label, i);
}

static uq_status parse_merges(loader *L, json_t *model)
{
    uq_tokenizer *t = L->t;
    json_t *merges = json_object_get(model, "merges");
    if (!merges || json_is_null(merges)) return UQ_OK;
    if (!json_is_array(merges))
        return FAIL(UQ_ERR_FIELD, "%s: model.merges: not an array", L->label);
    size_t n = json_array_size(merges);
    if (n >= UINT32_MAX) return FAIL(UQ_ERR_FIELD, "%s: model.merges: too many", L->label);
    tk_buf tmp = {0};
    char ex[96];
    uq_status st = UQ_OK;
    for (size_t i = 0; i < n && !st; i++) {
        const char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        st = parse_merge(L, json_array_get(merges, i), i, &a, &alen, &b, &blen);
        if (st) break;
        int32_t ia = tk_smap_get(&t->vocab, a, alen);
        int32_t ib = tk_smap_get(&t->vocab, b, blen);
        if (ia < 0 || ib < 0) {
            const char *bad = ia < 0 ? a : b;
            size_t badlen = ia < 0 ? alen : blen;
            st = FAIL(UQ_ERR_FIELD, "%s: model.merges[%zu]: token \"%s\" is not in the vocabulary",
                      L->label, i, excerpt(bad, badlen, ex, sizeof ex));
            break;
        }
        /* The merged token: a, then b without its continuing-subword prefix. */
        size_t skip = t->cont_prefix_len;
        if (skip > blen || (skip < blen && ((unsigned char)b[skip] & 0xC0) == 0x80)) {
            st = FAIL(UQ_ERR_FIELD,
                      "%s: model.merges[%zu]: \"%s\" does not carry the continuing-subword prefix",
                      L->label, i, excerpt(b, blen, ex, sizeof ex));
            break;
        }
        tmp.len = 0;
        tk_buf_put(&tmp, a, alen);
        tk_buf_put(&tmp, b + skip, blen - skip);
        if (tmp.oom) {
            st = FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
            break;
        }
        int32_t id = tk_smap_get(&t->vocab, tmp.p ? tmp.p : "", tmp.len);
        if (id < 0) {
            st = FAIL(UQ_ERR_FIELD, "%s: model.merges[%zu]: merged token \"%s\" is not in the vocabulary",
                      L->label, i, excerpt(tmp.p ? tmp.p : "", tmp.len, ex, sizeof ex));
            break;
        }
        /* A repeated pair keeps its last rank (as a map built in order does). */
        if (tk_pmap_put(&t->merges, ia, ib, (uint32_t)i, id) != 0)
            st = FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
    }
    tk_buf_free(&tmp);
    return st;
}

static uq_status opt_string(loader *L, json_t *obj, const char *key, const char **out,
                            size_t *outlen)
{
    const char *s;
    size_t len;
    int r = get_str(obj, key, &s, &len);
    *out = NULL;
    *outlen = 0;
    if (r < 0) return FAIL(UQ_ERR_FIELD, "%s: model.%s: not a string", L->label, key);
    if (r == 0) return UQ_OK;
    *out = dup_str(L, s, len);
    if (!*out) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
    *outlen = len;
    return UQ_OK;
}

static uq_status parse_model(loader *L, json_t *root)
{
    uq_tokenizer *t = L->t;
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model))
        return FAIL(UQ_ERR_FIELD, "%s: model: missing or not an object", L->label);
    json_t *type = json_object_get(model, "type");
    if (type && !json_is_string(type))
        return FAIL(UQ_ERR_FIELD, "%s: model.type: not a string", L->label);
    if (type) {
        const char *ty = json_string_value(type);
        if (strcmp(ty, "BPE") != 0) {
            if (!strcmp(ty, "WordPiece") || !strcmp(ty, "Unigram") || !strcmp(ty, "WordLevel"))
                return FAIL(UQ_ERR_UNSUPPORTED,
                            "%s: model type \"%s\" is not supported (only BPE models are)",
                            L->label, ty);
            char ex[64];
            return FAIL(UQ_ERR_UNSUPPORTED, "%s: unknown model type \"%s\"", L->label,
                        excerpt(ty, json_string_length(type), ex, sizeof ex));
        }
    } else if (!json_object_get(model, "merges")) {
        return FAIL(UQ_ERR_UNSUPPORTED, "%s: model has no type and is not a BPE model", L->label);
    }

    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_null(added) && !json_is_array(added))
        return FAIL(UQ_ERR_FIELD, "%s: added_tokens: not an array", L->label);
    uq_status st = parse_vocab(L, model, added);
    if (st) return st;

    st = opt_string(L, model, "unk_token", &t->unk, &t->unk_len);
    if (!st) st = opt_string(L, model, "continuing_subword_prefix", &t->cont_prefix, &t->cont_prefix_len);
    if (!st) st = opt_string(L, model, "end_of_word_suffix", &t->end_suffix, &t->end_suffix_len);
    if (st) return st;
    if (t->cont_prefix_len == 0) t->cont_prefix = NULL;
    if (t->end_suffix_len == 0) t->end_suffix = NULL;
    t->fuse_unk = get_bool(model, "fuse_unk", 0);
    t->byte_fallback = get_bool(model, "byte_fallback", 0);
    t->ignore_merges = get_bool(model, "ignore_merges", 0);
    if (t->fuse_unk < 0 || t->byte_fallback < 0 || t->ignore_merges < 0)
        return FAIL(UQ_ERR_FIELD, "%s: model: fuse_unk / byte_fallback / ignore_merges must be booleans",
                    L->label);
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !json_is_number(dropout))
        return FAIL(UQ_ERR_FIELD, "%s: model.dropout: not a number", L->label);
    /* Dropout only matters for training; encoding is deterministic here. */

    t->unk_id = t->unk ? tk_smap_get(&t->vocab, t->unk, t->unk_len) : -1;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_ids[b] = tk_smap_get(&t->vocab, name, 6);
    }
    for (int c = 0; c < 128; c++) {
        char ch = (char)c;
        t->ascii_ids[c] = tk_smap_get(&t->vocab, &ch, 1);
    }
    st = parse_merges(L, model);
    if (st) return st;
    return parse_added(L, added);
}

/* ---------------------------------------------------------- normalizer */

static tk_norm *new_norm(loader *L, int kind)
{
    uq_tokenizer *t = L->t;
    if (t->n_norms >= TK_MAX_STEPS) return NULL;
    if (t->n_norms == L->cap_norms) {
        size_t cap = L->cap_norms ? L->cap_norms * 2 : 4;
        tk_norm *n = realloc(t->norms, cap * sizeof *n);
        if (!n) return NULL;
        t->norms = n;
        L->cap_norms = cap;
    }
    tk_norm *n = &t->norms[t->n_norms++];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    return n;
}

/* A {"String": s} or {"Regex": r} pattern. */
static uq_status parse_pattern(loader *L, json_t *obj, const char *path, const char **lit,
                               size_t *litlen, tk_regex **re)
{
    json_t *p = json_object_get(obj, "pattern");
    *lit = NULL;
    *litlen = 0;
    *re = NULL;
    if (!json_is_object(p))
        return FAIL(UQ_ERR_FIELD, "%s: %s.pattern: missing or not an object", L->label, path);
    const char *s;
    size_t len;
    char what[160];
    snprintf(what, sizeof what, "%s: %s.pattern", L->label, path);
    int r = get_str(p, "String", &s, &len);
    if (r == 1) {
        *lit = dup_str(L, s, len);
        if (!*lit) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        *litlen = len;
        return UQ_OK;
    }
    r = get_str(p, "Regex", &s, &len);
    if (r == 1) return tk_regex_compile(s, len, re, what);
    return FAIL(UQ_ERR_FIELD, "%s: %s.pattern: needs a String or Regex string", L->label, path);
}

/* Code points whose presence may make NFC differ from the text itself:
 * combining marks, conjoining jamo, and the characters NFC replaces. */
static const char nfc_unsafe[] =
    "[\\p{M}\\x{1100}-\\x{11FF}\\x{A960}-\\x{A97F}\\x{D7B0}-\\x{D7FF}\\x{0340}\\x{0341}"
    "\\x{0343}\\x{0344}\\x{0374}\\x{037E}\\x{0387}\\x{0958}-\\x{095F}\\x{09DC}\\x{09DD}"
    "\\x{09DF}\\x{0A33}\\x{0A36}\\x{0A59}-\\x{0A5B}\\x{0A5E}\\x{0B5C}\\x{0B5D}\\x{0F43}"
    "\\x{0F4D}\\x{0F52}\\x{0F57}\\x{0F5C}\\x{0F69}\\x{0F73}\\x{0F75}\\x{0F76}\\x{0F78}"
    "\\x{0F81}\\x{0F93}\\x{0F9D}\\x{0FA2}\\x{0FA7}\\x{0FAC}\\x{0FB9}\\x{1F71}\\x{1F73}"
    "\\x{1F75}\\x{1F77}\\x{1F79}\\x{1F7B}\\x{1F7D}\\x{1FBB}\\x{1FBE}\\x{1FC9}\\x{1FCB}"
    "\\x{1FD3}\\x{1FDB}\\x{1FE3}\\x{1FEB}\\x{1FEE}\\x{1FEF}\\x{1FF9}\\x{1FFB}\\x{1FFD}"
    "\\x{2000}\\x{2001}\\x{2126}\\x{212A}\\x{212B}\\x{2329}\\x{232A}\\x{2ADC}"
    "\\x{F900}-\\x{FAFF}\\x{FB1D}-\\x{FB4E}\\x{1D15E}-\\x{1D164}\\x{1D1BB}-\\x{1D1C0}"
    "\\x{2F800}-\\x{2FA1D}]";

static uq_status parse_normalizer(loader *L, json_t *n, int depth)
{
    if (!n || json_is_null(n)) return UQ_OK;
    if (depth > 16) return FAIL(UQ_ERR_UNSUPPORTED, "%s: normalizer: nested too deeply", L->label);
    if (!json_is_object(n)) return FAIL(UQ_ERR_FIELD, "%s: normalizer: not an object", L->label);
    const char *ty = type_of(n);
    if (!ty) return FAIL(UQ_ERR_FIELD, "%s: normalizer.type: missing or not a string", L->label);
    if (!strcmp(ty, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list))
            return FAIL(UQ_ERR_FIELD, "%s: normalizer.normalizers: not an array", L->label);
        for (size_t i = 0; i < json_array_size(list); i++) {
            uq_status st = parse_normalizer(L, json_array_get(list, i), depth + 1);
            if (st) return st;
        }
        return UQ_OK;
    }
    if (L->t->n_norms >= TK_MAX_STEPS)
        return FAIL(UQ_ERR_UNSUPPORTED, "%s: normalizer: more than %d steps", L->label, TK_MAX_STEPS);
    tk_norm *nm;
    const char *s;
    size_t len;
    if (!strcmp(ty, "Prepend")) {
        if (get_str(n, "prepend", &s, &len) != 1)
            return FAIL(UQ_ERR_FIELD, "%s: normalizer Prepend: prepend: not a string", L->label);
        if (!(nm = new_norm(L, TK_NORM_PREPEND)) || !(nm->a = dup_str(L, s, len)))
            return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        nm->alen = len;
        return UQ_OK;
    }
    if (!strcmp(ty, "Replace")) {
        const char *lit;
        size_t litlen;
        tk_regex *re;
        uq_status st = parse_pattern(L, n, "normalizer Replace", &lit, &litlen, &re);
        if (st) return st;
        if (get_str(n, "content", &s, &len) != 1) {
            tk_regex_free(re);
            return FAIL(UQ_ERR_FIELD, "%s: normalizer Replace: content: not a string", L->label);
        }
        if (lit && litlen == 0)
            return FAIL(UQ_ERR_UNSUPPORTED, "%s: normalizer Replace: empty pattern", L->label);
        if (!(nm = new_norm(L, TK_NORM_REPLACE)) || !(nm->b = dup_str(L, s, len))) {
            tk_regex_free(re);
            return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        }
        nm->a = lit;
        nm->alen = litlen;
        nm->re = re;
        nm->blen = len;
        return UQ_OK;
    }
    if (!strcmp(ty, "Strip")) {
        int left = get_bool(n, "strip_left", 1), right = get_bool(n, "strip_right", 1);
        if (left < 0 || right < 0)
            return FAIL(UQ_ERR_FIELD, "%s: normalizer Strip: strip_left / strip_right must be booleans",
                        L->label);
        if (!(nm = new_norm(L, TK_NORM_STRIP))) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        nm->left = left;
        nm->right = right;
        return UQ_OK;
    }
    if (!strcmp(ty, "NFC")) {
        if (!(nm = new_norm(L, TK_NORM_NFC))) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        return tk_regex_compile(nfc_unsafe, sizeof nfc_unsafe - 1, &nm->re, "NFC check");
    }
    if (!strcmp(ty, "ByteLevel")) {
        if (!new_norm(L, TK_NORM_BYTELEVEL)) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        return UQ_OK;
    }
    char ex[64];
    return FAIL(UQ_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported", L->label,
                excerpt(ty, strlen(ty), ex, sizeof ex));
}

/* -------------------------------------------------------- pre-tokenizer */

static tk_pre *new_pre(loader *L, int kind)
{
    uq_tokenizer *t = L->t;
    if (t->n_pres >= TK_MAX_STEPS) return NULL;
    if (t->n_pres == L->cap_pres) {
        size_t cap = L->cap_pres ? L->cap_pres * 2 : 4;
        tk_pre *p = realloc(t->pres, cap * sizeof *p);
        if (!p) return NULL;
        t->pres = p;
        L->cap_pres = cap;
    }
    tk_pre *p = &t->pres[t->n_pres++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    return p;
}

/* The pattern of GPT-2's ByteLevel pre-tokenizer. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static uq_status add_split(loader *L, const char *pattern, int behavior, int invert)
{
    tk_pre *p = new_pre(L, TK_PRE_SPLIT);
    if (!p) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
    p->behavior = behavior;
    p->invert = invert;
    return tk_regex_compile(pattern, strlen(pattern), &p->re, "pre-tokenizer");
}

static int parse_behavior(const char *s)
{
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                  "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* A one-character string field (Metaspace replacement, Strip content). */
static int get_char(json_t *obj, const char *key, const char *def, char out[4], int *outlen)
{
    const char *s;
    size_t len;
    int r = get_str(obj, key, &s, &len);
    if (r < 0) return -1;
    if (r == 0) {
        s = def;
        len = strlen(def);
    }
    if (len == 0 || len > 4 || tk_utf8_valid_len((const unsigned char *)s, len) != len) return -1;
    memcpy(out, s, len);
    *outlen = (int)len;
    return 0;
}

/* Metaspace's prepend_scheme (newer) or add_prefix_space (older). */
static int get_prepend_scheme(json_t *obj)
{
    json_t *ps = json_object_get(obj, "prepend_scheme");
    if (ps && !json_is_null(ps)) {
        if (!json_is_string(ps)) return -1;
        const char *s = json_string_value(ps);
        if (!strcmp(s, "always")) return TK_PREPEND_ALWAYS;
        if (!strcmp(s, "first")) return TK_PREPEND_FIRST;
        if (!strcmp(s, "never")) return TK_PREPEND_NEVER;
        return -1;
    }
    int aps = get_bool(obj, "add_prefix_space", 1);
    if (aps < 0) return -1;
    return aps ? TK_PREPEND_ALWAYS : TK_PREPEND_NEVER;
}

static uq_status parse_pretok(loader *L, json_t *p, int depth)
{
    if (!p || json_is_null(p)) return UQ_OK;
    if (depth > 16) return FAIL(UQ_ERR_UNSUPPORTED, "%s: pre_tokenizer: nested too deeply", L->label);
    if (!json_is_object(p)) return FAIL(UQ_ERR_FIELD, "%s: pre_tokenizer: not an object", L->label);
    const char *ty = type_of(p);
    if (!ty) return FAIL(UQ_ERR_FIELD, "%s: pre_tokenizer.type: missing or not a string", L->label);
    if (!strcmp(ty, "Sequence")) {
        json_t *list = json_object_get(p, "pretokenizers");
        if (!json_is_array(list))
            return FAIL(UQ_ERR_FIELD, "%s: pre_tokenizer.pretokenizers: not an array", L->label);
        for (size_t i = 0; i < json_array_size(list); i++) {
            uq_status st = parse_pretok(L, json_array_get(list, i), depth + 1);
            if (st) return st;
        }
        return UQ_OK;
    }
    if (L->t->n_pres + 2 > TK_MAX_STEPS)
        return FAIL(UQ_ERR_UNSUPPORTED, "%s: pre_tokenizer: more than %d steps", L->label, TK_MAX_STEPS);
    if (!strcmp(ty, "ByteLevel")) {
        int aps = get_bool(p, "add_prefix_space", 1), use_regex = get_bool(p, "use_regex", 1);
        if (aps < 0 || use_regex < 0)
            return FAIL(UQ_ERR_FIELD, "%s: pre_tokenizer ByteLevel: add_prefix_space / use_regex must be booleans",
                        L->label);
        tk_pre *pr = new_pre(L, TK_PRE_BYTELEVEL);
        if (!pr) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        pr->add_prefix_space = aps;
        pr->behavior = TK_SPLIT_ISOLATED;
        if (use_regex)
            return tk_regex_compile(gpt2_pattern, sizeof gpt2_pattern - 1, &pr->re, "ByteLevel");
        return UQ_OK;
    }
    if (!strcmp(ty, "Split")) {
        const char *lit;
        size_t litlen;
        tk_regex *re;
        uq_status st = parse_pattern(L, p, "pre_tokenizer Split", &lit, &litlen, &re);
        if (st) return st;
        if (lit) {
            char what[160];
            snprintf(what, sizeof what, "%s: pre_tokenizer Split", L->label);
            st = tk_regex_literal(lit, litlen, &re, what);
            if (st) return st;
        }
        json_t *b = json_object_get(p, "behavior");
        int behavior = json_is_string(b) ? parse_behavior(json_string_value(b)) : -1;
        int invert = get_bool(p, "invert", 0);
        if (behavior < 0 || invert < 0) {
            tk_regex_free(re);
            return FAIL(UQ_ERR_FIELD, "%s: pre_tokenizer Split: behavior / invert missing or invalid",
                        L->label);
        }
        tk_pre *pr = new_pre(L, TK_PRE_SPLIT);
        if (!pr) {
            tk_regex_free(re);
            return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        }
        pr->re = re;
        pr->behavior = behavior;
        pr->invert = invert;
        return UQ_OK;
    }
    if (!strcmp(ty, "Digits")) {
        int individual = get_bool(p, "individual_digits", 0);
        if (individual < 0)
            return FAIL(UQ_ERR_FIELD, "%s: pre_tokenizer Digits: individual_digits: not a boolean", L->label);
        return add_split(L, individual ? "\\p{N}" : "\\p{N}+", TK_SPLIT_ISOLATED, 0);
    }
    if (!strcmp(ty, "Whitespace"))
        return add_split(L,
                         "[\\p{L}\\p{M}\\p{Nd}\\p{Nl}\\p{Pc}\\x{200C}\\x{200D}]+"
                         "|[^\\p{L}\\p{M}\\p{Nd}\\p{Nl}\\p{Pc}\\x{200C}\\x{200D}\\s]+",
                         TK_SPLIT_REMOVED, 1);
    if (!strcmp(ty, "WhitespaceSplit")) return add_split(L, "\\s+", TK_SPLIT_REMOVED, 0);
    if (!strcmp(ty, "Punctuation") || !strcmp(ty, "BertPreTokenizer")) {
        int behavior = TK_SPLIT_ISOLATED;
        json_t *b = json_object_get(p, "behavior");
        if (!strcmp(ty, "Punctuation") && b && !json_is_null(b))
            behavior = json_is_string(b) ? parse_behavior(json_string_value(b)) : -1;
        if (behavior < 0)
            return FAIL(UQ_ERR_FIELD, "%s: pre_tokenizer Punctuation: behavior invalid", L->label);
        if (!strcmp(ty, "BertPreTokenizer")) {
            uq_status st = add_split(L, "\\s+", TK_SPLIT_REMOVED, 0);
            if (st) return st;
        }
        return add_split(L, "[\\p{P}!-/:-@\\[-`{-~]", behavior, 0);
    }
    if (!strcmp(ty, "Metaspace")) {
        tk_pre *pr = new_pre(L, TK_PRE_METASPACE);
        if (!pr) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        pr->prepend_scheme = get_prepend_scheme(p);
        pr->split = get_bool(p, "split", 1);
        if (get_char(p, "replacement", "\xe2\x96\x81", pr->repl, &pr->repl_len) != 0 ||
            pr->prepend_scheme < 0 || pr->split < 0)
            return FAIL(UQ_ERR_FIELD,
                        "%s: pre_tokenizer Metaspace: replacement / prepend_scheme / split invalid",
                        L->label);
        return UQ_OK;
    }
    char ex[64];
    return FAIL(UQ_ERR_UNSUPPORTED, "%s: pre-tokenizer \"%s\" is not supported", L->label,
                excerpt(ty, strlen(ty), ex, sizeof ex));
}

/* ------------------------------------------------------- post-processor */

typedef struct tmpl {
    int32_t *v;
    size_t n, cap;
} tmpl;

static int tmpl_push(tmpl *t, int32_t x)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        int32_t *v = realloc(t->v, cap * sizeof *v);
        if (!v) return -1;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = x;
    return 0;
}

/* Appends the ids of a TemplateProcessing special token. */
static uq_status tmpl_special(loader *L, json_t *specials, const char *name, size_t nlen, tmpl *out)
{
    char ex[96];
    json_t *sp = json_is_object(specials) ? json_object_getn(specials, name, nlen) : NULL;
    json_t *ids = json_is_object(sp) ? json_object_get(sp, "ids") : NULL;
    if (!json_is_array(ids))
        return FAIL(UQ_ERR_FIELD, "%s: post_processor: special token \"%s\" missing from special_tokens",
                    L->label, excerpt(name, nlen, ex, sizeof ex));
    for (size_t i = 0; i < json_array_size(ids); i++) {
        json_t *v = json_array_get(ids, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= L->t->n_ids)
            return FAIL(UQ_ERR_FIELD, "%s: post_processor: special token \"%s\": id out of range",
                        L->label, excerpt(name, nlen, ex, sizeof ex));
        if (out->n >= TK_MAX_TEMPLATE || tmpl_push(out, (int32_t)json_integer_value(v)) != 0)
            return FAIL(UQ_ERR_FIELD, "%s: post_processor: template too long", L->label);
    }
    return UQ_OK;
}

static uq_status tmpl_sequence(loader *L, const char *id, size_t idlen, tmpl *out)
{
    if (!(idlen == 1 && (id[0] == 'A' || id[0] == 'a')))
        return FAIL(UQ_ERR_FIELD, "%s: post_processor: single template uses sequence \"%.*s\", not A",
                    L->label, (int)(idlen < 8 ? idlen : 8), id);
    if (out->n >= TK_MAX_TEMPLATE || tmpl_push(out, -1) != 0)
        return FAIL(UQ_ERR_FIELD, "%s: post_processor: template too long", L->label);
    return UQ_OK;
}

/* "single" as a string: "$A", "<s> $A:0", "[CLS]:0 $A:0 [SEP]:0". */
static uq_status tmpl_from_string(loader *L, const char *s, size_t len, json_t *specials, tmpl *out)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && s[i] == ' ') i++;
        size_t j = i;
        while (j < len && s[j] != ' ') j++;
        if (j == i) break;
        size_t end = j;
        const char *colon = memchr(s + i, ':', j - i);
        if (colon) end = (size_t)(colon - s);
        uq_status st;
        if (s[i] == '$') {
            const char *id = s + i + 1;
            size_t idlen = end - i - 1;
            int digits = idlen > 0;
            for (size_t k = 0; k < idlen; k++)
                if (id[k] < '0' || id[k] > '9') digits = 0;
            if (idlen == 0 || digits) st = tmpl_sequence(L, "A", 1, out);
            else st = tmpl_sequence(L, id, idlen, out);
        } else {
            st = tmpl_special(L, specials, s + i, end - i, out);
        }
        if (st) return st;
        i = j;
    }
    return UQ_OK;
}

static uq_status parse_template(loader *L, json_t *p, tmpl *out)
{
    json_t *single = json_object_get(p, "single");
    json_t *specials = json_object_get(p, "special_tokens");
    if (json_is_string(single))
        return tmpl_from_string(L, json_string_value(single), json_string_length(single),
                                specials, out);
    if (!json_is_array(single))
        return FAIL(UQ_ERR_FIELD, "%s: post_processor TemplateProcessing: single: not an array",
                    L->label);
    for (size_t i = 0; i < json_array_size(single); i++) {
        json_t *item = json_array_get(single, i);
        json_t *sp = json_object_get(item, "SpecialToken");
        json_t *sq = json_object_get(item, "Sequence");
        json_t *id = json_object_get(json_is_object(sp) ? sp : sq, "id");
        if (!json_is_object(item) || !(json_is_object(sp) || json_is_object(sq)) || !json_is_string(id))
            return FAIL(UQ_ERR_FIELD,
                        "%s: post_processor TemplateProcessing: single[%zu]: a SpecialToken or "
                        "Sequence with a string id expected",
                        L->label, i);
        uq_status st = json_is_object(sp)
                           ? tmpl_special(L, specials, json_string_value(id), json_string_length(id), out)
                           : tmpl_sequence(L, json_string_value(id), json_string_length(id), out);
        if (st) return st;
    }
    return UQ_OK;
}

/* cls / sep of Bert and Roberta processing: ["<s>", 0]. */
static uq_status parse_pair_token(loader *L, json_t *p, const char *key, int32_t *id)
{
    json_t *v = json_object_get(p, key);
    json_t *x = json_array_get(v, 1);
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(x) ||
        json_integer_value(x) < 0 || json_integer_value(x) >= L->t->n_ids)
        return FAIL(UQ_ERR_FIELD, "%s: post_processor.%s: [token, id] with an id in range expected",
                    L->label, key);
    *id = (int32_t)json_integer_value(x);
    return UQ_OK;
}

/* The single-sequence template of one post-processor (into out). */
static uq_status parse_post_one(loader *L, json_t *p, tmpl *out, int depth);

static uq_status compose(loader *L, tmpl *cur, const tmpl *outer)
{
    tmpl res = {0};
    for (size_t i = 0; i < outer->n; i++) {
        if (outer->v[i] >= 0) {
            if (res.n >= TK_MAX_TEMPLATE || tmpl_push(&res, outer->v[i]) != 0) goto too_long;
        } else {
            for (size_t k = 0; k < cur->n; k++)
                if (res.n >= TK_MAX_TEMPLATE || tmpl_push(&res, cur->v[k]) != 0) goto too_long;
        }
    }
    free(cur->v);
    *cur = res;
    return UQ_OK;
too_long:
    free(res.v);
    return FAIL(UQ_ERR_FIELD, "%s: post_processor: template too long", L->label);
}

static uq_status parse_post_one(loader *L, json_t *p, tmpl *out, int depth)
{
    /* out holds the template so far; this processor wraps it. */
    if (depth > 16) return FAIL(UQ_ERR_UNSUPPORTED, "%s: post_processor: nested too deeply", L->label);
    if (!json_is_object(p)) return FAIL(UQ_ERR_FIELD, "%s: post_processor: not an object", L->label);
    const char *ty = type_of(p);
    if (!ty) return FAIL(UQ_ERR_FIELD, "%s: post_processor.type: missing or not a string", L->label);
    if (!strcmp(ty, "ByteLevel")) return UQ_OK;
    if (!strcmp(ty, "Sequence")) {
        json_t *list = json_object_get(p, "processors");
        if (!json_is_array(list))
            return FAIL(UQ_ERR_FIELD, "%s: post_processor.processors: not an array", L->label);
        for (size_t i = 0; i < json_array_size(list); i++) {
            uq_status st = parse_post_one(L, json_array_get(list, i), out, depth + 1);
            if (st) return st;
        }
        return UQ_OK;
    }
    tmpl outer = {0};
    uq_status st;
    if (!strcmp(ty, "TemplateProcessing")) {
        st = parse_template(L, p, &outer);
    } else if (!strcmp(ty, "BertProcessing") || !strcmp(ty, "RobertaProcessing")) {
        int32_t cls, sep;
        st = parse_pair_token(L, p, "cls", &cls);
        if (!st) st = parse_pair_token(L, p, "sep", &sep);
        if (!st && (tmpl_push(&outer, cls) || tmpl_push(&outer, -1) || tmpl_push(&outer, sep)))
            st = FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
    } else {
        char ex[64];
        st = FAIL(UQ_ERR_UNSUPPORTED, "%s: post-processor \"%s\" is not supported", L->label,
                  excerpt(ty, strlen(ty), ex, sizeof ex));
    }
    if (!st) st = compose(L, out, &outer);
    free(outer.v);
    return st;
}

static uq_status parse_post(loader *L, json_t *p)
{
    tmpl cur = {0};
    if (tmpl_push(&cur, -1) != 0) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
    uq_status st = UQ_OK;
    if (p && !json_is_null(p)) st = parse_post_one(L, p, &cur, 0);
    if (st) {
        free(cur.v);
        return st;
    }
    L->t->tmpl = cur.v;
    L->t->n_tmpl = cur.n;
    return UQ_OK;
}

/* -------------------------------------------------------------- decoder */

static tk_dec *new_dec(loader *L, int kind)
{
    uq_tokenizer *t = L->t;
    if (t->n_decs >= TK_MAX_STEPS) return NULL;
    if (t->n_decs == L->cap_decs) {
        size_t cap = L->cap_decs ? L->cap_decs * 2 : 4;
        tk_dec *d = realloc(t->decs, cap * sizeof *d);
        if (!d) return NULL;
        t->decs = d;
        L->cap_decs = cap;
    }
    tk_dec *d = &t->decs[t->n_decs++];
    memset(d, 0, sizeof *d);
    d->kind = kind;
    return d;
}

static uq_status parse_decoder(loader *L, json_t *d, int depth)
{
    if (depth > 16) return FAIL(UQ_ERR_UNSUPPORTED, "%s: decoder: nested too deeply", L->label);
    if (!json_is_object(d)) return FAIL(UQ_ERR_FIELD, "%s: decoder: not an object", L->label);
    const char *ty = type_of(d);
    if (!ty) return FAIL(UQ_ERR_FIELD, "%s: decoder.type: missing or not a string", L->label);
    if (!strcmp(ty, "Sequence")) {
        json_t *list = json_object_get(d, "decoders");
        if (!json_is_array(list))
            return FAIL(UQ_ERR_FIELD, "%s: decoder.decoders: not an array", L->label);
        for (size_t i = 0; i < json_array_size(list); i++) {
            uq_status st = parse_decoder(L, json_array_get(list, i), depth + 1);
            if (st) return st;
        }
        return UQ_OK;
    }
    if (L->t->n_decs >= TK_MAX_STEPS)
        return FAIL(UQ_ERR_UNSUPPORTED, "%s: decoder: more than %d steps", L->label, TK_MAX_STEPS);
    tk_dec *dc;
    if (!strcmp(ty, "ByteLevel") || !strcmp(ty, "ByteFallback") || !strcmp(ty, "Fuse")) {
        int kind = ty[4] == 'L' ? TK_DEC_BYTELEVEL : ty[4] == 'F' ? TK_DEC_BYTEFALLBACK : TK_DEC_FUSE;
        if (!new_dec(L, kind)) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        return UQ_OK;
    }
    if (!strcmp(ty, "Replace")) {
        const char *lit;
        size_t litlen;
        tk_regex *re;
        const char *s;
        size_t len;
        uq_status st = parse_pattern(L, d, "decoder Replace", &lit, &litlen, &re);
        if (st) return st;
        if (re) {
            tk_regex_free(re);
            return FAIL(UQ_ERR_UNSUPPORTED, "%s: decoder Replace with a Regex pattern is not supported",
                        L->label);
        }
        if (litlen == 0)
            return FAIL(UQ_ERR_UNSUPPORTED, "%s: decoder Replace: empty pattern", L->label);
        if (get_str(d, "content", &s, &len) != 1)
            return FAIL(UQ_ERR_FIELD, "%s: decoder Replace: content: not a string", L->label);
        if (!(dc = new_dec(L, TK_DEC_REPLACE)) || !(dc->content = dup_str(L, s, len)))
            return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        dc->pat = lit;
        dc->plen = litlen;
        dc->clen = len;
        return UQ_OK;
    }
    if (!strcmp(ty, "Strip")) {
        char c[4];
        int clen;
        json_int_t start = 0, stop = 0;
        if (get_char(d, "content", " ", c, &clen) != 0 || get_uint(d, "start", INT32_MAX, &start) < 0 ||
            get_uint(d, "stop", INT32_MAX, &stop) < 0)
            return FAIL(UQ_ERR_FIELD, "%s: decoder Strip: content / start / stop invalid", L->label);
        if (!(dc = new_dec(L, TK_DEC_STRIP)) || !(dc->pat = dup_str(L, c, (size_t)clen)))
            return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        dc->plen = (size_t)clen;
        dc->start = (size_t)start;
        dc->stop = (size_t)stop;
        return UQ_OK;
    }
    if (!strcmp(ty, "Metaspace")) {
        char c[4];
        int clen;
        int scheme = get_prepend_scheme(d);
        if (get_char(d, "replacement", "\xe2\x96\x81", c, &clen) != 0 || scheme < 0)
            return FAIL(UQ_ERR_FIELD, "%s: decoder Metaspace: replacement / prepend_scheme invalid",
                        L->label);
        if (!(dc = new_dec(L, TK_DEC_METASPACE)) || !(dc->pat = dup_str(L, c, (size_t)clen)))
            return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
        dc->plen = (size_t)clen;
        dc->prepend = scheme != TK_PREPEND_NEVER;
        return UQ_OK;
    }
    char ex[64];
    return FAIL(UQ_ERR_UNSUPPORTED, "%s: decoder \"%s\" is not supported", L->label,
                excerpt(ty, strlen(ty), ex, sizeof ex));
}

/* ------------------------------------------------------- added matching */

typedef struct sort_item {
    unsigned first;
    size_t len;
    int32_t idx;
} sort_item;

static int cmp_added(const void *pa, const void *pb)
{
    const sort_item *a = pa, *b = pb;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1; /* longest first */
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static uq_status build_set(loader *L, tk_match_set *set, int normalized)
{
    uq_tokenizer *t = L->t;
    size_t cap = t->n_added ? t->n_added : 1;
    sort_item *items = malloc(cap * sizeof *items);
    set->use_norm = normalized;
    set->order = malloc(cap * sizeof *set->order);
    if (!items || !set->order) {
        free(items);
        return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
    }
    set->n = 0;
    for (size_t i = 0; i < t->n_added; i++) {
        const tk_added *a = &t->added[i];
        if (a->normalized != normalized) continue;
        const char *s = normalized ? a->norm : a->content;
        size_t len = normalized ? a->norm_len : a->len;
        if (len == 0) continue;
        items[set->n].first = (unsigned char)s[0];
        items[set->n].len = len;
        items[set->n].idx = (int32_t)i;
        set->n++;
    }
    qsort(items, set->n, sizeof *items, cmp_added);
    size_t k = 0;
    for (unsigned b = 0; b <= 256; b++) {
        while (k < set->n && items[k].first < b) k++;
        set->first[b] = (uint32_t)k;
    }
    for (size_t i = 0; i < set->n; i++) set->order[i] = items[i].idx;
    free(items);
    return UQ_OK;
}

static uq_status build_added(loader *L)
{
    uq_tokenizer *t = L->t;
    /* Normalized added tokens match their normalized form. */
    if (t->n_norms) {
        for (size_t i = 0; i < t->n_added; i++) {
            tk_added *a = &t->added[i];
            if (!a->normalized) continue;
            tk_buf out = {0};
            if (tk_normalize(t, a->content, a->len, &out, NULL) == UQ_OK && !out.oom) {
                char *s = dup_str(L, out.p ? out.p : "", out.len);
                if (!s) {
                    tk_buf_free(&out);
                    return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
                }
                a->norm = s;
                a->norm_len = out.len;
            }
            tk_buf_free(&out);
        }
        uq_clear_error();
    }
    uq_status st = build_set(L, &t->raw_set, 0);
    if (!st) st = build_set(L, &t->norm_set, 1);
    for (size_t i = 0; i < t->n_added && !st; i++) {
        if (!t->added[i].single_word) continue;
        /* What the regex crate calls a word character. */
        static const char word[] = "[\\p{L}\\p{M}\\p{Nd}\\p{Nl}\\p{Pc}\\x{200C}\\x{200D}]";
        st = tk_regex_compile(word, sizeof word - 1, &t->word_re, "word characters");
        break;
    }
    return st;
}

/* ----------------------------------------------------------- top level */

void uq_tokenizer_free(uq_tokenizer *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n_norms; i++) tk_regex_free(t->norms[i].re);
    for (size_t i = 0; i < t->n_pres; i++) tk_regex_free(t->pres[i].re);
    tk_regex_free(t->word_re);
    free(t->norms);
    free(t->pres);
    free(t->decs);
    free(t->tmpl);
    free(t->ids);
    free(t->added);
    free(t->raw_set.order);
    free(t->norm_set.order);
    tk_smap_free(&t->vocab);
    tk_smap_free(&t->added_map);
    tk_pmap_free(&t->merges);
    tk_arena_free(&t->arena);
    free(t->label);
    free(t);
}

static uq_status parse_root(loader *L, json_t *root)
{
    uq_tokenizer *t = L->t;
    uq_status st = parse_model(L, root);
    if (st) return st;
    json_t *n = json_object_get(root, "normalizer");
    st = parse_normalizer(L, n, 0);
    if (st) return st;
    st = parse_pretok(L, json_object_get(root, "pre_tokenizer"), 0);
    if (st) return st;
    st = parse_post(L, json_object_get(root, "post_processor"));
    if (st) return st;
    json_t *d = json_object_get(root, "decoder");
    if (!d || json_is_null(d)) {
        if (!new_dec(L, TK_DEC_JOIN)) return FAIL(UQ_ERR_NOMEM, "%s: out of memory", L->label);
    } else {
        st = parse_decoder(L, d, 0);
        if (st) return st;
    }
    st = build_added(L);
    if (st) return st;
    /* BOS: the special token the template starts with; EOS unknown until a
     * tokenizer_config.json names it. */
    t->bos_id = t->n_tmpl > 1 && t->tmpl[0] >= 0 ? t->tmpl[0] : -1;
    t->eos_id = -1;
    return UQ_OK;
}

uq_status uq_tokenizer_parse(const char *json, size_t len, const char *label, uq_tokenizer **out)
{
    if (!out) return uq_fail(UQ_ERR_ARG, "uq_tokenizer_parse: out is NULL");
    *out = NULL;
    if (!label) label = "tokenizer.json";
    if (!json && len) return uq_fail(UQ_ERR_ARG, "%s: no data", label);
    json_error_t jerr;
    json_t *root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root)
        return uq_fail(UQ_ERR_JSON, "%s: invalid JSON at line %d column %d: %s", label, jerr.line,
                       jerr.column, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return uq_fail(UQ_ERR_JSON, "%s: the document is not a JSON object", label);
    }
    uq_tokenizer *t = calloc(1, sizeof *t);
    if (!t || !(t->label = strdup(label))) {
        free(t);
        json_decref(root);
        return uq_fail(UQ_ERR_NOMEM, "%s: out of memory", label);
    }
    loader L = {.t = t, .label = t->label};
    uq_status st = parse_root(&L, root);
    json_decref(root);
    if (st) {
        uq_tokenizer_free(t);
        return st;
    }
    *out = t;
    return UQ_OK;
}

/* bos_token / eos_token: a string, {"content": string} or null. */
static int config_token(const uq_tokenizer *t, json_t *root, const char *key, int32_t *id)
{
    json_t *v = json_object_get(root, key);
    if (!v) return 0;
    if (json_is_null(v)) {
        *id = -1;
        return 1;
    }
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v)) return -1;
    *id = uq_tokenizer_token_id(t, json_string_value(v), json_string_length(v));
    return 1;
}

uq_status uq_tokenizer_apply_config(uq_tokenizer *t, const char *json, size_t len,
                                    const char *label)
{
    if (!t) return uq_fail(UQ_ERR_ARG, "uq_tokenizer_apply_config: no tokenizer");
    if (!label) label = "tokenizer_config.json";
    json_error_t jerr;
    json_t *root = json_loadb(json ? json : "", json ? len : 0, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
    if (!root)
        return uq_fail(UQ_ERR_JSON, "%s: invalid JSON at line %d column %d: %s", label, jerr.line,
                       jerr.column, jerr.text);
    uq_status st = UQ_OK;
    int32_t bos = t->bos_id, eos = t->eos_id;
    int add_bos = -1, add_eos = -1;
    if (!json_is_object(root)) {
        st = uq_fail(UQ_ERR_JSON, "%s: the document is not a JSON object", label);
        goto done;
    }
    if (config_token(t, root, "bos_token", &bos) < 0 || config_token(t, root, "eos_token", &eos) < 0) {
        st = uq_fail(UQ_ERR_FIELD, "%s: bos_token / eos_token: a string, {\"content\": ...} or null expected",
                     label);
        goto done;
    }
    add_bos = get_bool(root, "add_bos_token", -2);
    add_eos = get_bool(root, "add_eos_token", -2);
    if (add_bos == -1 || add_eos == -1) {
        st = uq_fail(UQ_ERR_FIELD, "%s: add_bos_token / add_eos_token: not a boolean", label);
        goto done;
    }
    t->bos_id = bos;
    t->eos_id = eos;
    if (add_bos != -2 || add_eos != -2) {
        /* Rebuild the template: [BOS] sequence [EOS]; an absent flag keeps
         * what the tokenizer.json template did. */
        int had_bos = t->n_tmpl > 1 && t->tmpl[0] >= 0 && t->tmpl[0] == bos;
        int had_eos = t->n_tmpl > 1 && t->tmpl[t->n_tmpl - 1] >= 0 && t->tmpl[t->n_tmpl - 1] == eos;
        int want_bos = add_bos == -2 ? had_bos : add_bos;
        int want_eos = add_eos == -2 ? had_eos : add_eos;
        int32_t *v = malloc(3 * sizeof *v);
        if (!v) {
            st = uq_fail(UQ_ERR_NOMEM, "%s: out of memory", label);
            goto done;
        }
        size_t n = 0;
        if (want_bos && bos >= 0) v[n++] = bos;
        v[n++] = -1;
        if (want_eos && eos >= 0) v[n++] = eos;
        free(t->tmpl);
        t->tmpl = v;
        t->n_tmpl = n;
    }
done:
    json_decref(root);
    return st;
}

/* Reads a whole file; UQ_ERR_MISSING when it does not exist. */
static uq_status read_file(const char *path, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return uq_fail(UQ_ERR_MISSING, "%s: no such file", path);
        return uq_fail(UQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    tk_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        tk_buf_put(&b, chunk, n);
        if (b.oom || b.len > TK_MAX_FILE) break;
    }
    int err = ferror(f);
    fclose(f);
    if (b.oom || b.len > TK_MAX_FILE || err) {
        tk_buf_free(&b);
        if (err) return uq_fail(UQ_ERR_IO, "%s: read error", path);
        return uq_fail(UQ_ERR_NOMEM, "%s: file too large", path);
    }
    *data = b.p;
    *len = b.len;
    return UQ_OK;
}

uq_status uq_tokenizer_load(const char *path, uq_tokenizer **out)
{
    if (!out) return uq_fail(UQ_ERR_ARG, "uq_tokenizer_load: out is NULL");
    *out = NULL;
    if (!path) return uq_fail(UQ_ERR_ARG, "uq_tokenizer_load: path is NULL");
    struct stat sb;
    if (stat(path, &sb) != 0) return uq_fail(UQ_ERR_MISSING, "%s: no such file or folder", path);
    size_t plen = strlen(path);
    char *file = malloc(plen + 32), *dir = malloc(plen + 32);
    if (!file || !dir) {
        free(file);
        free(dir);
        return uq_fail(UQ_ERR_NOMEM, "out of memory");
    }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(dir, plen + 32, "%s", path);
        snprintf(file, plen + 32, "%s/tokenizer.json", path);
    } else {
        snprintf(file, plen + 32, "%s", path);
        const char *slash = strrchr(path, '/');
        if (slash) snprintf(dir, plen + 32, "%.*s", (int)(slash - path), path);
        else snprintf(dir, plen + 32, ".");
        if (slash == path) snprintf(dir, plen + 32, "/");
    }
    char *data;
    size_t len;
    uq_status st = read_file(file, &data, &len);
    uq_tokenizer *t = NULL;
    if (!st) {
        st = uq_tokenizer_parse(data, len, file, &t);
        free(data);
    }
    if (!st) {
        char *cfg = malloc(strlen(dir) + 32);
        if (!cfg) {
            st = uq_fail(UQ_ERR_NOMEM, "out of memory");
        } else {
            sprintf(cfg, "%s/tokenizer_config.json", dir);
            st = read_file(cfg, &data, &len);
            if (st == UQ_ERR_MISSING) {
                st = UQ_OK;
                uq_clear_error();
            } else if (!st) {
                st = uq_tokenizer_apply_config(t, data, len, cfg);
                free(data);
            }
            free(cfg);
        }
    }
    free(file);
    free(dir);
    if (st) {
        uq_tokenizer_free(t);
        return st;
    }
    *out = t;
    return UQ_OK;
}

/* ------------------------------------------------------------ accessors */

int32_t uq_tokenizer_vocab_size(const uq_tokenizer *t) { return t ? t->n_ids : 0; }
int32_t uq_tokenizer_bos_id(const uq_tokenizer *t) { return t ? t->bos_id : -1; }
int32_t uq_tokenizer_eos_id(const uq_tokenizer *t) { return t ? t->eos_id : -1; }

int uq_tokenizer_adds_bos(const uq_tokenizer *t)
{
    return t && t->bos_id >= 0 && t->n_tmpl > 1 && t->tmpl[0] == t->bos_id;
}

const char *uq_tokenizer_token(const uq_tokenizer *t, int32_t id, size_t *len)
{
    if (len) *len = 0;
    if (!t || id < 0 || id >= t->n_ids) return NULL;
    const tk_vocab_entry *e = &t->ids[id];
    if (e->added >= 0) {
        if (len) *len = t->added[e->added].len;
        return t->added[e->added].content;
    }
    if (len) *len = e->len;
    return e->s;
}

int32_t uq_tokenizer_token_id(const uq_tokenizer *t, const char *s, size_t len)
{
    if (!t || (!s && len)) return -1;
    if (!s) s = "";
    int32_t id = tk_smap_get(&t->added_map, s, len);
    return id >= 0 ? id : tk_smap_get(&t->vocab, s, len);
}

int uq_tokenizer_is_special(const uq_tokenizer *t, int32_t id)
{
    if (!t || id < 0 || id >= t->n_ids) return 0;
    int32_t a = t->ids[id].added;
    return a >= 0 && t->added[a].special;
}
