/* The thread pool: every task runs exactly once whatever the thread count
 * and task count, thread indices stay within the pool, and a worker that
 * stalls (as when it loses its core on a busy machine) makes the caller run
 * the following runs alone for a while, with the same results. */
#include "testutil.h"

#include "core/threadpool.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct counts {
    atomic_int *hits;   /* per task */
    atomic_int by_thread[8];
    int threads;
    int stall_ms;       /* tasks run by a worker sleep this long */
} counts;

/* Nanoseconds since t0 (CLOCK_MONOTONIC). */
static long long ns_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000000000LL + (t.tv_nsec - t0->tv_nsec);
}

static void count_task(void *arg, int64_t task, int thread)
{
    counts *c = arg;
    assert_true(thread >= 0 && thread < c->threads);
    atomic_fetch_add(&c->hits[task], 1);
    atomic_fetch_add(&c->by_thread[thread], 1);
    if (c->stall_ms && thread != 0) {
        struct timespec ts = {0, (long)c->stall_ms * 1000000L};
        nanosleep(&ts, NULL);
    } else if (c->stall_ms) {
        /* the caller's tasks take 20 us, so a worker has time to join in */
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (ns_since(&t0) < 20000) {
        }
    }
}

static void run_counted(uq_pool *p, int threads, int64_t n, int stall_ms, counts *c)
{
    memset(c->by_thread, 0, sizeof c->by_thread);
    c->threads = threads;
    c->stall_ms = stall_ms;
    for (int64_t i = 0; i < n; i++) atomic_store(&c->hits[i], 0);
    uq_pool_run(p, n, count_task, c);
    for (int64_t i = 0; i < n; i++) assert_int_equal(atomic_load(&c->hits[i]), 1);
}

static void test_every_task_once(void **state)
{
    (void)state;
    counts c;
    c.hits = calloc(4096, sizeof *c.hits);
    assert_non_null(c.hits);
    for (int threads = 1; threads <= 4; threads++) {
        uq_pool *p;
        assert_int_equal(uq_pool_create(threads, &p), UQ_OK);
        assert_int_equal(uq_pool_threads(p), threads);
        static const int64_t ns[] = {1, 2, 3, 7, 64, 4096};
        for (int rep = 0; rep < 20; rep++)
            for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) run_counted(p, threads, ns[k], 0, &c);
        uq_pool_run(p, 0, count_task, &c); /* nothing to do */
        uq_pool_free(p);
    }
    free(c.hits);
}

/* A worker that sleeps 20 ms in its task while the caller's tasks take
 * 20 us: the caller then runs the next runs alone (thread 0 only). */
static void test_stalled_worker(void **state)
{
    (void)state;
    counts c;
    c.hits = calloc(64, sizeof *c.hits);
    assert_non_null(c.hits);
    uq_pool *p;
    assert_int_equal(uq_pool_create(2, &p), UQ_OK);
    int stalled = 0;
    /* a worker slow to start can already send the caller alone for 256 runs,
     * and on a loaded machine again and again: try past them for up to 20 s */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        run_counted(p, 2, 64, 20, &c);
        stalled = atomic_load(&c.by_thread[1]) > 0; /* the worker took a task and slept */
    } while (!stalled && ns_since(&t0) < 20000000000LL);
    assert_true(stalled);
    for (int rep = 0; rep < 10; rep++) {
        run_counted(p, 2, 64, 0, &c);
        assert_int_equal(atomic_load(&c.by_thread[0]), 64);
    }
    uq_pool_free(p);
    free(c.hits);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_once),
        cmocka_unit_test(test_stalled_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
