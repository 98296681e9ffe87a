/* generative.c -- the objectives of two generative models: the negative
 * evidence lower bound of a variational auto-encoder (Bernoulli or Gaussian
 * likelihood, Gaussian posterior against a standard normal prior) and the
 * discriminator and generator losses of a generative adversarial network,
 * each with its gradients and metrics.  See API.md, sections "vae" and "gan".
 *
 * Logarithms of probabilities are clamped at -100, as PyTorch's
 * binary_cross_entropy does, so a probability of exactly 0 or 1 gives a large
 * but finite loss.  The gradient reported is that of the clamped function: a
 * term whose logarithm is clamped contributes 0. */
#include <math.h>

#include "lossInt.h"

/* The floor of every logarithm of a probability (PyTorch's BCE clamp). */
#define LOG_FLOOR (-100.0)
/* log 4, the offset between the GAN value and twice the Jensen-Shannon
 * divergence at the optimal discriminator. */
#define LOG_4 1.38629436111989061883

/* ---- Shared numerics ---------------------------------------------------- */

/* max(log p, -100) and its derivative with respect to p (0 where clamped). */
static double clamped_log(double p, double *dp)
{
    double l = log(p);

    if (l < LOG_FLOOR) {
        *dp = 0.0;
        return LOG_FLOOR;
    }
    *dp = 1.0 / p;
    return l;
}

/* max(log(1 - p), -100) and its derivative with respect to p. */
static double clamped_log1m(double p, double *dp)
{
    double l = loss_log1p(-p);

    if (l < LOG_FLOOR) {
        *dp = 0.0;
        return LOG_FLOOR;
    }
    *dp = -1.0 / (1.0 - p);
    return l;
}

/* Reports the first element of the [n][k] array v outside [0, 1] at
 * field[i][j], or at field[i] when vec is set (k = 1). */
static int check_unit(loss_error *err, const char *field, const double *v,
                      size_t n, size_t k, int vec)
{
    size_t i;

    for (i = 0; i < n * k; i++)
        if (!(v[i] >= 0.0 && v[i] <= 1.0))
            return loss_error_at(err, LOSS_E_PROB, field, vec ? 1 : 2, i / k,
                                 i % k, 0,
                                 "is %g, not a probability in [0, 1].", v[i]);
    return LOSS_OK;
}

/* ---- vae --------------------------------------------------------------------
 * Negative evidence lower bound of a variational auto-encoder.
 *
 * Method:   per sample i, rec_i + beta * kl_i with
 *             Bernoulli, recon r:  rec = -sum_j [x log r + (1-x) log(1-r)],
 *               each log clamped at -100 (log(1-r) is computed as log1p(-r));
 *             Bernoulli, recon_logits l (the stable form of the same loss):
 *               rec = sum_j [max(l, 0) - x l + log1p(e^-|l|)];
 *             Gaussian, recon r:   rec = 1/2 sum_j (x - r)^2;
 *             kl = 1/2 sum_k [mu^2 + expm1(logvar) - logvar], which is the
 *               contract's -1/2 sum (1 + logvar - mu^2 - e^logvar).
 *           "mean" divides the sum over samples by N.  The metrics are the
 *           batch means of rec and kl (kl not weighted by beta) and
 *           elbo = -(reconstruction + kl).
 * Gradient: d/dr = -x/r + (1-x)/(1-r), where a clamped log contributes 0
 *           (the gradient of the clamped function); d/dl = sigmoid(l) - x;
 *           Gaussian d/dr = r - x; d/dmu = beta mu; d/dlogvar =
 *           beta expm1(logvar) / 2; all times 1/N under "mean".
 * Special cases: exactly one of recon and recon_logits (LOSS_E_PARAM on
 *           "recon" when neither is given, on "recon_logits" when both are,
 *           or when recon_logits comes with the Gaussian likelihood); with
 *           Bernoulli, x and recon must lie in [0, 1] (LOSS_E_PROB); beta
 *           must be finite (LOSS_E_NONFINITE) and >= 0 (LOSS_E_PARAM); a
 *           non-finite input is LOSS_E_NONFINITE on its element.  Numbers
 *           whose result would overflow are LOSS_E_NONFINITE too: on
 *           logvar[i][k] when exp(logvar) overflows, on mu[i][k] when mu^2
 *           does, on recon[i][j] when the Gaussian (x - r)^2 does, and with
 *           no field when only a sum over a row or the batch overflows.  With
 *           beta = 0 the KL term is left out of the loss, so the kl metric
 *           alone may be infinite.  N = 0 is LOSS_E_EMPTY.
 * Accuracy: each element term is within a few ulps of its magnitude; the
 *           KL term expm1(v) - v loses relative accuracy for tiny |v| but
 *           stays within a few ulps of max(1, |v|) in absolute terms.
 */

size_t loss_vae_work(const loss_vae_args *a)
{
    (void)a;
    return 0;
}

/* The loss of one element x against a reconstruction r, and d/dr. */
typedef double (*vae_term_fn)(double x, double r, double *dr);

static double vae_bernoulli(double x, double r, double *dr)
{
    double d_log, d_log1m;
    double v =
        x * clamped_log(r, &d_log) + (1.0 - x) * clamped_log1m(r, &d_log1m);

    *dr = -(x * d_log + (1.0 - x) * d_log1m);
    return -v;
}

/* With e = e^-|l|, sigmoid(l) is 1/(1 + e) or e/(1 + e) and the softplus
 * tail is log1p(e): one exp and one log for both. */
static double vae_bernoulli_logits(double x, double l, double *dl)
{
    double e = loss_exp(-fabs(l)), u = 1.0 + e, big = 1.0 / u;

    *dl = (l >= 0.0 ? big : e * big) - x;
    /* loss_log1p(e), sharing 1/u with the sigmoid */
    return (l > 0.0 ? l : 0.0) - x * l + (log(u) + (e - (u - 1.0)) * big);
}

static double vae_gaussian(double x, double r, double *dr)
{
    double diff = r - x;

    *dr = diff;
    return 0.5 * diff * diff;
}

static int vae_check_params(const loss_vae_args *a, loss_error *err)
{
    int rc;

    if ((rc = loss_check_reduction(err, a->reduction)) != LOSS_OK ||
        (rc = loss_check_choice(err, "likelihood", (int)a->likelihood, 2,
                                "\"bernoulli\" or \"gaussian\"")) != LOSS_OK ||
        (rc = loss_check_finite_param(err, "beta", a->beta)) != LOSS_OK)
        return rc;
    if (a->beta < 0.0)
        return loss_error_at(err, LOSS_E_PARAM, "beta", 0, 0, 0, 0,
                             "is %g, below 0.", a->beta);
    return LOSS_OK;
}

static int vae_check_fields(const loss_vae_args *a, loss_error *err)
{
    int rc;

    if ((a->recon == NULL) == (a->recon_logits == NULL))
        return loss_error_set(err, LOSS_E_PARAM,
                              a->recon ? "recon_logits" : "recon", 0, 0, 0, 0,
                              "Give exactly one of recon and recon_logits.");
    if (a->recon_logits != NULL && a->likelihood != LOSS_LIKELIHOOD_BERNOULLI)
        return loss_error_at(err, LOSS_E_PARAM, "recon_logits", 0, 0, 0, 0,
                             "is only valid with the \"bernoulli\" "
                             "likelihood.");
    if ((rc = loss_check_present(err, "x", a->x)) != LOSS_OK ||
        (rc = loss_check_present(err, "mu", a->mu)) != LOSS_OK ||
        (rc = loss_check_present(err, "logvar", a->logvar)) != LOSS_OK)
        return rc;
    return loss_check_batch(err, "x", a->n);
}

/* Values whose square or exponential the loss needs but which overflow. */
static int vae_check_overflow(const loss_vae_args *a, loss_error *err)
{
    size_t i, z = a->z, d = a->d;

    for (i = 0; i < a->n * z; i++) {
        if (isinf(exp(a->logvar[i])))
            return loss_error_at(err, LOSS_E_NONFINITE, "logvar", 2, i / z,
                                 i % z, 0,
                                 "is %g, so large that exp(logvar) "
                                 "overflows.",
                                 a->logvar[i]);
        if (isinf(a->mu[i] * a->mu[i]))
            return loss_error_at(err, LOSS_E_NONFINITE, "mu", 2, i / z, i % z,
                                 0, "is %g, so large that mu^2 overflows.",
                                 a->mu[i]);
    }
    if (a->likelihood != LOSS_LIKELIHOOD_GAUSSIAN)
        return LOSS_OK;
    for (i = 0; i < a->n * d; i++) {
        double diff = a->recon[i] - a->x[i];
        if (isinf(diff * diff))
            return loss_error_at(err, LOSS_E_NONFINITE, "recon", 2, i / d,
                                 i % d, 0,
                                 "is %g, so far from x that (x - recon)^2 "
                                 "overflows.",
                                 a->recon[i]);
    }
    return LOSS_OK;
}

static int vae_validate(const loss_vae_args *a, loss_error *err)
{
    const double *r = a->recon ? a->recon : a->recon_logits;
    const char *rname = a->recon ? "recon" : "recon_logits";
    int rc;

    if ((rc = vae_check_params(a, err)) != LOSS_OK ||
        (rc = vae_check_fields(a, err)) != LOSS_OK ||
        (rc = loss_check_finite(err, "x", a->x, a->n, a->d)) != LOSS_OK ||
        (rc = loss_check_finite(err, rname, r, a->n, a->d)) != LOSS_OK ||
        (rc = loss_check_finite(err, "mu", a->mu, a->n, a->z)) != LOSS_OK ||
        (rc = loss_check_finite(err, "logvar", a->logvar, a->n, a->z)) !=
            LOSS_OK)
        return rc;
    if (a->likelihood == LOSS_LIKELIHOOD_BERNOULLI &&
        ((rc = check_unit(err, "x", a->x, a->n, a->d, 0)) != LOSS_OK ||
         (a->recon != NULL &&
          (rc = check_unit(err, "recon", a->recon, a->n, a->d, 0)) != LOSS_OK)))
        return rc;
    return vae_check_overflow(a, err);
}

/* Reconstruction loss of row i; fills row i of grad (when not NULL) with
 * scale times its gradient. */
static double vae_rec_row(const loss_vae_args *a, size_t i, double scale,
                          double *grad)
{
    vae_term_fn term = a->recon_logits ? vae_bernoulli_logits
                       : a->likelihood == LOSS_LIKELIHOOD_GAUSSIAN
                           ? vae_gaussian
                           : vae_bernoulli;
    const double *r = a->recon ? a->recon : a->recon_logits;
    double sum = 0.0, g;
    size_t j, at;

    for (j = 0; j < a->d; j++) {
        at = i * a->d + j;
        sum += term(a->x[at], r[at], &g);
        if (grad != NULL)
            grad[at] = scale * g;
    }
    return sum;
}

/* KL divergence of row i's posterior from N(0, I); fills row i of the
 * gradients (when not NULL) with scale times the KL's gradients. */
static double vae_kl_row(const loss_vae_args *a, size_t i, double scale,
                         double *grad_mu, double *grad_logvar)
{
    double sum = 0.0;
    size_t k, at;

    for (k = 0; k < a->z; k++) {
        double mu, lv, e;

        at = i * a->z + k;
        mu = a->mu[at];
        lv = a->logvar[at];
        e = expm1(lv);
        sum += mu * mu + (e - lv);
        if (grad_mu != NULL)
            grad_mu[at] = scale * mu;
        if (grad_logvar != NULL)
            grad_logvar[at] = 0.5 * scale * e;
    }
    return 0.5 * sum;
}

int loss_vae(const loss_vae_args *a, loss_vae_out *o, loss_error *err)
{
    double scale, rec_sum = 0.0, kl_sum = 0.0, total = 0.0;
    size_t i;
    int rc = vae_validate(a, err);

    if (rc != LOSS_OK)
        return rc;
    scale = loss_grad_scale((double)a->n, a->reduction);
    for (i = 0; i < a->n; i++) {
        double rec = vae_rec_row(a, i, scale, o->grad_recon);
        double kl =
            vae_kl_row(a, i, a->beta * scale, o->grad_mu, o->grad_logvar);
        double v = a->beta > 0.0 ? rec + a->beta * kl : rec;

        if (!isfinite(v))
            return loss_error_set(err, LOSS_E_NONFINITE, NULL, 0, 0, 0, 0,
                                  "The loss of row %zu overflows double "
                                  "precision.",
                                  i);
        if (o->per_sample != NULL)
            o->per_sample[i] = v;
        rec_sum += rec;
        kl_sum += kl;
        total += v;
    }
    if (!isfinite(total))
        return loss_error_set(err, LOSS_E_NONFINITE, NULL, 0, 0, 0, 0,
                              "The sum of the per-sample losses overflows "
                              "double precision.");
    o->loss = loss_reduce(total, (double)a->n, a->reduction);
    o->reconstruction = rec_sum / (double)a->n;
    o->kl = kl_sum / (double)a->n;
    o->elbo = -(o->reconstruction + o->kl);
    return LOSS_OK;
}

/* ---- gan --------------------------------------------------------------------
 * Discriminator and generator losses of a generative adversarial network.
 *
 * Method:   D is the discriminator's probability that a sample is real.
 *           From logits l, -log D = softplus(-l) and -log(1 - D) =
 *           softplus(l), with softplus(t) = max(t, 0) + log1p(e^-|t|), so
 *           logits of any size (+-1000 included) give finite, accurate
 *           values.  From probabilities p, log D = max(log p, -100) and
 *           log(1 - D) = max(log1p(-p), -100), as PyTorch's BCE.
 *           loss = -mean_real log D - mean_fake log(1 - D), each mean over
 *           its own count (N for d_real, M for d_fake); "sum" sums instead.
 *           Generator loss: -mean_fake log D ("non_saturating") or
 *           mean_fake log(1 - D) ("minimax"), sums under "sum".
 *           Metrics, always batch means whatever the reduction: value =
 *           mean_real log D + mean_fake log(1 - D); jsd_estimate =
 *           (value + log 4) / 2; d_real_mean and d_fake_mean, the mean
 *           probabilities; accuracy = (#real with D >= 1/2 + #fake with
 *           D < 1/2) / (N + M), where D >= 1/2 is decided exactly (l >= 0
 *           for logits) rather than on the rounded sigmoid.
 * Gradient: logits: d(-log D)/dl = -sigmoid(-l), d(-log(1-D))/dl =
 *           sigmoid(l); probabilities: -1/p and 1/(1 - p), 0 for a clamped
 *           log (the gradient of the clamped function).  grad_d_real and
 *           grad_d_fake are those of loss, generator_grad_d_fake that of
 *           generator_loss; each carries 1/N or 1/M under "mean".
 * Special cases: N = 0 or M = 0 is LOSS_E_EMPTY on "d_real" or "d_fake";
 *           a non-finite input is LOSS_E_NONFINITE on its element; with
 *           probabilities an element outside [0, 1] is LOSS_E_PROB; a sum
 *           that overflows (logits near DBL_MAX) is LOSS_E_NONFINITE on the
 *           whole field.  probs must be 0 or 1 (LOSS_E_PARAM on "input").
 * Accuracy: each element term is within a few ulps; the means add at most
 *           N (or M) ulps of relative error.  jsd_estimate is an absolute
 *           difference and is accurate to a few ulps of log 4.
 */

size_t loss_gan_work(const loss_gan_args *a)
{
    (void)a;
    return 0;
}

/* One discriminator output, seen both ways: -log D and -log(1 - D) with
 * their derivatives with respect to the input, D itself and whether
 * D >= 1/2. */
typedef struct gan_term {
    double nll_real, d_real; /* -log D and its derivative */
    double nll_fake, d_fake; /* -log(1 - D) and its derivative */
    double prob;
    int says_real;
} gan_term;

/* From a logit l.  With e = e^-|l| and s = log1p(e), the softplus
 * log(1 + e^+-l) = max(+-l, 0) + s, without overflow or loss of the small
 * tail, and sigmoid(+-l) is 1/(1 + e) or e/(1 + e), exponentiating only
 * non-positive numbers: one exp, one log and one division give all four
 * values (s is loss_log1p's log(u) + c/u, u = 1 + e in [1, 2], with the
 * sigmoid's 1/u).  e, u and log u come from gan_terms. */
static inline gan_term gan_from_logit(double l, double e, double u,
                                      double log_u)
{
    gan_term t;
    double big = 1.0 / u, small = e * big;
    double s = log_u + (e - (u - 1.0)) * big; /* loss_log1p(e), sharing 1/u */

    /* Selects, not fmax (a libm call here): the sign of l is random in a
     * batch, and these compile to masks rather than branches. */
    t.nll_real = (l < 0.0 ? -l : 0.0) + s;
    t.nll_fake = (l > 0.0 ? l : 0.0) + s;
    /* sigmoid(l) and sigmoid(-l) picked by index, not by a branch (at
     * l = 0, e = 1 and big = small = 1/2). */
    {
        const double pair[2] = {small, big};
        int pos = l >= 0.0;

        t.d_fake = pair[pos];
        t.d_real = -pair[1 - pos];
        t.says_real = pos;
    }
    t.prob = t.d_fake;
    return t;
}

static gan_term gan_from_prob(double p)
{
    gan_term t;

    t.nll_real = -clamped_log(p, &t.d_real);
    t.d_real = -t.d_real;
    t.nll_fake = -clamped_log1m(p, &t.d_fake);
    t.d_fake = -t.d_fake;
    t.prob = p;
    t.says_real = p >= 0.5;
    return t;
}

/* Running sums over the batch. */
typedef struct gan_sums {
    double nll_real, nll_fake, gen, prob_real, prob_fake;
    size_t correct;
} gan_sums;

static int gan_validate(const loss_gan_args *a, loss_error *err)
{
    int rc;

    /* A missing input counts as an empty one. */
    if ((rc = loss_check_reduction(err, a->reduction)) != LOSS_OK ||
        (rc = loss_check_choice(err, "input", a->probs, 2,
                                "\"logits\" or \"probs\"")) != LOSS_OK ||
        (rc = loss_check_choice(err, "generator_loss", (int)a->generator_loss,
                                2, "\"non_saturating\" or \"minimax\"")) !=
            LOSS_OK ||
        (rc = loss_check_batch(err, "d_real", a->d_real ? a->n : 0)) !=
            LOSS_OK ||
        (rc = loss_check_batch(err, "d_fake", a->d_fake ? a->m : 0)) !=
            LOSS_OK ||
        (rc = loss_check_finite_vec(err, "d_real", a->d_real, a->n)) !=
            LOSS_OK ||
        (rc = loss_check_finite_vec(err, "d_fake", a->d_fake, a->m)) != LOSS_OK)
        return rc;
    if (a->probs &&
        ((rc = check_unit(err, "d_real", a->d_real, a->n, 1, 1)) != LOSS_OK ||
         (rc = check_unit(err, "d_fake", a->d_fake, a->m, 1, 1)) != LOSS_OK))
        return rc;
    return LOSS_OK;
}

/* Elements taken at once: their logs go to loss_log_array together. */
#define GAN_BLOCK 16

/* The terms of the block of x[0..count) that starts at `at`, into t;
 * returns its length, at most GAN_BLOCK.  Probabilities or logits. */
static size_t gan_terms(const loss_gan_args *a, const double *x, size_t count,
                        size_t at, gan_term *t)
{
    /* u zeroed only for compilers that cannot see j < n fills what
     * loss_log_array reads */
    double e[GAN_BLOCK], u[GAN_BLOCK] = {0.0}, log_u[GAN_BLOCK];
    size_t j, n = count - at < GAN_BLOCK ? count - at : GAN_BLOCK;

    x += at;
    if (a->probs) {
        for (j = 0; j < n; j++)
            t[j] = gan_from_prob(x[j]);
        return n;
    }
    for (j = 0; j < n; j++) {
        e[j] = loss_exp(-fabs(x[j]));
        u[j] = 1.0 + e[j];
    }
    loss_log_array(u, log_u, n);
    for (j = 0; j < n; j++)
        t[j] = gan_from_logit(x[j], e[j], u[j], log_u[j]);
    return n;
}

static void gan_real_pass(const loss_gan_args *a, double scale, double *grad,
                          gan_sums *s)
{
    gan_term t[GAN_BLOCK];
    size_t i0, i, n;

    for (i0 = 0; i0 < a->n; i0 += n) {
        n = gan_terms(a, a->d_real, a->n, i0, t);
        for (i = 0; i < n; i++) {
            s->nll_real += t[i].nll_real;
            s->prob_real += t[i].prob;
            s->correct += t[i].says_real ? 1u : 0u;
            if (grad != NULL)
                grad[i0 + i] = scale * t[i].d_real;
        }
    }
}

static void gan_fake_pass(const loss_gan_args *a, double scale, double *grad,
                          double *gen_grad, gan_sums *s)
{
    int minimax = a->generator_loss == LOSS_GAN_MINIMAX;
    gan_term t[GAN_BLOCK];
    size_t j0, j, n;

    for (j0 = 0; j0 < a->m; j0 += n) {
        n = gan_terms(a, a->d_fake, a->m, j0, t);
        for (j = 0; j < n; j++) {
            s->nll_fake += t[j].nll_fake;
            s->gen += minimax ? -t[j].nll_fake : t[j].nll_real;
            s->prob_fake += t[j].prob;
            s->correct += t[j].says_real ? 0u : 1u;
            if (grad != NULL)
                grad[j0 + j] = scale * t[j].d_fake;
            if (gen_grad != NULL)
                gen_grad[j0 + j] =
                    scale * (minimax ? -t[j].d_fake : t[j].d_real);
        }
    }
}

static int gan_check_sums(const gan_sums *s, loss_error *err)
{
    if (!isfinite(s->nll_real))
        return loss_error_at(err, LOSS_E_NONFINITE, "d_real", 0, 0, 0, 0,
                             "has logits so large that the sum of -log D "
                             "overflows double precision.");
    if (!isfinite(s->nll_fake) || !isfinite(s->gen))
        return loss_error_at(err, LOSS_E_NONFINITE, "d_fake", 0, 0, 0, 0,
                             "has logits so large that the sum of its "
                             "losses overflows double precision.");
    return LOSS_OK;
}

int loss_gan(const loss_gan_args *a, loss_gan_out *o, loss_error *err)
{
    double n, m, scale_real, scale_fake;
    gan_sums s = {0.0, 0.0, 0.0, 0.0, 0.0, 0};
    int rc = gan_validate(a, err);

    if (rc != LOSS_OK)
        return rc;
    n = (double)a->n;
    m = (double)a->m;
    scale_real = loss_grad_scale(n, a->reduction);
    scale_fake = loss_grad_scale(m, a->reduction);
    gan_real_pass(a, scale_real, o->grad_d_real, &s);
    gan_fake_pass(a, scale_fake, o->grad_d_fake, o->generator_grad_d_fake, &s);
    if ((rc = gan_check_sums(&s, err)) != LOSS_OK)
        return rc;
    o->loss = loss_reduce(s.nll_real, n, a->reduction) +
              loss_reduce(s.nll_fake, m, a->reduction);
    if (!isfinite(o->loss))
        return loss_error_set(err, LOSS_E_NONFINITE, NULL, 0, 0, 0, 0,
                              "The discriminator loss overflows double "
                              "precision.");
    o->generator_loss = loss_reduce(s.gen, m, a->reduction);
    o->value = -(s.nll_real / n + s.nll_fake / m);
    o->jsd_estimate = 0.5 * (o->value + LOG_4);
    o->d_real_mean = s.prob_real / n;
    o->d_fake_mean = s.prob_fake / m;
    o->accuracy = (double)s.correct / (n + m);
    return LOSS_OK;
}
