/* json_in.c -- request bodies in: a bracket pre-scan, cJSON parsing, then
 * every key checked against the loss's table entry, tensors flattened with
 * their shapes, parameters range-checked and the dimensions of different
 * fields matched by symbol.  The first problem found is the one reported. */
#include "json_in.h"

#include "arena.h"
#include "json_tree.h"
#include "json_valid.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int srv_fail_set(srv_fail *f, int status, const char *code, const char *field,
                 const char *fmt, ...)
{
    va_list ap;

    f->status = status;
    f->code = code;
    snprintf(f->field, sizeof f->field, "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int fail_oom(srv_fail *f)
{
    return srv_fail_set(f, 503, "out_of_memory", NULL, SRV_OOM_MESSAGE);
}

/* ---- Bracket scanner ----------------------------------------------------- */

typedef struct scan_frame {
    int array;
    size_t index;
    const char *key;
    size_t keylen;
    int want_key;
} scan_frame;

typedef struct scanner {
    scan_frame fr[SRV_MAX_DEPTH + 1];
    size_t depth;
    int in_str, esc;
} scanner;

static void scan_path(const scanner *sc, char *path, size_t cap)
{
    size_t d, at = 0;
    int w;

    path[0] = '\0';
    for (d = 0; d < sc->depth && d < SRV_MAX_DEPTH + 1; d++) {
        const scan_frame *f = &sc->fr[d];
        if (f->array)
            w = snprintf(path + at, cap - at, "[%zu]", f->index);
        else if (f->key)
            w = snprintf(path + at, cap - at, "%s%.*s", d ? "." : "",
                         (int)(f->keylen > 200 ? 200 : f->keylen), f->key);
        else
            w = 0;
        if (w < 0 || (size_t)w >= cap - at)
            return;
        at += (size_t)w;
    }
}

static void scan_open(scanner *sc, int array)
{
    if (sc->depth < SRV_MAX_DEPTH + 1) {
        scan_frame *f = &sc->fr[sc->depth];
        f->array = array;
        f->index = 0;
        f->key = NULL;
        f->keylen = 0;
        f->want_key = !array;
    }
    sc->depth++;
}

static scan_frame *scan_top(scanner *sc)
{
    if (sc->depth == 0 || sc->depth > SRV_MAX_DEPTH + 1)
        return NULL;
    return &sc->fr[sc->depth - 1];
}

/* One character inside a string: track escapes and the end of a key. */
static void scan_in_string(scanner *sc, const char *s, size_t i)
{
    scan_frame *top = scan_top(sc);

    if (sc->esc)
        sc->esc = 0;
    else if (s[i] == '\\')
        sc->esc = 1;
    else if (s[i] == '"') {
        sc->in_str = 0;
        if (top && top->want_key && top->key && !top->keylen)
            top->keylen = (size_t)(s + i - top->key);
    }
}

/* One character outside strings.  Returns 1 when it opens a container
 * deeper than limit. */
static int scan_structure(scanner *sc, const char *s, size_t i, size_t limit)
{
    scan_frame *top = scan_top(sc);

    switch (s[i]) {
    case '"':
        sc->in_str = 1;
        if (top && top->want_key) {
            top->key = s + i + 1;
            top->keylen = 0;
        }
        break;
    case '[':
    case '{':
        if (sc->depth >= limit)
            return 1;
        scan_open(sc, s[i] == '[');
        break;
    case ']':
    case '}':
        if (sc->depth > 0)
            sc->depth--;
        break;
    case ',':
        if (top && top->array)
            top->index++;
        else if (top)
            top->want_key = 1;
        break;
    case ':':
        if (top)
            top->want_key = 0;
        break;
    default:
        break;
    }
    return 0;
}

/* Walks s[0..stop), tracking where it is.  Returns the offset of the first
 * container that would open deeper than limit, or SIZE_MAX. */
static size_t scan(scanner *sc, const char *s, size_t stop, size_t limit)
{
    size_t i;

    sc->depth = 0;
    sc->in_str = sc->esc = 0;
    for (i = 0; i < stop; i++) {
        if (sc->in_str)
            scan_in_string(sc, s, i);
        else if (scan_structure(sc, s, i, limit))
            return i;
    }
    return SIZE_MAX;
}

static size_t key_slot(const srv_loss *L, const char *key);
static int unknown_key(const srv_loss *L, const char *key, srv_fail *f);

/* The key text from k up to its closing quote (or end; an escaped quote
 * is part of the key), into out (cap bytes, NUL-terminated, cut short if
 * need be), a raw NUL byte written as the escape \u0000 so that the name
 * shows it. */
static void raw_key(const char *k, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    int esc = 0;

    for (; k < end && (esc || *k != '"') && n + 7 <= cap; k++) {
        esc = !esc && *k == '\\';
        if (*k == '\0') {
            memcpy(out + n, "\\u0000", 6);
            n += 6;
        } else {
            out[n++] = *k;
        }
    }
    out[n] = '\0';
}

/* The top-level key the scanner stopped under, when it is one L does not
 * have: a typo's value is not a shape to complain about.  Keys with escapes
 * are left to the nesting error (they are compared after unescaping). */
static int prescan_unknown_key(const srv_loss *L, const scanner *sc,
                               srv_fail *f)
{
    const scan_frame *top = &sc->fr[0];
    char key[70]; /* up to 64 characters, as unknown_key shows */

    if (sc->depth < 1 || top->array || top->key == NULL ||
        memchr(top->key, '\\', top->keylen) != NULL)
        return 0;
    raw_key(top->key, top->key + top->keylen, key, sizeof key);
    if (strlen(key) == top->keylen && key_slot(L, key) != SIZE_MAX)
        return 0;
    return unknown_key(L, key, f);
}

/* The known top-level key the scanner stopped under, when it takes one
 * value and no array (a parameter such as reduction): a wrong type, not a
 * shape. */
static int prescan_scalar_key(const srv_loss *L, const scanner *sc, srv_fail *f)
{
    const scan_frame *top = &sc->fr[0];
    char key[70];
    size_t slot;

    if (sc->depth < 2 || top->array || top->key == NULL ||
        top->keylen >= sizeof key || memchr(top->key, '\\', top->keylen))
        return 0;
    memcpy(key, top->key, top->keylen);
    key[top->keylen] = '\0';
    slot = key_slot(L, key);
    if (slot == SIZE_MAX || slot < L->ninputs ||
        (slot < L->ninputs + L->nparams &&
         L->params[slot - L->ninputs].type == SRV_P_ARRAY))
        return 0;
    return srv_fail_set(f, 400, "wrong_type", key,
                        "%s takes a single value, not %s", key,
                        sc->fr[1].array ? "an array" : "an object");
}

/* An object inside an input's value, where only arrays and numbers go:
 * its type, not its depth, is the error. */
static int prescan_object(const scanner *sc, srv_fail *f)
{
    scanner at = *sc;
    char path[256];
    size_t d;

    for (d = 1; d < sc->depth && sc->fr[d].array; d++)
        ;
    if (d == sc->depth)
        return 0;
    at.depth = d;
    scan_path(&at, path, sizeof path);
    return srv_fail_set(f, 400, "wrong_type", path,
                        "%s must be %s, not an object", path,
                        d == 1 ? "an array" : "a number or an array");
}

/* The 400 for a body that is not JSON from byte pos on. */
static int invalid_json_at(srv_fail *f, size_t pos)
{
    return srv_fail_set(f, 400, "invalid_json", NULL,
                        "the body is not valid JSON (error at byte %zu)", pos);
}

static int prescan_depth(const srv_loss *L, const char *body, size_t len,
                         srv_fail *f)
{
    scanner sc;
    char path[256];
    size_t at;

    if (scan(&sc, body, len, SRV_MAX_DEPTH) == SIZE_MAX)
        return 0;
    /* Its depth is the error only if it is JSON (NaN counted as a number,
     * as it is everywhere before the 422 non_finite). */
    if ((at = srv_json_valid_at(body, len, 1)) != SIZE_MAX)
        return invalid_json_at(f, at);
    if (sc.depth > 0 && sc.fr[0].array)
        return srv_fail_set(f, 400, "wrong_type", NULL,
                            "the body must be a JSON object");
    if (prescan_unknown_key(L, &sc, f) != 0 ||
        prescan_scalar_key(L, &sc, f) != 0 || prescan_object(&sc, f) != 0)
        return -1;
    scan_path(&sc, path, sizeof path);
    return srv_fail_set(f, 422, "shape_mismatch", path,
                        "%s is nested too deeply: no input is more than "
                        "three levels of arrays",
                        path[0] ? path : "the body");
}

size_t srv_json_nul_escape(const char *s, size_t len)
{
    int in_str = 0, esc = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        if (!in_str)
            in_str = s[i] == '"';
        else if (s[i] == '\0') /* raw: not JSON, but cJSON takes it */
            return i;
        else if (esc) {
            esc = 0;
            if (s[i] == 'u' && len - i > 4 && memcmp(s + i + 1, "0000", 4) == 0)
                return i - 1;
        } else if (s[i] == '\\')
            esc = 1;
        else if (s[i] == '"')
            in_str = 0;
    }
    return SIZE_MAX;
}

size_t srv_json_strict_at(const char *s, size_t len)
{
    size_t i, n;
    int in_str = 0, esc = 0;

    for (i = 0; i < len; i++) {
        if (in_str) {
            if ((unsigned char)s[i] < 0x20)
                return i;
            in_str = esc || s[i] != '"';
            esc = !esc && s[i] == '\\';
        } else if (s[i] == '"') {
            in_str = 1;
        } else if ((unsigned char)s[i] <= 0x20 && s[i] != ' ' && s[i] != '\t' &&
                   s[i] != '\n' && s[i] != '\r') {
            return i;
        } else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
            for (n = i; n < len && srv_json_number_char(s[n]); n++)
                ;
            if (srv_json_number_length(s + i, n - i) != n - i)
                return i;
            i = n - 1;
        }
    }
    return SIZE_MAX;
}

/* A string holding U+0000, which cJSON's strings (C strings) would cut
 * there: "p\u0000junk" would be read as the field p.  No field or value
 * has that character, so the key is unknown (as is a top-level key whose
 * value holds one, when the loss has no such field), or the value is
 * refused. */
static int prescan_nul(const srv_loss *L, const char *body, size_t len,
                       srv_fail *f)
{
    size_t at = srv_json_nul_escape(body, len), n;
    const scan_frame *top;
    scanner sc;
    char path[256], key[65];

    if (at == SIZE_MAX)
        return 0;
    scan(&sc, body, at, SIZE_MAX);
    top = sc.depth == 1 ? &sc.fr[0] : NULL;
    if (top != NULL && !top->array && top->want_key && top->key != NULL) {
        raw_key(top->key, body + len, key, sizeof key);
        return unknown_key(L, key, f);
    }
    if (prescan_unknown_key(L, &sc, f) != 0)
        return -1;
    scan_path(&sc, path, sizeof path);
    n = strlen(path);
    if (n > 0 && path[n - 1] == '.') /* inside a nested key */
        path[n - 1] = '\0';
    return srv_fail_set(f, 422, "bad_parameter", path[0] ? path : NULL,
                        "%s holds the character U+0000 (\\u0000), which no "
                        "field name or value has",
                        path[0] ? path : "a key");
}

/* ---- Parsing ------------------------------------------------------------- */

int srv_json_nonfinite_fail(const srv_loss *L, const char *body, size_t len,
                            size_t pos, srv_fail *f)
{
    char path[256];
    scanner sc;

    if (pos > len || srv_json_nonfinite_len(body + pos, len - pos) == 0)
        return 0;
    scan(&sc, body, pos, SIZE_MAX);
    if (L != NULL && prescan_unknown_key(L, &sc, f) != 0)
        return -1;
    scan_path(&sc, path, sizeof path);
    return srv_fail_set(f, 422, "non_finite", path,
                        "%s is NaN or infinite; only finite numbers are "
                        "accepted",
                        path[0] ? path : "a value");
}

/* cJSON stopped at end: a NaN or invalid JSON. */
static int parse_fail(const srv_loss *L, const char *body, size_t len,
                      const char *end, srv_fail *f)
{
    size_t pos = end && end >= body ? (size_t)(end - body) : 0;

    if (pos > len)
        pos = len;
    if (srv_json_nonfinite_fail(L, body, len, pos, f) != 0)
        return -1;
    return invalid_json_at(f, pos);
}

static int trailing_garbage(const char *body, size_t len, const char *end,
                            srv_fail *f)
{
    size_t pos = srv_json_skip_space(body, len, (size_t)(end - body));

    if (pos == len)
        return 0;
    return srv_fail_set(f, 400, "invalid_json", NULL,
                        "the body is not valid JSON: unexpected data after "
                        "the object at byte %zu",
                        pos);
}

/* What cJSON takes but JSON is not (a number 01 or 1., a control
 * character as white space or in a string): the 400 parse_fail gives. */
static int strict_fail(const char *body, size_t len, srv_fail *f)
{
    size_t at = srv_json_strict_at(body, len);

    return at == SIZE_MAX ? 0 : invalid_json_at(f, at);
}

static cJSON *parse_body(const srv_loss *L, const char *body, size_t len,
                         srv_arena *arena, srv_fail *f)
{
    const char *end = NULL;
    cJSON *root;

    if (srv_json_skip_space(body, len, 0) == len) {
        srv_fail_set(f, 400, "invalid_json", NULL,
                     len ? "the body holds only whitespace"
                         : "the body is empty");
        return NULL;
    }
    switch (srv_json_tree_parse_packed(body, len, SRV_MAX_DEPTH, &root, &end)) {
    case SRV_TREE_OK:
        break;
    case SRV_TREE_NOMEM:
        fail_oom(f);
        return NULL;
    case SRV_TREE_DECLINED:
        /* Not strict JSON lossd's reader takes: cJSON reads it (and words
         * any error) exactly as before, in an emptied arena. */
        srv_arena_rewind(arena);
        if (prescan_depth(L, body, len, f) != 0)
            return NULL;
        root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
        if (root == NULL) {
            parse_fail(L, body, len, end, f);
            return NULL;
        }
        /* On valid JSON only: the scanner follows its structure. */
        if (prescan_nul(L, body, len, f) != 0 ||
            strict_fail(body, len, f) != 0) {
            cJSON_Delete(root);
            return NULL;
        }
        break;
    }
    if (trailing_garbage(body, len, end, f) != 0) {
        cJSON_Delete(root);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        srv_fail_set(f, 400, "wrong_type", NULL,
                     "the body must be a JSON object");
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "an array";
    return "an object";
}

/* ---- Tensors ------------------------------------------------------------- */

typedef struct walker {
    const char *name;
    size_t rank;
    int integer;
    int layered;
    srv_tensor *t;
    size_t idx[SRV_MAX_RANK];
    size_t cap, count;
    srv_fail *f;
} walker;

static void walk_path(const walker *w, size_t depth, char *path, size_t cap)
{
    size_t d;
    int at = snprintf(path, cap, "%s", w->name);

    for (d = 0; d < depth && at > 0 && (size_t)at < cap; d++)
        at += snprintf(path + at, cap - (size_t)at, "[%zu]", w->idx[d]);
}

static const char *shape_text(const walker *w)
{
    if (w->layered)
        return w->rank == 3 ? "[L][N][D]" : "[N][D] or [L][N][D]";
    return w->rank == 1 ? "1-dimensional" : "2-dimensional";
}

static int leaf(walker *w, const cJSON *e, size_t depth)
{
    char path[256];
    double x;

    if (!cJSON_IsNumber(e)) {
        walk_path(w, depth, path, sizeof path);
        if (cJSON_IsArray(e))
            return srv_fail_set(w->f, 422, "shape_mismatch", path,
                                "%s is an array where a number belongs: %s "
                                "is %s",
                                path, w->name, shape_text(w));
        return srv_fail_set(w->f, 400, "wrong_type", path,
                            "%s must be a number, not %s", path, type_name(e));
    }
    x = e->valuedouble;
    if (!isfinite(x)) {
        walk_path(w, depth, path, sizeof path);
        return srv_fail_set(w->f, 422, "non_finite", path,
                            "%s is infinite or NaN (numbers must be finite "
                            "doubles)",
                            path);
    }
    if (w->integer && (x != floor(x) || fabs(x) >= 9.2e18)) {
        walk_path(w, depth, path, sizeof path);
        return srv_fail_set(w->f, 400, "wrong_type", path,
                            "%s must be an integer (64-bit), got %.17g", path,
                            x);
    }
    if (w->count < w->cap) {
        if (w->integer)
            w->t->iv[w->count] = (int64_t)x;
        else
            w->t->v[w->count] = x;
    }
    w->count++;
    return 0;
}

/* The length every array at this depth must have. */
static size_t expected_len(const walker *w, size_t depth)
{
    if (w->layered && w->rank == 3 && depth == 2)
        return w->t->width[w->idx[0]];
    return w->t->dim[depth];
}

static int bad_length(walker *w, size_t depth, size_t n)
{
    char path[256], ref[256];
    size_t keep = w->idx[depth - 1];

    walk_path(w, depth, path, sizeof path);
    w->idx[depth - 1] = 0;
    walk_path(w, depth, ref, sizeof ref);
    w->idx[depth - 1] = keep;
    return srv_fail_set(w->f, 422, "shape_mismatch", path,
                        "%s has %zu entries, %s has %zu (rows must all have "
                        "the same length)",
                        path, n, ref, expected_len(w, depth));
}

/* cJSON_IsNumber, inline: the walk asks it once per value. */
static int is_number(const cJSON *e)
{
    return (e->type & 0xFF) == cJSON_Number;
}

/* Whether e is a value the walk stores as it is: a finite number, and an
 * integer that fits int64_t for an integer tensor. */
static int plain_value(const cJSON *e, int integer)
{
    double x = e->valuedouble;

    return is_number(e) && isfinite(x) &&
           (!integer || (x == floor(x) && fabs(x) < 9.2e18));
}

/* The values of an innermost array (depth rank - 1), straight into the
 * tensor; *n is how many there were.  The first that is not plain
 * (plain_value) is left to leaf, which reports it as the walk element by
 * element would. */
static int walk_row(walker *w, const cJSON *node, size_t depth, size_t *n)
{
    const cJSON *e;
    size_t k = 0, at = w->count, cap = w->cap;
    int integer = w->integer;
    double *v = w->t->v;
    int64_t *iv = w->t->iv;

    for (e = node->child; e != NULL; e = e->next, k++, at++) {
        if (!plain_value(e, integer)) {
            w->idx[depth] = k;
            w->count = at;
            if (leaf(w, e, depth + 1) != 0)
                return -1;
            continue; /* leaf stored it */
        }
        if (at < cap) {
            if (integer)
                iv[at] = (int64_t)e->valuedouble;
            else
                v[at] = e->valuedouble;
        }
    }
    w->count = at;
    *n = k;
    return 0;
}

/* A number node for element k of a packed array, for the checks and the
 * messages that take one. */
static cJSON packed_element(const cJSON *a, size_t k)
{
    cJSON e;

    memset(&e, 0, sizeof e);
    e.type = cJSON_Number;
    e.valuedouble = srv_json_packed_values(a)[k];
    return e;
}

/* walk_row for a packed array (json_tree.h): its numbers are already
 * doubles. */
static int walk_packed_row(walker *w, const cJSON *node, size_t depth,
                           size_t *n)
{
    const double *x = srv_json_packed_values(node);
    size_t k, len = srv_json_packed_len(node), at = w->count, cap = w->cap;
    int integer = w->integer;
    cJSON e;

    for (k = 0; k < len; k++, at++) {
        if (!isfinite(x[k]) ||
            (integer && (x[k] != floor(x[k]) || fabs(x[k]) >= 9.2e18))) {
            w->idx[depth] = k;
            w->count = at;
            e = packed_element(node, k);
            if (leaf(w, &e, depth + 1) != 0)
                return -1;
            continue; /* leaf stored it */
        }
        if (at < cap) {
            if (integer)
                w->t->iv[at] = (int64_t)x[k];
            else
                w->t->v[at] = x[k];
        }
    }
    w->count = at;
    *n = len;
    return 0;
}

static int walk(walker *w, const cJSON *node, size_t depth);

/* A packed array where arrays belong: its first number is the error. */
static int walk_packed_deep(walker *w, const cJSON *node, size_t depth)
{
    cJSON e = packed_element(node, 0);

    w->idx[depth] = 0;
    return walk(w, &e, depth + 1);
}

static int walk(walker *w, const cJSON *node, size_t depth)
{
    const cJSON *e;
    size_t n = 0;
    char path[256];

    if (depth == w->rank)
        return leaf(w, node, depth);
    if (!cJSON_IsArray(node)) {
        walk_path(w, depth, path, sizeof path);
        if (depth > 0 && cJSON_IsNumber(node))
            return srv_fail_set(w->f, 422, "shape_mismatch", path,
                                "%s is a number where an array belongs: %s "
                                "is %s",
                                path, w->name, shape_text(w));
        return srv_fail_set(w->f, 400, "wrong_type", path,
                            "%s must be an array, not %s", path,
                            type_name(node));
    }
    if (srv_json_packed(node)) {
        if (depth + 1 < w->rank)
            return walk_packed_deep(w, node, depth);
        if (walk_packed_row(w, node, depth, &n) != 0)
            return -1;
    } else if (depth + 1 == w->rank) {
        if (walk_row(w, node, depth, &n) != 0)
            return -1;
    } else {
        cJSON_ArrayForEach(e, node) {
            w->idx[depth] = n++;
            if (walk(w, e, depth + 1) != 0)
                return -1;
        }
    }
    if (depth > 0 && n != expected_len(w, depth))
        return bad_length(w, depth, n);
    return 0;
}

static size_t array_len(const cJSON *a)
{
    if (srv_json_packed(a))
        return srv_json_packed_len(a);
    return cJSON_IsArray(a) ? (size_t)cJSON_GetArraySize(a) : 0;
}

/* Reads the expected dimensions from the first element at each level; the
 * walk then holds every other row to them.  Returns the value count, or
 * SIZE_MAX on overflow. */
static size_t first_shape(walker *w, const cJSON *a)
{
    srv_tensor *t = w->t;
    const cJSON *c = a;
    size_t d, count = 1, l, rows;

    if (w->layered && w->rank == 3) {
        t->dim[0] = array_len(a);
        c = cJSON_IsArray(a) ? a->child : NULL;
        t->dim[1] = array_len(c);
        rows = t->dim[1];
        count = 0;
        for (l = 0, c = a->child; c; c = c->next, l++) {
            t->width[l] = array_len(cJSON_IsArray(c) ? c->child : NULL);
            if (t->width[l] && rows > (SIZE_MAX - count) / t->width[l])
                return SIZE_MAX;
            count += rows * t->width[l];
        }
        return count;
    }
    for (d = 0; d < w->rank; d++) {
        t->dim[d] = array_len(c);
        c = cJSON_IsArray(c) ? c->child : NULL;
        if (t->dim[d] && count > SIZE_MAX / t->dim[d])
            return SIZE_MAX;
        count *= t->dim[d];
    }
    return count;
}

/* [N][D] or [L][N][D]: rank 3 when the first element's first element is an
 * array. */
static size_t layered_rank(const cJSON *a)
{
    const cJSON *c = cJSON_IsArray(a) ? a->child : NULL;

    c = cJSON_IsArray(c) ? c->child : NULL;
    return cJSON_IsArray(c) ? 3 : 2;
}

static int tensor_alloc(walker *w, const cJSON *a)
{
    srv_tensor *t = w->t;
    size_t count, elem = w->integer ? sizeof(int64_t) : sizeof(double);

    if (w->rank == 3) {
        size_t l = array_len(a);
        t->width = calloc(l ? l : 1, sizeof *t->width);
        if (t->width == NULL)
            return fail_oom(w->f);
    }
    count = first_shape(w, a);
    if (count == SIZE_MAX || count > SIZE_MAX / elem)
        return fail_oom(w->f);
    if (w->integer)
        t->iv = srv_huge_malloc(count * elem);
    else
        t->v = srv_huge_malloc(count * elem);
    if (t->iv == NULL && t->v == NULL)
        return fail_oom(w->f);
    w->cap = count;
    t->count = count;
    return 0;
}

/* An SRV_IN_VECTOR input sent as [N]: its first element is not an array
 * (or it is empty). */
static int vector_form(const cJSON *a)
{
    const cJSON *c = cJSON_IsArray(a) ? a->child : NULL;

    return c == NULL || !cJSON_IsArray(c);
}

static int tensor_parse(const char *name, size_t rank, unsigned flags,
                        const cJSON *a, srv_tensor *t, srv_fail *f)
{
    walker w;

    memset(&w, 0, sizeof w);
    w.name = name;
    w.integer = (flags & SRV_IN_INT) != 0;
    w.layered = (flags & SRV_IN_LAYERED) != 0;
    w.rank = w.layered ? layered_rank(a) : rank;
    if ((flags & SRV_IN_VECTOR) && vector_form(a))
        w.rank = 1;
    w.t = t;
    w.f = f;
    t->present = 1;
    t->rank = w.rank;
    if (!cJSON_IsArray(a))
        return srv_fail_set(f, 400, "wrong_type", name,
                            "%s must be an array, not %s", name, type_name(a));
    if (tensor_alloc(&w, a) != 0)
        return -1;
    if (walk(&w, a, 0) != 0)
        return -1;
    if (w.rank < rank) { /* [N] read as [N][1] */
        t->rank = rank;
        t->dim[1] = 1;
    }
    return 0;
}

static void tensor_cleanup(srv_tensor *t)
{
    free(t->v);
    free(t->iv);
    free(t->width);
    memset(t, 0, sizeof *t);
}

/* ---- Parameters ---------------------------------------------------------- */

static int in_range(const srv_param *p, double x)
{
    if ((p->flags & SRV_P_LO_OPEN) ? !(x > p->lo) : !(x >= p->lo))
        return 0;
    if ((p->flags & SRV_P_HI_OPEN) ? !(x < p->hi) : !(x <= p->hi))
        return 0;
    return !((p->flags & SRV_P_NOT_ONE) && x == 1.0);
}

static int bad_range(const srv_param *p, double x, srv_fail *f)
{
    char lo[32], hi[32];

    snprintf(lo, sizeof lo, "%.17g", p->lo);
    snprintf(hi, sizeof hi, "%.17g", p->hi);
    return srv_fail_set(f, 422, "bad_parameter", p->name,
                        "%s must be in %c%s, %s%c%s, got %.17g", p->name,
                        (p->flags & SRV_P_LO_OPEN) || isinf(p->lo) ? '(' : '[',
                        lo, hi,
                        (p->flags & SRV_P_HI_OPEN) || isinf(p->hi) ? ')' : ']',
                        (p->flags & SRV_P_NOT_ONE) ? " and not 1" : "", x);
}

static int bad_enum(const srv_param *p, const char *s, srv_fail *f)
{
    char list[256];
    size_t i, at = 0;

    list[0] = '\0';
    for (i = 0; p->values[i] && at < sizeof list; i++) {
        int w = snprintf(list + at, sizeof list - at, "%s\"%s\"", i ? ", " : "",
                         p->values[i]);
        if (w < 0)
            break;
        at += (size_t)w;
    }
    return srv_fail_set(
        f, 422, "bad_parameter", p->name,
        "%s must be one of %s%s, got \"%.100s\"", p->name, list,
        (p->flags & (SRV_P_OR_NUMBER | SRV_P_OR_INTEGER)) ? " or a number" : "",
        s);
}

static int param_number(const srv_param *p, const cJSON *v, srv_value *out,
                        srv_fail *f)
{
    double x;

    if (!cJSON_IsNumber(v))
        return srv_fail_set(
            f, 400, "wrong_type", p->name, "%s must be %s, not %s", p->name,
            p->type == SRV_P_INTEGER ? "an integer" : "a number", type_name(v));
    x = v->valuedouble;
    if (!isfinite(x))
        return srv_fail_set(f, 422, "non_finite", p->name,
                            "%s is infinite or NaN", p->name);
    if (p->type == SRV_P_INTEGER && (x != floor(x) || fabs(x) >= 9.2e18))
        return srv_fail_set(f, 400, "wrong_type", p->name,
                            "%s must be an integer, got %.17g", p->name, x);
    if (!in_range(p, x))
        return bad_range(p, x, f);
    out->num = x;
    /* Only an integer parameter's value is known to fit in int64_t. */
    out->inum = p->type == SRV_P_INTEGER ? (int64_t)x : 0;
    return 0;
}

/* A number given to an enum that also takes one (SRV_P_OR_NUMBER,
 * SRV_P_OR_INTEGER): checked as a number or integer parameter would be. */
static int param_enum_number(const srv_param *p, const cJSON *v, srv_value *out,
                             srv_fail *f)
{
    srv_param as = *p;

    as.type = (p->flags & SRV_P_OR_INTEGER) ? SRV_P_INTEGER : SRV_P_NUMBER;
    out->idx = -1;
    return param_number(&as, v, out, f);
}

static int param_enum(const srv_param *p, const cJSON *v, srv_value *out,
                      srv_fail *f)
{
    int i, or_number = (p->flags & (SRV_P_OR_NUMBER | SRV_P_OR_INTEGER)) != 0;

    if (or_number && cJSON_IsNumber(v))
        return param_enum_number(p, v, out, f);
    if (!cJSON_IsString(v))
        return srv_fail_set(f, 400, "wrong_type", p->name,
                            "%s must be a string%s, not %s", p->name,
                            or_number ? " or a number" : "", type_name(v));
    for (i = 0; p->values[i]; i++)
        if (strcmp(p->values[i], v->valuestring) == 0) {
            out->idx = i;
            return 0;
        }
    return bad_enum(p, v->valuestring, f);
}

static int param_parse(const srv_param *p, const cJSON *v, srv_value *out,
                       srv_fail *f)
{
    out->given = 1;
    switch (p->type) {
    case SRV_P_NUMBER:
    case SRV_P_INTEGER:
        return param_number(p, v, out, f);
    case SRV_P_BOOLEAN:
        if (!cJSON_IsBool(v))
            return srv_fail_set(f, 400, "wrong_type", p->name,
                                "%s must be true or false, not %s", p->name,
                                type_name(v));
        out->num = cJSON_IsTrue(v) ? 1 : 0;
        return 0;
    case SRV_P_ENUM:
        return param_enum(p, v, out, f);
    case SRV_P_ARRAY:
        if (cJSON_IsNull(v)) {
            out->given = 0;
            return 0;
        }
        return tensor_parse(p->name, 1, 0, v, &out->arr, f);
    }
    return 0;
}

static void param_default(const srv_param *p, srv_value *out)
{
    memset(out, 0, sizeof *out);
    out->num = p->dflt;
    out->inum = (int64_t)p->dflt;
    out->idx = (int)p->dflt;
}

/* ---- Keys ---------------------------------------------------------------- */

/* Whether common field i (srv_common_params) belongs to L: an estimate
 * takes only precision. */
static int common_applies(const srv_loss *L, size_t i)
{
    return !(L->flags & SRV_L_ESTIMATE) ||
           strcmp(srv_common_params[i].name, "precision") == 0;
}

static void key_list(const srv_loss *L, char *buf, size_t cap)
{
    size_t i, at = 0;
    int w;

    buf[0] = '\0';
    for (i = 0; i < L->ninputs + L->nparams + srv_ncommon_params; i++) {
        const char *n =
            i < L->ninputs ? L->inputs[i].name
            : i < L->ninputs + L->nparams
                ? L->params[i - L->ninputs].name
                : srv_common_params[i - L->ninputs - L->nparams].name;
        if (i >= L->ninputs + L->nparams &&
            !common_applies(L, i - L->ninputs - L->nparams))
            continue;
        w = snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", n);
        if (w < 0 || (size_t)w >= cap - at)
            return;
        at += (size_t)w;
    }
}

static int unknown_key(const srv_loss *L, const char *key, srv_fail *f)
{
    char list[320];

    key_list(L, list, sizeof list);
    return srv_fail_set(f, 422, "unknown_field", key,
                        "unknown field \"%.64s\" for %s %s; the fields are: "
                        "%s",
                        key,
                        (L->flags & SRV_L_ESTIMATE) ? "divergence" : "loss",
                        L->name, list);
}

static int common_parse(srv_request *rq, size_t i, const cJSON *v, srv_fail *f)
{
    srv_value val;

    param_default(&srv_common_params[i], &val);
    if (param_parse(&srv_common_params[i], v, &val, f) != 0)
        return -1;
    switch (i) {
    case 0:
        rq->reduction = val.idx ? LOSS_REDUCE_SUM : LOSS_REDUCE_MEAN;
        break;
    case 1:
        rq->gradients = val.num != 0;
        break;
    case 2:
        rq->per_sample = val.num != 0;
        break;
    default:
        rq->float64 = val.idx == 1;
        break;
    }
    return 0;
}

/* The slot of key in L: an input's index, then the parameters', then the
 * common fields'; SIZE_MAX when L has no such field. */
static size_t key_slot(const srv_loss *L, const char *key)
{
    size_t i;

    for (i = 0; i < L->ninputs; i++)
        if (strcmp(key, L->inputs[i].name) == 0)
            return i;
    for (i = 0; i < L->nparams; i++)
        if (strcmp(key, L->params[i].name) == 0)
            return L->ninputs + i;
    for (i = 0; i < srv_ncommon_params; i++)
        if (strcmp(key, srv_common_params[i].name) == 0 && common_applies(L, i))
            return L->ninputs + L->nparams + i;
    return SIZE_MAX;
}

/* Dispatches one body key to its input, parameter or common field; seen
 * marks keys already given (slots: inputs, then params, then common). */
int srv_request_field(srv_request *rq, const cJSON *item, unsigned *seen,
                      srv_fail *f)
{
    const srv_loss *L = rq->loss;
    const char *key = item->string;
    size_t slot = key_slot(L, key);

    if (slot == SIZE_MAX)
        return unknown_key(L, key, f);
    if (*seen & (1u << slot))
        return srv_fail_set(f, 422, "conflicting_fields", key,
                            "%s is given more than once", key);
    *seen |= 1u << slot;
    if (slot < L->ninputs)
        return tensor_parse(key, L->inputs[slot].rank, L->inputs[slot].flags,
                            item, &rq->in[slot], f);
    if (slot < L->ninputs + L->nparams)
        return param_parse(&L->params[slot - L->ninputs], item,
                           &rq->p[slot - L->ninputs], f);
    return common_parse(rq, slot - L->ninputs - L->nparams, item, f);
}

/* ---- Forms: labels | targets and the like -------------------------------- */

static void form_list(const srv_loss *L, int choice, char *buf, size_t cap)
{
    size_t i, at = 0;
    int w;

    buf[0] = '\0';
    for (i = 0; i < L->ninputs; i++) {
        if (L->inputs[i].choice != choice)
            continue;
        w = snprintf(buf + at, cap - at, "%s%s", at ? ", " : "",
                     L->inputs[i].name);
        if (w < 0 || (size_t)w >= cap - at)
            return;
        at += (size_t)w;
    }
}

static const char *first_of(const srv_request *rq, int choice, int present)
{
    size_t i;

    for (i = 0; i < rq->loss->ninputs; i++)
        if (rq->loss->inputs[i].choice == choice &&
            (!present || rq->in[i].present))
            return rq->loss->inputs[i].name;
    return NULL;
}

static int choose_form(srv_request *rq, srv_fail *f)
{
    const srv_loss *L = rq->loss;
    const char *one = first_of(rq, 1, 1), *two = first_of(rq, 2, 1);
    char a[128], b[128];

    if (first_of(rq, 1, 0) == NULL)
        return 0;
    rq->form = two ? 2 : 1;
    if ((one != NULL) != (two != NULL))
        return 0;
    /* The lists of either form are only for the message. */
    form_list(L, 1, a, sizeof a);
    form_list(L, 2, b, sizeof b);
    if (one && two)
        return srv_fail_set(f, 422, "conflicting_fields", two,
                            "%s and %s cannot be used together: give either "
                            "%s or %s",
                            one, two, a, b);
    return srv_fail_set(f, 422, "missing_field", first_of(rq, 1, 0),
                        "either %s or %s is required", a, b);
}

static int check_present(srv_request *rq, srv_fail *f)
{
    const srv_loss *L = rq->loss;
    size_t i;
    char list[128];

    for (i = 0; i < L->ninputs; i++) {
        int c = L->inputs[i].choice;
        if (!rq->in[i].present && (c == 0 || c == rq->form))
            return srv_fail_set(f, 422, "missing_field", L->inputs[i].name,
                                "%s is required", L->inputs[i].name);
    }
    for (i = 0; i < L->nparams; i++) {
        int c = L->params[i].choice;
        if (!rq->p[i].given || c == 0 || c == rq->form)
            continue;
        form_list(L, c, list, sizeof list);
        return srv_fail_set(f, 422, "conflicting_fields", L->params[i].name,
                            "%s applies only to requests with %s",
                            L->params[i].name, list);
    }
    return 0;
}

/* ---- Shapes -------------------------------------------------------------- */

typedef struct binding {
    const char *sym;
    size_t value;
    const char *field;
    const char *word;
} binding;

typedef struct binder {
    binding b[8];
    size_t n;
    srv_fail *f;
} binder;

static const char *axis_word(size_t axis, int param)
{
    if (param)
        return "entries";
    return axis == 0 ? "rows" : "columns";
}

static int bind(binder *bd, const char *sym, size_t value, const char *field,
                const char *word)
{
    size_t i;

    for (i = 0; i < bd->n; i++) {
        binding *b = &bd->b[i];
        if (strcmp(b->sym, sym) != 0)
            continue;
        if (b->value == value)
            return 0;
        return srv_fail_set(bd->f, 422, "shape_mismatch", field,
                            "%s has %zu %s, %s has %zu%s%s", field, value, word,
                            b->field, b->value,
                            strcmp(word, b->word) ? " " : "",
                            strcmp(word, b->word) ? b->word : "");
    }
    if (bd->n < sizeof bd->b / sizeof bd->b[0])
        bd->b[bd->n++] = (binding){sym, value, field, word};
    return 0;
}

static int layer_mismatch(const srv_tensor *t, const char *name,
                          const srv_tensor *ref, const char *refname, size_t l,
                          srv_fail *f)
{
    char path[128];

    snprintf(path, sizeof path, "%s[%zu]", name, l);
    return srv_fail_set(f, 422, "shape_mismatch", path,
                        "%s has %zu columns, %s[%zu] has %zu", path,
                        t->width[l], refname, l, ref->width[l]);
}

/* Layered inputs agree with the first of them layer by layer. */
static int check_layers(const srv_tensor *t, const char *name,
                        const srv_tensor *ref, const char *refname, srv_fail *f)
{
    size_t l;

    if (t->rank != ref->rank)
        return srv_fail_set(f, 422, "shape_mismatch", name,
                            "%s is %s, %s is %s: both must be [N][D] or "
                            "both [L][N][D]",
                            name, t->rank == 3 ? "[L][N][D]" : "[N][D]",
                            refname, ref->rank == 3 ? "[L][N][D]" : "[N][D]");
    if (t->rank == 3 && t->dim[0] != ref->dim[0])
        return srv_fail_set(f, 422, "shape_mismatch", name,
                            "%s has %zu layers, %s has %zu", name, t->dim[0],
                            refname, ref->dim[0]);
    if (t->rank != 3)
        return 0;
    for (l = 0; l < t->dim[0]; l++)
        if (t->width[l] != ref->width[l])
            return layer_mismatch(t, name, ref, refname, l, f);
    return 0;
}

static int bind_input(binder *bd, const srv_request *rq, size_t i,
                      size_t *layered_ref)
{
    const srv_input *in = &rq->loss->inputs[i];
    const srv_tensor *t = &rq->in[i];
    size_t a;

    if (in->flags & SRV_IN_LAYERED) {
        if (*layered_ref != SIZE_MAX &&
            check_layers(t, in->name, &rq->in[*layered_ref],
                         rq->loss->inputs[*layered_ref].name, bd->f) != 0)
            return -1;
        if (*layered_ref == SIZE_MAX)
            *layered_ref = i;
        if (t->rank == 3)
            return bind(bd, in->shape[0], t->dim[1], in->name, "rows");
    }
    for (a = 0; a < in->rank; a++)
        if (bind(bd, in->shape[a], t->dim[a], in->name, axis_word(a, 0)))
            return -1;
    return 0;
}

int srv_fail_empty(srv_fail *f, const char *name, size_t what)
{
    char path[96];

    if (what == SRV_EMPTY_BATCH)
        return srv_fail_set(f, 422, "empty_batch", name, "%s is empty", name);
    if (what == SRV_EMPTY_ROWS)
        return srv_fail_set(f, 422, "shape_mismatch", name, "%s has empty rows",
                            name);
    snprintf(path, sizeof path, "%.64s[%zu]", name, what);
    return srv_fail_set(f, 422, "shape_mismatch", path, "%s has empty rows",
                        path);
}

static int check_empty(const srv_request *rq, srv_fail *f)
{
    const srv_loss *L = rq->loss;
    size_t i, l;

    for (i = 0; i < L->ninputs; i++) {
        const srv_tensor *t = &rq->in[i];
        if (t->present && (t->dim[0] == 0 || (t->width && t->dim[1] == 0)))
            return srv_fail_empty(f, L->inputs[i].name, SRV_EMPTY_BATCH);
    }
    for (i = 0; i < L->ninputs; i++) {
        const srv_tensor *t = &rq->in[i];
        if (t->present && !t->width && t->rank == 2 && t->dim[1] == 0)
            return srv_fail_empty(f, L->inputs[i].name, SRV_EMPTY_ROWS);
        for (l = 0; t->width && l < t->dim[0]; l++)
            if (t->width[l] == 0)
                return srv_fail_empty(f, L->inputs[i].name, l);
    }
    return 0;
}

static int check_shapes(srv_request *rq, srv_fail *f)
{
    const srv_loss *L = rq->loss;
    binder bd;
    size_t i, layered_ref = SIZE_MAX;

    bd.n = 0;
    bd.f = f;
    if (check_empty(rq, f) != 0)
        return -1;
    for (i = 0; i < L->ninputs; i++)
        if (rq->in[i].present && bind_input(&bd, rq, i, &layered_ref) != 0)
            return -1;
    for (i = 0; i < L->nparams; i++)
        if (L->params[i].type == SRV_P_ARRAY && rq->p[i].given &&
            bind(&bd, L->params[i].shape, rq->p[i].arr.dim[0],
                 L->params[i].name, axis_word(0, 1)) != 0)
            return -1;
    return 0;
}

/* ---- Entry --------------------------------------------------------------- */

int srv_request_check(srv_request *rq, srv_fail *f)
{
    if (choose_form(rq, f) != 0 || check_present(rq, f) != 0 ||
        check_shapes(rq, f) != 0)
        return -1;
    return 0;
}

void srv_request_init(srv_request *rq, const srv_loss *L)
{
    size_t i;

    memset(rq, 0, sizeof *rq);
    rq->loss = L;
    rq->reduction = LOSS_REDUCE_MEAN;
    rq->gradients = 1;
    rq->per_sample = 1;
    for (i = 0; i < L->nparams; i++)
        param_default(&L->params[i], &rq->p[i]);
}

/* The tree of a small body fits in this much stack; a larger one's arena
 * grows in blocks sized from the body (cJSON needs about three bytes of
 * nodes per byte of a body of numbers). */
#define TREE_STACK 32768

int srv_request_parse(const srv_loss *L, const char *body, size_t len,
                      srv_request *rq, srv_fail *f)
{
    _Alignas(max_align_t) char first[TREE_STACK];
    const cJSON *item;
    cJSON *root;
    srv_arena arena;
    unsigned seen = 0;
    int rc = 0;

    srv_request_init(rq, L);
    srv_json_hooks_install();
    srv_arena_init(&arena, first, sizeof first,
                   len < SIZE_MAX / 4 ? 4 * len : SIZE_MAX);
    srv_arena_enter(&arena);
    root = parse_body(L, body, len, &arena, f);
    srv_arena_leave();
    if (arena.failed) {
        srv_arena_cleanup(&arena);
        return fail_oom(f);
    }
    if (root == NULL) {
        srv_arena_cleanup(&arena);
        return -1;
    }
    cJSON_ArrayForEach(item, root) {
        if ((rc = srv_request_field(rq, item, &seen, f)) != 0)
            break;
    }
    /* The tree is not needed past this point; free it before the core
     * allocates its outputs. */
    srv_arena_cleanup(&arena);
    if (rc == 0)
        rc = srv_request_check(rq, f);
    if (rc != 0)
        srv_request_cleanup(rq);
    return rc;
}

void srv_request_cleanup(srv_request *rq)
{
    size_t i;

    for (i = 0; i < SRV_MAX_INPUTS; i++)
        tensor_cleanup(&rq->in[i]);
    for (i = 0; i < SRV_MAX_PARAMS; i++)
        tensor_cleanup(&rq->p[i].arr);
}
