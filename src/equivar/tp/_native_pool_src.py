"""C source of the persistent worker pool shared by equivar's native CPU kernels (``run_pool``).

Plain C99 + pthreads, pasted into each kernel library's source after its ``#include <pthread.h>`` (every
library gets its own pool). Workers start on first use, are detached, and sleep on a condition variable
between calls. A call publishes ``nt`` argument slots; slot 0 runs on the caller, the others on workers
that wake up in time. When the caller is done with its own slot it closes the call: a worker still asleep
(descheduled on a busy machine) is not waited for, and the caller runs the slots nobody took itself. So a
slot's result must not depend on which thread runs it (a fixed range per slot, or a shared counter of
blocks). Concurrent callers (another Python thread) run all their slots themselves.
"""

POOL_SOURCE = r"""
/* A persistent pool of worker threads (started on first use, detached, asleep between calls); see the module
   docstring. With a dynamic split (a shared block counter) the caller has taken every block by the time it runs
   the slots nobody took; with a static split each slot keeps its fixed range and partial sum, so results do not
   depend on who ran it. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    int workers, open, next, nt, active, busy, atfork;
    unsigned long gen;
    void *(*fn)(void *);
    char *args;
    size_t size;
} pool_t;

static pool_t pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
                      0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, 0};

static void *pool_worker(void *unused) {
    (void)unused;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!(pool.open && pool.gen != seen && pool.next < pool.nt)) pthread_cond_wait(&pool.wake, &pool.mu);
        seen = pool.gen; /* one slot per worker and call */
        int slot = pool.next++;
        pool.active++;
        void *(*fn)(void *) = pool.fn;
        void *arg = pool.args + (size_t)slot * pool.size;
        pthread_mutex_unlock(&pool.mu);
        fn(arg);
        pthread_mutex_lock(&pool.mu);
        if (--pool.active == 0) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

static void pool_after_fork_child(void) { /* the child has no workers; start afresh */
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.workers = pool.open = pool.next = pool.nt = pool.active = pool.busy = 0;
}

static void pool_grow(int n) { /* with pool.mu held */
    if (!pool.atfork) pool.atfork = pthread_atfork(NULL, NULL, pool_after_fork_child) == 0 ? 1 : -1;
    while (pool.workers < n) {
        pthread_t th;
        pthread_attr_t at;
        if (pthread_attr_init(&at) != 0) return;
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int ok = pthread_create(&th, &at, pool_worker, NULL) == 0;
        pthread_attr_destroy(&at);
        if (!ok) return; /* fewer workers: the caller runs the remaining slots */
        pool.workers++;
    }
}

/* Run fn on nt argument slots of `size` bytes at `args` (slot 0 on the caller). */
static void run_pool(char *args, size_t size, int nt, void *(*fn)(void *)) {
    int shared_pool = 0, first_free = 1;
    if (nt > 1) {
        pthread_mutex_lock(&pool.mu);
        if (!pool.busy) {
            shared_pool = pool.busy = 1;
            pool_grow(nt - 1);
            pool.fn = fn; pool.args = args; pool.size = size; pool.nt = nt; pool.next = 1;
            pool.gen++;
            pool.open = 1;
            pthread_cond_broadcast(&pool.wake);
        }
        pthread_mutex_unlock(&pool.mu);
    }
    fn(args);
    if (shared_pool) {
        pthread_mutex_lock(&pool.mu);
        pool.open = 0; /* workers not awake yet stay out of this call */
        first_free = pool.next;
        while (pool.active > 0) pthread_cond_wait(&pool.done, &pool.mu);
        pool.busy = 0;
        pthread_mutex_unlock(&pool.mu);
    }
    for (int t = first_free; t < nt; ++t) fn(args + (size_t)t * size);
}
"""
