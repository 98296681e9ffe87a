/* test_v2.c -- the Open Inference Protocol (KServe v2) against the real
 * daemon: every reference vector case sent as v2 JSON inputs and held to
 * the vector, binary tensors in both directions (FP32, FP64, INT64 labels)
 * against POST /loss/{name}, output selection, the id, the metadata and health
 * endpoints, API keys, metrics, and every malformed request. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "handler.h"
#include "harness.h"
#include "v2.h"
#include "vec.h"

TestSuite(v2, .timeout = 60);

/* ---- Helpers ------------------------------------------------------------- */

static void v2_post(unsigned port, const char *model, const char *ctype,
                    const char *body, size_t len, const char *const *headers,
                    hresp *r)
{
    char path[128];

    snprintf(path, sizeof path, "/v2/models/%s/infer", model);
    http_call(port, "POST", path, ctype, body, len, headers, r);
}

static void v2_post_json(unsigned port, const char *model, const char *body,
                         hresp *r)
{
    v2_post(port, model, "application/json", body, strlen(body), NULL, r);
}

/* Asserts a protocol error: {"error": "<message>"} with status, the
 * message holding want (may be NULL). */
static void expect_v2_error(const hresp *r, long status, const char *want)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->json, "error");

    cr_assert_eq(r->status, status, "status %ld, want %ld: %s", r->status,
                 status, r->body);
    cr_assert(cJSON_IsString(e), "no error string: %s", r->body);
    if (want != NULL)
        cr_assert_not_null(strstr(e->valuestring, want), "want '%s' in %s",
                           want, r->body);
}

static const cJSON *output(const cJSON *answer, const char *name)
{
    const cJSON *o;

    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(answer, "outputs")) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return o;
    }
    return NULL;
}

static size_t count_outputs(const cJSON *answer)
{
    return (size_t)cJSON_GetArraySize(
        cJSON_GetObjectItemCaseSensitive(answer, "outputs"));
}

/* The leaves of a nested array, in order, into x (up to cap). */
static size_t flatten(const cJSON *a, double *x, size_t cap, size_t at)
{
    const cJSON *e;

    if (!cJSON_IsArray(a)) {
        if (at < cap)
            x[at] = cJSON_IsNumber(a) ? a->valuedouble : NAN;
        return at + 1;
    }
    cJSON_ArrayForEach(e, a)
        at = flatten(e, x, cap, at);
    return at;
}

/* The shape of a rectangular nested array; 0 when it is ragged or not an
 * array of numbers. */
static int rect_shape(const cJSON *a, cJSON *shape)
{
    const cJSON *c = a;
    size_t prod = 1, n;

    while (cJSON_IsArray(c)) {
        n = (size_t)cJSON_GetArraySize(c);
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)n));
        prod *= n;
        c = c->child;
    }
    if (!cJSON_IsArray(a))
        return 0;
    n = flatten(a, NULL, 0, 0);
    return n == prod;
}

/* ---- Every reference vector through v2 ----------------------------------- */

/* The model's inputs: name -> "INT64" or "FP64", from its metadata. */
static cJSON *model_inputs(unsigned port, const char *model)
{
    char path[128];
    hresp r;
    cJSON *in;

    snprintf(path, sizeof path, "/v2/models/%s", model);
    http_get(port, path, &r);
    cr_assert_eq(r.status, 200, "%s: %s", path, r.body);
    in = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(r.json, "inputs"), 1);
    hresp_free(&r);
    return in;
}

static const char *input_dtype(const cJSON *inputs, const char *name)
{
    const cJSON *o;

    cJSON_ArrayForEach(o, inputs) {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(o, "name")->valuestring,
                   name) == 0)
            return cJSON_GetObjectItemCaseSensitive(o, "datatype")->valuestring;
    }
    return NULL;
}

/* The v2 form of a /loss request: its fields as inputs (flat data), the
 * rest as parameters; NULL when a field is ragged (no v2 shape). */
static char *v2_body(const cJSON *req, const cJSON *inputs)
{
    cJSON *body = cJSON_CreateObject(), *par = cJSON_CreateObject();
    cJSON *ins = cJSON_CreateArray();
    const cJSON *m;
    char *text = NULL;
    int ok = 1;

    cJSON_ArrayForEach(m, req) {
        const char *dt = input_dtype(inputs, m->string);
        cJSON *in, *shape;
        if (dt == NULL) {
            if (strcmp(m->string, "precision") != 0)
                cJSON_AddItemToObject(par, m->string, cJSON_Duplicate(m, 1));
            continue;
        }
        in = cJSON_CreateObject();
        shape = cJSON_CreateArray();
        ok &= rect_shape(m, shape);
        cJSON_AddStringToObject(in, "name", m->string);
        cJSON_AddStringToObject(in, "datatype", dt);
        cJSON_AddItemToObject(in, "shape", shape);
        cJSON_AddItemToObject(in, "data", cJSON_Duplicate(m, 1));
        cJSON_AddItemToArray(ins, in);
    }
    cJSON_AddStringToObject(par, "precision", "float64");
    cJSON_AddStringToObject(body, "id", "vector");
    cJSON_AddItemToObject(body, "parameters", par);
    cJSON_AddItemToObject(body, "inputs", ins);
    if (ok)
        text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    return text;
}

/* One expected value (number or nested array) against an output. */
static void expect_output(const cJSON *want, const cJSON *answer,
                          const char *name, const char *case_name)
{
    const cJSON *o = output(answer, name);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    size_t n = cJSON_IsArray(want) ? flatten(want, NULL, 0, 0) : 1;
    double *got = calloc(n + 1, sizeof *got);

    cr_assert_not_null(o, "%s: no output %s", case_name, name);
    cr_assert_eq((size_t)cJSON_GetArraySize(data), n, "%s: %s has %d values",
                 case_name, name, cJSON_GetArraySize(data));
    flatten(data, got, n, 0);
    if (cJSON_IsArray(want))
        vec_expect_array(want, got, n, case_name, name);
    else
        vec_expect_number(want, got[0], case_name, name);
    free(got);
}

static void expect_members(const cJSON *want, const cJSON *answer,
                           const char *prefix, const char *case_name)
{
    const cJSON *w;
    char name[96];

    cJSON_ArrayForEach(w, want) {
        snprintf(name, sizeof name, "%s%s", prefix, w->string);
        expect_output(w, answer, name, case_name);
    }
}

static void expect_vector(const cJSON *want, const cJSON *answer,
                          const char *case_name)
{
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(want, "per_sample");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(want, "generator");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(answer, "id");

    cr_expect(cJSON_IsString(id) && strcmp(id->valuestring, "vector") == 0,
              "%s: id not echoed", case_name);
    expect_output(cJSON_GetObjectItemCaseSensitive(want, "loss"), answer,
                  "loss", case_name);
    if (ps != NULL)
        expect_output(ps, answer, "per_sample", case_name);
    expect_members(cJSON_GetObjectItemCaseSensitive(want, "gradients"), answer,
                   "grad_", case_name);
    expect_members(cJSON_GetObjectItemCaseSensitive(want, "metrics"), answer,
                   "", case_name);
    if (gen != NULL) {
        expect_output(cJSON_GetObjectItemCaseSensitive(gen, "loss"), answer,
                      "generator_loss", case_name);
        expect_members(cJSON_GetObjectItemCaseSensitive(gen, "gradients"),
                       answer, "generator_grad_", case_name);
    }
}

/* Runs one case; returns 1 when it was sent. */
static int run_case(unsigned port, const cJSON *c, cJSON *models)
{
    const char *loss = cJSON_GetObjectItemCaseSensitive(c, "loss")->valuestring;
    const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(c, "error");
    cJSON *inputs = cJSON_GetObjectItemCaseSensitive(models, loss);
    char *body;
    hresp r;

    if (inputs == NULL) {
        inputs = model_inputs(port, loss);
        cJSON_AddItemToObject(models, loss, inputs);
    }
    body = v2_body(cJSON_GetObjectItemCaseSensitive(c, "request"), inputs);
    if (body == NULL)
        return 0;
    v2_post_json(port, loss, body, &r);
    if (err != NULL) {
        long want =
            (long)cJSON_GetObjectItemCaseSensitive(err, "status")->valuedouble;
        cr_expect_eq(r.status, want, "%s: status %ld, want %ld: %s", name,
                     r.status, want, r.body);
        cr_expect(
            cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r.json, "error")),
            "%s: %s", name, r.body);
    } else {
        cr_expect_eq(r.status, 200, "%s: %s", name, r.body);
        if (r.status == 200)
            expect_vector(cJSON_GetObjectItemCaseSensitive(c, "expected"),
                          r.json, name);
    }
    hresp_free(&r);
    free(body);
    return 1;
}

Test(v2, every_vector_case_as_json_inputs)
{
    char **families = vec_families(), **f;
    cJSON *models = cJSON_CreateObject(), *v;
    const cJSON *c;
    int sent = 0, skipped = 0;
    lossd d;

    lossd_start(&d, NULL);
    for (f = families; *f != NULL; f++) {
        v = vec_load(*f);
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(v, "cases")) {
            const cJSON *loss = cJSON_GetObjectItemCaseSensitive(c, "loss");
            if (strncmp(loss->valuestring, "divergence/", 11) == 0)
                continue; /* estimates are not models */
            if (run_case(d.port, c, models))
                sent++;
            else
                skipped++;
        }
        cJSON_Delete(v);
    }
    vec_families_free(families);
    cr_log_info("%d vector cases through v2 (%d ragged ones have no v2 shape)",
                sent, skipped);
    cr_assert_gt(sent, 100);
    cr_assert_eq(cJSON_GetArraySize(models), 16, "every loss is a model");
    cJSON_Delete(models);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* ---- Binary tensors ------------------------------------------------------ */

typedef struct binreq {
    char *p;
    size_t len, header;
} binreq;

static void bin_append(binreq *b, const void *data, size_t n)
{
    b->p = realloc(b->p, b->len + n + 1);
    cr_assert_not_null(b->p);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

/* The binary form of a v2 JSON request (from v2_body): every input's data
 * as FP64 or INT64 bytes after the header, every output asked for as
 * binary. */
static void binary_form(const char *json_body, binreq *b)
{
    cJSON *body = cJSON_Parse(json_body), *in;
    char *head;

    cJSON_ArrayForEach(in, cJSON_GetObjectItemCaseSensitive(body, "inputs")) {
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(in, "datatype");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(in, "data");
        size_t n = flatten(data, NULL, 0, 0), i;
        double *x = calloc(n + 1, sizeof *x);
        cJSON *par = cJSON_CreateObject();
        flatten(data, x, n, 0);
        for (i = 0; strcmp(dt->valuestring, "INT64") == 0 && i < n; i++) {
            int64_t v = (int64_t)x[i];
            memcpy(&x[i], &v, 8);
        }
        bin_append(b, x, n * 8); /* kept aside below, after the header */
        free(x);
        cJSON_AddNumberToObject(par, "binary_data_size", (double)(n * 8));
        cJSON_AddItemToObject(in, "parameters", par);
        cJSON_DeleteItemFromObjectCaseSensitive(in, "data");
    }
    cJSON_AddBoolToObject(cJSON_GetObjectItemCaseSensitive(body, "parameters"),
                          "binary_data_output", 1);
    head = cJSON_PrintUnformatted(body);
    b->header = strlen(head);
    /* The header goes first: move the tensors behind it. */
    b->p = realloc(b->p, b->len + b->header + 1);
    memmove(b->p + b->header, b->p, b->len);
    memcpy(b->p, head, b->header);
    b->len += b->header;
    free(head);
    cJSON_Delete(body);
}

/* The JSON form of a binary answer: each output's bytes as its "data". */
static cJSON *binary_to_json(const hresp *r)
{
    char v[32];
    size_t hl, at;
    cJSON *doc, *o;

    cr_assert_eq(
        hresp_header(r, "Inference-Header-Content-Length", v, sizeof v), 0,
        "no Inference-Header-Content-Length: %s", r->body);
    hl = (size_t)strtoull(v, NULL, 10);
    doc = cJSON_ParseWithLength(r->body, hl);
    cr_assert_not_null(doc);
    at = hl;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(doc, "outputs")) {
        cJSON *par = cJSON_GetObjectItemCaseSensitive(o, "parameters");
        size_t size = (size_t)cJSON_GetObjectItemCaseSensitive(
                          par, "binary_data_size")
                          ->valuedouble,
               i;
        cJSON *data = cJSON_CreateArray();
        cr_assert_leq(at + size, r->len, "binary outputs past the body");
        for (i = 0; i < size / 8; i++) {
            double x;
            memcpy(&x, r->body + at + 8 * i, 8);
            cJSON_AddItemToArray(data, isfinite(x) ? cJSON_CreateNumber(x)
                                                   : cJSON_CreateNull());
        }
        at += size;
        cJSON_AddItemToObject(o, "data", data);
    }
    cr_assert_eq(at, r->len, "binary sizes do not add up to the body");
    return doc;
}

/* The first valid case of every loss, with binary FP64 / INT64 inputs
 * and binary FP64 outputs, against the reference vector. */
Test(v2, every_family_through_binary_tensors)
{
    char **families = vec_families(), **f;
    cJSON *models = cJSON_CreateObject(), *done = cJSON_CreateObject();
    int losses = 0;
    lossd d;

    lossd_start(&d, NULL);
    for (f = families; *f != NULL; f++) {
        cJSON *v = vec_load(*f);
        const cJSON *c;

        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(v, "cases")) {
            const char *loss =
                cJSON_GetObjectItemCaseSensitive(c, "loss")->valuestring;
            const char *name =
                cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
            cJSON *inputs = cJSON_GetObjectItemCaseSensitive(models, loss);
            binreq b = {0};
            char *body, hl[64];
            const char *headers[] = {hl, NULL};
            cJSON *answer;
            hresp r;
            if (strncmp(loss, "divergence/", 11) == 0 ||
                cJSON_GetObjectItemCaseSensitive(c, "error") != NULL ||
                cJSON_GetObjectItemCaseSensitive(done, loss) != NULL)
                continue;
            if (inputs == NULL) {
                inputs = model_inputs(d.port, loss);
                cJSON_AddItemToObject(models, loss, inputs);
            }
            body =
                v2_body(cJSON_GetObjectItemCaseSensitive(c, "request"), inputs);
            if (body == NULL)
                continue;
            binary_form(body, &b);
            snprintf(hl, sizeof hl, "Inference-Header-Content-Length: %zu",
                     b.header);
            v2_post(d.port, loss, "application/octet-stream", b.p, b.len,
                    headers, &r);
            cr_assert_eq(r.status, 200, "%s: %s", name, r.body);
            answer = binary_to_json(&r);
            expect_vector(cJSON_GetObjectItemCaseSensitive(c, "expected"),
                          answer, name);
            cJSON_Delete(answer);
            hresp_free(&r);
            free(body);
            free(b.p);
            cJSON_AddTrueToObject(done, loss);
            losses++;
        }
        cJSON_Delete(v);
    }
    vec_families_free(families);
    cr_log_info("%d losses through binary tensors", losses);
    cr_assert_eq(losses, 16, "every loss once");
    cJSON_Delete(models);
    cJSON_Delete(done);
    cr_assert_eq(lossd_stop(&d), 0);
}

static void put_f32(binreq *b, const double *x, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        float f = (float)x[i];
        bin_append(b, &f, 4); /* the tests run on little-endian hosts */
    }
}

static void put_f64(binreq *b, const double *x, size_t n)
{
    bin_append(b, x, n * 8);
}

static void put_i64(binreq *b, const int64_t *x, size_t n)
{
    bin_append(b, x, n * 8);
}

static void bin_post(unsigned port, const char *model, const binreq *b,
                     hresp *r)
{
    char hl[64];
    const char *headers[] = {hl, NULL};

    snprintf(hl, sizeof hl, "Inference-Header-Content-Length: %zu", b->header);
    v2_post(port, model, "application/octet-stream", b->p, b->len, headers, r);
}

/* The answer's JSON header (by Inference-Header-Content-Length) and where
 * its binary section starts. */
static cJSON *bin_answer(const hresp *r, const char **bin, size_t *binlen)
{
    char v[32];
    size_t hl;

    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_eq(
        hresp_header(r, "Inference-Header-Content-Length", v, sizeof v), 0,
        "no Inference-Header-Content-Length");
    hl = (size_t)strtoull(v, NULL, 10);
    cr_assert_leq(hl, r->len);
    *bin = r->body + hl;
    *binlen = r->len - hl;
    return cJSON_ParseWithLength(r->body, hl);
}

/* The doubles of the float64 /loss answer's member path ("loss",
 * "gradients.logits"...) into x. */
static size_t loss_values(const cJSON *ans, const char *a, const char *b,
                          double *x, size_t cap)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(ans, a);

    if (b != NULL)
        m = cJSON_GetObjectItemCaseSensitive(m, b);
    cr_assert_not_null(m, "%s.%s missing", a, b ? b : "");
    return flatten(m, x, cap, 0);
}

/* [[x, ...], ...] with every double exact (cJSON's printer may drop the
 * last bit). */
static char *rows_text(const double *x, size_t n, size_t k)
{
    char *t = malloc(n * k * 26 + 2 * n + 3), *at = t;
    size_t i, j;

    *at++ = '[';
    for (i = 0; i < n; i++) {
        *at++ = i ? ',' : '[';
        if (i)
            *at++ = '[';
        for (j = 0; j < k; j++)
            at += sprintf(at, "%s%.17g", j ? "," : "", x[i * k + j]);
        *at++ = ']';
    }
    *at++ = ']';
    *at = '\0';
    return t;
}

static void rand_fill(uint64_t *s, double *x, size_t n)
{
    test_rand_fill(s, x, n, -3, 3);
}

Test(v2, softmax_fp32_binary_both_ways_matches_loss_endpoint)
{
    enum { N = 40, K = 7 };
    static double logits[N * K], want[N * K + 8];
    int64_t labels[N];
    uint64_t seed = 11;
    binreq b = {0};
    char head[512], *body;
    const char *bin;
    size_t i, binlen, n;
    cJSON *h, *ans;
    hresp r, l;
    lossd d;

    rand_fill(&seed, logits, N * K);
    for (i = 0; i < N; i++)
        labels[i] = (int64_t)(i % K);
    lossd_start(&d, NULL);
    snprintf(head, sizeof head,
             "{\"id\":\"b1\",\"parameters\":{\"binary_data_output\":true},"
             "\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\","
             "\"shape\":[%d,%d],\"parameters\":{\"binary_data_size\":%d}},"
             "{\"name\":\"labels\",\"datatype\":\"INT64\",\"shape\":[%d],"
             "\"parameters\":{\"binary_data_size\":%d}}],"
             "\"outputs\":[{\"name\":\"loss\"},{\"name\":\"grad_logits\"},"
             "{\"name\":\"accuracy\",\"parameters\":{\"binary_data\":false}}]}",
             N, K, N * K * 4, N, N * 8);
    bin_append(&b, head, strlen(head));
    b.header = b.len;
    put_f32(&b, logits, N * K);
    put_i64(&b, labels, N);
    bin_post(d.port, "softmax", &b, &r);
    h = bin_answer(&r, &bin, &binlen);
    cr_assert_not_null(h);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(h, "id")->valuestring,
                     "b1");
    cr_assert_eq(count_outputs(h), 3);
    cr_assert_eq(binlen, 4 + N * K * 4, "binary section %zu bytes", binlen);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(
                     cJSON_GetObjectItemCaseSensitive(output(h, "grad_logits"),
                                                      "parameters"),
                     "binary_data_size")
                     ->valueint,
                 N * K * 4);
    cr_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(output(h, "loss"), "datatype")
            ->valuestring,
        "FP32");
    /* The same request on /loss in float64, with the logits as the FP32
     * values the binary carried. */
    for (i = 0; i < N * K; i++)
        logits[i] = (float)logits[i];
    {
        cJSON *req = cJSON_CreateObject(), *rows = cJSON_CreateArray();
        for (i = 0; i < N; i++)
            cJSON_AddItemToArray(rows,
                                 cJSON_CreateDoubleArray(logits + i * K, K));
        cJSON_AddItemToObject(req, "logits", rows);
        rows = cJSON_CreateArray();
        for (i = 0; i < N; i++)
            cJSON_AddItemToArray(rows, cJSON_CreateNumber((double)labels[i]));
        cJSON_AddItemToObject(req, "labels", rows);
        cJSON_AddStringToObject(req, "precision", "float64");
        body = cJSON_PrintUnformatted(req);
        cJSON_Delete(req);
    }
    http_post_json(d.port, "softmax", body, &l);
    cr_assert_eq(l.status, 200, "%s", l.body);
    ans = l.json;
    n = loss_values(ans, "loss", NULL, want, 1);
    {
        float f;
        memcpy(&f, bin, 4);
        cr_assert_eq(f, (float)want[0], "loss %.9g, want %.9g", (double)f,
                     want[0]);
    }
    n = loss_values(ans, "gradients", "logits", want, N * K);
    cr_assert_eq(n, (size_t)N * K);
    for (i = 0; i < n; i++) {
        float f;
        memcpy(&f, bin + 4 + 4 * i, 4);
        cr_assert_eq(f, (float)want[i], "grad[%zu] %.9g, want %.9g", i,
                     (double)f, want[i]);
    }
    {
        const cJSON *acc = cJSON_GetArrayItem(
            cJSON_GetObjectItemCaseSensitive(output(h, "accuracy"), "data"), 0);
        loss_values(ans, "metrics", "accuracy", want, 1);
        cr_assert(fabs(acc->valuedouble - want[0]) <= 1e-7 * fabs(want[0]));
    }
    cJSON_Delete(h);
    hresp_free(&r);
    hresp_free(&l);
    free(body);
    free(b.p);
    cr_assert_eq(lossd_stop(&d), 0);
}

Test(v2, triplet_fp64_binary_both_ways_is_exact)
{
    enum { N = 16, D = 5 };
    static double a[N * D], p[N * D], ng[N * D], want[N * D];
    const char *names[] = {"anchor", "positive", "negative"};
    double *xs[] = {a, p, ng};
    uint64_t seed = 5;
    binreq b = {0};
    char head[1024], *body, *rows[3];
    const char *bin;
    size_t i, binlen;
    cJSON *h;
    hresp r, l;
    lossd d;

    for (i = 0; i < 3; i++)
        rand_fill(&seed, xs[i], N * D);
    lossd_start(&d, NULL);
    snprintf(head, sizeof head,
             "{\"parameters\":{\"precision\":\"float64\",\"margin\":2,"
             "\"binary_data_output\":true},\"inputs\":["
             "{\"name\":\"anchor\",\"datatype\":\"FP64\",\"shape\":[%d,%d],"
             "\"parameters\":{\"binary_data_size\":%d}},"
             "{\"name\":\"positive\",\"datatype\":\"FP64\",\"shape\":[%d,%d],"
             "\"parameters\":{\"binary_data_size\":%d}},"
             "{\"name\":\"negative\",\"datatype\":\"FP64\",\"shape\":[%d,%d],"
             "\"parameters\":{\"binary_data_size\":%d}}]}",
             N, D, N * D * 8, N, D, N * D * 8, N, D, N * D * 8);
    bin_append(&b, head, strlen(head));
    b.header = b.len;
    for (i = 0; i < 3; i++)
        put_f64(&b, xs[i], N * D);
    bin_post(d.port, "triplet", &b, &r);
    h = bin_answer(&r, &bin, &binlen);
    cr_assert_not_null(h);
    /* loss, per_sample, three gradients, the two metrics: all binary. */
    cr_assert_eq(count_outputs(h), 7, "%s", cJSON_PrintUnformatted(h));
    cr_assert_eq(binlen, 8 * (1 + N + 3 * N * D + 2));
    cr_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(output(h, "grad_anchor"), "datatype")
            ->valuestring,
        "FP64");
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(h, "id"));
    for (i = 0; i < 3; i++)
        rows[i] = rows_text(xs[i], N, D);
    body = malloc(strlen(rows[0]) * 3 + 256);
    sprintf(body,
            "{\"anchor\":%s,\"positive\":%s,\"negative\":%s,\"margin\":2,"
            "\"precision\":\"float64\"}",
            rows[0], rows[1], rows[2]);
    http_post_json(d.port, "triplet", body, &l);
    cr_assert_eq(l.status, 200, "%s", l.body);
    loss_values(l.json, "loss", NULL, want, 1);
    cr_assert_eq(memcmp(bin, want, 8), 0, "loss differs");
    loss_values(l.json, "per_sample", NULL, want, N);
    for (i = 0; i < N; i++) {
        double x;
        memcpy(&x, bin + 8 + 8 * i, 8);
        cr_assert_eq(x, want[i], "per_sample[%zu] %.17g, want %.17g", i, x,
                     want[i]);
    }
    for (i = 0; i < 3; i++) {
        loss_values(l.json, "gradients", names[i], want, N * D);
        cr_assert_eq(memcmp(bin + 8 + 8 * N + i * 8 * N * D, want, 8 * N * D),
                     0, "grad_%s differs", names[i]);
    }
    for (i = 0; i < 3; i++)
        free(rows[i]);
    free(body);
    cJSON_Delete(h);
    hresp_free(&r);
    hresp_free(&l);
    free(b.p);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* Binary inputs with a JSON answer, INT32 labels given as JSON, and FP32
 * answers written as JSON numbers within float32 rounding. */
Test(v2, binary_in_json_out_and_fp32_json)
{
    static const double logits[6] = {1, 2, 3, 0.5, 0.1, -1};
    const int64_t labels[2] = {2, 0};
    binreq b = {0};
    const char *head =
        "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP64\",\"shape\":"
        "[2,3],\"parameters\":{\"binary_data_size\":48}},{\"name\":\"labels\","
        "\"datatype\":\"INT64\",\"shape\":[2],\"parameters\":"
        "{\"binary_data_size\":16}}]}";
    const cJSON *loss;
    char v[32];
    hresp r, j;
    lossd d;

    lossd_start(&d, NULL);
    bin_append(&b, head, strlen(head));
    b.header = b.len;
    put_f64(&b, logits, 6);
    put_i64(&b, labels, 2);
    bin_post(d.port, "softmax", &b, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_neq(
        hresp_header(&r, "Inference-Header-Content-Length", v, sizeof v), 0,
        "a JSON answer carries no header length");
    loss = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(output(r.json, "loss"), "data"), 0);
    cr_assert(fabs(loss->valuedouble - 0.52300331761127204) < 1e-7, "%s",
              r.body);
    v2_post_json(d.port, "softmax",
                 "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\","
                 "\"shape\":[2,3],\"data\":[[1,2,3],[0.5,0.1,-1]]},"
                 "{\"name\":\"labels\",\"datatype\":\"INT32\",\"shape\":[2],"
                 "\"data\":[2,0]}]}",
                 &j);
    cr_assert_eq(j.status, 200, "%s", j.body);
    cr_assert_eq(count_outputs(j.json), 5, "%s", j.body);
    cr_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(output(j.json, "loss"), "datatype")
            ->valuestring,
        "FP32");
    hresp_free(&r);
    hresp_free(&j);
    free(b.p);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* ---- Outputs, parameters and the id -------------------------------------- */

#define SMALL_INPUTS                                                           \
    "\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP64\",\"shape\":[2,3],"  \
    "\"data\":[1,2,3,0.5,0.1,-1]},{\"name\":\"labels\",\"datatype\":"          \
    "\"INT64\","                                                               \
    "\"shape\":[2],\"data\":[2,0]}]"

Test(v2, outputs_selection_parameters_and_id)
{
    hresp r;
    lossd d;

    lossd_start(&d, NULL);
    v2_post_json(d.port, "softmax",
                 "{\"id\":\"abc-1\",\"outputs\":[{\"name\":\"accuracy\"},"
                 "{\"name\":\"loss\"}]," SMALL_INPUTS "}",
                 &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(r.json, "id")->valuestring, "abc-1");
    cr_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(r.json, "model_name")->valuestring,
        "softmax");
    cr_assert_eq(count_outputs(r.json), 2, "%s", r.body);
    cr_assert_not_null(output(r.json, "loss"));
    cr_assert_not_null(output(r.json, "accuracy"));
    hresp_free(&r);
    /* gradients=false and reduction=sum through parameters. */
    v2_post_json(
        d.port, "softmax",
        "{\"parameters\":{\"gradients\":false,\"reduction\":\"sum\","
        "\"precision\":\"float64\",\"label_smoothing\":0}," SMALL_INPUTS "}",
        &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_null(output(r.json, "grad_logits"));
    cr_assert_not_null(output(r.json, "per_sample"));
    cr_assert_float_eq(
        cJSON_GetArrayItem(
            cJSON_GetObjectItemCaseSensitive(output(r.json, "loss"), "data"), 0)
            ->valuedouble,
        1.0460066352225441, 1e-15);
    hresp_free(&r);
    /* gan's generator block as outputs. */
    v2_post_json(d.port, "gan",
                 "{\"outputs\":[{\"name\":\"generator_loss\"},"
                 "{\"name\":\"generator_grad_d_fake\"}],\"inputs\":["
                 "{\"name\":\"d_real\",\"datatype\":\"FP32\",\"shape\":[2],"
                 "\"data\":[1,2]},{\"name\":\"d_fake\",\"datatype\":\"FP32\","
                 "\"shape\":[3],\"data\":[0,-1,0.5]}]}",
                 &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(count_outputs(r.json), 2, "%s", r.body);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                     output(r.json, "generator_grad_d_fake"), "data")),
                 3);
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* contrastive's layered inputs as [L][N][D] and [N][D]. */
Test(v2, layered_inputs)
{
    hresp r;
    lossd d;

    lossd_start(&d, NULL);
    v2_post_json(
        d.port, "contrastive",
        "{\"inputs\":[{\"name\":\"x1\",\"datatype\":\"FP64\",\"shape\":"
        "[2,2,1],\"data\":[1,2,3,4]},{\"name\":\"x2\",\"datatype\":\"FP64\","
        "\"shape\":[2,2,1],\"data\":[1,1,1,1]},{\"name\":\"labels\","
        "\"datatype\":\"INT64\",\"shape\":[2],\"data\":[1,0]}]}",
        &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                     output(r.json, "grad_x1"), "shape")),
                 3, "%s", r.body);
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* ---- Metadata, health, keys and metrics ---------------------------------- */

Test(v2, metadata_and_health)
{
    const cJSON *ext, *in;
    char allow[64];
    hresp r;
    lossd d;

    lossd_start(&d, NULL);
    http_get(d.port, "/v2", &r);
    cr_assert_eq(r.status, 200);
    ext = cJSON_GetObjectItemCaseSensitive(r.json, "extensions");
    cr_assert_str_eq(cJSON_GetArrayItem(ext, 0)->valuestring,
                     "binary_tensor_data");
    cr_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(r.json, "name")->valuestring, "lossd");
    hresp_free(&r);
    http_get(d.port, "/v2/health/live", &r);
    cr_assert_eq(r.status, 200);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "live")));
    hresp_free(&r);
    http_get(d.port, "/v2/health/ready", &r);
    cr_assert_eq(r.status, 200);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "ready")));
    hresp_free(&r);
    http_get(d.port, "/v2/models/multiclass_hinge", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    in = cJSON_GetObjectItemCaseSensitive(r.json, "inputs");
    cr_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(in, 1), "datatype")
            ->valuestring,
        "INT64");
    cr_assert_eq(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                                        cJSON_GetArrayItem(in, 0), "shape"),
                                    1)
                     ->valueint,
                 -1);
    cr_assert_not_null(strstr(r.body, "\"grad_scores\""));
    cr_assert_not_null(strstr(r.body, "\"accuracy\""));
    hresp_free(&r);
    http_get(d.port, "/v2/models/softmax/ready", &r);
    cr_assert_eq(r.status, 200);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "ready")));
    hresp_free(&r);
    http_get(d.port, "/v2/models/nope", &r);
    expect_v2_error(&r, 404, "no model named 'nope'");
    hresp_free(&r);
    http_get(d.port, "/v2/models/nope/infer", &r);
    expect_v2_error(&r, 404, "nope");
    hresp_free(&r);
    http_get(d.port, "/v2/elsewhere", &r);
    expect_v2_error(&r, 404, "No endpoint");
    hresp_free(&r);
    http_get(d.port, "/v2/models/softmax/infer", &r);
    expect_v2_error(&r, 405, NULL);
    cr_assert_eq(hresp_header(&r, "Allow", allow, sizeof allow), 0);
    cr_assert_str_eq(allow, "POST");
    hresp_free(&r);
    http_call(d.port, "POST", "/v2/models/softmax", "application/json", "{}", 2,
              NULL, &r);
    expect_v2_error(&r, 405, NULL);
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
}

Test(v2, api_keys_guard_infer_and_metrics_count_v2)
{
    char path[] = "/tmp/lossd-v2keys-XXXXXX";
    const char *args[] = {"--api-keys-file", path, NULL};
    const char *key[] = {"Authorization: Bearer k-123", NULL};
    const char *body = "{" SMALL_INPUTS "}";
    char www[64];
    int fd = mkstemp(path), tries;
    double counted;
    lossd d;
    hresp r;

    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "k-123\n", 6), 6);
    close(fd);
    lossd_start(&d, args);
    v2_post_json(d.port, "softmax", body, &r);
    expect_v2_error(&r, 401, "API key");
    cr_assert_eq(hresp_header(&r, "WWW-Authenticate", www, sizeof www), 0);
    hresp_free(&r);
    v2_post_json(d.port, "nope", body, &r); /* no hint without a key */
    expect_v2_error(&r, 401, NULL);
    hresp_free(&r);
    http_get(d.port, "/v2/models/softmax", &r); /* metadata stays open */
    cr_assert_eq(r.status, 200);
    hresp_free(&r);
    v2_post(d.port, "softmax", "application/json", body, strlen(body), key, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
    /* A request is counted when its connection completes, which can trail
     * its response: look again for up to a second. */
    for (tries = 0;; tries++) {
        http_get(d.port, "/metrics", &r);
        counted = metric_value(r.body, "lossd_requests_total{loss=\"softmax\","
                                       "status=\"200\"}");
        hresp_free(&r);
        if (counted == 1.0 || tries == 100)
            break;
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    cr_assert_eq(counted, 1.0, "v2 requests are counted by loss");
    /* Refusals by their code, though v2 bodies do not carry it. */
    cr_expect_eq(metric_until(d.port,
                              "lossd_rejected_total{reason=\"unauthorized\"}",
                              2),
                 2.0);
    v2_post(d.port, "softmax", "application/json", "{\"inputz\":[]}", 13, key,
            &r);
    cr_assert_eq(r.status, 422, "%s", r.body);
    hresp_free(&r);
    cr_expect_eq(metric_until(d.port,
                              "lossd_rejected_total{reason=\"unknown_field\"}",
                              1),
                 1.0);
    cr_expect_eq(
        metric_scrape(d.port, "lossd_rejected_total{reason=\"other\"}"), 0.0);
    cr_assert_eq(lossd_stop(&d), 0);
    unlink(path);
}

/* ---- Malformed requests -------------------------------------------------- */

/* A binary softmax request whose JSON header is head with its '@'
 * replaced by size (the logits' binary_data_size), followed by nbytes of
 * binary data. */
static void bin_case(unsigned port, const char *head, int size, size_t nbytes,
                     const char *header_value, long status, const char *want)
{
    char h[1024], hl[96];
    const char *headers[] = {hl, NULL};
    binreq b = {0};
    hresp r;
    char *zeros = calloc(nbytes + 1, 1);

    const char *at = strchr(head, '@');

    snprintf(h, sizeof h, "%.*s%d%s", (int)(at - head), head, size, at + 1);
    bin_append(&b, h, strlen(h));
    bin_append(&b, zeros, nbytes);
    if (header_value != NULL)
        snprintf(hl, sizeof hl, "Inference-Header-Content-Length: %s",
                 header_value);
    else
        snprintf(hl, sizeof hl, "Inference-Header-Content-Length: %zu",
                 strlen(h));
    v2_post(port, "softmax", "application/octet-stream", b.p, b.len, headers,
            &r);
    expect_v2_error(&r, status, want);
    hresp_free(&r);
    free(zeros);
    free(b.p);
}

#define BIN_HEAD                                                               \
    "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":"       \
    "[2,3],\"parameters\":{\"binary_data_size\":@}},{\"name\":\"labels\","     \
    "\"datatype\":\"INT32\",\"shape\":[2],\"data\":[0,1]}]}"

Test(v2, malformed_binary_requests_are_400)
{
    binreq b = {0};
    char h[512];
    hresp r;
    lossd d;

    lossd_start(&d, NULL);
    /* The well-formed request, for reference. */
    {
        const char *at = strchr(BIN_HEAD, '@');
        snprintf(h, sizeof h, "%.*s24%s", (int)(at - BIN_HEAD), BIN_HEAD,
                 at + 1);
    }
    bin_append(&b, h, strlen(h));
    b.header = b.len;
    put_f32(&b, (const double[]){1, 2, 3, 4, 5, 6}, 6);
    bin_post(d.port, "softmax", &b, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
    free(b.p);
    bin_case(d.port, BIN_HEAD, 48, 48, NULL, 400,
             "binary_data_size must be 24");
    bin_case(d.port, BIN_HEAD, 20, 20, NULL, 400,
             "binary_data_size must be 24");
    bin_case(d.port, BIN_HEAD, -4, 0, NULL, 400, "binary_data_size must be 24");
    bin_case(d.port, BIN_HEAD, 24, 10, NULL, 400, "run past the end");
    bin_case(d.port, BIN_HEAD, 24, 30, NULL, 400, "add up to 24");
    bin_case(d.port, BIN_HEAD, 24, 24, "999999", 400,
             "Inference-Header-Content-Length");
    bin_case(d.port, BIN_HEAD, 24, 24, "12abc", 400,
             "Inference-Header-Content-Length");
    bin_case(d.port, BIN_HEAD, 24, 24, "-5", 400,
             "Inference-Header-Content-Length");
    bin_case(d.port, BIN_HEAD, 24, 24, "10", 400, "not valid JSON");
    bin_case(
        d.port,
        "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":"
        "[2,3],\"data\":[1,2,3,4,5,6],\"parameters\":{\"binary_data_size\":"
        "@}}]}",
        24, 24, NULL, 400, "exactly one of data");
    /* Shapes so large that their byte count overflows. */
    bin_case(
        d.port,
        "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP64\",\"shape\":"
        "[4294967296,4294967296],\"parameters\":{\"binary_data_size\":@}}"
        "]}",
        8, 8, NULL, 400, "too many elements");
    cr_assert_eq(lossd_stop(&d), 0);
}

/* A JSON request and the error it must get. */
static void json_case(unsigned port, const char *model, const char *body,
                      long status, const char *want)
{
    hresp r;

    v2_post_json(port, model, body, &r);
    expect_v2_error(&r, status, want);
    hresp_free(&r);
}

#define LOGITS                                                                 \
    "{\"name\":\"logits\",\"datatype\":\"FP64\",\"shape\":[2,3],\"data\":"     \
    "[1,2,3,4,5,6]}"
#define LABELS_AS(type, d)                                                     \
    "{\"name\":\"labels\",\"datatype\":\"" type "\",\"shape\":[2],\"data\":" d \
    "}"
#define LABELS(d) LABELS_AS("INT64", d)

/* A header nested 1,500 levels deep, past cJSON's 1,000: its depth is the
 * error when it is JSON, and not JSON when it is cut short.  A lone
 * surrogate, which cJSON refuses at any depth, stays "not valid JSON". */
Test(v2, nesting_past_the_parsers_limit)
{
    const char *head = "{\"inputs\":[{\"name\":\"logits\",\"datatype\":"
                       "\"FP64\",\"shape\":[1,2],\"data\":";
    size_t n = 1500, h = strlen(head);
    char *body = malloc(h + 2 * n + 8);
    lossd d;

    cr_assert_not_null(body);
    memcpy(body, head, h);
    memset(body + h, '[', n);
    memset(body + h + n, ']', n);
    memcpy(body + h + 2 * n, "}]}", 4);
    lossd_start(&d, NULL);
    json_case(d.port, "softmax", body, 422, "nested more than 1000 levels");
    body[h + 2 * n] = '\0'; /* unclosed */
    json_case(d.port, "softmax", body, 400, "not valid JSON");
    json_case(d.port, "softmax", "{\"inputs\":[" LOGITS "],\"id\":\"\\uD800\"}",
              400, "not valid JSON");
    cr_assert_eq(lossd_stop(&d), 0);
    free(body);
}

Test(v2, every_request_error)
{
    static const char nul_tail[] =
        "{\"inputs\":[" LOGITS "," LABELS("[0,1]") "]}\0\0";
    const char *nan_head =
        "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP64\",\"shape\":"
        "[1,2],\"parameters\":{\"binary_data_size\":16}},"
        "{\"name\":\"labels\",\"datatype\":\"INT64\",\"shape\":[1],\"data\":"
        "[0]}]}";
    const double nan2[2] = {1, NAN};
    const char *big[] = {"--max-body", "2000", NULL};
    binreq b = {0};
    char *body;
    hresp r;
    lossd d;

    lossd_start(&d, NULL);
    json_case(d.port, "softmax", "{\"inputs\":[", 400, "not valid JSON");
    json_case(d.port, "softmax", "[1]", 400, "JSON object");
    json_case(d.port, "softmax", "{\"inputs\":{}}", 400,
              "inputs must be an array");
    json_case(d.port, "softmax", "{\"id\":7,\"inputs\":[]}", 400, "id must be");
    json_case(d.port, "softmax", "{\"input\":[]}", 422, "unknown field");
    /* cJSON would cut the name at U+0000 and read it as labels. */
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS ",{\"name\":\"labels\\u0000x\","
              "\"datatype\":\"INT64\",\"shape\":[2],\"data\":[0,1]}]}",
              400, "U+0000");
    json_case(d.port, "softmax", "{}", 422, "inputs is required");
    /* NaN is no JSON number, but a non-finite value as at /loss. */
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS
              "," LABELS("[0,1]") "],\"id\":\"a\","
                                  "\"parameters\":{\"margin\":NaN}}",
              422, "parameters.margin is NaN or infinite");
    /* Not JSON, though cJSON takes it: a leading zero; NUL bytes after
     * the header read as white space. */
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS "," LABELS("[00,1]") "]}", 400,
              "not valid JSON");
    http_call(d.port, "POST", "/v2/models/softmax/infer", "application/json",
              nul_tail, sizeof nul_tail - 1, NULL, &r);
    expect_v2_error(&r, 400, "not valid JSON");
    hresp_free(&r);
    /* A key given twice, at the top or in an input, as /loss refuses it. */
    json_case(d.port, "softmax",
              "{\"inputs\":[],\"inputs\":[" LOGITS "," LABELS("[0,1]") "]}",
              422, "inputs is given more than once");
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS "," LABELS("[0,1],\"data\":[1,0]") "]}",
              422, "inputs[1].data is given more than once");
    /* Unknown keys in an input, an output or their parameters. */
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS "," LABELS("[0,1],\"shap\":[2]") "]}", 422,
              "inputs[1].shap is not a field");
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS "," LABELS(
                  "[0,1],\"parameters\":{\"shared_memory_region\":\"r\"}") "]}",
              422, "inputs[1].parameters.shared_memory_region is not");
    json_case(d.port, "softmax",
              "{\"outputs\":[{\"name\":\"loss\",\"parameters\":{"
              "\"classification\":2}}],\"inputs\":[" LOGITS
              "," LABELS("[0,1]") "]}",
              422, "outputs[0].parameters.classification is not");
    json_case(d.port, "softmax", "{\"inputs\":[" LOGITS "]}", 422, "labels");
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS "," LOGITS "," LABELS("[0,1]") "]}", 422,
              "more than once");
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS ",{\"name\":\"label\",\"datatype\":"
              "\"INT64\",\"shape\":[2],\"data\":[0,1]}]}",
              422, "not an input of model softmax");
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS "," LABELS_AS("FP32", "[0,1]") "]}", 400,
              "INT32 or INT64");
    json_case(d.port, "softmax",
              "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP16\","
              "\"shape\":[1,1],\"data\":[1]}]}",
              400, "datatype must be one of");
    json_case(d.port, "softmax",
              "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP64\","
              "\"shape\":[6],\"data\":[1,2,3,4,5,6]}," LABELS("[0,1]") "]}",
              422, "dimensions");
    json_case(d.port, "softmax",
              "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP64\","
              "\"shape\":[2,-3],\"data\":[]}]}",
              400, "non-negative integers");
    json_case(d.port, "softmax",
              "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP64\","
              "\"shape\":[2,3],\"data\":[1,2,3,4,5]}," LABELS("[0,1]") "]}",
              422, "data holds 5 values");
    json_case(d.port, "softmax",
              "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP64\","
              "\"shape\":[2,3],\"data\":[1,2,3,4,5,6,7]}," LABELS("[0,1]") "]}",
              422, "data holds 7 values");
    /* A huge shape with little data is refused before any allocation. */
    json_case(
        d.port, "softmax",
        "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP64\","
        "\"shape\":[100000000000,1000],\"data\":[1]}," LABELS("[0,1]") "]}",
        422, "data holds 1 values, its shape 100000000000000");
    json_case(
        d.port, "softmax",
        "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP64\","
        "\"shape\":[2,3],\"data\":[1,2,\"3\",4,5,6]}," LABELS("[0,1]") "]}",
        400, "logits[2] must be a number");
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS "," LABELS("[0,1.5]") "]}", 400,
              "must be an INT64");
    /* The ends of INT32: -2^31 is one (a label out of range), 2^31 not. */
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS
              "," LABELS_AS("INT32", "[0,-2147483648]") "]}",
              422, "labels[1] is -2147483648, outside");
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS
              "," LABELS_AS("INT32", "[0,2147483648]") "]}",
              400, "must be an INT32");
    json_case(d.port, "softmax",
              "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\","
              "\"shape\":[1,2],\"data\":[1,1e300]}," LABELS("[0]") "]}",
              422, "infinite");
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS "," LABELS("[0,7]") "]}", 422,
              "labels[1]");
    json_case(d.port, "hinge",
              "{\"inputs\":[{\"name\":\"scores\",\"datatype\":\"FP64\","
              "\"shape\":[2],\"data\":[0,1e200]},{\"name\":\"labels\","
              "\"datatype\":\"INT64\",\"shape\":[2],\"data\":[1,-1]}],"
              "\"parameters\":{\"p\":2}}",
              422, "row 1 overflows");
    json_case(d.port, "softmax",
              "{\"inputs\":[" LOGITS ",{\"name\":\"labels\",\"datatype\":"
              "\"INT64\",\"shape\":[3],\"data\":[0,1,2]}]}",
              422, "labels has 3 rows");
    json_case(d.port, "softmax",
              "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP64\","
              "\"shape\":[0,3],\"data\":[]},{\"name\":\"labels\",\"datatype\":"
              "\"INT64\",\"shape\":[0],\"data\":[]}]}",
              422, "empty");
    json_case(d.port, "softmax",
              "{\"parameters\":{\"logits\":[1]},\"inputs\":[" LOGITS
              "," LABELS("[0,1]") "]}",
              422, "is an input");
    json_case(d.port, "softmax",
              "{\"parameters\":{\"margin\":1},\"inputs\":[" LOGITS
              "," LABELS("[0,1]") "]}",
              422, "unknown field \"margin\"");
    json_case(d.port, "softmax",
              "{\"parameters\":{\"label_smoothing\":2},\"inputs\":[" LOGITS
              "," LABELS("[0,1]") "]}",
              422, "label_smoothing must be in");
    json_case(d.port, "softmax",
              "{\"parameters\":{\"reduction\":3},\"inputs\":[" LOGITS
              "," LABELS("[0,1]") "]}",
              400, "reduction must be a string");
    json_case(d.port, "softmax",
              "{\"parameters\":[],\"inputs\":[" LOGITS "," LABELS("[0,1]") "]}",
              400, "parameters must be an object");
    json_case(d.port, "softmax",
              "{\"outputs\":[{\"name\":\"grad_labels\"}],\"inputs\":[" LOGITS
              "," LABELS("[0,1]") "]}",
              422, "no output \"grad_labels\"");
    json_case(d.port, "softmax",
              "{\"outputs\":{},\"inputs\":[" LOGITS "," LABELS("[0,1]") "]}",
              400, "outputs must be an array");
    json_case(d.port, "softmax",
              "{\"outputs\":[{\"name\":\"loss\",\"parameters\":{"
              "\"binary_data\":1}}],\"inputs\":[" LOGITS
              "," LABELS("[0,1]") "]}",
              400, "binary_data must be");
    /* NaN in binary data. */
    bin_append(&b, nan_head, strlen(nan_head));
    b.header = b.len;
    put_f64(&b, nan2, 2);
    bin_post(d.port, "softmax", &b, &r);
    expect_v2_error(&r, 422, "logits[1] is infinite or NaN");
    hresp_free(&r);
    free(b.p);
    /* Content-Type. */
    v2_post(d.port, "softmax", "text/plain", "{}", 2, NULL, &r);
    expect_v2_error(&r, 415, "Content-Type");
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
    /* The body limit, from Content-Length. */
    lossd_start(&d, big);
    body = calloc(4001, 1);
    memset(body, ' ', 4000);
    body[0] = '{';
    body[3999] = '}';
    v2_post(d.port, "softmax", "application/json", body, 4000, NULL, &r);
    expect_v2_error(&r, 413, "limit");
    hresp_free(&r);
    free(body);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* An input whose shape has a zero in it, with its other dimensions huge
 * ([10^14, 0, 2] once made the server take 10^14 layer widths before
 * seeing that the input was empty): a 422 in /loss/{name}'s words for the
 * same empty array, from JSON data (flat or nested) and from a binary
 * section of 0 bytes alike. */
typedef struct empty_case {
    const char *model, *input, *shape, *data, *loss_body, *message;
} empty_case;

static void expect_empty(unsigned port, const empty_case *e)
{
    char head[512];
    binreq b = {0};
    const cJSON *err;
    hresp r;

    snprintf(head, sizeof head,
             "{\"inputs\":[{\"name\":\"%s\",\"datatype\":\"FP64\","
             "\"shape\":%s,\"data\":%s}]}",
             e->input, e->shape, e->data);
    v2_post_json(port, e->model, head, &r);
    expect_v2_error(&r, 422, NULL);
    cr_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(r.json, "error")->valuestring,
        e->message, "%s %s", e->model, e->shape);
    hresp_free(&r);
    snprintf(head, sizeof head,
             "{\"inputs\":[{\"name\":\"%s\",\"datatype\":\"FP32\","
             "\"shape\":%s,\"parameters\":{\"binary_data_size\":0}}]}",
             e->input, e->shape);
    bin_append(&b, head, strlen(head));
    b.header = b.len;
    bin_post(port, e->model, &b, &r);
    expect_v2_error(&r, 422, NULL);
    cr_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(r.json, "error")->valuestring,
        e->message, "binary %s %s", e->model, e->shape);
    hresp_free(&r);
    free(b.p);
    http_post_json(port, e->model, e->loss_body, &r);
    expect_error(&r, 422, NULL);
    err = cJSON_GetObjectItemCaseSensitive(r.json, "error");
    cr_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(err, "message")->valuestring,
        e->message, "/loss/%s", e->model);
    hresp_free(&r);
}

Test(v2, empty_shapes_are_422_before_any_allocation)
{
    static const empty_case cases[] = {
        {"contrastive", "x1", "[100000000000000,0,2]", "[]",
         "{\"x1\":[],\"x2\":[],\"labels\":[]}", "x1 is empty"},
        {"contrastive", "x1", "[0,100000000000000,100000000000000]", "[]",
         "{\"x1\":[],\"x2\":[],\"labels\":[]}", "x1 is empty"},
        {"contrastive", "x1", "[100000000000000,3,0]", "[[[]]]",
         "{\"x1\":[[[]]],\"x2\":[[[]]],\"labels\":[1]}",
         "x1[0] has empty rows"},
        {"contrastive", "x1", "[100000000000000,0]", "[[]]",
         "{\"x1\":[[]],\"x2\":[[]],\"labels\":[1]}", "x1 has empty rows"},
        {"triplet", "embeddings", "[100000000000000,0]", "[]",
         "{\"embeddings\":[[],[]],\"labels\":[1,2]}",
         "embeddings has empty rows"},
        {"softmax", "logits", "[0,100000000000000]", "[]",
         "{\"logits\":[],\"labels\":[]}", "logits is empty"},
        {"hinge", "scores", "[0]", "[]", "{\"scores\":[],\"labels\":[]}",
         "scores is empty"},
    };
    size_t i;
    lossd d;

    lossd_start(&d, NULL);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_empty(d.port, &cases[i]);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* ---- FP32 outputs and float32's range ----------------------------------- */

/* Embeddings 2e200 apart: a finite loss and per_sample of 1e200, with
 * gradients of 0.5 and 1e-200. */
#define BIG_TRIPLET(extra)                                                     \
    "{\"inputs\":[{\"name\":\"embeddings\",\"datatype\":\"FP64\",\"shape\":"   \
    "[3,2],\"data\":[1e200,2,-1e200,2,3,4]},{\"name\":\"labels\","             \
    "\"datatype\":\"INT64\",\"shape\":[3],\"data\":[0,0,1]}]" extra "}"
#define JS_GRAD_P(binary)                                                      \
    "{\"parameters\":{\"binary_data_output\":" binary "},\"outputs\":[{"       \
    "\"name\":\"grad_p\"}],\"inputs\":[{\"name\":\"p\",\"datatype\":"          \
    "\"FP64\",\"shape\":[1,2],\"data\":[1,0]},{\"name\":\"q\",\"datatype\":"   \
    "\"FP64\",\"shape\":[1,2],\"data\":[0.5,0.5]}]}"
#define HINGE_AT(score)                                                        \
    "{\"outputs\":[{\"name\":\"loss\"}],\"inputs\":[{\"name\":\"scores\","     \
    "\"datatype\":\"FP64\",\"shape\":[1],\"data\":[" score "]},{\"name\":"     \
    "\"labels\",\"datatype\":\"INT64\",\"shape\":[1],\"data\":[1]}]}"

#define HINGE_FP32_AT(score)                                                   \
    "{\"outputs\":[{\"name\":\"loss\"}],\"inputs\":[{\"name\":\"scores\","     \
    "\"datatype\":\"FP32\",\"shape\":[1],\"data\":[" score "]},{\"name\":"     \
    "\"labels\",\"datatype\":\"INT64\",\"shape\":[1],\"data\":[1]}]}"

/* The binary output of a one-output JSON request, as n floats. */
static void fp32_binary(unsigned port, const char *model, const char *body,
                        float *x, size_t n)
{
    const char *bin;
    size_t binlen;
    cJSON *h;
    hresp r;

    v2_post_json(port, model, body, &r);
    h = bin_answer(&r, &bin, &binlen);
    cr_assert_eq(binlen, 4 * n, "%s", r.body);
    memcpy(x, bin, 4 * n); /* the tests run on little-endian hosts */
    cJSON_Delete(h);
    hresp_free(&r);
}

/* A finite value past float32's range in an FP32 output was +inf in a
 * binary tensor (and 1e+200, no float32, in JSON data): it is a 422 that
 * names the output and says to ask for FP64, which carries it exactly.
 * One that rounds to FLT_MAX is written, and infinite gradients keep their
 * null (JSON) and -inf (binary). */
Test(v2, fp32_outputs_past_float_range_are_422)
{
    const char *msg = "loss[0] is 1e+200, beyond the range of FP32 "
                      "(3.4028235e+38): ask for FP64 outputs with "
                      "\"precision\": \"float64\" in parameters";
    const cJSON *data;
    double x[4];
    float f[6];
    hresp r;
    lossd d;

    lossd_start(&d, NULL);
    json_case(d.port, "triplet", BIG_TRIPLET(""), 422, msg);
    json_case(d.port, "triplet",
              BIG_TRIPLET(",\"parameters\":{\"binary_data_output\":true}"), 422,
              msg);
    json_case(d.port, "triplet",
              BIG_TRIPLET(",\"outputs\":[{\"name\":\"grad_embeddings\"},"
                          "{\"name\":\"per_sample\"}]"),
              422, "per_sample[0] is 1e+200, beyond the range of FP32");
    /* FP64 carries the values bit for bit. */
    v2_post_json(d.port, "triplet",
                 BIG_TRIPLET(",\"parameters\":{\"precision\":\"float64\"}"),
                 &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    data =
        cJSON_GetObjectItemCaseSensitive(output(r.json, "per_sample"), "data");
    cr_assert_eq(flatten(data, x, 4, 0), 3, "%s", r.body);
    cr_assert(x[0] == 1e200 && x[1] == 1e200 && x[2] == 0, "%s", r.body);
    hresp_free(&r);
    /* The gradients alone fit FP32 (1e-200 rounds to 0, -2e-200 to -0). */
    fp32_binary(d.port, "triplet",
                BIG_TRIPLET(",\"parameters\":{\"binary_data_output\":true},"
                            "\"outputs\":[{\"name\":\"grad_embeddings\"}]"),
                f, 6);
    cr_assert(f[0] == 0.5f && f[1] == 0 && f[2] == -0.5f && f[3] == 0 &&
                  f[4] == 0 && f[5] == 0 && signbit(f[5]),
              "%g %g %g %g %g %g", f[0], f[1], f[2], f[3], f[4], f[5]);
    /* The edge: 1 + 3.4028235e38 rounds to FLT_MAX; 3.4028236e38 is past
     * FLT_MAX + 2^103, where rounding goes to inf. */
    v2_post_json(d.port, "hinge", HINGE_AT("-3.4028235e38"), &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_not_null(strstr(r.body, "\"data\":[3.4028235e+38]"), "%s",
                       r.body);
    hresp_free(&r);
    json_case(d.port, "hinge", HINGE_AT("-3.4028236e38"), 422,
              "loss[0] is 3.4028236e+38, beyond the range of FP32");
    /* FP32 inputs round as a float does: 3.4028235e38 (float's largest as
     * numpy prints it, a double just above FLT_MAX) is FLT_MAX, giving a
     * hinge loss of 1 + FLT_MAX, which rounds back to it; 3.4028236e38
     * rounds to inf, which no input may be. */
    v2_post_json(d.port, "hinge", HINGE_FP32_AT("-3.4028235e38"), &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_not_null(strstr(r.body, "\"data\":[3.4028235e+38]"), "%s",
                       r.body);
    hresp_free(&r);
    json_case(d.port, "hinge", HINGE_FP32_AT("-3.4028236e38"), 422, "infinite");
    /* js's gradient at p = 0 is -inf: null in JSON as in /loss/js, -inf in
     * a binary tensor. */
    v2_post_json(d.port, "js", JS_GRAD_P("false"), &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_not_null(strstr(r.body, "\"data\":[0.14384104,null]"), "%s",
                       r.body);
    hresp_free(&r);
    fp32_binary(d.port, "js", JS_GRAD_P("true"), f, 2);
    cr_assert(f[0] == (float)0.14384103622589042 && f[1] == -INFINITY,
              "%.9g %g", f[0], f[1]);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* A body given to srv_v2_infer_owned answers byte for byte as srv_v2_infer
 * does: with room for the answer (trailing blanks) its block carries the
 * answer, without it the block is freed and a new one taken; an invalid
 * body and an unknown model free it too (the sanitizer runs check each
 * block is freed once). */
Test(v2, owned_body_answers_as_a_borrowed_one)
{
    static const char req[] =
        "{\"inputs\":[{\"name\":\"logits\",\"shape\":[2,3],"
        "\"datatype\":\"FP64\",\"data\":[0.5,-1,2,1.5,0.25,-3]},"
        "{\"name\":\"labels\",\"shape\":[2],\"datatype\":\"INT64\","
        "\"data\":[2,0]}]}";
    size_t len, pad;
    srv_reply want, got;
    uintptr_t was;
    char *body;

    for (pad = 0; pad <= 8192; pad += 8192) {
        len = strlen(req) + pad;
        body = malloc(len + 1);
        cr_assert_not_null(body);
        memcpy(body, req, strlen(req));
        memset(body + strlen(req), ' ', pad);
        was = (uintptr_t)body;
        srv_v2_infer("softmax", NULL, body, len, &want);
        srv_v2_infer_owned("softmax", NULL, body, len, len + 1, &got);
        cr_assert_eq(got.status, 200, "pad %zu: %d %.*s", pad, got.status,
                     (int)got.len, got.body);
        cr_assert_eq(got.len, want.len);
        cr_assert(memcmp(got.body, want.body, got.len) == 0, "pad %zu", pad);
        if (pad)
            cr_expect_eq((uintptr_t)got.body, was, "the body's block is used");
        srv_reply_cleanup(&want);
        srv_reply_cleanup(&got);
    }
    body = malloc(4);
    cr_assert_not_null(body);
    memcpy(body, "{}x", 3);
    srv_v2_infer_owned("softmax", NULL, body, 3, 4, &got);
    cr_expect_eq(got.status, 400);
    srv_reply_cleanup(&got);
    body = malloc(4);
    cr_assert_not_null(body);
    srv_v2_infer_owned("no_such_model", NULL, body, 0, 4, &got);
    cr_expect_eq(got.status, 404);
    srv_reply_cleanup(&got);
}
