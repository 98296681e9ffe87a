/* signals.h -- the daemon's lifecycle signals.  SIGTERM and SIGINT are
 * blocked in every thread (the mask is set before any thread starts and
 * inherited) and taken synchronously by the main thread with sigwait, so no
 * code runs in a signal handler.  SIGPIPE is ignored.
 *
 * Thread-safety: main thread only. */
#ifndef SRV_SIGNALS_H
#define SRV_SIGNALS_H

/* Blocks SIGTERM and SIGINT, ignores SIGPIPE.  Call before any thread. */
void srv_signals_block(void);

/* Waits for SIGTERM or SIGINT; returns the signal number. */
int srv_signals_wait(void);

/* Waits until no admitted loss request is left (srv_http_busy), until
 * grace seconds have passed, or until another SIGTERM/SIGINT asks not to
 * wait.  Returns the number still left (0 after a clean drain).
 * Requests answered at once (service endpoints, 503s) are not waited for:
 * under steady traffic they never run out. */
long srv_signals_wait_idle(unsigned grace);

#endif
