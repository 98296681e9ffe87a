/* json_out.h -- response bodies out: a growable byte buffer and writers for
 * JSON strings, numbers and nested arrays, written straight into the buffer
 * without building a tree (gradients may hold millions of numbers).
 *
 * Numbers: non-finite values are written as null.  With f64 set every number
 * parses back to exactly the same double, in as few digits as that takes
 * (0.1, not 0.10000000000000001); otherwise every number is the shortest
 * decimal within 5e-8 relative of the double (float32 rounding is 6e-8),
 * at most nine significant digits.
 *
 * Thread-safety: a buffer belongs to one thread; the functions are
 * reentrant. */
#ifndef SRV_JSON_OUT_H
#define SRV_JSON_OUT_H

#include <stddef.h>

#include "table.h"

/* A growable buffer.  Once an allocation fails, oom stays set and further
 * writes are dropped, so a writer checks once at the end. */
typedef struct srv_buf {
    char *p;
    size_t len, cap;
    int oom;
} srv_buf;

/* Starts an empty buffer with room for cap bytes (grown on demand).  Free
 * with srv_buf_free, or take ownership of b->p. */
void srv_buf_init(srv_buf *b, size_t cap);
/* Starts b empty in p, a malloc'd block of cap bytes that b now owns. */
void srv_buf_adopt(srv_buf *b, char *p, size_t cap);
/* srv_buf_init(b, cap), in spare's block when it holds cap bytes (spare is
 * then left empty); otherwise spare's block is freed. */
void srv_buf_init_in(srv_buf *b, size_t cap, srv_buf *spare);
void srv_buf_free(srv_buf *b);

void srv_buf_put(srv_buf *b, const char *s, size_t n);
void srv_buf_puts(srv_buf *b, const char *s);
/* A JSON string literal with quotes, escaping '"', '\\' and control
 * characters. */
void srv_buf_string(srv_buf *b, const char *s);
/* One JSON number, or null when x is not finite. */
void srv_buf_number(srv_buf *b, double x, int f64);

/* [x0,x1,...] */
void srv_buf_numbers(srv_buf *b, const double *x, size_t n, int f64);

/* Writes the decimal digits of v at p, without a NUL; returns their count
 * (at most 20).  It may store up to SRV_UINT_ROOM bytes: p needs that much
 * room. */
#define SRV_UINT_ROOM 24
size_t srv_put_uint(char *p, uint64_t v);

/* Writes the 200 response of a computed request: loss, per_sample,
 * gradients, metrics and the generator block, as the request asked; for an
 * estimate (SRV_L_ESTIMATE) method, metrics, parameters and n_<input>.
 * Returns 0, or -1 when out of memory. */
int srv_response_write(srv_buf *b, const srv_request *rq, const srv_result *rs);

#endif
