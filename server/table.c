/* table.c -- every loss of the contract described once: inputs, parameters,
 * outputs and the adapter that moves parsed tensors into the core's
 * argument structs and the core's metrics into named slots; and, in a second
 * table, the divergences estimated from samples (POST /divergence/{name}).
 * Everything the server knows about a particular loss lives in this file. */
#include "table.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define INF INFINITY

/* ---- Shared parameter vocabularies --------------------------------------- */

static const char *const reductions[] = {"mean", "sum", NULL};
static const char *const precisions[] = {"float32", "float64", NULL};
static const char *const distances[] = {"euclidean", "squared_euclidean", NULL};

const srv_param srv_common_params[] = {
    {"reduction", SRV_P_ENUM, 0, -INF, INF, 0, reductions, NULL, 0},
    {"gradients", SRV_P_BOOLEAN, 1, -INF, INF, 0, NULL, NULL, 0},
    {"per_sample", SRV_P_BOOLEAN, 1, -INF, INF, 0, NULL, NULL, 0},
    {"precision", SRV_P_ENUM, 0, -INF, INF, 0, precisions, NULL, 0},
};
const size_t srv_ncommon_params = NELEM(srv_common_params);

/* A finite number parameter with default d and range [lo, hi]. */
#define NUM(name, d, lo, hi)                                                   \
    {                                                                          \
        name, SRV_P_NUMBER, d, lo, hi, 0, NULL, NULL, 0                        \
    }
#define MARGIN(name, d) NUM(name, d, -INF, INF)
/* Margins of the distance losses: the core rejects negative ones. */
#define DIST_MARGIN(name, d) NUM(name, d, 0, INF)
#define ENUM(name, values, d, choice)                                          \
    {                                                                          \
        name, SRV_P_ENUM, d, -INF, INF, 0, values, NULL, choice                \
    }
#define BOOL(name, d, choice)                                                  \
    {                                                                          \
        name, SRV_P_BOOLEAN, d, -INF, INF, 0, NULL, NULL, choice               \
    }

/* Scratch for the core; rs->work is freed by the handler. */
int srv_result_work(srv_result *rs, size_t n)
{
    if (n == 0)
        return LOSS_OK;
    if (n > SIZE_MAX / sizeof(double))
        return LOSS_E_NOMEM;
    rs->work = malloc(n * sizeof(double));
    return rs->work ? LOSS_OK : LOSS_E_NOMEM;
}

#define WORK(fn, a)                                                            \
    do {                                                                       \
        if (srv_result_work(rs, fn(&(a))) != LOSS_OK)                          \
            return LOSS_E_NOMEM;                                               \
        (a).work = rs->work;                                                   \
    } while (0)

/* ---- hinge --------------------------------------------------------------- */

static const srv_input hinge_in[] = {
    {"scores", 1, {"N"}, SRV_IN_DIFF, 0},
    {"labels", 1, {"N"}, SRV_IN_INT, 0},
};
static const srv_param hinge_par[] = {
    MARGIN("margin", 1),
    {"p", SRV_P_INTEGER, 1, 1, 2, 0, NULL, NULL, 0},
};

static int run_hinge(const srv_request *rq, srv_result *rs, loss_error *err)
{
    loss_hinge_args a = {0};
    loss_hinge_out o = {0};
    int rc;

    a.n = rq->in[0].dim[0];
    a.scores = rq->in[0].v;
    a.labels = rq->in[1].iv;
    a.margin = rq->p[0].num;
    a.p = (int)rq->p[1].inum;
    a.reduction = rq->reduction;
    WORK(loss_hinge_work, a);
    o.per_sample = rs->per_sample;
    o.grad_scores = rs->grad[0];
    rc = loss_hinge(&a, &o, err);
    rs->loss = o.loss;
    return rc;
}

/* ---- multiclass_hinge ---------------------------------------------------- */

static const char *const mc_variants[] = {"one_vs_all", "weston_watkins",
                                          "crammer_singer", NULL};
static const char *const accuracy_only[] = {"accuracy", NULL};
static const srv_input mc_in[] = {
    {"scores", 2, {"N", "K"}, SRV_IN_DIFF, 0},
    {"labels", 1, {"N"}, SRV_IN_INT, 0},
};
static const srv_param mc_par[] = {
    {"p", SRV_P_INTEGER, 1, 1, 2, 0, NULL, NULL, 0},
    MARGIN("margin", 1),
    ENUM("variant", mc_variants, 0, 0),
};

static int run_mc_hinge(const srv_request *rq, srv_result *rs, loss_error *err)
{
    loss_multiclass_hinge_args a = {0};
    loss_multiclass_hinge_out o = {0};
    int rc;

    a.n = rq->in[0].dim[0];
    a.k = rq->in[0].dim[1];
    a.scores = rq->in[0].v;
    a.labels = rq->in[1].iv;
    a.p = (int)rq->p[0].inum;
    a.margin = rq->p[1].num;
    a.variant = (loss_mc_hinge_variant)rq->p[2].idx;
    a.reduction = rq->reduction;
    WORK(loss_multiclass_hinge_work, a);
    o.per_sample = rs->per_sample;
    o.grad_scores = rs->grad[0];
    rc = loss_multiclass_hinge(&a, &o, err);
    rs->loss = o.loss;
    rs->metric[0] = o.accuracy;
    return rc;
}

/* ---- softmax ------------------------------------------------------------- */

static const char *const softmax_metrics[] = {"accuracy", "mean_entropy", NULL};
static const srv_input softmax_in[] = {
    {"logits", 2, {"N", "K"}, SRV_IN_DIFF, 0},
    {"labels", 1, {"N"}, SRV_IN_INT, 1},
    {"targets", 2, {"N", "K"}, 0, 2},
};
static const srv_param softmax_par[] = {
    {"weight", SRV_P_ARRAY, 0, -INF, INF, 0, NULL, "K", 0},
    {"ignore_index", SRV_P_INTEGER, -100, -INF, INF, 0, NULL, NULL, 0},
    {"label_smoothing", SRV_P_NUMBER, 0, 0, 1, SRV_P_HI_OPEN, NULL, NULL, 0},
};

static int run_softmax(const srv_request *rq, srv_result *rs, loss_error *err)
{
    loss_softmax_args a = {0};
    loss_softmax_out o = {0};
    int rc;

    a.n = rq->in[0].dim[0];
    a.k = rq->in[0].dim[1];
    a.logits = rq->in[0].v;
    a.labels = rq->in[1].iv;
    a.targets = rq->in[2].v;
    a.weight = rq->p[0].arr.v;
    a.ignore_index = rq->p[1].inum;
    a.label_smoothing = rq->p[2].num;
    a.reduction = rq->reduction;
    WORK(loss_softmax_work, a);
    o.per_sample = rs->per_sample;
    o.grad_logits = rs->grad[0];
    rc = loss_softmax(&a, &o, err);
    rs->loss = o.loss;
    rs->metric[0] = o.accuracy;
    rs->metric[1] = o.mean_entropy;
    return rc;
}

/* ---- l_softmax, a_softmax ------------------------------------------------ */

static const srv_input msoft_in[] = {
    {"features", 2, {"N", "D"}, SRV_IN_DIFF, 0},
    {"weights", 2, {"K", "D"}, SRV_IN_DIFF, 0},
    {"labels", 1, {"N"}, SRV_IN_INT, 0},
};
static const srv_param l_softmax_par[] = {
    {"margin", SRV_P_INTEGER, 2, 1, 8, 0, NULL, NULL, 0},
    NUM("beta", 0, 0, INF),
};
static const srv_param a_softmax_par[] = {
    {"margin", SRV_P_INTEGER, 4, 1, 8, 0, NULL, NULL, 0},
    NUM("beta", 0, 0, INF),
};

static void msoft_args(const srv_request *rq, loss_margin_softmax_args *a)
{
    a->n = rq->in[0].dim[0];
    a->d = rq->in[0].dim[1];
    a->k = rq->in[1].dim[0];
    a->features = rq->in[0].v;
    a->weights = rq->in[1].v;
    a->labels = rq->in[2].iv;
    a->margin = (int)rq->p[0].inum;
    a->beta = rq->p[1].num;
    a->reduction = rq->reduction;
}

static int run_l_softmax(const srv_request *rq, srv_result *rs, loss_error *err)
{
    loss_margin_softmax_args a = {0};
    loss_margin_softmax_out o = {0};
    int rc;

    msoft_args(rq, &a);
    WORK(loss_l_softmax_work, a);
    o.per_sample = rs->per_sample;
    o.grad_features = rs->grad[0];
    o.grad_weights = rs->grad[1];
    a.deadline = &rs->deadline;
    rc = loss_l_softmax(&a, &o, err);
    rs->loss = o.loss;
    return rc;
}

static int run_a_softmax(const srv_request *rq, srv_result *rs, loss_error *err)
{
    loss_margin_softmax_args a = {0};
    loss_margin_softmax_out o = {0};
    int rc;

    msoft_args(rq, &a);
    WORK(loss_a_softmax_work, a);
    o.per_sample = rs->per_sample;
    o.grad_features = rs->grad[0];
    o.grad_weights = rs->grad[1];
    a.deadline = &rs->deadline;
    rc = loss_a_softmax(&a, &o, err);
    rs->loss = o.loss;
    return rc;
}

/* ---- contrastive --------------------------------------------------------- */

static const char *const contrastive_variants[] = {"seed", "hadsell",
                                                   "double_margin", NULL};
static const char *const contrastive_metrics[] = {"mean_distance_pos",
                                                  "mean_distance_neg", NULL};
static const srv_input contrastive_in[] = {
    {"x1", 2, {"N", "D"}, SRV_IN_DIFF | SRV_IN_LAYERED, 0},
    {"x2", 2, {"N", "D"}, SRV_IN_DIFF | SRV_IN_LAYERED, 0},
    {"labels", 1, {"N"}, SRV_IN_INT, 0},
};
static const srv_param contrastive_par[] = {
    ENUM("variant", contrastive_variants, 0, 0),
    DIST_MARGIN("margin", 1),
    DIST_MARGIN("pos_margin", 0),
    DIST_MARGIN("neg_margin", 1),
};

/* The per-layer pointer arrays the core takes: a layer of a rank-2 request
 * is the whole tensor, of a layered one a slice at a running offset. */
typedef struct layer_view {
    size_t *d;
    const double **x1, **x2;
    double **g1, **g2;
} layer_view;

static int layer_view_init(const srv_request *rq, srv_result *rs,
                           layer_view *lv, size_t layers)
{
    const srv_tensor *t = &rq->in[0];
    size_t l, off = 0, n = t->rank == 3 ? t->dim[1] : t->dim[0];
    char *mem;

    if (layers > SIZE_MAX / (sizeof(size_t) + 4 * sizeof(double *)))
        return LOSS_E_NOMEM;
    mem = malloc(layers * (sizeof(size_t) + 4 * sizeof(double *)));
    if (mem == NULL)
        return LOSS_E_NOMEM;
    rs->extra = mem;
    lv->x1 = (const double **)(void *)mem;
    lv->x2 = lv->x1 + layers;
    lv->g1 = (double **)(void *)(lv->x2 + layers);
    lv->g2 = lv->g1 + layers;
    lv->d = (size_t *)(void *)(lv->g2 + layers);
    for (l = 0; l < layers; l++) {
        lv->d[l] = t->rank == 3 ? t->width[l] : t->dim[1];
        lv->x1[l] = rq->in[0].v + off;
        lv->x2[l] = rq->in[1].v + off;
        lv->g1[l] = rs->grad[0] ? rs->grad[0] + off : NULL;
        lv->g2[l] = rs->grad[1] ? rs->grad[1] + off : NULL;
        off += n * lv->d[l];
    }
    return LOSS_OK;
}

static int run_contrastive(const srv_request *rq, srv_result *rs,
                           loss_error *err)
{
    loss_contrastive_args a = {0};
    loss_contrastive_out o = {0};
    layer_view lv;
    const srv_tensor *t = &rq->in[0];
    int rc;

    a.layers = t->rank == 3 ? t->dim[0] : 1;
    a.n = t->rank == 3 ? t->dim[1] : t->dim[0];
    if (layer_view_init(rq, rs, &lv, a.layers) != LOSS_OK)
        return LOSS_E_NOMEM;
    a.d = lv.d;
    a.x1 = lv.x1;
    a.x2 = lv.x2;
    a.labels = rq->in[2].iv;
    a.variant = (loss_contrastive_variant)rq->p[0].idx;
    a.margin = rq->p[1].num;
    a.pos_margin = rq->p[2].num;
    a.neg_margin = rq->p[3].num;
    a.reduction = rq->reduction;
    WORK(loss_contrastive_work, a);
    o.per_sample = rs->per_sample;
    o.grad_x1 = rs->grad[0] ? lv.g1 : NULL;
    o.grad_x2 = rs->grad[1] ? lv.g2 : NULL;
    rc = loss_contrastive(&a, &o, err);
    rs->loss = o.loss;
    rs->metric[0] = o.mean_distance_pos;
    rs->metric[1] = o.mean_distance_neg;
    return rc;
}

/* ---- triplet (explicit: form 1; mined: form 2) --------------------------- */

static const char *const minings[] = {"batch_hard", "batch_all", NULL};
static const char *const triplet_metrics[] = {"valid", "active_fraction", NULL};
static const srv_input triplet_in[] = {
    {"anchor", 2, {"N", "D"}, SRV_IN_DIFF, 1},
    {"positive", 2, {"N", "D"}, SRV_IN_DIFF, 1},
    {"negative", 2, {"N", "D"}, SRV_IN_DIFF, 1},
    {"embeddings", 2, {"N", "D"}, SRV_IN_DIFF, 2},
    {"labels", 1, {"N"}, SRV_IN_INT, 2},
};
static const srv_param triplet_par[] = {
    DIST_MARGIN("margin", 1),
    ENUM("distance", distances, 0, 0),
    BOOL("swap", 0, 1),
    ENUM("mining", minings, 0, 2),
};

static int run_triplet_explicit(const srv_request *rq, srv_result *rs,
                                loss_error *err)
{
    loss_triplet_args a = {0};
    loss_triplet_out o = {0};
    int rc;

    a.n = rq->in[0].dim[0];
    a.d = rq->in[0].dim[1];
    a.anchor = rq->in[0].v;
    a.positive = rq->in[1].v;
    a.negative = rq->in[2].v;
    a.margin = rq->p[0].num;
    a.distance = (loss_distance)rq->p[1].idx;
    a.swap = rq->p[2].num != 0;
    a.reduction = rq->reduction;
    WORK(loss_triplet_work, a);
    o.per_sample = rs->per_sample;
    o.grad_anchor = rs->grad[0];
    o.grad_positive = rs->grad[1];
    o.grad_negative = rs->grad[2];
    rc = loss_triplet(&a, &o, err);
    rs->loss = o.loss;
    rs->metric[0] = o.valid;
    rs->metric[1] = o.active_fraction;
    return rc;
}

static int run_triplet(const srv_request *rq, srv_result *rs, loss_error *err)
{
    loss_triplet_mined_args a = {0};
    loss_triplet_mined_out o = {0};
    int rc;

    if (rq->form == 1)
        return run_triplet_explicit(rq, rs, err);
    a.n = rq->in[3].dim[0];
    a.d = rq->in[3].dim[1];
    a.embeddings = rq->in[3].v;
    a.labels = rq->in[4].iv;
    a.margin = rq->p[0].num;
    a.distance = (loss_distance)rq->p[1].idx;
    a.mining = (loss_mining)rq->p[3].idx;
    a.reduction = rq->reduction;
    WORK(loss_triplet_mined_work, a);
    o.per_sample = rs->per_sample;
    o.grad_embeddings = rs->grad[3];
    a.deadline = &rs->deadline;
    rc = loss_triplet_mined(&a, &o, err);
    rs->loss = o.loss;
    rs->metric[0] = o.valid;
    rs->metric[1] = o.active_fraction;
    return rc;
}

/* ---- coupled_cluster ----------------------------------------------------- */

static const srv_input cc_in[] = {
    {"positives", 2, {"Np", "D"}, SRV_IN_DIFF, 0},
    {"negatives", 2, {"Nn", "D"}, SRV_IN_DIFF, 0},
};
static const srv_param cc_par[] = {DIST_MARGIN("margin", 1)};

static int run_coupled_cluster(const srv_request *rq, srv_result *rs,
                               loss_error *err)
{
    loss_coupled_cluster_args a = {0};
    loss_coupled_cluster_out o = {0};
    int rc;

    a.np = rq->in[0].dim[0];
    a.nn = rq->in[1].dim[0];
    a.d = rq->in[0].dim[1];
    a.positives = rq->in[0].v;
    a.negatives = rq->in[1].v;
    a.margin = rq->p[0].num;
    a.reduction = rq->reduction;
    WORK(loss_coupled_cluster_work, a);
    o.per_sample = rs->per_sample;
    o.grad_positives = rs->grad[0];
    o.grad_negatives = rs->grad[1];
    rc = loss_coupled_cluster(&a, &o, err);
    rs->loss = o.loss;
    return rc;
}

/* ---- quadruplet ---------------------------------------------------------- */

static const srv_input quad_in[] = {
    {"anchor", 2, {"N", "D"}, SRV_IN_DIFF, 0},
    {"positive", 2, {"N", "D"}, SRV_IN_DIFF, 0},
    {"negative", 2, {"N", "D"}, SRV_IN_DIFF, 0},
    {"negative2", 2, {"N", "D"}, SRV_IN_DIFF, 0},
};
static const srv_param quad_par[] = {
    DIST_MARGIN("margin", 1),
    DIST_MARGIN("margin2", 0.5),
    ENUM("distance", distances, 1, 0),
};

static int run_quadruplet(const srv_request *rq, srv_result *rs,
                          loss_error *err)
{
    loss_quadruplet_args a = {0};
    loss_quadruplet_out o = {0};
    int rc;

    a.n = rq->in[0].dim[0];
    a.d = rq->in[0].dim[1];
    a.anchor = rq->in[0].v;
    a.positive = rq->in[1].v;
    a.negative = rq->in[2].v;
    a.negative2 = rq->in[3].v;
    a.margin = rq->p[0].num;
    a.margin2 = rq->p[1].num;
    a.distance = (loss_distance)rq->p[2].idx;
    a.reduction = rq->reduction;
    WORK(loss_quadruplet_work, a);
    o.per_sample = rs->per_sample;
    o.grad_anchor = rs->grad[0];
    o.grad_positive = rs->grad[1];
    o.grad_negative = rs->grad[2];
    o.grad_negative2 = rs->grad[3];
    rc = loss_quadruplet(&a, &o, err);
    rs->loss = o.loss;
    return rc;
}

/* ---- msml ---------------------------------------------------------------- */

static const srv_input msml_in[] = {
    {"embeddings", 2, {"N", "D"}, SRV_IN_DIFF, 0},
    {"labels", 1, {"N"}, SRV_IN_INT, 0},
};
static const srv_param msml_par[] = {
    DIST_MARGIN("margin", 1),
    ENUM("distance", distances, 0, 0),
};

static int run_msml(const srv_request *rq, srv_result *rs, loss_error *err)
{
    loss_msml_args a = {0};
    loss_msml_out o = {0};
    int rc;

    a.n = rq->in[0].dim[0];
    a.d = rq->in[0].dim[1];
    a.embeddings = rq->in[0].v;
    a.labels = rq->in[1].iv;
    a.margin = rq->p[0].num;
    a.distance = (loss_distance)rq->p[1].idx;
    a.reduction = rq->reduction;
    WORK(loss_msml_work, a);
    o.grad_embeddings = rs->grad[0];
    a.deadline = &rs->deadline;
    rc = loss_msml(&a, &o, err);
    rs->loss = o.loss;
    return rc;
}

/* ---- kl, js, cross_entropy ----------------------------------------------- */

static const char *const prob_inputs[] = {"probs", "logits", "log_probs", NULL};
static const char *const div_metrics[] = {
    "kl_pq",         "kl_qp",     "js",        "js_distance",
    "cross_entropy", "entropy_p", "entropy_q", NULL};
static const srv_input div_in[] = {
    {"p", 2, {"N", "K"}, 0, 0},
    {"q", 2, {"N", "K"}, SRV_IN_DIFF, 0},
};
static const srv_input js_in[] = {
    {"p", 2, {"N", "K"}, SRV_IN_DIFF, 0},
    {"q", 2, {"N", "K"}, SRV_IN_DIFF, 0},
};
#define DIV_PARAMS                                                             \
    ENUM("input", prob_inputs, 0, 0),                                          \
        {"base", SRV_P_NUMBER, 2.718281828459045,                              \
         0,      INF,          SRV_P_LO_OPEN | SRV_P_NOT_ONE,                  \
         NULL,   NULL,         0},                                             \
        BOOL("normalize", 0, 0), NUM("eps", 0, 0, INF)
static const srv_param div_par[] = {DIV_PARAMS};
static const srv_param js_par[] = {DIV_PARAMS, BOOL("distance", 0, 0)};

static int run_divergence(const srv_request *rq, srv_result *rs,
                          loss_divergence_kind kind, loss_error *err)
{
    loss_divergence_args a = {0};
    loss_divergence_out o = {0};
    int rc;

    a.kind = kind;
    a.n = rq->in[0].dim[0];
    a.k = rq->in[0].dim[1];
    a.p = rq->in[0].v;
    a.q = rq->in[1].v;
    a.input = (loss_prob_input)rq->p[0].idx;
    a.base = rq->p[1].num;
    a.normalize = rq->p[2].num != 0;
    a.eps = rq->p[3].num;
    a.distance = kind == LOSS_DIV_JS && rq->p[4].num != 0;
    a.reduction = rq->reduction;
    WORK(loss_divergence_work, a);
    o.per_sample = rs->per_sample;
    o.grad_p = rs->grad[0];
    o.grad_q = rs->grad[1];
    rc = loss_divergence(&a, &o, err);
    rs->loss = o.loss;
    rs->metric[0] = o.kl_pq;
    rs->metric[1] = o.kl_qp;
    rs->metric[2] = o.js;
    rs->metric[3] = o.js_distance;
    rs->metric[4] = o.cross_entropy;
    rs->metric[5] = o.entropy_p;
    rs->metric[6] = o.entropy_q;
    return rc;
}

static int run_kl(const srv_request *rq, srv_result *rs, loss_error *err)
{
    return run_divergence(rq, rs, LOSS_DIV_KL, err);
}

static int run_js(const srv_request *rq, srv_result *rs, loss_error *err)
{
    return run_divergence(rq, rs, LOSS_DIV_JS, err);
}

static int run_cross_entropy(const srv_request *rq, srv_result *rs,
                             loss_error *err)
{
    return run_divergence(rq, rs, LOSS_DIV_CROSS_ENTROPY, err);
}

/* ---- vae ----------------------------------------------------------------- */

static const char *const likelihoods[] = {"bernoulli", "gaussian", NULL};
static const char *const vae_metrics[] = {"reconstruction", "kl", "elbo", NULL};
static const srv_input vae_in[] = {
    {"x", 2, {"N", "D"}, 0, 0},
    {"recon", 2, {"N", "D"}, SRV_IN_DIFF, 1},
    {"recon_logits", 2, {"N", "D"}, SRV_IN_DIFF, 2},
    {"mu", 2, {"N", "Z"}, SRV_IN_DIFF, 0},
    {"logvar", 2, {"N", "Z"}, SRV_IN_DIFF, 0},
};
static const srv_param vae_par[] = {
    ENUM("likelihood", likelihoods, 0, 0),
    NUM("beta", 1, 0, INF),
};

static int run_vae(const srv_request *rq, srv_result *rs, loss_error *err)
{
    loss_vae_args a = {0};
    loss_vae_out o = {0};
    int rc;

    a.n = rq->in[0].dim[0];
    a.d = rq->in[0].dim[1];
    a.z = rq->in[3].dim[1];
    a.x = rq->in[0].v;
    a.recon = rq->in[1].v;
    a.recon_logits = rq->in[2].v;
    a.mu = rq->in[3].v;
    a.logvar = rq->in[4].v;
    a.likelihood = (loss_likelihood)rq->p[0].idx;
    a.beta = rq->p[1].num;
    a.reduction = rq->reduction;
    WORK(loss_vae_work, a);
    o.per_sample = rs->per_sample;
    o.grad_recon = rq->form == 1 ? rs->grad[1] : rs->grad[2];
    o.grad_mu = rs->grad[3];
    o.grad_logvar = rs->grad[4];
    rc = loss_vae(&a, &o, err);
    rs->loss = o.loss;
    rs->metric[0] = o.reconstruction;
    rs->metric[1] = o.kl;
    rs->metric[2] = o.elbo;
    return rc;
}

/* ---- gan ----------------------------------------------------------------- */

static const char *const gan_inputs[] = {"logits", "probs", NULL};
static const char *const gan_generators[] = {"non_saturating", "minimax", NULL};
static const char *const gan_metrics[] = {
    "value", "jsd_estimate", "d_real_mean", "d_fake_mean", "accuracy", NULL};
static const srv_input gan_in[] = {
    {"d_real", 1, {"N"}, SRV_IN_DIFF, 0},
    {"d_fake", 1, {"M"}, SRV_IN_DIFF, 0},
};
static const srv_param gan_par[] = {
    ENUM("input", gan_inputs, 0, 0),
    ENUM("generator_loss", gan_generators, 0, 0),
};

static int run_gan(const srv_request *rq, srv_result *rs, loss_error *err)
{
    loss_gan_args a = {0};
    loss_gan_out o = {0};
    int rc;

    a.n = rq->in[0].dim[0];
    a.m = rq->in[1].dim[0];
    a.d_real = rq->in[0].v;
    a.d_fake = rq->in[1].v;
    a.probs = rq->p[0].idx == 1;
    a.generator_loss = (loss_gan_generator)rq->p[1].idx;
    a.reduction = rq->reduction;
    WORK(loss_gan_work, a);
    o.grad_d_real = rs->grad[0];
    o.grad_d_fake = rs->grad[1];
    o.generator_grad_d_fake = rs->gen_grad;
    rc = loss_gan(&a, &o, err);
    rs->loss = o.loss;
    rs->gen_loss = o.generator_loss;
    rs->metric[0] = o.value;
    rs->metric[1] = o.jsd_estimate;
    rs->metric[2] = o.d_real_mean;
    rs->metric[3] = o.d_fake_mean;
    rs->metric[4] = o.accuracy;
    return rc;
}

/* ---- gaussian_kl --------------------------------------------------------- */

static const srv_input gkl_in[] = {
    {"mu_p", 2, {"N", "D"}, SRV_IN_DIFF, 0},
    {"logvar_p", 2, {"N", "D"}, SRV_IN_DIFF, 0},
    {"mu_q", 2, {"N", "D"}, SRV_IN_DIFF, 0},
    {"logvar_q", 2, {"N", "D"}, SRV_IN_DIFF, 0},
};

static int run_gaussian_kl(const srv_request *rq, srv_result *rs,
                           loss_error *err)
{
    loss_gaussian_kl_args a = {0};
    loss_gaussian_kl_out o = {0};
    int rc;

    a.n = rq->in[0].dim[0];
    a.d = rq->in[0].dim[1];
    a.mu_p = rq->in[0].v;
    a.logvar_p = rq->in[1].v;
    a.mu_q = rq->in[2].v;
    a.logvar_q = rq->in[3].v;
    a.reduction = rq->reduction;
    WORK(loss_gaussian_kl_work, a);
    o.per_sample = rs->per_sample;
    o.grad_mu_p = rs->grad[0];
    o.grad_logvar_p = rs->grad[1];
    o.grad_mu_q = rs->grad[2];
    o.grad_logvar_q = rs->grad[3];
    rc = loss_gaussian_kl(&a, &o, err);
    rs->loss = o.loss;
    return rc;
}

/* ---- divergence/samples: estimates from two sample sets ------------------ */

static const char *const sample_methods[] = {"histogram", "kde", "knn", NULL};
static const char *const auto_bins[] = {"auto", NULL};
static const char *const bandwidth_rules[] = {"scott", "silverman", NULL};
static const char *const samples_metrics[] = {
    "kl_pq", "kl_qp", "js", "js_distance", "entropy_p", "entropy_q", NULL};
static const char *const samples_effective[] = {"bins", "bandwidth_p",
                                                "bandwidth_q", "k", NULL};
static const srv_input samples_in[] = {
    {"p", 2, {"Np", "D"}, SRV_IN_VECTOR, 0},
    {"q", 2, {"Nq", "D"}, SRV_IN_VECTOR, 0},
};
static const srv_param samples_par[] = {
    {"method", SRV_P_ENUM, 0, -INF, INF, SRV_P_NO_DEFAULT, sample_methods, NULL,
     0},
    {"bins", SRV_P_ENUM, 0, 1, LOSS_SAMPLES_MAX_BINS, SRV_P_OR_INTEGER,
     auto_bins, NULL, 0},
    NUM("alpha", 0.5, 0, INF),
    {"bandwidth", SRV_P_ENUM, 0, 0, INF, SRV_P_LO_OPEN | SRV_P_OR_NUMBER,
     bandwidth_rules, NULL, 0},
    {"k", SRV_P_INTEGER, 5, 1, INF, 0, NULL, NULL, 0},
    {"base", SRV_P_NUMBER, 2.718281828459045, 0, INF,
     SRV_P_LO_OPEN | SRV_P_NOT_ONE, NULL, NULL, 0},
};

/* The request's method; when none is given, histogram for 1-D samples and
 * knn otherwise. */
static loss_samples_method samples_method(const srv_request *rq, size_t d)
{
    if (rq->p[0].given)
        return (loss_samples_method)rq->p[0].idx;
    return d == 1 ? LOSS_SAMPLES_HISTOGRAM : LOSS_SAMPLES_KNN;
}

static void samples_report(const loss_samples_out *o, srv_result *rs)
{
    rs->metric[0] = o->kl_pq;
    rs->metric[1] = o->kl_qp;
    rs->metric[2] = o->js;
    rs->metric[3] = o->js_distance;
    rs->metric[4] = o->entropy_p;
    rs->metric[5] = o->entropy_q;
    rs->metric[6] = o->bins ? (double)o->bins : NAN;
    rs->metric[7] = o->bandwidth_p;
    rs->metric[8] = o->bandwidth_q;
    rs->metric[9] = o->k ? (double)o->k : NAN;
}

static int run_samples(const srv_request *rq, srv_result *rs, loss_error *err)
{
    loss_samples_args a = {0};
    loss_samples_out o;
    size_t fewer;
    int rc;

    a.np = rq->in[0].dim[0];
    a.nq = rq->in[1].dim[0];
    a.d = rq->in[0].dim[1];
    a.p = rq->in[0].v;
    a.q = rq->in[1].v;
    a.method = samples_method(rq, a.d);
    a.bins = rq->p[1].idx < 0 ? (size_t)rq->p[1].inum : 0;
    a.alpha = rq->p[2].num;
    a.bandwidth_rule = rq->p[3].idx < 0 ? LOSS_BANDWIDTH_FIXED
                                        : (loss_bandwidth_rule)rq->p[3].idx;
    a.bandwidth = rq->p[3].num;
    a.k = (size_t)rq->p[4].inum;
    /* The default k, 5, yields to sets too small for it (2 samples or
     * more, the core checks, so k >= 1); a k given is checked as given. */
    fewer = a.np < a.nq ? a.np : a.nq;
    if (!rq->p[4].given && a.k + 1 > fewer)
        a.k = fewer - 1;
    a.base = rq->p[5].num;
    WORK(loss_samples_divergence_work, a);
    rs->method = sample_methods[a.method];
    a.deadline = &rs->deadline;
    rc = loss_samples_divergence(&a, &o, err);
    if (rc == LOSS_OK)
        samples_report(&o, rs);
    return rc;
}

/* ---- Costs (srv_request_cost) -------------------------------------------- */

static size_t mul_sat(size_t a, size_t b)
{
    return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

static size_t add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t input_count(const srv_request *rq)
{
    size_t i, n = 0;

    for (i = 0; i < rq->loss->ninputs; i++)
        if (rq->in[i].present)
            n = add_sat(n, rq->in[i].count);
    return n;
}

/* Every feature row against every weight row. */
static size_t cost_msoft(const srv_request *rq)
{
    return add_sat(
        input_count(rq),
        mul_sat(mul_sat(rq->in[0].dim[0], rq->in[1].dim[0]), rq->in[0].dim[1]));
}

/* Mined: every pair's distance, and batch_all sorts each anchor's row and
 * bisects it for each pair (n^2 log2 n). */
static size_t cost_triplet(const srv_request *rq)
{
    size_t n = rq->in[3].dim[0], pairs, log2n = 1;

    if (rq->form == 1)
        return input_count(rq);
    pairs = mul_sat(mul_sat(n, n), rq->in[3].dim[1]);
    while (log2n < 64 && (n >> log2n) != 0)
        log2n++;
    if (rq->p[3].idx == 1)
        pairs = add_sat(pairs, mul_sat(mul_sat(n, n), log2n));
    return add_sat(input_count(rq), pairs);
}

static size_t cost_msml(const srv_request *rq)
{
    size_t n = rq->in[0].dim[0];

    return add_sat(input_count(rq), mul_sat(mul_sat(n, n), rq->in[0].dim[1]));
}

/* A bound: the histogram sorts, kde and knn compare samples pairwise. */
static size_t cost_samples(const srv_request *rq)
{
    size_t n = add_sat(rq->in[0].dim[0], rq->in[1].dim[0]);

    if (samples_method(rq, rq->in[0].dim[1]) == LOSS_SAMPLES_HISTOGRAM)
        return mul_sat(n, 64);
    return add_sat(input_count(rq), mul_sat(mul_sat(n, n), rq->in[0].dim[1]));
}

size_t srv_request_cost(const srv_request *rq)
{
    return rq->loss->cost ? rq->loss->cost(rq) : input_count(rq);
}

/* ---- The table ----------------------------------------------------------- */

static const char *const no_metrics[] = {NULL};

#define IN(a) a, NELEM(a)
#define PAR(a) a, NELEM(a)

const srv_loss srv_losses[] = {
    {"hinge", "binary hinge: max(0, margin - y*s)^p, labels -1 or +1",
     IN(hinge_in), PAR(hinge_par), no_metrics, "N", NULL, run_hinge, 0, NULL,
     NULL},
    {"multiclass_hinge",
     "multiclass hinge: one_vs_all sum_j max(0, margin - sigma_j*s_j)^p, "
     "weston_watkins sum_{j!=y} max(0, margin - s_y + s_j)^p / K, "
     "crammer_singer max(0, margin + max_{j!=y} s_j - s_y)^p",
     IN(mc_in), PAR(mc_par), accuracy_only, "N", NULL, run_mc_hinge, 0, NULL,
     NULL},
    {"softmax",
     "softmax cross-entropy -sum_j t_j log softmax(z)_j with class labels "
     "or probabilities, as torch.nn.functional.cross_entropy",
     IN(softmax_in), PAR(softmax_par), softmax_metrics, "N", NULL, run_softmax,
     0, NULL, NULL},
    {"l_softmax",
     "large-margin softmax: cross-entropy of f_j = w_j.x, f_y = (beta*|w_y||x|"
     "cos(theta) + |w_y||x| psi(theta)) / (1 + beta), psi = (-1)^k cos(m "
     "theta) - 2k",
     IN(msoft_in), PAR(l_softmax_par), no_metrics, "N", NULL, run_l_softmax, 0,
     NULL, cost_msoft},
    {"a_softmax",
     "angular softmax (SphereFace): l_softmax with unit-norm weight rows, "
     "f_y = (beta*|x|cos(theta) + |x| psi(theta)) / (1 + beta)",
     IN(msoft_in), PAR(a_softmax_par), no_metrics, "N", NULL, run_a_softmax, 0,
     NULL, cost_msoft},
    {"contrastive",
     "contrastive loss on pairs, d = |x1 - x2|^2: seed 1/2[y d + (1-y) "
     "max(margin - d, 0)], hadsell, double_margin; summed over layers",
     IN(contrastive_in), PAR(contrastive_par), contrastive_metrics, "N", NULL,
     run_contrastive, 0, NULL, NULL},
    {"triplet",
     "triplet loss max(d(a,p) - d(a,n) + margin, 0) on explicit triplets or "
     "mined from labelled embeddings (batch_hard, batch_all)",
     IN(triplet_in), PAR(triplet_par), triplet_metrics, "N", NULL, run_triplet,
     0, NULL, cost_triplet},
    {"coupled_cluster",
     "coupled clusters: 1/2 max(d^2(z_i, c) - d^2(z*, c) + margin, 0), c the "
     "mean of the positives, z* the nearest negative",
     IN(cc_in), PAR(cc_par), no_metrics, "Np", NULL, run_coupled_cluster, 0,
     NULL, NULL},
    {"quadruplet",
     "quadruplet loss max(d(a,p) - d(a,n) + margin, 0) + max(d(a,p) - "
     "d(n,n2) + margin2, 0)",
     IN(quad_in), PAR(quad_par), no_metrics, "N", NULL, run_quadruplet, 0, NULL,
     NULL},
    {"msml",
     "margin sample mining: max(0, max positive-pair d - min negative-pair d "
     "+ margin) over the batch",
     IN(msml_in), PAR(msml_par), no_metrics, NULL, NULL, run_msml, 0, NULL,
     cost_msml},
    {"kl", "Kullback-Leibler divergence sum_j p_j log(p_j / q_j)", IN(div_in),
     PAR(div_par), div_metrics, "N", NULL, run_kl, SRV_L_INFINITE_GRADIENTS,
     NULL, NULL},
    {"js",
     "Jensen-Shannon divergence 1/2 KL(p||m) + 1/2 KL(q||m), m = (p + q)/2",
     IN(js_in), PAR(js_par), div_metrics, "N", NULL, run_js,
     SRV_L_INFINITE_GRADIENTS, NULL, NULL},
    {"cross_entropy", "cross-entropy -sum_j p_j log q_j", IN(div_in),
     PAR(div_par), div_metrics, "N", NULL, run_cross_entropy,
     SRV_L_INFINITE_GRADIENTS, NULL, NULL},
    {"vae",
     "VAE negative ELBO: reconstruction (Bernoulli or Gaussian) + beta * "
     "-1/2 sum(1 + logvar - mu^2 - exp(logvar))",
     IN(vae_in), PAR(vae_par), vae_metrics, "N", NULL, run_vae, 0, NULL, NULL},
    {"gan",
     "GAN minimax objective: discriminator -mean log D(x) - mean log(1 - "
     "D(G(z))), generator non_saturating or minimax",
     IN(gan_in), PAR(gan_par), gan_metrics, NULL, "d_fake", run_gan, 0, NULL,
     NULL},
    {"gaussian_kl",
     "KL divergence of diagonal Gaussians p = N(mu_p, e^logvar_p) and q = "
     "N(mu_q, e^logvar_q), per sample 1/2 sum_j [logvar_q - logvar_p + "
     "(e^logvar_p + (mu_p - mu_q)^2) / e^logvar_q - 1]",
     IN(gkl_in), NULL, 0, no_metrics, "N", NULL, run_gaussian_kl, 0, NULL,
     NULL},
};
const size_t srv_nlosses = NELEM(srv_losses);

const srv_loss srv_divergences[] = {
    {"samples",
     "KL and JS divergences and entropies of two continuous distributions "
     "given by samples p [Np] or [Np][D] and q [Nq] or [Nq][D]: histogram "
     "(1-D, the default there), Gaussian kde, or the k-nearest-neighbour "
     "estimator of Wang, Kulkarni and Verdu (the default for D > 1; it has "
     "no js, which is null).  Cost at 10,000 samples per side: histogram "
     "and 1-D knn O(N log N), milliseconds; 1-D kde 0.08 s; in 3-D knn (an "
     "exact k-d tree search, O(N^2 D) at worst) 0.08 s and kde (O(N^2 D)) "
     "1.6 s",
     IN(samples_in), PAR(samples_par), samples_metrics, NULL, NULL, run_samples,
     SRV_L_ESTIMATE, samples_effective, cost_samples},
};
const size_t srv_ndivergences = NELEM(srv_divergences);

static const srv_loss *find_in(const srv_loss *table, size_t n,
                               const char *name)
{
    size_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

const srv_loss *srv_loss_find(const char *name)
{
    return find_in(srv_losses, srv_nlosses, name);
}

const srv_loss *srv_divergence_find(const char *name)
{
    return find_in(srv_divergences, srv_ndivergences, name);
}

const srv_loss *srv_endpoint_find(const char *name)
{
    static const char prefix[] = "divergence/";

    if (name != NULL && strncmp(name, prefix, sizeof prefix - 1) == 0)
        return srv_divergence_find(name + sizeof prefix - 1);
    return srv_loss_find(name);
}
