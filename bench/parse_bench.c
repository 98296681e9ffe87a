/* parse_bench.c -- the JSON parser alone on one body (the benchmark's
 * softmax 1000x1000): the time to build the tree and release it, for
 *   cjson_default  cJSON_ParseWithLengthOpts with cJSON's own malloc/free,
 *                  then cJSON_Delete;
 *   cjson_arena    the same parse with lossd's per-request arena
 *                  (server/arena.h), released at once;
 *   lossd_reader   lossd's reader (server/json_tree.h) building the same
 *                  tree as cJSON, node for node, in the arena;
 *   lossd_packed   the same reader with every array of numbers packed
 *                  into one node holding the doubles -- what a request
 *                  runs.
 * Each figure is the best of several interleaved runs, so that other load
 * on the machine does not favour one of them.  The trees are compared
 * node by node once, so the speed is not bought with a different result.
 *
 * Usage: parse_bench BODY [runs]
 * Prints "<variant> <ms>" lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "arena.h"
#include "json_in.h"
#include "json_tree.h"

enum { CJSON_DEFAULT, CJSON_ARENA, LOSSD_READER, LOSSD_PACKED, VARIANTS };
static const char *const names[VARIANTS] = {"cjson_default", "cjson_arena",
                                            "lossd_reader", "lossd_packed"};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) != NULL &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf != NULL)
        *len = (size_t)n;
    fclose(f);
    return buf;
}

/* 1 when the trees are equal node by node, bit for bit in numbers. */
static int same_tree(const cJSON *a, const cJSON *b)
{
    for (; a != NULL && b != NULL; a = a->next, b = b->next) {
        if (a->type != b->type || a->valueint != b->valueint ||
            memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0 ||
            (a->string == NULL) != (b->string == NULL) ||
            (a->string != NULL && strcmp(a->string, b->string) != 0) ||
            (a->valuestring == NULL) != (b->valuestring == NULL) ||
            (a->valuestring && strcmp(a->valuestring, b->valuestring)) ||
            !same_tree(a->child, b->child))
            return 0;
    }
    return a == NULL && b == NULL;
}

/* Whether the packed tree p holds what cJSON's tree a does: a packed
 * array stands for an array of number nodes with the same values. */
static int same_packed(const cJSON *a, const cJSON *p)
{
    const double *v;
    size_t i, n;

    for (; a != NULL && p != NULL; a = a->next, p = p->next) {
        if (!srv_json_packed(p)) {
            if (a->type != p->type || a->valueint != p->valueint ||
                memcmp(&a->valuedouble, &p->valuedouble, sizeof(double)) ||
                (a->string == NULL) != (p->string == NULL) ||
                (a->string != NULL && strcmp(a->string, p->string) != 0) ||
                !same_packed(a->child, p->child))
                return 0;
            continue;
        }
        v = srv_json_packed_values(p);
        n = srv_json_packed_len(p);
        if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != n)
            return 0;
        for (i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(a, (int)i);
            if (!cJSON_IsNumber(e) ||
                memcmp(&e->valuedouble, &v[i], sizeof(double)) != 0)
                return 0;
        }
    }
    return a == NULL && p == NULL;
}

/* One parse and release; the seconds it took, or -1 on failure. */
static double run(int variant, const char *body, size_t len)
{
    cJSON_Hooks hooks;
    const char *end;
    cJSON *root = NULL;
    srv_arena arena;
    double t0;

    srv_json_hooks(&hooks);
    if (variant == CJSON_DEFAULT) {
        cJSON_InitHooks(NULL);
        t0 = now_s();
        root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
        if (root == NULL)
            return -1;
        cJSON_Delete(root);
        return now_s() - t0;
    }
    cJSON_InitHooks(&hooks);
    t0 = now_s();
    srv_arena_init(&arena, NULL, 0, len * 4);
    srv_arena_enter(&arena);
    if (variant == CJSON_ARENA)
        root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    else if ((variant == LOSSD_READER
                  ? srv_json_tree_parse(body, len, SRV_MAX_DEPTH, &root, &end)
                  : srv_json_tree_parse_packed(body, len, SRV_MAX_DEPTH, &root,
                                               &end)) != SRV_TREE_OK)
        root = NULL;
    srv_arena_leave();
    srv_arena_cleanup(&arena);
    return root == NULL ? -1 : now_s() - t0;
}

static int check(const char *body, size_t len)
{
    const char *end;
    cJSON *a = cJSON_ParseWithLengthOpts(body, len, &end, 0), *b = NULL;
    int same;

    if (srv_json_tree_parse(body, len, SRV_MAX_DEPTH, &b, &end) != SRV_TREE_OK)
        b = NULL;
    same = a != NULL && b != NULL && same_tree(a, b);
    cJSON_Delete(b);
    b = NULL;
    if (srv_json_tree_parse_packed(body, len, SRV_MAX_DEPTH, &b, &end) !=
        SRV_TREE_OK)
        b = NULL;
    same = same && b != NULL && same_packed(a, b);
    cJSON_Delete(a);
    cJSON_Delete(b);
    return same ? 0 : -1;
}

int main(int argc, char **argv)
{
    int runs = argc > 2 ? atoi(argv[2]) : 7, i, v;
    double best[VARIANTS], t;
    size_t len;
    char *body;

    if (argc < 2 || (body = read_file(argv[1], &len)) == NULL) {
        fprintf(stderr, "usage: parse_bench BODY [runs]\n");
        return 2;
    }
    if (check(body, len) != 0) {
        fprintf(stderr, "parse_bench: the trees differ\n");
        return 1;
    }
    for (v = 0; v < VARIANTS; v++)
        best[v] = 1e30;
    for (i = 0; i < runs; i++) {
        for (v = 0; v < VARIANTS; v++) {
            if ((t = run(v, body, len)) < 0) {
                fprintf(stderr, "parse_bench: %s failed\n", names[v]);
                return 1;
            }
            best[v] = t < best[v] ? t : best[v];
        }
    }
    printf("# variant best_ms (of %d runs, %zu bytes)\n", runs, len);
    for (v = 0; v < VARIANTS; v++)
        printf("%s %.1f\n", names[v], best[v] * 1e3);
    free(body);
    return 0;
}
