/* test_hinge.c -- hinge and multiclass_hinge against the PyTorch vectors in
 * tests/vectors/hinge.json, against central finite differences, and on the
 * edge cases and invalid inputs of core/hinge.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "vec.h"

/* Asserts a failing call against the case's "error" object. */
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

static void run_hinge_case(const cJSON *c)
{
    const cJSON *req = vec_field(c, "request"), *exp = vec_field(c, "expected");
    const char *name = vec_string(c, "name", "?");
    size_t dims[3], rank, nl;
    double *s = vec_tensor(req, "scores", dims, &rank);
    int64_t *y = vec_labels(req, "labels", &nl);
    loss_hinge_args a = {0};
    loss_hinge_out o = {0};
    loss_error e = {0};
    int rc;

    a.n = dims[0];
    a.scores = s;
    a.labels = y;
    a.margin = vec_number(req, "margin", 1.0);
    a.p = (int)vec_number(req, "p", 1.0);
    a.reduction = (loss_reduction)vec_reduction(req);
    o.per_sample = calloc(a.n + 1, sizeof(double));
    o.grad_scores = calloc(a.n + 1, sizeof(double));
    rc = loss_hinge(&a, &o, &e);
    if (exp == NULL) {
        expect_error(c, rc, &e);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s: %s", name, e.message);
        vec_expect_number(vec_field(exp, "loss"), o.loss, name, "loss");
        vec_expect_array(vec_field(exp, "per_sample"), o.per_sample, a.n, name,
                         "per_sample");
        vec_expect_array(vec_field(vec_field(exp, "gradients"), "scores"),
                         o.grad_scores, a.n, name, "grad scores");
    }
    free(s);
    free(y);
    free(o.per_sample);
    free(o.grad_scores);
}

static loss_mc_hinge_variant variant_of(const cJSON *req)
{
    const char *v = vec_string(req, "variant", "one_vs_all");

    if (strcmp(v, "weston_watkins") == 0)
        return LOSS_MC_WESTON_WATKINS;
    if (strcmp(v, "crammer_singer") == 0)
        return LOSS_MC_CRAMMER_SINGER;
    cr_assert_str_eq(v, "one_vs_all", "unknown variant in vector file");
    return LOSS_MC_ONE_VS_ALL;
}

static void run_mc_case(const cJSON *c)
{
    const cJSON *req = vec_field(c, "request"), *exp = vec_field(c, "expected");
    const char *name = vec_string(c, "name", "?");
    size_t dims[3], rank, nl;
    double *s = vec_tensor(req, "scores", dims, &rank);
    int64_t *y = vec_labels(req, "labels", &nl);
    loss_multiclass_hinge_args a = {0};
    loss_multiclass_hinge_out o = {0};
    loss_error e = {0};
    int rc;

    a.n = dims[0];
    a.k = rank > 1 ? dims[1] : 0;
    a.scores = s;
    a.labels = y;
    a.margin = vec_number(req, "margin", 1.0);
    a.p = (int)vec_number(req, "p", 1.0);
    a.variant = variant_of(req);
    a.reduction = (loss_reduction)vec_reduction(req);
    o.per_sample = calloc(a.n + 1, sizeof(double));
    o.grad_scores = calloc(a.n * a.k + 1, sizeof(double));
    rc = loss_multiclass_hinge(&a, &o, &e);
    if (exp == NULL) {
        expect_error(c, rc, &e);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s: %s", name, e.message);
        vec_expect_number(vec_field(exp, "loss"), o.loss, name, "loss");
        vec_expect_array(vec_field(exp, "per_sample"), o.per_sample, a.n, name,
                         "per_sample");
        vec_expect_array(vec_field(vec_field(exp, "gradients"), "scores"),
                         o.grad_scores, a.n * a.k, name, "grad scores");
        vec_expect_number(vec_field(vec_field(exp, "metrics"), "accuracy"),
                          o.accuracy, name, "accuracy");
    }
    free(s);
    free(y);
    free(o.per_sample);
    free(o.grad_scores);
}

/* Runs every case of the given loss in hinge.json; returns how many. */
static size_t run_vectors(const char *loss, void (*run)(const cJSON *))
{
    cJSON *root = vec_load("hinge");
    const cJSON *c;
    size_t count = 0;

    cJSON_ArrayForEach(c, vec_field(root, "cases")) {
        if (strcmp(vec_string(c, "loss", ""), loss) != 0)
            continue;
        run(c);
        count++;
    }
    cJSON_Delete(root);
    return count;
}

Test(hinge, pytorch_vectors)
{
    cr_expect_geq(run_vectors("hinge", run_hinge_case), 17);
}

Test(multiclass_hinge, pytorch_vectors)
{
    cr_expect_geq(run_vectors("multiclass_hinge", run_mc_case), 25);
}

/* ---- finite differences -------------------------------------------------- */

static double eval_hinge(void *ctx)
{
    loss_hinge_out o = {0};

    cr_assert_eq(loss_hinge(ctx, &o, NULL), LOSS_OK);
    return o.loss;
}

static double eval_mc(void *ctx)
{
    loss_multiclass_hinge_out o = {0};

    cr_assert_eq(loss_multiclass_hinge(ctx, &o, NULL), LOSS_OK);
    return o.loss;
}

/* Scores whose margins z = margin - y*s stay at least 0.05 from the kink. */
static void hinge_inputs(uint64_t *st, double *s, int64_t *y, size_t n,
                         double margin)
{
    size_t i;

    for (i = 0; i < n; i++) {
        y[i] = test_rand(st, 0.0, 1.0) < 0.5 ? -1 : 1;
        do
            s[i] = test_rand(st, -3.0, 3.0);
        while (fabs(margin - (double)y[i] * s[i]) < 0.05);
    }
}

Test(hinge, finite_differences)
{
    uint64_t st = 0x9e3779b97f4a7c15ULL;
    double s[12], g[12];
    int64_t y[12];
    int p, r;

    for (p = 1; p <= 2; p++) {
        for (r = 0; r <= 1; r++) {
            loss_hinge_args a = {12, s, y, 0.7, p, (loss_reduction)r, NULL};
            loss_hinge_out o = {0, NULL, g};

            hinge_inputs(&st, s, y, 12, a.margin);
            cr_assert_eq(loss_hinge(&a, &o, NULL), LOSS_OK);
            fd_check(eval_hinge, &a, s, g, 12, 1e-6, 1e-6, "hinge scores");
        }
    }
}

Test(multiclass_hinge, finite_differences)
{
    uint64_t st = 12345;
    double s[6 * 5], g[6 * 5];
    int64_t y[6];
    int p, r, v;

    for (v = 0; v <= 2; v++) {
        for (p = 1; p <= 2; p++) {
            for (r = 0; r <= 1; r++) {
                loss_multiclass_hinge_args a = {6,
                                                5,
                                                s,
                                                y,
                                                0.9,
                                                p,
                                                (loss_mc_hinge_variant)v,
                                                (loss_reduction)r,
                                                NULL};
                loss_multiclass_hinge_out o = {0, NULL, g, 0};
                size_t i;

                test_rand_fill(&st, s, 30, -2.0, 2.0);
                for (i = 0; i < 6; i++)
                    y[i] = (int64_t)(test_rand(&st, 0.0, 5.0));
                cr_assert_eq(loss_multiclass_hinge(&a, &o, NULL), LOSS_OK);
                cr_expect_gt(o.loss, 0.0);
                fd_check(eval_mc, &a, s, g, 30, 1e-6, 1e-6, "mc scores");
            }
        }
    }
}

/* ---- edge cases ---------------------------------------------------------- */

Test(hinge, values_by_hand)
{
    double s[3] = {0.25, -2.0, 3.0}, per[3], g[3];
    int64_t y[3] = {1, 1, -1};
    loss_hinge_args a = {3, s, y, 1.0, 2, LOSS_REDUCE_MEAN, NULL};
    loss_hinge_out o = {0, per, g};

    cr_assert_eq(loss_hinge(&a, &o, NULL), LOSS_OK);
    cr_expect_float_eq(per[0], 0.5625, 1e-15);
    cr_expect_float_eq(per[1], 9.0, 1e-15);
    cr_expect_float_eq(per[2], 16.0, 1e-15);
    cr_expect_float_eq(o.loss, 25.5625 / 3.0, 1e-14);
    cr_expect_float_eq(g[0], -1.5 / 3.0, 1e-15);
    cr_expect_float_eq(g[1], -6.0 / 3.0, 1e-15);
    cr_expect_float_eq(g[2], 8.0 / 3.0, 1e-15);
}

Test(hinge, kink_has_zero_derivative)
{
    double s[2] = {1.0, -0.5}, g[2] = {9, 9};
    int64_t y[2] = {1, -1};
    loss_hinge_args a = {2, s, y, 1.0, 1, LOSS_REDUCE_SUM, NULL};
    loss_hinge_out o = {0, NULL, g};

    cr_assert_eq(loss_hinge(&a, &o, NULL), LOSS_OK);
    cr_expect_eq(g[0], 0.0);
    cr_expect_eq(g[1], 1.0);
    cr_expect_eq(o.loss, 0.5);
}

Test(hinge, optional_outputs_may_be_null)
{
    double s[2] = {0.5, 0.5};
    int64_t y[2] = {1, -1};
    loss_hinge_args a = {2, s, y, 1.0, 1, LOSS_REDUCE_MEAN, NULL};
    loss_hinge_out o = {0, NULL, NULL};

    cr_assert_eq(loss_hinge_work(&a), 0);
    cr_assert_eq(loss_hinge(&a, &o, NULL), LOSS_OK);
    cr_expect_float_eq(o.loss, 1.0, 1e-15);
}

/* Calls loss_hinge and asserts the failure's status, field and indices. */
static void hinge_fails(const loss_hinge_args *a, loss_status st,
                        const char *field, size_t depth, size_t i0)
{
    loss_hinge_out o = {0};
    loss_error e = {0};

    cr_assert_eq(loss_hinge(a, &o, &e), st, "%s", e.message);
    cr_expect_eq(e.status, st);
    cr_expect_str_eq(e.field, field);
    cr_expect_eq(e.depth, depth);
    if (depth > 0)
        cr_expect_eq(e.index[0], i0);
    cr_expect(strlen(e.message) > 10);
}

Test(hinge, invalid_inputs)
{
    double s[3] = {0.1, NAN, 0.3};
    int64_t y[3] = {1, -1, 1}, bad[3] = {1, 1, 0};
    loss_hinge_args a = {3, s, y, 1.0, 1, LOSS_REDUCE_MEAN, NULL};

    hinge_fails(&a, LOSS_E_NONFINITE, "scores", 1, 1);
    s[1] = -INFINITY;
    hinge_fails(&a, LOSS_E_NONFINITE, "scores", 1, 1);
    s[1] = 0.2;
    a.labels = bad;
    hinge_fails(&a, LOSS_E_LABEL, "labels", 1, 2);
    a.labels = y;
    a.p = 3;
    hinge_fails(&a, LOSS_E_PARAM, "p", 0, 0);
    a.p = 2;
    a.margin = INFINITY;
    hinge_fails(&a, LOSS_E_NONFINITE, "margin", 0, 0);
    a.margin = NAN;
    hinge_fails(&a, LOSS_E_NONFINITE, "margin", 0, 0);
    a.margin = 1.0;
    a.reduction = (loss_reduction)7;
    hinge_fails(&a, LOSS_E_PARAM, "reduction", 0, 0);
    a.reduction = LOSS_REDUCE_SUM;
    a.n = 0;
    hinge_fails(&a, LOSS_E_EMPTY, "scores", 0, 0);
}

Test(multiclass_hinge, values_by_hand)
{
    /* s = (1, 3, 3, 0), y = 0, margin 1: one_vs_all 0 + 4 + 4 + 1 = 9;
     * weston_watkins (3 + 3 + 0) / 4 = 1.5; crammer_singer 1 + 3 - 1 = 3
     * with the tie at j = 1, 2 going to j = 1. */
    double s[4] = {1, 3, 3, 0}, per[1], g[4];
    int64_t y[1] = {0};
    const double want[3] = {9.0, 1.5, 3.0};
    const double gw[3][4] = {
        {-0.0, 1, 1, 1}, {-0.5, 0.25, 0.25, 0}, {-1, 1, 0, 0}};
    int v, j;

    for (v = 0; v <= 2; v++) {
        loss_multiclass_hinge_args a = {
            1,   4, s, y, 1.0, 1, (loss_mc_hinge_variant)v, LOSS_REDUCE_MEAN,
            NULL};
        loss_multiclass_hinge_out o = {0, per, g, 0};

        cr_assert_eq(loss_multiclass_hinge(&a, &o, NULL), LOSS_OK);
        cr_expect_float_eq(o.loss, want[v], 1e-15, "variant %d", v);
        cr_expect_float_eq(per[0], want[v], 1e-15, "variant %d", v);
        cr_expect_eq(o.accuracy, 0.0);
        for (j = 0; j < 4; j++)
            cr_expect_float_eq(g[j], gw[v][j], 1e-15, "variant %d g[%d]", v, j);
    }
}

Test(multiclass_hinge, accuracy_ties_to_lowest_index)
{
    double s[6] = {2, 2, 1, 0.5, 0.5, 0.5};
    int64_t y[2] = {0, 1};
    loss_multiclass_hinge_args a = {
        2, 3, s, y, 1.0, 1, LOSS_MC_ONE_VS_ALL, LOSS_REDUCE_SUM, NULL};
    loss_multiclass_hinge_out o = {0};

    cr_assert_eq(loss_multiclass_hinge_work(&a), 0);
    cr_assert_eq(loss_multiclass_hinge(&a, &o, NULL), LOSS_OK);
    cr_expect_eq(o.accuracy, 0.5);
}

Test(multiclass_hinge, extreme_scores_stay_finite)
{
    double s[4] = {1e300, -1e300, 1e150, 2e150}, g[4];
    int64_t y[2] = {0, 0};
    loss_multiclass_hinge_args a = {
        2, 2, s, y, 1.0, 1, LOSS_MC_WESTON_WATKINS, LOSS_REDUCE_MEAN, NULL};
    loss_multiclass_hinge_out o = {0, NULL, g, 0};

    cr_assert_eq(loss_multiclass_hinge(&a, &o, NULL), LOSS_OK);
    cr_expect_float_eq(o.loss, (1.0 + 1e150) / 4.0, 1e135);
    cr_expect_eq(g[0], 0.0);
    cr_expect_eq(g[2], -0.25);
    cr_expect_eq(g[3], 0.25);
    cr_expect_eq(o.accuracy, 0.5);
}

static void mc_fails(const loss_multiclass_hinge_args *a, loss_status st,
                     const char *field, size_t depth, size_t i0, size_t i1)
{
    loss_multiclass_hinge_out o = {0};
    loss_error e = {0};

    cr_assert_eq(loss_multiclass_hinge(a, &o, &e), st, "%s", e.message);
    cr_expect_str_eq(e.field, field);
    cr_expect_eq(e.depth, depth);
    if (depth > 0)
        cr_expect_eq(e.index[0], i0);
    if (depth > 1)
        cr_expect_eq(e.index[1], i1);
    cr_expect(strlen(e.message) > 10);
}

Test(multiclass_hinge, invalid_inputs)
{
    double s[6] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
    int64_t y[2] = {0, 2}, bad[2] = {0, 3};
    loss_multiclass_hinge_args a = {
        2, 3, s, y, 1.0, 1, LOSS_MC_ONE_VS_ALL, LOSS_REDUCE_MEAN, NULL};

    s[5] = NAN;
    mc_fails(&a, LOSS_E_NONFINITE, "scores", 2, 1, 2);
    s[5] = 0.6;
    a.labels = bad;
    mc_fails(&a, LOSS_E_LABEL, "labels", 1, 1, 0);
    a.labels = y;
    a.variant = (loss_mc_hinge_variant)3;
    mc_fails(&a, LOSS_E_PARAM, "variant", 0, 0, 0);
    a.variant = LOSS_MC_CRAMMER_SINGER;
    a.p = 0;
    mc_fails(&a, LOSS_E_PARAM, "p", 0, 0, 0);
    a.p = 1;
    a.margin = -INFINITY;
    mc_fails(&a, LOSS_E_NONFINITE, "margin", 0, 0, 0);
    a.margin = 1.0;
    a.k = 0;
    mc_fails(&a, LOSS_E_SHAPE, "scores", 0, 0, 0);
    a.n = 0;
    mc_fails(&a, LOSS_E_EMPTY, "scores", 0, 0, 0);
}

/* loss_error_path is the one formatter of error locations (core tests and
 * the server both use it): field, indices, truncation, no field. */
Test(errors, path_formats_field_and_indices)
{
    loss_error e = {0};
    char buf[32], small[6];

    loss_error_set(&e, LOSS_E_LABEL, "logits", 2, 3, 17, 9, "x");
    loss_error_path(&e, buf, sizeof buf);
    cr_expect_str_eq(buf, "logits[3][17]");
    loss_error_path(&e, small, sizeof small);
    cr_expect_str_eq(small, "logit");
    loss_error_set(&e, LOSS_E_PARAM, NULL, 1, 4, 0, 0, "x");
    loss_error_path(&e, buf, sizeof buf);
    cr_expect_str_eq(buf, "");
    loss_error_set(&e, LOSS_E_PARAM, "x1", 3, 1, 2, 3, "x");
    loss_error_path(&e, buf, sizeof buf);
    cr_expect_str_eq(buf, "x1[1][2][3]");
}
