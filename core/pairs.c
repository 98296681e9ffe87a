/* pairs.c -- losses over pairs and clusters of embeddings: the Siamese
 * contrastive loss (three variants, summed over one or several layers) and the
 * Coupled Clusters loss of Liu et al. (2016).  Both are built from squared
 * Euclidean distances and return the gradient of the reduced loss with
 * respect to every embedding. */
#include <assert.h>
#include <math.h>

#include "lossInt.h"

/* ---- contrastive -----------------------------------------------------------
 *
 * For a pair (x1, x2) with label y (1 = matching) and, in each layer l,
 * D = ||x1_l - x2_l|| and d = D^2, the layer's term is
 *   seed:          1/2 [y d + (1-y) max(margin - d, 0)]
 *   hadsell:       1/2 [y D^2 + (1-y) max(margin - D, 0)^2]
 *   double_margin: 1/2 [y max(d - pos_margin, 0)
 *                       + (1-y) max(neg_margin - d, 0)]
 * and the pair's per-sample value is the sum of its layers' terms.  "mean"
 * divides the sum of the per-sample values by n.
 *
 * Method: each term is a function t(D) of the layer's distance alone.  D
 * comes from loss_vec_dist, which rescales the differences when their squares
 * would underflow or overflow; d is D^2.
 *
 * Gradient: t'(D) (x1_l - x2_l) / D with respect to x1_l and the negative of
 * that with respect to x2_l, times 1/n for "mean".  The unit vector
 * (x1_l - x2_l) / D is formed before multiplying by t'(D), so the hadsell
 * gradient stays finite for distances down to the smallest subnormal.  A
 * hinge whose argument is exactly 0 is inactive (zero value and gradient).
 *
 * Metrics: mean_distance_pos is the mean over the pairs labelled 1 of the
 * pair's Euclidean distance ||x1 - x2||, which with several layers is the sum
 * over the layers of each layer's distance; mean_distance_neg is the same
 * over the pairs labelled 0.  Either is NaN when the batch has no such pair.
 *
 * Special cases: where D = 0 the gradient is 0 (the direction is undefined),
 * which is exact for every variant except a non-matching hadsell pair, where
 * the contract takes it as 0.  n = 0 or layers = 0 is LOSS_E_EMPTY ("x1").
 * Labels other than 0 and 1 are LOSS_E_LABEL; margin, pos_margin and
 * neg_margin must be finite and >= 0 whatever the variant (LOSS_E_PARAM).  A
 * non-finite element of x1 or x2 is LOSS_E_NONFINITE located at depth 3
 * (x1[l][i][j]) when layers > 1 and depth 2 (x1[i][j]) when layers == 1: a
 * caller that received a single layer as an [1][N][D] array must prepend the
 * layer index 0 itself.
 *
 * Accuracy: a few ulps per term; the reductions are plain sums, so the loss
 * is within about n ulps of the exact value.  d = D^2 (seed, double_margin,
 * matching hadsell pairs) overflows to infinity only when the true distance
 * exceeds about 1.3e154; the metrics stay finite up to DBL_MAX.
 */

size_t loss_contrastive_work(const loss_contrastive_args *a)
{
    (void)a;
    return 0;
}

/* Layer l of x1 or x2, located at depth 3 when the input has several layers
 * and at depth 2 (field[i][j]) when it has one. */
static int contrastive_check_layer(const loss_contrastive_args *a,
                                   const char *field, const double *x, size_t l,
                                   loss_error *err)
{
    if (a->layers > 1)
        return loss_check_finite_layer(err, field, l, x, a->n, a->d[l]);
    return loss_check_finite(err, field, x, a->n, a->d[l]);
}

static int contrastive_check(const loss_contrastive_args *a, loss_error *err)
{
    size_t l;
    int rc;

    if ((rc = loss_check_batch(err, "x1", a->layers ? a->n : 0)) != LOSS_OK ||
        (rc = loss_check_nonneg(err, "margin", a->margin)) != LOSS_OK ||
        (rc = loss_check_nonneg(err, "pos_margin", a->pos_margin)) != LOSS_OK ||
        (rc = loss_check_nonneg(err, "neg_margin", a->neg_margin)) != LOSS_OK ||
        (rc = loss_check_reduction(err, a->reduction)) != LOSS_OK ||
        (rc = loss_check_choice(err, "variant", (int)a->variant, 3,
                                "\"seed\", \"hadsell\" or "
                                "\"double_margin\"")) != LOSS_OK ||
        (rc = loss_check_labels_pair(err, a->labels, a->n, 0, 1)) != LOSS_OK)
        return rc;
    for (l = 0; l < a->layers; l++)
        if ((rc = contrastive_check_layer(a, "x1", a->x1[l], l, err)) !=
                LOSS_OK ||
            (rc = contrastive_check_layer(a, "x2", a->x2[l], l, err)) !=
                LOSS_OK)
            return rc;
    return LOSS_OK;
}

/* One layer's term t(D) = 1/2 h(gap) for a pair with label y, h the hinge
 * of its variant (squared for a non-matching hadsell pair); *slope = t'(D). */
static double contrastive_term(const loss_contrastive_args *a, int y,
                               double dist, double *slope)
{
    double sq = dist * dist, gap, dgap, dz, h;
    int p = 1;

    if (y && a->variant != LOSS_CONTRASTIVE_DOUBLE_MARGIN) {
        *slope = dist;
        return 0.5 * sq;
    }
    if (a->variant == LOSS_CONTRASTIVE_DOUBLE_MARGIN) {
        gap = y ? sq - a->pos_margin : a->neg_margin - sq;
        dgap = y ? 2.0 * dist : -2.0 * dist;
    } else if (a->variant == LOSS_CONTRASTIVE_HADSELL) {
        gap = a->margin - dist;
        dgap = -1.0;
        p = 2;
    } else {
        gap = a->margin - sq;
        dgap = -2.0 * dist;
    }
    h = loss_hinge_term(gap, p, &dz);
    *slope = 0.5 * dz * dgap;
    return 0.5 * h;
}

/* Writes the gradient rows of pair i in layer l: w * (x1 - x2) / dist for
 * x1 and its negative for x2 (zero rows when dist is 0). */
static void contrastive_grad_rows(const loss_contrastive_args *a,
                                  loss_contrastive_out *o, size_t l, size_t i,
                                  double w, double dist)
{
    size_t k = a->d[l];
    double *g1 = o->grad_x1 ? loss_row(o->grad_x1[l], i, k) : NULL;
    double *g2 = o->grad_x2 ? loss_row(o->grad_x2[l], i, k) : NULL;

    loss_vec_zero(g1, k);
    loss_vec_zero(g2, k);
    loss_vec_dist_grad(g1, g2, a->x1[l] + i * k, a->x2[l] + i * k, k, dist, w,
                       LOSS_DIST_EUCLIDEAN);
}

/* Pair i: its per-sample value; *dist receives the sum of its layers'
 * distances, and its gradient rows are written with weight w. */
static double contrastive_pair(const loss_contrastive_args *a,
                               loss_contrastive_out *o, size_t i, double w,
                               double *dist)
{
    int y = a->labels[i] == 1;
    double value = 0.0, dl, slope;
    size_t l, k;

    *dist = 0.0;
    for (l = 0; l < a->layers; l++) {
        k = a->d[l];
        dl = loss_vec_dist(a->x1[l] + i * k, a->x2[l] + i * k, k);
        value += contrastive_term(a, y, dl, &slope);
        *dist += dl;
        if (o->grad_x1 != NULL || o->grad_x2 != NULL)
            contrastive_grad_rows(a, o, l, i, w * slope, dl);
    }
    return value;
}

int loss_contrastive(const loss_contrastive_args *a, loss_contrastive_out *o,
                     loss_error *err)
{
    double w, total = 0.0, sum[2] = {0.0, 0.0}, v, dist;
    size_t count[2] = {0, 0}, i;
    int rc, y;

    if ((rc = contrastive_check(a, err)) != LOSS_OK)
        return rc;
    w = loss_grad_scale((double)a->n, a->reduction);
    for (i = 0; i < a->n; i++) {
        v = contrastive_pair(a, o, i, w, &dist);
        if (o->per_sample != NULL)
            o->per_sample[i] = v;
        total += v;
        y = a->labels[i] == 1;
        sum[y] += dist;
        count[y]++;
    }
    o->loss = loss_reduce(total, (double)a->n, a->reduction);
    o->mean_distance_pos = count[1] ? sum[1] / (double)count[1] : NAN;
    o->mean_distance_neg = count[0] ? sum[0] / (double)count[0] : NAN;
    return LOSS_OK;
}

/* ---- coupled_cluster -------------------------------------------------------
 *
 * With c the mean of the np positives and z* the negative nearest to c by
 * squared distance (the lowest index among equals), each positive p_i has
 *   h_i = ||p_i - c||^2 - ||z* - c||^2 + margin,  value 1/2 max(h_i, 0),
 * and "mean" divides the sum of the values by np.
 *
 * Method: c is the plain column mean; z* is found by a linear scan that
 * replaces the best only on a strictly smaller d^2.  args->work holds c and
 * the gradient with respect to c: loss_coupled_cluster_work gives 2 d
 * doubles.
 *
 * Gradient: with a_i = w [h_i > 0] (w = 1/np for mean, 1 for sum) and
 * A = sum a_i, the gradient with respect to c is
 *   g_c = A (z* - c) - sum_i a_i (p_i - c),
 * so the gradient with respect to p_k is a_k (p_k - c) + g_c / np (c moves
 * with every positive) and with respect to z* is -A (z* - c); every other
 * negative has a zero gradient.  The choice of z* is held constant, as an
 * arg-min is.
 *
 * Special cases: np = 0 or nn = 0 is LOSS_E_EMPTY ("positives",
 * "negatives"); margin must be finite and >= 0.  A non-finite element is
 * LOSS_E_NONFINITE at depth 2.  A hinge whose argument is exactly 0 has a
 * zero gradient; when np = 1 the positive is c itself and its distance is 0.
 *
 * Accuracy: c carries about np ulps of rounding from its sum; each h_i is the
 * difference of two squared distances, so it loses relative accuracy only
 * when they nearly cancel (and then h_i is near the hinge's kink).  Squared
 * distances overflow when coordinates differ by more than about 1e154.
 */

size_t loss_coupled_cluster_work(const loss_coupled_cluster_args *a)
{
    return 2 * a->d;
}

static int coupled_cluster_check(const loss_coupled_cluster_args *a,
                                 loss_error *err)
{
    int rc;

    if ((rc = loss_check_batch(err, "positives", a->np)) != LOSS_OK ||
        (rc = loss_check_batch(err, "negatives", a->nn)) != LOSS_OK ||
        (rc = loss_check_nonneg(err, "margin", a->margin)) != LOSS_OK ||
        (rc = loss_check_reduction(err, a->reduction)) != LOSS_OK ||
        (rc = loss_check_finite(err, "positives", a->positives, a->np, a->d)) !=
            LOSS_OK)
        return rc;
    return loss_check_finite(err, "negatives", a->negatives, a->nn, a->d);
}

/* The mean of column j of the positives as the sum of p/np: slower and
 * rounded once more per term, but finite whenever the inputs are. */
static double column_mean_scaled(const loss_coupled_cluster_args *a, size_t j)
{
    double m = 0.0, n = (double)a->np;
    size_t i;

    for (i = 0; i < a->np; i++)
        m += a->positives[i * a->d + j] / n;
    return m;
}

/* c = the mean of the positives, into c[0..d-1]: the sum divided by np,
 * or, where that sum passes DBL_MAX (positives near 1e308), the sum of
 * each divided by np. */
static void cluster_center(const loss_coupled_cluster_args *a, double *c)
{
    size_t i, j, d = a->d;

    loss_vec_zero(c, d);
    for (i = 0; i < a->np; i++)
        for (j = 0; j < d; j++)
            c[j] += a->positives[i * d + j];
    for (j = 0; j < d; j++) {
        c[j] /= (double)a->np;
        if (!isfinite(c[j]))
            c[j] = column_mean_scaled(a, j);
    }
}

/* Index of the negative nearest to c (lowest index on ties); *sq its d^2. */
static size_t nearest_negative(const loss_coupled_cluster_args *a,
                               const double *c, double *sq)
{
    size_t j, best = 0;
    double s;

    *sq = loss_vec_sqdist(a->negatives, c, a->d);
    for (j = 1; j < a->nn; j++) {
        s = loss_vec_sqdist(a->negatives + j * a->d, c, a->d);
        if (s < *sq) {
            *sq = s;
            best = j;
        }
    }
    return best;
}

/* Per-sample values and the direct gradient a_i (p_i - c) of each positive;
 * accumulates sum_i a_i (p_i - c) into s[0..d-1] and returns the loss sum. */
static double cluster_hinges(const loss_coupled_cluster_args *a,
                             loss_coupled_cluster_out *o, const double *c,
                             double neg_sq, double w, double *s, double *big_a)
{
    size_t i, j, d = a->d;
    const double *p;
    double h, total = 0.0, ai, dz;

    *big_a = 0.0;
    loss_vec_zero(s, d);
    for (i = 0; i < a->np; i++) {
        p = a->positives + i * d;
        h = loss_hinge_term(loss_vec_sqdist(p, c, d) - neg_sq + a->margin, 1,
                            &dz);
        if (o->per_sample != NULL)
            o->per_sample[i] = 0.5 * h;
        total += 0.5 * h;
        ai = w * dz;
        *big_a += ai;
        for (j = 0; j < d; j++) {
            s[j] += ai * (p[j] - c[j]);
            if (o->grad_positives != NULL)
                o->grad_positives[i * d + j] = ai * (p[j] - c[j]);
        }
    }
    return total;
}

/* Adds the gradient through c to every positive and writes the negatives'
 * gradient; s holds sum_i a_i (p_i - c) on entry. */
static void cluster_backward(const loss_coupled_cluster_args *a,
                             loss_coupled_cluster_out *o, const double *c,
                             size_t star, double big_a, double *s)
{
    size_t i, j, d = a->d;
    const double *z = a->negatives + star * d;

    for (j = 0; j < d; j++)
        s[j] = (big_a * (z[j] - c[j]) - s[j]) / (double)a->np;
    if (o->grad_positives != NULL)
        for (i = 0; i < a->np; i++)
            for (j = 0; j < d; j++)
                o->grad_positives[i * d + j] += s[j];
    if (o->grad_negatives != NULL) {
        loss_vec_zero(o->grad_negatives, a->nn * d);
        for (j = 0; j < d; j++)
            o->grad_negatives[star * d + j] = -big_a * (z[j] - c[j]);
    }
}

int loss_coupled_cluster(const loss_coupled_cluster_args *a,
                         loss_coupled_cluster_out *o, loss_error *err)
{
    double *c = a->work, *s, w, neg_sq, big_a, total;
    size_t star;
    int rc;

    if ((rc = coupled_cluster_check(a, err)) != LOSS_OK)
        return rc;
    assert(a->d == 0 || a->work != NULL);
    s = c != NULL ? c + a->d : NULL;
    w = loss_grad_scale((double)a->np, a->reduction);
    cluster_center(a, c);
    star = nearest_negative(a, c, &neg_sq);
    total = cluster_hinges(a, o, c, neg_sq, w, s, &big_a);
    o->loss = loss_reduce(total, (double)a->np, a->reduction);
    cluster_backward(a, o, c, star, big_a, s);
    return LOSS_OK;
}
