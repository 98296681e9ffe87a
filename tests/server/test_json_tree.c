/* test_json_tree.c -- lossd's fast JSON reader (json_tree.h) and the
 * per-request arena (arena.h): every number it converts is the double
 * strtod gives, bit for bit; every tree it builds is the tree cJSON builds,
 * node by node, with the same end position; everything outside strict JSON
 * is declined, never misread; the JSON check of json_valid.h calls JSON
 * what cJSON reads strictly; the arena hands out aligned memory that
 * cJSON can use and that goes at once; srv_huge_malloc aligns large
 * buffers for huge pages. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "handler.h"
#include "json_in.h"
#include "json_same.h"
#include "json_tree.h"
#include "json_valid.h"
#include "rng.h"

/* ---- Helpers ------------------------------------------------------------- */

static uint64_t rng = 0x243f6a8885a308d3u;

static uint64_t next_u64(void)
{
    return rng_next(&rng);
}

static double strtod_len(const char *s, size_t len)
{
    char buf[128];

    cr_assert_lt(len, sizeof buf);
    memcpy(buf, s, len);
    buf[len] = '\0';
    return strtod(buf, NULL);
}

/* Asserts that the tree reader reads s, in a packed array and in a plain
 * one, followed by text enough for reading it eight bytes at a time (as
 * most numbers of a body are read), as want. */
static void expect_number_in_arrays(const char *s, double want)
{
    char doc[256];
    const char *end;
    const double *v;
    cJSON *root = NULL;

    snprintf(doc, sizeof doc, "[%s,%s]%64s", s, s, "");
    cr_assert_eq(srv_json_tree_parse_packed(doc, strlen(doc), 4, &root, &end),
                 SRV_TREE_OK, "%s: declined in an array", s);
    v = srv_json_packed_values(root);
    cr_assert(srv_json_packed(root) && srv_json_packed_len(root) == 2);
    cr_assert(memcmp(&v[0], &want, sizeof want) == 0 &&
                  memcmp(&v[1], &want, sizeof want) == 0,
              "%s: %a in an array, strtod gives %a", s, v[0], want);
    cJSON_Delete(root);
    root = NULL;
    cr_assert_eq(srv_json_tree_parse(doc, strlen(doc), 4, &root, &end),
                 SRV_TREE_OK, "%s: declined", s);
    cr_assert(memcmp(&root->child->valuedouble, &want, sizeof want) == 0,
              "%s: %a in a tree, strtod gives %a", s, root->child->valuedouble,
              want);
    cJSON_Delete(root);
}

/* Asserts that s converts to exactly strtod's double, alone and (up to
 * the 63 characters the reader takes) in arrays. */
static void expect_number(const char *s)
{
    double got, want = strtod_len(s, strlen(s));

    cr_assert_eq(srv_json_number(s, strlen(s), &got), 0, "%s: rejected", s);
    cr_assert(memcmp(&got, &want, sizeof got) == 0, "%s: %a, strtod gives %a",
              s, got, want);
    if (strlen(s) <= 63)
        expect_number_in_arrays(s, want);
}

/* When the reader accepts text, cJSON must read the same tree and stop at
 * the same place.  Returns the reader's status. */
static srv_tree_status compare(const char *text, size_t len)
{
    const char *end = NULL, *cend = NULL;
    cJSON *mine = NULL, *theirs;
    srv_tree_status st = srv_json_tree_parse(text, len, 4, &mine, &end);

    if (st != SRV_TREE_OK) {
        cr_assert_null(mine);
        return st;
    }
    theirs = cJSON_ParseWithLengthOpts(text, len, &cend, 0);
    cr_assert_not_null(theirs, "accepted what cJSON rejects: %.*s", (int)len,
                       text);
    cr_assert(json_same_tree(mine, theirs), "trees differ: %.*s", (int)len,
              text);
    cr_assert_eq(end, cend, "end %td, cJSON's %td: %.*s", end - text,
                 cend - text, (int)len, text);
    cJSON_Delete(mine);
    cJSON_Delete(theirs);
    return st;
}

static void expect_same(const char *text)
{
    cr_assert_eq(compare(text, strlen(text)), SRV_TREE_OK, "declined: %s",
                 text);
}

static void expect_declined(const char *text)
{
    cr_assert_eq(compare(text, strlen(text)), SRV_TREE_DECLINED,
                 "not declined: %s", text);
}

/* ---- Numbers ------------------------------------------------------------- */

Test(json_number, hard_cases_match_strtod)
{
    static const char *const cases[] = {
        "0",
        "-0",
        "0.0",
        "-0.0e5",
        "0e-999",
        "1",
        "-1",
        "0.1",
        "0.2",
        "0.30000000000000004",
        "9007199254740992",
        "9007199254740993",
        "9007199254740995",
        "18014398509481985",
        "1e22",
        "1e23",
        "1e-22",
        "1e-23",
        "123456789012345678",
        "1234567890123456789",
        "12345678901234567890",
        "12345678901234567890123456789",
        "0.1234567890123456789012345",
        "2.2250738585072014e-308",
        "2.2250738585072011e-308",
        "4.9406564584124654e-324",
        "5e-324",
        "1e-400",
        "-1e-400",
        "1.7976931348623157e308",
        "1.7976931348623158e308",
        "1e309",
        "-1e999999999999",
        "8.98846567431158e307",
        "1E5",
        "1e+5",
        "1E-5",
        "2.5e-7",
        "-2.5741013236377066e-7",
        "0.00012345678901234567",
        "1.00000000000000011102230246251565404236316680908203125",
        "1.00000000000000011102230246251565404236316680908203124",
        "1.00000000000000011102230246251565404236316680908203126",
        "9.5367431640625e-7",
        "3.0517578125e-05",
        "7.2057594037927933e16",
        "100000000000000000000000",
        "1000000000000000000000000000",
        "10000000000000000000000000000",
        "0.000000000000000000000000001",
        /* Exactly halfway between two doubles, with a power of ten that is
         * not exact in binary: rounding must go to even. */
        "4503599627370496.5",
        "4503599627370497.5",
        "-4503599627370497.5",
        "2251799813685248.25",
        "2251799813685248.75",
        "2251799813685249.25",
        "1125899906842624.125",
        "1125899906842624.375",
        "1125899906842624.625",
        "1125899906842625.875",
        "45035996273704965e-1",
        "4.5035996273704965e15",
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_number(cases[i]);
}

/* x written the f-th way a client might write a double. */
static void format_double(char *buf, size_t cap, size_t f, double x)
{
    switch (f) {
    case 0:
        snprintf(buf, cap, "%.17g", x);
        break;
    case 1:
        snprintf(buf, cap, "%.16g", x);
        break;
    case 2:
        snprintf(buf, cap, "%.15g", x);
        break;
    case 3:
        snprintf(buf, cap, "%.9g", x);
        break;
    case 4:
        snprintf(buf, cap, "%.6e", x);
        break;
    case 5:
        snprintf(buf, cap, "%.3f", x);
        break;
    case 6:
        snprintf(buf, cap, "%.20g", x);
        break;
    case 7:
        snprintf(buf, cap, "%.19e", x);
        break;
    default:
        snprintf(buf, cap, "%.1e", x);
        break;
    }
}

Test(json_number, random_doubles_in_every_format_match_strtod)
{
    char buf[400];
    size_t i, f;
    double x;

    for (i = 0; i < 200000; i++) {
        uint64_t bits = next_u64();
        if (i % 2 == 0) {
            /* Magnitudes of everyday data: 1e-12 .. 1e12. */
            x = ldexp((double)(bits >> 11) / 9007199254740992.0,
                      (int)(bits % 81) - 40);
            x = bits & 1024 ? -x : x;
        } else {
            memcpy(&x, &bits, sizeof x);
            if (!isfinite(x))
                continue;
        }
        for (f = 0; f < 9; f++) {
            format_double(buf, sizeof buf, f, x);
            if (strchr(buf, 'n') == NULL && strchr(buf, 'i') == NULL &&
                strlen(buf) <= 63)
                expect_number(buf);
        }
    }
}

Test(json_number, random_decimals_match_strtod)
{
    char buf[80];
    size_t i, j, n;

    for (i = 0; i < 300000; i++) {
        uint64_t r = next_u64();
        size_t digits = 1 + r % 24, point = (r >> 8) % (digits + 1);
        int e = (int)((r >> 16) % 71) - 35;
        n = 0;
        if (r & (1u << 30))
            buf[n++] = '-';
        for (j = 0; j < digits; j++) {
            if (j == point && j > 0)
                buf[n++] = '.';
            buf[n++] =
                (char)('0' + (j == 0 ? 1 + next_u64() % 9 : next_u64() % 10));
        }
        n += (size_t)snprintf(buf + n, sizeof buf - n, "e%d", e);
        expect_number(buf);
    }
}

/* A decimal exactly halfway between two doubles: (2c + 1) * 2^(s-1) for
 * a 53-bit c and -2 <= s <= 10, written as an integer (up to 20 digits),
 * or as (2c + 1) * 5^(1-s) * 10^(s-1) (19 digits at most) when s < 1;
 * round-half-even decides. */
static void halfway_decimal(char *buf, size_t cap, uint64_t c, int s)
{
    uint64_t v = 2 * c + 1;
    int i;

    if (s >= 1) {
        snprintf(buf, cap, "%llu", (unsigned long long)(v << (s - 1)));
        return;
    }
    for (i = 0; i < 1 - s; i++)
        v *= 5;
    snprintf(buf, cap, "%llue-%d", (unsigned long long)v, 1 - s);
}

/* A million numbers of every kind against strtod: doubles as a client
 * writes them (%.17g, %.16g, shortest-ish %.15g), random decimals of 1 to
 * 19 digits over exponents beyond both ends of the range, 20 to 29
 * digits (the first 19 decide, or strtod does), exact halfway cases,
 * near-halfway cases (the midpoint of two neighbours to 15 .. 40
 * digits), subnormals and the everyday range of Python's json.dumps. */
Test(json_number, a_million_inputs_match_strtod)
{
    char buf[128], d[40];
    size_t i, j, nd;

    for (i = 0; i < 1000000; i++) {
        uint64_t r = next_u64();
        double x;
        switch (i % 8) {
        case 0:
        case 1:
            memcpy(&x, &r, sizeof x);
            if (!isfinite(x))
                continue;
            snprintf(buf, sizeof buf, i % 8 ? "%.16g" : "%.17g", x);
            break;
        case 2:
            nd = 1 + next_u64() % 19;
            d[0] = (char)('1' + r % 9);
            for (j = 1; j < nd; j++)
                d[j] = (char)('0' + next_u64() % 10);
            d[nd] = '\0';
            snprintf(buf, sizeof buf, "%se%d", d,
                     (int)(next_u64() % 720) - 380);
            break;
        case 3:
            nd = 20 + next_u64() % 10;
            d[0] = (char)('1' + r % 9);
            for (j = 1; j < nd; j++)
                d[j] = (char)('0' + next_u64() % 10);
            d[nd] = '\0';
            snprintf(buf, sizeof buf, "%se%d", d,
                     (int)(next_u64() % 700) - 360);
            break;
        case 4:
            halfway_decimal(buf, sizeof buf, (r >> 11) | (uint64_t)1 << 52,
                            (int)(next_u64() % 13) - 2);
            break;
        case 5: {
            long double mid;
            memcpy(&x, &r, sizeof x);
            x = fabs(x);
            if (!isfinite(x) || x == DBL_MAX)
                continue;
            mid = ((long double)x + nextafter(x, INFINITY)) / 2;
            snprintf(buf, sizeof buf, "%.*Le", (int)(next_u64() % 26) + 14,
                     mid);
            break;
        }
        case 6:
            x = ldexp((double)(r >> 11), -1074 - (int)(next_u64() % 64));
            snprintf(buf, sizeof buf, "%.*g", 1 + (int)(next_u64() % 19), x);
            break;
        default:
            x = (double)(r >> 11) / 9007199254740992.0 * 4 - 2;
            snprintf(buf, sizeof buf, "%.*g", 15 + (int)(next_u64() % 3), x);
            break;
        }
        expect_number(buf);
    }
}

/* Zeros and ones with fractions of zeros up to the longest the fast
 * reader takes, signed: past 15 digits it sends the number past Clinger's
 * division, and a zero must not reach Eisel-Lemire, which needs m > 0. */
Test(json_number, long_zero_fractions)
{
    char num[32];
    int f;

    for (f = 1; f <= 19; f++) {
        snprintf(num, sizeof num, "0.%0*d", f, 0);
        expect_number(num);
        snprintf(num, sizeof num, "-0.%0*d", f, 0);
        expect_number(num);
        if (f > 18)
            continue;
        snprintf(num, sizeof num, "1.%0*d", f, 0);
        expect_number(num);
        snprintf(num, sizeof num, "-9.%0*d", f, 0);
        expect_number(num);
    }
}

/* Digit runs of every length from 1 to 40, before and after the point,
 * with and without an exponent, followed by each byte that may end a
 * number and by enough text that they are read eight bytes at a time:
 * alone they convert as strtod converts them, and in an array the reader
 * agrees with cJSON. */
Test(json_number, digit_runs_of_every_length_match)
{
    static const char *const exps[] = {"", "e3", "E-2", "e+17", "E0"};
    static const char *const ends[] = {",", " ,", "\n,", "]"};
    char num[128], doc[512];
    size_t a, b, x, t, i;
    int n;

    for (a = 1; a <= 40; a++)
        for (b = 0; b <= 40; b += (b < 24 ? 1 : 8))
            for (x = 0; x < sizeof exps / sizeof exps[0]; x++) {
                n = 0;
                for (i = 0; i < a; i++)
                    num[n++] = (char)('0' + (i == 0 ? 1 + next_u64() % 9
                                                    : next_u64() % 10));
                if (b > 0)
                    num[n++] = '.';
                for (i = 0; i < b; i++)
                    num[n++] = (char)('0' + next_u64() % 10);
                snprintf(num + n, sizeof num - (size_t)n, "%s", exps[x]);
                if (strlen(num) > 62) /* and "-" before it: 63 */
                    continue;
                expect_number(num);
                t = (a + b + x) % (sizeof ends / sizeof ends[0]);
                snprintf(doc, sizeof doc, "[%s%s 0, -%s, 0.%.*s]         ", num,
                         ends[t], num, (int)strspn(num, "0123456789"), num);
                if (t == 3)
                    snprintf(doc, sizeof doc, "[-%s%s         ", num, ends[t]);
                cr_assert_eq(compare(doc, strlen(doc)), SRV_TREE_OK, "%s", doc);
            }
}

Test(json_number, rejects_what_is_not_strict_json)
{
    static const char *const bad[] = {
        "",          "-",   "+1",  "01",   "-01",   "1.",    ".5",  "1e",
        "1e+",       "1E-", "--1", "0x10", "1.5.3", "1e5e5", "NaN", "Infinity",
        "-Infinity", "1 ",  " 1",  "1,",   "00",    "1.e5",
    };
    size_t i;
    double x;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(srv_json_number(bad[i], strlen(bad[i]), &x), -1,
                     "accepted '%s'", bad[i]);
}

/* ---- Trees --------------------------------------------------------------- */

Test(json_tree, documents_read_as_cjson_reads_them)
{
    static const char *const docs[] = {
        "{}",
        "[]",
        " \t\r\n{ } ",
        "{\"logits\": [[1, 2.5, -3e-2], [0, -0, 1e300]], \"labels\": [0, 2]}",
        "{\"a\":[],\"b\":[[]],\"c\":{},\"d\":\"\",\"e\":null}",
        "{\"t\": true, \"f\": false, \"n\": null}",
        "{\"k\": 1, \"k\": 2, \"k\": [3]}",
        "{\"reduction\":\"sum\",\"precision\":\"float64\",\"gradients\":false}",
        "{\"x\": [2147483647, 2147483648, -2147483648, -2147483649, 1e10]}",
        "{\"x\": [0.5, -0.5, 1.5, 2.5, -2.5, 1e-320]}",
        "{\"unicode\": \"caf\xc3\xa9 \xe2\x82\xac\"}",
        "{\"p\":[[0.25,0.25,0.5]],\"q\":[[0.1,0.2,0.7]],\"base\":2}",
        "[1,[2,[3]]]",
        "123",
        "-0.0",
        "\"just a string\"",
        "true",
        "null",
        "{\"a\":1} trailing",
        "[1,2] ,",
        "{\"big\": 1e999, \"small\": -1e-999}",
    };
    size_t i;

    for (i = 0; i < sizeof docs / sizeof docs[0]; i++)
        expect_same(docs[i]);
}

Test(json_tree, declines_everything_else)
{
    static const char *const docs[] = {
        "",
        "   ",
        "{\"a\": \"tab\\there\"}",
        "{\"a\\u0062\": 1}",
        "{\"a\": \"\x01\"}",
        "\xef\xbb\xbf{}",
        "{\"a\": [[[[1]]]]}",
        "[[[[[]]]]]",
        "{\"a\": 01}",
        "{\"a\": 1.}",
        "{\"a\": .5}",
        "{\"a\": +1}",
        "{\"a\": NaN}",
        "{\"a\": Infinity}",
        "{\"a\": [1,]}",
        "{\"a\": 1,}",
        "{\"a\" 1}",
        "{a: 1}",
        "{'a': 1}",
        "{\"a\": 1 /* c */}",
        "{\"a\": [1 2]}",
        "{\"a\": [1",
        "{\"a\": \"open",
        "{\"a\": tru}",
        "{\"a\": nul}",
        "{\"a\": [truex]}",
        "{\"a\": 1e5e5}",
        "{\"a\": 0x10}",
        "{\"a\":\f1}",
        "{\"a\": "
        "1234567890123456789012345678901234567890123456789012345678901234}",
    };
    size_t i;

    for (i = 0; i < sizeof docs / sizeof docs[0]; i++)
        expect_declined(docs[i]);
}

Test(json_tree, long_strings_and_keys_are_left_to_cjson)
{
    char doc[700];

    memset(doc, 'a', sizeof doc);
    memcpy(doc, "{\"", 2);
    memcpy(doc + 258, "\": 1}", 6);
    cr_assert_eq(compare(doc, 263), SRV_TREE_DECLINED);
    memcpy(doc + 2, "k\": \"", 5);
    memcpy(doc + 600, "\"}", 3);
    cr_assert_eq(compare(doc, 602), SRV_TREE_DECLINED);
}

Test(json_tree, length_bounds_the_text)
{
    /* The reader never looks past len: the same bytes, cut short. */
    const char *doc = "{\"a\": [1, 2, 3]}";
    size_t len;

    for (len = 0; len < strlen(doc); len++)
        cr_assert_eq(compare(doc, len), SRV_TREE_DECLINED, "len %zu", len);
    cr_assert_eq(compare(doc, strlen(doc)), SRV_TREE_OK);
    cr_assert_eq(compare("[12345]", 4), SRV_TREE_DECLINED);
    cr_assert_eq(compare("12345", 3), SRV_TREE_OK);
}

/* Random documents, most of them valid, some with one byte changed: the
 * reader either declines or agrees with cJSON exactly. */
static size_t random_value(char *p, size_t cap, int depth)
{
    static const char *const atoms[] = {
        "0",     "-0",   "1",     "-12.5e-3", "3.14159265358979323846",
        "1e308", "true", "false", "null",     "\"s\"",
        "\"\"",  "7E+2", "0.1",   "1e-7",     "123456789012345678901"};
    uint64_t r = next_u64();
    size_t n = 0, i, k;

    if (cap < 64)
        return 0;
    if (depth >= 4 || r % 3 == 0)
        return (size_t)snprintf(p, cap, "%s", atoms[(r >> 8) % 15]);
    k = (r >> 16) % 5;
    p[n++] = r & 8 ? '[' : '{';
    for (i = 0; i < k && cap - n > 80; i++) {
        if (i)
            p[n++] = ',';
        if (r & 16)
            p[n++] = ' ';
        if (!(r & 8))
            n += (size_t)snprintf(p + n, cap - n, "\"k%zu\":", i % 3);
        n += random_value(p + n, cap - n - 2, depth + 1);
    }
    p[n++] = r & 8 ? ']' : '}';
    return n;
}

/* 20,000 random documents, every other one with a byte changed, each
 * checked by check (which asserts the reader agrees with cJSON); how many
 * the reader took. */
static size_t random_documents(srv_tree_status (*check)(const char *, size_t))
{
    static const char noise[] = " ,:[]{}\"-+.eE0123456789tfnu\\x";
    char doc[4096];
    size_t i, n, accepted = 0;

    for (i = 0; i < 20000; i++) {
        n = random_value(doc, sizeof doc, 0);
        if (i % 2 == 1 && n > 0)
            doc[next_u64() % n] = noise[next_u64() % (sizeof noise - 1)];
        if (check(doc, n) == SRV_TREE_OK)
            accepted++;
    }
    return accepted;
}

Test(json_tree, random_documents_agree_with_cjson)
{
    size_t accepted = random_documents(compare);

    cr_assert_gt(accepted, 10000, "only %zu of 20000 read", accepted);
}

/* Holds the JSON check without recursion (json_valid.h) to cJSON read
 * strictly: a text is JSON when cJSON reads all of it and
 * srv_json_strict_at finds nothing cJSON let through.  (Where each stops
 * differs: cJSON names, say, the start of a string that has an error.) */
static srv_tree_status compare_valid(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    size_t at = srv_json_valid_at(text, len, 0);
    int json = doc != NULL &&
               srv_json_skip_space(text, len, (size_t)(end - text)) == len &&
               srv_json_strict_at(text, len) == SIZE_MAX;

    cJSON_Delete(doc);
    cr_assert_eq(at == SIZE_MAX, json, "JSON check %zu, cJSON %s: %.*s", at,
                 json ? "reads it" : "does not", (int)len, text);
    return json ? SRV_TREE_OK : SRV_TREE_DECLINED;
}

Test(json_valid, random_documents_agree_with_cjson_read_strictly)
{
    size_t accepted = random_documents(compare_valid);

    cr_assert_gt(accepted, 10000, "only %zu of 20000 JSON", accepted);
}

/* Reads text inside an arena with cJSON's hooks installed, where the
 * reader takes its nodes from the arena itself, and holds the result to
 * cJSON's tree read outside it: the same status as outside, and when
 * accepted, the same tree, links and end.  Returns the status. */
static srv_tree_status compare_in_arena(const char *text, size_t len)
{
    _Alignas(max_align_t) char first[2048];
    const char *end = NULL, *cend = NULL;
    cJSON *mine = NULL, *theirs, *plain = NULL;
    srv_tree_status st, outside;
    srv_arena a;

    srv_json_hooks_install();
    outside = srv_json_tree_parse(text, len, 4, &plain, &cend);
    cJSON_Delete(plain);
    srv_arena_init(&a, first, sizeof first, 4 * len);
    srv_arena_enter(&a);
    cr_assert_eq(srv_arena_cjson(), &a);
    st = srv_json_tree_parse(text, len, 4, &mine, &end);
    srv_arena_leave();
    cr_assert_eq(st, outside, "status %d in the arena, %d outside: %.*s", st,
                 outside, (int)len, text);
    if (st == SRV_TREE_OK) {
        cr_assert_not_null(mine);
        theirs = cJSON_ParseWithLengthOpts(text, len, &cend, 0);
        cr_assert_not_null(theirs);
        cr_assert(json_same_tree(mine, theirs), "trees differ: %.*s", (int)len,
                  text);
        cr_assert(json_links_ok(mine) && json_links_ok(theirs), "links: %.*s",
                  (int)len, text);
        cr_assert_eq(end, cend);
        cJSON_Delete(theirs);
        srv_arena_enter(&a);
        cJSON_Delete(mine); /* nothing to free in the arena, and no crash */
        srv_arena_leave();
    } else {
        cr_assert_null(mine);
    }
    srv_arena_cleanup(&a);
    return st;
}

Test(json_tree, trees_built_in_the_arena_are_cjson_trees)
{
    size_t accepted = random_documents(compare_in_arena);

    cr_assert_gt(accepted, 10000, "only %zu of 20000 read", accepted);
    cr_assert_eq(compare_in_arena("{\"a\": [[1, 2], [3]], \"b\": \"x\"}", 31),
                 SRV_TREE_OK);
    cr_assert_eq(compare_in_arena("{\"a\": [1, 2,]}", 14), SRV_TREE_DECLINED);
}

Test(json_tree, numbers_keep_cjson_valueint_saturation)
{
    expect_same("[2147483646.5, 2147483647.5, -2147483648.5, -2147483647.9,"
                " 1e300, -1e300, 1e999, -1e999, 0.9999999999, -0.5]");
    cr_assert_eq(compare_in_arena("[2147483647.5, -2147483648.5, 1e999]", 36),
                 SRV_TREE_OK);
}

/* A large array crosses many of the arena's blocks and node batches. */
Test(json_tree, a_large_body_in_the_arena_reads_as_cjson_reads_it)
{
    size_t cap = 4 << 20, n = 0, i;
    char *doc = malloc(cap);

    cr_assert_not_null(doc);
    n += (size_t)snprintf(doc + n, cap - n, "{\"x\": [");
    for (i = 0; i < 40000; i++)
        n += (size_t)snprintf(doc + n, cap - n, "%s[%.17g, \"s%zu\", %s]",
                              i ? "," : "", (double)i / 7.0 - 3000.0, i % 10,
                              i % 3 ? "true" : "null");
    n += (size_t)snprintf(doc + n, cap - n, "]}");
    cr_assert_lt(n, cap);
    cr_assert_eq(compare_in_arena(doc, n), SRV_TREE_OK);
    free(doc);
}

/* Reads text with packed arrays, in an arena or not: the status and end
 * are those of srv_json_tree_parse, and the tree is cJSON's (json_same_packed).
 * Out of an arena the tree is cJSON_Delete'd, which must free it all. */
static srv_tree_status compare_packed(const char *text, size_t len,
                                      int in_arena)
{
    _Alignas(max_align_t) char first[1024];
    const char *end = NULL, *pend = NULL, *cend = NULL;
    cJSON *plain = NULL, *mine = NULL, *theirs;
    srv_tree_status st, want;
    srv_arena a;

    want = srv_json_tree_parse(text, len, 4, &plain, &pend);
    cJSON_Delete(plain);
    if (in_arena) {
        srv_json_hooks_install();
        srv_arena_init(&a, first, sizeof first, 4 * len);
        srv_arena_enter(&a);
    }
    st = srv_json_tree_parse_packed(text, len, 4, &mine, &end);
    if (in_arena)
        srv_arena_leave();
    cr_assert_eq(st, want, "status %d, %d unpacked: %.*s", st, want, (int)len,
                 text);
    if (st == SRV_TREE_OK) {
        theirs = cJSON_ParseWithLengthOpts(text, len, &cend, 0);
        cr_assert_not_null(theirs);
        cr_assert(json_same_packed(mine, theirs), "trees differ: %.*s",
                  (int)len, text);
        cr_assert_eq(end, cend);
        cr_assert_eq(end, pend);
        cJSON_Delete(theirs);
    } else {
        cr_assert_null(mine);
    }
    if (in_arena)
        srv_arena_cleanup(&a);
    else
        cJSON_Delete(mine);
    return st;
}

Test(json_tree, packed_arrays_hold_cjson_numbers)
{
    static const char *const docs[] = {
        "[]",
        "[1]",
        "[[1, 2, 3], [4], [], [5, \"x\"], [\"x\", 5], [6, [7]], [[8], 9]]",
        "{\"a\": [1, -0, 1e999, -1e-999, 0.1, 2147483648], \"b\": [true, 1]}",
        "{\"a\": [1, 2, null, 3], \"b\": [1, 2, {}], \"c\": [ 1 , 2 ]}",
        "[1, 2, 3] trailing",
        "7",
    };
    static const char *const declined[] = {
        "[1, 2,]", "[1, 2",    "[1, 2 3]",        "[1, 01]", "[1, 2}",
        "[1, -]",  "[1, NaN]", "[1, 2, \"\\n\"]", "[1,",
    };
    static const char noise[] = " ,:[]{}\"-+.eE0123456789tfnu\\x";
    char doc[4096];
    size_t i, n, accepted = 0;

    for (i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        cr_assert_eq(compare_packed(docs[i], strlen(docs[i]), 0), SRV_TREE_OK);
        cr_assert_eq(compare_packed(docs[i], strlen(docs[i]), 1), SRV_TREE_OK);
    }
    for (i = 0; i < sizeof declined / sizeof declined[0]; i++) {
        n = strlen(declined[i]);
        cr_assert_eq(compare_packed(declined[i], n, 0), SRV_TREE_DECLINED);
        cr_assert_eq(compare_packed(declined[i], n, 1), SRV_TREE_DECLINED);
    }
    for (i = 0; i < 20000; i++) {
        n = random_value(doc, sizeof doc, 0);
        if (i % 2 == 1 && n > 0)
            doc[next_u64() % n] = noise[next_u64() % (sizeof noise - 1)];
        if (compare_packed(doc, n, (int)(i % 3 == 0)) == SRV_TREE_OK)
            accepted++;
    }
    cr_assert_gt(accepted, 10000, "only %zu of 20000 read", accepted);
}

/* Arrays of numbers longer than the reader's first run buffer, and many
 * of them, so that it grows and is reused. */
Test(json_tree, long_packed_arrays)
{
    size_t cap = 8 << 20, n = 0, i, j;
    char *doc = malloc(cap);

    cr_assert_not_null(doc);
    n += (size_t)snprintf(doc + n, cap - n, "{\"x\": [");
    for (i = 0; i < 30; i++) {
        n += (size_t)snprintf(doc + n, cap - n, "%s[", i ? "," : "");
        for (j = 0; j < 37 * i * i + 1; j++)
            n += (size_t)snprintf(doc + n, cap - n, "%s%.17g", j ? "," : "",
                                  (double)(i * j) / 3.0 - 7.0);
        n += (size_t)snprintf(doc + n, cap - n, "%s]", i % 4 ? "" : ", null");
    }
    n += (size_t)snprintf(doc + n, cap - n, "]}");
    cr_assert_lt(n, cap);
    cr_assert_eq(compare_packed(doc, n, 1), SRV_TREE_OK);
    cr_assert_eq(compare_packed(doc, n, 0), SRV_TREE_OK);
    free(doc);
}

/* ---- The arena ----------------------------------------------------------- */

Test(arena, allocations_are_aligned_distinct_and_grow)
{
    _Alignas(max_align_t) char first[256];
    srv_arena a;
    char *p[2000];
    size_t i;

    srv_arena_init(&a, first, sizeof first, 1000);
    for (i = 0; i < 2000; i++) {
        p[i] = srv_arena_alloc(&a, 1 + i % 100);
        cr_assert_not_null(p[i]);
        cr_assert_eq((uintptr_t)p[i] % _Alignof(max_align_t), 0);
        memset(p[i], (int)(i & 0xff), 1 + i % 100);
    }
    for (i = 0; i < 2000; i++)
        cr_assert_eq((unsigned char)p[i][i % 100], i & 0xff, "block %zu", i);
    cr_assert_not_null(srv_arena_alloc(&a, (size_t)8 << 20));
    cr_assert_null(srv_arena_alloc(&a, SIZE_MAX - 4));
    srv_arena_cleanup(&a);
}

Test(arena, cjson_parses_into_the_arena_and_nothing_leaks)
{
    const char *doc = "{\"logits\": [[1, 2], [3, 4]], \"labels\": [0, 1],"
                      " \"reduction\": \"sum\"}";
    const char *end;
    cJSON *in_arena, *outside;
    srv_arena a;
    size_t k;

    srv_json_hooks_install();
    srv_json_hooks_install();
    for (k = 0; k < 3; k++) {
        srv_arena_init(&a, NULL, 0, 4 * strlen(doc));
        srv_arena_enter(&a);
        in_arena = cJSON_ParseWithLengthOpts(doc, strlen(doc), &end, 0);
        cJSON_Delete(cJSON_Parse("[1, 2, oops]"));
        srv_arena_leave();
        outside = cJSON_Parse(doc);
        cr_assert_not_null(in_arena);
        cr_assert(json_same_tree(in_arena, outside));
        cJSON_Delete(outside);
        srv_arena_cleanup(&a);
    }
}

/* Without lossd's hooks installed, an entered arena is not where cJSON
 * allocates: the reader then makes its tree with cJSON_malloc, so that
 * cJSON_Delete frees it (outside the arena) as any other. */
Test(arena, the_reader_uses_the_arena_only_when_cjson_does)
{
    const char *doc = "{\"a\": [1, 2.5, \"s\", true], \"b\": {\"c\": null}}";
    const char *end;
    cJSON *tree = NULL;
    srv_arena a;

    srv_arena_init(&a, NULL, 0, 0);
    cr_assert_null(srv_arena_cjson());
    srv_arena_enter(&a);
    cr_assert_null(srv_arena_cjson());
    cr_assert_eq(srv_json_tree_parse(doc, strlen(doc), 4, &tree, &end),
                 SRV_TREE_OK);
    srv_arena_leave();
    cr_assert_null(a.blocks);
    cr_assert(json_links_ok(tree));
    cJSON_Delete(tree);
    srv_arena_cleanup(&a);

    srv_json_hooks_install();
    srv_arena_init(&a, NULL, 0, 0);
    srv_arena_enter(&a);
    cr_assert_eq(srv_arena_cjson(), &a);
    srv_arena_leave();
    cr_assert_null(srv_arena_cjson());
    srv_arena_cleanup(&a);
}

Test(arena, rewind_returns_to_the_first_buffer)
{
    _Alignas(max_align_t) char first[1024];
    srv_arena a;
    char *p, *q;

    srv_arena_init(&a, first, sizeof first, 0);
    p = srv_arena_alloc(&a, 64);
    cr_assert(p >= first && p < first + sizeof first);
    cr_assert_not_null(srv_arena_alloc(&a, 4096));
    cr_assert_not_null(a.blocks);
    srv_arena_rewind(&a);
    cr_assert_null(a.blocks);
    q = srv_arena_alloc(&a, 64);
    cr_assert_eq(p, q);
    srv_arena_cleanup(&a);
}

/* Large buffers start on a 2 MiB boundary, so that every 2 MiB of them can
 * be a huge page, and hold what was asked (written to the last byte, freed
 * by free); small ones are plain malloc; an impossible size is NULL. */
Test(arena, huge_malloc_aligns_large_buffers)
{
    const size_t huge = (size_t)2 << 20;
    /* 1 MiB - 1, 1 MiB, 2 MiB - 1, 2 MiB, 5 MiB + 3 */
    static const size_t sizes[] = {0,       1,       4096,    1048575,
                                   1048576, 2097151, 2097152, 5242883};
    size_t i;
    char *p;

    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        p = srv_huge_malloc(sizes[i]);
        cr_assert_not_null(p, "%zu bytes", sizes[i]);
        if (sizes[i] >= SRV_HUGE_MIN)
            cr_expect_eq((uintptr_t)p % huge, 0, "%zu bytes at %p", sizes[i],
                         (void *)p);
        if (sizes[i] > 1) {
            p[0] = 1;
            p[sizes[i] - 1] = 2;
            cr_expect(p[0] == 1 && p[sizes[i] - 1] == 2);
        }
        free(p);
    }
    cr_expect_null(srv_huge_malloc(SIZE_MAX - 5));
}

/* ---- Through the handler ------------------------------------------------- */

/* The loss of a softmax request whose reduction is spelt reduction_json. */
static double softmax_loss(const char *reduction_json)
{
    char *body = malloc(64 * 1024), *at = body;
    const char *end;
    srv_reply r;
    cJSON *resp;
    double loss;
    size_t i, j;

    cr_assert_not_null(body);
    at += sprintf(at, "{\"logits\": [");
    for (i = 0; i < 200; i++) {
        at += sprintf(at, "%s[", i ? "," : "");
        for (j = 0; j < 10; j++)
            at += sprintf(at, "%s%.17g", j ? "," : "",
                          (double)((i * 7 + j * 3) % 11) / 3.0 - 1.5);
        at += sprintf(at, "]");
    }
    at += sprintf(at, "], \"labels\": [");
    for (i = 0; i < 200; i++)
        at += sprintf(at, "%s%zu", i ? "," : "", i % 10);
    sprintf(at, "], \"reduction\": %s}", reduction_json);
    srv_loss_run("softmax", body, strlen(body), &r);
    cr_assert_eq(r.status, 200, "%.*s", (int)r.len, r.body);
    resp = cJSON_ParseWithLengthOpts(r.body, r.len, &end, 0);
    cr_assert_not_null(resp);
    loss = cJSON_GetObjectItemCaseSensitive(resp, "loss")->valuedouble;
    cJSON_Delete(resp);
    srv_reply_cleanup(&r);
    free(body);
    return loss;
}

/* A body the reader declines at its very end (an escape in the last
 * string) is read again by cJSON, in an emptied arena, to the same answer
 * as the body the reader takes. */
Test(json_tree, a_body_declined_late_reads_the_same_through_cjson)
{
    double fast = softmax_loss("\"sum\""), slow = softmax_loss("\"s\\u0075m\"");

    cr_assert_eq(fast, slow);
    cr_assert_neq(fast, softmax_loss("\"mean\""));
}

/* ---- The walk of innermost arrays --------------------------------------- */

/* The status, error code, field and message of a request. */
static int run_error(const char *loss, const char *body, char *code,
                     char *field, char *message)
{
    const char *end;
    srv_reply r;
    cJSON *resp, *e;
    int status;

    srv_loss_run(loss, body, strlen(body), &r);
    resp = cJSON_ParseWithLengthOpts(r.body, r.len, &end, 0);
    cr_assert_not_null(resp);
    status = r.status;
    e = cJSON_GetObjectItemCaseSensitive(resp, "error");
    code[0] = field[0] = message[0] = '\0';
    if (e != NULL) {
        cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
        cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "field");
        cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        snprintf(code, 64, "%s", cJSON_IsString(c) ? c->valuestring : "");
        snprintf(field, 64, "%s", cJSON_IsString(f) ? f->valuestring : "");
        snprintf(message, 256, "%s", cJSON_IsString(m) ? m->valuestring : "");
    }
    cJSON_Delete(resp);
    srv_reply_cleanup(&r);
    return status;
}

/* Each kind of bad value, at each place of a 3x4 logits and of the labels:
 * the error names that place, with the words the element-by-element walk
 * has always used, and a second bad value later on is not the one named. */
Test(json_in, a_bad_value_in_a_row_is_named_where_it_is)
{
    static const struct {
        const char *token;
        int status;
        const char *code, *words;
    } bad[] = {
        {"null", 400, "wrong_type", "must be a number, not null"},
        {"true", 400, "wrong_type", "must be a number, not a boolean"},
        {"\"7\"", 400, "wrong_type", "must be a number, not a string"},
        {"{}", 400, "wrong_type", "must be a number, not an object"},
        {"[1]", 422, "shape_mismatch",
         "is an array where a number belongs: logits is 2-dimensional"},
        {"1e999", 422, "non_finite",
         "is infinite or NaN (numbers must be finite doubles)"},
    };
    char body[512], code[64], field[64], message[256], want[256], path[32];
    size_t b, i, j, k;

    for (b = 0; b < sizeof bad / sizeof bad[0]; b++)
        for (i = 0; i < 3; i++)
            for (j = 0; j < 4; j++) {
                int at = sprintf(body, "{\"logits\":[");
                for (k = 0; k < 12; k++)
                    at += sprintf(body + at, "%s%s%s%s", k % 4 ? "" : "[",
                                  k == i * 4 + j     ? bad[b].token
                                  : k == 11 && j < 3 ? "null"
                                                     : "0.5",
                                  k % 4 == 3 ? "]" : "", k < 11 ? "," : "");
                sprintf(body + at, "],\"labels\":[0,1,2]}");
                sprintf(path, "logits[%zu][%zu]", i, j);
                sprintf(want, "%s %s", path, bad[b].words);
                cr_assert_eq(run_error("softmax", body, code, field, message),
                             bad[b].status, "%s", body);
                cr_assert_str_eq(code, bad[b].code, "%s", body);
                cr_assert_str_eq(field, path, "%s", body);
                cr_assert_str_eq(message, want, "%s", body);
            }
    for (j = 0; j < 3; j++) {
        sprintf(body, "{\"logits\":[[1,2],[3,4],[5,6]],\"labels\":[%s,%s,%s]}",
                j == 0 ? "1.5" : "0", j == 1 ? "1e19" : "1",
                j == 2 ? "-0.25" : "0");
        sprintf(path, "labels[%zu]", j);
        sprintf(want, "%s must be an integer (64-bit), got %s", path,
                j == 0   ? "1.5"
                : j == 1 ? "1e+19"
                         : "-0.25");
        cr_assert_eq(run_error("softmax", body, code, field, message), 400);
        cr_assert_str_eq(code, "wrong_type");
        cr_assert_str_eq(field, path);
        cr_assert_str_eq(message, want);
    }
}

/* Rows longer or shorter than the first, before or after a bad value. */
Test(json_in, rows_of_another_length_are_named)
{
    char code[64], field[64], message[256];

    cr_assert_eq(run_error("softmax",
                           "{\"logits\":[[1,2,3],[4,5,6,7,8,9,10,11],[null]],"
                           "\"labels\":[0,1,2]}",
                           code, field, message),
                 422);
    cr_assert_str_eq(field, "logits[1]");
    cr_assert_str_eq(message, "logits[1] has 8 entries, logits[0] has 3 (rows "
                              "must all have the same length)");
    cr_assert_eq(run_error("softmax",
                           "{\"logits\":[[1,2,3],[4,5],[6,7,8]],"
                           "\"labels\":[0,1,2]}",
                           code, field, message),
                 422);
    cr_assert_str_eq(message, "logits[1] has 2 entries, logits[0] has 3 (rows "
                              "must all have the same length)");
    cr_assert_eq(run_error("softmax",
                           "{\"logits\":[[1,2,3],[4,5,6,7],[6,7,8]],"
                           "\"labels\":[0,1,[2]]}",
                           code, field, message),
                 422);
    cr_assert_str_eq(field, "logits[1]");
    cr_assert_eq(run_error("softmax",
                           "{\"logits\":[[1,2,3],[4,false,6,7],[6,7,8]],"
                           "\"labels\":[0,1,2]}",
                           code, field, message),
                 400);
    cr_assert_str_eq(field, "logits[1][1]");
    cr_assert_eq(run_error("contrastive",
                           "{\"x1\":[[[1,2],[1,2,3]],[[1,2],[3,4]]],"
                           "\"x2\":[[[1,2],[1,2]],[[1,2],[3,4]]],"
                           "\"labels\":[1,0]}",
                           code, field, message),
                 422);
    cr_assert_str_eq(field, "x1[0][1]");
    cr_assert_str_eq(message, "x1[0][1] has 3 entries, x1[0][0] has 2 (rows "
                              "must all have the same length)");
}

/* A layer of numbers where a layer of rows belongs, and the other way. */
Test(json_in, numbers_where_rows_belong_are_named)
{
    char code[64], field[64], message[256];

    cr_assert_eq(run_error("contrastive",
                           "{\"x1\":[[[1,2]],[3,4]],\"x2\":[[[1,2]],[[3,4]]],"
                           "\"labels\":[1]}",
                           code, field, message),
                 422);
    cr_assert_str_eq(field, "x1[1][0]");
    cr_assert_str_eq(message, "x1[1][0] is a number where an array belongs: "
                              "x1 is [L][N][D]");
    cr_assert_eq(run_error("contrastive",
                           "{\"x1\":[1,2],\"x2\":[[1,2]],\"labels\":[1]}", code,
                           field, message),
                 422);
    cr_assert_str_eq(message, "x1[0] is a number where an array belongs: x1 "
                              "is [N][D] or [L][N][D]");
    cr_assert_eq(run_error("softmax",
                           "{\"logits\":[[1,2,3]],\"labels\":[1e300]}", code,
                           field, message),
                 400);
    cr_assert_str_eq(message, "labels[0] must be an integer (64-bit), got "
                              "1.0000000000000001e+300");
}
