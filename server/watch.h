/* watch.h -- a deadline for every request head.  libmicrohttpd's
 * connection timeout is an idle one: a client that sends its request line
 * and headers a byte every few seconds resets it forever, and enough such
 * clients hold every connection slot.  The watch gives each connection
 * --timeout seconds, from its accept or from the end of its previous
 * answer, to deliver a whole request head (and, with TLS, its handshake);
 * past that, a reaper thread shuts the socket down and libmicrohttpd
 * closes the connection.  A request whose head has arrived is left to the
 * body's own deadline (http.c) and to its computation.
 *
 * Thread-safety: srv_watch_notify, srv_watch_busy and srv_watch_idle run
 * on libmicrohttpd's polling threads; start and stop on the main thread. */
#ifndef SRV_WATCH_H
#define SRV_WATCH_H

#include <microhttpd.h>

/* Starts the reaper for a deadline of timeout_s seconds (0: none, and the
 * other calls do nothing).  0, or -1 when the thread cannot start.  Each
 * connection it shuts down counts as a "timeout" rejection. */
int srv_watch_start(unsigned timeout_s);

/* Stops the reaper.  Call after the daemon has stopped. */
void srv_watch_stop(void);

/* MHD_OPTION_NOTIFY_CONNECTION: a connection opens (its deadline starts)
 * or closes (it leaves the watch). */
void srv_watch_notify(void *cls, struct MHD_Connection *conn,
                      void **socket_context,
                      enum MHD_ConnectionNotificationCode code);

/* conn's request head has arrived: no deadline until it is answered. */
void srv_watch_busy(struct MHD_Connection *conn);

/* conn's request is done: the deadline for the next head starts now. */
void srv_watch_idle(struct MHD_Connection *conn);

#endif
