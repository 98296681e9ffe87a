/* test_margin_softmax.c -- l_softmax and a_softmax: the PyTorch reference
 * vectors, central finite differences of both gradients, m = 1 against plain
 * softmax cross-entropy, and the edge and error cases of core/loss.h. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "vec.h"

typedef struct margin_loss {
    const char *name;
    int (*fn)(const loss_margin_softmax_args *, loss_margin_softmax_out *,
              loss_error *);
    size_t (*work)(const loss_margin_softmax_args *);
    int default_margin;
} margin_loss;

static const margin_loss l_softmax = {"l_softmax", loss_l_softmax,
                                      loss_l_softmax_work, 2};
static const margin_loss a_softmax = {"a_softmax", loss_a_softmax,
                                      loss_a_softmax_work, 4};

/* A problem with every output allocated, the inputs owned and mutable. */
typedef struct problem {
    const margin_loss *loss;
    loss_margin_softmax_args a;
    loss_margin_softmax_out o;
    double *x, *w;
    int64_t *y;
} problem;

static double *alloc_doubles(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    cr_assert_not_null(p);
    return p;
}

static void problem_init(problem *p, const margin_loss *loss, size_t n,
                         size_t d, size_t k)
{
    memset(p, 0, sizeof *p);
    p->loss = loss;
    p->x = alloc_doubles(n * d);
    p->w = alloc_doubles(k * d);
    p->y = calloc(n ? n : 1, sizeof *p->y);
    cr_assert_not_null(p->y);
    p->a.n = n;
    p->a.d = d;
    p->a.k = k;
    p->a.features = p->x;
    p->a.weights = p->w;
    p->a.labels = p->y;
    p->a.margin = loss->default_margin;
    p->a.reduction = LOSS_REDUCE_MEAN;
    p->o.per_sample = alloc_doubles(n);
    p->o.grad_features = alloc_doubles(n * d);
    p->o.grad_weights = alloc_doubles(k * d);
}

static void problem_free(problem *p)
{
    free(p->x);
    free(p->w);
    free(p->y);
    free(p->o.per_sample);
    free(p->o.grad_features);
    free(p->o.grad_weights);
}

/* Calls the loss with scratch of exactly the size it asks for, so that the
 * sanitizers catch any write past it. */
static int run_out(problem *p, loss_margin_softmax_out *o, loss_error *err)
{
    size_t nw = p->loss->work(&p->a);
    double *work = alloc_doubles(nw);
    int rc;

    p->a.work = work;
    rc = p->loss->fn(&p->a, o, err);
    p->a.work = NULL;
    free(work);
    return rc;
}

static int run(problem *p, loss_error *err)
{
    return run_out(p, &p->o, err);
}

static void run_ok(problem *p)
{
    loss_error err = {0};
    int rc = run(p, &err);

    cr_assert_eq(rc, LOSS_OK, "%s failed: %s", p->loss->name, err.message);
}

static void expect_error(problem *p, loss_status status, const char *path)
{
    loss_error err = {0};
    char got[96];
    int rc = run(p, &err);

    cr_assert_eq(rc, (int)status, "%s: status %d, want %d (%s)", p->loss->name,
                 rc, (int)status, err.message);
    cr_assert_eq(err.status, status);
    loss_error_path(&err, got, sizeof got);
    cr_assert_str_eq(got, path, "%s: error at %s, want %s", p->loss->name, got,
                     path);
    cr_assert(strlen(err.message) > 10, "message too short: '%s'", err.message);
}

/* ---- reference vectors --------------------------------------------------- */

static void vector_load(problem *p, const margin_loss *loss, const cJSON *req)
{
    size_t xd[3], wd[3], rank, n;
    double *x = vec_tensor(req, "features", xd, &rank);
    double *w = vec_tensor(req, "weights", wd, &rank);
    int64_t *y = vec_labels(req, "labels", &n);

    cr_assert(x && w && y, "vector request misses an input");
    problem_init(p, loss, n, wd[1], wd[0]);
    memcpy(p->x, x, n * wd[1] * sizeof *x);
    memcpy(p->w, w, wd[0] * wd[1] * sizeof *w);
    memcpy(p->y, y, n * sizeof *y);
    free(x);
    free(w);
    free(y);
    p->a.margin = (int)vec_number(req, "margin", loss->default_margin);
    p->a.beta = vec_number(req, "beta", 0.0);
    p->a.reduction = (loss_reduction)vec_reduction(req);
}

static void vector_check(problem *p, const cJSON *c, const char *name)
{
    const cJSON *exp = cJSON_GetObjectItem(c, "expected");
    const cJSON *g = cJSON_GetObjectItem(exp, "gradients");
    const cJSON *e = cJSON_GetObjectItem(c, "error");
    loss_error err = {0};
    char path[96];
    int rc = run(p, &err);

    if (e) {
        cr_assert_neq(rc, LOSS_OK, "%s: succeeded, want an error", name);
        cr_expect_str_eq(loss_status_code(err.status),
                         cJSON_GetObjectItem(e, "code")->valuestring, "%s",
                         name);
        loss_error_path(&err, path, sizeof path);
        cr_expect_str_eq(path, cJSON_GetObjectItem(e, "field")->valuestring,
                         "%s", name);
        return;
    }
    cr_assert_eq(rc, LOSS_OK, "%s: %s", name, err.message);
    vec_expect_number(cJSON_GetObjectItem(exp, "loss"), p->o.loss, name,
                      "loss");
    vec_expect_array(cJSON_GetObjectItem(exp, "per_sample"), p->o.per_sample,
                     p->a.n, name, "per_sample");
    vec_expect_array(cJSON_GetObjectItem(g, "features"), p->o.grad_features,
                     p->a.n * p->a.d, name, "grad features");
    vec_expect_array(cJSON_GetObjectItem(g, "weights"), p->o.grad_weights,
                     p->a.k * p->a.d, name, "grad weights");
}

static void vectors_for(const margin_loss *loss, size_t want_ok,
                        size_t want_err)
{
    cJSON *root = vec_load("margin_softmax");
    const cJSON *c;
    size_t ok = 0, bad = 0;
    problem p;

    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        if (strcmp(cJSON_GetObjectItem(c, "loss")->valuestring, loss->name))
            continue;
        vector_load(&p, loss, cJSON_GetObjectItem(c, "request"));
        vector_check(&p, c, name);
        *(cJSON_GetObjectItem(c, "error") ? &bad : &ok) += 1;
        problem_free(&p);
    }
    cJSON_Delete(root);
    cr_expect_eq(ok, want_ok, "%s: %zu value cases", loss->name, ok);
    cr_expect_eq(bad, want_err, "%s: %zu error cases", loss->name, bad);
}

Test(margin_softmax, l_softmax_vectors)
{
    vectors_for(&l_softmax, 20, 6);
}

Test(margin_softmax, a_softmax_vectors)
{
    vectors_for(&a_softmax, 19, 7);
}

/* ---- finite differences -------------------------------------------------- */

static double eval_loss(void *ctx)
{
    problem *p = ctx;
    loss_margin_softmax_out o = {0};
    loss_error err = {0};

    cr_assert_eq(run_out(p, &o, &err), LOSS_OK, "%s", err.message);
    return o.loss;
}

/* Distance of m*theta/pi from the nearest interval boundary for sample i. */
static double boundary_distance(const problem *p, size_t i)
{
    const double *x = p->x + i * p->a.d;
    const double *w = p->w + (size_t)p->y[i] * p->a.d;
    double wx = 0.0, ww = 0.0, xx = 0.0, t;
    size_t l;

    for (l = 0; l < p->a.d; l++) {
        wx += w[l] * x[l];
        ww += w[l] * w[l];
        xx += x[l] * x[l];
    }
    t = (double)p->a.margin * acos(wx / sqrt(ww * xx)) / acos(-1.0);
    return fabs(t - round(t));
}

/* Random features and weights, each sample redrawn until its angle is at
 * least 0.01 (in units of pi/m) away from an interval boundary. */
static void random_problem(problem *p, const margin_loss *loss, int m,
                           double beta, loss_reduction red, uint64_t seed)
{
    uint64_t s = seed;
    size_t i, j;

    problem_init(p, loss, 5, 4, 3);
    p->a.margin = m;
    p->a.beta = beta;
    p->a.reduction = red;
    test_rand_fill(&s, p->w, p->a.k * p->a.d, -1.5, 1.5);
    for (i = 0; i < p->a.n; i++) {
        p->y[i] = (int64_t)(i % p->a.k);
        for (j = 0; j < 100; j++) {
            test_rand_fill(&s, p->x + i * p->a.d, p->a.d, -2.0, 2.0);
            if (m == 1 || boundary_distance(p, i) > 0.01)
                break;
        }
        cr_assert_lt(j, 100);
    }
}

static void fd_both(problem *p, const char *what)
{
    size_t nx = p->a.n * p->a.d, nw = p->a.k * p->a.d;
    double *gx = alloc_doubles(nx), *gw = alloc_doubles(nw);
    char label[96];

    run_ok(p);
    memcpy(gx, p->o.grad_features, nx * sizeof *gx);
    memcpy(gw, p->o.grad_weights, nw * sizeof *gw);
    snprintf(label, sizeof label, "%s features", what);
    fd_check(eval_loss, p, p->x, gx, nx, 1e-6, 1e-6, label);
    snprintf(label, sizeof label, "%s weights", what);
    fd_check(eval_loss, p, p->w, gw, nw, 1e-6, 1e-6, label);
    free(gx);
    free(gw);
}

static void fd_sweep(const margin_loss *loss)
{
    static const int ms[] = {1, 2, 3, 4, 5, 8};
    static const double betas[] = {0.0, 0.6, 4.0};
    char what[96];
    size_t i, j;
    int r;
    problem p;

    for (i = 0; i < sizeof ms / sizeof ms[0]; i++)
        for (j = 0; j < sizeof betas / sizeof betas[0]; j++)
            for (r = 0; r < 2; r++) {
                random_problem(&p, loss, ms[i], betas[j], (loss_reduction)r,
                               1000 + 17 * i + 5 * j + (uint64_t)r);
                snprintf(what, sizeof what, "%s m=%d beta=%g %s", loss->name,
                         ms[i], betas[j], r ? "sum" : "mean");
                fd_both(&p, what);
                problem_free(&p);
            }
}

Test(margin_softmax, l_softmax_finite_differences)
{
    fd_sweep(&l_softmax);
}

Test(margin_softmax, a_softmax_finite_differences)
{
    fd_sweep(&a_softmax);
}

/* At c = +-1 (features parallel or opposite to the target row) the
 * polynomial keeps the gradient finite and correct. */
static void collinear(const margin_loss *loss)
{
    problem p;
    size_t l;

    random_problem(&p, loss, 4, 0.5, LOSS_REDUCE_SUM, 77);
    for (l = 0; l < p.a.d; l++) {
        p.x[0 * p.a.d + l] = 2.0 * p.w[0 * p.a.d + l];
        p.x[1 * p.a.d + l] = -1.5 * p.w[1 * p.a.d + l];
    }
    run_ok(&p);
    for (l = 0; l < p.a.n * p.a.d; l++)
        cr_assert(isfinite(p.o.grad_features[l]));
    fd_both(&p, loss->name);
    problem_free(&p);
}

Test(margin_softmax, collinear_features)
{
    collinear(&l_softmax);
    collinear(&a_softmax);
}

/* ---- m = 1 is softmax cross-entropy ---------------------------------------
 */

/* Softmax cross-entropy of the logits x.v_j^T written out directly, with
 * its gradients with respect to x and v. */
static void plain_softmax(const problem *p, const double *v, double *loss,
                          double *per, double *gx, double *gv)
{
    size_t n = p->a.n, d = p->a.d, k = p->a.k, i, j, l;
    double scale = p->a.reduction == LOSS_REDUCE_SUM ? 1.0 : 1.0 / (double)n;
    double f[8], mx, s, g;

    cr_assert_leq(k, 8);
    memset(gx, 0, n * d * sizeof *gx);
    memset(gv, 0, k * d * sizeof *gv);
    *loss = 0.0;
    for (i = 0; i < n; i++) {
        for (j = 0, mx = -INFINITY; j < k; j++) {
            for (l = 0, f[j] = 0.0; l < d; l++)
                f[j] += p->x[i * d + l] * v[j * d + l];
            mx = fmax(mx, f[j]);
        }
        for (j = 0, s = 0.0; j < k; j++)
            s += exp(f[j] - mx);
        per[i] = mx + log(s) - f[p->y[i]];
        *loss += scale * per[i];
        for (j = 0; j < k; j++) {
            g = scale * (exp(f[j] - mx) / s - (j == (size_t)p->y[i]));
            for (l = 0; l < d; l++) {
                gx[i * d + l] += g * v[j * d + l];
                gv[j * d + l] += g * p->x[i * d + l];
            }
        }
    }
}

static void expect_close(const double *got, const double *want, size_t n,
                         const char *what)
{
    size_t i;

    for (i = 0; i < n; i++)
        cr_expect(fabs(got[i] - want[i]) <= 1e-12 * fmax(1.0, fabs(want[i])),
                  "%s[%zu] = %.17g, want %.17g", what, i, got[i], want[i]);
}

Test(margin_softmax, l_softmax_m1_equals_softmax)
{
    double loss, per[5], gx[20], gw[12];
    int r, b;
    problem p;

    for (r = 0; r < 2; r++)
        for (b = 0; b < 2; b++) {
            random_problem(&p, &l_softmax, 1, 1.3 * b, (loss_reduction)r,
                           (uint64_t)(31 + 2 * r + b));
            run_ok(&p);
            plain_softmax(&p, p.w, &loss, per, gx, gw);
            expect_close(&p.o.loss, &loss, 1, "loss");
            expect_close(p.o.per_sample, per, 5, "per_sample");
            expect_close(p.o.grad_features, gx, 20, "grad features");
            expect_close(p.o.grad_weights, gw, 12, "grad weights");
            problem_free(&p);
        }
}

Test(margin_softmax, a_softmax_m1_equals_softmax_on_unit_rows)
{
    double loss, per[5], gx[20], gv[12], unit[12], nrm;
    size_t j, l;
    problem p;

    random_problem(&p, &a_softmax, 1, 0.4, LOSS_REDUCE_MEAN, 57);
    for (j = 0; j < 3; j++) {
        for (l = 0, nrm = 0.0; l < 4; l++)
            nrm += p.w[j * 4 + l] * p.w[j * 4 + l];
        for (l = 0; l < 4; l++)
            unit[j * 4 + l] = p.w[j * 4 + l] / sqrt(nrm);
    }
    run_ok(&p);
    plain_softmax(&p, unit, &loss, per, gx, gv);
    expect_close(&p.o.loss, &loss, 1, "loss");
    expect_close(p.o.per_sample, per, 5, "per_sample");
    expect_close(p.o.grad_features, gx, 20, "grad features");
    problem_free(&p);
}

/* ---- a_softmax normalisation ----------------------------------------------
 */

/* Scaling a weight row leaves the loss unchanged, divides that row's
 * gradient by the scale, and every row's gradient is orthogonal to it. */
Test(margin_softmax, a_softmax_scale_invariance)
{
    double loss0, g0[12], dotp;
    size_t j, l;
    problem p;

    random_problem(&p, &a_softmax, 3, 0.5, LOSS_REDUCE_SUM, 91);
    run_ok(&p);
    loss0 = p.o.loss;
    memcpy(g0, p.o.grad_weights, sizeof g0);
    for (j = 0; j < 3; j++) {
        for (l = 0, dotp = 0.0; l < 4; l++)
            dotp += g0[j * 4 + l] * p.w[j * 4 + l];
        cr_expect(fabs(dotp) < 1e-12, "row %zu: gradient.w = %g", j, dotp);
    }
    for (l = 0; l < 4; l++)
        p.w[4 + l] *= 8.0;
    run_ok(&p);
    cr_expect(fabs(p.o.loss - loss0) <= 1e-13 * loss0);
    for (l = 0; l < 4; l++) {
        cr_expect(fabs(p.o.grad_weights[l] - g0[l]) < 1e-13);
        cr_expect(fabs(8.0 * p.o.grad_weights[4 + l] - g0[4 + l]) < 1e-13);
    }
    problem_free(&p);
}

/* ---- edge cases ------------------------------------------------------------
 */

/* One zero feature vector: every logit is 0, the loss is log K, the target
 * logit contributes no gradient, and the weights get none from the sample;
 * the features' gradient is the mean of the non-target rows (unit rows for
 * a_softmax). */
static void zero_feature(const margin_loss *loss)
{
    double n0 = 0.0, n2 = 0.0, want;
    size_t l;
    problem p;

    random_problem(&p, loss, 3, 0.5, LOSS_REDUCE_MEAN, 5);
    p.a.n = 1;
    p.y[0] = 1;
    memset(p.x, 0, 4 * sizeof *p.x);
    run_ok(&p);
    cr_expect(fabs(p.o.loss - log(3.0)) < 1e-15, "loss %.17g", p.o.loss);
    cr_expect(fabs(p.o.per_sample[0] - log(3.0)) < 1e-15);
    for (l = 0; l < 4; l++) {
        n0 += p.w[l] * p.w[l];
        n2 += p.w[8 + l] * p.w[8 + l];
    }
    if (loss == &l_softmax)
        n0 = n2 = 1.0;
    for (l = 0; l < 12; l++)
        cr_expect_eq(p.o.grad_weights[l], 0.0);
    for (l = 0; l < 4; l++) {
        want = (p.w[l] / sqrt(n0) + p.w[8 + l] / sqrt(n2)) / 3.0;
        cr_expect(fabs(p.o.grad_features[l] - want) < 1e-15,
                  "%s: grad features[%zu] = %.17g, want %.17g", loss->name, l,
                  p.o.grad_features[l], want);
    }
    problem_free(&p);
}

Test(margin_softmax, zero_feature_vector)
{
    zero_feature(&l_softmax);
    zero_feature(&a_softmax);
}

/* A subnormal feature vector (|x| near 1e-310, where 1/|x| overflows) has
 * the gradient of the same direction at 1e-290: both are the limit at
 * |x| -> 0 to within the subnormal's precision (about 5e-14 relative). */
static void tiny_feature(const margin_loss *loss)
{
    double g[4], gw[3 * 4], scale[2] = {1e-290, 1e-310}, u[4];
    size_t i, l, r;
    problem p;

    random_problem(&p, loss, 3, 0.5, LOSS_REDUCE_MEAN, 11);
    memcpy(u, p.x, sizeof u);
    p.a.n = 1;
    for (r = 0; r < 2; r++) {
        for (l = 0; l < 4; l++)
            p.x[l] = u[l] * scale[r];
        run_ok(&p);
        cr_expect(fabs(p.o.loss - log(3.0)) < 1e-15, "%s: loss %.17g",
                  loss->name, p.o.loss);
        for (i = 0; i < 4 && r == 0; i++)
            g[i] = p.o.grad_features[i];
        for (i = 0; i < 12 && r == 0; i++)
            gw[i] = p.o.grad_weights[i] / scale[0];
    }
    for (i = 0; i < 4; i++)
        cr_expect(fabs(p.o.grad_features[i] - g[i]) < 1e-11,
                  "%s: grad features[%zu] = %.17g at 1e-310, %.17g at 1e-290",
                  loss->name, i, p.o.grad_features[i], g[i]);
    /* The weights' gradients scale with x: compare them relative. */
    for (i = 0; i < 12; i++)
        cr_expect(fabs(p.o.grad_weights[i] / scale[1] - gw[i]) <
                      1e-11 * (1.0 + fabs(gw[i])),
                  "%s: grad weights[%zu] = %.17g, want %.17g x 1e-310",
                  loss->name, i, p.o.grad_weights[i], gw[i]);
    problem_free(&p);
}

Test(margin_softmax, subnormal_feature_vector)
{
    tiny_feature(&l_softmax);
    tiny_feature(&a_softmax);
}

/* Norms whose product underflows (a target row and a feature near 1e-200)
 * still carry the target logit's gradient: that of w_y does not depend on
 * |w_y|, so rows of 1e-200 and 1e-100 in the same direction get the same
 * one (it was 0 for the first, taken as a zero row). */
static void tiny_norms(const margin_loss *loss)
{
    double gw[4], scale[2] = {1e-100, 1e-200};
    size_t l, r;
    problem p;

    random_problem(&p, loss, 2, 0.0, LOSS_REDUCE_SUM, 12);
    p.a.n = 1;
    p.y[0] = 0;
    for (l = 0; l < 4; l++)
        p.x[l] *= 1e-200;
    for (r = 0; r < 2; r++) {
        for (l = 0; l < 4; l++)
            p.w[l] = (double)(l + 1) * scale[r];
        run_ok(&p);
        for (l = 0; l < 4 && r == 0; l++)
            gw[l] = p.o.grad_weights[l];
    }
    for (l = 0; l < 4; l++)
        cr_expect(gw[l] != 0.0 &&
                      fabs(p.o.grad_weights[l] - gw[l]) <= 1e-12 * fabs(gw[l]),
                  "%s: grad weights[0][%zu] = %.17g with a row of 1e-200, "
                  "%.17g with 1e-100",
                  loss->name, l, p.o.grad_weights[l], gw[l]);
    problem_free(&p);
}

Test(margin_softmax, norms_whose_product_underflows)
{
    tiny_norms(&l_softmax);
}

/* l_softmax with a zero target row: f_y = 0 and the row gets no gradient. */
Test(margin_softmax, l_softmax_zero_target_row)
{
    double e1, e2, s;
    size_t l;
    problem p;

    random_problem(&p, &l_softmax, 2, 0.0, LOSS_REDUCE_SUM, 8);
    p.a.n = 1;
    p.y[0] = 0;
    memset(p.w, 0, 4 * sizeof *p.w);
    run_ok(&p);
    for (l = 0, e1 = e2 = 0.0; l < 4; l++) {
        e1 += p.w[4 + l] * p.x[l];
        e2 += p.w[8 + l] * p.x[l];
    }
    s = 1.0 + exp(e1) + exp(e2);
    cr_expect(fabs(p.o.loss - log(s)) < 1e-14 * log(s));
    for (l = 0; l < 4; l++) {
        cr_expect_eq(p.o.grad_weights[l], 0.0);
        cr_expect(fabs(p.o.grad_weights[4 + l] - exp(e1) / s * p.x[l]) < 1e-15);
        cr_expect(fabs(p.o.grad_features[l] -
                       (exp(e1) * p.w[4 + l] + exp(e2) * p.w[8 + l]) / s) <
                  1e-15);
    }
    problem_free(&p);
}

/* Logits near +-1000: with w_0 = (1, 0), w_1 = (0, 1) and x = (0, 1000),
 * c = 0 lies in the interval k = 1 for m = 2, so f_0 = -1000, f_1 = 1000
 * and the loss is 2000 = 2*x_1 (psi'(0) = 0); with m = 1 it is
 * 1000 = x_1 - x_0. */
static void extreme(const margin_loss *loss)
{
    problem p;
    size_t l;

    problem_init(&p, loss, 1, 2, 2);
    p.w[0] = 1.0;
    p.w[3] = 1.0;
    p.x[1] = 1000.0;
    p.a.margin = 2;
    run_ok(&p);
    cr_expect_eq(p.o.loss, 2000.0, "%s m=2: %.17g", loss->name, p.o.loss);
    cr_expect_eq(p.o.per_sample[0], 2000.0);
    cr_expect_eq(p.o.grad_features[0], 0.0);
    cr_expect_eq(p.o.grad_features[1], 2.0);
    p.a.margin = 1;
    run_ok(&p);
    cr_expect_eq(p.o.loss, 1000.0, "%s m=1: %.17g", loss->name, p.o.loss);
    cr_expect_eq(p.o.grad_features[0], -1.0);
    cr_expect_eq(p.o.grad_features[1], 1.0);
    for (l = 0; l < 4; l++)
        cr_expect(isfinite(p.o.grad_weights[l]));
    problem_free(&p);
}

Test(margin_softmax, extreme_logits)
{
    extreme(&l_softmax);
    extreme(&a_softmax);
}

/* n = 1, K = 2: the loss is softplus(f_other - f_y). */
Test(margin_softmax, single_sample_two_classes)
{
    double f1, c, fy;
    problem p;

    problem_init(&p, &l_softmax, 1, 2, 2);
    p.w[0] = 2.0; /* w_0 = (2, 0) */
    p.w[2] = 1.0; /* w_1 = (1, 1) */
    p.w[3] = 1.0;
    p.x[0] = 1.0; /* x = (1, 1): theta = 45 degrees */
    p.x[1] = 1.0;
    p.a.margin = 3; /* k = floor(3/4) = 0, T_3(c) = 4c^3 - 3c */
    p.a.beta = 1.0;
    run_ok(&p);
    c = sqrt(0.5);
    fy = (2.0 + 2.0 * sqrt(2.0) * (4.0 * c * c * c - 3.0 * c)) / 2.0;
    f1 = 2.0;
    cr_expect(fabs(p.o.loss - log1p(exp(f1 - fy))) < 1e-14,
              "loss %.17g, want %.17g", p.o.loss, log1p(exp(f1 - fy)));
    problem_free(&p);
}

/* Outputs left NULL are not computed and do not change the others. */
Test(margin_softmax, null_outputs)
{
    const margin_loss *losses[] = {&l_softmax, &a_softmax};
    loss_margin_softmax_out o = {0};
    loss_error err = {0};
    double gw[12];
    size_t i;
    problem p;

    for (i = 0; i < 2; i++) {
        random_problem(&p, losses[i], 4, 0.5, LOSS_REDUCE_MEAN, 3);
        run_ok(&p);
        cr_assert_eq(run_out(&p, &o, &err), LOSS_OK);
        cr_expect_eq(o.loss, p.o.loss);
        o.grad_weights = gw;
        cr_assert_eq(run_out(&p, &o, &err), LOSS_OK);
        cr_expect_eq(o.loss, p.o.loss);
        cr_expect_arr_eq(gw, p.o.grad_weights, sizeof gw);
        o.grad_weights = NULL;
        problem_free(&p);
    }
}

Test(margin_softmax, work_sizes)
{
    loss_margin_softmax_args a = {0};

    a.n = 7;
    a.d = 5;
    a.k = 3;
    cr_expect_eq(loss_l_softmax_work(&a), 3);
    cr_expect_eq(loss_a_softmax_work(&a), 21);
    a.d = SIZE_MAX / 2;
    cr_expect_eq(loss_a_softmax_work(&a), SIZE_MAX);
}

/* ---- invalid input ----------------------------------------------------------
 */

static void errors(const margin_loss *loss)
{
    problem p;

    random_problem(&p, loss, 2, 0.0, LOSS_REDUCE_MEAN, 11);
    p.a.n = 0;
    expect_error(&p, LOSS_E_EMPTY, "features");
    p.a.n = 5;
    p.a.margin = 0;
    expect_error(&p, LOSS_E_PARAM, "margin");
    p.a.margin = 9;
    expect_error(&p, LOSS_E_PARAM, "margin");
    p.a.margin = -2;
    expect_error(&p, LOSS_E_PARAM, "margin");
    p.a.margin = 8;
    p.a.beta = -0.1;
    expect_error(&p, LOSS_E_PARAM, "beta");
    p.a.beta = NAN;
    expect_error(&p, LOSS_E_PARAM, "beta");
    p.a.beta = INFINITY;
    expect_error(&p, LOSS_E_PARAM, "beta");
    p.a.beta = 0.0;
    p.y[3] = -1;
    expect_error(&p, LOSS_E_LABEL, "labels[3]");
    p.y[3] = 3;
    expect_error(&p, LOSS_E_LABEL, "labels[3]");
    p.y[3] = 0;
    p.x[1 * 4 + 2] = NAN;
    expect_error(&p, LOSS_E_NONFINITE, "features[1][2]");
    p.x[1 * 4 + 2] = 0.5;
    p.w[2 * 4 + 0] = -INFINITY;
    expect_error(&p, LOSS_E_NONFINITE, "weights[2][0]");
    p.w[2 * 4 + 0] = 0.5;
    run_ok(&p);
    problem_free(&p);
}

Test(margin_softmax, l_softmax_errors)
{
    errors(&l_softmax);
}

Test(margin_softmax, a_softmax_errors)
{
    errors(&a_softmax);
}

/* Every weight row is normalised, so a zero row is an error even when no
 * label uses it; l_softmax accepts it. */
Test(margin_softmax, a_softmax_zero_row)
{
    problem p;

    random_problem(&p, &a_softmax, 4, 0.0, LOSS_REDUCE_MEAN, 13);
    p.y[0] = p.y[1] = p.y[2] = p.y[3] = p.y[4] = 0;
    memset(p.w + 2 * 4, 0, 4 * sizeof *p.w);
    expect_error(&p, LOSS_E_ZERO_NORM, "weights[2]");
    p.loss = &l_softmax;
    run_ok(&p);
    problem_free(&p);
}
