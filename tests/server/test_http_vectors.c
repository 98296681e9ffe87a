/* test_http_vectors.c -- every case of every reference vector file
 * (tests/vectors/<family>.json) over HTTP against the real daemon, in float64:
 * loss, per_sample, gradients, metrics and the gan generator block within
 * 1e-10 relative; error cases by status, code and field.  Also float32
 * answers within float32 rounding of the float64 ones. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vec.h"

/* Compares a nested JSON array or number of the answer against the
 * vector's (null stands for a non-finite value on both sides). */
static void expect_nested(const cJSON *want, const cJSON *got, const char *name,
                          const char *what)
{
    char label[200];
    const cJSON *w, *g;
    int i = 0;

    if (cJSON_IsArray(want)) {
        cr_assert(cJSON_IsArray(got), "%s: %s is not an array", name, what);
        cr_assert_eq(cJSON_GetArraySize(got), cJSON_GetArraySize(want),
                     "%s: %s has %d elements, want %d", name, what,
                     cJSON_GetArraySize(got), cJSON_GetArraySize(want));
        g = got->child;
        cJSON_ArrayForEach(w, want) {
            snprintf(label, sizeof label, "%.150s[%d]", what, i++);
            expect_nested(w, g, name, label);
            g = g->next;
        }
        return;
    }
    cr_assert(cJSON_IsNumber(got) || cJSON_IsNull(got),
              "%s: %s is neither a number nor null", name, what);
    vec_expect_number(want, cJSON_IsNumber(got) ? got->valuedouble : NAN, name,
                      what);
}

/* Every member of want's object must be in got's, with equal values. */
static void expect_members(const cJSON *want, const cJSON *got,
                           const char *name, const char *what)
{
    const cJSON *w;
    char label[200];

    cJSON_ArrayForEach(w, want) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, w->string);
        snprintf(label, sizeof label, "%s.%s", what, w->string);
        cr_assert_not_null(g, "%s: %s missing from the answer", name, label);
        expect_nested(w, g, name, label);
    }
}

static void expect_answer(const cJSON *want, const cJSON *got, const char *name)
{
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(want, "per_sample");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(want, "generator");
    const cJSON *ggen = cJSON_GetObjectItemCaseSensitive(got, "generator");

    expect_nested(cJSON_GetObjectItemCaseSensitive(want, "loss"),
                  cJSON_GetObjectItemCaseSensitive(got, "loss"), name, "loss");
    if (ps != NULL)
        expect_nested(ps, cJSON_GetObjectItemCaseSensitive(got, "per_sample"),
                      name, "per_sample");
    expect_members(cJSON_GetObjectItemCaseSensitive(want, "gradients"),
                   cJSON_GetObjectItemCaseSensitive(got, "gradients"), name,
                   "gradients");
    expect_members(cJSON_GetObjectItemCaseSensitive(want, "metrics"),
                   cJSON_GetObjectItemCaseSensitive(got, "metrics"), name,
                   "metrics");
    if (gen != NULL) {
        cr_assert_not_null(ggen, "%s: generator missing", name);
        expect_nested(cJSON_GetObjectItemCaseSensitive(gen, "loss"),
                      cJSON_GetObjectItemCaseSensitive(ggen, "loss"), name,
                      "generator.loss");
        expect_members(cJSON_GetObjectItemCaseSensitive(gen, "gradients"),
                       cJSON_GetObjectItemCaseSensitive(ggen, "gradients"),
                       name, "generator.gradients");
    }
}

static void expect_case_error(const cJSON *want, const hresp *r,
                              const char *name)
{
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(want, "status");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(want, "code");
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(want, "field");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(r->json, "error");
    const cJSON *gcode = cJSON_GetObjectItemCaseSensitive(err, "code");
    const cJSON *gfield = cJSON_GetObjectItemCaseSensitive(err, "field");

    cr_expect_eq(r->status, (long)status->valuedouble,
                 "%s: status %ld, want %g: %s", name, r->status,
                 status->valuedouble, r->body);
    cr_expect(cJSON_IsString(gcode) &&
                  strcmp(gcode->valuestring, code->valuestring) == 0,
              "%s: want code %s: %s", name, code->valuestring, r->body);
    if (cJSON_IsString(field))
        cr_expect(cJSON_IsString(gfield) &&
                      strcmp(gfield->valuestring, field->valuestring) == 0,
                  "%s: want field %s: %s", name, field->valuestring, r->body);
}

/* Posts one case with the given precision; returns the answer. */
static void post_case(unsigned port, const cJSON *c, const char *precision,
                      hresp *r)
{
    cJSON *req =
        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(c, "request"), 1);
    const cJSON *loss = cJSON_GetObjectItemCaseSensitive(c, "loss");
    char *body;

    cJSON_DeleteItemFromObjectCaseSensitive(req, "precision");
    cJSON_AddStringToObject(req, "precision", precision);
    body = cJSON_PrintUnformatted(req);
    http_post_json(port, loss->valuestring, body, r);
    free(body);
    cJSON_Delete(req);
}

static int run_family(unsigned port, const char *family)
{
    cJSON *v = vec_load(family);
    const cJSON *c;
    int n = 0;

    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(v, "cases")) {
        const char *name =
            cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(c, "error");
        hresp r;

        post_case(port, c, "float64", &r);
        if (err != NULL) {
            expect_case_error(err, &r, name);
        } else {
            cr_expect_eq(r.status, 200, "%s/%s: %s", family, name, r.body);
            if (r.status == 200)
                expect_answer(cJSON_GetObjectItemCaseSensitive(c, "expected"),
                              r.json, name);
        }
        hresp_free(&r);
        n++;
    }
    cJSON_Delete(v);
    return n;
}

/* One timeout for every test: Criterion leaks a little when tests with
 * different timeouts run side by side under --jobs. */
TestSuite(http_vectors, .timeout = 60);

Test(http_vectors, every_case_of_every_family)
{
    char **families = vec_families(), **f;
    lossd d;
    int cases = 0, n = 0;

    lossd_start(&d, NULL);
    for (f = families; *f != NULL; f++, n++)
        cases += run_family(d.port, *f);
    vec_families_free(families);
    cr_log_info("%d vector cases from %d families over HTTP", cases, n);
    cr_assert_gt(cases, 0);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* Every number of a float32 answer is within float32 rounding of the
 * float64 answer to the same request. */
static void expect_float32(const cJSON *f64, const cJSON *f32, const char *what)
{
    const cJSON *a, *b;

    if (cJSON_IsNumber(f64)) {
        double x = f64->valuedouble, y = f32->valuedouble;
        cr_assert(cJSON_IsNumber(f32), "%s", what);
        cr_expect(fabs(x - y) <= 6e-8 * fabs(x) + 1e-38,
                  "%s: float32 %.17g vs float64 %.17g", what, y, x);
        return;
    }
    if (!cJSON_IsArray(f64) && !cJSON_IsObject(f64))
        return;
    cr_assert_eq(cJSON_GetArraySize(f32), cJSON_GetArraySize(f64), "%s", what);
    b = f32->child;
    cJSON_ArrayForEach(a, f64) {
        expect_float32(a, b, what);
        b = b->next;
    }
}

Test(http_vectors, float32_within_rounding_of_float64)
{
    cJSON *v = vec_load("softmax");
    const cJSON *c;
    lossd d;
    int n = 0;

    lossd_start(&d, NULL);
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(v, "cases")) {
        hresp r64, r32;
        if (cJSON_GetObjectItemCaseSensitive(c, "error") != NULL || n >= 5)
            continue;
        post_case(d.port, c, "float64", &r64);
        post_case(d.port, c, "float32", &r32);
        cr_assert_eq(r64.status, 200);
        cr_assert_eq(r32.status, 200);
        expect_float32(r64.json, r32.json, "softmax");
        hresp_free(&r64);
        hresp_free(&r32);
        n++;
    }
    cr_assert_gt(n, 0);
    cJSON_Delete(v);
    cr_assert_eq(lossd_stop(&d), 0);
}
