/* assets.h -- the documents the daemon serves as they are, embedded at build
 * time from api/openapi.yaml (the daemon reads no files at run time):
 *
 *   srv_asset_openapi_json  the OpenAPI 3.1 document as JSON, GET /openapi.json
 *   srv_asset_docs_html     the self-contained reference page, GET /docs
 *
 * Each array holds _len bytes followed by a NUL.  Read-only; thread-safe. */
#ifndef SRV_ASSETS_H
#define SRV_ASSETS_H

#include <stddef.h>

extern const char srv_asset_openapi_json[];
extern const size_t srv_asset_openapi_json_len;
extern const char srv_asset_docs_html[];
extern const size_t srv_asset_docs_html_len;

#endif
