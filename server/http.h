/* http.h -- the HTTP front: libmicrohttpd on its internal polling threads
 * (epoll on Linux), routing each request with route.c and handing every
 * complete loss request to the compute pool.
 *
 * A loss request's life: headers -> srv_route_head; the body is copied
 * once into one buffer (sized from Content-Length when known); then a pool
 * slot is reserved, the connection suspended and the job queued; the
 * worker runs srv_loss_run and resumes the connection; the HTTP thread
 * queues the response with its Server-Timing header.
 *
 * Thread-safety: start and stop run on the main thread; drain and
 * draining may be called from any thread. */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include "config.h"

/* Binds cfg->host:cfg->port, starts the daemon and stores the bound port
 * in *port.  0, or -1 after one line on stderr. */
int srv_http_start(const srv_config *cfg, unsigned *port);

/* From now on /readyz answers 503, new loss requests get 503 with
 * Retry-After, and responses close their connections.  Requests already
 * admitted run to completion. */
void srv_http_drain(void);
int srv_http_draining(void);

/* Loss requests admitted (past the header checks) and not yet answered
 * in full: the work a drain waits for. */
long srv_http_busy(void);

/* Bytes of request bodies held against --max-body-total now. */
size_t srv_http_body_bytes(void);

/* Stops the daemon, closing every connection.  Call when no request is in
 * flight (no connection is suspended). */
void srv_http_stop(void);

#endif
