/* json_valid.c -- one JSON document or not, without recursion.
 *
 * The text is read once, left to right, by a loop over what may come next
 * (a value, a key, a comma or a close).  The only memory is a bit for each
 * open container, array or object: on the stack up to 2048 levels, on the
 * heap beyond. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_valid.h"

/* ---- Tokens -------------------------------------------------------------- */

/* Whether s[0..n) starts with word (lower case), ignoring case, and no
 * letter follows it. */
static int starts_with_word(const char *s, size_t n, const char *word)
{
    size_t i, w = strlen(word);

    if (n < w)
        return 0;
    for (i = 0; i < w; i++)
        if ((s[i] | 0x20) != word[i])
            return 0;
    return n == w || !((s[w] | 0x20) >= 'a' && (s[w] | 0x20) <= 'z');
}

size_t srv_json_nonfinite_len(const char *s, size_t n)
{
    size_t sign = n > 0 && (s[0] == '-' || s[0] == '+');

    if (starts_with_word(s + sign, n - sign, "nan") ||
        starts_with_word(s + sign, n - sign, "inf"))
        return sign + 3;
    if (starts_with_word(s + sign, n - sign, "infinity"))
        return sign + 8;
    return 0;
}

size_t srv_json_skip_space(const char *s, size_t len, size_t i)
{
    while (i < len &&
           (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

static size_t skip_digits(const char *s, size_t len, size_t i)
{
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* The escape whose backslash is at s[k]: the offset after it, or the
 * offset of its first wrong byte, with *bad set. */
static size_t escape_end(const char *s, size_t len, size_t k, int *bad)
{
    size_t j;

    if (k + 1 < len && s[k + 1] != '\0' && strchr("\"\\/bfnrt", s[k + 1]))
        return k + 2;
    if (k + 1 == len || s[k + 1] != 'u') {
        *bad = 1;
        return k + 1;
    }
    for (j = k + 2; j < k + 6; j++)
        if (j == len || !is_hex(s[j])) {
            *bad = 1;
            return j;
        }
    return k + 6;
}

/* The string whose opening quote is at s[*i]: 0 with *i after its closing
 * quote, or -1 with *i at its first wrong byte. */
static int skip_string(const char *s, size_t len, size_t *i)
{
    size_t k = *i + 1;
    int bad = 0;

    while (k < len && s[k] != '"' && !bad) {
        if ((unsigned char)s[k] < 0x20)
            break;
        k = s[k] == '\\' ? escape_end(s, len, k, &bad) : k + 1;
    }
    *i = k;
    if (bad || k == len || s[k] != '"')
        return -1;
    *i = k + 1;
    return 0;
}

/* A number (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?) at s[*i]: 0
 * with *i after it, or -1 with *i at its first wrong byte. */
static int skip_number(const char *s, size_t len, size_t *i)
{
    size_t k = *i, d;

    if (k < len && s[k] == '-')
        k++;
    if (k < len && s[k] == '0')
        d = k + 1;
    else if ((d = skip_digits(s, len, k)) == k)
        goto bad;
    k = d;
    if (k < len && s[k] == '.') {
        if ((d = skip_digits(s, len, k + 1)) == k + 1)
            goto bad_next;
        k = d;
    }
    if (k < len && (s[k] | 0x20) == 'e') {
        k += k + 1 < len && (s[k + 1] == '+' || s[k + 1] == '-') ? 2 : 1;
        if ((d = skip_digits(s, len, k)) == k)
            goto bad;
        k = d;
    }
    *i = k;
    return 0;
bad_next:
    k++;
bad:
    *i = k;
    return -1;
}

/* true, false or null at s[*i]: 0 with *i after it, or -1. */
static int skip_literal(const char *s, size_t len, size_t *i)
{
    static const char *const words[] = {"true", "false", "null"};
    size_t w, n;

    for (w = 0; w < 3; w++) {
        n = strlen(words[w]);
        if (len - *i >= n && memcmp(s + *i, words[w], n) == 0) {
            *i += n;
            return 0;
        }
    }
    return -1;
}

/* ---- Containers ---------------------------------------------------------- */

/* The containers open at this point of the text, a bit each (1: object),
 * and what may come next. */
typedef struct walk {
    const char *s;
    size_t len, i;
    int nonfinite;
    enum { W_VALUE, W_ITEM, W_KEY, W_FIRST_KEY, W_NEXT } want;
    uint8_t *bits; /* local, or malloc'd once the nesting outgrows it */
    size_t depth, cap;
    uint8_t local[256];
} walk;

static int top_is_object(const walk *w)
{
    size_t d = w->depth - 1;

    return (w->bits[d / 8] >> (d % 8)) & 1;
}

/* Opens an array or object: 0, or -1 out of memory. */
static int open_container(walk *w, int object)
{
    uint8_t *b;
    size_t d = w->depth;

    if (d == w->cap * 8) {
        b = w->bits == w->local ? malloc(w->cap * 2)
                                : realloc(w->bits, w->cap * 2);
        if (b == NULL)
            return -1;
        if (w->bits == w->local)
            memcpy(b, w->local, w->cap);
        w->bits = b;
        w->cap *= 2;
    }
    if (object)
        w->bits[d / 8] = (uint8_t)(w->bits[d / 8] | 1u << (d % 8));
    else
        w->bits[d / 8] = (uint8_t)(w->bits[d / 8] & ~(1u << (d % 8)));
    w->depth++;
    w->want = object ? W_FIRST_KEY : W_ITEM;
    w->i++;
    return 0;
}

/* The close at s[i], which must match the open container: 0 or -1. */
static int close_container(walk *w)
{
    if (w->depth == 0 || w->s[w->i] != (top_is_object(w) ? '}' : ']'))
        return -1;
    w->depth--;
    w->want = W_NEXT;
    w->i++;
    return 0;
}

/* ---- The walk ------------------------------------------------------------ */

/* A value at s[i]: 0, -1 where it goes wrong, or -2 out of memory. */
static int value(walk *w)
{
    size_t n;
    char c = w->s[w->i];

    if (c == '[' || c == '{')
        return open_container(w, c == '{') == 0 ? 0 : -2;
    w->want = W_NEXT;
    if (c == '"')
        return skip_string(w->s, w->len, &w->i);
    if (w->nonfinite &&
        (n = srv_json_nonfinite_len(w->s + w->i, w->len - w->i)) > 0) {
        w->i += n;
        return 0;
    }
    if (c == 't' || c == 'f' || c == 'n')
        return skip_literal(w->s, w->len, &w->i);
    return skip_number(w->s, w->len, &w->i);
}

/* A key and its colon at s[i]: 0 or -1. */
static int key(walk *w)
{
    if (w->s[w->i] != '"' || skip_string(w->s, w->len, &w->i) != 0)
        return -1;
    w->i = srv_json_skip_space(w->s, w->len, w->i);
    if (w->i == w->len || w->s[w->i] != ':')
        return -1;
    w->i++;
    w->want = W_VALUE;
    return 0;
}

/* One step from s[i], which is not white space: 0, -1 or -2 (value). */
static int step(walk *w)
{
    char c = w->s[w->i];

    switch (w->want) {
    case W_FIRST_KEY:
        return c == '}' ? close_container(w) : key(w);
    case W_KEY:
        return key(w);
    case W_ITEM:
        return c == ']' ? close_container(w) : value(w);
    case W_NEXT:
        if (c != ',')
            return close_container(w);
        w->want = top_is_object(w) ? W_KEY : W_VALUE;
        w->i++;
        return 0;
    case W_VALUE:
    default:
        return value(w);
    }
}

size_t srv_json_valid_at(const char *s, size_t len, int nonfinite)
{
    walk w = {.s = s, .len = len, .nonfinite = nonfinite, .want = W_VALUE};
    int rc = 0;

    w.bits = w.local;
    w.cap = sizeof w.local;
    for (;;) {
        w.i = srv_json_skip_space(s, len, w.i);
        if (w.i == len || (w.depth == 0 && w.want == W_NEXT))
            break;
        if ((rc = step(&w)) != 0)
            break;
    }
    if (w.bits != w.local)
        free(w.bits);
    if (rc == -2 || (rc == 0 && w.depth == 0 && w.want == W_NEXT &&
                     srv_json_skip_space(s, len, w.i) == len))
        return SIZE_MAX;
    return w.i < len ? w.i : len > 0 ? len - 1 : 0;
}
