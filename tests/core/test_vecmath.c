/* test_vecmath.c -- the vector maths of the core: loss_exp (core/lossInt.h,
 * its table in core/vecmath.c) and loss_log_array (core/vecmath.c) against
 * libm, within one ulp across the range they compute themselves, libm's
 * own answer at and beyond their edges and for the special values, and
 * loss_log_array writing exactly n elements; the lane sums of
 * loss_vec_dot and loss_vec_sqdist within their stated error bound of a
 * double-double reference, counting every term, in the documented order;
 * loss_sum_exp with the scalar sum's bits, in its documented order;
 * loss_exp_array with loss_exp's bits; loss_sort_doubles in qsort's
 * order. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lossInt.h"
#include "rng.h"

/* |got - want| in units of the last place of want (want finite). */
static double ulps(double got, double want)
{
    double up = nextafter(fabs(want), INFINITY) - fabs(want);

    return got == want ? 0.0 : fabs(got - want) / up;
}

/* ---- loss_exp ------------------------------------------------------------ */

/* Samples [lo, hi]; returns the largest error, in ulps, and counts the
 * results that differ from libm's at all. */
static double worst_over(double lo, double hi, size_t n, size_t *differ)
{
    uint64_t state = 42;
    double worst = 0.0;
    size_t i;

    for (i = 0; i < n; i++) {
        double x = lo + (hi - lo) * rng_unit(&state),
               e = ulps(loss_exp(x), exp(x));

        worst = e > worst ? e : worst;
        *differ += e != 0.0;
    }
    return worst;
}

Test(exp, within_one_ulp_of_libm)
{
    static const double ranges[][2] = {{-708.0, 708.0},  {-40.0, 0.0},
                                       {-1.0, 1.0},      {-1e-6, 1e-6},
                                       {-708.0, -700.0}, {700.0, 708.0}};
    size_t r, differ = 0, n = 400000;

    for (r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        double w = worst_over(ranges[r][0], ranges[r][1], n, &differ);

        cr_expect(w <= 1.0, "[%g, %g]: %.3f ulps from libm", ranges[r][0],
                  ranges[r][1], w);
    }
    /* Both round e^x to within about half an ulp, so they rarely differ. */
    cr_expect(differ < 6 * n / 100, "%zu of %zu differ from libm", differ,
              6 * n);
}

Test(exp, exact_points)
{
    cr_expect_eq(loss_exp(0.0), 1.0);
    cr_expect_eq(loss_exp(-0.0), 1.0);
    /* Tiny arguments: e^x rounds to 1. */
    cr_expect_eq(loss_exp(0x1p-60), 1.0);
    cr_expect_eq(loss_exp(-0x1p-60), 1.0);
    cr_expect_eq(loss_exp(0x1p-54), 1.0);
    /* e^1 and e^-1 correctly rounded. */
    cr_expect_eq(loss_exp(1.0), 2.718281828459045);
    cr_expect_eq(loss_exp(-1.0), 0.36787944117144233);
}

Test(exp, edges_are_libm)
{
    static const double xs[] = {708.0,  708.5,   709.78, 709.8,  710.0,
                                1e300,  -708.0,  -708.5, -730.0, -745.1,
                                -745.2, -1000.0, -1e300};
    size_t i;

    for (i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        double got = loss_exp(xs[i]), want = exp(xs[i]);

        cr_expect(memcmp(&got, &want, sizeof got) == 0 ||
                      ulps(got, want) <= 1.0,
                  "exp(%g) = %.17g, libm %.17g", xs[i], got, want);
    }
    cr_expect(isinf(loss_exp(INFINITY)) && loss_exp(INFINITY) > 0);
    cr_expect_eq(loss_exp(-INFINITY), 0.0);
    cr_expect(isnan(loss_exp(NAN)));
    cr_expect_eq(loss_exp(709.8), INFINITY);
    cr_expect_eq(loss_exp(-746.0), 0.0);
    cr_expect(loss_exp(-740.0) > 0.0 && loss_exp(-740.0) < 0x1p-1022,
              "subnormal result %g", loss_exp(-740.0));
}

/* ---- loss_log_array ------------------------------------------------------ */

/* x drawn by kind: 0 (0, 1), 1 e^[-700, 700], 2 within 0.015 of 1,
 * 3 [0.5, 2), 4 just above DBL_MIN, 5 just below DBL_MAX. */
static double draw(int kind, uint64_t *s)
{
    double u = rng_unit(s);

    switch (kind) {
    case 0:
        return u;
    case 1:
        return exp((u - 0.5) * 1400.0);
    case 2:
        return 1.0 + (u - 0.5) * 0.03;
    case 3:
        return 0.5 + 1.5 * u;
    case 4:
        return DBL_MIN * (1.0 + 1000.0 * u);
    default:
        return DBL_MAX * (1.0 - 0.5 * u);
    }
}

Test(log, within_one_ulp_of_libm)
{
    const size_t n = 400003; /* not a multiple of four */
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    uint64_t s = 7;
    size_t i, differ = 0;
    int kind;

    cr_assert(x != NULL && y != NULL);
    for (kind = 0; kind < 6; kind++) {
        double worst = 0.0, at = 0.0;

        for (i = 0; i < n; i++)
            x[i] = draw(kind, &s);
        loss_log_array(x, y, n);
        for (i = 0; i < n; i++) {
            double e = ulps(y[i], log(x[i]));
            if (e > worst)
                worst = e, at = x[i];
            differ += e != 0.0;
        }
        cr_expect(worst <= 1.0, "kind %d: %.3f ulps from libm at %.17g", kind,
                  worst, at);
    }
    cr_expect(differ < 6 * n / 50, "%zu of %zu differ from libm", differ,
              6 * n);
    free(x), free(y);
}

Test(log, exact_points)
{
    double x[8] = {1.0, 2.0, 0.5, 4.0, 1.0, 1.0, 8.0, 1.0}, y[8];
    int i;

    loss_log_array(x, y, 8);
    for (i = 0; i < 8; i++)
        cr_expect(ulps(y[i], log(x[i])) <= 0.5, "log(%g) = %.17g", x[i], y[i]);
    cr_expect(y[0] == 0.0 && !signbit(y[0]), "log 1 = %g", y[0]);
    cr_expect_eq(y[1], 0.69314718055994529);
    cr_expect_eq(y[2], -0.69314718055994529);
}

/* Special values, each in a four with ordinary ones, come back as libm
 * gives them; the ordinary ones beside them are still right. */
Test(log, special_values_are_libm)
{
    const double sp[] = {0.0,      -0.0,      -1.0, DBL_MIN / 4, 4.9e-324,
                         INFINITY, -INFINITY, NAN,  -DBL_MAX};
    size_t k, i;

    for (k = 0; k < sizeof sp / sizeof sp[0]; k++) {
        double x[5] = {0.25, 3.0, 7.5, 0.001, 9.0}, y[5], want;

        x[k % 4] = sp[k];
        loss_log_array(x, y, 5);
        for (i = 0; i < 5; i++) {
            want = log(x[i]);
            if (isnan(want))
                cr_expect(isnan(y[i]), "log(%g) = %g, want NaN", x[i], y[i]);
            else
                cr_expect(memcmp(&y[i], &want, sizeof want) == 0,
                          "log(%g) = %.17g, libm %.17g", x[i], y[i], want);
        }
    }
}

Test(log, every_length)
{
    double x[11], y[11];
    size_t n, i;

    for (n = 0; n <= 11; n++) {
        for (i = 0; i < 11; i++)
            x[i] = 0.1 * (double)(i + 1), y[i] = -7.0;
        loss_log_array(x, y, n);
        for (i = 0; i < n; i++)
            cr_expect(ulps(y[i], log(x[i])) <= 1.0, "n %zu: y[%zu] %g", n, i,
                      y[i]);
        for (; i < 11; i++)
            cr_expect_eq(y[i], -7.0, "n %zu: y[%zu] written", n, i);
    }
}

/* ---- Sums of products --------------------------------------------------- */

/* Adds a + b to the double-double (*hi, *lo) (Knuth's two-sum). */
static void dd_add(double *hi, double *lo, double a, double b)
{
    double s = *hi + a, bb = s - *hi, e = (*hi - (s - bb)) + (a - bb);

    *hi = s;
    *lo += e + b;
}

/* u . v and the sum of |u_j v_j|, in double-double: each product split
 * exactly into its rounded value and its error by fma. */
static double dot_ref(const double *u, const double *v, size_t d, double *mag)
{
    double hi = 0.0, lo = 0.0, p;
    size_t j;

    *mag = 0.0;
    for (j = 0; j < d; j++) {
        p = u[j] * v[j];
        dd_add(&hi, &lo, p, fma(u[j], v[j], -p));
        *mag += fabs(p);
    }
    return hi + lo;
}

/* ||u - v||^2 and the same as its own magnitude: each difference exact as
 * hi + lo, its square hi^2 (split by fma) + 2 hi lo + lo^2. */
static double sqdist_ref(const double *u, const double *v, size_t d,
                         double *mag)
{
    double hi = 0.0, lo = 0.0, t, te, bb, p;
    size_t j;

    for (j = 0; j < d; j++) {
        t = u[j] - v[j];
        bb = t - u[j];
        te = (u[j] - (t - bb)) + (-v[j] - bb);
        p = t * t;
        dd_add(&hi, &lo, p, fma(t, t, -p) + 2.0 * t * te + te * te);
    }
    *mag = hi + lo;
    return *mag;
}

/* A value of either sign, |x| from 2^-20 to 2^20. */
static double spread(uint64_t *s)
{
    double x = ldexp(rng_unit(s), (int)(rng_next(s) % 41) - 20);

    return rng_next(s) & 1 ? -x : x;
}

/* Every length up to 300, 20 random pairs each: the error bound of
 * core/vecmath.c, (ceil(d / 4) + 2) units of eps / 2 times the sum of
 * |term| for the dot product, two more for a squared difference. */
Test(dot, within_the_stated_bound)
{
    double u[300], v[300], want, mag, got, bound;
    uint64_t s = 0x5eedd07u;
    size_t d, r, j;

    for (d = 1; d <= 300; d++) {
        for (r = 0; r < 20; r++) {
            for (j = 0; j < d; j++)
                u[j] = spread(&s), v[j] = spread(&s);
            want = dot_ref(u, v, d, &mag);
            got = loss_vec_dot(u, v, d);
            bound = (double)((d + 3) / 4 + 2) * 0x1p-53 * mag;
            cr_expect(fabs(got - want) <= bound, "d %zu: dot %.17g, want %.17g",
                      d, got, want);
            want = sqdist_ref(u, v, d, &mag);
            got = loss_vec_sqdist(u, v, d);
            bound = (double)((d + 3) / 4 + 4) * 0x1p-53 * mag;
            cr_expect(fabs(got - want) <= bound,
                      "d %zu: sqdist %.17g, want %.17g", d, got, want);
        }
    }
}

/* Small integers sum exactly in any order: every length from 0 to 13
 * gives the exact total, so no term is dropped or counted twice. */
Test(dot, every_length_counts_every_term)
{
    double u[13], v[13];
    long dot, sq, uu;
    size_t d, j;

    for (j = 0; j < 13; j++)
        u[j] = (double)(j + 1), v[j] = (double)(j % 3) - 1.0;
    for (d = 0; d <= 13; d++) {
        for (dot = sq = uu = 0, j = 0; j < d; j++) {
            dot += (long)(j + 1) * ((long)(j % 3) - 1);
            uu += (long)(j + 1) * (long)(j + 1);
            sq += ((long)(j + 1) - ((long)(j % 3) - 1)) *
                  ((long)(j + 1) - ((long)(j % 3) - 1));
        }
        cr_expect_eq(loss_vec_dot(u, v, d), (double)dot, "d %zu", d);
        cr_expect_eq(loss_vec_sqdist(u, v, d), (double)sq, "d %zu", d);
        cr_expect_eq(loss_vec_norm(u, d), sqrt((double)uu), "d %zu", d);
    }
}

/* Terms where the order shows: 1e16 + 1 rounds back to 1e16, so a running
 * sum and the lanes disagree.  Lane l takes terms l, l + 4, ...; the lanes
 * add as (0 + 1) + (2 + 3). */
Test(dot, lanes_add_in_the_documented_order)
{
    const double ones[6] = {1, 1, 1, 1, 1, 1};
    const double a[4] = {1e16, 1, -1e16, 1};
    const double b[6] = {1e16, -1e16, 1, 1, 1, 1};

    cr_expect_eq(loss_vec_dot(a, ones, 4), (1e16 + 1.0) + (-1e16 + 1.0));
    cr_expect_eq(loss_vec_dot(b, ones, 6),
                 ((1e16 + 1.0) + (-1e16 + 1.0)) + (1.0 + 1.0));
}

/* ---- loss_sum_exp -------------------------------------------------------- */

/* The documented sum, one term at a time with the scalar loss_exp. */
static double sum_exp_reference(const double *x, size_t n, double m)
{
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    size_t i;

    for (i = 0; i < n; i++)
        s[i % 4] += loss_exp(x[i] - m);
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* x[0..n) drawn by kind: 0 in [-40, 0], 1 in [-708, 708], 2 in [-700, 0]
 * with one in five in [-760, -720], beyond loss_exp's own range. */
static void sum_exp_draw(double *x, size_t n, int kind, uint64_t *state)
{
    size_t i;

    for (i = 0; i < n; i++) {
        uint64_t r = rng_next(state);
        double u = rng_unit(state);

        x[i] = kind == 0    ? -40.0 * u
               : kind == 1  ? 1416.0 * (u - 0.5)
               : r % 5 == 0 ? -720.0 - 40.0 * u
                            : -700.0 * u;
    }
}

/* Every term alone: four equal terms {v, v, v, v} sum to exactly four
 * times one, and {v, v, -750, -750} (a four that libm takes over, e^-750
 * = 0) to twice one; either must be the scalar loss_exp's bits.  Fused
 * multiply-adds in the four-wide path would change about one term in
 * 1,500, libm's exp in the mixed fours a few in 100. */
Test(sum_exp, every_term_is_loss_exp)
{
    uint64_t state = 11;
    double v[256], x[4], got, want;
    size_t r, i, mixed;
    int kind;

    for (kind = 0; kind < 3; kind++)
        for (r = 0; r < 400; r++) {
            sum_exp_draw(v, 256, kind, &state);
            for (i = 0; i < 256; i++) {
                mixed = i % 2 && fabs(v[i]) <= 708.0;
                x[0] = x[1] = v[i];
                x[2] = x[3] = mixed ? -750.0 : v[i];
                got = loss_sum_exp(x, 4, 0.0);
                want = (mixed ? 2.0 : 4.0) * loss_exp(v[i]);
                cr_assert(memcmp(&got, &want, sizeof got) == 0,
                          "e^%.17g%s: %.17g, want %.17g", v[i],
                          mixed ? " (mixed)" : "", got, want);
            }
        }
}

/* Every length to 41, then 100 sums of 1,000 terms, for each kind: the
 * scalar sum's bits. */
Test(sum_exp, same_bits_as_the_scalar_sum)
{
    uint64_t state = 7;
    double x[1000], got, want, m;
    size_t n, r;
    int kind;

    for (kind = 0; kind < 3; kind++)
        for (r = 0; r < 142; r++) {
            n = r < 42 ? r : 1000;
            sum_exp_draw(x, n, kind, &state);
            m = kind == 1 ? -10.0 : 0.0;
            got = loss_sum_exp(x, n, m);
            want = sum_exp_reference(x, n, m);
            cr_assert(memcmp(&got, &want, sizeof got) == 0,
                      "kind %d n %zu: %.17g, want %.17g", kind, n, got, want);
        }
}

Test(sum_exp, lanes_add_in_the_documented_order)
{
    /* One term e^40 (an ulp of 32), then 87 terms e^0 = 1: one at a time
     * each 1 is lost against e^40; in lanes, 22 of them add up in each of
     * lanes 1 to 3 before they meet it. */
    double x[88] = {40.0}, e = loss_exp(40.0), lane0 = e, seq = e, want;
    size_t i;

    for (i = 1; i < 88; i++) {
        seq += 1.0;
        if (i % 4 == 0)
            lane0 += 1.0;
    }
    want = (lane0 + 22.0) + (22.0 + 22.0);
    cr_assert(want != seq, "the data must tell the orders apart");
    cr_expect_eq(loss_sum_exp(x, 88, 0.0), want);
    cr_expect_eq(loss_sum_exp(x, 0, 0.0), 0.0);
    cr_expect_eq(loss_sum_exp(x + 1, 3, 0.0), 3.0);
}

/* ---- loss_exp_array ------------------------------------------------------ */

/* Every element the scalar loss_exp's bits, at every length to 41 and in
 * arrays of 1,000, for each kind of sum_exp_draw (fours past 708 among
 * them, and NaN and infinities put in), exactly n elements written, and
 * the same in place. */
Test(exp_array, same_bits_as_loss_exp)
{
    static const double special[] = {NAN,    INFINITY, -INFINITY, 709.0,
                                     -745.2, 0.0,      -0.0,      708.0};
    uint64_t state = 5;
    double x[1001], y[1001], same[1001], want;
    size_t n, r, i;
    int kind;

    for (kind = 0; kind < 3; kind++)
        for (r = 0; r < 142; r++) {
            n = r < 42 ? r : 1000;
            sum_exp_draw(x, n, kind, &state);
            if (n > 0 && r % 3 == 0)
                x[rng_next(&state) % n] = special[r / 3 % 8];
            y[n] = 12345.0;
            loss_exp_array(x, y, n);
            for (i = 0; i < n; i++) {
                want = loss_exp(x[i]);
                cr_assert(memcmp(&y[i], &want, sizeof want) == 0,
                          "kind %d n %zu: e^%.17g = %.17g, want %.17g", kind, n,
                          x[i], y[i], want);
            }
            cr_assert_eq(y[n], 12345.0, "n %zu: wrote past the end", n);
            memcpy(same, x, n * sizeof x[0]);
            loss_exp_array(same, same, n);
            cr_assert(memcmp(same, y, n * sizeof y[0]) == 0,
                      "kind %d n %zu: in place differs", kind, n);
        }
}

/* ---- Sorting ------------------------------------------------------------ */

/* Sorts n values drawn by kind with loss_sort_doubles and checks them
 * against qsort's order of the same values (zeros of either sign compare
 * equal there, as they do here). */
static void sort_check(size_t n, int kind, uint64_t *s)
{
    double *x = malloc(n * sizeof *x + 1), *want = malloc(n * sizeof *x + 1),
           *tmp = malloc(n * sizeof *x + 1);
    size_t i;

    cr_assert(x != NULL && want != NULL && tmp != NULL);
    for (i = 0; i < n; i++) {
        uint64_t r = rng_next(s);
        if (kind == 0) /* every sign and magnitude, zeros, infinities */
            x[i] = r % 17 == 0 ? (r & 32 ? -0.0 : 0.0)
                   : r % 29 == 0
                       ? (r & 32 ? -INFINITY : INFINITY)
                       : ldexp(rng_unit(s) - 0.5, (int)(r % 2001) - 1000);
        else if (kind == 1) /* one magnitude: most passes skipped */
            x[i] = 1.0 + ldexp((double)(r % 1000), -40);
        else /* few distinct values: long runs of ties */
            x[i] = (double)(r % 7) - 3.0;
    }
    memcpy(want, x, n * sizeof *x);
    qsort(want, n, sizeof *want, loss_cmp_double);
    loss_sort_doubles(x, n, tmp);
    for (i = 0; i < n; i++) {
        cr_assert(x[i] == want[i], "n %zu kind %d: [%zu] %g, want %g", n, kind,
                  i, x[i], want[i]);
    }
    free(x), free(want), free(tmp);
}

/* Every length up to 130 (across the switch to the radix passes) and a few
 * large ones, for each kind of data. */
Test(sort, matches_qsort)
{
    uint64_t s = 0x5027u;
    size_t n;
    int kind;

    for (kind = 0; kind < 3; kind++) {
        for (n = 0; n <= 130; n++)
            sort_check(n, kind, &s);
        sort_check(1000, kind, &s);
        sort_check(4099, kind, &s);
    }
}
