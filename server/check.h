/* check.h -- `lossd --check URL`: the daemon's own health probe, for
 * container HEALTHCHECKs and exec probes in images that carry no curl.
 *
 * Thread-safety: single-threaded; runs instead of the daemon. */
#ifndef SRV_CHECK_H
#define SRV_CHECK_H

/* Seconds a check may take in all (connect, send, answer). */
#define SRV_CHECK_TIMEOUT 5

/* GETs url ("http://host[:port][/path]", port 80 by default) over a plain
 * TCP socket.  Returns 0 when the answer's status is 200, else 1 after one
 * line on stderr saying what went wrong. */
int srv_check_url(const char *url);

#endif
