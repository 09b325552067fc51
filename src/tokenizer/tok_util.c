/* Tokenizer utilities: buffers, string arena, hash maps, UTF-8, the GPT-2
 * byte mapping and the PCRE2 wrapper. */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- buffer */

int tk_buf_reserve(tk_buf *b, size_t extra)
{
    if (b->oom) return -1;
    if (extra <= b->cap - b->len) return 0;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return -1;
    }
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void tk_buf_put(tk_buf *b, const void *s, size_t n)
{
    if (n == 0 || tk_buf_reserve(b, n) != 0) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void tk_buf_free(tk_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ----------------------------------------------------------------- arena */

struct tk_arena_block {
    tk_arena_block *next;
    size_t used, cap;
    char data[];
};

#define TK_ARENA_BLOCK 65536

char *tk_arena_dup(tk_arena *a, const char *s, size_t n)
{
    if (n >= SIZE_MAX - 64 - sizeof(tk_arena_block)) return NULL;
    tk_arena_block *b = a->head;
    if (!b || b->cap - b->used < n + 1) {
        size_t cap = n + 1 > TK_ARENA_BLOCK ? n + 1 : TK_ARENA_BLOCK;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    char *p = b->data + b->used;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    b->used += n + 1;
    return p;
}

void tk_arena_free(tk_arena *a)
{
    tk_arena_block *b = a->head;
    while (b) {
        tk_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* -------------------------------------------------------------- hashing */

uint32_t tk_hash(const char *s, size_t n)
{
    /* FNV-1a, then a final mix so that the low bits are usable. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    return h;
}

static int smap_grow(tk_smap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    tk_smap_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        tk_smap_slot *o = &m->slots[i];
        if (!o->s) continue;
        size_t j = o->hash & (cap - 1);
        while (slots[j].s) j = (j + 1) & (cap - 1);
        slots[j] = *o;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int tk_smap_put(tk_smap *m, const char *s, size_t len, int32_t val, int32_t *old)
{
    if (old) *old = -1;
    if (len > UINT32_MAX) return -1;
    if ((m->n + 1) * 4 > m->cap * 3 && smap_grow(m) != 0) return -1;
    uint32_t h = tk_hash(s, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].s) {
        tk_smap_slot *e = &m->slots[j];
        if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0) {
            if (old) *old = e->val;
            e->val = val;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j].s = s;
    m->slots[j].len = (uint32_t)len;
    m->slots[j].hash = h;
    m->slots[j].val = val;
    m->n++;
    return 0;
}

int32_t tk_smap_get(const tk_smap *m, const char *s, size_t len)
{
    if (m->cap == 0 || len > UINT32_MAX) return -1;
    uint32_t h = tk_hash(s, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].s) {
        const tk_smap_slot *e = &m->slots[j];
        if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0) return e->val;
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

void tk_smap_free(tk_smap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static inline uint64_t pair_key(int32_t a, int32_t b)
{
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

static inline size_t pair_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return (size_t)k;
}

static int pmap_grow(tk_pmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    tk_pmap_slot *slots = malloc(cap * sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < cap; i++) slots[i].key = UINT64_MAX;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == UINT64_MAX) continue;
        size_t j = pair_hash(m->slots[i].key) & (cap - 1);
        while (slots[j].key != UINT64_MAX) j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int tk_pmap_put(tk_pmap *m, int32_t a, int32_t b, uint32_t rank, int32_t id)
{
    if ((m->n + 1) * 2 > m->cap && pmap_grow(m) != 0) return -1;
    uint64_t k = pair_key(a, b);
    size_t j = pair_hash(k) & (m->cap - 1);
    while (m->slots[j].key != UINT64_MAX) {
        if (m->slots[j].key == k) break;
        j = (j + 1) & (m->cap - 1);
    }
    if (m->slots[j].key == UINT64_MAX) m->n++;
    m->slots[j].key = k;
    m->slots[j].rank = rank;
    m->slots[j].id = id;
    return 0;
}

const tk_pmap_slot *tk_pmap_get(const tk_pmap *m, int32_t a, int32_t b)
{
    if (m->cap == 0) return NULL;
    uint64_t k = pair_key(a, b);
    size_t j = pair_hash(k) & (m->cap - 1);
    while (m->slots[j].key != UINT64_MAX) {
        if (m->slots[j].key == k) return &m->slots[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

void tk_pmap_free(tk_pmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ----------------------------------------------------------------- UTF-8 */

size_t tk_utf8_valid_len(const unsigned char *s, size_t n)
{
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < need) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return need;
}

int tk_utf8_valid(const char *s, size_t n, size_t *bad_at)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = tk_utf8_valid_len(u + i, n - i);
        if (l == 0) {
            if (bad_at) *bad_at = i;
            return 0;
        }
        i += l;
    }
    return 1;
}

size_t tk_utf8_decode(const char *s, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    if (u[0] < 0xE0) {
        *cp = ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
        return 2;
    }
    if (u[0] < 0xF0) {
        *cp = ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
          ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    return 4;
}

size_t tk_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The Unicode White_Space property (what Rust's char::is_whitespace tests). */
int tk_is_whitespace(uint32_t cp)
{
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    if (cp < 0x85) return 0;
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F:
    case 0x205F: case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

/* --------------------------------------------------- GPT-2 byte mapping */

/* Printable bytes stand for themselves; the others, in byte order, for
 * U+0100 onwards. */
const uint16_t tk_byte_to_cp[256] = {
    0x100, 0x101, 0x102, 0x103, 0x104, 0x105, 0x106, 0x107, 0x108, 0x109, 0x10A, 0x10B,
    0x10C, 0x10D, 0x10E, 0x10F, 0x110, 0x111, 0x112, 0x113, 0x114, 0x115, 0x116, 0x117,
    0x118, 0x119, 0x11A, 0x11B, 0x11C, 0x11D, 0x11E, 0x11F, 0x120, 0x21,  0x22,  0x23,
    0x24,  0x25,  0x26,  0x27,  0x28,  0x29,  0x2A,  0x2B,  0x2C,  0x2D,  0x2E,  0x2F,
    0x30,  0x31,  0x32,  0x33,  0x34,  0x35,  0x36,  0x37,  0x38,  0x39,  0x3A,  0x3B,
    0x3C,  0x3D,  0x3E,  0x3F,  0x40,  0x41,  0x42,  0x43,  0x44,  0x45,  0x46,  0x47,
    0x48,  0x49,  0x4A,  0x4B,  0x4C,  0x4D,  0x4E,  0x4F,  0x50,  0x51,  0x52,  0x53,
    0x54,  0x55,  0x56,  0x57,  0x58,  0x59,  0x5A,  0x5B,  0x5C,  0x5D,  0x5E,  0x5F,
    0x60,  0x61,  0x62,  0x63,  0x64,  0x65,  0x66,  0x67,  0x68,  0x69,  0x6A,  0x6B,
    0x6C,  0x6D,  0x6E,  0x6F,  0x70,  0x71,  0x72,  0x73,  0x74,  0x75,  0x76,  0x77,
    0x78,  0x79,  0x7A,  0x7B,  0x7C,  0x7D,  0x7E,  0x121, 0x122, 0x123, 0x124, 0x125,
    0x126, 0x127, 0x128, 0x129, 0x12A, 0x12B, 0x12C, 0x12D, 0x12E, 0x12F, 0x130, 0x131,
    0x132, 0x133, 0x134, 0x135, 0x136, 0x137, 0x138, 0x139, 0x13A, 0x13B, 0x13C, 0x13D,
    0x13E, 0x13F, 0x140, 0x141, 0x142, 0xA1,  0xA2,  0xA3,  0xA4,  0xA5,  0xA6,  0xA7,
    0xA8,  0xA9,  0xAA,  0xAB,  0xAC,  0x143, 0xAE,  0xAF,  0xB0,  0xB1,  0xB2,  0xB3,
    0xB4,  0xB5,  0xB6,  0xB7,  0xB8,  0xB9,  0xBA,  0xBB,  0xBC,  0xBD,  0xBE,  0xBF,
    0xC0,  0xC1,  0xC2,  0xC3,  0xC4,  0xC5,  0xC6,  0xC7,  0xC8,  0xC9,  0xCA,  0xCB,
    0xCC,  0xCD,  0xCE,  0xCF,  0xD0,  0xD1,  0xD2,  0xD3,  0xD4,  0xD5,  0xD6,  0xD7,
    0xD8,  0xD9,  0xDA,  0xDB,  0xDC,  0xDD,  0xDE,  0xDF,  0xE0,  0xE1,  0xE2,  0xE3,
    0xE4,  0xE5,  0xE6,  0xE7,  0xE8,  0xE9,  0xEA,  0xEB,  0xEC,  0xED,  0xEE,  0xEF,
    0xF0,  0xF1,  0xF2,  0xF3,  0xF4,  0xF5,  0xF6,  0xF7,  0xF8,  0xF9,  0xFA,  0xFB,
    0xFC,  0xFD,  0xFE,  0xFF,
};

int tk_cp_to_byte(uint32_t cp)
{
    if (cp >= 0x21 && cp <= 0x7E) return (int)cp;
    if (cp >= 0xA1 && cp <= 0xFF && cp != 0xAD) return (int)cp;
    if (cp >= 0x100 && cp <= 0x143) {
        /* U+0100 + n is the n-th byte outside the printable ranges. */
        unsigned n = cp - 0x100;
        if (n <= 0x20) return (int)n; /* bytes 0x00-0x20 */
        if (n <= 0x20 + 34) return (int)(0x7F + (n - 0x21)); /* 0x7F-0xA0 */
        if (n == 0x43) return 0xAD;
    }
    return -1;
}

/* ---------------------------------------------------------------- regex */

uq_status tk_regex_compile(const char *pattern, size_t len, tk_regex **out, const char *what)
{
    *out = NULL;
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP, &err,
                                     &off, NULL);
    if (!code) {
        char msg[160];
        pcre2_get_error_message(err, (PCRE2_UCHAR *)msg, sizeof msg);
        return uq_fail(UQ_ERR_UNSUPPORTED, "%s: regex does not compile with PCRE2 at offset %zu: %s",
                       what, (size_t)off, msg);
    }
    tk_regex *re = calloc(1, sizeof *re);
    if (!re) {
        pcre2_code_free(code);
        return uq_fail(UQ_ERR_NOMEM, "%s: out of memory", what);
    }
    re->code = code;
    re->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    *out = re;
    return UQ_OK;
}

uq_status tk_regex_literal(const char *s, size_t len, tk_regex **out, const char *what)
{
    tk_buf b = {0};
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
            (c >= 'A' && c <= 'Z')) {
            tk_buf_putc(&b, (char)c);
        } else {
            char esc[8];
            int n = snprintf(esc, sizeof esc, "\\x{%x}", c);
            tk_buf_put(&b, esc, (size_t)n);
        }
    }
    if (b.oom) {
        tk_buf_free(&b);
        return uq_fail(UQ_ERR_NOMEM, "%s: out of memory", what);
    }
    uq_status st = tk_regex_compile(b.p ? b.p : "", b.len, out, what);
    tk_buf_free(&b);
    return st;
}

void tk_regex_free(tk_regex *re)
{
    if (!re) return;
    pcre2_code_free(re->code);
    free(re);
}

int tk_regex_search(const tk_regex *re, pcre2_match_data *md, const char *s, size_t len,
                    size_t start, size_t *ms, size_t *me)
{
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, start, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                         md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        char msg[160];
        pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, sizeof msg);
        return -(int)uq_fail(UQ_ERR_UNSUPPORTED, "pre-tokenizer regex failed on the input: %s", msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *ms = ov[0];
    *me = ov[1];
    if (*me < *ms) *me = *ms; /* \K in a lookbehind can do this */
    return 1;
}
