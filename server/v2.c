/* v2.c -- the Open Inference Protocol (KServe v2) with Triton's binary
 * tensor extension, built on the loss table: an inference request becomes
 * the same srv_request that POST /loss/{name} builds (inputs as tensors,
 * "parameters" through the same field parser, the same shape and range
 * checks), runs through the same compute step, and its srv_result is
 * written as v2 outputs, as JSON or as raw little-endian tensors after the
 * JSON header. */
#include "v2.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "arena.h"
#include "config.h"
#include "json_out.h"
#include "json_valid.h"
#include "pool.h"

#define JSON "application/json"
#define MODELS "/v2/models/"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- Errors -------------------------------------------------------------- */

/* {"error": "<message>"}; a static contract error when out of memory. */
static void v2_reply_error(srv_reply *out, int status, const char *code,
                           const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* {"error": message}: the v2 shape, without the code, which the answer
 * keeps for the metrics. */
static void v2_reply_error(srv_reply *out, int status, const char *code,
                           const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    srv_buf b;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_buf_init(&b, 64 + strlen(msg));
    srv_buf_puts(&b, "{\"error\":");
    srv_buf_string(&b, msg);
    srv_buf_puts(&b, "}");
    if (b.oom) {
        srv_buf_free(&b);
        srv_reply_error(out, 503, "out_of_memory", NULL, SRV_OOM_MESSAGE);
        return;
    }
    out->status = status;
    out->code = code;
    out->body = b.p;
    out->len = b.len;
    out->header_len = 0;
}

/* A validation failure: the message, led by its JSON path when the
 * message does not already name it. */
static void v2_reply_fail(srv_reply *out, const srv_fail *f)
{
    size_t n = strlen(f->field);

    if (n > 0 && strncmp(f->message, f->field, n) != 0)
        v2_reply_error(out, f->status, f->code, "%s: %s", f->field, f->message);
    else
        v2_reply_error(out, f->status, f->code, "%s", f->message);
}

static void v2_answer_error(srv_answer *a, int status, const char *code,
                            const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void v2_answer_error(srv_answer *a, int status, const char *code,
                            const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memset(a, 0, sizeof *a);
    v2_reply_error(&a->reply, status, code, "%s", msg);
    srv_answer_from_reply(a, &a->reply);
}

/* ---- Datatypes ----------------------------------------------------------- */

typedef enum v2_dtype {
    V2_FP32,
    V2_FP64,
    V2_INT32,
    V2_INT64,
    V2_NONE
} v2_dtype;

static const char *const dtype_names[] = {"FP32", "FP64", "INT32", "INT64"};
static const size_t dtype_size[] = {4, 8, 4, 8};

static v2_dtype dtype_parse(const char *s)
{
    int i;

    for (i = 0; i < 4; i++)
        if (strcmp(s, dtype_names[i]) == 0)
            return (v2_dtype)i;
    return V2_NONE;
}

/* Little-endian n bytes (4 or 8) to and from an integer: a plain copy on
 * a little-endian host. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define V2_LITTLE_ENDIAN 1
#else
#define V2_LITTLE_ENDIAN 0
#endif

static uint64_t le_read(const unsigned char *p, size_t n)
{
    uint64_t x = 0;

    if (V2_LITTLE_ENDIAN) {
        memcpy(&x, p, n); /* the low n bytes */
        return x;
    }
    while (n-- > 0)
        x = x << 8 | p[n];
    return x;
}

static void le_write(unsigned char *p, uint64_t x, size_t n)
{
    size_t i;

    if (V2_LITTLE_ENDIAN) {
        memcpy(p, &x, n);
        return;
    }
    for (i = 0; i < n; i++, x >>= 8)
        p[i] = (unsigned char)(x & 0xff);
}

/* One binary element as a double (integers exactly up to 2^53). */
static double binary_value(const unsigned char *p, v2_dtype t, int64_t *iv)
{
    uint64_t u = le_read(p, dtype_size[t]);
    float f;
    double d;

    switch (t) {
    case V2_FP32:
        memcpy(&f, &(uint32_t){(uint32_t)u}, 4);
        return f;
    case V2_FP64:
        memcpy(&d, &u, 8);
        return d;
    case V2_INT32:
        *iv = (int32_t)(uint32_t)u;
        return (double)*iv;
    default:
        *iv = (int64_t)u;
        return (double)*iv;
    }
}

/* ---- Model names and paths ----------------------------------------------- */

static const srv_loss *model_find(const char *name, size_t n)
{
    size_t i;

    for (i = 0; i < srv_nlosses; i++)
        if (strlen(srv_losses[i].name) == n &&
            strncmp(srv_losses[i].name, name, n) == 0)
            return &srv_losses[i];
    return NULL;
}

typedef enum v2_kind {
    V2_NOT_FOUND,
    V2_SERVER,
    V2_LIVE,
    V2_READY,
    V2_MODEL,
    V2_MODEL_READY,
    V2_INFER
} v2_kind;

typedef struct v2_path_info {
    v2_kind kind;
    const char *name; /* the model name in the path, not NUL-terminated */
    size_t name_len;
    const srv_loss *loss;
} v2_path_info;

static void path_parse(const char *p, v2_path_info *out)
{
    const char *rest;

    memset(out, 0, sizeof *out);
    if (strcmp(p, "/v2") == 0)
        out->kind = V2_SERVER;
    else if (strcmp(p, "/v2/health/live") == 0)
        out->kind = V2_LIVE;
    else if (strcmp(p, "/v2/health/ready") == 0)
        out->kind = V2_READY;
    if (out->kind != V2_NOT_FOUND || strncmp(p, MODELS, strlen(MODELS)) != 0)
        return;
    out->name = p + strlen(MODELS);
    out->name_len = strcspn(out->name, "/");
    rest = out->name + out->name_len;
    if (out->name_len == 0)
        return;
    if (*rest == '\0')
        out->kind = V2_MODEL;
    else if (strcmp(rest, "/ready") == 0)
        out->kind = V2_MODEL_READY;
    else if (strcmp(rest, "/infer") == 0)
        out->kind = V2_INFER;
    out->loss = model_find(out->name, out->name_len);
}

int srv_v2_path(const char *path)
{
    return strncmp(path, "/v2", 3) == 0 && (path[3] == '\0' || path[3] == '/');
}

/* ---- Metadata ------------------------------------------------------------ */

static void answer_buf(srv_answer *a, srv_buf *b)
{
    if (b->oom) {
        srv_buf_free(b);
        v2_answer_error(a, 503, "out_of_memory", SRV_OOM_MESSAGE);
        return;
    }
    memset(a, 0, sizeof *a);
    a->status = 200;
    a->content_type = JSON;
    a->kind = SRV_BODY_FREE;
    a->body = b->p;
    a->len = b->len;
}

static void answer_text(srv_answer *a, const char *text)
{
    srv_buf b;

    srv_buf_init(&b, strlen(text) + 1);
    srv_buf_puts(&b, text);
    answer_buf(a, &b);
}

static void put_dims(srv_buf *b, size_t rank)
{
    size_t i;

    srv_buf_puts(b, "[");
    for (i = 0; i < rank; i++)
        srv_buf_puts(b, i ? ",-1" : "-1");
    srv_buf_puts(b, "]");
}

static void put_tensor_meta(srv_buf *b, const char *name, const char *dtype,
                            size_t rank, int first)
{
    srv_buf_puts(b, first ? "{\"name\":" : ",{\"name\":");
    srv_buf_string(b, name);
    srv_buf_puts(b, ",\"datatype\":");
    srv_buf_string(b, dtype);
    srv_buf_puts(b, ",\"shape\":");
    if (rank == 0)
        srv_buf_puts(b, "[1]");
    else
        put_dims(b, rank);
    srv_buf_puts(b, "}");
}

static void put_output_meta(srv_buf *b, const srv_loss *L)
{
    char name[64];
    size_t i;

    put_tensor_meta(b, "loss", "FP32", 0, 1);
    if (L->per_sample)
        put_tensor_meta(b, "per_sample", "FP32", 1, 0);
    for (i = 0; i < L->ninputs; i++) {
        if (!(L->inputs[i].flags & SRV_IN_DIFF))
            continue;
        snprintf(name, sizeof name, "grad_%s", L->inputs[i].name);
        put_tensor_meta(b, name, "FP32", L->inputs[i].rank, 0);
    }
    for (i = 0; L->metrics[i]; i++)
        put_tensor_meta(b, L->metrics[i], "FP32", 0, 0);
    if (L->generator_grad) {
        put_tensor_meta(b, "generator_loss", "FP32", 0, 0);
        snprintf(name, sizeof name, "generator_grad_%s", L->generator_grad);
        put_tensor_meta(b, name, "FP32", 1, 0);
    }
}

/* GET /v2/models/{name}: inputs as the loss's fields (real ones FP64,
 * labels INT64; every dimension variable), outputs in their default
 * datatype FP32. */
static void model_metadata(srv_answer *a, const srv_loss *L)
{
    srv_buf b;
    size_t i;

    srv_buf_init(&b, 1024);
    srv_buf_puts(&b, "{\"name\":");
    srv_buf_string(&b, L->name);
    srv_buf_puts(&b, ",\"versions\":[\"1\"],\"platform\":\"lossd\","
                     "\"inputs\":[");
    for (i = 0; i < L->ninputs; i++)
        put_tensor_meta(&b, L->inputs[i].name,
                        (L->inputs[i].flags & SRV_IN_INT) ? "INT64" : "FP64",
                        L->inputs[i].rank, i == 0);
    srv_buf_puts(&b, "],\"outputs\":[");
    put_output_meta(&b, L);
    srv_buf_puts(&b, "]}");
    answer_buf(a, &b);
}

static void server_metadata(srv_answer *a)
{
    answer_text(a, "{\"name\":\"lossd\",\"version\":\"" LOSSD_VERSION
                   "\",\"extensions\":[\"binary_tensor_data\"]}");
}

static void model_ready(srv_answer *a, const srv_loss *L, int draining)
{
    srv_buf b;

    srv_buf_init(&b, 64);
    srv_buf_puts(&b, "{\"name\":");
    srv_buf_string(&b, L->name);
    srv_buf_puts(&b, draining ? ",\"ready\":false}" : ",\"ready\":true}");
    answer_buf(a, &b);
    if (draining && a->status == 200)
        a->status = 503, a->retry_after = 1;
}

/* ---- Routing ------------------------------------------------------------- */

/* Content-Type of an inference request: JSON, or octet-stream for a binary
 * body; none is taken as JSON, as inference clients often send none. */
static int content_type_ok(const char *ct)
{
    static const char *const types[] = {JSON, "application/octet-stream"};
    size_t i, n;

    if (ct == NULL)
        return 1;
    ct += strspn(ct, " \t");
    for (i = 0; i < 2; i++) {
        n = strlen(types[i]);
        if (strncasecmp(ct, types[i], n) == 0 &&
            (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t'))
            return 1;
    }
    return 0;
}

static srv_route_result infer_head(const srv_head *h, srv_answer *a)
{
    if (srv_head_framing_bad(h))
        v2_answer_error(a, 400, "bad_request", SRV_FRAMING_MESSAGE);
    else if (!content_type_ok(h->content_type))
        v2_answer_error(a, 415, "unsupported_media_type",
                        "Content-Type must be application/json or "
                        "application/octet-stream, not '%.100s'.",
                        h->content_type);
    else if (h->content_length_count == 1 && h->content_length > h->max_body)
        v2_answer_error(a, 413, "body_too_large",
                        "The body has %llu bytes; the limit is %zu.",
                        h->content_length, h->max_body);
    else if (h->draining)
        v2_answer_error(a, 503, "shutting_down",
                        "The server is shutting down and takes no "
                        "new work.");
    else if (srv_pool_full())
        v2_answer_error(a, 503, "overloaded",
                        "Every worker is busy and the queue is full; "
                        "retry shortly.");
    else
        return SRV_ROUTE_V2;
    return SRV_ROUTE_ANSWER;
}

static void bad_method(srv_answer *a, const char *method, const char *allow)
{
    v2_answer_error(a, 405, "method_not_allowed",
                    "Method %.20s is not allowed here; use %s.", method, allow);
    a->allow = allow;
}

static void answer_get(const srv_head *h, srv_answer *a, const v2_path_info *p)
{
    switch (p->kind) {
    case V2_SERVER:
        server_metadata(a);
        break;
    case V2_LIVE:
        answer_text(a, "{\"live\":true}");
        break;
    case V2_READY:
        if (h->draining)
            v2_answer_error(a, 503, "shutting_down",
                            "The server is shutting down and takes "
                            "no new work.");
        else
            answer_text(a, "{\"ready\":true}");
        break;
    case V2_MODEL:
        model_metadata(a, p->loss);
        break;
    default:
        model_ready(a, p->loss, h->draining);
        break;
    }
}

srv_route_result srv_v2_route(const srv_head *h, srv_answer *a,
                              const char **loss)
{
    int get = strcmp(h->method, "GET") == 0 || strcmp(h->method, "HEAD") == 0;
    v2_path_info p;

    *loss = NULL;
    path_parse(h->path, &p);
    if (p.kind == V2_INFER && h->auth_on && !h->authorized) {
        v2_answer_error(a, 401, "unauthorized",
                        "This endpoint needs an API key: send "
                        "'Authorization: Bearer <key>'.");
        a->www_authenticate = "Bearer realm=\"lossd\"";
        return SRV_ROUTE_ANSWER;
    }
    if (p.kind == V2_NOT_FOUND)
        v2_answer_error(a, 404, "not_found",
                        "No endpoint at '%.200s'. Endpoints: GET /v2, "
                        "/v2/health/live, /v2/health/ready, "
                        "/v2/models/{name}, /v2/models/{name}/ready; "
                        "POST /v2/models/{name}/infer.",
                        h->path);
    else if (p.name != NULL && p.loss == NULL)
        v2_answer_error(a, 404, "unknown_loss",
                        "There is no model named '%.*s'. Valid "
                        "names: %s.",
                        (int)(p.name_len > 100 ? 100 : p.name_len), p.name,
                        srv_loss_names());
    else if (p.kind == V2_INFER && strcmp(h->method, "POST") != 0)
        bad_method(a, h->method, "POST");
    else if (p.kind == V2_INFER) {
        *loss = p.loss->name;
        return infer_head(h, a);
    } else if (!get)
        bad_method(a, h->method, "GET, HEAD");
    else
        answer_get(h, a, &p);
    return SRV_ROUTE_ANSWER;
}

/* ---- Inference requests -------------------------------------------------- */

/* The outputs a request can ask for. */
typedef enum v2_okind {
    OUT_LOSS,
    OUT_PER_SAMPLE,
    OUT_GRAD,
    OUT_METRIC,
    OUT_GEN_LOSS,
    OUT_GEN_GRAD
} v2_okind;

#define V2_MAX_OUTPUTS (3 + SRV_MAX_INPUTS + SRV_MAX_METRICS)

typedef struct v2_output {
    char name[64];
    v2_okind kind;
    size_t index; /* the input (grad) or the metric */
    int selected, binary;
} v2_output;

typedef struct v2_ctx {
    const srv_loss *L;
    srv_request rq;
    size_t rank[SRV_MAX_INPUTS]; /* each input's shape as sent */
    size_t shape[SRV_MAX_INPUTS][SRV_MAX_RANK];
    const unsigned char *bin; /* the binary section */
    size_t bin_len, bin_at;
    const cJSON *id, *outputs;
    int binary_output; /* binary_data_output: the default of every output */
    v2_output out[V2_MAX_OUTPUTS];
    size_t nout;
    srv_fail f;
} v2_ctx;

static const char *input_names(const srv_loss *L, char *buf, size_t cap)
{
    size_t i, at = 0;
    int w;

    buf[0] = '\0';
    for (i = 0; i < L->ninputs; i++) {
        w = snprintf(buf + at, cap - at, "%s%s", i ? ", " : "",
                     L->inputs[i].name);
        if (w < 0 || (size_t)w >= cap - at)
            break;
        at += (size_t)w;
    }
    return buf;
}

/* A shape with a zero in it holds no values, and /loss/{name} refuses
 * every empty input.  Refusing it here, before anything is allocated,
 * keeps its other dimensions from sizing anything: [10^14, 0, 2] has no
 * values to check against the body, yet tensor_shape would take 10^14
 * layer widths.  The error is /loss's for the same empty array. */
static int shape_empty(v2_ctx *c, size_t i)
{
    const char *name = c->L->inputs[i].name;
    const size_t *s = c->shape[i];
    size_t rank = c->rank[i];

    if (s[0] == 0 || (rank == 3 && s[1] == 0))
        return srv_fail_empty(&c->f, name, SRV_EMPTY_BATCH);
    return srv_fail_empty(&c->f, name, rank == 3 ? 0 : SRV_EMPTY_ROWS);
}

/* The input's shape: an array of non-negative integers whose length the
 * table allows (layered inputs 2 or 3, vector inputs 1 or 2), holding at
 * least one value.  Every dimension is then at most the count, which the
 * caller holds to the body (data_count, binary_check) before allocating. */
static int shape_parse(v2_ctx *c, size_t i, const cJSON *s, size_t *count)
{
    const srv_input *in = &c->L->inputs[i];
    const cJSON *e;
    size_t n = 0, lo = in->rank, hi = in->rank;

    if (in->flags & SRV_IN_LAYERED)
        hi = 3;
    if (in->flags & SRV_IN_VECTOR)
        lo = 1;
    if (!cJSON_IsArray(s))
        return srv_fail_set(&c->f, 400, "wrong_type", in->name,
                            "%s: shape must be an array of integers", in->name);
    *count = 1;
    cJSON_ArrayForEach(e, s) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!(d >= 0 && d < 1e15 && d == floor(d)))
            return srv_fail_set(&c->f, 400, "wrong_type", in->name,
                                "%s: shape must hold non-negative integers",
                                in->name);
        if (n < SRV_MAX_RANK)
            c->shape[i][n] = (size_t)d;
        if ((size_t)d > 0 && *count > (SIZE_MAX / 16) / (size_t)d)
            return srv_fail_set(&c->f, 400, "wrong_type", in->name,
                                "%s: the shape holds too many elements",
                                in->name);
        *count *= (size_t)d;
        n++;
    }
    if (n < lo || n > hi)
        return srv_fail_set(&c->f, 422, "shape_mismatch", in->name,
                            "%s has %zu dimensions in its shape; it takes "
                            "%zu%s%.0zu",
                            in->name, n, lo, lo < hi ? " or " : "",
                            lo < hi ? hi : 0);
    c->rank[i] = n;
    return *count == 0 ? shape_empty(c, i) : 0;
}

/* Stores value k of tensor t: integer inputs take only whole numbers. */
static int store(v2_ctx *c, size_t i, srv_tensor *t, size_t k, double x,
                 int64_t iv, int is_int)
{
    const char *name = c->L->inputs[i].name;

    if (!isfinite(x))
        return srv_fail_set(&c->f, 422, "non_finite", name,
                            "%s[%zu] is infinite or NaN (numbers must be "
                            "finite)",
                            name, k);
    if (t->iv != NULL) {
        if (!is_int && (x != floor(x) || fabs(x) >= 9.2e18))
            return srv_fail_set(&c->f, 400, "wrong_type", name,
                                "%s[%zu] must be an integer, got %.17g", name,
                                k, x);
        t->iv[k] = is_int ? iv : (int64_t)x;
    } else {
        t->v[k] = x;
    }
    return 0;
}

/* The values of "data", flat or nested, in row-major order. */
static int data_walk(v2_ctx *c, size_t i, srv_tensor *t, v2_dtype dt,
                     const cJSON *node, size_t *k, size_t depth)
{
    const char *name = c->L->inputs[i].name;
    const cJSON *e;
    double x, lim;

    if (cJSON_IsArray(node)) {
        if (depth > SRV_MAX_RANK)
            return srv_fail_set(&c->f, 422, "shape_mismatch", name,
                                "%s: data is nested deeper than any shape",
                                name);
        cJSON_ArrayForEach(e, node) {
            if (data_walk(c, i, t, dt, e, k, depth + 1) != 0)
                return -1;
        }
        return 0;
    }
    if (!cJSON_IsNumber(node))
        return srv_fail_set(&c->f, 400, "wrong_type", name,
                            "%s[%zu] must be a number", name, *k);
    if (*k >= t->count)
        return srv_fail_set(&c->f, 422, "shape_mismatch", name,
                            "%s: data holds more than the %zu values of its "
                            "shape",
                            name, t->count);
    x = node->valuedouble;
    /* Rounded to float as IEEE 754 rounds: 3.4028235e38, float's largest
     * as numpy prints it (a double just above FLT_MAX), is FLT_MAX, and
     * only what rounds past it is infinite, as a binary input would be. */
    if (dt == V2_FP32)
        x = (double)(float)x;
    if (dt == V2_FP32 || dt == V2_FP64)
        return store(c, i, t, (*k)++, x, 0, 0);
    /* -2^31 <= x < 2^31, or -2^63 <= x < 2^63: x is in the type's range */
    lim = dt == V2_INT32 ? 0x1p31 : 0x1p63;
    if (x != floor(x) || x < -lim || x >= lim)
        return srv_fail_set(&c->f, 400, "wrong_type", name,
                            "%s[%zu] must be an %s, got %.17g", name, *k,
                            dtype_names[dt], x);
    return store(c, i, t, (*k)++, x, (int64_t)x, 1);
}

/* The common case of a binary input: FP32 or FP64 on a little-endian
 * host, widened in one pass that compilers vectorize.  0 when done; 1 to
 * leave the input (and any non-finite value's report) to the element-wise
 * path. */
static int binary_reals(const v2_ctx *c, srv_tensor *t, v2_dtype dt)
{
    const unsigned char *p = c->bin + c->bin_at;
    double *v = t->v;
    size_t k, n = t->count;
    int finite = 1;
    float f;

    if (!V2_LITTLE_ENDIAN || v == NULL || (dt != V2_FP32 && dt != V2_FP64))
        return 1;
    if (dt == V2_FP64)
        memcpy(v, p, n * 8);
    else
        for (k = 0; k < n; k++) {
            memcpy(&f, p + 4 * k, 4);
            v[k] = f;
        }
    for (k = 0; k < n; k++)
        finite &= isfinite(v[k]) != 0;
    return finite ? 0 : 1;
}

/* The values of a binary input: size bytes from the binary section. */
static int binary_check(v2_ctx *c, size_t i, v2_dtype dt, const cJSON *size,
                        size_t count)
{
    const char *name = c->L->inputs[i].name;
    size_t need = count * dtype_size[dt];
    double d = cJSON_IsNumber(size) ? size->valuedouble : -1;

    if (!(d >= 0 && d == floor(d)) || d != (double)need)
        return srv_fail_set(&c->f, 400, "bad_request", name,
                            "%s: binary_data_size must be %zu (%zu %s values "
                            "of its shape), got %.17g",
                            name, need, count, dtype_names[dt],
                            cJSON_IsNumber(size) ? d : -1.0);
    if (need > c->bin_len - c->bin_at)
        return srv_fail_set(&c->f, 400, "bad_request", name,
                            "%s: its %zu bytes of binary data run past the end "
                            "of the body (%zu bytes left)",
                            name, need, c->bin_len - c->bin_at);
    return 0;
}

/* The values of a binary input, whose size binary_check has checked. */
static int binary_read(v2_ctx *c, size_t i, srv_tensor *t, v2_dtype dt)
{
    size_t k, need = t->count * dtype_size[dt];
    int64_t iv = 0;
    double x;

    if (binary_reals(c, t, dt) == 0) {
        c->bin_at += need;
        return 0;
    }
    for (k = 0; k < t->count; k++) {
        x = binary_value(c->bin + c->bin_at + k * dtype_size[dt], dt, &iv);
        if (store(c, i, t, k, x, iv, dt == V2_INT32 || dt == V2_INT64) != 0)
            return -1;
    }
    c->bin_at += need;
    return 0;
}

/* The number of values in "data", flat or nested. */
static size_t data_count(const cJSON *node)
{
    const cJSON *e;
    size_t n = 0;

    if (!cJSON_IsArray(node))
        return 1;
    cJSON_ArrayForEach(e, node)
        n += data_count(e);
    return n;
}

/* Sets the tensor's dimensions as json_in.c would for the same data. */
static int tensor_shape(v2_ctx *c, size_t i, srv_tensor *t)
{
    const srv_input *in = &c->L->inputs[i];
    size_t a, l;

    t->present = 1;
    t->rank = c->rank[i];
    for (a = 0; a < c->rank[i]; a++)
        t->dim[a] = c->shape[i][a];
    if (t->rank == 3) {
        /* dim[0] is at most the count (shape_parse refuses a zero), so
         * the body justifies these words. */
        t->width = calloc(t->dim[0] ? t->dim[0] : 1, sizeof *t->width);
        if (t->width == NULL)
            return srv_fail_set(&c->f, 503, "out_of_memory", NULL,
                                SRV_OOM_MESSAGE);
        for (l = 0; l < t->dim[0]; l++)
            t->width[l] = t->dim[2];
    }
    if (t->rank < in->rank) { /* [N] read as [N][1] */
        t->rank = in->rank;
        t->dim[1] = 1;
    }
    return 0;
}

static int tensor_alloc(v2_ctx *c, size_t i, srv_tensor *t, size_t count)
{
    int is_int = (c->L->inputs[i].flags & SRV_IN_INT) != 0;
    size_t elem = is_int ? sizeof(int64_t) : sizeof(double);

    t->count = count;
    if (is_int)
        t->iv = srv_huge_malloc(count * elem);
    else
        t->v = srv_huge_malloc(count * elem);
    if (t->iv == NULL && t->v == NULL)
        return srv_fail_set(&c->f, 503, "out_of_memory", NULL, SRV_OOM_MESSAGE);
    return tensor_shape(c, i, t);
}

static int input_index(v2_ctx *c, const cJSON *name, size_t *i)
{
    char list[256];

    if (!cJSON_IsString(name))
        return srv_fail_set(&c->f, 400, "wrong_type", "inputs",
                            "every input needs a name (a string)");
    for (*i = 0; *i < c->L->ninputs; (*i)++)
        if (strcmp(c->L->inputs[*i].name, name->valuestring) == 0)
            return 0;
    return srv_fail_set(&c->f, 422, "unknown_field", name->valuestring,
                        "\"%.64s\" is not an input of model %s; the inputs "
                        "are: %s",
                        name->valuestring, c->L->name,
                        input_names(c->L, list, sizeof list));
}

static int input_dtype(v2_ctx *c, size_t i, const cJSON *dt, v2_dtype *out)
{
    const char *name = c->L->inputs[i].name;
    int is_int = (c->L->inputs[i].flags & SRV_IN_INT) != 0;

    *out = cJSON_IsString(dt) ? dtype_parse(dt->valuestring) : V2_NONE;
    if (*out == V2_NONE)
        return srv_fail_set(&c->f, 400, "wrong_type", name,
                            "%s: datatype must be one of FP32, FP64, INT32, "
                            "INT64",
                            name);
    if (is_int && (*out == V2_FP32 || *out == V2_FP64))
        return srv_fail_set(&c->f, 400, "wrong_type", name,
                            "%s holds integers: its datatype must be INT32 "
                            "or INT64, not %s",
                            name, dtype_names[*out]);
    return 0;
}

static int data_mismatch(v2_ctx *c, size_t i, size_t k, size_t count)
{
    return srv_fail_set(&c->f, 422, "shape_mismatch", c->L->inputs[i].name,
                        "%s: data holds %zu values, its shape %zu",
                        c->L->inputs[i].name, k, count);
}

/* 0 when every key of the object o is one of the NULL-terminated keys,
 * given once, else the 422 unknown_field for the first that is not one
 * (or conflicting_fields for the second of a pair); where names o
 * ("inputs[2]") and what lists the keys for the message.  Quadratic only
 * in the known keys: the first unknown one ends the walk. */
static int keys_known(v2_ctx *c, const cJSON *o, const char *const *keys,
                      const char *where, const char *what)
{
    const cJSON *e;
    char path[128];
    size_t i;

    cJSON_ArrayForEach(e, o) {
        for (i = 0; keys[i] && strcmp(e->string, keys[i]) != 0; i++)
            ;
        if (keys[i] != NULL &&
            cJSON_GetObjectItemCaseSensitive(o, keys[i]) == e)
            continue;
        snprintf(path, sizeof path, "%s.%.64s", where, e->string);
        if (keys[i] != NULL)
            return srv_fail_set(&c->f, 422, "conflicting_fields", path,
                                "%s is given more than once", path);
        return srv_fail_set(&c->f, 422, "unknown_field", path,
                            "%s is not a field lossd knows; %s", path, what);
    }
    return 0;
}

/* The keys of member at of "inputs" or "outputs" (list) and of its
 * parameters: keys and pkeys, which what names for the message. */
static int member_keys(v2_ctx *c, const cJSON *o, const char *list, size_t at,
                       const char *const *keys, const char *const *pkeys,
                       const char *what)
{
    const cJSON *par = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    char where[64];

    snprintf(where, sizeof where, "%s[%zu]", list, at);
    if (keys_known(c, o, keys, where, what) != 0)
        return -1;
    if (par != NULL && !cJSON_IsObject(par))
        return srv_fail_set(&c->f, 400, "wrong_type", where,
                            "%s: parameters must be an object", where);
    snprintf(where + strlen(where), sizeof where - strlen(where),
             ".parameters");
    return keys_known(c, par, pkeys, where, what);
}

static int input_keys(v2_ctx *c, const cJSON *o, size_t at)
{
    static const char *const keys[] = {"name", "shape",      "datatype",
                                       "data", "parameters", NULL};
    static const char *const pkeys[] = {"binary_data_size", NULL};

    return member_keys(c, o, "inputs", at, keys, pkeys,
                       "an input has name, shape, datatype, and data or "
                       "parameters.binary_data_size");
}

/* Member at of "inputs": {name, shape, datatype, data | parameters:
 * {binary_data_size}}. */
static int input_parse(v2_ctx *c, const cJSON *o, size_t at, unsigned *seen)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    const cJSON *par = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    const cJSON *size =
        cJSON_GetObjectItemCaseSensitive(par, "binary_data_size");
    size_t i = 0, count = 0, k = 0;
    v2_dtype dt;
    srv_tensor *t;

    if (!cJSON_IsObject(o))
        return srv_fail_set(&c->f, 400, "wrong_type", "inputs",
                            "every member of inputs must be an object");
    if (input_keys(c, o, at) != 0 ||
        input_index(c, cJSON_GetObjectItemCaseSensitive(o, "name"), &i) != 0)
        return -1;
    if (*seen & (1u << i))
        return srv_fail_set(&c->f, 422, "conflicting_fields",
                            c->L->inputs[i].name, "%s is given more than once",
                            c->L->inputs[i].name);
    *seen |= 1u << i;
    if (input_dtype(c, i, cJSON_GetObjectItemCaseSensitive(o, "datatype"),
                    &dt) != 0 ||
        shape_parse(c, i, cJSON_GetObjectItemCaseSensitive(o, "shape"),
                    &count) != 0)
        return -1;
    if ((size != NULL) == (data != NULL))
        return srv_fail_set(&c->f, 400, "bad_request", c->L->inputs[i].name,
                            "%s needs exactly one of data and "
                            "parameters.binary_data_size",
                            c->L->inputs[i].name);
    /* Sizes are checked before anything is allocated for them. */
    if (size != NULL ? binary_check(c, i, dt, size, count) != 0
                     : (k = data_count(data)) != count)
        return size != NULL ? -1 : data_mismatch(c, i, k, count);
    t = &c->rq.in[i];
    if (tensor_alloc(c, i, t, count) != 0)
        return -1;
    k = 0;
    return size != NULL ? binary_read(c, i, t, dt)
                        : data_walk(c, i, t, dt, data, &k, 0);
}

/* The request's "parameters": the loss's parameters and the common fields
 * (reduction, gradients, per_sample, precision), plus binary_data_output. */
static int params_parse(v2_ctx *c, const cJSON *p)
{
    const cJSON *e;
    unsigned seen = 0;
    size_t i;

    if (p == NULL)
        return 0;
    if (!cJSON_IsObject(p))
        return srv_fail_set(&c->f, 400, "wrong_type", "parameters",
                            "parameters must be an object");
    cJSON_ArrayForEach(e, p) {
        if (strcmp(e->string, "binary_data_output") == 0) {
            if (!cJSON_IsBool(e))
                return srv_fail_set(&c->f, 400, "wrong_type", e->string,
                                    "binary_data_output must be true or "
                                    "false");
            c->binary_output = cJSON_IsTrue(e);
            continue;
        }
        for (i = 0; i < c->L->ninputs; i++)
            if (strcmp(e->string, c->L->inputs[i].name) == 0)
                return srv_fail_set(&c->f, 422, "unknown_field", e->string,
                                    "%s is an input: send it in inputs",
                                    e->string);
        if (srv_request_field(&c->rq, e, &seen, &c->f) != 0)
            return -1;
    }
    return 0;
}

static int inputs_parse(v2_ctx *c, const cJSON *in)
{
    const cJSON *e;
    unsigned seen = 0;
    size_t k = 0;

    if (in == NULL)
        return srv_fail_set(&c->f, 422, "missing_field", "inputs",
                            "inputs is required");
    if (!cJSON_IsArray(in))
        return srv_fail_set(&c->f, 400, "wrong_type", "inputs",
                            "inputs must be an array");
    cJSON_ArrayForEach(e, in) {
        if (input_parse(c, e, k++, &seen) != 0)
            return -1;
    }
    if (c->bin_at != c->bin_len)
        return srv_fail_set(&c->f, 400, "bad_request", NULL,
                            "the body holds %zu bytes of binary data after "
                            "the JSON header, the inputs' binary_data_size "
                            "add up to %zu",
                            c->bin_len, c->bin_at);
    return 0;
}

/* ---- Outputs ------------------------------------------------------------- */

static void output_add(v2_ctx *c, v2_okind kind, size_t index,
                       const char *prefix, const char *name)
{
    v2_output *o = &c->out[c->nout++];

    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->index = index;
    snprintf(o->name, sizeof o->name, "%s%s", prefix, name);
}

/* Every output this request can have, in the order of the answer. */
static void outputs_list(v2_ctx *c)
{
    const srv_loss *L = c->L;
    size_t i;

    c->nout = 0;
    output_add(c, OUT_LOSS, 0, "", "loss");
    if (L->per_sample)
        output_add(c, OUT_PER_SAMPLE, 0, "", "per_sample");
    for (i = 0; i < L->ninputs; i++)
        if ((L->inputs[i].flags & SRV_IN_DIFF) && c->rq.in[i].present)
            output_add(c, OUT_GRAD, i, "grad_", L->inputs[i].name);
    for (i = 0; L->metrics[i] && c->nout < V2_MAX_OUTPUTS - 2; i++)
        output_add(c, OUT_METRIC, i, "", L->metrics[i]);
    if (L->generator_grad) {
        output_add(c, OUT_GEN_LOSS, 0, "", "generator_loss");
        output_add(c, OUT_GEN_GRAD, 0, "generator_grad_", L->generator_grad);
    }
}

static int output_keys(v2_ctx *c, const cJSON *o, size_t at)
{
    static const char *const keys[] = {"name", "parameters", NULL};
    static const char *const pkeys[] = {"binary_data", NULL};

    return member_keys(c, o, "outputs", at, keys, pkeys,
                       "an output has name and parameters.binary_data");
}

/* Member at of "outputs": {name, parameters: {binary_data}}. */
static int output_select(v2_ctx *c, const cJSON *o, size_t at)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *par = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    const cJSON *bin = cJSON_GetObjectItemCaseSensitive(par, "binary_data");
    size_t i;

    if (cJSON_IsObject(o) && output_keys(c, o, at) != 0)
        return -1;
    if (!cJSON_IsString(name))
        return srv_fail_set(&c->f, 400, "wrong_type", "outputs",
                            "every member of outputs needs a name (a "
                            "string)");
    if (bin != NULL && !cJSON_IsBool(bin))
        return srv_fail_set(&c->f, 400, "wrong_type", name->valuestring,
                            "%s: binary_data must be true or false",
                            name->valuestring);
    for (i = 0; i < c->nout; i++)
        if (strcmp(c->out[i].name, name->valuestring) == 0) {
            c->out[i].selected = 1;
            c->out[i].binary = bin ? cJSON_IsTrue(bin) : c->binary_output;
            return 0;
        }
    return srv_fail_set(&c->f, 422, "unknown_field", name->valuestring,
                        "model %s has no output \"%.64s\" for this request "
                        "(see GET /v2/models/%s)",
                        c->L->name, name->valuestring, c->L->name);
}

/* Picks the outputs: those named in "outputs", or else every one the
 * gradients and per_sample parameters leave.  Named outputs decide what is
 * computed: gradients only when a gradient is asked for, per_sample only
 * when it is. */
static int outputs_choose(v2_ctx *c)
{
    const cJSON *e;
    size_t i;
    int grad = 0, ps = 0;

    outputs_list(c);
    if (c->outputs != NULL && !cJSON_IsArray(c->outputs))
        return srv_fail_set(&c->f, 400, "wrong_type", "outputs",
                            "outputs must be an array");
    for (i = 0; i < c->nout && c->outputs == NULL; i++) {
        v2_okind k = c->out[i].kind;
        c->out[i].selected =
            !((k == OUT_GRAD || k == OUT_GEN_GRAD) && !c->rq.gradients) &&
            !(k == OUT_PER_SAMPLE && !c->rq.per_sample);
        c->out[i].binary = c->binary_output;
    }
    if (c->outputs == NULL)
        return 0;
    i = 0;
    cJSON_ArrayForEach(e, c->outputs) {
        if (output_select(c, e, i++) != 0)
            return -1;
    }
    for (i = 0; i < c->nout; i++) {
        grad |= c->out[i].selected &&
                (c->out[i].kind == OUT_GRAD || c->out[i].kind == OUT_GEN_GRAD);
        ps |= c->out[i].selected && c->out[i].kind == OUT_PER_SAMPLE;
    }
    c->rq.gradients = grad;
    c->rq.per_sample = ps;
    return 0;
}

/* The values and v2 shape of one output. */
static const double *output_values(const v2_ctx *c, const v2_output *o,
                                   const srv_result *rs, size_t *n,
                                   size_t shape[SRV_MAX_RANK], size_t *rank)
{
    size_t i = o->index, a;

    *n = 1;
    *rank = 1;
    shape[0] = 1;
    switch (o->kind) {
    case OUT_LOSS:
        return &rs->loss;
    case OUT_METRIC:
        return &rs->metric[i];
    case OUT_GEN_LOSS:
        return &rs->gen_loss;
    case OUT_PER_SAMPLE:
        *n = shape[0] = rs->per_sample_n;
        return rs->per_sample;
    case OUT_GEN_GRAD:
        for (i = 0; strcmp(c->L->inputs[i].name, c->L->generator_grad); i++)
            ;
        break;
    case OUT_GRAD:
        break;
    }
    *rank = c->rank[i];
    for (a = 0; a < *rank; a++)
        shape[a] = c->shape[i][a];
    *n = c->rq.in[i].count;
    return o->kind == OUT_GRAD ? rs->grad[i] : rs->gen_grad;
}

static void put_output(srv_buf *b, const v2_ctx *c, const v2_output *o,
                       const srv_result *rs, int first)
{
    size_t n, shape[SRV_MAX_RANK], rank, a;
    const double *x = output_values(c, o, rs, &n, shape, &rank);
    int f64 = c->rq.float64;

    srv_buf_puts(b, first ? "{\"name\":" : ",{\"name\":");
    srv_buf_string(b, o->name);
    srv_buf_puts(b, f64 ? ",\"datatype\":\"FP64\",\"shape\":["
                        : ",\"datatype\":\"FP32\",\"shape\":[");
    for (a = 0; a < rank; a++) {
        if (a)
            srv_buf_puts(b, ",");
        srv_buf_number(b, (double)shape[a], 1);
    }
    if (o->binary) {
        srv_buf_puts(b, "],\"parameters\":{\"binary_data_size\":");
        srv_buf_number(b, (double)(n * (f64 ? 8 : 4)), 1);
        srv_buf_puts(b, "}}");
    } else {
        srv_buf_puts(b, "],\"data\":");
        srv_buf_numbers(b, x, n, f64);
        srv_buf_puts(b, "}");
    }
}

/* Appends one output's values as raw little-endian FP32 or FP64 (FP32
 * rounded from the double once, here). */
static void put_binary(srv_buf *b, const v2_ctx *c, const v2_output *o,
                       const srv_result *rs)
{
    size_t n, shape[SRV_MAX_RANK], rank, k, w = c->rq.float64 ? 8 : 4;
    const double *x = output_values(c, o, rs, &n, shape, &rank);
    unsigned char bytes[8], *p;
    uint32_t u32;
    uint64_t u64;
    float f;

    for (k = 0; k < n && !b->oom; k++) {
        /* Straight into the buffer when it has room (response_hint sizes
         * it for every binary output). */
        p = b->cap - b->len >= w ? (unsigned char *)b->p + b->len : bytes;
        if (w == 4) {
            f = (float)x[k];
            memcpy(&u32, &f, 4);
            le_write(p, u32, 4);
        } else {
            memcpy(&u64, &x[k], 8);
            le_write(p, u64, 8);
        }
        if (p == bytes)
            srv_buf_put(b, (const char *)bytes, w);
        else
            b->len += w;
    }
}

/* The answer: the JSON header, then the binary outputs in its order. */
static int response_write(srv_buf *b, const v2_ctx *c, const srv_result *rs,
                          size_t *header_len)
{
    size_t i;
    int first = 1, binary = 0;

    srv_buf_puts(b, "{\"model_name\":");
    srv_buf_string(b, c->L->name);
    srv_buf_puts(b, ",\"model_version\":\"1\"");
    if (c->id != NULL) {
        srv_buf_puts(b, ",\"id\":");
        srv_buf_string(b, c->id->valuestring);
    }
    srv_buf_puts(b, ",\"outputs\":[");
    for (i = 0; i < c->nout; i++) {
        if (!c->out[i].selected)
            continue;
        put_output(b, c, &c->out[i], rs, first);
        first = 0;
        binary |= c->out[i].binary;
    }
    srv_buf_puts(b, "]}");
    *header_len = binary ? b->len : 0;
    for (i = 0; i < c->nout; i++)
        if (c->out[i].selected && c->out[i].binary)
            put_binary(b, c, &c->out[i], rs);
    return b->oom ? -1 : 0;
}

/* ---- The request --------------------------------------------------------- */

/* Inference-Header-Content-Length: digits, at most the body's length. */
static int header_length(v2_ctx *c, const char *h, size_t len, size_t *out)
{
    char *end;
    unsigned long long v;

    *out = len;
    if (h == NULL)
        return 0;
    v = strtoull(h, &end, 10);
    if (h[0] < '0' || h[0] > '9' || *end != '\0' || v > len)
        return srv_fail_set(&c->f, 400, "bad_request", NULL,
                            "Inference-Header-Content-Length is '%.40s'; it "
                            "must be a byte count no larger than the body's "
                            "%zu bytes",
                            h, len);
    *out = (size_t)v;
    return 0;
}

static cJSON *header_parse(v2_ctx *c, const char *body, size_t n)
{
    const char *end = NULL;
    cJSON *root = n ? cJSON_ParseWithLengthOpts(body, n, &end, 0) : NULL;
    size_t at = end ? (size_t)(end - body) : 0, lax;

    if (root != NULL)
        at = srv_json_skip_space(body, n, at);
    if (root != NULL && at == n && (lax = srv_json_strict_at(body, n)) < n)
        at = lax; /* cJSON took what JSON does not allow */
    if (root == NULL && srv_json_nonfinite_fail(NULL, body, n, at, &c->f) != 0)
        return NULL;
    /* cJSON gives up at the bracket past its nesting limit, on JSON too. */
    if (root == NULL && at < n && (body[at] == '[' || body[at] == '{') &&
        srv_json_valid_at(body, n, 1) == SIZE_MAX) {
        srv_fail_set(&c->f, 422, "shape_mismatch", NULL,
                     "the inference header is nested more than %d levels "
                     "deep",
                     CJSON_NESTING_LIMIT);
        return NULL;
    }
    if (root == NULL || at != n)
        srv_fail_set(&c->f, 400, "invalid_json", NULL,
                     "the inference header is not valid JSON (error at byte "
                     "%zu)",
                     at);
    else if (!cJSON_IsObject(root))
        srv_fail_set(&c->f, 400, "wrong_type", NULL,
                     "the inference header must be a JSON object");
    /* cJSON cuts a string at U+0000: "scores\u0000x" would name scores. */
    else if ((at = srv_json_nul_escape(body, n)) != SIZE_MAX)
        srv_fail_set(&c->f, 400, "invalid_json", NULL,
                     "the inference header holds the character U+0000 "
                     "(\\u0000) at byte %zu, which no name or value has",
                     at);
    else
        return root;
    cJSON_Delete(root);
    return NULL;
}

/* The top-level members: id, parameters, inputs, outputs. */
static int members_parse(v2_ctx *c, const cJSON *root)
{
    const cJSON *e, *params = NULL, *inputs = NULL;

    cJSON_ArrayForEach(e, root) {
        if (cJSON_GetObjectItemCaseSensitive(root, e->string) != e)
            return srv_fail_set(&c->f, 422, "conflicting_fields", e->string,
                                "%.64s is given more than once", e->string);
        if (strcmp(e->string, "id") == 0 && cJSON_IsString(e))
            c->id = e;
        else if (strcmp(e->string, "parameters") == 0)
            params = e;
        else if (strcmp(e->string, "inputs") == 0)
            inputs = e;
        else if (strcmp(e->string, "outputs") == 0)
            c->outputs = e;
        else if (strcmp(e->string, "id") == 0)
            return srv_fail_set(&c->f, 400, "wrong_type", "id",
                                "id must be a string");
        else
            return srv_fail_set(&c->f, 422, "unknown_field", e->string,
                                "unknown field \"%.64s\"; an inference "
                                "request has id, parameters, inputs and "
                                "outputs",
                                e->string);
    }
    if (params_parse(c, params) != 0 || inputs_parse(c, inputs) != 0 ||
        srv_request_check(&c->rq, &c->f) != 0 || outputs_choose(c) != 0)
        return -1;
    return 0;
}

/* The answer's size: the binary outputs exactly, JSON numbers roughly. */
static size_t response_hint(const v2_ctx *c, const srv_result *rs)
{
    size_t i, n, shape[SRV_MAX_RANK], rank, hint = 1024;
    size_t per = c->rq.float64 ? 25 : 15;

    for (i = 0; i < c->nout; i++) {
        if (!c->out[i].selected)
            continue;
        output_values(c, &c->out[i], rs, &n, shape, &rank);
        if (n > (SIZE_MAX / 4 - hint) / per)
            return 1024;
        hint += 128 + n * (c->out[i].binary ? (c->rq.float64 ? 8 : 4) : per);
    }
    return hint;
}

/* An FP32 output holds only what float32 can: a finite value past its
 * range would be +-inf in a binary tensor and a number no float32 reader
 * takes in JSON data, a silent change either way.  So such a value is a
 * 422 naming it and the way out, FP64 outputs.  Values already infinite
 * or NaN (kl's gradients, metrics) keep their documented null. */
static int outputs_fit_fp32(v2_ctx *c, const srv_result *rs)
{
    size_t i, k, n, shape[SRV_MAX_RANK], rank;
    const double *x;

    for (i = 0; i < c->nout && !c->rq.float64; i++) {
        if (!c->out[i].selected)
            continue;
        x = output_values(c, &c->out[i], rs, &n, shape, &rank);
        for (k = 0; k < n; k++)
            if (fabs(x[k]) > FLT_MAX && isfinite(x[k]) &&
                isinf((float)x[k])) /* not one that rounds to FLT_MAX */
                return srv_fail_set(
                    &c->f, 422, "non_finite", c->out[i].name,
                    "%s[%zu] is %.9g, beyond the range of FP32 (%.8g): "
                    "ask for FP64 outputs with \"precision\": \"float64\" "
                    "in parameters",
                    c->out[i].name, k, x[k], (double)FLT_MAX);
    }
    return 0;
}

/* spare (NULL or owned) becomes the answer's buffer when it holds the
 * hint (handler.h, srv_loss_run_owned); the caller frees what is left. */
static void infer_compute(v2_ctx *c, srv_reply *out, double t1, srv_buf *spare)
{
    srv_result rs;
    srv_buf b;
    size_t header_len = 0;
    double t2;
    int rc = srv_request_compute(&c->rq, &rs, &c->f);

    if (rc == 0)
        rc = outputs_fit_fp32(c, &rs);
    t2 = now_s();
    out->compute_s = t2 - t1;
    if (rc != 0) {
        v2_reply_fail(out, &c->f);
    } else {
        srv_buf_init_in(&b, response_hint(c, &rs), spare);
        if (response_write(&b, c, &rs, &header_len) != 0) {
            srv_buf_free(&b);
            v2_reply_error(out, 503, "out_of_memory", SRV_OOM_MESSAGE);
        } else {
            out->status = 200;
            out->body = b.p;
            out->len = b.len;
            out->header_len = header_len;
        }
    }
    out->encode_s = now_s() - t2;
    srv_result_cleanup(&rs);
}

static void infer(const char *name, const char *header, const char *body,
                  size_t len, srv_reply *out, srv_buf *spare)
{
    v2_ctx *c = calloc(1, sizeof *c);
    cJSON *root = NULL;
    size_t json_len;
    double t0 = now_s(), t1;
    int rc;

    memset(out, 0, sizeof *out);
    if (c == NULL) {
        v2_reply_error(out, 503, "out_of_memory", SRV_OOM_MESSAGE);
        return;
    }
    c->L = srv_loss_find(name != NULL ? name : "");
    if (c->L == NULL) {
        v2_reply_error(out, 404, "unknown_loss",
                       "There is no model named '%.64s'.", name ? name : "");
        free(c);
        return;
    }
    srv_request_init(&c->rq, c->L);
    rc = header_length(c, header, len, &json_len);
    if (rc == 0 && (root = header_parse(c, body, json_len)) == NULL)
        rc = -1;
    c->bin = (const unsigned char *)body + json_len;
    c->bin_len = len - json_len;
    if (rc == 0)
        rc = members_parse(c, root);
    t1 = now_s();
    out->parse_s = t1 - t0;
    if (rc != 0)
        v2_reply_fail(out, &c->f);
    else
        infer_compute(c, out, t1, spare);
    /* The id is written from the tree: free it only now. */
    cJSON_Delete(root);
    srv_request_cleanup(&c->rq);
    free(c);
}

void srv_v2_infer(const char *name, const char *header, const char *body,
                  size_t len, srv_reply *out)
{
    srv_buf none = {NULL, 0, 0, 0};

    infer(name, header, body, len, out, &none);
}

void srv_v2_infer_owned(const char *name, const char *header, char *body,
                        size_t len, size_t cap, srv_reply *out)
{
    srv_buf spare;

    srv_buf_adopt(&spare, body, cap);
    infer(name, header, body, len, out, &spare);
    srv_buf_free(&spare); /* unless the answer took it */
}
