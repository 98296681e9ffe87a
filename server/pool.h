/* pool.h -- the compute pool: a fixed set of worker threads taking jobs
 * from one bounded FIFO queue.
 *
 * A job is submitted in two steps so that the caller learns "queue full"
 * before it commits to anything (the HTTP layer must suspend its connection
 * before a worker can possibly finish the job and resume it):
 *   if (srv_pool_reserve() != 0)  -> answer 503, nothing else happened
 *   ... prepare, suspend the connection ...
 *   srv_pool_submit(job)          -> cannot fail; job->run runs once
 *
 * Thread-safety: every function except srv_pool_start and srv_pool_stop may
 * be called from any thread at any time in between.  job->run runs on a
 * worker thread; it owns the job until it returns and the pool never
 * touches the job after calling run. */
#ifndef SRV_POOL_H
#define SRV_POOL_H

typedef struct srv_job srv_job;
struct srv_job {
    void (*run)(srv_job *job);
    srv_job *next; /* the pool's link while queued */
};

/* Starts threads workers and sizes the queue for max_queue waiting jobs.
 * 0, or a negative libuv error code. */
int srv_pool_start(unsigned threads, unsigned max_queue);

/* Takes one queue slot: 0, or -1 when max_queue jobs are already waiting
 * or the pool is stopping. */
int srv_pool_reserve(void);

/* Borrows an idle worker for a computation its caller runs on its own
 * thread (a small request, run where it arrived, saves two thread
 * hand-offs): 0 when a worker is idle and no job is waiting -- that worker
 * then takes no job until srv_pool_return -- or -1, and nothing happened.
 * So --threads stays the bound on computations running at once. */
int srv_pool_borrow(void);
/* Gives back the worker of a successful srv_pool_borrow. */
void srv_pool_return(void);
/* Queues job into a slot taken by srv_pool_reserve. */
void srv_pool_submit(srv_job *job);

/* 1 when srv_pool_reserve would fail right now. */
int srv_pool_full(void);

/* Jobs waiting for a worker (reserved slots included). */
unsigned srv_pool_depth(void);

/* Workers running a job, or lent to a borrower, right now. */
unsigned srv_pool_busy(void);

/* Lets the workers finish every queued job, then joins them. */
void srv_pool_stop(void);

#endif
