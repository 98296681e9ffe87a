/* check.c -- the validation every loss family shares: empty batches, missing
 * inputs, enumerated options, parameters, non-finite numbers and labels, each
 * failure reported on its field and index in the one sentence form of
 * loss_error_at ("labels[3] is 7, outside [0, 5)."). */
#include <math.h>

#include "lossInt.h"

int loss_check_batch(loss_error *err, const char *field, size_t n)
{
    if (n > 0)
        return LOSS_OK;
    return loss_error_at(err, LOSS_E_EMPTY, field, 0, 0, 0, 0,
                         "is empty: the batch has no samples.");
}

int loss_check_classes(loss_error *err, const char *field, size_t k)
{
    if (k > 0)
        return LOSS_OK;
    return loss_error_at(err, LOSS_E_SHAPE, field, 0, 0, 0, 0,
                         "has no classes: its rows are empty.");
}

int loss_check_present(loss_error *err, const char *field, const void *p)
{
    if (p != NULL)
        return LOSS_OK;
    return loss_error_at(err, LOSS_E_PARAM, field, 0, 0, 0, 0, "is missing.");
}

int loss_check_choice(loss_error *err, const char *field, int value, int count,
                      const char *choices)
{
    if (value >= 0 && value < count)
        return LOSS_OK;
    return loss_error_at(err, LOSS_E_PARAM, field, 0, 0, 0, 0,
                         "must be %s (got code %d).", choices, value);
}

int loss_check_reduction(loss_error *err, loss_reduction reduction)
{
    return loss_check_choice(err, "reduction", (int)reduction, 2,
                             "\"mean\" or \"sum\"");
}

int loss_check_finite_param(loss_error *err, const char *name, double v)
{
    char buf[32];

    if (isfinite(v))
        return LOSS_OK;
    return loss_error_at(err, LOSS_E_NONFINITE, name, 0, 0, 0, 0,
                         "is %s, not a finite number.",
                         loss_number_text(v, buf, sizeof buf));
}

int loss_check_nonneg(loss_error *err, const char *name, double v)
{
    char buf[32];

    if (isfinite(v) && v >= 0.0)
        return LOSS_OK;
    return loss_error_at(err, LOSS_E_PARAM, name, 0, 0, 0, 0,
                         "is %s, not a finite number >= 0.",
                         loss_number_text(v, buf, sizeof buf));
}

int loss_check_base(loss_error *err, double base)
{
    char buf[32];

    if (isfinite(base) && base > 0.0 && base != 1.0)
        return LOSS_OK;
    return loss_error_at(err, LOSS_E_PARAM, "base", 0, 0, 0, 0,
                         "is %s, not a finite number > 0 other than 1.",
                         loss_number_text(base, buf, sizeof buf));
}

int loss_error_nonfinite(loss_error *err, const char *field, size_t depth,
                         size_t i0, size_t i1, size_t i2, double v)
{
    char buf[32];

    return loss_error_at(err, LOSS_E_NONFINITE, field, depth, i0, i1, i2,
                         "is %s, not a finite number.",
                         loss_number_text(v, buf, sizeof buf));
}

/* The first non-finite element of the [n][k] array x, reported at depth
 * 1 (field[i], k = 1), 2 (field[i][j]) or 3 (field[layer][i][j]). */
static int check_finite_at(loss_error *err, const char *field, size_t depth,
                           size_t layer, const double *x, size_t n, size_t k)
{
    size_t i, r, c;

    for (i = 0; i < n * k; i++) {
        if (isfinite(x[i]))
            continue;
        r = i / k;
        c = i % k;
        return loss_error_nonfinite(err, field, depth, depth == 3 ? layer : r,
                                    depth == 3 ? r : c, c, x[i]);
    }
    return LOSS_OK;
}

int loss_check_finite_vec(loss_error *err, const char *field, const double *x,
                          size_t n)
{
    return check_finite_at(err, field, 1, 0, x, n, 1);
}

int loss_check_finite(loss_error *err, const char *field, const double *x,
                      size_t n, size_t k)
{
    return check_finite_at(err, field, 2, 0, x, n, k);
}

int loss_check_finite_layer(loss_error *err, const char *field, size_t layer,
                            const double *x, size_t n, size_t k)
{
    return check_finite_at(err, field, 3, layer, x, n, k);
}

int loss_check_labels(loss_error *err, const int64_t *labels, size_t n,
                      size_t k)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (labels[i] < 0 || (uint64_t)labels[i] >= k)
            return loss_error_at(err, LOSS_E_LABEL, "labels", 1, i, 0, 0,
                                 "is %lld, outside [0, %zu).",
                                 (long long)labels[i], k);
    return LOSS_OK;
}

int loss_check_labels_pair(loss_error *err, const int64_t *labels, size_t n,
                           int64_t lo, int64_t hi)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (labels[i] != lo && labels[i] != hi)
            return loss_error_at(err, LOSS_E_LABEL, "labels", 1, i, 0, 0,
                                 "is %lld, not %lld or %lld.",
                                 (long long)labels[i], (long long)lo,
                                 (long long)hi);
    return LOSS_OK;
}
