/* log.c -- writes log lines to stdout.  Each line is built in a local
 * buffer and written with one fwrite under flockfile, then flushed, so a
 * reader (a test, a log shipper) always sees whole lines as they happen. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* Written once by srv_log_init before any thread starts; read-only after. */
static srv_log_format log_format = SRV_LOG_JSON;

typedef struct line {
    char buf[2048];
    size_t len;
} line;

void srv_log_init(srv_log_format format)
{
    log_format = format;
}

static void line_printf(line *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void line_printf(line *l, const char *fmt, ...)
{
    va_list ap;
    int n;
    size_t room = sizeof l->buf - l->len;

    va_start(ap, fmt);
    n = vsnprintf(l->buf + l->len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    l->len += (size_t)n < room ? (size_t)n : room - 1;
}

/* Appends s as a JSON string (quoted; control and non-ASCII bytes escaped
 * so the line stays valid JSON whatever a client put in a path), at most
 * 512 bytes of it. */
static void line_json_string(line *l, const char *s)
{
    size_t i;

    if (s == NULL) {
        line_printf(l, "null");
        return;
    }
    line_printf(l, "\"");
    for (i = 0; i < 512 && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            line_printf(l, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            line_printf(l, "\\u%04x", c);
        else
            line_printf(l, "%c", c);
    }
    line_printf(l, "\"");
}

/* Starts a line with the UTC time and level. */
static void line_begin(line *l, const char *level)
{
    struct timespec ts;
    struct tm tm;
    char when[32];

    l->len = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    if (log_format == SRV_LOG_JSON)
        line_printf(l, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",", when,
                    ts.tv_nsec / 1000000, level);
    else
        line_printf(l, "%s.%03ldZ %-5s ", when, ts.tv_nsec / 1000000, level);
}

static void line_end(line *l)
{
    if (l->len > sizeof l->buf - 3)
        l->len = sizeof l->buf - 3;
    l->len += (size_t)snprintf(l->buf + l->len, 3, "%s",
                               log_format == SRV_LOG_JSON ? "}\n" : "\n");
    flockfile(stdout);
    fwrite(l->buf, 1, l->len, stdout);
    fflush(stdout);
    funlockfile(stdout);
}

void srv_log_request_write(const srv_log_request *r)
{
    line l;

    line_begin(&l, "info");
    if (log_format == SRV_LOG_TEXT) {
        line_printf(&l, "%s %.512s %d %zu>%zu bytes %lld us%s%s",
                    r->method ? r->method : "-", r->path ? r->path : "-",
                    r->status, r->bytes_in, r->bytes_out, r->micros,
                    r->loss ? " loss=" : "", r->loss ? r->loss : "");
    } else {
        line_printf(&l, "\"event\":\"request\",\"method\":");
        line_json_string(&l, r->method);
        line_printf(&l, ",\"path\":");
        line_json_string(&l, r->path);
        line_printf(&l, ",\"loss\":");
        line_json_string(&l, r->loss);
        line_printf(&l,
                    ",\"status\":%d,\"bytes_in\":%zu,\"bytes_out\":%zu,"
                    "\"us\":%lld",
                    r->status, r->bytes_in, r->bytes_out, r->micros);
    }
    line_end(&l);
}

void srv_log_start_write(const srv_config *cfg, unsigned port)
{
    line l;

    line_begin(&l, "info");
    if (log_format == SRV_LOG_TEXT) {
        line_printf(&l,
                    "lossd %s listening on %s port %u (threads %u, "
                    "max-body %zu, max-queue %u, timeout %us)",
                    LOSSD_VERSION, cfg->host, port, cfg->threads, cfg->max_body,
                    cfg->max_queue, cfg->timeout);
    } else {
        line_printf(&l, "\"event\":\"listening\",\"version\":\"%s\",\"host\":",
                    LOSSD_VERSION);
        line_json_string(&l, cfg->host);
        line_printf(&l,
                    ",\"port\":%u,\"threads\":%u,\"max_body\":%zu,"
                    "\"max_queue\":%u,\"timeout\":%u",
                    port, cfg->threads, cfg->max_body, cfg->max_queue,
                    cfg->timeout);
    }
    line_end(&l);
}

void srv_log_event_write(const char *event, const char *key, long long value)
{
    line l;

    line_begin(&l, "info");
    if (log_format == SRV_LOG_TEXT)
        line_printf(&l, "%s (%s %lld)", event, key, value);
    else
        line_printf(&l, "\"event\":\"%s\",\"%s\":%lld", event, key, value);
    line_end(&l);
}

void srv_log_warn(const char *fmt, ...)
{
    char msg[1024];
    size_t n;
    va_list ap;
    line l;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    line_begin(&l, "warn");
    if (log_format == SRV_LOG_TEXT) {
        line_printf(&l, "%s", msg);
    } else {
        line_printf(&l, "\"event\":\"warning\",\"message\":");
        line_json_string(&l, msg);
    }
    line_end(&l);
}
