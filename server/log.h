/* log.h -- the daemon's log on stdout: one line per request and one per
 * lifecycle event, as JSON objects (default) or as text for people.
 *
 * Thread-safety: every function may be called from any thread once
 * srv_log_init has run; each line goes out whole, and lines from different
 * threads never interleave.  Request lines go out in batches at most
 * 10 ms after they are written; every other line at once, after them. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <stddef.h>

#include "config.h"

/* One finished request. Strings may be NULL (written as null / "-"). */
typedef struct srv_log_request {
    const char *method;
    const char *path;
    const char *loss; /* the loss name for POST /loss/{name} */
    int status;
    size_t bytes_in;  /* request body bytes received */
    size_t bytes_out; /* response body bytes */
    long long micros; /* from the first header callback to completion */
} srv_log_request;

/* Sets the format and starts the thread that writes request lines in
 * batches (without it they are written one by one). */
void srv_log_init(srv_log_format format);
/* Writes the lines still waiting and stops that thread. */
void srv_log_stop(void);
void srv_log_request_write(const srv_log_request *r);

/* "listening" with the bound address and the settings tests and operators
 * look for: {"event":"listening","host":...,"port":40123,...}. */
void srv_log_start_write(const srv_config *cfg, unsigned port);

/* A lifecycle event ("draining", "stopped") with a count attached
 * (requests in flight). */
void srv_log_event_write(const char *event, const char *key, long long value);

/* A warning from the daemon or libmicrohttpd, printf-style. */
void srv_log_warn(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
