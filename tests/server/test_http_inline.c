/* test_http_inline.c -- where a request is computed: a small one on the
 * HTTP thread that read it (no queue), a large or costly one on a worker,
 * and the answer the same bytes either way (srv_loss_run's, below HTTP).
 * Also the request log line of a path a client filled with odd bytes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handler.h"
#include "harness.h"

TestSuite(http_inline, .timeout = 60);

/* POSTs body and asserts the answer is byte for byte srv_loss_run's; the
 * Server-Timing header is copied to timing. */
static void expect_same_answer(unsigned port, const char *loss,
                               const char *body, char *timing, size_t cap)
{
    srv_reply want;
    hresp r;

    srv_loss_run(loss, body, strlen(body), &want);
    cr_assert_eq(want.status, 200, "%.*s", (int)want.len, want.body);
    http_post_json(port, loss, body, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(r.len, want.len, "%s: %zu bytes, want %zu", loss, r.len,
                 want.len);
    cr_assert_eq(memcmp(r.body, want.body, want.len), 0, "%s", loss);
    cr_assert_eq(hresp_header(&r, "Server-Timing", timing, cap), 0);
    hresp_free(&r);
    srv_reply_cleanup(&want);
}

/* A mined triplet body: n embeddings of dimension 1, four identities. */
static char *mined_body(size_t n, const char *mining)
{
    size_t i, at = 0, cap = 64 + n * 32;
    char *b = malloc(cap);

    cr_assert_not_null(b);
    at += (size_t)sprintf(b, "{\"embeddings\":[");
    for (i = 0; i < n; i++)
        at += (size_t)sprintf(b + at, "%s[%.3f]", i ? "," : "",
                              (double)((i * 37) % 101) / 10.0);
    at += (size_t)sprintf(b + at, "],\"labels\":[");
    for (i = 0; i < n; i++)
        at += (size_t)sprintf(b + at, "%s%zu", i ? "," : "", i % 4);
    sprintf(b + at, "],\"mining\":\"%s\"}", mining);
    return b;
}

Test(http_inline, small_requests_skip_the_queue)
{
    char *body = softmax_body(8, 10, 3, NULL), timing[256];
    lossd d;

    lossd_start(&d, NULL);
    expect_same_answer(d.port, "softmax", body, timing, sizeof timing);
    /* Computed where it arrived: the queue stage is exactly nothing. */
    cr_assert_not_null(strstr(timing, "queue;dur=0.000,"), "%s", timing);
    free(body);
    cr_assert_eq(lossd_stop(&d), 0);
}

Test(http_inline, large_and_costly_requests_are_answered_alike)
{
    /* ~45 KB of logits: over the inline body bound.  120 mined rows in a
     * 2 KB body: batch_all's bisections (120^2 times 7) are over the cost
     * bound, batch_hard's 120^2 distances are not. */
    char *large = softmax_body(300, 8, 4, NULL), timing[256];
    char *all = mined_body(120, "batch_all"),
         *hard = mined_body(120, "batch_hard");
    lossd d;

    cr_assert_gt(strlen(large), 16384);
    cr_assert_lt(strlen(all), 16384);
    lossd_start(&d, NULL);
    expect_same_answer(d.port, "softmax", large, timing, sizeof timing);
    expect_same_answer(d.port, "triplet", all, timing, sizeof timing);
    expect_same_answer(d.port, "triplet", hard, timing, sizeof timing);
    free(large);
    free(all);
    free(hard);
    cr_assert_eq(lossd_stop(&d), 0);
}

Test(http_inline, log_line_escapes_the_path)
{
    static const char req[] = "GET /a\"b\\c\x01\xc3\xa9 HTTP/1.1\r\n"
                              "Host: x\r\nConnection: close\r\n\r\n";
    char *reply, *log, *line, *nl;
    cJSON *entry;
    lossd d;

    lossd_start(&d, NULL);
    reply = raw_exchange(d.port, req, sizeof req - 1, 2000);
    cr_assert_not_null(strstr(reply, " 404 "), "%s", reply);
    log = lossd_wait_log(&d, "\"status\":404");
    line = strstr(log, "\"event\":\"request\"");
    while (line > log && line[-1] != '\n')
        line--;
    nl = strchr(line, '\n');
    cr_assert_not_null(nl, "%s", log);
    *nl = '\0';
    entry = cJSON_Parse(line);
    cr_assert_not_null(entry, "not JSON: %s", line);
    /* Bytes outside printable ASCII are escaped one by one (\u00c3 is
     * the byte 0xc3, not a character: the path is bytes, not UTF-8). */
    cr_assert_str_eq(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "path")),
        "/a\"b\\c\x01\xc3\x83\xc2\xa9", "%s", line);
    cr_assert_not_null(strstr(line, "\"/a\\\"b\\\\c\\u0001\\u00c3\\u00a9\""),
                       "%s", line);
    cJSON_Delete(entry);
    free(log);
    free(reply);
    cr_assert_eq(lossd_stop(&d), 0);
}
