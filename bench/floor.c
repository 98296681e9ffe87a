/* floor.c -- the HTTP floor of the benchmark: a libmicrohttpd server with
 * lossd's threading (an internal polling thread per core, up to four, on
 * epoll, with suspend/resume enabled) that reads every request body and
 * answers each POST with the same small JSON object.  No request can be
 * served faster through libmicrohttpd on this machine, so lossd's
 * throughput is reported as a fraction of this one's.
 *
 * Usage: floor --port N [--threads T]   (runs until SIGTERM or SIGINT) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

static const char reply_body[] =
    "{\"loss\": 0.5, \"per_sample\": [0.5], \"metrics\": {\"accuracy\": 1}}";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* The body is consumed in place and never copied; the answer is sent once
 * libmicrohttpd has delivered all of it (the call with no data). */
static enum MHD_Result floor_access(void *cls, struct MHD_Connection *conn,
                                    const char *url, const char *method,
                                    const char *version,
                                    const char *upload_data,
                                    size_t *upload_data_size, void **con_cls)
{
    static int first_call;
    struct MHD_Response *r;
    enum MHD_Result ret;

    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = &first_call;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    r = MHD_create_response_from_buffer(
        sizeof reply_body - 1, (void *)reply_body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* lossd's choice: one polling thread per available core, 1 to 4. */
static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1u : n > 4 ? 4u : (unsigned)n;
}

static int parse_args(int argc, char **argv, unsigned *port, unsigned *threads)
{
    int i;

    for (i = 1; i + 1 < argc; i += 2) {
        unsigned long v = strtoul(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--port") == 0 && v > 0 && v < 65536)
            *port = (unsigned)v;
        else if (strcmp(argv[i], "--threads") == 0 && v > 0 && v <= 64)
            *threads = (unsigned)v;
        else
            return -1;
    }
    return i == argc && *port != 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    unsigned port = 0, threads = default_threads();
    struct MHD_Daemon *d;
    struct sigaction sa;

    if (parse_args(argc, argv, &port, &threads) != 0) {
        fprintf(stderr, "usage: floor --port N [--threads T]\n");
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, floor_access, NULL,
                         MHD_OPTION_THREAD_POOL_SIZE, threads,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "floor: cannot listen on port %u\n", port);
        return 1;
    }
    while (!stop_flag)
        pause();
    MHD_stop_daemon(d);
    return 0;
}
