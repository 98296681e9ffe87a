/* http_fuzz.c -- libFuzzer target on the whole daemon: it runs lossd's
 * HTTP front and compute pool in this process on a loopback port, and
 * each input is sent as raw bytes on a new connection, half-closed, and
 * read back until the daemon closes it.  Whatever the bytes, the daemon
 * must not crash or trip a sanitizer, and any answer must be HTTP. */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static srv_config cfg; /* read by the daemon while it runs */
static unsigned port;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *args[] = {"lossd", "--host",    "127.0.0.1", "--port",
                    "0",     "--threads", "2",         "--max-body",
                    "1M",    "--timeout", "1",         "--log-format",
                    "text",  NULL};

    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    /* One log line per request would drown libFuzzer's own output. */
    if (freopen("/dev/null", "w", stdout) == NULL)
        abort();
    if (srv_config_parse(&cfg, 13, args) != SRV_CONFIG_RUN)
        abort();
    srv_log_init(cfg.log_format);
    srv_metrics_init();
    if (srv_pool_start(cfg.threads, cfg.max_queue) != 0 ||
        srv_http_start(&cfg, &port) != 0)
        abort();
    return 0;
}

/* A new connection.  It closes with a reset (SO_LINGER 0), so that tens
 * of thousands of inputs do not leave as many ports in TIME_WAIT.  A
 * connect interrupted by libFuzzer's timer signal starts over. */
static int connect_daemon(void)
{
    const struct linger reset = {1, 0};
    struct sockaddr_in sa;
    int fd, tries;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (tries = 0; tries < 100; tries++) {
        if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
            abort();
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
        if (errno != EINTR)
            break;
        close(fd);
    }
    perror("http_fuzz: connect to the daemon");
    abort();
}

/* The length of the first final answer in buf when it is all there, else
 * 0.  Interim 100 answers are skipped; an answer to HEAD has no body; one
 * without Content-Length (none of lossd's) is never "all there". */
static size_t answer_complete(const char *buf, size_t len, int head)
{
    size_t at = 0;

    for (;;) {
        const char *end = memmem(buf + at, len - at, "\r\n\r\n", 4), *cl;
        size_t hlen;

        if (end == NULL)
            return 0;
        hlen = (size_t)(end - (buf + at)) + 4;
        if (len - at >= 12 && memcmp(buf + at + 9, "100", 3) == 0) {
            at += hlen;
            continue;
        }
        if (head)
            return at + hlen;
        cl = memmem(buf + at, hlen, "Content-Length: ", 16);
        if (cl == NULL)
            return 0;
        hlen += (size_t)strtoul(cl + 16, NULL, 10);
        return len - at >= hlen ? at + hlen : 0;
    }
}

/* Reads the answer until it is complete, until the daemon closes, or
 * until 50 ms pass without data: libmicrohttpd often keeps a half-closed
 * connection open until --timeout, and waiting for that would slow every
 * incomplete request down to the timeout (an answer cut short this way is
 * a client gone mid-request, also worth exercising).  Returns the bytes
 * read; the first go to head. */
static size_t read_answer(int fd, int is_head, char *head, size_t cap)
{
    static char buf[1 << 20];
    struct pollfd p = {fd, POLLIN, 0};
    size_t got = 0;
    ssize_t n;

    while (poll(&p, 1, 50) > 0 &&
           (n = recv(fd, buf + got, sizeof buf - 1 - got, 0)) > 0) {
        got += (size_t)n;
        if (got == sizeof buf - 1 || answer_complete(buf, got, is_head))
            break;
    }
    memcpy(head, buf, got < cap ? got : cap);
    return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = connect_daemon();
    char head[16];
    size_t sent = 0, got;
    ssize_t n;

    while (sent < size &&
           (n = send(fd, data + sent, size - sent, MSG_NOSIGNAL)) > 0)
        sent += (size_t)n;
    shutdown(fd, SHUT_WR);
    got = read_answer(fd, size >= 5 && memcmp(data, "HEAD ", 5) == 0, head,
                      sizeof head);
    close(fd);
    if (got > 0 && (got < 8 || memcmp(head, "HTTP/1.", 7) != 0)) {
        fprintf(stderr, "http_fuzz: an answer that is not HTTP: %.*s\n",
                (int)(got < sizeof head ? got : sizeof head), head);
        abort();
    }
    return 0;
}
