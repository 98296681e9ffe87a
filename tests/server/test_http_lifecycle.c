/* test_http_lifecycle.c -- start-up flags and their exit codes, the service
 * endpoints, /metrics counters, the request log, the connection timeout
 * and graceful shutdown with requests in flight. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* One timeout for every test: Criterion leaks a little when tests with
 * different timeouts run side by side under --jobs. */
TestSuite(http_lifecycle, .timeout = 60);

Test(http_lifecycle, help_lists_every_flag_and_exits_0)
{
    static const char *const help[] = {"--help", NULL};
    static const char *const version[] = {"--version", NULL};

    cr_assert_eq(lossd_run_once(help, NULL, 0), 0);
    cr_assert_eq(lossd_run_once(version, NULL, 0), 0);
}

static void expect_bad(const char *const *args, const char *mention)
{
    char err[512] = "";

    cr_assert_eq(lossd_run_once(args, err, sizeof err), 2, "%s", args[0]);
    cr_assert_not_null(strstr(err, mention), "stderr: %s", err);
}

Test(http_lifecycle, bad_values_exit_2_with_one_line)
{
    static const char *const port[] = {"--port", "http", NULL};
    static const char *const big_port[] = {"--port=70000", NULL};
    static const char *const threads[] = {"--threads", "0", NULL};
    static const char *const body[] = {"--max-body", "12X", NULL};
    static const char *const queue[] = {"--max-queue", "-1", NULL};
    static const char *const timeout[] = {"--timeout", "soon", NULL};
    static const char *const compute[] = {"--max-compute", "-3", NULL};
    static const char *const format[] = {"--log-format", "xml", NULL};
    static const char *const unknown[] = {"--colour", "red", NULL};
    static const char *const missing[] = {"--port", NULL};

    expect_bad(port, "--port");
    expect_bad(big_port, "--port");
    expect_bad(threads, "--threads");
    expect_bad(body, "--max-body");
    expect_bad(queue, "--max-queue");
    expect_bad(timeout, "--timeout");
    expect_bad(compute, "--max-compute");
    expect_bad(format, "--log-format");
    expect_bad(unknown, "--colour");
    expect_bad(missing, "--port");
}

Test(http_lifecycle, bad_environment_exits_2)
{
    static const char *const none[] = {NULL};

    setenv("LOSSD_THREADS", "many", 1);
    expect_bad(none, "LOSSD_THREADS");
    unsetenv("LOSSD_THREADS");
    setenv("LOSSD_MAX_COMPUTE", "1m", 1);
    expect_bad(none, "LOSSD_MAX_COMPUTE");
    unsetenv("LOSSD_MAX_COMPUTE");
    setenv("LOSSD_MAX_BODY", "0", 1);
    expect_bad(none, "LOSSD_MAX_BODY");
}

Test(http_lifecycle, flags_override_environment)
{
    static const char *const args[] = {"--max-body", "2k", NULL};
    char *log;
    lossd d;

    setenv("LOSSD_MAX_QUEUE", "5", 1);
    setenv("LOSSD_MAX_BODY", "1M", 1);
    lossd_start(&d, args);
    log = lossd_log(&d);
    cr_assert_not_null(strstr(log, "\"max_body\":2048"), "%s", log);
    cr_assert_not_null(strstr(log, "\"max_queue\":5"), "%s", log);
    free(log);
    cr_assert_eq(lossd_stop(&d), 0);
}

static void expect_get(unsigned port, const char *path, const char *has)
{
    hresp r;

    http_get(port, path, &r);
    cr_assert_eq(r.status, 200, "%s: %ld %s", path, r.status, r.body);
    cr_assert_not_null(strstr(r.body, has), "%s: %s", path, r.body);
    hresp_free(&r);
}

Test(http_lifecycle, service_endpoints)
{
    lossd d;
    hresp r;

    lossd_start(&d, NULL);
    expect_get(d.port, "/", "\"name\":\"lossd\"");
    expect_get(d.port, "/", "\"quadruplet\"");
    expect_get(d.port, "/losses", "\"softmax\"");
    expect_get(d.port, "/losses/triplet", "\"triplet\"");
    expect_get(d.port, "/healthz", "ok");
    expect_get(d.port, "/readyz", "ready");
    expect_get(d.port, "/metrics", "lossd_in_flight");
    expect_get(d.port, "/openapi.json", "\"/loss/softmax\"");
    expect_get(d.port, "/docs", "<html");
    http_get(d.port, "/openapi.json", &r);
    cr_assert_not_null(r.json);
    cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(r.json, "openapi"));
    hresp_free(&r);
    http_call(d.port, "HEAD", "/healthz", NULL, NULL, 0, NULL, &r);
    cr_assert_eq(r.status, 200);
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* lossd_in_flight once the previous scrape's completion, which can trail
 * its response by a moment, has been counted. */
static double settled_in_flight(unsigned port)
{
    const struct timespec tick = {0, 10 * 1000 * 1000};
    double n = metric_scrape(port, "lossd_in_flight");
    int i;

    for (i = 0; i < 200 && n > 1; i++) {
        nanosleep(&tick, NULL);
        n = metric_scrape(port, "lossd_in_flight");
    }
    return n;
}

Test(http_lifecycle, metrics_counters_move)
{
    static const char ok200[] =
        "lossd_requests_total{loss=\"softmax\",status=\"200\"}";
    static const char bad422[] =
        "lossd_requests_total{loss=\"softmax\",status=\"422\"}";
    char *body = softmax_body(4, 3, 1, NULL);
    double before, in_before, out_before;
    lossd d;
    hresp r;

    lossd_start(&d, NULL);
    before = metric_scrape(d.port, ok200);
    in_before = metric_scrape(d.port, "lossd_bytes_received_total");
    out_before = metric_scrape(d.port, "lossd_bytes_sent_total");
    http_post_json(d.port, "softmax", body, &r);
    hresp_free(&r);
    http_post_json(d.port, "softmax", body, &r);
    hresp_free(&r);
    http_post_json(d.port, "softmax", "{\"logits\":[[1]],\"labels\":[3]}", &r);
    hresp_free(&r);
    cr_assert_eq(metric_until(d.port, ok200, before + 2), before + 2);
    cr_assert_eq(metric_until(d.port, bad422, 1), 1);
    cr_assert_geq(metric_scrape(d.port, "lossd_bytes_received_total"),
                  in_before + 2 * (double)strlen(body));
    cr_assert_gt(metric_scrape(d.port, "lossd_bytes_sent_total"), out_before);
    cr_assert_geq(metric_until(d.port,
                               "lossd_request_duration_seconds_count{loss="
                               "\"softmax\"}",
                               3),
                  3);
    cr_assert_eq(settled_in_flight(d.port), 1); /* the scrape */
    cr_assert_eq(metric_scrape(d.port, "lossd_queue_depth"), 0);
    free(body);
    cr_assert_eq(lossd_stop(&d), 0);
}

Test(http_lifecycle, request_log_and_server_timing)
{
    char *body = softmax_body(4, 3, 1, NULL), timing[256];
    lossd d;
    hresp r;

    lossd_start(&d, NULL);
    http_post_json(d.port, "softmax", body, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(hresp_header(&r, "Server-Timing", timing, sizeof timing), 0);
    cr_assert_not_null(strstr(timing, "parse;dur="), "%s", timing);
    cr_assert_not_null(strstr(timing, "queue;dur="), "%s", timing);
    cr_assert_not_null(strstr(timing, "compute;dur="), "%s", timing);
    cr_assert_not_null(strstr(timing, "encode;dur="), "%s", timing);
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
    free(body);
}

Test(http_lifecycle, log_lines_are_json_per_request)
{
    char *log, *line;
    lossd d;
    hresp r;

    lossd_start(&d, NULL);
    http_post_json(d.port, "softmax", "{\"logits\":[[1,2]],\"labels\":[1]}",
                   &r);
    hresp_free(&r);
    log = lossd_wait_log(&d, "\"event\":\"request\"");
    line = strstr(log, "\"event\":\"request\"");
    cr_assert_not_null(line, "%s", log);
    cr_assert_not_null(strstr(line, "\"method\":\"POST\""), "%s", log);
    cr_assert_not_null(strstr(line, "\"path\":\"/loss/softmax\""), "%s", log);
    cr_assert_not_null(strstr(line, "\"loss\":\"softmax\""), "%s", log);
    cr_assert_not_null(strstr(line, "\"status\":200"), "%s", log);
    cr_assert_not_null(strstr(line, "\"bytes_in\":31"), "%s", log);
    cr_assert_not_null(strstr(line, "\"us\":"), "%s", log);
    free(log);
    cr_assert_eq(lossd_stop(&d), 0);
}

Test(http_lifecycle, text_log_format)
{
    static const char *const args[] = {"--log-format", "text", NULL};
    lossd d;
    hresp r;
    char *log;

    lossd_start(&d, args);
    http_get(d.port, "/healthz", &r);
    hresp_free(&r);
    log = lossd_wait_log(&d, "GET /healthz 200");
    cr_assert_null(strstr(log, "{\""), "%s", log);
    free(log);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* A request whose body stops arriving is dropped after --timeout. */
Test(http_lifecycle, slow_request_is_dropped_after_timeout)
{
    static const char *const args[] = {"--timeout", "1", NULL};
    static const char req[] =
        "POST /loss/softmax HTTP/1.1\r\nHost: t\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    time_t t0;
    char *out;
    lossd d;

    lossd_start(&d, args);
    t0 = time(NULL);
    out = raw_exchange(d.port, req, strlen(req), 5000);
    cr_assert_eq(out[0], '\0', "no answer expected: %s", out);
    cr_assert_leq(time(NULL) - t0, 4, "dropped after about 1 s");
    free(out);
    cr_assert_eq(lossd_stop(&d), 0);
}

#define INFLIGHT 4

typedef struct inflight {
    unsigned port;
    const char *body;
    long status;
} inflight;

static void *inflight_run(void *arg)
{
    inflight *f = arg;
    hresp r;

    http_post_json(f->port, "softmax", f->body, &r);
    f->status = r.status;
    hresp_free(&r);
    return NULL;
}

static void wait_in_flight(unsigned port, double n)
{
    const struct timespec tick = {0, 2 * 1000 * 1000};
    int i;

    for (i = 0; i < 5000; i++) {
        if (metric_scrape(port, "lossd_in_flight") >= n + 1)
            return;
        nanosleep(&tick, NULL);
    }
    cr_assert_fail("requests never got in flight");
}

/* Polls /readyz until the daemon has taken the signal. */
static void wait_not_ready(unsigned port)
{
    const struct timespec tick = {0, 2 * 1000 * 1000};
    long status = 200;
    int i;
    hresp r;

    for (i = 0; i < 1000 && status == 200; i++) {
        http_get(port, "/readyz", &r);
        status = r.status;
        if (status != 200)
            expect_error(&r, 503, NULL);
        hresp_free(&r);
        if (status == 200)
            nanosleep(&tick, NULL);
    }
    cr_assert_eq(status, 503, "/readyz never turned 503");
}

/* SIGTERM with requests running and queued: /readyz turns 503, new work
 * gets 503 with Retry-After, every admitted request gets 200 and the
 * daemon exits 0. */
Test(http_lifecycle, graceful_shutdown_finishes_in_flight)
{
    static const char *const args[] = {"--threads", "1", NULL};
    char *body = softmax_body(300, 400, 3, NULL), retry[16];
    inflight f[INFLIGHT];
    pthread_t tids[INFLIGHT];
    lossd d;
    hresp r;
    int i;

    lossd_start(&d, args);
    for (i = 0; i < INFLIGHT; i++) {
        f[i].port = d.port;
        f[i].body = body;
        pthread_create(&tids[i], NULL, inflight_run, &f[i]);
    }
    wait_in_flight(d.port, INFLIGHT);
    kill(d.pid, SIGTERM);
    wait_not_ready(d.port);
    http_post_json(d.port, "softmax", "{\"logits\":[[1,2]],\"labels\":[1]}",
                   &r);
    expect_error(&r, 503, NULL);
    cr_assert_eq(hresp_header(&r, "Retry-After", retry, sizeof retry), 0);
    hresp_free(&r);
    for (i = 0; i < INFLIGHT; i++) {
        pthread_join(tids[i], NULL);
        cr_expect_eq(f[i].status, 200, "request %d: %ld", i, f[i].status);
    }
    cr_assert_eq(lossd_stop(&d), 0);
    free(body);
}

/* Request lines are written in batches: on SIGTERM every one of them must
 * still reach the log, before the "stopped" line that ends it. */
Test(http_lifecycle, every_request_line_is_logged_before_stopped)
{
    const char *at, *stopped;
    char *log;
    int i, n = 0, status;
    lossd d;
    hresp r;

    lossd_start(&d, NULL);
    for (i = 0; i < 50; i++) {
        http_post_json(d.port, "softmax", "{\"logits\":[[1,2]],\"labels\":[1]}",
                       &r);
        cr_assert_eq(r.status, 200);
        hresp_free(&r);
    }
    kill(d.pid, SIGTERM);
    cr_assert_eq(waitpid(d.pid, &status, 0), d.pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d",
              status);
    log = lossd_log(&d);
    stopped = strstr(log, "\"event\":\"stopped\"");
    cr_assert_not_null(stopped, "%s", log);
    for (at = strstr(log, "\"event\":\"request\""); at != NULL;
         at = strstr(at + 1, "\"event\":\"request\"")) {
        cr_assert_lt(at, stopped, "a request line after stopped: %s", log);
        n++;
    }
    cr_assert_eq(n, 50, "%d request lines: %s", n, log);
    free(log);
    unlink(d.log_path);
}
