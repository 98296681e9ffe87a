/* loss_fuzz.c -- libFuzzer target on the request path below the socket:
 * an input is "<loss name>\n<body bytes>", run through srv_loss_run, and
 * every answer must be one of the statuses of the contract with a JSON
 * body of the right shape (for 200 {"loss": ...}, or {"metrics": {...}}
 * from a "divergence/<name>"; {"error": {"code", "message"}} otherwise).
 * Memory errors and undefined behaviour are caught by the sanitizers the
 * target is built with. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"

#define NAME_MAX_LEN 40

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *why, const srv_reply *r)
{
    fprintf(stderr, "loss_fuzz: %s (status %d): %.*s\n", why, r->status,
            (int)(r->len < 2000 ? r->len : 2000), r->body ? r->body : "");
    abort();
}

static int status_known(int s)
{
    return s == 200 || s == 400 || s == 404 || s == 413 || s == 422 || s == 503;
}

/* The body is JSON of the shape its status promises. */
static void reply_check(const char *name, const srv_reply *r)
{
    const char *key =
        strncmp(name, "divergence/", 11) == 0 ? "metrics" : "loss";

    cJSON *doc, *err, *code;

    if (!status_known(r->status))
        fail("status outside the contract", r);
    if (r->body == NULL || r->len == 0)
        fail("empty body", r);
    doc = cJSON_ParseWithLength(r->body, r->len);
    if (!cJSON_IsObject(doc))
        fail("body is not a JSON object", r);
    if (r->status == 200) {
        if (cJSON_GetObjectItemCaseSensitive(doc, key) == NULL)
            fail("200 without its result member", r);
    } else {
        err = cJSON_GetObjectItemCaseSensitive(doc, "error");
        code = cJSON_GetObjectItemCaseSensitive(err, "code");
        if (!cJSON_IsString(code) ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(err, "message")))
            fail("error without code and message", r);
    }
    cJSON_Delete(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl =
        memchr(data, '\n', size < NAME_MAX_LEN ? size : NAME_MAX_LEN);
    char name[NAME_MAX_LEN];
    size_t n;
    srv_reply r;

    if (nl == NULL)
        return -1; /* not in the input format: keep it out of the corpus */
    n = (size_t)(nl - data);
    memcpy(name, data, n);
    name[n] = '\0';
    memset(&r, 0, sizeof r);
    /* The body is passed in place, so a read past its end is caught. */
    srv_loss_run(name, (const char *)nl + 1, size - n - 1, &r);
    reply_check(name, &r);
    srv_reply_cleanup(&r);
    return 0;
}
