/* Encoding: added tokens, normalizers, pre-tokenizers, BPE, post-processing. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct piece {
    size_t off, len;
    int first; /* starts at offset 0 of the original text */
} piece;

typedef struct plist {
    tk_buf text;
    piece *v;
    size_t n, cap;
} plist;

typedef struct span {
    size_t s, e;
    int m;
} span;

typedef struct sym {
    int32_t id;
    int32_t prev, next;
    int dead;
} sym;

typedef struct hent {
    uint32_t rank;
    uint32_t pos;
    int32_t id;
} hent;

typedef struct enc {
    const uq_tokenizer *t;
    pcre2_match_data *md;
    int32_t *ids;
    size_t n, cap;
    tk_buf norm, tmp, key;
    plist pa, pb;
    span *sp;
    size_t nsp, capsp;
    sym *sym;
    size_t capsym;
    hent *heap;
    size_t nheap, capheap;
    int oom;
} enc;

#define NOMEM() uq_fail(UQ_ERR_NOMEM, "tokenizer: out of memory")

static inline size_t u8len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return -1;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static void push_id(enc *e, int32_t id)
{
    if (e->n == e->cap && grow((void **)&e->ids, &e->cap, e->n + 1, sizeof *e->ids)) {
        e->oom = 1;
        return;
    }
    e->ids[e->n++] = id;
}

static void push_span(enc *e, size_t s, size_t en, int m)
{
    if (e->nsp == e->capsp && grow((void **)&e->sp, &e->capsp, e->nsp + 1, sizeof *e->sp)) {
        e->oom = 1;
        return;
    }
    e->sp[e->nsp].s = s;
    e->sp[e->nsp].e = en;
    e->sp[e->nsp].m = m;
    e->nsp++;
}

static void push_piece(enc *e, plist *l, const char *s, size_t n, int first)
{
    if (n == 0) return;
    if (l->n == l->cap && grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v)) {
        e->oom = 1;
        return;
    }
    l->v[l->n].off = l->text.len;
    l->v[l->n].len = n;
    l->v[l->n].first = first;
    l->n++;
    tk_buf_put(&l->text, s, n);
    if (l->text.oom) e->oom = 1;
}

/* ------------------------------------------------------------- matching */

/* Spans of s covering it whole, regex matches flagged, as the tokenizers
 * library's find_matches with the oniguruma iterator (an empty match right
 * after the previous match is skipped). */
static uq_status regex_spans(enc *e, const tk_regex *re, const char *s, size_t n, int invert)
{
    e->nsp = 0;
    if (n == 0) {
        push_span(e, 0, 0, invert);
        return e->oom ? NOMEM() : UQ_OK;
    }
    size_t prev = 0, last_end = 0, last_match_end = 0;
    int have_last = 0;
    while (last_end <= n) {
        size_t ms, me;
        int r = tk_regex_search(re, e->md, s, n, last_end, &ms, &me);
        if (r < 0) return (uq_status)-r;
        if (r == 0) break;
        if (me == ms && have_last && last_match_end == me) {
            if (last_end >= n) break;
            last_end += u8len((unsigned char)s[last_end]);
            continue;
        }
        last_end = me;
        last_match_end = me;
        have_last = 1;
        if (prev != ms) push_span(e, prev, ms, 0);
        push_span(e, ms, me, 1);
        prev = me;
    }
    if (prev != n) push_span(e, prev, n, 0);
    if (invert)
        for (size_t i = 0; i < e->nsp; i++) e->sp[i].m = !e->sp[i].m;
    return e->oom ? NOMEM() : UQ_OK;
}

/* Spans around each occurrence of the literal c (one character). */
static void char_spans(enc *e, const char *s, size_t n, const char *c, size_t clen)
{
    e->nsp = 0;
    size_t prev = 0, i = 0;
    while (i < n) {
        if (n - i >= clen && memcmp(s + i, c, clen) == 0) {
            if (prev != i) push_span(e, prev, i, 0);
            push_span(e, i, i + clen, 1);
            i += clen;
            prev = i;
        } else {
            i += u8len((unsigned char)s[i]);
        }
    }
    if (prev != n || n == 0) push_span(e, prev, n, 0);
}

/* Applies a split behavior to e->sp in place (matches flagged in m); keeps
 * the spans to output with m = 1. */
static void apply_behavior(enc *e, int behavior)
{
    span *v = e->sp;
    size_t n = e->nsp, k = 0;
    int prev_match = 0;
    switch (behavior) {
    case TK_SPLIT_ISOLATED:
        for (size_t i = 0; i < n; i++) v[i].m = 1;
        return;
    case TK_SPLIT_REMOVED:
        for (size_t i = 0; i < n; i++) v[i].m = !v[i].m;
        return;
    case TK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < n; i++) {
            int is_match = v[i].m;
            if (is_match == prev_match && k > 0) {
                v[k - 1].e = v[i].e;
            } else {
                v[k] = v[i];
                v[k++].m = 1;
            }
            prev_match = is_match;
        }
        break;
    case TK_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < n; i++) {
            int is_match = v[i].m;
            if (is_match && !prev_match && k > 0) {
                v[k - 1].e = v[i].e;
            } else {
                v[k] = v[i];
                v[k++].m = 1;
            }
            prev_match = is_match;
        }
        break;
    case TK_SPLIT_MERGED_NEXT:
        /* Right to left, writing from the end. */
        k = n;
        for (size_t i = n; i-- > 0;) {
            int is_match = v[i].m;
            if (is_match && !prev_match && k < n) {
                v[k].s = v[i].s;
            } else {
                v[--k] = v[i];
                v[k].m = 1;
            }
            prev_match = is_match;
        }
        if (k > 0) memmove(v, v + k, (n - k) * sizeof *v);
        k = n - k;
        break;
    default:
        break;
    }
    e->nsp = k;
}

/* Emits the kept spans of s as pieces of out. */
static void emit_spans(enc *e, plist *out, const char *s, int first)
{
    for (size_t i = 0; i < e->nsp; i++)
        if (e->sp[i].m && e->sp[i].e > e->sp[i].s)
            push_piece(e, out, s + e->sp[i].s, e->sp[i].e - e->sp[i].s, first && e->sp[i].s == 0);
}

/* ---------------------------------------------------------- normalizers */

static void bytelevel_map(tk_buf *out, const char *s, size_t n)
{
    if (tk_buf_reserve(out, n * 2) != 0) return;
    for (size_t i = 0; i < n; i++) {
        char u[4];
        size_t l = tk_utf8_encode(tk_byte_to_cp[(unsigned char)s[i]], u);
        memcpy(out->p + out->len, u, l);
        out->len += l;
    }
}

static uq_status norm_one(const uq_tokenizer *t, const tk_norm *nm, const char *s, size_t n,
                          tk_buf *out, pcre2_match_data *md)
{
    out->len = 0;
    switch (nm->kind) {
    case TK_NORM_PREPEND:
        if (n) {
            tk_buf_put(out, nm->a, nm->alen);
            tk_buf_put(out, s, n);
        }
        break;
    case TK_NORM_REPLACE:
        if (nm->re) {
            enc e = {.t = t, .md = md};
            uq_status st = regex_spans(&e, nm->re, s, n, 0);
            if (st) {
                free(e.sp);
                return st;
            }
            for (size_t i = 0; i < e.nsp; i++) {
                if (e.sp[i].m) tk_buf_put(out, nm->b, nm->blen);
                else tk_buf_put(out, s + e.sp[i].s, e.sp[i].e - e.sp[i].s);
            }
            free(e.sp);
        } else {
            size_t i = 0;
            while (i < n) {
                const char *f = nm->alen <= n - i ? memmem(s + i, n - i, nm->a, nm->alen) : NULL;
                if (!f) break;
                tk_buf_put(out, s + i, (size_t)(f - (s + i)));
                tk_buf_put(out, nm->b, nm->blen);
                i = (size_t)(f - s) + nm->alen;
            }
            tk_buf_put(out, s + i, n - i);
        }
        break;
    case TK_NORM_STRIP: {
        size_t a = 0, b = n;
        while (nm->left && a < b) {
            uint32_t cp;
            size_t l = tk_utf8_decode(s + a, &cp);
            if (!tk_is_whitespace(cp)) break;
            a += l;
        }
        while (nm->right && b > a) {
            size_t p = b - 1;
            while (p > a && ((unsigned char)s[p] & 0xC0) == 0x80) p--;
            uint32_t cp;
            tk_utf8_decode(s + p, &cp);
            if (!tk_is_whitespace(cp)) break;
            b = p;
        }
        tk_buf_put(out, s + a, b - a);
        break;
    }
    case TK_NORM_NFC: {
        size_t ms, me;
        int r = tk_regex_search(nm->re, md, s, n, 0, &ms, &me);
        if (r < 0) return (uq_status)-r;
        if (r > 0) {
            uint32_t cp;
            tk_utf8_decode(s + ms, &cp);
            return uq_fail(UQ_ERR_UNSUPPORTED,
                           "%s: NFC normalization of text holding U+%04X (a combining or "
                           "decomposable character) is not supported",
                           t->label, (unsigned)cp);
        }
        tk_buf_put(out, s, n);
        break;
    }
    case TK_NORM_BYTELEVEL:
        bytelevel_map(out, s, n);
        break;
    default:
        break;
    }
    return out->oom ? NOMEM() : UQ_OK;
}

uq_status tk_normalize(const uq_tokenizer *t, const char *s, size_t len, tk_buf *out,
                       pcre2_match_data *md)
{
    pcre2_match_data *own = NULL;
    if (!md) {
        own = md = pcre2_match_data_create(1, NULL);
        if (!md) return NOMEM();
    }
    out->len = 0;
    tk_buf tmp = {0};
    uq_status st = UQ_OK;
    if (t->n_norms == 0) {
        tk_buf_put(out, s, len);
        if (out->oom) st = NOMEM();
    }
    /* Alternate between out and tmp so that the last step writes out. */
    for (size_t i = 0; i < t->n_norms && !st; i++) {
        int to_out = ((t->n_norms - 1 - i) % 2) == 0;
        tk_buf *dst = to_out ? out : &tmp;
        const char *src = i == 0 ? s : (to_out ? tmp.p : out->p);
        size_t srclen = i == 0 ? len : (to_out ? tmp.len : out->len);
        if (!src) src = "";
        st = norm_one(t, &t->norms[i], src, srclen, dst, md);
    }
    tk_buf_free(&tmp);
    if (own) pcre2_match_data_free(own);
    return st;
}

/* --------------------------------------------------------- added tokens */

static int is_word_at(const uq_tokenizer *t, pcre2_match_data *md, const char *s, size_t n,
                      size_t pos)
{
    unsigned char c = (unsigned char)s[pos];
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!t->word_re) return 0;
    size_t l = u8len(c);
    return pcre2_match(t->word_re->code, (PCRE2_SPTR)s, pos + l <= n ? pos + l : n, pos,
                       PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED, md, NULL) >= 0;
}

/* The next added token of set in s from *scan (leftmost, longest), with its
 * single_word / lstrip / rstrip rules; start_offset is the end of the
 * previous match. */
static int added_next(const uq_tokenizer *t, const tk_match_set *set, pcre2_match_data *md,
                      const char *s, size_t n, size_t *scan, size_t start_offset, size_t *ms,
                      size_t *me, int32_t *id)
{
    size_t i = *scan;
    while (i < n) {
        unsigned b = (unsigned char)s[i];
        uint32_t lo = set->first[b], hi = set->first[b + 1];
        const tk_added *hit = NULL;
        size_t hlen = 0;
        for (uint32_t k = lo; k < hi; k++) {
            const tk_added *a = &t->added[set->order[k]];
            const char *c = set->use_norm ? a->norm : a->content;
            size_t l = set->use_norm ? a->norm_len : a->len;
            if (l <= n - i && memcmp(s + i, c, l) == 0) {
                hit = a;
                hlen = l;
                break;
            }
        }
        if (!hit) {
            i++;
            continue;
        }
        size_t start = i, stop = i + hlen;
        i = stop;
        if (hit->single_word) {
            int start_space = 1, stop_space = 1;
            if (start > 0) {
                size_t p = start - 1;
                while (p > 0 && ((unsigned char)s[p] & 0xC0) == 0x80) p--;
                start_space = !is_word_at(t, md, s, start, p);
            }
            if (stop < n) stop_space = !is_word_at(t, md, s, n, stop);
            if (!start_space || !stop_space) continue;
        }
        if (hit->lstrip) {
            size_t p = start;
            while (p > 0) {
                size_t q = p - 1;
                while (q > 0 && ((unsigned char)s[q] & 0xC0) == 0x80) q--;
                uint32_t cp;
                tk_utf8_decode(s + q, &cp);
                if (!tk_is_whitespace(cp)) break;
                p = q;
            }
            start = p > start_offset ? p : start_offset;
        }
        if (hit->rstrip) {
            while (stop < n) {
                uint32_t cp;
                size_t l = tk_utf8_decode(s + stop, &cp);
                if (!tk_is_whitespace(cp)) break;
                stop += l;
            }
        }
        if (start < start_offset) start = start_offset;
        *scan = i;
        *ms = start;
        *me = stop;
        *id = hit->id;
        return 1;
    }
    *scan = n;
    return 0;
}

/* ------------------------------------------------------------------ BPE */

static inline int hless(const hent *a, const hent *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(enc *e, uint32_t rank, uint32_t pos, int32_t id)
{
    if (e->nheap == e->capheap && grow((void **)&e->heap, &e->capheap, e->nheap + 1, sizeof *e->heap)) {
        e->oom = 1;
        return;
    }
    hent x = {rank, pos, id};
    size_t i = e->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hless(&x, &e->heap[p])) break;
        e->heap[i] = e->heap[p];
        i = p;
    }
    e->heap[i] = x;
}

static hent heap_pop(enc *e)
{
    hent top = e->heap[0];
    hent x = e->heap[--e->nheap];
    size_t n = e->nheap, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hless(&e->heap[c + 1], &e->heap[c])) c++;
        if (!hless(&e->heap[c], &x)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n) e->heap[i] = x;
    return top;
}

static void add_sym(enc *e, size_t *nsym, int32_t id)
{
    if (*nsym == e->capsym && grow((void **)&e->sym, &e->capsym, *nsym + 1, sizeof *e->sym)) {
        e->oom = 1;
        return;
    }
    sym *s = &e->sym[*nsym];
    s->id = id;
    s->prev = (int32_t)*nsym - 1;
    s->next = (int32_t)*nsym + 1;
    s->dead = 0;
    (*nsym)++;
}

static void merge_all(enc *e, size_t nsym)
{
    const tk_pmap *mp = &e->t->merges;
    sym *v = e->sym;
    e->nheap = 0;
    for (size_t i = 0; i + 1 < nsym; i++) {
        const tk_pmap_slot *m = tk_pmap_get(mp, v[i].id, v[i + 1].id);
        if (m) heap_push(e, m->rank, (uint32_t)i, m->id);
    }
    while (e->nheap && !e->oom) {
        hent top = heap_pop(e);
        sym *cur = &v[top.pos];
        if (cur->dead || cur->next < 0) continue;
        sym *right = &v[cur->next];
        const tk_pmap_slot *m = tk_pmap_get(mp, cur->id, right->id);
        if (!m || m->id != top.id) continue;
        cur->id = top.id;
        right->dead = 1;
        cur->next = right->next;
        if (cur->next >= 0) v[cur->next].prev = (int32_t)top.pos;
        if (cur->prev >= 0) {
            m = tk_pmap_get(mp, v[cur->prev].id, cur->id);
            if (m) heap_push(e, m->rank, (uint32_t)cur->prev, m->id);
        }
        if (cur->next >= 0) {
            m = tk_pmap_get(mp, cur->id, v[cur->next].id);
            if (m) heap_push(e, m->rank, top.pos, m->id);
        }
    }
}

/* Tokenizes one pre-tokenized word with the BPE model. */
static uq_status bpe_word(enc *e, const char *s, size_t n)
{
    const uq_tokenizer *t = e->t;
    if (n == 0) return UQ_OK;
    if (n > INT32_MAX / 4) return uq_fail(UQ_ERR_ARG, "%s: text too long", t->label);
    if (t->ignore_merges) {
        int32_t id = tk_smap_get(&t->vocab, s, n);
        if (id >= 0) {
            push_id(e, id);
            return e->oom ? NOMEM() : UQ_OK;
        }
    }
    size_t nsym = 0;
    int unk_pending = 0;
    int plain = !t->cont_prefix && !t->end_suffix;
    for (size_t i = 0; i < n;) {
        size_t cl = u8len((unsigned char)s[i]);
        if (cl > n - i) cl = n - i;
        const char *key = s + i;
        size_t klen = cl;
        if (!plain) {
            e->key.len = 0;
            if (i > 0 && t->cont_prefix) tk_buf_put(&e->key, t->cont_prefix, t->cont_prefix_len);
            tk_buf_put(&e->key, s + i, cl);
            if (i + cl == n && t->end_suffix) tk_buf_put(&e->key, t->end_suffix, t->end_suffix_len);
            if (e->key.oom) return NOMEM();
            key = e->key.p;
            klen = e->key.len;
        }
        i += cl;
        int32_t id = klen == 1 && (unsigned char)key[0] < 0x80 ? t->ascii_ids[(unsigned char)key[0]]
                                                               : tk_smap_get(&t->vocab, key, klen);
        if (id >= 0) {
            if (unk_pending) {
                add_sym(e, &nsym, t->unk_id);
                unk_pending = 0;
            }
            add_sym(e, &nsym, id);
            continue;
        }
        if (t->byte_fallback) {
            int all = 1;
            for (size_t k = 0; k < klen; k++)
                if (t->byte_ids[(unsigned char)key[k]] < 0) all = 0;
            if (all) {
                /* A pending unknown is not flushed first (as in the
                 * tokenizers library). */
                for (size_t k = 0; k < klen; k++) add_sym(e, &nsym, t->byte_ids[(unsigned char)key[k]]);
                continue;
            }
        }
        if (t->unk) {
            if (t->unk_id < 0)
                return uq_fail(UQ_ERR_CONFIG, "%s: model.unk_token is not in the vocabulary",
                               t->label);
            if (unk_pending && !t->fuse_unk) add_sym(e, &nsym, t->unk_id);
            unk_pending = 1;
        }
        /* No unk token: the character is dropped. */
    }
    if (unk_pending) add_sym(e, &nsym, t->unk_id);
    if (e->oom) return NOMEM();
    if (nsym == 0) return UQ_OK;
    e->sym[nsym - 1].next = -1;
    if (nsym > 1) merge_all(e, nsym);
    for (size_t i = 0; i < nsym; i++)
        if (!e->sym[i].dead) push_id(e, e->sym[i].id);
    return e->oom ? NOMEM() : UQ_OK;
}

/* -------------------------------------------------------- pre-tokenizers */

static uq_status pre_split(enc *e, const tk_pre *p, const plist *in, plist *out)
{
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->text.p + in->v[i].off;
        size_t n = in->v[i].len;
        uq_status st = regex_spans(e, p->re, s, n, p->invert);
        if (st) return st;
        apply_behavior(e, p->behavior);
        emit_spans(e, out, s, in->v[i].first);
        if (e->oom) return NOMEM();
    }
    return UQ_OK;
}

static uq_status pre_bytelevel(enc *e, const tk_pre *p, const plist *in, plist *out)
{
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->text.p + in->v[i].off;
        size_t n = in->v[i].len;
        int first = in->v[i].first;
        if (p->add_prefix_space && s[0] != ' ') {
            e->tmp.len = 0;
            tk_buf_putc(&e->tmp, ' ');
            tk_buf_put(&e->tmp, s, n);
            if (e->tmp.oom) return NOMEM();
            s = e->tmp.p;
            n = e->tmp.len;
        }
        if (p->re) {
            uq_status st = regex_spans(e, p->re, s, n, 0);
            if (st) return st;
        } else {
            e->nsp = 0;
            push_span(e, 0, n, 1);
        }
        for (size_t k = 0; k < e->nsp; k++) {
            size_t a = e->sp[k].s, b = e->sp[k].e;
            if (b <= a) continue;
            e->key.len = 0;
            bytelevel_map(&e->key, s + a, b - a);
            if (e->key.oom) return NOMEM();
            push_piece(e, out, e->key.p, e->key.len, first && a == 0);
        }
        if (e->oom) return NOMEM();
    }
    return UQ_OK;
}

static uq_status pre_metaspace(enc *e, const tk_pre *p, const plist *in, plist *out)
{
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->text.p + in->v[i].off;
        size_t n = in->v[i].len;
        e->tmp.len = 0;
        int starts = n >= (size_t)p->repl_len && memcmp(s, p->repl, (size_t)p->repl_len) == 0;
        if (!starts && s[0] == ' ') starts = 1; /* the space becomes the replacement */
        if ((p->prepend_scheme == TK_PREPEND_ALWAYS ||
             (p->prepend_scheme == TK_PREPEND_FIRST && in->v[i].first)) &&
            !starts)
            tk_buf_put(&e->tmp, p->repl, (size_t)p->repl_len);
        for (size_t k = 0; k < n; k++) {
            if (s[k] == ' ') tk_buf_put(&e->tmp, p->repl, (size_t)p->repl_len);
            else tk_buf_putc(&e->tmp, s[k]);
        }
        if (e->tmp.oom) return NOMEM();
        if (p->split) {
            char_spans(e, e->tmp.p, e->tmp.len, p->repl, (size_t)p->repl_len);
            apply_behavior(e, TK_SPLIT_MERGED_NEXT);
            emit_spans(e, out, e->tmp.p, in->v[i].first);
        } else {
            push_piece(e, out, e->tmp.p, e->tmp.len, in->v[i].first);
        }
        if (e->oom) return NOMEM();
    }
    return UQ_OK;
}

/* Pre-tokenizes one normalized stretch and runs BPE on its words. */
static uq_status encode_words(enc *e, const char *s, size_t n, int first)
{
    const uq_tokenizer *t = e->t;
    if (n == 0) return UQ_OK;
    if (t->n_pres == 0) return bpe_word(e, s, n);
    plist *in = &e->pa, *out = &e->pb;
    in->n = 0;
    in->text.len = 0;
    push_piece(e, in, s, n, first);
    if (e->oom) return NOMEM();
    for (size_t k = 0; k < t->n_pres; k++) {
        const tk_pre *p = &t->pres[k];
        out->n = 0;
        out->text.len = 0;
        uq_status st = p->kind == TK_PRE_SPLIT       ? pre_split(e, p, in, out)
                       : p->kind == TK_PRE_BYTELEVEL ? pre_bytelevel(e, p, in, out)
                                                     : pre_metaspace(e, p, in, out);
        if (st) return st;
        plist *x = in;
        in = out;
        out = x;
    }
    for (size_t i = 0; i < in->n; i++) {
        uq_status st = bpe_word(e, in->text.p + in->v[i].off, in->v[i].len);
        if (st) return st;
    }
    return UQ_OK;
}

/* A stretch of raw text between added tokens. */
static uq_status encode_stretch(enc *e, const char *s, size_t n, int first)
{
    const uq_tokenizer *t = e->t;
    if (n == 0) return UQ_OK;
    if (t->n_norms) {
        uq_status st = tk_normalize(t, s, n, &e->norm, e->md);
        if (st) return st;
        s = e->norm.p ? e->norm.p : "";
        n = e->norm.len;
    }
    if (t->norm_set.n == 0) return encode_words(e, s, n, first);
    size_t scan = 0, prev = 0, ms, me;
    int32_t id;
    while (added_next(t, &t->norm_set, e->md, s, n, &scan, prev, &ms, &me, &id)) {
        uq_status st = encode_words(e, s + prev, ms - prev, first && prev == 0);
        if (st) return st;
        push_id(e, id);
        prev = me;
    }
    return encode_words(e, s + prev, n - prev, first && prev == 0);
}

static void enc_free(enc *e)
{
    if (e->md) pcre2_match_data_free(e->md);
    free(e->ids);
    tk_buf_free(&e->norm);
    tk_buf_free(&e->tmp);
    tk_buf_free(&e->key);
    tk_buf_free(&e->pa.text);
    tk_buf_free(&e->pb.text);
    free(e->pa.v);
    free(e->pb.v);
    free(e->sp);
    free(e->sym);
    free(e->heap);
}

uq_status uq_tokenizer_encode(const uq_tokenizer *t, const char *text, size_t len,
                              int add_special, int32_t **ids, size_t *n_ids)
{
    if (!ids || !n_ids) return uq_fail(UQ_ERR_ARG, "uq_tokenizer_encode: NULL output");
    *ids = NULL;
    *n_ids = 0;
    if (!t) return uq_fail(UQ_ERR_ARG, "uq_tokenizer_encode: no tokenizer");
    if (!text && len) return uq_fail(UQ_ERR_ARG, "uq_tokenizer_encode: NULL text");
    if (!text) text = "";
    size_t bad;
    if (!tk_utf8_valid(text, len, &bad))
        return uq_fail(UQ_ERR_ARG, "%s: text is not valid UTF-8 (byte %zu)", t->label, bad);

    enc e = {.t = t};
    e.md = pcre2_match_data_create(1, NULL);
    if (!e.md) return NOMEM();
    uq_status st = UQ_OK;
    size_t scan = 0, prev = 0, ms, me;
    int32_t id;
    while (!st && added_next(t, &t->raw_set, e.md, text, len, &scan, prev, &ms, &me, &id)) {
        st = encode_stretch(&e, text + prev, ms - prev, prev == 0);
        push_id(&e, id);
        prev = me;
    }
    if (!st) st = encode_stretch(&e, text + prev, len - prev, prev == 0);
    if (!st && e.oom) st = NOMEM();
    if (st) {
        enc_free(&e);
        return st;
    }

    if (add_special && !(t->n_tmpl == 1 && t->tmpl[0] < 0)) {
        size_t total = 0;
        for (size_t i = 0; i < t->n_tmpl; i++) {
            size_t add = t->tmpl[i] < 0 ? e.n : 1;
            if (total > SIZE_MAX / sizeof(int32_t) - add) {
                enc_free(&e);
                return NOMEM();
            }
            total += add;
        }
        int32_t *v = malloc((total ? total : 1) * sizeof *v);
        if (!v) {
            enc_free(&e);
            return NOMEM();
        }
        size_t k = 0;
        for (size_t i = 0; i < t->n_tmpl; i++) {
            if (t->tmpl[i] >= 0) {
                v[k++] = t->tmpl[i];
            } else if (e.n) {
                memcpy(v + k, e.ids, e.n * sizeof *v);
                k += e.n;
            }
        }
        free(e.ids);
        e.ids = v;
        e.n = k;
    }
    *ids = e.ids;
    *n_ids = e.n;
    e.ids = NULL;
    enc_free(&e);
    return UQ_OK;
}
