/* Decoding, as a stream.
 *
 * The decoder chain of tokenizer.json maps a list of token strings to a list
 * of strings, concatenated at the end. Here every step is a stage taking
 * events (a token begins, bytes of the current token, the token ends, the
 * sequence ends) and sending events to the next stage; the last one appends
 * to the output. A stage holds back only what a later token could still
 * change (a run of byte-fallback tokens, an incomplete UTF-8 sequence,
 * trailing characters Strip may remove), so pushing ids one by one yields,
 * piece by piece, exactly the text of decoding them all at once; and whole
 * decoding is the same stream, fed at once.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct stage {
    tk_buf hold;  /* Replace: a possible pattern start; ByteFallback: the
                     current token; ByteLevel: the current token */
    tk_buf group; /* ByteFallback: pending bytes; ByteLevel / Strip: output */
    tk_buf comb;  /* ByteLevel: pending and new bytes */
    int cand;     /* ByteFallback: the current token may be <0xNN> */
    int started;  /* Fuse / ByteLevel / Join: the output token began */
    int in_lead;  /* Strip: still in the leading characters */
    size_t lead, run; /* Strip: leading characters dropped, trailing held */
    size_t count;     /* Metaspace / Join: tokens seen */
    unsigned char pend[4]; /* ByteLevel: incomplete UTF-8 */
    size_t npend;
} stage;

struct uq_tokstream {
    const uq_tokenizer *t;
    int skip_special;
    size_t n;
    stage *st;
    tk_buf out;
    int oom;
};

static const char fffd[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

static void ev_begin(uq_tokstream *d, size_t k);
static void ev_data(uq_tokstream *d, size_t k, const char *p, size_t n);
static void ev_end(uq_tokstream *d, size_t k);
static void ev_finish(uq_tokstream *d, size_t k);

static void put(uq_tokstream *d, tk_buf *b, const void *p, size_t n)
{
    tk_buf_put(b, p, n);
    if (b->oom) d->oom = 1;
}

static inline size_t u8len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* ---------------------------------------------------------------- stages */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "<0xNN>" (what u8::from_str_radix(.., 16) accepts for NN, "+N" included). */
static int byte_token(const char *p, size_t n, unsigned char *b)
{
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return 0;
    int hi = hexval(p[3]), lo = hexval(p[4]);
    if (p[3] == '+' && lo >= 0) {
        *b = (unsigned char)lo;
        return 1;
    }
    if (hi < 0 || lo < 0) return 0;
    *b = (unsigned char)(hi * 16 + lo);
    return 1;
}

static void bf_flush(uq_tokstream *d, size_t k)
{
    stage *s = &d->st[k];
    if (!s->group.len) return;
    if (tk_utf8_valid(s->group.p, s->group.len, NULL)) {
        ev_begin(d, k + 1);
        ev_data(d, k + 1, s->group.p, s->group.len);
        ev_end(d, k + 1);
    } else {
        for (size_t i = 0; i < s->group.len; i++) {
            ev_begin(d, k + 1);
            ev_data(d, k + 1, fffd, 3);
            ev_end(d, k + 1);
        }
    }
    s->group.len = 0;
}

/* ByteLevel: feeds bytes through a lossy UTF-8 decoder (one U+FFFD per
 * maximal invalid subpart, as Rust's from_utf8_lossy), holding back an
 * incomplete sequence at the end unless final. */
static void bl_feed(uq_tokstream *d, size_t k, const unsigned char *in, size_t n, int final)
{
    stage *s = &d->st[k];
    tk_buf *o = &s->group, *c = &s->comb;
    o->len = 0;
    c->len = 0;
    put(d, c, s->pend, s->npend);
    put(d, c, in, n);
    s->npend = 0;
    if (d->oom || c->len == 0) return;
    const unsigned char *x = (const unsigned char *)c->p;
    size_t m = c->len, i = 0, run = 0; /* x[run..i) is valid, not yet copied */
    while (i < m) {
        unsigned ch = x[i];
        if (ch < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (ch >= 0xC2 && ch <= 0xDF) {
            need = 2;
        } else if (ch >= 0xE0 && ch <= 0xEF) {
            need = 3;
            if (ch == 0xE0) lo = 0xA0;
            if (ch == 0xED) hi = 0x9F;
        } else if (ch >= 0xF0 && ch <= 0xF4) {
            need = 4;
            if (ch == 0xF0) lo = 0x90;
            if (ch == 0xF4) hi = 0x8F;
        } else {
            put(d, o, x + run, i - run);
            put(d, o, fffd, 3);
            run = ++i;
            continue;
        }
        size_t j = 1;
        while (j < need && i + j < m) {
            unsigned b = x[i + j];
            if (j == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
            j++;
        }
        if (j == need) {
            i += need;
        } else if (i + j == m && !final) {
            put(d, o, x + run, i - run);
            memcpy(s->pend, x + i, j);
            s->npend = j;
            run = i = m;
        } else {
            put(d, o, x + run, i - run);
            put(d, o, fffd, 3);
            i += j;
            run = i;
        }
    }
    put(d, o, x + run, i - run);
    if (o->len) {
        if (!s->started) {
            s->started = 1;
            ev_begin(d, k + 1);
        }
        ev_data(d, k + 1, o->p, o->len);
    }
}

static void bl_token(uq_tokstream *d, size_t k)
{
    stage *s = &d->st[k];
    /* Map every character back to its byte; a token with any other
     * character stands for its own UTF-8 bytes. */
    size_t n = s->hold.len, i = 0, w = 0;
    unsigned char *p = (unsigned char *)s->hold.p;
    int all = 1;
    while (i < n) {
        uint32_t cp;
        size_t l = tk_utf8_decode((const char *)p + i, &cp);
        int b = tk_cp_to_byte(cp);
        if (b < 0) {
            all = 0;
            break;
        }
        i += l;
        w++;
    }
    if (all) {
        /* Rewrite in place: the bytes are never longer than the text. */
        i = 0;
        w = 0;
        while (i < n) {
            uint32_t cp;
            size_t l = tk_utf8_decode((const char *)p + i, &cp);
            p[w++] = (unsigned char)tk_cp_to_byte(cp);
            i += l;
        }
        n = w;
    }
    bl_feed(d, k, p, n, 0);
    s->hold.len = 0;
}

static void strip_data(uq_tokstream *d, size_t k, const char *p, size_t n)
{
    stage *s = &d->st[k];
    const tk_dec *dc = &d->t->decs[k];
    tk_buf *o = &s->group;
    o->len = 0;
    size_t i = 0;
    while (i < n) {
        size_t l = u8len((unsigned char)p[i]);
        if (l > n - i) l = n - i;
        int is_c = l == dc->plen && memcmp(p + i, dc->pat, l) == 0;
        if (s->in_lead) {
            if (is_c && s->lead < dc->start) {
                s->lead++;
                i += l;
                continue;
            }
            s->in_lead = 0;
        }
        if (is_c && dc->stop > 0) {
            s->run++;
            if (s->run > dc->stop) {
                put(d, o, dc->pat, dc->plen);
                s->run = dc->stop;
            }
        } else {
            for (; s->run; s->run--) put(d, o, dc->pat, dc->plen);
            put(d, o, p + i, l);
        }
        i += l;
    }
    if (o->len) ev_data(d, k + 1, o->p, o->len);
}

static void meta_data(uq_tokstream *d, size_t k, const char *p, size_t n)
{
    stage *s = &d->st[k];
    const tk_dec *dc = &d->t->decs[k];
    int drop = s->count == 0 && dc->prepend;
    size_t i = 0;
    while (i < n) {
        const char *f = dc->plen <= n - i ? memmem(p + i, n - i, dc->pat, dc->plen) : NULL;
        if (!f) break;
        if (f > p + i) ev_data(d, k + 1, p + i, (size_t)(f - (p + i)));
        if (!drop) ev_data(d, k + 1, " ", 1);
        i = (size_t)(f - p) + dc->plen;
    }
    if (i < n) ev_data(d, k + 1, p + i, n - i);
}

static void replace_data(uq_tokstream *d, size_t k, const char *p, size_t n)
{
    stage *s = &d->st[k];
    const tk_dec *dc = &d->t->decs[k];
    put(d, &s->hold, p, n);
    if (d->oom) return;
    const char *buf = s->hold.p;
    size_t len = s->hold.len, i = 0;
    for (;;) {
        const char *f = dc->plen <= len - i ? memmem(buf + i, len - i, dc->pat, dc->plen) : NULL;
        if (!f) break;
        if (f > buf + i) ev_data(d, k + 1, buf + i, (size_t)(f - (buf + i)));
        ev_data(d, k + 1, dc->content, dc->clen);
        i = (size_t)(f - buf) + dc->plen;
    }
    /* Keep a tail that may be the start of the pattern. */
    size_t j = len - i > dc->plen - 1 ? len - (dc->plen - 1) : i;
    for (; j < len; j++)
        if (memcmp(buf + j, dc->pat, len - j) == 0) break;
    if (j > i) ev_data(d, k + 1, buf + i, j - i);
    memmove(s->hold.p, buf + j, len - j);
    s->hold.len = len - j;
}

/* ---------------------------------------------------------------- events */

static void ev_begin(uq_tokstream *d, size_t k)
{
    if (k == d->n) return;
    stage *s = &d->st[k];
    switch (d->t->decs[k].kind) {
    case TK_DEC_REPLACE:
        s->hold.len = 0;
        ev_begin(d, k + 1);
        break;
    case TK_DEC_BYTEFALLBACK:
        s->hold.len = 0;
        s->cand = 1;
        break;
    case TK_DEC_FUSE:
        if (!s->started) {
            s->started = 1;
            ev_begin(d, k + 1);
        }
        break;
    case TK_DEC_STRIP:
        s->lead = 0;
        s->run = 0;
        s->in_lead = d->t->decs[k].start > 0;
        ev_begin(d, k + 1);
        break;
    case TK_DEC_METASPACE:
        ev_begin(d, k + 1);
        break;
    case TK_DEC_BYTELEVEL:
        s->hold.len = 0;
        break;
    case TK_DEC_JOIN:
        if (!s->started) {
            s->started = 1;
            ev_begin(d, k + 1);
        } else {
            ev_data(d, k + 1, " ", 1);
        }
        break;
    default:
        break;
    }
}

static void ev_data(uq_tokstream *d, size_t k, const char *p, size_t n)
{
    if (n == 0) return;
    if (k == d->n) {
        put(d, &d->out, p, n);
        return;
    }
    stage *s = &d->st[k];
    switch (d->t->decs[k].kind) {
    case TK_DEC_REPLACE:
        replace_data(d, k, p, n);
        break;
    case TK_DEC_BYTEFALLBACK:
        if (s->cand) {
            put(d, &s->hold, p, n);
            if (s->hold.len > 6) {
                s->cand = 0;
                bf_flush(d, k);
                ev_begin(d, k + 1);
                ev_data(d, k + 1, s->hold.p, s->hold.len);
            }
        } else {
            ev_data(d, k + 1, p, n);
        }
        break;
    case TK_DEC_STRIP:
        strip_data(d, k, p, n);
        break;
    case TK_DEC_METASPACE:
        meta_data(d, k, p, n);
        break;
    case TK_DEC_BYTELEVEL:
        put(d, &s->hold, p, n);
        break;
    default: /* Fuse, Join */
        ev_data(d, k + 1, p, n);
        break;
    }
}

static void ev_end(uq_tokstream *d, size_t k)
{
    if (k == d->n) return;
    stage *s = &d->st[k];
    switch (d->t->decs[k].kind) {
    case TK_DEC_REPLACE:
        if (s->hold.len) ev_data(d, k + 1, s->hold.p, s->hold.len);
        s->hold.len = 0;
        ev_end(d, k + 1);
        break;
    case TK_DEC_BYTEFALLBACK:
        if (s->cand) {
            unsigned char b;
            if (byte_token(s->hold.p, s->hold.len, &b)) {
                put(d, &s->group, &b, 1);
            } else {
                bf_flush(d, k);
                ev_begin(d, k + 1);
                ev_data(d, k + 1, s->hold.p, s->hold.len);
                ev_end(d, k + 1);
            }
            s->hold.len = 0;
        } else {
            ev_end(d, k + 1);
        }
        s->cand = 0;
        break;
    case TK_DEC_STRIP:
        s->run = 0; /* the trailing characters held are dropped */
        ev_end(d, k + 1);
        break;
    case TK_DEC_METASPACE:
        s->count++;
        ev_end(d, k + 1);
        break;
    case TK_DEC_BYTELEVEL:
        bl_token(d, k);
        break;
    default: /* Fuse, Join: one token to the end */
        break;
    }
}

static void ev_finish(uq_tokstream *d, size_t k)
{
    if (k == d->n) return;
    stage *s = &d->st[k];
    switch (d->t->decs[k].kind) {
    case TK_DEC_BYTEFALLBACK:
        bf_flush(d, k);
        break;
    case TK_DEC_BYTELEVEL:
    case TK_DEC_FUSE:
    case TK_DEC_JOIN:
        /* These end in one token, closed here. */
        if (d->t->decs[k].kind == TK_DEC_BYTELEVEL) bl_feed(d, k, NULL, 0, 1);
        if (!s->started) ev_begin(d, k + 1);
        ev_end(d, k + 1);
        break;
    default:
        break;
    }
    ev_finish(d, k + 1);
}

/* ------------------------------------------------------------------- API */

static void clear_states(uq_tokstream *d)
{
    for (size_t k = 0; k < d->n; k++) {
        stage *s = &d->st[k];
        s->hold.len = 0;
        s->group.len = 0;
        s->cand = s->started = s->in_lead = 0;
        s->lead = s->run = s->count = s->npend = 0;
        s->hold.oom = s->group.oom = s->comb.oom = 0;
    }
    d->out.oom = 0;
    d->oom = 0;
}

uq_status uq_tokstream_new(const uq_tokenizer *t, int skip_special, uq_tokstream **out)
{
    if (!out) return uq_fail(UQ_ERR_ARG, "uq_tokstream_new: out is NULL");
    *out = NULL;
    if (!t) return uq_fail(UQ_ERR_ARG, "uq_tokstream_new: no tokenizer");
    uq_tokstream *d = calloc(1, sizeof *d);
    if (!d) return uq_fail(UQ_ERR_NOMEM, "tokenizer: out of memory");
    d->t = t;
    d->skip_special = skip_special;
    d->n = t->n_decs;
    d->st = calloc(d->n ? d->n : 1, sizeof *d->st);
    if (!d->st) {
        free(d);
        return uq_fail(UQ_ERR_NOMEM, "tokenizer: out of memory");
    }
    *out = d;
    return UQ_OK;
}

void uq_tokstream_free(uq_tokstream *d)
{
    if (!d) return;
    for (size_t k = 0; k < d->n; k++) {
        tk_buf_free(&d->st[k].hold);
        tk_buf_free(&d->st[k].group);
        tk_buf_free(&d->st[k].comb);
    }
    free(d->st);
    tk_buf_free(&d->out);
    free(d);
}

void uq_tokstream_reset(uq_tokstream *d)
{
    if (!d) return;
    clear_states(d);
    d->out.len = 0;
}

/* Feeds one id without clearing the output. */
static void feed(uq_tokstream *d, int32_t id)
{
    size_t len;
    const char *tok = uq_tokenizer_token(d->t, id, &len);
    if (!tok) return; /* no token: skipped */
    if (d->skip_special && uq_tokenizer_is_special(d->t, id)) return;
    ev_begin(d, 0);
    ev_data(d, 0, tok, len);
    ev_end(d, 0);
}

uq_status uq_tokstream_push(uq_tokstream *d, int32_t id, const char **text, size_t *len)
{
    if (text) *text = "";
    if (len) *len = 0;
    if (!d) return uq_fail(UQ_ERR_ARG, "uq_tokstream_push: no stream");
    d->out.len = 0;
    feed(d, id);
    if (d->oom) {
        clear_states(d);
        d->out.len = 0;
        return uq_fail(UQ_ERR_NOMEM, "tokenizer: out of memory");
    }
    if (text) *text = d->out.p ? d->out.p : "";
    if (len) *len = d->out.len;
    return UQ_OK;
}

uq_status uq_tokstream_finish(uq_tokstream *d, const char **text, size_t *len)
{
    if (text) *text = "";
    if (len) *len = 0;
    if (!d) return uq_fail(UQ_ERR_ARG, "uq_tokstream_finish: no stream");
    d->out.len = 0;
    ev_finish(d, 0);
    int oom = d->oom;
    clear_states(d);
    if (oom) {
        d->out.len = 0;
        return uq_fail(UQ_ERR_NOMEM, "tokenizer: out of memory");
    }
    if (text) *text = d->out.p ? d->out.p : "";
    if (len) *len = d->out.len;
    return UQ_OK;
}

uq_status uq_tokenizer_decode(const uq_tokenizer *t, const int32_t *ids, size_t n,
                              int skip_special, char **text, size_t *len)
{
    if (!text) return uq_fail(UQ_ERR_ARG, "uq_tokenizer_decode: text is NULL");
    *text = NULL;
    if (len) *len = 0;
    if (!ids && n) return uq_fail(UQ_ERR_ARG, "uq_tokenizer_decode: ids is NULL");
    uq_tokstream *d;
    uq_status st = uq_tokstream_new(t, skip_special, &d);
    if (st) return st;
    for (size_t i = 0; i < n && !d->oom; i++) feed(d, ids[i]);
    if (!d->oom) ev_finish(d, 0);
    if (!d->oom) tk_buf_putc(&d->out, '\0');
    if (d->oom || d->out.oom) {
        uq_tokstream_free(d);
        return uq_fail(UQ_ERR_NOMEM, "tokenizer: out of memory");
    }
    *text = d->out.p;
    if (len) *len = d->out.len - 1;
    d->out.p = NULL;
    uq_tokstream_free(d);
    return UQ_OK;
}
