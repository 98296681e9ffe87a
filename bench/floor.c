/* floor.c -- the HTTP floor of the benchmark: a libmicrohttpd server with
 * lossd's threading (an internal polling thread per core, up to four, on
 * epoll, with suspend/resume enabled) that reads every request body and
 * answers each POST with the same small JSON object.  No request can be
 * served faster through libmicrohttpd on this machine, so lossd's
 * throughput is reported as a fraction of this one's.
 *
 * With --path, the floor also runs lossd's request path on each body:
 * the body is gathered into one buffer (lossd too reads it into one), and
 * the answer is srv_loss_run's for the loss the URL names (/loss/<name>):
 * parse, compute and encode, without lossd's own HTTP layer (routing,
 * admission, the worker pool, timing headers, metrics and the access
 * log).  Its throughput against the plain floor's is what the request path
 * alone costs; lossd's against it is what lossd's HTTP layer costs.
 *
 * With --time (which implies --path), the floor also times each call of
 * srv_loss_run on its thread's CPU clock, and prints at exit, for each
 * loss, the mean of that time and of the parse, compute and encode times
 * the reply carries: what the request path costs inside a server, to set
 * against its cost in a loop (handler_bench).  The clock is a system call;
 * its cost, printed too, is about once in each figure.
 *
 * Usage: floor --port N [--threads T] [--path] [--time]
 * (runs until SIGTERM or SIGINT) */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "arena.h"
#include "handler.h"
#include "json_out.h"

static const char reply_body[] =
    "{\"loss\": 0.5, \"per_sample\": [0.5], \"metrics\": {\"accuracy\": 1}}";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* The body is consumed in place and never copied; the answer is sent once
 * libmicrohttpd has delivered all of it (the call with no data). */
static enum MHD_Result floor_access(void *cls, struct MHD_Connection *conn,
                                    const char *url, const char *method,
                                    const char *version,
                                    const char *upload_data,
                                    size_t *upload_data_size, void **con_cls)
{
    static int first_call;
    struct MHD_Response *r;
    enum MHD_Result ret;

    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = &first_call;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    r = MHD_create_response_from_buffer(
        sizeof reply_body - 1, (void *)reply_body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* --time: the totals of one loss's calls. */
typedef struct path_time {
    char loss[32];
    unsigned long long calls;
    double cpu_s, parse_s, compute_s, encode_s;
} path_time;

enum { MAX_TIMED = 16 };

static struct {
    int on;
    pthread_mutex_t lock;
    path_time loss[MAX_TIMED];
} timing = {.lock = PTHREAD_MUTEX_INITIALIZER};

static double thread_cpu_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Adds one call to its loss's totals; past MAX_TIMED losses, drops it. */
static void timing_add(const char *loss, double cpu_s, const srv_reply *rep)
{
    path_time *t = timing.loss, *end = timing.loss + MAX_TIMED;

    pthread_mutex_lock(&timing.lock);
    while (t < end && t->calls > 0 &&
           strncmp(t->loss, loss, sizeof t->loss - 1) != 0)
        t++;
    if (t == end) {
        pthread_mutex_unlock(&timing.lock);
        return;
    }
    if (t->calls == 0)
        snprintf(t->loss, sizeof t->loss, "%s", loss);
    t->calls++;
    t->cpu_s += cpu_s;
    t->parse_s += rep->parse_s;
    t->compute_s += rep->compute_s;
    t->encode_s += rep->encode_s;
    pthread_mutex_unlock(&timing.lock);
}

/* One line a loss, in microseconds: "path <loss> calls N cpu_us C
 * parse_us P compute_us U encode_us E clock_us K". */
static void timing_print(void)
{
    double k = thread_cpu_s(), clock_s;
    const path_time *t;
    int i;

    for (i = 0; i < 999; i++)
        (void)thread_cpu_s();
    clock_s = (thread_cpu_s() - k) / 1000;
    for (t = timing.loss; t < timing.loss + MAX_TIMED && t->calls > 0; t++)
        fprintf(stderr,
                "path %s calls %llu cpu_us %.2f parse_us %.2f compute_us %.2f "
                "encode_us %.2f clock_us %.2f\n",
                t->loss, t->calls, t->cpu_s * 1e6 / (double)t->calls,
                t->parse_s * 1e6 / (double)t->calls,
                t->compute_s * 1e6 / (double)t->calls,
                t->encode_s * 1e6 / (double)t->calls, clock_s * 1e6);
}

/* Answers with srv_loss_run's reply once the whole body is in. */
static enum MHD_Result path_access(void *cls, struct MHD_Connection *conn,
                                   const char *url, const char *method,
                                   const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    srv_buf *g = *con_cls; /* the body, gathered */
    const char *loss = strncmp(url, "/loss/", 6) == 0 ? url + 6 : url;
    struct MHD_Response *r;
    enum MHD_Result ret;
    srv_reply rep;
    double t0 = 0;

    (void)cls;
    (void)method;
    (void)version;
    if (g == NULL) /* zeroed: an empty srv_buf, grown by srv_buf_put */
        return (*con_cls = calloc(1, sizeof *g)) != NULL ? MHD_YES : MHD_NO;
    if (*upload_data_size > 0) {
        srv_buf_put(g, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return g->oom ? MHD_NO : MHD_YES;
    }
    memset(&rep, 0, sizeof rep);
    if (timing.on)
        t0 = thread_cpu_s();
    srv_loss_run(loss, g->p, g->len, &rep);
    if (timing.on)
        timing_add(loss, thread_cpu_s() - t0, &rep);
    r = MHD_create_response_from_buffer(rep.len, rep.body,
                                        MHD_RESPMEM_MUST_COPY);
    srv_reply_cleanup(&rep);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    ret = MHD_queue_response(conn, (unsigned)rep.status, r);
    MHD_destroy_response(r);
    return ret;
}

static void path_completed(void *cls, struct MHD_Connection *conn,
                           void **con_cls, enum MHD_RequestTerminationCode t)
{
    srv_buf *g = *con_cls;

    (void)cls;
    (void)conn;
    (void)t;
    if (g != NULL)
        srv_buf_free(g);
    free(g);
    *con_cls = NULL;
}

/* lossd's choice: one polling thread per available core, 1 to 4. */
static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1u : n > 4 ? 4u : (unsigned)n;
}

static int parse_args(int argc, char **argv, unsigned *port, unsigned *threads,
                      int *path)
{
    int i;

    for (i = 1; i < argc; i++) {
        unsigned long v = i + 1 < argc ? strtoul(argv[i + 1], NULL, 10) : 0;
        if (strcmp(argv[i], "--path") == 0 || strcmp(argv[i], "--time") == 0) {
            *path = 1;
            timing.on |= strcmp(argv[i], "--time") == 0;
            continue;
        }
        if (strcmp(argv[i], "--port") == 0 && v > 0 && v < 65536)
            *port = (unsigned)v;
        else if (strcmp(argv[i], "--threads") == 0 && v > 0 && v <= 64)
            *threads = (unsigned)v;
        else
            return -1;
        i++;
    }
    return *port != 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    unsigned port = 0, threads = default_threads();
    int path = 0;
    struct MHD_Daemon *d;
    struct sigaction sa;

    if (parse_args(argc, argv, &port, &threads, &path) != 0) {
        fprintf(stderr,
                "usage: floor --port N [--threads T] [--path] [--time]\n");
        return 2;
    }
    if (path)
        srv_memory_init(); /* large blocks mapped, as in lossd */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, path ? path_access : floor_access,
        NULL, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_NOTIFY_COMPLETED,
        path ? path_completed : NULL, NULL, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "floor: cannot listen on port %u\n", port);
        return 1;
    }
    while (!stop_flag)
        pause();
    MHD_stop_daemon(d);
    if (timing.on)
        timing_print();
    return 0;
}
