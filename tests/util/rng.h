/* rng.h -- the tests' deterministic pseudo-random numbers: Marsaglia's
 * xorshift64 (13, 7, 17), whose whole stream a test names by its seed. */
#ifndef TESTS_RNG_H
#define TESTS_RNG_H

#include <stdint.h>

/* The next 64 bits of the stream at *state (never 0). */
static inline uint64_t rng_next(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* A double uniform in (0, 1), the centre of one of 2^53 equal steps. */
static inline double rng_unit(uint64_t *state)
{
    return ((double)(rng_next(state) >> 11) + 0.5) * 0x1p-53;
}

#endif
