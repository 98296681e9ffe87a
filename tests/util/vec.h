/* vec.h -- helpers shared by the tests: loading the reference vectors that
 * tests/vectors/gen.py computed with PyTorch, reading request fields out of
 * them, comparing arrays, and checking gradients by central differences.
 *
 * A vector file is tests/vectors/<family>.json:
 *   {"cases": [{"name": "...", "loss": "softmax",
 *               "request": {API request body, parameters included},
 *               "expected": {"loss": x, "per_sample": [...],
 *                            "gradients": {"logits": [[...]]},
 *                            "metrics": {"accuracy": 0.5},
 *                            "generator": {...}}            (gan only)
 *              } or, for a case that must fail,
 *              {"name": ..., "loss": ..., "request": {...},
 *               "error": {"status": 422, "code": "label_out_of_range",
 *                         "field": "labels[3]"}}]}
 * Metrics that are infinite or undefined are null in "expected".
 * Every helper aborts the test (Criterion cr_assert) on malformed data. */
#ifndef TEST_VEC_H
#define TEST_VEC_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Relative tolerance against the PyTorch vectors. */
#define VEC_RTOL 1e-10
#define VEC_ATOL 1e-12

/* Loads tests/vectors/<family>.json (directory from $LOSSD_VECTORS, else
 * tests/vectors).  Free with cJSON_Delete. */
cJSON *vec_load(const char *family);

/* The families there: the names of its *.json files without ".json", in
 * directory order, NULL-terminated (at least one, or the test fails).
 * Free with vec_families_free. */
char **vec_families(void);
void vec_families_free(char **names);

/* The request's field, or NULL when absent. */
const cJSON *vec_field(const cJSON *request, const char *name);

/* Flattens a [n], [n][k] or [l][n][k] numeric array into a new malloc'd
 * array (free with free) and stores its shape in dims[0..*rank-1].  NULL when
 * the field is absent. */
double *vec_tensor(const cJSON *request, const char *name, size_t dims[3],
                   size_t *rank);
/* The same for integer arrays (labels). */
int64_t *vec_labels(const cJSON *request, const char *name, size_t *n);

double vec_number(const cJSON *request, const char *name, double dflt);
int vec_bool(const cJSON *request, const char *name, int dflt);
const char *vec_string(const cJSON *request, const char *name,
                       const char *dflt);
/* "mean" -> 0, "sum" -> 1, matching loss_reduction. */
int vec_reduction(const cJSON *request);

/* Asserts |got - want| <= VEC_RTOL*|want| + VEC_ATOL, with want a JSON number
 * (null matches NaN or +-infinity). what names the value in the message. */
void vec_expect_number(const cJSON *want, double got, const char *case_name,
                       const char *what);
/* Asserts a flattened array against a nested JSON array of exactly n numbers
 * (null elements match non-finite values). */
void vec_expect_array(const cJSON *want, const double *got, size_t n,
                      const char *case_name, const char *what);

/* Central finite differences: eval(ctx) returns the reduced loss at the
 * current x.  Each x[i] (i < n) is perturbed by h*max(1,|x[i]|) in both
 * directions and restored; asserts |fd - grad[i]| <= rtol*max(1,|fd|,
 * |grad[i]|).  Components of grad that are non-finite are skipped. */
void fd_check(double (*eval)(void *ctx), void *ctx, double *x,
              const double *grad, size_t n, double h, double rtol,
              const char *what);

/* Deterministic pseudo-random doubles in [lo, hi) (xorshift64*). */
double test_rand(uint64_t *state, double lo, double hi);
void test_rand_fill(uint64_t *state, double *x, size_t n, double lo, double hi);

#endif
