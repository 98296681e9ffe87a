/* docs.h -- the documents the daemon serves as they are: the OpenAPI 3
 * description (GET /openapi.json) and the human-readable reference page
 * (GET /docs).  Both are static strings; thread-safe. */
#ifndef SRV_DOCS_H
#define SRV_DOCS_H

#include <stddef.h>

const char *srv_docs_openapi(size_t *len);
const char *srv_docs_html(size_t *len);

#endif
