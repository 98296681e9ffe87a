/* signals.c -- waits for the shutdown signals and for the drain that
 * follows them. */
#include <signal.h>
#include <stddef.h>
#include <time.h>

#include "http.h"
#include "signals.h"

static void signals_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

void srv_signals_block(void)
{
    struct sigaction ign;
    sigset_t set;

    signals_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    ign.sa_handler = SIG_IGN;
    ign.sa_flags = 0;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
}

int srv_signals_wait(void)
{
    sigset_t set;
    int sig = 0;

    signals_set(&set);
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}

long srv_signals_wait_idle(unsigned grace)
{
    const struct timespec tick = {0, 10 * 1000 * 1000};
    struct timespec now, end;
    sigset_t set;
    long n;

    signals_set(&set);
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)grace;
    while ((n = srv_http_busy()) > 0) {
        if (sigtimedwait(&set, NULL, &tick) > 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec ||
            (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
            break;
    }
    return n;
}
