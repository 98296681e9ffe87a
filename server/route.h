/* route.h -- what a request is, decided from its request line and headers
 * alone: a loss request whose body must be received and computed, or an
 * answer that is complete at once (the service endpoints and every error
 * that does not need the body: 400, 401, 404, 405, 413, 415, 503).
 *
 * Knows nothing of libmicrohttpd: http.c gathers the facts into a
 * srv_head and sends the srv_answer.
 *
 * Thread-safety: srv_route_head runs on any HTTP thread at once; it reads
 * only its arguments and the thread-safe modules (metrics, pool, catalog). */
#ifndef SRV_ROUTE_H
#define SRV_ROUTE_H

#include <stddef.h>

#include "handler.h"

/* The facts about a request that routing needs. */
typedef struct srv_head {
    const char *method;
    const char *path;              /* without the query string */
    const char *content_type;      /* NULL when absent */
    unsigned content_length_count; /* Content-Length headers seen */
    int content_length_bad;        /* a Content-Length that is not a number */
    unsigned long long content_length; /* valid when count == 1 */
    int chunked;                       /* Transfer-Encoding present */
    int transfer_bad; /* more than one Transfer-Encoding, or one other than
                         chunked: the body cannot be framed */
    size_t max_body;
    int draining;                 /* SIGTERM received */
    int auth_on;                  /* API keys are configured */
    int authorized;               /* the request carries one of them */
    int metrics_auth;             /* GET /metrics needs a key too */
    const char *inference_header; /* Inference-Header-Content-Length, or
                                     NULL (v2 binary tensors) */
} srv_head;

typedef enum srv_body_kind {
    SRV_BODY_STATIC, /* body is a static string */
    SRV_BODY_FREE,   /* body is malloc'd: free() */
    SRV_BODY_REPLY   /* body belongs to reply: srv_reply_cleanup() */
} srv_body_kind;

/* A complete answer. */
typedef struct srv_answer {
    int status;
    const char *content_type;
    srv_body_kind kind;
    const char *body;
    size_t len;
    srv_reply reply;              /* when kind == SRV_BODY_REPLY */
    const char *allow;            /* Allow header (405), or NULL */
    const char *www_authenticate; /* WWW-Authenticate header (401), or NULL */
    int retry_after;              /* seconds for Retry-After, 0 for none */
} srv_answer;

typedef enum srv_route_result {
    SRV_ROUTE_ANSWER, /* *a holds the whole answer */
    SRV_ROUTE_LOSS,   /* receive the body and run the loss *loss */
    SRV_ROUTE_V2      /* receive the body and run srv_v2_infer on *loss */
} srv_route_result;

/* Decides on the headers.  For SRV_ROUTE_LOSS, *loss points into
 * head->path; for SRV_ROUTE_V2 it is the loss's name in the table. */
srv_route_result srv_route_head(const srv_head *head, srv_answer *a,
                                const char **loss);

/* Whether the head frames its body in no way lossd takes: duplicate or
 * invalid Content-Length, Content-Length with Transfer-Encoding, or a
 * Transfer-Encoding other than chunked. */
int srv_head_framing_bad(const srv_head *h);

/* The message of the 400 for such a head. */
#define SRV_FRAMING_MESSAGE                                                    \
    "The request has duplicate, invalid or conflicting Content-Length and "    \
    "Transfer-Encoding headers, or a Transfer-Encoding other than chunked."

/* Fills *a with a JSON error (srv_reply_error) and its headers. */
void srv_answer_error(srv_answer *a, int status, const char *code,
                      const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Wraps a reply from srv_loss_run (taking ownership of its body). */
void srv_answer_from_reply(srv_answer *a, srv_reply *r);

/* Releases the body according to its kind. */
void srv_answer_cleanup(srv_answer *a);

#endif
