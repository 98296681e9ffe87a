/* test_divergence.c -- kl, js and cross_entropy (core/divergence.c): the
 * PyTorch reference vectors, central finite differences of every gradient in
 * every input mode and option, and the edge cases and errors of the
 * contract. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "vec.h"

#define LN2 0.693147180559945309417232121458176568

/* ---- helpers ------------------------------------------------------------- */

typedef struct run {
    loss_divergence_args a;
    loss_divergence_out o;
    loss_error err;
    double *work, *per_sample, *grad_q, *grad_p;
    int rc;
} run;

static loss_divergence_args args_of(loss_divergence_kind kind, size_t n,
                                    size_t k, const double *p, const double *q)
{
    loss_divergence_args a;

    memset(&a, 0, sizeof a);
    a.kind = kind;
    a.n = n;
    a.k = k;
    a.p = p;
    a.q = q;
    a.input = LOSS_INPUT_PROBS;
    a.base = exp(1.0);
    a.reduction = LOSS_REDUCE_MEAN;
    return a;
}

/* Calls loss_divergence with every output requested. */
static void run_call(run *r, const loss_divergence_args *a)
{
    size_t nk = a->n * a->k + 1;

    memset(r, 0, sizeof *r);
    r->a = *a;
    r->work = calloc(loss_divergence_work(a) + 1, sizeof(double));
    r->per_sample = calloc(a->n + 1, sizeof(double));
    r->grad_q = calloc(nk, sizeof(double));
    r->grad_p = calloc(nk, sizeof(double));
    cr_assert(r->work && r->per_sample && r->grad_q && r->grad_p);
    r->a.work = r->work;
    r->o.per_sample = r->per_sample;
    r->o.grad_q = r->grad_q;
    r->o.grad_p = r->grad_p;
    r->rc = loss_divergence(&r->a, &r->o, &r->err);
}

static void run_free(run *r)
{
    free(r->work);
    free(r->per_sample);
    free(r->grad_q);
    free(r->grad_p);
}

static void expect_error(const loss_divergence_args *a, loss_status status,
                         const char *path)
{
    run r;
    char got[64];

    run_call(&r, a);
    loss_error_path(&r.err, got, sizeof got);
    cr_expect_eq(r.rc, status, "status %d (%s), want %d; %s", r.rc,
                 r.err.message, status, path);
    cr_expect_str_eq(got, path, "field %s, want %s (%s)", got, path,
                     r.err.message);
    if (status != LOSS_OK)
        cr_expect(strlen(r.err.message) > 10, "message too short: %s",
                  r.err.message);
    run_free(&r);
}

static double close_to(double got, double want, double rtol)
{
    return fabs(got - want) <= rtol * fmax(1.0, fabs(want));
}

/* ---- reference vectors --------------------------------------------------- */

static loss_divergence_kind kind_of(const char *name)
{
    if (strcmp(name, "kl") == 0)
        return LOSS_DIV_KL;
    if (strcmp(name, "js") == 0)
        return LOSS_DIV_JS;
    cr_assert_str_eq(name, "cross_entropy");
    return LOSS_DIV_CROSS_ENTROPY;
}

static loss_prob_input input_of(const char *name)
{
    if (strcmp(name, "logits") == 0)
        return LOSS_INPUT_LOGITS;
    if (strcmp(name, "log_probs") == 0)
        return LOSS_INPUT_LOG_PROBS;
    cr_assert_str_eq(name, "probs");
    return LOSS_INPUT_PROBS;
}

static void check_expected(const cJSON *want, const run *r, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(want, "metrics");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(want, "gradients");
    size_t nk = r->a.n * r->a.k;

    vec_expect_number(cJSON_GetObjectItemCaseSensitive(want, "loss"), r->o.loss,
                      name, "loss");
    vec_expect_array(cJSON_GetObjectItemCaseSensitive(want, "per_sample"),
                     r->per_sample, r->a.n, name, "per_sample");
    vec_expect_array(cJSON_GetObjectItemCaseSensitive(g, "q"), r->grad_q, nk,
                     name, "grad q");
    if (r->a.kind == LOSS_DIV_JS)
        vec_expect_array(cJSON_GetObjectItemCaseSensitive(g, "p"), r->grad_p,
                         nk, name, "grad p");
#define METRIC(f)                                                              \
    vec_expect_number(cJSON_GetObjectItemCaseSensitive(m, #f), r->o.f, name, #f)
    METRIC(kl_pq);
    METRIC(kl_qp);
    METRIC(js);
    METRIC(js_distance);
    METRIC(cross_entropy);
    METRIC(entropy_p);
    METRIC(entropy_q);
#undef METRIC
}

static void check_error(const cJSON *fail, const run *r, const char *name)
{
    char path[64];

    loss_error_path(&r->err, path, sizeof path);
    cr_expect_str_eq(
        loss_status_code((loss_status)r->rc),
        cJSON_GetObjectItemCaseSensitive(fail, "code")->valuestring, "%s: %s",
        name, r->err.message);
    cr_expect_str_eq(
        path, cJSON_GetObjectItemCaseSensitive(fail, "field")->valuestring,
        "%s: field", name);
}

static void check_case(const cJSON *c)
{
    const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(c, "request");
    const cJSON *fail = cJSON_GetObjectItemCaseSensitive(c, "error");
    size_t dp[3], dq[3], rp, rq;
    double *p = vec_tensor(req, "p", dp, &rp),
           *q = vec_tensor(req, "q", dq, &rq);
    loss_divergence_args a;
    run r;

    cr_assert(p && q && dp[0] == dq[0] && dp[1] == dq[1], "%s: shapes", name);
    a = args_of(
        kind_of(cJSON_GetObjectItemCaseSensitive(c, "loss")->valuestring),
        dp[0], dp[1], p, q);
    a.input = input_of(vec_string(req, "input", "probs"));
    a.base = vec_number(req, "base", exp(1.0));
    a.normalize = vec_bool(req, "normalize", 0);
    a.eps = vec_number(req, "eps", 0.0);
    a.distance = vec_bool(req, "distance", 0);
    a.reduction = (loss_reduction)vec_reduction(req);
    run_call(&r, &a);
    if (fail != NULL)
        check_error(fail, &r, name);
    else if (r.rc == LOSS_OK)
        check_expected(cJSON_GetObjectItemCaseSensitive(c, "expected"), &r,
                       name);
    else
        cr_expect_fail("%s: status %d: %s", name, r.rc, r.err.message);
    run_free(&r);
    free(p);
    free(q);
}

Test(divergence, reference_vectors)
{
    cJSON *root = vec_load("divergence");
    const cJSON *c;
    int count = 0, errors = 0;

    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "cases")) {
        check_case(c);
        count++;
        errors += cJSON_GetObjectItemCaseSensitive(c, "error") != NULL;
    }
    cr_expect_geq(count, 120, "only %d cases", count);
    cr_expect_geq(errors, 20, "only %d error cases", errors);
    cJSON_Delete(root);
}

/* ---- finite differences -------------------------------------------------- */

#define FD_N 3
#define FD_K 5

typedef struct fd_ctx {
    loss_divergence_args a;
    double work[6 * FD_K];
} fd_ctx;

static double fd_eval(void *ctx)
{
    fd_ctx *c = ctx;
    loss_divergence_out o;
    loss_error err;
    int rc;

    memset(&o, 0, sizeof o);
    c->a.work = c->work;
    rc = loss_divergence(&c->a, &o, &err);
    cr_assert_eq(rc, LOSS_OK, "fd: %s", err.message);
    return o.loss;
}

/* Random rows valid for the input mode: probabilities >= 0.05 before
 * scaling (so a step never leaves the domain), or logits in [-3, 3). */
static void fd_inputs(uint64_t *st, loss_prob_input input, int normalize,
                      double *x)
{
    size_t i, j;

    for (i = 0; i < FD_N; i++) {
        double *row = x + i * FD_K, sum = 0, mx = -INFINITY;

        test_rand_fill(st, row, FD_K, input == LOSS_INPUT_PROBS ? 0.05 : -3.0,
                       input == LOSS_INPUT_PROBS ? 1.0 : 3.0);
        for (j = 0; j < FD_K; j++) {
            sum += row[j];
            mx = fmax(mx, row[j]);
        }
        for (j = 0; j < FD_K && !normalize; j++) {
            if (input == LOSS_INPUT_PROBS)
                row[j] /= sum;
        }
        if (input == LOSS_INPUT_LOG_PROBS && !normalize) {
            double s = 0;

            for (j = 0; j < FD_K; j++)
                s += exp(row[j] - mx);
            for (j = 0; j < FD_K; j++)
                row[j] -= mx + log(s);
        }
    }
}

/* Without normalize, probs and log_probs must stay normalised within 1e-6:
 * a step of 1e-8 keeps them valid and measures the partial derivative the
 * contract defines (each entry on its own, the constraint not imposed).
 * Elsewhere the loss is defined on all of R^K and h = 1e-6. */
static void fd_one(loss_divergence_kind kind, loss_prob_input input,
                   int normalize, double eps, double base, int distance,
                   loss_reduction red, uint64_t seed)
{
    double p[FD_N * FD_K], q[FD_N * FD_K];
    uint64_t st = seed;
    fd_ctx c;
    run r;
    int constrained = input != LOSS_INPUT_LOGITS && !normalize;
    double h = constrained ? 1e-8 : 1e-6;
    char what[96];

    fd_inputs(&st, input, normalize, p);
    fd_inputs(&st, input, normalize, q);
    c.a = args_of(kind, FD_N, FD_K, p, q);
    c.a.input = input;
    c.a.normalize = normalize;
    c.a.eps = eps;
    c.a.base = base;
    c.a.distance = distance;
    c.a.reduction = red;
    run_call(&r, &c.a);
    cr_assert_eq(r.rc, LOSS_OK, "%s", r.err.message);
    snprintf(what, sizeof what,
             "kind %d input %d norm %d eps %g base %g dist %d red %d q", kind,
             input, normalize, eps, base, distance, red);
    fd_check(fd_eval, &c, q, r.grad_q, FD_N * FD_K, h, 1e-6, what);
    if (kind == LOSS_DIV_JS) {
        what[strlen(what) - 1] = 'p';
        fd_check(fd_eval, &c, p, r.grad_p, FD_N * FD_K, h, 1e-6, what);
    }
    run_free(&r);
}

static void fd_all_options(loss_divergence_kind kind)
{
    static const struct {
        int normalize;
        double eps, base;
        loss_reduction red;
    } opt[] = {
        {0, 0.0, 0.0, LOSS_REDUCE_MEAN},  {0, 0.0, 2.0, LOSS_REDUCE_SUM},
        {1, 0.0, 10.0, LOSS_REDUCE_MEAN}, {0, 0.02, 0.0, LOSS_REDUCE_SUM},
        {1, 0.1, 2.0, LOSS_REDUCE_MEAN},  {0, 0.0, 0.5, LOSS_REDUCE_MEAN},
    };
    size_t i;
    int input, distance;
    uint64_t seed = 0x9e3779b97f4a7c15ULL + (uint64_t)kind;

    for (input = 0; input <= LOSS_INPUT_LOG_PROBS; input++)
        for (i = 0; i < sizeof opt / sizeof opt[0]; i++)
            for (distance = 0; distance <= (kind == LOSS_DIV_JS); distance++) {
                double base = opt[i].base ? opt[i].base : exp(1.0);

                if (distance && base < 1)
                    continue;
                fd_one(kind, (loss_prob_input)input, opt[i].normalize,
                       opt[i].eps, base, distance, opt[i].red, seed++);
            }
}

Test(divergence, fd_kl)
{
    fd_all_options(LOSS_DIV_KL);
}
Test(divergence, fd_js)
{
    fd_all_options(LOSS_DIV_JS);
}
Test(divergence, fd_cross_entropy)
{
    fd_all_options(LOSS_DIV_CROSS_ENTROPY);
}

/* One-sided difference at js's boundary q_j = p_j = 0: the gradient is the
 * limit log(2)/2, and q_j = 0 < p_j gives -infinity. */
Test(divergence, js_boundary_gradients)
{
    double p[] = {0.5, 0.5, 0.0}, q[] = {0.25, 0.75, 0.0};
    double q2[] = {0.5, 0.0, 0.5};
    loss_divergence_args a = args_of(LOSS_DIV_JS, 1, 3, p, q);
    run r;
    fd_ctx c;
    double f0, f1, h = 1e-8;

    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK);
    cr_expect(close_to(r.grad_q[2], 0.5 * LN2, 1e-15), "%.17g", r.grad_q[2]);
    cr_expect(close_to(r.grad_p[2], 0.5 * LN2, 1e-15), "%.17g", r.grad_p[2]);
    c.a = a;
    f0 = fd_eval(&c);
    q[2] = h;
    f1 = fd_eval(&c);
    cr_expect(close_to((f1 - f0) / h, 0.5 * LN2, 1e-6), "fd %.12g",
              (f1 - f0) / h);
    run_free(&r);

    a.q = q2;
    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK);
    cr_expect(isinf(r.grad_q[1]) && r.grad_q[1] < 0, "%g", r.grad_q[1]);
    cr_expect(isinf(r.grad_p[2]) && r.grad_p[2] < 0, "%g", r.grad_p[2]);
    cr_expect(isfinite(r.grad_q[0]) && isfinite(r.grad_q[2]));
    cr_expect(isinf(r.o.kl_pq) && isinf(r.o.kl_qp) && isinf(r.o.cross_entropy));
    cr_expect(isfinite(r.o.js) && isfinite(r.o.loss));
    run_free(&r);

    /* Normalised rows keep the infinite component infinite and the rest
     * finite. */
    a.normalize = 1;
    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK);
    cr_expect(isinf(r.grad_q[1]) && r.grad_q[1] < 0);
    cr_expect(isfinite(r.grad_q[0]) && isfinite(r.grad_q[2]));
    run_free(&r);
}

/* ---- edge cases ---------------------------------------------------------- */

Test(divergence, extreme_logits_are_exact)
{
    double p[] = {1000.0, -1000.0}, q[] = {-1000.0, 1000.0};
    loss_divergence_args a = args_of(LOSS_DIV_KL, 1, 2, p, q);
    run r;

    a.input = LOSS_INPUT_LOGITS;
    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK, "%s", r.err.message);
    cr_expect_eq(r.o.loss, 2000.0, "%.17g", r.o.loss);
    cr_expect_eq(r.grad_q[0], -1.0, "%.17g", r.grad_q[0]);
    cr_expect_eq(r.grad_q[1], 1.0, "%.17g", r.grad_q[1]);
    cr_expect_eq(r.o.cross_entropy, 2000.0);
    cr_expect_eq(r.o.kl_qp, 2000.0);
    cr_expect(close_to(r.o.js, LN2, 1e-15), "%.17g", r.o.js);
    cr_expect_eq(r.o.entropy_p, 0.0);
    run_free(&r);

    a.kind = LOSS_DIV_JS;
    a.base = 2.0;
    a.input = LOSS_INPUT_LOG_PROBS;
    a.normalize = 1;
    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK, "%s", r.err.message);
    cr_expect(close_to(r.o.loss, 1.0, 1e-15), "%.17g", r.o.loss);
    cr_expect(isfinite(r.grad_q[0]) && isfinite(r.grad_p[1]));
    run_free(&r);
}

Test(divergence, tiny_probabilities_are_finite)
{
    double p[] = {0.5, 0.5}, q[] = {1e-300, 1.0};
    loss_divergence_args a = args_of(LOSS_DIV_KL, 1, 2, p, q);
    run r;
    double want = -LN2 + 150.0 * log(10.0);

    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK, "%s", r.err.message);
    /* 0.5 log(0.5/1e-300) + 0.5 log 0.5 = log 0.5 + 300 ln 10 / 2 */
    cr_expect(close_to(r.o.loss, want, 1e-14), "%.17g vs %.17g", r.o.loss,
              want);
    cr_expect(close_to(r.grad_q[0], -5e299, 1e-15), "%.17g", r.grad_q[0]);
    cr_expect_eq(r.grad_q[1], -0.5);
    run_free(&r);

    a.kind = LOSS_DIV_JS;
    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK);
    cr_expect(isfinite(r.o.loss) && isfinite(r.grad_q[0]) &&
              isfinite(r.grad_p[0]));
    run_free(&r);
}

Test(divergence, equal_distributions)
{
    double p[] = {0.2, 0.3, 0.5, 0.0, 0.1, 0.9};
    loss_divergence_args a = args_of(LOSS_DIV_JS, 2, 3, p, p);
    run r;
    size_t j;

    a.distance = 1;
    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK, "%s", r.err.message);
    cr_expect_eq(r.o.loss, 0.0);
    cr_expect_eq(r.o.js, 0.0);
    cr_expect_eq(r.o.js_distance, 0.0);
    cr_expect_eq(r.o.kl_pq, 0.0);
    cr_expect_eq(r.o.kl_qp, 0.0);
    for (j = 0; j < 6; j++)
        cr_expect(r.grad_q[j] == 0.0 && r.grad_p[j] == 0.0,
                  "distance gradient at JSD = 0 must be 0");
    run_free(&r);

    a.kind = LOSS_DIV_KL;
    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK);
    cr_expect_eq(r.o.loss, 0.0);
    for (j = 0; j < 6; j++)
        cr_expect_eq(r.grad_q[j], p[j] > 0 ? -0.5 : 0.0, "[%zu] %g", j,
                     r.grad_q[j]);
    cr_expect(close_to(r.o.cross_entropy, r.o.entropy_p, 1e-15));
    run_free(&r);
}

Test(divergence, one_sample_two_classes_closed_form)
{
    double p[] = {0.3, 0.7}, q[] = {0.6, 0.4};
    double kl = 0.3 * log(0.5) + 0.7 * log(1.75);
    double ce = -(0.3 * log(0.6) + 0.7 * log(0.4));
    double m0 = 0.45, m1 = 0.55;
    double js = 0.5 * (0.3 * log(0.3 / m0) + 0.7 * log(0.7 / m1)) +
                0.5 * (0.6 * log(0.6 / m0) + 0.4 * log(0.4 / m1));
    loss_divergence_args a = args_of(LOSS_DIV_KL, 1, 2, p, q);
    run r;

    a.base = 2.0;
    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK);
    cr_expect(close_to(r.o.loss, kl / LN2, 1e-14));
    cr_expect(close_to(r.grad_q[0], -0.5 / LN2, 1e-14), "%.17g", r.grad_q[0]);
    cr_expect(close_to(r.o.cross_entropy, ce / LN2, 1e-14));
    cr_expect(close_to(r.o.js, js / LN2, 1e-14));
    cr_expect(close_to(r.o.js_distance, sqrt(js / LN2), 1e-14));
    cr_expect(close_to(r.o.entropy_q, -(0.6 * log(0.6) + 0.4 * log(0.4)) / LN2,
                       1e-14));
    run_free(&r);
}

Test(divergence, disjoint_supports_base2)
{
    double p[] = {1.0, 0.0, 0.0}, q[] = {0.0, 1.0, 0.0};
    loss_divergence_args a = args_of(LOSS_DIV_JS, 1, 3, p, q);
    run r;

    a.base = 2.0;
    a.distance = 1;
    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK);
    cr_expect(close_to(r.o.loss, 1.0, 1e-15), "%.17g", r.o.loss);
    cr_expect(close_to(r.o.js, 1.0, 1e-15));
    cr_expect(isinf(r.o.kl_pq) && isinf(r.o.kl_qp));
    cr_expect(isinf(r.grad_q[0]) && r.grad_q[0] < 0, "%g", r.grad_q[0]);
    cr_expect(isinf(r.grad_p[1]) && r.grad_p[1] < 0, "%g", r.grad_p[1]);
    cr_expect(close_to(r.grad_q[1], 0.25, 1e-15), "%.17g", r.grad_q[1]);
    run_free(&r);
}

/* Normalisation makes the loss scale-invariant, so the gradient with respect
 * to the raw row is orthogonal to it; softmax makes it shift-invariant, so
 * each logits gradient row sums to 0. */
Test(divergence, invariances)
{
    double p[] = {1.0, 2.0, 3.0, 4.0}, q[] = {2.0, 2.0, 1.0, 5.0};
    double pn[4], qn[4], dot = 0, sum = 0;
    loss_divergence_args a = args_of(LOSS_DIV_JS, 1, 4, p, q);
    run r, s;
    size_t j;

    for (j = 0; j < 4; j++)
        pn[j] = p[j] / 10.0, qn[j] = q[j] / 10.0;
    a.normalize = 1;
    run_call(&r, &a);
    a.p = pn, a.q = qn, a.normalize = 0;
    run_call(&s, &a);
    cr_assert(r.rc == LOSS_OK && s.rc == LOSS_OK);
    cr_expect(close_to(r.o.loss, s.o.loss, 1e-15));
    for (j = 0; j < 4; j++)
        dot += r.grad_q[j] * q[j];
    cr_expect(fabs(dot) < 1e-15, "%g", dot);
    run_free(&r);
    run_free(&s);

    a = args_of(LOSS_DIV_CROSS_ENTROPY, 1, 4, p, q);
    a.input = LOSS_INPUT_LOGITS;
    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK);
    for (j = 0; j < 4; j++)
        sum += r.grad_q[j];
    cr_expect(fabs(sum) < 1e-15, "%g", sum);
    run_free(&r);
}

Test(divergence, eps_smooths_zeros)
{
    double p[] = {0.5, 0.5}, q[] = {1.0, 0.0};
    loss_divergence_args a = args_of(LOSS_DIV_KL, 1, 2, p, q);
    run r;
    double q1 = 0.01 / 1.02, q0 = 1.01 / 1.02;
    double p0 = 0.51 / 1.02;

    a.eps = 0.01;
    run_call(&r, &a);
    cr_assert_eq(r.rc, LOSS_OK, "%s", r.err.message);
    cr_expect(close_to(r.o.loss, p0 * log(p0 / q0) + p0 * log(p0 / q1), 1e-14));
    /* dL/dq1 = -P1/Q1 / (1 + K eps) */
    cr_expect(close_to(r.grad_q[1], -p0 / q1 / 1.02, 1e-14), "%.17g",
              r.grad_q[1]);
    run_free(&r);
}

Test(divergence, null_outputs_are_skipped)
{
    double p[] = {0.2, 0.8, 0.5, 0.5}, q[] = {0.4, 0.6, 0.9, 0.1};
    loss_divergence_args a = args_of(LOSS_DIV_JS, 2, 2, p, q);
    loss_divergence_out o;
    loss_error err;
    double work[12];
    run r;

    run_call(&r, &a);
    memset(&o, 0, sizeof o);
    a.work = work;
    cr_assert_eq(loss_divergence(&a, &o, &err), LOSS_OK);
    cr_expect_eq(o.loss, r.o.loss);
    cr_expect_eq(o.js, r.o.js);
    cr_expect(
        close_to(r.o.loss, (r.per_sample[0] + r.per_sample[1]) / 2, 1e-15));
    cr_expect_eq(loss_divergence_work(&a), 12);
    run_free(&r);
}

/* ---- errors -------------------------------------------------------------- */

Test(divergence, parameter_errors)
{
    double p[] = {0.5, 0.5}, q[] = {0.5, 0.5};
    loss_divergence_args a = args_of(LOSS_DIV_KL, 1, 2, p, q);
    double bad_base[] = {0.0, 1.0, -2.0, NAN, INFINITY};
    size_t i;

    for (i = 0; i < 5; i++) {
        a.base = bad_base[i];
        expect_error(&a, LOSS_E_PARAM, "base");
    }
    a.base = 2.0;
    a.eps = -0.5;
    expect_error(&a, LOSS_E_PARAM, "eps");
    a.eps = NAN;
    expect_error(&a, LOSS_E_PARAM, "eps");
    a.eps = 0;
    a.input = (loss_prob_input)7;
    expect_error(&a, LOSS_E_PARAM, "input");
    a.input = LOSS_INPUT_PROBS;
    a.kind = LOSS_DIV_JS;
    a.distance = 1;
    a.base = 0.5;
    expect_error(&a, LOSS_E_PARAM, "base");
    a.n = 0;
    expect_error(&a, LOSS_E_EMPTY, "p");
    a.n = 1;
    a.k = 0;
    expect_error(&a, LOSS_E_SHAPE, "p");
}

Test(divergence, non_finite_inputs)
{
    double p[] = {0.5, 0.5, 0.5, 0.5}, q[] = {0.5, 0.5, 0.5, 0.5};
    loss_divergence_args a = args_of(LOSS_DIV_CROSS_ENTROPY, 2, 2, p, q);

    p[3] = NAN;
    expect_error(&a, LOSS_E_NONFINITE, "p[1][1]");
    p[3] = 0.5;
    q[2] = INFINITY;
    expect_error(&a, LOSS_E_NONFINITE, "q[1][0]");
    q[2] = -INFINITY;
    a.input = LOSS_INPUT_LOG_PROBS;
    expect_error(&a, LOSS_E_NONFINITE, "q[1][0]");
    a.input = LOSS_INPUT_LOGITS;
    expect_error(&a, LOSS_E_NONFINITE, "q[1][0]");
}

Test(divergence, probability_errors)
{
    double p[] = {0.5, 0.5, 0.5, 0.5}, q[] = {0.5, 0.5, 0.5, 0.5};
    loss_divergence_args a = args_of(LOSS_DIV_JS, 2, 2, p, q);

    q[1] = -0.1;
    expect_error(&a, LOSS_E_PROB, "q[0][1]");
    a.normalize = 1;
    expect_error(&a, LOSS_E_PROB, "q[0][1]");
    q[1] = 0.5;
    p[2] = p[3] = 0.0;
    expect_error(&a, LOSS_E_PROB, "p[1]");
    a.normalize = 0;
    expect_error(&a, LOSS_E_PROB, "p[1]");
    p[2] = 0.5;
    p[3] = 0.5 + 2e-6;
    expect_error(&a, LOSS_E_PROB, "p[1]");
    p[3] = 0.5 + 5e-7; /* within the 1e-6 tolerance */
    expect_error(&a, LOSS_OK, "");
}

Test(divergence, log_probs_must_be_normalized)
{
    double p[] = {-LN2, -LN2, -LN2, -LN2}, q[] = {-LN2, -LN2, -0.1, -3.0};
    loss_divergence_args a = args_of(LOSS_DIV_KL, 2, 2, p, q);
    run r;

    a.input = LOSS_INPUT_LOG_PROBS;
    expect_error(&a, LOSS_E_PROB, "q[1]");
    a.normalize = 1;
    run_call(&r, &a);
    cr_expect_eq(r.rc, LOSS_OK, "%s", r.err.message);
    run_free(&r);
}

Test(divergence, infinite_divergence)
{
    double p[] = {0.5, 0.5, 0.3, 0.7, 1.0, 0.0};
    double q[] = {0.5, 0.5, 1.0, 0.0, 1.0, 0.0};
    loss_divergence_args a = args_of(LOSS_DIV_KL, 3, 2, p, q);
    run r;

    expect_error(&a, LOSS_E_INFINITE, "q[1]");
    a.kind = LOSS_DIV_CROSS_ENTROPY;
    expect_error(&a, LOSS_E_INFINITE, "q[1]");
    a.normalize = 1;
    expect_error(&a, LOSS_E_INFINITE, "q[1]");
    a.kind = LOSS_DIV_JS;
    run_call(&r, &a);
    cr_expect_eq(r.rc, LOSS_OK);
    cr_expect(isinf(r.o.kl_pq) && isinf(r.o.cross_entropy));
    cr_expect(isfinite(r.o.kl_qp));
    run_free(&r);
    a.kind = LOSS_DIV_KL;
    a.eps = 1e-9;
    run_call(&r, &a);
    cr_expect_eq(r.rc, LOSS_OK);
    cr_expect(isfinite(r.o.loss) && r.o.loss > 1.0);
    run_free(&r);
}

/* The examples of scipy.spatial.distance.jensenshannon's documentation. */
Test(divergence, scipy_jensenshannon_examples)
{
    double p1[] = {1.0, 0.0, 0.0}, q1[] = {0.0, 1.0, 0.0};
    double p2[] = {1.0, 0.0}, q2[] = {0.5, 0.5};
    loss_divergence_args a = args_of(LOSS_DIV_JS, 1, 3, p1, q1);
    run r;

    a.distance = 1;
    a.base = 2.0;
    run_call(&r, &a);
    cr_expect(close_to(r.o.loss, 1.0, 1e-15), "%.17g", r.o.loss);
    run_free(&r);
    a.q = p1;
    run_call(&r, &a);
    cr_expect_eq(r.o.loss, 0.0);
    run_free(&r);
    a = args_of(LOSS_DIV_JS, 1, 2, p2, q2);
    a.distance = 1;
    run_call(&r, &a);
    cr_expect(close_to(r.o.loss, 0.46450140402245893, 1e-15), "%.17g",
              r.o.loss);
    cr_expect(close_to(r.o.js_distance, r.o.loss, 1e-15));
    cr_expect(close_to(r.o.js, r.o.loss * r.o.loss, 1e-15));
    run_free(&r);
}

/* With one class every distribution is [1]: every divergence is 0. */
Test(divergence, single_class)
{
    double p[] = {1.0, 1.0}, q[] = {1.0, 1.0}, lp[] = {3.0, -7.0};
    loss_divergence_args a = args_of(LOSS_DIV_KL, 2, 1, p, q);
    int kind;
    run r;

    for (kind = 0; kind <= LOSS_DIV_CROSS_ENTROPY; kind++) {
        a.kind = (loss_divergence_kind)kind;
        a.input = LOSS_INPUT_PROBS;
        a.q = q;
        run_call(&r, &a);
        cr_expect(r.rc == LOSS_OK && r.o.loss == 0.0, "%d: %g", kind, r.o.loss);
        run_free(&r);
        a.input = LOSS_INPUT_LOGITS;
        a.q = lp;
        run_call(&r, &a);
        cr_expect(r.rc == LOSS_OK && r.o.loss == 0.0, "%d: %g", kind, r.o.loss);
        cr_expect(r.grad_q[0] == 0.0 && r.grad_q[1] == 0.0);
        run_free(&r);
    }
}
