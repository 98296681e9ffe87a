/* test_http_divergence.c -- the divergences of continuous data over HTTP
 * against the real daemon: every case of tests/vectors/samples/
 * continuous.json posted to /divergence/samples (estimates, effective
 * parameters and counts within 1e-10 relative; errors by status, code and
 * field), the /divergences catalog, routing and field rules of the
 * endpoint, and gaussian_kl in the /losses catalog (its vectors run with
 * every other loss in test_http_vectors.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vec.h"

#define SAMPLES "/divergence/samples"

/* One suite-wide timeout (see test_http_vectors.c). */
TestSuite(http_divergence, .timeout = 60);

static void post_samples(unsigned port, const char *body, hresp *r)
{
    http_call(port, "POST", SAMPLES, "application/json", body, strlen(body),
              NULL, r);
}

/* Posts body and asserts the error: status, code, field and, when want
 * is not NULL, a message holding it. */
static void expect_samples_error(unsigned port, const char *body, long status,
                                 const char *code, const char *field,
                                 const char *want)
{
    const cJSON *err;
    const char *msg;
    hresp r;

    post_samples(port, body, &r);
    err = cJSON_GetObjectItemCaseSensitive(r.json, "error");
    expect_error(&r, status, code);
    cr_expect_str_eq(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "field")),
        field, "%s: %s", body, r.body);
    msg =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"));
    if (want != NULL)
        cr_expect(msg != NULL && strstr(msg, want) != NULL, "%s: %s", body,
                  r.body);
    hresp_free(&r);
}

static void expect_object_numbers(const cJSON *want, const cJSON *got,
                                  const char *name, const char *what)
{
    const cJSON *w;
    char label[128];

    cr_assert(cJSON_IsObject(got), "%s: %s missing", name, what);
    cr_expect_eq(cJSON_GetArraySize(got), cJSON_GetArraySize(want),
                 "%s: %s has %d members, want %d", name, what,
                 cJSON_GetArraySize(got), cJSON_GetArraySize(want));
    cJSON_ArrayForEach(w, want) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, w->string);
        snprintf(label, sizeof label, "%s.%s", what, w->string);
        cr_assert(cJSON_IsNumber(g) || cJSON_IsNull(g), "%s: %s missing", name,
                  label);
        vec_expect_number(w, cJSON_IsNumber(g) ? g->valuedouble : NAN, name,
                          label);
    }
}

static void expect_estimate(const cJSON *want, const cJSON *got,
                            const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(got, "method");
    const char *count[] = {"n_p", "n_q"};
    size_t i;

    cr_assert(cJSON_IsString(m), "%s: no method", name);
    cr_expect_str_eq(m->valuestring, vec_field(want, "method")->valuestring,
                     "%s: method", name);
    cr_expect_null(cJSON_GetObjectItemCaseSensitive(got, "loss"), "%s: loss",
                   name);
    expect_object_numbers(vec_field(want, "metrics"),
                          cJSON_GetObjectItemCaseSensitive(got, "metrics"),
                          name, "metrics");
    expect_object_numbers(vec_field(want, "parameters"),
                          cJSON_GetObjectItemCaseSensitive(got, "parameters"),
                          name, "parameters");
    for (i = 0; i < 2; i++)
        vec_expect_number(vec_field(want, count[i]),
                          cJSON_GetNumberValue(
                              cJSON_GetObjectItemCaseSensitive(got, count[i])),
                          name, count[i]);
}

static void expect_case_error(const cJSON *want, const hresp *r,
                              const char *name)
{
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(r->json, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(err, "field");

    cr_expect_eq(r->status, (long)vec_number(want, "status", 0),
                 "%s: status %ld: %s", name, r->status, r->body);
    cr_expect(cJSON_IsString(code) &&
                  strcmp(code->valuestring,
                         vec_field(want, "code")->valuestring) == 0,
              "%s: %s", name, r->body);
    cr_expect(cJSON_IsString(field) &&
                  strcmp(field->valuestring,
                         vec_field(want, "field")->valuestring) == 0,
              "%s: %s", name, r->body);
}

Test(http_divergence, every_samples_vector)
{
    cJSON *v = vec_load("samples/continuous");
    const cJSON *c;
    lossd d;
    int n = 0;

    lossd_start(&d, NULL);
    cJSON_ArrayForEach(c, vec_field(v, "cases")) {
        const char *name = vec_field(c, "name")->valuestring;
        cJSON *req = cJSON_Duplicate(vec_field(c, "request"), 1);
        char *body;
        hresp r;

        cJSON_AddStringToObject(req, "precision", "float64");
        body = cJSON_PrintUnformatted(req);
        post_samples(d.port, body, &r);
        if (vec_field(c, "error") != NULL) {
            expect_case_error(vec_field(c, "error"), &r, name);
        } else {
            cr_expect_eq(r.status, 200, "%s: %s", name, r.body);
            if (r.status == 200)
                expect_estimate(vec_field(c, "expected"), r.json, name);
        }
        hresp_free(&r);
        free(body);
        cJSON_Delete(req);
        n++;
    }
    cr_assert_geq(n, 20);
    cJSON_Delete(v);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* [N] and [N][1] are the same samples; float32 is float64 rounded. */
Test(http_divergence, vector_and_column_forms_agree)
{
    static const char *const bodies[] = {
        "{\"p\":[0.1,0.5,0.9,1.7,2.2],\"q\":[0.3,1.1,1.9,2.4],\"method\":"
        "\"kde\",\"precision\":\"float64\"}",
        "{\"p\":[[0.1],[0.5],[0.9],[1.7],[2.2]],\"q\":[[0.3],[1.1],[1.9],"
        "[2.4]],\"method\":\"kde\",\"precision\":\"float64\"}",
        "{\"p\":[0.1,0.5,0.9,1.7,2.2],\"q\":[0.3,1.1,1.9,2.4],\"method\":"
        "\"kde\"}"};
    double kl[3];
    lossd d;
    size_t i;

    lossd_start(&d, NULL);
    for (i = 0; i < 3; i++) {
        hresp r;
        post_samples(d.port, bodies[i], &r);
        cr_assert_eq(r.status, 200, "%s", r.body);
        kl[i] = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(r.json, "metrics"), "kl_pq"));
        hresp_free(&r);
    }
    cr_expect_eq(kl[0], kl[1]);
    cr_expect(kl[0] > 0 && fabs(kl[2] - kl[0]) <= 6e-8 * kl[0], "%.17g %.17g",
              kl[2], kl[0]);
    /* /metrics counts them under their path, not as "other", and so the
     * answers decided from the headers alone (415). */
    {
        hresp r;
        http_call(d.port, "POST", "/divergence/samples", "text/plain", "{}", 2,
                  NULL, &r);
        cr_expect_eq(r.status, 415);
        hresp_free(&r);
    }
    cr_expect_eq(
        metric_until(d.port,
                     "lossd_requests_total{loss=\"divergence/samples\","
                     "status=\"200\"}",
                     3.0),
        3.0);
    cr_expect_eq(
        metric_until(d.port,
                     "lossd_requests_total{loss=\"divergence/samples\","
                     "status=\"415\"}",
                     1.0),
        1.0);
    cr_assert_eq(lossd_stop(&d), 0);
}

Test(http_divergence, fields_and_types)
{
    static const struct {
        const char *body;
        long status;
        const char *code, *field;
    } cases[] = {
        {"{\"p\":[1,2],\"q\":[2,3],\"reduction\":\"sum\"}", 422,
         "unknown_field", "reduction"},
        {"{\"p\":[1,2],\"q\":[2,3],\"gradients\":false}", 422, "unknown_field",
         "gradients"},
        {"{\"p\":[1,2],\"q\":[2,3],\"bins\":\"many\"}", 422, "bad_parameter",
         "bins"},
        {"{\"p\":[1,2],\"q\":[2,3],\"bins\":0}", 422, "bad_parameter", "bins"},
        {"{\"p\":[1,2],\"q\":[2,3],\"bins\":2.5}", 400, "wrong_type", "bins"},
        {"{\"p\":[1,2],\"q\":[2,3],\"bins\":true}", 400, "wrong_type", "bins"},
        {"{\"p\":[1,2],\"q\":[2,3],\"bandwidth\":-1}", 422, "bad_parameter",
         "bandwidth"},
        {"{\"p\":[1,2],\"q\":[2,3],\"method\":\"mle\"}", 422, "bad_parameter",
         "method"},
        {"{\"p\":[1,2],\"q\":[2,3],\"base\":1}", 422, "bad_parameter", "base"},
        {"{\"p\":[1,2],\"q\":[2,3],\"k\":0}", 422, "bad_parameter", "k"},
        {"{\"p\":[1,2,3],\"q\":[1001.5,1002.5,1003.5],\"method\":\"kde\","
         "\"bandwidth\":0.01}",
         422, "bad_parameter", "bandwidth"},
        {"{\"p\":[1,2],\"q\":[2,1e999]}", 422, "non_finite", "q[1]"},
        {"{\"p\":[[1,2],[2]],\"q\":[[2,3]]}", 422, "shape_mismatch", "p[1]"},
        {"{\"p\":[],\"q\":[2,3]}", 422, "empty_batch", "p"},
        {"{\"p\":[1,2]}", 422, "missing_field", "q"},
        {"{\"p\":\"1,2\",\"q\":[2,3]}", 400, "wrong_type", "p"},
    };
    lossd d;
    size_t i;

    lossd_start(&d, NULL);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_samples_error(d.port, cases[i].body, cases[i].status,
                             cases[i].code, cases[i].field, NULL);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* The scratch was once sized from k before the core checked it: 2^40 made
 * a terabyte allocation (an abort under ASan) and 2^62 a 503 that told the
 * client to retry.  Any k above min(np, nq) - 1 is the core's 422. */
Test(http_divergence, huge_k_is_bad_parameter)
{
    static const char *const bodies[] = {
        "{\"p\":[1,2,3],\"q\":[1,2,3],\"method\":\"knn\",\"k\":3}",
        "{\"p\":[1,2,3],\"q\":[1,2,3],\"method\":\"knn\",\"k\":"
        "1099511627776}",
        "{\"p\":[1,2,3],\"q\":[1,2,3],\"method\":\"knn\",\"k\":"
        "4611686018427387904}",
        "{\"p\":[[1,0],[2,1],[3,0]],\"q\":[[1,1],[2,0],[3,1]],\"k\":"
        "4611686018427387904}"};
    lossd d;
    size_t i;

    lossd_start(&d, NULL);
    for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        expect_samples_error(d.port, bodies[i], 422, "bad_parameter", "k",
                             "must be in [1, 2]");
    cr_assert_eq(lossd_stop(&d), 0);
}

Test(http_divergence, routes)
{
    lossd d;
    hresp r;
    char allow[64];

    lossd_start(&d, NULL);
    http_get(d.port, SAMPLES, &r);
    expect_error(&r, 405, "method_not_allowed");
    cr_expect(hresp_header(&r, "Allow", allow, sizeof allow) == 0 &&
              strcmp(allow, "POST") == 0);
    hresp_free(&r);
    http_call(d.port, "POST", "/divergence/nope", "application/json", "{}", 2,
              NULL, &r);
    expect_error(&r, 404, "not_found");
    hresp_free(&r);
    http_post_json(d.port, "divergence/samples", "{}", &r);
    expect_error(&r, 404, "unknown_loss");
    hresp_free(&r);
    http_call(d.port, "POST", SAMPLES, "text/plain", "{}", 2, NULL, &r);
    expect_error(&r, 415, "unsupported_media_type");
    hresp_free(&r);
    http_call(d.port, "POST", "/divergences", "application/json", "{}", 2, NULL,
              &r);
    expect_error(&r, 405, "method_not_allowed");
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
}

static const cJSON *find_param(const cJSON *entry, const char *name)
{
    const cJSON *p;

    cJSON_ArrayForEach(p,
                       cJSON_GetObjectItemCaseSensitive(entry, "parameters")) {
        if (strcmp(cJSON_GetStringValue(
                       cJSON_GetObjectItemCaseSensitive(p, "name")),
                   name) == 0)
            return p;
    }
    return NULL;
}

Test(http_divergence, catalogs)
{
    const cJSON *list, *e, *bins;
    lossd d;
    hresp r;

    lossd_start(&d, NULL);
    http_get(d.port, "/divergences", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    list = cJSON_GetObjectItemCaseSensitive(r.json, "divergences");
    cr_assert_eq(cJSON_GetArraySize(list), 1);
    e = cJSON_GetArrayItem(list, 0);
    cr_expect_str_eq(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "path")),
        SAMPLES);
    bins = find_param(e, "bins");
    cr_assert_not_null(bins);
    cr_expect_str_eq(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bins, "default")),
        "auto");
    cr_expect_not_null(cJSON_GetObjectItemCaseSensitive(bins, "or"));
    /* The method's default depends on D: the catalog names none. */
    cr_expect(cJSON_IsNull(
        cJSON_GetObjectItemCaseSensitive(find_param(e, "method"), "default")));
    cr_expect_not_null(find_param(e, "precision"));
    cr_expect_null(find_param(e, "reduction"));
    hresp_free(&r);
    http_get(d.port, "/divergences/samples", &r);
    cr_expect_eq(r.status, 200);
    hresp_free(&r);
    http_get(d.port, "/divergences/nope", &r);
    expect_error(&r, 404, "not_found");
    hresp_free(&r);
    http_get(d.port, "/losses/gaussian_kl", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
}
