/* watch.c -- the request-head deadline of watch.h.
 *
 * Each open connection has an entry in one list, under one mutex, holding
 * its socket and its deadline (0 while a request is in progress).  The
 * reaper walks the list a few times per timeout and shuts down the socket
 * of every entry past its deadline; libmicrohttpd then reads the end of
 * the stream and closes the connection itself.
 *
 * Why shutdown() from another thread is safe: libmicrohttpd calls the
 * CLOSED notification before it closes the socket, and the entry leaves
 * the list there, under the same mutex the reaper holds while it calls
 * shutdown().  So the reaper only ever shuts down a socket that is still
 * the connection's, never a number the kernel has since given to another
 * connection. */
#include "watch.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <uv.h>

#include "metrics.h"
#include "waiter.h"

typedef struct entry {
    struct entry *prev, *next;
    int fd;
    _Atomic uint64_t deadline; /* uv_hrtime ns; 0 while a request runs */
} entry;

static struct {
    uint64_t timeout_ns; /* 0: the watch is off */
    pthread_mutex_t lock;
    entry *head;
    srv_waiter reaper;
} w = {.lock = PTHREAD_MUTEX_INITIALIZER, .reaper = {.lock = &w.lock}};

static entry *entry_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci != NULL ? ci->socket_context : NULL;
}

static void entry_open(struct MHD_Connection *conn, void **socket_context)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    entry *e = calloc(1, sizeof *e);

    /* No watch, out of memory or no socket: that connection is under
     * libmicrohttpd's idle timeout alone. */
    if (w.timeout_ns == 0 || e == NULL || ci == NULL) {
        free(e);
        return;
    }
    e->fd = ci->connect_fd;
    atomic_store(&e->deadline, uv_hrtime() + w.timeout_ns);
    pthread_mutex_lock(&w.lock);
    e->next = w.head;
    if (w.head != NULL)
        w.head->prev = e;
    w.head = e;
    pthread_mutex_unlock(&w.lock);
    *socket_context = e;
}

static void entry_close(void **socket_context)
{
    entry *e = *socket_context;

    if (e == NULL)
        return;
    pthread_mutex_lock(&w.lock);
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        w.head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    pthread_mutex_unlock(&w.lock);
    free(e);
    *socket_context = NULL;
}

void srv_watch_notify(void *cls, struct MHD_Connection *conn,
                      void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        entry_open(conn, socket_context);
    else
        entry_close(socket_context);
}

void srv_watch_busy(struct MHD_Connection *conn)
{
    entry *e = w.timeout_ns ? entry_of(conn) : NULL;

    if (e != NULL)
        atomic_store(&e->deadline, 0);
}

void srv_watch_idle(struct MHD_Connection *conn)
{
    entry *e = w.timeout_ns ? entry_of(conn) : NULL;

    if (e != NULL)
        atomic_store(&e->deadline, uv_hrtime() + w.timeout_ns);
}

/* One pass: every socket past its deadline is shut down, once, and
 * counted as a timeout. */
static void reap(uint64_t now)
{
    entry *e;
    uint64_t d;

    for (e = w.head; e != NULL; e = e->next) {
        d = atomic_load(&e->deadline);
        if (d == 0 || now < d)
            continue;
        atomic_store(&e->deadline, 0);
        shutdown(e->fd, SHUT_RDWR);
        srv_metrics_rejected("timeout");
    }
}

/* The period: a quarter of the timeout, within [0.1 s, 1 s]. */
static uint64_t period_ns(void)
{
    uint64_t p = w.timeout_ns / 4;

    return p < 100000000u ? 100000000u : p > 1000000000u ? 1000000000u : p;
}

static void *reaper_main(void *arg)
{
    struct timespec at;
    uint64_t p = period_ns();

    (void)arg;
    pthread_mutex_lock(&w.lock);
    while (!w.reaper.stopping) {
        at = srv_waiter_deadline(p);
        pthread_cond_timedwait(&w.reaper.wake, &w.lock, &at);
        if (!w.reaper.stopping)
            reap(uv_hrtime());
    }
    pthread_mutex_unlock(&w.lock);
    return NULL;
}

int srv_watch_start(unsigned timeout_s)
{
    w.timeout_ns = (uint64_t)timeout_s * 1000000000u;
    if (timeout_s == 0)
        return 0;
    if (srv_waiter_start(&w.reaper, reaper_main, NULL) != 0) {
        w.timeout_ns = 0;
        return -1;
    }
    return 0;
}

void srv_watch_stop(void)
{
    srv_waiter_stop(&w.reaper);
    w.timeout_ns = 0;
}
