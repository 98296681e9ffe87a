/* test_handler.c -- the request path below HTTP: every reference vector of
 * tests/vectors/ run through srv_loss_run and compared with PyTorch, and the
 * parser's, writer's and catalog's contract (error codes, statuses, JSON
 * paths, omissions, precision) checked request by request. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "json_out.h"
#include "table.h"
#include "vec.h"

/* ---- Helpers ------------------------------------------------------------- */

/* Runs one request; the parsed response is returned (caller deletes), the
 * status stored in *status. */
/* run for a body of len bytes, which may hold NUL bytes. */
static cJSON *run_n(const char *loss, const char *body, size_t len, int *status)
{
    srv_reply r;
    cJSON *resp;

    srv_loss_run(loss, body, len, &r);
    cr_assert_not_null(r.body, "%s: no body", loss);
    resp = cJSON_ParseWithLength(r.body, r.len);
    cr_assert_not_null(resp, "%s: response is not JSON: %.*s", loss, (int)r.len,
                       r.body);
    cr_assert(r.parse_s >= 0 && r.compute_s >= 0 && r.encode_s >= 0);
    *status = r.status;
    srv_reply_cleanup(&r);
    return resp;
}

static cJSON *run(const char *loss, const char *body, int *status)
{
    return run_n(loss, body, strlen(body), status);
}

static const char *error_field(const cJSON *resp, const char *key)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Asserts that body fails with status, code and field (NULL: none). */
static void expect_error(const char *loss, const char *body, int status,
                         const char *code, const char *field)
{
    int got;
    cJSON *resp = run(loss, body, &got);
    const char *c = error_field(resp, "code"), *f = error_field(resp, "field");

    cr_expect_eq(got, status, "%s: status %d, want %d (%s)", body, got, status,
                 c ? c : "?");
    cr_expect(c && strcmp(c, code) == 0, "%s: code %s, want %s", body,
              c ? c : "(none)", code);
    if (field)
        cr_expect(f && strcmp(f, field) == 0, "%s: field %s, want %s", body,
                  f ? f : "(none)", field);
    else
        cr_expect_null(f, "%s: field %s, want none", body, f);
    cr_expect(error_field(resp, "message") != NULL, "%s: no message", body);
    cJSON_Delete(resp);
}

static cJSON *run_ok(const char *loss, const char *body)
{
    int status;
    cJSON *resp = run(loss, body, &status);

    cr_assert_eq(status, 200, "%s: status %d: %s", body, status,
                 error_field(resp, "message"));
    return resp;
}

/* Flattens a nested array of numbers and nulls (NaN) into out[0..cap). */
static size_t flatten(const cJSON *a, double *out, size_t at, size_t cap)
{
    const cJSON *e;

    if (!cJSON_IsArray(a)) {
        cr_assert(cJSON_IsNumber(a) || cJSON_IsNull(a), "bad array leaf");
        if (at < cap)
            out[at] = cJSON_IsNumber(a) ? a->valuedouble : NAN;
        return at + 1;
    }
    cJSON_ArrayForEach(e, a)
        at = flatten(e, out, at, cap);
    return at;
}

/* The shape of nested arrays, as text ("[3][4]"), for comparing layouts. */
static void shape_of(const cJSON *a, char *buf, size_t cap)
{
    size_t at = 0;

    buf[0] = '\0';
    while (cJSON_IsArray(a) && at + 24 < cap) {
        at +=
            (size_t)snprintf(buf + at, cap - at, "[%d]", cJSON_GetArraySize(a));
        a = a->child;
    }
}

static void expect_same_array(const cJSON *want, const cJSON *got,
                              const char *name, const char *what)
{
    size_t n = flatten(want, NULL, 0, 0), i;
    double *w = malloc((n + 1) * sizeof *w), *g = malloc((n + 1) * sizeof *g);
    char sw[64], sg[64], label[96];

    cr_assert_not_null(got, "%s: %s missing from the response", name, what);
    shape_of(want, sw, sizeof sw);
    shape_of(got, sg, sizeof sg);
    cr_expect_str_eq(sg, sw, "%s: %s has shape %s, want %s", name, what, sg,
                     sw);
    cr_assert_eq(flatten(got, NULL, 0, 0), n, "%s: %s size", name, what);
    flatten(want, w, 0, n);
    flatten(got, g, 0, n);
    for (i = 0; i < n; i++) {
        cJSON num = {0};
        num.type = isfinite(w[i]) ? cJSON_Number : cJSON_NULL;
        num.valuedouble = w[i];
        snprintf(label, sizeof label, "%s[%zu]", what, i);
        vec_expect_number(&num, isfinite(g[i]) ? g[i] : INFINITY, name, label);
    }
    free(w);
    free(g);
}

static double number_of(const cJSON *v)
{
    return cJSON_IsNumber(v) ? v->valuedouble : INFINITY;
}

/* ---- Reference vectors --------------------------------------------------- */

static void expect_object_numbers(const cJSON *want, const cJSON *got,
                                  const char *name, const char *what)
{
    const cJSON *w;
    char label[96];

    cr_assert(cJSON_IsObject(got), "%s: %s missing", name, what);
    cJSON_ArrayForEach(w, want) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, w->string);
        snprintf(label, sizeof label, "%s.%s", what, w->string);
        cr_expect_not_null(g, "%s: %s missing", name, label);
        if (g)
            vec_expect_number(w, number_of(g), name, label);
    }
}

static void expect_gradients(const cJSON *want, const cJSON *got,
                             const char *name, const char *what)
{
    const cJSON *w;
    char label[96];

    cr_assert(cJSON_IsObject(got), "%s: %s missing", name, what);
    cr_expect_eq(cJSON_GetArraySize(got), cJSON_GetArraySize(want),
                 "%s: %s has %d fields, want %d", name, what,
                 cJSON_GetArraySize(got), cJSON_GetArraySize(want));
    cJSON_ArrayForEach(w, want) {
        snprintf(label, sizeof label, "%s.%s", what, w->string);
        expect_same_array(w, cJSON_GetObjectItemCaseSensitive(got, w->string),
                          name, label);
    }
}

static void expect_result(const cJSON *c, const cJSON *resp)
{
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    const cJSON *want = cJSON_GetObjectItem(c, "expected"), *wg;

    vec_expect_number(cJSON_GetObjectItem(want, "loss"),
                      number_of(cJSON_GetObjectItem(resp, "loss")), name,
                      "loss");
    if (cJSON_GetObjectItem(want, "per_sample"))
        expect_same_array(cJSON_GetObjectItem(want, "per_sample"),
                          cJSON_GetObjectItem(resp, "per_sample"), name,
                          "per_sample");
    else
        cr_expect_null(cJSON_GetObjectItem(resp, "per_sample"),
                       "%s: unexpected per_sample", name);
    expect_gradients(cJSON_GetObjectItem(want, "gradients"),
                     cJSON_GetObjectItem(resp, "gradients"), name, "gradients");
    expect_object_numbers(cJSON_GetObjectItem(want, "metrics"),
                          cJSON_GetObjectItem(resp, "metrics"), name,
                          "metrics");
    wg = cJSON_GetObjectItem(want, "generator");
    if (wg) {
        const cJSON *g = cJSON_GetObjectItem(resp, "generator");
        cr_assert_not_null(g, "%s: generator missing", name);
        vec_expect_number(cJSON_GetObjectItem(wg, "loss"),
                          number_of(cJSON_GetObjectItem(g, "loss")), name,
                          "generator.loss");
        expect_gradients(cJSON_GetObjectItem(wg, "gradients"),
                         cJSON_GetObjectItem(g, "gradients"), name,
                         "generator.gradients");
    }
}

/* Where the contract's server rules are stricter than a loss's own status:
 * labels together with targets is conflicting_fields, which the core can
 * only report as bad_parameter. */
static int same_code(const char *got, const char *want)
{
    if (strcmp(got, want) == 0)
        return 1;
    return strcmp(got, "conflicting_fields") == 0 &&
           strcmp(want, "bad_parameter") == 0;
}

static void expect_failure(const cJSON *c, const cJSON *resp, int status)
{
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    const cJSON *want = cJSON_GetObjectItem(c, "error");
    const cJSON *wf = cJSON_GetObjectItem(want, "field");
    const char *code = error_field(resp, "code"),
               *field = error_field(resp, "field");

    cr_expect_eq(status, cJSON_GetObjectItem(want, "status")->valueint,
                 "%s: status %d", name, status);
    cr_expect(
        code && same_code(code, cJSON_GetObjectItem(want, "code")->valuestring),
        "%s: code %s, want %s", name, code ? code : "(none)",
        cJSON_GetObjectItem(want, "code")->valuestring);
    if (cJSON_IsString(wf))
        cr_expect(field && strcmp(field, wf->valuestring) == 0,
                  "%s: field %s, want %s", name, field ? field : "(none)",
                  wf->valuestring);
}

/* The same request at float32 and float64: every number agrees to 6e-8. */
static void expect_close(const cJSON *a, const cJSON *b)
{
    if (cJSON_IsNull(a) || cJSON_IsNull(b)) {
        cr_expect(cJSON_IsNull(a) && cJSON_IsNull(b), "null in one only");
    } else if (cJSON_IsNumber(a)) {
        double x = a->valuedouble, y = number_of(b);
        cr_expect(fabs(x - y) <= 6e-8 * fabs(y), "%.17g vs %.17g", x, y);
    } else if (cJSON_IsArray(a) || cJSON_IsObject(a)) {
        const cJSON *e, *f = b ? b->child : NULL;
        cr_assert_eq(cJSON_GetArraySize(a), cJSON_GetArraySize(b));
        for (e = a->child; e; e = e->next, f = f->next)
            expect_close(e, f);
    }
}

/* The case's request at the given precision: the response and status. */
static cJSON *run_at(const cJSON *c, const char *precision, int *status)
{
    cJSON *req = cJSON_Duplicate(cJSON_GetObjectItem(c, "request"), 1);
    const char *loss = cJSON_GetObjectItem(c, "loss")->valuestring;
    char *body;
    cJSON *resp;

    cJSON_DeleteItemFromObjectCaseSensitive(req, "precision");
    cJSON_AddStringToObject(req, "precision", precision);
    body = cJSON_PrintUnformatted(req);
    resp = run(loss, body, status);
    free(body);
    cJSON_Delete(req);
    return resp;
}

/* float64 against the vector; float32 against float64 within 6e-8. */
static size_t run_case(const cJSON *c)
{
    int status, s32;
    cJSON *resp = run_at(c, "float64", &status), *r32;

    if (cJSON_GetObjectItem(c, "error")) {
        expect_failure(c, resp, status);
        cJSON_Delete(resp);
        return 1;
    }
    cr_expect_eq(status, 200, "%s: status %d: %s",
                 cJSON_GetObjectItem(c, "name")->valuestring, status,
                 error_field(resp, "message"));
    if (status == 200) {
        expect_result(c, resp);
        r32 = run_at(c, "float32", &s32);
        cr_expect_eq(s32, 200);
        expect_close(r32, resp);
        cJSON_Delete(r32);
    }
    cJSON_Delete(resp);
    return 1;
}

Test(handler_vectors, every_case_of_every_file)
{
    char **families = vec_families(), **f;
    size_t files = 0, cases = 0;
    cJSON *root, *c;

    for (f = families; *f != NULL; f++) {
        root = vec_load(*f);
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases"))
            cases += run_case(c);
        cJSON_Delete(root);
        files++;
    }
    vec_families_free(families);
    cr_log_info("%zu vector files, %zu cases", files, cases);
    cr_expect_gt(files, 0);
}

/* ---- Request errors ------------------------------------------------------ */

#define LOGITS "\"logits\":[[1,2,3],[0.5,-1,2]]"

Test(handler_errors, unknown_field_is_rejected_by_name)
{
    expect_error("softmax", "{" LOGITS ",\"labels\":[0,1],\"Labels\":[0,1]}",
                 422, "unknown_field", "Labels");
    expect_error("hinge", "{\"scores\":[1],\"labels\":[1],\"margn\":2}", 422,
                 "unknown_field", "margn");
    /* swap belongs to triplet, not quadruplet */
    expect_error("quadruplet",
                 "{\"anchor\":[[1]],\"positive\":[[1]],\"negative\":[[1]],"
                 "\"negative2\":[[1]],\"swap\":true}",
                 422, "unknown_field", "swap");
    /* A key of bytes that are not UTF-8 is echoed as U+FFFD (EF BF BD),
     * so that the error body is valid UTF-8. */
    expect_error("hinge", "{\"scores\":[1],\"labels\":[1],\"\xff\":1}", 422,
                 "unknown_field", "\xef\xbf\xbd");
    /* A typo is the error, whatever its value: not NaN's non_finite. */
    expect_error("hinge", "{\"scores\":[1],\"labels\":[1],\"margn\":NaN}", 422,
                 "unknown_field", "margn");
}

Test(handler_errors, missing_fields)
{
    expect_error("softmax", "{\"labels\":[0,1]}", 422, "missing_field",
                 "logits");
    expect_error("softmax", "{" LOGITS "}", 422, "missing_field", "labels");
    expect_error("triplet", "{\"anchor\":[[1]],\"positive\":[[1]]}", 422,
                 "missing_field", "negative");
    expect_error("triplet", "{\"embeddings\":[[1]]}", 422, "missing_field",
                 "labels");
    expect_error("vae", "{\"x\":[[1]],\"mu\":[[1]],\"logvar\":[[1]]}", 422,
                 "missing_field", "recon");
}

Test(handler_errors, wrong_json_types_are_400)
{
    expect_error("softmax",
                 "{" LOGITS ",\"labels\":[0,1],\"label_smoothing\":"
                 "\"0.1\"}",
                 400, "wrong_type", "label_smoothing");
    expect_error("softmax", "{\"logits\":[[1,\"2\",3]],\"labels\":[0]}", 400,
                 "wrong_type", "logits[0][1]");
    expect_error("softmax", "{" LOGITS ",\"labels\":[0,1.5]}", 400,
                 "wrong_type", "labels[1]");
    expect_error("softmax", "{\"logits\":5,\"labels\":[0]}", 400, "wrong_type",
                 "logits");
    expect_error("softmax", "{" LOGITS ",\"labels\":[0,1],\"gradients\":1}",
                 400, "wrong_type", "gradients");
    expect_error("l_softmax",
                 "{\"features\":[[1]],\"weights\":[[1]],\"labels\":[0],"
                 "\"margin\":2.5}",
                 400, "wrong_type", "margin");
    expect_error("hinge", "{\"scores\":[null],\"labels\":[1]}", 400,
                 "wrong_type", "scores[0]");
    expect_error("hinge", "[1,2]", 400, "wrong_type", NULL);
}

Test(handler_errors, ragged_and_wrong_rank)
{
    expect_error("softmax", "{\"logits\":[[1,2],[3,4],[5]],\"labels\":[0,1,0]}",
                 422, "shape_mismatch", "logits[2]");
    expect_error("softmax", "{\"logits\":[1,2],\"labels\":[0,1]}", 422,
                 "shape_mismatch", "logits[0]");
    expect_error("softmax", "{\"logits\":[[1,[2]]],\"labels\":[0]}", 422,
                 "shape_mismatch", "logits[0][1]");
    expect_error("contrastive",
                 "{\"x1\":[[[1,2]],[[1,2,3],[4]]],\"x2\":[[[1,2]],[[1,2,3]]],"
                 "\"labels\":[1]}",
                 422, "shape_mismatch", "x1[1][1]");
}

Test(handler_errors, mismatched_dimensions_name_the_later_field)
{
    int status;
    cJSON *resp = run("softmax", "{" LOGITS ",\"labels\":[0,1,2]}", &status);

    cr_expect_eq(status, 422);
    cr_expect_str_eq(error_field(resp, "code"), "shape_mismatch");
    cr_expect_str_eq(error_field(resp, "field"), "labels");
    cr_expect_str_eq(error_field(resp, "message"),
                     "labels has 3 rows, logits has 2");
    cJSON_Delete(resp);
    expect_error("softmax", "{" LOGITS ",\"targets\":[[1,0],[0,1]]}", 422,
                 "shape_mismatch", "targets");
    expect_error("softmax", "{" LOGITS ",\"labels\":[0,1],\"weight\":[1,2]}",
                 422, "shape_mismatch", "weight");
    expect_error("l_softmax",
                 "{\"features\":[[1,2]],\"weights\":[[1,2,3]],\"labels\":[0]}",
                 422, "shape_mismatch", "weights");
    expect_error("contrastive",
                 "{\"x1\":[[[1,2]],[[1,2,3]]],\"x2\":[[[1,2]],[[1,2]]],"
                 "\"labels\":[1]}",
                 422, "shape_mismatch", "x2[1]");
    expect_error("contrastive",
                 "{\"x1\":[[[1,2]]],\"x2\":[[1,2]],\"labels\":[1]}", 422,
                 "shape_mismatch", "x2");
}

Test(handler_errors, empty_batch)
{
    expect_error("softmax", "{\"logits\":[],\"labels\":[]}", 422, "empty_batch",
                 "logits");
    expect_error("gan", "{\"d_real\":[1],\"d_fake\":[]}", 422, "empty_batch",
                 "d_fake");
    expect_error("softmax", "{\"logits\":[[],[]],\"labels\":[0,0]}", 422,
                 "shape_mismatch", "logits");
    /* A layer of empty rows is named by its path. */
    expect_error("contrastive",
                 "{\"x1\":[[[1,2]],[[]]],\"x2\":[[[1,2]],[[]]],\"labels\":[1]}",
                 422, "shape_mismatch", "x1[1]");
}

Test(handler_errors, non_finite_numbers_with_their_paths)
{
    expect_error("softmax", "{\"logits\":[[1,2],[NaN,3]],\"labels\":[0,1]}",
                 422, "non_finite", "logits[1][0]");
    expect_error("softmax",
                 "{\"logits\":[[1,2],[3,Infinity]],\"labels\":[0,1]}", 422,
                 "non_finite", "logits[1][1]");
    expect_error("softmax",
                 "{\"logits\":[[1,2],[3,4]], \"labels\":[0,1],"
                 " \"label_smoothing\": -Infinity}",
                 422, "non_finite", "label_smoothing");
    expect_error("softmax", "{\"logits\":[[1e999,2]],\"labels\":[0]}", 422,
                 "non_finite", "logits[0][0]");
    expect_error("hinge", "{\"scores\":[1,-1e999],\"labels\":[1,1]}", 422,
                 "non_finite", "scores[1]");
    expect_error("hinge", "{\"scores\":[1],\"labels\":[1],\"margin\":1e400}",
                 422, "non_finite", "margin");
    expect_error(
        "softmax",
        "{\"logits\":[[1,2]],\"k\\\\\":\"],[\\\"{\",\"labels\":[0, NaN]}", 422,
        "non_finite", "labels[1]");
    expect_error("contrastive",
                 "{\"x1\":[[[1,2]],[[1,nan]]],\"x2\":[[[1,2]],[[1,2]]],"
                 "\"labels\":[1]}",
                 422, "non_finite", "x1[1][0][1]");
}

/* expect_error for an overflow, whose message must hold want. */
static void expect_overflow(const char *loss, const char *body,
                            const char *want)
{
    int status;
    cJSON *resp = run(loss, body, &status);
    const char *m = error_field(resp, "message");

    expect_error(loss, body, 422, "non_finite", NULL);
    cr_expect_eq(status, 422);
    cr_expect(m && strstr(m, want), "%s: message %s, want %s", body,
              m ? m : "(none)", want);
    cJSON_Delete(resp);
}

/* Finite inputs whose loss overflows double precision are the contract's
 * overflowing number, a 422, never a loss of null: a squared hinge past
 * DBL_MAX (the row named), a sum of finite per-sample losses (with and
 * without per_sample), distances of 1e200 (inf - inf), and smoothing over
 * logits DBL_MAX apart.  The plain label there is PyTorch's finite 0. */
Test(handler_errors, losses_that_overflow_are_422)
{
    cJSON *resp;

    expect_overflow("hinge", "{\"scores\":[0,1e200],\"labels\":[1,-1],\"p\":2}",
                    "The loss of row 1 overflows");
    expect_overflow("hinge",
                    "{\"scores\":[1e308,1e308],\"labels\":[-1,-1],"
                    "\"reduction\":\"sum\"}",
                    "The loss overflows");
    expect_overflow("hinge",
                    "{\"scores\":[1e308,1e308],\"labels\":[-1,-1],"
                    "\"reduction\":\"sum\",\"per_sample\":false}",
                    "The loss overflows");
    expect_overflow("triplet",
                    "{\"anchor\":[[1e200,0]],\"positive\":[[-1e200,0]],"
                    "\"negative\":[[0,0]],\"distance\":\"squared_euclidean\"}",
                    "row 0");
    expect_overflow("softmax",
                    "{\"logits\":[[1e308,-1e308]],\"labels\":[0],"
                    "\"label_smoothing\":0.1}",
                    "row 0");
    /* inf - inf between two distances past DBL_MAX: no silent 0 */
    expect_overflow(
        "coupled_cluster",
        "{\"positives\":[[1e200],[-1e200]],\"negatives\":[[1e200]]}", "row 0");
    expect_overflow("quadruplet",
                    "{\"anchor\":[[1e200]],\"positive\":[[-1e200]],"
                    "\"negative\":[[-1e200]],\"negative2\":[[1e200]]}",
                    "row 0");
    resp = run_ok("softmax", "{\"logits\":[[1e308,-1e308]],\"labels\":[0]}");
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(resp, "loss")));
    cr_expect_eq(cJSON_GetObjectItem(resp, "loss")->valuedouble, 0.0);
    cJSON_Delete(resp);
}

/* A gradient that overflows double precision is a 422 naming its element,
 * never a null, unless no gradient is asked for: eight features of 1.7e308
 * give weights[0] a true gradient of 1.3e309 under sum, with a finite loss
 * (8 (3.4 + log1p(e^-3.4))).  Values near DBL_MAX whose true gradient is
 * finite compute it: coupled_cluster's centre of 1e308s, a_softmax with
 * one class.  The divergences keep their documented null for an infinite
 * component. */
Test(handler_errors, gradients_that_overflow_are_422)
{
#define F8 "[1.7e308,0],[1.7e308,0],[1.7e308,0],[1.7e308,0]"
#define LS                                                                     \
    "\"features\":[" F8 "," F8 "],\"weights\":[[1e-308,0],[-1e-308,0]],"       \
    "\"labels\":[1,1,1,1,1,1,1,1],\"margin\":1,\"reduction\":\"sum\""
    cJSON *resp, *g;
    double want = 8.0 * (3.4 + log1p(exp(-3.4)));

    expect_error("l_softmax", "{" LS "}", 422, "non_finite", "weights[0][0]");
    resp = run_ok("l_softmax", "{\"gradients\":false," LS "}");
    cr_expect(fabs(cJSON_GetObjectItem(resp, "loss")->valuedouble - want) <
                  1e-6 * want,
              "loss %.9g, want %.9g",
              cJSON_GetObjectItem(resp, "loss")->valuedouble, want);
    cJSON_Delete(resp);
#undef LS
#undef F8
    resp = run_ok("coupled_cluster", "{\"positives\":[[1e308],[1e308]],"
                                     "\"negatives\":[[1e308],[1e308]]}");
    cr_expect_eq(cJSON_GetObjectItem(resp, "loss")->valuedouble, 0.5);
    g = cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "gradients"),
                            "positives");
    cr_expect_eq(cJSON_GetArrayItem(cJSON_GetArrayItem(g, 1), 0)->valuedouble,
                 0.0);
    cJSON_Delete(resp);
    resp = run_ok("a_softmax", "{\"features\":[[1e308]],\"weights\":[[1e308]],"
                               "\"labels\":[0]}");
    g = cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "gradients"), "weights");
    cr_expect_eq(cJSON_GetArrayItem(cJSON_GetArrayItem(g, 0), 0)->valuedouble,
                 0.0);
    cJSON_Delete(resp);
    resp = run_ok("kl", "{\"p\":[[1,0]],\"q\":[[1e-320,1]]}");
    g = cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "gradients"), "q");
    g = cJSON_GetArrayItem(cJSON_GetArrayItem(g, 0), 0);
    cr_expect(cJSON_IsNull(g), "kl: q's gradient at 1e-320 is not null");
    cJSON_Delete(resp);
}

Test(handler_errors, conflicting_alternatives)
{
    expect_error("softmax",
                 "{" LOGITS ",\"labels\":[0,1],\"targets\":[[1,0,0]"
                 ",[0,1,0]]}",
                 422, "conflicting_fields", "targets");
    expect_error("triplet",
                 "{\"anchor\":[[1]],\"positive\":[[1]],\"negative\":[[1]],"
                 "\"embeddings\":[[1]],\"labels\":[0]}",
                 422, "conflicting_fields", "embeddings");
    expect_error("triplet",
                 "{\"anchor\":[[1]],\"positive\":[[1]],\"negative\":[[1]],"
                 "\"mining\":\"batch_all\"}",
                 422, "conflicting_fields", "mining");
    expect_error("vae",
                 "{\"x\":[[1]],\"recon\":[[0.5]],\"recon_logits\":[[0]],"
                 "\"mu\":[[1]],\"logvar\":[[1]]}",
                 422, "conflicting_fields", "recon_logits");
    expect_error("hinge", "{\"scores\":[1],\"labels\":[1],\"scores\":[2]}", 422,
                 "conflicting_fields", "scores");
}

Test(handler_errors, bad_parameters)
{
    expect_error("multiclass_hinge",
                 "{\"scores\":[[1,2]],\"labels\":[0],\"variant\":\"ovr\"}", 422,
                 "bad_parameter", "variant");
    expect_error("softmax",
                 "{" LOGITS ",\"labels\":[0,1],\"reduction\":"
                 "\"avg\"}",
                 422, "bad_parameter", "reduction");
    expect_error("softmax",
                 "{" LOGITS ",\"labels\":[0,1],\"precision\":"
                 "\"float16\"}",
                 422, "bad_parameter", "precision");
    expect_error("kl", "{\"p\":[[0.5,0.5]],\"q\":[[0.5,0.5]],\"base\":1}", 422,
                 "bad_parameter", "base");
    expect_error("kl", "{\"p\":[[0.5,0.5]],\"q\":[[0.5,0.5]],\"base\":0}", 422,
                 "bad_parameter", "base");
    expect_error("hinge", "{\"scores\":[1],\"labels\":[1],\"p\":3}", 422,
                 "bad_parameter", "p");
}

Test(handler_errors, core_statuses_carry_their_paths)
{
    expect_error("softmax", "{" LOGITS ",\"labels\":[0,3]}", 422,
                 "label_out_of_range", "labels[1]");
    expect_error("kl",
                 "{\"p\":[[0.5,0.5],[0.5,0.6]],\"q\":[[0.5,0.5],[0.5,"
                 "0.5]]}",
                 422, "invalid_probability", "p[1]");
}

Test(handler_errors, invalid_json_and_nesting)
{
    int status;
    cJSON *resp =
        run("softmax", "{\"logits\": [[1,2]], \"labels\": [0,]}", &status);

    cr_expect_eq(status, 400);
    cr_expect_str_eq(error_field(resp, "code"), "invalid_json");
    cr_expect(strstr(error_field(resp, "message"), "byte 33") != NULL, "%s",
              error_field(resp, "message"));
    cJSON_Delete(resp);
    expect_error("softmax", "", 400, "invalid_json", NULL);
    expect_error("softmax", " \r\n", 400, "invalid_json", NULL);
    /* What cJSON reads but JSON is not: leading zeros, a point without
     * digits, a form feed as white space, a raw tab inside a string. */
    expect_error("hinge", "{\"scores\":[01],\"labels\":[1]}", 400,
                 "invalid_json", NULL);
    expect_error("hinge", "{\"scores\":[-1.],\"labels\":[1]}", 400,
                 "invalid_json", NULL);
    expect_error("hinge", "{\"scores\":[1.e5],\"labels\":[1]}", 400,
                 "invalid_json", NULL);
    expect_error("hinge", "{\"scores\":[1],\"labels\":[1]\f}", 400,
                 "invalid_json", NULL);
    expect_error("hinge",
                 "{\"scores\":[1],\"labels\":[1],\"reduction\":\"s\tum\"}", 400,
                 "invalid_json", NULL);
    /* The same numbers strict, beside an escape that sends the body to
     * cJSON: read. */
    resp = run_ok("hinge", "{\"scores\":[0.5e1,-0,1E+2,-2e-1],\"labels\":"
                           "[1,1,1,1],\"reduction\":\"su\\u006d\"}");
    cr_expect_eq(cJSON_GetObjectItem(resp, "loss")->valuedouble, 2.2);
    cJSON_Delete(resp);
    expect_error("softmax", "{" LOGITS ",\"labels\":[0,1]} {}", 400,
                 "invalid_json", NULL);
    expect_error("softmax", "{\"logits\":[[[[1]]]],\"labels\":[0]}", 422,
                 "shape_mismatch", "logits[0][0][0]");
    expect_error(
        "softmax",
        "{\"labels\":[0],\"x\":\"[[[[[[\",\"logits\":[[[[[[[[1]]]]]]]]}", 422,
        "shape_mismatch", "logits[0][0][0]");
    expect_error("softmax", "{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}", 422,
                 "unknown_field", "a");
    /* Objects, however deep, where arrays of numbers go: their type. */
    expect_error("softmax", "{\"logits\":{\"b\":{\"c\":{\"d\":{}}}}}", 400,
                 "wrong_type", "logits");
    expect_error("softmax",
                 "{\"logits\":[{\"b\":{\"c\":{\"d\":{}}}}],\"labels\":[0]}",
                 400, "wrong_type", "logits[0]");
    /* Too deep under a key the loss does not have: the key is the error. */
    expect_error("hinge", "{\"scores\":[1],\"labels\":[1],\"x\":[[[[1]]]]}",
                 422, "unknown_field", "x");
    /* Too deep under a field of one value, or as the body itself: the
     * type is the error, not the nesting. */
    expect_error("softmax",
                 "{" LOGITS ",\"labels\":[0,1],\"reduction\":[[[[\"sum\"]]]]}",
                 400, "wrong_type", "reduction");
    expect_error("softmax", "[[[[[[[[1]]]]]]]]", 400, "wrong_type", NULL);
    expect_error("nope", "{}", 404, "unknown_loss", NULL);
}

/* Too deep, and not JSON (unclosed, cut short, garbage after it, an error
 * before the deep part): not JSON is the error, not the depth.  A NaN
 * counts as a number there, as everywhere before its 422. */
Test(handler_errors, too_deep_and_not_json_is_invalid_json)
{
    static const char *const bodies[][2] = {
        {"softmax", "{\"logits\":[[[[[[[[1"},
        {"softmax", "{\"logits\":[[[[1]]]],\"labels\":[0]} x"},
        {"softmax", "{\"labels\":[0,],\"logits\":[[[[1]]]]}"},
        {"hinge", "{\"scores\":[1],\"labels\":[1],\"x\":[[[[1]]]}"},
        {"softmax", "[[[[[[[[1]]]]]]]"}};
    size_t i;

    for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        expect_error(bodies[i][0], bodies[i][1], 400, "invalid_json", NULL);
    expect_error("softmax", "{\"logits\":[[[[NaN]]]],\"labels\":[0]}", 422,
                 "shape_mismatch", "logits[0][0][0]");
}

/* U+0000 would cut a C string short: "p\u0000junk" must not be read as
 * p, nor "sum\u0000x" as sum.  An escaped backslash before u0000 is no
 * NUL, and other escapes still read as their characters. */
Test(handler_errors, nul_in_a_key_or_value_is_refused)
{
    static const char raw_key_body[] =
        "{\"scores\":[0],\"labels\":[1],\"p\0x\":2}";
    static const char raw_value_body[] =
        "{\"scores\":[0],\"labels\":[1],\"reduction\":\"sum\0x\"}";
    cJSON *resp;
    int status;

    expect_error("hinge", "{\"scores\":[0],\"labels\":[1],\"p\\u0000junk\":2}",
                 422, "unknown_field", "p\\u0000junk");
    expect_error(
        "hinge",
        "{\"scores\":[0],\"labels\":[1],\"reduction\":\"sum\\u0000x\"}", 422,
        "bad_parameter", "reduction");
    expect_error("hinge",
                 "{\"scores\":[0],\"labels\":[1],\"margin\":[\"\\u0000\"]}",
                 422, "bad_parameter", "margin[0]");
    expect_error("hinge",
                 "{\"scores\":[0],\"labels\":[1],\"x\":{\"a\\u0000\":1}}", 422,
                 "unknown_field", "x");
    /* An escaped quote is part of the name. */
    expect_error("hinge", "{\"scores\":[0],\"labels\":[1],\"m\\\"a\\u0000\":1}",
                 422, "unknown_field", "m\\\"a\\u0000");
    resp = run("hinge",
               "{\"scores\":[0],\"labels\":[1],\"reduction\":\"su\\\\u0000m\"}",
               &status);
    cr_expect_eq(status, 422);
    cr_expect(strstr(error_field(resp, "message"), "must be one of") != NULL,
              "%s", error_field(resp, "message"));
    cJSON_Delete(resp);
    /* A raw NUL byte (not JSON, yet cJSON reads it) is refused alike. */
    resp = run_n("hinge", raw_key_body, sizeof raw_key_body - 1, &status);
    cr_expect_eq(status, 422);
    cr_expect_str_eq(error_field(resp, "code"), "unknown_field");
    cr_expect_str_eq(error_field(resp, "field"), "p\\u0000x");
    cJSON_Delete(resp);
    resp = run_n("hinge", raw_value_body, sizeof raw_value_body - 1, &status);
    cr_expect_eq(status, 422);
    cr_expect_str_eq(error_field(resp, "field"), "reduction");
    cJSON_Delete(resp);
    resp = run_ok(
        "hinge", "{\"scores\":[0],\"labels\":[1],\"reduction\":\"su\\u006d\"}");
    cr_expect_eq(cJSON_GetObjectItem(resp, "loss")->valuedouble, 1.0);
    cJSON_Delete(resp);
}

Test(handler_errors, deep_nesting_is_cheap)
{
    size_t n = 1000000, i;
    char *body = malloc(2 * n + 16);
    srv_reply r;

    cr_assert_not_null(body);
    for (i = 0; i < n; i++) {
        body[i] = '[';
        body[n + i] = ']';
    }
    srv_loss_run("softmax", body, 2 * n, &r);
    cr_expect(r.status == 400 || r.status == 422);
    srv_reply_cleanup(&r);
    free(body);
}

/* ---- Responses ----------------------------------------------------------- */

Test(handler_responses, gradients_and_per_sample_can_be_omitted)
{
    cJSON *resp =
        run_ok("softmax", "{" LOGITS ",\"labels\":[0,1],"
                          "\"gradients\":false,\"per_sample\":false}");

    cr_expect_null(cJSON_GetObjectItem(resp, "gradients"));
    cr_expect_null(cJSON_GetObjectItem(resp, "per_sample"));
    cr_expect(cJSON_IsObject(cJSON_GetObjectItem(resp, "metrics")));
    cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(resp, "loss")));
    cJSON_Delete(resp);

    resp = run_ok("gan", "{\"d_real\":[1,2],\"d_fake\":[0.5],"
                         "\"gradients\":false}");
    cr_expect_null(cJSON_GetObjectItem(resp, "per_sample"));
    cr_expect_null(cJSON_GetObjectItem(resp, "gradients"));
    cr_expect(cJSON_IsNumber(
        cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "generator"), "loss")));
    cr_expect_null(cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "generator"),
                                       "gradients"));
    cJSON_Delete(resp);

    resp = run_ok("msml", "{\"embeddings\":[[0],[1],[3]],\"labels\":[0,0,1]}");
    cr_expect_null(cJSON_GetObjectItem(resp, "per_sample"));
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(resp, "metrics")), 0);
    cr_expect(cJSON_IsArray(cJSON_GetObjectItem(
        cJSON_GetObjectItem(resp, "gradients"), "embeddings")));
    cJSON_Delete(resp);
}

Test(handler_responses, gradients_keep_the_layered_shape)
{
    cJSON *resp =
        run_ok("contrastive", "{\"x1\":[[[1,2],[0,0]],[[1,2,3],[1,1,1]]],"
                              "\"x2\":[[[0,2],[0,1]],[[1,0,3],[1,1,0]]],"
                              "\"labels\":[1,0]}");
    const cJSON *g =
        cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "gradients"), "x2");
    char s[64];

    shape_of(g, s, sizeof s);
    cr_expect_str_eq(s, "[2][2][2]");
    cr_expect_eq(
        cJSON_GetArraySize(cJSON_GetArrayItem(cJSON_GetArrayItem(g, 1), 0)), 3);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(resp, "per_sample")),
                 2);
    cJSON_Delete(resp);
}

Test(handler_responses, float32_is_within_float_rounding)
{
#define F32_BODY                                                               \
    "{\"logits\":[[1.1,2.2,3.3e-7],[0.5,-1,2e12],[1e-30,1e30,0.3333]],"        \
    "\"labels\":[0,1,2]"
    const char *b32 = F32_BODY "}";
    const char *b64 = F32_BODY ",\"precision\":\"float64\"}";
    cJSON *r32, *r64;

    r32 = run_ok("softmax", b32);
    r64 = run_ok("softmax", b64);
    expect_close(r32, r64);
    cJSON_Delete(r32);
    cJSON_Delete(r64);
}

Test(handler_responses, infinite_metrics_are_null)
{
    cJSON *resp = run_ok("kl", "{\"p\":[[1,0]],\"q\":[[0.5,0.5]]}");
    const cJSON *m = cJSON_GetObjectItem(resp, "metrics");

    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(m, "kl_qp")));
    cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(m, "kl_pq")));
    cJSON_Delete(resp);
}

/* A softmax body of n rows of k logits, NUL-terminated, in a malloc'd
 * block of at least cap bytes. */
static char *softmax_body(size_t n, size_t k, size_t cap, size_t *len)
{
    size_t room = 64 + n * (k * 24 + 32), i, j, at;
    char *b = malloc(room > cap ? room : cap);
    uint64_t s = 5;

    cr_assert_not_null(b);
    at = (size_t)sprintf(b, "{\"logits\":[");
    for (i = 0; i < n; i++)
        for (j = 0; j < k; j++)
            at += (size_t)sprintf(b + at, "%s%.17g%s", j ? "" : "[",
                                  test_rand(&s, -3, 3),
                                  j + 1 < k   ? ","
                                  : i + 1 < n ? "],"
                                              : "]]");
    at += (size_t)sprintf(b + at, ",\"labels\":[");
    for (i = 0; i < n; i++)
        at += (size_t)sprintf(b + at, "%zu%s", i % k, i + 1 < n ? "," : "]}");
    *len = at;
    return b;
}

/* A body given to srv_loss_run_owned answers byte for byte as srv_loss_run
 * does, whether the body's block is large enough to hold the response
 * (float32: reused) or not (float64 digits, a block of just the body:
 * freed, a new one taken), and for errors; the sanitizer runs check that
 * each block is freed once. */
Test(handler_responses, owned_body_answers_as_a_borrowed_one)
{
    static const char *const tails[] = {"", "precision"};
    size_t len, cap, t;
    uintptr_t was;
    srv_reply want, got;
    char *body;

    for (t = 0; t < 2; t++) {
        body = softmax_body(300, 40, 0, &len);
        if (t == 1) { /* float64 answers need more room than the body */
            memcpy(body + len - 1, ",\"precision\":\"float64\"}", 24);
            len += 22;
        }
        cap = len + 1;
        was = (uintptr_t)body;
        srv_loss_run("softmax", body, len, &want);
        srv_loss_run_owned("softmax", body, len, cap, &got);
        cr_assert_eq(got.status, 200, "%s: %d", tails[t], got.status);
        if (t == 0)
            cr_expect_eq((uintptr_t)got.body, was, "the body's block is used");
        cr_assert_eq(got.len, want.len, "%s", tails[t]);
        cr_assert(memcmp(got.body, want.body, got.len) == 0, "%s", tails[t]);
        srv_reply_cleanup(&want);
        srv_reply_cleanup(&got);
    }
    body = malloc(8);
    cr_assert_not_null(body);
    memcpy(body, "{\"x\":1}", 7);
    srv_loss_run_owned("softmax", body, 7, 8, &got);
    cr_expect_eq(got.status, 422);
    srv_reply_cleanup(&got);
    body = malloc(8);
    cr_assert_not_null(body);
    srv_loss_run_owned("no_such_loss", body, 0, 8, &got);
    cr_expect_eq(got.status, 404);
    srv_reply_cleanup(&got);
}

/* ---- Number writer ------------------------------------------------------- */

static double written(double x, int f64)
{
    srv_buf b;
    double y;

    srv_buf_init(&b, 8);
    srv_buf_number(&b, x, f64);
    srv_buf_put(&b, "", 1);
    cr_assert(!b.oom);
    y = strtod(b.p, NULL);
    srv_buf_free(&b);
    return y;
}

static double random_double(uint64_t *s)
{
    double m = test_rand(s, -1, 1);
    int e = (int)test_rand(s, -330, 330);

    return ldexp(m, (int)((double)e * 3.3219));
}

Test(handler_numbers, float64_round_trips_exactly)
{
    uint64_t s = 42;
    size_t i;
    static const double special[] = {0.1,
                                     1.0 / 3,
                                     2.718281828459045,
                                     1e-320,
                                     5e-324,
                                     1.7976931348623157e308,
                                     -0.0,
                                     123456789012345678.0,
                                     9007199254740993.0};

    for (i = 0; i < sizeof special / sizeof special[0]; i++)
        cr_expect_eq(written(special[i], 1), special[i], "%.17g", special[i]);
    for (i = 0; i < 200000; i++) {
        double x = random_double(&s);
        if (isfinite(x))
            cr_expect_eq(written(x, 1), x, "%.17g", x);
    }
}

Test(handler_numbers, float64_round_trips_every_bit_pattern)
{
    uint64_t s = 99, bits;
    size_t i;
    double x;

    for (i = 0; i < 300000; i++) {
        test_rand(&s, 0, 1);
        bits = s * 2685821657736338717ULL;
        memcpy(&x, &bits, sizeof x);
        if (isfinite(x))
            cr_expect_eq(written(x, 1), x, "%a", x);
    }
}

static void expect_text(double x, int f64, const char *want)
{
    srv_buf b;

    srv_buf_init(&b, 8);
    srv_buf_number(&b, x, f64);
    srv_buf_put(&b, "", 1);
    cr_expect_str_eq(b.p, want, "%.17g written as %s, want %s", x, b.p, want);
    srv_buf_free(&b);
}

Test(handler_numbers, shortest_forms)
{
    expect_text(0.1, 1, "0.1");
    expect_text(1.0 / 3, 1, "0.3333333333333333");
    expect_text(9.999999999999999e22, 1, "9.999999999999999e+22");
    expect_text(-2.5e20, 1, "-2.5e+20");
    expect_text(1e-7, 1, "1e-7");
    expect_text(123.25, 1, "123.25");
    expect_text(-3, 1, "-3");
    expect_text(-0.0, 1, "0");
    expect_text(1.0 / 3, 0, "0.33333333");
    expect_text(2.718281828459045, 0, "2.7182818");
}

Test(handler_numbers, float32_within_6e_8)
{
    uint64_t s = 7;
    size_t i;
    static const double special[] = {0.1,
                                     1.0 / 3,
                                     9.9999999949999e5,
                                     0.99999999995,
                                     1e-5,
                                     9.99999995e-6,
                                     1e15,
                                     1e-320,
                                     5e-324,
                                     123456789.5,
                                     1.7976931348623157e308,
                                     -2.5e-7};

    for (i = 0; i < sizeof special / sizeof special[0]; i++) {
        double x = special[i];
        cr_expect(fabs(written(x, 0) - x) <= 6e-8 * fabs(x), "%.17g -> %.17g",
                  x, written(x, 0));
    }
    for (i = 0; i < 200000; i++) {
        double x = random_double(&s), y = written(x, 0);
        if (isfinite(x))
            cr_expect(fabs(y - x) <= 6e-8 * fabs(x), "%.17g -> %.17g", x, y);
    }
}

Test(handler_numbers, non_finite_is_null)
{
    srv_buf b;
    const double v[] = {NAN, INFINITY, -INFINITY, 1.5};

    srv_buf_init(&b, 4);
    srv_buf_numbers(&b, v, 4, 0);
    srv_buf_put(&b, "", 1);
    cr_expect_str_eq(b.p, "[null,null,null,1.5]");
    srv_buf_free(&b);
    srv_buf_init(&b, 4);
    srv_buf_string(&b, "a\"b\\c\n\x01");
    srv_buf_put(&b, "", 1);
    cr_expect_str_eq(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\"");
    srv_buf_free(&b);
}

/* ---- Catalog ------------------------------------------------------------- */

static const cJSON *param_of(const cJSON *entry, const char *name)
{
    const cJSON *p;

    cJSON_ArrayForEach(p, cJSON_GetObjectItem(entry, "parameters")) {
        if (strcmp(cJSON_GetObjectItem(p, "name")->valuestring, name) == 0)
            return p;
    }
    cr_assert_fail("parameter %s missing", name);
    return NULL;
}

static const cJSON *entry_of(const cJSON *cat, const char *name)
{
    const cJSON *e;

    cJSON_ArrayForEach(e, cJSON_GetObjectItem(cat, "losses")) {
        if (strcmp(cJSON_GetObjectItem(e, "name")->valuestring, name) == 0)
            return e;
    }
    cr_assert_fail("loss %s missing from the catalog", name);
    return NULL;
}

static void expect_default_num(const cJSON *cat, const char *loss,
                               const char *param, double want)
{
    const cJSON *d =
        cJSON_GetObjectItem(param_of(entry_of(cat, loss), param), "default");

    cr_expect(cJSON_IsNumber(d) && d->valuedouble == want, "%s.%s", loss,
              param);
}

static void expect_default_str(const cJSON *cat, const char *loss,
                               const char *param, const char *want)
{
    const cJSON *d =
        cJSON_GetObjectItem(param_of(entry_of(cat, loss), param), "default");

    cr_expect(cJSON_IsString(d) && strcmp(d->valuestring, want) == 0, "%s.%s",
              loss, param);
}

Test(handler_catalog, covers_every_loss_with_contract_defaults)
{
    static const char *const names[] = {"hinge",
                                        "multiclass_hinge",
                                        "softmax",
                                        "l_softmax",
                                        "a_softmax",
                                        "contrastive",
                                        "triplet",
                                        "coupled_cluster",
                                        "quadruplet",
                                        "msml",
                                        "kl",
                                        "js",
                                        "cross_entropy",
                                        "vae",
                                        "gan",
                                        "gaussian_kl"};
    size_t len, i;
    char *text = srv_catalog_json(NULL, &len);
    cJSON *cat = cJSON_ParseWithLength(text, len), *list;

    cr_assert_not_null(cat);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(cat, "losses")), 16);
    for (i = 0; i < 16; i++) {
        const cJSON *e = entry_of(cat, names[i]);
        cr_expect(srv_loss_exists(names[i]));
        cr_expect(strstr(srv_loss_names(), names[i]) != NULL);
        cr_expect(cJSON_IsString(cJSON_GetObjectItem(e, "summary")));
        cr_expect(cJSON_GetArraySize(cJSON_GetObjectItem(e, "inputs")) > 0);
        cr_expect(cJSON_IsObject(cJSON_GetObjectItem(e, "outputs")));
        expect_default_str(cat, names[i], "reduction", "mean");
        expect_default_str(cat, names[i], "precision", "float32");
    }
    expect_default_num(cat, "softmax", "ignore_index", -100);
    expect_default_num(cat, "softmax", "label_smoothing", 0);
    expect_default_num(cat, "l_softmax", "margin", 2);
    expect_default_num(cat, "a_softmax", "margin", 4);
    expect_default_num(cat, "hinge", "p", 1);
    expect_default_num(cat, "quadruplet", "margin2", 0.5);
    expect_default_num(cat, "kl", "base", exp(1.0));
    expect_default_num(cat, "vae", "beta", 1);
    expect_default_num(cat, "contrastive", "neg_margin", 1);
    expect_default_str(cat, "quadruplet", "distance", "squared_euclidean");
    expect_default_str(cat, "triplet", "distance", "euclidean");
    expect_default_str(cat, "triplet", "mining", "batch_hard");
    expect_default_str(cat, "multiclass_hinge", "variant", "one_vs_all");
    expect_default_str(cat, "contrastive", "variant", "seed");
    expect_default_str(cat, "gan", "input", "logits");
    expect_default_str(cat, "gan", "generator_loss", "non_saturating");
    expect_default_str(cat, "kl", "input", "probs");
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(
        cJSON_GetObjectItem(entry_of(cat, "msml"), "outputs"), "per_sample")));
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(
        param_of(entry_of(cat, "softmax"), "gradients"), "default")));
    cJSON_Delete(cat);
    free(text);

    text = srv_catalog_names_json(&len);
    list = cJSON_ParseWithLength(text, len);
    cr_assert(cJSON_IsArray(list));
    cr_expect_eq(cJSON_GetArraySize(list), 16);
    cJSON_Delete(list);
    free(text);
    cr_expect_null(srv_catalog_json("nope", &len));
    for (i = 0; i < srv_nlosses; i++) {
        size_t m = 0;
        while (srv_losses[i].metrics[m])
            m++;
        cr_expect(srv_losses[i].ninputs <= SRV_MAX_INPUTS);
        cr_expect(srv_losses[i].nparams <= SRV_MAX_PARAMS);
        cr_expect(m <= SRV_MAX_METRICS);
        cr_expect(srv_losses[i].ninputs + srv_losses[i].nparams +
                      srv_ncommon_params <=
                  32);
    }
    text = srv_catalog_json("gan", &len);
    cr_assert_not_null(text);
    free(text);
}

/* ---- Costs --------------------------------------------------------------- */

/* srv_request_cost of a valid body. */
static size_t cost_of(const char *loss, const char *body)
{
    srv_request rq;
    srv_fail f;
    size_t c;

    cr_assert_eq(
        srv_request_parse(srv_endpoint_find(loss), body, strlen(body), &rq, &f),
        0, "%s: %s", loss, f.message);
    c = srv_request_cost(&rq);
    srv_request_cleanup(&rq);
    return c;
}

Test(handler_cost, grows_with_the_work_not_the_body)
{
    static const char mined[] = "{\"embeddings\":[[1,2],[3,4],[5,6],[7,8],"
                                "[9,0]],\"labels\":[0,0,1,1,2],\"mining\":";
    char body[256];

    /* Linear losses: their input count. */
    cr_expect_eq(cost_of("softmax", "{\"logits\":[[1,2,3],[4,5,6]],"
                                    "\"labels\":[0,2]}"),
                 8);
    cr_expect_eq(cost_of("triplet", "{\"anchor\":[[1,2]],\"positive\":[[3,"
                                    "4]],\"negative\":[[5,6]]}"),
                 6);
    /* Mined triplets: every pair's distance (5 x 5 x 2), and batch_all a
     * bisection for each pair as well (5^2 times 3, the bits of 5), on top
     * of the 15 inputs. */
    snprintf(body, sizeof body, "%s\"batch_hard\"}", mined);
    cr_expect_eq(cost_of("triplet", body), 15 + 50);
    snprintf(body, sizeof body, "%s\"batch_all\"}", mined);
    cr_expect_eq(cost_of("triplet", body), 15 + 50 + 75);
    cr_expect_eq(cost_of("msml", "{\"embeddings\":[[1,2],[3,4],[5,6]],"
                                 "\"labels\":[0,0,1]}"),
                 9 + 18);
    /* Every feature row against every class row: N K D. */
    cr_expect_eq(cost_of("l_softmax", "{\"features\":[[1,2],[3,4]],"
                                      "\"weights\":[[1,0],[0,1],[1,1]],"
                                      "\"labels\":[0,2]}"),
                 12 + 2 * 3 * 2);
    cr_expect_eq(cost_of("divergence/samples",
                         "{\"p\":[1,2,3],\"q\":[4,5],\"method\":\"knn\"}"),
                 5 + 25);
}

Test(handler_cost, a_request_over_the_bound_is_left_parsed)
{
    static const char body[] = "{\"logits\":[[1,2,3],[4,5,6]],"
                               "\"labels\":[0,2]}";
    srv_reply r, direct;
    srv_parsed later;

    cr_assert_eq(
        srv_loss_run_within("softmax", body, sizeof body - 1, 7, &r, &later),
        -1);
    cr_expect_eq(later.rq.in[0].count, 6);
    cr_expect(later.parse_s > 0.0);
    /* Computed later, it answers what the whole run answers. */
    srv_parsed_run(&later, &r);
    srv_loss_run("softmax", body, sizeof body - 1, &direct);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(r.parse_s, later.parse_s);
    cr_assert_eq(r.len, direct.len);
    cr_expect_eq(memcmp(r.body, direct.body, r.len), 0);
    srv_reply_cleanup(&r);
    srv_reply_cleanup(&direct);
    cr_assert_eq(
        srv_loss_run_within("softmax", body, sizeof body - 1, 8, &r, &later),
        0);
    cr_expect_eq(r.status, 200);
    srv_reply_cleanup(&r);
    /* Errors are answered whatever the bound: they cost nothing to send. */
    cr_assert_eq(srv_loss_run_within("softmax", "{}", 2, 0, &r, &later), 0);
    cr_expect_eq(r.status, 422);
    srv_reply_cleanup(&r);
}
