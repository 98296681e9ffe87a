/* harness.h -- what the HTTP integration tests share: starting the real
 * daemon ($LOSSD_BIN) on an ephemeral loopback port, stopping it, and
 * talking to it with libcurl or a raw socket.
 *
 * The daemon's stdout (its log) goes to a temporary file, so it can never
 * block on a full pipe; lossd_start reads the bound port from the
 * "listening" line.  Every helper aborts the test on failure. */
#ifndef TEST_HARNESS_H
#define TEST_HARNESS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct lossd {
    pid_t pid;
    unsigned port;
    char log_path[64];
} lossd;

/* Starts the daemon with --host 127.0.0.1 --port 0 and the NULL-terminated
 * extra arguments (may be NULL). */
void lossd_start(lossd *d, const char *const *args);

/* Sends SIGTERM, waits up to 20 s and returns the exit status (-1 when it
 * died from a signal).  Removes the log file. */
int lossd_stop(lossd *d);

/* Runs $LOSSD_BIN with args (no defaults added), output discarded except
 * the first line of stderr, copied into err (may be NULL); returns the exit
 * status. */
int lossd_run_once(const char *const *args, char *err, size_t errlen);

/* The daemon's log so far, malloc'd and NUL-terminated. */
char *lossd_log(const lossd *d);
/* The log once it holds what, waiting up to 2 s (a request's line is
 * written when its response has been sent, so it can trail the client by a
 * moment); the test fails when it never does. */
char *lossd_wait_log(const lossd *d, const char *what);

typedef struct hresp {
    long status;
    char *body; /* NUL-terminated */
    size_t len;
    char *headers; /* raw response headers, NUL-terminated */
    cJSON *json;   /* body parsed, or NULL */
} hresp;

/* One request.  content_type NULL sends none; headers is a NULL-terminated
 * list of extra "Name: value" lines (may be NULL).  body NULL sends no
 * body. */
void http_call(unsigned port, const char *method, const char *path,
               const char *content_type, const char *body, size_t len,
               const char *const *headers, hresp *r);

/* POST /loss/<loss> with a JSON body. */
void http_post_json(unsigned port, const char *loss, const char *body,
                    hresp *r);
void http_get(unsigned port, const char *path, hresp *r);
void hresp_free(hresp *r);

/* The value of a response header (case-insensitive name), copied into out;
 * 0 when present, -1 when not. */
int hresp_header(const hresp *r, const char *name, char *out, size_t outlen);

/* Asserts the body is {"error": {"code": code, ...}} with the given status. */
void expect_error(const hresp *r, long status, const char *code);

/* Writes data to a new connection and reads until the server closes it or
 * wait_ms pass without data.  Returns malloc'd, NUL-terminated bytes. */
char *raw_exchange(unsigned port, const char *data, size_t len, int wait_ms);

/* A softmax request body with n rows of k logits drawn from seed, labels
 * and the extra JSON members extra (e.g. "\"precision\":\"float64\"",
 * may be NULL).  malloc'd. */
char *softmax_body(size_t n, size_t k, uint64_t seed, const char *extra);

/* The value of one Prometheus series line ("lossd_in_flight",
 * "lossd_requests_total{loss=\"softmax\",status=\"200\"}") in the text
 * from GET /metrics; 0 when absent. */
double metric_value(const char *text, const char *series);

/* That value, from a GET /metrics of the daemon on port. */
double metric_scrape(unsigned port, const char *series);

/* metric_scrape until the value reaches want, for up to 2 s; returns the
 * last value.  A request is counted when its connection completes, which
 * can trail its response by a moment (and the scrape may be served by the
 * other HTTP thread first). */
double metric_until(unsigned port, const char *series, double want);

#endif
