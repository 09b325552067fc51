#include "core/threadpool.h"

#include "core/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct uq_pool {
    int n;                  /* threads including the caller */
    pthread_t *workers;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    uint64_t generation;    /* bumped per run */
    int stop;
    int active;             /* workers still busy in this run */
    uq_task_fn fn;
    void *arg;
    int64_t n_tasks;
    atomic_llong next;
};

int uq_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

static void drain(uq_pool *p, int thread)
{
    for (;;) {
        int64_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_tasks) break;
        p->fn(p->arg, i, thread);
    }
}

typedef struct worker_arg {
    uq_pool *p;
    int index;
} worker_arg;

static void *worker_main(void *v)
{
    worker_arg *wa = v;
    uq_pool *p = wa->p;
    int index = wa->index;
    free(wa);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        drain(p, index);
        pthread_mutex_lock(&p->lock);
        if (--p->active == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

uq_status uq_pool_create(int n_threads, uq_pool **out)
{
    *out = NULL;
    if (n_threads <= 0) n_threads = uq_cpu_count();
    uq_pool *p = calloc(1, sizeof *p);
    if (!p) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    p->n = n_threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->workers) {
        free(p);
        return uq_fail(UQ_ERR_NOMEM, "out of memory");
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || (wa->p = p, wa->index = i, pthread_create(&p->workers[i], NULL, worker_main, wa) != 0)) {
            free(wa);
            p->n = i;
            uq_pool_free(p);
            return uq_fail(UQ_ERR_NOMEM, "cannot start thread %d", i);
        }
    }
    *out = p;
    return UQ_OK;
}

void uq_pool_free(uq_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n; i++) pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->workers);
    free(p);
}

int uq_pool_threads(const uq_pool *p) { return p ? p->n : 1; }

void uq_pool_run(uq_pool *p, int64_t n_tasks, uq_task_fn fn, void *arg)
{
    if (n_tasks <= 0) return;
    if (!p || p->n == 1 || n_tasks == 1) {
        for (int64_t i = 0; i < n_tasks; i++) fn(arg, i, 0);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    p->active = p->n - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    drain(p, 0);
    pthread_mutex_lock(&p->lock);
    while (p->active > 0) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}
