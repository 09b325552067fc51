/* A monotonic clock in seconds, for timings and reports. */
#ifndef UQ_CORE_CLOCK_H
#define UQ_CORE_CLOCK_H

#include <time.h>

static inline double uq_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#endif
