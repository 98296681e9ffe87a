/* parse_bench.c -- the JSON parser alone on one body (the benchmark's
 * softmax 1000x1000): the time to build the tree and release it, for
 *   cjson_default  cJSON_ParseWithLengthOpts with cJSON's own malloc/free,
 *                  then cJSON_Delete;
 *   cjson_arena    the same parse with lossd's per-request arena
 *                  (server/arena.h), released at once;
 *   cjson_arena_warm  the same, the arena on a buffer whose pages are
 *                  already faulted in (as one kept between requests
 *                  would be): allocation is a bump of a pointer, release
 *                  nothing, and no page is faulted in -- about the most
 *                  any allocator can take off cJSON's time;
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
#include "json_same.h"
#include "json_tree.h"
#include "util.h"

enum {
    CJSON_DEFAULT,
    CJSON_ARENA,
    CJSON_ARENA_WARM,
    LOSSD_READER,
    LOSSD_PACKED,
    VARIANTS
};
static const char *const names[VARIANTS] = {"cjson_default", "cjson_arena",
                                            "cjson_arena_warm", "lossd_reader",
                                            "lossd_packed"};

/* cjson_arena_warm's buffer, written once before the runs. */
static char *warm;
static size_t warm_cap;

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
        t0 = bench_now_s();
        root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
        if (root == NULL)
            return -1;
        cJSON_Delete(root);
        return bench_now_s() - t0;
    }
    cJSON_InitHooks(&hooks);
    t0 = bench_now_s();
    if (variant == CJSON_ARENA_WARM)
        srv_arena_init(&arena, warm, warm_cap, len * 4);
    else
        srv_arena_init(&arena, NULL, 0, len * 4);
    srv_arena_enter(&arena);
    if (variant == CJSON_ARENA || variant == CJSON_ARENA_WARM)
        root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    else if ((variant == LOSSD_READER
                  ? srv_json_tree_parse(body, len, SRV_MAX_DEPTH, &root, &end)
                  : srv_json_tree_parse_packed(body, len, SRV_MAX_DEPTH, &root,
                                               &end)) != SRV_TREE_OK)
        root = NULL;
    srv_arena_leave();
    /* The warm figure holds only if the tree fitted in the warm buffer. */
    if (variant == CJSON_ARENA_WARM && arena.blocks != NULL)
        root = NULL;
    srv_arena_cleanup(&arena);
    return root == NULL ? -1 : bench_now_s() - t0;
}

static int check(const char *body, size_t len)
{
    const char *end;
    cJSON *a = cJSON_ParseWithLengthOpts(body, len, &end, 0), *b = NULL;
    int same;

    if (srv_json_tree_parse(body, len, SRV_MAX_DEPTH, &b, &end) != SRV_TREE_OK)
        b = NULL;
    same = a != NULL && b != NULL && json_same_tree(a, b);
    cJSON_Delete(b);
    b = NULL;
    if (srv_json_tree_parse_packed(body, len, SRV_MAX_DEPTH, &b, &end) !=
        SRV_TREE_OK)
        b = NULL;
    same = same && b != NULL && json_same_packed(b, a);
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

    if (argc < 2 || (body = bench_read_file(argv[1], &len)) == NULL) {
        fprintf(stderr, "usage: parse_bench BODY [runs]\n");
        return 2;
    }
    if (check(body, len) != 0) {
        fprintf(stderr, "parse_bench: the trees differ\n");
        return 1;
    }
    warm_cap = len * 5;
    if ((warm = malloc(warm_cap)) == NULL) {
        fprintf(stderr, "parse_bench: out of memory\n");
        return 1;
    }
    memset(warm, 1, warm_cap); /* every page faulted in */
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
    free(warm);
    free(body);
    return 0;
}
