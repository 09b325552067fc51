#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/wait.h>

#include <jansson.h>

const char *tu_shared_dir(void)
{
    const char *d = getenv("UQ_SHARED_DIR");
    return d && *d ? d : "../shared";
}

const char *tu_shared_path(const char *rel, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", tu_shared_dir(), rel);
    return buf;
}

int tu_shared_has(const char *rel)
{
    char p[4096];
    FILE *f = fopen(tu_shared_path(rel, p, sizeof p), "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

const char *tu_scratch_dir(const char *name, char *buf, size_t cap)
{
    const char *t = getenv("UQ_TMPDIR");
    snprintf(buf, cap, "%s/%s", t && *t ? t : "/tmp", name);
    assert_int_equal(tu_system("rm -rf '%s' && mkdir -p '%s'", buf, buf), 0);
    return buf;
}

void tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

int tu_system(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc)) return -1;
    return WEXITSTATUS(rc);
}

uint64_t tu_rand_u64(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

float tu_rand_normal(uint64_t *s)
{
    double u1 = ((tu_rand_u64(s) >> 11) + 1.0) * 0x1p-53;
    double u2 = (tu_rand_u64(s) >> 11) * 0x1p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

const char *tu_bundled_model(char *buf, size_t cap)
{
    const char *src = getenv("UQ_SOURCE_DIR");
    snprintf(buf, cap, "%s/models/stories260K", src && *src ? src : ".");
    return buf;
}

size_t tu_ref_ids(const char *json_rel, const char *field, int32_t *out, size_t cap)
{
    char p[4096];
    json_error_t e;
    json_t *root = json_load_file(tu_shared_path(json_rel, p, sizeof p), 0, &e);
    assert_non_null(root);
    json_t *a = json_object_get(root, field);
    assert_true(json_is_array(a));
    size_t n = json_array_size(a);
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) out[i] = (int32_t)json_integer_value(json_array_get(a, i));
    json_decref(root);
    return n;
}

double tu_max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}
