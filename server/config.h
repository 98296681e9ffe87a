/* config.h -- the daemon's settings: defaults, then LOSSD_* environment
 * variables, then command-line flags, each later source overriding the
 * earlier one (API.md, "Configuration").
 *
 * Thread-safety: srv_config_parse runs once in main() before any thread
 * starts; afterwards the struct is only read. */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <stddef.h>

#define LOSSD_VERSION "0.1.0"

typedef enum srv_log_format { SRV_LOG_JSON, SRV_LOG_TEXT } srv_log_format;

typedef struct srv_config {
    char host[256];        /* address to listen on; "0.0.0.0" */
    unsigned port;         /* 0 asks the kernel for an ephemeral port */
    unsigned threads;      /* compute workers */
    size_t max_body;       /* bytes */
    size_t max_body_total; /* bytes of bodies held at once (the larger of
                              it and max_body applies) */
    unsigned max_queue;    /* requests waiting for a worker before 503 */
    unsigned timeout;      /* seconds a request may take to arrive; 0 off */
    unsigned max_compute;  /* seconds a request may compute; 0 off */
    srv_log_format log_format;
    unsigned grace;           /* seconds SIGTERM waits for admitted work */
    unsigned max_connections; /* open connections at once */
    char api_keys_file[4096]; /* "" when none; keys also from LOSSD_API_KEYS */
    int metrics_auth;         /* 1: GET /metrics needs a key too */
    char tls_cert[4096];      /* PEM paths; both "" for plain HTTP */
    char tls_key[4096];
    const char *check_url; /* --check: the URL to probe, else NULL */
} srv_config;

/* What srv_config_parse asks main() to do. */
typedef enum srv_config_action {
    SRV_CONFIG_RUN,   /* start the daemon */
    SRV_CONFIG_EXIT,  /* --help or --version printed; exit 0 */
    SRV_CONFIG_ERROR, /* one line written to stderr; exit 2 */
    SRV_CONFIG_CHECK  /* --check URL: probe cfg->check_url, then exit */
} srv_config_action;

/* Fills *cfg from the defaults, the environment and argv.  --help and
 * --version print to stdout; --check URL sets cfg->check_url (pointing into
 * argv) and reads no other setting.  A bad value prints one line naming the
 * flag or variable to stderr and returns SRV_CONFIG_ERROR. */
srv_config_action srv_config_parse(srv_config *cfg, int argc, char **argv);

#endif
