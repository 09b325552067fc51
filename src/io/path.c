#include "io/path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

uq_status uq_path_join(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = (dir && *dir) ? snprintf(buf, cap, "%s/%s", dir, name) : snprintf(buf, cap, "%s", name);
    if (n < 0 || (size_t)n >= cap) return uq_fail(UQ_ERR_ARG, "path too long: %.100s/%.100s", dir, name);
    return UQ_OK;
}

int uq_path_has_dotdot(const char *rel)
{
    const char *p = rel;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

char *uq_path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

int uq_path_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int uq_path_is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

uq_status uq_read_file(const char *path, size_t max_bytes, char **out, size_t *len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return uq_fail(errno == ENOENT ? UQ_ERR_MISSING : UQ_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return uq_fail(UQ_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > max_bytes) {
        fclose(f);
        return uq_fail(UQ_ERR_IO, "%s: %lld bytes, larger than the %zu allowed", path,
                       (long long)sb.st_size, max_bytes);
    }
    size_t n = (size_t)sb.st_size;
    char *b = malloc(n + 1);
    if (!b) {
        fclose(f);
        return uq_fail(UQ_ERR_NOMEM, "%s: out of memory", path);
    }
    if (fread(b, 1, n, f) != n) {
        free(b);
        fclose(f);
        return uq_fail(UQ_ERR_IO, "%s: read failed", path);
    }
    fclose(f);
    b[n] = 0;
    *out = b;
    if (len) *len = n;
    return UQ_OK;
}

static uq_status write_all(int fd, const void *data, size_t len, const char *path)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return uq_fail(UQ_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        p += w;
        len -= (size_t)w;
    }
    return UQ_OK;
}

uq_status uq_write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) return uq_fail(UQ_ERR_ARG, "path too long: %.200s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return uq_fail(UQ_ERR_IO, "%s: %s", tmp, strerror(errno));
    uq_status st = write_all(fd, data, len, tmp);
    if (close(fd) != 0 && st == UQ_OK) st = uq_fail(UQ_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (st == UQ_OK && rename(tmp, path) != 0)
        st = uq_fail(UQ_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
    if (st != UQ_OK) unlink(tmp);
    return st;
}

uq_status uq_copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return uq_fail(UQ_ERR_IO, "%s: %s", src, strerror(errno));
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dst, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        close(in);
        return uq_fail(UQ_ERR_ARG, "path too long: %.200s", dst);
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return uq_fail(UQ_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    uq_status st = UQ_OK;
    char buf[1 << 16];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = uq_fail(UQ_ERR_IO, "%s: read failed: %s", src, strerror(errno));
            break;
        }
        if (r == 0) break;
        if ((st = write_all(out, buf, (size_t)r, tmp)) != UQ_OK) break;
    }
    close(in);
    if (close(out) != 0 && st == UQ_OK) st = uq_fail(UQ_ERR_IO, "%s: close failed", tmp);
    if (st == UQ_OK && rename(tmp, dst) != 0) st = uq_fail(UQ_ERR_IO, "%s: rename failed: %s", dst, strerror(errno));
    if (st != UQ_OK) unlink(tmp);
    return st;
}

uq_status uq_remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? UQ_OK : uq_fail(UQ_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return uq_fail(UQ_ERR_IO, "%s: %s", path, strerror(errno));
        struct dirent *e;
        uq_status st = UQ_OK;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char child[4096];
            if ((st = uq_path_join(child, sizeof child, path, e->d_name)) != UQ_OK) break;
            if ((st = uq_remove_tree(child)) != UQ_OK) break;
        }
        closedir(d);
        if (st != UQ_OK) return st;
        if (rmdir(path) != 0) return uq_fail(UQ_ERR_IO, "%s: %s", path, strerror(errno));
        return UQ_OK;
    }
    if (unlink(path) != 0) return uq_fail(UQ_ERR_IO, "%s: %s", path, strerror(errno));
    return UQ_OK;
}

void uq_release_pages(const void *p, size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || !p) return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

uq_status uq_write_json_atomic(const char *path, const struct json_t *value)
{
    /* 16 significant digits print config values as written (1e-05, not 1.0000000000000001e-05) */
    char *text = json_dumps((const json_t *)value, JSON_INDENT(2) | JSON_REAL_PRECISION(16));
    if (!text) return uq_fail(UQ_ERR_NOMEM, "%s: cannot encode JSON", path);
    size_t len = strlen(text);
    char *t = realloc(text, len + 2);
    if (!t) {
        free(text);
        return uq_fail(UQ_ERR_NOMEM, "out of memory");
    }
    t[len] = '\n';
    uq_status st = uq_write_file_atomic(path, t, len + 1);
    free(t);
    return st;
}
