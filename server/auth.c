/* auth.c -- the API keys and their constant-time check.  Keys live in one
 * malloc'd array filled at start-up and read-only afterwards. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"

#define KEY_MAX 512 /* bytes in one key */

static struct {
    char **keys;
    size_t n, cap;
} auth;

/* A key is printable ASCII without spaces, as an RFC 6750 token must be. */
static int key_valid(const char *k, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (!isgraph((unsigned char)k[i]))
            return 0;
    return len > 0 && len <= KEY_MAX;
}

/* Adds text[0..len) trimmed; empty and comment entries are skipped.
 * 0, or -1 after one line on stderr naming source. */
static int key_add(const char *text, size_t len, const char *source)
{
    char *k, **grown;

    while (len > 0 && isspace((unsigned char)*text))
        text++, len--;
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    if (len == 0 || text[0] == '#')
        return 0;
    if (!key_valid(text, len)) {
        fprintf(stderr,
                "lossd: %s: an API key must be 1 to %d printable "
                "characters without spaces\n",
                source, KEY_MAX);
        return -1;
    }
    if (auth.n == auth.cap) {
        size_t cap = auth.cap ? auth.cap * 2 : 8;
        grown = realloc(auth.keys, cap * sizeof *grown);
        if (grown == NULL)
            goto oom;
        auth.keys = grown;
        auth.cap = cap;
    }
    if ((k = malloc(len + 1)) == NULL)
        goto oom;
    memcpy(k, text, len);
    k[len] = '\0';
    auth.keys[auth.n++] = k;
    return 0;
oom:
    fprintf(stderr, "lossd: %s: out of memory\n", source);
    return -1;
}

/* Adds every entry of text separated by any of seps. */
static int keys_split(const char *text, const char *seps, const char *source)
{
    while (*text != '\0') {
        size_t n = strcspn(text, seps);
        if (key_add(text, n, source) != 0)
            return -1;
        text += n;
        if (*text != '\0')
            text++;
    }
    return 0;
}

static int keys_from_file(const char *path)
{
    char line[KEY_MAX + 64];
    size_t before = auth.n;
    FILE *f = fopen(path, "r");
    int rc = 0;

    if (f == NULL) {
        fprintf(stderr, "lossd: --api-keys-file: cannot read '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
        if (strchr(line, '\n') == NULL && !feof(f)) {
            fprintf(stderr,
                    "lossd: --api-keys-file: a line of '%s' is "
                    "longer than %d bytes\n",
                    path, KEY_MAX);
            rc = -1;
        } else {
            rc = key_add(line, strlen(line), "--api-keys-file");
        }
    }
    fclose(f);
    if (rc == 0 && auth.n == before) {
        fprintf(stderr, "lossd: --api-keys-file: '%s' holds no key\n", path);
        rc = -1;
    }
    return rc;
}

int srv_auth_load(const char *file, const char *list)
{
    if (file != NULL && file[0] != '\0' && keys_from_file(file) != 0)
        goto fail;
    if (list != NULL && keys_split(list, ",", "LOSSD_API_KEYS") != 0)
        goto fail;
    return 0;
fail:
    srv_auth_free();
    return -1;
}

void srv_auth_free(void)
{
    size_t i;

    for (i = 0; i < auth.n; i++)
        free(auth.keys[i]);
    free(auth.keys);
    memset(&auth, 0, sizeof auth);
}

int srv_auth_enabled(void)
{
    return auth.n > 0;
}

/* 0 when t (tlen bytes) equals key; the loop runs over the whole key
 * whatever t holds, and reads t only within tlen. */
static unsigned key_diff(const char *key, const char *t, size_t tlen)
{
    size_t klen = strlen(key), i;
    unsigned diff = klen != tlen;

    for (i = 0; i < klen; i++)
        diff |= (unsigned char)key[i] ^ (unsigned char)(i < tlen ? t[i] : 0);
    return diff;
}

int srv_auth_check(const char *authorization)
{
    const char *t;
    size_t i, tlen;
    unsigned match = 0;

    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return 0;
    t = authorization + 7;
    t += strspn(t, " ");
    tlen = strcspn(t, " \t");
    if (t[tlen + strspn(t + tlen, " \t")] != '\0')
        return 0; /* more than one token */
    for (i = 0; i < auth.n; i++)
        match |= key_diff(auth.keys[i], t, tlen) == 0;
    return (int)match;
}
