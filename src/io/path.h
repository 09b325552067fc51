/* Small path and file helpers used by the I/O layer and the commands. */
#ifndef UQ_IO_PATH_H
#define UQ_IO_PATH_H

#include <stddef.h>

#include "core/error.h"

/* dir + "/" + name into buf; UQ_ERR_ARG if it does not fit. */
uq_status uq_path_join(char *buf, size_t cap, const char *dir, const char *name);
/* 1 if any component of the relative path is "..". */
int uq_path_has_dotdot(const char *rel);
/* The folder part of a path ("." when none), malloc'd. */
char *uq_path_dirname(const char *path);
/* 1 if path exists and is a folder / a regular file. */
int uq_path_is_dir(const char *path);
int uq_path_is_file(const char *path);
/* Reads a whole file (malloc'd, NUL-terminated), at most max_bytes. */
uq_status uq_read_file(const char *path, size_t max_bytes, char **out, size_t *len);
/* Writes a whole file through a temporary name in the same folder, then renames it. */
uq_status uq_write_file_atomic(const char *path, const void *data, size_t len);
/* Writes a JSON value (2-space indent, newline at the end) atomically. The
 * json_t is jansson's; declared opaque here to keep jansson out of callers
 * that do not use it. */
struct json_t;
uq_status uq_write_json_atomic(const char *path, const struct json_t *value);
/* Copies a regular file (through a temporary name). */
uq_status uq_copy_file(const char *src, const char *dst);
/* Tells the kernel the mapped bytes [p, p + n) will not be read again soon,
 * so streaming through a large mapping does not grow the resident set. */
void uq_release_pages(const void *p, size_t n);
/* Removes a folder and everything in it (no symlink following). */
uq_status uq_remove_tree(const char *path);

#endif
