/* waiter.h -- one background thread that sleeps on a condition variable
 * of the monotonic clock (so that setting the wall clock moves none of its
 * deadlines) until its owner stops it: the log's batch writer and the
 * request-head watch.  The owner keeps the mutex; the thread's loop, and
 * every change to what it waits for, run under it. */
#ifndef SRV_WAITER_H
#define SRV_WAITER_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

typedef struct srv_waiter {
    pthread_mutex_t *lock; /* the owner's */
    pthread_cond_t wake;
    pthread_t thread;
    int running;  /* started and not yet stopped */
    int stopping; /* set under lock by srv_waiter_stop */
} srv_waiter;

/* Starts run(arg) on a new thread, with w->wake ready; w->lock must be
 * set.  0, or -1 (and nothing started). */
int srv_waiter_start(srv_waiter *w, void *(*run)(void *), void *arg);

/* Sets stopping and wakes the thread, then joins it.  Does nothing when
 * it is not running. */
void srv_waiter_stop(srv_waiter *w);

/* The time ns nanoseconds from now on w->wake's clock, for
 * pthread_cond_timedwait. */
struct timespec srv_waiter_deadline(uint64_t ns);

#endif
