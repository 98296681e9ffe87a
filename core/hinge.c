/* hinge.c -- the binary hinge (SVM) loss and three multiclass hinge losses
 * (one-vs-all, Weston-Watkins, Crammer-Singer), each with the gradient of the
 * reduced loss with respect to the scores and, for the multiclass losses, the
 * arg-max accuracy.  See API.md, sections "hinge" and "multiclass_hinge". */
#include "lossInt.h"

/* Checks the parameters shared by both losses. */
static int check_params(int p, double margin, loss_reduction reduction,
                        loss_error *err)
{
    int rc = loss_check_reduction(err, reduction);

    if (rc == LOSS_OK && p != 1 && p != 2)
        rc = loss_error_at(err, LOSS_E_PARAM, "p", 0, 0, 0, 0,
                           "is %d, not 1 or 2.", p);
    if (rc == LOSS_OK)
        rc = loss_check_finite_param(err, "margin", margin);
    return rc;
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
    int rc;

    if ((rc = check_params(a->p, a->margin, a->reduction, err)) != LOSS_OK ||
        (rc = loss_check_batch(err, "scores", a->n)) != LOSS_OK ||
        (rc = loss_check_present(err, "scores", a->scores)) != LOSS_OK ||
        (rc = loss_check_present(err, "labels", a->labels)) != LOSS_OK ||
        (rc = loss_check_finite_vec(err, "scores", a->scores, a->n)) != LOSS_OK)
        return rc;
    return loss_check_labels_pair(err, a->labels, a->n, -1, 1);
}

int loss_hinge(const loss_hinge_args *a, loss_hinge_out *o, loss_error *err)
{
    int rc = hinge_validate(a, err);
    double scale, sum = 0.0;
    size_t i;

    if (rc != LOSS_OK)
        return rc;
    scale = loss_grad_scale((double)a->n, a->reduction);
    for (i = 0; i < a->n; i++) {
        double y = (double)a->labels[i], dz;
        double l = loss_hinge_term(a->margin - y * a->scores[i], a->p, &dz);

        sum += l;
        if (o->per_sample)
            o->per_sample[i] = l;
        if (o->grad_scores)
            o->grad_scores[i] = -y * dz * scale;
    }
    o->loss = loss_reduce(sum, (double)a->n, a->reduction);
    return LOSS_OK;
}

/* ---- multiclass_hinge -------------------------------------------------------
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
    int rc;

    if ((rc = check_params(a->p, a->margin, a->reduction, err)) != LOSS_OK ||
        (rc = loss_check_choice(err, "variant", (int)a->variant, 3,
                                "\"one_vs_all\", \"weston_watkins\" or "
                                "\"crammer_singer\"")) != LOSS_OK ||
        (rc = loss_check_batch(err, "scores", a->n)) != LOSS_OK ||
        (rc = loss_check_classes(err, "scores", a->k)) != LOSS_OK ||
        (rc = loss_check_present(err, "scores", a->scores)) != LOSS_OK ||
        (rc = loss_check_present(err, "labels", a->labels)) != LOSS_OK ||
        (rc = loss_check_finite(err, "scores", a->scores, a->n, a->k)) !=
            LOSS_OK)
        return rc;
    return loss_check_labels(err, a->labels, a->n, a->k);
}

/* Index of the largest s[j] over j in [0, k) with j != skip, the lowest
 * index among ties; k when no index qualifies (k = 1). */
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
                            const double *s, size_t y, double scale, double *g)
{
    double l = 0.0, dz;
    size_t j;

    for (j = 0; j < a->k; j++) {
        double sigma = j == y ? 1.0 : -1.0;

        l += loss_hinge_term(a->margin - sigma * s[j], a->p, &dz);
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
        l += loss_hinge_term(a->margin - s[y] + s[j], a->p, &dz);
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
        l = loss_hinge_term(a->margin + s[r] - s[y], a->p, &dz);
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
    scale = loss_grad_scale((double)a->n, a->reduction);
    for (i = 0; i < a->n; i++) {
        const double *s = a->scores + i * a->k;
        double *g = loss_row(o->grad_scores, i, a->k);
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
        hits += loss_vec_argmax(s, a->k) == y ? 1.0 : 0.0;
    }
    o->loss = loss_reduce(sum, (double)a->n, a->reduction);
    o->accuracy = hits / (double)a->n;
    return LOSS_OK;
}
