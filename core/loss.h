/* loss.h -- the public API of lossd's numerical core.
 *
 * Every loss of the lossd contract (API.md) is one function here that computes,
 * in double precision, the reduced loss, the per-sample values, the gradient of
 * the reduced loss with respect to every differentiable input, and the loss's
 * metrics.  The core is pure: it uses only the C standard library, keeps no
 * global state, does no I/O and allocates nothing, so any thread may call any
 * function at any time.
 *
 * Conventions shared by every loss:
 *   - Matrices are flat, row-major arrays: element (i, j) of an [n][k] input
 *     is x[i * k + j].  Sizes are size_t; class labels are int64_t.
 *   - Each loss takes a const *_args struct (inputs, sizes, parameters) and a
 *     *_out struct whose pointers the caller fills in.  An output pointer that
 *     is NULL is not computed (per_sample, gradients).  Output arrays have the
 *     shape of the input they belong to and never alias the inputs.
 *   - Losses that need scratch memory say so with loss_<name>_work(args), the
 *     number of doubles the caller must provide in args->work.  The others
 *     return 0 there and ignore args->work.
 *   - The return value is LOSS_OK (0) or a negative loss_status; on failure
 *     *err names the status, the offending input or parameter and its index,
 *     and the outputs are unspecified.
 *   - A metric that is undefined (a mean over an empty set) is NaN; a metric
 *     or gradient component that is mathematically infinite is +-INFINITY.
 *     The server prints both as JSON null.
 *   - The losses whose work grows faster than their input (mined triplets,
 *     msml, l_softmax and a_softmax, kde and knn on samples) take an
 *     optional args->deadline (loss_deadline below); NULL means none.
 */
#ifndef LOSS_H
#define LOSS_H

#include <stddef.h>
#include <stdint.h>

/* ---- Status codes ---------------------------------------------------------
 * One X-macro gives the enum, the contract's error code string and a default
 * message.  Every error is a 422 in the HTTP contract except LOSS_E_NOMEM,
 * which the server reports as 503, and LOSS_E_STOPPED, a 413 (a 503 when
 * the server stops the loss to shut down).
 */
#define LOSS_STATUS_MAP(X)                                                     \
    X(OK, 0, "ok", "Success.")                                                 \
    X(E_PARAM, -1, "bad_parameter", "A parameter is out of range.")            \
    X(E_SHAPE, -2, "shape_mismatch", "The inputs have incompatible shapes.")   \
    X(E_EMPTY, -3, "empty_batch", "The batch is empty.")                       \
    X(E_LABEL, -4, "label_out_of_range", "A label is out of range.")           \
    X(E_PROB, -5, "invalid_probability",                                       \
      "An input is not a probability distribution.")                           \
    X(E_NONFINITE, -6, "non_finite", "A number is NaN or infinite.")           \
    X(E_INFINITE, -7, "infinite_divergence", "The divergence is infinite.")    \
    X(E_ZERO_NORM, -8, "zero_norm",                                            \
      "A vector that must be normalised is zero.")                             \
    X(E_NOMEM, -9, "out_of_memory", "Out of memory.")                          \
    X(E_STOPPED, -10, "compute_timeout",                                       \
      "The computation ran past its deadline.")

typedef enum loss_status {
#define LOSS_STATUS_ENUM(name, value, code, msg) LOSS_##name = value,
    LOSS_STATUS_MAP(LOSS_STATUS_ENUM)
#undef LOSS_STATUS_ENUM
} loss_status;

/* Where and why a call failed.  field is a static string naming an input or
 * parameter exactly as the HTTP contract spells it ("labels", "margin"), or
 * NULL.  index[0..depth-1] locates the element inside that field: depth 0 is
 * the whole field, 1 is field[index[0]], 2 is field[index[0]][index[1]], 3 is
 * field[index[0]][index[1]][index[2]] (multi-layer inputs).  message is a
 * complete sentence for people, always NUL-terminated; when field is set it
 * opens with that path, as in "labels[3] is 7, outside [0, 5)." */
typedef struct loss_error {
    loss_status status;
    const char *field;
    size_t depth;
    size_t index[3];
    char message[160];
} loss_error;

/* A caller's deadline.  A loss that takes one asks expired(ctx) after
 * every LOSS_DEADLINE_OPS or so element operations (a distance, a kernel
 * term, a logit), and from the start of its main loop; once expired returns
 * non-zero, the loss stops and returns LOSS_E_STOPPED.  expired is called on
 * the loss's thread, so the caller keeps whatever clock it likes. */
typedef struct loss_deadline {
    int (*expired)(void *ctx);
    void *ctx;
} loss_deadline;

#define LOSS_DEADLINE_OPS ((size_t)1 << 16)

/* The contract's error code ("label_out_of_range") and default message for a
 * status; "unknown" for a value outside the enum.  Static strings. */
const char *loss_status_code(loss_status s);
const char *loss_status_message(loss_status s);

/* Fill *err (when err is not NULL): the status, the field, the first depth of
 * the indices i0, i1, i2 (the rest are ignored) and a printf-style message.
 * Returns status, so a loss can write `return loss_error_set(...)`. */
loss_status loss_error_set(loss_error *err, loss_status status,
                           const char *field, size_t depth, size_t i0,
                           size_t i1, size_t i2, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 8, 9)))
#endif
    ;

/* Writes err's location as the contract's JSON path ("labels[3]",
 * "logits[2][7]"): the field followed by its first depth indices, or "" when
 * err names no field.  Always NUL-terminates buf (when len > 0), truncating
 * if needed. */
void loss_error_path(const loss_error *err, char *buf, size_t len);

typedef enum loss_reduction {
    LOSS_REDUCE_MEAN = 0, /* divide by the loss's documented divisor */
    LOSS_REDUCE_SUM = 1
} loss_reduction;

typedef enum loss_distance {
    LOSS_DIST_EUCLIDEAN = 0,        /* d(u, v) = ||u - v||; 0 gradient at 0 */
    LOSS_DIST_SQUARED_EUCLIDEAN = 1 /* d(u, v) = ||u - v||^2 */
} loss_distance;

/* ---- hinge.c: binary and multiclass hinge -------------------------------- */

typedef struct loss_hinge_args {
    size_t n;
    const double *scores;  /* [n] */
    const int64_t *labels; /* [n], each -1 or +1 */
    double margin;         /* default 1 */
    int p;                 /* 1 or 2 (squared hinge) */
    loss_reduction reduction;
    double *work; /* unused */
} loss_hinge_args;

typedef struct loss_hinge_out {
    double loss;
    double *per_sample;  /* [n] or NULL */
    double *grad_scores; /* [n] or NULL */
} loss_hinge_out;

size_t loss_hinge_work(const loss_hinge_args *a);
int loss_hinge(const loss_hinge_args *a, loss_hinge_out *o, loss_error *err);

typedef enum loss_mc_hinge_variant {
    LOSS_MC_ONE_VS_ALL = 0,
    LOSS_MC_WESTON_WATKINS = 1,
    LOSS_MC_CRAMMER_SINGER = 2
} loss_mc_hinge_variant;

typedef struct loss_multiclass_hinge_args {
    size_t n, k;
    const double *scores;  /* [n][k] */
    const int64_t *labels; /* [n] in [0, k) */
    double margin;         /* default 1 */
    int p;                 /* 1 or 2 */
    loss_mc_hinge_variant variant;
    loss_reduction reduction;
    double *work;
} loss_multiclass_hinge_args;

typedef struct loss_multiclass_hinge_out {
    double loss;
    double *per_sample;  /* [n] or NULL */
    double *grad_scores; /* [n][k] or NULL */
    double accuracy;     /* fraction whose arg-max (lowest on ties) = label */
} loss_multiclass_hinge_out;

size_t loss_multiclass_hinge_work(const loss_multiclass_hinge_args *a);
int loss_multiclass_hinge(const loss_multiclass_hinge_args *a,
                          loss_multiclass_hinge_out *o, loss_error *err);

/* ---- softmax.c: softmax cross-entropy, PyTorch's cross_entropy ----------- */

typedef struct loss_softmax_args {
    size_t n, k;
    const double *logits;   /* [n][k] */
    const int64_t *labels;  /* [n] class indices, or NULL when targets given */
    const double *targets;  /* [n][k] class probabilities, or NULL */
    const double *weight;   /* [k] class weights, or NULL (all 1) */
    int64_t ignore_index;   /* labels only; PyTorch's default is -100 */
    double label_smoothing; /* in [0, 1) */
    loss_reduction reduction;
    double *work;
} loss_softmax_args;

typedef struct loss_softmax_out {
    double loss;
    double *per_sample;  /* [n] or NULL */
    double *grad_logits; /* [n][k] or NULL */
    double accuracy;
    double mean_entropy; /* of the predicted distributions, nats */
} loss_softmax_out;

size_t loss_softmax_work(const loss_softmax_args *a);
int loss_softmax(const loss_softmax_args *a, loss_softmax_out *o,
                 loss_error *err);

/* ---- margin_softmax.c: L-Softmax and A-Softmax --------------------------- */

typedef struct loss_margin_softmax_args {
    size_t n, d, k;
    const double *features; /* [n][d] */
    const double *weights;  /* [k][d] */
    const int64_t *labels;  /* [n] in [0, k) */
    int margin;             /* 1..8; default 2 (l_softmax), 4 (a_softmax) */
    double beta;            /* >= 0, default 0 */
    loss_reduction reduction;
    double *work;
    const loss_deadline *deadline; /* or NULL */
} loss_margin_softmax_args;

typedef struct loss_margin_softmax_out {
    double loss;
    double *per_sample;    /* [n] or NULL */
    double *grad_features; /* [n][d] or NULL */
    double *grad_weights;  /* [k][d] or NULL */
} loss_margin_softmax_out;

size_t loss_l_softmax_work(const loss_margin_softmax_args *a);
int loss_l_softmax(const loss_margin_softmax_args *a,
                   loss_margin_softmax_out *o, loss_error *err);
size_t loss_a_softmax_work(const loss_margin_softmax_args *a);
int loss_a_softmax(const loss_margin_softmax_args *a,
                   loss_margin_softmax_out *o, loss_error *err);

/* ---- pairs.c: contrastive and coupled clusters --------------------------- */

typedef enum loss_contrastive_variant {
    LOSS_CONTRASTIVE_SEED = 0,
    LOSS_CONTRASTIVE_HADSELL = 1,
    LOSS_CONTRASTIVE_DOUBLE_MARGIN = 2
} loss_contrastive_variant;

typedef struct loss_contrastive_args {
    size_t layers; /* L >= 1; a plain [N][D] request is L = 1 */
    size_t n;
    const size_t *d;         /* [L] width of each layer */
    const double *const *x1; /* [L] pointers, layer l is [n][d[l]] */
    const double *const *x2; /* [L] pointers, layer l is [n][d[l]] */
    const int64_t *labels;   /* [n], 1 = matching pair, 0 = non-matching */
    loss_contrastive_variant variant;
    double margin;     /* default 1 */
    double pos_margin; /* default 0 */
    double neg_margin; /* default 1 */
    loss_reduction reduction;
    double *work;
} loss_contrastive_args;

typedef struct loss_contrastive_out {
    double loss;
    double *per_sample;       /* [n] or NULL */
    double *const *grad_x1;   /* [L] pointers like x1, or NULL */
    double *const *grad_x2;   /* [L] pointers like x2, or NULL */
    double mean_distance_pos; /* see pairs.c for the definition */
    double mean_distance_neg;
} loss_contrastive_out;

size_t loss_contrastive_work(const loss_contrastive_args *a);
int loss_contrastive(const loss_contrastive_args *a, loss_contrastive_out *o,
                     loss_error *err);

typedef struct loss_coupled_cluster_args {
    size_t np, nn, d;
    const double *positives; /* [np][d] */
    const double *negatives; /* [nn][d] */
    double margin;           /* default 1 */
    loss_reduction reduction;
    double *work;
} loss_coupled_cluster_args;

typedef struct loss_coupled_cluster_out {
    double loss;
    double *per_sample;     /* [np] or NULL */
    double *grad_positives; /* [np][d] or NULL */
    double *grad_negatives; /* [nn][d] or NULL */
} loss_coupled_cluster_out;

size_t loss_coupled_cluster_work(const loss_coupled_cluster_args *a);
int loss_coupled_cluster(const loss_coupled_cluster_args *a,
                         loss_coupled_cluster_out *o, loss_error *err);

/* ---- triplet.c: triplet (explicit and mined), quadruplet, MSML ----------- */

typedef struct loss_triplet_args {
    size_t n, d;
    const double *anchor;   /* [n][d] */
    const double *positive; /* [n][d] */
    const double *negative; /* [n][d] */
    double margin;          /* default 1 */
    loss_distance distance; /* default euclidean */
    int swap;               /* 0 or 1 */
    loss_reduction reduction;
    double *work;
} loss_triplet_args;

typedef struct loss_triplet_out {
    double loss;
    double *per_sample;     /* [n] or NULL */
    double *grad_anchor;    /* [n][d] or NULL */
    double *grad_positive;  /* [n][d] or NULL */
    double *grad_negative;  /* [n][d] or NULL */
    double valid;           /* number of triplets (n) */
    double active_fraction; /* fraction with a positive loss */
} loss_triplet_out;

size_t loss_triplet_work(const loss_triplet_args *a);
int loss_triplet(const loss_triplet_args *a, loss_triplet_out *o,
                 loss_error *err);

typedef enum loss_mining {
    LOSS_MINING_BATCH_HARD = 0,
    LOSS_MINING_BATCH_ALL = 1
} loss_mining;

typedef struct loss_triplet_mined_args {
    size_t n, d;
    const double *embeddings; /* [n][d] */
    const int64_t *labels;    /* [n], any integers */
    double margin;            /* default 1 */
    loss_distance distance;   /* default euclidean */
    loss_mining mining;       /* default batch_hard */
    loss_reduction reduction;
    double *work;
    const loss_deadline *deadline; /* or NULL */
} loss_triplet_mined_args;

typedef struct loss_triplet_mined_out {
    double loss;
    double *per_sample;      /* [n] or NULL */
    double *grad_embeddings; /* [n][d] or NULL */
    double valid;            /* valid anchors (hard) or triplets (all) */
    double active_fraction;  /* fraction of those with a positive loss */
} loss_triplet_mined_out;

size_t loss_triplet_mined_work(const loss_triplet_mined_args *a);
int loss_triplet_mined(const loss_triplet_mined_args *a,
                       loss_triplet_mined_out *o, loss_error *err);

typedef struct loss_quadruplet_args {
    size_t n, d;
    /* [n][d] each */
    const double *anchor, *positive, *negative, *negative2;
    double margin;          /* default 1 */
    double margin2;         /* default 0.5 */
    loss_distance distance; /* default squared_euclidean */
    loss_reduction reduction;
    double *work;
} loss_quadruplet_args;

typedef struct loss_quadruplet_out {
    double loss;
    double *per_sample; /* [n] or NULL */
    double *grad_anchor, *grad_positive, *grad_negative, *grad_negative2;
} loss_quadruplet_out;

size_t loss_quadruplet_work(const loss_quadruplet_args *a);
int loss_quadruplet(const loss_quadruplet_args *a, loss_quadruplet_out *o,
                    loss_error *err);

typedef struct loss_msml_args {
    size_t n, d;
    const double *embeddings; /* [n][d] */
    const int64_t *labels;    /* [n] */
    double margin;            /* default 1 */
    loss_distance distance;   /* default euclidean */
    loss_reduction reduction; /* no effect: one value for the batch */
    double *work;
    const loss_deadline *deadline; /* or NULL */
} loss_msml_args;

typedef struct loss_msml_out {
    double loss;
    double *grad_embeddings; /* [n][d] or NULL */
} loss_msml_out;

size_t loss_msml_work(const loss_msml_args *a);
int loss_msml(const loss_msml_args *a, loss_msml_out *o, loss_error *err);

/* ---- divergence.c: KL, JS and cross-entropy between distributions -------- */

typedef enum loss_divergence_kind {
    LOSS_DIV_KL = 0,
    LOSS_DIV_JS = 1,
    LOSS_DIV_CROSS_ENTROPY = 2
} loss_divergence_kind;

typedef enum loss_prob_input {
    LOSS_INPUT_PROBS = 0,
    LOSS_INPUT_LOGITS = 1,
    LOSS_INPUT_LOG_PROBS = 2
} loss_prob_input;

typedef struct loss_divergence_args {
    loss_divergence_kind kind;
    size_t n, k;
    const double *p;       /* [n][k] reference */
    const double *q;       /* [n][k] prediction */
    loss_prob_input input; /* default probs */
    double base;           /* > 0 and != 1; default e */
    int normalize;         /* 0 or 1 */
    double eps;            /* >= 0 */
    int distance;          /* js only: 1 returns sqrt(JSD) */
    loss_reduction reduction;
    double *work;
} loss_divergence_args;

typedef struct loss_divergence_out {
    double loss;
    double *per_sample; /* [n] or NULL */
    double *grad_q;     /* [n][k] or NULL */
    double *grad_p;     /* [n][k] or NULL; computed for js only */
    /* batch means in the requested base */
    double kl_pq, kl_qp, js, js_distance, cross_entropy, entropy_p, entropy_q;
} loss_divergence_out;

size_t loss_divergence_work(const loss_divergence_args *a);
int loss_divergence(const loss_divergence_args *a, loss_divergence_out *o,
                    loss_error *err);

/* ---- generative.c: VAE negative ELBO and GAN objectives ------------------ */

typedef enum loss_likelihood {
    LOSS_LIKELIHOOD_BERNOULLI = 0,
    LOSS_LIKELIHOOD_GAUSSIAN = 1
} loss_likelihood;

typedef struct loss_vae_args {
    size_t n, d, z;
    const double *x;            /* [n][d] */
    const double *recon;        /* [n][d] probabilities or means, or NULL */
    const double *recon_logits; /* [n][d] Bernoulli logits, or NULL */
    const double *mu;           /* [n][z] */
    const double *logvar;       /* [n][z] */
    loss_likelihood likelihood; /* default bernoulli */
    double beta;                /* default 1 */
    loss_reduction reduction;
    double *work;
} loss_vae_args;

typedef struct loss_vae_out {
    double loss;
    double *per_sample;  /* [n] or NULL */
    double *grad_recon;  /* [n][d]: w.r.t. recon or recon_logits, or NULL */
    double *grad_mu;     /* [n][z] or NULL */
    double *grad_logvar; /* [n][z] or NULL */
    double reconstruction, kl, elbo; /* batch means */
} loss_vae_out;

size_t loss_vae_work(const loss_vae_args *a);
int loss_vae(const loss_vae_args *a, loss_vae_out *o, loss_error *err);

typedef enum loss_gan_generator {
    LOSS_GAN_NON_SATURATING = 0,
    LOSS_GAN_MINIMAX = 1
} loss_gan_generator;

typedef struct loss_gan_args {
    size_t n, m;
    const double *d_real; /* [n] */
    const double *d_fake; /* [m] */
    int probs;            /* 0: logits (default), 1: probabilities */
    loss_gan_generator generator_loss;
    loss_reduction reduction;
    double *work;
} loss_gan_args;

typedef struct loss_gan_out {
    double loss;         /* discriminator loss */
    double *grad_d_real; /* [n] or NULL */
    double *grad_d_fake; /* [m] or NULL */
    double generator_loss;
    double *generator_grad_d_fake; /* [m] or NULL */
    double value, jsd_estimate, d_real_mean, d_fake_mean, accuracy;
} loss_gan_out;

size_t loss_gan_work(const loss_gan_args *a);
int loss_gan(const loss_gan_args *a, loss_gan_out *o, loss_error *err);

/* ---- continuous.c: KL divergence between diagonal Gaussians -------------- */

typedef struct loss_gaussian_kl_args {
    size_t n, d;
    const double *mu_p;     /* [n][d] means of p */
    const double *logvar_p; /* [n][d] log-variances of p */
    const double *mu_q;     /* [n][d] means of q */
    const double *logvar_q; /* [n][d] log-variances of q */
    loss_reduction reduction;
    double *work; /* unused */
} loss_gaussian_kl_args;

typedef struct loss_gaussian_kl_out {
    double loss;
    double *per_sample;    /* [n] or NULL */
    double *grad_mu_p;     /* [n][d] or NULL */
    double *grad_logvar_p; /* [n][d] or NULL */
    double *grad_mu_q;     /* [n][d] or NULL */
    double *grad_logvar_q; /* [n][d] or NULL */
} loss_gaussian_kl_out;

size_t loss_gaussian_kl_work(const loss_gaussian_kl_args *a);
int loss_gaussian_kl(const loss_gaussian_kl_args *a, loss_gaussian_kl_out *o,
                     loss_error *err);

/* ---- samples.c: KL and JS between two sets of samples -------------------- */

typedef enum loss_samples_method {
    LOSS_SAMPLES_HISTOGRAM = 0, /* 1-D only: shared bins, additive smoothing */
    LOSS_SAMPLES_KDE = 1,       /* Gaussian kernel density estimates */
    LOSS_SAMPLES_KNN = 2        /* Wang-Kulkarni-Verdu k-nearest neighbours */
} loss_samples_method;

typedef enum loss_bandwidth_rule {
    LOSS_BANDWIDTH_SCOTT = 0,     /* n^(-1/(D+4)) times the spread */
    LOSS_BANDWIDTH_SILVERMAN = 1, /* (n(D+2)/4)^(-1/(D+4)) times the spread */
    LOSS_BANDWIDTH_FIXED = 2      /* args->bandwidth as given */
} loss_bandwidth_rule;

/* The largest number of histogram bins, given or chosen by "auto". */
#define LOSS_SAMPLES_MAX_BINS 65536

typedef struct loss_samples_args {
    size_t np, nq, d;
    const double *p; /* [np][d] samples of P */
    const double *q; /* [nq][d] samples of Q */
    loss_samples_method method;
    size_t bins;  /* histogram: 1..LOSS_SAMPLES_MAX_BINS, 0 for "auto" */
    double alpha; /* histogram: pseudo-count added to every bin, >= 0 */
    loss_bandwidth_rule bandwidth_rule; /* kde */
    double bandwidth; /* kde, LOSS_BANDWIDTH_FIXED: kernel std. dev. > 0 */
    size_t k;         /* knn: 1 <= k < min(np, nq); default 5 */
    double base;      /* > 0 and != 1; default e */
    double *work;     /* loss_samples_divergence_work(a) doubles */
    const loss_deadline *deadline; /* or NULL */
} loss_samples_args;

/* The estimates, in the requested base, and the effective parameters.  An
 * estimate the method does not define (js with knn) is NaN; one that is
 * infinite (kl with alpha = 0 and an empty bin) is +-INFINITY. */
typedef struct loss_samples_out {
    double kl_pq, kl_qp, js, js_distance, entropy_p, entropy_q;
    size_t bins;                     /* histogram, else 0 */
    double bandwidth_p, bandwidth_q; /* kde, else NaN */
    size_t k;                        /* knn, else 0 */
} loss_samples_out;

size_t loss_samples_divergence_work(const loss_samples_args *a);
int loss_samples_divergence(const loss_samples_args *a, loss_samples_out *o,
                            loss_error *err);

#endif /* LOSS_H */
