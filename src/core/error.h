/* Internal error reporting: set the thread's message and return the status. */
#ifndef UQ_CORE_ERROR_H
#define UQ_CORE_ERROR_H

#include "uquant.h"

#if defined(__GNUC__)
#define UQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define UQ_PRINTF(a, b)
#endif

/* Records "message" as this thread's last error and returns s. */
uq_status uq_fail(uq_status s, const char *fmt, ...) UQ_PRINTF(2, 3);
/* Prefixes the current message with "prefix: " (for adding context). */
uq_status uq_fail_context(uq_status s, const char *fmt, ...) UQ_PRINTF(2, 3);
void uq_clear_error(void);

#endif
