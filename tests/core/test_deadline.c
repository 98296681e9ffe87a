/* test_deadline.c -- tests of the deadline (loss.h, loss_deadline) in every
 * loss that takes one: l_softmax, a_softmax, mined triplets (the whole
 * distance matrix and row by row), msml, and kde and knn on samples in one
 * and two dimensions.  Each case runs one loss on fixed inputs large enough
 * for several asks, and checks that
 *   - a deadline already past stops the loss at its first ask;
 *   - one that expires at the third ask stops it there, mid-computation;
 *   - one that never expires is asked along the way and changes no bit of
 *     any output against no deadline at all. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "rng.h"

/* A deadline that counts its asks and expires at ask expire_at (never
 * when 0). */
typedef struct asker {
    size_t asks, expire_at;
} asker;

static int asker_expired(void *ctx)
{
    asker *k = ctx;

    k->asks++;
    return k->expire_at != 0 && k->asks >= k->expire_at;
}

/* Every output of one run, flattened: loss, per-sample values, gradients,
 * metrics. */
typedef struct outputs {
    double v[16384];
    size_t n;
} outputs;

static void keep(outputs *r, const double *x, size_t n)
{
    cr_assert_leq(r->n + n, sizeof r->v / sizeof r->v[0]);
    memcpy(r->v + r->n, x, n * sizeof *x);
    r->n += n;
}

/* A case runs its loss with deadline d (or NULL), filling *r and *err. */
typedef int (*case_fn)(const loss_deadline *d, outputs *r, loss_error *err);

static double *normals(size_t n, uint64_t seed)
{
    double *x = malloc(n * sizeof *x);
    size_t i;

    cr_assert_not_null(x);
    for (i = 0; i < n; i++)
        x[i] = 2.0 * rng_unit(&seed) - 1.0 + rng_unit(&seed) - 0.5;
    return x;
}

static int64_t *classes(size_t n, size_t k, uint64_t seed)
{
    int64_t *y = malloc(n * sizeof *y);
    size_t i;

    cr_assert_not_null(y);
    for (i = 0; i < n; i++)
        y[i] = (int64_t)(rng_next(&seed) % k);
    return y;
}

static double *zeros(size_t n)
{
    double *x = calloc(n ? n : 1, sizeof *x);

    cr_assert_not_null(x);
    return x;
}

/* ---- The cases ------------------------------------------------------------
 */

#define MS_N 256
#define MS_D 32
#define MS_K 64

static int margin_case(const loss_deadline *dl, outputs *r, loss_error *err,
                       int angular)
{
    double *f = normals(MS_N * MS_D, 11), *w = normals(MS_K * MS_D, 12);
    int64_t *y = classes(MS_N, MS_K, 13);
    double *ps = zeros(MS_N), *gf = zeros(MS_N * MS_D),
           *gw = zeros(MS_K * MS_D);
    loss_margin_softmax_args a = {0};
    loss_margin_softmax_out o = {0, ps, gf, gw};
    int rc;

    a.n = MS_N;
    a.d = MS_D;
    a.k = MS_K;
    a.features = f;
    a.weights = w;
    a.labels = y;
    a.margin = angular ? 4 : 2;
    a.deadline = dl;
    a.work = zeros(angular ? loss_a_softmax_work(&a) : loss_l_softmax_work(&a));
    rc = angular ? loss_a_softmax(&a, &o, err) : loss_l_softmax(&a, &o, err);
    keep(r, &o.loss, 1);
    keep(r, ps, MS_N);
    keep(r, gf, MS_N * MS_D);
    keep(r, gw, MS_K * MS_D);
    free(a.work);
    free(f);
    free(w);
    free(y);
    free(ps);
    free(gf);
    free(gw);
    return rc;
}

static int l_softmax_case(const loss_deadline *d, outputs *r, loss_error *err)
{
    return margin_case(d, r, err, 0);
}

static int a_softmax_case(const loss_deadline *d, outputs *r, loss_error *err)
{
    return margin_case(d, r, err, 1);
}

static int mined_case(const loss_deadline *dl, outputs *r, loss_error *err,
                      size_t n, size_t d, loss_mining mining)
{
    double *e = normals(n * d, 21), *ps = zeros(n), *g = zeros(n * d);
    int64_t *y = classes(n, 16, 22);
    loss_triplet_mined_args a = {0};
    loss_triplet_mined_out o = {0, ps, g, 0, 0};
    int rc;

    a.n = n;
    a.d = d;
    a.embeddings = e;
    a.labels = y;
    a.margin = 1.0;
    a.mining = mining;
    a.deadline = dl;
    a.work = zeros(loss_triplet_mined_work(&a));
    rc = loss_triplet_mined(&a, &o, err);
    keep(r, &o.loss, 1);
    keep(r, &o.valid, 1);
    keep(r, &o.active_fraction, 1);
    keep(r, ps, n < 1024 ? n : 1024);
    keep(r, g, n * d < 4096 ? n * d : 4096);
    free(a.work);
    free(e);
    free(y);
    free(ps);
    free(g);
    return rc;
}

/* 512 embeddings: the whole distance matrix first. */
static int hard_case(const loss_deadline *d, outputs *r, loss_error *err)
{
    return mined_case(d, r, err, 512, 8, LOSS_MINING_BATCH_HARD);
}

static int all_case(const loss_deadline *d, outputs *r, loss_error *err)
{
    return mined_case(d, r, err, 512, 8, LOSS_MINING_BATCH_ALL);
}

/* Past 2048 embeddings: one row of distances at a time. */
static int rows_case(const loss_deadline *d, outputs *r, loss_error *err)
{
    return mined_case(d, r, err, 2100, 2, LOSS_MINING_BATCH_HARD);
}

static int msml_case(const loss_deadline *dl, outputs *r, loss_error *err)
{
    double *e = normals(512 * 8, 31), *g = zeros(512 * 8);
    int64_t *y = classes(512, 16, 32);
    loss_msml_args a = {0};
    loss_msml_out o = {0, g};
    int rc;

    a.n = 512;
    a.d = 8;
    a.embeddings = e;
    a.labels = y;
    a.margin = 1.0;
    a.deadline = dl;
    rc = loss_msml(&a, &o, err);
    keep(r, &o.loss, 1);
    keep(r, g, 512 * 8);
    free(e);
    free(y);
    free(g);
    return rc;
}

static int samples_case(const loss_deadline *dl, outputs *r, loss_error *err,
                        size_t n, size_t d, loss_samples_method m)
{
    double *p = normals(n * d, 41), *q = normals(n * d, 42);
    loss_samples_args a = {0};
    loss_samples_out o;
    int rc;

    memset(&o, 0, sizeof o);
    a.np = a.nq = n;
    a.d = d;
    a.p = p;
    a.q = q;
    a.method = m;
    a.k = 5;
    a.base = exp(1.0);
    a.deadline = dl;
    a.work = zeros(loss_samples_divergence_work(&a));
    rc = loss_samples_divergence(&a, &o, err);
    keep(r, &o.kl_pq, 1);
    keep(r, &o.kl_qp, 1);
    keep(r, &o.js, 1);
    keep(r, &o.entropy_p, 1);
    keep(r, &o.entropy_q, 1);
    free(a.work);
    free(p);
    free(q);
    return rc;
}

static int kde1_case(const loss_deadline *d, outputs *r, loss_error *err)
{
    return samples_case(d, r, err, 200, 1, LOSS_SAMPLES_KDE);
}

static int kde2_case(const loss_deadline *d, outputs *r, loss_error *err)
{
    return samples_case(d, r, err, 300, 2, LOSS_SAMPLES_KDE);
}

static int knn1_case(const loss_deadline *d, outputs *r, loss_error *err)
{
    return samples_case(d, r, err, 3000, 1, LOSS_SAMPLES_KNN);
}

static int knn2_case(const loss_deadline *d, outputs *r, loss_error *err)
{
    return samples_case(d, r, err, 1500, 2, LOSS_SAMPLES_KNN);
}

/* ---- The checks -----------------------------------------------------------
 */

static outputs ref, got;

static void check_stops_at(case_fn run, size_t expire_at)
{
    asker k = {0, expire_at};
    loss_deadline dl = {asker_expired, &k};
    loss_error err;
    int rc;

    memset(&err, 0, sizeof err);
    got.n = 0;
    rc = run(&dl, &got, &err);
    cr_assert_eq(rc, LOSS_E_STOPPED, "expiring at ask %zu: status %d",
                 expire_at, rc);
    cr_assert_eq(err.status, LOSS_E_STOPPED);
    cr_assert_null(err.field);
    cr_assert_str_eq(loss_status_code(LOSS_E_STOPPED), "compute_timeout");
    cr_assert_eq(k.asks, expire_at, "asked %zu times, expected %zu", k.asks,
                 expire_at);
}

static void check_deadline(case_fn run)
{
    asker k = {0, 0};
    loss_deadline dl = {asker_expired, &k};
    loss_error err;

    ref.n = got.n = 0;
    cr_assert_eq(run(NULL, &ref, &err), LOSS_OK, "%s", err.message);
    cr_assert_eq(run(&dl, &got, &err), LOSS_OK, "%s", err.message);
    cr_assert_eq(got.n, ref.n);
    cr_assert(memcmp(got.v, ref.v, ref.n * sizeof ref.v[0]) == 0,
              "a deadline that never expires changed an output");
    cr_assert_geq(k.asks, 3, "asked only %zu times", k.asks);
    check_stops_at(run, 1);
    check_stops_at(run, 3);
}

Test(deadline, l_softmax)
{
    check_deadline(l_softmax_case);
}

Test(deadline, a_softmax)
{
    check_deadline(a_softmax_case);
}

Test(deadline, triplet_batch_hard_matrix)
{
    check_deadline(hard_case);
}

Test(deadline, triplet_batch_all)
{
    check_deadline(all_case);
}

Test(deadline, triplet_row_by_row)
{
    check_deadline(rows_case);
}

Test(deadline, msml)
{
    check_deadline(msml_case);
}

Test(deadline, samples_kde_1d)
{
    check_deadline(kde1_case);
}

Test(deadline, samples_kde_2d)
{
    check_deadline(kde2_case);
}

Test(deadline, samples_knn_1d)
{
    check_deadline(knn1_case);
}

Test(deadline, samples_knn_2d)
{
    check_deadline(knn2_case);
}

/* The ticker asks at the first step and then once per LOSS_DEADLINE_OPS:
 * msml over n rows of width d does about n^2 d / 2 operations. */
Test(deadline, asks_in_proportion_to_the_work)
{
    asker k = {0, 0};
    loss_deadline dl = {asker_expired, &k};
    loss_error err;
    double expect = 512.0 * 513.0 / 2.0 * 8.0 / (double)LOSS_DEADLINE_OPS;

    got.n = 0;
    cr_assert_eq(msml_case(&dl, &got, &err), LOSS_OK);
    cr_assert_geq((double)k.asks, expect - 2.0, "%zu asks", k.asks);
    cr_assert_leq((double)k.asks, expect + 2.0, "%zu asks", k.asks);
}
