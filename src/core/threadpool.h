/* A small persistent thread pool: run n independent tasks over the workers
 * and the calling thread. Which thread runs a task varies, so tasks must not
 * share outputs; results then never depend on the thread count. */
#ifndef UQ_CORE_THREADPOOL_H
#define UQ_CORE_THREADPOOL_H

#include "uquant.h"

typedef struct uq_pool uq_pool;
typedef void (*uq_task_fn)(void *arg, int64_t task, int thread);

/* n_threads <= 0: one per online CPU. */
uq_status uq_pool_create(int n_threads, uq_pool **out);
void uq_pool_free(uq_pool *p);
int uq_pool_threads(const uq_pool *p);
/* Runs fn(arg, i, thread) for i in [0, n_tasks); returns when all are done.
 * thread is in [0, uq_pool_threads) (for per-thread scratch). */
void uq_pool_run(uq_pool *p, int64_t n_tasks, uq_task_fn fn, void *arg);
/* Online CPUs. */
int uq_cpu_count(void);

#endif
