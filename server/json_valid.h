/* json_valid.h -- whether a text is one JSON document (RFC 8259), checked
 * without recursion and without building anything, so that no nesting is
 * too deep for it.  json_in.c turns away bodies nested deeper than any
 * request before they are parsed; this tells whether such a body is JSON
 * at all, which decides the error it gets (422 for its depth, or 400).
 *
 * Thread-safety: reentrant. */
#ifndef SRV_JSON_VALID_H
#define SRV_JSON_VALID_H

#include <stddef.h>

/* The length of the NaN or infinity token ("NaN", "-Infinity", "inf",
 * any case, with a sign or none, not followed by a letter) at the start of
 * s[0..n), which JSON does not have; 0 when there is none. */
size_t srv_json_nonfinite_len(const char *s, size_t n);

/* The first offset at or after i in s[0..len) that is not JSON white
 * space (space, tab, LF, CR), or len. */
size_t srv_json_skip_space(const char *s, size_t len, size_t i);

/* The offset in s[0..len) where it stops being one JSON value between
 * optional white space, or SIZE_MAX when it is one.  A text that ends too
 * soon is reported at its last byte, as cJSON reports it.  With nonfinite
 * set, a NaN or infinity token counts as a number: json_in.c reports those
 * as non-finite values, not as text that is not JSON.  Nesting of any depth
 * is followed in a bit a level; when that memory cannot be had, the answer
 * is SIZE_MAX (the text is not judged). */
size_t srv_json_valid_at(const char *s, size_t len, int nonfinite);

#endif
