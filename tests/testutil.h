/* Helpers shared by the test programs (cmocka). */
#ifndef UQ_TESTUTIL_H
#define UQ_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "uquant.h"

/* $UQ_SHARED_DIR or "../shared". */
const char *tu_shared_dir(void);
/* Joins the shared dir and a relative path into a static buffer (per call site: copy it). */
const char *tu_shared_path(const char *rel, char *buf, size_t cap);
/* A fresh, empty scratch folder for this test under $UQ_TMPDIR (or /tmp). */
const char *tu_scratch_dir(const char *name, char *buf, size_t cap);
/* The bundled demo model, models/stories260K under $UQ_SOURCE_DIR (or "."). */
const char *tu_bundled_model(char *buf, size_t cap);
/* Reads the integer array `field` of a JSON file under the shared folder
 * (refs/...): at most cap values into out; returns how many. */
size_t tu_ref_ids(const char *json_rel, const char *field, int32_t *out, size_t cap);
/* Largest |a[i] - b[i]|; NaN if either holds one. */
double tu_max_abs_diff(const float *a, const float *b, size_t n);
/* Whether the shared folder holds rel; tests skip() when it does not. */
int tu_shared_has(const char *rel);
/* Writes bytes to a file; fails the test on error. */
void tu_write_file(const char *path, const void *data, size_t len);
/* Reads a whole file (malloc'd, NUL-terminated); fails the test on error. */
char *tu_read_file(const char *path, size_t *len);
/* Runs a shell command, returns its exit status (-1 if it did not exit). */
int tu_system(const char *fmt, ...);
/* Deterministic pseudo random numbers (xorshift), per-seed. */
uint64_t tu_rand_u64(uint64_t *state);
float tu_rand_normal(uint64_t *state);

#endif
