/* json_in.h -- request bodies in: JSON text to a validated srv_request, or
 * an HTTP error (status, contract error code, JSON path, message).
 *
 * Everything a loss accepts comes from its table entry (table.h): every key
 * of the body must be an input, a parameter or a common field of that loss;
 * tensors are flattened to row-major double (or int64 for labels) arrays
 * with their shape; shapes of different fields are checked against the
 * table's dimension symbols.
 *
 * Nesting deeper than any shape of the contract (an object holding arrays
 * three deep) is rejected before a tree is built, by a scan of the brackets
 * outside strings: 422 shape_mismatch naming the first element that is too
 * deep, or 400 invalid_json when the body is not JSON at all (json_valid.h
 * tells, without recursion).  This bounds the work and recursion a hostile
 * body can cause.
 *
 * Thread-safety: reentrant; nothing is shared between calls. */
#ifndef SRV_JSON_IN_H
#define SRV_JSON_IN_H

#include <stddef.h>

#include "table.h"

/* Brackets allowed: the body object plus three levels of arrays. */
#define SRV_MAX_DEPTH 4

/* An error for the client.  field is a JSON path (empty when none). */
typedef struct srv_fail {
    int status;
    const char *code;
    char field[256];
    char message[512];
} srv_fail;

/* Parses and validates body[0..len) for loss.  Returns 0 with *rq filled
 * (release with srv_request_cleanup), or -1 with *f filled and nothing to
 * release.  Out of memory is a 503 "out_of_memory" failure. */
int srv_request_parse(const srv_loss *loss, const char *body, size_t len,
                      srv_request *rq, srv_fail *f);

void srv_request_cleanup(srv_request *rq);

/* The steps of srv_request_parse, for a front end that builds the inputs
 * itself (v2.c): init sets every default; field parses one member of a
 * body object (an input, a parameter or a common field; seen marks the
 * members given, starting at 0); check chooses the form and checks that the
 * inputs it needs are present and that their shapes agree.  field and check
 * return 0, or -1 with *f filled; either way the caller releases *rq with
 * srv_request_cleanup. */
struct cJSON;
void srv_request_init(srv_request *rq, const srv_loss *loss);
int srv_request_field(srv_request *rq, const struct cJSON *item, unsigned *seen,
                      srv_fail *f);
int srv_request_check(srv_request *rq, srv_fail *f);

/* The message of every 503 out_of_memory answer. */
#define SRV_OOM_MESSAGE "the server is out of memory; retry later"

/* Fills *f and returns -1: the helper every validation step reports with.
 * field may be NULL. */
int srv_fail_set(srv_fail *f, int status, const char *code, const char *field,
                 const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* The 422 for input name holding no values: no rows at all
 * (SRV_EMPTY_BATCH), rows of no columns (SRV_EMPTY_ROWS), or rows of no
 * columns in layer `what` of a layered input, named by its path.  The
 * JSON path and v2 word their empty inputs alike through it. */
#define SRV_EMPTY_BATCH ((size_t)-1)
#define SRV_EMPTY_ROWS ((size_t)-2)
int srv_fail_empty(srv_fail *f, const char *name, size_t what);

/* The offset of the first \u0000 escape or raw NUL byte inside a string
 * of s[0..len), or SIZE_MAX: cJSON's strings are C strings and would end
 * there. */
size_t srv_json_nul_escape(const char *s, size_t len);

/* The offset of the first byte of s[0..len), a document cJSON has read,
 * where it departs from strict JSON (RFC 8259) in a way cJSON allows: a
 * number such as 01, 1. or 1.e5, a control character other than tab, CR
 * and LF as white space, or any control character inside a string.
 * SIZE_MAX when there is none. */
size_t srv_json_strict_at(const char *s, size_t len);

/* When body[pos..len), where a parser stopped, starts with NaN or
 * Infinity (which JSON does not have): fills *f with the 422 non_finite
 * naming its path, or, when it lies under a top-level key that L (if not
 * NULL) has not, with that key's unknown_field, and returns -1; else 0. */
int srv_json_nonfinite_fail(const srv_loss *L, const char *body, size_t len,
                            size_t pos, srv_fail *f);

#endif
