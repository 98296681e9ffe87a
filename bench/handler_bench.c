/* handler_bench.c -- lossd's request path without HTTP: srv_loss_run on the
 * benchmark's bodies, single thread, timing parse, compute and encode as
 * the handler reports them.  Tells the cost of the handler apart from the
 * cost of libmicrohttpd and the worker pool, and times the JSON parser
 * alone (cJSON as lossd calls it, against cJSON's default allocator).
 *
 * Usage: handler_bench BODIES_DIR [budget_ms [workload]]
 * Prints "<workload> <us per call> <parse us> <compute us> <encode us>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "handler.h"
#include "util.h"

static const char *const workloads[] = {
    "softmax_8x10",     "triplet_8x16",      "kl_8x10",
    "softmax_256x1000", "softmax_1000x1000", "triplet_4096x128",
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

#define MAX_RUNS 4096

/* Medians over as many calls as fit in budget_s (at least 3). */
static int bench_one(const char *name, const char *body, size_t len,
                     double budget_s, double med[4])
{
    static double t[4][MAX_RUNS];
    double start = bench_now_s(), t0;
    size_t runs = 0, k;
    srv_reply r;

    while (runs < MAX_RUNS && (runs < 3 || bench_now_s() - start < budget_s)) {
        t0 = bench_now_s();
        srv_loss_run(name, body, len, &r);
        t[0][runs] = bench_now_s() - t0;
        t[1][runs] = r.parse_s;
        t[2][runs] = r.compute_s;
        t[3][runs] = r.encode_s;
        srv_reply_cleanup(&r);
        if (r.status != 200) {
            fprintf(stderr, "handler_bench: %s answered %d\n", name, r.status);
            return -1;
        }
        runs++;
    }
    for (k = 0; k < 4; k++) {
        qsort(t[k], runs, sizeof(double), cmp_double);
        med[k] = t[k][runs / 2];
    }
    return 0;
}

int main(int argc, char **argv)
{
    double budget = argc > 2 ? atof(argv[2]) / 1e3 : 1.0, med[4];
    const char *only = argc > 3 ? argv[3] : NULL;
    char path[4096], name[32];
    size_t i, len;

    if (argc < 2) {
        fprintf(stderr,
                "usage: handler_bench BODIES_DIR [budget_ms [workload]]\n");
        return 2;
    }
    srv_memory_init(); /* large blocks mapped and unmapped, as in lossd */
    printf("# workload us_per_call parse_us compute_us encode_us\n");
    for (i = 0; i < sizeof workloads / sizeof workloads[0]; i++) {
        char *body;
        if (only != NULL && strcmp(only, workloads[i]) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s.json", argv[1], workloads[i]);
        snprintf(name, sizeof name, "%.*s", (int)strcspn(workloads[i], "_"),
                 workloads[i]);
        if ((body = bench_read_file(path, &len)) == NULL) {
            fprintf(stderr, "handler_bench: cannot read %s\n", path);
            return 1;
        }
        if (bench_one(name, body, len, budget, med) != 0)
            return 1;
        printf("%s %.1f %.1f %.1f %.1f\n", workloads[i], med[0] * 1e6,
               med[1] * 1e6, med[2] * 1e6, med[3] * 1e6);
        fflush(stdout);
        free(body);
    }
    return 0;
}
