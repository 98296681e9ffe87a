/* test_exp.c -- loss_exp (core/lossInt.h, table in core/vecmath.c) against
 * libm's exp: within one ulp over the whole range it computes itself, and
 * libm's own result at and beyond its edges. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lossInt.h"

/* |got - want| in units of the last place of want (want finite, > 0). */
static double ulps(double got, double want)
{
    return fabs(got - want) / (nextafter(want, INFINITY) - want);
}

/* A deterministic stream of uniform doubles in [0, 1). */
static double uniform(uint64_t *state)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return (double)(*state >> 11) * 0x1p-53;
}

/* Samples [lo, hi]; returns the largest error, in ulps, and counts the
 * results that differ from libm's at all. */
static double worst_over(double lo, double hi, size_t n, size_t *differ)
{
    uint64_t state = 42;
    double worst = 0.0;
    size_t i;

    for (i = 0; i < n; i++) {
        double x = lo + (hi - lo) * uniform(&state),
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
