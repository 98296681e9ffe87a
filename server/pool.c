/* pool.c -- worker threads on libuv primitives (uv_thread, uv_mutex,
 * uv_cond) with a bounded FIFO of jobs.  uv_queue_work was not used: its
 * queue is unbounded and its size is a process-wide environment variable,
 * while lossd needs --threads workers and a 503 at --max-queue.
 *
 * Invariants, all under pool.lock:
 *   queued = reserved slots + jobs on the list; queued <= max_queue.
 *   A job leaves the list only in a worker, which then runs it with the
 *   lock released.
 *   busy + borrowed <= nthreads: a worker takes a job only while that
 *   holds (or, once stopping, to drain the list), so the jobs running on
 *   workers and the ones running on borrowers' threads never exceed
 *   --threads together.
 *   stopping is set once; workers exit when it is set and the list is empty,
 *   and no slot can be reserved after it is set. */
#include <stdlib.h>
#include <uv.h>

#include "pool.h"

static struct {
    uv_mutex_t lock;
    uv_cond_t ready; /* signalled when a job is queued or stopping */
    srv_job *head, *tail;
    unsigned queued, max_queue;
    unsigned busy;     /* workers running a job */
    unsigned borrowed; /* idle workers lent to srv_pool_borrow callers */
    int stopping;
    uv_thread_t *threads;
    unsigned nthreads;
} pool;

/* Takes the next job, waiting for one; NULL when the pool stops.  done
 * says the calling worker has finished its previous job. */
static srv_job *pool_take(int done)
{
    srv_job *job;

    uv_mutex_lock(&pool.lock);
    if (done)
        pool.busy--;
    while (!pool.stopping &&
           (pool.head == NULL || pool.busy + pool.borrowed >= pool.nthreads))
        uv_cond_wait(&pool.ready, &pool.lock);
    job = pool.head;
    if (job != NULL) {
        pool.head = job->next;
        if (pool.head == NULL)
            pool.tail = NULL;
        pool.queued--;
        pool.busy++;
    }
    uv_mutex_unlock(&pool.lock);
    return job;
}

static void pool_worker(void *arg)
{
    srv_job *job;
    int done = 0;

    (void)arg;
    while ((job = pool_take(done)) != NULL) {
        job->run(job); /* job is not touched after run */
        done = 1;
    }
}

int srv_pool_start(unsigned threads, unsigned max_queue)
{
    unsigned i;
    int rc;

    if ((rc = uv_mutex_init(&pool.lock)) != 0)
        return rc;
    if ((rc = uv_cond_init(&pool.ready)) != 0)
        return rc;
    pool.max_queue = max_queue;
    pool.threads = calloc(threads, sizeof *pool.threads);
    if (pool.threads == NULL)
        return UV_ENOMEM;
    for (i = 0; i < threads; i++) {
        rc = uv_thread_create(&pool.threads[i], pool_worker, NULL);
        if (rc != 0)
            break;
        pool.nthreads++;
    }
    if (rc != 0)
        srv_pool_stop();
    return rc;
}

int srv_pool_reserve(void)
{
    int rc = -1;

    uv_mutex_lock(&pool.lock);
    if (!pool.stopping && pool.queued < pool.max_queue) {
        pool.queued++;
        rc = 0;
    }
    uv_mutex_unlock(&pool.lock);
    return rc;
}

int srv_pool_borrow(void)
{
    int rc = -1;

    uv_mutex_lock(&pool.lock);
    if (!pool.stopping && pool.queued == 0 &&
        pool.busy + pool.borrowed < pool.nthreads) {
        pool.borrowed++;
        rc = 0;
    }
    uv_mutex_unlock(&pool.lock);
    return rc;
}

void srv_pool_return(void)
{
    uv_mutex_lock(&pool.lock);
    pool.borrowed--;
    if (pool.head != NULL)
        uv_cond_signal(&pool.ready);
    uv_mutex_unlock(&pool.lock);
}

void srv_pool_submit(srv_job *job)
{
    job->next = NULL;
    uv_mutex_lock(&pool.lock);
    if (pool.tail != NULL)
        pool.tail->next = job;
    else
        pool.head = job;
    pool.tail = job;
    uv_cond_signal(&pool.ready);
    uv_mutex_unlock(&pool.lock);
}

int srv_pool_full(void)
{
    int full;

    uv_mutex_lock(&pool.lock);
    full = pool.stopping || pool.queued >= pool.max_queue;
    uv_mutex_unlock(&pool.lock);
    return full;
}

unsigned srv_pool_depth(void)
{
    unsigned n;

    uv_mutex_lock(&pool.lock);
    n = pool.queued;
    uv_mutex_unlock(&pool.lock);
    return n;
}

unsigned srv_pool_busy(void)
{
    unsigned n;

    uv_mutex_lock(&pool.lock);
    n = pool.busy + pool.borrowed;
    uv_mutex_unlock(&pool.lock);
    return n;
}

void srv_pool_stop(void)
{
    unsigned i;

    uv_mutex_lock(&pool.lock);
    pool.stopping = 1;
    uv_cond_broadcast(&pool.ready);
    uv_mutex_unlock(&pool.lock);
    for (i = 0; i < pool.nthreads; i++)
        uv_thread_join(&pool.threads[i]);
    free(pool.threads);
    pool.threads = NULL;
    pool.nthreads = 0;
    uv_cond_destroy(&pool.ready);
    uv_mutex_destroy(&pool.lock);
}
