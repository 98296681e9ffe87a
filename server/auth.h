/* auth.h -- optional API keys: loaded once at start-up from a file (one
 * key per line) and from LOSSD_API_KEYS (comma-separated); when any key is
 * set, requests to protected paths must carry "Authorization: Bearer
 * <key>".
 *
 * Thread-safety: srv_auth_load runs in main() before any thread starts;
 * afterwards the keys are only read, so srv_auth_enabled and
 * srv_auth_check may run on any thread at once. */
#ifndef SRV_AUTH_H
#define SRV_AUTH_H

/* Loads the keys of file (may be NULL or "") and of list (a comma-separated
 * string, may be NULL).  Blank lines, lines starting with '#' and
 * surrounding spaces are ignored.  0, or -1 after one line on stderr (file
 * unreadable, a named file without keys, a key with spaces or control
 * characters, out of memory). */
int srv_auth_load(const char *file, const char *list);

/* Frees the keys; afterwards no key is required. */
void srv_auth_free(void);

/* 1 when at least one key is configured. */
int srv_auth_enabled(void);

/* 1 when the Authorization header value (may be NULL) is "Bearer <key>"
 * for a configured key.  The key comparison takes the same time whatever
 * the bytes presented, and every key is compared. */
int srv_auth_check(const char *authorization);

#endif
