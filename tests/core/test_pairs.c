/* test_pairs.c -- contrastive and coupled_cluster against the PyTorch
 * vectors (tests/vectors/pairs.json), central finite differences of every
 * gradient, and the edge cases and invalid inputs of both losses. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "vec.h"

#define MAXL 4

/* ---- helpers ------------------------------------------------------------ */

/* Flattens a JSON array (not a request field) like vec_tensor does. */
static double *tensor_of(const cJSON *arr, size_t dims[3], size_t *rank)
{
    cJSON *wrap = cJSON_CreateObject();
    double *x;

    cJSON_AddItemReferenceToObject(wrap, "a", (cJSON *)arr);
    x = vec_tensor(wrap, "a", dims, rank);
    cJSON_Delete(wrap);
    return x;
}

/* Asserts the status and the located field of a failed call. */
static void expect_error(int rc, const loss_error *e, loss_status want,
                         const char *path)
{
    char got[128];

    cr_assert_eq(rc, want, "status %d (%s), want %d", rc,
                 loss_status_code((loss_status)rc), want);
    cr_assert_eq(e->status, want);
    loss_error_path(e, got, sizeof got);
    cr_expect_str_eq(got, path);
    cr_expect_gt(strlen(e->message), 10, "message \"%s\" too short",
                 e->message);
}

static void expect_case_error(const cJSON *c, int rc, const loss_error *e)
{
    const cJSON *want = cJSON_GetObjectItem(c, "error");
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    char got[128];

    cr_assert(rc != LOSS_OK, "%s: succeeded, want an error", name);
    loss_error_path(e, got, sizeof got);
    cr_expect_str_eq(loss_status_code((loss_status)rc),
                     cJSON_GetObjectItem(want, "code")->valuestring, "%s",
                     name);
    cr_expect_str_eq(got, cJSON_GetObjectItem(want, "field")->valuestring, "%s",
                     name);
}

static const char *case_name(const cJSON *c)
{
    return cJSON_GetObjectItem(c, "name")->valuestring;
}

static int is_loss(const cJSON *c, const char *loss)
{
    return strcmp(cJSON_GetObjectItem(c, "loss")->valuestring, loss) == 0;
}

/* ---- contrastive harness ------------------------------------------------ */

typedef struct ctr {
    size_t layers, n, d[MAXL];
    double *x1[MAXL], *x2[MAXL], *g1[MAXL], *g2[MAXL];
    int64_t *labels;
    double *per;
    int multi;
    loss_contrastive_args a;
    loss_contrastive_out o;
} ctr;

static loss_contrastive_variant variant_of(const char *s)
{
    if (strcmp(s, "seed") == 0)
        return LOSS_CONTRASTIVE_SEED;
    if (strcmp(s, "hadsell") == 0)
        return LOSS_CONTRASTIVE_HADSELL;
    if (strcmp(s, "double_margin") == 0)
        return LOSS_CONTRASTIVE_DOUBLE_MARGIN;
    return (loss_contrastive_variant)99;
}

/* Points the args and outputs at the buffers. */
static void ctr_wire(ctr *t)
{
    t->a.layers = t->layers;
    t->a.n = t->n;
    t->a.d = t->d;
    t->a.x1 = (const double *const *)t->x1;
    t->a.x2 = (const double *const *)t->x2;
    t->a.labels = t->labels;
    t->o.per_sample = t->per;
    t->o.grad_x1 = t->g1[0] != NULL ? t->g1 : NULL;
    t->o.grad_x2 = t->g2[0] != NULL ? t->g2 : NULL;
}

static void ctr_alloc_outputs(ctr *t)
{
    size_t l;

    for (l = 0; l < t->layers; l++) {
        t->g1[l] = calloc(t->n * t->d[l] + 1, sizeof(double));
        t->g2[l] = calloc(t->n * t->d[l] + 1, sizeof(double));
    }
    t->per = calloc(t->n + 1, sizeof(double));
}

/* One input field, [N][D] or [L][N][D], into per-layer buffers. */
static void ctr_load_field(ctr *t, const cJSON *req, const char *name,
                           double **x)
{
    const cJSON *f = vec_field(req, name), *layer;
    const cJSON *first = cJSON_GetArrayItem(f, 0);
    size_t dims[3], rank, l = 0;

    t->multi =
        cJSON_IsArray(first) && cJSON_IsArray(cJSON_GetArrayItem(first, 0));
    if (!t->multi) {
        x[0] = tensor_of(f, dims, &rank);
        t->layers = 1;
        t->n = dims[0];
        t->d[0] = rank > 1 ? dims[1] : 0;
        return;
    }
    cJSON_ArrayForEach(layer, f) {
        cr_assert_lt(l, MAXL);
        x[l] = tensor_of(layer, dims, &rank);
        t->n = dims[0];
        t->d[l++] = dims[1];
    }
    t->layers = l;
}

static void ctr_load(ctr *t, const cJSON *req)
{
    size_t nl;

    memset(t, 0, sizeof *t);
    ctr_load_field(t, req, "x1", t->x1);
    ctr_load_field(t, req, "x2", t->x2);
    t->labels = vec_labels(req, "labels", &nl);
    cr_assert_eq(nl, t->n);
    t->a.variant = variant_of(vec_string(req, "variant", "seed"));
    t->a.margin = vec_number(req, "margin", 1.0);
    t->a.pos_margin = vec_number(req, "pos_margin", 0.0);
    t->a.neg_margin = vec_number(req, "neg_margin", 1.0);
    t->a.reduction = (loss_reduction)vec_reduction(req);
    ctr_alloc_outputs(t);
    ctr_wire(t);
}

static void ctr_free(ctr *t)
{
    size_t l;

    for (l = 0; l < MAXL; l++) {
        free(t->x1[l]);
        free(t->x2[l]);
        free(t->g1[l]);
        free(t->g2[l]);
    }
    free(t->labels);
    free(t->per);
}

/* The expected gradient of layer l: the whole array, or its l-th layer. */
static const cJSON *layer_of(const cJSON *g, int multi, size_t l)
{
    return multi ? cJSON_GetArrayItem(g, (int)l) : g;
}

static void ctr_expect(ctr *t, const cJSON *c)
{
    const cJSON *e = cJSON_GetObjectItem(c, "expected");
    const cJSON *g = cJSON_GetObjectItem(e, "gradients");
    const cJSON *m = cJSON_GetObjectItem(e, "metrics");
    const char *name = case_name(c);
    size_t l;

    vec_expect_number(cJSON_GetObjectItem(e, "loss"), t->o.loss, name, "loss");
    vec_expect_array(cJSON_GetObjectItem(e, "per_sample"), t->per, t->n, name,
                     "per_sample");
    for (l = 0; l < t->layers; l++) {
        vec_expect_array(layer_of(cJSON_GetObjectItem(g, "x1"), t->multi, l),
                         t->g1[l], t->n * t->d[l], name, "grad x1");
        vec_expect_array(layer_of(cJSON_GetObjectItem(g, "x2"), t->multi, l),
                         t->g2[l], t->n * t->d[l], name, "grad x2");
    }
    vec_expect_number(cJSON_GetObjectItem(m, "mean_distance_pos"),
                      t->o.mean_distance_pos, name, "mean_distance_pos");
    vec_expect_number(cJSON_GetObjectItem(m, "mean_distance_neg"),
                      t->o.mean_distance_neg, name, "mean_distance_neg");
}

/* Recomputes with every optional output off: the loss must not change. */
static void ctr_expect_without_outputs(ctr *t, const char *name)
{
    loss_contrastive_out o = {0};
    loss_error err;

    cr_assert_eq(loss_contrastive(&t->a, &o, &err), LOSS_OK);
    cr_expect_eq(o.loss, t->o.loss, "%s: loss changes without outputs", name);
}

/* ---- contrastive: vectors ----------------------------------------------- */

Test(contrastive, vectors)
{
    cJSON *root = vec_load("pairs");
    const cJSON *c;
    int seen = 0, errors = 0;

    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        ctr t;
        loss_error err;
        int rc;

        if (!is_loss(c, "contrastive"))
            continue;
        ctr_load(&t, cJSON_GetObjectItem(c, "request"));
        rc = loss_contrastive(&t.a, &t.o, &err);
        if (cJSON_GetObjectItem(c, "error") != NULL) {
            expect_case_error(c, rc, &err);
            errors++;
        } else {
            cr_assert_eq(rc, LOSS_OK, "%s: %s", case_name(c), err.message);
            ctr_expect(&t, c);
            ctr_expect_without_outputs(&t, case_name(c));
        }
        ctr_free(&t);
        seen++;
    }
    cr_expect_geq(seen, 30);
    cr_expect_geq(errors, 7);
    cJSON_Delete(root);
}

/* ---- contrastive: finite differences ------------------------------------ */

/* Random pairs whose per-layer distances are drawn from {0.35, 0.75, 1.25,
 * 1.6}, away from every hinge kink at margin = neg_margin = 1 and
 * pos_margin = 0.3 (in d or D); pairs 0-3 match, 4-7 do not. */
static void ctr_random(ctr *t, size_t layers, const size_t *widths,
                       uint64_t seed)
{
    static const double radius[4] = {0.35, 0.75, 1.25, 1.6};
    size_t l, i, j, k;
    double u[8], norm;

    memset(t, 0, sizeof *t);
    t->layers = layers;
    t->n = 8;
    t->labels = malloc(t->n * sizeof *t->labels);
    for (i = 0; i < t->n; i++)
        t->labels[i] = i < 4;
    for (l = 0; l < layers; l++) {
        k = t->d[l] = widths[l];
        t->x1[l] = malloc(t->n * k * sizeof(double));
        t->x2[l] = malloc(t->n * k * sizeof(double));
        test_rand_fill(&seed, t->x1[l], t->n * k, -1.0, 1.0);
        for (i = 0; i < t->n; i++) {
            test_rand_fill(&seed, u, k, -1.0, 1.0);
            for (norm = 0.0, j = 0; j < k; j++)
                norm += u[j] * u[j];
            norm = radius[(i + l) % 4] / sqrt(norm);
            for (j = 0; j < k; j++)
                t->x2[l][i * k + j] = t->x1[l][i * k + j] + u[j] * norm;
        }
    }
    t->a.margin = 1.0;
    t->a.pos_margin = 0.3;
    t->a.neg_margin = 1.0;
    ctr_alloc_outputs(t);
    ctr_wire(t);
}

static double ctr_eval(void *ctx)
{
    ctr *t = ctx;
    loss_contrastive_out o = {0};
    loss_error err;

    cr_assert_eq(loss_contrastive(&t->a, &o, &err), LOSS_OK);
    return o.loss;
}

static void ctr_fd(loss_contrastive_variant v, size_t layers,
                   const size_t *widths)
{
    loss_error err;
    size_t l;
    int r;

    for (r = 0; r < 2; r++) {
        ctr t;

        ctr_random(&t, layers, widths,
                   UINT64_C(0x9E3779B97F4A7C15) + (unsigned)r);
        t.a.variant = v;
        t.a.reduction = (loss_reduction)r;
        cr_assert_eq(loss_contrastive(&t.a, &t.o, &err), LOSS_OK);
        cr_assert_gt(t.o.loss, 0.0);
        for (l = 0; l < layers; l++) {
            fd_check(ctr_eval, &t, t.x1[l], t.g1[l], t.n * t.d[l], 1e-6, 1e-6,
                     "grad x1");
            fd_check(ctr_eval, &t, t.x2[l], t.g2[l], t.n * t.d[l], 1e-6, 1e-6,
                     "grad x2");
        }
        ctr_free(&t);
    }
}

static const size_t one_layer[1] = {4};
static const size_t three_layers[3] = {3, 1, 5};

Test(contrastive, fd_seed)
{
    ctr_fd(LOSS_CONTRASTIVE_SEED, 1, one_layer);
}
Test(contrastive, fd_hadsell)
{
    ctr_fd(LOSS_CONTRASTIVE_HADSELL, 1, one_layer);
}
Test(contrastive, fd_double_margin)
{
    ctr_fd(LOSS_CONTRASTIVE_DOUBLE_MARGIN, 1, one_layer);
}
Test(contrastive, fd_layers_seed)
{
    ctr_fd(LOSS_CONTRASTIVE_SEED, 3, three_layers);
}
Test(contrastive, fd_layers_hadsell)
{
    ctr_fd(LOSS_CONTRASTIVE_HADSELL, 3, three_layers);
}
Test(contrastive, fd_layers_double_margin)
{
    ctr_fd(LOSS_CONTRASTIVE_DOUBLE_MARGIN, 3, three_layers);
}

/* ---- contrastive: edge cases -------------------------------------------- */

/* A one-layer batch of n pairs in D = 2 over caller arrays. */
static void ctr_small(ctr *t, size_t n, double *x1, double *x2, int64_t *labels,
                      double *g1, double *g2, double *per)
{
    memset(t, 0, sizeof *t);
    t->layers = 1;
    t->n = n;
    t->d[0] = 2;
    t->x1[0] = x1;
    t->x2[0] = x2;
    t->g1[0] = g1;
    t->g2[0] = g2;
    t->labels = labels;
    t->per = per;
    t->a.margin = 1.0;
    t->a.neg_margin = 1.0;
    ctr_wire(t);
}

Test(contrastive, zero_distance_gives_zero_gradient)
{
    double x1[4] = {0.5, -1.0, 2.0, 3.0}, x2[4] = {0.5, -1.0, 2.0, 3.0};
    double g1[4], g2[4], per[2];
    int64_t labels[2] = {0, 1};
    loss_contrastive_variant v;
    loss_error err;
    ctr t;

    for (v = LOSS_CONTRASTIVE_SEED; v <= LOSS_CONTRASTIVE_DOUBLE_MARGIN; v++) {
        ctr_small(&t, 2, x1, x2, labels, g1, g2, per);
        t.a.variant = v;
        t.a.margin = t.a.neg_margin = 2.0;
        t.a.reduction = LOSS_REDUCE_SUM;
        cr_assert_eq(loss_contrastive(&t.a, &t.o, &err), LOSS_OK);
        /* seed, double_margin: 1/2 * 2; hadsell: 1/2 * 2^2. */
        cr_expect_eq(per[0], v == LOSS_CONTRASTIVE_HADSELL ? 2.0 : 1.0);
        cr_expect_eq(per[1], 0.0);
        for (size_t j = 0; j < 4; j++) {
            cr_expect_eq(g1[j], 0.0, "variant %d g1[%zu] = %g", v, j, g1[j]);
            cr_expect_eq(g2[j], 0.0, "variant %d g2[%zu] = %g", v, j, g2[j]);
        }
        cr_expect_eq(t.o.mean_distance_pos, 0.0);
        cr_expect_eq(t.o.mean_distance_neg, 0.0);
    }
}

/* Distances far below sqrt(DBL_MIN) keep their exact value and a finite
 * hadsell gradient of length margin - D. */
Test(contrastive, tiny_distance_hadsell)
{
    double x1[2] = {3e-200, 0.0}, x2[2] = {0.0, -4e-200};
    double g1[2], g2[2], per[1];
    int64_t labels[1] = {0};
    loss_error err;
    ctr t;

    ctr_small(&t, 1, x1, x2, labels, g1, g2, per);
    t.a.variant = LOSS_CONTRASTIVE_HADSELL;
    cr_assert_eq(loss_contrastive(&t.a, &t.o, &err), LOSS_OK);
    cr_expect_float_eq(t.o.mean_distance_neg, 5e-200, 1e-215);
    cr_expect_float_eq(t.o.loss, 0.5, 1e-15);
    cr_expect_float_eq(g1[0], -0.6, 1e-15);
    cr_expect_float_eq(g1[1], -0.8, 1e-15);
    cr_expect_float_eq(g2[0], 0.6, 1e-15);
    cr_expect_float_eq(g2[1], 0.8, 1e-15);
}

/* Coordinates near 1e200: the distance metric is still finite and exact. */
Test(contrastive, huge_coordinates_distance)
{
    double x1[2] = {3e200, 0.0}, x2[2] = {0.0, 4e200};
    double g1[2], g2[2], per[1];
    int64_t labels[1] = {0};
    loss_error err;
    ctr t;

    ctr_small(&t, 1, x1, x2, labels, g1, g2, per);
    t.a.variant = LOSS_CONTRASTIVE_HADSELL;
    cr_assert_eq(loss_contrastive(&t.a, &t.o, &err), LOSS_OK);
    cr_expect_float_eq(t.o.mean_distance_neg, 5e200, 1e186);
    cr_expect_eq(t.o.loss, 0.0);
    cr_expect_eq(g1[0], 0.0);
}

Test(contrastive, metrics_by_label_and_nan_when_absent)
{
    double x1[6] = {0, 0, 0, 0, 0, 0}, x2[6] = {3, 4, 0, 1, 6, 8};
    int64_t labels[3] = {1, 0, 1};
    loss_error err;
    ctr t;

    ctr_small(&t, 3, x1, x2, labels, NULL, NULL, NULL);
    cr_assert_eq(loss_contrastive(&t.a, &t.o, &err), LOSS_OK);
    cr_expect_float_eq(t.o.mean_distance_pos, 7.5, 1e-14);
    cr_expect_float_eq(t.o.mean_distance_neg, 1.0, 1e-14);
    labels[1] = 1;
    cr_assert_eq(loss_contrastive(&t.a, &t.o, &err), LOSS_OK);
    cr_expect(isnan(t.o.mean_distance_neg));
    labels[0] = labels[1] = labels[2] = 0;
    cr_assert_eq(loss_contrastive(&t.a, &t.o, &err), LOSS_OK);
    cr_expect(isnan(t.o.mean_distance_pos));
    cr_expect_float_eq(t.o.mean_distance_neg, 16.0 / 3.0, 1e-14);
}

/* Only the requested gradient is written. */
Test(contrastive, one_gradient_only)
{
    double x1[2] = {1.0, 2.0}, x2[2] = {0.0, 0.0}, g2[2] = {7.0, 7.0};
    double g1[2];
    double *gp[1] = {g1};
    int64_t labels[1] = {1};
    loss_error err;
    ctr t;

    ctr_small(&t, 1, x1, x2, labels, NULL, NULL, NULL);
    t.o.grad_x1 = gp;
    cr_assert_eq(loss_contrastive(&t.a, &t.o, &err), LOSS_OK);
    cr_expect_float_eq(t.o.loss, 2.5, 1e-15);
    cr_expect_float_eq(g1[0], 1.0, 1e-15);
    cr_expect_float_eq(g1[1], 2.0, 1e-15);
    cr_expect_eq(g2[0], 7.0);
}

Test(contrastive, work_is_zero)
{
    loss_contrastive_args a = {0};

    cr_expect_eq(loss_contrastive_work(&a), 0);
}

/* ---- contrastive: invalid inputs ---------------------------------------- */

Test(contrastive, invalid_labels)
{
    double x1[4] = {0, 0, 1, 1}, x2[4] = {1, 0, 1, 2};
    int64_t labels[2] = {1, 2};
    loss_error err;
    ctr t;

    ctr_small(&t, 2, x1, x2, labels, NULL, NULL, NULL);
    expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_LABEL,
                 "labels[1]");
    labels[1] = 0;
    labels[0] = -1;
    expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_LABEL,
                 "labels[0]");
}

Test(contrastive, invalid_parameters)
{
    double x1[2] = {0, 0}, x2[2] = {1, 0};
    int64_t labels[1] = {1};
    const double bad[3] = {-1.0, NAN, INFINITY};
    loss_error err;
    ctr t;
    int i;

    for (i = 0; i < 3; i++) {
        ctr_small(&t, 1, x1, x2, labels, NULL, NULL, NULL);
        t.a.margin = bad[i];
        expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_PARAM,
                     "margin");
        ctr_small(&t, 1, x1, x2, labels, NULL, NULL, NULL);
        t.a.pos_margin = bad[i];
        expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_PARAM,
                     "pos_margin");
        ctr_small(&t, 1, x1, x2, labels, NULL, NULL, NULL);
        t.a.neg_margin = bad[i];
        expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_PARAM,
                     "neg_margin");
    }
    ctr_small(&t, 1, x1, x2, labels, NULL, NULL, NULL);
    t.a.variant = (loss_contrastive_variant)3;
    expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_PARAM,
                 "variant");
    ctr_small(&t, 1, x1, x2, labels, NULL, NULL, NULL);
    t.a.reduction = (loss_reduction)2;
    expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_PARAM,
                 "reduction");
}

Test(contrastive, zero_margins_are_valid)
{
    double x1[2] = {0, 0}, x2[2] = {1, 0};
    int64_t labels[1] = {0};
    loss_error err;
    ctr t;

    ctr_small(&t, 1, x1, x2, labels, NULL, NULL, NULL);
    t.a.margin = t.a.pos_margin = t.a.neg_margin = 0.0;
    cr_assert_eq(loss_contrastive(&t.a, &t.o, &err), LOSS_OK);
    cr_expect_eq(t.o.loss, 0.0);
}

Test(contrastive, empty_batch)
{
    double x1[2] = {0, 0}, x2[2] = {1, 0};
    int64_t labels[1] = {0};
    loss_error err;
    ctr t;

    ctr_small(&t, 0, x1, x2, labels, NULL, NULL, NULL);
    expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_EMPTY, "x1");
    ctr_small(&t, 1, x1, x2, labels, NULL, NULL, NULL);
    t.a.layers = 0;
    expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_EMPTY, "x1");
}

/* One layer: depth 2 (x1[i][j]); several: depth 3 (x1[l][i][j]). */
Test(contrastive, non_finite_inputs)
{
    const size_t widths[3] = {3, 1, 5};
    loss_error err;
    ctr t;

    ctr_random(&t, 1, widths, 7);
    t.x1[0][1 * 3 + 2] = NAN;
    expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_NONFINITE,
                 "x1[1][2]");
    t.x1[0][1 * 3 + 2] = 0.0;
    t.x2[0][7 * 3 + 0] = -INFINITY;
    expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_NONFINITE,
                 "x2[7][0]");
    ctr_free(&t);

    ctr_random(&t, 3, widths, 7);
    t.x2[2][4 * 5 + 3] = INFINITY;
    expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_NONFINITE,
                 "x2[2][4][3]");
    t.x1[1][6] = NAN;
    expect_error(loss_contrastive(&t.a, &t.o, &err), &err, LOSS_E_NONFINITE,
                 "x1[1][6][0]");
    ctr_free(&t);
}

/* ---- coupled_cluster harness -------------------------------------------- */

typedef struct ccl {
    double *pos, *neg, *gp, *gn, *per, *work;
    loss_coupled_cluster_args a;
    loss_coupled_cluster_out o;
} ccl;

static void ccl_alloc(ccl *t)
{
    t->gp = calloc(t->a.np * t->a.d + 1, sizeof(double));
    t->gn = calloc(t->a.nn * t->a.d + 1, sizeof(double));
    t->per = calloc(t->a.np + 1, sizeof(double));
    t->work = calloc(loss_coupled_cluster_work(&t->a) + 1, sizeof(double));
    t->a.positives = t->pos;
    t->a.negatives = t->neg;
    t->a.work = t->work;
    t->o.per_sample = t->per;
    t->o.grad_positives = t->gp;
    t->o.grad_negatives = t->gn;
}

static void ccl_load(ccl *t, const cJSON *req)
{
    size_t dp[3], dn[3], rp, rn;

    memset(t, 0, sizeof *t);
    t->pos = vec_tensor(req, "positives", dp, &rp);
    t->neg = vec_tensor(req, "negatives", dn, &rn);
    t->a.np = dp[0];
    t->a.nn = dn[0];
    t->a.d = rp > 1 ? dp[1] : dn[1];
    t->a.margin = vec_number(req, "margin", 1.0);
    t->a.reduction = (loss_reduction)vec_reduction(req);
    ccl_alloc(t);
}

static void ccl_free(ccl *t)
{
    free(t->pos);
    free(t->neg);
    free(t->gp);
    free(t->gn);
    free(t->per);
    free(t->work);
}

static void ccl_expect(ccl *t, const cJSON *c)
{
    const cJSON *e = cJSON_GetObjectItem(c, "expected");
    const cJSON *g = cJSON_GetObjectItem(e, "gradients");
    const char *name = case_name(c);
    loss_coupled_cluster_out bare = {0};
    loss_error err;

    vec_expect_number(cJSON_GetObjectItem(e, "loss"), t->o.loss, name, "loss");
    vec_expect_array(cJSON_GetObjectItem(e, "per_sample"), t->per, t->a.np,
                     name, "per_sample");
    vec_expect_array(cJSON_GetObjectItem(g, "positives"), t->gp,
                     t->a.np * t->a.d, name, "grad positives");
    vec_expect_array(cJSON_GetObjectItem(g, "negatives"), t->gn,
                     t->a.nn * t->a.d, name, "grad negatives");
    cr_assert_eq(loss_coupled_cluster(&t->a, &bare, &err), LOSS_OK);
    cr_expect_eq(bare.loss, t->o.loss, "%s: loss changes without outputs",
                 name);
}

/* ---- coupled_cluster: vectors ------------------------------------------- */

Test(coupled_cluster, vectors)
{
    cJSON *root = vec_load("pairs");
    const cJSON *c;
    int seen = 0, errors = 0;

    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        ccl t;
        loss_error err;
        int rc;

        if (!is_loss(c, "coupled_cluster"))
            continue;
        ccl_load(&t, cJSON_GetObjectItem(c, "request"));
        rc = loss_coupled_cluster(&t.a, &t.o, &err);
        if (cJSON_GetObjectItem(c, "error") != NULL) {
            expect_case_error(c, rc, &err);
            errors++;
        } else {
            cr_assert_eq(rc, LOSS_OK, "%s: %s", case_name(c), err.message);
            ccl_expect(&t, c);
        }
        ccl_free(&t);
        seen++;
    }
    cr_expect_geq(seen, 14);
    cr_expect_geq(errors, 3);
    cJSON_Delete(root);
}

/* ---- coupled_cluster: finite differences -------------------------------- */

static double sqdist(const double *u, const double *v, size_t d)
{
    double s = 0.0;
    size_t j;

    for (j = 0; j < d; j++)
        s += (u[j] - v[j]) * (u[j] - v[j]);
    return s;
}

/* 1 when the nearest negative leads the next by 0.05 in d^2 and every hinge
 * argument is at least 0.05 from 0, so the loss is smooth around x, and
 * both sides of the hinge occur (only the active side when np = 1). */
static int ccl_smooth(const ccl *t)
{
    size_t i, j, d = t->a.d, active = 0;
    double c[8] = {0}, best = INFINITY, second = INFINITY, s, h;

    for (i = 0; i < t->a.np; i++)
        for (j = 0; j < d; j++)
            c[j] += t->pos[i * d + j] / (double)t->a.np;
    for (i = 0; i < t->a.nn; i++) {
        s = sqdist(t->neg + i * d, c, d);
        if (s < best) {
            second = best;
            best = s;
        } else if (s < second) {
            second = s;
        }
    }
    if (second - best < 0.05)
        return 0;
    for (i = 0; i < t->a.np; i++) {
        h = sqdist(t->pos + i * d, c, d) - best + t->a.margin;
        if (fabs(h) < 0.05)
            return 0;
        active += h > 0.0;
    }
    return active > 0 && (active < t->a.np || t->a.np == 1);
}

static void ccl_random(ccl *t, size_t np, size_t nn, size_t d, double margin,
                       uint64_t seed)
{
    int tries = 0;

    memset(t, 0, sizeof *t);
    t->a.np = np;
    t->a.nn = nn;
    t->a.d = d;
    t->a.margin = margin;
    t->pos = malloc(np * d * sizeof(double));
    t->neg = malloc(nn * d * sizeof(double));
    do {
        cr_assert_lt(tries++, 10000, "no smooth random input found");
        test_rand_fill(&seed, t->pos, np * d, -1.0, 1.0);
        test_rand_fill(&seed, t->neg, nn * d, -1.2, 1.5);
    } while (!ccl_smooth(t));
    ccl_alloc(t);
}

static double ccl_eval(void *ctx)
{
    ccl *t = ctx;
    loss_coupled_cluster_out o = {0};
    loss_error err;

    cr_assert_eq(loss_coupled_cluster(&t->a, &o, &err), LOSS_OK);
    return o.loss;
}

static void ccl_fd(size_t np, size_t nn, size_t d, double margin)
{
    loss_error err;
    int r;

    for (r = 0; r < 2; r++) {
        ccl t;

        ccl_random(&t, np, nn, d, margin, UINT64_C(12345) + (unsigned)r);
        t.a.reduction = (loss_reduction)r;
        cr_assert_eq(loss_coupled_cluster(&t.a, &t.o, &err), LOSS_OK);
        cr_assert_gt(t.o.loss, 0.0);
        fd_check(ccl_eval, &t, t.pos, t.gp, np * d, 1e-6, 1e-6,
                 "grad positives");
        fd_check(ccl_eval, &t, t.neg, t.gn, nn * d, 1e-6, 1e-6,
                 "grad negatives");
        ccl_free(&t);
    }
}

Test(coupled_cluster, fd_margin1)
{
    ccl_fd(6, 4, 3, 1.0);
}
Test(coupled_cluster, fd_margin_small)
{
    ccl_fd(5, 3, 4, 0.4);
}
Test(coupled_cluster, fd_np1)
{
    ccl_fd(1, 3, 2, 6.0);
}
Test(coupled_cluster, fd_nn1)
{
    ccl_fd(4, 1, 3, 2.0);
}

/* ---- coupled_cluster: edge cases ---------------------------------------- */

/* c = (0, 1); negatives 1, 2 and 3 are all at d^2 = 1: index 1 is z*. */
Test(coupled_cluster, tie_goes_to_lowest_index)
{
    double pos[8] = {1, 2, -1, 0, 2, 1, -2, 1};
    double neg[8] = {3, 1, 0, 2, 1, 1, 0, 0};
    ccl t;
    loss_error err;
    size_t j;

    memset(&t, 0, sizeof t);
    t.a.np = 4;
    t.a.nn = 4;
    t.a.d = 2;
    t.a.margin = 1.0;
    t.a.reduction = LOSS_REDUCE_SUM;
    ccl_alloc(&t);
    t.a.positives = pos;
    t.a.negatives = neg;
    cr_assert_eq(loss_coupled_cluster(&t.a, &t.o, &err), LOSS_OK);
    /* h = {2, 2, 4, 4} - 1 + 1, halved. */
    cr_expect_eq(t.o.loss, 6.0);
    /* A = 4, z* - c = (0, 1): negative 1 gets (0, -4), the others 0. */
    for (j = 0; j < 8; j++)
        cr_expect_eq(t.gn[j], j == 3 ? -4.0 : 0.0, "gn[%zu] = %g", j, t.gn[j]);
    ccl_free(&t);
}

/* Every hinge inactive: loss 0 and all gradients exactly 0. */
Test(coupled_cluster, inactive_gives_zero)
{
    double pos[4] = {0.1, 0, -0.1, 0}, neg[4] = {10, 10, -20, 0};
    ccl t;
    loss_error err;
    size_t j;

    memset(&t, 0, sizeof t);
    t.a.np = 2;
    t.a.nn = 2;
    t.a.d = 2;
    t.a.margin = 1.0;
    ccl_alloc(&t);
    t.a.positives = pos;
    t.a.negatives = neg;
    cr_assert_eq(loss_coupled_cluster(&t.a, &t.o, &err), LOSS_OK);
    cr_expect_eq(t.o.loss, 0.0);
    for (j = 0; j < 4; j++) {
        cr_expect_eq(t.gp[j], 0.0);
        cr_expect_eq(t.gn[j], 0.0);
    }
    ccl_free(&t);
}

/* One positive is c itself: L = (margin - |z - p|^2)/2, dL/dp = z - p. */
Test(coupled_cluster, single_positive)
{
    double pos[2] = {1.0, -1.0}, neg[4] = {5, 5, 1.5, -1.0};
    ccl t;
    loss_error err;

    memset(&t, 0, sizeof t);
    t.a.np = 1;
    t.a.nn = 2;
    t.a.d = 2;
    t.a.margin = 2.0;
    ccl_alloc(&t);
    t.a.positives = pos;
    t.a.negatives = neg;
    cr_assert_eq(loss_coupled_cluster(&t.a, &t.o, &err), LOSS_OK);
    cr_expect_float_eq(t.o.loss, 0.875, 1e-15);
    cr_expect_float_eq(t.gp[0], 0.5, 1e-15);
    cr_expect_eq(t.gp[1], 0.0);
    cr_expect_float_eq(t.gn[2], -0.5, 1e-15);
    cr_expect_eq(t.gn[0], 0.0);
    ccl_free(&t);
}

Test(coupled_cluster, work_size)
{
    loss_coupled_cluster_args a = {0};

    a.d = 7;
    cr_expect_eq(loss_coupled_cluster_work(&a), 14);
}

/* ---- coupled_cluster: invalid inputs ------------------------------------ */

Test(coupled_cluster, invalid_inputs)
{
    double pos[4] = {0, 1, 2, 3}, neg[4] = {1, 1, 0, 0}, work[4];
    loss_coupled_cluster_args a = {0};
    loss_coupled_cluster_out o = {0};
    loss_error err;

    a.np = 0;
    a.nn = 2;
    a.d = 2;
    a.positives = pos;
    a.negatives = neg;
    a.margin = 1.0;
    a.work = work;
    expect_error(loss_coupled_cluster(&a, &o, &err), &err, LOSS_E_EMPTY,
                 "positives");
    a.np = 2;
    a.nn = 0;
    expect_error(loss_coupled_cluster(&a, &o, &err), &err, LOSS_E_EMPTY,
                 "negatives");
    a.nn = 2;
    a.margin = -0.1;
    expect_error(loss_coupled_cluster(&a, &o, &err), &err, LOSS_E_PARAM,
                 "margin");
    a.margin = NAN;
    expect_error(loss_coupled_cluster(&a, &o, &err), &err, LOSS_E_PARAM,
                 "margin");
    a.margin = 1.0;
    a.reduction = (loss_reduction)5;
    expect_error(loss_coupled_cluster(&a, &o, &err), &err, LOSS_E_PARAM,
                 "reduction");
    a.reduction = LOSS_REDUCE_MEAN;
    pos[3] = INFINITY;
    expect_error(loss_coupled_cluster(&a, &o, &err), &err, LOSS_E_NONFINITE,
                 "positives[1][1]");
    pos[3] = 3.0;
    neg[2] = NAN;
    expect_error(loss_coupled_cluster(&a, &o, &err), &err, LOSS_E_NONFINITE,
                 "negatives[1][0]");
    neg[2] = 0.0;
    cr_expect_eq(loss_coupled_cluster(&a, &o, &err), LOSS_OK);
}
