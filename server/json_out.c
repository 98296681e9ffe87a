/* json_out.c -- response bodies out, written directly into a growable
 * buffer.  Number formatting is the hot path for large gradients: integers
 * are written by hand, float32 precision by a hand-written nine-digit
 * formatter, and float64 with one snprintf("%.17g") per number, which
 * round-trips every double. */
#include "json_out.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room that any single number needs, with its separator. */
#define NUMBER_ROOM 32

void srv_buf_init(srv_buf *b, size_t cap)
{
    b->len = 0;
    b->oom = 0;
    b->cap = cap ? cap : 64;
    b->p = malloc(b->cap);
    if (b->p == NULL) {
        b->cap = 0;
        b->oom = 1;
    }
}

void srv_buf_free(srv_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Makes room for n more bytes; 0 on success. */
static int reserve(srv_buf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->oom)
        return -1;
    if (b->cap - b->len >= n)
        return 0;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return -1;
    }
    cap = b->cap ? b->cap : 64;
    while (cap - b->len < n)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void srv_buf_put(srv_buf *b, const char *s, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void srv_buf_puts(srv_buf *b, const char *s)
{
    srv_buf_put(b, s, strlen(s));
}

void srv_buf_string(srv_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    char e[6] = {'\\', 'u', '0', '0', 0, 0};

    srv_buf_put(b, "\"", 1);
    for (; *u; u++) {
        if (*u == '"' || *u == '\\') {
            e[4] = (char)*u;
            srv_buf_put(b, "\\", 1);
            srv_buf_put(b, e + 4, 1);
        } else if (*u < 0x20) {
            e[4] = hex[*u >> 4];
            e[5] = hex[*u & 15];
            srv_buf_put(b, e, 6);
        } else {
            srv_buf_put(b, (const char *)u, 1);
        }
    }
    srv_buf_put(b, "\"", 1);
}

/* ---- Numbers -------------------------------------------------------------- */

/* Writes the decimal digits of v (any uint64) at p; returns the count. */
static size_t put_uint(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

static double pow10_int(int k)
{
    static const double p[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,
                               1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
                               1e18, 1e19, 1e20, 1e21, 1e22};
    double r = 1.0;

    while (k > 22) {
        r *= 1e22;
        k -= 22;
    }
    return r * p[k];
}

/* Nine significant digits of ax > 0 (1e-290 < ax < 1e290): the digits go
 * to d[0..8], the decimal exponent of d[0] is returned.  The scaling costs
 * a few ulps, far below the 5e-9 of the last digit. */
static int nine_digits(double ax, char d[9])
{
    int e = (int)floor(log10(ax)), i;
    double m = 8 - e >= 0 ? ax * pow10_int(8 - e) : ax / pow10_int(e - 8);
    uint64_t v = (uint64_t)llround(m);

    if (v >= 1000000000u) {
        e++;
        v = (uint64_t)llround(m / 10);
    } else if (v < 100000000u) {
        e--;
        v = (uint64_t)llround(m * 10);
    }
    if (v >= 1000000000u) { /* m*10 or m/10 rounded up to the next decade */
        v /= 10;
        e++;
    }
    for (i = 8; i >= 0; i--) {
        d[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return e;
}

/* %g-style layout of nd significant digits d with decimal exponent e. */
static size_t layout(char *p, const char *d, int nd, int e)
{
    size_t n = 0;
    int i;

    if (e < -5 || e >= 15) {
        p[n++] = d[0];
        if (nd > 1) {
            p[n++] = '.';
            for (i = 1; i < nd; i++)
                p[n++] = d[i];
        }
        p[n++] = 'e';
        p[n++] = e < 0 ? '-' : '+';
        return n + put_uint(p + n, (uint64_t)(e < 0 ? -e : e));
    }
    if (e < 0) {
        p[n++] = '0';
        p[n++] = '.';
        for (i = -1; i > e; i--)
            p[n++] = '0';
        for (i = 0; i < nd; i++)
            p[n++] = d[i];
        return n;
    }
    for (i = 0; i <= e; i++)
        p[n++] = i < nd ? d[i] : '0';
    if (nd > e + 1) {
        p[n++] = '.';
        for (i = e + 1; i < nd; i++)
            p[n++] = d[i];
    }
    return n;
}

static size_t format_float32(char *p, double x)
{
    double ax = fabs(x);
    char d[9];
    int e, nd = 9;
    size_t n = 0;

    if (ax < 1e-290 || ax > 1e290)
        return (size_t)snprintf(p, NUMBER_ROOM, "%.9g", x);
    e = nine_digits(ax, d);
    while (nd > 1 && d[nd - 1] == '0')
        nd--;
    if (x < 0)
        p[n++] = '-';
    return n + layout(p + n, d, nd, e);
}

/* Writes x at p (at most NUMBER_ROOM - 1 bytes); returns the length. */
static size_t format_number(char *p, double x, int f64)
{
    size_t n = 0;

    if (!isfinite(x)) {
        memcpy(p, "null", 4);
        return 4;
    }
    if (x == 0) {
        p[0] = '0';
        return 1;
    }
    if (fabs(x) < 9007199254740992.0 && x == (double)(int64_t)x) {
        int64_t i = (int64_t)x;
        if (i < 0)
            p[n++] = '-';
        return n + put_uint(p + n, (uint64_t)(i < 0 ? -i : i));
    }
    if (f64)
        return (size_t)snprintf(p, NUMBER_ROOM, "%.17g", x);
    return format_float32(p, x);
}

void srv_buf_number(srv_buf *b, double x, int f64)
{
    if (reserve(b, NUMBER_ROOM) != 0)
        return;
    b->len += format_number(b->p + b->len, x, f64);
}

void srv_buf_numbers(srv_buf *b, const double *x, size_t n, int f64)
{
    size_t i;

    srv_buf_put(b, "[", 1);
    for (i = 0; i < n; i++) {
        if (reserve(b, NUMBER_ROOM + 1) != 0)
            return;
        if (i)
            b->p[b->len++] = ',';
        b->len += format_number(b->p + b->len, x[i], f64);
    }
    srv_buf_put(b, "]", 1);
}

/* ---- The response --------------------------------------------------------- */

/* An array in the shape of tensor t: [n], [n][k], or layers of [n][w_l]. */
static void put_shaped(srv_buf *b, const double *x, const srv_tensor *t,
                       int f64)
{
    size_t i, l, rows, w;

    if (t->rank == 1) {
        srv_buf_numbers(b, x, t->dim[0], f64);
        return;
    }
    if (t->rank == 3)
        srv_buf_put(b, "[", 1);
    for (l = 0; l < (t->rank == 3 ? t->dim[0] : 1); l++) {
        rows = t->rank == 3 ? t->dim[1] : t->dim[0];
        w = t->rank == 3 ? t->width[l] : t->dim[1];
        srv_buf_put(b, l ? ",[" : "[", l ? 2 : 1);
        for (i = 0; i < rows; i++, x += w) {
            if (i)
                srv_buf_put(b, ",", 1);
            srv_buf_numbers(b, x, w, f64);
        }
        srv_buf_put(b, "]", 1);
    }
    if (t->rank == 3)
        srv_buf_put(b, "]", 1);
}

static void put_key(srv_buf *b, const char *key, int first)
{
    if (!first)
        srv_buf_put(b, ",", 1);
    srv_buf_string(b, key);
    srv_buf_put(b, ":", 1);
}

static void put_gradients(srv_buf *b, const srv_request *rq,
                          const srv_result *rs)
{
    const srv_loss *L = rq->loss;
    size_t i;
    int first = 1;

    srv_buf_puts(b, ",\"gradients\":{");
    for (i = 0; i < L->ninputs; i++) {
        if (rs->grad[i] == NULL)
            continue;
        put_key(b, L->inputs[i].name, first);
        put_shaped(b, rs->grad[i], &rq->in[i], rq->float64);
        first = 0;
    }
    srv_buf_put(b, "}", 1);
}

static void put_metrics(srv_buf *b, const srv_request *rq,
                        const srv_result *rs)
{
    size_t i;

    srv_buf_puts(b, ",\"metrics\":{");
    for (i = 0; rq->loss->metrics[i]; i++) {
        put_key(b, rq->loss->metrics[i], i == 0);
        srv_buf_number(b, rs->metric[i], rq->float64);
    }
    srv_buf_put(b, "}", 1);
}

static void put_generator(srv_buf *b, const srv_request *rq,
                          const srv_result *rs)
{
    const srv_loss *L = rq->loss;
    size_t i;

    srv_buf_puts(b, ",\"generator\":{\"loss\":");
    srv_buf_number(b, rs->gen_loss, rq->float64);
    if (rs->gen_grad) {
        for (i = 0; i < L->ninputs; i++)
            if (strcmp(L->inputs[i].name, L->generator_grad) == 0)
                break;
        srv_buf_puts(b, ",\"gradients\":{");
        put_key(b, L->generator_grad, 1);
        put_shaped(b, rs->gen_grad, &rq->in[i], rq->float64);
        srv_buf_put(b, "}", 1);
    }
    srv_buf_put(b, "}", 1);
}

int srv_response_write(srv_buf *b, const srv_request *rq,
                       const srv_result *rs)
{
    srv_buf_puts(b, "{\"loss\":");
    srv_buf_number(b, rs->loss, rq->float64);
    if (rs->per_sample) {
        srv_buf_puts(b, ",\"per_sample\":");
        srv_buf_numbers(b, rs->per_sample, rs->per_sample_n, rq->float64);
    }
    if (rq->gradients)
        put_gradients(b, rq, rs);
    put_metrics(b, rq, rs);
    if (rq->loss->generator_grad)
        put_generator(b, rq, rs);
    srv_buf_put(b, "}", 1);
    return b->oom ? -1 : 0;
}
