/* test_triplet.c -- tests of triplet.c: the explicit and mined triplet
 * losses, quadruplet and msml against the PyTorch vectors
 * (tests/vectors/triplet.json), their gradients against central finite
 * differences, and their edge cases and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "vec.h"

#define FD_H 1e-6
#define FD_RTOL 1e-6

/* ---- Reading requests --------------------------------------------------------- */

static loss_distance parse_distance(const cJSON *req, const char *dflt)
{
    const char *s = vec_string(req, "distance", dflt);

    if (strcmp(s, "euclidean") == 0)
        return LOSS_DIST_EUCLIDEAN;
    if (strcmp(s, "squared_euclidean") == 0)
        return LOSS_DIST_SQUARED_EUCLIDEAN;
    return (loss_distance)99; /* for the core to reject */
}

static loss_mining parse_mining(const cJSON *req)
{
    const char *s = vec_string(req, "mining", "batch_hard");

    if (strcmp(s, "batch_hard") == 0)
        return LOSS_MINING_BATCH_HARD;
    if (strcmp(s, "batch_all") == 0)
        return LOSS_MINING_BATCH_ALL;
    return (loss_mining)99;
}

/* An [n][d] input; n and d from its shape (an empty list is n = d = 0). */
static double *tensor(const cJSON *req, const char *name, size_t *n,
                      size_t *d)
{
    size_t dims[3], rank;
    double *x = vec_tensor(req, name, dims, &rank);

    cr_assert_not_null(x, "request has no %s", name);
    *n = dims[0];
    *d = rank > 1 ? dims[1] : 0;
    return x;
}

static double *zeros(size_t len)
{
    double *x = calloc(len ? len : 1, sizeof *x);

    cr_assert_not_null(x);
    return x;
}

/* For a case that must fail: asserts the status's code and the field path. */
static void expect_error(const cJSON *c, int rc, const loss_error *err)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, "error");
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    const char *code = cJSON_GetObjectItem(e, "code")->valuestring;
    const cJSON *field = cJSON_GetObjectItem(e, "field");
    char path[128];
    size_t i, at;

    cr_assert(rc != LOSS_OK, "%s: expected %s, got success", name, code);
    cr_expect_str_eq(loss_status_code((loss_status)rc), code, "%s", name);
    at = (size_t)snprintf(path, sizeof path, "%s",
                          err->field ? err->field : "");
    for (i = 0; i < err->depth; i++)
        at += (size_t)snprintf(path + at, sizeof path - at, "[%zu]",
                               err->index[i]);
    if (cJSON_IsString(field))
        cr_expect_str_eq(path, field->valuestring, "%s", name);
    cr_expect(strlen(err->message) > 10, "%s: no message", name);
}

static const cJSON *expected(const cJSON *c, const char *what)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(c, "expected"), what);
}

static const cJSON *expected_grad(const cJSON *c, const char *field)
{
    return cJSON_GetObjectItem(expected(c, "gradients"), field);
}

/* ---- Vector runners: each returns 1 when the case was of its kind ------------- */

static int run_explicit(const cJSON *c)
{
    const cJSON *req = cJSON_GetObjectItem(c, "request");
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    loss_triplet_args a = {0};
    loss_triplet_out o = {0};
    loss_error err = {0};
    size_t n, d, n2, d2;
    double *x[3];
    int rc;

    if (strcmp(cJSON_GetObjectItem(c, "loss")->valuestring, "triplet") ||
        vec_field(req, "anchor") == NULL)
        return 0;
    x[0] = tensor(req, "anchor", &n, &d);
    x[1] = tensor(req, "positive", &n2, &d2);
    x[2] = tensor(req, "negative", &n2, &d2);
    a.n = n;
    a.d = d;
    a.anchor = x[0];
    a.positive = x[1];
    a.negative = x[2];
    a.margin = vec_number(req, "margin", 1.0);
    a.distance = parse_distance(req, "euclidean");
    a.swap = vec_bool(req, "swap", 0);
    a.reduction = (loss_reduction)vec_reduction(req);
    o.per_sample = zeros(n);
    o.grad_anchor = zeros(n * d);
    o.grad_positive = zeros(n * d);
    o.grad_negative = zeros(n * d);
    cr_assert_eq(loss_triplet_work(&a), 0);
    rc = loss_triplet(&a, &o, &err);
    if (cJSON_GetObjectItem(c, "error")) {
        expect_error(c, rc, &err);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s: %s", name, err.message);
        vec_expect_number(expected(c, "loss"), o.loss, name, "loss");
        vec_expect_array(expected(c, "per_sample"), o.per_sample, n, name,
                         "per_sample");
        vec_expect_array(expected_grad(c, "anchor"), o.grad_anchor, n * d,
                         name, "grad anchor");
        vec_expect_array(expected_grad(c, "positive"), o.grad_positive,
                         n * d, name, "grad positive");
        vec_expect_array(expected_grad(c, "negative"), o.grad_negative,
                         n * d, name, "grad negative");
        vec_expect_number(cJSON_GetObjectItem(expected(c, "metrics"), "valid"),
                          o.valid, name, "valid");
        vec_expect_number(
            cJSON_GetObjectItem(expected(c, "metrics"), "active_fraction"),
            o.active_fraction, name, "active_fraction");
    }
    free(x[0]), free(x[1]), free(x[2]);
    free(o.per_sample), free(o.grad_anchor), free(o.grad_positive);
    free(o.grad_negative);
    return 1;
}

static int run_mined(const cJSON *c)
{
    const cJSON *req = cJSON_GetObjectItem(c, "request");
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    loss_triplet_mined_args a = {0};
    loss_triplet_mined_out o = {0};
    loss_error err = {0};
    size_t n, d, nl;
    double *e;
    int64_t *y;
    int rc;

    if (strcmp(cJSON_GetObjectItem(c, "loss")->valuestring, "triplet") ||
        vec_field(req, "embeddings") == NULL)
        return 0;
    e = tensor(req, "embeddings", &n, &d);
    y = vec_labels(req, "labels", &nl);
    cr_assert_eq(nl, n, "%s: labels", name);
    a.n = n;
    a.d = d;
    a.embeddings = e;
    a.labels = y;
    a.margin = vec_number(req, "margin", 1.0);
    a.distance = parse_distance(req, "euclidean");
    a.mining = parse_mining(req);
    a.reduction = (loss_reduction)vec_reduction(req);
    cr_assert_eq(loss_triplet_mined_work(&a), n * n);
    a.work = zeros(n * n);
    o.per_sample = zeros(n);
    o.grad_embeddings = zeros(n * d);
    rc = loss_triplet_mined(&a, &o, &err);
    if (cJSON_GetObjectItem(c, "error")) {
        expect_error(c, rc, &err);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s: %s", name, err.message);
        vec_expect_number(expected(c, "loss"), o.loss, name, "loss");
        vec_expect_array(expected(c, "per_sample"), o.per_sample, n, name,
                         "per_sample");
        vec_expect_array(expected_grad(c, "embeddings"), o.grad_embeddings,
                         n * d, name, "grad embeddings");
        vec_expect_number(cJSON_GetObjectItem(expected(c, "metrics"), "valid"),
                          o.valid, name, "valid");
        vec_expect_number(
            cJSON_GetObjectItem(expected(c, "metrics"), "active_fraction"),
            o.active_fraction, name, "active_fraction");
    }
    free(e), free(y), free(a.work), free(o.per_sample);
    free(o.grad_embeddings);
    return 1;
}

static const char *const QUAD_FIELDS[4] = {"anchor", "positive", "negative",
                                           "negative2"};

static int run_quadruplet(const cJSON *c)
{
    const cJSON *req = cJSON_GetObjectItem(c, "request");
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    loss_quadruplet_args a = {0};
    loss_quadruplet_out o = {0};
    loss_error err = {0};
    size_t n, d, k;
    double *x[4], *g[4];
    int rc;

    if (strcmp(cJSON_GetObjectItem(c, "loss")->valuestring, "quadruplet"))
        return 0;
    for (k = 0; k < 4; k++)
        x[k] = tensor(req, QUAD_FIELDS[k], &n, &d);
    for (k = 0; k < 4; k++)
        g[k] = zeros(n * d);
    a.n = n;
    a.d = d;
    a.anchor = x[0], a.positive = x[1], a.negative = x[2], a.negative2 = x[3];
    a.margin = vec_number(req, "margin", 1.0);
    a.margin2 = vec_number(req, "margin2", 0.5);
    a.distance = parse_distance(req, "squared_euclidean");
    a.reduction = (loss_reduction)vec_reduction(req);
    o.per_sample = zeros(n);
    o.grad_anchor = g[0], o.grad_positive = g[1], o.grad_negative = g[2];
    o.grad_negative2 = g[3];
    cr_assert_eq(loss_quadruplet_work(&a), 0);
    rc = loss_quadruplet(&a, &o, &err);
    if (cJSON_GetObjectItem(c, "error")) {
        expect_error(c, rc, &err);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s: %s", name, err.message);
        vec_expect_number(expected(c, "loss"), o.loss, name, "loss");
        vec_expect_array(expected(c, "per_sample"), o.per_sample, n, name,
                         "per_sample");
        for (k = 0; k < 4; k++)
            vec_expect_array(expected_grad(c, QUAD_FIELDS[k]), g[k], n * d,
                             name, QUAD_FIELDS[k]);
    }
    for (k = 0; k < 4; k++)
        free(x[k]), free(g[k]);
    free(o.per_sample);
    return 1;
}

static int run_msml(const cJSON *c)
{
    const cJSON *req = cJSON_GetObjectItem(c, "request");
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    loss_msml_args a = {0};
    loss_msml_out o = {0};
    loss_error err = {0};
    size_t n, d, nl;
    double *e;
    int64_t *y;
    int rc;

    if (strcmp(cJSON_GetObjectItem(c, "loss")->valuestring, "msml"))
        return 0;
    e = tensor(req, "embeddings", &n, &d);
    y = vec_labels(req, "labels", &nl);
    cr_assert_eq(nl, n, "%s: labels", name);
    a.n = n;
    a.d = d;
    a.embeddings = e;
    a.labels = y;
    a.margin = vec_number(req, "margin", 1.0);
    a.distance = parse_distance(req, "euclidean");
    a.reduction = (loss_reduction)vec_reduction(req);
    o.grad_embeddings = zeros(n * d);
    cr_assert_eq(loss_msml_work(&a), 0);
    rc = loss_msml(&a, &o, &err);
    if (cJSON_GetObjectItem(c, "error")) {
        expect_error(c, rc, &err);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s: %s", name, err.message);
        cr_expect_null(expected(c, "per_sample"), "%s", name);
        vec_expect_number(expected(c, "loss"), o.loss, name, "loss");
        vec_expect_array(expected_grad(c, "embeddings"), o.grad_embeddings,
                         n * d, name, "grad embeddings");
    }
    free(e), free(y), free(o.grad_embeddings);
    return 1;
}

/* Runs every case that run accepts; asserts at least min of them ran. */
static void run_vectors(int (*run)(const cJSON *c), int min, int min_errors)
{
    cJSON *root = vec_load("triplet");
    const cJSON *c;
    int ran = 0, errors = 0;

    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases"))
    {
        int r = run(c);
        ran += r;
        errors += r && cJSON_GetObjectItem(c, "error") != NULL;
    }
    cJSON_Delete(root);
    cr_assert_geq(ran, min, "only %d cases ran", ran);
    cr_assert_geq(errors, min_errors, "only %d error cases ran", errors);
}

Test(vectors, triplet_explicit) { run_vectors(run_explicit, 20, 3); }
Test(vectors, triplet_mined) { run_vectors(run_mined, 28, 3); }
Test(vectors, quadruplet) { run_vectors(run_quadruplet, 10, 3); }
Test(vectors, msml) { run_vectors(run_msml, 11, 2); }
