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
#include "rng.h"
#include "vec.h"

#define FD_H 1e-6
#define FD_RTOL 1e-6

/* ---- Reading requests --------------------------------------------------- */

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
static double *tensor(const cJSON *req, const char *name, size_t *n, size_t *d)
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

    cr_assert(rc != LOSS_OK, "%s: expected %s, got success", name, code);
    cr_expect_str_eq(loss_status_code((loss_status)rc), code, "%s", name);
    loss_error_path(err, path, sizeof path);
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

/* ---- Vector runners: each returns 1 when the case was of its kind ------- */

/* The loss, per-sample values (when given), the gradients of the named
 * fields (each [n][d]) and the metrics valid and active_fraction (when mv is
 * not NULL) of a successful case against its vector. */
static void expect_case(const cJSON *c, double loss, const double *per,
                        size_t n, size_t d, const char *const *fields,
                        double *const *grads, size_t nf, const double *mv)
{
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    const cJSON *metrics = expected(c, "metrics");
    size_t k;

    vec_expect_number(expected(c, "loss"), loss, name, "loss");
    if (per)
        vec_expect_array(expected(c, "per_sample"), per, n, name, "per_sample");
    else
        cr_expect_null(expected(c, "per_sample"), "%s", name);
    for (k = 0; k < nf; k++)
        vec_expect_array(expected_grad(c, fields[k]), grads[k], n * d, name,
                         fields[k]);
    if (mv) {
        vec_expect_number(cJSON_GetObjectItem(metrics, "valid"), mv[0], name,
                          "valid");
        vec_expect_number(cJSON_GetObjectItem(metrics, "active_fraction"),
                          mv[1], name, "active_fraction");
    }
}

static int is_loss(const cJSON *c, const char *loss)
{
    return strcmp(cJSON_GetObjectItem(c, "loss")->valuestring, loss) == 0;
}

static const char *const TRIPLET_FIELDS[3] = {"anchor", "positive", "negative"};
static const char *const QUAD_FIELDS[4] = {"anchor", "positive", "negative",
                                           "negative2"};

/* Loads the [n][d] inputs named fields[0..nf-1] into x, asserting one shape,
 * and allocates a zeroed gradient for each in g. */
static void load_inputs(const cJSON *req, const char *const *fields, size_t nf,
                        double **x, double **g, size_t *n, size_t *d)
{
    size_t k, nk, dk;

    for (k = 0; k < nf; k++) {
        x[k] = tensor(req, fields[k], k ? &nk : n, k ? &dk : d);
        cr_assert(k == 0 || (nk == *n && dk == *d), "%s shape", fields[k]);
        g[k] = zeros(*n * *d);
    }
}

static void free_all(double **x, size_t nx)
{
    size_t k;

    for (k = 0; k < nx; k++)
        free(x[k]);
}

static int run_explicit(const cJSON *c)
{
    const cJSON *req = cJSON_GetObjectItem(c, "request");
    loss_triplet_args a = {0};
    loss_triplet_out o = {0};
    loss_error err = {0};
    double *x[3], *g[3], mv[2];
    int rc;

    if (!is_loss(c, "triplet") || vec_field(req, "anchor") == NULL)
        return 0;
    load_inputs(req, TRIPLET_FIELDS, 3, x, g, &a.n, &a.d);
    a.anchor = x[0], a.positive = x[1], a.negative = x[2];
    a.margin = vec_number(req, "margin", 1.0);
    a.distance = parse_distance(req, "euclidean");
    a.swap = vec_bool(req, "swap", 0);
    a.reduction = (loss_reduction)vec_reduction(req);
    o.per_sample = zeros(a.n);
    o.grad_anchor = g[0], o.grad_positive = g[1], o.grad_negative = g[2];
    cr_assert_eq(loss_triplet_work(&a), 0);
    rc = loss_triplet(&a, &o, &err);
    if (cJSON_GetObjectItem(c, "error")) {
        expect_error(c, rc, &err);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s", err.message);
        mv[0] = o.valid, mv[1] = o.active_fraction;
        expect_case(c, o.loss, o.per_sample, a.n, a.d, TRIPLET_FIELDS, g, 3,
                    mv);
    }
    free_all(x, 3), free_all(g, 3), free(o.per_sample);
    return 1;
}

static int run_mined(const cJSON *c)
{
    const cJSON *req = cJSON_GetObjectItem(c, "request");
    static const char *const field[1] = {"embeddings"};
    loss_triplet_mined_args a = {0};
    loss_triplet_mined_out o = {0};
    loss_error err = {0};
    size_t nl;
    double *e, *g, mv[2];
    int64_t *y;
    int rc;

    if (!is_loss(c, "triplet") || vec_field(req, "embeddings") == NULL)
        return 0;
    load_inputs(req, field, 1, &e, &g, &a.n, &a.d);
    y = vec_labels(req, "labels", &nl);
    cr_assert_eq(nl, a.n, "labels");
    a.embeddings = e, a.labels = y;
    a.margin = vec_number(req, "margin", 1.0);
    a.distance = parse_distance(req, "euclidean");
    a.mining = parse_mining(req);
    a.reduction = (loss_reduction)vec_reduction(req);
    cr_assert_eq(loss_triplet_mined_work(&a),
                 a.n * a.n +
                     (a.mining == LOSS_MINING_BATCH_ALL ? 4 * a.n + 2 : 0));
    a.work = zeros(loss_triplet_mined_work(&a));
    o.per_sample = zeros(a.n);
    o.grad_embeddings = g;
    rc = loss_triplet_mined(&a, &o, &err);
    if (cJSON_GetObjectItem(c, "error")) {
        expect_error(c, rc, &err);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s", err.message);
        mv[0] = o.valid, mv[1] = o.active_fraction;
        expect_case(c, o.loss, o.per_sample, a.n, a.d, field, &g, 1, mv);
    }
    free(e), free(g), free(y), free(a.work), free(o.per_sample);
    return 1;
}

static int run_quadruplet(const cJSON *c)
{
    const cJSON *req = cJSON_GetObjectItem(c, "request");
    loss_quadruplet_args a = {0};
    loss_quadruplet_out o = {0};
    loss_error err = {0};
    double *x[4], *g[4];
    int rc;

    if (!is_loss(c, "quadruplet"))
        return 0;
    load_inputs(req, QUAD_FIELDS, 4, x, g, &a.n, &a.d);
    a.anchor = x[0], a.positive = x[1], a.negative = x[2], a.negative2 = x[3];
    a.margin = vec_number(req, "margin", 1.0);
    a.margin2 = vec_number(req, "margin2", 0.5);
    a.distance = parse_distance(req, "squared_euclidean");
    a.reduction = (loss_reduction)vec_reduction(req);
    o.per_sample = zeros(a.n);
    o.grad_anchor = g[0], o.grad_positive = g[1], o.grad_negative = g[2];
    o.grad_negative2 = g[3];
    cr_assert_eq(loss_quadruplet_work(&a), 0);
    rc = loss_quadruplet(&a, &o, &err);
    if (cJSON_GetObjectItem(c, "error")) {
        expect_error(c, rc, &err);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s", err.message);
        expect_case(c, o.loss, o.per_sample, a.n, a.d, QUAD_FIELDS, g, 4, NULL);
    }
    free_all(x, 4), free_all(g, 4), free(o.per_sample);
    return 1;
}

static int run_msml(const cJSON *c)
{
    const cJSON *req = cJSON_GetObjectItem(c, "request");
    static const char *const field[1] = {"embeddings"};
    loss_msml_args a = {0};
    loss_msml_out o = {0};
    loss_error err = {0};
    size_t nl;
    double *e, *g;
    int64_t *y;
    int rc;

    if (!is_loss(c, "msml"))
        return 0;
    load_inputs(req, field, 1, &e, &g, &a.n, &a.d);
    y = vec_labels(req, "labels", &nl);
    cr_assert_eq(nl, a.n, "labels");
    a.embeddings = e, a.labels = y;
    a.margin = vec_number(req, "margin", 1.0);
    a.distance = parse_distance(req, "euclidean");
    a.reduction = (loss_reduction)vec_reduction(req);
    o.grad_embeddings = g;
    cr_assert_eq(loss_msml_work(&a), 0);
    rc = loss_msml(&a, &o, &err);
    if (cJSON_GetObjectItem(c, "error")) {
        expect_error(c, rc, &err);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s", err.message);
        expect_case(c, o.loss, NULL, a.n, a.d, field, &g, 1, NULL);
    }
    free(e), free(g), free(y);
    return 1;
}

/* Runs every case that run accepts; asserts at least min of them ran. */
static void run_vectors(int (*run)(const cJSON *c), int min, int min_errors)
{
    cJSON *root = vec_load("triplet");
    const cJSON *c;
    int ran = 0, errors = 0;

    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        int r = run(c);
        ran += r;
        errors += r && cJSON_GetObjectItem(c, "error") != NULL;
    }
    cJSON_Delete(root);
    cr_assert_geq(ran, min, "only %d cases ran", ran);
    cr_assert_geq(errors, min_errors, "only %d error cases ran", errors);
}

Test(triplet_vectors, triplet_explicit)
{
    run_vectors(run_explicit, 20, 3);
}
Test(triplet_vectors, triplet_mined)
{
    run_vectors(run_mined, 28, 3);
}
Test(triplet_vectors, quadruplet)
{
    run_vectors(run_quadruplet, 10, 3);
}
Test(triplet_vectors, msml)
{
    run_vectors(run_msml, 11, 2);
}

/* ---- Finite differences ----------------------------------------------------
 * Random inputs, re-drawn until every hinge, every selection and every
 * Euclidean distance in play is at least GAP away from a kink, so that the
 * central differences see a smooth function. */

#define GAP 1e-3

static double tdist(const double *u, const double *v, size_t d, loss_distance k)
{
    double s = 0.0;
    size_t i;

    for (i = 0; i < d; i++)
        s += (u[i] - v[i]) * (u[i] - v[i]);
    return k == LOSS_DIST_EUCLIDEAN ? sqrt(s) : s;
}

/* The smallest distance of z from the hinge's kink and of a distance from 0. */
static double kink_gap(double z, double dist)
{
    return fmin(fabs(z), dist);
}

static int any_nonzero(const double *g, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (g[i] != 0.0)
            return 1;
    return 0;
}

typedef struct explicit_fd {
    loss_triplet_args a;
    double x[3][24];
} explicit_fd;

static double explicit_eval(void *ctx)
{
    explicit_fd *f = ctx;
    loss_triplet_out o = {0};

    cr_assert_eq(loss_triplet(&f->a, &o, NULL), LOSS_OK);
    return o.loss;
}

/* The explicit triplets' gap; counts in sw[0] the samples that swap and in
 * sw[1] the active ones. */
static double explicit_gap(const explicit_fd *f, size_t sw[2])
{
    const loss_triplet_args *a = &f->a;
    double gap = INFINITY;
    size_t i, d = a->d;

    sw[0] = sw[1] = 0;
    for (i = 0; i < a->n; i++) {
        const double *x = f->x[0] + i * d, *p = f->x[1] + i * d;
        const double *ng = f->x[2] + i * d;
        double dap = tdist(x, p, d, a->distance);
        double dan = tdist(x, ng, d, a->distance), dn = dan;
        if (a->swap) {
            double dpn = tdist(p, ng, d, a->distance);
            gap = fmin(gap, fmin(fabs(dpn - dan), dpn));
            sw[0] += dpn < dan;
            dn = fmin(dn, dpn);
        }
        gap = fmin(gap, kink_gap(dap - dn + a->margin, fmin(dap, dan)));
        sw[1] += dap - dn + a->margin > 0.0;
    }
    return gap;
}

static void explicit_fill(explicit_fd *f, uint64_t *seed)
{
    size_t sw[2], n = f->a.n, d = f->a.d, i;

    do {
        test_rand_fill(seed, f->x[0], n * d, -1.0, 1.0);
        test_rand_fill(seed, f->x[1], n * d, -1.0, 1.0);
        test_rand_fill(seed, f->x[2], n * d, -1.0, 1.0);
        for (i = 0; f->a.swap && i < n * d / 2; i++)
            f->x[1][i] = f->x[2][i] + test_rand(seed, -0.3, 0.3);
    } while (explicit_gap(f, sw) < GAP || sw[1] == 0 || sw[1] == n ||
             (f->a.swap && (sw[0] == 0 || sw[0] == n)));
}

static void explicit_fd_run(loss_distance k, int swap, loss_reduction r)
{
    explicit_fd f = {0};
    double g[3][24];
    loss_triplet_out o = {0};
    uint64_t seed =
        0x9e3779b97f4a7c15ULL + (uint64_t)k * 4 + (uint64_t)swap * 2 + r;
    size_t j, len;
    static const char *const what[3] = {"anchor", "positive", "negative"};

    f.a.n = 8, f.a.d = 3, f.a.margin = 0.7, f.a.distance = k;
    f.a.swap = swap, f.a.reduction = r;
    f.a.anchor = f.x[0], f.a.positive = f.x[1], f.a.negative = f.x[2];
    len = f.a.n * f.a.d;
    explicit_fill(&f, &seed);
    o.grad_anchor = g[0], o.grad_positive = g[1], o.grad_negative = g[2];
    cr_assert_eq(loss_triplet(&f.a, &o, NULL), LOSS_OK);
    cr_assert(o.active_fraction > 0.0 && o.active_fraction < 1.0,
              "want active and inactive samples, got %g", o.active_fraction);
    for (j = 0; j < 3; j++) {
        cr_assert(any_nonzero(g[j], len), "%s gradient is 0", what[j]);
        fd_check(explicit_eval, &f, f.x[j], g[j], len, FD_H, FD_RTOL, what[j]);
    }
}

Test(triplet_fd, triplet_euclidean_mean)
{
    explicit_fd_run(LOSS_DIST_EUCLIDEAN, 0, LOSS_REDUCE_MEAN);
}
Test(triplet_fd, triplet_euclidean_sum)
{
    explicit_fd_run(LOSS_DIST_EUCLIDEAN, 0, LOSS_REDUCE_SUM);
}
Test(triplet_fd, triplet_squared_mean)
{
    explicit_fd_run(LOSS_DIST_SQUARED_EUCLIDEAN, 0, LOSS_REDUCE_MEAN);
}
Test(triplet_fd, triplet_squared_sum)
{
    explicit_fd_run(LOSS_DIST_SQUARED_EUCLIDEAN, 0, LOSS_REDUCE_SUM);
}
Test(triplet_fd, triplet_swap_euclidean_mean)
{
    explicit_fd_run(LOSS_DIST_EUCLIDEAN, 1, LOSS_REDUCE_MEAN);
}
Test(triplet_fd, triplet_swap_euclidean_sum)
{
    explicit_fd_run(LOSS_DIST_EUCLIDEAN, 1, LOSS_REDUCE_SUM);
}
Test(triplet_fd, triplet_swap_squared_mean)
{
    explicit_fd_run(LOSS_DIST_SQUARED_EUCLIDEAN, 1, LOSS_REDUCE_MEAN);
}
Test(triplet_fd, triplet_swap_squared_sum)
{
    explicit_fd_run(LOSS_DIST_SQUARED_EUCLIDEAN, 1, LOSS_REDUCE_SUM);
}

/* ---- mined -------------------------------------------------------------- */

#define MN 8
#define MD 3
static const int64_t MINED_LABELS[MN] = {0, 0, 1, 1, 1, 2, 2, 3};

typedef struct mined_fd {
    loss_triplet_mined_args a;
    double e[MN * MD], work[MN * MN + 4 * MN + 2];
} mined_fd;

static double mined_eval(void *ctx)
{
    mined_fd *f = ctx;
    loss_triplet_mined_out o = {0};

    cr_assert_eq(loss_triplet_mined(&f->a, &o, NULL), LOSS_OK);
    return o.loss;
}

/* How far anchor i's batch-hard selections are from a tie, and its hinge
 * from the kink: the gaps between the best and second-best candidates. */
static double hard_gap(const double *dm, const int64_t *y, size_t i,
                       double margin)
{
    double p1 = -1, p2 = -1, q1 = INFINITY, q2 = INFINITY;
    size_t j;

    for (j = 0; j < MN; j++) {
        double v = dm[i * MN + j];
        if (y[j] != y[i]) {
            q2 = v < q1 ? q1 : fmin(q2, v);
            q1 = fmin(q1, v);
        } else if (j != i) {
            p2 = v > p1 ? p1 : fmax(p2, v);
            p1 = fmax(p1, v);
        }
    }
    if (p1 < 0 || isinf(q1))
        return INFINITY;
    return fmin(fmin(p1 - p2, q2 - q1), fabs(p1 - q1 + margin));
}

/* The smallest gap of every triplet of anchor i from its kink. */
static double all_gap(const double *dm, const int64_t *y, size_t i,
                      double margin)
{
    double gap = INFINITY;
    size_t p, q;

    for (p = 0; p < MN; p++)
        for (q = 0; q < MN; q++)
            if (p != i && y[p] == y[i] && y[q] != y[i])
                gap = fmin(gap, fabs(dm[i * MN + p] - dm[i * MN + q] + margin));
    return gap;
}

static double mined_gap(const mined_fd *f)
{
    double dm[MN * MN], gap = INFINITY;
    size_t i, j;

    for (i = 0; i < MN; i++)
        for (j = 0; j < MN; j++) {
            dm[i * MN + j] =
                tdist(f->e + i * MD, f->e + j * MD, MD, f->a.distance);
            if (i != j)
                gap = fmin(gap, dm[i * MN + j]);
        }
    for (i = 0; i < MN; i++)
        gap = fmin(gap, f->a.mining == LOSS_MINING_BATCH_HARD
                            ? hard_gap(dm, MINED_LABELS, i, f->a.margin)
                            : all_gap(dm, MINED_LABELS, i, f->a.margin));
    return gap;
}

/* 1 when some but not all of the valid anchors or triplets are active. */
static int mined_mixed(const mined_fd *f)
{
    loss_triplet_mined_out o = {0};

    cr_assert_eq(loss_triplet_mined(&f->a, &o, NULL), LOSS_OK);
    return o.active_fraction > 0.0 && o.active_fraction < 1.0;
}

static void mined_fd_run(loss_mining m, loss_distance k, loss_reduction r)
{
    mined_fd f = {0};
    double g[MN * MD];
    loss_triplet_mined_out o = {0};
    uint64_t seed = 0x2545f4914f6cdd1dULL + (uint64_t)(m * 4 + k * 2) + r;

    f.a.n = MN, f.a.d = MD, f.a.embeddings = f.e, f.a.labels = MINED_LABELS;
    f.a.margin = k == LOSS_DIST_EUCLIDEAN ? 0.8 : 1.5;
    f.a.distance = k, f.a.mining = m, f.a.reduction = r, f.a.work = f.work;
    do
        test_rand_fill(&seed, f.e, MN * MD, -1.0, 1.0);
    while (mined_gap(&f) < GAP || !mined_mixed(&f));
    o.grad_embeddings = g;
    cr_assert_eq(loss_triplet_mined(&f.a, &o, NULL), LOSS_OK);
    cr_assert_eq(o.valid, m == LOSS_MINING_BATCH_HARD ? 7.0 : 54.0);
    cr_assert(o.active_fraction > 0.0 && o.active_fraction < 1.0,
              "want active and inactive terms, got %g", o.active_fraction);
    cr_assert(any_nonzero(g, MN * MD));
    fd_check(mined_eval, &f, f.e, g, MN * MD, FD_H, FD_RTOL, "embeddings");
}

Test(triplet_fd, mined_hard_euclidean_mean)
{
    mined_fd_run(LOSS_MINING_BATCH_HARD, LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_MEAN);
}
Test(triplet_fd, mined_hard_euclidean_sum)
{
    mined_fd_run(LOSS_MINING_BATCH_HARD, LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_SUM);
}
Test(triplet_fd, mined_hard_squared_mean)
{
    mined_fd_run(LOSS_MINING_BATCH_HARD, LOSS_DIST_SQUARED_EUCLIDEAN,
                 LOSS_REDUCE_MEAN);
}
Test(triplet_fd, mined_hard_squared_sum)
{
    mined_fd_run(LOSS_MINING_BATCH_HARD, LOSS_DIST_SQUARED_EUCLIDEAN,
                 LOSS_REDUCE_SUM);
}
Test(triplet_fd, mined_all_euclidean_mean)
{
    mined_fd_run(LOSS_MINING_BATCH_ALL, LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_MEAN);
}
Test(triplet_fd, mined_all_euclidean_sum)
{
    mined_fd_run(LOSS_MINING_BATCH_ALL, LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_SUM);
}
Test(triplet_fd, mined_all_squared_mean)
{
    mined_fd_run(LOSS_MINING_BATCH_ALL, LOSS_DIST_SQUARED_EUCLIDEAN,
                 LOSS_REDUCE_MEAN);
}
Test(triplet_fd, mined_all_squared_sum)
{
    mined_fd_run(LOSS_MINING_BATCH_ALL, LOSS_DIST_SQUARED_EUCLIDEAN,
                 LOSS_REDUCE_SUM);
}

/* ---- quadruplet --------------------------------------------------------- */

typedef struct quad_fd {
    loss_quadruplet_args a;
    double x[4][24];
} quad_fd;

static double quad_eval(void *ctx)
{
    quad_fd *f = ctx;
    loss_quadruplet_out o = {0};

    cr_assert_eq(loss_quadruplet(&f->a, &o, NULL), LOSS_OK);
    return o.loss;
}

static double quad_gap(const quad_fd *f, size_t *active)
{
    const loss_quadruplet_args *a = &f->a;
    double gap = INFINITY;
    size_t i, d = a->d;

    *active = 0;
    for (i = 0; i < a->n; i++) {
        const double *x = f->x[0] + i * d, *p = f->x[1] + i * d;
        const double *n1 = f->x[2] + i * d, *n2 = f->x[3] + i * d;
        double dap = tdist(x, p, d, a->distance);
        double dan = tdist(x, n1, d, a->distance);
        double dnn = tdist(n1, n2, d, a->distance);
        double z1 = dap - dan + a->margin, z2 = dap - dnn + a->margin2;
        gap = fmin(gap, kink_gap(z1, fmin(dap, dan)));
        gap = fmin(gap, kink_gap(z2, dnn));
        *active += (size_t)(z1 > 0) + (size_t)(z2 > 0);
    }
    return gap;
}

static void quad_fd_run(loss_distance k, loss_reduction r)
{
    quad_fd f = {0};
    double g[4][24];
    loss_quadruplet_out o = {0};
    uint64_t seed = 0x853c49e6748fea9bULL + (uint64_t)k * 2 + r;
    size_t j, len, active;

    f.a.n = 8, f.a.d = 3, f.a.margin = 0.6, f.a.margin2 = 0.3;
    f.a.distance = k, f.a.reduction = r;
    f.a.anchor = f.x[0], f.a.positive = f.x[1];
    f.a.negative = f.x[2], f.a.negative2 = f.x[3];
    len = f.a.n * f.a.d;
    do
        for (j = 0; j < 4; j++)
            test_rand_fill(&seed, f.x[j], len, -1.0, 1.0);
    while (quad_gap(&f, &active) < GAP || active == 0 || active == 2 * f.a.n);
    o.grad_anchor = g[0], o.grad_positive = g[1];
    o.grad_negative = g[2], o.grad_negative2 = g[3];
    cr_assert_eq(loss_quadruplet(&f.a, &o, NULL), LOSS_OK);
    for (j = 0; j < 4; j++) {
        cr_assert(any_nonzero(g[j], len), "%s gradient is 0", QUAD_FIELDS[j]);
        fd_check(quad_eval, &f, f.x[j], g[j], len, FD_H, FD_RTOL,
                 QUAD_FIELDS[j]);
    }
}

Test(triplet_fd, quadruplet_euclidean_mean)
{
    quad_fd_run(LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_MEAN);
}
Test(triplet_fd, quadruplet_euclidean_sum)
{
    quad_fd_run(LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_SUM);
}
Test(triplet_fd, quadruplet_squared_mean)
{
    quad_fd_run(LOSS_DIST_SQUARED_EUCLIDEAN, LOSS_REDUCE_MEAN);
}
Test(triplet_fd, quadruplet_squared_sum)
{
    quad_fd_run(LOSS_DIST_SQUARED_EUCLIDEAN, LOSS_REDUCE_SUM);
}

/* ---- msml --------------------------------------------------------------- */

static const int64_t MSML_LABELS[MN] = {3, 1, 3, 2, 1, 2, 3, 7};

typedef struct msml_fd {
    loss_msml_args a;
    double e[MN * MD];
} msml_fd;

static double msml_eval(void *ctx)
{
    msml_fd *f = ctx;
    loss_msml_out o = {0};

    cr_assert_eq(loss_msml(&f->a, &o, NULL), LOSS_OK);
    return o.loss;
}

/* Gaps of the hardest positive and negative pairs from the runners-up, of
 * the hinge from its kink and of the two distances from 0. */
static double msml_gap(const msml_fd *f, double *z)
{
    double p1 = -1, p2 = -1, q1 = INFINITY, q2 = INFINITY;
    size_t i, j;

    for (i = 0; i < MN; i++)
        for (j = i + 1; j < MN; j++) {
            double v = tdist(f->e + i * MD, f->e + j * MD, MD, f->a.distance);
            if (MSML_LABELS[i] == MSML_LABELS[j]) {
                p2 = v > p1 ? p1 : fmax(p2, v);
                p1 = fmax(p1, v);
            } else {
                q2 = v < q1 ? q1 : fmin(q2, v);
                q1 = fmin(q1, v);
            }
        }
    *z = p1 - q1 + f->a.margin;
    return fmin(fmin(p1 - p2, q2 - q1), kink_gap(*z, q1));
}

static void msml_fd_run(loss_distance k, loss_reduction r)
{
    msml_fd f = {0};
    double g[MN * MD], z;
    loss_msml_out o = {0};
    uint64_t seed = 0xda3e39cb94b95bdbULL + (uint64_t)k * 2 + r;

    f.a.n = MN, f.a.d = MD, f.a.embeddings = f.e, f.a.labels = MSML_LABELS;
    f.a.margin = 0.5, f.a.distance = k, f.a.reduction = r;
    do
        test_rand_fill(&seed, f.e, MN * MD, -1.0, 1.0);
    while (msml_gap(&f, &z) < GAP || z <= 0.0);
    o.grad_embeddings = g;
    cr_assert_eq(loss_msml(&f.a, &o, NULL), LOSS_OK);
    cr_assert_float_eq(o.loss, z, 1e-12);
    cr_assert(any_nonzero(g, MN * MD));
    fd_check(msml_eval, &f, f.e, g, MN * MD, FD_H, FD_RTOL, "embeddings");
}

Test(triplet_fd, msml_euclidean)
{
    msml_fd_run(LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_MEAN);
}
Test(triplet_fd, msml_squared_sum)
{
    msml_fd_run(LOSS_DIST_SQUARED_EUCLIDEAN, LOSS_REDUCE_SUM);
}

/* ---- Edge cases --------------------------------------------------------- */

#define EXPECT_NEAR(got, want)                                                 \
    cr_expect(fabs((got) - (want)) <= 1e-12 * fmax(1.0, fabs(want)),           \
              "%s = %.17g, want %.17g", #got, (double)(got), (double)(want))

static void expect_all(const double *got, const double *want, size_t len,
                       const char *what)
{
    size_t i;

    for (i = 0; i < len; i++)
        cr_expect(fabs(got[i] - want[i]) <= 1e-12 * fmax(1.0, fabs(want[i])),
                  "%s[%zu] = %.17g, want %.17g", what, i, got[i], want[i]);
}

static loss_triplet_mined_args mined_args(size_t n, size_t d, const double *e,
                                          const int64_t *y, double margin,
                                          loss_distance k, loss_mining m,
                                          loss_reduction r, double *work)
{
    loss_triplet_mined_args a = {0};

    a.n = n, a.d = d, a.embeddings = e, a.labels = y, a.margin = margin;
    a.distance = k, a.mining = m, a.reduction = r, a.work = work;
    return a;
}

Test(triplet_edge, triplet_n1_by_hand)
{
    /* d(a,p) = 5, d(a,n) = 1: loss 5 - 1 + 1 = 5. */
    double x[2] = {0, 0}, p[2] = {3, 4}, n[2] = {0, 1};
    double ga[2], gp[2], gn[2], ps[1];
    loss_triplet_args a = {
        1, 2, x, p, n, 1.0, LOSS_DIST_EUCLIDEAN, 0, LOSS_REDUCE_MEAN, NULL};
    loss_triplet_out o = {0, ps, ga, gp, gn, 0, 0};

    cr_assert_eq(loss_triplet(&a, &o, NULL), LOSS_OK);
    EXPECT_NEAR(o.loss, 5.0);
    EXPECT_NEAR(ps[0], 5.0);
    expect_all(ga, (double[]){-0.6, 0.2}, 2, "anchor");
    expect_all(gp, (double[]){0.6, 0.8}, 2, "positive");
    expect_all(gn, (double[]){0.0, -1.0}, 2, "negative");
    EXPECT_NEAR(o.valid, 1.0);
    EXPECT_NEAR(o.active_fraction, 1.0);
    /* squared: 25 - 1 + 1 = 25, gradients 2(u - v). */
    a.distance = LOSS_DIST_SQUARED_EUCLIDEAN;
    cr_assert_eq(loss_triplet(&a, &o, NULL), LOSS_OK);
    EXPECT_NEAR(o.loss, 25.0);
    expect_all(ga, (double[]){-6.0, -6.0}, 2, "anchor");
    expect_all(gn, (double[]){0.0, -2.0}, 2, "negative");
}

Test(triplet_edge, triplet_swap_by_hand)
{
    /* d(a,n) = 4 > d(p,n) = 1: swap uses the positive as the far end. */
    double x[2] = {0, 0}, p[2] = {3, 0}, n[2] = {4, 0};
    double ga[2], gp[2], gn[2];
    loss_triplet_args a = {
        1, 2, x, p, n, 1.0, LOSS_DIST_EUCLIDEAN, 1, LOSS_REDUCE_SUM, NULL};
    loss_triplet_out o = {0, NULL, ga, gp, gn, 0, 0};

    cr_assert_eq(loss_triplet(&a, &o, NULL), LOSS_OK);
    EXPECT_NEAR(o.loss, 3.0); /* 3 - 1 + 1 */
    expect_all(ga, (double[]){-1.0, 0.0}, 2, "anchor");
    expect_all(gp, (double[]){1.0 + 1.0, 0.0}, 2, "positive");
    expect_all(gn, (double[]){-1.0, 0.0}, 2, "negative");
    a.swap = 0; /* 3 - 4 + 1 = 0 exactly: the kink, gradient 0 */
    cr_assert_eq(loss_triplet(&a, &o, NULL), LOSS_OK);
    EXPECT_NEAR(o.loss, 0.0);
    EXPECT_NEAR(o.active_fraction, 0.0);
    expect_all(ga, (double[]){0.0, 0.0}, 2, "anchor");
    expect_all(gn, (double[]){0.0, 0.0}, 2, "negative");
}

Test(triplet_edge, outputs_are_overwritten_and_optional)
{
    double x[4] = {0, 0, 1, 1}, p[4] = {1, 0, 1, 2}, n[4] = {0, 2, 3, 1};
    double g[3][4], ps[2], again;
    loss_triplet_args a = {
        2, 2, x, p, n, 1.0, LOSS_DIST_EUCLIDEAN, 0, LOSS_REDUCE_MEAN, NULL};
    loss_triplet_out o = {0, ps, g[0], g[1], g[2], 0, 0}, bare = {0};
    size_t i;

    for (i = 0; i < 4; i++)
        g[0][i] = g[1][i] = g[2][i] = 123.0;
    cr_assert_eq(loss_triplet(&a, &o, NULL), LOSS_OK);
    /* sample 0: 1 - 2 + 1 = 0 (kink); sample 1: 1 - 2 + 1 = 0 too. */
    EXPECT_NEAR(o.loss, 0.0);
    expect_all(g[0], (double[]){0, 0, 0, 0}, 4, "anchor");
    a.margin = 1.5;
    cr_assert_eq(loss_triplet(&a, &o, NULL), LOSS_OK);
    cr_assert_eq(loss_triplet(&a, &bare, NULL), LOSS_OK);
    again = bare.loss;
    EXPECT_NEAR(again, o.loss);
    EXPECT_NEAR(o.loss, 0.5);
    EXPECT_NEAR(bare.active_fraction, 1.0);
}

Test(triplet_edge, zero_distances_have_zero_gradient)
{
    double e[6] = {0.5, -1, 0.5, -1, 0.5, -1}, g[6], w[9 + 14], ps[3];
    int64_t y[3] = {1, 1, 2};
    loss_triplet_mined_args m =
        mined_args(3, 2, e, y, 1.0, LOSS_DIST_EUCLIDEAN, LOSS_MINING_BATCH_HARD,
                   LOSS_REDUCE_MEAN, w);
    loss_triplet_mined_out mo = {0, ps, g, 0, 0};
    loss_msml_args s = {
        3, 2, e, y, 1.0, LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_MEAN, NULL, NULL};
    loss_msml_out so = {0, g};
    size_t i;

    for (m.mining = LOSS_MINING_BATCH_HARD; (int)m.mining < 2;
         m.mining = (loss_mining)(m.mining + 1)) {
        cr_assert_eq(loss_triplet_mined(&m, &mo, NULL), LOSS_OK);
        EXPECT_NEAR(mo.loss, 1.0); /* 0 - 0 + margin for each */
        EXPECT_NEAR(mo.valid, 2.0);
        EXPECT_NEAR(mo.active_fraction, 1.0);
        for (i = 0; i < 6; i++)
            cr_expect_eq(g[i], 0.0, "grad[%zu] = %g", i, g[i]);
    }
    cr_assert_eq(loss_msml(&s, &so, NULL), LOSS_OK);
    EXPECT_NEAR(so.loss, 1.0);
    for (i = 0; i < 6; i++)
        cr_expect_eq(g[i], 0.0, "msml grad[%zu] = %g", i, g[i]);
}

Test(triplet_edge, batch_hard_ties_go_to_lowest_index)
{
    /* Squared distances; anchor 0's positives 1 and 2 tie at 1, so 1 wins.
     * Anchors: 0 -> (1, 3): 1 - 9 + 10 = 2; 1 -> (2, 3): 4 - 10 + 10 = 4;
     * 2 -> (1, 3): 4; 3 has no positive. */
    double e[8] = {0, 0, 1, 0, -1, 0, 0, 3}, g[8], w[16], ps[4];
    int64_t y[4] = {0, 0, 0, 1};
    loss_triplet_mined_args a =
        mined_args(4, 2, e, y, 10.0, LOSS_DIST_SQUARED_EUCLIDEAN,
                   LOSS_MINING_BATCH_HARD, LOSS_REDUCE_SUM, w);
    loss_triplet_mined_out o = {0, ps, g, 0, 0};

    cr_assert_eq(loss_triplet_mined(&a, &o, NULL), LOSS_OK);
    EXPECT_NEAR(o.loss, 10.0);
    expect_all(ps, (double[]){2, 4, 4, 0}, 4, "per_sample");
    expect_all(g + 2, (double[]){8, 6}, 2, "grad e1");
    expect_all(g + 4, (double[]){-6, 6}, 2, "grad e2");
    EXPECT_NEAR(o.valid, 3.0);
}

Test(triplet_edge, msml_ties_and_shared_embedding)
{
    /* Positive pairs (0,1) and (0,3) tie at distance 2 (e3 duplicates e1,
     * so (1,3) is 0); negative pairs (0,2), (1,2) and (2,3) tie at 1.
     * (0,1) and (0,2) win, and share e0. */
    double e[8] = {0, 0, 2, 0, 1, 0, 2, 0}, g[8];
    int64_t y[4] = {5, 5, 6, 5};
    loss_msml_args a = {
        4, 2, e, y, 0.5, LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_SUM, NULL, NULL};
    loss_msml_out o = {0, g};

    cr_assert_eq(loss_msml(&a, &o, NULL), LOSS_OK);
    EXPECT_NEAR(o.loss, 2.0 - 1.0 + 0.5);
    /* +d(0,1) on e0, e1; -d(0,2) on e0, e2. */
    expect_all(g, (double[]){-1 + 1, 0, 1, 0, -1, 0, 0, 0}, 8, "grad");
}

Test(triplet_edge, nothing_valid_is_zero)
{
    double e[6] = {1, 2, 3, 4, 5, 6}, g[6] = {9, 9, 9, 9, 9, 9}, w[9 + 14];
    double ps[3];
    int64_t distinct[3] = {INT64_MIN, 0, INT64_MAX}, same[3] = {-7, -7, -7};
    loss_triplet_mined_args a =
        mined_args(3, 2, e, distinct, 1.0, LOSS_DIST_EUCLIDEAN,
                   LOSS_MINING_BATCH_ALL, LOSS_REDUCE_MEAN, w);
    loss_triplet_mined_out o = {0, ps, g, 0, 0};
    loss_msml_args s = {
        3, 2, e, same, 1.0, LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_MEAN, NULL, NULL};
    loss_msml_out so = {5, g};
    size_t i;

    cr_assert_eq(loss_triplet_mined(&a, &o, NULL), LOSS_OK);
    EXPECT_NEAR(o.loss, 0.0);
    EXPECT_NEAR(o.valid, 0.0);
    cr_expect(isnan(o.active_fraction));
    for (i = 0; i < 6; i++)
        cr_expect_eq(g[i], 0.0);
    a.labels = same;
    a.mining = LOSS_MINING_BATCH_HARD;
    cr_assert_eq(loss_triplet_mined(&a, &o, NULL), LOSS_OK);
    EXPECT_NEAR(o.loss, 0.0);
    cr_expect(isnan(o.active_fraction));
    cr_assert_eq(loss_msml(&s, &so, NULL), LOSS_OK);
    EXPECT_NEAR(so.loss, 0.0);
    s.labels = distinct;
    s.n = 1;
    cr_assert_eq(loss_msml(&s, &so, NULL), LOSS_OK);
    EXPECT_NEAR(so.loss, 0.0);
}

Test(triplet_edge, msml_reduction_has_no_effect)
{
    double e[8] = {0, 0, 1, 0, 0.2, 0, 0.5, 0.5}, sum;
    int64_t y[4] = {1, 1, 2, 2};
    loss_msml_args a = {
        4, 2, e, y, 1.0, LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_SUM, NULL, NULL};
    loss_msml_out o = {0, NULL};

    cr_assert_eq(loss_msml(&a, &o, NULL), LOSS_OK);
    sum = o.loss;
    a.reduction = LOSS_REDUCE_MEAN;
    cr_assert_eq(loss_msml(&a, &o, NULL), LOSS_OK);
    cr_expect_eq(o.loss, sum);
    EXPECT_NEAR(sum, 1.0 - 0.2 + 1.0);
}

Test(triplet_edge, extreme_coordinates_stay_finite)
{
    double x[2] = {1e300, -1e300}, p[2] = {1.5e300, -1e300};
    double n[2] = {1e300, 1e300}, ga[2], gp[2], gn[2];
    loss_triplet_args a = {
        1, 2, x, p, n, 0.0, LOSS_DIST_EUCLIDEAN, 0, LOSS_REDUCE_SUM, NULL};
    loss_triplet_out o = {0, NULL, ga, gp, gn, 0, 0};

    /* d(a,p) = 5e299, d(a,n) = 2e300: inactive, so move n closer. */
    n[1] = -0.9e300; /* d(a,n) = 1e299 */
    cr_assert_eq(loss_triplet(&a, &o, NULL), LOSS_OK);
    cr_expect(fabs(o.loss - 4e299) <= 1e-12 * 4e299, "loss %g", o.loss);
    expect_all(ga, (double[]){-1.0, 1.0}, 2, "anchor");
    x[0] = 1e-300, x[1] = 0, p[0] = 4e-300, p[1] = 4e-300;
    n[0] = 1e-300, n[1] = 1e-300; /* d(a,p) = 5e-300, d(a,n) = 1e-300 */
    cr_assert_eq(loss_triplet(&a, &o, NULL), LOSS_OK);
    cr_expect(fabs(o.loss - 4e-300) <= 1e-12 * 4e-300, "loss %g", o.loss);
    expect_all(ga, (double[]){-0.6, -0.8 + 1.0}, 2, "anchor");
}

Test(triplet_edge, mined_work_size)
{
    loss_triplet_mined_args a = {0};

    cr_expect_eq(loss_triplet_mined_work(&a), 0);
    a.n = 7;
    cr_expect_eq(loss_triplet_mined_work(&a), 49);
    a.n = 2048; /* the whole matrix up to 2048 embeddings (32 MiB) */
    cr_expect_eq(loss_triplet_mined_work(&a), 2048 * 2048);
    a.n = 2049; /* then one row */
    cr_expect_eq(loss_triplet_mined_work(&a), 2049);
    a.n = (size_t)1 << 31;
    cr_expect_eq(loss_triplet_mined_work(&a), (size_t)1 << 31);
    a.n = SIZE_MAX;
    cr_expect_eq(loss_triplet_mined_work(&a), SIZE_MAX);
    a.mining = LOSS_MINING_BATCH_ALL; /* and the sorted row: 4n + 2 more */
    a.n = 7;
    cr_expect_eq(loss_triplet_mined_work(&a), 49 + 30);
    a.n = 2049;
    cr_expect_eq(loss_triplet_mined_work(&a), 5 * 2049 + 2);
    a.n = (SIZE_MAX - 2) / 5;
    cr_expect_eq(loss_triplet_mined_work(&a), 5 * ((SIZE_MAX - 2) / 5) + 2);
    a.n++;
    cr_expect_eq(loss_triplet_mined_work(&a), SIZE_MAX);
}

/* Mining m over n embeddings of 3 labels in a deterministic cloud, with
 * one more far away under a label of its own when far is set; returns the
 * gradient (n or n + 1 rows), *o holding the rest.  batch_hard takes the
 * mean, batch_all the sum (the far point adds valid triplets, so it would
 * change batch_all's mean). */
static double *mined_cloud(size_t n, int far, loss_mining mining,
                           loss_triplet_mined_out *o)
{
    const size_t d = 4, m = n + (far != 0);
    loss_triplet_mined_args a = {0};
    double *e = zeros(m * d), *g = zeros(m * d);
    int64_t *y = calloc(m, sizeof *y);
    loss_error err;
    size_t i;

    cr_assert(y != NULL);
    for (i = 0; i < n * d; i++)
        e[i] = sin(0.37 * (double)i) + 0.01 * cos(1.3 * (double)(i * i % 97));
    for (i = 0; i < n; i++)
        y[i] = (int64_t)(i % 3);
    if (far) {
        for (i = 0; i < d; i++)
            e[n * d + i] = 1e6;
        y[n] = 7;
    }
    a.n = m, a.d = d, a.embeddings = e, a.labels = y, a.margin = 0.5;
    a.distance = LOSS_DIST_EUCLIDEAN, a.mining = mining;
    a.reduction =
        mining == LOSS_MINING_BATCH_ALL ? LOSS_REDUCE_SUM : LOSS_REDUCE_MEAN;
    a.work = zeros(loss_triplet_mined_work(&a));
    o->per_sample = zeros(m), o->grad_embeddings = g;
    cr_assert_eq(loss_triplet_mined(&a, o, &err), LOSS_OK, "%s", err.message);
    free(e), free(y), free(a.work);
    return g;
}

/* Above 2048 embeddings the distances come one row at a time: a point too
 * far to matter, added to 2048 (the whole matrix), must leave every bit of
 * the others' results as they were. */
static void rows_match_matrix(loss_mining mining)
{
    loss_triplet_mined_out whole = {0}, rows = {0};
    double *gw = mined_cloud(2048, 0, mining, &whole),
           *gr = mined_cloud(2048, 1, mining, &rows);
    size_t i;

    cr_expect_eq(memcmp(&whole.loss, &rows.loss, sizeof whole.loss), 0,
                 "loss %.17g, by rows %.17g", whole.loss, rows.loss);
    if (mining == LOSS_MINING_BATCH_HARD) {
        cr_expect_eq(whole.valid, rows.valid);
        cr_expect_eq(whole.active_fraction, rows.active_fraction);
    } else {
        /* Each anchor's positives gain the far negative: labels 0 and 1
         * have 683 embeddings, label 2 has 682. */
        cr_expect_eq(rows.valid - whole.valid, 2.0 * 683 * 682 + 682.0 * 681,
                     "valid %.17g, by rows %.17g", whole.valid, rows.valid);
        cr_expect_eq(whole.active_fraction * whole.valid,
                     rows.active_fraction * rows.valid);
    }
    cr_expect(whole.valid > 2000.0 && whole.active_fraction > 0.0);
    cr_expect_eq(
        memcmp(whole.per_sample, rows.per_sample, 2048 * sizeof(double)), 0);
    cr_expect_eq(rows.per_sample[2048], 0.0);
    cr_expect_eq(memcmp(gw, gr, 2048 * 4 * sizeof(double)), 0);
    for (i = 2048 * 4; i < 2049 * 4; i++)
        cr_expect_eq(gr[i], 0.0, "far point's gradient %g", gr[i]);
    free(gw), free(gr), free(whole.per_sample), free(rows.per_sample);
}

Test(triplet_edge, mined_rows_match_matrix)
{
    rows_match_matrix(LOSS_MINING_BATCH_HARD);
}

Test(triplet_edge, mined_all_rows_match_matrix)
{
    rows_match_matrix(LOSS_MINING_BATCH_ALL);
}

/* batch_all by its definition, every (i, p, n) visited: per_sample, the
 * gradient and the counts, for squared distances (exact on integers). */
static void all_by_definition(const double *e, const int64_t *y, size_t n,
                              size_t d, double margin, double *ps, double *g,
                              double *valid, double *active)
{
    size_t i, p, q, k;
    double dp, dq, z, c;

    *valid = *active = 0.0;
    memset(g, 0, n * d * sizeof *g);
    for (i = 0; i < n; i++) {
        ps[i] = 0.0;
        for (p = 0; p < n; p++) {
            if (p == i || y[p] != y[i])
                continue;
            for (q = 0; q < n; q++) {
                if (y[q] == y[i])
                    continue;
                dp = dq = 0.0;
                for (k = 0; k < d; k++) {
                    dp += (e[i * d + k] - e[p * d + k]) *
                          (e[i * d + k] - e[p * d + k]);
                    dq += (e[i * d + k] - e[q * d + k]) *
                          (e[i * d + k] - e[q * d + k]);
                }
                *valid += 1.0;
                z = dp - dq + margin;
                if (z <= 0.0)
                    continue;
                *active += 1.0;
                ps[i] += z;
                for (k = 0; k < d; k++) {
                    c = 2.0 * (e[i * d + k] - e[p * d + k]);
                    g[i * d + k] += c, g[p * d + k] -= c;
                    c = 2.0 * (e[i * d + k] - e[q * d + k]);
                    g[i * d + k] -= c, g[q * d + k] += c;
                }
            }
        }
    }
}

/* Small integer coordinates and margins make many hinges exactly 0 (not
 * active) and many distances equal, where counting by bisection in sorted
 * distances must agree with visiting every triplet. */
Test(triplet_edge, batch_all_matches_every_triplet)
{
    enum { N = 48, D = 2 };
    double e[N * D], g[N * D], ps[N], rg[N * D], rps[N], valid, active;
    double work[N * N + 4 * N + 2];
    int64_t y[N];
    uint64_t s = 0xa11u;
    loss_triplet_mined_out o = {0, ps, g, 0, 0};
    loss_triplet_mined_args a;
    size_t i, round;

    for (round = 0; round < 6; round++) {
        for (i = 0; i < N * D; i++)
            e[i] = (double)(rng_next(&s) % 5);
        for (i = 0; i < N; i++)
            y[i] = (int64_t)(rng_next(&s) % (2 + round));
        a = mined_args(N, D, e, y, (double)(round % 3),
                       LOSS_DIST_SQUARED_EUCLIDEAN, LOSS_MINING_BATCH_ALL,
                       LOSS_REDUCE_SUM, work);
        cr_assert_eq(loss_triplet_mined(&a, &o, NULL), LOSS_OK);
        all_by_definition(e, y, N, D, a.margin, rps, rg, &valid, &active);
        cr_expect_eq(o.valid, valid, "round %zu", round);
        cr_expect_eq(o.active_fraction, active / valid, "round %zu", round);
        for (i = 0; i < N; i++)
            cr_expect_eq(ps[i], rps[i], "round %zu: per_sample[%zu]", round, i);
        for (i = 0; i < N * D; i++)
            cr_expect_eq(g[i], rg[i], "round %zu: grad[%zu]", round, i);
    }
}

/* Anchor 0 at 0, its positive at 1e8, 1000 negatives at -(1e8 + k 2^-20):
 * every triplet's hinge is 1 - k 2^-20, exactly, and so is their sum,
 * 1000 - 499500 2^-20.  The distances add up to 1e11, whose ulp is 2^-37
 * of a unit: without the low parts kept, the sum would be off by far more
 * than its own ulp. */
Test(triplet_edge, batch_all_sums_exactly)
{
    enum { N = 1002 };
    double *e = zeros(N), *work, ps[N];
    int64_t y[N] = {0, 0};
    loss_triplet_mined_out o = {0, ps, NULL, 0, 0};
    loss_triplet_mined_args a;
    size_t k;

    e[1] = 1e8;
    for (k = 0; k < 1000; k++)
        e[2 + k] = -(1e8 + ldexp((double)k, -20)), y[2 + k] = 1;
    a = mined_args(N, 1, e, y, 1.0, LOSS_DIST_EUCLIDEAN, LOSS_MINING_BATCH_ALL,
                   LOSS_REDUCE_SUM, NULL);
    a.work = work = zeros(loss_triplet_mined_work(&a));
    cr_assert_eq(loss_triplet_mined(&a, &o, NULL), LOSS_OK);
    cr_expect_eq(ps[0], 1000.0 - ldexp(499500.0, -20), "per_sample %.17g",
                 ps[0]);
    free(e), free(work);
}

/* ---- Errors ------------------------------------------------------------- */

static void expect_err(int rc, const loss_error *e, loss_status st,
                       const char *field, size_t depth, size_t i0, size_t i1)
{
    cr_assert_eq(rc, st, "status %d, want %d (%s)", rc, st, e->message);
    cr_assert_eq(e->status, st);
    if (field)
        cr_expect_str_eq(e->field, field);
    else
        cr_expect_null(e->field);
    cr_expect_eq(e->depth, depth, "%s: depth %zu", e->message, e->depth);
    if (depth > 0)
        cr_expect_eq(e->index[0], i0, "%s", e->message);
    if (depth > 1)
        cr_expect_eq(e->index[1], i1, "%s", e->message);
    cr_expect(strlen(e->message) > 10 && e->message[0] != '\0');
}

Test(triplet_errors, triplet)
{
    double x[6] = {0}, p[6] = {0}, n[6] = {0};
    loss_triplet_args
        a = {2,   3, x, p, n, 1.0, LOSS_DIST_EUCLIDEAN, 0, LOSS_REDUCE_MEAN,
             NULL},
        b;
    loss_triplet_out o = {0};
    loss_error e;

    b = a, b.n = 0, b.margin = NAN; /* the empty batch is reported first */
    expect_err(loss_triplet(&b, &o, &e), &e, LOSS_E_EMPTY, "anchor", 0, 0, 0);
    b = a, b.margin = -0.1;
    expect_err(loss_triplet(&b, &o, &e), &e, LOSS_E_PARAM, "margin", 0, 0, 0);
    b.margin = NAN;
    expect_err(loss_triplet(&b, &o, &e), &e, LOSS_E_PARAM, "margin", 0, 0, 0);
    b.margin = INFINITY;
    expect_err(loss_triplet(&b, &o, &e), &e, LOSS_E_PARAM, "margin", 0, 0, 0);
    b = a, b.distance = (loss_distance)2;
    expect_err(loss_triplet(&b, &o, &e), &e, LOSS_E_PARAM, "distance", 0, 0, 0);
    b = a, b.reduction = (loss_reduction)5;
    expect_err(loss_triplet(&b, &o, &e), &e, LOSS_E_PARAM, "reduction", 0, 0,
               0);
    b = a, b.swap = 2;
    expect_err(loss_triplet(&b, &o, &e), &e, LOSS_E_PARAM, "swap", 0, 0, 0);
    x[5] = NAN;
    expect_err(loss_triplet(&a, &o, &e), &e, LOSS_E_NONFINITE, "anchor", 2, 1,
               2);
    x[5] = 0, p[1] = INFINITY;
    expect_err(loss_triplet(&a, &o, &e), &e, LOSS_E_NONFINITE, "positive", 2, 0,
               1);
    p[1] = 0, n[3] = -INFINITY;
    expect_err(loss_triplet(&a, &o, &e), &e, LOSS_E_NONFINITE, "negative", 2, 1,
               0);
    n[3] = 0;
    a.margin = 0.0; /* margin 0 is allowed */
    cr_expect_eq(loss_triplet(&a, &o, &e), LOSS_OK);
}

Test(triplet_errors, mined)
{
    double x[6] = {0}, w[9];
    int64_t y[3] = {0, 1, 0};
    loss_triplet_mined_args a = mined_args(3, 2, x, y, 1.0, LOSS_DIST_EUCLIDEAN,
                                           LOSS_MINING_BATCH_HARD,
                                           LOSS_REDUCE_MEAN, w),
                            b;
    loss_triplet_mined_out o = {0};
    loss_error e;

    b = a, b.n = 0;
    expect_err(loss_triplet_mined(&b, &o, &e), &e, LOSS_E_EMPTY, "embeddings",
               0, 0, 0);
    b = a, b.margin = -1;
    expect_err(loss_triplet_mined(&b, &o, &e), &e, LOSS_E_PARAM, "margin", 0, 0,
               0);
    b = a, b.mining = (loss_mining)7;
    expect_err(loss_triplet_mined(&b, &o, &e), &e, LOSS_E_PARAM, "mining", 0, 0,
               0);
    b = a, b.distance = (loss_distance)-1;
    expect_err(loss_triplet_mined(&b, &o, &e), &e, LOSS_E_PARAM, "distance", 0,
               0, 0);
    b = a, b.reduction = (loss_reduction)2;
    expect_err(loss_triplet_mined(&b, &o, &e), &e, LOSS_E_PARAM, "reduction", 0,
               0, 0);
    b = a, b.work = NULL;
    expect_err(loss_triplet_mined(&b, &o, &e), &e, LOSS_E_NOMEM, NULL, 0, 0, 0);
    x[4] = NAN;
    expect_err(loss_triplet_mined(&a, &o, &e), &e, LOSS_E_NONFINITE,
               "embeddings", 2, 2, 0);
}

static loss_quadruplet_args quad_args(double x[4][4])
{
    loss_quadruplet_args a = {0};

    a.n = 2, a.d = 2, a.margin = 1.0, a.margin2 = 0.5;
    a.anchor = x[0], a.positive = x[1], a.negative = x[2], a.negative2 = x[3];
    a.distance = LOSS_DIST_SQUARED_EUCLIDEAN;
    a.reduction = LOSS_REDUCE_MEAN;
    return a;
}

Test(triplet_errors, quadruplet_parameters)
{
    double x[4][4] = {{0}};
    loss_quadruplet_args a = quad_args(x), b;
    loss_quadruplet_out o = {0};
    loss_error e;

    b = a, b.n = 0;
    expect_err(loss_quadruplet(&b, &o, &e), &e, LOSS_E_EMPTY, "anchor", 0, 0,
               0);
    b = a, b.margin = -1e-9;
    expect_err(loss_quadruplet(&b, &o, &e), &e, LOSS_E_PARAM, "margin", 0, 0,
               0);
    b = a, b.margin2 = NAN;
    expect_err(loss_quadruplet(&b, &o, &e), &e, LOSS_E_PARAM, "margin2", 0, 0,
               0);
    b.margin2 = -1;
    expect_err(loss_quadruplet(&b, &o, &e), &e, LOSS_E_PARAM, "margin2", 0, 0,
               0);
    b = a, b.distance = (loss_distance)3;
    expect_err(loss_quadruplet(&b, &o, &e), &e, LOSS_E_PARAM, "distance", 0, 0,
               0);
    b = a, b.reduction = (loss_reduction)3;
    expect_err(loss_quadruplet(&b, &o, &e), &e, LOSS_E_PARAM, "reduction", 0, 0,
               0);
}

Test(triplet_errors, quadruplet_nonfinite)
{
    double x[4][4] = {{0}};
    loss_quadruplet_args a = quad_args(x);
    loss_quadruplet_out o = {0};
    loss_error e;
    size_t k;

    for (k = 0; k < 4; k++) {
        x[k][3] = k % 2 ? INFINITY : NAN;
        expect_err(loss_quadruplet(&a, &o, &e), &e, LOSS_E_NONFINITE,
                   QUAD_FIELDS[k], 2, 1, 1);
        x[k][3] = 0;
    }
    cr_expect_eq(loss_quadruplet(&a, &o, &e), LOSS_OK);
}

Test(triplet_errors, msml)
{
    double x[6] = {0};
    int64_t y[3] = {0, 1, 0};
    loss_msml_args
        a = {3,    2,   x, y, 1.0, LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_MEAN,
             NULL, NULL},
        b;
    loss_msml_out o = {0};
    loss_error e;

    b = a, b.n = 0;
    expect_err(loss_msml(&b, &o, &e), &e, LOSS_E_EMPTY, "embeddings", 0, 0, 0);
    b = a, b.margin = -INFINITY;
    expect_err(loss_msml(&b, &o, &e), &e, LOSS_E_PARAM, "margin", 0, 0, 0);
    b = a, b.distance = (loss_distance)9;
    expect_err(loss_msml(&b, &o, &e), &e, LOSS_E_PARAM, "distance", 0, 0, 0);
    b = a, b.reduction = (loss_reduction)9;
    expect_err(loss_msml(&b, &o, &e), &e, LOSS_E_PARAM, "reduction", 0, 0, 0);
    x[1] = INFINITY;
    expect_err(loss_msml(&a, &o, &e), &e, LOSS_E_NONFINITE, "embeddings", 2, 0,
               1);
    cr_expect_eq(loss_msml_work(&a), 0);
}
