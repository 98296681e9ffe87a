/* json_tree.c -- a fast reader of strict JSON into a cJSON tree, with exact
 * decimal-to-double conversion (json_tree.h). */
#include "json_tree.h"

#include "arena.h"
#include "json_pow10.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cJSON reads a number through a 64-byte buffer, so a longer one parses
 * differently there; such numbers are left to it. */
#define NUMBER_MAX 63
/* Keys and string values longer than this are left to cJSON. */
#define STRING_MAX 255
/* 10^19 < 2^64: this many significant digits always fit a uint64_t. */
#define DIGITS_MAX 19

/* ---- Numbers ------------------------------------------------------------ */

#if !defined(__SIZEOF_INT128__)
#error "json_tree.c needs unsigned __int128 (gcc or clang, 64-bit target)"
#endif
__extension__ typedef unsigned __int128 u128;

/* 10^k, exact in double for k <= 22. */
static const double pow10_d[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* floor(x / 2^s), whatever the sign of x (>> of a negative value is
 * implementation-defined in C). */
static int64_t floor_shift(int64_t x, int s)
{
    return x >= 0 ? x >> s : ~(~x >> s);
}

/* w * 10^q (w > 0) rounded to the nearest double, ties to even.
 *
 * Method: Eisel-Lemire (D. Lemire, "Number parsing at a gigabyte per
 * second", 2021, as in fast_float).  w is normalised to 64 bits and
 * multiplied by the first 64 bits of 10^q (json_pow10.h), and by the next
 * 64 only when the top product's last bits are all ones, where a carry
 * from below could matter; the product's first 54 bits are the
 * significand with one rounding bit.  A tie (round to even) needs an
 * exact product, which is possible only for -4 <= q <= 23 and is then
 * seen as all-zero bits below.  Subnormal results are shifted before the
 * rounding.  The table is the truncated 10^q, except that, as in
 * fast_float, 10^-27 .. 10^-1 are rounded up (their last bit + 1).
 *
 * Accuracy: correctly rounded for every w < 2^64 and every q: below
 * 10^-342 the value is under half the least subnormal (0), above 10^308
 * it overflows (infinity).  That the 128-bit product always suffices was
 * proved by N. Mushtak and D. Lemire ("Fast number parsing without
 * fallback", 2023). */
static double eisel_lemire(uint64_t w, long q)
{
    const uint64_t *t;
    uint64_t hi, lo, mant, bits, tlo;
    u128 prod;
    int lz, upper, shift, p2;
    double d;

    if (q < SRV_POW10_128_MIN)
        return 0.0;
    if (q > 308)
        return HUGE_VAL;
    lz = __builtin_clzll(w);
    w <<= lz;
    t = srv_pow10_128[q - SRV_POW10_128_MIN];
    prod = (u128)w * t[0];
    hi = (uint64_t)(prod >> 64);
    lo = (uint64_t)prod;
    if ((hi & 0x1ff) == 0x1ff) {
        tlo = t[1] + (q >= -27 && q < 0);
        prod = (u128)w * tlo;
        lo += (uint64_t)(prod >> 64);
        hi += lo < (uint64_t)(prod >> 64);
    }
    upper = (int)(hi >> 63);
    shift = upper + 9;
    mant = hi >> shift;
    /* The biased exponent: floor(log2(10^q)) + 63 - lz + upper, + 1023 */
    p2 = (int)floor_shift((152170 + 65536) * (int64_t)q, 16) + 63 + upper - lz +
         1023;
    if (p2 <= 0) {
        if (1 - p2 >= 64)
            return 0.0;
        mant >>= 1 - p2;
        mant = (mant + (mant & 1)) >> 1;
        bits = mant; /* a carry into bit 52 makes it the least normal */
    } else {
        if (lo <= 1 && q >= -4 && q <= 23 && (mant & 3) == 1 &&
            mant << shift == hi)
            mant &= ~(uint64_t)1;
        mant = (mant + (mant & 1)) >> 1;
        if (mant >> 53) {
            mant >>= 1;
            p2++;
        }
        if (p2 >= 0x7ff)
            return HUGE_VAL;
        bits = (uint64_t)p2 << 52 | (mant & 0x000fffffffffffffu);
    }
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* m * 10^e correctly rounded; exact says whether m holds every non-zero
 * digit (otherwise the value lies strictly between m and m + 1 times
 * 10^e).  Clinger's fast path where it applies (m and 10^e exact, one
 * rounding), else Eisel-Lemire; when digits were dropped, the answer is
 * known only if m and m + 1 round alike.  -1 when the caller must use
 * strtod. */
static int scale_exact(uint64_t m, long e, int exact, double *out)
{
    double lo;

    if (exact && m <= ((uint64_t)1 << 53) && e >= -22 && e <= 22) {
        double x = (double)m;
        *out = e < 0 ? x / pow10_d[-e] : x * pow10_d[e];
        return 0;
    }
    *out = eisel_lemire(m, e);
    if (exact)
        return 0;
    lo = eisel_lemire(m + 1, e);
    return memcmp(&lo, out, sizeof lo) == 0 ? 0 : -1;
}

static int is_digit(char c)
{
    return (unsigned)(c - '0') < 10u;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The eight bytes at p, the first in the lowest byte. */
static uint64_t load8(const char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof v);
    return v;
}

/* Zero in the bytes of v that are ASCII digits, up to the first that is
 * not one (non-zero there; the bytes after it may be anything: a carry
 * out of it can reach them). */
static uint64_t non_digits(uint64_t v)
{
    return ((v & 0xf0f0f0f0f0f0f0f0u) |
            (((v + 0x0606060606060606u) & 0xf0f0f0f0f0f0f0f0u) >> 4)) ^
           0x3333333333333333u;
}

/* 1 when all eight bytes of v are ASCII digits. */
static int eight_digits(uint64_t v)
{
    return non_digits(v) == 0;
}

/* The value of eight digit values (0..9) in the bytes of v, the first the
 * most significant: pairs, then fours, then the eight, each step one
 * multiply. */
static uint32_t digit_values(uint64_t v)
{
    v = v * 10 + (v >> 8);
    v = (((v & 0x000000ff000000ffu) * (100 + (1000000ull << 32))) +
         (((v >> 16) & 0x000000ff000000ffu) * (1 + (10000ull << 32)))) >>
        32;
    return (uint32_t)v;
}

/* The value of eight ASCII digits. */
static uint32_t eight_value(uint64_t v)
{
    return digit_values(v - 0x3030303030303030u);
}
#endif

/* Appends the digits at p to *v while there is room for them (DIGITS_MAX
 * in all, counted in *nd), eight at a time where it can; each digit
 * taken lowers *x when x is not NULL (fraction digits).  Returns where it
 * stopped. */
static inline const char *digits(const char *p, const char *end, uint64_t *v,
                                 size_t *nd, long *x)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - p >= 8 && *nd + 8 <= DIGITS_MAX && eight_digits(load8(p))) {
        *v = *v * 100000000u + eight_value(load8(p));
        *nd += 8;
        p += 8;
        if (x != NULL)
            *x -= 8;
    }
#endif
    for (; p < end && is_digit(*p) && *nd < DIGITS_MAX; p++, ++*nd) {
        *v = *v * 10 + (uint64_t)(*p - '0');
        if (x != NULL)
            --*x;
    }
    return p;
}

/* Reads the digits of a strict JSON number; returns its length (0 when s
 * does not start with one), with up to DIGITS_MAX significant digits in
 * *m, the power of ten in *e and *exact = 0 when a non-zero digit did not
 * fit. */
static size_t number_scan(const char *s, size_t len, uint64_t *m, long *e,
                          int *exact)
{
    const char *p = s, *end = s + len;
    uint64_t v = 0;
    long x = 0, ex = 0;
    size_t nd = 0;
    int ok = 1, esign = 1;

    if (p < end && *p == '-')
        p++;
    if (p == end || !is_digit(*p))
        return 0;
    if (*p == '0') {
        p++;
    } else {
        p = digits(p, end, &v, &nd, NULL);
        for (; p < end && is_digit(*p); p++, x++)
            ok &= *p == '0';
    }
    if (p < end && *p == '.') {
        if (++p == end || !is_digit(*p))
            return 0;
        if (v == 0)
            for (; p < end && *p == '0'; p++)
                x--;
        p = digits(p, end, &v, &nd, &x);
        for (; p < end && is_digit(*p); p++)
            ok &= *p == '0';
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-'))
            esign = *p++ == '-' ? -1 : 1;
        if (p == end || !is_digit(*p))
            return 0;
        for (; p < end && is_digit(*p); p++)
            if (ex < 100000)
                ex = ex * 10 + (*p - '0');
    }
    *m = v;
    *e = x + esign * ex;
    *exact = ok;
    return (size_t)(p - s);
}

/* The value of the scanned number s[0..len): exact, or by strtod. */
static int number_value(const char *s, size_t len, uint64_t m, long e,
                        int exact, double *out)
{
    char copy[NUMBER_MAX + 1];

    if (m == 0) {
        *out = s[0] == '-' ? -0.0 : 0.0;
        return 0;
    }
    if (scale_exact(m, e, exact, out) == 0) {
        if (s[0] == '-')
            *out = -*out;
        return 0;
    }
    if (len > NUMBER_MAX)
        return -1;
    memcpy(copy, s, len);
    copy[len] = '\0';
    *out = strtod(copy, NULL);
    return 0;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* 10^k, k <= 8. */
static const uint32_t pow10_u32[] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
};

/* The digits at p (24 bytes readable there) appended to *m; returns their
 * count, 24 when there are more (*m is then meaningless).  Whole words of
 * eight digits are taken while they last; in the word where the run ends,
 * the count is the position of the first byte that is not a digit
 * (non_digits), and the digit values, shifted up to the top of the word,
 * drop what follows them (with any borrow from it) and get zeros below,
 * leading zeros.  The shift, 8 * (8 - count) bits, is made in two steps:
 * 64 is not a valid count. */
static inline size_t digit_run(const char *p, uint64_t *m)
{
    uint64_t v, t, d;
    size_t n = 0, k;

    while ((t = non_digits(v = load8(p + n))) == 0) {
        *m = *m * 100000000u + eight_value(v);
        if ((n += 8) == 24)
            return n;
    }
    k = (size_t)__builtin_ctzll(t) >> 3;
    d = (v - 0x3030303030303030u) << (8 * (7 - k)) << 8;
    *m = *m * pow10_u32[k] + digit_values(d);
    return n + k;
}

/* The common number read in one pass, without number_scan's digit
 * counting and second look at the digits: an optional '-', an integer
 * part (one digit, as a rule) and an optional fraction, no exponent, at
 * most DIGITS_MAX digits in all, a lone integer 0 aside (so m holds them
 * all, exactly), and 48 bytes of text from s on to read words from (the
 * sign, 19 digits and the point, then the fraction's 24 and the byte
 * after them).  Its value is m / 10^f for
 * f fraction digits, by Clinger's fast path or Eisel-Lemire, as
 * scale_exact finds it.  Returns the length, or 0 when the number is not
 * of this kind (or not a number): number_scan reads it then. */
static inline size_t number_fast(const char *s, const char *end, double *out)
{
    const char *p;
    uint64_t m = 0;
    size_t n, f = 0;
    double x;

    if (end - s < 48)
        return 0;
    p = *s == '-' ? s + 1 : s;
    if (is_digit(p[0]) && !is_digit(p[1])) {
        m = (uint64_t)(p[0] - '0');
        n = m != 0;
        p++;
    } else {
        /* No digit, a leading zero or too many: number_scan's. */
        n = digit_run(p, &m);
        if (n < 2 || *p == '0' || n > DIGITS_MAX)
            return 0;
        p += n;
    }
    if (*p == '.') {
        if ((f = digit_run(++p, &m)) == 0)
            return 0;
        p += f;
    }
    /* An exponent, or what cJSON reads its own way ("1.5.3"), is left to
     * number_scan; a comma, the usual end, is tested first. */
    if (n + f > DIGITS_MAX || (*p != ',' && srv_json_number_char(*p)))
        return 0;
    /* Clinger's one division where every m of the length is exact
     * (m < 10^15 < 2^53), else Eisel-Lemire, both correctly rounded.  The
     * digit count decides, not m <= 2^53: the usual 16- and 17-digit
     * numbers lie on both sides of 2^53 at random, and a branch on it
     * missed half the time (parse 6-10 % faster on 15-17 digit bodies). */
    x = (double)m;
    if (n + f <= 15 || m == 0)
        x = x / pow10_d[f];
    else
        x = eisel_lemire(m, -(long)f);
    *out = *s == '-' ? -x : x;
    return (size_t)(p - s);
}
#else
static size_t number_fast(const char *s, const char *end, double *out)
{
    (void)s, (void)end, (void)out;
    return 0;
}
#endif

size_t srv_json_number_length(const char *s, size_t len)
{
    uint64_t m;
    long e;
    int exact;

    return number_scan(s, len, &m, &e, &exact);
}

int srv_json_number(const char *s, size_t len, double *out)
{
    uint64_t m;
    long e;
    int exact;

    if (len == 0 || number_scan(s, len, &m, &e, &exact) != len)
        return -1;
    return number_value(s, len, m, e, exact, out);
}

/* ---- The tree -----------------------------------------------------------
 * Nodes are made here, not by cJSON's constructors, with exactly the
 * fields those set (everything else zero) and linked as cJSON links them:
 * next runs forward, prev backward, and the first child's prev points to
 * the last child.  Their memory comes from the same place cJSON's would:
 * cJSON_malloc, or, when that is the calling thread's arena
 * (srv_arena_cjson), the arena itself, a batch of nodes at a time. */

/* Nodes taken from the arena at once, at most. */
#define NODE_BATCH 64

typedef struct reader {
    const char *p, *end;
    size_t depth, max_depth;
    srv_arena *arena;         /* where memory comes from, or NULL */
    cJSON *spare, *spare_end; /* nodes taken from the arena, not yet used */
    int packed;               /* arrays of numbers packed (json_tree.h) */
    double *run;              /* the numbers of the array being read */
    size_t run_cap;           /* doubles room in run (malloc'd) */
    srv_tree_status status;   /* the first reason to stop */
} reader;

static cJSON *stop(reader *r, srv_tree_status s)
{
    if (r->status == SRV_TREE_OK)
        r->status = s;
    return NULL;
}

/* n bytes from where cJSON would take them; NULL (stopped) when out of
 * memory. */
static void *take(reader *r, size_t n)
{
    void *p = r->arena != NULL ? srv_arena_alloc(r->arena, n) : cJSON_malloc(n);

    if (p == NULL)
        stop(r, SRV_TREE_NOMEM);
    return p;
}

/* A node of the given type, every other field zero, as cJSON_New_Item
 * makes it. */
static cJSON *node_new(reader *r, int type)
{
    cJSON *item;
    size_t n;

    if (r->arena == NULL) {
        if ((item = take(r, sizeof *item)) == NULL)
            return NULL;
    } else {
        if (r->spare == r->spare_end) {
            /* Every node needs a byte of the body at least. */
            n = (size_t)(r->end - r->p) + 1;
            n = n < NODE_BATCH ? n : NODE_BATCH;
            if ((r->spare = take(r, n * sizeof *item)) == NULL)
                return NULL;
            r->spare_end = r->spare + n;
        }
        item = r->spare++;
    }
    memset(item, 0, sizeof *item);
    item->type = type;
    return item;
}

/* Releases a tree of the reader's after a failure: in the arena, nothing
 * to do (it all goes with the arena). */
static void tree_drop(reader *r, cJSON *item)
{
    if (r->arena == NULL)
        cJSON_Delete(item);
}

/* Appends item to the children of parent; *last is the last child so
 * far (NULL before the first).  parent->child->prev is set once, by
 * children_close. */
static void child_append(cJSON *parent, cJSON **last, cJSON *item)
{
    if (*last == NULL)
        parent->child = item;
    else
        (*last)->next = item;
    item->prev = *last;
    *last = item;
}

static void children_close(cJSON *parent, cJSON *last)
{
    if (last != NULL)
        parent->child->prev = last;
}

static void skip_space(reader *r)
{
    while (r->p < r->end &&
           (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

/* valueint as cJSON sets it: saturated at INT_MIN and INT_MAX. */
static int number_int(double d)
{
    if (d >= INT_MAX)
        return INT_MAX;
    if (d <= (double)INT_MIN)
        return INT_MIN;
    return (int)d;
}

/* read_double for the numbers number_fast leaves, kept out of line so
 * that the common path stays short. */
__attribute__((noinline)) static int read_double_scan(reader *r, double *d)
{
    const char *s = r->p;
    uint64_t m;
    long e;
    int exact;
    size_t n = number_scan(s, (size_t)(r->end - s), &m, &e, &exact);

    /* cJSON reads "01" or "1.5.3" its own way: leave those to it. */
    if (n == 0 || n > NUMBER_MAX ||
        (s + n < r->end && srv_json_number_char(s[n])) ||
        number_value(s, n, m, e, exact, d) != 0) {
        stop(r, SRV_TREE_DECLINED);
        return -1;
    }
    r->p += n;
    return 0;
}

/* The number at r->p into *d; -1 (stopped) when it is not one this
 * reader takes. */
static inline int read_double(reader *r, double *d)
{
    size_t n = number_fast(r->p, r->end, d);

    if (__builtin_expect(n == 0, 0))
        return read_double_scan(r, d);
    r->p += n;
    return 0;
}

/* A number node, as cJSON_CreateNumber makes it. */
static cJSON *number_node(reader *r, double d)
{
    cJSON *item = node_new(r, cJSON_Number);

    if (item != NULL) {
        item->valuedouble = d;
        item->valueint = number_int(d);
    }
    return item;
}

static cJSON *read_number(reader *r)
{
    double d;

    if (read_double(r, &d) != 0)
        return NULL;
    return number_node(r, d);
}

/* The characters of a string without escapes or control characters,
 * copied NUL-terminated to memory of the reader's; NULL (stopped)
 * otherwise. */
static char *read_text(reader *r)
{
    const char *s = ++r->p;
    size_t n;
    char *text;

    while (r->p < r->end && *r->p != '"' && *r->p != '\\' &&
           (unsigned char)*r->p >= 0x20)
        r->p++;
    if (r->p == r->end || *r->p != '"' ||
        (n = (size_t)(r->p - s)) > STRING_MAX) {
        stop(r, SRV_TREE_DECLINED);
        return NULL;
    }
    if ((text = take(r, n + 1)) == NULL)
        return NULL;
    memcpy(text, s, n);
    text[n] = '\0';
    r->p++;
    return text;
}

static cJSON *read_string(reader *r)
{
    cJSON *item;

    if ((item = node_new(r, cJSON_String)) == NULL)
        return NULL;
    if ((item->valuestring = read_text(r)) == NULL) {
        tree_drop(r, item);
        return NULL;
    }
    return item;
}

/* true, false and null, typed as cJSON types them (true has valueint 1). */
static cJSON *read_word(reader *r)
{
    static const struct {
        const char *text;
        size_t len;
        int type;
    } words[] = {{"true", 4, cJSON_True},
                 {"false", 5, cJSON_False},
                 {"null", 4, cJSON_NULL}};
    size_t i, left = (size_t)(r->end - r->p);
    cJSON *item;

    for (i = 0; i < 3; i++) {
        if (left < words[i].len ||
            memcmp(r->p, words[i].text, words[i].len) != 0)
            continue;
        if ((item = node_new(r, words[i].type)) == NULL)
            return NULL;
        item->valueint = words[i].type == cJSON_True;
        r->p += words[i].len;
        return item;
    }
    return stop(r, SRV_TREE_DECLINED);
}

static cJSON *read_value(reader *r);

/* After an element: 1 at the closing bracket (consumed), 0 after a comma
 * (consumed), -1 on anything else. */
static int next_element(reader *r, char close)
{
    skip_space(r);
    if (r->p < r->end && *r->p == ',') {
        r->p++;
        skip_space(r);
        return 0;
    }
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 1;
    }
    stop(r, SRV_TREE_DECLINED);
    return -1;
}

/* Whether c can start a number (read_double says whether one does). */
static int number_start(char c)
{
    return c == '-' || (c >= '0' && c <= '9');
}

/* Room for one more number in r->run; -1 (stopped) when out of memory. */
static int run_grow(reader *r)
{
    size_t cap = r->run_cap ? 2 * r->run_cap : 256;
    double *run;

    if (cap > SIZE_MAX / sizeof *run ||
        (run = realloc(r->run, cap * sizeof *run)) == NULL) {
        stop(r, SRV_TREE_NOMEM);
        return -1;
    }
    r->run = run;
    r->run_cap = cap;
    return 0;
}

/* The first n numbers of r->run made nodes and appended to arr. */
static int run_nodes(reader *r, cJSON *arr, cJSON **last, size_t n)
{
    size_t i;
    cJSON *item;

    for (i = 0; i < n; i++) {
        if ((item = number_node(r, r->run[i])) == NULL)
            return -1;
        child_append(arr, last, item);
    }
    return 0;
}

/* arr made a packed array of the n numbers in r->run (json_tree.h). */
static int run_pack(reader *r, cJSON *arr, size_t n)
{
    double *v = take(r, n * sizeof *v);

    if (v == NULL)
        return -1;
    memcpy(v, r->run, n * sizeof *v);
    arr->type |= SRV_JSON_PACKED;
    arr->valuestring = (char *)v;
    arr->valueint = (int)n;
    return 0;
}

/* The leading numbers of an array, up to its end or to an element that
 * is not a number: 1 when the array ended (arr packed), 0 when the rest is
 * to be read element by element (the numbers so far appended to arr as
 * nodes, r->p at the next element), -1 when stopped. */
static int read_run(reader *r, cJSON *arr, cJSON **last)
{
    size_t n = 0;
    int more;

    for (;;) {
        if (n == r->run_cap && run_grow(r) != 0)
            return -1;
        if (read_double(r, &r->run[n]) != 0)
            return -1;
        n++;
        /* The common case first: a comma, and the next number after it. */
        if (r->end - r->p > 1 && r->p[0] == ',' && number_start(r->p[1])) {
            r->p++;
            continue;
        }
        if ((more = next_element(r, ']')) < 0)
            return -1;
        if (more == 1)
            break;
        if (r->p == r->end || !number_start(*r->p))
            return run_nodes(r, arr, last, n);
    }
    if (n <= INT_MAX)
        return run_pack(r, arr, n) == 0 ? 1 : -1;
    if (run_nodes(r, arr, last, n) != 0)
        return -1;
    children_close(arr, *last);
    return 1;
}

static cJSON *read_array(reader *r)
{
    cJSON *arr, *item = NULL, *last = NULL;
    int more = 0;

    if (++r->depth > r->max_depth)
        return stop(r, SRV_TREE_DECLINED);
    if ((arr = node_new(r, cJSON_Array)) == NULL)
        return NULL;
    r->p++;
    skip_space(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        r->depth--;
        return arr;
    }
    if (r->packed && r->p < r->end && number_start(*r->p)) {
        more = read_run(r, arr, &last);
        if (more == 1) {
            r->depth--;
            return arr;
        }
        if (more < 0) {
            children_close(arr, last);
            tree_drop(r, arr);
            return NULL;
        }
    }
    do {
        if ((item = read_value(r)) == NULL)
            break;
        child_append(arr, &last, item);
    } while ((more = next_element(r, ']')) == 0);
    children_close(arr, last);
    if (item == NULL || more < 0) {
        tree_drop(r, arr);
        return NULL;
    }
    r->depth--;
    return arr;
}

/* One "key": value member appended to obj's children; -1 when stopped. */
static int read_member(reader *r, cJSON *obj, cJSON **last)
{
    char *key;
    cJSON *item;

    if (r->p == r->end || *r->p != '"') {
        stop(r, SRV_TREE_DECLINED);
        return -1;
    }
    if ((key = read_text(r)) == NULL)
        return -1;
    skip_space(r);
    if (r->p == r->end || *r->p != ':') {
        stop(r, SRV_TREE_DECLINED);
        if (r->arena == NULL)
            cJSON_free(key);
        return -1;
    }
    r->p++;
    skip_space(r);
    if ((item = read_value(r)) == NULL) {
        if (r->arena == NULL)
            cJSON_free(key);
        return -1;
    }
    item->string = key;
    child_append(obj, last, item);
    return 0;
}

static cJSON *read_object(reader *r)
{
    cJSON *obj, *last = NULL;
    int more = -1;

    if (++r->depth > r->max_depth)
        return stop(r, SRV_TREE_DECLINED);
    if ((obj = node_new(r, cJSON_Object)) == NULL)
        return NULL;
    r->p++;
    skip_space(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        r->depth--;
        return obj;
    }
    while (read_member(r, obj, &last) == 0 &&
           (more = next_element(r, '}')) == 0)
        ;
    children_close(obj, last);
    if (more != 1) {
        tree_drop(r, obj);
        return NULL;
    }
    r->depth--;
    return obj;
}

static cJSON *read_value(reader *r)
{
    if (r->p == r->end)
        return stop(r, SRV_TREE_DECLINED);
    switch (*r->p) {
    case '{':
        return read_object(r);
    case '[':
        return read_array(r);
    case '"':
        return read_string(r);
    case 't':
    case 'f':
    case 'n':
        return read_word(r);
    default:
        return read_number(r);
    }
}

static srv_tree_status parse(const char *body, size_t len, size_t max_depth,
                             int packed, cJSON **out, const char **end)
{
    reader r;

    r.p = body;
    r.end = body + len;
    r.depth = 0;
    r.max_depth = max_depth;
    r.arena = srv_arena_cjson();
    r.spare = r.spare_end = NULL;
    r.packed = packed;
    r.run = NULL;
    r.run_cap = 0;
    r.status = SRV_TREE_OK;
    skip_space(&r);
    *out = read_value(&r);
    free(r.run);
    if (*out == NULL)
        return r.status == SRV_TREE_OK ? SRV_TREE_DECLINED : r.status;
    *end = r.p;
    return SRV_TREE_OK;
}

srv_tree_status srv_json_tree_parse(const char *body, size_t len,
                                    size_t max_depth, cJSON **out,
                                    const char **end)
{
    return parse(body, len, max_depth, 0, out, end);
}

srv_tree_status srv_json_tree_parse_packed(const char *body, size_t len,
                                           size_t max_depth, cJSON **out,
                                           const char **end)
{
    return parse(body, len, max_depth, 1, out, end);
}
