/* route.c -- maps a request line and its headers to an answer or to a loss
 * computation.  The service endpoints (GET /, /losses, /healthz, ...) are
 * answered here in full; a POST /loss/{name} or /divergence/{name} that
 * passes every header check is handed back to http.c to receive and
 * compute. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "docs.h"
#include "http.h"
#include "metrics.h"
#include "pool.h"
#include "route.h"
#include "v2.h"

#define JSON "application/json"
#define LOSS_PREFIX "/loss/"
#define LOSSES_PREFIX "/losses/"
#define DIVERGENCE_PREFIX "/divergence/"
#define DIVERGENCES_PREFIX "/divergences/"

void srv_answer_error(srv_answer *a, int status, const char *code,
                      const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memset(a, 0, sizeof *a);
    srv_reply_error(&a->reply, status, code, NULL, "%s", msg);
    srv_answer_from_reply(a, &a->reply);
}

void srv_answer_from_reply(srv_answer *a, srv_reply *r)
{
    if (r != &a->reply) {
        memset(a, 0, sizeof *a);
        a->reply = *r;
        r->body = NULL;
        r->len = 0;
    }
    a->status = a->reply.status;
    a->content_type = a->reply.header_len ? "application/octet-stream" : JSON;
    a->kind = SRV_BODY_REPLY;
    a->body = a->reply.body;
    a->len = a->reply.len;
    /* every 503 (overloaded, shutting down, out of memory) invites a
     * retry */
    a->retry_after = a->status == 503;
}

void srv_answer_cleanup(srv_answer *a)
{
    if (a->kind == SRV_BODY_REPLY)
        srv_reply_cleanup(&a->reply);
    else if (a->kind == SRV_BODY_FREE)
        free((void *)a->body);
    a->kind = SRV_BODY_STATIC;
    a->body = NULL;
    a->len = 0;
}

static void answer_static(srv_answer *a, int status, const char *type,
                          const char *body, size_t len)
{
    memset(a, 0, sizeof *a);
    a->status = status;
    a->content_type = type;
    a->kind = SRV_BODY_STATIC;
    a->body = body;
    a->len = len;
}

/* Takes a malloc'd body; NULL (out of memory) becomes a 503. */
static void answer_malloced(srv_answer *a, const char *type, char *body,
                            size_t len)
{
    if (body == NULL) {
        srv_answer_error(a, 503, "out_of_memory", SRV_OOM_MESSAGE);
        return;
    }
    answer_static(a, 200, type, body, len);
    a->kind = SRV_BODY_FREE;
}

static void route_not_found(srv_answer *a, const char *path)
{
    srv_answer_error(a, 404, "not_found",
                     "No endpoint at '%.200s'. Endpoints: GET /, /losses, "
                     "/losses/{name}, /divergences, /divergences/{name}, "
                     "/healthz, /readyz, /metrics, /openapi.json, /docs; "
                     "POST /divergence/samples; POST /loss/{name} with name "
                     "one of: %s.",
                     path, srv_loss_names());
}

static void route_unknown_divergence(srv_answer *a, const char *name)
{
    srv_answer_error(a, 404, "not_found",
                     "There is no divergence named '%.100s'. Valid names: "
                     "samples.",
                     name);
}

static void route_unknown_loss(srv_answer *a, const char *name)
{
    srv_answer_error(a, 404, "unknown_loss",
                     "There is no loss named '%.100s'. Valid names: %s.", name,
                     srv_loss_names());
}

static void route_bad_method(srv_answer *a, const char *method,
                             const char *allow)
{
    srv_answer_error(a, 405, "method_not_allowed",
                     "Method %.20s is not allowed here; use %s.", method,
                     allow);
    a->allow = allow;
}

/* GET / : the service's name, version and loss names. */
static void route_root(srv_answer *a)
{
    size_t nlen, len = 0;
    char *names = srv_catalog_names_json(&nlen), *body = NULL;
    static const char fmt[] = "{\"name\":\"lossd\",\"version\":\"%s\","
                              "\"losses\":%.*s}";

    if (names != NULL) {
        len = sizeof fmt + strlen(LOSSD_VERSION) + nlen;
        body = malloc(len);
        if (body != NULL)
            len = (size_t)snprintf(body, len, fmt, LOSSD_VERSION, (int)nlen,
                                   names);
        free(names);
    }
    answer_malloced(a, JSON, body, len);
}

static void route_losses(srv_answer *a, const char *name)
{
    size_t len = 0;
    char *body;

    if (name != NULL && !srv_loss_exists(name)) {
        route_unknown_loss(a, name);
        return;
    }
    body = srv_catalog_json(name, &len);
    answer_malloced(a, JSON, body, len);
}

static void route_divergences(srv_answer *a, const char *name)
{
    size_t len = 0;
    char *body;

    if (name != NULL && !srv_divergence_exists(name)) {
        route_unknown_divergence(a, name);
        return;
    }
    body = srv_divergences_json(name, &len);
    answer_malloced(a, JSON, body, len);
}

/* The name after prefix in path, or NULL when path does not start with it
 * or nothing follows. */
static const char *after(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);

    return strncmp(path, prefix, n) == 0 && path[n] != '\0' ? path + n : NULL;
}

static void route_readyz(srv_answer *a, int draining)
{
    static const char ready[] = "{\"status\":\"ready\"}";

    if (draining)
        srv_answer_error(a, 503, "shutting_down",
                         "The server is shutting down and takes no new work.");
    else
        answer_static(a, 200, JSON, ready, sizeof ready - 1);
}

static void route_metrics(srv_answer *a)
{
    size_t len = 0;
    char *body = srv_metrics_render(srv_pool_depth(), srv_pool_busy(),
                                    srv_http_body_bytes(), &len);

    answer_malloced(a, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

/* The GET endpoints; 0 when path is none of them. */
static int route_get(const srv_head *h, srv_answer *a)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    const char *p = h->path;
    const char *doc;
    size_t len;

    if (strcmp(p, "/") == 0)
        route_root(a);
    else if (strcmp(p, "/losses") == 0)
        route_losses(a, NULL);
    else if (strncmp(p, LOSSES_PREFIX, strlen(LOSSES_PREFIX)) == 0 &&
             p[strlen(LOSSES_PREFIX)] != '\0')
        route_losses(a, p + strlen(LOSSES_PREFIX));
    else if (strcmp(p, "/divergences") == 0)
        route_divergences(a, NULL);
    else if (after(p, DIVERGENCES_PREFIX))
        route_divergences(a, after(p, DIVERGENCES_PREFIX));
    else if (strcmp(p, "/healthz") == 0)
        answer_static(a, 200, JSON, ok, sizeof ok - 1);
    else if (strcmp(p, "/readyz") == 0)
        route_readyz(a, h->draining);
    else if (strcmp(p, "/metrics") == 0)
        route_metrics(a);
    else if (strcmp(p, "/openapi.json") == 0)
        doc = srv_docs_openapi(&len), answer_static(a, 200, JSON, doc, len);
    else if (strcmp(p, "/docs") == 0)
        doc = srv_docs_html(&len),
        answer_static(a, 200, "text/html; charset=utf-8", doc, len);
    else
        return 0;
    return 1;
}

/* 1 when path is one of the GET endpoints (for 405 versus 404). */
static int route_get_path(const char *p)
{
    static const char *const paths[] = {
        "/",        "/losses",       "/healthz", "/readyz",
        "/metrics", "/openapi.json", "/docs",    "/divergences"};
    size_t i;

    for (i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (strcmp(p, paths[i]) == 0)
            return 1;
    return after(p, LOSSES_PREFIX) != NULL ||
           after(p, DIVERGENCES_PREFIX) != NULL;
}

/* 1 when the media type is application/json, parameters allowed. */
static int content_type_json(const char *ct)
{
    size_t n = strlen(JSON);

    if (ct == NULL)
        return 0;
    ct += strspn(ct, " \t");
    if (strncasecmp(ct, JSON, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

int srv_head_framing_bad(const srv_head *h)
{
    return h->content_length_count > 1 || h->content_length_bad ||
           (h->content_length_count == 1 && h->chunked) || h->transfer_bad;
}

/* The header checks of a POST /loss/{name} (or /divergence/{name}, whose
 * name is known), in the order a client would want to hear about them. */
static srv_route_result route_loss(const srv_head *h, srv_answer *a,
                                   const char *name, int known)
{
    if (srv_head_framing_bad(h))
        srv_answer_error(a, 400, "bad_request", SRV_FRAMING_MESSAGE);
    else if (!known)
        route_unknown_loss(a, name);
    else if (!content_type_json(h->content_type))
        srv_answer_error(a, 415, "unsupported_media_type",
                         "Content-Type must be application/json, not "
                         "'%.100s'.",
                         h->content_type ? h->content_type : "(none)");
    else if (h->content_length_count == 1 && h->content_length > h->max_body)
        srv_answer_error(a, 413, "body_too_large",
                         "The body has %llu bytes; the limit is %zu.",
                         h->content_length, h->max_body);
    else if (h->draining)
        srv_answer_error(a, 503, "shutting_down",
                         "The server is shutting down and takes no new work.");
    else if (srv_pool_full())
        srv_answer_error(a, 503, "overloaded",
                         "Every worker is busy and the queue is full; retry "
                         "shortly.");
    else
        return SRV_ROUTE_LOSS;
    return SRV_ROUTE_ANSWER;
}

/* With API keys configured, every /loss/ path (whatever the method or
 * name, so that no answer hints at anything) and, with --metrics-auth,
 * /metrics need a key; the other service endpoints stay open for probes. */
static int route_needs_key(const srv_head *h)
{
    if (!h->auth_on || h->authorized)
        return 0;
    return strncmp(h->path, LOSS_PREFIX, strlen(LOSS_PREFIX)) == 0 ||
           strncmp(h->path, DIVERGENCE_PREFIX, strlen(DIVERGENCE_PREFIX)) ==
               0 ||
           (h->metrics_auth && strcmp(h->path, "/metrics") == 0);
}

/* POST /divergence/{name}: computed like a loss, under the name
 * "divergence/{name}" (the path without its '/'). */
static srv_route_result route_divergence(const srv_head *h, srv_answer *a,
                                         const char **loss)
{
    const char *name = h->path + strlen(DIVERGENCE_PREFIX);

    if (!srv_divergence_exists(name)) {
        route_unknown_divergence(a, name);
        return SRV_ROUTE_ANSWER;
    }
    *loss = h->path + 1;
    if (strcmp(h->method, "POST") != 0) {
        route_bad_method(a, h->method, "POST");
        return SRV_ROUTE_ANSWER;
    }
    return route_loss(h, a, *loss, 1);
}

srv_route_result srv_route_head(const srv_head *h, srv_answer *a,
                                const char **loss)
{
    const char *p = h->path;
    int get = strcmp(h->method, "GET") == 0 || strcmp(h->method, "HEAD") == 0;

    *loss = NULL;
    if (srv_v2_path(p))
        return srv_v2_route(h, a, loss);
    if (route_needs_key(h)) {
        srv_answer_error(a, 401, "unauthorized",
                         "This endpoint needs an API key: send "
                         "'Authorization: Bearer <key>'.");
        a->www_authenticate = "Bearer realm=\"lossd\"";
        return SRV_ROUTE_ANSWER;
    }
    if (strncmp(p, LOSS_PREFIX, strlen(LOSS_PREFIX)) == 0) {
        *loss = p + strlen(LOSS_PREFIX);
        if (strcmp(h->method, "POST") != 0) {
            if (srv_loss_exists(*loss))
                route_bad_method(a, h->method, "POST");
            else
                route_unknown_loss(a, *loss);
            return SRV_ROUTE_ANSWER;
        }
        return route_loss(h, a, *loss, srv_loss_exists(*loss));
    }
    if (strncmp(p, DIVERGENCE_PREFIX, strlen(DIVERGENCE_PREFIX)) == 0)
        return route_divergence(h, a, loss);
    if (get && route_get(h, a))
        return SRV_ROUTE_ANSWER;
    if (!get && route_get_path(p)) {
        route_bad_method(a, h->method, "GET, HEAD");
        return SRV_ROUTE_ANSWER;
    }
    route_not_found(a, p);
    return SRV_ROUTE_ANSWER;
}
