/* status.c -- status codes, their contract error codes and messages, and the
 * two helpers every loss uses to describe a failure: loss_error_set with a
 * free-form sentence, loss_error_at with a sentence about one located field
 * (and loss_number_text, which names NaN and the infinities in words). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "lossInt.h"

/* One row per status, generated from the same X-macro as the enum. */
static const struct status_row {
    loss_status status;
    const char *code, *message;
} status_rows[] = {
#define LOSS_STATUS_ROW(name, value, code, msg) {LOSS_##name, code, msg},
    LOSS_STATUS_MAP(LOSS_STATUS_ROW)
#undef LOSS_STATUS_ROW
};

/* The row of s, or NULL for a value outside the enum. */
static const struct status_row *status_find(loss_status s)
{
    size_t i;

    for (i = 0; i < sizeof status_rows / sizeof status_rows[0]; i++)
        if (status_rows[i].status == s)
            return &status_rows[i];
    return NULL;
}

const char *loss_status_code(loss_status s)
{
    const struct status_row *r = status_find(s);

    return r ? r->code : "unknown";
}

const char *loss_status_message(loss_status s)
{
    const struct status_row *r = status_find(s);

    return r ? r->message : "unknown";
}

loss_status loss_error_set(loss_error *err, loss_status status,
                           const char *field, size_t depth, size_t i0,
                           size_t i1, size_t i2, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return status;
    err->status = status;
    err->field = field;
    err->depth = depth > 3 ? 3 : depth;
    err->index[0] = i0;
    err->index[1] = i1;
    err->index[2] = i2;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return status;
}

/* Writes err's path, "field[i0][i1]", and a space to the start of
 * err->message; returns the length written (truncated to fit). */
static size_t error_path(loss_error *err)
{
    size_t cap = sizeof err->message, at, d;
    int w = snprintf(err->message, cap, "%s", err->field);

    at = w > 0 ? (size_t)w : 0;
    for (d = 0; d < err->depth && at < cap; d++) {
        w = snprintf(err->message + at, cap - at, "[%zu]", err->index[d]);
        at += w > 0 ? (size_t)w : 0;
    }
    if (at + 1 < cap) {
        err->message[at++] = ' ';
        err->message[at] = '\0';
    }
    return at < cap ? at : cap - 1;
}

loss_status loss_error_at(loss_error *err, loss_status status,
                          const char *field, size_t depth, size_t i0, size_t i1,
                          size_t i2, const char *fmt, ...)
{
    va_list ap;
    size_t at;

    if (err == NULL)
        return status;
    loss_error_set(err, status, field, depth, i0, i1, i2, "%s", "");
    at = error_path(err);
    va_start(ap, fmt);
    vsnprintf(err->message + at, sizeof err->message - at, fmt, ap);
    va_end(ap);
    return status;
}

const char *loss_number_text(double v, char *buf, size_t len)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0.0 ? "infinity" : "-infinity";
    snprintf(buf, len, "%g", v);
    return buf;
}

void loss_error_path(const loss_error *err, char *buf, size_t len)
{
    size_t d, at;
    int n;

    if (len == 0)
        return;
    buf[0] = '\0';
    if (err->field == NULL)
        return;
    n = snprintf(buf, len, "%s", err->field);
    at = n < 0 ? 0 : (size_t)n;
    for (d = 0; d < err->depth && d < 3 && at < len; d++) {
        n = snprintf(buf + at, len - at, "[%zu]", err->index[d]);
        at += n < 0 ? 0 : (size_t)n;
    }
}

int loss_stop(loss_error *err)
{
    return loss_error_set(err, LOSS_E_STOPPED, NULL, 0, 0, 0, 0, "%s",
                          loss_status_message(LOSS_E_STOPPED));
}
