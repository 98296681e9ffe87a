/* table.h -- the one table that describes every loss of the contract: its
 * inputs and their shapes, its parameters with types, defaults and ranges,
 * its outputs, and the adapter that calls the core.  Request parsing,
 * validation, the response writer and the /losses catalog all read this
 * table, so a loss is added in one place.
 *
 * Thread-safety: the table is const and read-only; adapters are reentrant. */
#ifndef SRV_TABLE_H
#define SRV_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "loss.h"

#define SRV_MAX_INPUTS 6
#define SRV_MAX_PARAMS 6
#define SRV_MAX_METRICS 12
#define SRV_MAX_RANK 3

/* Input flags. */
#define SRV_IN_INT 1u  /* integer values (labels), parsed to int64_t */
#define SRV_IN_DIFF 2u /* differentiable: the response carries its gradient */
#define SRV_IN_LAYERED 4u /* [N][D] or [L][N][D] with a width per layer */
#define SRV_IN_VECTOR 8u  /* [N][D], or [N] read as [N][1] (1-D samples) */

/* One input tensor.  shape holds one symbol per axis ("N", "K"); inputs
 * that share a symbol must agree on that dimension.  A layered input of
 * rank 2 may also be sent as [L][rank 2 shape], each layer with its own last
 * dimension.  choice is 0 for an input every request carries, else 1 or 2:
 * the loss has two alternative forms (labels | targets, recon |
 * recon_logits, explicit | mined triplets) and a request carries exactly the
 * inputs of one of them. */
typedef struct srv_input {
    const char *name;
    size_t rank;
    const char *shape[SRV_MAX_RANK];
    unsigned flags;
    int choice;
} srv_input;

typedef enum srv_ptype {
    SRV_P_NUMBER = 0,
    SRV_P_INTEGER,
    SRV_P_BOOLEAN,
    SRV_P_ENUM,
    SRV_P_ARRAY
} srv_ptype;

/* Parameter flags for ranges: an open end, and the one excluded value of
 * `base` (1). */
#define SRV_P_LO_OPEN 1u
#define SRV_P_HI_OPEN 2u
#define SRV_P_NOT_ONE 4u
/* An enum that also takes a number, or an integer, in [lo, hi] (bins:
 * "auto" or a count; bandwidth: "scott", "silverman" or a width).  A number
 * given leaves srv_value.idx at -1 and the number in num (and inum). */
#define SRV_P_OR_NUMBER 8u
#define SRV_P_OR_INTEGER 16u
/* No fixed default: the adapter chooses from the data when the parameter is
 * absent (the catalog's default is null). */
#define SRV_P_NO_DEFAULT 32u

/* One parameter.  dflt is the default of a number or integer, 0/1 for a
 * boolean and the index into values for an enum; an array's default is
 * absent (null) and its one axis is the symbol `shape`.  [lo, hi] is the
 * allowed range (infinite ends when unbounded).  choice restricts the
 * parameter to one form of the loss, as for inputs; 0 means any. */
typedef struct srv_param {
    const char *name;
    srv_ptype type;
    double dflt;
    double lo, hi;
    unsigned flags;
    const char *const *values; /* enum: NULL-terminated */
    const char *shape;         /* array: its symbol */
    int choice;
} srv_param;

/* A parsed tensor: absent when present is 0.  Real inputs fill v, integer
 * inputs iv, both flat and row-major.  A layered tensor has rank 3, dim[0]
 * layers of dim[1] rows each, and width[l] columns in layer l (dim[2] is
 * then unused); count is the number of values in every case. */
typedef struct srv_tensor {
    int present;
    double *v;
    int64_t *iv;
    size_t rank;
    size_t dim[SRV_MAX_RANK];
    size_t *width;
    size_t count;
} srv_tensor;

/* A parameter's value after defaults: num for numbers, integers (also in
 * inum) and booleans, idx for an enum, arr for an array. */
typedef struct srv_value {
    double num;
    int64_t inum;
    int idx;
    int given;
    srv_tensor arr;
} srv_value;

struct srv_loss;

/* A validated request: every input of the chosen form present with
 * consistent shapes, every parameter in range. */
typedef struct srv_request {
    const struct srv_loss *loss;
    int form;                      /* 0, or the choice (1, 2) of the inputs */
    srv_tensor in[SRV_MAX_INPUTS]; /* by position in loss->inputs */
    srv_value p[SRV_MAX_PARAMS];   /* by position in loss->params */
    loss_reduction reduction;
    int gradients, per_sample, float64;
} srv_request;

/* What the adapter fills.  The handler allocates per_sample (when wanted
 * and the loss has one), grad[i] for every present differentiable input
 * when gradients are wanted, and gen_grad for a loss with a generator
 * block; the adapter allocates scratch with srv_result_work. */
typedef struct srv_result {
    double loss;
    double *per_sample;
    size_t per_sample_n;
    double *grad[SRV_MAX_INPUTS];
    double metric[SRV_MAX_METRICS];
    double gen_loss;
    double *gen_grad;
    double *work;
    void *extra;
    const char *method;     /* an estimate: the method it used, or NULL */
    loss_deadline deadline; /* for the losses that take one; ctx is this */
    double deadline_end;    /* when it expires, in now_s() time */
    int aborted;            /* it expired for srv_compute_abort */
} srv_result;

typedef int (*srv_adapter)(const srv_request *rq, srv_result *rs,
                           loss_error *err);

/* Entry flags.  SRV_L_ESTIMATE: not a loss but an estimate from data
 * (POST /divergence/{name}): no reduction, gradients or per_sample fields
 * (precision only), and the response is {"method", "metrics", "parameters",
 * "n_<input>"...} instead of a loss. */
#define SRV_L_ESTIMATE 1u
/* SRV_L_INFINITE_GRADIENTS: a gradient component may be infinite (null
 * in JSON), as the contract documents for the divergences; for every
 * other loss a non-finite gradient is a 422 non_finite. */
#define SRV_L_INFINITE_GRADIENTS 2u

typedef struct srv_loss {
    const char *name;
    const char *summary;
    const srv_input *inputs;
    size_t ninputs;
    const srv_param *params;
    size_t nparams;
    const char *const *metrics; /* NULL-terminated */
    const char *per_sample;     /* the symbol giving its length, or NULL */
    const char *generator_grad; /* the input the generator block's
                                   gradient belongs to, or NULL */
    srv_adapter run;
    unsigned flags;               /* SRV_L_... */
    const char *const *effective; /* an estimate's effective parameters,
                                     NULL-terminated, or NULL: their values
                                     follow the metrics in srv_result.metric,
                                     NaN where one does not apply */
    size_t (*cost)(const srv_request *rq); /* see srv_request_cost; NULL
                                              for a loss linear in its
                                              input */
} srv_loss;

/* The common request fields, in catalog order: reduction, gradients,
 * per_sample, precision. */
extern const srv_param srv_common_params[];
extern const size_t srv_ncommon_params;

/* Every loss, in contract order. */
extern const srv_loss srv_losses[];
extern const size_t srv_nlosses;

/* The divergences estimated from data, served at POST /divergence/{name}
 * and listed by GET /divergences. */
extern const srv_loss srv_divergences[];
extern const size_t srv_ndivergences;

/* The loss called name, or NULL. */
const srv_loss *srv_loss_find(const char *name);

/* The divergence called name ("samples"), or NULL. */
const srv_loss *srv_divergence_find(const char *name);

/* The entry a computation path names: "divergence/<name>" for a divergence
 * (the path without its leading '/'), otherwise a loss name.  NULL when
 * unknown. */
const srv_loss *srv_endpoint_find(const char *name);

/* The work a valid request asks for, in element operations: its input
 * count for the losses linear in it, more where pairs or triplets of rows
 * are compared (mined triplets, msml, the margin softmaxes, the sample
 * estimators).  Saturates at SIZE_MAX.  It lets the HTTP layer keep costly
 * requests off its own threads. */
size_t srv_request_cost(const srv_request *rq);

/* Allocates n doubles of core scratch into rs->work (freed by the caller of
 * the adapter; NULL when n is 0).  LOSS_OK, or LOSS_E_NOMEM on overflow or
 * out of memory. */
int srv_result_work(srv_result *rs, size_t n);

#endif
