/* metrics.c -- counts requests by loss and status, bytes in and out, and
 * request durations in fixed buckets, and prints them for Prometheus. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "table.h"

#define MAX_LOSSES 32 /* the losses, the divergences, "other" */
#define STATUS_LO 100
#define STATUS_HI 600

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                 0.025,  0.05,  0.1,    0.25,  0.5,
                                 1.0,    2.5,   5.0,    10.0,  30.0};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

/* Label values: names[0..nnames-1] are the losses, then the divergences'
 * paths ("divergence/samples"); names[nnames] is "other".  Written by
 * srv_metrics_init only. */
static char names[MAX_LOSSES][32];
static size_t nnames;

/* Everything below is guarded by lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long requests[MAX_LOSSES][STATUS_HI - STATUS_LO];
static unsigned long long hist[MAX_LOSSES][NBUCKETS + 1];
static double hist_sum[MAX_LOSSES];
static unsigned long long bytes_in_total, bytes_out_total;
static long in_flight;
#define MAX_REASONS 48
static char reasons[MAX_REASONS][32];
static unsigned long long rejected[MAX_REASONS];
static size_t nreasons;

void srv_metrics_init(void)
{
    size_t i;

    nnames = 0;
    for (i = 0; i < srv_nlosses && nnames < MAX_LOSSES - 1; i++)
        snprintf(names[nnames++], sizeof names[0], "%s", srv_losses[i].name);
    for (i = 0; i < srv_ndivergences && nnames < MAX_LOSSES - 1; i++)
        snprintf(names[nnames++], sizeof names[0], "divergence/%s",
                 srv_divergences[i].name);
    strcpy(names[nnames], "other");
}

static size_t metrics_loss_index(const char *loss)
{
    size_t i;

    for (i = 0; loss != NULL && i < nnames; i++)
        if (strcmp(names[i], loss) == 0)
            return i;
    return nnames;
}

void srv_metrics_request_begin(void)
{
    pthread_mutex_lock(&lock);
    in_flight++;
    pthread_mutex_unlock(&lock);
}

void srv_metrics_request_end(const char *loss, int status, size_t bytes_in,
                             size_t bytes_out, double seconds)
{
    size_t li = metrics_loss_index(loss), b = 0;

    while (b < NBUCKETS && seconds > buckets[b])
        b++;
    pthread_mutex_lock(&lock);
    in_flight--;
    bytes_in_total += bytes_in;
    if (status == 0) {
        /* Dropped before an answer (timeout, client gone): not a request
         * answered, so it is not counted by status or latency. */
        pthread_mutex_unlock(&lock);
        return;
    }
    if (status < STATUS_LO || status >= STATUS_HI)
        status = 500;
    requests[li][status - STATUS_LO]++;
    hist[li][b]++;
    hist_sum[li] += seconds;
    bytes_out_total += bytes_out;
    pthread_mutex_unlock(&lock);
}

/* Caller holds lock.  The slot of reason, added when new; once all but
 * one slot are taken, new reasons share the last one, "other". */
static size_t reason_index(const char *reason)
{
    size_t i, n = strlen(reason);

    if (n == 0 || n >= sizeof reasons[0] ||
        strspn(reason, "abcdefghijklmnopqrstuvwxyz_") != n)
        reason = "other";
    for (i = 0; i < nreasons; i++)
        if (strcmp(reasons[i], reason) == 0)
            return i;
    if (nreasons == MAX_REASONS - 1 && strcmp(reason, "other") != 0)
        return reason_index("other");
    strcpy(reasons[nreasons], reason);
    return nreasons++;
}

void srv_metrics_rejected(const char *reason)
{
    pthread_mutex_lock(&lock);
    rejected[reason_index(reason)]++;
    pthread_mutex_unlock(&lock);
}

long srv_metrics_in_flight(void)
{
    long n;

    pthread_mutex_lock(&lock);
    n = in_flight;
    pthread_mutex_unlock(&lock);
    return n;
}

/* A growing text buffer; on allocation failure it is freed and stays
 * NULL, and further appends do nothing. */
typedef struct text {
    char *buf;
    size_t len, cap;
} text;

static void text_printf(text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void text_printf(text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->buf == NULL)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < t->cap - t->len)
            break;
        char *grown = realloc(t->buf, t->cap * 2 + (size_t)n);
        if (grown == NULL) {
            free(t->buf);
            t->buf = NULL;
            return;
        }
        t->buf = grown;
        t->cap = t->cap * 2 + (size_t)n;
    }
    t->len += (size_t)n;
}

/* Caller holds lock. */
static void render_requests(text *t)
{
    size_t li;
    int s;

    text_printf(t, "# HELP lossd_requests_total Requests answered, by loss "
                   "and HTTP status.\n# TYPE lossd_requests_total counter\n");
    for (li = 0; li <= nnames; li++)
        for (s = 0; s < STATUS_HI - STATUS_LO; s++)
            if (requests[li][s] != 0)
                text_printf(t,
                            "lossd_requests_total{loss=\"%s\",status=\"%d\"} "
                            "%llu\n",
                            names[li], s + STATUS_LO, requests[li][s]);
}

/* Caller holds lock. */
static void render_rejected(text *t)
{
    size_t i;

    text_printf(t, "# HELP lossd_rejected_total Requests refused (4xx, 5xx) "
                   "or dropped, by error code.\n"
                   "# TYPE lossd_rejected_total counter\n");
    for (i = 0; i < nreasons; i++)
        text_printf(t, "lossd_rejected_total{reason=\"%s\"} %llu\n", reasons[i],
                    rejected[i]);
}

/* Caller holds lock.  Losses that have seen no request are left out. */
static void render_histogram(text *t)
{
    size_t li, b;

    text_printf(t, "# HELP lossd_request_duration_seconds Time from request "
                   "headers to response, by loss.\n"
                   "# TYPE lossd_request_duration_seconds histogram\n");
    for (li = 0; li <= nnames; li++) {
        unsigned long long cum = 0;
        for (b = 0; b <= NBUCKETS; b++)
            cum += hist[li][b];
        if (cum == 0)
            continue;
        cum = 0;
        for (b = 0; b < NBUCKETS; b++) {
            cum += hist[li][b];
            text_printf(t,
                        "lossd_request_duration_seconds_bucket{loss=\"%s\","
                        "le=\"%g\"} %llu\n",
                        names[li], buckets[b], cum);
        }
        cum += hist[li][NBUCKETS];
        text_printf(t,
                    "lossd_request_duration_seconds_bucket{loss=\"%s\","
                    "le=\"+Inf\"} %llu\n"
                    "lossd_request_duration_seconds_sum{loss=\"%s\"} %.9g\n"
                    "lossd_request_duration_seconds_count{loss=\"%s\"} %llu\n",
                    names[li], cum, names[li], hist_sum[li], names[li], cum);
    }
}

/* Caller holds lock. */
static void render_gauges(text *t, unsigned queue_depth)
{
    text_printf(t,
                "# HELP lossd_in_flight Requests being received, computed "
                "or answered.\n# TYPE lossd_in_flight gauge\n"
                "lossd_in_flight %ld\n"
                "# HELP lossd_queue_depth Requests waiting for a worker.\n"
                "# TYPE lossd_queue_depth gauge\nlossd_queue_depth %u\n"
                "# HELP lossd_bytes_received_total Request body bytes.\n"
                "# TYPE lossd_bytes_received_total counter\n"
                "lossd_bytes_received_total %llu\n"
                "# HELP lossd_bytes_sent_total Response body bytes.\n"
                "# TYPE lossd_bytes_sent_total counter\n"
                "lossd_bytes_sent_total %llu\n",
                in_flight, queue_depth, bytes_in_total, bytes_out_total);
}

char *srv_metrics_render(unsigned queue_depth, unsigned workers_busy,
                         size_t body_bytes, size_t *len)
{
    text t = {malloc(8192), 0, 8192};

    pthread_mutex_lock(&lock);
    render_requests(&t);
    render_histogram(&t);
    render_rejected(&t);
    render_gauges(&t, queue_depth);
    text_printf(&t,
                "# HELP lossd_workers_busy Workers computing a request.\n"
                "# TYPE lossd_workers_busy gauge\nlossd_workers_busy %u\n"
                "# HELP lossd_body_bytes_held Bytes of request bodies held "
                "against --max-body-total.\n"
                "# TYPE lossd_body_bytes_held gauge\n"
                "lossd_body_bytes_held %zu\n",
                workers_busy, body_bytes);
    pthread_mutex_unlock(&lock);
    *len = t.len;
    return t.buf;
}
