/* json_out.c -- response bodies out, written directly into a growable
 * buffer.  Number formatting is the hot path for large gradients, so it is
 * done by hand: integers digit by digit, other numbers by scaling with an
 * exact double-double power of ten and keeping the fewest digits that stay
 * within the precision's tolerance (float64: reads back as the same double;
 * float32: within 5e-8 relative).  snprintf is left for magnitudes beyond
 * 1e+-280. */
#include "json_out.h"

#include "json_pow10.h"

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

/* ---- Numbers ------------------------------------------------------------- */

/* "00" to "99", two characters each. */
static const char digit_pairs[] = "0001020304050607080910111213141516171819"
                                  "2021222324252627282930313233343536373839"
                                  "4041424344454647484950515253545556575859"
                                  "6061626364656667686970717273747576777879"
                                  "8081828384858687888990919293949596979899";

/* Writes the decimal digits of v (any uint64) at p; returns the count.
 * The count first, then two digits per division from the right. */
static size_t put_uint(char *p, uint64_t v)
{
    size_t n = 1, at;
    uint64_t t = v;

    while (t >= 100) {
        t /= 100;
        n += 2;
    }
    n += t >= 10;
    at = n;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        at -= 2;
        p[at] = digit_pairs[2 * r];
        p[at + 1] = digit_pairs[2 * r + 1];
    }
    if (v >= 10) {
        p[0] = digit_pairs[2 * v];
        p[1] = digit_pairs[2 * v + 1];
    } else {
        p[0] = (char)('0' + v);
    }
    return n;
}

static const int64_t pow10_i64[] = {1,
                                    10,
                                    100,
                                    1000,
                                    10000,
                                    100000,
                                    1000000,
                                    10000000,
                                    100000000,
                                    1000000000,
                                    10000000000,
                                    100000000000,
                                    1000000000000,
                                    10000000000000,
                                    100000000000000,
                                    1000000000000000,
                                    10000000000000000,
                                    100000000000000000,
                                    1000000000000000000};

/* ax * 10^k = *whole + *frac, the product carried in two doubles (an FMA
 * recovers the rounding error of hi * ax), so *whole + *frac is accurate to
 * about 1e-30 relative. */
static void scale10(double ax, int k, int64_t *whole, double *frac)
{
    const double *p = srv_pow10[k - SRV_POW10_MIN];
    double hi = ax * p[0], lo = fma(ax, p[0], -hi) + ax * p[1];
    double fl = (double)(int64_t)hi; /* floor: hi > 0 */

    *whole = (int64_t)fl;
    *frac = (hi - fl) + lo;
}

/* floor(log10(ax)) for 1e-280 <= ax <= 1e280, without calling log10: the
 * binary exponent e2 gives floor(e2 * log10(2)) (as e2 * 78913 / 2^18,
 * exact for |e2| < 1650), which is the answer or one less; a comparison
 * with the next power of ten decides.  Where ax is within rounding of a
 * power of ten the result may still be one off, which the caller's range
 * check corrects. */
static int decimal_exponent(double ax)
{
    uint64_t bits;
    int e2, e;

    memcpy(&bits, &ax, sizeof bits);
    e2 = (int)((bits >> 52) & 0x7ff) - 1023;
    e = e2 >= 0 ? (e2 * 78913) >> 18 : -((-e2 * 78913 + (1 << 18) - 1) >> 18);
    return ax >= srv_pow10[e + 1 - SRV_POW10_MIN][0] ? e + 1 : e;
}

/* llround(f) for |f| < 2^62, without the call. */
static int64_t round_half_away(double f)
{
    int64_t r = (int64_t)f;
    double rem = f - (double)r;

    return r + (rem >= 0.5) - (rem <= -0.5);
}

/* v / 10^j, with the divisor a constant the compiler turns into a
 * multiplication. */
static uint64_t div_pow10(uint64_t v, int j)
{
    switch (j) {
    case 1:
        return v / 10u;
    case 2:
        return v / 100u;
    case 3:
        return v / 1000u;
    case 4:
        return v / 10000u;
    case 5:
        return v / 100000u;
    case 6:
        return v / 1000000u;
    case 7:
        return v / 10000000u;
    case 8:
        return v / 100000000u;
    default:
        return v / (uint64_t)pow10_i64[j];
    }
}

/* How far, in units of the last of sig digits, a decimal may sit from x
 * and still read back as x: half the gap to the nearer neighbouring double
 * (a power of two has a closer neighbour below), less a safety margin. */
static double round_trip_slack(double ax, int k)
{
    int e2;
    double f = frexp(ax, &e2), half = ldexp(1.0, e2 - 54);

    if (f == 0.5)
        half *= 0.5;
    return half * srv_pow10[k - SRV_POW10_MIN][0] * (1 - 1e-9);
}

/* The digits of ax (1e-280 <= ax <= 1e280): as few significant digits as
 * stay within slack of it, at most sig (17 round-trips every double; 9 is
 * within 5e-9 for float32 output).  Writes them to d (no trailing zeros),
 * returns their count and the decimal exponent of the first in *exp10.
 *
 * Method: m = ax * 10^(sig-1-e) scaled into [10^(sig-1), 10^sig) in double-
 * double, rounded to an integer (within 0.5 + 1e-14 units, always inside
 * the slack), then shortened one digit at a time while the rounded
 * shorter integer, times its power of ten, stays within the slack of m. */
static int shortest_digits(double ax, int sig, int f64, char *d, int *exp10)
{
    int e = decimal_exponent(ax), k, j, nd, kept = sig;
    int64_t whole, full, v, c;
    double frac, slack;

    k = sig - 1 - e;
    scale10(ax, k, &whole, &frac);
    if (whole >= pow10_i64[sig] || whole < pow10_i64[sig - 1]) {
        e += whole >= pow10_i64[sig] ? 1 : -1;
        k = sig - 1 - e;
        scale10(ax, k, &whole, &frac);
    }
    slack = f64 ? round_trip_slack(ax, k) : 5e-8 * ((double)whole + frac);
    full = v = whole + round_half_away(frac);
    for (j = 1; j < sig; j++) {
        c = (int64_t)div_pow10((uint64_t)full + (uint64_t)pow10_i64[j] / 2, j);
        if (!(fabs((double)(c * pow10_i64[j] - whole) - frac) <= slack))
            break;
        v = c;
        kept = sig - j;
    }
    nd = (int)put_uint(d, (uint64_t)v);
    *exp10 = e + (nd - kept);
    while (nd > 1 && d[nd - 1] == '0')
        nd--;
    return nd;
}

/* %g-style layout of nd significant digits d with decimal exponent e. */
static size_t layout(char *p, const char *d, int nd, int e)
{
    size_t n = 0;
    int i;

    if (e < -5 || e >= 17) {
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

/* A finite non-zero x that is not a small integer. */
static size_t format_real(char *p, double x, int f64)
{
    double ax = fabs(x);
    char d[20];
    int e, nd;
    size_t n = 0;

    if (ax < 1e-280 || ax > 1e280)
        return (size_t)snprintf(p, NUMBER_ROOM, f64 ? "%.17g" : "%.9g", x);
    nd = shortest_digits(ax, f64 ? 17 : 9, f64, d, &e);
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
    return format_real(p, x, f64);
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

/* ---- The response -------------------------------------------------------- */

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

static void put_metrics(srv_buf *b, const srv_request *rq, const srv_result *rs)
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

/* An estimate (SRV_L_ESTIMATE): the method used, the metrics, the effective
 * parameters that apply (a NaN one does not and is left out) and each
 * input's number of samples as n_<input>. */
static int estimate_write(srv_buf *b, const srv_request *rq,
                          const srv_result *rs)
{
    const srv_loss *L = rq->loss;
    size_t i, nm = 0;
    int first = 1;

    srv_buf_puts(b, "{\"method\":");
    srv_buf_string(b, rs->method ? rs->method : "");
    put_metrics(b, rq, rs);
    while (L->metrics[nm])
        nm++;
    srv_buf_puts(b, ",\"parameters\":{");
    for (i = 0; L->effective && L->effective[i]; i++) {
        if (isnan(rs->metric[nm + i]))
            continue;
        put_key(b, L->effective[i], first);
        srv_buf_number(b, rs->metric[nm + i], rq->float64);
        first = 0;
    }
    srv_buf_put(b, "}", 1);
    for (i = 0; i < L->ninputs; i++) {
        srv_buf_puts(b, ",\"n_");
        srv_buf_puts(b, L->inputs[i].name);
        srv_buf_puts(b, "\":");
        srv_buf_number(b, (double)rq->in[i].dim[0], 1);
    }
    srv_buf_put(b, "}", 1);
    return b->oom ? -1 : 0;
}

int srv_response_write(srv_buf *b, const srv_request *rq, const srv_result *rs)
{
    if (rq->loss->flags & SRV_L_ESTIMATE)
        return estimate_write(b, rq, rs);
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
