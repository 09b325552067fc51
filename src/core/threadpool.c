/* Persistent thread pool. A decode step runs dozens of small parallel
 * operations, so handing out work must cost far less than a condition
 * variable's wake-up: idle workers spin on a generation counter for a while
 * (about a millisecond) before they sleep, and the caller works too.
 *
 * When the machine has more runnable threads than cores (another program
 * busy), a worker can lose its core in the middle of a task and the caller
 * then waits for the scheduler, milliseconds per run, dozens of runs per
 * token. The caller notices such a wait (far longer than its own tasks took)
 * and runs the next SOLO_RUNS runs alone before trying the workers again:
 * results do not depend on which thread runs a task. */
#include "core/threadpool.h"

#include "core/clock.h"
#include "core/error.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

enum { SPIN_LIMIT = 1 << 14, SOLO_RUNS = 256 };

struct uq_pool {
    int n;                       /* threads including the caller */
    pthread_t *workers;
    pthread_mutex_t lock;        /* guards sleepers and the sleeping */
    pthread_cond_t wake;
    int sleepers;
    int solo_left;               /* runs the caller still does alone (caller only) */
    /* Each hot atomic on its own cache line: workers take tasks from `next`
     * while the caller polls `active` and idle workers poll `generation`,
     * and sharing one line would move it between cores at every access. */
    _Alignas(64) atomic_uint_fast64_t generation; /* bumped per run (release) */
    atomic_int stop;
    uq_task_fn fn;               /* written before generation is bumped */
    void *arg;
    int64_t n_tasks;
    _Alignas(64) atomic_int active; /* workers still busy in this run */
    _Alignas(64) atomic_llong next;
    char pad[64 - sizeof(atomic_llong)];
};

int uq_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

/* Runs tasks until none is left; returns how many this thread ran. */
static int64_t drain(uq_pool *p, int thread)
{
    int64_t ran = 0;
    for (;; ran++) {
        int64_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= p->n_tasks) break;
        p->fn(p->arg, i, thread);
    }
    return ran;
}



typedef struct worker_arg {
    uq_pool *p;
    int index;
} worker_arg;

/* Waits until the generation moves past `seen` (or stop); returns the new one. */
static uint64_t wait_for_work(uq_pool *p, uint64_t seen)
{
    int spins = 0;
    for (;;) {
        uint64_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen || atomic_load_explicit(&p->stop, memory_order_acquire)) return g;
        if (++spins < SPIN_LIMIT) {
            cpu_relax();
            continue;
        }
        pthread_mutex_lock(&p->lock);
        p->sleepers++;
        while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_acquire))
            pthread_cond_wait(&p->wake, &p->lock);
        p->sleepers--;
        pthread_mutex_unlock(&p->lock);
        spins = 0;
    }
}

static void *worker_main(void *v)
{
    worker_arg *wa = v;
    uq_pool *p = wa->p;
    int index = wa->index;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        seen = wait_for_work(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        drain(p, index);
        atomic_fetch_sub_explicit(&p->active, 1, memory_order_release);
    }
    return NULL;
}

uq_status uq_pool_create(int n_threads, uq_pool **out)
{
    *out = NULL;
    if (n_threads <= 0) n_threads = uq_cpu_count();
    uq_pool *p = aligned_alloc(_Alignof(uq_pool), sizeof *p); /* its atomics sit on their own lines */
    if (!p) return uq_fail(UQ_ERR_NOMEM, "out of memory");
    memset(p, 0, sizeof *p);
    p->n = n_threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->active, 0);
    atomic_init(&p->stop, 0);
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
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n; i++) pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->workers);
    free(p);
}

int uq_pool_threads(const uq_pool *p) { return p ? p->n : 1; }

void uq_pool_run(uq_pool *p, int64_t n_tasks, uq_task_fn fn, void *arg)
{
    if (n_tasks <= 0) return;
    if (!p || p->n == 1 || n_tasks == 1 || (p->solo_left > 0 && p->solo_left--)) {
        for (int64_t i = 0; i < n_tasks; i++) fn(arg, i, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->active, p->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_mutex_lock(&p->lock);
    if (p->sleepers) pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    const double t0 = uq_seconds();
    const int64_t mine = drain(p, 0);
    const double t1 = uq_seconds();
    int spins = 0;
    while (atomic_load_explicit(&p->active, memory_order_acquire) > 0) {
        if (++spins < SPIN_LIMIT) cpu_relax();
        else sched_yield();
    }
    if (spins >= SPIN_LIMIT / 4 && mine > 0) {
        /* more than a millisecond waited, and more than 8 of the caller's
         * own tasks would have taken: a worker is off its core */
        const double waited = uq_seconds() - t1;
        if (waited > 1e-3 && waited > 8 * (t1 - t0) / (double)mine) p->solo_left = SOLO_RUNS;
    }
}
