/* docs.c -- the OpenAPI document and the reference page served as they are.
 * This is a minimal OpenAPI 3 description listing every path; the complete
 * document replaces it. */
#include "docs.h"

static const char openapi[] =
    "{\"openapi\":\"3.0.3\","
    "\"info\":{\"title\":\"lossd\",\"version\":\"0.1.0\","
    "\"description\":\"Loss functions, their gradients and metrics over "
    "HTTP.\"},"
    "\"paths\":{"
    "\"/loss/{name}\":{\"post\":{\"summary\":\"Compute a loss\","
    "\"parameters\":[{\"name\":\"name\",\"in\":\"path\",\"required\":true,"
    "\"schema\":{\"type\":\"string\"}}],"
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":"
    "{\"schema\":{\"type\":\"object\"}}}},"
    "\"responses\":{\"200\":{\"description\":\"The loss, per-sample values, "
    "gradients and metrics\"},"
    "\"400\":{\"description\":\"Invalid JSON or wrong JSON type\"},"
    "\"404\":{\"description\":\"Unknown loss\"},"
    "\"413\":{\"description\":\"Body too large\"},"
    "\"415\":{\"description\":\"Content-Type is not application/json\"},"
    "\"422\":{\"description\":\"Valid JSON that breaks the rules\"},"
    "\"503\":{\"description\":\"Overloaded or shutting down\"}}}},"
    "\"/\":{\"get\":{\"summary\":\"Service name, version and losses\","
    "\"responses\":{\"200\":{\"description\":\"OK\"}}}},"
    "\"/losses\":{\"get\":{\"summary\":\"The loss catalog\","
    "\"responses\":{\"200\":{\"description\":\"OK\"}}}},"
    "\"/losses/{name}\":{\"get\":{\"summary\":\"One catalog entry\","
    "\"parameters\":[{\"name\":\"name\",\"in\":\"path\",\"required\":true,"
    "\"schema\":{\"type\":\"string\"}}],"
    "\"responses\":{\"200\":{\"description\":\"OK\"},"
    "\"404\":{\"description\":\"Unknown loss\"}}}},"
    "\"/healthz\":{\"get\":{\"summary\":\"Liveness\","
    "\"responses\":{\"200\":{\"description\":\"OK\"}}}},"
    "\"/readyz\":{\"get\":{\"summary\":\"Readiness\","
    "\"responses\":{\"200\":{\"description\":\"Accepting work\"},"
    "\"503\":{\"description\":\"Draining\"}}}},"
    "\"/metrics\":{\"get\":{\"summary\":\"Prometheus metrics\","
    "\"responses\":{\"200\":{\"description\":\"OK\"}}}},"
    "\"/openapi.json\":{\"get\":{\"summary\":\"This document\","
    "\"responses\":{\"200\":{\"description\":\"OK\"}}}},"
    "\"/docs\":{\"get\":{\"summary\":\"API reference page\","
    "\"responses\":{\"200\":{\"description\":\"OK\"}}}}}}";

static const char html[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>lossd API</title></head><body>\n"
    "<h1>lossd</h1>\n<p>Loss functions, their gradients and metrics over "
    "HTTP.</p>\n<ul>\n"
    "<li><code>POST /loss/{name}</code> &mdash; compute a loss (body: JSON, "
    "<code>Content-Type: application/json</code>)</li>\n"
    "<li><code>GET /</code> &mdash; name, version and loss names</li>\n"
    "<li><code>GET /losses</code>, <code>GET /losses/{name}</code> &mdash; "
    "the catalog: inputs, parameters, outputs</li>\n"
    "<li><code>GET /healthz</code>, <code>GET /readyz</code> &mdash; "
    "liveness and readiness</li>\n"
    "<li><code>GET /metrics</code> &mdash; Prometheus metrics</li>\n"
    "<li><code>GET /openapi.json</code> &mdash; the OpenAPI 3 document</li>\n"
    "</ul>\n</body></html>\n";

const char *srv_docs_openapi(size_t *len)
{
    *len = sizeof openapi - 1;
    return openapi;
}

const char *srv_docs_html(size_t *len)
{
    *len = sizeof html - 1;
    return html;
}
