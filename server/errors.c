/* errors.c -- error replies: {"error": {"code", "message", "field"}} with a
 * JSON-escaped message, and a static fallback body for when even that
 * cannot be allocated. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "handler.h"
#include "json_out.h"

static const char oom_body[] =
    "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"" SRV_OOM_MESSAGE
    "\",\"field\":null}}";

static void reply_oom(srv_reply *out)
{
    out->status = 503;
    out->code = "out_of_memory";
    out->body = (char *)oom_body;
    out->len = sizeof oom_body - 1;
}

void srv_reply_error(srv_reply *out, int status, const char *code,
                     const char *field, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    srv_buf b;

    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    srv_buf_init(&b, 128);
    srv_buf_puts(&b, "{\"error\":{\"code\":");
    srv_buf_string(&b, code);
    srv_buf_puts(&b, ",\"message\":");
    srv_buf_string(&b, message);
    srv_buf_puts(&b, ",\"field\":");
    if (field && *field)
        srv_buf_string(&b, field);
    else
        srv_buf_puts(&b, "null");
    srv_buf_puts(&b, "}}");
    if (b.oom) {
        srv_buf_free(&b);
        reply_oom(out);
        return;
    }
    out->status = status;
    out->code = code;
    out->body = b.p;
    out->len = b.len;
}

void srv_reply_cleanup(srv_reply *r)
{
    if (r == NULL)
        return;
    if (r->body != oom_body)
        free(r->body);
    r->body = NULL;
    r->len = 0;
}
