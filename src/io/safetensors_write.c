/* Streaming safetensors writer (see uquant.h): layout first, then data
 * written in place with pwrite, then an atomic rename of every shard. */
#include "io/safetensors_internal.h"
#include "io/path.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct wtensor {
    char *name;
    uq_dtype dtype;
    int ndim;
    int64_t shape[UQ_MAX_DIMS];
    uint64_t nbytes;
    size_t order;      /* position of declaration */
    int shard;
    uint64_t begin;    /* offset inside the shard's data section */
    uint64_t written;
} wtensor;

typedef struct wshard {
    int fd;
    char *tmp_path;
    char *final_path;
    uint64_t data_start; /* 8 + header length */
    uint64_t data_size;
} wshard;

struct uq_st_writer {
    wtensor *t;
    size_t n, cap;
    char **meta_k, **meta_v;
    size_t n_meta;
    wtensor **by_name;
    wshard *shards;
    size_t n_shards;
    char *index_path;
    int begun, finished;
    uint64_t total;
    pthread_mutex_t lock;
};

uq_status uq_st_writer_create(uq_st_writer **out)
{
    if (!out) return uq_fail(UQ_ERR_ARG, "uq_st_writer_create: NULL argument");
    uq_st_writer *w = calloc(1, sizeof *w);
    if (!w) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&w->lock, NULL);
    *out = w;
    return UQ_OK;
}

void uq_st_writer_free(uq_st_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_shards; i++) {
        if (w->shards[i].fd >= 0) close(w->shards[i].fd);
        if (!w->finished && w->shards[i].tmp_path) unlink(w->shards[i].tmp_path);
        free(w->shards[i].tmp_path);
        free(w->shards[i].final_path);
    }
    free(w->shards);
    for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta_k[i]);
        free(w->meta_v[i]);
    }
    free(w->meta_k);
    free(w->meta_v);
    free(w->by_name);
    free(w->index_path);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

uq_status uq_st_writer_set_metadata(uq_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value) return uq_fail(UQ_ERR_ARG, "uq_st_writer_set_metadata: NULL argument");
    if (w->begun) return uq_fail(UQ_ERR_STATE, "safetensors writer: metadata set after begin");
    for (size_t i = 0; i < w->n_meta; i++) {
        if (strcmp(w->meta_k[i], key) == 0) {
            char *v = strdup(value);
            if (!v) return uq_fail(UQ_ERR_NOMEM, "out of memory");
            free(w->meta_v[i]);
            w->meta_v[i] = v;
            return UQ_OK;
        }
    }
    char **k = realloc(w->meta_k, (w->n_meta + 1) * sizeof *k);
    if (!k) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    w->meta_k = k;
    char **v = realloc(w->meta_v, (w->n_meta + 1) * sizeof *v);
    if (!v) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    w->meta_v = v;
    k[w->n_meta] = strdup(key);
    v[w->n_meta] = strdup(value);
    w->n_meta++;
    if (!k[w->n_meta - 1] || !v[w->n_meta - 1]) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    return UQ_OK;
}

uq_status uq_st_writer_add(uq_st_writer *w, const char *name, uq_dtype dtype, int ndim,
                           const int64_t *shape)
{
    if (!w || !name || (ndim && !shape)) return uq_fail(UQ_ERR_ARG, "uq_st_writer_add: NULL argument");
    if (w->begun) return uq_fail(UQ_ERR_STATE, "safetensors writer: tensor \"%.200s\" added after begin", name);
    if ((unsigned)dtype >= UQ_DTYPE_COUNT)
        return uq_fail(UQ_ERR_DTYPE, "safetensors writer: tensor \"%.200s\": bad dtype", name);
    if (ndim < 0 || ndim > UQ_MAX_DIMS)
        return uq_fail(UQ_ERR_SHAPE, "safetensors writer: tensor \"%.200s\": %d dimensions", name, ndim);
    if (strcmp(name, "__metadata__") == 0)
        return uq_fail(UQ_ERR_ARG, "safetensors writer: \"__metadata__\" is not a tensor name");
    uint64_t bytes = uq_dtype_size(dtype);
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || __builtin_mul_overflow(bytes, (uint64_t)shape[d], &bytes))
            return uq_fail(UQ_ERR_SHAPE, "safetensors writer: tensor \"%.200s\": invalid shape", name);
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return uq_fail(UQ_ERR_NOMEM, "out of memory");
        w->t = t;
        w->cap = cap;
    }
    wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->nbytes = bytes;
    t->order = w->n;
    w->n++;
    return UQ_OK;
}

static int cmp_wname(const void *a, const void *b)
{
    return strcmp((*(wtensor *const *)a)->name, (*(wtensor *const *)b)->name);
}

/* Within a shard: larger element sizes first, then declaration order. */
static int cmp_layout(const void *a, const void *b)
{
    const wtensor *x = *(wtensor *const *)a, *y = *(wtensor *const *)b;
    if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
    size_t sx = uq_dtype_size(x->dtype), sy = uq_dtype_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static uq_status pwrite_all(int fd, const void *data, size_t len, uint64_t off, const char *path)
{
    const char *p = data;
    while (len) {
        ssize_t r = pwrite(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return uq_fail(UQ_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return UQ_OK;
}

/* Builds the JSON header of shard s from the tensors in layout order. */
static uq_status write_shard_header(uq_st_writer *w, size_t s, wtensor **layout)
{
    wshard *sh = &w->shards[s];
    json_t *root = json_object();
    if (!root) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    if (w->n_meta) {
        json_t *m = json_object();
        for (size_t i = 0; i < w->n_meta; i++) json_object_set_new(m, w->meta_k[i], json_string(w->meta_v[i]));
        json_object_set_new(root, "__metadata__", m);
    }
    for (size_t i = 0; i < w->n; i++) {
        wtensor *t = layout[i];
        if (t->shard != (int)s) continue;
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)t->begin));
        json_array_append_new(offs, json_integer((json_int_t)(t->begin + t->nbytes)));
        json_t *desc = json_object();
        json_object_set_new(desc, "dtype", json_string(uq_dtype_name(t->dtype)));
        json_object_set_new(desc, "shape", shape);
        json_object_set_new(desc, "data_offsets", offs);
        json_object_set_new(root, t->name, desc);
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text) return uq_fail(UQ_ERR_NOMEM, "%s: header could not be encoded", sh->final_path);
    size_t len = strlen(text);
    size_t padded = (len + 7) & ~(size_t)7;
    unsigned char *buf = malloc(8 + padded);
    if (!buf) {
        free(text);
        return uq_fail(UQ_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, text, len);
    memset(buf + 8 + len, ' ', padded - len);
    free(text);
    sh->data_start = 8 + padded;
    uq_status st = pwrite_all(sh->fd, buf, 8 + padded, 0, sh->tmp_path);
    free(buf);
    if (st == UQ_OK && ftruncate(sh->fd, (off_t)(sh->data_start + sh->data_size)) != 0)
        st = uq_fail(UQ_ERR_IO, "%s: cannot size the file: %s", sh->tmp_path, strerror(errno));
    return st;
}

static char *format_path(const char *dir, const char *fmt, ...) UQ_PRINTF(2, 3);
static char *format_path(const char *dir, const char *fmt, ...)
{
    char name[1024], path[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof name) return NULL;
    if (uq_path_join(path, sizeof path, dir, name) != UQ_OK) return NULL;
    return strdup(path);
}

uq_status uq_st_writer_begin(uq_st_writer *w, const char *dir, const char *base, uint64_t max_shard_bytes)
{
    if (!w || !dir || !base) return uq_fail(UQ_ERR_ARG, "uq_st_writer_begin: NULL argument");
    if (w->begun) return uq_fail(UQ_ERR_STATE, "safetensors writer: begin called twice");
    w->begun = 1;

    /* Names must be unique. */
    w->by_name = calloc(w->n ? w->n : 1, sizeof *w->by_name);
    if (!w->by_name) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < w->n; i++) w->by_name[i] = &w->t[i];
    qsort(w->by_name, w->n, sizeof *w->by_name, cmp_wname);
    for (size_t i = 1; i < w->n; i++)
        if (strcmp(w->by_name[i - 1]->name, w->by_name[i]->name) == 0)
            return uq_fail(UQ_ERR_DUPLICATE, "safetensors writer: tensor \"%.200s\" added twice", w->by_name[i]->name);

    /* Assign shards greedily in declaration order. */
    size_t n_shards = 1;
    uint64_t cur = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (max_shard_bytes && cur > 0 && cur + w->t[i].nbytes > max_shard_bytes) {
            n_shards++;
            cur = 0;
        }
        w->t[i].shard = (int)n_shards - 1;
        cur += w->t[i].nbytes;
        w->total += w->t[i].nbytes;
    }
    w->shards = calloc(n_shards, sizeof *w->shards);
    if (!w->shards) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    for (size_t s = 0; s < n_shards; s++) w->shards[s].fd = -1;
    w->n_shards = n_shards;

    wtensor **layout = calloc(w->n ? w->n : 1, sizeof *layout);
    if (!layout) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < w->n; i++) layout[i] = &w->t[i];
    qsort(layout, w->n, sizeof *layout, cmp_layout);
    for (size_t i = 0; i < w->n; i++) {
        wshard *sh = &w->shards[layout[i]->shard];
        layout[i]->begin = sh->data_size;
        sh->data_size += layout[i]->nbytes;
    }

    uq_status st = UQ_OK;
    long pid = (long)getpid();
    for (size_t s = 0; s < n_shards && st == UQ_OK; s++) {
        wshard *sh = &w->shards[s];
        if (n_shards == 1) {
            sh->final_path = format_path(dir, "%s.safetensors", base);
            sh->tmp_path = format_path(dir, ".%s.safetensors.tmp.%ld", base, pid);
        } else {
            sh->final_path = format_path(dir, "%s-%05zu-of-%05zu.safetensors", base, s + 1, n_shards);
            sh->tmp_path = format_path(dir, ".%s-%05zu-of-%05zu.safetensors.tmp.%ld", base, s + 1, n_shards, pid);
        }
        if (!sh->final_path || !sh->tmp_path) {
            st = uq_fail(UQ_ERR_ARG, "safetensors writer: output path too long in %.200s", dir);
            break;
        }
        sh->fd = open(sh->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (sh->fd < 0) {
            st = uq_fail(UQ_ERR_IO, "%s: %s", sh->tmp_path, strerror(errno));
            break;
        }
        st = write_shard_header(w, s, layout);
    }
    if (st == UQ_OK && n_shards > 1) {
        w->index_path = format_path(dir, "%s%s", base, UQ_ST_INDEX_SUFFIX);
        if (!w->index_path) st = uq_fail(UQ_ERR_ARG, "safetensors writer: output path too long");
    }
    free(layout);
    return st;
}

static wtensor *find_w(const uq_st_writer *w, const char *name)
{
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, w->by_name[mid]->name);
        if (c == 0) return w->by_name[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

uq_status uq_st_writer_put(uq_st_writer *w, const char *name, uint64_t offset, const void *data, size_t nbytes)
{
    if (!w || !name || (nbytes && !data)) return uq_fail(UQ_ERR_ARG, "uq_st_writer_put: NULL argument");
    if (!w->begun || w->finished || !w->shards)
        return uq_fail(UQ_ERR_STATE, "safetensors writer: put outside begin..finish");
    wtensor *t = find_w(w, name);
    if (!t) return uq_fail(UQ_ERR_MISSING, "safetensors writer: tensor \"%.200s\" was not declared", name);
    if (offset > t->nbytes || nbytes > t->nbytes - offset)
        return uq_fail(UQ_ERR_STATE, "safetensors writer: tensor \"%.200s\": %zu bytes at %llu exceed its %llu bytes",
                       name, nbytes, (unsigned long long)offset, (unsigned long long)t->nbytes);
    wshard *sh = &w->shards[t->shard];
    uq_status st = pwrite_all(sh->fd, data, nbytes, sh->data_start + t->begin + offset, sh->tmp_path);
    if (st != UQ_OK) return st;
    pthread_mutex_lock(&w->lock);
    t->written += nbytes;
    pthread_mutex_unlock(&w->lock);
    return UQ_OK;
}

static uq_status write_index(uq_st_writer *w)
{
    json_t *root = json_object();
    json_t *meta = json_object();
    json_object_set_new(meta, "total_size", json_integer((json_int_t)w->total));
    json_object_set_new(root, "metadata", meta);
    json_t *map = json_object();
    for (size_t i = 0; i < w->n; i++) {
        const char *p = w->shards[w->t[i].shard].final_path;
        const char *slash = strrchr(p, '/');
        json_object_set_new(map, w->t[i].name, json_string(slash ? slash + 1 : p));
    }
    json_object_set_new(root, "weight_map", map);
    uq_status st = uq_write_json_atomic(w->index_path, root);
    json_decref(root);
    return st;
}

uq_status uq_st_writer_finish(uq_st_writer *w)
{
    if (!w) return uq_fail(UQ_ERR_ARG, "uq_st_writer_finish: NULL argument");
    if (!w->begun || w->finished || !w->shards)
        return uq_fail(UQ_ERR_STATE, "safetensors writer: finish without begin, or twice");
    for (size_t i = 0; i < w->n; i++) {
        if (w->t[i].written != w->t[i].nbytes)
            return uq_fail(UQ_ERR_STATE, "safetensors writer: tensor \"%.200s\" has %llu of %llu bytes written",
                           w->t[i].name, (unsigned long long)w->t[i].written,
                           (unsigned long long)w->t[i].nbytes);
    }
    for (size_t s = 0; s < w->n_shards; s++) {
        wshard *sh = &w->shards[s];
        if (fsync(sh->fd) != 0 || close(sh->fd) != 0) {
            sh->fd = -1;
            return uq_fail(UQ_ERR_IO, "%s: %s", sh->tmp_path, strerror(errno));
        }
        sh->fd = -1;
    }
    for (size_t s = 0; s < w->n_shards; s++) {
        wshard *sh = &w->shards[s];
        if (rename(sh->tmp_path, sh->final_path) != 0)
            return uq_fail(UQ_ERR_IO, "%s: rename failed: %s", sh->final_path, strerror(errno));
    }
    w->finished = 1;
    if (w->index_path) return write_index(w);
    return UQ_OK;
}

size_t uq_st_writer_shard_count(const uq_st_writer *w) { return w ? w->n_shards : 0; }
uint64_t uq_st_writer_total_bytes(const uq_st_writer *w) { return w ? w->total : 0; }
