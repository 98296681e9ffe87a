/* log.c -- writes log lines to stdout.  Each line is built in a local
 * buffer and written with one write(2), so a reader (a test, a log
 * shipper) always sees whole lines as they happen: a line is at most 2048
 * bytes, which a pipe takes whole (PIPE_BUF) and a file appends in one
 * piece.  Nothing is buffered and no lock is taken: a request's line costs
 * one system call and no contention between threads. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static void line_put(line *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - 3 - l->len; /* "}\n" and a NUL stay free */

    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void line_puts(line *l, const char *s)
{
    line_put(l, s, strlen(s));
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
    size_t room = sizeof l->buf - 3 - l->len;

    va_start(ap, fmt);
    n = vsnprintf(l->buf + l->len, room + 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    l->len += (size_t)n < room ? (size_t)n : room;
}

/* Appends the decimal digits of v. */
static void line_uint(line *l, unsigned long long v)
{
    char rev[24];
    size_t k = 0;

    do
        rev[k++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (k > 0 && l->len < sizeof l->buf - 3)
        l->buf[l->len++] = rev[--k];
}

/* Appends s as a JSON string (quoted; control and non-ASCII bytes escaped
 * so the line stays valid JSON whatever a client put in a path), at most
 * 512 bytes of it. */
static void line_json_string(line *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;

    if (s == NULL) {
        line_put(l, "null", 4);
        return;
    }
    line_put(l, "\"", 1);
    for (i = 0; i < 512 && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            continue;
        line_put(l, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            line_put(l, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            line_put(l, esc, 6);
        }
    }
    line_put(l, s + run, i - run);
    line_put(l, "\"", 1);
}

/* "2026-11-28T20:32:45" for t, formatted once a second per thread. */
static const char *utc_seconds(time_t t)
{
    static _Thread_local time_t cached = (time_t)-1;
    static _Thread_local char text[32];
    struct tm tm;

    if (t != cached) {
        gmtime_r(&t, &tm);
        strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
        cached = t;
    }
    return text;
}

/* Starts a line with the UTC time and level. */
static void line_begin(line *l, const char *level)
{
    struct timespec ts;
    char ms[6] = ".000Z";
    int m;

    l->len = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    m = (int)(ts.tv_nsec / 1000000) % 1000;
    ms[1] = (char)('0' + m / 100);
    ms[2] = (char)('0' + m / 10 % 10);
    ms[3] = (char)('0' + m % 10);
    if (log_format == SRV_LOG_JSON)
        line_put(l, "{\"time\":\"", 9);
    line_puts(l, utc_seconds(ts.tv_sec));
    line_puts(l, ms);
    if (log_format == SRV_LOG_JSON) {
        line_put(l, "\",\"level\":\"", 11);
        line_puts(l, level);
        line_put(l, "\",", 2);
    } else {
        line_put(l, " ", 1);
        line_puts(l, level);
        line_put(l, "      ", strlen(level) < 5 ? 6 - strlen(level) : 1);
    }
}

static void line_end(line *l)
{
    const char *p = l->buf;
    ssize_t n;

    /* line_put keeps these three bytes free. */
    if (log_format == SRV_LOG_JSON)
        l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    while (p < l->buf + l->len) {
        n = write(STDOUT_FILENO, p, (size_t)(l->buf + l->len - p));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere to log to: the request goes on */
        p += n;
    }
}

/* "a b" in text lines, "a":b in JSON ones: one field of a request line. */
static void line_field(line *l, const char *key, unsigned long long v)
{
    if (log_format == SRV_LOG_JSON) {
        line_put(l, ",\"", 2);
        line_puts(l, key);
        line_put(l, "\":", 2);
    } else {
        line_put(l, " ", 1);
    }
    line_uint(l, v);
}

/* Written by hand rather than with printf: this runs once per request. */
void srv_log_request_write(const srv_log_request *r)
{
    line l;
    long long us = r->micros < 0 ? 0 : r->micros;

    line_begin(&l, "info");
    if (log_format == SRV_LOG_TEXT) {
        line_puts(&l, r->method ? r->method : "-");
        line_put(&l, " ", 1);
        line_put(&l, r->path ? r->path : "-",
                 r->path ? strnlen(r->path, 512) : 1);
        line_field(&l, "status", (unsigned)(r->status < 0 ? 0 : r->status));
        line_field(&l, "bytes_in", r->bytes_in);
        line_put(&l, ">", 1);
        line_uint(&l, r->bytes_out);
        line_puts(&l, " bytes");
        line_field(&l, "us", (unsigned long long)us);
        line_puts(&l, " us");
        if (r->loss) {
            line_puts(&l, " loss=");
            line_puts(&l, r->loss);
        }
    } else {
        line_puts(&l, "\"event\":\"request\",\"method\":");
        line_json_string(&l, r->method);
        line_puts(&l, ",\"path\":");
        line_json_string(&l, r->path);
        line_puts(&l, ",\"loss\":");
        line_json_string(&l, r->loss);
        line_field(&l, "status", (unsigned)(r->status < 0 ? 0 : r->status));
        line_field(&l, "bytes_in", r->bytes_in);
        line_field(&l, "bytes_out", r->bytes_out);
        line_field(&l, "us", (unsigned long long)us);
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
