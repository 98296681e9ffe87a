/* test_log.c -- loss_log_array (core/vecmath.c) against libm's log: within
 * one ulp across the range, libm's own answer for the special values, and
 * every element written whatever the array's length. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lossInt.h"

/* |got - want| in units of the last place of want (want finite). */
static double ulps(double got, double want)
{
    double up = nextafter(fabs(want), INFINITY) - fabs(want);

    return got == want ? 0.0 : fabs(got - want) / up;
}

static double uniform(uint64_t *state)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return ((double)(*state >> 11) + 0.5) * 0x1p-53;
}

/* x drawn by kind: 0 (0, 1), 1 e^[-700, 700], 2 within 0.015 of 1,
 * 3 [0.5, 2), 4 just above DBL_MIN, 5 just below DBL_MAX. */
static double draw(int kind, uint64_t *s)
{
    double u = uniform(s);

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
