/* harness.c -- starts and stops the daemon for the integration tests and
 * gives them an HTTP client (libcurl) and a raw-socket client. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "vec.h"

static const char *lossd_bin(void)
{
    const char *bin = getenv("LOSSD_BIN");

    return bin != NULL && bin[0] != '\0' ? bin : "build/lossd";
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* In the child: the daemon dies with the test process, even when an
 * assertion ends the test early. */
static void child_exec(const char *const *argv, int out_fd, int err_fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

static pid_t spawn(const char *const *argv, int out_fd, int err_fd)
{
    pid_t pid = fork();

    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        child_exec(argv, out_fd, err_fd);
    return pid;
}

char *lossd_log(const lossd *d)
{
    FILE *f = fopen(d->log_path, "rb");
    char *buf;
    long n;

    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    n = (long)fread(buf, 1, (size_t)n, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

char *lossd_wait_log(const lossd *d, const char *what)
{
    const struct timespec tick = {0, 5 * 1000 * 1000};
    char *log = lossd_log(d);
    int i;

    for (i = 0; i < 400 && strstr(log, what) == NULL; i++) {
        free(log);
        nanosleep(&tick, NULL);
        log = lossd_log(d);
    }
    cr_assert_not_null(strstr(log, what), "no %s in the log: %s", what, log);
    return log;
}

/* The port of the start-up line, JSON ("port":N) or text ("port N"); 0
 * while there is none. */
static unsigned log_port(const lossd *d)
{
    char *log = lossd_log(d), *at;
    unsigned port = 0;

    if ((at = strstr(log, "\"event\":\"listening\"")) != NULL &&
        (at = strstr(at, "\"port\":")) != NULL)
        port = (unsigned)strtoul(at + 7, NULL, 10);
    else if ((at = strstr(log, " listening on ")) != NULL &&
             (at = strstr(at, " port ")) != NULL)
        port = (unsigned)strtoul(at + 6, NULL, 10);
    free(log);
    return port;
}

void lossd_start(lossd *d, const char *const *args)
{
    const char *argv[64] = {lossd_bin(), "--host", "127.0.0.1", "--port", "0"};
    size_t n = 5;
    int fd, i, status;

    while (args != NULL && *args != NULL && n < 63)
        argv[n++] = *args++;
    argv[n] = NULL;
    strcpy(d->log_path, "/tmp/lossd-test-XXXXXX");
    fd = mkstemp(d->log_path);
    cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
    d->pid = spawn(argv, fd, fd);
    close(fd);
    for (i = 0; i < 1000 && (d->port = log_port(d)) == 0; i++) {
        cr_assert_eq(waitpid(d->pid, &status, WNOHANG), 0,
                     "lossd exited at start-up");
        sleep_ms(10);
    }
    cr_assert_neq(d->port, 0, "no listening line from %s", argv[0]);
}

int lossd_stop(lossd *d)
{
    int status = 0, i;

    kill(d->pid, SIGTERM);
    for (i = 0; i < 2000; i++) {
        if (waitpid(d->pid, &status, WNOHANG) == d->pid)
            break;
        sleep_ms(10);
    }
    if (i == 2000) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, &status, 0);
        cr_assert_fail("lossd did not stop within 20 s of SIGTERM");
    }
    unlink(d->log_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int lossd_run_once(const char *const *args, char *err, size_t errlen)
{
    const char *argv[64] = {lossd_bin()};
    char path[] = "/tmp/lossd-err-XXXXXX";
    size_t n = 1;
    int fd = mkstemp(path), devnull = open("/dev/null", O_WRONLY), status;
    pid_t pid;
    FILE *f;

    while (args != NULL && *args != NULL && n < 63)
        argv[n++] = *args++;
    argv[n] = NULL;
    cr_assert(fd >= 0 && devnull >= 0);
    pid = spawn(argv, devnull, fd);
    close(fd);
    close(devnull);
    waitpid(pid, &status, 0);
    if (err != NULL && (f = fopen(path, "r")) != NULL) {
        if (fgets(err, (int)errlen, f) == NULL)
            err[0] = '\0';
        fclose(f);
    }
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- libcurl client ----------------------------------------------------- */

typedef struct buf {
    char *data;
    size_t len;
} buf;

static size_t buf_append(char *p, size_t size, size_t n, void *ud)
{
    buf *b = ud;
    char *grown = realloc(b->data, b->len + size * n + 1);

    cr_assert_not_null(grown);
    memcpy(grown + b->len, p, size * n);
    b->data = grown;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

static struct curl_slist *call_headers(const char *content_type,
                                       const char *const *headers)
{
    struct curl_slist *list = NULL;
    char line[256];

    snprintf(line, sizeof line, "Content-Type:%s%s", content_type ? " " : "",
             content_type ? content_type : "");
    list = curl_slist_append(list, line);
    while (headers != NULL && *headers != NULL)
        list = curl_slist_append(list, *headers++);
    return list;
}

void http_call(unsigned port, const char *method, const char *path,
               const char *content_type, const char *body, size_t len,
               const char *const *headers, hresp *r)
{
    CURL *c = curl_easy_init();
    struct curl_slist *list = call_headers(content_type, headers);
    buf b = {calloc(1, 1), 0}, h = {calloc(1, 1), 0};
    char url[512];
    CURLcode rc;

    cr_assert_not_null(c);
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_append);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, buf_append);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path,
                 curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    r->body = b.data;
    r->len = b.len;
    r->headers = h.data;
    r->json = cJSON_ParseWithLength(b.data, b.len);
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
}

void http_post_json(unsigned port, const char *loss, const char *body, hresp *r)
{
    char path[128];

    snprintf(path, sizeof path, "/loss/%s", loss);
    http_call(port, "POST", path, "application/json", body, strlen(body), NULL,
              r);
}

void http_get(unsigned port, const char *path, hresp *r)
{
    http_call(port, "GET", path, NULL, NULL, 0, NULL, r);
}

void hresp_free(hresp *r)
{
    free(r->body);
    free(r->headers);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

int hresp_header(const hresp *r, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    const char *line = r->headers;

    while (line != NULL && *line != '\0') {
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1, *end = strpbrk(v, "\r\n");
            size_t vlen;
            v += strspn(v, " \t");
            vlen = end ? (size_t)(end - v) : strlen(v);
            if (vlen >= outlen)
                vlen = outlen - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 0;
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return -1;
}

void expect_error(const hresp *r, long status, const char *code)
{
    const cJSON *err, *c, *m;

    cr_assert_eq(r->status, status, "status %ld, want %ld: %s", r->status,
                 status, r->body);
    cr_assert_not_null(r->json, "error body is not JSON: %s", r->body);
    err = cJSON_GetObjectItemCaseSensitive(r->json, "error");
    c = cJSON_GetObjectItemCaseSensitive(err, "code");
    m = cJSON_GetObjectItemCaseSensitive(err, "message");
    cr_assert(cJSON_IsString(c) && cJSON_IsString(m), "bad error body: %s",
              r->body);
    if (code != NULL)
        cr_assert_str_eq(c->valuestring, code, "body: %s", r->body);
}

/* ---- raw sockets -------------------------------------------------------- */

static int raw_connect(unsigned port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0,
                 "connect: %s", strerror(errno));
    return fd;
}

char *raw_exchange(unsigned port, const char *data, size_t len, int wait_ms)
{
    int fd = raw_connect(port);
    buf b = {calloc(1, 1), 0};
    char chunk[4096];
    struct pollfd p = {fd, POLLIN, 0};
    ssize_t n;

    while (len > 0 && (n = send(fd, data, len, MSG_NOSIGNAL)) > 0) {
        data += n;
        len -= (size_t)n;
    }
    while (poll(&p, 1, wait_ms) > 0 &&
           (n = recv(fd, chunk, sizeof chunk, 0)) > 0)
        buf_append(chunk, 1, (size_t)n, &b);
    close(fd);
    return b.data;
}

/* ---- request bodies and metrics ----------------------------------------- */

char *softmax_body(size_t n, size_t k, uint64_t seed, const char *extra)
{
    size_t cap = 64 + n * (k * 24 + 16) + (extra ? strlen(extra) : 0), at;
    char *b = malloc(cap);
    size_t i, j;

    cr_assert_not_null(b);
    at = (size_t)sprintf(b, "{\"logits\":[");
    for (i = 0; i < n; i++) {
        b[at++] = i ? ',' : '[';
        if (i)
            b[at++] = '[';
        for (j = 0; j < k; j++)
            at += (size_t)sprintf(b + at, "%s%.6f", j ? "," : "",
                                  test_rand(&seed, -3, 3));
        b[at++] = ']';
    }
    at += (size_t)sprintf(b + at, "],\"labels\":[");
    for (i = 0; i < n; i++)
        at += (size_t)sprintf(b + at, "%s%zu", i ? "," : "", (i * 7) % k);
    sprintf(b + at, "]%s%s}", extra ? "," : "", extra ? extra : "");
    return b;
}

double metric_scrape(unsigned port, const char *series)
{
    hresp r;
    double v;

    http_get(port, "/metrics", &r);
    cr_assert_eq(r.status, 200);
    v = metric_value(r.body, series);
    hresp_free(&r);
    return v;
}

double metric_until(unsigned port, const char *series, double want)
{
    const struct timespec tick = {0, 10 * 1000 * 1000};
    double v = metric_scrape(port, series);
    int i;

    for (i = 0; i < 200 && v < want; i++) {
        nanosleep(&tick, NULL);
        v = metric_scrape(port, series);
    }
    return v;
}

double metric_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *line = text;

    while (line != NULL && *line != '\0') {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return 0;
}
