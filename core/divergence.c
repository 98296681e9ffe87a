/* divergence.c -- Kullback-Leibler divergence, Jensen-Shannon divergence and
 * cross-entropy between the rows of two discrete distributions p (the
 * reference) and q (the prediction), given as probabilities, logits or
 * log-probabilities, with the gradients of the reduced loss and the family's
 * metrics (API.md, "kl, js, cross_entropy"). */
#include <assert.h>
#include <float.h>
#include <math.h>

#include "lossInt.h"

/* loss_divergence -- kl, js and cross_entropy.
 *
 * Method:
 *   Each row of p and of q is first turned into a distribution u:
 *     probs      u = x (every x >= 0 and |sum x - 1| <= 1e-6), or with
 *                normalize u = x / sum x, computed as (x/max)/sum(x/max) so
 *                that rows near DBL_MAX do not overflow;
 *     logits     log u = x - logsumexp(x), max-shifted;
 *     log_probs  log u = x as given (|logsumexp(x)| <= 1e-6), or with
 *                normalize log u = x - logsumexp(x).
 *   Then, in every input mode, eps > 0 smooths it: v = (u + eps)/(1 + K eps),
 *   log v = log(u + eps) - log1p(K eps); with eps = 0, v = u.  Every sum
 *   below works on log v (l), so logits of +-1000 give exact finite answers
 *   where v itself underflows.  With P, Q the final rows of p and q and
 *   M = (P + Q)/2, per sample (natural logs, 0 log 0 = 0):
 *     kl             sum P (lP - lQ)
 *     cross_entropy  -sum P lQ
 *     js             1/2 sum [P a(lP - lQ) + Q a(lQ - lP)], where
 *                    a(t) = log(P/M) = log 2 - log(1 + e^-t).  Where P and
 *                    Q are both >= DBL_MIN it comes from the values: with
 *                    r = |P - Q|/(P + Q), log1p(r) for the larger side and
 *                    log1p(-r), or log(2 min(P, Q)/(P + Q)) for r > 1/2,
 *                    for the smaller, one log each (div_block).  Elsewhere
 *                    (zeros, subnormals, values that underflowed from
 *                    logits) it comes from the logs, as -log1p(expm1(-t)/2)
 *                    for t >= -1 (exact 0 at P = Q) and log 2 + t -
 *                    log1p(e^t) below;
 *     js, distance   sqrt(JSD / ln base), as scipy's jensenshannon.
 *   Every value is divided by ln(base); "mean" divides the sum by N.
 *
 * Gradient:
 *   With respect to the final values: kl and cross_entropy dL/dQ = -P/Q,
 *   dL/dlQ = -P; js dL/dQ = a(lQ - lP)/2, dL/dP = a(lP - lQ)/2.  These are
 *   carried back to the input as given: through eps (factor 1/(1 + K eps)),
 *   through normalize (dL/dx = (g - sum u g)/sum x), through softmax for
 *   logits and normalised log_probs (dL/dx = g_l - u sum g_l), or directly
 *   (probs and log_probs as given: the partial derivative with respect to
 *   each entry, the sum constraint not imposed).  The distance form
 *   multiplies by 1/(2 sqrt(JSD)), and by 0 where JSD = 0.
 *
 * Special cases:
 *   - kl, cross_entropy: P_j > 0 with Q_j = 0 is LOSS_E_INFINITE on q[row];
 *     eps > 0 removes it.  P_j = 0 gives a 0 gradient on q_j.
 *   - js with probs and eps = 0: the derivative for Q_j = 0 < P_j is
 *     -INFINITY (and for P_j = 0 < Q_j on p); where P_j = Q_j = 0 it is the
 *     one-sided limit log(2)/2.  Infinite components stay infinite through
 *     normalize.
 *   - Metrics kl_pq, kl_qp and cross_entropy are +INFINITY where undefined.
 *   - JSD is clamped at 0 before the square root (rounding can leave -1e-17).
 *   - With base < 1 every value is negative (1/ln base < 0): the distance
 *     form is then LOSS_E_PARAM on base, and the js_distance metric NaN.
 *   - NaN and +-Inf inputs are LOSS_E_NONFINITE in every mode (a log-
 *     probability of -Inf is rejected: use probs for exact zeros).
 *
 * Accuracy:
 *   A few ulps per term, summed left to right over the row; the tests hold
 *   values and gradients to 1e-10 relative of float64 references, with
 *   probabilities down to 1e-300 and logits of +-1000.  a(t) from the
 *   values is within 4.3 ulps of log(P/M) (4 million pairs from 1e-300 to
 *   1 and near-equal pairs, against long double) with libm's log; with
 *   loss_log_array's, 32 million ratios of pairs from 1e-300 to 1 were
 *   within 5 ulps (4.0 with libm's on the same test); from the logs it keeps
 *   only the absolute accuracy of lP - lQ, about 1e-15, which is all
 *   there is when a value has underflowed.
 */

#define DIV_SUM_TOL 1e-6
#define DIV_LN2 0.693147180559945309417232121458176568

/* One prepared row of p or q: u before eps, v after, l = log v (-INFINITY
 * where v = 0).  m and s undo the normalisation of probs rows in the
 * gradient (the row sum is m * s).  For js, a (when not NULL) receives
 * log(V/M) of this side against the other (div_mid_log_ratio) from the
 * metric pass, so the gradient does not evaluate it again; it is the
 * side's gradient row, which the gradient then overwrites. */
typedef struct div_side {
    const double *u, *v; /* the input row itself where nothing changes it */
    double *ubuf, *vbuf, *l, *a;
    double m, s;
    int lazy; /* l = log v is left to the row pass (div_row_stats) */
} div_side;

/* Per-row sums in nats. */
typedef struct div_stats {
    double kl_pq, kl_qp, js, ce, h_p, h_q;
} div_stats;

static const char *const div_names[] = {"kl", "js", "cross_entropy"};

static int div_check_params(const loss_divergence_args *a, loss_error *err)
{
    char buf[32];
    int rc;

    if ((rc = loss_check_batch(err, "p", a->n)) != LOSS_OK ||
        (rc = loss_check_classes(err, "p", a->k)) != LOSS_OK)
        return rc;
    if ((unsigned)a->kind > (unsigned)LOSS_DIV_CROSS_ENTROPY)
        return loss_error_set(err, LOSS_E_PARAM, NULL, 0, 0, 0, 0,
                              "The divergence kind %d is unknown.",
                              (int)a->kind);
    if ((rc = loss_check_choice(err, "input", (int)a->input, 3,
                                "\"probs\", \"logits\" or \"log_probs\"")) !=
            LOSS_OK ||
        (rc = loss_check_reduction(err, a->reduction)) != LOSS_OK)
        return rc;
    if (!isfinite(a->base) || a->base <= 0 || a->base == 1)
        return loss_error_at(err, LOSS_E_PARAM, "base", 0, 0, 0, 0,
                             "is %s, not a finite number > 0 other than 1.",
                             loss_number_text(a->base, buf, sizeof buf));
    if ((rc = loss_check_nonneg(err, "eps", a->eps)) != LOSS_OK)
        return rc;
    if (!isfinite((double)a->k * a->eps))
        return loss_error_at(err, LOSS_E_PARAM, "eps", 0, 0, 0, 0,
                             "is %g, so large that K*eps overflows.", a->eps);
    if (a->kind == LOSS_DIV_JS && a->distance && a->base < 1)
        return loss_error_at(err, LOSS_E_PARAM, "base", 0, 0, 0, 0,
                             "is %g, below 1, where JSD is negative: the "
                             "Jensen-Shannon distance needs base > 1.",
                             a->base);
    return LOSS_OK;
}

/* One pass over a probabilities row: whether every x is finite and >= 0,
 * and (when so) its largest value and its sum, in four independent chains
 * so that the loop runs at the speed of its loads rather than of
 * dependent additions.  The maximum is exact in any order; the sum is only
 * compared with 1, see div_prep_probs. */
static int div_probs_scan(const double *x, size_t k, double *max, double *sum)
{
    double s[4] = {0, 0, 0, 0}, m[4] = {0, 0, 0, 0};
    size_t j, c;
    int ok = 1;

    for (j = 0; j + 4 <= k; j += 4)
        for (c = 0; c < 4; c++) {
            double v = x[j + c];

            ok &= v >= 0 && v <= DBL_MAX;
            s[c] += v;
            m[c] = v > m[c] ? v : m[c];
        }
    for (; j < k; j++) {
        ok &= x[j] >= 0 && x[j] <= DBL_MAX;
        s[0] += x[j];
        m[0] = x[j] > m[0] ? x[j] : m[0];
    }
    m[0] = m[0] > m[1] ? m[0] : m[1];
    m[2] = m[2] > m[3] ? m[2] : m[3];
    *max = m[0] > m[2] ? m[0] : m[2];
    *sum = (s[0] + s[1]) + (s[2] + s[3]);
    return ok;
}

/* The first element of a row that is not finite or is below 0. */
static int div_probs_bad(const double *x, size_t k, const char *field,
                         size_t row, loss_error *err)
{
    size_t j;

    for (j = 0; j < k; j++) {
        if (!isfinite(x[j]))
            return loss_error_nonfinite(err, field, 2, row, j, 0, x[j]);
        if (x[j] < 0)
            return loss_error_at(err, LOSS_E_PROB, field, 2, row, j, 0,
                                 "is %g, below 0: probabilities must be "
                                 ">= 0.",
                                 x[j]);
    }
    return LOSS_OK;
}

/* Probabilities: checks the row and sets s->u; log u is left to the row
 * pass or to eps.  Without normalize the sum only decides |sum - 1| <=
 * 1e-6: the scan's sum and the sum left to right, of k terms >= 0 adding
 * to about 1, each lie within k/2 ulps of 1 of the exact sum, so only a
 * row within 4e-16 k of the limit is summed again in order, which keeps
 * every decision and message as they were. */
static int div_prep_probs(const double *x, size_t k, int normalize,
                          const char *field, size_t row, div_side *s,
                          loss_error *err)
{
    double m, sum = 0;
    size_t j;

    if (!div_probs_scan(x, k, &m, &sum))
        return div_probs_bad(x, k, field, row, err);
    if (normalize && m == 0)
        return loss_error_at(err, LOSS_E_PROB, field, 1, row, 0, 0,
                             "sums to 0 and cannot be normalised.");
    s->m = normalize ? m : 1.0;
    if (normalize || fabs(sum - 1.0) > DIV_SUM_TOL - 4e-16 * (double)k)
        for (sum = 0, j = 0; j < k; j++)
            sum += normalize ? x[j] / m : x[j];
    if (!normalize && fabs(sum - 1.0) > DIV_SUM_TOL)
        return loss_error_at(err, LOSS_E_PROB, field, 1, row, 0, 0,
                             "sums to %.17g, not 1; set normalize to divide "
                             "each row by its sum.",
                             sum);
    s->s = normalize ? sum : 1.0;
    s->u = x;
    if (normalize) {
        for (j = 0; j < k; j++)
            s->ubuf[j] = x[j] / s->m / s->s;
        s->u = s->ubuf;
    }
    return LOSS_OK;
}

/* Logits and log-probabilities: fills s->l = log u and s->u. */
static int div_prep_logs(const double *x, size_t k, int softmax,
                         const char *field, size_t row, div_side *s,
                         loss_error *err)
{
    double lse;
    size_t j;

    for (j = 0; j < k; j++)
        if (!isfinite(x[j]))
            return loss_error_nonfinite(err, field, 2, row, j, 0, x[j]);
    lse = loss_lse(x, k);
    if (!softmax && fabs(lse) > DIV_SUM_TOL)
        return loss_error_at(err, LOSS_E_PROB, field, 1, row, 0, 0,
                             "has log-sum-exp %.17g, not 0; set normalize to "
                             "normalise it.",
                             lse);
    for (j = 0; j < k; j++) {
        s->l[j] = softmax ? x[j] - lse : x[j];
        s->ubuf[j] = loss_exp(s->l[j]);
    }
    s->u = s->ubuf;
    return LOSS_OK;
}

/* Prepares row `row` of p or q: conversion, normalisation, then eps. */
static int div_prep(const loss_divergence_args *a, const double *x,
                    const char *field, size_t row, div_side *s, loss_error *err)
{
    size_t j, k = a->k;
    double keps = (double)k * a->eps, lden = a->eps > 0 ? log1p(keps) : 0.0;
    int rc;

    if (a->input == LOSS_INPUT_PROBS)
        rc = div_prep_probs(x, k, a->normalize, field, row, s, err);
    else
        rc = div_prep_logs(x, k, a->input == LOSS_INPUT_LOGITS || a->normalize,
                           field, row, s, err);
    if (rc != LOSS_OK)
        return rc;
    s->v = s->u;
    s->lazy = a->input == LOSS_INPUT_PROBS && !(a->eps > 0);
    if (a->eps > 0) {
        for (j = 0; j < k; j++) {
            s->vbuf[j] = (s->u[j] + a->eps) / (1.0 + keps);
            s->l[j] = log(s->u[j] + a->eps) - lden;
        }
        s->v = s->vbuf;
    }
    return LOSS_OK;
}

/* a(lx - ly) = log(X/M), M = (X + Y)/2, from the logs of X and Y.  Where
 * both are 0 it returns the limit log 2 that the js gradient needs. */
static double div_mid_log_ratio(double lx, double ly)
{
    double t;

    if (lx == -INFINITY && ly == -INFINITY)
        return DIV_LN2;
    t = lx - ly;
    if (t >= -1.0)
        return -log1p(0.5 * expm1(-t));
    return DIV_LN2 + t - log1p(exp(t));
}

/* Columns per block of the row pass, whose scratch lives on the stack: the
 * block's log arguments are formed, their logs taken in one call to
 * loss_log_array (four at a time where the processor allows), then used.
 * On js 1000x1000, best of five: 16.8 ns per element with 16 or 8, 18.4
 * with 4, 19.0 with 32; libm's log one at a time took 19.7. */
#define DIV_BLOCK 16

/* Where P and Q are both >= DBL_MIN, log(P/M) and log(Q/M) come from the
 * values rather than the logs.  With s = P + Q and r = |P - Q|/s in
 * [0, 1), the larger side's ratio is 1 + r and the smaller's
 * 1 - r = 2 min(P, Q)/s.  log1p(r) is well conditioned for r >= 0 and
 * log1p(-r) for r <= 1/2; above, where 1 - fl(r) would keep only the
 * absolute error of r, the ratio 2 min/s (a few ulps, >= DBL_MIN) goes to
 * log instead.  Each is one log of an argument w plus a correction c/w
 * (loss_log1p's Fast2Sum, 0 for the 2 min/s form), so a column costs two
 * logs, one division and no branch, against an expm1 and a log1p per side for
 * div_mid_log_ratio, which stays for zeros and subnormals (values that
 * have lost their precision while their logs have not).  The arguments of
 * a block are gathered first and their logs taken in one call of their
 * own (see DIV_BLOCK).  c/w is taken as c (2 - w): c is at
 * most half an ulp of w and the error c (w - 1)^2/w, relative to a log
 * of magnitude >= |w - 1|, is below 2^-53; with the rounding of r each
 * ratio stays within about 4 ulps.
 *   When the logs of probabilities are still to be taken (lazy sides), a
 * third log gives log max(P, Q), and the other is log max - t, where
 * t = log(max/min) = log1p(r) - log(1 - r) is the difference of the two
 * ratios: for max <= 1 both terms of each difference share a sign, so
 * nothing cancels (within 4 ulps of log min, measured as above), and a
 * column costs three logs instead of four.  An unnormalised row may hold
 * values up to 1 + 1e-6, whose log > 0 can cancel against t, but only to
 * an absolute error near 1e-22. */
typedef struct div_block {
    /* [0, n): 1 + r; [n, 2n): 1 - r or 2 min/s; [2n, 3n): max(P, Q) */
    double arg[3 * DIV_BLOCK];
    double cor[2 * DIV_BLOCK]; /* the corrections c/w */
    double lg[3 * DIV_BLOCK];  /* log(arg) */
} div_block;

static void div_block_args(const double *pv, const double *qv, size_t n,
                           int lazy, div_block *b)
{
    size_t j;

    for (j = 0; j < n; j++) {
        /* Columns left to div_mid_log_ratio take the harmless P = Q = 1. */
        int fast = pv[j] >= DBL_MIN && qv[j] >= DBL_MIN;
        double x = fast ? pv[j] : 1.0, y = fast ? qv[j] : 1.0;
        double sum = x + y, inv = 1.0 / sum, r = fabs(x - y) * inv;
        double w1 = 1.0 + r, c1 = r - (w1 - 1.0), wn = 1.0 - r;
        int near = r <= 0.5;
        double w2s[2] = {2.0 * (x < y ? x : y) * inv, wn};
        double w2 = w2s[near], c2 = (-r - (wn - 1.0)) * (double)near;

        b->arg[j] = w1;
        b->arg[n + j] = w2;
        b->cor[j] = c1 * (2.0 - w1);
        b->cor[n + j] = c2 * (2.0 - w2);
        b->arg[2 * n + j] = x > y ? x : y;
    }
    loss_log_array(b->arg, b->lg, (lazy ? 3 : 2) * n);
}

/* log(P/M) and log(Q/M) of column j of the block (see div_block) into
 * *ap and *aq; with lazy sides, also log P and log Q into *lp and *lq,
 * which otherwise hold them already. */
static inline void div_block_ratios(const div_block *b, size_t n, size_t j,
                                    double pv, double qv, int lazy, double *lp,
                                    double *lq, double *ap, double *aq)
{
    double big = b->lg[j] + b->cor[j], small = b->lg[n + j] + b->cor[n + j];
    double pair[2], logs[2];
    int p_big = pv >= qv;
    double lmax = b->lg[2 * n + j], lmin = lmax - (big - small);

    if (!(pv >= DBL_MIN && qv >= DBL_MIN)) {
        if (lazy) {
            *lp = log(pv);
            *lq = log(qv);
        }
        *ap = div_mid_log_ratio(*lp, *lq);
        *aq = div_mid_log_ratio(*lq, *lp);
        return;
    }
    /* Picked by index: the order of P and Q is random across a row, and
     * a branch on it would miss half the time. */
    pair[0] = small, pair[1] = big, logs[0] = lmin, logs[1] = lmax;
    *ap = pair[p_big];
    *aq = pair[1 - p_big];
    if (lazy) {
        *lp = logs[p_big];
        *lq = logs[1 - p_big];
    }
}

/* x log(x/y) from x and the logs; 0 where x = 0, +INFINITY where y = 0. */
static double div_rel_entr(double x, double lx, double ly)
{
    if (lx == -INFINITY)
        return 0.0;
    if (ly == -INFINITY)
        return INFINITY;
    return x * (lx - ly);
}

static double div_js_half(double x, double lx, double a)
{
    return lx == -INFINITY ? 0.0 : x * a;
}

/* The row's sums in nats; fills p->a and q->a where they are set, and the
 * logs where the sides are lazy.  Returns the first column where p > 0 and
 * q = 0 (k when there is none), where kl and cross_entropy are infinite;
 * such a column has Q < DBL_MIN and so takes the general path. */
static size_t div_row_stats(const div_side *p, const div_side *q, size_t k,
                            div_stats *st)
{
    size_t j0, j, n, bad = k;
    div_stats z = {0, 0, 0, 0, 0, 0};
    div_block b;

    for (j0 = 0; j0 < k; j0 += n) {
        n = k - j0 < DIV_BLOCK ? k - j0 : DIV_BLOCK;
        div_block_args(p->v + j0, q->v + j0, n, p->lazy, &b);
        for (j = j0; j < j0 + n; j++) {
            double pv = p->v[j], qv = q->v[j], lp, lq, ap, aq;

            lp = p->lazy ? 0.0 : p->l[j];
            lq = p->lazy ? 0.0 : q->l[j];
            div_block_ratios(&b, n, j - j0, pv, qv, p->lazy, &lp, &lq, &ap,
                             &aq);
            p->l[j] = lp;
            q->l[j] = lq;
            if (p->a != NULL)
                p->a[j] = ap;
            if (q->a != NULL)
                q->a[j] = aq;
            if (pv >= DBL_MIN && qv >= DBL_MIN) {
                /* Every log finite: the general terms below without their
                 * tests for 0. */
                z.kl_pq += pv * (lp - lq);
                z.kl_qp += qv * (lq - lp);
                z.js += 0.5 * (pv * ap + qv * aq);
                z.ce += -pv * lq;
                z.h_p += -pv * lp;
                z.h_q += -qv * lq;
                continue;
            }
            if (bad == k && lp > -INFINITY && lq == -INFINITY)
                bad = j;
            z.kl_pq += div_rel_entr(pv, lp, lq);
            z.kl_qp += div_rel_entr(qv, lq, lp);
            z.js += 0.5 * (div_js_half(pv, lp, ap) + div_js_half(qv, lq, aq));
            z.ce +=
                lp == -INFINITY ? 0.0 : (lq == -INFINITY ? INFINITY : -pv * lq);
            z.h_p += lp == -INFINITY ? 0.0 : -pv * lp;
            z.h_q += lq == -INFINITY ? 0.0 : -qv * lq;
        }
    }
    z.js = fmax(z.js, 0.0);
    *st = z;
    return bad;
}

/* Derivative of the per-sample value (nats) with respect to the final
 * value self->v[j] (*gv) and to its log (*gl).  self is q, or p for js. */
static void div_elem_grad(loss_divergence_kind kind, const div_side *self,
                          const div_side *other, size_t j, double *gv,
                          double *gl)
{
    double a;

    if (kind != LOSS_DIV_JS) {
        *gl = -other->v[j];
        *gv = other->l[j] == -INFINITY ? 0.0 : -other->v[j] / self->v[j];
        return;
    }
    a = self->a != NULL ? self->a[j]
                        : div_mid_log_ratio(self->l[j], other->l[j]);
    *gv = 0.5 * a;
    *gl = self->v[j] == 0.0 ? 0.0 : 0.5 * self->v[j] * a;
}

/* Writes factor * dL/dx for one row of the input x of side self.  One pass
 * stores each column's derivative, with respect to u (probs) or to log u,
 * and sums the latter; a second applies the input's chain rule. */
static void div_side_grad(const loss_divergence_args *a, const div_side *self,
                          const div_side *other, double factor, double *g)
{
    size_t j, k = a->k;
    double total = 0, gv, gl, den = 1.0 + (double)k * a->eps;
    int probs = a->input == LOSS_INPUT_PROBS;
    int softmax = a->input == LOSS_INPUT_LOGITS ||
                  (a->input == LOSS_INPUT_LOG_PROBS && a->normalize);

    if (factor == 0) {
        loss_vec_zero(g, k);
        return;
    }
    if (probs && !a->normalize) { /* one pass: no sum is needed */
        for (j = 0; j < k; j++) {
            div_elem_grad(a->kind, self, other, j, &gv, &gl);
            g[j] = factor * (gv / den);
        }
        return;
    }
    for (j = 0; j < k; j++) {
        div_elem_grad(a->kind, self, other, j, &gv, &gl);
        if (a->eps > 0)
            gl *= self->u[j] / (self->u[j] + a->eps);
        total += gl;
        g[j] = probs ? gv / den : gl;
    }
    if (probs && a->normalize)
        for (j = 0; j < k; j++)
            g[j] = factor * ((g[j] - total) / self->m / self->s);
    else if (softmax)
        for (j = 0; j < k; j++)
            g[j] = factor * (g[j] - self->u[j] * total);
    else
        for (j = 0; j < k; j++)
            g[j] = factor * g[j];
}

/* The per-sample value of the requested loss, in the requested base. */
static double div_value(const loss_divergence_args *a, const div_stats *st,
                        double scale)
{
    if (a->kind == LOSS_DIV_KL)
        return st->kl_pq * scale;
    if (a->kind == LOSS_DIV_CROSS_ENTROPY)
        return st->ce * scale;
    return a->distance ? sqrt(st->js * scale) : st->js * scale;
}

static void div_accumulate(div_stats *sum, const div_stats *st, double *dist,
                           double scale)
{
    sum->kl_pq += st->kl_pq;
    sum->kl_qp += st->kl_qp;
    sum->js += st->js;
    sum->ce += st->ce;
    sum->h_p += st->h_p;
    sum->h_q += st->h_q;
    *dist += scale > 0 ? sqrt(st->js * scale) : NAN;
}

/* Everything for row i: preparation, checks, values and gradients. */
static int div_row(const loss_divergence_args *a, size_t i, div_side *p,
                   div_side *q, loss_divergence_out *o, double *value,
                   div_stats *st, loss_error *err)
{
    size_t k = a->k, bad;
    double scale = 1.0 / log(a->base), factor;
    int rc;

    if ((rc = div_prep(a, a->p + i * k, "p", i, p, err)) != LOSS_OK ||
        (rc = div_prep(a, a->q + i * k, "q", i, q, err)) != LOSS_OK)
        return rc;
    p->a =
        a->kind == LOSS_DIV_JS && o->grad_p != NULL ? o->grad_p + i * k : NULL;
    q->a =
        a->kind == LOSS_DIV_JS && o->grad_q != NULL ? o->grad_q + i * k : NULL;
    bad = div_row_stats(p, q, k, st);
    if (a->kind != LOSS_DIV_JS && bad < k)
        return loss_error_at(err, LOSS_E_INFINITE, "q", 1, i, 0, 0,
                             "is 0 in column %zu where p is not, so %s is "
                             "infinite; set eps to smooth q.",
                             bad, div_names[a->kind]);
    *value = div_value(a, st, scale);
    factor = scale / (a->reduction == LOSS_REDUCE_MEAN ? (double)a->n : 1.0);
    if (a->kind == LOSS_DIV_JS && a->distance)
        factor = *value > 0 ? factor / (2.0 * *value) : 0.0;
    if (o->grad_q != NULL)
        div_side_grad(a, q, p, factor, o->grad_q + i * k);
    if (o->grad_p != NULL && a->kind == LOSS_DIV_JS)
        div_side_grad(a, p, q, factor, o->grad_p + i * k);
    return LOSS_OK;
}

static void div_finish(const loss_divergence_args *a, const div_stats *sum,
                       double dist, double total, loss_divergence_out *o)
{
    double scale = 1.0 / log(a->base), nn = (double)a->n;

    o->loss = loss_reduce(total, nn, a->reduction);
    o->kl_pq = sum->kl_pq * scale / nn;
    o->kl_qp = sum->kl_qp * scale / nn;
    o->js = sum->js * scale / nn;
    o->js_distance = dist / nn;
    o->cross_entropy = sum->ce * scale / nn;
    o->entropy_p = sum->h_p * scale / nn;
    o->entropy_q = sum->h_q * scale / nn;
}

/* The error to report once a row has failed with rc.  A non-finite number
 * anywhere in p, then anywhere in q, comes before any other error, as if
 * they had been checked first; they are not, so that each row is read
 * from memory once, while in cache, rather than in a pass of its own. */
static int div_first_error(const loss_divergence_args *a, int rc,
                           loss_error *err)
{
    int first;

    if ((first = loss_check_finite(err, "p", a->p, a->n, a->k)) != LOSS_OK ||
        (first = loss_check_finite(err, "q", a->q, a->n, a->k)) != LOSS_OK)
        return first;
    return rc;
}

size_t loss_divergence_work(const loss_divergence_args *a)
{
    return 6 * a->k;
}

int loss_divergence(const loss_divergence_args *a, loss_divergence_out *o,
                    loss_error *err)
{
    div_side p, q;
    div_stats st = {0, 0, 0, 0, 0, 0}, sum = st;
    double dist = 0, total = 0, value = 0, scale;
    size_t i;
    int rc;

    assert(a != NULL && o != NULL);
    if ((rc = div_check_params(a, err)) != LOSS_OK)
        return rc;
    assert(a->work != NULL);
    p.ubuf = a->work, p.vbuf = p.ubuf + a->k, p.l = p.vbuf + a->k;
    q.ubuf = p.l + a->k, q.vbuf = q.ubuf + a->k, q.l = q.vbuf + a->k;
    scale = 1.0 / log(a->base);
    for (i = 0; i < a->n; i++) {
        rc = div_row(a, i, &p, &q, o, &value, &st, err);
        if (rc != LOSS_OK)
            return div_first_error(a, rc, err);
        if (o->per_sample != NULL)
            o->per_sample[i] = value;
        total += value;
        div_accumulate(&sum, &st, &dist, scale);
    }
    div_finish(a, &sum, dist, total, o);
    return LOSS_OK;
}
