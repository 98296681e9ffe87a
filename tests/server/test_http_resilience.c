/* test_http_resilience.c -- the daemon under overload and misbehaving
 * clients: a full queue answers 503 at once while the probes answer and
 * service resumes afterwards; trickling clients are dropped after
 * --timeout; hundreds of idle sockets do not starve others; a client gone
 * during compute costs nothing, and one gone half-way through its body
 * is let go at once; headers over the limit get 431; a body memory cannot
 * hold gets 503; a computation past --max-compute is stopped with 413;
 * --max-connections caps connections; SIGTERM with 100 requests in flight
 * answers every one, and --grace bounds the wait, stopping the
 * computations still running. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* One timeout for every suite: Criterion leaks a little when tests with
 * different timeouts run side by side under --jobs. */
TestSuite(http_resilience, .timeout = 60);

/* ---- helpers ------------------------------------------------------------ */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static int sock_open(unsigned port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0,
                 "connect: %s", strerror(errno));
    return fd;
}

static void sock_send(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        cr_assert(n > 0, "send: %s", strerror(errno));
        data += n;
        len -= (size_t)n;
    }
}

/* Reads until the peer closes or wait_ms pass without data; malloc'd. */
static char *sock_read_all(int fd, int wait_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    size_t len = 0, cap = 4096;
    char *out = malloc(cap);
    ssize_t n;

    cr_assert_not_null(out);
    while (poll(&p, 1, wait_ms) > 0) {
        if (len + 2048 > cap) {
            out = realloc(out, cap *= 2);
            cr_assert_not_null(out);
        }
        n = recv(fd, out + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    out[len] = '\0';
    return out;
}

/* Polls /metrics until series >= want (up to about 20 s). */
static void wait_metric(unsigned port, const char *series, double want)
{
    int i;

    for (i = 0; i < 4000; i++) {
        if (metric_scrape(port, series) >= want)
            return;
        sleep_ms(5);
    }
    cr_assert_fail("%s never reached %g", series, want);
}

/* Polls /metrics until series is 0 (up to about 20 s): what a request
 * holds is released when the daemon completes it, which can trail the
 * client's reading of the answer by a moment. */
static void wait_metric_zero(unsigned port, const char *series)
{
    int i;

    for (i = 0; i < 4000; i++) {
        if (metric_scrape(port, series) == 0.0)
            return;
        sleep_ms(5);
    }
    cr_assert_fail("%s never came back to 0", series);
}

/* The head of a POST to path of len body bytes. */
static int post_head(char *out, size_t cap, const char *path, size_t len)
{
    return snprintf(out, cap,
                    "POST %s HTTP/1.1\r\nHost: t\r\n"
                    "Content-Type: application/json\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    path, len);
}

/* Where slow_body goes. */
#define SLOW_PATH "/divergence/samples"

/* A kde divergence request of n samples per side in 2-D: O(n^2) kernel
 * terms, slow enough to hold a worker for a while on any machine (3,500
 * took 0.16 s in the core on the development machine). */
static char *slow_body(size_t n)
{
    size_t cap = 64 + n * 64, at, i;
    char *b = malloc(cap);
    uint64_t s = 7;
    double v[2];
    int j;

    cr_assert_not_null(b);
    at = (size_t)sprintf(b, "{\"method\":\"kde\",\"p\":[");
    for (i = 0; i < 2 * n; i++) {
        for (j = 0; j < 2; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            v[j] = (double)(s >> 11) / 9007199254740992.0 * 2 - 1;
        }
        at += (size_t)sprintf(b + at, "%s[%.5f,%.5f]",
                              i == n ? "],\"q\":["
                              : i    ? ","
                                     : "",
                              v[0], v[1]);
    }
    sprintf(b + at, "]}");
    return b;
}

static const char tiny[] = "{\"scores\":[0.5,-2],\"labels\":[1,-1]}";

/* ---- overload ----------------------------------------------------------- */

/* A POST held one byte short of complete: headers and all but the last
 * byte of its body are sent. */
static int post_held(unsigned port, const char *path, const char *body)
{
    char head[256];
    size_t len = strlen(body);
    int fd = sock_open(port);

    sock_send(fd, head, (size_t)post_head(head, sizeof head, path, len));
    sock_send(fd, body, len - 1);
    return fd;
}

static int readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};

    return poll(&p, 1, 0) > 0;
}

/* One worker busy and the one queue slot taken: a new loss request is
 * refused at once (before the queued one is answered) while /healthz and
 * /metrics answer; once the queue drains the same request succeeds.  The
 * two slow requests are released one at a time, so which one computes and
 * which one waits does not depend on timing.
 *
 * Not under valgrind (make valgrind sets LOSSD_REAL_BIN): it runs one
 * thread at a time, and while the worker computes, the HTTP threads wait
 * seconds for each system call, so /metrics cannot show the queue before
 * the computation ends.  The native and sanitizer runs check this. */
Test(http_resilience, full_queue_refuses_at_once_and_recovers)
{
    static const char *const args[] = {"--threads", "1", "--max-queue", "1",
                                       NULL};
    char *body, retry[16], *out;
    size_t len;
    lossd d;
    hresp r;
    int a, b, i;

    if (getenv("LOSSD_REAL_BIN") != NULL)
        cr_skip_test("the HTTP threads cannot answer under valgrind while a "
                     "worker computes");
    body = slow_body(3500);
    len = strlen(body);
    lossd_start(&d, args);
    a = post_held(d.port, SLOW_PATH, body);
    b = post_held(d.port, SLOW_PATH, body);
    wait_metric(d.port, "lossd_in_flight", 3); /* a, b and the scrape */
    sock_send(a, body + len - 1, 1);
    wait_metric(d.port, "lossd_workers_busy", 1);
    sock_send(b, body + len - 1, 1);
    wait_metric(d.port, "lossd_queue_depth", 1);
    http_post_json(d.port, "hinge", tiny, &r);
    cr_assert(!readable(b), "the refusal waited for the queue");
    expect_error(&r, 503, "overloaded");
    cr_assert_eq(hresp_header(&r, "Retry-After", retry, sizeof retry), 0);
    hresp_free(&r);
    http_get(d.port, "/healthz", &r);
    cr_assert_eq(r.status, 200);
    hresp_free(&r);
    cr_assert_geq(
        metric_scrape(d.port, "lossd_rejected_total{reason=\"overloaded\"}"),
        1);
    for (i = 0; i < 2; i++) {
        out = sock_read_all(i ? b : a, 60000);
        cr_expect_eq(strncmp(out, "HTTP/1.1 200 ", 13), 0,
                     "slow request %d: %.80s", i, out);
        free(out);
    }
    close(a);
    close(b);
    http_post_json(d.port, "hinge", tiny, &r);
    cr_assert_eq(r.status, 200, "service resumes: %s", r.body);
    hresp_free(&r);
    free(body);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* ---- slow and broken clients -------------------------------------------- */

/* A body sent a byte at a time, each within the idle timeout, is still cut
 * off once the whole request has taken longer than --timeout. */
Test(http_resilience, trickling_body_is_dropped_after_timeout)
{
    static const char *const args[] = {"--timeout", "1", NULL};
    char head[256];
    struct pollfd p;
    lossd d;
    int fd, i, closed = 0;

    lossd_start(&d, args);
    fd = sock_open(d.port);
    sock_send(fd, head,
              (size_t)post_head(head, sizeof head, "/loss/hinge", 1000));
    for (i = 0; i < 100 && !closed; i++) {
        if (send(fd, " ", 1, MSG_NOSIGNAL) != 1)
            closed = 1;
        p.fd = fd;
        p.events = POLLIN;
        if (poll(&p, 1, 200) > 0) {
            char c;
            closed = recv(fd, &c, 1, 0) <= 0;
            cr_assert(closed, "no answer expected for a dropped request");
        }
    }
    cr_assert(closed, "the trickling client was never dropped");
    close(fd);
    wait_metric(d.port, "lossd_rejected_total{reason=\"timeout\"}", 1);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* The request head has a deadline too: with --timeout 1, a client that
 * sends its headers a byte every 100 ms is cut off (libmicrohttpd's idle
 * timeout alone would wait for ever), and counted as a timeout, while a
 * client on a kept-alive connection, asking every 300 ms for 2.4 s, is
 * served throughout: its deadline starts again after each answer. */
Test(http_resilience, trickling_headers_are_dropped_after_timeout)
{
    static const char *const args[] = {"--timeout", "1", NULL};
    static const char head[] = "POST /loss/hinge HTTP/1.1\r\nHost: t\r\n"
                               "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    static const char ask[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    char buf[512];
    lossd d;
    int slow, kept, i, closed = 0;
    ssize_t n;

    lossd_start(&d, args);
    slow = sock_open(d.port);
    kept = sock_open(d.port);
    for (i = 0; i < (int)sizeof head - 1 && !closed; i++) {
        closed = send(slow, head + i, 1, MSG_NOSIGNAL) != 1 || readable(slow);
        if (i % 3 == 0) {
            sock_send(kept, ask, sizeof ask - 1);
            n = recv(kept, buf, sizeof buf - 1, 0);
            cr_assert(n > 0, "the kept-alive client lost its connection");
            buf[n] = '\0';
            cr_assert(strstr(buf, "200 OK") != NULL, "%s", buf);
        }
        sleep_ms(100);
    }
    cr_assert(closed, "the trickling headers were never cut off");
    cr_assert_geq(i, 8, "cut off after %d bytes, before the deadline", i);
    close(slow);
    close(kept);
    wait_metric(d.port, "lossd_rejected_total{reason=\"timeout\"}", 1);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* A triplet request mining batch_all over n embeddings of 2 numbers, in
 * 100 classes: as /loss/triplet takes it, or (v2) as a v2 infer request.
 * malloc'd. */
static char *mined_body(size_t n, int v2)
{
    size_t cap = n * 64 + 512, len = 0, i;
    char *b = malloc(cap);
    uint64_t s = 0x9e3779b97f4a7c15u;

    cr_assert_not_null(b);
    len += (size_t)snprintf(
        b + len, cap - len, "%s",
        v2 ? "{\"parameters\":{\"mining\":\"batch_all\"},\"inputs\":["
             "{\"name\":\"embeddings\",\"datatype\":\"FP64\",\"shape\":["
           : "{\"mining\":\"batch_all\",\"embeddings\":[");
    if (v2)
        len += (size_t)snprintf(b + len, cap - len, "%zu,2],\"data\":[", n);
    for (i = 0; i < n; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        len += (size_t)snprintf(b + len, cap - len,
                                v2 ? "%s%.6f,%.6f" : "%s[%.6f,%.6f]",
                                i ? "," : "", (double)(s >> 40) / 16777216.0,
                                (double)((s >> 16) & 0xffffff) / 16777216.0);
    }
    if (v2)
        len += (size_t)snprintf(b + len, cap - len,
                                "]},{\"name\":\"labels\",\"datatype\":"
                                "\"INT64\",\"shape\":[%zu],\"data\":[",
                                n);
    else
        len += (size_t)snprintf(b + len, cap - len, "],\"labels\":[");
    for (i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len, "%s%zu", i ? "," : "",
                                i % 100);
    snprintf(b + len, cap - len, "%s", v2 ? "]}]}" : "]}");
    return b;
}

/* A request still computing --max-compute seconds after it began is
 * stopped with 413 compute_timeout and counted as a refusal, and the only
 * worker takes the next request; v2 infer gets the same 413.  batch_all
 * mining over 20,000 embeddings computes for about half a minute; the
 * limit here is 1 s. */
Test(http_resilience, long_computations_are_stopped)
{
    static const char *const args[] = {"--threads", "1", "--max-compute", "1",
                                       NULL};
    static const char v2_says[] = "{\"error\":\"Computing this request took";
    char *body = mined_body(20000, 0), *next = softmax_body(64, 100, 7, NULL);
    lossd d;
    hresp r;

    lossd_start(&d, args);
    http_post_json(d.port, "triplet", body, &r);
    expect_error(&r, 413, "compute_timeout");
    cr_expect(strstr(r.body, "--max-compute") != NULL, "%s", r.body);
    hresp_free(&r);
    cr_expect_eq(
        metric_until(d.port, "lossd_rejected_total{reason=\"compute_timeout\"}",
                     1.0),
        1.0);
    cr_expect_eq(
        metric_until(d.port,
                     "lossd_requests_total{loss=\"triplet\",status=\"413\"}",
                     1.0),
        1.0);
    cr_assert_gt(strlen(next), 16384, "a body for the worker, not inline");
    http_post_json(d.port, "softmax", next, &r);
    cr_expect_eq(r.status, 200, "%.300s", r.body);
    hresp_free(&r);
    /* v2 infer: the same 413, in the v2 error shape. */
    free(body);
    body = mined_body(20000, 1);
    http_call(d.port, "POST", "/v2/models/triplet/infer", "application/json",
              body, strlen(body), NULL, &r);
    cr_expect_eq(r.status, 413, "%.300s", r.body);
    cr_expect(strncmp(r.body, v2_says, sizeof v2_says - 1) == 0, "%.300s",
              r.body);
    hresp_free(&r);
    free(body);
    free(next);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* Bodies that arrive slowly hold memory: with --max-body-total at 10 MiB,
 * a client that has sent half of a 6 MiB body keeps a second 6 MiB body
 * out (503 overloaded, Retry-After, JSON, decided on its headers), and
 * so it does a chunked one once that grows past the room left; when the
 * first client hangs up, the same body is served. */
Test(http_resilience, bodies_in_flight_are_bounded)
{
    static const char *const args[] = {"--max-body", "8M", "--max-body-total",
                                       "10M", NULL};
    static const char chunked[] =
        "POST /loss/hinge HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    const size_t big = (size_t)6 << 20, half = big / 2;
    char head[256], *pad = malloc(big), *answer;
    int holder, fd, i;
    lossd d;
    hresp r;

    cr_assert_not_null(pad);
    memset(pad, ' ', big);
    lossd_start(&d, args);
    holder = sock_open(d.port);
    sock_send(holder, head,
              (size_t)post_head(head, sizeof head, "/loss/hinge", big));
    sock_send(holder, pad, half);
    /* The holder's body is counted once its headers are read, which a
     * slow daemon (valgrind) may do after the next request arrives. */
    wait_metric(d.port, "lossd_body_bytes_held", (double)(big + 1));
    http_call(d.port, "POST", "/loss/hinge", "application/json", pad, big, NULL,
              &r);
    expect_error(&r, 503, "overloaded");
    cr_expect(strstr(r.body, "max-body-total") != NULL, "%s", r.body);
    cr_expect_eq(hresp_header(&r, "Retry-After", head, sizeof head), 0);
    hresp_free(&r);
    /* The gauge shows the holder's body, and the refused one's is gone. */
    cr_expect_eq(metric_scrape(d.port, "lossd_body_bytes_held"),
                 (double)(big + 1));
    /* Chunked: its buffer doubles as pieces arrive, and is refused once
     * it would pass the room left; the answer comes when the body ends. */
    fd = sock_open(d.port);
    sock_send(fd, chunked, sizeof chunked - 1);
    for (i = 0; i < 2; i++) {
        sock_send(
            fd, head,
            (size_t)snprintf(head, sizeof head, "%zx\r\n", half + half / 3));
        sock_send(fd, pad, half + half / 3);
        sock_send(fd, "\r\n", 2);
    }
    sock_send(fd, "0\r\n\r\n", 5);
    answer = sock_read_all(fd, 5000);
    cr_expect(strncmp(answer, "HTTP/1.1 503", 12) == 0, "%.200s", answer);
    cr_expect(strstr(answer, "max-body-total") != NULL, "%.400s", answer);
    free(answer);
    close(fd);
    /* The same refusal for a chunked body that then runs past --max-body
     * (8 MiB) is a 413: retrying it could never succeed. */
    fd = sock_open(d.port);
    sock_send(fd, chunked, sizeof chunked - 1);
    for (i = 0; i < 5; i++) {
        sock_send(fd, head,
                  (size_t)snprintf(head, sizeof head, "%zx\r\n", half));
        sock_send(fd, pad, half);
        sock_send(fd, "\r\n", 2);
    }
    sock_send(fd, "0\r\n\r\n", 5);
    answer = sock_read_all(fd, 5000);
    cr_expect(strncmp(answer, "HTTP/1.1 413", 12) == 0, "%.200s", answer);
    free(answer);
    close(fd);
    close(holder);
    wait_metric(d.port, "lossd_rejected_total{reason=\"dropped\"}", 1);
    /* Every byte held comes back: no refusal, hang-up or chunked growth
     * leaks any (a leak would shrink the room until all is refused). */
    wait_metric_zero(d.port, "lossd_body_bytes_held");
    memcpy(pad, tiny, strlen(tiny));
    http_call(d.port, "POST", "/loss/hinge", "application/json", pad, big, NULL,
              &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
    wait_metric_zero(d.port, "lossd_body_bytes_held");
    free(pad);
    cr_assert_eq(lossd_stop(&d), 0);
}

#define IDLE 300

/* Hundreds of sockets that connect and send half a request, or nothing,
 * do not keep other clients from being served. */
Test(http_resilience, idle_sockets_do_not_starve_others)
{
    static const char partial[] = "POST /loss/hinge HTTP/1.1\r\nHost: t\r\n";
    int fds[IDLE], i;
    lossd d;
    hresp r;

    lossd_start(&d, NULL);
    for (i = 0; i < IDLE; i++) {
        fds[i] = sock_open(d.port);
        if (i % 2)
            sock_send(fds[i], partial, sizeof partial - 1);
    }
    for (i = 0; i < 20; i++) {
        http_post_json(d.port, "hinge", tiny, &r);
        cr_assert_eq(r.status, 200, "%s", r.body);
        hresp_free(&r);
    }
    for (i = 0; i < IDLE; i++)
        close(fds[i]);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* A client that hangs up while its batch computes: the worker's answer is
 * thrown away, the request is accounted for, and nothing leaks (the
 * sanitizer and valgrind runs check the exit). */
Test(http_resilience, client_gone_during_compute)
{
    static const char *const args[] = {"--threads", "1", NULL};
    char *body = slow_body(2800), head[256];
    double left = 0;
    lossd d;
    hresp r;
    int fd, i;

    lossd_start(&d, args);
    for (i = 0; i < 3; i++) {
        fd = sock_open(d.port);
        sock_send(
            fd, head,
            (size_t)post_head(head, sizeof head, SLOW_PATH, strlen(body)));
        sock_send(fd, body, strlen(body));
        close(fd);
    }
    http_post_json(d.port, "hinge", tiny, &r); /* queued behind them */
    cr_assert_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
    /* Each scrape's own completion can trail its response, so the value
     * asserted is the one that ended the wait. */
    for (i = 0;
         i < 2000 && (left = metric_scrape(d.port, "lossd_in_flight")) > 1; i++)
        sleep_ms(10);
    cr_assert_eq(left, 1, "only the scrape");
    cr_assert_eq(metric_scrape(d.port, "lossd_queue_depth"), 0);
    free(body);
    cr_assert_eq(lossd_stop(&d), 0);
}

#define HANGERS 8
#define HANGUPS 100

static void *hang_up_run(void *arg)
{
    static const char body[] = "{\"scores\":[0.5,-2,1,3,4,5,6,7,8,9],"
                               "\"labels\":[1,-1,1,1,1,1,1,1,1,1]}";
    unsigned port = *(unsigned *)arg;
    char head[256];
    int i, fd, n;

    for (i = 0; i < HANGUPS; i++) {
        fd = sock_open(port);
        n = post_head(head, sizeof head, "/loss/hinge", sizeof body - 1);
        sock_send(fd, head, (size_t)n);
        sock_send(fd, body, sizeof body / 2);
        close(fd);
    }
    return NULL;
}

/* Hundreds of clients that hang up half-way through their bodies, many
 * at once, are let go at once, not after --timeout (60 s here). */
Test(http_resilience, hang_ups_mid_body_are_let_go_at_once)
{
    static const char *const args[] = {"--timeout", "60", NULL};
    pthread_t tids[HANGERS];
    double left = 0;
    lossd d;
    int i;

    lossd_start(&d, args);
    for (i = 0; i < HANGERS; i++)
        pthread_create(&tids[i], NULL, hang_up_run, &d.port);
    for (i = 0; i < HANGERS; i++)
        pthread_join(tids[i], NULL);
    for (i = 0;
         i < 2000 && (left = metric_scrape(d.port, "lossd_in_flight")) > 1; i++)
        sleep_ms(10);
    cr_assert_eq(left, 1, "%g connections still held", left - 1);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* libmicrohttpd answers headers beyond its per-connection buffer with 431,
 * and a request line beyond it with 414 (its own small HTML body: the
 * access handler never sees such a request). */
Test(http_resilience, oversized_headers_get_431)
{
    size_t n = 40000;
    char *req = malloc(n + 256), *out;
    lossd d;
    hresp r;
    int at;

    cr_assert_not_null(req);
    lossd_start(&d, NULL);
    at = sprintf(req, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(req + at, 'a', n);
    strcpy(req + at + n, "\r\n\r\n");
    out = raw_exchange(d.port, req, strlen(req), 3000);
    cr_assert_eq(strncmp(out, "HTTP/1.1 431 ", 13), 0, "%.200s", out);
    free(out);
    at = sprintf(req, "GET /");
    memset(req + at, 'a', n);
    strcpy(req + at + n, " HTTP/1.1\r\nHost: t\r\n\r\n");
    out = raw_exchange(d.port, req, strlen(req), 3000);
    cr_assert_eq(strncmp(out, "HTTP/1.1 414 ", 13), 0, "%.200s", out);
    free(out);
    http_get(d.port, "/healthz", &r); /* and the daemon carries on */
    cr_assert_eq(r.status, 200);
    hresp_free(&r);
    free(req);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* The kernel's overcommit mode (/proc/sys/vm/overcommit_memory); -1 when
 * unknown. */
static int overcommit_mode(void)
{
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = -1;

    if (f != NULL) {
        if (fscanf(f, "%d", &mode) != 1)
            mode = -1;
        fclose(f);
    }
    return mode;
}

/* A body the limits allow but memory cannot hold (700 GiB) gets 503
 * out_of_memory with Retry-After at once, from its headers, and the daemon
 * serves the next request.  Needs a kernel that refuses the allocation
 * (overcommit mode 0 or 2, on a machine with less memory than that). */
Test(http_resilience, body_beyond_memory_gets_503)
{
    static const char *const args[] = {"--max-body", "1024G",
                                       "--max-body-total", "1024G", NULL};
    static const char req[] = "POST /loss/softmax HTTP/1.1\r\nHost: t\r\n"
                              "Content-Type: application/json\r\n"
                              "Content-Length: 751619276800\r\n\r\n{";
    char *out;
    lossd d;
    hresp r;

    if (overcommit_mode() == 1)
        cr_skip_test("overcommit_memory is 1: the allocation would succeed");
    lossd_start(&d, args);
    out = raw_exchange(d.port, req, sizeof req - 1, 3000);
    cr_expect_eq(strncmp(out, "HTTP/1.1 503 ", 13), 0, "%.200s", out);
    cr_expect(strstr(out, "\r\nRetry-After: ") != NULL, "%.300s", out);
    cr_expect(strstr(out, "\"code\":\"out_of_memory\"") != NULL, "%.300s", out);
    free(out);
    wait_metric_zero(d.port, "lossd_body_bytes_held");
    http_post_json(d.port, "hinge", tiny, &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* With --max-connections 2 and two connections held open, a third gets no
 * answer; once they close, new clients are served again. */
Test(http_resilience, max_connections_caps_open_connections)
{
    static const char *const args[] = {"--max-connections", "2", NULL};
    static const char get[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    int held[2], i;
    char *out;
    lossd d;
    hresp r;

    lossd_start(&d, args);
    for (i = 0; i < 2; i++) {
        held[i] = sock_open(d.port);
        sock_send(held[i], get, sizeof get - 1); /* keep-alive: stays open */
        out = sock_read_all(held[i], 300);
        cr_assert_not_null(strstr(out, "200 OK"), "%s", out);
        free(out);
    }
    out = raw_exchange(d.port, get, sizeof get - 1, 1000);
    cr_assert_null(strstr(out, "HTTP/1.1"), "a third connection: %s", out);
    free(out);
    for (i = 0; i < 2; i++)
        close(held[i]);
    for (i = 0; i < 200; i++) {
        out = raw_exchange(d.port, get, sizeof get - 1, 300);
        if (strstr(out, "200 OK") != NULL)
            break;
        free(out);
        out = NULL;
        sleep_ms(20);
    }
    cr_assert_not_null(out, "served again after the others closed");
    free(out);
    http_get(d.port, "/healthz", &r);
    cr_assert_eq(r.status, 200);
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* ---- shutdown ----------------------------------------------------------- */

#define INFLIGHT 100

/* Polls /readyz on new connections until the daemon has taken SIGTERM. */
static void wait_draining(unsigned port)
{
    long status = 200;
    hresp r;
    int i;

    for (i = 0; i < 2000 && status == 200; i++) {
        http_get(port, "/readyz", &r);
        status = r.status;
        hresp_free(&r);
        if (status == 200)
            sleep_ms(5);
    }
    cr_assert_eq(status, 503, "/readyz never turned 503");
}

/* Waits up to ms milliseconds for the daemon to exit (else fails with
 * why) and asserts that its exit status is code. */
static void expect_exit(const lossd *d, int ms, int code, const char *why)
{
    int i, status = 0;

    for (i = 0; i < ms / 10 && waitpid(d->pid, &status, WNOHANG) != d->pid; i++)
        sleep_ms(10);
    cr_assert_lt(i, ms / 10, "%s", why);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == code,
              "exit status %d", status);
}

/* 100 requests have sent their headers and half their bodies when SIGTERM
 * comes: the daemon refuses new work (503 shutting_down), waits for the
 * rest of each body, answers every one with 200 and exits 0. */
Test(http_resilience, sigterm_with_100_in_flight_answers_all)
{
    static const char *const args[] = {"--grace",     "60",  "--threads", "2",
                                       "--max-queue", "200", NULL};
    char *body = softmax_body(20, 5, 11, NULL), head[256], *out;
    size_t len = strlen(body), half = len / 2;
    int fds[INFLIGHT], i, ok = 0;
    lossd d;
    hresp r;

    lossd_start(&d, args);
    for (i = 0; i < INFLIGHT; i++) {
        fds[i] = sock_open(d.port);
        sock_send(fds[i], head,
                  (size_t)post_head(head, sizeof head, "/loss/softmax", len));
        sock_send(fds[i], body, half);
    }
    wait_metric(d.port, "lossd_in_flight", INFLIGHT + 1);
    kill(d.pid, SIGTERM);
    wait_draining(d.port);
    http_post_json(d.port, "softmax", body, &r);
    expect_error(&r, 503, "shutting_down");
    hresp_free(&r);
    for (i = 0; i < INFLIGHT; i++)
        sock_send(fds[i], body + half, len - half);
    for (i = 0; i < INFLIGHT; i++) {
        out = sock_read_all(fds[i], 20000);
        ok += strncmp(out, "HTTP/1.1 200 ", 13) == 0 &&
              strstr(out, "\"loss\":") != NULL;
        free(out);
        close(fds[i]);
    }
    cr_assert_eq(ok, INFLIGHT, "every admitted request answered 200");
    expect_exit(&d, 20000, 0, "lossd did not exit after its last request");
    unlink(d.log_path);
    free(body);
}

/* A computation still running when --grace runs out is stopped: its
 * client gets 503 shutting_down with Retry-After, for a proxy to retry it
 * on another replica, and the daemon exits 0 (no --max-compute here). */
Test(http_resilience, grace_stops_long_computations)
{
    static const char *const args[] = {
        "--grace", "1", "--max-compute", "0", "--threads", "1", NULL};
    char *body = mined_body(20000, 0), head[256], *out, *log;
    size_t len = strlen(body);
    int fd;
    lossd d;

    lossd_start(&d, args);
    fd = sock_open(d.port);
    sock_send(fd, head,
              (size_t)post_head(head, sizeof head, "/loss/triplet", len));
    sock_send(fd, body, len);
    wait_metric(d.port, "lossd_workers_busy", 1);
    kill(d.pid, SIGTERM);
    out = sock_read_all(fd, 20000);
    cr_expect(strncmp(out, "HTTP/1.1 503 ", 13) == 0, "%.300s", out);
    cr_expect(strstr(out, "\"shutting_down\"") != NULL, "%.600s", out);
    cr_expect(strstr(out, "Retry-After: 1\r\n") != NULL, "%.600s", out);
    free(out);
    close(fd);
    expect_exit(&d, 20000, 0, "lossd did not exit");
    log = lossd_log(&d);
    cr_expect_not_null(strstr(log, "stopping_computations"), "%s", log);
    free(log);
    free(body);
    unlink(d.log_path);
}

/* A request that never completes does not hold the exit past --grace:
 * the daemon gives up on it, says so in its log and exits 1. */
Test(http_resilience, grace_bounds_the_drain)
{
    static const char *const args[] = {"--grace", "1", "--timeout", "0", NULL};
    char head[256], *log;
    lossd d;
    int fd;

    lossd_start(&d, args);
    fd = sock_open(d.port);
    sock_send(fd, head,
              (size_t)post_head(head, sizeof head, "/loss/hinge", 100));
    sock_send(fd, "{", 1);
    wait_metric(d.port, "lossd_in_flight", 2);
    kill(d.pid, SIGTERM);
    expect_exit(&d, 15000, 1, "lossd waited past its grace period");
    log = lossd_log(&d);
    cr_assert_not_null(strstr(log, "grace_expired"), "%s", log);
    free(log);
    close(fd);
    unlink(d.log_path);
}
