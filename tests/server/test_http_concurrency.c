/* test_http_concurrency.c -- many clients at once get the same answers as
 * one client alone, and a full queue answers 503 with Retry-After at once
 * while every admitted request still succeeds. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define CLIENTS 8
#define ROUNDS 12

typedef struct client {
    unsigned port;
    char *bodies[ROUNDS];  /* requests */
    char *answers[ROUNDS]; /* the answers one client alone got */
    int mismatches, failures;
} client;

static void *client_run(void *arg)
{
    client *c = arg;
    int i;

    for (i = 0; i < ROUNDS; i++) {
        hresp r;
        http_post_json(c->port, "softmax", c->bodies[i], &r);
        if (r.status != 200)
            c->failures++;
        else if (strcmp(r.body, c->answers[i]) != 0)
            c->mismatches++;
        hresp_free(&r);
    }
    return NULL;
}

/* One timeout for every test: Criterion leaks a little when tests with
 * different timeouts run side by side under --jobs. */
TestSuite(http_concurrency, .timeout = 60);

Test(http_concurrency, concurrent_clients_get_correct_answers)
{
    static const char *const args[] = {"--threads", "3", NULL};
    client clients[CLIENTS];
    pthread_t tids[CLIENTS];
    lossd d;
    int c, i;

    lossd_start(&d, args);
    for (c = 0; c < CLIENTS; c++) {
        clients[c].port = d.port;
        clients[c].mismatches = clients[c].failures = 0;
        for (i = 0; i < ROUNDS; i++) {
            hresp r;
            clients[c].bodies[i] = softmax_body(
                (size_t)(4 + 3 * i), (size_t)(3 + c),
                (uint64_t)(100 * c + i + 1), "\"precision\":\"float64\"");
            http_post_json(d.port, "softmax", clients[c].bodies[i], &r);
            cr_assert_eq(r.status, 200, "%s", r.body);
            clients[c].answers[i] = r.body;
            r.body = NULL;
            hresp_free(&r);
        }
    }
    for (c = 0; c < CLIENTS; c++)
        pthread_create(&tids[c], NULL, client_run, &clients[c]);
    for (c = 0; c < CLIENTS; c++) {
        pthread_join(tids[c], NULL);
        cr_expect_eq(clients[c].failures, 0, "client %d: failed requests", c);
        cr_expect_eq(clients[c].mismatches, 0, "client %d: wrong answers", c);
        for (i = 0; i < ROUNDS; i++) {
            free(clients[c].bodies[i]);
            free(clients[c].answers[i]);
        }
    }
    cr_assert_eq(lossd_stop(&d), 0);
}

#define BIG 8

typedef struct big_call {
    unsigned port;
    const char *body;
    long status;
    char retry_after[16];
} big_call;

static void *big_run(void *arg)
{
    big_call *b = arg;
    hresp r;

    http_post_json(b->port, "softmax", b->body, &r);
    b->status = r.status;
    b->retry_after[0] = '\0';
    hresp_header(&r, "Retry-After", b->retry_after, sizeof b->retry_after);
    if (r.status == 503)
        expect_error(&r, 503, NULL);
    hresp_free(&r);
    return NULL;
}

Test(http_concurrency, full_queue_is_503_with_retry_after)
{
    static const char *const args[] = {"--threads", "1", "--max-queue", "1",
                                       NULL};
    char *body = softmax_body(400, 500, 7, NULL);
    big_call calls[BIG];
    pthread_t tids[BIG];
    int i, ok = 0, busy = 0;
    lossd d;

    lossd_start(&d, args);
    for (i = 0; i < BIG; i++) {
        calls[i].port = d.port;
        calls[i].body = body;
        pthread_create(&tids[i], NULL, big_run, &calls[i]);
    }
    for (i = 0; i < BIG; i++) {
        pthread_join(tids[i], NULL);
        if (calls[i].status == 200)
            ok++;
        else if (calls[i].status == 503) {
            busy++;
            cr_expect_str_eq(calls[i].retry_after, "1");
        }
    }
    cr_log_info("%d answered 200, %d answered 503", ok, busy);
    cr_assert_eq(ok + busy, BIG, "only 200 and 503 expected");
    /* At least the first request runs; whether a second one finds the
     * queue slot free depends on how fast the worker takes the first. */
    cr_assert_geq(ok, 1, "the running request succeeds");
    cr_assert_geq(busy, 1, "a full queue answers 503");
    free(body);
    cr_assert_eq(lossd_stop(&d), 0);
}
