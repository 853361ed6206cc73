/*
 * The thread-local error slot behind iotsec_result. Messages are bounded (a fixed
 * buffer per thread), so recording an error never allocates and cannot itself fail.
 */
#include "iotsec/error.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ERROR_MESSAGE_MAX 512

static _Thread_local iotsec_err last_code;
static _Thread_local char last_message[ERROR_MESSAGE_MAX];

static const char *const default_messages[IOTSEC_ERR__COUNT] = {
#define IOTSEC_ERR_MSG(name, msg) [IOTSEC_ERR_##name] = msg,
    IOTSEC_ERROR_LIST(IOTSEC_ERR_MSG)
#undef IOTSEC_ERR_MSG
};

const char *iotsec_strerror(iotsec_err code)
{
    if ((unsigned)code >= IOTSEC_ERR__COUNT)
        return "unknown error";
    return default_messages[code];
}

iotsec_err iotsec_error_code(void)
{
    return last_code;
}

const char *iotsec_error_message(void)
{
    if (last_message[0] == '\0')
        return iotsec_strerror(last_code);
    return last_message;
}

IOTSEC_PRINTF(2, 0) static void set_message_v(iotsec_err code, const char *fmt, va_list ap)
{
    last_code = code;
    if (fmt == NULL) {
        snprintf(last_message, sizeof(last_message), "%s", iotsec_strerror(code));
        return;
    }
    vsnprintf(last_message, sizeof(last_message), fmt, ap);
}

void iotsec_error_set(iotsec_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_message_v(code, fmt, ap);
    va_end(ap);
}

void iotsec_error_set_ossl(iotsec_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_message_v(code, fmt, ap);
    va_end(ap);

    /* The earliest queued error is the root cause; later ones are call-site noise. */
    unsigned long first = ERR_get_error();
    ERR_clear_error();
    if (first == 0)
        return;
    const char *reason = ERR_reason_error_string(first);
    size_t used = strlen(last_message);
    if (reason != NULL && used < sizeof(last_message))
        snprintf(last_message + used, sizeof(last_message) - used, ": %s", reason);
}

void iotsec_error_prefix(const char *fmt, ...)
{
    char prefix[ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if (last_message[0] == '\0')
        snprintf(last_message, sizeof(last_message), "%s", iotsec_strerror(last_code));

    /* Shift the old message right, truncating its tail, and put the prefix in front. */
    size_t plen = strlen(prefix);
    size_t mlen = strlen(last_message);
    if (plen >= sizeof(last_message) - 1)
        plen = sizeof(last_message) - 1;
    if (plen + mlen > sizeof(last_message) - 1)
        mlen = sizeof(last_message) - 1 - plen;
    memmove(last_message + plen, last_message, mlen);
    memcpy(last_message, prefix, plen);
    last_message[plen + mlen] = '\0';
}

void iotsec_error_clear(void)
{
    last_code = IOTSEC_ERR_OK;
    last_message[0] = '\0';
}
