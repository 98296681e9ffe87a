/* handler.c -- one loss request from body bytes to a reply: parse and
 * validate against the loss's table entry, allocate the outputs, call the
 * core through the entry's adapter, and write the response, timing each
 * stage. */
#include "handler.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "json_in.h"
#include "json_out.h"
#include "loss.h"
#include "table.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- Names --------------------------------------------------------------- */

static char names_text[512];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_build(void)
{
    size_t i, at = 0;
    int w;

    for (i = 0; i < srv_nlosses; i++) {
        w = snprintf(names_text + at, sizeof names_text - at, "%s%s",
                     i ? ", " : "", srv_losses[i].name);
        if (w < 0 || (size_t)w >= sizeof names_text - at)
            return;
        at += (size_t)w;
    }
}

const char *srv_loss_names(void)
{
    pthread_once(&names_once, names_build);
    return names_text;
}

int srv_loss_exists(const char *name)
{
    return srv_loss_find(name) != NULL;
}

int srv_divergence_exists(const char *name)
{
    return srv_divergence_find(name) != NULL;
}

int srv_endpoint_exists(const char *name)
{
    return srv_endpoint_find(name) != NULL;
}

/* ---- Outputs ------------------------------------------------------------- */

static double *alloc_doubles(size_t n)
{
    if (n > SIZE_MAX / sizeof(double))
        return NULL;
    return srv_huge_malloc(n * sizeof(double));
}

/* The value of a dimension symbol ("N") in the validated request. */
static size_t symbol_value(const srv_request *rq, const char *sym)
{
    const srv_loss *L = rq->loss;
    size_t i, a;

    for (i = 0; i < L->ninputs; i++) {
        const srv_tensor *t = &rq->in[i];
        if (!t->present)
            continue;
        for (a = 0; a < L->inputs[i].rank; a++)
            if (strcmp(L->inputs[i].shape[a], sym) == 0)
                return t->width ? t->dim[a + 1] : t->dim[a];
    }
    return 0;
}

static size_t input_index(const srv_loss *L, const char *name)
{
    size_t i;

    for (i = 0; i < L->ninputs; i++)
        if (strcmp(L->inputs[i].name, name) == 0)
            break;
    return i;
}

static int result_alloc(const srv_request *rq, srv_result *rs)
{
    const srv_loss *L = rq->loss;
    size_t i;

    if (L->per_sample && rq->per_sample) {
        rs->per_sample_n = symbol_value(rq, L->per_sample);
        if ((rs->per_sample = alloc_doubles(rs->per_sample_n)) == NULL)
            return -1;
    }
    if (!rq->gradients)
        return 0;
    for (i = 0; i < L->ninputs; i++) {
        if (!rq->in[i].present || !(L->inputs[i].flags & SRV_IN_DIFF))
            continue;
        if ((rs->grad[i] = alloc_doubles(rq->in[i].count)) == NULL)
            return -1;
    }
    if (L->generator_grad) {
        i = input_index(L, L->generator_grad);
        if ((rs->gen_grad = alloc_doubles(rq->in[i].count)) == NULL)
            return -1;
    }
    return 0;
}

void srv_result_cleanup(srv_result *rs)
{
    size_t i;

    free(rs->per_sample);
    for (i = 0; i < SRV_MAX_INPUTS; i++)
        free(rs->grad[i]);
    free(rs->gen_grad);
    free(rs->work);
    free(rs->extra);
}

/* ---- Replies ------------------------------------------------------------- */

/* --max-compute in seconds, 0 for none: set once before the first
 * request, then only read. */
static unsigned compute_limit;

/* Set by srv_compute_abort, when shutdown stops every computation. */
static atomic_int compute_aborted;

void srv_compute_limit_set(unsigned seconds)
{
    compute_limit = seconds;
}

void srv_compute_abort(void)
{
    atomic_store(&compute_aborted, 1);
}

/* The loss_deadline of srv_request_compute: ctx is its srv_result, which
 * keeps why it expired, so that the answer says what stopped the loss. */
static int deadline_expired(void *ctx)
{
    srv_result *rs = ctx;

    if (atomic_load_explicit(&compute_aborted, memory_order_relaxed))
        return rs->aborted = 1;
    return now_s() >= rs->deadline_end;
}

/* A core status as a client error: 422 with the contract's code and the
 * path of the element, 503 when out of memory or stopped by shutdown, 413
 * past --max-compute, 500 for a status outside loss.h's enum. */
static void loss_fail(int rc, const loss_error *err, int aborted, srv_fail *f)
{
    char path[256];

    if (rc == LOSS_E_NOMEM) {
        srv_fail_set(f, 503, "out_of_memory", NULL, SRV_OOM_MESSAGE);
        return;
    }
    if (rc == LOSS_E_STOPPED && aborted) {
        srv_fail_set(f, 503, "shutting_down", NULL,
                     "The server is shutting down and stopped this "
                     "computation; retry on another replica.");
        return;
    }
    if (rc == LOSS_E_STOPPED) {
        srv_fail_set(f, 413, loss_status_code(LOSS_E_STOPPED), NULL,
                     "Computing this request took longer than the limit of "
                     "%u s (--max-compute); send fewer samples per request.",
                     compute_limit);
        return;
    }
    if (rc > 0 || rc < LOSS_E_STOPPED || err->status != rc) {
        srv_fail_set(f, 500, "internal_error", NULL,
                     "the loss failed with an unexpected status %d", rc);
        return;
    }
    loss_error_path(err, path, sizeof path);
    srv_fail_set(f, 422, loss_status_code((loss_status)rc), path, "%s",
                 err->message[0] ? err->message
                                 : loss_status_message((loss_status)rc));
}

static void reply_fail(srv_reply *out, const srv_fail *f)
{
    srv_reply_error(out, f->status, f->code, f->field[0] ? f->field : NULL,
                    "%s", f->message);
}

/* Rough size of the response, so the buffer rarely grows. */
static size_t response_hint(const srv_request *rq, const srv_result *rs)
{
    size_t i, n = rs->per_sample_n, per = rq->float64 ? 25 : 14;

    for (i = 0; i < rq->loss->ninputs; i++)
        if (rs->grad[i])
            n += rq->in[i].count;
    if (n > (SIZE_MAX - 1024) / per / 2)
        return 1024;
    return 1024 + n * per;
}

/* spare (see run_within) becomes the response's buffer when it holds the
 * hint. */
static void reply_result(srv_reply *out, const srv_request *rq,
                         const srv_result *rs, srv_buf *spare)
{
    srv_buf b;

    srv_buf_init_in(&b, response_hint(rq, rs), spare);
    if (srv_response_write(&b, rq, rs) != 0) {
        srv_buf_free(&b);
        srv_reply_error(out, 503, "out_of_memory", NULL, SRV_OOM_MESSAGE);
        return;
    }
    out->status = 200;
    out->body = b.p;
    out->len = b.len;
}

/* ---- The request --------------------------------------------------------- */

/* Finite inputs can still give a loss past double precision: a hinge
 * squared beyond 1e308, distances between embeddings of 1e200.  Such a
 * result is the contract's overflowing number, a 422, not a loss of null
 * (vae and gan check their own sums in the core, with the same words).
 * Estimates are left alone: their infinite metrics are null by design. */
static int result_overflows(const srv_request *rq, const srv_result *rs,
                            srv_fail *f)
{
    size_t i;

    if (rq->loss->flags & SRV_L_ESTIMATE)
        return 0;
    for (i = 0; rs->per_sample != NULL && i < rs->per_sample_n; i++)
        if (!isfinite(rs->per_sample[i]))
            return srv_fail_set(f, 422, "non_finite", NULL,
                                "The loss of row %zu overflows double "
                                "precision; scale the inputs down.",
                                i);
    if (!isfinite(rs->loss) ||
        (rq->loss->generator_grad != NULL && !isfinite(rs->gen_loss)))
        return srv_fail_set(f, 422, "non_finite", NULL,
                            "The loss overflows double precision; scale the "
                            "inputs down.");
    return 0;
}

/* The JSON path of element k of input t, named name: name[i], name[i][j]
 * or name[l][i][j] (layers of their own widths). */
static void element_path(const srv_tensor *t, const char *name, size_t k,
                         char *path, size_t cap)
{
    size_t l, size;

    if (t->rank == 1) {
        snprintf(path, cap, "%s[%zu]", name, k);
        return;
    }
    if (t->rank == 2) {
        snprintf(path, cap, "%s[%zu][%zu]", name, k / t->dim[1], k % t->dim[1]);
        return;
    }
    for (l = 0; l + 1 < t->dim[0]; l++, k -= size)
        if (k < (size = t->dim[1] * t->width[l]))
            break;
    snprintf(path, cap, "%s[%zu][%zu][%zu]", name, l, k / t->width[l],
             k % t->width[l]);
}

/* The exponent bits of *x plus one: the sign bit is set when they were
 * all ones (an infinity or NaN). */
static inline uint64_t exponent_carry(const double *x)
{
    uint64_t b;

    memcpy(&b, x, sizeof b);
    return (b & 0x7ff0000000000000u) + ((uint64_t)1 << 52);
}

/* Whether x[0..n) holds no infinity or NaN: on the bits, four lanes at a
 * time and no early exit, so that it runs at the speed of memory (a third
 * of the time of isfinite on each). */
static int all_finite(const double *x, size_t n)
{
    uint64_t m0 = 0, m1 = 0, m2 = 0, m3 = 0;
    size_t k = 0;

    for (; k + 4 <= n; k += 4) {
        m0 |= exponent_carry(x + k);
        m1 |= exponent_carry(x + k + 1);
        m2 |= exponent_carry(x + k + 2);
        m3 |= exponent_carry(x + k + 3);
    }
    for (; k < n; k++)
        m0 |= exponent_carry(x + k);
    return ((m0 | m1 | m2 | m3) >> 63) == 0;
}

/* A gradient past double precision (from finite inputs: the centre of
 * embeddings of 1e308, a product of two 1e200 vectors) is an overflowing
 * number as the loss is: a 422 naming the element, not a null.  Only the
 * divergences document infinite gradient components as null. */
static int gradient_overflows(const srv_request *rq, const double *g, size_t in,
                              const char *what, srv_fail *f)
{
    const srv_tensor *t = &rq->in[in];
    char path[256];
    size_t k;

    if (all_finite(g, t->count))
        return 0;
    for (k = 0; isfinite(g[k]); k++)
        ;
    element_path(t, rq->loss->inputs[in].name, k, path, sizeof path);
    return srv_fail_set(f, 422, "non_finite", path,
                        "%s has a %s that overflows double precision.", path,
                        what);
}

static int gradients_overflow(const srv_request *rq, const srv_result *rs,
                              srv_fail *f)
{
    const srv_loss *L = rq->loss;
    size_t i;

    if (L->flags & SRV_L_INFINITE_GRADIENTS)
        return 0;
    for (i = 0; i < L->ninputs; i++)
        if (rs->grad[i] != NULL &&
            gradient_overflows(rq, rs->grad[i], i, "gradient", f) != 0)
            return -1;
    if (rs->gen_grad == NULL)
        return 0;
    return gradient_overflows(rq, rs->gen_grad,
                              input_index(L, L->generator_grad),
                              "generator gradient", f);
}

int srv_request_compute(const srv_request *rq, srv_result *rs, srv_fail *f)
{
    loss_error err;
    int rc;

    memset(rs, 0, sizeof *rs);
    memset(&err, 0, sizeof err);
    rs->deadline_end = compute_limit > 0 ? now_s() + compute_limit : INFINITY;
    rs->deadline.expired = deadline_expired;
    rs->deadline.ctx = rs;
    if (result_alloc(rq, rs) != 0)
        rc = LOSS_E_NOMEM;
    else
        rc = rq->loss->run(rq, rs, &err);
    if (rc == LOSS_OK)
        return result_overflows(rq, rs, f) != 0 ? -1
                                                : gradients_overflow(rq, rs, f);
    loss_fail(rc, &err, rs->aborted, f);
    return -1;
}

static void compute(srv_reply *out, const srv_request *rq, double t1,
                    srv_buf *spare)
{
    srv_result rs;
    srv_fail f;
    double t2;
    int rc = srv_request_compute(rq, &rs, &f);

    t2 = now_s();
    out->compute_s = t2 - t1;
    if (rc != 0)
        reply_fail(out, &f);
    else
        reply_result(out, rq, &rs, spare);
    out->encode_s = now_s() - t2;
    srv_result_cleanup(&rs);
}

/* srv_loss_run_within with the body's buffer in *spare (see
 * srv_loss_run_owned), or none (spare->p NULL); the response may take it,
 * the caller frees what is left. */
static int run_within(const char *name, const char *body, size_t len,
                      size_t max_cost, srv_reply *out, srv_parsed *later,
                      srv_buf *spare)
{
    const srv_loss *L = srv_endpoint_find(name);
    srv_request rq;
    srv_fail f;
    double t0 = now_s(), t1;

    memset(out, 0, sizeof *out);
    if (L == NULL) {
        srv_reply_error(out, 404, "unknown_loss", NULL,
                        "unknown loss \"%.64s\"; the losses are: %s",
                        name ? name : "", srv_loss_names());
        return 0;
    }
    if (srv_request_parse(L, body, len, &rq, &f) != 0) {
        out->parse_s = now_s() - t0;
        reply_fail(out, &f);
        return 0;
    }
    t1 = now_s();
    if (srv_request_cost(&rq) > max_cost) {
        later->rq = rq;
        later->parse_s = t1 - t0;
        return -1;
    }
    out->parse_s = t1 - t0;
    compute(out, &rq, t1, spare);
    srv_request_cleanup(&rq);
    return 0;
}

int srv_loss_run_within(const char *name, const char *body, size_t len,
                        size_t max_cost, srv_reply *out, srv_parsed *later)
{
    srv_buf none = {NULL, 0, 0, 0};

    return run_within(name, body, len, max_cost, out, later, &none);
}

void srv_parsed_run(srv_parsed *p, srv_reply *out)
{
    srv_buf none = {NULL, 0, 0, 0};

    memset(out, 0, sizeof *out);
    out->parse_s = p->parse_s;
    compute(out, &p->rq, now_s(), &none);
    srv_parsed_cleanup(p);
}

void srv_parsed_cleanup(srv_parsed *p)
{
    srv_request_cleanup(&p->rq);
}

void srv_loss_run(const char *name, const char *body, size_t len,
                  srv_reply *out)
{
    (void)srv_loss_run_within(name, body, len, SIZE_MAX, out, NULL);
}

void srv_loss_run_owned(const char *name, char *body, size_t len, size_t cap,
                        srv_reply *out)
{
    srv_buf spare;

    srv_buf_adopt(&spare, body, cap);
    (void)run_within(name, body, len, SIZE_MAX, out, NULL, &spare);
    srv_buf_free(&spare); /* unless the response took it */
}
