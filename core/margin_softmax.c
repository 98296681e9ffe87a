/* margin_softmax.c -- Large-Margin Softmax (L-Softmax, Liu et al. 2016) and
 * Angular Softmax (A-Softmax / SphereFace, Liu et al. 2017): softmax
 * cross-entropy over a linear layer whose target logit has its angle to the
 * class weight multiplied by an integer margin m.  Both losses share one
 * engine; A-Softmax runs it on unit weight rows and then carries the weight
 * gradient back through the normalisation.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>

#include "lossInt.h"

#define MARGIN_MAX 8

/* pi to double precision; M_PI is not part of C11. */
static const double margin_pi = 3.14159265358979323846;

/* The target logit f_y of one sample and its partial derivatives, written so
 * that df_y/dx = s*w + (q*(x/b))*a and df_y/dw = s*x + (q*(w/a))*b, w the
 * target row, a = |w| and b = |x|.  x/b and w/a are unit vectors, so no
 * factor is formed that the whole term does not reach: not a/b (past
 * DBL_MAX for a subnormal x), nor q*b (for an x near DBL_MAX). */
typedef struct target_logit {
    double f, s, q, a, b;
} target_logit;

/* T_m(c) and its derivative T_m'(c) = m*U_{m-1}(c), by the three-term
 * recurrences of the Chebyshev polynomials of the first and second kind.
 * Polynomials, unlike cos(m*acos(c)), keep the derivative finite at +-1. */
static void chebyshev(int m, double c, double *t_m, double *dt_m)
{
    double tp = 1.0, t = c, up = 0.0, u = 1.0, next;
    int j;

    for (j = 1; j < m; j++) {
        next = 2.0 * c * t - tp;
        tp = t;
        t = next;
        next = 2.0 * c * u - up;
        up = u;
        u = next;
    }
    *t_m = t;
    *dt_m = (double)m * u;
}

/* The interval index k = floor(m*theta/pi) clamped to [0, m-1]. */
static int angle_interval(int m, double c)
{
    double theta = acos(fmin(1.0, fmax(-1.0, c)));
    double k = floor((double)m * theta / margin_pi);

    if (k < 0.0)
        return 0;
    return k > (double)(m - 1) ? m - 1 : (int)k;
}

/* The cosine of w and x (norms a, b > 0) from the unit vectors: w.x / a / b
 * would lose w.x to underflow for norms near 1e-200, or to overflow near
 * 1e200. */
static double unit_dot(const double *w, const double *x, double a, double b,
                       size_t d)
{
    double c = 0.0;
    size_t l;

    for (l = 0; l < d; l++)
        c += (w[l] / a) * (x[l] / b);
    return c;
}

/* f_y = (beta*w.x + |w||x|*psi(c)) / (1 + beta), wx = w.x, with
 * psi(c) = (-1)^k T_m(c) - 2k.  Writing r = |w||x| and a = |w|, b = |x|:
 *   d(r psi)/dx = psi'(c) w + (a/b)(psi - c psi') x,
 *   d(r psi)/dw = psi'(c) x + (b/a)(psi - c psi') w,
 * with k held constant.  A zero w or x gives f_y = 0 and no gradient. */
static target_logit target_logit_eval(const double *w, const double *x,
                                      double wx, size_t d, int m, double beta)
{
    target_logit t = {0.0, 0.0, 0.0, 1.0, 1.0};
    double a = loss_vec_norm(w, d), b = loss_vec_norm(x, d);
    double c, tm, dtm, sign, psi, dpsi, q;
    int k;

    if (a == 0.0 || b == 0.0) /* not a * b: that underflows for 1e-200s */
        return t;
    c = unit_dot(w, x, a, b, d);
    k = angle_interval(m, c);
    chebyshev(m, c, &tm, &dtm);
    sign = (k & 1) ? -1.0 : 1.0;
    psi = sign * tm - 2.0 * (double)k;
    dpsi = sign * dtm;
    q = (psi - c * dpsi) / (1.0 + beta);
    t.f = (beta * wx + a * b * psi) / (1.0 + beta);
    t.s = (beta + dpsi) / (1.0 + beta);
    t.q = q;
    t.a = a;
    t.b = b;
    return t;
}

/* Adds the gradients of scale * per-sample loss of sample i, whose logits'
 * gradients g = scale * (softmax(f) - onehot(y)) are in g[0..k-1]. */
static void sample_backward(const loss_margin_softmax_args *a, const double *w,
                            size_t i, const double *g, const target_logit *t,
                            loss_margin_softmax_out *o)
{
    const double *x = a->features + i * a->d;
    size_t y = (size_t)a->labels[i], j, l;
    double *gx = loss_row(o->grad_features, i, a->d);
    double *gw;
    /* g[y] first: a g[y] of 0 (one class) then makes 0, not 0 * inf */
    double gs = g[y] * t->s, gq = g[y] * t->q;

    for (l = 0; gx && l < a->d; l++)
        gx[l] = gs * w[y * a->d + l] + gq * (x[l] / t->b) * t->a;
    for (j = 0; j < a->k; j++) {
        if (j == y)
            continue;
        if (gx)
            loss_vec_axpy(gx, g[j], w + j * a->d, a->d);
        if ((gw = loss_row(o->grad_weights, j, a->d)) != NULL)
            loss_vec_axpy(gw, g[j], x, a->d);
    }
    gw = loss_row(o->grad_weights, y, a->d);
    for (l = 0; gw && l < a->d; l++)
        gw[l] += gs * x[l] + gq * (w[y * a->d + l] / t->a) * t->b;
}

/* The per-sample loss of sample i with logits taken against the rows of w;
 * f is k doubles of scratch.  Adds the scaled gradients when asked for. */
static double sample_loss(const loss_margin_softmax_args *a, const double *w,
                          size_t i, double scale, double *f,
                          loss_margin_softmax_out *o)
{
    const double *x = a->features + i * a->d;
    size_t y = (size_t)a->labels[i], j;
    target_logit t;
    double lse, loss;

    for (j = 0; j < a->k; j++)
        f[j] = loss_vec_dot(w + j * a->d, x, a->d);
    /* f[y] is w_y.x, as the target logit takes it */
    t = target_logit_eval(w + y * a->d, x, f[y], a->d, a->margin, a->beta);
    f[y] = t.f;
    lse = loss_lse(f, a->k);
    loss = lse - f[y];
    if (o->grad_features == NULL && o->grad_weights == NULL)
        return loss;
    for (j = 0; j < a->k; j++)
        f[j] = scale * (j == y ? expm1(f[j] - lse) : exp(f[j] - lse));
    sample_backward(a, w, i, f, &t, o);
    return loss;
}

/* Runs every sample against the weight rows w (raw or unit); LOSS_OK, or
 * LOSS_E_STOPPED (*err filled) when the deadline expires. */
static int margin_engine(const loss_margin_softmax_args *a, const double *w,
                         double *f, loss_margin_softmax_out *o, loss_error *err)
{
    double scale = loss_grad_scale((double)a->n, a->reduction);
    double total = 0.0, v;
    loss_ticker tk = loss_ticker_start(a->deadline);
    size_t i;

    loss_vec_zero(o->grad_weights, a->k * a->d);
    for (i = 0; i < a->n; i++) {
        if (loss_tick(&tk, a->k * a->d))
            return loss_stop(err);
        v = sample_loss(a, w, i, scale, f, o);
        if (o->per_sample)
            o->per_sample[i] = v;
        total += v;
    }
    o->loss = loss_reduce(total, (double)a->n, a->reduction);
    return LOSS_OK;
}

/* Validates what both losses share: batch, parameters, labels, numbers. */
static int margin_validate(const loss_margin_softmax_args *a, loss_error *err)
{
    int rc;

    if ((rc = loss_check_batch(err, "features", a->n)) != LOSS_OK)
        return rc;
    if (a->margin < 1 || a->margin > MARGIN_MAX)
        return loss_error_at(err, LOSS_E_PARAM, "margin", 0, 0, 0, 0,
                             "is %d, not an integer from 1 to %d.", a->margin,
                             MARGIN_MAX);
    if ((rc = loss_check_reduction(err, a->reduction)) != LOSS_OK ||
        (rc = loss_check_nonneg(err, "beta", a->beta)) != LOSS_OK ||
        (rc = loss_check_labels(err, a->labels, a->n, a->k)) != LOSS_OK ||
        (rc = loss_check_finite(err, "features", a->features, a->n, a->d)) !=
            LOSS_OK)
        return rc;
    return loss_check_finite(err, "weights", a->weights, a->k, a->d);
}

/* ---- l_softmax -------------------------------------------------------------
 * Method: for sample x with label y, f_j = w_j.x for j != y and
 *   f_y = (beta*|w_y||x|*c + |w_y||x|*psi(c)) / (1 + beta),
 *   c = w_y.x / (|w_y||x|), theta = acos(c), k = floor(m*theta/pi) clamped
 *   to [0, m-1], psi(c) = (-1)^k T_m(c) - 2k, T_m by its recurrence.
 *   The per-sample loss is log-sum-exp(f) - f_y with the maximum shifted
 *   out; mean divides by n.
 * Gradient: dL/df_j = softmax(f)_j - [j = y] (the target term as expm1),
 *   times 1/n for mean; chained through f_j = w_j.x and through f_y with k
 *   held constant (see target_logit_eval).  psi is continuous with a
 *   continuous derivative across the interval boundaries theta = j*pi/m.
 * Special cases: |w_y||x| = 0 (a zero feature vector or target row) gives
 *   f_y = 0 and f_y contributes nothing to either gradient; the other
 *   logits keep their gradients.  c is clamped to [-1, 1] only to choose k;
 *   the polynomial is evaluated at c itself.  m = 1 is softmax
 *   cross-entropy on features.weights^T for every beta.
 * Accuracy: a few ulps per dot product and norm; the loss is within a few
 *   ulps of log-sum-exp.  Scratch: k doubles (the logits of one sample).
 */
size_t loss_l_softmax_work(const loss_margin_softmax_args *a)
{
    return a->k;
}

int loss_l_softmax(const loss_margin_softmax_args *a,
                   loss_margin_softmax_out *o, loss_error *err)
{
    int rc = margin_validate(a, err);

    if (rc != LOSS_OK)
        return rc;
    assert(a->work != NULL);
    return margin_engine(a, a->weights, a->work, o, err);
}

/* Writes the unit rows w_j/|w_j| to unit and the norms to norms. */
static int normalise_rows(const loss_margin_softmax_args *a, double *unit,
                          double *norms, loss_error *err)
{
    size_t j, l;

    for (j = 0; j < a->k; j++) {
        norms[j] = loss_vec_norm(a->weights + j * a->d, a->d);
        if (norms[j] == 0.0)
            return loss_error_at(err, LOSS_E_ZERO_NORM, "weights", 1, j, 0, 0,
                                 "is a zero vector and cannot be "
                                 "normalised.");
        for (l = 0; l < a->d; l++)
            unit[j * a->d + l] = a->weights[j * a->d + l] / norms[j];
    }
    return LOSS_OK;
}

/* Turns G = dL/dw_hat in g into dL/dw = (G - (G.w_hat) w_hat) / |w|. */
static void project_rows(const loss_margin_softmax_args *a, const double *unit,
                         const double *norms, double *g)
{
    size_t j, l;
    double p;

    for (j = 0; j < a->k; j++) {
        p = loss_vec_dot(g + j * a->d, unit + j * a->d, a->d);
        for (l = 0; l < a->d; l++)
            g[j * a->d + l] =
                (g[j * a->d + l] - p * unit[j * a->d + l]) / norms[j];
    }
}

/* ---- a_softmax -------------------------------------------------------------
 * Method: every weight row is normalised, w_hat_j = w_j/|w_j|, and the
 *   l_softmax formula runs on w_hat: f_j = w_hat_j.x for j != y,
 *   f_y = (beta*|x|*c + |x|*psi(c)) / (1 + beta), c = w_hat_y.x/|x|.
 * Gradient: as l_softmax with respect to x and w_hat; the weight gradient
 *   then goes through the normalisation, dL/dw_j = (I - w_hat_j w_hat_j^T)
 *   dL/dw_hat_j / |w_j|.
 * Special cases: a zero weight row anywhere is LOSS_E_ZERO_NORM on
 *   weights[j].  A zero feature vector gives f_y = 0 and f_y contributes no
 *   gradient.  m = 1 is softmax cross-entropy on features.w_hat^T.
 * Accuracy: as l_softmax, plus a few ulps for the normalisation.
 *   Scratch: k*d + 2k doubles (unit rows, norms, logits); the size
 *   saturates at SIZE_MAX when that count does not fit in a size_t.
 */
size_t loss_a_softmax_work(const loss_margin_softmax_args *a)
{
    if (a->k > SIZE_MAX / 4 ||
        (a->d != 0 && a->k > (SIZE_MAX - 2 * a->k) / a->d))
        return SIZE_MAX;
    return a->k * a->d + 2 * a->k;
}

int loss_a_softmax(const loss_margin_softmax_args *a,
                   loss_margin_softmax_out *o, loss_error *err)
{
    double *unit, *norms, *f;
    int rc = margin_validate(a, err);

    if (rc != LOSS_OK)
        return rc;
    assert(a->work != NULL);
    unit = a->work;
    norms = unit + a->k * a->d;
    f = norms + a->k;
    rc = normalise_rows(a, unit, norms, err);
    if (rc != LOSS_OK)
        return rc;
    if ((rc = margin_engine(a, unit, f, o, err)) != LOSS_OK)
        return rc;
    if (o->grad_weights)
        project_rows(a, unit, norms, o->grad_weights);
    return LOSS_OK;
}
