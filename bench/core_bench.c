/* core_bench.c -- the core-only micro-benchmark: every loss of core/loss.h
 * on a large random batch, single thread, with per-sample values and every
 * gradient computed (the server's default request).  Prints one line per
 * case: "<case> <input elements> <ns per call> <ns per input element>".
 *
 * An input element is one number of the request's input fields (the JSON
 * numbers the client sends: logits and labels, anchors, positives and
 * negatives...).  Losses whose work grows faster than their input (mined
 * triplets, MSML, the margin softmaxes' products with every class) use
 * moderate sizes and say so in their case name. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loss.h"

#define POOL ((size_t)4 << 20) /* doubles per input or output buffer */

/* Every case reads its inputs from here and writes its outputs here. */
typedef struct ctx {
    double *in[4];  /* normal(0, 1) */
    double *out[4]; /* gradients */
    double *per;    /* per-sample values */
    double *p, *q;  /* [1000][1000] rows summing to 1 */
    double *unit;   /* uniform (0.01, 0.99), Bernoulli probabilities */
    int64_t *cls;   /* classes in [0, 1000) */
    int64_t *pm1;   /* -1 or +1 */
    int64_t *bin;   /* 0 or 1 */
    int64_t *ids;   /* 32 identities, for mined losses */
    double *work;
    size_t work_len;
} ctx;

typedef struct bench_case {
    const char *name;
    size_t elements;
    int (*run)(ctx *c);
} bench_case;

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static double rng_uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_normal(void)
{
    double u = rng_uniform(), v = rng_uniform();

    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (p == NULL) {
        fprintf(stderr, "core_bench: out of memory\n");
        exit(1);
    }
    return p;
}

/* Scratch for a loss that asks for it, grown on demand. */
static double *work_for(ctx *c, size_t doubles)
{
    if (doubles > c->work_len) {
        free(c->work);
        c->work = xmalloc((doubles ? doubles : 1) * sizeof(double));
        c->work_len = doubles;
    }
    return c->work;
}

static void fill_probs(double *x, size_t n, size_t k)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        double s = 0;
        for (j = 0; j < k; j++)
            s += x[i * k + j] = exp(rng_normal());
        for (j = 0; j < k; j++)
            x[i * k + j] /= s;
    }
}

static void ctx_init(ctx *c)
{
    size_t i, j;

    memset(c, 0, sizeof *c);
    for (j = 0; j < 4; j++) {
        c->in[j] = xmalloc(POOL * sizeof(double));
        c->out[j] = xmalloc(POOL * sizeof(double));
        for (i = 0; i < POOL; i++)
            c->in[j][i] = rng_normal();
    }
    c->per = xmalloc(POOL * sizeof(double));
    c->p = xmalloc(1000000 * sizeof(double));
    c->q = xmalloc(1000000 * sizeof(double));
    fill_probs(c->p, 1000, 1000);
    fill_probs(c->q, 1000, 1000);
    c->unit = xmalloc(POOL * sizeof(double));
    c->cls = xmalloc(POOL * sizeof(int64_t));
    c->pm1 = xmalloc(POOL * sizeof(int64_t));
    c->bin = xmalloc(POOL * sizeof(int64_t));
    c->ids = xmalloc(POOL * sizeof(int64_t));
    for (i = 0; i < POOL; i++) {
        c->unit[i] = 0.01 + 0.98 * rng_uniform();
        c->cls[i] = (int64_t)(rng_uniform() * 1000);
        c->pm1[i] = rng_uniform() < 0.5 ? -1 : 1;
        c->bin[i] = rng_uniform() < 0.5 ? 0 : 1;
        c->ids[i] = (int64_t)(rng_uniform() * 32);
    }
}

/* ---- the cases ---------------------------------------------------------- */

static int run_hinge(ctx *c)
{
    loss_hinge_args a = {1000000, c->in[0],         c->pm1, 1.0,
                         1,       LOSS_REDUCE_MEAN, NULL};
    loss_hinge_out o = {0, c->per, c->out[0]};

    return loss_hinge(&a, &o, NULL);
}

static int mc_hinge(ctx *c, loss_mc_hinge_variant v)
{
    loss_multiclass_hinge_args a = {1000, 1000, c->in[0],         c->cls, 1.0,
                                    1,    v,    LOSS_REDUCE_MEAN, NULL};
    loss_multiclass_hinge_out o = {0, c->per, c->out[0], 0};

    a.work = work_for(c, loss_multiclass_hinge_work(&a));
    return loss_multiclass_hinge(&a, &o, NULL);
}

static int run_mc_ova(ctx *c)
{
    return mc_hinge(c, LOSS_MC_ONE_VS_ALL);
}
static int run_mc_ww(ctx *c)
{
    return mc_hinge(c, LOSS_MC_WESTON_WATKINS);
}
static int run_mc_cs(ctx *c)
{
    return mc_hinge(c, LOSS_MC_CRAMMER_SINGER);
}

static int softmax(ctx *c, size_t n, int targets)
{
    loss_softmax_args a = {
        n,    1000, c->in[0], targets ? NULL : c->cls, targets ? c->p : NULL,
        NULL, -100, 0.0,      LOSS_REDUCE_MEAN,        NULL};
    loss_softmax_out o = {0, c->per, c->out[0], 0, 0};

    a.work = work_for(c, loss_softmax_work(&a));
    return loss_softmax(&a, &o, NULL);
}

static int run_softmax_256(ctx *c)
{
    return softmax(c, 256, 0);
}
static int run_softmax_1000(ctx *c)
{
    return softmax(c, 1000, 0);
}
static int run_softmax_targets(ctx *c)
{
    return softmax(c, 1000, 1);
}

static int margin_softmax(ctx *c, int angular)
{
    loss_margin_softmax_args a = {256,
                                  128,
                                  100,
                                  c->in[0],
                                  c->in[1],
                                  c->cls,
                                  angular ? 4 : 2,
                                  0.0,
                                  LOSS_REDUCE_MEAN,
                                  NULL,
                                  NULL};
    loss_margin_softmax_out o = {0, c->per, c->out[0], c->out[1]};
    size_t i;

    for (i = 0; i < 256; i++)
        c->ids[POOL - 256 + i] = c->cls[i] % 100;
    a.labels = c->ids + POOL - 256;
    if (angular) {
        a.work = work_for(c, loss_a_softmax_work(&a));
        return loss_a_softmax(&a, &o, NULL);
    }
    a.work = work_for(c, loss_l_softmax_work(&a));
    return loss_l_softmax(&a, &o, NULL);
}

static int run_l_softmax(ctx *c)
{
    return margin_softmax(c, 0);
}
static int run_a_softmax(ctx *c)
{
    return margin_softmax(c, 1);
}

static int contrastive(ctx *c, loss_contrastive_variant v)
{
    size_t d = 128;
    const double *x1[1] = {c->in[0]}, *x2[1] = {c->in[1]};
    double *g1[1] = {c->out[0]}, *g2[1] = {c->out[1]};
    loss_contrastive_args a = {
        1, 4096, &d, x1, x2, c->bin, v, 1.0, 0.0, 1.0, LOSS_REDUCE_MEAN, NULL};
    loss_contrastive_out o = {0, c->per, g1, g2, 0, 0};

    a.work = work_for(c, loss_contrastive_work(&a));
    return loss_contrastive(&a, &o, NULL);
}

static int run_contrastive_seed(ctx *c)
{
    return contrastive(c, LOSS_CONTRASTIVE_SEED);
}

static int run_contrastive_hadsell(ctx *c)
{
    return contrastive(c, LOSS_CONTRASTIVE_HADSELL);
}

static int run_coupled_cluster(ctx *c)
{
    loss_coupled_cluster_args a = {
        4096, 4096, 128, c->in[0], c->in[1], 1.0, LOSS_REDUCE_MEAN, NULL};
    loss_coupled_cluster_out o = {0, c->per, c->out[0], c->out[1]};

    a.work = work_for(c, loss_coupled_cluster_work(&a));
    return loss_coupled_cluster(&a, &o, NULL);
}

static int triplet(ctx *c, loss_distance dist)
{
    loss_triplet_args a = {4096, 128,  c->in[0], c->in[1],         c->in[2],
                           1.0,  dist, 0,        LOSS_REDUCE_MEAN, NULL};
    loss_triplet_out o = {0, c->per, c->out[0], c->out[1], c->out[2], 0, 0};

    return loss_triplet(&a, &o, NULL);
}

static int run_triplet(ctx *c)
{
    return triplet(c, LOSS_DIST_EUCLIDEAN);
}

static int run_triplet_sq(ctx *c)
{
    return triplet(c, LOSS_DIST_SQUARED_EUCLIDEAN);
}

static int mined(ctx *c, size_t n, size_t d, loss_mining m)
{
    loss_triplet_mined_args a = {n,        d,
                                 c->in[0], c->ids,
                                 1.0,      LOSS_DIST_EUCLIDEAN,
                                 m,        LOSS_REDUCE_MEAN,
                                 NULL,     NULL};
    loss_triplet_mined_out o = {0, c->per, c->out[0], 0, 0};

    a.work = work_for(c, loss_triplet_mined_work(&a));
    return loss_triplet_mined(&a, &o, NULL);
}

static int run_batch_hard(ctx *c)
{
    return mined(c, 1024, 128, LOSS_MINING_BATCH_HARD);
}

static int run_batch_all(ctx *c)
{
    return mined(c, 256, 64, LOSS_MINING_BATCH_ALL);
}

static int run_quadruplet(ctx *c)
{
    loss_quadruplet_args a = {4096,
                              128,
                              c->in[0],
                              c->in[1],
                              c->in[2],
                              c->in[3],
                              1.0,
                              0.5,
                              LOSS_DIST_SQUARED_EUCLIDEAN,
                              LOSS_REDUCE_MEAN,
                              NULL};
    loss_quadruplet_out o = {0,         c->per,    c->out[0],
                             c->out[1], c->out[2], c->out[3]};

    return loss_quadruplet(&a, &o, NULL);
}

static int run_msml(ctx *c)
{
    loss_msml_args a = {
        1024, 128, c->in[0], c->ids, 1.0, LOSS_DIST_EUCLIDEAN, LOSS_REDUCE_MEAN,
        NULL, NULL};
    loss_msml_out o = {0, c->out[0]};

    a.work = work_for(c, loss_msml_work(&a));
    return loss_msml(&a, &o, NULL);
}

static int divergence(ctx *c, loss_divergence_kind kind)
{
    loss_divergence_args a = {kind,
                              1000,
                              1000,
                              c->p,
                              c->q,
                              LOSS_INPUT_PROBS,
                              2.718281828459045,
                              0,
                              0.0,
                              0,
                              LOSS_REDUCE_MEAN,
                              NULL};
    loss_divergence_out o;

    memset(&o, 0, sizeof o);
    o.per_sample = c->per;
    o.grad_q = c->out[0];
    o.grad_p = kind == LOSS_DIV_JS ? c->out[1] : NULL;
    a.work = work_for(c, loss_divergence_work(&a));
    return loss_divergence(&a, &o, NULL);
}

static int run_kl(ctx *c)
{
    return divergence(c, LOSS_DIV_KL);
}
static int run_js(ctx *c)
{
    return divergence(c, LOSS_DIV_JS);
}
static int run_ce(ctx *c)
{
    return divergence(c, LOSS_DIV_CROSS_ENTROPY);
}

static int run_vae(ctx *c)
{
    loss_vae_args a = {1000,
                       1000,
                       64,
                       c->unit,
                       c->unit + 1000000,
                       NULL,
                       c->in[0],
                       c->in[1],
                       LOSS_LIKELIHOOD_BERNOULLI,
                       1.0,
                       LOSS_REDUCE_MEAN,
                       NULL};
    loss_vae_out o = {0, c->per, c->out[0], c->out[1], c->out[2], 0, 0, 0};

    a.work = work_for(c, loss_vae_work(&a));
    return loss_vae(&a, &o, NULL);
}

static int run_gan(ctx *c)
{
    loss_gan_args a = {1000000,          1000000, c->in[0],
                       c->in[1],         0,       LOSS_GAN_NON_SATURATING,
                       LOSS_REDUCE_MEAN, NULL};
    loss_gan_out o;

    memset(&o, 0, sizeof o);
    o.grad_d_real = c->out[0];
    o.grad_d_fake = c->out[1];
    o.generator_grad_d_fake = c->out[2];
    a.work = work_for(c, loss_gan_work(&a));
    return loss_gan(&a, &o, NULL);
}

static int run_gaussian_kl(ctx *c)
{
    loss_gaussian_kl_args a = {1000,     1000,     c->in[0],         c->in[1],
                               c->in[2], c->in[3], LOSS_REDUCE_MEAN, NULL};
    loss_gaussian_kl_out o = {0,         c->per,    c->out[0],
                              c->out[1], c->out[2], c->out[3]};

    a.work = work_for(c, loss_gaussian_kl_work(&a));
    return loss_gaussian_kl(&a, &o, NULL);
}

/* Two sets of n normal samples each (10,000: issue 9's benchmark size). */
static int samples(ctx *c, size_t n, size_t d, loss_samples_method m)
{
    loss_samples_args a;
    loss_samples_out o;

    memset(&a, 0, sizeof a);
    a.np = a.nq = n;
    a.d = d;
    a.p = c->in[0];
    a.q = c->in[1];
    a.method = m;
    a.alpha = 0.5;
    a.k = 5;
    a.base = 2.718281828459045;
    a.work = work_for(c, loss_samples_divergence_work(&a));
    return loss_samples_divergence(&a, &o, NULL);
}

static int run_samples_hist(ctx *c)
{
    return samples(c, 10000, 1, LOSS_SAMPLES_HISTOGRAM);
}
static int run_samples_kde(ctx *c)
{
    return samples(c, 10000, 1, LOSS_SAMPLES_KDE);
}
/* kde in D > 1 sums every pair of samples: 2,000 a side keeps it short. */
static int run_samples_kde3(ctx *c)
{
    return samples(c, 2000, 3, LOSS_SAMPLES_KDE);
}
static int run_samples_knn(ctx *c)
{
    return samples(c, 10000, 1, LOSS_SAMPLES_KNN);
}
static int run_samples_knn3(ctx *c)
{
    return samples(c, 10000, 3, LOSS_SAMPLES_KNN);
}

/* Calibration, not losses: libm's log and exp once per element, over 1M
 * probabilities (log) and normal deviates (exp), each result stored, the
 * way the losses use them.  The divergences take about three logs per
 * element, so these tell what part of their time is libm's. */
static int run_libm_log(ctx *c)
{
    size_t i;

    for (i = 0; i < 1000000; i++)
        c->out[0][i] = log(c->p[i]);
    return LOSS_OK;
}
static int run_libm_exp(ctx *c)
{
    size_t i;

    for (i = 0; i < 1000000; i++)
        c->out[0][i] = exp(c->in[0][i]);
    return LOSS_OK;
}

static const bench_case cases[] = {
    {"hinge_1M", 2000000, run_hinge},
    {"multiclass_hinge_one_vs_all_1000x1000", 1001000, run_mc_ova},
    {"multiclass_hinge_weston_watkins_1000x1000", 1001000, run_mc_ww},
    {"multiclass_hinge_crammer_singer_1000x1000", 1001000, run_mc_cs},
    {"softmax_256x1000", 256256, run_softmax_256},
    {"softmax_1000x1000", 1001000, run_softmax_1000},
    {"softmax_targets_1000x1000", 2000000, run_softmax_targets},
    {"l_softmax_256x128_k100", 256 * 128 + 100 * 128 + 256, run_l_softmax},
    {"a_softmax_256x128_k100", 256 * 128 + 100 * 128 + 256, run_a_softmax},
    {"contrastive_seed_4096x128", 2 * 4096 * 128 + 4096, run_contrastive_seed},
    {"contrastive_hadsell_4096x128", 2 * 4096 * 128 + 4096,
     run_contrastive_hadsell},
    {"coupled_cluster_4096x128", 2 * 4096 * 128, run_coupled_cluster},
    {"triplet_4096x128", 3 * 4096 * 128, run_triplet},
    {"triplet_squared_4096x128", 3 * 4096 * 128, run_triplet_sq},
    {"triplet_batch_hard_1024x128_quadratic", 1024 * 128 + 1024,
     run_batch_hard},
    {"triplet_batch_all_256x64_quadratic", 256 * 64 + 256, run_batch_all},
    {"quadruplet_4096x128", 4 * 4096 * 128, run_quadruplet},
    {"msml_1024x128_quadratic", 1024 * 128 + 1024, run_msml},
    {"kl_1000x1000", 2000000, run_kl},
    {"js_1000x1000", 2000000, run_js},
    {"cross_entropy_1000x1000", 2000000, run_ce},
    {"vae_1000x1000_z64", 2 * 1000000 + 2 * 64000, run_vae},
    {"gan_1M", 2000000, run_gan},
    {"gaussian_kl_1000x1000", 4000000, run_gaussian_kl},
    {"samples_histogram_2x10000", 20000, run_samples_hist},
    {"samples_kde_2x10000", 20000, run_samples_kde},
    {"samples_kde_2x2000x3", 12000, run_samples_kde3},
    {"samples_knn_2x10000", 20000, run_samples_knn},
    {"samples_knn_2x10000x3", 60000, run_samples_knn3},
    {"libm_log_1M", 1000000, run_libm_log},
    {"libm_exp_1M", 1000000, run_libm_exp},
};

/* ---- timing ------------------------------------------------------------- */

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The median over 7 batches of the time per call, each batch long enough
 * (budget_ns / 7) to hide the clock's resolution. */
static double time_case(const bench_case *bc, ctx *c, double budget_ns)
{
    double t0, one, batch[7];
    size_t reps, r, b;

    t0 = now_ns();
    if (bc->run(c) != LOSS_OK) {
        fprintf(stderr, "core_bench: %s failed\n", bc->name);
        exit(1);
    }
    one = now_ns() - t0;
    reps = (size_t)(budget_ns / 7 / (one > 1 ? one : 1));
    reps = reps < 1 ? 1 : reps;
    for (b = 0; b < 7; b++) {
        t0 = now_ns();
        for (r = 0; r < reps; r++)
            bc->run(c);
        batch[b] = (now_ns() - t0) / (double)reps;
    }
    qsort(batch, 7, sizeof batch[0], cmp_double);
    return batch[3];
}

int main(int argc, char **argv)
{
    double budget_ms = argc > 1 ? atof(argv[1]) : 300.0;
    const char *only = argc > 2 ? argv[2] : NULL;
    ctx c;
    size_t i;

    ctx_init(&c);
    printf("# case elements ns_per_call ns_per_element\n");
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double ns;
        if (only != NULL && strstr(cases[i].name, only) == NULL)
            continue;
        ns = time_case(&cases[i], &c, budget_ms * 1e6);
        printf("%s %zu %.0f %.2f\n", cases[i].name, cases[i].elements, ns,
               ns / (double)cases[i].elements);
        fflush(stdout);
    }
    return 0;
}
