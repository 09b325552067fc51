/* Internals shared by the tokenizer sources (load, encode, decode). */
#ifndef UQ_TOK_INTERNAL_H
#define UQ_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "uquant.h"

/* ------------------------------------------------------------ utilities */

/* Growable byte buffer; on allocation failure it sets oom and drops data. */
typedef struct tk_buf {
    char *p;
    size_t len, cap;
    int oom;
} tk_buf;

int tk_buf_reserve(tk_buf *b, size_t extra);
void tk_buf_put(tk_buf *b, const void *s, size_t n);
static inline void tk_buf_putc(tk_buf *b, char c) { tk_buf_put(b, &c, 1); }
void tk_buf_free(tk_buf *b);

/* Strings with stable addresses, freed all at once. */
typedef struct tk_arena_block tk_arena_block;
typedef struct tk_arena {
    tk_arena_block *head;
} tk_arena;

/* Copies n bytes and a NUL; NULL when out of memory. */
char *tk_arena_dup(tk_arena *a, const char *s, size_t n);
void tk_arena_free(tk_arena *a);

uint32_t tk_hash(const char *s, size_t n);

/* Open-addressing map from byte strings (owned by the caller, stable) to int32. */
typedef struct tk_smap_slot {
    const char *s;
    uint32_t len;
    uint32_t hash;
    int32_t val;
} tk_smap_slot;

typedef struct tk_smap {
    tk_smap_slot *slots; /* s == NULL: empty */
    size_t cap, n;
} tk_smap;

/* Inserts or replaces; 0 ok, -1 out of memory. *old gets the replaced value or -1. */
int tk_smap_put(tk_smap *m, const char *s, size_t len, int32_t val, int32_t *old);
int32_t tk_smap_get(const tk_smap *m, const char *s, size_t len);
void tk_smap_free(tk_smap *m);

/* Map from an id pair to a merge (rank, new id). */
typedef struct tk_pmap_slot {
    uint64_t key; /* UINT64_MAX: empty */
    uint32_t rank;
    int32_t id;
} tk_pmap_slot;

typedef struct tk_pmap {
    tk_pmap_slot *slots;
    size_t cap, n;
} tk_pmap;

int tk_pmap_put(tk_pmap *m, int32_t a, int32_t b, uint32_t rank, int32_t id);
const tk_pmap_slot *tk_pmap_get(const tk_pmap *m, int32_t a, int32_t b);
void tk_pmap_free(tk_pmap *m);

/* UTF-8. */
/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid / truncated. */
size_t tk_utf8_valid_len(const unsigned char *s, size_t n);
/* 1 if the whole buffer is valid UTF-8 (no surrogates, no overlongs). */
int tk_utf8_valid(const char *s, size_t n, size_t *bad_at);
/* Decodes the (valid) character at s; returns its length. */
size_t tk_utf8_decode(const char *s, uint32_t *cp);
size_t tk_utf8_encode(uint32_t cp, char *out);
int tk_is_whitespace(uint32_t cp);

/* GPT-2 byte <-> unicode mapping. */
extern const uint16_t tk_byte_to_cp[256];
/* The byte a code point stands for, or -1. */
int tk_cp_to_byte(uint32_t cp);

/* ------------------------------------------------------------- regexes */

typedef struct tk_regex {
    pcre2_code *code;
    int jit;
} tk_regex;

/* Compiles a pattern (UTF, UCP). */
uq_status tk_regex_compile(const char *pattern, size_t len, tk_regex **out, const char *what);
/* A regex matching the literal string s. */
uq_status tk_regex_literal(const char *s, size_t len, tk_regex **out, const char *what);
void tk_regex_free(tk_regex *re);
/* Searches s[start..len); 1 found (*ms, *me), 0 none, or a negative status
 * (already recorded with uq_fail). The subject must be valid UTF-8. */
int tk_regex_search(const tk_regex *re, pcre2_match_data *md, const char *s, size_t len,
                    size_t start, size_t *ms, size_t *me);

/* --------------------------------------------------------- configuration */

enum { TK_NORM_PREPEND, TK_NORM_REPLACE, TK_NORM_STRIP, TK_NORM_NFC, TK_NORM_BYTELEVEL };

typedef struct tk_norm {
    int kind;
    const char *a; /* prepend text / replace literal */
    size_t alen;
    const char *b; /* replace content */
    size_t blen;
    tk_regex *re; /* replace regex, NFC check */
    int left, right;
} tk_norm;

enum { TK_PRE_BYTELEVEL, TK_PRE_SPLIT, TK_PRE_METASPACE };
enum { TK_SPLIT_REMOVED, TK_SPLIT_ISOLATED, TK_SPLIT_MERGED_PREV, TK_SPLIT_MERGED_NEXT,
       TK_SPLIT_CONTIGUOUS };
enum { TK_PREPEND_ALWAYS, TK_PREPEND_FIRST, TK_PREPEND_NEVER };

typedef struct tk_pre {
    int kind;
    tk_regex *re; /* split pattern; ByteLevel: the GPT-2 pattern when use_regex */
    int behavior;
    int invert;
    int add_prefix_space; /* ByteLevel */
    char repl[4];         /* Metaspace replacement */
    int repl_len;
    int prepend_scheme;
    int split;
} tk_pre;

enum { TK_DEC_REPLACE, TK_DEC_BYTEFALLBACK, TK_DEC_FUSE, TK_DEC_STRIP, TK_DEC_METASPACE,
       TK_DEC_BYTELEVEL, TK_DEC_JOIN };

typedef struct tk_dec {
    int kind;
    const char *pat; /* Replace pattern / Metaspace replacement / Strip content */
    size_t plen;
    const char *content; /* Replace content */
    size_t clen;
    size_t start, stop; /* Strip */
    int prepend;        /* Metaspace: drop replacements in the first token */
} tk_dec;

typedef struct tk_added {
    const char *content;
    size_t len;
    const char *norm; /* normalized content (normalized tokens) */
    size_t norm_len;
    int32_t id;
    uint8_t special, single_word, lstrip, rstrip, normalized;
} tk_added;

/* Added tokens matched in one kind of text (raw or normalized), leftmost
 * longest; by first byte, longest first. */
typedef struct tk_match_set {
    int32_t *order;        /* indices into t->added */
    uint32_t first[257];   /* order[first[b] .. first[b + 1]) start with byte b */
    size_t n;
    int use_norm;          /* compare the normalized content */
} tk_match_set;

typedef struct tk_vocab_entry {
    const char *s; /* NULL: no token with this id */
    uint32_t len;
    int32_t added; /* index into added, or -1 */
} tk_vocab_entry;

struct uq_tokenizer {
    char *label;
    tk_arena arena;

    /* ids: the model vocabulary and the added tokens */
    tk_vocab_entry *ids;
    int32_t n_ids; /* one more than the largest id */
    tk_smap vocab; /* model vocabulary */
    tk_smap added_map;
    tk_added *added;
    size_t n_added;
    tk_match_set raw_set, norm_set;

    /* BPE */
    tk_pmap merges;
    const char *unk; /* unk token name (NULL: none) */
    size_t unk_len;
    int32_t unk_id; /* -1: no unk token or not in the vocabulary */
    const char *cont_prefix, *end_suffix;
    size_t cont_prefix_len, end_suffix_len;
    int fuse_unk, byte_fallback, ignore_merges;
    int32_t byte_ids[256]; /* <0xNN> tokens, -1 when missing */
    int32_t ascii_ids[128]; /* single-byte tokens, -1 when missing */

    tk_norm *norms;
    size_t n_norms;
    tk_pre *pres;
    size_t n_pres;
    tk_dec *decs;
    size_t n_decs;

    /* post-processor, single sequence: ids with -1 where the sequence goes */
    int32_t *tmpl;
    size_t n_tmpl;

    int32_t bos_id, eos_id;
    tk_regex *word_re; /* word characters, for single_word added tokens */
};

/* Runs the normalizers over s into out (cleared first). md: match data for
 * the regexes, or NULL to make one. */
uq_status tk_normalize(const uq_tokenizer *t, const char *s, size_t len, tk_buf *out,
                       pcre2_match_data *md);

#endif
