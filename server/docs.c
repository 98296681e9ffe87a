/* docs.c -- the documents the daemon serves as they are: api/openapi.yaml as
 * JSON and the reference page built from it, both compiled into the binary
 * at build time (build/gen/assets.c, see assets.h), so the daemon reads no
 * file at run time. */
#include "docs.h"

#include "assets.h"

const char *srv_docs_openapi(size_t *len)
{
    *len = srv_asset_openapi_json_len;
    return srv_asset_openapi_json;
}

const char *srv_docs_html(size_t *len)
{
    *len = srv_asset_docs_html_len;
    return srv_asset_docs_html;
}
