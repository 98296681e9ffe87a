/* http.c -- libmicrohttpd glue: the access handler, body accumulation,
 * suspend/resume around the compute pool, responses and their headers, and
 * the per-request log line and metrics.
 *
 * Threading: libmicrohttpd calls http_access and http_completed on its
 * polling threads, never twice at once for one connection.  A request
 * belongs to the HTTP thread except between srv_pool_submit and
 * MHD_resume_connection, when it belongs to one worker, which touches only
 * the body, the parsed request, the reply and the timestamps, and nothing
 * after the resume.
 * While suspended, libmicrohttpd does not call back for the connection.
 * A small request is computed on the HTTP thread itself, in place of an
 * idle worker it borrows from the pool (http_run_inline). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>
#include <uv.h>

#include "arena.h"
#include "auth.h"
#include "handler.h"
#include "http.h"
#include "json_out.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "route.h"
#include "v2.h"
#include "watch.h"

typedef enum req_state {
    REQ_ANSWERED,  /* a response is queued; any further body is discarded */
    REQ_DEFERRED,  /* answer holds the response to send once the request
                      has been read (no body, a body over --max-body, or
                      one --max-body-total has no room for) */
    REQ_RECEIVING, /* a loss request's body is arriving */
    REQ_COMPUTING, /* suspended; a worker owns the request */
    REQ_COMPUTED   /* resumed; reply holds the answer to send */
} req_state;

typedef struct request {
    srv_job job; /* first member: the pool hands back &job */
    struct MHD_Connection *conn;
    req_state state;
    const char *method, *path; /* libmicrohttpd's, valid until completion */
    const char *loss;          /* a known loss name inside path, or NULL */
    int v2;                    /* an Open Inference Protocol request */
    const char *v2_header;     /* its Inference-Header-Content-Length, or
                                  NULL: libmicrohttpd's, read-only, valid
                                  until completion (the worker reads it) */
    char *body;                /* the one body buffer */
    size_t len, cap;
    size_t expect; /* Content-Length; 0 when chunked */
    uint64_t t_start, t_queued, t_run, t_done; /* uv_hrtime, ns */
    srv_reply reply;                           /* the worker's result */
    srv_parsed parsed; /* parsed here, too costly to compute here */
    int has_parsed;    /* parsed holds a request */
    srv_answer answer; /* REQ_DEFERRED's response */
    int status;        /* 0 until a response is queued */
    int admitted;      /* counted in http.admitted */
    int timed_out;     /* dropped by the --timeout check */
    int busy;          /* answer is body_busy's 503, the body still read */
    size_t held;       /* bytes counted in http.held */
    size_t bytes_out;
} request;

static struct {
    struct MHD_Daemon *daemon;
    const srv_config *cfg; /* read-only while the daemon runs */
    atomic_int draining;
    atomic_long admitted;     /* loss requests past routing, not yet complete */
    atomic_size_t held;       /* bytes of body buffers of admitted requests */
    size_t held_max;          /* --max-body-total, at least --max-body */
    char *tls_cert, *tls_key; /* PEM text, alive as long as the daemon */
    atomic_int running;       /* MHD_start_daemon has returned a daemon */
    pthread_mutex_t error_lock;
    char mhd_error[512]; /* libmicrohttpd's last start-up message */
} http = {.error_lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- responses ---------------------------------------------------------- */

static void reply_free(void *cls)
{
    srv_reply_cleanup(cls);
    free(cls);
}

/* A response that owns the answer's body (no copy); NULL when out of
 * memory, the body released either way. */
static struct MHD_Response *response_new(srv_answer *a)
{
    struct MHD_Response *r = NULL;
    srv_reply *owned;

    if (a->kind == SRV_BODY_STATIC)
        return MHD_create_response_from_buffer(a->len, (void *)a->body,
                                               MHD_RESPMEM_PERSISTENT);
    if (a->kind == SRV_BODY_FREE) {
        r = MHD_create_response_from_buffer_with_free_callback(
            a->len, (void *)a->body, free);
        if (r == NULL)
            srv_answer_cleanup(a);
        return r;
    }
    owned = malloc(sizeof *owned);
    if (owned != NULL) {
        *owned = a->reply;
        r = MHD_create_response_from_buffer_with_free_callback_cls(
            a->len, (void *)a->body, reply_free, owned);
        if (r == NULL)
            reply_free(owned);
        return r;
    }
    r = MHD_create_response_from_buffer(a->len, (void *)a->body,
                                        MHD_RESPMEM_MUST_COPY);
    srv_answer_cleanup(a);
    return r;
}

static void response_headers(struct MHD_Response *r, const srv_answer *a,
                             const char *timing)
{
    char retry[16];

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
    if (a->allow != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, a->allow);
    if (a->www_authenticate != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                a->www_authenticate);
    if (a->retry_after > 0) {
        snprintf(retry, sizeof retry, "%d", a->retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry);
    }
    if (timing != NULL)
        MHD_add_response_header(r, "Server-Timing", timing);
    if (a->kind == SRV_BODY_REPLY && a->reply.header_len > 0) {
        char hl[24];
        snprintf(hl, sizeof hl, "%zu", a->reply.header_len);
        MHD_add_response_header(r, "Inference-Header-Content-Length", hl);
    }
    if (atomic_load(&http.draining))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* Queues the answer (taking its body) and marks the request answered. */
static enum MHD_Result http_answer(request *rq, srv_answer *a,
                                   const char *timing)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    int status = a->status;
    size_t len = a->len;

    rq->state = REQ_ANSWERED;
    if (status >= 400)
        srv_metrics_rejected(a->kind == SRV_BODY_REPLY && a->reply.code
                                 ? a->reply.code
                                 : "other");
    r = response_new(a);
    if (r == NULL)
        return MHD_NO;
    response_headers(r, a, timing);
    ret = MHD_queue_response(rq->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    if (ret == MHD_YES) {
        rq->status = status;
        rq->bytes_out = len;
    }
    return ret;
}

/* Writes "name;dur=<ms with three decimals>" for ns nanoseconds at out
 * (it may store strlen(name) + 5 + SRV_UINT_ROOM bytes); returns the
 * length, the NUL after it.
 * Integers only: printf's %f cost more than the rest of the header. */
static size_t timing_entry(char *out, const char *name, uint64_t ns)
{
    uint64_t us = (ns + 500) / 1000;
    size_t n = strlen(name);

    memcpy(out, name, n);
    memcpy(out + n, ";dur=", 5);
    n += 5;
    n += srv_put_uint(out + n, us / 1000);
    out[n++] = '.';
    out[n++] = (char)('0' + us % 1000 / 100);
    out[n++] = (char)('0' + us % 100 / 10);
    out[n++] = (char)('0' + us % 10);
    out[n] = '\0';
    return n;
}

static uint64_t seconds_ns(double s)
{
    return s > 0 ? (uint64_t)(s * 1e9) : 0;
}

/* Sends the worker's reply with its Server-Timing breakdown. */
static enum MHD_Result http_send_reply(request *rq)
{
    char timing[4 * (16 + SRV_UINT_ROOM)];
    size_t n = 0;
    srv_answer a;

    n += timing_entry(timing + n, "parse", seconds_ns(rq->reply.parse_s));
    n += timing_entry(timing + n, ", queue", rq->t_run - rq->t_queued);
    n += timing_entry(timing + n, ", compute", seconds_ns(rq->reply.compute_s));
    timing_entry(timing + n, ", encode", seconds_ns(rq->reply.encode_s));
    srv_answer_from_reply(&a, &rq->reply);
    return http_answer(rq, &a, timing);
}

/* ---- loss requests ------------------------------------------------------ */

/* Runs on a worker thread; see the threading note at the top. */
static void http_job_run(srv_job *job)
{
    request *rq = (request *)job;

    rq->t_run = uv_hrtime();
    if (rq->v2) {
        srv_v2_infer_owned(rq->loss, rq->v2_header, rq->body, rq->len, rq->cap,
                           &rq->reply);
        rq->body = NULL; /* given away */
    } else if (rq->has_parsed) {
        srv_parsed_run(&rq->parsed, &rq->reply);
    } else {
        srv_loss_run_owned(rq->loss, rq->body, rq->len, rq->cap, &rq->reply);
        rq->body = NULL; /* given away */
    }
    rq->has_parsed = 0;
    free(rq->body);
    rq->body = NULL;
    rq->t_done = uv_hrtime();
    rq->state = REQ_COMPUTED;
    MHD_resume_connection(rq->conn); /* the last touch of rq here */
}

/* A request small enough to compute where it arrived: two thread hand-offs
 * (suspend, wake a worker, resume, wake this thread) cost more than its
 * computation.  The body bound keeps parsing short; the cost bound
 * (srv_request_cost, element operations) keeps a small body that asks for
 * much work -- batch_all mining of a few thousand rows -- off this thread,
 * which serves other connections too. */
#define INLINE_MAX_BODY 16384
#define INLINE_MAX_COST 50000

/* Computes rq on this thread when it is small and a worker is idle (the
 * idle worker is borrowed, so --threads still bounds the computations
 * running at once): 0 with the reply ready, or -1 to use the pool, which
 * then computes the request parsed here if there is one (has_parsed). */
static int http_run_inline(request *rq)
{
    int rc;

    if (rq->v2 || rq->len > INLINE_MAX_BODY || srv_pool_borrow() != 0)
        return -1;
    rq->t_queued = rq->t_run = uv_hrtime();
    rc = srv_loss_run_within(rq->loss, rq->body, rq->len, INLINE_MAX_COST,
                             &rq->reply, &rq->parsed);
    srv_pool_return();
    if (rc != 0) {
        rq->has_parsed = 1;
        return -1;
    }
    rq->t_done = uv_hrtime();
    rq->state = REQ_COMPUTED;
    return 0;
}

/* The body is complete: compute it here, hand it to the pool, or answer
 * 503 at once. */
static enum MHD_Result http_dispatch(request *rq)
{
    srv_answer a;

    if (http_run_inline(rq) == 0)
        return http_send_reply(rq);
    if (srv_pool_reserve() != 0) {
        srv_answer_error(&a, 503, "overloaded",
                         "Every worker is busy and the queue is full; retry "
                         "shortly.");
        return http_answer(rq, &a, NULL);
    }
    rq->state = REQ_COMPUTING;
    rq->job.run = http_job_run;
    rq->t_queued = uv_hrtime();
    /* Suspend before submitting, so the worker's resume always follows. */
    MHD_suspend_connection(rq->conn);
    srv_pool_submit(&rq->job);
    return MHD_YES;
}

/* Counts n more bytes of body buffers for rq against --max-body-total;
 * -1 when they would pass it.  Bodies are counted from their allocation
 * to the request's completion, whoever holds the buffer meanwhile (a
 * worker, the response), so that connections that each send most of a
 * large body cannot together exhaust memory. */
static int body_hold(request *rq, size_t n)
{
    size_t held = atomic_load(&http.held);

    do {
        if (n > http.held_max - held)
            return -1;
    } while (!atomic_compare_exchange_weak(&http.held, &held, held + n));
    rq->held += n;
    return 0;
}

static void body_release(request *rq)
{
    atomic_fetch_sub(&http.held, rq->held);
    rq->held = 0;
}

static void body_too_large(srv_answer *a)
{
    srv_answer_error(a, 413, "body_too_large",
                     "The body is larger than the limit of %zu bytes.",
                     http.cfg->max_body);
}

/* The answer of a deferred request, now that its body has ended: a
 * chunked body refused for want of room (503, retry) that went on past
 * --max-body would never be taken, and gets the 413 instead. */
static srv_answer *deferred_answer(request *rq)
{
    if (rq->busy && rq->len > http.cfg->max_body) {
        srv_answer_cleanup(&rq->answer);
        body_too_large(&rq->answer);
        rq->busy = 0;
    }
    return &rq->answer;
}

/* The 503 for a body that --max-body-total has no room for. */
static void body_busy(srv_answer *a)
{
    srv_answer_error(a, 503, "overloaded",
                     "The request bodies being received and computed hold "
                     "the limit of %zu bytes (--max-body-total); retry "
                     "shortly.",
                     http.held_max);
}

/* Grows the body buffer of a chunked request to hold need bytes; the limit
 * was checked by the caller.  -1 out of memory, -2 past --max-body-total. */
static int body_reserve(request *rq, size_t need)
{
    size_t cap = rq->cap ? rq->cap : 65536;
    char *grown;

    if (need <= rq->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    if (cap > http.cfg->max_body + 1)
        cap = http.cfg->max_body + 1;
    if (body_hold(rq, cap - rq->cap) != 0)
        return -2;
    grown = realloc(rq->body, cap);
    if (grown == NULL)
        return -1;
    rq->body = grown;
    rq->cap = cap;
    return 0;
}

static int request_timed_out(const request *rq)
{
    unsigned t = http.cfg->timeout;

    return t > 0 && uv_hrtime() - rq->t_start > (uint64_t)t * 1000000000u;
}

/* 1 when the client has closed its end of the connection with nothing
 * left unread.  libmicrohttpd 0.9.75 on epoll can miss an end of stream
 * that arrives just behind a piece of body, and would then hold the
 * connection until --timeout; a client that hung up half-way through its
 * body is thereby let go at once. */
static int peer_closed(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    char c;

    return ci != NULL &&
           recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Appends one piece of the body.  A body that outgrows --max-body (only a
 * chunked one can: libmicrohttpd stops at Content-Length), or whose growth
 * --max-body-total has no room for, is cut off: the buffer is freed, the
 * rest is read and dropped, and the 413 (or 503) goes out when the body
 * ends (libmicrohttpd cannot queue a response in mid-body); the timeout
 * bounds how long that can last. */
static enum MHD_Result http_receive(request *rq, const char *data, size_t *size)
{
    size_t n = *size;
    srv_answer a;
    int rc = 0, too_large = n > http.cfg->max_body - rq->len;

    *size = 0;
    if (request_timed_out(rq)) {
        rq->timed_out = 1;
        return MHD_NO;
    }
    if (too_large || (rc = body_reserve(rq, rq->len + n)) == -2) {
        free(rq->body);
        rq->body = NULL;
        body_release(rq);
        rq->busy = !too_large;
        if (too_large)
            body_too_large(&rq->answer);
        else
            body_busy(&rq->answer);
        rq->state = REQ_DEFERRED;
        return MHD_YES;
    }
    if (rc != 0) {
        srv_answer_error(&a, 503, "out_of_memory", SRV_OOM_MESSAGE);
        return http_answer(rq, &a, NULL);
    }
    memcpy(rq->body + rq->len, data, n);
    rq->len += n;
    /* Only a body known to be short: a complete one may follow a
     * half-close by a client still waiting for its answer. */
    if (rq->len < rq->expect && peer_closed(rq->conn))
        return MHD_NO;
    return MHD_YES;
}

/* ---- request headers ---------------------------------------------------- */

/* A Content-Length value: digits only, nothing else. */
static int content_length_parse(const char *v, unsigned long long *out)
{
    char *end;

    if (v == NULL || v[0] < '0' || v[0] > '9')
        return -1;
    *out = strtoull(v, &end, 10);
    return *end == '\0' ? 0 : -1;
}

/* Counts Content-Length headers (libmicrohttpd itself keeps the first) and
 * notes Transfer-Encoding. */
static enum MHD_Result head_visit(void *cls, enum MHD_ValueKind kind,
                                  const char *key, const char *value)
{
    srv_head *h = cls;

    (void)kind;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        h->content_length_count++;
        if (content_length_parse(value, &h->content_length) != 0)
            h->content_length_bad = 1;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        /* libmicrohttpd reads a body in chunks only for this very value,
         * and any other one until the peer closes. */
        h->transfer_bad |= h->chunked || strcasecmp(value, "chunked") != 0;
        h->chunked = 1;
    }
    return MHD_YES;
}

static void head_gather(request *rq, srv_head *h)
{
    memset(h, 0, sizeof *h);
    h->method = rq->method;
    h->path = rq->path;
    h->content_type = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_TYPE);
    MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, head_visit, h);
    h->inference_header = MHD_lookup_connection_value(
        rq->conn, MHD_HEADER_KIND, "Inference-Header-Content-Length");
    h->max_body = http.cfg->max_body;
    h->draining = atomic_load(&http.draining);
    h->auth_on = srv_auth_enabled();
    h->metrics_auth = http.cfg->metrics_auth;
    if (h->auth_on)
        h->authorized = srv_auth_check(MHD_lookup_connection_value(
            rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
}

/* An answer decided on the headers.  A request without a body is answered
 * on the next call, once libmicrohttpd has seen the whole request, so that
 * the connection stays open for the next one; a request with a body is
 * answered now, before its body is read (no 100 Continue is sent), and its
 * connection is then closed. */
static enum MHD_Result http_answer_early(request *rq, const srv_head *h,
                                         srv_answer *a)
{
    int has_body = h->chunked || h->content_length_bad ||
                   h->content_length_count > 1 ||
                   (h->content_length_count == 1 && h->content_length > 0);

    if (has_body)
        return http_answer(rq, a, NULL);
    rq->answer = *a;
    rq->state = REQ_DEFERRED;
    return MHD_YES;
}

/* The first call for a request: route it on its headers. */
static enum MHD_Result http_begin(struct MHD_Connection *conn, const char *url,
                                  const char *method, void **con_cls)
{
    request *rq = calloc(1, sizeof *rq);
    srv_head h;
    srv_answer a;
    const char *loss;
    srv_route_result route;

    if (rq == NULL)
        return MHD_NO;
    srv_watch_busy(conn);
    rq->conn = conn;
    rq->method = method;
    rq->path = url;
    rq->t_start = uv_hrtime();
    *con_cls = rq;
    srv_metrics_request_begin();
    head_gather(rq, &h);
    route = srv_route_head(&h, &a, &loss);
    if (route == SRV_ROUTE_ANSWER) {
        rq->loss = srv_endpoint_exists(loss) ? loss : NULL;
        return http_answer_early(rq, &h, &a);
    }
    rq->loss = loss;
    rq->v2 = route == SRV_ROUTE_V2;
    rq->v2_header = h.inference_header;
    rq->state = REQ_RECEIVING;
    rq->admitted = 1;
    atomic_fetch_add(&http.admitted, 1);
    if (h.content_length_count == 1) {
        rq->expect = (size_t)h.content_length;
        rq->cap = rq->expect + 1;
        if (body_hold(rq, rq->cap) != 0) {
            body_busy(&a);
            return http_answer(rq, &a, NULL);
        }
        rq->body = srv_huge_malloc(rq->cap);
        if (rq->body == NULL) {
            srv_answer_error(&a, 503, "out_of_memory", SRV_OOM_MESSAGE);
            return http_answer(rq, &a, NULL);
        }
    }
    return MHD_YES;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn,
                                   const char *url, const char *method,
                                   const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    request *rq = *con_cls;

    (void)cls;
    (void)version;
    if (rq == NULL)
        return http_begin(conn, url, method, con_cls);
    switch (rq->state) {
    case REQ_RECEIVING:
        if (*upload_data_size > 0)
            return http_receive(rq, upload_data, upload_data_size);
        return http_dispatch(rq);
    case REQ_COMPUTED:
        return http_send_reply(rq);
    case REQ_DEFERRED:
        if (*upload_data_size == 0)
            return http_answer(rq, deferred_answer(rq), NULL);
        if (request_timed_out(rq)) {
            rq->timed_out = 1;
            return MHD_NO;
        }
        rq->len += *upload_data_size; /* counted, not kept */
        break;
    case REQ_ANSWERED:
    case REQ_COMPUTING:
        break;
    }
    *upload_data_size = 0; /* the rest of an answered request's body */
    return MHD_YES;
}

/* Logs the request, counts it and frees it. */
static void http_completed(void *cls, struct MHD_Connection *conn,
                           void **con_cls, enum MHD_RequestTerminationCode toe)
{
    request *rq = *con_cls;
    srv_log_request line;
    uint64_t t = uv_hrtime();

    (void)cls;
    if (rq == NULL)
        return;
    srv_watch_idle(conn);
    if (rq->status == 0)
        srv_metrics_rejected(
            rq->timed_out || toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
                ? "timeout"
                : "dropped");
    line.method = rq->method;
    line.path = rq->path;
    line.loss = rq->loss;
    line.status = rq->status;
    line.bytes_in = rq->len;
    line.bytes_out = rq->bytes_out;
    line.micros = (long long)((t - rq->t_start) / 1000);
    srv_log_request_write(&line);
    srv_metrics_request_end(rq->loss, rq->status, rq->len, rq->bytes_out,
                            (double)(t - rq->t_start) / 1e9);
    if (rq->state == REQ_COMPUTED)
        srv_reply_cleanup(&rq->reply);
    if (rq->state == REQ_DEFERRED)
        srv_answer_cleanup(&rq->answer);
    if (rq->has_parsed) /* parsed, then answered 503 */
        srv_parsed_cleanup(&rq->parsed);
    free(rq->body);
    body_release(rq);
    if (rq->admitted)
        atomic_fetch_sub(&http.admitted, 1);
    free(rq);
    *con_cls = NULL;
}

/* ---- the daemon --------------------------------------------------------- */

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 0)))
#endif
    ;

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    if (!atomic_load(&http.running)) {
        pthread_mutex_lock(&http.error_lock);
        if (http.mhd_error[0] == '\0') /* the first says most */
            snprintf(http.mhd_error, sizeof http.mhd_error, "%s", msg);
        pthread_mutex_unlock(&http.error_lock);
    }
    srv_log_warn("libmicrohttpd: %s", msg);
}

/* A listening socket on host:port; -1 after a line on stderr. */
static int http_listen(const srv_config *cfg, int *family, unsigned *port)
{
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char service[8];
    int fd = -1, one = 1;

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof service, "%u", cfg->port);
    if (getaddrinfo(cfg->host, service, &hints, &res) != 0 || res == NULL) {
        fprintf(stderr, "lossd: cannot resolve host '%s'\n", cfg->host);
        return -1;
    }
    fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd >= 0) {
        /* Non-blocking: with MHD_USE_TURBO every polling thread tries
         * accept() before asking epoll, and must not block in it. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        fprintf(stderr, "lossd: cannot listen on %s port %u: %s\n", cfg->host,
                cfg->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    *family = res->ai_family;
    *port =
        ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                       : ((struct sockaddr_in *)&ss)->sin_port);
    freeaddrinfo(res);
    return fd;
}

/* The whole of a PEM file, NUL-terminated and malloc'd; NULL after one
 * line on stderr. */
static char *pem_read(const char *path, const char *flag)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long n = -1;

    if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        n < (1L << 24) && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)n + 1)) != NULL) {
        n = (long)fread(text, 1, (size_t)n, f);
        text[n] = '\0';
    }
    if (f == NULL || text == NULL)
        fprintf(stderr, "lossd: %s: cannot read '%s': %s\n", flag, path,
                f == NULL ? strerror(errno) : "too large or unreadable");
    else if (strstr(text, "-----BEGIN ") == NULL) {
        fprintf(stderr, "lossd: %s: '%s' is not a PEM file\n", flag, path);
        free(text);
        text = NULL;
    }
    if (f != NULL)
        fclose(f);
    return text;
}

static int tls_load(const srv_config *cfg)
{
    if (cfg->tls_cert[0] == '\0')
        return 0;
    http.tls_cert = pem_read(cfg->tls_cert, "--tls-cert");
    if (http.tls_cert != NULL)
        http.tls_key = pem_read(cfg->tls_key, "--tls-key");
    return http.tls_key != NULL ? 0 : -1;
}

static void tls_free(void)
{
    free(http.tls_cert);
    free(http.tls_key);
    http.tls_cert = http.tls_key = NULL;
}

/* libmicrohttpd's unescaping of the path, except that a path holding
 * %00 is left as sent: decoded, the NUL would end the C string early and
 * "/loss/hinge%00x" would be routed to hinge. */
static size_t http_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    if (strstr(s, "%00") != NULL)
        return strlen(s);
    return MHD_http_unescape(s);
}

/* TLS 1.2 and 1.3 only, GnuTLS's default ciphers otherwise. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

static struct MHD_Daemon *http_daemon_start(const srv_config *cfg, int fd,
                                            unsigned flags, unsigned threads)
{
    const struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, http.tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, http.tls_key},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL}};
    const struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};

    if (http.tls_cert != NULL)
        flags |= MHD_USE_TLS;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, http_access, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        http_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_TIMEOUT,
        cfg->timeout, MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
        MHD_OPTION_NOTIFY_COMPLETED, http_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, srv_watch_notify, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, NULL, MHD_OPTION_ARRAY,
        http.tls_cert != NULL ? tls : none, MHD_OPTION_END);
}

/* One polling thread per core, 1 to 4, and no more than connections. */
static unsigned io_threads_for(const srv_config *cfg)
{
    unsigned n = uv_available_parallelism();

    n = n < 1 ? 1 : n > 4 ? 4 : n;
    return n > cfg->max_connections ? cfg->max_connections : n;
}

/* The line on stderr when libmicrohttpd would not start. */
static void http_start_failed(const srv_config *cfg)
{
    if (http.tls_cert != NULL)
        fprintf(stderr,
                "lossd: cannot serve TLS with --tls-cert '%s' and "
                "--tls-key '%s': %s\n",
                cfg->tls_cert, cfg->tls_key,
                http.mhd_error[0] ? http.mhd_error
                                  : "the certificate or key was refused");
    else
        fprintf(stderr, "lossd: cannot start the HTTP daemon: %s\n",
                http.mhd_error[0] ? http.mhd_error : "unknown error");
}

int srv_http_start(const srv_config *cfg, unsigned *port)
{
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    int family = AF_INET, fd;

    http.cfg = cfg;
    /* A body of --max-body bytes takes one more, for its NUL. */
    http.held_max = cfg->max_body_total > cfg->max_body ? cfg->max_body_total
                                                        : cfg->max_body + 1;
    atomic_store(&http.held, 0);
    atomic_store(&http.draining, 0);
    if (tls_load(cfg) != 0)
        return -1;
    fd = http_listen(cfg, &family, port);
    if (fd >= 0 && srv_watch_start(cfg->timeout) != 0) {
        fprintf(stderr, "lossd: cannot start the request-head watch\n");
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        tls_free();
        return -1;
    }
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    http.daemon = http_daemon_start(cfg, fd, flags, io_threads_for(cfg));
    if (http.daemon == NULL) {
        http_start_failed(cfg);
        srv_watch_stop();
        close(fd);
        tls_free();
        return -1;
    }
    atomic_store(&http.running, 1);
    return 0;
}

void srv_http_drain(void)
{
    atomic_store(&http.draining, 1);
}

int srv_http_draining(void)
{
    return atomic_load(&http.draining);
}

long srv_http_busy(void)
{
    return atomic_load(&http.admitted);
}

size_t srv_http_body_bytes(void)
{
    return atomic_load(&http.held);
}

void srv_http_stop(void)
{
    if (http.daemon != NULL)
        MHD_stop_daemon(http.daemon);
    http.daemon = NULL;
    srv_watch_stop();
    atomic_store(&http.running, 0);
    tls_free();
}
