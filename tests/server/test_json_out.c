/* test_json_out.c -- lossd's number writer (json_out.h): float64 output
 * reads back (strtod) as the very same double, over a million random
 * doubles and the edge cases of the format, in no more significant digits
 * than the shortest %.Ng that reads back; float32 output follows its
 * rule (at most nine digits, within 5e-8 relative, shortened one digit at
 * a time from the nine), checked against an independent restatement of
 * that rule on the exact decimal expansion of each double; the layout
 * (plain for exponents -5 .. 16, else d.ddde+-x) is as documented; strings
 * are escaped and written as well-formed UTF-8. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_out.h"
#include "rng.h"

/* ---- Helpers ------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_u64(void)
{
    return rng_next(&rng);
}

static double from_bits(uint64_t bits)
{
    double x;

    memcpy(&x, &bits, sizeof x);
    return x;
}

/* x as the writer writes it, NUL-terminated in out[64]. */
static void written(double x, int f64, char out[64])
{
    srv_buf b;

    srv_buf_init(&b, 8);
    srv_buf_number(&b, x, f64);
    srv_buf_put(&b, "", 1);
    cr_assert(!b.oom);
    cr_assert_lt(b.len, 64);
    memcpy(out, b.p, b.len);
    srv_buf_free(&b);
}

/* The significant digits of the decimal text s (no sign, no leading or
 * trailing zeros) into d, and the decimal exponent of the first; returns
 * their count (0 for zero).  Also checks that s is a strict JSON number. */
static int significand(const char *s, char d[128], int *exp10)
{
    int nd = 0, point = -1, lead = 0, pos = 0;
    const char *p = s;

    if (*p == '-')
        p++;
    cr_assert(*p >= '0' && *p <= '9', "%s: not a number", s);
    cr_assert(!(p[0] == '0' && p[1] >= '0' && p[1] <= '9'), "%s: 0 led", s);
    for (; (*p >= '0' && *p <= '9') || *p == '.'; p++) {
        if (*p == '.') {
            cr_assert_eq(point, -1, "%s: two points", s);
            cr_assert(p[1] >= '0' && p[1] <= '9', "%s: bare point", s);
            point = pos;
            continue;
        }
        if (nd == 0 && *p == '0') {
            lead++;
        } else {
            d[nd++] = *p;
        }
        pos++;
    }
    if (point < 0)
        point = pos;
    *exp10 = point - lead - 1;
    if (*p == 'e') {
        cr_assert(p[1] == '+' || p[1] == '-', "%s: exponent sign", s);
        *exp10 += (int)strtol(p + 1, NULL, 10);
        cr_assert(p[2] >= '1' && p[2] <= '9', "%s: exponent", s);
    } else {
        cr_assert_eq(*p, '\0', "%s: trailing text", s);
    }
    while (nd > 0 && d[nd - 1] == '0')
        nd--;
    d[nd] = '\0';
    return nd;
}

/* 1 when the decimal g lies exactly halfway between x and a neighbour
 * (the midpoint is exact in long double; its expansion to 71 digits is
 * compared with g's digits). */
static int halfway(const char *g, double x)
{
    long double d = strtold(g, NULL), mid;
    char a[128], da[128], dg[128];
    int ea, eg, na, ng;

    mid = ((long double)x + nextafter(x, d > x ? INFINITY : -INFINITY)) / 2;
    if (d != mid)
        return 0;
    snprintf(a, sizeof a, "%.70Le", mid);
    na = significand(a, da, &ea);
    ng = significand(g, dg, &eg);
    return na == ng && ea == eg && strcmp(da, dg) == 0;
}

/* Asserts that the float64 text of x reads back as x, in no more digits
 * than the shortest %.Ng that does (every N below when full, else the
 * one just below), leaving out a %.Ng exactly halfway to a neighbour:
 * the writer avoids those, whose reading depends on the reader's tie
 * rule. */
static void expect_float64(double x, int full)
{
    char out[64], d[128], g[400];
    double y;
    int nd, e, n;

    if (!isfinite(x))
        return;
    written(x, 1, out);
    y = strtod(out, NULL);
    cr_assert(memcmp(&x, &y, sizeof x) == 0 || (x == 0 && y == 0),
              "%a written as %s reads back as %a", x, out, y);
    if (x == 0)
        return;
    nd = significand(out, d, &e);
    for (n = full ? 1 : nd - 1; n >= 1 && n < nd; n++) {
        snprintf(g, sizeof g, "%.*g", n, x);
        cr_assert(strtod(g, NULL) != x || halfway(g, x),
                  "%a written as %s, but %s reads back", x, out, g);
    }
}

static void expect_text(double x, int f64, const char *want)
{
    char out[64];

    written(x, f64, out);
    cr_expect_str_eq(out, want, "%a written as %s, want %s", x, out, want);
}

/* ---- float64 --------------------------------------------------------------
 */

Test(json_out, float64_edge_cases)
{
    static const double cases[] = {5e-324,
                                   1e-323,
                                   1.5e-323,
                                   2.225073858507201e-308,
                                   2.2250738585072014e-308,
                                   2.2250738585072019e-308,
                                   1.7976931348623157e308,
                                   1.7976931348623155e308,
                                   8.98846567431158e307,
                                   9007199254740992.0,
                                   9007199254740994.0,
                                   9007199254740996.0,
                                   18014398509481988.0,
                                   9223372036854775808.0,
                                   18446744073709551616.0,
                                   1e15,
                                   1e16,
                                   1e17,
                                   1e21,
                                   1e22,
                                   1e23,
                                   9.999999999999999e22,
                                   5e-5,
                                   1e-5,
                                   1e-6,
                                   0.1,
                                   0.2,
                                   0.3,
                                   0.30000000000000004,
                                   1.0 / 3,
                                   2.0 / 3,
                                   123456789012345678.0,
                                   1.25,
                                   2.5e-7,
                                   4.35,
                                   0.5,
                                   1.5};
    size_t i;
    int k;
    uint64_t c;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_float64(cases[i], 1);
        expect_float64(-cases[i], 1);
        expect_float64(nextafter(cases[i], 0), 1);
        expect_float64(nextafter(cases[i], INFINITY), 1);
    }
    /* Every power of two and its neighbours (powers of two have the
     * narrower gap below), every power of ten that is a double. */
    for (k = -1074; k <= 1023; k++) {
        double p = ldexp(1, k);
        expect_float64(p, 1);
        expect_float64(nextafter(p, 0), 1);
        expect_float64(nextafter(p, INFINITY), 1);
    }
    for (k = -323; k <= 308; k++) {
        char s[16];
        snprintf(s, sizeof s, "1e%d", k);
        expect_float64(strtod(s, NULL), 1);
    }
    /* The smallest subnormals, where a decimal of one or two digits is
     * often enough, and the top of the range. */
    for (c = 1; c < 20000; c++) {
        expect_float64(from_bits(c), 1);
        expect_float64(from_bits(0x7fefffffffffffffu - c), c < 2000);
    }
}

Test(json_out, float64_integers_near_2_53)
{
    int64_t i;

    for (i = -1000; i <= 1000; i++) {
        expect_float64((double)((INT64_C(1) << 53) + 2 * i), 1);
        expect_float64((double)((INT64_C(1) << 54) + 4 * i), 1);
        expect_float64((double)((INT64_C(1) << 52) + i), 1);
    }
}

Test(json_out, float64_a_million_random_doubles_round_trip_shortest)
{
    size_t i;

    for (i = 0; i < 1000000; i++) {
        uint64_t r = next_u64();
        double x;
        if (i % 2 == 0) {
            /* Every bit pattern: exponents uniform over the range. */
            x = from_bits(r);
            if (!isfinite(x))
                continue;
        } else {
            /* Magnitudes of everyday data, with every significand. */
            x = ldexp((double)(r >> 11) / 9007199254740992.0,
                      (int)(next_u64() % 81) - 40);
        }
        expect_float64(x, i % 16 == 1);
    }
}

Test(json_out, float64_layout)
{
    expect_text(5e-324, 1, "5e-324");
    expect_text(1e-323, 1, "1e-323");
    expect_text(1.7976931348623157e308, 1, "1.7976931348623157e+308");
    expect_text(-2.2250738585072014e-308, 1, "-2.2250738585072014e-308");
    expect_text(1e22, 1, "1e+22");
    expect_text(1e23, 1, "9.999999999999999e+22"); /* 1e23 is a tie */
    expect_text(1e24, 1, "1e+24");
    expect_text(1e16, 1, "10000000000000000");
    expect_text(1e17, 1, "1e+17");
    expect_text(123456789012345678.0, 1, "1.2345678901234568e+17");
    expect_text(9007199254740993.0, 1, "9007199254740992");
    expect_text(18014398509481988.0, 1, "18014398509481988");
    expect_text(0.1, 1, "0.1");
    expect_text(-0.30000000000000004, 1, "-0.30000000000000004");
    expect_text(1e-5, 1, "0.00001");
    expect_text(1.2345e-5, 1, "0.000012345");
    expect_text(1e-6, 1, "1e-6");
    expect_text(1.5e-6, 1, "1.5e-6");
    expect_text(1234.5678, 1, "1234.5678");
    expect_text(-42, 1, "-42");
    expect_text(-0.0, 1, "0");
    expect_text(NAN, 1, "null");
    expect_text(-INFINITY, 0, "null");
}

/* ---- float32 --------------------------------------------------------------
 */

/* The float32 rule restated on the exact value of x (x > 0, not an
 * integer below 2^53): its first 40 significant digits (snprintf
 * expands a double exactly, then rounds at the 40th) give
 * m = x * 10^(8-e) in [1e8, 1e9) far beyond the tolerance; m is rounded
 * half up to full, which is shortened one digit at a time (rounding half
 * up) while within 5e-8 m.  The digits, without trailing zeros, into d;
 * returns their count, with the exponent of the first in *exp10. */
static int float32_reference(double x, char d[64], int *exp10)
{
    char buf[64];
    uint64_t whole = 0, full, v = 0, c, p10;
    long double frac = 0, m, scale = 0.1L;
    int e, i, j, kept = 9, nd;

    snprintf(buf, sizeof buf, "%.39e", x);
    e = (int)strtol(buf + 42, NULL, 10);
    for (i = 0; i < 40; i++) {
        int digit = buf[i < 1 ? 0 : i + 1] - '0';
        if (i < 9) {
            whole = whole * 10 + (uint64_t)digit;
        } else {
            frac += digit * scale;
            scale /= 10;
        }
    }
    m = (long double)whole + frac;
    full = whole + (frac >= 0.5L);
    v = full;
    for (j = 1, p10 = 10; j < 9; j++, p10 *= 10) {
        c = (full + p10 / 2) / p10;
        if (fabsl((long double)(c * p10) - m) > 5e-8L * m)
            break;
        v = c;
        kept = 9 - j;
    }
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    nd = (int)strlen(buf);
    *exp10 = e + (nd - kept);
    while (buf[nd - 1] == '0')
        nd--;
    buf[nd] = '\0';
    memcpy(d, buf, (size_t)nd + 1);
    return nd;
}

/* Asserts that the float32 text of x has the reference digits and
 * exponent, and is within 5e-8 relative of x. */
static void expect_float32(double x)
{
    char out[64], d[128], want[64];
    int nd, e, want_nd, want_e;
    long double dec;

    written(x, 0, out);
    if (fabs(x) < 9007199254740992.0 && x == floor(x)) {
        expect_float64(x, 0); /* integers are written whole */
        return;
    }
    nd = significand(out, d, &e);
    dec = strtold(out, NULL);
    cr_assert(fabsl(dec - x) <= 5e-8L * fabsl((long double)x),
              "%a written as %s: not within 5e-8", x, out);
    cr_assert(nd <= 9, "%a written as %s: more than nine digits", x, out);
    want_nd = float32_reference(fabs(x), want, &want_e);
    cr_assert(nd == want_nd && e == want_e && strcmp(d, want) == 0,
              "%a written as %s, want digits %s exponent %d", x, out, want,
              want_e);
}

Test(json_out, float32_follows_its_rule)
{
    static const double cases[] = {0.1,
                                   1.0 / 3,
                                   2.718281828459045,
                                   9.9999999949999e5,
                                   0.99999999995,
                                   0.999999995,
                                   0.9999999949,
                                   1.00000005,
                                   1e-5,
                                   1e23,
                                   123456789012345678.0,
                                   5e-324,
                                   1e-300,
                                   1.7976931348623157e308,
                                   2.2250738585072014e-308,
                                   1e16 + 2,
                                   3.4028234663852886e38,
                                   1.401298464324817e-45};
    size_t i;
    int k;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_float32(cases[i]);
        expect_float32(-cases[i]);
    }
    for (k = -1074; k <= 1023; k++)
        expect_float32(ldexp(1, k));
    for (i = 0; i < 300000; i++) {
        uint64_t r = next_u64();
        double x = i % 2 ? from_bits(r)
                         : ldexp((double)(r >> 11) / 9007199254740992.0,
                                 (int)(next_u64() % 81) - 40);
        if (isfinite(x) && x != 0)
            expect_float32(x);
    }
}

Test(json_out, float32_layout)
{
    expect_text(1.0 / 3, 0, "0.33333333");
    expect_text(2.718281828459045, 0, "2.7182818");
    expect_text(0.1, 0, "0.1");
    expect_text(-1e23, 0, "-1e+23");
    expect_text(1e-7, 0, "1e-7");
    expect_text(0.99999999995, 0, "1");
    expect_text(123456789012.0, 0, "123456789012");
    expect_text(5e-324, 0, "4.9406565e-324");
}

/* ---- Arrays ----------------------------------------------------------------
 */

Test(json_out, arrays_of_numbers)
{
    static const double x[] = {1, -0.5, 1e-7, NAN, 1e300, 0};
    srv_buf b;

    srv_buf_init(&b, 1);
    srv_buf_numbers(&b, x, sizeof x / sizeof x[0], 1);
    srv_buf_put(&b, "", 1);
    cr_assert(!b.oom);
    cr_expect_str_eq(b.p, "[1,-0.5,1e-7,null,1e+300,0]");
    srv_buf_free(&b);
}

/* A double for the float32 array test, from one of six kinds: any bits;
 * random significands over 2^-120 .. 2^120; nine-digit decimals and a
 * half (ties of the first rounding), and the shortened x_j times 1 +- 5e-8
 * (edges of the tolerance), each moved by up to four ulps; special
 * values, among them some whose digits round up to 10^9 (written 1, one
 * place up); integers and their multiples by powers of ten. */
static double float32_array_value(int kind)
{
    static const double special[] = {0,
                                     -0.0,
                                     1,
                                     -3,
                                     NAN,
                                     INFINITY,
                                     -INFINITY,
                                     1e300,
                                     5e-324,
                                     0x1p53,
                                     0x1p53 + 2,
                                     1e9,
                                     999999999.5,
                                     1e8,
                                     0.1,
                                     1e-32,
                                     1e28,
                                     1e29,
                                     1e-33,
                                     123456789012.0,
                                     2.5e-7,
                                     0.99999999,
                                     9.9999999e-7,
                                     99999999.7,
                                     9.99999996e20};
    uint64_t r = next_u64(), bits;
    double x, m;
    int e = (int)(next_u64() % 80) - 40;

    switch (kind) {
    case 0:
        return from_bits(r);
    case 1:
        return ldexp(rng_unit(&rng), (int)(r % 240) - 120);
    case 2:
        m = (double)(100000000 + r % 900000000) + 0.5;
        break;
    case 3:
        r = 100000000 + r % 900000000;
        r = next_u64() & 1 ? (r + 5) / 10 * 10 : (r + 50) / 100 * 100;
        m = (double)r / (next_u64() & 1 ? 1 + 5e-8 : 1 - 5e-8);
        break;
    case 4:
        return special[r % (sizeof special / sizeof special[0])];
    default:
        return (double)(r % 1000000000) * pow(10, e);
    }
    x = m * pow(10, e - 8);
    memcpy(&bits, &x, sizeof bits);
    return from_bits(bits + (uint64_t)((int64_t)(next_u64() % 9) - 4));
}

/* A float32 array is written as its numbers one at a time, whichever way
 * srv_buf_numbers takes (four at a time where the CPU has AVX2): arrays
 * of every length up to 40 and random ones up to 1000, over the kinds
 * above, both signs. */
Test(json_out, float32_arrays_match_single_numbers)
{
    static double x[1000];
    char one[64];
    srv_buf b, want;
    size_t len, i;
    int t;

    for (t = 0; t < 3000; t++) {
        len = t < 40 ? (size_t)t : 1 + next_u64() % 1000;
        for (i = 0; i < len; i++) {
            x[i] = float32_array_value((int)(next_u64() % 6));
            if (next_u64() & 1)
                x[i] = -x[i];
        }
        srv_buf_init(&b, 1);
        srv_buf_init(&want, 1);
        srv_buf_numbers(&b, x, len, 0);
        srv_buf_put(&b, "", 1);
        srv_buf_put(&want, "[", 1);
        for (i = 0; i < len; i++) {
            written(x[i], 0, one);
            if (i)
                srv_buf_put(&want, ",", 1);
            srv_buf_puts(&want, one);
        }
        srv_buf_put(&want, "]", 2);
        cr_assert(!b.oom && !want.oom);
        cr_assert_str_eq(b.p, want.p, "array %d of %zu numbers", t, len);
        srv_buf_free(&b);
        srv_buf_free(&want);
    }
}

/* srv_put_uint against printf, at every length and on both sides of the
 * 17-digit split, plus random values; nothing stored past its room. */
static void expect_uint(uint64_t v)
{
    char got[SRV_UINT_ROOM + 8], want[32];
    size_t n;

    memset(got, 'x', sizeof got);
    n = srv_put_uint(got, v);
    snprintf(want, sizeof want, "%llu", (unsigned long long)v);
    cr_assert_eq(n, strlen(want), "%s: %zu digits", want, n);
    cr_assert(memcmp(got, want, n) == 0, "%s: %.*s", want, (int)n, got);
    for (n = SRV_UINT_ROOM; n < sizeof got; n++)
        cr_assert_eq(got[n], 'x', "%s: byte %zu written", want, n);
}

Test(json_out, unsigned_integers)
{
    uint64_t p = 1;
    int i;

    expect_uint(0);
    expect_uint(UINT64_MAX);
    for (i = 0; i < 20; i++, p *= 10) {
        expect_uint(p);
        expect_uint(p - 1);
        expect_uint(p + 1);
        expect_uint(p * 9 + p - 1);
    }
    expect_uint(100000000000000000u);
    expect_uint(100000000000000007u);
    expect_uint(12345678901234567890u);
    for (i = 0; i < 100000; i++)
        expect_uint(next_u64() >> (i % 64));
}

/* s as srv_buf_string writes it equals want. */
static void expect_string(const char *s, const char *want)
{
    srv_buf b;

    srv_buf_init(&b, 8);
    srv_buf_string(&b, s);
    srv_buf_put(&b, "", 1);
    cr_assert(!b.oom);
    cr_expect_str_eq(b.p, want, "%s", s);
    srv_buf_free(&b);
}

/* Strings are escaped as JSON requires and come out as well-formed UTF-8:
 * characters of 2, 3 and 4 bytes pass, and each byte that begins no
 * well-formed sequence (stray continuation, overlong form, surrogate, past
 * U+10FFFF, a character cut short) is U+FFFD. */
Test(json_out, strings_are_escaped_and_valid_utf8)
{
    expect_string("a\"b\\c\n\x01", "\"a\\\"b\\\\c\\u000a\\u0001\"");
    expect_string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf",
                  "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"");
    expect_string("\xff\xfe", "\"\\ufffd\\ufffd\"");
    expect_string("x\x80y", "\"x\\ufffdy\"");
    expect_string("\xc0\x80", "\"\\ufffd\\ufffd\"");
    expect_string("\xe0\x80\x80", "\"\\ufffd\\ufffd\\ufffd\"");
    expect_string("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
    expect_string("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    expect_string("\xe2\x82", "\"\\ufffd\\ufffd\"");
    expect_string("\xe2\x82\xac\xe2", "\"\xe2\x82\xac\\ufffd\"");
}
