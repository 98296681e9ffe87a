/* test_check.c -- `lossd --check URL`, the health probe that container
 * images without curl use: exit 0 on a 200, 1 on any other answer, on no
 * answer or on a URL it cannot use, 2 without a URL. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

TestSuite(check, .timeout = 60);

static int check(const char *url, char *err, size_t errlen)
{
    const char *const args[] = {"--check", url, NULL};

    return lossd_run_once(args, err, errlen);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A loopback listening socket that never accepts; its port in *port. */
static int silent_listener(unsigned *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 4), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

Test(check, exits_0_on_200_and_1_otherwise)
{
    char url[128], err[256] = "";
    unsigned closed;
    lossd d;
    int fd;

    lossd_start(&d, NULL);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", d.port);
    cr_assert_eq(check(url, err, sizeof err), 0, "%s", err);
    snprintf(url, sizeof url, "http://localhost:%u/readyz", d.port);
    cr_assert_eq(check(url, err, sizeof err), 0, "%s", err);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/nowhere", d.port);
    cr_assert_eq(check(url, err, sizeof err), 1);
    cr_assert_not_null(strstr(err, "status 404"), "stderr: %s", err);
    cr_assert_eq(lossd_stop(&d), 0);

    fd = silent_listener(&closed);
    close(fd);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", closed);
    cr_assert_eq(check(url, err, sizeof err), 1);
    cr_assert_not_null(strstr(err, "refused"), "stderr: %s", err);
}

Test(check, rejects_what_is_not_an_http_url)
{
    static const char *const bad[] = {"https://127.0.0.1/healthz",
                                      "127.0.0.1:8080/healthz",
                                      "http://:8080/",
                                      "http://127.0.0.1:0/",
                                      "http://127.0.0.1:99999/",
                                      "http://127.0.0.1:80a/",
                                      "http://127.0.0.1/a b",
                                      "http://[::1/healthz"};
    static const char *const none[] = {"--check", NULL};
    char err[256] = "";
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(check(bad[i], err, sizeof err), 1, "%s", bad[i]);
        cr_assert_not_null(strstr(err, "not an http://"), "%s: %s", bad[i],
                           err);
    }
    cr_assert_eq(lossd_run_once(none, err, sizeof err), 2);
    cr_assert_not_null(strstr(err, "needs a URL"), "stderr: %s", err);
}

/* A peer that takes the connection and never answers: the probe gives up
 * after its 5 s deadline instead of hanging the health check. */
Test(check, gives_up_on_a_silent_peer)
{
    char url[128], err[256] = "";
    unsigned port;
    double t0;
    int fd = silent_listener(&port);

    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", port);
    t0 = now_s();
    cr_assert_eq(check(url, err, sizeof err), 1);
    cr_assert_leq(now_s() - t0, 8.0);
    cr_assert_geq(now_s() - t0, 4.0);
    cr_assert_not_null(strstr(err, "no HTTP answer"), "stderr: %s", err);
    close(fd);
}
