/* test_http_security.c -- API keys (file and environment, Bearer, 401 with
 * WWW-Authenticate, open probes, --metrics-auth), TLS with a self-signed
 * certificate made here with openssl (TLS 1.2+ only, bad certificates
 * refused at start-up) and the lossd_rejected_total counters. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

TestSuite(http_security, .timeout = 60);

static const char hinge[] = "{\"scores\":[0.5,-2],\"labels\":[1,-1]}";

/* POST /loss/hinge with an Authorization header (NULL for none). */
static void post_with(unsigned port, const char *auth, hresp *r)
{
    const char *const headers[] = {auth, NULL};

    http_call(port, "POST", "/loss/hinge", "application/json", hinge,
              strlen(hinge), auth ? headers : NULL, r);
}

static void expect_401(const hresp *r)
{
    char www[128];

    expect_error(r, 401, "unauthorized");
    cr_assert_eq(hresp_header(r, "WWW-Authenticate", www, sizeof www), 0);
    cr_assert_not_null(strstr(www, "Bearer"), "%s", www);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(http_security, keys_from_a_file_guard_every_loss_path)
{
    char path[] = "/tmp/lossd-keys-XXXXXX";
    const char *args[] = {"--api-keys-file", path, NULL};
    int fd = mkstemp(path);
    lossd d;
    hresp r;

    cr_assert(fd >= 0);
    close(fd);
    write_file(path, "# operators\n  alpha-123  \n\nbeta-456\r\n");
    lossd_start(&d, args);
    post_with(d.port, NULL, &r);
    expect_401(&r);
    hresp_free(&r);
    post_with(d.port, "Authorization: Bearer wrong", &r);
    expect_401(&r);
    hresp_free(&r);
    post_with(d.port, "Authorization: Bearer alpha-12", &r); /* a prefix */
    expect_401(&r);
    hresp_free(&r);
    post_with(d.port, "Authorization: Bearer alpha-1234", &r); /* longer */
    expect_401(&r);
    hresp_free(&r);
    post_with(d.port, "Authorization: Basic YWxwaGEtMTIz", &r);
    expect_401(&r);
    hresp_free(&r);
    post_with(d.port, "Authorization: Bearer alpha-123", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
    post_with(d.port, "Authorization: bearer beta-456", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
    /* Unknown names and wrong methods under /loss/ tell a stranger
     * nothing either. */
    http_call(d.port, "GET", "/loss/nope", NULL, NULL, 0, NULL, &r);
    expect_401(&r);
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
    unlink(path);
}

static void expect_status(unsigned port, const char *path, long status)
{
    hresp r;

    http_get(port, path, &r);
    cr_assert_eq(r.status, status, "%s: %ld %s", path, r.status, r.body);
    hresp_free(&r);
}

Test(http_security, keys_from_the_environment_leave_probes_open)
{
    lossd d;
    hresp r;

    setenv("LOSSD_API_KEYS", "k1, k2 ,k3", 1);
    lossd_start(&d, NULL);
    expect_status(d.port, "/healthz", 200);
    expect_status(d.port, "/readyz", 200);
    expect_status(d.port, "/metrics", 200);
    expect_status(d.port, "/losses", 200);
    post_with(d.port, "Authorization: Bearer k2", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    hresp_free(&r);
    post_with(d.port, "Authorization: Bearer k1,", &r);
    expect_401(&r);
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
}

Test(http_security, metrics_auth_protects_metrics)
{
    static const char *const args[] = {"--metrics-auth", "on", NULL};
    const char *const key[] = {"Authorization: Bearer s3cret", NULL};
    lossd d;
    hresp r;

    setenv("LOSSD_API_KEYS", "s3cret", 1);
    lossd_start(&d, args);
    http_get(d.port, "/metrics", &r);
    expect_401(&r);
    hresp_free(&r);
    http_call(d.port, "GET", "/metrics", NULL, NULL, 0, key, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(metric_value(r.body, "lossd_rejected_total{reason="
                                      "\"unauthorized\"}"),
                 1, "%s", r.body);
    hresp_free(&r);
    expect_status(d.port, "/healthz", 200);
    cr_assert_eq(lossd_stop(&d), 0);
}

Test(http_security, bad_key_configuration_fails_start_up)
{
    static const char *const missing[] = {"--api-keys-file",
                                          "/nonexistent/keys", NULL};
    static const char *const none[] = {NULL};
    char path[] = "/tmp/lossd-keys-XXXXXX", err[512] = "";
    const char *empty[] = {"--api-keys-file", path, NULL};
    int fd = mkstemp(path);

    cr_assert(fd >= 0);
    close(fd);
    write_file(path, "# nothing but comments\n\n");
    cr_assert_eq(lossd_run_once(missing, err, sizeof err), 2);
    cr_assert_not_null(strstr(err, "/nonexistent/keys"), "%s", err);
    cr_assert_eq(lossd_run_once(empty, err, sizeof err), 2);
    cr_assert_not_null(strstr(err, "no key"), "%s", err);
    setenv("LOSSD_API_KEYS", "has space", 1);
    cr_assert_eq(lossd_run_once(none, err, sizeof err), 2);
    cr_assert_not_null(strstr(err, "LOSSD_API_KEYS"), "%s", err);
    unlink(path);
}

Test(http_security, rejections_are_counted_by_reason)
{
    static const char *const args[] = {"--max-body", "1k", NULL};
    char big[2048];
    lossd d;
    hresp r;

    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    lossd_start(&d, args);
    http_post_json(d.port, "softmax", big, &r);
    expect_error(&r, 413, "body_too_large");
    hresp_free(&r);
    http_post_json(d.port, "softmax", "{\"logits\":[[1]],\"labels\":[3]}", &r);
    cr_assert_eq(r.status, 422);
    hresp_free(&r);
    http_call(d.port, "POST", "/loss/softmax", "text/plain", "x", 1, NULL, &r);
    hresp_free(&r);
    http_get(d.port, "/nowhere", &r);
    hresp_free(&r);
    http_get(d.port, "/metrics", &r);
    cr_assert_eq(metric_value(r.body, "lossd_rejected_total{reason="
                                      "\"body_too_large\"}"),
                 1, "%s", r.body);
    cr_assert_eq(metric_value(r.body, "lossd_rejected_total{reason="
                                      "\"unsupported_media_type\"}"),
                 1, "%s", r.body);
    cr_assert_eq(metric_value(r.body, "lossd_rejected_total{reason="
                                      "\"not_found\"}"),
                 1, "%s", r.body);
    cr_assert_not_null(strstr(r.body, "# TYPE lossd_rejected_total counter"));
    hresp_free(&r);
    cr_assert_eq(lossd_stop(&d), 0);
}

/* ---- TLS ---------------------------------------------------------------- */

typedef struct tls_files {
    char dir[64], cert[96], key[96];
} tls_files;

/* A fresh self-signed P-256 certificate for 127.0.0.1. */
static void tls_make(tls_files *t)
{
    char cmd[512];

    strcpy(t->dir, "/tmp/lossd-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    snprintf(t->cert, sizeof t->cert, "%s/cert.pem", t->dir);
    snprintf(t->key, sizeof t->key, "%s/key.pem", t->dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt "
             "ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
             ">/dev/null 2>&1",
             t->key, t->cert);
    cr_assert_eq(system(cmd), 0, "openssl could not make a certificate");
}

static void tls_remove(const tls_files *t)
{
    unlink(t->cert);
    unlink(t->key);
    rmdir(t->dir);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* GET https://127.0.0.1:port/healthz trusting only cert, with TLS at most
 * max_version (a CURL_SSLVERSION_MAX_* value, or 0 for no cap). */
static CURLcode https_get(unsigned port, const char *cert, long min_version,
                          long max_version, long *status)
{
    CURL *c = curl_easy_init();
    char url[128];
    CURLcode rc;

    cr_assert_not_null(c);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/healthz", port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, cert);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, min_version | max_version);
    if (max_version != 0)
        curl_easy_setopt(c, CURLOPT_SSL_CIPHER_LIST, "DEFAULT:@SECLEVEL=0");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    rc = curl_easy_perform(c);
    *status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    return rc;
}

Test(http_security, tls_serves_https_with_tls_1_2_or_later_only)
{
    tls_files t;
    const char *args[] = {"--tls-cert", t.cert, "--tls-key", t.key, NULL};
    long status;
    lossd d;

    tls_make(&t);
    lossd_start(&d, args);
    cr_assert_eq(https_get(d.port, t.cert, CURL_SSLVERSION_TLSv1_2, 0, &status),
                 CURLE_OK);
    cr_assert_eq(status, 200);
    cr_assert_eq(https_get(d.port, t.cert, CURL_SSLVERSION_TLSv1_2,
                           CURL_SSLVERSION_MAX_TLSv1_2, &status),
                 CURLE_OK, "TLS 1.2 is accepted");
    cr_assert_eq(https_get(d.port, t.cert, CURL_SSLVERSION_TLSv1_0,
                           CURL_SSLVERSION_MAX_TLSv1_1, &status),
                 CURLE_SSL_CONNECT_ERROR, "TLS 1.1 is refused");
    cr_assert_eq(https_get(d.port, t.cert, CURL_SSLVERSION_TLSv1_0,
                           CURL_SSLVERSION_MAX_TLSv1_0, &status),
                 CURLE_SSL_CONNECT_ERROR, "TLS 1.0 is refused");
    /* Plain HTTP on the TLS port gets no HTTP answer. */
    {
        char *out =
            raw_exchange(d.port, "GET /healthz HTTP/1.1\r\n\r\n", 25, 2000);
        cr_assert_null(strstr(out, "HTTP/1.1 200"), "%s", out);
        free(out);
    }
    cr_assert_eq(lossd_stop(&d), 0);
    tls_remove(&t);
}

static void expect_start_failure(const char *const *args, const char *mention)
{
    char err[512] = "";

    cr_assert_neq(lossd_run_once(args, err, sizeof err), 0, "%s", args[1]);
    cr_assert_not_null(strstr(err, mention), "stderr: %s", err);
    cr_assert_not_null(strchr(err, '\n'), "one whole line: %s", err);
}

Test(http_security, bad_certificates_fail_start_up_with_one_line)
{
    tls_files t;
    const char *swapped[] = {"--host", "127.0.0.1", "--port", "0", "--tls-cert",
                             t.key,    "--tls-key", t.cert,   NULL};
    const char *missing[] = {"--host",    "127.0.0.1",  "--port",
                             "0",         "--tls-cert", "/nonexistent.pem",
                             "--tls-key", t.key,        NULL};
    const char *not_pem[] = {"--host",    "127.0.0.1",  "--port",
                             "0",         "--tls-cert", "/etc/hostname",
                             "--tls-key", t.key,        NULL};
    const char *alone[] = {"--tls-cert", t.cert, NULL};

    tls_make(&t);
    expect_start_failure(swapped, "TLS");
    expect_start_failure(missing, "/nonexistent.pem");
    expect_start_failure(not_pem, "not a PEM file");
    expect_start_failure(alone, "--tls-key");
    tls_remove(&t);
}
