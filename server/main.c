/* main.c -- lossd: parse the configuration, start the compute pool and the
 * HTTP daemon, serve until SIGTERM or SIGINT, then drain and exit 0 (1
 * when requests are still left after --grace). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "arena.h"
#include "auth.h"
#include "check.h"
#include "config.h"
#include "handler.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "signals.h"

/* Waits up to grace seconds for the admitted requests; past that, stops
 * the computations that can stop (srv_compute_abort), which answer 503
 * at once for a proxy to retry elsewhere, and gives them a second more.
 * Returns the number still left: bodies still arriving, linear losses. */
static long drain(unsigned grace)
{
    long left = srv_signals_wait_idle(grace);

    if (left == 0)
        return 0;
    srv_log_event_write("stopping_computations", "in_flight", left);
    srv_compute_abort();
    return srv_signals_wait_idle(1);
}

int main(int argc, char **argv)
{
    srv_config cfg;
    unsigned port = 0;
    int sig;
    long left;

    switch (srv_config_parse(&cfg, argc, argv)) {
    case SRV_CONFIG_EXIT:
        return 0;
    case SRV_CONFIG_ERROR:
        return 2;
    case SRV_CONFIG_CHECK:
        return srv_check_url(cfg.check_url);
    case SRV_CONFIG_RUN:
        break;
    }
    if (srv_auth_load(cfg.api_keys_file, getenv("LOSSD_API_KEYS")) != 0)
        return 2;
    srv_memory_init();
    srv_signals_block();
    srv_log_init(cfg.log_format);
    srv_metrics_init();
    srv_compute_limit_set(cfg.max_compute);
    if (srv_pool_start(cfg.threads, cfg.max_queue) != 0) {
        fprintf(stderr, "lossd: cannot start %u worker threads\n", cfg.threads);
        return 1;
    }
    if (srv_http_start(&cfg, &port) != 0) {
        srv_pool_stop();
        return 1;
    }
    srv_log_start_write(&cfg, port);
    sig = srv_signals_wait();
    srv_http_drain();
    srv_log_event_write("draining", "signal", sig);
    left = drain(cfg.grace);
    if (left > 0) {
        /* Workers may still hold suspended connections, which the daemon
         * cannot be stopped under: leave without tearing down. */
        srv_log_event_write("grace_expired", "in_flight", left);
        _exit(1);
    }
    srv_http_stop();
    srv_pool_stop();
    srv_auth_free();
    srv_log_event_write("stopped", "in_flight", left);
    srv_log_stop();
    return 0;
}
