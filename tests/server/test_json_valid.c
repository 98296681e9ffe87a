/* test_json_valid.c -- the JSON check without recursion (json_valid.h):
 * strict RFC 8259 text is accepted and nothing else, each error is placed
 * at the byte where the text goes wrong, and nesting of any depth is
 * followed.  Its agreement with cJSON read strictly, on random documents,
 * is tested in test_json_tree.c, beside their generator. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_valid.h"

static size_t valid_at(const char *s)
{
    return srv_json_valid_at(s, strlen(s), 0);
}

Test(json_valid, json_texts_are_accepted)
{
    static const char *const ok[] = {
        "{}",
        "[]",
        " {\"a\" : [1, -0, 0.5, -1.5e-3, 2E+10, 3e7] }\r\n",
        "0",
        "-0.0",
        "\"\"",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD834\"",
        "true",
        "false",
        "null",
        "[[[[[[[[[[]]]]]]]]]]",
        "{\"a\":{\"b\":{\"c\":{}}}}",
        "[{}, [], \"x\", 1, true, null]",
        "\t[ 1 ,2 ]\n",
        "\"\xc3\xa9\x7f\""};
    size_t i;

    for (i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_expect_eq(valid_at(ok[i]), SIZE_MAX, "%s: rejected at %zu", ok[i],
                     valid_at(ok[i]));
}

Test(json_valid, errors_are_placed_where_the_text_goes_wrong)
{
    static const struct {
        const char *text;
        size_t at;
    } bad[] = {
        {"", 0},         {" ", 0},       {"{", 0},           {"[1, 2", 4},
        {"[1,]", 3},     {"[1 2]", 3},   {"{\"a\" 1}", 5},   {"{\"a\":1,}", 7},
        {"{,}", 1},      {"{1:2}", 1},   {"[}", 1},          {"{]", 1},
        {"[[1]}", 4},    {"[1]]", 3},    {"{} {}", 3},       {"01", 1},
        {"[01]", 2},     {"[1.]", 3},    {"[.5]", 1},        {"[1.e5]", 3},
        {"[1e]", 3},     {"[1e+]", 4},   {"[+1]", 1},        {"[-]", 2},
        {"[- 1]", 2},    {"[tru]", 1},   {"[nul l]", 1},     {"[NaN]", 1},
        {"\"a\tb\"", 2}, {"\"\\x\"", 2}, {"\"\\u12g4\"", 5}, {"\"abc", 3},
        {"[\"a\\", 3},   {"\f[]", 0},    {"[1]\f", 3},
    };
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(valid_at(bad[i].text), bad[i].at,
                     "'%s': error at %zu, expected %zu", bad[i].text,
                     valid_at(bad[i].text), bad[i].at);
}

Test(json_valid, nan_and_infinity_count_as_numbers_when_asked)
{
    static const char doc[] = "[NaN, -Infinity, inf, +INF, nan]";
    static const char bad[] = "[NaNa]";

    cr_expect_eq(srv_json_valid_at(doc, strlen(doc), 0), 1);
    cr_expect_eq(srv_json_valid_at(doc, strlen(doc), 1), SIZE_MAX);
    cr_expect_eq(srv_json_valid_at(bad, strlen(bad), 1), 1);
    cr_expect_eq(srv_json_nonfinite_len("-Infinity,", 10), 9);
    cr_expect_eq(srv_json_nonfinite_len("nan]", 4), 3);
    cr_expect_eq(srv_json_nonfinite_len("Infinit", 7), 0);
    cr_expect_eq(srv_json_nonfinite_len("", 0), 0);
}

/* n levels, arrays and objects in turn ("[{"k":[{"k":..."), closed in
 * reverse order; *len gets its length. */
static char *mixed(size_t n, size_t *len)
{
    char *s = malloc(6 * n + 1);
    size_t i, at = 0;

    cr_assert_not_null(s);
    for (i = 0; i < n; i++) {
        memcpy(s + at, i % 2 ? "{\"k\":" : "[", i % 2 ? 5 : 1);
        at += i % 2 ? 5 : 1;
    }
    for (i = n; i-- > 0;)
        s[at++] = i % 2 ? '}' : ']';
    s[at] = '\0';
    *len = at;
    return s;
}

Test(json_valid, nesting_of_any_depth_is_followed)
{
    size_t n = 1000000, len = 2 * n;
    char *s = malloc(len);

    /* Arrays only: a million levels, past the 2048 kept on the stack. */
    cr_assert_not_null(s);
    memset(s, '[', n);
    memset(s + n, ']', n);
    cr_expect_eq(srv_json_valid_at(s, len, 0), SIZE_MAX);
    cr_expect_eq(srv_json_valid_at(s, len - 1, 0), len - 2, "one unclosed");
    s[n + 500] = '}';
    cr_expect_eq(srv_json_valid_at(s, len, 0), n + 500, "a wrong close");
    free(s);
    /* Arrays and objects in turn: each close must match its own open. */
    s = mixed(100001, &len);
    cr_expect_eq(srv_json_valid_at(s, len, 0), SIZE_MAX);
    s[len - 2] = s[len - 2] == ']' ? '}' : ']';
    cr_expect_eq(srv_json_valid_at(s, len, 0), len - 2, "a swapped close");
    free(s);
    cr_expect_eq(valid_at("{["), 1, "an object's member needs a key");
}
