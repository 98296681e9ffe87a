/* samples.c -- Kullback-Leibler and Jensen-Shannon divergences, and the
 * entropies, of two continuous distributions known only by samples: a
 * histogram over shared bins, Gaussian kernel density estimates, or the
 * k-nearest-neighbour estimator of Wang, Kulkarni and Verdu (2009).  Each
 * method turns the samples into density estimates before the divergence can
 * be computed; the discrete divergences of probability vectors are in
 * divergence.c. */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lossInt.h"

/* loss_samples_divergence -- estimates from two sample sets.
 *
 * Method:
 *   p holds np samples of P and q holds nq samples of Q, each a point of
 *   R^D (rows of [n][D]).  Every estimate is computed in nats and divided by
 *   ln(base); js_distance is sqrt(js) in that base, as for discrete js.
 *   - histogram (D = 1): B bins of equal width w over the pooled range
 *     [min, max] of both sets (widened to [x - 1/2, x + 1/2] when every
 *     sample equals x, as numpy does).  B is given, or "auto" (bins = 0):
 *     the Freedman-Diaconis width 2 IQR n^(-1/3) over the pooled n = np + nq
 *     samples (IQR from numpy's linear percentiles), B = ceil(range / width),
 *     1 when the IQR is 0, at most LOSS_SAMPLES_MAX_BINS.  Sample x falls in
 *     bin floor((x - min) B / range), the maximum in the last bin.  With
 *     counts c, P_b = (c_b + alpha) / (np + B alpha), likewise Q_b; then
 *     kl = sum P log(P/Q), js = 1/2 sum [P log(2P/(P+Q)) + Q log(2Q/(P+Q))]
 *     and the differential entropy is -sum P log P + log w.
 *   - kde: each set gets the density (1/n) sum_i N(x; x_i, h^2 I), an
 *     isotropic Gaussian kernel of standard deviation h.  With the rule
 *     "scott" h = n^(-1/(D+4)) s, with "silverman" h = (n (D+2)/4)^(-1/(D+4))
 *     s, where s^2 is the mean over the D dimensions of that set's sample
 *     variance (divisor n - 1): in 1-D exactly scipy's gaussian_kde.  A
 *     fixed bandwidth is h for both sets.  In 1-D the integrals of
 *     p log(p/q), of the js integrand and of -p log p are taken by
 *     Simpson's rule on an even number g of intervals over [min - 6 h_max,
 *     max + 6 h_max], the step h_min / 8 with g kept in [1024, 16384] and
 *     the step no wider than h_min / 2 (else LOSS_E_PARAM, below).  The
 *     integrals are taken in standardized units u = (x - min) s, s = 2^-e
 *     the power of two that puts h_min s in [1, 2): kl and js are the same
 *     in any units and the entropy of u is that of x plus log s, so the
 *     estimate at scale 1e-200 is the one at scale 1 (kl and js bit for
 *     bit when the scales differ by a power of two), where raw squares of
 *     1e-200 distances and bandwidths underflow (h^2 = 0 made every
 *     exponent 0 * -inf) and those of a 1e200 bandwidth overflow.  For
 *     D > 1 they are resubstitution averages over the samples:
 *     kl_pq = mean over x in p of log p(x) - log q(x), entropy_p =
 *     -mean log p(x), js = 1/2 mean_p log(p/m) + 1/2 mean_q log(q/m),
 *     m = (p + q)/2, clamped to [0, ln 2], where the density of a set at
 *     one of its own samples leaves that sample out (its own kernel would
 *     inflate p(x) by about n^-1 h^-D and bias kl upwards).  Log-densities
 *     are log-sum-exps accumulated with a running maximum, so far tails
 *     never underflow; their exponents come from copies of the rows times
 *     the same s (exact, so the same bits as unscaled wherever those were
 *     finite) and their normalizations from the unscaled h.  The sample
 *     spread of the rules is taken likewise from deviations scaled to the
 *     largest sample.
 *   - knn: with rho_k(i) the distance from p_i to its k-th nearest
 *     neighbour among the other samples of p and nu_k(i) that to its k-th
 *     nearest in q (Euclidean),
 *       kl_pq = (D/np) sum_i log(nu_k(i) / rho_k(i)) + log(nq / (np - 1))
 *     (Wang, Kulkarni and Verdu 2009), kl_qp with the roles swapped, and the
 *     Kozachenko-Leonenko entropy
 *       entropy_p = psi(np) - psi(k) + log V_D + (D/np) sum_i log rho_k(i),
 *     V_D = pi^(D/2) / Gamma(D/2 + 1) the volume of the unit ball.  js and
 *     js_distance are not defined by this estimator: NaN.  For D > 1 the
 *     trees hold the rows times the power of two that brings the geometric
 *     middle of the smallest nonzero and the largest |coordinate| near 1
 *     (knn_scale), so that squared distances of rows of 1e-200 do not
 *     underflow to 0, nor those of a set of 1e-100 beside one of 1e100;
 *     the logarithms are of the distances divided back (exact unless
 *     subnormal).
 *   - The histogram's bin index is numpy's (x - min) B / range with x -
 *     min and range scaled by a power of two, exact, so that a subnormal
 *     range cannot make B / range infinite.
 *
 * Special cases:
 *   - np or nq below 2 is LOSS_E_EMPTY on p or q; D = 0 is LOSS_E_SHAPE.
 *   - NaN and infinite samples, and samples beyond +-1e150 (whose squared
 *     distances could overflow), are LOSS_E_NONFINITE at p[i] (D = 1) or
 *     p[i][j].
 *   - histogram with D > 1 is LOSS_E_PARAM on method.  With alpha = 0 a bin
 *     that holds samples of P and none of Q makes kl_pq +INFINITY.
 *   - kde with "scott" or "silverman" on a set whose samples are all equal
 *     (zero spread, zero bandwidth) is LOSS_E_PARAM on that set.
 *   - kde in 1-D whose grid, at 16384 intervals, would step more than half
 *     the narrowest bandwidth is LOSS_E_PARAM on bandwidth: the kernels
 *     would fall between grid points and every estimate, the entropy of p
 *     included, would depend on where q lies.  For one fixed bandwidth h
 *     over a pooled range R that is h < R / 8180; the message names
 *     "knn" and that bound.  kde for D > 1 with the largest |coordinate|
 *     above about 2^(509 - log2(D) / 2) h_min (2^500 h_min at D = 2^18)
 *     is LOSS_E_PARAM on bandwidth: the scaled squared distances could
 *     overflow (kde_rows).
 *   - knn needs 1 <= k <= min(np, nq) - 1 (LOSS_E_PARAM on k); a sample with
 *     k others at distance 0, in its own set or the other, makes a logarithm
 *     infinite: LOSS_E_INFINITE at that sample.
 *   - kl estimates from kde (D > 1) and knn may be slightly negative on
 *     nearly equal distributions; they are returned as computed.
 *
 * Accuracy:
 *   The arithmetic is accurate to a few ulps per term; the estimates carry
 *   the statistical error of their method, which the tests measure against
 *   closed forms (5,000 samples per side).  The 1-D kde grid leaves out the
 *   mass beyond 6 bandwidths (2e-9 of each kernel): against integrals over
 *   the whole line (mpmath) kl and js are within 2e-8, the entropy 1e-7.
 *   Where q's kernels are far apart relative to h its log-density bends
 *   over a width near h^2 / distance, finer than the grid: with h = 0.01
 *   and kernels 1 apart kl = 1223.388 against 1223.399.
 *
 * Work and cost:
 *   loss_samples_divergence_work: np + nq doubles for the histogram
 *   (sorted copies), (np + nq)(D + 1) for kde (the scaled samples and one
 *   set's exponents), and for knn (np + nq) D + k, + 2 D when D > 1
 *   (sorted rows or k-d trees, a heap, the tree search's offsets and its
 *   scaled query), with k counted only up to min(np, nq) - 1 so that an
 *   invalid k never sizes the work; SIZE_MAX on overflow.  The histogram
 *   costs O(n log n + B); kde 1-D O(g n), D > 1 O(n^2 D); knn 1-D
 *   O(n log n) whatever k (a bisection for the run of the k nearest); knn
 *   D > 1 builds a k-d tree of each set and searches it exactly, pruning
 *   cells by their distance: O(n log n) for a few dimensions, tending to
 *   O(n^2 D) as D nears log2 n.  Here n = np + nq.  At 10,000 samples per
 *   side (make bench): histogram 3 ms, knn 1-D 6 ms, kde 1-D 0.08 s, knn
 *   3-D 0.08 s (a slab search by the first coordinate took 0.35 s, an
 *   exhaustive search 2 s), kde 3-D 1.6 s (2.9 s with a running maximum and one
 *   exponential at a time; one run each, same machine).
 */

#define SAMP_LN2 0.693147180559945309417232121458176568
#define SAMP_PI 3.14159265358979323846264338327950288
#define SAMP_MAX_ABS                                                           \
    1e150                  /* |sample| bound: squares and ranges stay finite   \
                            */
#define KDE_TAIL 6.0       /* grid margin, in bandwidths */
#define KDE_STEPS 8.0      /* grid steps per smallest bandwidth */
#define KDE_GRID_MIN 1024  /* intervals */
#define KDE_GRID_MAX 16384 /* intervals */
#define KDE_MIN_STEPS 2.0  /* fewest grid steps per smallest bandwidth */
/* The smallest fixed bandwidth, in pooled ranges, that KDE_GRID_MAX steps
 * of 1/KDE_MIN_STEPS bandwidth resolve with the 2 KDE_TAIL margin. */
#define KDE_MIN_BANDS (KDE_GRID_MAX / KDE_MIN_STEPS - 2.0 * KDE_TAIL)

/* Estimates in nats, before the change of base. */
typedef struct samp_est {
    double kl_pq, kl_qp, js, h_p, h_q;
} samp_est;

/* The work is sized from the sample counts and D alone, never from an
 * unchecked parameter: k counts only up to min(np, nq) - 1, the largest k
 * that loss_samples_divergence accepts, because the work is allocated
 * before that check runs (a k of 2^40 must be a LOSS_E_PARAM, not a
 * terabyte allocation).  A size that would overflow is SIZE_MAX, which no
 * allocation can satisfy. */
size_t loss_samples_divergence_work(const loss_samples_args *a)
{
    size_t nmin = a->np < a->nq ? a->np : a->nq;
    size_t k = nmin == 0 ? 0 : a->k < nmin - 1 ? a->k : nmin - 1;
    size_t offsets = a->d > 1 ? 2 * a->d : 0, extra, n;

    if (a->d > SIZE_MAX / 2 || a->np > SIZE_MAX - a->nq ||
        offsets > SIZE_MAX - k)
        return SIZE_MAX;
    extra = k + offsets;
    n = a->np + a->nq;
    if (a->method == LOSS_SAMPLES_HISTOGRAM)
        return n;
    if (a->method == LOSS_SAMPLES_KDE)
        extra = n;
    if (a->d != 0 && n > (SIZE_MAX - extra) / a->d)
        return SIZE_MAX;
    return n * a->d + extra;
}

/* knn's heap of k squared distances, after the sorted copies. */
static double *knn_heap(const loss_samples_args *a)
{
    return a->work + (a->np + a->nq) * a->d;
}

/* ---- Checks -------------------------------------------------------------- */

static int samp_check_set(loss_error *err, const char *field, const double *x,
                          size_t n, size_t d)
{
    size_t i;
    int rc;

    if (n < 2)
        return loss_error_at(err, LOSS_E_EMPTY, field, 0, 0, 0, 0,
                             "has %zu sample%s; an estimate needs at least "
                             "2.",
                             n, n == 1 ? "" : "s");
    rc = d == 1 ? loss_check_finite_vec(err, field, x, n)
                : loss_check_finite(err, field, x, n, d);
    for (i = 0; rc == LOSS_OK && i < n * d; i++)
        if (fabs(x[i]) > SAMP_MAX_ABS)
            return loss_error_at(err, LOSS_E_NONFINITE, field, d == 1 ? 1 : 2,
                                 i / d, i % d, 0,
                                 "is %g; samples must lie within +-1e150, "
                                 "where distances and ranges stay finite.",
                                 x[i]);
    return rc;
}

static int samp_check_method(const loss_samples_args *a, loss_error *err)
{
    size_t kmax = (a->np < a->nq ? a->np : a->nq) - 1;

    if (a->method == LOSS_SAMPLES_HISTOGRAM && a->d != 1)
        return loss_error_at(err, LOSS_E_PARAM, "method", 0, 0, 0, 0,
                             "\"histogram\" needs 1-dimensional samples and "
                             "these have D = %zu; use \"kde\" or \"knn\".",
                             a->d);
    if (a->method == LOSS_SAMPLES_HISTOGRAM && a->bins > LOSS_SAMPLES_MAX_BINS)
        return loss_error_at(err, LOSS_E_PARAM, "bins", 0, 0, 0, 0,
                             "is %zu, above the limit of %d.", a->bins,
                             LOSS_SAMPLES_MAX_BINS);
    if (a->method == LOSS_SAMPLES_HISTOGRAM)
        return loss_check_nonneg(err, "alpha", a->alpha);
    if (a->method == LOSS_SAMPLES_KDE)
        return loss_check_choice(err, "bandwidth", (int)a->bandwidth_rule, 3,
                                 "\"scott\", \"silverman\" or a number");
    if (a->k < 1 || a->k > kmax)
        return loss_error_at(err, LOSS_E_PARAM, "k", 0, 0, 0, 0,
                             "is %zu; it must be in [1, %zu], one less than "
                             "the smaller sample set.",
                             a->k, kmax);
    return LOSS_OK;
}

static int samp_check(const loss_samples_args *a, loss_error *err)
{
    char buf[32];
    int rc;

    if ((rc = samp_check_set(err, "p", a->p, a->np, a->d)) != LOSS_OK ||
        (rc = samp_check_set(err, "q", a->q, a->nq, a->d)) != LOSS_OK ||
        (rc = loss_check_classes(err, "p", a->d)) != LOSS_OK ||
        (rc = loss_check_base(err, a->base)) != LOSS_OK ||
        (rc = loss_check_choice(err, "method", (int)a->method, 3,
                                "\"histogram\", \"kde\" or \"knn\"")) !=
            LOSS_OK)
        return rc;
    if (a->method == LOSS_SAMPLES_KDE &&
        a->bandwidth_rule == LOSS_BANDWIDTH_FIXED &&
        !(isfinite(a->bandwidth) && a->bandwidth > 0))
        return loss_error_at(err, LOSS_E_PARAM, "bandwidth", 0, 0, 0, 0,
                             "is %s, not a finite number > 0.",
                             loss_number_text(a->bandwidth, buf, sizeof buf));
    return samp_check_method(a, err);
}

/* ---- Shared numerics ----------------------------------------------------- */

/* A sorted copy of x[0..n) in out. */
static void sorted_copy(const double *x, size_t n, double *out)
{
    memcpy(out, x, n * sizeof *out);
    qsort(out, n, sizeof *out, loss_cmp_double);
}

/* log((e^a + e^b) / 2) without overflow or underflow. */
static double log_mean_exp2(double a, double b)
{
    return fmax(a, b) + log1p(exp(-fabs(a - b))) - SAMP_LN2;
}

/* The largest |x_i| of x[0..n). */
static double max_abs(const double *x, size_t n)
{
    double m = 0.0;
    size_t i;

    for (i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

/* The largest r for which D squared differences of coordinates below
 * 2^(r+1) sum to a finite value: each is below 2^(2r+4) and their sum
 * below 2^(2r+5+ilogb(D)), finite while r <= (1018 - ilogb(D)) / 2 (509
 * for D = 1, 499 for D = 2^20). */
static int max_scaled_exp(size_t d)
{
    return (1018 - ilogb((double)d)) / 2;
}

/* 2^e, e at most 1022 (2^1022, which stays finite and whose inverse is
 * normal). */
static double pow2(int e)
{
    return ldexp(1.0, e < DBL_MAX_EXP - 2 ? e : DBL_MAX_EXP - 2);
}

/* 2^-e for x in [2^e, 2^(e+1)), so that x times it is in [1, 2): scaling
 * by a power of two is exact, so a computation in scaled units rounds as
 * the unscaled one does wherever that one neither overflows nor
 * underflows.  At most 2^1022 (pow2): a subnormal x scales to [2^-52, 1)
 * instead.  1 for x = 0. */
static double pow2_scale(double x)
{
    return pow2(x > 0 ? -ilogb(x) : 0);
}

/* The smallest and largest sample of both sets (D = 1). */
static void pooled_range(const loss_samples_args *a, double *lo, double *hi)
{
    size_t i;

    *lo = *hi = a->p[0];
    for (i = 0; i < a->np; i++)
        *lo = fmin(*lo, a->p[i]), *hi = fmax(*hi, a->p[i]);
    for (i = 0; i < a->nq; i++)
        *lo = fmin(*lo, a->q[i]), *hi = fmax(*hi, a->q[i]);
}

/* ---- histogram ----------------------------------------------------------- */

/* The element of rank r (from 0) of the union of sorted u and v. */
static double merged_at(const double *u, size_t nu, const double *v, size_t nv,
                        size_t r)
{
    size_t i = 0, j = 0;
    double x;

    for (;;) {
        x = (j >= nv || (i < nu && u[i] <= v[j])) ? u[i++] : v[j++];
        if (r-- == 0)
            return x;
    }
}

/* numpy's linear percentile f (0..1) of the pooled sorted sets, with its
 * two-sided interpolation. */
static double pooled_percentile(const double *u, size_t nu, const double *v,
                                size_t nv, double f)
{
    double pos = (double)(nu + nv - 1) * f, t, x0, x1;
    size_t r = (size_t)floor(pos);

    t = pos - (double)r;
    x0 = merged_at(u, nu, v, nv, r);
    x1 = r + 1 < nu + nv ? merged_at(u, nu, v, nv, r + 1) : x0;
    return t >= 0.5 ? x1 - (x1 - x0) * (1.0 - t) : x0 + (x1 - x0) * t;
}

/* Freedman-Diaconis: the number of bins for the pooled sorted sets. */
static size_t fd_bins(const double *u, size_t nu, const double *v, size_t nv,
                      double range)
{
    double iqr = pooled_percentile(u, nu, v, nv, 0.75) -
                 pooled_percentile(u, nu, v, nv, 0.25);
    double width = 2.0 * iqr * pow((double)(nu + nv), -1.0 / 3.0), b;

    if (!(width > 0))
        return 1;
    b = ceil(range / width);
    if (!(b >= 1))
        return 1;
    return b > LOSS_SAMPLES_MAX_BINS ? LOSS_SAMPLES_MAX_BINS : (size_t)b;
}

/* The bins: bin_of(x) is numpy's (x - lo) norm, norm = bins / range,
 * with x - lo and range taken in units scaled by the power of two s.
 * That is exact, so the bins are numpy's wherever its norm is finite; a
 * subnormal range would make norm infinite, and the bin of lo 0 * inf. */
typedef struct hist_bins {
    double lo, s, norm;
    size_t bins;
} hist_bins;

static size_t bin_of(double x, const hist_bins *hb)
{
    double f = (x - hb->lo) * hb->s * hb->norm;

    return f >= (double)hb->bins ? hb->bins - 1 : (size_t)f;
}

/* The samples of sorted s[*at..n) that fall in bin b; advances *at. */
static double bin_count(const double *s, size_t n, size_t *at, size_t b,
                        const hist_bins *hb)
{
    size_t start = *at;

    while (*at < n && bin_of(s[*at], hb) == b)
        (*at)++;
    return (double)(*at - start);
}

/* x log(x/y) with 0 log 0 = 0 and +INFINITY where only y is 0. */
static double rel_entr(double x, double y)
{
    if (x == 0.0)
        return 0.0;
    return y == 0.0 ? INFINITY : x * log(x / y);
}

static void hist_bin(double pb, double qb, samp_est *e)
{
    double m = 0.5 * (pb + qb);

    e->kl_pq += rel_entr(pb, qb);
    e->kl_qp += rel_entr(qb, pb);
    e->js += 0.5 * (rel_entr(pb, m) + rel_entr(qb, m));
    e->h_p -= rel_entr(pb, 1.0);
    e->h_q -= rel_entr(qb, 1.0);
}

/* log(a / b) for a, b > 0, also when the quotient is subnormal or
 * underflows to 0 (a bin's width over a range of 5e-324, a distance
 * divided back from scaled units): then as the difference of logs, else
 * the bits of log(a / b). */
static double log_quotient(double a, double b)
{
    double x = a / b;

    return x >= DBL_MIN ? log(x) : log(a) - log(b);
}

static void samp_histogram(const loss_samples_args *a, loss_samples_out *o,
                           samp_est *e)
{
    double *sp = a->work, *sq = a->work + a->np, lo, hi, dp, dq;
    size_t b, ip = 0, iq = 0, bins;
    hist_bins hb;

    sorted_copy(a->p, a->np, sp);
    sorted_copy(a->q, a->nq, sq);
    pooled_range(a, &lo, &hi);
    if (lo == hi)
        lo -= 0.5, hi += 0.5;
    bins = a->bins ? a->bins : fd_bins(sp, a->np, sq, a->nq, hi - lo);
    hb.lo = lo;
    hb.s = pow2_scale(hi - lo);
    hb.norm = (double)bins / ((hi - lo) * hb.s);
    hb.bins = bins;
    dp = (double)a->np + (double)bins * a->alpha;
    dq = (double)a->nq + (double)bins * a->alpha;
    for (b = 0; b < bins; b++)
        hist_bin((bin_count(sp, a->np, &ip, b, &hb) + a->alpha) / dp,
                 (bin_count(sq, a->nq, &iq, b, &hb) + a->alpha) / dq, e);
    e->js = fmax(e->js, 0.0);
    e->h_p += log_quotient(hi - lo, (double)bins);
    e->h_q += log_quotient(hi - lo, (double)bins);
    o->bins = bins;
}

/* ---- kde ----------------------------------------------------------------- */

/* sqrt of the mean over dimensions of the sample variance (divisor n - 1),
 * each variance from the deviations about the mean.  The deviations are
 * scaled by s (a power of two, exact) to the size of the largest sample,
 * whose squares stay normal: unscaled, samples of 1e-200 square to 0 and
 * would look like samples with no spread. */
static double samp_spread(const double *x, size_t n, size_t d)
{
    double mean, dev, var, total = 0.0, s = pow2_scale(max_abs(x, n * d));
    size_t i, j;

    for (j = 0; j < d; j++) {
        mean = 0.0;
        for (i = 0; i < n; i++)
            mean += x[i * d + j];
        mean /= (double)n;
        var = 0.0;
        for (i = 0; i < n; i++) {
            dev = (x[i * d + j] - mean) * s;
            var += dev * dev;
        }
        total += var / (double)(n - 1);
    }
    return sqrt(total / (double)d) / s;
}

static int kde_bandwidth(const loss_samples_args *a, const char *field,
                         const double *x, size_t n, double *h, loss_error *err)
{
    double dd = (double)a->d, f;
    static const char *const rules[] = {"scott", "silverman"};

    if (a->bandwidth_rule == LOSS_BANDWIDTH_FIXED) {
        *h = a->bandwidth;
        return LOSS_OK;
    }
    if (a->bandwidth_rule == LOSS_BANDWIDTH_SCOTT)
        f = pow((double)n, -1.0 / (dd + 4.0));
    else
        f = pow((double)n * (dd + 2.0) / 4.0, -1.0 / (dd + 4.0));
    *h = f * samp_spread(x, n, a->d);
    if (*h > 0 && isfinite(*h))
        return LOSS_OK;
    return loss_error_at(err, LOSS_E_PARAM, field, 0, 0, 0, 0,
                         "has samples with no spread (all equal), so the %s "
                         "bandwidth is %g; give bandwidth as a number.",
                         rules[a->bandwidth_rule], *h);
}

/* log of the sum over the n points y of exp(-|x - y|^2 / (2 h^2)),
 * leaving out point self (n for none); x, y and h in the same units; t
 * has room for n exponents.  The exponents are found first, then their
 * largest m, so that sum e^(t - m) >= 1 has no term that overflows, and one
 * at least that does not underflow.  Self's term is -inf: e^-inf adds an
 * exact 0.  h is at least 1 in the callers' units (the narrowest bandwidth
 * is scaled into [1, 2)), so c = -1/(2 h^2) is finite; for a bandwidth
 * past 2^511 times the narrowest, h h overflows and c is -0, every term
 * e^0: the kernel is flat to double precision at that width.  The
 * squared distances are finite (kde_rows), so no term is 0 * inf. */
static double kde_log_sum(const double *x, const double *y, size_t n, size_t d,
                          double h, size_t self, double *t)
{
    double m = -INFINITY, c = -0.5 / (h * h);
    size_t i;

    loss_vec_sqdist_rows(x, y, n, d, t);
    for (i = 0; i < n; i++) {
        t[i] *= c;
        m = t[i] > m && i != self ? t[i] : m;
    }
    if (self < n)
        t[self] = -INFINITY;
    /* every caller has two points at least, so one besides self */
    return m + log(loss_sum_exp(t, n, m));
}

/* log of 1 / (n (2 pi)^(D/2) h^D), the kernel's normalization, in the units
 * of h (finite for every h > 0, so taken in the caller's units). */
static double kde_log_norm(size_t n, size_t d, double h)
{
    return -log((double)n) - (double)d * (log(h) + 0.5 * log(2.0 * SAMP_PI));
}

/* One grid point of the 1-D integrals, with its Simpson weight w. */
static void kde_grid_point(double lp, double lq, double w, samp_est *e)
{
    double ep = exp(lp), eq = exp(lq), lm = log_mean_exp2(lp, lq);

    if (ep > 0) {
        e->kl_pq += w * ep * (lp - lq);
        e->h_p -= w * ep * lp;
        e->js += 0.5 * w * ep * (lp - lm);
    }
    if (eq > 0) {
        e->kl_qp += w * eq * (lq - lp);
        e->h_q -= w * eq * lq;
        e->js += 0.5 * w * eq * (lq - lm);
    }
}

/* (x_i - c) s for the n values of x, into out: with c = 0, the bits of
 * x_i s (-0 - 0 is -0). */
static void shift_scale(const double *x, size_t n, double c, double s,
                        double *out)
{
    size_t i;

    for (i = 0; i < n; i++)
        out[i] = (x[i] - c) * s;
}

/* The grid of the 1-D integrals in standardized units: its number of
 * intervals g (even) and its span, or LOSS_E_PARAM when the step would be
 * coarser than 1/KDE_MIN_STEPS of the narrowest bandwidth. */
static int kde_grid_size(const loss_samples_args *a, double hp, double hq,
                         double s, double range, size_t *g, double *span,
                         loss_error *err)
{
    double hn = fmin(hp, hq) * s, steps;
    const char *rule =
        a->bandwidth_rule == LOSS_BANDWIDTH_SCOTT ? "scott" : "silverman";

    *span = range * s + 2.0 * KDE_TAIL * fmax(hp, hq) * s;
    steps = ceil(*span / (hn / KDE_STEPS));
    *g = steps < KDE_GRID_MIN   ? KDE_GRID_MIN
         : steps > KDE_GRID_MAX ? KDE_GRID_MAX
                                : (size_t)steps;
    *g += *g % 2;
    if (*span / (double)*g <= hn / KDE_MIN_STEPS)
        return LOSS_OK;
    if (a->bandwidth_rule == LOSS_BANDWIDTH_FIXED)
        return loss_error_at(err, LOSS_E_PARAM, "bandwidth", 0, 0, 0, 0,
                             "is %.3g, too narrow to integrate over samples "
                             "spanning %.3g; use \"knn\" or a bandwidth of "
                             "at least %.3g.",
                             hn / s, range, range / KDE_MIN_BANDS);
    return loss_error_at(err, LOSS_E_PARAM, "bandwidth", 0, 0, 0, 0,
                         "\"%s\" gives %.3g for %s, too narrow to integrate "
                         "over samples spanning %.3g; use \"knn\" or a "
                         "bandwidth of at least %.3g.",
                         rule, hn / s, hp <= hq ? "p" : "q", range,
                         range / KDE_MIN_BANDS);
}

/* 1-D: Simpson's rule in standardized units, c the pooled minimum and s
 * from the narrowest bandwidth; kl and js are the same in any units, and
 * the entropy of x s is that of x plus log s. */
static int kde_grid(const loss_samples_args *a, double hp, double hq, double s,
                    samp_est *e, loss_ticker *tk, loss_error *err)
{
    double lo, hi, span, dx, u, w;
    double *up = a->work, *uq = up + a->np, *t = uq + a->nq, np, nq;
    size_t g, i;
    int rc;

    pooled_range(a, &lo, &hi);
    if ((rc = kde_grid_size(a, hp, hq, s, hi - lo, &g, &span, err)) != LOSS_OK)
        return rc;
    shift_scale(a->p, a->np, lo, s, up);
    shift_scale(a->q, a->nq, lo, s, uq);
    np = kde_log_norm(a->np, 1, hp * s);
    nq = kde_log_norm(a->nq, 1, hq * s);
    dx = span / (double)g;
    for (i = 0; i <= g; i++) {
        if (loss_tick(tk, a->np + a->nq))
            return loss_stop(err);
        u = -KDE_TAIL * fmax(hp, hq) * s + (double)i * dx;
        w = dx / 3.0 * (i == 0 || i == g ? 1.0 : i % 2 ? 4.0 : 2.0);
        kde_grid_point(np + kde_log_sum(&u, up, a->np, 1, hp * s, a->np, t),
                       nq + kde_log_sum(&u, uq, a->nq, 1, hq * s, a->nq, t), w,
                       e);
    }
    e->js = fmin(fmax(e->js, 0.0), SAMP_LN2);
    e->h_p -= log(s);
    e->h_q -= log(s);
    return LOSS_OK;
}

/* D > 1: copies of the rows times s (a power of two, so exact: each
 * squared distance, and so each exponent, is the unscaled one's bit for bit
 * wherever that one neither overflowed nor underflowed).  Only the copies
 * must stay small enough that D squared differences sum to a finite value
 * (max_scaled_exp); past that, LOSS_E_PARAM. */
static int kde_rows(const loss_samples_args *a, double hmin, double s,
                    double *sp, double *sq, loss_error *err)
{
    double m = fmax(max_abs(a->p, a->np * a->d), max_abs(a->q, a->nq * a->d));
    int limit = max_scaled_exp(a->d);

    if (m > 0 && ilogb(m) + ilogb(s) > limit)
        return loss_error_at(err, LOSS_E_PARAM, "bandwidth", 0, 0, 0, 0,
                             "is %.3g, below 2^-%d of samples as large as "
                             "%.3g, where squared distances overflow; use "
                             "\"knn\" or a wider bandwidth.",
                             hmin, limit, m);
    shift_scale(a->p, a->np * a->d, 0.0, s, sp);
    shift_scale(a->q, a->nq * a->d, 0.0, s, sq);
    return LOSS_OK;
}

/* Resubstitution sums over the samples x of one set (self) against the
 * other, all rows scaled by s: kl and entropy of self, and self's half of
 * js, as means.  The normalizations use the unscaled bandwidths, so the
 * log-densities are those of the unscaled samples.  LOSS_E_STOPPED when
 * the deadline of tk expires. */
static int kde_resub(const double *x, size_t n, const double *y, size_t ny,
                     size_t d, double hx, double hy, double s, double *t,
                     double *kl, double *h, double *js, loss_ticker *tk)
{
    double lx, ly, nx = kde_log_norm(n - 1, d, hx),
                   nyn = kde_log_norm(ny, d, hy);
    size_t i;

    *kl = *h = *js = 0.0;
    for (i = 0; i < n; i++) {
        if (loss_tick(tk, (n + ny) * d))
            return LOSS_E_STOPPED;
        lx = nx + kde_log_sum(x + i * d, x, n, d, hx * s, i, t);
        ly = nyn + kde_log_sum(x + i * d, y, ny, d, hy * s, ny, t);
        *kl += lx - ly;
        *h -= lx;
        *js += lx - log_mean_exp2(lx, ly);
    }
    *kl /= (double)n;
    *h /= (double)n;
    *js /= (double)n;
    return LOSS_OK;
}

static int samp_kde_resub(const loss_samples_args *a, double hp, double hq,
                          double s, samp_est *e, loss_ticker *tk,
                          loss_error *err)
{
    double *sp = a->work, *sq = sp + a->np * a->d, *t = sq + a->nq * a->d;
    double jp, jq;
    int rc;

    if ((rc = kde_rows(a, fmin(hp, hq), s, sp, sq, err)) != LOSS_OK)
        return rc;
    if (kde_resub(sp, a->np, sq, a->nq, a->d, hp, hq, s, t, &e->kl_pq, &e->h_p,
                  &jp, tk) != LOSS_OK ||
        kde_resub(sq, a->nq, sp, a->np, a->d, hq, hp, s, t, &e->kl_qp, &e->h_q,
                  &jq, tk) != LOSS_OK)
        return loss_stop(err);
    e->js = fmin(fmax(0.5 * (jp + jq), 0.0), SAMP_LN2);
    return LOSS_OK;
}

static int samp_kde(const loss_samples_args *a, loss_samples_out *o,
                    samp_est *e, loss_ticker *tk, loss_error *err)
{
    double hp, hq, s;
    int rc;

    if ((rc = kde_bandwidth(a, "p", a->p, a->np, &hp, err)) != LOSS_OK ||
        (rc = kde_bandwidth(a, "q", a->q, a->nq, &hq, err)) != LOSS_OK)
        return rc;
    o->bandwidth_p = hp;
    o->bandwidth_q = hq;
    /* The kernel sums are taken in units scaled by s, the power of two
     * that brings the narrowest bandwidth into [1, 2).  Raw squares of
     * distances and bandwidths overflow or underflow at scales past
     * 1e+-154 (h h = 0 makes every exponent 0 * -inf), while in these
     * units no exponent is lost that double precision could hold. */
    s = pow2_scale(fmin(hp, hq));
    if (a->d == 1)
        return kde_grid(a, hp, hq, s, e, tk, err);
    return samp_kde_resub(a, hp, hq, s, e, tk, err);
}

/* ---- knn ----------------------------------------------------------------- */

/* psi(x), x >= 1: recurrence up to 6, then the asymptotic series. */
static double digamma(double x)
{
    double r = 0.0, f;

    while (x < 6.0) {
        r -= 1.0 / x;
        x += 1.0;
    }
    f = 1.0 / (x * x);
    return r + log(x) - 0.5 / x -
           f * (1.0 / 12 -
                f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
}

/* log V_D = (D/2) log pi - log Gamma(D/2 + 1), the Gamma function of an
 * integer or half-integer as a product. */
static double log_unit_ball(size_t d)
{
    double lg = 0.0;
    size_t j;

    if (d % 2 == 0) {
        for (j = 2; j <= d / 2; j++)
            lg += log((double)j);
    } else {
        lg = 0.5 * log(SAMP_PI);
        for (j = 0; j <= (d - 1) / 2; j++)
            lg += log((double)j + 0.5);
    }
    return 0.5 * (double)d * log(SAMP_PI) - lg;
}

/* Element j of sorted s[0..n) with index self taken out (n for none). */
static double skip_at(const double *s, size_t self, size_t j)
{
    return s[j < self ? j : j + 1];
}

/* 1-D: the distance from x to its k-th nearest in sorted s[0..n), skipping
 * index self (n for none); 1 <= k <= the elements left.  The k nearest
 * are a run of the sorted elements, found by bisection on its start: a
 * run from j is worse than the one from j + 1 when x - a_j > a_(j+k) - x
 * (both sides computed as the distances are, and monotone in j however
 * they round), so O(log n) whatever k, where walking outwards from x's
 * place took O(k): n = 100,000 and k = 99,999 took 110 s.  The k-th
 * nearest distance is the run's largest. */
static double knn_sorted(const double *s, size_t n, double x, size_t self,
                         size_t k)
{
    size_t m = self < n ? n - 1 : n, lo = 0, hi = m - k, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (x - skip_at(s, self, mid) > skip_at(s, self, mid + k) - x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return fmax(x - skip_at(s, self, lo), skip_at(s, self, lo + k - 1) - x);
}

/* Sifts h[i] down the max-heap h[0..k). */
static void heap_down(double *h, size_t k, size_t i)
{
    size_t c;
    double t;

    while ((c = 2 * i + 1) < k) {
        if (c + 1 < k && h[c + 1] > h[c])
            c++;
        if (h[i] >= h[c])
            return;
        t = h[i], h[i] = h[c], h[c] = t;
        i = c;
    }
}

/* Offers the squared distance s to the k smallest kept in the max-heap
 * h[0..k), *filled of them so far. */
static void heap_offer(double *h, size_t k, size_t *filled, double s)
{
    size_t j;

    if (*filled < k) {
        h[(*filled)++] = s;
        for (j = *filled == k ? k / 2 : 0; j-- > 0;)
            heap_down(h, k, j);
    } else if (s < h[0]) {
        h[0] = s;
        heap_down(h, k, 0);
    }
}

/* ---- k-d tree (knn, D > 1) ----------------------------------------------
 * A copy of the rows is permuted into an implicit balanced tree: the node
 * of rows [lo, hi) is row mid = lo + (hi - lo) / 2, split on coordinate
 * depth mod D; rows [lo, mid) have that coordinate <= the node's and rows
 * (mid, hi) >= it.  Ranges of KD_LEAF rows or fewer are leaves, searched
 * row by row.  No other storage. */

#define KD_LEAF 32

static void row_swap(double *s, size_t d, size_t i, size_t j)
{
    size_t c;
    double t;

    for (c = 0; c < d; c++) {
        t = s[i * d + c];
        s[i * d + c] = s[j * d + c];
        s[j * d + c] = t;
    }
}

/* Sifts row lo + i down the max-heap of rows [lo, lo + n) on coordinate
 * c. */
static void rows_sift(double *s, size_t d, size_t lo, size_t n, size_t i,
                      size_t c)
{
    size_t j;

    while ((j = 2 * i + 1) < n) {
        if (j + 1 < n && s[(lo + j + 1) * d + c] > s[(lo + j) * d + c])
            j++;
        if (!(s[(lo + j) * d + c] > s[(lo + i) * d + c]))
            return;
        row_swap(s, d, lo + i, lo + j);
        i = j;
    }
}

/* Sorts rows [lo, hi) on coordinate c: heapsort, O(n log n) in any
 * order, select_row's way out of a run of bad pivots. */
static void rows_heapsort(double *s, size_t d, size_t lo, size_t hi, size_t c)
{
    size_t n = hi - lo, i;

    for (i = n / 2; i-- > 0;)
        rows_sift(s, d, lo, n, i, c);
    for (i = n; i-- > 1;) {
        row_swap(s, d, lo, lo + i);
        rows_sift(s, d, lo, i, 0, c);
    }
}

static double median3(double x, double y, double z)
{
    return fmax(fmin(x, y), fmin(fmax(x, y), z));
}

/* Rearranges rows [lo, hi) of s so that row m holds what it would if they
 * were sorted on coordinate c, with none greater before it and none
 * smaller after it: quickselect with a three-way partition, so that runs
 * of equal values cost no more than others, around the median of the
 * first, middle and last values.  Rows in order (points along a curve)
 * would make the middle value alone the smallest of every range, and no
 * choice of pivot is safe from every order, so after 2 log2 n + 8 rounds
 * the rest is sorted instead: O(n log n) at worst, not O(n^2). */
static void select_row(double *s, size_t d, size_t lo, size_t hi, size_t m,
                       size_t c)
{
    size_t lt, i, gt, rounds = 8, n;
    double pivot, v;

    for (n = hi - lo; n > 1; n >>= 1)
        rounds += 2;
    while (hi - lo > 1) {
        if (rounds-- == 0) {
            rows_heapsort(s, d, lo, hi, c);
            return;
        }
        pivot = median3(s[lo * d + c], s[(lo + (hi - lo) / 2) * d + c],
                        s[(hi - 1) * d + c]);
        lt = i = lo;
        gt = hi;
        while (i < gt) {
            v = s[i * d + c];
            if (v < pivot)
                row_swap(s, d, lt++, i++);
            else if (v > pivot)
                row_swap(s, d, i, --gt);
            else
                i++;
        }
        if (m < lt)
            hi = lt;
        else if (m >= gt)
            lo = gt;
        else
            return;
    }
}

/* Builds the tree of rows [lo, hi), split on coordinate c. */
static void kd_build(double *s, size_t d, size_t lo, size_t hi, size_t c)
{
    size_t mid, next;

    for (; hi - lo > KD_LEAF; lo = mid + 1, c = next) {
        mid = lo + (hi - lo) / 2;
        next = c + 1 == d ? 0 : c + 1;
        select_row(s, d, lo, hi, mid, c);
        kd_build(s, d, lo, mid, next);
    }
}

/* A copy of the n rows of x in out: sorted (D = 1), or times s as a k-d
 * tree. */
static void knn_rows(const double *x, size_t n, size_t d, double s, double *out)
{
    if (d == 1) {
        sorted_copy(x, n, out);
        return;
    }
    shift_scale(x, n * d, 0.0, s, out);
    kd_build(out, d, 0, n, 0);
}

static int rows_equal(const double *u, const double *v, size_t d)
{
    size_t j;

    for (j = 0; j < d && u[j] == v[j]; j++)
        ;
    return j == d;
}

/* One k-nearest search: the point, the tree, the heap of the k smallest
 * squared distances so far (filled of them), and whether one row equal to
 * x (x itself) is still to be passed over. */
typedef struct kd_query {
    const double *x, *s;
    size_t d, k, filled;
    size_t visited; /* rows whose distance was taken, for the deadline */
    int skip;
    double *h;
    double *off;  /* x's offset from the cell's side on each coordinate */
    double slack; /* 1 - a bound on the relative rounding of distances */
} kd_query;

static void kd_offer(kd_query *q, const double *row)
{
    q->visited++;
    if (q->skip && rows_equal(row, q->x, q->d))
        q->skip = 0;
    else
        heap_offer(q->h, q->k, &q->filled, loss_vec_sqdist(q->x, row, q->d));
}

/* Searches rows [lo, hi), split on coordinate c, rd a lower bound on the
 * squared distance from x to any of them (Arya and Mount's incremental
 * distance: the sum of x's squared offsets from the cell's sides): the
 * node, the half on x's side, then the other half unless its bound reaches
 * the k-th smallest distance kept.  The bound is shrunk by q->slack: each
 * step down adds four roundings, of terms no larger than the bound, over
 * at most 60 levels, and a computed distance is low by at most
 * (D / 4 + 2) roundings (loss_vec_sqdist), so no row that an exhaustive
 * search would keep is passed over. */
static void kd_search(kd_query *q, size_t lo, size_t hi, size_t c, double rd)
{
    size_t mid = lo + (hi - lo) / 2, next = c + 1 == q->d ? 0 : c + 1;
    const double *row = q->s + mid * q->d;
    double g, old, far;

    if (hi - lo <= KD_LEAF) {
        for (; lo < hi; lo++)
            kd_offer(q, q->s + lo * q->d);
        return;
    }
    g = q->x[c] - row[c];
    kd_offer(q, row);
    kd_search(q, g < 0.0 ? lo : mid + 1, g < 0.0 ? mid : hi, next, rd);
    old = q->off[c];
    far = rd - old * old + g * g;
    if (q->filled == q->k && far * q->slack >= q->h[0])
        return;
    q->off[c] = g;
    kd_search(q, g < 0.0 ? mid + 1 : lo, g < 0.0 ? hi : mid, next, far);
    q->off[c] = old;
}

/* D > 1: the distance from x to its k-th nearest row of the tree s of n
 * rows; with skip, one row equal to x (x itself) is passed over.  h has
 * room for k + d doubles.  Adds the rows it measured to *visited. */
static double knn_tree(const double *x, const double *s, size_t n, size_t d,
                       int skip, size_t k, double *h, size_t *visited)
{
    double slack = 1.0 - (double)(d + 256) * DBL_EPSILON;
    kd_query q = {x, s, d, k, 0, 0, skip, h, h + k, slack};

    loss_vec_zero(q.off, d);
    kd_search(&q, 0, n, 0, 0.0);
    *visited += q.visited;
    return sqrt(h[0]);
}

/* The first index of x[0..n) holding v. */
static size_t index_of(const double *x, size_t n, double v)
{
    size_t i;

    for (i = 0; i < n && x[i] != v; i++)
        ;
    return i;
}

/* rho_k and nu_k of sample i of set x, from the copies sx, sy: in 1-D i is
 * a position in the sorted sx, otherwise a row of x, and sx, sy are k-d
 * trees of the rows times s, the distances then being s times theirs.
 * Returns the element operations it took, for the deadline: a bisection
 * in 1-D (counted as 64), the distances the tree searches took in D > 1. */
static size_t knn_dists(const loss_samples_args *a, const double *x, size_t n,
                        size_t ny, const double *sx, const double *sy, size_t i,
                        double s, double *rho, double *nu)
{
    double *h = knn_heap(a), *xs = h + a->k + a->d;
    size_t j, visited = 0;

    if (a->d == 1) {
        *rho = knn_sorted(sx, n, sx[i], i, a->k);
        *nu = knn_sorted(sy, ny, sx[i], ny, a->k);
        return 64;
    }
    for (j = 0; j < a->d; j++)
        xs[j] = x[i * a->d + j] * s;
    *rho = knn_tree(xs, sx, n, a->d, 1, a->k, h, &visited);
    *nu = knn_tree(xs, sy, ny, a->d, 0, a->k, h, &visited);
    return visited * a->d;
}

/* kl from set x to set y and the entropy of x, in nats. */
static int knn_side(const loss_samples_args *a, const char *field,
                    const double *x, size_t n, size_t ny, const double *sx,
                    const double *sy, double s, double *kl, double *h,
                    loss_ticker *tk, loss_error *err)
{
    double rho, nu, lrho = 0.0, lnu = 0.0, dd = (double)a->d;
    size_t i, at, ops = 0;

    for (i = 0; i < n; i++) {
        if (loss_tick(tk, ops))
            return loss_stop(err);
        ops = knn_dists(a, x, n, ny, sx, sy, i, s, &rho, &nu);
        if (rho == 0.0 || nu == 0.0) {
            at = a->d == 1 ? index_of(x, n, sx[i]) : i;
            return loss_error_at(err, LOSS_E_INFINITE, field, 1, at, 0, 0,
                                 "has %zu or more samples of %s at distance "
                                 "0, so a logarithm of the k-NN estimate is "
                                 "infinite; lower k or add jitter.",
                                 a->k, rho == 0.0 ? field : "the other set");
        }
        /* the distances divided back by s: exact unless subnormal */
        lrho += log_quotient(rho, s);
        lnu += log_quotient(nu, s);
    }
    *kl = dd / (double)n * (lnu - lrho) + log((double)ny / (double)(n - 1));
    *h = digamma((double)n) - digamma((double)a->k) + log_unit_ball(a->d) +
         dd / (double)n * lrho;
    return LOSS_OK;
}

/* The smallest nonzero |x_i| of x[0..n), or +inf when there is none. */
static double min_abs_nonzero(const double *x, size_t n)
{
    double m = INFINITY;
    size_t i;

    for (i = 0; i < n; i++)
        if (x[i] != 0.0)
            m = fmin(m, fabs(x[i]));
    return m;
}

/* knn's power of two for D > 1.  Squared distances of rows of 1e-200
 * underflow to 0 and read as coincident samples, and scaling to the
 * largest |x| alone would do the same to a set of 1e-100 beside one of
 * 1e100.  So the geometric middle of the smallest nonzero and the largest
 * |x| goes to about 1: samples whose magnitudes span up to 2^1000 keep
 * every squared distance in range.  Never so far up that D squares of the
 * largest overflow (max_scaled_exp), nor past 2^1022. */
static double knn_scale(const loss_samples_args *a)
{
    size_t np = a->np * a->d, nq = a->nq * a->d;
    double hi = fmax(max_abs(a->p, np), max_abs(a->q, nq));
    double lo = fmin(min_abs_nonzero(a->p, np), min_abs_nonzero(a->q, nq));
    int top = max_scaled_exp(a->d), e;

    if (hi == 0.0)
        return 1.0;
    e = -(ilogb(hi) + ilogb(lo)) / 2;
    if (ilogb(hi) + e > top)
        e = top - ilogb(hi);
    return pow2(e);
}

static int samp_knn(const loss_samples_args *a, loss_samples_out *o,
                    samp_est *e, loss_ticker *tk, loss_error *err)
{
    double *sp = a->work, *sq = a->work + a->np * a->d, s = 1.0;
    int rc;

    /* 1-D distances are differences, never squared. */
    if (a->d > 1)
        s = knn_scale(a);
    knn_rows(a->p, a->np, a->d, s, sp);
    knn_rows(a->q, a->nq, a->d, s, sq);
    if ((rc = knn_side(a, "p", a->p, a->np, a->nq, sp, sq, s, &e->kl_pq,
                       &e->h_p, tk, err)) != LOSS_OK ||
        (rc = knn_side(a, "q", a->q, a->nq, a->np, sq, sp, s, &e->kl_qp,
                       &e->h_q, tk, err)) != LOSS_OK)
        return rc;
    e->js = NAN;
    o->k = a->k;
    return LOSS_OK;
}

/* ---- Entry --------------------------------------------------------------- */

static void samp_finish(const loss_samples_args *a, const samp_est *e,
                        loss_samples_out *o)
{
    double scale = 1.0 / log(a->base);

    o->kl_pq = e->kl_pq * scale;
    o->kl_qp = e->kl_qp * scale;
    o->js = e->js * scale;
    o->js_distance = scale > 0 ? sqrt(o->js) : NAN;
    o->entropy_p = e->h_p * scale;
    o->entropy_q = e->h_q * scale;
}

int loss_samples_divergence(const loss_samples_args *a, loss_samples_out *o,
                            loss_error *err)
{
    samp_est e = {0, 0, 0, 0, 0};
    loss_ticker tk;
    int rc;

    assert(a != NULL && o != NULL);
    tk = loss_ticker_start(a->deadline);
    if ((rc = samp_check(a, err)) != LOSS_OK)
        return rc;
    assert(a->work != NULL);
    o->bins = 0;
    o->bandwidth_p = o->bandwidth_q = NAN;
    o->k = 0;
    if (a->method == LOSS_SAMPLES_HISTOGRAM)
        samp_histogram(a, o, &e);
    else if (a->method == LOSS_SAMPLES_KDE)
        rc = samp_kde(a, o, &e, &tk, err);
    else
        rc = samp_knn(a, o, &e, &tk, err);
    if (rc != LOSS_OK)
        return rc;
    samp_finish(a, &e, o);
    return LOSS_OK;
}
