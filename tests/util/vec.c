/* vec.c -- reference-vector loading, comparison and finite differences for
 * the Criterion tests (see vec.h). */
#include "vec.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *vec_dir(void)
{
    const char *dir = getenv("LOSSD_VECTORS");

    return dir != NULL ? dir : "tests/vectors";
}

char **vec_families(void)
{
    DIR *dir = opendir(vec_dir());
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, len;

    cr_assert_not_null(dir, "cannot open %s", vec_dir());
    while ((e = readdir(dir)) != NULL) {
        len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        names = realloc(names, (n + 2) * sizeof *names);
        cr_assert_not_null(names);
        names[n] = strndup(e->d_name, len - 5);
        cr_assert_not_null(names[n]);
        n++;
    }
    closedir(dir);
    cr_assert_gt(n, 0, "no vector files in %s", vec_dir());
    names[n] = NULL;
    return names;
}

void vec_families_free(char **names)
{
    size_t i;

    for (i = 0; names != NULL && names[i] != NULL; i++)
        free(names[i]);
    free(names);
}

cJSON *vec_load(const char *family)
{
    char path[1024];
    FILE *f;
    long len;
    char *buf;
    cJSON *root;

    snprintf(path, sizeof path, "%s/%s.json", vec_dir(), family);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)len + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    buf[len] = '\0';
    root = cJSON_Parse(buf);
    free(buf);
    cr_assert_not_null(root, "%s is not valid JSON", path);
    return root;
}

const cJSON *vec_field(const cJSON *request, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(request, name);
}

/* Walks a nested array, recording its shape on the first descent and
 * appending the numbers to out (when out is not NULL). */
static size_t flatten(const cJSON *a, double *out, size_t at, size_t depth,
                      size_t dims[3], size_t *rank)
{
    const cJSON *e;

    if (cJSON_IsNumber(a)) {
        if (out)
            out[at] = a->valuedouble;
        return at + 1;
    }
    cr_assert(cJSON_IsArray(a) && depth < 3, "bad tensor in vector file");
    if (depth + 1 > *rank) {
        *rank = depth + 1;
        dims[depth] = (size_t)cJSON_GetArraySize(a);
    }
    cJSON_ArrayForEach(e, a)
        at = flatten(e, out, at, depth + 1, dims, rank);
    return at;
}

double *vec_tensor(const cJSON *request, const char *name, size_t dims[3],
                   size_t *rank)
{
    const cJSON *a = vec_field(request, name);
    size_t n;
    double *out;

    *rank = 0;
    dims[0] = dims[1] = dims[2] = 0;
    if (a == NULL)
        return NULL;
    n = flatten(a, NULL, 0, 0, dims, rank);
    out = malloc((n ? n : 1) * sizeof *out);
    cr_assert_not_null(out);
    flatten(a, out, 0, 0, dims, rank);
    return out;
}

int64_t *vec_labels(const cJSON *request, const char *name, size_t *n)
{
    const cJSON *a = vec_field(request, name), *e;
    int64_t *out;
    size_t i = 0;

    *n = 0;
    if (a == NULL)
        return NULL;
    *n = (size_t)cJSON_GetArraySize(a);
    out = malloc((*n ? *n : 1) * sizeof *out);
    cr_assert_not_null(out);
    cJSON_ArrayForEach(e, a)
        out[i++] = (int64_t)e->valuedouble;
    return out;
}

double vec_number(const cJSON *request, const char *name, double dflt)
{
    const cJSON *v = vec_field(request, name);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

int vec_bool(const cJSON *request, const char *name, int dflt)
{
    const cJSON *v = vec_field(request, name);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

const char *vec_string(const cJSON *request, const char *name, const char *dflt)
{
    const cJSON *v = vec_field(request, name);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

int vec_reduction(const cJSON *request)
{
    return strcmp(vec_string(request, "reduction", "mean"), "sum") == 0;
}

void vec_expect_number(const cJSON *want, double got, const char *case_name,
                       const char *what)
{
    double w;

    cr_assert_not_null(want, "%s: %s missing from vector", case_name, what);
    if (cJSON_IsNull(want)) {
        cr_expect(!isfinite(got), "%s: %s = %.17g, want null", case_name, what,
                  got);
        return;
    }
    w = want->valuedouble;
    cr_expect(fabs(got - w) <= VEC_RTOL * fabs(w) + VEC_ATOL,
              "%s: %s = %.17g, want %.17g", case_name, what, got, w);
}

/* Compares the leaves of a nested JSON array, in row-major order, with
 * got[*at...]; null leaves match non-finite values. */
static void expect_walk(const cJSON *want, const double *got, size_t n,
                        size_t *at, const char *case_name, const char *what)
{
    const cJSON *e;
    char label[160];

    if (!cJSON_IsArray(want)) {
        cr_assert(*at < n, "%s: %s has more than %zu elements", case_name, what,
                  n);
        snprintf(label, sizeof label, "%s[%zu]", what, *at);
        vec_expect_number(want, got[*at], case_name, label);
        (*at)++;
        return;
    }
    cJSON_ArrayForEach(e, want)
        expect_walk(e, got, n, at, case_name, what);
}

void vec_expect_array(const cJSON *want, const double *got, size_t n,
                      const char *case_name, const char *what)
{
    size_t at = 0;

    cr_assert_not_null(want, "%s: %s missing from vector", case_name, what);
    expect_walk(want, got, n, &at, case_name, what);
    cr_assert_eq(at, n, "%s: %s has %zu elements, want %zu", case_name, what,
                 at, n);
}

void fd_check(double (*eval)(void *ctx), void *ctx, double *x,
              const double *grad, size_t n, double h, double rtol,
              const char *what)
{
    size_t i;

    for (i = 0; i < n; i++) {
        double x0 = x[i], step = h * fmax(1.0, fabs(x0)), up, down, fd;

        if (!isfinite(grad[i]))
            continue;
        x[i] = x0 + step;
        up = eval(ctx);
        x[i] = x0 - step;
        down = eval(ctx);
        x[i] = x0;
        fd = (up - down) / (2.0 * step);
        cr_expect(fabs(fd - grad[i]) <=
                      rtol * fmax(1.0, fmax(fabs(fd), fabs(grad[i]))),
                  "%s[%zu]: analytic %.12g, finite difference %.12g", what, i,
                  grad[i], fd);
    }
}

double test_rand(uint64_t *state, double lo, double hi)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return lo +
           (hi - lo) * (double)((x * 2685821657736338717ULL) >> 11) * 0x1.0p-53;
}

void test_rand_fill(uint64_t *state, double *x, size_t n, double lo, double hi)
{
    size_t i;

    for (i = 0; i < n; i++)
        x[i] = test_rand(state, lo, hi);
}
