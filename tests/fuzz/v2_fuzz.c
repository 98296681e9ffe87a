/* v2_fuzz.c -- libFuzzer target on the Open Inference Protocol's request
 * parser (srv_v2_infer), binary tensors included.  An input is
 * "<model>\n<Inference-Header-Content-Length or nothing>\n<body bytes>".
 * Every answer must carry a status of the contract; a 200 is a JSON header
 * with "outputs" whose binary_data_size values add up to the bytes after
 * it, an error is {"error": "<message>"}.  Reads past the body are caught
 * by the sanitizers: the body is passed in place. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "v2.h"

#define LINE_MAX_LEN 40

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *why, const srv_reply *r)
{
    fprintf(stderr, "v2_fuzz: %s (status %d): %.*s\n", why, r->status,
            (int)(r->len < 2000 ? r->len : 2000), r->body ? r->body : "");
    abort();
}

static int status_known(int s)
{
    return s == 200 || s == 400 || s == 404 || s == 413 || s == 422 || s == 503;
}

/* The binary_data_size values of the outputs, summed. */
static double binary_total(const cJSON *doc)
{
    const cJSON *o;
    double total = 0;

    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(doc, "outputs")) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(o, "parameters"),
            "binary_data_size");
        if (cJSON_IsNumber(n))
            total += n->valuedouble;
    }
    return total;
}

static void reply_check(const srv_reply *r)
{
    size_t json_len = r->header_len ? r->header_len : r->len;
    cJSON *doc;

    if (!status_known(r->status))
        fail("status outside the contract", r);
    if (r->body == NULL || r->len == 0 || json_len > r->len)
        fail("empty body or header length past it", r);
    doc = cJSON_ParseWithLength(r->body, json_len);
    if (!cJSON_IsObject(doc))
        fail("header is not a JSON object", r);
    if (r->status == 200) {
        if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "outputs")))
            fail("200 without outputs", r);
        if (binary_total(doc) != (double)(r->len - json_len))
            fail("binary sizes disagree with the body", r);
    } else if (r->status != 503 &&
               !cJSON_IsString(
                   cJSON_GetObjectItemCaseSensitive(doc, "error"))) {
        fail("error without a message", r);
    }
    cJSON_Delete(doc);
}

/* The next line of data[*at..size) into out (NUL-terminated); -1 when there
 * is no newline within LINE_MAX_LEN bytes. */
static int line(const uint8_t *data, size_t size, size_t *at, char *out)
{
    size_t rest = size - *at;
    const uint8_t *nl =
        memchr(data + *at, '\n', rest < LINE_MAX_LEN ? rest : LINE_MAX_LEN);
    size_t n;

    if (nl == NULL)
        return -1;
    n = (size_t)(nl - (data + *at));
    memcpy(out, data + *at, n);
    out[n] = '\0';
    *at += n + 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[LINE_MAX_LEN], header[LINE_MAX_LEN];
    size_t at = 0;
    srv_reply r;

    if (line(data, size, &at, name) != 0 || line(data, size, &at, header) != 0)
        return -1; /* not in the input format: keep it out of the corpus */
    memset(&r, 0, sizeof r);
    srv_v2_infer(name, header[0] ? header : NULL, (const char *)data + at,
                 size - at, &r);
    reply_check(&r);
    srv_reply_cleanup(&r);
    return 0;
}
