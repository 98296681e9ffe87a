/* test_http_errors.c -- every error row of API.md's table over HTTP: 400,
 * 404, 405 with Allow, 413 (Content-Length, Expect: 100-continue, chunked),
 * 415, 422, and the framing errors (duplicate or conflicting
 * Content-Length, a Transfer-Encoding other than chunked) sent over a raw
 * socket.  Each error is a JSON body with code and message. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static lossd d;

static void start_small(void)
{
    static const char *const args[] = {"--max-body", "4k", NULL};

    lossd_start(&d, args);
}

static void stop(void)
{
    cr_assert_eq(lossd_stop(&d), 0);
}

TestSuite(http_errors, .init = start_small, .fini = stop, .timeout = 60);

static const char small_softmax[] =
    "{\"logits\":[[1,2,3],[0,0,1]],\"labels\":[2,0]}";

Test(http_errors, ok_with_charset_parameter)
{
    hresp r;

    http_call(d.port, "POST", "/loss/softmax",
              "application/json; charset=utf-8", small_softmax,
              strlen(small_softmax), NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
}

Test(http_errors, invalid_json_is_400)
{
    hresp r;

    http_post_json(d.port, "softmax", "{\"logits\": [[1, 2", &r);
    expect_error(&r, 400, NULL);
    hresp_free(&r);
    http_post_json(d.port, "softmax", "", &r);
    expect_error(&r, 400, NULL);
    hresp_free(&r);
}

Test(http_errors, wrong_json_type_is_400)
{
    hresp r;

    http_post_json(d.port, "softmax", "{\"logits\":\"x\",\"labels\":[0]}", &r);
    expect_error(&r, 400, NULL);
    hresp_free(&r);
    http_post_json(d.port, "softmax", "[1,2]", &r);
    expect_error(&r, 400, NULL);
    hresp_free(&r);
}

Test(http_errors, unknown_path_is_404)
{
    hresp r;

    http_get(d.port, "/nowhere", &r);
    expect_error(&r, 404, NULL);
    hresp_free(&r);
}

Test(http_errors, unknown_loss_is_404_listing_names)
{
    hresp r;

    http_post_json(d.port, "nosuchloss", small_softmax, &r);
    expect_error(&r, 404, NULL);
    cr_assert_not_null(strstr(r.body, "softmax"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "quadruplet"), "%s", r.body);
    hresp_free(&r);
    http_get(d.port, "/losses/nosuchloss", &r);
    expect_error(&r, 404, NULL);
    hresp_free(&r);
    /* %00 is no end of the name: hinge%00x is not hinge. */
    http_post_json(d.port, "hinge%00x", "{\"scores\":[1],\"labels\":[1]}", &r);
    expect_error(&r, 404, "unknown_loss");
    cr_assert_not_null(strstr(r.body, "'hinge%00x'"), "%s", r.body);
    hresp_free(&r);
    http_post_json(d.port, "hin%67e", "{\"scores\":[1],\"labels\":[1]}", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
}

Test(http_errors, wrong_method_is_405_with_allow)
{
    char allow[64];
    hresp r;

    http_get(d.port, "/loss/softmax", &r);
    expect_error(&r, 405, NULL);
    cr_assert_eq(hresp_header(&r, "Allow", allow, sizeof allow), 0);
    cr_assert_str_eq(allow, "POST");
    hresp_free(&r);
    http_call(d.port, "DELETE", "/healthz", NULL, NULL, 0, NULL, &r);
    expect_error(&r, 405, NULL);
    cr_assert_eq(hresp_header(&r, "Allow", allow, sizeof allow), 0);
    cr_assert_not_null(strstr(allow, "GET"));
    hresp_free(&r);
    http_call(d.port, "POST", "/metrics", "application/json", "{}", 2, NULL,
              &r);
    expect_error(&r, 405, NULL);
    hresp_free(&r);
}

/* A body of n bytes that is valid JSON: an object padded with spaces. */
static char *padded_body(size_t n)
{
    char *b = malloc(n + 1);

    cr_assert_not_null(b);
    memset(b, ' ', n);
    b[0] = '{';
    b[n - 1] = '}';
    b[n] = '\0';
    return b;
}

Test(http_errors, body_over_limit_is_413)
{
    char *body = padded_body(5000);
    hresp r;

    http_post_json(d.port, "softmax", body, &r);
    expect_error(&r, 413, NULL);
    hresp_free(&r);
    free(body);
}

Test(http_errors, chunked_body_over_limit_is_413)
{
    static const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
    char *body = padded_body(20000);
    hresp r;

    http_call(d.port, "POST", "/loss/softmax", "application/json", body,
              strlen(body), chunked, &r);
    expect_error(&r, 413, NULL);
    hresp_free(&r);
    http_call(d.port, "POST", "/loss/softmax", "application/json",
              small_softmax, strlen(small_softmax), chunked, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
    free(body);
}

/* The 413 comes from Content-Length alone: the body is never sent, and no
 * 100 Continue precedes the answer. */
Test(http_errors, over_limit_with_expect_100_continue_is_413_at_once)
{
    static const char req[] =
        "POST /loss/softmax HTTP/1.1\r\nHost: t\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000000000\r\n"
        "Expect: 100-continue\r\n\r\n";
    char *out = raw_exchange(d.port, req, strlen(req), 2000);

    cr_assert(strncmp(out, "HTTP/1.1 413", 12) == 0, "got: %s", out);
    cr_assert_null(strstr(out, "100 Continue"), "got: %s", out);
    cr_assert_not_null(strstr(out, "\"error\""), "got: %s", out);
    free(out);
}

Test(http_errors, over_limit_without_expect_is_413_before_the_body)
{
    static const char req[] =
        "POST /loss/softmax HTTP/1.1\r\nHost: t\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n";
    char *out = raw_exchange(d.port, req, strlen(req), 2000);

    cr_assert(strncmp(out, "HTTP/1.1 413", 12) == 0, "got: %s", out);
    free(out);
}

Test(http_errors, small_body_with_expect_gets_100_then_200)
{
    hresp r;
    static const char *const expect[] = {"Expect: 100-continue", NULL};

    http_call(d.port, "POST", "/loss/softmax", "application/json",
              small_softmax, strlen(small_softmax), expect, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
}

Test(http_errors, content_type_must_be_json_415)
{
    hresp r;

    http_call(d.port, "POST", "/loss/softmax", "text/plain", small_softmax,
              strlen(small_softmax), NULL, &r);
    expect_error(&r, 415, NULL);
    hresp_free(&r);
    http_call(d.port, "POST", "/loss/softmax", NULL, small_softmax,
              strlen(small_softmax), NULL, &r);
    expect_error(&r, 415, NULL);
    hresp_free(&r);
    http_call(d.port, "POST", "/loss/softmax", "application/jsonx",
              small_softmax, strlen(small_softmax), NULL, &r);
    expect_error(&r, 415, NULL);
    hresp_free(&r);
}

static void expect_422(const char *loss, const char *body, const char *code,
                       const char *field)
{
    const cJSON *f;
    hresp r;

    http_post_json(d.port, loss, body, &r);
    expect_error(&r, 422, code);
    if (field != NULL) {
        f = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(r.json, "error"), "field");
        cr_assert(cJSON_IsString(f) && strcmp(f->valuestring, field) == 0,
                  "want field %s: %s", field, r.body);
    }
    hresp_free(&r);
}

Test(http_errors, rule_breaking_json_is_422)
{
    expect_422("softmax", "{\"logits\":[[1,2],[3,4]],\"labels\":[0,5]}",
               "label_out_of_range", "labels[1]");
    expect_422("softmax",
               "{\"logits\":[[1,2],[3,4]],\"labels\":[0,1],"
               "\"typo\":1}",
               "unknown_field", NULL);
    expect_422("softmax", "{\"labels\":[0,1]}", NULL, NULL);
    expect_422("softmax", "{\"logits\":[[1,2],[3]],\"labels\":[0,1]}", NULL,
               NULL);
    expect_422("softmax", "{\"logits\":[],\"labels\":[]}", NULL, NULL);
    expect_422("softmax", "{\"logits\":[[1,2],[1e999,4]],\"labels\":[0,1]}",
               NULL, "logits[1][0]");
    expect_422("kl", "{\"p\":[[0.5,0.6]],\"q\":[[0.5,0.5]]}", NULL, NULL);
    expect_422("hinge", "{\"scores\":[1,2],\"labels\":[1,-1],\"p\":3}", NULL,
               NULL);
}

static void expect_framing_400(const char *headers)
{
    char req[512];
    char *out;

    snprintf(req, sizeof req,
             "POST /loss/softmax HTTP/1.1\r\nHost: t\r\n"
             "Content-Type: application/json\r\n%s\r\n{}",
             headers);
    out = raw_exchange(d.port, req, strlen(req), 2000);
    cr_assert(strncmp(out, "HTTP/1.1 400", 12) == 0, "%s -> %s", headers, out);
    free(out);
}

Test(http_errors, duplicate_or_conflicting_content_length_is_400)
{
    expect_framing_400("Content-Length: 2\r\nContent-Length: 2\r\n");
    expect_framing_400("Content-Length: 2\r\nContent-Length: 7\r\n");
    expect_framing_400("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n");
    expect_framing_400("Content-Length: 2x\r\n");
    /* A coding other than chunked: at once, not when the peer closes. */
    expect_framing_400("Transfer-Encoding: gzip, chunked\r\n");
    expect_framing_400("Transfer-Encoding: identity\r\n");
    expect_framing_400("Transfer-Encoding: chunked\r\n"
                       "Transfer-Encoding: chunked\r\n");
}
