/* metrics.h -- request counters, a latency histogram and gauges, rendered
 * in the Prometheus text exposition format for GET /metrics.
 *
 * Series:
 *   lossd_requests_total{loss,status}           counter
 *   lossd_request_duration_seconds{loss}        histogram
 *   lossd_in_flight                              gauge
 *   lossd_queue_depth                            gauge (passed in at render)
 *   lossd_workers_busy                           gauge (passed in at render)
 *   lossd_bytes_received_total, lossd_bytes_sent_total   counters
 *   lossd_rejected_total{reason}                 counter
 * loss is a name of the contract, or "other" for requests that are not for
 * a known loss, so a client cannot grow the label set.
 *
 * Thread-safety: every function may run on any thread at once after
 * srv_metrics_init; one mutex guards all the numbers. */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stddef.h>

/* Reads the loss and divergence names once.  Call before any thread. */
void srv_metrics_init(void);

/* A request has started (lossd_in_flight goes up). */
void srv_metrics_request_begin(void);

/* A request that srv_metrics_request_begin counted is over. loss may be
 * NULL; status 0 means it was dropped without an answer (only in-flight
 * and bytes received change). */
void srv_metrics_request_end(const char *loss, int status, size_t bytes_in,
                             size_t bytes_out, double seconds);

/* One request refused or dropped: reason is the error code of its answer
 * ("unauthorized", "overloaded", "body_too_large", ...) or "timeout" /
 * "dropped" for a request that got no answer.  The set of reasons is
 * capped; reasons past the cap count as "other". */
void srv_metrics_rejected(const char *reason);

/* Requests between begin and end. */
long srv_metrics_in_flight(void);

/* The exposition text, malloc'd (free with free); NULL when out of memory.
 * body_bytes: bytes of request bodies held against --max-body-total. */
char *srv_metrics_render(unsigned queue_depth, unsigned workers_busy,
                         size_t body_bytes, size_t *len);

#endif
