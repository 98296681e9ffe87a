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
 *     max + 6 h_max], the step h_min / 8 with g kept in [1024, 16384].  For
 *     D > 1 they are resubstitution averages over the samples:
 *     kl_pq = mean over x in p of log p(x) - log q(x), entropy_p =
 *     -mean log p(x), js = 1/2 mean_p log(p/m) + 1/2 mean_q log(q/m),
 *     m = (p + q)/2, clamped to [0, ln 2], where the density of a set at
 *     one of its own samples leaves that sample out (its own kernel would
 *     inflate p(x) by about n^-1 h^-D and bias kl upwards).  Log-densities
 *     are log-sum-exps accumulated with a running maximum, so far tails
 *     never underflow.
 *   - knn: with rho_k(i) the distance from p_i to its k-th nearest
 *     neighbour among the other samples of p and nu_k(i) that to its k-th
 *     nearest in q (Euclidean),
 *       kl_pq = (D/np) sum_i log(nu_k(i) / rho_k(i)) + log(nq / (np - 1))
 *     (Wang, Kulkarni and Verdu 2009), kl_qp with the roles swapped, and the
 *     Kozachenko-Leonenko entropy
 *       entropy_p = psi(np) - psi(k) + log V_D + (D/np) sum_i log rho_k(i),
 *     V_D = pi^(D/2) / Gamma(D/2 + 1) the volume of the unit ball.  js and
 *     js_distance are not defined by this estimator: NaN.
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
 *   - knn needs 1 <= k <= min(np, nq) - 1 (LOSS_E_PARAM on k); a sample with
 *     k others at distance 0, in its own set or the other, makes a logarithm
 *     infinite: LOSS_E_INFINITE at that sample.
 *   - kl estimates from kde (D > 1) and knn may be slightly negative on
 *     nearly equal distributions; they are returned as computed.
 *
 * Accuracy:
 *   The arithmetic is accurate to a few ulps per term; the estimates carry
 *   the statistical error of their method, which the tests measure against
 *   closed forms (5,000 samples per side).
 *
 * Work and cost:
 *   loss_samples_divergence_work: np + nq doubles (sorted copies, or kde's
 *   exponents at one point), and for
 *   knn (np + nq) D + k, + D when D > 1 (sorted rows or k-d trees, a heap,
 *   the tree search's offsets), with k counted only up to min(np, nq) - 1
 *   so that an invalid k never sizes the work; SIZE_MAX on overflow.  histogram O(n log n + B); kde 1-D
 *   O(g n), D > 1 O(n^2 D); knn 1-D O(n log n + n k); knn D > 1 builds a
 *   k-d tree of each set and searches it exactly, pruning cells by their
 *   distance: O(n log n) for a few dimensions, tending to O(n^2 D) as D
 *   nears log2 n.  Here n = np + nq.  At 10,000 samples per side (make
 *   bench): histogram 3 ms, knn 1-D 6 ms, kde 1-D 0.08 s, knn 3-D 0.08 s
 *   (a slab search by the first coordinate took 0.35 s, an exhaustive
 *   search 2 s), kde 3-D 1.6 s (2.9 s with a running maximum and one
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
    size_t offsets = a->d > 1 ? a->d : 0, extra, n;

    if (a->np > SIZE_MAX - a->nq || offsets > SIZE_MAX - k)
        return SIZE_MAX;
    extra = k + offsets;
    n = a->np + a->nq;
    if (a->method != LOSS_SAMPLES_KNN)
        return n;
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

static size_t bin_of(double x, double lo, double norm, size_t bins)
{
    double f = (x - lo) * norm;

    return f >= (double)bins ? bins - 1 : (size_t)f;
}

/* The samples of sorted s[*at..n) that fall in bin b; advances *at. */
static double bin_count(const double *s, size_t n, size_t *at, size_t b,
                        double lo, double norm, size_t bins)
{
    size_t start = *at;

    while (*at < n && bin_of(s[*at], lo, norm, bins) == b)
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

static void samp_histogram(const loss_samples_args *a, loss_samples_out *o,
                           samp_est *e)
{
    double *sp = a->work, *sq = a->work + a->np, lo, hi, norm, dp, dq;
    size_t b, ip = 0, iq = 0, bins;

    sorted_copy(a->p, a->np, sp);
    sorted_copy(a->q, a->nq, sq);
    pooled_range(a, &lo, &hi);
    if (lo == hi)
        lo -= 0.5, hi += 0.5;
    bins = a->bins ? a->bins : fd_bins(sp, a->np, sq, a->nq, hi - lo);
    norm = (double)bins / (hi - lo);
    dp = (double)a->np + (double)bins * a->alpha;
    dq = (double)a->nq + (double)bins * a->alpha;
    for (b = 0; b < bins; b++)
        hist_bin((bin_count(sp, a->np, &ip, b, lo, norm, bins) + a->alpha) / dp,
                 (bin_count(sq, a->nq, &iq, b, lo, norm, bins) + a->alpha) / dq,
                 e);
    e->js = fmax(e->js, 0.0);
    e->h_p += log((hi - lo) / (double)bins);
    e->h_q += log((hi - lo) / (double)bins);
    o->bins = bins;
}

/* ---- kde ----------------------------------------------------------------- */

/* sqrt of the mean over dimensions of the sample variance (divisor n - 1),
 * each variance from the deviations about the mean. */
static double samp_spread(const double *x, size_t n, size_t d)
{
    double mean, dev, var, total = 0.0;
    size_t i, j;

    for (j = 0; j < d; j++) {
        mean = 0.0;
        for (i = 0; i < n; i++)
            mean += x[i * d + j];
        mean /= (double)n;
        var = 0.0;
        for (i = 0; i < n; i++) {
            dev = x[i * d + j] - mean;
            var += dev * dev;
        }
        total += var / (double)(n - 1);
    }
    return sqrt(total / (double)d);
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

/* log of the kernel density estimate of the n points y at x, leaving out
 * point self (n for none); t has room for n exponents.  The exponents
 * are found first, then their largest m, so that sum e^(t - m) >= 1 has
 * no term that overflows, and one at least that does not underflow.
 * Self's term is -inf: e^-inf adds an exact 0. */
static double kde_log_density(const double *x, const double *y, size_t n,
                              size_t d, double h, size_t self, double *t)
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
    return m + log(loss_sum_exp(t, n, m)) -
           log((double)(self < n ? n - 1 : n)) -
           (double)d * (log(h) + 0.5 * log(2.0 * SAMP_PI));
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

static void kde_grid(const loss_samples_args *a, double hp, double hq,
                     samp_est *e)
{
    double lo, hi, hmax = fmax(hp, hq), steps, dx, x, w, *t = a->work;
    size_t g, i;

    pooled_range(a, &lo, &hi);
    lo -= KDE_TAIL * hmax;
    hi += KDE_TAIL * hmax;
    steps = ceil((hi - lo) / (fmin(hp, hq) / KDE_STEPS));
    g = steps < KDE_GRID_MIN   ? KDE_GRID_MIN
        : steps > KDE_GRID_MAX ? KDE_GRID_MAX
                               : (size_t)steps;
    g += g % 2;
    dx = (hi - lo) / (double)g;
    for (i = 0; i <= g; i++) {
        x = lo + (double)i * dx;
        w = dx / 3.0 * (i == 0 || i == g ? 1.0 : i % 2 ? 4.0 : 2.0);
        kde_grid_point(kde_log_density(&x, a->p, a->np, 1, hp, a->np, t),
                       kde_log_density(&x, a->q, a->nq, 1, hq, a->nq, t), w, e);
    }
    e->js = fmin(fmax(e->js, 0.0), SAMP_LN2);
}

/* Resubstitution sums over the samples x of one set (self) against the
 * other: kl and entropy of self, and self's half of js, as means. */
static void kde_resub(const double *x, size_t n, const double *y, size_t ny,
                      size_t d, double hx, double hy, double *t, double *kl,
                      double *h, double *js)
{
    double lx, ly;
    size_t i;

    *kl = *h = *js = 0.0;
    for (i = 0; i < n; i++) {
        lx = kde_log_density(x + i * d, x, n, d, hx, i, t);
        ly = kde_log_density(x + i * d, y, ny, d, hy, ny, t);
        *kl += lx - ly;
        *h -= lx;
        *js += lx - log_mean_exp2(lx, ly);
    }
    *kl /= (double)n;
    *h /= (double)n;
    *js /= (double)n;
}

static int samp_kde(const loss_samples_args *a, loss_samples_out *o,
                    samp_est *e, loss_error *err)
{
    double hp, hq, jp, jq;
    int rc;

    if ((rc = kde_bandwidth(a, "p", a->p, a->np, &hp, err)) != LOSS_OK ||
        (rc = kde_bandwidth(a, "q", a->q, a->nq, &hq, err)) != LOSS_OK)
        return rc;
    o->bandwidth_p = hp;
    o->bandwidth_q = hq;
    if (a->d == 1) {
        kde_grid(a, hp, hq, e);
        return LOSS_OK;
    }
    kde_resub(a->p, a->np, a->q, a->nq, a->d, hp, hq, a->work, &e->kl_pq,
              &e->h_p, &jp);
    kde_resub(a->q, a->nq, a->p, a->np, a->d, hq, hp, a->work, &e->kl_qp,
              &e->h_q, &jq);
    e->js = fmin(fmax(0.5 * (jp + jq), 0.0), SAMP_LN2);
    return LOSS_OK;
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

/* First index of sorted s[0..n) holding a value >= x. */
static size_t lower_bound(const double *s, size_t n, double x)
{
    size_t lo = 0, hi = n, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (s[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* 1-D: the distance from x to its k-th nearest in sorted s[0..n), skipping
 * index self (n for none), walking outwards from x's place. */
static double knn_sorted(const double *s, size_t n, double x, size_t self,
                         size_t k)
{
    size_t lo = lower_bound(s, n, x), hi = lo, c = 0;
    double dl, dr, dist = 0.0;

    while (c < k) {
        if (lo > 0 && lo - 1 == self) {
            lo--;
            continue;
        }
        if (hi < n && hi == self) {
            hi++;
            continue;
        }
        dl = lo > 0 ? x - s[lo - 1] : INFINITY;
        dr = hi < n ? s[hi] - x : INFINITY;
        dist = dl <= dr ? dl : dr;
        if (dl <= dr)
            lo--;
        else
            hi++;
        c++;
    }
    return dist;
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

/* Rearranges rows [lo, hi) of s so that row m holds what it would if they
 * were sorted on coordinate c, with none greater before it and none
 * smaller after it: quickselect with a three-way partition, so that runs
 * of equal values cost no more than others. */
static void select_row(double *s, size_t d, size_t lo, size_t hi, size_t m,
                       size_t c)
{
    size_t lt, i, gt;
    double pivot, v;

    while (hi - lo > 1) {
        pivot = s[(lo + (hi - lo) / 2) * d + c];
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

/* A copy of the n rows of x in out: sorted (D = 1), or as a k-d tree. */
static void knn_rows(const double *x, size_t n, size_t d, double *out)
{
    if (d == 1) {
        sorted_copy(x, n, out);
        return;
    }
    memcpy(out, x, n * d * sizeof *out);
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
    int skip;
    double *h;
    double *off;  /* x's offset from the cell's side on each coordinate */
    double slack; /* 1 - a bound on the relative rounding of distances */
} kd_query;

static void kd_offer(kd_query *q, const double *row)
{
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
 * room for k + d doubles. */
static double knn_tree(const double *x, const double *s, size_t n, size_t d,
                       int skip, size_t k, double *h)
{
    kd_query q = {
        x, s, d, k, 0, skip, h, h + k, 1.0 - (double)(d + 256) * DBL_EPSILON};

    loss_vec_zero(q.off, d);
    kd_search(&q, 0, n, 0, 0.0);
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

/* rho_k and nu_k of sample i of set x, from the sorted copies sx, sy: in
 * 1-D i is a position in sx, otherwise a row of x and sx, sy are its rows
 * sorted by first coordinate. */
static void knn_dists(const loss_samples_args *a, const double *x, size_t n,
                      size_t ny, const double *sx, const double *sy, size_t i,
                      double *rho, double *nu)
{
    if (a->d == 1) {
        *rho = knn_sorted(sx, n, sx[i], i, a->k);
        *nu = knn_sorted(sy, ny, sx[i], ny, a->k);
        return;
    }
    *rho = knn_tree(x + i * a->d, sx, n, a->d, 1, a->k, knn_heap(a));
    *nu = knn_tree(x + i * a->d, sy, ny, a->d, 0, a->k, knn_heap(a));
}

/* kl from set x to set y and the entropy of x, in nats. */
static int knn_side(const loss_samples_args *a, const char *field,
                    const double *x, size_t n, size_t ny, const double *sx,
                    const double *sy, double *kl, double *h, loss_error *err)
{
    double rho, nu, lrho = 0.0, lnu = 0.0, dd = (double)a->d;
    size_t i, at;

    for (i = 0; i < n; i++) {
        knn_dists(a, x, n, ny, sx, sy, i, &rho, &nu);
        if (rho == 0.0 || nu == 0.0) {
            at = a->d == 1 ? index_of(x, n, sx[i]) : i;
            return loss_error_at(err, LOSS_E_INFINITE, field, 1, at, 0, 0,
                                 "has %zu or more samples of %s at distance "
                                 "0, so a logarithm of the k-NN estimate is "
                                 "infinite; lower k or add jitter.",
                                 a->k, rho == 0.0 ? field : "the other set");
        }
        lrho += log(rho);
        lnu += log(nu);
    }
    *kl = dd / (double)n * (lnu - lrho) + log((double)ny / (double)(n - 1));
    *h = digamma((double)n) - digamma((double)a->k) + log_unit_ball(a->d) +
         dd / (double)n * lrho;
    return LOSS_OK;
}

static int samp_knn(const loss_samples_args *a, loss_samples_out *o,
                    samp_est *e, loss_error *err)
{
    double *sp = a->work, *sq = a->work + a->np * a->d;
    int rc;

    knn_rows(a->p, a->np, a->d, sp);
    knn_rows(a->q, a->nq, a->d, sq);
    if ((rc = knn_side(a, "p", a->p, a->np, a->nq, sp, sq, &e->kl_pq, &e->h_p,
                       err)) != LOSS_OK ||
        (rc = knn_side(a, "q", a->q, a->nq, a->np, sq, sp, &e->kl_qp, &e->h_q,
                       err)) != LOSS_OK)
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
    int rc;

    assert(a != NULL && o != NULL);
    if ((rc = samp_check(a, err)) != LOSS_OK)
        return rc;
    assert(a->work != NULL);
    o->bins = 0;
    o->bandwidth_p = o->bandwidth_q = NAN;
    o->k = 0;
    if (a->method == LOSS_SAMPLES_HISTOGRAM)
        samp_histogram(a, o, &e);
    else if (a->method == LOSS_SAMPLES_KDE)
        rc = samp_kde(a, o, &e, err);
    else
        rc = samp_knn(a, o, &e, err);
    if (rc != LOSS_OK)
        return rc;
    samp_finish(a, &e, o);
    return LOSS_OK;
}
