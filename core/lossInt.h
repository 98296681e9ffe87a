/* lossInt.h -- the private interface the loss families of the core share:
 * located error messages (status.c), validation of inputs and parameters
 * (check.c) and the small numerical kernels several losses use (vecmath.c).
 * Only the core's own .c files include it; it is not part of the public API
 * in loss.h.
 *
 * Every check returns LOSS_OK or fills *err (when err is not NULL) and
 * returns the failing status, so a loss chains them with
 * `if ((rc = loss_check_...(...)) != LOSS_OK) return rc;`.  Arrays are flat
 * and row-major as in loss.h; "field" is always the contract's JSON name.
 */
#ifndef LOSS_INT_H
#define LOSS_INT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "loss.h"

/* ---- Errors (status.c) ----------------------------------------------------
 * As loss_error_set, but the message opens with the JSON path of what failed,
 * "field", "field[i0]" or "field[i0][i1]", then a space and the formatted
 * predicate: loss_error_at(err, LOSS_E_LABEL, "labels", 1, 3, 0, 0,
 * "is %d, outside [0, %d).", 7, 5) reads "labels[3] is 7, outside [0, 5)."
 * Every message about a named input or parameter is written this way, so
 * they all speak with one voice.  field must not be NULL.
 */
loss_status loss_error_at(loss_error *err, loss_status status,
                          const char *field, size_t depth, size_t i0, size_t i1,
                          size_t i2, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 8, 9)))
#endif
    ;

/* v as messages show it: "NaN", "infinity", "-infinity" or printf's %g,
 * written to buf when it is a number.  Returns a static string or buf. */
const char *loss_number_text(double v, char *buf, size_t len);

/* ---- Deadlines (loss.h) --------------------------------------------------
 * A loss that takes a deadline starts a ticker with loss_ticker_start and
 * calls loss_tick with the element operations of each step of its main
 * loops.  loss_tick asks the deadline at the first step and then once
 * LOSS_DEADLINE_OPS have gone by since it last asked, and returns non-zero
 * when the deadline has expired; the loss then returns loss_stop(err).
 */
typedef struct loss_ticker {
    const loss_deadline *deadline; /* or NULL: never expires */
    size_t ops;                    /* since the deadline was last asked */
} loss_ticker;

static inline loss_ticker loss_ticker_start(const loss_deadline *d)
{
    loss_ticker t = {d, LOSS_DEADLINE_OPS};

    return t;
}

static inline int loss_tick(loss_ticker *t, size_t ops)
{
    if (t->deadline == NULL)
        return 0;
    if (t->ops < LOSS_DEADLINE_OPS && ops < LOSS_DEADLINE_OPS - t->ops) {
        t->ops += ops;
        return 0;
    }
    t->ops = 0;
    return t->deadline->expired(t->deadline->ctx) != 0;
}

/* LOSS_E_STOPPED with its default message. */
int loss_stop(loss_error *err);

/* ---- Checks (check.c) ---------------------------------------------------- */

/* n > 0, else LOSS_E_EMPTY on field: "x is empty: the batch has no
 * samples." */
int loss_check_batch(loss_error *err, const char *field, size_t n);

/* k > 0 columns (classes), else LOSS_E_SHAPE on field. */
int loss_check_classes(loss_error *err, const char *field, size_t k);

/* p is not NULL, else LOSS_E_PARAM on field: "x is missing." */
int loss_check_present(loss_error *err, const char *field, const void *p);

/* An enumerated option: 0 <= value < count, else LOSS_E_PARAM on field with
 * choices, the valid names as a phrase ("\"mean\" or \"sum\""). */
int loss_check_choice(loss_error *err, const char *field, int value, int count,
                      const char *choices);

/* reduction is LOSS_REDUCE_MEAN or LOSS_REDUCE_SUM (LOSS_E_PARAM). */
int loss_check_reduction(loss_error *err, loss_reduction reduction);

/* A parameter that must be finite: LOSS_E_NONFINITE on name otherwise. */
int loss_check_finite_param(loss_error *err, const char *name, double v);

/* A logarithm base: finite, > 0 and != 1, else LOSS_E_PARAM on "base". */
int loss_check_base(loss_error *err, double base);

/* A parameter that must be finite and >= 0, such as a margin: anything else
 * (NaN and infinities included) is LOSS_E_PARAM on name. */
int loss_check_nonneg(loss_error *err, const char *name, double v);

/* The first NaN or infinite element of x, LOSS_E_NONFINITE located at
 * field[i] for an [n] vector, field[i][j] for an [n][k] matrix and
 * field[layer][i][j] for one layer of a multi-layer input. */
/* The LOSS_E_NONFINITE error for the element v at field[i0][i1][i2] (the
 * first depth indices), for checks that interleave it with others. */
int loss_error_nonfinite(loss_error *err, const char *field, size_t depth,
                         size_t i0, size_t i1, size_t i2, double v);

int loss_check_finite_vec(loss_error *err, const char *field, const double *x,
                          size_t n);
int loss_check_finite(loss_error *err, const char *field, const double *x,
                      size_t n, size_t k);
int loss_check_finite_layer(loss_error *err, const char *field, size_t layer,
                            const double *x, size_t n, size_t k);

/* Class labels: each of labels[0..n-1] in [0, k), else LOSS_E_LABEL on
 * labels[i]. */
int loss_check_labels(loss_error *err, const int64_t *labels, size_t n,
                      size_t k);

/* Binary labels: each of labels[0..n-1] equal to lo or hi, else LOSS_E_LABEL
 * on labels[i]. */
int loss_check_labels_pair(loss_error *err, const int64_t *labels, size_t n,
                           int64_t lo, int64_t hi);

/* ---- Reductions (vecmath.c) ------------------------------------------------
 * "sum" keeps the sum; "mean" divides it by count, the loss's documented
 * divisor (N, the weight total, the valid triplets...).  A mean over a
 * count of 0 is 0, and so is its gradient scale, so that a batch with
 * nothing to average has loss 0 and zero gradients instead of NaN.
 */
double loss_reduce(double sum, double count, loss_reduction reduction);

/* The factor that turns the gradient of one summed term into that of the
 * reduced loss: 1 for "sum", 1/count for "mean" (0 when count is 0). */
double loss_grad_scale(double count, loss_reduction reduction);

/* ---- Vectors and distances (vecmath.c) ----------------------------------- */

/* Row i of an [n][d] output that may be NULL (no arithmetic on NULL). */
static inline double *loss_row(double *x, size_t i, size_t d)
{
    return x ? x + i * d : NULL;
}

/* Sets x[0..n-1] to 0; a NULL x does nothing. */
void loss_vec_zero(double *x, size_t n);

/* qsort's order of two doubles (not NaN), ascending. */
int loss_cmp_double(const void *x, const void *y);

/* Sorts x[0..n) ascending (no NaN; zeros of either sign in any order),
 * using tmp[0..n) as scratch: several times faster than qsort. */
void loss_sort_doubles(double *x, size_t n, double *tmp);

/* Index of the largest x[j], j in [0, k), the lowest among ties; k >= 1. */
size_t loss_vec_argmax(const double *x, size_t k);

/* u . v, summed in four lanes (vecmath.c: within (ceil(d / 4) + 2) u of
 * the sum of |u_j v_j|, the same bits on every machine). */
double loss_vec_dot(const double *u, const double *v, size_t d);

/* y += a x, element by element (each y_j + a x_j rounded as written), in
 * blocks that fill vector registers; y and x must not overlap. */
void loss_vec_axpy(double *restrict y, double a, const double *restrict x,
                   size_t d);

/* ||u||, and ||u - v||^2 summed as loss_vec_dot sums. */
double loss_vec_norm(const double *u, size_t d);
double loss_vec_sqdist(const double *u, const double *v, size_t d);

/* out[i] = loss_vec_sqdist(x, y + i d, d), with its bits, for the n rows
 * of y: one call for them all (d > 0). */
void loss_vec_sqdist_rows(const double *x, const double *y, size_t n, size_t d,
                          double *out);

/* ||u - v||, accurate where the squares would underflow or overflow. */
double loss_vec_dist(const double *u, const double *v, size_t d);

/* d(u, v) for the distance kind: ||u - v|| or ||u - v||^2. */
double loss_vec_distance(const double *u, const double *v, size_t d,
                         loss_distance kind);

/* Adds w * dD/du to gu and w * dD/dv = -w * dD/du to gv (either may be
 * NULL), where dist = D = d(u, v) of the given kind.  Where a Euclidean
 * distance is 0 its gradient is 0, never NaN. */
void loss_vec_dist_grad(double *gu, double *gv, const double *u,
                        const double *v, size_t d, double dist, double w,
                        loss_distance kind);

/* ---- Scalars (vecmath.c) ------------------------------------------------- */

/* Max-shifted log-sum-exp of z[0..k-1], k >= 1: *m receives m = max z and
 * the result is lse(z - m) = log1p(sum over the other j of e^(z_j - m)),
 * which lies in [0, log k], never takes the log of 0 and is exact (0) where
 * one logit dominates.  lse(z) = m + the result. */
double loss_lse_shifted(const double *z, size_t k, double *m);

/* As loss_lse_shifted, but *top receives the arg-max (m = z[*top]), and
 * e[j] = e^(z_j - m) is written for every j (1 at the arg-max) and their
 * sum (>= 1) to *sum: the unnormalised softmax, so that p_j = e[j] / *sum
 * costs no second exponential. */
double loss_lse_exps(const double *z, size_t k, size_t *top, double *e,
                     double *sum);

/* lse(z) = log sum_j e^(z_j) itself, as m + loss_lse_shifted(z, k, &m). */
double loss_lse(const double *z, size_t k);

/* y[i] = log(x[i]) for i < n, within one ulp of libm's log (x and y do not
 * overlap).  Several times cheaper per element than libm on processors
 * with AVX2 and FMA; libm's own log on others.  See vecmath.c. */
void loss_log_array(const double *x, double *y, size_t n);

/* y[i] = loss_exp(x[i]) for i < n, with the same bits (x and y are the
 * same array or do not overlap); four at a time on processors with AVX2.
 * See vecmath.c. */
void loss_exp_array(const double *x, double *y, size_t n);

/* sum_i loss_exp(x[i] - m) for i < n, term i added to running sum i % 4
 * and the four sums then added pairwise: the same bits on every machine.
 * Four terms at a time on processors with AVX2.  See vecmath.c. */
double loss_sum_exp(const double *x, size_t n, double m);

/* The hinge max(0, z)^p for p in {1, 2}; *dz receives its derivative, taken
 * as 0 at the kink z = 0: a hinge is active only when z > 0.  A NaN z
 * (inf - inf, from values past DBL_MAX) gives NaN, never a silent 0. */
double loss_hinge_term(double z, int p, double *dz);

/* log1p(x) for -1 <= x <= 1 from a single call to log, which is table
 * driven and several times cheaper than libm's log1p.
 *
 * Method:   u = fl(1 + x) and its rounding error c = x - (u - 1), which is
 *           exact (Fast2Sum, |1| >= |x|).  Then 1 + x = u + c exactly and
 *           log1p(x) = log(u) + log1p(c/u) = log(u) + c/u, since
 *           |c/u| <= 2^-53 leaves (c/u)^2/2 below the last bit.  Where
 *           u = 0 (x = -1) c is 0 and the result is -INFINITY; where
 *           |x| < 2^-54, u = 1 and the result is 0 + c = x.
 * Accuracy: log is correctly rounded to within 0.52 ulp (glibc >= 2.28,
 *           also next to 1), so the sum is within about 2 ulps of log1p(x).
 */
static inline double loss_log1p(double x)
{
    double u = 1.0 + x, c = x - (u - 1.0);

    /* c = 0 wherever u < 1/2 (1 - |x| is then exact), so dividing by
     * max(u, 1/2) changes nothing but keeps u = 0 from giving 0/0 and the
     * loop free of a branch that rounding would make unpredictable. */
    return log(u) + c / (u > 0.5 ? u : 0.5);
}

/* e^x, inline, for the loops that take one exponential per element: as a
 * call to libm's exp it cost as much as the rest of softmax together.
 *
 * Method:   the table method of ARM's optimized-routines exp, which
 *           glibc >= 2.28 also uses.  With N = 128 and k = round(x N /
 *           ln 2), x = k ln2/N + r, |r| <= ln2/(2N), and
 *             e^x = 2^(k/N) e^r = 2^(k div N) H (1 + T) e^r,
 *           H (1 + T) = 2^((k mod N)/N) from loss_exp_tab (vecmath.c).
 *           k comes from the low bits of x N/ln2 + 1.5*2^52 (round to
 *           nearest), r from ln2/N in two parts (the high one short, so
 *           k times it is exact), and e^r - 1 + T from a degree-5
 *           polynomial; the result is s + s * tmp with s = 2^(k div N) H.
 * Special cases: outside |x| <= 708 (results near the overflow or
 *           subnormal range, infinities and NaN) it is libm's exp.
 * Accuracy: within 0.52 ulp (ARM's bound for this method), so at most
 *           one ulp from libm's exp; tests/core/test_vecmath.c compares them.
 */
#define LOSS_EXP_N 128
extern const uint64_t loss_exp_tab[2 * LOSS_EXP_N];

static inline double loss_exp(double x)
{
    const double inv_ln2_n = 0x1.71547652b82fep0 * LOSS_EXP_N;
    const double neg_ln2_hi_n = -0x1.62e42fefa0000p-8;
    const double neg_ln2_lo_n = -0x1.cf79abc9e3b3ap-47;
    const double shift = 0x1.8p52;
    const double c2 = 0x1.ffffffffffdbdp-2, c3 = 0x1.555555555543cp-3;
    const double c4 = 0x1.55555cf172b91p-5, c5 = 0x1.1111167a4d017p-7;
    double kd, r, r2, tail, tmp, s;
    uint64_t ki, sbits;

    if (!(fabs(x) <= 708.0))
        return exp(x);
    kd = x * inv_ln2_n + shift;
    memcpy(&ki, &kd, sizeof ki);
    kd -= shift;
    r = x + kd * neg_ln2_hi_n + kd * neg_ln2_lo_n;
    memcpy(&tail, &loss_exp_tab[2 * (ki % LOSS_EXP_N)], sizeof tail);
    sbits = loss_exp_tab[2 * (ki % LOSS_EXP_N) + 1] + (ki << 45);
    r2 = r * r;
    tmp = tail + r + r2 * (c2 + r * c3) + r2 * r2 * (c4 + r * c5);
    memcpy(&s, &sbits, sizeof s);
    return s + s * tmp;
}

#endif /* LOSS_INT_H */
