/* A model's weights as one set of tensors: a single .safetensors file, a
 * folder with model.safetensors, or shards listed by
 * model.safetensors.index.json. */
#include "io/safetensors_internal.h"
#include "io/path.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct uq_model_files {
    char *dir;
    size_t n_shards;
    uq_st_file **shards;
    char **shard_paths;
    uq_tensor *tensors;          /* copies of the shard views, shard-major */
    const uq_tensor **by_name;
    size_t n_tensors;
};

static int cmp_name(const void *a, const void *b)
{
    const uq_tensor *x = *(const uq_tensor *const *)a, *y = *(const uq_tensor *const *)b;
    return strcmp(x->name, y->name);
}

void uq_files_close(uq_model_files *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_shards; i++) {
        uq_st_close(m->shards[i]);
        free(m->shard_paths[i]);
    }
    free(m->shards);
    free(m->shard_paths);
    free(m->tensors);
    free(m->by_name);
    free(m->dir);
    free(m);
}

static uq_status add_shard(uq_model_files *m, const char *path)
{
    uq_st_file **s = realloc(m->shards, (m->n_shards + 1) * sizeof *s);
    if (!s) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    m->shards = s;
    char **p = realloc(m->shard_paths, (m->n_shards + 1) * sizeof *p);
    if (!p) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    m->shard_paths = p;
    if (!(p[m->n_shards] = strdup(path))) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    uq_status st = uq_st_open(path, &s[m->n_shards]);
    if (st != UQ_OK) {
        free(p[m->n_shards]);
        return st;
    }
    m->n_shards++;
    return UQ_OK;
}

/* Joins the shards' tensors into one table and rejects a name held twice. */
static uq_status build_table(uq_model_files *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_shards; i++) n += uq_st_count(m->shards[i]);
    m->tensors = calloc(n ? n : 1, sizeof *m->tensors);
    m->by_name = calloc(n ? n : 1, sizeof *m->by_name);
    if (!m->tensors || !m->by_name) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_shards; i++) {
        for (size_t j = 0; j < uq_st_count(m->shards[i]); j++) {
            m->tensors[m->n_tensors] = *uq_st_tensor(m->shards[i], j);
            m->tensors[m->n_tensors].shard = (int)i;
            m->n_tensors++;
        }
    }
    for (size_t i = 0; i < n; i++) m->by_name[i] = &m->tensors[i];
    qsort(m->by_name, n, sizeof *m->by_name, cmp_name);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(m->by_name[i - 1]->name, m->by_name[i]->name) == 0)
            return uq_fail(UQ_ERR_DUPLICATE, "%s: tensor \"%.200s\" is in both %s and %s", m->dir,
                           m->by_name[i]->name, m->shard_paths[m->by_name[i - 1]->shard],
                           m->shard_paths[m->by_name[i]->shard]);
    }
    return UQ_OK;
}

/* A shard name from an index must stay inside the model folder. */
static uq_status check_shard_name(const char *index_path, const char *name)
{
    if (!*name || name[0] == '/' || uq_path_has_dotdot(name))
        return uq_fail(UQ_ERR_PATH, "%s: shard \"%.200s\" lies outside the model folder", index_path, name);
    return UQ_OK;
}

static uq_status open_index(uq_model_files *m, const char *index_path)
{
    json_error_t jerr;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_duplicate_key)
            return uq_fail(UQ_ERR_DUPLICATE, "%s: a tensor is named twice (%s)", index_path, jerr.text);
        return uq_fail(UQ_ERR_JSON, "%s: not valid JSON (%s, line %d)", index_path, jerr.text, jerr.line);
    }
    uq_status st = UQ_OK;
    json_t *map = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(root)) {
        st = uq_fail(UQ_ERR_JSON, "%s: not a JSON object", index_path);
        goto out;
    }
    if (!json_is_object(map)) {
        st = uq_fail(UQ_ERR_FIELD, "%s: missing \"weight_map\" object", index_path);
        goto out;
    }
    /* Open each distinct shard once, in order of first mention. */
    const char *tname;
    json_t *v;
    json_object_foreach(map, tname, v) {
        if (!json_is_string(v)) {
            st = uq_fail(UQ_ERR_FIELD, "%s: weight_map entry \"%.200s\" is not a string", index_path, tname);
            goto out;
        }
        const char *shard = json_string_value(v);
        if ((st = check_shard_name(index_path, shard)) != UQ_OK) goto out;
        char path[4096];
        if (uq_path_join(path, sizeof path, m->dir, shard) != UQ_OK) {
            st = uq_fail(UQ_ERR_PATH, "%s: shard name too long", index_path);
            goto out;
        }
        int seen = 0;
        for (size_t i = 0; i < m->n_shards && !seen; i++) seen = strcmp(m->shard_paths[i], path) == 0;
        if (seen) continue;
        struct stat sb;
        if (stat(path, &sb) != 0) {
            st = uq_fail(UQ_ERR_MISSING, "%s: shard %s named for tensor \"%.200s\" is missing", index_path,
                         shard, tname);
            goto out;
        }
        if ((st = add_shard(m, path)) != UQ_OK) goto out;
    }
    if ((st = build_table(m)) != UQ_OK) goto out;
    /* Every tensor of the map must be in the shard the map names. */
    json_object_foreach(map, tname, v) {
        const uq_tensor *t = uq_files_find(m, tname);
        char path[4096];
        uq_path_join(path, sizeof path, m->dir, json_string_value(v));
        if (!t || strcmp(m->shard_paths[t->shard], path) != 0) {
            st = uq_fail(UQ_ERR_MISSING, "%s: tensor \"%.200s\" is not in shard %s", index_path, tname,
                         json_string_value(v));
            goto out;
        }
    }
out:
    json_decref(root);
    return st;
}

uq_status uq_files_open(const char *path, uq_model_files **out)
{
    if (!path || !out) return uq_fail(UQ_ERR_ARG, "uq_files_open: NULL argument");
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return uq_fail(errno == ENOENT ? UQ_ERR_MISSING : UQ_ERR_IO, "%s: %s", path, strerror(errno));
    uq_model_files *m = calloc(1, sizeof *m);
    if (!m) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    uq_status st;
    if (S_ISDIR(sb.st_mode)) {
        if (!(m->dir = strdup(path))) {
            st = uq_fail(UQ_ERR_NOMEM, "out of memory");
            goto fail;
        }
        char p[4096];
        uq_path_join(p, sizeof p, path, "model" UQ_ST_INDEX_SUFFIX);
        if (stat(p, &sb) == 0) {
            st = open_index(m, p);
        } else {
            uq_path_join(p, sizeof p, path, "model.safetensors");
            if (stat(p, &sb) != 0) {
                st = uq_fail(UQ_ERR_MISSING, "%s: no model.safetensors or model.safetensors.index.json", path);
                goto fail;
            }
            st = add_shard(m, p);
            if (st == UQ_OK) st = build_table(m);
        }
    } else {
        if (!(m->dir = uq_path_dirname(path))) {
            st = uq_fail(UQ_ERR_NOMEM, "out of memory");
            goto fail;
        }
        st = add_shard(m, path);
        if (st == UQ_OK) st = build_table(m);
    }
    if (st != UQ_OK) goto fail;
    *out = m;
    return UQ_OK;
fail:
    uq_files_close(m);
    return st;
}

size_t uq_files_count(const uq_model_files *m) { return m ? m->n_tensors : 0; }

const uq_tensor *uq_files_tensor(const uq_model_files *m, size_t i)
{
    return m && i < m->n_tensors ? &m->tensors[i] : NULL;
}

const uq_tensor *uq_files_find(const uq_model_files *m, const char *name)
{
    if (!m || !name || !m->by_name) return NULL;
    size_t lo = 0, hi = m->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, m->by_name[mid]->name);
        if (c == 0) return m->by_name[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

size_t uq_files_shard_count(const uq_model_files *m) { return m ? m->n_shards : 0; }

const uq_st_file *uq_files_shard(const uq_model_files *m, size_t i)
{
    return m && i < m->n_shards ? m->shards[i] : NULL;
}

const char *uq_files_shard_path(const uq_model_files *m, size_t i)
{
    return m && i < m->n_shards ? m->shard_paths[i] : NULL;
}

const char *uq_files_dir(const uq_model_files *m) { return m ? m->dir : NULL; }

const char *uq_files_metadata(const uq_model_files *m, const char *key)
{
    for (size_t i = 0; m && i < m->n_shards; i++) {
        const char *v = uq_st_metadata(m->shards[i], key);
        if (v) return v;
    }
    return NULL;
}
