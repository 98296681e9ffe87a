/* handler.h -- the request path below HTTP: one loss request's body bytes in,
 * an HTTP status and a JSON response body out.  This is everything the HTTP
 * layer (http.c) hands to a worker thread, and the boundary a fuzzer drives.
 *
 * Thread-safety: every function here is reentrant and may run on any thread
 * at once; the loss table is read-only after start-up. */
#ifndef SRV_HANDLER_H
#define SRV_HANDLER_H

#include <stddef.h>

#include "json_in.h"

typedef struct srv_reply {
    int status;       /* HTTP status code */
    const char *code; /* an error's code ("overloaded"; a static string),
                         NULL for a success */
    char *body;     /* JSON, malloc'd, owned by the reply; not NUL-terminated */
    size_t len;     /* bytes in body */
    double parse_s; /* seconds spent parsing and validating */
    double compute_s;  /* seconds in the core */
    double encode_s;   /* seconds writing the response */
    size_t header_len; /* a v2 binary answer: the bytes of JSON before the
                          tensors (Inference-Header-Content-Length); 0
                          when the body is all JSON */
} srv_reply;

/* Runs POST /loss/<name> (or POST /divergence/<d>, with name
 * "divergence/<d>") on a complete body: parse, validate, compute,
 * encode.  Always fills *out (status 200, 400, 404, 422, 413 past
 * --max-compute, 503 for out of memory or a loss stopped by
 * srv_compute_abort) with a body; free it with
 * srv_reply_cleanup.  (A core status outside loss.h's enum, which would be a
 * bug, is a 500 "internal_error".) */
void srv_loss_run(const char *name, const char *body, size_t len,
                  srv_reply *out);

/* srv_loss_run for a body the caller gives up (malloc'd, cap bytes): once
 * parsed, it becomes the buffer of the response when the response should
 * fit, else it is freed.  The body was just written, so its pages are in
 * memory; a new buffer as large is fresh pages, which on a virtual machine
 * that hands freed memory back to its host can cost more to fault in than
 * the encoding itself. */
void srv_loss_run_owned(const char *name, char *body, size_t len, size_t cap,
                        srv_reply *out);

/* A request parsed and validated on one thread, to be computed on another
 * (srv_loss_run_within, srv_parsed_run); it owns its memory. */
typedef struct srv_parsed {
    srv_request rq;
    double parse_s; /* the time its parse took */
} srv_parsed;

/* srv_loss_run for a caller that would rather not run a costly request
 * itself: once the body is parsed and valid, a request whose cost
 * (srv_request_cost) exceeds max_cost is left in *later -- -1, *out
 * untouched -- for srv_parsed_run or srv_parsed_cleanup, on any thread.
 * Otherwise 0 with *out filled as srv_loss_run fills it, and *later
 * untouched. */
int srv_loss_run_within(const char *name, const char *body, size_t len,
                        size_t max_cost, srv_reply *out, srv_parsed *later);

/* Computes and encodes what srv_loss_run_within left, filling *out as
 * srv_loss_run does, and releases it. */
void srv_parsed_run(srv_parsed *p, srv_reply *out);
void srv_parsed_cleanup(srv_parsed *p);

/* 1 when name is a loss of the contract. */
int srv_loss_exists(const char *name);

/* "hinge, multiclass_hinge, ..." -- the valid names, for 404 messages.  Static.
 */
const char *srv_loss_names(void);

/* The JSON array of names ["hinge", ...], the whole /losses catalog, or one
 * entry (name not NULL; NULL return when unknown).  malloc'd, *len set.
 * The whole catalog is {"losses": [entry, ...]}; an entry is {"name",
 * "summary", "inputs": [...], "parameters": [...], "outputs": {...}}.
 * Both also return NULL when out of memory. */
char *srv_catalog_names_json(size_t *len);
char *srv_catalog_json(const char *name, size_t *len);

/* The same for the divergences estimated from data: {"divergences":
 * [entry, ...]} or one entry, whose "path" is POST /divergence/{name} and
 * whose "outputs" name the metrics, the effective "parameters" and the
 * sample "counts" of the response. */
char *srv_divergences_json(const char *name, size_t *len);

/* 1 when name is a divergence of GET /divergences ("samples"). */
int srv_divergence_exists(const char *name);

/* 1 when name is a loss or "divergence/<a divergence>", as srv_loss_run
 * takes it; 0 for NULL. */
int srv_endpoint_exists(const char *name);

/* Fills *out with an error body {"error": {"code", "message", "field"}}.
 * field may be NULL.  On out-of-memory the body is a static fallback that
 * srv_reply_cleanup knows not to free. */
void srv_reply_error(srv_reply *out, int status, const char *code,
                     const char *field, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

void srv_reply_cleanup(srv_reply *r);

/* The compute step of srv_loss_run, for a front end that builds the
 * srv_request itself (v2.c): allocates the outputs the request asks for and
 * runs the loss's adapter.  0 with *rs filled, or -1 with *f filled (422
 * with the contract's code and field, 503 out of memory, 500 for a core
 * bug); release *rs with srv_result_cleanup either way. */
int srv_request_compute(const srv_request *rq, srv_result *rs, srv_fail *f);

/* Sets --max-compute: srv_request_compute gives every loss that takes a
 * deadline (loss.h) this many seconds from its start, and answers 413
 * "compute_timeout" when it runs past them; 0 (the default here) gives
 * none.  Call once, before any request. */
void srv_compute_limit_set(unsigned seconds);

/* Stops those losses now, and from now on, wherever they run: each
 * answers 503 "shutting_down".  For a shutdown whose grace has run out;
 * any thread, once. */
void srv_compute_abort(void);
void srv_result_cleanup(srv_result *rs);

#endif
