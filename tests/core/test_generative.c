/* test_generative.c -- the VAE and GAN losses of core/generative.c against
 * the PyTorch reference vectors (tests/vectors/generative.json), against
 * central finite differences, and on their edge cases and invalid inputs. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "vec.h"

#define FD_H 1e-6
#define FD_RTOL 1e-6

static void expect_error(int rc, const loss_error *e, loss_status status,
                         const char *path, const char *what)
{
    char got[128];

    cr_assert_eq(rc, (int)status, "%s: status %d, want %d", what, rc,
                 (int)status);
    cr_assert_eq(e->status, status, "%s: err->status", what);
    loss_error_path(e, got, sizeof got);
    cr_assert_str_eq(got, path, "%s: field %s, want %s", what, got, path);
    cr_assert(strlen(e->message) > 10 && e->message[0] != '\0',
              "%s: message \"%s\" is not a sentence", what, e->message);
}

/* Checks a vector file's expected error against what the core reported. */
static void expect_vector_error(const cJSON *c, int rc, const loss_error *e)
{
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "error");
    const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
    const char *code =
        cJSON_GetObjectItemCaseSensitive(want, "code")->valuestring;
    const char *field =
        cJSON_GetObjectItemCaseSensitive(want, "field")->valuestring;
    char got[128];

    cr_assert_neq(rc, LOSS_OK, "%s: succeeded, want %s", name, code);
    cr_expect_str_eq(loss_status_code(e->status), code, "%s: code %s, want %s",
                     name, loss_status_code(e->status), code);
    loss_error_path(e, got, sizeof got);
    cr_expect_str_eq(got, field, "%s: field %s, want %s", name, got, field);
}

/* ---- vae: inputs -------------------------------------------------------- */

typedef struct vae_case {
    loss_vae_args a;
    double *x, *recon, *logits, *mu, *logvar;
    double *per_sample, *g_recon, *g_mu, *g_logvar;
} vae_case;

static void vae_alloc_out(vae_case *c)
{
    size_t nd = c->a.n * c->a.d + 1, nz = c->a.n * c->a.z + 1;

    c->per_sample = calloc(c->a.n + 1, sizeof(double));
    c->g_recon = calloc(nd, sizeof(double));
    c->g_mu = calloc(nz, sizeof(double));
    c->g_logvar = calloc(nz, sizeof(double));
}

static void vae_free(vae_case *c)
{
    free(c->x);
    free(c->recon);
    free(c->logits);
    free(c->mu);
    free(c->logvar);
    free(c->per_sample);
    free(c->g_recon);
    free(c->g_mu);
    free(c->g_logvar);
}

static loss_vae_out vae_out(vae_case *c)
{
    loss_vae_out o;

    memset(&o, 0, sizeof o);
    o.per_sample = c->per_sample;
    o.grad_recon = c->g_recon;
    o.grad_mu = c->g_mu;
    o.grad_logvar = c->g_logvar;
    return o;
}

static void vae_from_request(const cJSON *req, vae_case *c)
{
    size_t dims[3], zd[3], rank;

    memset(c, 0, sizeof *c);
    c->x = vec_tensor(req, "x", dims, &rank);
    c->recon = vec_tensor(req, "recon", zd, &rank);
    c->logits = vec_tensor(req, "recon_logits", zd, &rank);
    c->mu = vec_tensor(req, "mu", zd, &rank);
    c->logvar = vec_tensor(req, "logvar", zd, &rank);
    c->a.n = dims[0];
    c->a.d = dims[1];
    c->a.z = zd[1];
    c->a.x = c->x;
    c->a.recon = c->recon;
    c->a.recon_logits = c->logits;
    c->a.mu = c->mu;
    c->a.logvar = c->logvar;
    c->a.likelihood =
        strcmp(vec_string(req, "likelihood", "bernoulli"), "gaussian") == 0
            ? LOSS_LIKELIHOOD_GAUSSIAN
            : LOSS_LIKELIHOOD_BERNOULLI;
    c->a.beta = vec_number(req, "beta", 1.0);
    c->a.reduction = (loss_reduction)vec_reduction(req);
    vae_alloc_out(c);
}

static void vae_compare(const cJSON *exp, const vae_case *c,
                        const loss_vae_out *o, const char *name)
{
    const cJSON *grads = vec_field(exp, "gradients");
    const cJSON *met = vec_field(exp, "metrics");
    size_t nd = c->a.n * c->a.d, nz = c->a.n * c->a.z;

    vec_expect_number(vec_field(exp, "loss"), o->loss, name, "loss");
    vec_expect_array(vec_field(exp, "per_sample"), o->per_sample, c->a.n, name,
                     "per_sample");
    vec_expect_array(vec_field(grads, c->logits ? "recon_logits" : "recon"),
                     o->grad_recon, nd, name, "grad_recon");
    vec_expect_array(vec_field(grads, "mu"), o->grad_mu, nz, name, "grad_mu");
    vec_expect_array(vec_field(grads, "logvar"), o->grad_logvar, nz, name,
                     "grad_logvar");
    vec_expect_number(vec_field(met, "reconstruction"), o->reconstruction, name,
                      "reconstruction");
    vec_expect_number(vec_field(met, "kl"), o->kl, name, "kl");
    vec_expect_number(vec_field(met, "elbo"), o->elbo, name, "elbo");
}

static void vae_check_vector(const cJSON *cj)
{
    const cJSON *exp = vec_field(cj, "expected");
    const char *name = vec_field(cj, "name")->valuestring;
    vae_case c;
    loss_vae_out o;
    loss_error e;
    int rc;

    vae_from_request(vec_field(cj, "request"), &c);
    o = vae_out(&c);
    rc = loss_vae(&c.a, &o, &e);
    if (exp == NULL) {
        expect_vector_error(cj, rc, &e);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s: %s", name, e.message);
        vae_compare(exp, &c, &o, name);
    }
    vae_free(&c);
}

/* ---- gan: inputs -------------------------------------------------------- */

typedef struct gan_case {
    loss_gan_args a;
    double *d_real, *d_fake, *g_real, *g_fake, *g_gen;
} gan_case;

static void gan_alloc_out(gan_case *c)
{
    c->g_real = calloc(c->a.n + 1, sizeof(double));
    c->g_fake = calloc(c->a.m + 1, sizeof(double));
    c->g_gen = calloc(c->a.m + 1, sizeof(double));
}

static void gan_free(gan_case *c)
{
    free(c->d_real);
    free(c->d_fake);
    free(c->g_real);
    free(c->g_fake);
    free(c->g_gen);
}

static loss_gan_out gan_out(gan_case *c)
{
    loss_gan_out o;

    memset(&o, 0, sizeof o);
    o.grad_d_real = c->g_real;
    o.grad_d_fake = c->g_fake;
    o.generator_grad_d_fake = c->g_gen;
    return o;
}

static void gan_from_request(const cJSON *req, gan_case *c)
{
    size_t dims[3], rank;

    memset(c, 0, sizeof *c);
    c->d_real = vec_tensor(req, "d_real", dims, &rank);
    c->a.n = dims[0];
    c->d_fake = vec_tensor(req, "d_fake", dims, &rank);
    c->a.m = dims[0];
    c->a.d_real = c->d_real;
    c->a.d_fake = c->d_fake;
    c->a.probs = strcmp(vec_string(req, "input", "logits"), "probs") == 0;
    c->a.generator_loss =
        strcmp(vec_string(req, "generator_loss", "non_saturating"),
               "minimax") == 0
            ? LOSS_GAN_MINIMAX
            : LOSS_GAN_NON_SATURATING;
    c->a.reduction = (loss_reduction)vec_reduction(req);
    gan_alloc_out(c);
}

static void gan_compare(const cJSON *exp, const gan_case *c,
                        const loss_gan_out *o, const char *name)
{
    const cJSON *grads = vec_field(exp, "gradients");
    const cJSON *gen = vec_field(exp, "generator");

    cr_assert_null(vec_field(exp, "per_sample"), "%s: gan has no per_sample",
                   name);
    vec_expect_number(vec_field(exp, "loss"), o->loss, name, "loss");
    vec_expect_array(vec_field(grads, "d_real"), o->grad_d_real, c->a.n, name,
                     "grad_d_real");
    vec_expect_array(vec_field(grads, "d_fake"), o->grad_d_fake, c->a.m, name,
                     "grad_d_fake");
    vec_expect_number(vec_field(gen, "loss"), o->generator_loss, name,
                      "generator.loss");
    vec_expect_array(vec_field(vec_field(gen, "gradients"), "d_fake"),
                     o->generator_grad_d_fake, c->a.m, name,
                     "generator.gradients.d_fake");
}

static void gan_compare_metrics(const cJSON *met, const loss_gan_out *o,
                                const char *name)
{
    vec_expect_number(vec_field(met, "value"), o->value, name, "value");
    vec_expect_number(vec_field(met, "jsd_estimate"), o->jsd_estimate, name,
                      "jsd_estimate");
    vec_expect_number(vec_field(met, "d_real_mean"), o->d_real_mean, name,
                      "d_real_mean");
    vec_expect_number(vec_field(met, "d_fake_mean"), o->d_fake_mean, name,
                      "d_fake_mean");
    vec_expect_number(vec_field(met, "accuracy"), o->accuracy, name,
                      "accuracy");
}

static void gan_check_vector(const cJSON *cj)
{
    const cJSON *exp = vec_field(cj, "expected");
    const char *name = vec_field(cj, "name")->valuestring;
    gan_case c;
    loss_gan_out o;
    loss_error e;
    int rc;

    gan_from_request(vec_field(cj, "request"), &c);
    o = gan_out(&c);
    rc = loss_gan(&c.a, &o, &e);
    if (exp == NULL) {
        expect_vector_error(cj, rc, &e);
    } else {
        cr_assert_eq(rc, LOSS_OK, "%s: %s", name, e.message);
        gan_compare(exp, &c, &o, name);
        gan_compare_metrics(vec_field(exp, "metrics"), &o, name);
    }
    gan_free(&c);
}

/* Runs every case of one loss in generative.json; returns how many ran and
 * how many of them were error cases. */
static void run_vectors(const char *loss, void (*check)(const cJSON *),
                        int *ran, int *errors)
{
    cJSON *root = vec_load("generative");
    const cJSON *c;

    *ran = *errors = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "cases")) {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(c, "loss")->valuestring,
                   loss) != 0)
            continue;
        check(c);
        (*ran)++;
        *errors += cJSON_GetObjectItemCaseSensitive(c, "error") != NULL;
    }
    cJSON_Delete(root);
}

Test(vae, pytorch_vectors)
{
    int ran, errors;

    run_vectors("vae", vae_check_vector, &ran, &errors);
    cr_assert_geq(ran - errors, 10, "only %d vae value cases", ran - errors);
    cr_assert_geq(errors, 9, "only %d vae error cases", errors);
}

Test(gan, pytorch_vectors)
{
    int ran, errors;

    run_vectors("gan", gan_check_vector, &ran, &errors);
    cr_assert_geq(ran - errors, 12, "only %d gan value cases", ran - errors);
    cr_assert_geq(errors, 5, "only %d gan error cases", errors);
}

/* ---- finite differences ------------------------------------------------- */

static double vae_eval(void *ctx)
{
    const loss_vae_args *a = ctx;
    loss_vae_out o;
    loss_error e;

    memset(&o, 0, sizeof o);
    cr_assert_eq(loss_vae(a, &o, &e), LOSS_OK, "%s", e.message);
    return o.loss;
}

/* A random VAE batch: Bernoulli x and recon in (0.05, 0.95) or logits, or
 * Gaussian values; latent means and log-variances of moderate size. */
static void vae_random(vae_case *c, uint64_t seed, loss_likelihood lik,
                       int logits, loss_reduction red)
{
    uint64_t s = seed;
    size_t nd, nz;

    memset(c, 0, sizeof *c);
    c->a.n = 3;
    c->a.d = 4;
    c->a.z = 3;
    nd = c->a.n * c->a.d;
    nz = c->a.n * c->a.z;
    c->x = malloc(nd * sizeof(double));
    c->mu = malloc(nz * sizeof(double));
    c->logvar = malloc(nz * sizeof(double));
    test_rand_fill(&s, c->mu, nz, -2.0, 2.0);
    test_rand_fill(&s, c->logvar, nz, -3.0, 2.0);
    if (lik == LOSS_LIKELIHOOD_GAUSSIAN) {
        c->recon = malloc(nd * sizeof(double));
        test_rand_fill(&s, c->x, nd, -2.0, 2.0);
        test_rand_fill(&s, c->recon, nd, -2.0, 2.0);
    } else if (logits) {
        c->logits = malloc(nd * sizeof(double));
        test_rand_fill(&s, c->x, nd, 0.0, 1.0);
        test_rand_fill(&s, c->logits, nd, -6.0, 6.0);
    } else {
        c->recon = malloc(nd * sizeof(double));
        test_rand_fill(&s, c->x, nd, 0.0, 1.0);
        test_rand_fill(&s, c->recon, nd, 0.05, 0.95);
    }
    c->a.x = c->x;
    c->a.recon = c->recon;
    c->a.recon_logits = c->logits;
    c->a.mu = c->mu;
    c->a.logvar = c->logvar;
    c->a.likelihood = lik;
    c->a.beta = 0.7;
    c->a.reduction = red;
    vae_alloc_out(c);
}

static void vae_fd(loss_likelihood lik, int logits, loss_reduction red,
                   uint64_t seed)
{
    vae_case c;
    loss_vae_out o;
    loss_error e;
    double *r;

    vae_random(&c, seed, lik, logits, red);
    o = vae_out(&c);
    cr_assert_eq(loss_vae(&c.a, &o, &e), LOSS_OK, "%s", e.message);
    r = c.recon ? c.recon : c.logits;
    fd_check(vae_eval, &c.a, r, o.grad_recon, c.a.n * c.a.d, FD_H, FD_RTOL,
             "grad_recon");
    fd_check(vae_eval, &c.a, c.mu, o.grad_mu, c.a.n * c.a.z, FD_H, FD_RTOL,
             "grad_mu");
    fd_check(vae_eval, &c.a, c.logvar, o.grad_logvar, c.a.n * c.a.z, FD_H,
             FD_RTOL, "grad_logvar");
    vae_free(&c);
}

Test(vae, fd_bernoulli_probs)
{
    vae_fd(LOSS_LIKELIHOOD_BERNOULLI, 0, LOSS_REDUCE_MEAN, 11);
    vae_fd(LOSS_LIKELIHOOD_BERNOULLI, 0, LOSS_REDUCE_SUM, 12);
}

Test(vae, fd_bernoulli_logits)
{
    vae_fd(LOSS_LIKELIHOOD_BERNOULLI, 1, LOSS_REDUCE_MEAN, 13);
    vae_fd(LOSS_LIKELIHOOD_BERNOULLI, 1, LOSS_REDUCE_SUM, 14);
}

Test(vae, fd_gaussian)
{
    vae_fd(LOSS_LIKELIHOOD_GAUSSIAN, 0, LOSS_REDUCE_MEAN, 15);
    vae_fd(LOSS_LIKELIHOOD_GAUSSIAN, 0, LOSS_REDUCE_SUM, 16);
}

/* Which of the GAN's two losses gan_eval returns. */
typedef struct gan_fd_ctx {
    const loss_gan_args *a;
    int generator;
} gan_fd_ctx;

static double gan_eval(void *ctx)
{
    const gan_fd_ctx *f = ctx;
    loss_gan_out o;
    loss_error e;

    memset(&o, 0, sizeof o);
    cr_assert_eq(loss_gan(f->a, &o, &e), LOSS_OK, "%s", e.message);
    return f->generator ? o.generator_loss : o.loss;
}

/* A random GAN batch of 5 real and 4 generated samples: logits in (-5, 5)
 * or probabilities in (0.05, 0.95). */
static void gan_random(gan_case *c, uint64_t seed, int probs,
                       loss_gan_generator gen, loss_reduction red)
{
    uint64_t s = seed;

    memset(c, 0, sizeof *c);
    c->a.n = 5;
    c->a.m = 4;
    c->d_real = malloc(c->a.n * sizeof(double));
    c->d_fake = malloc(c->a.m * sizeof(double));
    test_rand_fill(&s, c->d_real, c->a.n, probs ? 0.05 : -5.0,
                   probs ? 0.95 : 5.0);
    test_rand_fill(&s, c->d_fake, c->a.m, probs ? 0.05 : -5.0,
                   probs ? 0.95 : 5.0);
    c->a.d_real = c->d_real;
    c->a.d_fake = c->d_fake;
    c->a.probs = probs;
    c->a.generator_loss = gen;
    c->a.reduction = red;
    gan_alloc_out(c);
}

static void gan_fd(int probs, loss_gan_generator gen, loss_reduction red,
                   uint64_t seed)
{
    gan_case c;
    gan_fd_ctx disc, genr;
    loss_gan_out o;
    loss_error e;

    gan_random(&c, seed, probs, gen, red);
    o = gan_out(&c);
    cr_assert_eq(loss_gan(&c.a, &o, &e), LOSS_OK, "%s", e.message);
    disc.a = genr.a = &c.a;
    disc.generator = 0;
    genr.generator = 1;
    fd_check(gan_eval, &disc, c.d_real, o.grad_d_real, c.a.n, FD_H, FD_RTOL,
             "grad_d_real");
    fd_check(gan_eval, &disc, c.d_fake, o.grad_d_fake, c.a.m, FD_H, FD_RTOL,
             "grad_d_fake");
    fd_check(gan_eval, &genr, c.d_fake, o.generator_grad_d_fake, c.a.m, FD_H,
             FD_RTOL, "generator_grad_d_fake");
    gan_free(&c);
}

Test(gan, fd_logits)
{
    gan_fd(0, LOSS_GAN_NON_SATURATING, LOSS_REDUCE_MEAN, 21);
    gan_fd(0, LOSS_GAN_MINIMAX, LOSS_REDUCE_MEAN, 22);
    gan_fd(0, LOSS_GAN_NON_SATURATING, LOSS_REDUCE_SUM, 23);
    gan_fd(0, LOSS_GAN_MINIMAX, LOSS_REDUCE_SUM, 24);
}

Test(gan, fd_probs)
{
    gan_fd(1, LOSS_GAN_NON_SATURATING, LOSS_REDUCE_MEAN, 25);
    gan_fd(1, LOSS_GAN_MINIMAX, LOSS_REDUCE_MEAN, 26);
    gan_fd(1, LOSS_GAN_NON_SATURATING, LOSS_REDUCE_SUM, 27);
    gan_fd(1, LOSS_GAN_MINIMAX, LOSS_REDUCE_SUM, 28);
}

/* ---- vae: edge cases ---------------------------------------------------- */

/* A one-row VAE over caller arrays, with every output requested. */
static int vae_run(size_t d, size_t z, const double *x, const double *recon,
                   const double *logits, const double *mu, const double *logvar,
                   loss_likelihood lik, double beta, loss_vae_out *o,
                   double *buf, loss_error *e)
{
    loss_vae_args a;

    memset(&a, 0, sizeof a);
    a.n = 1;
    a.d = d;
    a.z = z;
    a.x = x;
    a.recon = recon;
    a.recon_logits = logits;
    a.mu = mu;
    a.logvar = logvar;
    a.likelihood = lik;
    a.beta = beta;
    a.reduction = LOSS_REDUCE_MEAN;
    memset(o, 0, sizeof *o);
    o->per_sample = buf;
    o->grad_recon = buf + 1;
    o->grad_mu = buf + 1 + d;
    o->grad_logvar = buf + 1 + d + z;
    return loss_vae(&a, o, e);
}

Test(vae, work_is_zero)
{
    loss_vae_args a;

    memset(&a, 0, sizeof a);
    a.n = 7;
    a.d = 3;
    a.z = 2;
    cr_assert_eq(loss_vae_work(&a), 0);
}

Test(vae, one_sample_by_hand)
{
    double x = 1.0, r = 0.5, mu = 0.0, lv = 0.0, buf[8];
    loss_vae_out o;
    loss_error e;

    cr_assert_eq(vae_run(1, 1, &x, &r, NULL, &mu, &lv,
                         LOSS_LIKELIHOOD_BERNOULLI, 1.0, &o, buf, &e),
                 LOSS_OK);
    cr_assert_float_eq(o.loss, log(2.0), 1e-15);
    cr_assert_float_eq(o.per_sample[0], log(2.0), 1e-15);
    cr_assert_float_eq(o.grad_recon[0], -2.0, 1e-15);
    cr_assert_eq(o.grad_mu[0], 0.0);
    cr_assert_eq(o.grad_logvar[0], 0.0);
    cr_assert_eq(o.kl, 0.0);
    cr_assert_float_eq(o.elbo, -log(2.0), 1e-15);
}

Test(vae, clamped_probabilities)
{
    /* x = 1 at r = 0: log 0 clamps to -100, gradient 0.  x = 0 at r = 0:
     * the clamped term is weighted by 0; log(1 - r) = 0 has gradient 1.
     * x = 1/2 at r = 1: log(1 - r) clamps, only log r = 0 has a gradient. */
    double x[5] = {1.0, 0.0, 0.5, 1.0, 0.0};
    double r[5] = {0.0, 0.0, 1.0, 1e-300, 1e-300};
    double mu[1] = {0.0}, lv[1] = {0.0}, buf[16];
    loss_vae_out o;
    loss_error e;

    cr_assert_eq(vae_run(5, 1, x, r, NULL, mu, lv, LOSS_LIKELIHOOD_BERNOULLI,
                         1.0, &o, buf, &e),
                 LOSS_OK);
    cr_assert_float_eq(o.loss, 100.0 + 0.0 + 50.0 + 100.0 + 1e-300, 1e-12);
    cr_assert_eq(o.grad_recon[0], 0.0);
    cr_assert_eq(o.grad_recon[1], 1.0);
    cr_assert_eq(o.grad_recon[2], -0.5);
    cr_assert_eq(o.grad_recon[3], 0.0);
    cr_assert_eq(o.grad_recon[4], 1.0);
    cr_assert(isfinite(o.elbo));
}

Test(vae, extreme_logits)
{
    double x[4] = {1.0, 1.0, 0.0, 0.5};
    double l[4] = {1000.0, -1000.0, 1000.0, -1000.0};
    double mu[1] = {0.0}, lv[1] = {0.0}, buf[16];
    loss_vae_out o;
    loss_error e;

    cr_assert_eq(vae_run(4, 1, x, NULL, l, mu, lv, LOSS_LIKELIHOOD_BERNOULLI,
                         1.0, &o, buf, &e),
                 LOSS_OK);
    cr_assert_float_eq(o.loss, 0.0 + 1000.0 + 1000.0 + 500.0, 1e-12);
    cr_assert_eq(o.grad_recon[0], 0.0);
    cr_assert_eq(o.grad_recon[1], -1.0);
    cr_assert_eq(o.grad_recon[2], 1.0);
    cr_assert_eq(o.grad_recon[3], -0.5);
}

Test(vae, extreme_logvar_and_beta)
{
    /* logvar = -700: e^logvar underflows harmlessly, KL = (700 - 1) / 2. */
    double x = 0.0, r = 0.0, mu = 0.0, lv = -700.0, buf[8];
    loss_vae_out o;
    loss_error e;

    cr_assert_eq(vae_run(1, 1, &x, &r, NULL, &mu, &lv, LOSS_LIKELIHOOD_GAUSSIAN,
                         2.0, &o, buf, &e),
                 LOSS_OK);
    cr_assert_float_eq(o.kl, 349.5, 1e-12);
    cr_assert_float_eq(o.loss, 699.0, 1e-12);
    cr_assert_float_eq(o.grad_logvar[0], -1.0, 1e-15);
    cr_assert_eq(o.reconstruction, 0.0);
}

Test(vae, beta_zero_keeps_an_overflowing_kl_out_of_the_loss)
{
    /* Three e^709 terms overflow the KL sum: with beta = 0 the loss is the
     * reconstruction alone and the kl metric is infinite; with beta = 1 the
     * loss itself overflows. */
    double x = 0.25, r = 0.5, mu[3] = {0, 0, 0}, lv[3] = {709, 709, 709};
    double buf[16];
    loss_vae_out o;
    loss_error e;
    int rc;

    cr_assert_eq(vae_run(1, 3, &x, &r, NULL, mu, lv, LOSS_LIKELIHOOD_GAUSSIAN,
                         0.0, &o, buf, &e),
                 LOSS_OK);
    cr_assert_float_eq(o.loss, 0.5 * 0.0625, 1e-15);
    cr_assert(isinf(o.kl) && o.kl > 0);
    cr_assert(isinf(o.elbo) && o.elbo < 0);
    cr_assert_eq(o.grad_logvar[0], 0.0);
    rc = vae_run(1, 3, &x, &r, NULL, mu, lv, LOSS_LIKELIHOOD_GAUSSIAN, 1.0, &o,
                 buf, &e);
    expect_error(rc, &e, LOSS_E_NONFINITE, "", "kl row overflow");
}

Test(vae, outputs_may_be_null)
{
    vae_case c;
    loss_vae_out full, bare;
    loss_error e;

    vae_random(&c, 31, LOSS_LIKELIHOOD_BERNOULLI, 0, LOSS_REDUCE_MEAN);
    full = vae_out(&c);
    memset(&bare, 0, sizeof bare);
    cr_assert_eq(loss_vae(&c.a, &full, &e), LOSS_OK);
    cr_assert_eq(loss_vae(&c.a, &bare, &e), LOSS_OK);
    cr_assert_eq(bare.loss, full.loss);
    cr_assert_eq(bare.kl, full.kl);
    cr_assert_eq(bare.reconstruction, full.reconstruction);
    vae_free(&c);
}

Test(vae, mean_is_sum_over_n)
{
    vae_case c;
    loss_vae_out o;
    loss_error e;
    double sum, g_sum;

    vae_random(&c, 32, LOSS_LIKELIHOOD_GAUSSIAN, 0, LOSS_REDUCE_SUM);
    o = vae_out(&c);
    cr_assert_eq(loss_vae(&c.a, &o, &e), LOSS_OK);
    sum = o.loss;
    g_sum = o.grad_mu[4];
    cr_assert_float_eq(sum, o.per_sample[0] + o.per_sample[1] + o.per_sample[2],
                       1e-12);
    c.a.reduction = LOSS_REDUCE_MEAN;
    cr_assert_eq(loss_vae(&c.a, &o, &e), LOSS_OK);
    cr_assert_float_eq(o.loss, sum / 3.0, 1e-12);
    cr_assert_float_eq(o.grad_mu[4], g_sum / 3.0, 1e-15);
    cr_assert_float_eq(o.elbo, -(o.reconstruction + o.kl), 1e-15);
    vae_free(&c);
}

/* ---- vae: invalid inputs ------------------------------------------------ */

/* A valid two-row Bernoulli batch each invalid-input test breaks once. */
typedef struct vae_bad {
    double x[4], r[4], l[4], mu[2], lv[2];
    loss_vae_args a;
    double buf[32];
} vae_bad;

static void vae_bad_init(vae_bad *b)
{
    const double x[4] = {0.0, 1.0, 0.5, 1.0}, r[4] = {0.2, 0.7, 0.9, 0.4};

    memset(b, 0, sizeof *b);
    memcpy(b->x, x, sizeof x);
    memcpy(b->r, r, sizeof r);
    b->mu[0] = 0.3;
    b->lv[1] = -0.4;
    b->a.n = 2;
    b->a.d = 2;
    b->a.z = 1;
    b->a.x = b->x;
    b->a.recon = b->r;
    b->a.mu = b->mu;
    b->a.logvar = b->lv;
    b->a.beta = 1.0;
}

static void vae_bad_expect(vae_bad *b, loss_status st, const char *path)
{
    loss_vae_out o;
    loss_error e;

    memset(&o, 0, sizeof o);
    o.per_sample = b->buf;
    o.grad_recon = b->buf + 2;
    o.grad_mu = b->buf + 6;
    o.grad_logvar = b->buf + 8;
    expect_error(loss_vae(&b->a, &o, &e), &e, st, path, path);
}

Test(vae, baseline_of_the_invalid_cases_is_valid)
{
    vae_bad b;
    loss_vae_out o;
    loss_error e;

    vae_bad_init(&b);
    memset(&o, 0, sizeof o);
    cr_assert_eq(loss_vae(&b.a, &o, &e), LOSS_OK);
}

Test(vae, non_finite_inputs)
{
    vae_bad b;

    vae_bad_init(&b);
    b.x[3] = NAN;
    vae_bad_expect(&b, LOSS_E_NONFINITE, "x[1][1]");
    vae_bad_init(&b);
    b.r[2] = INFINITY;
    vae_bad_expect(&b, LOSS_E_NONFINITE, "recon[1][0]");
    vae_bad_init(&b);
    b.a.recon = NULL;
    b.a.recon_logits = b.l;
    b.l[1] = -INFINITY;
    vae_bad_expect(&b, LOSS_E_NONFINITE, "recon_logits[0][1]");
    vae_bad_init(&b);
    b.mu[1] = NAN;
    vae_bad_expect(&b, LOSS_E_NONFINITE, "mu[1][0]");
    vae_bad_init(&b);
    b.lv[0] = INFINITY;
    vae_bad_expect(&b, LOSS_E_NONFINITE, "logvar[0][0]");
}

Test(vae, bad_parameters)
{
    vae_bad b;

    vae_bad_init(&b);
    b.a.beta = -0.1;
    vae_bad_expect(&b, LOSS_E_PARAM, "beta");
    b.a.beta = NAN;
    vae_bad_expect(&b, LOSS_E_NONFINITE, "beta");
    b.a.beta = INFINITY;
    vae_bad_expect(&b, LOSS_E_NONFINITE, "beta");
    vae_bad_init(&b);
    b.a.likelihood = (loss_likelihood)2;
    vae_bad_expect(&b, LOSS_E_PARAM, "likelihood");
    vae_bad_init(&b);
    b.a.reduction = (loss_reduction)2;
    vae_bad_expect(&b, LOSS_E_PARAM, "reduction");
}

Test(vae, recon_or_recon_logits)
{
    vae_bad b;

    vae_bad_init(&b);
    b.a.recon_logits = b.l;
    vae_bad_expect(&b, LOSS_E_PARAM, "recon_logits");
    b.a.recon = NULL;
    b.a.recon_logits = NULL;
    vae_bad_expect(&b, LOSS_E_PARAM, "recon");
    b.a.recon_logits = b.l;
    b.a.likelihood = LOSS_LIKELIHOOD_GAUSSIAN;
    vae_bad_expect(&b, LOSS_E_PARAM, "recon_logits");
    b.a.likelihood = LOSS_LIKELIHOOD_BERNOULLI;
    b.a.mu = NULL;
    vae_bad_expect(&b, LOSS_E_PARAM, "mu");
    b.a.x = NULL;
    vae_bad_expect(&b, LOSS_E_PARAM, "x");
    vae_bad_init(&b);
    b.a.logvar = NULL;
    vae_bad_expect(&b, LOSS_E_PARAM, "logvar");
}

Test(vae, probabilities_out_of_range)
{
    vae_bad b;

    vae_bad_init(&b);
    b.x[1] = 1.0 + 1e-12;
    vae_bad_expect(&b, LOSS_E_PROB, "x[0][1]");
    vae_bad_init(&b);
    b.r[3] = -1e-300;
    vae_bad_expect(&b, LOSS_E_PROB, "recon[1][1]");
    /* Gaussian targets and means may be any finite numbers. */
    b.a.likelihood = LOSS_LIKELIHOOD_GAUSSIAN;
    b.x[0] = -3.0;
    {
        loss_vae_out o;
        loss_error e;

        memset(&o, 0, sizeof o);
        cr_assert_eq(loss_vae(&b.a, &o, &e), LOSS_OK);
    }
}

Test(vae, empty_batch)
{
    vae_bad b;

    vae_bad_init(&b);
    b.a.n = 0;
    vae_bad_expect(&b, LOSS_E_EMPTY, "x");
}

Test(vae, overflow)
{
    vae_bad b;

    vae_bad_init(&b);
    b.lv[1] = 710.0;
    vae_bad_expect(&b, LOSS_E_NONFINITE, "logvar[1][0]");
    vae_bad_init(&b);
    b.mu[0] = -2e154;
    vae_bad_expect(&b, LOSS_E_NONFINITE, "mu[0][0]");
    vae_bad_init(&b);
    b.a.likelihood = LOSS_LIKELIHOOD_GAUSSIAN;
    b.x[2] = 1e200;
    vae_bad_expect(&b, LOSS_E_NONFINITE, "recon[1][0]");
    /* Each row's loss is finite (about 1.7e308) but their sum is not. */
    vae_bad_init(&b);
    b.a.likelihood = LOSS_LIKELIHOOD_GAUSSIAN;
    b.x[0] = 1.3e154;
    b.x[2] = -1.3e154;
    b.mu[0] = 1.3e154;
    b.mu[1] = -1.3e154;
    vae_bad_expect(&b, LOSS_E_NONFINITE, "");
}

/* ---- gan: edge cases ---------------------------------------------------- */

static int gan_run(size_t n, const double *real, size_t m, const double *fake,
                   int probs, loss_gan_generator gen, loss_reduction red,
                   loss_gan_out *o, double *buf, loss_error *e)
{
    loss_gan_args a;

    memset(&a, 0, sizeof a);
    a.n = n;
    a.m = m;
    a.d_real = real;
    a.d_fake = fake;
    a.probs = probs;
    a.generator_loss = gen;
    a.reduction = red;
    memset(o, 0, sizeof *o);
    o->grad_d_real = buf;
    o->grad_d_fake = buf + n;
    o->generator_grad_d_fake = buf + n + m;
    return loss_gan(&a, o, e);
}

Test(gan, work_is_zero)
{
    loss_gan_args a;

    memset(&a, 0, sizeof a);
    a.n = 3;
    a.m = 4;
    cr_assert_eq(loss_gan_work(&a), 0);
}

Test(gan, perfect_discriminator_with_extreme_logits)
{
    double real = 1000.0, fake = -1000.0, buf[8];
    loss_gan_out o;
    loss_error e;

    cr_assert_eq(gan_run(1, &real, 1, &fake, 0, LOSS_GAN_NON_SATURATING,
                         LOSS_REDUCE_MEAN, &o, buf, &e),
                 LOSS_OK);
    cr_assert_eq(o.loss, 0.0);
    cr_assert_eq(o.grad_d_real[0], 0.0);
    cr_assert_eq(o.grad_d_fake[0], 0.0);
    cr_assert_float_eq(o.generator_loss, 1000.0, 1e-12);
    cr_assert_float_eq(o.generator_grad_d_fake[0], -1.0, 1e-15);
    cr_assert_eq(o.value, 0.0);
    cr_assert_float_eq(o.jsd_estimate, log(2.0), 1e-15);
    cr_assert_eq(o.d_real_mean, 1.0);
    cr_assert_eq(o.d_fake_mean, 0.0);
    cr_assert_eq(o.accuracy, 1.0);
}

Test(gan, fooled_discriminator_with_extreme_logits)
{
    double real = -1000.0, fake = 1000.0, buf[8];
    loss_gan_out o;
    loss_error e;

    cr_assert_eq(gan_run(1, &real, 1, &fake, 0, LOSS_GAN_MINIMAX,
                         LOSS_REDUCE_SUM, &o, buf, &e),
                 LOSS_OK);
    cr_assert_float_eq(o.loss, 2000.0, 1e-12);
    cr_assert_eq(o.grad_d_real[0], -1.0);
    cr_assert_eq(o.grad_d_fake[0], 1.0);
    cr_assert_float_eq(o.generator_loss, -1000.0, 1e-12);
    cr_assert_eq(o.generator_grad_d_fake[0], -1.0);
    cr_assert_eq(o.accuracy, 0.0);
    cr_assert(isfinite(o.jsd_estimate));
}

Test(gan, balanced_discriminator_gives_zero_jsd)
{
    double real[2] = {0.0, 0.0}, fake[3] = {0.0, 0.0, 0.0}, buf[8];
    loss_gan_out o;
    loss_error e;

    cr_assert_eq(gan_run(2, real, 3, fake, 0, LOSS_GAN_NON_SATURATING,
                         LOSS_REDUCE_MEAN, &o, buf, &e),
                 LOSS_OK);
    cr_assert_float_eq(o.value, -log(4.0), 1e-15);
    cr_assert_float_eq(o.jsd_estimate, 0.0, 1e-15);
    cr_assert_float_eq(o.grad_d_real[1], -0.25, 1e-15);
    cr_assert_float_eq(o.grad_d_fake[2], 0.5 / 3.0, 1e-15);
    /* D = 1/2 counts as "real": both reals right, all three fakes wrong. */
    cr_assert_float_eq(o.accuracy, 0.4, 1e-15);
}

Test(gan, accuracy_threshold_is_exact)
{
    /* sigmoid(-1e-17) rounds to 0.5, yet D < 1/2: the sample is "fake". */
    double real = -1e-17, fake = -5.0, buf[8];
    double preal = 0.5, pfake = 0.5;
    loss_gan_out o;
    loss_error e;

    cr_assert_eq(gan_run(1, &real, 1, &fake, 0, LOSS_GAN_NON_SATURATING,
                         LOSS_REDUCE_MEAN, &o, buf, &e),
                 LOSS_OK);
    cr_assert_eq(o.accuracy, 0.5);
    cr_assert_eq(gan_run(1, &preal, 1, &pfake, 1, LOSS_GAN_NON_SATURATING,
                         LOSS_REDUCE_MEAN, &o, buf, &e),
                 LOSS_OK);
    cr_assert_eq(o.accuracy, 0.5);
}

Test(gan, clamped_probabilities)
{
    double real[3] = {0.0, 1e-300, 1.0}, fake[2] = {1.0, 0.0}, buf[8];
    loss_gan_out o;
    loss_error e;

    cr_assert_eq(gan_run(3, real, 2, fake, 1, LOSS_GAN_NON_SATURATING,
                         LOSS_REDUCE_SUM, &o, buf, &e),
                 LOSS_OK);
    cr_assert_float_eq(o.loss, 100.0 + 100.0 + 0.0 + 100.0 + 0.0, 1e-12);
    cr_assert_eq(o.grad_d_real[0], 0.0);
    cr_assert_eq(o.grad_d_real[1], 0.0);
    cr_assert_eq(o.grad_d_real[2], -1.0);
    cr_assert_eq(o.grad_d_fake[0], 0.0);
    cr_assert_eq(o.grad_d_fake[1], 1.0);
    /* -log D(G(z)): 0 for D = 1; clamped 100 with gradient 0 for D = 0. */
    cr_assert_float_eq(o.generator_loss, 100.0, 1e-12);
    cr_assert_eq(o.generator_grad_d_fake[0], -1.0);
    cr_assert_eq(o.generator_grad_d_fake[1], 0.0);
    cr_assert_float_eq(o.value, -(200.0 / 3.0 + 50.0), 1e-12);
    cr_assert_float_eq(o.accuracy, 2.0 / 5.0, 1e-15);
}

Test(gan, outputs_may_be_null)
{
    double real[2] = {0.3, -1.2}, fake[3] = {2.0, -0.1, 0.4};
    loss_gan_args a;
    loss_gan_out full, bare;
    double buf[8];
    loss_error e;

    cr_assert_eq(gan_run(2, real, 3, fake, 0, LOSS_GAN_MINIMAX,
                         LOSS_REDUCE_MEAN, &full, buf, &e),
                 LOSS_OK);
    memset(&a, 0, sizeof a);
    a.n = 2;
    a.m = 3;
    a.d_real = real;
    a.d_fake = fake;
    a.generator_loss = LOSS_GAN_MINIMAX;
    memset(&bare, 0, sizeof bare);
    cr_assert_eq(loss_gan(&a, &bare, &e), LOSS_OK);
    cr_assert_eq(bare.loss, full.loss);
    cr_assert_eq(bare.generator_loss, full.generator_loss);
    cr_assert_eq(bare.accuracy, full.accuracy);
}

/* ---- gan: invalid inputs ------------------------------------------------ */

static void gan_expect(const double *real, size_t n, const double *fake,
                       size_t m, int probs, loss_gan_generator gen,
                       loss_reduction red, loss_status st, const char *path)
{
    double buf[16];
    loss_gan_out o;
    loss_error e;

    expect_error(gan_run(n, real, m, fake, probs, gen, red, &o, buf, &e), &e,
                 st, path, path);
}

Test(gan, invalid_inputs)
{
    double real[3] = {0.1, 0.5, NAN}, fake[2] = {0.2, INFINITY};
    double ok_r[3] = {0.1, 0.5, 0.9}, ok_f[2] = {0.2, 0.3};
    double hi[2] = {0.2, 1.5}, neg[3] = {0.1, -0.5, 0.2};
    loss_gan_generator ns = LOSS_GAN_NON_SATURATING;
    loss_reduction mean = LOSS_REDUCE_MEAN;

    gan_expect(real, 3, ok_f, 2, 0, ns, mean, LOSS_E_NONFINITE, "d_real[2]");
    gan_expect(ok_r, 3, fake, 2, 1, ns, mean, LOSS_E_NONFINITE, "d_fake[1]");
    gan_expect(ok_r, 3, hi, 2, 1, ns, mean, LOSS_E_PROB, "d_fake[1]");
    gan_expect(neg, 3, ok_f, 2, 1, ns, mean, LOSS_E_PROB, "d_real[1]");
    gan_expect(ok_r, 0, ok_f, 2, 0, ns, mean, LOSS_E_EMPTY, "d_real");
    gan_expect(ok_r, 3, ok_f, 0, 0, ns, mean, LOSS_E_EMPTY, "d_fake");
    gan_expect(ok_r, 3, ok_f, 2, 2, ns, mean, LOSS_E_PARAM, "input");
    gan_expect(ok_r, 3, ok_f, 2, 0, (loss_gan_generator)2, mean, LOSS_E_PARAM,
               "generator_loss");
    gan_expect(ok_r, 3, ok_f, 2, 0, ns, (loss_reduction)7, LOSS_E_PARAM,
               "reduction");
    /* Logits outside [0, 1] are fine. */
    hi[1] = 40.0;
    {
        double buf[16];
        loss_gan_out o;
        loss_error e;

        cr_assert_eq(gan_run(3, ok_r, 2, hi, 0, ns, mean, &o, buf, &e),
                     LOSS_OK);
    }
}

Test(gan, overflow)
{
    double big_r[2] = {-1.5e308, -1.5e308}, big_f[2] = {1.5e308, 1.5e308};
    double low_f[2] = {-1.5e308, -1.5e308}, one_r = -1.5e308;
    double one_f = 1.5e308, ok[2] = {0.0, 1.0};
    loss_gan_generator ns = LOSS_GAN_NON_SATURATING;

    gan_expect(big_r, 2, ok, 2, 0, ns, LOSS_REDUCE_SUM, LOSS_E_NONFINITE,
               "d_real");
    gan_expect(ok, 2, big_f, 2, 0, ns, LOSS_REDUCE_MEAN, LOSS_E_NONFINITE,
               "d_fake");
    /* -log D(G(z)) over the generated samples overflows (non_saturating). */
    gan_expect(ok, 2, low_f, 2, 0, ns, LOSS_REDUCE_SUM, LOSS_E_NONFINITE,
               "d_fake");
    /* Each sum is finite, the loss is not. */
    gan_expect(&one_r, 1, &one_f, 1, 0, ns, LOSS_REDUCE_MEAN, LOSS_E_NONFINITE,
               "");
}
