/* Fuzzes the safetensors header parser and validation. Each input is tried
 * twice: as a whole file, and as header text placed in front of a 256-byte
 * data section with a matching length prefix (so mutations of the JSON reach
 * the deeper checks instead of failing the length check). On success every
 * view is touched to catch a view that escapes the buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uquant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const uint8_t *buf, size_t len)
{
    uq_st_file *f;
    if (uq_st_open_memory(buf, len, "fuzz", &f) != UQ_OK) return;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < uq_st_count(f); i++) {
        const uq_tensor *t = uq_st_tensor(f, i);
        const uint8_t *p = t->data;
        if (t->nbytes) sink ^= p[0] ^ p[t->nbytes - 1];
        (void)uq_st_find(f, t->name);
        if (uq_dtype_is_float(t->dtype) && t->numel && t->numel <= 4096) {
            float *v = malloc(t->numel * sizeof *v);
            if (v) uq_to_f32(t->dtype, t->data, v, t->numel);
            free(v);
        }
    }
    for (size_t i = 0; i < uq_st_metadata_count(f); i++) {
        const char *k, *v;
        uq_st_metadata_at(f, i, &k, &v);
        (void)uq_st_metadata(f, k);
    }
    (void)sink;
    uq_st_close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    exercise(data, size);
    if (size > (1u << 20)) return 0;
    uint8_t *buf = malloc(8 + size + 256);
    if (!buf) return 0;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)size >> (8 * i));
    memcpy(buf + 8, data, size);
    for (int i = 0; i < 256; i++) buf[8 + size + i] = (uint8_t)(i * 37);
    exercise(buf, 8 + size + 256);
    free(buf);
    return 0;
}
