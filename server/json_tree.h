/* json_tree.h -- a fast reader of strict JSON into a cJSON tree.
 *
 * The contract's bodies are mostly numbers, and cJSON reads each one with
 * strtod, which dominates the parse of a large batch.  This reader builds
 * the same tree, node for node and link for link, in memory from cJSON's
 * own allocator (cJSON_malloc, or straight from the calling thread's arena
 * when that is where cJSON allocates, srv_arena_cjson), so cJSON_Delete
 * and every cJSON accessor work on it.  It converts numbers itself,
 * exactly: a decimal of at most 19 significant digits is rounded
 * correctly by one floating-point operation where both operands
 * are exact (Clinger's fast path), or else in integer arithmetic with a
 * 128-bit power of ten (Eisel-Lemire), correct for every such decimal; a
 * longer one is settled the same way when its first 19 digits and those
 * plus one in the last place round alike, and otherwise goes to strtod, as
 * in cJSON.  No extended precision anywhere, so the result does not depend
 * on x87 precision or an emulator's.
 *
 * It accepts only strict RFC 8259 JSON without string escapes, nested at
 * most max_depth deep (the body object counting as one).  On anything else
 * it declines, and the caller parses with cJSON as before, so every error
 * a client sees stays as cJSON words it (the caller then refuses what
 * cJSON takes but JSON does not, srv_json_strict_at).  For the documents
 * it accepts, the tree equals cJSON's: same types, order, keys
 * (duplicates kept), valuedouble bit for bit and valueint.
 *
 * Thread-safety: reentrant. */
#ifndef SRV_JSON_TREE_H
#define SRV_JSON_TREE_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef enum srv_tree_status {
    SRV_TREE_OK = 0,
    SRV_TREE_DECLINED = 1, /* not strict JSON this reader handles */
    SRV_TREE_NOMEM = 2
} srv_tree_status;

/* Reads the JSON value at the start of body[0..len) (leading whitespace
 * skipped).  On SRV_TREE_OK, *out is the tree and *end points just past
 * the value, as cJSON_ParseWithLengthOpts's return_parse_end; otherwise
 * *out is NULL and nothing is left allocated. */
srv_tree_status srv_json_tree_parse(const char *body, size_t len,
                                    size_t max_depth, cJSON **out,
                                    const char **end);

/* srv_json_tree_parse, except that every array whose elements are all
 * numbers (one at least) is packed: one node of type cJSON_Array |
 * SRV_JSON_PACKED without children, its numbers (as cJSON would have read
 * them) in an array of double at valuestring, valueint of them.  Other
 * arrays, and everything else, are as srv_json_tree_parse reads them.
 * cJSON_Delete releases such a tree, but only a reader that knows packed
 * arrays (srv_json_packed) may look at it: to cJSON they are empty. */
srv_tree_status srv_json_tree_parse_packed(const char *body, size_t len,
                                           size_t max_depth, cJSON **out,
                                           const char **end);

/* A type bit of cJSON's that cJSON itself leaves free. */
#define SRV_JSON_PACKED (1 << 12)
_Static_assert((SRV_JSON_PACKED &
                (0xFF | cJSON_IsReference | cJSON_StringIsConst)) == 0,
               "SRV_JSON_PACKED is one of cJSON's own bits");

/* Whether a is a packed array of numbers; then its numbers and count. */
static inline int srv_json_packed(const cJSON *a)
{
    return a != NULL && (a->type & SRV_JSON_PACKED) != 0;
}

static inline const double *srv_json_packed_values(const cJSON *a)
{
    return (const double *)(const void *)a->valuestring;
}

static inline size_t srv_json_packed_len(const cJSON *a)
{
    return (size_t)a->valueint;
}

/* Whether c may continue a number as cJSON reads one (a digit, sign,
 * point or exponent mark). */
static inline int srv_json_number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' ||
           c == 'e' || c == 'E';
}

/* The length of the strict JSON number (RFC 8259: -?(0|[1-9]d*)(.d+)?
 * ([eE][+-]?d+)?) that s[0..len) starts with, 0 when it starts with
 * none. */
size_t srv_json_number_length(const char *s, size_t len);

/* The number that the JSON number text s[0..len) denotes, as strtod would
 * round it; 0 on success, -1 when s is not a strict JSON number. */
int srv_json_number(const char *s, size_t len, double *out);

#endif
