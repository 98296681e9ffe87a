/* util.h -- what the benchmark programs share: a monotonic clock and
 * reading a request body from a file. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>

/* Seconds on the monotonic clock. */
double bench_now_s(void);

/* The whole file at path, malloc'd (not NUL-terminated), its size in
 * *len; NULL when it cannot be read or is empty. */
char *bench_read_file(const char *path, size_t *len);

#endif
