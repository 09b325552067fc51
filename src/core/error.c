#include "core/error.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

static const char *const status_names[UQ_STATUS_COUNT] = {
    [UQ_OK] = "UQ_OK",
    [UQ_ERR_IO] = "UQ_ERR_IO",
    [UQ_ERR_NOMEM] = "UQ_ERR_NOMEM",
    [UQ_ERR_ARG] = "UQ_ERR_ARG",
    [UQ_ERR_TRUNCATED] = "UQ_ERR_TRUNCATED",
    [UQ_ERR_JSON] = "UQ_ERR_JSON",
    [UQ_ERR_FIELD] = "UQ_ERR_FIELD",
    [UQ_ERR_DTYPE] = "UQ_ERR_DTYPE",
    [UQ_ERR_SHAPE] = "UQ_ERR_SHAPE",
    [UQ_ERR_OFFSETS] = "UQ_ERR_OFFSETS",
    [UQ_ERR_DUPLICATE] = "UQ_ERR_DUPLICATE",
    [UQ_ERR_PATH] = "UQ_ERR_PATH",
    [UQ_ERR_MISSING] = "UQ_ERR_MISSING",
    [UQ_ERR_UNSUPPORTED] = "UQ_ERR_UNSUPPORTED",
    [UQ_ERR_EXISTS] = "UQ_ERR_EXISTS",
    [UQ_ERR_NONFINITE] = "UQ_ERR_NONFINITE",
    [UQ_ERR_CONFIG] = "UQ_ERR_CONFIG",
    [UQ_ERR_STATE] = "UQ_ERR_STATE",
    [UQ_ERR_CANCELLED] = "UQ_ERR_CANCELLED",
};

static const char *const status_strings[UQ_STATUS_COUNT] = {
    [UQ_OK] = "success",
    [UQ_ERR_IO] = "input/output error",
    [UQ_ERR_NOMEM] = "out of memory",
    [UQ_ERR_ARG] = "invalid argument",
    [UQ_ERR_TRUNCATED] = "file truncated",
    [UQ_ERR_JSON] = "malformed JSON",
    [UQ_ERR_FIELD] = "missing or ill-typed field",
    [UQ_ERR_DTYPE] = "unknown or unsupported dtype",
    [UQ_ERR_SHAPE] = "invalid shape",
    [UQ_ERR_OFFSETS] = "invalid data offsets",
    [UQ_ERR_DUPLICATE] = "duplicate name",
    [UQ_ERR_PATH] = "path outside the model folder",
    [UQ_ERR_MISSING] = "missing file or tensor",
    [UQ_ERR_UNSUPPORTED] = "unsupported",
    [UQ_ERR_EXISTS] = "output already exists",
    [UQ_ERR_NONFINITE] = "non-finite value",
    [UQ_ERR_CONFIG] = "invalid configuration",
    [UQ_ERR_STATE] = "call out of order",
    [UQ_ERR_CANCELLED] = "cancelled",
};

const char *uq_status_name(uq_status s)
{
    if ((unsigned)s >= UQ_STATUS_COUNT) return "UQ_ERR_UNKNOWN";
    return status_names[s];
}

const char *uq_status_string(uq_status s)
{
    if ((unsigned)s >= UQ_STATUS_COUNT) return "unknown status";
    return status_strings[s];
}

const char *uq_last_error(void) { return last_error; }

const char *uq_version(void) { return UQ_VERSION_STRING; }

static volatile sig_atomic_t cancel_flag;

void uq_cancel(void) { cancel_flag = 1; }
void uq_cancel_reset(void) { cancel_flag = 0; }
int uq_cancel_requested(void) { return cancel_flag != 0; }

void uq_clear_error(void) { last_error[0] = '\0'; }

uq_status uq_fail(uq_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

uq_status uq_fail_context(uq_status s, const char *fmt, ...)
{
    char prefix[512], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    snprintf(last_error, sizeof last_error, "%s: %s", prefix, old);
    return s;
}
