/* safetensors reader: mmap the file, validate the whole header, hand out
 * zero-copy views. Every check names the file and the tensor at fault. */
#include "io/safetensors_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct uq_st_file {
    char *label;             /* path (or caller label) for messages */
    const unsigned char *base;
    uint64_t size;
    uint64_t header_len;
    int mapped;              /* base is our mmap */
    uq_tensor *tensors;      /* ascending data offset */
    size_t n_tensors;
    const uq_tensor **by_name; /* sorted by name, for lookup */
    char **meta_keys, **meta_values;
    size_t n_meta;
};

/* ---------------------------------------------------------------- helpers */

static uq_status json_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return UQ_ERR_FIELD;
    *out = (uint64_t)json_integer_value(v);
    return UQ_OK;
}

/* Offsets are kept as numbers until validation is complete; data pointers are
 * filled in afterwards. */
typedef struct pending {
    uint64_t begin, end;
} pending;

static int cmp_name(const void *a, const void *b)
{
    const uq_tensor *x = *(const uq_tensor *const *)a, *y = *(const uq_tensor *const *)b;
    return strcmp(x->name, y->name);
}

typedef struct order_item {
    uint64_t begin, end;
    size_t index;
} order_item;

static int cmp_order(const void *a, const void *b)
{
    const order_item *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* ------------------------------------------------------- header parsing */

static uq_status parse_metadata(uq_st_file *f, json_t *meta)
{
    if (!json_is_object(meta))
        return uq_fail(UQ_ERR_FIELD, "%s: \"__metadata__\" is not an object", f->label);
    size_t n = json_object_size(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof(char *));
    f->meta_values = calloc(n ? n : 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_values) return uq_fail(UQ_ERR_NOMEM, "%s: out of memory", f->label);
    const char *key;
    json_t *val;
    json_object_foreach(meta, key, val) {
        if (!json_is_string(val))
            return uq_fail(UQ_ERR_FIELD, "%s: metadata value of \"%.100s\" is not a string", f->label, key);
        f->meta_keys[f->n_meta] = strdup(key);
        f->meta_values[f->n_meta] = strdup(json_string_value(val));
        if (!f->meta_keys[f->n_meta] || !f->meta_values[f->n_meta]) {
            f->n_meta++;
            return uq_fail(UQ_ERR_NOMEM, "%s: out of memory", f->label);
        }
        f->n_meta++;
    }
    return UQ_OK;
}

static uq_status parse_tensor(uq_st_file *f, const char *name, json_t *desc, uq_tensor *t,
                              pending *off, uint64_t data_size)
{
    const char *L = f->label;
    if (!json_is_object(desc))
        return uq_fail(UQ_ERR_FIELD, "%s: tensor \"%.200s\": entry is not an object", L, name);
    json_t *dt = json_object_get(desc, "dtype");
    json_t *shape = json_object_get(desc, "shape");
    json_t *offs = json_object_get(desc, "data_offsets");
    if (!dt || !shape || !offs)
        return uq_fail(UQ_ERR_FIELD, "%s: tensor \"%.200s\": missing \"%s\"", L, name,
                       !dt ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!json_is_string(dt))
        return uq_fail(UQ_ERR_FIELD, "%s: tensor \"%.200s\": \"dtype\" is not a string", L, name);
    if (uq_dtype_parse(json_string_value(dt), &t->dtype) != UQ_OK)
        return uq_fail(UQ_ERR_DTYPE, "%s: tensor \"%.200s\": unknown dtype \"%.40s\"", L, name,
                       json_string_value(dt));
    if (!json_is_array(shape))
        return uq_fail(UQ_ERR_FIELD, "%s: tensor \"%.200s\": \"shape\" is not an array", L, name);
    size_t nd = json_array_size(shape);
    if (nd > UQ_MAX_DIMS)
        return uq_fail(UQ_ERR_SHAPE, "%s: tensor \"%.200s\": %zu dimensions (at most %d supported)",
                       L, name, nd, UQ_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    int overflow = 0;
    for (size_t d = 0; d < nd; d++) {
        uint64_t dim;
        if (json_u64(json_array_get(shape, d), &dim) != UQ_OK)
            return uq_fail(UQ_ERR_FIELD, "%s: tensor \"%.200s\": shape[%zu] is not a non-negative integer",
                           L, name, d);
        t->shape[d] = (int64_t)dim;
        if (__builtin_mul_overflow(numel, dim, &numel)) overflow = 1;
    }
    uint64_t nbytes;
    if (overflow || __builtin_mul_overflow(numel, (uint64_t)uq_dtype_size(t->dtype), &nbytes))
        return uq_fail(UQ_ERR_SHAPE, "%s: tensor \"%.200s\": shape product overflows", L, name);
    t->numel = numel;
    t->nbytes = nbytes;
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        json_u64(json_array_get(offs, 0), &off->begin) != UQ_OK ||
        json_u64(json_array_get(offs, 1), &off->end) != UQ_OK)
        return uq_fail(UQ_ERR_FIELD, "%s: tensor \"%.200s\": \"data_offsets\" is not [begin, end]", L, name);
    if (off->begin > off->end || off->end > data_size)
        return uq_fail(UQ_ERR_OFFSETS,
                       "%s: tensor \"%.200s\": data offsets [%llu, %llu] out of range (data section is %llu bytes)",
                       L, name, (unsigned long long)off->begin, (unsigned long long)off->end,
                       (unsigned long long)data_size);
    if (off->end - off->begin != nbytes)
        return uq_fail(UQ_ERR_OFFSETS,
                       "%s: tensor \"%.200s\": data offsets span %llu bytes but %s x shape needs %llu",
                       L, name, (unsigned long long)(off->end - off->begin), uq_dtype_name(t->dtype),
                       (unsigned long long)nbytes);
    return UQ_OK;
}

static uq_status parse_header(uq_st_file *f)
{
    const char *L = f->label;
    if (f->size < 8)
        return uq_fail(UQ_ERR_TRUNCATED, "%s: %llu bytes, too short for a safetensors header", L,
                       (unsigned long long)f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->base[i];
    if (n > f->size - 8)
        return uq_fail(UQ_ERR_TRUNCATED, "%s: header length %llu goes beyond the file (%llu bytes)", L,
                       (unsigned long long)n, (unsigned long long)f->size);
    f->header_len = n;
    uint64_t data_size = f->size - 8 - n;

    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->base + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_duplicate_key)
            return uq_fail(UQ_ERR_DUPLICATE, "%s: header names a tensor twice (%s)", L, jerr.text);
        return uq_fail(UQ_ERR_JSON, "%s: header is not valid JSON (%s at byte %d)", L, jerr.text,
                       jerr.position);
    }
    uq_status st = UQ_OK;
    pending *offs = NULL;
    order_item *order = NULL;
    if (!json_is_object(root)) {
        st = uq_fail(UQ_ERR_JSON, "%s: header is not a JSON object", L);
        goto out;
    }
    size_t cap = json_object_size(root);
    f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
    offs = calloc(cap ? cap : 1, sizeof *offs);
    if (!f->tensors || !offs) {
        st = uq_fail(UQ_ERR_NOMEM, "%s: out of memory", L);
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if ((st = parse_metadata(f, val)) != UQ_OK) goto out;
            continue;
        }
        uq_tensor *t = &f->tensors[f->n_tensors];
        if ((st = parse_tensor(f, key, val, t, &offs[f->n_tensors], data_size)) != UQ_OK) goto out;
        if (!(t->name = strdup(key))) {
            st = uq_fail(UQ_ERR_NOMEM, "%s: out of memory", L);
            goto out;
        }
        f->n_tensors++;
    }

    /* Sort by offset and reject overlaps. */
    order = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *order);
    if (!order) {
        st = uq_fail(UQ_ERR_NOMEM, "%s: out of memory", L);
        goto out;
    }
    for (size_t i = 0; i < f->n_tensors; i++) order[i] = (order_item){offs[i].begin, offs[i].end, i};
    qsort(order, f->n_tensors, sizeof *order, cmp_order);
    for (size_t i = 1; i < f->n_tensors; i++) {
        /* zero-sized tensors occupy no bytes and cannot overlap */
        if (order[i].begin < order[i - 1].end && order[i].begin != order[i].end) {
            st = uq_fail(UQ_ERR_OFFSETS, "%s: tensors \"%.200s\" and \"%.200s\" overlap", L,
                         f->tensors[order[i - 1].index].name, f->tensors[order[i].index].name);
            goto out;
        }
    }
    uq_tensor *sorted = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *sorted);
    if (!sorted) {
        st = uq_fail(UQ_ERR_NOMEM, "%s: out of memory", L);
        goto out;
    }
    const unsigned char *data = f->base + 8 + n;
    for (size_t i = 0; i < f->n_tensors; i++) {
        sorted[i] = f->tensors[order[i].index];
        sorted[i].data = data + order[i].begin;
    }
    free(f->tensors);
    f->tensors = sorted;

    f->by_name = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->by_name);
    if (!f->by_name) {
        st = uq_fail(UQ_ERR_NOMEM, "%s: out of memory", L);
        goto out;
    }
    for (size_t i = 0; i < f->n_tensors; i++) f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, f->n_tensors, sizeof *f->by_name, cmp_name);
out:
    free(order);
    free(offs);
    json_decref(root);
    return st;
}

/* ------------------------------------------------------------ open/close */

static uq_status finish_open(uq_st_file *f, uq_st_file **out)
{
    uq_status st = parse_header(f);
    if (st != UQ_OK) {
        uq_st_close(f);
        return st;
    }
    *out = f;
    return UQ_OK;
}

uq_status uq_st_open_memory(const void *buf, size_t len, const char *label, uq_st_file **out)
{
    if (!out || (!buf && len)) return uq_fail(UQ_ERR_ARG, "uq_st_open_memory: NULL argument");
    *out = NULL;
    uq_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->label = strdup(label ? label : "<memory>"))) {
        free(f);
        return uq_fail(UQ_ERR_NOMEM, "out of memory");
    }
    f->base = buf;
    f->size = len;
    return finish_open(f, out);
}

uq_status uq_st_open(const char *path, uq_st_file **out)
{
    if (!path || !out) return uq_fail(UQ_ERR_ARG, "uq_st_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return uq_fail(errno == ENOENT ? UQ_ERR_MISSING : UQ_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return uq_fail(UQ_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return uq_fail(UQ_ERR_IO, "%s: not a regular file", path);
    }
    uq_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->label = strdup(path))) {
        free(f);
        close(fd);
        return uq_fail(UQ_ERR_NOMEM, "out of memory");
    }
    f->size = (uint64_t)sb.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            uq_st_close(f);
            return uq_fail(UQ_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
        }
        f->base = p;
        f->mapped = 1;
    }
    close(fd);
    return finish_open(f, out);
}

void uq_st_close(uq_st_file *f)
{
    if (!f) return;
    if (f->mapped) munmap((void *)f->base, (size_t)f->size);
    for (size_t i = 0; i < f->n_tensors; i++) free((char *)f->tensors[i].name);
    free(f->tensors);
    free(f->by_name);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->label);
    free(f);
}

/* ------------------------------------------------------------- accessors */

size_t uq_st_count(const uq_st_file *f) { return f ? f->n_tensors : 0; }

const uq_tensor *uq_st_tensor(const uq_st_file *f, size_t i)
{
    return f && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const uq_tensor *uq_st_find(const uq_st_file *f, const char *name)
{
    if (!f || !name || !f->by_name) return NULL;
    size_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->by_name[mid]->name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

size_t uq_st_metadata_count(const uq_st_file *f) { return f ? f->n_meta : 0; }

void uq_st_metadata_at(const uq_st_file *f, size_t i, const char **key, const char **value)
{
    int ok = f && i < f->n_meta;
    if (key) *key = ok ? f->meta_keys[i] : NULL;
    if (value) *value = ok ? f->meta_values[i] : NULL;
}

const char *uq_st_metadata(const uq_st_file *f, const char *key)
{
    for (size_t i = 0; f && key && i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

uint64_t uq_st_file_size(const uq_st_file *f) { return f ? f->size : 0; }
uint64_t uq_st_header_size(const uq_st_file *f) { return f ? f->header_len : 0; }
