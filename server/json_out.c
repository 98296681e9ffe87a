/* json_out.c -- response bodies out, written directly into a growable
 * buffer.  Number formatting is the hot path for gradients, so it is done
 * by hand, in integer arithmetic with the 128-bit powers of ten of
 * json_pow10.h: integers digit by digit; float64 as the shortest decimal
 * that reads back as the same double (Schubfach); float32 as the fewest
 * digits, at most nine, within 5e-8 relative (arrays of them four at a
 * time, where the CPU has AVX2). */
#include "json_out.h"

#include "arena.h"
#include "json_pow10.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

/* Room that any single number needs: the longest is 24 bytes, but the
 * writers store whole blocks of digits past the end (layout()). */
#define NUMBER_ROOM 40

void srv_buf_init(srv_buf *b, size_t cap)
{
    b->len = 0;
    b->oom = 0;
    b->cap = cap ? cap : 64;
    b->p = srv_huge_malloc(b->cap);
    if (b->p == NULL) {
        b->cap = 0;
        b->oom = 1;
    }
}

void srv_buf_adopt(srv_buf *b, char *p, size_t cap)
{
    b->p = p;
    b->len = 0;
    b->cap = cap;
    b->oom = 0;
}

void srv_buf_init_in(srv_buf *b, size_t cap, srv_buf *spare)
{
    if (spare->p != NULL && spare->cap >= cap) {
        srv_buf_adopt(b, spare->p, spare->cap);
        spare->p = NULL;
        spare->len = spare->cap = 0;
        return;
    }
    srv_buf_free(spare);
    srv_buf_init(b, cap);
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

/* The length of the well-formed UTF-8 sequence at u (RFC 3629: no
 * overlong forms, surrogates or code points past U+10FFFF), 0 when there
 * is none; u[0] >= 0x80 and the string is NUL-terminated. */
static size_t utf8_length(const unsigned char *u)
{
    unsigned lo = 0x80, hi = 0xbf;
    size_t n, i;

    if (u[0] >= 0xc2 && u[0] <= 0xdf)
        n = 2;
    else if (u[0] >= 0xe0 && u[0] <= 0xef)
        n = 3;
    else if (u[0] >= 0xf0 && u[0] <= 0xf4)
        n = 4;
    else
        return 0;
    if (u[0] == 0xe0)
        lo = 0xa0; /* overlong */
    else if (u[0] == 0xed)
        hi = 0x9f; /* surrogates */
    else if (u[0] == 0xf0)
        lo = 0x90; /* overlong */
    else if (u[0] == 0xf4)
        hi = 0x8f; /* past U+10FFFF */
    if (u[1] < lo || u[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (u[i] < 0x80 || u[i] > 0xbf)
            return 0;
    return n;
}

/* A JSON string of s; a byte that does not begin well-formed UTF-8 (an
 * echoed key of raw bytes, a message cut inside a character) becomes
 * U+FFFD, so that every body is valid UTF-8. */
void srv_buf_string(srv_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    char e[6] = {'\\', 'u', '0', '0', 0, 0};
    size_t n;

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
        } else if (*u < 0x80) {
            srv_buf_put(b, (const char *)u, 1);
        } else if ((n = utf8_length(u)) == 0) {
            srv_buf_puts(b, "\\ufffd");
        } else {
            srv_buf_put(b, (const char *)u, n);
            u += n - 1;
        }
    }
    srv_buf_put(b, "\"", 1);
}

/* ---- Numbers ------------------------------------------------------------- */

#if !defined(__SIZEOF_INT128__)
#error "json_out.c needs unsigned __int128 (gcc or clang, 64-bit target)"
#endif
__extension__ typedef unsigned __int128 u128;

/* "00" to "99", two characters each. */
static const char digit_pairs[] = "0001020304050607080910111213141516171819"
                                  "2021222324252627282930313233343536373839"
                                  "4041424344454647484950515253545556575859"
                                  "6061626364656667686970717273747576777879"
                                  "8081828384858687888990919293949596979899";

static const uint64_t pow10_u64[] = {1u,
                                     10u,
                                     100u,
                                     1000u,
                                     10000u,
                                     100000u,
                                     1000000u,
                                     10000000u,
                                     100000000u,
                                     1000000000u,
                                     10000000000u,
                                     100000000000u,
                                     1000000000000u,
                                     10000000000000u,
                                     100000000000000u,
                                     1000000000000000u,
                                     10000000000000000u,
                                     100000000000000000u,
                                     1000000000000000000u,
                                     10000000000000000000u};

/* The number of decimal digits of v, without a loop: from its bit length
 * b, floor(b * log10(2)) (as b * 1233 / 2^12) is the count or one less. */
static int count_digits(uint64_t v)
{
    int t = ((64 - __builtin_clzll(v | 1)) * 1233) >> 12;

    return t + (v >= pow10_u64[t]);
}

/* The eight decimal digits of v < 10^8 as byte values 0-9, the first in
 * the lowest byte: v split into two lanes of four digits, then each lane
 * into two of two, then into single digits, every lane divided at once
 * by one multiplication (x * 10486 >> 20 is x / 100 for x < 10^4, and
 * x * 103 >> 10 is x / 10 for x < 100). */
static inline uint64_t digits8(uint32_t v)
{
    uint64_t x = v / 10000 | (uint64_t)(v % 10000) << 32, y;

    y = ((x * 10486) >> 20) & 0x0000007f0000007fu;
    x = y | (x - y * 100) << 16;
    y = ((x * 103) >> 10) & 0x000f000f000f000fu;
    return y | (x - y * 10) << 8;
}

/* 8 bytes at p, the lowest byte of v first. */
static void store8(char *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, sizeof v);
#else
    int i;

    for (i = 0; i < 8; i++)
        p[i] = (char)(v >> (8 * i));
#endif
}

/* 16 bytes at p, the lowest byte of v first. */
static void store16(char *p, u128 v)
{
    store8(p, (uint64_t)v);
    store8(p + 8, (uint64_t)(v >> 64));
}

/* The significant digits of an integer 0 < f < 10^17, built in
 * registers (a digit string written byte by byte and read back in blocks
 * would stall on store forwarding). */
typedef struct digit_str {
    char first; /* the first digit */
    u128 rest;  /* the next 16, characters from the lowest byte, '0' past n */
    int n;      /* the number of digits */
    int nd;     /* the number of digits without the trailing zeros */
} digit_str;

static inline digit_str split_digits(uint64_t f)
{
    const uint64_t zeros = 0x3030303030303030u;
    uint64_t hi = f / 100000000;
    u128 a = (u128)digits8((uint32_t)(f % 100000000)) << 64 |
             digits8((uint32_t)(hi % 100000000));
    uint64_t ahi = (uint64_t)(a >> 64), alo = (uint64_t)a;
    digit_str d;
    int lz, tz;

    /* a holds digits 2..17 of f written with seventeen; skip the lz
     * leading zeros. */
    d.n = count_digits(f);
    lz = 17 - d.n;
    if (lz == 0) {
        d.first = (char)('0' + hi / 100000000);
        d.rest = a;
    } else {
        a >>= 8 * lz - 8;
        d.first = (char)('0' + (a & 0xff));
        d.rest = a >> 8;
    }
    d.rest += (u128)zeros << 64 | zeros;
    tz = ahi ? __builtin_clzll(ahi) >> 3
             : (alo ? 8 + (__builtin_clzll(alo) >> 3) : 16);
    d.nd = d.n - tz;
    return d;
}

/* The exponent 0 <= x < 1000 at p; returns its length. */
static size_t put_exponent(char *p, unsigned x)
{
    if (x >= 100) {
        p[0] = (char)('0' + x / 100);
        memcpy(p + 1, digit_pairs + 2 * (x % 100), 2);
        return 3;
    }
    if (x >= 10) {
        memcpy(p, digit_pairs + 2 * x, 2);
        return 2;
    }
    p[0] = (char)('0' + x);
    return 1;
}

/* %g-style layout of the digits d with decimal exponent e (of the first
 * digit): plain for -5 <= e < 17, else d.ddde+-x.  Stores up to 33 bytes
 * at p, some past the returned length. */
static inline size_t layout(char *p, const digit_str *d, int e)
{
    size_t n = 1;

    if (e < -5 || e >= 17) {
        p[0] = d->first;
        p[1] = '.';
        store16(p + 2, d->rest);
        if (d->nd > 1)
            n = (size_t)d->nd + 1;
        p[n++] = 'e';
        p[n++] = e < 0 ? '-' : '+';
        return n + put_exponent(p + n, (unsigned)(e < 0 ? -e : e));
    }
    if (e < 0) {
        memcpy(p, "0.000000", 8);
        p[1 - e] = d->first;
        store16(p + 2 - e, d->rest);
        return (size_t)(1 - e + d->nd);
    }
    p[0] = d->first;
    store16(p + 1, d->rest);
    if (d->nd <= e + 1)
        return (size_t)e + 1;
    p[e + 1] = '.';
    store16(p + e + 2, d->rest >> (8 * e));
    return (size_t)d->nd + 1;
}

/* The number f * 10^k (0 < f < 10^17), with a '-' when neg. */
static size_t put_decimal(char *p, int neg, uint64_t f, int k)
{
    digit_str d = split_digits(f);

    p[0] = '-';
    return (size_t)neg + layout(p + neg, &d, k + d.n - 1);
}

/* floor(x / 2^s), whatever the sign of x (>> of a negative value is
 * implementation-defined in C). */
static int64_t floor_shift(int64_t x, int s)
{
    return x >= 0 ? x >> s : ~(~x >> s);
}

/* floor(log10(2^e)), floor(log10(3/4 * 2^e)) and floor(log2(10^e)), by
 * fixed-point multiplication, exact over the exponents of doubles
 * (Giulietti, cited below; checked for the whole range there). */
static int flog10_pow2(int e)
{
    return (int)floor_shift((int64_t)e * 661971961083, 41);
}

static int flog10_three_quarters_pow2(int e)
{
    return (int)floor_shift((int64_t)e * 661971961083 - 274743187321, 41);
}

static int flog2_pow10(int e)
{
    return (int)floor_shift((int64_t)e * 913124641741, 38);
}

/* Rounded to odd: (g1 * 2^63 + g0) * cp / 2^127 with its integer part
 * exact and its fraction reduced to one sticky bit (g1, g0 and cp below
 * 2^63). */
static uint64_t round_to_odd(uint64_t g1, uint64_t g0, uint64_t cp)
{
    uint64_t x1 = (uint64_t)(((u128)g0 * cp) >> 64);
    u128 y = (u128)g1 * cp;
    uint64_t z = ((uint64_t)y >> 1) + x1;
    uint64_t vbp = (uint64_t)(y >> 64) + (z >> 63);
    const uint64_t mask63 = 0x7fffffffffffffffu;

    return vbp | (((z & mask63) + mask63) >> 63);
}

/* The shortest decimal f * 10^*k strictly inside the rounding interval of
 * v = c * 2^q (so it reads back as v), the closest to v of those (ties to
 * even f).
 *
 * Method: Schubfach (R. Giulietti, "The Schubfach way to render doubles",
 * 2021; the algorithm of Java's Double.toString since JDK 19), with two
 * changes for the shortest output: Java wants at least two digits (its
 * guard s >= 100 and its 10c for c < 3 are left out), and the interval's
 * ends are always excluded, also for even c, where round-half-even would
 * read them back as v: a decimal exactly halfway between two doubles
 * depends on the reader's tie rule (1e23 lies halfway; its double is
 * written 9.999999999999999e+22).  The interval is (v - 2^(q-1),
 * v + 2^(q-1)), or from v - 2^(q-2) at a power of two.  With k =
 * floor(log10(2^q)) (of 3/4 2^q at a power of two) it is narrower than
 * 10^(k+1), so at most one multiple of 10^(k+1) lies in it: if one does,
 * it is the shortest (its trailing zeros are dropped later); otherwise
 * the shortest are multiples of 10^k, of which s and s + 1 = t bracket v
 * and one at least lies inside, since the interval is wider than 10^k:
 * the one inside, or the nearer.  4v / 10^k and the ends are computed as
 * round_to_odd of 4c * 2^q times g ~ 10^-k (126 bits, from json_pow10.h),
 * which is exact for every comparison made (Giulietti, section 9).
 *
 * Accuracy: exact; every finite double reads back as itself. */
static uint64_t shortest(uint64_t c, int q, int *k10)
{
    const uint64_t out = 1, cb = c << 2, cbr = cb + 2; /* ends excluded */
    uint64_t cbl, g1, g0, vb, vbl, vbr, s, t, sp10, tp10;
    int k, h, uin, win;
    u128 g;

    if (c != ((uint64_t)1 << 52) || q == -1074) {
        cbl = cb - 2;
        k = flog10_pow2(q);
    } else {
        cbl = cb - 1;
        k = flog10_three_quarters_pow2(q);
    }
    h = q + flog2_pow10(-k) + 2;
    g = (((u128)srv_pow10_128[-k - SRV_POW10_128_MIN][0] << 64 |
          srv_pow10_128[-k - SRV_POW10_128_MIN][1]) >>
         2) +
        1;
    g1 = (uint64_t)(g >> 63);
    g0 = (uint64_t)g & 0x7fffffffffffffffu;
    vb = round_to_odd(g1, g0, cb << h);
    vbl = round_to_odd(g1, g0, cbl << h);
    vbr = round_to_odd(g1, g0, cbr << h);
    s = vb >> 2;
    *k10 = k;
    sp10 = s / 10 * 10;
    tp10 = sp10 + 10;
    uin = vbl + out <= sp10 << 2;
    win = (tp10 << 2) + out <= vbr;
    if (uin != win)
        return uin ? sp10 : tp10;
    t = s + 1;
    uin = vbl + out <= s << 2;
    win = (t << 2) + out <= vbr;
    if (uin != win)
        return uin ? s : t;
    if (vb < (s + t) << 1 || (vb == (s + t) << 1 && (s & 1) == 0))
        return s;
    return t;
}

/* float32 output: the digit first, then the eight of a (byte values 0-9,
 * the first in the lowest byte), the first with decimal exponent e, and a
 * '-' when neg.  The usual form of a gradient, d.dddddddde-x, is written
 * in whole words; the others by layout(). */
static inline size_t put_f32(char *p, int neg, unsigned first, uint64_t a,
                             int e)
{
    const uint64_t zeros = 0x3030303030303030u;
    digit_str d;
    size_t n;

    d.first = (char)('0' + first);
    d.rest = (u128)zeros << 64 | (a + zeros);
    d.n = 9;
    d.nd = 9 - (a ? __builtin_clzll(a) >> 3 : 8);
    p[0] = '-';
    p += neg;
    if (e < -5 || e >= 17) {
        p[0] = d.first;
        p[1] = '.';
        store8(p + 2, a + zeros);
        n = d.nd > 1 ? (size_t)d.nd + 1 : 1;
        p[n] = 'e';
        p[n + 1] = e < 0 ? '-' : '+';
        return (size_t)neg + n + 2 +
               put_exponent(p + n + 2, (unsigned)(e < 0 ? -e : e));
    }
    return (size_t)neg + layout(p, &d, e);
}

/* float32 output of c * 2^q (c a normalised 53-bit significand): as few
 * significant digits as stay within 5e-8 relative of it, at most nine.
 *
 * Method: m = v * 10^(8-e), e = floor(log10(v)), lies in [1e8, 1e9);
 * m is rounded (half up) to the integer full, which is then shortened
 * one digit at a time, each time rounding full (half up) to j fewer
 * digits, to x_j, while x_j stays within T = 5e-8 m of m.  m is carried
 * in fixed point, 64 fraction bits, from c times the 128-bit 10^(8-e) of
 * json_pow10.h (truncated: low by under 2^-70 relative), so every
 * comparison is exact to far below the tolerance.  e is first taken as
 * floor(log10(2^(q+52))), which is e or one less; in that case m is in
 * [1e9, 2e9), and the same steps work on m / 10 (up = 1: full and x_j
 * count tens of m, s = 10; else s = 1).
 *
 * Only the first two steps can change the digits: the shortening stops
 * at x_J, J the last step that passes, and x_J = x_2 when J > 2.  For
 * up = 0, |full - m| <= 1/2 and T < 50, so a passing x_j is within 50 of
 * full; for j >= 4 it is then also the multiple of 10^(j-1) nearest full,
 * x_(j-1) = x_j; for j = 3 too, unless full = x_3 + 50 and x_2 = x_3 +
 * 100, which cannot both be within T < 50 of m.  For up = 1, |10 full -
 * m| <= 5 and T < 100: a passing x_j is within 10 of full, and x_(j-1) =
 * x_j for j >= 3.  The trailing zeros of x_J are dropped anyway, so x_2
 * gives the same digits (and is 10^9 when x_J is).
 *
 * The test |s x - m| <= T of an integer s x is, with M = m 2^64 the
 * fixed-point value, exactly lo <= s x <= hi for
 *
 *   lo = ceil(M * 19999999 / (2e7 * 2^64)),
 *   hi = floor(M * 20000001 / (2e7 * 2^64))
 *
 * (s x 2^64 >= M gives s x >= lo anyway, and s x 2^64 < M gives s x <=
 * hi); the nested floor (ceil) of M * K / 2^64, then / 2e7, is the same
 * integer (lo <= hi, as m >= 1e8; s x - lo <= hi - lo tests both ends
 * in one unsigned comparison).  So both steps are taken at once, without
 * a branch on their outcome.
 *
 * Accuracy: within 5e-8 relative (half a unit of the ninth digit is at
 * most 5e-9), so within float32's own rounding (6e-8). */
static size_t format_f32(char *p, int neg, uint64_t c, int q)
{
    const uint64_t klo = 19999999, khi = 20000001;
    int e, k, up;
    const uint64_t *t;
    uint64_t full, x1, x2, g, mh, ml, lo, hi, s;
    int p1, p2;
    u128 m;

    while (c < ((uint64_t)1 << 52)) {
        c <<= 1;
        q--;
    }
    e = flog10_pow2(q + 52);
    k = 8 - e;
    t = srv_pow10_128[k - SRV_POW10_128_MIN];
    m = ((u128)c * t[0] + (((u128)c * t[1]) >> 64)) >>
        (-1 - q - flog2_pow10(k));
    mh = (uint64_t)(m >> 64);
    ml = (uint64_t)m;
    up = mh >= 1000000000;
    e += up;
    /* up ? (mh + 5) / 10 : m rounded, as a mask: up is unpredictable */
    full = mh + (ml >> 63);
    full ^= ((mh + 5) / 10 ^ full) & (0 - (uint64_t)up);
    s = 1 + 9 * (uint64_t)up;
    hi = (mh * khi + (uint64_t)(((u128)ml * khi) >> 64)) / 20000000;
    lo = mh * klo + (uint64_t)(((u128)ml * klo) >> 64) +
         ((uint64_t)((u128)ml * klo) != 0);
    lo = (lo + 19999999) / 20000000;
    x1 = (full + 5) / 10 * 10;
    x2 = (full + 50) / 100 * 100;
    p1 = x1 * s - lo <= hi - lo;
    p2 = x2 * s - lo <= hi - lo;
    g = p1 ? (p2 ? x2 : x1) : full;
    /* nine digits, or 10^9: then 1, one place up */
    if (g == 1000000000) {
        g = 100000000;
        e++;
    }
    return put_f32(p, neg, (unsigned)(g / 100000000),
                   digits8((uint32_t)(g % 100000000)), e);
}

/* A finite non-zero x that is not a small integer. */
static size_t format_real(char *p, double x, int f64)
{
    uint64_t bits, c, f;
    int q, neg, k;

    memcpy(&bits, &x, sizeof bits);
    neg = (int)(bits >> 63);
    c = bits & 0x000fffffffffffffu;
    q = (int)((bits >> 52) & 0x7ff);
    if (q != 0) {
        c |= (uint64_t)1 << 52;
        q -= 1075;
    } else {
        q = -1074;
    }
    if (!f64)
        return format_f32(p, neg, c, q);
    f = shortest(c, q, &k);
    return put_decimal(p, neg, f, k);
}

size_t srv_put_uint(char *p, uint64_t v)
{
    const uint64_t e16 = 10000000000000000u;
    size_t n;
    digit_str d;

    if (v == 0) {
        p[0] = '0';
        return 1;
    }
    if (v >= 10 * e16) {
        /* The leading digits, then sixteen more: those of 10^16 + the
         * rest, whose first digit, the 1, is dropped. */
        n = srv_put_uint(p, v / e16);
        d = split_digits(v % e16 + e16);
        store16(p + n, d.rest);
        return n + 16;
    }
    d = split_digits(v);
    p[0] = d.first;
    store16(p + 1, d.rest);
    return (size_t)d.n;
}

/* Writes x at p (at most NUMBER_ROOM bytes stored, fewer returned);
 * returns the length. */
static size_t format_number(char *p, double x, int f64)
{
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
        p[0] = '-';
        return (size_t)(i < 0) +
               srv_put_uint(p + (i < 0), (uint64_t)(i < 0 ? -i : i));
    }
    return format_real(p, x, f64);
}

void srv_buf_number(srv_buf *b, double x, int f64)
{
    if (reserve(b, NUMBER_ROOM) != 0)
        return;
    b->len += format_number(b->p + b->len, x, f64);
}

/* ---- float32 arrays, four numbers at a time -----------------------------
 *
 * Where AVX2 is there (checked at run time), the digits of float32 output
 * are found for four numbers at once in double arithmetic, wherever that
 * is sure to decide as format_f32 does; a number it is not sure of, or
 * that is not written as float32 digits at all (zero, an integer, null),
 * is written one at a time.
 *
 * m = v * 10^(8-e) is one rounded product of |x| and the power (itself
 * the literal below, rounded to nearest), times 0.1 rounded when e was
 * first taken one too low: within 4e-16 relative of the exact m, so
 * under 4e-7 for m < 1e9.  Every decision is then taken on a quantity
 * computed exactly or nearly so: full = floor(m + 1/2), with m - full
 * exact; x_j = floor((full + 5 10^(j-1)) / 10^j) 10^j exactly (the
 * quotient is an integer, or at least 1/100 from one); |x_j - m| exactly
 * and T = 5e-8 m within 1e-14.  Where each lies more than 2e-6 from its
 * threshold (1/2 for m - full, T for |x_j - m|), the error in m cannot
 * change the outcome, and the digits are those of format_f32; where one
 * does not, or m is within 1 of either end of [1e8, 1e9) (a margin kept
 * where format_f32 chooses e from its own m), or |x| is outside 1e-32 ..
 * 1e28, the number is written by format_f32.  That is 4 in 10^6 of
 * random non-integer doubles in that range (10^8 tried), and none of the
 * million gradients of the benchmark's softmax 1000x1000. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define F32_BLOCK 1

#define F32_KMIN (-20)
#define F32_KMAX 40
static const double f32_pow10[] = {
    1e-20, 1e-19, 1e-18, 1e-17, 1e-16, 1e-15, 1e-14, 1e-13, 1e-12, 1e-11, 1e-10,
    1e-9,  1e-8,  1e-7,  1e-6,  1e-5,  1e-4,  1e-3,  1e-2,  1e-1,  1e0,   1e1,
    1e2,   1e3,   1e4,   1e5,   1e6,   1e7,   1e8,   1e9,   1e10,  1e11,  1e12,
    1e13,  1e14,  1e15,  1e16,  1e17,  1e18,  1e19,  1e20,  1e21,  1e22,  1e23,
    1e24,  1e25,  1e26,  1e27,  1e28,  1e29,  1e30,  1e31,  1e32,  1e33,  1e34,
    1e35,  1e36,  1e37,  1e38,  1e39,  1e40};

/* The float32 digits of four numbers, as put_f32 takes them. */
typedef struct f32_block {
    uint64_t digits[4];
    int32_t first[4], e[4];
    int sure; /* bit j: number j was decided here */
} f32_block;

/* The lanes where |x - m| - t lies more than the margin from 0; in
 * *below, those where it is negative (x is within the tolerance t). */
__attribute__((target("avx2"))) static inline __m256d
f32_within(__m256d x, __m256d m, __m256d t, __m256d *below)
{
    const __m256d sign = _mm256_set1_pd(-0.0), margin = _mm256_set1_pd(2e-6);
    __m256d a = _mm256_sub_pd(_mm256_andnot_pd(sign, _mm256_sub_pd(x, m)), t);

    *below = _mm256_cmp_pd(a, _mm256_setzero_pd(), _CMP_LT_OQ);
    return _mm256_cmp_pd(_mm256_andnot_pd(sign, a), margin, _CMP_GT_OQ);
}

/* floor((x + h) / d) * d, for the rounding of full to fewer digits. */
__attribute__((target("avx2"))) static inline __m256d
f32_round_to(__m256d x, double h, double d)
{
    const __m256d dv = _mm256_set1_pd(d);

    return _mm256_mul_pd(
        _mm256_floor_pd(_mm256_div_pd(_mm256_add_pd(x, _mm256_set1_pd(h)), dv)),
        dv);
}

/* The eight digits of each 0 <= r < 10^8, as digits8() gives them. */
__attribute__((target("avx2"))) static inline __m256i f32_digits8(__m256d r)
{
    const __m256d e4 = _mm256_set1_pd(1e4);
    __m256d hi = _mm256_floor_pd(_mm256_div_pd(r, e4));
    __m128i h = _mm256_cvtpd_epi32(hi),
            l = _mm256_cvtpd_epi32(_mm256_sub_pd(r, _mm256_mul_pd(hi, e4)));
    /* 32-bit lanes of four digits, then 16-bit of two (x * 10486 >> 20 is
     * x / 100 below 10^4), then bytes of one (x * 103 >> 10 is x / 10
     * below 100) */
    __m256i w =
        _mm256_set_m128i(_mm_unpackhi_epi32(h, l), _mm_unpacklo_epi32(h, l));
    __m256i y =
        _mm256_srli_epi32(_mm256_mullo_epi32(w, _mm256_set1_epi32(10486)), 20);

    w = _mm256_sub_epi32(w, _mm256_mullo_epi32(y, _mm256_set1_epi32(100)));
    w = _mm256_or_si256(y, _mm256_slli_epi32(w, 16));
    y = _mm256_srli_epi16(_mm256_mullo_epi16(w, _mm256_set1_epi16(103)), 10);
    w = _mm256_sub_epi16(w, _mm256_mullo_epi16(y, _mm256_set1_epi16(10)));
    return _mm256_or_si256(y, _mm256_slli_epi16(w, 8));
}

/* The lanes where v (= |x|) has float32 digits: not an integer below
 * 2^53, nor zero, NaN or infinite (their exponents are out of range). */
__attribute__((target("avx2"))) static inline __m256d f32_real(__m256d v)
{
    __m256d big =
        _mm256_cmp_pd(v, _mm256_set1_pd(9007199254740992.0), _CMP_GE_OQ);
    __m256d frac = _mm256_cmp_pd(
        _mm256_round_pd(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC), v,
        _CMP_NEQ_UQ);

    return _mm256_or_pd(big, frac);
}

/* floor(log10(v)) or one less, from the exponent of v, and the index of
 * 10^(8 - that) in f32_pow10 (clamped; *ok: in range). */
__attribute__((target("avx2"))) static inline __m128i
f32_index(__m256d v, __m128i *e0, __m256d *ok)
{
    const __m256i magic = _mm256_set1_epi64x(0x4330000000000000);
    __m256i bits = _mm256_srli_epi64(_mm256_castpd_si256(v), 52);
    __m256d ex =
        _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(bits, magic)),
                      _mm256_set1_pd(4503599627370496.0 + 1023));
    __m128i k, kc;

    *e0 = _mm256_cvtpd_epi32(_mm256_floor_pd(
        _mm256_mul_pd(ex, _mm256_set1_pd(0.30102999566398120))));
    k = _mm_sub_epi32(_mm_set1_epi32(8 - F32_KMIN), *e0);
    kc = _mm_min_epi32(_mm_max_epi32(k, _mm_setzero_si128()),
                       _mm_set1_epi32(F32_KMAX - F32_KMIN));
    *ok = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_cmpeq_epi32(k, kc)));
    return kc;
}

/* The float32 digits of x[0..3] into *o, and which of them are sure. */
__attribute__((target("avx2"), noinline)) static void
f32_digits4(const double *x, f32_block *o)
{
    const __m256d half = _mm256_set1_pd(0.5), e8 = _mm256_set1_pd(1e8);
    __m256d v = _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_loadu_pd(x));
    __m256d ok, m, up, full, x1, x2, t, b1, b2, sure, g, top, first;
    __m128i e0, k = f32_index(v, &e0, &ok);

    m = _mm256_mul_pd(v, _mm256_i32gather_pd(f32_pow10, k, 8));
    up = _mm256_cmp_pd(m, _mm256_set1_pd(1e9), _CMP_GE_OQ);
    m = _mm256_blendv_pd(m, _mm256_mul_pd(m, _mm256_set1_pd(0.1)), up);
    full = _mm256_floor_pd(_mm256_add_pd(m, half));
    x1 = f32_round_to(full, 5, 10);
    x2 = f32_round_to(full, 50, 100);
    t = _mm256_mul_pd(m, _mm256_set1_pd(5e-8));
    sure = _mm256_and_pd(f32_within(x1, m, t, &b1), f32_within(x2, m, t, &b2));
    sure = _mm256_and_pd(sure, _mm256_and_pd(ok, f32_real(v)));
    sure = _mm256_and_pd(sure,
                         _mm256_cmp_pd(m, _mm256_set1_pd(1e8 + 1), _CMP_GE_OQ));
    sure = _mm256_and_pd(sure,
                         _mm256_cmp_pd(m, _mm256_set1_pd(1e9 - 1), _CMP_LT_OQ));
    sure = _mm256_and_pd(sure,
                         _mm256_cmp_pd(_mm256_andnot_pd(_mm256_set1_pd(-0.0),
                                                        _mm256_sub_pd(m, full)),
                                       _mm256_set1_pd(0.5 - 2e-6), _CMP_LT_OQ));
    g = _mm256_blendv_pd(full, _mm256_blendv_pd(x1, x2, b2), b1);
    /* 10^9 is 1, one place up */
    top = _mm256_cmp_pd(g, _mm256_set1_pd(1e9), _CMP_GE_OQ);
    g = _mm256_blendv_pd(g, e8, top);
    first = _mm256_floor_pd(_mm256_div_pd(g, e8));
    _mm256_storeu_si256(
        (__m256i *)o->digits,
        f32_digits8(_mm256_sub_pd(g, _mm256_mul_pd(first, e8))));
    _mm_storeu_si128((__m128i *)o->first, _mm256_cvtpd_epi32(first));
    /* e: e0, one more when m was taken down, one more for 10^9 */
    up = _mm256_add_pd(_mm256_and_pd(up, _mm256_set1_pd(1)),
                       _mm256_and_pd(top, _mm256_set1_pd(1)));
    _mm_storeu_si128((__m128i *)o->e,
                     _mm_add_epi32(e0, _mm256_cvtpd_epi32(up)));
    o->sure = _mm256_movemask_pd(sure);
}

/* Writes the first n - n % 4 numbers of x as float32, comma-separated;
 * returns how many, or SIZE_MAX when out of memory.  Only f32_digits4 is
 * AVX2 code, and it clears the upper halves of the registers on return
 * (vzeroupper): SSE code run with them dirty, as format_number would be
 * here, costs over a hundred cycles a number on some CPUs. */
static size_t numbers_f32_block(srv_buf *b, const double *x, size_t n)
{
    const size_t room = 4 * (NUMBER_ROOM + 1);
    f32_block o;
    size_t i, j;
    unsigned skip = 0;
    char *p;

    for (i = 0; i + 4 <= n; i += 4) {
        if ((b->oom || b->cap - b->len < room) && reserve(b, room) != 0)
            return SIZE_MAX;
        /* After four numbers none of which it decided (zeros, integers),
         * the next 28 are written without it: an array of integers would
         * pay for it and gain nothing. */
        if (skip) {
            skip--;
            o.sure = 0;
        } else {
            f32_digits4(x + i, &o);
            skip = o.sure ? 0 : 7;
        }
        p = b->p + b->len;
        for (j = 0; j < 4; j++) {
            *p = ',';
            p += i + j != 0;
            if (o.sure >> j & 1)
                p += put_f32(p, signbit(x[i + j]) != 0, (unsigned)o.first[j],
                             o.digits[j], o.e[j]);
            else if (x[i + j] == 0)
                *p++ = '0';
            else
                p += format_number(p, x[i + j], 0);
        }
        b->len = (size_t)(p - b->p);
    }
    return i;
}
#endif

void srv_buf_numbers(srv_buf *b, const double *x, size_t n, int f64)
{
    size_t i = 0;

    srv_buf_put(b, "[", 1);
#ifdef F32_BLOCK
    if (!f64 && n >= 4 && __builtin_cpu_supports("avx2")) {
        i = numbers_f32_block(b, x, n);
        if (i == SIZE_MAX)
            return;
    }
#endif
    for (; i < n; i++) {
        /* reserve() only when the room may be short, not once a number */
        if ((b->oom || b->cap - b->len < NUMBER_ROOM + 1) &&
            reserve(b, NUMBER_ROOM + 1) != 0)
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
