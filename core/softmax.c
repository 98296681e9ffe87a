/* softmax.c -- softmax cross-entropy with class-index labels or class-
 * probability targets, class weights, ignore_index and label smoothing: the
 * semantics of PyTorch's torch.nn.functional.cross_entropy, with the gradient
 * of the reduced loss with respect to the logits and the accuracy and mean
 * entropy metrics.  See API.md, section "softmax". */
#include <float.h>
#include <math.h>

#include "lossInt.h"

/* ---- softmax ----------------------------------------------------------------
 * Softmax cross-entropy, identical to torch.nn.functional.cross_entropy.
 *
 * Method:   with log p_j = z_j - lse(z) and eps = label_smoothing, each row
 *           has a coefficient vector t and l = sum_j t_j * (-log p_j), where
 *             labels:  t_j = (1-eps)*w_y*[j = y] + (eps/K)*w_j, and t = 0 for
 *                      a row whose label is ignore_index;
 *             targets: t_j = w_j*((1-eps)*q_j + eps/K);
 *           w is the class weight (1 when absent).  This is PyTorch's
 *           (1-eps)*nll + (eps/K)*sum_j w_j*(-log p_j) for labels and its
 *           smoothed probability target for targets; per_sample is its
 *           reduction='none' output.  "mean" divides the sum of the l by
 *           W = sum of w_y over the rows that are not ignored (labels), or
 *           by N (targets), both exactly as PyTorch.  lse is max-shifted, so
 *           logits of +-1000 are exact and -log p_j >= 0 is formed as
 *           lse(z - m) - (z_j - m) without cancellation.
 * Gradient: dl/dz_j = (sum_c t_c)*p_j - t_j, divided by W or N for "mean".
 * Special cases: ignore_index applies only with labels and has no effect
 *           with targets.  When W = 0 under "mean" (every label is ignored,
 *           or every counted label has weight 0), PyTorch returns NaN; here
 *           the loss is 0 and every gradient is 0, while per_sample still
 *           holds each row's value.  Exactly one of labels and targets must
 *           be given (LOSS_E_PARAM).  A label outside [0, K) that is not
 *           ignore_index is LOSS_E_LABEL.  Each targets element must be >= 0
 *           and each row sum to 1 within 1e-6 (LOSS_E_PROB on
 *           "targets[i][j]" or "targets[i]").  weight must be >= 0
 *           (LOSS_E_PARAM on "weight[j]"), and under "mean" W must be
 *           finite (LOSS_E_PARAM on "weight"), label_smoothing in [0, 1)
 *           (LOSS_E_PARAM).  Any NaN or infinity is LOSS_E_NONFINITE with
 *           its field and index.  N = 0 is LOSS_E_EMPTY, K = 0 LOSS_E_SHAPE.
 *           Logits more than DBL_MAX apart make some -log p_j overflow to
 *           +inf: a class with t_j = 0 still adds 0, so a plain label gives
 *           PyTorch's finite loss, while one with t_j > 0 (the label,
 *           smoothing) makes l = +inf, which the caller reports.
 * Metrics:  accuracy is the fraction of counted rows (not ignored) whose
 *           arg-max logit (lowest index on ties) is the label, or with
 *           targets the arg-max of the target row; NaN when no row counts.
 *           mean_entropy is the mean over all N rows of
 *           H = sum_j p_j * (-log p_j) in nats; a p_j that underflows to 0
 *           contributes 0, never 0*log 0.
 * Accuracy: lse and each -log p_j are within a few ulps (log1p of the
 *           sum of the terms in (0, 1] other than the largest); l and H are
 *           sums of K non-negative terms, so their relative error is at most
 *           about K ulps, and the reductions add N ulps.
 */

/* Largest acceptable |sum of a targets row - 1|. */
#define SOFTMAX_PROB_TOL 1e-6

size_t loss_softmax_work(const loss_softmax_args *a)
{
    (void)a;
    return 0;
}

/* Parameters, sizes and the presence of the inputs. */
static int check_params(const loss_softmax_args *a, loss_error *err)
{
    double eps = a->label_smoothing;
    int rc;

    if ((rc = loss_check_reduction(err, a->reduction)) != LOSS_OK ||
        (rc = loss_check_finite_param(err, "label_smoothing", eps)) != LOSS_OK)
        return rc;
    if (!(eps >= 0.0 && eps < 1.0))
        return loss_error_at(err, LOSS_E_PARAM, "label_smoothing", 0, 0, 0, 0,
                             "is %g, outside [0, 1).", eps);
    if ((rc = loss_check_batch(err, "logits", a->n)) != LOSS_OK ||
        (rc = loss_check_classes(err, "logits", a->k)) != LOSS_OK ||
        (rc = loss_check_present(err, "logits", a->logits)) != LOSS_OK)
        return rc;
    if ((a->labels == NULL) == (a->targets == NULL))
        return loss_error_set(err, LOSS_E_PARAM,
                              a->labels ? "targets" : "labels", 0, 0, 0, 0,
                              "Give exactly one of labels and targets.");
    return LOSS_OK;
}

/* Each class weight is finite and >= 0, checked in index order. */
static int check_weight(const loss_softmax_args *a, loss_error *err)
{
    size_t j;

    for (j = 0; a->weight && j < a->k; j++) {
        if (!isfinite(a->weight[j]))
            return loss_error_nonfinite(err, "weight", 1, j, 0, 0,
                                        a->weight[j]);
        if (a->weight[j] < 0.0)
            return loss_error_at(err, LOSS_E_PARAM, "weight", 1, j, 0, 0,
                                 "is %g, below 0: class weights must be "
                                 ">= 0.",
                                 a->weight[j]);
    }
    return LOSS_OK;
}

static int check_labels(const loss_softmax_args *a, loss_error *err)
{
    size_t i;

    for (i = 0; i < a->n; i++) {
        int64_t y = a->labels[i];

        if (y != a->ignore_index && (y < 0 || (uint64_t)y >= a->k))
            return loss_error_at(err, LOSS_E_LABEL, "labels", 1, i, 0, 0,
                                 "is %lld, outside [0, %zu) and not "
                                 "ignore_index (%lld).",
                                 (long long)y, a->k,
                                 (long long)a->ignore_index);
    }
    return LOSS_OK;
}

static int check_targets(const loss_softmax_args *a, loss_error *err)
{
    size_t i, j, k = a->k;
    int rc = loss_check_finite(err, "targets", a->targets, a->n, k);

    for (i = 0; rc == LOSS_OK && i < a->n; i++) {
        const double *q = a->targets + i * k;
        double sum = 0.0;

        for (j = 0; j < k; j++) {
            if (q[j] < 0.0)
                return loss_error_at(err, LOSS_E_PROB, "targets", 2, i, j, 0,
                                     "is %g, below 0: probabilities must be "
                                     ">= 0.",
                                     q[j]);
            sum += q[j];
        }
        if (fabs(sum - 1.0) > SOFTMAX_PROB_TOL)
            return loss_error_at(err, LOSS_E_PROB, "targets", 1, i, 0, 0,
                                 "sums to %.9g, not 1.", sum);
    }
    return rc;
}

/* Everything but the finiteness of the logits, which each row checks as
 * it is read (softmax_row_finite), so that the logits come from memory
 * once.  Their check still comes first: when another fails, it runs over
 * all of them before that error is reported. */
static int softmax_validate(const loss_softmax_args *a, loss_error *err)
{
    int rc = check_params(a, err), first;

    if (rc != LOSS_OK)
        return rc;
    rc = check_weight(a, err);
    if (rc == LOSS_OK)
        rc = a->labels ? check_labels(a, err) : check_targets(a, err);
    if (rc != LOSS_OK && (first = loss_check_finite(err, "logits", a->logits,
                                                    a->n, a->k)) != LOSS_OK)
        return first;
    return rc;
}

/* Row i of the logits is finite; the error names its first bad element. */
static int softmax_row_finite(const loss_softmax_args *a, size_t i,
                              loss_error *err)
{
    const double *z = a->logits + i * a->k;
    size_t j;
    int ok = 1;

    for (j = 0; j < a->k; j++)
        ok &= fabs(z[j]) <= DBL_MAX;
    if (ok)
        return LOSS_OK;
    for (j = 0; isfinite(z[j]); j++)
        ;
    return loss_error_nonfinite(err, "logits", 2, i, j, 0, z[j]);
}

static double weight_of(const loss_softmax_args *a, size_t j)
{
    return a->weight ? a->weight[j] : 1.0;
}

static int is_ignored(const loss_softmax_args *a, size_t i)
{
    return a->labels && a->labels[i] == a->ignore_index;
}

/* The coefficient t_j of row i (see the doc block), with eps_k =
 * label_smoothing / K computed once per row.  Inline: it runs twice per
 * logit, and as a call it cost a third of the loss's time. */
static inline double coef(const loss_softmax_args *a, size_t i, size_t j,
                          double eps_k)
{
    double eps = a->label_smoothing, w = weight_of(a, j);

    if (a->targets)
        return w * ((1.0 - eps) * a->targets[i * a->k + j] + eps_k);
    if (is_ignored(a, i))
        return 0.0;
    return ((size_t)a->labels[i] == j ? (1.0 - eps) * w : 0.0) + eps_k * w;
}

/* The "mean" divisor: W for labels, N for targets. */
static double mean_divisor(const loss_softmax_args *a)
{
    double w = 0.0;
    size_t i;

    if (a->targets)
        return (double)a->n;
    for (i = 0; i < a->n; i++)
        if (!is_ignored(a, i))
            w += weight_of(a, (size_t)a->labels[i]);
    return w;
}

/* The log-sum-exp of row i, max-shifted, with *m its maximum z[*top];
 * when g is not NULL the exponentials e^(z_j - m) are left in g and *inv
 * is 1 / their sum. */
static double row_lse(const loss_softmax_args *a, size_t i, double *g,
                      double *m, double *inv, size_t *top)
{
    const double *z = a->logits + i * a->k;
    double lse, sum = 1.0;

    if (g != NULL) {
        lse = loss_lse_exps(z, a->k, top, g, &sum);
        *m = z[*top];
    } else {
        lse = loss_lse_shifted(z, a->k, m);
        *top = loss_vec_argmax(z, a->k);
    }
    *inv = 1.0 / sum;
    return lse;
}

/* c * nlp, where a zero c counts as zero also when nlp = -log p_j is
 * infinite: logits more than DBL_MAX apart make z_j - m overflow, and such
 * a class has p_j = 0 and no weight in the loss (as in PyTorch's nll) or
 * the entropy.  For finite nlp, the same bits as c * nlp. */
static inline double term(double c, double nlp)
{
    return c != 0.0 ? c * nlp : 0.0;
}

/* Row i: returns its loss, adds its entropy to *entropy and, when g is not
 * NULL, writes its gradient times scale into g[0..k-1].  With g, the
 * exponentials of the log-sum-exp are kept in g and give p_j = e_j / sum,
 * one exp per logit; without, p_j = e^(-nlp_j). */
static double softmax_row(const loss_softmax_args *a, size_t i, double scale,
                          double *g, double *entropy, size_t *top)
{
    const double *z = a->logits + i * a->k;
    double eps_k = a->label_smoothing / (double)a->k, m, inv, lse;
    double l = 0.0, tsum = 0.0, h = 0.0;
    size_t j;

    lse = row_lse(a, i, g, &m, &inv, top);
    for (j = 0; j < a->k; j++) {
        double nlp = lse - (z[j] - m), t = coef(a, i, j, eps_k);
        double p = g ? g[j] * inv : loss_exp(-nlp);

        l += term(t, nlp);
        tsum += t;
        h += term(p, nlp);
        if (g)
            g[j] = p;
    }
    for (j = 0; g && j < a->k; j++)
        g[j] = (tsum * g[j] - coef(a, i, j, eps_k)) * scale;
    *entropy += h;
    return l;
}

/* softmax_row for a counted label y without class weights, the common
 * case, with the gradient: coef() reduces to t_j = eps/K, and t_y =
 * (1-eps) + eps/K, which are selected here rather than looked up twice
 * per logit.  The same operations in the same order, so the same bits. */
static double softmax_row_label(const loss_softmax_args *a, size_t i,
                                double scale, double *g, double *entropy,
                                size_t *top)
{
    const double *z = a->logits + i * a->k;
    double eps_k = a->label_smoothing / (double)a->k, m, inv, lse;
    double ty = (1.0 - a->label_smoothing) + eps_k;
    double l = 0.0, tsum = 0.0, h = 0.0;
    size_t j, y = (size_t)a->labels[i];

    lse = row_lse(a, i, g, &m, &inv, top);
    for (j = 0; j < a->k; j++) {
        double nlp = lse - (z[j] - m), t = j == y ? ty : eps_k;
        double p = g[j] * inv;

        l += term(t, nlp);
        tsum += t;
        h += term(p, nlp);
        g[j] = p;
    }
    for (j = 0; j < a->k; j++)
        g[j] = (tsum * g[j] - (j == y ? ty : eps_k)) * scale;
    *entropy += h;
    return l;
}

/* Counts row i, whose arg-max logit is pred, toward accuracy: *counted and
 * *hits grow by 0 or 1. */
static void softmax_hit(const loss_softmax_args *a, size_t i, size_t pred,
                        double *counted, double *hits)
{
    size_t k = a->k, truth;

    if (is_ignored(a, i))
        return;
    truth = a->targets ? loss_vec_argmax(a->targets + i * k, k)
                       : (size_t)a->labels[i];
    *counted += 1.0;
    *hits += pred == truth ? 1.0 : 0.0;
}

int loss_softmax(const loss_softmax_args *a, loss_softmax_out *o,
                 loss_error *err)
{
    int rc = softmax_validate(a, err);
    double div, scale, sum = 0.0, entropy = 0.0, counted = 0.0, hits = 0.0;
    size_t i;

    if (rc != LOSS_OK)
        return rc;
    div = mean_divisor(a);
    if (a->reduction == LOSS_REDUCE_MEAN && !isfinite(div))
        return loss_error_set(err, LOSS_E_PARAM, "weight", 0, 0, 0, 0,
                              "The weights of the counted labels sum past "
                              "double precision, so the mean has no "
                              "divisor; scale them down (the mean loss does "
                              "not change).");
    scale = loss_grad_scale(div, a->reduction);
    for (i = 0; i < a->n; i++) {
        double *g = o->grad_logits ? o->grad_logits + i * a->k : NULL;
        double l;
        size_t top;

        if ((rc = softmax_row_finite(a, i, err)) != LOSS_OK)
            return rc;
        l = g && a->labels && !a->weight && !is_ignored(a, i)
                ? softmax_row_label(a, i, scale, g, &entropy, &top)
                : softmax_row(a, i, scale, g, &entropy, &top);
        if (o->per_sample)
            o->per_sample[i] = l;
        sum += l;
        softmax_hit(a, i, top, &counted, &hits);
    }
    o->loss = loss_reduce(sum, div, a->reduction);
    o->accuracy = counted > 0.0 ? hits / counted : NAN;
    o->mean_entropy = entropy / (double)a->n;
    return LOSS_OK;
}
