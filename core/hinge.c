/* hinge.c -- the binary hinge (SVM) loss and three multiclass hinge losses
 * (one-vs-all, Weston-Watkins, Crammer-Singer), each with the gradient of the
 * reduced loss with respect to the scores and, for the multiclass losses, the
 * arg-max accuracy.  See API.md, sections "hinge" and "multiclass_hinge". */
#include <math.h>

#include "loss.h"

/* max(0, z)^p for p in {1, 2}; *dz receives its derivative with respect to z,
 * taken as 0 at the kink z = 0 (the subgradient PyTorch's relu and
 * multi_margin_loss also use). */
static double hinge_term(double z, int p, double *dz)
{
    if (!(z > 0.0)) {
        *dz = 0.0;
        return 0.0;
    }
    *dz = p == 2 ? 2.0 * z : 1.0;
    return p == 2 ? z * z : z;
}

/* Checks the parameters shared by both losses. */
static int check_params(int p, double margin, loss_reduction reduction,
                        loss_error *err)
{
    if (reduction != LOSS_REDUCE_MEAN && reduction != LOSS_REDUCE_SUM)
        return loss_error_set(err, LOSS_E_PARAM, "reduction", 0, 0, 0, 0,
                              "reduction must be \"mean\" or \"sum\".");
    if (p != 1 && p != 2)
        return loss_error_set(err, LOSS_E_PARAM, "p", 0, 0, 0, 0,
                              "p is %d; it must be 1 or 2.", p);
    if (!isfinite(margin))
        return loss_error_set(err, LOSS_E_NONFINITE, "margin", 0, 0, 0, 0,
                              "margin must be a finite number.");
    return LOSS_OK;
}

/* Reports the first non-finite element of the [n][k] array x (k = 0 for a
 * one-dimensional [n] array, whose indices then have depth 1). */
static int check_finite(const double *x, size_t n, size_t k,
                        const char *field, loss_error *err)
{
    size_t cols = k ? k : 1, i;

    for (i = 0; i < n * cols; i++) {
        if (isfinite(x[i]))
            continue;
        if (k == 0)
            return loss_error_set(err, LOSS_E_NONFINITE, field, 1, i, 0, 0,
                                  "%s[%zu] is not a finite number.", field,
                                  i);
        return loss_error_set(err, LOSS_E_NONFINITE, field, 2, i / k, i % k,
                              0, "%s[%zu][%zu] is not a finite number.",
                              field, i / k, i % k);
    }
    return LOSS_OK;
}

/* ---- hinge ------------------------------------------------------------------
 * Binary hinge loss.
 *
 * Method:   per sample, with z = margin - y*s, l = max(0, z)^p (p = 2 is the
 *           squared hinge).  "mean" divides the sum of the l by N.
 * Gradient: dl/ds = -y * p * max(0, z)^(p-1), and 0 for z <= 0: the
 *           derivative of max(0, z) at the kink z = 0 is taken as 0.  The
 *           gradient of the mean carries the factor 1/N.
 * Special cases: labels must be -1 or +1 (LOSS_E_LABEL on "labels[i]");
 *           p must be 1 or 2 (LOSS_E_PARAM on "p"); margin may be any finite
 *           number (negative margins are allowed); a NaN or infinite score or
 *           margin is LOSS_E_NONFINITE; N = 0 is LOSS_E_EMPTY.
 * Accuracy: each l is one subtraction (and one product for p = 2) from the
 *           inputs, so it is within a few ulps; the reduction adds at most
 *           N ulps of relative error to the sum.
 */

size_t loss_hinge_work(const loss_hinge_args *a)
{
    (void)a;
    return 0;
}

static int hinge_validate(const loss_hinge_args *a, loss_error *err)
{
    int rc = check_params(a->p, a->margin, a->reduction, err);
    size_t i;

    if (rc != LOSS_OK)
        return rc;
    if (a->n == 0)
        return loss_error_set(err, LOSS_E_EMPTY, "scores", 0, 0, 0, 0,
                              "The batch is empty: scores has no elements.");
    if (a->scores == NULL || a->labels == NULL)
        return loss_error_set(err, LOSS_E_PARAM,
                              a->scores == NULL ? "scores" : "labels", 0, 0,
                              0, 0, "A required input is missing.");
    rc = check_finite(a->scores, a->n, 0, "scores", err);
    if (rc != LOSS_OK)
        return rc;
    for (i = 0; i < a->n; i++)
        if (a->labels[i] != -1 && a->labels[i] != 1)
            return loss_error_set(err, LOSS_E_LABEL, "labels", 1, i, 0, 0,
                                  "label %lld at index %zu is not -1 or +1.",
                                  (long long)a->labels[i], i);
    return LOSS_OK;
}

int loss_hinge(const loss_hinge_args *a, loss_hinge_out *o, loss_error *err)
{
    int rc = hinge_validate(a, err);
    double scale, sum = 0.0;
    size_t i;

    if (rc != LOSS_OK)
        return rc;
    scale = a->reduction == LOSS_REDUCE_MEAN ? 1.0 / (double)a->n : 1.0;
    for (i = 0; i < a->n; i++) {
        double y = (double)a->labels[i], dz;
        double l = hinge_term(a->margin - y * a->scores[i], a->p, &dz);

        sum += l;
        if (o->per_sample)
            o->per_sample[i] = l;
        if (o->grad_scores)
            o->grad_scores[i] = -y * dz * scale;
    }
    o->loss = a->reduction == LOSS_REDUCE_MEAN ? sum / (double)a->n : sum;
    return LOSS_OK;
}

/* ---- multiclass_hinge ---------------------------------------------------------
 * Multiclass hinge losses over scores s[K] with label y in [0, K), writing
 * h(z) = max(0, z)^p:
 *
 * Method:   one_vs_all      l = sum_j h(margin - sigma_j*s_j), sigma_y = +1
 *                               and sigma_j = -1 for j != y;
 *           weston_watkins  l = sum_{j != y} h(margin - s_y + s_j) / K,
 *                               exactly torch.nn.functional.multi_margin_loss;
 *           crammer_singer  l = h(margin + max_{j != y} s_j - s_y).
 *           "mean" divides the sum of the l by N.
 * Gradient: h'(z) = p*max(0, z)^(p-1) with h'(0) = 0 at the kink.
 *           one_vs_all: dl/ds_j = -sigma_j h'(z_j).  weston_watkins:
 *           dl/ds_j = h'(z_j)/K for j != y and dl/ds_y = -sum of those.
 *           crammer_singer: +h'(z) at the maximising j* (the lowest index
 *           among ties) and -h'(z) at y.  The mean's gradient carries 1/N.
 * Special cases: labels outside [0, K) are LOSS_E_LABEL on "labels[i]";
 *           variant, p and reduction outside their sets are LOSS_E_PARAM; a
 *           NaN or infinite score or margin is LOSS_E_NONFINITE; N = 0 is
 *           LOSS_E_EMPTY and K = 0 is LOSS_E_SHAPE.  With K = 1 there is no
 *           j != y, so weston_watkins and crammer_singer give 0 (the empty sum
 *           and the empty max) while one_vs_all keeps its single term.
 *           accuracy is the fraction of samples whose arg-max score (lowest
 *           index on ties) is the label.
 * Accuracy: every term is a difference of at most three inputs, so each l is
 *           within K ulps of relative error of the exact sum of its terms.
 */

size_t loss_multiclass_hinge_work(const loss_multiclass_hinge_args *a)
{
    (void)a;
    return 0;
}

static int mc_validate(const loss_multiclass_hinge_args *a, loss_error *err)
{
    int rc = check_params(a->p, a->margin, a->reduction, err);
    size_t i;

    if (rc != LOSS_OK)
        return rc;
    if (a->variant != LOSS_MC_ONE_VS_ALL &&
        a->variant != LOSS_MC_WESTON_WATKINS &&
        a->variant != LOSS_MC_CRAMMER_SINGER)
        return loss_error_set(err, LOSS_E_PARAM, "variant", 0, 0, 0, 0,
                              "variant must be \"one_vs_all\", "
                              "\"weston_watkins\" or \"crammer_singer\".");
    if (a->n == 0)
        return loss_error_set(err, LOSS_E_EMPTY, "scores", 0, 0, 0, 0,
                              "The batch is empty: scores has no rows.");
    if (a->k == 0)
        return loss_error_set(err, LOSS_E_SHAPE, "scores", 0, 0, 0, 0,
                              "scores has no classes: its rows are empty.");
    if (a->scores == NULL || a->labels == NULL)
        return loss_error_set(err, LOSS_E_PARAM,
                              a->scores == NULL ? "scores" : "labels", 0, 0,
                              0, 0, "A required input is missing.");
    rc = check_finite(a->scores, a->n, a->k, "scores", err);
    if (rc != LOSS_OK)
        return rc;
    for (i = 0; i < a->n; i++)
        if (a->labels[i] < 0 || (uint64_t)a->labels[i] >= a->k)
            return loss_error_set(err, LOSS_E_LABEL, "labels", 1, i, 0, 0,
                                  "label %lld at index %zu is out of range "
                                  "[0, %zu).",
                                  (long long)a->labels[i], i, a->k);
    return LOSS_OK;
}

/* Index of the largest s[j] over j in [0, k) with j != skip (skip = k skips
 * nothing), the lowest index among ties; k when no index qualifies. */
static size_t argmax_except(const double *s, size_t k, size_t skip)
{
    size_t j, best = k;

    for (j = 0; j < k; j++)
        if (j != skip && (best == k || s[j] > s[best]))
            best = j;
    return best;
}

/* One row of one_vs_all; g (may be NULL) receives dl/ds times scale. */
static double mc_one_vs_all(const loss_multiclass_hinge_args *a,
                            const double *s, size_t y, double scale,
                            double *g)
{
    double l = 0.0, dz;
    size_t j;

    for (j = 0; j < a->k; j++) {
        double sigma = j == y ? 1.0 : -1.0;

        l += hinge_term(a->margin - sigma * s[j], a->p, &dz);
        if (g)
            g[j] = -sigma * dz * scale;
    }
    return l;
}

/* One row of weston_watkins (multi_margin_loss). */
static double mc_weston_watkins(const loss_multiclass_hinge_args *a,
                                const double *s, size_t y, double scale,
                                double *g)
{
    double l = 0.0, gy = 0.0, dz, kd = (double)a->k;
    size_t j;

    for (j = 0; j < a->k; j++) {
        if (j == y)
            continue;
        l += hinge_term(a->margin - s[y] + s[j], a->p, &dz);
        if (g) {
            g[j] = dz / kd * scale;
            gy -= g[j];
        }
    }
    if (g)
        g[y] = gy;
    return l / kd;
}

/* One row of crammer_singer. */
static double mc_crammer_singer(const loss_multiclass_hinge_args *a,
                                const double *s, size_t y, double scale,
                                double *g)
{
    size_t j, r = argmax_except(s, a->k, y);
    double l = 0.0, dz = 0.0;

    if (r < a->k)
        l = hinge_term(a->margin + s[r] - s[y], a->p, &dz);
    if (g) {
        for (j = 0; j < a->k; j++)
            g[j] = 0.0;
        if (r < a->k) {
            g[r] = dz * scale;
            g[y] = -dz * scale;
        }
    }
    return l;
}

int loss_multiclass_hinge(const loss_multiclass_hinge_args *a,
                          loss_multiclass_hinge_out *o, loss_error *err)
{
    int rc = mc_validate(a, err);
    double scale, sum = 0.0, hits = 0.0;
    size_t i;

    if (rc != LOSS_OK)
        return rc;
    scale = a->reduction == LOSS_REDUCE_MEAN ? 1.0 / (double)a->n : 1.0;
    for (i = 0; i < a->n; i++) {
        const double *s = a->scores + i * a->k;
        double *g = o->grad_scores ? o->grad_scores + i * a->k : NULL;
        size_t y = (size_t)a->labels[i];
        double l;

        if (a->variant == LOSS_MC_ONE_VS_ALL)
            l = mc_one_vs_all(a, s, y, scale, g);
        else if (a->variant == LOSS_MC_WESTON_WATKINS)
            l = mc_weston_watkins(a, s, y, scale, g);
        else
            l = mc_crammer_singer(a, s, y, scale, g);
        sum += l;
        if (o->per_sample)
            o->per_sample[i] = l;
        hits += argmax_except(s, a->k, a->k) == y ? 1.0 : 0.0;
    }
    o->loss = a->reduction == LOSS_REDUCE_MEAN ? sum / (double)a->n : sum;
    o->accuracy = hits / (double)a->n;
    return LOSS_OK;
}
