/* check.c -- `lossd --check URL`: one HTTP/1.0 GET over a plain socket,
 * success only on a 200.  It probes a daemon in the same container or pod,
 * so there is no TLS, no proxy and no redirect; every step shares one
 * deadline, so a hung peer cannot hang the probe. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

typedef struct check_url {
    char host[256];      /* without IPv6 brackets */
    char port[6];        /* decimal, "80" by default */
    char authority[300]; /* host[:port] as written, for the Host header */
    const char *path;    /* "/" when the URL has none */
} check_url;

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Stores "port" (1..65535, digits only) in u->port. */
static int port_parse(const char *s, size_t len, check_url *u)
{
    unsigned long v = 0;
    size_t i;

    if (len == 0 || len > 5)
        return -1;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    snprintf(u->port, sizeof u->port, "%lu", v);
    return 0;
}

/* Splits "http://host[:port][/path]"; an IPv6 host is in brackets. */
static int url_parse(const char *url, check_url *u)
{
    const char *auth = url + 7, *end, *host = auth, *host_end, *port;
    size_t i;

    if (strncmp(url, "http://", 7) != 0)
        return -1;
    for (i = 0; url[i] != '\0'; i++)
        if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
            return -1;
    u->path = strchr(auth, '/');
    end = u->path ? u->path : auth + strlen(auth);
    if (u->path == NULL)
        u->path = "/";
    if (*auth == '[') {
        host = auth + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL)
            return -1;
        port = host_end + 1 < end && host_end[1] == ':' ? host_end + 2 : NULL;
        if (port == NULL && host_end + 1 != end)
            return -1;
    } else {
        host_end = memchr(host, ':', (size_t)(end - host));
        port = host_end ? host_end + 1 : NULL;
        host_end = host_end ? host_end : end;
    }
    if (host_end == host || (size_t)(host_end - host) >= sizeof u->host ||
        (size_t)(end - auth) >= sizeof u->authority)
        return -1;
    memcpy(u->host, host, (size_t)(host_end - host));
    u->host[host_end - host] = '\0';
    memcpy(u->authority, auth, (size_t)(end - auth));
    u->authority[end - auth] = '\0';
    if (port == NULL) {
        strcpy(u->port, "80");
        return 0;
    }
    return port_parse(port, (size_t)(end - port), u);
}

/* Waits for events on fd until the deadline; 1 when ready, 0 on time-out. */
static int wait_fd(int fd, short events, long long deadline)
{
    struct pollfd p;
    long long left;
    int n;

    p.fd = fd;
    p.events = events;
    do {
        left = deadline - now_ms();
        if (left <= 0)
            return 0;
        n = poll(&p, 1, (int)left);
    } while (n < 0 && errno == EINTR);
    return n > 0;
}

/* A non-blocking socket connected to one of the host's addresses, or -1
 * with *why set. */
static int connect_any(const check_url *u, long long deadline, const char **why)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, err;
    socklen_t len = sizeof err;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(u->host, u->port, &hints, &res) != 0) {
        *why = "the host name does not resolve";
        return -1;
    }
    *why = "connection refused";
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        err = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
        if (err == EINPROGRESS) {
            err = wait_fd(fd, POLLOUT, deadline) ? 0 : ETIMEDOUT;
            if (err == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
                err = errno;
        }
        if (err != 0) {
            *why = err == ETIMEDOUT ? "timed out connecting" : strerror(err);
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static int send_all(int fd, const char *buf, size_t len, long long deadline)
{
    ssize_t n;

    while (len > 0) {
        if (!wait_fd(fd, POLLOUT, deadline))
            return -1;
        n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return -1;
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

/* Reads until the status line is complete; returns its status code, or -1
 * when the peer closed, timed out or did not speak HTTP. */
static int read_status(int fd, long long deadline)
{
    char buf[256] = {0};
    size_t have = 0;
    ssize_t n;
    int code;

    while (memchr(buf, '\n', have) == NULL && have < sizeof buf - 1) {
        if (!wait_fd(fd, POLLIN, deadline))
            return -1;
        n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            break;
        if (n > 0)
            have += (size_t)n;
    }
    buf[have] = '\0';
    if (sscanf(buf, "HTTP/1.%*1[01] %3d", &code) != 1)
        return -1;
    return code;
}

int srv_check_url(const char *url)
{
    long long deadline = now_ms() + SRV_CHECK_TIMEOUT * 1000LL;
    const char *why = NULL;
    char req[1024];
    check_url u;
    int fd, n, code = -1;

    if (url_parse(url, &u) != 0) {
        fprintf(stderr,
                "lossd: --check: '%s' is not an http://host[:port]"
                "[/path] URL\n",
                url);
        return 1;
    }
    n = snprintf(req, sizeof req,
                 "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: lossd-check\r\n"
                 "Connection: close\r\n\r\n",
                 u.path, u.authority);
    if (n < 0 || (size_t)n >= sizeof req) {
        fprintf(stderr, "lossd: --check: the URL is too long\n");
        return 1;
    }
    fd = connect_any(&u, deadline, &why);
    if (fd >= 0) {
        why = "no HTTP answer in time";
        if (send_all(fd, req, (size_t)n, deadline) == 0)
            code = read_status(fd, deadline);
        close(fd);
    }
    if (code == 200)
        return 0;
    if (code > 0)
        fprintf(stderr, "lossd: --check %s: status %d\n", url, code);
    else
        fprintf(stderr, "lossd: --check %s: %s\n", url, why);
    return 1;
}
