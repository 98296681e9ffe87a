/* continuous.c -- the Kullback-Leibler divergence between two Gaussians with
 * diagonal covariance, in closed form, with its gradient with respect to both
 * means and both log-variances: the divergence of continuous distributions
 * when each is given by its parameters rather than by samples (samples.c). */
#include <assert.h>
#include <math.h>

#include "lossInt.h"

/* loss_gaussian_kl -- KL(p || q) of diagonal Gaussians, row by row.
 *
 * Method:
 *   Row i describes p = N(mu_p, diag e^logvar_p) and q = N(mu_q,
 *   diag e^logvar_q) in D dimensions.  With t = logvar_p - logvar_q and
 *   delta = mu_p - mu_q, per dimension
 *     KL = 1/2 [e^t - 1 - t + delta^2 e^-logvar_q],
 *   evaluated as 1/2 [(expm1(t) - t) + (delta e^(-logvar_q / 2))^2], which
 *   is exactly 0 where p = q and never forms e^-logvar_q alone (a tiny delta
 *   over a tiny variance stays finite).  per_sample is the sum over the D
 *   dimensions; "mean" divides the sum over rows by N.
 *
 * Gradient (of the per-sample value; scaled by 1/N under "mean"):
 *   d/d mu_p = delta e^-logvar_q = -d/d mu_q,
 *   d/d logvar_p = 1/2 expm1(t),
 *   d/d logvar_q = -1/2 [expm1(t) + delta^2 e^-logvar_q].
 *
 * Special cases:
 *   - N = 0 is LOSS_E_EMPTY on mu_p; D = 0 is LOSS_E_SHAPE.
 *   - NaN or infinite inputs are LOSS_E_NONFINITE at their index.
 *   - A row whose divergence overflows a double (logvar_q far below
 *     logvar_p, or a distance far beyond the standard deviation of q) is
 *     LOSS_E_INFINITE on logvar_q[i]: the true value exceeds 1.8e308.
 *
 * Accuracy:
 *   A few ulps per dimension, summed left to right; the tests hold values
 *   and gradients to 1e-10 relative of torch.distributions.kl_divergence
 *   in float64.
 *
 * Work: none.  Cost: O(N D).
 */

size_t loss_gaussian_kl_work(const loss_gaussian_kl_args *a)
{
    (void)a;
    return 0;
}

static int gkl_check(const loss_gaussian_kl_args *a, loss_error *err)
{
    int rc;

    if ((rc = loss_check_batch(err, "mu_p", a->n)) != LOSS_OK ||
        (rc = loss_check_classes(err, "mu_p", a->d)) != LOSS_OK ||
        (rc = loss_check_reduction(err, a->reduction)) != LOSS_OK ||
        (rc = loss_check_finite(err, "mu_p", a->mu_p, a->n, a->d)) != LOSS_OK ||
        (rc = loss_check_finite(err, "logvar_p", a->logvar_p, a->n, a->d)) !=
            LOSS_OK ||
        (rc = loss_check_finite(err, "mu_q", a->mu_q, a->n, a->d)) != LOSS_OK ||
        (rc = loss_check_finite(err, "logvar_q", a->logvar_q, a->n, a->d)) !=
            LOSS_OK)
        return rc;
    return LOSS_OK;
}

/* Row i: its divergence, and, when g is not 0, scale times its gradients
 * written into the outputs that are not NULL. */
static double gkl_row(const loss_gaussian_kl_args *a, loss_gaussian_kl_out *o,
                      size_t i, double g)
{
    size_t j, at;
    double sum = 0.0, t, em1, delta, z, w;

    for (j = 0; j < a->d; j++) {
        at = i * a->d + j;
        t = a->logvar_p[at] - a->logvar_q[at];
        em1 = expm1(t);
        delta = a->mu_p[at] - a->mu_q[at];
        w = exp(-0.5 * a->logvar_q[at]);
        z = delta * w;
        sum += 0.5 * ((em1 - t) + z * z);
        if (o->grad_mu_p)
            o->grad_mu_p[at] = g * (z * w);
        if (o->grad_mu_q)
            o->grad_mu_q[at] = -g * (z * w);
        if (o->grad_logvar_p)
            o->grad_logvar_p[at] = g * 0.5 * em1;
        if (o->grad_logvar_q)
            o->grad_logvar_q[at] = -g * 0.5 * (em1 + z * z);
    }
    return sum;
}

int loss_gaussian_kl(const loss_gaussian_kl_args *a, loss_gaussian_kl_out *o,
                     loss_error *err)
{
    double total = 0.0, value, g;
    size_t i;
    int rc;

    assert(a != NULL && o != NULL);
    if ((rc = gkl_check(a, err)) != LOSS_OK)
        return rc;
    g = loss_grad_scale((double)a->n, a->reduction);
    for (i = 0; i < a->n; i++) {
        value = gkl_row(a, o, i, g);
        if (!isfinite(value))
            return loss_error_at(err, LOSS_E_INFINITE, "logvar_q", 1, i, 0, 0,
                                 "gives a divergence beyond the largest "
                                 "double: q is far narrower than p or far "
                                 "from it.");
        if (o->per_sample)
            o->per_sample[i] = value;
        total += value;
    }
    o->loss = loss_reduce(total, (double)a->n, a->reduction);
    return LOSS_OK;
}
