/* waiter.c -- see waiter.h. */
#include "waiter.h"

int srv_waiter_start(srv_waiter *w, void *(*run)(void *), void *arg)
{
    pthread_condattr_t attr;
    int rc;

    if (pthread_condattr_init(&attr) != 0)
        return -1;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -1;
    w->stopping = 0;
    if (pthread_create(&w->thread, NULL, run, arg) != 0) {
        pthread_cond_destroy(&w->wake);
        return -1;
    }
    w->running = 1;
    return 0;
}

void srv_waiter_stop(srv_waiter *w)
{
    if (!w->running)
        return;
    pthread_mutex_lock(w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->wake);
    w->running = 0;
    w->stopping = 0;
}

struct timespec srv_waiter_deadline(uint64_t ns)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_nsec += (long)(ns % 1000000000u);
    t.tv_sec += (time_t)(ns / 1000000000u) + t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}
