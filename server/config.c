/* config.c -- reads the daemon's settings from defaults, LOSSD_* environment
 * variables and command-line flags.  One table lists every setting with its
 * flag, variable, default and parser, so --help, the environment and the
 * flags can never disagree. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "config.h"

/* A parser stores the value of text in cfg, or returns a static phrase
 * describing what was expected. */
typedef const char *(*option_parser)(srv_config *cfg, const char *text);

typedef struct option {
    const char *flag; /* without the leading "--" */
    const char *env;
    const char *dflt; /* as shown by --help */
    const char *help;
    option_parser parse;
} option;

/* Parses a decimal integer in [lo, hi] with nothing around it. */
static int parse_uint(const char *text, unsigned long long lo,
                      unsigned long long hi, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (!isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static const char *parse_host(srv_config *cfg, const char *text)
{
    struct addrinfo hints, *res = NULL;

    if (text[0] == '\0' || strlen(text) >= sizeof cfg->host)
        return "an IP address or host name";
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(text, NULL, &hints, &res) != 0)
        return "an IP address or a host name that resolves";
    freeaddrinfo(res);
    strcpy(cfg->host, text);
    return NULL;
}

static const char *parse_port(srv_config *cfg, const char *text)
{
    unsigned long long v;

    if (parse_uint(text, 0, 65535, &v) != 0)
        return "a port number in [0, 65535] (0 picks a free port)";
    cfg->port = (unsigned)v;
    return NULL;
}

static const char *parse_threads(srv_config *cfg, const char *text)
{
    unsigned long long v;

    if (parse_uint(text, 1, 1024, &v) != 0)
        return "a number of threads in [1, 1024]";
    cfg->threads = (unsigned)v;
    return NULL;
}

/* Bytes, optionally followed by k, M or G (powers of 1024), themselves
 * optionally followed by "iB" or "B": 65536, 64k, 64M, 64MiB, 1G; NULL
 * when *out holds it, else what was expected. */
static const char *parse_size(const char *text, size_t *out)
{
    static const char *const what =
        "a size in bytes in [1, 1T], optionally with a k, M or G suffix";
    char *end;
    unsigned long long v, mul = 1;

    if (!isdigit((unsigned char)text[0]))
        return what;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0)
        return what;
    switch (*end) {
    case 'k':
    case 'K':
        mul = 1ULL << 10;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1ULL << 20;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1ULL << 30;
        end++;
        break;
    default:
        break;
    }
    if (mul > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
        end += strlen(end);
    if (*end != '\0' || v == 0 || v > (1ULL << 40) / mul)
        return what;
    *out = (size_t)(v * mul);
    return NULL;
}

static const char *parse_max_body(srv_config *cfg, const char *text)
{
    return parse_size(text, &cfg->max_body);
}

static const char *parse_max_body_total(srv_config *cfg, const char *text)
{
    return parse_size(text, &cfg->max_body_total);
}

static const char *parse_max_queue(srv_config *cfg, const char *text)
{
    unsigned long long v;

    if (parse_uint(text, 1, 1000000, &v) != 0)
        return "a queue length in [1, 1000000]";
    cfg->max_queue = (unsigned)v;
    return NULL;
}

/* A number of seconds, 0 to a day, into *out; -1 for anything else. */
static int parse_seconds(const char *text, unsigned *out)
{
    unsigned long long v;

    if (parse_uint(text, 0, 86400, &v) != 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static const char *parse_timeout(srv_config *cfg, const char *text)
{
    if (parse_seconds(text, &cfg->timeout) != 0)
        return "a number of seconds in [0, 86400] (0 disables the timeout)";
    return NULL;
}

static const char *parse_max_compute(srv_config *cfg, const char *text)
{
    if (parse_seconds(text, &cfg->max_compute) != 0)
        return "a number of seconds in [0, 86400] (0 disables the limit)";
    return NULL;
}

static const char *parse_log_format(srv_config *cfg, const char *text)
{
    if (strcmp(text, "json") == 0)
        cfg->log_format = SRV_LOG_JSON;
    else if (strcmp(text, "text") == 0)
        cfg->log_format = SRV_LOG_TEXT;
    else
        return "\"json\" or \"text\"";
    return NULL;
}

static const char *parse_grace(srv_config *cfg, const char *text)
{
    if (parse_seconds(text, &cfg->grace) != 0)
        return "a number of seconds in [0, 86400]";
    return NULL;
}

static const char *parse_max_connections(srv_config *cfg, const char *text)
{
    unsigned long long v;

    if (parse_uint(text, 1, 1000000, &v) != 0)
        return "a number of connections in [1, 1000000]";
    cfg->max_connections = (unsigned)v;
    return NULL;
}

/* Copies a file path; the file itself is read at start-up, where a
 * missing or bad file is reported with the reason. */
static const char *parse_path(char *dst, size_t cap, const char *text)
{
    if (strlen(text) >= cap)
        return "a file path shorter than 4096 bytes";
    strcpy(dst, text);
    return NULL;
}

static const char *parse_api_keys_file(srv_config *cfg, const char *text)
{
    return parse_path(cfg->api_keys_file, sizeof cfg->api_keys_file, text);
}

static const char *parse_tls_cert(srv_config *cfg, const char *text)
{
    return parse_path(cfg->tls_cert, sizeof cfg->tls_cert, text);
}

static const char *parse_tls_key(srv_config *cfg, const char *text)
{
    return parse_path(cfg->tls_key, sizeof cfg->tls_key, text);
}

static const char *parse_metrics_auth(srv_config *cfg, const char *text)
{
    if (strcmp(text, "on") == 0)
        cfg->metrics_auth = 1;
    else if (strcmp(text, "off") == 0)
        cfg->metrics_auth = 0;
    else
        return "\"on\" or \"off\"";
    return NULL;
}

static const option options[] = {
    {"host", "LOSSD_HOST", "0.0.0.0", "address to listen on", parse_host},
    {"port", "LOSSD_PORT", "8080", "TCP port; 0 picks a free one", parse_port},
    {"threads", "LOSSD_THREADS", "CPU count", "compute worker threads",
     parse_threads},
    {"max-body", "LOSSD_MAX_BODY", "64M",
     "largest request body; k, M, G suffixes", parse_max_body},
    {"max-body-total", "LOSSD_MAX_BODY_TOTAL", "1G",
     "request bodies held at once, in bytes; raised to --max-body if lower",
     parse_max_body_total},
    {"max-queue", "LOSSD_MAX_QUEUE", "64",
     "requests waiting for a worker before 503", parse_max_queue},
    {"timeout", "LOSSD_TIMEOUT", "30",
     "seconds a request may take to arrive; 0 = none", parse_timeout},
    {"max-compute", "LOSSD_MAX_COMPUTE", "60",
     "seconds a request may compute before its 413; 0 = none",
     parse_max_compute},
    {"log-format", "LOSSD_LOG_FORMAT", "json", "json or text",
     parse_log_format},
    {"grace", "LOSSD_GRACE", "30",
     "seconds SIGTERM waits for admitted requests", parse_grace},
    {"max-connections", "LOSSD_MAX_CONNECTIONS", "1024",
     "open connections at once; more wait in the listen backlog",
     parse_max_connections},
    {"api-keys-file", "LOSSD_API_KEYS_FILE", "none",
     "API keys, one a line; /loss, /divergence, v2 infer then need one",
     parse_api_keys_file},
    {"metrics-auth", "LOSSD_METRICS_AUTH", "off",
     "on: GET /metrics needs an API key too", parse_metrics_auth},
    {"tls-cert", "LOSSD_TLS_CERT", "none",
     "PEM certificate chain; serves HTTPS", parse_tls_cert},
    {"tls-key", "LOSSD_TLS_KEY", "none", "PEM private key of --tls-cert",
     parse_tls_key},
};
#define NOPTIONS (sizeof options / sizeof options[0])

static void config_defaults(srv_config *cfg)
{
    unsigned cpus = uv_available_parallelism();

    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->host, "0.0.0.0");
    cfg->port = 8080;
    cfg->threads = cpus < 1 ? 1 : cpus > 1024 ? 1024 : cpus;
    cfg->max_body = (size_t)64 << 20;
    cfg->max_body_total = (size_t)1 << 30;
    cfg->max_queue = 64;
    cfg->timeout = 30;
    cfg->max_compute = 60;
    cfg->log_format = SRV_LOG_JSON;
    cfg->grace = 30;
    cfg->max_connections = 1024;
}

static void config_usage(const char *prog)
{
    size_t i;

    printf("Usage: %s [options]\n"
           "Serves loss functions, their gradients and metrics over HTTP.\n\n"
           "Each option may also be set by its environment variable; a flag\n"
           "overrides the variable.\n\n",
           prog);
    for (i = 0; i < NOPTIONS; i++)
        printf("  --%-15s %-21s %s (default: %s)\n", options[i].flag,
               options[i].env, options[i].help, options[i].dflt);
    printf("  %-17s %-21s %s\n", "", "LOSSD_API_KEYS",
           "API keys, comma-separated (adds to --api-keys-file)");
    printf("  --%-15s %-21s %s\n", "help", "", "print this help and exit");
    printf("  --%-15s %-21s %s\n", "version", "", "print the version and exit");
    printf("  --%-15s %-21s %s\n", "check URL", "",
           "GET URL (a health check) and exit: 0 on a 200, else 1");
}

/* Applies one value; on failure prints the single error line. */
static int config_apply(srv_config *cfg, const option *o, const char *source,
                        const char *text)
{
    const char *want = o->parse(cfg, text);

    if (want == NULL)
        return 0;
    fprintf(stderr, "lossd: %s: invalid value '%s': expected %s\n", source,
            text, want);
    return -1;
}

static int config_from_env(srv_config *cfg)
{
    size_t i;

    for (i = 0; i < NOPTIONS; i++) {
        const char *v = getenv(options[i].env);
        if (v != NULL && config_apply(cfg, &options[i], options[i].env, v))
            return -1;
    }
    return 0;
}

static const option *option_find(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].flag) == len &&
            strncmp(options[i].flag, name, len) == 0)
            return &options[i];
    return NULL;
}

/* Handles argv[*i], "--flag value" or "--flag=value", advancing *i. */
static int config_flag(srv_config *cfg, int argc, char **argv, int *i)
{
    const char *arg = argv[*i], *name = arg + 2, *eq, *value;
    const option *o;
    char source[32];

    if (strncmp(arg, "--", 2) != 0) {
        fprintf(stderr, "lossd: unexpected argument '%s' (see --help)\n", arg);
        return -1;
    }
    eq = strchr(name, '=');
    o = option_find(name, eq ? (size_t)(eq - name) : strlen(name));
    if (o == NULL) {
        fprintf(stderr, "lossd: unknown option '%s' (see --help)\n", arg);
        return -1;
    }
    if (eq != NULL) {
        value = eq + 1;
    } else if (*i + 1 < argc) {
        value = argv[++*i];
    } else {
        fprintf(stderr, "lossd: --%s needs a value (see --help)\n", o->flag);
        return -1;
    }
    snprintf(source, sizeof source, "--%s", o->flag);
    return config_apply(cfg, o, source, value);
}

/* --check URL or --check=URL: probe mode, in which no other setting is
 * read. */
static srv_config_action config_check(srv_config *cfg, int argc, char **argv,
                                      int i)
{
    const char *url = argv[i][7] == '=' ? argv[i] + 8
                      : i + 1 < argc    ? argv[i + 1]
                                        : NULL;

    if (url == NULL || *url == '\0') {
        fprintf(stderr, "lossd: --check needs a URL (see --help)\n");
        return SRV_CONFIG_ERROR;
    }
    config_defaults(cfg);
    cfg->check_url = url;
    return SRV_CONFIG_CHECK;
}

srv_config_action srv_config_parse(srv_config *cfg, int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            config_usage(argv[0]);
            return SRV_CONFIG_EXIT;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("lossd %s\n", LOSSD_VERSION);
            return SRV_CONFIG_EXIT;
        }
        if (strncmp(argv[i], "--check", 7) == 0 &&
            (argv[i][7] == '\0' || argv[i][7] == '='))
            return config_check(cfg, argc, argv, i);
    }
    config_defaults(cfg);
    if (config_from_env(cfg) != 0)
        return SRV_CONFIG_ERROR;
    for (i = 1; i < argc; i++)
        if (config_flag(cfg, argc, argv, &i) != 0)
            return SRV_CONFIG_ERROR;
    if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
        fprintf(stderr, "lossd: --tls-cert and --tls-key go together: give "
                        "both or neither\n");
        return SRV_CONFIG_ERROR;
    }
    return SRV_CONFIG_RUN;
}
