/* status.c -- status codes, their contract error codes and messages, and the
 * helper every loss uses to describe a failure. */
#include <stdarg.h>
#include <stdio.h>

#include "loss.h"

const char *loss_status_code(loss_status s)
{
    switch (s) {
#define LOSS_STATUS_CODE(name, value, code, msg)                               \
    case LOSS_##name:                                                          \
        return code;
        LOSS_STATUS_MAP(LOSS_STATUS_CODE)
#undef LOSS_STATUS_CODE
    }
    return "unknown";
}

const char *loss_status_message(loss_status s)
{
    switch (s) {
#define LOSS_STATUS_MSG(name, value, code, msg)                                \
    case LOSS_##name:                                                          \
        return msg;
        LOSS_STATUS_MAP(LOSS_STATUS_MSG)
#undef LOSS_STATUS_MSG
    }
    return "unknown";
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
