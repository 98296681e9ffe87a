/* test_continuous.c -- the divergences of continuous data: gaussian_kl
 * (core/continuous.c) against the PyTorch vectors, central finite
 * differences and its edge cases; the sample estimators (core/samples.c)
 * against the numpy vectors, against closed-form divergences of Gaussians
 * from 5,000 samples per side, and on every invalid input. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "rng.h"
#include "vec.h"

#define FD_H 1e-6
#define FD_RTOL 1e-6
#define LN2 0.69314718055994530942

static void expect_error(int rc, const loss_error *e, loss_status status,
                         const char *path, const char *what)
{
    char got[128];

    cr_assert_eq(rc, (int)status, "%s: status %d, want %d (%s)", what, rc,
                 (int)status, e->message);
    cr_assert_eq(e->status, status, "%s: err->status", what);
    loss_error_path(e, got, sizeof got);
    cr_assert_str_eq(got, path, "%s: field %s, want %s", what, got, path);
    cr_assert(
        strlen(e->message) > 10 && strncmp(e->message, path, strlen(path)) == 0,
        "%s: message \"%s\" does not open with %s", what, e->message, path);
}

static void expect_vector_error(const cJSON *c, int rc, const loss_error *e)
{
    const cJSON *want = vec_field(c, "error");
    const char *name = vec_field(c, "name")->valuestring;
    const char *code = vec_field(want, "code")->valuestring;
    const char *field = vec_field(want, "field")->valuestring;
    char got[128];

    cr_assert_neq(rc, LOSS_OK, "%s: succeeded, want %s", name, code);
    cr_expect_str_eq(loss_status_code(e->status), code, "%s: code %s, want %s",
                     name, loss_status_code(e->status), code);
    loss_error_path(e, got, sizeof got);
    cr_expect_str_eq(got, field, "%s: field %s, want %s", name, got, field);
}

/* ---- gaussian_kl ------------------------------------------------------- */

typedef struct gkl_case {
    loss_gaussian_kl_args a;
    double *in[4];   /* mu_p, logvar_p, mu_q, logvar_q */
    double *grad[4]; /* their gradients */
    double *per_sample;
} gkl_case;

static const char *const gkl_names[] = {"mu_p", "logvar_p", "mu_q", "logvar_q"};

static void gkl_bind(gkl_case *c)
{
    c->a.mu_p = c->in[0];
    c->a.logvar_p = c->in[1];
    c->a.mu_q = c->in[2];
    c->a.logvar_q = c->in[3];
}

static void gkl_alloc(gkl_case *c, size_t n, size_t d)
{
    size_t i;

    c->a.n = n;
    c->a.d = d;
    for (i = 0; i < 4; i++) {
        if (c->in[i] == NULL)
            c->in[i] = calloc(n * d + 1, sizeof(double));
        c->grad[i] = calloc(n * d + 1, sizeof(double));
    }
    c->per_sample = calloc(n + 1, sizeof(double));
    gkl_bind(c);
}

static void gkl_free(gkl_case *c)
{
    size_t i;

    for (i = 0; i < 4; i++) {
        free(c->in[i]);
        free(c->grad[i]);
    }
    free(c->per_sample);
}

static loss_gaussian_kl_out gkl_out(const gkl_case *c)
{
    loss_gaussian_kl_out o;

    memset(&o, 0, sizeof o);
    o.per_sample = c->per_sample;
    o.grad_mu_p = c->grad[0];
    o.grad_logvar_p = c->grad[1];
    o.grad_mu_q = c->grad[2];
    o.grad_logvar_q = c->grad[3];
    return o;
}

static void gkl_check_vector(const cJSON *cj)
{
    const cJSON *req = vec_field(cj, "request"),
                *exp = vec_field(cj, "expected");
    const char *name = vec_field(cj, "name")->valuestring;
    size_t dims[3] = {0, 0, 0}, rank, i;
    gkl_case c;
    loss_gaussian_kl_out o;
    loss_error e;
    int rc;

    memset(&c, 0, sizeof c);
    for (i = 0; i < 4; i++)
        c.in[i] = vec_tensor(req, gkl_names[i], dims, &rank);
    gkl_alloc(&c, dims[0], rank == 2 ? dims[1] : 0);
    c.a.reduction = (loss_reduction)vec_reduction(req);
    o = gkl_out(&c);
    rc = loss_gaussian_kl(&c.a, &o, &e);
    if (exp == NULL) {
        expect_vector_error(cj, rc, &e);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s: %s", name, e.message);
        vec_expect_number(vec_field(exp, "loss"), o.loss, name, "loss");
        vec_expect_array(vec_field(exp, "per_sample"), o.per_sample, c.a.n,
                         name, "per_sample");
        for (i = 0; i < 4; i++)
            vec_expect_array(
                vec_field(vec_field(exp, "gradients"), gkl_names[i]), c.grad[i],
                c.a.n * c.a.d, name, gkl_names[i]);
    }
    gkl_free(&c);
}

Test(gaussian_kl, vectors)
{
    cJSON *v = vec_load("continuous");
    const cJSON *c;
    int n = 0;

    cJSON_ArrayForEach(c, vec_field(v, "cases")) {
        gkl_check_vector(c);
        n++;
    }
    cr_assert_geq(n, 9);
    cJSON_Delete(v);
}

static double gkl_eval(void *ctx)
{
    gkl_case *c = ctx;
    loss_gaussian_kl_out o;
    loss_error e;

    memset(&o, 0, sizeof o);
    cr_assert_eq(loss_gaussian_kl(&c->a, &o, &e), LOSS_OK, "%s", e.message);
    return o.loss;
}

static void gkl_fd(loss_reduction reduction, uint64_t seed)
{
    gkl_case c;
    loss_gaussian_kl_out o;
    loss_error e;
    size_t i, n = 3, d = 4;
    char what[64];

    memset(&c, 0, sizeof c);
    gkl_alloc(&c, n, d);
    for (i = 0; i < 4; i++)
        test_rand_fill(&seed, c.in[i], n * d, -1.5, 1.5);
    c.a.reduction = reduction;
    o = gkl_out(&c);
    cr_assert_eq(loss_gaussian_kl(&c.a, &o, &e), LOSS_OK);
    for (i = 0; i < 4; i++) {
        snprintf(what, sizeof what, "gaussian_kl %s %s", gkl_names[i],
                 reduction == LOSS_REDUCE_SUM ? "sum" : "mean");
        fd_check(gkl_eval, &c, c.in[i], c.grad[i], n * d, FD_H, FD_RTOL, what);
    }
    gkl_free(&c);
}

Test(gaussian_kl, finite_differences)
{
    gkl_fd(LOSS_REDUCE_MEAN, 11);
    gkl_fd(LOSS_REDUCE_SUM, 12);
}

Test(gaussian_kl, closed_form_n1_d1)
{
    gkl_case c;
    loss_gaussian_kl_out o;
    loss_error e;

    memset(&c, 0, sizeof c);
    gkl_alloc(&c, 1, 1);
    c.in[0][0] = 1.0;      /* mu_p */
    c.in[1][0] = log(4.0); /* var_p = 4 */
    c.in[3][0] = 0.0;      /* q = N(0, 1) */
    o = gkl_out(&c);
    cr_assert_eq(loss_gaussian_kl(&c.a, &o, &e), LOSS_OK);
    /* 1/2 (4 + 1 - 1 - log 4) */
    cr_assert_float_eq(o.loss, 0.5 * (4.0 - log(4.0)), 1e-15);
    cr_assert_float_eq(c.grad[0][0], 1.0, 1e-15);
    cr_assert_float_eq(c.grad[2][0], -1.0, 1e-15);
    cr_assert_float_eq(c.grad[1][0], 1.5, 1e-15);
    cr_assert_float_eq(c.grad[3][0], -0.5 * (3.0 + 1.0), 1e-15);
    gkl_free(&c);
}

Test(gaussian_kl, identical_is_exactly_zero)
{
    gkl_case c;
    loss_gaussian_kl_out o;
    loss_error e;
    uint64_t seed = 5;
    size_t i;

    memset(&c, 0, sizeof c);
    gkl_alloc(&c, 2, 3);
    test_rand_fill(&seed, c.in[0], 6, -50, 50);
    test_rand_fill(&seed, c.in[1], 6, -300, 300);
    memcpy(c.in[2], c.in[0], 6 * sizeof(double));
    memcpy(c.in[3], c.in[1], 6 * sizeof(double));
    o = gkl_out(&c);
    cr_assert_eq(loss_gaussian_kl(&c.a, &o, &e), LOSS_OK);
    cr_assert_eq(o.loss, 0.0);
    for (i = 0; i < 6; i++)
        cr_assert(c.grad[0][i] == 0 && c.grad[1][i] == 0 && c.grad[2][i] == 0 &&
                  c.grad[3][i] == 0);
    gkl_free(&c);
}

Test(gaussian_kl, tiny_variance_and_tiny_distance_stay_finite)
{
    gkl_case c;
    loss_gaussian_kl_out o;
    loss_error e;

    memset(&c, 0, sizeof c);
    gkl_alloc(&c, 1, 1);
    c.in[0][0] = 1e-300;
    c.in[1][0] = -1000.0;
    c.in[3][0] = -1000.0; /* e^-logvar_q alone would overflow */
    o = gkl_out(&c);
    cr_assert_eq(loss_gaussian_kl(&c.a, &o, &e), LOSS_OK, "%s", e.message);
    cr_assert(isfinite(o.loss) && o.loss >= 0 && o.loss < 1e-50);
    gkl_free(&c);
}

Test(gaussian_kl, every_error)
{
    gkl_case c;
    loss_gaussian_kl_out o;
    loss_error e;
    char path[32];
    size_t i;

    memset(&c, 0, sizeof c);
    gkl_alloc(&c, 2, 3);
    o = gkl_out(&c);
    c.a.n = 0;
    expect_error(loss_gaussian_kl(&c.a, &o, &e), &e, LOSS_E_EMPTY, "mu_p",
                 "empty");
    c.a.n = 2;
    c.a.d = 0;
    expect_error(loss_gaussian_kl(&c.a, &o, &e), &e, LOSS_E_SHAPE, "mu_p",
                 "no columns");
    c.a.d = 3;
    c.a.reduction = (loss_reduction)7;
    expect_error(loss_gaussian_kl(&c.a, &o, &e), &e, LOSS_E_PARAM, "reduction",
                 "reduction");
    c.a.reduction = LOSS_REDUCE_MEAN;
    for (i = 0; i < 4; i++) {
        c.in[i][4] = i % 2 ? INFINITY : NAN;
        snprintf(path, sizeof path, "%s[1][1]", gkl_names[i]);
        expect_error(loss_gaussian_kl(&c.a, &o, &e), &e, LOSS_E_NONFINITE, path,
                     gkl_names[i]);
        c.in[i][4] = 0.0;
    }
    c.in[3][5] = -1500.0;
    expect_error(loss_gaussian_kl(&c.a, &o, &e), &e, LOSS_E_INFINITE,
                 "logvar_q[1]", "overflow");
    c.in[3][5] = 0.0;
    c.in[0][2] = 1e200; /* (delta / sigma_q)^2 overflows */
    expect_error(loss_gaussian_kl(&c.a, &o, &e), &e, LOSS_E_INFINITE,
                 "logvar_q[0]", "far mean");
    gkl_free(&c);
}

Test(gaussian_kl, outputs_may_be_null)
{
    gkl_case c;
    loss_gaussian_kl_out o;
    loss_error e;

    memset(&c, 0, sizeof c);
    gkl_alloc(&c, 2, 2);
    c.in[0][0] = 1.0;
    memset(&o, 0, sizeof o);
    cr_assert_eq(loss_gaussian_kl(&c.a, &o, &e), LOSS_OK);
    cr_assert_float_eq(o.loss, 0.25, 1e-15);
    cr_assert_eq(loss_gaussian_kl_work(&c.a), 0);
    gkl_free(&c);
}

/* ---- samples: the numpy vectors ----------------------------------------- */

/* One timeout for the suite: Criterion leaks a little when tests with
 * different timeouts run side by side under --jobs. */
TestSuite(samples, .timeout = 180);

typedef struct samp_case {
    loss_samples_args a;
    double *p, *q, *work;
} samp_case;

static void samp_free(samp_case *c)
{
    free(c->p);
    free(c->q);
    free(c->work);
}

static loss_samples_method method_of(const char *s)
{
    if (strcmp(s, "kde") == 0)
        return LOSS_SAMPLES_KDE;
    if (strcmp(s, "knn") == 0)
        return LOSS_SAMPLES_KNN;
    return LOSS_SAMPLES_HISTOGRAM;
}

static void samp_bandwidth(const cJSON *req, loss_samples_args *a)
{
    const cJSON *bw = vec_field(req, "bandwidth");

    a->bandwidth_rule = LOSS_BANDWIDTH_SCOTT;
    if (cJSON_IsNumber(bw)) {
        a->bandwidth_rule = LOSS_BANDWIDTH_FIXED;
        a->bandwidth = bw->valuedouble;
    } else if (cJSON_IsString(bw) &&
               strcmp(bw->valuestring, "silverman") == 0) {
        a->bandwidth_rule = LOSS_BANDWIDTH_SILVERMAN;
    }
}

/* The request's arguments; an absent method is histogram for 1-D data and
 * knn otherwise, as the server chooses. */
static void samp_from_request(const cJSON *req, samp_case *c)
{
    size_t dp[3] = {0, 0, 0}, dq[3] = {0, 0, 0}, rp, rq;
    const cJSON *bins = vec_field(req, "bins");

    memset(c, 0, sizeof *c);
    c->p = vec_tensor(req, "p", dp, &rp);
    c->q = vec_tensor(req, "q", dq, &rq);
    c->a.np = dp[0];
    c->a.nq = dq[0];
    c->a.d = rp == 2 ? dp[1] : 1;
    c->a.p = c->p;
    c->a.q = c->q;
    c->a.method =
        method_of(vec_string(req, "method", c->a.d == 1 ? "histogram" : "knn"));
    c->a.bins = cJSON_IsNumber(bins) ? (size_t)bins->valuedouble : 0;
    c->a.alpha = vec_number(req, "alpha", 0.5);
    samp_bandwidth(req, &c->a);
    c->a.k = (size_t)vec_number(req, "k", 5);
    c->a.base = vec_number(req, "base", exp(1.0));
    c->work = calloc(loss_samples_divergence_work(&c->a) + 1, sizeof(double));
    c->a.work = c->work;
}

static void samp_compare(const cJSON *exp, const loss_samples_out *o,
                         const char *name)
{
    const cJSON *m = vec_field(exp, "metrics"),
                *par = vec_field(exp, "parameters");
    const cJSON *x;

    vec_expect_number(vec_field(m, "kl_pq"), o->kl_pq, name, "kl_pq");
    vec_expect_number(vec_field(m, "kl_qp"), o->kl_qp, name, "kl_qp");
    vec_expect_number(vec_field(m, "js"), o->js, name, "js");
    vec_expect_number(vec_field(m, "js_distance"), o->js_distance, name,
                      "js_distance");
    vec_expect_number(vec_field(m, "entropy_p"), o->entropy_p, name,
                      "entropy_p");
    vec_expect_number(vec_field(m, "entropy_q"), o->entropy_q, name,
                      "entropy_q");
    if ((x = vec_field(par, "bins")) != NULL)
        cr_expect_eq((double)o->bins, x->valuedouble, "%s: bins %zu", name,
                     o->bins);
    if ((x = vec_field(par, "k")) != NULL)
        cr_expect_eq((double)o->k, x->valuedouble, "%s: k", name);
    if ((x = vec_field(par, "bandwidth_p")) != NULL) {
        vec_expect_number(x, o->bandwidth_p, name, "bandwidth_p");
        vec_expect_number(vec_field(par, "bandwidth_q"), o->bandwidth_q, name,
                          "bandwidth_q");
    }
}

Test(samples, vectors)
{
    cJSON *v = vec_load("samples/continuous");
    const cJSON *cj;
    int n = 0;

    cJSON_ArrayForEach(cj, vec_field(v, "cases")) {
        const cJSON *exp = vec_field(cj, "expected"),
                    *err = vec_field(cj, "error");
        const char *name = vec_field(cj, "name")->valuestring;
        samp_case c;
        loss_samples_out o;
        loss_error e;
        int rc;

        /* Shapes that disagree never reach the core: one d for both. */
        if (err &&
            strcmp(vec_field(err, "code")->valuestring, "shape_mismatch") == 0)
            continue;
        samp_from_request(vec_field(cj, "request"), &c);
        rc = loss_samples_divergence(&c.a, &o, &e);
        if (exp == NULL) {
            expect_vector_error(cj, rc, &e);
        } else {
            cr_assert_eq(rc, LOSS_OK, "%s: %s", name, e.message);
            samp_compare(exp, &o, name);
        }
        samp_free(&c);
        n++;
    }
    cr_assert_geq(n, 20);
    cJSON_Delete(v);
}

/* ---- samples: accuracy against closed forms ----------------------------- */

static double normal(uint64_t *s)
{
    double u = test_rand(s, 1e-300, 1.0), v = test_rand(s, 0.0, 1.0);

    return sqrt(-2.0 * log(u)) * cos(2.0 * 3.14159265358979323846 * v);
}

/* n samples of N(mu 1, sigma^2 I) in d dimensions. */
static double *gaussian_samples(uint64_t *s, size_t n, size_t d, double mu,
                                double sigma)
{
    double *x = malloc(n * d * sizeof *x);
    size_t i;

    for (i = 0; i < n * d; i++)
        x[i] = mu + sigma * normal(s);
    return x;
}

/* KL(N(0, I) || N(mu 1, sigma^2 I)) in d dimensions, and the entropy of
 * N(0, sigma^2 I). */
static double gauss_kl(size_t d, double mu, double sigma)
{
    return (double)d *
           (log(sigma) + (1.0 + mu * mu) / (2.0 * sigma * sigma) - 0.5);
}

static double gauss_entropy(size_t d, double sigma)
{
    return (double)d *
           (0.5 * log(2.0 * 3.14159265358979323846 * exp(1.0)) + log(sigma));
}

/* The arguments of p against q (np = nq = n, D = d) by method m, with
 * alpha 0.5, k k and base e, and no work yet. */
static loss_samples_args samples_args(const double *p, const double *q,
                                      size_t n, size_t d, loss_samples_method m,
                                      size_t k)
{
    loss_samples_args a;

    memset(&a, 0, sizeof a);
    a.np = a.nq = n;
    a.d = d;
    a.p = p;
    a.q = q;
    a.method = m;
    a.alpha = 0.5;
    a.k = k;
    a.base = exp(1.0);
    return a;
}

static loss_samples_out estimate(const double *p, const double *q, size_t n,
                                 size_t d, loss_samples_method m)
{
    loss_samples_args a = samples_args(p, q, n, d, m, 5);
    loss_samples_out o;
    loss_error e;

    a.work = malloc(loss_samples_divergence_work(&a) * sizeof(double));
    cr_assert_eq(loss_samples_divergence(&a, &o, &e), LOSS_OK, "%s", e.message);
    free(a.work);
    return o;
}

static const char *const method_names[] = {"histogram", "kde", "knn"};

static loss_samples_out knn_estimate(const double *p, size_t np,
                                     const double *q, size_t nq, size_t d,
                                     size_t k)
{
    loss_samples_args a;
    loss_samples_out o;
    loss_error e;

    memset(&a, 0, sizeof a);
    a.np = np;
    a.nq = nq;
    a.d = d;
    a.p = p;
    a.q = q;
    a.method = LOSS_SAMPLES_KNN;
    a.k = k;
    a.base = exp(1.0);
    a.work = malloc(loss_samples_divergence_work(&a) * sizeof(double));
    cr_assert_eq(loss_samples_divergence(&a, &o, &e), LOSS_OK, "%s", e.message);
    free(a.work);
    return o;
}

/* Asserts |got - want| <= tol, logging the row of the accuracy table. */
static void expect_close(const char *what, size_t d, loss_samples_method m,
                         double got, double want, double tol)
{
    cr_log_info("accuracy %-9s D=%zu %-10s estimate %8.4f truth %8.4f",
                method_names[m], d, what, got, want);
    cr_expect(fabs(got - want) <= tol,
              "%s D=%zu %s: estimate %.4f, truth %.4f, tolerance %.3f",
              method_names[m], d, what, got, want, tol);
}

/* p = N(0, I), q = N(0.5 1, 1.2^2 I), 5,000 samples per side.  Each
 * tolerance (nats) is the method's bias plus three standard deviations of
 * its error over eight seeds, rounded up:
 *
 *   method     D  KL(p||q)  bias     sd      KL(q||p)  bias     sd
 *   histogram  1  0.1163   +0.0074  0.0063   0.1627   +0.0047  0.0082
 *   kde        1  0.1163   -0.0041  0.0053   0.1627   +0.0207  0.0173
 *   knn        1  0.1163   -0.0075  0.0079   0.1627   -0.0105  0.0172
 *   kde        3  0.3490   +0.0064  0.0117   0.4880   +0.0628  0.0211
 *   knn        3  0.3490   +0.0157  0.0209   0.4880   -0.1306  0.0291
 *
 * KL(q||p) weighs q's wider tails, where p has few samples: the kernel
 * estimate of p decays too fast there (kde over-estimates) and the k-th
 * neighbour distances in p grow too slowly (knn under-estimates, by a
 * quarter in 3-D at this size). */
static void accuracy(size_t d, loss_samples_method m, double tol_pq,
                     double tol_qp, uint64_t seed)
{
    size_t n = 5000;
    double *p = gaussian_samples(&seed, n, d, 0.0, 1.0);
    double *q = gaussian_samples(&seed, n, d, 0.5, 1.2);
    loss_samples_out o = estimate(p, q, n, d, m);

    expect_close("kl(p||q)", d, m, o.kl_pq, gauss_kl(d, 0.5, 1.2), tol_pq);
    expect_close("kl(q||p)", d, m, o.kl_qp,
                 (double)d * (log(1 / 1.2) + (1.44 + 0.25) / 2.0 - 0.5),
                 tol_qp);
    expect_close("entropy_p", d, m, o.entropy_p, gauss_entropy(d, 1.0),
                 0.05 * (double)d);
    if (m != LOSS_SAMPLES_KNN)
        cr_expect(o.js > 0 && o.js < LN2, "js %g", o.js);
    free(p);
    free(q);
}

Test(samples, accuracy_1d)
{
    accuracy(1, LOSS_SAMPLES_HISTOGRAM, 0.03, 0.03, 21);
    accuracy(1, LOSS_SAMPLES_KDE, 0.025, 0.075, 22);
    accuracy(1, LOSS_SAMPLES_KNN, 0.035, 0.065, 23);
}

Test(samples, accuracy_3d)
{
    accuracy(3, LOSS_SAMPLES_KDE, 0.045, 0.13, 31);
    accuracy(3, LOSS_SAMPLES_KNN, 0.08, 0.22, 32);
}

/* Two independent draws of N(0, I): every divergence near 0 (over eight
 * seeds the largest |kl| was 0.012 histogram, 0.007 kde and 0.022 knn in
 * 1-D; 0.009 kde and 0.029 knn in 3-D). */
static void identical(size_t d, loss_samples_method m, double tol,
                      uint64_t seed)
{
    size_t n = 5000;
    double *p = gaussian_samples(&seed, n, d, 0.0, 1.0);
    double *q = gaussian_samples(&seed, n, d, 0.0, 1.0);
    loss_samples_out o = estimate(p, q, n, d, m);

    expect_close("kl(p||p')", d, m, o.kl_pq, 0.0, tol);
    expect_close("kl(p'||p)", d, m, o.kl_qp, 0.0, tol);
    if (m != LOSS_SAMPLES_KNN)
        cr_expect(o.js >= 0 && o.js < tol, "%s js %g", method_names[m], o.js);
    free(p);
    free(q);
}

Test(samples, identical_distributions_near_zero)
{
    identical(1, LOSS_SAMPLES_HISTOGRAM, 0.02, 41);
    identical(1, LOSS_SAMPLES_KDE, 0.02, 42);
    identical(1, LOSS_SAMPLES_KNN, 0.03, 43);
    identical(3, LOSS_SAMPLES_KDE, 0.02, 44);
    identical(3, LOSS_SAMPLES_KNN, 0.04, 45);
}

/* Disjoint supports: js reaches its maximum ln 2 (kde) and never exceeds
 * it; the histogram's smoothing keeps a little mass in every bin. */
Test(samples, js_bounded_by_ln2)
{
    double p[200], q[200];
    uint64_t s = 51;
    loss_samples_out o;
    size_t i;
    int m;

    for (i = 0; i < 200; i++) {
        p[i] = test_rand(&s, 0.0, 1.0);
        q[i] = test_rand(&s, 100.0, 101.0);
    }
    for (m = 0; m < 2; m++) {
        o = estimate(p, q, 200, 1, (loss_samples_method)m);
        cr_expect(o.js <= LN2 && o.js > (m ? LN2 - 1e-9 : 0.6), "%s js %.17g",
                  method_names[m], o.js);
    }
}

/* ---- samples: parameters and errors -------------------------------------- */

static samp_case small_case(size_t d)
{
    samp_case c;
    size_t i;

    memset(&c, 0, sizeof c);
    c.a.np = 4;
    c.a.nq = 3;
    c.a.d = d;
    c.p = calloc(4 * d, sizeof(double));
    c.q = calloc(3 * d, sizeof(double));
    for (i = 0; i < 4 * d; i++)
        c.p[i] = (double)(i * 7 % 5);
    for (i = 0; i < 3 * d; i++)
        c.q[i] = (double)(i * 3 % 4) + 0.5;
    c.a.p = c.p;
    c.a.q = c.q;
    c.a.alpha = 0.5;
    c.a.k = 1;
    c.a.base = 2.0;
    c.work = calloc(64, sizeof(double));
    c.a.work = c.work;
    return c;
}

Test(samples, every_error)
{
    samp_case c = small_case(1);
    loss_samples_out o;
    loss_error e;

    c.a.np = 1;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_EMPTY, "p",
                 "one p");
    c.a.np = 4;
    c.a.nq = 0;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_EMPTY, "q",
                 "no q");
    c.a.nq = 3;
    c.p[2] = NAN;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_NONFINITE,
                 "p[2]", "nan p");
    c.p[2] = 4.0;
    c.q[1] = -INFINITY;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_NONFINITE,
                 "q[1]", "inf q");
    c.q[1] = 1e151;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_NONFINITE,
                 "q[1]", "q beyond 1e150");
    c.q[1] = 1.0;
    c.a.base = 1.0;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_PARAM,
                 "base", "base 1");
    c.a.base = 2.0;
    c.a.method = (loss_samples_method)3;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_PARAM,
                 "method", "method");
    c.a.method = LOSS_SAMPLES_HISTOGRAM;
    c.a.bins = LOSS_SAMPLES_MAX_BINS + 1;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_PARAM,
                 "bins", "bins");
    c.a.bins = 0;
    c.a.alpha = -1;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_PARAM,
                 "alpha", "alpha");
    c.a.alpha = 0.5;
    c.a.method = LOSS_SAMPLES_KDE;
    c.a.bandwidth_rule = LOSS_BANDWIDTH_FIXED;
    c.a.bandwidth = 0.0;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_PARAM,
                 "bandwidth", "bandwidth 0");
    c.a.bandwidth_rule = (loss_bandwidth_rule)5;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_PARAM,
                 "bandwidth", "bandwidth rule");
    c.a.bandwidth_rule = LOSS_BANDWIDTH_SILVERMAN;
    c.q[0] = c.q[1] = c.q[2] = 3.0;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_PARAM, "q",
                 "identical q");
    c.q[0] = 0.5; /* q = {0.5, 3, 3}: q[1] and q[2] coincide */
    c.a.method = LOSS_SAMPLES_KNN;
    c.a.k = 3;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_PARAM, "k",
                 "k > nq - 1");
    c.a.k = 0;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_PARAM, "k",
                 "k 0");
    c.a.k = 1;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_INFINITE,
                 "q[1]", "q duplicates");
    samp_free(&c);
}

Test(samples, errors_in_several_dimensions)
{
    samp_case c = small_case(2);
    loss_samples_out o;
    loss_error e;

    c.q[3] = NAN;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_NONFINITE,
                 "q[1][1]", "nan q");
    c.q[3] = -2e150;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_NONFINITE,
                 "q[1][1]", "q beyond 1e150");
    c.q[3] = 2.0;
    c.a.method = LOSS_SAMPLES_HISTOGRAM;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_PARAM,
                 "method", "histogram in 2-D");
    c.a.d = 0;
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_SHAPE, "p",
                 "D = 0");
    c.a.d = 2;
    c.a.method = LOSS_SAMPLES_KNN;
    memcpy(c.p + 2, c.p, 2 * sizeof(double)); /* p[1] = p[0] */
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_INFINITE,
                 "p[0]", "p duplicates");
    samp_free(&c);
}

Test(samples, effective_parameters)
{
    samp_case c = small_case(1);
    loss_samples_out o;
    loss_error e;

    cr_assert_eq(loss_samples_divergence(&c.a, &o, &e), LOSS_OK, "%s",
                 e.message);
    cr_assert(o.bins >= 1 && o.k == 0 && isnan(o.bandwidth_p));
    c.a.method = LOSS_SAMPLES_KDE;
    c.a.bandwidth_rule = LOSS_BANDWIDTH_FIXED;
    c.a.bandwidth = 0.25;
    cr_assert_eq(loss_samples_divergence(&c.a, &o, &e), LOSS_OK);
    cr_assert(o.bins == 0 && o.bandwidth_p == 0.25 && o.bandwidth_q == 0.25);
    c.a.method = LOSS_SAMPLES_KNN;
    c.q[0] = 0.25;
    cr_assert_eq(loss_samples_divergence(&c.a, &o, &e), LOSS_OK, "%s",
                 e.message);
    cr_assert(o.k == 1 && isnan(o.js) && isnan(o.js_distance));
    cr_assert_eq(loss_samples_divergence_work(&c.a), 4 + 3 + 1);
    c.a.d = 2; /* and d offsets and a scaled query for the k-d tree search */
    cr_assert_eq(loss_samples_divergence_work(&c.a), 2 * (4 + 3) + 1 + 4);
    c.a.method = LOSS_SAMPLES_KDE; /* scaled rows and one row of exponents */
    cr_assert_eq(loss_samples_divergence_work(&c.a), 3 * (4 + 3));
    c.a.d = 1;
    cr_assert_eq(loss_samples_divergence_work(&c.a), 2 * (4 + 3));
    samp_free(&c);
}

/* The work is sized before the core checks k, so k may not size it: a k
 * beyond min(np, nq) - 1 counts as that bound, and the call then rejects
 * it without touching more work than that. */
Test(samples, work_ignores_an_invalid_k)
{
    samp_case c = small_case(1);
    loss_samples_out o;
    loss_error e;

    c.a.method = LOSS_SAMPLES_KNN;
    c.a.k = (size_t)1 << 40;
    cr_assert_eq(loss_samples_divergence_work(&c.a), 4 + 3 + 2);
    c.a.k = SIZE_MAX;
    cr_assert_eq(loss_samples_divergence_work(&c.a), 4 + 3 + 2);
    expect_error(loss_samples_divergence(&c.a, &o, &e), &e, LOSS_E_PARAM, "k",
                 "huge k");
    cr_expect(strstr(e.message, "must be in [1, 2]") != NULL, "%s", e.message);
    c.a.d = 3;
    cr_assert_eq(loss_samples_divergence_work(&c.a), 3 * (4 + 3) + 2 + 6);
    c.a.np = 0;
    cr_assert_eq(loss_samples_divergence_work(&c.a), 3 * 3 + 6);
    samp_free(&c);
}

/* Sizes whose product or sum overflows are SIZE_MAX, never a wrapped small
 * number that the core would then overrun. */
Test(samples, work_saturates_on_overflow)
{
    loss_samples_args a;

    memset(&a, 0, sizeof a);
    a.method = LOSS_SAMPLES_KNN;
    a.k = 5;
    a.np = SIZE_MAX / 2 + 1;
    a.nq = SIZE_MAX / 2 + 1;
    a.d = 1;
    cr_expect_eq(loss_samples_divergence_work(&a), SIZE_MAX);
    a.method = LOSS_SAMPLES_HISTOGRAM;
    cr_expect_eq(loss_samples_divergence_work(&a), SIZE_MAX);
    a.method = LOSS_SAMPLES_KNN;
    a.np = a.nq = SIZE_MAX / 8; /* n D is 5/4 of SIZE_MAX */
    a.d = 5;
    cr_expect_eq(loss_samples_divergence_work(&a), SIZE_MAX);
    a.np = a.nq = 10;
    a.d = SIZE_MAX - 3;
    cr_expect_eq(loss_samples_divergence_work(&a), SIZE_MAX);
}

/* A base below 1 makes every value negative: js_distance is then NaN. */
Test(samples, base_below_one)
{
    samp_case c = small_case(1);
    loss_samples_out o, o2;
    loss_error e;

    cr_assert_eq(loss_samples_divergence(&c.a, &o2, &e), LOSS_OK);
    c.a.base = 0.5;
    cr_assert_eq(loss_samples_divergence(&c.a, &o, &e), LOSS_OK);
    cr_assert_float_eq(o.kl_pq, -o2.kl_pq, 1e-14);
    cr_assert(isnan(o.js_distance));
    samp_free(&c);
}

/* The k-th neighbour distance by exhaustive search, skipping row self
 * (k <= 8): an insertion-sorted list of the k smallest squared distances. */
static double kth_exhaustive(const double *x, const double *y, size_t n,
                             size_t d, size_t self, size_t k)
{
    double best[8], t, s;
    size_t i, j, m = 0;

    for (i = 0; i < n; i++) {
        if (i == self)
            continue;
        for (s = 0, j = 0; j < d; j++) {
            t = x[j] - y[i * d + j];
            s += t * t;
        }
        if (m == k && s >= best[k - 1])
            continue;
        for (j = m < k ? m++ : k - 1; j > 0 && best[j - 1] > s; j--)
            best[j] = best[j - 1];
        best[j] = s;
    }
    return sqrt(best[k - 1]);
}

/* The k-th smallest |x - y_i| over y[0..n) but index self, any k < n, by
 * sorting every distance. */
static int cmp_double(const void *a, const void *b)
{
    double u = *(const double *)a, v = *(const double *)b;

    return (u > v) - (u < v);
}

static double kth_exhaustive_1d(const double *x, const double *y, size_t n,
                                size_t self, size_t k)
{
    double *dist = malloc(n * sizeof *dist), r;
    size_t i, m = 0;

    cr_assert_not_null(dist);
    for (i = 0; i < n; i++)
        if (i != self)
            dist[m++] = fabs(*x - y[i]);
    qsort(dist, m, sizeof *dist, cmp_double);
    r = dist[k - 1];
    free(dist);
    return r;
}

/* kl_pq by knn against the exhaustive search, for np and nq samples in d
 * dimensions whose even coordinates take only four values: the k-d tree
 * splits meet long runs of ties (on both sides of a node), and it must
 * still find the exhaustive answer, and so the same kl to rounding. */
static void knn_matches_exhaustive(size_t np, size_t nq, size_t d, size_t k,
                                   uint64_t seed)
{
    double *p = malloc(np * d * sizeof *p), *q = malloc(nq * d * sizeof *q);
    double lnu = 0, lrho = 0, want;
    loss_samples_out o;
    size_t i;

    cr_assert(p != NULL && q != NULL);
    for (i = 0; i < np * d; i++)
        p[i] = i % d % 2 == 0 ? (double)(i % 4) : test_rand(&seed, -1, 1);
    for (i = 0; i < nq * d; i++)
        q[i] = i % d % 2 == 0 ? (double)(i % 3) : test_rand(&seed, -1, 1);
    for (i = 0; i < np; i++) {
        lrho += log(kth_exhaustive(p + i * d, p, np, d, i, k));
        lnu += log(kth_exhaustive(p + i * d, q, nq, d, nq, k));
    }
    want = (double)d / (double)np * (lnu - lrho) +
           log((double)nq / (double)(np - 1));
    o = knn_estimate(p, np, q, nq, d, k);
    cr_expect_float_eq(o.kl_pq, want, 1e-12 * fabs(want) + 1e-14,
                       "np %zu, nq %zu, d %zu: %.17g, want %.17g", np, nq, d,
                       o.kl_pq, want);
    free(p);
    free(q);
}

/* Sizes below, at and well above a leaf of the tree (32 rows), and from
 * two to nine dimensions. */
Test(samples, knn_search_matches_exhaustive_with_ties)
{
    knn_matches_exhaustive(60, 50, 3, 4, 61);
    knn_matches_exhaustive(20, 33, 2, 3, 62);
    knn_matches_exhaustive(300, 257, 2, 5, 63);
    knn_matches_exhaustive(400, 350, 3, 1, 64);
    knn_matches_exhaustive(300, 310, 5, 8, 65);
    knn_matches_exhaustive(500, 200, 9, 2, 66);
    knn_matches_exhaustive(3000, 2500, 2, 3, 67);
    knn_matches_exhaustive(2000, 2100, 4, 6, 68);
}

/* ---- samples: extreme scales --------------------------------------------- */

/* One estimate of p against q (np = nq = n, D = d) with a fixed bandwidth
 * (bw > 0) or Scott's rule (bw = 0), or its error. */
static int scaled_estimate(const double *p, const double *q, size_t n, size_t d,
                           loss_samples_method m, double bw,
                           loss_samples_out *o, loss_error *e)
{
    loss_samples_args a = samples_args(p, q, n, d, m, 1);
    int rc;

    a.bandwidth_rule = bw > 0 ? LOSS_BANDWIDTH_FIXED : LOSS_BANDWIDTH_SCOTT;
    a.bandwidth = bw;
    a.work = malloc(loss_samples_divergence_work(&a) * sizeof(double));
    cr_assert_not_null(a.work);
    rc = loss_samples_divergence(&a, o, e);
    free(a.work);
    return rc;
}

static const double kde_p[] = {1, 2, 3}, kde_q[] = {1.5, 2.5, 3.5};

/* mpmath at 40 digits, integrating the two kernel estimates (h = 0.5) over
 * the whole line in the given units, with no rescaling (see the commit
 * that added this test): kl_pq, js and entropy_p. */
#define KDE_REF_KL 0.18673252465855239
#define KDE_REF_JS 0.041951023893618036
#define KDE_REF_H1 1.3449358377528625         /* units of 1 */
#define KDE_REF_H200 (-459.17208276105627)    /* units of 1e-200 */
#define KDE_REF_HWIDE 461.93595713201381      /* h = 1e200 */
#define KDE_REF_HNARROW (-2.0876193641153089) /* h = 0.01 */

/* The grid stops 6 bandwidths past the samples, leaving out 2e-9 of each
 * kernel's mass: kl and js are within 2e-8 of the integrals over the whole
 * line, the entropy within 1e-7 (that mass times its log-density, about
 * -20 in standardized units). */
Test(samples, kde_1d_at_extreme_scales)
{
    double p[3], q[3];
    loss_samples_out o;
    loss_error e;
    size_t i;

    for (i = 0; i < 3; i++)
        p[i] = kde_p[i] * 1e-200, q[i] = kde_q[i] * 1e-200;
    cr_assert_eq(
        scaled_estimate(p, q, 3, 1, LOSS_SAMPLES_KDE, 0.5e-200, &o, &e),
        LOSS_OK, "%s", e.message);
    cr_expect(fabs(o.kl_pq - KDE_REF_KL) < 2e-8, "kl %.17g", o.kl_pq);
    cr_expect(fabs(o.js - KDE_REF_JS) < 2e-8, "js %.17g", o.js);
    cr_expect(fabs(o.entropy_p - KDE_REF_H200) < 1e-7, "H %.17g", o.entropy_p);
    /* kl of kernels 1e200 wide, 0.5 apart, is about 1e-401: 0 */
    cr_assert_eq(
        scaled_estimate(kde_p, kde_q, 3, 1, LOSS_SAMPLES_KDE, 1e200, &o, &e),
        LOSS_OK, "%s", e.message);
    cr_expect(fabs(o.kl_pq) < 1e-15 && fabs(o.js) < 1e-15, "kl %g js %g",
              o.kl_pq, o.js);
    cr_expect(fabs(o.entropy_p - KDE_REF_HWIDE) < 1e-7, "H %.17g", o.entropy_p);
}

/* Scaling the samples and the bandwidth by a power of two leaves the
 * standardized problem as it was, bit for bit: kl and js are the same
 * numbers and the entropy moves by exactly log of the scale (to rounding). */
Test(samples, kde_1d_scales_by_powers_of_two_exactly)
{
    double p[3], q[3], sc = ldexp(1.0, -700);
    loss_samples_out o1, o2;
    loss_error e;
    size_t i;

    for (i = 0; i < 3; i++)
        p[i] = kde_p[i] * sc, q[i] = kde_q[i] * sc;
    cr_assert_eq(
        scaled_estimate(kde_p, kde_q, 3, 1, LOSS_SAMPLES_KDE, 0.5, &o1, &e),
        LOSS_OK);
    cr_assert_eq(
        scaled_estimate(p, q, 3, 1, LOSS_SAMPLES_KDE, 0.5 * sc, &o2, &e),
        LOSS_OK, "%s", e.message);
    cr_expect_eq(o1.kl_pq, o2.kl_pq);
    cr_expect_eq(o1.js, o2.js);
    cr_expect(fabs(o2.entropy_p - (o1.entropy_p - 700 * log(2.0))) < 1e-12,
              "%.17g %.17g", o1.entropy_p, o2.entropy_p);
    cr_expect(fabs(o1.kl_pq - KDE_REF_KL) < 2e-8, "kl %.17g", o1.kl_pq);
    cr_expect(fabs(o1.entropy_p - KDE_REF_H1) < 1e-7, "H %.17g", o1.entropy_p);
}

/* The grid has at most 16384 intervals; when that cannot give two steps
 * per narrowest bandwidth, the kernels fall between its points (entropy_p
 * came out -3.14 against -2.09, from q's position alone), so the call is
 * refused; up to that limit entropy_p stays within 1e-7 of the truth,
 * wherever q is. */
Test(samples, kde_1d_too_narrow_for_the_grid)
{
    double q[3];
    loss_samples_out o;
    loss_error e;
    size_t i;
    int shift;

    for (shift = 0; shift <= 79; shift += 79) {
        for (i = 0; i < 3; i++)
            q[i] = kde_q[i] + shift;
        cr_assert_eq(
            scaled_estimate(kde_p, q, 3, 1, LOSS_SAMPLES_KDE, 0.01, &o, &e),
            LOSS_OK, "%d: %s", shift, e.message);
        cr_expect(fabs(o.entropy_p - KDE_REF_HNARROW) < 1e-7, "%d: H %.17g",
                  shift, o.entropy_p);
    }
    for (i = 0; i < 3; i++)
        q[i] = kde_q[i] + 1000;
    expect_error(
        scaled_estimate(kde_p, q, 3, 1, LOSS_SAMPLES_KDE, 0.01, &o, &e), &e,
        LOSS_E_PARAM, "bandwidth", "q 1000 away");
    cr_expect(strstr(e.message, "\"knn\"") && strstr(e.message, "0.123"), "%s",
              e.message);
    for (i = 0; i < 3; i++)
        q[i] = kde_p[i] * 100;
    expect_error(
        scaled_estimate(kde_p, q, 3, 1, LOSS_SAMPLES_KDE, 1e-300, &o, &e), &e,
        LOSS_E_PARAM, "bandwidth", "h 1e-300");
    for (i = 0; i < 3; i++)
        q[i] = kde_q[i] * 1000;
    expect_error(scaled_estimate(kde_p, q, 3, 1, LOSS_SAMPLES_KDE, 0, &o, &e),
                 &e, LOSS_E_PARAM, "bandwidth", "scott too narrow");
    cr_expect(strstr(e.message, "\"scott\" gives") != NULL, "%s", e.message);
}

/* Every other estimator at 2^-700 (about 1e-211) and 2^-1060 (subnormal),
 * against the same samples in units of 1: kl the same number, and the
 * entropy moved by D log of the scale.  Squared distances and variances
 * of such samples underflowed to 0 (knn and kde in 2-D read them as
 * coincident, Scott's rule as no spread) and the histogram's bin of the
 * minimum was 0 * inf. */
static void same_at_scale(loss_samples_method m, size_t d, double bw, int e2)
{
    static const double x[] = {1,   0,     2,   1.25,  3,    0.5,  1.5,  1.75,
                               2.5, 0.125, 3.5, 1.125, 0.25, 2.25, 2.75, 0.75};
    double y[16], sc = ldexp(1.0, e2), tol;
    size_t n = 8 / d, i;
    loss_samples_out o1, o2;
    loss_error e;

    for (i = 0; i < 16; i++)
        y[i] = x[i] * sc;
    cr_assert_eq(scaled_estimate(x, x + 8, n, d, m, bw, &o1, &e), LOSS_OK, "%s",
                 e.message);
    cr_assert_eq(scaled_estimate(y, y + 8, n, d, m, bw * sc, &o2, &e), LOSS_OK,
                 "%s D=%zu 2^%d: %s", method_names[m], d, e2, e.message);
    /* Subnormal samples carry few bits.  Otherwise the logarithms of
     * densities or distances are taken in the caller's units, near
     * -1000 here, so kl, a difference of their means, keeps about 1e-13. */
    tol = e2 < -1022 ? 1e-3 : 1e-12;
    cr_expect(fabs(o2.kl_pq - o1.kl_pq) <= tol,
              "%s D=%zu 2^%d: kl %.17g, %.17g at 1", method_names[m], d, e2,
              o2.kl_pq, o1.kl_pq);
    cr_expect(fabs(o2.entropy_p - (o1.entropy_p + (double)d * e2 * log(2.0))) <=
                  tol * fabs(o2.entropy_p),
              "%s D=%zu 2^%d: entropy %.17g, %.17g at 1", method_names[m], d,
              e2, o2.entropy_p, o1.entropy_p);
}

/* A histogram over the smallest range there is, one subnormal step
 * (2^-1074) in two bins: each bin's width underflows to 0, and its log
 * was -inf; the entropy is that of the same samples in units of 1 plus
 * log 2^-1074. */
Test(samples, histogram_entropy_over_a_subnormal_range)
{
    static const double p1[] = {0, 1, 1}, q1[] = {0, 1, 0};
    double p[3], q[3], step = ldexp(1.0, -1074);
    loss_samples_args a = samples_args(p1, q1, 3, 1, LOSS_SAMPLES_HISTOGRAM, 5);
    loss_samples_out o1, o2;
    size_t i;

    for (i = 0; i < 3; i++)
        p[i] = p1[i] * step, q[i] = q1[i] * step;
    a.bins = 2;
    a.work = malloc(loss_samples_divergence_work(&a) * sizeof(double));
    cr_assert_not_null(a.work);
    cr_assert_eq(loss_samples_divergence(&a, &o1, NULL), LOSS_OK);
    a.p = p;
    a.q = q;
    cr_assert_eq(loss_samples_divergence(&a, &o2, NULL), LOSS_OK);
    free(a.work);
    cr_expect_eq(o2.kl_pq, o1.kl_pq);
    cr_expect(isfinite(o2.entropy_p), "entropy_p %g", o2.entropy_p);
    cr_expect_float_eq(o2.entropy_p, o1.entropy_p - 1074.0 * log(2.0),
                       1e-12 * 1074.0, "%.17g", o2.entropy_p);
}

/* Distinct values: n of 0, 1, ..., 2n - 1 (plus off), shuffled. */
static void distinct_grid(double *x, size_t n, double off, uint64_t *seed)
{
    double g[128], t;
    size_t i, j;

    for (i = 0; i < 2 * n; i++)
        g[i] = (double)i + off;
    for (i = 2 * n - 1; i > 0; i--) {
        j = (size_t)test_rand(seed, 0, (double)i + 1);
        j = j > i ? i : j;
        t = g[i], g[i] = g[j], g[j] = t;
    }
    memcpy(x, g, n * sizeof *x);
}

/* 1-D knn finds the k-th nearest by bisection on the run of the k
 * nearest: against the exhaustive search, on distinct points of integer
 * and half-integer grids, whose distances tie on both sides of a point
 * everywhere, for k from 1 to one less than the smaller set, with sets
 * of different sizes. */
Test(samples, knn_1d_matches_exhaustive_for_every_k)
{
    enum { NP = 41, NQ = 37 };
    double p[NP], q[NQ], lrho, lnu, want;
    static const size_t ks[] = {1, 2, 7, 20, 35, 36};
    uint64_t seed = 73;
    loss_samples_out o;
    size_t i, t;

    distinct_grid(p, NP, 0.0, &seed);
    distinct_grid(q, NQ, 10.5, &seed);
    for (t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        lrho = lnu = 0;
        for (i = 0; i < NP; i++) {
            lrho += log(kth_exhaustive_1d(p + i, p, NP, i, ks[t]));
            lnu += log(kth_exhaustive_1d(p + i, q, NQ, NQ, ks[t]));
        }
        want = 1.0 / NP * (lnu - lrho) + log((double)NQ / (NP - 1));
        o = knn_estimate(p, NP, q, NQ, 1, ks[t]);
        cr_expect_float_eq(o.kl_pq, want, 1e-12 * fabs(want) + 1e-15,
                           "k %zu: %.17g, want %.17g", ks[t], o.kl_pq, want);
    }
}

/* knn in 2-D with p's rows near 1e-100 and q's near 1e100: unscaled,
 * every squared distance is in range, and a scale taken from the largest
 * coordinate alone made all of p's underflow to 0 (a false "distance 0"
 * 422).  kl_pq against the exhaustive search in the caller's units. */
Test(samples, knn_sets_far_apart_in_scale)
{
    enum { N = 40, D = 2, K = 3 };
    double p[N * D], q[N * D], lnu = 0, lrho = 0, want;
    uint64_t seed = 71;
    loss_samples_out o;
    size_t i;

    for (i = 0; i < N * D; i++) {
        p[i] = test_rand(&seed, -1, 1) * 1e-100;
        q[i] = test_rand(&seed, -1, 1) * 1e100;
    }
    for (i = 0; i < N; i++) {
        lrho += log(kth_exhaustive(p + i * D, p, N, D, i, K));
        lnu += log(kth_exhaustive(p + i * D, q, N, D, N, K));
    }
    want = (double)D / N * (lnu - lrho) + log((double)N / (N - 1));
    o = knn_estimate(p, N, q, N, D, K);
    cr_expect_float_eq(o.kl_pq, want, 1e-12 * fabs(want), "%.17g, want %.17g",
                       o.kl_pq, want);
}

/* kde in D > 1 scales the rows so that the narrowest bandwidth is near 1;
 * rows 2^498 away (1e150) then square past double range once the bandwidth
 * is below 2^-508 of them in D = 2: a 422 on bandwidth that says so, and
 * a finite estimate just inside that bound. */
Test(samples, kde_rows_too_far_for_the_bandwidth)
{
    static const double p[] = {1e150, 0, 0, 1, 1, 0}, q[] = {0, 0, 1, 1, 2, 0};
    loss_samples_args a = samples_args(p, q, 3, 2, LOSS_SAMPLES_KDE, 5);
    loss_samples_out o;
    loss_error e;

    a.bandwidth_rule = LOSS_BANDWIDTH_FIXED;
    a.bandwidth = 1e-5; /* 2^-17: 498 + 17 > 508 */
    a.work = malloc(loss_samples_divergence_work(&a) * sizeof(double));
    cr_assert_not_null(a.work);
    cr_assert_eq(loss_samples_divergence(&a, &o, &e), LOSS_E_PARAM);
    cr_expect_str_eq(e.field, "bandwidth");
    cr_expect(strstr(e.message, "below 2^-508") != NULL, "%s", e.message);
    a.bandwidth = 1e-2; /* 2^-7: 505 */
    cr_assert_eq(loss_samples_divergence(&a, &o, &e), LOSS_OK, "%s", e.message);
    cr_expect(isfinite(o.kl_pq) && isfinite(o.entropy_p), "%g %g", o.kl_pq,
              o.entropy_p);
    free(a.work);
}

Test(samples, every_method_at_extreme_scales)
{
    int e2[] = {-700, -1060}, i;

    for (i = 0; i < 2; i++) {
        same_at_scale(LOSS_SAMPLES_HISTOGRAM, 1, 0, e2[i]);
        same_at_scale(LOSS_SAMPLES_KNN, 1, 0, e2[i]);
        same_at_scale(LOSS_SAMPLES_KNN, 2, 0, e2[i]);
        same_at_scale(LOSS_SAMPLES_KDE, 2, 0, e2[i]);
        same_at_scale(LOSS_SAMPLES_KDE, 2, 0.7, e2[i]);
        same_at_scale(LOSS_SAMPLES_KDE, 1, 0, e2[i]);
    }
}

/* Ranks 1..n in an order that makes the k-d tree's first selection (on
 * coordinate 0 of rows [0, n), median of the first, middle and last
 * values as pivot) keep only two rows per round: the selection is run on
 * row ids, and at each round the first and middle rows still unranked get
 * the two smallest ranks left, the rest staying larger than both.
 * Without select_row's way out this takes n/2 rounds of O(n). */
static void median3_killer(double *rank, size_t n)
{
    size_t *id = malloc(n * sizeof *id), lo = 0, hi = n, m = n / 2, i, lt, gt,
           t, mid;
    double next = 1.0, big = (double)n + 1.0, pivot, v;

    cr_assert_not_null(id);
    for (i = 0; i < n; i++) {
        id[i] = i;
        rank[i] = big;
    }
    while (hi - lo > 2) {
        mid = lo + (hi - lo) / 2;
        if (rank[id[lo]] == big)
            rank[id[lo]] = next++;
        if (rank[id[mid]] == big)
            rank[id[mid]] = next++;
        pivot = fmax(fmin(rank[id[lo]], rank[id[mid]]),
                     fmin(fmax(rank[id[lo]], rank[id[mid]]), rank[id[hi - 1]]));
        lt = i = lo;
        gt = hi;
        while (i < gt) {
            v = rank[id[i]];
            if (v < pivot) {
                t = id[lt], id[lt++] = id[i], id[i++] = t;
            } else if (v > pivot) {
                t = id[i], id[i] = id[--gt], id[gt] = t;
            } else {
                i++;
            }
        }
        if (m < lt)
            hi = lt;
        else if (m >= gt)
            lo = gt;
        else
            break;
    }
    for (i = 0; i < n; i++)
        if (rank[i] == big)
            rank[i] = next++;
    free(id);
}

/* Rows in an order that defeats the k-d tree's pivots give the same
 * estimates as the same rows shuffled: bit for bit where the sums run over
 * q (searches of p's tree), to the rounding of a sum in another order
 * where they run over p. */
Test(samples, knn_tree_built_from_a_killer_order)
{
    const size_t n = 20000, nq = 3000;
    double *rank = malloc(n * sizeof *rank), *p = malloc(2 * n * sizeof *p),
           *ps = malloc(2 * n * sizeof *ps), *q = malloc(2 * nq * sizeof *q);
    uint64_t seed = 77;
    loss_samples_out a, b;
    size_t i, j;

    cr_assert(rank && p && ps && q);
    median3_killer(rank, n);
    for (i = 0; i < n; i++) {
        p[2 * i] = rank[i];
        p[2 * i + 1] = (double)(i % 7);
    }
    memcpy(ps, p, 2 * n * sizeof *p);
    for (i = n - 1; i > 0; i--) {
        j = (size_t)(rng_next(&seed) % (i + 1));
        double t0 = ps[2 * i], t1 = ps[2 * i + 1];
        ps[2 * i] = ps[2 * j];
        ps[2 * i + 1] = ps[2 * j + 1];
        ps[2 * j] = t0;
        ps[2 * j + 1] = t1;
    }
    for (i = 0; i < 2 * nq; i++)
        q[i] = (double)n * rng_unit(&seed);
    a = knn_estimate(p, n, q, nq, 2, 3);
    b = knn_estimate(ps, n, q, nq, 2, 3);
    cr_expect_eq(a.kl_qp, b.kl_qp);
    cr_expect_eq(a.entropy_q, b.entropy_q);
    cr_expect_leq(fabs(a.kl_pq - b.kl_pq), 1e-12 * fabs(b.kl_pq), "%.17g %.17g",
                  a.kl_pq, b.kl_pq);
    cr_expect_leq(fabs(a.entropy_p - b.entropy_p), 1e-12 * fabs(b.entropy_p),
                  "%.17g %.17g", a.entropy_p, b.entropy_p);
    cr_expect(isfinite(a.kl_qp) && isfinite(a.entropy_p));
    free(rank);
    free(p);
    free(ps);
    free(q);
}
