/* v2.h -- the Open Inference Protocol (KServe v2, as Triton serves it) in
 * front of the same loss table, validation and compute path as POST
 * /loss/{name}: each loss is a model of that name, its fields are the
 * model's inputs, its loss parameters the request's "parameters", and the
 * answer's outputs are loss, per_sample, grad_<input> and one output per
 * metric.  Triton's binary tensor extension is spoken in both directions.
 *
 * Errors are the protocol's {"error": "<message>"}, with the status of the
 * contract's table (400, 401, 404, 405, 413, 415, 422, 503).
 *
 * Thread-safety: both functions are reentrant; the table is read-only. */
#ifndef SRV_V2_H
#define SRV_V2_H

#include <stddef.h>

#include "route.h"

/* 1 when path is "/v2" or below it: srv_v2_route decides it. */
int srv_v2_path(const char *path);

/* Decides a /v2 request on its headers, as srv_route_head does for the
 * rest: the metadata and health endpoints are answered in *a;
 * POST /v2/models/{name}/infer that passes the header checks is
 * SRV_ROUTE_V2 with *loss the model's (static) name. */
srv_route_result srv_v2_route(const srv_head *h, srv_answer *a,
                              const char **loss);

/* Runs one inference request on a complete body.  header is the
 * Inference-Header-Content-Length value (NULL when absent: the body is all
 * JSON).  Always fills *out; a binary answer sets out->header_len. */
void srv_v2_infer(const char *name, const char *header, const char *body,
                  size_t len, srv_reply *out);

/* srv_v2_infer for a body the caller gives up (malloc'd, cap bytes), which
 * becomes the answer's buffer when the answer should fit, as
 * srv_loss_run_owned does (handler.h). */
void srv_v2_infer_owned(const char *name, const char *header, char *body,
                        size_t len, size_t cap, srv_reply *out);

#endif
