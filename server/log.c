/* log.c -- writes log lines to stdout.  Each line is built in a local
 * buffer and leaves whole: a line is at most 2048 bytes.
 *
 * Request lines are gathered into a batch that a writer thread writes
 * with one write(2) at most BATCH_DELAY_MS after its first line (or at
 * once when it fills): one system call per line cost a small request
 * about a sixth of its time when stdout is a file.  Lifecycle lines and
 * warnings are written at once, after whatever the batch holds, so the
 * log stays in order; srv_log_stop writes what is left. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json_out.h"
#include "log.h"
#include "waiter.h"

/* Written once by srv_log_init before any thread starts; read-only after. */
static srv_log_format log_format = SRV_LOG_JSON;

typedef struct line {
    char buf[2048];
    size_t len;
} line;

#define BATCH_CAP ((size_t)64 << 10)
#define BATCH_DELAY_MS 10

/* Request lines waiting for the writer thread; all under lock.  Without
 * the thread (it could not start, or srv_log_init was not called) every
 * line is written at once. */
static struct {
    pthread_mutex_t lock;
    srv_waiter writer; /* woken by a first line, or to stop */
    char buf[BATCH_CAP];
    size_t len;
} batch = {.lock = PTHREAD_MUTEX_INITIALIZER, .writer = {.lock = &batch.lock}};

static void write_all(const char *p, size_t n)
{
    ssize_t w;

    while (n > 0) {
        w = write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to log to: the daemon goes on */
        p += w;
        n -= (size_t)w;
    }
}

/* Caller holds batch.lock. */
static void batch_flush(void)
{
    write_all(batch.buf, batch.len);
    batch.len = 0;
}

/* The writer thread: waits for a first line, lets more gather for
 * BATCH_DELAY_MS, writes them all. */
static void *batch_main(void *arg)
{
    struct timespec until;

    (void)arg;
    pthread_mutex_lock(&batch.lock);
    while (!batch.writer.stopping) {
        if (batch.len == 0) {
            pthread_cond_wait(&batch.writer.wake, &batch.lock);
            continue;
        }
        until = srv_waiter_deadline((uint64_t)BATCH_DELAY_MS * 1000000u);
        while (!batch.writer.stopping && batch.len > 0 &&
               pthread_cond_timedwait(&batch.writer.wake, &batch.lock,
                                      &until) == 0)
            ;
        batch_flush();
    }
    batch_flush();
    pthread_mutex_unlock(&batch.lock);
    return NULL;
}

void srv_log_init(srv_log_format format)
{
    log_format = format;
    if (!batch.writer.running) /* else lines are written one by one */
        (void)srv_waiter_start(&batch.writer, batch_main, NULL);
}

void srv_log_stop(void)
{
    srv_waiter_stop(&batch.writer);
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
    char d[SRV_UINT_ROOM];

    line_put(l, d, srv_put_uint(d, v));
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

/* Ends the line; it goes out after every line before it, at once or,
 * when batched, with the batch. */
static void line_end(line *l, int batched)
{
    /* line_put keeps these three bytes free. */
    if (log_format == SRV_LOG_JSON)
        l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    pthread_mutex_lock(&batch.lock);
    if (batched && batch.writer.running && !batch.writer.stopping) {
        if (batch.len + l->len > sizeof batch.buf)
            batch_flush();
        if (batch.len == 0)
            pthread_cond_signal(&batch.writer.wake);
        memcpy(batch.buf + batch.len, l->buf, l->len);
        batch.len += l->len;
    } else {
        batch_flush();
        write_all(l->buf, l->len);
    }
    pthread_mutex_unlock(&batch.lock);
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
    line_end(&l, 1);
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
    line_end(&l, 0);
}

void srv_log_event_write(const char *event, const char *key, long long value)
{
    line l;

    line_begin(&l, "info");
    if (log_format == SRV_LOG_TEXT)
        line_printf(&l, "%s (%s %lld)", event, key, value);
    else
        line_printf(&l, "\"event\":\"%s\",\"%s\":%lld", event, key, value);
    line_end(&l, 0);
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
    line_end(&l, 0);
}
