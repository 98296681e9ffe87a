/* vecmath.c -- the numerical kernels several loss families share: the
 * reductions, dot products, Euclidean norms and distances with their
 * gradients, arg-max, the max-shifted log-sum-exp and the hinge. */
#include <math.h>

#include "lossInt.h"

/* Outside [SQ_TINY, SQ_HUGE] a sum of squares may have lost precision to
 * underflow or be about to overflow, so a Euclidean length is recomputed
 * with the components scaled by the largest of them: coordinates differing
 * by 1e-300 or 1e300 still have an accurate distance and gradient.  Ordinary
 * inputs take the plain path, which is exact whenever the squares and their
 * sum are (integer coordinates), so exact ties stay ties. */
#define SQ_TINY 0x1p-960
#define SQ_HUGE 0x1p1000

double loss_reduce(double sum, double count, loss_reduction reduction)
{
    if (reduction == LOSS_REDUCE_SUM)
        return sum;
    return count > 0.0 ? sum / count : 0.0;
}

double loss_grad_scale(double count, loss_reduction reduction)
{
    if (reduction == LOSS_REDUCE_SUM)
        return 1.0;
    return count > 0.0 ? 1.0 / count : 0.0;
}

void loss_vec_zero(double *x, size_t n)
{
    size_t i;

    for (i = 0; x && i < n; i++)
        x[i] = 0.0;
}

size_t loss_vec_argmax(const double *x, size_t k)
{
    size_t j, best = 0;

    for (j = 1; j < k; j++)
        if (x[j] > x[best])
            best = j;
    return best;
}

double loss_vec_dot(const double *u, const double *v, size_t d)
{
    double s = 0.0;
    size_t j;

    for (j = 0; j < d; j++)
        s += u[j] * v[j];
    return s;
}

/* Component j of u - v, or of u when v is NULL. */
static double diff(const double *u, const double *v, size_t j)
{
    return v ? u[j] - v[j] : u[j];
}

/* ||u - v||^2 (||u||^2 when v is NULL), summed directly. */
static double sum_squares(const double *u, const double *v, size_t d)
{
    double s = 0.0, t;
    size_t j;

    for (j = 0; j < d; j++) {
        t = diff(u, v, j);
        s += t * t;
    }
    return s;
}

/* ||u - v|| (||u|| when v is NULL), rescaled outside [SQ_TINY, SQ_HUGE]. */
static double length(const double *u, const double *v, size_t d)
{
    double s = sum_squares(u, v, d), m = 0.0, r = 0.0, t;
    size_t j;

    if (s >= SQ_TINY && s <= SQ_HUGE)
        return sqrt(s);
    for (j = 0; j < d; j++)
        m = fmax(m, fabs(diff(u, v, j)));
    if (m == 0.0 || isinf(m))
        return m;
    for (j = 0; j < d; j++) {
        t = diff(u, v, j) / m;
        r += t * t;
    }
    return m * sqrt(r);
}

double loss_vec_norm(const double *u, size_t d)
{
    return length(u, NULL, d);
}

double loss_vec_sqdist(const double *u, const double *v, size_t d)
{
    return sum_squares(u, v, d);
}

double loss_vec_dist(const double *u, const double *v, size_t d)
{
    return length(u, v, d);
}

double loss_vec_distance(const double *u, const double *v, size_t d,
                         loss_distance kind)
{
    return kind == LOSS_DIST_EUCLIDEAN ? length(u, v, d) : sum_squares(u, v, d);
}

/* The Euclidean gradient divides each difference by D before weighting it,
 * so a tiny D cannot overflow. */
void loss_vec_dist_grad(double *gu, double *gv, const double *u,
                        const double *v, size_t d, double dist, double w,
                        loss_distance kind)
{
    size_t j;
    double t;

    if (kind == LOSS_DIST_EUCLIDEAN && dist == 0.0)
        return;
    for (j = 0; j < d; j++) {
        t = kind == LOSS_DIST_EUCLIDEAN ? w * ((u[j] - v[j]) / dist)
                                        : 2.0 * w * (u[j] - v[j]);
        if (gu)
            gu[j] += t;
        if (gv)
            gv[j] -= t;
    }
}

double loss_lse_shifted(const double *z, size_t k, double *m)
{
    size_t j, top = loss_vec_argmax(z, k);
    double rest = 0.0;

    for (j = 0; j < k; j++)
        if (j != top)
            rest += exp(z[j] - z[top]);
    *m = z[top];
    return log1p(rest);
}

double loss_lse_exps(const double *z, size_t k, size_t *top, double *e,
                     double *sum)
{
    size_t j, t = loss_vec_argmax(z, k);
    double rest = 0.0, m = z[t];

    /* exp(0) = 1 at the arg-max, which the sum leaves out: no branch. */
    for (j = 0; j < k; j++) {
        e[j] = exp(z[j] - m);
        rest += j == t ? 0.0 : e[j];
    }
    *top = t;
    *sum = 1.0 + rest;
    return log1p(rest);
}

double loss_lse(const double *z, size_t k)
{
    double m, shifted = loss_lse_shifted(z, k, &m);

    return m + shifted;
}

double loss_hinge_term(double z, int p, double *dz)
{
    if (!(z > 0.0)) {
        *dz = 0.0;
        return 0.0;
    }
    *dz = p == 2 ? 2.0 * z : 1.0;
    return p == 2 ? z * z : z;
}
