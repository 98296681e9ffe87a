/* test_softmax.c -- softmax cross-entropy against the PyTorch vectors in
 * tests/vectors/softmax.json (torch.nn.functional.cross_entropy), against
 * central finite differences for every option, and on the edge cases and
 * invalid inputs of core/softmax.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "vec.h"

static void expect_error(const cJSON *c, int rc, const loss_error *e)
{
    const cJSON *want = vec_field(c, "error");
    const char *name = vec_string(c, "name", "?");
    char path[128];

    cr_assert_neq(rc, LOSS_OK, "%s: succeeded, want an error", name);
    loss_error_path(e, path, sizeof path);
    cr_expect_str_eq(loss_status_code((loss_status)rc),
                     vec_string(want, "code", ""), "%s: code", name);
    cr_expect_str_eq(path, vec_string(want, "field", ""), "%s: field", name);
    cr_expect_eq(e->status, rc, "%s: err->status", name);
    cr_expect(strlen(e->message) > 10, "%s: no message", name);
}

/* The inputs of one vector case, owned by the test. */
typedef struct inputs {
    double *logits, *targets, *weight;
    int64_t *labels;
} inputs;

static loss_softmax_args args_of(const cJSON *req, inputs *in)
{
    loss_softmax_args a = {0};
    size_t dims[3], tdims[3], wdims[3], rank, nl;

    in->logits = vec_tensor(req, "logits", dims, &rank);
    in->targets = vec_tensor(req, "targets", tdims, &rank);
    in->weight = vec_tensor(req, "weight", wdims, &rank);
    in->labels = vec_labels(req, "labels", &nl);
    a.n = dims[0];
    a.k = dims[1];
    a.logits = in->logits;
    a.labels = in->labels;
    a.targets = in->targets;
    a.weight = in->weight;
    a.ignore_index = (int64_t)vec_number(req, "ignore_index", -100.0);
    a.label_smoothing = vec_number(req, "label_smoothing", 0.0);
    a.reduction = (loss_reduction)vec_reduction(req);
    return a;
}

static void inputs_free(inputs *in)
{
    free(in->logits);
    free(in->targets);
    free(in->weight);
    free(in->labels);
}

static void expect_values(const cJSON *exp, const loss_softmax_args *a,
                          const loss_softmax_out *o, const char *name)
{
    const cJSON *m = vec_field(exp, "metrics");

    vec_expect_number(vec_field(exp, "loss"), o->loss, name, "loss");
    vec_expect_array(vec_field(exp, "per_sample"), o->per_sample, a->n, name,
                     "per_sample");
    vec_expect_array(vec_field(vec_field(exp, "gradients"), "logits"),
                     o->grad_logits, a->n * a->k, name, "grad logits");
    vec_expect_number(vec_field(m, "accuracy"), o->accuracy, name, "accuracy");
    vec_expect_number(vec_field(m, "mean_entropy"), o->mean_entropy, name,
                      "mean_entropy");
}

static void run_case(const cJSON *c)
{
    const cJSON *exp = vec_field(c, "expected");
    const char *name = vec_string(c, "name", "?");
    inputs in;
    loss_softmax_args a = args_of(vec_field(c, "request"), &in);
    loss_softmax_out o = {0};
    loss_error e = {0};
    int rc;

    cr_assert_eq(loss_softmax_work(&a), 0);
    o.per_sample = calloc(a.n + 1, sizeof(double));
    o.grad_logits = calloc(a.n * a.k + 1, sizeof(double));
    rc = loss_softmax(&a, &o, &e);
    if (exp == NULL) {
        expect_error(c, rc, &e);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s: %s", name, e.message);
        expect_values(exp, &a, &o, name);
    }
    inputs_free(&in);
    free(o.per_sample);
    free(o.grad_logits);
}

Test(softmax, pytorch_vectors)
{
    cJSON *root = vec_load("softmax");
    const cJSON *c;
    size_t count = 0;

    cJSON_ArrayForEach(c, vec_field(root, "cases")) {
        cr_assert_str_eq(vec_string(c, "loss", ""), "softmax");
        run_case(c);
        count++;
    }
    cJSON_Delete(root);
    cr_expect_geq(count, 42);
}

/* ---- finite differences -------------------------------------------------- */

static double eval_softmax(void *ctx)
{
    loss_softmax_out o = {0};

    cr_assert_eq(loss_softmax(ctx, &o, NULL), LOSS_OK);
    return o.loss;
}

/* Random probability rows with some exact zeros. */
static void random_targets(uint64_t *st, double *q, size_t n, size_t k)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        double s = 0.0;

        for (j = 0; j < k; j++) {
            double u = test_rand(st, -0.3, 1.0);

            q[i * k + j] = u > 0.0 ? u : 0.0;
            s += q[i * k + j];
        }
        q[i * k] += s == 0.0 ? 1.0 : 0.0;
        s += s == 0.0 ? 1.0 : 0.0;
        for (j = 0; j < k; j++)
            q[i * k + j] /= s;
    }
}

/* One FD check of the logits gradient for one combination of options. */
static void fd_combo(uint64_t *st, int use_targets, int use_weight, double eps,
                     int ignore, loss_reduction r)
{
    enum { N = 5, K = 4 };
    double z[N * K], q[N * K], w[K], g[N * K];
    int64_t y[N];
    size_t i;
    loss_softmax_args a = {N, K, z, NULL, NULL, NULL, 2, eps, r, NULL};
    loss_softmax_out o = {0, NULL, g, 0, 0};

    test_rand_fill(st, z, N * K, -4.0, 4.0);
    test_rand_fill(st, w, K, 0.1, 2.0);
    for (i = 0; i < N; i++)
        y[i] = (int64_t)test_rand(st, 0.0, (double)K);
    if (ignore)
        y[1] = y[3] = 2;
    else
        a.ignore_index = -100;
    random_targets(st, q, N, K);
    a.labels = use_targets ? NULL : y;
    a.targets = use_targets ? q : NULL;
    a.weight = use_weight ? w : NULL;
    cr_assert_eq(loss_softmax(&a, &o, NULL), LOSS_OK);
    fd_check(eval_softmax, &a, z, g, N * K, 1e-6, 1e-6, "softmax logits");
}

Test(softmax, finite_differences)
{
    uint64_t st = 0x5eed;
    const double eps[2] = {0.0, 0.25};
    int t, w, e, ig, r;

    for (t = 0; t <= 1; t++)
        for (w = 0; w <= 1; w++)
            for (e = 0; e <= 1; e++)
                for (ig = 0; ig <= 1 - t; ig++)
                    for (r = 0; r <= 1; r++)
                        fd_combo(&st, t, w, eps[e], ig, (loss_reduction)r);
}

/* ---- edge cases ---------------------------------------------------------- */

Test(softmax, values_by_hand)
{
    /* z = (0, ln 3), y = 1: p = (1/4, 3/4), l = ln(4/3),
     * grad = (1/4, -1/4), H = ln 4 - (3/4) ln 3. */
    double z[2] = {0.0, log(3.0)}, per[1], g[2];
    int64_t y[1] = {1};
    loss_softmax_args a = {
        1, 2, z, y, NULL, NULL, -100, 0.0, LOSS_REDUCE_MEAN, NULL};
    loss_softmax_out o = {0, per, g, 0, 0};

    cr_assert_eq(loss_softmax(&a, &o, NULL), LOSS_OK);
    cr_expect_float_eq(o.loss, log(4.0 / 3.0), 1e-15);
    cr_expect_float_eq(per[0], log(4.0 / 3.0), 1e-15);
    cr_expect_float_eq(g[0], 0.25, 1e-15);
    cr_expect_float_eq(g[1], -0.25, 1e-15);
    cr_expect_eq(o.accuracy, 1.0);
    cr_expect_float_eq(o.mean_entropy, log(4.0) - 0.75 * log(3.0), 1e-15);
}

Test(softmax, extreme_logits_are_finite)
{
    double z[6] = {1000.0, -1000.0, 0.0, -1000.0, 1000.0, 1000.0}, g[6];
    int64_t y[2] = {1, 0};
    loss_softmax_args a = {2,   3, z, y, NULL, NULL, -100, 0.0, LOSS_REDUCE_SUM,
                           NULL};
    loss_softmax_out o = {0, NULL, g, 0, 0};
    size_t j;

    cr_assert_eq(loss_softmax(&a, &o, NULL), LOSS_OK);
    /* Row 0 loses 2000; row 1 has p_0 = 0 so it loses 2000 + ln 2. */
    cr_expect_float_eq(o.loss, 4000.0 + log(2.0), 1e-12);
    cr_expect_float_eq(g[0], 1.0, 1e-15);
    cr_expect_float_eq(g[1], -1.0, 1e-15);
    cr_expect_float_eq(g[3], -1.0, 1e-15);
    cr_expect_float_eq(g[4], 0.5, 1e-15);
    for (j = 0; j < 6; j++)
        cr_expect(isfinite(g[j]));
    cr_expect_float_eq(o.mean_entropy, log(2.0) / 2.0, 1e-15);
    cr_expect_eq(o.accuracy, 0.0);
}

/* A loss of 0 with two per-sample zeros and four zero gradients. */
static void expect_zero(const loss_softmax_out *o, const double *per,
                        const double *g)
{
    size_t j;

    cr_expect_eq(o->loss, 0.0);
    cr_expect_eq(per[0], 0.0);
    cr_expect_eq(per[1], 0.0);
    for (j = 0; j < 4; j++)
        cr_expect_eq(g[j], 0.0, "g[%zu] = %g", j, g[j]);
}

/* Logits DBL_MAX or more apart: z_j - m overflows for the low class, whose
 * -log p_j is then +inf.  With a zero coefficient it adds nothing, as in
 * PyTorch (row 0, labels and targets, with and without the gradient
 * path); with a positive one (the label, or smoothing) the loss is +inf,
 * never NaN, for the caller to report. */
Test(softmax, logits_beyond_dbl_max_apart)
{
    double z[4] = {1e308, -1e308, -1e308, 1e308}, q[4] = {1, 0, 0, 1};
    double per[2], g[4];
    int64_t y[2] = {0, 1}, y1[2] = {1, 1};
    loss_softmax_args a = {
        2, 2, z, y, NULL, NULL, -100, 0.0, LOSS_REDUCE_MEAN, NULL};
    loss_softmax_out o = {0, per, g, 0, 0}, bare = {0, per, NULL, 0, 0};

    cr_assert_eq(loss_softmax(&a, &o, NULL), LOSS_OK);
    expect_zero(&o, per, g);
    cr_expect_eq(o.mean_entropy, 0.0);
    cr_assert_eq(loss_softmax(&a, &bare, NULL), LOSS_OK);
    cr_expect_eq(bare.loss, 0.0);
    cr_expect_eq(bare.mean_entropy, 0.0);
    a.labels = NULL;
    a.targets = q;
    cr_assert_eq(loss_softmax(&a, &o, NULL), LOSS_OK);
    cr_expect_eq(o.loss, 0.0);
    a.targets = NULL;
    a.labels = y1;
    cr_assert_eq(loss_softmax(&a, &o, NULL), LOSS_OK);
    cr_expect(isinf(per[0]) && per[0] > 0, "per[0] = %g", per[0]);
    cr_expect_eq(per[1], 0.0);
    a.labels = y;
    a.label_smoothing = 0.1;
    cr_assert_eq(loss_softmax(&a, &o, NULL), LOSS_OK);
    cr_expect(isinf(o.loss) && o.loss > 0, "loss = %g", o.loss);
}

Test(softmax, all_ignored_gives_zero)
{
    double z[4] = {1.0, 2.0, 3.0, 4.0}, per[2] = {9, 9}, g[4];
    int64_t y[2] = {-100, -100};
    loss_softmax_args a = {
        2, 2, z, y, NULL, NULL, -100, 0.1, LOSS_REDUCE_MEAN, NULL};
    loss_softmax_out o = {0, per, g, 0, 0};

    cr_assert_eq(loss_softmax(&a, &o, NULL), LOSS_OK);
    expect_zero(&o, per, g);
    cr_expect(isnan(o.accuracy));
    cr_expect(isfinite(o.mean_entropy) && o.mean_entropy > 0.0);
}

Test(softmax, ignore_index_has_no_effect_with_targets)
{
    double z[4] = {0.5, -0.5, 2.0, 1.0}, q[4] = {0.0, 1.0, 0.5, 0.5};
    loss_softmax_args a = {
        2, 2, z, NULL, q, NULL, -100, 0.0, LOSS_REDUCE_MEAN, NULL};
    loss_softmax_out o1 = {0}, o2 = {0};

    cr_assert_eq(loss_softmax(&a, &o1, NULL), LOSS_OK);
    a.ignore_index = 1;
    cr_assert_eq(loss_softmax(&a, &o2, NULL), LOSS_OK);
    cr_expect_eq(o1.loss, o2.loss);
    cr_expect_eq(o2.accuracy, 0.5);
}

Test(softmax, ties_go_to_lowest_index)
{
    double z[6] = {2.0, 2.0, 1.0, 0.0, 0.0, 0.0};
    int64_t y[2] = {0, 1};
    loss_softmax_args a = {
        2, 3, z, y, NULL, NULL, -100, 0.0, LOSS_REDUCE_MEAN, NULL};
    loss_softmax_out o = {0};

    cr_assert_eq(loss_softmax(&a, &o, NULL), LOSS_OK);
    cr_expect_eq(o.accuracy, 0.5);
}

static void softmax_fails(const loss_softmax_args *a, loss_status st,
                          const char *field, size_t depth, size_t i0, size_t i1)
{
    loss_softmax_out o = {0};
    loss_error e = {0};

    cr_assert_eq(loss_softmax(a, &o, &e), st, "%s", e.message);
    cr_expect_eq(e.status, st);
    cr_expect_str_eq(e.field, field);
    cr_expect_eq(e.depth, depth);
    if (depth > 0)
        cr_expect_eq(e.index[0], i0);
    if (depth > 1)
        cr_expect_eq(e.index[1], i1);
    cr_expect(strlen(e.message) > 10);
}

Test(softmax, invalid_logits_and_labels)
{
    double z[6] = {0.1, 0.2, 0.3, 0.4, NAN, 0.6};
    int64_t y[2] = {0, 2}, bad[2] = {3, 0};
    loss_softmax_args a = {
        2, 3, z, y, NULL, NULL, -100, 0.0, LOSS_REDUCE_MEAN, NULL};

    softmax_fails(&a, LOSS_E_NONFINITE, "logits", 2, 1, 1);
    z[4] = INFINITY;
    softmax_fails(&a, LOSS_E_NONFINITE, "logits", 2, 1, 1);
    z[4] = 0.5;
    a.labels = bad;
    softmax_fails(&a, LOSS_E_LABEL, "labels", 1, 0, 0);
    bad[0] = -100;
    cr_expect_eq(loss_softmax(&a, &(loss_softmax_out){0}, NULL), LOSS_OK);
    a.ignore_index = 0;
    softmax_fails(&a, LOSS_E_LABEL, "labels", 1, 0, 0);
    a.labels = NULL;
    softmax_fails(&a, LOSS_E_PARAM, "labels", 0, 0, 0);
    a.labels = y;
    a.reduction = (loss_reduction)2;
    softmax_fails(&a, LOSS_E_PARAM, "reduction", 0, 0, 0);
    a.reduction = LOSS_REDUCE_SUM;
    a.k = 0;
    softmax_fails(&a, LOSS_E_SHAPE, "logits", 0, 0, 0);
    a.n = 0;
    softmax_fails(&a, LOSS_E_EMPTY, "logits", 0, 0, 0);
}

Test(softmax, invalid_targets_weight_and_smoothing)
{
    double z[4] = {0.1, 0.2, 0.3, 0.4}, q[4] = {0.5, 0.5, 0.0, 1.0};
    double w[2] = {1.0, -1.0};
    int64_t y[2] = {0, 1};
    loss_softmax_args a = {
        2, 2, z, NULL, q, NULL, -100, 0.0, LOSS_REDUCE_MEAN, NULL};

    q[3] = NAN;
    softmax_fails(&a, LOSS_E_NONFINITE, "targets", 2, 1, 1);
    q[2] = -0.5;
    q[3] = 1.5;
    softmax_fails(&a, LOSS_E_PROB, "targets", 2, 1, 0);
    q[2] = 0.0;
    q[3] = 1.0 + 2e-6;
    softmax_fails(&a, LOSS_E_PROB, "targets", 1, 1, 0);
    q[3] = 1.0 + 5e-7;
    cr_expect_eq(loss_softmax(&a, &(loss_softmax_out){0}, NULL), LOSS_OK);
    a.labels = y;
    softmax_fails(&a, LOSS_E_PARAM, "targets", 0, 0, 0);
    a.targets = NULL;
    a.weight = w;
    softmax_fails(&a, LOSS_E_PARAM, "weight", 1, 1, 0);
    w[0] = INFINITY;
    softmax_fails(&a, LOSS_E_NONFINITE, "weight", 1, 0, 0);
    w[0] = 1.0;
    w[1] = 0.0;
    a.label_smoothing = 1.0;
    softmax_fails(&a, LOSS_E_PARAM, "label_smoothing", 0, 0, 0);
    a.label_smoothing = NAN;
    softmax_fails(&a, LOSS_E_NONFINITE, "label_smoothing", 0, 0, 0);
    a.label_smoothing = -1e-9;
    softmax_fails(&a, LOSS_E_PARAM, "label_smoothing", 0, 0, 0);
    /* Finite weights whose sum, the mean's divisor, overflows; under sum
     * the divisor is not used and the same weights are fine. */
    a.label_smoothing = 0.0;
    w[0] = w[1] = 1e308;
    softmax_fails(&a, LOSS_E_PARAM, "weight", 0, 0, 0);
    a.reduction = LOSS_REDUCE_SUM;
    cr_expect_eq(loss_softmax(&a, &(loss_softmax_out){0}, NULL), LOSS_OK);
}
