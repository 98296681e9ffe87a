/* triplet.c -- metric-learning losses on distances between embeddings: the
 * triplet loss on explicit triplets or on triplets mined from a labelled
 * batch (batch-hard, batch-all), the quadruplet loss and the margin sample
 * mining loss (MSML).  Each one pulls embeddings of the same class together
 * and pushes embeddings of different classes apart by a margin.
 *
 * Conventions shared by every loss in this file:
 *   - d(u, v) is ||u - v|| (LOSS_DIST_EUCLIDEAN) or ||u - v||^2
 *     (LOSS_DIST_SQUARED_EUCLIDEAN).  Where a Euclidean distance is 0 its
 *     gradient is taken as 0, never NaN.
 *   - A hinge max(z, 0) is active only when z > 0: at z = 0 exactly the value
 *     and the gradient are both 0 (the subgradient that agrees with the
 *     active_fraction metric, which counts strictly positive losses).
 *   - Margins are finite and >= 0; anything else is LOSS_E_PARAM.
 *   - Gradients are first accumulated for the summed loss and divided by the
 *     "mean" divisor at the end, so each loss needs only one pass.
 */
#include <assert.h>
#include <math.h>

#include "lossInt.h"

/* ---- Helpers ------------------------------------------------------------- */

/* Zeroes the count gradient outputs g[0..count-1], each of len doubles or
 * NULL, before a loss accumulates the gradient of its sum into them. */
static void grads_zero(double *const *g, size_t count, size_t len)
{
    size_t j;

    for (j = 0; j < count; j++)
        loss_vec_zero(g[j], len);
}

/* Turns the accumulated gradients of the sum into those of the reduced
 * loss: under "mean" each is divided by the divisor (nothing when it is 0). */
static void grads_reduce(double *const *g, size_t count, size_t len,
                         double divisor, loss_reduction r)
{
    size_t i, j;

    if (r != LOSS_REDUCE_MEAN || !(divisor > 0.0))
        return;
    for (j = 0; j < count; j++)
        for (i = 0; g[j] && i < len; i++)
            g[j][i] /= divisor;
}

/* The checks every loss here shares: a non-empty batch (first names the
 * first input, for the error), a margin, a distance and a reduction. */
static int check_common(size_t n, const char *first, double margin,
                        loss_distance k, loss_reduction r, loss_error *err)
{
    int rc;

    if ((rc = loss_check_batch(err, first, n)) != LOSS_OK ||
        (rc = loss_check_nonneg(err, "margin", margin)) != LOSS_OK ||
        (rc = loss_check_choice(err, "distance", (int)k, 2,
                                "\"euclidean\" or \"squared_euclidean\"")) !=
            LOSS_OK)
        return rc;
    return loss_check_reduction(err, r);
}

/* ---- triplet: explicit triplets --------------------------------------------
 *
 * Method: per sample i, with a, p, n its anchor, positive and negative,
 *     l_i = max(d(a, p) - d(a, n) + margin, 0).
 * With swap, d(a, n) is replaced by d(p, n) when d(p, n) < d(a, n) strictly
 * (PyTorch's distance swap; ties keep d(a, n)).  "mean" divides by n.
 * Gradient: for an active sample (l_i > 0), +dd(a,p) on a and p and
 * -dd(x,n) on the ends x of the negative distance used (a, or p when
 * swapped) and on n; Euclidean dd/du = (u - v)/d(u, v), squared 2(u - v).
 * Metrics: valid = n; active_fraction = fraction of samples with l_i > 0.
 * Special cases: coincident points have distance 0 and gradient 0; l_i = 0
 * exactly has gradient 0.
 * Accuracy: each distance is within a few ulps (Euclidean distances are
 * rescaled when the squares would under- or overflow); the hinge's
 * difference of distances loses only what its cancellation implies.
 * Squared distances of coordinates differing by more than about 1e154
 * overflow to infinity.  No scratch.
 */

size_t loss_triplet_work(const loss_triplet_args *a)
{
    (void)a;
    return 0;
}

static int triplet_check(const loss_triplet_args *a, loss_error *err)
{
    int rc;

    if ((rc = check_common(a->n, "anchor", a->margin, a->distance, a->reduction,
                           err)) != LOSS_OK ||
        (rc = loss_check_choice(err, "swap", a->swap, 2, "true or false")) !=
            LOSS_OK ||
        (rc = loss_check_finite(err, "anchor", a->anchor, a->n, a->d)) !=
            LOSS_OK ||
        (rc = loss_check_finite(err, "positive", a->positive, a->n, a->d)) !=
            LOSS_OK)
        return rc;
    return loss_check_finite(err, "negative", a->negative, a->n, a->d);
}

/* Sample i's loss; adds its gradient (of the sum) to the outputs. */
static double triplet_one(const loss_triplet_args *a, loss_triplet_out *o,
                          size_t i)
{
    size_t d = a->d, off = i * d;
    loss_distance k = a->distance;
    const double *x = a->anchor + off, *p = a->positive + off;
    const double *ng = a->negative + off, *from = x;
    double *gfrom = loss_row(o->grad_anchor, i, d);
    double dap = loss_vec_distance(x, p, d, k);
    double dn = loss_vec_distance(x, ng, d, k), z;

    if (a->swap) {
        double dpn = loss_vec_distance(p, ng, d, k);
        if (dpn < dn) {
            dn = dpn;
            from = p;
            gfrom = loss_row(o->grad_positive, i, d);
        }
    }
    z = dap - dn + a->margin;
    if (z <= 0.0)
        return 0.0;
    loss_vec_dist_grad(loss_row(o->grad_anchor, i, d),
                       loss_row(o->grad_positive, i, d), x, p, d, dap, 1.0, k);
    loss_vec_dist_grad(gfrom, loss_row(o->grad_negative, i, d), from, ng, d, dn,
                       -1.0, k);
    return z;
}

/* The loss, its gradients and metrics over valid arguments. */
static void triplet_run(const loss_triplet_args *a, loss_triplet_out *o)
{
    double *const g[] = {o->grad_anchor, o->grad_positive, o->grad_negative};
    size_t i, active = 0, len = a->n * a->d;
    double sum = 0.0, cnt = (double)a->n;

    grads_zero(g, 3, len);
    for (i = 0; i < a->n; i++) {
        double l = triplet_one(a, o, i);
        if (o->per_sample)
            o->per_sample[i] = l;
        sum += l;
        active += l > 0.0;
    }
    o->loss = loss_reduce(sum, cnt, a->reduction);
    grads_reduce(g, 3, len, cnt, a->reduction);
    o->valid = cnt;
    o->active_fraction = (double)active / cnt;
}

int loss_triplet(const loss_triplet_args *a, loss_triplet_out *o,
                 loss_error *err)
{
    int rc;

    assert(a != NULL && o != NULL);
    rc = triplet_check(a, err);
    if (rc == LOSS_OK)
        triplet_run(a, o);
    return rc;
}

/* ---- triplet: mined from a labelled batch ----------------------------------
 *
 * Method: each anchor i needs only row i of the distance matrix D of the
 * embeddings.  Up to MINED_MATRIX_N embeddings, all of D goes to
 * args->work, each pair computed once; above, only the row of the anchor
 * at hand, n doubles, recomputed for each (twice the distance work, for
 * scratch that grows as n rather than n^2: 20,000 embeddings would
 * otherwise take 3.2 GB).  Both give the same bits: entry (i, j) is
 * always d(e_min(i,j), e_max(i,j)).
 * A positive of anchor i is j != i with labels[j] == labels[i]; a negative
 * is j with labels[j] != labels[i].  Labels are arbitrary integers.
 *   batch_hard: an anchor is valid when it has a positive and a negative;
 *     l_i = max(D[i][p*] - D[i][n*] + margin, 0) with p* the farthest
 *     positive and n* the nearest negative (lowest index on ties).  Invalid
 *     anchors have l_i = 0.  "mean" divides by the number of valid anchors.
 *   batch_all: every valid (i, p, n) is a triplet with loss
 *     max(D[i][p] - D[i][n] + margin, 0); l_i is the sum over anchor i's
 *     triplets and "mean" divides by the number of valid triplets.
 * Gradient: each active term adds +dD[i][p] and -dD[i][n] to the embeddings
 * at both ends of each distance.  batch_all sums, for each pair (i, j), the
 * net number of active triplets using D[i][j] (positive as p, negative as
 * n).  It never visits the triplets one by one: anchor i's distances to its
 * positives and to its negatives are sorted, and since rounding is
 * monotonic the hinge, evaluated as above, is active for a prefix of the
 * negatives (given p) and a suffix of the positives (given n), found by
 * bisection.  The c active triplets of positive p then sum to
 * c (D[i][p] + margin) - S, S the sum of the c nearest negatives' distances,
 * kept in double-double prefix sums; products split exactly by fma, the
 * whole is rounded once.
 * Metrics: valid = the number of valid anchors (hard) or triplets (all);
 * active_fraction = the fraction of those with a positive loss, NaN when
 * valid = 0.
 * Special cases: no valid anchor or triplet gives loss 0 and zero gradients;
 * duplicate embeddings have distance 0 and gradient 0 between them.
 * Cost: O(n^2 d) for the distances, plus O(n^2) (batch_hard) or
 * O(n^2 log n) (batch_all) comparisons; batch_all's scratch adds 4n + 2
 * doubles.
 * Accuracy: as for explicit triplets; batch_all's sum for each positive is
 * within one rounding of the exact sum of its hinges, plus about n 2^-106
 * times the distances summed (a sum of rounded hinges would carry one
 * rounding per triplet); it counts triplets in a double, exact below 2^53.
 */

/* The most embeddings whose whole distance matrix is kept: 32 MiB. */
#define MINED_MATRIX_N 2048

/* Doubles of scratch for the distances: the matrix or one row. */
static size_t mined_rows(const loss_triplet_mined_args *a)
{
    return a->n <= MINED_MATRIX_N ? a->n * a->n : a->n;
}

/* batch_all adds 4n + 2 (all_row); SIZE_MAX when the total does not fit. */
size_t loss_triplet_mined_work(const loss_triplet_mined_args *a)
{
    if (a->mining != LOSS_MINING_BATCH_ALL)
        return mined_rows(a);
    if (a->n > (SIZE_MAX - 2) / 5)
        return SIZE_MAX;
    return mined_rows(a) + 4 * a->n + 2;
}

static int mined_check(const loss_triplet_mined_args *a, loss_error *err)
{
    int rc = check_common(a->n, "embeddings", a->margin, a->distance,
                          a->reduction, err);

    if (rc == LOSS_OK)
        rc = loss_check_choice(err, "mining", (int)a->mining, 2,
                               "\"batch_hard\" or \"batch_all\"");
    if (rc == LOSS_OK)
        rc = loss_check_finite(err, "embeddings", a->embeddings, a->n, a->d);
    if (rc == LOSS_OK && a->work == NULL)
        rc = loss_error_set(err, LOSS_E_NOMEM, NULL, 0, 0, 0, 0,
                            "No scratch memory for the distances of %zu "
                            "embeddings.",
                            a->n);
    return rc;
}

static int pair_distances(const loss_triplet_mined_args *a, double *dm,
                          loss_ticker *tk)
{
    size_t i, j, n = a->n, d = a->d;

    for (i = 0; i < n; i++) {
        if (loss_tick(tk, (n - i) * d))
            return LOSS_E_STOPPED;
        dm[i * n + i] = 0.0;
        for (j = i + 1; j < n; j++)
            dm[i * n + j] = dm[j * n + i] = loss_vec_distance(
                a->embeddings + i * d, a->embeddings + j * d, d, a->distance);
    }
    return LOSS_OK;
}

/* Running totals of a mined loss: the summed loss, the valid anchors or
 * triplets, and how many of those are active. */
typedef struct mined_tally {
    double sum, valid, active;
} mined_tally;

/* Row i of D into r, each entry as pair_distances computes it. */
static const double *row_distances(const loss_triplet_mined_args *a, size_t i,
                                   double *r)
{
    const double *e = a->embeddings;
    size_t j, d = a->d;

    for (j = 0; j < a->n; j++)
        r[j] = j == i
                   ? 0.0
                   : loss_vec_distance(e + (j < i ? j : i) * d,
                                       e + (j < i ? i : j) * d, d, a->distance);
    return r;
}

/* Adds w * dD[i][j] to the embedding gradient g (when not NULL); r is row
 * i of D. */
static void pair_grad(const loss_triplet_mined_args *a, const double *r,
                      double *g, size_t i, size_t j, double w)
{
    size_t d = a->d;

    if (g)
        loss_vec_dist_grad(g + i * d, g + j * d, a->embeddings + i * d,
                           a->embeddings + j * d, d, r[j], w, a->distance);
}

/* Anchor i's batch-hard loss, from row i of D; 0 when it has no positive
 * or no negative. */
static double hard_anchor(const loss_triplet_mined_args *a, const double *r,
                          double *g, size_t i, mined_tally *t)
{
    const int64_t *y = a->labels;
    size_t j, p = SIZE_MAX, q = SIZE_MAX;
    double z;

    for (j = 0; j < a->n; j++) {
        if (y[j] != y[i]) {
            if (q == SIZE_MAX || r[j] < r[q])
                q = j;
        } else if (j != i && (p == SIZE_MAX || r[j] > r[p])) {
            p = j;
        }
    }
    if (p == SIZE_MAX || q == SIZE_MAX)
        return 0.0;
    t->valid += 1.0;
    z = r[p] - r[q] + a->margin;
    if (z <= 0.0)
        return 0.0;
    t->active += 1.0;
    pair_grad(a, r, g, i, p, 1.0);
    pair_grad(a, r, g, i, q, -1.0);
    return z;
}

/* batch_all's view of anchor i's row: the distances to its positives and
 * to its negatives, each sorted, and the exact running sums of the
 * negatives' (sum[k] = the first k of them, as a double-double). */
typedef struct all_row {
    double *pos, *neg, *sum_hi, *sum_lo;
    size_t np, nn;
} all_row;

/* A triplet's hinge is active: z = D[i][p] - D[i][n] + margin > 0,
 * evaluated as the loss evaluates it.  Rounding is monotonic, so z falls
 * as D[i][n] grows and rises with D[i][p]. */
static int all_active(double dp, double dn, double margin)
{
    return dp - dn + margin > 0.0;
}

/* s + t as hi + lo exactly (Knuth's two-sum), added to *hi, *lo. */
static void dd_add(double *hi, double *lo, double t)
{
    double s = *hi + t, b = s - *hi;

    *lo += (*hi - (s - b)) + (t - b);
    *hi = s;
}

/* Splits row r into w: the sorted positive and negative distances and the
 * negatives' prefix sums (sum_hi is the sort's scratch before that). */
static void all_row_fill(const loss_triplet_mined_args *a, const double *r,
                         size_t i, all_row *w)
{
    size_t j;

    w->np = w->nn = 0;
    for (j = 0; j < a->n; j++) {
        if (a->labels[j] != a->labels[i])
            w->neg[w->nn++] = r[j];
        else if (j != i)
            w->pos[w->np++] = r[j];
    }
    loss_sort_doubles(w->pos, w->np, w->sum_hi);
    loss_sort_doubles(w->neg, w->nn, w->sum_hi);
    w->sum_hi[0] = w->sum_lo[0] = 0.0;
    for (j = 0; j < w->nn; j++) {
        w->sum_hi[j + 1] = w->sum_hi[j];
        w->sum_lo[j + 1] = w->sum_lo[j];
        dd_add(&w->sum_hi[j + 1], &w->sum_lo[j + 1], w->neg[j]);
    }
}

/* The negatives active with positive distance dp: a prefix of w->neg. */
static size_t all_negatives(const all_row *w, double dp, double margin)
{
    size_t lo = 0, hi = w->nn, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (all_active(dp, w->neg[mid], margin))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The positives active with negative distance dn: a suffix of w->pos. */
static size_t all_positives(const all_row *w, double dn, double margin)
{
    size_t lo = 0, hi = w->np, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (all_active(w->pos[mid], dn, margin))
            hi = mid;
        else
            lo = mid + 1;
    }
    return w->np - lo;
}

/* The summed loss of the c active triplets of a positive at distance dp:
 * c (dp + margin) - (their negatives' distances), each product split
 * exactly by fma and everything added as a double-double, rounded once. */
static double all_positive_loss(const all_row *w, double dp, double margin,
                                size_t c)
{
    double k = (double)c, hi = k * dp, lo = fma(k, dp, -hi), m = k * margin;

    if (c == 0 || !isfinite(hi))
        return c == 0 ? 0.0 : hi;
    lo += fma(k, margin, -m);
    dd_add(&hi, &lo, m);
    dd_add(&hi, &lo, -w->sum_hi[c]);
    return hi + (lo - w->sum_lo[c]);
}

/* Anchor i's batch-all loss, from row i of D: the sum over its valid
 * triplets.  Each positive's active negatives, and each negative's active
 * positives, are counted by bisection in the sorted distances. */
static double all_anchor(const loss_triplet_mined_args *a, const double *r,
                         double *g, size_t i, all_row *w, mined_tally *t)
{
    double l = 0.0, c;
    size_t j, k;

    all_row_fill(a, r, i, w);
    if (w->np == 0 || w->nn == 0)
        return 0.0;
    for (j = 0; j < a->n; j++) {
        if (j == i)
            continue;
        if (a->labels[j] == a->labels[i]) {
            k = all_negatives(w, r[j], a->margin);
            l += all_positive_loss(w, r[j], a->margin, k);
            t->valid += (double)w->nn;
            t->active += (double)k;
            c = (double)k;
        } else {
            c = -(double)all_positives(w, r[j], a->margin);
        }
        if (c != 0.0)
            pair_grad(a, r, g, i, j, c);
    }
    return l;
}

int loss_triplet_mined(const loss_triplet_mined_args *a,
                       loss_triplet_mined_out *o, loss_error *err)
{
    mined_tally t = {0.0, 0.0, 0.0};
    loss_ticker tk;
    size_t i, len;
    int rc, full;
    double *rest;
    all_row w;

    assert(a != NULL && o != NULL);
    tk = loss_ticker_start(a->deadline);
    rc = mined_check(a, err);
    if (rc != LOSS_OK)
        return rc;
    full = a->n <= MINED_MATRIX_N;
    rest = a->work + mined_rows(a);
    w.pos = rest;
    w.neg = rest + a->n;
    w.sum_hi = rest + 2 * a->n;
    w.sum_lo = rest + 3 * a->n + 1;
    len = a->n * a->d;
    loss_vec_zero(o->grad_embeddings, len);
    if (full && pair_distances(a, a->work, &tk) != LOSS_OK)
        return loss_stop(err);
    for (i = 0; i < a->n; i++) {
        const double *r;
        if (loss_tick(&tk, a->n * (a->d + 1)))
            return loss_stop(err);
        r = full ? a->work + i * a->n : row_distances(a, i, a->work);
        double l = a->mining == LOSS_MINING_BATCH_HARD
                       ? hard_anchor(a, r, o->grad_embeddings, i, &t)
                       : all_anchor(a, r, o->grad_embeddings, i, &w, &t);
        if (o->per_sample)
            o->per_sample[i] = l;
        t.sum += l;
    }
    o->loss = loss_reduce(t.sum, t.valid, a->reduction);
    grads_reduce(&o->grad_embeddings, 1, len, t.valid, a->reduction);
    o->valid = t.valid;
    o->active_fraction = t.valid > 0.0 ? t.active / t.valid : NAN;
    return LOSS_OK;
}

/* ---- quadruplet (Chen et al., 2017) ----------------------------------------
 *
 * Method: per sample, with a, p, n, n2 its anchor, positive and two
 * negatives (n2 of yet another class),
 *     l_i = max(d(a,p) - d(a,n) + margin, 0)
 *         + max(d(a,p) - d(n,n2) + margin2, 0).
 * "mean" divides by n.  The contract's default distance here is
 * squared_euclidean (the caller passes it).
 * Gradient: each active hinge adds +dd(a,p) on a and p; the first adds
 * -dd(a,n) on a and n, the second -dd(n,n2) on n and n2.
 * Special cases: as for triplets (zero distance, z = 0 exactly).
 * Accuracy: as for triplets.  No scratch.
 */

size_t loss_quadruplet_work(const loss_quadruplet_args *a)
{
    (void)a;
    return 0;
}

static int quad_check(const loss_quadruplet_args *a, loss_error *err)
{
    int rc;

    if ((rc = check_common(a->n, "anchor", a->margin, a->distance, a->reduction,
                           err)) != LOSS_OK ||
        (rc = loss_check_nonneg(err, "margin2", a->margin2)) != LOSS_OK ||
        (rc = loss_check_finite(err, "anchor", a->anchor, a->n, a->d)) !=
            LOSS_OK ||
        (rc = loss_check_finite(err, "positive", a->positive, a->n, a->d)) !=
            LOSS_OK ||
        (rc = loss_check_finite(err, "negative", a->negative, a->n, a->d)) !=
            LOSS_OK)
        return rc;
    return loss_check_finite(err, "negative2", a->negative2, a->n, a->d);
}

/* Sample i's loss; adds its gradient (of the sum) to the outputs. */
static double quad_one(const loss_quadruplet_args *a, loss_quadruplet_out *o,
                       size_t i)
{
    size_t d = a->d, off = i * d;
    loss_distance k = a->distance;
    const double *x = a->anchor + off, *p = a->positive + off;
    const double *n1 = a->negative + off, *n2 = a->negative2 + off;
    double *ga = loss_row(o->grad_anchor, i, d);
    double *gp = loss_row(o->grad_positive, i, d);
    double *gn = loss_row(o->grad_negative, i, d);
    double dap = loss_vec_distance(x, p, d, k);
    double dan = loss_vec_distance(x, n1, d, k);
    double dnn = loss_vec_distance(n1, n2, d, k), l = 0.0;
    double z1 = dap - dan + a->margin, z2 = dap - dnn + a->margin2;

    /* A NaN z (two distances past DBL_MAX) is kept, and the row's loss
     * with it, for the server's overflow answer. */
    if (!(z1 <= 0.0)) {
        l += z1;
        loss_vec_dist_grad(ga, gp, x, p, d, dap, 1.0, k);
        loss_vec_dist_grad(ga, gn, x, n1, d, dan, -1.0, k);
    }
    if (!(z2 <= 0.0)) {
        l += z2;
        loss_vec_dist_grad(ga, gp, x, p, d, dap, 1.0, k);
        loss_vec_dist_grad(gn, loss_row(o->grad_negative2, i, d), n1, n2, d,
                           dnn, -1.0, k);
    }
    return l;
}

/* The loss and its gradients over valid arguments. */
static void quad_run(const loss_quadruplet_args *a, loss_quadruplet_out *o)
{
    double *const g[] = {o->grad_anchor, o->grad_positive, o->grad_negative,
                         o->grad_negative2};
    size_t i, len = a->n * a->d;
    double sum = 0.0, cnt = (double)a->n;

    grads_zero(g, 4, len);
    for (i = 0; i < a->n; i++) {
        double l = quad_one(a, o, i);
        if (o->per_sample)
            o->per_sample[i] = l;
        sum += l;
    }
    o->loss = loss_reduce(sum, cnt, a->reduction);
    grads_reduce(g, 4, len, cnt, a->reduction);
}

int loss_quadruplet(const loss_quadruplet_args *a, loss_quadruplet_out *o,
                    loss_error *err)
{
    int rc;

    assert(a != NULL && o != NULL);
    rc = quad_check(a, err);
    if (rc == LOSS_OK)
        quad_run(a, o);
    return rc;
}

/* ---- msml: Margin Sample Mining Loss (Xiao et al., 2017) -------------------
 *
 * Method: over the pairs i < j of the batch, a positive pair has equal
 * labels and a negative pair different ones.  With P the positive pair of
 * largest distance and Q the negative pair of smallest distance (ties: the
 * lowest (i, j) in lexicographic order),
 *     loss = max(d(P) - d(Q) + margin, 0),
 * one value for the whole batch: there is no per-sample value and the
 * reduction has no effect (it is still validated).
 * Gradient: when the loss is positive, +dd on both ends of P and -dd on both
 * ends of Q (an embedding in both pairs gets both terms).
 * Special cases: no positive pair or no negative pair gives loss 0 and zero
 * gradients; so does n = 1.
 * Accuracy: as for triplets.  Distances are computed pair by pair, so no
 * scratch is needed.
 */

size_t loss_msml_work(const loss_msml_args *a)
{
    (void)a;
    return 0;
}

/* A pair (i, j) and its distance; found is 0 until one is recorded. */
typedef struct msml_pair {
    double d;
    size_t i, j;
    int found;
} msml_pair;

static void msml_keep(msml_pair *m, double dij, size_t i, size_t j, int far)
{
    if (m->found && (far ? !(dij > m->d) : !(dij < m->d)))
        return;
    m->d = dij;
    m->i = i;
    m->j = j;
    m->found = 1;
}

/* Scans the pairs in lexicographic order; strict comparisons keep the
 * lowest pair on ties. */
static int msml_scan(const loss_msml_args *a, msml_pair *pos, msml_pair *neg)
{
    loss_ticker tk = loss_ticker_start(a->deadline);
    size_t i, j, d = a->d;

    for (i = 0; i < a->n; i++) {
        if (loss_tick(&tk, (a->n - i) * d))
            return LOSS_E_STOPPED;
        for (j = i + 1; j < a->n; j++) {
            double dij = loss_vec_distance(
                a->embeddings + i * d, a->embeddings + j * d, d, a->distance);
            if (a->labels[i] == a->labels[j])
                msml_keep(pos, dij, i, j, 1);
            else
                msml_keep(neg, dij, i, j, 0);
        }
    }
    return LOSS_OK;
}

static void msml_grad(const loss_msml_args *a, double *g, const msml_pair *m,
                      double w)
{
    size_t d = a->d;

    loss_vec_dist_grad(g + m->i * d, g + m->j * d, a->embeddings + m->i * d,
                       a->embeddings + m->j * d, d, m->d, w, a->distance);
}

int loss_msml(const loss_msml_args *a, loss_msml_out *o, loss_error *err)
{
    msml_pair pos = {0.0, 0, 0, 0}, neg = {0.0, 0, 0, 0};
    double z;
    int rc;

    assert(a != NULL && o != NULL);
    rc = check_common(a->n, "embeddings", a->margin, a->distance, a->reduction,
                      err);
    if (rc == LOSS_OK)
        rc = loss_check_finite(err, "embeddings", a->embeddings, a->n, a->d);
    if (rc != LOSS_OK)
        return rc;
    loss_vec_zero(o->grad_embeddings, a->n * a->d);
    o->loss = 0.0;
    if (msml_scan(a, &pos, &neg) != LOSS_OK)
        return loss_stop(err);
    if (!pos.found || !neg.found)
        return LOSS_OK;
    z = pos.d - neg.d + a->margin;
    if (z <= 0.0)
        return LOSS_OK;
    o->loss = z;
    if (o->grad_embeddings) {
        msml_grad(a, o->grad_embeddings, &pos, 1.0);
        msml_grad(a, o->grad_embeddings, &neg, -1.0);
    }
    return LOSS_OK;
}
